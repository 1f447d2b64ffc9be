//! `/proc/net/dev`: per-interface counters since the interface appeared, after two header lines.
//!
//! ```text
//! Inter-|   Receive                                                |  Transmit
//!  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
//!   eth0: 104351346    4268    0    0    0     0          0         0   259128    2950    0    0    0     0       0          0
//! ```
//!
//! Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets
//! errs drop fifo colls carrier compressed. Old kernels print no space after the colon when the
//! number is wide (`eth0:104351346`); the name is everything before the last `:`.
//!
//! The file shows the network namespace of the process that reads it. [`path`] therefore reads
//! `/proc/1/net/dev` (the host's init, hence the host's interfaces) when the paths are remapped
//! to a host's `/proc` (a container reading `HOST_PROC`), and `/proc/net/dev` otherwise.

use super::{num, LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// The receive or transmit half of an interface's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes: u64,
    pub packets: u64,
    pub errs: u64,
    pub drop: u64,
    pub fifo: u64,
    /// Receive: framing errors; transmit: collisions (`colls`).
    pub frame_or_colls: u64,
    /// Receive: compressed; transmit: carrier losses (`carrier`).
    pub compressed_or_carrier: u64,
    /// Receive: multicast packets; transmit: compressed.
    pub multicast_or_compressed: u64,
}

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx: Counters,
    pub tx: Counters,
}

/// Parses the text of `/proc/net/dev` (lines without a `:` are headers and skipped).
pub fn parse(text: &str) -> Result<Vec<NetDev>, LineError> {
    parse_filtered(text, |_| true)
}

/// Parses the interfaces whose name `keep` accepts; the others are not allocated.
pub fn parse_filtered(text: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<NetDev>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some(colon) = line.rfind(':') else {
            continue;
        };
        let name = line[..colon].trim();
        if name.is_empty() || !keep(name) {
            continue;
        }
        let mut it = line[colon + 1..].split_ascii_whitespace();
        let mut v = [0u64; 16];
        for (k, slot) in v.iter_mut().enumerate() {
            let f = it.next();
            *slot = match f.and_then(|s| s.parse().ok()) {
                Some(x) => x,
                // Only now build the field's name for the message.
                None => return Err(num::<u64>(f, n, &format!("{name} field {}", k + 1)).unwrap_err()),
            };
        }
        let half = |o: usize| Counters {
            bytes: v[o],
            packets: v[o + 1],
            errs: v[o + 2],
            drop: v[o + 3],
            fifo: v[o + 4],
            frame_or_colls: v[o + 5],
            compressed_or_carrier: v[o + 6],
            multicast_or_compressed: v[o + 7],
        };
        out.push(NetDev { name: name.to_owned(), rx: half(0), tx: half(8) });
    }
    Ok(out)
}

/// `/proc/1/net/dev` when the paths are remapped, else `/proc/net/dev` (see the module docs).
pub fn path(paths: &HostPaths) -> PathBuf {
    if paths.is_remapped() {
        paths.proc("1/net/dev")
    } else {
        paths.proc("net/dev")
    }
}

/// Reads and parses the net/dev file through a file kept open between ticks, keeping the
/// interfaces `keep` accepts.
pub fn read_file(file: &mut ProcFile, keep: impl Fn(&str) -> bool) -> Result<Vec<NetDev>, ProcError> {
    let text = file.read()?;
    parse_filtered(text, keep).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses the net/dev file that [`path`] names, once.
pub fn read(paths: &HostPaths) -> Result<Vec<NetDev>, ProcError> {
    read_file(&mut ProcFile::new(path(paths)), |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{fixture, fixture_paths};

    #[test]
    fn parses_net_dev_of_a_6_18_kernel() {
        let mut f = ProcFile::new(fixture("linux-6.18-vm/proc/net/dev"));
        let d = read_file(&mut f, |_| true).unwrap();
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        assert_eq!(d[3].rx, Counters { bytes: 104351346, packets: 4268, ..Counters::default() });
        assert_eq!(d[3].tx, Counters { bytes: 259128, packets: 2950, ..Counters::default() });
        assert_eq!((d[0].rx.bytes, d[0].tx.packets), (3245, 30));
    }

    #[test]
    fn reads_the_host_init_namespace_when_remapped() {
        // The 5.15 tree's /proc/net/dev is a container's (lo, eth0); /proc/1/net/dev is the host's.
        let p = fixture_paths("linux-5.15-server");
        assert_eq!(path(&p), p.proc("1/net/dev"));
        let d = read(&p).unwrap();
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lo", "enp3s0", "docker0", "veth1a2b3c4", "bond0.100"]);
        let enp = &d[1];
        assert_eq!(
            enp.rx,
            Counters {
                bytes: 98_765_432_101,
                packets: 123_456_789,
                errs: 3,
                drop: 1024,
                fifo: 0,
                frame_or_colls: 2,
                compressed_or_carrier: 0,
                multicast_or_compressed: 55_501
            }
        );
        assert_eq!(
            enp.tx,
            Counters {
                bytes: 12_345_678_901,
                packets: 45_678_901,
                errs: 0,
                drop: 7,
                fifo: 0,
                frame_or_colls: 0,
                compressed_or_carrier: 1,
                multicast_or_compressed: 0
            }
        );
        assert_eq!(path(&HostPaths::default()), PathBuf::from("/proc/net/dev"));
    }

    #[test]
    fn parses_names_glued_to_wide_numbers_as_old_kernels_print_them() {
        let d = parse("Inter-|\n face |\n  eth0:4294967296 5 0 0 0 0 0 0 7 8 0 0 0 0 0 0\n").unwrap();
        assert_eq!((d[0].name.as_str(), d[0].rx.bytes, d[0].tx.bytes), ("eth0", 4_294_967_296, 7));
    }

    #[test]
    fn parses_net_dev_of_a_2_6_32_kernel_with_names_glued_to_numbers() {
        let mut f = ProcFile::new(fixture("linux-2.6.32-old/proc/net/dev"));
        let d = read_file(&mut f, |n| n != "lo").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "eth0");
        assert_eq!((d[0].rx.bytes, d[0].rx.packets, d[0].rx.drop), (4_012_389_471_023, 3_123_445_610, 212));
        assert_eq!(d[0].rx.multicast_or_compressed, 10021);
        assert_eq!((d[0].tx.bytes, d[0].tx.packets), (987_654_321_012, 2_011_223_344));
    }

    #[test]
    fn names_the_line_of_a_short_entry() {
        let e = parse("h\nh\n lo: 1 2 3\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: lo field 4: missing field");
    }
}
