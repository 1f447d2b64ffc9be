//! The uptime collector: `system.uptime` from `/proc/uptime`.
//!
//! ```text
//! 2300.30 4416.01
//! ```
//!
//! The first number is the seconds since boot as `uptime` and the hostmetrics receiver's
//! `system.uptime` report it (CLOCK_BOOTTIME: time spent suspended counts). The second (idle
//! seconds summed over CPUs) is not reported: `system.cpu.time{cpu.mode="idle"}` has it per CPU.

use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::host::HostPaths;
use crate::procfs::{uptime, ProcFile};
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
}

/// Reads `/proc/uptime` every tick, keeping the file open.
pub struct UptimeCollector {
    file: ProcFile,
    snap: Arc<SnapshotCell<f64>>,
}

impl UptimeCollector {
    /// A collector reading `paths`' `/proc/uptime`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        UptimeCollector { file: ProcFile::new(uptime::path(paths)), snap: SnapshotCell::new(clock) }
    }
}

impl Collector for UptimeCollector {
    fn name(&self) -> &'static str {
        "uptime"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        meter
            .f64_observable_gauge("system.uptime")
            .with_unit("s")
            .with_description("The time the system has been running")
            .with_callback(move |obs| {
                snap.with(|s| obs.observe(*s, &[]));
            })
            .build();
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
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
