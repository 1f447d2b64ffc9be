//! The conntrack collector: entries in the netfilter connection-tracking table and its limit,
//! from `/proc/sys/net/netfilter/nf_conntrack_{count,max}`, as node_exporter's `conntrack`
//! collector and the hostmetrics receiver's `system.network.conntrack.*` (off by default
//! there).
//!
//! ```text
//! 0
//! ```
//!
//! The files exist only while the `nf_conntrack` module is loaded: without them the collector
//! reports nothing, logs that once at debug level, and is not failing. A full table drops new
//! connections (`nf_conntrack: table full, dropping packet`).

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::conntrack::{Conntrack, ConntrackFiles};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.conntrack`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConntrackConfig {
    /// Run this collector (default true; it reports nothing where `nf_conntrack` is not loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads the two files every tick, keeping them open.
pub struct ConntrackCollector {
    files: ConntrackFiles,
    presence: Presence,
    snap: Arc<SnapshotCell<Conntrack>>,
}

impl ConntrackCollector {
    /// A collector reading `paths`' conntrack files.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        ConntrackCollector { files: ConntrackFiles::new(paths), presence: Presence::new("conntrack"), snap: SnapshotCell::new(clock) }
    }
}

const COUNT: Metric<i64> = Metric::i64_up_down_counter("system.network.conntrack.count", "{entry}", "Entries in the connection-tracking table")
    .source("/proc/sys/net/netfilter/nf_conntrack_count")
    .receiver_name("hostmetrics");
const MAX: Metric<i64> = Metric::i64_up_down_counter("system.network.conntrack.max", "{entry}", "Limit of the connection-tracking table (nf_conntrack_max)")
    .source("/proc/sys/net/netfilter/nf_conntrack_max")
    .receiver_name("hostmetrics");

/// The conntrack collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[COUNT.spec(), MAX.spec()];

impl Collector for ConntrackCollector {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn register(&mut self, meter: &Meter) {
        type Pick = fn(&Conntrack) -> u64;
        for (metric, pick) in [(COUNT, (|c: &Conntrack| c.count) as Pick), (MAX, |c| c.max)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|c| obs.observe(pick(c).min(i64::MAX as u64) as i64, &[]));
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        if let Some(c) = self.presence.check(self.files.read())? {
            self.snap.set(c);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, value, Harness};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_the_entries_and_the_limit_of_a_capture() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut ConntrackCollector::new(&fixture_paths("linux-6.18-vm"), &clock));
        assert_eq!(value(&p, "system.network.conntrack.count", &[]), Some(0.0));
        assert_eq!(value(&p, "system.network.conntrack.max", &[]), Some(262144.0));
    }

    #[test]
    fn without_the_module_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = ConntrackCollector::new(&fixture_paths("linux-5.15-server"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).unwrap().is_empty());
        assert!(h.tick(&mut c).unwrap().is_empty());
    }
}
