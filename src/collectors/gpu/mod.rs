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
//! has one, `hw.serial_number`. Ratios are 0–1. A value the GPU does not offer is not reported.
//!
//! | metric | instrument | unit | more attributes | NVML source | Prometheus name |
//! | --- | --- | --- | --- | --- | --- |
//! | `hw.gpu.utilization` | Gauge | 1 | `hw.gpu.task` = `general` | `nvmlDeviceGetUtilizationRates().gpu` % ÷ 100 | `hw_gpu_utilization_ratio` |
//! | | | | `hw.gpu.task` = `encoder`, `decoder` | `nvmlDeviceGetEncoderUtilization` / `…DecoderUtilization` % ÷ 100 | |
//! | `nvidia.gpu.memory_controller.utilization` | Gauge | 1 | – | `nvmlDeviceGetUtilizationRates().memory` % ÷ 100: time the memory controller was busy, *not* memory used | `nvidia_gpu_memory_controller_utilization_ratio` |
//! | `hw.gpu.memory.usage` | UpDownCounter | By | – | `nvmlDeviceGetMemoryInfo_v2().used` (without driver-reserved memory, as `nvidia-smi`) | `hw_gpu_memory_usage_bytes` |
//! | `hw.gpu.memory.limit` | UpDownCounter | By | – | `nvmlDeviceGetMemoryInfo_v2().total` | `hw_gpu_memory_limit_bytes` |
//! | `nvidia.gpu.memory.free` | UpDownCounter | By | – | `nvmlDeviceGetMemoryInfo_v2().free` (total = used + free + reserved) | `nvidia_gpu_memory_free_bytes` |
//! | `hw.gpu.memory.utilization` | Gauge | 1 | – | used ÷ total | `hw_gpu_memory_utilization_ratio` |
//! | `hw.gpu.io` | Counter | By | `network.io.direction` = `transmit`, `receive` | field values 197 / 198 (`NVML_FI_DEV_PCIE_COUNT_TX_BYTES` / `RX_BYTES`), u32 counters accumulated into a u64 across wraps | `hw_gpu_io_bytes_total` |
//! | `hw.power` | Gauge | W | – | `nvmlDeviceGetPowerUsage` mW ÷ 1000 | `hw_power_watts` |
//! | `nvidia.gpu.power.limit` | Gauge | W | – | `nvmlDeviceGetEnforcedPowerLimit` mW ÷ 1000 | `nvidia_gpu_power_limit_watts` |
//! | `hw.energy` | Counter | J | – | `nvmlDeviceGetTotalEnergyConsumption` mJ ÷ 1000, read every `energy_interval` (see below) | `hw_energy_joules_total` |
//! | `hw.temperature` | Gauge | Cel | `hw.sensor_location` = `gpu` | `nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)` | `hw_temperature_celsius` |
//! | | | | `hw.sensor_location` = `memory` | field value 82 (`NVML_FI_DEV_MEMORY_TEMP`), HBM GPUs only | |
//! | `nvidia.gpu.clock.sm` | Gauge | Hz | – | `nvmlDeviceGetClockInfo(NVML_CLOCK_SM)` MHz × 10⁶ | `nvidia_gpu_clock_sm_hertz` |
//! | `nvidia.gpu.clock.memory` | Gauge | Hz | – | `nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)` MHz × 10⁶ | `nvidia_gpu_clock_memory_hertz` |
//! | `nvidia.gpu.fan.speed` | Gauge | 1 | `nvidia.gpu.fan.index` | `nvmlDeviceGetFanSpeed_v2` % ÷ 100; only GPUs with fans (`nvmlDeviceGetNumFans` > 0) | `nvidia_gpu_fan_speed_ratio` |
//! | `nvidia.gpu.pstate` | Gauge | {pstate} | – | `nvmlDeviceGetPerformanceState`: 0 (P0, fastest) to 15 | `nvidia_gpu_pstate` |
//! | `nvidia.gpu.throttle` | UpDownCounter | 1 | `nvidia.gpu.throttle.reason` = `gpu_idle`, `applications_clocks_setting`, `sw_power_cap`, `hw_slowdown`, `sync_boost`, `sw_thermal_slowdown`, `hw_thermal_slowdown`, `hw_power_brake_slowdown`, `display_clock_setting` | `nvmlDeviceGetCurrentClocksThrottleReasons`: 1 while the reason is active, else 0 | `nvidia_gpu_throttle` |
//! | `hw.errors` | Counter | {error} | `error.type` = `corrected`, `uncorrected` | `nvmlDeviceGetTotalEccErrors(…, NVML_VOLATILE_ECC)`: since the driver was loaded; ECC-enabled GPUs only | `hw_errors_total` |
//! | `nvidia.gpu.pcie.replay` | Counter | {replay} | – | `nvmlDeviceGetPcieReplayCounter` | `nvidia_gpu_pcie_replay_total` |
//! | `hw.status` | UpDownCounter | 1 | `hw.state` = `ok`, `degraded`, `failed` (1 for the current state, 0 for the others) | `failed`: the GPU is lost; `degraded`: throttle reason `hw_slowdown`, `sw_thermal_slowdown`, `hw_thermal_slowdown` or `hw_power_brake_slowdown` active; else `ok` | `hw_status` |
//! | `nvidia.gpu.count` | UpDownCounter | {gpu} | none (not even the GPU attributes) | `nvmlDeviceGetCount_v2` | `nvidia_gpu_count` |
//! | `nvidia.gpu.process.memory.usage` | UpDownCounter | By | `process.pid`, `process.executable.name`, `container.id`, `k8s.pod.uid`, `gpu.mig.instance_id`, `gpu.mig.compute_instance_id` (each where known) | `nvmlDeviceGetComputeRunningProcesses_v3` and `…GraphicsRunningProcesses_v3` (a process in both counted once); name from `/proc/PID/comm`, container and pod from `/proc/PID/cgroup` | `nvidia_gpu_process_memory_usage_bytes` |
//! | `nvidia.gpu.mig.memory.usage` | UpDownCounter | By | `gpu.mig.uuid`, `gpu.mig.instance_id`, `gpu.mig.compute_instance_id` | `nvmlDeviceGetMemoryInfo_v2` of each MIG device (`nvmlDeviceGetMigDeviceHandleByIndex`) while MIG mode is on | `nvidia_gpu_mig_memory_usage_bytes` |
//! | `nvidia.gpu.mig.memory.limit` | UpDownCounter | By | as above | the MIG device's `total` | `nvidia_gpu_mig_memory_limit_bytes` |
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
//!   **never** called; the PCIe byte counters of field values 197/198 give `hw.gpu.io` instead.
//!   The counters are 32-bit and wrap at 4 GiB: the collector adds the wrapped difference
//!   between reads to a 64-bit total, which is right as long as less than 4 GiB moves between
//!   two reads (at the default 60 s interval, an average under 71 MB/s); above that the total
//!   undercounts. Set `pcie_io: false` to leave the field values call out.
//! * `nvmlDeviceGetTotalEnergyConsumption` (about 4 ms) is read only every `energy_interval`
//!   (default 60 s), and `hw.energy` reports the last reading in between: the counter is exact
//!   when read, never estimated, and moves in steps. Use `rate(hw_energy_joules_total[5m])`
//!   over windows longer than `energy_interval`, and `hw_power_watts` for instant draw.
//!   `energy_interval: 0s` reads it every tick.
//!
//! The rest of the default set is well under 1 ms of CPU per GPU per tick. The field values
//! call (memory temperature and the two PCIe counters in one call) was not timed on its own;
//! the 8-field call in the measurements (8.6 ms) included the energy counter.
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

pub mod device;
#[cfg(test)]
mod fake;
pub mod instruments;
pub mod nvml;

