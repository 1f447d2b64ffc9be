//! The HTTP server: `/health` (metricsd's liveness answer), `/ready`, `/status` and `/metrics`.
//!
//! ```text
//! GET /health  → {"status":"healthy","timestamp":"2025-11-05T12:34:56Z","uptime":"1h23m45s"}
//! GET /ready   → 200 "ready" once a batch was collected and (with exporters) one was delivered; else 503
//! GET /status  → {"version":…,"resource":{…},"collectors":{…},"last_tick":{…},"exporters":[…]}
//! GET /metrics → the latest batch in the Prometheus text format (names per `translate`)
//! ```
//!
//! Written on hyper directly: four routes do not earn a web framework's weight.

use crate::pipeline::AgentState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: String,
    /// The OS's reason (in use, permission, ...).
    pub source: std::io::Error,
}

/// Binds `host:port` (port 0 picks a free one).
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, BindError> {
    let addr = if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    TcpListener::bind(&addr).await.map_err(|source| BindError { addr, source })
}

/// Serves requests on `listener` until `stop` fires.
pub async fn serve(listener: TcpListener, state: Arc<AgentState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&req, &state)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

/// The local address a listener got.
pub fn local_addr(l: &TcpListener) -> Option<SocketAddr> {
    l.local_addr().ok()
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder().status(status).header("content-type", content_type).body(Full::new(body.into())).expect("static response parts are valid")
}

/// Go's `time.Duration` string as metricsd prints uptime: `1h23m45s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn route(req: &Request<Incoming>, state: &AgentState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n");
    }
    match req.uri().path() {
        "/health" | "/healthz" => {
            let body = serde_json::json!({
                "status": "healthy",
                "timestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                "uptime": go_duration(state.started.elapsed()),
            });
            respond(StatusCode::OK, "application/json", body.to_string())
        }
        "/ready" | "/readyz" => match state.is_ready() {
            Ok(()) => respond(StatusCode::OK, "text/plain", "ready\n"),
            Err(why) => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("not ready: {why}\n")),
        },
        "/status" => {
            let body = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": state.started.elapsed().as_secs_f64(),
                "resource": *state.resource.read().unwrap(),
                "collectors": *state.collectors.lock().unwrap(),
                "last_tick": *state.tick.lock().unwrap(),
                "exporters": state.exporter_status(),
                "targets": state.scrape.read().unwrap().as_ref().map(|s| s.status()).unwrap_or_default(),
            });
            respond(StatusCode::OK, "application/json", serde_json::to_string_pretty(&body).unwrap_or_default())
        }
        "/metrics" => {
            let latest = state.latest.read().unwrap().clone();
            let mut out = String::new();
            if let Some(b) = latest {
                let (families, _) = crate::translate::translate(&b.request, &crate::translate::TranslateOptions::default());
                crate::translate::render_text(&families, &mut out);
            }
            respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", out)
        }
        "/" => respond(
            StatusCode::OK,
            "text/html",
            "<html><body><h1>metricsd</h1><a href=\"/metrics\">/metrics</a> <a href=\"/status\">/status</a> <a href=\"/health\">/health</a></body></html>\n",
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_written_like_gos_duration() {
        assert_eq!(go_duration(Duration::from_secs(5025)), "1h23m45s");
        assert_eq!(go_duration(Duration::from_secs(65)), "1m5s");
        assert_eq!(go_duration(Duration::from_secs(7)), "7s");
    }
}
