//! The textfile collector, as node_exporter's `--collector.textfile.directory`: every `*.prom`
//! file of a directory, written by cron jobs and scripts (apt, smartmon, ipmitool, md...), is
//! read each tick, parsed with the scrape parser ([`crate::scrape::text`], Prometheus text
//! 0.0.4) and converted as scraped metrics are ([`crate::scrape::convert`]), under the
//! `metricsd/textfile` scope of the host's resource (not a resource of its own).
//!
//! ```text
//! # HELP apt_upgrades_pending Apt packages pending updates by origin.
//! # TYPE apt_upgrades_pending gauge
//! apt_upgrades_pending{origin="Debian:bookworm-security/stable-security",arch="amd64"} 3
//! ```
//!
//! **Which files.** Names ending in `.prom` directly in the directory (no recursion; dotfiles,
//! `*.prom.tmp` and other names ignored), sorted by name, the first `max_files`. Each is opened
//! once and read whole ([`read`]): a file a job replaces by rename is always one complete
//! version. Only regular files on the directory's filesystem are read.
//!
//! **A broken file** — unreadable, too big, not UTF-8, a malformed line (a file cut mid-line by
//! a job that wrote it in place), samples with their own timestamps (node_exporter refuses them
//! too), or over the sample limit — is left out whole, as node_exporter does:
//! `metricsd.textfile.scrape_error{file.path}` is 1 and one warning names the file and the
//! first bad line (once per distinct error; the recovery is logged too). The other files go on.
//!
//! **Duplicates.** A series (name and labels) already read earlier in the same file or in a
//! file before it by name is dropped, as is a metric whose name another file gave another type;
//! node_exporter fails the whole collection instead. The series dropped are counted per file in
//! `metricsd.textfile.duplicate_series` and logged once per file.
//!
//! | metric | instrument, unit | attributes |
//! | --- | --- | --- |
//! | `metricsd.textfile.scrape_error` | Gauge, 1 | `file.path` |
//! | `metricsd.textfile.mtime` | Gauge, s | `file.path` |
//! | `metricsd.textfile.duplicate_series` | Gauge, {series} | `file.path` |
//!
//! The collector runs beside the others on a blocking thread, under `collector.timeout` (a
//! directory on a hung network filesystem cannot stall the tick), and the parse of the whole
//! directory has a time budget of its own ([`config::PARSE_TIME_BUDGET`]).

pub mod config;
pub mod read;
#[cfg(test)]
mod tests;

use super::instruments::{ByDefault, Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::scrape::convert::{ConvertOptions, Converter};
use crate::scrape::limits::LimitError;
use crate::scrape::text::{parse_limited, Family, TextFormat};
pub use config::TextfileConfig;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric as OtlpMetric, ScopeMetrics};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Instrumentation scope of the files' metrics.
pub const SCOPE_NAME: &str = "metricsd/textfile";

const SOURCE: &str = "*.prom files of collector.textfile.directory";
const SCRAPE_ERROR: Metric<i64> =
    Metric::i64_gauge("metricsd.textfile.scrape_error", "1", "1 if the textfile could not be read or parsed (its metrics are left out), else 0")
        .attributes(&["file.path"])
        .source(SOURCE)
        .by_default(ByDefault::Off)
        .agent_name();
const MTIME: Metric<f64> = Metric::f64_gauge("metricsd.textfile.mtime", "s", "Modification time of the textfile, Unix seconds")
    .attributes(&["file.path"])
    .source(SOURCE)
    .by_default(ByDefault::Off)
    .agent_name();
const DUPLICATES: Metric<i64> = Metric::i64_gauge(
    "metricsd.textfile.duplicate_series",
    "{series}",
    "Series of the textfile dropped: read before in it or in a file before it by name, or named with another type there",
)
.attributes(&["file.path"])
.source(SOURCE)
.by_default(ByDefault::Off)
.agent_name();

/// The textfile collector's own metrics (the files' metrics are whatever they hold).
pub const METRICS: &[MetricSpec] = &[SCRAPE_ERROR.spec(), MTIME.spec(), DUPLICATES.spec()];

/// What one file gave this tick.
#[derive(Debug)]
struct FileState {
    attr: [KeyValue; 1],
    error: bool,
    mtime: Option<f64>,
    duplicates: u64,
}

