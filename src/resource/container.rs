//! Container identity: `container.id`, `container.runtime.name` and, inside Kubernetes, `k8s.pod.uid`,
//! from `PROC/self/cgroup` and `PROC/self/mountinfo`, as the OpenTelemetry SDKs detect it.
//!
//! **cgroup** (cgroup(7): `hierarchy-ID:controller-list:cgroup-path`, one line per v1
//! hierarchy, `0::path` for v2). The container ID is the last path segment that is 64 hex
//! digits once `.scope` and a runtime prefix are stripped:
//!
//! ```text
//! 12:memory:/docker/<id>                                     Docker, cgroupfs driver (v1)
//! 0::/system.slice/docker-<id>.scope                         Docker, systemd driver
//! 6:memory:/kubepods/besteffort/pod<uid>/<id>                kubelet cgroupfs driver
//! 0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//! 1:name=systemd:/kubepods.slice/…/crio-<id>.scope           CRI-O
//! 0::/machine.slice/libpod-<id>.scope                        Podman
//! 0::/                                                       cgroup v2, private cgroup namespace: no ID here
//! ```
//!
//! The runtime comes from the prefix (`docker-` → `docker`, `cri-containerd-` →
//! `containerd`, `crio-` → `cri-o`, `libpod-` → `podman`), else from the path: a `docker`
//! segment → `docker`; a bare ID under `kubepods` → `containerd` (the cgroupfs driver gives
//! no prefix; dockershim, the other runtime that laid cgroups out this way, left Kubernetes
//! in 1.24).
//!
//! **mountinfo** (proc(5): `id parent major:minor root mount-point options … - fstype source
//! super-options`). With cgroup v2 and a private cgroup namespace the cgroup file says only
//! `0::/`; the runtime's bind mounts for `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` (and
//! Podman's `/run/.containerenv`) still name the container directory in their `root` field:
//!
//! ```text
//! 630 621 254:1 /var/lib/docker/containers/<id>/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw
//! 858 851 0:24 /containers/storage/overlay-containers/<id>/userdata/hostname /etc/hostname rw,nosuid,nodev - tmpfs tmpfs rw
//! 1710 1702 8:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/<sandbox-id>/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw
//! 1708 1702 8:1 /var/lib/kubelet/pods/<pod-uid>/etc-hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
//! ```
//!
//! `containers/<id>/hostname` is Docker's layout, `overlay-containers/<id>/userdata/…` is
//! containers/storage (Podman, and CRI-O inside Kubernetes). Inside Kubernetes (a kubelet
//! `pods/<uid>/` mount is present) these files belong to the pod sandbox, so their ID is the
//! pause container's, not ours: it is not used, and with nothing in the cgroup file
//! `container.id` stays unset (the runtime is still reported) with a note. The kubelet mount
//! gives `k8s.pod.uid`.
//!
//! The agent's own container is what this describes, also when the host root is remapped.
//! [`container_of_cgroup_line`] and [`k8s_pod_uid_of_cgroup`] also serve for other processes'
//! `/proc/<pid>/cgroup` (the GPU collector's per-process attribution).

use std::path::Path;

use super::{DetectInput, Detected};

/// `container.runtime.name` values.
pub const DOCKER: &str = "docker";
/// `container.runtime.name` for containerd (including its CRI plugin under Kubernetes).
pub const CONTAINERD: &str = "containerd";
/// `container.runtime.name` for CRI-O.
pub const CRIO: &str = "cri-o";
/// `container.runtime.name` for Podman.
pub const PODMAN: &str = "podman";

