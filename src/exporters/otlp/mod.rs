//! `type = "otlp"`: OTLP to an OpenTelemetry Collector (or any OTLP receiver), over gRPC
//! (default) or HTTP/protobuf.
//!
//! ```yaml
//! exporters:
//!   - type: otlp
//!     endpoint: https://otel-gateway.example.com:4317
//!     headers: {authorization: "Bearer ..."}
//!     compression: zstd
//!     tls: {ca_file: /etc/metricsd/ca.pem}
//! ```
//!
//! ## Options
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `protocol` | `grpc` | `grpc` (OTLP/gRPC, `MetricsService/Export`) or `http/protobuf` (POST `application/x-protobuf`) |
//! | `endpoint` | `http://localhost:4317` (gRPC), `http://localhost:4318/v1/metrics` (HTTP) | the receiver; for `http/protobuf` an endpoint with no path gets `/v1/metrics`; for gRPC a path is ignored |
//! | `insecure` | `false` | only for an endpoint written without a scheme (`collector:4317`): `true` connects in plain text, otherwise TLS is used |
//! | `timeout` | `10s` | time allowed for one request (connect, send, answer); a request that runs out is retried |
//! | `headers` | none | gRPC metadata or HTTP headers sent with every request, e.g. `authorization`, `x-scope-orgid`; the protocol's own (`content-type`, `content-encoding`, `grpc-*`, `te`, `user-agent`) cannot be set, nor binary (`-bin`) metadata |
//! | `compression` | `gzip` | `gzip`, `zstd` or `none` (gRPC `grpc-encoding`, HTTP `Content-Encoding`) |
//! | `temporality` | `cumulative` | `cumulative`, `delta` or `lowmemory`, see below |
//! | `max_batch_bytes` | 4 MiB | largest request before compression; bigger batches are split by metric, each piece a complete request with its resource and scope (a Collector refuses gRPC messages over 4 MiB by default) |
//! | `tls` | off | the common TLS section (`ca_file`, `cert_file`/`key_file` for mTLS, `server_name`, `min_version`, `max_version`, `cipher_suites`, `insecure_skip_verify`); TLS is used when the endpoint is `https://` or `tls.enabled: true` (an `http://` endpoint is then contacted with TLS) |
//! | `queue` | `max_bytes: 64 MiB` | the exporter's in-memory queue |
//! | `retry` | `1s` → `30s`, give up after `5m` | backoff with jitter between attempts |
//!
//! TLS is our own rustls configuration (the same code as every other exporter), so
//! `server_name`, versions, cipher suites and client certificates behave identically; gRPC
//! offers ALPN `h2`.
//!
//! ## Temporality
//!
//! The agent collects cumulative values (counters since they started). With
//! `temporality: delta` the exporter converts before sending, as the SDK's delta temporality
//! would: it remembers the last value of every series (resource, scope, metric, attributes)
//! and sends the difference, with the previous point's time as the start time.
//!
//! - Monotonic sums (counters) and histograms (explicit-bucket and exponential) are converted.
//!   Non-monotonic sums (up-down counters) and gauges stay as they are, as the OpenTelemetry
//!   specification requires; summaries too (their quantiles cannot be subtracted).
//! - The first value of a series only sets the baseline and is not sent: the agent's counters
//!   count since boot or since the process started, not since the agent did, so their first
//!   value is not an increase over any interval the agent saw. The first batch is therefore
//!   smaller, and every counter starts one interval late.
//! - A counter that went down, or whose start time changed, was reset: its new value is sent
//!   whole, as the increase since the reset.
//! - Delta histogram points carry no `min`/`max` (they cannot be derived from two cumulative
//!   points), except right after a reset. An exponential histogram whose scale changed is
//!   re-based (one interval not sent).
//! - A series not seen for 32 batches is forgotten (its next value is a new baseline).
//! - `lowmemory` (as `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=lowmemory`): delta
//!   histograms, cumulative sums (every counter here is an observable one, which lowmemory keeps
//!   cumulative).
//!
//! ## Environment
//!
//! The standard variables apply to every `otlp` exporter, for what its config leaves unset
//! (the config file wins; a metrics-specific variable wins over the generic one):
//!
//! | variable | sets |
//! | --- | --- |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | `endpoint`, used as is |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | `endpoint`; for `http/protobuf` `/v1/metrics` is appended to its path (`http://c:4318` → `http://c:4318/v1/metrics`, `http://c/otlp` → `http://c/otlp/v1/metrics`) |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL` | `protocol`: `grpc` or `http/protobuf` (`http/json` is an error: use `type: http_json` with `format: otlp_json`) |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]HEADERS` | `headers`, as `k1=v1,k2=v2` with percent-encoded values; merged key by key under the file's |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT` | `timeout`, in milliseconds |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]COMPRESSION` | `compression`: `gzip`, `zstd` or `none` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]INSECURE` | `insecure` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE` | `tls.ca_file` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_CERTIFICATE` | `tls.cert_file` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_KEY` | `tls.key_file` |
//! | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `temporality`: `cumulative`, `delta` or `lowmemory` |
//!
//! When the config has neither `shipper` nor `exporters` and `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, the agent ships OTLP with these settings, as
//! an OpenTelemetry SDK would.
//!
//! ## Retries
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
//!
//! ## Why tonic and not opentelemetry-otlp's `MetricExporter`
//!
//! `MetricExporter` exports the SDK's `ResourceMetrics` and retries on its own. Our batch is
//! already an OTLP `ExportMetricsServiceRequest` (host metrics plus scraped targets' own
//! resources), built once and shared by every exporter; it goes through the one queue of
//! [`crate::pipeline::queue`] with its byte bound, backoff and counters. So this exporter sends
//! that request as it is over a tonic `Channel` whose connector is our rustls configuration,
//! and classifies the answer for the queue. The queue holds each batch encoded once (that is
//! what it bounds, spools and retries), so the gRPC call sends those bytes as the message
//! ([`PreEncoded`]) rather than decoding them into a request for tonic to encode again.

