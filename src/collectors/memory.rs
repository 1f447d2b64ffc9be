//! The memory collector: `system.memory.*` from `/proc/meminfo`.
//!
//! ```text
//! MemTotal:       24572316 kB
//! MemAvailable:   23120044 kB
//! ```
//!
//! `used` is `MemTotal − MemAvailable` (as `free` computes it, and as the hostmetrics receiver
//! does with its default feature gates; its `cached` also counts `SReclaimable`: the
//! definitions side by side are in tests/hostmetrics_compare.rs), so
//! `used + free + buffers + cached` may exceed the total: `free`, `buffers` and `cached` are the
//! kernel's own figures. On kernels without `MemAvailable` (before 3.14), `used` is
//! `MemTotal − MemFree − Buffers − Cached`.
//!
//! The huge page pool (`HugePages_Total`, `_Free`, `_Rsvd`, `_Surp`, in pages of
//! `Hugepagesize`) is reported as `system.memory.linux.hugepages.*`, metricsd's names (the
//! semantic conventions have none), where the kernel has hugetlbfs.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{meminfo, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.memory`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Run this collector (default true; metricsd's `enable_memory` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads `/proc/meminfo` every tick, keeping the file open.
pub struct MemoryCollector {
    file: ProcFile,
    snap: Arc<SnapshotCell<meminfo::MemInfo>>,
}

impl MemoryCollector {
    /// A collector reading `paths`' `/proc/meminfo`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        MemoryCollector { file: ProcFile::new(paths.proc("meminfo")), snap: SnapshotCell::new(clock) }
    }
}

/// Used memory: `MemTotal − MemAvailable`, or the pre-3.14 estimate.
pub fn used_bytes(m: &meminfo::MemInfo) -> u64 {
    match m.available {
        Some(a) => m.total.saturating_sub(a),
        None => m.total.saturating_sub(m.free + m.buffers + m.cached),
    }
}

fn states(m: &meminfo::MemInfo) -> [(&'static str, u64); 4] {
    [("used", used_bytes(m)), ("free", m.free), ("buffers", m.buffers), ("cached", m.cached)]
}

const USAGE: Metric<i64> = Metric::i64_up_down_counter("system.memory.usage", "By", "Reports memory in use by state")
    .attributes(&["system.memory.state"])
    .source("/proc/meminfo; used = MemTotal − MemAvailable (before 3.14: MemTotal − MemFree − Buffers − Cached)");
const UTILIZATION: Metric<f64> = Metric::f64_gauge("system.memory.utilization", "1", "Fraction of memory in use by state")
    .attributes(&["system.memory.state"])
    .source("/proc/meminfo; usage ÷ MemTotal");
const LIMIT: Metric<i64> = Metric::i64_up_down_counter("system.memory.limit", "By", "Total memory available to the system").source("/proc/meminfo MemTotal");
const AVAILABLE: Metric<i64> =
    Metric::i64_up_down_counter("system.memory.linux.available", "By", "Estimate of memory available for starting new applications (MemAvailable)")
        .source("/proc/meminfo MemAvailable");
const SHARED: Metric<i64> = Metric::i64_up_down_counter("system.memory.linux.shared", "By", "Shared memory (Shmem)").source("/proc/meminfo Shmem");
const SLAB_USAGE: Metric<i64> = Metric::i64_up_down_counter("system.memory.linux.slab.usage", "By", "Kernel slab memory by state (SReclaimable, SUnreclaim)")
    .attributes(&["system.memory.linux.slab.state"])
    .source("/proc/meminfo SReclaimable, SUnreclaim");

const HUGEPAGES_LIMIT: Metric<i64> =
    Metric::i64_up_down_counter("system.memory.linux.hugepages.limit", "{page}", "Huge pages in the pool (HugePages_Total), of the default huge page size")
        .source("/proc/meminfo HugePages_Total")
        .agent_name();
const HUGEPAGES_USAGE: Metric<i64> = Metric::i64_up_down_counter(
    "system.memory.linux.hugepages.usage",
    "{page}",
    "Huge pages of the pool by state: used (HugePages_Total − HugePages_Free), free",
)
.attributes(&["system.memory.linux.hugepages.state"])
.source("/proc/meminfo HugePages_Total, HugePages_Free")
.agent_name();
const HUGEPAGES_RESERVED: Metric<i64> =
    Metric::i64_up_down_counter("system.memory.linux.hugepages.reserved", "{page}", "Huge pages promised to mappings but not yet faulted in (HugePages_Rsvd)")
        .source("/proc/meminfo HugePages_Rsvd")
        .agent_name();
const HUGEPAGES_SURPLUS: Metric<i64> =
    Metric::i64_up_down_counter("system.memory.linux.hugepages.surplus", "{page}", "Huge pages above the configured pool size (HugePages_Surp)")
        .source("/proc/meminfo HugePages_Surp")
        .agent_name();
const HUGEPAGES_PAGE_SIZE: Metric<i64> =
    Metric::i64_up_down_counter("system.memory.linux.hugepages.page_size", "By", "The default huge page size (Hugepagesize)")
        .source("/proc/meminfo Hugepagesize")
        .agent_name();

/// The memory collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    USAGE.spec(),
    UTILIZATION.spec(),
    LIMIT.spec(),
    AVAILABLE.spec(),
    SHARED.spec(),
    SLAB_USAGE.spec(),
    HUGEPAGES_LIMIT.spec(),
    HUGEPAGES_RESERVED.spec(),
    HUGEPAGES_SURPLUS.spec(),
    HUGEPAGES_PAGE_SIZE.spec(),
    HUGEPAGES_USAGE.spec(),
];

