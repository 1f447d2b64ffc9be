//! The disk collector: `system.disk.*` per block device from `/proc/diskstats`, and each
//! device's size from `/sys/block/DEV/size`.
//!
//! ```text
//!  259       0 nvme0n1 8837406 1123 701256730 2611389 52612233 27319854 2934766802 31548224 0 23125260 ...
//! ```
//!
//! | metric | instrument | unit | attributes |
//! | --- | --- | --- | --- |
//! | `system.disk.io` | Counter | By | `system.device`, `disk.io.direction` (read, write) |
//! | `system.disk.operations` | Counter | {operation} | `system.device`, `disk.io.direction` |
//! | `system.disk.io_time` | Counter | s | `system.device` |
//! | `system.disk.operation_time` | Counter | s | `system.device`, `disk.io.direction` |
//! | `system.disk.merged` | Counter | {operation} | `system.device`, `disk.io.direction` |
//! | `system.disk.limit` | UpDownCounter | By | `system.device` |
//!
//! `system.disk.io` is sectors × 512 (diskstats sectors are always 512 bytes, whatever the
//! device's block size), `io_time` is the time the device had I/O in progress (field 10, what
//! `iostat` turns into `%util`), `operation_time` the time requests of each direction spent,
//! summed over requests (fields 4 and 8, so it can exceed wall time on devices with deep
//! queues). `system.device` is the kernel's name (`sda`, `nvme0n1`, `dm-0`), without `/dev/`.
//!
//! **Which devices.** By default those node_exporter reports by default
//! ([`diskstats::is_reported_by_default`]): RAM disks (`ram*`, `zram*`), loop devices and floppies
//! are skipped, and so are partitions of whole disks that are already reported (`sda1`,
//! `nvme0n1p2`, `mmcblk0p1`, `xvdb3`), so each byte is counted once per disk. Device-mapper
//! (`dm-0`) and md RAID (`md0`) devices are reported beside the disks under them, as
//! node_exporter and the hostmetrics receiver do. `include` replaces that rule with a list of
//! names; `exclude` removes names in either case (see [`DiskConfig`]).
//!
//! **Cost.** `/proc/diskstats` formats every block device, loop devices and partitions
//! included (ten on a small VM, dozens on a host with snaps), and is the dearest of the disk
//! reads. It is read to list the devices when the collector starts and then at most every
//! [`LIST_REFRESH`]; in between, each reported device's counters come from its own
//! `/sys/class/block/DEV/stat` (kept open), the same counters of the same kernel structure
//! (Documentation/block/stat.rst). Measured on the 6.18 VM: 9.3 µs a read of diskstats against
//! 2.3 µs for `vda/stat`. So a new disk is reported up to 10 s after it appears. When a stat
//! file cannot be read (the device went away, no sysfs in a container), that tick reads
//! diskstats instead, and so does every tick of the next [`LIST_REFRESH`].
//!
//! **Size.** `system.disk.limit` is read when a device first appears and then at most once a
//! minute (a size changes only when a volume is resized); a device without a readable size file
//! reports no limit.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{diskstats, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the sizes of known devices are read again.
const LIMIT_REFRESH: Duration = Duration::from_secs(60);

/// How often `/proc/diskstats` is read to list the devices (and how long it is read every tick
/// after a sysfs `stat` file could not be read).
pub const LIST_REFRESH: Duration = Duration::from_secs(10);

/// `collector.disk`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    /// Run this collector (default true; metricsd's `enable_disk` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Devices to report, by kernel name or a pattern where `*` matches any run of characters
    /// (`sd*`, `nvme*n1`, `dm-*`). Empty (the default): node_exporter's default rule (whole
    /// disks, device-mapper and md devices; no RAM disks, loop devices, floppies or partitions
    /// of reported disks). Non-empty: exactly the matching devices, partitions and loop devices
    /// included if they match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Devices not to report, in the same form; wins over `include` and the default rule
    /// (`["dm-*"]` keeps only the physical disks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl DiskConfig {
    /// Whether the device `name` is reported.
    pub fn accepts(&self, name: &str) -> bool {
        super::passes(&self.include, &self.exclude, name, || diskstats::is_reported_by_default(name))
    }
}