use crate::config::env::Env;
use crate::config::{ConfigDuration, ConfigError};
use crate::http::{body_snippet, retry_after, Answer, HttpClient, ProxyUrl, RequestError};
use crate::pipeline::queue::{Exporter, Outcome, Payload, QueueConfig, RetryConfig};
use crate::pipeline::{count_points, split_request, Batch};
use crate::tls::TlsConfig;
use hyper::header::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tonic::codegen::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};

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
/// A series unseen for this many batches is forgotten by the delta conversion.
pub const DELTA_STALE_BATCHES: u64 = 32;
/// Most bytes of a response body read.
const RESPONSE_LIMIT: usize = 64 * 1024;
/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;
/// `AggregationTemporality` values.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

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

/// `temporality`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporality {
    /// As collected (default).
    #[default]
    Cumulative,
    /// Counters and histograms as differences between batches.
    Delta,
    /// Histograms as differences, sums cumulative.
    #[serde(alias = "low_memory")]
    Lowmemory,
}

impl Temporality {
    fn sums_delta(self) -> bool {
        self == Temporality::Delta
    }
    fn histograms_delta(self) -> bool {
        self != Temporality::Cumulative
    }
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
    fn header_pairs(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
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

    /// Applies the `OTEL_EXPORTER_OTLP_*` variables to what the file left unset.
    pub fn apply_env(&mut self, env: Env) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        // The metrics-specific variable wins over the generic one.
        let get = |suffix: &str| -> Option<(String, String)> {
            for var in [format!("OTEL_EXPORTER_OTLP_METRICS_{suffix}"), format!("OTEL_EXPORTER_OTLP_{suffix}")] {
                if let Some(v) = env(&var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                    return Some((var, v));
                }
            }
            None
        };
        let bad = |var: String, value: String, msg: &str| ConfigError::Env { var, value, msg: msg.into() };
        if self.protocol.is_none() {
            if let Some((var, v)) = get("PROTOCOL") {
                match v.to_ascii_lowercase().as_str() {
                    "grpc" => self.protocol = Some(Protocol::Grpc),
                    "http/protobuf" => self.protocol = Some(Protocol::HttpProtobuf),
                    "http/json" => errors.push(bad(
                        var,
                        v,
                        "the otlp exporter speaks grpc or http/protobuf; for OTLP/JSON use an exporter with `type: http_json` and `format: otlp_json`",
                    )),
                    _ => errors.push(bad(var, v, "expected grpc or http/protobuf")),
                }
            }
        }
        if self.endpoint.is_none() {
            if let Some(v) = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                self.endpoint = Some(v);
            } else if let Some(v) = env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                self.endpoint = Some(match self.protocol() {
                    Protocol::Grpc => v,
                    Protocol::HttpProtobuf => append_signal_path(&v),
                });
            }
        }
        if self.insecure.is_none() {
            if let Some((var, v)) = get("INSECURE") {
                match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => self.insecure = Some(true),
                    "false" | "0" => self.insecure = Some(false),
                    _ => errors.push(bad(var, v, "expected true or false")),
                }
            }
        }
        if self.timeout.is_none() {
            if let Some((var, v)) = get("TIMEOUT") {
                match v.parse::<u64>() {
                    Ok(ms) if ms > 0 => self.timeout = Some(ConfigDuration::millis(ms)),
                    _ => errors.push(bad(var, v, "expected a positive number of milliseconds")),
                }
            }
        }
        if self.compression.is_none() {
            if let Some((var, v)) = get("COMPRESSION") {
                match v.to_ascii_lowercase().as_str() {
                    "gzip" => self.compression = Some(Compression::Gzip),
                    "zstd" => self.compression = Some(Compression::Zstd),
                    "none" => self.compression = Some(Compression::None),
                    _ => errors.push(bad(var, v, "expected gzip, zstd or none")),
                }
            }
        }
        if self.temporality.is_none() {
            if let Some(v) = env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                match v.to_ascii_lowercase().as_str() {
                    "cumulative" => self.temporality = Some(Temporality::Cumulative),
                    "delta" => self.temporality = Some(Temporality::Delta),
                    "lowmemory" => self.temporality = Some(Temporality::Lowmemory),
                    _ => errors.push(bad("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE".into(), v, "expected cumulative, delta or lowmemory")),
                }
            }
        }
        // Headers: generic, then metrics-specific over it, then the file's over both.
        let file_keys: Vec<String> = self.headers.keys().map(|k| k.to_ascii_lowercase()).collect();
        let mut from_env: BTreeMap<String, (String, String)> = BTreeMap::new();
        for var in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"] {
            let Some(v) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match parse_env_headers(&v) {
                Ok(pairs) => from_env.extend(pairs.into_iter().map(|(k, val)| (k.to_ascii_lowercase(), (k, val)))),
                // The value may be a secret: name the problem, not the value.
                Err(msg) => errors.push(ConfigError::Env { var: var.into(), value: "<redacted>".into(), msg }),
            }
        }
        for (lk, (k, val)) in from_env {
            if !file_keys.contains(&lk) {
                self.headers.insert(k, val);
            }
        }
        if self.tls.ca_file.is_none() {
            self.tls.ca_file = get("CERTIFICATE").map(|(_, v)| v.into());
        }
        if self.tls.cert_file.is_none() {
            self.tls.cert_file = get("CLIENT_CERTIFICATE").map(|(_, v)| v.into());
        }
        if self.tls.key_file.is_none() {
            self.tls.key_file = get("CLIENT_KEY").map(|(_, v)| v.into());
        }
        errors
    }
}

/// `http://c:4318` → `http://c:4318/v1/metrics`; `http://c/otlp/` → `http://c/otlp/v1/metrics`.
fn append_signal_path(base: &str) -> String {
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, String::new()));
            format!("{scheme}://{authority}{}{HTTP_METRICS_PATH}", path.trim_end_matches('/'))
        }
        None => format!("{}{HTTP_METRICS_PATH}", base.trim_end_matches('/')),
    }
}

