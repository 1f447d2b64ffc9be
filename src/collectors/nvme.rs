//! The nvme collector: one info point per NVMe controller with its model, serial number,
//! firmware and state, from `/sys/class/nvme`, as node_exporter's `nvme` collector
//! (`node_nvme_info`).
//!
//! ```text
//! /sys/class/nvme/nvme0/model         Samsung SSD 980 PRO 1TB
//! /sys/class/nvme/nvme0/state         live
//! ```
//!
//! becomes `system.linux.nvme.info{hw.id="nvme0", hw.model=…, hw.serial_number=…,
//! hw.firmware_version=…, system.linux.nvme.state="live"} 1`: join it on `hw.id` to see which
//! drive a disk is, and alert on a state other than `live`. A host without NVMe reports
//! nothing and logs that once at debug level.

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::nvme;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.nvme`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NvmeConfig {
    /// Run this collector (default true; it reports nothing where there is no NVMe controller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads the controllers every tick (a handful of small files).
pub struct NvmeCollector {
    paths: HostPaths,
    presence: Presence,
    snap: Arc<SnapshotCell<Vec<Vec<KeyValue>>>>,
}

impl NvmeCollector {
    /// A collector of `paths`' NVMe controllers.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        NvmeCollector { paths: paths.clone(), presence: Presence::new("nvme"), snap: SnapshotCell::new(clock) }
    }
}

const INFO: Metric<i64> =
    Metric::i64_gauge("system.linux.nvme.info", "{controller}", "An NVMe controller (always 1), with its model, serial number, firmware and state")
        .attributes(&["hw.id", "hw.model", "hw.serial_number", "hw.firmware_version", "system.linux.nvme.state"])
        .source("/sys/class/nvme/nvme*/{model,serial,firmware_rev,state}")
        .agent_name();

/// The nvme collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[INFO.spec()];

impl Collector for NvmeCollector {
    fn name(&self) -> &'static str {
        "nvme"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        INFO.register(meter, move |obs| {
            snap.with(|v| {
                for attrs in v {
                    obs.observe(1, attrs);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        let Some(controllers) = self.presence.check(nvme::read(&self.paths))? else {
            return Ok(());
        };
        self.snap.set(
            controllers
                .into_iter()
                .map(|c| {
                    vec![
                        KeyValue::new("hw.id", c.device),
                        KeyValue::new("hw.model", c.model),
                        KeyValue::new("hw.serial_number", c.serial),
                        KeyValue::new("hw.firmware_version", c.firmware),
                        KeyValue::new("system.linux.nvme.state", c.state),
                    ]
                })
                .collect(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, value, Harness};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_one_info_point_per_controller() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut NvmeCollector::new(&fixture_paths("linux-6.8-sensors"), &clock));
        let attrs = [
            ("hw.id", "nvme1"),
            ("hw.model", "INTEL SSDPE2KX040T8"),
            ("hw.serial_number", "PHLJ9123004A4P0DGN"),
            ("hw.firmware_version", "VDV10170"),
            ("system.linux.nvme.state", "resetting"),
        ];
        assert_eq!(value(&p, "system.linux.nvme.info", &attrs), Some(1.0));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_host_without_nvme_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = NvmeCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        assert!(Harness::new(&clock, &mut c).tick(&mut c).unwrap().is_empty());
    }
}
