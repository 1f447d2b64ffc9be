//! Collectors: each reads its sources into a snapshot at the tick; OpenTelemetry asynchronous
//! instruments registered by the collector report from that snapshot when the reader collects.
//!
//! A collector's `refresh` does the I/O (on the scheduler's tick thread, never an async worker); its
//! instrument callbacks only read the snapshot. A snapshot is stamped with the tick that took it
//! ([`SnapshotCell`]), and callbacks report only a snapshot of the current tick: a collector that
//! failed or timed out reports nothing that tick instead of stale numbers.
//!
//! Adding a collector: one file here with its config section and `Collector` impl, and one line
//! in [`build`].

pub mod catalog;
pub mod cgroup;
pub mod config;
pub mod containers;
pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod gpu;
pub mod instruments;
pub mod load;
pub mod memory;
pub mod metric_settings;
pub mod network;
pub mod paging;
pub mod pressure;
pub mod process;
pub mod processes;
pub mod self_telemetry;
pub mod sources;
#[cfg(test)]
pub(crate) mod testutil;
pub mod textfile;
pub mod uptime;
// Kernel sources of node_exporter's default collectors (issue 24).
pub mod conntrack;
pub mod edac;
pub mod entropy;
pub mod filefd;
pub mod hwmon;
pub mod mdadm;
pub mod netstat;
pub mod nvme;
pub mod optional;
pub mod rapl;
pub mod softnet;
pub mod thermal;
pub mod timex;

use crate::units::HostPaths;
pub use config::CollectorConfig;
use opentelemetry::metrics::Meter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a collector's refresh failed, naming the source.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// A /proc or /sys file could not be read or parsed.
    #[error(transparent)]
    Proc(#[from] crate::procfs::ProcError),
    /// Anything else, with what was being read.
    #[error("{what}: {msg}")]
    Other { what: String, msg: String },
}

/// One source of metrics.
pub trait Collector: Send + 'static {
    /// The collector's name as used in config and self-telemetry (`memory`, `cpu`).
    fn name(&self) -> &'static str;
    /// Registers the instruments; their callbacks must only read snapshot cells.
    fn register(&mut self, meter: &Meter);
    /// Reads the sources and stores a new snapshot. Blocking I/O is fine here.
    fn refresh(&mut self) -> Result<(), CollectorError>;
    /// Whether a refresh may block for long (driver calls). Collectors that can't (plain /proc
    /// and /sys reads) are refreshed one after another on the tick's thread, with no thread
    /// hand-off; those that can get a blocking thread each and the per-collector time limit.
    fn may_block(&self) -> bool {
        false
    }
    /// Metrics read whole instead of observed through instruments (the textfile collector's
    /// parsed files), taken once after each successful refresh; they join the host's resource
    /// as one more instrumentation scope. Most collectors have none.
    fn take_scope_metrics(&mut self) -> Option<opentelemetry_proto::tonic::metrics::v1::ScopeMetrics> {
        None
    }
}

/// The tick counter shared by the scheduler and every snapshot cell.
#[derive(Debug, Clone, Default)]
pub struct TickClock(Arc<AtomicU64>);

impl TickClock {
    /// The current tick number.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    /// Starts the next tick; snapshots of earlier ticks stop reporting.
    pub fn advance(&self) -> u64 {
        self.0.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// A snapshot shared between a collector and its instrument callbacks, stamped with its tick.
#[derive(Debug)]
pub struct SnapshotCell<T> {
    clock: TickClock,
    inner: Mutex<Option<(u64, T)>>,
}

impl<T> SnapshotCell<T> {
    /// An empty cell on the given clock.
    pub fn new(clock: &TickClock) -> Arc<Self> {
        Arc::new(SnapshotCell { clock: clock.clone(), inner: Mutex::new(None) })
    }

    /// Stores the snapshot taken during the current tick.
    pub fn set(&self, value: T) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Some((self.clock.now(), value));
    }

    /// Runs `f` on the snapshot if it was taken during the current tick.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &*g {
            Some((tick, v)) if *tick == self.clock.now() => Some(f(v)),
            _ => None,
        }
    }

    /// Takes the previous snapshot out for reuse (its allocations), whatever its tick.
    pub fn take(&self) -> Option<T> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take().map(|(_, v)| v)
    }
}

