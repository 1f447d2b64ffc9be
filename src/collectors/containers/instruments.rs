//! The containers collector's instruments: `container.*` per container and guest (the names,
//! units and sources of the `cgroup` collector, which reports one cgroup the same way),
//! `k8s.pod.*` per pod (the kubeletstats receiver's names), the limit utilizations of both
//! (kubeletstats' `k8s.container.cpu.limit.utilization`, …), and the cgroups' pressure.

use super::discover::Kind;
use super::{Row, Snapshot};
use crate::collectors::cgroup::instruments as cgroup;
use crate::collectors::instruments::{ByDefault, Metric, MetricSpec};
use crate::collectors::pressure::PRESSURE_ATTRIBUTES;
use crate::collectors::SnapshotCell;
use crate::procfs::cgroup::CgroupStats;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::Arc;

type Snap = Arc<SnapshotCell<Snapshot>>;

const ON: ByDefault = ByDefault::When("with collector.containers");
const fn c<T>(m: Metric<T>, attributes: &'static [&'static str], source: &'static str) -> Metric<T> {
    m.attributes(attributes).source(source).by_default(ON)
}

// Per container (and Proxmox guest): the cgroup collector's descriptions, on by default only
// with this collector.
const CPU_TIME: Metric<f64> = cgroup::CPU_TIME.by_default(ON);
const CPU_USAGE: Metric<f64> = cgroup::CPU_USAGE.by_default(ON);
const CPU_LIMIT: Metric<f64> = cgroup::CPU_LIMIT.by_default(ON);
const THROTTLING_PERIODS: Metric<u64> = cgroup::CPU_THROTTLING_PERIODS.by_default(ON);
const THROTTLING_TIME: Metric<f64> = cgroup::CPU_THROTTLING_TIME.by_default(ON);
const MEMORY_USAGE: Metric<i64> = cgroup::MEMORY_USAGE.by_default(ON);
const MEMORY_LIMIT: Metric<i64> = cgroup::MEMORY_LIMIT.by_default(ON);
const MEMORY_WORKING_SET: Metric<i64> = cgroup::MEMORY_WORKING_SET.by_default(ON);
const MEMORY_RSS: Metric<i64> = cgroup::MEMORY_RSS.by_default(ON);
const MEMORY_AVAILABLE: Metric<i64> = cgroup::MEMORY_AVAILABLE.by_default(ON);
const OOM_KILLS: Metric<u64> = cgroup::MEMORY_OOM_KILLS.by_default(ON);
const PAGING_FAULTS: Metric<u64> = cgroup::PAGING_FAULTS.by_default(ON);
const DISK_IO: Metric<u64> = cgroup::DISK_IO.by_default(ON);
const DISK_OPERATIONS: Metric<u64> = cgroup::DISK_OPERATIONS.by_default(ON);
const PIDS_COUNT: Metric<i64> = cgroup::PIDS_COUNT.by_default(ON);
const PIDS_LIMIT: Metric<i64> = cgroup::PIDS_LIMIT.by_default(ON);
const CONTAINER_CPU_UTIL: Metric<f64> = c(
    Metric::f64_gauge("k8s.container.cpu.limit.utilization", "1", "CPU usage of the container as a share of its CPU limit"),
    &[],
    "container.cpu.usage ÷ container.cpu.limit; only with a limit",
);
const CONTAINER_MEMORY_UTIL: Metric<f64> = c(
    Metric::f64_gauge("k8s.container.memory.limit.utilization", "1", "Memory usage of the container as a share of its memory limit"),
    &[],
    "container.memory.usage ÷ container.linux.memory.limit, as kubeletstats; only with a limit",
);
const CONTAINER_PRESSURE: Metric<f64> = c(
    Metric::f64_counter("container.linux.pressure.time", "s", "Time in which some or all of the container's tasks were stalled waiting for CPU, memory or I/O"),
    PRESSURE_ATTRIBUTES,
    "v2 cpu.pressure, memory.pressure, io.pressure some/full total= (µs)",
)
.agent_name();

// Per pod: kubeletstats' names.
const POD_CPU_TIME: Metric<f64> =
    c(Metric::f64_counter("k8s.pod.cpu.time", "s", "Total CPU time of the pod's processes"), &[], "the pod cgroup's cpu.stat usage_usec (v1 cpuacct.usage)");