use self::device::{field, throttle, ClockKind, EccKind, FieldValue, GpuBackend, GpuError, GpuProcess, Identity, Memory, MigDevice, ProcessKind};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::resource::container::{container_of_cgroup_line, k8s_pod_uid_of_cgroup};
use crate::units::ConfigDuration;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait between two attempts to initialise NVML.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(600);

/// `collector.gpu`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// Run this collector (default false; metricsd's `enable_gpu` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Report GPU memory per process, with its executable, container and pod (default true).
    pub processes: bool,
    /// Report at most this many processes per GPU, those using the most memory (default 64).
    pub max_processes: usize,
    /// Report the memory of each MIG device of GPUs in MIG mode (default true).
    pub mig: bool,
    /// Report PCIe bytes (`hw.gpu.io`) from NVML's PCIe byte counters (default true).
    pub pcie_io: bool,
    /// How often to read the energy counter, a 4 ms driver call; `hw.energy` holds the last
    /// reading in between (default `"60s"`; `"0s"` reads it every tick).
    pub energy_interval: ConfigDuration,
    /// Wait before retrying when there is no driver or a GPU was lost; doubles after each
    /// failed retry, up to 10 minutes (default `"60s"`).
    pub retry_interval: ConfigDuration,
    /// Where `libnvidia-ml.so.1` is, when not on the library search path (default: searched,
    /// as `dlopen` does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library_path: Option<PathBuf>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            enabled: None,
            processes: true,
            max_processes: 64,
            mig: true,
            pcie_io: true,
            energy_interval: ConfigDuration::secs(60),
            retry_interval: ConfigDuration::secs(60),
            library_path: None,
        }
    }
}

/// Where the collector gets the time from (a fake clock in tests).
pub type Now = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The driver calls whose support is learned per GPU, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    Utilization,
    Encoder,
    Decoder,
    Memory,
    Temperature,
    MemoryTemperature,
    Power,
    PowerLimit,
    Energy,
    ClockSm,
    ClockMemory,
    FanCount,
    FanSpeed,
    PState,
    Throttle,
    EccCorrected,
    EccUncorrected,
    PcieReplay,
    PcieTx,
    PcieRx,
    FieldValues,
    ComputeProcesses,
    GraphicsProcesses,
    MigMode,
    MigDevices,
}

impl Cap {
    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Why sampling a GPU stopped.
#[derive(Debug)]
enum Abort {
    /// The GPU is lost.
    Lost,
    /// The driver went away.
    Driver(String),
}

/// A 32-bit hardware byte counter accumulated into 64 bits.
#[derive(Debug, Clone, Copy, Default)]
struct WrapCounter {
    last: Option<u32>,
    total: u64,
}

impl WrapCounter {
    /// Takes a new reading and returns the total. A u32 reading adds its difference from the
    /// previous one modulo 2³² (so one wrap between reads is counted right); a u64 reading is
    /// taken as it is.
    fn update(&mut self, v: FieldValue) -> u64 {
        match v {
            FieldValue::U32(v) => {
                self.total = match self.last {
                    Some(last) => self.total.wrapping_add(v.wrapping_sub(last) as u64),
                    None => v as u64,
                };
                self.last = Some(v);
            }
            other => {
                self.total = other.as_f64() as u64;
                self.last = None;
            }
        }
        self.total
    }
}

/// Attribute sets of one GPU, built once at enumeration so callbacks allocate nothing.
#[derive(Debug)]
struct GpuAttrs {
    base: Vec<KeyValue>,
    /// `hw.gpu.task`: general, encoder, decoder.
    task: [Vec<KeyValue>; 3],
    /// `network.io.direction`: transmit, receive.
    io: [Vec<KeyValue>; 2],
    /// `error.type`: corrected, uncorrected.
    errors: [Vec<KeyValue>; 2],
    /// `hw.sensor_location`: gpu, memory.
    sensor: [Vec<KeyValue>; 2],
    /// `hw.state`: ok, degraded, failed.
    state: [Vec<KeyValue>; 3],
    /// `nvidia.gpu.throttle.reason`, in [`throttle::REASONS`] order.
    throttle: Vec<Vec<KeyValue>>,
    /// `nvidia.gpu.fan.index`, per fan.
    fans: Vec<Vec<KeyValue>>,
}

fn with(base: &[KeyValue], extra: KeyValue) -> Vec<KeyValue> {
    let mut v = Vec::with_capacity(base.len() + 1);
    v.extend_from_slice(base);
    v.push(extra);
    v
}

impl GpuAttrs {
    fn new(id: &Identity, fans: u32) -> Self {
        let mut base = vec![
            KeyValue::new("hw.id", Arc::<str>::from(id.uuid.as_str())),
            KeyValue::new("hw.name", Arc::<str>::from(id.name.as_str())),
            KeyValue::new("hw.vendor", "nvidia"),
            KeyValue::new("hw.type", "gpu"),
            KeyValue::new("gpu.index", id.index as i64),
        ];
        if !id.pci_bus_id.is_empty() {
            base.push(KeyValue::new("hw.gpu.pci_bus_id", Arc::<str>::from(id.pci_bus_id.as_str())));
        }
        if let Some(s) = &id.serial {
            base.push(KeyValue::new("hw.serial_number", Arc::<str>::from(s.as_str())));
        }
        let b = &base;
        let kv = |k: &'static str, v: &'static str| with(b, KeyValue::new(k, v));
        GpuAttrs {
            task: [kv("hw.gpu.task", "general"), kv("hw.gpu.task", "encoder"), kv("hw.gpu.task", "decoder")],
            io: [kv("network.io.direction", "transmit"), kv("network.io.direction", "receive")],
            errors: [kv("error.type", "corrected"), kv("error.type", "uncorrected")],
            sensor: [kv("hw.sensor_location", "gpu"), kv("hw.sensor_location", "memory")],
            state: [kv("hw.state", "ok"), kv("hw.state", "degraded"), kv("hw.state", "failed")],
            throttle: throttle::REASONS.iter().map(|(_, r)| kv("nvidia.gpu.throttle.reason", r)).collect(),
            fans: (0..fans).map(|i| with(b, KeyValue::new("nvidia.gpu.fan.index", i as i64))).collect(),
            base,
        }
    }
}

/// `hw.state` of a GPU, as an index into [`GpuAttrs::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum HwState {
    #[default]
    Ok = 0,
    Degraded = 1,
    Failed = 2,
}

/// What one tick read from one GPU, in NVML's units.
#[derive(Debug, Default)]
struct Values {
    state: HwState,
    util: Option<u32>,
    memory_controller: Option<u32>,
    encoder: Option<u32>,
    decoder: Option<u32>,
    memory: Option<Memory>,
    temperature: Option<u32>,
    memory_temperature: Option<f64>,
    power_mw: Option<u32>,
    power_limit_mw: Option<u32>,
    energy_mj: Option<u64>,
    clock_sm_mhz: Option<u32>,
    clock_memory_mhz: Option<u32>,
    /// (fan index, percent).
    fans: Vec<(usize, u32)>,
    pstate: Option<u32>,
    throttle: Option<u64>,
    /// Corrected, uncorrected.
    ecc: [Option<u64>; 2],
    replay: Option<u32>,
    /// Transmit, receive totals.
    pcie: [Option<u64>; 2],
}

#[derive(Debug)]
struct GpuSample {
    attrs: Arc<GpuAttrs>,
    v: Values,
}

/// What one tick read from every GPU.
#[derive(Debug, Default)]
pub struct GpuSnapshot {
    /// GPUs the driver enumerates; `None` without a driver (nothing is reported then).
    count: Option<u32>,
    gpus: Vec<GpuSample>,
    /// Per process: attributes, bytes.
    processes: Vec<(Arc<[KeyValue]>, u64)>,
    /// Per MIG device: attributes, memory.
    mig: Vec<(Arc<[KeyValue]>, Memory)>,
}

impl GpuSnapshot {
    fn clear(&mut self) {
        self.count = None;
        self.gpus.clear();
        self.processes.clear();
        self.mig.clear();
    }
}

