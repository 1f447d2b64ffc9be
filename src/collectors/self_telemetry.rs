//! The agent's own telemetry (`metricsd.*`), reported through the same pipeline as everything
//! else and shown on `/status`: per collector refresh duration and errors, per exporter
//! delivered / failed / dropped points and payloads, send latency and queue size, and the
//! agent's own CPU time (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`: every thread's, to the
//! nanosecond, with no text to format and parse, where `/proc/self/stat` gives clock ticks)
//! and RSS (the second field of `/proc/self/statm`, in pages).
//!
//! ```text
//! 1375 1283 913 2283 0 1126 0
//! ```
//!
//! | metric | instrument | unit | attributes |
//! | --- | --- | --- | --- |
//! | `metricsd.collector.duration` | Gauge | s | `metricsd.collector` |
//! | `metricsd.collector.errors` | Counter | {error} | `metricsd.collector` |
//! | `metricsd.exporter.sent.points` / `.sent.payloads` | Counter | {point} / {payload} | `metricsd.exporter` |
//! | `metricsd.exporter.failed.attempts` | Counter | {attempt} | `metricsd.exporter` |
//! | `metricsd.exporter.dropped.points` / `.dropped.payloads` | Counter | {point} / {payload} | `metricsd.exporter` |
//! | `metricsd.exporter.rejected.points` | Counter | {point} | `metricsd.exporter` |
//! | `metricsd.exporter.queue.size` / `.queue.length` | UpDownCounter | By / {payload} | `metricsd.exporter` |
//! | `metricsd.exporter.spool.size` / `.spool.length` | UpDownCounter | By / {payload} | `metricsd.exporter` (0 without a spool) |
//! | `metricsd.exporter.send.duration` | Gauge | s | `metricsd.exporter` (last successful send) |
//! | `metricsd.process.cpu.time` | Counter | s | – |
//! | `metricsd.process.memory.rss` | UpDownCounter | By | – |
//!
//! Values are those of the previous tick (this tick's refreshes and sends are not over yet when
//! it is collected).

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::ProcFile;
use crate::status::{CollectorStatus, ExporterStatus, StatusSource};
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.agent`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfTelemetryConfig {
    /// Report the agent's own telemetry (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

#[derive(Default)]
struct Snapshot {
    collectors: Vec<(KeyValue, CollectorStatus)>,
    exporters: Vec<(KeyValue, ExporterStatus)>,
    cpu_seconds: f64,
    rss_bytes: u64,
}

/// Reads the agent's state and its own /proc entries.
pub struct SelfTelemetryCollector {
    state: Arc<dyn StatusSource>,
    snap: Arc<SnapshotCell<Snapshot>>,
    page_size: u64,
    /// `/proc/self/statm`, kept open.
    statm: ProcFile,
    /// The `metricsd.collector`/`metricsd.exporter` attributes made so far, reused every tick
    /// (a shared string: copying one is a reference count, not an allocation).
    names: Vec<KeyValue>,
}

impl SelfTelemetryCollector {
    /// A collector of `state`.
    pub fn new(state: Arc<dyn StatusSource>, clock: &TickClock) -> Self {
        // SAFETY: sysconf only reads a configuration value.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        SelfTelemetryCollector {
            state,
            snap: SnapshotCell::new(clock),
            page_size: if page > 0 { page as u64 } else { 4096 },
            statm: ProcFile::new("/proc/self/statm"),
            names: Vec::new(),
        }
    }
}

/// The attribute `key=name`, from `cache` or made once and kept there.
fn attr(cache: &mut Vec<KeyValue>, key: &'static str, name: &str) -> KeyValue {
    if let Some(kv) = cache.iter().find(|kv| kv.key.as_str() == key && kv.value.as_str() == name) {
        return kv.clone();
    }
    let kv = KeyValue::new(key, Arc::<str>::from(name));
    cache.push(kv.clone());
    kv
}

/// CPU time of every thread of this process, live and exited (seconds).
pub fn process_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

const COLLECTOR: [&str; 1] = ["metricsd.collector"];
const EXPORTER: [&str; 1] = ["metricsd.exporter"];
/// Where the exporters' figures come from.
const EXPORTER_STATE: &str = "the exporter's queue and retry state (the agent's /status)";

const COLLECTOR_DURATION: Metric<f64> = Metric::f64_gauge("metricsd.collector.duration", "s", "Duration of the collector's last refresh")
    .attributes(&COLLECTOR)
    .source("the scheduler's timing of each refresh")
    .agent_name();
const COLLECTOR_ERRORS: Metric<u64> = Metric::u64_counter("metricsd.collector.errors", "{error}", "Refreshes that failed or timed out")
    .attributes(&COLLECTOR)
    .source("the scheduler's count of failed refreshes")
    .agent_name();
const fn exporter<T>(m: Metric<T>) -> Metric<T> {
    m.attributes(&EXPORTER).source(EXPORTER_STATE).agent_name()
}
const SENT_POINTS: Metric<u64> = exporter(Metric::u64_counter("metricsd.exporter.sent.points", "{point}", "Points delivered"));
const SENT_PAYLOADS: Metric<u64> = exporter(Metric::u64_counter("metricsd.exporter.sent.payloads", "{payload}", "Payloads delivered"));
const FAILED_ATTEMPTS: Metric<u64> = exporter(Metric::u64_counter("metricsd.exporter.failed.attempts", "{attempt}", "Send attempts that failed"));
const DROPPED_POINTS: Metric<u64> =
    exporter(Metric::u64_counter("metricsd.exporter.dropped.points", "{point}", "Points dropped (not retryable, retries exhausted, queue full, shutdown)"));
const DROPPED_PAYLOADS: Metric<u64> = exporter(Metric::u64_counter("metricsd.exporter.dropped.payloads", "{payload}", "Payloads dropped"));
const REJECTED_POINTS: Metric<u64> =
    exporter(Metric::u64_counter("metricsd.exporter.rejected.points", "{point}", "Points the server rejected in a partial success"));
const QUEUE_SIZE: Metric<i64> = exporter(Metric::i64_up_down_counter("metricsd.exporter.queue.size", "By", "Bytes waiting in the exporter's memory queue"));
const QUEUE_LENGTH: Metric<i64> =
    exporter(Metric::i64_up_down_counter("metricsd.exporter.queue.length", "{payload}", "Payloads waiting in the exporter's memory queue"));
const SPOOL_SIZE: Metric<i64> = exporter(Metric::i64_up_down_counter("metricsd.exporter.spool.size", "By", "Bytes of the exporter's disk spool"));
const SPOOL_LENGTH: Metric<i64> =
    exporter(Metric::i64_up_down_counter("metricsd.exporter.spool.length", "{payload}", "Payloads waiting in the exporter's disk spool"));
const EXPORTER_SEND_DURATION: Metric<f64> = exporter(Metric::f64_gauge("metricsd.exporter.send.duration", "s", "Duration of the last successful send"));
const PROCESS_CPU_TIME: Metric<f64> = Metric::f64_counter("metricsd.process.cpu.time", "s", "CPU time the agent used (user + system)")
    .source("clock_gettime(CLOCK_PROCESS_CPUTIME_ID)")
    .agent_name();
const PROCESS_MEMORY_RSS: Metric<i64> = Metric::i64_up_down_counter("metricsd.process.memory.rss", "By", "The agent's resident memory")
    .source("/proc/self/statm resident × page size")
    .agent_name();

/// The agent's own metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    COLLECTOR_DURATION.spec(),
    COLLECTOR_ERRORS.spec(),
    SENT_POINTS.spec(),
    SENT_PAYLOADS.spec(),
    FAILED_ATTEMPTS.spec(),
    DROPPED_POINTS.spec(),
    DROPPED_PAYLOADS.spec(),
    REJECTED_POINTS.spec(),
    QUEUE_SIZE.spec(),
    QUEUE_LENGTH.spec(),
    SPOOL_SIZE.spec(),
    SPOOL_LENGTH.spec(),
    EXPORTER_SEND_DURATION.spec(),
    PROCESS_CPU_TIME.spec(),
    PROCESS_MEMORY_RSS.spec(),
];

/// A counter of one `ExporterStatus` field per exporter.
fn exporter_counter(meter: &Meter, snap: &Arc<SnapshotCell<Snapshot>>, metric: Metric<u64>, field: fn(&ExporterStatus) -> u64) {
    let snap = snap.clone();
    metric.register(meter, move |obs| {
        snap.with(|s| {
            for (k, e) in &s.exporters {
                obs.observe(field(e), std::slice::from_ref(k));
            }
        });
    });
}

/// An up-down counter of one `ExporterStatus` field per exporter.
fn exporter_gauge(meter: &Meter, snap: &Arc<SnapshotCell<Snapshot>>, metric: Metric<i64>, field: fn(&ExporterStatus) -> i64) {
    let snap = snap.clone();
    metric.register(meter, move |obs| {
        snap.with(|s| {
            for (k, e) in &s.exporters {
                obs.observe(field(e), std::slice::from_ref(k));
            }
        });
    });
}

impl Collector for SelfTelemetryCollector {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        COLLECTOR_DURATION.register(meter, move |obs| {
            snap.with(|s| s.collectors.iter().for_each(|(k, c)| obs.observe(c.last_duration_seconds, std::slice::from_ref(k))));
        });
        let snap = self.snap.clone();
        COLLECTOR_ERRORS.register(meter, move |obs| {
            snap.with(|s| s.collectors.iter().for_each(|(k, c)| obs.observe(c.errors, std::slice::from_ref(k))));
        });
        exporter_counter(meter, &self.snap, SENT_POINTS, |e| e.sent_points);
        exporter_counter(meter, &self.snap, SENT_PAYLOADS, |e| e.sent_payloads);
        exporter_counter(meter, &self.snap, FAILED_ATTEMPTS, |e| e.failed_attempts);
        exporter_counter(meter, &self.snap, DROPPED_POINTS, |e| e.dropped_points);
        exporter_counter(meter, &self.snap, DROPPED_PAYLOADS, |e| e.dropped_payloads);
        exporter_counter(meter, &self.snap, REJECTED_POINTS, |e| e.rejected_points);
        exporter_gauge(meter, &self.snap, QUEUE_SIZE, |e| e.queue_bytes as i64);
        exporter_gauge(meter, &self.snap, QUEUE_LENGTH, |e| e.queue_length as i64);
        exporter_gauge(meter, &self.snap, SPOOL_SIZE, |e| e.spool_bytes as i64);
        exporter_gauge(meter, &self.snap, SPOOL_LENGTH, |e| e.spool_records as i64);
        let snap = self.snap.clone();
        EXPORTER_SEND_DURATION.register(meter, move |obs| {
            snap.with(|s| {
                for (k, e) in &s.exporters {
                    if let Some(d) = e.last_send_seconds {
                        obs.observe(d, std::slice::from_ref(k));
                    }
                }
            });
        });
        let snap = self.snap.clone();
        PROCESS_CPU_TIME.register(meter, move |obs| {
            snap.with(|s| obs.observe(s.cpu_seconds, &[]));
        });
        let snap = self.snap.clone();
        PROCESS_MEMORY_RSS.register(meter, move |obs| {
            snap.with(|s| obs.observe(s.rss_bytes as i64, &[]));
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let mut s = self.snap.take().unwrap_or_default();
        s.collectors.clear();
        for (name, st) in self.state.collector_statuses() {
            s.collectors.push((attr(&mut self.names, "metricsd.collector", &name), st));
        }
        s.exporters.clear();
        for e in self.state.exporter_statuses() {
            s.exporters.push((attr(&mut self.names, "metricsd.exporter", &e.name), e));
        }
        s.cpu_seconds = process_cpu_seconds();
        s.rss_bytes = self.statm.read()?.split_ascii_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * self.page_size;
        self.snap.set(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil;

    /// utime + stime of this process from `/proc/self/stat`, in seconds.
    fn proc_stat_cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_ascii_whitespace().collect();
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / hz
    }

    #[test]
    fn process_cpu_time_grows_with_work_and_agrees_with_proc_self_stat() {
        let before = process_cpu_seconds();
        // Spin for 60 ms of this thread's own CPU time (not wall time: on a loaded machine the
        // thread may be off the CPU for most of 60 ms of wall time).
        let thread_cpu = || {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes only the timespec it is given.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
        };
        let (mut x, start) = (0u64, thread_cpu());
        while thread_cpu() - start < 0.06 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds() - before >= 0.06, "60 ms of spinning shows");
        // /proc counts clock ticks of every thread: it brackets the clock within a few ticks.
        let (a, c, b) = (proc_stat_cpu_seconds(), process_cpu_seconds(), proc_stat_cpu_seconds());
        assert!(c >= a - 0.05 && c <= b + 0.05, "/proc {a}..{b}, clock {c}");
    }

    struct Fixed(Vec<(String, CollectorStatus)>);

    impl StatusSource for Fixed {
        fn collector_statuses(&self) -> Vec<(String, CollectorStatus)> {
            self.0.clone()
        }
        fn exporter_statuses(&self) -> Vec<ExporterStatus> {
            Vec::new()
        }
    }

    #[test]
    fn reports_collector_and_exporter_counters_from_the_agent_state() {
        let state = Fixed(vec![("memory".into(), CollectorStatus { last_duration_seconds: 0.25, last_error: None, errors: 3, refreshes: 9 })]);
        let clock = TickClock::default();
        let mut c = SelfTelemetryCollector::new(Arc::new(state), &clock);
        let points = testutil::collect_once(&clock, &mut c);
        assert_eq!(testutil::value(&points, "metricsd.collector.duration", &[("metricsd.collector", "memory")]), Some(0.25));
        assert_eq!(testutil::value(&points, "metricsd.collector.errors", &[("metricsd.collector", "memory")]), Some(3.0));
        assert!(testutil::value(&points, "metricsd.process.memory.rss", &[]).unwrap() > 1_000_000.0);
        assert!(testutil::value(&points, "metricsd.process.cpu.time", &[]).unwrap() >= 0.0);
    }
}
