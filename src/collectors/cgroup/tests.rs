//! The cgroup collector's tests, on the cgroup trees of `tests/fixtures/cgroup/` (and one on
//! a real cgroup, as root): the points of every metric on v2, v1, hybrid hosts and pods, and
//! what happens when files, directories or limits are missing. In a file of its own because
//! they outweigh the collector (the parsers' and the config's tests are beside them).

use super::*;
use crate::collectors::testutil::{collect_once, kind, of, value, write, Harness, Kind, Point};
use crate::procfs::cgroup::find::pod_dir_below;
use crate::procfs::cgroup::{fixture, fixture_copy};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The v2 Kubernetes container of `tests/fixtures/cgroup/v2-k8s-container`, below `sys/fs/cgroup/`.
const K8S: &str = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4df85153_51ae_46d3_8e51_2253ccd12173.slice/cri-containerd-c9482dd7037cd141dfd3dd25b909ea6da38f0f1e7c74e8642b131e92f74626ce.scope";
/// The captured v1 memory cgroup of `v1-hybrid` (nested in the capturing shell's own).
const V1_MEMORY: &str = "sys/fs/cgroup/memory/process_api/8b5719f0e97bc94c3a3aa952264dc347/metricsd-capture";

pub(super) fn paths(name: &str) -> HostPaths {
    HostPaths::under(fixture(name))
}

/// A writable copy of a fixture.
pub(super) fn copy(name: &str) -> (tempfile::TempDir, HostPaths) {
    fixture_copy(name)
}

fn collect(paths: &HostPaths, config: &CgroupConfig) -> Vec<Point> {
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(paths, &clock, config);
    collect_once(&clock, &mut c)
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn io(p: &[Point], metric: &str, dev: &str, dir: &str) -> Option<f64> {
    value(p, metric, &[("system.device", dev), ("disk.io.direction", dir)])
}

#[test]
fn reports_every_metric_of_a_kubernetes_container_on_cgroup_v2() {
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(&paths("v2-k8s-container"), &clock, &CgroupConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).unwrap();
    // cpu.stat: user_usec 2514875, system_usec 966391.
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.514875));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 0.966391));
    assert_eq!(kind(&p, "container.cpu.time"), Some(Kind::Counter));
    assert_eq!(h.unit("container.cpu.time"), Some("s"));
    // cpu.max "150000 100000": 1.5 CPUs.
    assert!(close(value(&p, "container.cpu.limit", &[]), 1.5));
    assert_eq!(kind(&p, "container.cpu.limit"), Some(Kind::Gauge));
    assert_eq!(h.unit("container.cpu.limit"), Some("{cpu}"));
    // nr_periods 1205, nr_throttled 37, throttled_usec 1825490.
    assert_eq!(value(&p, "container.linux.cpu.throttling.periods", &[("cpu.throttling.state", "total")]), Some(1205.0));
    assert_eq!(value(&p, "container.linux.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(37.0));
    assert_eq!(h.unit("container.linux.cpu.throttling.periods"), Some("{period}"));
    assert!(close(value(&p, "container.linux.cpu.throttling.time", &[]), 1.82549));
    // No usage rate from one refresh.
    assert!(of(&p, "container.cpu.usage").is_empty());
    // memory.current 157286400 (150 MiB), memory.max 536870912 (512 MiB).
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(157286400.0));
    assert_eq!(kind(&p, "container.memory.usage"), Some(Kind::UpDownCounter));
    assert_eq!(h.unit("container.memory.usage"), Some("By"));
    assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(536870912.0));
    // Working set: 157286400 − inactive_file 31457280 = 125829120 (120 MiB).
    assert_eq!(value(&p, "container.memory.working_set", &[]), Some(125829120.0));
    // Available: 536870912 − 125829120 = 411041792.
    assert_eq!(value(&p, "container.memory.available", &[]), Some(411041792.0));
    // memory.stat anon 104857600.
    assert_eq!(value(&p, "container.memory.rss", &[]), Some(104857600.0));
    // memory.events oom_kill 1.
    assert_eq!(value(&p, "container.linux.memory.oom_kills", &[]), Some(1.0));
    assert_eq!(kind(&p, "container.linux.memory.oom_kills"), Some(Kind::Counter));
    assert_eq!(h.unit("container.linux.memory.oom_kills"), Some("{kill}"));
    // pgmajfault 121; minor: pgfault 248910 − 121 = 248789.
    assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "major")]), Some(121.0));
    assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "minor")]), Some(248789.0));
    // io.stat, two devices; 8:0's iocost keys (cost.usage=…) are ignored.
    assert_eq!(io(&p, "container.disk.io", "8:0", "read"), Some(1459200.0));
    assert_eq!(io(&p, "container.disk.io", "8:0", "write"), Some(314773504.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "8:0", "read"), Some(192.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "8:0", "write"), Some(353.0));
    assert_eq!(io(&p, "container.disk.io", "253:0", "read"), Some(4096.0));
    assert_eq!(io(&p, "container.disk.io", "253:0", "write"), Some(1048576.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "253:0", "read"), Some(1.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "253:0", "write"), Some(256.0));
    assert_eq!(of(&p, "container.disk.io").len(), 4);
    assert_eq!(h.unit("container.disk.io"), Some("By"));
    assert_eq!(h.unit("container.linux.disk.operations"), Some("{operation}"));
    // pids.current 7, pids.max 1024.
    assert_eq!(value(&p, "container.pids.count", &[]), Some(7.0));
    assert_eq!(value(&p, "container.pids.limit", &[]), Some(1024.0));
    assert_eq!(h.unit("container.pids.count"), Some("{process}"));
    // 2 + 1 + 2 + 1 + 5 + 1 + 2 + 4 + 4 + 2 points, nothing else.
    assert_eq!(p.len(), 24, "{p:?}");
}

