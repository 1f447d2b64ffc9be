//! `/sys/class/hwmon/hwmon*`: hardware sensor chips, one directory per chip with one value per
//! file (the kernel's `Documentation/hwmon/sysfs-interface.rst`):
//!
//! ```text
//! /sys/class/hwmon/hwmon1/name            coretemp
//! /sys/class/hwmon/hwmon1/temp1_label     Package id 0
//! /sys/class/hwmon/hwmon1/temp1_input     45000        (m°C)
//! /sys/class/hwmon/hwmon1/temp1_max       80000        (m°C)
//! /sys/class/hwmon/hwmon1/temp1_crit      100000       (m°C)
//! /sys/class/hwmon/hwmon2/fan1_input      1205         (RPM)
//! /sys/class/hwmon/hwmon2/in0_input       1032         (mV)
//! /sys/class/hwmon/hwmon4/power1_average  235000000    (µW; or power1_input)
//! /sys/class/hwmon/hwmon5/energy1_input   1234567890   (µJ)
//! ```
//!
//! [`scan`] lists the chips and their sensors (done again only when the chips change); each
//! tick reads only the sensors' value files. Old drivers keep the files in `hwmonN/device/`.
//! A chip's id is node_exporter's `chip` label where `device` is a link
//! (`/sys/devices/platform/coretemp.0` → `platform_coretemp_0`), else its name and directory
//! (`acpitz_hwmon0`). A sensor whose value cannot be read (a disconnected input answers
//! `EIO`/`ENODATA`) is skipped for that tick.

use super::{ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::{Path, PathBuf};

/// At most this many sensors are kept (over all chips); the rest are left out, and
/// [`Scan::truncated`] says so.
pub const MAX_SENSORS: usize = 1024;

/// What a sensor measures, by its file prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `temp*` (m°C).
    Temperature,
    /// `fan*` (RPM).
    Fan,
    /// `in*` (mV).
    Voltage,
    /// `power*` (µW).
    Power,
    /// `energy*` (µJ).
    Energy,
}

impl Kind {
    /// The file prefix (`temp`, `fan`, `in`, `power`, `energy`).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Temperature => "temp",
            Kind::Fan => "fan",
            Kind::Voltage => "in",
            Kind::Power => "power",
            Kind::Energy => "energy",
        }
    }

    /// The factor from the file's unit to the metric's (°C, RPM, V, W, J).
    pub fn scale(self) -> f64 {
        match self {
            Kind::Temperature | Kind::Voltage => 1e-3,
            Kind::Fan => 1.0,
            Kind::Power | Kind::Energy => 1e-6,
        }
    }

    const ALL: [Kind; 5] = [Kind::Temperature, Kind::Fan, Kind::Voltage, Kind::Power, Kind::Energy];
}

/// One sensor of a chip.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub kind: Kind,
    /// `temp1`, `in0`, `fan2`.
    pub sensor: String,
    /// The `_label` file's text, if the driver has one (`Package id 0`, `Composite`).
    pub label: Option<String>,
    /// The value file (`temp1_input`, or `power1_average` where there is no `power1_input`).
    pub input: PathBuf,
    /// `temp*_max` and `temp*_crit` in °C, read at the scan (limits rarely change).
    pub max: Option<f64>,
    pub crit: Option<f64>,
}

/// One chip (a `hwmonN` directory).
#[derive(Debug, Clone, PartialEq)]
pub struct Chip {
    /// The `name` file (`coretemp`, `nvme`, `nct6798`).
    pub name: String,
    /// Unique on the host: `platform_coretemp_0`, or `acpitz_hwmon0` without a device link.
    pub id: String,
    pub sensors: Vec<Sensor>,
}

/// The chips found, and whether [`MAX_SENSORS`] cut the list short.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub chips: Vec<Chip>,
    pub truncated: bool,
}

/// `/sys/class/hwmon` below the host's `/sys`.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.sys("class/hwmon")
}

