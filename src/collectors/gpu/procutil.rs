//! Who uses a shared GPU: `nvmlDeviceGetProcessUtilization` gives, per process and per sample
//! period (1/6 s to 1 s), the percent of time it kept the SMs, the memory controller, the
//! encoder and the decoder busy. Each tick asks for the samples taken since the newest one it
//! saw, takes each process's mean over them, and sums the processes of each container (placed
//! by `/proc/PID/cgroup`, as the per-process memory is): on a time-sliced or MPS-shared GPU,
//! each container's share instead of the device's total copied to every pod.
//!
//! ```text
//! pid 4242 (container 9f86…): sm 30 %, 50 %  → 40 %  ┐ container 9f86…: 0.5
//! pid 5000 (container 9f86…): sm 10 %        → 10 %  ┘
//! pid 777  (no container):    sm 20 %        → 20 %    host: 0.2
//! ```
//!
//! A process with no sample since the last tick was idle: its container has no point this
//! tick. Sums are capped at 1 (NVML's percentages of overlapping processes can add past 100).

use super::device::GpuBackend;
use super::snapshot::{ContainerAttrs, GpuSnapshot};
use super::state::{Abort, Cap, DeviceState, Scratch};
use crate::resource::container::{container_of_cgroup_line, k8s_pod_uid_of_cgroup};
use crate::units::HostPaths;
use std::sync::Arc;

/// At most this many containers per GPU get a point (those using the SMs the most).
pub const MAX_CONTAINERS: usize = 256;

pub(super) fn sample_utilization(
    b: &dyn GpuBackend,
    st: &mut DeviceState,
    paths: &HostPaths,
    scratch: &mut Scratch,
    snap: &mut GpuSnapshot,
) -> Result<(), Abort> {
    let d = st.dev;
    let since = st.util_since;
    scratch.util.clear();
    let out = &mut scratch.util;
    if st.get(Cap::ProcessUtilization, || b.process_utilization(d, since, out))?.is_none() {
        return Ok(());
    }
    let samples = &mut scratch.util;
    if let Some(newest) = samples.iter().map(|s| s.timestamp_us).max() {
        st.util_since = st.util_since.max(newest);
    }
    samples.sort_unstable_by_key(|s| s.pid);
    let first = snap.containers.len();
    let mut i = 0;
    while i < samples.len() {
        let pid = samples[i].pid;
        let mut j = i;
        let mut sum = [0f64; 4];
        while j < samples.len() && samples[j].pid == pid {
            let s = &samples[j];
            for (k, v) in [s.sm, s.memory, s.encoder, s.decoder].into_iter().enumerate() {
                sum[k] += v.min(100) as f64;
            }
            j += 1;
        }
        let n = (j - i) as f64;
        i = j;
        let attrs = container_attrs(st, paths, pid);
        let slot = match snap.containers[first..].iter().position(|(a, _)| Arc::ptr_eq(a, &attrs)) {
            Some(p) => first + p,
            None => {
                snap.containers.push((attrs, [0.0; 4]));
                snap.containers.len() - 1
            }
        };
        for (k, s) in sum.iter().enumerate() {
            snap.containers[slot].1[k] += s / n / 100.0;
        }
    }
    for (_, u) in &mut snap.containers[first..] {
        u.iter_mut().for_each(|v| *v = v.min(1.0));
    }
    if snap.containers.len() - first > MAX_CONTAINERS {
        snap.containers[first..].sort_by(|a, b| b.1[0].total_cmp(&a.1[0]));
        snap.containers.truncate(first + MAX_CONTAINERS);
    }
    let seen = &scratch.util;
    st.util_pids.retain(|pid, _| seen.iter().any(|s| s.pid == *pid));
    let pids = &st.util_pids;
    st.util_containers.retain(|_, a| pids.values().any(|p| Arc::ptr_eq(p, a)));
    Ok(())
}

