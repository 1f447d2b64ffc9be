//! The cgroup collector's instruments: one observable per `container.*` metric, each reading
//! the last [`Snapshot`] (the metrics table is in the [module documentation](super)).

use super::{CgroupCollector, Snapshot};
use crate::collectors::SnapshotCell;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::Arc;

type Snap = Arc<SnapshotCell<Snapshot>>;

fn gauge(meter: &Meter, snap: &Snap, name: &'static str, unit: &'static str, description: &'static str, get: fn(&Snapshot) -> Option<f64>) {
    let snap = snap.clone();
    meter
        .f64_observable_gauge(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(move |obs| {
            if let Some(v) = snap.with(get).flatten() {
                obs.observe(v, &[]);
            }
        })
        .build();
}

fn up_down(meter: &Meter, snap: &Snap, name: &'static str, unit: &'static str, description: &'static str, get: fn(&Snapshot) -> Option<u64>) {
    let snap = snap.clone();
    meter
        .i64_observable_up_down_counter(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(move |obs| {
            if let Some(v) = snap.with(get).flatten() {
                obs.observe(v.min(i64::MAX as u64) as i64, &[]);
            }
        })
        .build();
}

impl CgroupCollector {
    /// The instruments of every `container.*` metric (the body of [`Collector::register`](crate::collectors::Collector::register)).
    pub(super) fn register_instruments(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        let modes = ["user", "system"].map(|m| [KeyValue::new("cpu.mode", m)]);
        meter
            .f64_observable_counter("container.cpu.time")
            .with_unit("s")
            .with_description("CPU time the container's processes spent in user and kernel mode")
            .with_callback(move |obs| {
                snap.with(|s| {
                    for (v, a) in [s.cpu_user, s.cpu_system].iter().zip(&modes) {
                        if let Some(v) = v {
                            obs.observe(*v, a);
                        }
                    }
                });
            })
            .build();
        gauge(meter, &self.snap, "container.cpu.usage", "{cpu}", "CPUs the container used on average since the last collection", |s| s.cpu_usage);
        gauge(meter, &self.snap, "container.cpu.limit", "{cpu}", "The container's CPU quota in CPUs (quota / period); absent when unlimited", |s| s.cpu_limit);
        let snap = self.snap.clone();
        let states = ["total", "throttled"].map(|t| [KeyValue::new("cpu.throttling.state", t)]);
        meter
            .u64_observable_counter("container.cpu.throttling.periods")
            .with_unit("{period}")
            .with_description("CPU quota enforcement periods that elapsed (total) and in which the container was throttled")
            .with_callback(move |obs| {
                snap.with(|s| {
                    if let Some(p) = s.periods {
                        obs.observe(p[0], &states[0]);
                        obs.observe(p[1], &states[1]);
                    }
                });
            })
            .build();
        let snap = self.snap.clone();
        meter
            .f64_observable_counter("container.cpu.throttling.time")
            .with_unit("s")
            .with_description("Time the container's processes were throttled by the CPU quota")
            .with_callback(move |obs| {
                if let Some(v) = snap.with(|s| s.throttled_seconds).flatten() {
                    obs.observe(v, &[]);
                }
            })
            .build();
        up_down(meter, &self.snap, "container.memory.usage", "By", "Memory charged to the container, page cache included", |s| s.memory_usage);
        up_down(meter, &self.snap, "container.memory.limit", "By", "The container's memory limit; absent when unlimited", |s| s.memory_limit);
        up_down(meter, &self.snap, "container.memory.working_set", "By", "Memory usage less inactive file cache (the kubelet's working set)", |s| {
            s.working_set
        });
        up_down(meter, &self.snap, "container.memory.rss", "By", "Anonymous memory of the container (heap, stacks)", |s| s.rss);
        up_down(meter, &self.snap, "container.memory.available", "By", "Memory limit less working set; absent when unlimited", |s| s.available);
        let snap = self.snap.clone();
        meter
            .u64_observable_counter("container.memory.oom_kills")
            .with_unit("{kill}")
            .with_description("Processes of the container killed by the OOM killer")
            .with_callback(move |obs| {
                if let Some(v) = snap.with(|s| s.oom_kills).flatten() {
                    obs.observe(v, &[]);
                }
            })
            .build();
        let snap = self.snap.clone();
        let types = ["major", "minor"].map(|t| [KeyValue::new("system.paging.fault.type", t)]);
        meter
            .u64_observable_counter("container.paging.faults")
            .with_unit("{fault}")
            .with_description("Page faults of the container's processes, major (needing I/O) and minor")
            .with_callback(move |obs| {
                snap.with(|s| {
                    if let Some(f) = s.faults {
                        obs.observe(f[0], &types[0]);
                        obs.observe(f[1], &types[1]);
                    }
                });
            })
            .build();
        for (name, unit, description, bytes) in [
            ("container.disk.io", "By", "Bytes the container read from and wrote to each block device", true),
            ("container.disk.operations", "{operation}", "Read and write operations of the container on each block device", false),
        ] {
            let snap = self.snap.clone();
            meter
                .u64_observable_counter(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |obs| {
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
                })
                .build();
        }
        up_down(meter, &self.snap, "container.pids.count", "{process}", "Processes and threads in the container", |s| s.pids);
        up_down(meter, &self.snap, "container.pids.limit", "{process}", "The container's limit on processes and threads; absent when unlimited", |s| {
            s.pids_limit
        });
    }
}
