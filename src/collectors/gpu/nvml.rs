//! [`GpuBackend`] on NVML through nvml-wrapper 0.13.
//!
//! `libnvidia-ml.so.1` is loaded with `dlopen` when [`GpuBackend::init`] runs, not linked, so
//! the agent builds and runs on hosts without an NVIDIA driver; there `init` fails with
//! [`GpuError::DriverUnavailable`] and the collector reports nothing.
//!
//! This module only translates: NVML's types and errors into the collector's. What is called
//! when, and what it costs, is decided in [`super`].

use super::device::ProcessUtilization;
use super::device::{
    ClockKind, EccKind, FieldValue, GpuBackend, GpuError, GpuProcess, Identity, Memory, MigDevice, NvLinkErrorKind, ProcessKind, Utilization, XidEvent,
};
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{Clock, EccCounter, MemoryError, PerformanceState, TemperatureSensor};
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::{nvml_sym, nvml_try, NvmlError};
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// NVML, loaded at [`GpuBackend::init`]. Device handles are looked up once per `init` and
/// kept: NVML documents them as valid until `nvmlShutdown`, which only [`GpuBackend::init`]
/// and [`GpuBackend::shutdown`] call (by dropping the [`Nvml`]), after clearing them.
#[derive(Default)]
pub struct NvmlBackend {
    lib_path: Option<PathBuf>,
    nvml: Option<Nvml>,
    /// `nvmlDevice_t` of each index, stored as an address so the struct stays `Send` (the
    /// handles are opaque driver pointers that NVML allows to be used from any thread).
    handles: Vec<Result<usize, GpuError>>,
}

impl NvmlBackend {
    /// A backend loading `libnvidia-ml.so.1` from the library search path, or `lib_path`.
    pub fn new(lib_path: Option<PathBuf>) -> Self {
        NvmlBackend { lib_path, nvml: None, handles: Vec::new() }
    }

    fn nvml(&self) -> Result<&Nvml, GpuError> {
        self.nvml.as_ref().ok_or_else(|| GpuError::DriverUnavailable("NVML is not initialised".into()))
    }

    fn dev(&self, dev: u32) -> Result<Device<'_>, GpuError> {
        let nvml = self.nvml()?;
        match self.handles.get(dev as usize) {
            // SAFETY: the handle came from `device_by_index` on this same `Nvml`, which is
            // still initialised (handles are cleared before it is dropped).
            Some(Ok(h)) => Ok(unsafe { Device::new(*h as *mut _, nvml) }),
            Some(Err(e)) => Err(e.clone()),
            None => Err(GpuError::Other(format!("no GPU with index {dev}"))),
        }
    }
}

/// NVML's errors in the collector's terms.
pub fn map_error(e: NvmlError) -> GpuError {
    match e {
        NvmlError::NotSupported | NvmlError::FunctionNotFound | NvmlError::FailedToLoadSymbol(_) => GpuError::NotSupported,
        NvmlError::GpuLost | NvmlError::Unknown | NvmlError::ResetRequired => GpuError::Lost,
        NvmlError::LibloadingError(_)
        | NvmlError::DriverNotLoaded
        | NvmlError::LibraryNotFound
        | NvmlError::Uninitialized
        | NvmlError::LibRmVersionMismatch => GpuError::DriverUnavailable(e.to_string()),
        other => GpuError::Other(other.to_string()),
    }
}

/// NVLink calls answer `InvalidArg` for a link number the GPU does not have.
fn nvlink_error(e: NvmlError) -> GpuError {
    match e {
        NvmlError::InvalidArg => GpuError::NotSupported,
        other => map_error(other),
    }
}

fn pstate_number(p: PerformanceState) -> Result<u32, GpuError> {
    use PerformanceState::*;
    Ok(match p {
        Zero => 0,
        One => 1,
        Two => 2,
        Three => 3,
        Four => 4,
        Five => 5,
        Six => 6,
        Seven => 7,
        Eight => 8,
        Nine => 9,
        Ten => 10,
        Eleven => 11,
        Twelve => 12,
        Thirteen => 13,
        Fourteen => 14,
        Fifteen => 15,
        Unknown => return Err(GpuError::Other("performance state unknown".into())),
    })
}

fn process(p: nvml_wrapper::struct_wrappers::device::ProcessInfo) -> GpuProcess {
    GpuProcess {
        pid: p.pid,
        used_memory: match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(b),
            UsedGpuMemory::Unavailable => None,
        },
        gpu_instance_id: p.gpu_instance_id,
        compute_instance_id: p.compute_instance_id,
    }
}

