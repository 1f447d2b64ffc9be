//! The one OpenTelemetry → Prometheus translation, shared by the `/metrics` endpoint, the
//! remote-write exporter and the HTTP JSON exporter.
//!
//! The rules are those of the OpenTelemetry Collector's `prometheus` and
//! `prometheusremotewrite` exporters (`pkg/translator/prometheus` and
//! `pkg/translator/prometheusremotewrite` in opentelemetry-collector-contrib, since moved to
//! `github.com/prometheus/otlptranslator`), which implement the OpenTelemetry specification
//! "Prometheus and OpenMetrics Compatibility". Each function cites the rule it follows; where
//! metricsd deliberately differs it says so.
//!
//! Examples (the README's):
//!
//! | OTel name | unit | instrument | Prometheus name |
//! | --- | --- | --- | --- |
//! | `system.network.io` | `By` | monotonic cumulative sum | `system_network_io_bytes_total` |
//! | `system.memory.utilization` | `1` | gauge | `system_memory_utilization_ratio` |
//! | `system.cpu.load_average.1m` | `{run_queue_item}` | gauge | `system_cpu_load_average_1m` |
//! | `system.disk.io_time` | `s` | monotonic cumulative sum | `system_disk_io_time_seconds_total` |
//! | `system.memory.usage` | `By` | non-monotonic sum | `system_memory_usage_bytes` (a gauge) |
//!
//! What is dropped (counted in [`TranslateStats`], never silently): DELTA sums and DELTA
//! histograms (metricsd exports cumulative; a delta point cannot become a Prometheus counter
//! without state, and the Collector's remote-write exporter drops them too), points of metrics
//! whose temporality is UNSPECIFIED, exponential histograms (remote-write 1.0 has no native
//! histograms), and points without a value or flagged "no recorded value" (no stale markers yet).

use std::collections::HashMap;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, SummaryDataPoint,
};

/// Name of the per-resource info metric (OTel spec: "Resource Attributes" → `target_info`).
pub const TARGET_INFO: &str = "target_info";
/// Help text of `target_info`, as the Collector writes it.
pub const TARGET_INFO_HELP: &str = "Target metadata";

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const HOST_NAME: &str = "host.name";

/// How [`translate`] builds series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Resource attribute keys (OTel spelling, e.g. `host.name`) copied as labels onto every
    /// series of that resource. A data point attribute with the same key wins, as in the
    /// Collector's `resource_to_telemetry_conversion`/promotion.
    pub promote_resource_attributes: Vec<String>,
    /// Emit one `target_info` gauge per resource (default `true`).
    pub add_target_info: bool,
    /// Labels added to every series that does not already have a label of that name
    /// (Prometheus semantics: external labels never override a series' own labels).
    pub external_labels: Vec<(String, String)>,
    /// Namespace prepended as `<prefix>_` to every metric name, `target_info` included
    /// (the Collector's `namespace` setting).
    pub name_prefix: Option<String>,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        Self { promote_resource_attributes: Vec::new(), add_target_info: true, external_labels: Vec::new(), name_prefix: None }
    }
}

/// Prometheus metric type of a [`Family`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Unknown,
}

impl Kind {
    /// The word used on a `# TYPE` line of the text exposition format 0.0.4.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Unknown => "untyped",
        }
    }
}

/// What the OTel metric is, as far as naming is concerned (the Collector's
/// `otlptranslator.MetricType`). Only `MonotonicCounter` gets `_total` and only `Gauge` with
/// unit `1` gets `_ratio`; a non-monotonic sum is exported as a gauge but named without
/// `_ratio`, exactly as the Collector does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Gauge,
    MonotonicCounter,
    NonMonotonicCounter,
    Histogram,
    Summary,
    Unknown,
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sorted by name (byte order), names unique, `__name__` included, no empty values.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch (from the point's `time_unix_nano`).
    pub timestamp_ms: i64,
}

impl Sample {
    /// The value of `__name__`.
    pub fn name(&self) -> &str {
        self.label("__name__").unwrap_or("")
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| self.labels[i].1.as_str())
    }
}

/// All samples of one metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Base name: the `__name__` of counters and gauges (`_total` included), the name before
    /// `_bucket`/`_sum`/`_count` for histograms and summaries.
    pub name: String,
    pub kind: Kind,
    /// The OTel description.
    pub help: String,
    /// The Prometheus unit word (`bytes`, `seconds`, `bytes_per_second`, `ratio`), empty for
    /// dimensionless and `{annotation}` units (what remote-write metadata carries).
    pub unit: String,
    pub samples: Vec<Sample>,
}

/// What [`translate`] dropped, in data points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranslateStats {
    /// Points of DELTA sums and DELTA histograms.
    pub dropped_delta: usize,
    /// Points of exponential histograms, of metrics with UNSPECIFIED temporality and of
    /// metrics whose name sanitises to nothing.
    pub dropped_unsupported: usize,
    /// Points without a value or flagged `NO_RECORDED_VALUE`.
    pub dropped_no_value: usize,
}

impl TranslateStats {
    pub fn dropped(&self) -> usize {
        self.dropped_delta + self.dropped_unsupported + self.dropped_no_value
    }
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// UCUM unit → Prometheus unit word (the Collector's `unitMap`). Units not listed are used
/// as written, sanitised.
fn main_unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The unit after `/` (the Collector's `perUnitMap`, singular).
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// Splits into the tokens the Collector joins with `_`: runs of `[a-zA-Z0-9:]`. Every other
/// character (and `_` itself) separates tokens, so invalid characters become `_`, repeated
/// `_` collapse and leading/trailing `_` disappear. `:` is kept, as Prometheus'
/// otlptranslator keeps it; non-ASCII letters are replaced (legacy Prometheus names are
/// ASCII only).
fn name_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')).filter(|t| !t.is_empty())
}

/// `CleanUpString` of the Collector: alphanumeric runs joined with `_`.
fn clean_up(s: &str) -> String {
    let mut out = String::new();
    for t in s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(t);
    }
    out
}

/// Unit suffix tokens for `unit`: main unit (unless empty, `{…}` or already a token of the
/// name), then `per` + per-unit under the same conditions (Collector `normalizeName`).
fn push_unit_tokens(tokens: &mut Vec<String>, unit: &str) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.trim(), None),
    };
    let is_annotation = |u: &str| u.contains('{') || u.contains('}');
    if !main.is_empty() && !is_annotation(main) {
        let word = clean_up(main_unit_word(main));
        if !word.is_empty() && !tokens.contains(&word) {
            tokens.push(word);
        }
    }
    if let Some(per) = per {
        if !per.is_empty() && !is_annotation(per) {
            let word = clean_up(per_unit_word(per));
            if !word.is_empty() && !tokens.contains(&word) {
                tokens.push("per".to_string());
                tokens.push(word);
            }
        }
    }
}

