//! The filesystem collector: `system.filesystem.*` per mounted filesystem, from the mount table
//! (`/proc/self/mountinfo`, or `/proc/1/mountinfo` when reading a host's `/proc`) and
//! `statvfs(3)` of each mount point.
//!
//! ```text
//! 22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
//! ```
//!
//! | metric | instrument | unit | attributes |
//! | --- | --- | --- | --- |
//! | `system.filesystem.usage` | UpDownCounter | By | `system.device`, `system.filesystem.mode` (rw, ro), `system.filesystem.mountpoint`, `system.filesystem.type`, `system.filesystem.state` (used, free, reserved) |
//! | `system.filesystem.utilization` | Gauge | 1 | the same, without `state` |
//! | `system.filesystem.limit` | UpDownCounter | By | the same, without `state` |
//! | `system.filesystem.inodes.usage` | UpDownCounter | {inode} | the same, `system.filesystem.state` (used, free) |
//!
//! The numbers are `df`'s: `used` is `(blocks − bfree) × frsize` (df's Used), `free` is
//! `bavail × frsize` (df's Avail, what unprivileged users can still write), `reserved` is the
//! rest (`bfree − bavail`, kept for root), so the three add up to `system.filesystem.limit`
//! (df's Size); `utilization` is `used ÷ (used + free)` (df's Use%, as a fraction). Inodes:
//! `used` is `files − ffree`, `free` is `ffree` (`df -i`). `system.device` is the mount's
//! source as the mount table has it (`/dev/nvme0n1p2`, `tmpfs`, `server:/export`).
//!
//! **Which mounts.** Pseudo filesystems are always skipped (`proc`, `sysfs`, `cgroup2`,
//! `devpts`, ...: see [`mountinfo`]); `tmpfs` and `devtmpfs` are reported unless
//! `include_tmpfs` is false; read-only images (`squashfs`, `erofs`, `iso9660`: snaps, live
//! media, always full) only with `include_images`. `include_types` replaces that rule with a
//! list of types; `include_mountpoints`, `exclude_mountpoints` and `exclude_types` select
//! further (see [`FilesystemConfig`]). Mount points below `/dev`, `/proc` and `/sys`
//! (`/dev/shm`, a cgroup v1 `/sys/fs/cgroup` tmpfs), systemd's `/run/credentials/*` and
//! container runtimes' layer mounts are left out unless `exclude_mountpoints` is set, as
//! node_exporter leaves them out ([`DEFAULT_EXCLUDE_MOUNTPOINTS`]). Then, as `df` does:
//! - a mount point mounted over again reports only the last mount (the one a path lookup
//!   reaches; statvfs of the path describes that one);
//! - a filesystem mounted at several places (bind mounts: the same device and the same root
//!   within it) is reported once, at the first of its mount points in the table. Bind mounts of
//!   different subtrees, and btrfs subvolumes, are reported each.
//!
//! **Cost.** The mount table is kept open and read again only when the kernel says it changed
//! (`poll(2)` with `POLLPRI`, as systemd watches it): formatting it is the costliest /proc read
//! of a tick (~50–100 µs for 30 mounts, more on a Kubernetes node with hundreds).
//!
//! In a container reading its host (`HOST_ROOT`, `root_path`), mount points are looked up below
//! that root; `system.filesystem.mountpoint` is the host's path.
//!
//! **Hung mounts.** statvfs of a network filesystem whose server is gone (NFS `hard` mounts,
//! sshfs) can block for minutes. statvfs of such filesystems (network and FUSE types, see
//! [`may_hang`]) runs on a small pool of worker threads, and the tick waits for them at most
//! `statvfs_timeout` (default 1 s) in all; local filesystems (ext4, xfs, btrfs, tmpfs, ...)
//! answer from the kernel's in-memory superblock and are called inline, which saves two thread
//! hand-offs per mount per tick. A mount whose statvfs has
//! not returned is skipped, and no new statvfs is started on it until the hung one returns; the
//! other mounts are reported as usual. A warning naming the mount point is logged once when a
//! mount hangs, and an info line when it answers again. Mounts whose statvfs fails (a mount
//! point not visible in this container, permission denied) are skipped too; only when no mount
//! at all could be read does the collector fail.
//!
//! The mount table is parsed, and the mounts selected and their attributes built, only when its
//! text changes; a steady tick reads it, compares it and calls statvfs.

