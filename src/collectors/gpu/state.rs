//! What the collector keeps about each GPU between ticks: which driver calls the GPU does not
//! support (learned from the first answer, never asked again) or are failing (logged once),
//! whether it is lost, its held energy reading and its wrapping PCIe counters, the attribute
//! sets of its processes and MIG devices; and the buffers reused from tick to tick.

use super::device::ProcessUtilization;
use super::device::{FieldValue, GpuError, GpuProcess, Identity, MigDevice};
use super::podresources::{Assignments, PodRef};
use super::snapshot::{ContainerAttrs, GpuAttrs};
use opentelemetry::KeyValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// The driver calls whose support is learned per GPU, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cap {
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
    RetiredSbe,
    RetiredDbe,
    RetiredPending,
    RemappedCor,
    RemappedUnc,
    RemappedPending,
    RemappedFailure,
    NvLinkTx,
    NvLinkRx,
    NvLinkState,
    NvLinkCrcFlit,
    NvLinkCrcData,
    NvLinkReplay,
    NvLinkRecovery,
    ProcessUtilization,
}

impl Cap {
    pub(super) fn bit(self) -> u64 {
        1 << self as u32
    }
}

/// Why sampling a GPU stopped.
#[derive(Debug)]
pub(super) enum Abort {
    /// The GPU is lost.
    Lost,
    /// The driver went away.
    Driver(String),
}

/// A 32-bit hardware byte counter accumulated into 64 bits.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WrapCounter {
    pub(super) last: Option<u32>,
    pub(super) total: u64,
}

impl WrapCounter {
    /// Takes a new reading and returns the total. A u32 reading adds its difference from the
    /// previous one modulo 2³² (so one wrap between reads is counted right); a u64 reading is
    /// taken as it is.
    pub(super) fn update(&mut self, v: FieldValue) -> u64 {
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

/// What the collector keeps about one GPU between ticks.
pub(super) struct DeviceState {
    pub(super) dev: u32,
    pub(super) id: Identity,
    pub(super) attrs: Arc<GpuAttrs>,
    /// Calls the GPU does not support ([`Cap`] bits): never made again.
    pub(super) unsupported: u64,
    /// Calls whose last error was logged ([`Cap`] bits), cleared by a success.
    pub(super) failing: u64,
    pub(super) lost: bool,
    pub(super) fans: u32,
    /// NVLink links the GPU answers for (found at enumeration).
    pub(super) links: Vec<u32>,
    pub(super) energy_mj: Option<u64>,
    pub(super) energy_due: Option<Instant>,
    pub(super) pcie: [WrapCounter; 2],
    /// The PCIe sampler thread reads this GPU's counters (the tick does not).
    pub(super) pcie_sampled: bool,
    pub(super) processes: HashMap<u32, Arc<[KeyValue]>>,
    pub(super) truncation_logged: bool,
    pub(super) mig: HashMap<String, Arc<[KeyValue]>>,
    /// The newest per-process utilization sample seen (CPU µs).
    pub(super) util_since: u64,
    /// Per PID: its container's attribute sets for the per-container utilization.
    pub(super) util_pids: HashMap<u32, Arc<ContainerAttrs>>,
    /// Per container (`container.id`, `k8s.pod.uid`): its attribute sets.
    pub(super) util_containers: HashMap<(Option<String>, Option<String>), Arc<ContainerAttrs>>,
    /// The pod and container the GPU is allocated to, and the PodResources generation it was
    /// taken from.
    pub(super) pod: Option<PodRef>,
    pub(super) pods_gen: u64,
    /// Attribute sets of `nvidia.gpu.xid.errors`, per XID code.
    pub(super) xid: BTreeMap<u64, Arc<[KeyValue]>>,
}

impl DeviceState {
    pub(super) fn new(dev: u32, id: Identity) -> Self {
        DeviceState {
            dev,
            attrs: Arc::new(GpuAttrs::new(&id, 0, &[], None)),
            id,
            unsupported: 0,
            failing: 0,
            lost: false,
            fans: 0,
            links: Vec::new(),
            energy_mj: None,
            energy_due: None,
            pcie: [WrapCounter::default(); 2],
            pcie_sampled: false,
            processes: HashMap::new(),
            truncation_logged: false,
            mig: HashMap::new(),
            xid: BTreeMap::new(),
            pod: None,
            pods_gen: 0,
            util_since: 0,
            util_pids: HashMap::new(),
            util_containers: HashMap::new(),
        }
    }

    pub(super) fn supports(&self, cap: Cap) -> bool {
        self.unsupported & cap.bit() == 0
    }

    /// Makes a driver call unless the GPU is known not to support it, learning from the answer.
    pub(super) fn get<T>(&mut self, cap: Cap, call: impl FnOnce() -> Result<T, GpuError>) -> Result<Option<T>, Abort> {
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
pub(super) struct Scratch {
    pub(super) ids: Vec<u32>,
    pub(super) fields: Vec<Result<FieldValue, GpuError>>,
    pub(super) processes: Vec<GpuProcess>,
    pub(super) mig: Vec<MigDevice>,
    pub(super) xid: Vec<(u64, u64)>,
    pub(super) util: Vec<ProcessUtilization>,
    /// The last PodResources answer, for MIG devices.
    pub(super) pods: Option<Arc<Assignments>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_counter_takes_u64_readings_as_they_are() {
        let mut w = WrapCounter::default();
        assert_eq!(w.update(FieldValue::U32(u32::MAX)), u32::MAX as u64);
        assert_eq!(w.update(FieldValue::U32(0)), u32::MAX as u64 + 1);
        assert_eq!(w.update(FieldValue::U64(10_000_000_000)), 10_000_000_000);
    }
}
