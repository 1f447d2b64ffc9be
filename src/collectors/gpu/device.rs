//! The seam between the GPU collector and the driver: a small trait with index-based calls,
//! implemented by NVML ([`super::nvml::NvmlBackend`]) and, in tests, by a fake.
//!
//! Every call returns a [`GpuError`] that tells the collector what to do next: stop calling
//! ([`GpuError::NotSupported`]), mark the GPU failed and re-initialise later
//! ([`GpuError::Lost`], [`GpuError::DriverUnavailable`]), or skip the value this tick
//! ([`GpuError::Other`]). Units are NVML's own (percent, milliwatts, millijoules, MHz); the
//! collector converts them.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Why a driver call gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The device does not offer this (NVML `NotSupported`, `FunctionNotFound`, a symbol missing
    /// from an older driver, `InvalidArg` for fans of a fanless card). Learned once per device.
    #[error("not supported by this GPU or driver")]
    NotSupported,
    /// The GPU fell off the bus or stopped answering (NVML `GpuLost`, `ResetRequired`,
    /// `Unknown`).
    #[error("GPU is lost (fell off the bus or stopped answering)")]
    Lost,
    /// No usable driver: the library cannot be loaded, the kernel module is not loaded, or the
    /// library and kernel module versions differ (after a driver upgrade without reboot).
    #[error("NVIDIA driver unavailable: {0}")]
    DriverUnavailable(String),
    /// Anything else (no permission, timeout, …), with the driver's message.
    #[error("{0}")]
    Other(String),
}

/// What identifies a GPU, read once when devices are enumerated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// NVML's index, as `nvidia-smi` numbers GPUs (ordered by PCI bus id by default).
    pub index: u32,
    /// `GPU-xxxxxxxx-…`, stable across reboots and index changes.
    pub uuid: String,
    /// Product name, `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// PCI bus id, `00000000:00:06.0`.
    pub pci_bus_id: String,
    /// Board serial number where the board has an infoROM that carries one.
    pub serial: Option<String>,
    /// The driver's version (`580.159.04`), the same for every GPU of the host.
    pub driver_version: Option<String>,
}

/// `utilization_rates()`: percent of the last sample period (1/6 s to 1 s depending on the
/// product) during which a kernel ran / device memory was read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Utilization {
    /// Percent of time one or more kernels were running.
    pub gpu: u32,
    /// Percent of time the memory controller was busy (not how much memory is used).
    pub memory: u32,
}

/// `memory_info()` in bytes: `total = used + free + reserved` (NVML's `_v2` call, which keeps
/// driver-reserved memory out of `used`, as `nvidia-smi` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Installed device memory.
    pub total: u64,
    /// Allocated by processes and the driver's per-context allocations.
    pub used: u64,
    /// Unallocated.
    pub free: u64,
    /// Reserved by the driver and firmware, never available to processes.
    pub reserved: u64,
}

/// Which clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// Streaming multiprocessor clock.
    Sm,
    /// Memory clock.
    Memory,
}

/// Which ECC error counter (always the volatile one: since the driver was loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EccKind {
    /// Single-bit errors, corrected by ECC.
    Corrected,
    /// Double-bit errors: data was lost.
    Uncorrected,
}

/// Which process list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// CUDA and other compute contexts.
    Compute,
    /// Graphics contexts (X, Vulkan, OpenGL).
    Graphics,
}

/// One process with a context on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuProcess {
    /// Process id, in the PID namespace of the driver (the host's).
    pub pid: u32,
    /// Device memory it uses, when the driver can tell (not under Windows WDDM).
    pub used_memory: Option<u64>,
    /// MIG GPU instance it runs on.
    pub gpu_instance_id: Option<u32>,
    /// MIG compute instance it runs on.
    pub compute_instance_id: Option<u32>,
}

/// One sample of `nvmlDeviceGetProcessUtilization`: what one process used of the GPU during
/// one sample period (1/6 s to 1 s, depending on the product), in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessUtilization {
    /// Process id (the host's).
    pub pid: u32,
    /// When the sample was taken, CPU µs.
    pub timestamp_us: u64,
    /// SM (compute and 3D) busy percent.
    pub sm: u32,
    /// Memory controller busy percent.
    pub memory: u32,
    /// Video encoder busy percent.
    pub encoder: u32,
    /// Video decoder busy percent.
    pub decoder: u32,
}

