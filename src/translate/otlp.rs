//! An OTLP batch → Prometheus metric families ([`translate`]): gauges and cumulative sums
//! become gauges and counters, histograms `_bucket`/`_sum`/`_count`, summaries quantiles,
//! one `target_info` per resource; what cannot be translated is counted in
//! [`TranslateStats`]. The rules are in the [module documentation](super).

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, SummaryDataPoint,
};

use super::exposition::{render_text, write_family_header, write_sample_line};
use super::family::{Family, Kind, Sample};
use super::labels::{ResourceCtx, HOST_NAME, SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_NAMESPACE};
use super::names::{label_name, metric_name_with_prefix, prometheus_unit, NameKind};
use super::values::format_bound;
use crate::points::{CompactMetric, CompactResource, Shape};
use std::hash::BuildHasher as _;

/// Name of the per-resource info metric (OTel spec: "Resource Attributes" → `target_info`).
pub const TARGET_INFO: &str = "target_info";
/// Help text of `target_info`, as the Collector writes it.
pub const TARGET_INFO_HELP: &str = "Target metadata";

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
    /// Points of a metric whose Prometheus name (or, for a histogram or summary, one of its
    /// `_bucket`/`_sum`/`_count` series) is already another family's: the exposition allows one
    /// type per name, so the metric translated first keeps it.
    pub dropped_name_conflict: usize,
}

impl TranslateStats {
    pub fn dropped(&self) -> usize {
        self.dropped_delta + self.dropped_unsupported + self.dropped_no_value + self.dropped_name_conflict
    }
}

fn nanos_to_ms(t: u64) -> i64 {
    (t / 1_000_000) as i64
}

/// Collects families, merging those with the same name and kind (several resources or
/// scopes exporting the same metric) in order of first appearance.
#[derive(Default)]
struct Families {
    list: Vec<Family>,
    index: HashMap<(String, Kind), usize>,
    /// Every series name a family writes (a histogram's `_bucket`, `_sum`, `_count` too).
    claimed: std::collections::HashSet<String>,
}

/// The series names a family of `kind` named `name` writes.
fn series_names(name: &str, kind: Kind) -> Vec<String> {
    match kind {
        Kind::Histogram => vec![name.to_string(), format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count")],
        Kind::Summary => vec![name.to_string(), format!("{name}_sum"), format!("{name}_count")],
        _ => vec![name.to_string()],
    }
}

impl Families {
    /// The family `name` of `kind`, made on first use; `None` when one of its series names is
    /// already another family's (a gauge and a summary both named `x`, or a gauge `x_sum` beside
    /// a summary `x`): the text exposition allows one type per name.
    fn family(&mut self, name: &str, kind: Kind, help: &str, unit: &str) -> Option<&mut Family> {
        let key = (name.to_string(), kind);
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let names = series_names(name, kind);
                if names.iter().any(|n| self.claimed.contains(n)) {
                    return None;
                }
                self.claimed.extend(names);
                self.list.push(Family { name: name.to_string(), kind, help: help.to_string(), unit: unit.to_string(), samples: Vec::new() });
                self.index.insert(key, self.list.len() - 1);
                self.list.len() - 1
            }
        };
        let f = &mut self.list[i];
        if f.help.is_empty() && !help.is_empty() {
            f.help = help.to_string();
        }
        Some(f)
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
/// collections (remote-write wants them all; [`render_text`](super::render_text) keeps the newest).
pub fn translate(req: &ExportMetricsServiceRequest, opts: &TranslateOptions) -> (Vec<Family>, TranslateStats) {
    translate_resources(&req.resource_metrics, opts)
}

/// [`translate`] of some of a batch's resources (one at a time, say), without copying them
/// into a request of their own.
pub fn translate_resources<'r>(resources: impl IntoIterator<Item = &'r ResourceMetrics>, opts: &TranslateOptions) -> (Vec<Family>, TranslateStats) {
    translate_batch(&[], resources, opts)
}