/// `nvmlDeviceGetGpuInstanceId` / `nvmlDeviceGetComputeInstanceId` of a MIG device handle
/// (nvml-wrapper 0.13 binds them but has no safe method).
fn mig_ids(nvml: &Nvml, d: &Device<'_>) -> Result<(u32, u32), NvmlError> {
    let lib = nvml.lib();
    let gi = nvml_sym(lib.nvmlDeviceGetGpuInstanceId.as_ref())?;
    let ci = nvml_sym(lib.nvmlDeviceGetComputeInstanceId.as_ref())?;
    let (mut g, mut c) = (0u32, 0u32);
    // SAFETY: `d`'s handle is valid (it borrows `nvml`), and each call writes one c_uint.
    unsafe {
        nvml_try(gi(d.handle(), &mut g))?;
        nvml_try(ci(d.handle(), &mut c))?;
    }
    Ok((g, c))
}

fn memory(m: nvml_wrapper::struct_wrappers::device::MemoryInfo) -> Memory {
    Memory { total: m.total, used: m.used, free: m.free, reserved: m.reserved }
}

impl GpuBackend for NvmlBackend {
    fn init(&mut self) -> Result<(), GpuError> {
        self.shutdown();
        let nvml = match &self.lib_path {
            Some(p) => Nvml::builder().lib_path(p.as_os_str()).init(),
            None => Nvml::init(),
        }
        .map_err(|e| match e {
            // The library itself could not be found or loaded: no driver, whatever NVML says.
            NvmlError::LibloadingError(_) | NvmlError::FailedToLoadSymbol(_) => GpuError::DriverUnavailable(e.to_string()),
            other => map_error(other),
        })?;
        let count = nvml.device_count().map_err(map_error)?;
        self.handles = (0..count)
            .map(|i| {
                nvml.device_by_index(i)
                    // SAFETY: only the address is kept; see `dev`.
                    .map(|d| unsafe { d.handle() } as usize)
                    .map_err(map_error)
            })
            .collect();
        self.nvml = Some(nvml);
        Ok(())
    }

    fn shutdown(&mut self) {
        self.handles.clear();
        self.nvml = None; // Drop calls nvmlShutdown
    }

    fn driver_version(&self) -> Result<String, GpuError> {
        self.nvml()?.sys_driver_version().map_err(map_error)
    }

    fn device_count(&self) -> Result<u32, GpuError> {
        self.nvml()?;
        Ok(self.handles.len() as u32)
    }

    fn identity(&self, dev: u32) -> Result<Identity, GpuError> {
        let d = self.dev(dev)?;
        Ok(Identity {
            index: d.index().unwrap_or(dev),
            uuid: d.uuid().map_err(map_error)?,
            name: d.name().map_err(map_error)?,
            pci_bus_id: d.pci_info().map(|p| p.bus_id).unwrap_or_default(),
            serial: d.serial().ok().filter(|s| !s.is_empty()),
            driver_version: self.nvml()?.sys_driver_version().ok().filter(|v| !v.is_empty()),
        })
    }

    fn utilization(&self, dev: u32) -> Result<Utilization, GpuError> {
        let u = self.dev(dev)?.utilization_rates().map_err(map_error)?;
        Ok(Utilization { gpu: u.gpu, memory: u.memory })
    }

    fn encoder_utilization(&self, dev: u32) -> Result<u32, GpuError> {
        Ok(self.dev(dev)?.encoder_utilization().map_err(map_error)?.utilization)
    }

    fn decoder_utilization(&self, dev: u32) -> Result<u32, GpuError> {
        Ok(self.dev(dev)?.decoder_utilization().map_err(map_error)?.utilization)
    }

    fn memory(&self, dev: u32) -> Result<Memory, GpuError> {
        Ok(memory(self.dev(dev)?.memory_info().map_err(map_error)?))
    }

    fn temperature(&self, dev: u32) -> Result<u32, GpuError> {
        self.dev(dev)?.temperature(TemperatureSensor::Gpu).map_err(map_error)
    }

    fn power_usage(&self, dev: u32) -> Result<u32, GpuError> {
        self.dev(dev)?.power_usage().map_err(map_error)
    }

    fn power_limit(&self, dev: u32) -> Result<u32, GpuError> {
        self.dev(dev)?.enforced_power_limit().map_err(map_error)
    }

