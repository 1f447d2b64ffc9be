//! `collector.process`: which processes to consider (by executable name), how many to report
//! and by what they are ranked.
//!
//! ```yaml
//! collector:
//!   process: {enabled: true, include: ["java*"], top_n: 5, top_by: memory}
//! ```

use serde::{Deserialize, Serialize};

/// What the top N is ranked by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TopBy {
    /// CPU time used since the previous tick (user + system).
    #[default]
    Cpu,
    /// Resident set size.
    Memory,
}

/// `collector.process`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Run this collector (default false: per-process series are many and change as processes
    /// come and go).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Processes to consider, by executable name (`process.executable.name`) or a pattern where
    /// `*` matches any run of characters (`postgres`, `java*`, `kube-*`). Empty (the default):
    /// every process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Processes not to consider, in the same form; wins over `include`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// How many processes to report (default 20); 0 reports every process that matches.
    pub top_n: usize,
    /// Rank processes by `cpu` (CPU time since the previous tick; the default) or `memory`
    /// (resident set size).
    pub top_by: TopBy,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig { enabled: None, metrics: Default::default(), include: Vec::new(), exclude: Vec::new(), top_n: 20, top_by: TopBy::Cpu }
    }
}

impl ProcessConfig {
    /// Whether a process with executable name `name` is considered.
    pub fn accepts(&self, name: &str) -> bool {
        crate::collectors::passes(&self.include, &self.exclude, name, || true)
    }

    pub(super) fn filters(&self) -> bool {
        !self.include.is_empty() || !self.exclude.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_config_section() {
        let c: ProcessConfig = serde_json::from_str(r#"{"enabled": true, "top_by": "memory", "include": ["java*"]}"#).unwrap();
        assert_eq!((c.enabled, c.top_by, c.top_n), (Some(true), TopBy::Memory, 20));
        assert!(serde_json::from_str::<ProcessConfig>(r#"{"top_by": "io"}"#).is_err());
        assert!(serde_json::from_str::<ProcessConfig>(r#"{"topn": 5}"#).is_err());
    }
}