/// One MIG device (a GPU instance's compute instance) of a GPU in MIG mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigDevice {
    /// `MIG-xxxxxxxx-…`.
    pub uuid: String,
    /// GPU instance id.
    pub gpu_instance_id: u32,
    /// Compute instance id within the GPU instance.
    pub compute_instance_id: u32,
    /// Its share of device memory.
    pub memory: Memory,
}

/// A value from `nvmlDeviceGetFieldValues`, in the type NVML chose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue {
    /// 32-bit unsigned (the PCIe byte counters 197/198: they wrap at 4 GiB).
    U32(u32),
    /// 64-bit unsigned.
    U64(u64),
    /// 64-bit signed.
    I64(i64),
    /// Double.
    F64(f64),
}

impl FieldValue {
    /// The value as f64 (for gauges).
    pub fn as_f64(self) -> f64 {
        match self {
            FieldValue::U32(v) => v as f64,
            FieldValue::U64(v) => v as f64,
            FieldValue::I64(v) => v as f64,
            FieldValue::F64(v) => v,
        }
    }
}

/// One critical XID error (`nvmlEventTypeXidCriticalError`): the driver's error code for a GPU
/// fault (79: fell off the bus, 48: double-bit ECC, 13: graphics engine exception, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidEvent {
    /// NVML index of the GPU.
    pub index: u32,
    /// Its UUID.
    pub uuid: String,
    /// The XID code.
    pub code: u64,
}

/// Which NVLink error counter (`nvmlDeviceGetNvLinkErrorCounter`), in reporting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvLinkErrorKind {
    /// Receive flow-control digit CRC errors.
    CrcFlit = 0,
    /// Receive data CRC errors.
    CrcData = 1,
    /// Transmit replays.
    Replay = 2,
    /// Link recoveries.
    Recovery = 3,
}

