//! Where one cgroup's directories are: in the unified (v2) hierarchy and in the v1 hierarchy of
//! each controller read ([`Location`]), found from the mounts of the agent's mount namespace or
//! a configured root.
//!
//! `PROC/self/cgroup` (cgroup(7)) names the agent's cgroup in each hierarchy,
//! `PROC/self/mountinfo` where each hierarchy is mounted:
//!
//! ```text
//! 0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope   v2
//! 4:memory:/docker/<id>                                                                   v1: id:controllers:path
//! 0::/                                                                                    private cgroup namespace
//! 1707 1706 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate
//! 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory               v1: controllers in the super options
//! ```
//!
//! The cgroup's directory is the mount point plus its path below the mount's root (field 4,
//! `/` unless a subtree is bind-mounted, as runc does for a container without a cgroup
//! namespace). With a private cgroup namespace the path is `/` and the container's cgroup is
//! the mount itself. Mount points are paths of the agent's mount namespace: `/sys/...` is read
//! below `HOST_SYS` and anything else below `HOST_ROOT`. Pure v2 (`/sys/fs/cgroup`), pure v1 and
//! hybrid hosts (v1 controllers plus a controller-less v2 at `/sys/fs/cgroup/unified`) work.
//! A configured root replaces mountinfo: a cgroup2 mount (a directory with
//! `cgroup.controllers`), or a directory of v1 hierarchies named by their controllers
//! (`cpu,cpuacct/`, `memory/`, `blkio/`, `pids/`, and a hybrid host's v2 in `unified/`).
//!
//! **A Kubernetes pod** ([`Target::Pod`]) is found by its UID below the root of each hierarchy,
//! looking only in the top-level `kubepods*` directories and at most three levels deep, for the
//! directory the kubelet names after the pod:
//!
//! ```text
//! kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, - as _>.slice   systemd driver
//! kubepods.slice/kubepods-pod<uid, - as _>.slice                                      Guaranteed
//! kubepods/burstable/pod<uid>, kubepods/pod<uid>                                      cgroupfs driver
//! ```
//!
//! No UID, or no such directory, is an error naming the UID and the root searched.

use crate::procfs::{mountinfo, ProcError};
use crate::units::HostPaths;
use std::path::{Path, PathBuf};

/// Why no cgroup was found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// `PROC/self/mountinfo` or `PROC/self/cgroup` could not be read or parsed.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// No such cgroup, or a place to look for it that cannot be read: `what` names the place
    /// (a root, the mounts searched), `msg` what is wrong there.
    #[error("{what}: {msg}")]
    NotFound { what: String, msg: String },
}

fn not_found(path: &Path, msg: String) -> FindError {
    FindError::NotFound { what: path.display().to_string(), msg }
}

/// The v1 controllers this collector reads.
pub const V1_CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// cgroup2 (unified) rather than a v1 hierarchy.
    pub v2: bool,
    /// v1: the mount's super options or directory name, which list its controllers
    /// (`rw,cpu,cpuacct`).
    pub controllers: String,
    /// Where it is mounted, on this machine's paths.
    pub dir: PathBuf,
    /// The cgroup mounted there (mountinfo's root field): `/` unless a subtree is bind-mounted.
    pub root: String,
}

impl Hierarchy {
    /// Whether this v1 hierarchy has `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }

    /// The directory of the cgroup at `path` (from the hierarchy's root, as `PROC/self/cgroup`
    /// gives it): the part of the path below the mounted subtree, below the mount point.
    pub fn dir_of(&self, path: &str) -> PathBuf {
        let rel = match path.strip_prefix(self.root.trim_end_matches('/')) {
            Some(r) if r.is_empty() || r.starts_with('/') => r,
            _ => path,
        };
        match rel.trim_start_matches('/') {
            "" => self.dir.clone(),
            rel => self.dir.join(rel),
        }
    }
}

/// A mount point of the agent's mount namespace on this machine's paths: `/sys/...` below
/// `HOST_SYS`, anything else below `HOST_ROOT`.
pub fn host_path(paths: &HostPaths, mount_point: &str) -> PathBuf {
    match mount_point.strip_prefix("/sys") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => paths.sys(rest),
        _ => paths.root(mount_point),
    }
}

