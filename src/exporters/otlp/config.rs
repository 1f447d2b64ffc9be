//! The `otlp` exporter's settings: [`OtlpConfig`] with its [`Protocol`], [`Compression`] and
//! [`Temporality`], the defaults, the checks made without connecting, and the [`Target`] (URL
//! and TLS) they resolve to. The `OTEL_EXPORTER_OTLP_*` environment is applied in
//! [`super::env`].
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `protocol` | `grpc` | `grpc` (OTLP/gRPC, `MetricsService/Export`) or `http/protobuf` (POST `application/x-protobuf`) |
//! | `endpoint` | `http://localhost:4317` (gRPC), `http://localhost:4318/v1/metrics` (HTTP) | the receiver; for `http/protobuf` an endpoint with no path gets `/v1/metrics`; for gRPC a path is ignored |
//! | `insecure` | `false` | only for an endpoint written without a scheme (`collector:4317`): `true` connects in plain text, otherwise TLS is used |
//! | `timeout` | `10s` | time allowed for one request (connect, send, answer); a request that runs out is retried |
//! | `headers` | none | gRPC metadata or HTTP headers sent with every request, e.g. `authorization`, `x-scope-orgid`; the protocol's own (`content-type`, `content-encoding`, `grpc-*`, `te`, `user-agent`) cannot be set, nor binary (`-bin`) metadata |
//! | `compression` | `gzip` | `gzip`, `zstd` or `none` (gRPC `grpc-encoding`, HTTP `Content-Encoding`) |
//! | `temporality` | `cumulative` | `cumulative`, `delta` or `lowmemory`, see [`crate::pipeline::delta`] |
//! | `max_batch_bytes` | 4 MiB | largest request before compression; bigger batches are split by metric, each piece a complete request with its resource and scope (a Collector refuses gRPC messages over 4 MiB by default) |
//! | `tls` | off | the common TLS section (`ca_file`, `cert_file`/`key_file` for mTLS, `server_name`, `min_version`, `max_version`, `cipher_suites`, `insecure_skip_verify`); TLS is used when the endpoint is `https://` or `tls.enabled: true` (an `http://` endpoint is then contacted with TLS) |
//! | `queue` | `max_bytes: 64 MiB` | the exporter's in-memory queue |
//! | `retry` | `1s` → `30s`, give up after `5m` | backoff with jitter between attempts |
//!
//! TLS is our own rustls configuration (the same code as every other exporter), so
//! `server_name`, versions, cipher suites and client certificates behave identically; gRPC
//! offers ALPN `h2`.

use crate::http::ProxyUrl;
use crate::pipeline::queue::{QueueConfig, RetryConfig};
use crate::tls::TlsConfig;
use crate::units::ConfigDuration;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::pipeline::delta::Temporality;

/// Default gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default HTTP/protobuf endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/metrics";
/// Path appended to an HTTP/protobuf endpoint that has none.
pub const HTTP_METRICS_PATH: &str = "/v1/metrics";
/// Default request timeout (the OTLP specification's).
pub const DEFAULT_TIMEOUT: ConfigDuration = ConfigDuration::secs(10);
/// Default largest request before compression (a Collector's default gRPC limit).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Headers / metadata the protocol sets itself.
pub const RESERVED_HEADERS: &[&str] =
    &["content-type", "content-encoding", "content-length", "user-agent", "te", "grpc-encoding", "grpc-accept-encoding", "grpc-timeout"];

/// `protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum Protocol {
    /// OTLP/gRPC.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// `compression`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (default).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// Uncompressed.
    None,
}

