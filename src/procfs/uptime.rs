//! `/proc/uptime`: seconds since boot and seconds all CPUs together spent idle.
//!
//! ```text
//! 2300.30 4416.01
//! ```

use super::{num, LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// The contents of `/proc/uptime`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uptime {
    /// Seconds since boot (CLOCK_BOOTTIME: includes suspend).
    pub seconds: f64,
    /// Seconds of idle time, summed over CPUs.
    pub idle: f64,
}

/// Parses the text of `/proc/uptime`.
pub fn parse(text: &str) -> Result<Uptime, LineError> {
    let mut it = text.split_ascii_whitespace();
    let seconds = num(it.next(), 1, "uptime")?;
    let idle = num(it.next(), 1, "idle time")?;
    Ok(Uptime { seconds, idle })
}

/// `/proc/uptime` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("uptime")
}

/// Reads and parses `/proc/uptime` through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<Uptime, ProcError> {
    let text = file.read()?;
    parse(text).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses `/proc/uptime` once.
pub fn read(paths: &HostPaths) -> Result<Uptime, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

/// Seconds since boot from `CLOCK_BOOTTIME`, the clock `/proc/uptime` prints (to 1/100 s):
/// a vDSO call, no system call and no text.
pub fn boottime_seconds() -> std::io::Result<f64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn boottime_is_what_proc_uptime_prints() {
        let before = boottime_seconds().unwrap();
        let file = read(&HostPaths::default()).unwrap().seconds;
        let after = boottime_seconds().unwrap();
        // The file truncates to centiseconds.
        assert!(before - 0.01 <= file && file <= after, "{before} <= {file} <= {after}");
    }

    #[test]
    fn parses_uptime_and_idle_seconds() {
        assert_eq!(read(&fixture_paths("linux-6.18-vm")).unwrap(), Uptime { seconds: 2300.30, idle: 4416.01 });
    }

    #[test]
    fn names_the_missing_field() {
        assert_eq!(parse("12.5\n").unwrap_err().to_string(), "line 1: idle time: missing field");
    }
}
