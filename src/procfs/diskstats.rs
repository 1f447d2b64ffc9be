//! `/proc/diskstats`: I/O counters per block device and partition since boot
//! (kernel `Documentation/admin-guide/iostats.rst`).
//!
//! ```text
//!  254       0 vda 29127 6078 2833586 12993 7324 20562 2684208 23612 0 11364 38511 4039 81 267144 1110 904 795
//! ```
//!
//! After major, minor and name: (1) reads completed, (2) reads merged, (3) sectors read,
//! (4) ms reading, (5) writes completed, (6) writes merged, (7) sectors written, (8) ms writing,
//! (9) I/Os in flight, (10) ms doing I/O (`io_ticks`), (11) weighted ms doing I/O; since 4.18
//! (18 fields in all) (12) discards completed, (13) discards merged, (14) sectors discarded,
//! (15) ms discarding; since 5.5 (20 fields) (16) flush requests completed, (17) ms flushing.
//! Sectors are always 512 bytes here, whatever the device's block size. Fields beyond 20 are
//! ignored; partitions of kernels before 2.6.25 had only 4 numbers (reads, sectors read,
//! writes, sectors written), which are read as such with the rest 0.
//!
//! # Default device filter ([`is_reported_by_default`])
//!
//! As node_exporter's default `device-exclude`, skip:
//! - RAM disks and loop devices: `ram\d+`, `zram\d+`, `loop\d+`, floppies `fd\d+`;
//! - partitions of whole disks already reported: `(h|s|v|xv)d[a-z]+\d+` (`sda1`, `xvdb3`),
//!   `nvme\d+n\d+p\d+` (`nvme0n1p2`), `mmcblk\d+p\d+` (`mmcblk0p1`).
//!
//! Whole disks (`sda`, `vda`, `nvme0n1`, `mmcblk0`), device-mapper (`dm-0`), md RAID (`md0`)
//! and everything else are kept.

use super::{num, LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// Bytes per diskstats sector.
pub const SECTOR_SIZE: u64 = 512;

/// One line of `/proc/diskstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub major: u32,
    pub minor: u32,
    pub name: String,
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    /// I/Os in progress now (a gauge, not a counter).
    pub in_flight: u64,
    /// Milliseconds the device had I/O in progress (`system.disk.io_time`).
    pub io_ticks_ms: u64,
    /// Milliseconds of I/O weighted by the number in progress.
    pub weighted_ms: u64,
    /// Discard counters (Linux 4.18+).
    pub discard: Option<DiscardStats>,
    /// Flush counters (Linux 5.5+).
    pub flush: Option<FlushStats>,
}

/// Discard counters of a device (fields 12–15).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscardStats {
    pub discards: u64,
    pub merged: u64,
    pub sectors: u64,
    pub ms: u64,
}

/// Flush counters of a device (fields 16–17).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub flushes: u64,
    pub ms: u64,
}

impl DiskStats {
    /// Bytes read (`sectors_read × 512`), wrapping at 2⁶⁴ as a counter does (a sector count
    /// past 2⁵⁵ must not overflow).
    pub fn read_bytes(&self) -> u64 {
        self.sectors_read.wrapping_mul(SECTOR_SIZE)
    }

    /// Bytes written (`sectors_written × 512`), wrapping at 2⁶⁴ as a counter does.
    pub fn written_bytes(&self) -> u64 {
        self.sectors_written.wrapping_mul(SECTOR_SIZE)
    }
}

/// Parses every line of `/proc/diskstats`.
pub fn parse(text: &str) -> Result<Vec<DiskStats>, LineError> {
    parse_filtered(text, |_| true)
}

/// Parses the lines whose device name `keep` accepts; the others are neither parsed nor
/// allocated (use with [`is_reported_by_default`]).
pub fn parse_filtered(text: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<DiskStats>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut it = line.split_ascii_whitespace();
        let Some(major) = it.next() else { continue };
        let major = num(Some(major), n, "major")?;
        let minor = num(it.next(), n, "minor")?;
        let name = it.next().ok_or_else(|| LineError::new(n, "name: missing field"))?;
        if !keep(name) {
            continue;
        }
        out.push(counters(major, minor, name, it, n)?);
    }
    Ok(out)
}

