//! Reading the PEM files of a `tls` section: the CA bundle (`ca_file`), the client certificate
//! chain and its key (`cert_file`, `key_file`: PKCS#8, PKCS#1 or SEC1, checked to match), and
//! the system's roots when no CA file is given.

use std::fs;
use std::path::Path;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, RootCertStore};

use super::TlsError;

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

pub(super) fn load_ca_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certs("ca_file", path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|source| TlsError::BadCertificate { option: "ca_file", path: path.to_owned(), index: i + 1, source })?;
    }
    Ok(roots)
}

pub(super) fn system_roots(found: rustls_native_certs::CertificateResult) -> Result<RootCertStore, TlsError> {
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

pub(super) fn load_client_identity(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
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

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::TlsConfig;
    use super::*;

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
    fn no_system_roots_is_a_clear_error_and_found_ones_are_used() {
        let err = system_roots(rustls_native_certs::CertificateResult::default()).unwrap_err();
        assert!(matches!(err, TlsError::NoSystemRoots { .. }));
        assert!(err.to_string().contains("ca_file"), "{err}");

        let mut found = rustls_native_certs::CertificateResult::default();
        found.certs.push(Ca::new("system").der());
        assert_eq!(system_roots(found).unwrap().len(), 1);
    }
}
