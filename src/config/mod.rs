//! The agent's configuration: metricsd's `config.json` schema, extended.
//!
//! metricsd's four sections load unchanged:
//!
//! ```json
//! { "server": {"host": "0.0.0.0", "port": 8080},
//!   "collector": {"interval_seconds": 60, "enable_cpu": true, "enable_gpu": false},
//!   "shipper": {"type": "prometheus_remote_write", "endpoint": "http://prom:9090/api/v1/write"},
//!   "endpoints": [{"name": "app1", "url": "http://localhost:3000/metrics"}] }
//! ```
//!
//! Extensions: `exporters` (a list, each shipped to at once), `resource` (attributes that win
//! over every detector), `root_path` (where the host's `/` is mounted) and a section per
//! collector inside `collector`. The same schema may be written in YAML (`.yaml`/`.yml`) or TOML
//! (`.toml`); the file extension decides. Unknown keys are errors naming the key and its line.
//! Environment overrides are in [`env`](mod@env).

pub mod env;

pub use crate::units::duration;
pub use crate::units::ConfigDuration;

pub use crate::collectors::config::{CollectorConfig, DEFAULT_COLLECTOR_TIMEOUT, DEFAULT_INTERVAL};
use crate::exporters::{self, ExporterConfig};
use crate::scrape::EndpointConfig;
pub use crate::server::config::{ServerConfig, DEFAULT_SERVER_HOST, DEFAULT_SERVER_PORT};
use crate::tls::TlsConfig;
pub use crate::units::url::check_url_port;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default request timeout of metricsd's `shipper` (30 s, as metricsd).
pub const DEFAULT_SHIPPER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time allowed to flush exporters at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP server: `/health`, `/ready`, `/status`, `/metrics`.
    pub server: ServerConfig,
    /// When and what to collect.
    pub collector: CollectorConfig,
    /// metricsd's single exporter (`type`: `prometheus_remote_write`, `http_json`, and here also
    /// `otlp`, `stdout`). Shipped to alongside every entry of `exporters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipper: Option<ShipperConfig>,
    /// Application endpoints to scrape (metricsd's `endpoints`).
    pub endpoints: Vec<EndpointConfig>,
    /// Exporters, each fed every batch through its own queue.
    pub exporters: Vec<ExporterConfig>,
    /// Resource attributes that win over every detector and `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: BTreeMap<String, String>,
    /// Where the host's root filesystem is mounted (`/proc` and `/sys` are read below it), as
    /// the Collector's hostmetrics `root_path`. `HOST_PROC`, `HOST_SYS`, `HOST_ROOT` win.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_path: Option<PathBuf>,
    /// Time allowed at SIGTERM to send what is queued (default `"10s"`).
    pub shutdown_timeout: Option<ConfigDuration>,
    /// A disk spool for every exporter that has none of its own (`queue.spool`): `{"dir":
    /// "/var/lib/metricsd/buffer", "max_bytes": 268435456}`. Each exporter spools in its own
    /// subdirectory named after its type and endpoint, with `max_bytes` each. Off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer: Option<crate::pipeline::spool::SpoolConfig>,
    /// CPU scheduling policy of the agent's threads, read at start: `"batch"` (default,
    /// `SCHED_BATCH`: the same CPU share, no wake-up preemption) or `"inherit"` (keep the
    /// policy it was started with). See [`crate::sched`].
    pub scheduling_policy: crate::sched::SchedulingPolicy,
    /// The agent's own logs and traces over OTLP, as the Collector's `service.telemetry`
    /// (off unless `telemetry.endpoint` is set).
    #[serde(skip_serializing_if = "crate::telemetry::TelemetryConfig::is_default")]
    pub telemetry: crate::telemetry::TelemetryConfig,
}

/// metricsd's `shipper` section: one exporter, in metricsd's flat shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShipperConfig {
    /// `prometheus_remote_write`, `http_json`, `otlp` or `stdout`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where to send.
    pub endpoint: String,
    /// Request timeout: integer nanoseconds as metricsd wrote it, or `"30s"` (default 30 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ConfigDuration>,
    /// TLS client settings.
    pub tls: TlsConfig,
}