#[test]
fn reports_the_mount_root_as_the_container_in_a_private_cgroup_namespace() {
    let paths = paths("v2-namespaced");
    assert_eq!(locate(&paths, &CgroupConfig::default(), None).unwrap().unified, Some(paths.sys("fs/cgroup")));
    let p = collect(&paths, &CgroupConfig::default());
    // user_usec 700000000, system_usec 212345678.
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 700.0));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 212.345678));
    assert_eq!(value(&p, "container.linux.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(0.0));
    // memory.current 73400320 − inactive_file 16777216 = 56623104.
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(73400320.0));
    assert_eq!(value(&p, "container.memory.working_set", &[]), Some(56623104.0));
    assert_eq!(value(&p, "container.memory.rss", &[]), Some(48234496.0));
    // pgfault 51234 − pgmajfault 34 = 51200 minor.
    assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "minor")]), Some(51200.0));
    assert_eq!(value(&p, "container.linux.memory.oom_kills", &[]), Some(0.0));
    assert_eq!(io(&p, "container.disk.io", "259:0", "read"), Some(20480000.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "259:0", "write"), Some(100.0));
    assert_eq!(value(&p, "container.pids.count", &[]), Some(3.0));
    // cpu.max "max 100000", memory.max and pids.max "max": no limits, no available.
    for m in ["container.cpu.limit", "container.linux.memory.limit", "container.memory.available", "container.pids.limit"] {
        assert!(of(&p, m).is_empty(), "{m}");
    }
}

