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

/// The memory collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[USAGE.spec(), UTILIZATION.spec(), LIMIT.spec(), AVAILABLE.spec(), SHARED.spec(), SLAB_USAGE.spec()];

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
        }
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
