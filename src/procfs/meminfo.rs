//! `/proc/meminfo`: one `Key: value [kB]` line per counter.
//!
//! ```text
//! MemTotal:       24683656 kB
//! MemFree:        23628744 kB
//! MemAvailable:   24322148 kB
//! HugePages_Total:       0
//! ```
//!
//! Values in kB (which the kernel means as KiB) are returned in bytes (×1024). `MemTotal`,
//! `MemFree`, `Buffers`, `Cached`, `SwapTotal` and `SwapFree` must be present; `MemAvailable`
//! (Linux 3.14+) is `None` when absent; `Shmem`, `SReclaimable`, `SUnreclaim` and `SwapCached`
//! are 0 when absent (some sandboxed kernels, e.g. gVisor, leave them out). The huge page
//! counters (`HugePages_Total`, `_Free`, `_Rsvd`, `_Surp`: pages, no unit; `Hugepagesize`) are
//! `None` on kernels without hugetlbfs. Other keys are ignored.

use super::{LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// The counters of `/proc/meminfo` the memory and paging collectors use, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    /// `MemAvailable`; `None` before Linux 3.14.
    pub available: Option<u64>,
    pub buffers: u64,
    pub cached: u64,
    pub shmem: u64,
    pub slab_reclaimable: u64,
    pub slab_unreclaimable: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub swap_cached: u64,
    /// `HugePages_Total`: huge pages in the pool (of the default size), in pages.
    pub hugepages_total: Option<u64>,
    /// `HugePages_Free`: pages of the pool not yet allocated.
    pub hugepages_free: Option<u64>,
    /// `HugePages_Rsvd`: pages promised to mappings but not yet faulted in.
    pub hugepages_reserved: Option<u64>,
    /// `HugePages_Surp`: pages above `nr_hugepages` (overcommit).
    pub hugepages_surplus: Option<u64>,
    /// `Hugepagesize`: the default huge page size, in bytes.
    pub hugepage_size: Option<u64>,
}

/// Parses the text of `/proc/meminfo`. The error names the missing key, or the line (1-based)
/// and key whose value is not a number.
pub fn parse(text: &str) -> Result<MemInfo, String> {
    parse_at(text).map_err(|e| e.to_string())
}

fn parse_at(text: &str) -> Result<MemInfo, LineError> {
    const TOTAL: u16 = 1;
    const FREE: u16 = 2;
    const BUFFERS: u16 = 4;
    const CACHED: u16 = 8;
    const SWAP_TOTAL: u16 = 16;
    const SWAP_FREE: u16 = 32;
    /// Every key read: past the last of them (`Hugepagesize`, line 50 of 54 on 6.18) the rest
    /// of the file is not parsed.
    const ALL: u16 = 0xffff;
    let mut m = MemInfo::default();
    let mut seen = 0u16;
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let (slot, bit): (&mut u64, u16) = match key {
            "MemTotal" => (&mut m.total, TOTAL),
            "MemFree" => (&mut m.free, FREE),
            "MemAvailable" => (m.available.insert(0), 64),
            "Buffers" => (&mut m.buffers, BUFFERS),
            "Cached" => (&mut m.cached, CACHED),
            "Shmem" => (&mut m.shmem, 128),
            "SReclaimable" => (&mut m.slab_reclaimable, 256),
            "SUnreclaim" => (&mut m.slab_unreclaimable, 512),
            "SwapTotal" => (&mut m.swap_total, SWAP_TOTAL),
            "SwapFree" => (&mut m.swap_free, SWAP_FREE),
            "SwapCached" => (&mut m.swap_cached, 1024),
            "HugePages_Total" => (m.hugepages_total.insert(0), 2048),
            "HugePages_Free" => (m.hugepages_free.insert(0), 4096),
            "HugePages_Rsvd" => (m.hugepages_reserved.insert(0), 8192),
            "HugePages_Surp" => (m.hugepages_surplus.insert(0), 16384),
            "Hugepagesize" => (m.hugepage_size.insert(0), 32768),
            _ => continue,
        };
        *slot = value(rest).ok_or_else(|| LineError::new(i + 1, format!("{key}: bad value {:?}", rest.trim())))?;
        seen |= bit;
        if seen == ALL {
            break;
        }
    }
    for (bit, key) in [(TOTAL, "MemTotal"), (FREE, "MemFree"), (BUFFERS, "Buffers"), (CACHED, "Cached"), (SWAP_TOTAL, "SwapTotal"), (SWAP_FREE, "SwapFree")] {
        if seen & bit == 0 {
            return Err(LineError::new(0, format!("missing key {key}")));
        }
    }
    Ok(m)
}

/// `"   24683656 kB"` → bytes; a value without unit is taken as is.
fn value(rest: &str) -> Option<u64> {
    let mut it = rest.split_ascii_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    match it.next() {
        None => Some(n),
        Some("kB") => n.checked_mul(1024),
        Some(_) => None,
    }
}