/// [`translate`] of a tick's batch as the pipeline holds it: the compact resources (the
/// host's, the scraped targets': [`CompactResource`], read in place, no OTLP copy is made of
/// them) first, then `others`.
pub fn translate_batch<'r>(
    compact: &[CompactResource],
    others: impl IntoIterator<Item = &'r ResourceMetrics>,
    opts: &TranslateOptions,
) -> (Vec<Family>, TranslateStats) {
    translate_parts(compact, others, opts, true)
}

/// [`translate_batch`]; without `with_points`, the compact metrics are left out (but still
/// date their resource's `target_info`), for [`render_batch_text`] or [`compact_samples`] to
/// take them.
fn translate_parts<'r>(
    compact: &[CompactResource],
    others: impl IntoIterator<Item = &'r ResourceMetrics>,
    opts: &TranslateOptions,
    with_points: bool,
) -> (Vec<Family>, TranslateStats) {
    let mut stats = TranslateStats::default();
    let mut fams = Families::default();
    let prefix = opts.name_prefix.as_deref().filter(|p| !p.is_empty());
    let external: Vec<(String, String)> =
        opts.external_labels.iter().map(|(k, v)| (label_name(k), v.clone())).filter(|(k, v)| !k.is_empty() && !v.is_empty()).collect();

    for h in compact {
        let attrs: &[KeyValue] = &h.resource.attributes;
        let ctx = ResourceCtx::new(attrs, opts, &external);
        let mut latest_ms: Option<i64> = None;
        for m in h.scopes.iter().flat_map(|s| &s.metrics) {
            let kept = match with_points {
                true => compact_points(m, &ctx, prefix, &mut fams, &mut stats),
                false => (!m.points.is_empty()).then(|| nanos_to_ms(m.time_ns)),
            };
            if let Some(ts) = kept {
                latest_ms = Some(latest_ms.map_or(ts, |l| l.max(ts)));
            }
        }
        for m in h.otlp_scopes.iter().flat_map(|s| &s.metrics) {
            if let Some(ts) = translate_metric(m, &ctx, prefix, &mut fams, &mut stats) {
                latest_ms = Some(latest_ms.map_or(ts, |l| l.max(ts)));
            }
        }
        if opts.add_target_info {
            if let Some(ts) = latest_ms {
                add_target_info(attrs, &ctx, prefix, ts, &mut fams);
            }
        }
    }
    for rm in others {
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
    if let Some(f) = fams.family(&name, Kind::Gauge, TARGET_INFO_HELP, "") {
        f.samples.push(Sample { labels, value: 1.0, timestamp_ms: ts, start_ms: 0 });
    }
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
    let Some(fam) = fams.family(&name, kind, &m.description, &unit) else {
        stats.dropped_name_conflict += points.len();
        return None;
    };
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
        let start_ms = if kind == Kind::Counter { nanos_to_ms(p.start_time_unix_nano) } else { 0 };
        let labels = ctx.labels(&p.attributes, &[("__name__", &name)]);
        fam.samples.push(Sample { labels, value, timestamp_ms: ts, start_ms });
    }
    latest
}