/// `type = "otlp"`. Options left unset take the `OTEL_EXPORTER_OTLP_*` environment, then the
/// defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Where to send (default `http://localhost:4317` for gRPC, `http://localhost:4318/v1/metrics`
    /// for HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// For an endpoint without a scheme: plain text when true, TLS otherwise (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Request timeout (default `"10s"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ConfigDuration>,
    /// gRPC metadata / HTTP headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// `gzip` (default), `zstd` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// `cumulative` (default), `delta` or `lowmemory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporality: Option<Temporality>,
    /// Largest request before compression (default 4 MiB); bigger batches are split.
    pub max_batch_bytes: usize,
    /// TLS client settings.
    pub tls: TlsConfig,
    /// Proxy for this exporter, `http://[user:password@]host:port` (or `https://` for TLS to
    /// the proxy), instead of `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`. gRPC and `https`
    /// endpoints go through a `CONNECT` tunnel; the password is never printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<ProxyUrl>,
    /// Queue bound.
    pub queue: QueueConfig,
    /// Retry schedule.
    pub retry: RetryConfig,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            protocol: None,
            insecure: None,
            timeout: None,
            headers: BTreeMap::new(),
            compression: None,
            temporality: None,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            tls: TlsConfig::default(),
            proxy_url: None,
            queue: QueueConfig::default(),
            retry: RetryConfig::default(),
        }
    }
}

/// Where and how to connect, from the config and its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The URL requests go to (scheme `https` when TLS is used).
    pub uri: hyper::Uri,
    /// Whether TLS is used.
    pub tls: bool,
}

