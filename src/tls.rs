//! TLS for every outgoing connection: one rustls [`ClientConfig`] builder used by the OTLP gRPC
//! exporter, the remote-write and HTTP JSON exporters and the scrape client alike.
//!
//! The `tls` section keeps metricsd's keys unchanged. What rustls cannot do is a configuration
//! error that says so, never a silent downgrade:
//!
//! * TLS 1.0 / 1.1 (and SSLv3) in `min_version` / `max_version` → [`TlsError::UnsupportedVersion`].
//! * CBC, RC4, 3DES and `TLS_RSA_*` (static RSA key exchange) suites in `cipher_suites` →
//!   [`TlsError::UnsupportedCipher`] naming the suite.
//!
//! Crypto is *ring* only (`rustls::crypto::ring`).
//!
//! ## Cipher suites
//!
//! Names are the ones metricsd (Go's `crypto/tls`) uses, case-insensitive, e.g.
//! `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`
//! (Go's alias without `_SHA256` is accepted too) and the TLS 1.3 suites `TLS_AES_128_GCM_SHA256`,
//! `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`. An empty list means rustls' defaults
//! (all of the above). As in Go, listing only TLS 1.2 suites restricts TLS 1.2 and leaves TLS 1.3
//! with all its suites, so metricsd's example configuration keeps negotiating TLS 1.3. Unlike Go,
//! naming TLS 1.3 suites restricts TLS 1.3 to those. A list with no TLS 1.2 suite but some TLS 1.3
//! ones disables TLS 1.2 (as it does in Go, where no TLS 1.2 suite would be left).
//!
//! ## Reloading
//!
//! [`TlsConfig::client_config`] reads every file (CA bundle, client certificate, key, and the
//! system roots when `ca_file` is unset) each time it is called and keeps nothing cached. Building
//! is cheap (milliseconds; loading the system roots dominates), so certificate rotation on SIGHUP
//! is: call `client_config` again and swap the new `Arc<ClientConfig>` into the client.
//! Connections already open keep their old session.
//!
//! ## Use
//!
//! ```ignore
//! let cfg = Arc::new(tls.client_config(vec![b"h2".to_vec()])?);       // gRPC
//! let cfg = Arc::new(tls.client_config(vec![b"http/1.1".to_vec()])?); // HTTP/1.1
//! let name = tls.server_name(url_host)?; // SNI and the name the certificate is checked against
//! let stream = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await?;
//! ```

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, DigitallySignedStruct, InconsistentKeys, RootCertStore, SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion};

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

