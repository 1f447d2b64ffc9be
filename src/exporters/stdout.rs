//! The stdout exporter: each batch printed as a table for people, or as one OTLP/JSON object
//! per line (`format = "json"`, the OTLP/HTTP JSON encoding) for tools.
//!
//! ```text
//! batch 2026-12-07T14:00:00.000Z
//! resource host.name=web-1 host.id=3d12… os.type=linux service.name=metricsd
//!   METRIC               KIND    UNIT  VALUE       ATTRIBUTES
//!   system.memory.usage  updown  By    1204224000  system.memory.state=used
//! ```
//!
//! Every column of a resource's table is as wide as its widest cell; the attributes come last.

use crate::pipeline::queue::{Exporter, Outcome, Payload, QueueConfig};
use crate::pipeline::Batch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write as _;

/// How the stdout exporter prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// A table, one line per data point.
    #[default]
    Table,
    /// One OTLP/JSON `ExportMetricsServiceRequest` per line.
    Json,
}

/// `type = "stdout"`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutConfig {
    /// `table` (default) or `json`.
    pub format: StdoutFormat,
    /// Queue bound.
    pub queue: QueueConfig,
}

/// Prints batches.
pub struct StdoutExporter {
    config: StdoutConfig,
}

impl StdoutExporter {
    /// A stdout exporter.
    pub fn new(config: StdoutConfig) -> Self {
        StdoutExporter { config }
    }
}

impl Exporter for StdoutExporter {
    fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
        let text = render(&batch.to_request(), self.config.format);
        Ok(vec![Payload { body: text.into(), points: batch.points }])
    }

    async fn send(&self, payload: &Payload) -> Outcome {
        // A write to a full pipe blocks: keep it off the async workers.
        let body = payload.body.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut out = std::io::stdout().lock();
            out.write_all(&body).and_then(|_| out.flush())
        })
        .await;
        match r {
            Ok(Ok(())) => Outcome::Sent,
            Ok(Err(e)) => Outcome::Drop { reason: format!("cannot write to stdout: {e}") },
            Err(e) => Outcome::Drop { reason: format!("cannot write to stdout: {e}") },
        }
    }
}

/// The batch as text in `format`.
pub fn render(req: &ExportMetricsServiceRequest, format: StdoutFormat) -> String {
    match format {
        StdoutFormat::Json => {
            let mut s = serde_json::to_string(req).unwrap_or_default();
            s.push('\n');
            s
        }
        StdoutFormat::Table => table(req),
    }
}

/// An attribute value as text.
pub fn any_value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs_text(attrs: &[KeyValue]) -> String {
    let mut v: Vec<String> = attrs.iter().map(|kv| format!("{}={}", kv.key, any_value_text(&kv.value))).collect();
    v.sort();
    v.join(",")
}

fn number(v: &Option<number_data_point::Value>) -> String {
    match v {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => format!("{d}"),
        None => "-".into(),
    }
}

/// The collection time of a batch: the time of its first data point (every point of a tick
/// carries the same one).
fn batch_time(req: &ExportMetricsServiceRequest) -> Option<u64> {
    let m = req.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|sm| &sm.metrics).next()?;
    match m.data.as_ref()? {
        Data::Gauge(g) => g.data_points.first().map(|p| p.time_unix_nano),
        Data::Sum(s) => s.data_points.first().map(|p| p.time_unix_nano),
        Data::Histogram(h) => h.data_points.first().map(|p| p.time_unix_nano),
        Data::Summary(s) => s.data_points.first().map(|p| p.time_unix_nano),
        Data::ExponentialHistogram(h) => h.data_points.first().map(|p| p.time_unix_nano),
    }
}

/// The attributes come last: however long a set is, the other columns stay aligned.
const HEADER: [&str; 5] = ["METRIC", "KIND", "UNIT", "VALUE", "ATTRIBUTES"];

fn table(req: &ExportMetricsServiceRequest) -> String {
    let mut out = String::new();
    let when = batch_time(req).map(|ns| humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns)).to_string());
    let _ = writeln!(out, "batch {}", when.as_deref().unwrap_or("(empty)"));
    for rm in &req.resource_metrics {
        let mut res: Vec<String> = rm.resource.iter().flat_map(|r| r.attributes.iter()).map(|kv| format!("{}={}", kv.key, any_value_text(&kv.value))).collect();
        res.sort();
        let _ = writeln!(out, "resource {}", res.join(" "));
        // Rows first, so that every column is as wide as its widest cell.
        let mut rows: Vec<[String; 5]> = Vec::new();
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let mut row =
                    |kind: &str, attrs: &[KeyValue], value: String| rows.push([m.name.clone(), kind.into(), m.unit.clone(), value, attrs_text(attrs)]);
                match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| row("gauge", &p.attributes, number(&p.value))),
                    Some(Data::Sum(s)) => {
                        let kind = if s.is_monotonic { "counter" } else { "updown" };
                        s.data_points.iter().for_each(|p| row(kind, &p.attributes, number(&p.value)))
                    }
                    Some(Data::Histogram(h)) => {
                        h.data_points.iter().for_each(|p| row("histogram", &p.attributes, format!("count={} sum={}", p.count, p.sum.unwrap_or(0.0))))
                    }
                    Some(Data::Summary(s)) => s.data_points.iter().for_each(|p| row("summary", &p.attributes, format!("count={} sum={}", p.count, p.sum))),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.iter().for_each(|p| row("exphist", &p.attributes, format!("count={}", p.count))),
                    None => {}
                }
            }
        }
        let mut width = HEADER.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: [&str; 5]| {
            let _ = writeln!(
                out,
                "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            );
        };
        line(HEADER);
        for r in &rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
    }
    out
}
