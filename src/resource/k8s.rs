//! Kubernetes identity from downward-API environment variables. Kubernetes sets none of these
//! by itself: the pod spec maps them, e.g.:
//!
//! ```text
//! env:
//!   - name: K8S_POD_NAME
//!     valueFrom: { fieldRef: { fieldPath: metadata.name } }
//!   - name: K8S_POD_UID
//!     valueFrom: { fieldRef: { fieldPath: metadata.uid } }
//!   - name: K8S_NAMESPACE
//!     valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
//!   - name: K8S_NODE_NAME
//!     valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
//!   - name: K8S_CONTAINER_NAME
//!     value: metricsd
//! ```
//!
//! | Attribute | Variables, first set and non-empty wins |
//! | --- | --- |
//! | `k8s.pod.name` | `K8S_POD_NAME`, `POD_NAME` |
//! | `k8s.pod.uid` | `K8S_POD_UID`, `POD_UID` |
//! | `k8s.namespace.name` | `K8S_NAMESPACE`, `K8S_NAMESPACE_NAME`, `POD_NAMESPACE` |
//! | `k8s.node.name` | `K8S_NODE_NAME`, `NODE_NAME` |
//! | `k8s.container.name` | `K8S_CONTAINER_NAME`, `CONTAINER_NAME` |
//! | `k8s.cluster.name` | `K8S_CLUSTER_NAME` |
//!
//! The unprefixed names (`POD_NAME`, `NODE_NAME`, `CONTAINER_NAME`, ...) are common words that
//! other tools set too, so they count only inside Kubernetes (`KUBERNETES_SERVICE_HOST` set, as
//! the kubelet does for every container); the `K8S_` names always count.
//!
//! The same attributes can also be set through `OTEL_RESOURCE_ATTRIBUTES` (the OpenTelemetry
//! Operator's way), which wins over these.

use super::{DetectInput, Detected};

/// Each attribute and the variables read for it, in order.
pub const VARIABLES: &[(&str, &[&str])] = &[
    ("k8s.pod.name", &["K8S_POD_NAME", "POD_NAME"]),
    ("k8s.pod.uid", &["K8S_POD_UID", "POD_UID"]),
    ("k8s.namespace.name", &["K8S_NAMESPACE", "K8S_NAMESPACE_NAME", "POD_NAMESPACE"]),
    ("k8s.node.name", &["K8S_NODE_NAME", "NODE_NAME"]),
    ("k8s.container.name", &["K8S_CONTAINER_NAME", "CONTAINER_NAME"]),
    ("k8s.cluster.name", &["K8S_CLUSTER_NAME"]),
];

/// The `k8s.*` attributes the environment sets.
pub fn detect(input: &DetectInput) -> Detected {
    let mut out = Detected::default();
    let in_kubernetes = (input.env)("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty());
    for (attr, vars) in VARIABLES {
        let value = vars.iter().filter(|v| in_kubernetes || v.starts_with("K8S_")).filter_map(|v| (input.env)(v)).find(|v| !v.trim().is_empty());
        out.set(attr, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::env_of;
    use crate::resource::Attributes;
    use crate::units::HostPaths;

    fn run(vars: &[(&str, &str)]) -> Attributes {
        let paths = HostPaths::default();
        let env = env_of(vars);
        let config = Attributes::new();
        detect(&DetectInput { paths: &paths, env: &env, config_resource: &config, hostname: None }).attributes
    }

    #[test]
    fn maps_downward_api_variables_to_k8s_attributes() {
        let a = run(&[
            ("K8S_POD_NAME", "metricsd-x7k2p"),
            ("K8S_POD_UID", "3273eab0-7af8-4579-a947-ed8aedf1667a"),
            ("K8S_NAMESPACE", "monitoring"),
            ("K8S_NODE_NAME", "node-a"),
            ("K8S_CONTAINER_NAME", "metricsd"),
            ("K8S_CLUSTER_NAME", "prod-eu"),
        ]);
        assert_eq!(a["k8s.pod.name"], "metricsd-x7k2p");
        assert_eq!(a["k8s.pod.uid"], "3273eab0-7af8-4579-a947-ed8aedf1667a");
        assert_eq!(a["k8s.namespace.name"], "monitoring");
        assert_eq!(a["k8s.node.name"], "node-a");
        assert_eq!(a["k8s.container.name"], "metricsd");
        assert_eq!(a["k8s.cluster.name"], "prod-eu");
    }

    #[test]
    fn k8s_prefixed_variables_win_over_the_plain_ones_and_empty_ones_are_skipped() {
        let a = run(&[
            ("K8S_POD_NAME", "a"),
            ("POD_NAME", "b"),
            ("K8S_NODE_NAME", ""),
            ("NODE_NAME", "n"),
            ("POD_NAMESPACE", "ns"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ]);
        assert_eq!(a["k8s.pod.name"], "a");
        assert_eq!(a["k8s.node.name"], "n");
        assert_eq!(a["k8s.namespace.name"], "ns");
        assert!(!a.contains_key("k8s.pod.uid"));
    }

    #[test]
    fn plain_names_outside_kubernetes_are_someone_elses_variables() {
        let a = run(&[("CONTAINER_NAME", "sandbox-1"), ("NODE_NAME", "n"), ("K8S_POD_NAME", "p")]);
        assert!(!a.contains_key("k8s.container.name") && !a.contains_key("k8s.node.name"), "{a:?}");
        assert_eq!(a["k8s.pod.name"], "p");
    }

    #[test]
    fn no_variables_no_attributes() {
        assert!(run(&[]).is_empty());
    }
}
