//! `statvfs(3)` of a mount point, with byte counts computed as `df` computes them.
//!
//! ```text
//! f_frsize=4096 f_blocks=65536 f_bfree=40960 f_bavail=32768 f_files=16384 f_ffree=12000
//! → size 256 MiB, used (blocks − bfree) 96 MiB, available (bavail) 128 MiB,
//!   reserved for root (bfree − bavail) 32 MiB, Use% = used ÷ (used + available) = 42.9 %
//! ```
//!
//! Block counts are in units of `f_frsize` (the fragment size; `f_bsize` when a filesystem
//! leaves `f_frsize` 0). In a container reading its host, pass `paths.root(mount_point)`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Block and inode counts of one filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Bytes per block of the counts below (`f_frsize`).
    pub block_size: u64,
    /// Blocks in all (`f_blocks`).
    pub blocks: u64,
    /// Free blocks, including those reserved for root (`f_bfree`).
    pub bfree: u64,
    /// Blocks free to unprivileged users (`f_bavail`).
    pub bavail: u64,
    /// Inodes in all (`f_files`).
    pub files: u64,
    /// Free inodes (`f_ffree`).
    pub ffree: u64,
    /// Inodes free to unprivileged users (`f_favail`).
    pub favail: u64,
}

impl FsStats {
    /// Size of the filesystem: `blocks × block_size`.
    pub fn total_bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }

    /// `df`'s Used: `(blocks − bfree) × block_size`.
    pub fn used_bytes(&self) -> u64 {
        self.blocks.saturating_sub(self.bfree).saturating_mul(self.block_size)
    }

    /// `df`'s Avail: `bavail × block_size` (the `free` state of `system.filesystem.usage`).
    pub fn available_bytes(&self) -> u64 {
        self.bavail.saturating_mul(self.block_size)
    }

    /// Free blocks reserved for root: `(bfree − bavail) × block_size` (the `reserved` state).
    pub fn reserved_bytes(&self) -> u64 {
        self.bfree.saturating_sub(self.bavail).saturating_mul(self.block_size)
    }

    /// `df`'s Use% as a fraction: `used ÷ (used + available)`; 0 for an empty filesystem.
    pub fn utilization(&self) -> f64 {
        let used = self.used_bytes() as f64;
        let denom = used + self.available_bytes() as f64;
        if denom == 0.0 {
            0.0
        } else {
            used / denom
        }
    }

    /// Inodes in use: `files − ffree`.
    pub fn inodes_used(&self) -> u64 {
        self.files.saturating_sub(self.ffree)
    }

    fn from_raw(s: &libc::statvfs) -> FsStats {
        // The field widths differ between targets (u32 on some 32-bit ones); widen them all.
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let (frsize, bsize) = (s.f_frsize as u64, s.f_bsize as u64);
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        FsStats {
            block_size: if frsize != 0 { frsize } else { bsize },
            blocks: s.f_blocks as u64,
            bfree: s.f_bfree as u64,
            bavail: s.f_bavail as u64,
            files: s.f_files as u64,
            ffree: s.f_ffree as u64,
            favail: s.f_favail as u64,
        }
    }
}

/// `statvfs(path)`.
pub fn statvfs(path: &Path) -> Result<FsStats, std::io::Error> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: an all-zero statvfs is a valid value of a plain C struct.
    let mut out: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `out` a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut out) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(FsStats::from_raw(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_used_available_and_reserved_bytes_as_df_does() {
        let s = FsStats { block_size: 4096, blocks: 65536, bfree: 40960, bavail: 32768, files: 16384, ffree: 12000, favail: 12000 };
        assert_eq!(s.total_bytes(), 268_435_456); // 256 MiB
        assert_eq!(s.used_bytes(), 100_663_296); // 24576 blocks = 96 MiB
        assert_eq!(s.available_bytes(), 134_217_728); // 128 MiB
        assert_eq!(s.reserved_bytes(), 33_554_432); // 8192 blocks = 32 MiB
        assert!((s.utilization() - 96.0 / 224.0).abs() < 1e-12);
        assert_eq!(s.inodes_used(), 4384);
        assert_eq!(FsStats::default().utilization(), 0.0);
    }

    #[test]
    fn statvfs_of_the_root_is_consistent() {
        let s = statvfs(Path::new("/")).unwrap();
        assert!(s.block_size > 0);
        assert!(s.bfree <= s.blocks && s.bavail <= s.bfree);
        assert_eq!(s.used_bytes() + s.reserved_bytes() + s.available_bytes(), s.total_bytes());
    }

    #[test]
    fn statvfs_of_a_missing_path_is_not_found() {
        let e = statvfs(Path::new("/nonexistent/metricsd")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
