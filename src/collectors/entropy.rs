//! The entropy collector: bits of entropy in the kernel's random pool and the pool's size, from
//! `/proc/sys/kernel/random/{entropy_avail,poolsize}`, as node_exporter's `entropy` collector.
//!
//! ```text
//! 256
//! ```
//!
//! Since Linux 5.18 both are 256 once the generator is seeded; a low value on an older kernel
//! means reads of `/dev/random` may block. The names are metricsd's (`system.linux.entropy.*`).

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::entropy::{Entropy, EntropyFiles};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.entropy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropyConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads the two files every tick, keeping them open.
pub struct EntropyCollector {
    files: EntropyFiles,
    snap: Arc<SnapshotCell<Entropy>>,
}

impl EntropyCollector {
    /// A collector reading `paths`' entropy files.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        EntropyCollector { files: EntropyFiles::new(paths), snap: SnapshotCell::new(clock) }
    }
}

const AVAILABLE: Metric<i64> = Metric::i64_gauge("system.linux.entropy.available", "bit", "Bits of entropy available in the kernel's random pool")
    .source("/proc/sys/kernel/random/entropy_avail")
    .agent_name();
const POOL_SIZE: Metric<i64> =
    Metric::i64_gauge("system.linux.entropy.pool_size", "bit", "Size of the kernel's random pool").source("/proc/sys/kernel/random/poolsize").agent_name();

/// The entropy collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[AVAILABLE.spec(), POOL_SIZE.spec()];

impl Collector for EntropyCollector {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn register(&mut self, meter: &Meter) {
        type Pick = fn(&Entropy) -> u64;
        for (metric, pick) in [(AVAILABLE, (|e: &Entropy| e.available) as Pick), (POOL_SIZE, |e| e.pool_size)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|e| obs.observe(pick(e).min(i64::MAX as u64) as i64, &[]));
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let e = self.files.read()?;
        self.snap.set(e);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{kind, value, Harness, Kind};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_the_available_bits_and_the_pool_size_of_a_capture() {
        let clock = TickClock::default();
        let mut c = EntropyCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.linux.entropy.available", &[]), Some(256.0));
        assert_eq!(value(&p, "system.linux.entropy.pool_size", &[]), Some(256.0));
        assert_eq!(kind(&p, "system.linux.entropy.available"), Some(Kind::Gauge));
        assert_eq!(h.unit("system.linux.entropy.pool_size"), Some("bit"));
    }

    #[test]
    fn a_host_without_the_files_fails_the_refresh() {
        let clock = TickClock::default();
        let mut c = EntropyCollector::new(&fixture_paths("linux-2.6.32-old"), &clock);
        assert!(Harness::new(&clock, &mut c).tick(&mut c).is_err());
    }
}
