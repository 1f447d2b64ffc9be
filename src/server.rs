//! The HTTP server: `/health` (metricsd's liveness answer), `/ready`, `/status` and `/metrics`.
//!
//! ```text
//! GET /health  → {"status":"healthy","timestamp":"2025-11-05T12:34:56Z","uptime":"1h23m45s"}
//! GET /ready   → 200 "ready" once a batch was collected and (with exporters) one was delivered; else 503
//! GET /status  → {"version":…,"resource":{…},"collectors":{…},"last_tick":{…},"exporters":[…],"receiver":{…}|null}
//! GET /metrics → the latest batch in the Prometheus text format (names per `translate`)
//! ```
//!
//! Written on hyper directly: four routes do not earn a web framework's weight.
//!
//! **Nothing a client does stalls it.** `/metrics` and `/status` are rendered on blocking
//! threads, at most [`MAX_CONCURRENT_RENDERS`] at a time (more wait for a slot), so a large
//! batch's render (a second for 357k series) never holds up `/health` or the exporters on
//! the async workers. At most [`conns::DEFAULT_MAX_CONNECTIONS`] connections are kept, the
//! oldest idle one closed for a new one (see [`conns`]); a client gets
//! [`HEADER_READ_TIMEOUT`] to send its headers, a connection without a request for
//! [`conns::IDLE_TIMEOUT`] is closed, and none lives longer than [`CONNECTION_LIFETIME`].
//! Running out of descriptors is logged once per episode (see [`accept`]).

pub mod accept;
pub mod config;
pub mod conns;

use crate::pipeline::AgentState;
use bytes::Bytes;
use conns::{Admission, Conn, Registry};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Responses rendered at once (each on a blocking thread); further `/metrics` and `/status`
/// requests wait for a slot. Two: one Prometheus and one person, or two HA Prometheus.
pub const MAX_CONCURRENT_RENDERS: usize = 2;

/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest the accept loop waits for shed connections to close before accepting more.
const SHED_WAIT: Duration = Duration::from_millis(100);

/// The longest a connection is kept, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

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

/// What the server shares between its connections.
struct Server {
    state: Arc<AgentState>,
    conns: Registry,
    accept: accept::AcceptErrors,
    renders: Arc<Semaphore>,
}

/// Serves requests on `listener` until `stop` fires, with the default connection cap.
pub async fn serve(listener: TcpListener, state: Arc<AgentState>, stop: tokio::sync::watch::Receiver<bool>) {
    serve_with(listener, state, stop, conns::DEFAULT_MAX_CONNECTIONS).await
}

/// Serves requests on `listener` until `stop` fires, keeping at most `max_connections`.
pub async fn serve_with(listener: TcpListener, state: Arc<AgentState>, mut stop: tokio::sync::watch::Receiver<bool>, max_connections: usize) {
    let srv = Arc::new(Server {
        state,
        conns: Registry::new(max_connections),
        accept: accept::AcceptErrors::default(),
        renders: Arc::new(Semaphore::new(MAX_CONCURRENT_RENDERS)),
    });
    loop {
        if srv.conns.len() > srv.conns.limit() {
            // Connections shed for newer ones are still closing: let them (bounded, in case
            // every one over the cap is rendering).
            tokio::select! {
                _ = tokio::time::timeout(SHED_WAIT, srv.conns.within_cap()) => {}
                _ = stop.changed() => return,
            }
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                if srv.accept.accepted(std::time::Instant::now()).is_some() {
                    srv.conns.restore();
                }
                stream
            }
            Err(e) => {
                if srv.accept.failed(&e, std::time::Instant::now()) == accept::Action::Backoff {
                    // Out of descriptors: idle connections' are the quickest to get back.
                    let limit = srv.conns.exhausted();
                    tracing::debug!(max_connections = limit, "Keeping fewer connections while descriptors are short");
                    tokio::select! {
                        _ = tokio::time::sleep(accept::EXHAUSTED_BACKOFF) => {}
                        _ = stop.changed() => return,
                    }
                }
                continue;
            }
        };
        match srv.conns.admit() {
            Admission::Serve(id, conn) => drop(tokio::spawn(serve_connection(srv.clone(), stream, id, conn))),
            Admission::Refuse => drop(stream),
        }
    }
}

