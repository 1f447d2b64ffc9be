//! The one queue-and-retry mechanism under every exporter.
//!
//! An exporter supplies three things ([`Exporter`]): how to encode a batch into payloads, how to
//! send one payload, and what the answer means ([`Outcome`]: sent, retry — maybe after a delay
//! the server asked for — or drop). Everything else is here, once:
//!
//! - a queue per exporter, bounded by bytes of encoded payloads; when full the oldest payload is
//!   dropped, counted, and logged once per episode;
//! - one sender per exporter, sending in order (a series' samples never overtake each other);
//! - retries with exponential backoff and full jitter, honouring the server's delay
//!   (`Retry-After`, gRPC `RetryInfo`), bounded by a maximum elapsed time;
//! - counters and last success / last error for `/status` and self-telemetry;
//! - a bounded flush at shutdown.
//!
//! Collection never waits for an exporter: [`QueueHandle::submit`] only hands the batch over.

use super::Batch;
use crate::config::ConfigDuration;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch, Notify};

/// Default bound of one exporter's queue.
pub const DEFAULT_QUEUE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default first retry delay.
pub const DEFAULT_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
/// Default longest retry delay.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// Default time after which a payload that keeps failing is dropped.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(300);

/// `queue`: the bound of an exporter's in-memory queue.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Most bytes of encoded payloads held (default 64 MiB); beyond it the oldest are dropped.
    pub max_bytes: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { max_bytes: DEFAULT_QUEUE_MAX_BYTES }
    }
}

/// `retry`: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry at all (default true).
    pub enabled: bool,
    /// First delay (default `"1s"`); each retry doubles it.
    pub initial_interval: ConfigDuration,
    /// Longest delay (default `"30s"`).
    pub max_interval: ConfigDuration,
    /// Give up on a payload after this long (default `"5m"`; `"0s"` = never give up).
    pub max_elapsed_time: ConfigDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: DEFAULT_INITIAL_INTERVAL.into(),
            max_interval: DEFAULT_MAX_INTERVAL.into(),
            max_elapsed_time: DEFAULT_MAX_ELAPSED.into(),
        }
    }
}

impl RetryConfig {
    /// The delay before retry number `attempt` (1-based): full jitter over
    /// `min(max, initial × 2^(attempt−1))`, never below half of it.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.initial_interval.get().as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let cap = base.min(self.max_interval.get().as_secs_f64());
        Duration::from_secs_f64(cap * (0.5 + fastrand::f64() * 0.5))
    }
}

/// One encoded request, ready to send (and to spool).
#[derive(Debug, Clone)]
pub struct Payload {
    /// The body as it goes on the wire (compressed if the protocol compresses).
    pub body: bytes::Bytes,
    /// Data points in it, for counting what was sent or lost.
    pub points: u64,
}

/// What the server's answer means for a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered.
    Sent,
    /// Delivered, but the server rejected some points (OTLP partial success).
    Partial { rejected: u64, message: String },
    /// Try again later; `after` is the server's requested delay.
    Retry { after: Option<Duration>, reason: String },
    /// Never retry (bad request, auth, ...): dropped and counted.
    Drop { reason: String },
}

/// What an exporter supplies; the rest is the queue's.
pub trait Exporter: Send + Sync + 'static {
    /// Encodes a batch into one or more payloads (split to respect size limits).
    fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String>;
    /// Sends one payload and classifies the answer (the exporter applies its own timeout).
    fn send(&self, payload: &Payload) -> impl Future<Output = Outcome> + Send;
}

/// Counters and state of one exporter, shown on `/status` and in self-telemetry.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ExporterStatus {
    /// `type[index]`, e.g. `otlp[0]`.
    pub name: String,
    /// Where it sends.
    pub endpoint: String,
    /// Payloads delivered.
    pub sent_payloads: u64,
    /// Points delivered.
    pub sent_points: u64,
    /// Points the server rejected in a partial success.
    pub rejected_points: u64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Payloads dropped (not retryable, retries exhausted, queue full, or unsent at shutdown).
    pub dropped_payloads: u64,
    /// Points in the dropped payloads.
    pub dropped_points: u64,
    /// Payloads waiting.
    pub queue_length: usize,
    /// Bytes waiting.
    pub queue_bytes: u64,
    /// Last delivery, RFC 3339.
    pub last_success: Option<String>,
    /// Last failure, with its reason.
    pub last_error: Option<String>,
    /// Duration of the last successful send, seconds.
    pub last_send_seconds: Option<f64>,
}

struct Queue {
    items: VecDeque<(u64, Payload)>,
    bytes: u64,
    next_id: u64,
    full_episode: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    status: Mutex<ExporterStatus>,
    notify: Notify,
    max_bytes: u64,
}