/// The attributes of one device, built once.
#[derive(Debug)]
struct DevAttrs {
    /// `system.device` alone.
    dev: [KeyValue; 1],
    /// `system.device` with `disk.io.direction`: `[read, write]`.
    dir: [[KeyValue; 2]; 2],
}

impl DevAttrs {
    fn new(name: &str) -> Self {
        let name: Arc<str> = Arc::from(name);
        let dev = KeyValue::new("system.device", name);
        DevAttrs { dir: ["read", "write"].map(|d| [dev.clone(), KeyValue::new("disk.io.direction", d)]), dev: [dev] }
    }
}

/// A known device: its attributes, last size, the refresh that last saw it, its numbers and
/// its sysfs `stat` file.
struct Device {
    attrs: Arc<DevAttrs>,
    limit: Option<u64>,
    seen: u64,
    major: u32,
    minor: u32,
    stat: ProcFile,
}

/// The counters of one device in one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    /// `[read, write]` bytes.
    bytes: [u64; 2],
    /// `[read, write]` completed requests.
    ops: [u64; 2],
    /// `[read, write]` merged requests.
    merged: [u64; 2],
    /// `[read, write]` milliseconds.
    op_ms: [u64; 2],
    io_ms: u64,
}

impl Counters {
    fn of(d: &diskstats::DiskStats) -> Self {
        Counters {
            bytes: [d.read_bytes(), d.written_bytes()],
            ops: [d.reads, d.writes],
            merged: [d.reads_merged, d.writes_merged],
            op_ms: [d.read_ms, d.write_ms],
            io_ms: d.io_ticks_ms,
        }
    }
}

/// What one tick read: per device, in file order.
#[derive(Default)]
struct Snapshot {
    disks: Vec<(Arc<DevAttrs>, Counters, Option<u64>)>,
}

/// Reads `/proc/diskstats` (kept open) to list devices, each device's counters from sysfs
/// between listings, and device sizes from `/sys/block`.
pub struct DiskCollector {
    paths: HostPaths,
    config: DiskConfig,
    file: ProcFile,
    devices: HashMap<String, Device>,
    /// The reported devices in diskstats order, as last listed.
    order: Vec<String>,
    /// When diskstats was last read.
    listed_at: Option<Instant>,
    /// Until when diskstats is read every tick, after a sysfs `stat` file failed.
    diskstats_until: Option<Instant>,
    /// When the sizes of all known devices were last read.
    limits_read_at: Option<Instant>,
    generation: u64,
    snap: Arc<SnapshotCell<Snapshot>>,
}

impl DiskCollector {
    /// A collector reading `paths`' `/proc/diskstats` and `/sys/block`.
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &DiskConfig) -> Self {
        DiskCollector {
            paths: paths.clone(),
            config: config.clone(),
            file: ProcFile::new(diskstats::path(paths)),
            devices: HashMap::new(),
            order: Vec::new(),
            listed_at: None,
            diskstats_until: None,
            limits_read_at: None,
            generation: 0,
            snap: SnapshotCell::new(clock),
        }
    }
}

