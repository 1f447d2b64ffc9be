//! `type: file`: where the file is, its format and the rotation of `otlp_json` files.
//!
//! ```yaml
//! exporters:
//!   - type: file
//!     path: /var/lib/node_exporter/textfile_collector/metricsd.prom
//!     format: prometheus            # or otlp_json
//!   - type: file
//!     path: /var/log/metricsd/metrics.jsonl
//!     format: otlp_json
//!     rotation: {max_megabytes: 100, max_backups: 5}
//! ```

use crate::pipeline::queue::{QueueConfig, RetryConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default `rotation.max_megabytes`: the Collector's file exporter's.
pub const DEFAULT_MAX_MEGABYTES: u64 = 100;
/// Default `rotation.max_backups` (the Collector keeps 100; five bound the disk used to
/// 600 MB by default).
pub const DEFAULT_MAX_BACKUPS: usize = 5;
/// Largest `rotation.max_megabytes`.
pub const MAX_MEGABYTES: u64 = 1 << 20;
/// Largest `rotation.max_backups`.
pub const MAX_BACKUPS: usize = 1000;

/// What the file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Prometheus text exposition of the latest batch, the file replaced atomically at each
    /// batch: another node_exporter's textfile directory can read it.
    #[default]
    Prometheus,
    /// One OTLP/JSON `ExportMetricsServiceRequest` per line, appended, rotated by size (the
    /// Collector's file exporter's `format: json`).
    OtlpJson,
}

/// `rotation`: when an `otlp_json` file is rotated and how many old ones are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Rotate before a line would take the file past this many megabytes (default 100).
    pub max_megabytes: u64,
    /// Rotated files kept: `path.1` (the newest) to `path.N` (default 5; 0: none kept).
    pub max_backups: usize,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig { max_megabytes: DEFAULT_MAX_MEGABYTES, max_backups: DEFAULT_MAX_BACKUPS }
    }
}

impl RotationConfig {
    /// The size limit in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_megabytes.saturating_mul(1024 * 1024)
    }
}

/// `type = "file"`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// The file to write (absolute); its directory must exist and be writable.
    pub path: PathBuf,
    /// `prometheus` (default): the latest batch as Prometheus text, replaced atomically;
    /// `otlp_json`: every batch appended as one OTLP/JSON line.
    pub format: FileFormat,
    /// Size rotation of `otlp_json` files (default 100 MB, 5 backups; rotation is always on, so
    /// the disk used is bounded). Not for `prometheus`, which holds one batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationConfig>,
    /// Queue bound and optional spool.
    pub queue: QueueConfig,
    /// Retries of a failed write (a full disk): the same keys as every exporter's.
    pub retry: RetryConfig,
}

impl FileConfig {
    /// The effective rotation.
    pub fn rotation(&self) -> RotationConfig {
        self.rotation.unwrap_or_default()
    }

    /// Problems found without writing: a relative path, a missing or unwritable directory.
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.path.is_absolute() || self.path.file_name().is_none() {
            v.push(format!("`path` {:?} must be an absolute path to a file", self.path.display().to_string()));
            return v;
        }
        if self.path.is_dir() {
            v.push(format!("`path` {} is a directory", self.path.display()));
        }
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            v.push(format!("`path`: directory {} does not exist", dir.display()));
        } else if !writable(dir) {
            v.push(format!("`path`: directory {} is not writable by this user", dir.display()));
        }
        match (self.format, self.rotation) {
            (FileFormat::Prometheus, Some(_)) => v.push("`rotation` is for format otlp_json (a prometheus file holds one batch)".into()),
            (_, Some(r)) => {
                if !(1..=MAX_MEGABYTES).contains(&r.max_megabytes) {
                    v.push(format!("`rotation.max_megabytes` must be from 1 to {MAX_MEGABYTES}"));
                }
                if r.max_backups > MAX_BACKUPS {
                    v.push(format!("`rotation.max_backups` must be at most {MAX_BACKUPS}"));
                }
            }
            _ => {}
        }
        v
    }
}

/// Whether this process may create files in `dir` (`access(2)` with the real IDs).
fn writable(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated path; access only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collectors_keys_load_and_rotation_defaults_bound_the_disk() {
        let c: FileConfig = serde_yaml_ng::from_str("path: /tmp/m.jsonl\nformat: otlp_json\nrotation: {max_megabytes: 10}\n").unwrap();
        assert_eq!((c.format, c.rotation().max_bytes(), c.rotation().max_backups), (FileFormat::OtlpJson, 10 << 20, 5));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let d: FileConfig = serde_yaml_ng::from_str("path: /tmp/m.prom\n").unwrap();
        assert_eq!((d.format, d.rotation()), (FileFormat::Prometheus, RotationConfig { max_megabytes: 100, max_backups: 5 }));
        assert!(serde_yaml_ng::from_str::<FileConfig>("path: /tmp/x\nrotate: {}\n").unwrap_err().to_string().contains("rotate"));
    }

    #[test]
    fn a_missing_or_unwritable_directory_and_bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = FileConfig { path: dir.path().join("no/such/m.prom"), ..Default::default() };
        assert!(missing.validate().join("").contains("does not exist"), "{:?}", missing.validate());
        let relative = FileConfig { path: "m.prom".into(), ..Default::default() };
        assert!(relative.validate().join("").contains("absolute"));
        let is_dir = FileConfig { path: dir.path().to_path_buf(), ..Default::default() };
        assert!(is_dir.validate().join("").contains("is a directory"));
        let rot = FileConfig { path: dir.path().join("m.prom"), rotation: Some(RotationConfig::default()), ..Default::default() };
        assert!(rot.validate().join("").contains("otlp_json"));
        let zero = FileConfig {
            path: dir.path().join("m"),
            format: FileFormat::OtlpJson,
            rotation: Some(RotationConfig { max_megabytes: 0, max_backups: 5000 }),
            ..Default::default()
        };
        let e = zero.validate().join("\n");
        assert!(e.contains("max_megabytes") && e.contains("max_backups"), "{e}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            let ro = tempfile::tempdir().unwrap();
            std::fs::set_permissions(ro.path(), std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
            let c = FileConfig { path: ro.path().join("m.prom"), ..Default::default() };
            assert!(c.validate().join("").contains("not writable"), "{:?}", c.validate());
        }
    }
}
