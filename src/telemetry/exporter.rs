//! The SDK's OTLP exporters for the agent's own logs and spans, over the agent's own transport,
//! so proxies and TLS settings work as for the metrics: [`crate::http::HttpClient`] for
//! http/protobuf; for gRPC, the SDK's http/protobuf exporter encodes and `GrpcBridge` sends
//! the request as the signal's gRPC call on the metrics' own gRPC path
//! ([`crate::exporters::otlp::GrpcCall`]). Not the SDK's tonic exporter: tonic 0.14 panics on
//! a `grpc-status-details-bin` answer that is not base64 (grpc/grpc-rust PR #2618, open), and
//! the SDK's builder takes only a bare tonic `Channel`, so nothing could guard it; a panic
//! aborts the agent.
//!
//! The SDK's batch processors export from threads of their own, outside the Tokio runtime the
//! transport needs (its timers, its connection tasks): [`OnRuntime`] enters the runtime's
//! context for every poll of an export, so nothing in the transport can find itself without one.

use super::config::TelemetryConfig;
use crate::exporters::otlp::Protocol;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::Handle;

/// The most bytes of an OTLP collector's answer read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// An exporter whose exports run inside `handle`'s runtime context.
#[derive(Debug)]
pub struct OnRuntime<E> {
    inner: E,
    handle: Handle,
}

impl<E> OnRuntime<E> {
    pub fn new(inner: E, handle: Handle) -> Self {
        OnRuntime { inner, handle }
    }
}

/// A future polled inside a runtime's context.
struct Entered<'a, T> {
    fut: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    handle: Handle,
}

impl<T> Future for Entered<'_, T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let _ctx = self.handle.enter();
        self.fut.as_mut().poll(cx)
    }
}

impl<E: SpanExporter> SpanExporter for OnRuntime<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        Entered { fut: Box::pin(self.inner.export(batch)), handle: self.handle.clone() }.await
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _ctx = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        let _ctx = self.handle.enter();
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: LogExporter> LogExporter for OnRuntime<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        Entered { fut: Box::pin(self.inner.export(batch)), handle: self.handle.clone() }.await
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _ctx = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The agent's transport as the SDK's `HttpClient`: the HTTP client, or the gRPC bridge.
#[derive(Clone)]
enum Client {
    Http(crate::http::HttpClient),
    Grpc(GrpcBridge),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Client::Http(_) => "metricsd HttpClient",
            Client::Grpc(_) => "metricsd gRPC bridge",
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = match self {
            Client::Http(c) => c,
            Client::Grpc(bridge) => return bridge.send(request).await,
        };
        let (parts, body) = request.into_parts();
        let headers: Vec<_> = parts.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let answer = client.request(parts.method, &parts.uri, &headers, body, ANSWER_LIMIT).await?;
        let mut response = opentelemetry_http::Response::builder().status(answer.status);
        if let Some(h) = response.headers_mut() {
            *h = answer.headers;
        }
        Ok(response.body(answer.body)?)
    }
}

/// The agent's gRPC call behind the SDK's `HttpClient` ([`Client::Grpc`]): the SDK's http/protobuf exporter encodes
/// the request, and this sends it as the OTLP gRPC call of its signal on the agent's channel
/// ([`crate::exporters::otlp::GrpcCall`]: our connector, proxy and TLS; tonic reads the answer,
/// after the guard that keeps a `grpc-status-details-bin` that is not base64 from aborting the
/// agent, which the SDK's own tonic exporter lacks). The answer goes back to the SDK as HTTP:
/// 200 with the response message, or the gRPC status as an HTTP error.
#[derive(Clone)]
struct GrpcBridge {
    call: crate::exporters::otlp::GrpcCall,
    compression: crate::exporters::otlp::Compression,
}

/// The gRPC methods of the signals the SDK's http exporter posts to `/v1/{signal}`.
const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

impl GrpcBridge {
    /// Sends the SDK's request as its signal's gRPC call; the answer as HTTP.
    async fn send(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use prost::Message as _;
        let path = match request.uri().path() {
            p if p.ends_with("/v1/traces") => TRACES_PATH,
            p if p.ends_with("/v1/logs") => LOGS_PATH,
            other => return Err(format!("no OTLP gRPC method for {other}").into()),
        };
        let body = request.into_body();
        let payload = match self.compression {
            crate::exporters::otlp::Compression::None => body,
            c => crate::exporters::otlp::grpc_compressed(&body, c)?,
        };
        let answer = match self.call.export_to(path, &payload).await {
            Ok(response) => opentelemetry_http::Response::builder().status(200).body(bytes::Bytes::from(response.encode_to_vec()))?,
            Err(status) => {
                let http = match status.code() {
                    tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::DeadlineExceeded | tonic::Code::Aborted => 503,
                    tonic::Code::Unauthenticated => 401,
                    tonic::Code::PermissionDenied => 403,
                    tonic::Code::Unimplemented => 404,
                    _ => 400,
                };
                opentelemetry_http::Response::builder().status(http).body(bytes::Bytes::from(format!("gRPC {:?}: {}", status.code(), status.message())))?
            }
        };
        Ok(answer)
    }
}

