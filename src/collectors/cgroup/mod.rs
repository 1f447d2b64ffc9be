//! The cgroup collector: `container.*`, the limits and usage of one cgroup — by default the
//! agent's own, so that an agent in a container reports its container (its CPU quota, memory
//! limit, working set) rather than the host the system collectors describe.
//!
//! The collector turns what [`procfs::cgroup`](crate::procfs::cgroup) reads into points:
//! finding the cgroup and parsing its v1 and v2 files are there; here are the choice of cgroup
//! from the config (`config.rs`), the CPU usage rate, and the instruments (`instruments.rs`).
//!
//! **Which cgroup.** By default the agent's own, from `PROC/self/cgroup` and the cgroup mounts
//! of `PROC/self/mountinfo` ([`find`] says how). Pure v2, pure v1
//! and hybrid hosts work: each group of metrics comes from v2 when the cgroup's
//! `cgroup.controllers` lists its controller (`cpu`, `memory`, `io`, `pids`), else from the v1
//! hierarchy of that controller (`cpu` and `cpuacct`, `memory`, `blkio`, `pids`), else — CPU
//! time only, which v2 keeps without the `cpu` controller — from v2's `cpu.stat`. `path` and
//! `root` in [`CgroupConfig`] override both files, and `scope: pod` (below) looks for the pod's
//! cgroup instead. The cgroup is found on the first refresh and again after its directory
//! disappeared.
//!
//! **The pod (`scope: pod`).** A sidecar's own cgroup is only its container, and with a private
//! cgroup namespace it cannot see its parent. With `scope: pod` the reported cgroup is the
//! Kubernetes pod's, which holds all the pod's containers and carries the pod-level limits (the
//! sums of the containers'). It is found by the pod UID (`pod_uid`, else `K8S_POD_UID` from the
//! downward API) below the root of each hierarchy — `root`, typically the node's
//! `/sys/fs/cgroup` mounted read-only by a `hostPath` volume, else every cgroup mount of
//! mountinfo — looking only in the top-level `kubepods*` directories and at most three levels
//! deep, for the directory the kubelet names after the pod (`…-pod<uid>.slice`,
//! `pod<uid>`). No UID, or no such directory, fails the refresh with an error naming the UID
//! and the root searched. `path` does not go with `scope: pod`.
//!
//! **Formats.** The files of cgroup v2 are shown in [`v2`](crate::procfs::cgroup::v2), those of
//! v1 in [`v1`](crate::procfs::cgroup::v1).
//!
//! **Metrics.**
//!
//! | metric | instrument, unit | v2 source | v1 source |
//! | --- | --- | --- | --- |
//! | `container.cpu.time{cpu.mode=user\|system}` | Counter, s | `cpu.stat` `user_usec`, `system_usec` | `cpuacct.usage_user`, `usage_sys` (ns), else `cpuacct.stat` ÷ USER_HZ |
//! | `container.cpu.usage` | Gauge, {cpu} | Δ`cpu.stat` `usage_usec` ÷ Δwall time | Δ`cpuacct.usage` ÷ Δwall time |
//! | `container.cpu.limit` | Gauge, {cpu} | `cpu.max` quota ÷ period | `cpu.cfs_quota_us` ÷ `cpu.cfs_period_us` |
//! | `container.linux.cpu.throttling.periods{cpu.throttling.state=total\|throttled}` | Counter, {period} | `cpu.stat` `nr_periods`, `nr_throttled` | `cpu.stat` (cpu controller), same keys |
//! | `container.linux.cpu.throttling.time` | Counter, s | `cpu.stat` `throttled_usec` | `cpu.stat` `throttled_time` (ns) |
//! | `container.memory.usage` | UpDownCounter, By | `memory.current` | `memory.usage_in_bytes` |
//! | `container.linux.memory.limit` | UpDownCounter, By | `memory.max` | `memory.limit_in_bytes` (< 2⁶²) |
//! | `container.memory.working_set` | UpDownCounter, By | usage − `memory.stat` `inactive_file` | usage − `total_inactive_file` |
//! | `container.memory.rss` | UpDownCounter, By | `memory.stat` `anon` | `memory.stat` `total_rss` (else `rss`) |
//! | `container.memory.available` | UpDownCounter, By | limit − working set | limit − working set |
//! | `container.linux.memory.oom_kills` | Counter, {kill} | `memory.events` `oom_kill` | `memory.oom_control` `oom_kill` |
//! | `container.paging.faults{system.paging.fault.type=major\|minor}` | Counter, {fault} | `memory.stat` `pgmajfault`, `pgfault` − `pgmajfault` | `total_pgmajfault`, `total_pgfault` − `total_pgmajfault` |
//! | `container.disk.io{system.device, disk.io.direction}` | Counter, By | `io.stat` `rbytes`, `wbytes` | `blkio.throttle.io_service_bytes_recursive` `Read`, `Write` |
//! | `container.linux.disk.operations{system.device, disk.io.direction}` | Counter, {operation} | `io.stat` `rios`, `wios` | `blkio.throttle.io_serviced_recursive` |
//! | `container.pids.count` | UpDownCounter, {process} | `pids.current` | `pids.current` |
//! | `container.pids.limit` | UpDownCounter, {process} | `pids.max` | `pids.max` |
//!
//! The working set is what the kubelet and cAdvisor call `container_memory_working_set_bytes`
//! (what evictions and `kubectl top` go by): usage less the inactive file cache, never below
//! zero. `available` is reported only when there is a memory limit. `system.device` is the
//! device's `MAJ:MIN` as the cgroup files name it. v1 block I/O falls back from the
//! `_recursive` throttle files to the non-recursive ones, then to the CFQ and BFQ files
//! (`blkio.io_service_bytes`, `blkio.bfq.io_service_bytes`); blk-throttle counts a device's I/O
//! only on kernels or devices where it is active, so on v1 these can stay at zero. Counters are
//! the kernel's values since the cgroup was created.
//!
//! **Absent data.** A limit that is not set (`max`, `-1`, the page-rounded `i64::MAX` of v1) is
//! not reported; nor is anything whose controller or file this cgroup lacks. A file found
//! missing is not looked for again (until the cgroup is found again); `container.cpu.usage` needs
//! two refreshes. When a directory of the cgroup cannot be read (the cgroup was removed, a wrong
//! `path`), the refresh fails with an error naming it.
//!
//! **Cost.** The files read every tick (about ten) are kept open ([`ProcFile`](crate::procfs::ProcFile)) and parsed in
//! place, and each directory is checked with one `stat`; a refresh allocates nothing once the
//! devices are known.

