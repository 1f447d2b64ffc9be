//! Where the host's filesystems are: `/proc`, `/sys` and `/` under a configurable root.
//!
//! Inside a container the host's filesystems are mounted elsewhere (`-v /proc:/host/proc`);
//! `HOST_PROC`, `HOST_SYS` and `HOST_ROOT` (as gopsutil and metricsd read them) or the config's
//! `root_path` (as the Collector's hostmetrics receiver has it) say where. Every /proc and /sys
//! reader in the agent takes a [`HostPaths`], so tests run the same code on fixture trees.

use std::path::{Path, PathBuf};

/// The three roots every reader resolves its paths against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// Where the host's `/proc` is (default `/proc`).
    pub proc: PathBuf,
    /// Where the host's `/sys` is (default `/sys`).
    pub sys: PathBuf,
    /// Where the host's `/` is (default `/`): `/etc/machine-id`, `/etc/os-release`, mount points.
    pub root: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths { proc: "/proc".into(), sys: "/sys".into(), root: "/".into() }
    }
}

impl HostPaths {
    /// All three under one directory, as a fixture tree or `root_path` lays them out:
    /// `DIR/proc`, `DIR/sys`, `DIR`.
    pub fn under(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        HostPaths { proc: dir.join("proc"), sys: dir.join("sys"), root: dir.to_path_buf() }
    }

    /// A path below `/proc`: `proc("meminfo")` is `/proc/meminfo` on a plain host.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.proc.join(rel.trim_start_matches('/'))
    }

    /// A path below `/sys`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sys.join(rel.trim_start_matches('/'))
    }

    /// A path below the host's `/`.
    pub fn root(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Whether the agent reads another root than its own (a container watching its host).
    pub fn is_remapped(&self) -> bool {
        *self != HostPaths::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_and_absolute_parts_below_the_root() {
        let p = HostPaths::under("/host");
        assert_eq!(p.proc("/meminfo"), PathBuf::from("/host/proc/meminfo"));
        assert_eq!(p.sys("class/dmi/id/product_uuid"), PathBuf::from("/host/sys/class/dmi/id/product_uuid"));
        assert_eq!(p.root("/etc/machine-id"), PathBuf::from("/host/etc/machine-id"));
        assert!(p.is_remapped());
        assert!(!HostPaths::default().is_remapped());
    }
}
