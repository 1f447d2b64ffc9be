//! `type = "http_json"`: each batch POSTed as JSON to a custom ingest.
//!
//! Two formats. `metricsd` (default), metricsd's payload plus the resource:
//!
//! ```json
//! {"timestamp": 1699185296,
//!  "resource": {"host.name": "web-1", "service.name": "metricsd"},
//!  "metrics": [{"name": "system_memory_usage_bytes", "value": 1204224000, "type": "gauge",
//!               "labels": {"system_memory_state": "used", "job": "metricsd", "instance": "web-1"}}]}
//! ```
//!
//! - `timestamp`: collection time, Unix seconds. `resource`: the OpenTelemetry resource
//!   attributes of these metrics (one document per resource: the host's, and each scraped
//!   target's).
//! - `metrics[]`: one entry per Prometheus sample, named by [`crate::translate`] (as `/metrics`
//!   and remote-write). `type` is the family's: `counter`, `gauge`, `histogram`, `summary` or
//!   `untyped`. Histograms are their `_bucket` (with `le`), `_sum` and `_count` samples, summaries
//!   their `quantile` samples, `_sum` and `_count`, all with the family's `type`. `value` is a
//!   number, or the string `"NaN"`, `"+Inf"` or `"-Inf"`. `labels` are the point's attributes
//!   plus `job`/`instance` (and `resource_labels` copied from the resource).
//!
//! `otlp_json`: the OTLP/HTTP JSON encoding of the batch (`ExportMetricsServiceRequest`), as an
//! OTLP/HTTP receiver accepts it with `Content-Type: application/json`.
//!
//! Bodies over `max_batch_bytes` are split into several requests, each a complete document.
//! 5xx, 408 and 429 are retried (honouring `Retry-After`); other 4xx are dropped and counted.

use super::http_post;
use crate::config::ConfigDuration;
use crate::http::auth::{self, Auth, BasicAuth};
use crate::http::HttpClient;
use crate::pipeline::queue::{Exporter, Outcome, Payload, QueueConfig, RetryConfig};
use crate::pipeline::{count_points, split_request, Batch};
use crate::tls::TlsConfig;
use crate::translate::{translate, TranslateOptions};
use hyper::header::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default request timeout.
pub const DEFAULT_TIMEOUT: ConfigDuration = ConfigDuration::secs(30);
/// Default largest request body before compression.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Headers the exporter sets itself.
pub const RESERVED_HEADERS: &[&str] = &["Content-Type", "Content-Encoding", "Content-Length", "Authorization"];

/// The JSON shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonFormat {
    /// metricsd's `{"timestamp", "metrics": [...]}` plus `resource`.
    #[default]
    Metricsd,
    /// OTLP/JSON.
    OtlpJson,
}

/// `type = "http_json"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpJsonConfig {
    /// Where to POST.
    pub endpoint: String,
    /// `metricsd` (default) or `otlp_json`.
    pub format: JsonFormat,
    /// Request timeout (default `"30s"`).
    pub timeout: ConfigDuration,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// File holding the bearer token (re-read at every request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// Compress bodies with gzip (`Content-Encoding: gzip`); default false.
    pub gzip: bool,
    /// Largest body before compression (default 4 MiB); bigger batches are split.
    pub max_batch_bytes: usize,
    /// Resource attributes also copied into every metric's `labels` (metricsd format).
    pub resource_labels: Vec<String>,
    /// TLS client settings.
    pub tls: TlsConfig,
    /// Proxy for this exporter, `http://[user:password@]host:port` (or `https://` for TLS to the
    /// proxy), instead of `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`. `https` URLs go through a
    /// `CONNECT` tunnel; the password is never printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<crate::http::ProxyUrl>,
    /// Queue bound.
    pub queue: QueueConfig,
    /// Retry schedule.
    pub retry: RetryConfig,
}

impl Default for HttpJsonConfig {
    fn default() -> Self {
        HttpJsonConfig {
            endpoint: String::new(),
            format: JsonFormat::Metricsd,
            timeout: DEFAULT_TIMEOUT,
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            gzip: false,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            resource_labels: Vec::new(),
            tls: TlsConfig::default(),
            proxy_url: None,
            queue: QueueConfig::default(),
            retry: RetryConfig::default(),
        }
    }
}

impl HttpJsonConfig {
    fn auth(&self) -> Auth {
        Auth { basic: self.basic_auth.clone(), bearer_token: self.bearer_token.clone(), bearer_token_file: self.bearer_token_file.clone() }
    }

    /// Problems found without connecting.
    pub fn validate(&self) -> Vec<String> {
        let mut v = http_post::validate_http_exporter(&self.endpoint, &self.headers, RESERVED_HEADERS, &self.auth(), self.max_batch_bytes, &self.tls);
        v.extend(crate::http::proxy::validate(self.proxy_url.as_ref()));
        v
    }
}

/// One entry of `metrics`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct JsonMetric {
    /// Prometheus-style name.
    pub name: String,
    /// A number, or "NaN" / "+Inf" / "-Inf".
    pub value: serde_json::Value,
    /// counter, gauge, histogram, summary, untyped.
    #[serde(rename = "type")]
    pub kind: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// One metricsd-format document.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct JsonDocument {
    /// Unix seconds.
    pub timestamp: i64,
    /// Resource attributes.
    pub resource: BTreeMap<String, String>,
    /// The samples.
    pub metrics: Vec<JsonMetric>,
}

fn json_number(v: f64) -> serde_json::Value {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Value::from(v)
    }
}