/// The `hwmon*` entries of the class directory, sorted (to notice when chips come or go).
pub fn list(paths: &HostPaths) -> Result<Vec<String>, ProcError> {
    let d = dir(paths);
    let mut names = Vec::new();
    for e in std::fs::read_dir(&d).map_err(|e| ProcError::io(&d, e))? {
        let e = e.map_err(|e| ProcError::io(&d, e))?;
        if let Some(n) = e.file_name().to_str().filter(|n| n.starts_with("hwmon")) {
            names.push(n.to_string());
        }
    }
    names.sort_by(|a, b| natural(a).cmp(&natural(b)));
    Ok(names)
}

/// `hwmon10` after `hwmon9`.
fn natural(s: &str) -> (usize, &str) {
    let digits = s.trim_start_matches(|c: char| !c.is_ascii_digit());
    (digits.parse().unwrap_or(usize::MAX), s)
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn read_number(p: &Path) -> Option<i64> {
    read_trimmed(p)?.parse().ok()
}

/// `[a-zA-Z0-9_]` kept, anything else `_` (node_exporter's cleanup of chip names).
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The chip's id: the device's class and name where `device` is a link, else the chip's name
/// and directory.
fn chip_id(hwmon: &Path, name: &str, entry: &str) -> String {
    let device = hwmon.join("device");
    let is_link = std::fs::symlink_metadata(&device).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        if let Ok(real) = std::fs::canonicalize(&device) {
            let dev = real.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let class = real.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
            if !dev.is_empty() {
                return clean(&if class.is_empty() { dev.to_string() } else { format!("{class}_{dev}") });
            }
        }
    }
    clean(&format!("{name}_{entry}"))
}

/// The sensors in `dir`, sorted by kind and number.
fn sensors(dir: &Path) -> Vec<Sensor> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(Kind, u32, PathBuf)> = Vec::new();
    for e in rd.flatten() {
        let file = e.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some((sensor, item)) = file.split_once('_') else { continue };
        for kind in Kind::ALL {
            let Some(n) = sensor.strip_prefix(kind.prefix()).and_then(|n| n.parse::<u32>().ok()) else { continue };
            let wanted = item == "input" || (kind == Kind::Power && item == "average" && !dir.join(format!("{sensor}_input")).exists());
            if wanted {
                found.push((kind, n, e.path()));
            }
        }
    }
    found.sort_by_key(|a| (a.0, a.1));
    found
        .into_iter()
        .map(|(kind, n, input)| {
            let sensor = format!("{}{n}", kind.prefix());
            let limit = |item: &str| (kind == Kind::Temperature).then(|| read_number(&dir.join(format!("{sensor}_{item}")))).flatten().map(|v| v as f64 * 1e-3);
            Sensor { kind, label: read_trimmed(&dir.join(format!("{sensor}_label"))), max: limit("max"), crit: limit("crit"), input, sensor }
        })
        .collect()
}

/// Lists the chips and their sensors. No class directory is a `NotFound` error (no hwmon on
/// this host); a chip without a readable `name` is skipped.
pub fn scan(paths: &HostPaths) -> Result<Scan, ProcError> {
    let mut out = Scan::default();
    let mut total = 0usize;
    for entry in list(paths)? {
        let mut d = dir(paths).join(&entry);
        let name = match read_trimmed(&d.join("name")) {
            Some(n) => n,
            None => match read_trimmed(&d.join("device/name")) {
                Some(n) => {
                    d = d.join("device");
                    n
                }
                None => continue,
            },
        };
        let mut s = sensors(&d);
        if total + s.len() > MAX_SENSORS {
            s.truncate(MAX_SENSORS - total);
            out.truncated = true;
        }
        total += s.len();
        out.chips.push(Chip { id: chip_id(&dir(paths).join(&entry), &name, &entry), name, sensors: s });
        if out.truncated {
            break;
        }
    }
    Ok(out)
}

