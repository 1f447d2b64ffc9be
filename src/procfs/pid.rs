//! Per-process files under `/proc/[pid]/`: `stat`, `status`, `io`, `cmdline`, `fd/`, and a count
//! of all processes by state.
//!
//! `stat` (`man 5 proc`): one line; the command name (`comm`, up to 15 bytes) is in
//! parentheses and may itself contain spaces and parentheses, so it runs from the first `(` to
//! the *last* `)`:
//!
//! ```text
//! 23887 (sleep) S 23885 23885 5013 0 -1 4194304 132 0 1 0 0 0 0 0 20 0 1 0 287556 2990080 390 ...
//! ```
//!
//! Fields used (1-based): 1 pid, 2 comm, 3 state, 4 ppid, 10 minflt, 12 majflt, 14 utime,
//! 15 stime (USER_HZ ticks), 20 num_threads, 22 starttime (ticks after boot), 23 vsize (bytes),
//! 24 rss (pages; see [`page_size`]).
//!
//! `status`: `Key:\tvalues` lines; `Uid:` and `Gid:` carry real, effective, saved and
//! filesystem ids. `io`: `key: value` lines (`read_bytes: 45056`); readable only by the owner or
//! with CAP_SYS_PTRACE, so permission denied gives `None`. `cmdline`: arguments separated and
//! ended by NUL; empty for kernel threads and zombies.
//!
//! # Process states ([`StateCounts`])
//!
//! `system.process.count{process.state}` values: `R` → `running`; `S` (interruptible sleep),
//! `D` (uninterruptible, usually disk) and `I` (idle kernel thread) → `sleeping`; `T`
//! (stopped) and `t` (tracing stop) → `stopped`; `Z` → `defunct`. `X`/`x` (dead), `W`, `K`,
//! `P` and anything else are counted in `other` and not reported. `D` is kept apart in
//! [`StateCounts::disk_sleep`] for a collector that reports it as `blocked` (as the
//! hostmetrics receiver's `system.processes.count` does, and `/proc/stat` `procs_blocked`).

use super::{num, LineError, ProcError};
use crate::units::HostPaths;
use std::io::Read;
use std::path::PathBuf;

/// The fields of `/proc/[pid]/stat` the process collectors use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidStat {
    pub pid: u32,
    /// The command name (`comm`), without the parentheses.
    pub comm: String,
    /// One-letter state (`R`, `S`, `D`, `Z`, `T`, `t`, `I`, ...).
    pub state: char,
    pub ppid: u32,
    /// Minor page faults.
    pub minflt: u64,
    /// Major page faults.
    pub majflt: u64,
    /// User time, USER_HZ ticks.
    pub utime: u64,
    /// System time, USER_HZ ticks.
    pub stime: u64,
    pub num_threads: u64,
    /// Start time, USER_HZ ticks after boot.
    pub starttime: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set size, pages.
    pub rss: u64,
}

impl PidStat {
    /// Resident set size in bytes (saturating: a page count read from the file cannot
    /// overflow it).
    pub fn rss_bytes(&self) -> u64 {
        self.rss.saturating_mul(page_size())
    }
}

/// The bytes of a memory page (`sysconf(_SC_PAGESIZE)`; 4096 if it fails).
pub fn page_size() -> u64 {
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions and only reads configuration.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as u64
        } else {
            4096
        }
    })
}

/// Parses the text of `/proc/[pid]/stat`.
pub fn parse_stat(text: &str) -> Result<PidStat, LineError> {
    let (open, close) = match (text.find('('), text.rfind(')')) {
        (Some(o), Some(c)) if o < c => (o, c),
        _ => return Err(LineError::new(1, "comm: no parentheses")),
    };
    let pid = num(Some(text[..open].trim()), 1, "pid")?;
    let comm = text[open + 1..close].to_owned();
    let mut it = text[close + 1..].split_ascii_whitespace();
    let state = it.next().and_then(|s| s.chars().next()).ok_or_else(|| LineError::new(1, "state: missing field"))?;
    // Fields 4.. after the state; `f(k)` is field k (1-based, as in `man 5 proc`).
    let rest: [&str; 21] = std::array::from_fn(|_| it.next().unwrap_or(""));
    let f = |k: usize| Some(rest[k - 4]).filter(|s| !s.is_empty());
    Ok(PidStat {
        pid,
        comm,
        state,
        ppid: num(f(4), 1, "ppid")?,
        minflt: num(f(10), 1, "minflt")?,
        majflt: num(f(12), 1, "majflt")?,
        utime: num(f(14), 1, "utime")?,
        stime: num(f(15), 1, "stime")?,
        num_threads: num(f(20), 1, "num_threads")?,
        starttime: num(f(22), 1, "starttime")?,
        vsize: num(f(23), 1, "vsize")?,
        rss: num(f(24), 1, "rss")?,
    })
}

