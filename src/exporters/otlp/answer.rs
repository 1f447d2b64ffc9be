//! OTLP answers turned into the queue's [`Outcome`]: gRPC status codes, the server's
//! `google.rpc.RetryInfo` delay, partial success, and OTLP/HTTP statuses and bodies. The
//! `google.rpc` types are tonic-types'.
//!
//! As the OTLP specification says. gRPC: `UNAVAILABLE`, `CANCELLED`, `DEADLINE_EXCEEDED`,
//! `ABORTED`, `OUT_OF_RANGE` and `DATA_LOSS` are retried with backoff; `RESOURCE_EXHAUSTED` is
//! retried only when the server attached a `google.rpc.RetryInfo` (a server out of memory says
//! so; a quota that will not recover does not); a `RetryInfo` delay is honoured whatever the
//! code. Every other code (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, `PERMISSION_DENIED`,
//! `UNIMPLEMENTED`, ...) drops the payload, logged once and counted. HTTP: 429, 502, 503 and 504
//! are retried, honouring `Retry-After`; other statuses drop the payload (the server's
//! `google.rpc.Status` message is logged). A connection failure or a timeout is retried. A
//! partial success (`rejected_data_points` > 0) counts the rejected points and logs the
//! server's message; the rest was delivered and is not resent.

use crate::http::{body_snippet, retry_after, Answer, RequestError};
use crate::pipeline::queue::Outcome;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message as _;
use std::time::Duration;

/// The `type_url` of `google.rpc.RetryInfo`.
pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The `RetryInfo` delay carried by an encoded `google.rpc.Status`, if any. A `type_url` with
/// another host than `type.googleapis.com` is accepted, and a negative part of the delay counts
/// as 0 (tonic-types' own `get_details_retry_info` takes neither).
pub fn retry_info_delay(details: &[u8]) -> Option<Duration> {
    let status = tonic_types::Status::decode(details).ok()?;
    status.details.iter().filter(|a| a.type_url == RETRY_INFO_TYPE || a.type_url.ends_with("/google.rpc.RetryInfo")).find_map(|a| {
        let d = tonic_types::pb::RetryInfo::decode(a.value.as_slice()).ok()?.retry_delay?;
        Some(Duration::from_secs(d.seconds.max(0) as u64).saturating_add(Duration::from_nanos(d.nanos.max(0) as u64)))
    })
}

