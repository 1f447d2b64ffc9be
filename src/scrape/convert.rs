//! Parsed families → OTLP metrics, as the Collector's Prometheus receiver maps them:
//!
//! | Prometheus / OpenMetrics | OTLP |
//! | --- | --- |
//! | counter | monotonic cumulative `Sum`, named as exposed (`node_cpu_seconds_total`) |
//! | gauge, untyped/unknown, stateset, info (`_info`) | `Gauge` |
//! | histogram (`_bucket`/`_sum`/`_count`) | cumulative explicit-bucket `Histogram` |
//! | summary (quantiles, `_sum`, `_count`) | `Summary` |
//! | gaugehistogram | its `_bucket`, `_gsum`, `_gcount` samples as `Gauge`s (OTLP has no gauge histogram) |
//!
//! `# HELP` becomes the description and `# UNIT` the unit. A sample's own timestamp is the
//! point's time, else the scrape's.
//!
//! **Start times.** Cumulative points (counters, histograms, summaries) carry the time the
//! series started: its OpenMetrics `_created` when exposed; otherwise the first time this
//! agent saw the series. When a value (a histogram's or summary's count) goes down, the
//! source restarted: the start time moves to the previous scrape's time, which is the last
//! moment known to be before the restart. A series missing from a scrape is forgotten, and
//! starts afresh if it returns. The state lives in one [`Converter`] per target.

use super::text::{parse_value, Family, Kind, Sample, Suffix};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, summary_data_point::ValueAtQuantile, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::HashMap;

/// Instrumentation scope of scraped metrics.
pub const SCOPE_NAME: &str = "metricsd/scrape";

/// What a conversion needs besides the families.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions<'a> {
    /// The scrape's time, Unix nanoseconds.
    pub now_ns: u64,
    /// Prepended to every metric name (`metric_prefix`).
    pub prefix: &'a str,
    /// The target's `labels`, added to every point; a scraped label of the same name is
    /// kept as `exported_<name>` (Prometheus' `honor_labels: false`).
    pub labels: &'a [(String, String)],
}

#[derive(Debug, Clone, Copy)]
struct SeriesState {
    start_ns: u64,
    last: f64,
    last_ns: u64,
    generation: u64,
}

/// Per-target state: when each cumulative series started.
#[derive(Debug, Default)]
pub struct Converter {
    series: HashMap<String, SeriesState>,
    generation: u64,
}

/// A group of samples sharing labels (histogram and summary points).
#[derive(Default)]
struct Group {
    attrs: Vec<(String, String)>,
    buckets: Vec<(f64, f64)>,
    quantiles: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
    created: Option<f64>,
    ts_ms: Option<i64>,
}

impl Converter {
    /// Cumulative series being tracked.
    pub fn tracked_series(&self) -> usize {
        self.series.len()
    }

    /// Converts one scrape's families. Series not in this scrape are forgotten.
    pub fn convert(&mut self, families: &[Family], opts: &ConvertOptions) -> Vec<Metric> {
        self.generation += 1;
        let mut out = Vec::with_capacity(families.len());
        for f in families {
            if f.samples.is_empty() {
                continue;
            }
            match f.kind {
                Kind::Counter => self.counter(f, opts, &mut out),
                Kind::Histogram => self.histogram(f, opts, &mut out),
                Kind::Summary => self.summary(f, opts, &mut out),
                _ => gauges(f, opts, &mut out),
            }
        }
        let g = self.generation;
        self.series.retain(|_, s| s.generation == g);
        out
    }

    /// The start time of a cumulative series whose current value is `value` at `time_ns`.
    fn start_time(&mut self, key: String, value: f64, time_ns: u64, created_ns: Option<u64>) -> u64 {
        let generation = self.generation;
        let st = self.series.entry(key).or_insert(SeriesState { start_ns: time_ns, last: value, last_ns: time_ns, generation });
        if value < st.last {
            // A reset: it happened after the previous scrape.
            st.start_ns = st.last_ns;
        }
        st.last = if value.is_nan() { st.last } else { value };
        st.last_ns = time_ns;
        st.generation = generation;
        match created_ns {
            Some(c) if c > 0 && c <= time_ns => c,
            _ => st.start_ns.min(time_ns),
        }
    }