/// Prometheus metric name of an OTel metric (Collector `BuildCompliantName` with suffixes,
/// i.e. `normalizeName`):
///
/// 1. the name is split into tokens of `[a-zA-Z0-9:]` (so `.`, `-`, `/`… become `_` and
///    repeated `_` collapse);
/// 2. the unit suffix is appended unless the name already has that token: `By`→`bytes`,
///    `s`→`seconds`, `ms`→`milliseconds`, `Hz`→`hertz`, `Cel`→`celsius`, `W`→`watts`,
///    `J`→`joules` (full table in `main_unit_word`), unknown units as written; `{…}` units add
///    nothing; `a/b` adds `a_per_b` with the per-unit singular (`By/s` → `bytes_per_second`);
/// 3. monotonic counters get `_total` (any other `total` token is moved to the end, so it is
///    never doubled);
/// 4. gauges of unit `1` get `_ratio` (likewise never doubled);
/// 5. a name starting with a digit gets a `_` prefix.
///
/// Returns an empty string when nothing valid is left (the caller drops such metrics).
pub fn metric_name(otel_name: &str, unit: &str, kind_hint: NameKind) -> String {
    metric_name_with_prefix(None, otel_name, unit, kind_hint)
}

/// [`metric_name`] with the Collector's `namespace` prepended as a token.
pub fn metric_name_with_prefix(prefix: Option<&str>, otel_name: &str, unit: &str, kind_hint: NameKind) -> String {
    let mut tokens: Vec<String> = name_tokens(otel_name).map(str::to_string).collect();
    if tokens.is_empty() {
        return String::new();
    }
    push_unit_tokens(&mut tokens, unit);
    if kind_hint == NameKind::MonotonicCounter {
        tokens.retain(|t| t != "total");
        tokens.push("total".to_string());
    }
    if kind_hint == NameKind::Gauge && unit == "1" {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".to_string());
    }
    let mut name = String::with_capacity(otel_name.len() + 16);
    if let Some(prefix) = prefix {
        for t in name_tokens(prefix) {
            name.push_str(t);
            name.push('_');
        }
    }
    name.push_str(&tokens.join("_"));
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The Prometheus unit word carried in [`Family::unit`]: `bytes`, `seconds`,
/// `bytes_per_second`, `ratio` for gauges of unit `1`, empty for `{…}` and other
/// dimensionless units.
pub fn prometheus_unit(unit: &str, kind_hint: NameKind) -> String {
    if unit == "1" {
        return if kind_hint == NameKind::Gauge { "ratio".to_string() } else { String::new() };
    }
    let mut tokens = Vec::new();
    push_unit_tokens(&mut tokens, unit);
    tokens.join("_")
}

/// Prometheus label name of an attribute key (Collector `NormalizeLabel`): every character
/// outside `[a-zA-Z0-9_]` becomes `_` (one `_` per character: label names are not
/// collapsed, as in the Collector), a leading digit gets `key_`, a single leading `_` gets
/// `key` (`_foo` → `key_foo`); names starting with `__` are kept.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// Label value of an attribute (the Collector's `pcommon.Value.AsString`): strings as is;
/// ints in decimal; doubles as JSON/ES6 numbers (`0.5`, `1e+21`, `1e-7`; NaN and ±Inf as
/// `NaN`, `+Inf`, `-Inf`); bools `true`/`false`; bytes base64 (standard alphabet, padded);
/// arrays and key-value lists as compact JSON (`["a",1]`, `{"k":"v"}`); an absent value or a
/// profiling string-table reference is empty (and an empty label is dropped).
pub fn attribute_value(v: Option<&AnyValue>) -> String {
    let mut out = String::new();
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(any_value::Value::StringValueStrindex(_)) => {}
        Some(any_value::Value::StringValue(s)) => out.push_str(s),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => write_es6_number(&mut out, *d, false),
        Some(any_value::Value::BytesValue(b)) => base64(&mut out, b),
        Some(any_value::Value::ArrayValue(_)) | Some(any_value::Value::KvlistValue(_)) => write_json(&mut out, v.and_then(|v| v.value.as_ref())),
    }
    out
}

/// ES6 number-to-string (what Go's pcommon uses for doubles): plain decimal unless
/// `|d| < 1e-6` or `|d| >= 1e21`, then exponent form with a sign (`1e+21`).
fn write_es6_number(out: &mut String, d: f64, json: bool) {
    if d.is_nan() {
        out.push_str(if json { "null" } else { "NaN" });
    } else if d.is_infinite() {
        out.push_str(match (json, d > 0.0) {
            (true, _) => "null",
            (false, true) => "+Inf",
            (false, false) => "-Inf",
        });
    } else {
        let a = d.abs();
        if a != 0.0 && !(1e-6..1e21).contains(&a) {
            let s = format!("{d:e}");
            match s.split_once('e') {
                Some((m, e)) if !e.starts_with('-') => {
                    let _ = write!(out, "{m}e+{e}");
                }
                _ => out.push_str(&s),
            }
        } else {
            let _ = write!(out, "{d}");
        }
    }
}

fn write_json(out: &mut String, v: Option<&any_value::Value>) {
    match v {
        None | Some(any_value::Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(any_value::Value::StringValue(s)) => json_string(out, s),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => write_es6_number(out, *d, true),
        Some(any_value::Value::BytesValue(b)) => {
            out.push('"');
            base64(out, b);
            out.push('"');
        }
        Some(any_value::Value::ArrayValue(a)) => {
            out.push('[');
            for (i, e) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, e.value.as_ref());
            }
            out.push(']');
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            out.push('{');
            for (i, e) in kv.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, &e.key);
                out.push(':');
                write_json(out, e.value.as_ref().and_then(|v| v.value.as_ref()));
            }
            out.push('}');
        }
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn base64(out: &mut String, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// `le` and `quantile` values: Go's `strconv.FormatFloat(f, 'f', -1, 64)` (shortest
/// round-trip decimal, never an exponent), `+Inf`/`-Inf`/`NaN` for the special values.
fn format_bound(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// A sample value in the text format: `NaN`, `+Inf`, `-Inf`, otherwise the shortest
/// round-trip decimal, in exponent form outside `[1e-4, 1e21)` to keep lines short.
fn write_sample_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let a = v.abs();
        if a != 0.0 && !(1e-4..1e21).contains(&a) {
            let _ = write!(out, "{v:e}");
        } else {
            let _ = write!(out, "{v}");
        }
    }
}

fn nanos_to_ms(t: u64) -> i64 {
    (t / 1_000_000) as i64
}

// ---------------------------------------------------------------------------------------------
// Translation
// ---------------------------------------------------------------------------------------------

