//! [`QueueHandle`]: the scheduler's end of one exporter's queue. It starts the exporter's
//! thread, hands batches over without waiting, reports the counters, and flushes within a
//! deadline at shutdown.
//!
//! Each exporter has one thread of its own running a single-threaded Tokio runtime: the intake
//! (encode, compress, spool; [`super::intake`]) and the sender ([`super::sender`]) run there,
//! and so do the exporter's connections (its HTTP client's and gRPC channel's tasks are spawned
//! on that runtime: the exporter is built inside it). A tick wakes that one thread, which
//! encodes, sends, and sleeps until the answer; nothing crosses to the agent's async workers.
//! Measured on a 2-CPU host (OTLP/HTTP, gzip, 100 ms ticks): 5 context switches and ~9 futex
//! calls a tick before, with an encoder thread handing payloads to a sender task on the
//! shared runtime, whose two workers both woke.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::intake::intake_loop;
use super::memory::Queue;
use super::sender::sender_loop;
use super::spooling::{SpoolSlot, SPOOL_RETRY};
use super::{Batch, Exporter, ExporterStatus, QueueConfig, RetryConfig, Shared};

/// Batches that may wait for an exporter's intake; beyond, new ones are dropped and counted
/// (with the tick's batch shared by every exporter, this bounds what a slow encoder or disk can
/// hold).
pub const INTAKE_BATCHES: usize = 8;

/// The scheduler's end of one exporter's queue.
#[derive(Clone)]
pub struct QueueHandle {
    /// The intake; `None` once shutdown began (later batches are counted dropped).
    intake: Arc<Mutex<Option<mpsc::Sender<Arc<Batch>>>>>,
    /// Fires when the intake has encoded what it was given and ended.
    intake_done: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    pub(super) shared: Arc<Shared>,
    stop: watch::Sender<Option<Instant>>,
    sender: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Ends the exporter's thread (sent at the end of shutdown; dropped with the last handle).
    exit: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

impl QueueHandle {
    /// Starts the thread of `exporter`; fails only when the OS refuses a thread.
    pub fn spawn<E: Exporter>(name: String, endpoint: String, exporter: E, queue: QueueConfig, retry: RetryConfig) -> Result<QueueHandle, String> {
        Self::spawn_with(name, endpoint, move || Ok(exporter), queue, retry)
    }