    fn counter(&mut self, f: &Family, opts: &ConvertOptions, out: &mut Vec<Metric>) {
        let created: HashMap<String, f64> =
            f.samples.iter().filter(|s| s.suffix == Suffix::Created).map(|s| (series_key("", &attributes(&s.labels, &[], opts.labels)), s.value)).collect();
        let values: Vec<&Sample> = f.samples.iter().filter(|s| s.suffix != Suffix::Created).collect();
        if values.is_empty() {
            return;
        }
        let name = format!("{}{}", opts.prefix, f.sample_name(values[0]));
        let mut points = Vec::with_capacity(values.len());
        for s in values {
            let attrs = attributes(&s.labels, &[], opts.labels);
            let time = time_ns(s.timestamp_ms, opts.now_ns);
            let labels_key = series_key("", &attrs);
            let created_ns = created.get(&labels_key).map(|c| secs_to_ns(*c));
            let start = self.start_time(format!("{name}{labels_key}"), s.value, time, created_ns);
            points.push(number_point(attrs, start, time, s.value));
        }
        out.push(metric(
            name,
            f,
            Data::Sum(Sum { data_points: points, aggregation_temporality: AggregationTemporality::Cumulative as i32, is_monotonic: true }),
        ));
    }

    fn histogram(&mut self, f: &Family, opts: &ConvertOptions, out: &mut Vec<Metric>) {
        let name = format!("{}{}", opts.prefix, f.name);
        let mut points = Vec::new();
        for g in groups(f, "le", opts) {
            let mut buckets = g.buckets;
            buckets.retain(|b| !b.0.is_nan());
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            buckets.dedup_by(|a, b| a.0 == b.0);
            let inf = buckets.last().filter(|b| b.0 == f64::INFINITY).map(|b| b.1);
            let count = g.count.or(inf).or(buckets.last().map(|b| b.1)).unwrap_or(0.0);
            let mut bounds = Vec::with_capacity(buckets.len());
            let mut counts = Vec::with_capacity(buckets.len() + 1);
            let mut prev = 0.0;
            for (le, cum) in buckets.iter().filter(|b| b.0 != f64::INFINITY && !b.0.is_nan()) {
                bounds.push(*le);
                counts.push(to_count(cum - prev));
                prev = cum.max(prev);
            }
            counts.push(to_count(count - prev));
            let time = time_ns(g.ts_ms, opts.now_ns);
            let start = self.start_time(format!("{name}{}", series_key("", &g.attrs)), count, time, g.created.map(secs_to_ns));
            points.push(HistogramDataPoint {
                attributes: key_values(g.attrs),
                start_time_unix_nano: start,
                time_unix_nano: time,
                count: to_count(count),
                sum: g.sum,
                bucket_counts: counts,
                explicit_bounds: bounds,
                ..Default::default()
            });
        }
        out.push(metric(name, f, Data::Histogram(Histogram { data_points: points, aggregation_temporality: AggregationTemporality::Cumulative as i32 })));
    }

    fn summary(&mut self, f: &Family, opts: &ConvertOptions, out: &mut Vec<Metric>) {
        let name = format!("{}{}", opts.prefix, f.name);
        let mut points = Vec::new();
        for g in groups(f, "quantile", opts) {
            let mut q = g.quantiles;
            q.sort_by(|a, b| a.0.total_cmp(&b.0));
            let count = g.count.unwrap_or(0.0);
            let time = time_ns(g.ts_ms, opts.now_ns);
            let start = self.start_time(format!("{name}{}", series_key("", &g.attrs)), count, time, g.created.map(secs_to_ns));
            points.push(SummaryDataPoint {
                attributes: key_values(g.attrs),
                start_time_unix_nano: start,
                time_unix_nano: time,
                count: to_count(count),
                sum: g.sum.unwrap_or(0.0),
                quantile_values: q.into_iter().map(|(quantile, value)| ValueAtQuantile { quantile, value }).collect(),
                flags: 0,
            });
        }
        out.push(metric(name, f, Data::Summary(Summary { data_points: points })));
    }
}

/// Gauges, untyped, info, stateset and gauge histograms: one gauge per sample name.
fn gauges(f: &Family, opts: &ConvertOptions, out: &mut Vec<Metric>) {
    let mut by_name: Vec<(String, Vec<NumberDataPoint>)> = Vec::new();
    for s in &f.samples {
        let name = format!("{}{}", opts.prefix, f.sample_name(s));
        let time = time_ns(s.timestamp_ms, opts.now_ns);
        let p = number_point(attributes(&s.labels, &[], opts.labels), 0, time, s.value);
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(p),
            None => by_name.push((name, vec![p])),
        }
    }
    for (name, points) in by_name {
        out.push(metric(name, f, Data::Gauge(Gauge { data_points: points })));
    }
}

