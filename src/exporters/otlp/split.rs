//! A request too big for `max_batch_bytes` split by metric: each piece a complete request
//! that repeats its resources and scopes.

use crate::pipeline::split_request;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use prost::Message as _;

/// Splits `req` into requests of at most `max` encoded bytes each (a single metric larger
/// than that goes alone).
pub fn split_by_encoded_len(req: &ExportMetricsServiceRequest, max: usize) -> Vec<ExportMetricsServiceRequest> {
    // What every piece repeats: resources and scopes without their metrics.
    let frame = ExportMetricsServiceRequest {
        resource_metrics: req
            .resource_metrics
            .iter()
            .map(|rm| ResourceMetrics {
                resource: rm.resource.clone(),
                schema_url: rm.schema_url.clone(),
                scope_metrics: rm
                    .scope_metrics
                    .iter()
                    .map(|sm| ScopeMetrics { scope: sm.scope.clone(), metrics: Vec::new(), schema_url: sm.schema_url.clone() })
                    .collect(),
            })
            .collect(),
    }
    .encoded_len();
    let budget = max.saturating_sub(frame).max(max / 4).max(1);
    // A metric costs its length plus its tag and length prefix (at most 6 bytes).
    split_request(req, budget, |m| m.encoded_len() + 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::otlp::testutil::{big_request, metrics};

    #[test]
    fn requests_are_split_under_max_batch_bytes_keeping_every_metric_once() {
        let req = big_request(200);
        let total = req.encoded_len();
        let parts = split_by_encoded_len(&req, 4096);
        assert!(parts.len() >= total / 4096, "{} parts for {total} bytes", parts.len());
        let mut names = Vec::new();
        for p in &parts {
            assert!(p.encoded_len() <= 4096, "{}", p.encoded_len());
            assert_eq!(p.resource_metrics[0].resource, req.resource_metrics[0].resource);
            names.extend(metrics(p).iter().map(|m| m.name.clone()));
        }
        assert_eq!(names.len(), 200);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 200);
    }
}
