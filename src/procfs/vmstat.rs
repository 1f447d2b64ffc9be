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
use crate::units::HostPaths;
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
    parse_to(text).map(|(v, _)| v)
}

/// [`parse`], also giving the offset just past the line of the last of the six when all six
/// are there.
fn parse_to(text: &str) -> Result<(VmStat, Option<usize>), LineError> {
    let mut v = VmStat::default();
    let mut seen = 0u8;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        offset += line.len();
        // All six start with 'p'; most lines (`nr_*`, `numa_*`, `workingset_*`) do not.
        if !line.starts_with('p') {
            continue;
        }
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
        // All six found (about line 100 of 190 on 6.x): the rest of the file has none of them.
        if seen == 63 {
            return Ok((v, Some(offset)));
        }
    }
    Ok((v, None))
}

/// `/proc/vmstat` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("vmstat")
}

/// Room left after the last wanted line when reading a prefix: the numbers before it gain
/// digits as they grow (a few bytes a day), and a shift past it costs one full read.
const PREFIX_SLACK: usize = 512;

/// `/proc/vmstat` kept open, read only as far as the six counters go.
///
/// The six sit in the first half of the file (by byte 2000 of 4000 on 6.18), and the kernel
/// formats only the lines a read asks for: the first read reads it all and notes where the
/// last of the six ends; later reads ask for that much plus `PREFIX_SLACK` (measured on
/// 6.18: 13 µs a read instead of 21). A prefix that misses one of them (a counter moved
/// further down) is followed by a full read, in the same call, which notes the new place.
#[derive(Debug)]
pub struct VmStatFile {
    file: ProcFile,
    prefix: Option<usize>,
}

impl VmStatFile {
    /// A reader of `paths`' `/proc/vmstat`; nothing is opened until the first read.
    pub fn new(paths: &HostPaths) -> Self {
        VmStatFile { file: ProcFile::new(path(paths)), prefix: None }
    }

    /// Reads and parses the counters.
    pub fn read(&mut self) -> Result<VmStat, ProcError> {
        if let Some(limit) = self.prefix {
            let text = self.file.read_prefix(limit)?;
            if let (v, Some(_)) = parse_to(text).map_err(|e| super::at(self.file.path(), e))? {
                return Ok(v);
            }
        }
        let text = self.file.read()?;
        let (v, end) = parse_to(text).map_err(|e| super::at(self.file.path(), e))?;
        self.prefix = end.map(|e| e + PREFIX_SLACK);
        Ok(v)
    }
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
    fn a_kept_reader_reads_only_the_prefix_with_the_six_and_follows_them_when_they_move() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        let path = dir.path().join("proc/vmstat");
        let six = "pgpgin 1\npgpgout 2\npswpin 3\npswpout 4\npgfault 50\npgmajfault 6\n";
        let tail: String = (0..400).map(|i| format!("tail_{i} {i}\n")).collect();
        std::fs::write(&path, format!("nr_free_pages 9\n{six}{tail}")).unwrap();
        let paths = crate::units::HostPaths::under(dir.path());
        let mut f = VmStatFile::new(&paths);
        let want = VmStat { pgpgin: 1, pgpgout: 2, pswpin: 3, pswpout: 4, pgfault: 50, pgmajfault: 6 };
        assert_eq!(f.read().unwrap(), want);
        let end = "nr_free_pages 9\n".len() + six.len();
        assert_eq!(f.prefix, Some(end + PREFIX_SLACK), "the first read notes where the six end");
        assert!(f.file.read_prefix(f.prefix.unwrap()).unwrap().len() < 1024);
        assert_eq!(f.read().unwrap(), want);
        // A kernel update (or grown numbers) moves them down past the prefix: the next read
        // still finds every one, and notes the new end.
        let pad: String = (0..100).map(|i| format!("new_{i} {i}\n")).collect();
        std::fs::write(&path, format!("{pad}{}{tail}", six.replace("pgmajfault 6", "pgmajfault 7"))).unwrap();
        assert_eq!(f.read().unwrap(), VmStat { pgmajfault: 7, ..want });
        assert_eq!(f.prefix, Some(pad.len() + six.len() + PREFIX_SLACK));
        // A file without one of the six is read whole every time, as before.
        std::fs::write(&path, "pgfault 5\n").unwrap();
        assert_eq!(f.read().unwrap(), VmStat { pgfault: 5, ..VmStat::default() });
        assert_eq!(f.prefix, None);
    }

    #[test]
    fn the_kept_reader_agrees_with_a_whole_read_of_this_hosts_vmstat() {
        let paths = crate::units::HostPaths::default();
        let mut f = VmStatFile::new(&paths);
        let first = f.read().unwrap();
        let prefixed = f.read().unwrap();
        let whole = read(&paths).unwrap();
        // Counters only grow: the prefix read lies between the two whole reads.
        for (a, b, c) in [
            (first.pgfault, prefixed.pgfault, whole.pgfault),
            (first.pgmajfault, prefixed.pgmajfault, whole.pgmajfault),
            (first.pgpgin, prefixed.pgpgin, whole.pgpgin),
            (first.pgpgout, prefixed.pgpgout, whole.pgpgout),
            (first.pswpin, prefixed.pswpin, whole.pswpin),
            (first.pswpout, prefixed.pswpout, whole.pswpout),
        ] {
            assert!(a <= b && b <= c, "{a} {b} {c}");
        }
        assert!(first.pgfault > 0);
        assert!(f.prefix.is_some(), "a 6.x kernel has all six");
    }

    #[test]
    fn reads_missing_keys_as_zero_and_names_the_line_of_a_bad_value() {
        assert_eq!(parse("pgfault 5\n").unwrap(), VmStat { pgfault: 5, ..VmStat::default() });
        assert_eq!(parse("nr_free_pages 1\npswpin -1\n").unwrap_err().to_string(), "line 2: pswpin: not a number: \"-1\"");
    }
}
