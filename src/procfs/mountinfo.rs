//! `/proc/PID/mountinfo`: one line per mount of the reader's mount namespace
//! (`man 5 proc`, "mountinfo").
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)    (10)         (11)
//! ```
//!
//! (1) mount id, (2) parent id, (3) major:minor of `st_dev`, (4) root of the mount within its
//! filesystem, (5) mount point, (6) per-mount options, (7) zero or more optional fields
//! (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`), (8) a `-` separator, (9) fs type
//! (`type.subtype` for FUSE), (10) source (`none` or absent on some filesystems), (11) super
//! block options. Paths escape space, tab, newline and backslash as `\040`, `\011`, `\012`,
//! `\134`; they are unescaped here.
//!
//! Which file: [`path`] gives `/proc/1/mountinfo` (the host's init, so the host's mounts) when
//! the paths are remapped to a host's `/proc`, else `/proc/self/mountinfo`. Mount points are
//! paths in that namespace: in a container, call statvfs on `paths.root(mount_point)`.
//!
//! # Default filesystem filter ([`FsFilter`])
//!
//! Always skipped ([`PSEUDO_FS_TYPES`]: no blocks to report, or their statvfs describes
//! something else): `proc`, `sysfs`, `cgroup`, `cgroup2`, `devpts`, `mqueue`, `debugfs`,
//! `tracefs`, `securityfs`, `pstore`, `bpf`, `configfs`, `fusectl`, `hugetlbfs`, `autofs`,
//! `binfmt_misc`, `nsfs`, `rpc_pipefs`, `selinuxfs`, `efivarfs`, `nfsd`, `ramfs`, `fuse.lxcfs`.
//! Overlay lower layers never appear in mountinfo; an `overlay` mount itself (a container's
//! root) is kept.
//!
//! Optional ([`FsFilter`] fields): `tmpfs` and `devtmpfs` are kept by default
//! (`include_tmpfs`); read-only image filesystems `squashfs`, `erofs` and `iso9660` (snap
//! packages, live media: always 100 % full) are skipped by default (`include_images`), as
//! node_exporter skips them.

use super::{LineError, ProcError};
use crate::units::HostPaths;
use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_id: u32,
    pub parent_id: u32,
    pub major: u32,
    pub minor: u32,
    /// The root of the mount within its filesystem (`/` unless a bind mount of a subtree).
    pub root: String,
    /// Where it is mounted (unescaped).
    pub mount_point: String,
    /// Per-mount options, comma separated (`rw,relatime`).
    pub options: String,
    /// Optional fields (`shared:1`, `master:2`, ...).
    pub optional: Vec<String>,
    /// Filesystem type (`ext4`, `fuse.sshfs`).
    pub fs_type: String,
    /// Source device or name (`/dev/vda`, `tmpfs`); empty when absent.
    pub source: String,
    /// Super block options, comma separated.
    pub super_options: String,
}

impl Mount {
    /// Whether the mount is read-only (`ro` among the per-mount options).
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }

    /// `"ro"` or `"rw"`, the value of `system.filesystem.mode`.
    pub fn mode(&self) -> &'static str {
        if self.read_only() {
            "ro"
        } else {
            "rw"
        }
    }
}

/// Parses the text of a mountinfo file.
pub fn parse(text: &str) -> Result<Vec<Mount>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_line(line, i + 1)?);
    }
    Ok(out)
}

fn parse_line(line: &str, n: usize) -> Result<Mount, LineError> {
    let mut it = line.split_ascii_whitespace();
    let mut field = |what: &str| it.next().ok_or_else(|| LineError::new(n, format!("{what}: missing field")));
    let mount_id = super::num(Some(field("mount id")?), n, "mount id")?;
    let parent_id = super::num(Some(field("parent id")?), n, "parent id")?;
    let dev = field("major:minor")?;
    let (major, minor) = dev.split_once(':').ok_or_else(|| LineError::new(n, format!("bad major:minor {dev:?}")))?;
    let major = super::num(Some(major), n, "major")?;
    let minor = super::num(Some(minor), n, "minor")?;
    let root = unescape(field("root")?);
    let mount_point = unescape(field("mount point")?);
    let options = field("mount options")?.to_owned();
    let mut optional = Vec::new();
    loop {
        match field("separator")? {
            "-" => break,
            f => optional.push(f.to_owned()),
        }
    }
    let fs_type = field("fs type")?.to_owned();
    // The source can be missing; then the super options come right after the type only if
    // there are two fields left.
    let rest: Vec<&str> = it.collect();
    let (source, super_options) = match rest.as_slice() {
        [] => (String::new(), String::new()),
        [one] => (String::new(), (*one).to_owned()),
        [src, opts, ..] => (unescape(src), (*opts).to_owned()),
    };
    Ok(Mount { mount_id, parent_id, major, minor, root, mount_point, options, optional, fs_type, source, super_options })
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash; any `\ooo`). Other backslashes are kept.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if v <= 0xff {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Filesystem types the filesystem collector always skips (see the module docs).
pub const PSEUDO_FS_TYPES: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
    "selinuxfs",
    "efivarfs",
    "nfsd",
    "ramfs",
    "fuse.lxcfs",
];

/// Memory-backed filesystems, kept unless [`FsFilter::include_tmpfs`] is false.
pub const TMPFS_TYPES: &[&str] = &["tmpfs", "devtmpfs"];

/// Read-only image filesystems, skipped unless [`FsFilter::include_images`] is true.
pub const IMAGE_FS_TYPES: &[&str] = &["squashfs", "erofs", "iso9660"];

