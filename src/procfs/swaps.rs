//! `/proc/swaps`: one line per active swap area after a header; sizes in KiB.
//!
//! ```text
//! Filename                            Type            Size            Used            Priority
//! /dev/nvme0n1p3                          partition   16777212        1048576         -2
//! /swap\040file                           file                2097148         0               -3
//! ```
//!
//! File names are escaped as in mountinfo (`\040` for a space; see
//! [`unescape`](super::mountinfo::unescape)). Sizes are returned in bytes (×1024).

use super::{num, LineError, ProcError};
use crate::units::HostPaths;
use std::path::PathBuf;

/// One swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// Device or file path (unescaped).
    pub filename: String,
    /// `partition` or `file`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes in use.
    pub used: u64,
    pub priority: i32,
}

/// Parses the text of `/proc/swaps` (the header line is skipped).
pub fn parse(text: &str) -> Result<Vec<Swap>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut it = line.split_ascii_whitespace();
        let Some(name) = it.next() else { continue };
        if n == 1 && name == "Filename" {
            continue;
        }
        let kind = it.next().ok_or_else(|| LineError::new(n, "type: missing field"))?;
        let kib = |field: Option<&str>, what: &str| {
            num::<u64>(field, n, what)?.checked_mul(1024).ok_or_else(|| LineError::new(n, format!("{what}: too large in bytes")))
        };
        let size = kib(it.next(), "size")?;
        let used = kib(it.next(), "used")?;
        let priority = num(it.next(), n, "priority")?;
        out.push(Swap { filename: super::mountinfo::unescape(name), kind: kind.to_owned(), size, used, priority });
    }
    Ok(out)
}

/// `/proc/swaps` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("swaps")
}

/// Reads and parses `/proc/swaps`.
pub fn read(paths: &HostPaths) -> Result<Vec<Swap>, ProcError> {
    let p = path(paths);
    parse(&super::read_to_string(&p)?).map_err(|e| super::at(&p, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn parses_an_empty_swaps_of_a_host_without_swap() {
        assert_eq!(read(&fixture_paths("linux-6.18-vm")).unwrap(), []);
    }

    #[test]
    fn parses_a_partition_and_an_escaped_file_name_into_bytes() {
        let s = read(&fixture_paths("linux-5.15-server")).unwrap();
        assert_eq!(
            s,
            [
                Swap {
                    filename: "/dev/nvme0n1p3".into(),
                    kind: "partition".into(),
                    size: 17_179_865_088, // 16777212 KiB
                    used: 1_073_741_824,  // 1048576 KiB
                    priority: -2
                },
                Swap {
                    filename: "/swap file".into(),
                    kind: "file".into(),
                    size: 2_147_479_552, // 2097148 KiB
                    used: 0,
                    priority: -3
                },
            ]
        );
    }

    #[test]
    fn a_size_too_large_in_bytes_is_an_error_naming_the_line_not_an_overflow() {
        // Found by the host_text fuzz target: `KiB × 1024` overflowed (a panic with overflow
        // checks on).
        let e = parse("Filename Type Size Used Priority\n/dev/sda2 partition 18014398509481984 0 -2\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: size: too large in bytes");
    }

    #[test]
    fn names_the_line_of_a_short_entry() {
        let e = parse("Filename Type Size Used Priority\n/dev/sda2 partition 10\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: used: missing field");
    }
}