/// What the collector keeps about one GPU between ticks.
struct DeviceState {
    dev: u32,
    id: Identity,
    attrs: Arc<GpuAttrs>,
    /// Calls the GPU does not support ([`Cap`] bits): never made again.
    unsupported: u32,
    /// Calls whose last error was logged ([`Cap`] bits), cleared by a success.
    failing: u32,
    lost: bool,
    fans: u32,
    energy_mj: Option<u64>,
    energy_due: Option<Instant>,
    pcie: [WrapCounter; 2],
    processes: HashMap<u32, Arc<[KeyValue]>>,
    truncation_logged: bool,
    mig: HashMap<String, Arc<[KeyValue]>>,
}

impl DeviceState {
    fn new(dev: u32, id: Identity) -> Self {
        DeviceState {
            dev,
            attrs: Arc::new(GpuAttrs::new(&id, 0)),
            id,
            unsupported: 0,
            failing: 0,
            lost: false,
            fans: 0,
            energy_mj: None,
            energy_due: None,
            pcie: [WrapCounter::default(); 2],
            processes: HashMap::new(),
            truncation_logged: false,
            mig: HashMap::new(),
        }
    }

    fn supports(&self, cap: Cap) -> bool {
        self.unsupported & cap.bit() == 0
    }

    /// Makes a driver call unless the GPU is known not to support it, learning from the answer.
    fn get<T>(&mut self, cap: Cap, call: impl FnOnce() -> Result<T, GpuError>) -> Result<Option<T>, Abort> {
        if !self.supports(cap) {
            return Ok(None);
        }
        match call() {
            Ok(v) => {
                self.failing &= !cap.bit();
                Ok(Some(v))
            }
            Err(GpuError::NotSupported) => {
                self.unsupported |= cap.bit();
                tracing::debug!(gpu.index = self.id.index, hw.id = %self.id.uuid, call = ?cap,
                    "not supported by this GPU; not asked again");
                Ok(None)
            }
            Err(GpuError::Lost) => Err(Abort::Lost),
            Err(GpuError::DriverUnavailable(m)) => Err(Abort::Driver(m)),
            Err(GpuError::Other(m)) => {
                if self.failing & cap.bit() == 0 {
                    self.failing |= cap.bit();
                    tracing::warn!(gpu.index = self.id.index, hw.id = %self.id.uuid, call = ?cap,
                        error = %m, "GPU query failed; value skipped until it succeeds");
                } else {
                    tracing::debug!(gpu.index = self.id.index, call = ?cap, error = %m, "GPU query failed");
                }
                Ok(None)
            }
        }
    }
}

/// Buffers reused from tick to tick.
#[derive(Default)]
struct Scratch {
    ids: Vec<u32>,
    fields: Vec<Result<FieldValue, GpuError>>,
    processes: Vec<GpuProcess>,
    mig: Vec<MigDevice>,
}

/// Reads NVIDIA GPUs through a [`GpuBackend`] (NVML) every tick.
pub struct GpuCollector {
    config: GpuConfig,
    paths: HostPaths,
    backend: Box<dyn GpuBackend>,
    now: Now,
    snap: Arc<SnapshotCell<GpuSnapshot>>,
    /// NVML is initialised and `devices` enumerated.
    up: bool,
    count: u32,
    devices: Vec<DeviceState>,
    /// When to (re)initialise NVML; `None` while all is well (or before the first tick).
    retry_at: Option<Instant>,
    backoff: Duration,
    ever_up: bool,
    init_failure_logged: bool,
    /// GPUs (by UUID, or `index:N`) whose loss was logged and not yet recovered.
    lost_logged: HashSet<String>,
    scratch: Scratch,
}

impl GpuCollector {
    /// A collector on NVML (loaded at the first refresh).
    pub fn new(config: &GpuConfig, paths: &HostPaths, clock: &TickClock) -> Self {
        let backend = nvml::NvmlBackend::new(config.library_path.clone());
        Self::with_backend(config, paths, clock, Box::new(backend), Arc::new(Instant::now))
    }

    /// A collector on any backend and clock (tests use a fake of each).
    pub fn with_backend(config: &GpuConfig, paths: &HostPaths, clock: &TickClock, backend: Box<dyn GpuBackend>, now: Now) -> Self {
        GpuCollector {
            config: config.clone(),
            paths: paths.clone(),
            backend,
            now,
            snap: SnapshotCell::new(clock),
            up: false,
            count: 0,
            devices: Vec::new(),
            retry_at: None,
            backoff: config.retry_interval.get(),
            ever_up: false,
            init_failure_logged: false,
            lost_logged: HashSet::new(),
            scratch: Scratch::default(),
        }
    }

    fn max_backoff(&self) -> Duration {
        MAX_RETRY_INTERVAL.max(self.config.retry_interval.get())
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.retry_at = Some(crate::units::duration::deadline_after(now, self.backoff));
        self.backoff = self.backoff.saturating_mul(2).min(self.max_backoff());
    }

    /// (Re)initialises NVML and enumerates the GPUs.
    fn init(&mut self, now: Instant) {
        let old = std::mem::take(&mut self.devices);
        self.up = false;
        let result = self.backend.init().and_then(|()| self.enumerate(&old));
        match result {
            Ok(devices) => {
                let lost = devices.iter().filter(|d| d.lost).count();
                for d in devices.iter().filter(|d| !d.lost) {
                    if self.lost_logged.remove(&d.id.uuid) {
                        tracing::info!(gpu.index = d.id.index, hw.id = %d.id.uuid, "GPU answers again");
                    }
                }
                let version = self.backend.driver_version().unwrap_or_default();
                if !self.ever_up {
                    tracing::info!(driver = %version, gpus = self.count, "NVIDIA GPU collector started");
                } else {
                    tracing::info!(driver = %version, gpus = self.count, lost, "NVML re-initialised");
                }
                self.devices = devices;
                self.up = true;
                self.ever_up = true;
                self.init_failure_logged = false;
                if lost > 0 {
                    self.schedule_retry(now);
                } else {
                    self.retry_at = None;
                    self.backoff = self.config.retry_interval.get();
                }
            }
            Err(e) => {
                self.backend.shutdown();
                self.count = 0;
                if !self.init_failure_logged {
                    self.init_failure_logged = true;
                    match &e {
                        GpuError::DriverUnavailable(m) => tracing::info!(detail = %m,
                            "No NVIDIA driver found; GPU collector reports nothing"),
                        other => tracing::warn!(error = %other,
                            "NVML initialisation failed; GPU collector reports nothing"),
                    }
                } else {
                    tracing::debug!(error = %e, "NVML initialisation failed again");
                }
                self.schedule_retry(now);
            }
        }
    }

    fn enumerate(&mut self, old: &[DeviceState]) -> Result<Vec<DeviceState>, GpuError> {
        let n = self.backend.device_count()?;
        self.count = n;
        let mut devices = Vec::with_capacity(n as usize);
        for dev in 0..n {
            let mut st = match self.backend.identity(dev) {
                Ok(id) => DeviceState::new(dev, id),
                Err(GpuError::Lost) => match old.iter().find(|d| d.dev == dev) {
                    // Still lost: keep reporting it as failed under the identity it had.
                    Some(d) => {
                        let mut st = DeviceState::new(dev, d.id.clone());
                        st.lost = true;
                        devices.push(st);
                        continue;
                    }
                    None => {
                        if self.lost_logged.insert(format!("index:{dev}")) {
                            tracing::warn!(gpu.index = dev, "GPU is lost before it could be identified; not reported");
                        }
                        continue;
                    }
                },
                Err(e @ GpuError::DriverUnavailable(_)) => return Err(e),
                Err(e) => {
                    if self.lost_logged.insert(format!("index:{dev}")) {
                        tracing::warn!(gpu.index = dev, error = %e, "cannot identify GPU; not reported");
                    }
                    continue;
                }
            };
            let backend = &*self.backend;
            match st.get(Cap::FanCount, || backend.fan_count(dev)) {
                Ok(n) => st.fans = n.unwrap_or(0),
                Err(Abort::Lost) => st.lost = true,
                Err(Abort::Driver(m)) => return Err(GpuError::DriverUnavailable(m)),
            }
            if st.fans == 0 {
                st.unsupported |= Cap::FanSpeed.bit();
            }
            st.attrs = Arc::new(GpuAttrs::new(&st.id, st.fans));
            if st.lost && self.lost_logged.insert(st.id.uuid.clone()) {
                tracing::warn!(gpu.index = st.id.index, hw.id = %st.id.uuid,
                    "GPU is lost (fell off the bus or stopped answering); reporting hw.status failed");
            }
            devices.push(st);
        }
        Ok(devices)
    }

