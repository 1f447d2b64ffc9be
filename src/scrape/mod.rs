//! Application endpoints to scrape (metricsd's `endpoints`), so one agent on a host also
//! gathers its applications' metrics: Prometheus text 0.0.4, OpenMetrics 1.0 and JSON.
//!
//! metricsd's entries (`name`, `url`) load unchanged; every other key is optional:
//!
//! ```yaml
//! endpoints:
//!   - name: app1                      # service.name of its metrics
//!     url: http://localhost:3000/metrics
//!   - name: payments
//!     url: https://10.0.0.7:9443/metrics
//!     format: auto                    # auto (by Content-Type), prometheus, openmetrics, json
//!     interval: 15s                   # default: the agent's collection interval
//!     timeout: 5s                     # default 10s, at most the interval
//!     headers: {X-Tenant: blue}
//!     bearer_token_file: /var/run/secrets/token   # or bearer_token, or basic_auth
//!     tls: {ca_file: /etc/ssl/internal-ca.pem}
//!     labels: {team: payments}        # added to every point
//!     metric_prefix: app_             # metricsd's naming; default none
//!     body_size_limit: 10MiB          # a bigger answer fails that scrape
//!     sample_limit: 50000             # more samples fail the scrape (0: no limit)
//!     label_limit: 64                 # labels on one sample, `labels` included
//!     label_name_length_limit: 1024   # bytes of a label name
//!     label_value_length_limit: 4096  # bytes of a label value or metric name
//!     parsed_size_limit: 16MiB        # memory the scrape's samples may take
//! ```
//!
//! Each target's metrics go into the batch under their own resource, as the Collector's
//! Prometheus receiver does: `service.name` = the target's `name`, `service.instance.id` =
//! `host:port` of its URL, `server.address`, `server.port`, `url.scheme`, plus the host's
//! resource attributes (those that describe metricsd itself, `service.version` and
//! `telemetry.sdk.*`, are left out). Each target also reports, whether it answered or not:
//!
//! | metric | meaning |
//! | --- | --- |
//! | `up` | 1 if the scrape succeeded, else 0 |
//! | `scrape_duration_seconds` | how long the scrape took |
//! | `scrape_samples_scraped` | samples (lines, or JSON values) read |
//! | `scrape_samples_post_metric_relabeling` | samples kept (no relabeling: the same) |
//! | `scrape_samples_skipped` | malformed lines and unusable JSON values skipped |
//! | `scrape_series_added` | series not in the previous successful scrape |
//! | `scrape_sample_limit` | the target's `sample_limit` |
//!
//! Targets are scraped concurrently, each on its own task and interval and under its own
//! timeout and body limit: a slow, dead or garbage-answering target only reports `up` 0 and
//! its error (in the log once per distinct error, and in `/status` under `targets`). A body
//! with malformed lines keeps the rest; only one where nothing parsed fails the scrape. A
//! scrape over one of the target's [`limits`] fails whole, as in Prometheus.
//!
//! Parsing is in [`text`] and [`json`], the mapping to OTLP (and counter start times) in
//! [`convert`], the HTTP side in [`target`].

pub mod convert;
pub mod json;
pub mod limits;
pub mod series;
pub mod target;
pub mod text;

use crate::http::auth::{self, Auth, BasicAuth};
use crate::tls::TlsConfig;
use crate::units::ConfigDuration;
pub use crate::units::{parse_byte_size, ByteSize};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use target::Target;

/// Default per-scrape timeout (Prometheus' `scrape_timeout`), capped at the interval.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest answer body.
pub const DEFAULT_BODY_SIZE_LIMIT: usize = 10 * 1024 * 1024;
/// Default `sample_limit`: samples one scrape may have (Prometheus' default is no limit; 50,000
/// is the usual per-job setting and bounds the agent's memory).
pub const DEFAULT_SAMPLE_LIMIT: usize = 50_000;
/// Default `label_limit`: labels one sample may carry, the target's `labels` included.
pub const DEFAULT_LABEL_LIMIT: usize = 64;
/// Default `label_name_length_limit` in bytes.
pub const DEFAULT_LABEL_NAME_LENGTH_LIMIT: usize = 1024;
/// Default `label_value_length_limit` in bytes (metric names included).
pub const DEFAULT_LABEL_VALUE_LENGTH_LIMIT: usize = 4096;
/// Default `parsed_size_limit`: estimated memory the parsed samples of one scrape may take.
pub const DEFAULT_PARSED_SIZE_LIMIT: usize = 16 * 1024 * 1024;
/// Default metric name prefix: none (metricsd used `app_`; set `metric_prefix: app_` for that).
pub const DEFAULT_METRIC_PREFIX: &str = "";
/// Shortest time budget a parse gets (its budget is the scrape's `timeout`).
pub const MIN_PARSE_TIME: Duration = Duration::from_secs(1);
/// Shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Scrape results kept per target between two batches (older ones are dropped).
pub const MAX_PENDING_RESULTS: usize = 8;
/// Headers the scraper sets itself.
pub const RESERVED_HEADERS: &[&str] = &["Authorization", "Accept-Encoding", "Content-Length", "Host"];

