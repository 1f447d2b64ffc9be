//! The sender task of one exporter: takes the oldest payload (spool first, then memory),
//! sends it, and by the [`Outcome`] counts it sent, drops it, or retries it with backoff until
//! `max_elapsed_time` or the shutdown deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument as _;

use tokio::sync::watch;

use super::super::spool::Pos;
use super::{Exporter, Outcome, RetryConfig, Shared};
use crate::units::duration::deadline_after;
use crate::units::ConfigDuration;

/// Where the payload being sent comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Memory(u64),
    Spool(Pos),
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub(super) async fn sender_loop<E: Exporter>(
    name: String,
    exporter: Arc<E>,
    shared: Arc<Shared>,
    retry: RetryConfig,
    mut stop: watch::Receiver<Option<Instant>>,
) {
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
            let outcome = exporter.send(&payload).instrument(tracing::debug_span!("send", exporter = %name, attempt)).await;
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
    use super::super::testutil::*;
    use super::super::*;
    use crate::units::ConfigDuration;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

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
}