mod config;
pub(crate) mod instruments;
#[cfg(test)]
mod tests;

pub use config::{looks_like_container, CgroupConfig, CgroupScope};
pub use instruments::METRICS;

use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::cgroup::{find, CgroupFiles, CgroupStats, FindError, Location, Target};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn other(path: &Path, msg: String) -> CollectorError {
    CollectorError::Other { what: path.display().to_string(), msg }
}

/// Finds the cgroup `config` names — by default the agent's own; with `scope: pod`, that of
/// the pod `pod_uid` (resolved by [`CgroupConfig::pod_uid`]): see the module documentation.
pub fn locate(paths: &HostPaths, config: &CgroupConfig, pod_uid: Option<&str>) -> Result<Location, CollectorError> {
    config.check().map_err(|msg| CollectorError::Other { what: "collector.cgroup".into(), msg })?;
    let target = match (config.scope, config.path.as_deref()) {
        (CgroupScope::Pod, _) => Target::Pod(pod_uid),
        (CgroupScope::Container, Some(path)) => Target::Path(path),
        (CgroupScope::Container, None) => Target::Own,
    };
    find::locate(paths, config.root.as_deref(), target).map_err(|e| match e {
        FindError::Proc(e) => CollectorError::Proc(e),
        FindError::NotFound { what, msg } => CollectorError::Other { what, msg },
    })
}