/// Per-resource state computed once.
struct ResourceCtx<'a> {
    /// `service.namespace/service.name` or `service.name`.
    job: Option<String>,
    /// `service.instance.id`, else `host.name` (metricsd's default; the Collector has none).
    instance: Option<String>,
    instance_from_host_name: bool,
    /// Promoted resource attributes: (raw key, value).
    promoted: Vec<(&'a str, String)>,
    /// Sanitised external labels.
    external: &'a [(String, String)],
}

fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

fn non_empty_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    find_attr(attrs, key).map(|kv| attribute_value(kv.value.as_ref())).filter(|v| !v.is_empty())
}

impl<'a> ResourceCtx<'a> {
    fn new(attrs: &'a [KeyValue], opts: &'a TranslateOptions, external: &'a [(String, String)]) -> Self {
        // Collector `createAttributes`: job = "<service.namespace>/<service.name>" when both
        // exist, else service.name; instance = service.instance.id.
        let job = non_empty_attr(attrs, SERVICE_NAME).map(|name| match non_empty_attr(attrs, SERVICE_NAMESPACE) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        let (instance, instance_from_host_name) = match non_empty_attr(attrs, SERVICE_INSTANCE_ID) {
            Some(id) => (Some(id), false),
            None => match non_empty_attr(attrs, HOST_NAME) {
                Some(h) => (Some(h), true),
                None => (None, false),
            },
        };
        let promoted = opts
            .promote_resource_attributes
            .iter()
            .filter_map(|key| {
                let kv = find_attr(attrs, key)?;
                let v = attribute_value(kv.value.as_ref());
                (!v.is_empty()).then_some((kv.key.as_str(), v))
            })
            .collect();
        Self { job, instance, instance_from_host_name, promoted, external }
    }

    /// Labels of one series (Collector `createAttributes`, in its order):
    /// 1. data point attributes plus promoted resource attributes (a point attribute of the
    ///    same key wins), empty values skipped;
    /// 2. sorted by original key, names sanitised with [`label_name`]; keys that collide after
    ///    sanitising (`a.b`, `a_b`) are joined with `;` in that order;
    /// 3. `job` and `instance` from the resource override attributes of those names;
    /// 4. external labels are added where the name is still free;
    /// 5. `extra` (`__name__`, `le`, `quantile`) overrides anything.
    fn labels(&self, point_attrs: &[KeyValue], extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut raw: Vec<(&str, String)> = Vec::with_capacity(point_attrs.len() + self.promoted.len());
        for kv in point_attrs {
            if kv.key.is_empty() {
                continue;
            }
            let v = attribute_value(kv.value.as_ref());
            if !v.is_empty() {
                raw.push((kv.key.as_str(), v));
            }
        }
        for (k, v) in &self.promoted {
            if !point_attrs.iter().any(|kv| kv.key == *k) {
                raw.push((*k, v.clone()));
            }
        }
        raw.sort_by(|a, b| a.0.cmp(b.0));

        let mut labels: Vec<(String, String)> = Vec::with_capacity(raw.len() + 4 + self.external.len());
        for (k, v) in raw {
            let name = label_name(k);
            match labels.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(';');
                    existing.push_str(&v);
                }
                None => labels.push((name, v)),
            }
        }
        if let Some(job) = &self.job {
            set_label(&mut labels, "job", job);
        }
        if let Some(instance) = &self.instance {
            set_label(&mut labels, "instance", instance);
        }
        for (name, value) in self.external {
            if !labels.iter().any(|(n, _)| n == name) {
                labels.push((name.clone(), value.clone()));
            }
        }
        for (name, value) in extra {
            set_label(&mut labels, name, value);
        }
        labels.retain(|(n, v)| !n.is_empty() && !v.is_empty());
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels
    }
}

/// Sets `name` to `value`, replacing an existing label of that name.
fn set_label(labels: &mut Vec<(String, String)>, name: &str, value: &str) {
    match labels.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value.to_string(),
        None => labels.push((name.to_string(), value.to_string())),
    }
}

/// Collects families, merging those with the same name and kind (several resources or
/// scopes exporting the same metric) in order of first appearance.
#[derive(Default)]
struct Families {
    list: Vec<Family>,
    index: HashMap<(String, Kind), usize>,
}

impl Families {
    fn family(&mut self, name: &str, kind: Kind, help: &str, unit: &str) -> &mut Family {
        let key = (name.to_string(), kind);
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.list.push(Family { name: name.to_string(), kind, help: help.to_string(), unit: unit.to_string(), samples: Vec::new() });
                self.index.insert(key, self.list.len() - 1);
                self.list.len() - 1
            }
        };
        let f = &mut self.list[i];
        if f.help.is_empty() && !help.is_empty() {
            f.help = help.to_string();
        }
        f
    }
}

fn has_no_recorded_value(flags: u32) -> bool {
    flags & (DataPointFlags::NoRecordedValueMask as u32) != 0
}

/// Translates one OTLP batch into Prometheus metric families. See the module documentation
/// for the rules and what is dropped; `TranslateStats` counts the dropped points.
///
/// Families with the same name and type from different resources or scopes are merged.
/// Samples keep batch order; a series may appear more than once when the batch holds several
/// collections (remote-write wants them all; [`render_text`] keeps the newest).
pub fn translate(req: &ExportMetricsServiceRequest, opts: &TranslateOptions) -> (Vec<Family>, TranslateStats) {
    translate_resources(&req.resource_metrics, opts)
}

/// [`translate`] of some of a batch's resources (one at a time, say), without copying them
/// into a request of their own.
pub fn translate_resources<'r>(resources: impl IntoIterator<Item = &'r ResourceMetrics>, opts: &TranslateOptions) -> (Vec<Family>, TranslateStats) {
    let mut stats = TranslateStats::default();
    let mut fams = Families::default();
    let prefix = opts.name_prefix.as_deref().filter(|p| !p.is_empty());
    let external: Vec<(String, String)> =
        opts.external_labels.iter().map(|(k, v)| (label_name(k), v.clone())).filter(|(k, v)| !k.is_empty() && !v.is_empty()).collect();

    for rm in resources {
        let attrs: &[KeyValue] = rm.resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]);
        let ctx = ResourceCtx::new(attrs, opts, &external);
        let mut latest_ms: Option<i64> = None;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                if let Some(ts) = translate_metric(m, &ctx, prefix, &mut fams, &mut stats) {
                    latest_ms = Some(latest_ms.map_or(ts, |l| l.max(ts)));
                }
            }
        }
        if opts.add_target_info {
            if let Some(ts) = latest_ms {
                add_target_info(attrs, &ctx, prefix, ts, &mut fams);
            }
        }
    }
    (fams.list, stats)
}

