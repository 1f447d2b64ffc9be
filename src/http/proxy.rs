//! Which proxy, if any, a connection goes through: a `proxy_url` from the config, or else the
//! environment's `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (and their lower-case
//! forms), read by hyper-util's [`Matcher`] with curl's rules.
//!
//! As in Go's `net/http` (the Go metricsd, the Collector, Prometheus) and grpc-go, the
//! environment never proxies `localhost` or a loopback address; a `proxy_url` proxies every
//! destination of its exporter or target. gRPC is looked up as an `https` destination (so
//! `HTTPS_PROXY` applies whatever the endpoint's scheme), as grpc-go does.
//!
//! A [`ProxyUrl`] never shows its password: `Debug`, `Display` and `Serialize` (hence
//! `--check-config` and `/status`) print `<redacted>` in its place.

use hyper::header::HeaderValue;
use hyper::Uri;
use hyper_util::client::proxy::matcher::Matcher;
use std::fmt;
use std::sync::Arc;

/// A `proxy_url` as written in the config: `http://[user[:password]@]host[:port]` or
/// `https://…` (TLS to the proxy itself).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(String);

/// A proxy chosen for a destination: where it is and the `Proxy-Authorization` to send it.
#[derive(Clone, PartialEq, Eq)]
pub struct Route {
    /// `http://host:port/` or `https://host:port/` of the proxy (credentials stripped).
    pub uri: Uri,
    /// `Basic …` from the URL's user and password, if it has them.
    pub auth: Option<HeaderValue>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Route({}{})", self.uri, if self.auth.is_some() { " with credentials" } else { "" })
    }
}

/// Where the proxies of one client come from.
#[derive(Clone, Debug)]
pub enum Proxies {
    /// The environment, read once when the client was made.
    Env(Arc<Matcher>),
    /// A `proxy_url`, for every destination.
    Fixed(Route),
}

impl ProxyUrl {
    /// The URL as written (with its password): only for building the route.
    pub fn new(raw: impl Into<String>) -> Self {
        ProxyUrl(raw.into())
    }

    /// The proxy's route, or why the URL cannot be one (the message names `proxy_url`).
    pub fn route(&self) -> Result<Route, String> {
        let shown = self.to_string();
        let (scheme, rest) = self.0.trim().split_once("://").ok_or_else(|| format!("`proxy_url` {shown:?} must start with http:// or https://"))?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            return Err(format!("`proxy_url` {shown:?}: scheme {scheme:?} is not supported (http or https)"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(format!("`proxy_url` {shown:?} has no host"));
        }
        // A port is digits up to 65535 (hyper would silently ignore a larger one).
        let port = match host_port.rsplit_once(':') {
            Some((h, _)) if !h.ends_with(']') && h.contains(':') => None, // bare IPv6, no port
            Some((_, p)) => Some(p),
            None => None,
        };
        if let Some(p) = port {
            if p.parse::<u16>().is_err() || p.starts_with('+') {
                return Err(format!("`proxy_url` {shown:?}: port {p:?} is not a number from 0 to 65535"));
            }
        }
        let m = Matcher::builder().all(self.0.trim()).build();
        let i = m.intercept(&Uri::from_static("https://destination.invalid/")).ok_or_else(|| format!("`proxy_url` {shown:?} is not a URL"))?;
        Ok(Route { uri: i.uri().clone(), auth: i.basic_auth().cloned() })
    }
}

impl fmt::Display for ProxyUrl {
    /// The URL with its password (not its user) replaced by `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.trim();
        let start = s.find("://").map_or(0, |i| i + 3);
        let end = s[start..].find(['/', '?', '#']).map_or(s.len(), |i| start + i);
        match s[start..end].rfind('@') {
            Some(at) => {
                let userinfo = &s[start..start + at];
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                let hidden = if userinfo.contains(':') { ":<redacted>" } else { "" };
                write!(f, "{}{user}{hidden}{}", &s[..start], &s[start + at..])
            }
            None => f.write_str(s),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

impl serde::Serialize for ProxyUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ProxyUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ProxyUrl)
    }
}

/// Problems with an optional `proxy_url`, for a config's `validate`.
pub fn validate(proxy_url: Option<&ProxyUrl>) -> Vec<String> {
    proxy_url.and_then(|p| p.route().err()).into_iter().collect()
}

