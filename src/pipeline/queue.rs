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
//! - a bounded flush at shutdown;
//! - optionally a disk spool ([`super::spool`], `queue.spool`), so that an outage or a restart
//!   loses nothing.
//!
//! Collection never waits for an exporter: [`QueueHandle::submit`] only hands the batch over.
//!
//! With a spool, every encoded payload is appended to it (write-ahead) and the in-memory queue
//! stays empty: the sender reads the oldest record back from disk (normally from the page cache)
//! just before sending it, and acknowledges it in the spool once it is sent or rejected for good.
//! So memory use does not grow with an outage, and what the spool holds at a restart is sent
//! first. When the spool fails (full disk, read-only directory, ...), payloads go to the
//! in-memory queue with its byte bound instead; they are never appended to the spool while the
//! memory queue holds anything, and the sender takes from the spool first, so the order is kept.
//! The spool is tried again every 30 s once the memory queue is empty.

use super::spool::{Pos, Spool, SpoolConfig, SpoolError, SYNC_INTERVAL};
use super::Batch;
pub use crate::status::ExporterStatus;
use crate::units::duration::deadline_after;
use crate::units::ConfigDuration;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{watch, Notify};

/// Default bound of one exporter's queue.
pub const DEFAULT_QUEUE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default first retry delay.
pub const DEFAULT_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
/// Default longest retry delay.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// Default time after which a payload that keeps failing is dropped.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(300);
/// Batches that may wait for an exporter's encoder thread; beyond, new ones are dropped and
/// counted (with the tick's batch shared by every exporter, this bounds what a slow encoder or
/// disk can hold).
pub const INTAKE_BATCHES: usize = 8;
/// After the spool failed, how long before it is tried again.
pub const SPOOL_RETRY: Duration = Duration::from_secs(30);
/// How long a new exporter waits for a spool directory still held by the one it replaces (a
/// reload stops the old one within 5 s).
const SPOOL_LOCK_WAIT: Duration = Duration::from_secs(10);

/// `queue`: the bound of an exporter's in-memory queue, and its optional disk spool.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Most bytes of encoded payloads held in memory (default 64 MiB); beyond it the oldest are
    /// dropped.
    pub max_bytes: u64,
    /// Disk spool (`{dir, max_bytes}`; also accepted as `buffer`); none by default.
    #[serde(alias = "buffer", skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolConfig>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { max_bytes: DEFAULT_QUEUE_MAX_BYTES, spool: None }
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
        // Saturates rather than panics on a duration no clock can hold (config is range-checked,
        // this keeps a programming error from being an abort).
        Duration::try_from_secs_f64(cap * (0.5 + fastrand::f64() * 0.5)).unwrap_or(self.max_interval.get())
    }

    /// The delay before retry number `attempt` when the server asked for `server` (`Retry-After`,
    /// gRPC `RetryInfo`): honoured, but never longer than `max_interval` (a `Retry-After: 86400`
    /// must not freeze the exporter for a day after the backend recovered) and never shorter than
    /// the normal backoff step (a `Retry-After: 0` or a date in the past must not become a storm).
    pub fn delay(&self, attempt: u32, server: Option<Duration>) -> Duration {
        let step = self.backoff(attempt);
        match server {
            Some(d) => d.min(self.max_interval.get()).max(step),
            None => step,
        }
    }

    /// Problems with the durations, as `--check-config` prints them.
    pub fn validate(&self) -> Vec<String> {
        use crate::units::duration::{check_range, MAX_ELAPSED, MAX_INTERVAL, MIN_TIMEOUT};
        let mut v: Vec<String> = [
            check_range("retry.initial_interval", self.initial_interval.get(), MIN_TIMEOUT, MAX_INTERVAL),
            check_range("retry.max_interval", self.max_interval.get(), MIN_TIMEOUT, MAX_INTERVAL),
            check_range("retry.max_elapsed_time", self.max_elapsed_time.get(), Duration::ZERO, MAX_ELAPSED),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if self.max_interval.get() < self.initial_interval.get() {
            v.push(format!("`retry.max_interval` ({}) is shorter than `retry.initial_interval` ({})", self.max_interval, self.initial_interval));
        }
        v
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
    /// The configured spool, if any.
    spool_cfg: Option<SpoolConfig>,
    /// Lock order: `spool`, then `queue`, then `status`.
    spool: Mutex<SpoolSlot>,
    /// Whether `spool` holds an open spool (read without the lock).
    spool_open: AtomicBool,
    /// Whether the encoder's intake was full at the last submit (one log line per episode).
    intake_full: AtomicBool,
}

struct SpoolSlot {
    spool: Option<Spool>,
    /// After a failure: not before this instant.
    retry_at: Option<Instant>,
    retry_every: Duration,
    /// The error of the current failure episode (logged once).
    error: Option<String>,
    full_episode: bool,
    too_large_logged: bool,
}

/// Where the payload being sent comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Memory(u64),
    Spool(Pos),
}

