//! Which mounts of the mount table the filesystem collector reports.
//!
//! Pseudo filesystems are always skipped (`proc`, `sysfs`, `cgroup2`, `devpts`, ...: see
//! [`mountinfo`](crate::procfs::mountinfo)); `tmpfs` and `devtmpfs` are reported unless
//! `include_tmpfs` is false; read-only images (`squashfs`, `erofs`, `iso9660`: snaps, live
//! media, always full) only with `include_images`. `include_types` replaces that rule with a
//! list of types; `include_mountpoints`, `exclude_mountpoints` and `exclude_types` select
//! further (see [`FilesystemConfig`]). Mount points below `/dev`, `/proc` and `/sys`
//! (`/dev/shm`, a cgroup v1 `/sys/fs/cgroup` tmpfs), systemd's `/run/credentials/*` and
//! container runtimes' layer mounts are left out unless `exclude_mountpoints` is set, as
//! node_exporter leaves them out ([`DEFAULT_EXCLUDE_MOUNTPOINTS`](super::DEFAULT_EXCLUDE_MOUNTPOINTS)).
//! Then, as `df` does:
//! - a mount point mounted over again reports only the last mount (the one a path lookup
//!   reaches; statvfs of the path describes that one);
//! - a filesystem mounted at several places (bind mounts: the same device and the same root
//!   within it) is reported once, at the first of its mount points in the table. Bind mounts of
//!   different subtrees, and btrfs subvolumes, are reported each.

use super::FilesystemConfig;
use crate::procfs::mountinfo::Mount;
use std::collections::{HashMap, HashSet};

/// The mounts reported, as indices into `mounts` in table order: the last mount of each mount
/// point, those the config accepts, and of several mounts of the same device and root the
/// first (see the module docs).
pub fn select(mounts: &[Mount], config: &FilesystemConfig) -> Vec<usize> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        last.insert(m.mount_point.as_str(), i);
    }
    let mut seen: HashSet<(u32, u32, &str)> = HashSet::new();
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        if last.get(m.mount_point.as_str()) != Some(&i) || !config.accepts_type(&m.fs_type) || !config.accepts_mountpoint(&m.mount_point) {
            continue;
        }
        if seen.insert((m.major, m.minor, m.root.as_str())) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture;
    use crate::procfs::mountinfo;

    const TREE: &str = "linux-5.15-server-fs";

    fn table() -> Vec<Mount> {
        mountinfo::read_path(&fixture(&format!("{TREE}/proc/1/mountinfo"))).unwrap()
    }

    fn selected(cfg: &FilesystemConfig) -> Vec<String> {
        let m = table();
        select(&m, cfg).into_iter().map(|i| m[i].mount_point.clone()).collect()
    }

    #[test]
    fn selects_real_and_tmpfs_mounts_once_each_as_df_does() {
        assert_eq!(
            selected(&FilesystemConfig { exclude_mountpoints: Some(vec![]), ..Default::default() }),
            [
                "/",
                "/dev",
                "/dev/shm",
                "/run",
                "/boot/efi",
                "/home",
                // /dev/sda1's subtree /docker: another root, kept.
                "/var/lib/docker",
                // /data (33) is hidden by the tmpfs mounted over it (40), so the first visible
                // mount of 8:1 "/" is this bind mount.
                "/mnt/data-again",
                "/mnt/nas",
                "/mnt/backup disk",
                "/var/lib/docker/overlay2/3f1c/merged",
                "/run/user/1000",
                "/data",
                "/srv/raid",
                // Not /mnt/rootbind: the same device and root as "/". Not /snap/core20/2015
                // (squashfs), /proc, /sys, /dev/pts, /sys/fs/cgroup (pseudo).
            ]
        );
        // By default, as node_exporter: nothing below /dev, /proc, /sys or a container
        // runtime's layers.
        assert_eq!(
            selected(&FilesystemConfig::default()),
            ["/", "/run", "/boot/efi", "/home", "/var/lib/docker", "/mnt/data-again", "/mnt/nas", "/mnt/backup disk", "/run/user/1000", "/data", "/srv/raid"]
        );
        let parsed: FilesystemConfig = serde_yaml_ng::from_str("exclude_mountpoints: []\n").unwrap();
        assert_eq!(parsed.exclude_mountpoints, Some(vec![]), "an empty list is kept: every mount point");
        assert!(parsed.accepts_mountpoint("/dev/shm") && !FilesystemConfig::default().accepts_mountpoint("/dev/shm"));
        assert!(
            FilesystemConfig::default().accepts_mountpoint("/run/user/1000") && !FilesystemConfig::default().accepts_mountpoint("/run/credentials/x.service")
        );
    }

    #[test]
    fn type_and_mountpoint_lists_select_further() {
        let no_tmpfs = FilesystemConfig { include_tmpfs: false, exclude_mountpoints: Some(vec![]), ..Default::default() };
        assert_eq!(
            selected(&no_tmpfs),
            [
                "/",
                "/boot/efi",
                "/home",
                "/var/lib/docker",
                "/mnt/data-again",
                "/mnt/nas",
                "/mnt/backup disk",
                "/var/lib/docker/overlay2/3f1c/merged",
                "/srv/raid"
            ]
        );
        let images = FilesystemConfig { include_types: vec!["squashfs".into(), "ext*".into()], ..Default::default() };
        assert_eq!(selected(&images), ["/", "/snap/core20/2015", "/var/lib/docker", "/mnt/data-again", "/srv/raid"]);
        let cfg = FilesystemConfig {
            include_mountpoints: vec!["/mnt/*".into(), "/".into()],
            exclude_mountpoints: Some(vec!["/mnt/nas".into()]),
            exclude_types: vec!["fuse.*".into()],
            ..Default::default()
        };
        assert_eq!(selected(&cfg), ["/", "/mnt/data-again"]);
        // Excluding the bind mount that would be reported does not bring back the hidden one.
        let cfg = FilesystemConfig {
            exclude_mountpoints: Some(vec!["/mnt/data-again".into(), "/dev*".into(), "/run*".into(), "/var/*".into()]),
            ..Default::default()
        };
        assert_eq!(selected(&cfg), ["/", "/boot/efi", "/home", "/mnt/nas", "/mnt/backup disk", "/data", "/srv/raid"]);
        // Excluding "/" reports its bind mount instead.
        let cfg = FilesystemConfig { include_mountpoints: vec!["/mnt/rootbind".into()], ..Default::default() };
        assert_eq!(selected(&cfg), ["/mnt/rootbind"]);
    }
}