impl NvLinkErrorKind {
    /// Every kind with its `error.type` value.
    pub const ALL: [(NvLinkErrorKind, &'static str); 4] = [
        (NvLinkErrorKind::CrcFlit, "crc_flit"),
        (NvLinkErrorKind::CrcData, "crc_data"),
        (NvLinkErrorKind::Replay, "replay"),
        (NvLinkErrorKind::Recovery, "recovery"),
    ];
}

/// NVML field ids used by the collector (`nvml.h`'s `NVML_FI_DEV_*`).
pub mod field {
    /// `NVML_FI_DEV_MEMORY_TEMP`: HBM temperature, °C.
    pub const MEMORY_TEMP: u32 = 82;
    /// `NVML_FI_DEV_PCIE_COUNT_TX_BYTES`: PCIe bytes sent by the GPU, u32, wraps.
    pub const PCIE_TX_BYTES: u32 = 197;
    /// `NVML_FI_DEV_PCIE_COUNT_RX_BYTES`: PCIe bytes received by the GPU, u32, wraps.
    pub const PCIE_RX_BYTES: u32 = 198;
    /// `NVML_FI_DEV_RETIRED_SBE`: pages retired for multiple single-bit ECC errors.
    pub const RETIRED_SBE: u32 = 29;
    /// `NVML_FI_DEV_RETIRED_DBE`: pages retired for a double-bit ECC error.
    pub const RETIRED_DBE: u32 = 30;
    /// `NVML_FI_DEV_RETIRED_PENDING`: 1 while a page waits to be retired at the next reset.
    pub const RETIRED_PENDING: u32 = 31;
    /// `NVML_FI_DEV_REMAPPED_COR`: rows remapped for correctable errors.
    pub const REMAPPED_COR: u32 = 142;
    /// `NVML_FI_DEV_REMAPPED_UNC`: rows remapped for uncorrectable errors.
    pub const REMAPPED_UNC: u32 = 143;
    /// `NVML_FI_DEV_REMAPPED_PENDING`: 1 while a remapping waits for the next reset.
    pub const REMAPPED_PENDING: u32 = 144;
    /// `NVML_FI_DEV_REMAPPED_FAILURE`: 1 when a remapping failed (the GPU needs service).
    pub const REMAPPED_FAILURE: u32 = 145;
    /// `NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX`: NVLink data sent, all links, KiB.
    pub const NVLINK_TX_KIB: u32 = 138;
    /// `NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX`: NVLink data received, all links, KiB.
    pub const NVLINK_RX_KIB: u32 = 139;
    /// `NVML_NVLINK_MAX_LINKS`: links probed per GPU.
    pub const NVLINK_MAX_LINKS: u32 = 18;
}

/// NVML's clock throttle (since CUDA 12: "clocks event") reason bits
/// (`nvmlClocksThrottleReason*`), and the names the collector reports them under.
pub mod throttle {
    /// Nothing runs; clocks are lowered to save power.
    pub const GPU_IDLE: u64 = 0x1;
    /// Clocks limited by the application clocks setting.
    pub const APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;
    /// Software power cap (the power limit).
    pub const SW_POWER_CAP: u64 = 0x4;
    /// Hardware slowdown (temperature, power brake or power supply), clocks cut by half or more.
    pub const HW_SLOWDOWN: u64 = 0x8;
    /// Clocks synchronised with other GPUs of a sync-boost group.
    pub const SYNC_BOOST: u64 = 0x10;
    /// Software thermal slowdown: GPU or memory temperature above its maximum operating point.
    pub const SW_THERMAL_SLOWDOWN: u64 = 0x20;
    /// Hardware thermal slowdown: temperature too high.
    pub const HW_THERMAL_SLOWDOWN: u64 = 0x40;
    /// Hardware power brake: an external signal (power supply) asked for a slowdown.
    pub const HW_POWER_BRAKE_SLOWDOWN: u64 = 0x80;
    /// Clocks lowered to match the display clock.
    pub const DISPLAY_CLOCK_SETTING: u64 = 0x100;