/// The counters after the name (4, 11, 15 or 17 fields), of line `n`.
fn counters<'a>(major: u32, minor: u32, name: &str, fields: impl Iterator<Item = &'a str>, n: usize) -> Result<DiskStats, LineError> {
    let mut v = [0u64; 17];
    let mut count = 0;
    for (slot, f) in v.iter_mut().zip(fields) {
        *slot = num(Some(f), n, name)?;
        count += 1;
    }
    let mut d = DiskStats { major, minor, name: name.to_owned(), ..DiskStats::default() };
    match count {
        4 => {
            // Pre-2.6.25 partition: reads, sectors read, writes, sectors written.
            d.reads = v[0];
            d.sectors_read = v[1];
            d.writes = v[2];
            d.sectors_written = v[3];
        }
        0..=3 | 5..=10 => {
            return Err(LineError::new(n, format!("{name}: {count} fields, expected 4, 11, 15 or 17")));
        }
        _ => {
            d.reads = v[0];
            d.reads_merged = v[1];
            d.sectors_read = v[2];
            d.read_ms = v[3];
            d.writes = v[4];
            d.writes_merged = v[5];
            d.sectors_written = v[6];
            d.write_ms = v[7];
            d.in_flight = v[8];
            d.io_ticks_ms = v[9];
            d.weighted_ms = v[10];
            if count >= 15 {
                d.discard = Some(DiscardStats { discards: v[11], merged: v[12], sectors: v[13], ms: v[14] });
            }
            if count >= 17 {
                d.flush = Some(FlushStats { flushes: v[15], ms: v[16] });
            }
        }
    }
    Ok(d)
}

/// Parses a device's `stat` file in sysfs (`/sys/class/block/DEV/stat`): the counters of its
/// `/proc/diskstats` line, without major, minor and name (Documentation/block/stat.rst).
///
/// ```text
///    29127     6078  2833586    12993     7324    20562  2684208    23612        0    11364    38511 ...
/// ```
pub fn parse_stat(major: u32, minor: u32, name: &str, text: &str) -> Result<DiskStats, LineError> {
    counters(major, minor, name, text.split_ascii_whitespace(), 1)
}

/// A device's `stat` file in sysfs (a `/` in the name is `!` there).
pub fn stat_path(paths: &HostPaths, dev: &str) -> PathBuf {
    paths.sys(&format!("class/block/{}/stat", dev.replace('/', "!")))
}

/// Whether a device is reported by default (the rule is in the module docs).
pub fn is_reported_by_default(name: &str) -> bool {
    !is_excluded(name)
}

fn is_excluded(name: &str) -> bool {
    for prefix in ["ram", "zram", "loop", "fd"] {
        if name.strip_prefix(prefix).is_some_and(all_digits) {
            return true;
        }
    }
    for prefix in ["hd", "sd", "vd", "xvd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            if letters > 0 && all_digits(&rest[letters..]) {
                return true;
            }
        }
    }
    // nvme\d+n\d+p\d+
    if let Some(rest) = name.strip_prefix("nvme").and_then(digits) {
        if let Some(rest) = rest.strip_prefix('n').and_then(digits) {
            if rest.strip_prefix('p').is_some_and(all_digits) {
                return true;
            }
        }
    }
    // mmcblk\d+p\d+
    if let Some(rest) = name.strip_prefix("mmcblk").and_then(digits) {
        if rest.strip_prefix('p').is_some_and(all_digits) {
            return true;
        }
    }
    false
}