/// `target_info` (Collector `addResourceTargetInfo`): one gauge of value 1 per resource,
/// stamped with the resource's newest point, labelled with `job`, `instance`, the external
/// labels and every resource attribute except those `job`/`instance` came from
/// (`service.name`, `service.namespace`, `service.instance.id`, or `host.name` when it
/// supplied `instance`). Not emitted when no other attribute is left or when the resource
/// has neither `job` nor `instance`.
fn add_target_info(attrs: &[KeyValue], ctx: &ResourceCtx<'_>, prefix: Option<&str>, ts: i64, fams: &mut Families) {
    let rest: Vec<KeyValue> = attrs
        .iter()
        .filter(|kv| {
            let k = kv.key.as_str();
            !(k == SERVICE_NAME || k == SERVICE_NAMESPACE || k == SERVICE_INSTANCE_ID || (k == HOST_NAME && ctx.instance_from_host_name))
        })
        .cloned()
        .collect();
    if rest.is_empty() || (ctx.job.is_none() && ctx.instance.is_none()) {
        return;
    }
    let name = metric_name_with_prefix(prefix, TARGET_INFO, "", NameKind::Gauge);
    // Promoted attributes are resource attributes already; don't add them twice.
    let info_ctx = ResourceCtx {
        job: ctx.job.clone(),
        instance: ctx.instance.clone(),
        instance_from_host_name: ctx.instance_from_host_name,
        promoted: Vec::new(),
        external: ctx.external,
    };
    let labels = info_ctx.labels(&rest, &[("__name__", &name)]);
    fams.family(&name, Kind::Gauge, TARGET_INFO_HELP, "").samples.push(Sample { labels, value: 1.0, timestamp_ms: ts });
}

/// Translates one metric; returns the newest timestamp among the points kept.
fn translate_metric(m: &Metric, ctx: &ResourceCtx<'_>, prefix: Option<&str>, fams: &mut Families, stats: &mut TranslateStats) -> Option<i64> {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let delta = AggregationTemporality::Delta as i32;
    match m.data.as_ref()? {
        Data::Gauge(g) => number_points(m, NameKind::Gauge, Kind::Gauge, &g.data_points, ctx, prefix, fams, stats),
        Data::Sum(s) if s.aggregation_temporality == cumulative => {
            // Monotonic cumulative sums are counters; non-monotonic sums are gauges
            // (Collector: "non-monotonic sums are converted to gauges").
            let (nk, k) = if s.is_monotonic { (NameKind::MonotonicCounter, Kind::Counter) } else { (NameKind::NonMonotonicCounter, Kind::Gauge) };
            number_points(m, nk, k, &s.data_points, ctx, prefix, fams, stats)
        }
        Data::Sum(s) => {
            if s.aggregation_temporality == delta {
                stats.dropped_delta += s.data_points.len();
            } else {
                stats.dropped_unsupported += s.data_points.len();
            }
            None
        }
        Data::Histogram(h) if h.aggregation_temporality == cumulative => histogram_points(m, &h.data_points, ctx, prefix, fams, stats),
        Data::Histogram(h) => {
            if h.aggregation_temporality == delta {
                stats.dropped_delta += h.data_points.len();
            } else {
                stats.dropped_unsupported += h.data_points.len();
            }
            None
        }
        Data::ExponentialHistogram(e) => {
            stats.dropped_unsupported += e.data_points.len();
            None
        }
        Data::Summary(s) => summary_points(m, &s.data_points, ctx, prefix, fams, stats),
    }
}

#[allow(clippy::too_many_arguments)]
fn number_points(
    m: &Metric,
    name_kind: NameKind,
    kind: Kind,
    points: &[NumberDataPoint],
    ctx: &ResourceCtx<'_>,
    prefix: Option<&str>,
    fams: &mut Families,
    stats: &mut TranslateStats,
) -> Option<i64> {
    let name = metric_name_with_prefix(prefix, &m.name, &m.unit, name_kind);
    if name.is_empty() {
        stats.dropped_unsupported += points.len();
        return None;
    }
    let unit = prometheus_unit(&m.unit, name_kind);
    let fam = fams.family(&name, kind, &m.description, &unit);
    let mut latest = None;
    for p in points {
        let value = match p.value {
            _ if has_no_recorded_value(p.flags) => None,
            Some(number_data_point::Value::AsDouble(d)) => Some(d),
            Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
            None => None,
        };
        let Some(value) = value else {
            stats.dropped_no_value += 1;
            continue;
        };
        let ts = nanos_to_ms(p.time_unix_nano);
        latest = latest.max(Some(ts));
        let labels = ctx.labels(&p.attributes, &[("__name__", &name)]);
        fam.samples.push(Sample { labels, value, timestamp_ms: ts });
    }
    latest
}

/// Histogram → `<name>_bucket{le}` with cumulative counts (OTLP buckets are per-bucket), a
/// `+Inf` bucket equal to the count, `<name>_sum` (when the point has a sum) and
/// `<name>_count` (Collector `addHistogramDataPoints`).
fn histogram_points(
    m: &Metric,
    points: &[HistogramDataPoint],
    ctx: &ResourceCtx<'_>,
    prefix: Option<&str>,
    fams: &mut Families,
    stats: &mut TranslateStats,
) -> Option<i64> {
    let name = metric_name_with_prefix(prefix, &m.name, &m.unit, NameKind::Histogram);
    if name.is_empty() {
        stats.dropped_unsupported += points.len();
        return None;
    }
    let unit = prometheus_unit(&m.unit, NameKind::Histogram);
    let (bucket, sum, count) = (format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count"));
    let fam = fams.family(&name, Kind::Histogram, &m.description, &unit);
    let mut latest = None;
    for p in points {
        if has_no_recorded_value(p.flags) {
            stats.dropped_no_value += 1;
            continue;
        }
        let ts = nanos_to_ms(p.time_unix_nano);
        latest = latest.max(Some(ts));
        let mut cum: u64 = 0;
        for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            cum = cum.saturating_add(*n);
            let le = format_bound(*bound);
            let labels = ctx.labels(&p.attributes, &[("__name__", &bucket), ("le", &le)]);
            fam.samples.push(Sample { labels, value: cum as f64, timestamp_ms: ts });
        }
        let labels = ctx.labels(&p.attributes, &[("__name__", &bucket), ("le", "+Inf")]);
        fam.samples.push(Sample { labels, value: p.count as f64, timestamp_ms: ts });
        if let Some(s) = p.sum {
            let labels = ctx.labels(&p.attributes, &[("__name__", &sum)]);
            fam.samples.push(Sample { labels, value: s, timestamp_ms: ts });
        }
        let labels = ctx.labels(&p.attributes, &[("__name__", &count)]);
        fam.samples.push(Sample { labels, value: p.count as f64, timestamp_ms: ts });
    }
    latest
}

