//! The server side of TLS: the `tls` section of a listener the agent opens (the OTLP receiver),
//! in the OpenTelemetry Collector's keys, and the rustls [`ServerConfig`] built from it:
//!
//! ```yaml
//! tls: {cert_file: /etc/metricsd/server.pem, key_file: /etc/metricsd/server.key,
//!       client_ca_file: /etc/metricsd/clients-ca.pem}   # client_ca_file: mutual TLS
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;
use rustls::ServerConfig;

use super::pem::{load_ca_file, load_client_identity};
use super::protocol::TlsVersion;
use super::{TlsConfig, TlsError};

/// TLS settings of a listener (the Collector's `configtls` server keys).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsConfig {
    /// PEM file with the server's certificate (leaf first, then any intermediates). Required.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the unencrypted private key of `cert_file`. Required.
    pub key_file: Option<PathBuf>,
    /// PEM file with the CA certificate(s) that clients' certificates must chain to. When set,
    /// every client must present a valid certificate (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    /// Lowest TLS version to accept: `TLS1.2` (default) or `TLS1.3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
}

impl ServerTlsConfig {
    /// The rustls server configuration: reads every file on each call (so a reload picks up
    /// rotated certificates). `alpn` lists the protocols offered, e.g. `h2` for gRPC.
    pub fn server_config(&self, alpn: Vec<Vec<u8>>) -> Result<ServerConfig, TlsError> {
        let (cert, key) = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => return Err(TlsError::IncompleteClientCert { set: "cert_file", missing: "key_file" }),
            (None, _) => return Err(TlsError::IncompleteClientCert { set: "key_file or client_ca_file", missing: "cert_file" }),
        };
        let versions = TlsConfig { min_version: self.min_version.clone(), ..TlsConfig::default() };
        let (min, max) = versions.version_range()?;
        let versions: Vec<_> = [TlsVersion::V12, TlsVersion::V13].into_iter().filter(|v| (min..=max).contains(v)).map(TlsVersion::rustls).collect();
        let provider = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
        let builder = match &self.client_ca_file {
            Some(path) => {
                let roots = Arc::new(load_ca_file(path)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| TlsError::Rustls(rustls::Error::General(format!("client_ca_file: {e}"))))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let certified = load_client_identity(cert, key, &provider as &CryptoProvider)?;
        let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = alpn;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn a_server_config_builds_from_a_certificate_and_key_with_or_without_a_client_ca() {
        let (ca, files) = (Ca::new("server test CA"), Files::new());
        let leaf = ca.server();
        let mut cfg = ServerTlsConfig {
            cert_file: Some(files.write("s.pem", &leaf.cert_pem)),
            key_file: Some(files.write("s.key", &leaf.key_pem)),
            ..Default::default()
        };
        let plain = cfg.server_config(vec![b"h2".to_vec()]).unwrap();
        assert_eq!(plain.alpn_protocols, vec![b"h2".to_vec()]);
        cfg.client_ca_file = Some(files.write("ca.pem", &ca.pem()));
        cfg.server_config(Vec::new()).unwrap();
        cfg.client_ca_file = Some(files.write("not-a-ca.pem", "not PEM"));
        assert!(cfg.server_config(Vec::new()).is_err(), "a client CA file without certificates is refused");
    }

    #[test]
    fn a_missing_key_a_foreign_key_or_an_old_version_is_an_error_naming_the_option() {
        let (ca, files) = (Ca::new("server test CA"), Files::new());
        let (leaf, other) = (ca.server(), ca.server());
        let cert = files.write("s.pem", &leaf.cert_pem);
        let no_key = ServerTlsConfig { cert_file: Some(cert.clone()), ..Default::default() };
        assert!(no_key.server_config(Vec::new()).unwrap_err().to_string().contains("key_file"));
        let foreign = ServerTlsConfig { cert_file: Some(cert.clone()), key_file: Some(files.write("o.key", &other.key_pem)), ..Default::default() };
        assert!(matches!(foreign.server_config(Vec::new()), Err(TlsError::KeyMismatch { .. })));
        let old = ServerTlsConfig {
            cert_file: Some(cert),
            key_file: Some(files.write("s.key", &leaf.key_pem)),
            min_version: Some("TLS1.0".into()),
            ..Default::default()
        };
        assert!(matches!(old.server_config(Vec::new()), Err(TlsError::UnsupportedVersion { .. })));
    }
}
