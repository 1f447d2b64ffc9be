//! `collector.cgroup`: which cgroup the collector reports ([`CgroupConfig`], [`CgroupScope`]),
//! the checks on its keys, and whether the collector runs by default
//! ([`looks_like_container`]).
//!
//! ```yaml
//! collector:
//!   cgroup:
//!     scope: pod                     # or container (default)
//!     root: /host/sys/fs/cgroup      # the node's cgroupfs, mounted by a hostPath volume
//! ```

use crate::procfs::cgroup::find::{hierarchies_of_mounts, own_path};
use crate::procfs::mountinfo;
use crate::resource::container;
use crate::units::HostPaths;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `collector.cgroup.scope`: which cgroup is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupScope {
    /// The agent's own cgroup (its container), or the one `path` names.
    #[default]
    Container,
    /// The agent's Kubernetes pod: the pod's cgroup, which holds all its containers (the
    /// sandbox's too) and carries the pod-level limits, found by the pod UID (`pod_uid`, else
    /// `K8S_POD_UID`) below the `kubepods*` directories of each hierarchy.
    Pod,
}

impl CgroupScope {
    fn is_container(&self) -> bool {
        *self == CgroupScope::Container
    }
}

/// `collector.cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "CgroupConfigFields")]
pub struct CgroupConfig {
    /// Run this collector. Default: on when `path`, `root` or `scope: pod` is set or when the
    /// agent runs in a container (its cgroup or mounts name a container runtime — Docker,
    /// containerd, CRI-O, Podman, Kubernetes — or it sits at the root of a private cgroup
    /// namespace); off on a plain host, where the system collectors already describe the same
    /// machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// The cgroup to report instead of the agent's own, as a path from the root of each
    /// hierarchy: `/kubepods.slice/kubepods-burstable.slice/…/cri-containerd-<id>.scope` (v2),
    /// `/docker/<id>` (v1, the same path in every controller's hierarchy). Not with
    /// `scope: pod`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where the cgroup hierarchies are mounted, instead of what `PROC/self/mountinfo` says
    /// (used as is, not below `HOST_SYS`): a cgroup2 mount (a directory with
    /// `cgroup.controllers`, such as `/host/sys/fs/cgroup` on a v2 host), or a directory of v1
    /// hierarchies named by their controllers (`cpu,cpuacct/`, `memory/`, `blkio/`, `pids/`, and
    /// a hybrid host's v2 in `unified/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// `container` (default) or `pod`: see [`CgroupScope`].
    #[serde(skip_serializing_if = "CgroupScope::is_container")]
    pub scope: CgroupScope,
    /// With `scope: pod`, the pod's UID (`metadata.uid`); default: `K8S_POD_UID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

/// The keys of `collector.cgroup` as written, checked by [`CgroupConfig::check`] on the way in.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CgroupConfigFields {
    enabled: Option<bool>,
    path: Option<String>,
    root: Option<PathBuf>,
    scope: CgroupScope,
    pod_uid: Option<String>,
    metrics: crate::collectors::metric_settings::MetricSettings,
}

impl TryFrom<CgroupConfigFields> for CgroupConfig {
    type Error = String;

    fn try_from(f: CgroupConfigFields) -> Result<Self, String> {
        let c = CgroupConfig { enabled: f.enabled, metrics: f.metrics, path: f.path, root: f.root, scope: f.scope, pod_uid: f.pod_uid };
        // Reported at `collector` (the key holding this section): say which section.
        c.check().map(|()| c).map_err(|msg| format!("cgroup: {msg}"))
    }
}

impl CgroupConfig {
    /// Whether the collector runs: `enabled` when set; else on when `path`, `root` or
    /// `scope: pod` is set or [`looks_like_container`].
    pub fn is_enabled(&self, paths: &HostPaths) -> bool {
        self.enabled.unwrap_or_else(|| self.path.is_some() || self.root.is_some() || self.scope == CgroupScope::Pod || looks_like_container(paths))
    }

    /// The combinations of keys that make no sense (checked when the config is read, and
    /// again by [`locate`](super::locate)): `path` with `scope: pod`, `pod_uid` without it, an empty `pod_uid`.
    pub fn check(&self) -> Result<(), String> {
        match (self.scope, &self.path, self.pod_uid.as_deref()) {
            (CgroupScope::Pod, Some(_), _) => {
                Err("`path` and `scope: pod` exclude each other: `scope: pod` finds the pod's cgroup by its UID, `path` names one cgroup".into())
            }
            (CgroupScope::Container, _, Some(_)) => Err("`pod_uid` is used only with `scope: pod`".into()),
            (_, _, Some(uid)) if uid.trim().is_empty() => Err("`pod_uid` is empty".into()),
            _ => Ok(()),
        }
    }

