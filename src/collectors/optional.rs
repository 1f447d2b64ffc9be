//! A source the host may not have: no `nf_conntrack` module, IPv6 disabled, no hwmon chips, a
//! seccomp policy refusing a system call. Absent means no points and no error; the collector
//! logs it once, at debug level, and once more if the source appears later. An absent source
//! is looked for again once every [`RECHECK`] (a module loaded later, a disk plugged in), not
//! every tick: on a VM five such collectors would otherwise fail five `open`s a tick.
//!
//! ```ignore
//! if !self.presence.due() { return Ok(()) }
//! let Some(c) = self.presence.check(self.files.read())? else { return Ok(()) };
//! ```

use crate::procfs::ProcError;
use std::time::{Duration, Instant};

/// How long an absent source is left alone before it is looked for again.
pub const RECHECK: Duration = Duration::from_secs(60);

/// Whether a collector's optional source was there at its last read.
#[derive(Debug)]
pub struct Presence {
    collector: &'static str,
    /// `Some(true)` present, `Some(false)` absent, `None` not read yet.
    present: Option<bool>,
    /// When the source was last found absent.
    absent_at: Option<Instant>,
}

impl Presence {
    /// Not read yet.
    pub fn new(collector: &'static str) -> Self {
        Presence { collector, present: None, absent_at: None }
    }

    /// Whether to read the source this tick: unless it was absent less than [`RECHECK`] ago.
    pub fn due(&self) -> bool {
        match (self.present, self.absent_at) {
            (Some(false), Some(at)) => at.elapsed() >= RECHECK,
            _ => true,
        }
    }

    /// The value of a read, `None` if the source does not exist (`NotFound`), or the error.
    pub fn check<T>(&mut self, r: Result<T, ProcError>) -> Result<Option<T>, ProcError> {
        match r {
            Ok(v) => {
                self.present();
                Ok(Some(v))
            }
            Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => {
                self.absent(&e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Records the source as there (logged at debug level when it was absent before).
    pub fn present(&mut self) {
        if self.present == Some(false) {
            tracing::debug!(collector = self.collector, "Source appeared");
        }
        self.present = Some(true);
    }

    /// Records the source as absent (logged once, at debug level).
    pub fn absent(&mut self, why: &dyn std::fmt::Display) {
        if self.present != Some(false) {
            tracing::debug!(collector = self.collector, reason = %why, "Source not on this host; nothing to report");
        }
        self.present = Some(false);
        self.absent_at = Some(Instant::now());
    }

    /// Whether the last read found no source.
    pub fn is_absent(&self) -> bool {
        self.present == Some(false)
    }

    /// Whether the last read found the source.
    pub fn is_present(&self) -> bool {
        self.present == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_absence_and_any_other_error_stays_an_error() {
        let mut p = Presence::new("test");
        let missing = ProcError::io("/nope", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(p.due(), "never read: due");
        assert!(p.check::<u32>(Err(missing)).unwrap().is_none());
        assert!(!p.is_present());
        assert!(!p.due(), "just found absent: left alone until RECHECK");
        p.absent_at = Some(Instant::now() - RECHECK);
        assert!(p.due(), "looked for again after RECHECK");
        let denied = ProcError::io("/nope", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(p.check::<u32>(Err(denied)).is_err());
        assert_eq!(p.check(Ok::<_, ProcError>(3)).unwrap(), Some(3));
        assert!(p.is_present());
    }
}
