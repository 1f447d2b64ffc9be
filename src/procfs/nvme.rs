//! `/sys/class/nvme/nvme*`: NVMe controllers, one value per file (`drivers/nvme/host/sysfs.c`):
//!
//! ```text
//! /sys/class/nvme/nvme0/model         Samsung SSD 980 PRO 1TB
//! /sys/class/nvme/nvme0/serial        S5GXNF0R123456A
//! /sys/class/nvme/nvme0/firmware_rev  5B2QGXA7
//! /sys/class/nvme/nvme0/state         live
//! ```
//!
//! The controller strings are space-padded by the device; they are trimmed. `state` is `live`
//! in service, and `new`, `resetting`, `connecting`, `deleting`, `dead` otherwise.

use super::ProcError;
use crate::units::HostPaths;
use std::path::PathBuf;

/// At most this many controllers are read.
pub const MAX_CONTROLLERS: usize = 1024;

/// One controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controller {
    /// `nvme0`.
    pub device: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    pub state: String,
}

/// `/sys/class/nvme` below the host's `/sys`.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.sys("class/nvme")
}

fn field(d: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(d.join(name)).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Reads every controller, sorted by name. No class directory is a `NotFound` error (no NVMe
/// driver loaded).
pub fn read(paths: &HostPaths) -> Result<Vec<Controller>, ProcError> {
    let d = dir(paths);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&d).map_err(|e| ProcError::io(&d, e))? {
        let e = e.map_err(|e| ProcError::io(&d, e))?;
        let Some(device) = e.file_name().to_str().filter(|n| n.starts_with("nvme")).map(str::to_string) else { continue };
        let c = d.join(&device);
        out.push(Controller { model: field(&c, "model"), serial: field(&c, "serial"), firmware: field(&c, "firmware_rev"), state: field(&c, "state"), device });
        if out.len() >= MAX_CONTROLLERS {
            break;
        }
    }
    out.sort_by(|a, b| a.device.cmp(&b.device));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_model_serial_firmware_and_state_trimmed() {
        let c = read(&fixture_paths("linux-6.8-sensors")).unwrap();
        assert_eq!(
            c[0],
            Controller {
                device: "nvme0".into(),
                model: "Samsung SSD 980 PRO 1TB".into(),
                serial: "S5GXNF0R123456A".into(),
                firmware: "5B2QGXA7".into(),
                state: "live".into()
            }
        );
        assert_eq!((c[1].model.as_str(), c[1].serial.as_str(), c[1].state.as_str()), ("INTEL SSDPE2KX040T8", "PHLJ9123004A4P0DGN", "resetting"));
    }

    #[test]
    fn a_host_without_nvme_is_not_found() {
        assert!(read(&fixture_paths("linux-6.18-vm")).unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
    }
}
