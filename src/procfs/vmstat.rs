//! `/proc/vmstat`: one `name value` pair per line, counters since boot (the set of names
//! changes between kernel versions).
//!
//! ```text
//! pgpgin 1416793
//! pgpgout 1342104
//! pswpin 0
//! pswpout 0
//! pgfault 4413319
//! pgmajfault 1070
//! ```
//!
//! [`get`] and [`entries`] look up any key; [`VmStat`] holds the six the paging collector
//! uses. `pgpgin`/`pgpgout` count KiB paged in/out (not pages); `pswpin`/`pswpout` count pages
//! swapped. Keys missing from the file read 0 (no swap support, unusual kernels).

use super::{LineError, ProcError, ProcFile};
use crate::host::HostPaths;
use std::path::PathBuf;

/// The paging counters of `/proc/vmstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmStat {
    /// Page faults, minor and major (`pgfault`).
    pub pgfault: u64,
    /// Major page faults, those that needed I/O (`pgmajfault`).
    pub pgmajfault: u64,
    /// KiB paged in from disk (`pgpgin`).
    pub pgpgin: u64,
    /// KiB paged out to disk (`pgpgout`).
    pub pgpgout: u64,
    /// Pages swapped in (`pswpin`).
    pub pswpin: u64,
    /// Pages swapped out (`pswpout`).
    pub pswpout: u64,
}

impl VmStat {
    /// Minor faults: `pgfault − pgmajfault`.
    pub fn minor_faults(&self) -> u64 {
        self.pgfault.saturating_sub(self.pgmajfault)
    }
}

/// Every `(name, value)` pair, in file order; lines that are not a name and a number are
/// skipped.
pub fn entries(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let mut it = line.split_ascii_whitespace();
        let key = it.next()?;
        let value = it.next()?.parse().ok()?;
        Some((key, value))
    })
}

/// The value of one key, if present and a number.
pub fn get(text: &str, key: &str) -> Option<u64> {
    entries(text).find(|&(k, _)| k == key).map(|(_, v)| v)
}

/// Parses the six paging counters in one pass; a bad value of one of them is an error naming
/// its line.
pub fn parse(text: &str) -> Result<VmStat, LineError> {
    let mut v = VmStat::default();
    let mut seen = 0u8;
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        let (slot, bit) = match key {
            "pgfault" => (&mut v.pgfault, 1),
            "pgmajfault" => (&mut v.pgmajfault, 2),
            "pgpgin" => (&mut v.pgpgin, 4),
            "pgpgout" => (&mut v.pgpgout, 8),
            "pswpin" => (&mut v.pswpin, 16),
            "pswpout" => (&mut v.pswpout, 32),
            _ => continue,
        };
        *slot = super::num(it.next(), i + 1, key)?;
        seen |= bit;
        // All six found (about line 80 of 180 on 6.x): the rest of the file has none of them.
        if seen == 63 {
            break;
        }
    }
    Ok(v)
}

/// `/proc/vmstat` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("vmstat")
}

/// Reads and parses `/proc/vmstat` through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<VmStat, ProcError> {
    let text = file.read()?;
    parse(text).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses `/proc/vmstat` once.
pub fn read(paths: &HostPaths) -> Result<VmStat, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{fixture, fixture_paths};

    #[test]
    fn parses_the_paging_counters_of_a_6_18_kernel() {
        let v = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(v, VmStat { pgfault: 4413319, pgmajfault: 1070, pgpgin: 1416793, pgpgout: 1342104, pswpin: 0, pswpout: 0 });
        assert_eq!(v.minor_faults(), 4412249);
    }

    #[test]
    fn looks_up_any_key() {
        let text = std::fs::read_to_string(fixture("linux-6.18-vm/proc/vmstat")).unwrap();
        assert_eq!(get(&text, "pgmajfault"), Some(1070));
        assert_eq!(get(&text, "no_such_counter"), None);
        assert_eq!(entries("a 1\nbad\nb x\nc 3\n").collect::<Vec<_>>(), [("a", 1), ("c", 3)]);
    }

    #[test]
    fn reads_missing_keys_as_zero_and_names_the_line_of_a_bad_value() {
        assert_eq!(parse("pgfault 5\n").unwrap(), VmStat { pgfault: 5, ..VmStat::default() });
        assert_eq!(parse("nr_free_pages 1\npswpin -1\n").unwrap_err().to_string(), "line 2: pswpin: not a number: \"-1\"");
    }
}