/// `/proc/meminfo` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("meminfo")
}

/// Reads and parses `/proc/meminfo` through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<MemInfo, ProcError> {
    let text = file.read()?;
    parse_at(text).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses `/proc/meminfo` once.
pub fn read(paths: &HostPaths) -> Result<MemInfo, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn parses_meminfo_of_a_6_18_kernel_into_bytes() {
        let m = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(m.total, 25_276_063_744); // 24683656 kB
        assert_eq!(m.free, 24_196_087_808); // 23628992 kB
        assert_eq!(m.available, Some(24_906_096_640)); // 24322360 kB
        assert_eq!(m.buffers, 8_347_648); // 8152 kB
        assert_eq!(m.cached, 879_734_784); // 859116 kB
        assert_eq!(m.shmem, 9_166_848); // 8952 kB
        assert_eq!(m.slab_reclaimable, 95_977_472); // 93728 kB
        assert_eq!(m.slab_unreclaimable, 24_477_696); // 23904 kB
        assert_eq!((m.swap_total, m.swap_free, m.swap_cached), (0, 0, 0));
        assert_eq!((m.hugepages_total, m.hugepages_free, m.hugepages_reserved, m.hugepages_surplus), (Some(0), Some(0), Some(0), Some(0)));
        assert_eq!(m.hugepage_size, Some(2_097_152)); // 2048 kB
    }

    #[test]
    fn reads_the_huge_page_pool_in_pages_and_its_page_size_in_bytes() {
        let m = parse(
            "MemTotal: 8 kB\nMemFree: 4 kB\nBuffers: 1 kB\nCached: 2 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n\
             HugePages_Total:     512\nHugePages_Free:      500\nHugePages_Rsvd:        3\nHugePages_Surp:        1\n\
             Hugepagesize:    1048576 kB\n",
        )
        .unwrap();
        assert_eq!((m.hugepages_total, m.hugepages_free, m.hugepages_reserved, m.hugepages_surplus), (Some(512), Some(500), Some(3), Some(1)));
        assert_eq!(m.hugepage_size, Some(1 << 30));
        let without = parse("MemTotal: 8 kB\nMemFree: 4 kB\nBuffers: 1 kB\nCached: 2 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n").unwrap();
        assert_eq!((without.hugepages_total, without.hugepage_size), (None, None), "a kernel without hugetlbfs");
    }

    #[test]
    fn parses_meminfo_without_mem_available_of_a_2_6_32_kernel() {
        let m = read(&fixture_paths("linux-2.6.32-old")).unwrap();
        assert_eq!(m.available, None);
        assert_eq!(m.total, 4_046_798_848); // 3951952 kB
        assert_eq!(m.swap_total, 4_294_963_200); // 4194300 kB
        assert_eq!(m.swap_free, 4_194_373_632); // 4096068 kB
        assert_eq!(m.swap_cached, 10_485_760); // 10240 kB
    }

    #[test]
    fn lines_past_the_last_key_read_are_not_parsed() {
        let keys = "MemTotal: 8 kB\nMemFree: 4 kB\nMemAvailable: 6 kB\nBuffers: 1 kB\nCached: 2 kB\nSwapCached: 0 kB\n\
                    SwapTotal: 0 kB\nSwapFree: 0 kB\nShmem: 1 kB\nSReclaimable: 1 kB\nSUnreclaim: 1 kB\n\
                    HugePages_Total: 0\nHugePages_Free: 0\nHugePages_Rsvd: 0\nHugePages_Surp: 0\nHugepagesize: 2048 kB\n";
        let m = parse(&format!("{keys}MemTotal: not a number\n")).unwrap();
        assert_eq!(m.total, 8192);
        // Without MemAvailable (before 3.14) the whole file is read, and a bad line is found.
        let old = keys.replace("MemAvailable: 6 kB\n", "");
        assert_eq!(parse(&format!("{old}Cached: x\n")).unwrap_err(), "line 16: Cached: bad value \"x\"");
    }

    #[test]
    fn names_the_missing_key() {
        let err = parse("MemTotal: 1 kB\nMemFree: 1 kB\nBuffers: 1 kB\nCached: 1 kB\nSwapTotal: 0 kB\n").unwrap_err();
        assert!(err.contains("SwapFree"), "{err}");
    }

    #[test]
    fn names_the_line_of_a_bad_value() {
        let err = parse("MemTotal: 1 kB\nMemFree: x kB\n").unwrap_err();
        assert_eq!(err, "line 2: MemFree: bad value \"x kB\"");
    }

    #[test]
    fn ignores_unknown_keys_and_unitless_lines() {
        let m = parse(
            "MemTotal: 2 kB\nNewThing(x): 7 MB\nMemFree: 1 kB\nBuffers: 0 kB\nCached: 0 kB\n\
             SwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 3\ngarbage\n",
        )
        .unwrap();
        assert_eq!((m.total, m.free), (2048, 1024));
    }
}
