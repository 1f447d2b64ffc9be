//! Tests of `grpc_call.rs`: answers built frame by frame (what tonic's reader makes of them),
//! and exports to a tonic `MetricsService` server on 127.0.0.1 whose accept loop counts the
//! connections.

use super::*;
use crate::exporters::otlp::compress::compress_into;
use crate::exporters::otlp::config::Compression;
use crate::exporters::otlp::grpc_codec::grpc_payload;
use crate::exporters::otlp::testutil::big_request;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceRequest};
use prost::Message as _;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A response body of the frames given.
struct Frames(VecDeque<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
}

fn answer(head: &[(&'static str, &str)], data: Vec<u8>, trailers: &[(&'static str, &str)]) -> hyper::Response<Frames> {
    let mut frames = VecDeque::new();
    if !data.is_empty() {
        frames.push_back(Frame::data(Bytes::from(data)));
    }
    if !trailers.is_empty() {
        frames.push_back(Frame::trailers(headers(trailers)));
    }
    let mut r = hyper::Response::new(Frames(frames));
    *r.headers_mut() = headers(head);
    r
}

fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&(message.len() as u32).to_be_bytes());
    v.extend_from_slice(message);
    v
}

fn partial(rejected: i64, message: &str) -> ExportMetricsServiceResponse {
    ExportMetricsServiceResponse { partial_success: Some(ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message.into() }) }
}

const GRPC: (&str, &str) = ("content-type", "application/grpc");
const OK: (&str, &str) = ("grpc-status", "0");

#[tokio::test]
async fn an_answer_message_followed_by_status_ok_is_the_response() {
    let a = answer(&[GRPC], framed(0, &partial(2, "dup").encode_to_vec()), &[OK]);
    assert_eq!(read_answer(a).await.unwrap(), partial(2, "dup"));
}

#[tokio::test]
async fn gzip_and_zstd_answers_are_decompressed_by_tonic() {
    let msg = partial(1, &"x".repeat(2000)).encode_to_vec();
    for (name, c) in [("gzip", Compression::Gzip), ("zstd", Compression::Zstd)] {
        let mut z = Vec::new();
        compress_into(&mut z, &msg, c).unwrap();
        let a = answer(&[GRPC, ("grpc-encoding", name)], framed(1, &z), &[OK]);
        assert_eq!(read_answer(a).await.unwrap(), partial(1, &"x".repeat(2000)), "{name}");
    }
    // Flagged compressed without a grpc-encoding: tonic's INTERNAL.
    let a = answer(&[GRPC], framed(1, &msg), &[OK]);
    assert_eq!(read_answer(a).await.unwrap_err().code(), Code::Internal);
    // An encoding nobody offered.
    let a = answer(&[GRPC, ("grpc-encoding", "br")], framed(1, &msg), &[OK]);
    assert_eq!(read_answer(a).await.unwrap_err().code(), Code::Unimplemented);
}

#[tokio::test]
async fn a_status_in_the_headers_or_in_the_trailers_is_the_error_with_its_message_and_details() {
    let a = answer(&[GRPC, ("grpc-status", "14"), ("grpc-message", "warming%20up")], vec![], &[]);
    let s = read_answer(a).await.unwrap_err();
    assert_eq!((s.code(), s.message()), (Code::Unavailable, "warming up"));

    let details = crate::exporters::otlp::status_details_with_retry_info(8, "busy", Duration::from_secs(2));
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&details);
    let a = answer(&[GRPC], framed(0, &[]), &[("grpc-status", "8"), ("grpc-message", "busy"), ("grpc-status-details-bin", &b64)]);
    let s = read_answer(a).await.unwrap_err();
    assert_eq!((s.code(), s.message()), (Code::ResourceExhausted, "busy"));
    assert!(
        matches!(crate::exporters::otlp::classify_status(&s), crate::pipeline::queue::Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(2))
    );
}

#[tokio::test]
async fn status_details_that_are_not_base64_are_ignored_instead_of_aborting_the_agent() {
    // tonic 0.14's Status::from_header_map panics on these; a panic aborts the release build.
    let a = answer(&[GRPC, ("grpc-status", "14"), ("grpc-status-details-bin", "!!not base64!!")], vec![], &[]);
    assert_eq!(read_answer(a).await.unwrap_err().code(), Code::Unavailable);
    let a = answer(&[GRPC], framed(0, &[]), &[("grpc-status", "3"), ("grpc-status-details-bin", "%%%")]);
    let s = read_answer(a).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.details().is_empty());
}

