//! The cpu collector: `system.cpu.time`, `system.cpu.utilization`, `system.cpu.logical.count`,
//! `system.cpu.physical.count` and `system.cpu.frequency`.
//!
//! ```text
//! cpu  13341 0 3640 441601 375 0 88 237 0 0        /proc/stat: user nice system idle iowait
//! cpu0 6364 0 1763 221237 99 0 15 115 0 0               irq softirq steal guest guest_nice
//! ```
//!
//! **Time.** `system.cpu.time` is each `/proc/stat` column divided by USER_HZ (100 on every
//! Linux architecture in practice), by `cpu.mode`: `user`, `nice`, `system`, `idle`, `iowait`,
//! `interrupt` (irq + softirq) and `steal`. `guest` and `guest_nice` are not reported: the kernel
//! already counts them inside `user` and `nice`. With `per_cpu` (the default) there is one series
//! per online CPU and mode, with `cpu.logical_number`; without, one per mode from the `cpu` line
//! (all CPUs together, offline ones included, as the kernel sums them).
//!
//! **Utilization.** `system.cpu.utilization` is the share (0–1) of each mode in the CPU's time
//! between the last two refreshes: Δmode ÷ Δ(sum of all modes), as `top`, `mpstat` and `vmstat`
//! compute it from the same file. For the `cpu` line this is the share of all CPUs together (0–1,
//! not 0–N). Nothing is reported on the first refresh, nor for a CPU seen for the first time
//! (hot-plugged). The kernel's counters are not perfectly monotonic: `iowait` may dip on NOHZ
//! kernels and a CPU taken offline and back may restart lower. A mode that went down counts as
//! 0 (as `top` does); a CPU whose total went down reports no utilization that tick and becomes
//! the new baseline. Utilization is never negative and the modes of a CPU sum to 1.
//!
//! **Counter resets.** `system.cpu.time` reports the kernel's value as is. Should it go down
//! (the hot-plug cases above), backends see a counter reset (Prometheus `rate()`, the Collector's
//! cumulativetodelta processor), which is what it is.
//!
//! **Counts.** `system.cpu.logical.count` is the number of online CPUs (`cpuN` lines, as
//! `nproc` and the `processor` blocks of `/proc/cpuinfo` count them);
//! `system.cpu.physical.count` the distinct (package, core) pairs of `/proc/cpuinfo`, or of the
//! sysfs topology where cpuinfo has none (ARM, Xen PV), as `lscpu`'s "Core(s) per socket" ×
//! "Socket(s)". Both are re-read when the set of online CPUs changes.
//!
//! **Frequency.** `system.cpu.frequency` is each online CPU's
//! `/sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq` (kHz × 1000), or, where there is no
//! cpufreq (most VMs), the `cpu MHz` lines of `/proc/cpuinfo` (× 10⁶; x86 only). Always per CPU.
//! Without the `aperfmperf` CPU flag the kernel prints a constant there (the boot-time
//! `cpu_khz`), so cpuinfo is then read only when the set of online CPUs changes, not every tick:
//! formatting it (every CPU's flags) costs more than all other /proc files of a tick together.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SharedStat, SnapshotCell, TickClock};
use crate::procfs::{cpuinfo, stat, ProcError, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// `collector.cpu`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    /// Run this collector (default true; metricsd's `enable_cpu` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Report `system.cpu.time` and `system.cpu.utilization` per CPU, with
    /// `cpu.logical_number` (default true). `false` reports only all CPUs together, without the
    /// attribute (the semantic conventions' default, 7 series instead of 7 per CPU).
    pub per_cpu: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig { enabled: None, metrics: Default::default(), per_cpu: true }
    }
}

/// The `cpu.mode` values, in the order of [`modes`].
pub const MODES: [&str; 7] = ["user", "nice", "system", "idle", "iowait", "interrupt", "steal"];

/// A CPU's jiffies by mode, in the order of [`MODES`] (irq + softirq is `interrupt`).
pub fn modes(t: &stat::CpuTimes) -> [u64; 7] {
    [t.user, t.nice, t.system, t.idle, t.iowait, t.irq + t.softirq, t.steal]
}

