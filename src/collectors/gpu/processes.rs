//! GPU memory per process: the compute and graphics process lists of one GPU (a process in
//! both counted once), the `max_processes` using the most memory, each named from
//! `/proc/PID/comm` and placed in its container and pod from `/proc/PID/cgroup`.

use super::device::{GpuBackend, GpuProcess, ProcessKind};
use super::snapshot::GpuSnapshot;
use super::state::{Abort, Cap, DeviceState, Scratch};
use super::GpuConfig;
use crate::resource::container::{container_of_cgroup_line, k8s_pod_uid_of_cgroup};
use crate::units::HostPaths;
use opentelemetry::KeyValue;
use std::sync::Arc;

pub(super) fn sample_processes(
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

#[cfg(test)]
mod tests {
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;
    use crate::collectors::gpu::GpuConfig;
    use crate::collectors::testutil::{of, value};
    use crate::units::HostPaths;

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
}
