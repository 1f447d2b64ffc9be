//! Assembling the rustls [`ClientConfig`] of a `tls` section: versions and suites, roots (the
//! CA file or the system's), the client certificate, ALPN, resumption, and the verifier that
//! `insecure_skip_verify` installs.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};

use super::pem::{load_ca_file, load_client_identity, system_roots};
use super::protocol::TlsVersion;
use super::{TlsConfig, TlsError};

impl TlsConfig {
    pub(super) fn build(&self, alpn: Vec<Vec<u8>>, warn: bool) -> Result<ClientConfig, TlsError> {
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

    use super::super::testutil::*;
    use super::*;
    use rcgen::ExtendedKeyUsagePurpose;
    use rustls::pki_types::pem::PemObject;
    use rustls::server::WebPkiClientVerifier;
    use rustls::{HandshakeKind, ProtocolVersion, RootCertStore, ServerConfig, SupportedCipherSuite};
    use std::fs;
    use std::io;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

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
}