#[test]
fn reads_the_captured_v1_hybrid_tree_from_the_v1_controllers() {
    let paths = paths("v1-hybrid");
    let loc = locate(&paths, &CgroupConfig::default(), None).unwrap();
    // v2 at /sys/fs/cgroup/unified has no controllers on this host: everything comes from v1,
    // each controller at its own path (memory nested in the capturing shell's cgroup).
    assert_eq!(loc.unified, Some(paths.sys("fs/cgroup/unified/metricsd-capture")));
    assert!(loc.unified_controllers.is_empty());
    assert_eq!(loc.v1("cpu"), Some(paths.sys("fs/cgroup/cpu/metricsd-capture").as_path()));
    assert_eq!(loc.v1("memory"), Some(paths.root(V1_MEMORY).as_path()));
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).unwrap();
    // cpuacct.usage_user 2022564416 ns, cpuacct.usage_sys 483929808 ns.
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.022564416));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 0.483929808));
    // cpu.cfs_quota_us 50000 / cpu.cfs_period_us 100000.
    assert!(close(value(&p, "container.cpu.limit", &[]), 0.5));
    // cpu.stat: nr_periods 45, nr_throttled 42, throttled_time 5051528560 ns.
    assert_eq!(value(&p, "container.linux.cpu.throttling.periods", &[("cpu.throttling.state", "total")]), Some(45.0));
    assert_eq!(value(&p, "container.linux.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(42.0));
    assert!(close(value(&p, "container.linux.cpu.throttling.time", &[]), 5.05152856));
    // memory.usage_in_bytes 162500608, memory.limit_in_bytes 268435456 (256M).
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(162500608.0));
    assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(268435456.0));
    // 162500608 − total_inactive_file 50581504 = 111919104.
    assert_eq!(value(&p, "container.memory.working_set", &[]), Some(111919104.0));
    // 268435456 − 111919104 = 156516352.
    assert_eq!(value(&p, "container.memory.available", &[]), Some(156516352.0));
    assert_eq!(value(&p, "container.memory.rss", &[]), Some(108617728.0));
    // memory.oom_control oom_kill 0.
    assert_eq!(value(&p, "container.linux.memory.oom_kills", &[]), Some(0.0));
    // total_pgmajfault 0; total_pgfault 59666 − 0.
    assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "major")]), Some(0.0));
    assert_eq!(value(&p, "container.paging.faults", &[("system.paging.fault.type", "minor")]), Some(59666.0));
    // blkio.throttle.io_service_bytes_recursive: 254:0 Read 67112960, Write 67108864 (64 MiB
    // written and read back with O_DIRECT); io_serviced_recursive: Read 65, Write 64.
    assert_eq!(io(&p, "container.disk.io", "254:0", "read"), Some(67112960.0));
    assert_eq!(io(&p, "container.disk.io", "254:0", "write"), Some(67108864.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "254:0", "read"), Some(65.0));
    assert_eq!(io(&p, "container.linux.disk.operations", "254:0", "write"), Some(64.0));
    assert_eq!(of(&p, "container.disk.io").len(), 2, "the Total lines are skipped");
    // pids.current 4, pids.max 64.
    assert_eq!(value(&p, "container.pids.count", &[]), Some(4.0));
    assert_eq!(value(&p, "container.pids.limit", &[]), Some(64.0));
    assert!(of(&p, "container.cpu.usage").is_empty());
    // 2 + 1 + 2 + 1 + 5 + 1 + 2 + 2 + 2 + 2 points (one device), nothing else.
    assert_eq!(p.len(), 20, "{p:?}");
}

#[test]
fn v1_falls_back_to_cpuacct_stat_ticks_and_to_the_non_recursive_blkio_files() {
    let (dir, paths) = copy("v1-hybrid");
    let acct = dir.path().join("sys/fs/cgroup/cpuacct/metricsd-capture");
    std::fs::remove_file(acct.join("cpuacct.usage_user")).unwrap();
    std::fs::remove_file(acct.join("cpuacct.usage_sys")).unwrap();
    let blkio = dir.path().join("sys/fs/cgroup/blkio/metricsd-capture");
    std::fs::remove_file(blkio.join("blkio.throttle.io_service_bytes_recursive")).unwrap();
    write(&dir, "sys/fs/cgroup/blkio/metricsd-capture/blkio.throttle.io_service_bytes", "8:16 Read 4096\n8:16 Write 8192\n8:16 Total 12288\nTotal 12288\n");
    let p = collect(&paths, &CgroupConfig::default());
    // cpuacct.stat: user 196, system 45 ticks of USER_HZ (100).
    let hz = crate::procfs::stat::user_hz() as f64;
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 196.0 / hz));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 45.0 / hz));
    assert_eq!(io(&p, "container.disk.io", "8:16", "read"), Some(4096.0));
    assert_eq!(io(&p, "container.disk.io", "8:16", "write"), Some(8192.0));
    // Operations still come from io_serviced_recursive (254:0), bytes from the other file.
    assert_eq!(io(&p, "container.linux.disk.operations", "254:0", "read"), Some(65.0));
    assert_eq!(io(&p, "container.disk.io", "254:0", "read"), None);
}

