//! The `file` exporter: each batch written to a local file, as the platform-agnostic exporter's
//! "Prometheus file" mode and the OpenTelemetry Collector's file exporter do.
//!
//! - `format: prometheus` (default): the batch as Prometheus text exposition, translated as
//!   `/metrics` translates it ([`crate::translate`]), the file replaced atomically at each
//!   batch ([`write::replace`]), so another node_exporter's textfile directory can read it:
//!
//!   ```text
//!   # HELP system_memory_usage_bytes Reports memory in use by state
//!   # TYPE system_memory_usage_bytes gauge
//!   system_memory_usage_bytes{system_memory_state="used"} 1.204224e+09
//!   ```
//!
//! - `format: otlp_json`: each batch appended as one line of OTLP/JSON
//!   (`ExportMetricsServiceRequest`, as the Collector's file exporter writes with
//!   `format: json` and its `otlpjsonfile` receiver reads), rotated by size ([`write::append`]):
//!
//!   ```text
//!   {"resourceMetrics":[{"resource":{"attributes":[{"key":"host.name",...}]},"scopeMetrics":[...]}]}
//!   ```
//!
//! Encoding runs on the exporter's thread, the write (the "send") on a blocking thread.
//! A write that fails is classified ([`write::WriteError::retryable`]): a full disk is retried
//! with the exporter's `retry`; a permission, read-only filesystem or missing directory error
//! drops the payload; the queue logs each distinct reason once.

pub mod config;
pub mod write;

use crate::pipeline::queue::{Exporter, Outcome, Payload};
use crate::pipeline::Batch;
pub use config::{FileConfig, FileFormat, RotationConfig};
use std::path::PathBuf;

/// Writes batches to one file.
pub struct FileExporter {
    path: PathBuf,
    format: FileFormat,
    rotation: RotationConfig,
}

impl FileExporter {
    /// An exporter writing `config.path`; fails when its directory does not exist.
    pub fn new(config: &FileConfig) -> Result<Self, String> {
        if !config.path.parent().is_some_and(|d| d.is_dir()) {
            return Err(format!("the directory of {} does not exist", config.path.display()));
        }
        Ok(FileExporter { path: config.path.clone(), format: config.format, rotation: config.rotation() })
    }
}

/// The batch as the file's format holds it.
pub fn render(batch: &Batch, format: FileFormat) -> Result<Vec<u8>, String> {
    match format {
        FileFormat::Prometheus => {
            let (families, _) = batch.translate(&[], &crate::translate::TranslateOptions::default());
            let mut out = String::new();
            crate::translate::render_text(&families, &mut out);
            Ok(out.into_bytes())
        }
        FileFormat::OtlpJson => {
            let mut v = serde_json::to_vec(&*batch.to_request()).map_err(|e| format!("cannot encode OTLP/JSON: {e}"))?;
            v.push(b'\n');
            Ok(v)
        }
    }
}

impl Exporter for FileExporter {
    fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
        Ok(vec![Payload { body: render(batch, self.format)?.into(), points: batch.points }])
    }

    async fn send(&self, payload: &Payload) -> Outcome {
        let (path, format, rotation, body) = (self.path.clone(), self.format, self.rotation, payload.body.clone());
        let r = tokio::task::spawn_blocking(move || match format {
            FileFormat::Prometheus => write::replace(&path, &body),
            FileFormat::OtlpJson => write::append(&path, &body, &rotation),
        })
        .await;
        match r {
            Ok(Ok(())) => Outcome::Sent,
            Ok(Err(e)) if e.retryable() => Outcome::Retry { after: None, reason: e.to_string() },
            Ok(Err(e)) => Outcome::Drop { reason: e.to_string() },
            Err(e) => Outcome::Retry { after: None, reason: format!("the write did not finish: {e}") },
        }
    }
}

#[cfg(test)]
mod tests;
