//! `/sys/class/thermal`: the kernel's thermal zones (a temperature the kernel manages: ACPI
//! zones, the CPU package, SoC sensors) and cooling devices (fans, CPU throttling states), one
//! value per file (`Documentation/driver-api/thermal/sysfs-api.rst`):
//!
//! ```text
//! /sys/class/thermal/thermal_zone1/type         x86_pkg_temp
//! /sys/class/thermal/thermal_zone1/temp         45000        (m°C)
//! /sys/class/thermal/cooling_device0/type       Processor
//! /sys/class/thermal/cooling_device0/cur_state  0
//! /sys/class/thermal/cooling_device0/max_state  3
//! ```
//!
//! [`scan`] lists the zones and devices (again only when the directory changes); each tick
//! reads their value files. A zone whose `temp` cannot be read (some firmware zones answer
//! `EINVAL` or `ENODATA`) has no value that tick.

use super::{ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// At most this many zones and cooling devices are kept.
pub const MAX_ENTRIES: usize = 1024;

/// A thermal zone (`thermal_zoneN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `thermal_zone0`.
    pub zone: String,
    /// The `type` file (`acpitz`, `x86_pkg_temp`).
    pub kind: String,
    pub temp: PathBuf,
}

/// A cooling device (`cooling_deviceN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoolingDevice {
    /// `cooling_device0`.
    pub device: String,
    /// The `type` file (`Processor`, `Fan`, `intel_powerclamp`).
    pub kind: String,
    pub cur_state: PathBuf,
    pub max_state: PathBuf,
}

/// What the class directory holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub zones: Vec<Zone>,
    pub cooling: Vec<CoolingDevice>,
}

/// `/sys/class/thermal` below the host's `/sys`.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.sys("class/thermal")
}

/// The entries of the class directory, sorted by kind and number (`thermal_zone2` before
/// `thermal_zone10`).
pub fn list(paths: &HostPaths) -> Result<Vec<String>, ProcError> {
    let d = dir(paths);
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&d).map_err(|e| ProcError::io(&d, e))? {
        let e = e.map_err(|e| ProcError::io(&d, e))?;
        if let Some(n) = e.file_name().to_str().filter(|n| n.starts_with("thermal_zone") || n.starts_with("cooling_device")) {
            names.push(n.to_string());
        }
        if names.len() >= MAX_ENTRIES {
            break;
        }
    }
    let key = |s: &String| {
        let digits = s.trim_start_matches(|c: char| !c.is_ascii_digit());
        (s[..s.len() - digits.len()].to_string(), digits.parse::<u64>().unwrap_or(u64::MAX))
    };
    names.sort_by_key(key);
    Ok(names)
}

/// Lists the zones and cooling devices; an entry without a readable `type` is skipped. No
/// class directory is a `NotFound` error.
pub fn scan(paths: &HostPaths) -> Result<Scan, ProcError> {
    let mut out = Scan::default();
    for name in list(paths)? {
        let d = dir(paths).join(&name);
        let Some(kind) = std::fs::read_to_string(d.join("type")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else { continue };
        if name.starts_with("thermal_zone") {
            out.zones.push(Zone { temp: d.join("temp"), zone: name, kind });
        } else {
            out.cooling.push(CoolingDevice { cur_state: d.join("cur_state"), max_state: d.join("max_state"), device: name, kind });
        }
    }
    Ok(out)
}

/// An integer value file (`temp` in m°C, `cur_state`).
pub fn read_int(file: &mut ProcFile) -> Result<i64, ProcError> {
    let text = file.read()?;
    match text.trim().parse::<i64>() {
        Ok(v) => Ok(v),
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
    fn lists_zones_and_cooling_devices_with_their_types() {
        let s = scan(&fixture_paths("linux-6.8-sensors")).unwrap();
        let zones: Vec<(&str, &str)> = s.zones.iter().map(|z| (z.zone.as_str(), z.kind.as_str())).collect();
        assert_eq!(zones, [("thermal_zone0", "acpitz"), ("thermal_zone1", "x86_pkg_temp"), ("thermal_zone2", "INT3400 Thermal")]);
        let cooling: Vec<(&str, &str)> = s.cooling.iter().map(|c| (c.device.as_str(), c.kind.as_str())).collect();
        assert_eq!(cooling, [("cooling_device0", "Processor"), ("cooling_device1", "Fan")]);
        assert_eq!(read_int(&mut ProcFile::new(&s.zones[1].temp)).unwrap(), 45000);
        assert_eq!(read_int(&mut ProcFile::new(&s.cooling[0].max_state)).unwrap(), 3);
    }

    #[test]
    fn sorts_by_number_and_a_host_without_the_class_is_not_found() {
        let t = tempfile::tempdir().unwrap();
        for z in ["thermal_zone10", "thermal_zone2"] {
            let d = t.path().join("sys/class/thermal").join(z);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("type"), "soc\n").unwrap();
        }
        let s = scan(&HostPaths::under(t.path())).unwrap();
        assert_eq!(s.zones[0].zone, "thermal_zone2");
        assert!(scan(&fixture_paths("linux-6.18-vm")).unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
    }
}