/// `/proc/stat`, read once per tick for every collector that needs it (cpu for the CPU lines,
/// processes for the `processes` line): on a large host the file is long (an `intr` line with
/// a count per interrupt), and reading it twice would double the cost.
pub struct SharedStat {
    clock: TickClock,
    inner: Mutex<SharedStatInner>,
}

struct SharedStatInner {
    file: crate::procfs::ProcFile,
    /// The tick `stat` was read at.
    tick: u64,
    stat: Option<crate::procfs::stat::Stat>,
}

impl SharedStat {
    /// `paths`' `/proc/stat`, kept open.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Arc<Self> {
        let file = crate::procfs::ProcFile::new(crate::procfs::stat::path(paths));
        Arc::new(SharedStat { clock: clock.clone(), inner: Mutex::new(SharedStatInner { file, tick: 0, stat: None }) })
    }

    /// Runs `f` on this tick's `/proc/stat`, reading the file if no collector did yet.
    pub fn with<R>(&self, f: impl FnOnce(&crate::procfs::stat::Stat) -> R) -> Result<R, crate::procfs::ProcError> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let g = &mut *g;
        let st = match &g.stat {
            Some(st) if g.tick == now => st,
            _ => {
                g.stat = None;
                let st = crate::procfs::stat::read_file(&mut g.file)?;
                g.tick = now;
                g.stat.insert(st)
            }
        };
        Ok(f(st))
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters (none included)
/// and every other character only itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was and the name position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            // Let the last `*` swallow one more character and retry.
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The include/exclude rule every collector filter uses: `exclude` always wins; an empty
/// `include` falls back to `default` (the collector's own rule, or "everything").
pub fn passes(include: &[String], exclude: &[String], name: &str, default: impl FnOnce() -> bool) -> bool {
    let included = if include.is_empty() { default() } else { include.iter().any(|p| glob_match(p, name)) };
    included && !exclude.iter().any(|p| glob_match(p, name))
}

/// Whether a collector runs: its own `enabled` wins, then metricsd's `enable_*` switch, then
/// the collector's default.
pub fn enabled(own: Option<bool>, metricsd_switch: Option<bool>, default: bool) -> bool {
    own.or(metricsd_switch).unwrap_or(default)
}

