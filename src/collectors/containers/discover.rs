//! Finding every container, pod and Proxmox guest on the host by the names its manager gives
//! its cgroup, walking one hierarchy (the v2 mount where controllers are enabled in it, else
//! the v1 `memory` one, else `cpu`) from its root. The paths found are the same below every
//! hierarchy's root, so one walk serves v2, v1 and hybrid hosts. Layouts (`<uid_>` is the pod
//! UID with `-` as `_`, `<id>` a 64-hex container ID):
//!
//! ```text
//! kubepods.slice/kubepods-pod<uid_>.slice/cri-containerd-<id>.scope               kubelet, systemd driver, Guaranteed
//! kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/crio-<id>.scope   … Burstable, CRI-O
//! kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/docker-<id>.scope
//! kubepods/pod<uid>/<id>, kubepods/burstable/pod<uid>/<id>, kubepods/besteffort/pod<uid>/crio-<id>   cgroupfs driver
//! system.slice/docker-<id>.scope, docker/<id>                                    Docker (systemd, cgroupfs driver)
//! system.slice/nerdctl-<id>.scope                                                containerd (nerdctl)
//! machine.slice/libpod-<id>.scope, user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope,
//! libpod_parent/libpod-<id>                                                       podman (rootful, rootless, cgroupfs)
//! lxc.payload.<vmid> (v2), lxc/<vmid> (v1)                                        Proxmox LXC (pve-container)
//! qemu.slice/<vmid>.scope                                                         Proxmox QEMU VM (qemu-server)
//! ```
//!
//! The kubelet's names are from its `cgroup_manager_linux.go` (`kubepods`, the QoS level
//! `burstable`/`besteffort`, `pod<uid>`, and the systemd driver's escaping to slices); the
//! runtimes' from runc's and the systemd cgroup driver's `<prefix>-<id>.scope`. Monitors and
//! helpers (`crio-conmon-<id>.scope`, `libpod-conmon-<id>.scope`, `lxc.monitor.<vmid>`) are not
//! containers and are skipped. A container's own sub-cgroups (`lxc.payload.101/init.scope`,
//! podman's `libpod-<id>.scope/container`) are not walked.
//!
//! **Cost.** One `readdir` per directory on the way: the top level, the QoS levels, each pod,
//! and `system.slice`/`machine.slice` (whose services are not walked); `user.slice` is walked
//! down to the user's `user@<uid>.service/*.slice`. At most `limit` entries are returned.

use crate::procfs::cgroup::find::Hierarchy;

/// What a cgroup found is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A Kubernetes pod's cgroup (the kubelet's, holding its containers).
    Pod,
    /// A container, in a pod or not.
    Container,
    /// A Proxmox LXC container or QEMU VM.
    Guest,
}

/// The runtime or manager of a container (`container.runtime.name`).
pub type Runtime = &'static str;

/// One cgroup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path from the hierarchies' root, without a leading `/`.
    pub rel: String,
    pub kind: Kind,
    /// The pod's UID (with `-`), for a pod and its containers.
    pub pod_uid: Option<String>,
    /// `guaranteed`, `burstable` or `besteffort`, for a pod and its containers.
    pub qos: Option<&'static str>,
    /// The container ID, or the Proxmox VMID of a guest.
    pub id: Option<String>,
    /// `containerd`, `cri-o`, `docker`, `podman`, `lxc`, `qemu`; `None` where the path does not
    /// say (the kubelet's cgroupfs driver names a container by its ID only).
    pub runtime: Option<Runtime>,
}

/// Default for [`walk`]'s `limit`: the most cgroups (pods, containers and guests together)
/// reported.
pub const DEFAULT_MAX_CONTAINERS: usize = 2000;

/// How far `user.slice` is walked (`user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope`).
const USER_DEPTH: usize = 5;

