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

macro_rules! exporter_counter {
    ($meter:expr, $snap:expr, $name:literal, $unit:literal, $desc:literal, $field:ident) => {{
        let snap = $snap.clone();
        $meter
            .u64_observable_counter($name)
            .with_unit($unit)
            .with_description($desc)
            .with_callback(move |obs| {
                snap.with(|s: &Snapshot| {
                    for (k, e) in &s.exporters {
                        obs.observe(e.$field as u64, std::slice::from_ref(k));
                    }
                });
            })
            .build();
    }};
}

/// An up-down counter of one `ExporterStatus` field per exporter.
macro_rules! exporter_gauge {
    ($meter:expr, $snap:expr, $name:literal, $unit:literal, $desc:literal, $field:ident) => {{
        let snap = $snap.clone();
        $meter
            .i64_observable_up_down_counter($name)
            .with_unit($unit)
            .with_description($desc)
            .with_callback(move |obs| {
                snap.with(|s: &Snapshot| {
                    for (k, e) in &s.exporters {
                        obs.observe(e.$field as i64, std::slice::from_ref(k));
                    }
                });
            })
            .build();
    }};
}

impl Collector for SelfTelemetryCollector {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        meter
            .f64_observable_gauge("metricsd.collector.duration")
            .with_unit("s")
            .with_description("Duration of the collector's last refresh")
            .with_callback(move |obs| {
                snap.with(|s| s.collectors.iter().for_each(|(k, c)| obs.observe(c.last_duration_seconds, std::slice::from_ref(k))));
            })
            .build();
        let snap = self.snap.clone();
        meter
            .u64_observable_counter("metricsd.collector.errors")
            .with_unit("{error}")
            .with_description("Refreshes that failed or timed out")
            .with_callback(move |obs| {
                snap.with(|s| s.collectors.iter().for_each(|(k, c)| obs.observe(c.errors, std::slice::from_ref(k))));
            })
            .build();
        exporter_counter!(meter, self.snap, "metricsd.exporter.sent.points", "{point}", "Points delivered", sent_points);
        exporter_counter!(meter, self.snap, "metricsd.exporter.sent.payloads", "{payload}", "Payloads delivered", sent_payloads);
        exporter_counter!(meter, self.snap, "metricsd.exporter.failed.attempts", "{attempt}", "Send attempts that failed", failed_attempts);
        exporter_counter!(
            meter,
            self.snap,
            "metricsd.exporter.dropped.points",
            "{point}",
            "Points dropped (not retryable, retries exhausted, queue full, shutdown)",
            dropped_points
        );
        exporter_counter!(meter, self.snap, "metricsd.exporter.dropped.payloads", "{payload}", "Payloads dropped", dropped_payloads);
        exporter_counter!(meter, self.snap, "metricsd.exporter.rejected.points", "{point}", "Points the server rejected in a partial success", rejected_points);
        exporter_gauge!(meter, self.snap, "metricsd.exporter.queue.size", "By", "Bytes waiting in the exporter's memory queue", queue_bytes);
        exporter_gauge!(meter, self.snap, "metricsd.exporter.queue.length", "{payload}", "Payloads waiting in the exporter's memory queue", queue_length);
        exporter_gauge!(meter, self.snap, "metricsd.exporter.spool.size", "By", "Bytes of the exporter's disk spool", spool_bytes);
        exporter_gauge!(meter, self.snap, "metricsd.exporter.spool.length", "{payload}", "Payloads waiting in the exporter's disk spool", spool_records);
        let snap = self.snap.clone();
        meter
            .f64_observable_gauge("metricsd.exporter.send.duration")
            .with_unit("s")
            .with_description("Duration of the last successful send")
            .with_callback(move |obs| {
                snap.with(|s| {
                    for (k, e) in &s.exporters {
                        if let Some(d) = e.last_send_seconds {
                            obs.observe(d, std::slice::from_ref(k));
                        }
                    }
                });
            })
            .build();
        let snap = self.snap.clone();
        meter
            .f64_observable_counter("metricsd.process.cpu.time")
            .with_unit("s")
            .with_description("CPU time the agent used (user + system)")
            .with_callback(move |obs| {
                snap.with(|s| obs.observe(s.cpu_seconds, &[]));
            })
            .build();
        let snap = self.snap.clone();
        meter
            .i64_observable_up_down_counter("metricsd.process.memory.rss")
            .with_unit("By")
            .with_description("The agent's resident memory")
            .with_callback(move |obs| {
                snap.with(|s| obs.observe(s.rss_bytes as i64, &[]));
            })
            .build();
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