impl Collector for MemoryCollector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn register(&mut self, meter: &Meter) {
        let state_attrs: Vec<[KeyValue; 1]> = ["used", "free", "buffers", "cached"].iter().map(|s| [KeyValue::new("system.memory.state", *s)]).collect();
        let (snap, attrs) = (self.snap.clone(), state_attrs.clone());
        USAGE.register(meter, move |obs| {
            snap.with(|m| {
                for (i, (_, v)) in states(m).iter().enumerate() {
                    obs.observe(*v as i64, &attrs[i]);
                }
            });
        });
        let (snap, attrs) = (self.snap.clone(), state_attrs);
        UTILIZATION.register(meter, move |obs| {
            snap.with(|m| {
                if m.total > 0 {
                    for (i, (_, v)) in states(m).iter().enumerate() {
                        obs.observe(*v as f64 / m.total as f64, &attrs[i]);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        LIMIT.register(meter, move |obs| {
            snap.with(|m| obs.observe(m.total as i64, &[]));
        });
        let snap = self.snap.clone();
        AVAILABLE.register(meter, move |obs| {
            snap.with(|m| {
                if let Some(a) = m.available {
                    obs.observe(a as i64, &[]);
                }
            });
        });
        let snap = self.snap.clone();
        SHARED.register(meter, move |obs| {
            snap.with(|m| obs.observe(m.shmem as i64, &[]));
        });
        let snap = self.snap.clone();
        let slab = [[KeyValue::new("system.memory.linux.slab.state", "reclaimable")], [KeyValue::new("system.memory.linux.slab.state", "unreclaimable")]];
        SLAB_USAGE.register(meter, move |obs| {
            snap.with(|m| {
                obs.observe(m.slab_reclaimable as i64, &slab[0]);
                obs.observe(m.slab_unreclaimable as i64, &slab[1]);
            });
        });
        type Pick = fn(&meminfo::MemInfo) -> Option<u64>;
        for (metric, pick) in [
            (HUGEPAGES_LIMIT, (|m: &meminfo::MemInfo| m.hugepages_total) as Pick),
            (HUGEPAGES_RESERVED, |m| m.hugepages_reserved),
            (HUGEPAGES_SURPLUS, |m| m.hugepages_surplus),
            (HUGEPAGES_PAGE_SIZE, |m| m.hugepage_size),
        ] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                if let Some(Some(v)) = snap.with(pick) {
                    obs.observe(v.min(i64::MAX as u64) as i64, &[]);
                }
            });
        }
        let snap = self.snap.clone();
        let hp = [[KeyValue::new("system.memory.linux.hugepages.state", "used")], [KeyValue::new("system.memory.linux.hugepages.state", "free")]];
        HUGEPAGES_USAGE.register(meter, move |obs| {
            snap.with(|m| {
                if let (Some(total), Some(free)) = (m.hugepages_total, m.hugepages_free) {
                    obs.observe(total.saturating_sub(free).min(i64::MAX as u64) as i64, &hp[0]);
                    obs.observe(free.min(i64::MAX as u64) as i64, &hp[1]);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let path = self.file.path().to_path_buf();
        let text = self.file.read()?;
        let m = meminfo::parse(text).map_err(|msg| crate::procfs::ProcError::Parse { path, line: 0, msg })?;
        self.snap.set(m);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(total: u64, free: u64, available: Option<u64>, buffers: u64, cached: u64) -> meminfo::MemInfo {
        meminfo::MemInfo {
            total,
            free,
            available,
            buffers,
            cached,
            shmem: 0,
            slab_reclaimable: 0,
            slab_unreclaimable: 0,
            swap_total: 0,
            swap_free: 0,
            swap_cached: 0,
            ..Default::default()
        }
    }

    #[test]
    fn reports_the_huge_page_pool_where_the_kernel_has_one() {
        use crate::collectors::testutil::{collect_once, fixture_copy, value, write};
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let text = std::fs::read_to_string(dir.path().join("proc/meminfo")).unwrap();
        let text = text
            .replace("HugePages_Total:       0", "HugePages_Total:     512")
            .replace("HugePages_Free:        0", "HugePages_Free:      500")
            .replace("HugePages_Rsvd:        0", "HugePages_Rsvd:        3");
        write(&dir, "proc/meminfo", &text);
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut MemoryCollector::new(&paths, &clock));
        assert_eq!(value(&p, "system.memory.linux.hugepages.limit", &[]), Some(512.0));
        assert_eq!(value(&p, "system.memory.linux.hugepages.usage", &[("system.memory.linux.hugepages.state", "used")]), Some(12.0));
        assert_eq!(value(&p, "system.memory.linux.hugepages.usage", &[("system.memory.linux.hugepages.state", "free")]), Some(500.0));
        assert_eq!(value(&p, "system.memory.linux.hugepages.reserved", &[]), Some(3.0));
        assert_eq!(value(&p, "system.memory.linux.hugepages.surplus", &[]), Some(0.0));
        assert_eq!(value(&p, "system.memory.linux.hugepages.page_size", &[]), Some(2_097_152.0));
        // A kernel without hugetlbfs: no huge page points, the rest as before.
        let without: String = text.lines().filter(|l| !l.starts_with("HugePages_") && !l.starts_with("Hugepagesize")).map(|l| format!("{l}\n")).collect();
        write(&dir, "proc/meminfo", &without);
        let p = collect_once(&clock, &mut MemoryCollector::new(&paths, &clock));
        assert!(p.iter().all(|p| !p.0.contains("hugepages")), "{p:?}");
        assert!(value(&p, "system.memory.limit", &[]).is_some());
    }

    #[test]
    fn used_is_total_minus_available() {
        assert_eq!(used_bytes(&mi(1000, 100, Some(700), 50, 200)), 300);
    }

    #[test]
    fn used_on_kernels_without_memavailable_subtracts_free_buffers_and_cached() {
        assert_eq!(used_bytes(&mi(1000, 100, None, 50, 200)), 650);
    }
}
