//! Readers of `/proc` and `/sys`: pure parsers (`parse(&str)`) plus thin readers that take a
//! [`HostPaths`](crate::units::HostPaths), so the same code runs on the host, in a container that
//! mounts the host's `/proc` elsewhere, and on the fixture trees under `tests/fixtures/proc/`.
//!
//! Conventions shared by every module:
//! - parse errors name the line (1-based) they stopped at;
//! - unknown or new fields and lines are ignored, never an error;
//! - parsers borrow from the text (`split_ascii_whitespace` on `&str`) and avoid per-line
//!   allocation;
//! - files read every tick (stat, meminfo, loadavg, vmstat, diskstats, net/dev, uptime) are read
//!   through a [`ProcFile`], which keeps the file open between reads (so are one cgroup's
//!   files, [`cgroup`]).

pub mod cgroup;
pub mod conntrack;
pub mod cpuinfo;
pub mod diskstats;
pub mod edac;
pub mod entropy;
pub mod filefd;
pub mod hwmon;
pub mod loadavg;
pub mod mdstat;
pub mod meminfo;
pub mod mountinfo;
pub mod netdev;
pub mod netstat;
pub mod nvme;
pub mod pid;
pub mod pressure;
pub mod rapl;
pub mod snmp;
pub mod sockdiag;
pub mod softnet;
pub mod stat;
pub mod statvfs;
pub mod swaps;
pub mod thermal;
pub mod timex;
pub mod uptime;
pub mod vmstat;

use std::fs::File;
use std::path::{Path, PathBuf};

/// Why a /proc or /sys file could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// Opening or reading the file failed.
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The file was read but a line did not have the expected shape.
    #[error("{path}:{line}: {msg}")]
    Parse { path: PathBuf, line: usize, msg: String },
}

impl ProcError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ProcError::Io { path: path.into(), source }
    }

    /// A parse error at `line` (1-based; 0 when no single line is at fault) of `path`.
    pub fn parse(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        ProcError::Parse { path: path.into(), line, msg: msg.into() }
    }

    /// Whether this is an I/O error of the given kind (`NotFound`, `PermissionDenied`, ...).
    pub fn is_io_kind(&self, kind: std::io::ErrorKind) -> bool {
        matches!(self, ProcError::Io { source, .. } if source.kind() == kind)
    }
}

/// Where and why a parser stopped: the 1-based line (0 when no single line is at fault, such as
/// a missing key) and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub msg: String,
}

impl LineError {
    pub fn new(line: usize, msg: impl Into<String>) -> Self {
        LineError { line, msg: msg.into() }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.msg)
        } else {
            write!(f, "line {}: {}", self.line, self.msg)
        }
    }
}

impl std::error::Error for LineError {}

/// A [`LineError`] of the parser of `path` as a [`ProcError`].
pub(crate) fn at(path: &Path, e: LineError) -> ProcError {
    ProcError::Parse { path: path.to_path_buf(), line: e.line, msg: e.msg }
}

/// A number from a field, or an error naming the field and the line (1-based).
pub(crate) fn num<T: std::str::FromStr>(s: Option<&str>, line: usize, what: &str) -> Result<T, LineError> {
    match s {
        Some(s) => s.parse().map_err(|_| LineError::new(line, format!("{what}: not a number: {s:?}"))),
        None => Err(LineError::new(line, format!("{what}: missing field"))),
    }
}

/// Reads a whole file into a string (one-shot readers; non-UTF-8 bytes become U+FFFD).
pub fn read_to_string(path: &Path) -> Result<String, ProcError> {
    let bytes = std::fs::read(path).map_err(|e| ProcError::io(path, e))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A /proc or /sys file kept open between reads.
///
/// Each [`read`](ProcFile::read) reads the file again from offset 0 with `pread(2)` into a
/// buffer that is reused from one read to the next; /proc (seq_file) and sysfs files regenerate
/// their contents on a read from offset 0. Keeping the file open saves the open/close, about a
/// third of the cost of reading a small /proc file; `pread` until it returns 0 costs two system
/// calls per read (std's `read_to_end` adds an `lseek` and a `statx` for its size hint, which a
/// /proc file does not have). A read may stop short of the end (seq_file hands out about a page
/// per call), so only a read that returns 0 ends the file. On an error the file is closed, and
/// the next read (and one retry within the same read) opens it again.
#[derive(Debug)]
pub struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    /// Read into; all of it initialised once, so a read does not zero it again.
    buf: Vec<u8>,
    /// How much of `buf` the last read filled.
    len: usize,
    /// Whether the open file is a mount table of procfs that reports changes by `poll(2)`.
    pollable: bool,
}

/// The first read of a file: files read every tick are small, and the buffer grows to fit.
const FIRST_READ: usize = 4096;

impl ProcFile {
    /// A reader of `path`; nothing is opened until the first [`read`](ProcFile::read).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcFile { path: path.into(), file: None, buf: Vec::new(), len: 0, pollable: false }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current contents (non-UTF-8 bytes become U+FFFD).
    pub fn read(&mut self) -> Result<&str, ProcError> {
        self.read_up_to(None)
    }