/// Summary → `<name>{quantile}`, `<name>_sum`, `<name>_count` (Collector
/// `addSummaryDataPoints`).
fn summary_points(
    m: &Metric,
    points: &[SummaryDataPoint],
    ctx: &ResourceCtx<'_>,
    prefix: Option<&str>,
    fams: &mut Families,
    stats: &mut TranslateStats,
) -> Option<i64> {
    let name = metric_name_with_prefix(prefix, &m.name, &m.unit, NameKind::Summary);
    if name.is_empty() {
        stats.dropped_unsupported += points.len();
        return None;
    }
    let unit = prometheus_unit(&m.unit, NameKind::Summary);
    let (sum, count) = (format!("{name}_sum"), format!("{name}_count"));
    let fam = fams.family(&name, Kind::Summary, &m.description, &unit);
    let mut latest = None;
    for p in points {
        if has_no_recorded_value(p.flags) {
            stats.dropped_no_value += 1;
            continue;
        }
        let ts = nanos_to_ms(p.time_unix_nano);
        latest = latest.max(Some(ts));
        for q in &p.quantile_values {
            let quantile = format_bound(q.quantile);
            let labels = ctx.labels(&p.attributes, &[("__name__", &name), ("quantile", &quantile)]);
            fam.samples.push(Sample { labels, value: q.value, timestamp_ms: ts });
        }
        let labels = ctx.labels(&p.attributes, &[("__name__", &sum)]);
        fam.samples.push(Sample { labels, value: p.sum, timestamp_ms: ts });
        let labels = ctx.labels(&p.attributes, &[("__name__", &count)]);
        fam.samples.push(Sample { labels, value: p.count as f64, timestamp_ms: ts });
    }
    latest
}

// ---------------------------------------------------------------------------------------------
// Text exposition format 0.0.4
// ---------------------------------------------------------------------------------------------

