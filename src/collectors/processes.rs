//! The processes collector: `system.process.count{process.state}` from the state letter of
//! every `/proc/[pid]/stat`, and `system.process.created` from the `processes` line of
//! `/proc/stat`.
//!
//! ```text
//! 4242 (my (weird) ) x) R 1 4242 4242 0 -1 ...      /proc/[pid]/stat: state after the last ')'
//! processes 6457                                     /proc/stat: forks since boot
//! ```
//!
//! States, as `ps` prints them in its `STAT` column: `R` → `running`; `S` (interruptible
//! sleep) and `I` (idle kernel thread) → `sleeping`; `D` (uninterruptible sleep, usually
//! waiting for disk or NFS) → `blocked`; `T` and `t` (stopped, tracing stop) → `stopped`; `Z` →
//! `defunct`. Processes in any other state (`X` dead, which is only seen for an instant) are
//! not counted.
//!
//! `blocked` is not one of the semantic conventions' `process.state` values; it is kept apart
//! as the OpenTelemetry Collector's hostmetrics receiver (`system.processes.count{status=
//! "blocked"}`) and `vmstat`'s `b` column keep it apart, because processes stuck in `D` are what
//! an operator looks for (they add to the load average without using CPU). Each process is
//! counted in exactly one state, so the values sum to the number of processes (`ps -e | wc -l`,
//! less its header).
//!
//! Unlike the hostmetrics receiver, `running` and `blocked` are not taken from `/proc/stat`'s
//! `procs_running`/`procs_blocked`: those count threads, not processes, and mixing them with
//! per-process counts would make the sum meaningless. Only the main thread's state counts.
//!
//! `system.process.created` counts processes *and threads* created since boot (every fork and
//! clone), as the kernel's `processes` line and the hostmetrics receiver report it.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SharedStat, SnapshotCell, TickClock};
use crate::procfs::pid;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.processes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessesConfig {
    /// How often every /proc/PID/stat is read to count processes by state (default `"60s"`;
    /// `"0s"` = every tick). The scan costs ~20 µs per process; `system.process.created`
    /// is read every tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_interval: Option<crate::units::ConfigDuration>,
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// The `process.state` values reported, in this order.
pub const STATES: [&str; 5] = ["running", "sleeping", "blocked", "stopped", "defunct"];

/// What one tick read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Processes by state, in the order of [`STATES`] (`None`: the scan failed).
    pub counts: Option<[u64; 5]>,
    /// Processes and threads created since boot (`None`: `/proc/stat` failed).
    pub created: Option<u64>,
}

/// Counts processes by state in [`STATES`] order (see the module docs for the mapping).
pub fn by_state(c: &pid::StateCounts) -> [u64; 5] {
    [c.running, c.sleeping + c.idle, c.disk_sleep, c.stopped, c.zombie]
}

/// Scans `/proc` every `scan_interval` and reads `/proc/stat` (shared with the cpu collector)
/// every tick.
pub struct ProcessesCollector {
    paths: HostPaths,
    stat: Arc<SharedStat>,
    snap: Arc<SnapshotCell<Snapshot>>,
    scan_interval: std::time::Duration,
    /// The last full scan of /proc/PID/stat (`None` if it failed) and when it was taken.
    last_scan: Option<(std::time::Instant, Option<[u64; 5]>)>,
    /// Which of `/proc/stat` and the scan fail (each alone).
    sources: super::sources::Sources,
}

impl ProcessesCollector {
    /// A collector reading `paths`' `/proc`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        ProcessesCollector {
            paths: paths.clone(),
            stat: SharedStat::new(paths, clock),
            snap: SnapshotCell::new(clock),
            scan_interval: std::time::Duration::ZERO,
            last_scan: None,
            sources: super::sources::Sources::new("processes"),
        }
    }

    /// Reads `/proc/stat` through `stat`, shared with other collectors.
    pub fn with_stat(mut self, stat: Arc<SharedStat>) -> Self {
        self.stat = stat;
        self
    }

    /// Re-scan every process at most this often (`collector.processes.scan_interval`).
    pub fn with_scan_interval(mut self, d: std::time::Duration) -> Self {
        self.scan_interval = d;
        self
    }
}

const PROCESS_COUNT: Metric<i64> = Metric::i64_up_down_counter("system.process.count", "{process}", "Total number of processes in each state")
    .attributes(&["process.state"])
    .source("/proc/PID/stat of every process, every scan_interval (default 60 s)");
const PROCESS_CREATED: Metric<u64> =
    Metric::u64_counter("system.process.created", "{process}", "Total number of processes and threads created since boot").source("/proc/stat processes");

/// The processes collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[PROCESS_COUNT.spec(), PROCESS_CREATED.spec()];

