//! Errors from `accept(2)`, logged once per episode.
//!
//! Running out of file descriptors (`EMFILE` for the process, `ENFILE` for the system) or of
//! kernel memory (`ENOBUFS`, `ENOMEM`) makes `accept` fail until something is closed; retried
//! every [`EXHAUSTED_BACKOFF`], that would be ten lines a second. One warning starts the
//! episode, every failure is counted, and the first accept that works after
//! [`EPISODE_QUIET`] without a failure ends it with one line saying how many failed (so a
//! server that keeps hitting the limit, accepting one connection between failures, logs once).
//! Errors about one connection only (the peer reset it before it was accepted:
//! `ECONNABORTED`, `EPROTO`, ...) are not episodes: logged at debug, accepting goes on at once.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the accept loop waits after a resource-exhaustion error before trying again.
pub const EXHAUSTED_BACKOFF: Duration = Duration::from_millis(100);

/// An exhaustion episode ends at the first successful accept this long after its last failure.
pub const EPISODE_QUIET: Duration = Duration::from_secs(10);

/// What an accept error calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Out of descriptors or memory: free what can be freed, wait [`EXHAUSTED_BACKOFF`], retry.
    Backoff,
    /// One connection's trouble: accept the next one at once.
    Retry,
}

/// Whether an accept error means the process or the system ran out of something (an
/// episode), rather than one connection going wrong.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// The exhaustion episode under way: failures so far and when the last one was.
#[derive(Debug, Default)]
struct Episode {
    failures: u64,
    last: Option<Instant>,
}

/// Accept failures: counted, and logged once per episode.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    /// Accepts that failed since start (every kind).
    pub total: AtomicU64,
    episode: Mutex<Episode>,
}

impl AcceptErrors {
    /// Notes an accept that failed at `now`, logging it if it starts an episode; says what to
    /// do next.
    pub fn failed(&self, e: &io::Error, now: Instant) -> Action {
        self.total.fetch_add(1, Ordering::Relaxed);
        if !is_exhaustion(e) {
            tracing::debug!(error = %e, "Accept failed for one connection");
            return Action::Retry;
        }
        let mut ep = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        if ep.last.is_none() {
            tracing::warn!(
                error = %e,
                retry_every = ?EXHAUSTED_BACKOFF,
                "Cannot accept connections: out of file descriptors or memory; closing idle connections and keeping fewer until it passes"
            );
        }
        ep.failures = ep.failures.saturating_add(1);
        ep.last = Some(now);
        Action::Backoff
    }

    /// Notes an accept that worked at `now`. Ends the episode under way (one line) if its last
    /// failure is [`EPISODE_QUIET`] ago, returning how many accepts it saw fail.
    pub fn accepted(&self, now: Instant) -> Option<u64> {
        let mut ep = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        let last = ep.last?;
        if now.saturating_duration_since(last) < EPISODE_QUIET {
            return None;
        }
        let failed = std::mem::take(&mut *ep).failures;
        tracing::info!(failed_accepts = failed, "Accepting connections again");
        Some(failed)
    }

    /// Whether an exhaustion episode is under way.
    pub fn in_episode(&self) -> bool {
        self.episode.lock().unwrap_or_else(|p| p.into_inner()).last.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formatted log lines written while `f` runs.
    fn logs_of(f: impl FnOnce()) -> Vec<String> {
        crate::test_logs::capture_logs(f).1.lines().map(String::from).collect()
    }

    #[test]
    fn running_out_of_descriptors_is_logged_once_per_episode_and_every_failure_counted() {
        let errs = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let lines = logs_of(|| {
            // Ten failures a second for five seconds, with an accept between each: one episode.
            for i in 0..50 {
                assert_eq!(errs.failed(&emfile, at(i * 100)), Action::Backoff);
                assert_eq!(errs.accepted(at(i * 100 + 50)), None, "too soon to call it over");
            }
            assert!(errs.in_episode());
            assert_eq!(errs.accepted(at(4_900) + EPISODE_QUIET), Some(50));
            assert!(!errs.in_episode());
            assert_eq!(errs.accepted(at(30_000)), None, "no episode under way");
            // A second episode (the system's table this time) gets its own line.
            for i in 0..3 {
                errs.failed(&io::Error::from_raw_os_error(libc::ENFILE), at(40_000 + i));
            }
            assert_eq!(errs.accepted(at(60_000)), Some(3));
        });
        assert_eq!(errs.total.load(Ordering::Relaxed), 53);
        let warns: Vec<_> = lines.iter().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warns.len(), 2, "{lines:#?}");
        assert!(warns[0].contains("Too many open files"), "{}", warns[0]);
        let ends: Vec<_> = lines.iter().filter(|l| l.contains("Accepting connections again")).collect();
        assert_eq!(ends.len(), 2, "{lines:#?}");
        assert!(ends[0].contains("failed_accepts=50"), "{}", ends[0]);
        assert!(ends[1].contains("failed_accepts=3"), "{}", ends[1]);
    }

    #[test]
    fn a_connection_reset_before_accept_is_no_episode_and_logs_no_warning() {
        let errs = AcceptErrors::default();
        let lines = logs_of(|| {
            for _ in 0..10 {
                assert_eq!(errs.failed(&io::Error::from_raw_os_error(libc::ECONNABORTED), Instant::now()), Action::Retry);
            }
            assert!(!errs.in_episode());
            assert_eq!(errs.accepted(Instant::now() + EPISODE_QUIET), None);
        });
        assert_eq!(errs.total.load(Ordering::Relaxed), 10);
        assert!(lines.is_empty(), "{lines:#?}");
    }

    #[test]
    fn exhaustion_is_emfile_enfile_enobufs_or_enomem() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_exhaustion(&io::Error::from_raw_os_error(code)), "{code}");
        }
        assert!(!is_exhaustion(&io::Error::from_raw_os_error(libc::ECONNABORTED)));
        assert!(!is_exhaustion(&io::Error::other("no errno")));
    }
}