/// Container attributes of the agent's own process.
pub fn detect(input: &DetectInput) -> Detected {
    let mut out = Detected::default();
    let cgroup = read(&input.paths.proc("self/cgroup"));
    let mounts = read(&input.paths.proc("self/mountinfo")).map(|t| container_of_mountinfo(&t)).unwrap_or_default();

    let from_cgroup = cgroup.as_deref().and_then(container_of_cgroup_line);
    let (id, runtime) = match from_cgroup {
        Some((id, rt)) => (Some(id), rt.or(mounts.runtime)),
        None => (mounts.container_id.clone(), mounts.runtime),
    };
    if id.is_none() && mounts.sandbox_only {
        out.note(
            "container.id: PROC/self/cgroup has no container path (private cgroup namespace) and \
             PROC/self/mountinfo names only the pod sandbox; container.id left unset",
        );
    }
    out.set("container.id", id);
    out.set("container.runtime.name", runtime);
    out.set("k8s.pod.uid", cgroup.as_deref().and_then(k8s_pod_uid_of_cgroup).or(mounts.pod_uid));
    out
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The container ID and runtime named by a cgroup file's text (all of `/proc/<pid>/cgroup`, or
/// one line of it, or a bare cgroup path): the first line with a 64-hex segment wins, and
/// within a line the last such segment (a nested container's).
pub fn container_of_cgroup_line(cgroup_file_text: &str) -> Option<(String, Option<&'static str>)> {
    cgroup_file_text.lines().find_map(|line| {
        let path = cgroup_path(line);
        path.split('/').rev().find_map(|seg| container_of_segment(seg, path))
    })
}

/// The Kubernetes pod UID in a kubepods cgroup path (`pod<uid>` with the systemd driver's `_`
/// turned back into `-`), from a cgroup file's text, one line or a bare path. Static pods have
/// a 32-hex UID instead of a UUID; both are accepted.
pub fn k8s_pod_uid_of_cgroup(cgroup_text: &str) -> Option<String> {
    cgroup_text.lines().map(cgroup_path).filter(|p| p.contains("kubepods")).find_map(|path| {
        path.split('/').find_map(|seg| {
            let seg = seg.strip_suffix(".slice").unwrap_or(seg);
            let uid = match seg.strip_prefix("pod") {
                Some(rest) => rest,
                None => &seg[seg.rfind("-pod")? + 4..],
            };
            normalize_pod_uid(uid)
        })
    })
}

/// What `/proc/self/mountinfo` says about the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountinfoFindings {
    /// The container's own ID, when a runtime mount names it (never a pod sandbox's).
    pub container_id: Option<String>,
    /// The runtime its mounts' layout points to.
    pub runtime: Option<&'static str>,
    /// The pod UID from a kubelet `pods/<uid>/` mount.
    pub pod_uid: Option<String>,
    /// Runtime mounts were seen but belong to the pod sandbox, so their ID was not used.
    pub sandbox_only: bool,
}

/// Reads container identity from mountinfo text; see the module documentation.
pub fn container_of_mountinfo(text: &str) -> MountinfoFindings {
    let mut found = MountinfoFindings::default();
    // (id, runtime, is the container's own file rather than one shared with the pod sandbox)
    let mut candidates: Vec<(Option<String>, Option<&'static str>, bool)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 5 {
            continue;
        }
        let root = unescape_octal(fields[3]);
        let mount_point = unescape_octal(fields[4]);
        let segs: Vec<&str> = root.split('/').filter(|s| !s.is_empty()).collect();

        if found.pod_uid.is_none() {
            found.pod_uid = segs.windows(3).find(|w| w[0] == "kubelet" && w[1] == "pods").and_then(|w| normalize_pod_uid(w[2]));
        }
        let own = mount_point == "/run/.containerenv";
        if !(own || matches!(mount_point.as_str(), "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf")) {
            continue;
        }
        if let Some(c) = container_in_mount_root(&segs) {
            candidates.push((c.0, c.1, own));
        }
    }

    let in_k8s = found.pod_uid.is_some();
    let runtime_in_k8s = |rt: Option<&'static str>| {
        if in_k8s && rt == Some(PODMAN) {
            Some(CRIO)
        } else {
            rt
        }
    };
    let chosen = candidates.iter().find(|c| c.2 && c.0.is_some()).or_else(|| candidates.iter().find(|c| !in_k8s && c.0.is_some()));
    match chosen {
        Some((id, rt, _)) => {
            found.container_id = id.clone();
            found.runtime = runtime_in_k8s(*rt);
        }
        None => {
            found.runtime = candidates.iter().find_map(|c| runtime_in_k8s(c.1));
            found.sandbox_only = in_k8s && !candidates.is_empty();
        }
    }
    found
}

