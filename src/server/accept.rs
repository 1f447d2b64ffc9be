//! Errors from `accept(2)`, logged once per episode.
//!
//! Running out of file descriptors (`EMFILE` for the process, `ENFILE` for the system) or of
//! kernel memory (`ENOBUFS`, `ENOMEM`) makes every `accept` fail until something is closed;
//! retried every [`EXHAUSTED_BACKOFF`], that would be ten lines a second. One warning starts
//! the episode, every failure is counted, and the first accept that works again ends it with
//! one line saying how many failed. Errors about one connection only (the peer reset it before
//! it was accepted: `ECONNABORTED`, `EPROTO`, ...) are not episodes: logged at debug, accepting
//! goes on at once.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the accept loop waits after a resource-exhaustion error before trying again.
pub const EXHAUSTED_BACKOFF: Duration = Duration::from_millis(100);

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

/// Accept failures: counted, and logged once per episode.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    /// Accepts that failed since start (every kind).
    pub total: AtomicU64,
    /// Failures of the current exhaustion episode (0: none under way).
    episode: AtomicU64,
}

impl AcceptErrors {
    /// Notes a failed accept, logging it if it starts an episode; says what to do next.
    pub fn failed(&self, e: &io::Error) -> Action {
        self.total.fetch_add(1, Ordering::Relaxed);
        if !is_exhaustion(e) {
            tracing::debug!(error = %e, "Accept failed for one connection");
            return Action::Retry;
        }
        if self.episode.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                error = %e,
                retry_every = ?EXHAUSTED_BACKOFF,
                "Cannot accept connections: out of file descriptors or memory; closing the oldest idle connection and retrying"
            );
        }
        Action::Backoff
    }

    /// Notes a successful accept, ending an episode (one line) if one was under way. Returns
    /// how many accepts the episode saw fail.
    pub fn accepted(&self) -> u64 {
        let failed = self.episode.swap(0, Ordering::Relaxed);
        if failed > 0 {
            tracing::info!(failed_accepts = failed, "Accepting connections again");
        }
        failed
    }

    /// Whether an exhaustion episode is under way.
    pub fn in_episode(&self) -> bool {
        self.episode.load(Ordering::Relaxed) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects the formatted log lines written while `f` runs.
    fn logs_of(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_ansi(false).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(sub, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(String::from).collect()
    }

    #[test]
    fn running_out_of_descriptors_is_logged_once_per_episode_and_every_failure_counted() {
        let errs = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let lines = logs_of(|| {
            for _ in 0..50 {
                assert_eq!(errs.failed(&emfile), Action::Backoff);
            }
            assert!(errs.in_episode());
            assert_eq!(errs.accepted(), 50);
            assert_eq!(errs.accepted(), 0, "the episode is over");
            // A second episode (the system's table this time) gets its own line.
            for _ in 0..3 {
                errs.failed(&io::Error::from_raw_os_error(libc::ENFILE));
            }
            errs.accepted();
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
                assert_eq!(errs.failed(&io::Error::from_raw_os_error(libc::ECONNABORTED)), Action::Retry);
            }
            assert!(!errs.in_episode());
            assert_eq!(errs.accepted(), 0);
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