/// `k1=v1,k2=v2` with percent-encoded keys and values (the W3C baggage format the OTLP
/// specification uses).
pub fn parse_env_headers(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, item) in v.split(',').enumerate() {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, val)) = item.split_once('=') else {
            return Err(format!("entry {} has no `=` (expected key1=value1,key2=value2)", i + 1));
        };
        let k = percent_decode(k.trim());
        if k.is_empty() {
            return Err(format!("entry {} has an empty key", i + 1));
        }
        out.push((k, percent_decode(val.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- answers

/// `google.rpc.Status`, decoded by hand (three fields do not earn a crate).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The gRPC code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Detail messages, e.g. `google.rpc.RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<RpcAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcAny {
    /// `type.googleapis.com/google.rpc.RetryInfo`, ...
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long to wait.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The `type_url` of `google.rpc.RetryInfo`.
pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The `RetryInfo` delay carried by an encoded `google.rpc.Status`, if any.
pub fn retry_info_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    status.details.iter().filter(|a| a.type_url == RETRY_INFO_TYPE || a.type_url.ends_with("/google.rpc.RetryInfo")).find_map(|a| {
        let d = RetryInfo::decode(a.value.as_slice()).ok()?.retry_delay?;
        Some(Duration::from_secs(d.seconds.max(0) as u64).saturating_add(Duration::from_nanos(d.nanos.max(0) as u64)))
    })
}

/// An encoded `google.rpc.Status` with a `RetryInfo` of `delay` (for servers and tests).
pub fn status_details_with_retry_info(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    let info = RetryInfo { retry_delay: Some(ProtoDuration { seconds: delay.as_secs() as i64, nanos: delay.subsec_nanos() as i32 }) };
    RpcStatus { code, message: message.into(), details: vec![RpcAny { type_url: RETRY_INFO_TYPE.into(), value: info.encode_to_vec() }] }.encode_to_vec()
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
        .then(|| RpcStatus::decode(a.body.as_ref()).ok())
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

// ---------------------------------------------------------------- delta conversion

#[derive(Debug, Clone)]
enum Last {
    Int {
        start: u64,
        time: u64,
        value: i64,
    },
    Double {
        start: u64,
        time: u64,
        value: f64,
    },
    Hist {
        start: u64,
        time: u64,
        count: u64,
        sum: Option<f64>,
        bounds: Vec<f64>,
        buckets: Vec<u64>,
    },
    Exp {
        start: u64,
        time: u64,
        count: u64,
        sum: Option<f64>,
        scale: i32,
        zero_count: u64,
        zero_threshold: f64,
        positive: (i32, Vec<u64>),
        negative: (i32, Vec<u64>),
    },
}

impl Last {
    fn start_time(&self) -> (u64, u64) {
        match self {
            Last::Int { start, time, .. } | Last::Double { start, time, .. } | Last::Hist { start, time, .. } | Last::Exp { start, time, .. } => {
                (*start, *time)
            }
        }
    }
}

struct Series {
    seen: u64,
    last: Last,
}

/// Turns cumulative points into deltas by remembering each series' previous point.
#[derive(Default)]
pub struct DeltaConverter {
    batch: u64,
    series: HashMap<Vec<u8>, Series>,
}

/// Appends a length-prefixed component to a key.
fn key_part(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    key.extend_from_slice(bytes);
}

/// Attributes in a canonical order, encoded.
fn attributes_key(key: &mut Vec<u8>, attrs: &[KeyValue]) {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut buf = Vec::new();
    for kv in sorted {
        kv.encode_length_delimited(&mut buf).expect("a Vec grows");
    }
    key_part(key, &buf);
}

/// Whether the point restarted: its start time changed (both known).
fn start_changed(cur_start: u64, prev_start: u64) -> bool {
    cur_start != 0 && prev_start != 0 && cur_start != prev_start
}

/// The start of a delta after a reset: the counter's own start if it is known and later than
/// the previous point, else the previous point's time.
fn reset_start(cur_start: u64, prev_time: u64) -> u64 {
    cur_start.max(prev_time)
}

/// `cur - prev` bucket by bucket, the buckets aligned by index (exponential histograms);
/// `None` when a bucket went down or disappeared (a reset).
fn sub_exp_buckets(cur: Option<&Buckets>, prev: &(i32, Vec<u64>)) -> Option<Buckets> {
    let empty = Buckets::default();
    let cur = cur.unwrap_or(&empty);
    let at = |offset: i32, counts: &[u64], index: i64| -> u64 {
        let i = index - offset as i64;
        if i >= 0 && (i as usize) < counts.len() {
            counts[i as usize]
        } else {
            0
        }
    };
    for (i, &p) in prev.1.iter().enumerate() {
        let index = prev.0 as i64 + i as i64;
        if p > at(cur.offset, &cur.bucket_counts, index) {
            return None;
        }
    }
    let counts = cur.bucket_counts.iter().enumerate().map(|(i, &c)| c - at(prev.0, &prev.1, cur.offset as i64 + i as i64)).collect();
    Some(Buckets { offset: cur.offset, bucket_counts: counts })
}

fn buckets_of(b: Option<&Buckets>) -> (i32, Vec<u64>) {
    b.map(|b| (b.offset, b.bucket_counts.clone())).unwrap_or_default()
}

impl DeltaConverter {
    /// Series remembered.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Where the previous point of `key` is, after checking the new point is newer. Returns
    /// the previous point, or `None` when there is none (the new one becomes the baseline) or
    /// the new one is not newer (ignored).
    fn previous(&mut self, key: &[u8], time: u64) -> Result<Option<&mut Series>, ()> {
        let batch = self.batch;
        match self.series.get_mut(key) {
            Some(s) if time <= s.last.start_time().1 => {
                s.seen = batch;
                Err(())
            }
            Some(s) => {
                s.seen = batch;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    fn number(&mut self, key: Vec<u8>, p: &NumberDataPoint) -> Option<NumberDataPoint> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 || p.value.is_none() {
            return Some(p.clone());
        }
        let last = match p.value {
            Some(Value::AsInt(v)) => Last::Int { start: p.start_time_unix_nano, time: p.time_unix_nano, value: v },
            Some(Value::AsDouble(v)) => Last::Double { start: p.start_time_unix_nano, time: p.time_unix_nano, value: v },
            None => unreachable!("checked above"),
        };
        let batch = self.batch;
        let prev = match self.previous(&key, p.time_unix_nano) {
            Err(()) => return None,
            Ok(None) => {
                self.series.insert(key, Series { seen: batch, last });
                return None;
            }
            Ok(Some(s)) => std::mem::replace(&mut s.last, last),
        };
        let (prev_start, prev_time) = prev.start_time();
        let restarted = start_changed(p.start_time_unix_nano, prev_start);
        let (value, reset) = match (prev, p.value) {
            (Last::Int { value: old, .. }, Some(Value::AsInt(v))) if !restarted && v >= old => (Value::AsInt(v - old), false),
            (Last::Int { .. }, Some(Value::AsInt(v))) => (Value::AsInt(v), true),
            (Last::Double { value: old, .. }, Some(Value::AsDouble(v))) if !restarted && v.partial_cmp(&old) != Some(std::cmp::Ordering::Less) => {
                (Value::AsDouble(v - old), false)
            }
            (Last::Double { .. }, Some(Value::AsDouble(v))) => (Value::AsDouble(v), true),
            // The value changed type: the new one is a baseline.
            _ => return None,
        };
        let start = if reset { reset_start(p.start_time_unix_nano, prev_time) } else { prev_time };
        Some(NumberDataPoint { start_time_unix_nano: start, value: Some(value), ..p.clone() })
    }

    fn histogram(&mut self, key: Vec<u8>, p: &HistogramDataPoint) -> Option<HistogramDataPoint> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return Some(p.clone());
        }
        let last = Last::Hist {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            bounds: p.explicit_bounds.clone(),
            buckets: p.bucket_counts.clone(),
        };
        let batch = self.batch;
        let prev = match self.previous(&key, p.time_unix_nano) {
            Err(()) => return None,
            Ok(None) => {
                self.series.insert(key, Series { seen: batch, last });
                return None;
            }
            Ok(Some(s)) => std::mem::replace(&mut s.last, last),
        };
        let Last::Hist { start: prev_start, time: prev_time, count, sum, bounds, buckets } = prev else {
            return None;
        };
        if bounds != p.explicit_bounds || buckets.len() != p.bucket_counts.len() {
            return None; // new bucket layout: a new baseline
        }
        let reset = start_changed(p.start_time_unix_nano, prev_start) || p.count < count || p.bucket_counts.iter().zip(&buckets).any(|(c, o)| c < o);
        if reset {
            return Some(HistogramDataPoint { start_time_unix_nano: reset_start(p.start_time_unix_nano, prev_time), ..p.clone() });
        }
        Some(HistogramDataPoint {
            start_time_unix_nano: prev_time,
            count: p.count - count,
            sum: p.sum.zip(sum).map(|(c, o)| c - o),
            bucket_counts: p.bucket_counts.iter().zip(&buckets).map(|(c, o)| c - o).collect(),
            min: None,
            max: None,
            ..p.clone()
        })
    }

    fn exponential(&mut self, key: Vec<u8>, p: &ExponentialHistogramDataPoint) -> Option<ExponentialHistogramDataPoint> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return Some(p.clone());
        }
        let last = Last::Exp {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            scale: p.scale,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            positive: buckets_of(p.positive.as_ref()),
            negative: buckets_of(p.negative.as_ref()),
        };
        let batch = self.batch;
        let prev = match self.previous(&key, p.time_unix_nano) {
            Err(()) => return None,
            Ok(None) => {
                self.series.insert(key, Series { seen: batch, last });
                return None;
            }
            Ok(Some(s)) => std::mem::replace(&mut s.last, last),
        };
        let Last::Exp { start: prev_start, time: prev_time, count, sum, scale, zero_count, zero_threshold, positive, negative } = prev else {
            return None;
        };
        if scale != p.scale || zero_threshold != p.zero_threshold {
            return None; // rescaled: a new baseline
        }
        let pos = sub_exp_buckets(p.positive.as_ref(), &positive);
        let neg = sub_exp_buckets(p.negative.as_ref(), &negative);
        let reset = start_changed(p.start_time_unix_nano, prev_start) || p.count < count || p.zero_count < zero_count || pos.is_none() || neg.is_none();
        if reset {
            return Some(ExponentialHistogramDataPoint { start_time_unix_nano: reset_start(p.start_time_unix_nano, prev_time), ..p.clone() });
        }
        Some(ExponentialHistogramDataPoint {
            start_time_unix_nano: prev_time,
            count: p.count - count,
            sum: p.sum.zip(sum).map(|(c, o)| c - o),
            zero_count: p.zero_count - zero_count,
            positive: p.positive.as_ref().and(pos),
            negative: p.negative.as_ref().and(neg),
            min: None,
            max: None,
            ..p.clone()
        })
    }

    /// The request with cumulative monotonic sums (when `mode` says so) and histograms turned
    /// into deltas; metrics, scopes and resources left with no point are removed.
    pub fn convert(&mut self, req: &ExportMetricsServiceRequest, mode: Temporality) -> ExportMetricsServiceRequest {
        self.batch += 1;
        let mut out = ExportMetricsServiceRequest::default();
        for rm in &req.resource_metrics {
            let mut rkey = Vec::new();
            attributes_key(&mut rkey, rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]));
            let mut new_rm = ResourceMetrics { resource: rm.resource.clone(), scope_metrics: Vec::new(), schema_url: rm.schema_url.clone() };
            for sm in &rm.scope_metrics {
                let mut skey = rkey.clone();
                let (name, version) = sm.scope.as_ref().map(|s| (s.name.as_str(), s.version.as_str())).unwrap_or(("", ""));
                key_part(&mut skey, name.as_bytes());
                key_part(&mut skey, version.as_bytes());
                let mut new_sm = ScopeMetrics { scope: sm.scope.clone(), metrics: Vec::with_capacity(sm.metrics.len()), schema_url: sm.schema_url.clone() };
                for m in &sm.metrics {
                    let mut mkey = skey.clone();
                    key_part(&mut mkey, m.name.as_bytes());
                    let point_key = |tag: u8, attrs: &[KeyValue]| {
                        let mut k = mkey.clone();
                        k.push(tag);
                        attributes_key(&mut k, attrs);
                        k
                    };
                    let data = match &m.data {
                        Some(Data::Sum(s)) if s.is_monotonic && s.aggregation_temporality == CUMULATIVE && mode.sums_delta() => {
                            let points: Vec<_> = s.data_points.iter().filter_map(|p| self.number(point_key(b's', &p.attributes), p)).collect();
                            if points.is_empty() {
                                continue;
                            }
                            Some(Data::Sum(Sum { data_points: points, aggregation_temporality: DELTA, is_monotonic: true }))
                        }
                        Some(Data::Histogram(h)) if h.aggregation_temporality == CUMULATIVE && mode.histograms_delta() => {
                            let points: Vec<_> = h.data_points.iter().filter_map(|p| self.histogram(point_key(b'h', &p.attributes), p)).collect();
                            if points.is_empty() {
                                continue;
                            }
                            Some(Data::Histogram(Histogram { data_points: points, aggregation_temporality: DELTA }))
                        }
                        Some(Data::ExponentialHistogram(h)) if h.aggregation_temporality == CUMULATIVE && mode.histograms_delta() => {
                            let points: Vec<_> = h.data_points.iter().filter_map(|p| self.exponential(point_key(b'e', &p.attributes), p)).collect();
                            if points.is_empty() {
                                continue;
                            }
                            Some(Data::ExponentialHistogram(ExponentialHistogram { data_points: points, aggregation_temporality: DELTA }))
                        }
                        other => other.clone(),
                    };
                    new_sm.metrics.push(Metric {
                        name: m.name.clone(),
                        description: m.description.clone(),
                        unit: m.unit.clone(),
                        metadata: m.metadata.clone(),
                        data,
                    });
                }
                if !new_sm.metrics.is_empty() {
                    new_rm.scope_metrics.push(new_sm);
                }
            }
            if !new_rm.scope_metrics.is_empty() {
                out.resource_metrics.push(new_rm);
            }
        }
        if self.batch % 8 == 0 {
            let batch = self.batch;
            self.series.retain(|_, s| s.seen + DELTA_STALE_BATCHES >= batch);
        }
        out
    }
}