/// A sensor's current value in the metric's unit (°C, RPM, V, W, J), read through `file`.
pub fn read_value(file: &mut ProcFile, kind: Kind) -> Result<f64, ProcError> {
    let text = file.read()?;
    match text.trim().parse::<i64>() {
        Ok(raw) => Ok(raw as f64 * kind.scale()),
        Err(_) => {
            let msg = format!("not a number: {:?}", text.trim());
            Err(ProcError::parse(file.path(), 1, msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn lists_the_chips_and_sensors_of_a_server_with_their_labels_and_limits() {
        let s = scan(&fixture_paths("linux-6.8-sensors")).unwrap();
        let names: Vec<&str> = s.chips.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["acpitz", "coretemp", "nct6798", "nvme", "power_meter"]);
        let core = &s.chips[1];
        assert_eq!(core.id, "coretemp_hwmon1");
        assert_eq!(core.sensors.len(), 3);
        assert_eq!(core.sensors[0].label.as_deref(), Some("Package id 0"));
        assert_eq!((core.sensors[0].max, core.sensors[0].crit), (Some(80.0), Some(100.0)));
        let nct = &s.chips[2];
        let kinds: Vec<(Kind, &str)> = nct.sensors.iter().map(|x| (x.kind, x.sensor.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Temperature, "temp1"),
                (Kind::Temperature, "temp2"),
                (Kind::Fan, "fan1"),
                (Kind::Fan, "fan2"),
                (Kind::Voltage, "in0"),
                (Kind::Voltage, "in1")
            ]
        );
        let power = &s.chips[4].sensors[0];
        assert_eq!((power.kind, power.input.file_name().unwrap().to_str().unwrap()), (Kind::Power, "power1_average"));
        assert!(!s.truncated);
    }

    #[test]
    fn values_come_in_celsius_rpm_volts_and_watts() {
        let s = scan(&fixture_paths("linux-6.8-sensors")).unwrap();
        let read = |chip: usize, i: usize| {
            let x = &s.chips[chip].sensors[i];
            read_value(&mut ProcFile::new(&x.input), x.kind).unwrap()
        };
        assert_eq!(read(1, 0), 45.0);
        assert_eq!(read(2, 2), 1205.0);
        assert_eq!(read(2, 4), 1.032);
        assert_eq!(read(4, 0), 235.0);
    }

    #[test]
    fn a_device_link_names_the_chip_as_node_exporter_does() {
        let t = tempfile::tempdir().unwrap();
        let dev = t.path().join("sys/devices/platform/coretemp.0");
        let hw = dev.join("hwmon/hwmon3");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::create_dir_all(t.path().join("sys/class/hwmon")).unwrap();
        std::os::unix::fs::symlink(&hw, t.path().join("sys/class/hwmon/hwmon3")).unwrap();
        std::os::unix::fs::symlink(&dev, hw.join("device")).unwrap();
        std::fs::write(hw.join("name"), "coretemp\n").unwrap();
        std::fs::write(hw.join("temp1_input"), "51000\n").unwrap();
        std::fs::write(hw.join("energy1_input"), "2500000\n").unwrap();
        let s = scan(&HostPaths::under(t.path())).unwrap();
        assert_eq!(s.chips[0].id, "platform_coretemp_0");
        let e = &s.chips[0].sensors[1];
        assert_eq!((e.kind, read_value(&mut ProcFile::new(&e.input), e.kind).unwrap()), (Kind::Energy, 2.5));
    }

    #[test]
    fn an_old_driver_keeps_its_files_under_device_and_sensors_are_bounded() {
        let t = tempfile::tempdir().unwrap();
        let hw = t.path().join("sys/class/hwmon/hwmon0/device");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("name"), "w83627hf\n").unwrap();
        for i in 0..(MAX_SENSORS + 5) {
            std::fs::write(hw.join(format!("in{i}_input")), "1000\n").unwrap();
        }
        let s = scan(&HostPaths::under(t.path())).unwrap();
        assert_eq!(s.chips[0].name, "w83627hf");
        assert_eq!(s.chips[0].sensors.len(), MAX_SENSORS);
        assert!(s.truncated);
    }

    #[test]
    fn no_hwmon_class_is_not_found() {
        let err = scan(&fixture_paths("linux-6.18-vm")).unwrap_err();
        assert!(err.is_io_kind(std::io::ErrorKind::NotFound), "{err}");
    }
}