    /// Starts the exporter's thread and its runtime, and builds the exporter with `make` inside
    /// that runtime (so that what it spawns, a gRPC channel's worker, runs there too); waits
    /// until it is built.
    pub fn spawn_with<E: Exporter>(
        name: String,
        endpoint: String,
        make: impl FnOnce() -> Result<E, String> + Send + 'static,
        queue: QueueConfig,
        retry: RetryConfig,
    ) -> Result<QueueHandle, String> {
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
        let (tx, rx) = mpsc::channel::<Arc<Batch>>(INTAKE_BATCHES);
        let (done_tx, done_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel::<()>();
        let (stop_tx, stop_rx) = watch::channel(None);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        {
            let (shared, name) = (shared.clone(), name.clone());
            std::thread::Builder::new()
                .name(format!("export {name}"))
                .spawn(move || {
                    // Built, and dropped, on this thread: a runtime may not be dropped where the
                    // caller's async code runs.
                    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().thread_name(format!("export {name} io")).build() {
                        Ok(rt) => rt,
                        Err(e) => return drop(ready_tx.send(Err(format!("cannot start the exporter's runtime: {e}")))),
                    };
                    let made = {
                        let _inside = rt.enter();
                        make()
                    };
                    let exporter = match made {
                        Ok(e) => Arc::new(e),
                        Err(e) => return drop(ready_tx.send(Err(e))),
                    };
                    let sender = rt.spawn(sender_loop(name.clone(), exporter.clone(), shared.clone(), retry, stop_rx));
                    let _ = ready_tx.send(Ok(sender));
                    rt.block_on(async {
                        intake_loop(&shared, &name, &*exporter, rx).await;
                        let _ = done_tx.send(());
                        // The sender goes on until shutdown has flushed (or every handle is gone).
                        let _ = exit_rx.await;
                    });
                    // A blocking task still stuck (a spool read on a dead disk) must not hold
                    // the thread.
                    rt.shutdown_background();
                })
                .map_err(|e| format!("cannot start the exporter's thread: {e}"))?;
        }
        let sender = ready_rx.recv().map_err(|_| "the exporter's thread ended before it started".to_string())??;
        Ok(QueueHandle {
            intake: Arc::new(Mutex::new(Some(tx))),
            intake_done: Arc::new(Mutex::new(Some(done_rx))),
            shared,
            stop: stop_tx,
            sender: Arc::new(Mutex::new(Some(sender))),
            exit: Arc::new(Mutex::new(Some(exit_tx))),
        })
    }

    /// Hands a batch to the exporter's thread without waiting: encoding (and
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
                Err(mpsc::error::TrySendError::Full(b)) => {
                    if !self.shared.intake_full.swap(true, Ordering::Relaxed) {
                        let name = self.shared.status.lock().unwrap().name.clone();
                        tracing::warn!(exporter = %name, waiting = INTAKE_BATCHES, "Encoding falls behind the ticks; dropping new batches until it catches up");
                    }
                    b
                }
                Err(mpsc::error::TrySendError::Closed(b)) => b,
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
        // Let the intake encode what was submitted (closing it ends the intake once it has),
        // then let the sender drain until the deadline. An intake still encoding at the
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
        drop((st, q));
        if let Some(exit) = self.exit.lock().unwrap().take() {
            let _ = exit.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;
    use std::time::{Duration, Instant};

    /// Records the threads it is built, encodes and sends on, and where a task it spawned
    /// when built ran.
    #[derive(Default)]
    struct Where {
        built: Mutex<Option<ThreadId>>,
        spawned: Arc<Mutex<Option<ThreadId>>>,
        encoded: Mutex<Option<ThreadId>>,
        sent: Mutex<Option<ThreadId>>,
    }

    impl Exporter for Arc<Where> {
        fn encode(&self, batch: &Batch) -> Result<Vec<Payload>, String> {
            *self.encoded.lock().unwrap() = Some(std::thread::current().id());
            Ok(vec![Payload { body: bytes::Bytes::from_static(b"x"), points: batch.points }])
        }
        async fn send(&self, _p: &Payload) -> Outcome {
            *self.sent.lock().unwrap() = Some(std::thread::current().id());
            Outcome::Sent
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exporter_is_built_encodes_sends_and_runs_what_it_spawns_on_its_own_thread() {
        let w = Arc::new(Where::default());
        let w2 = w.clone();
        let make = move || {
            *w2.built.lock().unwrap() = Some(std::thread::current().id());
            // Like a gRPC channel's worker: spawned on the runtime current while it is built.
            let spawned = w2.spawned.clone();
            tokio::spawn(async move { *spawned.lock().unwrap() = Some(std::thread::current().id()) });
            Ok(w2)
        };
        let h = QueueHandle::spawn_with("t".into(), "e".into(), make, QueueConfig::default(), fast_retry()).unwrap();
        h.submit(batch(1));
        wait_for(|| h.status().sent_payloads == 1).await;
        let built = w.built.lock().unwrap().unwrap();
        assert_ne!(built, std::thread::current().id());
        let all = [*w.spawned.lock().unwrap(), *w.encoded.lock().unwrap(), *w.sent.lock().unwrap()];
        assert_eq!(all, [Some(built); 3], "one thread for all of it");
        h.shutdown(Instant::now() + Duration::from_secs(2)).await;
    }

    #[tokio::test]
    async fn an_exporter_that_cannot_be_built_is_an_error_even_when_asked_from_async_code() {
        // The runtime made for it is dropped on its thread: dropped here, inside the test's
        // runtime, it would panic.
        let r = QueueHandle::spawn_with::<Arc<Where>>("t".into(), "e".into(), || Err("bad certificate".into()), QueueConfig::default(), fast_retry());
        assert_eq!(r.err().as_deref(), Some("bad certificate"));
    }
}