/// The attributes of one block device, built once: `[read, write]`.
#[derive(Debug)]
struct DeviceAttrs {
    dirs: [Vec<KeyValue>; 2],
}

impl DeviceAttrs {
    fn new(device: &str) -> Self {
        let dirs = ["read", "write"].map(|d| vec![KeyValue::new("system.device", std::sync::Arc::<str>::from(device)), KeyValue::new("disk.io.direction", d)]);
        DeviceAttrs { dirs }
    }
}

/// One device's I/O: `[read, write]` bytes and operations.
#[derive(Debug)]
struct DeviceIo {
    attrs: Arc<DeviceAttrs>,
    bytes: [Option<u64>; 2],
    ops: [Option<u64>; 2],
}

/// What the instruments report from one tick; `None` is "not reported".
#[derive(Debug, Default)]
struct Snapshot {
    cpu_user: Option<f64>,
    cpu_system: Option<f64>,
    cpu_usage: Option<f64>,
    cpu_limit: Option<f64>,
    /// `[total, throttled]` periods.
    periods: Option<[u64; 2]>,
    throttled_seconds: Option<f64>,
    memory_usage: Option<u64>,
    memory_limit: Option<u64>,
    working_set: Option<u64>,
    rss: Option<u64>,
    available: Option<u64>,
    oom_kills: Option<u64>,
    /// `[major, minor]`.
    faults: Option<[u64; 2]>,
    io: Vec<DeviceIo>,
    pids: Option<u64>,
    pids_limit: Option<u64>,
}

impl Snapshot {
    /// Takes what `st` read, with the CPU usage rate, keeping the I/O list's allocation.
    fn fill(&mut self, st: &CgroupStats, cpu_usage: Option<f64>, devices: &mut HashMap<Arc<str>, Arc<DeviceAttrs>>) {
        let CgroupStats {
            cpu_user,
            cpu_system,
            cpu_total: _,
            cpu_limit,
            periods,
            throttled_seconds,
            memory_usage,
            memory_limit,
            working_set,
            rss,
            available,
            oom_kills,
            faults,
            io,
            pids,
            pids_limit,
        } = st;
        let mut ios = std::mem::take(&mut self.io);
        ios.clear();
        ios.extend(io.iter().map(|d| DeviceIo { attrs: device(devices, &d.device), bytes: d.bytes, ops: d.ops }));
        *self = Snapshot {
            cpu_user: *cpu_user,
            cpu_system: *cpu_system,
            cpu_usage,
            cpu_limit: *cpu_limit,
            periods: *periods,
            throttled_seconds: *throttled_seconds,
            memory_usage: *memory_usage,
            memory_limit: *memory_limit,
            working_set: *working_set,
            rss: *rss,
            available: *available,
            oom_kills: *oom_kills,
            faults: *faults,
            io: ios,
            pids: *pids,
            pids_limit: *pids_limit,
        };
    }
}

/// The attributes of device `name`, made on its first sight.
fn device(devices: &mut HashMap<Arc<str>, Arc<DeviceAttrs>>, name: &Arc<str>) -> Arc<DeviceAttrs> {
    match devices.get(&**name) {
        Some(a) => a.clone(),
        None => devices.entry(name.clone()).or_insert_with(|| Arc::new(DeviceAttrs::new(name))).clone(),
    }
}

/// Reads one cgroup's files every tick, keeping them open.
pub struct CgroupCollector {
    paths: HostPaths,
    config: CgroupConfig,
    /// With `scope: pod`, the pod's UID, resolved when made.
    pod_uid: Option<String>,
    /// `None` until the cgroup is found, and again after its directory went away.
    files: Option<CgroupFiles>,
    /// What the last refresh read (kept for its allocation).
    stats: CgroupStats,
    snap: Arc<SnapshotCell<Snapshot>>,
    devices: HashMap<Arc<str>, Arc<DeviceAttrs>>,
    /// Monotonic time, for the usage rate (replaced in tests).
    now: Box<dyn FnMut() -> Duration + Send>,
    /// The previous refresh's (time, total CPU seconds).
    prev: Option<(Duration, f64)>,
    /// Which controllers' files fail (each alone).
    sources: super::sources::Sources,
}