/// `Content-Type` of what [`render_text`] writes.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders families in the Prometheus text exposition format 0.0.4.
///
/// - Families with the same name are merged so each `# HELP` (first non-empty help; the line
///   is left out when there is none) and `# TYPE` (the first family's type) appears once and
///   all lines of a name are contiguous.
/// - Within a name, a label set that occurs more than once (several collections in one
///   batch) is written once, with its newest sample.
/// - No timestamps are written: the scraper stamps samples itself, which keeps Prometheus'
///   staleness handling working (as the Collector's `prometheus` exporter does by default).
/// - Escaping: label values `\` → `\\`, `"` → `\"`, newline → `\n`; help `\` → `\\`,
///   newline → `\n`. Values `NaN`, `+Inf`, `-Inf`.
pub fn render_text(families: &[Family], out: &mut String) {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&Family>> = HashMap::new();
    for f in families {
        groups
            .entry(f.name.as_str())
            .or_insert_with(|| {
                order.push(f.name.as_str());
                Vec::new()
            })
            .push(f);
    }
    for name in order {
        let group = &groups[name];
        let help = group.iter().map(|f| f.help.as_str()).find(|h| !h.is_empty());
        if let Some(help) = help {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(out, help);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(group[0].kind.as_str());
        out.push('\n');

        // Newest sample per label set, in order of first appearance.
        let mut chosen: Vec<&Sample> = Vec::new();
        let mut seen: HashMap<&[(String, String)], usize> = HashMap::new();
        for s in group.iter().flat_map(|f| f.samples.iter()) {
            match seen.get(s.labels.as_slice()) {
                Some(&i) => {
                    if s.timestamp_ms >= chosen[i].timestamp_ms {
                        chosen[i] = s;
                    }
                }
                None => {
                    seen.insert(s.labels.as_slice(), chosen.len());
                    chosen.push(s);
                }
            }
        }
        for s in chosen {
            write_sample_line(out, s);
        }
    }
}

fn write_sample_line(out: &mut String, s: &Sample) {
    out.push_str(s.name());
    let mut first = true;
    for (n, v) in &s.labels {
        if n == "__name__" {
            continue;
        }
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    write_sample_value(out, s.value);
    out.push('\n');
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::metrics::v1::{
        summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    const T0: u64 = 1_700_000_000_123_456_789;
    const T0_MS: i64 = 1_700_000_000_123;

    pub(crate) fn s(k: &str, v: &str) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
    }

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    pub(crate) fn gauge(name: &str, unit: &str, points: Vec<(Vec<KeyValue>, f64)>) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            description: format!("{name} help"),
            data: Some(Data::Gauge(Gauge { data_points: number_points_of(points) })),
            ..Default::default()
        }
    }

    fn number_points_of(points: Vec<(Vec<KeyValue>, f64)>) -> Vec<NumberDataPoint> {
        points
            .into_iter()
            .map(|(attributes, v)| NumberDataPoint { attributes, time_unix_nano: T0, value: Some(number_data_point::Value::AsDouble(v)), ..Default::default() })
            .collect()
    }

    pub(crate) fn sum(name: &str, unit: &str, monotonic: bool, temporality: AggregationTemporality, points: Vec<(Vec<KeyValue>, f64)>) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(Data::Sum(Sum { data_points: number_points_of(points), aggregation_temporality: temporality as i32, is_monotonic: monotonic })),
            ..Default::default()
        }
    }

    pub(crate) fn request(resources: Vec<(Vec<KeyValue>, Vec<Metric>)>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: resources
                .into_iter()
                .map(|(attributes, metrics)| ResourceMetrics {
                    resource: Some(Resource { attributes, ..Default::default() }),
                    scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn host_resource() -> Vec<KeyValue> {
        vec![s("service.name", "metricsd"), s("host.name", "node1"), s("os.type", "linux")]
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        v.sort();
        v
    }

    fn family<'a>(fams: &'a [Family], name: &str) -> &'a Family {
        fams.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name} in {:?}", fams.iter().map(|f| &f.name).collect::<Vec<_>>()))
    }

    fn no_target_info() -> TranslateOptions {
        TranslateOptions { add_target_info: false, ..Default::default() }
    }

    #[test]
    fn metric_names_follow_the_collector_table() {
        use NameKind::*;
        let table: &[(&str, &str, NameKind, &str)] = &[
            ("system.network.io", "By", MonotonicCounter, "system_network_io_bytes_total"),
            ("system.memory.utilization", "1", Gauge, "system_memory_utilization_ratio"),
            ("system.cpu.load_average.1m", "{run_queue_item}", Gauge, "system_cpu_load_average_1m"),
            ("system.cpu.time", "s", MonotonicCounter, "system_cpu_time_seconds_total"),
            ("system.disk.io_time", "s", MonotonicCounter, "system_disk_io_time_seconds_total"),
            ("system.memory.usage", "By", NonMonotonicCounter, "system_memory_usage_bytes"),
            ("system.cpu.frequency", "Hz", Gauge, "system_cpu_frequency_hertz"),
            ("hw.temperature", "Cel", Gauge, "hw_temperature_celsius"),
            ("hw.power", "W", Gauge, "hw_power_watts"),
            ("hw.energy", "J", MonotonicCounter, "hw_energy_joules_total"),
            ("http.duration", "ms", Histogram, "http_duration_milliseconds"),
            ("net.rate", "By/s", Gauge, "net_rate_bytes_per_second"),
            ("req.rate", "{request}/s", Gauge, "req_rate_per_second"),
            ("odd.rate", "foo/bar", Gauge, "odd_rate_foo_per_bar"),
            ("weird.unit", "m V", Gauge, "weird_unit_m_V"),
            ("pct", "%", Gauge, "pct_percent"),
            ("requests_total", "{request}", MonotonicCounter, "requests_total"),
            ("total.requests", "", MonotonicCounter, "requests_total"),
            ("already_bytes", "By", Gauge, "already_bytes"),
            ("cache.ratio", "1", Gauge, "cache_ratio"),
            ("process.count", "1", NonMonotonicCounter, "process_count"),
            ("events", "1", MonotonicCounter, "events_total"),
            ("2xx.responses", "", Gauge, "_2xx_responses"),
            ("a..b__c--d", "", Gauge, "a_b_c_d"),
            ("_leading.and.trailing_", "", Gauge, "leading_and_trailing"),
            ("ns:sub.metric", "", Gauge, "ns:sub_metric"),
            ("caf\u{e9}.m", "", Gauge, "caf_m"),
            ("...", "s", Gauge, ""),
        ];
        for (otel, unit, kind, want) in table {
            assert_eq!(metric_name(otel, unit, *kind), *want, "{otel} [{unit}] {kind:?}");
        }
        assert_eq!(metric_name_with_prefix(Some("metricsd"), "1m.load", "", NameKind::Gauge), "metricsd_1m_load");
    }

    #[test]
    fn label_names_follow_the_collector_table() {
        let table = [
            ("host.name", "host_name"),
            ("a_b", "a_b"),
            ("a..b", "a__b"),
            ("0.key", "key_0_key"),
            ("_private", "key_private"),
            ("__reserved__", "__reserved__"),
            ("k8s.pod.name", "k8s_pod_name"),
            ("caf\u{e9}", "caf_"),
            ("", ""),
        ];
        for (key, want) in table {
            assert_eq!(label_name(key), want, "{key}");
        }
    }

    #[test]
    fn attribute_values_are_formatted_like_pcommon_as_string() {
        let f = |v: any_value::Value| attribute_value(Some(&AnyValue { value: Some(v) }));
        assert_eq!(f(any_value::Value::StringValue("x y".into())), "x y");
        assert_eq!(f(any_value::Value::IntValue(-42)), "-42");
        assert_eq!(f(any_value::Value::DoubleValue(0.5)), "0.5");
        assert_eq!(f(any_value::Value::DoubleValue(3.0)), "3");
        assert_eq!(f(any_value::Value::DoubleValue(1e21)), "1e+21");
        assert_eq!(f(any_value::Value::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(f(any_value::Value::DoubleValue(f64::NAN)), "NaN");
        assert_eq!(f(any_value::Value::BoolValue(true)), "true");
        assert_eq!(f(any_value::Value::BytesValue(b"hello".to_vec())), "aGVsbG8=");
        assert_eq!(f(any_value::Value::BytesValue(b"hi!".to_vec())), "aGkh");
        let arr = any_value::Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue { value: Some(any_value::Value::StringValue("a\"b".into())) },
                AnyValue { value: Some(any_value::Value::IntValue(1)) },
                AnyValue { value: Some(any_value::Value::DoubleValue(f64::INFINITY)) },
                AnyValue { value: None },
            ],
        });
        assert_eq!(f(arr), r#"["a\"b",1,null,null]"#);
        let map = any_value::Value::KvlistValue(KeyValueList { values: vec![s("k", "v"), kv("n", any_value::Value::BoolValue(false))] });
        assert_eq!(f(map), r#"{"k":"v","n":false}"#);
        assert_eq!(attribute_value(None), "");
    }

    #[test]
    fn gauges_and_cumulative_sums_become_gauges_and_counters() {
        let req = request(vec![(
            host_resource(),
            vec![
                gauge("system.memory.utilization", "1", vec![(vec![s("system.memory.state", "used")], 0.25)]),
                sum(
                    "system.network.io",
                    "By",
                    true,
                    AggregationTemporality::Cumulative,
                    vec![
                        (vec![s("network.interface.name", "eth0"), s("network.io.direction", "receive")], 1000.0),
                        (vec![s("network.interface.name", "eth0"), s("network.io.direction", "transmit")], 500.0),
                    ],
                ),
                sum("system.memory.usage", "By", false, AggregationTemporality::Cumulative, vec![(vec![], 7.0)]),
            ],
        )]);
        let (fams, stats) = translate(&req, &no_target_info());
        assert_eq!(stats, TranslateStats::default());
        assert_eq!(fams.len(), 3);

        let g = family(&fams, "system_memory_utilization_ratio");
        assert_eq!((g.kind, g.unit.as_str(), g.help.as_str()), (Kind::Gauge, "ratio", "system.memory.utilization help"));
        assert_eq!(
            g.samples,
            vec![Sample {
                labels: labels(
                    &[("__name__", "system_memory_utilization_ratio"), ("instance", "node1"), ("job", "metricsd"), ("system_memory_state", "used"),]
                ),
                value: 0.25,
                timestamp_ms: T0_MS,
            }]
        );

        let c = family(&fams, "system_network_io_bytes_total");
        assert_eq!((c.kind, c.unit.as_str()), (Kind::Counter, "bytes"));
        assert_eq!(c.samples.len(), 2);
        assert_eq!(c.samples[1].label("network_io_direction"), Some("transmit"));
        assert_eq!(c.samples[1].value, 500.0);

        let u = family(&fams, "system_memory_usage_bytes");
        assert_eq!(u.kind, Kind::Gauge);
        assert_eq!(u.samples[0].value, 7.0);
    }

    #[test]
    fn labels_are_sorted_unique_and_never_empty() {
        let req = request(vec![(
            vec![s("service.name", "svc")],
            vec![gauge("m", "", vec![(vec![s("zeta", "1"), s("Alpha", "2"), s("empty", ""), s("", "nokey"), s("mid", "3")], 1.0)])],
        )]);
        let (fams, _) = translate(&req, &no_target_info());
        let l = &fams[0].samples[0].labels;
        let names: Vec<&str> = l.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Alpha", "__name__", "job", "mid", "zeta"]);
        assert!(l.iter().all(|(n, v)| !n.is_empty() && !v.is_empty()));
    }

    #[test]
    fn attribute_keys_that_collide_after_sanitising_are_joined_with_semicolons() {
        let req =
            request(vec![(vec![s("service.name", "svc")], vec![gauge("m", "", vec![(vec![s("a_b", "second"), s("a.b", "first"), s("a-b", "zeroth")], 1.0)])])]);
        let (fams, _) = translate(&req, &no_target_info());
        // Sorted by original key: "a-b" < "a.b" < "a_b".
        assert_eq!(fams[0].samples[0].label("a_b"), Some("zeroth;first;second"));
    }

    #[test]
    fn ints_are_converted_and_points_without_values_are_counted() {
        let mut m = gauge("m", "", vec![(vec![], 1.0), (vec![s("k", "b")], 2.0), (vec![s("k", "c")], 3.0)]);
        if let Some(Data::Gauge(g)) = &mut m.data {
            g.data_points[0].value = Some(number_data_point::Value::AsInt(-7));
            g.data_points[1].value = None;
            g.data_points[2].flags = DataPointFlags::NoRecordedValueMask as u32;
        }
        let (fams, stats) = translate(&request(vec![(vec![], vec![m])]), &no_target_info());
        assert_eq!(stats.dropped_no_value, 2);
        assert_eq!(fams[0].samples.len(), 1);
        assert_eq!(fams[0].samples[0].value, -7.0);
        assert_eq!(fams[0].samples[0].labels, labels(&[("__name__", "m")]));
    }

    #[test]
    fn delta_sums_and_histograms_are_dropped_and_counted() {
        let hist = Metric {
            name: "lat".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint { count: 1, ..Default::default() }; 3],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            })),
            ..Default::default()
        };
        let exp = Metric {
            name: "exp".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint::default()],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let req = request(vec![(
            host_resource(),
            vec![
                sum("d", "", true, AggregationTemporality::Delta, vec![(vec![], 1.0), (vec![s("k", "v")], 2.0)]),
                sum("u", "", true, AggregationTemporality::Unspecified, vec![(vec![], 1.0)]),
                hist,
                exp,
            ],
        )]);
        let (fams, stats) = translate(&req, &TranslateOptions::default());
        assert!(fams.is_empty(), "{fams:?}");
        assert_eq!(stats.dropped_delta, 5);
        assert_eq!(stats.dropped_unsupported, 2);
        assert_eq!(stats.dropped(), 7);
    }

    #[test]
    fn histograms_become_cumulative_buckets_sum_and_count() {
        let m = Metric {
            name: "http.server.request.duration".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![s("route", "/a")],
                    time_unix_nano: T0,
                    count: 6,
                    sum: Some(2.5),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![0.1, 1.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let (fams, stats) = translate(&request(vec![(vec![s("service.name", "web")], vec![m])]), &no_target_info());
        assert_eq!(stats, TranslateStats::default());
        let f = family(&fams, "http_server_request_duration_seconds");
        assert_eq!((f.kind, f.unit.as_str()), (Kind::Histogram, "seconds"));
        let got: Vec<(String, Option<&str>, f64)> = f.samples.iter().map(|s| (s.name().to_string(), s.label("le"), s.value)).collect();
        let n = "http_server_request_duration_seconds";
        assert_eq!(
            got,
            vec![
                (format!("{n}_bucket"), Some("0.1"), 1.0),
                (format!("{n}_bucket"), Some("1"), 3.0),
                (format!("{n}_bucket"), Some("+Inf"), 6.0),
                (format!("{n}_sum"), None, 2.5),
                (format!("{n}_count"), None, 6.0),
            ]
        );
        assert!(f.samples.iter().all(|s| s.label("route") == Some("/a") && s.label("job") == Some("web")));
    }

    #[test]
    fn histogram_without_sum_or_buckets_still_has_inf_bucket_and_count() {
        let m = Metric {
            name: "h".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint { count: 4, time_unix_nano: T0, ..Default::default() }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let (fams, _) = translate(&request(vec![(vec![], vec![m])]), &no_target_info());
        let names: Vec<(&str, Option<&str>)> = fams[0].samples.iter().map(|s| (s.name(), s.label("le"))).collect();
        assert_eq!(names, [("h_bucket", Some("+Inf")), ("h_count", None)]);
    }

    #[test]
    fn summaries_become_quantiles_sum_and_count() {
        let m = Metric {
            name: "rpc.latency".into(),
            unit: "ms".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T0,
                    count: 10,
                    sum: 123.5,
                    quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 10.0 }, ValueAtQuantile { quantile: 0.99, value: 40.0 }],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let (fams, _) = translate(&request(vec![(vec![], vec![m])]), &no_target_info());
        let f = family(&fams, "rpc_latency_milliseconds");
        assert_eq!(f.kind, Kind::Summary);
        let got: Vec<(&str, Option<&str>, f64)> = f.samples.iter().map(|s| (s.name(), s.label("quantile"), s.value)).collect();
        assert_eq!(
            got,
            [
                ("rpc_latency_milliseconds", Some("0.5"), 10.0),
                ("rpc_latency_milliseconds", Some("0.99"), 40.0),
                ("rpc_latency_milliseconds_sum", None, 123.5),
                ("rpc_latency_milliseconds_count", None, 10.0),
            ]
        );
    }

    #[test]
    fn job_joins_namespace_and_name_and_instance_prefers_service_instance_id() {
        let res = vec![s("service.namespace", "shop"), s("service.name", "cart"), s("service.instance.id", "cart-7"), s("host.name", "node1")];
        let (fams, _) = translate(&request(vec![(res, vec![gauge("m", "", vec![(vec![], 1.0)])])]), &no_target_info());
        let l = &fams[0].samples[0];
        assert_eq!(l.label("job"), Some("shop/cart"));
        assert_eq!(l.label("instance"), Some("cart-7"));
        assert_eq!(l.label("host_name"), None, "resource attributes are not copied unless promoted");
    }

    #[test]
    fn resource_job_and_instance_override_point_attributes_of_the_same_name() {
        let res = vec![s("service.name", "svc"), s("host.name", "h")];
        let m = gauge("m", "", vec![(vec![s("job", "mine"), s("instance", "mine")], 1.0)]);
        let (fams, _) = translate(&request(vec![(res, vec![m])]), &no_target_info());
        assert_eq!(fams[0].samples[0].label("job"), Some("svc"));
        assert_eq!(fams[0].samples[0].label("instance"), Some("h"));
    }

    #[test]
    fn target_info_carries_the_other_resource_attributes_once_per_resource() {
        let host = host_resource();
        let target = vec![s("service.name", "app"), s("service.instance.id", "10.0.0.5:9100"), s("url.scheme", "http")];
        let req = request(vec![
            (host, vec![gauge("a", "", vec![(vec![], 1.0)])]),
            (target, vec![gauge("a", "", vec![(vec![], 2.0)])]),
            (vec![s("service.name", "bare")], vec![gauge("a", "", vec![(vec![], 3.0)])]),
            (vec![s("service.name", "idle"), s("x", "y")], vec![]),
        ]);
        let (fams, _) = translate(&req, &TranslateOptions::default());
        // Same-name families from different resources are merged.
        assert_eq!(fams.iter().filter(|f| f.name == "a").count(), 1);
        assert_eq!(family(&fams, "a").samples.len(), 3);
        let ti = family(&fams, "target_info");
        assert_eq!((ti.kind, ti.help.as_str()), (Kind::Gauge, TARGET_INFO_HELP));
        // Only resources with attributes beyond job/instance sources and with points get one.
        assert_eq!(ti.samples.len(), 2, "{:?}", ti.samples);
        assert_eq!(
            ti.samples[0],
            Sample {
                labels: labels(&[("__name__", "target_info"), ("instance", "node1"), ("job", "metricsd"), ("os_type", "linux")]),
                value: 1.0,
                timestamp_ms: T0_MS,
            }
        );
        assert_eq!(ti.samples[1].labels, labels(&[("__name__", "target_info"), ("instance", "10.0.0.5:9100"), ("job", "app"), ("url_scheme", "http")]));
        let (fams, _) = translate(&req, &no_target_info());
        assert!(fams.iter().all(|f| f.name != "target_info"));
    }

    #[test]
    fn promoted_resource_attributes_go_on_every_series_but_point_attributes_win() {
        let res = vec![s("service.name", "svc"), s("host.name", "node1"), s("k8s.pod.name", "pod-1"), s("region", "eu")];
        let m = gauge("m", "", vec![(vec![], 1.0), (vec![s("region", "us")], 2.0)]);
        let opts = TranslateOptions {
            promote_resource_attributes: vec!["k8s.pod.name".into(), "region".into(), "absent".into(), "host.name".into()],
            ..no_target_info()
        };
        let (fams, _) = translate(&request(vec![(res, vec![m])]), &opts);
        let a = &fams[0].samples[0];
        assert_eq!(a.label("k8s_pod_name"), Some("pod-1"));
        assert_eq!(a.label("region"), Some("eu"));
        assert_eq!(a.label("host_name"), Some("node1"));
        assert_eq!(a.label("absent"), None);
        assert_eq!(fams[0].samples[1].label("region"), Some("us"));
    }

    #[test]
    fn external_labels_are_added_without_overriding_series_labels() {
        let res = vec![s("service.name", "svc"), s("env", "x")];
        let m = gauge("m", "", vec![(vec![s("cluster", "own")], 1.0), (vec![], 2.0)]);
        let opts = TranslateOptions {
            external_labels: vec![("cluster".into(), "ext".into()), ("job".into(), "ext-job".into()), ("dc.name".into(), "fra".into())],
            ..Default::default()
        };
        let (fams, _) = translate(&request(vec![(res, vec![m])]), &opts);
        let m = family(&fams, "m");
        assert_eq!(m.samples[0].label("cluster"), Some("own"));
        assert_eq!(m.samples[1].label("cluster"), Some("ext"));
        assert_eq!(m.samples[1].label("job"), Some("svc"));
        assert_eq!(m.samples[1].label("dc_name"), Some("fra"));
        assert_eq!(family(&fams, "target_info").samples[0].label("dc_name"), Some("fra"));
    }

    #[test]
    fn name_prefix_applies_to_metrics_and_target_info() {
        let opts = TranslateOptions { name_prefix: Some("agent".into()), ..Default::default() };
        let req = request(vec![(host_resource(), vec![sum("x.y", "By", true, AggregationTemporality::Cumulative, vec![(vec![], 1.0)])])]);
        let (fams, _) = translate(&req, &opts);
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["agent_x_y_bytes_total", "agent_target_info"]);
        assert_eq!(fams[1].samples[0].name(), "agent_target_info");
    }

    #[test]
    fn text_rendering_merges_families_escapes_and_formats_values() {
        let sample = |name: &str, extra: &[(&str, &str)], value: f64, ts: i64| {
            let mut l = labels(extra);
            l.push(("__name__".into(), name.into()));
            l.sort();
            Sample { labels: l, value, timestamp_ms: ts }
        };
        let fams = vec![
            Family {
                name: "g".into(),
                kind: Kind::Gauge,
                help: "line1\nback\\slash \"q\"".into(),
                unit: String::new(),
                samples: vec![sample("g", &[("path", "C:\\dir \"x\"\nnext")], f64::NAN, 1), sample("g", &[("k", "a")], 1.0, 5)],
            },
            Family {
                name: "c_total".into(),
                kind: Kind::Counter,
                help: String::new(),
                unit: String::new(),
                samples: vec![sample("c_total", &[], f64::INFINITY, 1), sample("c_total", &[("k", "n")], f64::NEG_INFINITY, 1)],
            },
            Family {
                name: "g".into(),
                kind: Kind::Gauge,
                help: "ignored".into(),
                unit: String::new(),
                samples: vec![sample("g", &[("k", "a")], 2.0, 4), sample("g", &[("k", "b")], 1e-7, 1), sample("g", &[("k", "c")], 1234.5, 1)],
            },
        ];
        let mut out = String::new();
        render_text(&fams, &mut out);
        let want = "# HELP g line1\\nback\\\\slash \"q\"\n\
                    # TYPE g gauge\n\
                    g{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} NaN\n\
                    g{k=\"a\"} 1\n\
                    g{k=\"b\"} 1e-7\n\
                    g{k=\"c\"} 1234.5\n\
                    # TYPE c_total counter\n\
                    c_total +Inf\n\
                    c_total{k=\"n\"} -Inf\n";
        assert_eq!(out, want);
        assert_eq!(out.matches("# TYPE g ").count(), 1);
    }

    #[test]
    fn text_rendering_of_a_translated_histogram_keeps_its_lines_together() {
        let m = Metric {
            name: "d".into(),
            unit: "s".into(),
            description: "Duration.".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: T0,
                    count: 2,
                    sum: Some(0.3),
                    bucket_counts: vec![1, 1],
                    explicit_bounds: vec![0.25],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let (fams, _) = translate(&request(vec![(vec![s("service.name", "j")], vec![m])]), &no_target_info());
        let mut out = String::new();
        render_text(&fams, &mut out);
        assert_eq!(
            out,
            "# HELP d_seconds Duration.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{job=\"j\",le=\"0.25\"} 1\n\
             d_seconds_bucket{job=\"j\",le=\"+Inf\"} 2\n\
             d_seconds_sum{job=\"j\"} 0.3\n\
             d_seconds_count{job=\"j\"} 2\n"
        );
    }
}