/// What went wrong with the configuration, naming the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid JSON/YAML/TOML for this schema.
    #[error("{}", fmt_parse(path, *line, msg))]
    Parse { path: PathBuf, line: Option<usize>, msg: String },
    /// An environment override has a value that cannot be used.
    #[error("environment variable {var}={value:?}: {msg}")]
    Env { var: String, value: String, msg: String },
    /// A value that parsed but cannot work.
    #[error("{key}: {msg}")]
    Invalid { key: String, msg: String },
}

fn fmt_parse(path: &Path, line: Option<usize>, msg: &str) -> String {
    match line {
        Some(l) => format!("{}:{l}: {msg}", path.display()),
        None => format!("{}: {msg}", path.display()),
    }
}

/// The file formats a config may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// By extension: `.yaml`/`.yml` YAML, `.toml` TOML, anything else JSON (metricsd's).
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("yaml") | Some("yml") => Format::Yaml,
            Some("toml") => Format::Toml,
            _ => Format::Json,
        }
    }
}

impl Config {
    /// Reads and parses a config file (no environment applied).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::parse(&text, Format::of(path), path)
    }

    /// Parses config text of the given format; `path` only names it in errors.
    pub fn parse(text: &str, format: Format, path: &Path) -> Result<Config, ConfigError> {
        let parsed: Result<Config, (Option<usize>, String)> = match format {
            Format::Json => serde_json::from_str(text).map_err(|e| {
                let line = (e.line() > 0).then_some(e.line());
                // serde_json appends " at line L column C"; we print the line in front instead.
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                (line, msg)
            }),
            Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| {
                let line = e.location().map(|l| l.line());
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                (line, msg)
            }),
            Format::Toml => toml::from_str(text).map_err(|e| {
                let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                (line, e.message().to_string())
            }),
        };
        parsed.map_err(|(line, msg)| {
            // Errors from inside tagged enums (exporters) lose their position; find the key.
            let line = if msg.contains("unknown field") { locate_key(text, &msg, line.unwrap_or(1)).or(line) } else { line };
            ConfigError::Parse { path: path.into(), line, msg }
        })
    }

    /// Checks what parsing cannot: returns every problem, not just the first.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        use duration::{check_range, MAX_INTERVAL, MAX_TIMEOUT, MIN_INTERVAL, MIN_TIMEOUT};
        let c = &self.collector;
        if !(1..=65_536).contains(&self.server.max_connections) {
            errors.push(ConfigError::Invalid { key: "server.max_connections".into(), msg: "must be from 1 to 65536".into() });
        }
        for (key, msg) in self.telemetry.validate() {
            errors.push(ConfigError::Invalid { key, msg });
        }
        for (name, settings) in c.metric_settings() {
            for (key, msg) in settings.check(name) {
                errors.push(ConfigError::Invalid { key, msg });
            }
        }
        let mut range = |key: &str, d: Option<Duration>, min: Duration, max: Duration| {
            if let Some(Err(msg)) = d.map(|d| check_range(key, d, min, max)) {
                errors.push(ConfigError::Invalid { key: key.into(), msg });
            }
        };
        range("collector.interval", c.interval.map(|d| d.get()), MIN_INTERVAL, MAX_INTERVAL);
        if c.interval.is_none() {
            // Whole seconds, as metricsd: 1 to 86400.
            let secs = c.interval_seconds.map(|s| Duration::from_secs(s.min(u64::MAX / 2)));
            range("collector.interval_seconds", secs, Duration::from_secs(1), MAX_INTERVAL);
        }
        range("collector.timeout", c.timeout.map(|d| d.get()), MIN_TIMEOUT, MAX_TIMEOUT);
        range("shutdown_timeout", self.shutdown_timeout.map(|d| d.get()), MIN_TIMEOUT, MAX_TIMEOUT);
        range("collector.network.connections_interval", Some(c.network.connections_interval.get()), Duration::ZERO, MAX_INTERVAL);
        range("collector.processes.scan_interval", c.processes.scan_interval.map(|d| d.get()), Duration::ZERO, MAX_INTERVAL);
        range("collector.filesystem.statvfs_timeout", Some(c.filesystem.statvfs_timeout.get()), MIN_TIMEOUT, MAX_TIMEOUT);
        range("collector.gpu.energy_interval", Some(c.gpu.energy_interval.get()), Duration::ZERO, MAX_INTERVAL);
        range("collector.gpu.retry_interval", Some(c.gpu.retry_interval.get()), MIN_INTERVAL, MAX_INTERVAL);
        for (i, e) in self.endpoints.iter().enumerate() {
            range(&format!("endpoints[{i}].interval"), e.interval.map(|d| d.get()), MIN_INTERVAL, MAX_INTERVAL);
            range(&format!("endpoints[{i}].timeout"), e.timeout.map(|d| d.get()), MIN_TIMEOUT, MAX_TIMEOUT);
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if let Err(msg) = check_url_port("url", &e.url) {
                errors.push(ConfigError::Invalid { key: format!("endpoints[{i}] ({})", e.name), msg });
            }
        }
        if let Some(s) = &self.shipper {
            if let Err(e) = self.shipper_exporter(s) {
                errors.push(e);
            }
        }
        for (i, e) in self.exporters.iter().enumerate() {
            for msg in e.validate() {
                errors.push(ConfigError::Invalid { key: format!("exporters[{i}]"), msg });
            }
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            for msg in e.validate() {
                errors.push(ConfigError::Invalid { key: format!("endpoints[{i}] ({})", e.name), msg });
            }
        }
        for msg in c.textfile.validate() {
            errors.push(ConfigError::Invalid { key: "collector.textfile".into(), msg });
        }
        for (k, v) in &self.resource {
            if k.is_empty() || v.is_empty() {
                errors.push(ConfigError::Invalid { key: format!("resource.{k}"), msg: "empty attribute key or value".into() });
            }
        }
        errors
    }

    /// metricsd's `shipper` turned into one of our exporters.
    pub fn shipper_exporter(&self, s: &ShipperConfig) -> Result<ExporterConfig, ConfigError> {
        exporter_from_shipper(s).map_err(|msg| ConfigError::Invalid { key: "shipper".into(), msg })
    }

    /// Every exporter to run: `shipper` (if any) first, then `exporters`.
    pub fn all_exporters(&self) -> Result<Vec<ExporterConfig>, ConfigError> {
        let mut v = Vec::new();
        if let Some(s) = &self.shipper {
            v.push(self.shipper_exporter(s)?);
        }
        v.extend(self.exporters.iter().cloned());
        if let Some(buffer) = &self.buffer {
            for e in &mut v {
                let name = format!("{}-{}", e.kind(), e.endpoint());
                let queue = e.queue_mut();
                if queue.spool.is_none() {
                    queue.spool = Some(buffer.for_exporter(&name));
                }
            }
        }
        Ok(v)
    }

    /// The effective config as JSON with secrets replaced by `"<redacted>"`.
    pub fn redacted_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        redact(&mut v);
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

