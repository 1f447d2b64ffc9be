//! The OpenTelemetry SDK environment of the `otlp` exporter: `OTEL_EXPORTER_OTLP_*` applied to
//! what an [`OtlpConfig`] leaves unset ([`OtlpConfig::apply_env`]), and the header list format
//! `k1=v1,k2=v2` with percent-encoded values ([`parse_env_headers`]), e.g.
//! `OTEL_EXPORTER_OTLP_HEADERS=authorization=Basic%20dTpw,x-scope-orgid=tenant1`.
//!
//! The standard variables apply to every `otlp` exporter, for what its config leaves unset
//! (the config file wins; a metrics-specific variable wins over the generic one):
//!
//! | variable | sets |
//! | --- | --- |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | `endpoint`, used as is |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | `endpoint`; for `http/protobuf` `/v1/metrics` is appended to its path (`http://c:4318` → `http://c:4318/v1/metrics`, `http://c/otlp` → `http://c/otlp/v1/metrics`) |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL` | `protocol`: `grpc` or `http/protobuf` (`http/json` is an error: use `type: http_json` with `format: otlp_json`) |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]HEADERS` | `headers`, as `k1=v1,k2=v2` with percent-encoded values; merged key by key under the file's |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT` | `timeout`, in milliseconds |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]COMPRESSION` | `compression`: `gzip`, `zstd` or `none` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]INSECURE` | `insecure` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE` | `tls.ca_file` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_CERTIFICATE` | `tls.cert_file` |
//! | `OTEL_EXPORTER_OTLP_[METRICS_]CLIENT_KEY` | `tls.key_file` |
//! | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `temporality`: `cumulative`, `delta` or `lowmemory` |
//!
//! When the config has neither `shipper` nor `exporters` and `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, the agent ships OTLP with these settings, as
//! an OpenTelemetry SDK would.

use super::config::{Compression, OtlpConfig, Protocol, Temporality, HTTP_METRICS_PATH};
use crate::units::env::{Env, EnvError};
use crate::units::ConfigDuration;
use std::collections::BTreeMap;

