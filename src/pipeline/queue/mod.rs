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
//!
//! - `config`: the `queue` and `retry` sections ([`QueueConfig`], [`RetryConfig`]) and the backoff;
//! - `handle`: [`QueueHandle`], the scheduler's end: spawn, submit, status, shutdown;
//! - `intake`: on the exporter's thread, from submitted batches to spooled or queued payloads;
//! - `memory`: the bounded in-memory queue;
//! - `spooling`: the queue's use of the disk spool (open, append, read, acknowledge, fall back);
//! - `sender`: the send loop: one payload at a time, classify, retry with backoff, give up.

mod config;
mod handle;
mod intake;
mod memory;
mod sender;
mod spooling;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::spool::SpoolConfig;
use super::Batch;
pub use crate::status::ExporterStatus;
pub use config::{QueueConfig, RetryConfig, DEFAULT_INITIAL_INTERVAL, DEFAULT_MAX_ELAPSED, DEFAULT_MAX_INTERVAL, DEFAULT_QUEUE_MAX_BYTES};
pub use handle::{QueueHandle, INTAKE_BATCHES};
use memory::Queue;
use spooling::SpoolSlot;
pub use spooling::SPOOL_RETRY;

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

/// What the intake, the sender and the handle of one exporter share.
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

#[cfg(test)]
mod testutil;