/// The gRPC bridge of `config`.
fn grpc_bridge(config: &TelemetryConfig) -> Result<GrpcBridge, String> {
    let otlp = config.otlp();
    let (channel, _metadata) = crate::exporters::otlp::grpc_channel(&otlp)?;
    let call = crate::exporters::otlp::GrpcCall::new(channel, &otlp.header_pairs()?, otlp.timeout());
    Ok(GrpcBridge { call, compression: otlp.compression() })
}

fn otlp_compression(config: &TelemetryConfig) -> Option<opentelemetry_otlp::Compression> {
    match config.otlp().compression() {
        crate::exporters::otlp::Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
        _ => None,
    }
}

/// The SDK's http/protobuf exporter of one signal (`$builder`, posting to `/v1/$signal`) on
/// the agent's transport: the HTTP client, or the gRPC bridge (which carries the headers as
/// metadata and compresses itself).
macro_rules! signal_exporter {
    ($builder:expr, $config:expr, $signal:literal) => {{
        let config: &TelemetryConfig = $config;
        let otlp = config.otlp();
        let grpc = matches!(otlp.protocol(), Protocol::Grpc);
        let client = if grpc { Client::Grpc(grpc_bridge(config)?) } else { http_client(config)? };
        let mut b = $builder
            .with_http()
            // Explicitly: with the crate's `http-json` feature on (features unify across the
            // build) its default would be JSON.
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(client)
            .with_endpoint(config.http_url($signal)?)
            .with_timeout(otlp.timeout());
        if !grpc {
            b = b.with_headers(config.headers.clone().into_iter().collect());
            if let Some(c) = otlp_compression(config) {
                b = b.with_compression(c);
            }
        }
        b.build().map_err(|e| format!("{} exporter: {e}", $signal))
    }};
}

/// The span exporter `config` describes.
pub fn spans(config: &TelemetryConfig) -> Result<opentelemetry_otlp::SpanExporter, String> {
    signal_exporter!(opentelemetry_otlp::SpanExporter::builder(), config, "traces")
}

/// The log exporter `config` describes.
pub fn logs(config: &TelemetryConfig) -> Result<opentelemetry_otlp::LogExporter, String> {
    signal_exporter!(opentelemetry_otlp::LogExporter::builder(), config, "logs")
}

fn http_client(config: &TelemetryConfig) -> Result<Client, String> {
    let otlp = config.otlp();
    let target = otlp.target()?;
    let tls = crate::tls::TlsConfig { enabled: target.tls, ..otlp.tls.clone() };
    Ok(Client::Http(crate::http::HttpClient::with_proxy(&tls, otlp.timeout(), otlp.proxy_url.as_ref())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gRPC server that answers every call with `status` and these status details, in the
    /// headers (trailers-only).
    async fn grpc_server(status: &'static str, details: &'static str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let svc = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| async move {
                    let answer = hyper::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-status", status)
                        .header("grpc-message", "busy")
                        .header("grpc-status-details-bin", details)
                        .body(http_body_util::Empty::<bytes::Bytes>::new())
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(answer)
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_grpc_answer_with_status_details_that_are_not_base64_is_an_error_for_the_sdk_not_an_abort() {
        for (status, http) in [("14", 503), ("3", 400)] {
            let addr = grpc_server(status, "%%% not base64 %%%").await;
            let config: TelemetryConfig = serde_yaml_ng::from_str(&format!("{{endpoint: 'http://{addr}', protocol: grpc}}")).unwrap();
            let bridge = grpc_bridge(&config).unwrap();
            for signal in ["logs", "traces"] {
                let request = opentelemetry_http::Request::builder().method("POST").uri(config.http_url(signal).unwrap()).body(bytes::Bytes::new()).unwrap();
                let answer = bridge.send(request).await.unwrap();
                assert_eq!(answer.status().as_u16(), http, "{signal}");
                assert!(String::from_utf8_lossy(answer.body()).contains("busy"), "{:?}", answer.body());
            }
        }
    }

    #[tokio::test]
    async fn a_path_that_is_no_otlp_signal_is_an_error() {
        let config: TelemetryConfig = serde_yaml_ng::from_str("{endpoint: 'http://127.0.0.1:9', protocol: grpc}").unwrap();
        let bridge = grpc_bridge(&config).unwrap();
        let request = opentelemetry_http::Request::builder().method("POST").uri("http://127.0.0.1:9/v1/metrics").body(bytes::Bytes::new()).unwrap();
        assert!(bridge.send(request).await.unwrap_err().to_string().contains("/v1/metrics"));
    }
}