// ---------------------------------------------------------------- transport

enum Transport {
    Grpc { client: tonic::client::Grpc<Channel>, metadata: MetadataMap },
    Http { client: HttpClient, uri: hyper::Uri, headers: Vec<(HeaderName, HeaderValue)> },
}

/// Sends batches by OTLP.
pub struct OtlpExporter {
    transport: Transport,
    compression: Compression,
    temporality: Temporality,
    timeout: Duration,
    max_batch_bytes: usize,
    delta: Mutex<DeltaConverter>,
    last_warning: Mutex<Option<String>>,
}

impl OtlpExporter {
    /// Builds the client (reads certificates now). Needs a Tokio runtime (the gRPC channel
    /// connects lazily on it).
    pub fn new(config: OtlpConfig) -> Result<Self, String> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let target = config.target()?;
        let timeout = config.timeout();
        let headers = config.header_pairs()?;
        let compression = config.compression();
        let transport = match config.protocol() {
            Protocol::Grpc => {
                let authority = target.uri.authority().ok_or("`endpoint` has no host")?.clone();
                let endpoint = Endpoint::from_shared(format!("http://{authority}"))
                    .map_err(|e| format!("`endpoint`: {e}"))?
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .tcp_nodelay(true)
                    .user_agent(crate::http::USER_AGENT)
                    .map_err(|e| e.to_string())?;
                // tonic is given an http:// URI so that it never tries TLS itself; our connector
                // does TLS (and the proxy), and `origin` makes requests say https.
                let tls = TlsConfig { enabled: target.tls, ..config.tls.clone() };
                let proxies = crate::http::Proxies::new(config.proxy_url.as_ref())?;
                let connector = crate::http::connect::Connector::new(&tls, proxies, crate::http::connect::Mode::Grpc { tls: target.tls })
                    .map_err(|e| format!("tls: {e}"))?;
                let endpoint = if target.tls {
                    let origin: hyper::Uri = format!("https://{authority}").parse().map_err(|_| "`endpoint`: bad authority".to_string())?;
                    endpoint.origin(origin)
                } else {
                    endpoint
                };
                let channel = endpoint.connect_with_connector_lazy(connector);
                let mut client = tonic::client::Grpc::new(channel).accept_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Zstd);
                client = match compression {
                    Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
                    Compression::Zstd => client.send_compressed(CompressionEncoding::Zstd),
                    Compression::None => client,
                };
                let mut metadata = MetadataMap::new();
                for (k, v) in &headers {
                    let key = AsciiMetadataKey::from_bytes(k.as_str().as_bytes()).map_err(|_| format!("header {k}: not a valid gRPC metadata key"))?;
                    let value = AsciiMetadataValue::try_from(v.as_bytes()).map_err(|_| format!("header {k}: not a valid gRPC metadata value"))?;
                    metadata.insert(key, value);
                }
                Transport::Grpc { client, metadata }
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
        };
        Ok(OtlpExporter {
            transport,
            compression,
            temporality: config.temporality(),
            timeout,
            max_batch_bytes: config.max_batch_bytes,
            delta: Mutex::new(DeltaConverter::default()),
            last_warning: Mutex::new(None),
        })
    }

    fn payload(&self, req: &ExportMetricsServiceRequest) -> Result<Payload, String> {
        self.payload_of(crate::pipeline::encode::encode_to_vec(req).into(), count_points(req))
    }

    /// The payload of an encoded request holding `points` points.
    fn payload_of(&self, raw: bytes::Bytes, points: u64) -> Result<Payload, String> {
        let body = match (&self.transport, self.compression) {
            // gRPC compresses in tonic (`grpc-encoding`); the payload is the message.
            (Transport::Grpc { .. }, _) | (_, Compression::None) => raw,
            (Transport::Http { .. }, Compression::Gzip) => crate::http::gzip(&raw).into(),
            (Transport::Http { .. }, Compression::Zstd) => zstd::bulk::compress(&raw, 3).map_err(|e| format!("zstd: {e}"))?.into(),
        };
        Ok(Payload { body, points })
    }

    fn warn_once(&self, message: &str) {
        let mut last = self.last_warning.lock().unwrap();
        if last.as_deref() != Some(message) {
            tracing::warn!(message = %message, "OTLP receiver sent a warning with its answer");
            *last = Some(message.to_string());
        }
    }

    fn answered(&self, resp: &ExportMetricsServiceResponse) -> Outcome {
        let o = classify_response(resp);
        if let (Outcome::Sent, Some(p)) = (&o, &resp.partial_success) {
            if !p.error_message.is_empty() {
                self.warn_once(&p.error_message);
            }
        }
        o
    }
}

