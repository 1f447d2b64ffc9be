//! The rapl collector: energy used by the CPU packages, cores, uncore, DRAM and platform
//! (`psys`) as RAPL counts it, from `/sys/class/powercap/intel-rapl:*/energy_uj`, as
//! node_exporter's `rapl` collector (`node_rapl_<name>_joules_total`), named by the semantic
//! conventions as `hw.energy`.
//!
//! ```text
//! /sys/class/powercap/intel-rapl:0/name        package-0
//! /sys/class/powercap/intel-rapl:0/energy_uj   78926471020
//! ```
//!
//! becomes `hw.energy{hw.id="intel-rapl:0", hw.name="package-0", hw.type="cpu"}`. The kernel's
//! counter wraps at `max_energy_range_uj` (every few hours on a busy server); the reported
//! counter adds up the differences across wraps, so it only grows (it starts at the first
//! read's value). Reading `energy_uj` needs root since Linux 5.10: an agent without it reports
//! nothing here and says so once. A host without RAPL (most VMs) reports nothing and logs that
//! once at debug level.

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{rapl, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.rapl`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaplConfig {
    /// Run this collector (default true; it reports nothing without RAPL or without root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// One zone's counter file, its last raw value and the total reported.
struct Counter {
    file: ProcFile,
    max_range: u64,
    last: Option<u64>,
    /// µJ: the first read, plus every difference since.
    total: u64,
    attrs: Arc<[KeyValue]>,
}

/// A zone's attributes and joules.
type Point = (Arc<[KeyValue]>, f64);

/// Lists the zones at the first tick and reads their counters every tick.
pub struct RaplCollector {
    paths: HostPaths,
    counters: Option<Vec<Counter>>,
    presence: Presence,
    denied_logged: bool,
    snap: Arc<SnapshotCell<Vec<Point>>>,
}

impl RaplCollector {
    /// A collector of `paths`' RAPL zones.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        RaplCollector { paths: paths.clone(), counters: None, presence: Presence::new("rapl"), denied_logged: false, snap: SnapshotCell::new(clock) }
    }
}

/// `hw.type` of a zone: `memory` for DRAM, `enclosure` for the platform (`psys`), else `cpu`.
fn hw_type(name: &str) -> &'static str {
    match name {
        "dram" => "memory",
        "psys" => "enclosure",
        _ => "cpu",
    }
}

const ENERGY: Metric<f64> = Metric::f64_counter("hw.energy", "J", "Energy used by a RAPL domain (package, core, uncore, dram, psys)")
    .attributes(&["hw.id", "hw.name", "hw.type"])
    .source("/sys/class/powercap/intel-rapl:*/energy_uj (µJ, wraps at max_energy_range_uj; root only since 5.10)");

/// The rapl collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[ENERGY.spec()];

impl Collector for RaplCollector {
    fn name(&self) -> &'static str {
        "rapl"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        ENERGY.register(meter, move |obs| {
            snap.with(|v| {
                for (attrs, joules) in v {
                    obs.observe(*joules, attrs);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        if self.counters.is_none() {
            let Some(zones) = self.presence.check(rapl::scan(&self.paths))? else {
                return Ok(());
            };
            let counters = zones
                .into_iter()
                .map(|z| Counter {
                    file: ProcFile::new(z.energy),
                    max_range: z.max_range,
                    last: None,
                    total: 0,
                    attrs: vec![KeyValue::new("hw.id", z.id), KeyValue::new("hw.type", hw_type(&z.name)), KeyValue::new("hw.name", z.name)].into(),
                })
                .collect();
            self.counters = Some(counters);
        }
        let mut v = self.snap.take().unwrap_or_default();
        v.clear();
        for c in self.counters.iter_mut().flatten() {
            match rapl::read_energy(&mut c.file) {
                Ok(now) => {
                    c.total = match c.last {
                        None => now,
                        Some(prev) => c.total.saturating_add(rapl::delta(prev, now, c.max_range)),
                    };
                    c.last = Some(now);
                    v.push((c.attrs.clone(), c.total as f64 / 1e6));
                }
                Err(e) if e.is_io_kind(std::io::ErrorKind::PermissionDenied) => {
                    if !self.denied_logged {
                        tracing::info!(collector = "rapl", error = %e, "RAPL energy counters are readable by root only (Linux 5.10+); not reported");
                        self.denied_logged = true;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.snap.set(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, of, value, Harness};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_each_domains_energy_in_joules() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut RaplCollector::new(&fixture_paths("linux-6.8-sensors"), &clock));
        assert_eq!(value(&p, "hw.energy", &[("hw.id", "intel-rapl:0"), ("hw.name", "package-0"), ("hw.type", "cpu")]), Some(78_926.471_02));
        assert_eq!(value(&p, "hw.energy", &[("hw.id", "intel-rapl:0:2"), ("hw.name", "dram"), ("hw.type", "memory")]), Some(12_398.231_044));
        assert_eq!(of(&p, "hw.energy").len(), 5);
    }

    #[test]
    fn the_counter_keeps_growing_when_the_kernels_wraps() {
        let t = tempfile::tempdir().unwrap();
        let z = t.path().join("sys/class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("name"), "package-0\n").unwrap();
        std::fs::write(z.join("max_energy_range_uj"), "1000000\n").unwrap();
        std::fs::write(z.join("energy_uj"), "900000\n").unwrap();
        let clock = TickClock::default();
        let mut c = RaplCollector::new(&HostPaths::under(t.path()), &clock);
        let mut h = Harness::new(&clock, &mut c);
        assert_eq!(h.tick(&mut c).unwrap()[0].2, 0.9);
        std::fs::write(z.join("energy_uj"), "200000\n").unwrap();
        assert!((h.tick(&mut c).unwrap()[0].2 - 1.2).abs() < 1e-9, "0.9 J + 0.1 J to the wrap + 0.2 J after it");
    }

    #[test]
    fn a_host_without_rapl_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = RaplCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        assert!(Harness::new(&clock, &mut c).tick(&mut c).unwrap().is_empty());
    }
}