impl CgroupCollector {
    /// A collector of the cgroup `config` names (by default the agent's own), found on the
    /// first refresh; with `scope: pod`, the pod's UID is `pod_uid` or the process's
    /// `K8S_POD_UID`.
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &CgroupConfig) -> Self {
        let pod_uid = config.pod_uid(|k| std::env::var(k).ok());
        Self::with_pod_uid(paths, clock, config, pod_uid)
    }

    /// [`new`](Self::new) with the pod UID (for `scope: pod`) resolved by the caller, as
    /// [`CgroupConfig::pod_uid`] does.
    pub fn with_pod_uid(paths: &HostPaths, clock: &TickClock, config: &CgroupConfig, pod_uid: Option<String>) -> Self {
        let start = Instant::now();
        CgroupCollector {
            paths: paths.clone(),
            config: config.clone(),
            pod_uid,
            files: None,
            stats: CgroupStats::default(),
            snap: SnapshotCell::new(clock),
            devices: HashMap::new(),
            now: Box::new(move || start.elapsed()),
            prev: None,
            sources: super::sources::Sources::new("cgroup"),
        }
    }

    fn find(&mut self) -> Result<(), CollectorError> {
        let loc = locate(&self.paths, &self.config, self.pod_uid.as_deref())?;
        let files = CgroupFiles::open(&loc);
        for d in files.dirs() {
            std::fs::read_dir(d).map_err(|e| other(d, format!("cannot read the cgroup directory: {e}")))?;
        }
        self.files = Some(files);
        self.prev = None;
        Ok(())
    }

    /// An error naming the first directory of the cgroup that is gone (the cgroup was removed),
    /// after which the cgroup is looked for again on the next refresh.
    fn check_dirs(&mut self) -> Result<(), CollectorError> {
        if let Some(gone) = self.files.as_ref().and_then(|f| f.dirs().iter().find(|d| !d.is_dir()).cloned()) {
            self.files = None;
            return Err(other(&gone, "the cgroup directory is gone (the cgroup was removed)".into()));
        }
        Ok(())
    }

    /// Reads every controller's files into `self.stats`; each controller (cpu, memory, io,
    /// pids) fails alone. An error only when every one failed.
    fn read(&mut self) -> Result<(), CollectorError> {
        self.sources.begin();
        let Some(files) = self.files.as_mut() else { return Ok(()) };
        let s = &mut self.stats;
        let r = files.read_cpu(s);
        self.sources.check("cpu", r);
        let r = files.read_memory(s);
        self.sources.check("memory", r);
        let r = files.read_io(s);
        self.sources.check("io", r);
        if files.has_pids() {
            let r = files.read_pids(s);
            self.sources.check("pids", r);
        }
        self.sources.end()
    }
}

impl Collector for CgroupCollector {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn register(&mut self, meter: &Meter) {
        self.register_instruments(meter);
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if self.files.is_none() {
            self.find()?;
        }
        // Files kept open in a removed cgroup fail to read, but not every file is read every
        // tick; one stat per directory tells for sure.
        self.check_dirs()?;
        let mut s = self.snap.take().unwrap_or_default();
        self.stats.clear();
        let now = (self.now)();
        let read = self.read();
        if read.is_err() || self.sources.failing().next().is_some() {
            // Removed while being read?
            self.check_dirs()?;
        }
        read?;
        let mut cpu_usage = None;
        if let Some(total) = self.stats.cpu_total {
            if let Some((then, before)) = self.prev {
                let dt = now.saturating_sub(then).as_secs_f64();
                if dt > 0.0 && total >= before {
                    cpu_usage = Some((total - before) / dt);
                }
            }
            self.prev = Some((now, total));
        }
        s.fill(&self.stats, cpu_usage, &mut self.devices);
        self.snap.set(s);
        Ok(())
    }
}
