//! `collector.containers`: every container, pod and Proxmox guest on the host.
//!
//! ```yaml
//! collector:
//!   containers:
//!     enabled: true                   # default: on in a Kubernetes DaemonSet that sees the node's kubepods cgroups
//!     root: /host/sys/fs/cgroup       # the node's cgroupfs (default: the cgroup mounts of PROC/self/mountinfo)
//!     max_containers: 2000
//!     kubelet:
//!       endpoint: https://${NODE_IP}:10250   # default: https://$NODE_IP:10250 (else $NODE_NAME)
//!       insecure_skip_verify: false
//! ```

use crate::units::{ConfigDuration, HostPaths};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Default `max_containers`: pods, containers and guests reported at most.
pub const DEFAULT_MAX_CONTAINERS: usize = super::discover::DEFAULT_MAX_CONTAINERS;
/// Default service-account token, as the kubelet's clients read it in a pod.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Default CA of the kubelet's serving certificate (the cluster CA).
pub const DEFAULT_CA_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// The kubelet's authenticated port.
pub const KUBELET_PORT: u16 = 10250;
/// Least time between two fetches of the kubelet's `/pods`.
pub const DEFAULT_KUBELET_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Time limit of one fetch of `/pods`.
pub const DEFAULT_KUBELET_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes of a `/pods` answer read (a node of 250 pods answers about 3 MB).
pub const DEFAULT_KUBELET_MAX_BODY: usize = 32 << 20;

/// `collector.containers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    /// Run this collector. Default: on when the agent runs in Kubernetes
    /// (`KUBERNETES_SERVICE_HOST` set) and sees the node's pod cgroups (a `kubepods*`
    /// directory at the root of a cgroup hierarchy: the DaemonSet mounts the node's
    /// `/sys/fs/cgroup`); otherwise off (opt in on Docker, podman or Proxmox hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Where the cgroup hierarchies are mounted, instead of what `PROC/self/mountinfo` says:
    /// a cgroup2 mount, or a directory of v1 hierarchies named by their controllers (as
    /// `collector.cgroup.root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// The most pods, containers and guests reported (default 2000); more are left out,
    /// counted by `metricsd.containers.dropped` and logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_containers: Option<usize>,
    /// Where the names of Kubernetes pods and containers come from.
    pub kubelet: KubeletConfig,
}

/// `collector.containers.kubelet`: the kubelet's `/pods` API on this node.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeletConfig {
    /// Ask the kubelet for pod and container names (default: true in Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The kubelet's base URL. Default `https://$NODE_IP:10250` (the downward API's
    /// `status.hostIP`), else `https://$NODE_NAME:10250`; `http://$NODE_IP:10255` is the
    /// read-only port, where a cluster still has it (no token sent over plain http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The bearer token file (default the service account's,
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`), read at each fetch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_path: Option<PathBuf>,
    /// The CA the kubelet's certificate must chain to (default the service account's
    /// `ca.crt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<PathBuf>,
    /// Accept any kubelet certificate (self-signed serving certificates, as kubeletstats'
    /// `insecure_skip_verify`).
    pub insecure_skip_verify: bool,
    /// Least time between two fetches (default `"10s"`); a fetch happens only when a pod UID
    /// without a name appears.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_interval: Option<ConfigDuration>,
}

impl ContainersConfig {
    /// The effective `max_containers`.
    pub fn max_containers(&self) -> usize {
        self.max_containers.unwrap_or(DEFAULT_MAX_CONTAINERS)
    }

    /// `enabled`, else whether the agent is a Kubernetes DaemonSet pod that sees the node's
    /// pod cgroups (see [`ContainersConfig::enabled`]).
    pub fn is_enabled(&self, paths: &HostPaths, env: impl Fn(&str) -> Option<String>) -> bool {
        self.enabled.unwrap_or_else(|| in_kubernetes(&env) && sees_kubepods(paths, self.root.as_deref()))
    }
}

/// `KUBERNETES_SERVICE_HOST` is set (the kubelet sets it in every pod).
pub fn in_kubernetes(env: impl Fn(&str) -> Option<String>) -> bool {
    env("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
}

/// A `kubepods*` directory at the root of one of the cgroup hierarchies (below `root`, else
/// those mounted).
pub fn sees_kubepods(paths: &HostPaths, root: Option<&std::path::Path>) -> bool {
    let Ok((hierarchies, _)) = crate::procfs::cgroup::find::hierarchies(paths, root) else { return false };
    hierarchies
        .iter()
        .any(|h| std::fs::read_dir(&h.dir).into_iter().flatten().flatten().any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("kubepods"))))
}

impl KubeletConfig {
    /// The base URL: `endpoint`, else from `NODE_IP`/`NODE_NAME`; `None` when nothing says
    /// where the kubelet is.
    pub fn endpoint(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        if let Some(e) = &self.endpoint {
            return Some(e.trim_end_matches('/').to_owned());
        }
        let host = env("NODE_IP").or_else(|| env("NODE_NAME")).filter(|h| !h.is_empty())?;
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        Some(format!("https://{host}:{KUBELET_PORT}"))
    }

    pub fn token_path(&self) -> PathBuf {
        self.token_path.clone().unwrap_or_else(|| DEFAULT_TOKEN_PATH.into())
    }

    pub fn ca_path(&self) -> PathBuf {
        self.ca_path.clone().unwrap_or_else(|| DEFAULT_CA_PATH.into())
    }

    pub fn min_interval(&self) -> Duration {
        self.min_interval.map(|d| d.get()).unwrap_or(DEFAULT_KUBELET_MIN_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn on_by_default_only_in_kubernetes_with_the_nodes_kubepods_visible() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let paths = HostPaths::under(t.path());
        let c = ContainersConfig { root: Some(t.path().to_path_buf()), ..Default::default() };
        let k8s = [("KUBERNETES_SERVICE_HOST", "10.96.0.1")];
        assert!(!c.is_enabled(&paths, env(&k8s)), "no kubepods directory: a sidecar's own cgroup namespace");
        std::fs::create_dir(t.path().join("kubepods.slice")).unwrap();
        assert!(c.is_enabled(&paths, env(&k8s)));
        assert!(!c.is_enabled(&paths, env(&[])), "not in Kubernetes");
        assert!(ContainersConfig { enabled: Some(true), ..Default::default() }.is_enabled(&paths, env(&[])));
    }

    #[test]
    fn the_kubelet_endpoint_comes_from_the_downward_api_unless_configured() {
        let k = KubeletConfig::default();
        assert_eq!(k.endpoint(env(&[("NODE_IP", "10.0.0.7"), ("NODE_NAME", "n1")])).as_deref(), Some("https://10.0.0.7:10250"));
        assert_eq!(k.endpoint(env(&[("NODE_IP", "fd00::7")])).as_deref(), Some("https://[fd00::7]:10250"));
        assert_eq!(k.endpoint(env(&[("NODE_NAME", "n1")])).as_deref(), Some("https://n1:10250"));
        assert_eq!(k.endpoint(env(&[])), None);
        let k = KubeletConfig { endpoint: Some("http://127.0.0.1:10255/".into()), ..Default::default() };
        assert_eq!(k.endpoint(env(&[("NODE_IP", "10.0.0.7")])).as_deref(), Some("http://127.0.0.1:10255"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_yaml_ng::from_str::<ContainersConfig>("kubelet: {endpoit: x}\n").unwrap_err().to_string();
        assert!(e.contains("endpoit"), "{e}");
    }
}