/// The scheduler's end of one exporter's queue.
#[derive(Clone)]
pub struct QueueHandle {
    intake: mpsc::Sender<Arc<Batch>>,
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Instant>>,
    intake_stop: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl QueueHandle {
    /// Starts the intake (encode) and sender tasks of `exporter` on the current runtime.
    pub fn spawn<E: Exporter>(name: String, endpoint: String, exporter: E, queue: QueueConfig, retry: RetryConfig) -> QueueHandle {
        let exporter = Arc::new(exporter);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { items: VecDeque::new(), bytes: 0, next_id: 0, full_episode: false }),
            status: Mutex::new(ExporterStatus { name: name.clone(), endpoint, ..Default::default() }),
            notify: Notify::new(),
            max_bytes: queue.max_bytes.max(1),
        });
        let (tx, mut rx) = mpsc::channel::<Arc<Batch>>(64);
        let (stop_tx, stop_rx) = watch::channel(None);
        let (intake_stop_tx, mut intake_stop) = watch::channel(false);
        let intake = {
            let (shared, exporter, name) = (shared.clone(), exporter.clone(), name.clone());
            tokio::spawn(async move {
                let mut last_err: Option<String> = None;
                loop {
                    let batch = tokio::select! {
                        b = rx.recv() => b,
                        _ = intake_stop.changed() => {
                            // Shutdown: encode what was already submitted, then stop.
                            rx.close();
                            rx.recv().await
                        }
                    };
                    let Some(batch) = batch else { break };
                    match exporter.encode(&batch) {
                        Ok(payloads) => {
                            last_err = None;
                            for p in payloads {
                                shared.push(&name, p);
                            }
                        }
                        Err(e) => {
                            if last_err.as_deref() != Some(e.as_str()) {
                                tracing::error!(exporter = %name, error = %e, "Cannot encode batch; dropped");
                            }
                            let mut s = shared.status.lock().unwrap();
                            s.dropped_payloads += 1;
                            s.dropped_points += batch.points;
                            s.last_error = Some(format!("encode: {e}"));
                            last_err = Some(e);
                        }
                    }
                }
            })
        };
        let sender = {
            let shared = shared.clone();
            tokio::spawn(sender_loop(name, exporter, shared, retry, stop_rx))
        };
        QueueHandle { intake: tx, shared, stop: stop_tx, intake_stop: intake_stop_tx, tasks: Arc::new(Mutex::new(vec![intake, sender])) }
    }

    /// Hands a batch over without waiting; if the intake is saturated the batch is dropped and counted.
    pub fn submit(&self, batch: Arc<Batch>) {
        if let Err(e) = self.intake.try_send(batch) {
            let b = match e {
                mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b,
            };
            let mut s = self.shared.status.lock().unwrap();
            s.dropped_payloads += 1;
            s.dropped_points += b.points;
        }
    }

    /// A copy of the counters.
    pub fn status(&self) -> ExporterStatus {
        let mut s = self.shared.status.lock().unwrap().clone();
        let q = self.shared.queue.lock().unwrap();
        s.queue_length = q.items.len();
        s.queue_bytes = q.bytes;
        s
    }

    /// Sends what is queued until `deadline`, then stops; what is left is dropped and counted.
    pub async fn shutdown(&self, deadline: Instant) {
        // Let the intake encode what was submitted, then let the sender drain until the deadline.
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap());
        let mut tasks = tasks.into_iter();
        let intake = tasks.next();
        let sender = tasks.next();
        let _ = self.intake_stop.send(true);
        if let Some(i) = intake {
            let _ = tokio::time::timeout_at(deadline.into(), i).await;
        }
        let _ = self.stop.send(Some(deadline));
        self.shared.notify.notify_one();
        if let Some(mut s) = sender {
            if tokio::time::timeout_at(deadline.into(), &mut s).await.is_err() {
                s.abort();
            }
        }
        let mut q = self.shared.queue.lock().unwrap();
        let mut st = self.shared.status.lock().unwrap();
        if !q.items.is_empty() {
            let points: u64 = q.items.iter().map(|(_, p)| p.points).sum();
            tracing::warn!(exporter = %st.name, payloads = q.items.len(), points, "Shutdown deadline reached; unsent payloads dropped");
            st.dropped_payloads += q.items.len() as u64;
            st.dropped_points += points;
            q.items.clear();
            q.bytes = 0;
        }
    }
}

