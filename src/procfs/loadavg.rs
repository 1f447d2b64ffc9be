//! `/proc/loadavg`: the 1, 5 and 15 minute load averages, runnable/total scheduling entities
//! and the last pid handed out.
//!
//! ```text
//! 0.33 0.38 0.17 1/85 6439
//! ```

use super::{num, LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// The contents of `/proc/loadavg`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    /// Runnable scheduling entities (threads) now.
    pub running: u64,
    /// All scheduling entities (threads).
    pub total: u64,
    pub last_pid: u64,
}

/// Parses the text of `/proc/loadavg`; the error names the field that is missing or bad.
pub fn parse(text: &str) -> Result<LoadAvg, String> {
    parse_at(text).map_err(|e| e.msg)
}

fn parse_at(text: &str) -> Result<LoadAvg, LineError> {
    let mut it = text.split_ascii_whitespace();
    let one = num(it.next(), 1, "1m load")?;
    let five = num(it.next(), 1, "5m load")?;
    let fifteen = num(it.next(), 1, "15m load")?;
    let (running, total) = match it.next().and_then(|s| s.split_once('/')) {
        Some((r, t)) => (num(Some(r), 1, "running")?, num(Some(t), 1, "total")?),
        None => return Err(LineError::new(1, "running/total: missing or without '/'")),
    };
    let last_pid = num(it.next(), 1, "last pid")?;
    Ok(LoadAvg { one, five, fifteen, running, total, last_pid })
}

/// `/proc/loadavg` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("loadavg")
}

/// Reads and parses `/proc/loadavg` through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<LoadAvg, ProcError> {
    let text = file.read()?;
    parse_at(text).map_err(|e| super::at(file.path(), e))
}

/// The load averages from `sysinfo(2)`: the kernel's `avenrun`, which `/proc/loadavg` prints
/// rounded to two decimals, here to 1/65536; no text to format and parse. `running`, `total`
/// and `last_pid` are not in it and stay 0.
pub fn from_sysinfo() -> std::io::Result<LoadAvg> {
    // SAFETY: sysinfo fills the zeroed struct it is given.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SI_LOAD_SHIFT: the loads are fixed point with 16 fraction bits.
    let load = |l: libc::c_ulong| l as f64 / 65536.0;
    Ok(LoadAvg { one: load(si.loads[0]), five: load(si.loads[1]), fifteen: load(si.loads[2]), ..LoadAvg::default() })
}

/// Reads and parses `/proc/loadavg` once.
pub fn read(paths: &HostPaths) -> Result<LoadAvg, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn sysinfo_gives_the_loads_of_proc_loadavg_to_its_two_decimals() {
        // The averages move every 5 s: retry until a read of the file falls between two calls
        // that agree.
        for _ in 0..20 {
            let a = from_sysinfo().unwrap();
            let f = read(&HostPaths::default()).unwrap();
            let b = from_sysinfo().unwrap();
            if a != b {
                continue;
            }
            for (k, s, f) in [("1m", a.one, f.one), ("5m", a.five, f.five), ("15m", a.fifteen, f.fifteen)] {
                // /proc/loadavg rounds: (avenrun + FIXED_1/200) truncated to hundredths, so it is
                // off the exact value by less than 0.0052 (10/2048 up, 0.01 − 10/2048 down).
                assert!((s - f).abs() < 0.0052, "{k}: sysinfo {s}, /proc/loadavg {f}");
            }
            return;
        }
        panic!("the load averages never held still across a read of /proc/loadavg");
    }

    #[test]
    fn parses_loadavg_of_a_6_18_kernel() {
        let l = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(l, LoadAvg { one: 0.30, five: 0.37, fifteen: 0.17, running: 1, total: 85, last_pid: 6460 });
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(parse("0.1 0.2 0.3 1-85 7\n").unwrap_err(), "running/total: missing or without '/'");
        assert_eq!(parse("0.1 0.2\n").unwrap_err(), "15m load: missing field");
        assert_eq!(parse("0.1 x 0.3 1/2 3").unwrap_err(), "5m load: not a number: \"x\"");
    }

    #[test]
    fn reports_the_file_and_line_when_reading() {
        let mut f = ProcFile::new(crate::procfs::fixture("linux-6.18-vm/proc/uptime"));
        let err = read_file(&mut f).unwrap_err().to_string();
        assert!(err.ends_with("proc/uptime:1: 15m load: missing field"), "{err}");
    }
}