/// A batch in the text exposition format ([`render_text`]'s rules), the compact resources'
/// metrics written straight from their points: no family of them is materialised, so a
/// scrape of `/metrics` costs the text it answers, not ~0.5 KB a series of owned labels.
/// Compact metrics of one name (`up` of every target) are written together under one
/// header. Everything else (textfiles, histograms, summaries, pushed resources,
/// `target_info`) is translated and rendered as usual. When a compact metric's name is also
/// one of those families', or two compact metrics of one name differ in type, the whole batch
/// takes the general path, which merges or drops them as the exposition requires.
pub fn render_batch_text<'r>(
    compact: &[CompactResource],
    others: impl IntoIterator<Item = &'r ResourceMetrics> + Clone,
    opts: &TranslateOptions,
    out: &mut String,
) {
    let general = |out: &mut String| render_text(&translate_parts(compact, others.clone(), opts, true).0, out);
    if compact.is_empty() {
        return general(out);
    }
    let prefix = opts.name_prefix.as_deref().filter(|p| !p.is_empty());
    let (rest, _) = translate_parts(compact, others.clone(), opts, false);
    let taken: std::collections::HashSet<String> = rest.iter().flat_map(|f| series_names(&f.name, f.kind)).collect();
    // Families of compact metrics by name, in order of first appearance.
    struct Group<'a> {
        name: String,
        kind: Kind,
        help: &'a str,
        members: Vec<(usize, &'a CompactMetric)>,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (r, h) in compact.iter().enumerate() {
        for m in h.scopes.iter().flat_map(|s| &s.metrics) {
            let (name_kind, kind) = compact_kinds(m.descriptor.shape);
            let name = metric_name_with_prefix(prefix, &m.descriptor.name, &m.descriptor.unit, name_kind);
            if name.is_empty() {
                continue;
            }
            if taken.contains(&name) {
                return general(out);
            }
            match index.get(&name) {
                Some(&g) if groups[g].kind != kind => return general(out),
                Some(&g) => {
                    if groups[g].help.is_empty() {
                        groups[g].help = &m.descriptor.description;
                    }
                    groups[g].members.push((r, m));
                }
                None => {
                    index.insert(name.clone(), groups.len());
                    groups.push(Group { name, kind, help: &m.descriptor.description, members: vec![(r, m)] });
                }
            }
        }
    }
    let external: Vec<(String, String)> =
        opts.external_labels.iter().map(|(k, v)| (label_name(k), v.clone())).filter(|(k, v)| !k.is_empty() && !v.is_empty()).collect();
    let ctxs: Vec<ResourceCtx<'_>> = compact.iter().map(|h| ResourceCtx::new(&h.resource.attributes, opts, &external)).collect();
    let hasher = foldhash::fast::FixedState::default();
    let mut seen = std::collections::HashSet::with_hasher(foldhash::fast::FixedState::default());
    for g in groups {
        write_family_header(out, &g.name, g.help, g.kind);
        // A label set written twice (sanitised keys `a.b` and `a_b`, or two resources with
        // one job and instance) is written once, the first: a scrape must not repeat a series.
        seen.clear();
        for (r, m) in g.members {
            for p in &m.points {
                let sample = Sample { labels: ctxs[r].labels(&p.attributes, &[("__name__", &g.name)]), value: p.value.as_f64(), timestamp_ms: 0, start_ms: 0 };
                let at = out.len();
                write_sample_line(out, &sample);
                let line = &out[at..];
                let labels_end = line.rfind(' ').unwrap_or(line.len());
                if !seen.insert(hasher.hash_one(&line[..labels_end])) {
                    out.truncate(at);
                }
            }
        }
    }
    render_text(&rest, out);
}

/// [`translate_batch`] of everything but the compact points (textfiles, histograms,
/// summaries, other resources, every `target_info`), for a caller that takes the points one
/// by one with [`compact_samples`].
pub fn translate_rest<'r>(
    compact: &[CompactResource],
    others: impl IntoIterator<Item = &'r ResourceMetrics>,
    opts: &TranslateOptions,
) -> (Vec<Family>, TranslateStats) {
    translate_parts(compact, others, opts, false)
}

/// Each of a compact resource's points as a Prometheus sample ([`translate`]'s names and
/// labels), handed to `f` one at a time and dropped after: nothing of the batch is
/// materialised. Two of a metric's points that sanitised keys (`a.b`, `a_b`) would make one
/// series keep the first; a metric whose name another host metric has already taken is
/// dropped (both counted in the stats). Names taken by the other resources' families are not
/// checked: that is for an exposition, which this is not.
pub fn compact_samples(host: &CompactResource, opts: &TranslateOptions, mut f: impl FnMut(&Sample, Kind)) -> TranslateStats {
    let mut stats = TranslateStats::default();
    let prefix = opts.name_prefix.as_deref().filter(|p| !p.is_empty());
    let external: Vec<(String, String)> =
        opts.external_labels.iter().map(|(k, v)| (label_name(k), v.clone())).filter(|(k, v)| !k.is_empty() && !v.is_empty()).collect();
    let ctx = ResourceCtx::new(&host.resource.attributes, opts, &external);
    let mut names = std::collections::HashSet::new();
    let hasher = foldhash::fast::FixedState::default();
    let mut seen = std::collections::HashSet::with_hasher(foldhash::fast::FixedState::default());
    for m in host.scopes.iter().flat_map(|s| &s.metrics) {
        let (name_kind, kind) = compact_kinds(m.descriptor.shape);
        let name = metric_name_with_prefix(prefix, &m.descriptor.name, &m.descriptor.unit, name_kind);
        if name.is_empty() {
            stats.dropped_unsupported += m.points.len();
            continue;
        }
        if !names.insert(name.clone()) {
            stats.dropped_name_conflict += m.points.len();
            continue;
        }
        let timestamp_ms = nanos_to_ms(m.time_ns);
        let start_ms = if kind == Kind::Counter { nanos_to_ms(m.start_ns) } else { 0 };
        seen.clear();
        for p in &m.points {
            let sample = Sample { labels: ctx.labels(&p.attributes, &[("__name__", &name)]), value: p.value.as_f64(), timestamp_ms, start_ms };
            if seen.insert(hasher.hash_one(&sample.labels)) {
                f(&sample, kind);
            } else {
                stats.dropped_name_conflict += 1;
            }
        }
    }
    stats
}