/// The cgroup hierarchies (`cgroup2` and `cgroup` mounts) of a parsed mountinfo.
pub fn hierarchies_of_mounts(paths: &HostPaths, mounts: &[mountinfo::Mount]) -> Vec<Hierarchy> {
    mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup2" || m.fs_type == "cgroup")
        .map(|m| Hierarchy {
            v2: m.fs_type == "cgroup2",
            controllers: if m.fs_type == "cgroup" { m.super_options.clone() } else { String::new() },
            dir: host_path(paths, &m.mount_point),
            root: m.root.clone(),
        })
        .collect()
}

/// The hierarchies below a configured `root`: itself when it is a cgroup2 mount, else its
/// subdirectories (v2 where they have `cgroup.controllers`, else v1 named by controllers).
fn hierarchies_below(root: &Path) -> Result<Vec<Hierarchy>, FindError> {
    let v2 = |dir: PathBuf| Hierarchy { v2: true, controllers: String::new(), dir, root: "/".into() };
    if root.join("cgroup.controllers").exists() {
        return Ok(vec![v2(root.to_path_buf())]);
    }
    let entries = std::fs::read_dir(root).map_err(|e| not_found(root, format!("cannot read the cgroup root: {e}")))?;
    let mut out: Vec<Hierarchy> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            // v2 has `cgroup.controllers` at its root; a hybrid host's is `unified/` (also taken
            // by name, for copies of a tree that hold only the cgroup's own directory).
            if dir.join("cgroup.controllers").exists() || dir.file_name().is_some_and(|n| n == "unified") {
                v2(dir)
            } else {
                let controllers = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Hierarchy { v2: false, controllers, dir, root: "/".into() }
            }
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// The agent's cgroup path in hierarchy `h`, from the text of `PROC/self/cgroup`
/// (`0::/path` for v2, `N:controllers:/path` for v1).
pub fn own_path<'a>(h: &Hierarchy, cgroup: &'a str) -> Option<&'a str> {
    cgroup.lines().find_map(|line| {
        let mut it = line.trim_end().splitn(3, ':');
        let (id, controllers, path) = (it.next()?, it.next()?, it.next()?);
        let hit = if h.v2 { id == "0" && controllers.is_empty() } else { !controllers.is_empty() && controllers.split(',').any(|c| h.has(c)) };
        hit.then_some(path)
    })
}

/// Where one cgroup's files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The cgroup's directory in the unified (v2) hierarchy, when one is mounted.
    pub unified: Option<PathBuf>,
    /// The controllers enabled for it there (its `cgroup.controllers`).
    pub unified_controllers: Vec<String>,
    /// Its directory in each v1 hierarchy of a controller read here (`cpu`, `cpuacct`,
    /// `memory`, `blkio`, `pids`).
    pub v1: Vec<(&'static str, PathBuf)>,
}

impl Location {
    /// The cgroup's directory in the v1 hierarchy of `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| *c == controller).map(|(_, d)| d.as_path())
    }

    /// The v2 directory when `controller` is enabled there.
    pub fn v2_with(&self, controller: &str) -> Option<&Path> {
        self.unified.as_deref().filter(|_| self.unified_controllers.iter().any(|c| c == controller))
    }

    /// Takes `dir` as the cgroup's directory in hierarchy `h`, unless one was found before.
    fn add(&mut self, h: &Hierarchy, dir: PathBuf) {
        if h.v2 {
            if self.unified.is_none() {
                self.unified = Some(dir);
            }
        } else {
            for c in V1_CONTROLLERS {
                if h.has(c) && self.v1(c).is_none() {
                    self.v1.push((c, dir.clone()));
                }
            }
        }
    }
}

/// How deep below a hierarchy's root a pod's cgroup is looked for:
/// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`,
/// `kubepods/burstable/pod<uid>`.
pub const POD_SEARCH_DEPTH: usize = 3;

/// The subdirectories of `dir` with their names (none when it cannot be read).
fn subdirs(dir: &Path) -> impl Iterator<Item = (String, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
}

