//! `collector.filesystem`: which mounts to report (by mount point and type) and how long a tick
//! waits for statvfs.
//!
//! ```yaml
//! collector:
//!   filesystem: {exclude_types: [overlay], statvfs_timeout: 250ms}
//! ```

use crate::collectors::glob_match;
use crate::procfs::mountinfo::FsFilter;
use crate::units::ConfigDuration;
use serde::{Deserialize, Serialize};

/// `collector.filesystem`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Run this collector (default true; metricsd's `enable_disk` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Mount points to report, as paths or patterns where `*` matches any run of characters,
    /// `/` included (`/data*`, `/mnt/*`). Empty (the default): every mount point.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_mountpoints: Vec<String>,
    /// Mount points not to report, in the same form; wins over `include_mountpoints`. Unset
    /// (the default): [`DEFAULT_EXCLUDE_MOUNTPOINTS`], node_exporter's default, i.e. nothing
    /// below `/dev`, `/proc` and `/sys` (`/dev/shm`, a cgroup v1 host's `/sys/fs/cgroup` tmpfs),
    /// systemd's per-service credential mounts and container runtimes' layer mounts. A list
    /// replaces it; `[]` reports every mount point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_mountpoints: Option<Vec<String>>,
    /// Filesystem types to report (`ext4`, `xfs`, `nfs*`, `fuse.*`). Empty (the default): every
    /// type but the pseudo filesystems, with `include_tmpfs` and `include_images` deciding the
    /// memory-backed and image ones. Non-empty: exactly the matching types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_types: Vec<String>,
    /// Filesystem types not to report; wins over everything else (`["overlay"]` drops
    /// containers' root filesystems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_types: Vec<String>,
    /// Report `tmpfs` and `devtmpfs` mounts (default true).
    pub include_tmpfs: bool,
    /// Report read-only image filesystems, `squashfs`, `erofs`, `iso9660` (default false: they
    /// are always 100 % full).
    pub include_images: bool,
    /// How long one tick waits for statvfs of the mounts, all together (default `"1s"`). Keep it
    /// below `collector.timeout`. A mount that has not answered by then is skipped until it does.
    pub statvfs_timeout: ConfigDuration,
}

/// The mount points not reported unless `exclude_mountpoints` says otherwise: node_exporter's
/// `--collector.filesystem.mount-points-exclude` default
/// (`^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`).
/// The hostmetrics receiver and Telegraf leave out every tmpfs by default, which would also
/// drop `/run` and `/tmp`; these stay (`include_tmpfs`).
pub const DEFAULT_EXCLUDE_MOUNTPOINTS: [&str; 9] =
    ["/dev", "/dev/*", "/proc", "/proc/*", "/sys", "/sys/*", "/run/credentials/*", "/var/lib/docker/*", "/var/lib/containers/storage/*"];

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            enabled: None,
            metrics: Default::default(),
            include_mountpoints: Vec::new(),
            exclude_mountpoints: None,
            include_types: Vec::new(),
            exclude_types: Vec::new(),
            include_tmpfs: true,
            include_images: false,
            statvfs_timeout: ConfigDuration::secs(1),
        }
    }
}

impl FilesystemConfig {
    /// Whether mounts of filesystem type `fs_type` are reported.
    pub fn accepts_type(&self, fs_type: &str) -> bool {
        let included = if self.include_types.is_empty() {
            FsFilter { include_tmpfs: self.include_tmpfs, include_images: self.include_images }.keeps_type(fs_type)
        } else {
            self.include_types.iter().any(|p| glob_match(p, fs_type))
        };
        included && !self.exclude_types.iter().any(|p| glob_match(p, fs_type))
    }

    /// Whether the mount point `path` is reported.
    pub fn accepts_mountpoint(&self, path: &str) -> bool {
        (self.include_mountpoints.is_empty() || self.include_mountpoints.iter().any(|p| glob_match(p, path)))
            && !match &self.exclude_mountpoints {
                Some(list) => list.iter().any(|p| glob_match(p, path)),
                None => DEFAULT_EXCLUDE_MOUNTPOINTS.iter().any(|p| glob_match(p, path)),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_config_section() {
        let c: FilesystemConfig = serde_json::from_str(r#"{"statvfs_timeout": "250ms", "exclude_types": ["overlay"]}"#).unwrap();
        assert_eq!(c.statvfs_timeout, ConfigDuration::millis(250));
        assert!(c.include_tmpfs && !c.include_images);
        assert_eq!(FilesystemConfig::default().statvfs_timeout, ConfigDuration::secs(1));
        assert!(serde_json::from_str::<FilesystemConfig>(r#"{"mountpoints": []}"#).is_err());
    }
}
