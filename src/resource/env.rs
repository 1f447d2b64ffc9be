//! `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`, as the OpenTelemetry SDK environment
//! specification defines them.
//!
//! ```text
//! OTEL_RESOURCE_ATTRIBUTES="service.namespace=infra, deployment.environment.name=prod,team=a%2Cb"
//! OTEL_SERVICE_NAME=node-agent
//! ```
//!
//! The format is W3C-baggage-like: comma-separated `key=value` pairs; whitespace around keys
//! and values is trimmed; values are percent-decoded (`%2C` → `,`; `+` stays `+`), so `,` and
//! `=` can be written as `%2C` and `%3D` (an unencoded `=` inside a value is kept); empty
//! entries (`a=1,,b=2`, a trailing comma) are skipped.
//!
//! A pair without `=`, with an empty key or a key containing whitespace, or with invalid
//! percent-encoding (or encoded bytes that are not UTF-8) is malformed. The specification
//! says the whole variable SHOULD then be discarded; like the Go SDK, metricsd keeps the
//! well-formed pairs and reports each malformed one as a note, so one typo does not lose
//! every attribute. [`parse_otel_resource_attributes`] is the strict form: any malformed pair
//! is an error.
//!
//! `OTEL_SERVICE_NAME`, when set and non-empty, is `service.name` and wins over a
//! `service.name` in `OTEL_RESOURCE_ATTRIBUTES`.

use super::{DetectInput, Detected};

/// The attributes `OTEL_RESOURCE_ATTRIBUTES` sets, with a note per malformed pair.
pub fn resource_attributes(input: &DetectInput) -> Detected {
    let mut out = Detected::default();
    let Some(raw) = (input.env)("OTEL_RESOURCE_ATTRIBUTES") else {
        return out;
    };
    for pair in parse_pairs(&raw) {
        match pair {
            Ok((k, v)) => out.set(&k, Some(v)),
            Err(e) => out.note(format!("OTEL_RESOURCE_ATTRIBUTES: ignored {e}")),
        }
    }
    out
}

/// `OTEL_SERVICE_NAME`, trimmed, when set and non-empty.
pub fn service_name(input: &DetectInput) -> Option<String> {
    (input.env)("OTEL_SERVICE_NAME").map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Parses an `OTEL_RESOURCE_ATTRIBUTES` value into `(key, value)` pairs in order; the first
/// malformed pair's description (e.g. `malformed pair 'x' (no '=')`) is the error.
pub fn parse_otel_resource_attributes(s: &str) -> Result<Vec<(String, String)>, String> {
    parse_pairs(s).into_iter().collect()
}

fn parse_pairs(s: &str) -> Vec<Result<(String, String), String>> {
    s.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let bad = |why: &str| format!("malformed pair '{entry}' ({why})");
            let (key, value) = entry.split_once('=').ok_or_else(|| bad("no '='"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            if key.chars().any(char::is_whitespace) {
                return Err(bad("whitespace in key"));
            }
            let value = percent_decode(value.trim()).ok_or_else(|| bad("invalid percent-encoding"))?;
            Ok((key.to_string(), value))
        })
        .collect()
}

/// Decodes `%XX` escapes; `None` when a `%` is not followed by two hex digits or the result
/// is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::env_of;
    use crate::resource::Attributes;
    use crate::units::HostPaths;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_pairs_trimming_whitespace_and_percent_decoding_values() {
        let got = parse_otel_resource_attributes(" service.namespace = infra ,team=a%2Cb, note=x%3Dy=z,plus=a+b,utf=caf%C3%A9,empty=").unwrap();
        assert_eq!(got, pairs(&[("service.namespace", "infra"), ("team", "a,b"), ("note", "x=y=z"), ("plus", "a+b"), ("utf", "café"), ("empty", ""),]));
    }

    #[test]
    fn empty_entries_and_an_empty_string_give_nothing() {
        assert_eq!(parse_otel_resource_attributes("").unwrap(), vec![]);
        assert_eq!(parse_otel_resource_attributes("a=1,,b=2,").unwrap(), pairs(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn rejects_malformed_pairs_naming_them() {
        for (input, err) in [
            ("a=1,oops", "malformed pair 'oops' (no '=')"),
            ("=v", "malformed pair '=v' (empty key)"),
            ("my key=v", "malformed pair 'my key=v' (whitespace in key)"),
            ("k=%zz", "malformed pair 'k=%zz' (invalid percent-encoding)"),
            ("k=50%", "malformed pair 'k=50%' (invalid percent-encoding)"),
            ("k=%+1", "malformed pair 'k=%+1' (invalid percent-encoding)"),
            ("k=%FF", "malformed pair 'k=%FF' (invalid percent-encoding)"),
        ] {
            assert_eq!(parse_otel_resource_attributes(input), Err(err.to_string()), "{input}");
        }
    }

    #[test]
    fn detection_keeps_well_formed_pairs_and_notes_the_rest() {
        let paths = HostPaths::default();
        let env = env_of(&[("OTEL_RESOURCE_ATTRIBUTES", "a=1,x,b=2"), ("OTEL_SERVICE_NAME", "  svc ")]);
        let config = Attributes::new();
        let input = DetectInput { paths: &paths, env: &env, config_resource: &config, hostname: None };
        let d = resource_attributes(&input);
        assert_eq!(d.attributes.len(), 2);
        assert_eq!(d.notes, vec!["OTEL_RESOURCE_ATTRIBUTES: ignored malformed pair 'x' (no '=')".to_string()]);
        assert_eq!(service_name(&input).as_deref(), Some("svc"));
    }

    #[test]
    fn an_empty_service_name_is_unset() {
        let paths = HostPaths::default();
        let env = env_of(&[("OTEL_SERVICE_NAME", " ")]);
        let config = Attributes::new();
        let input = DetectInput { paths: &paths, env: &env, config_resource: &config, hostname: None };
        assert_eq!(service_name(&input), None);
    }
}
