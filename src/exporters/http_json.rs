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
use crate::http::auth::{self, Auth, BasicAuth};
use crate::http::HttpClient;
use crate::pipeline::queue::{Exporter, Outcome, Payload, QueueConfig, RetryConfig};
use crate::pipeline::{count_points, split_request, Batch};
use crate::tls::TlsConfig;
use crate::translate::{translate, TranslateOptions};
use crate::units::ConfigDuration;
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

/// A sample as [`JsonMetric`] writes it, borrowed from the translated family.
#[derive(Serialize)]
struct JsonMetricRef<'a> {
    name: &'a str,
    value: serde_json::Value,
    #[serde(rename = "type")]
    kind: &'a str,
    labels: LabelsRef<'a>,
}

/// A sample's labels but `__name__`, as a JSON object. `translate` sorts them by name and
/// keeps names unique, so they come out in the order a `BTreeMap` writes them.
struct LabelsRef<'a>(&'a [(String, String)]);

impl Serialize for LabelsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0.iter().filter(|(k, _)| k != "__name__") {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A document's head, written with an empty `metrics` list.
#[derive(Serialize)]
struct JsonDocumentHead<'a> {
    timestamp: i64,
    resource: &'a BTreeMap<String, String>,
    metrics: [(); 0],
}

/// The metricsd-format bodies of a batch, each under `max` bytes where one sample allows (one
/// or more per resource), with their sample counts. Written straight from each resource's
/// translated samples, one resource at a time: no copy of the resource, no per-sample
/// document tree. The same bytes [`metricsd_documents`] split and serialised give.
pub fn metricsd_bodies(req: &ExportMetricsServiceRequest, resource_labels: &[String], max: usize) -> Result<Vec<(Vec<u8>, u64)>, String> {
    resources_metricsd_bodies(&req.resource_metrics, resource_labels, max, Vec::new())
}