#[test]
fn unlimited_limits_are_not_reported() {
    let (dir, paths) = copy("v1-hybrid");
    write(&dir, "sys/fs/cgroup/cpu/metricsd-capture/cpu.cfs_quota_us", "-1\n");
    write(&dir, &format!("{V1_MEMORY}/memory.limit_in_bytes"), "9223372036854771712\n");
    write(&dir, "sys/fs/cgroup/pids/metricsd-capture/pids.max", "max\n");
    let p = collect(&paths, &CgroupConfig::default());
    for m in ["container.cpu.limit", "container.linux.memory.limit", "container.memory.available", "container.pids.limit"] {
        assert!(of(&p, m).is_empty(), "{m}");
    }
    assert_eq!(value(&p, "container.memory.working_set", &[]), Some(111919104.0));
    assert_eq!(value(&p, "container.pids.count", &[]), Some(4.0));

    let (dir, paths) = copy("v2-k8s-container");
    for (f, text) in [("cpu.max", "max 100000\n"), ("memory.max", "max\n"), ("pids.max", "max\n")] {
        write(&dir, &format!("sys/fs/cgroup/{K8S}/{f}"), text);
    }
    let p = collect(&paths, &CgroupConfig::default());
    for m in ["container.cpu.limit", "container.linux.memory.limit", "container.memory.available", "container.pids.limit"] {
        assert!(of(&p, m).is_empty(), "{m}");
    }
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(157286400.0));
}

#[test]
fn cpu_usage_is_absent_on_the_first_refresh_and_the_usage_rate_from_the_second() {
    let (dir, paths) = copy("v2-k8s-container");
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
    let ms = Arc::new(AtomicU64::new(5_000));
    let t = ms.clone();
    c.now = Box::new(move || Duration::from_millis(t.load(Ordering::SeqCst)));
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).unwrap();
    assert!(of(&p, "container.cpu.usage").is_empty());
    // 10 s later usage_usec went from 3481266 to 10981266: 7.5 CPU-seconds in 10 s, 0.75 CPUs.
    ms.store(15_000, Ordering::SeqCst);
    let stat = "usage_usec 10981266\nuser_usec 8014875\nsystem_usec 2966391\nnr_periods 1305\nnr_throttled 40\nthrottled_usec 1925490\n";
    write(&dir, &format!("sys/fs/cgroup/{K8S}/cpu.stat"), stat);
    let p = h.tick(&mut c).unwrap();
    assert!(close(value(&p, "container.cpu.usage", &[]), 0.75));
    assert_eq!(kind(&p, "container.cpu.usage"), Some(Kind::Gauge));
    assert_eq!(h.unit("container.cpu.usage"), Some("{cpu}"));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 8.014875));
    // 2 s later, +1 CPU-second: 0.5 CPUs.
    ms.store(17_000, Ordering::SeqCst);
    write(&dir, &format!("sys/fs/cgroup/{K8S}/cpu.stat"), "usage_usec 11981266\nuser_usec 8514875\nsystem_usec 3466391\n");
    let p = h.tick(&mut c).unwrap();
    assert!(close(value(&p, "container.cpu.usage", &[]), 0.5));
    // The throttling keys went away (cpu controller disabled): their metrics with them.
    assert!(of(&p, "container.linux.cpu.throttling.periods").is_empty());
    // No time passed: no rate.
    let p = h.tick(&mut c).unwrap();
    assert!(of(&p, "container.cpu.usage").is_empty());
}

