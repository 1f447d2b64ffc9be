//! Resource identity: the attributes that say which host, VM, container and pod the metrics
//! come from, detected once at start (and again on SIGHUP) from local files and environment
//! variables only. Nothing here makes a network call: there is no cloud metadata query.
//!
//! ## Where each attribute comes from
//!
//! | Detector | Attributes | Source |
//! | --- | --- | --- |
//! | host | `host.name`, `host.id`, `host.arch`, `os.type`, `os.description`, `os.name`, `os.version`, `os.build_id` | `/etc/hostname` or the kernel hostname, `/etc/machine-id`, `/etc/os-release`, `/proc/sys/kernel/osrelease` ([`host`]) |
//! | vm | `cloud.provider`, `cloud.platform`, `host.type`, `host.id` (EC2 instance ID) | DMI, `/sys/class/dmi/id/*` ([`vm`]) |
//! | container | `container.id`, `container.runtime.name`, `k8s.pod.uid` | `/proc/self/cgroup`, `/proc/self/mountinfo` ([`container`]) |
//! | k8s | `k8s.pod.name`, `k8s.pod.uid`, `k8s.namespace.name`, `k8s.node.name`, `k8s.container.name`, `k8s.cluster.name` | downward-API environment variables ([`k8s`]) |
//! | env | anything | `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME` ([`env`](mod@env)) |
//! | config | anything | the config file's `resource` map |
//!
//! `/proc`, `/sys` and `/` are read under the configured host root (`HOST_PROC`, `HOST_SYS`,
//! `HOST_ROOT`, `root_path`), so an agent in a container that mounts the host's filesystems
//! reports the host's identity.
//!
//! ## Precedence
//!
//! Each level overrides the ones before it, attribute by attribute:
//!
//! 1. built-in defaults: `telemetry.sdk.name` = `opentelemetry`, `telemetry.sdk.language` =
//!    `rust`, `service.version` = the metricsd version
//! 2. host
//! 3. vm (DMI / cloud)
//! 4. container
//! 5. k8s (downward API)
//! 6. `OTEL_RESOURCE_ATTRIBUTES`
//! 7. `OTEL_SERVICE_NAME` (sets `service.name`)
//! 8. the config's `resource` map
//!
//! `service.name` is `metricsd` when no level sets it. An empty value never sets nor overrides
//! an attribute: it is dropped. A file that is missing or unreadable leaves its attributes
//! absent; detection never fails. Things worth telling an operator (a malformed
//! `OTEL_RESOURCE_ATTRIBUTES` pair, a `host.id` that only lasts until reboot) come back as
//! notes for the caller to log.
//!
//! ```text
//! OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=prod,service.namespace=infra"
//! OTEL_SERVICE_NAME=node-agent
//! ```

pub mod container;
pub mod env;
pub mod host;
pub mod k8s;
pub mod vm;

use std::collections::BTreeMap;
use std::path::Path;

use crate::units::HostPaths;

pub use env::parse_otel_resource_attributes;

/// Resource attributes by key; every value is a string.
pub type Attributes = BTreeMap<String, String>;

/// Everything a detector needs from outside, so tests inject it.
pub struct DetectInput<'a> {
    /// Where the host's `/proc`, `/sys` and `/` are.
    pub paths: &'a HostPaths,
    /// Environment lookup; [`process_env`] in production.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The config file's `resource` map, which wins over everything detected.
    pub config_resource: &'a Attributes,
    /// The `gethostname()` result, injected; `None` = read it.
    pub hostname: Option<String>,
}

/// What detection found: the merged attributes and notes for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detected {
    /// The resource attributes.
    pub attributes: Attributes,
    /// Human-readable remarks, e.g.
    /// `OTEL_RESOURCE_ATTRIBUTES: ignored malformed pair 'x' (no '=')`.
    pub notes: Vec<String>,
}

