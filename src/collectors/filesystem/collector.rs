//! The filesystem collector: the mount table kept open, the reported mounts (and their
//! attribute sets) rebuilt only when it changes, and statvfs of each every tick, inline or on
//! the pool; then `system.filesystem.*` from the answers.
//!
//! **Cost.** The mount table is kept open and read again only when the kernel says it changed
//! (`poll(2)` with `POLLPRI`, as systemd watches it): formatting it is the costliest /proc read
//! of a tick (~50–100 µs for 30 mounts, more on a Kubernetes node with hundreds).
//!
//! In a container reading its host (`HOST_ROOT`, `root_path`), mount points are looked up below
//! that root; `system.filesystem.mountpoint` is the host's path.
//!
//! The mount table is parsed, and the mounts selected and their attributes built, only when its
//! text changes; a steady tick reads it, compares it and calls statvfs.

use super::select::select;
use super::statvfs_pool::{may_hang, Done, Job, Pool, StatFn, BASE_THREADS};
use super::FilesystemConfig;
use crate::collectors::instruments::{Metric, MetricSpec};
use crate::collectors::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::mountinfo::{self, Mount};
use crate::procfs::statvfs::{self, FsStats};
use crate::procfs::ProcFile;
use crate::units::ConfigDuration;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

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
    .receiver_name("hostmetrics");

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
    use crate::procfs::fixture_paths;
    use std::path::Path;
    use std::sync::{Condvar, Mutex};
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
}
