//! Memory per MIG device: on a GPU in MIG mode, each MIG device's memory under its own UUID and
//! instance ids (its attribute set built once per device), never as more `hw.gpu.memory.*`
//! points, which would count the parent GPU's memory twice.

use super::device::GpuBackend;
use super::snapshot::GpuSnapshot;
use super::state::{Abort, Cap, DeviceState, Scratch};
use opentelemetry::KeyValue;
use std::sync::Arc;

/// Adds the memory of each MIG device of one GPU to `snap`, when the GPU is in MIG mode.
pub(super) fn sample_mig(b: &dyn GpuBackend, st: &mut DeviceState, scratch: &mut Scratch, snap: &mut GpuSnapshot) -> Result<(), Abort> {
    let d = st.dev;
    if st.get(Cap::MigMode, || b.mig_enabled(d))? == Some(true) {
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
                        if let Some(p) = scratch.pods.as_ref().and_then(|pods| pods.get(&m.uuid)) {
                            a.push(KeyValue::new("k8s.pod.name", p.pod.clone()));
                            a.push(KeyValue::new("k8s.namespace.name", p.namespace.clone()));
                            a.push(KeyValue::new("k8s.container.name", p.container.clone()));
                        }
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

#[cfg(test)]
mod tests {
    use crate::collectors::gpu::device::{GpuProcess, Memory, MigDevice};
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;
    use crate::collectors::testutil::value;

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
}
