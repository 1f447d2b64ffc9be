//! The uptime collector: `system.uptime` from `/proc/uptime`.
//!
//! ```text
//! 2300.30 4416.01
//! ```
//!
//! The first number is the seconds since boot as `uptime` and the hostmetrics receiver's
//! `system.uptime` report it (CLOCK_BOOTTIME: time spent suspended counts). The second (idle
//! seconds summed over CPUs) is not reported: `system.cpu.time{cpu.mode="idle"}` has it per CPU.
//! Where the file is the running kernel's own (no `HOST_PROC`, no LXCFS file over it), the
//! collector reads that clock instead (`clock_gettime`, a vDSO call): the same number to the
//! nanosecond instead of the centisecond, without a file read per tick.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{uptime, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.uptime`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UptimeConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads `/proc/uptime` every tick, keeping the file open, or `CLOCK_BOOTTIME`, the clock the
/// file prints, where the file is this kernel's own (see [`crate::procfs::is_kernels_own`]).
pub struct UptimeCollector {
    file: ProcFile,
    clock: bool,
    snap: Arc<SnapshotCell<f64>>,
}

impl UptimeCollector {
    /// A collector reading `paths`' `/proc/uptime`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        let path = uptime::path(paths);
        UptimeCollector { clock: crate::procfs::is_kernels_own(paths, &path), file: ProcFile::new(path), snap: SnapshotCell::new(clock) }
    }
}

const UPTIME: Metric<f64> = Metric::f64_gauge("system.uptime", "s", "The time the system has been running")
    .source("/proc/uptime (clock_gettime(CLOCK_BOOTTIME), the clock it prints, when it is the running kernel's own file)");

/// The uptime collector's metrics.
pub const METRICS: &[MetricSpec] = &[UPTIME.spec()];

impl Collector for UptimeCollector {
    fn name(&self) -> &'static str {
        "uptime"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        UPTIME.register(meter, move |obs| {
            snap.with(|s| obs.observe(*s, &[]));
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if self.clock {
            if let Ok(s) = uptime::boottime_seconds() {
                self.snap.set(s);
                return Ok(());
            }
        }
        let u = uptime::read_file(&mut self.file)?;
        self.snap.set(u.seconds);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{fixture_copy, value, write, Harness, Kind};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_the_seconds_since_boot_of_the_6_18_capture() {
        let clock = TickClock::default();
        let mut c = UptimeCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // proc/uptime: "2300.30 4416.01"
        assert_eq!(p.len(), 1);
        assert_eq!(value(&p, "system.uptime", &[]), Some(2300.30));
        assert_eq!(p[0].3, Kind::Gauge);
        assert_eq!(h.unit("system.uptime"), Some("s"));
    }

    #[test]
    fn on_this_host_reads_the_boot_clock_and_agrees_with_proc_uptime() {
        let clock = TickClock::default();
        let mut c = UptimeCollector::new(&HostPaths::default(), &clock);
        assert!(c.clock, "/proc/uptime here is procfs's");
        let mut h = Harness::new(&clock, &mut c);
        let before = uptime::read(&HostPaths::default()).unwrap().seconds;
        let p = h.tick(&mut c).unwrap();
        let after = uptime::read(&HostPaths::default()).unwrap().seconds;
        let v = value(&p, "system.uptime", &[]).unwrap();
        assert!(before <= v && v <= after + 0.01, "{before} <= {v} <= {after}");
        // A fixture tree (as a host's /proc mounted elsewhere) is always read.
        assert!(!UptimeCollector::new(&fixture_paths("linux-6.18-vm"), &clock).clock);
    }

    #[test]
    fn reports_the_new_value_each_tick_and_nothing_when_the_file_is_unreadable() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let mut c = UptimeCollector::new(&paths, &clock);
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        write(&dir, "proc/uptime", "2360.75 4530.00\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.uptime", &[]), Some(2360.75));
        write(&dir, "proc/uptime", "garbage\n");
        assert!(h.tick(&mut c).is_err());
        assert!(h.collect().is_empty());
    }
}