/// A `tls` section that cannot be turned into a working TLS client. Each variant names the
/// option (and file) at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{option}: cannot read {}: {source}", path.display())]
    ReadFile {
        option: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tls.{option}: {} is not valid PEM: {source}", path.display())]
    Pem {
        option: &'static str,
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("tls.{option}: {} contains no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificates { option: &'static str, path: PathBuf },
    #[error("tls.{option}: certificate #{index} in {} is not usable: {source}", path.display())]
    BadCertificate {
        option: &'static str,
        path: PathBuf,
        /// 1-based position of the certificate in the file.
        index: usize,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "tls.key_file: {} contains no PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "tls.key_file: {} is encrypted; metricsd needs an unencrypted key (e.g. `openssl pkey -in KEY -out KEY.plain`, then protect it with file permissions)",
        path.display()
    )]
    EncryptedKey { path: PathBuf },
    #[error("tls.key_file: {} is not a usable private key: {source}", path.display())]
    InvalidKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "tls.key_file: {} is not the private key of tls.cert_file {} (their public keys differ)",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("tls.{set} is set but tls.{missing} is not; a client certificate needs both cert_file and key_file")]
    IncompleteClientCert { set: &'static str, missing: &'static str },
    #[error("tls.{option}: \"{value}\": TLS1.0/TLS1.1 are not supported by rustls; use TLS1.2 or TLS1.3")]
    UnsupportedVersion { option: &'static str, value: String },
    #[error("tls.{option}: \"{value}\" is not a TLS version; use TLS1.2 or TLS1.3")]
    InvalidVersion { option: &'static str, value: String },
    #[error("tls.min_version ({min}) is higher than tls.max_version ({max})")]
    VersionRange { min: String, max: String },
    #[error(
        "tls.cipher_suites: {name} is not supported by rustls ({reason}); CBC / RSA key exchange suites are not supported by rustls, use ECDHE suites with AES-GCM or CHACHA20-POLY1305"
    )]
    UnsupportedCipher { name: String, reason: &'static str },
    #[error("tls.cipher_suites: unknown cipher suite \"{name}\" (expected names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_AES_128_GCM_SHA256)")]
    UnknownCipher { name: String },
    #[error("tls.cipher_suites: none of the listed suites can be used with the allowed TLS versions ({versions})")]
    NoUsableCipher { versions: String },
    #[error("tls.server_name: \"{name}\" is not a valid DNS name or IP address")]
    InvalidServerName { name: String },
    #[error(
        "tls.ca_file is not set and no system root certificates could be loaded{detail}; set tls.ca_file, install the system CA bundle (e.g. the ca-certificates package), or point SSL_CERT_FILE at one"
    )]
    NoSystemRoots { detail: String },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
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

    fn build(&self, alpn: Vec<Vec<u8>>, warn: bool) -> Result<ClientConfig, TlsError> {
        let (min, max) = self.version_range()?;
        let versions: Vec<&'static SupportedProtocolVersion> =
            [TlsVersion::V12, TlsVersion::V13].into_iter().filter(|v| (min..=max).contains(v)).map(TlsVersion::rustls).collect();
        let suites = self.selected_suites(min, max)?;
        if let Some(name) = self.server_name.as_deref().map(str::trim) {
            if !name.is_empty() && ServerName::try_from(name).is_err() {
                return Err(TlsError::InvalidServerName { name: name.to_owned() });
            }
        }

        let provider = Arc::new(CryptoProvider { cipher_suites: suites, ..ring::default_provider() });
        let builder = ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;

        let ca_roots = match &self.ca_file {
            Some(path) => Some(load_ca_file(path)?),
            None => None,
        };
        let builder = if self.insecure_skip_verify {
            if warn {
                tracing::warn!(
                    server_name = self.server_name.as_deref().unwrap_or(""),
                    "TLS certificate verification is disabled (tls.insecure_skip_verify: true): \
                     any server certificate is accepted and the connection can be intercepted"
                );
            }
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { algorithms: provider.signature_verification_algorithms }))
        } else {
            let roots = match ca_roots {
                Some(roots) => roots,
                None => system_roots(rustls_native_certs::load_native_certs())?,
            };
            builder.with_root_certificates(roots)
        };

        let mut config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certified = load_client_identity(cert, key, &provider)?;
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
            }
            (Some(_), None) => return Err(TlsError::IncompleteClientCert { set: "cert_file", missing: "key_file" }),
            (None, Some(_)) => return Err(TlsError::IncompleteClientCert { set: "key_file", missing: "cert_file" }),
            (None, None) => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn;
        config.enable_sni = true;
        if self.session_tickets == Some(false) {
            config.resumption = Resumption::disabled();
        }
        Ok(config)
    }

    fn version_range(&self) -> Result<(TlsVersion, TlsVersion), TlsError> {
        let min = parse_version("min_version", self.min_version.as_deref())?.unwrap_or(TlsVersion::V12);
        let max = parse_version("max_version", self.max_version.as_deref())?.unwrap_or(TlsVersion::V13);
        if min > max {
            return Err(TlsError::VersionRange { min: min.to_string(), max: max.to_string() });
        }
        Ok((min, max))
    }

    /// The suites to offer, in rustls' preference order, for the versions in `min..=max`.
    fn selected_suites(&self, min: TlsVersion, max: TlsVersion) -> Result<Vec<SupportedCipherSuite>, TlsError> {
        let defaults = ring::DEFAULT_CIPHER_SUITES;
        let mut listed = Vec::new();
        for name in &self.cipher_suites {
            let suite = lookup_cipher(name)?;
            if !listed.contains(&suite) {
                listed.push(suite);
            }
        }
        let lists_tls13 = listed.iter().any(|s| suite_version(s) == TlsVersion::V13);
        let wanted = |s: &SupportedCipherSuite| match suite_version(s) {
            // TLS 1.3 suites stay at their defaults unless some are named (Go semantics).
            TlsVersion::V13 if !lists_tls13 => true,
            _ => listed.is_empty() || listed.contains(s),
        };
        let suites: Vec<SupportedCipherSuite> = defaults.iter().copied().filter(|s| wanted(s) && (min..=max).contains(&suite_version(s))).collect();
        if suites.is_empty() {
            let versions = if min == max { min.to_string() } else { format!("{min} to {max}") };
            return Err(TlsError::NoUsableCipher { versions });
        }
        Ok(suites)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TlsVersion {
    V12,
    V13,
}

impl TlsVersion {
    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::V12 => &rustls::version::TLS12,
            TlsVersion::V13 => &rustls::version::TLS13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V12 => "TLS1.2",
            TlsVersion::V13 => "TLS1.3",
        })
    }
}