/// metricsd's flat `shipper` section as one of our exporters.
fn exporter_from_shipper(s: &ShipperConfig) -> Result<ExporterConfig, String> {
    let timeout = s.timeout.unwrap_or(ConfigDuration(DEFAULT_SHIPPER_TIMEOUT));
    match s.kind.as_str() {
        "stdout" => Ok(ExporterConfig::Stdout(exporters::stdout::StdoutConfig::default())),
        "prometheus_remote_write" => Ok(ExporterConfig::PrometheusRemoteWrite(exporters::remote_write::RemoteWriteConfig {
            endpoint: s.endpoint.clone(),
            timeout,
            tls: s.tls.clone(),
            ..Default::default()
        })),
        "http_json" => Ok(ExporterConfig::HttpJson(exporters::http_json::HttpJsonConfig {
            endpoint: s.endpoint.clone(),
            timeout,
            tls: s.tls.clone(),
            ..Default::default()
        })),
        "otlp" => Ok(ExporterConfig::Otlp(exporters::otlp::OtlpConfig {
            endpoint: Some(s.endpoint.clone()).filter(|e| !e.is_empty()),
            timeout: s.timeout,
            tls: s.tls.clone(),
            ..Default::default()
        })),
        "" => Err(format!("`type` is missing ({})", exporters::EXPORTER_TYPES)),
        other => Err(format!("unknown shipper type {other:?} (expected {})", exporters::EXPORTER_TYPES)),
    }
    .and_then(|e| {
        let problems = e.validate();
        if problems.is_empty() {
            Ok(e)
        } else {
            Err(problems.join("; "))
        }
    })
}

