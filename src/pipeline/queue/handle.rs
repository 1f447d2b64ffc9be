//! [`QueueHandle`]: the scheduler's end of one exporter's queue. It starts the encoder thread
//! and the sender task, hands batches over without waiting, reports the counters, and flushes
//! within a deadline at shutdown.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{watch, Notify};

use super::intake::encoder_thread;
use super::memory::Queue;
use super::sender::sender_loop;
use super::spooling::{SpoolSlot, SPOOL_RETRY};
use super::{Batch, Exporter, ExporterStatus, QueueConfig, RetryConfig, Shared};

/// Batches that may wait for an exporter's encoder thread; beyond, new ones are dropped and
/// counted (with the tick's batch shared by every exporter, this bounds what a slow encoder or
/// disk can hold).
pub const INTAKE_BATCHES: usize = 8;

/// The scheduler's end of one exporter's queue.
#[derive(Clone)]
pub struct QueueHandle {
    /// The encoder thread's intake; `None` once shutdown began (later batches are counted
    /// dropped).
    intake: Arc<Mutex<Option<std::sync::mpsc::SyncSender<Arc<Batch>>>>>,
    /// Fires when the encoder thread has encoded what it was given and ended.
    intake_done: Arc<Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
    pub(super) shared: Arc<Shared>,
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
    /// episode). Returns whether the batch was taken.
    pub fn submit(&self, batch: Arc<Batch>) -> bool {
        let refused = match &*self.intake.lock().unwrap() {
            Some(tx) => match tx.try_send(batch) {
                Ok(()) => {
                    self.shared.intake_full.store(false, Ordering::Relaxed);
                    return true;
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
        false
    }

    /// Whether a batch pushed to this exporter now should be taken: the encoder is keeping up
    /// (its intake was not full at the last submit) and the in-memory queue is at most half
    /// full (beyond, the backend is not keeping up and new payloads would push out the oldest).
    /// With a spool in use the spool's own bound applies. The OTLP receiver asks this before
    /// it accepts a request, so a client is told to back off instead of its points being lost.
    pub fn has_room(&self) -> bool {
        if self.intake.lock().unwrap().is_none() || self.shared.intake_full.load(Ordering::Relaxed) {
            return false;
        }
        self.shared.spool_open.load(Ordering::Relaxed) || self.shared.queue.lock().unwrap().bytes <= self.shared.max_bytes / 2
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
