//! The agent's own memory: allocator settings, and giving back the pages start-up touched.
//!
//! **Allocator (glibc).** [`tune_allocator`] runs before any thread starts:
//! - one malloc arena (`M_ARENA_MAX=1`) instead of one per thread: the agent's threads take
//!   turns (a tick runs on one thread at a time), and every extra arena keeps its own free
//!   memory;
//! - fixed trim and mmap thresholds of 1 MiB: a tick's transient buffers (the encoded batch, the
//!   compressed body) come from the heap and are reused tick after
//!   tick, instead of glibc's adaptive thresholds handing pages back to the kernel after each
//!   tick and faulting them in again at the next (both showed in profiles: `madvise`, page
//!   faults and `clear_page` on every tick); blocks larger than 1 MiB (a big scrape body) are
//!   mapped and unmapped on their own, so they never stay resident.
//!
//! **Start-up pages.** Most of a small agent's resident memory is not heap but the pages of its
//! own executable and of libc that the kernel mapped while it started: the config parser,
//! resource detection, TLS setup, and each fault maps up to 16 neighbouring pages
//! (`fault_around_bytes`). [`release_startup_pages`] drops the page-table entries of every
//! read-only, file-backed private mapping that has no private (copy-on-write) pages; what a
//! tick still uses is faulted back in from the page cache at the next tick. This is what the
//! kernel's own reclaim may do to clean file pages at any moment, so it cannot change what the
//! program reads: only mappings whose every page is an unmodified page of the file are touched.
//!
//! ```text
//! 55d0c9a00000-55d0ca142000 r-xp 001a0000 fe:00 5376126    /usr/bin/metricsd   (smaps header)
//! Rss:                5104 kB
//! Anonymous:             0 kB
//! ```

/// Allocator thresholds (bytes): see the module docs.
const TRIM_AND_MMAP_THRESHOLD: i32 = 1 << 20;

/// Sets the allocator up for a long-running agent; call first thing in `main`.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, TRIM_AND_MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_AND_MMAP_THRESHOLD);
    }
}

/// One mapping of `/proc/self/smaps` that may be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Droppable {
    pub start: usize,
    pub end: usize,
    /// Resident kB before dropping.
    pub rss_kb: u64,
}

/// The mappings of an smaps text that are read-only, private, file-backed and hold no private
/// (anonymous, copy-on-write) page: exactly those whose pages the kernel can drop and read
/// again from the file unchanged.
pub fn droppable(smaps: &str) -> Vec<Droppable> {
    let mut out = Vec::new();
    // (start, end, eligible so far, rss kB)
    let mut cur: Option<(usize, usize, bool, u64)> = None;
    let mut finish = |cur: &mut Option<(usize, usize, bool, u64)>, anon_ok: bool| {
        if let Some((start, end, ok, rss)) = cur.take() {
            if ok && anon_ok && rss > 0 {
                out.push(Droppable { start, end, rss_kb: rss });
            }
        }
    };
    let mut anon_zero = false;
    for line in smaps.lines() {
        let mut f = line.split_ascii_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|(a, _)| !a.is_empty() && a.bytes().all(|c| c.is_ascii_hexdigit())) {
            finish(&mut cur, anon_zero);
            anon_zero = false;
            let (perms, _offset, _dev, inode, path) = (f.next().unwrap_or(""), f.next(), f.next(), f.next().unwrap_or("0"), f.next().unwrap_or(""));
            let p = perms.as_bytes();
            let ok = p.len() == 4 && p[1] == b'-' && p[3] == b'p' && inode != "0" && path.starts_with('/');
            match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                (Ok(s), Ok(e)) => cur = Some((s, e, ok, 0)),
                _ => cur = None,
            }
            continue;
        }
        let value = || f.clone().next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => {
                if let (Some(c), Some(v)) = (cur.as_mut(), value()) {
                    c.3 = v;
                }
            }
            "Anonymous:" => anon_zero = value() == Some(0),
            _ => {}
        }
    }
    finish(&mut cur, anon_zero);
    out
}

/// Drops the resident pages of the mappings [`droppable`] selects in this process; returns the
/// kB they held. Failures (no smaps, a mapping gone meanwhile) only mean less is released.
pub fn release_startup_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return 0 };
    let mut released = 0;
    for d in droppable(&smaps) {
        // SAFETY: the range is a whole mapping of this process that is read-only, private,
        // file-backed and has no anonymous page, so MADV_DONTNEED only drops clean page-cache
        // pages, which later accesses fault in again unchanged.
        if unsafe { libc::madvise(d.start as *mut libc::c_void, d.end - d.start, libc::MADV_DONTNEED) } == 0 {
            released += d.rss_kb;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5621bb863000-5621bba04000 r--p 00000000 fe:00 5376126                    /usr/bin/metricsd
Size:               1668 kB
Rss:                 820 kB
Anonymous:             0 kB
5621bba04000-5621bc146000 r-xp 001a0000 fe:00 5376126                    /usr/bin/metricsd
Rss:                5104 kB
Anonymous:             0 kB
5621bc146000-5621bc180000 r--p 008e1000 fe:00 5376126                    /usr/bin/metricsd
Rss:                 232 kB
Anonymous:           232 kB
5621bc180000-5621bc184000 rw-p 0091a000 fe:00 5376126                    /usr/bin/metricsd
Rss:                  16 kB
Anonymous:            16 kB
5621bc184000-5621bc1a5000 rw-p 00000000 00:00 0                          [heap]
Rss:                 472 kB
Anonymous:           472 kB
7f8d64000000-7f8d64021000 r-xp 00000000 00:00 0 
Rss:                   4 kB
Anonymous:             4 kB
7ffd1c5f2000-7ffd1c5f4000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
7f8d6a000000-7f8d6a1d0000 r-xp 00026000 fe:00 131090                     /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1220 kB
Anonymous:             0 kB
";

    #[test]
    fn selects_only_clean_read_only_file_mappings() {
        let d = droppable(SMAPS);
        let rss: Vec<u64> = d.iter().map(|d| d.rss_kb).collect();
        // The executable's headers/rodata and text, and libc's text. Not: the RELRO part
        // (relocated, so private pages), data, heap, anonymous or vdso mappings.
        assert_eq!(rss, [820, 5104, 1220]);
        assert_eq!(d[1], Droppable { start: 0x5621bba04000, end: 0x5621bc146000, rss_kb: 5104 });
    }

    #[test]
    fn dropping_start_up_pages_keeps_the_process_working_and_lowers_its_resident_set() {
        fn rss_kb() -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
        }
        let before = rss_kb();
        let released = release_startup_pages();
        let after = rss_kb();
        assert!(released > 0, "a test binary has clean text pages");
        assert!(after < before, "VmRSS {before} kB → {after} kB");
        // Code and read-only data come back on use: parse, format and hash something.
        let v: Vec<String> = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(v.iter().filter(|s| s.len() == 3).count(), 1000 - 0x100);
        assert!(!droppable(&std::fs::read_to_string("/proc/self/smaps").unwrap()).is_empty());
    }
}