use super::glob_match;
use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::mountinfo::{self, FsFilter, Mount};
use crate::procfs::statvfs::{self, FsStats};
use crate::procfs::ProcFile;
use crate::units::ConfigDuration;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `collector.filesystem`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Run this collector (default true; metricsd's `enable_disk` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Mount points to report, as paths or patterns where `*` matches any run of characters,
    /// `/` included (`/data*`, `/mnt/*`). Empty (the default): every mount point.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_mountpoints: Vec<String>,
    /// Mount points not to report, in the same form; wins over `include_mountpoints`. Unset
    /// (the default): [`DEFAULT_EXCLUDE_MOUNTPOINTS`], node_exporter's default, i.e. nothing
    /// below `/dev`, `/proc` and `/sys` (`/dev/shm`, a cgroup v1 host's `/sys/fs/cgroup` tmpfs),
    /// systemd's per-service credential mounts and container runtimes' layer mounts. A list
    /// replaces it; `[]` reports every mount point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_mountpoints: Option<Vec<String>>,
    /// Filesystem types to report (`ext4`, `xfs`, `nfs*`, `fuse.*`). Empty (the default): every
    /// type but the pseudo filesystems, with `include_tmpfs` and `include_images` deciding the
    /// memory-backed and image ones. Non-empty: exactly the matching types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_types: Vec<String>,
    /// Filesystem types not to report; wins over everything else (`["overlay"]` drops
    /// containers' root filesystems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_types: Vec<String>,
    /// Report `tmpfs` and `devtmpfs` mounts (default true).
    pub include_tmpfs: bool,
    /// Report read-only image filesystems, `squashfs`, `erofs`, `iso9660` (default false: they
    /// are always 100 % full).
    pub include_images: bool,
    /// How long one tick waits for statvfs of the mounts, all together (default `"1s"`). Keep it
    /// below `collector.timeout`. A mount that has not answered by then is skipped until it does.
    pub statvfs_timeout: ConfigDuration,
}

/// The mount points not reported unless `exclude_mountpoints` says otherwise: node_exporter's
/// `--collector.filesystem.mount-points-exclude` default
/// (`^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`).
/// The hostmetrics receiver and Telegraf leave out every tmpfs by default, which would also
/// drop `/run` and `/tmp`; these stay (`include_tmpfs`).
pub const DEFAULT_EXCLUDE_MOUNTPOINTS: [&str; 9] =
    ["/dev", "/dev/*", "/proc", "/proc/*", "/sys", "/sys/*", "/run/credentials/*", "/var/lib/docker/*", "/var/lib/containers/storage/*"];

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            enabled: None,
            include_mountpoints: Vec::new(),
            exclude_mountpoints: None,
            include_types: Vec::new(),
            exclude_types: Vec::new(),
            include_tmpfs: true,
            include_images: false,
            statvfs_timeout: ConfigDuration::secs(1),
        }
    }
}

impl FilesystemConfig {
    /// Whether mounts of filesystem type `fs_type` are reported.
    pub fn accepts_type(&self, fs_type: &str) -> bool {
        let included = if self.include_types.is_empty() {
            FsFilter { include_tmpfs: self.include_tmpfs, include_images: self.include_images }.keeps_type(fs_type)
        } else {
            self.include_types.iter().any(|p| glob_match(p, fs_type))
        };
        included && !self.exclude_types.iter().any(|p| glob_match(p, fs_type))
    }

    /// Whether the mount point `path` is reported.
    pub fn accepts_mountpoint(&self, path: &str) -> bool {
        (self.include_mountpoints.is_empty() || self.include_mountpoints.iter().any(|p| glob_match(p, path)))
            && !match &self.exclude_mountpoints {
                Some(list) => list.iter().any(|p| glob_match(p, path)),
                None => DEFAULT_EXCLUDE_MOUNTPOINTS.iter().any(|p| glob_match(p, path)),
            }
    }
}

/// The mounts reported, as indices into `mounts` in table order: the last mount of each mount
/// point, those the config accepts, and of several mounts of the same device and root the
/// first (see the module docs).
pub fn select(mounts: &[Mount], config: &FilesystemConfig) -> Vec<usize> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        last.insert(m.mount_point.as_str(), i);
    }
    let mut seen: HashSet<(u32, u32, &str)> = HashSet::new();
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        if last.get(m.mount_point.as_str()) != Some(&i) || !config.accepts_type(&m.fs_type) || !config.accepts_mountpoint(&m.mount_point) {
            continue;
        }
        if seen.insert((m.major, m.minor, m.root.as_str())) {
            out.push(i);
        }
    }
    out
}

/// Whether statvfs of this filesystem type may block for long: network filesystems and FUSE
/// (whose daemon may be stuck). Those go through the thread pool under the time limit.
pub fn may_hang(fs_type: &str) -> bool {
    const NETWORK: &str =
        "nfs nfs4 cifs smb3 smbfs ncpfs ceph glusterfs 9p afs lustre gpfs ocfs2 gfs2 beegfs davfs fuse fuseblk virtiofs cvmfs panfs orangefs pvfs2";
    fs_type.starts_with("fuse.") || NETWORK.split(' ').any(|t| t == fs_type)
}

/// A statvfs function: the real [`statvfs::statvfs`], or a fake in tests.
pub type StatFn = Arc<dyn Fn(&Path) -> std::io::Result<FsStats> + Send + Sync>;

/// The attributes of one mount, built once.
#[derive(Debug)]
struct MountAttrs {
    /// device, mode, mountpoint, type.
    base: [KeyValue; 4],
    /// The base with `system.filesystem.state`: `[used, free, reserved]`.
    usage: [[KeyValue; 5]; 3],
    /// The base with `system.filesystem.state`: `[used, free]`.
    inodes: [[KeyValue; 5]; 2],
}

impl MountAttrs {
    fn new(m: &Mount) -> Self {
        let base = [
            KeyValue::new("system.device", Arc::<str>::from(m.source.as_str())),
            KeyValue::new("system.filesystem.mode", m.mode()),
            KeyValue::new("system.filesystem.mountpoint", Arc::<str>::from(m.mount_point.as_str())),
            KeyValue::new("system.filesystem.type", Arc::<str>::from(m.fs_type.as_str())),
        ];
        let with = |state: &'static str| {
            let [a, b, c, d] = base.clone();
            [a, b, c, d, KeyValue::new("system.filesystem.state", state)]
        };
        MountAttrs { usage: ["used", "free", "reserved"].map(with), inodes: ["used", "free"].map(with), base }
    }
}

