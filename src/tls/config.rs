//! The `tls` section of a connection ([`TlsConfig`], metricsd's keys), e.g.
//! `tls: {enabled: true, ca_file: /etc/metricsd/ca.pem, server_name: collector.internal}`,
//! and what its users call: [`TlsConfig::validate`], [`TlsConfig::client_config`],
//! [`TlsConfig::server_name`].

use std::path::PathBuf;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::TlsError;

/// TLS settings for a connection metricsd makes (the `tls` section of the shipper, of an
/// exporter or of a scrape endpoint). Keys are metricsd's.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Use TLS for this connection. When `false` the rest of the section is ignored.
    pub enabled: bool,
    /// PEM file with the CA certificate(s) that the server's certificate must chain to. A bundle
    /// with several certificates is fine. When unset, the system's trusted roots are used (the
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` environment variables are honoured).
    pub ca_file: Option<PathBuf>,
    /// PEM file with the client certificate for mutual TLS (leaf first, then any
    /// intermediates). Requires `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the unencrypted private key of `cert_file`: PKCS#8 (`BEGIN PRIVATE KEY`),
    /// PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`) or SEC1 EC (`BEGIN EC PRIVATE KEY`). It may be the
    /// same file as `cert_file`. The key must belong to the certificate; this is checked at load.
    pub key_file: Option<PathBuf>,
    /// Name sent as SNI and checked against the server's certificate, instead of the host of
    /// the endpoint URL. A DNS name or an IP address.
    pub server_name: Option<String>,
    /// Lowest TLS version to negotiate: `TLS1.2` (default) or `TLS1.3`. `TLS1.0` and `TLS1.1`
    /// are rejected: rustls does not implement them.
    pub min_version: Option<String>,
    /// Highest TLS version to negotiate: `TLS1.2` or `TLS1.3` (default).
    pub max_version: Option<String>,
    /// Allowed cipher suites, by their IANA / Go names (e.g.
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`). Empty means the secure defaults. CBC, RC4, 3DES
    /// and `TLS_RSA_*` suites are rejected: rustls does not implement them. Listing only TLS 1.2
    /// suites leaves TLS 1.3 with its defaults, as metricsd did.
    pub cipher_suites: Vec<String>,
    /// Resume earlier sessions (session tickets / IDs) to save handshakes. Default `true`.
    pub session_tickets: Option<bool>,
    /// Accept any server certificate, unchecked (the handshake signature is still verified).
    /// Anyone on the path can then read and alter the traffic: for testing only.
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// Checks everything that can be checked without a connection: files readable, PEM parses,
    /// the key matches the certificate, versions, cipher suites, `server_name`, and that some
    /// root certificates are available. Called at config load and by `--check-config`. A
    /// disabled section is not checked (it is ignored, as metricsd ignores it).
    pub fn validate(&self) -> Result<(), TlsError> {
        if !self.enabled {
            return Ok(());
        }
        self.build(Vec::new(), false).map(drop)
    }

    /// The rustls client configuration for these settings. `alpn` lists the protocols to offer,
    /// e.g. `vec![b"h2".to_vec()]` for gRPC, `vec![b"http/1.1".to_vec()]` for HTTP/1.1.
    ///
    /// Builds regardless of `enabled`: whether a connection uses TLS is the caller's decision.
    /// Re-reads every file on each call, so calling it again on SIGHUP picks up rotated
    /// certificates. Logs a warning each time it builds with `insecure_skip_verify`.
    pub fn client_config(&self, alpn: Vec<Vec<u8>>) -> Result<ClientConfig, TlsError> {
        self.build(alpn, true)
    }

    /// The name to verify the server's certificate against and to send as SNI: `server_name`
    /// when set, else the URL's host (brackets of an IPv6 literal such as `[::1]` removed).
    pub fn server_name_for<'a>(&'a self, url_host: &'a str) -> &'a str {
        match self.server_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name,
            _ => url_host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(url_host),
        }
    }

    /// [`server_name_for`](Self::server_name_for) as the rustls type that connectors take.
    pub fn server_name(&self, url_host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name_for(url_host);
        ServerName::try_from(name.to_owned()).map_err(|_| TlsError::InvalidServerName { name: name.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::protocol::TlsVersion;
    #[test]
    fn a_disabled_section_is_not_validated() {
        let cfg = TlsConfig { enabled: false, ca_file: Some("/nonexistent/ca.pem".into()), min_version: Some("TLS1.0".into()), ..TlsConfig::default() };
        cfg.validate().unwrap();
    }

    #[test]
    fn server_name_is_checked_and_wins_over_the_url_host() {
        let mut cfg = TlsConfig::default();
        assert_eq!(cfg.server_name_for("collector"), "collector");
        assert_eq!(cfg.server_name_for("[::1]"), "::1");
        assert!(cfg.server_name("[::1]").is_ok());
        cfg.server_name = Some(String::new());
        assert_eq!(cfg.server_name_for("collector"), "collector");
        cfg.server_name = Some("metrics.internal.example.com".into());
        assert_eq!(cfg.server_name_for("10.0.0.1"), "metrics.internal.example.com");

        let cfg = TlsConfig { enabled: true, insecure_skip_verify: true, server_name: Some("not a host name".into()), ..TlsConfig::default() };
        assert!(matches!(cfg.validate(), Err(TlsError::InvalidServerName { .. })));
    }

    #[test]
    fn metricsd_tls_sections_deserialize_and_unknown_keys_are_rejected() {
        let cfg: TlsConfig = serde_json::from_str(
            r#"{
              "enabled": true,
              "cert_file": "/etc/metricsd/certs/client.crt",
              "key_file": "/etc/metricsd/certs/client.key",
              "ca_file": "/etc/metricsd/certs/ca.crt",
              "server_name": "metrics.internal.example.com",
              "min_version": "TLS1.2",
              "max_version": "TLS1.3",
              "cipher_suites": [
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
              ],
              "session_tickets": true,
              "insecure_skip_verify": false
            }"#,
        )
        .unwrap();
        assert_eq!(cfg.cipher_suites.len(), 4);
        assert_eq!(cfg.session_tickets, Some(true));
        assert!(cfg.selected_suites(TlsVersion::V12, TlsVersion::V13).is_ok());

        let minimal: TlsConfig = serde_json::from_str(r#"{"enabled": true}"#).unwrap();
        assert_eq!(minimal.session_tickets, None);
        assert!(serde_json::from_str::<TlsConfig>(r#"{"ca_path": "x"}"#).is_err());
    }
}