impl OtlpConfig {
    /// Applies the `OTEL_EXPORTER_OTLP_*` variables to what the file left unset.
    pub fn apply_env(&mut self, env: Env) -> Vec<EnvError> {
        let mut errors = Vec::new();
        // The metrics-specific variable wins over the generic one.
        let get = |suffix: &str| -> Option<(String, String)> {
            for var in [format!("OTEL_EXPORTER_OTLP_METRICS_{suffix}"), format!("OTEL_EXPORTER_OTLP_{suffix}")] {
                if let Some(v) = env(&var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                    return Some((var, v));
                }
            }
            None
        };
        let bad = |var: String, value: String, msg: &str| EnvError { var, value, msg: msg.into() };
        if self.protocol.is_none() {
            if let Some((var, v)) = get("PROTOCOL") {
                match v.to_ascii_lowercase().as_str() {
                    "grpc" => self.protocol = Some(Protocol::Grpc),
                    "http/protobuf" => self.protocol = Some(Protocol::HttpProtobuf),
                    "http/json" => errors.push(bad(
                        var,
                        v,
                        "the otlp exporter speaks grpc or http/protobuf; for OTLP/JSON use an exporter with `type: http_json` and `format: otlp_json`",
                    )),
                    _ => errors.push(bad(var, v, "expected grpc or http/protobuf")),
                }
            }
        }
        if self.endpoint.is_none() {
            if let Some(v) = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                self.endpoint = Some(v);
            } else if let Some(v) = env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                self.endpoint = Some(match self.protocol() {
                    Protocol::Grpc => v,
                    Protocol::HttpProtobuf => append_signal_path(&v),
                });
            }
        }
        if self.insecure.is_none() {
            if let Some((var, v)) = get("INSECURE") {
                match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => self.insecure = Some(true),
                    "false" | "0" => self.insecure = Some(false),
                    _ => errors.push(bad(var, v, "expected true or false")),
                }
            }
        }
        if self.timeout.is_none() {
            if let Some((var, v)) = get("TIMEOUT") {
                match v.parse::<u64>() {
                    Ok(ms) if ms > 0 => self.timeout = Some(ConfigDuration::millis(ms)),
                    _ => errors.push(bad(var, v, "expected a positive number of milliseconds")),
                }
            }
        }
        if self.compression.is_none() {
            if let Some((var, v)) = get("COMPRESSION") {
                match v.to_ascii_lowercase().as_str() {
                    "gzip" => self.compression = Some(Compression::Gzip),
                    "zstd" => self.compression = Some(Compression::Zstd),
                    "none" => self.compression = Some(Compression::None),
                    _ => errors.push(bad(var, v, "expected gzip, zstd or none")),
                }
            }
        }
        if self.temporality.is_none() {
            if let Some(v) = env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                match v.to_ascii_lowercase().as_str() {
                    "cumulative" => self.temporality = Some(Temporality::Cumulative),
                    "delta" => self.temporality = Some(Temporality::Delta),
                    "lowmemory" => self.temporality = Some(Temporality::Lowmemory),
                    _ => errors.push(bad("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE".into(), v, "expected cumulative, delta or lowmemory")),
                }
            }
        }
        // Headers: generic, then metrics-specific over it, then the file's over both.
        let file_keys: Vec<String> = self.headers.keys().map(|k| k.to_ascii_lowercase()).collect();
        let mut from_env: BTreeMap<String, (String, String)> = BTreeMap::new();
        for var in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"] {
            let Some(v) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match parse_env_headers(&v) {
                Ok(pairs) => from_env.extend(pairs.into_iter().map(|(k, val)| (k.to_ascii_lowercase(), (k, val)))),
                // The value may be a secret: name the problem, not the value.
                Err(msg) => errors.push(EnvError { var: var.into(), value: "<redacted>".into(), msg }),
            }
        }
        for (lk, (k, val)) in from_env {
            if !file_keys.contains(&lk) {
                self.headers.insert(k, val);
            }
        }
        if self.tls.ca_file.is_none() {
            self.tls.ca_file = get("CERTIFICATE").map(|(_, v)| v.into());
        }
        if self.tls.cert_file.is_none() {
            self.tls.cert_file = get("CLIENT_CERTIFICATE").map(|(_, v)| v.into());
        }
        if self.tls.key_file.is_none() {
            self.tls.key_file = get("CLIENT_KEY").map(|(_, v)| v.into());
        }
        errors
    }
}

/// `http://c:4318` → `http://c:4318/v1/metrics`; `http://c/otlp/` → `http://c/otlp/v1/metrics`.
fn append_signal_path(base: &str) -> String {
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, String::new()));
            format!("{scheme}://{authority}{}{HTTP_METRICS_PATH}", path.trim_end_matches('/'))
        }
        None => format!("{}{HTTP_METRICS_PATH}", base.trim_end_matches('/')),
    }
}