/// Builds every enabled collector for this config.
pub fn build(c: &CollectorConfig, paths: &HostPaths, clock: &TickClock) -> Vec<Box<dyn Collector>> {
    let mut v: Vec<Box<dyn Collector>> = Vec::new();
    let stat = SharedStat::new(paths, clock);
    if enabled(c.memory.enabled, c.enable_memory, true) {
        v.push(Box::new(memory::MemoryCollector::new(paths, clock)));
    }
    if enabled(c.load.enabled, None, true) {
        v.push(Box::new(load::LoadCollector::new(paths, clock)));
    }
    if enabled(c.cpu.enabled, c.enable_cpu, true) {
        v.push(Box::new(cpu::CpuCollector::new(paths, clock, &c.cpu).with_stat(stat.clone())));
    }
    if enabled(c.paging.enabled, c.enable_memory, true) {
        v.push(Box::new(paging::PagingCollector::new(paths, clock)));
    }
    if enabled(c.network.enabled, c.enable_network, true) {
        v.push(Box::new(network::NetworkCollector::new(paths, clock, &c.network)));
    }
    if enabled(c.processes.enabled, None, true) {
        let every = c.processes.scan_interval.map(|d| d.get()).unwrap_or(std::time::Duration::from_secs(60));
        v.push(Box::new(processes::ProcessesCollector::new(paths, clock).with_scan_interval(every).with_stat(stat.clone())));
    }
    if enabled(c.disk.enabled, c.enable_disk, true) {
        v.push(Box::new(disk::DiskCollector::new(paths, clock, &c.disk)));
    }
    if enabled(c.filesystem.enabled, c.enable_disk, true) {
        v.push(Box::new(filesystem::FilesystemCollector::new(paths, clock, &c.filesystem)));
    }
    if enabled(c.process.enabled, None, false) {
        v.push(Box::new(process::ProcessCollector::new(paths, clock, &c.process)));
    }
    if enabled(c.uptime.enabled, None, true) {
        v.push(Box::new(uptime::UptimeCollector::new(paths, clock)));
    }
    if c.pressure.is_enabled(paths) {
        v.push(Box::new(pressure::PressureCollector::new(paths, clock)));
    }
    // The containers collector reports the agent's own container too, under the same
    // `container.*` names: with it, the cgroup collector is not built.
    let containers = c.containers.is_enabled(paths, crate::units::env::process_env);
    if containers {
        if c.cgroup.enabled == Some(true) {
            tracing::info!("collector.cgroup is left out: collector.containers reports every container, the agent's own included");
        }
        v.push(Box::new(containers::ContainersCollector::new(paths, clock, &c.containers, crate::units::env::process_env)));
    } else if c.cgroup.is_enabled(paths) {
        v.push(Box::new(cgroup::CgroupCollector::new(paths, clock, &c.cgroup)));
    }
    if enabled(c.gpu.enabled, c.enable_gpu, false) {
        v.push(Box::new(gpu::GpuCollector::new(&c.gpu, paths, clock)));
    }
    if c.textfile.directory.is_some() {
        v.push(Box::new(textfile::TextfileCollector::new(&c.textfile, clock)));
    }
    // Kernel sources of node_exporter's default collectors; absent sources report nothing.
    if enabled(c.netstat.enabled, c.enable_network, true) {
        v.push(Box::new(netstat::NetstatCollector::new(paths, clock)));
    }
    if enabled(c.softnet.enabled, c.enable_network, true) {
        v.push(Box::new(softnet::SoftnetCollector::new(paths, clock)));
    }
    if enabled(c.conntrack.enabled, c.enable_network, true) {
        v.push(Box::new(conntrack::ConntrackCollector::new(paths, clock)));
    }
    if enabled(c.filefd.enabled, None, true) {
        v.push(Box::new(filefd::FilefdCollector::new(paths, clock)));
    }
    if enabled(c.entropy.enabled, None, true) {
        v.push(Box::new(entropy::EntropyCollector::new(paths, clock)));
    }
    if enabled(c.timex.enabled, None, true) {
        v.push(Box::new(timex::TimexCollector::new(clock)));
    }
    if enabled(c.hwmon.enabled, None, true) {
        v.push(Box::new(hwmon::HwmonCollector::new(paths, clock, &c.hwmon)));
    }
    if enabled(c.thermal.enabled, None, true) {
        v.push(Box::new(thermal::ThermalCollector::new(paths, clock)));
    }
    if enabled(c.rapl.enabled, None, true) {
        v.push(Box::new(rapl::RaplCollector::new(paths, clock)));
    }
    if enabled(c.edac.enabled, None, true) {
        v.push(Box::new(edac::EdacCollector::new(paths, clock)));
    }
    if enabled(c.nvme.enabled, c.enable_disk, true) {
        v.push(Box::new(nvme::NvmeCollector::new(paths, clock)));
    }
    if enabled(c.mdadm.enabled, c.enable_disk, true) {
        v.push(Box::new(mdadm::MdadmCollector::new(paths, clock)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reports_only_during_the_tick_that_took_it() {
        let clock = TickClock::default();
        clock.advance();
        let cell = SnapshotCell::new(&clock);
        cell.set(5);
        assert_eq!(cell.with(|v| *v), Some(5));
        clock.advance();
        assert_eq!(cell.with(|v| *v), None, "stale snapshot must not report");
        assert_eq!(cell.take(), Some(5));
    }

    #[test]
    fn proc_stat_is_read_once_per_tick_for_every_collector_sharing_it() {
        let (dir, paths) = testutil::fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let shared = SharedStat::new(&paths, &clock);
        clock.advance();
        let first = shared.with(|s| s.processes).unwrap();
        let text = std::fs::read_to_string(dir.path().join("proc/stat")).unwrap();
        testutil::write(&dir, "proc/stat", &text.replace(&format!("processes {first}"), &format!("processes {}", first + 5)));
        assert_eq!(shared.with(|s| s.processes).unwrap(), first, "the same tick reuses the first read");
        clock.advance();
        assert_eq!(shared.with(|s| s.processes).unwrap(), first + 5, "the next tick reads again");
    }

    #[test]
    fn the_collectors_own_switch_wins_over_metricsds() {
        assert!(!enabled(Some(false), Some(true), true));
        assert!(!enabled(None, Some(false), true));
        assert!(enabled(None, None, true));
        assert!(!enabled(None, None, false));
    }
}
