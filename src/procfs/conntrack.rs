//! `/proc/sys/net/netfilter/nf_conntrack_count` and `nf_conntrack_max`: the entries in the
//! connection-tracking table and its limit, one number per file. The files exist only while
//! the `nf_conntrack` module is loaded, and show the reading process's network namespace.
//!
//! ```text
//! 0
//! ```

use super::{num, ProcError, ProcFile};
use crate::units::HostPaths;

/// Entries in use and the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conntrack {
    pub count: u64,
    pub max: u64,
}

/// The two files, kept open between ticks.
#[derive(Debug)]
pub struct ConntrackFiles {
    count: ProcFile,
    max: ProcFile,
}

fn one(file: &mut ProcFile, what: &str) -> Result<u64, ProcError> {
    let text = file.read()?;
    num(text.split_ascii_whitespace().next(), 1, what).map_err(|e| super::at(file.path(), e))
}

impl ConntrackFiles {
    pub fn new(paths: &HostPaths) -> Self {
        ConntrackFiles {
            count: ProcFile::new(paths.proc("sys/net/netfilter/nf_conntrack_count")),
            max: ProcFile::new(paths.proc("sys/net/netfilter/nf_conntrack_max")),
        }
    }

    /// Reads both files; a `NotFound` error means the module is not loaded.
    pub fn read(&mut self) -> Result<Conntrack, ProcError> {
        Ok(Conntrack { count: one(&mut self.count, "nf_conntrack_count")?, max: one(&mut self.max, "nf_conntrack_max")? })
    }
}

/// Reads both files once.
pub fn read(paths: &HostPaths) -> Result<Conntrack, ProcError> {
    ConntrackFiles::new(paths).read()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_the_entries_and_the_limit_of_a_capture() {
        assert_eq!(read(&fixture_paths("linux-6.18-vm")).unwrap(), Conntrack { count: 0, max: 262144 });
    }

    #[test]
    fn without_the_module_the_error_is_not_found() {
        let err = read(&fixture_paths("linux-5.15-server")).unwrap_err();
        assert!(err.is_io_kind(std::io::ErrorKind::NotFound), "{err}");
    }
}
