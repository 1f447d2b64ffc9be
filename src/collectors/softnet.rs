//! The softnet collector: per-CPU counters of the network receive softirq from
//! `/proc/net/softnet_stat` (packets processed, dropped because the backlog was full, and times
//! the softirq ran out of budget with work left), as node_exporter's `softnet` collector.
//!
//! ```text
//! 00074ad9 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
//! ```
//!
//! Drops here mean `net.core.netdev_max_backlog` is too small; squeezes, that
//! `net.core.netdev_budget` is. The names are metricsd's (`system.linux.softnet.*`).

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::softnet::{self, SoftnetCpu};
use crate::procfs::ProcFile;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.softnet`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoftnetConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads `/proc/net/softnet_stat` every tick, keeping the file open.
pub struct SoftnetCollector {
    file: ProcFile,
    snap: Arc<SnapshotCell<Vec<(KeyValue, SoftnetCpu)>>>,
}

impl SoftnetCollector {
    /// A collector reading `paths`' `softnet_stat`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        SoftnetCollector { file: ProcFile::new(softnet::path(paths)), snap: SnapshotCell::new(clock) }
    }
}

const SOURCE: &str = "/proc/net/softnet_stat";
const PROCESSED: Metric<u64> = Metric::u64_counter("system.linux.softnet.processed", "{packet}", "Packets processed by the receive softirq, per CPU")
    .attributes(&["cpu.logical_number"])
    .source(SOURCE)
    .agent_name();
const DROPPED: Metric<u64> =
    Metric::u64_counter("system.linux.softnet.dropped", "{packet}", "Packets dropped because the CPU's backlog queue was full (netdev_max_backlog)")
        .attributes(&["cpu.logical_number"])
        .source(SOURCE)
        .agent_name();
const TIME_SQUEEZED: Metric<u64> = Metric::u64_counter(
    "system.linux.softnet.time_squeezed",
    "{event}",
    "Times the receive softirq ran out of budget or time with packets left (netdev_budget)",
)
.attributes(&["cpu.logical_number"])
.source(SOURCE)
.agent_name();

/// The softnet collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[PROCESSED.spec(), DROPPED.spec(), TIME_SQUEEZED.spec()];

impl Collector for SoftnetCollector {
    fn name(&self) -> &'static str {
        "softnet"
    }

    fn register(&mut self, meter: &Meter) {
        type Pick = fn(&SoftnetCpu) -> u64;
        for (metric, pick) in [(PROCESSED, (|c: &SoftnetCpu| c.processed) as Pick), (DROPPED, |c| c.dropped), (TIME_SQUEEZED, |c| c.time_squeezed)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|cpus| {
                    for (attr, c) in cpus {
                        obs.observe(pick(c), std::slice::from_ref(attr));
                    }
                });
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let cpus = softnet::read_file(&mut self.file)?;
        self.snap.set(cpus.into_iter().map(|c| (KeyValue::new("cpu.logical_number", i64::from(c.cpu)), c)).collect());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, of, value};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_each_cpus_counters_of_a_capture() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut SoftnetCollector::new(&fixture_paths("linux-6.18-vm"), &clock));
        assert_eq!(value(&p, "system.linux.softnet.processed", &[("cpu.logical_number", "0")]), Some(0x74ad9 as f64));
        assert_eq!(value(&p, "system.linux.softnet.processed", &[("cpu.logical_number", "1")]), Some(0x6df67 as f64));
        assert_eq!(value(&p, "system.linux.softnet.dropped", &[("cpu.logical_number", "1")]), Some(0.0));
        assert_eq!(of(&p, "system.linux.softnet.time_squeezed").len(), 2);
    }
}