impl Shared {
    fn push(&self, name: &str, p: Payload) {
        let mut q = self.queue.lock().unwrap();
        let len = p.body.len() as u64;
        let (mut dropped, mut dropped_points) = (0u64, 0u64);
        // Keep the payload at the front (it may be in flight) unless it is the only way to fit.
        while q.bytes + len > self.max_bytes && q.items.len() > 1 {
            let (_, old) = q.items.remove(1).expect("len > 1");
            q.bytes -= old.body.len() as u64;
            dropped += 1;
            dropped_points += old.points;
        }
        if q.bytes + len > self.max_bytes && q.items.len() == 1 && len <= self.max_bytes {
            let (_, old) = q.items.pop_front().expect("len == 1");
            q.bytes -= old.body.len() as u64;
            dropped += 1;
            dropped_points += old.points;
        }
        if dropped > 0 {
            if !q.full_episode {
                tracing::warn!(exporter = %name, max_bytes = self.max_bytes, "Queue full; dropping the oldest payloads until it drains");
            }
            q.full_episode = true;
            let mut s = self.status.lock().unwrap();
            s.dropped_payloads += dropped;
            s.dropped_points += dropped_points;
        } else if q.items.is_empty() {
            q.full_episode = false;
        }
        let id = q.next_id;
        q.next_id += 1;
        q.bytes += len;
        q.items.push_back((id, p));
        drop(q);
        self.notify.notify_one();
    }

    fn front(&self) -> Option<(u64, Payload)> {
        self.queue.lock().unwrap().items.front().cloned()
    }