/// Where in the tree a directory is, which decides what its subdirectories can be.
#[derive(Debug, Clone, Copy)]
enum Ctx<'a> {
    Root,
    /// Below `kubepods[.slice]`, at the QoS level given.
    Kube(&'static str),
    /// Inside a pod's cgroup.
    Pod(&'a Found),
    SystemSlice,
    MachineSlice,
    /// Below `user.slice`, this deep.
    User(usize),
    DockerCgroupfs,
    PodmanCgroupfs,
    LxcV1,
    QemuSlice,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID as the kubelet writes it: a UUID, or a static pod's 32-hex hash.
fn is_uid(s: &str) -> bool {
    (32..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn is_vmid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `<prefix><id><suffix>` → the ID.
fn id_between<'a>(name: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix)?.strip_suffix(suffix).filter(|id| is_id(id))
}

/// A container cgroup's name in the layouts of [the module docs](self) → (id, runtime).
fn container_name(name: &str) -> Option<(&str, Option<Runtime>)> {
    const SCOPES: [(&str, Runtime); 5] =
        [("cri-containerd-", "containerd"), ("crio-", "cri-o"), ("docker-", "docker"), ("libpod-", "podman"), ("nerdctl-", "containerd")];
    for (prefix, runtime) in SCOPES {
        if let Some(id) = id_between(name, prefix, ".scope") {
            return Some((id, Some(runtime)));
        }
    }
    if let Some(id) = id_between(name, "crio-", "") {
        return Some((id, Some("cri-o")));
    }
    is_id(name).then_some((name, None))
}

/// A pod cgroup's name → its UID: `pod<uid>`, `kubepods-[<qos>-]pod<uid_>.slice`.
fn pod_name(name: &str) -> Option<String> {
    let uid = match name.strip_prefix("pod") {
        Some(uid) => uid.to_owned(),
        None => {
            let rest = name.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
            let rest = rest.strip_prefix("burstable-").or_else(|| rest.strip_prefix("besteffort-")).unwrap_or(rest);
            rest.strip_prefix("pod")?.replace('_', "-")
        }
    };
    is_uid(&uid).then_some(uid)
}

/// The subdirectories of `dir`, by name (none when it cannot be read: a cgroup removed while
/// walked).
fn subdirs(dir: &std::path::Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).filter_map(|e| e.file_name().into_string().ok()).collect()
}

/// The result of [`walk`]: what was found (at most the limit) and how many more there were.
#[derive(Debug, Default)]
pub struct Walk {
    pub found: Vec<Found>,
    /// Cgroups left out because the limit was reached.
    pub over_limit: usize,
}

impl Walk {
    fn push(&mut self, f: Found, limit: usize) -> bool {
        if self.found.len() < limit {
            self.found.push(f);
            true
        } else {
            self.over_limit += 1;
            false
        }
    }
}

/// Every pod, container and guest below `root` (one hierarchy's mount point), at most `limit`.
pub fn walk(root: &std::path::Path, limit: usize) -> Walk {
    let mut w = Walk::default();
    visit(root, "", Ctx::Root, limit, &mut w);
    w
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn visit(dir: &std::path::Path, rel: &str, ctx: Ctx<'_>, limit: usize, w: &mut Walk) {
    for name in subdirs(dir) {
        let path = dir.join(&name);
        let rel = join(rel, &name);
        let container = |id: &str, runtime, pod: Option<&Found>| Found {
            rel: rel.clone(),
            kind: Kind::Container,
            pod_uid: pod.and_then(|p| p.pod_uid.clone()),
            qos: pod.and_then(|p| p.qos),
            id: Some(id.to_owned()),
            runtime,
        };
        let guest =
            |vmid: &str, runtime| Found { rel: rel.clone(), kind: Kind::Guest, pod_uid: None, qos: None, id: Some(vmid.to_owned()), runtime: Some(runtime) };
        match ctx {
            Ctx::Root => match name.as_str() {
                "kubepods" | "kubepods.slice" => visit(&path, &rel, Ctx::Kube("guaranteed"), limit, w),
                "system.slice" => visit(&path, &rel, Ctx::SystemSlice, limit, w),
                "machine.slice" => visit(&path, &rel, Ctx::MachineSlice, limit, w),
                "user.slice" => visit(&path, &rel, Ctx::User(1), limit, w),
                "docker" => visit(&path, &rel, Ctx::DockerCgroupfs, limit, w),
                "libpod_parent" => visit(&path, &rel, Ctx::PodmanCgroupfs, limit, w),
                "lxc" => visit(&path, &rel, Ctx::LxcV1, limit, w),
                "qemu.slice" => visit(&path, &rel, Ctx::QemuSlice, limit, w),
                n => {
                    if let Some(vmid) = n.strip_prefix("lxc.payload.").filter(|v| is_vmid(v)) {
                        w.push(guest(vmid, "lxc"), limit);
                    }
                }
            },
            Ctx::Kube(qos) => {
                let level = match name.as_str() {
                    "burstable" | "kubepods-burstable.slice" => Some("burstable"),
                    "besteffort" | "kubepods-besteffort.slice" => Some("besteffort"),
                    _ => None,
                };
                if let Some(level) = level.filter(|_| qos == "guaranteed") {
                    visit(&path, &rel, Ctx::Kube(level), limit, w);
                } else if let Some(uid) = pod_name(&name) {
                    let pod = Found { rel: rel.clone(), kind: Kind::Pod, pod_uid: Some(uid), qos: Some(qos), id: None, runtime: None };
                    if w.push(pod.clone(), limit) {
                        visit(&path, &rel, Ctx::Pod(&pod), limit, w);
                    }
                }
            }
            Ctx::Pod(pod) => {
                if let Some((id, runtime)) = container_name(&name) {
                    w.push(container(id, runtime, Some(pod)), limit);
                }
            }
            Ctx::SystemSlice => {
                let hit = id_between(&name, "docker-", ".scope")
                    .map(|id| (id, "docker"))
                    .or_else(|| id_between(&name, "nerdctl-", ".scope").map(|id| (id, "containerd")));
                if let Some((id, runtime)) = hit {
                    w.push(container(id, Some(runtime), None), limit);
                }
            }
            Ctx::MachineSlice | Ctx::User(_) => {
                if let Some(id) = id_between(&name, "libpod-", ".scope") {
                    w.push(container(id, Some("podman"), None), limit);
                } else if let Ctx::User(depth) = ctx {
                    let walkable = name.ends_with(".slice") || (name.starts_with("user@") && name.ends_with(".service"));
                    if walkable && depth < USER_DEPTH {
                        visit(&path, &rel, Ctx::User(depth + 1), limit, w);
                    }
                }
            }
            Ctx::DockerCgroupfs => {
                if is_id(&name) {
                    w.push(container(&name, Some("docker"), None), limit);
                }
            }
            Ctx::PodmanCgroupfs => {
                if let Some(id) = id_between(&name, "libpod-", "") {
                    w.push(container(id, Some("podman"), None), limit);
                }
            }
            Ctx::LxcV1 => {
                if is_vmid(&name) {
                    w.push(guest(&name, "lxc"), limit);
                }
            }
            Ctx::QemuSlice => {
                if let Some(vmid) = name.strip_suffix(".scope").filter(|v| is_vmid(v)) {
                    w.push(guest(vmid, "qemu"), limit);
                }
            }
        }
    }
}

/// The hierarchy to walk: the v2 mount when the `memory` or `cpu` controller is enabled in it
/// (a pure v2 host), else the v1 `memory` hierarchy, else `cpu` (a v1 or hybrid host, whose v2
/// mount has no controllers or only a few such as `hugetlb`), else the first.
pub fn primary(hierarchies: &[Hierarchy]) -> Option<&Hierarchy> {
    let v2_in_use = |h: &&Hierarchy| {
        h.v2 && std::fs::read_to_string(h.dir.join("cgroup.controllers")).is_ok_and(|t| t.split_ascii_whitespace().any(|c| c == "memory" || c == "cpu"))
    };
    hierarchies
        .iter()
        .find(v2_in_use)
        .or_else(|| hierarchies.iter().find(|h| !h.v2 && h.has("memory")))
        .or_else(|| hierarchies.iter().find(|h| !h.v2 && h.has("cpu")))
        .or_else(|| hierarchies.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "1b2c3d4e-0000-4111-8222-333344445555";

    #[test]
    fn a_hybrid_hosts_v2_mount_with_only_hugetlb_is_not_walked() {
        let t = tree(&["unified", "memory", "cpu,cpuacct"]);
        std::fs::write(t.path().join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        let h = |dir: &str, v2: bool| Hierarchy { v2, controllers: if v2 { String::new() } else { dir.into() }, dir: t.path().join(dir), root: "/".into() };
        let list = [h("unified", true), h("cpu,cpuacct", false), h("memory", false)];
        assert_eq!(primary(&list).map(|h| h.dir.clone()), Some(t.path().join("memory")));
        std::fs::write(t.path().join("unified/cgroup.controllers"), "cpu io memory pids\n").unwrap();
        assert_eq!(primary(&list).map(|h| h.dir.clone()), Some(t.path().join("unified")));
    }

    fn tree(dirs: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        t
    }

    /// rel, kind, pod UID, QoS, ID, runtime.
    type Summary<'a> = (String, Kind, Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    fn summary(w: &Walk) -> Vec<Summary<'_>> {
        let mut v: Vec<_> = w.found.iter().map(|f| (f.rel.clone(), f.kind, f.pod_uid.as_deref(), f.qos, f.id.as_deref(), f.runtime)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn systemd_driver_pods_of_each_qos_class_and_their_containers_by_runtime() {
        let u = UID.replace('-', "_");
        let t = tree(&[
            &format!("kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{ID}.scope"),
            &format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-{ID}.scope"),
            &format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-conmon-{ID}.scope"),
            &format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/docker-{ID}.scope"),
        ]);
        let w = walk(t.path(), 100);
        let g = "kubepods.slice/kubepods-pod".to_string() + &u + ".slice";
        let b = format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice");
        let e = format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice");
        assert_eq!(
            summary(&w),
            [
                (e.clone(), Kind::Pod, Some(UID), Some("besteffort"), None, None),
                (format!("{e}/docker-{ID}.scope"), Kind::Container, Some(UID), Some("besteffort"), Some(ID), Some("docker")),
                (b.clone(), Kind::Pod, Some(UID), Some("burstable"), None, None),
                (format!("{b}/crio-{ID}.scope"), Kind::Container, Some(UID), Some("burstable"), Some(ID), Some("cri-o")),
                (g.clone(), Kind::Pod, Some(UID), Some("guaranteed"), None, None),
                (format!("{g}/cri-containerd-{ID}.scope"), Kind::Container, Some(UID), Some("guaranteed"), Some(ID), Some("containerd")),
            ]
        );
        assert_eq!(w.over_limit, 0);
    }

    #[test]
    fn cgroupfs_driver_pods_name_containers_by_id_only() {
        let t = tree(&[&format!("kubepods/pod{UID}/{ID}"), &format!("kubepods/besteffort/pod{UID}/crio-{ID}"), "kubepods/burstable/not-a-pod/x"]);
        assert_eq!(
            summary(&walk(t.path(), 100)),
            [
                (format!("kubepods/besteffort/pod{UID}"), Kind::Pod, Some(UID), Some("besteffort"), None, None),
                (format!("kubepods/besteffort/pod{UID}/crio-{ID}"), Kind::Container, Some(UID), Some("besteffort"), Some(ID), Some("cri-o")),
                (format!("kubepods/pod{UID}"), Kind::Pod, Some(UID), Some("guaranteed"), None, None),
                (format!("kubepods/pod{UID}/{ID}"), Kind::Container, Some(UID), Some("guaranteed"), Some(ID), None),
            ]
        );
    }

    #[test]
    fn docker_podman_nerdctl_and_proxmox_guests_outside_kubernetes() {
        let t = tree(&[
            &format!("system.slice/docker-{ID}.scope"),
            &format!("system.slice/nerdctl-{ID}.scope"),
            "system.slice/sshd.service",
            &format!("docker/{ID}"),
            &format!("machine.slice/libpod-{ID}.scope/container"),
            &format!("machine.slice/libpod-conmon-{ID}.scope"),
            &format!("user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            &format!("libpod_parent/libpod-{ID}"),
            "lxc.payload.101/init.scope",
            "lxc.monitor.101",
            "lxc/102/ns",
            "qemu.slice/103.scope",
            "qemu.slice/not-a-vm.scope",
        ]);
        let w = walk(t.path(), 100);
        let got: Vec<_> = summary(&w).into_iter().map(|s| (s.0, s.1, s.4.map(str::to_owned), s.5)).collect();
        let c = |rel: String, rt| (rel, Kind::Container, Some(ID.to_owned()), Some(rt));
        let g = |rel: &str, id: &str, rt| (rel.to_owned(), Kind::Guest, Some(id.to_owned()), Some(rt));
        assert_eq!(
            got,
            [
                c(format!("docker/{ID}"), "docker"),
                c(format!("libpod_parent/libpod-{ID}"), "podman"),
                g("lxc.payload.101", "101", "lxc"),
                g("lxc/102", "102", "lxc"),
                c(format!("machine.slice/libpod-{ID}.scope"), "podman"),
                g("qemu.slice/103.scope", "103", "qemu"),
                c(format!("system.slice/docker-{ID}.scope"), "docker"),
                c(format!("system.slice/nerdctl-{ID}.scope"), "containerd"),
                c(format!("user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"), "podman"),
            ]
        );
    }

    #[test]
    fn the_limit_keeps_the_first_entries_and_counts_the_rest() {
        let dirs: Vec<String> = (0..5).map(|i| format!("docker/{}{i}", &ID[..63])).collect();
        let t = tree(&dirs.iter().map(String::as_str).collect::<Vec<_>>());
        let w = walk(t.path(), 3);
        assert_eq!((w.found.len(), w.over_limit), (3, 2));
    }
}
