//! The two ways the file exporter writes, both blocking (run on a blocking thread):
//!
//! - [`replace`]: the whole file at once, atomically: written to `.NAME.tmp` in the same
//!   directory (a dotfile not ending in `.prom`, so a textfile collector never reads it),
//!   `fsync`ed, renamed over `NAME`, and the directory `fsync`ed. A reader opening `NAME` gets
//!   the previous file or the new one, whole, never a mix or a partial file.
//! - [`append`]: one line at the end of the file, rotated first when the line would take the
//!   file past the size limit (`NAME` → `NAME.1` → … → `NAME.N`, the oldest deleted). A write
//!   that fails half-way (a full disk) is cut back, so the file only ever holds whole lines.

use super::config::RotationConfig;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a write failed: what was being done, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct WriteError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl WriteError {
    fn new(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        WriteError { what, path: path.to_path_buf(), source }
    }

    /// Whether trying again later may work: a full disk or quota, an I/O error, an interrupted
    /// call. Permissions, a read-only filesystem, a missing directory or a path that is a
    /// directory need the operator, not a retry.
    pub fn retryable(&self) -> bool {
        !matches!(
            self.source.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT | libc::ENOTDIR | libc::EISDIR | libc::ENAMETOOLONG | libc::ELOOP)
        )
    }
}

/// The temporary file [`replace`] writes first.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces `path` with `body` atomically (see the module docs).
pub fn replace(path: &Path, body: &[u8]) -> Result<(), WriteError> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp).map_err(|e| WriteError::new("cannot create", &tmp, e))?;
        f.write_all(body).map_err(|e| WriteError::new("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| WriteError::new("cannot sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| WriteError::new("cannot rename into", path, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable once the directory is: a crash right after keeps the new file.
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The name of the `n`th rotated file.
pub fn backup_path(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Appends `line` to `path`, rotating first when it would take the file past the limit.
pub fn append(path: &Path, line: &[u8], rotation: &RotationConfig) -> Result<(), WriteError> {
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(WriteError::new("cannot examine", path, e)),
    };
    let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
    if size > 0 && size.saturating_add(len) > rotation.max_bytes() {
        rotate(path, rotation.max_backups)?;
    }
    let mut f = OpenOptions::new().append(true).create(true).mode(0o644).open(path).map_err(|e| WriteError::new("cannot open", path, e))?;
    let before = f.metadata().map(|m| m.len()).map_err(|e| WriteError::new("cannot examine", path, e))?;
    if let Err(e) = f.write_all(line).and_then(|_| f.sync_data()) {
        // Cut a partial line back off, so the file holds whole lines only.
        let _ = f.set_len(before);
        return Err(WriteError::new("cannot append to", path, e));
    }
    Ok(())
}

/// `path.N-1` → `path.N` … `path` → `path.1`; with no backups kept, `path` is deleted.
fn rotate(path: &Path, backups: usize) -> Result<(), WriteError> {
    if backups == 0 {
        return std::fs::remove_file(path).map_err(|e| WriteError::new("cannot remove (rotation)", path, e));
    }
    for n in (1..backups).rev() {
        let from = backup_path(path, n);
        match std::fs::rename(&from, backup_path(path, n + 1)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WriteError::new("cannot rotate", &from, e)),
        }
    }
    std::fs::rename(path, backup_path(path, 1)).map_err(|e| WriteError::new("cannot rotate", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_leaves_the_new_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.prom");
        replace(&p, b"a 1\n").unwrap();
        replace(&p, b"a 2\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left");
        assert_eq!(temp_path(&p), dir.path().join(".m.prom.tmp"));
    }

    #[test]
    fn rotation_by_size_keeps_max_backups_files_of_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        // 1 MiB limit, lines of 300 KiB: three lines a file.
        let rot = RotationConfig { max_megabytes: 1, max_backups: 2 };
        for i in 0..20u8 {
            let mut line = vec![b'a' + i; 300 * 1024];
            line.push(b'\n');
            append(&p, &line, &rot).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["m.jsonl", "m.jsonl.1", "m.jsonl.2"]);
        let lines = |f: &str| std::fs::read(dir.path().join(f)).unwrap().split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| l[0]).collect::<Vec<u8>>();
        // 20 lines: 18..=19 in the file, 15..=17 in .1, 12..=14 in .2.
        assert_eq!(lines("m.jsonl"), [b'a' + 18, b'a' + 19]);
        assert_eq!(lines("m.jsonl.1"), [b'a' + 15, b'a' + 16, b'a' + 17]);
        assert_eq!(lines("m.jsonl.2"), [b'a' + 12, b'a' + 13, b'a' + 14]);
        for f in &names {
            assert!(std::fs::metadata(dir.path().join(f)).unwrap().len() <= rot.max_bytes());
        }
        // No backups: the file is started afresh.
        let q = dir.path().join("n.jsonl");
        let none = RotationConfig { max_megabytes: 1, max_backups: 0 };
        for _ in 0..4 {
            append(&q, &[b'x'; 600 * 1024], &none).unwrap();
        }
        assert_eq!(std::fs::metadata(&q).unwrap().len(), 600 * 1024);
        assert!(!backup_path(&q, 1).exists());
    }

    #[test]
    fn a_missing_directory_is_not_retryable_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gone/m.prom");
        let e = replace(&p, b"a 1\n").unwrap_err();
        assert!(!e.retryable());
        assert!(e.to_string().contains("gone/.m.prom.tmp"), "{e}");
        let full = WriteError::new("cannot write", &p, std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(full.retryable());
    }
}