/// The gRPC method of OTLP metrics.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// A tonic codec whose request is an `ExportMetricsServiceRequest` already encoded (the bytes
/// the queue holds) and whose answer is decoded as `ExportMetricsServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreEncoded;

/// The encoder of [`PreEncoded`]: copies the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreEncodedEncoder;

/// The decoder of [`PreEncoded`]: prost.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseDecoder;

impl tonic::codec::Codec for PreEncoded {
    type Encode = bytes::Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = PreEncodedEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl tonic::codec::Encoder for PreEncodedEncoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: bytes::Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = ExportMetricsServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<ExportMetricsServiceResponse>, tonic::Status> {
        ExportMetricsServiceResponse::decode(src).map(Some).map_err(|e| tonic::Status::internal(format!("the answer is not an OTLP response: {e}")))
    }
}

/// Splits `req` into requests of at most `max` encoded bytes each (a single metric larger
/// than that goes alone).
pub fn split_by_encoded_len(req: &ExportMetricsServiceRequest, max: usize) -> Vec<ExportMetricsServiceRequest> {
    // What every piece repeats: resources and scopes without their metrics.
    let frame = ExportMetricsServiceRequest {
        resource_metrics: req
            .resource_metrics
            .iter()
            .map(|rm| ResourceMetrics {
                resource: rm.resource.clone(),
                schema_url: rm.schema_url.clone(),
                scope_metrics: rm
                    .scope_metrics
                    .iter()
                    .map(|sm| ScopeMetrics { scope: sm.scope.clone(), metrics: Vec::new(), schema_url: sm.schema_url.clone() })
                    .collect(),
            })
            .collect(),
    }
    .encoded_len();
    let budget = max.saturating_sub(frame).max(max / 4).max(1);
    // A metric costs its length plus its tag and length prefix (at most 6 bytes).
    split_request(req, budget, |m| m.encoded_len() + 6)
}