/// The attribute sets of the container of `pid` (one per container, shared by its processes).
fn container_attrs(st: &mut DeviceState, paths: &HostPaths, pid: u32) -> Arc<ContainerAttrs> {
    if let Some(a) = st.util_pids.get(&pid) {
        return a.clone();
    }
    let cgroup = std::fs::read_to_string(paths.proc(&format!("{pid}/cgroup"))).unwrap_or_default();
    let key = (container_of_cgroup_line(&cgroup).map(|(id, _)| id.to_string()), k8s_pod_uid_of_cgroup(&cgroup).map(|u| u.to_string()));
    let base = &st.attrs.base;
    let a = st.util_containers.entry(key).or_insert_with_key(|(c, u)| Arc::new(ContainerAttrs::new(base, c.as_deref(), u.as_deref()))).clone();
    st.util_pids.insert(pid, a.clone());
    a
}

#[cfg(test)]
mod tests {
    use crate::collectors::gpu::device::ProcessUtilization;
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;
    use crate::collectors::gpu::GpuConfig;
    use crate::collectors::testutil::{of, value};
    use crate::units::HostPaths;

    fn sample(pid: u32, t: u64, sm: u32, memory: u32) -> ProcessUtilization {
        ProcessUtilization { pid, timestamp_us: t, sm, memory, encoder: 0, decoder: 3 }
    }

    const POD: &str = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901";

    #[test]
    fn a_shared_gpu_shows_each_containers_share_over_the_last_interval() {
        let dir = proc_tree();
        let cgroup = std::fs::read_to_string(dir.path().join("proc/4242/cgroup")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/5000")).unwrap();
        std::fs::write(dir.path().join("proc/5000/cgroup"), cgroup).unwrap();
        let mut gpu = FakeGpu::h100(0);
        gpu.util_samples = vec![sample(4242, 10, 30, 8), sample(4242, 20, 50, 12), sample(5000, 15, 10, 2), sample(777, 12, 20, 0)];
        let fake = FakeNvml::with(vec![gpu]);
        let config = GpuConfig { pcie_interval: crate::units::ConfigDuration::secs(0), ..GpuConfig::default() };
        let mut r = Rig::with(fake.clone(), config, HostPaths::under(dir.path()));
        let p = r.tick();
        let m = "nvidia.gpu.container.utilization";
        let in_pod = |task| at(0, &[("container.id", CONTAINER), ("k8s.pod.uid", POD), ("hw.gpu.task", task)]);
        assert_eq!(value(&p, m, &in_pod("general")), Some(0.5), "{:?}", of(&p, m));
        assert_eq!(value(&p, m, &in_pod("encoder")), Some(0.0));
        assert_eq!(value(&p, m, &in_pod("decoder")), Some(0.06));
        assert_eq!(value(&p, m, &at(0, &[("hw.gpu.task", "general")])), Some(0.2), "the host's processes");
        let mc = "nvidia.gpu.container.memory_controller.utilization";
        let memory = value(&p, mc, &at(0, &[("container.id", CONTAINER), ("k8s.pod.uid", POD)])).unwrap();
        assert!((memory - 0.12).abs() < 1e-12, "{memory}: (8 + 12) / 2 + 2 percent");
        assert_eq!(of(&p, m).len(), 6);

        // The next tick counts only newer samples: the container went idle, the host did not.
        fake.state().gpus[0].util_samples.push(sample(777, 30, 70, 5));
        let p = r.after(10);
        assert_eq!(value(&p, m, &at(0, &[("hw.gpu.task", "general")])), Some(0.7));
        assert_eq!(value(&p, m, &in_pod("general")), None, "idle since the last tick");
        // Nothing new at all: no point.
        assert!(of(&r.after(10), m).is_empty());
        assert_eq!(fake.calls(0, "process_utilization"), 3);
    }

    #[test]
    fn shares_are_capped_at_one_and_a_gpu_without_the_call_is_asked_once() {
        let mut gpu = FakeGpu::h100(0);
        gpu.util_samples = vec![sample(1, 10, 90, 0), sample(2, 10, 80, 0)];
        let fake = FakeNvml::with(vec![gpu, FakeGpu::h100(1).without(&["process_utilization"])]);
        let mut r = Rig::new(fake.clone());
        let p = r.tick();
        r.after(10);
        assert_eq!(value(&p, "nvidia.gpu.container.utilization", &at(0, &[("hw.gpu.task", "general")])), Some(1.0));
        assert!(points_of_gpu(&p, UUID1).iter().all(|p| !p.0.starts_with("nvidia.gpu.container")));
        assert_eq!(fake.calls(1, "process_utilization"), 1);
    }
}
