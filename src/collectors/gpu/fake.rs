//! A fake driver for the GPU collector's tests: GPUs whose values the test sets, a driver that
//! can be missing, unloaded or reloaded, GPUs that get lost, and a count of every call.
//!
//! Defaults are what NVML returned on an H100 80GB HBM3 (see docs/gpu.md), with a busy GPU's
//! utilization and memory so that conversions
//! are visible.

use super::device::ProcessUtilization;
use super::device::{
    field, throttle, ClockKind, EccKind, FieldValue, GpuBackend, GpuError, GpuProcess, Identity, Memory, MigDevice, NvLinkErrorKind, ProcessKind, Utilization,
    XidEvent,
};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One fake GPU. Calls named in `unsupported` (the trait method's name, or `field:<id>`) answer
/// `NotSupported`; every call of a `lost` GPU answers `Lost`.
#[derive(Debug, Clone)]
pub struct FakeGpu {
    pub identity: Identity,
    pub lost: bool,
    pub unsupported: HashSet<String>,
    pub utilization: Utilization,
    pub encoder: u32,
    pub decoder: u32,
    pub memory: Memory,
    pub temperature: u32,
    pub memory_temperature: u32,
    pub power_mw: u32,
    pub power_limit_mw: u32,
    pub energy_mj: u64,
    pub sm_mhz: u32,
    pub memory_mhz: u32,
    pub fans: Vec<u32>,
    pub pstate: u32,
    pub throttle: u64,
    pub ecc_corrected: u64,
    pub ecc_uncorrected: u64,
    pub pcie_replay: u32,
    pub pcie_tx: u32,
    pub pcie_rx: u32,
    /// Bytes the transmit counter moves on after each read of it (a load; wraps as NVML's).
    pub pcie_tx_step: u32,
    /// Per-process utilization samples; `process_utilization` answers those after `since`.
    pub util_samples: Vec<ProcessUtilization>,
    /// NVLink links: active, error counters (crc_flit, crc_data, replay, recovery); none on
    /// the single-GPU H100 VM the defaults come from.
    pub nvlinks: Vec<(bool, [u64; 4])>,
    /// NVLink data sent, received over all links, KiB (field values 138/139).
    pub nvlink_kib: [u64; 2],
    /// Pages retired: multiple single-bit, double-bit; and whether one is pending.
    pub retired: [u64; 2],
    pub retired_pending: bool,
    /// Rows remapped: correctable, uncorrectable; pending and failed flags.
    pub remapped: [u32; 2],
    pub remap_pending: bool,
    pub remap_failed: bool,
    pub compute: Vec<GpuProcess>,
    pub graphics: Vec<GpuProcess>,
    pub mig: Option<Vec<MigDevice>>,
}

impl FakeGpu {
    /// An H100 SXM at NVML index `index`.
    pub fn h100(index: u32) -> Self {
        let total = 85_520_809_984;
        let reserved = 503_316_480;
        let used = 21_474_836_480;
        FakeGpu {
            identity: Identity {
                index,
                uuid: format!("GPU-11899c91-4bd4-1fa3-7e4c-3d6b0b0f00{index:02}"),
                name: "NVIDIA H100 80GB HBM3".into(),
                pci_bus_id: format!("00000000:00:{:02X}.0", 6 + index),
                serial: Some("1752624011542".into()),
                driver_version: Some("580.159.04".into()),
            },
            lost: false,
            unsupported: HashSet::new(),
            utilization: Utilization { gpu: 37, memory: 12 },
            encoder: 5,
            decoder: 7,
            memory: Memory { total, used, free: total - used - reserved, reserved },
            temperature: 36,
            memory_temperature: 41,
            power_mw: 115_350,
            power_limit_mw: 700_000,
            energy_mj: 2_147_197,
            sm_mhz: 1755,
            memory_mhz: 2619,
            fans: Vec::new(),
            pstate: 0,
            throttle: throttle::GPU_IDLE,
            ecc_corrected: 3,
            ecc_uncorrected: 0,
            pcie_replay: 2,
            pcie_tx: 1000,
            pcie_rx: 2000,
            pcie_tx_step: 0,
            util_samples: Vec::new(),
            nvlinks: Vec::new(),
            nvlink_kib: [0, 0],
            retired: [2, 1],
            retired_pending: false,
            remapped: [4, 0],
            remap_pending: false,
            remap_failed: false,
            compute: Vec::new(),
            graphics: Vec::new(),
            mig: None,
        }
    }

    /// Marks calls as not supported (`"temperature"`, `"field:82"`).
    pub fn without(mut self, calls: &[&str]) -> Self {
        self.unsupported.extend(calls.iter().map(|c| c.to_string()));
        self
    }
}

/// The fake driver's state, shared between the backend the collector owns and the test.
#[derive(Debug, Default)]
pub struct FakeState {
    /// `libnvidia-ml.so.1` can be loaded and the kernel module is loaded.
    pub driver: bool,
    /// `init` succeeded and `shutdown` was not called since.
    pub initialised: bool,
    /// Number of `init` calls.
    pub inits: u32,
    pub gpus: Vec<FakeGpu>,
    /// Calls per (GPU index, method name); a helper thread's backend ([`GpuBackend::fresh`])
    /// counts its calls as `helper:<name>`.
    pub calls: BTreeMap<(u32, String), u32>,
    /// Whether the GPUs offer XID events.
    pub xid_supported: bool,
    /// XID events not yet delivered to `watch_xid`.
    pub xid_events: VecDeque<XidEvent>,
}

/// The backend handed to the collector; clones share the state. The flag marks a helper
/// thread's backend (from [`GpuBackend::fresh`]): its `init` is not counted in `inits`.
#[derive(Debug, Clone, Default)]
pub struct FakeNvml(pub Arc<Mutex<FakeState>>, bool);

impl FakeNvml {
    /// A loaded driver with these GPUs.
    pub fn with(gpus: Vec<FakeGpu>) -> Self {
        FakeNvml(Arc::new(Mutex::new(FakeState { driver: true, xid_supported: true, gpus, ..Default::default() })), false)
    }

    /// A host without the driver.
    pub fn no_driver() -> Self {
        FakeNvml::default()
    }

    /// The shared state, to change between ticks.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }

    /// How often `call` was made for GPU `dev`.
    pub fn calls(&self, dev: u32, call: &str) -> u32 {
        self.state().calls.get(&(dev, call.to_string())).copied().unwrap_or(0)
    }

    fn on<R>(&self, dev: u32, call: &str, f: impl FnOnce(&FakeGpu) -> Result<R, GpuError>) -> Result<R, GpuError> {
        let mut s = self.state();
        let name = if self.1 { format!("helper:{call}") } else { call.to_string() };
        *s.calls.entry((dev, name)).or_default() += 1;
        if !s.driver || !s.initialised {
            return Err(GpuError::DriverUnavailable("NVML is not initialised".into()));
        }
        let g = s.gpus.get(dev as usize).ok_or_else(|| GpuError::Other(format!("no GPU {dev}")))?;
        if g.lost {
            return Err(GpuError::Lost);
        }
        if g.unsupported.contains(call) {
            return Err(GpuError::NotSupported);
        }
        f(g)
    }
}

impl GpuBackend for FakeNvml {
    fn init(&mut self) -> Result<(), GpuError> {
        let mut s = self.state();
        if self.1 {
            return if s.driver && s.initialised { Ok(()) } else { Err(GpuError::DriverUnavailable("NVML is not initialised".into())) };
        }
        s.inits += 1;
        s.initialised = s.driver;
        if s.driver {
            Ok(())
        } else {
            Err(GpuError::DriverUnavailable(
                "a libloading error occurred: libnvidia-ml.so.1: cannot open shared object file: \
                 No such file or directory"
                    .into(),
            ))
        }
    }

    fn shutdown(&mut self) {
        if !self.1 {
            self.state().initialised = false;
        }
    }

    fn driver_version(&self) -> Result<String, GpuError> {
        Ok("580.159.04".into())
    }

    fn device_count(&self) -> Result<u32, GpuError> {
        let s = self.state();
        if !s.driver || !s.initialised {
            return Err(GpuError::DriverUnavailable("NVML is not initialised".into()));
        }
        Ok(s.gpus.len() as u32)
    }

    fn identity(&self, dev: u32) -> Result<Identity, GpuError> {
        self.on(dev, "identity", |g| Ok(g.identity.clone()))
    }

    fn utilization(&self, dev: u32) -> Result<Utilization, GpuError> {
        self.on(dev, "utilization", |g| Ok(g.utilization))
    }

    fn encoder_utilization(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "encoder_utilization", |g| Ok(g.encoder))
    }

    fn decoder_utilization(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "decoder_utilization", |g| Ok(g.decoder))
    }

    fn memory(&self, dev: u32) -> Result<Memory, GpuError> {
        self.on(dev, "memory", |g| Ok(g.memory))
    }

    fn temperature(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "temperature", |g| Ok(g.temperature))
    }

    fn power_usage(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "power_usage", |g| Ok(g.power_mw))
    }

    fn power_limit(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "power_limit", |g| Ok(g.power_limit_mw))
    }

    fn total_energy(&self, dev: u32) -> Result<u64, GpuError> {
        self.on(dev, "total_energy", |g| Ok(g.energy_mj))
    }

    fn clock(&self, dev: u32, clock: ClockKind) -> Result<u32, GpuError> {
        self.on(dev, "clock", |g| {
            Ok(match clock {
                ClockKind::Sm => g.sm_mhz,
                ClockKind::Memory => g.memory_mhz,
            })
        })
    }

    fn fan_count(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "fan_count", |g| Ok(g.fans.len() as u32))
    }

    fn fan_speed(&self, dev: u32, fan: u32) -> Result<u32, GpuError> {
        // As NVML on a fanless H100: InvalidArg, which the NVML backend maps to NotSupported.
        self.on(dev, "fan_speed", |g| g.fans.get(fan as usize).copied().ok_or(GpuError::NotSupported))
    }

    fn performance_state(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "performance_state", |g| Ok(g.pstate))
    }

    fn throttle_reasons(&self, dev: u32) -> Result<u64, GpuError> {
        self.on(dev, "throttle_reasons", |g| Ok(g.throttle))
    }

    fn ecc_errors(&self, dev: u32, kind: EccKind) -> Result<u64, GpuError> {
        self.on(dev, "ecc_errors", |g| {
            Ok(match kind {
                EccKind::Corrected => g.ecc_corrected,
                EccKind::Uncorrected => g.ecc_uncorrected,
            })
        })
    }

    fn pcie_replay_counter(&self, dev: u32) -> Result<u32, GpuError> {
        self.on(dev, "pcie_replay_counter", |g| Ok(g.pcie_replay))
    }

    /// A read of the transmit counter (by anyone) is counted as `pcie_tx_read` and moves it on
    /// by `pcie_tx_step`.
    fn field_values(&self, dev: u32, ids: &[u32], out: &mut Vec<Result<FieldValue, GpuError>>) -> Result<(), GpuError> {
        let before = out.len();
        self.on(dev, "field_values", |g| {
            for id in ids {
                out.push(if g.unsupported.contains(&format!("field:{id}")) {
                    Err(GpuError::NotSupported)
                } else {
                    match *id {
                        field::MEMORY_TEMP => Ok(FieldValue::U32(g.memory_temperature)),
                        field::PCIE_TX_BYTES => Ok(FieldValue::U32(g.pcie_tx)),
                        field::PCIE_RX_BYTES => Ok(FieldValue::U32(g.pcie_rx)),
                        field::NVLINK_TX_KIB if !g.nvlinks.is_empty() => Ok(FieldValue::U64(g.nvlink_kib[0])),
                        field::NVLINK_RX_KIB if !g.nvlinks.is_empty() => Ok(FieldValue::U64(g.nvlink_kib[1])),
                        field::RETIRED_SBE => Ok(FieldValue::U64(g.retired[0])),
                        field::RETIRED_DBE => Ok(FieldValue::U64(g.retired[1])),
                        field::RETIRED_PENDING => Ok(FieldValue::U32(g.retired_pending as u32)),
                        field::REMAPPED_COR => Ok(FieldValue::U32(g.remapped[0])),
                        field::REMAPPED_UNC => Ok(FieldValue::U32(g.remapped[1])),
                        field::REMAPPED_PENDING => Ok(FieldValue::U32(g.remap_pending as u32)),
                        field::REMAPPED_FAILURE => Ok(FieldValue::U32(g.remap_failed as u32)),
                        _ => Err(GpuError::NotSupported),
                    }
                });
            }
            Ok(())
        })?;
        if let Some(i) = ids.iter().position(|id| *id == field::PCIE_TX_BYTES) {
            if out.get(before + i).is_some_and(|r| r.is_ok()) {
                let mut s = self.state();
                *s.calls.entry((dev, "pcie_tx_read".into())).or_default() += 1;
                let g = &mut s.gpus[dev as usize];
                g.pcie_tx = g.pcie_tx.wrapping_add(g.pcie_tx_step);
            }
        }
        Ok(())
    }

    fn processes(&self, dev: u32, kind: ProcessKind, out: &mut Vec<GpuProcess>) -> Result<(), GpuError> {
        let name = match kind {
            ProcessKind::Compute => "compute_processes",
            ProcessKind::Graphics => "graphics_processes",
        };
        self.on(dev, name, |g| {
            out.extend_from_slice(match kind {
                ProcessKind::Compute => &g.compute,
                ProcessKind::Graphics => &g.graphics,
            });
            Ok(())
        })
    }

    fn mig_enabled(&self, dev: u32) -> Result<bool, GpuError> {
        self.on(dev, "mig_enabled", |g| Ok(g.mig.is_some()))
    }

    fn mig_devices(&self, dev: u32, out: &mut Vec<MigDevice>) -> Result<(), GpuError> {
        self.on(dev, "mig_devices", |g| {
            out.extend(g.mig.iter().flatten().cloned());
            Ok(())
        })
    }

    fn process_utilization(&self, dev: u32, since_us: u64, out: &mut Vec<ProcessUtilization>) -> Result<(), GpuError> {
        self.on(dev, "process_utilization", |g| {
            out.extend(g.util_samples.iter().filter(|s| s.timestamp_us > since_us));
            Ok(())
        })
    }

    fn nvlink_active(&self, dev: u32, link: u32) -> Result<bool, GpuError> {
        self.on(dev, "nvlink_active", |g| g.nvlinks.get(link as usize).map(|l| l.0).ok_or(GpuError::NotSupported))
    }

    fn nvlink_errors(&self, dev: u32, link: u32, kind: NvLinkErrorKind) -> Result<u64, GpuError> {
        self.on(dev, "nvlink_errors", |g| g.nvlinks.get(link as usize).map(|l| l.1[kind as usize]).ok_or(GpuError::NotSupported))
    }

    fn fresh(&self) -> Box<dyn GpuBackend> {
        Box::new(FakeNvml(self.0.clone(), true))
    }

    /// Delivers the events the test queued in `xid_events`, looking every millisecond.
    fn watch_xid(&self, stop: &AtomicBool, poll: Duration, on_event: &mut dyn FnMut(XidEvent)) -> Result<(), GpuError> {
        if !self.state().xid_supported {
            return Err(GpuError::NotSupported);
        }
        let step = poll.min(Duration::from_millis(1));
        while !stop.load(Ordering::Relaxed) {
            let next = {
                let mut s = self.state();
                if !s.driver || !s.initialised {
                    return Err(GpuError::DriverUnavailable("NVML is not initialised".into()));
                }
                s.xid_events.pop_front()
            };
            match next {
                Some(e) => on_event(e),
                None => std::thread::sleep(step),
            }
        }
        Ok(())
    }
}
