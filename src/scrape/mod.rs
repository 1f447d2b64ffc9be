//! Application endpoints to scrape (metricsd's `endpoints`).

use serde::{Deserialize, Serialize};

/// One entry of `endpoints`: metricsd's `name` and `url`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// The target's name (becomes `service.name` of its metrics).
    pub name: String,
    /// Where to scrape, e.g. `http://localhost:3000/metrics`.
    pub url: String,
}

impl EndpointConfig {
    /// Problems found without connecting.
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.name.is_empty() {
            v.push("`name` is empty".into());
        }
        match self.url.parse::<hyper::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http") | Some("https")) && u.host().is_some() => {}
            _ => v.push(format!("`url` {:?} is not an http(s) URL", self.url)),
        }
        v
    }
}
