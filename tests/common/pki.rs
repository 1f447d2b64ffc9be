//! Test certificates from rcgen, written to a temporary directory for peers that read files
//! (the Collector, the agent): a CA, a server certificate for localhost / 127.0.0.1 and a
//! client certificate; files `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`.

pub struct Pki {
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    rcgen::CertifiedIssuer::self_signed(p, rcgen::KeyPair::generate().unwrap()).unwrap()
}

fn leaf(issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, sans: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, "metricsd test");
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("metricsd test CA");
        let (server_cert, server_key) = leaf(&ca, &["localhost", "127.0.0.1"], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf(&ca, &[], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        for (name, text) in
            [("ca.pem", ca.pem()), ("server.pem", server_cert), ("server.key", server_key), ("client.pem", client_cert), ("client.key", client_key)]
        {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Pki { dir }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}