/// `(id, runtime)` from the segments of a mount's root, e.g.
/// `var/lib/docker/containers/<id>/hostname`; the id is `None` for a CRI sandbox directory.
fn container_in_mount_root(segs: &[&str]) -> Option<(Option<String>, Option<&'static str>)> {
    for (i, seg) in segs.iter().enumerate() {
        let next = segs.get(i + 1).copied().unwrap_or("");
        let after = segs.get(i + 2).copied().unwrap_or("");
        match *seg {
            "overlay-containers" if is_hex64(next) => return Some((Some(next.to_string()), Some(PODMAN))),
            "containers" if is_hex64(next) => {
                let docker = matches!(after, "hostname" | "hosts" | "resolv.conf");
                return Some((Some(next.to_string()), docker.then_some(DOCKER)));
            }
            // nerdctl: <data-root>/nerdctl/<hash>/containers/<namespace>/<id>/…
            "containers" if is_hex64(after) && segs.contains(&"nerdctl") => {
                return Some((Some(after.to_string()), Some(CONTAINERD)));
            }
            "sandboxes" if i > 0 && segs[i - 1] == "io.containerd.grpc.v1.cri" => return Some((None, Some(CONTAINERD))),
            _ => {}
        }
    }
    None
}

/// The path part of a cgroup line (`hierarchy-ID:controllers:path`), or the line itself when
/// it is a bare path.
pub(crate) fn cgroup_path(line: &str) -> &str {
    let line = line.trim();
    let mut parts = line.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(_), Some(path)) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit()) => path,
        _ => line,
    }
}

fn container_of_segment(seg: &str, path: &str) -> Option<(String, Option<&'static str>)> {
    let seg = seg.strip_suffix(".scope").unwrap_or(seg);
    if is_hex64(seg) {
        return Some((seg.to_string(), runtime_of_path(path)));
    }
    let cut = seg.rfind(['-', ':'])?;
    let (prefix, id) = (&seg[..cut], &seg[cut + 1..]);
    if !is_hex64(id) || prefix.ends_with("conmon") {
        return None;
    }
    // `…slice:cri-containerd:<id>` names the runtime after the last `:`.
    let runtime = match prefix.rsplit(':').next().unwrap_or(prefix) {
        "docker" => Some(DOCKER),
        "cri-containerd" => Some(CONTAINERD),
        "crio" => Some(CRIO),
        "libpod" => Some(PODMAN),
        _ => runtime_of_path(path),
    };
    Some((id.to_string(), runtime))
}

