//! The `receivers` section, written as the OpenTelemetry Collector's users write it:
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc: {endpoint: "127.0.0.1:4317"}
//!       http: {endpoint: "127.0.0.1:4318"}
//!     max_points_per_request: 100000
//! ```
//!
//! Off unless configured; a protocol key that is present (even empty, `grpc: {}`) turns that
//! protocol on at its default endpoint.

use crate::tls::ServerTlsConfig;
use crate::units::ByteSize;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// Default gRPC endpoint (the OTLP port, loopback only).
pub const DEFAULT_GRPC_ENDPOINT: &str = "127.0.0.1:4317";
/// Default HTTP endpoint (the OTLP/HTTP port, loopback only).
pub const DEFAULT_HTTP_ENDPOINT: &str = "127.0.0.1:4318";
/// Default largest gRPC message, MiB (as the Collector).
pub const DEFAULT_MAX_RECV_MSG_SIZE_MIB: u64 = 4;
/// Default largest HTTP request body as sent (compressed or not), bytes.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 4 << 20;
/// Default largest request after decompression, bytes (gRPC and HTTP).
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 16 << 20;
/// Default requests handled at once (both protocols together); more are refused as busy.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;
/// Default data points accepted in one request; those beyond are dropped (partial success).
pub const DEFAULT_MAX_POINTS_PER_REQUEST: usize = 100_000;
/// The largest `max_recv_msg_size_mib` accepted (1 GiB).
pub const MAX_RECV_MSG_SIZE_MIB_LIMIT: u64 = 1024;

/// `receivers`: what pushes metrics to the agent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiversConfig {
    /// The OTLP receiver (metrics): applications beside the agent push to it; what they send is
    /// enriched with the agent's resource and exported with the host's metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpReceiverConfig>,
}

impl ReceiversConfig {
    /// Whether no receiver is configured.
    pub fn is_empty(&self) -> bool {
        self.otlp.is_none()
    }
}

/// `receivers.otlp`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// `grpc` and/or `http`; a protocol not named is off.
    pub protocols: Protocols,
    /// Largest request after decompression (default `16MiB`); a bigger one is refused
    /// (gRPC `RESOURCE_EXHAUSTED`, HTTP 413) and decompression stops at the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_decompressed_size: Option<ByteSize>,
    /// Requests handled at once, both protocols together (default 16); more are answered busy
    /// (gRPC `RESOURCE_EXHAUSTED`, HTTP 429 with `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<usize>,
    /// Data points kept from one request (default 100000); those beyond are dropped and the
    /// client told so in a partial success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_points_per_request: Option<usize>,
    /// Also serve what apps push on the agent's `/metrics`, each metric's latest data for this
    /// long after it arrived (`"5m"`, as the Collector's prometheus exporter's
    /// `metric_expiration`). Unset (the default): pushed metrics are exported, not served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_expiration: Option<crate::units::ConfigDuration>,
}

/// `receivers.otlp.protocols`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcConfig>,
    /// OTLP/HTTP: `POST /v1/metrics`, protobuf or JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpConfig>,
}

/// `receivers.otlp.protocols.grpc`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// `host:port` to listen on (default `127.0.0.1:4317`). Beyond loopback it needs `tls` or
    /// `insecure: true`.
    pub endpoint: Option<String>,
    /// Largest message in MiB, after decompression too (default 4, as the Collector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_recv_msg_size_mib: Option<u64>,
    /// Serve TLS (`cert_file`, `key_file`; `client_ca_file` for mutual TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
    /// Listen beyond loopback without TLS (anyone who can reach the port can push metrics).
    pub insecure: bool,
    /// Require a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
}

/// `receivers.otlp.protocols.http`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `host:port` to listen on (default `127.0.0.1:4318`). Beyond loopback it needs `tls` or
    /// `insecure: true`.
    pub endpoint: Option<String>,
    /// Largest request body as sent, compressed or not (default `4MiB`); a bigger one gets 413.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body_size: Option<ByteSize>,
    /// Serve HTTPS (`cert_file`, `key_file`; `client_ca_file` for mutual TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
    /// Listen beyond loopback without TLS (anyone who can reach the port can push metrics).
    pub insecure: bool,
    /// Require a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
}

/// `auth`: the token clients send as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The token (never logged; `--check-config` prints it redacted).
    pub bearer_token: String,
}