/// How to read a target's answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrapeFormat {
    /// By `Content-Type`: `application/openmetrics-text` → OpenMetrics, `…json` → JSON,
    /// anything else Prometheus text (or JSON when the body starts with `{`).
    #[default]
    Auto,
    /// Prometheus text 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    Openmetrics,
    /// JSON: metricsd's payload, plantd's message, or an object of numbers.
    Json,
}

/// One entry of `endpoints`: metricsd's `name` and `url`, and the scrape options.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// The target's name: `service.name` of its metrics.
    pub name: String,
    /// Where to scrape, e.g. `http://localhost:3000/metrics`.
    pub url: String,
    /// `auto` (default: by `Content-Type`), `prometheus`, `openmetrics` or `json`.
    pub format: ScrapeFormat,
    /// How often to scrape (default: the agent's collection interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<ConfigDuration>,
    /// Time limit of one scrape, body included (default `"10s"`, at most the interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ConfigDuration>,
    /// Extra request headers (`Authorization` and `Accept-Encoding` are the scraper's own).
    pub headers: BTreeMap<String, String>,
    /// Basic authentication (`username`, `password` / `password_file` / `password_env`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// File holding the bearer token (re-read at every scrape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// TLS client settings for `https://` URLs (the same keys as the exporters').
    pub tls: TlsConfig,
    /// Proxy for this target, `http://[user:password@]host:port` (or `https://` for TLS to the
    /// proxy), instead of `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`. `https` URLs go through a
    /// `CONNECT` tunnel; the password is never printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<crate::http::ProxyUrl>,
    /// Labels added to every point of this target; they win over scraped labels of the same
    /// name, which are kept as `exported_<name>`.
    pub labels: BTreeMap<String, String>,
    /// Prepended to every scraped metric name (not to `up` and `scrape_*`). Default none;
    /// metricsd named application metrics `app_…`, which `"app_"` reproduces.
    pub metric_prefix: String,
    /// Largest answer accepted, in bytes or as `"10MiB"` (default 10 MiB); a bigger one fails
    /// that scrape (`up` 0), nothing more.
    pub body_size_limit: ByteSize,
    /// Most samples one scrape may have (default 50000; 0: no limit). A scrape with more fails
    /// whole, as in Prometheus: `up` 0 and no samples.
    pub sample_limit: usize,
    /// Most labels one sample may carry, the target's `labels` included (default 64; 0: no
    /// limit). One sample with more fails the scrape.
    pub label_limit: usize,
    /// Longest label name in bytes (default 1024; 0: no limit). A longer one fails the scrape.
    pub label_name_length_limit: usize,
    /// Longest label value in bytes, metric names included as Prometheus counts them (default
    /// 4096; 0: no limit). A longer one fails the scrape.
    pub label_value_length_limit: usize,
    /// Most memory the samples of one scrape may take in the agent, estimated as they are
    /// parsed: their names and labels, plus 384 bytes a sample and 160 a label (default
    /// 16MiB, about 13,000 series of 5 short labels or 28,000 of one; 0: no limit). It bounds
    /// what a JSON body whose keys multiply into long names, or a body of many small samples,
    /// makes of its bytes. A scrape over it fails whole. The agent holds about two scrapes'
    /// worth at a time: give it about 3× this (plus `body_size_limit`) of memory per target.
    pub parsed_size_limit: ByteSize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            name: String::new(),
            url: String::new(),
            format: ScrapeFormat::Auto,
            interval: None,
            timeout: None,
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            tls: TlsConfig::default(),
            proxy_url: None,
            labels: BTreeMap::new(),
            metric_prefix: DEFAULT_METRIC_PREFIX.to_string(),
            body_size_limit: ByteSize(DEFAULT_BODY_SIZE_LIMIT),
            sample_limit: DEFAULT_SAMPLE_LIMIT,
            label_limit: DEFAULT_LABEL_LIMIT,
            label_name_length_limit: DEFAULT_LABEL_NAME_LENGTH_LIMIT,
            label_value_length_limit: DEFAULT_LABEL_VALUE_LENGTH_LIMIT,
            parsed_size_limit: ByteSize(DEFAULT_PARSED_SIZE_LIMIT),
        }
    }
}