    /// Samples every GPU into `snap`; `Err` when the driver went away.
    fn sample_all(&mut self, now: Instant, snap: &mut GpuSnapshot) -> Result<(), String> {
        snap.count = Some(self.count);
        let mut newly_lost = false;
        let GpuCollector { backend, devices, config, paths, scratch, lost_logged, .. } = self;
        for st in devices.iter_mut() {
            let mut v = Values::default();
            if !st.lost {
                let (np, nm) = (snap.processes.len(), snap.mig.len());
                match sample(&**backend, st, config, paths, now, scratch, &mut v, snap) {
                    Ok(()) => {}
                    Err(Abort::Lost) => {
                        st.lost = true;
                        newly_lost = true;
                        v = Values::default();
                        snap.processes.truncate(np);
                        snap.mig.truncate(nm);
                        if lost_logged.insert(st.id.uuid.clone()) {
                            tracing::warn!(gpu.index = st.id.index, hw.id = %st.id.uuid,
                                "GPU is lost (fell off the bus or stopped answering); reporting \
                                 hw.status failed and re-initialising NVML with backoff");
                        }
                    }
                    Err(Abort::Driver(m)) => return Err(m),
                }
            }
            v.state = if st.lost {
                HwState::Failed
            } else if v.throttle.is_some_and(|t| t & throttle::DEGRADED != 0) {
                HwState::Degraded
            } else {
                HwState::Ok
            };
            snap.gpus.push(GpuSample { attrs: st.attrs.clone(), v });
        }
        if newly_lost && self.retry_at.is_none() {
            self.schedule_retry(now);
        }
        Ok(())
    }
}

fn pct(v: u32) -> f64 {
    v as f64 / 100.0
}

/// One GPU's tick. Partial values are left in `v` when it aborts; the caller discards them.
#[allow(clippy::too_many_arguments)]
fn sample(
    b: &dyn GpuBackend,
    st: &mut DeviceState,
    config: &GpuConfig,
    paths: &HostPaths,
    now: Instant,
    scratch: &mut Scratch,
    v: &mut Values,
    snap: &mut GpuSnapshot,
) -> Result<(), Abort> {
    let d = st.dev;
    if let Some(u) = st.get(Cap::Utilization, || b.utilization(d))? {
        v.util = Some(u.gpu);
        v.memory_controller = Some(u.memory);
    }
    v.encoder = st.get(Cap::Encoder, || b.encoder_utilization(d))?;
    v.decoder = st.get(Cap::Decoder, || b.decoder_utilization(d))?;
    v.memory = st.get(Cap::Memory, || b.memory(d))?;
    v.temperature = st.get(Cap::Temperature, || b.temperature(d))?;
    v.power_mw = st.get(Cap::Power, || b.power_usage(d))?;
    v.power_limit_mw = st.get(Cap::PowerLimit, || b.power_limit(d))?;
    if st.energy_due.is_none_or(|t| now >= t) {
        if let Some(e) = st.get(Cap::Energy, || b.total_energy(d))? {
            st.energy_mj = Some(e);
        }
        st.energy_due = Some(crate::units::duration::deadline_after(now, config.energy_interval.get()));
    }
    v.energy_mj = st.energy_mj;
    v.clock_sm_mhz = st.get(Cap::ClockSm, || b.clock(d, ClockKind::Sm))?;
    v.clock_memory_mhz = st.get(Cap::ClockMemory, || b.clock(d, ClockKind::Memory))?;
    for fan in 0..st.fans {
        match st.get(Cap::FanSpeed, || b.fan_speed(d, fan))? {
            Some(p) => v.fans.push((fan as usize, p)),
            None => break,
        }
    }
    v.pstate = st.get(Cap::PState, || b.performance_state(d))?;
    v.throttle = st.get(Cap::Throttle, || b.throttle_reasons(d))?;
    v.ecc[0] = st.get(Cap::EccCorrected, || b.ecc_errors(d, EccKind::Corrected))?;
    v.ecc[1] = st.get(Cap::EccUncorrected, || b.ecc_errors(d, EccKind::Uncorrected))?;
    v.replay = st.get(Cap::PcieReplay, || b.pcie_replay_counter(d))?;

    // Memory temperature and the PCIe byte counters: one field-values call.
    scratch.ids.clear();
    let wanted = [
        (Cap::MemoryTemperature, field::MEMORY_TEMP, true),
        (Cap::PcieTx, field::PCIE_TX_BYTES, config.pcie_io),
        (Cap::PcieRx, field::PCIE_RX_BYTES, config.pcie_io),
    ];
    for (cap, id, on) in wanted {
        if on && st.supports(cap) {
            scratch.ids.push(id);
        }
    }
    if !scratch.ids.is_empty() {
        scratch.fields.clear();
        let (ids, fields) = (&scratch.ids, &mut scratch.fields);
        if st.get(Cap::FieldValues, || b.field_values(d, ids, fields))?.is_some() {
            for (id, r) in scratch.ids.iter().zip(scratch.fields.drain(..)) {
                let Some((cap, _, _)) = wanted.iter().find(|w| w.1 == *id) else {
                    continue;
                };
                let Some(value) = st.get(*cap, || r)? else {
                    continue;
                };
                match *id {
                    field::MEMORY_TEMP => v.memory_temperature = Some(value.as_f64()),
                    field::PCIE_TX_BYTES => v.pcie[0] = Some(st.pcie[0].update(value)),
                    field::PCIE_RX_BYTES => v.pcie[1] = Some(st.pcie[1].update(value)),
                    _ => {}
                }
            }
        }
    }

    if config.processes {
        sample_processes(b, st, config, paths, scratch, snap)?;
    }
    if config.mig && st.get(Cap::MigMode, || b.mig_enabled(d))? == Some(true) {
        scratch.mig.clear();
        let out = &mut scratch.mig;
        if st.get(Cap::MigDevices, || b.mig_devices(d, out))?.is_some() {
            for m in &scratch.mig {
                let attrs = match st.mig.get(&m.uuid) {
                    Some(a) => a.clone(),
                    None => {
                        let mut a = st.attrs.base.clone();
                        a.push(KeyValue::new("gpu.mig.uuid", Arc::<str>::from(m.uuid.as_str())));
                        a.push(KeyValue::new("gpu.mig.instance_id", m.gpu_instance_id as i64));
                        a.push(KeyValue::new("gpu.mig.compute_instance_id", m.compute_instance_id as i64));
                        let a: Arc<[KeyValue]> = a.into();
                        st.mig.insert(m.uuid.clone(), a.clone());
                        a
                    }
                };
                snap.mig.push((attrs, m.memory));
            }
            let seen = &scratch.mig;
            st.mig.retain(|u, _| seen.iter().any(|m| &m.uuid == u));
        }
    }
    Ok(())
}