/// The cgroup of the Kubernetes pod `uid` in the hierarchy mounted at `root`: a directory
/// `pod<uid>` (the kubelet's cgroupfs driver: `kubepods/burstable/pod<uid>`,
/// `kubepods/pod<uid>` for Guaranteed pods) or `kubepods-[<qos>-]pod<uid, - as _>.slice`
/// (the systemd driver), within [`POD_SEARCH_DEPTH`] levels and only below the top-level
/// `kubepods*` directories: a few `readdir`s.
pub fn pod_dir_below(root: &Path, uid: &str) -> Option<PathBuf> {
    let cgroupfs = format!("pod{uid}");
    let systemd = format!("-pod{}.slice", uid.replace('-', "_"));
    let is_pod = |name: &str| name == cgroupfs || (name.starts_with("kubepods-") && name.ends_with(&systemd));
    let mut level: Vec<PathBuf> = subdirs(root).filter(|(n, _)| n.starts_with("kubepods")).map(|(_, p)| p).collect();
    for depth in 2..=POD_SEARCH_DEPTH {
        let mut next = Vec::new();
        for dir in &level {
            for (name, path) in subdirs(dir) {
                if is_pod(&name) {
                    return Some(path);
                }
                if depth < POD_SEARCH_DEPTH {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    None
}

/// Which cgroup [`locate`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The agent's own, from `PROC/self/cgroup`.
    Own,
    /// The cgroup at this path from the root of each hierarchy (`/docker/<id>`).
    Path(&'a str),
    /// The Kubernetes pod of this UID (`None`: unknown, an error naming where it would have
    /// been looked for).
    Pod(Option<&'a str>),
}

/// The cgroup hierarchies below `root` (a configured root), else those mounted in the agent's
/// mount namespace (`PROC/self/mountinfo`), and which of the two was read.
pub fn hierarchies(paths: &HostPaths, root: Option<&Path>) -> Result<(Vec<Hierarchy>, PathBuf), FindError> {
    Ok(match root {
        Some(root) => (hierarchies_below(root)?, root.to_path_buf()),
        None => {
            let path = paths.proc("self/mountinfo");
            let text = crate::procfs::read_to_string(&path)?;
            let mounts = mountinfo::parse(&text).map_err(|e| crate::procfs::at(&path, e))?;
            (hierarchies_of_mounts(paths, &mounts), path)
        }
    })
}

/// The cgroup at `rel` (a path from the root of every hierarchy, `kubepods/burstable/pod<uid>`)
/// in each of `hierarchies` that has it, with the controllers enabled for it in v2; `None`
/// when no hierarchy has it.
pub fn location_of(hierarchies: &[Hierarchy], rel: &str) -> Option<Location> {
    let mut loc = Location::default();
    for h in hierarchies {
        let dir = h.dir.join(rel.trim_start_matches('/'));
        if dir.is_dir() {
            loc.add(h, dir);
        }
    }
    if let Some(dir) = &loc.unified {
        let text = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        loc.unified_controllers = text.split_ascii_whitespace().map(str::to_owned).collect();
    }
    (loc.unified.is_some() || !loc.v1.is_empty()).then_some(loc)
}

/// Finds `target`'s directories in the hierarchies below `root`, else in those of
/// `PROC/self/mountinfo`, and the controllers enabled for it in v2.
pub fn locate(paths: &HostPaths, root: Option<&Path>, target: Target<'_>) -> Result<Location, FindError> {
    let (hierarchies, source) = hierarchies(paths, root)?;
    let mut loc = Location::default();
    if let Target::Pod(pod_uid) = target {
        // What was searched, for the errors: the configured root, else the cgroup mounts.
        let searched = match root {
            Some(root) => root.display().to_string(),
            None if hierarchies.is_empty() => source.display().to_string(),
            None => {
                let dirs: Vec<String> = hierarchies.iter().map(|h| h.dir.display().to_string()).collect();
                format!("{} (the cgroup mounts of {})", dirs.join(", "), source.display())
            }
        };
        let Some(uid) = pod_uid.map(str::trim).filter(|u| !u.is_empty()) else {
            let msg = "`scope: pod` but the pod UID is unknown: set `collector.cgroup.pod_uid`, or K8S_POD_UID from the downward API (fieldRef metadata.uid)";
            return Err(FindError::NotFound { what: searched, msg: msg.into() });
        };
        for h in &hierarchies {
            if let Some(dir) = pod_dir_below(&h.dir, uid) {
                loc.add(h, dir);
            }
        }
        if loc.unified.is_none() && loc.v1.is_empty() && !hierarchies.is_empty() {
            let msg = format!(
                "no cgroup of pod {uid}: no directory pod{uid} or kubepods-…pod{}.slice up to {POD_SEARCH_DEPTH} levels below the kubepods* directories there (is the node's cgroupfs mounted, and `root` set to it?)",
                uid.replace('-', "_")
            );
            return Err(FindError::NotFound { what: searched, msg });
        }
    } else {
        let path = match target {
            Target::Path(p) => Some(p),
            _ => None,
        };
        let cgroup = match path {
            Some(_) => String::new(),
            None => crate::procfs::read_to_string(&paths.proc("self/cgroup"))?,
        };
        for h in &hierarchies {
            if let Some(path) = path.or_else(|| own_path(h, &cgroup)) {
                loc.add(h, h.dir_of(path));
            }
        }
    }
    if let Some(dir) = &loc.unified {
        let text = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        loc.unified_controllers = text.split_ascii_whitespace().map(str::to_owned).collect();
    }
    if loc.unified.is_none() && loc.v1.is_empty() {
        return Err(not_found(&source, "no cgroup hierarchy (cgroup2, or cgroup with cpu, cpuacct, memory, blkio or pids) for this cgroup".into()));
    }
    Ok(loc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::write;
    use crate::procfs::cgroup::fixture_copy;

    #[test]
    fn strips_the_mount_root_of_a_bind_mounted_cgroup() {
        // runc without a cgroup namespace bind-mounts the container's own cgroup:
        // `… /docker/<id> /sys/fs/cgroup/memory … - cgroup cgroup rw,memory` and 4:memory:/docker/<id>.
        let h = Hierarchy { v2: false, controllers: "rw,memory".into(), dir: "/sys/fs/cgroup/memory".into(), root: "/docker/abc".into() };
        assert_eq!(h.dir_of("/docker/abc"), PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(h.dir_of("/docker/abc/child"), PathBuf::from("/sys/fs/cgroup/memory/child"));
        // Not below the mounted subtree (another container's `abcdef`): taken from the mount point.
        assert_eq!(h.dir_of("/docker/abcdef"), PathBuf::from("/sys/fs/cgroup/memory/docker/abcdef"));
        let root = Hierarchy { root: "/".into(), ..h };
        assert_eq!(root.dir_of("/"), PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(root.dir_of("/a/b"), PathBuf::from("/sys/fs/cgroup/memory/a/b"));
        // Mount points below /sys are read below HOST_SYS, others below HOST_ROOT.
        let p = HostPaths { proc: "/hp".into(), sys: "/hs".into(), root: "/hr".into() };
        assert_eq!(host_path(&p, "/sys/fs/cgroup/unified"), PathBuf::from("/hs/fs/cgroup/unified"));
        assert_eq!(host_path(&p, "/cgroup"), PathBuf::from("/hr/cgroup"));
        assert_eq!(host_path(&p, "/sysfoo"), PathBuf::from("/hr/sysfoo"));
    }

    #[test]
    fn pod_scope_looks_only_below_kubepods_and_at_most_three_levels_deep() {
        let (dir, _) = fixture_copy("v2-k8s-node");
        let node = dir.path().join("host/sys/fs/cgroup");
        let uid = "11111111-2222-3333-4444-555555555555";
        // Not below a kubepods* directory.
        write(&dir, &format!("host/sys/fs/cgroup/system.slice/pod{uid}/cgroup.controllers"), "memory\n");
        assert_eq!(pod_dir_below(&node, uid), None);
        // Four levels deep.
        write(&dir, &format!("host/sys/fs/cgroup/kubepods.slice/a/b/pod{uid}/cgroup.controllers"), "memory\n");
        assert_eq!(pod_dir_below(&node, uid), None);
        // Three.
        write(&dir, &format!("host/sys/fs/cgroup/kubepods.slice/a/pod{uid}/cgroup.controllers"), "memory\n");
        assert_eq!(pod_dir_below(&node, uid), Some(node.join(format!("kubepods.slice/a/pod{uid}"))));
    }
}