    /// The file's first `limit` bytes at most, cut back to the last whole line (all of it when
    /// shorter). seq_file formats only as many lines as a read asks for, so for a long file
    /// whose wanted lines come early (`/proc/vmstat`) this saves formatting the rest.
    pub fn read_prefix(&mut self, limit: usize) -> Result<&str, ProcError> {
        self.read_up_to(Some(limit))
    }

    fn read_up_to(&mut self, limit: Option<usize>) -> Result<&str, ProcError> {
        if let Err(first) = self.fill(limit) {
            // A file kept open can go stale (a remounted /proc); open it afresh once, unless the
            // failure was that there is no such file.
            self.file = None;
            if first.kind() == std::io::ErrorKind::NotFound {
                return Err(ProcError::io(&self.path, first));
            }
            self.fill(limit).map_err(|e| ProcError::io(&self.path, e))?;
        }
        if std::str::from_utf8(&self.buf[..self.len]).is_err() {
            let fixed = String::from_utf8_lossy(&self.buf[..self.len]).into_owned().into_bytes();
            self.len = fixed.len();
            self.buf = fixed;
            return Ok(std::str::from_utf8(&self.buf).unwrap_or_default());
        }
        // SAFETY: checked just above.
        Ok(unsafe { std::str::from_utf8_unchecked(&self.buf[..self.len]) })
    }

    /// For a mount table (`/proc/PID/mountinfo`, `/proc/PID/mounts`): the contents if the
    /// table may have changed since the last read, `None` if it has not.
    ///
    /// The kernel wakes `poll(2)` on an open mount table with `POLLPRI | POLLERR` when a mount
    /// or unmount happened in its namespace since the last poll (`mounts_poll` in
    /// `fs/proc_namespace.c`; how systemd and libmount watch mounts). Formatting the table is
    /// the most expensive read of a tick (each line resolves a path), so it is read again only
    /// on a change. Anything that is not procfs (a fixture tree, a copy) is read every time.
    pub fn read_if_changed(&mut self) -> Result<Option<&str>, ProcError> {
        if self.pollable {
            if let Some(f) = &self.file {
                use std::os::fd::AsRawFd;
                let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLPRI, revents: 0 };
                // SAFETY: one valid pollfd, zero timeout.
                let n = unsafe { libc::poll(&mut pfd, 1, 0) };
                if n == 0 || (n > 0 && pfd.revents & (libc::POLLPRI | libc::POLLERR) == 0) {
                    return Ok(None);
                }
            }
        }
        self.read().map(Some)
    }

    fn open(&mut self) -> std::io::Result<&File> {
        let f = File::open(&self.path)?;
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        self.pollable = matches!(name, "mountinfo" | "mounts") && is_procfs(&f);
        Ok(self.file.insert(f))
    }

    /// Reads the file from its start into `buf`: all of it, or at most `limit` bytes cut back
    /// to the last whole line.
    fn fill(&mut self, limit: Option<usize>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if self.file.is_none() {
            self.open()?;
        }
        let file = self.file.as_ref().expect("opened above");
        let want = limit.unwrap_or(FIRST_READ);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let end = limit.unwrap_or(usize::MAX);
        let mut len = 0;
        let r = loop {
            if len == end {
                break Ok(());
            }
            if len == self.buf.len() {
                let grow = self.buf.len();
                self.buf.resize(len + grow, 0);
            }
            let to = self.buf.len().min(end);
            match file.read_at(&mut self.buf[len..to], len as u64) {
                Ok(0) => break Ok(()),
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        // Stopped at the limit: the last line may be cut, so it is left out.
        if len == end {
            len = self.buf[..len].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        }
        self.len = len;
        if r.is_err() {
            self.file = None;
        }
        r
    }
}

/// Whether the file the agent would read at `path` is the kernel's own: `paths` are not
/// remapped to a host's `/proc` and `path` is on procfs, not a FUSE file put over it (LXCFS
/// gives containers their own `/proc/uptime`, `/proc/loadavg`, `/proc/meminfo`, ...). Where
/// this holds, a system call that returns the same numbers can stand in for reading the file.
pub fn is_kernels_own(paths: &crate::units::HostPaths, path: &Path) -> bool {
    !paths.is_remapped() && File::open(path).is_ok_and(|f| is_procfs(&f))
}

/// Whether `f` is on procfs (`PROC_SUPER_MAGIC`).
fn is_procfs(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    // SAFETY: fstatfs fills the zeroed struct for a valid descriptor.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } == 0) && st.f_type as i64 == PROC_SUPER_MAGIC
}

/// The fixture trees under `tests/fixtures/proc/` (`fixture("linux-6.18-vm")`).
#[cfg(test)]
pub(crate) fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc").join(rel)
}

