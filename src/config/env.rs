//! Environment overrides, applied after the file is read.
//!
//! | variable | sets | note |
//! | --- | --- | --- |
//! | `MC_SERVER_HOST`, `MC_SERVER_PORT` | `server.host`, `server.port` | metricsd's; win over the file |
//! | `MC_COLLECTOR_INTERVAL` | `collector.interval_seconds` | seconds (or `"30s"`); wins over the file |
//! | `MC_SHIPPER_TYPE`, `MC_SHIPPER_ENDPOINT` | `shipper.type`, `shipper.endpoint` | creates `shipper` if absent |
//! | `MC_TLS_ENABLED`, `MC_TLS_CERT_FILE`, `MC_TLS_KEY_FILE`, `MC_TLS_CA_FILE`, `MC_TLS_SERVER_NAME`, `MC_TLS_MIN_VERSION`, `MC_TLS_INSECURE_SKIP_VERIFY` | `shipper.tls.*` | |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | the interval, in milliseconds | only when the file sets none (`OTEL_*` are defaults, config wins) |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | resource | see `resource` |
//! | `OTEL_EXPORTER_OTLP_*` | the `otlp` exporter | see the OTLP exporter |
//! | `HOST_PROC`, `HOST_SYS`, `HOST_ROOT` | where /proc, /sys and / are read | win over `root_path` |

use super::{Config, ConfigDuration, ConfigError, ShipperConfig};
use crate::units::HostPaths;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::units::env::{process_env, Env};

fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Env { var: var.into(), value: v.into(), msg: "expected true or false".into() }),
    }
}

