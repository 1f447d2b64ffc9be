//! OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` on tonic's
//! generated server, gzip and zstd messages (tonic bounds the decompressed size by
//! `max_recv_msg_size_mib` while decompressing). Answers, as the OTLP specification says:
//!
//! | case | status |
//! | --- | --- |
//! | taken (maybe some points dropped) | OK, `partial_success` when points were dropped |
//! | queues full, too many at once | `RESOURCE_EXHAUSTED` with `RetryInfo` (retryable) |
//! | message over the limit, compressed or not | `RESOURCE_EXHAUSTED` without `RetryInfo` |
//! | not a valid protobuf message | `INVALID_ARGUMENT` |
//! | missing or wrong bearer token | `UNAUTHENTICATED` |
//!
//! tonic answers a message over the limit with `OUT_OF_RANGE` and one it cannot decode with
//! `INTERNAL`; [`handler`] rewrites those (they come before `export` is called) and counts them.

use super::listen::{Answer, Body, Handler};
use super::{bearer_matches, config::Limits, Receiver, Refusal, BUSY_RETRY_AFTER};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower_service::Service;

struct Export {
    receiver: Arc<Receiver>,
}

#[tonic::async_trait]
impl MetricsService for Export {
    async fn export(&self, request: tonic::Request<ExportMetricsServiceRequest>) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        match self.receiver.ingest(request.into_inner(), "grpc") {
            Ok(a) => {
                let partial_success = (a.rejected > 0)
                    .then(|| ExportMetricsPartialSuccess { rejected_data_points: i64::try_from(a.rejected).unwrap_or(i64::MAX), error_message: a.message });
                Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success }))
            }
            Err(r) => Err(status(&r)),
        }
    }
}

/// The gRPC status of a refusal.
pub fn status(r: &Refusal) -> Status {
    match r {
        Refusal::Busy(m) => Status::with_error_details(Code::ResourceExhausted, m.clone(), ErrorDetails::with_retry_info(Some(BUSY_RETRY_AFTER))),
        Refusal::TooLarge(m) => Status::resource_exhausted(m.clone()),
        Refusal::Malformed(m) => Status::invalid_argument(m.clone()),
        Refusal::Unauthenticated(m) => Status::unauthenticated(m.clone()),
        Refusal::Unsupported(m) => Status::unimplemented(m.clone()),
    }
}

/// The request handler of the gRPC listener.
pub fn handler(receiver: Arc<Receiver>, limits: Limits, token: Option<String>) -> Handler {
    let server = MetricsServiceServer::new(Export { receiver: receiver.clone() })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(limits.max_message);
    Arc::new(move |req| {
        let (mut server, receiver, token) = (server.clone(), receiver.clone(), token.clone());
        Box::pin(async move {
            if let Some(t) = &token {
                if !bearer_matches(req.headers().get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes()), t) {
                    return status(&receiver.refused(Refusal::Unauthenticated("missing or wrong bearer token".into()), "grpc")).into_http();
                }
            }
            let _permit = match receiver.admit() {
                Ok(p) => p,
                Err(r) => return status(&receiver.refused(r, "grpc")).into_http(),
            };
            let resp = match server.call(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            fix_decode_status(resp, &receiver)
        }) as Answer
    })
}

/// tonic's own refusals, made before `export` runs, as the OTLP specification wants them;
/// each is counted.
fn fix_decode_status(mut resp: hyper::Response<Body>, receiver: &Receiver) -> hyper::Response<Body> {
    let Some(st) = Status::from_header_map(resp.headers()) else { return resp };
    let refusal = match st.code() {
        Code::OutOfRange => Refusal::TooLarge(st.message().to_string()),
        Code::ResourceExhausted if st.message().contains("decompressing") => Refusal::TooLarge(st.message().to_string()),
        Code::Internal => Refusal::Malformed(st.message().to_string()),
        Code::Unimplemented => Refusal::Unsupported(st.message().to_string()),
        _ => return resp,
    };
    let refusal = receiver.refused(refusal, "grpc");
    let fixed: hyper::Response<Body> = status(&refusal).into_http();
    for (k, v) in fixed.headers() {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_refusal_carries_retry_info_and_the_others_map_to_the_specs_codes() {
        let busy = status(&Refusal::Busy("full".into()));
        assert_eq!(busy.code(), Code::ResourceExhausted);
        assert_eq!(busy.get_details_retry_info().and_then(|r| r.retry_delay), Some(BUSY_RETRY_AFTER));
        let large = status(&Refusal::TooLarge("big".into()));
        assert_eq!((large.code(), large.get_details_retry_info().is_none()), (Code::ResourceExhausted, true), "not retryable");
        assert_eq!(status(&Refusal::Malformed("x".into())).code(), Code::InvalidArgument);
        assert_eq!(status(&Refusal::Unauthenticated("x".into())).code(), Code::Unauthenticated);
    }
}