/// The scheduler's end of one exporter's queue.
#[derive(Clone)]
pub struct QueueHandle {
    /// The encoder thread's intake; `None` once shutdown began (later batches are counted
    /// dropped).
    intake: Arc<Mutex<Option<std::sync::mpsc::SyncSender<Arc<Batch>>>>>,
    /// Fires when the encoder thread has encoded what it was given and ended.
    intake_done: Arc<Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Instant>>,
    sender: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl QueueHandle {
    /// Starts the encoder thread and the sender task of `exporter` (the latter on the current
    /// runtime); fails only when the OS refuses a thread.
    pub fn spawn<E: Exporter>(name: String, endpoint: String, exporter: E, queue: QueueConfig, retry: RetryConfig) -> Result<QueueHandle, String> {
        let exporter = Arc::new(exporter);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { items: VecDeque::new(), bytes: 0, next_id: 0, full_episode: false }),
            status: Mutex::new(ExporterStatus { name: name.clone(), endpoint, ..Default::default() }),
            notify: Notify::new(),
            max_bytes: queue.max_bytes.max(1),
            spool_cfg: queue.spool.clone(),
            spool: Mutex::new(SpoolSlot { spool: None, retry_at: None, retry_every: SPOOL_RETRY, error: None, full_episode: false, too_large_logged: false }),
            spool_open: AtomicBool::new(false),
            intake_full: AtomicBool::new(false),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Batch>>(INTAKE_BATCHES);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        {
            let (shared, exporter, name) = (shared.clone(), exporter.clone(), name.clone());
            std::thread::Builder::new()
                .name(format!("encode {name}"))
                .spawn(move || {
                    encoder_thread(&shared, &name, &*exporter, rx);
                    let _ = done_tx.send(());
                })
                .map_err(|e| format!("cannot start the encoder thread: {e}"))?;
        }
        let (stop_tx, stop_rx) = watch::channel(None);
        let sender = tokio::spawn(sender_loop(name, exporter, shared.clone(), retry, stop_rx));
        Ok(QueueHandle {
            intake: Arc::new(Mutex::new(Some(tx))),
            intake_done: Arc::new(Mutex::new(Some(done_rx))),
            shared,
            stop: stop_tx,
            sender: Arc::new(Mutex::new(Some(sender))),
        })
    }

    /// Hands a batch to the exporter's encoder thread without waiting: encoding (and
    /// compressing, and appending to the spool) never runs on the tick's thread, so a large
    /// scraped batch or a slow disk cannot delay host collection. When [`INTAKE_BATCHES`] are
    /// already waiting, or shutdown began, the batch is dropped and counted (logged once per
    /// episode).
    pub fn submit(&self, batch: Arc<Batch>) {
        let refused = match &*self.intake.lock().unwrap() {
            Some(tx) => match tx.try_send(batch) {
                Ok(()) => {
                    self.shared.intake_full.store(false, Ordering::Relaxed);
                    return;
                }
                Err(std::sync::mpsc::TrySendError::Full(b)) => {
                    if !self.shared.intake_full.swap(true, Ordering::Relaxed) {
                        let name = self.shared.status.lock().unwrap().name.clone();
                        tracing::warn!(exporter = %name, waiting = INTAKE_BATCHES, "Encoding falls behind the ticks; dropping new batches until it catches up");
                    }
                    b
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(b)) => b,
            },
            None => batch,
        };
        let mut s = self.shared.status.lock().unwrap();
        s.dropped_payloads += 1;
        s.dropped_points += refused.points;
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
        // Let the encoder thread encode what was submitted (closing its intake ends it once it
        // has), then let the sender drain until the deadline. A thread still encoding at the
        // deadline is left to finish alone; what it queues after is not sent.
        drop(self.intake.lock().unwrap().take());
        let done = self.intake_done.lock().unwrap().take();
        if let Some(done) = done {
            let _ = tokio::time::timeout_at(deadline.into(), done).await;
        }
        let _ = self.stop.send(Some(deadline));
        self.shared.notify.notify_one();
        let sender = self.sender.lock().unwrap().take();
        if let Some(mut s) = sender {
            if tokio::time::timeout_at(deadline.into(), &mut s).await.is_err() {
                s.abort();
            }
        }
        if self.shared.spool_cfg.is_some() {
            // What is left in the spool stays there for the next start.
            let sh = self.shared.clone();
            let _ = tokio::task::spawn_blocking(move || sh.spool_close()).await;
        }
        let mut q = self.shared.queue.lock().unwrap();
        let mut st = self.shared.status.lock().unwrap();
        if !q.items.is_empty() {
            let points: u64 = q.items.iter().map(|(_, p)| p.points).sum();
            tracing::warn!(exporter = %st.name, payloads = q.items.len(), points, "Shutdown: unsent payloads dropped (the deadline came first, or the backend was still failing)");
            st.dropped_payloads += q.items.len() as u64;
            st.dropped_points += points;
            q.items.clear();
            q.bytes = 0;
        }
    }
}

