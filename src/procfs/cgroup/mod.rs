//! One cgroup's files: [`find`] says where its directories are ([`Location`]), [`CgroupFiles`]
//! keeps the files of each controller open and reads them into [`CgroupStats`], from cgroup v2
//! ([`v2`]) where the cgroup's `cgroup.controllers` lists the controller, else from the v1
//! hierarchy of that controller ([`v1`]):
//!
//! ```text
//! controller  v2 (Documentation/admin-guide/cgroup-v2.rst)          v1 (Documentation/admin-guide/cgroup-v1/)
//! cpu         cpu.stat, cpu.max                                      cpuacct.usage*, cpuacct.stat, cpu.cfs_quota_us, cpu.cfs_period_us, cpu.stat
//! memory      memory.current, memory.max, memory.stat, memory.events memory.usage_in_bytes, memory.limit_in_bytes, memory.stat, memory.oom_control
//! io          io.stat                                                blkio.throttle.io_service_bytes_recursive, blkio.throttle.io_serviced_recursive, …
//! pids        pids.current, pids.max                                 pids.current, pids.max
//! ```
//!
//! Without the v2 `cpu` controller and without v1 `cpu`/`cpuacct`, the CPU times still come
//! from v2's `cpu.stat`, which v2 keeps for every cgroup. A limit that is not set (`max`, `-1`,
//! the page-rounded `i64::MAX` of v1) is `None`; so is anything whose controller or file this
//! cgroup lacks. A file found missing is not looked for again. Single-number files look like
//! this (`pids.current`, `memory.max`):
//!
//! ```text
//! 7
//! max
//! ```
//!
//! The files read every tick (about ten) are kept open ([`ProcFile`]) and parsed in place;
//! device names are interned, so a read allocates nothing once the devices are known.

pub mod find;
pub mod v1;
pub mod v2;

pub use find::{locate, FindError, Location, Target};

use super::{ProcError, ProcFile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one read of a cgroup's files found; `None` is "not there" (no controller, no file, no
/// limit).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CgroupStats {
    /// CPU seconds in user mode.
    pub cpu_user: Option<f64>,
    /// CPU seconds in kernel mode.
    pub cpu_system: Option<f64>,
    /// Total CPU seconds (for a usage rate).
    pub cpu_total: Option<f64>,
    /// The CPU quota in CPUs (quota ÷ period).
    pub cpu_limit: Option<f64>,
    /// `[total, throttled]` periods.
    pub periods: Option<[u64; 2]>,
    pub throttled_seconds: Option<f64>,
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Usage less the inactive file cache, never below zero.
    pub working_set: Option<u64>,
    pub rss: Option<u64>,
    /// Limit less working set.
    pub available: Option<u64>,
    pub oom_kills: Option<u64>,
    /// `[major, minor]`.
    pub faults: Option<[u64; 2]>,
    /// By device, in the order the files list them.
    pub io: Vec<DeviceIo>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
}

impl CgroupStats {
    /// Empties it, keeping the I/O list's allocation.
    pub fn clear(&mut self) {
        let mut io = std::mem::take(&mut self.io);
        io.clear();
        *self = CgroupStats { io, ..CgroupStats::default() };
    }
}

/// One block device's I/O: `[read, write]` bytes and operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIo {
    /// `MAJ:MIN` as the cgroup files name it.
    pub device: Arc<str>,
    pub bytes: [Option<u64>; 2],
    pub ops: [Option<u64>; 2],
}

/// The device names seen, each allocated once.
#[derive(Debug, Default)]
struct Devices(HashMap<String, Arc<str>>);

impl Devices {
    fn get(&mut self, name: &str) -> Arc<str> {
        match self.0.get(name) {
            Some(a) => a.clone(),
            None => self.0.entry(name.to_owned()).or_insert_with(|| Arc::from(name)).clone(),
        }
    }

    /// A new entry of `s.io` for device `name`.
    fn io(&mut self, name: &str) -> DeviceIo {
        DeviceIo { device: self.get(name), bytes: [None; 2], ops: [None; 2] }
    }
}

/// A cgroup file read every tick; one found missing is remembered as absent.
#[derive(Debug)]
struct CgFile {
    file: ProcFile,
    absent: bool,
}

impl CgFile {
    fn new(dir: Option<&Path>, name: &str) -> Self {
        match dir {
            Some(d) => CgFile { file: ProcFile::new(d.join(name)), absent: false },
            None => CgFile { file: ProcFile::new(PathBuf::new()), absent: true },
        }
    }

