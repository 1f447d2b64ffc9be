//! `type = "prometheus_remote_write"`: Prometheus remote-write 1.0 to Prometheus, Mimir, Thanos
//! Receive, Cortex or VictoriaMetrics; 2.0 (`protocol_version: 2`: a symbols table, metadata
//! on every series, the receiver's written counts) to Prometheus 3 and other 2.0 receivers.
//!
//! Each batch is translated by [`crate::translate`] (the same names as `/metrics`), split into
//! `WriteRequest`s of at most `max_batch_bytes`, protobuf-encoded, snappy-compressed (block
//! format) and POSTed with the protocol's headers. 5xx and 429 are retried with backoff,
//! honouring `Retry-After`; any other 4xx is dropped, logged once with the server's message,
//! and counted. One sender per exporter keeps every series' samples in timestamp order.

pub mod answer_v2;
pub mod encode;
pub mod encode_v2;
pub mod stream;

use super::http_post;
use crate::http::auth::{self, Auth, BasicAuth};
use crate::http::HttpClient;
use crate::pipeline::queue::{Exporter, Outcome, Payload, QueueConfig, RetryConfig};
use crate::pipeline::Batch;
use crate::tls::TlsConfig;
use crate::translate::TranslateOptions;
use crate::units::ConfigDuration;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: ConfigDuration = ConfigDuration::secs(30);
/// Default largest uncompressed `WriteRequest`.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Default remote-write protocol version (1.0: every receiver takes it).
pub const DEFAULT_PROTOCOL_VERSION: u8 = 1;
/// Headers the protocol sets; `headers` may not replace them.
pub const RESERVED_HEADERS: &[&str] = &["Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent", "Authorization"];

/// `type = "prometheus_remote_write"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// The receiver, e.g. `http://prometheus:9090/api/v1/write`.
    pub endpoint: String,
    /// Request timeout (default `"30s"`; integer nanoseconds also accepted).
    pub timeout: ConfigDuration,
    /// Extra request headers (e.g. `X-Scope-OrgID`); cannot replace the protocol's own.
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
    /// Labels added to every series that lacks them (as Prometheus' `external_labels`).
    pub external_labels: BTreeMap<String, String>,
    /// Resource attributes copied as labels onto every series (e.g. `host.name`,
    /// `k8s.pod.name`); all of them are on `target_info` anyway.
    pub promote_resource_attributes: Vec<String>,
    /// Send `target_info` (default true).
    pub target_info: bool,
    /// Largest uncompressed request (default 2 MiB); bigger batches are split.
    pub max_batch_bytes: usize,
    /// Remote-write protocol: `1` (default; every receiver) or `2` (remote-write 2.0: strings
    /// sent once per request, type/help/unit on every series, and partial writes reported by
    /// the receiver; Prometheus 3.0 and later with its receiver on). A 1.0-only receiver
    /// answers 2.0 with HTTP 415, which is logged and not retried.
    pub protocol_version: u8,
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

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            endpoint: String::new(),
            timeout: DEFAULT_TIMEOUT,
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            external_labels: BTreeMap::new(),
            promote_resource_attributes: Vec::new(),
            target_info: true,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            protocol_version: DEFAULT_PROTOCOL_VERSION,
            tls: TlsConfig::default(),
            proxy_url: None,
            queue: QueueConfig::default(),
            retry: RetryConfig::default(),
        }
    }
}

impl RemoteWriteConfig {
    fn auth(&self) -> Auth {
        Auth { basic: self.basic_auth.clone(), bearer_token: self.bearer_token.clone(), bearer_token_file: self.bearer_token_file.clone() }
    }

    /// Problems found without connecting.
    pub fn validate(&self) -> Vec<String> {
        let mut v = http_post::validate_http_exporter(&self.endpoint, &self.headers, RESERVED_HEADERS, &self.auth(), self.max_batch_bytes, &self.tls);
        v.extend(crate::http::proxy::validate(self.proxy_url.as_ref()));
        if !matches!(self.protocol_version, 1 | 2) {
            v.push(format!("`protocol_version` must be 1 or 2, not {}", self.protocol_version));
        }
        v
    }

    fn translate_options(&self) -> TranslateOptions {
        TranslateOptions {
            promote_resource_attributes: self.promote_resource_attributes.clone(),
            add_target_info: self.target_info,
            external_labels: self.external_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            name_prefix: None,
        }
    }
}

/// Sends batches by remote-write.
pub struct RemoteWriteExporter {
    config: RemoteWriteConfig,
    uri: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Auth,
    client: HttpClient,
    options: TranslateOptions,
    dropped_points: AtomicU64,
}