/// Each mode's share of the time between two readings of one CPU; `None` when no time passed
/// or the CPU's total went down (a restart). A single mode that went down counts as 0.
pub fn utilization(prev: &[u64; 7], cur: &[u64; 7]) -> Option<[f64; 7]> {
    if cur.iter().sum::<u64>() < prev.iter().sum::<u64>() {
        return None;
    }
    let deltas: [u64; 7] = std::array::from_fn(|i| cur[i].saturating_sub(prev[i]));
    let total: u64 = deltas.iter().sum();
    (total > 0).then(|| deltas.map(|d| d as f64 / total as f64))
}

/// The attributes of one CPU (or of all together), built once.
#[derive(Debug)]
struct CpuAttrs {
    /// Per mode: `cpu.mode` (and `cpu.logical_number`).
    modes: [Vec<KeyValue>; 7],
    /// `cpu.logical_number` alone (empty for all CPUs together).
    cpu: Vec<KeyValue>,
}

impl CpuAttrs {
    fn new(cpu: Option<u32>) -> Self {
        let n: Vec<KeyValue> = cpu.map(|n| KeyValue::new("cpu.logical_number", n as i64)).into_iter().collect();
        CpuAttrs {
            modes: MODES.map(|m| {
                let mut v = vec![KeyValue::new("cpu.mode", m)];
                v.extend(n.iter().cloned());
                v
            }),
            cpu: n,
        }
    }
}

#[derive(Debug)]
struct Row {
    cpu: Option<u32>,
    attrs: Arc<CpuAttrs>,
    jiffies: [u64; 7],
    util: Option<[f64; 7]>,
}

/// What one tick read.
#[derive(Debug, Default)]
struct Snapshot {
    rows: Vec<Row>,
    logical: u64,
    physical: Option<u64>,
    /// (attributes with `cpu.logical_number`, Hz)
    freq: Vec<(Arc<CpuAttrs>, f64)>,
}

/// Reads `/proc/stat` (and the frequency sources) every tick, keeping the files open.
pub struct CpuCollector {
    paths: HostPaths,
    per_cpu: bool,
    stat: Arc<SharedStat>,
    cpuinfo: ProcFile,
    snap: Arc<SnapshotCell<Snapshot>>,
    /// Attributes by CPU number (`None`: all CPUs).
    attrs: HashMap<Option<u32>, Arc<CpuAttrs>>,
    /// The previous refresh's jiffies, for utilization.
    prev: Vec<(Option<u32>, [u64; 7])>,
    /// The online CPUs the counts and frequency files below were found for.
    known_cpus: Vec<u32>,
    physical: Option<u64>,
    freq_files: Vec<(u32, ProcFile)>,
    /// No cpufreq, but `/proc/cpuinfo` has `cpu MHz`.
    mhz_from_cpuinfo: bool,
    /// cpuinfo's `cpu MHz` when it is a constant (no `aperfmperf`): read once, reported as is.
    mhz_constant: Option<Vec<(u32, f64)>>,
    /// Whether the frequencies fail (alone; the times are still reported).
    sources: super::sources::Sources,
}

