//! Exporters: a closed set, each one module that supplies encode / send / classify to the
//! pipeline's one queue-and-retry mechanism ([`crate::pipeline::queue`]).
//!
//! Adding an exporter: one module here and one variant of [`ExporterConfig`].

pub mod file;
pub mod http_json;
pub mod http_post;
pub mod otlp;
pub mod remote_write;
pub mod stdout;

use crate::pipeline::queue::{QueueHandle, RetryConfig};
use serde::{Deserialize, Serialize};

/// One entry of `exporters` (and metricsd's `shipper`), chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExporterConfig {
    /// Prints each batch: a table, or OTLP/JSON (`format = "json"`).
    Stdout(stdout::StdoutConfig),
    /// Prometheus remote-write 1.0.
    PrometheusRemoteWrite(remote_write::RemoteWriteConfig),
    /// JSON over HTTP: metricsd's payload or OTLP/JSON.
    HttpJson(http_json::HttpJsonConfig),
    /// OTLP over gRPC or HTTP/protobuf.
    Otlp(otlp::OtlpConfig),
    /// Writes each batch to a local file: Prometheus text (replaced atomically) or OTLP/JSON
    /// lines (appended, rotated by size).
    File(file::FileConfig),
}

/// The `type` values, for messages.
pub const EXPORTER_TYPES: &str = "otlp, prometheus_remote_write, http_json or stdout";

impl ExporterConfig {
    /// The `type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            ExporterConfig::Stdout(_) => "stdout",
            ExporterConfig::PrometheusRemoteWrite(_) => "prometheus_remote_write",
            ExporterConfig::HttpJson(_) => "http_json",
            ExporterConfig::Otlp(_) => "otlp",
            ExporterConfig::File(_) => "file",
        }
    }

    /// Where it sends, for logs and `/status`.
    pub fn endpoint(&self) -> String {
        match self {
            ExporterConfig::Stdout(_) => "stdout".into(),
            ExporterConfig::PrometheusRemoteWrite(c) => c.endpoint.clone(),
            ExporterConfig::HttpJson(c) => c.endpoint.clone(),
            ExporterConfig::Otlp(c) => c.endpoint_for_display(),
            ExporterConfig::File(c) => c.path.display().to_string(),
        }
    }

    /// Its queue settings (bound and spool).
    pub fn queue_mut(&mut self) -> &mut crate::pipeline::queue::QueueConfig {
        match self {
            ExporterConfig::Stdout(c) => &mut c.queue,
            ExporterConfig::PrometheusRemoteWrite(c) => &mut c.queue,
            ExporterConfig::HttpJson(c) => &mut c.queue,
            ExporterConfig::Otlp(c) => &mut c.queue,
            ExporterConfig::File(c) => &mut c.queue,
        }
    }

    /// Problems found without connecting (bad URL, unreadable certificate, ...).
    pub fn validate(&self) -> Vec<String> {
        use crate::units::duration::{check_range, MAX_TIMEOUT, MIN_TIMEOUT};
        let (mut v, timeout, retry, url) = match self {
            ExporterConfig::Stdout(_) => return Vec::new(),
            ExporterConfig::PrometheusRemoteWrite(c) => (c.validate(), Some(c.timeout.get()), &c.retry, Some(c.endpoint.as_str())),
            ExporterConfig::HttpJson(c) => (c.validate(), Some(c.timeout.get()), &c.retry, Some(c.endpoint.as_str())),
            ExporterConfig::Otlp(c) => (c.validate(), c.timeout.map(|t| t.get()), &c.retry, c.endpoint.as_deref()),
            ExporterConfig::File(c) => (c.validate(), None, &c.retry, None),
        };
        if let Some(t) = timeout {
            v.extend(check_range("timeout", t, MIN_TIMEOUT, MAX_TIMEOUT).err());
        }
        v.extend(retry.validate());
        if let Some(url) = url {
            v.extend(crate::units::url::check_url_port("endpoint", url).err());
        }
        v
    }

    /// Applies the `OTEL_EXPORTER_*` defaults this exporter honours.
    pub fn apply_env(&mut self, env: crate::units::Env) -> Vec<crate::units::env::EnvError> {
        match self {
            ExporterConfig::Otlp(c) => c.apply_env(env),
            _ => Vec::new(),
        }
    }

    /// Starts this exporter's queue; `index` names it in logs and `/status`.
    pub fn spawn(&self, index: usize) -> Result<QueueHandle, String> {
        let name = format!("{}[{index}]", self.kind());
        let endpoint = self.endpoint();
        // Each exporter is built inside its own runtime (see `QueueHandle::spawn_with`).
        let (queue, retry) = match self {
            ExporterConfig::Stdout(c) => (c.queue.clone(), RetryConfig::default()),
            ExporterConfig::PrometheusRemoteWrite(c) => (c.queue.clone(), c.retry.clone()),
            ExporterConfig::HttpJson(c) => (c.queue.clone(), c.retry.clone()),
            ExporterConfig::Otlp(c) => (c.queue.clone(), c.retry.clone()),
            ExporterConfig::File(c) => (c.queue.clone(), c.retry.clone()),
        };
        match self.clone() {
            ExporterConfig::Stdout(c) => QueueHandle::spawn_with(name, endpoint, move || Ok(stdout::StdoutExporter::new(c)), queue, retry),
            ExporterConfig::PrometheusRemoteWrite(c) => {
                QueueHandle::spawn_with(name, endpoint, move || remote_write::RemoteWriteExporter::new(c), queue, retry)
            }
            ExporterConfig::HttpJson(c) => QueueHandle::spawn_with(name, endpoint, move || http_json::HttpJsonExporter::new(c), queue, retry),
            ExporterConfig::Otlp(c) => QueueHandle::spawn_with(name, endpoint, move || otlp::OtlpExporter::new(c), queue, retry),
            ExporterConfig::File(c) => QueueHandle::spawn_with(name, endpoint, move || file::FileExporter::new(&c), queue, retry),
        }
    }
}