/// [`metricsd_bodies`] of a tick's batch as the pipeline holds it: the compact resources'
/// points are translated and written one at a time ([`crate::translate::compact_samples`]), never
/// copied into OTLP structures or families.
pub fn batch_metricsd_bodies(batch: &Batch, resource_labels: &[String], max: usize) -> Result<Vec<(Vec<u8>, u64)>, String> {
    let opts = metricsd_options(resource_labels);
    let mut out = Vec::new();
    for h in batch.compact() {
        // The resource's OTLP metrics (textfiles, histograms, summaries) after its compact points.
        let textfiles = opentelemetry_proto::tonic::metrics::v1::ResourceMetrics {
            resource: Some(h.resource.clone()),
            scope_metrics: h.otlp_scopes.clone(),
            schema_url: String::new(),
        };
        let (families, _) = crate::translate::translate_resources(std::iter::once(&textfiles), &opts);
        let compact_ms = h.scopes.iter().flat_map(|s| &s.metrics).filter(|m| !m.points.is_empty()).map(|m| (m.time_ns / 1_000_000) as i64).max();
        let timestamp_ms = families.iter().flat_map(|f| &f.samples).map(|s| s.timestamp_ms).chain(compact_ms).fold(0i64, i64::max);
        let mut doc = MetricsdDocument::new(&h.resource.attributes, timestamp_ms, max)?;
        let mut failed = None;
        crate::translate::compact_samples(h, &opts, |smp, kind| {
            if failed.is_none() {
                failed = doc.push(smp, kind, &mut out).err();
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        for f in &families {
            for smp in &f.samples {
                doc.push(smp, f.kind, &mut out)?;
            }
        }
        doc.finish(&mut out);
    }
    resources_metricsd_bodies(batch.others(), resource_labels, max, out)
}

fn metricsd_options(resource_labels: &[String]) -> TranslateOptions {
    TranslateOptions { add_target_info: false, promote_resource_attributes: resource_labels.to_vec(), ..Default::default() }
}

/// The bodies of `resources`, one document (or more) each, after `out`.
fn resources_metricsd_bodies(
    resources: &[opentelemetry_proto::tonic::metrics::v1::ResourceMetrics],
    resource_labels: &[String],
    max: usize,
    mut out: Vec<(Vec<u8>, u64)>,
) -> Result<Vec<(Vec<u8>, u64)>, String> {
    let opts = metricsd_options(resource_labels);
    for rm in resources {
        let (families, _) = crate::translate::translate_resources(std::iter::once(rm), &opts);
        let timestamp_ms = families.iter().flat_map(|f| &f.samples).map(|s| s.timestamp_ms).fold(0i64, i64::max);
        let attrs = rm.resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]);
        let mut doc = MetricsdDocument::new(attrs, timestamp_ms, max)?;
        for f in &families {
            for smp in &f.samples {
                doc.push(smp, f.kind, &mut out)?;
            }
        }
        doc.finish(&mut out);
    }
    Ok(out)
}

/// One resource's metricsd-format document being written, cut into bodies under `max` bytes.
struct MetricsdDocument {
    /// The document up to its metrics' `[`.
    head: Vec<u8>,
    doc: Vec<u8>,
    item: Vec<u8>,
    overhead: usize,
    size: usize,
    count: u64,
    max: usize,
}

impl MetricsdDocument {
    fn new(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], timestamp_ms: i64, max: usize) -> Result<Self, String> {
        let resource: BTreeMap<String, String> = attributes.iter().map(|kv| (kv.key.clone(), crate::translate::attribute_value(kv.value.as_ref()))).collect();
        let empty = serde_json::to_vec(&JsonDocumentHead { timestamp: timestamp_ms / 1000, resource: &resource, metrics: [] }).map_err(|e| e.to_string())?;
        let overhead = empty.len();
        let head = empty[..overhead - 2].to_vec(); // without the closing `]}`
        Ok(MetricsdDocument { doc: head.clone(), head, item: Vec::new(), overhead, size: overhead, count: 0, max })
    }

    /// Adds a sample, closing the body into `out` first when it would go over `max`.
    fn push(&mut self, smp: &crate::translate::Sample, kind: crate::translate::Kind, out: &mut Vec<(Vec<u8>, u64)>) -> Result<(), String> {
        self.item.clear();
        let m = JsonMetricRef { name: smp.name(), value: json_number(smp.value), kind: kind.as_str(), labels: LabelsRef(&smp.labels) };
        serde_json::to_writer(&mut self.item, &m).map_err(|e| e.to_string())?;
        let n = self.item.len().saturating_add(1);
        if self.count > 0 && self.size.saturating_add(n) > self.max {
            self.doc.extend_from_slice(b"]}");
            out.push((std::mem::replace(&mut self.doc, self.head.clone()), self.count));
            (self.size, self.count) = (self.overhead, 0);
        }
        if self.count > 0 {
            self.doc.push(b',');
        }
        self.doc.extend_from_slice(&self.item);
        self.size = self.size.saturating_add(n);
        self.count += 1;
        Ok(())
    }

    fn finish(mut self, out: &mut Vec<(Vec<u8>, u64)>) {
        self.doc.extend_from_slice(b"]}");
        out.push((self.doc, self.count));
    }
}

