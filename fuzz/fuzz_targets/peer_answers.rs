//! Any bytes as what a backend answers an exporter: an HTTP status, headers (`Retry-After`
//! among them) and body, classified as remote-write/http_json and as OTLP/HTTP (whose body may
//! be an `ExportMetricsServiceResponse` or a `google.rpc.Status`); and a gRPC status whose
//! details may carry a `RetryInfo`. No panic; a delay a peer asks for is returned as asked.
#![no_main]

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use metricsd::exporters::http_post::classify;
use metricsd::exporters::otlp::{classify_http, classify_status, retry_info_delay};
use metricsd::http::{retry_after, Answer};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Some((&[code_hi, code_lo, split], rest)) = data.split_first_chunk::<3>() else { return };
    let (value, body) = rest.split_at(usize::from(split).min(rest.len()));

    // gRPC: any code, the bytes as its details.
    let status = tonic::Status::with_details(tonic::Code::from(i32::from(code_lo % 17)), "fuzz", Bytes::copy_from_slice(rest));
    let _ = classify_status(&status);
    let _ = retry_info_delay(rest);

    // HTTP: the first bytes as Retry-After, the rest as the body.
    let Ok(status) = StatusCode::from_u16(100 + u16::from_be_bytes([code_hi, code_lo]) % 500) else { return };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(value) {
        headers.insert(header::RETRY_AFTER, v);
        // (A header value is text only if it is ASCII.)
        if let Ok(secs) = std::str::from_utf8(value).ok().filter(|v| v.is_ascii()).unwrap_or("").trim().parse::<u64>() {
            assert_eq!(retry_after(&headers), Some(Duration::from_secs(secs)));
        }
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    let answer = || Ok(Answer { status, headers: headers.clone(), body: Bytes::copy_from_slice(body) });
    let _ = classify(answer(), &[429]);
    let _ = classify_http(answer());
});
