use super::*;
use crate::collectors::testutil::{self, Harness, Point};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ID2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const UID: &str = "1b2c3d4e-0000-4111-8222-333344445555";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/containers").join(name)
}

/// A writable copy of a fixture tree.
fn copy(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp").arg("-a").arg(format!("{}/.", fixture(name).display())).arg(t.path()).status().unwrap();
    assert!(status.success());
    t
}

fn collector(dir: &std::path::Path, clock: &TickClock, config: ContainersConfig) -> ContainersCollector {
    let config = ContainersConfig { root: Some(dir.join("sys/fs/cgroup")), ..config };
    ContainersCollector::new(&HostPaths::under(dir), clock, &config, |_| None)
}

/// The value of `metric` on the point whose attributes include all of `attrs`.
fn find(points: &[Point], metric: &str, attrs: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<_> = points.iter().filter(|p| p.0 == metric && attrs.iter().all(|(k, v)| p.1.iter().any(|(pk, pv)| pk == k && pv == v))).collect();
    assert!(hits.len() <= 1, "{metric} {attrs:?}: {} points match", hits.len());
    hits.first().map(|p| p.2)
}

fn attrs_of(points: &[Point], metric: &str, id: &str) -> Vec<(String, String)> {
    points.iter().find(|p| p.0 == metric && p.1.iter().any(|(k, v)| k == "container.id" && v == id)).map(|p| p.1.clone()).unwrap_or_default()
}

#[test]
fn a_v2_systemd_node_reports_each_container_and_the_pod_with_their_ids_qos_and_runtime() {
    let t = copy("v2-systemd-node");
    let clock = TickClock::default();
    let mut c = collector(t.path(), &clock, ContainersConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).unwrap();
    let id = [("container.id", ID)];
    assert_eq!(find(&p, "container.cpu.time", &[("container.id", ID), ("cpu.mode", "user")]), Some(2.514875));
    assert_eq!(find(&p, "container.cpu.limit", &id), Some(0.5));
    assert_eq!(find(&p, "container.memory.working_set", &id), Some(125829120.0));
    assert_eq!(find(&p, "container.linux.memory.oom_kills", &id), Some(1.0));
    assert_eq!(find(&p, "container.linux.memory.limit", &[("container.id", ID2)]), None, "memory.max `max`: no limit");
    assert_eq!(find(&p, "k8s.container.memory.limit.utilization", &id), Some(157286400.0 / 268435456.0));
    assert_eq!(find(&p, "container.disk.io", &[("container.id", ID), ("disk.io.direction", "write")]), Some(314773504.0));
    assert_eq!(
        find(
            &p,
            "container.linux.pressure.time",
            &[("container.id", ID), ("system.linux.pressure.resource", "memory"), ("system.linux.pressure.stall_type", "full")]
        ),
        Some(1.25)
    );
    let a = attrs_of(&p, "container.memory.usage", ID);
    for kv in [("k8s.pod.uid", UID), ("k8s.pod.qos_class", "burstable"), ("container.runtime.name", "containerd")] {
        assert!(a.contains(&(kv.0.to_string(), kv.1.to_string())), "{kv:?} in {a:?}");
    }
    // The pod: kubeletstats' names, the pod's attributes without a container's.
    let pod = [("k8s.pod.uid", UID)];
    assert_eq!(find(&p, "k8s.pod.cpu.time", &pod), Some(5.0));
    assert_eq!(find(&p, "k8s.pod.memory.working_set", &pod), Some(209715200.0 - 31457280.0));
    assert_eq!(find(&p, "k8s.pod.memory.page_faults", &pod), Some(248910.0));
    assert_eq!(
        find(
            &p,
            "k8s.pod.linux.pressure.time",
            &[("k8s.pod.uid", UID), ("system.linux.pressure.resource", "cpu"), ("system.linux.pressure.stall_type", "some")]
        ),
        Some(4.0)
    );
    assert!(testutil::of(&p, "k8s.pod.cpu.time").iter().all(|p| !p.1.iter().any(|(k, _)| k == "container.id")));
    assert_eq!(testutil::of(&p, "container.memory.usage").len(), 3, "two containers of the pod and one Docker container");
    // Docker outside Kubernetes: the name and image from config.v2.json.
    let d = attrs_of(&p, "container.memory.usage", &"a".repeat(64));
    assert!(d.contains(&("container.name".into(), "registry".into())) && d.contains(&("container.image.name".into(), "registry:2".into())), "{d:?}");
    assert!(find(&p, "container.cpu.usage", &id).is_none(), "a usage rate needs two ticks");
    // Second tick: usage and the limit utilization.
    let stat = t.path().join(format!(
        "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope/cpu.stat",
        UID.replace('-', "_")
    ));
    let text = std::fs::read_to_string(&stat).unwrap().replace("usage_usec 3481266", "usage_usec 1003481266");
    std::fs::write(&stat, text).unwrap();
    let p = h.tick(&mut c).unwrap();
    let usage = find(&p, "container.cpu.usage", &id).unwrap();
    let util = find(&p, "k8s.container.cpu.limit.utilization", &id).unwrap();
    assert!(usage > 0.0 && (util - usage / 0.5).abs() < 1e-9, "usage {usage}, utilization {util}");
    assert_eq!(find(&p, "metricsd.containers.dropped", &[]), Some(0.0));
}