/// Accepts `TLS1.2`, `TLSv1.2`, `tls12`, `1.2`, `VersionTLS12` and alike; empty means unset.
fn parse_version(option: &'static str, value: Option<&str>) -> Result<Option<TlsVersion>, TlsError> {
    let Some(raw) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let upper = raw.to_ascii_uppercase();
    let rest = upper.strip_prefix("VERSION").unwrap_or(&upper);
    let (ssl, rest) = match rest.strip_prefix("SSL") {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix("TLS").unwrap_or(rest)),
    };
    let rest = rest.strip_prefix('V').unwrap_or(rest);
    let digits: String = rest.chars().filter(|c| !matches!(c, '.' | '_' | ' ' | '-')).collect();
    let unsupported = || TlsError::UnsupportedVersion { option, value: raw.to_owned() };
    match (ssl, digits.as_str()) {
        (false, "12") => Ok(Some(TlsVersion::V12)),
        (false, "13") => Ok(Some(TlsVersion::V13)),
        (false, "1" | "10" | "11") => Err(unsupported()),
        (true, "2" | "20" | "3" | "30") => Err(unsupported()),
        _ => Err(TlsError::InvalidVersion { option, value: raw.to_owned() }),
    }
}

fn suite_version(suite: &SupportedCipherSuite) -> TlsVersion {
    match suite {
        SupportedCipherSuite::Tls13(_) => TlsVersion::V13,
        _ => TlsVersion::V12,
    }
}

fn lookup_cipher(name: &str) -> Result<SupportedCipherSuite, TlsError> {
    use ring::cipher_suite as cs;
    let upper = name.trim().to_ascii_uppercase();
    let suite = match upper.as_str() {
        "TLS_AES_128_GCM_SHA256" | "TLS13_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" | "TLS13_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" | "TLS13_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        other => {
            let known_insecure = [
                "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
                "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
                "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
                "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
                "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
                "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
                "TLS_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_RSA_WITH_AES_128_CBC_SHA256",
                "TLS_RSA_WITH_AES_256_CBC_SHA256",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_AES_256_CBC_SHA",
                "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                "TLS_RSA_WITH_RC4_128_SHA",
            ];
            if !known_insecure.contains(&other) {
                return Err(TlsError::UnknownCipher { name: name.trim().to_owned() });
            }
            let reason = if other.starts_with("TLS_RSA_") {
                "static RSA key exchange, no forward secrecy"
            } else if other.contains("_RC4_") {
                "RC4 is broken"
            } else if other.contains("_3DES_") {
                "3DES is obsolete"
            } else {
                "CBC mode"
            };
            return Err(TlsError::UnsupportedCipher { name: name.trim().to_owned(), reason });
        }
    };
    Ok(suite)
}

fn read_file(option: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::ReadFile { option, path: path.to_owned(), source })
}

/// Every certificate in a PEM file (other sections, such as a key, are skipped).
fn read_certs(option: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(option, path)?;
    let certs =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|source| TlsError::Pem { option, path: path.to_owned(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates { option, path: path.to_owned() });
    }
    Ok(certs)
}

fn load_ca_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certs("ca_file", path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|source| TlsError::BadCertificate { option: "ca_file", path: path.to_owned(), index: i + 1, source })?;
    }
    Ok(roots)
}

fn system_roots(found: rustls_native_certs::CertificateResult) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    if added == 0 {
        let detail = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
        return Err(TlsError::NoSystemRoots { detail });
    }
    if ignored > 0 || !errors.is_empty() {
        tracing::debug!(added, ignored, ?errors, "some system root certificates were not loaded");
    }
    Ok(roots)
}

fn load_client_identity(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs("cert_file", cert_path)?;
    let key_pem = read_file("key_file", key_path)?;
    let encrypted = |marker: &[u8]| key_pem.windows(marker.len()).any(|w| w == marker);
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(_) if encrypted(b"ENCRYPTED PRIVATE KEY") || encrypted(b"Proc-Type: 4,ENCRYPTED") => {
            return Err(TlsError::EncryptedKey { path: key_path.to_owned() })
        }
        Err(pem::Error::NoItemsFound) => return Err(TlsError::NoKey { path: key_path.to_owned() }),
        Err(source) => return Err(TlsError::Pem { option: "key_file", path: key_path.to_owned(), source }),
    };
    let signing_key = provider.key_provider.load_private_key(key).map_err(|source| TlsError::InvalidKey { path: key_path.to_owned(), source })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key cannot tell its public key; nothing to compare (not so for ring's).
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() })
        }
        Err(source) => Err(TlsError::BadCertificate { option: "cert_file", path: cert_path.to_owned(), index: 1, source }),
    }
}