impl Config {
    /// Applies every override present in `env`; returns every bad value (the rest still apply).
    pub fn apply_env(&mut self, env: Env) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(v) = get("MC_SERVER_HOST") {
            self.server.host = v;
        }
        if let Some(v) = get("MC_SERVER_PORT") {
            match v.trim().parse::<u16>() {
                Ok(p) => self.server.port = p,
                Err(_) => errors.push(ConfigError::Env { var: "MC_SERVER_PORT".into(), value: v, msg: "expected a port number 0-65535".into() }),
            }
        }
        if let Some(v) = get("MC_COLLECTOR_INTERVAL") {
            match v.trim().parse::<u64>() {
                Ok(s) if s > 0 => {
                    self.collector.interval_seconds = Some(s);
                    self.collector.interval = None;
                }
                _ => match super::duration::parse_duration(&v) {
                    Ok(d) if !d.is_zero() && v.trim().parse::<u64>().is_err() => self.collector.interval = Some(ConfigDuration(d)),
                    _ => errors.push(ConfigError::Env {
                        var: "MC_COLLECTOR_INTERVAL".into(),
                        value: v,
                        msg: "expected a positive number of seconds, or a duration such as \"30s\"".into(),
                    }),
                },
            }
        } else if let Some(v) = get("OTEL_METRIC_EXPORT_INTERVAL") {
            if self.collector.interval.is_none() && self.collector.interval_seconds.is_none() {
                match v.trim().parse::<u64>() {
                    Ok(ms) if ms > 0 => self.collector.interval = Some(ConfigDuration(Duration::from_millis(ms))),
                    _ => errors.push(ConfigError::Env {
                        var: "OTEL_METRIC_EXPORT_INTERVAL".into(),
                        value: v,
                        msg: "expected a positive number of milliseconds".into(),
                    }),
                }
            }
        }
        let shipper_vars = [
            "MC_SHIPPER_TYPE",
            "MC_SHIPPER_ENDPOINT",
            "MC_TLS_ENABLED",
            "MC_TLS_CERT_FILE",
            "MC_TLS_KEY_FILE",
            "MC_TLS_CA_FILE",
            "MC_TLS_SERVER_NAME",
            "MC_TLS_MIN_VERSION",
            "MC_TLS_INSECURE_SKIP_VERIFY",
        ];
        if shipper_vars.iter().any(|v| get(v).is_some()) {
            let s = self.shipper.get_or_insert_with(ShipperConfig::default);
            if let Some(v) = get("MC_SHIPPER_TYPE") {
                s.kind = v;
            }
            if let Some(v) = get("MC_SHIPPER_ENDPOINT") {
                s.endpoint = v;
            }
            if let Some(v) = get("MC_TLS_ENABLED") {
                match parse_bool("MC_TLS_ENABLED", &v) {
                    Ok(b) => s.tls.enabled = b,
                    Err(e) => errors.push(e),
                }
            }
            if let Some(v) = get("MC_TLS_CERT_FILE") {
                s.tls.cert_file = Some(PathBuf::from(v));
            }
            if let Some(v) = get("MC_TLS_KEY_FILE") {
                s.tls.key_file = Some(PathBuf::from(v));
            }
            if let Some(v) = get("MC_TLS_CA_FILE") {
                s.tls.ca_file = Some(PathBuf::from(v));
            }
            if let Some(v) = get("MC_TLS_SERVER_NAME") {
                s.tls.server_name = Some(v);
            }
            if let Some(v) = get("MC_TLS_MIN_VERSION") {
                s.tls.min_version = Some(v);
            }
            if let Some(v) = get("MC_TLS_INSECURE_SKIP_VERIFY") {
                match parse_bool("MC_TLS_INSECURE_SKIP_VERIFY", &v) {
                    Ok(b) => s.tls.insecure_skip_verify = b,
                    Err(e) => errors.push(e),
                }
            }
        }
        // As an OpenTelemetry SDK does: an OTLP endpoint in the environment and nothing
        // configured means ship OTLP there.
        if self.exporters.is_empty()
            && self.shipper.is_none()
            && (get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some())
        {
            self.exporters.push(crate::exporters::ExporterConfig::Otlp(Default::default()));
        }
        for e in self.exporters.iter_mut() {
            errors.extend(e.apply_env(env).into_iter().map(ConfigError::from));
        }
        errors
    }

    /// Where to read /proc, /sys and /: `HOST_PROC`/`HOST_SYS`/`HOST_ROOT` win over `root_path`.
    pub fn host_paths(&self, env: Env) -> HostPaths {
        let mut p = match &self.root_path {
            Some(r) => HostPaths::under(r),
            None => HostPaths::default(),
        };
        if let Some(v) = env("HOST_ROOT").filter(|v| !v.is_empty()) {
            p.root = v.into();
        }
        if let Some(v) = env("HOST_PROC").filter(|v| !v.is_empty()) {
            p.proc = v.into();
        }
        if let Some(v) = env("HOST_SYS").filter(|v| !v.is_empty()) {
            p.sys = v.into();
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::env::env_of;

    #[test]
    fn metricsd_variables_override_the_file() {
        let mut c: Config = serde_json::from_str(r#"{"server": {"port": 1}, "collector": {"interval": "5s"}}"#).unwrap();
        let env = env_of(&[
            ("MC_SERVER_PORT", "9999"),
            ("MC_SERVER_HOST", "0.0.0.0"),
            ("MC_COLLECTOR_INTERVAL", "30"),
            ("MC_SHIPPER_TYPE", "prometheus_remote_write"),
            ("MC_SHIPPER_ENDPOINT", "http://p/api/v1/write"),
            ("MC_TLS_ENABLED", "true"),
            ("MC_TLS_CA_FILE", "/ca.pem"),
            ("MC_TLS_INSECURE_SKIP_VERIFY", "false"),
        ]);
        assert!(c.apply_env(&env).is_empty());
        assert_eq!(c.server.port, 9999);
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.collector.interval(), Duration::from_secs(30));
        let s = c.shipper.unwrap();
        assert_eq!((s.kind.as_str(), s.endpoint.as_str()), ("prometheus_remote_write", "http://p/api/v1/write"));
        assert!(s.tls.enabled);
        assert_eq!(s.tls.ca_file, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn otel_interval_is_a_default_that_the_file_overrides() {
        let mut c = Config::default();
        c.apply_env(&env_of(&[("OTEL_METRIC_EXPORT_INTERVAL", "15000")]));
        assert_eq!(c.collector.interval(), Duration::from_secs(15));
        let mut c: Config = serde_json::from_str(r#"{"collector": {"interval_seconds": 7}}"#).unwrap();
        c.apply_env(&env_of(&[("OTEL_METRIC_EXPORT_INTERVAL", "15000")]));
        assert_eq!(c.collector.interval(), Duration::from_secs(7));
    }

    #[test]
    fn invalid_override_values_name_the_variable_and_the_rest_still_apply() {
        let mut c = Config::default();
        let errs =
            c.apply_env(&env_of(&[("MC_SERVER_PORT", "http"), ("MC_TLS_ENABLED", "maybe"), ("MC_COLLECTOR_INTERVAL", "-3"), ("MC_SERVER_HOST", "0.0.0.0")]));
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("environment variable MC_SERVER_PORT=\"http\""), "{text:?}");
        assert!(text.iter().any(|t| t.contains("MC_TLS_ENABLED")));
        assert!(text.iter().any(|t| t.contains("MC_COLLECTOR_INTERVAL")));
        assert_eq!(c.server.host, "0.0.0.0");
    }

    #[test]
    fn an_otlp_endpoint_in_the_environment_ships_otlp_only_when_nothing_is_configured() {
        use crate::exporters::ExporterConfig;
        let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
        let mut c = Config::default();
        assert!(c.apply_env(&env).is_empty());
        assert_eq!(c.exporters.len(), 1);
        assert_eq!((c.exporters[0].kind(), c.exporters[0].endpoint().as_str()), ("otlp", "http://collector:4317"));
        let mut c = Config::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317")]));
        assert_eq!(c.exporters[0].endpoint(), "http://m:4317");
        let mut c: Config = serde_json::from_str(r#"{"exporters": [{"type": "stdout"}]}"#).unwrap();
        c.apply_env(&env);
        assert!(matches!(c.exporters.as_slice(), [ExporterConfig::Stdout(_)]));
        let mut c: Config = serde_json::from_str(r#"{"shipper": {"type": "prometheus_remote_write", "endpoint": "http://p/api/v1/write"}}"#).unwrap();
        c.apply_env(&env);
        assert!(c.exporters.is_empty());
        let mut c = Config::default();
        c.apply_env(&env_of(&[]));
        assert!(c.exporters.is_empty());
    }

    #[test]
    fn host_variables_win_over_root_path() {
        let c: Config = serde_json::from_str(r#"{"root_path": "/hostfs"}"#).unwrap();
        let p = c.host_paths(&env_of(&[]));
        assert_eq!(p, HostPaths::under("/hostfs"));
        let p = c.host_paths(&env_of(&[("HOST_PROC", "/host/proc"), ("HOST_SYS", "/host/sys")]));
        assert_eq!(p.proc, PathBuf::from("/host/proc"));
        assert_eq!(p.sys, PathBuf::from("/host/sys"));
        assert_eq!(p.root, PathBuf::from("/hostfs"));
    }
}
