//! The scheduler: one tick, on a thread of its own, refreshes every collector (in turn; those
//! that may block each on a blocking thread under the time limit), collects the OpenTelemetry
//! instruments (their callbacks write OTLP points, see [`meter`]) into one OTLP
//! `ExportMetricsServiceRequest` (the batch), and hands it to every exporter's queue.
//!
//! Why our own collect and not a periodic reader: that runs callbacks on its own thread with no
//! time limit and no hook to refresh snapshots first. Our scheduler also gives `--once`,
//! `/metrics` and one collection shared by every exporter.

pub mod compact;
pub mod delta;
pub mod encode;
pub mod meter;
pub mod queue;
pub mod received;
pub mod scheduler;
pub mod spool;
pub mod state;
#[cfg(test)]
pub(crate) mod testutil;

pub use crate::status::CollectorStatus;
pub use scheduler::Scheduler;
pub use state::{AgentState, TickTimings};

use crate::points::CompactResource;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

/// One collection, shared by every exporter and never copied: the host's metrics and the
/// scraped targets' in compact form ([`CompactResource`]: a point is its value and its
/// interned series), then the other resources (pushed batches) as OTLP.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The compact resources: the host's first, then the scraped targets'.
    compact: Vec<CompactResource>,
    /// The other resources, after the compact ones.
    request: ExportMetricsServiceRequest,
    /// Tick number.
    pub seq: u64,
    /// Data points in the batch.
    pub points: u64,
}

impl Batch {
    /// A batch of `request` for tick `seq` holding `points` points.
    pub fn new(request: ExportMetricsServiceRequest, seq: u64, points: u64) -> Self {
        Batch { compact: Vec::new(), request, seq, points }
    }

    /// Wraps a request, counting its points.
    pub fn from_request(request: ExportMetricsServiceRequest, seq: u64) -> Self {
        let points = count_points(&request);
        Batch::new(request, seq, points)
    }

    /// A batch of the host's compact metrics, then `others`.
    pub fn with_host(host: CompactResource, others: ExportMetricsServiceRequest, seq: u64) -> Self {
        Batch::with_compact(vec![host], others, seq)
    }

    /// A tick's batch: compact resources (the host's first), then `others`.
    pub fn with_compact(compact: Vec<CompactResource>, others: ExportMetricsServiceRequest, seq: u64) -> Self {
        let points = compact
            .iter()
            .map(|r| r.scopes.iter().map(|s| s.points() as u64).sum::<u64>() + r.otlp_scopes.iter().flat_map(|s| &s.metrics).map(metric_points).sum::<u64>())
            .sum::<u64>()
            + count_points(&others);
        Batch { compact, request: others, seq, points }
    }

    /// The first compact resource: the host's, in a tick's batch.
    pub fn host(&self) -> Option<&CompactResource> {
        self.compact.first()
    }

    /// The compact resources: the host's, then the scraped targets'.
    pub fn compact(&self) -> &[CompactResource] {
        &self.compact
    }

    /// The resources after the host's, as OTLP.
    pub fn others(&self) -> &[ResourceMetrics] {
        &self.request.resource_metrics
    }

