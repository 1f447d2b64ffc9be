//! The GPU collector's instruments as one table: each entry is a metric's description and the
//! function that observes it, on each GPU of the tick's snapshot or on the snapshot as a whole.
//! Adding a GPU metric is one entry in `TABLE` (and the value in `Values`).
//!
//! ```ignore
//! per_gpu_f64(Metric::f64_gauge("hw.power", "W", "GPU power draw").attributes(&GPU).source("nvmlDeviceGetPowerUsage mW ÷ 1000"), |g, o| {
//!     if let Some(mw) = g.v.power_mw {
//!         o.observe(mw as f64 / 1000.0, &g.attrs.base);
//!     }
//! }),
//! ```
//!
//! Entries are registered in table order, which is the order metrics are exported in.

use super::device::throttle;
use super::{pct, GpuSample, GpuSnapshot, SnapshotCell};
use crate::collectors::instruments::{ByDefault, Metric, MetricSpec};
use opentelemetry::metrics::{AsyncInstrument, Meter};
use std::sync::Arc;

/// Observes one GPU's values.
type PerGpu<T> = fn(&GpuSample, &dyn AsyncInstrument<T>);
/// Observes the whole snapshot (counts, processes, MIG devices).
type Whole<T> = fn(&GpuSnapshot, &dyn AsyncInstrument<T>);

/// One metric of the table and how it is observed.
enum Entry {
    GpuF64(Metric<f64>, PerGpu<f64>),
    GpuI64(Metric<i64>, PerGpu<i64>),
    GpuU64(Metric<u64>, PerGpu<u64>),
    WholeI64(Metric<i64>, Whole<i64>),
    WholeF64(Metric<f64>, Whole<f64>),
}

impl Entry {
    const fn spec(&self) -> MetricSpec {
        match self {
            Entry::GpuF64(m, _) => m.spec(),
            Entry::GpuI64(m, _) => m.spec(),
            Entry::GpuU64(m, _) => m.spec(),
            Entry::WholeI64(m, _) => m.spec(),
            Entry::WholeF64(m, _) => m.spec(),
        }
    }
}

/// The attributes of every GPU point, with `$extra` after them.
macro_rules! gpu {
    ($($extra:literal),*) => {
        &["hw.id", "hw.name", "hw.vendor", "hw.type", "gpu.index", "hw.gpu.pci_bus_id", "hw.serial_number", "hw.model", "hw.driver_version", "k8s.pod.name", "k8s.namespace.name", "k8s.container.name" $(, $extra)*]
    };
}

/// Off by default (`collector.gpu.enabled`, or metricsd's `enable_gpu`).
const OFF: ByDefault = ByDefault::Off;

const fn hw<T>(m: Metric<T>, attributes: &'static [&'static str], source: &'static str) -> Metric<T> {
    m.attributes(attributes).source(source).by_default(OFF)
}

const fn nvidia<T>(m: Metric<T>, attributes: &'static [&'static str], source: &'static str) -> Metric<T> {
    hw(m, attributes, source).agent_name()
}

