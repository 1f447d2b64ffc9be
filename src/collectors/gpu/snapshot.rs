//! What one tick read from the GPUs, as the instruments observe it: each GPU's values in
//! NVML's units with its attribute sets (built once per GPU, so callbacks allocate nothing),
//! and the per-process and per-MIG-device points.

use super::device::{throttle, Identity, Memory, NvLinkErrorKind};
use super::podresources::PodRef;
use opentelemetry::KeyValue;
use std::sync::Arc;

/// Attribute sets of one GPU, built once at enumeration so callbacks allocate nothing.
#[derive(Debug)]
pub(super) struct GpuAttrs {
    pub(super) base: Vec<KeyValue>,
    /// `hw.gpu.task`: general, encoder, decoder.
    pub(super) task: [Vec<KeyValue>; 3],
    /// `network.io.direction`: transmit, receive.
    pub(super) io: [Vec<KeyValue>; 2],
    /// `error.type`: corrected, uncorrected.
    pub(super) errors: [Vec<KeyValue>; 2],
    /// `hw.sensor_location`: gpu, memory.
    pub(super) sensor: [Vec<KeyValue>; 2],
    /// `hw.state`: ok, degraded, failed.
    pub(super) state: [Vec<KeyValue>; 3],
    /// `nvidia.gpu.throttle.reason`, in [`throttle::REASONS`] order.
    pub(super) throttle: Vec<Vec<KeyValue>>,
    /// `nvidia.gpu.fan.index`, per fan.
    pub(super) fans: Vec<Vec<KeyValue>>,
    /// Per NVLink link (as `DeviceState::links`): its `nvidia.gpu.nvlink.link` set, and that
    /// with each `error.type` of [`NvLinkErrorKind::ALL`].
    pub(super) links: Vec<(Vec<KeyValue>, [Vec<KeyValue>; 4])>,
    /// `nvidia.gpu.retirement.cause`: multiple_single_bit_ecc, double_bit_ecc.
    pub(super) retirement: [Vec<KeyValue>; 2],
}

fn with(base: &[KeyValue], extra: KeyValue) -> Vec<KeyValue> {
    let mut v = Vec::with_capacity(base.len() + 1);
    v.extend_from_slice(base);
    v.push(extra);
    v
}

impl GpuAttrs {
    /// The GPU's attributes, with the pod and container it is allocated to when known.
    pub(super) fn new(id: &Identity, fans: u32, links: &[u32], pod: Option<&PodRef>) -> Self {
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
        // The conventions' hardware attributes: the model (the product name, as `hw.name`
        // also says) and the driver's version.
        base.push(KeyValue::new("hw.model", Arc::<str>::from(id.name.as_str())));
        if let Some(v) = &id.driver_version {
            base.push(KeyValue::new("hw.driver_version", Arc::<str>::from(v.as_str())));
        }
        if let Some(p) = pod {
            base.push(KeyValue::new("k8s.pod.name", p.pod.clone()));
            base.push(KeyValue::new("k8s.namespace.name", p.namespace.clone()));
            base.push(KeyValue::new("k8s.container.name", p.container.clone()));
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
            retirement: [kv("nvidia.gpu.retirement.cause", "multiple_single_bit_ecc"), kv("nvidia.gpu.retirement.cause", "double_bit_ecc")],
            links: links
                .iter()
                .map(|l| {
                    let link = with(b, KeyValue::new("nvidia.gpu.nvlink.link", *l as i64));
                    let errors = NvLinkErrorKind::ALL.map(|(_, t)| with(&link, KeyValue::new("error.type", t)));
                    (link, errors)
                })
                .collect(),
            fans: (0..fans).map(|i| with(b, KeyValue::new("nvidia.gpu.fan.index", i as i64))).collect(),
            base,
        }
    }
}

/// Attribute sets of one container's (or the host's) share of a GPU: the GPU's attributes,
/// `container.id` and `k8s.pod.uid` where known, and those with each `hw.gpu.task`.
#[derive(Debug)]
pub(super) struct ContainerAttrs {
    pub(super) base: Vec<KeyValue>,
    /// `hw.gpu.task`: general, encoder, decoder.
    pub(super) task: [Vec<KeyValue>; 3],
}

