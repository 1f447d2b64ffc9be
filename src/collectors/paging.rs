//! The paging collector: swap space per device from `/proc/swaps`, and page faults and paging
//! operations from `/proc/vmstat`.
//!
//! ```text
//! Filename                Type        Size        Used    Priority      /proc/swaps (KiB)
//! /dev/nvme0n1p3          partition   16777212    1048576 -2
//! pgpgin 1416793                                                        /proc/vmstat
//! pswpin 0
//! pgfault 4413319
//! pgmajfault 1070
//! ```
//!
//! **Usage.** `system.paging.usage{system.device, system.paging.state}` is each swap area's
//! `Used` and `Size − Used` (KiB × 1024), as `swapon --show` lists them;
//! `system.paging.utilization` is each divided by `Size`. A host without swap reports neither.
//! A swap area that is turned off stops reporting. Where `/proc/swaps` does not exist (some
//! sandboxed kernels), `SwapTotal` and `SwapFree` of `/proc/meminfo` are reported once without
//! `system.device`.
//!
//! **Faults.** `system.paging.faults{system.paging.fault.type}`: `major` is `pgmajfault`
//! (faults that needed I/O), `minor` is `pgfault − pgmajfault`.
//!
//! **Operations.** `system.paging.operations{system.paging.direction, system.paging.fault.type}`
//! maps as the hostmetrics receiver does: `major` is swapping (`pswpin`/`pswpout`, pages),
//! `minor` is paging from and to files (`pgpgin`/`pgpgout`). The kernel counts the latter in
//! KiB, not pages: the values are reported as the kernel gives them, as `vmstat -s` shows them
//! ("pages paged in") and `vmstat`'s `bi`/`bo` columns rate them. (The hostmetrics receiver, via
//! gopsutil, multiplies all four by 4096, which gives neither pages nor operations.)
//!
//! All of these are counters since boot; they are reported as the kernel's values.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{meminfo, swaps, vmstat, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// `collector.paging`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagingConfig {
    /// Run this collector (default true; metricsd's `enable_memory` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// The attributes of one swap area, built once: `[used, free]`.
#[derive(Debug)]
struct DeviceAttrs([Vec<KeyValue>; 2]);

impl DeviceAttrs {
    fn new(device: Option<&str>) -> Self {
        DeviceAttrs(["used", "free"].map(|state| {
            let mut v = vec![KeyValue::new("system.paging.state", state)];
            if let Some(d) = device {
                v.push(KeyValue::new("system.device", std::sync::Arc::<str>::from(d)));
            }
            v
        }))
    }
}

/// What one tick read.
#[derive(Debug, Default)]
struct Snapshot {
    /// (attributes, size, used) in bytes, per swap area.
    devices: Vec<(Arc<DeviceAttrs>, u64, u64)>,
    /// `None` when `/proc/vmstat` could not be read (the swap areas are still reported).
    vm: Option<vmstat::VmStat>,
}

/// Reads `/proc/swaps` and `/proc/vmstat` every tick, keeping the files open.
pub struct PagingCollector {
    swaps: ProcFile,
    vmstat: vmstat::VmStatFile,
    meminfo: ProcFile,
    snap: Arc<SnapshotCell<Snapshot>>,
    attrs: HashMap<String, Arc<DeviceAttrs>>,
    no_device: Arc<DeviceAttrs>,
    /// Which of vmstat and the swap areas fail (each alone).
    sources: super::sources::Sources,
}

impl PagingCollector {
    /// A collector reading `paths`' `/proc/swaps` and `/proc/vmstat`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        PagingCollector {
            swaps: ProcFile::new(swaps::path(paths)),
            vmstat: vmstat::VmStatFile::new(paths),
            meminfo: ProcFile::new(meminfo::path(paths)),
            snap: SnapshotCell::new(clock),
            attrs: HashMap::new(),
            no_device: Arc::new(DeviceAttrs::new(None)),
            sources: super::sources::Sources::new("paging"),
        }
    }
}

const PAGING_USAGE: Metric<i64> = Metric::i64_up_down_counter("system.paging.usage", "By", "Swap space in use and free, per swap device")
    .attributes(&["system.device", "system.paging.state"])
    .source("/proc/swaps (/proc/meminfo SwapTotal, SwapFree without it)");
const PAGING_UTILIZATION: Metric<f64> = Metric::f64_gauge("system.paging.utilization", "1", "Fraction of each swap device in use and free")
    .attributes(&["system.device", "system.paging.state"])
    .source("/proc/swaps: Used ÷ Size");
const PAGING_FAULTS: Metric<u64> = Metric::u64_counter("system.paging.faults", "{fault}", "Page faults since boot, major (needing I/O) and minor")
    .attributes(&["system.paging.fault.type"])
    .source("/proc/vmstat pgmajfault, pgfault − pgmajfault");
const PAGING_OPERATIONS: Metric<u64> = Metric::u64_counter(
    "system.paging.operations",
    "{operation}",
    "Swap operations (major: pswpin/pswpout pages) and file paging (minor: pgpgin/pgpgout KiB) since boot",
)
.attributes(&["system.paging.direction", "system.paging.fault.type"])
.source("/proc/vmstat pswpin/pswpout (major), pgpgin/pgpgout (minor)");