/// One or more ASCII digits at the start of `s`: what follows them.
fn digits(s: &str) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then(|| &s[n..])
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The size of a block device in bytes: `/sys/block/DEV/size` (512-byte sectors) × 512, or
/// `/sys/class/block/DEV/size` for a partition. A `/` in the name (`cciss/c0d0`) is `!` in sysfs.
pub fn read_size_bytes(paths: &HostPaths, dev: &str) -> Result<u64, ProcError> {
    let dev = dev.replace('/', "!");
    let mut p = paths.sys(&format!("block/{dev}/size"));
    if !p.exists() {
        let class = paths.sys(&format!("class/block/{dev}/size"));
        if class.exists() {
            p = class;
        }
    }
    let text = super::read_to_string(&p)?;
    let sectors: u64 = num(text.split_ascii_whitespace().next(), 1, "size").map_err(|e| super::at(&p, e))?;
    sectors.checked_mul(SECTOR_SIZE).ok_or_else(|| ProcError::parse(&p, 1, format!("size: {sectors} sectors is too large in bytes")))
}

/// `/proc/diskstats` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("diskstats")
}

/// Reads and parses `/proc/diskstats` through a file kept open between ticks, keeping the
/// devices `keep` accepts.
pub fn read_file(file: &mut ProcFile, keep: impl Fn(&str) -> bool) -> Result<Vec<DiskStats>, ProcError> {
    let text = file.read()?;
    parse_filtered(text, keep).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses all of `/proc/diskstats` once.
pub fn read(paths: &HostPaths) -> Result<Vec<DiskStats>, ProcError> {
    read_file(&mut ProcFile::new(path(paths)), |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn byte_counts_of_sector_counts_past_two_to_the_55_wrap_instead_of_overflowing() {
        // Found by the host_text fuzz target: `sectors × 512` overflowed (a panic with overflow
        // checks on).
        let d = &parse("   8       0 sda 1 0 18446744073709551615 0 1 0 36028797018963969 0 0 0 0\n").unwrap()[0];
        assert_eq!(d.read_bytes(), u64::MAX.wrapping_mul(512));
        assert_eq!(d.written_bytes(), 512); // (2⁵⁵ + 1) × 512 mod 2⁶⁴
    }

    #[test]
    fn a_sysfs_stat_file_has_the_counters_of_the_devices_diskstats_line() {
        let line = " 254       0 vda 29127 6078 2833586 12993 7324 20562 2684208 23612 0 11364 38511 10 1 80 2 300 40\n";
        let stat = "   29127     6078  2833586    12993     7324    20562  2684208    23612        0    11364    38511       10        1       80        2      300       40\n";
        assert_eq!(parse_stat(254, 0, "vda", stat).unwrap(), parse(line).unwrap().remove(0));
        assert_eq!(parse_stat(8, 0, "sda", "1 2 3 4 5 6 7 8 9 10 11\n").unwrap().weighted_ms, 11);
        assert_eq!(parse_stat(8, 0, "sda", "1 2 3\n").unwrap_err().to_string(), "line 1: sda: 3 fields, expected 4, 11, 15 or 17");
        // On this host, every device's stat file reads as its diskstats line did a moment before.
        let paths = HostPaths::default();
        for d in read(&paths).unwrap() {
            let Ok(text) = std::fs::read_to_string(stat_path(&paths, &d.name)) else { continue };
            let s = parse_stat(d.major, d.minor, &d.name, &text).unwrap();
            assert!(s.reads >= d.reads && s.sectors_written >= d.sectors_written && s.io_ticks_ms >= d.io_ticks_ms, "{}", d.name);
        }
    }

    #[test]
    fn parses_diskstats_with_discard_and_flush_fields_of_a_6_18_kernel() {
        let d = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(d.len(), 10);
        let vda = d.iter().find(|d| d.name == "vda").unwrap();
        assert_eq!(
            *vda,
            DiskStats {
                major: 254,
                minor: 0,
                name: "vda".into(),
                reads: 29127,
                reads_merged: 6078,
                sectors_read: 2833586,
                read_ms: 12993,
                writes: 7324,
                writes_merged: 20562,
                sectors_written: 2684208,
                write_ms: 23612,
                in_flight: 0,
                io_ticks_ms: 11364,
                weighted_ms: 38511,
                discard: Some(DiscardStats { discards: 4039, merged: 81, sectors: 267144, ms: 1110 }),
                flush: Some(FlushStats { flushes: 904, ms: 795 }),
            }
        );
        assert_eq!(vda.read_bytes(), 1_450_796_032); // 2833586 × 512
    }

    #[test]
    fn parses_diskstats_with_fourteen_fields_of_a_2_6_32_kernel() {
        let d = read(&fixture_paths("linux-2.6.32-old")).unwrap();
        let sda = d.iter().find(|d| d.name == "sda").unwrap();
        assert_eq!((sda.reads, sda.sectors_read, sda.writes, sda.sectors_written), (412376, 16393322, 2203874, 63432264));
        assert_eq!((sda.in_flight, sda.io_ticks_ms, sda.weighted_ms), (2, 3512471, 25430178));
        assert_eq!((sda.discard, sda.flush), (None, None));
    }

    #[test]
    fn parses_diskstats_with_eighteen_fields_and_pre_2_6_25_partitions() {
        let d = parse(
            "   8       0 sda 10 1 80 5 20 2 160 9 0 12 14 3 0 24 1\n\
             \x20  8       1 sda1 7 56 11 88\n",
        )
        .unwrap();
        assert_eq!(d[0].discard, Some(DiscardStats { discards: 3, merged: 0, sectors: 24, ms: 1 }));
        assert_eq!(d[0].flush, None);
        assert_eq!((d[1].reads, d[1].sectors_read, d[1].writes, d[1].sectors_written, d[1].read_ms), (7, 56, 11, 88, 0));
    }

    #[test]
    fn ignores_fields_beyond_twenty_and_names_the_line_of_a_bad_one() {
        let d = parse("8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n").unwrap();
        assert_eq!(d[0].flush, Some(FlushStats { flushes: 16, ms: 17 }));
        let e = parse("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 1 sda1 1 2 x\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: sda1: not a number: \"x\"");
        let e = parse("8 0 sda 1 2 3 4 5 6\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: sda: 6 fields, expected 4, 11, 15 or 17");
    }

    #[test]
    fn skips_ram_loop_and_partitions_by_default_but_keeps_whole_disks_and_dm() {
        for kept in ["sda", "vda", "xvdb", "hdc", "sdaa", "nvme0n1", "nvme10n2", "mmcblk0", "dm-0", "md0", "sr0", "rbd0"] {
            assert!(is_reported_by_default(kept), "{kept}");
        }
        for skipped in ["ram0", "zram0", "loop7", "fd0", "sda1", "sdaa12", "vda3", "xvda1", "hdb2", "nvme0n1p1", "nvme12n3p45", "mmcblk0p2"] {
            assert!(!is_reported_by_default(skipped), "{skipped}");
        }
    }

    #[test]
    fn filters_the_6_18_fixture_to_its_one_disk() {
        let mut f = ProcFile::new(path(&fixture_paths("linux-6.18-vm")));
        let d = read_file(&mut f, is_reported_by_default).unwrap();
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vda"]);
    }

    #[test]
    fn filters_the_5_15_fixture_to_whole_disks_and_dm() {
        let d = parse_filtered(&std::fs::read_to_string(crate::procfs::fixture("linux-5.15-server/proc/diskstats")).unwrap(), is_reported_by_default).unwrap();
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda", "sr0", "dm-0", "dm-1", "md0"]);
        let nvme = &d[0];
        assert_eq!(nvme.flush, Some(FlushStats { flushes: 2210, ms: 1534 }));
        assert_eq!(nvme.discard.map(|x| x.sectors), Some(901_234_560));
    }

    #[test]
    fn reads_device_sizes_from_sys_block_in_bytes() {
        let p = fixture_paths("linux-6.18-vm");
        assert_eq!(read_size_bytes(&p, "vda").unwrap(), 274_877_906_944); // 536870912 sectors
        assert_eq!(read_size_bytes(&p, "zram0").unwrap(), 0);
        assert!(read_size_bytes(&p, "sdz").unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
    }
}
