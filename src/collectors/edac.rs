//! The edac collector: corrected and uncorrected memory errors the EDAC drivers count, per
//! memory controller and chip-select row, from `/sys/devices/system/edac/mc`, as
//! node_exporter's `edac` collector (`node_edac_{correctable,uncorrectable}_errors_total`,
//! `node_edac_csrow_*`).
//!
//! ```text
//! /sys/devices/system/edac/mc/mc0/ce_count         3
//! /sys/devices/system/edac/mc/mc0/csrow0/ce_count  2
//! ```
//!
//! A controller's totals are `hw.errors{hw.type="memory", hw.id="edac_mc0",
//! error.type="corrected"|"uncorrected"}` (the semantic conventions' hardware errors, as the
//! GPU collector reports ECC errors); the per-row counts, which add up to at most the
//! controller's, are metricsd's `system.linux.edac.csrow.errors`, so that summing `hw.errors`
//! does not count an error twice; errors not attributable to a row (`ce_noinfo_count`,
//! `ue_noinfo_count`) are the row `unknown` (`hw.id="edac_mc0_unknown"`), as node_exporter's
//! `csrow="unknown"`.
//! A host without EDAC (every VM) reports nothing and logs that once at debug level.

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{edac, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.edac`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdacConfig {
    /// Run this collector (default true; it reports nothing where no EDAC driver is loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// A counter file and the attributes of its point.
struct Count {
    file: ProcFile,
    attrs: Arc<[KeyValue]>,
    /// A row's count (else a controller's).
    row: bool,
}

/// A counter's attributes, value, and whether it is a row's.
type Point = (Arc<[KeyValue]>, u64, bool);

/// Lists the controllers at the first tick and reads their counters every tick.
pub struct EdacCollector {
    paths: HostPaths,
    counts: Option<Vec<Count>>,
    presence: Presence,
    snap: Arc<SnapshotCell<Vec<Point>>>,
}

impl EdacCollector {
    /// A collector of `paths`' EDAC controllers.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        EdacCollector { paths: paths.clone(), counts: None, presence: Presence::new("edac"), snap: SnapshotCell::new(clock) }
    }

    fn scan(&mut self) -> Result<Option<Vec<Count>>, CollectorError> {
        let Some(controllers) = self.presence.check(edac::scan(&self.paths))? else { return Ok(None) };
        let mut counts = Vec::new();
        for c in controllers {
            let id = format!("edac_{}", c.id);
            let name = c.name.clone().unwrap_or_else(|| c.id.clone());
            for (file, ty) in [(c.ce, "corrected"), (c.ue, "uncorrected")] {
                let attrs = vec![
                    KeyValue::new("hw.id", id.clone()),
                    KeyValue::new("hw.name", name.clone()),
                    KeyValue::new("hw.type", "memory"),
                    KeyValue::new("error.type", ty),
                ];
                counts.push(Count { file: ProcFile::new(file), attrs: attrs.into(), row: false });
            }
            for r in c.csrows.into_iter().chain(c.noinfo) {
                for (file, ty) in [(r.ce, "corrected"), (r.ue, "uncorrected")] {
                    let attrs = vec![KeyValue::new("hw.id", format!("{id}_{}", r.id)), KeyValue::new("hw.parent", id.clone()), KeyValue::new("error.type", ty)];
                    counts.push(Count { file: ProcFile::new(file), attrs: attrs.into(), row: true });
                }
            }
        }
        Ok(Some(counts))
    }
}

const ERRORS: Metric<u64> = Metric::u64_counter("hw.errors", "{error}", "Memory errors a memory controller corrected or could not correct (EDAC)")
    .attributes(&["hw.id", "hw.name", "hw.type", "error.type"])
    .source("/sys/devices/system/edac/mc/mc*/ce_count, ue_count");
const CSROW_ERRORS: Metric<u64> =
    Metric::u64_counter("system.linux.edac.csrow.errors", "{error}", "Memory errors of one chip-select row of a memory controller (EDAC)")
        .attributes(&["hw.id", "hw.parent", "error.type"])
        .source("/sys/devices/system/edac/mc/mc*/csrow*/ce_count, ue_count")
        .agent_name();

/// The edac collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[ERRORS.spec(), CSROW_ERRORS.spec()];

impl Collector for EdacCollector {
    fn name(&self) -> &'static str {
        "edac"
    }

    fn register(&mut self, meter: &Meter) {
        for (metric, rows) in [(ERRORS, false), (CSROW_ERRORS, true)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|v| {
                    for (attrs, n, row) in v {
                        if *row == rows {
                            obs.observe(*n, attrs);
                        }
                    }
                });
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        if self.counts.is_none() {
            match self.scan()? {
                Some(c) => self.counts = Some(c),
                None => return Ok(()),
            }
        }
        let mut v = self.snap.take().unwrap_or_default();
        v.clear();
        for c in self.counts.iter_mut().flatten() {
            v.push((c.attrs.clone(), edac::read_count(&mut c.file)?, c.row));
        }
        self.snap.set(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, of, value, Harness};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_controller_totals_as_hw_errors_and_rows_apart() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut EdacCollector::new(&fixture_paths("linux-6.8-sensors"), &clock));
        let mc = |id: &str, name: &str, ty: &str| value(&p, "hw.errors", &[("hw.id", id), ("hw.name", name), ("hw.type", "memory"), ("error.type", ty)]);
        assert_eq!(mc("edac_mc0", "Skylake Socket#0 IMC#0", "corrected"), Some(3.0));
        assert_eq!(mc("edac_mc1", "Skylake Socket#1 IMC#0", "uncorrected"), Some(1.0));
        assert_eq!(of(&p, "hw.errors").len(), 4);
        assert_eq!(
            value(&p, "system.linux.edac.csrow.errors", &[("hw.id", "edac_mc0_csrow0"), ("hw.parent", "edac_mc0"), ("error.type", "corrected")]),
            Some(2.0)
        );
        assert_eq!(
            value(&p, "system.linux.edac.csrow.errors", &[("hw.id", "edac_mc0_unknown"), ("hw.parent", "edac_mc0"), ("error.type", "corrected")]),
            Some(1.0)
        );
        assert_eq!(of(&p, "system.linux.edac.csrow.errors").len(), 8, "2 rows and the unknown row of mc0, the unknown row of mc1");
    }

    #[test]
    fn a_host_without_edac_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = EdacCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        assert!(Harness::new(&clock, &mut c).tick(&mut c).unwrap().is_empty());
    }
}
