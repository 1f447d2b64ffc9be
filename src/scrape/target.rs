//! One scrape target: the HTTP request (auth, headers, TLS, timeout, body limit, gzip), the
//! choice of parser, the conversion, the target's own `up`/`scrape_*` metrics, its status
//! for `/status`, and logging each distinct error once.

use super::convert::{self, ConvertOptions, Converter};
use super::limits::{LimitError, Limits};
use super::series::{self, SeriesTracker};
use super::text::{self, TextFormat};
use super::{json, EndpointConfig, ScrapeFormat, MAX_PENDING_RESULTS, RESERVED_HEADERS};
use crate::http::auth::{self, Auth};
use crate::http::{body_snippet, HttpClient, RequestError};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Uri};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Distinct errors remembered per target for log-once (beyond that, errors log at debug).
const MAX_REMEMBERED_ERRORS: usize = 256;
/// Pending results may take this many times `parsed_size_limit` in all.
const PENDING_SIZE_FACTOR: usize = 2;
/// New malformed-line errors logged per scrape (the rest at debug).
const MAX_LINE_ERRORS_LOGGED: usize = 10;

const ACCEPT_AUTO: &str = "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.5,application/json;q=0.4,*/*;q=0.1";
const ACCEPT_PROMETHEUS: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
const ACCEPT_OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const ACCEPT_JSON: &str = "application/json,*/*;q=0.1";

/// Host resource attributes that describe metricsd itself, not the scraped application.
fn describes_the_agent(key: &str) -> bool {
    matches!(key, "service.name" | "service.instance.id" | "service.version") || key.starts_with("telemetry.sdk.") || key.starts_with("telemetry.distro.")
}

/// The last scrape of a target, for `/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetStatus {
    /// The target's name.
    pub name: String,
    /// Its URL without credentials or query.
    pub url: String,
    /// Whether the last scrape succeeded.
    pub up: bool,
    /// When the last scrape finished (RFC 3339).
    pub last_scrape: Option<String>,
    /// How long it took.
    pub last_duration_seconds: f64,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// The format it was read as.
    pub format: Option<&'static str>,
    /// Samples read (on a failure at a limit: those read until the parse stopped).
    pub samples: usize,
    /// Series that were not in the previous successful scrape.
    pub series_added: usize,
    /// Malformed lines or unusable JSON values skipped.
    pub skipped: usize,
    /// Scrapes since start.
    pub scrapes: u64,
    /// Failed scrapes since start.
    pub failures: u64,
    /// Of those, scrapes failed at a limit (`sample_limit`, `label_limit`, …,
    /// `parsed_size_limit`, `body_size_limit`, the parse's time budget).
    pub limit_failures: u64,
    /// Scrape results dropped because no batch took them in time (more than 8, or more than
    /// twice `parsed_size_limit`, waiting).
    pub dropped_results: u64,
}

/// Why a scrape gave nothing.
#[derive(Debug)]
struct Failure {
    message: String,
    format: Option<&'static str>,
    /// Samples read before it stopped.
    samples: usize,
    /// Whether a limit stopped it.
    limit: bool,
}

impl Failure {
    fn other(message: String, format: Option<&'static str>) -> Failure {
        Failure { message, format, samples: 0, limit: false }
    }
    fn limit(e: LimitError, samples: usize, format: Option<&'static str>) -> Failure {
        Failure { message: e.to_string(), format, samples, limit: true }
    }
}

/// What a scrape produced, before it is wrapped in its resource.
struct Outcome {
    metrics: Vec<Metric>,
    samples: usize,
    skipped: usize,
    line_errors: Vec<String>,
    body_resource: Vec<(String, String)>,
    format: &'static str,
}

/// One scrape target.
pub struct Target {
    name: String,
    uri: Uri,
    shown_url: String,
    format: ScrapeFormat,
    client: HttpClient,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Auth,
    body_limit: usize,
    timeout: Duration,
    interval: Duration,
    prefix: String,
    labels: Vec<(String, String)>,
    limits: Arc<Limits>,
    series: Mutex<SeriesTracker>,
    /// Host attributes (those that describe the host, not metricsd).
    host_resource: Vec<(String, String)>,
    /// `service.name`, `service.instance.id`, `server.*`, `url.scheme`: these always win.
    own_resource: Vec<(String, String)>,
    converter: Arc<Mutex<Converter>>,
    logged: Mutex<HashSet<String>>,
    status: Mutex<TargetStatus>,
    pending: Mutex<Pending>,
}

