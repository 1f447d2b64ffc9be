//! The intake of one exporter: submitted batches → payloads, appended to the spool
//! (write-ahead) or queued in memory. It runs on the exporter's own thread, never on the
//! tick's (see [`super::handle`]).

use std::sync::Arc;
use std::time::Instant;

use super::super::spool::SYNC_INTERVAL;
use super::spooling::open_spool;
use super::{Batch, Exporter, Payload, Shared};
use crate::units::duration::deadline_after;

/// Encodes each submitted batch and appends its payloads to the spool or queues them in memory,
/// and syncs the spool every [`SYNC_INTERVAL`]; ends when the intake is closed and drained.
///
/// Encoding and spool I/O block, which they may: this runs on the exporter's own thread, whose
/// runtime only also runs the exporter's sender (which waits meanwhile; it sends what this
/// queues).
pub(super) async fn intake_loop<E: Exporter>(shared: &Shared, name: &str, exporter: &E, mut rx: tokio::sync::mpsc::Receiver<Arc<Batch>>) {
    let spooled = shared.spool_cfg.is_some();
    if spooled {
        open_spool(shared, name);
    }
    let mut last_err: Option<String> = None;
    let mut next_sync = deadline_after(Instant::now(), SYNC_INTERVAL);
    loop {
        let batch = if spooled {
            match tokio::time::timeout_at(next_sync.into(), rx.recv()).await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(_) => {
                    shared.spool_sync(name);
                    next_sync = deadline_after(Instant::now(), SYNC_INTERVAL);
                    continue;
                }
            }
        } else {
            match rx.recv().await {
                Some(b) => b,
                None => break,
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
    let _encode = tracing::debug_span!("encode", exporter = %name, points = batch.points).entered();
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

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

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

    #[tokio::test]
    async fn a_slow_encoder_never_holds_up_the_submitter_and_holds_a_bounded_number_of_batches() {
        let h = QueueHandle::spawn("t".into(), "e".into(), Slow(Duration::from_millis(200)), QueueConfig::default(), fast_retry()).unwrap();
        for i in 0..(INTAKE_BATCHES as u64 + 5) {
            h.submit(batch(i));
        }
        // Submitting never waits for the encoder: with one batch being encoded and
        // INTAKE_BATCHES waiting, the rest are refused at once and counted dropped (a submit that
        // waited would have queued them all).
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
}