/// One reported mount and what the ticks know of its statvfs.
struct Slot {
    /// Unique for the collector's life; names the slot's statvfs jobs.
    id: u64,
    mount_id: u32,
    mount_point: String,
    /// Where to call statvfs (below the host root).
    path: Arc<PathBuf>,
    attrs: Arc<MountAttrs>,
    /// statvfs is called on the pool (the type [`may_hang`]); else inline.
    pooled: bool,
    /// A statvfs was started and has not returned.
    in_flight: bool,
    /// When the statvfs in flight was started.
    sent_at: Instant,
    /// This tick's answer.
    result: Option<std::io::Result<FsStats>>,
    /// A hang (or an error) of this mount was logged and it has not answered since.
    hang_logged: bool,
    error_logged: bool,
}

struct Job {
    id: u64,
    path: Arc<PathBuf>,
}

struct Done {
    id: u64,
    result: std::io::Result<FsStats>,
}

/// Threads running statvfs calls. `wanted` is the pool's size: a few, plus one per call that
/// hangs, so that hung mounts never starve the others; a thread whose hung call returns leaves
/// when the pool is larger than wanted.
struct Pool {
    jobs: mpsc::Sender<Job>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    done_tx: mpsc::Sender<Done>,
    done: mpsc::Receiver<Done>,
    threads: Arc<AtomicUsize>,
    wanted: Arc<AtomicUsize>,
    statfs: StatFn,
    /// Jobs sent and not answered.
    outstanding: usize,
}

/// Threads kept for statvfs when nothing hangs.
const BASE_THREADS: usize = 2;
/// At most this many threads, hung ones included.
const MAX_THREADS: usize = 64;

impl Pool {
    fn new(statfs: StatFn) -> Self {
        let (jobs, queue) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        Pool {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            done_tx,
            done,
            threads: Arc::new(AtomicUsize::new(0)),
            wanted: Arc::new(AtomicUsize::new(0)),
            statfs,
            outstanding: 0,
        }
    }

    /// Makes sure `n` threads (at most [`MAX_THREADS`]) are running.
    fn ensure(&self, n: usize) {
        let n = n.min(MAX_THREADS);
        self.wanted.store(n, Ordering::Release);
        while self.threads.load(Ordering::Acquire) < n {
            self.threads.fetch_add(1, Ordering::AcqRel);
            let (queue, done, statfs) = (self.queue.clone(), self.done_tx.clone(), self.statfs.clone());
            let (threads, wanted) = (self.threads.clone(), self.wanted.clone());
            let spawned = std::thread::Builder::new().name("metricsd-statvfs".into()).spawn(move || worker(queue, done, statfs, threads, wanted));
            if let Err(e) = spawned {
                self.threads.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!(error = %e, "cannot start a statvfs thread");
                break;
            }
        }
    }
}

