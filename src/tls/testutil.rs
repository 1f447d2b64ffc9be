//! Test PKI for the TLS tests: a CA made by rcgen that issues server and client leaves, files
//! written into a temporary directory, and the openssl-made fixtures of tests/fixtures/tls.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsConfig;

pub(super) struct Ca {
    pub(super) issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(super) fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca { issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap() }
    }
    pub(super) fn pem(&self) -> String {
        self.issuer.pem()
    }
    pub(super) fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }
    pub(super) fn leaf(&self, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, "metricsd test leaf");
        p.extended_key_usages = vec![usage];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone(), key_der: PrivateKeyDer::Pkcs8(key.serialize_der().into()) }
    }
    pub(super) fn server(&self) -> Leaf {
        self.leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)
    }
    pub(super) fn client(&self) -> Leaf {
        self.leaf(&[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

pub(super) struct Leaf {
    pub(super) cert_pem: String,
    pub(super) key_pem: String,
    pub(super) der: CertificateDer<'static>,
    pub(super) key_der: PrivateKeyDer<'static>,
}

pub(super) struct Files(pub(super) tempfile::TempDir);

impl Files {
    pub(super) fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }
    pub(super) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.path().join(name);
        fs::write(&path, contents).unwrap();
        path
    }
}

pub(super) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

/// A client section trusting `ca`, with the files written into `files`.
pub(super) fn trusting(files: &Files, ca: &Ca) -> TlsConfig {
    TlsConfig { enabled: true, ca_file: Some(files.write("ca.pem", &ca.pem())), ..TlsConfig::default() }
}

pub(super) fn with_client_cert(mut cfg: TlsConfig, files: &Files, leaf: &Leaf) -> TlsConfig {
    cfg.cert_file = Some(files.write("client.pem", &leaf.cert_pem));
    cfg.key_file = Some(files.write("client.key", &leaf.key_pem));
    cfg
}