const POD_CPU_USAGE: Metric<f64> =
    c(Metric::f64_gauge("k8s.pod.cpu.usage", "{cpu}", "CPUs the pod used on average since the last collection"), &[], "Δ k8s.pod.cpu.time ÷ Δ wall time");
const POD_MEMORY_USAGE: Metric<i64> = c(
    Metric::i64_up_down_counter("k8s.pod.memory.usage", "By", "Memory charged to the pod, page cache included"),
    &[],
    "the pod cgroup's memory.current (v1 memory.usage_in_bytes)",
);
const POD_MEMORY_WORKING_SET: Metric<i64> = c(
    Metric::i64_up_down_counter("k8s.pod.memory.working_set", "By", "The pod's memory usage less inactive file cache"),
    &[],
    "usage − memory.stat inactive_file",
);
const POD_MEMORY_RSS: Metric<i64> =
    c(Metric::i64_up_down_counter("k8s.pod.memory.rss", "By", "Anonymous memory of the pod"), &[], "memory.stat anon (v1 total_rss)");
const POD_MEMORY_AVAILABLE: Metric<i64> = c(
    Metric::i64_up_down_counter("k8s.pod.memory.available", "By", "The pod's memory limit less its working set; absent when unlimited"),
    &[],
    "memory.max − working set",
);
const POD_PAGE_FAULTS: Metric<u64> =
    c(Metric::u64_counter("k8s.pod.memory.page_faults", "{fault}", "Page faults of the pod's processes"), &[], "memory.stat pgfault")
        .receiver_name("kubeletstats");
const POD_MAJOR_PAGE_FAULTS: Metric<u64> =
    c(Metric::u64_counter("k8s.pod.memory.major_page_faults", "{fault}", "Major page faults of the pod's processes"), &[], "memory.stat pgmajfault")
        .receiver_name("kubeletstats");
const POD_CPU_UTIL: Metric<f64> = c(
    Metric::f64_gauge("k8s.pod.cpu.limit.utilization", "1", "CPU usage of the pod as a share of its CPU limit (the sum of its containers')"),
    &[],
    "k8s.pod.cpu.usage ÷ the pod cgroup's cpu.max; only with a limit",
);
const POD_MEMORY_UTIL: Metric<f64> = c(
    Metric::f64_gauge("k8s.pod.memory.limit.utilization", "1", "Memory usage of the pod as a share of its memory limit"),
    &[],
    "k8s.pod.memory.usage ÷ the pod cgroup's memory.max; only with a limit",
);
const POD_THROTTLING_TIME: Metric<f64> = c(
    Metric::f64_counter("k8s.pod.linux.cpu.throttling.time", "s", "Time the pod's processes were throttled by its CPU quota"),
    &[],
    "cpu.stat throttled_usec",
)
.agent_name();
const POD_OOM_KILLS: Metric<u64> =
    c(Metric::u64_counter("k8s.pod.linux.memory.oom_kills", "{kill}", "Processes of the pod killed by the OOM killer"), &[], "memory.events oom_kill")
        .agent_name();
const POD_PIDS: Metric<i64> =
    c(Metric::i64_up_down_counter("k8s.pod.linux.pids.count", "{process}", "Processes and threads in the pod"), &[], "pids.current").agent_name();
const POD_PRESSURE: Metric<f64> = c(
    Metric::f64_counter("k8s.pod.linux.pressure.time", "s", "Time in which some or all of the pod's tasks were stalled waiting for CPU, memory or I/O"),
    PRESSURE_ATTRIBUTES,
    "the pod cgroup's cpu.pressure, memory.pressure, io.pressure some/full total= (µs)",
)
.agent_name();

const DROPPED: Metric<u64> = Metric::u64_counter(
    "metricsd.containers.dropped",
    "{cgroup}",
    "Pods, containers and guests left out by collector.containers.max_containers, summed over collections",
)
.source("the cgroup walk")
.by_default(ON)
.agent_name();

