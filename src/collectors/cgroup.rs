//! The cgroup collector: `container.*`, the limits and usage of one cgroup — by default the
//! agent's own, so that an agent in a container reports its container (its CPU quota, memory
//! limit, working set) rather than the host the system collectors describe.
//!
//! **Which cgroup.** `PROC/self/cgroup` (cgroup(7)) names the agent's cgroup in each hierarchy,
//! `PROC/self/mountinfo` where each hierarchy is mounted:
//!
//! ```text
//! 0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope   v2
//! 4:memory:/docker/<id>                                                                   v1: id:controllers:path
//! 0::/                                                                                    private cgroup namespace
//! 1707 1706 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate
//! 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory               v1: controllers in the super options
//! ```
//!
//! The cgroup's directory is the mount point plus its path below the mount's root (field 4,
//! `/` unless a subtree is bind-mounted, as runc does for a container without a cgroup
//! namespace). With a private cgroup namespace the path is `/` and the container's cgroup is
//! the mount itself. Mount points are paths of the agent's mount namespace: `/sys/...` is read
//! below `HOST_SYS` and anything else below `HOST_ROOT`. Pure v2 (`/sys/fs/cgroup`), pure v1 and
//! hybrid hosts (v1 controllers plus a controller-less v2 at `/sys/fs/cgroup/unified`) work: each
//! group of metrics comes from v2 when the cgroup's `cgroup.controllers` lists its controller
//! (`cpu`, `memory`, `io`, `pids`), else from the v1 hierarchy of that controller (`cpu` and
//! `cpuacct`, `memory`, `blkio`, `pids`), else — CPU time only, which v2 keeps without the `cpu`
//! controller — from v2's `cpu.stat`. `path` and `root` in [`CgroupConfig`] override both files,
//! and `scope: pod` (below) looks for the pod's cgroup instead.
//! The cgroup is found on the first refresh and again after its directory disappeared.
//!
//! **The pod (`scope: pod`).** A sidecar's own cgroup is only its container, and with a private
//! cgroup namespace it cannot see its parent. With `scope: pod` the reported cgroup is the
//! Kubernetes pod's, which holds all the pod's containers and carries the pod-level limits (the
//! sums of the containers'). It is found by the pod UID (`pod_uid`, else `K8S_POD_UID` from the
//! downward API) below the root of each hierarchy — `root`, typically the node's
//! `/sys/fs/cgroup` mounted read-only by a `hostPath` volume, else every cgroup mount of
//! mountinfo — looking only in the top-level `kubepods*` directories and at most three levels
//! deep, for the directory the kubelet names after the pod:
//!
//! ```text
//! kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, - as _>.slice   systemd driver
//! kubepods.slice/kubepods-pod<uid, - as _>.slice                                      Guaranteed
//! kubepods/burstable/pod<uid>, kubepods/pod<uid>                                      cgroupfs driver
//! ```
//!
//! No UID, or no such directory, fails the refresh with an error naming the UID and the root
//! searched. `path` does not go with `scope: pod`.
//!
//! **Formats.** cgroup v2 (Documentation/admin-guide/cgroup-v2.rst):
//!
//! ```text
//! cpu.stat        usage_usec 3481266 / user_usec 2514875 / system_usec 966391 /
//!                 nr_periods 1205 / nr_throttled 37 / throttled_usec 1825490     (one pair a line)
//! cpu.max         150000 100000          quota and period in µs; "max 100000": no limit
//! memory.current  157286400
//! memory.max      536870912              "max": no limit
//! memory.stat     anon 104857600 / inactive_file 31457280 / pgfault 248910 / pgmajfault 121
//! memory.events   oom_kill 1
//! io.stat         8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
//! pids.current    7
//! pids.max        1024                   "max": no limit
//! ```
//!
//! cgroup v1 (Documentation/admin-guide/cgroup-v1/):
//!
//! ```text
//! cpuacct.stat               user 196 / system 45           USER_HZ ticks
//! cpuacct.usage              2423771124                     ns, also cpuacct.usage_user, cpuacct.usage_sys
//! cpu.cfs_quota_us           50000                          -1: no limit
//! cpu.cfs_period_us          100000
//! cpu.stat                   nr_periods 45 / nr_throttled 42 / throttled_time 5051528560 (ns)
//! memory.usage_in_bytes      162500608
//! memory.limit_in_bytes      268435456                      9223372036854771712: no limit
//! memory.stat                total_rss 108617728 / total_inactive_file 50581504 / total_pgfault 59666
//! memory.oom_control         oom_kill 0                     (since 4.13)
//! blkio.throttle.io_service_bytes_recursive   254:0 Read 67112960 / 254:0 Write 67108864 / Total 134221824
//! blkio.throttle.io_serviced_recursive        254:0 Read 65 / 254:0 Write 64
//! pids.current 4, pids.max 64                               as v2
//! ```
//!
//! **Metrics.**
//!
//! | metric | instrument, unit | v2 source | v1 source |
//! | --- | --- | --- | --- |
//! | `container.cpu.time{cpu.mode=user\|system}` | Counter, s | `cpu.stat` `user_usec`, `system_usec` | `cpuacct.usage_user`, `usage_sys` (ns), else `cpuacct.stat` ÷ USER_HZ |
//! | `container.cpu.usage` | Gauge, {cpu} | Δ`cpu.stat` `usage_usec` ÷ Δwall time | Δ`cpuacct.usage` ÷ Δwall time |
//! | `container.cpu.limit` | Gauge, {cpu} | `cpu.max` quota ÷ period | `cpu.cfs_quota_us` ÷ `cpu.cfs_period_us` |
//! | `container.cpu.throttling.periods{cpu.throttling.state=total\|throttled}` | Counter, {period} | `cpu.stat` `nr_periods`, `nr_throttled` | `cpu.stat` (cpu controller), same keys |
//! | `container.cpu.throttling.time` | Counter, s | `cpu.stat` `throttled_usec` | `cpu.stat` `throttled_time` (ns) |
//! | `container.memory.usage` | UpDownCounter, By | `memory.current` | `memory.usage_in_bytes` |
//! | `container.memory.limit` | UpDownCounter, By | `memory.max` | `memory.limit_in_bytes` (< 2⁶²) |
//! | `container.memory.working_set` | UpDownCounter, By | usage − `memory.stat` `inactive_file` | usage − `total_inactive_file` |
//! | `container.memory.rss` | UpDownCounter, By | `memory.stat` `anon` | `memory.stat` `total_rss` (else `rss`) |
//! | `container.memory.available` | UpDownCounter, By | limit − working set | limit − working set |
//! | `container.memory.oom_kills` | Counter, {kill} | `memory.events` `oom_kill` | `memory.oom_control` `oom_kill` |
//! | `container.paging.faults{system.paging.fault.type=major\|minor}` | Counter, {fault} | `memory.stat` `pgmajfault`, `pgfault` − `pgmajfault` | `total_pgmajfault`, `total_pgfault` − `total_pgmajfault` |
//! | `container.disk.io{system.device, disk.io.direction}` | Counter, By | `io.stat` `rbytes`, `wbytes` | `blkio.throttle.io_service_bytes_recursive` `Read`, `Write` |
//! | `container.disk.operations{system.device, disk.io.direction}` | Counter, {operation} | `io.stat` `rios`, `wios` | `blkio.throttle.io_serviced_recursive` |
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
//! **Cost.** The files read every tick (about ten) are kept open ([`ProcFile`]) and parsed in
//! place, and each directory is checked with one `stat`; a refresh allocates nothing once the
//! devices are known.

use super::instruments::{ByDefault, Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{mountinfo, ProcError, ProcFile};
use crate::resource::container;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `collector.cgroup.scope`: which cgroup is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupScope {
    /// The agent's own cgroup (its container), or the one `path` names.
    #[default]
    Container,
    /// The agent's Kubernetes pod: the pod's cgroup, which holds all its containers (the
    /// sandbox's too) and carries the pod-level limits, found by the pod UID (`pod_uid`, else
    /// `K8S_POD_UID`) below the `kubepods*` directories of each hierarchy.
    Pod,
}

impl CgroupScope {
    fn is_container(&self) -> bool {
        *self == CgroupScope::Container
    }
}

/// `collector.cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "CgroupConfigFields")]
pub struct CgroupConfig {
    /// Run this collector. Default: on when `path`, `root` or `scope: pod` is set or when the
    /// agent runs in a container (its cgroup or mounts name a container runtime — Docker,
    /// containerd, CRI-O, Podman, Kubernetes — or it sits at the root of a private cgroup
    /// namespace); off on a plain host, where the system collectors already describe the same
    /// machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The cgroup to report instead of the agent's own, as a path from the root of each
    /// hierarchy: `/kubepods.slice/kubepods-burstable.slice/…/cri-containerd-<id>.scope` (v2),
    /// `/docker/<id>` (v1, the same path in every controller's hierarchy). Not with
    /// `scope: pod`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where the cgroup hierarchies are mounted, instead of what `PROC/self/mountinfo` says
    /// (used as is, not below `HOST_SYS`): a cgroup2 mount (a directory with
    /// `cgroup.controllers`, such as `/host/sys/fs/cgroup` on a v2 host), or a directory of v1
    /// hierarchies named by their controllers (`cpu,cpuacct/`, `memory/`, `blkio/`, `pids/`, and
    /// a hybrid host's v2 in `unified/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// `container` (default) or `pod`: see [`CgroupScope`].
    #[serde(skip_serializing_if = "CgroupScope::is_container")]
    pub scope: CgroupScope,
    /// With `scope: pod`, the pod's UID (`metadata.uid`); default: `K8S_POD_UID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

/// The keys of `collector.cgroup` as written, checked by [`CgroupConfig::check`] on the way in.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CgroupConfigFields {
    enabled: Option<bool>,
    path: Option<String>,
    root: Option<PathBuf>,
    scope: CgroupScope,
    pod_uid: Option<String>,
}

impl TryFrom<CgroupConfigFields> for CgroupConfig {
    type Error = String;

    fn try_from(f: CgroupConfigFields) -> Result<Self, String> {
        let c = CgroupConfig { enabled: f.enabled, path: f.path, root: f.root, scope: f.scope, pod_uid: f.pod_uid };
        // Reported at `collector` (the key holding this section): say which section.
        c.check().map(|()| c).map_err(|msg| format!("cgroup: {msg}"))
    }
}

impl CgroupConfig {
    /// Whether the collector runs: `enabled` when set; else on when `path`, `root` or
    /// `scope: pod` is set or [`looks_like_container`].
    pub fn is_enabled(&self, paths: &HostPaths) -> bool {
        self.enabled.unwrap_or_else(|| self.path.is_some() || self.root.is_some() || self.scope == CgroupScope::Pod || looks_like_container(paths))
    }

    /// The combinations of keys that make no sense (checked when the config is read, and
    /// again by [`locate`]): `path` with `scope: pod`, `pod_uid` without it, an empty `pod_uid`.
    pub fn check(&self) -> Result<(), String> {
        match (self.scope, &self.path, self.pod_uid.as_deref()) {
            (CgroupScope::Pod, Some(_), _) => {
                Err("`path` and `scope: pod` exclude each other: `scope: pod` finds the pod's cgroup by its UID, `path` names one cgroup".into())
            }
            (CgroupScope::Container, _, Some(_)) => Err("`pod_uid` is used only with `scope: pod`".into()),
            (_, _, Some(uid)) if uid.trim().is_empty() => Err("`pod_uid` is empty".into()),
            _ => Ok(()),
        }
    }

    /// The UID of the pod `scope: pod` reports: `pod_uid`, else the variable `K8S_POD_UID`
    /// (the downward API's `metadata.uid`, as the resource detector reads it) from `env`; `None`
    /// with `scope: container` or when neither is set.
    pub fn pod_uid(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        if self.scope != CgroupScope::Pod {
            return None;
        }
        self.pod_uid.clone().or_else(|| env("K8S_POD_UID")).map(|u| u.trim().to_owned()).filter(|u| !u.is_empty())
    }
}

/// Words in the cgroup paths container managers create.
const CONTAINER_WORDS: [&str; 5] = ["kubepods", "docker", "containerd", "crio", "libpod"];

/// Whether the agent runs in a container, judged from `PROC/self/cgroup` and
/// `PROC/self/mountinfo`: the resource detector finds a container there (a container ID in the
/// cgroup path, a runtime's bind mounts), or a cgroup path names `kubepods`, `docker`,
/// `containerd`, `crio` or `libpod`, or the agent's cgroup is `/` but what is mounted there is
/// not a hierarchy's real root (a private cgroup namespace: v2's `cgroup.type` and v1's missing
/// `release_agent` exist only below the root).
pub fn looks_like_container(paths: &HostPaths) -> bool {
    let Ok(cgroup) = std::fs::read_to_string(paths.proc("self/cgroup")) else { return false };
    if container::container_of_cgroup_line(&cgroup).is_some() {
        return true;
    }
    if cgroup.lines().map(container::cgroup_path).any(|p| CONTAINER_WORDS.iter().any(|w| p.contains(w))) {
        return true;
    }
    let Ok(mounts) = std::fs::read_to_string(paths.proc("self/mountinfo")) else { return false };
    let m = container::container_of_mountinfo(&mounts);
    if m.container_id.is_some() || m.runtime.is_some() || m.pod_uid.is_some() {
        return true;
    }
    let Ok(parsed) = mountinfo::parse(&mounts) else { return false };
    hierarchies_of_mounts(paths, &parsed).iter().any(|h| {
        if own_path(h, &cgroup) != Some("/") {
            return false;
        }
        let dir = h.dir_of("/");
        if h.v2 {
            dir.join("cgroup.type").exists()
        } else {
            dir.join("cgroup.procs").exists() && !dir.join("release_agent").exists()
        }
    })
}

/// The v1 controllers this collector reads.
const V1_CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    /// cgroup2 (unified) rather than a v1 hierarchy.
    v2: bool,
    /// v1: the mount's super options or directory name, which list its controllers
    /// (`rw,cpu,cpuacct`).
    controllers: String,
    /// Where it is mounted, on this machine's paths.
    dir: PathBuf,
    /// The cgroup mounted there (mountinfo's root field): `/` unless a subtree is bind-mounted.
    root: String,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }

    /// The directory of the cgroup at `path` (from the hierarchy's root, as `PROC/self/cgroup`
    /// gives it): the part of the path below the mounted subtree, below the mount point.
    fn dir_of(&self, path: &str) -> PathBuf {
        let rel = match path.strip_prefix(self.root.trim_end_matches('/')) {
            Some(r) if r.is_empty() || r.starts_with('/') => r,
            _ => path,
        };
        match rel.trim_start_matches('/') {
            "" => self.dir.clone(),
            rel => self.dir.join(rel),
        }
    }
}

