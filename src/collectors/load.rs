//! The load collector: `system.cpu.load_average.{1m,5m,15m}` from `/proc/loadavg`.
//!
//! ```text
//! 0.52 0.58 0.59 2/611 4138
//! ```
//!
//! Where the file is the running kernel's own (no `HOST_PROC`, no LXCFS file over it, which
//! gives a container its own load), the same averages come from `sysinfo(2)`, one system call
//! without text, to 1/65536 instead of the file's two decimals (as the hostmetrics receiver's
//! gopsutil reads them).

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{loadavg, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.load`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads `/proc/loadavg` every tick, keeping the file open, or asks `sysinfo(2)` for the same
/// averages where the file is this kernel's own (see [`crate::procfs::is_kernels_own`]).
pub struct LoadCollector {
    file: ProcFile,
    syscall: bool,
    snap: Arc<SnapshotCell<loadavg::LoadAvg>>,
}

impl LoadCollector {
    /// A collector reading `paths`' `/proc/loadavg`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        let path = loadavg::path(paths);
        LoadCollector { syscall: crate::procfs::is_kernels_own(paths, &path), file: ProcFile::new(path), snap: SnapshotCell::new(clock) }
    }
}

/// One of the three averages (the names of the Collector's hostmetrics receiver).
const fn load_average(name: &'static str) -> Metric<f64> {
    Metric::f64_gauge(name, "{run_queue_item}", "Average number of runnable and uninterruptible tasks over the period")
        .source("/proc/loadavg (sysinfo(2) when it is the running kernel's own file)")
        .receiver_name("hostmetrics")
}
const LOAD_1M: Metric<f64> = load_average("system.cpu.load_average.1m");
const LOAD_5M: Metric<f64> = load_average("system.cpu.load_average.5m");
const LOAD_15M: Metric<f64> = load_average("system.cpu.load_average.15m");

/// The load collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[LOAD_1M.spec(), LOAD_5M.spec(), LOAD_15M.spec()];

impl Collector for LoadCollector {
    fn name(&self) -> &'static str {
        "load"
    }

    fn register(&mut self, meter: &Meter) {
        type Pick = fn(&loadavg::LoadAvg) -> f64;
        for (metric, pick) in [(LOAD_1M, (|l: &loadavg::LoadAvg| l.one) as Pick), (LOAD_5M, |l| l.five), (LOAD_15M, |l| l.fifteen)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|l| obs.observe(pick(l), &[]));
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if self.syscall {
            if let Ok(l) = loadavg::from_sysinfo() {
                self.snap.set(l);
                return Ok(());
            }
        }
        let l = loadavg::read_file(&mut self.file)?;
        self.snap.set(l);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{value, Harness};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_the_three_averages_of_a_capture() {
        let clock = TickClock::default();
        let mut c = LoadCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        assert!(!c.syscall, "a fixture tree (as a host's /proc mounted elsewhere) is read");
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        let want = loadavg::read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(value(&p, "system.cpu.load_average.1m", &[]), Some(want.one));
        assert_eq!(value(&p, "system.cpu.load_average.5m", &[]), Some(want.five));
        assert_eq!(value(&p, "system.cpu.load_average.15m", &[]), Some(want.fifteen));
        assert_eq!(h.unit("system.cpu.load_average.15m"), Some("{run_queue_item}"));
    }

    #[test]
    fn on_this_host_asks_sysinfo_and_agrees_with_proc_loadavg() {
        let clock = TickClock::default();
        let mut c = LoadCollector::new(&HostPaths::default(), &clock);
        assert!(c.syscall, "/proc/loadavg here is procfs's");
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        let file = loadavg::read(&HostPaths::default()).unwrap();
        // The averages move every 5 s; within a test they hardly move.
        let got = value(&p, "system.cpu.load_average.15m", &[]).unwrap();
        assert!((got - file.fifteen).abs() < 0.05, "sysinfo {got}, /proc/loadavg {}", file.fifteen);
    }
}