#[test]
fn a_broken_controller_file_leaves_out_only_that_controllers_metrics() {
    let (dir, paths) = copy("v2-k8s-container");
    write(&dir, &format!("sys/fs/cgroup/{K8S}/memory.current"), "lots\n");
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    let p = h.tick(&mut c).expect("cpu, io and pids were read");
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.514875));
    assert!(!of(&p, "container.pids.count").is_empty());
    assert_eq!(value(&p, "container.memory.usage", &[]), None);
    assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["memory"]);
}

#[test]
fn missing_controller_files_leave_their_metrics_absent_without_an_error() {
    let (dir, paths) = copy("v2-k8s-container");
    let cg = dir.path().join("sys/fs/cgroup").join(K8S);
    for f in ["io.stat", "memory.events", "memory.stat", "pids.current", "pids.max", "cpu.max"] {
        std::fs::remove_file(cg.join(f)).unwrap();
    }
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    for _ in 0..2 {
        let p = h.tick(&mut c).unwrap();
        for m in [
            "container.disk.io",
            "container.linux.disk.operations",
            "container.linux.memory.oom_kills",
            "container.memory.working_set",
            "container.memory.rss",
            "container.memory.available",
            "container.paging.faults",
            "container.pids.count",
            "container.pids.limit",
            "container.cpu.limit",
        ] {
            assert!(of(&p, m).is_empty(), "{m}");
        }
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(157286400.0));
        assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(536870912.0));
        assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.514875));
    }
    // A file learned missing is not looked for again.
    write(&dir, &format!("sys/fs/cgroup/{K8S}/pids.current"), "5\n");
    assert!(of(&h.tick(&mut c).unwrap(), "container.pids.count").is_empty());
}

#[test]
fn a_missing_cgroup_directory_is_an_error_naming_its_path() {
    let paths = paths("v2-k8s-container");
    let config = CgroupConfig { path: Some("/kubepods.slice/no-such.scope".into()), ..CgroupConfig::default() };
    let clock = TickClock::default();
    let mut c = CgroupCollector::new(&paths, &clock, &config);
    let mut h = Harness::new(&clock, &mut c);
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains(&paths.sys("fs/cgroup/kubepods.slice/no-such.scope").display().to_string()), "{e}");

    // A cgroup removed while being read: an error naming it, then found again once back.
    let (dir, paths) = copy("v2-k8s-container");
    let mut c = CgroupCollector::new(&paths, &clock, &CgroupConfig::default());
    let mut h = Harness::new(&clock, &mut c);
    h.tick(&mut c).unwrap();
    let cg = dir.path().join("sys/fs/cgroup").join(K8S);
    let aside = dir.path().join("aside");
    std::fs::rename(&cg, &aside).unwrap();
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains(&*cg.to_string_lossy()), "{e}");
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains(&*cg.to_string_lossy()), "{e}");
    std::fs::rename(&aside, &cg).unwrap();
    assert_eq!(value(&h.tick(&mut c).unwrap(), "container.pids.count", &[]), Some(7.0));
}

