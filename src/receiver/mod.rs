//! The OTLP receiver (metrics): applications beside the agent push OTLP to it on localhost,
//! and what they send goes out through every exporter with the host's metrics, enriched with
//! the identity the agent detected.
//!
//! ```text
//! app ──gRPC MetricsService/Export──┐                            ┌► exporter queue (or spool)
//!     ──HTTP POST /v1/metrics───────┴► decode ► limits ► enrich ─┼► exporter queue ...
//!       (protobuf or JSON; gzip, zstd)                            └► (refused when any is full)
//! ```
//!
//! Answers follow the OTLP specification: a full queue is `RESOURCE_EXHAUSTED` with a
//! `RetryInfo` (gRPC) or 429 with `Retry-After` (HTTP); too large is `RESOURCE_EXHAUSTED` /
//! 413; malformed is `INVALID_ARGUMENT` / 400 naming what was wrong; points dropped (see
//! [`limits`]) are reported in a partial success. Every outcome is counted on `/status`
//! (`receiver`) and in self-telemetry; each distinct refusal is logged once.
//!
//! - `config`: the `receivers.otlp` section, the listeners and limits;
//! - `decode`: HTTP bodies: decompression bounded while it runs, protobuf and OTLP/JSON;
//! - `limits`: points dropped (no name, NaN in a counter, over the per-request limit);
//! - `enrich`: the agent's resource attributes a received resource lacks;
//! - `grpc`, `http`: the two protocols' answers;
//! - `listen`: the accept loop (TCP, optional TLS, HTTP/1.1 and HTTP/2), started by [`start`].

pub mod config;
pub mod decode;
pub mod enrich;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod listen;

pub use config::{OtlpReceiverConfig, ReceiversConfig};

use crate::pipeline::{AgentState, Batch};
use crate::status::ReceiverStatus;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The delay a client is asked to wait when the queues are full or too many requests run.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Distinct refusal reasons logged (each once); beyond, refusals are only counted.
const MAX_LOGGED_REASONS: usize = 64;

/// Why a request was refused; each maps to one `outcome` counter and one status per protocol.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The exporters' queues are full, or `max_concurrent_requests` run already.
    #[error("busy: {0}")]
    Busy(String),
    /// Over a size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Not a valid request.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Missing or wrong bearer token.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A media type or encoding the receiver does not take, or another path or method.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Refusal {
    /// The `outcome` label of the request counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::Busy(_) => "busy",
            Refusal::TooLarge(_) => "too_large",
            Refusal::Malformed(_) => "malformed",
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::Unsupported(_) => "unsupported",
        }
    }
}

impl From<decode::DecodeError> for Refusal {
    fn from(e: decode::DecodeError) -> Self {
        match e {
            decode::DecodeError::TooLarge { .. } => Refusal::TooLarge(e.to_string()),
            decode::DecodeError::Unsupported { .. } => Refusal::Unsupported(e.to_string()),
            decode::DecodeError::Compression { .. } | decode::DecodeError::Malformed { .. } => Refusal::Malformed(e.to_string()),
        }
    }
}

/// A request taken: points dropped from it (partial success when not zero) and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    /// Points dropped.
    pub rejected: u64,
    /// Why, for the partial success message.
    pub message: String,
}

/// What both protocols share: the agent's state (resource, exporters, counters), the limit on
/// requests at once, and the set of refusal reasons already logged.
pub struct Receiver {
    state: Arc<AgentState>,
    permits: Arc<Semaphore>,
    max_points: usize,
    logged: Mutex<HashSet<String>>,
}

impl Receiver {
    /// A receiver feeding `state`'s exporters; shows its counters in `state.receiver`.
    pub fn new(state: Arc<AgentState>, max_concurrent: usize, max_points: usize) -> Arc<Receiver> {
        state.receiver.lock().unwrap().get_or_insert_with(ReceiverStatus::default);
        Arc::new(Receiver { state, permits: Arc::new(Semaphore::new(max_concurrent.max(1))), max_points, logged: Mutex::new(HashSet::new()) })
    }