    /// The file's text, `None` when it does not exist. A missing file whose directory is gone
    /// too is an error (the cgroup was removed), not an absent file.
    fn read(&mut self) -> Result<Option<&str>, ProcError> {
        if self.absent {
            return Ok(None);
        }
        match self.file.read() {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => {
                let dir_exists = matches!(&e, ProcError::Io { path, .. } if path.parent().is_some_and(Path::is_dir));
                if dir_exists {
                    self.absent = true;
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A single-number file (`memory.current`, `cpu.cfs_quota_us`): `None` when absent, `max`
    /// or negative (`-1`: no limit).
    fn number(&mut self) -> Result<Option<u64>, ProcError> {
        let Some(text) = self.read()? else { return Ok(None) };
        let t = text.trim();
        if t == "max" || t.starts_with('-') {
            return Ok(None);
        }
        match t.parse().map_err(|_| format!("not a number: {t:?}")) {
            Ok(v) => Ok(Some(v)),
            Err(msg) => Err(ProcError::parse(self.file.path(), 1, msg)),
        }
    }
}

/// Calls `f(key, value)` for each `key value` line (`cpu.stat`, `memory.stat`, `memory.events`);
/// lines of another shape are skipped.
fn for_each_pair(text: &str, mut f: impl FnMut(&str, u64)) {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        if let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) {
            if let Ok(v) = v.parse() {
                f(k, v);
            }
        }
    }
}

/// The text of the first file of `list` that exists.
fn first_present(list: &mut [CgFile]) -> Result<Option<&str>, ProcError> {
    for f in list.iter_mut() {
        if let Some(text) = f.read()? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

#[allow(clippy::large_enum_variant)] // one per collector, made once
enum CpuFiles {
    None,
    V2 { stat: CgFile, max: CgFile },
    V1(v1::CpuFiles),
}

enum MemoryFiles {
    None,
    V2 { current: CgFile, max: CgFile, stat: CgFile, events: CgFile },
    V1 { usage: CgFile, limit: CgFile, stat: CgFile, oom: CgFile },
}

enum IoFiles {
    None,
    V2 {
        stat: CgFile,
    },
    /// The first file of each list that exists.
    V1 {
        bytes: Vec<CgFile>,
        ops: Vec<CgFile>,
    },
}

/// What the memory files say beyond what [`CgroupStats`] holds, for the derived values.
#[derive(Debug, Default)]
struct MemoryStat {
    inactive_file: Option<u64>,
    pgfault: Option<u64>,
    pgmajfault: Option<u64>,
}

/// The open files of a located cgroup, by controller: each `read_*` reads one controller's
/// files into a [`CgroupStats`] and fails alone.
pub struct CgroupFiles {
    /// The directories read, checked when a read fails.
    dirs: Vec<PathBuf>,
    cpu: CpuFiles,
    memory: MemoryFiles,
    io: IoFiles,
    pids: Option<(CgFile, CgFile)>,
    devices: Devices,
}

impl CgroupFiles {
    /// The files of the cgroup at `loc`; nothing is opened until the first read.
    pub fn open(loc: &Location) -> CgroupFiles {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut used = |d| note_dir(&mut dirs, d);
        let cpu = if let Some(d) = used(loc.v2_with("cpu")) {
            CpuFiles::V2 { stat: CgFile::new(Some(d), "cpu.stat"), max: CgFile::new(Some(d), "cpu.max") }
        } else if loc.v1("cpu").is_some() || loc.v1("cpuacct").is_some() {
            let (acct, cpu) = (used(loc.v1("cpuacct")), used(loc.v1("cpu")));
            CpuFiles::V1(v1::CpuFiles {
                usage_user: CgFile::new(acct, "cpuacct.usage_user"),
                usage_sys: CgFile::new(acct, "cpuacct.usage_sys"),
                acct_stat: CgFile::new(acct, "cpuacct.stat"),
                usage: CgFile::new(acct, "cpuacct.usage"),
                quota: CgFile::new(cpu, "cpu.cfs_quota_us"),
                period: CgFile::new(cpu, "cpu.cfs_period_us"),
                stat: CgFile::new(cpu, "cpu.stat"),
            })
        } else if let Some(d) = used(loc.unified.as_deref()) {
            // Without the cpu controller, v2's cpu.stat still has the usage and times.
            CpuFiles::V2 { stat: CgFile::new(Some(d), "cpu.stat"), max: CgFile::new(None, "cpu.max") }
        } else {
            CpuFiles::None
        };
        let memory = if let Some(d) = used(loc.v2_with("memory")) {
            let f = |n| CgFile::new(Some(d), n);
            MemoryFiles::V2 { current: f("memory.current"), max: f("memory.max"), stat: f("memory.stat"), events: f("memory.events") }
        } else if let Some(d) = used(loc.v1("memory")) {
            let f = |n| CgFile::new(Some(d), n);
            MemoryFiles::V1 { usage: f("memory.usage_in_bytes"), limit: f("memory.limit_in_bytes"), stat: f("memory.stat"), oom: f("memory.oom_control") }
        } else {
            MemoryFiles::None
        };
        let io = if let Some(d) = used(loc.v2_with("io")) {
            IoFiles::V2 { stat: CgFile::new(Some(d), "io.stat") }
        } else if let Some(d) = used(loc.v1("blkio")) {
            let list = |names: &[&str]| names.iter().map(|n| CgFile::new(Some(d), n)).collect();
            IoFiles::V1 { bytes: list(&v1::IO_BYTES), ops: list(&v1::IO_OPS) }
        } else {
            IoFiles::None
        };
        let pids = used(loc.v2_with("pids").or(loc.v1("pids"))).map(|d| (CgFile::new(Some(d), "pids.current"), CgFile::new(Some(d), "pids.max")));
        CgroupFiles { dirs, cpu, memory, io, pids, devices: Devices::default() }
    }

    /// The cgroup's directories whose files are read (one per hierarchy used).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The CPU times, usage, quota and throttling.
    pub fn read_cpu(&mut self, s: &mut CgroupStats) -> Result<(), ProcError> {
        match &mut self.cpu {
            CpuFiles::None => Ok(()),
            CpuFiles::V2 { stat, max } => v2::read_cpu(stat, max, s),
            CpuFiles::V1(files) => v1::read_cpu(files, s),
        }
    }

    /// Memory usage, limit, RSS, OOM kills and page faults, and the working set and available
    /// memory derived from them.
    pub fn read_memory(&mut self, s: &mut CgroupStats) -> Result<(), ProcError> {
        let m = match &mut self.memory {
            MemoryFiles::None => return Ok(()),
            MemoryFiles::V2 { current, max, stat, events } => v2::read_memory(current, max, stat, events, s)?,
            MemoryFiles::V1 { usage, limit, stat, oom } => v1::read_memory(usage, limit, stat, oom, s)?,
        };
        s.working_set = s.memory_usage.zip(m.inactive_file).map(|(u, i)| u.saturating_sub(i));
        s.available = s.memory_limit.zip(s.working_set).map(|(l, w)| l.saturating_sub(w));
        s.faults = m.pgfault.zip(m.pgmajfault).map(|(all, major)| [major, all.saturating_sub(major)]);
        Ok(())
    }

    /// Block I/O by device: `io.stat` (v2) or the `blkio` throttle/CFQ files (v1).
    pub fn read_io(&mut self, s: &mut CgroupStats) -> Result<(), ProcError> {
        match &mut self.io {
            IoFiles::None => Ok(()),
            IoFiles::V2 { stat } => v2::read_io(stat, &mut self.devices, s),
            IoFiles::V1 { bytes, ops } => v1::read_io(bytes, ops, &mut self.devices, s),
        }
    }

    /// Whether the cgroup has a `pids` controller (in v2, or a v1 hierarchy).
    pub fn has_pids(&self) -> bool {
        self.pids.is_some()
    }

    /// `pids.current` and `pids.max`, set only when both were read.
    pub fn read_pids(&mut self, s: &mut CgroupStats) -> Result<(), ProcError> {
        if let Some((current, max)) = &mut self.pids {
            let (c, m) = current.number().and_then(|c| Ok((c, max.number()?)))?;
            (s.pids, s.pids_limit) = (c, m);
        }
        Ok(())
    }
}

/// Adds `dir` (when there is one) to the directories read, and passes it on.
fn note_dir<'a>(dirs: &mut Vec<PathBuf>, dir: Option<&'a Path>) -> Option<&'a Path> {
    if let Some(d) = dir {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_path_buf());
        }
    }
    dir
}

