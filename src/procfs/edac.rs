//! `/sys/devices/system/edac/mc/mc*`: error counters of the memory controllers EDAC drivers
//! know (`Documentation/admin-guide/ras.rst`, "EDAC sysfs interface"), one value per file:
//!
//! ```text
//! /sys/devices/system/edac/mc/mc0/mc_name                Skylake Socket#0 IMC#0
//! /sys/devices/system/edac/mc/mc0/ce_count               3       (corrected, all rows)
//! /sys/devices/system/edac/mc/mc0/ue_count               0       (uncorrected)
//! /sys/devices/system/edac/mc/mc0/ce_noinfo_count        1       (not attributable to a row)
//! /sys/devices/system/edac/mc/mc0/csrow0/ce_count        2
//! ```
//!
//! [`scan`] lists the controllers and their chip-select rows once (they do not come and go);
//! the counters are read every tick.

use super::{num, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::{Path, PathBuf};

/// At most this many controllers, and rows per controller, are kept.
pub const MAX_ENTRIES: usize = 256;

/// A chip-select row (`csrowN`) of a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csrow {
    /// `csrow0`.
    pub id: String,
    pub ce: PathBuf,
    pub ue: PathBuf,
}

/// A memory controller (`mcN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// `mc0`.
    pub id: String,
    /// The `mc_name` file, if any.
    pub name: Option<String>,
    pub ce: PathBuf,
    pub ue: PathBuf,
    pub csrows: Vec<Csrow>,
    /// Errors not attributable to a row (`ce_noinfo_count`, `ue_noinfo_count`), where the
    /// driver has the files: a row with id `unknown`, as node_exporter reports them.
    pub noinfo: Option<Csrow>,
}

/// `/sys/devices/system/edac/mc` below the host's `/sys`.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.sys("devices/system/edac/mc")
}

/// The `PREFIX<n>` entries of `d`, sorted by number.
fn numbered(d: &Path, prefix: &str) -> Result<Vec<(u64, String)>, ProcError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).map_err(|e| ProcError::io(d, e))? {
        let e = e.map_err(|e| ProcError::io(d, e))?;
        if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|n| n.parse::<u64>().ok()) {
            out.push((n, format!("{prefix}{n}")));
        }
    }
    out.sort();
    out.truncate(MAX_ENTRIES);
    Ok(out)
}

/// Lists the controllers with a `ce_count`. No EDAC directory is a `NotFound` error (no
/// EDAC driver loaded, as in every VM).
pub fn scan(paths: &HostPaths) -> Result<Vec<Controller>, ProcError> {
    let d = dir(paths);
    let mut out = Vec::new();
    for (_, id) in numbered(&d, "mc")? {
        let mc = d.join(&id);
        if !mc.join("ce_count").exists() {
            continue;
        }
        let csrows = numbered(&mc, "csrow")
            .unwrap_or_default()
            .into_iter()
            .map(|(_, row)| Csrow { ce: mc.join(&row).join("ce_count"), ue: mc.join(&row).join("ue_count"), id: row })
            .collect();
        let name = std::fs::read_to_string(mc.join("mc_name")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let noinfo =
            mc.join("ce_noinfo_count").exists().then(|| Csrow { id: "unknown".into(), ce: mc.join("ce_noinfo_count"), ue: mc.join("ue_noinfo_count") });
        out.push(Controller { ce: mc.join("ce_count"), ue: mc.join("ue_count"), id, name, csrows, noinfo });
    }
    Ok(out)
}

/// A counter file.
pub fn read_count(file: &mut ProcFile) -> Result<u64, ProcError> {
    let text = file.read()?;
    num(text.split_ascii_whitespace().next(), 1, "count").map_err(|e| super::at(file.path(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn lists_two_controllers_and_the_rows_of_the_first() {
        let c = scan(&fixture_paths("linux-6.8-sensors")).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].id.as_str(), c[0].name.as_deref()), ("mc0", Some("Skylake Socket#0 IMC#0")));
        assert_eq!(c[0].csrows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["csrow0", "csrow1"]);
        assert!(c[1].csrows.is_empty());
        assert_eq!(read_count(&mut ProcFile::new(&c[0].ce)).unwrap(), 3);
        assert_eq!(read_count(&mut ProcFile::new(&c[1].ue)).unwrap(), 1);
        assert_eq!(read_count(&mut ProcFile::new(&c[0].csrows[0].ce)).unwrap(), 2);
        assert_eq!(read_count(&mut ProcFile::new(&c[0].noinfo.as_ref().unwrap().ce)).unwrap(), 1);
    }

    #[test]
    fn a_host_without_edac_is_not_found() {
        assert!(scan(&fixture_paths("linux-6.18-vm")).unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
    }
}