    /// A slot for one request, or [`Refusal::Busy`] when `max_concurrent_requests` run.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.permits.clone().try_acquire_owned().map_err(|_| Refusal::Busy("too many requests at once (receivers.otlp.max_concurrent_requests)".into()))
    }

    /// Whether every exporter's queue has room for a request now ([`Refusal::Busy`] naming
    /// the first that has none). The HTTP side asks before reading a body, and [`ingest`]
    /// again before handing the request over.
    ///
    /// [`ingest`]: Receiver::ingest
    pub fn has_room(&self) -> Result<(), Refusal> {
        match self.state.exporters.read().unwrap().iter().find(|h| !h.has_room()) {
            Some(full) => Err(Refusal::Busy(format!("the queue of exporter {} is full; retry later", full.status().name))),
            None => Ok(()),
        }
    }

    /// Applies the limits, enriches, and hands the request to every exporter; refused (busy)
    /// when any exporter's queue has no room. Counts the outcome.
    pub fn ingest(&self, mut req: ExportMetricsServiceRequest, protocol: &'static str) -> Result<Accepted, Refusal> {
        let (kept, dropped) = limits::apply(&mut req, self.max_points);
        if let Err(r) = self.has_room() {
            self.count_points(&[("refused", kept)]);
            return Err(self.refused(r, protocol));
        }
        let handles = self.state.exporters.read().unwrap().clone();
        if kept > 0 {
            let agent = self.state.resource.read().unwrap().clone();
            enrich::enrich(&mut req, &agent);
            {
                let mut kept = self.state.received.lock().unwrap();
                if kept.is_on() {
                    kept.keep(&req.resource_metrics, std::time::Instant::now());
                }
            }
            let batch = Arc::new(Batch::from_request(req, 0));
            let taken = handles.iter().map(|h| h.submit(batch.clone())).filter(|t| *t).count();
            if taken == 0 && !handles.is_empty() {
                self.count_points(&[("refused", kept)]);
                return Err(self.refused(Refusal::Busy("the exporters' encoders fall behind; retry later".into()), protocol));
            }
        }
        self.count_points(&[("accepted", kept), ("invalid", dropped.invalid), ("over_limit", dropped.over_limit)]);
        let mut st = self.state.receiver.lock().unwrap();
        let st = st.get_or_insert_with(ReceiverStatus::default);
        if dropped.total() > 0 {
            st.request("partial");
            let message = dropped.message();
            self.log_once("partial", protocol, &message);
            Ok(Accepted { rejected: dropped.total(), message })
        } else {
            st.request("accepted");
            Ok(Accepted::default())
        }
    }

    fn count_points(&self, counts: &[(&'static str, u64)]) {
        let mut st = self.state.receiver.lock().unwrap();
        let st = st.get_or_insert_with(ReceiverStatus::default);
        for (outcome, n) in counts {
            st.points(outcome, *n);
        }
    }

    /// Counts a refused request, keeps it as the last error and logs it once per distinct
    /// reason; returns it for the protocol to answer.
    pub fn refused(&self, r: Refusal, protocol: &'static str) -> Refusal {
        {
            let mut st = self.state.receiver.lock().unwrap();
            let st = st.get_or_insert_with(ReceiverStatus::default);
            st.request(r.outcome());
            st.last_error = Some(format!("{protocol}: {r}"));
        }
        self.log_once(r.outcome(), protocol, &r.to_string());
        r
    }

    fn log_once(&self, outcome: &'static str, protocol: &'static str, msg: &str) {
        let key: String = format!("{protocol} {outcome} {}", msg.chars().take(120).collect::<String>());
        let mut logged = self.logged.lock().unwrap();
        if logged.len() < MAX_LOGGED_REASONS && logged.insert(key) {
            tracing::warn!(protocol, outcome, reason = %msg, "OTLP receiver refused a request or some of its points (logged once per distinct reason)");
        }
    }
}

/// Whether `header` (an `Authorization` value) carries `token` as a bearer token; compares in
/// time independent of where the token differs.
pub fn bearer_matches(header: Option<&[u8]>, token: &str) -> bool {
    let Some(h) = header else { return false };
    let Some(given) = h.strip_prefix(b"Bearer ").or_else(|| h.strip_prefix(b"bearer ")) else { return false };
    let want = token.as_bytes();
    given.len() == want.len() && given.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The running receiver's listeners; dropping it does not stop them, [`Running::stop`] does.
pub struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses bound (port 0 resolved), gRPC first when both run.
    pub addrs: Vec<(&'static str, std::net::SocketAddr)>,
}

impl Running {
    /// Stops accepting and closes the connections.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An invalid section (`--check-config` reports these first).
    #[error("receivers.otlp.{key}: {msg}")]
    Config { key: String, msg: String },
    /// The address could not be bound.
    #[error("receivers.otlp.protocols.{protocol}: cannot listen on {addr}: {source}")]
    Bind { protocol: &'static str, addr: std::net::SocketAddr, source: std::io::Error },
}

/// Binds and starts the configured protocols.
pub async fn start(cfg: &OtlpReceiverConfig, state: Arc<AgentState>) -> Result<Running, StartError> {
    if let Some((key, msg)) = cfg.validate().into_iter().next() {
        return Err(StartError::Config { key, msg });
    }
    let grpc_limits = cfg.grpc_limits();
    state.received.lock().unwrap().set_expiration(cfg.metrics_expiration.map(|d| d.get()));
    let receiver = Receiver::new(state, grpc_limits.max_concurrent, grpc_limits.max_points);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut running = Running { stop, tasks: Vec::new(), addrs: Vec::new() };
    let protocols: [(&'static str, Option<Result<config::Listener, String>>); 2] = [("grpc", cfg.grpc_listener()), ("http", cfg.http_listener())];
    for (protocol, l) in protocols {
        let Some(l) = l else { continue };
        let l = l.map_err(|msg| StartError::Config { key: format!("protocols.{protocol}"), msg })?;
        let tls = match &l.tls {
            Some(t) => Some(Arc::new(
                t.server_config(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
                    .map_err(|e| StartError::Config { key: format!("protocols.{protocol}.tls"), msg: e.to_string() })?,
            )),
            None => None,
        };
        let tcp = tokio::net::TcpListener::bind(l.addr).await.map_err(|source| StartError::Bind { protocol, addr: l.addr, source })?;
        let addr = tcp.local_addr().unwrap_or(l.addr);
        let handler = match protocol {
            "grpc" => grpc::handler(receiver.clone(), cfg.grpc_limits(), l.bearer_token.clone()),
            _ => http::handler(receiver.clone(), cfg.http_limits(), l.bearer_token.clone()),
        };
        tracing::info!(protocol, %addr, tls = tls.is_some(), auth = l.bearer_token.is_some(), "OTLP receiver listening");
        running.addrs.push((protocol, addr));
        running.tasks.push(tokio::spawn(listen::serve(tcp, tls, handler, stop_rx.clone())));
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_matches_only_whole_and_exact() {
        assert!(bearer_matches(Some(b"Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cretx"), "s3cret"));
        assert!(!bearer_matches(Some(b"Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }

    #[test]
    fn points_are_accepted_without_exporters_and_refusals_are_counted_per_outcome() {
        let state = AgentState::new(Default::default());
        let r = Receiver::new(state.clone(), 1, 10);
        let req = crate::pipeline::testutil::request(
            "h",
            vec![crate::pipeline::testutil::sum("jobs", true, vec![crate::pipeline::testutil::int_point(vec![], 1, 2, 3)])],
        );
        assert_eq!(r.ingest(req, "http"), Ok(Accepted::default()));
        let permit = r.admit().unwrap();
        assert!(matches!(r.admit(), Err(Refusal::Busy(_))), "one at a time");
        drop(permit);
        r.refused(Refusal::Malformed("x".into()), "http");
        let st = state.receiver.lock().unwrap().clone().unwrap();
        assert_eq!(st.requests.get("accepted"), Some(&1));
        assert_eq!(st.requests.get("malformed"), Some(&1));
        assert_eq!(st.points.get("accepted"), Some(&1));
        assert_eq!(st.last_error.as_deref(), Some("http: malformed: x"));
    }
}
