//! Reading a textfile directory: the `*.prom` names in it (sorted, bounded), and each file
//! read whole, once, into a buffer no bigger than the size limit.
//!
//! A cron job writes `apt.prom.$$` and renames it over `apt.prom`; the open file is one inode
//! from open to close, so a file read from one `open` is always one complete version, whatever
//! is renamed over the name meanwhile. Only regular files on the directory's own filesystem
//! are read (`fstat` of the open descriptor): a FIFO, a device or a link into `/proc` or
//! another mount is reported, never read, and the open itself is non-blocking, so a FIFO
//! swapped in between the listing and the open cannot stall the tick.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file or the directory could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The directory could not be listed.
    #[error("cannot list textfile directory {dir}: {msg}")]
    Dir { dir: PathBuf, msg: String },
    /// The file could not be opened or read.
    #[error("cannot read: {msg}")]
    Io { msg: String },
    /// Not a regular file (a FIFO, socket, device or directory named `*.prom`).
    #[error("not a regular file")]
    NotRegular,
    /// On another filesystem than the directory (a link into `/proc`, another mount).
    #[error("on another filesystem than the textfile directory (not followed)")]
    OtherFilesystem,
    /// Bigger than `file_size_limit`.
    #[error("larger than file_size_limit ({limit} bytes)")]
    TooLarge { limit: usize },
}

/// The `*.prom` files of `dir` (not dotfiles, not other names), sorted by name: the first
/// `max_files`, and how many more there were. Only `max_files` names are held at a time,
/// however many the directory has.
pub fn list(dir: &Path, max_files: usize) -> Result<(Vec<String>, usize), ReadError> {
    let err = |e: std::io::Error| ReadError::Dir { dir: dir.to_path_buf(), msg: e.to_string() };
    // The greatest of the names kept on top, to be pushed out by a smaller one.
    let mut kept = std::collections::BinaryHeap::with_capacity(max_files.saturating_add(1).min(4096));
    let mut more = 0usize;
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with('.') || !name.ends_with(".prom") {
            continue;
        }
        kept.push(name);
        if kept.len() > max_files {
            kept.pop();
            more = more.saturating_add(1);
        }
    }
    Ok((kept.into_sorted_vec(), more))
}

/// One file read whole: its bytes and its modification time (Unix seconds).
#[derive(Debug)]
pub struct FileRead {
    pub bytes: Vec<u8>,
    pub mtime: f64,
}

/// The device of the directory, to keep reads on its filesystem.
pub fn dir_device(dir: &Path) -> Result<u64, ReadError> {
    std::fs::metadata(dir).map(|m| m.dev()).map_err(|e| ReadError::Dir { dir: dir.to_path_buf(), msg: e.to_string() })
}

/// Reads `path` whole if it is a regular file on device `dev` of at most `limit` bytes. The
/// modification time is returned with an error too when the file could be examined.
pub fn read(path: &Path, dev: u64, limit: usize) -> Result<FileRead, (ReadError, Option<f64>)> {
    let io = |e: std::io::Error| (ReadError::Io { msg: e.to_string() }, None);
    let mut f = File::options().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    let mtime = meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9;
    if !meta.file_type().is_file() {
        return Err((ReadError::NotRegular, Some(mtime)));
    }
    if meta.dev() != dev {
        return Err((ReadError::OtherFilesystem, Some(mtime)));
    }
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if size > limit {
        return Err((ReadError::TooLarge { limit }, Some(mtime)));
    }
    // The file may grow between the fstat and the read: read at most one byte past the limit.
    let mut bytes = Vec::with_capacity(size);
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    (&mut f).take(cap).read_to_end(&mut bytes).map_err(|e| (ReadError::Io { msg: e.to_string() }, Some(mtime)))?;
    if bytes.len() > limit {
        return Err((ReadError::TooLarge { limit }, Some(mtime)));
    }
    Ok(FileRead { bytes, mtime })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_prom_files_sorted_without_dotfiles_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.prom", "a.prom", ".hidden.prom", "notes.txt", "c.prom.tmp", "z.prom"] {
            std::fs::write(dir.path().join(n), "x 1\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/d.prom"), "x 1\n").unwrap();
        assert_eq!(list(dir.path(), 10).unwrap(), (vec!["a.prom".into(), "b.prom".into(), "z.prom".into()], 0));
        assert_eq!(list(dir.path(), 2).unwrap(), (vec!["a.prom".into(), "b.prom".into()], 1));
        assert_eq!(list(dir.path(), 1).unwrap(), (vec!["a.prom".into()], 2));
        let e = list(&dir.path().join("missing"), 10).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn a_fifo_a_directory_and_a_file_over_the_limit_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir_device(dir.path()).unwrap();
        let fifo = dir.path().join("pipe.prom");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read(&fifo, dev, 100).unwrap_err().0, ReadError::NotRegular);
        std::fs::create_dir(dir.path().join("d.prom")).unwrap();
        assert_eq!(read(&dir.path().join("d.prom"), dev, 100).unwrap_err().0, ReadError::NotRegular);
        std::fs::write(dir.path().join("big.prom"), "x 1\n".repeat(100)).unwrap();
        let (e, mtime) = read(&dir.path().join("big.prom"), dev, 100).unwrap_err();
        assert_eq!(e, ReadError::TooLarge { limit: 100 });
        assert!(mtime.is_some_and(|t| t > 1.0e9));
        let ok = read(&dir.path().join("big.prom"), dev, 400).unwrap();
        assert_eq!(ok.bytes.len(), 400);
    }

    #[test]
    fn a_link_to_another_filesystem_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir_device(dir.path()).unwrap();
        let target = Path::new("/proc/self/status");
        if std::fs::metadata(target).map(|m| m.dev()).ok() == Some(dev) {
            println!("skipped: /proc is on the temp directory's filesystem here");
            return;
        }
        std::os::unix::fs::symlink(target, dir.path().join("proc.prom")).unwrap();
        assert_eq!(read(&dir.path().join("proc.prom"), dev, 1 << 20).unwrap_err().0, ReadError::OtherFilesystem);
    }
}