/// One listener, resolved from either protocol's section.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Where to listen.
    pub addr: SocketAddr,
    /// TLS, when configured.
    pub tls: Option<ServerTlsConfig>,
    /// The bearer token required, when configured.
    pub bearer_token: Option<String>,
}

/// The limits shared by both protocols.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest message or body as sent.
    pub max_message: usize,
    /// Largest request after decompression.
    pub max_decompressed: usize,
    /// Requests at once.
    pub max_concurrent: usize,
    /// Points kept per request.
    pub max_points: usize,
}

impl OtlpReceiverConfig {
    /// Limits for gRPC (message size from `max_recv_msg_size_mib`).
    pub fn grpc_limits(&self) -> Limits {
        let mib = self.protocols.grpc.as_ref().and_then(|g| g.max_recv_msg_size_mib).unwrap_or(DEFAULT_MAX_RECV_MSG_SIZE_MIB);
        let max_message = usize::try_from(mib.min(MAX_RECV_MSG_SIZE_MIB_LIMIT) << 20).unwrap_or(usize::MAX);
        Limits { max_message, ..self.common_limits() }
    }

    /// Limits for HTTP (body size from `max_request_body_size`).
    pub fn http_limits(&self) -> Limits {
        let max_message = self.protocols.http.as_ref().and_then(|h| h.max_request_body_size).map_or(DEFAULT_MAX_REQUEST_BODY_SIZE, |b| b.0);
        Limits { max_message, ..self.common_limits() }
    }

    fn common_limits(&self) -> Limits {
        Limits {
            max_message: 0,
            max_decompressed: self.max_decompressed_size.map_or(DEFAULT_MAX_DECOMPRESSED_SIZE, |b| b.0),
            max_concurrent: self.max_concurrent_requests.unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS),
            max_points: self.max_points_per_request.unwrap_or(DEFAULT_MAX_POINTS_PER_REQUEST),
        }
    }

    /// The gRPC listener, if `grpc` is configured and valid.
    pub fn grpc_listener(&self) -> Option<Result<Listener, String>> {
        let g = self.protocols.grpc.as_ref()?;
        Some(listener(g.endpoint.as_deref().unwrap_or(DEFAULT_GRPC_ENDPOINT), &g.tls, g.insecure, &g.auth))
    }

    /// The HTTP listener, if `http` is configured and valid.
    pub fn http_listener(&self) -> Option<Result<Listener, String>> {
        let h = self.protocols.http.as_ref()?;
        Some(listener(h.endpoint.as_deref().unwrap_or(DEFAULT_HTTP_ENDPOINT), &h.tls, h.insecure, &h.auth))
    }

    /// Every problem, as `(key below receivers.otlp, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (proto, l) in [("grpc", self.grpc_listener()), ("http", self.http_listener())] {
            if let Some(Err(msg)) = l {
                out.push((format!("protocols.{proto}"), msg));
            }
        }
        for (proto, tls) in
            [("grpc", self.protocols.grpc.as_ref().and_then(|g| g.tls.as_ref())), ("http", self.protocols.http.as_ref().and_then(|h| h.tls.as_ref()))]
        {
            if let Some(Err(e)) = tls.map(|t| t.server_config(Vec::new())) {
                out.push((format!("protocols.{proto}.tls"), e.to_string()));
            }
        }
        if let Some(mib) = self.protocols.grpc.as_ref().and_then(|g| g.max_recv_msg_size_mib) {
            if !(1..=MAX_RECV_MSG_SIZE_MIB_LIMIT).contains(&mib) {
                out.push(("protocols.grpc.max_recv_msg_size_mib".into(), format!("must be from 1 to {MAX_RECV_MSG_SIZE_MIB_LIMIT}")));
            }
        }
        if self.protocols.http.as_ref().and_then(|h| h.max_request_body_size).is_some_and(|b| b.0 == 0) {
            out.push(("protocols.http.max_request_body_size".into(), "must be more than 0".into()));
        }
        if self.max_decompressed_size.is_some_and(|b| b.0 == 0) {
            out.push(("max_decompressed_size".into(), "must be more than 0".into()));
        }
        if self.max_concurrent_requests.is_some_and(|n| !(1..=65_536).contains(&n)) {
            out.push(("max_concurrent_requests".into(), "must be from 1 to 65536".into()));
        }
        if self.max_points_per_request == Some(0) {
            out.push(("max_points_per_request".into(), "must be more than 0".into()));
        }
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            out.push(("protocols".into(), "names no protocol; add `grpc: {}` and/or `http: {}`".into()));
        }
        out
    }
}