/// What one tick's read of the files builds up.
#[derive(Default)]
struct Merged {
    metrics: Vec<OtlpMetric>,
    by_name: HashMap<String, usize>,
    seen: HashSet<String>,
    samples: usize,
}

/// Reads the directory every tick.
pub struct TextfileCollector {
    config: TextfileConfig,
    snap: Arc<SnapshotCell<Vec<FileState>>>,
    /// Counter start times, per file name.
    converters: HashMap<String, Converter>,
    pending: Option<ScopeMetrics>,
    /// The error last logged per file name (`""` for duplicates only).
    logged: HashMap<String, String>,
    logged_skipped: usize,
}

impl TextfileCollector {
    /// A collector of `config.directory`.
    pub fn new(config: &TextfileConfig, clock: &TickClock) -> Self {
        TextfileCollector {
            config: config.clone(),
            snap: SnapshotCell::new(clock),
            converters: HashMap::new(),
            pending: None,
            logged: HashMap::new(),
            logged_skipped: 0,
        }
    }

    /// Reads, parses and converts one file into `merged`, returning its state and its error.
    fn file(&mut self, dir: &Path, dev: u64, name: &str, deadline: Instant, now_ns: u64, merged: &mut Merged) -> (FileState, Result<(), String>) {
        let path = dir.join(name);
        let mut st = FileState { attr: [KeyValue::new("file.path", path.display().to_string())], error: true, mtime: None, duplicates: 0 };
        let bytes = match read::read(&path, dev, self.config.file_size_limit.0) {
            Ok(f) => {
                st.mtime = Some(f.mtime);
                f.bytes
            }
            Err((e, mtime)) => {
                st.mtime = mtime;
                return (st, Err(e.to_string()));
            }
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
                return (st, Err(format!("line {line}: not valid UTF-8")));
            }
        };
        let time_left = deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() {
            return (st, Err(format!("not parsed: the directory's parse time budget ({:?}) is used up", config::PARSE_TIME_BUDGET)));
        }
        let limit = self.config.sample_limit;
        let samples_left = (limit != 0).then(|| limit.saturating_sub(merged.samples));
        let over = || LimitError::Samples { limit }.to_string() + " in the directory's files together";
        if samples_left == Some(0) {
            return (st, Err(over()));
        }
        let mut parsed = match parse_limited(text, TextFormat::Prometheus, &self.config.file_limits(samples_left, time_left)) {
            Ok(p) => p,
            Err((LimitError::Samples { .. }, _)) => return (st, Err(over())),
            Err((e, _)) => return (st, Err(e.to_string())),
        };
        if let Some(first) = parsed.errors.first() {
            let more = parsed.error_count.saturating_sub(1);
            let more = if more > 0 { format!(" (and {more} more bad lines)") } else { String::new() };
            return (st, Err(format!("{first}{more}")));
        }
        if let Some(f) = parsed.families.iter().find(|f| f.samples.iter().any(|s| s.timestamp_ms.is_some())) {
            return (st, Err(format!("{}: samples with their own timestamps are not supported in textfiles", f.name)));
        }
        merged.samples = merged.samples.saturating_add(parsed.samples);
        st.duplicates = drop_seen(&mut parsed.families, &mut merged.seen);
        let opts = ConvertOptions { now_ns, prefix: "", labels: &[] };
        let converted = self.converters.entry(name.to_string()).or_default().convert(&parsed.families, &opts);
        for m in converted {
            st.duplicates = st.duplicates.saturating_add(merge(merged, m));
        }
        st.error = false;
        (st, Ok(()))
    }

    /// Logs a file's error once per distinct error, and its recovery.
    fn log(&mut self, path: &Path, name: &str, r: &Result<(), String>, duplicates: u64) {
        let now = match r {
            Err(e) => e.clone(),
            Ok(()) if duplicates > 0 => String::new(),
            Ok(()) => {
                if self.logged.remove(name).is_some_and(|e| !e.is_empty()) {
                    tracing::info!(file = %path.display(), "Textfile readable again");
                }
                return;
            }
        };
        if self.logged.get(name) == Some(&now) {
            return;
        }
        if now.is_empty() {
            tracing::warn!(file = %path.display(), duplicates, "Textfile repeats series read before (in it or a file before it by name); the repeats are dropped");
        } else {
            tracing::warn!(file = %path.display(), error = %now, "Textfile is broken; its metrics are left out until it is fixed");
        }
        self.logged.insert(name.to_string(), now);
    }
}