/// The state letter of a `/proc/[pid]/stat` text (the first field after the last `)`).
pub fn stat_state(text: &[u8]) -> Option<char> {
    let close = text.iter().rposition(|&b| b == b')')?;
    text[close + 1..].iter().find(|b| !b.is_ascii_whitespace()).map(|&b| b as char)
}

/// The ids of `/proc/[pid]/status` (real, effective, saved, filesystem).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidStatus {
    pub uid: [u32; 4],
    pub gid: [u32; 4],
}

/// Parses the `Uid:` and `Gid:` lines of `/proc/[pid]/status`.
pub fn parse_status(text: &str) -> Result<PidStatus, LineError> {
    let mut st = PidStatus::default();
    let mut seen_uid = false;
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "Uid" => {
                seen_uid = true;
                &mut st.uid
            }
            "Gid" => &mut st.gid,
            _ => continue,
        };
        let mut it = rest.split_ascii_whitespace();
        for id in slot.iter_mut() {
            *id = num(it.next(), i + 1, key)?;
        }
    }
    if !seen_uid {
        return Err(LineError::new(0, "missing key Uid"));
    }
    Ok(st)
}

/// The counters of `/proc/[pid]/io`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidIo {
    /// Bytes read through read(2) and similar, cache hits included.
    pub rchar: u64,
    /// Bytes written through write(2) and similar.
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    /// Bytes fetched from storage.
    pub read_bytes: u64,
    /// Bytes sent (or to be sent) to storage.
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
}

/// Parses the text of `/proc/[pid]/io` (missing keys read 0).
pub fn parse_io(text: &str) -> Result<PidIo, LineError> {
    let mut io = PidIo::default();
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "rchar" => &mut io.rchar,
            "wchar" => &mut io.wchar,
            "syscr" => &mut io.syscr,
            "syscw" => &mut io.syscw,
            "read_bytes" => &mut io.read_bytes,
            "write_bytes" => &mut io.write_bytes,
            "cancelled_write_bytes" => &mut io.cancelled_write_bytes,
            _ => continue,
        };
        *slot = num(Some(rest.trim()), i + 1, key)?;
    }
    Ok(io)
}

/// The arguments of a `/proc/[pid]/cmdline` text (NUL separated, trailing NUL dropped).
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn pid_path(paths: &HostPaths, pid: u32, file: &str) -> PathBuf {
    paths.proc(&format!("{pid}/{file}"))
}

/// Reads `/proc/[pid]/stat`.
pub fn read_stat(paths: &HostPaths, pid: u32) -> Result<PidStat, ProcError> {
    let p = pid_path(paths, pid, "stat");
    parse_stat(&super::read_to_string(&p)?).map_err(|e| super::at(&p, e))
}

/// Reads the ids of `/proc/[pid]/status`.
pub fn read_status(paths: &HostPaths, pid: u32) -> Result<PidStatus, ProcError> {
    let p = pid_path(paths, pid, "status");
    parse_status(&super::read_to_string(&p)?).map_err(|e| super::at(&p, e))
}