fn listener(endpoint: &str, tls: &Option<ServerTlsConfig>, insecure: bool, auth: &Option<AuthConfig>) -> Result<Listener, String> {
    let addr = parse_endpoint(endpoint)?;
    if !addr.ip().is_loopback() && tls.is_none() && !insecure {
        return Err(format!(
            "endpoint {endpoint} listens beyond loopback without TLS; set `tls` (cert_file, key_file) or `insecure: true` to accept plain-text pushes from the network"
        ));
    }
    if auth.as_ref().is_some_and(|a| a.bearer_token.trim().is_empty()) {
        return Err("auth.bearer_token is empty".into());
    }
    Ok(Listener { addr, tls: tls.clone(), bearer_token: auth.as_ref().map(|a| a.bearer_token.clone()) })
}

/// `host:port` with an IP address (`localhost` is loopback; `:4317` means every address, as
/// the Collector reads it).
fn parse_endpoint(endpoint: &str) -> Result<SocketAddr, String> {
    let e = endpoint.trim();
    if let Ok(a) = e.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = e.rsplit_once(':').ok_or_else(|| format!("endpoint {endpoint:?} is not host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("endpoint {endpoint:?}: {port:?} is not a port"))?;
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        "" | "0.0.0.0" => IpAddr::from([0, 0, 0, 0]),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("endpoint {endpoint:?}: the host must be an IP address or localhost"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> OtlpReceiverConfig {
        serde_yaml_ng::from_str::<ReceiversConfig>(yaml).unwrap().otlp.unwrap()
    }

    #[test]
    fn the_collectors_spelling_loads_and_a_present_protocol_gets_its_default_endpoint() {
        let c = parse("otlp: {protocols: {grpc: {endpoint: '127.0.0.1:14317', max_recv_msg_size_mib: 8}, http: {}}}");
        assert_eq!(c.grpc_listener().unwrap().unwrap().addr.to_string(), "127.0.0.1:14317");
        assert_eq!(c.http_listener().unwrap().unwrap().addr.to_string(), DEFAULT_HTTP_ENDPOINT);
        assert_eq!(c.grpc_limits().max_message, 8 << 20);
        assert_eq!(c.http_limits().max_message, DEFAULT_MAX_REQUEST_BODY_SIZE);
        assert_eq!(c.http_limits().max_points, DEFAULT_MAX_POINTS_PER_REQUEST);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let only_grpc = parse("otlp: {protocols: {grpc: {}}}");
        assert!(only_grpc.http_listener().is_none());
        assert!(serde_yaml_ng::from_str::<ReceiversConfig>("otlp: {protocols: {grpc: {endpont: x}}}").is_err(), "unknown keys are errors");
    }

    #[test]
    fn listening_beyond_loopback_needs_tls_or_insecure_and_the_error_names_the_key() {
        let c = parse("otlp: {protocols: {http: {endpoint: '0.0.0.0:4318'}, grpc: {endpoint: ':4317', insecure: true}}}");
        let errs = c.validate();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "protocols.http");
        assert!(errs[0].1.contains("insecure: true") && errs[0].1.contains("tls"), "{}", errs[0].1);
        assert!(parse("otlp: {protocols: {grpc: {endpoint: 'localhost:4317'}}}").validate().is_empty());
        assert!(parse("otlp: {protocols: {grpc: {endpoint: '[::1]:4317'}}}").validate().is_empty());
    }

    #[test]
    fn bad_values_are_errors_naming_their_key() {
        let c = parse("otlp: {protocols: {grpc: {max_recv_msg_size_mib: 0, auth: {bearer_token: ''}}, http: {endpoint: 'example.com:80'}}, max_concurrent_requests: 0, max_points_per_request: 0}");
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        for k in ["protocols.grpc", "protocols.http", "protocols.grpc.max_recv_msg_size_mib", "max_concurrent_requests", "max_points_per_request"] {
            assert!(keys.contains(&k.to_string()), "{k} missing in {keys:?}");
        }
        assert_eq!(parse("otlp: {}").validate()[0].0, "protocols");
    }
}
