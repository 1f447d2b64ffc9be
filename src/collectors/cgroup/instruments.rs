//! The cgroup collector's instruments: one observable per `container.*` metric, each described
//! once as a [`Metric`] (listed by `metricsd --list-metrics`) and reading the last [`Snapshot`].

use super::{CgroupCollector, Snapshot};
use crate::collectors::instruments::{ByDefault, Metric, MetricSpec};
use crate::collectors::SnapshotCell;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::Arc;

type Snap = Arc<SnapshotCell<Snapshot>>;

// The cgroup collector's metrics as data: registered below and listed by the catalog
// (`metricsd --list-metrics`).
const IN_CONTAINER: ByDefault = ByDefault::When("in a container");
const fn container<T>(m: Metric<T>, attributes: &'static [&'static str], source: &'static str) -> Metric<T> {
    m.attributes(attributes).source(source).by_default(IN_CONTAINER)
}
pub(crate) const CPU_TIME: Metric<f64> = container(
    Metric::f64_counter("container.cpu.time", "s", "CPU time the container's processes spent in user and kernel mode"),
    &["cpu.mode"],
    "v2 cpu.stat user_usec, system_usec; v1 cpuacct.usage_user/_sys (ns), else cpuacct.stat ÷ USER_HZ",
);
pub(crate) const CPU_USAGE: Metric<f64> = container(
    Metric::f64_gauge("container.cpu.usage", "{cpu}", "CPUs the container used on average since the last collection"),
    &[],
    "Δ v2 cpu.stat usage_usec (v1 cpuacct.usage) ÷ Δ wall time (none on the first tick)",
);
pub(crate) const CPU_LIMIT: Metric<f64> = container(
    Metric::f64_gauge("container.cpu.limit", "{cpu}", "The container's CPU quota in CPUs (quota / period); absent when unlimited"),
    &[],
    "v2 cpu.max quota ÷ period; v1 cpu.cfs_quota_us ÷ cpu.cfs_period_us",
)
.receiver_name("docker_stats");
pub(crate) const CPU_THROTTLING_PERIODS: Metric<u64> = container(
    Metric::u64_counter(
        "container.linux.cpu.throttling.periods",
        "{period}",
        "CPU quota enforcement periods that elapsed (total) and in which the container was throttled",
    ),
    &["cpu.throttling.state"],
    "cpu.stat nr_periods, nr_throttled (v2 and v1)",
)
.agent_name();
pub(crate) const CPU_THROTTLING_TIME: Metric<f64> = container(
    Metric::f64_counter("container.linux.cpu.throttling.time", "s", "Time the container's processes were throttled by the CPU quota"),
    &[],
    "v2 cpu.stat throttled_usec; v1 cpu.stat throttled_time (ns)",
)
.agent_name();
pub(crate) const MEMORY_USAGE: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.usage", "By", "Memory charged to the container, page cache included"),
    &[],
    "v2 memory.current; v1 memory.usage_in_bytes",
);
pub(crate) const MEMORY_LIMIT: Metric<i64> = container(
    Metric::i64_up_down_counter("container.linux.memory.limit", "By", "The container's memory limit; absent when unlimited"),
    &[],
    "v2 memory.max; v1 memory.limit_in_bytes",
)
.agent_name();
pub(crate) const MEMORY_WORKING_SET: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.working_set", "By", "Memory usage less inactive file cache (the kubelet's working set)"),
    &[],
    "usage − memory.stat inactive_file (v1 total_inactive_file)",
);
pub(crate) const MEMORY_RSS: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.rss", "By", "Anonymous memory of the container (heap, stacks)"),
    &[],
    "v2 memory.stat anon; v1 memory.stat total_rss",
);
pub(crate) const MEMORY_AVAILABLE: Metric<i64> = container(
    Metric::i64_up_down_counter("container.memory.available", "By", "Memory limit less working set; absent when unlimited"),
    &[],
    "limit − working set",
);
pub(crate) const MEMORY_OOM_KILLS: Metric<u64> = container(
    Metric::u64_counter("container.linux.memory.oom_kills", "{kill}", "Processes of the container killed by the OOM killer"),
    &[],
    "v2 memory.events oom_kill; v1 memory.oom_control oom_kill",
)
.agent_name();
pub(crate) const PAGING_FAULTS: Metric<u64> = container(
    Metric::u64_counter("container.paging.faults", "{fault}", "Page faults of the container's processes, major (needing I/O) and minor"),
    &["system.paging.fault.type"],
    "memory.stat pgmajfault, pgfault − pgmajfault (v1 total_pgmajfault, total_pgfault)",
);
pub(crate) const DISK_IO: Metric<u64> = container(
    Metric::u64_counter("container.disk.io", "By", "Bytes the container read from and wrote to each block device"),
    &["system.device", "disk.io.direction"],
    "v2 io.stat rbytes, wbytes; v1 blkio.throttle.io_service_bytes_recursive",
);
pub(crate) const DISK_OPERATIONS: Metric<u64> = container(
    Metric::u64_counter("container.linux.disk.operations", "{operation}", "Read and write operations of the container on each block device"),
    &["system.device", "disk.io.direction"],
    "v2 io.stat rios, wios; v1 blkio.throttle.io_serviced_recursive",
)
.agent_name();
pub(crate) const PIDS_COUNT: Metric<i64> =
    container(Metric::i64_up_down_counter("container.pids.count", "{process}", "Processes and threads in the container"), &[], "pids.current")
        .receiver_name("docker_stats");