#[test]
fn path_and_root_point_at_another_cgroup() {
    // `path` from the hierarchy's root, with the mounts of PROC/self/mountinfo.
    let (dir, paths) = copy("v2-namespaced");
    write(&dir, "sys/fs/cgroup/other.scope/cgroup.controllers", "memory pids\n");
    write(&dir, "sys/fs/cgroup/other.scope/memory.current", "4096\n");
    write(&dir, "sys/fs/cgroup/other.scope/pids.current", "1\n");
    let config = CgroupConfig { path: Some("/other.scope".into()), ..CgroupConfig::default() };
    assert!(config.is_enabled(&paths));
    let p = collect(&paths, &config);
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(4096.0));
    assert_eq!(value(&p, "container.pids.count", &[]), Some(1.0));
    assert!(of(&p, "container.cpu.time").is_empty(), "no cpu.stat in other.scope");

    // `root`: a directory of v1 hierarchies (and `unified/`), here the captured tree; the
    // agent's own paths still come from PROC/self/cgroup.
    let paths = self::paths("v1-hybrid");
    let config = CgroupConfig { root: Some(fixture("v1-hybrid/sys/fs/cgroup")), ..CgroupConfig::default() };
    let loc = locate(&paths, &config, None).unwrap();
    assert_eq!(loc.unified, Some(paths.sys("fs/cgroup/unified/metricsd-capture")));
    assert_eq!(loc.v1("pids"), Some(paths.sys("fs/cgroup/pids/metricsd-capture").as_path()));
    assert_eq!(value(&collect(&paths, &config), "container.memory.usage", &[]), Some(162500608.0));

    // `root` at a cgroup2 mount, with `path`.
    let paths = self::paths("v2-k8s-container");
    let config = CgroupConfig { root: Some(paths.sys("fs/cgroup")), path: Some(format!("/{K8S}")), ..CgroupConfig::default() };
    assert_eq!(value(&collect(&paths, &config), "container.pids.count", &[]), Some(7.0));
}

/// The pod of `tests/fixtures/cgroup/v2-k8s-node` (systemd driver, Burstable).
pub(super) const V2_POD_UID: &str = "8c3a5f0e-2b1d-4e7a-9f60-1d2c3b4a5e6f";
const V2_POD: &str = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8c3a5f0e_2b1d_4e7a_9f60_1d2c3b4a5e6f.slice";
/// The pod of `tests/fixtures/cgroup/v1-k8s-node` (cgroupfs driver, Burstable).
pub(super) const V1_POD_UID: &str = "5b0e7c1a-93d4-4f2e-8a61-0c7d2e9f4b38";

pub(super) fn pod_config(root: Option<PathBuf>) -> CgroupConfig {
    CgroupConfig { scope: CgroupScope::Pod, root, ..CgroupConfig::default() }
}

fn collect_pod(paths: &HostPaths, config: &CgroupConfig, uid: &str) -> Vec<Point> {
    let clock = TickClock::default();
    let mut c = CgroupCollector::with_pod_uid(paths, &clock, config, Some(uid.into()));
    collect_once(&clock, &mut c)
}

#[test]
fn pod_scope_finds_the_systemd_driver_pod_slice_by_uid_and_reports_its_limits() {
    // The sidecar's view: its own cgroup namespace at /sys/fs/cgroup, the node's cgroupfs
    // (hostPath) at /host/sys/fs/cgroup, given as `root`.
    let paths = paths("v2-k8s-node");
    let node = fixture("v2-k8s-node/host/sys/fs/cgroup");
    let config = pod_config(Some(node.clone()));
    assert!(config.is_enabled(&crate::resource::tests::fixture("bare-host")), "scope: pod turns it on");
    let loc = locate(&paths, &config, Some(V2_POD_UID)).unwrap();
    assert_eq!(loc.unified, Some(node.join(V2_POD)));
    assert!(loc.v1.is_empty());
    // The pod slice's files: the sums of its containers' limits (150m… 1.5 + 0.1 CPUs,
    // 512 + 64 MiB) and the kubelet's pod pids limit.
    let p = collect_pod(&paths, &config, V2_POD_UID);
    assert!(close(value(&p, "container.cpu.limit", &[]), 1.6));
    assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(603979776.0));
    assert_eq!(value(&p, "container.pids.limit", &[]), Some(4096.0));
    // The usage of all its containers (and the sandbox): 172457984 − inactive_file 33554432.
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(172457984.0));
    assert_eq!(value(&p, "container.memory.working_set", &[]), Some(138903552.0));
    assert_eq!(value(&p, "container.memory.available", &[]), Some(465076224.0));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "user")]), 2.596488));
    assert_eq!(value(&p, "container.pids.count", &[]), Some(12.0));
    assert_eq!(value(&p, "container.linux.memory.oom_kills", &[]), Some(1.0));
    assert_eq!(io(&p, "container.disk.io", "8:0", "read"), Some(1871872.0));

    // The default scope on the same tree reports the sidecar's own container: 100m, 64 MiB.
    let p = collect(&paths, &CgroupConfig::default());
    assert!(close(value(&p, "container.cpu.limit", &[]), 0.1));
    assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(67108864.0));

    // Without `root`, every cgroup mount of mountinfo is searched: the namespaced
    // /sys/fs/cgroup has no kubepods, the hostPath mount at /host/sys/fs/cgroup has the pod.
    let config = pod_config(None);
    let loc = locate(&paths, &config, Some(V2_POD_UID)).unwrap();
    assert_eq!(loc.unified, Some(paths.root("host/sys/fs/cgroup").join(V2_POD)));
    assert_eq!(value(&collect_pod(&paths, &config, V2_POD_UID), "container.pids.limit", &[]), Some(4096.0));

    // A Guaranteed pod sits right below kubepods.slice, without a QoS slice.
    let guaranteed = "0d9e8f7a-6b5c-4d3e-8f21-0a1b2c3d4e5f";
    assert_eq!(pod_dir_below(&node, guaranteed), Some(node.join("kubepods.slice/kubepods-pod0d9e8f7a_6b5c_4d3e_8f21_0a1b2c3d4e5f.slice")));
}