impl Exporter for OtlpExporter {
    fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
        let converted;
        let (req, raw) = if self.temporality == Temporality::Cumulative {
            // The batch's own encoding, shared with every other OTLP exporter.
            (&batch.request, batch.encoded().clone())
        } else {
            converted = self.delta.lock().unwrap().convert(&batch.request, self.temporality);
            (&converted, crate::pipeline::encode::encode_to_vec(&converted).into())
        };
        let points = count_points(req);
        if points == 0 {
            return Ok(Vec::new());
        }
        // Encoded once; split only when too big (prost's `encoded_len` walks the whole tree).
        if raw.len() <= self.max_batch_bytes {
            return Ok(vec![self.payload_of(raw, points)?]);
        }
        split_by_encoded_len(req, self.max_batch_bytes).iter().map(|p| self.payload(p)).collect()
    }

    async fn send(&self, payload: &Payload) -> Outcome {
        match &self.transport {
            Transport::Grpc { client, metadata } => {
                let mut request = tonic::Request::new(payload.body.clone());
                *request.metadata_mut() = metadata.clone();
                request.set_timeout(self.timeout);
                let mut client = client.clone();
                let call = async move {
                    client.ready().await.map_err(|e| tonic::Status::unavailable(format!("service not ready: {e}")))?;
                    client.unary(request, hyper::http::uri::PathAndQuery::from_static(EXPORT_PATH), PreEncoded).await
                };
                // The channel's own timeout answers CANCELLED; this one is a backstop.
                match tokio::time::timeout(self.timeout + Duration::from_millis(500), call).await {
                    Ok(Ok(resp)) => self.answered(resp.get_ref()),
                    Ok(Err(status)) => classify_status(&status),
                    Err(_) => Outcome::Retry { after: None, reason: format!("gRPC DEADLINE_EXCEEDED: no answer within {:?}", self.timeout) },
                }
            }
            Transport::Http { client, uri, headers } => {
                let r = client.request(hyper::Method::POST, uri, headers, payload.body.clone(), RESPONSE_LIMIT).await;
                classify_http(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope};
    use opentelemetry_proto::tonic::metrics::v1::Gauge;
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
    }

    fn int_point(attrs: Vec<KeyValue>, start: u64, time: u64, v: i64) -> NumberDataPoint {
        NumberDataPoint { attributes: attrs, start_time_unix_nano: start, time_unix_nano: time, value: Some(Value::AsInt(v)), ..Default::default() }
    }

    fn request(host: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource { attributes: vec![kv("host.name", host), kv("service.name", "metricsd")], ..Default::default() }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope { name: "metricsd".into(), ..Default::default() }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn sum(name: &str, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.into(),
            unit: "By".into(),
            data: Some(Data::Sum(Sum { data_points: points, aggregation_temporality: CUMULATIVE, is_monotonic: monotonic })),
            ..Default::default()
        }
    }

    fn metrics(req: &ExportMetricsServiceRequest) -> Vec<&Metric> {
        req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).collect()
    }

    fn sum_points(m: &Metric) -> (&Sum, Vec<(u64, u64, i64)>) {
        let Some(Data::Sum(s)) = &m.data else { panic!("not a sum") };
        let pts = s
            .data_points
            .iter()
            .map(|p| match p.value {
                Some(Value::AsInt(v)) => (p.start_time_unix_nano, p.time_unix_nano, v),
                _ => panic!("not an int"),
            })
            .collect();
        (s, pts)
    }

    #[test]
    fn the_first_observation_of_a_counter_only_sets_the_baseline() {
        let mut d = DeltaConverter::default();
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 100, 1000, 50)])]), Temporality::Delta);
        assert!(out.resource_metrics.is_empty(), "{out:?}");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn monotonic_sums_become_differences_with_the_previous_time_as_start() {
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![kv("dir", "rx")], 100, 1000, 50)])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![kv("dir", "rx")], 100, 2000, 80)])]), Temporality::Delta);
        let ms = metrics(&out);
        assert_eq!(ms.len(), 1);
        let (s, pts) = sum_points(ms[0]);
        assert_eq!(s.aggregation_temporality, DELTA);
        assert!(s.is_monotonic);
        assert_eq!(pts, vec![(1000, 2000, 30)]);
        assert_eq!(ms[0].unit, "By");
        assert_eq!(out.resource_metrics[0].resource.as_ref().unwrap().attributes[0], kv("host.name", "h"));
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![kv("dir", "rx")], 100, 3000, 80)])]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(2000, 3000, 0)]);
    }

    #[test]
    fn double_counters_subtract_as_doubles() {
        let mut d = DeltaConverter::default();
        let p = |t, v| NumberDataPoint { start_time_unix_nano: 1, time_unix_nano: t, value: Some(Value::AsDouble(v)), ..Default::default() };
        d.convert(&request("h", vec![sum("cpu", true, vec![p(10, 1.5)])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![sum("cpu", true, vec![p(20, 4.0)])]), Temporality::Delta);
        let Some(Data::Sum(s)) = &metrics(&out)[0].data else { panic!() };
        assert_eq!(s.data_points[0].value, Some(Value::AsDouble(2.5)));
    }

    #[test]
    fn a_counter_that_went_down_or_restarted_sends_its_new_value_whole() {
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 100, 1000, 50)])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 100, 2000, 7)])]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(1000, 2000, 7)]);
        // A new start time (the process restarted) after the previous point: it is the start.
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 2500, 3000, 9)])]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(2500, 3000, 9)]);
    }

    #[test]
    fn non_monotonic_sums_gauges_and_delta_input_stay_as_they_are() {
        let mut d = DeltaConverter::default();
        let gauge = Metric { name: "g".into(), data: Some(Data::Gauge(Gauge { data_points: vec![int_point(vec![], 0, 1000, 3)] })), ..Default::default() };
        let req = request("h", vec![sum("updown", false, vec![int_point(vec![], 100, 1000, 5)]), gauge]);
        let out = d.convert(&req, Temporality::Delta);
        assert_eq!(out, req);
        let out = d.convert(&req, Temporality::Delta);
        assert_eq!(out, req, "the same twice: still cumulative, still sent");
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn series_are_told_apart_by_resource_metric_and_attributes_in_any_order() {
        let mut d = DeltaConverter::default();
        let pts = |t, a: i64, b: i64| {
            vec![int_point(vec![kv("cpu", "0"), kv("mode", "user")], 1, t, a), int_point(vec![kv("cpu", "1"), kv("mode", "user")], 1, t, b)]
        };
        d.convert(&request("h1", vec![sum("c", true, pts(10, 100, 200))]), Temporality::Delta);
        d.convert(&request("h2", vec![sum("c", true, pts(10, 1000, 2000))]), Temporality::Delta);
        d.convert(&request("h1", vec![sum("other", true, pts(10, 5, 5))]), Temporality::Delta);
        assert_eq!(d.len(), 6);
        // Attributes arrive in another order: the same series.
        let swapped = vec![int_point(vec![kv("mode", "user"), kv("cpu", "1")], 1, 20, 260), int_point(vec![kv("mode", "user"), kv("cpu", "0")], 1, 20, 110)];
        let out = d.convert(&request("h1", vec![sum("c", true, swapped)]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(10, 20, 60), (10, 20, 10)]);
        assert_eq!(d.len(), 6);
    }

    #[test]
    fn histograms_subtract_count_sum_and_buckets_and_leave_min_max_unset() {
        let mut d = DeltaConverter::default();
        let h = |t, count, sum: f64, buckets: Vec<u64>| Metric {
            name: "lat".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: 1,
                    time_unix_nano: t,
                    count,
                    sum: Some(sum),
                    bucket_counts: buckets,
                    explicit_bounds: vec![0.1, 1.0],
                    min: Some(0.01),
                    max: Some(3.0),
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        };
        d.convert(&request("h", vec![h(10, 3, 2.5, vec![1, 1, 1])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![h(20, 5, 3.0, vec![2, 2, 1])]), Temporality::Delta);
        let Some(Data::Histogram(hh)) = &metrics(&out)[0].data else { panic!() };
        assert_eq!(hh.aggregation_temporality, DELTA);
        let p = &hh.data_points[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano, p.count, p.sum, p.bucket_counts.clone()), (10, 20, 2, Some(0.5), vec![1, 1, 0]));
        assert_eq!((p.min, p.max), (None, None));
        // lowmemory converts histograms too, but not sums.
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![h(10, 3, 2.5, vec![1, 1, 1]), sum("c", true, vec![int_point(vec![], 1, 10, 5)])]), Temporality::Lowmemory);
        let out = d.convert(&request("h", vec![h(20, 5, 3.0, vec![2, 2, 1]), sum("c", true, vec![int_point(vec![], 1, 20, 8)])]), Temporality::Lowmemory);
        let ms = metrics(&out);
        assert!(matches!(&ms[0].data, Some(Data::Histogram(h)) if h.aggregation_temporality == DELTA));
        assert_eq!(sum_points(ms[1]).0.aggregation_temporality, CUMULATIVE);
        assert_eq!(sum_points(ms[1]).1, vec![(1, 20, 8)]);
    }

    #[test]
    fn exponential_histograms_subtract_buckets_aligned_by_index() {
        let mut d = DeltaConverter::default();
        let e = |t, count, offset, buckets: Vec<u64>| Metric {
            name: "e".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    start_time_unix_nano: 1,
                    time_unix_nano: t,
                    count,
                    scale: 2,
                    positive: Some(Buckets { offset, bucket_counts: buckets }),
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        };
        d.convert(&request("h", vec![e(10, 3, 5, vec![1, 2])]), Temporality::Delta);
        // The range grew downwards by one bucket.
        let out = d.convert(&request("h", vec![e(20, 7, 4, vec![1, 3, 3])]), Temporality::Delta);
        let Some(Data::ExponentialHistogram(h)) = &metrics(&out)[0].data else { panic!() };
        let p = &h.data_points[0];
        assert_eq!(p.count, 4);
        assert_eq!(p.positive, Some(Buckets { offset: 4, bucket_counts: vec![1, 2, 1] }));
        assert_eq!(p.start_time_unix_nano, 10);
    }

    #[test]
    fn series_not_seen_for_a_while_are_forgotten() {
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![sum("gone", true, vec![int_point(vec![], 1, 10, 5)])]), Temporality::Delta);
        for i in 0..(DELTA_STALE_BATCHES + 10) {
            d.convert(&request("h", vec![sum("kept", true, vec![int_point(vec![], 1, 20 + i, 5)])]), Temporality::Delta);
        }
        assert_eq!(d.len(), 1);
    }

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
        let body = RpcStatus { code: 3, message: "metric name missing".into(), details: vec![] }.encode_to_vec();
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

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn metrics_specific_variables_win_over_generic_ones_and_the_file_wins_over_both() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "3000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-a=generic,x-b=generic"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-b=metrics,x-c=metrics"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "/c.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/c.key"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        ]);
        let mut c = OtlpConfig::default();
        assert!(c.apply_env(&env).is_empty());
        assert_eq!(c.endpoint.as_deref(), Some("http://metrics:4317"));
        assert_eq!(c.timeout(), Duration::from_secs(3));
        assert_eq!(c.compression(), Compression::Zstd);
        assert_eq!(c.temporality(), Temporality::Delta);
        let h: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(h, vec![("x-a", "generic"), ("x-b", "metrics"), ("x-c", "metrics")]);
        assert_eq!(c.tls.ca_file, Some("/ca.pem".into()));
        assert_eq!(c.tls.cert_file, Some("/c.pem".into()));
        assert_eq!(c.tls.key_file, Some("/c.key".into()));

        let mut c: OtlpConfig = serde_yaml_ng::from_str(
            "endpoint: http://file:4317\ntimeout: 1s\ncompression: gzip\ntemporality: cumulative\nheaders: {X-B: file}\ntls: {ca_file: /file-ca.pem}\n",
        )
        .unwrap();
        assert!(c.apply_env(&env).is_empty());
        assert_eq!(c.endpoint.as_deref(), Some("http://file:4317"));
        assert_eq!(c.timeout(), Duration::from_secs(1));
        assert_eq!(c.compression(), Compression::Gzip);
        assert_eq!(c.temporality(), Temporality::Cumulative);
        let h: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(h, vec![("X-B", "file"), ("x-a", "generic"), ("x-c", "metrics")]);
        assert_eq!(c.tls.ca_file, Some("/file-ca.pem".into()));
    }

    #[test]
    fn the_generic_endpoint_gets_v1_metrics_for_http_protobuf_and_the_specific_one_is_used_as_is() {
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]));
        assert_eq!(c.target().unwrap().uri.to_string(), "http://c:4318/v1/metrics");
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c/otlp/"), ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")]));
        assert_eq!(c.target().unwrap().uri.to_string(), "https://c/otlp/v1/metrics");
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c:4318/custom"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]));
        assert_eq!(c.target().unwrap().uri.to_string(), "http://c:4318/custom");
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]));
        assert_eq!(c.endpoint_for_display(), "http://c:4317");
    }

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
    fn env_headers_are_percent_decoded_and_a_bad_list_names_the_variable_not_the_value() {
        assert_eq!(
            parse_env_headers("Authorization=Basic%20dTpw, x-tenant = a%2Cb ,").unwrap(),
            vec![("Authorization".into(), "Basic dTpw".into()), ("x-tenant".into(), "a,b".into())]
        );
        let mut c = OtlpConfig::default();
        let errs = c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", "secret-token-without-equals")]));
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(text.contains("OTEL_EXPORTER_OTLP_HEADERS") && !text.contains("secret-token"), "{text}");
    }

    #[test]
    fn http_json_protocol_is_a_config_error_that_points_to_the_http_json_exporter() {
        let mut c = OtlpConfig::default();
        let errs = c.apply_env(&env_of(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ]));
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("OTEL_EXPORTER_OTLP_PROTOCOL") && text[0].contains("http_json") && text[0].contains("otlp_json"), "{text:?}");
        assert!(text[1].contains("OTEL_EXPORTER_OTLP_TIMEOUT"), "{text:?}");
        assert_eq!(c.insecure, Some(true), "the other variables still apply");
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

    fn big_request(n: usize) -> ExportMetricsServiceRequest {
        let ms = (0..n)
            .map(|i| sum(&format!("metric.number.{i}"), true, (0..10).map(|j| int_point(vec![kv("k", &format!("value-{j}"))], 1, 2, j)).collect()))
            .collect();
        request("h", ms)
    }

    #[test]
    fn requests_are_split_under_max_batch_bytes_keeping_every_metric_once() {
        let req = big_request(200);
        let total = req.encoded_len();
        let parts = split_by_encoded_len(&req, 4096);
        assert!(parts.len() >= total / 4096, "{} parts for {total} bytes", parts.len());
        let mut names = Vec::new();
        for p in &parts {
            assert!(p.encoded_len() <= 4096, "{}", p.encoded_len());
            assert_eq!(p.resource_metrics[0].resource, req.resource_metrics[0].resource);
            names.extend(metrics(p).iter().map(|m| m.name.clone()));
        }
        assert_eq!(names.len(), 200);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 200);
    }

    #[tokio::test]
    async fn encode_splits_big_batches_compresses_http_bodies_and_skips_empty_ones() {
        let exporter = OtlpExporter::new(OtlpConfig {
            protocol: Some(Protocol::HttpProtobuf),
            max_batch_bytes: 4096,
            compression: Some(Compression::Zstd),
            ..Default::default()
        })
        .unwrap();
        let batch = Batch::from_request(big_request(200), 1);
        let payloads = exporter.encode(&batch).unwrap();
        assert!(payloads.len() > 1);
        assert_eq!(payloads.iter().map(|p| p.points).sum::<u64>(), batch.points);
        let raw = zstd::bulk::decompress(&payloads[0].body, 1 << 20).unwrap();
        assert!(ExportMetricsServiceRequest::decode(raw.as_slice()).is_ok());
        assert!(exporter.encode(&Batch::default()).unwrap().is_empty());

        let exporter = OtlpExporter::new(OtlpConfig { compression: Some(Compression::Gzip), ..Default::default() }).unwrap();
        let payloads = exporter.encode(&batch).unwrap();
        assert_eq!(payloads.len(), 1);
        assert_eq!(ExportMetricsServiceRequest::decode(payloads[0].body.clone()).unwrap(), batch.request, "gRPC payloads are the message; tonic compresses");
    }

    #[tokio::test]
    async fn a_grpc_send_to_a_closed_port_is_retried() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let exporter =
            OtlpExporter::new(OtlpConfig { endpoint: Some(format!("http://127.0.0.1:{port}")), timeout: Some(ConfigDuration::secs(2)), ..Default::default() })
                .unwrap();
        let p = exporter.encode(&Batch::from_request(big_request(1), 1)).unwrap().remove(0);
        match exporter.send(&p).await {
            Outcome::Retry { reason, .. } => {
                assert!(reason.starts_with("gRPC UNAVAILABLE"), "{reason}")
            }
            o => panic!("{o:?}"),
        }
    }
}
