//! OTLP requests for the `otlp` exporter's unit tests (the common builders are the pipeline's).

pub(crate) use crate::pipeline::testutil::{int_point, kv, metrics, request, sum};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

pub(crate) fn big_request(n: usize) -> ExportMetricsServiceRequest {
    let ms =
        (0..n).map(|i| sum(&format!("metric.number.{i}"), true, (0..10).map(|j| int_point(vec![kv("k", &format!("value-{j}"))], 1, 2, j)).collect())).collect();
    request("h", ms)
}