    /// The UID of the pod `scope: pod` reports: `pod_uid`, else the variable `K8S_POD_UID`
    /// (the downward API's `metadata.uid`, as the resource detector reads it) from `env`; `None`
    /// with `scope: container` or when neither is set.
    pub fn pod_uid(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        if self.scope != CgroupScope::Pod {
            return None;
        }
        self.pod_uid.clone().or_else(|| env("K8S_POD_UID")).map(|u| u.trim().to_owned()).filter(|u| !u.is_empty())
    }
}

/// Words in the cgroup paths container managers create.
const CONTAINER_WORDS: [&str; 5] = ["kubepods", "docker", "containerd", "crio", "libpod"];

/// Whether the agent runs in a container, judged from `PROC/self/cgroup` and
/// `PROC/self/mountinfo`: the resource detector finds a container there (a container ID in the
/// cgroup path, a runtime's bind mounts), or a cgroup path names `kubepods`, `docker`,
/// `containerd`, `crio` or `libpod`, or the agent's cgroup is `/` but what is mounted there is
/// not a hierarchy's real root (a private cgroup namespace: v2's `cgroup.type` and v1's missing
/// `release_agent` exist only below the root).
pub fn looks_like_container(paths: &HostPaths) -> bool {
    let Ok(cgroup) = std::fs::read_to_string(paths.proc("self/cgroup")) else { return false };
    if container::container_of_cgroup_line(&cgroup).is_some() {
        return true;
    }
    if cgroup.lines().map(container::cgroup_path).any(|p| CONTAINER_WORDS.iter().any(|w| p.contains(w))) {
        return true;
    }
    let Ok(mounts) = std::fs::read_to_string(paths.proc("self/mountinfo")) else { return false };
    let m = container::container_of_mountinfo(&mounts);
    if m.container_id.is_some() || m.runtime.is_some() || m.pod_uid.is_some() {
        return true;
    }
    let Ok(parsed) = mountinfo::parse(&mounts) else { return false };
    hierarchies_of_mounts(paths, &parsed).iter().any(|h| {
        if own_path(h, &cgroup) != Some("/") {
            return false;
        }
        let dir = h.dir_of("/");
        if h.v2 {
            dir.join("cgroup.type").exists()
        } else {
            dir.join("cgroup.procs").exists() && !dir.join("release_agent").exists()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::locate;
    use super::super::tests::{copy, paths, pod_config, V1_POD_UID, V2_POD_UID};
    use super::*;
    use crate::collectors::testutil::write;
    use std::path::Path;

    #[test]
    fn pod_scope_takes_the_uid_from_the_config_else_from_k8s_pod_uid() {
        let env = |k: &str| (k == "K8S_POD_UID").then(|| format!(" {V2_POD_UID}\n"));
        let no_env = |_: &str| None;
        assert_eq!(pod_config(None).pod_uid(env).as_deref(), Some(V2_POD_UID));
        let config = CgroupConfig { pod_uid: Some(V1_POD_UID.into()), ..pod_config(None) };
        assert_eq!(config.pod_uid(env).as_deref(), Some(V1_POD_UID), "the config wins");
        assert_eq!(pod_config(None).pod_uid(no_env), None);
        assert_eq!(pod_config(None).pod_uid(|_| Some(String::new())), None, "empty is unset");
        assert_eq!(CgroupConfig::default().pod_uid(env), None, "only with scope: pod");
    }

    #[test]
    fn path_and_scope_pod_together_are_rejected() {
        let parse = |text: &str| crate::config::Config::parse(text, crate::config::Format::Yaml, Path::new("c.yaml"));
        let e = parse("collector:\n  cgroup:\n    scope: pod\n    path: /docker/abc\n").unwrap_err().to_string();
        assert!(e.contains("c.yaml") && e.contains("`path` and `scope: pod`"), "{e}");
        let e = parse("collector:\n  cgroup:\n    pod_uid: abc\n").unwrap_err().to_string();
        assert!(e.contains("`pod_uid` is used only with `scope: pod`"), "{e}");
        // A config made in code: refused when locating.
        let config = CgroupConfig { path: Some("/x".into()), ..pod_config(None) };
        let e = locate(&paths("v2-k8s-node"), &config, Some(V2_POD_UID)).unwrap_err().to_string();
        assert!(e.contains("collector.cgroup") && e.contains("`path` and `scope: pod`"), "{e}");
    }

    #[test]
    fn the_config_section_parses_scope_and_pod_uid() {
        let parse = |text: &str| crate::config::Config::parse(text, crate::config::Format::Yaml, Path::new("c.yaml")).map(|c| c.collector.cgroup);
        let c = parse("collector:\n  cgroup:\n    scope: pod\n    root: /host/sys/fs/cgroup\n").unwrap();
        assert_eq!(c, CgroupConfig { scope: CgroupScope::Pod, root: Some("/host/sys/fs/cgroup".into()), ..CgroupConfig::default() });
        let c = parse("collector:\n  cgroup:\n    scope: pod\n    pod_uid: abc-def\n").unwrap();
        assert_eq!((c.scope, c.pod_uid.as_deref()), (CgroupScope::Pod, Some("abc-def")));
        assert_eq!(parse("collector:\n  cgroup:\n    scope: container\n").unwrap(), CgroupConfig::default());
        assert_eq!(parse("collector: {}\n").unwrap(), CgroupConfig::default());
        let e = parse("collector:\n  cgroup:\n    scope: node\n").unwrap_err().to_string();
        assert!(e.contains("node") && e.contains("container") && e.contains("pod"), "{e}");
        let e = parse("collector:\n  cgroup:\n    scope: pod\n    pod_uid: ''\n").unwrap_err().to_string();
        assert!(e.contains("`pod_uid` is empty"), "{e}");
        let e = parse("collector:\n  cgroup:\n    scope: pod\n    uid: x\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `uid`"), "{e}");
        // Written back (the effective config) with `scope` only when not the default.
        let json = serde_json::to_value(pod_config(None)).unwrap();
        assert_eq!(json, serde_json::json!({"scope": "pod"}));
        assert_eq!(serde_json::to_value(CgroupConfig::default()).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn the_config_section_rejects_unknown_keys() {
        let c: CgroupConfig = serde_json::from_str(r#"{"enabled": true, "path": "/docker/abc", "root": "/host/sys/fs/cgroup"}"#).unwrap();
        assert_eq!(
            c,
            CgroupConfig { enabled: Some(true), path: Some("/docker/abc".into()), root: Some("/host/sys/fs/cgroup".into()), ..CgroupConfig::default() }
        );
        let e = serde_json::from_str::<CgroupConfig>(r#"{"pth": "/x"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `pth`"), "{e}");
        let text = "collector:\n  cgroup:\n    enabled: false\n    paths: /x\n";
        let e = crate::config::Config::parse(text, crate::config::Format::Yaml, Path::new("c.yaml")).unwrap_err().to_string();
        assert!(e.contains("c.yaml:4:") && e.contains("paths"), "{e}");
        let c = crate::config::Config::parse("collector:\n  cgroup:\n    path: /a\n", crate::config::Format::Yaml, Path::new("c.yaml")).unwrap();
        assert_eq!(c.collector.cgroup.path.as_deref(), Some("/a"));
    }

    #[test]
    fn turns_itself_on_in_containers_and_stays_off_on_hosts() {
        let resource = crate::resource::tests::fixture;
        // Hosts: a systemd session, this VM (memory in a non-container cgroup), the capture.
        for (name, p) in [("bare-host", resource("bare-host")), ("this-vm", resource("this-vm")), ("v1-hybrid", paths("v1-hybrid"))] {
            assert!(!looks_like_container(&p), "{name}");
            assert!(!CgroupConfig::default().is_enabled(&p), "{name}");
        }
        // Containers: an ID in the cgroup path (v1, v2), Docker's bind mounts with `0::/`, a
        // kubelet mount with `0::/`.
        for (name, p) in [
            ("docker-cgroupv1", resource("docker-cgroupv1")),
            ("v2-k8s-container", paths("v2-k8s-container")),
            ("docker-cgroupv2", resource("docker-cgroupv2")),
            ("containerd-k8s-cgroupv2-nsprivate", resource("containerd-k8s-cgroupv2-nsprivate")),
        ] {
            assert!(looks_like_container(&p), "{name}");
        }
        // No runtime in sight, but `0::/` is a cgroup with cgroup.type: a namespace root.
        assert!(looks_like_container(&paths("v2-namespaced")));
        let (dir, p) = copy("v2-namespaced");
        std::fs::remove_file(dir.path().join("sys/fs/cgroup/cgroup.type")).unwrap();
        assert!(!looks_like_container(&p), "the real root of a v2 hierarchy");
        // A path naming a runtime without a 64-hex ID.
        write(&dir, "proc/self/cgroup", "0::/system.slice/containerd.service\n");
        assert!(looks_like_container(&p));
        // The config wins.
        assert!(!CgroupConfig { enabled: Some(false), ..CgroupConfig::default() }.is_enabled(&paths("v2-namespaced")));
        assert!(CgroupConfig { enabled: Some(true), ..CgroupConfig::default() }.is_enabled(&resource("bare-host")));
    }
}
