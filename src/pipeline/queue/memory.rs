//! The in-memory queue of one exporter: payloads in order, bounded by bytes; when full the
//! oldest are dropped (never the one in flight), counted, and logged once per episode.

use std::collections::VecDeque;

use super::{Payload, Shared};

pub(super) struct Queue {
    pub(super) items: VecDeque<(u64, Payload)>,
    pub(super) bytes: u64,
    pub(super) next_id: u64,
    pub(super) full_episode: bool,
}

impl Shared {
    pub(super) fn push(&self, name: &str, p: Payload) {
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

    pub(super) fn front(&self) -> Option<(u64, Payload)> {
        self.queue.lock().unwrap().items.front().cloned()
    }

    pub(super) fn remove(&self, id: u64) {
        let mut q = self.queue.lock().unwrap();
        if let Some(pos) = q.items.iter().position(|(i, _)| *i == id) {
            let (_, p) = q.items.remove(pos).expect("position found");
            q.bytes -= p.body.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use std::time::Duration;

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
    async fn a_queue_more_than_half_full_has_no_room_for_a_pushed_batch() {
        let s = script((0..1000).map(|_| Outcome::Retry { after: Some(Duration::from_secs(60)), reason: "down".into() }).collect());
        let h = QueueHandle::spawn("t".into(), "e".into(), s.clone(), QueueConfig { max_bytes: 45, ..Default::default() }, fast_retry()).unwrap();
        assert!(h.has_room());
        assert!(h.submit(batch(1)) && h.submit(batch(2)));
        wait_for(|| h.status().queue_bytes == 20).await;
        assert!(h.has_room(), "20 of 45 bytes");
        assert!(h.submit(batch(3)));
        wait_for(|| h.status().queue_bytes == 30).await;
        assert!(!h.has_room(), "30 of 45 bytes: more than half");
    }
}
