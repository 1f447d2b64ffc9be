//! Any bytes as an OTLP metrics request, protobuf or OTLP/JSON (as the tests' receivers decode
//! them), then through everything that consumes a batch: the own protobuf encoder must write
//! what prost writes, the Prometheus translation and `/metrics` rendering must give text the
//! crate's own Prometheus parser accepts, and remote-write and http_json encoding must not
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::exporters::{http_json::metricsd_documents, remote_write::encode};
use metricsd::pipeline::encode::encode_to_vec;
use metricsd::scrape::text::{parse, TextFormat};
use metricsd::translate::{render_text, translate, TranslateOptions};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let req = match data.split_first() {
        Some((b'{', _)) => serde_json::from_slice::<ExportMetricsServiceRequest>(data).ok(),
        _ => ExportMetricsServiceRequest::decode(data).ok(),
    };
    let Some(req) = req else { return };
    assert_eq!(encode_to_vec(&req), req.encode_to_vec());
    let (families, _) = translate(&req, &TranslateOptions::default());
    let mut text = String::new();
    render_text(&families, &mut text);
    let parsed = parse(&text, TextFormat::Prometheus);
    assert!(parsed.errors.is_empty(), "{:?} in\n{text}", parsed.errors);
    for wr in encode::to_write_requests(families, 1 << 16) {
        encode::encode(&wr, &mut Vec::new());
    }
    let _ = metricsd_documents(&req, &["host.name".to_string()]);
});
