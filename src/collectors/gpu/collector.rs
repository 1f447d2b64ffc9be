//! The GPU collector itself: NVML's lifecycle (initialise, enumerate the GPUs, retry with
//! doubling backoff when there is no driver, a GPU is lost or the driver goes away) and the
//! tick that samples every GPU into the snapshot the instruments read.

use super::device::{field, throttle, GpuBackend, GpuError};
use super::events::XidWatch;
use super::pcie::PcieSampler;
use super::podresources::{Assignments, PodResourcesWatch};
use super::sample::sample;
use super::snapshot::{GpuAttrs, GpuSample, GpuSnapshot, HwState, Values};
use super::state::{Abort, Cap, DeviceState, Scratch};
use super::{instruments, nvml, GpuConfig};
use crate::collectors::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait between two attempts to initialise NVML.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(600);

/// Where the collector gets the time from (a fake clock in tests).
pub type Now = Arc<dyn Fn() -> Instant + Send + Sync>;

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
    /// The XID event thread, started at the first successful init (with `xid`).
    xid: Option<XidWatch>,
    /// The PCIe sampler thread (with `pcie_io` and a `pcie_interval` above 0).
    pcie: Option<PcieSampler>,
    /// The PodResources thread (with a `pod_resources_interval` above 0).
    pods: Option<PodResourcesWatch>,
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
            xid: None,
            pcie: None,
            pods: None,
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
                self.start_helpers();
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

    /// Starts the XID thread when it is on and not running (first init, or it ended).
    fn start_helpers(&mut self) {
        if self.config.xid && self.xid.as_ref().is_none_or(XidWatch::is_finished) {
            match XidWatch::start(self.backend.fresh(), self.xid.take()) {
                Ok(w) => self.xid = Some(w),
                Err(e) => tracing::warn!(error = %e, "cannot start the GPU XID thread; XID errors are not counted"),
            }
        }
        let every = self.config.pod_resources_interval.get();
        if self.pods.is_none() && !every.is_zero() {
            match PodResourcesWatch::start(self.config.pod_resources_socket.clone(), every) {
                Ok(w) => self.pods = Some(w),
                Err(e) => tracing::warn!(error = %e, "cannot start the PodResources thread; GPUs carry no pod names"),
            }
        }
        let interval = self.config.pcie_interval.get();
        if self.config.pcie_io && !interval.is_zero() && self.pcie.as_ref().is_none_or(PcieSampler::is_finished) {
            self.pcie = None;
            match PcieSampler::start(self.backend.fresh(), interval) {
                Ok(s) => self.pcie = Some(s),
                Err(e) => tracing::warn!(error = %e, "cannot start the GPU PCIe sampler; PCIe bytes are read on the tick"),
            }
        }
    }

    /// The XID thread ended (or never started).
    #[cfg(test)]
    pub(super) fn xid_finished(&self) -> bool {
        self.xid.as_ref().is_none_or(XidWatch::is_finished)
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
            if self.config.nvlink && !st.lost {
                match find_links(backend, &mut st) {
                    Ok(()) => {}
                    Err(Abort::Lost) => st.lost = true,
                    Err(Abort::Driver(m)) => return Err(GpuError::DriverUnavailable(m)),
                }
            }
            st.attrs = Arc::new(GpuAttrs::new(&st.id, st.fans, &st.links, None));
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
        let GpuCollector { backend, devices, config, paths, scratch, lost_logged, xid, pcie, pods, .. } = self;
        let sampler = pcie.as_ref().filter(|s| !s.is_finished());
        let assigned = pods.as_ref().map(PodResourcesWatch::current);
        scratch.pods = assigned.as_ref().map(|(_, a)| a.clone());
        for st in devices.iter_mut() {
            if let Some((generation, a)) = &assigned {
                assign_pod(st, *generation, a);
            }
            let mut v = Values::default();
            if let Some(w) = xid {
                xid_values(w, st, scratch, &mut v);
            }
            st.pcie_sampled = sampler.is_some();
            if !st.lost {
                let (np, nm) = (snap.processes.len(), snap.mig.len());
                match sample(&**backend, st, config, paths, now, scratch, &mut v, snap) {
                    Ok(()) => {
                        if let Some(s) = sampler {
                            v.pcie = s.totals_of(&st.id.uuid);
                        }
                        // Processes on a GPU no pod holds: a pod may have just started.
                        if st.pod.is_none() && snap.processes.len() > np {
                            pods.as_ref().inspect(|w| w.refresh_soon());
                        }
                    }
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
            } else if v.throttle.is_some_and(|t| t & throttle::DEGRADED != 0) || v.needs_reset() {
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

/// The NVLink links a GPU answers for: probed once, at enumeration (a GPU without NVLink
/// answers `NotSupported` for link 0 and is not asked again).
fn find_links(b: &dyn GpuBackend, st: &mut DeviceState) -> Result<(), Abort> {
    let dev = st.dev;
    for link in 0..field::NVLINK_MAX_LINKS {
        match b.nvlink_active(dev, link) {
            Ok(_) => st.links.push(link),
            Err(GpuError::NotSupported) if link == 0 => break,
            Err(GpuError::NotSupported) => {}
            Err(GpuError::Lost) => return Err(Abort::Lost),
            Err(GpuError::DriverUnavailable(m)) => return Err(Abort::Driver(m)),
            Err(GpuError::Other(m)) => tracing::debug!(gpu.index = st.id.index, link, error = %m, "NVLink link state unreadable at enumeration"),
        }
    }
    if st.links.is_empty() {
        tracing::debug!(gpu.index = st.id.index, hw.id = %st.id.uuid, "no NVLink on this GPU; NVLink metrics not reported");
        st.unsupported |= Cap::NvLinkTx.bit() | Cap::NvLinkRx.bit() | Cap::NvLinkState.bit();
    }
    Ok(())
}

/// Takes the GPU's pod from a new PodResources answer; when it changed, rebuilds the GPU's
/// attribute sets and drops those derived from them.
fn assign_pod(st: &mut DeviceState, generation: u64, a: &Assignments) {
    if st.pods_gen == generation {
        return;
    }
    st.pods_gen = generation;
    st.mig.clear(); // MIG devices carry their own pod
    let pod = a.get(&st.id.uuid).cloned();
    if pod != st.pod {
        st.pod = pod;
        st.attrs = Arc::new(GpuAttrs::new(&st.id, st.fans, &st.links, st.pod.as_ref()));
        st.processes.clear();
        st.xid.clear();
        st.util_pids.clear();
        st.util_containers.clear();
    }
}

/// The XID counts of one GPU, with their attribute sets (built once per code).
fn xid_values(w: &XidWatch, st: &mut DeviceState, scratch: &mut Scratch, v: &mut Values) {
    scratch.xid.clear();
    w.counts_of(&st.id.uuid, &mut scratch.xid);
    for &(code, n) in &scratch.xid {
        let base = &st.attrs.base;
        let attrs = st.xid.entry(code).or_insert_with(|| {
            let mut a = base.clone();
            a.push(KeyValue::new("nvidia.gpu.xid", code as i64));
            a.into()
        });
        v.xid.push((attrs.clone(), n));
    }
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
    use super::*;
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;
    use crate::collectors::testutil::value;

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
}
