//! TLS versions and cipher suites by the names metricsd (Go's `crypto/tls`) uses, e.g.
//! `min_version: TLS1.2`, `cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]`; what rustls
//! does not implement (TLS 1.0/1.1, CBC, RC4, 3DES, static RSA) is an error naming it.

use std::fmt;

use rustls::crypto::ring;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::{TlsConfig, TlsError};

impl TlsConfig {
    pub(super) fn version_range(&self) -> Result<(TlsVersion, TlsVersion), TlsError> {
        let min = parse_version("min_version", self.min_version.as_deref())?.unwrap_or(TlsVersion::V12);
        let max = parse_version("max_version", self.max_version.as_deref())?.unwrap_or(TlsVersion::V13);
        if min > max {
            return Err(TlsError::VersionRange { min: min.to_string(), max: max.to_string() });
        }
        Ok((min, max))
    }

    /// The suites to offer, in rustls' preference order, for the versions in `min..=max`.
    pub(super) fn selected_suites(&self, min: TlsVersion, max: TlsVersion) -> Result<Vec<SupportedCipherSuite>, TlsError> {
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
pub(super) enum TlsVersion {
    V12,
    V13,
}

impl TlsVersion {
    pub(super) fn rustls(self) -> &'static SupportedProtocolVersion {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