    fn total_energy(&self, dev: u32) -> Result<u64, GpuError> {
        self.dev(dev)?.total_energy_consumption().map_err(map_error)
    }

    fn clock(&self, dev: u32, clock: ClockKind) -> Result<u32, GpuError> {
        let c = match clock {
            ClockKind::Sm => Clock::SM,
            ClockKind::Memory => Clock::Memory,
        };
        self.dev(dev)?.clock_info(c).map_err(map_error)
    }

    fn fan_count(&self, dev: u32) -> Result<u32, GpuError> {
        self.dev(dev)?.num_fans().map_err(map_error)
    }

    fn fan_speed(&self, dev: u32, fan: u32) -> Result<u32, GpuError> {
        self.dev(dev)?.fan_speed(fan).map_err(|e| match e {
            // What fanless datacenter GPUs answer.
            NvmlError::InvalidArg => GpuError::NotSupported,
            other => map_error(other),
        })
    }

    fn performance_state(&self, dev: u32) -> Result<u32, GpuError> {
        pstate_number(self.dev(dev)?.performance_state().map_err(map_error)?)
    }

    fn throttle_reasons(&self, dev: u32) -> Result<u64, GpuError> {
        Ok(self.dev(dev)?.current_throttle_reasons().map_err(map_error)?.bits())
    }

    fn ecc_errors(&self, dev: u32, kind: EccKind) -> Result<u64, GpuError> {
        let k = match kind {
            EccKind::Corrected => MemoryError::Corrected,
            EccKind::Uncorrected => MemoryError::Uncorrected,
        };
        self.dev(dev)?.total_ecc_errors(k, EccCounter::Volatile).map_err(map_error)
    }

    fn pcie_replay_counter(&self, dev: u32) -> Result<u32, GpuError> {
        self.dev(dev)?.pcie_replay_counter().map_err(map_error)
    }

    fn field_values(&self, dev: u32, ids: &[u32], out: &mut Vec<Result<FieldValue, GpuError>>) -> Result<(), GpuError> {
        let fids: Vec<FieldId> = ids.iter().map(|id| FieldId(*id)).collect();
        let samples = self.dev(dev)?.field_values_for(&fids).map_err(map_error)?;
        out.extend(samples.into_iter().map(|s| {
            s.map_err(map_error).and_then(|s| s.value.map_err(map_error)).map(|v| match v {
                SampleValue::U32(v) => FieldValue::U32(v),
                SampleValue::U64(v) => FieldValue::U64(v),
                SampleValue::I64(v) => FieldValue::I64(v),
                SampleValue::F64(v) => FieldValue::F64(v),
            })
        }));
        Ok(())
    }

    fn processes(&self, dev: u32, kind: ProcessKind, out: &mut Vec<GpuProcess>) -> Result<(), GpuError> {
        let d = self.dev(dev)?;
        let list = match kind {
            ProcessKind::Compute => d.running_compute_processes(),
            ProcessKind::Graphics => d.running_graphics_processes(),
        }
        .map_err(map_error)?;
        out.extend(list.into_iter().map(process));
        Ok(())
    }

    fn mig_enabled(&self, dev: u32) -> Result<bool, GpuError> {
        Ok(self.dev(dev)?.mig_mode().map_err(map_error)?.current == 1)
    }

    fn mig_devices(&self, dev: u32, out: &mut Vec<MigDevice>) -> Result<(), GpuError> {
        let nvml = self.nvml()?;
        let d = self.dev(dev)?;
        let max = d.mig_device_count().map_err(map_error)?;
        for i in 0..max {
            let m = match d.mig_device_by_index(i) {
                Ok(m) => m,
                // Slots without a MIG device.
                Err(NvmlError::NotFound) | Err(NvmlError::InvalidArg) => continue,
                Err(e) => return Err(map_error(e)),
            };
            let (gpu_instance_id, compute_instance_id) = mig_ids(nvml, &m).map_err(map_error)?;
            out.push(MigDevice {
                uuid: m.uuid().map_err(map_error)?,
                gpu_instance_id,
                compute_instance_id,
                memory: memory(m.memory_info().map_err(map_error)?),
            });
        }
        Ok(())
    }