    /// Every reason with its `nvidia.gpu.throttle.reason` value, in reporting order.
    pub const REASONS: [(u64, &str); 9] = [
        (GPU_IDLE, "gpu_idle"),
        (APPLICATIONS_CLOCKS_SETTING, "applications_clocks_setting"),
        (SW_POWER_CAP, "sw_power_cap"),
        (HW_SLOWDOWN, "hw_slowdown"),
        (SYNC_BOOST, "sync_boost"),
        (SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        (HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
        (HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake_slowdown"),
        (DISPLAY_CLOCK_SETTING, "display_clock_setting"),
    ];

    /// Reasons that mean the hardware is protecting itself: `hw.status` is `degraded` while
    /// any is active.
    pub const DEGRADED: u64 = HW_SLOWDOWN | SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN | HW_POWER_BRAKE_SLOWDOWN;
}

/// A GPU driver: NVML, or a fake in tests. Devices are addressed by their enumeration index
/// (`0..device_count()`), valid until the next [`GpuBackend::init`].
///
/// Every call blocks (NVML calls are blocking C calls): call them from the collector's
/// `refresh`, which runs on a blocking thread, never from an async task or an instrument
/// callback.
pub trait GpuBackend: Send {
    /// Loads the driver library and initialises it; a second call re-initialises (after a
    /// driver reload or a lost GPU), invalidating earlier device indexes.
    fn init(&mut self) -> Result<(), GpuError>;
    /// Releases the driver (NVML's `nvmlShutdown`). Calls after this fail with
    /// [`GpuError::DriverUnavailable`] until the next [`GpuBackend::init`].
    fn shutdown(&mut self);
    /// The driver version (`580.159.04`), for the log.
    fn driver_version(&self) -> Result<String, GpuError>;
    /// How many GPUs the driver sees.
    fn device_count(&self) -> Result<u32, GpuError>;
    /// The GPU's identity.
    fn identity(&self, dev: u32) -> Result<Identity, GpuError>;
    /// GPU and memory-controller busy percent.
    fn utilization(&self, dev: u32) -> Result<Utilization, GpuError>;
    /// Video encoder busy percent.
    fn encoder_utilization(&self, dev: u32) -> Result<u32, GpuError>;
    /// Video decoder busy percent.
    fn decoder_utilization(&self, dev: u32) -> Result<u32, GpuError>;
    /// Device memory in bytes.
    fn memory(&self, dev: u32) -> Result<Memory, GpuError>;
    /// GPU die temperature, °C.
    fn temperature(&self, dev: u32) -> Result<u32, GpuError>;
    /// Power draw, mW.
    fn power_usage(&self, dev: u32) -> Result<u32, GpuError>;
    /// Enforced power limit, mW.
    fn power_limit(&self, dev: u32) -> Result<u32, GpuError>;
    /// Energy since the driver was loaded, mJ. Slow: about 4 ms on an H100.
    fn total_energy(&self, dev: u32) -> Result<u64, GpuError>;
    /// Current clock, MHz.
    fn clock(&self, dev: u32, clock: ClockKind) -> Result<u32, GpuError>;
    /// Number of fans (0 on datacenter GPUs).
    fn fan_count(&self, dev: u32) -> Result<u32, GpuError>;
    /// Intended fan speed, percent of maximum.
    fn fan_speed(&self, dev: u32, fan: u32) -> Result<u32, GpuError>;
    /// Performance state: 0 (P0, maximum) to 15 (minimum).
    fn performance_state(&self, dev: u32) -> Result<u32, GpuError>;
    /// Active clock throttle reasons, as [`throttle`] bits.
    fn throttle_reasons(&self, dev: u32) -> Result<u64, GpuError>;
    /// ECC errors since the driver was loaded.
    fn ecc_errors(&self, dev: u32, kind: EccKind) -> Result<u64, GpuError>;
    /// PCIe replays since the driver was loaded.
    fn pcie_replay_counter(&self, dev: u32) -> Result<u32, GpuError>;
    /// Reads several NVML field values in one driver call: `out[i]` is the result for `ids[i]`.
    /// The outer error is for the call as a whole.
    fn field_values(&self, dev: u32, ids: &[u32], out: &mut Vec<Result<FieldValue, GpuError>>) -> Result<(), GpuError>;
    /// Appends the processes with a context of `kind` on the GPU to `out`.
    fn processes(&self, dev: u32, kind: ProcessKind, out: &mut Vec<GpuProcess>) -> Result<(), GpuError>;
    /// Whether MIG mode is currently enabled.
    fn mig_enabled(&self, dev: u32) -> Result<bool, GpuError>;
    /// Appends the GPU's MIG devices to `out`.
    fn mig_devices(&self, dev: u32, out: &mut Vec<MigDevice>) -> Result<(), GpuError>;
    /// Appends the per-process utilization samples taken after `since_us` (CPU µs; 0: every
    /// sample the driver keeps) to `out`.
    fn process_utilization(&self, dev: u32, since_us: u64, out: &mut Vec<ProcessUtilization>) -> Result<(), GpuError>;
    /// Whether NVLink `link` is active; `NotSupported` for a link the GPU does not have.
    fn nvlink_active(&self, dev: u32, link: u32) -> Result<bool, GpuError>;
    /// An NVLink error counter of `link`, since the driver was loaded.
    fn nvlink_errors(&self, dev: u32, link: u32, kind: NvLinkErrorKind) -> Result<u64, GpuError>;
    /// A second, independent backend of the same kind (not initialised), for a helper thread
    /// (XID events, the PCIe sampler): each thread owns its own driver handle.
    fn fresh(&self) -> Box<dyn GpuBackend>;
    /// Registers every GPU that offers them for critical XID events and waits for them, at
    /// most `poll` at a time, calling `on_event` for each, until `stop` is set (so it returns
    /// within about `poll` of that). `Err(NotSupported)` when no GPU offers XID events. Needs
    /// [`GpuBackend::init`] first.
    fn watch_xid(&self, stop: &AtomicBool, poll: Duration, on_event: &mut dyn FnMut(XidEvent)) -> Result<(), GpuError>;
}