/// `insecure_skip_verify`: any certificate chain and name is accepted. The handshake signature
/// is still checked against the presented certificate, as Go's `InsecureSkipVerify` does.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    //! Real handshakes against a tokio-rustls server on 127.0.0.1 with certificates made by
    //! rcgen (ECDSA P-256, PKCS#8) and, for PKCS#1 / SEC1 keys, the openssl-made fixtures in
    //! tests/fixtures/tls (see gen.sh there).

    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{HandshakeKind, ProtocolVersion, ServerConfig};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    // ---------- PKI ----------

    struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            Ca { issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap() }
        }
        fn pem(&self) -> String {
            self.issuer.pem()
        }
        fn der(&self) -> CertificateDer<'static> {
            self.issuer.der().clone()
        }
        fn leaf(&self, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(DnType::CommonName, "metricsd test leaf");
            p.extended_key_usages = vec![usage];
            p.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &self.issuer).unwrap();
            Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone(), key_der: PrivateKeyDer::Pkcs8(key.serialize_der().into()) }
        }
        fn server(&self) -> Leaf {
            self.leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)
        }
        fn client(&self) -> Leaf {
            self.leaf(&[], ExtendedKeyUsagePurpose::ClientAuth)
        }
    }

    struct Leaf {
        cert_pem: String,
        key_pem: String,
        der: CertificateDer<'static>,
        key_der: PrivateKeyDer<'static>,
    }

    struct Files(tempfile::TempDir);

    impl Files {
        fn new() -> Files {
            Files(tempfile::tempdir().unwrap())
        }
        fn write(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.0.path().join(name);
            fs::write(&path, contents).unwrap();
            path
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
    }

    /// A client section trusting `ca`, with the files written into `files`.
    fn trusting(files: &Files, ca: &Ca) -> TlsConfig {
        TlsConfig { enabled: true, ca_file: Some(files.write("ca.pem", &ca.pem())), ..TlsConfig::default() }
    }

    fn with_client_cert(mut cfg: TlsConfig, files: &Files, leaf: &Leaf) -> TlsConfig {
        cfg.cert_file = Some(files.write("client.pem", &leaf.cert_pem));
        cfg.key_file = Some(files.write("client.key", &leaf.key_pem));
        cfg
    }

    // ---------- server ----------

    #[derive(Default)]
    struct ServerOpts {
        versions: Option<Vec<&'static SupportedProtocolVersion>>,
        suites: Option<Vec<SupportedCipherSuite>>,
        client_ca: Option<CertificateDer<'static>>,
        alpn: Vec<Vec<u8>>,
    }

    fn server_config(leaf: &Leaf, opts: ServerOpts) -> Arc<ServerConfig> {
        let mut provider = ring::default_provider();
        if let Some(suites) = opts.suites {
            provider.cipher_suites = suites;
        }
        let provider = Arc::new(provider);
        let versions = opts.versions.unwrap_or_else(|| vec![&rustls::version::TLS12, &rustls::version::TLS13]);
        let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions).unwrap();
        let builder = match opts.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca).unwrap();
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(vec![leaf.der.clone()], leaf.key_der.clone_key()).unwrap();
        config.alpn_protocols = opts.alpn;
        Arc::new(config)
    }

    /// What the server saw of one connection: the client's certificate, if any.
    type Served = Result<Option<CertificateDer<'static>>, io::Error>;

    /// Serves `connections` connections one after the other: handshake, write "ok", close.
    async fn serve(config: Arc<ServerConfig>, connections: usize) -> (SocketAddr, tokio::task::JoinHandle<Vec<Served>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..connections {
                let (tcp, _) = listener.accept().await.unwrap();
                let result = async {
                    let mut tls = acceptor.accept(tcp).await?;
                    let peer = tls.get_ref().1.peer_certificates().map(|c| c[0].clone());
                    tls.write_all(b"ok").await?;
                    tls.shutdown().await?;
                    Ok(peer)
                }
                .await;
                seen.push(result);
            }
            seen
        });
        (addr, task)
    }

    #[derive(Debug)]
    struct Connected {
        body: String,
        version: Option<ProtocolVersion>,
        suite: Option<rustls::CipherSuite>,
        kind: Option<HandshakeKind>,
        alpn: Option<Vec<u8>>,
    }

    /// Connects with `config`, verifying `name`, and reads until the server closes.
    async fn connect(config: Arc<ClientConfig>, addr: SocketAddr, name: &str) -> io::Result<Connected> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
        let conn = tls.get_ref().1;
        let (version, suite, alpn) = (conn.protocol_version(), conn.negotiated_cipher_suite().map(|s| s.suite()), conn.alpn_protocol().map(<[u8]>::to_vec));
        let kind = conn.handshake_kind();
        let mut body = String::new();
        tls.read_to_string(&mut body).await?;
        Ok(Connected { body, version, suite, kind, alpn })
    }

    /// One connection from `client` (a `TlsConfig`) to a server: client and server outcomes.
    async fn handshake(client: &TlsConfig, server: Arc<ServerConfig>, url_host: &str) -> (io::Result<Connected>, Served) {
        let config = Arc::new(client.client_config(Vec::new()).expect("client config"));
        let (addr, task) = serve(server, 1).await;
        let name = client.server_name_for(url_host).to_owned();
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            let client = connect(config, addr, &name).await;
            let served = task.await.unwrap().pop().unwrap();
            (client, served)
        })
        .await
        .expect("handshake timed out");
        result
    }

    fn rustls_error(e: &io::Error) -> &rustls::Error {
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).unwrap_or_else(|| panic!("not a rustls error: {e:?}"))
    }

    fn ok(result: io::Result<Connected>) -> Connected {
        let connected = result.expect("connection should succeed");
        assert_eq!(connected.body, "ok");
        connected
    }

    // ---------- handshakes ----------

    #[tokio::test]
    async fn server_authentication_with_a_ca_file_connects() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts::default());
        let (client, served) = handshake(&trusting(&files, &ca), server, "localhost").await;
        let connected = ok(client);
        assert_eq!(connected.version, Some(ProtocolVersion::TLSv1_3));
        assert!(served.unwrap().is_none(), "no client certificate was configured");
    }

    #[tokio::test]
    async fn the_server_is_verified_by_ip_address_when_the_url_host_is_one() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts::default());
        let (client, _) = handshake(&trusting(&files, &ca), server, "127.0.0.1").await;
        ok(client);
    }

    #[tokio::test]
    async fn mutual_tls_presents_the_client_certificate() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let client_leaf = ca.client();
        let server = server_config(&ca.server(), ServerOpts { client_ca: Some(ca.der()), ..ServerOpts::default() });
        let cfg = with_client_cert(trusting(&files, &ca), &files, &client_leaf);
        let (client, served) = handshake(&cfg, server, "localhost").await;
        ok(client);
        assert_eq!(served.unwrap(), Some(client_leaf.der));
    }

    #[tokio::test]
    async fn a_server_signed_by_another_ca_fails_with_a_certificate_error() {
        let (files, ca, other) = (Files::new(), Ca::new("ca"), Ca::new("other"));
        let server = server_config(&ca.server(), ServerOpts::default());
        let (client, served) = handshake(&trusting(&files, &other), server, "localhost").await;
        let err = client.unwrap_err();
        assert!(matches!(rustls_error(&err), rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)), "{err:?}");
        assert!(served.is_err());
    }

    #[tokio::test]
    async fn a_missing_client_certificate_against_an_mtls_server_fails() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts { client_ca: Some(ca.der()), ..ServerOpts::default() });
        let (client, served) = handshake(&trusting(&files, &ca), server, "localhost").await;
        // TLS 1.3: the client finishes first and learns of the rejection from the server's alert.
        let err = client.unwrap_err();
        assert!(matches!(rustls_error(&err), rustls::Error::AlertReceived(_)), "{err:?}");
        let served = served.unwrap_err();
        assert!(matches!(rustls_error(&served), rustls::Error::NoCertificatesPresented), "{served:?}");
    }

    #[tokio::test]
    async fn a_server_name_the_certificate_does_not_cover_fails() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts::default());
        let cfg = TlsConfig { server_name: Some("metrics.example.com".into()), ..trusting(&files, &ca) };
        let (client, _) = handshake(&cfg, server, "localhost").await;
        let err = client.unwrap_err();
        assert!(
            matches!(
                rustls_error(&err),
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. })
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn server_name_overrides_the_url_host() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.leaf(&["collector.internal"], ExtendedKeyUsagePurpose::ServerAuth), ServerOpts::default());
        let cfg = TlsConfig { server_name: Some("collector.internal".into()), ..trusting(&files, &ca) };
        let (client, _) = handshake(&cfg, server, "127.0.0.1").await;
        ok(client);
    }

    #[tokio::test]
    async fn a_tls13_only_server_rejects_max_version_tls12_and_accepts_the_default() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let leaf = ca.server();
        let tls13_only = || server_config(&leaf, ServerOpts { versions: Some(vec![&rustls::version::TLS13]), ..ServerOpts::default() });
        let capped = TlsConfig { max_version: Some("TLS1.2".into()), ..trusting(&files, &ca) };
        let (client, _) = handshake(&capped, tls13_only(), "localhost").await;
        let err = client.unwrap_err();
        assert!(matches!(rustls_error(&err), rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)), "{err:?}");

        let (client, _) = handshake(&trusting(&files, &ca), tls13_only(), "localhost").await;
        assert_eq!(ok(client).version, Some(ProtocolVersion::TLSv1_3));
    }

    #[tokio::test]
    async fn a_tls12_only_server_rejects_min_version_tls13_and_accepts_the_default() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let leaf = ca.server();
        let tls12_only = || server_config(&leaf, ServerOpts { versions: Some(vec![&rustls::version::TLS12]), ..ServerOpts::default() });
        let tls13 = TlsConfig { min_version: Some("TLS1.3".into()), ..trusting(&files, &ca) };
        let (client, _) = handshake(&tls13, tls12_only(), "localhost").await;
        let err = client.unwrap_err();
        assert!(matches!(rustls_error(&err), rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)), "{err:?}");

        let (client, _) = handshake(&trusting(&files, &ca), tls12_only(), "localhost").await;
        assert_eq!(ok(client).version, Some(ProtocolVersion::TLSv1_2));
    }

    #[tokio::test]
    async fn a_cipher_list_the_server_does_not_share_fails_and_a_shared_one_is_used() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let leaf = ca.server();
        let server = || {
            server_config(
                &leaf,
                ServerOpts {
                    versions: Some(vec![&rustls::version::TLS12]),
                    suites: Some(vec![ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]),
                    ..ServerOpts::default()
                },
            )
        };
        let unshared = TlsConfig { cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into()], ..trusting(&files, &ca) };
        let (client, _) = handshake(&unshared, server(), "localhost").await;
        let err = client.unwrap_err();
        assert!(matches!(rustls_error(&err), rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)), "{err:?}");

        let shared = TlsConfig {
            cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(), "tls_ecdhe_ecdsa_with_aes_256_gcm_sha384".into()],
            ..trusting(&files, &ca)
        };
        let (client, _) = handshake(&shared, server(), "localhost").await;
        assert_eq!(ok(client).suite, Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384));
    }

    #[tokio::test]
    async fn a_cipher_list_of_tls12_suites_leaves_tls13_at_its_defaults_as_metricsd_did() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts::default());
        let cfg = TlsConfig {
            cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(), "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into()],
            ..trusting(&files, &ca)
        };
        let (client, _) = handshake(&cfg, server, "localhost").await;
        assert_eq!(ok(client).version, Some(ProtocolVersion::TLSv1_3));
    }

    #[tokio::test]
    async fn listed_tls13_suites_restrict_tls13() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts::default());
        let cfg = TlsConfig { cipher_suites: vec!["TLS_CHACHA20_POLY1305_SHA256".into()], ..trusting(&files, &ca) };
        let (client, _) = handshake(&cfg, server, "localhost").await;
        assert_eq!(ok(client).suite, Some(rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
    }

    #[tokio::test]
    async fn a_ca_bundle_with_two_certificates_trusts_both() {
        let (files, ca, other) = (Files::new(), Ca::new("ca"), Ca::new("other"));
        // The right CA second: every certificate of the bundle must be loaded.
        let bundle = format!("# bundle\n{}\n{}", other.pem(), ca.pem());
        let cfg = TlsConfig { enabled: true, ca_file: Some(files.write("bundle.pem", &bundle)), ..TlsConfig::default() };
        cfg.validate().unwrap();
        let server = server_config(&ca.server(), ServerOpts::default());
        let (client, _) = handshake(&cfg, server, "localhost").await;
        ok(client);
    }

    async fn mtls_with_fixture_key(cert: &str, key: &str, expect_marker: &str) {
        let key_path = fixture(key);
        assert!(fs::read_to_string(&key_path).unwrap().starts_with(expect_marker), "fixture {key} is not in the expected encoding");
        let fixture_ca = CertificateDer::from_pem_file(fixture("ca.pem")).unwrap();
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts { client_ca: Some(fixture_ca), ..ServerOpts::default() });
        let cfg = TlsConfig { cert_file: Some(fixture(cert)), key_file: Some(key_path), ..trusting(&files, &ca) };
        cfg.validate().unwrap();
        let (client, served) = handshake(&cfg, server, "localhost").await;
        ok(client);
        let expected = CertificateDer::from_pem_file(fixture(cert)).unwrap();
        assert_eq!(served.unwrap(), Some(expected));
    }

    #[tokio::test]
    async fn a_pkcs1_rsa_client_key_loads_and_authenticates() {
        mtls_with_fixture_key("client-rsa.pem", "client-rsa.key", "-----BEGIN RSA PRIVATE KEY-----").await;
    }

    #[tokio::test]
    async fn a_sec1_ec_client_key_loads_and_authenticates() {
        mtls_with_fixture_key("client-ec.pem", "client-ec.key", "-----BEGIN EC PRIVATE KEY-----").await;
    }

    #[tokio::test]
    async fn certificate_and_key_may_share_one_file() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let client_leaf = ca.client();
        let both = files.write("client-both.pem", &format!("{}{}", client_leaf.key_pem, client_leaf.cert_pem));
        let cfg = TlsConfig { cert_file: Some(both.clone()), key_file: Some(both), ..trusting(&files, &ca) };
        let server = server_config(&ca.server(), ServerOpts { client_ca: Some(ca.der()), ..ServerOpts::default() });
        let (client, served) = handshake(&cfg, server, "localhost").await;
        ok(client);
        assert_eq!(served.unwrap(), Some(client_leaf.der));
    }

    #[tokio::test]
    async fn insecure_skip_verify_connects_to_an_untrusted_server_under_any_name() {
        let untrusted = Ca::new("nobody trusts me");
        let server = server_config(&untrusted.server(), ServerOpts::default());
        let cfg = TlsConfig { enabled: true, insecure_skip_verify: true, server_name: Some("not-the-name.example".into()), ..TlsConfig::default() };
        let (client, _) = handshake(&cfg, server, "localhost").await;
        ok(client);
    }

    #[tokio::test]
    async fn alpn_protocols_are_offered() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let server = server_config(&ca.server(), ServerOpts { alpn: vec![b"h2".to_vec()], ..ServerOpts::default() });
        let config = Arc::new(trusting(&files, &ca).client_config(vec![b"h2".to_vec()]).unwrap());
        let (addr, _task) = serve(server, 1).await;
        let connected = ok(connect(config, addr, "localhost").await);
        assert_eq!(connected.alpn.as_deref(), Some(&b"h2"[..]));
    }

    async fn second_handshake_kind(cfg: &TlsConfig) -> Option<HandshakeKind> {
        let ca = Ca::new("ca");
        let files = Files::new();
        let cfg = TlsConfig { ca_file: Some(files.write("ca.pem", &ca.pem())), ..cfg.clone() };
        let server = server_config(&ca.server(), ServerOpts::default());
        let config = Arc::new(cfg.client_config(Vec::new()).unwrap());
        let (addr, task) = serve(server, 2).await;
        let first = ok(connect(config.clone(), addr, "localhost").await);
        assert_eq!(first.kind, Some(HandshakeKind::Full));
        let second = ok(connect(config, addr, "localhost").await);
        task.await.unwrap();
        second.kind
    }

    #[tokio::test]
    async fn sessions_are_resumed_by_default_and_not_with_session_tickets_false() {
        let on = TlsConfig { enabled: true, ..TlsConfig::default() };
        assert_eq!(second_handshake_kind(&on).await, Some(HandshakeKind::Resumed));
        let off = TlsConfig { session_tickets: Some(false), ..on };
        assert_eq!(second_handshake_kind(&off).await, Some(HandshakeKind::Full));
    }

    #[tokio::test]
    async fn client_config_rereads_rotated_certificates_so_sighup_can_reload() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let (old, new) = (ca.client(), ca.client());
        let cfg = with_client_cert(trusting(&files, &ca), &files, &old);
        let mtls = || server_config(&ca.server(), ServerOpts { client_ca: Some(ca.der()), ..ServerOpts::default() });
        let (_, served) = handshake(&cfg, mtls(), "localhost").await;
        assert_eq!(served.unwrap(), Some(old.der));
        // Rotate the files in place; the same TlsConfig builds with the new pair.
        with_client_cert(cfg.clone(), &files, &new);
        let (_, served) = handshake(&cfg, mtls(), "localhost").await;
        assert_eq!(served.unwrap(), Some(new.der));
    }

    // ---------- configuration errors ----------

    #[test]
    fn tls10_is_rejected_naming_min_version() {
        for value in ["TLS1.0", "TLS1.1", "1.0", "tls11", "SSLv3"] {
            let cfg = TlsConfig { enabled: true, min_version: Some(value.into()), insecure_skip_verify: true, ..TlsConfig::default() };
            let err = cfg.validate().unwrap_err();
            assert!(matches!(&err, TlsError::UnsupportedVersion { option: "min_version", value: v } if v == value), "{value}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains("min_version") && msg.contains("not supported by rustls"), "{msg}");
        }
        let cfg = TlsConfig { max_version: Some("TLS1.1".into()), ..TlsConfig::default() };
        assert!(matches!(cfg.client_config(Vec::new()), Err(TlsError::UnsupportedVersion { option: "max_version", .. })));
    }

    #[test]
    fn version_spellings_are_accepted_and_nonsense_is_named() {
        for (min, max) in [("TLS1.2", "TLS1.3"), ("1.2", "1.3"), ("tlsv1.2", "VersionTLS13"), ("", "")] {
            let cfg = TlsConfig { min_version: Some(min.into()), max_version: Some(max.into()), ..TlsConfig::default() };
            assert_eq!(cfg.version_range().unwrap(), (TlsVersion::V12, TlsVersion::V13), "{min}..{max}");
        }
        let cfg = TlsConfig { max_version: Some("TLS2".into()), ..TlsConfig::default() };
        assert!(matches!(cfg.version_range(), Err(TlsError::InvalidVersion { option: "max_version", .. })));
        let cfg = TlsConfig { min_version: Some("TLS1.3".into()), max_version: Some("TLS1.2".into()), ..TlsConfig::default() };
        assert!(matches!(cfg.version_range(), Err(TlsError::VersionRange { .. })));
    }

    #[test]
    fn cbc_and_rsa_key_exchange_suites_are_rejected_naming_the_suite() {
        for name in
            ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA"]
        {
            let cfg = TlsConfig { cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(), name.into()], ..TlsConfig::default() };
            let err = cfg.client_config(Vec::new()).unwrap_err();
            assert!(matches!(&err, TlsError::UnsupportedCipher { name: n, .. } if n == name), "{err:?}");
            assert!(err.to_string().contains(name), "{err}");
        }
        let cfg = TlsConfig { cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_512_GCM".into()], ..TlsConfig::default() };
        assert!(matches!(cfg.client_config(Vec::new()), Err(TlsError::UnknownCipher { .. })));
    }

    #[test]
    fn suites_that_no_allowed_version_can_use_are_an_error() {
        let cfg = TlsConfig { max_version: Some("TLS1.2".into()), cipher_suites: vec!["TLS_AES_128_GCM_SHA256".into()], ..TlsConfig::default() };
        assert!(matches!(cfg.client_config(Vec::new()), Err(TlsError::NoUsableCipher { .. })));
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_fails_validation() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let (a, b) = (ca.client(), ca.client());
        let cfg = TlsConfig { cert_file: Some(files.write("a.pem", &a.cert_pem)), key_file: Some(files.write("b.key", &b.key_pem)), ..trusting(&files, &ca) };
        let err = cfg.validate().unwrap_err();
        assert!(matches!(&err, TlsError::KeyMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("a.pem") && msg.contains("b.key"), "{msg}");
        // The fixtures too: an RSA key against an EC certificate.
        let cfg = TlsConfig { cert_file: Some(fixture("client-ec.pem")), key_file: Some(fixture("client-rsa.key")), ..cfg };
        assert!(matches!(cfg.validate(), Err(TlsError::KeyMismatch { .. })));
    }

    #[test]
    fn file_problems_name_the_option_and_the_file() {
        let (files, ca) = (Files::new(), Ca::new("ca"));
        let missing = files.0.path().join("nope.pem");
        let cfg = TlsConfig { ca_file: Some(missing.clone()), ..trusting(&files, &ca) };
        let err = cfg.validate().unwrap_err();
        assert!(matches!(&err, TlsError::ReadFile { option: "ca_file", path, .. } if *path == missing));
        assert!(err.to_string().contains("nope.pem"));

        let cfg = TlsConfig { ca_file: Some(files.write("empty.pem", "not a certificate\n")), ..trusting(&files, &ca) };
        assert!(matches!(cfg.validate(), Err(TlsError::NoCertificates { option: "ca_file", .. })));

        let leaf = ca.client();
        let cfg = TlsConfig {
            cert_file: Some(files.write("c.pem", &leaf.cert_pem)),
            key_file: Some(files.write("nokey.pem", &leaf.cert_pem)),
            ..trusting(&files, &ca)
        };
        assert!(matches!(cfg.validate(), Err(TlsError::NoKey { .. })));

        let cfg = TlsConfig { key_file: Some(fixture("client-ec-encrypted.key")), cert_file: Some(fixture("client-ec.pem")), ..trusting(&files, &ca) };
        assert!(matches!(cfg.validate(), Err(TlsError::EncryptedKey { .. })));

        let cfg = TlsConfig { cert_file: Some(fixture("client-ec.pem")), ..trusting(&files, &ca) };
        assert!(matches!(cfg.validate(), Err(TlsError::IncompleteClientCert { set: "cert_file", missing: "key_file" })));
    }

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
    fn no_system_roots_is_a_clear_error_and_found_ones_are_used() {
        let err = system_roots(rustls_native_certs::CertificateResult::default()).unwrap_err();
        assert!(matches!(err, TlsError::NoSystemRoots { .. }));
        assert!(err.to_string().contains("ca_file"), "{err}");

        let mut found = rustls_native_certs::CertificateResult::default();
        found.certs.push(Ca::new("system").der());
        assert_eq!(system_roots(found).unwrap().len(), 1);
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
