//! HTTP authentication and headers shared by the HTTP exporters and the scraper:
//! `basic_auth` (password inline, from a file or from an environment variable), `bearer_token`
//! or `bearer_token_file` (re-read at every request, so rotated Kubernetes tokens work), user
//! `headers` that may not replace the protocol's own, and the `http(s)://` endpoint check.
//!
//! ```yaml
//! basic_auth: {username: metricsd, password_file: /run/secrets/pw}
//! headers: {X-Scope-OrgID: tenant1}
//! ```

use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password (prefer `password_file` or `password_env`; never logged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// File holding the password (trailing newline ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

/// Everything that authenticates a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    /// Basic authentication.
    pub basic: Option<BasicAuth>,
    /// A bearer token.
    pub bearer_token: Option<String>,
    /// A file holding the bearer token, read at each request.
    pub bearer_token_file: Option<PathBuf>,
}

fn read_secret(path: &PathBuf, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map(|s| s.trim_end_matches(['\n', '\r']).to_string()).map_err(|e| format!("{what} {}: {e}", path.display()))
}

impl Auth {
    /// Checks that at most one method is set and that its files and variables can be read.
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.basic.is_some() && (self.bearer_token.is_some() || self.bearer_token_file.is_some()) {
            v.push("set either `basic_auth` or a bearer token, not both".into());
        }
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            v.push("set either `bearer_token` or `bearer_token_file`, not both".into());
        }
        if let Err(e) = self.header() {
            v.push(e);
        }
        v
    }

    /// The `Authorization` header, if any (files and variables read now).
    pub fn header(&self) -> Result<Option<HeaderValue>, String> {
        let value = if let Some(b) = &self.basic {
            let password = match (&b.password, &b.password_file, &b.password_env) {
                (Some(p), None, None) => p.clone(),
                (None, Some(f), None) => read_secret(f, "basic_auth.password_file")?,
                (None, None, Some(var)) => std::env::var(var).map_err(|_| format!("basic_auth.password_env: variable {var} is not set"))?,
                (None, None, None) => String::new(),
                _ => return Err("basic_auth: set only one of `password`, `password_file`, `password_env`".into()),
            };
            format!("Basic {}", base64(format!("{}:{}", b.username, password).as_bytes()))
        } else if let Some(t) = &self.bearer_token {
            format!("Bearer {t}")
        } else if let Some(f) = &self.bearer_token_file {
            format!("Bearer {}", read_secret(f, "bearer_token_file")?)
        } else {
            return Ok(None);
        };
        let mut h = HeaderValue::from_str(&value).map_err(|_| "credentials contain characters not allowed in a header".to_string())?;
        h.set_sensitive(true);
        Ok(Some(h))
    }
}

/// User headers as typed header pairs; `reserved` names (the protocol's own) are refused.
pub fn user_headers(headers: &BTreeMap<String, String>, reserved: &[&str]) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::with_capacity(headers.len());
    for (k, v) in headers {
        if reserved.iter().any(|r| r.eq_ignore_ascii_case(k)) {
            return Err(format!("header {k:?} is set by the protocol and cannot be overridden"));
        }
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("header name {k:?} is not valid"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("header {k:?} has a value not allowed in a header"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// Parses an `http(s)://` endpoint.
pub fn parse_endpoint(endpoint: &str) -> Result<hyper::Uri, String> {
    match endpoint.parse::<hyper::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http") | Some("https")) && u.host().is_some() => Ok(u),
        _ if endpoint.is_empty() => Err("`endpoint` is missing".into()),
        _ => Err(format!("`endpoint` {endpoint:?} is not an http:// or https:// URL")),
    }
}

/// Standard base64 (RFC 4648 with padding), for basic auth.
pub fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn basic_auth_reads_the_password_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let a = Auth { basic: Some(BasicAuth { username: "u".into(), password_file: Some(f), ..Default::default() }), ..Default::default() };
        assert_eq!(a.header().unwrap().unwrap().to_str().unwrap(), format!("Basic {}", base64(b"u:s3cret")));
    }

    #[test]
    fn bearer_token_file_is_read_at_each_request_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "one").unwrap();
        let a = Auth { bearer_token_file: Some(f.clone()), ..Default::default() };
        assert_eq!(a.header().unwrap().unwrap().to_str().unwrap(), "Bearer one");
        std::fs::write(&f, "two").unwrap();
        assert_eq!(a.header().unwrap().unwrap().to_str().unwrap(), "Bearer two");
        std::fs::remove_file(&f).unwrap();
        assert!(a.header().unwrap_err().contains("bearer_token_file"));
    }

    #[test]
    fn protocol_headers_cannot_be_overridden() {
        let mut h = BTreeMap::new();
        h.insert("content-encoding".to_string(), "gzip".to_string());
        assert!(user_headers(&h, &["Content-Encoding"]).unwrap_err().contains("content-encoding"));
        h.clear();
        h.insert("X-Scope-OrgID".to_string(), "tenant1".to_string());
        assert_eq!(user_headers(&h, &["Content-Encoding"]).unwrap().len(), 1);
    }
}
