//! The NVIDIA GPU collector: `hw.*` (semantic conventions for hardware, `hw.type = "gpu"`) and
//! `nvidia.gpu.*` metrics from NVML, per GPU, per process and per MIG device.
//!
//! NVML (`libnvidia-ml.so.1`) is loaded at run time, so the agent builds and runs without an
//! NVIDIA driver. Without one the collector logs once at info ("No NVIDIA driver found; GPU
//! collector reports nothing"), reports nothing, and tries again after `retry_interval`
//! (default 60 s), doubling up to 10 minutes: a driver installed or reloaded later is picked up
//! without a restart. A GPU that falls off the bus (NVML `GpuLost`, `Unknown`) is logged once,
//! reports only `hw.status{hw.state="failed"} 1` from then on, and NVML is re-initialised and
//! the GPUs enumerated again with the same backoff; a GPU that answers again reports again. A
//! driver that disappears while running (unloaded, upgraded without reboot) is handled the
//! same way, reporting nothing until it is back.
//!
//! A call a GPU does not support (`NotSupported`; `InvalidArg` for the fans of a fanless card) is
//! learned the first time, logged at debug and never made again for that GPU (until NVML is
//! re-initialised). Other errors skip that value for the tick and are logged once at warn
//! until the call succeeds again.
//!
//! # Metrics
//!
//! Every GPU point carries `hw.id` (the GPU UUID, `GPU-…`), `hw.name` (`NVIDIA H100 80GB
//! HBM3`), `hw.vendor` (`nvidia`), `hw.type` (`gpu`), `gpu.index` (NVML's index, as
//! `nvidia-smi` numbers GPUs), `hw.gpu.pci_bus_id` (`00000000:00:06.0`) and, where the board
//! has one, `hw.serial_number`; `hw.model` and `hw.driver_version`. Ratios are 0–1. A value the GPU does not offer is not reported.
//!
//! Every metric, its instrument, unit, attributes and NVML source is listed in
//! [docs/metrics.md](../../../docs/metrics.md) (section "gpu"), generated from this collector's
//! registration table ([`instruments`]).
//!
//! Two readings are easy to mistake: `nvidia.gpu.memory_controller.utilization` is the time the
//! memory controller was busy (NVML's `utilization.memory`), *not* memory used, which is
//! `hw.gpu.memory.utilization` (used ÷ total); and `hw.gpu.memory.usage` leaves out the memory
//! the driver reserves, as `nvidia-smi` does (total = used + free + reserved). `hw.status` is 1
//! for the GPU's current state and 0 for the others: `failed` while the GPU is lost, `degraded`
//! while throttle reason `hw_slowdown`, `sw_thermal_slowdown`, `hw_thermal_slowdown` or
//! `hw_power_brake_slowdown` is active or while memory waits for a reset to be repaired (a row
//! remapping or page retirement pending, or a remapping failed), else `ok`.
//!
//! MIG devices are reported under their own names, not as more `hw.gpu.memory.*` points: their
//! memory is part of the parent GPU's, and summing `hw_gpu_memory_usage_bytes` must not count it
//! twice. NVML offers no utilization per MIG device (that needs DCGM's profiling metrics).
//!
//! Per-process attribution reads `/proc/PID/…` below the configured host root (`HOST_PROC`,
//! `root_path`). NVML reports host PIDs: in a container, run in the host's PID namespace or mount
//! the host's `/proc` and point `HOST_PROC` at it, or the names and containers will be wrong or
//! missing.
//!
//! ## What each tick costs
//!
//! Measured on an H100 (docs/gpu.md, "What each call costs"): the plain calls (utilization, temperature,
//! power, clocks, throttle reasons, P-state, ECC, encoder/decoder) cost 0.3–0.9 µs each, memory
//! and the process lists about 7 µs. Two calls are slow and are handled so:
//!
//! * `nvmlDeviceGetPcieThroughput` (about 21 ms each direction: NVML samples for 20 ms) is
//!   **never** called; the PCIe byte counters of field values 197/198 give `hw.gpu.io` instead,
//!   read by a sampler thread often enough that their 4 GiB wrap is counted ([`pcie`]).
//! * `nvmlDeviceGetTotalEnergyConsumption` (about 4 ms) is read only every `energy_interval`
//!   (default 60 s), and `hw.energy` reports the last reading in between: the counter is exact
//!   when read, never estimated, and moves in steps. Use `rate(hw_energy_joules_total[5m])`
//!   over windows longer than `energy_interval`, and `hw_power_watts` for instant draw.
//!   `energy_interval: 0s` reads it every tick.
//!
//! The rest of the default set is well under 1 ms of CPU per GPU per tick. The field values
//! call (memory temperature, NVLink bytes and memory health in one call) was not timed on its
//! own; the 8-field call in the measurements (8.6 ms) included the energy counter. XID events,
//! the PCIe counters and the kubelet's PodResources are read by threads of their own, never on
//! the tick; docs/gpu.md has a tick's calls and costs.
//!
//! # metricsd's `system_gpu_*` metrics
//!
//! metricsd's GPU metrics carried its own names; these are their equivalents here, in the names
//! Prometheus gets (remote-write, `/metrics`). Labels are `hw_id`, `hw_name`, `gpu_index`, … .
//!
//! | metricsd | here | PromQL for metricsd's value |
//! | --- | --- | --- |
//! | `system_gpu_count` | `nvidia_gpu_count` | `nvidia_gpu_count` |
//! | `system_gpu_utilization_percent` | `hw_gpu_utilization_ratio{hw_gpu_task="general"}` | `hw_gpu_utilization_ratio{hw_gpu_task="general"} * 100` |
//! | `system_gpu_memory_utilization_percent` | `nvidia_gpu_memory_controller_utilization_ratio` (memory-controller busy time, as NVML's `utilization.memory`; **not** `hw_gpu_memory_utilization_ratio`, which is used ÷ total) | `nvidia_gpu_memory_controller_utilization_ratio * 100` |
//! | `system_gpu_memory_total_bytes` | `hw_gpu_memory_limit_bytes` | `hw_gpu_memory_limit_bytes` |
//! | `system_gpu_memory_used_bytes` | `hw_gpu_memory_usage_bytes` | `hw_gpu_memory_usage_bytes` (excludes driver-reserved memory, as `nvidia-smi`; NVML's older v1 call counted it as used: `hw_gpu_memory_limit_bytes - nvidia_gpu_memory_free_bytes`) |
//! | `system_gpu_memory_free_bytes` | `nvidia_gpu_memory_free_bytes` | `nvidia_gpu_memory_free_bytes` |
//! | `system_gpu_temperature_celsius` | `hw_temperature_celsius{hw_sensor_location="gpu"}` | `hw_temperature_celsius{hw_type="gpu",hw_sensor_location="gpu"}` |
//! | `system_gpu_power_usage_milliwatts` | `hw_power_watts` | `hw_power_watts{hw_type="gpu"} * 1000` |
//! | `system_gpu_fan_speed_percent` | `nvidia_gpu_fan_speed_ratio` (per fan; none on datacenter GPUs) | `max by (hw_id) (nvidia_gpu_fan_speed_ratio) * 100` |
//! | `system_gpu_clock_sm_mhz` | `nvidia_gpu_clock_sm_hertz` | `nvidia_gpu_clock_sm_hertz / 1e6` |
//! | `system_gpu_clock_memory_mhz` | `nvidia_gpu_clock_memory_hertz` | `nvidia_gpu_clock_memory_hertz / 1e6` |
//!
//! # Checking against `nvidia-smi` on a GPU host
//!
//! ```text
//! cargo build --release
//! printf '{"collector": {"enable_gpu": true}}' > /tmp/gpu.json
//! target/release/metricsd --config /tmp/gpu.json --once
//! nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem,pstate --format=csv
//! ```
//!
//! Per GPU (`gpu.index` = `index`, `hw.id` = `uuid`, `hw.name` = `name`): `utilization.gpu` % =
//! `hw.gpu.utilization{general}` × 100; `utilization.memory` % =
//! `nvidia.gpu.memory_controller.utilization` × 100; `memory.used` / `memory.total` MiB =
//! `hw.gpu.memory.usage` / `hw.gpu.memory.limit` ÷ 1048576; `temperature.gpu` =
//! `hw.temperature{gpu}`; `power.draw` / `power.limit` W = `hw.power` / `nvidia.gpu.power.limit`;
//! `clocks.sm` / `clocks.mem` MHz = `nvidia.gpu.clock.sm` / `.memory` ÷ 10⁶; `pstate` `Pn` =
//! `nvidia.gpu.pstate`. Utilization, power and clocks move between the two samples; on an idle
//! GPU they agree exactly.
//!
//! # Files
//!
//! `config` (the `collector.gpu` section), `device` (the driver trait), `nvml` (NVML behind
//! it), `collector` (NVML's lifecycle, retries and the tick), `state` (what is kept per GPU
//! between ticks), `sample` (one GPU's tick, with memory health and NVLink), `processes` and
//! `mig` (memory per process and per MIG device), `procutil` (compute share per container),
//! `events` (the XID thread), `pcie` (the PCIe sampler thread), `podresources` (the kubelet
//! PodResources client and its thread), `snapshot` (what a tick read), `instruments` (the
//! registration table).