/// Which mounts the filesystem collector reports by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsFilter {
    /// Report `tmpfs` and `devtmpfs` (default true).
    pub include_tmpfs: bool,
    /// Report `squashfs`, `erofs`, `iso9660` (default false).
    pub include_images: bool,
}

impl Default for FsFilter {
    fn default() -> Self {
        FsFilter { include_tmpfs: true, include_images: false }
    }
}

impl FsFilter {
    /// Whether mounts of this filesystem type are reported.
    pub fn keeps_type(&self, fs_type: &str) -> bool {
        if PSEUDO_FS_TYPES.contains(&fs_type) {
            return false;
        }
        if TMPFS_TYPES.contains(&fs_type) {
            return self.include_tmpfs;
        }
        if IMAGE_FS_TYPES.contains(&fs_type) {
            return self.include_images;
        }
        true
    }

    /// Whether this mount is reported.
    pub fn keeps(&self, m: &Mount) -> bool {
        self.keeps_type(&m.fs_type)
    }
}

/// `/proc/1/mountinfo` when the paths are remapped (a container reading its host), else
/// `/proc/self/mountinfo`.
pub fn path(paths: &HostPaths) -> PathBuf {
    if paths.is_remapped() {
        paths.proc("1/mountinfo")
    } else {
        paths.proc("self/mountinfo")
    }
}

/// Reads and parses the mountinfo file that [`path`] names.
pub fn read(paths: &HostPaths) -> Result<Vec<Mount>, ProcError> {
    read_path(&path(paths))
}

/// Reads and parses a given mountinfo file.
pub fn read_path(p: &std::path::Path) -> Result<Vec<Mount>, ProcError> {
    parse(&super::read_to_string(p)?).map_err(|e| super::at(p, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture;

    #[test]
    fn parses_mountinfo_of_a_6_18_kernel() {
        let m = read_path(&fixture("linux-6.18-vm/proc/self/mountinfo")).unwrap();
        assert_eq!(m.len(), 20);
        let root = &m[5];
        assert_eq!(
            *root,
            Mount {
                mount_id: 27,
                parent_id: 1,
                major: 254,
                minor: 0,
                root: "/".into(),
                mount_point: "/".into(),
                options: "rw,relatime".into(),
                optional: vec![],
                fs_type: "ext4".into(),
                source: "/dev/vda".into(),
                super_options: "rw,discard,resv_strict,resuid=65534,resgid=65534".into(),
            }
        );
        assert_eq!(root.mode(), "rw");
        // Line 7: `/mnt/read\040only ro,nosuid,...`
        assert_eq!(m[6].mount_point, "/mnt/read only");
        assert!(m[6].read_only());
        assert_eq!(m[6].mode(), "ro");
        assert_eq!((m[2].major, m[2].minor, m[2].fs_type.as_str()), (0, 6, "devtmpfs"));
    }

    #[test]
    fn keeps_only_real_and_tmpfs_filesystems_by_default() {
        let m = read_path(&fixture("linux-6.18-vm/proc/self/mountinfo")).unwrap();
        let kept: Vec<&str> = m.iter().filter(|m| FsFilter::default().keeps(m)).map(|m| m.mount_point.as_str()).collect();
        assert_eq!(kept, ["/dev", "/dev/shm", "/", "/mnt/read only", "/dev/shm", "/sys/fs/cgroup"]);
        let no_tmpfs = FsFilter { include_tmpfs: false, ..FsFilter::default() };
        let kept: Vec<&str> = m.iter().filter(|m| no_tmpfs.keeps(m)).map(|m| m.mount_point.as_str()).collect();
        assert_eq!(kept, ["/"]);
        assert!(!FsFilter::default().keeps_type("squashfs"));
        assert!(FsFilter { include_images: true, ..FsFilter::default() }.keeps_type("squashfs"));
        assert!(FsFilter::default().keeps_type("overlay"));
        assert!(FsFilter::default().keeps_type("fuse.sshfs"));
    }

    #[test]
    fn parses_optional_fields_and_a_missing_source() {
        let m = parse(
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n\
             40 35 0:40 / /x rw - weirdfs rw\n",
        )
        .unwrap();
        assert_eq!(m[0].optional, ["master:1", "shared:7"]);
        assert_eq!((m[0].root.as_str(), m[0].mount_point.as_str()), ("/mnt1", "/mnt2"));
        assert_eq!((m[0].source.as_str(), m[0].super_options.as_str()), ("/dev/root", "rw,errors=continue"));
        assert_eq!((m[1].source.as_str(), m[1].super_options.as_str()), ("", "rw"));
    }

    #[test]
    fn names_the_line_of_a_truncated_entry() {
        let e = parse("22 27 0:21 / /proc rw,relatime - proc proc rw\n23 27 0:22 / /sys rw,relatime\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: separator: missing field");
    }

    #[test]
    fn unescapes_octal_sequences_and_keeps_other_backslashes() {
        assert_eq!(unescape(r"/a\040b\011c\012d\134e"), "/a b\tc\nd\\e");
        assert_eq!(unescape(r"/a\x\04"), r"/a\x\04");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn reads_the_init_process_mountinfo_when_remapped() {
        let p = HostPaths::under("/host");
        assert_eq!(path(&p), PathBuf::from("/host/proc/1/mountinfo"));
        assert_eq!(path(&HostPaths::default()), PathBuf::from("/proc/self/mountinfo"));
    }
}