/// The metricsd-format documents of a batch: one per resource (as trees; the exporter writes
/// the same bytes with [`metricsd_bodies`]).
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
#[cfg(test)]
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
                // Serialised once; only a body over the limit is split and serialised again.
                let request = batch.to_request();
                let whole = serde_json::to_vec(&*request).map_err(|e| e.to_string())?;
                if whole.len() <= max {
                    return Ok(vec![self.finish(whole, batch.points)?]);
                }
                drop(whole);
                let parts = split_request(&request, max, |m| serde_json::to_vec(m).map(|v| v.len()).unwrap_or(0));
                parts.iter().map(|p| self.finish(serde_json::to_vec(p).map_err(|e| e.to_string())?, count_points(p))).collect()
            }
            JsonFormat::Metricsd => {
                batch_metricsd_bodies(batch, &self.config.resource_labels, max)?.into_iter().map(|(json, points)| self.finish(json, points)).collect()
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
    fn a_ticks_batch_is_written_point_by_point_as_the_same_bodies_its_otlp_copy_gives() {
        let batch = crate::pipeline::testutil::host_and_scraped(&crate::pipeline::testutil::fixture_tick());
        for max in [usize::MAX, 2048] {
            let streamed = batch_metricsd_bodies(&batch, &["host.name".to_string()], max).unwrap();
            let copied = metricsd_bodies(&batch.to_request(), &["host.name".to_string()], max).unwrap();
            assert!(streamed.len() >= 2 && (max == usize::MAX || streamed.len() > 4), "{} bodies", streamed.len());
            assert!(streamed == copied, "the same bodies, byte for byte ({} against {})", streamed.len(), copied.len());
        }
    }

    #[tokio::test]
    async fn otlp_json_is_the_batch_in_one_body_under_the_limit_and_complete_requests_over_it() {
        let batch = crate::pipeline::testutil::host_and_scraped(&crate::pipeline::testutil::fixture_tick());
        let config =
            |max| HttpJsonConfig { endpoint: "http://127.0.0.1:1/ingest".into(), format: JsonFormat::OtlpJson, max_batch_bytes: max, ..Default::default() };
        let exporter = HttpJsonExporter::new(config(usize::MAX)).unwrap();
        let one = exporter.encode(&batch).unwrap();
        assert_eq!(one.len(), 1);
        let back: ExportMetricsServiceRequest = serde_json::from_slice(&one[0].body).unwrap();
        assert_eq!((back, one[0].points), (batch.to_request().into_owned(), batch.points));

        let exporter = HttpJsonExporter::new(config(4096)).unwrap();
        let parts = exporter.encode(&batch).unwrap();
        assert!(parts.len() > 2, "{} bodies", parts.len());
        for p in &parts {
            let back: ExportMetricsServiceRequest = serde_json::from_slice(&p.body).unwrap();
            assert_eq!(count_points(&back), p.points);
        }
        assert_eq!(parts.iter().map(|p| p.points).sum::<u64>(), batch.points, "every point in one body");
    }

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

    fn batch() -> ExportMetricsServiceRequest {
        use crate::scrape::convert::{resource_metrics, ConvertOptions, Converter};
        use crate::scrape::text::{parse, TextFormat};
        let text =
            (0..300).map(|i| format!("# TYPE c{} counter\nc{}_total{{b=\"{i}\",a=\"x\\\"y\"}} {i}.5\nh_x{{z=\"1\"}} NaN\n", i % 7, i % 7)).collect::<String>();
        let p = parse(&text, TextFormat::Prometheus);
        let metrics = Converter::default().convert(&p.families, &ConvertOptions { now_ns: 1_700_000_000_000_000_000, prefix: "", labels: &[] });
        let rm = |name: &str| resource_metrics(&[("service.name".into(), name.into()), ("host.name".into(), "h".into())], metrics.clone());
        ExportMetricsServiceRequest { resource_metrics: vec![rm("a"), rm("b")] }
    }

    #[test]
    fn streamed_bodies_are_the_bytes_of_the_split_documents() {
        let req = batch();
        for max in [usize::MAX, 4096, 300, 1] {
            let streamed = metricsd_bodies(&req, &["host.name".to_string()], max).unwrap();
            let reference: Vec<(Vec<u8>, u64)> = metricsd_documents(&req, &["host.name".to_string()])
                .into_iter()
                .flat_map(|d| split_document(d, max))
                .map(|d| (d.metrics.len() as u64, serde_json::to_vec(&d).unwrap()))
                .map(|(n, b)| (b, n))
                .collect();
            assert_eq!(streamed.len(), reference.len(), "max {max}");
            for (s, r) in streamed.iter().zip(&reference) {
                assert_eq!((String::from_utf8_lossy(&s.0), s.1), (String::from_utf8_lossy(&r.0), r.1), "max {max}");
            }
            if max == 4096 {
                assert!(streamed.len() > 2 && streamed.iter().all(|(b, _)| b.len() <= 4096));
            }
        }
    }
}