/// The Prometheus kinds of a compact metric's shape.
fn compact_kinds(shape: Shape) -> (NameKind, Kind) {
    match shape {
        Shape::Gauge => (NameKind::Gauge, Kind::Gauge),
        Shape::Sum { monotonic: true } => (NameKind::MonotonicCounter, Kind::Counter),
        Shape::Sum { monotonic: false } => (NameKind::NonMonotonicCounter, Kind::Gauge),
    }
}

/// [`number_points`] of the meter's compact metric: the same rules, read in place.
fn compact_points(m: &CompactMetric, ctx: &ResourceCtx<'_>, prefix: Option<&str>, fams: &mut Families, stats: &mut TranslateStats) -> Option<i64> {
    let d = &m.descriptor;
    let (name_kind, kind) = compact_kinds(d.shape);
    let name = metric_name_with_prefix(prefix, &d.name, &d.unit, name_kind);
    if name.is_empty() {
        stats.dropped_unsupported += m.points.len();
        return None;
    }
    let unit = prometheus_unit(&d.unit, name_kind);
    let Some(fam) = fams.family(&name, kind, &d.description, &unit) else {
        stats.dropped_name_conflict += m.points.len();
        return None;
    };
    let ts = nanos_to_ms(m.time_ns);
    let start_ms = if kind == Kind::Counter { nanos_to_ms(m.start_ns) } else { 0 };
    fam.samples.reserve(m.points.len());
    for p in &m.points {
        let labels = ctx.labels(&p.attributes, &[("__name__", &name)]);
        fam.samples.push(Sample { labels, value: p.value.as_f64(), timestamp_ms: ts, start_ms });
    }
    (!m.points.is_empty()).then_some(ts)
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
    let Some(fam) = fams.family(&name, Kind::Histogram, &m.description, &unit) else {
        stats.dropped_name_conflict += points.len();
        return None;
    };
    let mut latest = None;
    for p in points {
        if has_no_recorded_value(p.flags) {
            stats.dropped_no_value += 1;
            continue;
        }
        let ts = nanos_to_ms(p.time_unix_nano);
        let start_ms = nanos_to_ms(p.start_time_unix_nano);
        latest = latest.max(Some(ts));
        let mut cum: u64 = 0;
        for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            cum = cum.saturating_add(*n);
            let le = format_bound(*bound);
            let labels = ctx.labels(&p.attributes, &[("__name__", &bucket), ("le", &le)]);
            fam.samples.push(Sample { labels, value: cum as f64, timestamp_ms: ts, start_ms });
        }
        let labels = ctx.labels(&p.attributes, &[("__name__", &bucket), ("le", "+Inf")]);
        fam.samples.push(Sample { labels, value: p.count as f64, timestamp_ms: ts, start_ms });
        if let Some(s) = p.sum {
            let labels = ctx.labels(&p.attributes, &[("__name__", &sum)]);
            fam.samples.push(Sample { labels, value: s, timestamp_ms: ts, start_ms });
        }
        let labels = ctx.labels(&p.attributes, &[("__name__", &count)]);
        fam.samples.push(Sample { labels, value: p.count as f64, timestamp_ms: ts, start_ms });
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
    let Some(fam) = fams.family(&name, Kind::Summary, &m.description, &unit) else {
        stats.dropped_name_conflict += points.len();
        return None;
    };
    let mut latest = None;
    for p in points {
        if has_no_recorded_value(p.flags) {
            stats.dropped_no_value += 1;
            continue;
        }
        let ts = nanos_to_ms(p.time_unix_nano);
        let start_ms = nanos_to_ms(p.start_time_unix_nano);
        latest = latest.max(Some(ts));
        for q in &p.quantile_values {
            let quantile = format_bound(q.quantile);
            let labels = ctx.labels(&p.attributes, &[("__name__", &name), ("quantile", &quantile)]);
            fam.samples.push(Sample { labels, value: q.value, timestamp_ms: ts, start_ms });
        }
        let labels = ctx.labels(&p.attributes, &[("__name__", &sum)]);
        fam.samples.push(Sample { labels, value: p.sum, timestamp_ms: ts, start_ms });
        let labels = ctx.labels(&p.attributes, &[("__name__", &count)]);
        fam.samples.push(Sample { labels, value: p.count as f64, timestamp_ms: ts, start_ms });
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        summary_data_point::ValueAtQuantile, ExponentialHistogram, ExponentialHistogramDataPoint, Histogram, Summary,
    };

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
                start_ms: 0,
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
    fn counters_keep_their_start_time_and_gauges_and_up_down_sums_have_none() {
        let with_start = |mut m: Metric| {
            match m.data.as_mut() {
                Some(Data::Sum(s)) => s.data_points.iter_mut().for_each(|p| p.start_time_unix_nano = 1_700_000_000_000_000_000),
                Some(Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| p.start_time_unix_nano = 1_700_000_000_000_000_000),
                _ => {}
            }
            m
        };
        let req = request(vec![(
            host_resource(),
            vec![
                with_start(sum("jobs", "", true, AggregationTemporality::Cumulative, vec![(vec![], 3.0)])),
                with_start(sum("queue", "", false, AggregationTemporality::Cumulative, vec![(vec![], 3.0)])),
                with_start(gauge("temp", "", vec![(vec![], 3.0)])),
            ],
        )]);
        let (fams, _) = translate(&req, &no_target_info());
        assert_eq!(family(&fams, "jobs_total").samples[0].start_ms, 1_700_000_000_000);
        assert_eq!(family(&fams, "queue").samples[0].start_ms, 0);
        assert_eq!(family(&fams, "temp").samples[0].start_ms, 0);
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
    fn a_name_another_family_already_writes_is_dropped_and_counted_so_the_exposition_stays_valid() {
        // Found by the otlp_request fuzz target: a gauge and a summary both named `x` rendered
        // one family `x` of type summary holding a sample without a quantile.
        let summary = |name: &str| Metric {
            name: name.into(),
            data: Some(Data::Summary(Summary { data_points: vec![SummaryDataPoint { time_unix_nano: T0, count: 2, sum: 3.0, ..Default::default() }] })),
            ..Default::default()
        };
        let req = request(vec![(
            vec![],
            vec![summary("x"), gauge("x", "", vec![(vec![], 7.0)]), gauge("x_sum", "", vec![(vec![], 1.0)]), gauge("y", "", vec![(vec![], 1.0)])],
        )]);
        let (fams, stats) = translate(&req, &no_target_info());
        assert_eq!(fams.iter().map(|f| (f.name.as_str(), f.kind)).collect::<Vec<_>>(), [("x", Kind::Summary), ("y", Kind::Gauge)]);
        assert_eq!(stats.dropped_name_conflict, 2);
        let mut text = String::new();
        crate::translate::render_text(&fams, &mut text);
        let parsed = crate::scrape::text::parse(&text, crate::scrape::text::TextFormat::Prometheus);
        assert!(parsed.errors.is_empty(), "{:?} in\n{text}", parsed.errors);
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
                start_ms: 0,
            }
        );
        assert_eq!(ti.samples[1].labels, labels(&[("__name__", "target_info"), ("instance", "10.0.0.5:9100"), ("job", "app"), ("url_scheme", "http")]));
        let (fams, _) = translate(&req, &no_target_info());
        assert!(fams.iter().all(|f| f.name != "target_info"));
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
}