impl From<crate::units::env::EnvError> for ConfigError {
    fn from(e: crate::units::env::EnvError) -> Self {
        ConfigError::Env { var: e.var, value: e.value, msg: e.msg }
    }
}

/// Keys whose values are secrets; never printed.
const SECRET_KEYS: &[&str] = &["password", "bearer_token", "authorization", "api_key", "token", "x-api-key"];

fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                let lk = k.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| lk == *s) && !val.is_null() {
                    *val = serde_json::Value::String("<redacted>".into());
                } else if lk == "headers" {
                    if let serde_json::Value::Object(h) = val {
                        for (hk, hv) in h.iter_mut() {
                            let hk = hk.to_ascii_lowercase();
                            if hk.contains("auth") || hk.contains("token") || hk.contains("key") || hk.contains("secret") {
                                *hv = serde_json::Value::String("<redacted>".into());
                            }
                        }
                    }
                } else {
                    redact(val);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Finds the line of a key named in a serde message such as "unknown field `foo`, expected ...".
/// The search starts at line `from` (where the parser says the enclosing value begins).
fn locate_key(text: &str, msg: &str, from: usize) -> Option<usize> {
    let key = msg.split('`').nth(1)?;
    let needles = [format!("\"{key}\""), format!("{key}:"), format!("{key} ="), format!("{key}=")];
    let skip = from.saturating_sub(1);
    text.lines()
        .skip(skip)
        .position(|l| {
            let t = l.trim_start();
            needles.iter().any(|n| t.starts_with(n.as_str()) || t.starts_with(&format!("- {n}")) || l.contains(&needles[0]))
        })
        .map(|i| i + 1 + skip)
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, f: Format) -> Result<Config, ConfigError> {
        Config::parse(text, f, Path::new("test.cfg"))
    }

    #[test]
    fn loads_metricsd_example_config_unchanged() {
        let text = r#"{
          "server": {"host": "0.0.0.0", "port": 8080},
          "collector": {"interval_seconds": 60, "enable_cpu": true, "enable_memory": true,
                        "enable_disk": true, "enable_network": true, "enable_gpu": false},
          "shipper": {"type": "http_json", "endpoint": "https://collector.example.com:9090/api/v1/metrics",
                      "timeout": 30000000000,
                      "tls": {"enabled": true, "cert_file": "/path/to/client-cert.pem", "key_file": "/path/to/client-key.pem",
                              "ca_file": "/path/to/ca.pem", "insecure_skip_verify": false, "server_name": "collector.example.com",
                              "min_version": "TLS1.2", "max_version": "TLS1.3",
                              "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
                              "session_tickets": true}},
          "endpoints": [{"name": "app1", "url": "http://localhost:3000/metrics"}]
        }"#;
        let c = parse(text, Format::Json).unwrap();
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.collector.interval(), Duration::from_secs(60));
        let s = c.shipper.as_ref().unwrap();
        assert_eq!(s.kind, "http_json");
        assert_eq!(s.timeout.unwrap().get(), Duration::from_secs(30));
        assert_eq!(s.tls.cipher_suites.len(), 2);
        assert_eq!(c.endpoints[0].name, "app1");
    }

    #[test]
    fn a_global_buffer_gives_each_exporter_without_a_spool_its_own_directory() {
        let text = "buffer: {dir: /var/lib/metricsd/buffer, max_bytes: 1048576}\n\
                    shipper: {type: http_json, endpoint: 'http://ingest:9000/m'}\n\
                    exporters:\n\
                    - {type: otlp, endpoint: 'http://collector:4317'}\n\
                    - {type: prometheus_remote_write, endpoint: 'http://prom:9090/api/v1/write', queue: {spool: {dir: /data/own}}}\n";
        let c = parse(text, Format::Yaml).unwrap();
        let spools: Vec<_> = c.all_exporters().unwrap().iter_mut().map(|e| e.queue_mut().spool.clone().unwrap()).collect();
        assert_eq!(spools[0].dir, Path::new("/var/lib/metricsd/buffer/http_json-http___ingest_9000_m"));
        assert_eq!(spools[0].max_bytes, 1048576);
        assert_eq!(spools[1].dir, Path::new("/var/lib/metricsd/buffer/otlp-http___collector_4317"));
        assert_ne!(spools[0].dir, spools[1].dir);
        assert_eq!(spools[2].dir, Path::new("/data/own"), "an exporter's own spool wins");
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key_and_its_line() {
        let text = "{\n  \"server\": {\n    \"hots\": \"x\"\n  }\n}";
        let e = parse(text, Format::Json).unwrap_err().to_string();
        assert!(e.starts_with("test.cfg:3:"), "{e}");
        assert!(e.contains("unknown field `hots`"), "{e}");
    }

    #[test]
    fn yaml_and_toml_carry_the_same_schema() {
        let y = parse("server:\n  port: 9100\ncollector:\n  interval: 15s\n", Format::Yaml).unwrap();
        assert_eq!(y.server.port, 9100);
        assert_eq!(y.collector.interval(), Duration::from_secs(15));
        let t = parse("[server]\nport = 9101\n[collector]\ninterval_seconds = 5\n", Format::Toml).unwrap();
        assert_eq!(t.server.port, 9101);
        assert_eq!(t.collector.interval(), Duration::from_secs(5));
    }

    #[test]
    fn unknown_keys_in_yaml_and_toml_name_their_line() {
        let e = parse("server:\n  port: 1\n  bogus: 2\n", Format::Yaml).unwrap_err().to_string();
        assert!(e.contains("test.cfg:3:") && e.contains("bogus"), "{e}");
        let e = parse("[server]\nport = 1\nbogus = 2\n", Format::Toml).unwrap_err().to_string();
        assert!(e.contains("test.cfg:3:") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let e = parse("{\"server\": {\n\"port\": \"eighty\"}}", Format::Json).unwrap_err().to_string();
        assert!(e.starts_with("test.cfg:2:") && e.contains("invalid type"), "{e}");
    }

    #[test]
    fn interval_prefers_the_duration_key_and_the_timeout_never_exceeds_it() {
        let c = parse(r#"{"collector": {"interval_seconds": 60, "interval": "2s", "timeout": "10s"}}"#, Format::Json).unwrap();
        assert_eq!(c.collector.interval(), Duration::from_secs(2));
        assert_eq!(c.collector.timeout(), Duration::from_secs(2));
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = parse(r#"{"collector": {"interval_seconds": 0}, "resource": {"": "x"}}"#, Format::Json).unwrap();
        let errs = c.validate();
        assert!(errs.len() >= 2, "{errs:?}");
    }

    fn problems(text: &str, f: Format) -> String {
        let c = parse(text, f).unwrap_or_else(|e| panic!("{text}: {e}"));
        c.validate().iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn durations_that_would_overflow_a_deadline_are_config_errors_naming_the_key() {
        // Each of these once aborted the agent at its first tick, at SIGTERM or at a retry.
        for (text, f, key) in [
            ("collector: {interval: 500000000000y}", Format::Yaml, "collector.interval"),
            (r#"{"collector": {"interval_seconds": 18446744073709551615}}"#, Format::Json, "collector.interval_seconds"),
            ("shutdown_timeout: 500000000000y", Format::Yaml, "shutdown_timeout"),
            ("exporters: [{type: otlp, endpoint: 'http://h:4317', retry: {initial_interval: 300000000000y}}]", Format::Yaml, "initial_interval"),
            ("exporters: [{type: otlp, endpoint: 'http://h:4317', retry: {max_interval: 1s, initial_interval: 2s}}]", Format::Yaml, "max_interval"),
            ("exporters: [{type: http_json, endpoint: 'http://h/', timeout: 0s}]", Format::Yaml, "timeout"),
            ("exporters: [{type: prometheus_remote_write, endpoint: 'http://h/', timeout: 2h}]", Format::Yaml, "timeout"),
            ("endpoints: [{name: a, url: 'http://h/', interval: 2d}]", Format::Yaml, "endpoints[0].interval"),
            ("collector: {filesystem: {statvfs_timeout: 0s}}", Format::Yaml, "collector.filesystem.statvfs_timeout"),
        ] {
            let p = problems(text, f);
            assert!(p.contains(key) && (p.contains("too long") || p.contains("too short") || p.contains("shorter than")), "{text}: {p:?}");
        }
        assert_eq!(problems("collector: {interval: 1d}\nshutdown_timeout: 1h\n", Format::Yaml), "");
        assert_eq!(problems(r#"{"collector": {"interval_seconds": 86400}}"#, Format::Json), "");
    }

    #[test]
    fn a_bare_integer_duration_in_yaml_or_toml_is_refused_with_a_hint() {
        let e = parse("exporters: [{type: otlp, endpoint: 'http://h:4317', timeout: 30}]", Format::Yaml).unwrap_err().to_string();
        assert!(e.contains("\"30s\""), "{e}");
        let e = parse("[collector]\ntimeout = 5\n", Format::Toml).unwrap_err().to_string();
        assert!(e.contains("\"5s\"") && e.contains("test.cfg:2:"), "{e}");
        // metricsd's JSON nanoseconds keep working.
        let c = parse(r#"{"shipper": {"type": "http_json", "endpoint": "http://h/", "timeout": 30000000000}}"#, Format::Json).unwrap();
        assert_eq!(c.shipper.unwrap().timeout.unwrap().get(), Duration::from_secs(30));
    }

    #[test]
    fn a_port_above_65535_in_any_url_is_a_config_error() {
        for (text, key) in [
            ("exporters: [{type: prometheus_remote_write, endpoint: 'http://user:pw@h:70000/api/v1/write'}]", "exporters[0]"),
            ("exporters: [{type: otlp, endpoint: 'h:99999'}]", "exporters[0]"),
            ("exporters: [{type: http_json, endpoint: 'https://[::1]:65536/'}]", "exporters[0]"),
            ("endpoints: [{name: app, url: 'http://localhost:65536/metrics'}]", "endpoints[0] (app)"),
            ("shipper: {type: http_json, endpoint: 'http://h:0/'}", "shipper"),
        ] {
            let p = match parse(text, Format::Yaml) {
                Ok(c) => c.validate().iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
                Err(e) => e.to_string(),
            };
            assert!(p.contains(key) && p.contains("not a number from 1 to 65535"), "{text}: {p}");
            assert!(!p.contains("pw@"), "credentials are not repeated: {p}");
        }
    }

    #[test]
    fn redaction_hides_secrets_and_auth_headers() {
        let v = serde_json::json!({"a": {"password": "hunter2", "headers": {"Authorization": "Bearer x", "X-Tenant": "t"}}, "b": [{"bearer_token": "y"}]});
        let mut v2 = v.clone();
        redact(&mut v2);
        let s = v2.to_string();
        assert!(!s.contains("hunter2") && !s.contains("Bearer x") && !s.contains("\"y\""), "{s}");
        assert!(s.contains("\"t\""));
    }
}