impl CpuCollector {
    /// A collector reading `paths`' `/proc/stat`, `/proc/cpuinfo` and cpufreq.
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &CpuConfig) -> Self {
        CpuCollector {
            paths: paths.clone(),
            per_cpu: config.per_cpu,
            stat: SharedStat::new(paths, clock),
            cpuinfo: ProcFile::new(paths.proc("cpuinfo")),
            snap: SnapshotCell::new(clock),
            attrs: HashMap::new(),
            prev: Vec::new(),
            known_cpus: Vec::new(),
            physical: None,
            freq_files: Vec::new(),
            mhz_from_cpuinfo: false,
            mhz_constant: None,
            sources: super::sources::Sources::new("cpu"),
        }
    }

    /// Reads `/proc/stat` through `stat`, shared with other collectors.
    pub fn with_stat(mut self, stat: Arc<SharedStat>) -> Self {
        self.stat = stat;
        self
    }

    fn attrs(&mut self, cpu: Option<u32>) -> Arc<CpuAttrs> {
        self.attrs.entry(cpu).or_insert_with(|| Arc::new(CpuAttrs::new(cpu))).clone()
    }

    /// Re-reads the physical core count and finds the frequency sources for `cpus`.
    fn rediscover(&mut self, cpus: &[u32]) {
        self.known_cpus.clear();
        self.known_cpus.extend_from_slice(cpus);
        let info = cpuinfo::read(&self.paths).ok();
        self.physical = info.as_ref().and_then(|i| i.physical_cores).map(|n| n as u64);
        self.freq_files = cpus
            .iter()
            .map(|&n| {
                let rel = format!("devices/system/cpu/cpu{n}/cpufreq/scaling_cur_freq");
                (n, self.paths.sys(&rel))
            })
            .filter(|(_, p)| p.exists())
            .map(|(n, p)| (n, ProcFile::new(p)))
            .collect();
        self.mhz_from_cpuinfo = self.freq_files.is_empty() && info.as_ref().is_some_and(|i| !i.mhz.is_empty());
        self.mhz_constant = info.filter(|i| self.mhz_from_cpuinfo && !i.mhz_measured).map(|i| i.mhz);
    }

    /// A refresh from this tick's `/proc/stat`.
    fn refresh_from(&mut self, st: &stat::Stat) -> Result<(), CollectorError> {
        if !self.known_cpus.iter().copied().eq(st.cpus.iter().map(|c| c.0)) {
            let cpus: Vec<u32> = st.cpus.iter().map(|c| c.0).collect();
            self.rediscover(&cpus);
        }
        let mut snap = self.snap.take().unwrap_or_default();
        snap.rows.clear();
        snap.freq.clear();
        let rows = if self.per_cpu { st.cpus.len() } else { 1 };
        for i in 0..rows {
            let (cpu, t) = if self.per_cpu { (Some(st.cpus[i].0), st.cpus[i].1) } else { (None, st.total) };
            let jiffies = modes(&t);
            let util = self.prev.iter().find(|p| p.0 == cpu).and_then(|p| utilization(&p.1, &jiffies));
            let attrs = self.attrs(cpu);
            snap.rows.push(Row { cpu, attrs, jiffies, util });
        }
        self.prev.clear();
        self.prev.extend(snap.rows.iter().map(|r| (r.cpu, r.jiffies)));
        snap.logical = st.cpus.len() as u64;
        snap.physical = self.physical;
        let mut freq = std::mem::take(&mut snap.freq);
        // Frequencies fail alone: the times and utilization are still reported.
        let r = self.read_frequencies(&mut freq);
        if self.sources.check("frequency", r).is_none() {
            freq.clear();
        }
        snap.freq = freq;
        self.snap.set(snap);
        Ok(())
    }

    fn read_frequencies(&mut self, out: &mut Vec<(Arc<CpuAttrs>, f64)>) -> Result<(), ProcError> {
        if !self.freq_files.is_empty() {
            for i in 0..self.freq_files.len() {
                let (n, file) = &mut self.freq_files[i];
                let n = *n;
                // A CPU going offline between the stat read and this one: skip it.
                let Ok(text) = file.read() else { continue };
                let khz = match text.trim().parse::<u64>() {
                    Ok(k) => k,
                    Err(_) => {
                        let msg = format!("not a number: {:?}", text.trim());
                        return Err(ProcError::parse(file.path(), 1, msg));
                    }
                };
                let a = self.attrs(Some(n));
                out.push((a, khz as f64 * 1000.0));
            }
        } else if let Some(constant) = self.mhz_constant.take() {
            for &(n, mhz) in &constant {
                out.push((self.attrs(Some(n)), mhz * 1e6));
            }
            self.mhz_constant = Some(constant);
        } else if self.mhz_from_cpuinfo {
            let text = self.cpuinfo.read()?;
            let info = cpuinfo::parse(text).map_err(|e| crate::procfs::at(self.cpuinfo.path(), e))?;
            for (n, mhz) in info.mhz {
                let a = self.attrs(Some(n));
                out.push((a, mhz * 1e6));
            }
        }
        Ok(())
    }
}

const CPU_TIME: Metric<f64> = Metric::f64_counter("system.cpu.time", "s", "Seconds each logical CPU spent on each mode")
    .attributes(&["cpu.mode", "cpu.logical_number"])
    .source("/proc/stat ÷ USER_HZ; interrupt = irq + softirq; cpu.logical_number only with per_cpu");
const CPU_UTILIZATION: Metric<f64> =
    Metric::f64_gauge("system.cpu.utilization", "1", "Share of each logical CPU's time spent on each mode since the last collection")
        .attributes(&["cpu.mode", "cpu.logical_number"])
        .source("Δ mode ÷ Δ total jiffies of /proc/stat between ticks (none on the first tick)");