    fn process_utilization(&self, dev: u32, since_us: u64, out: &mut Vec<ProcessUtilization>) -> Result<(), GpuError> {
        let samples = match self.dev(dev)?.process_utilization_stats(since_us) {
            Ok(s) => s,
            // No sample since `since_us`: nothing ran.
            Err(NvmlError::NotFound) => return Ok(()),
            Err(e) => return Err(map_error(e)),
        };
        out.extend(samples.into_iter().map(|s| ProcessUtilization {
            pid: s.pid,
            timestamp_us: s.timestamp,
            sm: s.sm_util,
            memory: s.mem_util,
            encoder: s.enc_util,
            decoder: s.dec_util,
        }));
        Ok(())
    }

    fn nvlink_active(&self, dev: u32, link: u32) -> Result<bool, GpuError> {
        self.dev(dev)?.link_wrapper_for(link).is_active().map_err(nvlink_error)
    }

    fn nvlink_errors(&self, dev: u32, link: u32, kind: NvLinkErrorKind) -> Result<u64, GpuError> {
        let counter = match kind {
            NvLinkErrorKind::CrcFlit => ErrorCounter::DlCrcFlit,
            NvLinkErrorKind::CrcData => ErrorCounter::DlCrcData,
            NvLinkErrorKind::Replay => ErrorCounter::DlReplay,
            NvLinkErrorKind::Recovery => ErrorCounter::DlRecovery,
        };
        self.dev(dev)?.link_wrapper_for(link).error_counter(counter).map_err(nvlink_error)
    }

    fn fresh(&self) -> Box<dyn GpuBackend> {
        Box::new(NvmlBackend::new(self.lib_path.clone()))
    }

    fn watch_xid(&self, stop: &AtomicBool, poll: Duration, on_event: &mut dyn FnMut(XidEvent)) -> Result<(), GpuError> {
        let nvml = self.nvml()?;
        let mut set = nvml.create_event_set().map_err(map_error)?;
        let mut registered = 0;
        for dev in 0..self.handles.len() as u32 {
            let Ok(d) = self.dev(dev) else { continue };
            // Ask first: a failed registration releases the whole set.
            match d.supported_event_types() {
                Ok(t) if t.contains(EventTypes::CRITICAL_XID_ERROR) => {}
                Ok(_) | Err(NvmlError::NotSupported) => continue,
                Err(e) => return Err(map_error(e)),
            }
            set = d.register_events(EventTypes::CRITICAL_XID_ERROR, set).map_err(|e| map_error(e.error))?;
            registered += 1;
        }
        if registered == 0 {
            return Err(GpuError::NotSupported);
        }
        let ms = poll.as_millis().clamp(1, u32::MAX as u128) as u32;
        while !stop.load(Ordering::Relaxed) {
            match set.wait(ms) {
                Ok(ev) if ev.event_type.contains(EventTypes::CRITICAL_XID_ERROR) => {
                    let uuid = ev.device.uuid().unwrap_or_default();
                    let index = ev.device.index().unwrap_or(u32::MAX);
                    match ev.event_data {
                        Some(XidError::Value(code)) => on_event(XidEvent { index, uuid, code }),
                        _ => tracing::warn!(gpu.index = index, hw.id = %uuid, "XID error event without a code; not counted"),
                    }
                }
                Ok(_) | Err(NvmlError::Timeout) => {}
                Err(e) => return Err(map_error(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_errors_map_to_what_the_collector_does_next() {
        assert_eq!(map_error(NvmlError::NotSupported), GpuError::NotSupported);
        assert_eq!(map_error(NvmlError::FunctionNotFound), GpuError::NotSupported);
        assert_eq!(map_error(NvmlError::GpuLost), GpuError::Lost);
        assert_eq!(map_error(NvmlError::Unknown), GpuError::Lost);
        assert!(matches!(map_error(NvmlError::DriverNotLoaded), GpuError::DriverUnavailable(_)));
        assert!(matches!(map_error(NvmlError::NoPermission), GpuError::Other(_)));
    }

    #[test]
    fn without_a_driver_init_fails_as_driver_unavailable_and_calls_fail_cleanly() {
        // On a host with the driver this test proves nothing, but it must not fail either.
        let mut b = NvmlBackend::new(Some("/nonexistent/libnvidia-ml.so.1".into()));
        assert!(matches!(b.init(), Err(GpuError::DriverUnavailable(_))));
        assert!(matches!(b.device_count(), Err(GpuError::DriverUnavailable(_))));
        assert!(matches!(b.temperature(0), Err(GpuError::DriverUnavailable(_))));
    }
}
