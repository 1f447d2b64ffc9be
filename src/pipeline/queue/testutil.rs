//! Test exporters and helpers for the queue's tests: a scripted exporter that answers from a
//! list and records what it sent, fast retries, one-byte-tagged batches, and a spooled queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::super::spool::SpoolConfig;
use super::{Batch, Exporter, Outcome, Payload, QueueConfig, RetryConfig};
use crate::units::ConfigDuration;

pub(super) struct Script {
    pub(super) answers: Mutex<VecDeque<Outcome>>,
    pub(super) sent: Mutex<Vec<u8>>,
    pub(super) calls: AtomicUsize,
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

pub(super) fn script(answers: Vec<Outcome>) -> Arc<Script> {
    Arc::new(Script { answers: Mutex::new(answers.into()), sent: Mutex::new(vec![]), calls: AtomicUsize::new(0) })
}

pub(super) fn fast_retry() -> RetryConfig {
    RetryConfig { initial_interval: ConfigDuration::millis(5), max_interval: ConfigDuration::millis(20), ..Default::default() }
}

pub(super) fn batch(seq: u64) -> Arc<Batch> {
    Arc::new(Batch::new(Default::default(), seq, 3))
}

pub(super) async fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}

pub(super) fn spooled(dir: &std::path::Path) -> QueueConfig {
    QueueConfig { spool: Some(SpoolConfig::new(dir)), ..Default::default() }
}

pub(super) fn down() -> Vec<Outcome> {
    (0..1000).map(|_| Outcome::Retry { after: Some(Duration::from_millis(20)), reason: "503".into() }).collect()
}