const CPU_LOGICAL_COUNT: Metric<i64> =
    Metric::i64_up_down_counter("system.cpu.logical.count", "{cpu}", "Number of online logical CPUs").source("/proc/stat cpuN lines");
const CPU_PHYSICAL_COUNT: Metric<i64> = Metric::i64_up_down_counter("system.cpu.physical.count", "{cpu}", "Number of physical CPU cores")
    .source("/proc/cpuinfo, or /sys/devices/system/cpu/cpuN/topology");
const CPU_FREQUENCY: Metric<f64> = Metric::f64_gauge("system.cpu.frequency", "Hz", "Current frequency of each logical CPU")
    .attributes(&["cpu.logical_number"])
    .source("/sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq, else /proc/cpuinfo MHz");

/// The cpu collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[CPU_TIME.spec(), CPU_UTILIZATION.spec(), CPU_LOGICAL_COUNT.spec(), CPU_PHYSICAL_COUNT.spec(), CPU_FREQUENCY.spec()];

impl Collector for CpuCollector {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn register(&mut self, meter: &Meter) {
        let hz = stat::user_hz() as f64;
        let snap = self.snap.clone();
        CPU_TIME.register(meter, move |obs| {
            snap.with(|s| {
                for r in &s.rows {
                    for (j, a) in r.jiffies.iter().zip(&r.attrs.modes) {
                        obs.observe(*j as f64 / hz, a);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        CPU_UTILIZATION.register(meter, move |obs| {
            snap.with(|s| {
                for r in &s.rows {
                    if let Some(u) = &r.util {
                        for (v, a) in u.iter().zip(&r.attrs.modes) {
                            obs.observe(*v, a);
                        }
                    }
                }
            });
        });
        let snap = self.snap.clone();
        CPU_LOGICAL_COUNT.register(meter, move |obs| {
            snap.with(|s| obs.observe(s.logical as i64, &[]));
        });
        let snap = self.snap.clone();
        CPU_PHYSICAL_COUNT.register(meter, move |obs| {
            snap.with(|s| {
                if let Some(p) = s.physical {
                    obs.observe(p as i64, &[]);
                }
            });
        });
        let snap = self.snap.clone();
        CPU_FREQUENCY.register(meter, move |obs| {
            snap.with(|s| {
                for (a, hz) in &s.freq {
                    obs.observe(*hz, &a.cpu);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        // This tick's /proc/stat, read by whichever collector asked first, without a copy.
        let shared = self.stat.clone();
        shared.with(|st| self.refresh_from(st))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{fixture_copy, kind, of, value, write, Harness, Kind, Point};
    use crate::procfs::fixture_paths;

    fn secs(jiffies: u64) -> f64 {
        jiffies as f64 / stat::user_hz() as f64
    }

    fn time(p: &[Point], mode: &str, cpu: Option<&str>) -> Option<f64> {
        match cpu {
            Some(n) => value(p, "system.cpu.time", &[("cpu.mode", mode), ("cpu.logical_number", n)]),
            None => value(p, "system.cpu.time", &[("cpu.mode", mode)]),
        }
    }

    fn util(p: &[Point], mode: &str, cpu: Option<&str>) -> Option<f64> {
        match cpu {
            Some(n) => value(p, "system.cpu.utilization", &[("cpu.mode", mode), ("cpu.logical_number", n)]),
            None => value(p, "system.cpu.utilization", &[("cpu.mode", mode)]),
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn reports_seconds_per_cpu_and_mode_of_the_6_18_vm() {
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&fixture_paths("linux-6.18-vm"), &clock, &CpuConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // cpu0 6364 0 1763 221237 99 0 15 115 0 0
        assert_eq!(time(&p, "user", Some("0")), Some(secs(6364)));
        assert_eq!(time(&p, "nice", Some("0")), Some(0.0));
        assert_eq!(time(&p, "system", Some("0")), Some(secs(1763)));
        assert_eq!(time(&p, "idle", Some("0")), Some(secs(221237)));
        assert_eq!(time(&p, "iowait", Some("0")), Some(secs(99)));
        assert_eq!(time(&p, "interrupt", Some("0")), Some(secs(15))); // irq 0 + softirq 15
        assert_eq!(time(&p, "steal", Some("0")), Some(secs(115)));
        // cpu1 6976 0 1876 220363 276 0 72 122 0 0
        assert_eq!(time(&p, "user", Some("1")), Some(secs(6976)));
        assert_eq!(time(&p, "interrupt", Some("1")), Some(secs(72)));
        assert_eq!(of(&p, "system.cpu.time").len(), 14);
        assert_eq!(kind(&p, "system.cpu.time"), Some(Kind::Counter));
        assert_eq!(h.unit("system.cpu.time"), Some("s"));
        // No utilization before a second refresh.
        assert!(of(&p, "system.cpu.utilization").is_empty());
        assert_eq!(value(&p, "system.cpu.logical.count", &[]), Some(2.0));
        assert_eq!(value(&p, "system.cpu.physical.count", &[]), Some(2.0));
        assert_eq!(kind(&p, "system.cpu.logical.count"), Some(Kind::UpDownCounter));
        assert_eq!(h.unit("system.cpu.physical.count"), Some("{cpu}"));
        // No cpufreq on the VM: cpuinfo's "cpu MHz : 2445.404".
        assert!(close(value(&p, "system.cpu.frequency", &[("cpu.logical_number", "0")]), 2_445_404_000.0));
        assert!(close(value(&p, "system.cpu.frequency", &[("cpu.logical_number", "1")]), 2_445_404_000.0));
        assert_eq!(h.unit("system.cpu.frequency"), Some("Hz"));
    }

    #[test]
    fn reads_cpuinfo_every_tick_only_where_its_mhz_is_measured() {
        let (dir, paths) = crate::collectors::testutil::fixture_copy("linux-6.18-vm");
        let cpuinfo = dir.path().join("proc/cpuinfo");
        let original = std::fs::read_to_string(&cpuinfo).unwrap();
        let freq = |p: &[crate::collectors::testutil::Point]| value(p, "system.cpu.frequency", &[("cpu.logical_number", "0")]);
        for measured in [false, true] {
            let text = if measured { original.replace("flags\t\t:", "flags\t\t: aperfmperf") } else { original.clone() };
            std::fs::write(&cpuinfo, &text).unwrap();
            let clock = TickClock::default();
            let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
            let mut h = crate::collectors::testutil::Harness::new(&clock, &mut c);
            let first = h.tick(&mut c).unwrap();
            assert!(close(freq(&first), 2_445_404_000.0));
            std::fs::write(&cpuinfo, text.replace("2445.404", "1800.000")).unwrap();
            let second = h.tick(&mut c).unwrap();
            let expected = if measured { 1_800_000_000.0 } else { 2_445_404_000.0 };
            assert!(close(freq(&second), expected), "measured={measured}: {:?}", freq(&second));
        }
    }

    #[test]
    fn reports_only_the_all_cpus_line_without_a_cpu_number_when_per_cpu_is_off() {
        let clock = TickClock::default();
        let cfg = CpuConfig { per_cpu: false, ..CpuConfig::default() };
        let mut c = CpuCollector::new(&fixture_paths("linux-6.18-vm"), &clock, &cfg);
        let p = crate::collectors::testutil::collect_once(&clock, &mut c);
        // cpu  13341 0 3640 441601 375 0 88 237 0 0
        assert_eq!(of(&p, "system.cpu.time").len(), 7);
        assert_eq!(time(&p, "user", None), Some(secs(13341)));
        assert_eq!(time(&p, "system", None), Some(secs(3640)));
        assert_eq!(time(&p, "idle", None), Some(secs(441601))); // 4416.01 s, as /proc/uptime's idle
        assert_eq!(time(&p, "iowait", None), Some(secs(375)));
        assert_eq!(time(&p, "interrupt", None), Some(secs(88)));
        assert_eq!(time(&p, "steal", None), Some(secs(237)));
        assert_eq!(time(&p, "nice", None), Some(0.0));
        // Counts and frequency stay per CPU.
        assert_eq!(value(&p, "system.cpu.logical.count", &[]), Some(2.0));
        assert_eq!(of(&p, "system.cpu.frequency").len(), 2);
    }

    #[test]
    fn leaves_guest_time_out_because_user_already_holds_it() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        write(&dir, "proc/stat", "cpu  500 20 100 1000 10 5 6 7 300 10\ncpu0 500 20 100 1000 10 5 6 7 300 10\n");
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
        let p = crate::collectors::testutil::collect_once(&clock, &mut c);
        assert_eq!(time(&p, "user", Some("0")), Some(secs(500)));
        assert_eq!(time(&p, "nice", Some("0")), Some(secs(20)));
        assert_eq!(time(&p, "interrupt", Some("0")), Some(secs(11)));
        let sum: f64 = of(&p, "system.cpu.time").iter().map(|x| x.2).sum();
        assert!((sum - secs(500 + 20 + 100 + 1000 + 10 + 11 + 7)).abs() < 1e-9);
    }

    #[test]
    fn utilization_is_each_modes_share_of_the_time_between_two_refreshes() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        // cpu0: user +30, system +10, idle +50, iowait +5, irq +2, softirq +3: 100 jiffies.
        // cpu1: user +1, idle +3: 4 jiffies.
        write(
            &dir,
            "proc/stat",
            "cpu  13372 0 3650 441654 380 2 91 237 0 0\n\
             cpu0 6394 0 1773 221287 104 2 18 115 0 0\n\
             cpu1 6977 0 1876 220366 276 0 72 122 0 0\n\
             processes 6500\n",
        );
        let p = h.tick(&mut c).unwrap();
        assert!(close(util(&p, "user", Some("0")), 0.30));
        assert!(close(util(&p, "system", Some("0")), 0.10));
        assert!(close(util(&p, "idle", Some("0")), 0.50));
        assert!(close(util(&p, "iowait", Some("0")), 0.05));
        assert!(close(util(&p, "interrupt", Some("0")), 0.05));
        assert!(close(util(&p, "steal", Some("0")), 0.0));
        assert!(close(util(&p, "nice", Some("0")), 0.0));
        assert!(close(util(&p, "user", Some("1")), 0.25));
        assert!(close(util(&p, "idle", Some("1")), 0.75));
        assert_eq!(of(&p, "system.cpu.utilization").len(), 14);
        assert_eq!(kind(&p, "system.cpu.utilization"), Some(Kind::Gauge));
        assert_eq!(h.unit("system.cpu.utilization"), Some("1"));
        // An unchanged file: no time passed, no utilization.
        let p = h.tick(&mut c).unwrap();
        assert!(of(&p, "system.cpu.utilization").is_empty());
        assert_eq!(of(&p, "system.cpu.time").len(), 14);
    }

    #[test]
    fn counters_going_backwards_never_give_negative_utilization() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        // cpu0: iowait dips by 9 (NOHZ), user +40, idle +60: iowait counts 0, user 0.4, idle 0.6.
        // cpu1: taken offline and back with its counters restarted lower: no utilization.
        write(
            &dir,
            "proc/stat",
            "cpu  13381 0 3640 441661 366 0 88 237 0 0\n\
             cpu0 6404 0 1763 221297 90 0 15 115 0 0\n\
             cpu1 10 0 5 300 0 0 0 0 0 0\n",
        );
        let p = h.tick(&mut c).unwrap();
        assert!(close(util(&p, "iowait", Some("0")), 0.0));
        assert!(close(util(&p, "user", Some("0")), 0.4));
        assert!(close(util(&p, "idle", Some("0")), 0.6));
        assert_eq!(util(&p, "user", Some("1")), None);
        assert!(of(&p, "system.cpu.utilization").iter().all(|x| x.2 >= 0.0 && x.2 <= 1.0));
        // The kernel's value is reported as is: a reset for the backend.
        assert_eq!(time(&p, "user", Some("1")), Some(secs(10)));
        // Next tick, cpu1 has its new baseline: user +1, idle +1.
        write(
            &dir,
            "proc/stat",
            "cpu  13382 0 3640 441662 366 0 88 237 0 0\n\
             cpu0 6404 0 1763 221297 90 0 15 115 0 0\n\
             cpu1 11 0 5 301 0 0 0 0 0 0\n",
        );
        let p = h.tick(&mut c).unwrap();
        assert!(close(util(&p, "user", Some("1")), 0.5));
        assert!(close(util(&p, "idle", Some("1")), 0.5));
        // cpu0 did not move: no utilization for it.
        assert_eq!(util(&p, "user", Some("0")), None);
    }

    #[test]
    fn a_broken_frequency_file_leaves_out_only_the_frequencies() {
        let (dir, paths) = fixture_copy("linux-5.15-server");
        write(&dir, "proc/stat", "cpu 4 0 4 4 0 0 0 0\ncpu0 1 0 1 1\ncpu1 1 0 1 1\ncpu2 1 0 1 1\ncpu3 1 0 1 1\n");
        write(&dir, "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "fast\n");
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).expect("the times were read");
        assert!(value(&p, "system.cpu.time", &[("cpu.logical_number", "0"), ("cpu.mode", "user")]).is_some(), "{p:?}");
        assert!(of(&p, "system.cpu.frequency").is_empty());
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["frequency"]);
        write(&dir, "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "2100000\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.cpu.frequency", &[("cpu.logical_number", "1")]), Some(2_100_000_000.0));
        assert_eq!(c.sources.failing().count(), 0);
    }

    #[test]
    fn reads_cpufreq_and_counts_hyperthreads_once_on_the_5_15_server() {
        let (dir, paths) = fixture_copy("linux-5.15-server");
        write(&dir, "proc/stat", "cpu 4 0 4 4 0 0 0 0\ncpu0 1 0 1 1\ncpu1 1 0 1 1\ncpu2 1 0 1 1\ncpu3 1 0 1 1\n");
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.cpu.logical.count", &[]), Some(4.0));
        assert_eq!(value(&p, "system.cpu.physical.count", &[]), Some(2.0));
        // scaling_cur_freq: 3400012, 1200000, 3399871, 800250 kHz.
        let f = |n| value(&p, "system.cpu.frequency", &[("cpu.logical_number", n)]);
        assert_eq!(f("0"), Some(3_400_012_000.0));
        assert_eq!(f("1"), Some(1_200_000_000.0));
        assert_eq!(f("2"), Some(3_399_871_000.0));
        assert_eq!(f("3"), Some(800_250_000.0));
        // The frequency is read again every tick.
        write(&dir, "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "2100000\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.cpu.frequency", &[("cpu.logical_number", "1")]), Some(2_100_000_000.0));
    }

    #[test]
    fn numbers_cpus_as_the_kernel_does_when_one_is_offline() {
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&fixture_paths("linux-2.6.32-old"), &clock, &CpuConfig::default());
        let p = crate::collectors::testutil::collect_once(&clock, &mut c);
        // cpu0, cpu1, cpu3 (cpu2 offline); 9 columns.
        let mut cpus: Vec<&str> =
            of(&p, "system.cpu.time").iter().filter_map(|x| x.1.iter().find(|a| a.0 == "cpu.logical_number").map(|a| a.1.as_str())).collect();
        cpus.sort();
        cpus.dedup();
        assert_eq!(cpus, ["0", "1", "3"]);
        // cpu3 560902 560 172512 77822217 63907 0 1771 253 0
        assert_eq!(time(&p, "interrupt", Some("3")), Some(secs(1771)));
        assert_eq!(time(&p, "steal", Some("3")), Some(secs(253)));
        // cpu0 ... irq 1256 softirq 3101
        assert_eq!(time(&p, "interrupt", Some("0")), Some(secs(1256 + 3101)));
        assert_eq!(value(&p, "system.cpu.logical.count", &[]), Some(3.0));
        // No core ids in this cpuinfo: the sysfs topology has (0,0), (0,1), (0,1).
        assert_eq!(value(&p, "system.cpu.physical.count", &[]), Some(2.0));
        assert!(close(value(&p, "system.cpu.frequency", &[("cpu.logical_number", "3")]), 2_593_748_000.0));
    }

    #[test]
    fn recounts_cpus_when_one_goes_offline() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let clock = TickClock::default();
        let mut c = CpuCollector::new(&paths, &clock, &CpuConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        write(&dir, "proc/stat", "cpu  13341 0 3640 441601 375 0 88 237 0 0\ncpu0 6364 0 1763 221237 99 0 15 115 0 0\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.cpu.logical.count", &[]), Some(1.0));
        assert_eq!(of(&p, "system.cpu.time").len(), 7);
    }

    #[test]
    fn utilization_needs_elapsed_time_and_a_total_that_did_not_go_down() {
        assert_eq!(utilization(&[0; 7], &[0; 7]), None);
        assert_eq!(utilization(&[10, 0, 0, 0, 0, 0, 0], &[5, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(utilization(&[0; 7], &[1, 1, 1, 1, 0, 0, 0]), Some([0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0]));
    }
}