    /// The whole batch as one OTLP request: borrowed when it has no host metrics, otherwise a
    /// copy (the host's points become OTLP structures: ~350 bytes a point, for as long as the
    /// caller keeps it). For exporters that need OTLP structures (stdout, the file exporter,
    /// http_json, delta temporality); the OTLP encoding and the Prometheus translation read
    /// the batch in place ([`encoded`](Batch::encoded), [`translate`](Batch::translate)).
    pub fn to_request(&self) -> std::borrow::Cow<'_, ExportMetricsServiceRequest> {
        if self.compact.is_empty() {
            return std::borrow::Cow::Borrowed(&self.request);
        }
        let mut resource_metrics: Vec<ResourceMetrics> = self.compact.iter().map(compact_resource_metrics).collect();
        resource_metrics.extend(self.request.resource_metrics.iter().cloned());
        std::borrow::Cow::Owned(ExportMetricsServiceRequest { resource_metrics })
    }

    /// The batch in Prometheus families ([`crate::translate::translate`]'s rules), the host's
    /// metrics read in place; `extra` resources are translated after the batch's.
    pub fn translate(
        &self,
        extra: &[ResourceMetrics],
        opts: &crate::translate::TranslateOptions,
    ) -> (Vec<crate::translate::Family>, crate::translate::TranslateStats) {
        crate::translate::translate_batch(&self.compact, self.request.resource_metrics.iter().chain(extra), opts)
    }

    /// [`translate`](Batch::translate) of everything but the host's compact points, which
    /// [`crate::translate::compact_samples`] hands out one at a time.
    pub fn translate_rest(&self, opts: &crate::translate::TranslateOptions) -> (Vec<crate::translate::Family>, crate::translate::TranslateStats) {
        crate::translate::translate_rest(&self.compact, &self.request.resource_metrics, opts)
    }

    /// The batch (and `extra` resources after it) in the Prometheus text exposition format,
    /// the host's metrics written straight from their points
    /// ([`crate::translate::render_batch_text`]).
    pub fn render_text(&self, extra: &[ResourceMetrics], opts: &crate::translate::TranslateOptions, out: &mut String) {
        crate::translate::render_batch_text(&self.compact, self.request.resource_metrics.iter().chain(extra), opts, out)
    }

    /// Writes the batch as OTLP protobuf into `buf` (cleared first; its allocation is kept).
    /// The batch never holds an encoding of itself; a compressing exporter encodes straight into
    /// its compressor ([`encode_into`](Batch::encode_into)).
    pub fn encode_to(&self, buf: &mut Vec<u8>) {
        self.encode_into(buf, |buf, n| {
            buf.clear();
            buf.reserve(n);
        })
    }

    /// Writes the batch as OTLP protobuf into any [`bytes::BufMut`] (a compressor's input, so
    /// that the encoding is never whole in memory), after telling `announce` how many bytes
    /// follow.
    pub fn encode_into<B: bytes::BufMut>(&self, buf: &mut B, announce: impl FnOnce(&mut B, usize)) {
        LENS.with(|lens| {
            let mut lens = lens.borrow_mut();
            let n = encode::batch_encoded_len(&self.compact, &self.request, &mut lens);
            announce(buf, n);
            encode::encode_batch(&self.compact, &self.request, &lens, buf);
        })
    }

    /// The batch as OTLP protobuf, in a buffer of its own.
    pub fn encoded(&self) -> bytes::Bytes {
        let mut buf = Vec::new();
        self.encode_to(&mut buf);
        buf.into()
    }

    /// Bytes the batch takes as OTLP protobuf (counted, not encoded).
    pub fn encoded_len(&self) -> usize {
        LENS.with(|lens| encode::batch_encoded_len(&self.compact, &self.request, &mut lens.borrow_mut()))
    }

    /// The batch in batches of at most `max_bytes` of OTLP protobuf each (one metric larger
    /// than that goes alone), every piece a complete request that repeats its resource and
    /// scope; the batch itself when it fits. The host's compact metrics are split as they
    /// are (a piece copies 32 bytes a point, never the OTLP structures); the other resources
    /// with [`split_request`].
    pub fn split(&self, max_bytes: usize) -> Vec<std::borrow::Cow<'_, Batch>> {
        if self.encoded_len() <= max_bytes {
            return vec![std::borrow::Cow::Borrowed(self)];
        }
        // What a piece repeats (resource, scope) costs little: leave it a quarter at most.
        let budget = (max_bytes - max_bytes / 4).max(1);
        let mut out = Vec::new();
        let mut others = ExportMetricsServiceRequest::default();
        for h in &self.compact {
            let mut cur: Option<CompactResource> = None;
            let mut cur_bytes = 0usize;
            for s in &h.scopes {
                for m in &s.metrics {
                    let n = encode::compact_metric_size(m);
                    if cur_bytes > 0 && cur_bytes + n > budget {
                        out.push(Batch::with_host(cur.take().expect("bytes were counted"), Default::default(), self.seq));
                        cur_bytes = 0;
                    }
                    let c = cur.get_or_insert_with(|| CompactResource { resource: h.resource.clone(), ..Default::default() });
                    if !c.scopes.last().is_some_and(|l| std::sync::Arc::ptr_eq(&l.scope, &s.scope)) {
                        c.scopes.push(crate::points::CompactScope { scope: s.scope.clone(), schema_url: s.schema_url.clone(), metrics: Vec::new() });
                    }
                    c.scopes.last_mut().expect("pushed above").metrics.push(m.clone());
                    cur_bytes += n;
                }
            }
            out.extend(cur.map(|c| Batch::with_host(c, Default::default(), self.seq)));
            if !h.otlp_scopes.is_empty() {
                others.resource_metrics.push(ResourceMetrics {
                    resource: Some(h.resource.clone()),
                    scope_metrics: h.otlp_scopes.clone(),
                    schema_url: String::new(),
                });
            }
        }
        others.resource_metrics.extend(self.request.resource_metrics.iter().cloned());
        if !others.resource_metrics.is_empty() {
            use prost::Message as _;
            out.extend(split_request(&others, budget, |m| m.encoded_len() + 6).into_iter().map(|r| Batch::from_request(r, self.seq)));
        }
        out.into_iter().map(std::borrow::Cow::Owned).collect()
    }

    /// The parts, for the scheduler to reuse their allocations.
    fn into_parts(self) -> Vec<CompactResource> {
        self.compact
    }
}

