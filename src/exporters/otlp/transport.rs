//! How an OTLP request travels: a tonic gRPC channel over our own connector (TCP → proxy →
//! rustls from [`crate::tls`]) carrying our own HTTP/2 requests (`grpc_call.rs`), or the shared HTTP client of [`crate::http`] for
//! `http/protobuf`, each set up once from an [`OtlpConfig`] with its metadata or headers.

use super::config::{Compression, OtlpConfig, Protocol};
use super::grpc_call::GrpcCall;
use crate::http::HttpClient;
use crate::tls::TlsConfig;
use hyper::header::{HeaderName, HeaderValue};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};

/// A gRPC channel to `config`'s endpoint over our own connector (TCP → proxy → rustls), with
/// `config`'s headers as metadata. It connects lazily, on the Tokio runtime this is called on.
/// The agent's own logs and traces (`telemetry`) go over the same kind of channel.
pub fn grpc_channel(config: &OtlpConfig) -> Result<(Channel, MetadataMap), String> {
    let target = config.target()?;
    let timeout = config.timeout();
    let headers = config.header_pairs()?;
    let authority = target.uri.authority().ok_or("`endpoint` has no host")?.clone();
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| format!("`endpoint`: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .user_agent(crate::http::USER_AGENT)
        .map_err(|e| e.to_string())?;
    // tonic is given an http:// URI so that it never tries TLS itself; our connector does TLS
    // (and the proxy), and `origin` makes requests say https.
    let tls = TlsConfig { enabled: target.tls, ..config.tls.clone() };
    let proxies = crate::http::Proxies::new(config.proxy_url.as_ref())?;
    let connector =
        crate::http::connect::Connector::new(&tls, proxies, crate::http::connect::Mode::Grpc { tls: target.tls }).map_err(|e| format!("tls: {e}"))?;
    let endpoint = if target.tls {
        let origin: hyper::Uri = format!("https://{authority}").parse().map_err(|_| "`endpoint`: bad authority".to_string())?;
        endpoint.origin(origin)
    } else {
        endpoint
    };
    let channel = endpoint.connect_with_connector_lazy(connector);
    let mut metadata = MetadataMap::new();
    for (k, v) in &headers {
        let key = AsciiMetadataKey::from_bytes(k.as_str().as_bytes()).map_err(|_| format!("header {k}: not a valid gRPC metadata key"))?;
        let value = AsciiMetadataValue::try_from(v.as_bytes()).map_err(|_| format!("header {k}: not a valid gRPC metadata value"))?;
        metadata.insert(key, value);
    }
    Ok((channel, metadata))
}

/// The gRPC channel and its headers, or the HTTP client, URL and headers.
pub(super) enum Transport {
    Grpc(GrpcCall),
    Http { client: HttpClient, uri: hyper::Uri, headers: Vec<(HeaderName, HeaderValue)> },
}

impl Transport {
    /// Sets up the transport of a config (reads certificates now). The gRPC channel connects
    /// lazily, on the Tokio runtime this is called on.
    pub(super) fn new(config: &OtlpConfig) -> Result<Self, String> {
        let target = config.target()?;
        let timeout = config.timeout();
        let headers = config.header_pairs()?;
        let compression = config.compression();
        Ok(match config.protocol() {
            Protocol::Grpc => {
                // The metadata map is built to check the headers as gRPC metadata; the
                // request carries them as headers.
                let (channel, _metadata) = grpc_channel(config)?;
                Transport::Grpc(GrpcCall::new(channel, &headers, timeout))
            }
            Protocol::HttpProtobuf => {
                let tls = TlsConfig { enabled: target.tls, ..config.tls.clone() };
                let client = HttpClient::with_proxy(&tls, timeout, config.proxy_url.as_ref())?;
                let mut headers = headers;
                headers.push((hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf")));
                match compression {
                    Compression::Gzip => headers.push((hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))),
                    Compression::Zstd => headers.push((hyper::header::CONTENT_ENCODING, HeaderValue::from_static("zstd"))),
                    Compression::None => {}
                }
                Transport::Http { client, uri: target.uri, headers }
            }
        })
    }
}
