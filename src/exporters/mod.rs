//! Exporters: a closed set, each one module that supplies encode / send / classify to the
//! pipeline's one queue-and-retry mechanism ([`crate::pipeline::queue`]).
//!
//! Adding an exporter: one module here and one variant of [`ExporterConfig`].

pub mod stdout;

use crate::config::ShipperConfig;
use crate::pipeline::queue::QueueHandle;
use serde::{Deserialize, Serialize};

/// One entry of `exporters` (and metricsd's `shipper`), chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExporterConfig {
    /// Prints each batch: a table, or OTLP/JSON (`format = "json"`).
    Stdout(stdout::StdoutConfig),
}

impl ExporterConfig {
    /// The `type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            ExporterConfig::Stdout(_) => "stdout",
        }
    }

    /// Problems found without connecting (bad URL, unreadable certificate, ...).
    pub fn validate(&self) -> Vec<String> {
        match self {
            ExporterConfig::Stdout(_) => Vec::new(),
        }
    }

    /// Applies the `OTEL_EXPORTER_*` defaults this exporter honours.
    pub fn apply_env(&mut self, _env: crate::config::env::Env) -> Vec<crate::config::ConfigError> {
        Vec::new()
    }

    /// metricsd's flat `shipper` section as one of ours.
    pub fn from_shipper(s: &ShipperConfig) -> Result<ExporterConfig, String> {
        match s.kind.as_str() {
            "stdout" => Ok(ExporterConfig::Stdout(stdout::StdoutConfig::default())),
            "" => Err("`type` is missing (prometheus_remote_write, http_json, otlp or stdout)".into()),
            other => Err(format!("unknown shipper type {other:?} (expected prometheus_remote_write, http_json, otlp or stdout)")),
        }
    }

    /// Starts this exporter's queue; `index` names it in logs and `/status`.
    pub fn spawn(&self, index: usize) -> Result<QueueHandle, String> {
        let name = format!("{}[{index}]", self.kind());
        match self {
            ExporterConfig::Stdout(c) => Ok(QueueHandle::spawn(name, "stdout".into(), stdout::StdoutExporter::new(c.clone()), c.queue.clone(), Default::default())),
        }
    }
}