    fn remove(&self, id: u64) {
        let mut q = self.queue.lock().unwrap();
        if let Some(pos) = q.items.iter().position(|(i, _)| *i == id) {
            let (_, p) = q.items.remove(pos).expect("position found");
            q.bytes -= p.body.len() as u64;
        }
    }
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

async fn sender_loop<E: Exporter>(name: String, exporter: Arc<E>, shared: Arc<Shared>, retry: RetryConfig, mut stop: watch::Receiver<Option<Instant>>) {
    let mut last_logged: Option<String> = None;
    loop {
        let deadline = *stop.borrow();
        let Some((id, payload)) = shared.front() else {
            if deadline.is_some() {
                return;
            }
            tokio::select! {
                _ = shared.notify.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        let first_try = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = Instant::now();
            let outcome = exporter.send(&payload).await;
            // Decide under the lock (in a block: the guard must not live across an await).
            let retry_after: Option<Option<Duration>> = {
                let mut st = shared.status.lock().unwrap();
                match outcome {
                    Outcome::Sent | Outcome::Partial { .. } => {
                        if let Outcome::Partial { rejected, message } = &outcome {
                            st.rejected_points += rejected;
                            tracing::warn!(exporter = %name, rejected, message = %message, "Server rejected part of a batch");
                        }
                        st.sent_payloads += 1;
                        st.sent_points += payload.points;
                        st.last_success = Some(rfc3339_now());
                        st.last_send_seconds = Some(started.elapsed().as_secs_f64());
                        if last_logged.take().is_some() {
                            tracing::info!(exporter = %name, "Sending works again");
                        }
                        None
                    }
                    Outcome::Drop { reason } => {
                        st.failed_attempts += 1;
                        st.dropped_payloads += 1;
                        st.dropped_points += payload.points;
                        st.last_error = Some(reason.clone());
                        if last_logged.as_deref() != Some(reason.as_str()) {
                            tracing::error!(exporter = %name, reason = %reason, points = payload.points, "Payload rejected and dropped (not retryable)");
                            last_logged = Some(reason);
                        }
                        None
                    }
                    Outcome::Retry { after, reason } => {
                        st.failed_attempts += 1;
                        st.last_error = Some(reason.clone());
                        let max_elapsed = retry.max_elapsed_time.get();
                        let give_up = !retry.enabled || (!max_elapsed.is_zero() && first_try.elapsed() >= max_elapsed);
                        if last_logged.as_deref() != Some(reason.as_str()) {
                            tracing::warn!(exporter = %name, reason = %reason, attempt, "Send failed; will retry");
                            last_logged = Some(reason.clone());
                        }
                        if give_up {
                            st.dropped_payloads += 1;
                            st.dropped_points += payload.points;
                            tracing::error!(exporter = %name, reason = %reason, points = payload.points, "Retries exhausted; payload dropped");
                            None
                        } else {
                            Some(after)
                        }
                    }
                }
            };
            match retry_after {
                None => {
                    shared.remove(id);
                    break;
                }
                Some(after) => {
                    let delay = after.unwrap_or_else(|| retry.backoff(attempt)).min(retry.max_interval.get().max(after.unwrap_or_default()));
                    let wake = Instant::now() + delay;
                    let deadline = *stop.borrow();
                    if let Some(d) = deadline {
                        if wake >= d {
                            return;
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake.into()) => {}
                        _ = stop.changed() => {
                            if let Some(d) = *stop.borrow() { if wake >= d { return; } }
                            tokio::time::sleep_until(wake.into()).await;
                        }
                    }
                    // The payload may have been evicted while we waited.
                    if shared.front().map(|(i, _)| i) != Some(id) {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Script {
        answers: Mutex<VecDeque<Outcome>>,
        sent: Mutex<Vec<u8>>,
        calls: AtomicUsize,
    }

    impl Exporter for Arc<Script> {
        fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
            Ok(vec![Payload { body: bytes::Bytes::from(vec![batch.seq as u8; 10]), points: batch.points }])
        }
        async fn send(&self, p: &Payload) -> Outcome {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let o = self.answers.lock().unwrap().pop_front().unwrap_or(Outcome::Sent);
            if matches!(o, Outcome::Sent) {
                self.sent.lock().unwrap().push(p.body[0]);
            }
            o
        }
    }

    fn script(answers: Vec<Outcome>) -> Arc<Script> {
        Arc::new(Script { answers: Mutex::new(answers.into()), sent: Mutex::new(vec![]), calls: AtomicUsize::new(0) })
    }

    fn fast_retry() -> RetryConfig {
        RetryConfig { initial_interval: ConfigDuration::millis(5), max_interval: ConfigDuration::millis(20), ..Default::default() }
    }

    fn batch(seq: u64) -> Arc<Batch> {
        Arc::new(Batch::new(Default::default(), seq, 3))
    }

    async fn wait_for(mut f: impl FnMut() -> bool) {
        for _ in 0..400 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test]
    async fn retryable_failures_lose_nothing_and_keep_order() {
        let s = script(vec![Outcome::Retry { after: None, reason: "503".into() }, Outcome::Retry { after: None, reason: "503".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry());
        for i in 1..=4 {
            h.submit(batch(i));
        }
        wait_for(|| s.sent.lock().unwrap().len() == 4).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2, 3, 4]);
        let st = h.status();
        assert_eq!((st.sent_payloads, st.sent_points, st.failed_attempts, st.dropped_payloads), (4, 12, 2, 0));
        assert!(st.last_success.is_some());
    }

    #[tokio::test]
    async fn a_drop_answer_is_not_retried() {
        let s = script(vec![Outcome::Drop { reason: "400 bad".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry());
        h.submit(batch(1));
        h.submit(batch(2));
        wait_for(|| s.sent.lock().unwrap().len() == 1).await;
        assert_eq!(s.calls.load(Ordering::SeqCst), 2);
        let st = h.status();
        assert_eq!((st.dropped_payloads, st.dropped_points), (1, 3));
        assert_eq!(st.last_error.as_deref(), Some("400 bad"));
    }

    #[tokio::test]
    async fn a_server_requested_delay_is_honoured() {
        let s = script(vec![Outcome::Retry { after: Some(Duration::from_millis(300)), reason: "429".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry());
        let t0 = Instant::now();
        h.submit(batch(1));
        wait_for(|| s.sent.lock().unwrap().len() == 1).await;
        assert!(t0.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_but_never_the_one_in_flight() {
        // The server is down for good: everything stays queued; the bound is 25 bytes = 2 payloads.
        let s = script((0..1000).map(|_| Outcome::Retry { after: Some(Duration::from_secs(60)), reason: "down".into() }).collect());
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig { max_bytes: 25 }, fast_retry());
        for i in 1..=5 {
            h.submit(batch(i));
        }
        wait_for(|| h.status().dropped_payloads == 3).await;
        let st = h.status();
        assert_eq!((st.queue_length, st.queue_bytes, st.dropped_points), (2, 20, 9));
        let q: Vec<u8> = h.shared.queue.lock().unwrap().items.iter().map(|(_, p)| p.body[0]).collect();
        assert_eq!(q, vec![1, 5], "the in-flight payload and the newest are kept");
    }

    #[tokio::test]
    async fn retries_stop_after_the_maximum_elapsed_time() {
        let s = script((0..1000).map(|_| Outcome::Retry { after: None, reason: "down".into() }).collect());
        let retry = RetryConfig { max_elapsed_time: ConfigDuration::millis(50), ..fast_retry() };
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), retry);
        h.submit(batch(1));
        wait_for(|| h.status().dropped_payloads == 1).await;
        assert_eq!(h.status().queue_length, 0);
    }

    #[tokio::test]
    async fn shutdown_flushes_what_is_queued_within_the_deadline() {
        let s = script(vec![Outcome::Retry { after: Some(Duration::from_millis(50)), reason: "503".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry());
        h.submit(batch(1));
        h.submit(batch(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.shutdown(Instant::now() + Duration::from_secs(2)).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let r = RetryConfig::default();
        for _ in 0..50 {
            let d1 = r.backoff(1);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1), "{d1:?}");
            let d10 = r.backoff(10);
            assert!(d10 >= Duration::from_secs(15) && d10 <= Duration::from_secs(30), "{d10:?}");
        }
    }
}
