//! The containers collector on this machine's real cgroup hierarchies (as root): pod-shaped
//! cgroups in both kubelet drivers' naming are made in every hierarchy the collector reads
//! (v2 and the v1 controllers), a busy process is moved into one, and its CPU time must grow
//! and its memory be above zero. Everything made is removed by a guard, even on failure.
//! Skipped, with the reason printed, when not root or the hierarchies are not writable.

use metricsd::collectors::containers::{ContainersCollector, ContainersConfig};
use metricsd::collectors::{Collector, TickClock};
use metricsd::pipeline::meter::MeterProvider;
use metricsd::procfs::cgroup::find;
use metricsd::units::HostPaths;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Made directories (removed deepest first) and the spawned process (killed first).
struct Guard {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            // A cgroup is removable once its last process is gone; the kernel needs a moment
            // to reap it.
            let start = Instant::now();
            while std::fs::remove_dir(d).is_err() && d.exists() && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn value(provider: &MeterProvider, metric: &str, attrs: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for sm in provider.collect(std::time::SystemTime::now()) {
        for m in sm.metrics.into_iter().filter(|m| m.name == metric) {
            let points = match m.data {
                Some(Data::Gauge(g)) => g.data_points,
                Some(Data::Sum(s)) => s.data_points,
                _ => continue,
            };
            for p in points {
                let has = |k: &str, v: &str| {
                    p.attributes
                        .iter()
                        .any(|kv| kv.key == k && matches!(kv.value.as_ref().and_then(|x| x.value.as_ref()), Some(AnyValue::StringValue(s)) if s == v))
                };
                if attrs.iter().all(|(k, v)| has(k, v)) {
                    let v = match p.value {
                        Some(Value::AsDouble(d)) => d,
                        Some(Value::AsInt(i)) => i as f64,
                        None => continue,
                    };
                    *sum.get_or_insert(0.0) += v;
                }
            }
        }
    }
    sum
}

#[test]
fn a_busy_process_in_a_pod_shaped_cgroup_shows_growing_cpu_time_and_memory() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: making cgroups needs root");
        return;
    }
    let paths = HostPaths::default();
    let hierarchies = match find::hierarchies(&paths, None) {
        Ok((h, _)) if !h.is_empty() => h,
        other => {
            println!("skipped: no cgroup hierarchies here ({:?})", other.err());
            return;
        }
    };
    let read = |h: &find::Hierarchy| h.v2 || ["cpu", "cpuacct", "memory", "blkio", "pids"].iter().any(|c| h.has(c));
    let tag = std::process::id();
    let uid_a = format!("{tag:08x}-0000-4000-8000-00000000000a");
    let uid_b = format!("{tag:08x}-0000-4000-8000-00000000000b");
    let id_a = format!("{tag:08x}{}", "a".repeat(56));
    let id_b = format!("{tag:08x}{}", "b".repeat(56));
    // The cgroupfs driver's names, and the systemd driver's.
    let cgroupfs =
        ["kubepods".to_string(), "kubepods/burstable".into(), format!("kubepods/burstable/pod{uid_a}"), format!("kubepods/burstable/pod{uid_a}/{id_a}")];
    let ub = uid_b.replace('-', "_");
    let systemd = [
        "kubepods.slice".to_string(),
        "kubepods.slice/kubepods-besteffort.slice".into(),
        format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{ub}.slice"),
        format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{ub}.slice/cri-containerd-{id_b}.scope"),
    ];
    let mut guard = Guard { dirs: Vec::new(), child: None };
    for h in hierarchies.iter().filter(|h| read(h)) {
        for rel in cgroupfs.iter().chain(&systemd) {
            let d = h.dir.join(rel);
            if d.exists() {
                continue; // a real node's kubepods: leave it alone
            }
            if let Err(e) = std::fs::create_dir(&d) {
                println!("skipped: cannot make {}: {e}", d.display());
                return;
            }
            guard.dirs.push(d);
        }
    }
    // A busy process that waits to be moved, then execs (so that its new memory is charged
    // to the new cgroup, as v1 does not move charges) and spins.
    let flag = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let flag_path = flag.to_path_buf();
    std::fs::remove_file(&flag_path).unwrap();
    let child =
        Command::new("sh").arg("-c").arg("while [ ! -e \"$0\" ]; do :; done; exec sh -c 'x=0; while :; do x=$((x+1)); done'").arg(&flag_path).spawn().unwrap();
    let pid = child.id();
    guard.child = Some(child);
    for h in hierarchies.iter().filter(|h| read(h)) {
        let procs = h.dir.join(&cgroupfs[3]).join("cgroup.procs");
        if let Err(e) = std::fs::write(&procs, pid.to_string()) {
            println!("skipped: cannot move the process into {}: {e}", procs.display());
            return;
        }
    }
    std::fs::write(&flag_path, "go").unwrap();
    let clock = TickClock::default();
    let config = ContainersConfig { enabled: Some(true), ..Default::default() };
    let mut c = ContainersCollector::new(&paths, &clock, &config, |_| None);
    let provider = MeterProvider::new();
    c.register(&provider.meter("t"));
    std::thread::sleep(Duration::from_millis(300));
    clock.advance();
    c.refresh().unwrap();
    let container = [("container.id", id_a.as_str()), ("k8s.pod.uid", uid_a.as_str()), ("k8s.pod.qos_class", "burstable")];
    let cpu1 = value(&provider, "container.cpu.time", &container).expect("the container's CPU time");
    let mem = value(&provider, "container.memory.usage", &container).expect("the container's memory");
    assert!(mem > 0.0, "memory charged to the container: {mem}");
    assert!(value(&provider, "k8s.pod.memory.usage", &[("k8s.pod.uid", uid_a.as_str())]).is_some(), "the pod is reported");
    // The systemd driver's pod and container (empty) are found too.
    let other =
        [("container.id", id_b.as_str()), ("k8s.pod.uid", uid_b.as_str()), ("k8s.pod.qos_class", "besteffort"), ("container.runtime.name", "containerd")];
    assert!(value(&provider, "container.memory.usage", &other).is_some(), "the systemd-named container");
    std::thread::sleep(Duration::from_millis(500));
    clock.advance();
    c.refresh().unwrap();
    let cpu2 = value(&provider, "container.cpu.time", &container).unwrap();
    assert!(cpu2 > cpu1, "CPU time grows while the process spins: {cpu1} → {cpu2}");
    let usage = value(&provider, "container.cpu.usage", &container).unwrap();
    assert!(usage > 0.05, "a spinning process uses CPU: {usage}");
    drop(guard);
    // Gone: the next tick has no series of it.
    clock.advance();
    c.refresh().unwrap();
    assert_eq!(value(&provider, "container.cpu.time", &container), None, "its series stop");
}