thread_local! {
    /// The nested lengths of the batch being encoded on this thread, kept from batch to batch.
    static LENS: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A compact resource as OTLP (a copy).
fn compact_resource_metrics(h: &CompactResource) -> ResourceMetrics {
    let mut scope_metrics: Vec<_> = h.scopes.iter().map(crate::points::CompactScope::to_scope_metrics).collect();
    scope_metrics.extend(h.otlp_scopes.iter().cloned());
    ResourceMetrics { resource: Some(h.resource.clone()), scope_metrics, schema_url: String::new() }
}

/// Data points of one OTLP metric (histogram and summary points count once each).
fn metric_points(m: &opentelemetry_proto::tonic::metrics::v1::Metric) -> u64 {
    (match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }) as u64
}

/// Data points in a request (histogram and summary points count once each).
pub fn count_points(req: &ExportMetricsServiceRequest) -> u64 {
    req.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|sm| &sm.metrics).map(metric_points).sum()
}

/// Splits a request into requests whose metrics add up to at most `max_bytes` each by
/// `size_of` (one metric larger than the limit goes alone). Resources and scopes are kept
/// with each piece, so every piece is a valid request on its own.
pub fn split_request(
    req: &ExportMetricsServiceRequest,
    max_bytes: usize,
    size_of: impl Fn(&opentelemetry_proto::tonic::metrics::v1::Metric) -> usize,
) -> Vec<ExportMetricsServiceRequest> {
    use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics as Rm, ScopeMetrics as Sm};
    let mut out: Vec<ExportMetricsServiceRequest> = Vec::new();
    let mut cur = ExportMetricsServiceRequest::default();
    let mut cur_bytes = 0usize;
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let n = size_of(m);
                if cur_bytes > 0 && cur_bytes + n > max_bytes {
                    out.push(std::mem::take(&mut cur));
                    cur_bytes = 0;
                }
                // Open (or reuse) this resource and scope in the current piece.
                let same_rm = cur.resource_metrics.last().is_some_and(|r| r.resource == rm.resource && r.schema_url == rm.schema_url);
                if !same_rm {
                    cur.resource_metrics.push(Rm { resource: rm.resource.clone(), scope_metrics: Vec::new(), schema_url: rm.schema_url.clone() });
                }
                let r = cur.resource_metrics.last_mut().expect("pushed above");
                let same_sm = r.scope_metrics.last().is_some_and(|s| s.scope == sm.scope && s.schema_url == sm.schema_url);
                if !same_sm {
                    r.scope_metrics.push(Sm { scope: sm.scope.clone(), metrics: Vec::new(), schema_url: sm.schema_url.clone() });
                }
                r.scope_metrics.last_mut().expect("pushed above").metrics.push(m.clone());
                cur_bytes += n;
            }
        }
    }
    if !cur.resource_metrics.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics as Rm, ScopeMetrics as Sm};
    use opentelemetry_proto::tonic::resource::v1::Resource as PRes;

    fn req(resources: usize, metrics: usize) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: (0..resources)
                .map(|r| Rm {
                    resource: Some(PRes { attributes: vec![], dropped_attributes_count: r as u32, entity_refs: vec![] }),
                    scope_metrics: vec![Sm {
                        scope: None,
                        metrics: (0..metrics).map(|i| Metric { name: format!("m{r}.{i}"), ..Default::default() }).collect(),
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn compact_metrics_of_one_name_in_several_resources_are_one_family_in_the_metrics_text() {
        let host = testutil::fixture_tick().host().unwrap().clone();
        // Two more resources with the host's metrics (as two scraped targets both have `up`).
        let target = |name: &str| {
            let mut r = host.clone();
            r.resource.attributes.push(crate::points::proto_key_value(&opentelemetry::KeyValue::new("service.name", name.to_string())));
            r
        };
        let batch = Batch::with_compact(vec![host.clone(), target("a"), target("b")], Default::default(), 1);
        let opts = crate::translate::TranslateOptions::default();
        let mut out = String::new();
        batch.render_text(&[], &opts, &mut out);
        let mut general = String::new();
        crate::translate::render_text(&crate::translate::translate(&batch.to_request(), &opts).0, &mut general);
        let sorted = |s: &str| {
            let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&out), sorted(&general));
        assert_eq!(out.matches("# TYPE system_memory_usage_bytes ").count(), 1, "one header for the three resources");
        assert_eq!(out.matches("system_memory_usage_bytes{").count(), 12, "4 states × 3 resources");
    }

    #[test]
    fn metrics_text_written_from_the_points_is_what_translating_the_otlp_copy_renders() {
        let batch = testutil::fixture_tick();
        let opts = crate::translate::TranslateOptions::default();
        let general = |extra: &[ResourceMetrics]| {
            let mut req = batch.to_request().into_owned();
            req.resource_metrics.extend(extra.iter().cloned());
            let mut out = String::new();
            crate::translate::render_text(&crate::translate::translate(&req, &opts).0, &mut out);
            out
        };
        let sorted = |s: &str| {
            let mut lines: Vec<&str> = s.lines().collect();
            lines.sort();
            lines.join("\n")
        };
        // A pushed resource of its own, and one whose metric has a host metric's name (the
        // families merge: the general path).
        let mut pushed = batch.to_request().resource_metrics[0].clone();
        pushed.resource = Some(opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: vec![crate::points::proto_key_value(&opentelemetry::KeyValue::new("service.name", "app"))],
            ..Default::default()
        });
        let mut other = pushed.clone();
        other.scope_metrics[0].metrics.retain(|m| m.name == "system.memory.usage");
        pushed.scope_metrics[0].metrics.iter_mut().for_each(|m| m.name = format!("app.{}", m.name));
        for extra in [vec![], vec![pushed], vec![other]] {
            let mut out = String::new();
            batch.render_text(&extra, &opts, &mut out);
            assert!(out.contains("system_memory_usage_bytes{"), "{out}");
            assert_eq!(sorted(&out), sorted(&general(&extra)));
        }
    }

    #[test]
    fn a_batch_over_the_limit_splits_into_complete_requests_that_hold_every_point_once() {
        use prost::Message as _;
        let tick = testutil::fixture_tick();
        let others = ExportMetricsServiceRequest { resource_metrics: vec![tick.to_request().resource_metrics[0].clone(); 2] };
        let batch = Batch::with_host(tick.host().unwrap().clone(), others, 7);
        assert_eq!(batch.split(usize::MAX).len(), 1, "a batch that fits is itself");
        let max = 4096;
        let pieces = batch.split(max);
        assert!(pieces.len() > 3 * batch.encoded().len() / max / 2, "{} pieces", pieces.len());
        let biggest_metric = batch.host().unwrap().scopes.iter().flat_map(|s| &s.metrics).map(encode::compact_metric_size).max().unwrap();
        let mut names = Vec::new();
        for p in &pieces {
            let req = ExportMetricsServiceRequest::decode(&p.encoded()[..]).unwrap();
            assert!(p.encoded().len() <= max.max(biggest_metric + 512), "{} bytes", p.encoded().len());
            assert_eq!(p.points, count_points(&req));
            for rm in &req.resource_metrics {
                assert_eq!(rm.resource.as_ref().unwrap().attributes[0].key, "host.name", "every piece has its resource");
                names.extend(rm.scope_metrics.iter().flat_map(|s| &s.metrics).map(|m| m.name.clone()));
            }
        }
        assert_eq!(pieces.iter().map(|p| p.points).sum::<u64>(), batch.points, "every point once");
        let mut want: Vec<String> =
            batch.to_request().resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).map(|m| m.name.clone()).collect();
        want.sort();
        names.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn a_ticks_batch_translates_in_place_exactly_as_its_otlp_copy_does() {
        let batch = testutil::fixture_tick();
        assert!(batch.host().is_some_and(|h| !h.scopes.is_empty()));
        for opts in [
            crate::translate::TranslateOptions::default(),
            crate::translate::TranslateOptions {
                name_prefix: Some("node".into()),
                promote_resource_attributes: vec!["host.name".into()],
                ..Default::default()
            },
        ] {
            let (in_place, stats) = batch.translate(&[], &opts);
            let (copy, copy_stats) = crate::translate::translate(&batch.to_request(), &opts);
            assert!(in_place.len() > 20);
            assert_eq!(in_place, copy);
            assert_eq!(stats.dropped(), copy_stats.dropped());
        }
    }

    #[test]
    fn splitting_keeps_every_metric_once_with_its_resource_and_respects_the_limit() {
        let r = req(3, 10);
        let parts = split_request(&r, 35, |_| 10);
        assert_eq!(parts.len(), 10); // 30 metrics, 3 per piece
        let mut names = Vec::new();
        for p in &parts {
            let n: usize = p.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).map(|s| s.metrics.len()).sum();
            assert!(n * 10 <= 35);
            for rm in &p.resource_metrics {
                for m in &rm.scope_metrics[0].metrics {
                    let res_idx: u32 = m.name[1..2].parse().unwrap();
                    assert_eq!(rm.resource.as_ref().unwrap().dropped_attributes_count, res_idx, "metric kept with its resource");
                    names.push(m.name.clone());
                }
            }
        }
        assert_eq!(names.len(), 30);
        names.dedup();
        assert_eq!(names.len(), 30);
    }

    #[test]
    fn a_metric_larger_than_the_limit_goes_alone() {
        let parts = split_request(&req(1, 3), 5, |_| 10);
        assert_eq!(parts.len(), 3);
    }
}
