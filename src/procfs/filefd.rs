//! `/proc/sys/fs/file-nr`: file handles allocated, allocated but unused (always 0 since 2.6),
//! and the system-wide maximum (`fs.file-max`).
//!
//! ```text
//! 1376    0    2466239  (tab-separated)
//! ```

use super::{num, LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// The three numbers of `file-nr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileNr {
    pub allocated: u64,
    pub unused: u64,
    pub maximum: u64,
}

/// Parses the text of `file-nr`.
pub fn parse(text: &str) -> Result<FileNr, LineError> {
    let mut it = text.split_ascii_whitespace();
    Ok(FileNr { allocated: num(it.next(), 1, "allocated")?, unused: num(it.next(), 1, "unused")?, maximum: num(it.next(), 1, "maximum")? })
}

/// `/proc/sys/fs/file-nr` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("sys/fs/file-nr")
}

/// Reads and parses `file-nr` through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<FileNr, ProcError> {
    let text = file.read()?;
    parse(text).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses `file-nr` once.
pub fn read(paths: &HostPaths) -> Result<FileNr, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_the_allocated_and_maximum_handles_of_a_capture() {
        assert_eq!(read(&fixture_paths("linux-6.18-vm")).unwrap(), FileNr { allocated: 1376, unused: 0, maximum: 2466239 });
    }

    #[test]
    fn a_maximum_of_a_64_bit_kernel_fits_and_a_short_file_is_an_error() {
        // fs.file-max may be set to LONG_MAX.
        assert_eq!(parse("1\t0\t9223372036854775807\n").unwrap().maximum, 9_223_372_036_854_775_807);
        assert_eq!(parse("1\t0\n").unwrap_err().to_string(), "line 1: maximum: missing field");
    }
}