/// The cgroup fixture trees under `tests/fixtures/cgroup/` (`fixture("v2-k8s-container")`).
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup").join(name)
}

/// A writable copy of a cgroup fixture tree, and its [`HostPaths`](crate::units::HostPaths).
#[cfg(test)]
pub(crate) fn fixture_copy(name: &str) -> (tempfile::TempDir, crate::units::HostPaths) {
    // `fixture_copy` takes paths below `tests/fixtures/proc`.
    crate::collectors::testutil::fixture_copy(&format!("../cgroup/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_absent_from_then_on_but_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CgFile::new(Some(dir.path()), "pids.current");
        assert_eq!(f.number().unwrap(), None);
        std::fs::write(dir.path().join("pids.current"), "5\n").unwrap();
        assert_eq!(f.number().unwrap(), None, "not looked for again");
        let mut f = CgFile::new(Some(dir.path()), "pids.current");
        assert_eq!(f.number().unwrap(), Some(5));
        let mut gone = CgFile::new(Some(&dir.path().join("removed")), "pids.current");
        assert!(gone.read().unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
    }

    #[test]
    fn a_single_number_file_reads_max_and_negatives_as_none_and_garbage_as_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = CgFile::new(Some(dir.path()), "memory.max");
        for (text, want) in [("536870912\n", Some(536870912)), ("max\n", None), ("-1\n", None)] {
            std::fs::write(dir.path().join("memory.max"), text).unwrap();
            assert_eq!(f.number().unwrap(), want, "{text:?}");
        }
        std::fs::write(dir.path().join("memory.max"), "lots\n").unwrap();
        let e = f.number().unwrap_err().to_string();
        assert!(e.contains("memory.max") && e.contains("not a number: \"lots\""), "{e}");
    }
}