/// The paging collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[PAGING_USAGE.spec(), PAGING_UTILIZATION.spec(), PAGING_FAULTS.spec(), PAGING_OPERATIONS.spec()];

impl Collector for PagingCollector {
    fn name(&self) -> &'static str {
        "paging"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        PAGING_USAGE.register(meter, move |obs| {
            snap.with(|s| {
                for (a, size, used) in &s.devices {
                    obs.observe(*used as i64, &a.0[0]);
                    obs.observe(size.saturating_sub(*used) as i64, &a.0[1]);
                }
            });
        });
        let snap = self.snap.clone();
        PAGING_UTILIZATION.register(meter, move |obs| {
            snap.with(|s| {
                for (a, size, used) in &s.devices {
                    if *size > 0 {
                        let used = (*used).min(*size);
                        obs.observe(used as f64 / *size as f64, &a.0[0]);
                        obs.observe((size - used) as f64 / *size as f64, &a.0[1]);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        let types = ["major", "minor"].map(|t| [KeyValue::new("system.paging.fault.type", t)]);
        PAGING_FAULTS.register(meter, move |obs| {
            snap.with(|s| {
                if let Some(vm) = &s.vm {
                    obs.observe(vm.pgmajfault, &types[0]);
                    obs.observe(vm.minor_faults(), &types[1]);
                }
            });
        });
        let snap = self.snap.clone();
        let ops = [("in", "major"), ("out", "major"), ("in", "minor"), ("out", "minor")]
            .map(|(d, t)| [KeyValue::new("system.paging.direction", d), KeyValue::new("system.paging.fault.type", t)]);
        PAGING_OPERATIONS.register(meter, move |obs| {
            snap.with(|s| {
                let Some(v) = &s.vm else { return };
                for (n, a) in [v.pswpin, v.pswpout, v.pgpgin, v.pgpgout].iter().zip(&ops) {
                    obs.observe(*n, a);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        // vmstat and the swap areas fail alone.
        self.sources.begin();
        let vm = self.vmstat.read();
        let mut snap = self.snap.take().unwrap_or_default();
        snap.devices.clear();
        snap.vm = self.sources.check("vmstat", vm);
        let swaps = self.read_swaps(&mut snap);
        self.sources.check("swaps", swaps);
        self.snap.set(snap);
        self.sources.end()
    }
}

impl PagingCollector {
    /// The swap areas from `/proc/swaps`, or from meminfo's totals without it.
    fn read_swaps(&mut self, snap: &mut Snapshot) -> Result<(), CollectorError> {
        match self.swaps.read() {
            Ok(text) => {
                let list = swaps::parse(text).map_err(|e| crate::procfs::at(self.swaps.path(), e))?;
                for s in list {
                    let a = match self.attrs.get(&s.filename) {
                        Some(a) => a.clone(),
                        None => {
                            let a = Arc::new(DeviceAttrs::new(Some(&s.filename)));
                            self.attrs.insert(s.filename.clone(), a.clone());
                            a
                        }
                    };
                    snap.devices.push((a, s.size, s.used));
                }
                // Forget swap areas turned off.
                if self.attrs.len() > snap.devices.len() {
                    let devices = &snap.devices;
                    self.attrs.retain(|_, a| devices.iter().any(|d| Arc::ptr_eq(&d.0, a)));
                }
            }
            Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => {
                let m = meminfo::read_file(&mut self.meminfo)?;
                if m.swap_total > 0 {
                    let used = m.swap_total.saturating_sub(m.swap_free);
                    snap.devices.push((self.no_device.clone(), m.swap_total, used));
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{fixture_copy, kind, of, value, write, Harness, Kind};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_faults_and_operations_and_no_usage_on_the_6_18_vm_without_swap() {
        let clock = TickClock::default();
        let mut c = PagingCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // vmstat: pgfault 4413319, pgmajfault 1070, pgpgin 1416793, pgpgout 1342104, pswp* 0.
        let fault = |t| value(&p, "system.paging.faults", &[("system.paging.fault.type", t)]);
        assert_eq!(fault("major"), Some(1070.0));
        assert_eq!(fault("minor"), Some(4_412_249.0)); // 4413319 − 1070
        let op = |d, t| value(&p, "system.paging.operations", &[("system.paging.direction", d), ("system.paging.fault.type", t)]);
        assert_eq!(op("in", "major"), Some(0.0));
        assert_eq!(op("out", "major"), Some(0.0));
        assert_eq!(op("in", "minor"), Some(1_416_793.0));
        assert_eq!(op("out", "minor"), Some(1_342_104.0));
        assert_eq!(kind(&p, "system.paging.faults"), Some(Kind::Counter));
        assert_eq!(kind(&p, "system.paging.operations"), Some(Kind::Counter));
        assert_eq!(h.unit("system.paging.faults"), Some("{fault}"));
        assert_eq!(h.unit("system.paging.operations"), Some("{operation}"));
        // proc/swaps has only its header.
        assert!(of(&p, "system.paging.usage").is_empty());
        assert!(of(&p, "system.paging.utilization").is_empty());
    }

    #[test]
    fn reports_used_and_free_per_swap_area_of_the_5_15_server() {
        let (dir, paths) = fixture_copy("linux-5.15-server");
        write(&dir, "proc/vmstat", "pgpgin 10\npgpgout 20\npswpin 3\npswpout 4\npgfault 100\npgmajfault 7\n");
        let clock = TickClock::default();
        let mut c = PagingCollector::new(&paths, &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        let usage = |dev, st| value(&p, "system.paging.usage", &[("system.device", dev), ("system.paging.state", st)]);
        let util = |dev, st| value(&p, "system.paging.utilization", &[("system.device", dev), ("system.paging.state", st)]);
        // /dev/nvme0n1p3 partition 16777212 1048576 -2 (KiB)
        assert_eq!(usage("/dev/nvme0n1p3", "used"), Some(1_073_741_824.0));
        assert_eq!(usage("/dev/nvme0n1p3", "free"), Some(16_106_123_264.0)); // 15728636 KiB
        assert_eq!(util("/dev/nvme0n1p3", "used"), Some(1048576.0 / 16777212.0));
        assert_eq!(util("/dev/nvme0n1p3", "free"), Some(15728636.0 / 16777212.0));
        // /swap\040file file 2097148 0 -3
        assert_eq!(usage("/swap file", "used"), Some(0.0));
        assert_eq!(usage("/swap file", "free"), Some(2_147_479_552.0));
        assert_eq!(util("/swap file", "free"), Some(1.0));
        assert_eq!(of(&p, "system.paging.usage").len(), 4);
        assert_eq!(kind(&p, "system.paging.usage"), Some(Kind::UpDownCounter));
        assert_eq!(kind(&p, "system.paging.utilization"), Some(Kind::Gauge));
        assert_eq!(h.unit("system.paging.usage"), Some("By"));
        let op = |d, t| value(&p, "system.paging.operations", &[("system.paging.direction", d), ("system.paging.fault.type", t)]);
        assert_eq!(op("in", "major"), Some(3.0));
        assert_eq!(op("out", "major"), Some(4.0));
        assert_eq!(op("out", "minor"), Some(20.0));
        assert_eq!(value(&p, "system.paging.faults", &[("system.paging.fault.type", "minor")]), Some(93.0));

        // swapoff /swap file: it stops reporting.
        write(&dir, "proc/swaps", "Filename Type Size Used Priority\n/dev/nvme0n1p3 partition 16777212 2097152 -2\n");
        let p = h.tick(&mut c).unwrap();
        assert_eq!(of(&p, "system.paging.usage").len(), 2);
        assert_eq!(value(&p, "system.paging.usage", &[("system.device", "/dev/nvme0n1p3"), ("system.paging.state", "used")]), Some(2_147_483_648.0));
    }

    #[test]
    fn falls_back_to_meminfo_totals_without_a_device_where_there_is_no_proc_swaps() {
        let (dir, paths) = fixture_copy("linux-2.6.32-old");
        write(&dir, "proc/vmstat", "pgfault 1\n");
        let clock = TickClock::default();
        let mut c = PagingCollector::new(&paths, &clock);
        let p = crate::collectors::testutil::collect_once(&clock, &mut c);
        // meminfo: SwapTotal 4194300 kB, SwapFree 4096068 kB → used 98232 kB.
        assert_eq!(value(&p, "system.paging.usage", &[("system.paging.state", "used")]), Some(100_589_568.0));
        assert_eq!(value(&p, "system.paging.usage", &[("system.paging.state", "free")]), Some(4_194_373_632.0));
        assert_eq!(value(&p, "system.paging.utilization", &[("system.paging.state", "used")]), Some(98232.0 / 4194300.0));
    }

    #[test]
    fn without_vmstat_the_swap_areas_are_still_reported() {
        // The 5.15 tree has swaps but no vmstat.
        let clock = TickClock::default();
        let mut c = PagingCollector::new(&fixture_paths("linux-5.15-server"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).expect("swaps were read");
        assert!(!of(&p, "system.paging.usage").is_empty());
        assert!(of(&p, "system.paging.faults").is_empty() && of(&p, "system.paging.operations").is_empty());
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["vmstat"]);
    }

    #[test]
    fn without_swaps_and_meminfo_the_faults_are_still_reported_and_without_anything_it_fails() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        std::fs::remove_file(dir.path().join("proc/meminfo")).unwrap();
        let _ = std::fs::remove_file(dir.path().join("proc/swaps"));
        let clock = TickClock::default();
        let mut c = PagingCollector::new(&paths, &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).expect("vmstat was read");
        assert!(!of(&p, "system.paging.faults").is_empty());
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["swaps"]);
        std::fs::remove_file(dir.path().join("proc/vmstat")).unwrap();
        let clock = TickClock::default();
        let mut c = PagingCollector::new(&paths, &clock);
        let mut h = Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).is_err());
        assert!(h.collect().is_empty());
    }
}