/// `k1=v1,k2=v2` with percent-encoded keys and values (the W3C baggage format the OTLP
/// specification uses).
pub fn parse_env_headers(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, item) in v.split(',').enumerate() {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, val)) = item.split_once('=') else {
            return Err(format!("entry {} has no `=` (expected key1=value1,key2=value2)", i + 1));
        };
        let k = percent_decode(k.trim());
        if k.is_empty() {
            return Err(format!("entry {} has an empty key", i + 1));
        }
        out.push((k, percent_decode(val.trim())));
    }
    Ok(out)
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is, and bytes that
/// are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::env::env_of;
    use std::time::Duration;

    #[test]
    fn metrics_specific_variables_win_over_generic_ones_and_the_file_wins_over_both() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "3000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-a=generic,x-b=generic"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-b=metrics,x-c=metrics"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "/c.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/c.key"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        ]);
        let mut c = OtlpConfig::default();
        assert!(c.apply_env(&env).is_empty());
        assert_eq!(c.endpoint.as_deref(), Some("http://metrics:4317"));
        assert_eq!(c.timeout(), Duration::from_secs(3));
        assert_eq!(c.compression(), Compression::Zstd);
        assert_eq!(c.temporality(), Temporality::Delta);
        let h: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(h, vec![("x-a", "generic"), ("x-b", "metrics"), ("x-c", "metrics")]);
        assert_eq!(c.tls.ca_file, Some("/ca.pem".into()));
        assert_eq!(c.tls.cert_file, Some("/c.pem".into()));
        assert_eq!(c.tls.key_file, Some("/c.key".into()));

        let mut c: OtlpConfig = serde_yaml_ng::from_str(
            "endpoint: http://file:4317\ntimeout: 1s\ncompression: gzip\ntemporality: cumulative\nheaders: {X-B: file}\ntls: {ca_file: /file-ca.pem}\n",
        )
        .unwrap();
        assert!(c.apply_env(&env).is_empty());
        assert_eq!(c.endpoint.as_deref(), Some("http://file:4317"));
        assert_eq!(c.timeout(), Duration::from_secs(1));
        assert_eq!(c.compression(), Compression::Gzip);
        assert_eq!(c.temporality(), Temporality::Cumulative);
        let h: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(h, vec![("X-B", "file"), ("x-a", "generic"), ("x-c", "metrics")]);
        assert_eq!(c.tls.ca_file, Some("/file-ca.pem".into()));
    }

    #[test]
    fn the_generic_endpoint_gets_v1_metrics_for_http_protobuf_and_the_specific_one_is_used_as_is() {
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]));
        assert_eq!(c.target().unwrap().uri.to_string(), "http://c:4318/v1/metrics");
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c/otlp/"), ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")]));
        assert_eq!(c.target().unwrap().uri.to_string(), "https://c/otlp/v1/metrics");
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c:4318/custom"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]));
        assert_eq!(c.target().unwrap().uri.to_string(), "http://c:4318/custom");
        let mut c = OtlpConfig::default();
        c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]));
        assert_eq!(c.endpoint_for_display(), "http://c:4317");
    }

    #[test]
    fn env_headers_are_percent_decoded_and_a_bad_list_names_the_variable_not_the_value() {
        assert_eq!(
            parse_env_headers("Authorization=Basic%20dTpw, x-tenant = a%2Cb ,").unwrap(),
            vec![("Authorization".into(), "Basic dTpw".into()), ("x-tenant".into(), "a,b".into())]
        );
        let mut c = OtlpConfig::default();
        let errs = c.apply_env(&env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", "secret-token-without-equals")]));
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(text.contains("OTEL_EXPORTER_OTLP_HEADERS") && !text.contains("secret-token"), "{text}");
    }

    #[test]
    fn http_json_protocol_is_a_config_error_that_points_to_the_http_json_exporter() {
        let mut c = OtlpConfig::default();
        let errs = c.apply_env(&env_of(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ]));
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("OTEL_EXPORTER_OTLP_PROTOCOL") && text[0].contains("http_json") && text[0].contains("otlp_json"), "{text:?}");
        assert!(text[1].contains("OTEL_EXPORTER_OTLP_TIMEOUT"), "{text:?}");
        assert_eq!(c.insecure, Some(true), "the other variables still apply");
    }

    #[test]
    fn a_percent_without_two_hex_digits_stays_as_it_is_and_bad_utf8_becomes_a_replacement_character() {
        for (raw, decoded) in [("a%20b", "a b"), ("%4", "%4"), ("%zz1", "%zz1"), ("%%41", "%A"), ("100%", "100%"), ("%e2%82%ac", "€"), ("%ff", "\u{fffd}")] {
            assert_eq!(percent_decode(raw), decoded, "{raw}");
        }
    }
}