/// The containers collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    CPU_TIME.spec(),
    CPU_USAGE.spec(),
    CPU_LIMIT.spec(),
    THROTTLING_PERIODS.spec(),
    THROTTLING_TIME.spec(),
    MEMORY_USAGE.spec(),
    MEMORY_LIMIT.spec(),
    MEMORY_WORKING_SET.spec(),
    MEMORY_RSS.spec(),
    MEMORY_AVAILABLE.spec(),
    OOM_KILLS.spec(),
    PAGING_FAULTS.spec(),
    DISK_IO.spec(),
    DISK_OPERATIONS.spec(),
    PIDS_COUNT.spec(),
    PIDS_LIMIT.spec(),
    CONTAINER_CPU_UTIL.spec(),
    CONTAINER_MEMORY_UTIL.spec(),
    CONTAINER_PRESSURE.spec(),
    POD_CPU_TIME.spec(),
    POD_CPU_USAGE.spec(),
    POD_MEMORY_USAGE.spec(),
    POD_MEMORY_WORKING_SET.spec(),
    POD_MEMORY_RSS.spec(),
    POD_MEMORY_AVAILABLE.spec(),
    POD_PAGE_FAULTS.spec(),
    POD_MAJOR_PAGE_FAULTS.spec(),
    POD_CPU_UTIL.spec(),
    POD_MEMORY_UTIL.spec(),
    POD_THROTTLING_TIME.spec(),
    POD_OOM_KILLS.spec(),
    POD_PIDS.spec(),
    POD_PRESSURE.spec(),
    DROPPED.spec(),
];

/// Which rows a metric reports: the pods', or the containers' and guests'.
fn of(pods: bool) -> impl Fn(&Row) -> bool {
    move |r| (r.kind == Kind::Pod) == pods
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b)
}

fn f64_each(meter: &Meter, snap: &Snap, m: Metric<f64>, pods: bool, get: fn(&Row) -> Option<f64>) {
    let snap = snap.clone();
    m.register(meter, move |obs| {
        snap.with(|s| s.rows.iter().filter(|r| of(pods)(r)).for_each(|r| get(r).into_iter().for_each(|v| obs.observe(v, &r.attrs.base))));
    });
}

fn i64_each(meter: &Meter, snap: &Snap, m: Metric<i64>, pods: bool, get: fn(&CgroupStats) -> Option<u64>) {
    let snap = snap.clone();
    m.register(meter, move |obs| {
        snap.with(|s| {
            s.rows
                .iter()
                .filter(|r| of(pods)(r))
                .for_each(|r| get(&r.stats).into_iter().for_each(|v| obs.observe(v.min(i64::MAX as u64) as i64, &r.attrs.base)))
        });
    });
}

fn u64_each(meter: &Meter, snap: &Snap, m: Metric<u64>, pods: bool, get: fn(&CgroupStats) -> Option<u64>) {
    let snap = snap.clone();
    m.register(meter, move |obs| {
        snap.with(|s| s.rows.iter().filter(|r| of(pods)(r)).for_each(|r| get(&r.stats).into_iter().for_each(|v| obs.observe(v, &r.attrs.base))));
    });
}

/// A metric with two attribute sets per row (`[a, b]` values against `[a, b]` sets).
fn f64_pair(meter: &Meter, snap: &Snap, m: Metric<f64>, get: fn(&Row) -> [Option<f64>; 2], attrs: fn(&Row) -> &[Vec<KeyValue>; 2]) {
    let snap = snap.clone();
    m.register(meter, move |obs| {
        snap.with(|s| {
            for r in s.rows.iter().filter(|r| of(false)(r)) {
                for (v, a) in get(r).iter().zip(attrs(r)) {
                    if let Some(v) = v {
                        obs.observe(*v, a);
                    }
                }
            }
        });
    });
}

fn u64_pair(meter: &Meter, snap: &Snap, m: Metric<u64>, get: fn(&CgroupStats) -> Option<[u64; 2]>, attrs: fn(&Row) -> &[Vec<KeyValue>; 2]) {
    let snap = snap.clone();
    m.register(meter, move |obs| {
        snap.with(|s| {
            for r in s.rows.iter().filter(|r| of(false)(r)) {
                if let Some(v) = get(&r.stats) {
                    obs.observe(v[0], &attrs(r)[0]);
                    obs.observe(v[1], &attrs(r)[1]);
                }
            }
        });
    });
}

fn pressure(meter: &Meter, snap: &Snap, m: Metric<f64>, pods: bool) {
    let snap = snap.clone();
    m.register(meter, move |obs| {
        snap.with(|s| {
            for r in s.rows.iter().filter(|r| of(pods)(r)) {
                if let Some(psi) = &r.psi {
                    for (stall, attrs) in psi.iter().zip(&r.attrs.psi) {
                        for (v, a) in stall.iter().zip(attrs) {
                            if let Some(v) = v {
                                obs.observe(*v, a);
                            }
                        }
                    }
                }
            }
        });
    });
}