impl DiskCollector {
    /// Between listings, the listed devices' counters from their sysfs `stat` files; `None`
    /// when diskstats is to be read: a listing is due, or a `stat` file failed (this tick or
    /// within the last [`LIST_REFRESH`]).
    fn read_sysfs(&mut self, now: Instant) -> Option<Vec<diskstats::DiskStats>> {
        let fresh = self.listed_at.is_some_and(|t| now.saturating_duration_since(t) < LIST_REFRESH);
        if !fresh || self.diskstats_until.is_some_and(|t| now < t) {
            return None;
        }
        let mut out = Vec::with_capacity(self.order.len());
        for name in &self.order {
            let dev = self.devices.get_mut(name)?;
            let (major, minor) = (dev.major, dev.minor);
            let read = match dev.stat.read() {
                Ok(text) => diskstats::parse_stat(major, minor, name, text).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match read {
                Ok(d) => out.push(d),
                Err(e) => {
                    tracing::debug!(device = %name, error = %e, "Reading /proc/diskstats instead of the device's sysfs stat file");
                    self.diskstats_until = Some(now + LIST_REFRESH);
                    return None;
                }
            }
        }
        Some(out)
    }
}

/// A device's size in bytes, or `None` (logged at debug) when it cannot be read.
fn read_limit(paths: &HostPaths, dev: &str) -> Option<u64> {
    match diskstats::read_size_bytes(paths, dev) {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::debug!(device = dev, error = %e, "no size for block device");
            None
        }
    }
}

const DISK_IO: Metric<u64> = Metric::u64_counter("system.disk.io", "By", "Bytes read from and written to each disk")
    .attributes(&["system.device", "disk.io.direction"])
    .source("/proc/diskstats sectors × 512 (between listings every 10 s, /sys/class/block/DEV/stat: the same counters)");
const DISK_OPERATIONS: Metric<u64> = Metric::u64_counter("system.disk.operations", "{operation}", "Read and write requests completed by each disk")
    .attributes(&["system.device", "disk.io.direction"])
    .source("/proc/diskstats (or /sys/class/block/DEV/stat)");
const DISK_MERGED: Metric<u64> =
    Metric::u64_counter("system.disk.merged", "{operation}", "Adjacent read and write requests merged into one before reaching each disk")
        .attributes(&["system.device", "disk.io.direction"])
        .source("/proc/diskstats (or /sys/class/block/DEV/stat)");
const DISK_OPERATION_TIME: Metric<f64> =
    Metric::f64_counter("system.disk.operation_time", "s", "Time spent by read and write requests of each disk, summed over requests")
        .attributes(&["system.device", "disk.io.direction"])
        .source("/proc/diskstats ms (or /sys/class/block/DEV/stat)");
const DISK_IO_TIME: Metric<f64> = Metric::f64_counter("system.disk.io_time", "s", "Time each disk had I/O requests in progress")
    .attributes(&["system.device"])
    .source("/proc/diskstats io_ticks (or /sys/class/block/DEV/stat)");
const DISK_LIMIT: Metric<i64> = Metric::i64_up_down_counter("system.disk.limit", "By", "Size of each disk")
    .attributes(&["system.device"])
    .source("/sys/block/DEV/size × 512 (re-read each minute)");

/// The disk collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] =
    &[DISK_IO.spec(), DISK_OPERATIONS.spec(), DISK_MERGED.spec(), DISK_OPERATION_TIME.spec(), DISK_IO_TIME.spec(), DISK_LIMIT.spec()];

