//! Pressure stall information (PSI, Documentation/accounting/psi.rst): the host's
//! `PROC/pressure/{cpu,memory,io}` and, in the same format, a cgroup v2 cgroup's
//! `cpu.pressure`, `memory.pressure` and `io.pressure`:
//!
//! ```text
//! some avg10=0.00 avg60=0.12 avg300=0.31 total=4011645232
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```
//!
//! `some` is the share of time at least one task was stalled on the resource, `full` the share
//! in which all non-idle tasks were; `total` is the stall time in microseconds since boot (or
//! since the cgroup was made), a counter. The host's `cpu` file has a `full` line (zero) since
//! Linux 5.13 and none before. Only `total` is kept: the averages are the kernel's own
//! smoothing of it, and a rate of the counter gives any window. Unknown lines and keys are
//! ignored.

use super::{ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::Path;

/// The resources PSI reports, in this order everywhere (`cpu`, `memory`, `io`).
pub const RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// The stall times of one resource in seconds: `[some, full]`; `None` where the file has no
/// such line.
pub type Stall = [Option<f64>; 2];

/// Parses one pressure file into `[some, full]` stall seconds.
pub fn parse(text: &str) -> Stall {
    let mut out = [None; 2];
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let i = match it.next() {
            Some("some") => 0,
            Some("full") => 1,
            _ => continue,
        };
        for kv in it {
            if let Some(v) = kv.strip_prefix("total=") {
                out[i] = v.parse::<u64>().ok().map(|us| us as f64 / 1e6);
            }
        }
    }
    out
}

/// The three pressure files of the host (`PROC/pressure/cpu`) or of a cgroup v2 directory
/// (`<dir>/cpu.pressure`), kept open.
#[derive(Debug)]
pub struct PressureFiles {
    files: [ProcFile; 3],
}

impl PressureFiles {
    /// The host's: `PROC/pressure/{cpu,memory,io}`.
    pub fn host(paths: &HostPaths) -> Self {
        PressureFiles { files: RESOURCES.map(|r| ProcFile::new(paths.proc(&format!("pressure/{r}")))) }
    }

    /// A cgroup v2 directory's `{cpu,memory,io}.pressure`.
    pub fn cgroup(dir: &Path) -> Self {
        PressureFiles { files: RESOURCES.map(|r| ProcFile::new(dir.join(format!("{r}.pressure")))) }
    }

    /// Whether the host has PSI (`PROC/pressure` exists: Linux 4.20+ built with
    /// `CONFIG_PSI`, not booted with `psi=0`).
    pub fn host_has_psi(paths: &HostPaths) -> bool {
        paths.proc("pressure/cpu").exists()
    }

    /// Each resource's `[some, full]` in [`RESOURCES`] order; a file that cannot be read is
    /// an error naming it (a cgroup without PSI files has none to read: check before).
    pub fn read(&mut self) -> Result<[Stall; 3], ProcError> {
        let mut out = [[None; 2]; 3];
        for (o, f) in out.iter_mut().zip(self.files.iter_mut()) {
            *o = parse(f.read()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_is_microseconds_made_seconds_for_some_and_full() {
        let text = "some avg10=23.80 avg60=34.45 avg300=11.83 total=4011645232\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n";
        assert_eq!(parse(text), [Some(4011.645232), Some(1.5)]);
    }

    #[test]
    fn a_file_without_a_full_line_or_with_garbage_leaves_that_stall_out() {
        assert_eq!(parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"), [Some(7e-6), None]);
        assert_eq!(parse("some total=x\nnoise\nfull avg10=1\n"), [None, None]);
        assert_eq!(parse(""), [None, None]);
    }

    #[test]
    fn this_machines_pressure_files_parse_and_their_totals_never_go_back() {
        let paths = HostPaths::default();
        if !PressureFiles::host_has_psi(&paths) {
            println!("skipped: this kernel has no /proc/pressure (CONFIG_PSI off or psi=0)");
            return;
        }
        let mut files = PressureFiles::host(&paths);
        let first = files.read().unwrap();
        // Burn a little CPU so that at least something can move.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let second = files.read().unwrap();
        for (r, (a, b)) in RESOURCES.iter().zip(first.iter().zip(&second)) {
            assert!(a[0].is_some(), "{r}: no `some` line");
            for (x, y) in a.iter().zip(b) {
                if let (Some(x), Some(y)) = (x, y) {
                    assert!(y >= x, "{r}: total went back from {x} to {y}");
                }
            }
        }
    }

    #[test]
    fn a_cgroups_pressure_files_are_read_from_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cpu.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("memory.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
            .unwrap();
        let mut files = PressureFiles::cgroup(dir.path());
        let e = files.read().unwrap_err().to_string();
        assert!(e.contains("io.pressure"), "{e}");
        std::fs::write(dir.path().join("io.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=3\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n")
            .unwrap();
        assert_eq!(files.read().unwrap(), [[Some(2.0), Some(1.0)], [Some(0.0), Some(0.0)], [Some(3e-6), Some(3e-6)]]);
    }
}