impl OtlpConfig {
    /// The protocol in effect.
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }

    /// The timeout in effect.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT).get()
    }

    /// The compression in effect.
    pub fn compression(&self) -> Compression {
        self.compression.unwrap_or_default()
    }

    /// The temporality in effect.
    pub fn temporality(&self) -> Temporality {
        self.temporality.unwrap_or_default()
    }

    /// The URL and whether TLS is used: a missing scheme means `https` (unless `insecure`),
    /// `tls.enabled` upgrades `http` to `https`, and an HTTP endpoint with no path gets
    /// `/v1/metrics`.
    pub fn target(&self) -> Result<Target, String> {
        let protocol = self.protocol();
        let raw = match self.endpoint.as_deref().map(str::trim) {
            Some("") => return Err("`endpoint` is empty".into()),
            Some(e) => e.to_string(),
            None => match protocol {
                Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.into(),
                Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT.into(),
            },
        };
        let with_scheme = if raw.contains("://") {
            raw.clone()
        } else if self.insecure == Some(true) {
            format!("http://{raw}")
        } else {
            format!("https://{raw}")
        };
        let uri: hyper::Uri = with_scheme.parse().map_err(|_| format!("`endpoint` {raw:?} is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            _ => return Err(format!("`endpoint` {raw:?} must be http:// or https://")),
        };
        let authority = match uri.authority() {
            Some(a) if !a.host().is_empty() => a.clone(),
            _ => return Err(format!("`endpoint` {raw:?} has no host")),
        };
        let tls = scheme == "https" || self.tls.enabled;
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") if protocol == Protocol::HttpProtobuf => HTTP_METRICS_PATH,
            None => "/",
            Some(p) => p,
        };
        let uri = hyper::Uri::builder()
            .scheme(if tls { "https" } else { "http" })
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|e| format!("`endpoint` {raw:?}: {e}"))?;
        Ok(Target { uri, tls })
    }

    /// The endpoint for logs and `/status`.
    pub fn endpoint_for_display(&self) -> String {
        match self.target() {
            Ok(t) if self.protocol() == Protocol::Grpc => {
                format!("{}://{}", t.uri.scheme_str().unwrap_or("http"), t.uri.authority().map(|a| a.as_str()).unwrap_or(""))
            }
            Ok(t) => t.uri.to_string(),
            Err(_) => self.endpoint.clone().unwrap_or_default(),
        }
    }

    /// Problems found without connecting.
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        let target = self.target();
        if let Err(e) = &target {
            v.push(e.clone());
        }
        if let Err(e) = self.header_pairs() {
            v.push(e);
        }
        v.extend(crate::http::proxy::validate(self.proxy_url.as_ref()));
        if self.timeout().is_zero() {
            v.push("`timeout` must be more than 0".into());
        }
        if self.max_batch_bytes < 1024 {
            v.push("`max_batch_bytes` must be at least 1024".into());
        }
        if target.map(|t| t.tls).unwrap_or(false) {
            let tls = TlsConfig { enabled: true, ..self.tls.clone() };
            if let Err(e) = tls.validate() {
                v.push(format!("tls: {e}"));
            }
        }
        v
    }

    /// The user headers, checked: valid names and values, not the protocol's own, no binary
    /// metadata. Names are lower-cased (gRPC metadata keys are).
    pub(crate) fn header_pairs(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let mut out = Vec::with_capacity(self.headers.len());
        for (k, val) in &self.headers {
            let lk = k.trim().to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lk.as_str()) || lk.starts_with("grpc-") || lk.starts_with(':') {
                return Err(format!("header {k:?} is set by the protocol and cannot be overridden"));
            }
            if lk.ends_with("-bin") {
                return Err(format!("header {k:?}: binary (-bin) metadata is not supported"));
            }
            let name = HeaderName::from_bytes(lk.as_bytes()).map_err(|_| format!("header name {k:?} is not valid"))?;
            let value = HeaderValue::from_str(val.trim()).map_err(|_| format!("header {k:?} has a value not allowed in a header"))?;
            out.push((name, value));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_by_protocol_and_an_http_endpoint_without_a_path_gets_v1_metrics() {
        let c = OtlpConfig::default();
        assert_eq!(c.endpoint_for_display(), "http://localhost:4317");
        let c = OtlpConfig { protocol: Some(Protocol::HttpProtobuf), ..Default::default() };
        assert_eq!(c.endpoint_for_display(), "http://localhost:4318/v1/metrics");
        let c = OtlpConfig { protocol: Some(Protocol::HttpProtobuf), endpoint: Some("http://c:4318/".into()), ..Default::default() };
        assert_eq!(c.target().unwrap().uri.to_string(), "http://c:4318/v1/metrics");
    }

    #[test]
    fn an_endpoint_without_a_scheme_uses_tls_unless_insecure_and_tls_enabled_upgrades_http() {
        let c = OtlpConfig { endpoint: Some("collector:4317".into()), ..Default::default() };
        assert_eq!(c.target().unwrap(), Target { uri: "https://collector:4317/".parse().unwrap(), tls: true });
        let c = OtlpConfig { endpoint: Some("collector:4317".into()), insecure: Some(true), ..Default::default() };
        assert!(!c.target().unwrap().tls);
        let c = OtlpConfig { endpoint: Some("http://collector:4317".into()), tls: TlsConfig { enabled: true, ..Default::default() }, ..Default::default() };
        assert_eq!(c.endpoint_for_display(), "https://collector:4317");
        let c = OtlpConfig { endpoint: Some("ftp://x".into()), ..Default::default() };
        assert!(c.target().is_err());
    }

    #[test]
    fn config_keys_parse_and_unknown_ones_are_rejected() {
        let c: OtlpConfig = serde_yaml_ng::from_str("protocol: http/protobuf\ncompression: zstd\ntemporality: lowmemory\nmax_batch_bytes: 2048\n").unwrap();
        assert_eq!(
            (c.protocol(), c.compression(), c.temporality(), c.max_batch_bytes),
            (Protocol::HttpProtobuf, Compression::Zstd, Temporality::Lowmemory, 2048)
        );
        assert!(serde_yaml_ng::from_str::<OtlpConfig>("protocol: http/json\n").is_err());
        assert!(serde_yaml_ng::from_str::<OtlpConfig>("gzip: true\n").is_err());
    }

    #[test]
    fn bad_headers_a_tiny_batch_limit_and_unreadable_certificates_are_reported() {
        let c = OtlpConfig { headers: [("grpc-timeout".to_string(), "1S".to_string())].into(), max_batch_bytes: 10, ..Default::default() };
        let v = c.validate();
        assert_eq!(v.len(), 2, "{v:?}");
        let c = OtlpConfig { headers: [("x-token-bin".to_string(), "AAA".to_string())].into(), ..Default::default() };
        assert!(c.validate()[0].contains("binary"));
        let c = OtlpConfig {
            endpoint: Some("https://c:4317".into()),
            tls: TlsConfig { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() },
            ..Default::default()
        };
        assert!(c.validate().iter().any(|e| e.contains("/nonexistent/ca.pem")), "{:?}", c.validate());
        // Over plain text the tls section is not used, so not checked.
        let c = OtlpConfig {
            endpoint: Some("http://c:4317".into()),
            tls: TlsConfig { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() },
            ..Default::default()
        };
        assert!(c.validate().is_empty());
    }
}