/// Samples of a histogram or summary grouped by their labels without `special`.
fn groups(f: &Family, special: &str, opts: &ConvertOptions) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in &f.samples {
        let attrs = attributes(&s.labels, &[special], opts.labels);
        let key = series_key("", &attrs);
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Group { attrs, ..Default::default() });
            out.len() - 1
        });
        let g = &mut out[i];
        if let Some(t) = s.timestamp_ms {
            g.ts_ms = Some(g.ts_ms.map_or(t, |old| old.max(t)));
        }
        let special_value = s.label(special).and_then(parse_value);
        match (s.suffix, special_value) {
            (Suffix::Bucket, Some(le)) if f.kind == Kind::Histogram => g.buckets.push((le, s.value)),
            (Suffix::None, Some(q)) if f.kind == Kind::Summary => g.quantiles.push((q, s.value)),
            (Suffix::Sum, _) => g.sum = Some(s.value),
            (Suffix::Count, _) => g.count = Some(s.value),
            (Suffix::Created, _) => g.created = Some(s.value),
            _ => {}
        }
    }
    out
}

/// A point's attributes: the sample's labels less `skip`, then the target's labels (which
/// win; a clashing scraped label becomes `exported_<name>`), sorted by key.
fn attributes(labels: &[(std::borrow::Cow<str>, std::borrow::Cow<str>)], skip: &[&str], target: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(labels.len() + target.len());
    for (k, v) in labels {
        if skip.contains(&k.as_ref()) {
            continue;
        }
        if target.iter().any(|(t, _)| t == k) {
            out.push((format!("exported_{k}"), v.to_string()));
        } else {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out.extend(target.iter().cloned());
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

fn series_key(name: &str, attrs: &[(String, String)]) -> String {
    let mut k = String::with_capacity(name.len() + attrs.len() * 16);
    k.push_str(name);
    for (a, v) in attrs {
        k.push('\u{1}');
        k.push_str(a);
        k.push('\u{2}');
        k.push_str(v);
    }
    k
}

fn to_count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

fn secs_to_ns(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e9).min(u64::MAX as f64) as u64
    } else {
        0
    }
}

fn time_ns(ts_ms: Option<i64>, now_ns: u64) -> u64 {
    match ts_ms {
        Some(ms) if ms > 0 => (ms as u64).saturating_mul(1_000_000),
        _ => now_ns,
    }
}

/// A string attribute.
pub fn kv(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }), ..Default::default() }
}

fn key_values(attrs: Vec<(String, String)>) -> Vec<KeyValue> {
    attrs.into_iter().map(|(k, v)| kv(k, v)).collect()
}

fn number_point(attrs: Vec<(String, String)>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: key_values(attrs),
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn metric(name: String, f: &Family, data: Data) -> Metric {
    Metric { name, description: f.help.to_string(), unit: f.unit.to_string(), data: Some(data), ..Default::default() }
}

/// A gauge of one point with no attributes (the per-target scrape metrics).
pub fn simple_gauge(name: &str, description: &str, unit: &str, value: f64, now_ns: u64) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![number_point(Vec::new(), 0, now_ns, value)] })),
        ..Default::default()
    }
}