fn sample_processes(
    b: &dyn GpuBackend,
    st: &mut DeviceState,
    config: &GpuConfig,
    paths: &HostPaths,
    scratch: &mut Scratch,
    snap: &mut GpuSnapshot,
) -> Result<(), Abort> {
    let d = st.dev;
    scratch.processes.clear();
    let out = &mut scratch.processes;
    let compute = st.get(Cap::ComputeProcesses, || b.processes(d, ProcessKind::Compute, out))?;
    let out = &mut scratch.processes;
    let graphics = st.get(Cap::GraphicsProcesses, || b.processes(d, ProcessKind::Graphics, out))?;
    if compute.is_none() && graphics.is_none() {
        return Ok(());
    }
    let procs = &mut scratch.processes;
    procs.retain(|p| p.used_memory.is_some());
    // A process with both a compute and a graphics context is listed twice: keep the larger.
    procs.sort_unstable_by(|a, b| a.pid.cmp(&b.pid).then(b.used_memory.cmp(&a.used_memory)));
    procs.dedup_by_key(|p| p.pid);
    procs.sort_by(|a, b| b.used_memory.cmp(&a.used_memory).then(a.pid.cmp(&b.pid)));
    if procs.len() > config.max_processes {
        if !st.truncation_logged {
            st.truncation_logged = true;
            tracing::info!(
                gpu.index = st.id.index,
                processes = procs.len(),
                max_processes = config.max_processes,
                "more processes on the GPU than max_processes; reporting those using the most memory"
            );
        }
        procs.truncate(config.max_processes);
    }
    for p in procs.iter() {
        let base = &st.attrs.base;
        let attrs = st.processes.entry(p.pid).or_insert_with(|| process_attrs(base, paths, p)).clone();
        snap.processes.push((attrs, p.used_memory.unwrap_or(0)));
    }
    st.processes.retain(|pid, _| procs.iter().any(|p| p.pid == *pid));
    Ok(())
}

/// A process's attributes: the GPU's, `process.pid`, and what `/proc/PID` tells.
fn process_attrs(base: &[KeyValue], paths: &HostPaths, p: &GpuProcess) -> Arc<[KeyValue]> {
    let mut a = base.to_vec();
    a.push(KeyValue::new("process.pid", p.pid as i64));
    if let Ok(comm) = std::fs::read_to_string(paths.proc(&format!("{}/comm", p.pid))) {
        let comm = comm.trim_end_matches('\n');
        if !comm.is_empty() {
            a.push(KeyValue::new("process.executable.name", Arc::<str>::from(comm.to_string())));
        }
    }
    if let Ok(cgroup) = std::fs::read_to_string(paths.proc(&format!("{}/cgroup", p.pid))) {
        if let Some((id, _)) = container_of_cgroup_line(&cgroup) {
            a.push(KeyValue::new("container.id", id));
        }
        if let Some(uid) = k8s_pod_uid_of_cgroup(&cgroup) {
            a.push(KeyValue::new("k8s.pod.uid", uid));
        }
    }
    if let Some(gi) = p.gpu_instance_id {
        a.push(KeyValue::new("gpu.mig.instance_id", gi as i64));
    }
    if let Some(ci) = p.compute_instance_id {
        a.push(KeyValue::new("gpu.mig.compute_instance_id", ci as i64));
    }
    a.into()
}

impl Collector for GpuCollector {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn may_block(&self) -> bool {
        true
    }