#[test]
fn pod_scope_finds_the_cgroupfs_driver_pod_dir_on_v1() {
    let node = fixture("v1-k8s-node/host/sys/fs/cgroup");
    let paths = paths("v1-k8s-node");
    let config = pod_config(Some(node.clone()));
    let loc = locate(&paths, &config, Some(V1_POD_UID)).unwrap();
    let pod = format!("kubepods/burstable/pod{V1_POD_UID}");
    assert_eq!(loc.unified, None);
    assert_eq!(loc.v1("memory"), Some(node.join("memory").join(&pod).as_path()));
    assert_eq!(loc.v1("cpu"), Some(node.join("cpu,cpuacct").join(&pod).as_path()));
    assert_eq!(loc.v1("cpuacct"), Some(node.join("cpu,cpuacct").join(&pod).as_path()));
    let p = collect_pod(&paths, &config, V1_POD_UID);
    // cpu.cfs_quota_us 60000 / 100000 (500m + 100m); memory.limit_in_bytes 320 MiB (256 + 64).
    assert!(close(value(&p, "container.cpu.limit", &[]), 0.6));
    assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(335544320.0));
    // usage 180355072 − total_inactive_file 32505856; total_rss 134217728.
    assert_eq!(value(&p, "container.memory.usage", &[]), Some(180355072.0));
    assert_eq!(value(&p, "container.memory.working_set", &[]), Some(147849216.0));
    assert_eq!(value(&p, "container.memory.rss", &[]), Some(134217728.0));
    assert!(close(value(&p, "container.cpu.time", &[("cpu.mode", "system")]), 2.87654321));
    assert_eq!(value(&p, "container.linux.cpu.throttling.periods", &[("cpu.throttling.state", "throttled")]), Some(14.0));
    // A Guaranteed pod sits right below kubepods.
    let guaranteed = "0d9e8f7a-6b5c-4d3e-8f21-0a1b2c3d4e5f";
    assert_eq!(pod_dir_below(&node.join("memory"), guaranteed), Some(node.join("memory/kubepods").join(format!("pod{guaranteed}"))));
}

#[test]
fn pod_scope_with_an_unknown_uid_is_an_error_naming_the_uid_and_the_root() {
    let paths = paths("v2-k8s-node");
    let node = fixture("v2-k8s-node/host/sys/fs/cgroup");
    let uid = "00000000-0000-4000-8000-000000000000";
    let config = pod_config(Some(node.clone()));
    let clock = TickClock::default();
    let mut c = CgroupCollector::with_pod_uid(&paths, &clock, &config, Some(uid.into()));
    let mut h = Harness::new(&clock, &mut c);
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains(uid) && e.contains(&node.display().to_string()), "{e}");
    assert!(e.contains("pod00000000_0000_4000_8000_000000000000.slice"), "{e}");
    // Without `root`: the mounts searched.
    let e = locate(&paths, &pod_config(None), Some(uid)).unwrap_err().to_string();
    assert!(e.contains(uid) && e.contains(&paths.root("host/sys/fs/cgroup").display().to_string()), "{e}");
}