impl ContainerAttrs {
    pub(super) fn new(gpu: &[KeyValue], container: Option<&str>, pod_uid: Option<&str>) -> Self {
        let mut base = gpu.to_vec();
        if let Some(c) = container {
            base.push(KeyValue::new("container.id", Arc::<str>::from(c)));
        }
        if let Some(u) = pod_uid {
            base.push(KeyValue::new("k8s.pod.uid", Arc::<str>::from(u)));
        }
        let task = ["general", "encoder", "decoder"].map(|t| with(&base, KeyValue::new("hw.gpu.task", t)));
        ContainerAttrs { base, task }
    }
}

/// `hw.state` of a GPU, as an index into [`GpuAttrs::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum HwState {
    #[default]
    Ok = 0,
    Degraded = 1,
    Failed = 2,
}

/// What one tick read from one GPU, in NVML's units.
#[derive(Debug, Default)]
pub(super) struct Values {
    pub(super) state: HwState,
    pub(super) util: Option<u32>,
    pub(super) memory_controller: Option<u32>,
    pub(super) encoder: Option<u32>,
    pub(super) decoder: Option<u32>,
    pub(super) memory: Option<Memory>,
    pub(super) temperature: Option<u32>,
    pub(super) memory_temperature: Option<f64>,
    pub(super) power_mw: Option<u32>,
    pub(super) power_limit_mw: Option<u32>,
    pub(super) energy_mj: Option<u64>,
    pub(super) clock_sm_mhz: Option<u32>,
    pub(super) clock_memory_mhz: Option<u32>,
    /// (fan index, percent).
    pub(super) fans: Vec<(usize, u32)>,
    pub(super) pstate: Option<u32>,
    pub(super) throttle: Option<u64>,
    /// Corrected, uncorrected.
    pub(super) ecc: [Option<u64>; 2],
    pub(super) replay: Option<u32>,
    /// Transmit, receive totals.
    pub(super) pcie: [Option<u64>; 2],
    /// Retired pages: multiple single-bit, double-bit.
    pub(super) retired: [Option<u64>; 2],
    /// A page retirement waits for the next reset.
    pub(super) retired_pending: Option<bool>,
    /// Remapped rows: correctable, uncorrectable.
    pub(super) remapped: [Option<u64>; 2],
    /// A row remapping waits for the next reset.
    pub(super) remap_pending: Option<bool>,
    /// A row remapping failed.
    pub(super) remap_failed: Option<bool>,
    /// NVLink data sent, received over all links, bytes.
    pub(super) nvlink_io: [Option<u64>; 2],
    /// Per link (as `GpuAttrs::links`): active, error counters.
    pub(super) nvlink: Vec<(Option<bool>, [Option<u64>; 4])>,
    /// Critical XID errors since the agent started: attributes (with the code), count.
    pub(super) xid: Vec<(Arc<[KeyValue]>, u64)>,
}

#[derive(Debug)]
pub(super) struct GpuSample {
    pub(super) attrs: Arc<GpuAttrs>,
    pub(super) v: Values,
}

/// What one tick read from every GPU.
#[derive(Debug, Default)]
pub struct GpuSnapshot {
    /// GPUs the driver enumerates; `None` without a driver (nothing is reported then).
    pub(super) count: Option<u32>,
    pub(super) gpus: Vec<GpuSample>,
    /// Per process: attributes, bytes.
    pub(super) processes: Vec<(Arc<[KeyValue]>, u64)>,
    /// Per MIG device: attributes, memory.
    pub(super) mig: Vec<(Arc<[KeyValue]>, Memory)>,
    /// Per container and GPU: attributes, and the percent of the last interval its processes
    /// kept the SMs, memory controller, encoder and decoder busy.
    pub(super) containers: Vec<(Arc<ContainerAttrs>, [f64; 4])>,
}

impl GpuSnapshot {
    pub(super) fn clear(&mut self) {
        self.count = None;
        self.gpus.clear();
        self.processes.clear();
        self.mig.clear();
        self.containers.clear();
    }
}

impl Values {
    /// Memory the GPU repairs only at its next reset (a row remapping or page retirement
    /// pending), or a row remapping that failed: `hw.status` is `degraded`.
    pub(super) fn needs_reset(&self) -> bool {
        [self.remap_pending, self.remap_failed, self.retired_pending].contains(&Some(true))
    }
}

pub(super) fn pct(v: u32) -> f64 {
    v as f64 / 100.0
}
