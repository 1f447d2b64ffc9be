//! The SDK's OTLP exporters for the agent's own logs and spans, over the agent's own transport
//! (the gRPC channel of [`crate::exporters::otlp::grpc_channel`], or [`crate::http::HttpClient`]
//! for http/protobuf), so proxies and TLS settings work as for the metrics.
//!
//! The SDK's batch processors export from threads of their own, outside the Tokio runtime the
//! transport needs (its timers, its connection tasks): [`OnRuntime`] enters the runtime's
//! context for every poll of an export, so nothing in the transport can find itself without one.

use super::config::TelemetryConfig;
use crate::exporters::otlp::Protocol;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
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

/// The agent's HTTP client as the SDK's `HttpClient`.
#[derive(Clone)]
struct Client(crate::http::HttpClient);

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("metricsd HttpClient")
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let headers: Vec<_> = parts.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let answer = self.0.request(parts.method, &parts.uri, &headers, body, ANSWER_LIMIT).await?;
        let mut response = opentelemetry_http::Response::builder().status(answer.status);
        if let Some(h) = response.headers_mut() {
            *h = answer.headers;
        }
        Ok(response.body(answer.body)?)
    }
}

fn otlp_compression(config: &TelemetryConfig) -> Option<opentelemetry_otlp::Compression> {
    match config.otlp().compression() {
        crate::exporters::otlp::Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
        _ => None,
    }
}

/// The span exporter `config` describes.
pub fn spans(config: &TelemetryConfig) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let otlp = config.otlp();
    let built = match otlp.protocol() {
        Protocol::Grpc => {
            let (channel, metadata) = crate::exporters::otlp::grpc_channel(&otlp)?;
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_channel(channel).with_metadata(metadata).with_timeout(otlp.timeout());
            if let Some(c) = otlp_compression(config) {
                b = b.with_compression(c);
            }
            b.build()
        }
        Protocol::HttpProtobuf => {
            let client = http_client(config)?;
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_endpoint(config.http_url("traces")?)
                .with_headers(config.headers.clone().into_iter().collect())
                .with_timeout(otlp.timeout());
            if let Some(c) = otlp_compression(config) {
                b = b.with_compression(c);
            }
            b.build()
        }
    };
    built.map_err(|e| format!("traces exporter: {e}"))
}

/// The log exporter `config` describes.
pub fn logs(config: &TelemetryConfig) -> Result<opentelemetry_otlp::LogExporter, String> {
    let otlp = config.otlp();
    let built = match otlp.protocol() {
        Protocol::Grpc => {
            let (channel, metadata) = crate::exporters::otlp::grpc_channel(&otlp)?;
            let mut b = opentelemetry_otlp::LogExporter::builder().with_tonic().with_channel(channel).with_metadata(metadata).with_timeout(otlp.timeout());
            if let Some(c) = otlp_compression(config) {
                b = b.with_compression(c);
            }
            b.build()
        }
        Protocol::HttpProtobuf => {
            let client = http_client(config)?;
            let mut b = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_endpoint(config.http_url("logs")?)
                .with_headers(config.headers.clone().into_iter().collect())
                .with_timeout(otlp.timeout());
            if let Some(c) = otlp_compression(config) {
                b = b.with_compression(c);
            }
            b.build()
        }
    };
    built.map_err(|e| format!("logs exporter: {e}"))
}

fn http_client(config: &TelemetryConfig) -> Result<Client, String> {
    let otlp = config.otlp();
    let target = otlp.target()?;
    let tls = crate::tls::TlsConfig { enabled: target.tls, ..otlp.tls.clone() };
    Ok(Client(crate::http::HttpClient::with_proxy(&tls, otlp.timeout(), otlp.proxy_url.as_ref())?))
}