impl EndpointConfig {
    /// The authentication settings.
    pub fn auth(&self) -> Auth {
        Auth { basic: self.basic_auth.clone(), bearer_token: self.bearer_token.clone(), bearer_token_file: self.bearer_token_file.clone() }
    }

    /// The effective interval given the agent's.
    pub fn interval(&self, default_interval: Duration) -> Duration {
        self.interval.map(|d| d.get()).unwrap_or(default_interval).max(MIN_INTERVAL)
    }

    /// The effective timeout: `timeout` (default 10 s), never longer than the interval.
    pub fn timeout(&self, default_interval: Duration) -> Duration {
        self.timeout.map(|d| d.get()).unwrap_or(DEFAULT_TIMEOUT).min(self.interval(default_interval))
    }

    /// What one scrape may produce, with `timeout` (at least 1 s) as the parse's time budget.
    pub fn limits(&self, default_interval: Duration) -> limits::Limits {
        limits::Limits {
            sample_limit: self.sample_limit,
            label_limit: self.label_limit,
            label_name_length_limit: self.label_name_length_limit,
            label_value_length_limit: self.label_value_length_limit,
            parsed_size_limit: self.parsed_size_limit.0,
            time_budget: Some(self.timeout(default_interval).max(MIN_PARSE_TIME)),
            extra_labels: self.labels.len(),
            extra_label_bytes: self.labels.iter().map(|(k, v)| k.len().saturating_add(v.len())).fold(0, usize::saturating_add),
        }
    }

    /// Problems found without connecting.
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.name.is_empty() {
            v.push("`name` is empty".into());
        }
        v.extend(crate::http::proxy::validate(self.proxy_url.as_ref()));
        match self.url.parse::<hyper::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http") | Some("https")) && u.host().is_some() => {}
            _ => v.push(format!("`url` {:?} is not an http(s) URL", self.url)),
        }
        if let Some(i) = self.interval {
            if i.get() < MIN_INTERVAL {
                v.push(format!("`interval` must be at least {MIN_INTERVAL:?}"));
            }
        }
        if let Some(t) = self.timeout {
            if t.get().is_zero() {
                v.push("`timeout` must be more than 0".into());
            }
            if let Some(i) = self.interval {
                if t.get() > i.get() {
                    v.push(format!("`timeout` ({t}) is longer than `interval` ({i})"));
                }
            }
        }
        if self.body_size_limit.0 == 0 {
            v.push("`body_size_limit` must be more than 0".into());
        }
        if self.label_limit != 0 && self.label_limit <= self.labels.len() {
            v.push(format!("`label_limit` ({}) leaves no room for scraped labels beside the {} of `labels`", self.label_limit, self.labels.len()));
        }
        if let Err(e) = auth::user_headers(&self.headers, RESERVED_HEADERS) {
            v.push(e);
        }
        v.extend(self.auth().validate());
        for k in self.labels.keys() {
            if k.is_empty() || k.starts_with(|c: char| c.is_ascii_digit()) || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                v.push(format!("`labels`: {k:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
            }
        }
        if !self.metric_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            || self.metric_prefix.starts_with(|c: char| c.is_ascii_digit())
        {
            v.push(format!("`metric_prefix` {:?} may hold only [a-zA-Z0-9_:] and not start with a digit", self.metric_prefix));
        }
        if let Err(e) = self.tls.validate() {
            v.push(format!("tls: {e}"));
        }
        v
    }
}