/// Every GPU instrument, in registration order.
const TABLE: &[Entry] = &[
    Entry::GpuF64(
        hw(
            Metric::f64_gauge("hw.gpu.utilization", "1", "Fraction of time the GPU (general), its video encoder or decoder was busy"),
            gpu!("hw.gpu.task"),
            "nvmlDeviceGetUtilizationRates().gpu (general), nvmlDeviceGetEncoderUtilization, nvmlDeviceGetDecoderUtilization % ÷ 100",
        ),
        |g, o| {
            for (i, u) in [g.v.util, g.v.encoder, g.v.decoder].into_iter().enumerate() {
                if let Some(u) = u {
                    o.observe(pct(u), &g.attrs.task[i]);
                }
            }
        },
    ),
    Entry::GpuF64(
        nvidia(
            Metric::f64_gauge(
                "nvidia.gpu.memory_controller.utilization",
                "1",
                "Fraction of time the GPU's memory controller was busy (NVML utilization.memory)",
            ),
            gpu!(),
            "nvmlDeviceGetUtilizationRates().memory % ÷ 100",
        ),
        |g, o| {
            if let Some(u) = g.v.memory_controller {
                o.observe(pct(u), &g.attrs.base);
            }
        },
    ),
    Entry::GpuI64(hw(Metric::i64_up_down_counter("hw.gpu.memory.usage", "By", "GPU memory in use"), gpu!(), "nvmlDeviceGetMemoryInfo_v2().used"), |g, o| {
        if let Some(m) = g.v.memory {
            o.observe(m.used as i64, &g.attrs.base);
        }
    }),
    Entry::GpuI64(
        hw(Metric::i64_up_down_counter("hw.gpu.memory.limit", "By", "GPU memory installed"), gpu!(), "nvmlDeviceGetMemoryInfo_v2().total"),
        |g, o| {
            if let Some(m) = g.v.memory {
                o.observe(m.total as i64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.memory.free", "By", "GPU memory free (total = used + free + reserved by the driver)"),
            gpu!(),
            "nvmlDeviceGetMemoryInfo_v2().free",
        ),
        |g, o| {
            if let Some(m) = g.v.memory {
                o.observe(m.free as i64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuF64(
        hw(Metric::f64_gauge("hw.gpu.memory.utilization", "1", "Fraction of GPU memory in use"), gpu!(), "nvmlDeviceGetMemoryInfo_v2(): used ÷ total"),
        |g, o| {
            if let Some(m) = g.v.memory.filter(|m| m.total > 0) {
                o.observe(m.used as f64 / m.total as f64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuU64(
        hw(
            Metric::u64_counter("hw.gpu.io", "By", "Bytes the GPU sent and received over PCIe"),
            gpu!("network.io.direction"),
            "nvmlDeviceGetFieldValues 197/198 (PCIe TX/RX bytes), u32 counters read every pcie_interval (default 1 s, down to 50 ms under load) by a dedicated thread and accumulated across wraps; with pcie_io (default true)",
        ),
        |g, o| {
            for (i, b) in g.v.pcie.iter().enumerate() {
                if let Some(b) = b {
                    o.observe(*b, &g.attrs.io[i]);
                }
            }
        },
    ),
    Entry::GpuF64(hw(Metric::f64_gauge("hw.power", "W", "GPU power draw"), gpu!(), "nvmlDeviceGetPowerUsage mW ÷ 1000"), |g, o| {
        if let Some(mw) = g.v.power_mw {
            o.observe(mw as f64 / 1000.0, &g.attrs.base);
        }
    }),
    Entry::GpuF64(
        nvidia(Metric::f64_gauge("nvidia.gpu.power.limit", "W", "GPU power limit the driver enforces"), gpu!(), "nvmlDeviceGetEnforcedPowerLimit mW ÷ 1000"),
        |g, o| {
            if let Some(mw) = g.v.power_limit_mw {
                o.observe(mw as f64 / 1000.0, &g.attrs.base);
            }
        },
    ),
    Entry::GpuF64(
        hw(
            Metric::f64_counter("hw.energy", "J", "Energy the GPU used since the driver was loaded (read every energy_interval)"),
            gpu!(),
            "nvmlDeviceGetTotalEnergyConsumption mJ ÷ 1000, every energy_interval (default 60 s)",
        ),
        |g, o| {
            if let Some(mj) = g.v.energy_mj {
                o.observe(mj as f64 / 1000.0, &g.attrs.base);
            }
        },
    ),
    Entry::GpuF64(
        hw(
            Metric::f64_gauge("hw.temperature", "Cel", "GPU die and memory temperature"),
            gpu!("hw.sensor_location"),
            "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU); memory: field value 82 (HBM GPUs)",
        ),
        |g, o| {
            if let Some(t) = g.v.temperature {
                o.observe(t as f64, &g.attrs.sensor[0]);
            }
            if let Some(t) = g.v.memory_temperature {
                o.observe(t, &g.attrs.sensor[1]);
            }
        },
    ),
    Entry::GpuI64(
        nvidia(Metric::i64_gauge("nvidia.gpu.clock.sm", "Hz", "GPU streaming multiprocessor clock"), gpu!(), "nvmlDeviceGetClockInfo(NVML_CLOCK_SM) MHz × 10⁶"),
        |g, o| {
            if let Some(mhz) = g.v.clock_sm_mhz {
                o.observe(mhz as i64 * 1_000_000, &g.attrs.base);
            }
        },
    ),
    Entry::GpuI64(
        nvidia(Metric::i64_gauge("nvidia.gpu.clock.memory", "Hz", "GPU memory clock"), gpu!(), "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM) MHz × 10⁶"),
        |g, o| {
            if let Some(mhz) = g.v.clock_memory_mhz {
                o.observe(mhz as i64 * 1_000_000, &g.attrs.base);
            }
        },
    ),
    Entry::GpuF64(
        nvidia(
            Metric::f64_gauge("nvidia.gpu.fan.speed", "1", "GPU fan speed as a fraction of its maximum"),
            gpu!("nvidia.gpu.fan.index"),
            "nvmlDeviceGetFanSpeed_v2 % ÷ 100 (GPUs with fans)",
        ),
        |g, o| {
            for (i, p) in &g.v.fans {
                if let Some(attrs) = g.attrs.fans.get(*i) {
                    o.observe(pct(*p), attrs);
                }
            }
        },
    ),
    Entry::GpuI64(
        nvidia(Metric::i64_gauge("nvidia.gpu.pstate", "{pstate}", "GPU performance state: 0 (P0, fastest) to 15"), gpu!(), "nvmlDeviceGetPerformanceState"),
        |g, o| {
            if let Some(p) = g.v.pstate {
                o.observe(p as i64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.throttle", "1", "1 while the reason holds the GPU's clocks down, else 0"),
            gpu!("nvidia.gpu.throttle.reason"),
            "nvmlDeviceGetCurrentClocksThrottleReasons",
        ),
        |g, o| {
            if let Some(t) = g.v.throttle {
                for (i, (bit, _)) in throttle::REASONS.iter().enumerate() {
                    o.observe((t & bit != 0) as i64, &g.attrs.throttle[i]);
                }
            }
        },
    ),
    Entry::GpuU64(
        hw(
            Metric::u64_counter("hw.errors", "{error}", "GPU memory ECC errors since the driver was loaded"),
            gpu!("error.type"),
            "nvmlDeviceGetTotalEccErrors(…, NVML_VOLATILE_ECC) (ECC-enabled GPUs)",
        ),
        |g, o| {
            for (i, e) in g.v.ecc.iter().enumerate() {
                if let Some(e) = e {
                    o.observe(*e, &g.attrs.errors[i]);
                }
            }
        },
    ),
    Entry::GpuU64(
        nvidia(
            Metric::u64_counter("nvidia.gpu.pcie.replay", "{replay}", "PCIe replays (link-level retransmissions) since the driver was loaded"),
            gpu!(),
            "nvmlDeviceGetPcieReplayCounter",
        ),
        |g, o| {
            if let Some(r) = g.v.replay {
                o.observe(r as u64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.nvlink.state", "1", "1 while the NVLink link is active, else 0"),
            gpu!("nvidia.gpu.nvlink.link"),
            "nvmlDeviceGetNvLinkState per link (links found at start); GPUs with NVLink; with nvlink (default true)",
        ),
        |g, o| {
            for (i, (active, _)) in g.v.nvlink.iter().enumerate() {
                if let (Some(a), Some((attrs, _))) = (active, g.attrs.links.get(i)) {
                    o.observe(*a as i64, attrs);
                }
            }
        },
    ),
    Entry::GpuU64(
        nvidia(
            Metric::u64_counter("nvidia.gpu.nvlink.io", "By", "Data the GPU sent and received over all its NVLink links"),
            gpu!("network.io.direction"),
            "nvmlDeviceGetFieldValues 138/139 (NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX/RX) KiB × 1024; GPUs with NVLink; with nvlink",
        ),
        |g, o| {
            for (i, b) in g.v.nvlink_io.iter().enumerate() {
                if let Some(b) = b {
                    o.observe(*b, &g.attrs.io[i]);
                }
            }
        },
    ),
    Entry::GpuU64(
        nvidia(
            Metric::u64_counter("nvidia.gpu.nvlink.errors", "{error}", "NVLink errors per link since the driver was loaded: CRC (flit, data), replays, recoveries"),
            gpu!("nvidia.gpu.nvlink.link", "error.type"),
            "nvmlDeviceGetNvLinkErrorCounter per link: NVML_NVLINK_ERROR_DL_CRC_FLIT, _CRC_DATA, _REPLAY, _RECOVERY; with nvlink",
        ),
        |g, o| {
            for (i, (_, errors)) in g.v.nvlink.iter().enumerate() {
                let Some((_, attrs)) = g.attrs.links.get(i) else { continue };
                for (k, e) in errors.iter().enumerate() {
                    if let Some(e) = e {
                        o.observe(*e, &attrs[k]);
                    }
                }
            }
        },
    ),
    Entry::GpuU64(
        nvidia(
            Metric::u64_counter(
                "nvidia.gpu.memory.remapped_rows",
                "{row}",
                "Memory rows the GPU remapped to spare rows, for correctable or uncorrectable errors",
            ),
            gpu!("error.type"),
            "nvmlDeviceGetFieldValues 142/143 (NVML_FI_DEV_REMAPPED_COR/UNC); GPUs with row remapping (A100, H100 and later); with memory_health",
        ),
        |g, o| {
            for (i, n) in g.v.remapped.iter().enumerate() {
                if let Some(n) = n {
                    o.observe(*n, &g.attrs.errors[i]);
                }
            }
        },
    ),
    Entry::GpuI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.memory.remap.pending", "1", "1 while a row remapping waits for the next GPU reset, else 0"),
            gpu!(),
            "nvmlDeviceGetFieldValues 144 (NVML_FI_DEV_REMAPPED_PENDING); with memory_health",
        ),
        |g, o| {
            if let Some(p) = g.v.remap_pending {
                o.observe(p as i64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuI64(
        nvidia(
            Metric::i64_up_down_counter(
                "nvidia.gpu.memory.remap.failed",
                "1",
                "1 when a row remapping failed (no spare row left: the GPU needs service), else 0",
            ),
            gpu!(),
            "nvmlDeviceGetFieldValues 145 (NVML_FI_DEV_REMAPPED_FAILURE); with memory_health",
        ),
        |g, o| {
            if let Some(f) = g.v.remap_failed {
                o.observe(f as i64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuU64(
        nvidia(
            Metric::u64_counter("nvidia.gpu.memory.retired_pages", "{page}", "Memory pages the GPU retired, for multiple single-bit or a double-bit ECC error"),
            gpu!("nvidia.gpu.retirement.cause"),
            "nvmlDeviceGetFieldValues 29/30 (NVML_FI_DEV_RETIRED_SBE/DBE); GPUs with page retirement (before A100); with memory_health",
        ),
        |g, o| {
            for (i, n) in g.v.retired.iter().enumerate() {
                if let Some(n) = n {
                    o.observe(*n, &g.attrs.retirement[i]);
                }
            }
        },
    ),
    Entry::GpuI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.memory.retired_pages.pending", "1", "1 while a page waits to be retired at the next GPU reset, else 0"),
            gpu!(),
            "nvmlDeviceGetFieldValues 31 (NVML_FI_DEV_RETIRED_PENDING); with memory_health",
        ),
        |g, o| {
            if let Some(p) = g.v.retired_pending {
                o.observe(p as i64, &g.attrs.base);
            }
        },
    ),
    Entry::GpuU64(
        nvidia(
            Metric::u64_counter("nvidia.gpu.xid.errors", "{error}", "Critical XID errors the GPU reported since the agent started, per XID code"),
            gpu!("nvidia.gpu.xid"),
            "NVML events nvmlEventTypeXidCriticalError (nvmlDeviceRegisterEvents, nvmlEventSetWait_v2) on a dedicated thread; with xid (default true)",
        ),
        |g, o| g.v.xid.iter().for_each(|(a, n)| o.observe(*n, a)),
    ),
    Entry::GpuI64(
        hw(
            Metric::i64_up_down_counter("hw.status", "1", "1 for the GPU's current state (ok, degraded, failed), 0 for the others"),
            gpu!("hw.state"),
            "failed: NVML GpuLost/Unknown; degraded: a hardware or thermal throttle reason, or a row remapping or page retirement pending, or a remapping failed; else ok",
        ),
        |g, o| {
            for (i, attrs) in g.attrs.state.iter().enumerate() {
                o.observe((g.v.state as usize == i) as i64, attrs);
            }
        },
    ),
    Entry::WholeI64(nvidia(Metric::i64_up_down_counter("nvidia.gpu.count", "{gpu}", "NVIDIA GPUs the driver sees"), &[], "nvmlDeviceGetCount_v2"), |s, o| {
        if let Some(n) = s.count {
            o.observe(n as i64, &[]);
        }
    }),
    Entry::WholeI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.process.memory.usage", "By", "GPU memory used by a process"),
            gpu!("process.pid", "process.executable.name", "container.id", "k8s.pod.uid", "gpu.mig.instance_id", "gpu.mig.compute_instance_id"),
            "nvmlDeviceGetComputeRunningProcesses_v3, …GraphicsRunningProcesses_v3; /proc/PID/comm, /proc/PID/cgroup; with processes (default true)",
        ),
        |s, o| s.processes.iter().for_each(|(a, b)| o.observe(*b as i64, a)),
    ),
    Entry::WholeI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.mig.memory.usage", "By", "Memory in use on a MIG device"),
            gpu!("gpu.mig.uuid", "gpu.mig.instance_id", "gpu.mig.compute_instance_id"),
            "nvmlDeviceGetMemoryInfo_v2 of each MIG device while MIG mode is on; with mig (default true)",
        ),
        |s, o| s.mig.iter().for_each(|(a, m)| o.observe(m.used as i64, a)),
    ),
    Entry::WholeI64(
        nvidia(
            Metric::i64_up_down_counter("nvidia.gpu.mig.memory.limit", "By", "Memory of a MIG device"),
            gpu!("gpu.mig.uuid", "gpu.mig.instance_id", "gpu.mig.compute_instance_id"),
            "nvmlDeviceGetMemoryInfo_v2().total of each MIG device; with mig (default true)",
        ),
        |s, o| s.mig.iter().for_each(|(a, m)| o.observe(m.total as i64, a)),
    ),
    Entry::WholeF64(
        nvidia(
            Metric::f64_gauge(
                "nvidia.gpu.container.utilization",
                "1",
                "Fraction of the last interval the processes of a container (or of the host, without container.id) kept the GPU's SMs, encoder or decoder busy",
            ),
            gpu!("container.id", "k8s.pod.uid", "hw.gpu.task"),
            "nvmlDeviceGetProcessUtilization samples since the last tick: per process the mean of its samples, summed per container (/proc/PID/cgroup), capped at 1; with processes",
        ),
        |s, o| {
            for (a, u) in &s.containers {
                for (i, k) in [0, 2, 3].into_iter().enumerate() {
                    o.observe(u[k], &a.task[i]);
                }
            }
        },
    ),
    Entry::WholeF64(
        nvidia(
            Metric::f64_gauge(
                "nvidia.gpu.container.memory_controller.utilization",
                "1",
                "Fraction of the last interval the processes of a container (or of the host) kept the GPU's memory controller busy",
            ),
            gpu!("container.id", "k8s.pod.uid"),
            "nvmlDeviceGetProcessUtilization memUtil, as nvidia.gpu.container.utilization",
        ),
        |s, o| s.containers.iter().for_each(|(a, u)| o.observe(u[1], &a.base)),
    ),
];

/// The GPU collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &{
    let mut out = [TABLE[0].spec(); TABLE.len()];
    let mut i = 1;
    while i < TABLE.len() {
        out[i] = TABLE[i].spec();
        i += 1;
    }
    out
};

/// Registers every entry of `TABLE`, each reading `snap` at collect.
pub(super) fn register(snap: &Arc<SnapshotCell<GpuSnapshot>>, meter: &Meter) {
    for entry in TABLE {
        let snap = snap.clone();
        match *entry {
            Entry::GpuF64(m, f) => m.register(meter, move |o| {
                snap.with(|s| s.gpus.iter().for_each(|g| f(g, o)));
            }),
            Entry::GpuI64(m, f) => m.register(meter, move |o| {
                snap.with(|s| s.gpus.iter().for_each(|g| f(g, o)));
            }),
            Entry::GpuU64(m, f) => m.register(meter, move |o| {
                snap.with(|s| s.gpus.iter().for_each(|g| f(g, o)));
            }),
            Entry::WholeF64(m, f) => m.register(meter, move |o| {
                snap.with(|s| f(s, o));
            }),
            Entry::WholeI64(m, f) => m.register(meter, move |o| {
                snap.with(|s| f(s, o));
            }),
        }
    }
}
