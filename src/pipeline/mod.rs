//! The scheduler: one tick, on a thread of its own, refreshes every collector (in turn; those
//! that may block each on a blocking thread under the time limit), collects the OpenTelemetry
//! instruments (their callbacks write OTLP points, see [`meter`]) into one OTLP
//! `ExportMetricsServiceRequest` (the batch), and hands it to every exporter's queue.
//!
//! Why our own collect and not a periodic reader: that runs callbacks on its own thread with no
//! time limit and no hook to refresh snapshots first. Our scheduler also gives `--once`,
//! `/metrics` and one collection shared by every exporter.

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

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

/// One collection: the OTLP request every exporter receives (shared, never copied).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The metrics, one `ResourceMetrics` for the host and one per scraped target.
    pub request: ExportMetricsServiceRequest,
    /// Tick number.
    pub seq: u64,
    /// Data points in the batch.
    pub points: u64,
    /// `request` as OTLP protobuf, made once for every OTLP exporter (see [`Batch::encoded`]).
    encoded: std::sync::OnceLock<bytes::Bytes>,
}

impl Batch {
    /// A batch of `request` for tick `seq` holding `points` points.
    pub fn new(request: ExportMetricsServiceRequest, seq: u64, points: u64) -> Self {
        Batch { request, seq, points, encoded: std::sync::OnceLock::new() }
    }

    /// Wraps a request, counting its points.
    pub fn from_request(request: ExportMetricsServiceRequest, seq: u64) -> Self {
        let points = count_points(&request);
        Batch::new(request, seq, points)
    }

    /// The request as OTLP protobuf, encoded on first use and shared by every OTLP exporter.
    /// The scheduler encodes it on the tick's thread right after building the batch when an
    /// OTLP exporter is configured, while the batch is still in that CPU's cache.
    pub fn encoded(&self) -> &bytes::Bytes {
        self.encoded.get_or_init(|| encode::encode_to_vec(&self.request).into())
    }

    /// Encodes the request into `buf` (cleared first; its allocation is kept when big enough)
    /// as [`encoded`](Batch::encoded) unless that was done already.
    fn encode_into(&self, mut buf: bytes::BytesMut, lens: &mut Vec<usize>) {
        self.encoded.get_or_init(|| {
            buf.clear();
            buf.reserve(encode::encoded_len(&self.request, lens));
            encode::encode(&self.request, lens, &mut buf);
            buf.freeze()
        });
    }
}

/// Data points in a request (histogram and summary points count once each).
pub fn count_points(req: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0u64;
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                n += match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                } as u64;
            }
        }
    }
    n
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
