//! The hwmon collector: temperature, fan, voltage, power and energy sensors of the kernel's
//! hwmon chips (`/sys/class/hwmon/hwmon*`: CPU and NVMe temperatures, Super I/O fans and
//! voltages, ACPI power meters), as node_exporter's `hwmon` collector, named by the semantic
//! conventions' hardware metrics (`hw.temperature`, `hw.fan.speed`, `hw.voltage`, `hw.power`,
//! `hw.energy`).
//!
//! ```text
//! /sys/class/hwmon/hwmon1/name          coretemp
//! /sys/class/hwmon/hwmon1/temp1_label   Package id 0
//! /sys/class/hwmon/hwmon1/temp1_input   45000
//! ```
//!
//! becomes `hw.temperature{hw.id="coretemp_hwmon1_temp1", hw.name="coretemp Package id 0",
//! hw.type="temperature", hw.sensor_location="Package id 0"} 45`. The chips are listed at the
//! first tick and again only when a chip comes or goes; each tick reads only the value files.
//! A host without hwmon (most VMs) reports nothing and logs that once at debug level.

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::hwmon::{self, Kind};
use crate::procfs::ProcFile;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.hwmon`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HwmonConfig {
    /// Run this collector (default true; it reports nothing where there are no hwmon chips).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Chips to report, by name glob (`coretemp`, `nct*`); empty: all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Chips to leave out, by name glob; wins over `include`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// One sensor's value file and the attributes of its points.
struct Reading {
    kind: Kind,
    file: ProcFile,
    attrs: Arc<[KeyValue]>,
    /// `attrs` + `hw.limit_type`, with the limit, for `temp*_max` and `temp*_crit`.
    limits: Vec<(Arc<[KeyValue]>, f64)>,
}

/// This tick's values: (kind, attributes, value), and the temperature limits.
#[derive(Debug, Default)]
struct Values {
    points: Vec<(Kind, Arc<[KeyValue]>, f64)>,
    limits: Vec<(Arc<[KeyValue]>, f64)>,
}

/// Lists the chips when they change and reads every sensor each tick.
pub struct HwmonCollector {
    paths: HostPaths,
    config: HwmonConfig,
    listing: Option<Vec<String>>,
    readings: Vec<Reading>,
    presence: Presence,
    snap: Arc<SnapshotCell<Values>>,
}

impl HwmonCollector {
    /// A collector of `paths`' hwmon chips.
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &HwmonConfig) -> Self {
        HwmonCollector {
            paths: paths.clone(),
            config: config.clone(),
            listing: None,
            readings: Vec::new(),
            presence: Presence::new("hwmon"),
            snap: SnapshotCell::new(clock),
        }
    }

    fn rescan(&mut self) -> Result<(), CollectorError> {
        let scan = hwmon::scan(&self.paths)?;
        if scan.truncated {
            tracing::warn!(collector = "hwmon", limit = hwmon::MAX_SENSORS, "More hwmon sensors than the limit; the rest are left out");
        }
        self.readings.clear();
        for chip in scan.chips {
            if !super::passes(&self.config.include, &self.config.exclude, &chip.name, || true) {
                continue;
            }
            for s in chip.sensors {
                let location = s.label.clone().unwrap_or_else(|| s.sensor.clone());
                let attrs = vec![
                    KeyValue::new("hw.id", format!("{}_{}", chip.id, s.sensor)),
                    KeyValue::new("hw.name", format!("{} {location}", chip.name)),
                    KeyValue::new("hw.type", hw_type(s.kind, &chip.name)),
                    KeyValue::new("hw.sensor_location", location),
                ];
                let limits = [("high.degraded", s.max), ("high.critical", s.crit)]
                    .into_iter()
                    .filter_map(|(ty, v)| v.map(|v| (attrs.iter().cloned().chain([KeyValue::new("hw.limit_type", ty)]).collect(), v)))
                    .collect();
                self.readings.push(Reading { kind: s.kind, file: ProcFile::new(s.input), attrs: attrs.into(), limits });
            }
        }
        Ok(())
    }
}

/// `hw.type`: the sensor's class for temperatures, fans and voltages; for power and energy the
/// component the chip measures where its driver says (a GPU, a CPU), else `power_supply`.
fn hw_type(kind: Kind, chip: &str) -> &'static str {
    match kind {
        Kind::Temperature => "temperature",
        Kind::Fan => "fan",
        Kind::Voltage => "voltage",
        Kind::Power | Kind::Energy => match chip {
            "amdgpu" | "radeon" | "nouveau" | "i915" | "xe" => "gpu",
            "amd_energy" | "zenpower" | "k10temp" | "fam15h_power" | "coretemp" => "cpu",
            _ => "power_supply",
        },
    }
}

const ATTRS: &[&str] = &["hw.id", "hw.name", "hw.type", "hw.sensor_location"];
const TEMPERATURE: Metric<f64> =
    Metric::f64_gauge("hw.temperature", "Cel", "Temperature of a hwmon sensor").attributes(ATTRS).source("/sys/class/hwmon/hwmon*/temp*_input (m°C)");
const TEMPERATURE_LIMIT: Metric<f64> =
    Metric::f64_gauge("hw.temperature.limit", "Cel", "Temperature limits of a hwmon sensor: high.degraded (temp*_max), high.critical (temp*_crit)")
        .attributes(&["hw.id", "hw.name", "hw.type", "hw.sensor_location", "hw.limit_type"])
        .source("/sys/class/hwmon/hwmon*/temp*_max, temp*_crit (m°C)");
const FAN_SPEED: Metric<f64> =
    Metric::f64_gauge("hw.fan.speed", "rpm", "Fan speed of a hwmon sensor").attributes(ATTRS).source("/sys/class/hwmon/hwmon*/fan*_input (RPM)");
const VOLTAGE: Metric<f64> =
    Metric::f64_gauge("hw.voltage", "V", "Voltage of a hwmon sensor").attributes(ATTRS).source("/sys/class/hwmon/hwmon*/in*_input (mV)");
const POWER: Metric<f64> =
    Metric::f64_gauge("hw.power", "W", "Power of a hwmon sensor").attributes(ATTRS).source("/sys/class/hwmon/hwmon*/power*_input or power*_average (µW)");
const ENERGY: Metric<f64> =
    Metric::f64_counter("hw.energy", "J", "Energy of a hwmon sensor").attributes(ATTRS).source("/sys/class/hwmon/hwmon*/energy*_input (µJ)");

/// The hwmon collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[TEMPERATURE.spec(), FAN_SPEED.spec(), VOLTAGE.spec(), POWER.spec(), ENERGY.spec(), TEMPERATURE_LIMIT.spec()];

impl Collector for HwmonCollector {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn register(&mut self, meter: &Meter) {
        for (metric, kind) in [(TEMPERATURE, Kind::Temperature), (FAN_SPEED, Kind::Fan), (VOLTAGE, Kind::Voltage), (POWER, Kind::Power), (ENERGY, Kind::Energy)]
        {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|v| {
                    for (k, attrs, value) in &v.points {
                        if *k == kind {
                            obs.observe(*value, attrs);
                        }
                    }
                });
            });
        }
        let snap = self.snap.clone();
        TEMPERATURE_LIMIT.register(meter, move |obs| {
            snap.with(|v| {
                for (attrs, value) in &v.limits {
                    obs.observe(*value, attrs);
                }
            });
        });
    }

    /// A sensor read is a driver call: chips behind I²C/SMBus or SCSI (`drivetemp`) can take
    /// tens of milliseconds each, or hang on a wedged bus; on a blocking thread under the
    /// collector time limit, a slow chip delays no other collector. Where there are no chips
    /// (most VMs) the refresh does nothing, and needs no thread hand-off.
    fn may_block(&self) -> bool {
        !self.presence.is_absent() && (self.listing.is_none() || !self.readings.is_empty())
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        let Some(listing) = self.presence.check(hwmon::list(&self.paths))? else {
            return Ok(());
        };
        if self.listing.as_ref() != Some(&listing) {
            self.rescan()?;
            self.listing = Some(listing);
        }
        let mut v = self.snap.take().unwrap_or_default();
        v.points.clear();
        v.limits.clear();
        for r in &mut self.readings {
            // A disconnected input answers EIO or ENODATA: no point this tick.
            if let Ok(value) = hwmon::read_value(&mut r.file, r.kind) {
                v.points.push((r.kind, r.attrs.clone(), value));
            }
            v.limits.extend(r.limits.iter().cloned());
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

    fn sensor(id: &str, name: &str, ty: &str, location: &str) -> Vec<(&'static str, String)> {
        vec![("hw.id", id.into()), ("hw.name", name.into()), ("hw.type", ty.into()), ("hw.sensor_location", location.into())]
    }

    fn at(points: &[crate::collectors::testutil::Point], metric: &str, attrs: &[(&'static str, String)]) -> Option<f64> {
        let a: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        value(points, metric, &a)
    }

    #[test]
    fn reports_temperatures_fans_voltages_and_power_of_a_server() {
        let clock = TickClock::default();
        let mut c = HwmonCollector::new(&fixture_paths("linux-6.8-sensors"), &clock, &HwmonConfig::default());
        let p = collect_once(&clock, &mut c);
        assert!(c.may_block(), "sensors to read: on a thread of its own");
        let pkg = sensor("coretemp_hwmon1_temp1", "coretemp Package id 0", "temperature", "Package id 0");
        assert_eq!(at(&p, "hw.temperature", &pkg), Some(45.0));
        assert_eq!(at(&p, "hw.temperature", &sensor("nvme_hwmon3_temp1", "nvme Composite", "temperature", "Composite")), Some(38.85));
        assert_eq!(at(&p, "hw.temperature", &sensor("acpitz_hwmon0_temp1", "acpitz temp1", "temperature", "temp1")), Some(27.8));
        assert_eq!(at(&p, "hw.fan.speed", &sensor("nct6798_hwmon2_fan1", "nct6798 fan1", "fan", "fan1")), Some(1205.0));
        assert_eq!(at(&p, "hw.voltage", &sensor("nct6798_hwmon2_in0", "nct6798 in0", "voltage", "in0")), Some(1.032));
        assert_eq!(at(&p, "hw.power", &sensor("power_meter_hwmon4_power1", "power_meter power1", "power_supply", "power1")), Some(235.0));
        let mut crit = pkg.clone();
        crit.push(("hw.limit_type", "high.critical".into()));
        assert_eq!(at(&p, "hw.temperature.limit", &crit), Some(100.0));
        assert_eq!(of(&p, "hw.temperature").len(), 8);
        assert_eq!(of(&p, "hw.fan.speed").len(), 2, "a stopped fan reads 0 and is reported");
    }

    #[test]
    fn include_and_exclude_pick_chips_by_name() {
        let clock = TickClock::default();
        let cfg = HwmonConfig { include: vec!["n*".into()], exclude: vec!["nvme".into()], ..Default::default() };
        let p = collect_once(&clock, &mut HwmonCollector::new(&fixture_paths("linux-6.8-sensors"), &clock, &cfg));
        assert!(!p.is_empty());
        assert!(p.iter().all(|x| x.1.iter().any(|(k, v)| k == "hw.name" && v.starts_with("nct6798"))), "{p:?}");
    }

    #[test]
    fn a_host_without_hwmon_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = HwmonCollector::new(&fixture_paths("linux-6.18-vm"), &clock, &HwmonConfig::default());
        assert!(c.may_block(), "not known yet: the first refresh gets a thread");
        let mut h = Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).unwrap().is_empty());
        assert!(!c.may_block(), "no chips: nothing to wait for");
    }

    #[test]
    fn an_unreadable_sensor_is_skipped_and_a_new_chip_is_found() {
        let t = tempfile::tempdir().unwrap();
        let hw = t.path().join("sys/class/hwmon/hwmon0");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("name"), "k10temp\n").unwrap();
        std::fs::write(hw.join("temp1_input"), "52125\n").unwrap();
        std::fs::write(hw.join("temp2_input"), "garbage\n").unwrap();
        let clock = TickClock::default();
        let mut c = HwmonCollector::new(&HostPaths::under(t.path()), &clock, &HwmonConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(of(&p, "hw.temperature").len(), 1);
        assert_eq!(p[0].2, 52.125);
        let hw1 = t.path().join("sys/class/hwmon/hwmon1");
        std::fs::create_dir_all(&hw1).unwrap();
        std::fs::write(hw1.join("name"), "amd_energy\n").unwrap();
        std::fs::write(hw1.join("energy1_input"), "7000000\n").unwrap();
        let p = h.tick(&mut c).unwrap();
        assert_eq!(at(&p, "hw.energy", &sensor("amd_energy_hwmon1_energy1", "amd_energy energy1", "cpu", "energy1")), Some(7.0));
    }
}
