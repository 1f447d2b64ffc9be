//! The thermal collector: the kernel's thermal zones as `hw.temperature` and its cooling
//! devices' states, from `/sys/class/thermal`, as node_exporter's `thermal_zone` collector
//! (`node_thermal_zone_temp`, `node_cooling_device_{cur,max}_state`).
//!
//! ```text
//! /sys/class/thermal/thermal_zone1/type   x86_pkg_temp
//! /sys/class/thermal/thermal_zone1/temp   45000
//! ```
//!
//! becomes `hw.temperature{hw.id="thermal_zone1", hw.name="x86_pkg_temp", hw.type="temperature",
//! hw.sensor_location="x86_pkg_temp"} 45`. A zone is often also an hwmon chip (`acpitz`), then
//! both collectors report it, under different `hw.id`s, as node_exporter does. The zones are
//! listed at the first tick and again when the directory changes. A host without thermal
//! zones (most VMs) reports nothing and logs that once at debug level.

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::thermal;
use crate::procfs::ProcFile;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.thermal`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThermalConfig {
    /// Run this collector (default true; it reports nothing where there are no thermal zones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// This tick's values.
#[derive(Debug, Default)]
struct Values {
    temps: Vec<(Arc<[KeyValue]>, f64)>,
    /// (attributes, current state, most states).
    cooling: Vec<(Arc<[KeyValue]>, i64, Option<i64>)>,
}

struct ZoneFile {
    file: ProcFile,
    attrs: Arc<[KeyValue]>,
}

struct CoolingFiles {
    cur: ProcFile,
    max: ProcFile,
    attrs: Arc<[KeyValue]>,
}

/// Lists the zones when they change and reads them every tick.
pub struct ThermalCollector {
    paths: HostPaths,
    listing: Option<Vec<String>>,
    zones: Vec<ZoneFile>,
    cooling: Vec<CoolingFiles>,
    presence: Presence,
    snap: Arc<SnapshotCell<Values>>,
}

impl ThermalCollector {
    /// A collector of `paths`' thermal zones.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        ThermalCollector {
            paths: paths.clone(),
            listing: None,
            zones: Vec::new(),
            cooling: Vec::new(),
            presence: Presence::new("thermal"),
            snap: SnapshotCell::new(clock),
        }
    }

    fn rescan(&mut self) -> Result<(), CollectorError> {
        let s = thermal::scan(&self.paths)?;
        self.zones = s
            .zones
            .into_iter()
            .map(|z| ZoneFile {
                file: ProcFile::new(z.temp),
                attrs: vec![
                    KeyValue::new("hw.id", z.zone),
                    KeyValue::new("hw.name", z.kind.clone()),
                    KeyValue::new("hw.type", "temperature"),
                    KeyValue::new("hw.sensor_location", z.kind),
                ]
                .into(),
            })
            .collect();
        self.cooling = s
            .cooling
            .into_iter()
            .map(|c| CoolingFiles {
                cur: ProcFile::new(c.cur_state),
                max: ProcFile::new(c.max_state),
                attrs: vec![KeyValue::new("system.linux.cooling_device.id", c.device), KeyValue::new("system.linux.cooling_device.type", c.kind)].into(),
            })
            .collect();
        Ok(())
    }
}

const TEMPERATURE: Metric<f64> = Metric::f64_gauge("hw.temperature", "Cel", "Temperature of a thermal zone")
    .attributes(&["hw.id", "hw.name", "hw.type", "hw.sensor_location"])
    .source("/sys/class/thermal/thermal_zone*/temp (m°C), type");
const COOLING_STATE: Metric<i64> = Metric::i64_gauge("system.linux.cooling_device.state", "{state}", "Current state of a cooling device (0: not cooling)")
    .attributes(&["system.linux.cooling_device.id", "system.linux.cooling_device.type"])
    .source("/sys/class/thermal/cooling_device*/cur_state")
    .agent_name();
const COOLING_MAX_STATE: Metric<i64> = Metric::i64_gauge("system.linux.cooling_device.max_state", "{state}", "Highest state of a cooling device")
    .attributes(&["system.linux.cooling_device.id", "system.linux.cooling_device.type"])
    .source("/sys/class/thermal/cooling_device*/max_state")
    .agent_name();

/// The thermal collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[TEMPERATURE.spec(), COOLING_STATE.spec(), COOLING_MAX_STATE.spec()];

impl Collector for ThermalCollector {
    fn name(&self) -> &'static str {
        "thermal"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        TEMPERATURE.register(meter, move |obs| {
            snap.with(|v| {
                for (attrs, t) in &v.temps {
                    obs.observe(*t, attrs);
                }
            });
        });
        let snap = self.snap.clone();
        COOLING_STATE.register(meter, move |obs| {
            snap.with(|v| {
                for (attrs, cur, _) in &v.cooling {
                    obs.observe(*cur, attrs);
                }
            });
        });
        let snap = self.snap.clone();
        COOLING_MAX_STATE.register(meter, move |obs| {
            snap.with(|v| {
                for (attrs, _, max) in &v.cooling {
                    if let Some(max) = max {
                        obs.observe(*max, attrs);
                    }
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        let Some(listing) = self.presence.check(thermal::list(&self.paths))? else {
            return Ok(());
        };
        if self.listing.as_ref() != Some(&listing) {
            self.rescan()?;
            self.listing = Some(listing);
        }
        let mut v = self.snap.take().unwrap_or_default();
        v.temps.clear();
        v.cooling.clear();
        for z in &mut self.zones {
            // Some firmware zones answer EINVAL or ENODATA: no point this tick.
            if let Ok(t) = thermal::read_int(&mut z.file) {
                v.temps.push((z.attrs.clone(), t as f64 / 1000.0));
            }
        }
        for c in &mut self.cooling {
            if let Ok(cur) = thermal::read_int(&mut c.cur) {
                v.cooling.push((c.attrs.clone(), cur, thermal::read_int(&mut c.max).ok()));
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
    fn reports_the_zones_temperatures_and_the_cooling_states() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut ThermalCollector::new(&fixture_paths("linux-6.8-sensors"), &clock));
        let pkg = [("hw.id", "thermal_zone1"), ("hw.name", "x86_pkg_temp"), ("hw.type", "temperature"), ("hw.sensor_location", "x86_pkg_temp")];
        assert_eq!(value(&p, "hw.temperature", &pkg), Some(45.0));
        assert_eq!(of(&p, "hw.temperature").len(), 2, "the zone without a temp file has no point");
        let fan = [("system.linux.cooling_device.id", "cooling_device1"), ("system.linux.cooling_device.type", "Fan")];
        assert_eq!(value(&p, "system.linux.cooling_device.state", &fan), Some(1.0));
        let cpu = [("system.linux.cooling_device.id", "cooling_device0"), ("system.linux.cooling_device.type", "Processor")];
        assert_eq!(value(&p, "system.linux.cooling_device.max_state", &cpu), Some(3.0));
    }

    #[test]
    fn a_host_without_thermal_zones_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = ThermalCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        assert!(Harness::new(&clock, &mut c).tick(&mut c).unwrap().is_empty());
    }
}
