//! What can be wrong with a `tls` section ([`TlsError`]); each variant names the option (and
//! file) at fault, e.g. `tls.key_file: /etc/k.pem is encrypted; metricsd needs an unencrypted key`.

use std::io;
use std::path::PathBuf;

use rustls::pki_types::pem;

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