/// Registers every instrument of [`METRICS`], in its order, reading `snap`.
pub(super) fn register(meter: &Meter, snap: &Snap) {
    f64_pair(meter, snap, CPU_TIME, |r| [r.stats.cpu_user, r.stats.cpu_system], |r| &r.attrs.modes);
    f64_each(meter, snap, CPU_USAGE, false, |r| r.cpu_usage);
    f64_each(meter, snap, CPU_LIMIT, false, |r| r.stats.cpu_limit);
    u64_pair(meter, snap, THROTTLING_PERIODS, |s| s.periods, |r| &r.attrs.throttling);
    f64_each(meter, snap, THROTTLING_TIME, false, |r| r.stats.throttled_seconds);
    i64_each(meter, snap, MEMORY_USAGE, false, |s| s.memory_usage);
    i64_each(meter, snap, MEMORY_LIMIT, false, |s| s.memory_limit);
    i64_each(meter, snap, MEMORY_WORKING_SET, false, |s| s.working_set);
    i64_each(meter, snap, MEMORY_RSS, false, |s| s.rss);
    i64_each(meter, snap, MEMORY_AVAILABLE, false, |s| s.available);
    u64_each(meter, snap, OOM_KILLS, false, |s| s.oom_kills);
    u64_pair(meter, snap, PAGING_FAULTS, |s| s.faults, |r| &r.attrs.faults);
    for (metric, bytes) in [(DISK_IO, true), (DISK_OPERATIONS, false)] {
        let snap = snap.clone();
        metric.register(meter, move |obs| {
            snap.with(|s| {
                for r in s.rows.iter().filter(|r| of(false)(r)) {
                    for (d, attrs) in r.stats.io.iter().zip(&r.io_attrs) {
                        let values = if bytes { &d.bytes } else { &d.ops };
                        for (v, a) in values.iter().zip(attrs.iter()) {
                            if let Some(v) = v {
                                obs.observe(*v, a);
                            }
                        }
                    }
                }
            });
        });
    }
    i64_each(meter, snap, PIDS_COUNT, false, |s| s.pids);
    i64_each(meter, snap, PIDS_LIMIT, false, |s| s.pids_limit);
    f64_each(meter, snap, CONTAINER_CPU_UTIL, false, |r| ratio(r.cpu_usage, r.stats.cpu_limit));
    f64_each(meter, snap, CONTAINER_MEMORY_UTIL, false, |r| ratio(r.stats.memory_usage.map(|v| v as f64), r.stats.memory_limit.map(|v| v as f64)));
    pressure(meter, snap, CONTAINER_PRESSURE, false);
    f64_each(meter, snap, POD_CPU_TIME, true, |r| r.stats.cpu_total.or(r.stats.cpu_user.zip(r.stats.cpu_system).map(|(u, s)| u + s)));
    f64_each(meter, snap, POD_CPU_USAGE, true, |r| r.cpu_usage);
    i64_each(meter, snap, POD_MEMORY_USAGE, true, |s| s.memory_usage);
    i64_each(meter, snap, POD_MEMORY_WORKING_SET, true, |s| s.working_set);
    i64_each(meter, snap, POD_MEMORY_RSS, true, |s| s.rss);
    i64_each(meter, snap, POD_MEMORY_AVAILABLE, true, |s| s.available);
    u64_each(meter, snap, POD_PAGE_FAULTS, true, |s| s.faults.map(|[major, minor]| major.saturating_add(minor)));
    u64_each(meter, snap, POD_MAJOR_PAGE_FAULTS, true, |s| s.faults.map(|[major, _]| major));
    f64_each(meter, snap, POD_CPU_UTIL, true, |r| ratio(r.cpu_usage, r.stats.cpu_limit));
    f64_each(meter, snap, POD_MEMORY_UTIL, true, |r| ratio(r.stats.memory_usage.map(|v| v as f64), r.stats.memory_limit.map(|v| v as f64)));
    f64_each(meter, snap, POD_THROTTLING_TIME, true, |r| r.stats.throttled_seconds);
    u64_each(meter, snap, POD_OOM_KILLS, true, |s| s.oom_kills);
    i64_each(meter, snap, POD_PIDS, true, |s| s.pids);
    pressure(meter, snap, POD_PRESSURE, true);
    let snap = snap.clone();
    DROPPED.register(meter, move |obs| {
        if let Some(d) = snap.with(|s| s.dropped) {
            obs.observe(d, &[]);
        }
    });
}