impl Collector for ProcessesCollector {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn register(&mut self, meter: &Meter) {
        let attrs: [[KeyValue; 1]; 5] = STATES.map(|s| [KeyValue::new("process.state", s)]);
        let snap = self.snap.clone();
        PROCESS_COUNT.register(meter, move |obs| {
            snap.with(|s| {
                for (n, a) in s.counts.iter().flatten().zip(&attrs) {
                    obs.observe(*n as i64, a);
                }
            });
        });
        let snap = self.snap.clone();
        PROCESS_CREATED.register(meter, move |obs| {
            snap.with(|s| {
                if let Some(c) = s.created {
                    obs.observe(c, &[]);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        // The `processes` line and the scan fail alone.
        self.sources.begin();
        let created = self.stat.with(|s| s.processes);
        let created = self.sources.check("stat", created);
        let due = match &self.last_scan {
            Some((at, _)) => at.elapsed() >= self.scan_interval,
            None => true,
        };
        if due {
            let scan = pid::count_states(&self.paths).map(|c| by_state(&c));
            self.last_scan = Some((std::time::Instant::now(), self.sources.check("scan", scan)));
        }
        let counts = self.last_scan.as_ref().and_then(|(_, c)| *c);
        self.snap.set(Snapshot { counts, created });
        self.sources.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{fixture_copy, of, value, write, Harness, Kind};
    use crate::procfs::fixture_paths;

    fn count(p: &[crate::collectors::testutil::Point], state: &str) -> Option<f64> {
        value(p, "system.process.count", &[("process.state", state)])
    }

    #[test]
    fn counts_each_process_of_the_5_15_tree_in_one_state() {
        let (dir, paths) = fixture_copy("linux-5.15-server");
        // The 5.15 tree has no /proc/stat; give it one.
        write(&dir, "proc/stat", "cpu 1 2 3 4\ncpu0 1 2 3 4\nprocesses 91234\nprocs_running 3\nprocs_blocked 2\n");
        let clock = TickClock::default();
        let mut c = ProcessesCollector::new(&paths, &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // pid 1 S, 2 S, 12 I, 4242 R, 4243 Z, 4244 D, 4245 T, 4246 t, 4247 X (not counted).
        assert_eq!(count(&p, "running"), Some(1.0));
        assert_eq!(count(&p, "sleeping"), Some(3.0));
        assert_eq!(count(&p, "blocked"), Some(1.0));
        assert_eq!(count(&p, "stopped"), Some(2.0));
        assert_eq!(count(&p, "defunct"), Some(1.0));
        assert_eq!(of(&p, "system.process.count").len(), 5);
        assert_eq!(of(&p, "system.process.count")[0].3, Kind::UpDownCounter);
        // procs_running/procs_blocked (threads) are not used.
        assert_eq!(value(&p, "system.process.created", &[]), Some(91234.0));
        assert_eq!(of(&p, "system.process.created")[0].3, Kind::Counter);
        assert_eq!(h.unit("system.process.count"), Some("{process}"));
    }

    #[test]
    fn the_process_scan_is_repeated_only_after_the_scan_interval() {
        let (dir, paths) = fixture_copy("linux-5.15-server");
        write(&dir, "proc/stat", "cpu 1 2 3 4\ncpu0 1 2 3 4\nprocesses 10\n");
        let clock = TickClock::default();
        let mut c = ProcessesCollector::new(&paths, &clock).with_scan_interval(std::time::Duration::from_secs(3600));
        let mut h = Harness::new(&clock, &mut c);
        assert_eq!(count(&h.tick(&mut c).unwrap(), "running"), Some(1.0));
        // pid 4242 stops running; the scan is not due, `created` is read every tick.
        write(&dir, "proc/4242/stat", &std::fs::read_to_string(dir.path().join("proc/4242/stat")).unwrap().replacen(") R ", ") S ", 1));
        write(&dir, "proc/stat", "cpu 1 2 3 4\ncpu0 1 2 3 4\nprocesses 11\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(count(&p, "running"), Some(1.0), "last scan's counts until the interval passes");
        assert_eq!(value(&p, "system.process.created", &[]), Some(11.0));
        let mut c2 = ProcessesCollector::new(&paths, &clock);
        let mut h2 = Harness::new(&clock, &mut c2);
        assert_eq!(count(&h2.tick(&mut c2).unwrap(), "running"), Some(0.0), "a zero interval scans every tick");
    }

    #[test]
    fn counts_the_captured_sleep_process_and_forks_of_the_6_18_vm() {
        let clock = TickClock::default();
        let mut c = ProcessesCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // proc/23887/stat is "S"; proc/1 has no stat; "processes 6457".
        assert_eq!(count(&p, "sleeping"), Some(1.0));
        assert_eq!(count(&p, "running"), Some(0.0));
        assert_eq!(value(&p, "system.process.created", &[]), Some(6457.0));
    }

    #[test]
    fn without_proc_stat_the_process_counts_are_still_reported() {
        // The 5.15 tree has process directories but no proc/stat.
        let clock = TickClock::default();
        let mut c = ProcessesCollector::new(&fixture_paths("linux-5.15-server"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).expect("the scan worked");
        assert!(!of(&p, "system.process.count").is_empty());
        assert!(of(&p, "system.process.created").is_empty());
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["stat"]);
    }

    #[test]
    fn fails_when_neither_proc_stat_nor_the_process_directories_can_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::units::HostPaths::under(dir.path().join("missing"));
        let clock = TickClock::default();
        let mut c = ProcessesCollector::new(&paths, &clock);
        let mut h = Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).is_err());
        assert!(h.collect().is_empty());
    }
}