/// Serves one connection until it ends, is shed, sits idle for too long or reaches its lifetime.
async fn serve_connection(srv: Arc<Server>, stream: TcpStream, id: u64, conn: Arc<Conn>) {
    let svc = {
        let (srv, conn) = (srv.clone(), conn.clone());
        hyper::service::service_fn(move |req| {
            let (srv, conn) = (srv.clone(), conn.clone());
            async move { Ok::<_, Infallible>(srv.handle(&req, &conn).await) }
        })
    };
    let http = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(http);
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    tokio::pin!(lifetime);
    loop {
        tokio::select! {
            _ = &mut http => break,
            _ = conn.closed() => break,
            _ = &mut lifetime => break,
            _ = tokio::time::sleep_until(conn.idle_deadline(&srv.conns)) => {
                if conn.is_idle_expired(&srv.conns, tokio::time::Instant::now()) {
                    srv.conns.idle_closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    srv.conns.remove(id);
}

impl Server {
    async fn handle(self: &Arc<Self>, req: &Request<Incoming>, conn: &Arc<Conn>) -> Response<Full<Bytes>> {
        conn.touch(&self.conns);
        let resp = if req.method() != Method::GET && req.method() != Method::HEAD {
            respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n")
        } else {
            match req.uri().path() {
                "/metrics" => self.render(conn, Self::metrics).await,
                "/status" => self.render(conn, Self::status).await,
                path => route(path, &self.state),
            }
        };
        conn.touch(&self.conns);
        resp
    }

    /// Runs `f` on a blocking thread once a render slot is free.
    async fn render(self: &Arc<Self>, conn: &Arc<Conn>, f: fn(&Server) -> Response<Full<Bytes>>) -> Response<Full<Bytes>> {
        let Ok(slot) = self.renders.clone().acquire_owned().await else {
            return respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "stopping\n");
        };
        let _rendering = conn.rendering();
        let srv = self.clone();
        // The slot goes with the render: a client that hangs up does not free it early.
        let job = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f(&srv)
        });
        match job.await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "Rendering a response failed");
                respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "render failed\n")
            }
        }
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        let latest = self.state.latest.read().unwrap().clone();
        let received = self.state.received.lock().unwrap().current(std::time::Instant::now());
        let mut out = String::new();
        let options = crate::translate::TranslateOptions::default();
        // With what apps pushed (`receivers.otlp.metrics_expiration`): one exposition. The
        // batch is read in place, never copied.
        match latest {
            Some(b) => b.render_text(&received, &options, &mut out),
            None => crate::translate::render_text(&crate::translate::translate_resources(&received, &options).0, &mut out),
        }
        respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", out)
    }

    fn status(&self) -> Response<Full<Bytes>> {
        let state = &self.state;
        let c = &self.conns;
        let received_on_metrics = {
            let r = state.received.lock().unwrap();
            r.is_on().then(|| serde_json::json!({"resources": r.resources(), "dropped": r.dropped}))
        };
        let body = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": state.started.elapsed().as_secs_f64(),
            "resource": *state.resource.read().unwrap(),
            "collectors": *state.collectors.lock().unwrap(),
            "last_tick": *state.tick.lock().unwrap(),
            "exporters": state.exporter_status(),
            "targets": state.scrape.read().unwrap().as_ref().map(|s| s.status()).unwrap_or_default(),
            "receiver": *state.receiver.lock().unwrap(),
            "received_on_metrics": received_on_metrics,
            "server": {
                "connections": c.len(),
                "max_connections": c.max(),
                "connections_limit": c.limit(),
                "connections_shed": c.shed.load(Ordering::Relaxed),
                "connections_refused": c.refused.load(Ordering::Relaxed),
                "connections_idle_closed": c.idle_closed.load(Ordering::Relaxed),
                "accept_errors": self.accept.total.load(Ordering::Relaxed),
            },
        });
        respond(StatusCode::OK, "application/json", serde_json::to_string_pretty(&body).unwrap_or_default())
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

/// The light routes, answered on the async worker.
fn route(path: &str, state: &AgentState) -> Response<Full<Bytes>> {
    match path {
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

    /// GET over a fresh connection (HTTP/1.0: the server closes after answering).
    async fn get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn health_answers_past_the_connection_cap_because_the_oldest_idle_connections_are_closed() {
        use tokio::io::AsyncReadExt;
        let l = bind("127.0.0.1", 0).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve_with(l, AgentState::new(Default::default()), stopped, 4));
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let health = tokio::time::timeout(Duration::from_secs(5), get(addr, "/health")).await.expect("/health answers in time");
        assert!(health.starts_with("HTTP/1.0 200") && health.contains("\"healthy\""), "{health}");
        // The first idle connection was closed for a newer one: it reads end-of-file.
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut byte)).await.expect("closed in time").unwrap_or(0);
        assert_eq!(n, 0);
        let status = tokio::time::timeout(Duration::from_secs(5), get(addr, "/status")).await.expect("/status answers in time");
        let json: serde_json::Value = serde_json::from_str(status.split_once("\r\n\r\n").unwrap().1).unwrap();
        let srv = &json["server"];
        assert_eq!(srv["max_connections"], 4);
        assert!(srv["connections"].as_u64().unwrap() <= 4, "{srv}");
        assert!(srv["connections_shed"].as_u64().unwrap() >= 17, "20 idle + 2 requests through 4 slots: {srv}");
        assert_eq!(srv["connections_refused"], 0);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server).await.expect("the server stops").unwrap();
    }
}
