//! Per-metric control, as the Collector's hostmetrics scrapers have it: a `metrics` map in each
//! collector's own section switches a metric off (or on) by name and drops attribute keys from
//! its points.
//!
//! ```yaml
//! collector:
//!   cpu:
//!     metrics:
//!       system.cpu.frequency: {enabled: false}
//!       system.cpu.time: {drop_attributes: [cpu.logical_number]}   # one series per mode
//! ```
//!
//! A metric switched off is never registered, so it costs nothing at collect. Dropping keys
//! merges the points that then share an attribute set: a sum's values are added (per-CPU
//! `system.cpu.time` becomes the host's total per mode), a gauge keeps the last one observed.
//! Names and keys are checked against the catalog ([`super::catalog::CATALOG`]): a misspelt
//! metric or a key the metric does not carry is a config error naming both.

use super::catalog::CATALOG;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `metrics` map of one collector's section: metric name → its setting.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct MetricSettings(pub BTreeMap<String, MetricSetting>);

/// What the config says about one metric.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricSetting {
    /// `false` switches the metric off; `true` (or absent) keeps it as its collector reports it
    /// (a metric of a collector that is off stays off: switch the collector on first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Attribute keys removed from every point of the metric; points that then share an
    /// attribute set are merged (sums added, the last gauge kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop_attributes: Vec<String>,
}

impl MetricSettings {
    /// Whether nothing is set (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` is switched off.
    pub fn is_disabled(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|s| s.enabled == Some(false))
    }

    /// The keys dropped from `name`'s points (empty when none).
    pub fn dropped(&self, name: &str) -> &[String] {
        self.0.get(name).map(|s| s.drop_attributes.as_slice()).unwrap_or(&[])
    }

    /// Checks every name and key against `collector`'s metrics in the catalog; one message per
    /// problem, each naming the config key.
    pub fn check(&self, collector: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let Some(known) = CATALOG.iter().find(|c| c.collector == collector) else {
            if !self.is_empty() {
                problems.push((format!("collector.{collector}.metrics"), "this collector has no metric catalog".into()));
            }
            return problems;
        };
        for (name, setting) in &self.0 {
            let key = format!("collector.{collector}.metrics.{name}");
            let Some(spec) = known.metrics.iter().find(|m| m.name == name) else {
                let names: Vec<&str> = known.metrics.iter().map(|m| m.name).collect();
                problems.push((key, format!("the {collector} collector has no metric {name:?}; it has: {}", names.join(", "))));
                continue;
            };
            for k in &setting.drop_attributes {
                if !spec.attributes.contains(&k.as_str()) {
                    let has = if spec.attributes.is_empty() { "none".to_string() } else { spec.attributes.join(", ") };
                    problems.push((format!("{key}.drop_attributes"), format!("{name} has no attribute {k:?}; its attributes: {has}")));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> MetricSettings {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_metric_switched_off_is_disabled_and_others_are_not() {
        let s = settings("system.cpu.frequency: {enabled: false}\nsystem.cpu.time: {enabled: true}");
        assert!(s.is_disabled("system.cpu.frequency"));
        assert!(!s.is_disabled("system.cpu.time"));
        assert!(!s.is_disabled("system.cpu.utilization"));
        assert!(s.check("cpu").is_empty());
    }

    #[test]
    fn an_unknown_metric_name_is_an_error_that_lists_the_collectors_metrics() {
        let p = settings("system.cpu.frequncy: {enabled: false}").check("cpu");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "collector.cpu.metrics.system.cpu.frequncy");
        assert!(p[0].1.contains("system.cpu.frequency"), "{}", p[0].1);
    }

    #[test]
    fn a_metric_of_another_collector_is_refused() {
        let p = settings("system.memory.usage: {enabled: false}").check("cpu");
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn dropping_a_key_the_metric_does_not_carry_is_an_error() {
        let s = settings("system.cpu.time: {drop_attributes: [cpu.logical_number, cpu.state]}");
        assert_eq!(s.dropped("system.cpu.time"), ["cpu.logical_number", "cpu.state"]);
        let p = s.check("cpu");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].0.ends_with(".drop_attributes") && p[0].1.contains("cpu.state"), "{p:?}");
    }

    #[test]
    fn unknown_keys_in_a_setting_are_refused_by_the_parser() {
        assert!(serde_yaml_ng::from_str::<MetricSettings>("system.cpu.time: {enable: false}").is_err());
    }
}