/// Every target of `endpoints`, each on its own task; the scheduler drains their results
/// into each batch.
pub struct Scraper {
    targets: Vec<Arc<Target>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Scraper {
    /// The targets, ready to scrape, with no task started (for `--once`).
    pub fn build(endpoints: &[EndpointConfig], host_resource: &crate::resource::Attributes, default_interval: Duration) -> Result<Arc<Scraper>, String> {
        let mut targets = Vec::with_capacity(endpoints.len());
        for (i, e) in endpoints.iter().enumerate() {
            let t = Target::new(e, host_resource, default_interval).map_err(|msg| format!("endpoints[{i}] ({}): {msg}", e.name))?;
            targets.push(Arc::new(t));
        }
        Ok(Arc::new(Scraper { targets, tasks: Mutex::new(Vec::new()) }))
    }

    /// Builds the targets and starts one task per target on the current tokio runtime, each
    /// scraping on its interval and keeping its results until [`Scraper::drain`].
    pub fn start(endpoints: &[EndpointConfig], host_resource: &crate::resource::Attributes, default_interval: Duration) -> Result<Arc<Scraper>, String> {
        let s = Scraper::build(endpoints, host_resource, default_interval)?;
        let mut tasks = s.tasks.lock().unwrap();
        for t in &s.targets {
            tasks.push(tokio::spawn(target::run(t.clone())));
        }
        drop(tasks);
        tracing::info!(targets = s.targets.len(), "Scraping application endpoints");
        Ok(s)
    }

    /// Scrapes every target once, concurrently, and keeps the results for the next drain.
    pub async fn scrape_once(&self) {
        let handles: Vec<_> = self
            .targets
            .iter()
            .map(|t| {
                let t = t.clone();
                tokio::spawn(async move {
                    let rm = t.scrape().await;
                    t.keep(rm);
                })
            })
            .collect();
        for h in handles {
            let _ = h.await;
        }
    }

    /// The results completed since the previous drain, oldest first, one `ResourceMetrics`
    /// per scrape (its `up` and `scrape_*` metrics included).
    pub fn drain(&self) -> Vec<ResourceMetrics> {
        self.targets.iter().flat_map(|t| t.take()).collect()
    }

    /// Stops every target's task (a scrape in flight is abandoned).
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Per target, for `/status`: name, URL (without credentials), `up`, last scrape time,
    /// duration, error, samples.
    pub fn status(&self) -> Vec<serde_json::Value> {
        self.targets.iter().map(|t| serde_json::to_value(t.status()).unwrap_or_default()).collect()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metricsd_entries_load_unchanged_and_get_the_defaults() {
        let e: EndpointConfig = serde_json::from_str(r#"{"name": "app1", "url": "http://localhost:3000/metrics"}"#).unwrap();
        assert!(e.validate().is_empty());
        assert_eq!(e.format, ScrapeFormat::Auto);
        assert_eq!(e.body_size_limit.0, DEFAULT_BODY_SIZE_LIMIT);
        assert_eq!(e.metric_prefix, "");
        assert_eq!(e.interval(Duration::from_secs(60)), Duration::from_secs(60));
        assert_eq!(e.timeout(Duration::from_secs(60)), DEFAULT_TIMEOUT);
        assert_eq!(e.timeout(Duration::from_secs(2)), Duration::from_secs(2), "never longer than the interval");
    }

    #[test]
    fn every_option_parses_and_unknown_keys_are_refused() {
        let yaml = "name: a\nurl: https://h:9443/m\nformat: openmetrics\ninterval: 15s\ntimeout: 5s\nheaders: {X-T: b}\nbearer_token: t\nlabels: {team: x}\nmetric_prefix: app_\nbody_size_limit: 2MiB\ntls: {insecure_skip_verify: true}\n";
        let e: EndpointConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert!(e.validate().is_empty(), "{:?}", e.validate());
        assert_eq!((e.format, e.body_size_limit.0, e.interval(Duration::ZERO)), (ScrapeFormat::Openmetrics, 2 << 20, Duration::from_secs(15)));
        assert!(serde_json::from_str::<EndpointConfig>(r#"{"name":"a","url":"http://h/","colour":1}"#).unwrap_err().to_string().contains("colour"));
        let e: EndpointConfig = serde_json::from_str(
            r#"{"name":"a","url":"http://h/","body_size_limit":1000,"timeout":"20s","interval":"10s","labels":{"1x":"y"},"headers":{"Authorization":"x"}}"#,
        )
        .unwrap();
        let errs = e.validate().join("\n");
        assert!(errs.contains("longer than `interval`") && errs.contains("1x") && errs.contains("Authorization"), "{errs}");
    }

    #[test]
    fn the_limits_have_prometheus_names_and_safe_defaults() {
        let e: EndpointConfig = serde_yaml_ng::from_str(
            "name: a\nurl: http://h/\nsample_limit: 0\nlabel_limit: 10\nlabel_name_length_limit: 100\nlabel_value_length_limit: 200\nparsed_size_limit: 4MiB\n",
        )
        .unwrap();
        assert!(e.validate().is_empty(), "{:?}", e.validate());
        assert_eq!((e.sample_limit, e.label_limit, e.label_name_length_limit, e.label_value_length_limit, e.parsed_size_limit.0), (0, 10, 100, 200, 4 << 20));
        let d = EndpointConfig::default();
        assert_eq!((d.sample_limit, d.label_limit, d.label_name_length_limit, d.label_value_length_limit), (50_000, 64, 1024, 4096));
        assert_eq!(d.parsed_size_limit.0, 16 << 20);
        let tight: EndpointConfig = serde_json::from_str(r#"{"name":"a","url":"http://h/","label_limit":1,"labels":{"team":"x"}}"#).unwrap();
        assert!(tight.validate().join("").contains("label_limit"), "{:?}", tight.validate());
    }

    #[test]
    fn sizes_read_units() {}
}