/// Scrape results waiting for a batch, with their estimated size.
#[derive(Default)]
struct Pending {
    results: VecDeque<(ResourceMetrics, usize)>,
    bytes: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.results.is_empty()
    }
    fn len(&self) -> usize {
        self.results.len()
    }
    fn pop_front(&mut self) {
        if let Some((_, b)) = self.results.pop_front() {
            self.bytes = self.bytes.saturating_sub(b);
        }
    }
    fn push_back(&mut self, rm: ResourceMetrics, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.results.push_back((rm, bytes));
    }
    fn take(&mut self) -> Vec<ResourceMetrics> {
        self.bytes = 0;
        self.results.drain(..).map(|(rm, _)| rm).collect()
    }
}

impl Target {
    /// A target for `cfg`; fails on a bad URL, header or TLS setting.
    pub fn new(cfg: &EndpointConfig, host: &crate::resource::Attributes, default_interval: Duration) -> Result<Target, String> {
        let uri: Uri = auth::parse_endpoint(&cfg.url).map_err(|e| e.replace("`endpoint`", "`url`"))?;
        let interval = cfg.interval(default_interval);
        let timeout = cfg.timeout(default_interval);
        let client = HttpClient::with_proxy(&cfg.tls, timeout, cfg.proxy_url.as_ref())?;
        let accept = match cfg.format {
            ScrapeFormat::Auto => ACCEPT_AUTO,
            ScrapeFormat::Prometheus => ACCEPT_PROMETHEUS,
            ScrapeFormat::Openmetrics => ACCEPT_OPENMETRICS,
            ScrapeFormat::Json => ACCEPT_JSON,
        };
        let mut headers = vec![
            (ACCEPT, HeaderValue::from_static(accept)),
            (ACCEPT_ENCODING, HeaderValue::from_static("gzip")),
            (
                HeaderName::from_static("x-prometheus-scrape-timeout-seconds"),
                HeaderValue::from_str(&format!("{}", timeout.as_secs_f64())).expect("a number is a valid header"),
            ),
        ];
        headers.extend(auth::user_headers(&cfg.headers, RESERVED_HEADERS)?);
        let auth = cfg.auth();
        if let Some(e) = auth.validate().into_iter().next() {
            return Err(e);
        }
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host_name = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let own_resource = vec![
            ("service.name".to_string(), cfg.name.clone()),
            ("service.instance.id".to_string(), format!("{host_name}:{port}")),
            ("server.address".to_string(), host_name.trim_start_matches('[').trim_end_matches(']').to_string()),
            ("server.port".to_string(), port.to_string()),
            ("url.scheme".to_string(), scheme.clone()),
        ];
        let host_resource = host.iter().filter(|(k, _)| !describes_the_agent(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let shown_url = format!("{scheme}://{host_name}:{port}{}", uri.path());
        let status = TargetStatus { name: cfg.name.clone(), url: shown_url.clone(), ..Default::default() };
        Ok(Target {
            name: cfg.name.clone(),
            uri,
            shown_url,
            format: cfg.format,
            client,
            headers,
            auth,
            body_limit: cfg.body_size_limit.0,
            timeout,
            interval,
            prefix: cfg.metric_prefix.clone(),
            labels: cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            limits: Arc::new(cfg.limits(default_interval)),
            series: Mutex::new(SeriesTracker::default()),
            host_resource,
            own_resource,
            converter: Arc::new(Mutex::new(Converter::default())),
            logged: Mutex::new(HashSet::new()),
            status: Mutex::new(status),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scrape interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A copy of the last scrape's status.
    pub fn status(&self) -> TargetStatus {
        self.status.lock().unwrap().clone()
    }

    /// Keeps a result for the next [`take`](Self::take), dropping the oldest past
    /// [`MAX_PENDING_RESULTS`] or past twice `parsed_size_limit` (estimated) in all; the
    /// newest is always kept.
    pub fn keep(&self, rm: ResourceMetrics) {
        let bytes = series::estimated_bytes(&rm);
        let size_cap = self.limits.parsed_size_limit.saturating_mul(PENDING_SIZE_FACTOR);
        let mut p = self.pending.lock().unwrap();
        let mut dropped = 0u64;
        while !p.is_empty() && (p.len() >= MAX_PENDING_RESULTS || (size_cap != 0 && p.bytes.saturating_add(bytes) > size_cap)) {
            p.pop_front();
            dropped += 1;
        }
        p.push_back(rm, bytes);
        drop(p);
        if dropped > 0 {
            let first = {
                let mut st = self.status.lock().unwrap();
                st.dropped_results += dropped;
                st.dropped_results == dropped
            };
            if first {
                tracing::warn!(target_name = %self.name, dropped, "Scrape results dropped: no batch took them in time (counted in /status dropped_results)");
            } else {
                tracing::debug!(target_name = %self.name, dropped, "Scrape results dropped: no batch took them in time");
            }
        }
    }

    /// The results kept since the previous call.
    pub fn take(&self) -> Vec<ResourceMetrics> {
        self.pending.lock().unwrap().take()
    }

    /// Scrapes once: the target's metrics (if it answered usably and within its limits) and
    /// its `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
    /// `scrape_samples_post_metric_relabeling`, `scrape_samples_skipped`,
    /// `scrape_series_added`, `scrape_sample_limit`.
    pub async fn scrape(&self) -> ResourceMetrics {
        let started = Instant::now();
        let now = SystemTime::now();
        let now_ns = now.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let result = self.fetch_and_parse(now_ns).await;
        let took = started.elapsed();
        let mut limit_hit = false;
        let (up, mut metrics, samples, skipped, body_resource, error, format) = match result {
            Ok(o) => {
                self.log_line_errors(&o.line_errors);
                (true, o.metrics, o.samples, o.skipped, o.body_resource, None, Some(o.format))
            }
            Err(f) => {
                limit_hit = f.limit;
                (false, Vec::new(), f.samples, 0, Vec::new(), Some(f.message), f.format)
            }
        };
        let series_added = {
            let mut series = self.series.lock().unwrap();
            if up {
                series.added(&metrics)
            } else {
                series.clear();
                0
            }
        };
        {
            let mut st = self.status.lock().unwrap();
            let was_failing = st.last_error.is_some();
            st.up = up;
            st.last_scrape = Some(humantime::format_rfc3339_millis(now).to_string());
            st.last_duration_seconds = took.as_secs_f64();
            st.samples = samples;
            st.series_added = series_added;
            st.skipped = skipped;
            st.format = format;
            st.scrapes += 1;
            match &error {
                Some(msg) => {
                    st.failures += 1;
                    st.limit_failures += u64::from(limit_hit);
                    st.last_error = Some(msg.clone());
                }
                None => {
                    st.last_error = None;
                    if was_failing {
                        tracing::info!(target_name = %self.name, url = %self.shown_url, "Scrape target recovered");
                        self.logged.lock().unwrap().retain(|e| e.starts_with("line "));
                    }
                }
            }
        }
        if let Some(msg) = &error {
            if self.first_time(msg) {
                tracing::warn!(target_name = %self.name, url = %self.shown_url, error = %msg, "Scrape failed; up = 0 until it recovers");
            } else {
                tracing::debug!(target_name = %self.name, error = %msg, "Scrape still failing");
            }
        }
        metrics.push(convert::simple_gauge("up", "1 if the target was scraped successfully, else 0.", "", if up { 1.0 } else { 0.0 }, now_ns));
        metrics.push(convert::simple_gauge("scrape_duration_seconds", "Time the scrape took.", "s", took.as_secs_f64(), now_ns));
        metrics.push(convert::simple_gauge("scrape_samples_scraped", "Samples the target exposed.", "", samples as f64, now_ns));
        metrics.push(convert::simple_gauge(
            "scrape_samples_post_metric_relabeling",
            "Samples kept from the scrape (metricsd has no metric relabeling: those scraped).",
            "",
            samples as f64,
            now_ns,
        ));
        metrics.push(convert::simple_gauge("scrape_samples_skipped", "Malformed lines or unusable JSON values skipped.", "", skipped as f64, now_ns));
        metrics.push(convert::simple_gauge("scrape_series_added", "Series not in the previous successful scrape.", "", series_added as f64, now_ns));
        metrics.push(convert::simple_gauge("scrape_sample_limit", "The target's sample_limit (0: none).", "", self.limits.sample_limit as f64, now_ns));
        convert::resource_metrics(&self.resource(body_resource), metrics)
    }

    /// Host attributes, then those the body carried, then the target's own (which win).
    fn resource(&self, body: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut r: BTreeMap<String, String> = self.host_resource.iter().cloned().collect();
        r.extend(body.into_iter().filter(|(k, v)| !v.is_empty() && !k.is_empty()));
        r.extend(self.own_resource.iter().cloned());
        r.into_iter().collect()
    }

    async fn fetch_and_parse(&self, now_ns: u64) -> Result<Outcome, Failure> {
        let mut headers = self.headers.clone();
        if let Some(h) = self.auth.header().map_err(|e| Failure::other(e, None))? {
            headers.push((AUTHORIZATION, h));
        }
        let answer = self.client.request(Method::GET, &self.uri, &headers, Bytes::new(), self.body_limit).await.map_err(|e| match e {
            RequestError::TooLarge(n) => Failure { limit: true, ..Failure::other(format!("response body larger than body_size_limit ({n} bytes)"), None) },
            other => Failure::other(other.to_string(), None),
        })?;
        if !answer.status.is_success() {
            return Err(Failure::other(format!("HTTP {}: {}", answer.status, body_snippet(&answer.body)), None));
        }
        let gzip = answer.headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let content_type = answer.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let limit = self.body_limit;
        let format = self.format;
        let converter = self.converter.clone();
        let prefix = self.prefix.clone();
        let labels = self.labels.clone();
        let limits = self.limits.clone();
        let body = answer.body;
        // Decompressing and parsing a large body takes milliseconds: off the async workers. The
        // parse stops itself when its time budget (the scrape's timeout) runs out.
        let work = tokio::task::spawn_blocking(move || {
            let body = if gzip {
                let plain = gunzip(&body, limit).map_err(|e| Failure { limit: e.contains("body_size_limit"), ..Failure::other(e, None) })?;
                drop(body);
                plain
            } else {
                body
            };
            let kind = detect(format, &content_type, &body);
            parse_and_convert(kind, &body, &converter, &ConvertOptions { now_ns, prefix: &prefix, labels: &labels }, &limits)
        });
        // A backstop only: the parse ends at its own deadline, long before this one.
        match tokio::time::timeout(self.timeout.max(super::MIN_PARSE_TIME) * 4, work).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(Failure::other(format!("parsing panicked: {join}"), None)),
            Err(_) => Err(Failure::other("parsing took too long".to_string(), None)),
        }
    }

    /// Logs each malformed line once per target (a few per scrape; the rest at debug).
    fn log_line_errors(&self, errors: &[String]) {
        let mut logged = 0;
        for e in errors {
            if logged < MAX_LINE_ERRORS_LOGGED && self.first_time(e) {
                tracing::warn!(target_name = %self.name, error = %e, "Malformed line in scrape; the rest is kept");
                logged += 1;
            } else {
                tracing::debug!(target_name = %self.name, error = %e, "Malformed line in scrape");
            }
        }
    }

    fn first_time(&self, msg: &str) -> bool {
        let mut l = self.logged.lock().unwrap();
        if l.contains(msg) || l.len() >= MAX_REMEMBERED_ERRORS {
            return false;
        }
        l.insert(msg.to_string());
        true
    }
}

/// Which parser to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    Prometheus,
    OpenMetrics,
    Json,
}

fn detect(format: ScrapeFormat, content_type: &str, body: &[u8]) -> Detected {
    match format {
        ScrapeFormat::Prometheus => Detected::Prometheus,
        ScrapeFormat::Openmetrics => Detected::OpenMetrics,
        ScrapeFormat::Json => Detected::Json,
        ScrapeFormat::Auto => {
            let mime = content_type.split(';').next().unwrap_or("").trim();
            if mime == "application/openmetrics-text" {
                Detected::OpenMetrics
            } else if mime == "application/json" || mime.ends_with("+json") || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                Detected::Json
            } else {
                Detected::Prometheus
            }
        }
    }
}

/// Gunzips at most `limit` bytes; more is an error, so a small bomb cannot exhaust memory.
fn gunzip(body: &[u8], limit: usize) -> Result<Bytes, String> {
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    d.read_to_end(&mut out).map_err(|e| format!("gzip body: {e}"))?;
    if out.len() > limit {
        return Err(format!("response body larger than body_size_limit ({limit} bytes) once decompressed"));
    }
    Ok(Bytes::from(out))
}

fn parse_and_convert(kind: Detected, body: &[u8], converter: &Mutex<Converter>, opts: &ConvertOptions, limits: &Limits) -> Result<Outcome, Failure> {
    match kind {
        Detected::Json => {
            let p = json::parse_limited(body, limits).map_err(|e| match e {
                json::JsonError::Invalid(msg) => Failure::other(msg, Some("json")),
                json::JsonError::Limit(e, samples) => Failure::limit(e, samples, Some("json")),
            })?;
            let metrics = converter.lock().unwrap().convert(&p.families, opts);
            Ok(Outcome { metrics, samples: p.samples, skipped: p.skipped, line_errors: p.errors, body_resource: p.resource, format: "json" })
        }
        Detected::Prometheus | Detected::OpenMetrics => {
            let (format, name) = if kind == Detected::OpenMetrics { (TextFormat::OpenMetrics, "openmetrics") } else { (TextFormat::Prometheus, "prometheus") };
            let text = String::from_utf8_lossy(body);
            let p = text::parse_limited(&text, format, limits).map_err(|(e, samples)| Failure::limit(e, samples, Some(name)))?;
            if p.samples == 0 && p.error_count > 0 {
                let first = p.errors.first().map(|e| e.to_string()).unwrap_or_default();
                return Err(Failure::other(format!("nothing parsed as {name} text ({} malformed lines; {first})", p.error_count), Some(name)));
            }
            let metrics = converter.lock().unwrap().convert(&p.families, opts);
            let line_errors = p.errors.iter().map(|e| e.to_string()).collect();
            Ok(Outcome { metrics, samples: p.samples, skipped: p.error_count, line_errors, body_resource: Vec::new(), format: name })
        }
    }
}

/// A target's task: scrape every interval (the first after a small random offset) and keep
/// each result for the scheduler. Ends when aborted.
pub async fn run(t: Arc<Target>) {
    let spread = t.interval.min(Duration::from_secs(10)).as_secs_f64() / 10.0;
    let offset = Duration::from_secs_f64(fastrand::f64() * spread);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, t.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let rm = t.scrape().await;
        t.keep(rm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_chosen_by_content_type_then_by_the_body() {
        let a = ScrapeFormat::Auto;
        assert_eq!(detect(a, "application/openmetrics-text; version=1.0.0; charset=utf-8", b"x 1"), Detected::OpenMetrics);
        assert_eq!(detect(a, "text/plain; version=0.0.4", b"x 1"), Detected::Prometheus);
        assert_eq!(detect(a, "application/json", b"x"), Detected::Json);
        assert_eq!(detect(a, "application/vnd.app+json", b"x"), Detected::Json);
        assert_eq!(detect(a, "", b"  {\"a\": 1}"), Detected::Json);
        assert_eq!(detect(a, "text/plain", b"{\"a\": 1}"), Detected::Json);
        assert_eq!(detect(ScrapeFormat::Prometheus, "application/json", b"{"), Detected::Prometheus);
    }

    #[test]
    fn gunzip_refuses_more_than_the_limit() {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&vec![b'a'; 100_000]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(gunzip(&gz, 100_000).unwrap().len(), 100_000);
        assert!(gunzip(&gz, 99_999).unwrap_err().contains("body_size_limit"));
    }

    #[test]
    fn the_resource_names_the_target_and_keeps_the_hosts_identity() {
        let cfg = EndpointConfig { name: "api".into(), url: "http://127.0.0.1:9100/metrics".into(), ..Default::default() };
        let host: crate::resource::Attributes =
            [("host.name", "web-1"), ("service.name", "metricsd"), ("service.version", "0.1.0"), ("telemetry.sdk.name", "opentelemetry")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let t = Target::new(&cfg, &host, Duration::from_secs(60)).unwrap();
        let r: BTreeMap<String, String> = t.resource(vec![("service.name".into(), "other".into()), ("k8s.pod.name".into(), "p".into())]).into_iter().collect();
        assert_eq!(r["service.name"], "api");
        assert_eq!(r["service.instance.id"], "127.0.0.1:9100");
        assert_eq!((r["server.address"].as_str(), r["server.port"].as_str(), r["url.scheme"].as_str()), ("127.0.0.1", "9100", "http"));
        assert_eq!(r["host.name"], "web-1");
        assert_eq!(r["k8s.pod.name"], "p");
        assert!(!r.contains_key("service.version") && !r.contains_key("telemetry.sdk.name"));
        let https = EndpointConfig { name: "x".into(), url: "https://example.com/m".into(), ..Default::default() };
        let t = Target::new(&https, &host, Duration::from_secs(60)).unwrap();
        assert_eq!(t.own_resource[1].1, "example.com:443");
    }

    #[test]
    fn a_scrape_over_a_limit_fails_whole_and_says_which() {
        let conv = Mutex::new(Converter::default());
        let opts = ConvertOptions { now_ns: 1, prefix: "", labels: &[] };
        let limits = Limits { sample_limit: 2, ..Limits::none() };
        let f = parse_and_convert(Detected::Prometheus, b"a 1\nb 2\nc 3\n", &conv, &opts, &limits).err().unwrap();
        assert_eq!((f.message.as_str(), f.samples, f.limit), ("sample_limit exceeded: more than 2 samples", 2, true));
        let f = parse_and_convert(Detected::Json, br#"{"a": 1, "b": 2, "c": 3}"#, &conv, &opts, &limits).err().unwrap();
        assert!(f.limit && f.message.starts_with("sample_limit"), "{f:?}");
        assert_eq!(conv.lock().unwrap().tracked_series(), 0, "nothing of a failed scrape was converted");
    }

    #[test]
    fn the_endpoint_limits_reach_the_parser_with_the_timeout_as_time_budget() {
        let cfg = EndpointConfig { name: "a".into(), url: "http://h/".into(), labels: [("team".to_string(), "x".to_string())].into(), ..Default::default() };
        let l = cfg.limits(Duration::from_secs(30));
        assert_eq!((l.sample_limit, l.label_limit, l.extra_labels, l.extra_label_bytes), (super::super::DEFAULT_SAMPLE_LIMIT, 64, 1, 5));
        assert_eq!(l.time_budget, Some(Duration::from_secs(10)));
        assert_eq!(cfg.limits(Duration::from_millis(200)).time_budget, Some(super::super::MIN_PARSE_TIME));
    }

    #[test]
    fn results_waiting_for_a_batch_are_bounded_by_count_and_size() {
        let cfg = EndpointConfig { name: "a".into(), url: "http://127.0.0.1:1/".into(), ..Default::default() };
        let t = Target::new(&cfg, &Default::default(), Duration::from_secs(60)).unwrap();
        let small = || convert::resource_metrics(&[], vec![convert::simple_gauge("up", "", "", 1.0, 1)]);
        for _ in 0..20 {
            t.keep(small());
        }
        assert_eq!(t.take().len(), MAX_PENDING_RESULTS);
        assert_eq!(t.status().dropped_results, 12);
        // Results near the size cap: only the newest fits, and it is always kept.
        let mut cfg = cfg;
        cfg.parsed_size_limit = super::super::ByteSize(1000);
        let t = Target::new(&cfg, &Default::default(), Duration::from_secs(60)).unwrap();
        let big = || {
            let text = (0..10).map(|i| format!("g{{i=\"{i}\"}} 1\n")).collect::<String>();
            let p = text::parse(&text, TextFormat::Prometheus);
            convert::resource_metrics(&[], Converter::default().convert(&p.families, &ConvertOptions { now_ns: 1, prefix: "", labels: &[] }))
        };
        t.keep(big());
        t.keep(big());
        assert_eq!(t.take().len(), 1);
        assert!(t.take().is_empty());
    }

    #[test]
    fn garbage_fails_the_scrape_but_a_few_bad_lines_do_not() {
        let conv = Mutex::new(Converter::default());
        let opts = ConvertOptions { now_ns: 1, prefix: "", labels: &[] };
        let none = Limits::none();
        let e = parse_and_convert(Detected::Prometheus, b"\x00\x01\xff\xfe garbage {{{\n\x7f\n", &conv, &opts, &none).err().unwrap();
        assert!(e.message.contains("nothing parsed") && e.message.contains("line 1") && !e.limit, "{e:?}");
        let o = parse_and_convert(Detected::Prometheus, b"a 1\nb{ 2\nc 3\n", &conv, &opts, &none).ok().unwrap();
        assert_eq!((o.samples, o.skipped), (2, 1));
        assert!(o.line_errors[0].starts_with("line 2:"), "{:?}", o.line_errors);
        let o = parse_and_convert(Detected::Prometheus, b"", &conv, &opts, &none).ok().unwrap();
        assert_eq!(o.samples, 0, "an empty exposition is a successful scrape");
    }
}