impl Proxies {
    /// A `proxy_url` when there is one, else the environment.
    pub fn new(proxy_url: Option<&ProxyUrl>) -> Result<Self, String> {
        match proxy_url {
            Some(p) => Ok(Proxies::Fixed(p.route()?)),
            None => Ok(Proxies::Env(Arc::new(Matcher::from_env()))),
        }
    }

    /// The proxy for `dst` (an `http`/`https` URL), if it goes through one.
    pub fn route(&self, dst: &Uri) -> Option<Route> {
        match self {
            Proxies::Fixed(r) => Some(r.clone()),
            Proxies::Env(m) => {
                let host = dst.host()?;
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if loopback {
                    return None;
                }
                let i = m.intercept(dst)?;
                Some(Route { uri: i.uri().clone(), auth: i.basic_auth().cloned() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(http: &str, https: &str, no: &str) -> Proxies {
        Proxies::Env(Arc::new(Matcher::builder().http(http).https(https).no(no).build()))
    }

    fn via(p: &Proxies, dst: &str) -> Option<String> {
        p.route(&dst.parse().unwrap()).map(|r| r.uri.authority().unwrap().to_string())
    }

    #[test]
    fn the_environment_picks_the_proxy_by_scheme_and_no_proxy_and_loopback_go_direct() {
        let p = env("http://plain:3128", "http://secure:3128", "internal.example,10.0.0.0/8");
        assert_eq!(via(&p, "http://backend.example/api").as_deref(), Some("plain:3128"));
        assert_eq!(via(&p, "https://backend.example/api").as_deref(), Some("secure:3128"));
        assert_eq!(via(&p, "https://collector.internal.example:4318/"), None);
        assert_eq!(via(&p, "http://10.1.2.3:9100/metrics"), None);
        assert_eq!(via(&p, "http://127.0.0.1:9100/metrics"), None, "loopback is never proxied by the environment");
        assert_eq!(via(&p, "http://localhost:9100/metrics"), None);
        assert_eq!(via(&p, "http://[::1]:9100/metrics"), None);
        assert_eq!(via(&env("", "", ""), "https://backend.example/"), None);
    }

    #[test]
    fn a_proxy_url_proxies_everything_and_carries_its_credentials_as_basic_auth() {
        let p = Proxies::new(Some(&ProxyUrl::new("http://agent:s%3Acret@proxy.corp:8080"))).unwrap();
        for dst in ["http://127.0.0.1:9100/metrics", "https://backend.example/"] {
            let r = p.route(&dst.parse().unwrap()).unwrap();
            assert_eq!(r.uri.to_string(), "http://proxy.corp:8080/");
            // base64("agent:s:cret")
            assert_eq!(r.auth.as_ref().unwrap(), "Basic YWdlbnQ6czpjcmV0");
        }
        assert_eq!(ProxyUrl::new("https://proxy.corp").route().unwrap().auth, None);
    }

    #[test]
    fn proxy_url_passwords_are_redacted_in_display_debug_and_serialized_config() {
        let p = ProxyUrl::new("http://agent:hunter2@proxy.corp:8080/");
        assert_eq!(p.to_string(), "http://agent:<redacted>@proxy.corp:8080/");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"http://agent:<redacted>@proxy.corp:8080/\"");
        assert!(!format!("{:?}", p.route().unwrap()).contains("hunter2"));
        assert_eq!(ProxyUrl::new("http://proxy.corp:8080").to_string(), "http://proxy.corp:8080");
        assert_eq!(ProxyUrl::new("http://agent@proxy.corp").to_string(), "http://agent@proxy.corp");
    }

    #[test]
    fn bad_schemes_ports_and_hosts_are_errors_naming_proxy_url_without_the_password() {
        for (url, want) in [
            ("socks5://proxy:1080", "not supported"),
            ("proxy.corp:3128", "must start with"),
            ("http://proxy.corp:70000", "0 to 65535"),
            ("http://u:hunter2@proxy.corp:99999", "0 to 65535"),
            ("http://proxy.corp:-1", "0 to 65535"),
            ("http://:3128", "no host"),
        ] {
            let e = ProxyUrl::new(url).route().unwrap_err();
            assert!(e.starts_with("`proxy_url`") && e.contains(want), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert!(validate(Some(&ProxyUrl::new("http://[::1]:3128"))).is_empty());
        assert!(validate(None).is_empty());
    }
}
