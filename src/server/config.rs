//! metricsd's `server` section: where the HTTP server listens and how it guards itself.

use serde::{Deserialize, Serialize};

/// Default bind address of the HTTP server: loopback, so a first run exposes nothing.
pub const DEFAULT_SERVER_HOST: &str = "127.0.0.1";
/// Default port of the HTTP server (metricsd's).
pub const DEFAULT_SERVER_PORT: u16 = 8080;

/// metricsd's `server` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Bind address (default `127.0.0.1`; metricsd's was `0.0.0.0`, our manifests set that).
    pub host: String,
    /// Port (default 8080).
    pub port: u16,
    /// Set `false` to run without the HTTP server.
    pub enabled: bool,
    /// Whether `/ready` also waits until an exporter has delivered a batch (default true);
    /// `false` makes it ready after the first collection, whatever the backends do.
    pub ready_requires_export: bool,
    /// Most connections kept open at once (default 256); past it the oldest idle one is closed
    /// for the new one, so a flood of idle connections cannot keep `/health` out.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: DEFAULT_SERVER_HOST.into(),
            port: DEFAULT_SERVER_PORT,
            enabled: true,
            ready_requires_export: true,
            max_connections: super::conns::DEFAULT_MAX_CONNECTIONS,
        }
    }
}