/// Opens the spool at start; a directory still held by the exporter this one replaces (a
/// reload) is waited for, batches meanwhile waiting in the intake channel.
fn open_spool(shared: &Shared, name: &str) {
    let started = Instant::now();
    loop {
        let wait = {
            let mut slot = shared.spool.lock().unwrap();
            match shared.open_spool(name, &mut slot) {
                Ok(()) => false,
                Err(SpoolError::Locked { .. }) if started.elapsed() < SPOOL_LOCK_WAIT => true,
                Err(e) => {
                    shared.spool_failed(name, &mut slot, &e);
                    false
                }
            }
        };
        if !wait {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    shared.notify.notify_one();
}

/// The encoder thread of one exporter: encodes each submitted batch and appends its payloads
/// to the spool or queues them in memory, and syncs the spool every [`SYNC_INTERVAL`]; ends
/// when the intake is closed and drained. Spool I/O is blocking, which this thread may do.
fn encoder_thread<E: Exporter>(shared: &Shared, name: &str, exporter: &E, rx: std::sync::mpsc::Receiver<Arc<Batch>>) {
    use std::sync::mpsc::RecvTimeoutError;
    let spooled = shared.spool_cfg.is_some();
    if spooled {
        open_spool(shared, name);
    }
    let mut last_err: Option<String> = None;
    let mut next_sync = deadline_after(Instant::now(), SYNC_INTERVAL);
    loop {
        let batch = if spooled {
            match rx.recv_timeout(next_sync.saturating_duration_since(Instant::now())) {
                Ok(b) => b,
                Err(RecvTimeoutError::Timeout) => {
                    shared.spool_sync(name);
                    next_sync = deadline_after(Instant::now(), SYNC_INTERVAL);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(b) => b,
                Err(_) => break,
            }
        };
        for p in encoded(shared, name, exporter, &batch, &mut last_err) {
            enqueue(shared, name, p);
        }
    }
}

/// The payloads of `batch`; none if it cannot be encoded, which is counted, shown on `/status`
/// and logged once per distinct error (`last_err`).
fn encoded<E: Exporter>(shared: &Shared, name: &str, exporter: &E, batch: &Batch, last_err: &mut Option<String>) -> Vec<Payload> {
    match exporter.encode(batch) {
        Ok(payloads) => {
            *last_err = None;
            payloads
        }
        Err(e) => {
            if last_err.as_deref() != Some(e.as_str()) {
                tracing::error!(exporter = %name, error = %e, "Cannot encode batch; dropped");
            }
            let mut s = shared.status.lock().unwrap();
            s.dropped_payloads += 1;
            s.dropped_points += batch.points;
            s.last_error = Some(format!("encode: {e}"));
            *last_err = Some(e);
            Vec::new()
        }
    }
}

/// Appends a payload to the spool when it should and can, else queues it in memory.
fn enqueue(shared: &Shared, name: &str, p: Payload) {
    if shared.spool_cfg.is_some() && shared.spool_append(name, &p) {
        shared.notify.notify_one();
        return;
    }
    shared.push(name, p);
}

impl Shared {
    // The spool's side: blocking file I/O, called on blocking threads.

    fn open_spool(&self, name: &str, slot: &mut SpoolSlot) -> Result<(), SpoolError> {
        let cfg = self.spool_cfg.as_ref().expect("a spool is configured");
        let (spool, report) = Spool::open(cfg)?;
        let dir = cfg.dir.display().to_string();
        for s in &report.skipped {
            tracing::warn!(exporter = %name, dir = %dir, "Spool: {s}; never sent");
        }
        if report.cursor_reset {
            tracing::warn!(exporter = %name, dir = %dir, "Spool: the cursor file is unreadable; everything in the spool is sent again");
        }
        if report.records > 0 {
            tracing::info!(exporter = %name, dir = %dir, payloads = report.records, points = report.points, bytes = report.bytes, "Spool: sending what was left by the previous run first");
        } else {
            tracing::debug!(exporter = %name, dir = %dir, "Spool opened");
        }
        {
            let mut st = self.status.lock().unwrap();
            st.dropped_payloads += report.skipped.len() as u64;
        }
        self.spool_stats(&spool);
        slot.spool = Some(spool);
        self.spool_open.store(true, Ordering::Release);
        Ok(())
    }

    /// Notes a spool failure: logged once per episode, shown on `/status`, retried later.
    fn spool_failed(&self, name: &str, slot: &mut SpoolSlot, e: &SpoolError) {
        slot.retry_at = Some(deadline_after(Instant::now(), slot.retry_every));
        let msg = e.to_string();
        if slot.error.is_none() {
            tracing::error!(exporter = %name, error = %msg, retry_in = ?slot.retry_every, "Cannot use the disk spool; queueing in memory until it works again");
        } else {
            tracing::debug!(exporter = %name, error = %msg, "The disk spool still fails");
        }
        self.status.lock().unwrap().spool_error = Some(msg.clone());
        slot.error = Some(msg);
    }

    fn spool_stats(&self, spool: &Spool) {
        let stats = spool.stats();
        let mut st = self.status.lock().unwrap();
        st.spool_bytes = stats.bytes;
        st.spool_records = stats.records;
    }

    /// Appends to the spool; false when the payload must go to the memory queue instead.
    fn spool_append(&self, name: &str, p: &Payload) -> bool {
        let mut slot = self.spool.lock().unwrap();
        // Memory holds only payloads newer than everything spooled: none may overtake them.
        if !self.queue.lock().unwrap().items.is_empty() {
            return false;
        }
        if slot.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        if slot.spool.is_none() {
            if let Err(e) = self.open_spool(name, &mut slot) {
                self.spool_failed(name, &mut slot, &e);
                return false;
            }
        }
        let slot = &mut *slot;
        let spool = slot.spool.as_mut().expect("opened above");
        match spool.append(&p.body, p.points) {
            Ok(dropped) => {
                if dropped.records > 0 {
                    if !slot.full_episode {
                        tracing::warn!(exporter = %name, dir = %spool.dir().display(), "Spool full; dropping its oldest payloads until it drains");
                    }
                    slot.full_episode = true;
                    let mut st = self.status.lock().unwrap();
                    st.dropped_payloads += dropped.records;
                    st.dropped_points += dropped.points;
                }
                self.spool_stats(spool);
                slot.retry_at = None;
                if slot.error.take().is_some() {
                    tracing::info!(exporter = %name, dir = %spool.dir().display(), "The disk spool works again");
                    self.status.lock().unwrap().spool_error = None;
                }
                true
            }
            Err(e @ SpoolError::TooLarge { .. }) => {
                if !slot.too_large_logged {
                    tracing::warn!(exporter = %name, error = %e, "Payload queued in memory instead of the spool");
                    slot.too_large_logged = true;
                }
                false
            }
            Err(e) => {
                self.spool_stats(spool);
                self.spool_failed(name, slot, &e);
                false
            }
        }
    }

    /// The oldest spooled payload.
    fn spool_read(&self, name: &str) -> Option<(Pos, Payload)> {
        let mut slot = self.spool.lock().unwrap();
        let spool = slot.spool.as_mut()?;
        let rec = spool.read_head();
        let skipped = spool.take_skipped();
        if !skipped.is_empty() {
            for s in &skipped {
                tracing::warn!(exporter = %name, dir = %spool.dir().display(), "Spool: {s}; never sent");
            }
            self.status.lock().unwrap().dropped_payloads += skipped.len() as u64;
        }
        self.spool_stats(spool);
        rec.map(|r| (r.pos, Payload { body: r.body, points: r.points }))
    }

    fn spool_ack(&self, name: &str, pos: Pos) {
        let mut slot = self.spool.lock().unwrap();
        let Some(spool) = slot.spool.as_mut() else { return };
        let r = spool.ack(pos);
        self.spool_stats(spool);
        if spool.stats().records == 0 {
            slot.full_episode = false;
        }
        if let Err(e) = r {
            self.spool_failed(name, &mut slot, &e);
        }
    }

    fn spool_sync(&self, name: &str) {
        let mut slot = self.spool.lock().unwrap();
        let Some(spool) = slot.spool.as_mut() else { return };
        if let Err(e) = spool.sync(false) {
            self.spool_failed(name, &mut slot, &e);
        }
    }

    /// Closes the spool at shutdown (fsynced; the lock released).
    fn spool_close(&self) {
        let mut slot = self.spool.lock().unwrap();
        self.spool_open.store(false, Ordering::Release);
        if let Some(mut spool) = slot.spool.take() {
            let name = self.status.lock().unwrap().name.clone();
            if let Err(e) = spool.sync(true) {
                tracing::error!(exporter = %name, error = %e, "Cannot fsync the spool");
            }
            let stats = spool.stats();
            if stats.records > 0 {
                tracing::info!(exporter = %name, dir = %spool.dir().display(), payloads = stats.records, points = stats.points, "Unsent payloads stay in the spool for the next start");
            }
        }
    }

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
        // The spool first: what is in memory is newer.
        let mut next = None;
        if shared.spool_open.load(Ordering::Acquire) {
            let (sh, n) = (shared.clone(), name.clone());
            next = tokio::task::spawn_blocking(move || sh.spool_read(&n)).await.ok().flatten().map(|(pos, p)| (Source::Spool(pos), p));
        }
        let Some((source, payload)) = next.or_else(|| shared.front().map(|(id, p)| (Source::Memory(id), p))) else {
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
            let next_try: Option<Duration> = {
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
                        let delay = retry.delay(attempt, after);
                        // A spooled payload is kept until sent, rejected or pushed out by the
                        // spool's bound: no time limit. One in memory is given up once the
                        // wait before its next try would end past `max_elapsed_time`.
                        let max_elapsed = retry.max_elapsed_time.get();
                        let in_memory = matches!(source, Source::Memory(_));
                        let give_up = !retry.enabled || (in_memory && !max_elapsed.is_zero() && first_try.elapsed().saturating_add(delay) > max_elapsed);
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
                            Some(delay)
                        }
                    }
                }
            };
            match next_try {
                None => {
                    match source {
                        Source::Memory(id) => shared.remove(id),
                        Source::Spool(pos) => {
                            let (sh, n) = (shared.clone(), name.clone());
                            let _ = tokio::task::spawn_blocking(move || sh.spool_ack(&n, pos)).await;
                        }
                    }
                    break;
                }
                Some(delay) => {
                    let wake = deadline_after(Instant::now(), delay);
                    // Shutting down: a retry due after the deadline is not waited for.
                    let past_deadline = |d: Option<Instant>| {
                        let past = d.is_some_and(|d| wake >= d);
                        if past {
                            tracing::info!(exporter = %name, retry_in = %ConfigDuration(delay), "Shutdown: the next retry would come after the deadline; not waiting for it");
                        }
                        past
                    };
                    if past_deadline(*stop.borrow()) {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake.into()) => {}
                        _ = stop.changed() => {
                            let d = *stop.borrow();
                            if past_deadline(d) { return; }
                            tokio::time::sleep_until(wake.into()).await;
                        }
                    }
                    // A payload in memory may have been evicted while we waited (one from the
                    // spool is kept by this loop until it is sent or given up).
                    if let Source::Memory(id) = source {
                        if shared.front().map(|(i, _)| i) != Some(id) {
                            break;
                        }
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

    /// Records the thread it encodes on and never finishes a send.
    struct Stuck {
        encoded_on: Mutex<Vec<std::thread::ThreadId>>,
        fail: bool,
    }

    impl Exporter for Arc<Stuck> {
        fn encode(&self, _batch: &Batch) -> Result<Vec<Payload>, String> {
            self.encoded_on.lock().unwrap().push(std::thread::current().id());
            if self.fail {
                return Err("cannot encode".into());
            }
            Ok(vec![Payload { body: bytes::Bytes::from_static(b"0123456789"), points: 3 }])
        }
        async fn send(&self, _p: &Payload) -> Outcome {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_batch_is_encoded_and_queued_off_the_submitting_thread() {
        let stuck = Arc::new(Stuck { encoded_on: Mutex::new(vec![]), fail: false });
        let h = QueueHandle::spawn("t".into(), "e".into(), stuck.clone(), QueueConfig::default(), fast_retry()).unwrap();
        let h2 = h.clone();
        let submitter = std::thread::spawn(move || {
            h2.submit(batch(1));
            h2.submit(batch(2));
            std::thread::current().id()
        })
        .join()
        .unwrap();
        wait_for(|| h.status().queue_length == 2).await;
        assert_eq!(h.status().queue_bytes, 20);
        let on = stuck.encoded_on.lock().unwrap().clone();
        assert_eq!(on.len(), 2);
        assert!(on[0] == on[1] && on[0] != submitter && on[0] != std::thread::current().id(), "one encoder thread of its own");
    }

    /// Encodes slowly (a huge scraped batch) and sends at once.
    struct Slow(Duration);

    impl Exporter for Slow {
        fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
            std::thread::sleep(self.0);
            Ok(vec![Payload { body: bytes::Bytes::from(vec![batch.seq as u8; 10]), points: batch.points }])
        }
        async fn send(&self, _p: &Payload) -> Outcome {
            Outcome::Sent
        }
    }

    #[tokio::test]
    async fn a_slow_encoder_never_holds_up_the_submitter_and_holds_a_bounded_number_of_batches() {
        let h = QueueHandle::spawn("t".into(), "e".into(), Slow(Duration::from_millis(200)), QueueConfig::default(), fast_retry()).unwrap();
        let t0 = Instant::now();
        for i in 0..(INTAKE_BATCHES as u64 + 5) {
            h.submit(batch(i));
        }
        // 13 submits return long before even one 200 ms encode would end.
        assert!(t0.elapsed() < Duration::from_millis(150), "{:?}", t0.elapsed());
        // The one being encoded plus INTAKE_BATCHES waiting; the rest are counted dropped.
        let st = h.status();
        assert!((4..=5).contains(&st.dropped_payloads), "{st:?}");
        assert_eq!(st.dropped_points, st.dropped_payloads * 3);
        h.shutdown(Instant::now() + Duration::from_secs(5)).await;
        let st = h.status();
        assert_eq!(st.sent_payloads + st.dropped_payloads, INTAKE_BATCHES as u64 + 5, "every batch sent or counted: {st:?}");
    }

    #[tokio::test]
    async fn a_batch_submitted_after_shutdown_is_counted_dropped_not_queued() {
        let s = script(vec![]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry()).unwrap();
        h.shutdown(Instant::now() + Duration::from_secs(1)).await;
        h.submit(batch(1));
        let st = h.status();
        assert_eq!((st.dropped_payloads, st.dropped_points, st.queue_length), (1, 3, 0));
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_encoded_is_counted_dropped_and_logged_once() {
        let stuck = Arc::new(Stuck { encoded_on: Mutex::new(vec![]), fail: true });
        let h = QueueHandle::spawn("t".into(), "e".into(), stuck.clone(), QueueConfig::default(), fast_retry()).unwrap();
        h.submit(batch(1));
        h.submit(batch(2));
        wait_for(|| h.status().dropped_payloads == 2).await;
        let st = h.status();
        assert_eq!((st.dropped_payloads, st.dropped_points, st.queue_length), (2, 6, 0));
        assert_eq!(st.last_error.as_deref(), Some("encode: cannot encode"));
    }

    #[tokio::test]
    async fn retryable_failures_lose_nothing_and_keep_order() {
        let s = script(vec![Outcome::Retry { after: None, reason: "503".into() }, Outcome::Retry { after: None, reason: "503".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry()).unwrap();
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
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry()).unwrap();
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
        let retry = RetryConfig { max_interval: ConfigDuration::secs(1), ..fast_retry() };
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), retry).unwrap();
        let t0 = Instant::now();
        h.submit(batch(1));
        wait_for(|| s.sent.lock().unwrap().len() == 1).await;
        assert!(t0.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_server_delay_beyond_any_clock_is_capped_at_max_interval_instead_of_aborting() {
        // Retry-After: 18446744073709551615, RetryInfo of i64::MAX seconds, a day.
        let answers = [Duration::MAX, Duration::from_secs(u64::MAX), Duration::from_secs(i64::MAX as u64), Duration::from_secs(86_400)];
        let s = script(answers.iter().map(|d| Outcome::Retry { after: Some(*d), reason: "503".into() }).collect());
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry()).unwrap();
        h.submit(batch(1));
        // Four capped waits of at most 20 ms each, then sent.
        wait_for(|| s.sent.lock().unwrap().len() == 1).await;
        assert_eq!(s.calls.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn a_server_delay_is_capped_at_max_interval_and_never_below_the_backoff_step() {
        let r = RetryConfig::default();
        for _ in 0..50 {
            assert_eq!(r.delay(3, Some(Duration::from_secs(86_400))), Duration::from_secs(30));
            assert_eq!(r.delay(1, Some(Duration::MAX)), Duration::from_secs(30));
            assert_eq!(r.delay(1, Some(Duration::from_secs(10))), Duration::from_secs(10));
            // Retry-After: 0 or a date in the past: the normal step, not at once.
            let d = r.delay(4, Some(Duration::ZERO));
            assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(8), "{d:?}");
            let d = r.delay(1, None);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1), "{d:?}");
        }
        let huge = RetryConfig { initial_interval: ConfigDuration(Duration::MAX), max_interval: ConfigDuration(Duration::MAX), ..r };
        assert!(huge.backoff(7) >= Duration::from_secs(u64::MAX / 4), "no panic on a duration past f64's precision");
    }

    #[tokio::test]
    async fn zero_server_delays_are_retried_at_the_backoff_pace_not_at_once() {
        let s = script((0..1000).map(|_| Outcome::Retry { after: Some(Duration::ZERO), reason: "503".into() }).collect());
        let retry = RetryConfig { initial_interval: ConfigDuration::millis(100), max_interval: ConfigDuration::millis(100), ..Default::default() };
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), retry).unwrap();
        h.submit(batch(1));
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Steps of 50–100 ms: at most 11 tries in 500 ms (a storm would be thousands).
        let calls = s.calls.load(Ordering::SeqCst);
        assert!((2..=11).contains(&calls), "{calls}");
    }

    #[tokio::test]
    async fn a_payload_whose_next_wait_would_pass_max_elapsed_time_is_given_up_at_once() {
        let s = script((0..1000).map(|_| Outcome::Retry { after: Some(Duration::from_secs(60)), reason: "503".into() }).collect());
        let retry = RetryConfig { max_interval: ConfigDuration::secs(60), max_elapsed_time: ConfigDuration::secs(30), ..fast_retry() };
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), retry).unwrap();
        h.submit(batch(1));
        wait_for(|| h.status().dropped_payloads == 1).await;
        assert_eq!(s.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_durations_are_range_checked() {
        assert!(RetryConfig::default().validate().is_empty());
        let r = RetryConfig { initial_interval: ConfigDuration(Duration::from_secs(300_000_000_000 * 31_557_600)), ..Default::default() };
        let v = r.validate();
        assert!(v.iter().any(|m| m.contains("retry.initial_interval") && m.contains("too long")), "{v:?}");
        let r = RetryConfig { initial_interval: ConfigDuration::secs(10), max_interval: ConfigDuration::secs(5), ..Default::default() };
        assert!(r.validate().iter().any(|m| m.contains("shorter than")));
        let r = RetryConfig { max_elapsed_time: ConfigDuration::secs(0), ..Default::default() };
        assert!(r.validate().is_empty(), "0 = never give up");
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_but_never_the_one_in_flight() {
        // The server is down for good: everything stays queued; the bound is 25 bytes = 2 payloads.
        let s = script((0..1000).map(|_| Outcome::Retry { after: Some(Duration::from_secs(60)), reason: "down".into() }).collect());
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig { max_bytes: 25, ..Default::default() }, fast_retry()).unwrap();
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
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), retry).unwrap();
        h.submit(batch(1));
        wait_for(|| h.status().dropped_payloads == 1).await;
        assert_eq!(h.status().queue_length, 0);
    }

    #[tokio::test]
    async fn shutdown_flushes_what_is_queued_within_the_deadline() {
        let s = script(vec![Outcome::Retry { after: Some(Duration::from_millis(50)), reason: "503".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig::default(), fast_retry()).unwrap();
        h.submit(batch(1));
        h.submit(batch(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.shutdown(Instant::now() + Duration::from_secs(2)).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2]);
    }

    fn spooled(dir: &std::path::Path) -> QueueConfig {
        QueueConfig { spool: Some(SpoolConfig::new(dir)), ..Default::default() }
    }

    fn down() -> Vec<Outcome> {
        (0..1000).map(|_| Outcome::Retry { after: Some(Duration::from_millis(20)), reason: "503".into() }).collect()
    }

    #[tokio::test]
    async fn a_spooled_exporter_keeps_what_it_could_not_send_across_a_restart() {
        let d = tempfile::tempdir().unwrap();
        // Down for good, and a retry limit that would drop payloads kept in memory.
        let s = script(down());
        let retry = RetryConfig { max_elapsed_time: ConfigDuration::millis(30), ..fast_retry() };
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), spooled(d.path()), retry.clone()).unwrap();
        for i in 1..=5 {
            h.submit(batch(i));
        }
        wait_for(|| h.status().spool_records == 5).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let st = h.status();
        assert_eq!((st.queue_length, st.spool_records, st.spool_bytes, st.dropped_payloads), (0, 5, 5 * 30, 0), "{st:?}");
        assert!(st.spool_error.is_none());
        h.shutdown(Instant::now() + Duration::from_millis(50)).await;
        assert_eq!(h.status().dropped_payloads, 0, "kept on disk, not dropped at shutdown");

        // The next start sends them first, in order, then the new ones.
        let s = script(vec![]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), spooled(d.path()), retry).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        h.submit(batch(6));
        h.submit(batch(7));
        wait_for(|| s.sent.lock().unwrap().len() == 7).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2, 3, 4, 5, 6, 7]);
        wait_for(|| h.status().spool_records == 0).await;
        let st = h.status();
        assert_eq!((st.sent_payloads, st.sent_points, st.dropped_payloads), (7, 21, 0));
    }

    #[tokio::test]
    async fn a_spooled_payload_rejected_for_good_is_removed_from_the_spool() {
        let d = tempfile::tempdir().unwrap();
        let s = script(vec![Outcome::Drop { reason: "400 bad".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), spooled(d.path()), fast_retry()).unwrap();
        h.submit(batch(1));
        h.submit(batch(2));
        wait_for(|| s.sent.lock().unwrap().len() == 1).await;
        wait_for(|| h.status().spool_records == 0).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![2]);
        assert_eq!((h.status().dropped_payloads, h.status().dropped_points), (1, 3));
    }

    #[tokio::test]
    async fn a_spool_directory_that_cannot_be_created_falls_back_to_memory() {
        // Tests run as root, where permissions do not stop writes: a path under a regular file.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("file"), b"").unwrap();
        let dir = d.path().join("file").join("spool");
        let s = script(vec![Outcome::Retry { after: None, reason: "503".into() }]);
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), spooled(&dir), fast_retry()).unwrap();
        for i in 1..=3 {
            h.submit(batch(i));
        }
        wait_for(|| s.sent.lock().unwrap().len() == 3).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2, 3]);
        let st = h.status();
        let err = st.spool_error.expect("the failure is shown");
        assert!(err.contains(&dir.display().to_string()) && err.contains("Not a directory"), "{err}");
        assert_eq!((st.spool_records, st.dropped_payloads), (0, 0));
    }

    #[tokio::test]
    async fn a_spool_failing_mid_run_falls_back_to_memory_without_loss_or_reordering() {
        let d = tempfile::tempdir().unwrap();
        let mut answers = vec![Outcome::Retry { after: Some(Duration::from_millis(300)), reason: "503".into() }];
        answers.extend(down().into_iter().take(3));
        let s = script(answers);
        let retry = RetryConfig { max_interval: ConfigDuration::secs(1), ..fast_retry() };
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), spooled(d.path()), retry).unwrap();
        h.shared.spool.lock().unwrap().retry_every = Duration::from_millis(100);
        h.submit(batch(1));
        h.submit(batch(2));
        wait_for(|| h.status().spool_records == 2).await;
        // The disk fills up: new payloads wait in memory, behind the spooled ones.
        wait_for(|| h.shared.spool_open.load(Ordering::Acquire)).await;
        h.shared.spool.lock().unwrap().spool.as_mut().unwrap().fail_appends = Some(libc::ENOSPC);
        h.submit(batch(3));
        h.submit(batch(4));
        wait_for(|| h.status().queue_length == 2).await;
        let err = h.status().spool_error.expect("shown on /status");
        assert!(err.contains("No space left on device") && err.contains(&d.path().display().to_string()), "{err}");
        // Space again: still behind the memory queue until it drains.
        h.shared.spool.lock().unwrap().spool.as_mut().unwrap().fail_appends = None;
        h.submit(batch(5));
        wait_for(|| s.sent.lock().unwrap().len() == 5).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2, 3, 4, 5]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        h.submit(batch(6));
        wait_for(|| s.sent.lock().unwrap().len() == 6).await;
        // Acknowledged in the spool just after the send.
        wait_for(|| h.status().spool_records == 0).await;
        let st = h.status();
        assert!(st.spool_error.is_none(), "the spool is used again: {st:?}");
        assert_eq!((st.dropped_payloads, st.queue_length, st.spool_records), (0, 0, 0));
    }

    #[tokio::test]
    async fn an_exporter_replacing_another_on_reload_waits_for_its_spool() {
        let d = tempfile::tempdir().unwrap();
        let old = QueueHandle::spawn("t".into(), "e".into(), script(down()), spooled(d.path()), fast_retry()).unwrap();
        old.submit(batch(1));
        old.submit(batch(2));
        wait_for(|| old.status().spool_records == 2).await;
        // The new one starts while the old one still holds the directory, then the old one stops.
        let s = script(vec![]);
        let new = QueueHandle::spawn("t".into(), "e".into(), s.clone(), spooled(d.path()), fast_retry()).unwrap();
        new.submit(batch(3));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(s.sent.lock().unwrap().is_empty(), "nothing sent before the old spool is handed over");
        old.shutdown(Instant::now() + Duration::from_millis(50)).await;
        wait_for(|| s.sent.lock().unwrap().len() == 3).await;
        assert_eq!(*s.sent.lock().unwrap(), vec![1, 2, 3]);
        assert!(new.status().spool_error.is_none());
    }

    #[test]
    fn the_spool_is_configured_under_queue_as_spool_or_buffer() {
        let q: QueueConfig = serde_json::from_str(r#"{"spool": {"dir": "/var/spool/x"}}"#).unwrap();
        assert_eq!(q.spool, Some(SpoolConfig::new("/var/spool/x")));
        assert_eq!(q.max_bytes, DEFAULT_QUEUE_MAX_BYTES);
        let q: QueueConfig = serde_json::from_str(r#"{"buffer": {"dir": "/x", "max_bytes": 1000}}"#).unwrap();
        assert_eq!(q.spool.unwrap().max_bytes, 1000);
        assert!(serde_json::from_str::<QueueConfig>(r#"{"spool": {"dir": "/x", "size": 1}}"#).is_err());
        assert!(serde_json::from_str::<QueueConfig>(r#"{"spool": {}}"#).is_err(), "dir is required");
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