/// A mount point of the agent's mount namespace on this machine's paths: `/sys/...` below
/// `HOST_SYS`, anything else below `HOST_ROOT`.
fn host_path(paths: &HostPaths, mount_point: &str) -> PathBuf {
    match mount_point.strip_prefix("/sys") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => paths.sys(rest),
        _ => paths.root(mount_point),
    }
}

fn hierarchies_of_mounts(paths: &HostPaths, mounts: &[mountinfo::Mount]) -> Vec<Hierarchy> {
    mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup2" || m.fs_type == "cgroup")
        .map(|m| Hierarchy {
            v2: m.fs_type == "cgroup2",
            controllers: if m.fs_type == "cgroup" { m.super_options.clone() } else { String::new() },
            dir: host_path(paths, &m.mount_point),
            root: m.root.clone(),
        })
        .collect()
}

/// The hierarchies below a configured `root`: itself when it is a cgroup2 mount, else its
/// subdirectories (v2 where they have `cgroup.controllers`, else v1 named by controllers).
fn hierarchies_below(root: &Path) -> Result<Vec<Hierarchy>, CollectorError> {
    let v2 = |dir: PathBuf| Hierarchy { v2: true, controllers: String::new(), dir, root: "/".into() };
    if root.join("cgroup.controllers").exists() {
        return Ok(vec![v2(root.to_path_buf())]);
    }
    let entries = std::fs::read_dir(root).map_err(|e| other(root, format!("cannot read the cgroup root: {e}")))?;
    let mut out: Vec<Hierarchy> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            // v2 has `cgroup.controllers` at its root; a hybrid host's is `unified/` (also taken
            // by name, for copies of a tree that hold only the cgroup's own directory).
            if dir.join("cgroup.controllers").exists() || dir.file_name().is_some_and(|n| n == "unified") {
                v2(dir)
            } else {
                let controllers = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Hierarchy { v2: false, controllers, dir, root: "/".into() }
            }
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// The agent's cgroup path in hierarchy `h`, from the text of `PROC/self/cgroup`
/// (`0::/path` for v2, `N:controllers:/path` for v1).
fn own_path<'a>(h: &Hierarchy, cgroup: &'a str) -> Option<&'a str> {
    cgroup.lines().find_map(|line| {
        let mut it = line.trim_end().splitn(3, ':');
        let (id, controllers, path) = (it.next()?, it.next()?, it.next()?);
        let hit = if h.v2 { id == "0" && controllers.is_empty() } else { !controllers.is_empty() && controllers.split(',').any(|c| h.has(c)) };
        hit.then_some(path)
    })
}

fn other(path: &Path, msg: String) -> CollectorError {
    CollectorError::Other { what: path.display().to_string(), msg }
}

/// Where one cgroup's files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The cgroup's directory in the unified (v2) hierarchy, when one is mounted.
    pub unified: Option<PathBuf>,
    /// The controllers enabled for it there (its `cgroup.controllers`).
    pub unified_controllers: Vec<String>,
    /// Its directory in each v1 hierarchy of a controller read here (`cpu`, `cpuacct`,
    /// `memory`, `blkio`, `pids`).
    pub v1: Vec<(&'static str, PathBuf)>,
}

impl Location {
    /// The cgroup's directory in the v1 hierarchy of `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| *c == controller).map(|(_, d)| d.as_path())
    }

    /// The v2 directory when `controller` is enabled there.
    fn v2_with(&self, controller: &str) -> Option<&Path> {
        self.unified.as_deref().filter(|_| self.unified_controllers.iter().any(|c| c == controller))
    }

    /// Takes `dir` as the cgroup's directory in hierarchy `h`, unless one was found before.
    fn add(&mut self, h: &Hierarchy, dir: PathBuf) {
        if h.v2 {
            if self.unified.is_none() {
                self.unified = Some(dir);
            }
        } else {
            for c in V1_CONTROLLERS {
                if h.has(c) && self.v1(c).is_none() {
                    self.v1.push((c, dir.clone()));
                }
            }
        }
    }
}

/// How deep below a hierarchy's root a pod's cgroup is looked for:
/// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`,
/// `kubepods/burstable/pod<uid>`.
const POD_SEARCH_DEPTH: usize = 3;

/// The subdirectories of `dir` with their names (none when it cannot be read).
fn subdirs(dir: &Path) -> impl Iterator<Item = (String, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
}