impl Detected {
    /// Sets `key` unless `value` is absent or empty after trimming.
    pub(crate) fn set(&mut self, key: &str, value: Option<impl AsRef<str>>) {
        if let Some(v) = value {
            let v = v.as_ref().trim();
            if !v.is_empty() {
                self.attributes.insert(key.to_string(), v.to_string());
            }
        }
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// The process environment, for [`DetectInput::env`] in production.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs every detector and merges their attributes in the documented precedence order.
pub fn detect(input: &DetectInput) -> Detected {
    let mut defaults = Detected::default();
    defaults.set("telemetry.sdk.name", Some("opentelemetry"));
    defaults.set("telemetry.sdk.language", Some("rust"));
    defaults.set("service.version", Some(env!("CARGO_PKG_VERSION")));

    let mut service_name = Detected::default();
    service_name.set("service.name", env::service_name(input));

    let config = Detected { attributes: input.config_resource.clone(), notes: Vec::new() };

    let mut out = merge([
        defaults,
        host::detect(input),
        vm::detect(input),
        container::detect(input),
        k8s::detect(input),
        env::resource_attributes(input),
        service_name,
        config,
    ]);
    out.attributes.entry("service.name".to_string()).or_insert_with(|| "metricsd".to_string());
    out
}

/// Merges levels, later ones winning key by key; empty values are dropped, notes concatenated.
fn merge(levels: impl IntoIterator<Item = Detected>) -> Detected {
    let mut out = Detected::default();
    for level in levels {
        for (k, v) in level.attributes {
            out.set(&k, Some(v));
        }
        out.notes.extend(level.notes);
    }
    out
}

/// The file's content trimmed, or `None` when it is missing, unreadable or blank.
pub(crate) fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    pub(crate) fn fixture(case: &str) -> HostPaths {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resource").join(case);
        assert!(dir.is_dir(), "missing fixture {}", dir.display());
        HostPaths::under(dir)
    }

    pub(crate) use crate::units::env::env_of;

    fn detect_case(case: &str, vars: &[(&str, &str)], config: &[(&str, &str)]) -> Detected {
        let paths = fixture(case);
        let env = env_of(vars);
        let config: Attributes = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        detect(&DetectInput { paths: &paths, env: &env, config_resource: &config, hostname: None })
    }

    fn level(pairs: &[(&str, &str)]) -> Detected {
        Detected { attributes: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), notes: Vec::new() }
    }

    #[test]
    fn later_levels_override_earlier_ones_key_by_key() {
        let names = ["host", "vm", "container", "k8s", "otel_resource_attributes", "otel_service_name", "config"];
        // Level i sets keys k_i..k_6 to its own name: key k_j must end up with level j's name.
        let levels: Vec<Detected> = (0..names.len())
            .map(|i| {
                let mut d = Detected::default();
                for j in i..names.len() {
                    d.set(&format!("k{j}"), Some(names[i]));
                }
                d
            })
            .collect();
        let merged = merge(levels);
        for (j, name) in names.iter().enumerate() {
            assert_eq!(merged.attributes[&format!("k{j}")], *name);
        }
    }

    #[test]
    fn empty_values_neither_set_nor_override() {
        let merged = merge([level(&[("a", "1"), ("b", " ")]), level(&[("a", ""), ("c", "")])]);
        assert_eq!(merged.attributes, level(&[("a", "1")]).attributes);
    }