    fn register(&mut self, meter: &Meter) {
        instruments::register(&self.snap, meter);
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let now = (self.now)();
        let due = match self.retry_at {
            Some(t) => now >= t,
            None => !self.up,
        };
        if due {
            self.init(now);
        }
        let mut snap = self.snap.take().unwrap_or_default();
        snap.clear();
        if self.up {
            if let Err(m) = self.sample_all(now, &mut snap) {
                snap.clear();
                self.devices.clear();
                self.up = false;
                self.backend.shutdown();
                if !self.init_failure_logged {
                    self.init_failure_logged = true;
                    tracing::warn!(detail = %m, "NVIDIA driver went away; GPU collector reports nothing until it is back");
                }
                self.schedule_retry(now);
            }
        }
        self.snap.set(snap);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::device::{throttle, GpuProcess, Memory, MigDevice};
    use super::fake::{FakeGpu, FakeNvml};
    use super::*;
    use crate::collectors::testutil::{kind, of, value, Harness, Kind, Point};
    use std::sync::Mutex;

    const UUID0: &str = "GPU-11899c91-4bd4-1fa3-7e4c-3d6b0b0f0000";
    const UUID1: &str = "GPU-11899c91-4bd4-1fa3-7e4c-3d6b0b0f0001";

    /// A collector on a fake driver and a fake clock, registered on a meter provider.
    struct Rig {
        offset: Arc<Mutex<Duration>>,
        c: GpuCollector,
        h: Harness,
    }

    impl Rig {
        fn new(fake: FakeNvml) -> Self {
            Rig::with(fake, GpuConfig::default(), HostPaths::under("/nonexistent-metricsd-test"))
        }

        fn with(fake: FakeNvml, config: GpuConfig, paths: HostPaths) -> Self {
            let clock = TickClock::default();
            let offset = Arc::new(Mutex::new(Duration::ZERO));
            let t0 = Instant::now();
            let o = offset.clone();
            let now: Now = Arc::new(move || t0 + *o.lock().unwrap());
            let mut c = GpuCollector::with_backend(&config, &paths, &clock, Box::new(fake.clone()), now);
            let h = Harness::new(&clock, &mut c);
            Rig { offset, c, h }
        }

        /// One tick at the current fake time.
        fn tick(&mut self) -> Vec<Point> {
            self.h.tick(&mut self.c).expect("the GPU collector's refresh never fails")
        }

        /// Moves the fake clock `secs` on, then ticks.
        fn after(&mut self, secs: u64) -> Vec<Point> {
            *self.offset.lock().unwrap() += Duration::from_secs(secs);
            self.tick()
        }
    }

    /// The attributes of fake GPU `i` plus `extra`.
    fn at(i: usize, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![
            ("hw.id", [UUID0, UUID1][i]),
            ("hw.name", "NVIDIA H100 80GB HBM3"),
            ("hw.vendor", "nvidia"),
            ("hw.type", "gpu"),
            ("gpu.index", ["0", "1"][i]),
            ("hw.gpu.pci_bus_id", ["00000000:00:06.0", "00000000:00:07.0"][i]),
            ("hw.serial_number", "1752624011542"),
        ];
        v.extend_from_slice(extra);
        v
    }

    /// Runs `f` with a subscriber that records INFO and above as text.
    fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt().with_writer(move || w.clone()).with_ansi(false).with_max_level(tracing::Level::INFO).finish();
        let r = tracing::subscriber::with_default(sub, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        (r, text)
    }

    fn points_of_gpu<'a>(p: &'a [Point], uuid: &str) -> Vec<&'a Point> {
        p.iter().filter(|p| p.1.iter().any(|(k, v)| k == "hw.id" && v == uuid)).collect()
    }

    #[test]
    fn reports_every_gpu_metric_with_the_fake_h100s_exact_values() {
        let mut second = FakeGpu::h100(1);
        second.temperature = 50;
        let mut r = Rig::new(FakeNvml::with(vec![FakeGpu::h100(0), second]));
        let p = r.tick();
        let g = |extra| at(0, extra);

        assert_eq!(value(&p, "nvidia.gpu.count", &[]), Some(2.0));
        assert_eq!(value(&p, "hw.gpu.utilization", &g(&[("hw.gpu.task", "general")])), Some(0.37));
        assert_eq!(value(&p, "hw.gpu.utilization", &g(&[("hw.gpu.task", "encoder")])), Some(0.05));
        assert_eq!(value(&p, "hw.gpu.utilization", &g(&[("hw.gpu.task", "decoder")])), Some(0.07));
        assert_eq!(value(&p, "nvidia.gpu.memory_controller.utilization", &g(&[])), Some(0.12));
        assert_eq!(value(&p, "hw.gpu.memory.usage", &g(&[])), Some(21_474_836_480.0));
        assert_eq!(value(&p, "hw.gpu.memory.limit", &g(&[])), Some(85_520_809_984.0));
        assert_eq!(value(&p, "nvidia.gpu.memory.free", &g(&[])), Some(63_542_657_024.0));
        assert_eq!(value(&p, "hw.gpu.memory.utilization", &g(&[])), Some(21_474_836_480.0 / 85_520_809_984.0));
        assert_eq!(value(&p, "hw.gpu.io", &g(&[("network.io.direction", "transmit")])), Some(1000.0));
        assert_eq!(value(&p, "hw.gpu.io", &g(&[("network.io.direction", "receive")])), Some(2000.0));
        assert_eq!(value(&p, "hw.power", &g(&[])), Some(115.35));
        assert_eq!(value(&p, "nvidia.gpu.power.limit", &g(&[])), Some(700.0));
        assert_eq!(value(&p, "hw.energy", &g(&[])), Some(2147.197));
        assert_eq!(value(&p, "hw.temperature", &g(&[("hw.sensor_location", "gpu")])), Some(36.0));
        assert_eq!(value(&p, "hw.temperature", &g(&[("hw.sensor_location", "memory")])), Some(41.0));
        assert_eq!(value(&p, "nvidia.gpu.clock.sm", &g(&[])), Some(1_755_000_000.0));
        assert_eq!(value(&p, "nvidia.gpu.clock.memory", &g(&[])), Some(2_619_000_000.0));
        assert!(of(&p, "nvidia.gpu.fan.speed").is_empty(), "an H100 has no fans");
        assert_eq!(value(&p, "nvidia.gpu.pstate", &g(&[])), Some(0.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &g(&[("nvidia.gpu.throttle.reason", "gpu_idle")])), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &g(&[("nvidia.gpu.throttle.reason", "sw_power_cap")])), Some(0.0));
        assert_eq!(of(&p, "nvidia.gpu.throttle").len(), 2 * throttle::REASONS.len());
        assert_eq!(value(&p, "hw.errors", &g(&[("error.type", "corrected")])), Some(3.0));
        assert_eq!(value(&p, "hw.errors", &g(&[("error.type", "uncorrected")])), Some(0.0));
        assert_eq!(value(&p, "nvidia.gpu.pcie.replay", &g(&[])), Some(2.0));
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "ok")])), Some(1.0));
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "degraded")])), Some(0.0));
        assert_eq!(value(&p, "hw.status", &g(&[("hw.state", "failed")])), Some(0.0));
        assert!(of(&p, "nvidia.gpu.process.memory.usage").is_empty(), "idle GPU");
        assert!(of(&p, "nvidia.gpu.mig.memory.usage").is_empty(), "MIG is off");
        // The second GPU is reported apart, under its own identity.
        assert_eq!(value(&p, "hw.temperature", &at(1, &[("hw.sensor_location", "gpu")])), Some(50.0));

        for (m, k) in [
            ("hw.gpu.io", Kind::Counter),
            ("hw.energy", Kind::Counter),
            ("hw.errors", Kind::Counter),
            ("nvidia.gpu.pcie.replay", Kind::Counter),
            ("hw.gpu.memory.usage", Kind::UpDownCounter),
            ("hw.status", Kind::UpDownCounter),
            ("nvidia.gpu.count", Kind::UpDownCounter),
            ("hw.power", Kind::Gauge),
            ("hw.gpu.utilization", Kind::Gauge),
        ] {
            assert_eq!(kind(&p, m), Some(k), "{m}");
        }
        for (m, u) in [
            ("hw.gpu.utilization", "1"),
            ("hw.gpu.memory.usage", "By"),
            ("hw.gpu.io", "By"),
            ("hw.power", "W"),
            ("hw.energy", "J"),
            ("hw.temperature", "Cel"),
            ("nvidia.gpu.clock.sm", "Hz"),
            ("hw.errors", "{error}"),
        ] {
            assert_eq!(r.h.unit(m), Some(u), "{m}");
        }
    }

    #[test]
    fn a_call_a_gpu_does_not_support_is_made_once_and_not_logged() {
        let gpu = FakeGpu::h100(0).without(&["temperature", "encoder_utilization", "field:82", "mig_enabled"]);
        let fake = FakeNvml::with(vec![gpu]);
        let mut r = Rig::new(fake.clone());
        let (p, logs) = capture_logs(|| {
            r.tick();
            r.after(10);
            r.after(10)
        });
        assert_eq!(fake.calls(0, "temperature"), 1);
        assert_eq!(fake.calls(0, "encoder_utilization"), 1);
        assert_eq!(fake.calls(0, "mig_enabled"), 1);
        assert_eq!(fake.calls(0, "fan_count"), 1, "fans are counted once, at enumeration");
        assert_eq!(fake.calls(0, "fan_speed"), 0, "a fanless GPU is never asked for fan speed");
        assert_eq!(fake.calls(0, "utilization"), 3);
        assert!(of(&p, "hw.temperature").is_empty());
        assert_eq!(value(&p, "hw.gpu.utilization", &at(0, &[("hw.gpu.task", "encoder")])), None);
        assert_eq!(value(&p, "hw.gpu.utilization", &at(0, &[("hw.gpu.task", "decoder")])), Some(0.07));
        assert_eq!(value(&p, "hw.gpu.io", &at(0, &[("network.io.direction", "receive")])), Some(2000.0));
        assert!(!logs.contains("WARN") && !logs.contains("not supported"), "logs: {logs}");
    }

    #[test]
    fn field_values_are_not_requested_once_every_field_is_known_unsupported() {
        let gpu = FakeGpu::h100(0).without(&["field:82", "field:197", "field:198"]);
        let fake = FakeNvml::with(vec![gpu]);
        let mut r = Rig::new(fake.clone());
        r.tick();
        let p = r.after(10);
        assert_eq!(fake.calls(0, "field_values"), 1);
        assert!(of(&p, "hw.gpu.io").is_empty());
    }

    #[test]
    fn pcie_io_off_leaves_the_pcie_counters_out() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let config = GpuConfig { pcie_io: false, ..GpuConfig::default() };
        let mut r = Rig::with(fake, config, HostPaths::under("/nonexistent-metricsd-test"));
        let p = r.tick();
        assert!(of(&p, "hw.gpu.io").is_empty());
        assert_eq!(value(&p, "hw.temperature", &at(0, &[("hw.sensor_location", "memory")])), Some(41.0));
    }

    #[test]
    fn the_u32_pcie_byte_counters_wrap_into_a_u64_total() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        fake.state().gpus[0].pcie_tx = 4_294_967_000;
        let mut r = Rig::new(fake.clone());
        let tx = at(0, &[("network.io.direction", "transmit")]);
        assert_eq!(value(&r.tick(), "hw.gpu.io", &tx), Some(4_294_967_000.0));
        fake.state().gpus[0].pcie_tx = 200; // wrapped: 296 bytes to 2^32, then 200
        assert_eq!(value(&r.after(10), "hw.gpu.io", &tx), Some(4_294_967_496.0));
        fake.state().gpus[0].pcie_tx = 1200;
        assert_eq!(value(&r.after(10), "hw.gpu.io", &tx), Some(4_294_968_496.0));
        let rx = at(0, &[("network.io.direction", "receive")]);
        assert_eq!(value(&r.after(10), "hw.gpu.io", &rx), Some(2000.0));
    }

    #[test]
    fn wrap_counter_takes_u64_readings_as_they_are() {
        let mut w = WrapCounter::default();
        assert_eq!(w.update(FieldValue::U32(u32::MAX)), u32::MAX as u64);
        assert_eq!(w.update(FieldValue::U32(0)), u32::MAX as u64 + 1);
        assert_eq!(w.update(FieldValue::U64(10_000_000_000)), 10_000_000_000);
    }

    #[test]
    fn energy_is_read_every_energy_interval_and_held_in_between() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let mut r = Rig::new(fake.clone());
        assert_eq!(value(&r.tick(), "hw.energy", &at(0, &[])), Some(2147.197));
        fake.state().gpus[0].energy_mj = 3_000_000;
        assert_eq!(value(&r.after(30), "hw.energy", &at(0, &[])), Some(2147.197));
        assert_eq!(fake.calls(0, "total_energy"), 1);
        assert_eq!(value(&r.after(30), "hw.energy", &at(0, &[])), Some(3000.0));
        assert_eq!(fake.calls(0, "total_energy"), 2);

        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let config = GpuConfig { energy_interval: ConfigDuration::secs(0), ..GpuConfig::default() };
        let mut r = Rig::with(fake.clone(), config, HostPaths::under("/nonexistent-metricsd-test"));
        r.tick();
        r.after(1);
        assert_eq!(fake.calls(0, "total_energy"), 2);
    }

    #[test]
    fn a_lost_gpu_reports_only_failed_logs_once_and_returns_after_reinit() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0), FakeGpu::h100(1)]);
        let mut r = Rig::new(fake.clone());
        let (_, logs) = capture_logs(|| {
            assert!(points_of_gpu(&r.tick(), UUID0).len() > 20);

            fake.state().gpus[0].lost = true;
            for _ in 0..3 {
                let p = r.after(10);
                let gpu0 = points_of_gpu(&p, UUID0);
                assert!(gpu0.iter().all(|p| p.0 == "hw.status"), "{gpu0:?}");
                assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "failed")])), Some(1.0));
                assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "ok")])), Some(0.0));
                assert_eq!(value(&p, "hw.temperature", &at(1, &[("hw.sensor_location", "gpu")])), Some(36.0));
                assert_eq!(value(&p, "nvidia.gpu.count", &[]), Some(2.0));
            }
            assert_eq!(fake.state().inits, 1, "no re-init before retry_interval");
            assert_eq!(fake.calls(0, "utilization"), 2, "a lost GPU is not asked again");

            fake.state().gpus[0].lost = false;
            let p = r.after(40); // 70 s after the loss
            assert_eq!(fake.state().inits, 2);
            assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "ok")])), Some(1.0));
            assert_eq!(value(&p, "hw.temperature", &at(0, &[("hw.sensor_location", "gpu")])), Some(36.0));
        });
        assert_eq!(logs.matches("GPU is lost").count(), 1, "{logs}");
        assert_eq!(logs.matches("GPU answers again").count(), 1, "{logs}");
    }

    #[test]
    fn a_gpu_still_lost_at_reinit_stays_failed_and_retries_back_off() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let mut r = Rig::new(fake.clone());
        r.tick();
        fake.state().gpus[0].lost = true;
        r.after(1); // lost at t=1: re-init at t=61
        let p = r.after(60);
        assert_eq!(fake.state().inits, 2);
        assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "failed")])), Some(1.0));
        r.after(100); // t=161: the next retry is 120 s after t=61
        assert_eq!(fake.state().inits, 2);
        r.after(20);
        assert_eq!(fake.state().inits, 3);
        // A GPU gone from the bus entirely is no longer enumerated, and no longer reported.
        fake.state().gpus.clear();
        let p = r.after(240);
        assert_eq!(fake.state().inits, 4);
        assert!(points_of_gpu(&p, UUID0).is_empty());
        assert_eq!(value(&p, "nvidia.gpu.count", &[]), Some(0.0));
    }

    #[test]
    fn without_a_driver_nothing_is_reported_nothing_fails_and_init_is_retried_with_backoff() {
        let fake = FakeNvml::no_driver();
        let mut r = Rig::new(fake.clone());
        let inits = || fake.state().inits;
        let (_, logs) = capture_logs(|| {
            assert!(r.tick().is_empty());
            assert_eq!(inits(), 1);
            assert!(r.after(30).is_empty());
            assert_eq!(inits(), 1);
            assert!(r.after(30).is_empty()); // t=60
            assert_eq!(inits(), 2);
            assert!(r.after(60).is_empty()); // t=120: next try at 60+120
            assert_eq!(inits(), 2);
            r.after(60); // t=180
            assert_eq!(inits(), 3);
            {
                let mut s = fake.state();
                s.driver = true;
                s.gpus = vec![FakeGpu::h100(0)];
            }
            assert!(r.after(220).is_empty()); // t=400: next try at 180+240
            let p = r.after(20);
            assert_eq!(inits(), 4);
            assert_eq!(value(&p, "nvidia.gpu.count", &[]), Some(1.0));
            assert_eq!(value(&p, "hw.power", &at(0, &[])), Some(115.35));
        });
        assert_eq!(logs.matches("No NVIDIA driver found; GPU collector reports nothing").count(), 1, "{logs}");
        assert!(logs.contains(" INFO "), "{logs}");
        assert!(!logs.contains("WARN"), "{logs}");
    }

    #[test]
    fn a_driver_that_goes_away_while_running_stops_reporting_until_it_is_back() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let mut r = Rig::new(fake.clone());
        let (_, logs) = capture_logs(|| {
            assert!(!r.tick().is_empty());
            fake.state().driver = false;
            assert!(r.after(10).is_empty());
            assert!(r.after(10).is_empty());
            fake.state().driver = true;
            assert!(r.after(10).is_empty(), "retried after retry_interval, not at once");
            let p = r.after(40);
            assert_eq!(fake.state().inits, 2);
            assert_eq!(value(&p, "hw.power", &at(0, &[])), Some(115.35));
        });
        assert_eq!(logs.matches("NVIDIA driver went away").count(), 1, "{logs}");
    }

    #[test]
    fn hw_status_is_degraded_while_the_hardware_slows_itself_down() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        fake.state().gpus[0].throttle = throttle::HW_THERMAL_SLOWDOWN | throttle::SW_POWER_CAP;
        let mut r = Rig::new(fake.clone());
        let p = r.tick();
        assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "degraded")])), Some(1.0));
        assert_eq!(value(&p, "hw.status", &at(0, &[("hw.state", "ok")])), Some(0.0));
        let reason = |r| at(0, &[("nvidia.gpu.throttle.reason", r)]);
        assert_eq!(value(&p, "nvidia.gpu.throttle", &reason("hw_thermal_slowdown")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &reason("sw_power_cap")), Some(1.0));
        assert_eq!(value(&p, "nvidia.gpu.throttle", &reason("gpu_idle")), Some(0.0));
        // A power cap alone is normal operation.
        fake.state().gpus[0].throttle = throttle::SW_POWER_CAP;
        assert_eq!(value(&r.after(10), "hw.status", &at(0, &[("hw.state", "ok")])), Some(1.0));
    }

    #[test]
    fn fans_are_reported_per_fan_where_a_gpu_has_them() {
        let mut gpu = FakeGpu::h100(0);
        gpu.fans = vec![40, 45];
        let mut r = Rig::new(FakeNvml::with(vec![gpu]));
        let p = r.tick();
        assert_eq!(value(&p, "nvidia.gpu.fan.speed", &at(0, &[("nvidia.gpu.fan.index", "0")])), Some(0.40));
        assert_eq!(value(&p, "nvidia.gpu.fan.speed", &at(0, &[("nvidia.gpu.fan.index", "1")])), Some(0.45));
    }

    const CONTAINER: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn proc_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("proc/4242/comm", "python3\n");
        write(
            "proc/4242/cgroup",
            &format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice/cri-containerd-{CONTAINER}.scope\n"
            ),
        );
        write("proc/777/comm", "Xorg\n");
        write("proc/777/cgroup", "0::/system.slice/display-manager.service\n");
        dir
    }

    fn proc(pid: u32, mib: Option<u64>) -> GpuProcess {
        GpuProcess { pid, used_memory: mib.map(|m| m << 20), ..GpuProcess::default() }
    }

    #[test]
    fn per_process_memory_names_the_executable_container_and_pod_from_proc() {
        let dir = proc_tree();
        let mut gpu = FakeGpu::h100(0);
        gpu.compute = vec![proc(4242, Some(1024)), proc(555, Some(10)), proc(999, None)];
        gpu.graphics = vec![proc(777, Some(100)), proc(4242, Some(4))];
        let fake = FakeNvml::with(vec![gpu]);
        let mut r = Rig::with(fake, GpuConfig::default(), HostPaths::under(dir.path()));
        let p = r.tick();
        let m = "nvidia.gpu.process.memory.usage";
        assert_eq!(
            value(
                &p,
                m,
                &at(
                    0,
                    &[
                        ("process.pid", "4242"),
                        ("process.executable.name", "python3"),
                        ("container.id", CONTAINER),
                        ("k8s.pod.uid", "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"),
                    ]
                )
            ),
            Some(1024.0 * 1048576.0),
            "{:?}",
            of(&p, m)
        );
        assert_eq!(value(&p, m, &at(0, &[("process.pid", "777"), ("process.executable.name", "Xorg")])), Some(100.0 * 1048576.0));
        // Gone from /proc by the time it was read: reported with what is known.
        assert_eq!(value(&p, m, &at(0, &[("process.pid", "555")])), Some(10.0 * 1048576.0));
        assert_eq!(of(&p, m).len(), 3, "a process in both lists counts once; one without a figure not at all");
    }

    #[test]
    fn max_processes_keeps_those_using_the_most_memory() {
        let mut gpu = FakeGpu::h100(0);
        gpu.compute = vec![proc(1, Some(100)), proc(2, Some(300)), proc(3, Some(200))];
        let config = GpuConfig { max_processes: 2, ..GpuConfig::default() };
        let mut r = Rig::with(FakeNvml::with(vec![gpu]), config, HostPaths::under("/nonexistent-metricsd-test"));
        let p = r.tick();
        let pids: Vec<&str> =
            of(&p, "nvidia.gpu.process.memory.usage").iter().map(|p| p.1.iter().find(|(k, _)| k == "process.pid").unwrap().1.as_str()).collect();
        assert_eq!(pids.len(), 2);
        assert!(pids.contains(&"2") && pids.contains(&"3"), "{pids:?}");

        let config = GpuConfig { processes: false, ..GpuConfig::default() };
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        let mut r = Rig::with(fake.clone(), config, HostPaths::under("/nonexistent-metricsd-test"));
        r.tick();
        assert_eq!(fake.calls(0, "compute_processes"), 0);
    }

    #[test]
    fn mig_devices_report_their_memory_with_instance_ids() {
        let mut gpu = FakeGpu::h100(0);
        let mem = |total: u64, used: u64| Memory { total, used, free: total - used, reserved: 0 };
        gpu.mig = Some(vec![
            MigDevice { uuid: "MIG-aaaa".into(), gpu_instance_id: 1, compute_instance_id: 0, memory: mem(10 << 30, 1 << 30) },
            MigDevice { uuid: "MIG-bbbb".into(), gpu_instance_id: 2, compute_instance_id: 0, memory: mem(20 << 30, 0) },
        ]);
        gpu.compute = vec![GpuProcess { pid: 31, used_memory: Some(1 << 30), gpu_instance_id: Some(1), compute_instance_id: Some(0) }];
        let mut r = Rig::new(FakeNvml::with(vec![gpu]));
        let p = r.tick();
        let a = at(0, &[("gpu.mig.uuid", "MIG-aaaa"), ("gpu.mig.instance_id", "1"), ("gpu.mig.compute_instance_id", "0")]);
        assert_eq!(value(&p, "nvidia.gpu.mig.memory.usage", &a), Some((1u64 << 30) as f64));
        assert_eq!(value(&p, "nvidia.gpu.mig.memory.limit", &a), Some((10u64 << 30) as f64));
        let b = at(0, &[("gpu.mig.uuid", "MIG-bbbb"), ("gpu.mig.instance_id", "2"), ("gpu.mig.compute_instance_id", "0")]);
        assert_eq!(value(&p, "nvidia.gpu.mig.memory.limit", &b), Some((20u64 << 30) as f64));
        let pa = at(0, &[("process.pid", "31"), ("gpu.mig.instance_id", "1"), ("gpu.mig.compute_instance_id", "0")]);
        assert_eq!(value(&p, "nvidia.gpu.process.memory.usage", &pa), Some((1u64 << 30) as f64));
    }

    #[test]
    fn the_config_section_has_documented_defaults_and_rejects_unknown_keys() {
        let c: GpuConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, GpuConfig::default());
        assert!(c.processes && c.mig && c.pcie_io);
        assert_eq!(c.max_processes, 64);
        assert_eq!(c.energy_interval.get(), Duration::from_secs(60));
        assert_eq!(c.retry_interval.get(), Duration::from_secs(60));
        let c: GpuConfig = serde_json::from_str(
            r#"{"enabled": true, "energy_interval": "10s", "max_processes": 8, "library_path": "/usr/local/nvidia/lib64/libnvidia-ml.so.1"}"#,
        )
        .unwrap();
        assert_eq!((c.enabled, c.max_processes), (Some(true), 8));
        assert_eq!(c.energy_interval.get(), Duration::from_secs(10));
        let e = serde_json::from_str::<GpuConfig>(r#"{"bogus": 1}"#).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn the_collector_is_built_only_when_switched_on() {
        let names = |json: &str| {
            let config: crate::config::Config = serde_json::from_str(json).unwrap();
            let v = crate::collectors::build(&config.collector, &HostPaths::default(), &TickClock::default());
            v.iter().any(|c| c.name() == "gpu")
        };
        assert!(!names("{}"));
        assert!(names(r#"{"collector": {"enable_gpu": true}}"#));
        assert!(!names(r#"{"collector": {"enable_gpu": true, "gpu": {"enabled": false}}}"#));
        assert!(names(r#"{"collector": {"gpu": {"enabled": true}}}"#));
    }

    #[test]
    fn the_metric_table_in_the_docs_lists_every_metric_with_its_prometheus_name() {
        use crate::translate::{metric_name, NameKind};
        let docs = include_str!("mod.rs");
        let mut rows = 0;
        for line in docs.lines().filter(|l| l.starts_with("//! | `")) {
            let cells: Vec<&str> = line.trim_start_matches("//! ").split(" | ").collect();
            let (name, instrument, unit, prom) = (cells[0], cells[1], cells[2], cells[cells.len() - 1]);
            let Some(name) = name.strip_prefix("| `").and_then(|n| n.strip_suffix('`')) else {
                continue;
            };
            if !name.contains('.') || prom.contains("PromQL") {
                continue; // the metricsd table
            }
            let kind = match instrument {
                "Gauge" => NameKind::Gauge,
                "Counter" => NameKind::MonotonicCounter,
                "UpDownCounter" => NameKind::NonMonotonicCounter,
                other => panic!("{name}: instrument {other}"),
            };
            let prom = prom.trim_end_matches(" |").trim_matches('`');
            assert_eq!(metric_name(name, unit, kind), prom, "{name}");
            rows += 1;
        }
        assert_eq!(rows, 23);

        // Every metric a fully featured GPU reports is in the table.
        let mut gpu = FakeGpu::h100(0);
        gpu.fans = vec![30];
        gpu.compute = vec![proc(1, Some(1))];
        gpu.mig = Some(vec![MigDevice { uuid: "MIG-a".into(), ..MigDevice::default() }]);
        let p = Rig::new(FakeNvml::with(vec![gpu])).tick();
        let mut names: Vec<&str> = p.iter().map(|p| p.0.as_str()).collect();
        names.dedup();
        for n in names {
            assert!(docs.contains(&format!("//! | `{n}` |")), "{n} is missing from the table");
        }
    }
}