#[test]
fn a_v1_cgroupfs_node_reads_each_controllers_hierarchy() {
    let clock = TickClock::default();
    let mut c = collector(&fixture("v1-cgroupfs-node"), &clock, ContainersConfig::default());
    let p = testutil::collect_once(&clock, &mut c);
    let id = [("container.id", ID)];
    assert_eq!(find(&p, "container.cpu.time", &[("container.id", ID), ("cpu.mode", "system")]), Some(0.483929808));
    assert_eq!(find(&p, "container.linux.cpu.throttling.time", &id), Some(5.05152856));
    assert_eq!(find(&p, "container.memory.working_set", &id), Some(111919104.0));
    assert_eq!(find(&p, "container.linux.disk.operations", &[("container.id", ID), ("disk.io.direction", "read")]), Some(65.0));
    assert_eq!(find(&p, "container.pids.limit", &id), Some(64.0));
    assert_eq!(find(&p, "k8s.pod.cpu.time", &[("k8s.pod.qos_class", "guaranteed")]), Some(2.5));
    assert!(attrs_of(&p, "container.pids.count", ID).iter().all(|(k, _)| k != "container.runtime.name"), "the cgroupfs driver does not say the runtime");
    assert!(testutil::of(&p, "container.linux.pressure.time").is_empty(), "no PSI on v1");
}

#[test]
fn proxmox_guests_carry_their_vmid_runtime_and_name() {
    let t = fixture("proxmox-v2");
    let clock = TickClock::default();
    let mut c = collector(&t, &clock, ContainersConfig::default());
    let p = testutil::collect_once(&clock, &mut c);
    assert_eq!(
        find(&p, "container.linux.memory.limit", &[("proxmox.vmid", "101"), ("container.name", "web01"), ("container.runtime.name", "lxc")]),
        Some(1073741824.0)
    );
    assert_eq!(
        find(&p, "container.cpu.time", &[("proxmox.vmid", "103"), ("container.name", "db01"), ("container.runtime.name", "qemu"), ("cpu.mode", "user")]),
        Some(50.0)
    );
    assert_eq!(testutil::of(&p, "container.memory.usage").len(), 2, "lxc.monitor.101 and init.scope are not guests");
}

#[test]
fn a_container_that_went_away_stops_at_the_next_tick() {
    let t = copy("v2-systemd-node");
    let clock = TickClock::default();
    let mut c = collector(t.path(), &clock, ContainersConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).unwrap();
    assert!(find(&p, "container.memory.usage", &[("container.id", ID2)]).is_some());
    let pod = format!("sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice", UID.replace('-', "_"));
    std::fs::remove_dir_all(t.path().join(format!("{pod}/cri-containerd-{ID2}.scope"))).unwrap();
    let p = h.tick(&mut c).unwrap();
    assert!(find(&p, "container.memory.usage", &[("container.id", ID2)]).is_none());
    assert!(find(&p, "container.memory.usage", &[("container.id", ID)]).is_some());
    assert_eq!(c.tracked.len(), 3, "its files are closed");
}

#[test]
fn over_max_containers_the_rest_is_counted_and_left_out() {
    let clock = TickClock::default();
    let mut c = collector(&fixture("v2-systemd-node"), &clock, ContainersConfig { max_containers: Some(2), ..Default::default() });
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).unwrap();
    let rows = testutil::of(&p, "container.memory.usage").len() + testutil::of(&p, "k8s.pod.memory.usage").len();
    assert_eq!(rows, 2);
    assert_eq!(find(&p, "metricsd.containers.dropped", &[]), Some(2.0));
    let p = h.tick(&mut c).unwrap();
    assert_eq!(find(&p, "metricsd.containers.dropped", &[]), Some(4.0), "a counter over refreshes");
}
