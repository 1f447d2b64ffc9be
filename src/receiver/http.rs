//! OTLP/HTTP: `POST /v1/metrics` with a protobuf (`application/x-protobuf`) or JSON
//! (`application/json`) body, `Content-Encoding: gzip` or `zstd` or none. The body is read with
//! its size bounded (`Content-Length` checked first, then while reading), decoded on a
//! blocking thread (see [`super::decode`]) and answered in the request's format:
//!
//! | case | status |
//! | --- | --- |
//! | taken (maybe some points dropped) | 200, `ExportMetricsServiceResponse` (`partialSuccess` when points were dropped) |
//! | queues full, too many at once | 429 with `Retry-After` |
//! | body over the limit, compressed or not | 413 |
//! | not a valid message, broken compression | 400 naming what was wrong |
//! | missing or wrong bearer token | 401 |
//! | another media type or encoding | 415; another path 404, another method 405 |
//!
//! Error bodies are a `google.rpc.Status` (protobuf, or JSON `{"code":..,"message":..}`).

use super::decode::{self, Encoding, Format};
use super::listen::{full, Answer, Body, Handler};
use super::{bearer_matches, config::Limits, Receiver, Refusal, BUSY_RETRY_AFTER};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse};
use prost::Message;
use std::sync::Arc;

/// The path OTLP/HTTP metrics are posted to.
pub const METRICS_PATH: &str = "/v1/metrics";

/// The request handler of the HTTP listener.
pub fn handler(receiver: Arc<Receiver>, limits: Limits, token: Option<String>) -> Handler {
    Arc::new(move |req| {
        let (receiver, token) = (receiver.clone(), token.clone());
        Box::pin(async move {
            let format =
                req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| Format::from_content_type(v).ok()).unwrap_or(Format::Protobuf);
            match handle(req, &receiver, limits, token.as_deref()).await {
                Ok(resp) => resp,
                Err((code, r)) => refusal_response(code, &receiver.refused(r, "http"), format),
            }
        }) as Answer
    })
}

type Refused = (StatusCode, Refusal);

async fn handle(req: Request<Incoming>, receiver: &Receiver, limits: Limits, token: Option<&str>) -> Result<Response<Body>, Refused> {
    if req.uri().path() != METRICS_PATH {
        return Err((StatusCode::NOT_FOUND, Refusal::Unsupported(format!("no such path {:?}; OTLP metrics go to {METRICS_PATH}", req.uri().path()))));
    }
    if req.method() != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, Refusal::Unsupported(format!("method {} (use POST)", req.method()))));
    }
    if let Some(t) = token {
        if !bearer_matches(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes()), t) {
            return Err((StatusCode::UNAUTHORIZED, Refusal::Unauthenticated("missing or wrong bearer token".into())));
        }
    }
    let _permit = receiver.admit().map_err(|r| (StatusCode::TOO_MANY_REQUESTS, r))?;
    // Refuse before reading and decoding the body when the queues are full already.
    receiver.has_room().map_err(|r| (StatusCode::TOO_MANY_REQUESTS, r))?;
    let unsupported = |e: decode::DecodeError| (StatusCode::UNSUPPORTED_MEDIA_TYPE, Refusal::from(e));
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = Format::from_content_type(content_type).map_err(unsupported)?;
    let encoding = Encoding::from_header(req.headers().get(CONTENT_ENCODING).and_then(|v| v.to_str().ok())).map_err(unsupported)?;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TooLarge(format!("the body is larger than {} bytes (receivers.otlp.protocols.http.max_request_body_size)", limits.max_message)),
        )
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_message as u64) {
        return Err(too_large());
    }
    let body = match Limited::new(req.into_body(), limits.max_message).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => return Err((StatusCode::BAD_REQUEST, Refusal::Malformed(format!("cannot read the body: {e}")))),
    };
    let max = limits.max_decompressed;
    let decoded = tokio::task::spawn_blocking(move || decode::decode_body(&body, format, encoding, max)).await;
    let request = match decoded {
        Ok(Ok(r)) => r,
        Ok(Err(e @ decode::DecodeError::TooLarge { .. })) => return Err((StatusCode::PAYLOAD_TOO_LARGE, Refusal::from(e))),
        Ok(Err(e)) => return Err((StatusCode::BAD_REQUEST, Refusal::from(e))),
        Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, Refusal::Malformed(format!("decoding failed: {e}")))),
    };
    let accepted = receiver.ingest(request, "http").map_err(|r| (StatusCode::TOO_MANY_REQUESTS, r))?;
    let partial_success = (accepted.rejected > 0)
        .then(|| ExportMetricsPartialSuccess { rejected_data_points: i64::try_from(accepted.rejected).unwrap_or(i64::MAX), error_message: accepted.message });
    let answer = ExportMetricsServiceResponse { partial_success };
    let body = match format {
        Format::Protobuf => answer.encode_to_vec(),
        // A full success is `{}` (proto3 JSON leaves an unset message out).
        Format::Json if answer.partial_success.is_none() => b"{}".to_vec(),
        Format::Json => serde_json::to_vec(&answer).unwrap_or_else(|_| b"{}".to_vec()),
    };
    Ok(respond(StatusCode::OK, format, body))
}

fn respond(code: StatusCode, format: Format, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    let ct = match format {
        Format::Protobuf => "application/x-protobuf",
        Format::Json => "application/json",
    };
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

/// The answer to a refusal: a `google.rpc.Status` body, `Retry-After` when busy.
fn refusal_response(code: StatusCode, r: &Refusal, format: Format) -> Response<Body> {
    let grpc_code = super::grpc::status(r).code() as i32;
    let message = r.to_string();
    let body = match format {
        Format::Protobuf => tonic_types::pb::Status { code: grpc_code, message, details: Vec::new() }.encode_to_vec(),
        Format::Json => serde_json::to_vec(&serde_json::json!({"code": grpc_code, "message": message})).unwrap_or_default(),
    };
    let code = if matches!(r, Refusal::Busy(_)) { StatusCode::TOO_MANY_REQUESTS } else { code };
    let mut resp = respond(code, format, body);
    if matches!(r, Refusal::Busy(_)) {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER.as_secs()));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_answer_is_429_with_retry_after_and_a_status_body_in_the_requests_format() {
        let r = refusal_response(StatusCode::TOO_MANY_REQUESTS, &Refusal::Busy("queue full".into()), Format::Json);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "5");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r = refusal_response(StatusCode::PAYLOAD_TOO_LARGE, &Refusal::TooLarge("big".into()), Format::Protobuf);
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.headers().get(RETRY_AFTER).is_none());
    }
}
