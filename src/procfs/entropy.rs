//! `/proc/sys/kernel/random/entropy_avail` and `poolsize`: bits of entropy the kernel's random
//! pool holds, and its size in bits, one number per file. Since 5.18 the pool is a fixed
//! 256-bit hash and `entropy_avail` is 256 once the generator is seeded.
//!
//! ```text
//! 256
//! ```

use super::{num, ProcError, ProcFile};
use crate::units::HostPaths;

/// The two numbers, in bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entropy {
    pub available: u64,
    pub pool_size: u64,
}

/// The two files, kept open between ticks.
#[derive(Debug)]
pub struct EntropyFiles {
    available: ProcFile,
    pool_size: ProcFile,
}

fn one(file: &mut ProcFile, what: &str) -> Result<u64, ProcError> {
    let text = file.read()?;
    num(text.split_ascii_whitespace().next(), 1, what).map_err(|e| super::at(file.path(), e))
}

impl EntropyFiles {
    pub fn new(paths: &HostPaths) -> Self {
        EntropyFiles {
            available: ProcFile::new(paths.proc("sys/kernel/random/entropy_avail")),
            pool_size: ProcFile::new(paths.proc("sys/kernel/random/poolsize")),
        }
    }

    /// Reads both files.
    pub fn read(&mut self) -> Result<Entropy, ProcError> {
        Ok(Entropy { available: one(&mut self.available, "entropy_avail")?, pool_size: one(&mut self.pool_size, "poolsize")? })
    }
}

/// Reads both files once.
pub fn read(paths: &HostPaths) -> Result<Entropy, ProcError> {
    EntropyFiles::new(paths).read()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_the_available_bits_and_the_pool_size_of_a_capture() {
        assert_eq!(read(&fixture_paths("linux-6.18-vm")).unwrap(), Entropy { available: 256, pool_size: 256 });
    }

    #[test]
    fn an_empty_file_is_an_error_naming_it() {
        let (dir, paths) = crate::collectors::testutil::fixture_copy("linux-6.18-vm");
        crate::collectors::testutil::write(&dir, "proc/sys/kernel/random/poolsize", "");
        let err = read(&paths).unwrap_err().to_string();
        assert!(err.contains("poolsize") && err.contains("missing field"), "{err}");
    }
}