#[test]
fn pod_scope_without_a_uid_is_an_error() {
    let paths = paths("v2-k8s-node");
    let node = fixture("v2-k8s-node/host/sys/fs/cgroup");
    let clock = TickClock::default();
    let mut c = CgroupCollector::with_pod_uid(&paths, &clock, &pod_config(Some(node.clone())), None);
    let mut h = Harness::new(&clock, &mut c);
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains("pod UID is unknown") && e.contains("K8S_POD_UID") && e.contains(&node.display().to_string()), "{e}");
    let e = locate(&paths, &pod_config(None), Some(" ")).unwrap_err().to_string();
    assert!(e.contains("pod UID is unknown"), "{e}");
}

#[test]
fn pod_scope_finds_the_pod_again_after_its_directory_went_away() {
    let (dir, paths) = copy("v2-k8s-node");
    let config = pod_config(None);
    let clock = TickClock::default();
    let mut c = CgroupCollector::with_pod_uid(&paths, &clock, &config, Some(V2_POD_UID.into()));
    let mut h = Harness::new(&clock, &mut c);
    assert_eq!(value(&h.tick(&mut c).unwrap(), "container.pids.count", &[]), Some(12.0));
    let pod = dir.path().join("host/sys/fs/cgroup").join(V2_POD);
    let aside = dir.path().join("aside");
    std::fs::rename(&pod, &aside).unwrap();
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains(&*pod.to_string_lossy()), "{e}");
    let e = h.tick(&mut c).unwrap_err().to_string();
    assert!(e.contains(V2_POD_UID), "looked for again: {e}");
    std::fs::rename(&aside, &pod).unwrap();
    assert_eq!(value(&h.tick(&mut c).unwrap(), "container.pids.count", &[]), Some(12.0));
}

/// Removes the cgroups it holds (children first) when dropped.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn reports_the_limit_of_a_real_cgroup_created_for_the_test() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: creating a cgroup needs root");
        return;
    }
    let config = CgroupConfig { path: Some(format!("/metricsd-test-{}", std::process::id())), ..CgroupConfig::default() };
    let paths = HostPaths::default();
    let loc = match locate(&paths, &config, None) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let mut made = Cleanup(Vec::new());
    for d in loc.unified.iter().chain(loc.v1.iter().map(|(_, d)| d)) {
        if made.0.contains(d) {
            continue;
        }
        if let Err(e) = std::fs::create_dir(d) {
            eprintln!("skipped: cannot create {}: {e}", d.display());
            return;
        }
        made.0.push(d.clone());
    }
    // The memory limit, where this host has a memory controller for it.
    let loc = locate(&paths, &config, None).unwrap();
    let limit_file = match (loc.v2_with("memory"), loc.v1("memory")) {
        (Some(d), _) => Some(d.join("memory.max")),
        (None, Some(d)) => Some(d.join("memory.limit_in_bytes")),
        _ => None,
    };
    let limited = limit_file.is_some_and(|f| std::fs::write(f, "268435456").is_ok());
    if !limited {
        eprintln!("no memory controller for the test cgroup: its limit is not checked");
    }
    let p = collect(&paths, &config);
    if limited {
        assert_eq!(value(&p, "container.linux.memory.limit", &[]), Some(268435456.0));
        assert_eq!(value(&p, "container.memory.usage", &[]), Some(0.0), "nothing runs in it");
    }
    if loc.v2_with("pids").or(loc.v1("pids")).is_some() {
        assert_eq!(value(&p, "container.pids.count", &[]), Some(0.0));
    }
    drop(made);
    assert!(loc.v1.iter().all(|(_, d)| !d.exists()), "the test cgroups are removed");
}
