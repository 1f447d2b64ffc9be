//! The pressure collector: the host's pressure stall information (PSI) from
//! `PROC/pressure/{cpu,memory,io}` as one counter, `system.linux.pressure.time`, on by default
//! where the kernel has PSI. The format is in [`procfs::pressure`](crate::procfs::pressure):
//!
//! ```text
//! some avg10=0.00 avg60=0.12 avg300=0.31 total=4011645232
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```
//!
//! | metric | attributes | node_exporter |
//! | --- | --- | --- |
//! | `system.linux.pressure.time` | `system.linux.pressure.resource=cpu`, `…stall_type=some` | `node_pressure_cpu_waiting_seconds_total` |
//! | | `cpu`, `full` | `node_pressure_cpu_stalled_seconds_total` |
//! | | `memory`, `some` / `full` | `node_pressure_memory_waiting_seconds_total` / `node_pressure_memory_stalled_seconds_total` |
//! | | `io`, `some` / `full` | `node_pressure_io_waiting_seconds_total` / `node_pressure_io_stalled_seconds_total` |
//!
//! PSI has no accepted semantic convention yet (semantic-conventions#2995; the proposals #3068
//! and #3528 use `system.linux.*`/`…linux.pressure…` names with a `some`/`full` stall-type
//! attribute): the name is metricsd's own and marked so in the catalog. The same counter per
//! container and pod is the containers collector's `container.linux.pressure.time` and
//! `k8s.pod.linux.pressure.time`.

use super::instruments::{ByDefault, Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::pressure::{PressureFiles, Stall, RESOURCES};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.pressure`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PressureConfig {
    /// Run this collector (default: true where `/proc/pressure` exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

impl PressureConfig {
    /// `enabled`, else whether the host has PSI.
    pub fn is_enabled(&self, paths: &HostPaths) -> bool {
        self.enabled.unwrap_or_else(|| PressureFiles::host_has_psi(paths))
    }
}

/// The attribute sets of a pressure point, `[resource][some, full]`, built once.
pub type PressureAttrs = [[[KeyValue; 2]; 2]; 3];

/// `system.linux.pressure.resource` and `system.linux.pressure.stall_type` for every
/// resource and stall type.
pub fn pressure_attrs() -> PressureAttrs {
    RESOURCES.map(|r| ["some", "full"].map(|t| [KeyValue::new("system.linux.pressure.resource", r), KeyValue::new("system.linux.pressure.stall_type", t)]))
}

/// The attribute keys of every pressure metric.
pub const PRESSURE_ATTRIBUTES: &[&str] = &["system.linux.pressure.resource", "system.linux.pressure.stall_type"];

const PRESSURE_TIME: Metric<f64> = Metric::f64_counter(
    "system.linux.pressure.time",
    "s",
    "Time in which some (at least one) or all (full) non-idle tasks were stalled waiting for CPU, memory or I/O",
)
.attributes(PRESSURE_ATTRIBUTES)
.source("/proc/pressure/{cpu,memory,io} some/full total= (µs)")
.by_default(ByDefault::When("where /proc/pressure exists"))
.agent_name();

/// The pressure collector's metrics.
pub const METRICS: &[MetricSpec] = &[PRESSURE_TIME.spec()];

/// Reads the host's three pressure files every tick, keeping them open.
pub struct PressureCollector {
    files: PressureFiles,
    snap: Arc<SnapshotCell<[Stall; 3]>>,
}

impl PressureCollector {
    /// A collector of `paths`' `/proc/pressure`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        PressureCollector { files: PressureFiles::host(paths), snap: SnapshotCell::new(clock) }
    }
}

impl Collector for PressureCollector {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        let attrs = pressure_attrs();
        PRESSURE_TIME.register(meter, move |obs| {
            snap.with(|s| observe_stalls(s, &attrs, |v, a| obs.observe(v, a)));
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let s = self.files.read()?;
        self.snap.set(s);
        Ok(())
    }
}

/// Calls `observe(seconds, attributes)` for every stall time read.
pub fn observe_stalls(s: &[Stall; 3], attrs: &PressureAttrs, mut observe: impl FnMut(f64, &[KeyValue])) {
    for (stall, a) in s.iter().zip(attrs) {
        for (v, a) in stall.iter().zip(a) {
            if let Some(v) = v {
                observe(*v, a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil;

    #[test]
    fn reports_some_and_full_of_each_resource_in_seconds_and_is_on_only_where_psi_exists() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::under(dir.path());
        assert!(!PressureConfig::default().is_enabled(&paths), "no /proc/pressure: off by default");
        assert!(PressureConfig { enabled: Some(true), ..Default::default() }.is_enabled(&paths));
        std::fs::create_dir_all(dir.path().join("proc/pressure")).unwrap();
        let line = |s: u64, f: Option<u64>| {
            let mut t = format!("some avg10=0.00 avg60=0.00 avg300=0.00 total={s}\n");
            if let Some(f) = f {
                t += &format!("full avg10=0.00 avg60=0.00 avg300=0.00 total={f}\n");
            }
            t
        };
        // A 5.x kernel before 5.13: no `full` line for cpu.
        std::fs::write(dir.path().join("proc/pressure/cpu"), line(2_500_000, None)).unwrap();
        std::fs::write(dir.path().join("proc/pressure/memory"), line(1_000, Some(500))).unwrap();
        std::fs::write(dir.path().join("proc/pressure/io"), line(3_000_000, Some(1_000_000))).unwrap();
        assert!(PressureConfig::default().is_enabled(&paths));
        let clock = TickClock::default();
        let mut c = PressureCollector::new(&paths, &clock);
        let points = testutil::collect_once(&clock, &mut c);
        let mut got: Vec<(String, f64)> = testutil::of(&points, "system.linux.pressure.time")
            .iter()
            .map(|p| (p.1.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join("/"), p.2))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(testutil::kind(&points, "system.linux.pressure.time"), Some(testutil::Kind::Counter));
        assert_eq!(
            got,
            [("cpu/some".to_string(), 2.5), ("io/full".into(), 1.0), ("io/some".into(), 3.0), ("memory/full".into(), 0.0005), ("memory/some".into(), 0.001)]
        );
    }
}