/// An encoded `google.rpc.Status` with a `RetryInfo` of `delay` (for servers and tests).
pub fn status_details_with_retry_info(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    use tonic_types::{ErrorDetails, StatusExt};
    tonic::Status::with_error_details(tonic::Code::from_i32(code), message, ErrorDetails::with_retry_info(Some(delay))).details().to_vec()
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A gRPC error as the OTLP specification classifies it.
pub fn classify_status(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    let mut msg = status.message().to_string();
    let mut cur = std::error::Error::source(status);
    while let Some(c) = cur {
        let t = c.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        cur = c.source();
    }
    let reason = format!("gRPC {}: {}", code_name(status.code()), msg);
    let delay = retry_info_delay(status.details());
    match status.code() {
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::OutOfRange | Code::DataLoss => {
            Outcome::Retry { after: delay, reason }
        }
        Code::ResourceExhausted if delay.is_some() => Outcome::Retry { after: delay, reason },
        _ => Outcome::Drop { reason },
    }
}

/// A successful answer: a partial success when points were rejected.
pub fn classify_response(resp: &ExportMetricsServiceResponse) -> Outcome {
    match &resp.partial_success {
        Some(p) if p.rejected_data_points > 0 => Outcome::Partial { rejected: p.rejected_data_points as u64, message: p.error_message.clone() },
        _ => Outcome::Sent,
    }
}

/// An OTLP/HTTP answer as the specification classifies it: 429, 502, 503, 504 retried
/// (honouring `Retry-After`), other failures dropped, a 200 body read for partial success.
pub fn classify_http(result: Result<Answer, RequestError>) -> Outcome {
    let a = match result {
        Ok(a) => a,
        Err(e) => return Outcome::Retry { after: None, reason: e.to_string() },
    };
    let protobuf = a.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/x-protobuf"));
    if a.status.is_success() {
        if protobuf {
            if let Ok(resp) = ExportMetricsServiceResponse::decode(a.body.as_ref()) {
                return classify_response(&resp);
            }
        }
        return Outcome::Sent;
    }
    let message = protobuf
        .then(|| tonic_types::Status::decode(a.body.as_ref()).ok())
        .flatten()
        .map(|s| s.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body_snippet(&a.body));
    let reason = format!("HTTP {}: {message}", a.status.as_u16());
    match a.status.as_u16() {
        429 | 502 | 503 | 504 => Outcome::Retry { after: retry_after(&a.headers), reason },
        _ => Outcome::Drop { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;

    fn status_with_retry_info(code: tonic::Code, delay: Duration) -> tonic::Status {
        tonic::Status::with_details(code, "busy", status_details_with_retry_info(code as i32, "busy", delay).into())
    }

    #[test]
    fn transient_grpc_codes_are_retried_as_the_otlp_specification_lists_them() {
        use tonic::Code::*;
        for code in [Unavailable, Cancelled, DeadlineExceeded, Aborted, OutOfRange, DataLoss] {
            assert!(matches!(classify_status(&tonic::Status::new(code, "x")), Outcome::Retry { after: None, .. }), "{code:?}");
        }
        match classify_status(&tonic::Status::new(Unavailable, "down")) {
            Outcome::Retry { reason, .. } => assert_eq!(reason, "gRPC UNAVAILABLE: down"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn other_grpc_codes_are_dropped() {
        use tonic::Code::*;
        for code in [InvalidArgument, Unauthenticated, PermissionDenied, Unimplemented, NotFound, Internal, Unknown, FailedPrecondition, AlreadyExists] {
            assert!(matches!(classify_status(&tonic::Status::new(code, "x")), Outcome::Drop { .. }), "{code:?}");
        }
    }

    #[test]
    fn resource_exhausted_is_retried_only_with_retry_info_whose_delay_is_honoured() {
        assert!(matches!(classify_status(&tonic::Status::resource_exhausted("quota")), Outcome::Drop { .. }));
        let s = status_with_retry_info(tonic::Code::ResourceExhausted, Duration::from_millis(1500));
        assert_eq!(retry_info_delay(s.details()), Some(Duration::from_millis(1500)));
        assert!(matches!(classify_status(&s), Outcome::Retry { after: Some(d), .. } if d == Duration::from_millis(1500)));
        let s = status_with_retry_info(tonic::Code::Unavailable, Duration::from_secs(3));
        assert!(matches!(classify_status(&s), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(3)));
    }

    #[test]
    fn a_partial_success_reports_the_rejected_points_and_an_empty_one_is_a_success() {
        let resp = |rejected, msg: &str| ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: msg.into() }),
        };
        assert_eq!(classify_response(&resp(3, "bad unit")), Outcome::Partial { rejected: 3, message: "bad unit".into() });
        assert_eq!(classify_response(&resp(0, "")), Outcome::Sent);
        assert_eq!(classify_response(&resp(0, "a warning")), Outcome::Sent);
        assert_eq!(classify_response(&ExportMetricsServiceResponse { partial_success: None }), Outcome::Sent);
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Result<Answer, RequestError> {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in headers {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        Ok(Answer { status: hyper::StatusCode::from_u16(status).unwrap(), headers: h, body: body.into() })
    }

    #[test]
    fn http_429_502_503_504_are_retried_honouring_retry_after_and_other_statuses_dropped() {
        for s in [429, 502, 503, 504] {
            assert!(
                matches!(classify_http(answer(s, &[("retry-after", "4")], vec![])), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(4)),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 413, 500, 501] {
            assert!(matches!(classify_http(answer(s, &[], vec![])), Outcome::Drop { .. }), "{s}");
        }
        let body = tonic_types::Status { code: 3, message: "metric name missing".into(), details: vec![] }.encode_to_vec();
        match classify_http(answer(400, &[("content-type", "application/x-protobuf")], body)) {
            Outcome::Drop { reason } => assert_eq!(reason, "HTTP 400: metric name missing"),
            o => panic!("{o:?}"),
        }
        assert!(matches!(classify_http(Err(RequestError::Timeout(Duration::from_secs(1)))), Outcome::Retry { .. }));
        let ok = ExportMetricsServiceResponse { partial_success: Some(ExportMetricsPartialSuccess { rejected_data_points: 2, error_message: "dup".into() }) }
            .encode_to_vec();
        assert_eq!(classify_http(answer(200, &[("content-type", "application/x-protobuf")], ok)), Outcome::Partial { rejected: 2, message: "dup".into() });
        assert_eq!(classify_http(answer(200, &[], vec![])), Outcome::Sent);
    }

    #[test]
    fn retry_info_details_are_one_google_rpc_status_with_one_retry_info() {
        let bytes = status_details_with_retry_info(8, "busy", Duration::new(2, 500));
        let status = tonic_types::Status::decode(bytes.as_slice()).unwrap();
        assert_eq!((status.code, status.message.as_str(), status.details.len()), (8, "busy", 1));
        assert_eq!(status.details[0].type_url, RETRY_INFO_TYPE);
        let d = tonic_types::pb::RetryInfo::decode(status.details[0].value.as_slice()).unwrap().retry_delay.unwrap();
        assert_eq!((d.seconds, d.nanos), (2, 500));
        // Another host in the type URL, and a negative part of the delay counted as 0.
        let mut info = tonic_types::pb::RetryInfo { retry_delay: Some(Default::default()) };
        if let Some(d) = info.retry_delay.as_mut() {
            (d.seconds, d.nanos) = (3, -1);
        }
        let mut other = tonic_types::Status { code: 14, message: String::new(), details: vec![Default::default()] };
        other.details[0].type_url = "example.com/google.rpc.RetryInfo".into();
        other.details[0].value = info.encode_to_vec();
        assert_eq!(retry_info_delay(&other.encode_to_vec()), Some(Duration::from_secs(3)));
    }
}