fn worker(queue: Arc<Mutex<mpsc::Receiver<Job>>>, done: mpsc::Sender<Done>, statfs: StatFn, threads: Arc<AtomicUsize>, wanted: Arc<AtomicUsize>) {
    loop {
        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = job else { break };
        let result = statfs(&job.path);
        if done.send(Done { id: job.id, result }).is_err() {
            break;
        }
        let t = threads.load(Ordering::Acquire);
        if t > wanted.load(Ordering::Acquire) && threads.compare_exchange(t, t - 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
    }
    threads.fetch_sub(1, Ordering::AcqRel);
}

/// What one tick read: per mount, in mount table order.
#[derive(Default)]
struct Snapshot {
    mounts: Vec<(Arc<MountAttrs>, FsStats)>,
}

/// Keeps the mount table open and reads it again only after a mount or unmount (`poll(2)` on
/// procfs); statvfs of each selected mount every tick.
pub struct FilesystemCollector {
    paths: HostPaths,
    config: FilesystemConfig,
    file: ProcFile,
    /// The mount table text the slots were built from.
    table: String,
    slots: Vec<Slot>,
    /// Slot id → index in `slots`.
    index: HashMap<u64, usize>,
    next_id: u64,
    statfs: StatFn,
    pool: Option<Pool>,
    /// Hangs logged (for tests).
    hangs_logged: u64,
    snap: Arc<SnapshotCell<Snapshot>>,
}

impl FilesystemCollector {
    /// A collector of the mounts of `paths` (see [`mountinfo::path`]).
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &FilesystemConfig) -> Self {
        FilesystemCollector {
            paths: paths.clone(),
            config: config.clone(),
            file: ProcFile::new(mountinfo::path(paths)),
            table: String::new(),
            slots: Vec::new(),
            index: HashMap::new(),
            next_id: 0,
            statfs: Arc::new(statvfs::statvfs),
            pool: None,
            hangs_logged: 0,
            snap: SnapshotCell::new(clock),
        }
    }

    /// Uses `f` instead of `statvfs(3)` (tests: a filesystem that hangs). Call before the first
    /// refresh.
    pub fn with_statfs(mut self, f: StatFn) -> Self {
        self.statfs = f;
        self
    }

    /// Rebuilds the slots from a new mount table, keeping the state of mounts still there.
    fn rebuild(&mut self, mounts: &[Mount]) {
        let mut old: HashMap<u32, Slot> = self.slots.drain(..).map(|s| (s.mount_id, s)).collect();
        for i in select(mounts, &self.config) {
            let m = &mounts[i];
            let path = Arc::new(self.paths.root(&m.mount_point));
            let attrs = Arc::new(MountAttrs::new(m));
            let slot = match old.remove(&m.mount_id) {
                Some(s) if s.mount_point == m.mount_point => Slot { path, attrs, pooled: s.pooled || may_hang(&m.fs_type), ..s },
                _ => {
                    self.next_id += 1;
                    Slot {
                        id: self.next_id,
                        mount_id: m.mount_id,
                        mount_point: m.mount_point.clone(),
                        path,
                        attrs,
                        pooled: may_hang(&m.fs_type),
                        in_flight: false,
                        sent_at: Instant::now(),
                        result: None,
                        hang_logged: false,
                        error_logged: false,
                    }
                }
            };
            self.slots.push(slot);
        }
        self.index = self.slots.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    }

    /// statvfs of the pooled mounts, waiting at most `timeout` for all of them.
    fn statvfs_pooled(&mut self, timeout: std::time::Duration) {
        // Answers that came in between ticks only end a hang; their numbers are old.
        while let Some(d) = self.pool.as_ref().and_then(|p| p.done.try_recv().ok()) {
            self.answer(d, false);
        }
        let start = Instant::now();
        let deadline = crate::units::duration::deadline_after(start, timeout);
        let mut pending = 0usize;
        {
            let pool = self.pool.as_mut().expect("pool");
            pool.ensure(BASE_THREADS + pool.outstanding);
            for s in self.slots.iter_mut().filter(|s| s.pooled && !s.in_flight) {
                if pool.jobs.send(Job { id: s.id, path: s.path.clone() }).is_ok() {
                    s.in_flight = true;
                    s.sent_at = start;
                    pool.outstanding += 1;
                    pending += 1;
                }
            }
        }
        while pending > 0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            let r = self.pool.as_ref().expect("pool").done.recv_timeout(wait);
            match r {
                Ok(d) => {
                    if self.index.get(&d.id).is_some_and(|&i| self.slots[i].in_flight && self.slots[i].sent_at == start) {
                        pending -= 1;
                    }
                    self.answer(d, true);
                }
                Err(_) => break,
            }
        }
    }

    /// Records an answer; `current` says whether it may be reported this tick.
    fn answer(&mut self, d: Done, current: bool) {
        let Some(pool) = &mut self.pool else { return };
        pool.outstanding = pool.outstanding.saturating_sub(1);
        if let Some(&i) = self.index.get(&d.id) {
            let s = &mut self.slots[i];
            if s.in_flight {
                s.in_flight = false;
                if s.hang_logged {
                    tracing::info!(
                        mountpoint = %s.mount_point,
                        after = ?s.sent_at.elapsed(),
                        "statvfs returned again; reporting this filesystem again"
                    );
                    s.hang_logged = false;
                }
                if current {
                    s.result = Some(d.result);
                }
            }
        }
    }
}

/// An unsigned count as an `i64` data point.
fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const FILESYSTEM_USAGE: Metric<i64> =
    Metric::i64_up_down_counter("system.filesystem.usage", "By", "Filesystem space used, free to users, and reserved for root (as df)")
        .attributes(&["system.device", "system.filesystem.mode", "system.filesystem.mountpoint", "system.filesystem.type", "system.filesystem.state"])
        .source("/proc/self/mountinfo + statvfs(2); reserved = bfree − bavail");
const FILESYSTEM_UTILIZATION: Metric<f64> =
    Metric::f64_gauge("system.filesystem.utilization", "1", "Fraction of the space users can have that is used: used ÷ (used + free), as df's Use%")
        .attributes(&["system.device", "system.filesystem.mode", "system.filesystem.mountpoint", "system.filesystem.type"])
        .source("statvfs(2): used ÷ (used + available)");
const FILESYSTEM_LIMIT: Metric<i64> = Metric::i64_up_down_counter("system.filesystem.limit", "By", "Size of the filesystem")
    .attributes(&["system.device", "system.filesystem.mode", "system.filesystem.mountpoint", "system.filesystem.type"])
    .source("statvfs(2) blocks × frsize");
const FILESYSTEM_INODES_USAGE: Metric<i64> = Metric::i64_up_down_counter("system.filesystem.inodes.usage", "{inode}", "Inodes used and free (as df -i)")
    .attributes(&["system.device", "system.filesystem.mode", "system.filesystem.mountpoint", "system.filesystem.type", "system.filesystem.state"])
    .source("statvfs(2) files, ffree")
    .agent_name();