impl Collector for DiskCollector {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn register(&mut self, meter: &Meter) {
        type Pick = fn(&Counters) -> [u64; 2];
        for (metric, pick) in [(DISK_IO, (|c: &Counters| c.bytes) as Pick), (DISK_OPERATIONS, |c| c.ops), (DISK_MERGED, |c| c.merged)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|s| {
                    for (a, c, _) in &s.disks {
                        for (v, attrs) in pick(c).iter().zip(&a.dir) {
                            obs.observe(*v, attrs);
                        }
                    }
                });
            });
        }
        let snap = self.snap.clone();
        DISK_OPERATION_TIME.register(meter, move |obs| {
            snap.with(|s| {
                for (a, c, _) in &s.disks {
                    for (ms, attrs) in c.op_ms.iter().zip(&a.dir) {
                        obs.observe(*ms as f64 / 1000.0, attrs);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        DISK_IO_TIME.register(meter, move |obs| {
            snap.with(|s| {
                for (a, c, _) in &s.disks {
                    obs.observe(c.io_ms as f64 / 1000.0, &a.dev);
                }
            });
        });
        let snap = self.snap.clone();
        DISK_LIMIT.register(meter, move |obs| {
            snap.with(|s| {
                for (a, _, limit) in &s.disks {
                    if let Some(l) = limit {
                        obs.observe(*l as i64, &a.dev);
                    }
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let now = Instant::now();
        let stats = match self.read_sysfs(now) {
            Some(stats) => stats,
            None => {
                let config = &self.config;
                let stats = diskstats::read_file(&mut self.file, |n| config.accepts(n))?;
                self.listed_at = Some(now);
                self.order.clear();
                self.order.extend(stats.iter().map(|d| d.name.clone()));
                stats
            }
        };
        let reread = match self.limits_read_at {
            Some(t) => now.saturating_duration_since(t) >= LIMIT_REFRESH,
            None => true,
        };
        if reread {
            self.limits_read_at = Some(now);
        }
        self.generation += 1;
        let gen = self.generation;
        let mut snap = self.snap.take().unwrap_or_default();
        snap.disks.clear();
        for d in &stats {
            let dev = match self.devices.get_mut(d.name.as_str()) {
                Some(dev) => {
                    if reread {
                        dev.limit = read_limit(&self.paths, &d.name);
                    }
                    dev
                }
                None => self.devices.entry(d.name.clone()).or_insert(Device {
                    attrs: Arc::new(DevAttrs::new(&d.name)),
                    limit: read_limit(&self.paths, &d.name),
                    seen: gen,
                    major: d.major,
                    minor: d.minor,
                    stat: ProcFile::new(diskstats::stat_path(&self.paths, &d.name)),
                }),
            };
            dev.seen = gen;
            snap.disks.push((dev.attrs.clone(), Counters::of(d), dev.limit));
        }
        self.devices.retain(|_, d| d.seen == gen);
        self.snap.set(snap);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{fixture_copy, kind, of, value, write, Harness, Kind};
    use crate::procfs::fixture_paths;

    /// The devices reported, sorted.
    fn devices(p: &[crate::collectors::testutil::Point]) -> Vec<String> {
        let mut d: Vec<String> = of(p, "system.disk.io_time").iter().map(|p| p.1[0].1.clone()).collect();
        d.sort();
        d
    }

    #[test]
    fn reports_whole_disks_dm_and_md_devices_of_the_5_15_tree_by_default() {
        let clock = TickClock::default();
        let mut c = DiskCollector::new(&fixture_paths("linux-5.15-server"), &clock, &DiskConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // loop0, loop1, zram0 and the partitions nvme0n1p1-3 and sda1 are skipped.
        assert_eq!(devices(&p), ["dm-0", "dm-1", "md0", "nvme0n1", "sda", "sr0"]);
        let nvme = |dir| [("system.device", "nvme0n1"), ("disk.io.direction", dir)];
        // 701256730 and 2934766802 sectors of 512 bytes.
        assert_eq!(value(&p, "system.disk.io", &nvme("read")), Some(359_043_445_760.0));
        assert_eq!(value(&p, "system.disk.io", &nvme("write")), Some(1_502_600_602_624.0));
        assert_eq!(value(&p, "system.disk.operations", &nvme("read")), Some(8_837_406.0));
        assert_eq!(value(&p, "system.disk.operations", &nvme("write")), Some(52_612_233.0));
        assert_eq!(value(&p, "system.disk.merged", &nvme("read")), Some(1123.0));
        assert_eq!(value(&p, "system.disk.merged", &nvme("write")), Some(27_319_854.0));
        assert_eq!(value(&p, "system.disk.operation_time", &nvme("read")), Some(2611.389));
        assert_eq!(value(&p, "system.disk.operation_time", &nvme("write")), Some(31548.224));
        assert_eq!(value(&p, "system.disk.io_time", &[("system.device", "nvme0n1")]), Some(23125.26));
        // sda: 4917930 sectors read, 101324 ms busy.
        let sda_read = [("system.device", "sda"), ("disk.io.direction", "read")];
        assert_eq!(value(&p, "system.disk.io", &sda_read), Some(2_517_980_160.0));
        assert_eq!(value(&p, "system.disk.io_time", &[("system.device", "sda")]), Some(101.324));
        // The 5.15 tree has no /sys/block: no limits, and that is not an error.
        assert!(of(&p, "system.disk.limit").is_empty());
        for m in ["system.disk.io", "system.disk.operations", "system.disk.io_time", "system.disk.operation_time", "system.disk.merged"] {
            assert_eq!(kind(&p, m), Some(Kind::Counter), "{m}");
        }
        assert_eq!(h.unit("system.disk.io"), Some("By"));
        assert_eq!(h.unit("system.disk.io_time"), Some("s"));
        assert_eq!(h.unit("system.disk.operations"), Some("{operation}"));
        // 6 devices: io, operations, merged, operation_time by 2 directions; io_time by 1.
        assert_eq!(p.len(), 6 * (4 * 2 + 1));
    }

    #[test]
    fn reports_the_size_of_the_6_18_vms_disk_from_sys_block() {
        let clock = TickClock::default();
        let mut c = DiskCollector::new(&fixture_paths("linux-6.18-vm"), &clock, &DiskConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(devices(&p), ["vda"]);
        // sys/block/vda/size: 536870912 sectors = 256 GiB.
        assert_eq!(value(&p, "system.disk.limit", &[("system.device", "vda")]), Some(274_877_906_944.0));
        assert_eq!(kind(&p, "system.disk.limit"), Some(Kind::UpDownCounter));
        assert_eq!(h.unit("system.disk.limit"), Some("By"));
        // 2833586 sectors read, 2684208 written.
        let vda = |dir| [("system.device", "vda"), ("disk.io.direction", dir)];
        assert_eq!(value(&p, "system.disk.io", &vda("read")), Some(1_450_796_032.0));
        assert_eq!(value(&p, "system.disk.io", &vda("write")), Some(1_374_314_496.0));
    }

    #[test]
    fn include_replaces_the_default_rule_and_exclude_wins() {
        let clock = TickClock::default();
        let cfg =
            DiskConfig { include: vec!["loop*".into(), "vda".into()], exclude: vec!["loop[3-7]".into(), "loop7".into(), "loop6".into()], ..Default::default() };
        let mut c = DiskCollector::new(&fixture_paths("linux-6.18-vm"), &clock, &cfg);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // `[3-7]` is no pattern syntax here: only `*` is special.
        assert_eq!(devices(&p), ["loop0", "loop1", "loop2", "loop3", "loop4", "loop5", "vda"]);
        // loop0 has a size file (0 bytes); loop1 has none.
        assert_eq!(value(&p, "system.disk.limit", &[("system.device", "loop0")]), Some(0.0));
        assert_eq!(value(&p, "system.disk.limit", &[("system.device", "loop1")]), None);

        let cfg = DiskConfig { exclude: vec!["dm-*".into(), "sr*".into()], ..Default::default() };
        assert!(cfg.accepts("nvme0n1") && cfg.accepts("md0"));
        assert!(!cfg.accepts("dm-0") && !cfg.accepts("sr0") && !cfg.accepts("sda1") && !cfg.accepts("loop0"));
    }

    #[test]
    fn rereads_sizes_once_a_minute_and_reads_a_new_devices_size_at_once() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let mut c = DiskCollector::new(&paths, &clock, &DiskConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let vda = [("system.device", "vda")];
        assert_eq!(value(&h.tick(&mut c).unwrap(), "system.disk.limit", &vda), Some(274_877_906_944.0));
        // The volume grows; the size is not read again within the minute...
        write(&dir, "sys/block/vda/size", "1073741824\n");
        assert_eq!(value(&h.tick(&mut c).unwrap(), "system.disk.limit", &vda), Some(274_877_906_944.0));
        // ...but a new device's is, at once.
        let text = std::fs::read_to_string(dir.path().join("proc/diskstats")).unwrap();
        write(&dir, "proc/diskstats", &format!("{text} 254      16 vdb 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"));
        write(&dir, "sys/block/vdb/size", "2048\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.disk.limit", &[("system.device", "vdb")]), Some(1_048_576.0));
        assert_eq!(value(&p, "system.disk.limit", &vda), Some(274_877_906_944.0));
        // A minute later every size is read again.
        c.limits_read_at = c.limits_read_at.and_then(|t| t.checked_sub(LIMIT_REFRESH));
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.disk.limit", &vda), Some(549_755_813_888.0));
    }

    #[test]
    fn between_listings_counters_come_from_each_devices_sysfs_stat_file() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let mut c = DiskCollector::new(&paths, &clock, &DiskConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let vda_read = [("system.device", "vda"), ("disk.io.direction", "read")];
        let io_time = [("system.device", "vda")];
        // The first tick lists the devices from diskstats (2833586 sectors read).
        assert_eq!(value(&h.tick(&mut c).unwrap(), "system.disk.io", &vda_read), Some(1_450_796_032.0));
        // Then vda's own stat file (17 fields, as 6.18 writes it) is read, not diskstats.
        write(&dir, "sys/class/block/vda/stat", "   30000     6100  2900000    13000     7400    20600  2700000    23700        0    11400    38600        0        0        0        0      900      400\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.disk.io", &vda_read), Some(2_900_000.0 * 512.0));
        assert_eq!(value(&p, "system.disk.operations", &vda_read), Some(30000.0));
        assert_eq!(value(&p, "system.disk.io_time", &io_time), Some(11.4));
        assert_eq!(devices(&p), ["vda"], "still only the listed devices");
        // The stat file fails (on sysfs, a removed device's open file reads ENODEV; here, a
        // file that is not a stat file): diskstats again, at once...
        write(&dir, "sys/class/block/vda/stat", "gone\n");
        assert_eq!(value(&h.tick(&mut c).unwrap(), "system.disk.io", &vda_read), Some(1_450_796_032.0));
        // ...and for the next LIST_REFRESH, even once the file is back.
        write(&dir, "sys/class/block/vda/stat", "1 2 3 4 5 6 7 8 9 10 11\n");
        assert_eq!(value(&h.tick(&mut c).unwrap(), "system.disk.io", &vda_read), Some(1_450_796_032.0));
        c.diskstats_until = None;
        assert_eq!(value(&h.tick(&mut c).unwrap(), "system.disk.io", &vda_read), Some(3.0 * 512.0));
        // A disk added meanwhile shows at the next listing, LIST_REFRESH after the last.
        let text = std::fs::read_to_string(dir.path().join("proc/diskstats")).unwrap();
        write(&dir, "proc/diskstats", &format!("{text} 254      16 vdb 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"));
        assert_eq!(devices(&h.tick(&mut c).unwrap()), ["vda"]);
        c.listed_at = c.listed_at.and_then(|t| t.checked_sub(LIST_REFRESH));
        assert_eq!(devices(&h.tick(&mut c).unwrap()), ["vda", "vdb"]);
    }

    #[test]
    fn forgets_devices_that_disappear() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let cfg = DiskConfig { include: vec!["*".into()], ..Default::default() };
        let mut c = DiskCollector::new(&paths, &clock, &cfg);
        let mut h = Harness::new(&clock, &mut c);
        assert_eq!(devices(&h.tick(&mut c).unwrap()).len(), 10);
        write(&dir, "proc/diskstats", " 254       0 vda 29127 6078 2833586 12993 7324 20562 2684208 23612 0 11364 38511\n");
        assert_eq!(devices(&h.tick(&mut c).unwrap()), ["vda"]);
        assert_eq!(c.devices.len(), 1);
    }

    #[test]
    fn fails_when_diskstats_is_missing_and_reports_nothing() {
        let clock = TickClock::default();
        let mut c = DiskCollector::new(&HostPaths::under("/nonexistent/metricsd"), &clock, &DiskConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let e = h.tick(&mut c).unwrap_err();
        assert!(e.to_string().contains("diskstats"), "{e}");
        assert!(h.collect().is_empty());
    }
}