impl RemoteWriteExporter {
    /// Builds the client (reads certificates now).
    pub fn new(config: RemoteWriteConfig) -> Result<Self, String> {
        let uri = auth::parse_endpoint(&config.endpoint)?;
        let mut headers = auth::user_headers(&config.headers, RESERVED_HEADERS)?;
        headers.push((hyper::header::CONTENT_ENCODING, HeaderValue::from_static("snappy")));
        let (content_type, version) = match config.protocol_version {
            1 => ("application/x-protobuf", "0.1.0"),
            2 => (encode_v2::CONTENT_TYPE, encode_v2::VERSION),
            v => return Err(format!("`protocol_version` must be 1 or 2, not {v}")),
        };
        headers.push((hyper::header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
        headers.push((HeaderName::from_static("x-prometheus-remote-write-version"), HeaderValue::from_static(version)));
        let client = HttpClient::with_proxy(&config.tls, config.timeout.get(), config.proxy_url.as_ref())?;
        Ok(RemoteWriteExporter { auth: config.auth(), options: config.translate_options(), uri, headers, client, config, dropped_points: AtomicU64::new(0) })
    }

    /// Points the translation dropped (delta temporality, exponential histograms).
    pub fn untranslatable_points(&self) -> u64 {
        self.dropped_points.load(Ordering::Relaxed)
    }
}

impl Exporter for RemoteWriteExporter {
    fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
        if self.config.protocol_version != 2 {
            // 1.0: the compact resources' series written one by one as they are translated (`stream`).
            let (families, stats) = batch.translate_rest(&self.options);
            let mut bodies = stream::Bodies::new(self.config.max_batch_bytes);
            let mut dropped = stats.dropped();
            for r in batch.compact() {
                dropped += crate::translate::compact_samples(r, &self.options, |s, _| bodies.push(&s.labels, s.value, s.timestamp_ms)).dropped();
            }
            for ts in encode::to_series(families) {
                bodies.push_series(&ts);
            }
            if dropped > 0 {
                self.dropped_points.fetch_add(dropped as u64, Ordering::Relaxed);
            }
            return Ok(bodies.finish());
        }
        let (families, stats) = batch.translate(&[], &self.options);
        if stats.dropped() > 0 {
            self.dropped_points.fetch_add(stats.dropped() as u64, Ordering::Relaxed);
        }
        let mut buf = Vec::new();
        Ok(encode_v2::to_requests(families, self.config.max_batch_bytes)
            .iter()
            .map(|req| {
                let points = req.timeseries.iter().map(|t| t.samples.len() as u64).sum();
                Payload { body: encode_v2::encode(req, &mut buf).into(), points }
            })
            .collect())
    }

    async fn send(&self, payload: &Payload) -> Outcome {
        if self.config.protocol_version == 2 {
            let mut headers = self.headers.clone();
            match self.auth.header() {
                Ok(Some(h)) => headers.push((hyper::header::AUTHORIZATION, h)),
                Ok(None) => {}
                Err(e) => return Outcome::Retry { after: None, reason: e },
            }
            let r = self.client.request(hyper::Method::POST, &self.uri, &headers, payload.body.clone(), 64 * 1024).await;
            return answer_v2::classify_v2(r, payload.points, &[429]);
        }
        http_post::post_payload(&self.client, &self.uri, &self.headers, &self.auth, payload.body.clone(), &[429]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_version_defaults_to_1_and_only_1_or_2_are_accepted() {
        let c: RemoteWriteConfig = serde_yaml_ng::from_str("endpoint: http://p:9090/api/v1/write\n").unwrap();
        assert_eq!(c.protocol_version, 1);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let c2: RemoteWriteConfig = serde_yaml_ng::from_str("endpoint: http://p:9090/api/v1/write\nprotocol_version: 2\n").unwrap();
        assert!(c2.validate().is_empty());
        let c3 = RemoteWriteConfig { protocol_version: 3, ..c2.clone() };
        assert!(c3.validate().iter().any(|e| e.contains("protocol_version")), "{:?}", c3.validate());
        assert!(RemoteWriteExporter::new(c3).is_err_and(|e| e.contains("protocol_version")));
    }

    #[test]
    fn a_ticks_batch_is_written_series_by_series_as_the_same_requests_translating_it_whole_gives() {
        // A scraped resource after the host's, with target_info of its own.
        let batch = crate::pipeline::testutil::host_and_scraped(&crate::pipeline::testutil::fixture_tick());
        let config: RemoteWriteConfig = serde_yaml_ng::from_str("endpoint: http://127.0.0.1:9/api/v1/write\nmax_batch_bytes: 4096\n").unwrap();
        let exporter = RemoteWriteExporter::new(config).unwrap();
        let payloads = exporter.encode(&batch).unwrap();
        let (families, _) = crate::translate::translate(&batch.to_request(), &exporter.options);
        let want = encode::to_write_requests(families, 4096);
        assert!(want.len() > 3, "several requests: {}", want.len());
        let got: Vec<_> = payloads.iter().map(|p| encode::decode(&p.body).unwrap()).collect();
        assert!(got.iter().all(|r| prost::Message::encoded_len(r) <= 4096));
        // The same series (in another order: the general path groups a name's families).
        let flat = |reqs: &[encode::proto::WriteRequest]| {
            let mut v: Vec<String> = reqs.iter().flat_map(|r| &r.timeseries).map(|t| format!("{t:?}")).collect();
            v.sort();
            v
        };
        let (got, want) = (flat(&got), flat(&want));
        assert!(got.len() > 100 && got.iter().any(|t| t.contains("\"app\"")));
        assert!(got == want, "{} series against {}", got.len(), want.len());
        assert_eq!(payloads.iter().map(|p| p.points).sum::<u64>(), want.len() as u64);
    }
}
