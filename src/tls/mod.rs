//! TLS for every outgoing connection: one rustls [`ClientConfig`] builder used by the OTLP gRPC
//! exporter, the remote-write and HTTP JSON exporters and the scrape client alike.
//!
//! - `config`: the `tls` section ([`TlsConfig`]) and what callers ask of it;
//! - `error`: what can be wrong with it ([`TlsError`]), naming the option and file;
//! - `protocol`: TLS versions and cipher suites, by metricsd's (Go's) names;
//! - `pem`: reading the CA bundle, client certificate and key, and the system roots;
//! - `client`: assembling the rustls [`ClientConfig`], and the `insecure_skip_verify` verifier;
//! - `server`: the server side ([`ServerTlsConfig`], the Collector's keys) for the OTLP receiver.
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
//! [`ClientConfig`]: rustls::ClientConfig
//!
//! ## Use
//!
//! ```ignore
//! let cfg = Arc::new(tls.client_config(vec![b"h2".to_vec()])?);       // gRPC
//! let cfg = Arc::new(tls.client_config(vec![b"http/1.1".to_vec()])?); // HTTP/1.1
//! let name = tls.server_name(url_host)?; // SNI and the name the certificate is checked against
//! let stream = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await?;
//! ```

mod client;
mod config;
mod error;
mod pem;
mod protocol;
mod server;

pub use config::TlsConfig;
pub use error::TlsError;
pub use server::ServerTlsConfig;

#[cfg(test)]
mod testutil;
