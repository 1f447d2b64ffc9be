//! The containers collector's cost per tick on a generated node: 250 pods × 4 containers in the
//! kubelet's systemd-driver layout on cgroup v2 (every file the collector reads, values in the
//! kernel's formats), in a temporary directory. Prints the CPU time of a refresh (the walk and
//! the reads) and of a collect (the callbacks writing OTLP points), per tick, after a warm-up
//! tick that opens the files, and the number of points (series) per collect.
//!
//! `cargo run --release --example containers_cost [PODS] [CONTAINERS_PER_POD] [TICKS]`
use metricsd::collectors::containers::{ContainersCollector, ContainersConfig};
use metricsd::collectors::{Collector, TickClock};
use metricsd::pipeline::meter::MeterProvider;
use metricsd::units::HostPaths;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::path::Path;
use std::time::Duration;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn cgroup(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let w = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    w("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n".into());
    w(
        "cpu.stat",
        format!(
            "usage_usec {}\nuser_usec {}\nsystem_usec {}\nnr_periods 1205\nnr_throttled 37\nthrottled_usec 1825490\nnr_bursts 0\nburst_usec 0\n",
            n * 3,
            n * 2,
            n
        ),
    );
    w("cpu.max", "50000 100000\n".into());
    w("memory.current", format!("{}\n", 100_000_000 + n));
    w("memory.max", "268435456\n".into());
    let stat: String = [
        "anon",
        "file",
        "kernel",
        "kernel_stack",
        "pagetables",
        "sock",
        "shmem",
        "file_mapped",
        "file_dirty",
        "file_writeback",
        "anon_thp",
        "inactive_anon",
        "active_anon",
        "inactive_file",
        "active_file",
        "unevictable",
        "slab_reclaimable",
        "slab_unreclaimable",
        "slab",
        "pgfault",
        "pgmajfault",
        "pgrefill",
        "pgscan",
        "pgsteal",
        "pgactivate",
        "pgdeactivate",
        "pglazyfree",
        "pglazyfreed",
        "thp_fault_alloc",
        "thp_collapse_alloc",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| format!("{k} {}\n", 1_000_000 * (i as u64 + 1) + n))
    .collect();
    w("memory.stat", stat);
    w("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n".into());
    w("io.stat", "259:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n".into());
    w("pids.current", "7\n".into());
    w("pids.max", "max\n".into());
    for r in ["cpu", "memory", "io"] {
        w(&format!("{r}.pressure"), format!("some avg10=0.00 avg60=0.00 avg300=0.00 total={n}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"));
    }
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (pods, per_pod, ticks) = (arg(1, 250), arg(2, 4), arg(3, 20));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sys/fs/cgroup");
    cgroup(&root, 0);
    let qos = ["kubepods.slice", "kubepods.slice/kubepods-burstable.slice", "kubepods.slice/kubepods-besteffort.slice"];
    for q in qos {
        cgroup(&root.join(q), 0);
    }
    for p in 0..pods {
        let uid = format!("{p:08x}-0000-4000-8000-000000000000");
        let (level, prefix) = match p % 3 {
            0 => (qos[0], "kubepods"),
            1 => (qos[1], "kubepods-burstable"),
            _ => (qos[2], "kubepods-besteffort"),
        };
        let pod = root.join(level).join(format!("{prefix}-pod{}.slice", uid.replace('-', "_")));
        cgroup(&pod, p as u64);
        for c in 0..per_pod {
            cgroup(&pod.join(format!("cri-containerd-{p:08x}{c:08x}{}.scope", "0".repeat(48))), (p * per_pod + c) as u64);
        }
    }
    // Systemd's own services beside the pods, as on a real node.
    for s in 0..40 {
        cgroup(&root.join(format!("system.slice/service-{s}.service")), 0);
    }
    let clock = TickClock::default();
    let config = ContainersConfig { enabled: Some(true), root: Some(root.clone()), ..Default::default() };
    let mut c = ContainersCollector::new(&HostPaths::under(tmp.path()), &clock, &config, |_| None);
    let provider = MeterProvider::new();
    c.register(&provider.meter("metricsd"));
    let mut points = 0;
    let (mut refresh, mut collect) = (Duration::ZERO, Duration::ZERO);
    for tick in 0..=ticks {
        clock.advance();
        let t0 = thread_cpu();
        c.refresh().unwrap();
        let t1 = thread_cpu();
        let out = provider.collect(std::time::SystemTime::now());
        let t2 = thread_cpu();
        if tick > 0 {
            refresh += t1 - t0;
            collect += t2 - t1;
        }
        points = out
            .iter()
            .flat_map(|sm| &sm.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                _ => 0,
            })
            .sum::<usize>();
    }
    let n = ticks.max(1) as u32;
    println!("pods={pods} containers={} ticks={ticks}", pods * per_pod);
    println!("refresh (walk + read) CPU per tick: {:?}", refresh / n);
    println!("collect (callbacks → OTLP points) CPU per tick: {:?}", collect / n);
    println!("points (series) per collect: {points}");
}