#[tokio::test]
async fn an_oversized_a_truncated_or_a_missing_answer_is_an_error_not_a_success() {
    let big = partial(1, &"y".repeat(ANSWER_LIMIT + 10)).encode_to_vec();
    let s = read_answer(answer(&[GRPC], framed(0, &big), &[OK])).await.unwrap_err();
    assert_eq!(s.code(), Code::OutOfRange, "{s:?}");
    // A compressed answer that inflates past the limit (a bomb).
    let mut z = Vec::new();
    compress_into(&mut z, &big, Compression::Gzip).unwrap();
    let s = read_answer(answer(&[GRPC, ("grpc-encoding", "gzip")], framed(1, &z), &[OK])).await.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    // The body ends inside a frame.
    let mut cut = framed(0, &partial(1, "z").encode_to_vec());
    cut.truncate(cut.len() - 2);
    assert!(read_answer(answer(&[GRPC], cut, &[OK])).await.is_err());
    // Status OK and no message.
    assert_eq!(read_answer(answer(&[GRPC, OK], vec![], &[])).await.unwrap_err().code(), Code::Internal);
    // A proxy's 503 without any gRPC status.
    let mut r = answer(&[("content-type", "text/html")], b"<html>busy</html>".to_vec(), &[]);
    *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    let s = read_answer(r).await.unwrap_err();
    assert_eq!((s.code(), s.message()), (Code::Unavailable, "HTTP 503 answered with content-type \"text/html\", not gRPC"));
    // A 200 that is not gRPC (a captive portal) delivered nothing.
    let s = read_answer(answer(&[("content-type", "text/html")], b"<html>hi</html>".to_vec(), &[])).await.unwrap_err();
    assert_eq!(s.code(), Code::Internal);
}

// ---------------------------------------------------------------- against a tonic server

#[derive(Clone, Default)]
struct Sink {
    got: Arc<Mutex<Vec<(HeaderMap, ExportMetricsServiceRequest)>>>,
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(&self, r: tonic::Request<ExportMetricsServiceRequest>) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        let headers = r.metadata().clone().into_headers();
        self.got.lock().unwrap().push((headers, r.into_inner()));
        Ok(tonic::Response::new(partial(0, "")))
    }
}

/// A tonic server on 127.0.0.1:0 whose accept loop counts connections; stops when dropped.
struct Server {
    addr: std::net::SocketAddr,
    sink: Sink,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (sink, accepted) = (Sink::default(), Arc::new(AtomicUsize::new(0)));
        let svc = MetricsServiceServer::new(sink.clone()).accept_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Zstd);
        let (addr, count) = (listener.local_addr().unwrap(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
                tokio::spawn(async move {
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        });
        Server { addr, sink, accepted, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn channel_to(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
}

#[tokio::test]
async fn every_compression_reaches_a_tonic_server_decoded_over_one_connection() {
    let server = Server::start().await;
    let header = [(HeaderName::from_static("x-tenant"), HeaderValue::from_static("team-a"))];
    let call = GrpcCall::new(channel_to(server.addr), &header, Duration::from_secs(5));
    let req = big_request(40);
    let raw: Bytes = req.encode_to_vec().into();
    let sends = [Compression::Gzip, Compression::Zstd, Compression::None, Compression::Gzip, Compression::None, Compression::Zstd];
    for c in sends {
        let payload = grpc_payload(raw.clone(), c).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), call.export(&payload)).await.expect("answered in time");
        assert_eq!(answer.unwrap(), partial(0, ""), "{c:?}");
    }
    let got = server.sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), sends.len());
    for ((h, r), c) in got.iter().zip(sends) {
        assert_eq!(r, &req, "{c:?}");
        let want = match c {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        };
        assert_eq!(h.get("grpc-encoding").and_then(|v| v.to_str().ok()), want, "{c:?}");
        assert_eq!(h.get("x-tenant").and_then(|v| v.to_str().ok()), Some("team-a"));
        assert_eq!(h.get("grpc-timeout").and_then(|v| v.to_str().ok()), Some("5000m"));
        assert_eq!(h.get("te").and_then(|v| v.to_str().ok()), Some("trailers"));
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "one HTTP/2 connection carries every export");
}
