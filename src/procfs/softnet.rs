//! `/proc/net/softnet_stat`: one line per online CPU of hexadecimal counters of the network
//! receive softirq (`net/core/net-procfs.c`).
//!
//! ```text
//! 00074ad9 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
//! ```
//!
//! Columns: 1 packets processed, 2 dropped (the backlog queue was full), 3 time squeezed (the
//! softirq ran out of budget or time with work left), 4–8 zero, 9 cpu_collision, 10
//! received_rps, 11 flow_limit_count, 12 backlog length (5.10+), 13 the CPU's number (5.10+),
//! then queue lengths (6.x). Older kernels have 9, 10 or 11 columns. Offline CPUs have no line,
//! so where column 13 is missing the CPU is the line's index (as node_exporter numbers them).

use super::{LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// One CPU's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoftnetCpu {
    pub cpu: u32,
    pub processed: u64,
    pub dropped: u64,
    pub time_squeezed: u64,
    /// Column 10 (2.6.35+).
    pub received_rps: Option<u64>,
    /// Column 11 (3.11+).
    pub flow_limit_count: Option<u64>,
}

/// At most this many lines are read (CPUs); the rest are ignored.
pub const MAX_CPUS: usize = 65536;

/// Parses the text of `softnet_stat`.
pub fn parse(text: &str) -> Result<Vec<SoftnetCpu>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().take(MAX_CPUS) {
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = [0u64; 13];
        let mut n = 0;
        for (c, field) in line.split_ascii_whitespace().take(13).enumerate() {
            cols[c] = u64::from_str_radix(field, 16).map_err(|_| LineError::new(i + 1, format!("column {}: not a hex number: {field:?}", c + 1)))?;
            n = c + 1;
        }
        if n < 9 {
            return Err(LineError::new(i + 1, format!("{n} columns, at least 9 expected")));
        }
        let cpu = if n >= 13 { u32::try_from(cols[12]).map_err(|_| LineError::new(i + 1, "column 13: CPU number out of range"))? } else { i as u32 };
        out.push(SoftnetCpu {
            cpu,
            processed: cols[0],
            dropped: cols[1],
            time_squeezed: cols[2],
            received_rps: (n >= 10).then_some(cols[9]),
            flow_limit_count: (n >= 11).then_some(cols[10]),
        });
    }
    Ok(out)
}

/// `/proc/net/softnet_stat`, or `/proc/1/net/softnet_stat` when the paths are remapped (the
/// file is the same in every namespace; reading the host's keeps one rule for `net/`).
pub fn path(paths: &HostPaths) -> PathBuf {
    super::netstat::path(paths, "softnet_stat")
}

/// Reads and parses the file through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<Vec<SoftnetCpu>, ProcError> {
    let text = file.read()?;
    parse(text).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses the file once.
pub fn read(paths: &HostPaths) -> Result<Vec<SoftnetCpu>, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_each_cpus_counters_of_a_6_18_capture() {
        let v = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], SoftnetCpu { cpu: 0, processed: 0x74ad9, dropped: 0, time_squeezed: 0, received_rps: Some(0), flow_limit_count: Some(0) });
        assert_eq!((v[1].cpu, v[1].processed), (1, 0x6df67));
    }

    #[test]
    fn numbers_cpus_by_column_13_where_there_is_one_else_by_line() {
        // CPU 1 offline: the second line is CPU 2's.
        let new = "00000010 00000001 00000002 0 0 0 0 0 0 00000003 00000004 0 00000000\n\
                   00000020 00000000 00000000 0 0 0 0 0 0 00000000 00000000 0 00000002\n";
        let v = parse(new).unwrap();
        assert_eq!((v[1].cpu, v[1].processed), (2, 32));
        assert_eq!((v[0].dropped, v[0].time_squeezed, v[0].received_rps, v[0].flow_limit_count), (1, 2, Some(3), Some(4)));
        // A 2.6.32 kernel: 9 columns.
        let old = parse("0000ffff 00000001 00000002 0 0 0 0 0 00000000\n0000000f 0 0 0 0 0 0 0 0\n").unwrap();
        assert_eq!((old[1].cpu, old[0].processed, old[0].received_rps), (1, 65535, None));
    }

    #[test]
    fn a_short_line_or_a_bad_number_names_its_line() {
        assert_eq!(parse("1 2 3\n").unwrap_err().to_string(), "line 1: 3 columns, at least 9 expected");
        assert_eq!(parse("0 0 0 0 0 0 0 0 0\nzz 0 0 0 0 0 0 0 0\n").unwrap_err().to_string(), "line 2: column 1: not a hex number: \"zz\"");
    }
}