/// The cgroup of the Kubernetes pod `uid` in the hierarchy mounted at `root`: a directory
/// `pod<uid>` (the kubelet's cgroupfs driver: `kubepods/burstable/pod<uid>`,
/// `kubepods/pod<uid>` for Guaranteed pods) or `kubepods-[<qos>-]pod<uid, - as _>.slice`
/// (the systemd driver), within [`POD_SEARCH_DEPTH`] levels and only below the top-level
/// `kubepods*` directories: a few `readdir`s.
fn pod_dir_below(root: &Path, uid: &str) -> Option<PathBuf> {
    let cgroupfs = format!("pod{uid}");
    let systemd = format!("-pod{}.slice", uid.replace('-', "_"));
    let is_pod = |name: &str| name == cgroupfs || (name.starts_with("kubepods-") && name.ends_with(&systemd));
    let mut level: Vec<PathBuf> = subdirs(root).filter(|(n, _)| n.starts_with("kubepods")).map(|(_, p)| p).collect();
    for depth in 2..=POD_SEARCH_DEPTH {
        let mut next = Vec::new();
        for dir in &level {
            for (name, path) in subdirs(dir) {
                if is_pod(&name) {
                    return Some(path);
                }
                if depth < POD_SEARCH_DEPTH {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    None
}

/// Finds the cgroup `config` names — by default the agent's own; with `scope: pod`, that of
/// the pod `pod_uid` (resolved by [`CgroupConfig::pod_uid`]): see the module documentation.
pub fn locate(paths: &HostPaths, config: &CgroupConfig, pod_uid: Option<&str>) -> Result<Location, CollectorError> {
    config.check().map_err(|msg| CollectorError::Other { what: "collector.cgroup".into(), msg })?;
    let (hierarchies, source) = match &config.root {
        Some(root) => (hierarchies_below(root)?, root.clone()),
        None => {
            let path = paths.proc("self/mountinfo");
            let text = crate::procfs::read_to_string(&path)?;
            let mounts = mountinfo::parse(&text).map_err(|e| crate::procfs::at(&path, e))?;
            (hierarchies_of_mounts(paths, &mounts), path)
        }
    };
    let mut loc = Location::default();
    if config.scope == CgroupScope::Pod {
        // What was searched, for the errors: the configured root, else the cgroup mounts.
        let searched = match &config.root {
            Some(root) => root.display().to_string(),
            None if hierarchies.is_empty() => source.display().to_string(),
            None => {
                let dirs: Vec<String> = hierarchies.iter().map(|h| h.dir.display().to_string()).collect();
                format!("{} (the cgroup mounts of {})", dirs.join(", "), source.display())
            }
        };
        let Some(uid) = pod_uid.map(str::trim).filter(|u| !u.is_empty()) else {
            let msg = "`scope: pod` but the pod UID is unknown: set `collector.cgroup.pod_uid`, or K8S_POD_UID from the downward API (fieldRef metadata.uid)";
            return Err(CollectorError::Other { what: searched, msg: msg.into() });
        };
        for h in &hierarchies {
            if let Some(dir) = pod_dir_below(&h.dir, uid) {
                loc.add(h, dir);
            }
        }
        if loc.unified.is_none() && loc.v1.is_empty() && !hierarchies.is_empty() {
            let msg = format!(
                "no cgroup of pod {uid}: no directory pod{uid} or kubepods-…pod{}.slice up to {POD_SEARCH_DEPTH} levels below the kubepods* directories there (is the node's cgroupfs mounted, and `root` set to it?)",
                uid.replace('-', "_")
            );
            return Err(CollectorError::Other { what: searched, msg });
        }
    } else {
        let cgroup = match &config.path {
            Some(_) => String::new(),
            None => crate::procfs::read_to_string(&paths.proc("self/cgroup"))?,
        };
        for h in &hierarchies {
            if let Some(path) = config.path.as_deref().or_else(|| own_path(h, &cgroup)) {
                loc.add(h, h.dir_of(path));
            }
        }
    }
    if let Some(dir) = &loc.unified {
        let text = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        loc.unified_controllers = text.split_ascii_whitespace().map(str::to_owned).collect();
    }
    if loc.unified.is_none() && loc.v1.is_empty() {
        return Err(other(&source, "no cgroup hierarchy (cgroup2, or cgroup with cpu, cpuacct, memory, blkio or pids) for this cgroup".into()));
    }
    Ok(loc)
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

/// `cpu.max`: `quota period` in µs, or `max period`.
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_ascii_whitespace();
    let quota: u64 = it.next()?.parse().ok()?;
    let period: u64 = it.next()?.parse().ok()?;
    (period > 0).then(|| quota as f64 / period as f64)
}

/// v1 `memory.limit_in_bytes` reads the page-rounded `i64::MAX` (`9223372036854771712`) when
/// no limit is set; anything from 2⁶² up is taken as no limit.
const V1_NO_MEMORY_LIMIT: u64 = 1 << 62;

/// v1 block I/O files, best first.
const V1_IO_BYTES: [&str; 5] = [
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes",
    "blkio.io_service_bytes_recursive",
    "blkio.io_service_bytes",
    "blkio.bfq.io_service_bytes_recursive",
];
const V1_IO_OPS: [&str; 5] = [
    "blkio.throttle.io_serviced_recursive",
    "blkio.throttle.io_serviced",
    "blkio.io_serviced_recursive",
    "blkio.io_serviced",
    "blkio.bfq.io_serviced_recursive",
];

#[allow(clippy::large_enum_variant)] // one per collector, made once
enum CpuFiles {
    None,
    V2 { stat: CgFile, max: CgFile },
    V1 { usage_user: CgFile, usage_sys: CgFile, acct_stat: CgFile, usage: CgFile, quota: CgFile, period: CgFile, stat: CgFile },
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

/// The open files of the located cgroup.
struct Files {
    /// The directories read, checked when a read fails.
    dirs: Vec<PathBuf>,
    cpu: CpuFiles,
    memory: MemoryFiles,
    io: IoFiles,
    pids: Option<(CgFile, CgFile)>,
}

impl Files {
    fn open(loc: &Location) -> Files {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut used = |d| note_dir(&mut dirs, d);
        let cpu = if let Some(d) = used(loc.v2_with("cpu")) {
            CpuFiles::V2 { stat: CgFile::new(Some(d), "cpu.stat"), max: CgFile::new(Some(d), "cpu.max") }
        } else if loc.v1("cpu").is_some() || loc.v1("cpuacct").is_some() {
            let (acct, cpu) = (used(loc.v1("cpuacct")), used(loc.v1("cpu")));
            CpuFiles::V1 {
                usage_user: CgFile::new(acct, "cpuacct.usage_user"),
                usage_sys: CgFile::new(acct, "cpuacct.usage_sys"),
                acct_stat: CgFile::new(acct, "cpuacct.stat"),
                usage: CgFile::new(acct, "cpuacct.usage"),
                quota: CgFile::new(cpu, "cpu.cfs_quota_us"),
                period: CgFile::new(cpu, "cpu.cfs_period_us"),
                stat: CgFile::new(cpu, "cpu.stat"),
            }
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
            IoFiles::V1 { bytes: list(&V1_IO_BYTES), ops: list(&V1_IO_OPS) }
        } else {
            IoFiles::None
        };
        let pids = used(loc.v2_with("pids").or(loc.v1("pids"))).map(|d| (CgFile::new(Some(d), "pids.current"), CgFile::new(Some(d), "pids.max")));
        Files { dirs, cpu, memory, io, pids }
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

/// The text of the first file of `list` that exists.
fn first_present(list: &mut [CgFile]) -> Result<Option<&str>, ProcError> {
    for f in list.iter_mut() {
        if let Some(text) = f.read()? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The attributes of one block device, built once: `[read, write]`.
#[derive(Debug)]
struct DeviceAttrs {
    device: String,
    dirs: [Vec<KeyValue>; 2],
}

impl DeviceAttrs {
    fn new(device: &str) -> Self {
        let dirs = ["read", "write"].map(|d| vec![KeyValue::new("system.device", std::sync::Arc::<str>::from(device)), KeyValue::new("disk.io.direction", d)]);
        DeviceAttrs { device: device.to_owned(), dirs }
    }
}

/// One device's I/O: `[read, write]` bytes and operations.
#[derive(Debug)]
struct DeviceIo {
    attrs: Arc<DeviceAttrs>,
    bytes: [Option<u64>; 2],
    ops: [Option<u64>; 2],
}

/// What one tick read; `None` is "not reported".
#[derive(Debug, Default)]
struct Snapshot {
    cpu_user: Option<f64>,
    cpu_system: Option<f64>,
    /// Total CPU seconds (for the usage rate; not reported itself).
    cpu_total: Option<f64>,
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
    /// Empties it, keeping the I/O list's allocation.
    fn clear(&mut self) {
        let mut io = std::mem::take(&mut self.io);
        io.clear();
        *self = Snapshot { io, ..Snapshot::default() };
    }
}

/// Reads one cgroup's files every tick, keeping them open.
pub struct CgroupCollector {
    paths: HostPaths,
    config: CgroupConfig,
    /// With `scope: pod`, the pod's UID, resolved when made.
    pod_uid: Option<String>,
    /// `None` until the cgroup is found, and again after its directory went away.
    files: Option<Files>,
    snap: Arc<SnapshotCell<Snapshot>>,
    devices: HashMap<String, Arc<DeviceAttrs>>,
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
            snap: SnapshotCell::new(clock),
            devices: HashMap::new(),
            now: Box::new(move || start.elapsed()),
            prev: None,
            sources: super::sources::Sources::new("cgroup"),
        }
    }

    fn find(&mut self) -> Result<(), CollectorError> {
        let loc = locate(&self.paths, &self.config, self.pod_uid.as_deref())?;
        let files = Files::open(&loc);
        for d in &files.dirs {
            std::fs::read_dir(d).map_err(|e| other(d, format!("cannot read the cgroup directory: {e}")))?;
        }
        self.files = Some(files);
        self.prev = None;
        Ok(())
    }

    /// An error naming the first directory of the cgroup that is gone (the cgroup was removed),
    /// after which the cgroup is looked for again on the next refresh.
    fn check_dirs(&mut self) -> Result<(), CollectorError> {
        if let Some(gone) = self.files.as_ref().and_then(|f| f.dirs.iter().find(|d| !d.is_dir()).cloned()) {
            self.files = None;
            return Err(other(&gone, "the cgroup directory is gone (the cgroup was removed)".into()));
        }
        Ok(())
    }

    fn device(devices: &mut HashMap<String, Arc<DeviceAttrs>>, name: &str) -> Arc<DeviceAttrs> {
        match devices.get(name) {
            Some(a) => a.clone(),
            None => devices.entry(name.to_owned()).or_insert_with(|| Arc::new(DeviceAttrs::new(name))).clone(),
        }
    }

    /// Reads every controller's files; each controller (cpu, memory, io, pids) fails alone.
    /// An error only when every one failed.
    fn read(&mut self, s: &mut Snapshot) -> Result<(), CollectorError> {
        self.sources.begin();
        let Some(files) = self.files.as_mut() else { return Ok(()) };
        let r = read_cpu(&mut files.cpu, s);
        self.sources.check("cpu", r);
        let r = read_memory(&mut files.memory, s);
        self.sources.check("memory", r);
        let r = read_io(&mut files.io, &mut self.devices, s);
        self.sources.check("io", r);
        if let Some((current, max)) = &mut files.pids {
            let r = current.number().and_then(|c| Ok((c, max.number()?)));
            if let Some((c, m)) = self.sources.check("pids", r) {
                (s.pids, s.pids_limit) = (c, m);
            }
        }
        self.sources.end()
    }
}

/// `io.stat` (v2) or the `blkio` throttle/CFQ files (v1), by device.
fn read_io(io: &mut IoFiles, devices: &mut HashMap<String, Arc<DeviceAttrs>>, s: &mut Snapshot) -> Result<(), ProcError> {
    match io {
        IoFiles::None => {}
        IoFiles::V2 { stat } => {
            if let Some(text) = stat.read()? {
                for line in text.lines() {
                    let mut it = line.split_ascii_whitespace();
                    let Some(dev) = it.next() else { continue };
                    let mut d = DeviceIo { attrs: CgroupCollector::device(devices, dev), bytes: [None; 2], ops: [None; 2] };
                    for kv in it {
                        let Some((k, v)) = kv.split_once('=') else { continue };
                        let slot = match k {
                            "rbytes" => &mut d.bytes[0],
                            "wbytes" => &mut d.bytes[1],
                            "rios" => &mut d.ops[0],
                            "wios" => &mut d.ops[1],
                            _ => continue,
                        };
                        *slot = v.parse().ok();
                    }
                    s.io.push(d);
                }
            }
        }
        IoFiles::V1 { bytes, ops } => {
            for (list, is_bytes) in [(bytes, true), (ops, false)] {
                let Some(text) = first_present(list)? else { continue };
                // `254:0 Read 67112960`; the `Total` lines are skipped.
                for line in text.lines() {
                    let mut it = line.split_ascii_whitespace();
                    let (Some(dev), Some(op), Some(v)) = (it.next(), it.next(), it.next()) else { continue };
                    let i = match op {
                        "Read" => 0,
                        "Write" => 1,
                        _ => continue,
                    };
                    let Ok(v) = v.parse() else { continue };
                    let pos = match s.io.iter().position(|d| d.attrs.device == dev) {
                        Some(p) => p,
                        None => {
                            s.io.push(DeviceIo { attrs: CgroupCollector::device(devices, dev), bytes: [None; 2], ops: [None; 2] });
                            s.io.len() - 1
                        }
                    };
                    let d = &mut s.io[pos];
                    if is_bytes {
                        d.bytes[i] = Some(v);
                    } else {
                        d.ops[i] = Some(v);
                    }
                }
            }
        }
    }
    Ok(())
}

fn read_cpu(files: &mut CpuFiles, s: &mut Snapshot) -> Result<(), ProcError> {
    const US: f64 = 1e6;
    const NS: f64 = 1e9;
    match files {
        CpuFiles::None => {}
        CpuFiles::V2 { stat, max } => {
            if let Some(text) = stat.read()? {
                let (mut periods, mut throttled) = (None, None);
                for_each_pair(text, |k, v| match k {
                    "usage_usec" => s.cpu_total = Some(v as f64 / US),
                    "user_usec" => s.cpu_user = Some(v as f64 / US),
                    "system_usec" => s.cpu_system = Some(v as f64 / US),
                    "nr_periods" => periods = Some(v),
                    "nr_throttled" => throttled = Some(v),
                    "throttled_usec" => s.throttled_seconds = Some(v as f64 / US),
                    _ => {}
                });
                s.periods = periods.zip(throttled).map(|(p, t)| [p, t]);
            }
            s.cpu_limit = max.read()?.and_then(parse_cpu_max);
        }
        CpuFiles::V1 { usage_user, usage_sys, acct_stat, usage, quota, period, stat } => {
            match (usage_user.number()?, usage_sys.number()?) {
                (Some(u), Some(sy)) => (s.cpu_user, s.cpu_system) = (Some(u as f64 / NS), Some(sy as f64 / NS)),
                _ => {
                    if let Some(text) = acct_stat.read()? {
                        let hz = crate::procfs::stat::user_hz() as f64;
                        for_each_pair(text, |k, v| match k {
                            "user" => s.cpu_user = Some(v as f64 / hz),
                            "system" => s.cpu_system = Some(v as f64 / hz),
                            _ => {}
                        });
                    }
                }
            }
            s.cpu_total = usage.number()?.map(|ns| ns as f64 / NS);
            if let (Some(q), Some(p)) = (quota.number()?, period.number()?) {
                s.cpu_limit = (p > 0).then(|| q as f64 / p as f64);
            }
            if let Some(text) = stat.read()? {
                let (mut periods, mut throttled) = (None, None);
                for_each_pair(text, |k, v| match k {
                    "nr_periods" => periods = Some(v),
                    "nr_throttled" => throttled = Some(v),
                    "throttled_time" => s.throttled_seconds = Some(v as f64 / NS),
                    _ => {}
                });
                s.periods = periods.zip(throttled).map(|(p, t)| [p, t]);
            }
        }
    }
    Ok(())
}

fn read_memory(files: &mut MemoryFiles, s: &mut Snapshot) -> Result<(), ProcError> {
    let mut inactive_file = None;
    let (mut pgfault, mut pgmajfault) = (None, None);
    match files {
        MemoryFiles::None => return Ok(()),
        MemoryFiles::V2 { current, max, stat, events } => {
            s.memory_usage = current.number()?;
            s.memory_limit = max.number()?;
            if let Some(text) = stat.read()? {
                for_each_pair(text, |k, v| match k {
                    "anon" => s.rss = Some(v),
                    "inactive_file" => inactive_file = Some(v),
                    "pgfault" => pgfault = Some(v),
                    "pgmajfault" => pgmajfault = Some(v),
                    _ => {}
                });
            }
            if let Some(text) = events.read()? {
                for_each_pair(text, |k, v| {
                    if k == "oom_kill" {
                        s.oom_kills = Some(v);
                    }
                });
            }
        }
        MemoryFiles::V1 { usage, limit, stat, oom } => {
            s.memory_usage = usage.number()?;
            s.memory_limit = limit.number()?.filter(|&l| l < V1_NO_MEMORY_LIMIT);
            if let Some(text) = stat.read()? {
                // The `total_` (hierarchical) values win over this cgroup's own.
                let (mut rss, mut inactive, mut fault, mut major) = ([None; 2], [None; 2], [None; 2], [None; 2]);
                for_each_pair(text, |k, v| {
                    let (k, i) = match k.strip_prefix("total_") {
                        Some(k) => (k, 0),
                        None => (k, 1),
                    };
                    match k {
                        "rss" => rss[i] = Some(v),
                        "inactive_file" => inactive[i] = Some(v),
                        "pgfault" => fault[i] = Some(v),
                        "pgmajfault" => major[i] = Some(v),
                        _ => {}
                    }
                });
                s.rss = rss[0].or(rss[1]);
                inactive_file = inactive[0].or(inactive[1]);
                pgfault = fault[0].or(fault[1]);
                pgmajfault = major[0].or(major[1]);
            }
            if let Some(text) = oom.read()? {
                for_each_pair(text, |k, v| {
                    if k == "oom_kill" {
                        s.oom_kills = Some(v);
                    }
                });
            }
        }
    }
    s.working_set = s.memory_usage.zip(inactive_file).map(|(u, i)| u.saturating_sub(i));
    s.available = s.memory_limit.zip(s.working_set).map(|(l, w)| l.saturating_sub(w));
    s.faults = pgfault.zip(pgmajfault).map(|(all, major)| [major, all.saturating_sub(major)]);
    Ok(())
}

type Snap = Arc<SnapshotCell<Snapshot>>;

fn gauge(meter: &Meter, snap: &Snap, name: &'static str, unit: &'static str, description: &'static str, get: fn(&Snapshot) -> Option<f64>) {
    let snap = snap.clone();
    meter
        .f64_observable_gauge(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(move |obs| {
            if let Some(v) = snap.with(get).flatten() {
                obs.observe(v, &[]);
            }
        })
        .build();
}

fn up_down(meter: &Meter, snap: &Snap, name: &'static str, unit: &'static str, description: &'static str, get: fn(&Snapshot) -> Option<u64>) {
    let snap = snap.clone();
    meter
        .i64_observable_up_down_counter(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(move |obs| {
            if let Some(v) = snap.with(get).flatten() {
                obs.observe(v.min(i64::MAX as u64) as i64, &[]);
            }
        })
        .build();
}

// The cgroup collector's metrics as data, for the catalog (`metricsd --list-metrics`). Its
// `register` below does not use them yet (the lead converts it once cgroup.rs is split): a
// test in collectors/catalog.rs checks that these match what it registers.
const IN_CONTAINER: ByDefault = ByDefault::When("in a container");
const fn container<T>(m: Metric<T>, attributes: &'static [&'static str], source: &'static str) -> Metric<T> {
    m.attributes(attributes).source(source).by_default(IN_CONTAINER)
}
const CPU_TIME: Metric<f64> = container(
    Metric::f64_counter("container.cpu.time", "s", "CPU time the container's processes spent in user and kernel mode"),
    &["cpu.mode"],
    "v2 cpu.stat user_usec, system_usec; v1 cpuacct.usage_user/_sys (ns), else cpuacct.stat ÷ USER_HZ",
);
const CPU_USAGE: Metric<f64> = container(
    Metric::f64_gauge("container.cpu.usage", "{cpu}", "CPUs the container used on average since the last collection"),
    &[],
    "Δ v2 cpu.stat usage_usec (v1 cpuacct.usage) ÷ Δ wall time (none on the first tick)",
);
const CPU_LIMIT: Metric<f64> = container(
    Metric::f64_gauge("container.cpu.limit", "{cpu}", "The container's CPU quota in CPUs (quota / period); absent when unlimited"),
    &[],
    "v2 cpu.max quota ÷ period; v1 cpu.cfs_quota_us ÷ cpu.cfs_period_us",
)
.agent_name();
const CPU_THROTTLING_PERIODS: Metric<u64> = container(
    Metric::u64_counter(
        "container.cpu.throttling.periods",
        "{period}",
        "CPU quota enforcement periods that elapsed (total) and in which the container was throttled",
    ),
    &["cpu.throttling.state"],
    "cpu.stat nr_periods, nr_throttled (v2 and v1)",
)
.agent_name();
const CPU_THROTTLING_TIME: Metric<f64> = container(
    Metric::f64_counter("container.cpu.throttling.time", "s", "Time the container's processes were throttled by the CPU quota"),
    &[],
    "v2 cpu.stat throttled_usec; v1 cpu.stat throttled_time (ns)",
)
.agent_name();
const MEMORY_USAGE: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.usage", "By", "Memory charged to the container, page cache included"),
    &[],
    "v2 memory.current; v1 memory.usage_in_bytes",
);
const MEMORY_LIMIT: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.limit", "By", "The container's memory limit; absent when unlimited"),
    &[],
    "v2 memory.max; v1 memory.limit_in_bytes",
)
.agent_name();
const MEMORY_WORKING_SET: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.working_set", "By", "Memory usage less inactive file cache (the kubelet's working set)"),
    &[],
    "usage − memory.stat inactive_file (v1 total_inactive_file)",
);
const MEMORY_RSS: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.rss", "By", "Anonymous memory of the container (heap, stacks)"),
    &[],
    "v2 memory.stat anon; v1 memory.stat total_rss",
);
const MEMORY_AVAILABLE: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.available", "By", "Memory limit less working set; absent when unlimited"),
    &[],
    "limit − working set",
);
const MEMORY_OOM_KILLS: Metric<u64> = container(
    Metric::u64_counter("container.memory.oom_kills", "{kill}", "Processes of the container killed by the OOM killer"),
    &[],
    "v2 memory.events oom_kill; v1 memory.oom_control oom_kill",
)
.agent_name();
const PAGING_FAULTS: Metric<u64> = container(
    Metric::u64_counter("container.paging.faults", "{fault}", "Page faults of the container's processes, major (needing I/O) and minor"),
    &["system.paging.fault.type"],
    "memory.stat pgmajfault, pgfault − pgmajfault (v1 total_pgmajfault, total_pgfault)",
);
const DISK_IO: Metric<u64> = container(
    Metric::u64_counter("container.disk.io", "By", "Bytes the container read from and wrote to each block device"),
    &["system.device", "disk.io.direction"],
    "v2 io.stat rbytes, wbytes; v1 blkio.throttle.io_service_bytes_recursive",
);
const DISK_OPERATIONS: Metric<u64> = container(
    Metric::u64_counter("container.disk.operations", "{operation}", "Read and write operations of the container on each block device"),
    &["system.device", "disk.io.direction"],
    "v2 io.stat rios, wios; v1 blkio.throttle.io_serviced_recursive",
)
.agent_name();
const PIDS_COUNT: Metric<i64> =
    container(Metric::i64_up_down_counter("container.pids.count", "{process}", "Processes and threads in the container"), &[], "pids.current").agent_name();
const PIDS_LIMIT: Metric<i64> = container(
    Metric::i64_up_down_counter("container.pids.limit", "{process}", "The container's limit on processes and threads; absent when unlimited"),
    &[],
    "pids.max",
)
.agent_name();

/// The cgroup collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    CPU_TIME.spec(),
    CPU_USAGE.spec(),
    CPU_LIMIT.spec(),
    CPU_THROTTLING_PERIODS.spec(),
    CPU_THROTTLING_TIME.spec(),
    MEMORY_USAGE.spec(),
    MEMORY_LIMIT.spec(),
    MEMORY_WORKING_SET.spec(),
    MEMORY_RSS.spec(),
    MEMORY_AVAILABLE.spec(),
    MEMORY_OOM_KILLS.spec(),
    PAGING_FAULTS.spec(),
    DISK_IO.spec(),
    DISK_OPERATIONS.spec(),
    PIDS_COUNT.spec(),
    PIDS_LIMIT.spec(),
];

impl Collector for CgroupCollector {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        let modes = ["user", "system"].map(|m| [KeyValue::new("cpu.mode", m)]);
        meter
            .f64_observable_counter("container.cpu.time")
            .with_unit("s")
            .with_description("CPU time the container's processes spent in user and kernel mode")
            .with_callback(move |obs| {
                snap.with(|s| {
                    for (v, a) in [s.cpu_user, s.cpu_system].iter().zip(&modes) {
                        if let Some(v) = v {
                            obs.observe(*v, a);
                        }
                    }
                });
            })
            .build();
        gauge(meter, &self.snap, "container.cpu.usage", "{cpu}", "CPUs the container used on average since the last collection", |s| s.cpu_usage);
        gauge(meter, &self.snap, "container.cpu.limit", "{cpu}", "The container's CPU quota in CPUs (quota / period); absent when unlimited", |s| s.cpu_limit);
        let snap = self.snap.clone();
        let states = ["total", "throttled"].map(|t| [KeyValue::new("cpu.throttling.state", t)]);
        meter
            .u64_observable_counter("container.cpu.throttling.periods")
            .with_unit("{period}")
            .with_description("CPU quota enforcement periods that elapsed (total) and in which the container was throttled")
            .with_callback(move |obs| {
                snap.with(|s| {
                    if let Some(p) = s.periods {
                        obs.observe(p[0], &states[0]);
                        obs.observe(p[1], &states[1]);
                    }
                });
            })
            .build();
        let snap = self.snap.clone();
        meter
            .f64_observable_counter("container.cpu.throttling.time")
            .with_unit("s")
            .with_description("Time the container's processes were throttled by the CPU quota")
            .with_callback(move |obs| {
                if let Some(v) = snap.with(|s| s.throttled_seconds).flatten() {
                    obs.observe(v, &[]);
                }
            })
            .build();
        up_down(meter, &self.snap, "container.memory.usage", "By", "Memory charged to the container, page cache included", |s| s.memory_usage);
        up_down(meter, &self.snap, "container.memory.limit", "By", "The container's memory limit; absent when unlimited", |s| s.memory_limit);
        up_down(meter, &self.snap, "container.memory.working_set", "By", "Memory usage less inactive file cache (the kubelet's working set)", |s| {
            s.working_set
        });
        up_down(meter, &self.snap, "container.memory.rss", "By", "Anonymous memory of the container (heap, stacks)", |s| s.rss);
        up_down(meter, &self.snap, "container.memory.available", "By", "Memory limit less working set; absent when unlimited", |s| s.available);
        let snap = self.snap.clone();
        meter
            .u64_observable_counter("container.memory.oom_kills")
            .with_unit("{kill}")
            .with_description("Processes of the container killed by the OOM killer")
            .with_callback(move |obs| {
                if let Some(v) = snap.with(|s| s.oom_kills).flatten() {
                    obs.observe(v, &[]);
                }
            })
            .build();
        let snap = self.snap.clone();
        let types = ["major", "minor"].map(|t| [KeyValue::new("system.paging.fault.type", t)]);
        meter
            .u64_observable_counter("container.paging.faults")
            .with_unit("{fault}")
            .with_description("Page faults of the container's processes, major (needing I/O) and minor")
            .with_callback(move |obs| {
                snap.with(|s| {
                    if let Some(f) = s.faults {
                        obs.observe(f[0], &types[0]);
                        obs.observe(f[1], &types[1]);
                    }
                });
            })
            .build();
        for (name, unit, description, bytes) in [
            ("container.disk.io", "By", "Bytes the container read from and wrote to each block device", true),
            ("container.disk.operations", "{operation}", "Read and write operations of the container on each block device", false),
        ] {
            let snap = self.snap.clone();
            meter
                .u64_observable_counter(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |obs| {
                    snap.with(|s| {
                        for d in &s.io {
                            let values = if bytes { &d.bytes } else { &d.ops };
                            for (v, a) in values.iter().zip(&d.attrs.dirs) {
                                if let Some(v) = v {
                                    obs.observe(*v, a);
                                }
                            }
                        }
                    });
                })
                .build();
        }
        up_down(meter, &self.snap, "container.pids.count", "{process}", "Processes and threads in the container", |s| s.pids);
        up_down(meter, &self.snap, "container.pids.limit", "{process}", "The container's limit on processes and threads; absent when unlimited", |s| {
            s.pids_limit
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if self.files.is_none() {
            self.find()?;
        }
        // Files kept open in a removed cgroup fail to read, but not every file is read every
        // tick; one stat per directory tells for sure.
        self.check_dirs()?;
        let mut s = self.snap.take().unwrap_or_default();
        s.clear();
        let now = (self.now)();
        let read = self.read(&mut s);
        if read.is_err() || self.sources.failing().next().is_some() {
            // Removed while being read?
            self.check_dirs()?;
        }
        read?;
        if let Some(total) = s.cpu_total {
            if let Some((then, before)) = self.prev {
                let dt = now.saturating_sub(then).as_secs_f64();
                if dt > 0.0 && total >= before {
                    s.cpu_usage = Some((total - before) / dt);
                }
            }
            self.prev = Some((now, total));
        }
        self.snap.set(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, fixture_copy, kind, of, value, write, Harness, Kind, Point};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The v2 Kubernetes container of `tests/fixtures/cgroup/v2-k8s-container`, below `sys/fs/cgroup/`.
    const K8S: &str = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4df85153_51ae_46d3_8e51_2253ccd12173.slice/cri-containerd-c9482dd7037cd141dfd3dd25b909ea6da38f0f1e7c74e8642b131e92f74626ce.scope";
    /// The captured v1 memory cgroup of `v1-hybrid` (nested in the capturing shell's own).
    const V1_MEMORY: &str = "sys/fs/cgroup/memory/process_api/8b5719f0e97bc94c3a3aa952264dc347/metricsd-capture";

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup").join(name)
    }

    fn paths(name: &str) -> HostPaths {
        HostPaths::under(fixture(name))
    }

    /// A writable copy of a fixture (`fixture_copy` takes paths below `tests/fixtures/proc`).
    fn copy(name: &str) -> (tempfile::TempDir, HostPaths) {
        fixture_copy(&format!("../cgroup/{name}"))
    }

    fn collect(paths: &HostPaths, config: &CgroupConfig) -> Vec<Point> {
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(paths, &clock, config);
        collect_once(&clock, &mut c)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    fn io(p: &[Point], metric: &str, dev: &str, dir: &str) -> Option<f64> {
        value(p, metric, &[("system.device", dev), ("disk.io.direction", dir)])
    }

    #[test]
    fn reports_every_metric_of_a_kubernetes_container_on_cgroup_v2() {
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(&paths("v2-k8s-container"), &clock, &CgroupConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // cpu.stat: user_usec 2514875, system_usec 966391.
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.514875));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 0.966391));
        assert_eq!(kind(&p, "container.cpu.time"), Some(Kind::Counter));
        assert_eq!(h.unit("container.cpu.time"), Some("s"));
        // cpu.max "150000 100000": 1.5 CPUs.
        assert!(close(value(&p, "container.cpu.limit", &[]), 1.5));
        assert_eq!(kind(&p, "container.cpu.limit"), Some(Kind::Gauge));
        assert_eq!(h.unit("container.cpu.limit"), Some("{cpu}"));
        // nr_periods 1205, nr_throttled 37, throttled_usec 1825490.
        assert_eq!(value(&p, "container.cpu.throttling.periods", &[("cpu.throttling.state", "total")]), Some(1205.0));
        assert_eq!(value(&p, "container.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(37.0));
        assert_eq!(h.unit("container.cpu.throttling.periods"), Some("{period}"));
        assert!(close(value(&p, "container.cpu.throttling.time", &[]), 1.82549));
        // No usage rate from one refresh.
        assert!(of(&p, "container.cpu.usage").is_empty());
        // memory.current 157286400 (150 MiB), memory.max 536870912 (512 MiB).
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(157286400.0));
        assert_eq!(kind(&p, "container.memory.usage"), Some(Kind::UpDownCounter));
        assert_eq!(h.unit("container.memory.usage"), Some("By"));
        assert_eq!(value(&p, "container.memory.limit", &[]), Some(536870912.0));
        // Working set: 157286400 − inactive_file 31457280 = 125829120 (120 MiB).
        assert_eq!(value(&p, "container.memory.working_set", &[]), Some(125829120.0));
        // Available: 536870912 − 125829120 = 411041792.
        assert_eq!(value(&p, "container.memory.available", &[]), Some(411041792.0));
        // memory.stat anon 104857600.
        assert_eq!(value(&p, "container.memory.rss", &[]), Some(104857600.0));
        // memory.events oom_kill 1.
        assert_eq!(value(&p, "container.memory.oom_kills", &[]), Some(1.0));
        assert_eq!(kind(&p, "container.memory.oom_kills"), Some(Kind::Counter));
        assert_eq!(h.unit("container.memory.oom_kills"), Some("{kill}"));
        // pgmajfault 121; minor: pgfault 248910 − 121 = 248789.
        assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "major")]), Some(121.0));
        assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "minor")]), Some(248789.0));
        // io.stat, two devices; 8:0's iocost keys (cost.usage=…) are ignored.
        assert_eq!(io(&p, "container.disk.io", "8:0", "read"), Some(1459200.0));
        assert_eq!(io(&p, "container.disk.io", "8:0", "write"), Some(314773504.0));
        assert_eq!(io(&p, "container.disk.operations", "8:0", "read"), Some(192.0));
        assert_eq!(io(&p, "container.disk.operations", "8:0", "write"), Some(353.0));
        assert_eq!(io(&p, "container.disk.io", "253:0", "read"), Some(4096.0));
        assert_eq!(io(&p, "container.disk.io", "253:0", "write"), Some(1048576.0));
        assert_eq!(io(&p, "container.disk.operations", "253:0", "read"), Some(1.0));
        assert_eq!(io(&p, "container.disk.operations", "253:0", "write"), Some(256.0));
        assert_eq!(of(&p, "container.disk.io").len(), 4);
        assert_eq!(h.unit("container.disk.io"), Some("By"));
        assert_eq!(h.unit("container.disk.operations"), Some("{operation}"));
        // pids.current 7, pids.max 1024.
        assert_eq!(value(&p, "container.pids.count", &[]), Some(7.0));
        assert_eq!(value(&p, "container.pids.limit", &[]), Some(1024.0));
        assert_eq!(h.unit("container.pids.count"), Some("{process}"));
        // 2 + 1 + 2 + 1 + 5 + 1 + 2 + 4 + 4 + 2 points, nothing else.
        assert_eq!(p.len(), 24, "{p:?}");
    }

    #[test]
    fn reports_the_mount_root_as_the_container_in_a_private_cgroup_namespace() {
        let paths = paths("v2-namespaced");
        assert_eq!(locate(&paths, &CgroupConfig::default(), None).unwrap().unified, Some(paths.sys("fs/cgroup")));
        let p = collect(&paths, &CgroupConfig::default());
        // user_usec 700000000, system_usec 212345678.
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 700.0));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 212.345678));
        assert_eq!(value(&p, "container.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(0.0));
        // memory.current 73400320 − inactive_file 16777216 = 56623104.
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(73400320.0));
        assert_eq!(value(&p, "container.memory.working_set", &[]), Some(56623104.0));
        assert_eq!(value(&p, "container.memory.rss", &[]), Some(48234496.0));
        // pgfault 51234 − pgmajfault 34 = 51200 minor.
        assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "minor")]), Some(51200.0));
        assert_eq!(value(&p, "container.memory.oom_kills", &[]), Some(0.0));
        assert_eq!(io(&p, "container.disk.io", "259:0", "read"), Some(20480000.0));
        assert_eq!(io(&p, "container.disk.operations", "259:0", "write"), Some(100.0));
        assert_eq!(value(&p, "container.pids.count", &[]), Some(3.0));
        // cpu.max "max 100000", memory.max and pids.max "max": no limits, no available.
        for m in ["container.cpu.limit", "container.memory.limit", "container.memory.available", "container.pids.limit"] {
            assert!(of(&p, m).is_empty(), "{m}");
        }
    }

    #[test]
    fn reads_the_captured_v1_hybrid_tree_from_the_v1_controllers() {
        let paths = paths("v1-hybrid");
        let loc = locate(&paths, &CgroupConfig::default(), None).unwrap();
        // v2 at /sys/fs/cgroup/unified has no controllers on this host: everything comes from v1,
        // each controller at its own path (memory nested in the capturing shell's cgroup).
        assert_eq!(loc.unified, Some(paths.sys("fs/cgroup/unified/metricsd-capture")));
        assert!(loc.unified_controllers.is_empty());
        assert_eq!(loc.v1("cpu"), Some(paths.sys("fs/cgroup/cpu/metricsd-capture").as_path()));
        assert_eq!(loc.v1("memory"), Some(paths.root(V1_MEMORY).as_path()));
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // cpuacct.usage_user 2022564416 ns, cpuacct.usage_sys 483929808 ns.
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.022564416));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 0.483929808));
        // cpu.cfs_quota_us 50000 / cpu.cfs_period_us 100000.
        assert!(close(value(&p, "container.cpu.limit", &[]), 0.5));
        // cpu.stat: nr_periods 45, nr_throttled 42, throttled_time 5051528560 ns.
        assert_eq!(value(&p, "container.cpu.throttling.periods", &[("cpu.throttling.state", "total")]), Some(45.0));
        assert_eq!(value(&p, "container.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(42.0));
        assert!(close(value(&p, "container.cpu.throttling.time", &[]), 5.05152856));
        // memory.usage_in_bytes 162500608, memory.limit_in_bytes 268435456 (256M).
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(162500608.0));
        assert_eq!(value(&p, "container.memory.limit", &[]), Some(268435456.0));
        // 162500608 − total_inactive_file 50581504 = 111919104.
        assert_eq!(value(&p, "container.memory.working_set", &[]), Some(111919104.0));
        // 268435456 − 111919104 = 156516352.
        assert_eq!(value(&p, "container.memory.available", &[]), Some(156516352.0));
        assert_eq!(value(&p, "container.memory.rss", &[]), Some(108617728.0));
        // memory.oom_control oom_kill 0.
        assert_eq!(value(&p, "container.memory.oom_kills", &[]), Some(0.0));
        // total_pgmajfault 0; total_pgfault 59666 − 0.
        assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "major")]), Some(0.0));
        assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "minor")]), Some(59666.0));
        // blkio.throttle.io_service_bytes_recursive: 254:0 Read 67112960, Write 67108864 (64 MiB
        // written and read back with O_DIRECT); io_serviced_recursive: Read 65, Write 64.
        assert_eq!(io(&p, "container.disk.io", "254:0", "read"), Some(67112960.0));
        assert_eq!(io(&p, "container.disk.io", "254:0", "write"), Some(67108864.0));
        assert_eq!(io(&p, "container.disk.operations", "254:0", "read"), Some(65.0));
        assert_eq!(io(&p, "container.disk.operations", "254:0", "write"), Some(64.0));
        assert_eq!(of(&p, "container.disk.io").len(), 2, "the Total lines are skipped");
        // pids.current 4, pids.max 64.
        assert_eq!(value(&p, "container.pids.count", &[]), Some(4.0));
        assert_eq!(value(&p, "container.pids.limit", &[]), Some(64.0));
        assert!(of(&p, "container.cpu.usage").is_empty());
        // 2 + 1 + 2 + 1 + 5 + 1 + 2 + 2 + 2 + 2 points (one device), nothing else.
        assert_eq!(p.len(), 20, "{p:?}");
    }

    #[test]
    fn v1_falls_back_to_cpuacct_stat_ticks_and_to_the_non_recursive_blkio_files() {
        let (dir, paths) = copy("v1-hybrid");
        let acct = dir.path().join("sys/fs/cgroup/cpuacct/metricsd-capture");
        std::fs::remove_file(acct.join("cpuacct.usage_user")).unwrap();
        std::fs::remove_file(acct.join("cpuacct.usage_sys")).unwrap();
        let blkio = dir.path().join("sys/fs/cgroup/blkio/metricsd-capture");
        std::fs::remove_file(blkio.join("blkio.throttle.io_service_bytes_recursive")).unwrap();
        write(&dir, "sys/fs/cgroup/blkio/metricsd-capture/blkio.throttle.io_service_bytes", "8:16 Read 4096\n8:16 Write 8192\n8:16 Total 12288\nTotal 12288\n");
        let p = collect(&paths, &CgroupConfig::default());
        // cpuacct.stat: user 196, system 45 ticks of USER_HZ (100).
        let hz = crate::procfs::stat::user_hz() as f64;
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 196.0 / hz));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 45.0 / hz));
        assert_eq!(io(&p, "container.disk.io", "8:16", "read"), Some(4096.0));
        assert_eq!(io(&p, "container.disk.io", "8:16", "write"), Some(8192.0));
        // Operations still come from io_serviced_recursive (254:0), bytes from the other file.
        assert_eq!(io(&p, "container.disk.operations", "254:0", "read"), Some(65.0));
        assert_eq!(io(&p, "container.disk.io", "254:0", "read"), None);
    }

    #[test]
    fn unlimited_limits_are_not_reported() {
        let (dir, paths) = copy("v1-hybrid");
        write(&dir, "sys/fs/cgroup/cpu/metricsd-capture/cpu.cfs_quota_us", "-1\n");
        write(&dir, &format!("{V1_MEMORY}/memory.limit_in_bytes"), "9223372036854771712\n");
        write(&dir, "sys/fs/cgroup/pids/metricsd-capture/pids.max", "max\n");
        let p = collect(&paths, &CgroupConfig::default());
        for m in ["container.cpu.limit", "container.memory.limit", "container.memory.available", "container.pids.limit"] {
            assert!(of(&p, m).is_empty(), "{m}");
        }
        assert_eq!(value(&p, "container.memory.working_set", &[]), Some(111919104.0));
        assert_eq!(value(&p, "container.pids.count", &[]), Some(4.0));

        let (dir, paths) = copy("v2-k8s-container");
        for (f, text) in [("cpu.max", "max 100000\n"), ("memory.max", "max\n"), ("pids.max", "max\n")] {
            write(&dir, &format!("sys/fs/cgroup/{K8S}/{f}"), text);
        }
        let p = collect(&paths, &CgroupConfig::default());
        for m in ["container.cpu.limit", "container.memory.limit", "container.memory.available", "container.pids.limit"] {
            assert!(of(&p, m).is_empty(), "{m}");
        }
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(157286400.0));
    }

    #[test]
    fn cpu_usage_is_absent_on_the_first_refresh_and_the_usage_rate_from_the_second() {
        let (dir, paths) = copy("v2-k8s-container");
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
        let ms = Arc::new(AtomicU64::new(5_000));
        let t = ms.clone();
        c.now = Box::new(move || Duration::from_millis(t.load(Ordering::SeqCst)));
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert!(of(&p, "container.cpu.usage").is_empty());
        // 10 s later usage_usec went from 3481266 to 10981266: 7.5 CPU-seconds in 10 s, 0.75 CPUs.
        ms.store(15_000, Ordering::SeqCst);
        let stat = "usage_usec 10981266\nuser_usec 8014875\nsystem_usec 2966391\nnr_periods 1305\nnr_throttled 40\nthrottled_usec 1925490\n";
        write(&dir, &format!("sys/fs/cgroup/{K8S}/cpu.stat"), stat);
        let p = h.tick(&mut c).unwrap();
        assert!(close(value(&p, "container.cpu.usage", &[]), 0.75));
        assert_eq!(kind(&p, "container.cpu.usage"), Some(Kind::Gauge));
        assert_eq!(h.unit("container.cpu.usage"), Some("{cpu}"));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 8.014875));
        // 2 s later, +1 CPU-second: 0.5 CPUs.
        ms.store(17_000, Ordering::SeqCst);
        write(&dir, &format!("sys/fs/cgroup/{K8S}/cpu.stat"), "usage_usec 11981266\nuser_usec 8514875\nsystem_usec 3466391\n");
        let p = h.tick(&mut c).unwrap();
        assert!(close(value(&p, "container.cpu.usage", &[]), 0.5));
        // The throttling keys went away (cpu controller disabled): their metrics with them.
        assert!(of(&p, "container.cpu.throttling.periods").is_empty());
        // No time passed: no rate.
        let p = h.tick(&mut c).unwrap();
        assert!(of(&p, "container.cpu.usage").is_empty());
    }

    #[test]
    fn a_broken_controller_file_leaves_out_only_that_controllers_metrics() {
        let (dir, paths) = copy("v2-k8s-container");
        write(&dir, &format!("sys/fs/cgroup/{K8S}/memory.current"), "lots\n");
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).expect("cpu, io and pids were read");
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.514875));
        assert!(!of(&p, "container.pids.count").is_empty());
        assert_eq!(value(&p, "container.memory.usage", &[]), None);
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["memory"]);
    }

    #[test]
    fn missing_controller_files_leave_their_metrics_absent_without_an_error() {
        let (dir, paths) = copy("v2-k8s-container");
        let cg = dir.path().join("sys/fs/cgroup").join(K8S);
        for f in ["io.stat", "memory.events", "memory.stat", "pids.current", "pids.max", "cpu.max"] {
            std::fs::remove_file(cg.join(f)).unwrap();
        }
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        for _ in 0..2 {
            let p = h.tick(&mut c).unwrap();
            for m in [
                "container.disk.io",
                "container.disk.operations",
                "container.memory.oom_kills",
                "container.memory.working_set",
                "container.memory.rss",
                "container.memory.available",
                "container.paging.faults",
                "container.pids.count",
                "container.pids.limit",
                "container.cpu.limit",
            ] {
                assert!(of(&p, m).is_empty(), "{m}");
            }
            assert_eq!(value(&p, "container.memory.usage", &[]), Some(157286400.0));
            assert_eq!(value(&p, "container.memory.limit", &[]), Some(536870912.0));
            assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.514875));
        }
        // A file learned missing is not looked for again.
        write(&dir, &format!("sys/fs/cgroup/{K8S}/pids.current"), "5\n");
        assert!(of(&h.tick(&mut c).unwrap(), "container.pids.count").is_empty());
    }

    #[test]
    fn a_missing_cgroup_directory_is_an_error_naming_its_path() {
        let paths = paths("v2-k8s-container");
        let config = CgroupConfig { path: Some("/kubepods.slice/no-such.scope".into()), ..CgroupConfig::default() };
        let clock = TickClock::default();
        let mut c = CgroupCollector::new(&paths, &clock, &config);
        let mut h = Harness::new(&clock, &mut c);
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains(&paths.sys("fs/cgroup/kubepods.slice/no-such.scope").display().to_string()), "{e}");

        // A cgroup removed while being read: an error naming it, then found again once back.
        let (dir, paths) = copy("v2-k8s-container");
        let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        let cg = dir.path().join("sys/fs/cgroup").join(K8S);
        let aside = dir.path().join("aside");
        std::fs::rename(&cg, &aside).unwrap();
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains(&*cg.to_string_lossy()), "{e}");
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains(&*cg.to_string_lossy()), "{e}");
        std::fs::rename(&aside, &cg).unwrap();
        assert_eq!(value(&h.tick(&mut c).unwrap(), "container.pids.count", &[]), Some(7.0));
    }

    #[test]
    fn path_and_root_point_at_another_cgroup() {
        // `path` from the hierarchy's root, with the mounts of PROC/self/mountinfo.
        let (dir, paths) = copy("v2-namespaced");
        write(&dir, "sys/fs/cgroup/other.scope/cgroup.controllers", "memory pids\n");
        write(&dir, "sys/fs/cgroup/other.scope/memory.current", "4096\n");
        write(&dir, "sys/fs/cgroup/other.scope/pids.current", "1\n");
        let config = CgroupConfig { path: Some("/other.scope".into()), ..CgroupConfig::default() };
        assert!(config.is_enabled(&paths));
        let p = collect(&paths, &config);
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(4096.0));
        assert_eq!(value(&p, "container.pids.count", &[]), Some(1.0));
        assert!(of(&p, "container.cpu.time").is_empty(), "no cpu.stat in other.scope");

        // `root`: a directory of v1 hierarchies (and `unified/`), here the captured tree; the
        // agent's own paths still come from PROC/self/cgroup.
        let paths = self::paths("v1-hybrid");
        let config = CgroupConfig { root: Some(fixture("v1-hybrid/sys/fs/cgroup")), ..CgroupConfig::default() };
        let loc = locate(&paths, &config, None).unwrap();
        assert_eq!(loc.unified, Some(paths.sys("fs/cgroup/unified/metricsd-capture")));
        assert_eq!(loc.v1("pids"), Some(paths.sys("fs/cgroup/pids/metricsd-capture").as_path()));
        assert_eq!(value(&collect(&paths, &config), "container.memory.usage", &[]), Some(162500608.0));

        // `root` at a cgroup2 mount, with `path`.
        let paths = self::paths("v2-k8s-container");
        let config = CgroupConfig { root: Some(paths.sys("fs/cgroup")), path: Some(format!("/{K8S}")), ..CgroupConfig::default() };
        assert_eq!(value(&collect(&paths, &config), "container.pids.count", &[]), Some(7.0));
    }

    #[test]
    fn strips_the_mount_root_of_a_bind_mounted_cgroup() {
        // runc without a cgroup namespace bind-mounts the container's own cgroup:
        // `… /docker/<id> /sys/fs/cgroup/memory … - cgroup cgroup rw,memory` and 4:memory:/docker/<id>.
        let h = Hierarchy { v2: false, controllers: "rw,memory".into(), dir: "/sys/fs/cgroup/memory".into(), root: "/docker/abc".into() };
        assert_eq!(h.dir_of("/docker/abc"), PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(h.dir_of("/docker/abc/child"), PathBuf::from("/sys/fs/cgroup/memory/child"));
        // Not below the mounted subtree (another container's `abcdef`): taken from the mount point.
        assert_eq!(h.dir_of("/docker/abcdef"), PathBuf::from("/sys/fs/cgroup/memory/docker/abcdef"));
        let root = Hierarchy { root: "/".into(), ..h };
        assert_eq!(root.dir_of("/"), PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(root.dir_of("/a/b"), PathBuf::from("/sys/fs/cgroup/memory/a/b"));
        // Mount points below /sys are read below HOST_SYS, others below HOST_ROOT.
        let p = HostPaths { proc: "/hp".into(), sys: "/hs".into(), root: "/hr".into() };
        assert_eq!(host_path(&p, "/sys/fs/cgroup/unified"), PathBuf::from("/hs/fs/cgroup/unified"));
        assert_eq!(host_path(&p, "/cgroup"), PathBuf::from("/hr/cgroup"));
        assert_eq!(host_path(&p, "/sysfoo"), PathBuf::from("/hr/sysfoo"));
    }

    #[test]
    fn the_config_section_rejects_unknown_keys() {
        let c: CgroupConfig = serde_json::from_str(r#"{"enabled": true, "path": "/docker/abc", "root": "/host/sys/fs/cgroup"}"#).unwrap();
        assert_eq!(
            c,
            CgroupConfig { enabled: Some(true), path: Some("/docker/abc".into()), root: Some("/host/sys/fs/cgroup".into()), ..CgroupConfig::default() }
        );
        let e = serde_json::from_str::<CgroupConfig>(r#"{"pth": "/x"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `pth`"), "{e}");
        let text = "collector:\n  cgroup:\n    enabled: false\n    paths: /x\n";
        let e = crate::config::Config::parse(text, crate::config::Format::Yaml, Path::new("c.yaml")).unwrap_err().to_string();
        assert!(e.contains("c.yaml:4:") && e.contains("paths"), "{e}");
        let c = crate::config::Config::parse("collector:\n  cgroup:\n    path: /a\n", crate::config::Format::Yaml, Path::new("c.yaml")).unwrap();
        assert_eq!(c.collector.cgroup.path.as_deref(), Some("/a"));
    }

    /// The pod of `tests/fixtures/cgroup/v2-k8s-node` (systemd driver, Burstable).
    const V2_POD_UID: &str = "8c3a5f0e-2b1d-4e7a-9f60-1d2c3b4a5e6f";
    const V2_POD: &str = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8c3a5f0e_2b1d_4e7a_9f60_1d2c3b4a5e6f.slice";
    /// The pod of `tests/fixtures/cgroup/v1-k8s-node` (cgroupfs driver, Burstable).
    const V1_POD_UID: &str = "5b0e7c1a-93d4-4f2e-8a61-0c7d2e9f4b38";

    fn pod_config(root: Option<PathBuf>) -> CgroupConfig {
        CgroupConfig { scope: CgroupScope::Pod, root, ..CgroupConfig::default() }
    }

    fn collect_pod(paths: &HostPaths, config: &CgroupConfig, uid: &str) -> Vec<Point> {
        let clock = TickClock::default();
        let mut c = CgroupCollector::with_pod_uid(paths, &clock, config, Some(uid.into()));
        collect_once(&clock, &mut c)
    }

    #[test]
    fn pod_scope_finds_the_systemd_driver_pod_slice_by_uid_and_reports_its_limits() {
        // The sidecar's view: its own cgroup namespace at /sys/fs/cgroup, the node's cgroupfs
        // (hostPath) at /host/sys/fs/cgroup, given as `root`.
        let paths = paths("v2-k8s-node");
        let node = fixture("v2-k8s-node/host/sys/fs/cgroup");
        let config = pod_config(Some(node.clone()));
        assert!(config.is_enabled(&crate::resource::tests::fixture("bare-host")), "scope: pod turns it on");
        let loc = locate(&paths, &config, Some(V2_POD_UID)).unwrap();
        assert_eq!(loc.unified, Some(node.join(V2_POD)));
        assert!(loc.v1.is_empty());
        // The pod slice's files: the sums of its containers' limits (150m… 1.5 + 0.1 CPUs,
        // 512 + 64 MiB) and the kubelet's pod pids limit.
        let p = collect_pod(&paths, &config, V2_POD_UID);
        assert!(close(value(&p, "container.cpu.limit", &[]), 1.6));
        assert_eq!(value(&p, "container.memory.limit", &[]), Some(603979776.0));
        assert_eq!(value(&p, "container.pids.limit", &[]), Some(4096.0));
        // The usage of all its containers (and the sandbox): 172457984 − inactive_file 33554432.
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(172457984.0));
        assert_eq!(value(&p, "container.memory.working_set", &[]), Some(138903552.0));
        assert_eq!(value(&p, "container.memory.available", &[]), Some(465076224.0));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.596488));
        assert_eq!(value(&p, "container.pids.count", &[]), Some(12.0));
        assert_eq!(value(&p, "container.memory.oom_kills", &[]), Some(1.0));
        assert_eq!(io(&p, "container.disk.io", "8:0", "read"), Some(1871872.0));

        // The default scope on the same tree reports the sidecar's own container: 100m, 64 MiB.
        let p = collect(&paths, &CgroupConfig::default());
        assert!(close(value(&p, "container.cpu.limit", &[]), 0.1));
        assert_eq!(value(&p, "container.memory.limit", &[]), Some(67108864.0));

        // Without `root`, every cgroup mount of mountinfo is searched: the namespaced
        // /sys/fs/cgroup has no kubepods, the hostPath mount at /host/sys/fs/cgroup has the pod.
        let config = pod_config(None);
        let loc = locate(&paths, &config, Some(V2_POD_UID)).unwrap();
        assert_eq!(loc.unified, Some(paths.root("host/sys/fs/cgroup").join(V2_POD)));
        assert_eq!(value(&collect_pod(&paths, &config, V2_POD_UID), "container.pids.limit", &[]), Some(4096.0));

        // A Guaranteed pod sits right below kubepods.slice, without a QoS slice.
        let guaranteed = "0d9e8f7a-6b5c-4d3e-8f21-0a1b2c3d4e5f";
        assert_eq!(pod_dir_below(&node, guaranteed), Some(node.join("kubepods.slice/kubepods-pod0d9e8f7a_6b5c_4d3e_8f21_0a1b2c3d4e5f.slice")));
    }

    #[test]
    fn pod_scope_takes_the_uid_from_the_config_else_from_k8s_pod_uid() {
        let env = |k: &str| (k == "K8S_POD_UID").then(|| format!(" {V2_POD_UID}\n"));
        let no_env = |_: &str| None;
        assert_eq!(pod_config(None).pod_uid(env).as_deref(), Some(V2_POD_UID));
        let config = CgroupConfig { pod_uid: Some(V1_POD_UID.into()), ..pod_config(None) };
        assert_eq!(config.pod_uid(env).as_deref(), Some(V1_POD_UID), "the config wins");
        assert_eq!(pod_config(None).pod_uid(no_env), None);
        assert_eq!(pod_config(None).pod_uid(|_| Some(String::new())), None, "empty is unset");
        assert_eq!(CgroupConfig::default().pod_uid(env), None, "only with scope: pod");
    }

    #[test]
    fn pod_scope_finds_the_cgroupfs_driver_pod_dir_on_v1() {
        let node = fixture("v1-k8s-node/host/sys/fs/cgroup");
        let paths = paths("v1-k8s-node");
        let config = pod_config(Some(node.clone()));
        let loc = locate(&paths, &config, Some(V1_POD_UID)).unwrap();
        let pod = format!("kubepods/burstable/pod{V1_POD_UID}");
        assert_eq!(loc.unified, None);
        assert_eq!(loc.v1("memory"), Some(node.join("memory").join(&pod).as_path()));
        assert_eq!(loc.v1("cpu"), Some(node.join("cpu,cpuacct").join(&pod).as_path()));
        assert_eq!(loc.v1("cpuacct"), Some(node.join("cpu,cpuacct").join(&pod).as_path()));
        let p = collect_pod(&paths, &config, V1_POD_UID);
        // cpu.cfs_quota_us 60000 / 100000 (500m + 100m); memory.limit_in_bytes 320 MiB (256 + 64).
        assert!(close(value(&p, "container.cpu.limit", &[]), 0.6));
        assert_eq!(value(&p, "container.memory.limit", &[]), Some(335544320.0));
        // usage 180355072 − total_inactive_file 32505856; total_rss 134217728.
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(180355072.0));
        assert_eq!(value(&p, "container.memory.working_set", &[]), Some(147849216.0));
        assert_eq!(value(&p, "container.memory.rss", &[]), Some(134217728.0));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 2.87654321));
        assert_eq!(value(&p, "container.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(14.0));
        // A Guaranteed pod sits right below kubepods.
        let guaranteed = "0d9e8f7a-6b5c-4d3e-8f21-0a1b2c3d4e5f";
        assert_eq!(pod_dir_below(&node.join("memory"), guaranteed), Some(node.join("memory/kubepods").join(format!("pod{guaranteed}"))));
    }

    #[test]
    fn pod_scope_looks_only_below_kubepods_and_at_most_three_levels_deep() {
        let (dir, _) = copy("v2-k8s-node");
        let node = dir.path().join("host/sys/fs/cgroup");
        let uid = "11111111-2222-3333-4444-555555555555";
        // Not below a kubepods* directory.
        write(&dir, &format!("host/sys/fs/cgroup/system.slice/pod{uid}/cgroup.controllers"), "memory\n");
        assert_eq!(pod_dir_below(&node, uid), None);
        // Four levels deep.
        write(&dir, &format!("host/sys/fs/cgroup/kubepods.slice/a/b/pod{uid}/cgroup.controllers"), "memory\n");
        assert_eq!(pod_dir_below(&node, uid), None);
        // Three.
        write(&dir, &format!("host/sys/fs/cgroup/kubepods.slice/a/pod{uid}/cgroup.controllers"), "memory\n");
        assert_eq!(pod_dir_below(&node, uid), Some(node.join(format!("kubepods.slice/a/pod{uid}"))));
    }

    #[test]
    fn pod_scope_with_an_unknown_uid_is_an_error_naming_the_uid_and_the_root() {
        let paths = paths("v2-k8s-node");
        let node = fixture("v2-k8s-node/host/sys/fs/cgroup");
        let uid = "00000000-0000-4000-8000-000000000000";
        let config = pod_config(Some(node.clone()));
        let clock = TickClock::default();
        let mut c = CgroupCollector::with_pod_uid(&paths, &clock, &config, Some(uid.into()));
        let mut h = Harness::new(&clock, &mut c);
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains(uid) && e.contains(&node.display().to_string()), "{e}");
        assert!(e.contains("pod00000000_0000_4000_8000_000000000000.slice"), "{e}");
        // Without `root`: the mounts searched.
        let e = locate(&paths, &pod_config(None), Some(uid)).unwrap_err().to_string();
        assert!(e.contains(uid) && e.contains(&paths.root("host/sys/fs/cgroup").display().to_string()), "{e}");
    }

    #[test]
    fn pod_scope_without_a_uid_is_an_error() {
        let paths = paths("v2-k8s-node");
        let node = fixture("v2-k8s-node/host/sys/fs/cgroup");
        let clock = TickClock::default();
        let mut c = CgroupCollector::with_pod_uid(&paths, &clock, &pod_config(Some(node.clone())), None);
        let mut h = Harness::new(&clock, &mut c);
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains("pod UID is unknown") && e.contains("K8S_POD_UID") && e.contains(&node.display().to_string()), "{e}");
        let e = locate(&paths, &pod_config(None), Some(" ")).unwrap_err().to_string();
        assert!(e.contains("pod UID is unknown"), "{e}");
    }

    #[test]
    fn pod_scope_finds_the_pod_again_after_its_directory_went_away() {
        let (dir, paths) = copy("v2-k8s-node");
        let config = pod_config(None);
        let clock = TickClock::default();
        let mut c = CgroupCollector::with_pod_uid(&paths, &clock, &config, Some(V2_POD_UID.into()));
        let mut h = Harness::new(&clock, &mut c);
        assert_eq!(value(&h.tick(&mut c).unwrap(), "container.pids.count", &[]), Some(12.0));
        let pod = dir.path().join("host/sys/fs/cgroup").join(V2_POD);
        let aside = dir.path().join("aside");
        std::fs::rename(&pod, &aside).unwrap();
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains(&*pod.to_string_lossy()), "{e}");
        let e = h.tick(&mut c).unwrap_err().to_string();
        assert!(e.contains(V2_POD_UID), "looked for again: {e}");
        std::fs::rename(&aside, &pod).unwrap();
        assert_eq!(value(&h.tick(&mut c).unwrap(), "container.pids.count", &[]), Some(12.0));
    }

    #[test]
    fn path_and_scope_pod_together_are_rejected() {
        let parse = |text: &str| crate::config::Config::parse(text, crate::config::Format::Yaml, Path::new("c.yaml"));
        let e = parse("collector:\n  cgroup:\n    scope: pod\n    path: /docker/abc\n").unwrap_err().to_string();
        assert!(e.contains("c.yaml") && e.contains("`path` and `scope: pod`"), "{e}");
        let e = parse("collector:\n  cgroup:\n    pod_uid: abc\n").unwrap_err().to_string();
        assert!(e.contains("`pod_uid` is used only with `scope: pod`"), "{e}");
        // A config made in code: refused when locating.
        let config = CgroupConfig { path: Some("/x".into()), ..pod_config(None) };
        let e = locate(&paths("v2-k8s-node"), &config, Some(V2_POD_UID)).unwrap_err().to_string();
        assert!(e.contains("collector.cgroup") && e.contains("`path` and `scope: pod`"), "{e}");
    }

    #[test]
    fn the_config_section_parses_scope_and_pod_uid() {
        let parse = |text: &str| crate::config::Config::parse(text, crate::config::Format::Yaml, Path::new("c.yaml")).map(|c| c.collector.cgroup);
        let c = parse("collector:\n  cgroup:\n    scope: pod\n    root: /host/sys/fs/cgroup\n").unwrap();
        assert_eq!(c, CgroupConfig { scope: CgroupScope::Pod, root: Some("/host/sys/fs/cgroup".into()), ..CgroupConfig::default() });
        let c = parse("collector:\n  cgroup:\n    scope: pod\n    pod_uid: abc-def\n").unwrap();
        assert_eq!((c.scope, c.pod_uid.as_deref()), (CgroupScope::Pod, Some("abc-def")));
        assert_eq!(parse("collector:\n  cgroup:\n    scope: container\n").unwrap(), CgroupConfig::default());
        assert_eq!(parse("collector: {}\n").unwrap(), CgroupConfig::default());
        let e = parse("collector:\n  cgroup:\n    scope: node\n").unwrap_err().to_string();
        assert!(e.contains("node") && e.contains("container") && e.contains("pod"), "{e}");
        let e = parse("collector:\n  cgroup:\n    scope: pod\n    pod_uid: ''\n").unwrap_err().to_string();
        assert!(e.contains("`pod_uid` is empty"), "{e}");
        let e = parse("collector:\n  cgroup:\n    scope: pod\n    uid: x\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `uid`"), "{e}");
        // Written back (the effective config) with `scope` only when not the default.
        let json = serde_json::to_value(pod_config(None)).unwrap();
        assert_eq!(json, serde_json::json!({"scope": "pod"}));
        assert_eq!(serde_json::to_value(CgroupConfig::default()).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn turns_itself_on_in_containers_and_stays_off_on_hosts() {
        let resource = crate::resource::tests::fixture;
        // Hosts: a systemd session, this VM (memory in a non-container cgroup), the capture.
        for (name, p) in [("bare-host", resource("bare-host")), ("this-vm", resource("this-vm")), ("v1-hybrid", paths("v1-hybrid"))] {
            assert!(!looks_like_container(&p), "{name}");
            assert!(!CgroupConfig::default().is_enabled(&p), "{name}");
        }
        // Containers: an ID in the cgroup path (v1, v2), Docker's bind mounts with `0::/`, a
        // kubelet mount with `0::/`.
        for (name, p) in [
            ("docker-cgroupv1", resource("docker-cgroupv1")),
            ("v2-k8s-container", paths("v2-k8s-container")),
            ("docker-cgroupv2", resource("docker-cgroupv2")),
            ("containerd-k8s-cgroupv2-nsprivate", resource("containerd-k8s-cgroupv2-nsprivate")),
        ] {
            assert!(looks_like_container(&p), "{name}");
        }
        // No runtime in sight, but `0::/` is a cgroup with cgroup.type: a namespace root.
        assert!(looks_like_container(&paths("v2-namespaced")));
        let (dir, p) = copy("v2-namespaced");
        std::fs::remove_file(dir.path().join("sys/fs/cgroup/cgroup.type")).unwrap();
        assert!(!looks_like_container(&p), "the real root of a v2 hierarchy");
        // A path naming a runtime without a 64-hex ID.
        write(&dir, "proc/self/cgroup", "0::/system.slice/containerd.service\n");
        assert!(looks_like_container(&p));
        // The config wins.
        assert!(!CgroupConfig { enabled: Some(false), ..CgroupConfig::default() }.is_enabled(&paths("v2-namespaced")));
        assert!(CgroupConfig { enabled: Some(true), ..CgroupConfig::default() }.is_enabled(&resource("bare-host")));
    }

    /// Removes the cgroups it holds (children first) when dropped.
    struct Cleanup(Vec<PathBuf>);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for d in self.0.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }

    #[test]
    fn reports_the_limit_of_a_real_cgroup_created_for_the_test() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: creating a cgroup needs root");
            return;
        }
        let config = CgroupConfig { path: Some(format!("/metricsd-test-{}", std::process::id())), ..CgroupConfig::default() };
        let paths = HostPaths::default();
        let loc = match locate(&paths, &config, None) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let mut made = Cleanup(Vec::new());
        for d in loc.unified.iter().chain(loc.v1.iter().map(|(_, d)| d)) {
            if made.0.contains(d) {
                continue;
            }
            if let Err(e) = std::fs::create_dir(d) {
                eprintln!("skipped: cannot create {}: {e}", d.display());
                return;
            }
            made.0.push(d.clone());
        }
        // The memory limit, where this host has a memory controller for it.
        let loc = locate(&paths, &config, None).unwrap();
        let limit_file = match (loc.v2_with("memory"), loc.v1("memory")) {
            (Some(d), _) => Some(d.join("memory.max")),
            (None, Some(d)) => Some(d.join("memory.limit_in_bytes")),
            _ => None,
        };
        let limited = limit_file.is_some_and(|f| std::fs::write(f, "268435456").is_ok());
        if !limited {
            eprintln!("no memory controller for the test cgroup: its limit is not checked");
        }
        let p = collect(&paths, &config);
        if limited {
            assert_eq!(value(&p, "container.memory.limit", &[]), Some(268435456.0));
            assert_eq!(value(&p, "container.memory.usage", &[]), Some(0.0), "nothing runs in it");
        }
        if loc.v2_with("pids").or(loc.v1("pids")).is_some() {
            assert_eq!(value(&p, "container.pids.count", &[]), Some(0.0));
        }
        drop(made);
        assert!(loc.v1.iter().all(|(_, d)| !d.exists()), "the test cgroups are removed");
    }
}