pub(crate) const PIDS_LIMIT: Metric<i64> = container(
    Metric::i64_up_down_counter("container.pids.limit", "{process}", "The container's limit on processes and threads; absent when unlimited"),
    &[],
    "pids.max",
)
.receiver_name("docker_stats");

/// The cgroup collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    CPU_TIME.spec(),
    CPU_USAGE.spec(),
    CPU_LIMIT.spec(),
    CPU_THROTTLING_PERIODS.spec(),
    CPU_THROTTLING_TIME.spec(),
    MEMORY_USAGE.spec(),
    MEMORY_LIMIT.spec(),
    MEMORY_WORKING_SET.spec(),
    MEMORY_RSS.spec(),
    MEMORY_AVAILABLE.spec(),
    MEMORY_OOM_KILLS.spec(),
    PAGING_FAULTS.spec(),
    DISK_IO.spec(),
    DISK_OPERATIONS.spec(),
    PIDS_COUNT.spec(),
    PIDS_LIMIT.spec(),
];

fn gauge(meter: &Meter, snap: &Snap, metric: Metric<f64>, get: fn(&Snapshot) -> Option<f64>) {
    let snap = snap.clone();
    metric.register(meter, move |obs| {
        if let Some(v) = snap.with(get).flatten() {
            obs.observe(v, &[]);
        }
    });
}

fn up_down(meter: &Meter, snap: &Snap, metric: Metric<i64>, get: fn(&Snapshot) -> Option<u64>) {
    let snap = snap.clone();
    metric.register(meter, move |obs| {
        if let Some(v) = snap.with(get).flatten() {
            obs.observe(v.min(i64::MAX as u64) as i64, &[]);
        }
    });
}

fn counter(meter: &Meter, snap: &Snap, metric: Metric<u64>, get: fn(&Snapshot) -> Option<u64>) {
    let snap = snap.clone();
    metric.register(meter, move |obs| {
        if let Some(v) = snap.with(get).flatten() {
            obs.observe(v, &[]);
        }
    });
}

impl CgroupCollector {
    /// The instruments of every `container.*` metric (the body of [`Collector::register`](crate::collectors::Collector::register)).
    pub(super) fn register_instruments(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        let modes = ["user", "system"].map(|m| [KeyValue::new("cpu.mode", m)]);
        CPU_TIME.register(meter, move |obs| {
            snap.with(|s| {
                for (v, a) in [s.cpu_user, s.cpu_system].iter().zip(&modes) {
                    if let Some(v) = v {
                        obs.observe(*v, a);
                    }
                }
            });
        });
        gauge(meter, &self.snap, CPU_USAGE, |s| s.cpu_usage);
        gauge(meter, &self.snap, CPU_LIMIT, |s| s.cpu_limit);
        let snap = self.snap.clone();
        let states = ["total", "throttled"].map(|t| [KeyValue::new("cpu.throttling.state", t)]);
        CPU_THROTTLING_PERIODS.register(meter, move |obs| {
            snap.with(|s| {
                if let Some(p) = s.periods {
                    obs.observe(p[0], &states[0]);
                    obs.observe(p[1], &states[1]);
                }
            });
        });
        let snap = self.snap.clone();
        CPU_THROTTLING_TIME.register(meter, move |obs| {
            if let Some(v) = snap.with(|s| s.throttled_seconds).flatten() {
                obs.observe(v, &[]);
            }
        });
        up_down(meter, &self.snap, MEMORY_USAGE, |s| s.memory_usage);
        up_down(meter, &self.snap, MEMORY_LIMIT, |s| s.memory_limit);
        up_down(meter, &self.snap, MEMORY_WORKING_SET, |s| s.working_set);
        up_down(meter, &self.snap, MEMORY_RSS, |s| s.rss);
        up_down(meter, &self.snap, MEMORY_AVAILABLE, |s| s.available);
        counter(meter, &self.snap, MEMORY_OOM_KILLS, |s| s.oom_kills);
        let snap = self.snap.clone();
        let types = ["major", "minor"].map(|t| [KeyValue::new("system.paging.fault.type", t)]);
        PAGING_FAULTS.register(meter, move |obs| {
            snap.with(|s| {
                if let Some(f) = s.faults {
                    obs.observe(f[0], &types[0]);
                    obs.observe(f[1], &types[1]);
                }
            });
        });
        for (metric, bytes) in [(DISK_IO, true), (DISK_OPERATIONS, false)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|s| {
                    for d in &s.io {
                        let values = if bytes { &d.bytes } else { &d.ops };
                        for (v, a) in values.iter().zip(&d.attrs.dirs) {
                            if let Some(v) = v {
                                obs.observe(*v, a);
                            }
                        }
                    }
                });
            });
        }
        up_down(meter, &self.snap, PIDS_COUNT, |s| s.pids);
        up_down(meter, &self.snap, PIDS_LIMIT, |s| s.pids_limit);
    }
}