fn runtime_of_path(path: &str) -> Option<&'static str> {
    if path.split('/').any(|s| s == "docker" || s == "docker.slice") {
        Some(DOCKER)
    } else if path.contains("kubepods") {
        Some(CONTAINERD)
    } else {
        None
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID as the API server writes it: a lowercase UUID, or 32 hex digits for static pods.
fn normalize_pod_uid(s: &str) -> Option<String> {
    let uid = s.replace('_', "-").to_ascii_lowercase();
    let groups: Vec<usize> = uid.split('-').map(str::len).collect();
    let hex = uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    (hex && (groups == [8, 4, 4, 4, 12] || groups == [32])).then_some(uid)
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |k: usize, max: u8| b.get(i + k).is_some_and(|c| (b'0'..=max).contains(c));
        if b[i] == b'\\' && octal(1, b'3') && octal(2, b'7') && octal(3, b'7') {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::{env_of, fixture};
    use crate::resource::Attributes;

    fn run(case: &str) -> Detected {
        let paths = fixture(case);
        let env = env_of(&[]);
        let config = Attributes::new();
        detect(&DetectInput { paths: &paths, env: &env, config_resource: &config, hostname: Some("h".into()) })
    }

    fn assert_case(case: &str, id: Option<&str>, runtime: Option<&str>, pod_uid: Option<&str>) -> Detected {
        let d = run(case);
        let get = |k: &str| d.attributes.get(k).map(String::as_str);
        assert_eq!(get("container.id"), id, "{case}: container.id");
        assert_eq!(get("container.runtime.name"), runtime, "{case}: container.runtime.name");
        assert_eq!(get("k8s.pod.uid"), pod_uid, "{case}: k8s.pod.uid");
        d
    }

    #[test]
    fn docker_on_cgroup_v1_is_found_in_the_cgroup_file() {
        assert_case("docker-cgroupv1", Some("8261eccfecaffa64f5d3cbd3e0f9372cd460921568830fdfcde8134705c66f74"), Some("docker"), None);
    }

    #[test]
    fn docker_on_cgroup_v2_is_found_in_mountinfo_not_in_the_overlay_upperdir() {
        assert_case("docker-cgroupv2", Some("4064f380d588fa812ec157157c13fd961e245d378bec17c2186d13d36a31c019"), Some("docker"), None);
    }

    #[test]
    fn containerd_under_kubernetes_on_cgroup_v1_ignores_the_sandbox_id() {
        let d = assert_case(
            "containerd-k8s-cgroupv1",
            Some("c6f0cf8310ae8921248c7aaa770ae9a0c32327fa1d8b3e6719955ffb14c75098"),
            Some("containerd"),
            Some("3273eab0-7af8-4579-a947-ed8aedf1667a"),
        );
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn containerd_under_kubernetes_with_the_systemd_driver_on_cgroup_v2() {
        assert_case(
            "containerd-k8s-cgroupv2-systemd",
            Some("c9482dd7037cd141dfd3dd25b909ea6da38f0f1e7c74e8642b131e92f74626ce"),
            Some("containerd"),
            Some("4df85153-51ae-46d3-8e51-2253ccd12173"),
        );
    }

    #[test]
    fn a_private_cgroup_namespace_under_kubernetes_leaves_the_id_unset_with_a_note() {
        let d = assert_case("containerd-k8s-cgroupv2-nsprivate", None, Some("containerd"), Some("fa5f2f5a-769c-4b76-b85e-499ba6033f6b"));
        assert_eq!(d.notes.len(), 1);
        assert!(d.notes[0].starts_with("container.id:"), "{:?}", d.notes);
    }

    #[test]
    fn crio_is_found_in_the_cgroup_file_not_in_the_sandbox_mounts() {
        assert_case(
            "crio",
            Some("f21859ab1faa9442fe6575585371f1bc1f0d4e96ef91acc019b1a36c01f6b919"),
            Some("cri-o"),
            Some("d1216c35-8b6f-4fd6-ac4e-942905d14684"),
        );
    }

    #[test]
    fn podman_is_found_in_the_cgroup_file_and_agrees_with_mountinfo() {
        let id = "da78b36284a3b96632dbdc32d3a544dc0fb8a56efa24766d554696c9aa02f0f6";
        assert_case("podman", Some(id), Some("podman"), None);
        let mi = std::fs::read_to_string(fixture("podman").proc("self/mountinfo")).unwrap();
        let m = container_of_mountinfo(&mi);
        assert_eq!((m.container_id.as_deref(), m.runtime), (Some(id), Some("podman")));
    }

    #[test]
    fn hosts_have_no_container() {
        for case in ["bare-host", "this-vm"] {
            let d = assert_case(case, None, None, None);
            assert!(d.notes.is_empty(), "{case}: {:?}", d.notes);
        }
    }

    #[test]
    fn strips_runtime_prefixes_and_scope_suffixes() {
        let id = "4064f380d588fa812ec157157c13fd961e245d378bec17c2186d13d36a31c019";
        for (line, runtime) in [
            (format!("0::/system.slice/docker-{id}.scope"), Some("docker")),
            (format!("0::/machine.slice/libpod-{id}.scope/container"), Some("podman")),
            (format!("0::/kubepods.slice/kubepods-pod0a1b2c3d_0000_4000_8000_000000000001.slice/crio-{id}.scope"), Some("cri-o")),
            (format!("1:name=systemd:/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-000000000001/{id}"), Some("containerd")),
            (format!("0::/system.slice/containerd.service/kubepods-besteffort-pod1.slice:cri-containerd:{id}"), Some("containerd")),
            (format!("/docker/{id}"), Some("docker")),
            (format!("5:cpuset:/ecs/0123456789abcdef0123456789abcdef/{id}"), None),
        ] {
            assert_eq!(container_of_cgroup_line(&line), Some((id.to_string(), runtime)), "{line}");
        }
    }

    #[test]
    fn the_innermost_container_wins_in_a_nested_path() {
        let outer = "8261eccfecaffa64f5d3cbd3e0f9372cd460921568830fdfcde8134705c66f74";
        let inner = "4064f380d588fa812ec157157c13fd961e245d378bec17c2186d13d36a31c019";
        let got = container_of_cgroup_line(&format!("4:memory:/docker/{outer}/docker/{inner}\n"));
        assert_eq!(got, Some((inner.to_string(), Some("docker"))));
    }

    #[test]
    fn ids_that_are_not_64_hex_are_not_containers() {
        assert_eq!(container_of_cgroup_line("4:memory:/process_api/9cddd64bd1a95bbcb8a55d01a9627f51\n0::/\n"), None);
        assert_eq!(container_of_cgroup_line("0::/user.slice/user-1000.slice/session-4.scope"), None);
        let conmon = "0::/machine.slice/libpod-conmon-4064f380d588fa812ec157157c13fd961e245d378bec17c2186d13d36a31c019.scope";
        assert_eq!(container_of_cgroup_line(conmon), None);
    }

    #[test]
    fn extracts_pod_uids_from_both_cgroup_drivers() {
        assert_eq!(
            k8s_pod_uid_of_cgroup(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4df85153_51ae_46d3_8e51_2253ccd12173.slice/cri-containerd-x.scope"
            )
            .as_deref(),
            Some("4df85153-51ae-46d3-8e51-2253ccd12173")
        );
        assert_eq!(
            k8s_pod_uid_of_cgroup("0::/kubepods.slice/kubepods-pod4DF85153_51AE_46D3_8E51_2253CCD12173.slice/x").as_deref(),
            Some("4df85153-51ae-46d3-8e51-2253ccd12173")
        );
        assert_eq!(
            k8s_pod_uid_of_cgroup("6:memory:/kubepods/pod3273eab0-7af8-4579-a947-ed8aedf1667a/abc").as_deref(),
            Some("3273eab0-7af8-4579-a947-ed8aedf1667a")
        );
        // A static pod's UID is the hash of its manifest.
        assert_eq!(k8s_pod_uid_of_cgroup("/kubepods/burstable/pod6b4a1a8e4b4e5e7f0c1d2e3f4a5b6c7d/x").as_deref(), Some("6b4a1a8e4b4e5e7f0c1d2e3f4a5b6c7d"));
        assert_eq!(k8s_pod_uid_of_cgroup("/system.slice/podman.service"), None);
        assert_eq!(k8s_pod_uid_of_cgroup("/kubepods/besteffort"), None);
    }

    #[test]
    fn rootless_podman_and_nerdctl_are_found_in_mountinfo() {
        let id = "da78b36284a3b96632dbdc32d3a544dc0fb8a56efa24766d554696c9aa02f0f6";
        let rootless = format!(
            "862 851 0:62 /user/1000/containers/overlay-containers/{id}/userdata/hostname /etc/hostname rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=814160k,mode=700,uid=1000,gid=1000\n"
        );
        let m = container_of_mountinfo(&rootless);
        assert_eq!((m.container_id.as_deref(), m.runtime), (Some(id), Some("podman")));
        let nerdctl = format!("900 880 8:1 /var/lib/nerdctl/1935db59/containers/default/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw\n");
        let m = container_of_mountinfo(&nerdctl);
        assert_eq!((m.container_id.as_deref(), m.runtime), (Some(id), Some("containerd")));
    }

    #[test]
    fn decodes_octal_escapes_in_mount_paths() {
        let id = "4064f380d588fa812ec157157c13fd961e245d378bec17c2186d13d36a31c019";
        let line = format!("1 2 8:1 /data/my\\040docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n");
        assert_eq!(container_of_mountinfo(&line).container_id.as_deref(), Some(id));
        assert_eq!(unescape_octal("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
        assert_eq!(unescape_octal("\\777"), "\\777");
    }
}
