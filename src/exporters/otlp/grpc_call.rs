//! One OTLP/gRPC export: the payload (already framed and compressed on the exporter's thread, see
//! `grpc_codec.rs`) is the HTTP/2 request body as it is, sent over the tonic `Channel` (one
//! HTTP/2 connection, reused by every export; our connector: proxy, rustls). The request:
//!
//! ```text
//! POST /opentelemetry.proto.collector.metrics.v1.MetricsService/Export HTTP/2
//! content-type: application/grpc        te: trailers            grpc-timeout: 10000m
//! grpc-encoding: gzip                   grpc-accept-encoding: gzip,zstd,identity
//! user-agent: metricsd/0.1.0 tonic/0.14.9   x-tenant: team-a (the configured headers)
//! ```
//!
//! The answer is read by tonic's own machinery, as `tonic::client::Grpc::unary` does it: a
//! status in the headers (trailers-only) by `Status::from_header_map`, the message by
//! `codec::Streaming::new_response` (frames, gzip/zstd answers, at most [`ANSWER_LIMIT`]
//! bytes), a status in the trailers by `Streaming::trailers`. Done before them: a
//! `grpc-status-details-bin` that is not base64 is removed (tonic 0.14's
//! `Status::from_header_map` panics on it, and a panic aborts the agent), and an answer that is
//! not `application/grpc` and carries no `grpc-status` (a proxy's error page) takes its code from
//! the HTTP status, as grpc-go does, instead of having its HTML read as gRPC frames.

use super::grpc_codec::{wire, ResponseDecoder, Wire, EXPORT_PATH};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use std::time::Duration;
use tonic::codec::{CompressionEncoding, Streaming};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower_service::Service as _;

/// Most bytes of an answer's message (decompressed); an OTLP answer is a few bytes, or a
/// partial success with one message.
pub const ANSWER_LIMIT: usize = 64 * 1024;

const DETAILS_HEADER: &str = "grpc-status-details-bin";

/// The channel and the headers every export carries.
#[derive(Clone)]
pub struct GrpcCall {
    channel: Channel,
    headers: HeaderMap,
}

impl GrpcCall {
    /// `headers`: the configured ones (checked by the config: no reserved or `-bin` names).
    pub fn new(channel: Channel, headers: &[(HeaderName, HeaderValue)], timeout: Duration) -> Self {
        let mut h = HeaderMap::with_capacity(headers.len() + 5);
        for (k, v) in headers {
            h.append(k.clone(), v.clone());
        }
        h.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert(hyper::header::TE, HeaderValue::from_static("trailers"));
        h.insert("grpc-accept-encoding", HeaderValue::from_static("gzip,zstd,identity"));
        // At most 8 digits (the gRPC spec); 99 999 999 ms is 27 hours.
        let millis = timeout.as_millis().clamp(1, 99_999_999);
        if let Ok(v) = HeaderValue::from_str(&format!("{millis}m")) {
            h.insert("grpc-timeout", v);
        }
        GrpcCall { channel, headers: h }
    }

    /// Sends one payload and reads the answer; a failure is the gRPC status to classify.
    pub(super) async fn export(&self, payload: &Bytes) -> Result<ExportMetricsServiceResponse, Status> {
        self.export_to(EXPORT_PATH, payload).await
    }

    /// `export` to another OTLP service's `Export` method (`path`), for
    /// the agent's own logs and spans. Their answers have the metrics answer's shape (a
    /// partial success of a count and a message), so they are read as one.
    pub async fn export_to(&self, path: &'static str, payload: &Bytes) -> Result<ExportMetricsServiceResponse, Status> {
        // A payload that cannot be sent is dropped (INTERNAL is not retried).
        let (body, encoding) = match wire(payload).map_err(Status::internal)? {
            Wire::Framed { encoding } => (tonic::body::Body::new(http_body_util::Full::new(payload.clone())), encoding),
            Wire::Bare { prefix } => (tonic::body::Body::new(Prefixed { prefix: Some(Bytes::copy_from_slice(&prefix)), message: Some(payload.clone()) }), None),
        };
        let mut request = hyper::Request::new(body);
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = hyper::Uri::from_static(path);
        *request.version_mut() = hyper::Version::HTTP_2;
        *request.headers_mut() = self.headers.clone();
        if let Some(e) = encoding {
            request.headers_mut().insert("grpc-encoding", HeaderValue::from_static(e));
        }
        let mut channel = self.channel.clone();
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await.map_err(|e| Status::unavailable(format!("service not ready: {e}")))?;
        let response = channel.call(request).await.map_err(|e| Status::from_error(e.into()))?;
        read_answer(response).await
    }
}