/// Reads `/proc/[pid]/io`; `None` when permission is denied (another user's process).
pub fn read_io(paths: &HostPaths, pid: u32) -> Result<Option<PidIo>, ProcError> {
    let p = pid_path(paths, pid, "io");
    match super::read_to_string(&p) {
        Ok(text) => parse_io(&text).map(Some).map_err(|e| super::at(&p, e)),
        Err(e) if e.is_io_kind(std::io::ErrorKind::PermissionDenied) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the arguments of `/proc/[pid]/cmdline`.
pub fn read_cmdline(paths: &HostPaths, pid: u32) -> Result<Vec<String>, ProcError> {
    let p = pid_path(paths, pid, "cmdline");
    let bytes = std::fs::read(&p).map_err(|e| ProcError::io(&p, e))?;
    Ok(parse_cmdline(&bytes))
}

/// The number of open file descriptors (entries of `/proc/[pid]/fd`); `None` when permission
/// is denied.
pub fn count_fds(paths: &HostPaths, pid: u32) -> Result<Option<u64>, ProcError> {
    let p = pid_path(paths, pid, "fd");
    match std::fs::read_dir(&p) {
        Ok(entries) => Ok(Some(entries.filter(|e| e.is_ok()).count() as u64)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(None),
        Err(e) => Err(ProcError::io(&p, e)),
    }
}

/// The pids in `/proc` (its numeric entries), sorted.
pub fn pids(paths: &HostPaths) -> Result<Vec<u32>, ProcError> {
    let entries = std::fs::read_dir(&paths.proc).map_err(|e| ProcError::io(&paths.proc, e))?;
    let mut out: Vec<u32> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    out.sort_unstable();
    Ok(out)
}

/// The `process.state` value of a state letter; `None` for states not reported.
pub fn semconv_state(state: char) -> Option<&'static str> {
    match state {
        'R' => Some("running"),
        'S' | 'D' | 'I' => Some("sleeping"),
        'T' | 't' => Some("stopped"),
        'Z' => Some("defunct"),
        _ => None,
    }
}

/// Processes counted by state letter (see the module docs for the mapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// `R`
    pub running: u64,
    /// `S`
    pub sleeping: u64,
    /// `D`
    pub disk_sleep: u64,
    /// `I`
    pub idle: u64,
    /// `T`, `t`
    pub stopped: u64,
    /// `Z`
    pub zombie: u64,
    /// Anything else (`X`, `x`, `W`, `K`, `P`, ...).
    pub other: u64,
}

impl StateCounts {
    /// Counts one process in `state`.
    pub fn add(&mut self, state: char) {
        let slot = match state {
            'R' => &mut self.running,
            'S' => &mut self.sleeping,
            'D' => &mut self.disk_sleep,
            'I' => &mut self.idle,
            'T' | 't' => &mut self.stopped,
            'Z' => &mut self.zombie,
            _ => &mut self.other,
        };
        *slot += 1;
    }

    /// The counts by `process.state`: running, sleeping (S + D + I), stopped, defunct.
    pub fn semconv(&self) -> [(&'static str, u64); 4] {
        [("running", self.running), ("sleeping", self.sleeping + self.disk_sleep + self.idle), ("stopped", self.stopped), ("defunct", self.zombie)]
    }
}

/// Counts all processes by state, reading only the state of each `/proc/[pid]/stat` into one
/// reused buffer. Processes that exit meanwhile are skipped.
pub fn count_states(paths: &HostPaths) -> Result<StateCounts, ProcError> {
    let mut counts = StateCounts::default();
    let mut buf = Vec::with_capacity(512);
    let mut path = paths.proc.clone();
    for pid in pids(paths)? {
        path.push(pid.to_string());
        path.push("stat");
        buf.clear();
        let r = std::fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut buf));
        // An error means the process is gone between listing and reading (ENOENT, ESRCH).
        if r.is_ok() {
            match stat_state(&buf) {
                Some(s) => counts.add(s),
                None => return Err(ProcError::parse(&path, 1, "no state after the command name")),
            }
        }
        path.pop();
        path.pop();
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn parses_the_stat_of_a_captured_sleep_process() {
        let s = read_stat(&fixture_paths("linux-6.18-vm"), 23887).unwrap();
        assert_eq!(
            s,
            PidStat {
                pid: 23887,
                comm: "sleep".into(),
                state: 'S',
                ppid: 23885,
                minflt: 132,
                majflt: 1,
                utime: 0,
                stime: 0,
                num_threads: 1,
                starttime: 287556,
                vsize: 2990080,
                rss: 390,
            }
        );
    }

    #[test]
    fn parses_a_comm_with_spaces_and_parentheses() {
        let s = read_stat(&fixture_paths("linux-5.15-server"), 4242).unwrap();
        assert_eq!(s.comm, "my (weird) ) x");
        assert_eq!((s.state, s.ppid, s.minflt, s.majflt), ('R', 1, 90211, 17));
        assert_eq!((s.utime, s.stime, s.num_threads, s.starttime), (5012, 733, 9, 1833120));
        assert_eq!((s.vsize, s.rss), (1_210_380_288, 31_872));
    }

    #[test]
    fn names_the_field_of_a_truncated_stat() {
        let e = parse_stat("7 (x) S 1 7 7 0 -1 4194560 50").unwrap_err();
        assert_eq!(e.to_string(), "line 1: majflt: missing field");
        assert_eq!(parse_stat("7 x S").unwrap_err().to_string(), "line 1: comm: no parentheses");
    }

    #[test]
    fn reads_uid_gid_io_cmdline_and_fd_count_of_a_captured_process() {
        let p = fixture_paths("linux-6.18-vm");
        assert_eq!(read_status(&p, 23887).unwrap(), PidStatus { uid: [0; 4], gid: [0; 4] });
        let io = read_io(&p, 23887).unwrap().unwrap();
        assert_eq!((io.rchar, io.syscr, io.read_bytes, io.write_bytes), (6976, 10, 45056, 0));
        assert_eq!(read_cmdline(&p, 23887).unwrap(), ["sleep", "300"]);
        assert_eq!(count_fds(&p, 23887).unwrap(), Some(5)); // 0 1 2 10 251
    }

    #[test]
    fn reads_distinct_real_and_effective_ids() {
        let st = read_status(&fixture_paths("linux-5.15-server"), 4242).unwrap();
        assert_eq!(st, PidStatus { uid: [1000, 0, 0, 0], gid: [1000, 1000, 1000, 1000] });
        assert_eq!(parse_status("Name:\tx\n").unwrap_err().to_string(), "missing key Uid");
    }

    #[test]
    fn parses_cmdlines_of_kernel_threads_and_rewritten_titles() {
        assert_eq!(parse_cmdline(b""), Vec::<String>::new());
        assert_eq!(parse_cmdline(b"nginx: worker process"), ["nginx: worker process"]);
        assert_eq!(parse_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
    }

    #[test]
    fn gives_none_for_io_of_another_users_process() {
        if unsafe { libc::geteuid() } == 0 {
            return; // root reads every io file
        }
        assert_eq!(read_io(&HostPaths::default(), 1).unwrap(), None);
    }

    #[test]
    fn counts_processes_by_state() {
        let c = count_states(&fixture_paths("linux-5.15-server")).unwrap();
        // pids 1 S, 2 S, 12 I, 4242 R, 4243 Z, 4244 D, 4245 T, 4246 t, 4247 X
        assert_eq!(c, StateCounts { running: 1, sleeping: 2, disk_sleep: 1, idle: 1, stopped: 2, zombie: 1, other: 1 });
        assert_eq!(c.semconv(), [("running", 1), ("sleeping", 4), ("stopped", 2), ("defunct", 1)]);
        assert_eq!(pids(&fixture_paths("linux-5.15-server")).unwrap(), [1, 2, 12, 4242, 4243, 4244, 4245, 4246, 4247]);
    }

    #[test]
    fn skips_pid_dirs_without_stat_and_counts_this_host() {
        // The 6.18 tree's /proc/1 only has net/dev.
        let c = count_states(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(c, StateCounts { sleeping: 1, ..StateCounts::default() });
        let live = count_states(&HostPaths::default()).unwrap();
        // The test's own main thread waits on this one, so nothing need be running.
        assert!(live.sleeping + live.idle >= 1, "{live:?}");
    }

    #[test]
    fn a_resident_page_count_too_large_for_bytes_saturates_instead_of_overflowing() {
        // Found by the host_text fuzz target: `rss × page size` overflowed (a panic with
        // overflow checks on).
        let st = parse_stat("7 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 100 18446744073709551615 0").unwrap();
        assert_eq!(st.rss_bytes(), u64::MAX);
    }

    #[test]
    fn maps_state_letters_to_process_state_values() {
        let got: Vec<Option<&str>> = "RSDITtZX".chars().map(semconv_state).collect();
        assert_eq!(got, [Some("running"), Some("sleeping"), Some("sleeping"), Some("sleeping"), Some("stopped"), Some("stopped"), Some("defunct"), None]);
        assert_eq!(stat_state(b"5 (a) b) Z 1"), Some('Z'));
    }
}
