//! The GPU collector's test rig: a collector on the fake driver ([`super::fake`]) and a fake
//! clock, registered on a meter provider; the attributes of the fake GPUs; captured logs; a
//! `/proc` tree with a containerised process.

use super::collector::{GpuCollector, Now};
use super::device::GpuProcess;
use super::fake::FakeNvml;
use super::GpuConfig;
use crate::collectors::testutil::{Harness, Point};
use crate::collectors::TickClock;
use crate::units::HostPaths;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) const UUID0: &str = "GPU-11899c91-4bd4-1fa3-7e4c-3d6b0b0f0000";
pub(super) const UUID1: &str = "GPU-11899c91-4bd4-1fa3-7e4c-3d6b0b0f0001";

/// A collector on a fake driver and a fake clock, registered on a meter provider.
pub(super) struct Rig {
    pub(super) offset: Arc<Mutex<Duration>>,
    pub(super) c: GpuCollector,
    pub(super) h: Harness,
}

impl Rig {
    /// The default config, except that the PCIe counters are read on the tick (`pcie_interval:
    /// 0s`), so that tests set them between ticks; `pcie.rs` tests the sampler thread.
    pub(super) fn new(fake: FakeNvml) -> Self {
        let config = GpuConfig { pcie_interval: crate::units::ConfigDuration::secs(0), ..GpuConfig::default() };
        Rig::with(fake, config, HostPaths::under("/nonexistent-metricsd-test"))
    }

    pub(super) fn with(fake: FakeNvml, config: GpuConfig, paths: HostPaths) -> Self {
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
    pub(super) fn tick(&mut self) -> Vec<Point> {
        self.h.tick(&mut self.c).expect("the GPU collector's refresh never fails")
    }

    /// Moves the fake clock `secs` on, then ticks.
    pub(super) fn after(&mut self, secs: u64) -> Vec<Point> {
        *self.offset.lock().unwrap() += Duration::from_secs(secs);
        self.tick()
    }
}

/// The attributes of fake GPU `i` plus `extra`.
pub(super) fn at(i: usize, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("hw.id", [UUID0, UUID1][i]),
        ("hw.name", "NVIDIA H100 80GB HBM3"),
        ("hw.vendor", "nvidia"),
        ("hw.type", "gpu"),
        ("gpu.index", ["0", "1"][i]),
        ("hw.gpu.pci_bus_id", ["00000000:00:06.0", "00000000:00:07.0"][i]),
        ("hw.serial_number", "1752624011542"),
        ("hw.model", "NVIDIA H100 80GB HBM3"),
        ("hw.driver_version", "580.159.04"),
    ];
    v.extend_from_slice(extra);
    v
}

pub(super) use crate::test_logs::capture_logs;

pub(super) fn points_of_gpu<'a>(p: &'a [Point], uuid: &str) -> Vec<&'a Point> {
    p.iter().filter(|p| p.1.iter().any(|(k, v)| k == "hw.id" && v == uuid)).collect()
}

pub(super) const CONTAINER: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub(super) fn proc_tree() -> tempfile::TempDir {
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

pub(super) fn proc(pid: u32, mib: Option<u64>) -> GpuProcess {
    GpuProcess { pid, used_memory: mib.map(|m| m << 20), ..GpuProcess::default() }
}