    #[test]
    fn defaults_name_the_service_metricsd_and_the_sdk() {
        let d = detect_case("bare-host", &[], &[]);
        assert_eq!(d.attributes["service.name"], "metricsd");
        assert_eq!(d.attributes["service.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(d.attributes["telemetry.sdk.name"], "opentelemetry");
        assert_eq!(d.attributes["telemetry.sdk.language"], "rust");
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn bare_host_has_host_and_os_identity_and_no_container_or_cloud() {
        let d = detect_case("bare-host", &[], &[]);
        let a = &d.attributes;
        assert_eq!(a["host.name"], "web-01");
        assert_eq!(a["host.id"], "5f3c0a8e9b2d4c61a7e4f0b1c2d3e4f5");
        assert_eq!(a["os.type"], "linux");
        assert_eq!(a["os.name"], "Ubuntu");
        assert_eq!(a["os.version"], "22.04");
        assert_eq!(a["os.description"], "Ubuntu 22.04.4 LTS (Linux 5.15.0-105-generic)");
        assert_eq!(a["host.arch"], host::semconv_arch(std::env::consts::ARCH));
        for absent in ["container.id", "container.runtime.name", "cloud.provider", "cloud.platform", "host.type", "k8s.pod.uid"] {
            assert!(!a.contains_key(absent), "{absent} set: {a:?}");
        }
    }

    #[test]
    fn each_level_overrides_the_one_before_on_a_kubernetes_node() {
        let pod_uid = "3273eab0-7af8-4579-a947-ed8aedf1667a";
        let cid = "c6f0cf8310ae8921248c7aaa770ae9a0c32327fa1d8b3e6719955ffb14c75098";

        // Detected only: the container level gives the pod UID from the cgroup path.
        let d = detect_case("containerd-k8s-cgroupv1", &[], &[]);
        assert_eq!(d.attributes["k8s.pod.uid"], pod_uid);
        assert_eq!(d.attributes["container.id"], cid);
        assert_eq!(d.attributes["service.name"], "metricsd");

        // k8s (downward API) over container.
        let mut vars = vec![("K8S_POD_UID", "11111111-2222-3333-4444-555555555555"), ("K8S_POD_NAME", "web-0")];
        let d = detect_case("containerd-k8s-cgroupv1", &vars, &[]);
        assert_eq!(d.attributes["k8s.pod.uid"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(d.attributes["k8s.pod.name"], "web-0");

        // OTEL_RESOURCE_ATTRIBUTES over k8s, container and host.
        vars.push(("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=web-1,container.id=abc,host.name=from-env,service.name=from-attrs"));
        let d = detect_case("containerd-k8s-cgroupv1", &vars, &[]);
        assert_eq!(d.attributes["k8s.pod.name"], "web-1");
        assert_eq!(d.attributes["container.id"], "abc");
        assert_eq!(d.attributes["host.name"], "from-env");
        assert_eq!(d.attributes["service.name"], "from-attrs");

        // OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES.
        vars.push(("OTEL_SERVICE_NAME", "from-service-name"));
        let d = detect_case("containerd-k8s-cgroupv1", &vars, &[]);
        assert_eq!(d.attributes["service.name"], "from-service-name");

        // The config's resource map over everything; its empty value overrides nothing.
        let d = detect_case("containerd-k8s-cgroupv1", &vars, &[("service.name", "from-config"), ("k8s.pod.name", "web-2"), ("host.name", "")]);
        assert_eq!(d.attributes["service.name"], "from-config");
        assert_eq!(d.attributes["k8s.pod.name"], "web-2");
        assert_eq!(d.attributes["host.name"], "from-env");
    }

    #[test]
    fn the_vm_level_overrides_the_host_level_host_id_on_ec2() {
        let d = detect_case("aws-ec2", &[], &[]);
        assert_eq!(d.attributes["host.id"], "i-0af01c0123456789a");
        let paths = fixture("aws-ec2");
        let env = env_of(&[]);
        let config = Attributes::new();
        let input = DetectInput { paths: &paths, env: &env, config_resource: &config, hostname: None };
        assert_eq!(host::detect(&input).attributes["host.id"], "ec2a7c1d3e5f47b8a9c0d1e2f3a4b5c6");
    }

    #[test]
    fn a_malformed_otel_resource_attributes_pair_is_noted_and_the_rest_kept() {
        let d = detect_case("bare-host", &[("OTEL_RESOURCE_ATTRIBUTES", "team=infra,oops,region=eu%2Dwest,bad=%zz")], &[]);
        assert_eq!(d.attributes["team"], "infra");
        assert_eq!(d.attributes["region"], "eu-west");
        assert!(!d.attributes.contains_key("bad"));
        assert_eq!(
            d.notes,
            vec![
                "OTEL_RESOURCE_ATTRIBUTES: ignored malformed pair 'oops' (no '=')".to_string(),
                "OTEL_RESOURCE_ATTRIBUTES: ignored malformed pair 'bad=%zz' (invalid percent-encoding)".to_string(),
            ]
        );
    }

    #[test]
    fn every_fixture_gives_its_expected_identity() {
        const KEYS: [&str; 7] = ["container.id", "container.runtime.name", "k8s.pod.uid", "cloud.provider", "cloud.platform", "host.type", "host.id"];
        // Per fixture, the KEYS it sets; every other one of KEYS must be absent.
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("docker-cgroupv1", &[("container.id", "8261eccfecaffa64f5d3cbd3e0f9372cd460921568830fdfcde8134705c66f74"), ("container.runtime.name", "docker")]),
            ("docker-cgroupv2", &[("container.id", "4064f380d588fa812ec157157c13fd961e245d378bec17c2186d13d36a31c019"), ("container.runtime.name", "docker")]),
            (
                "containerd-k8s-cgroupv1",
                &[
                    ("container.id", "c6f0cf8310ae8921248c7aaa770ae9a0c32327fa1d8b3e6719955ffb14c75098"),
                    ("container.runtime.name", "containerd"),
                    ("k8s.pod.uid", "3273eab0-7af8-4579-a947-ed8aedf1667a"),
                ],
            ),
            (
                "containerd-k8s-cgroupv2-systemd",
                &[
                    ("container.id", "c9482dd7037cd141dfd3dd25b909ea6da38f0f1e7c74e8642b131e92f74626ce"),
                    ("container.runtime.name", "containerd"),
                    ("k8s.pod.uid", "4df85153-51ae-46d3-8e51-2253ccd12173"),
                ],
            ),
            ("containerd-k8s-cgroupv2-nsprivate", &[("container.runtime.name", "containerd"), ("k8s.pod.uid", "fa5f2f5a-769c-4b76-b85e-499ba6033f6b")]),
            (
                "crio",
                &[
                    ("container.id", "f21859ab1faa9442fe6575585371f1bc1f0d4e96ef91acc019b1a36c01f6b919"),
                    ("container.runtime.name", "cri-o"),
                    ("k8s.pod.uid", "d1216c35-8b6f-4fd6-ac4e-942905d14684"),
                ],
            ),
            ("podman", &[("container.id", "da78b36284a3b96632dbdc32d3a544dc0fb8a56efa24766d554696c9aa02f0f6"), ("container.runtime.name", "podman")]),
            ("bare-host", &[("host.id", "5f3c0a8e9b2d4c61a7e4f0b1c2d3e4f5")]),
            ("aws-ec2", &[("cloud.provider", "aws"), ("cloud.platform", "aws_ec2"), ("host.type", "m5.large"), ("host.id", "i-0af01c0123456789a")]),
            ("gcp", &[("cloud.provider", "gcp"), ("cloud.platform", "gcp_compute_engine"), ("host.id", "9d2c4e6f8a0b41c3d5e7f9a1b3c5d7e9")]),
            ("azure", &[("cloud.provider", "azure"), ("cloud.platform", "azure_vm"), ("host.id", "2b4d6f8a0c1e43a5b7c9d1e3f5a7b9c1")]),
            ("qemu-kvm", &[("host.id", "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")]),
            ("this-vm", &[("host.id", "c2423a6b-c365-4ea4-807c-fc7a293ac58b")]),
        ];
        for (case, expected) in cases {
            let got = detect_case(case, &[], &[]).attributes;
            for key in KEYS {
                let want = expected.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                assert_eq!(got.get(key).map(String::as_str), want, "{case}: {key}");
            }
        }
    }

    #[test]
    fn this_vm_capture_is_a_plain_firecracker_guest() {
        let d = detect_case("this-vm", &[], &[]);
        let a = &d.attributes;
        assert_eq!(a["host.name"], "vm");
        assert_eq!(a["os.name"], "Debian GNU/Linux");
        assert_eq!(a["os.version"], "12");
        assert_eq!(a["os.description"], "Debian GNU/Linux 12 (bookworm) (Linux 6.18.44-fc-v782)");
        // No machine-id and no DMI captured: host.id falls back to the boot ID, with a note.
        assert_eq!(a["host.id"], "c2423a6b-c365-4ea4-807c-fc7a293ac58b");
        assert!(d.notes.iter().any(|n| n.contains("boot_id")), "{:?}", d.notes);
        // The memory controller's /process_api/<32 hex> is not a container ID.
        for absent in ["container.id", "container.runtime.name", "cloud.provider", "host.type"] {
            assert!(!a.contains_key(absent), "{absent} set: {a:?}");
        }
    }
}