/// The filesystem collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[FILESYSTEM_USAGE.spec(), FILESYSTEM_UTILIZATION.spec(), FILESYSTEM_LIMIT.spec(), FILESYSTEM_INODES_USAGE.spec()];

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        FILESYSTEM_USAGE.register(meter, move |obs| {
            snap.with(|s| {
                for (a, st) in &s.mounts {
                    let v = [st.used_bytes(), st.available_bytes(), st.reserved_bytes()];
                    for (v, attrs) in v.iter().zip(&a.usage) {
                        obs.observe(i64_of(*v), attrs);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        FILESYSTEM_UTILIZATION.register(meter, move |obs| {
            snap.with(|s| {
                for (a, st) in &s.mounts {
                    obs.observe(st.utilization(), &a.base);
                }
            });
        });
        let snap = self.snap.clone();
        FILESYSTEM_LIMIT.register(meter, move |obs| {
            snap.with(|s| {
                for (a, st) in &s.mounts {
                    obs.observe(i64_of(st.total_bytes()), &a.base);
                }
            });
        });
        let snap = self.snap.clone();
        FILESYSTEM_INODES_USAGE.register(meter, move |obs| {
            snap.with(|s| {
                for (a, st) in &s.mounts {
                    for (v, attrs) in [st.inodes_used(), st.ffree].iter().zip(&a.inodes) {
                        obs.observe(i64_of(*v), attrs);
                    }
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        // On procfs the table is read again only after a mount or unmount (see
        // `ProcFile::read_if_changed`); a copy of it (fixtures) is read and compared.
        if let Some(text) = self.file.read_if_changed()?.filter(|t| *t != self.table) {
            let parsed = mountinfo::parse(text);
            self.table.clear();
            self.table.push_str(text);
            let mounts = parsed.map_err(|e| {
                self.table.clear();
                crate::procfs::at(self.file.path(), e)
            })?;
            self.rebuild(&mounts);
        }
        for s in &mut self.slots {
            s.result = None;
        }
        let timeout = self.config.statvfs_timeout.get();
        if self.pool.is_none() && self.slots.iter().any(|s| s.pooled) {
            self.pool = Some(Pool::new(self.statfs.clone()));
        }
        if self.pool.is_some() {
            self.statvfs_pooled(timeout);
        }
        for s in self.slots.iter_mut().filter(|s| !s.pooled) {
            s.result = Some((self.statfs)(&s.path));
        }

        let mut snap = self.snap.take().unwrap_or_default();
        snap.mounts.clear();
        let mut first_error: Option<String> = None;
        for s in &mut self.slots {
            match s.result.take() {
                Some(Ok(st)) => {
                    s.error_logged = false;
                    snap.mounts.push((s.attrs.clone(), st));
                }
                Some(Err(e)) => {
                    if first_error.is_none() {
                        first_error = Some(format!("{}: {e}", s.mount_point));
                    }
                    let quiet = matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied);
                    if !s.error_logged && !quiet {
                        tracing::warn!(mountpoint = %s.mount_point, error = %e, "statvfs failed; skipping this filesystem");
                    } else {
                        tracing::debug!(mountpoint = %s.mount_point, error = %e, "statvfs failed; skipping this filesystem");
                    }
                    s.error_logged = true;
                }
                None => {
                    if first_error.is_none() {
                        first_error = Some(format!("{}: statvfs did not return within {}", s.mount_point, ConfigDuration(timeout)));
                    }
                    if s.in_flight && !s.hang_logged {
                        tracing::warn!(
                            mountpoint = %s.mount_point,
                            timeout = %ConfigDuration(timeout),
                            "statvfs did not return in time (a hung network filesystem?); skipping this filesystem until it does"
                        );
                        s.hang_logged = true;
                        self.hangs_logged += 1;
                    }
                }
            }
        }
        let none_read = snap.mounts.is_empty() && !self.slots.is_empty();
        self.snap.set(snap);
        match first_error {
            Some(msg) if none_read => Err(CollectorError::Other { what: "statvfs of every filesystem".into(), msg }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{fixture_copy, kind, of, value, write, Harness, Kind, Point};
    use crate::procfs::{fixture, fixture_paths};
    use std::sync::Condvar;
    use std::time::Duration;

    const TREE: &str = "linux-5.15-server-fs";

    fn st(block_size: u64, blocks: u64, bfree: u64, bavail: u64, files: u64, ffree: u64) -> FsStats {
        FsStats { block_size, blocks, bfree, bavail, files, ffree, favail: ffree }
    }

    /// A fake statvfs over a fixture tree: fixed numbers per mount point, a mount point that
    /// blocks until released, one that fails, and a count of calls per mount point.
    #[derive(Default)]
    struct Fake {
        hang: Mutex<Option<String>>,
        released: (Mutex<bool>, Condvar),
        fail: Mutex<Vec<(String, std::io::ErrorKind)>>,
        calls: Mutex<HashMap<String, usize>>,
        /// The name of the thread that made each mount point's last call.
        threads: Mutex<HashMap<String, String>>,
    }

    impl Fake {
        fn statfs(self: &Arc<Self>, root: PathBuf) -> StatFn {
            let me = self.clone();
            Arc::new(move |p: &Path| {
                let mp = format!("/{}", p.strip_prefix(&root).unwrap().to_str().unwrap());
                *me.calls.lock().unwrap().entry(mp.clone()).or_default() += 1;
                me.threads.lock().unwrap().insert(mp.clone(), std::thread::current().name().unwrap_or("").to_string());
                if me.hang.lock().unwrap().as_deref() == Some(mp.as_str()) {
                    let (m, cv) = &me.released;
                    let mut r = m.lock().unwrap();
                    while !*r {
                        r = cv.wait(r).unwrap();
                    }
                }
                if let Some((_, k)) = me.fail.lock().unwrap().iter().find(|(f, _)| *f == mp) {
                    return Err(std::io::Error::from(*k));
                }
                Ok(match mp.as_str() {
                    "/" => st(4096, 24_000_000, 10_000_000, 8_800_000, 6_000_000, 5_000_000),
                    "/mnt/data-again" => st(4096, 1000, 400, 350, 64, 60),
                    _ => st(1024, 100, 100, 100, 10, 10),
                })
            })
        }
        fn hang(&self, mp: &str) {
            *self.released.0.lock().unwrap() = false;
            *self.hang.lock().unwrap() = Some(mp.into());
        }
        fn release(&self) {
            *self.released.0.lock().unwrap() = true;
            self.released.1.notify_all();
        }
        fn calls(&self, mp: &str) -> usize {
            self.calls.lock().unwrap().get(mp).copied().unwrap_or(0)
        }
    }

    fn collector(paths: &HostPaths, clock: &TickClock, cfg: &FilesystemConfig) -> (FilesystemCollector, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let c = FilesystemCollector::new(paths, clock, cfg).with_statfs(fake.statfs(paths.root.clone()));
        (c, fake)
    }

    #[test]
    fn local_filesystems_are_read_inline_and_network_ones_on_the_pool() {
        let clock = TickClock::default();
        let (mut c, fake) = collector(&fixture_paths(TREE), &clock, &FilesystemConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert!(mountpoints(&p).contains(&"/mnt/nas".to_string()));
        let threads = fake.threads.lock().unwrap().clone();
        assert_eq!(threads["/mnt/nas"], "metricsd-statvfs", "nfs4 may hang: pooled");
        assert_ne!(threads["/"], "metricsd-statvfs", "ext4 is called inline");
        assert!(may_hang("fuse.sshfs") && may_hang("cifs") && !may_hang("xfs") && !may_hang("tmpfs"));
    }

    fn mountpoints(p: &[Point]) -> Vec<String> {
        let mut v: Vec<String> =
            of(p, "system.filesystem.limit").iter().map(|p| p.1.iter().find(|(k, _)| k == "system.filesystem.mountpoint").unwrap().1.clone()).collect();
        v.sort();
        v
    }

    fn table() -> Vec<Mount> {
        mountinfo::read_path(&fixture(&format!("{TREE}/proc/1/mountinfo"))).unwrap()
    }

    fn selected(cfg: &FilesystemConfig) -> Vec<String> {
        let m = table();
        select(&m, cfg).into_iter().map(|i| m[i].mount_point.clone()).collect()
    }

    #[test]
    fn selects_real_and_tmpfs_mounts_once_each_as_df_does() {
        assert_eq!(
            selected(&FilesystemConfig { exclude_mountpoints: Some(vec![]), ..Default::default() }),
            [
                "/",
                "/dev",
                "/dev/shm",
                "/run",
                "/boot/efi",
                "/home",
                // /dev/sda1's subtree /docker: another root, kept.
                "/var/lib/docker",
                // /data (33) is hidden by the tmpfs mounted over it (40), so the first visible
                // mount of 8:1 "/" is this bind mount.
                "/mnt/data-again",
                "/mnt/nas",
                "/mnt/backup disk",
                "/var/lib/docker/overlay2/3f1c/merged",
                "/run/user/1000",
                "/data",
                "/srv/raid",
                // Not /mnt/rootbind: the same device and root as "/". Not /snap/core20/2015
                // (squashfs), /proc, /sys, /dev/pts, /sys/fs/cgroup (pseudo).
            ]
        );
        // By default, as node_exporter: nothing below /dev, /proc, /sys or a container
        // runtime's layers.
        assert_eq!(
            selected(&FilesystemConfig::default()),
            ["/", "/run", "/boot/efi", "/home", "/var/lib/docker", "/mnt/data-again", "/mnt/nas", "/mnt/backup disk", "/run/user/1000", "/data", "/srv/raid"]
        );
        let parsed: FilesystemConfig = serde_yaml_ng::from_str("exclude_mountpoints: []\n").unwrap();
        assert_eq!(parsed.exclude_mountpoints, Some(vec![]), "an empty list is kept: every mount point");
        assert!(parsed.accepts_mountpoint("/dev/shm") && !FilesystemConfig::default().accepts_mountpoint("/dev/shm"));
        assert!(
            FilesystemConfig::default().accepts_mountpoint("/run/user/1000") && !FilesystemConfig::default().accepts_mountpoint("/run/credentials/x.service")
        );
    }

    #[test]
    fn type_and_mountpoint_lists_select_further() {
        let no_tmpfs = FilesystemConfig { include_tmpfs: false, exclude_mountpoints: Some(vec![]), ..Default::default() };
        assert_eq!(
            selected(&no_tmpfs),
            [
                "/",
                "/boot/efi",
                "/home",
                "/var/lib/docker",
                "/mnt/data-again",
                "/mnt/nas",
                "/mnt/backup disk",
                "/var/lib/docker/overlay2/3f1c/merged",
                "/srv/raid"
            ]
        );
        let images = FilesystemConfig { include_types: vec!["squashfs".into(), "ext*".into()], ..Default::default() };
        assert_eq!(selected(&images), ["/", "/snap/core20/2015", "/var/lib/docker", "/mnt/data-again", "/srv/raid"]);
        let cfg = FilesystemConfig {
            include_mountpoints: vec!["/mnt/*".into(), "/".into()],
            exclude_mountpoints: Some(vec!["/mnt/nas".into()]),
            exclude_types: vec!["fuse.*".into()],
            ..Default::default()
        };
        assert_eq!(selected(&cfg), ["/", "/mnt/data-again"]);
        // Excluding the bind mount that would be reported does not bring back the hidden one.
        let cfg = FilesystemConfig {
            exclude_mountpoints: Some(vec!["/mnt/data-again".into(), "/dev*".into(), "/run*".into(), "/var/*".into()]),
            ..Default::default()
        };
        assert_eq!(selected(&cfg), ["/", "/boot/efi", "/home", "/mnt/nas", "/mnt/backup disk", "/data", "/srv/raid"]);
        // Excluding "/" reports its bind mount instead.
        let cfg = FilesystemConfig { include_mountpoints: vec!["/mnt/rootbind".into()], ..Default::default() };
        assert_eq!(selected(&cfg), ["/mnt/rootbind"]);
    }

    #[test]
    fn reports_usage_utilization_limit_and_inodes_as_df() {
        let clock = TickClock::default();
        let every = FilesystemConfig { exclude_mountpoints: Some(vec![]), ..Default::default() };
        let (mut c, _fake) = collector(&fixture_paths(TREE), &clock, &every);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(mountpoints(&p).len(), 14);
        let root =
            [("system.device", "/dev/nvme0n1p2"), ("system.filesystem.mode", "rw"), ("system.filesystem.mountpoint", "/"), ("system.filesystem.type", "ext4")];
        let with = |state| {
            let mut a = root.to_vec();
            a.push(("system.filesystem.state", state));
            a
        };
        // 4096-byte blocks: 24e6 in all, 10e6 free, 8.8e6 free to users.
        assert_eq!(value(&p, "system.filesystem.usage", &with("used")), Some(57_344_000_000.0));
        assert_eq!(value(&p, "system.filesystem.usage", &with("free")), Some(36_044_800_000.0));
        assert_eq!(value(&p, "system.filesystem.usage", &with("reserved")), Some(4_915_200_000.0));
        assert_eq!(value(&p, "system.filesystem.limit", &root), Some(98_304_000_000.0));
        let u = value(&p, "system.filesystem.utilization", &root).unwrap();
        assert!((u - 14.0 / 22.8).abs() < 1e-12, "{u}");
        assert_eq!(value(&p, "system.filesystem.inodes.usage", &with("used")), Some(1_000_000.0));
        assert_eq!(value(&p, "system.filesystem.inodes.usage", &with("free")), Some(5_000_000.0));
        // The bind mount reported for /dev/sda1: 600 of 1000 blocks used, 350 free, 50 reserved.
        let data = [
            ("system.device", "/dev/sda1"),
            ("system.filesystem.mode", "rw"),
            ("system.filesystem.mountpoint", "/mnt/data-again"),
            ("system.filesystem.type", "ext4"),
        ];
        assert_eq!(value(&p, "system.filesystem.limit", &data), Some(4_096_000.0));
        let u = value(&p, "system.filesystem.utilization", &data).unwrap();
        assert!((u - 600.0 / 950.0).abs() < 1e-12, "{u}");
        // Read-only mode and the escaped space.
        let raid = [
            ("system.device", "/dev/md0"),
            ("system.filesystem.mode", "ro"),
            ("system.filesystem.mountpoint", "/srv/raid"),
            ("system.filesystem.type", "ext4"),
        ];
        assert_eq!(value(&p, "system.filesystem.limit", &raid), Some(102_400.0));
        assert!(mountpoints(&p).contains(&"/mnt/backup disk".to_string()));
        assert_eq!(of(&p, "system.filesystem.usage").len(), 14 * 3);
        assert_eq!(of(&p, "system.filesystem.inodes.usage").len(), 14 * 2);
        assert_eq!(kind(&p, "system.filesystem.usage"), Some(Kind::UpDownCounter));
        assert_eq!(kind(&p, "system.filesystem.limit"), Some(Kind::UpDownCounter));
        assert_eq!(kind(&p, "system.filesystem.inodes.usage"), Some(Kind::UpDownCounter));
        assert_eq!(kind(&p, "system.filesystem.utilization"), Some(Kind::Gauge));
        assert_eq!(h.unit("system.filesystem.usage"), Some("By"));
        assert_eq!(h.unit("system.filesystem.utilization"), Some("1"));
        assert_eq!(h.unit("system.filesystem.inodes.usage"), Some("{inode}"));
    }

    #[test]
    fn a_hung_statvfs_skips_only_its_mount_is_not_called_again_and_is_logged_once() {
        let clock = TickClock::default();
        let cfg = FilesystemConfig { statvfs_timeout: ConfigDuration::millis(100), exclude_mountpoints: Some(vec![]), ..Default::default() };
        let (mut c, fake) = collector(&fixture_paths(TREE), &clock, &cfg);
        let mut h = Harness::new(&clock, &mut c);
        fake.hang("/mnt/nas");

        let t = Instant::now();
        let p = h.tick(&mut c).expect("the other mounts are reported");
        assert!(t.elapsed() < Duration::from_secs(5), "the tick waited {:?}", t.elapsed());
        let mps = mountpoints(&p);
        assert_eq!(mps.len(), 13);
        assert!(!mps.contains(&"/mnt/nas".to_string()));
        assert_eq!(c.hangs_logged, 1);

        // Still hung: skipped without a second call, and not logged again.
        let p = h.tick(&mut c).unwrap();
        assert_eq!(mountpoints(&p).len(), 13);
        assert_eq!(fake.calls("/mnt/nas"), 1);
        assert_eq!(fake.calls("/"), 2);
        assert_eq!(c.hangs_logged, 1);

        // The server comes back: once the hung call has returned, the mount is read again.
        fake.release();
        let mut back = false;
        for _ in 0..200 {
            if mountpoints(&h.tick(&mut c).unwrap()).len() == 14 {
                back = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(back, "the mount never came back");
        // Read by the returning call itself when it answered during a tick's wait, else by
        // one new call; never more.
        assert!((1..=2).contains(&fake.calls("/mnt/nas")));

        // A new hang is a new episode, logged again.
        fake.hang("/mnt/nas");
        assert_eq!(mountpoints(&h.tick(&mut c).unwrap()).len(), 13);
        assert_eq!(c.hangs_logged, 2);
        fake.release();
    }

    #[test]
    fn failing_mounts_are_skipped_and_the_collector_fails_only_when_none_can_be_read() {
        let clock = TickClock::default();
        let cfg = FilesystemConfig { include_mountpoints: vec!["/".into(), "/home".into()], ..Default::default() };
        let (mut c, fake) = collector(&fixture_paths(TREE), &clock, &cfg);
        let mut h = Harness::new(&clock, &mut c);
        fake.fail.lock().unwrap().push(("/home".into(), std::io::ErrorKind::PermissionDenied));
        assert_eq!(mountpoints(&h.tick(&mut c).unwrap()), ["/"]);
        fake.fail.lock().unwrap().push(("/".into(), std::io::ErrorKind::NotFound));
        let e = h.tick(&mut c).unwrap_err();
        assert!(e.to_string().contains("/: "), "{e}");
        assert!(h.collect().is_empty());
    }

    #[test]
    fn rebuilds_the_mount_list_only_when_the_table_changes_and_keeps_mount_state() {
        let (dir, paths) = fixture_copy(TREE);
        let clock = TickClock::default();
        let every = FilesystemConfig { exclude_mountpoints: Some(vec![]), ..Default::default() };
        let (mut c, _fake) = collector(&paths, &clock, &every);
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        let ids: Vec<u64> = c.slots.iter().map(|s| s.id).collect();
        let attrs = c.slots[0].attrs.clone();
        h.tick(&mut c).unwrap();
        assert!(Arc::ptr_eq(&attrs, &c.slots[0].attrs), "unchanged table: nothing rebuilt");
        // /mnt/nas is unmounted and a USB stick mounted.
        let text = std::fs::read_to_string(dir.path().join("proc/1/mountinfo")).unwrap();
        let text: String = text.lines().filter(|l| !l.contains("/mnt/nas")).map(|l| format!("{l}\n")).collect();
        write(&dir, "proc/1/mountinfo", &format!("{text}43 22 8:17 / /media/usb rw,nosuid,nodev - vfat /dev/sdb1 rw\n"));
        let p = h.tick(&mut c).unwrap();
        let mps = mountpoints(&p);
        assert!(mps.contains(&"/media/usb".to_string()) && !mps.contains(&"/mnt/nas".to_string()));
        assert_eq!(c.slots[0].id, ids[0], "mounts still there keep their state");
        assert_eq!(c.slots.len(), 14);
        assert_eq!(c.slots.last().unwrap().id, ids.iter().max().unwrap() + 1);
    }

    #[test]
    fn reads_the_mounts_of_this_host_with_the_real_statvfs() {
        let clock = TickClock::default();
        let mut c = FilesystemCollector::new(&HostPaths::default(), &clock, &FilesystemConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert!(!of(&p, "system.filesystem.limit").is_empty());
        for l in of(&p, "system.filesystem.limit") {
            let with = |state: &str| {
                let mut a: Vec<(&str, &str)> = l.1.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                a.push(("system.filesystem.state", state));
                value(&p, "system.filesystem.usage", &a).unwrap()
            };
            assert_eq!(with("used") + with("free") + with("reserved"), l.2, "{:?}", l.1);
        }
    }

    #[test]
    fn reads_its_config_section() {
        let c: FilesystemConfig = serde_json::from_str(r#"{"statvfs_timeout": "250ms", "exclude_types": ["overlay"]}"#).unwrap();
        assert_eq!(c.statvfs_timeout, ConfigDuration::millis(250));
        assert!(c.include_tmpfs && !c.include_images);
        assert_eq!(FilesystemConfig::default().statvfs_timeout, ConfigDuration::secs(1));
        assert!(serde_json::from_str::<FilesystemConfig>(r#"{"mountpoints": []}"#).is_err());
    }
}