/// The metricsd-format documents of a batch: one per resource.
pub fn metricsd_documents(req: &ExportMetricsServiceRequest, resource_labels: &[String]) -> Vec<JsonDocument> {
    let opts = TranslateOptions { add_target_info: false, promote_resource_attributes: resource_labels.to_vec(), ..Default::default() };
    let mut docs = Vec::new();
    for rm in &req.resource_metrics {
        let one = ExportMetricsServiceRequest { resource_metrics: vec![rm.clone()] };
        let (families, _) = translate(&one, &opts);
        let resource: BTreeMap<String, String> =
            rm.resource.iter().flat_map(|r| r.attributes.iter()).map(|kv| (kv.key.clone(), crate::translate::attribute_value(kv.value.as_ref()))).collect();
        let mut timestamp_ms = 0i64;
        let mut metrics = Vec::new();
        for f in &families {
            for s in &f.samples {
                timestamp_ms = timestamp_ms.max(s.timestamp_ms);
                let mut labels = BTreeMap::new();
                let mut name = String::new();
                for (k, v) in &s.labels {
                    if k == "__name__" {
                        name = v.clone();
                    } else {
                        labels.insert(k.clone(), v.clone());
                    }
                }
                metrics.push(JsonMetric { name, value: json_number(s.value), kind: f.kind.as_str().to_string(), labels });
            }
        }
        docs.push(JsonDocument { timestamp: timestamp_ms / 1000, resource, metrics });
    }
    docs
}

/// Sends batches as JSON.
pub struct HttpJsonExporter {
    config: HttpJsonConfig,
    uri: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Auth,
    client: HttpClient,
}

impl HttpJsonExporter {
    /// Builds the client (reads certificates now).
    pub fn new(config: HttpJsonConfig) -> Result<Self, String> {
        let uri = auth::parse_endpoint(&config.endpoint)?;
        let mut headers = auth::user_headers(&config.headers, RESERVED_HEADERS)?;
        headers.push((hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
        if config.gzip {
            headers.push((hyper::header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        }
        let client = HttpClient::with_proxy(&config.tls, config.timeout.get(), config.proxy_url.as_ref())?;
        Ok(HttpJsonExporter { auth: config.auth(), uri, headers, client, config })
    }

    fn finish(&self, json: Vec<u8>, points: u64) -> Result<Payload, String> {
        let body = if self.config.gzip { crate::http::gzip(&json) } else { json };
        Ok(Payload { body: body.into(), points })
    }
}

/// Splits metricsd documents so each serialises under `max` bytes.
fn split_document(doc: JsonDocument, max: usize) -> Vec<JsonDocument> {
    let overhead =
        serde_json::to_vec(&JsonDocument { timestamp: doc.timestamp, resource: doc.resource.clone(), metrics: vec![] }).map(|v| v.len()).unwrap_or(0);
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut size = overhead;
    for m in doc.metrics {
        let n = serde_json::to_vec(&m).map(|v| v.len() + 1).unwrap_or(0);
        if !cur.is_empty() && size + n > max {
            out.push(JsonDocument { timestamp: doc.timestamp, resource: doc.resource.clone(), metrics: std::mem::take(&mut cur) });
            size = overhead;
        }
        size += n;
        cur.push(m);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(JsonDocument { timestamp: doc.timestamp, resource: doc.resource, metrics: cur });
    }
    out
}

impl Exporter for HttpJsonExporter {
    fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
        let max = self.config.max_batch_bytes;
        match self.config.format {
            JsonFormat::OtlpJson => {
                let parts = if serde_json::to_vec(&batch.request).map(|v| v.len()).unwrap_or(0) > max {
                    split_request(&batch.request, max, |m| serde_json::to_vec(m).map(|v| v.len()).unwrap_or(0))
                } else {
                    vec![batch.request.clone()]
                };
                parts.iter().map(|p| self.finish(serde_json::to_vec(p).map_err(|e| e.to_string())?, count_points(p))).collect()
            }
            JsonFormat::Metricsd => {
                let mut out = Vec::new();
                for doc in metricsd_documents(&batch.request, &self.config.resource_labels) {
                    for piece in split_document(doc, max) {
                        let points = piece.metrics.len() as u64;
                        out.push(self.finish(serde_json::to_vec(&piece).map_err(|e| e.to_string())?, points)?);
                    }
                }
                Ok(out)
            }
        }
    }

    async fn send(&self, payload: &Payload) -> Outcome {
        http_post::post_payload(&self.client, &self.uri, &self.headers, &self.auth, payload.body.clone(), &[408, 429]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_become_strings_and_integers_stay_integers() {
        assert_eq!(json_number(f64::NAN), serde_json::json!("NaN"));
        assert_eq!(json_number(f64::INFINITY), serde_json::json!("+Inf"));
        assert_eq!(json_number(f64::NEG_INFINITY), serde_json::json!("-Inf"));
        assert_eq!(json_number(42.0).to_string(), "42");
        assert_eq!(json_number(0.25).to_string(), "0.25");
    }

    #[test]
    fn documents_are_split_under_the_limit_and_each_is_complete() {
        let metrics: Vec<JsonMetric> =
            (0..100).map(|i| JsonMetric { name: format!("m{i}"), value: 1.into(), kind: "gauge".into(), labels: BTreeMap::new() }).collect();
        let doc = JsonDocument { timestamp: 1, resource: [("host.name".to_string(), "h".to_string())].into(), metrics };
        let parts = split_document(doc, 1024);
        assert!(parts.len() > 1);
        let mut total = 0;
        for p in &parts {
            let bytes = serde_json::to_vec(p).unwrap();
            assert!(bytes.len() <= 1024, "{}", bytes.len());
            let back: JsonDocument = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back.resource["host.name"], "h");
            total += back.metrics.len();
        }
        assert_eq!(total, 100);
    }
}