/// The fixture tree of a kernel as [`HostPaths`](crate::units::HostPaths).
#[cfg(test)]
pub(crate) fn fixture_paths(kernel: &str) -> crate::units::HostPaths {
    crate::units::HostPaths::under(fixture(kernel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_file_rereads_from_the_start_and_reuses_the_open_file() {
        let dir = std::env::temp_dir().join(format!("procfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, "first\n").unwrap();
        let mut pf = ProcFile::new(&path);
        assert_eq!(pf.read().unwrap(), "first\n");
        assert_eq!(pf.read().unwrap(), "first\n");
        // Rewriting in place (same inode) is seen through the open file.
        std::fs::write(&path, "second, longer\n").unwrap();
        assert_eq!(pf.read().unwrap(), "second, longer\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn proc_file_reads_files_larger_than_its_first_buffer_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let mut pf = ProcFile::new(&path);
        assert_eq!(pf.read().unwrap(), text);
        // Shorter afterwards: nothing of the longer read is left over.
        std::fs::write(&path, "short\n").unwrap();
        assert_eq!(pf.read().unwrap(), "short\n");
    }

    #[test]
    fn a_prefix_read_gives_whole_lines_up_to_the_limit_or_the_whole_shorter_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "aaaa 1\nbbbb 22\ncccc 333\n").unwrap();
        let mut pf = ProcFile::new(&path);
        // "aaaa 1\nbbbb 2" is cut inside the second line: only the first is whole.
        assert_eq!(pf.read_prefix(13).unwrap(), "aaaa 1\n");
        assert_eq!(pf.read_prefix(15).unwrap(), "aaaa 1\nbbbb 22\n");
        assert_eq!(pf.read_prefix(3).unwrap(), "");
        assert_eq!(pf.read_prefix(1000).unwrap(), "aaaa 1\nbbbb 22\ncccc 333\n");
        // A whole read after a prefix read sees the whole file.
        assert_eq!(pf.read().unwrap(), "aaaa 1\nbbbb 22\ncccc 333\n");
        let mut real = ProcFile::new("/proc/vmstat");
        let prefix = real.read_prefix(600).unwrap().to_string();
        assert!(prefix.len() <= 600 && prefix.ends_with('\n') && prefix.starts_with("nr_"), "{prefix:?}");
    }

    #[test]
    fn a_mount_table_outside_procfs_is_read_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mountinfo");
        std::fs::write(&path, "22 27 0:21 / /proc rw - proc proc rw\n").unwrap();
        let mut pf = ProcFile::new(&path);
        assert!(pf.read_if_changed().unwrap().is_some());
        assert!(pf.read_if_changed().unwrap().is_some());
    }

    #[test]
    fn the_real_mount_table_is_read_again_only_after_a_mount() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting needs root (CI runs as root)");
            return;
        }
        let mut pf = ProcFile::new("/proc/self/mountinfo");
        assert!(pf.read_if_changed().unwrap().is_some(), "the first read always reads");
        // Other processes of this host may mount meanwhile; unchanged is seen within a few tries.
        let unchanged = (0..20).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            pf.read_if_changed().unwrap().is_none()
        });
        assert!(unchanged, "poll never said the table was unchanged");
        let dir = tempfile::tempdir().unwrap();
        let target = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        let (src, fstype) = (c"metricsd-test", c"tmpfs");
        // SAFETY: valid C strings; a tmpfs on our own temporary directory.
        let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
        assert_eq!(rc, 0, "mount: {}", std::io::Error::last_os_error());
        let after = pf.read_if_changed().unwrap().map(str::to_owned);
        // SAFETY: unmounting what we mounted above.
        unsafe { libc::umount(target.as_ptr()) };
        let after = after.expect("a mount makes the table read again");
        assert!(after.contains(dir.path().to_str().unwrap()), "the new mount is in the table read");
    }

    #[test]
    fn proc_file_reports_a_missing_file_with_its_path() {
        let mut pf = ProcFile::new("/nonexistent/metricsd/procfile");
        let err = pf.read().unwrap_err();
        assert!(err.is_io_kind(std::io::ErrorKind::NotFound));
        assert!(err.to_string().contains("/nonexistent/metricsd/procfile"), "{err}");
    }

    #[test]
    fn reads_every_file_of_this_host() {
        let p = crate::units::HostPaths::default();
        let m = meminfo::read(&p).unwrap();
        assert!(m.total > 0 && m.free <= m.total);
        loadavg::read(&p).unwrap();
        let st = stat::read(&p).unwrap();
        assert!(!st.cpus.is_empty() && st.btime > 0);
        vmstat::read(&p).unwrap();
        diskstats::read(&p).unwrap();
        assert!(!netdev::read(&p).unwrap().is_empty());
        assert!(uptime::read(&p).unwrap().seconds > 0.0);
        swaps::read(&p).unwrap();
        assert!(!mountinfo::read(&p).unwrap().is_empty());
        assert!(cpuinfo::read(&p).unwrap().logical > 0);
        netstat::read_tcp(&p).unwrap();
        netstat::read_udp(&p).unwrap();
        let me = pid::read_stat(&p, std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.num_threads >= 1);
    }

    #[test]
    fn proc_file_reads_real_proc_files_repeatedly() {
        let mut pf = ProcFile::new("/proc/self/stat");
        let a = pf.read().unwrap().to_owned();
        let b = pf.read().unwrap();
        assert!(a.starts_with(&format!("{} (", std::process::id())));
        assert!(b.starts_with(&format!("{} (", std::process::id())));
    }
}