/// One target's `ResourceMetrics`: its resource and its metrics under the scrape scope.
pub fn resource_metrics(resource: &[(String, String)], metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource.iter().map(|(k, v)| kv(k.clone(), v.clone())).collect(),
            dropped_attributes_count: 0,
            entity_refs: Vec::new(),
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope { name: SCOPE_NAME.into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::text::{parse, TextFormat};

    const SEC: u64 = 1_000_000_000;

    fn convert(c: &mut Converter, text: &str, now_s: u64) -> Vec<Metric> {
        let p = parse(text, TextFormat::Prometheus);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        c.convert(&p.families, &ConvertOptions { now_ns: now_s * SEC, prefix: "", labels: &[] })
    }

    fn find<'m>(ms: &'m [Metric], name: &str) -> &'m Metric {
        ms.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no {name} in {:?}", ms.iter().map(|m| &m.name).collect::<Vec<_>>()))
    }

    fn sum_points(m: &Metric) -> &[NumberDataPoint] {
        match &m.data {
            Some(Data::Sum(s)) => {
                assert!(s.is_monotonic);
                assert_eq!(s.aggregation_temporality, AggregationTemporality::Cumulative as i32);
                &s.data_points
            }
            d => panic!("not a sum: {d:?}"),
        }
    }

    fn value(p: &NumberDataPoint) -> f64 {
        match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            _ => panic!(),
        }
    }

    #[test]
    fn counter_start_time_is_first_seen_and_moves_on_a_reset() {
        let mut c = Converter::default();
        let text = |v: u32| format!("# TYPE jobs_total counter\njobs_total{{q=\"a\"}} {v}\n");
        let m = convert(&mut c, &text(10), 100);
        let p = &sum_points(find(&m, "jobs_total"))[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano, value(p)), (100 * SEC, 100 * SEC, 10.0));
        let m = convert(&mut c, &text(15), 110);
        assert_eq!(sum_points(&m[0])[0].start_time_unix_nano, 100 * SEC);
        // The process restarted: the value went down.
        let m = convert(&mut c, &text(2), 120);
        let p = &sum_points(&m[0])[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (110 * SEC, 120 * SEC));
        let m = convert(&mut c, &text(5), 130);
        assert_eq!(sum_points(&m[0])[0].start_time_unix_nano, 110 * SEC);
        // Gone for one scrape: forgotten, and new when it comes back.
        convert(&mut c, "other 1\n", 140);
        assert_eq!(c.tracked_series(), 0);
        let m = convert(&mut c, &text(6), 150);
        assert_eq!(sum_points(&m[0])[0].start_time_unix_nano, 150 * SEC);
    }

    #[test]
    fn openmetrics_created_is_the_start_time() {
        let text = "# TYPE a counter\na_total{x=\"1\"} 3\na_created{x=\"1\"} 1000.5\n# EOF\n";
        let p = parse(text, TextFormat::OpenMetrics);
        let m = Converter::default().convert(&p.families, &ConvertOptions { now_ns: 2000 * SEC, prefix: "app_", labels: &[] });
        let p = &sum_points(find(&m, "app_a_total"))[0];
        assert_eq!(p.start_time_unix_nano, 1000 * SEC + SEC / 2);
        assert_eq!(m.len(), 1, "_created is not a metric of its own");
    }

    #[test]
    fn histogram_buckets_become_per_bucket_counts_with_bounds() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scrape/all_types.prom")).unwrap();
        let mut c = Converter::default();
        let m = convert(&mut c, &text, 100);
        let h = match &find(&m, "http_request_duration_seconds").data {
            Some(Data::Histogram(h)) => h,
            d => panic!("{d:?}"),
        };
        assert_eq!(h.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds, [0.05, 0.1, 0.2, 0.5, 1.0]);
        assert_eq!(p.bucket_counts, [24054, 9390, 66948, 28997, 4599, 10332]);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
        assert_eq!((p.count, p.sum), (144320, Some(53423.0)));
        assert!(p.attributes.is_empty());

        let s = match &find(&m, "rpc_duration_seconds").data {
            Some(Data::Summary(s)) => &s.data_points[0],
            d => panic!("{d:?}"),
        };
        assert_eq!((s.count, s.sum), (2693, 1.7560473e7));
        assert_eq!(s.quantile_values.iter().map(|q| q.quantile).collect::<Vec<_>>(), [0.01, 0.05, 0.5, 0.9, 0.99]);
        assert_eq!(s.quantile_values[4].value, 76656.0);

        match &find(&m, "metric_without_timestamp_and_labels").data {
            Some(Data::Gauge(g)) => assert_eq!(value(&g.data_points[0]), 12.47),
            d => panic!("untyped is a gauge: {d:?}"),
        }
        let c = &sum_points(find(&m, "http_requests_total"))[0];
        assert_eq!(c.time_unix_nano, 1395066363000 * 1_000_000, "the exposed timestamp is kept");
        assert_eq!(find(&m, "http_requests_total").description, "The total number of HTTP requests.");
    }

    #[test]
    fn target_labels_win_and_clashing_scraped_labels_are_kept_as_exported() {
        let p = parse("g{env=\"dev\",a=\"1\"} 1\n", TextFormat::Prometheus);
        let labels = [("env".to_string(), "prod".to_string())];
        let m = Converter::default().convert(&p.families, &ConvertOptions { now_ns: SEC, prefix: "", labels: &labels });
        let Some(Data::Gauge(g)) = &m[0].data else { panic!() };
        let attrs: Vec<(String, String)> =
            g.data_points[0].attributes.iter().map(|kv| (kv.key.clone(), crate::translate::attribute_value(kv.value.as_ref()))).collect();
        assert_eq!(attrs, [("a".into(), "1".into()), ("env".into(), "prod".into()), ("exported_env".into(), "dev".into())]);
    }

    #[test]
    fn a_histogram_whose_count_drops_gets_a_new_start() {
        let text = |n: u32| format!("# TYPE h histogram\nh_bucket{{le=\"1\"}} {n}\nh_bucket{{le=\"+Inf\"}} {n}\nh_sum 1\nh_count {n}\n");
        let mut c = Converter::default();
        convert(&mut c, &text(5), 10);
        let m = convert(&mut c, &text(1), 20);
        let Some(Data::Histogram(h)) = &m[0].data else { panic!() };
        assert_eq!(h.data_points[0].start_time_unix_nano, 10 * SEC);
        assert_eq!(h.data_points[0].bucket_counts, [1, 0]);
    }
}