/// The answer of an export, read as `tonic::client::Grpc::unary` reads it.
pub(super) async fn read_answer<B>(response: hyper::Response<B>) -> Result<ExportMetricsServiceResponse, Status>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = response.into_parts();
    drop_undecodable_details(&mut parts.headers);
    let encoding = match parts.headers.get("grpc-encoding").map(HeaderValue::as_bytes) {
        None | Some(b"identity") => None,
        Some(b"gzip") => Some(CompressionEncoding::Gzip),
        Some(b"zstd") => Some(CompressionEncoding::Zstd),
        Some(other) => {
            return Err(Status::unimplemented(format!("the answer is compressed with {:?}, which was not offered", String::from_utf8_lossy(other))));
        }
    };
    let body = body.map_frame(|f| match f.into_trailers() {
        Ok(mut trailers) => {
            drop_undecodable_details(&mut trailers);
            Frame::trailers(trailers)
        }
        Err(f) => f,
    });
    let mut stream = match Status::from_header_map(&parts.headers) {
        // Trailers-only: the status is all there is.
        Some(status) if status.code() != Code::Ok => return Err(status),
        Some(_) => Streaming::new_empty(ResponseDecoder, body),
        None if !is_grpc(&parts.headers) => return Err(not_grpc(parts.status, &parts.headers)),
        None => Streaming::new_response(ResponseDecoder, body, parts.status, encoding, Some(ANSWER_LIMIT)),
    };
    let message = stream.message().await?.ok_or_else(|| Status::internal("Missing response message."))?;
    // The status in the trailers (an error after the message counts).
    stream.trailers().await?;
    Ok(message)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(hyper::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// An answer that is not gRPC (a proxy's or load balancer's error page): its body is not read,
/// its HTTP status gives the code as gRPC's `http-grpc-status-mapping.md` says (so a 503 is
/// retried as UNAVAILABLE instead of dropped as a frame error).
fn not_grpc(status: hyper::StatusCode, headers: &HeaderMap) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        200 => Code::Internal,
        _ => Code::Unknown,
    };
    let content_type = headers.get(hyper::header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Status::new(code, format!("HTTP {} answered with content-type {:?}, not gRPC", status.as_u16(), content_type.as_deref().unwrap_or("(none)")))
}

/// Removes a `grpc-status-details-bin` that is not base64 (as tonic decodes it), which
/// `Status::from_header_map` would panic on; the code and message stay.
fn drop_undecodable_details(headers: &mut HeaderMap) {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const TONICS: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));
    if headers.get(DETAILS_HEADER).is_some_and(|v| TONICS.decode(v.as_bytes()).is_err()) {
        tracing::debug!(header = DETAILS_HEADER, "gRPC answer with status details that are not base64; ignored");
        headers.remove(DETAILS_HEADER);
    }
}

/// A request body of two chunks: the prefix, then the shared message (no copy).
struct Prefixed {
    prefix: Option<Bytes>,
    message: Option<Bytes>,
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        std::task::Poll::Ready(this.prefix.take().or_else(|| this.message.take()).map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.message.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let n = self.prefix.as_ref().map_or(0, Bytes::len) + self.message.as_ref().map_or(0, Bytes::len);
        hyper::body::SizeHint::with_exact(n as u64)
    }
}

#[cfg(test)]
#[path = "grpc_call_tests.rs"]
mod tests;
