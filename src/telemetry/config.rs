//! The `telemetry` section: where the agent sends its own logs and traces over OTLP, as the
//! Collector's `service.telemetry` does for the Collector. Off unless `endpoint` is set.
//!
//! ```yaml
//! telemetry:
//!   endpoint: http://otel-collector:4317   # grpc; http/protobuf: http://otel-collector:4318
//!   logs: {level: info}
//!   traces: {enabled: true}
//! ```

use crate::exporters::otlp::{Compression, OtlpConfig, Protocol};
use crate::http::proxy::ProxyUrl;
use crate::tls::TlsConfig;
use crate::units::ConfigDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Least severity of the log records sent, by default.
pub const DEFAULT_LOG_LEVEL: Level = Level::Info;

/// `telemetry`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The OTLP endpoint the agent's own logs and spans go to (`http://host:4317` for grpc,
    /// `http://host:4318` for http/protobuf, where `/v1/logs` and `/v1/traces` are added);
    /// unset (the default): nothing is sent. Read at start (a SIGHUP does not change it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// `endpoint` without a scheme means `http` instead of `https`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Time allowed for one export (default `"10s"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ConfigDuration>,
    /// Headers (gRPC metadata) sent with every export; values are never logged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `gzip` (default) or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// TLS, as an exporter's.
    pub tls: TlsConfig,
    /// A proxy, as an exporter's `proxy_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<ProxyUrl>,
    /// The agent's log records.
    pub logs: LogsConfig,
    /// Spans around each tick, collector refresh, collect, encode and send.
    pub traces: TracesConfig,
}

/// `telemetry.logs`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Send the agent's log records (default true when `endpoint` is set).
    pub enabled: bool,
    /// Least severity sent (default `info`), whatever `--log-level` prints on stderr.
    pub level: Level,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig { enabled: true, level: DEFAULT_LOG_LEVEL }
    }
}

/// `telemetry.traces`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Send spans (default true when `endpoint` is set).
    pub enabled: bool,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig { enabled: true }
    }
}

/// A log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    /// The `tracing` level.
    pub fn tracing(self) -> tracing::Level {
        match self {
            Level::Error => tracing::Level::ERROR,
            Level::Warn => tracing::Level::WARN,
            Level::Info => tracing::Level::INFO,
            Level::Debug => tracing::Level::DEBUG,
            Level::Trace => tracing::Level::TRACE,
        }
    }
}

impl TelemetryConfig {
    /// Whether nothing is set (the section is left out of `--check-config`'s output).
    pub fn is_default(&self) -> bool {
        *self == TelemetryConfig::default()
    }

    /// Whether anything is sent.
    pub fn is_on(&self) -> bool {
        self.endpoint.is_some() && (self.logs.enabled || self.traces.enabled)
    }

    /// The settings as an OTLP exporter's, for the transport they share.
    pub fn otlp(&self) -> OtlpConfig {
        OtlpConfig {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            insecure: self.insecure,
            timeout: self.timeout,
            headers: self.headers.clone(),
            compression: self.compression,
            tls: self.tls.clone(),
            proxy_url: self.proxy_url.clone(),
            ..OtlpConfig::default()
        }
    }

    /// Problems found without connecting, each prefixed by its key.
    pub fn validate(&self) -> Vec<(String, String)> {
        if self.endpoint.is_none() {
            return Vec::new();
        }
        let mut v: Vec<(String, String)> = self.otlp().validate().into_iter().map(|m| ("telemetry".to_string(), m)).collect();
        if self.compression == Some(Compression::Zstd) {
            v.push(("telemetry.compression".into(), "zstd is not available for the agent's own telemetry; use gzip or none".into()));
        }
        v
    }

    /// The URL of the `signal` (`logs`, `traces`) for http/protobuf: `endpoint`'s path (none,
    /// or a base path) followed by `/v1/<signal>`, as `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
    pub fn http_url(&self, signal: &str) -> Result<String, String> {
        let target = self.otlp().target()?;
        let raw = self.endpoint.as_deref().unwrap_or_default();
        let base_path = raw.split_once("://").map(|(_, rest)| rest).unwrap_or(raw).split_once('/').map(|(_, p)| p.trim_end_matches('/')).unwrap_or("");
        let scheme = target.uri.scheme_str().unwrap_or("http");
        let authority = target.uri.authority().map(|a| a.as_str()).unwrap_or_default();
        Ok(if base_path.is_empty() { format!("{scheme}://{authority}/v1/{signal}") } else { format!("{scheme}://{authority}/{base_path}/v1/{signal}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> TelemetryConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn telemetry_is_off_without_an_endpoint_and_on_with_one() {
        assert!(!TelemetryConfig::default().is_on());
        let c = config("endpoint: http://127.0.0.1:4317");
        assert!(c.is_on() && c.logs.enabled && c.traces.enabled && c.logs.level == Level::Info);
        assert!(!config("{endpoint: http://c:4317, logs: {enabled: false}, traces: {enabled: false}}").is_on());
    }

    #[test]
    fn http_urls_add_the_signal_path_to_the_endpoint_or_its_base_path() {
        let c = config("{endpoint: http://c:4318, protocol: http/protobuf}");
        assert_eq!(c.http_url("logs").unwrap(), "http://c:4318/v1/logs");
        let c = config("{endpoint: 'https://gw.example/otlp/', protocol: http/protobuf}");
        assert_eq!(c.http_url("traces").unwrap(), "https://gw.example/otlp/v1/traces");
    }

    #[test]
    fn a_bad_endpoint_or_zstd_is_a_config_error_naming_the_key() {
        let p = config("{endpoint: 'ftp://c:1'}").validate();
        assert!(p.iter().any(|(k, m)| k == "telemetry" && m.contains("http")), "{p:?}");
        let p = config("{endpoint: 'http://c:4317', compression: zstd}").validate();
        assert!(p.iter().any(|(k, _)| k == "telemetry.compression"), "{p:?}");
        assert!(serde_yaml_ng::from_str::<TelemetryConfig>("{endpoint: x, log: {}}").is_err());
    }
}
