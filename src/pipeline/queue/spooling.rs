//! The queue's use of the disk spool (`queue.spool`, see [`super::super::spool`]): opened by
//! the exporter's thread at start (waiting for a predecessor's lock on reload), appended to,
//! read from and acknowledged; on failure the payloads go to memory and the spool is tried
//! again after [`SPOOL_RETRY`]. Blocking file I/O, called on blocking threads.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::spool::{Pos, Spool, SpoolError};
use super::{Payload, Shared};
use crate::units::duration::deadline_after;

/// After the spool failed, how long before it is tried again.
pub const SPOOL_RETRY: Duration = Duration::from_secs(30);
/// How long a new exporter waits for a spool directory still held by the one it replaces (a
/// reload stops the old one within 5 s).
const SPOOL_LOCK_WAIT: Duration = Duration::from_secs(10);

pub(super) struct SpoolSlot {
    pub(super) spool: Option<Spool>,
    /// After a failure: not before this instant.
    pub(super) retry_at: Option<Instant>,
    pub(super) retry_every: Duration,
    /// The error of the current failure episode (logged once).
    pub(super) error: Option<String>,
    pub(super) full_episode: bool,
    pub(super) too_large_logged: bool,
}

/// Opens the spool at start; a directory still held by the exporter this one replaces (a
/// reload) is waited for, batches meanwhile waiting in the intake channel.
pub(super) fn open_spool(shared: &Shared, name: &str) {
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

impl Shared {
    pub(super) fn open_spool(&self, name: &str, slot: &mut SpoolSlot) -> Result<(), SpoolError> {
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
    pub(super) fn spool_failed(&self, name: &str, slot: &mut SpoolSlot, e: &SpoolError) {
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

    pub(super) fn spool_stats(&self, spool: &Spool) {
        let stats = spool.stats();
        let mut st = self.status.lock().unwrap();
        st.spool_bytes = stats.bytes;
        st.spool_records = stats.records;
    }

    /// Appends to the spool; false when the payload must go to the memory queue instead.
    pub(super) fn spool_append(&self, name: &str, p: &Payload) -> bool {
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
    pub(super) fn spool_read(&self, name: &str) -> Option<(Pos, Payload)> {
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

    pub(super) fn spool_ack(&self, name: &str, pos: Pos) {
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

    pub(super) fn spool_sync(&self, name: &str) {
        let mut slot = self.spool.lock().unwrap();
        let Some(spool) = slot.spool.as_mut() else { return };
        if let Err(e) = spool.sync(false) {
            self.spool_failed(name, &mut slot, &e);
        }
    }

    /// Closes the spool at shutdown (fsynced; the lock released).
    pub(super) fn spool_close(&self) {
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
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::units::ConfigDuration;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

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
}