/// Drops every sample whose name and labels are in `seen` (adding the others); returns how
/// many were dropped.
fn drop_seen(families: &mut [Family], seen: &mut HashSet<String>) -> u64 {
    let mut dropped = 0u64;
    for f in families.iter_mut() {
        let kind = f.kind;
        let name = f.name.clone();
        f.samples.retain(|s| {
            let mut labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
            labels.sort_unstable();
            let mut key = String::with_capacity(64);
            key.push_str(&name);
            key.push_str(s.suffix.as_str(kind));
            for (k, v) in labels {
                key.push('\u{1}');
                key.push_str(k);
                key.push('\u{2}');
                key.push_str(v);
            }
            let new = seen.insert(key);
            dropped += u64::from(!new);
            new
        });
    }
    dropped
}

/// Adds `m` to the merged metrics: its points join a metric of the same name and type; a
/// metric whose name has another type already is dropped. Returns the points dropped.
fn merge(merged: &mut Merged, m: OtlpMetric) -> u64 {
    let Some(&i) = merged.by_name.get(&m.name) else {
        merged.by_name.insert(m.name.clone(), merged.metrics.len());
        merged.metrics.push(m);
        return 0;
    };
    match (&mut merged.metrics[i].data, m.data) {
        (Some(Data::Gauge(a)), Some(Data::Gauge(b))) => a.data_points.extend(b.data_points),
        (Some(Data::Sum(a)), Some(Data::Sum(b))) if a.is_monotonic == b.is_monotonic => a.data_points.extend(b.data_points),
        (Some(Data::Histogram(a)), Some(Data::Histogram(b))) => a.data_points.extend(b.data_points),
        (Some(Data::Summary(a)), Some(Data::Summary(b))) => a.data_points.extend(b.data_points),
        (_, other) => return points(other.as_ref()),
    }
    0
}

fn points(d: Option<&Data>) -> u64 {
    let n = match d {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        None => 0,
    };
    n as u64
}

impl Collector for TextfileCollector {
    fn name(&self) -> &'static str {
        "textfile"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        SCRAPE_ERROR.register(meter, move |obs| {
            snap.with(|files| files.iter().for_each(|f| obs.observe(i64::from(f.error), &f.attr)));
        });
        let snap = self.snap.clone();
        MTIME.register(meter, move |obs| {
            snap.with(|files| files.iter().for_each(|f| f.mtime.into_iter().for_each(|t| obs.observe(t, &f.attr))));
        });
        let snap = self.snap.clone();
        DUPLICATES.register(meter, move |obs| {
            snap.with(|files| files.iter().for_each(|f| obs.observe(i64::try_from(f.duplicates).unwrap_or(i64::MAX), &f.attr)));
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        self.pending = None;
        let Some(dir) = self.config.directory.clone() else { return Ok(()) };
        let other = |e: read::ReadError| CollectorError::Other { what: "textfile".into(), msg: e.to_string() };
        let dev = read::dir_device(&dir).map_err(other)?;
        let (names, skipped) = read::list(&dir, self.config.max_files).map_err(other)?;
        if skipped != self.logged_skipped {
            if skipped > 0 {
                tracing::warn!(dir = %dir.display(), skipped, max_files = self.config.max_files, "More textfiles than max_files; the last by name are not read");
            }
            self.logged_skipped = skipped;
        }
        let deadline = crate::units::duration::deadline_after(Instant::now(), config::PARSE_TIME_BUDGET);
        let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut merged = Merged::default();
        let mut states = Vec::with_capacity(names.len());
        for name in &names {
            let (st, r) = self.file(&dir, dev, name, deadline, now_ns, &mut merged);
            self.log(&dir.join(name), name, &r, st.duplicates);
            states.push(st);
        }
        self.converters.retain(|n, _| names.contains(n));
        self.logged.retain(|n, _| names.contains(n));
        self.snap.set(states);
        if !merged.metrics.is_empty() {
            self.pending = Some(ScopeMetrics {
                scope: Some(InstrumentationScope { name: SCOPE_NAME.into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() }),
                metrics: merged.metrics,
                schema_url: String::new(),
            });
        }
        Ok(())
    }

    fn may_block(&self) -> bool {
        true
    }

    fn take_scope_metrics(&mut self) -> Option<ScopeMetrics> {
        self.pending.take()
    }
}
