//! `/sys/class/powercap/intel-rapl:*`: the energy counters of Intel and AMD RAPL (running
//! average power limit) domains, per the kernel's `Documentation/ABI/testing/sysfs-class-powercap`
//! and `Documentation/power/powercap/powercap.rst`:
//!
//! ```text
//! /sys/class/powercap/intel-rapl:0/name                 package-0
//! /sys/class/powercap/intel-rapl:0/energy_uj            78926471020
//! /sys/class/powercap/intel-rapl:0/max_energy_range_uj  262143328850
//! /sys/class/powercap/intel-rapl:0:2/name               dram
//! ```
//!
//! Zones are `intel-rapl:P` (a package, or `psys`, the platform) and their subzones
//! `intel-rapl:P:S` (`core`, `uncore`, `dram`); `intel-rapl-mmio:P` is the same package read
//! through MMIO. `energy_uj` counts µJ and wraps at `max_energy_range_uj`. Since Linux 5.10
//! `energy_uj` is readable by root only (CVE-2020-8694): a read then fails with
//! `PermissionDenied`.

use super::{num, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// At most this many zones are kept.
pub const MAX_ZONES: usize = 256;

/// One zone with an energy counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The directory's name (`intel-rapl:0:2`).
    pub id: String,
    /// The `name` file (`package-0`, `core`, `dram`, `psys`).
    pub name: String,
    pub energy: PathBuf,
    /// Where `energy_uj` wraps, in µJ (0 when unknown).
    pub max_range: u64,
}

/// `/sys/class/powercap` below the host's `/sys`.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.sys("class/powercap")
}

/// The zones with an `energy_uj` file, sorted by id. No class directory is a `NotFound` error.
pub fn scan(paths: &HostPaths) -> Result<Vec<Zone>, ProcError> {
    let d = dir(paths);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&d).map_err(|e| ProcError::io(&d, e))? {
        let e = e.map_err(|e| ProcError::io(&d, e))?;
        let Some(id) = e.file_name().to_str().map(str::to_string) else { continue };
        let zone = d.join(&id);
        if !id.contains(':') || !zone.join("energy_uj").exists() {
            continue;
        }
        let Some(name) = std::fs::read_to_string(zone.join("name")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else { continue };
        let max_range = std::fs::read_to_string(zone.join("max_energy_range_uj")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        out.push(Zone { energy: zone.join("energy_uj"), id, name, max_range });
        if out.len() >= MAX_ZONES {
            break;
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The counter in µJ.
pub fn read_energy(file: &mut ProcFile) -> Result<u64, ProcError> {
    let text = file.read()?;
    num(text.split_ascii_whitespace().next(), 1, "energy_uj").map_err(|e| super::at(file.path(), e))
}

/// µJ used between two reads of a counter that wraps at `max_range` (0 if unknown: a smaller
/// second read then counts from 0).
pub fn delta(prev: u64, now: u64, max_range: u64) -> u64 {
    if now >= prev {
        now - prev
    } else if max_range >= prev {
        (max_range - prev).saturating_add(now)
    } else {
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn lists_the_package_its_subzones_and_psys() {
        let z = scan(&fixture_paths("linux-6.8-sensors")).unwrap();
        let got: Vec<(&str, &str)> = z.iter().map(|z| (z.id.as_str(), z.name.as_str())).collect();
        assert_eq!(
            got,
            [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core"), ("intel-rapl:0:1", "uncore"), ("intel-rapl:0:2", "dram"), ("intel-rapl:1", "psys")]
        );
        assert_eq!(z[3].max_range, 65_712_999_613);
        assert_eq!(read_energy(&mut ProcFile::new(&z[0].energy)).unwrap(), 78_926_471_020);
    }

    #[test]
    fn the_counter_wraps_at_its_range() {
        assert_eq!(delta(100, 250, 1000), 150);
        assert_eq!(delta(900, 50, 1000), 150, "wrapped");
        assert_eq!(delta(900, 50, 0), 50, "range unknown: counted from 0");
    }

    #[test]
    fn a_host_without_powercap_is_not_found() {
        assert!(scan(&fixture_paths("linux-6.18-vm")).unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
    }
}