mod collector;
mod config;
pub mod device;
mod events;
#[cfg(test)]
mod fake;
pub mod instruments;
mod mig;
pub mod nvml;
mod pcie;
pub mod podresources;
mod processes;
mod procutil;
#[cfg(test)]
mod rig;
mod sample;
mod snapshot;
mod state;

pub use self::collector::{GpuCollector, Now, MAX_RETRY_INTERVAL};
pub use self::config::GpuConfig;
pub use self::snapshot::GpuSnapshot;
// What the registration table in `instruments` reads.
use self::snapshot::{pct, GpuSample};
use super::SnapshotCell;

#[cfg(test)]
mod tests {
    use super::device::{MigDevice, XidEvent};
    use super::fake::{FakeGpu, FakeNvml};
    use super::instruments;
    use super::rig::*;

    /// The metricsd table's "here" column, as Prometheus names.
    fn metricsd_equivalents() -> Vec<&'static str> {
        include_str!("mod.rs")
            .lines()
            .filter(|l| l.starts_with("//! | `system_gpu_"))
            .map(|l| l.split(" | ").nth(2).unwrap())
            .map(|here| here.trim_start_matches('`').split(['`', '{']).next().unwrap())
            .collect()
    }

    #[test]
    fn docs_gpu_md_lists_every_metric_with_the_prometheus_name_it_gets() {
        use crate::collectors::instruments::InstrumentKind;
        use crate::translate::{metric_name, NameKind};
        let page = include_str!("../../../docs/gpu.md");
        for m in instruments::METRICS {
            let row = page.lines().find(|l| l.starts_with(&format!("| `{}` |", m.name)));
            let row = row.unwrap_or_else(|| panic!("{} is missing from docs/gpu.md", m.name));
            let kind = match m.kind {
                InstrumentKind::Gauge => NameKind::Gauge,
                InstrumentKind::Counter => NameKind::MonotonicCounter,
                InstrumentKind::UpDownCounter => NameKind::NonMonotonicCounter,
            };
            let prometheus = metric_name(m.name, m.unit, kind);
            assert!(row.trim_end().ends_with(&format!("| `{prometheus}` |")), "{}: docs/gpu.md should say `{prometheus}`: {row}", m.name);
        }
    }

    #[test]
    fn the_metric_table_in_the_docs_lists_every_metric_with_its_prometheus_name() {
        use crate::collectors::instruments::InstrumentKind;
        use crate::translate::{metric_name, NameKind};
        // The catalog of docs/metrics.md is generated from `instruments::METRICS` (and checked
        // by tests/metrics_doc.rs): every metric a fully featured GPU reports is in both.
        let catalog = include_str!("../../../docs/metrics.md");
        let mut gpu = FakeGpu::h100(0);
        gpu.fans = vec![30];
        gpu.nvlinks = vec![(true, [0; 4])];
        gpu.util_samples = vec![super::device::ProcessUtilization { pid: 1, timestamp_us: 1, ..Default::default() }];
        gpu.compute = vec![proc(1, Some(1))];
        gpu.mig = Some(vec![MigDevice { uuid: "MIG-a".into(), ..MigDevice::default() }]);
        let fake = FakeNvml::with(vec![gpu]);
        fake.state().xid_events.push_back(XidEvent { index: 0, uuid: UUID0.into(), code: 79 });
        let mut r = Rig::new(fake.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut p = r.tick();
        while !p.iter().any(|p| p.0 == "nvidia.gpu.xid.errors") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            p = r.after(1);
        }
        // One more tick with a fresh utilization sample (each is counted on one tick only).
        fake.state().gpus[0].util_samples.push(super::device::ProcessUtilization { pid: 1, timestamp_us: u64::MAX, ..Default::default() });
        let p = r.after(1);
        let mut names: Vec<&str> = p.iter().map(|p| p.0.as_str()).collect();
        names.dedup();
        for n in &names {
            assert!(instruments::METRICS.iter().any(|m| m.name == *n), "{n} is missing from the registration table");
            assert!(catalog.contains(&format!("| `{n}` |")), "{n} is missing from docs/metrics.md");
        }
        assert_eq!(names.len(), instruments::METRICS.len(), "the fully featured GPU reports every metric");

        // Each Prometheus name the metricsd table above points to is one of these metrics'.
        let prometheus: Vec<String> = instruments::METRICS
            .iter()
            .map(|m| {
                let kind = match m.kind {
                    InstrumentKind::Gauge => NameKind::Gauge,
                    InstrumentKind::Counter => NameKind::MonotonicCounter,
                    InstrumentKind::UpDownCounter => NameKind::NonMonotonicCounter,
                };
                metric_name(m.name, m.unit, kind)
            })
            .collect();
        let equivalents = metricsd_equivalents();
        assert_eq!(equivalents.len(), 11);
        for name in equivalents {
            assert!(prometheus.iter().any(|p| p == name), "{name} is no GPU metric's Prometheus name");
        }
    }
}
