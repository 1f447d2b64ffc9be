//! Critical XID errors, counted per GPU and XID code by a dedicated thread that waits on NVML
//! events, so the tick never blocks on them: it only copies the counts.
//!
//! The thread owns its own NVML handle ([`GpuBackend::fresh`]), creates an event set
//! (`nvmlEventSetCreate`), registers every GPU that offers `nvmlEventTypeXidCriticalError`
//! (`nvmlDeviceRegisterEvents`) and waits (`nvmlEventSetWait_v2`) at most [`POLL`] at a time,
//! so stopping it takes at most about that long. Each event is one log line at warn:
//!
//! ```text
//! WARN gpu.index=0 hw.id=GPU-11899c91-… nvidia.gpu.xid=79 GPU reported a critical XID error
//! ```
//!
//! and one more in `nvidia.gpu.xid.errors{nvidia.gpu.xid="79"}`. The counts start at 0 when the
//! agent starts (NVML keeps no history); a GPU with no XID error so far has no point. NVML
//! delivers the *last* XID of a device to every pending event, so XIDs that arrive faster than
//! the thread wakes may be counted under the latest code.

use super::device::{GpuBackend, GpuError, XidEvent};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest one wait for events lasts: the bound on stopping the thread.
pub const POLL: Duration = Duration::from_millis(500);
/// At most this many distinct XID codes are counted per GPU (NVML's codes are below 200);
/// events with further codes are logged and not counted.
pub const MAX_CODES_PER_GPU: usize = 64;

/// Counts per GPU UUID, per XID code.
type Counts = HashMap<String, BTreeMap<u64, u64>>;

/// The XID thread and the counts it keeps.
pub(super) struct XidWatch {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    counts: Arc<Mutex<Counts>>,
}

impl XidWatch {
    /// Starts the thread on `backend` (uninitialised: the thread initialises it). Counts carry
    /// over from `previous` (a thread that ended, restarted after NVML was re-initialised).
    pub(super) fn start(mut backend: Box<dyn GpuBackend>, previous: Option<XidWatch>) -> std::io::Result<XidWatch> {
        let counts = previous.as_ref().map(|p| p.counts.clone()).unwrap_or_default();
        drop(previous);
        let stop = Arc::new(AtomicBool::new(false));
        let (s, c) = (stop.clone(), counts.clone());
        // The thread logs where its starter logs (the global subscriber, or a test's).
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let handle = std::thread::Builder::new().name("gpu-xid".into()).spawn(move || {
            let _log = tracing::dispatcher::set_default(&dispatch);
            let mut on_event = |e: XidEvent| record(&c, e);
            match backend.init().and_then(|()| backend.watch_xid(&s, POLL, &mut on_event)) {
                Ok(()) => {}
                Err(GpuError::NotSupported) => {
                    tracing::info!("no GPU offers XID error events; nvidia.gpu.xid.errors is not reported")
                }
                Err(e) => tracing::warn!(error = %e, "waiting for GPU XID events failed; XID errors are not counted until NVML is re-initialised"),
            }
            backend.shutdown();
        })?;
        Ok(XidWatch { stop, handle: Some(handle), counts })
    }

    /// The thread ended (no XID support, or the driver went away).
    pub(super) fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Appends the counts of the GPU `uuid`, (code, count) by code, to `out`.
    pub(super) fn counts_of(&self, uuid: &str, out: &mut Vec<(u64, u64)>) {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(by_code) = counts.get(uuid) {
            out.extend(by_code.iter().map(|(c, n)| (*c, *n)));
        }
    }
}

impl Drop for XidWatch {
    /// Stops the thread and waits for it: at most about [`POLL`].
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn record(counts: &Mutex<Counts>, e: XidEvent) {
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    let by_code = counts.entry(e.uuid.clone()).or_default();
    if by_code.len() >= MAX_CODES_PER_GPU && !by_code.contains_key(&e.code) {
        tracing::warn!(gpu.index = e.index, hw.id = %e.uuid, nvidia.gpu.xid = e.code, max = MAX_CODES_PER_GPU,
            "GPU reported a critical XID error; not counted, too many distinct codes");
        return;
    }
    let n = by_code.entry(e.code).or_default();
    *n = n.saturating_add(1);
    tracing::warn!(gpu.index = e.index, hw.id = %e.uuid, nvidia.gpu.xid = e.code, "GPU reported a critical XID error");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;
    use crate::collectors::testutil::{kind, of, value, Kind};
    use std::time::Instant;

    fn xid(index: u32, uuid: &str, code: u64) -> XidEvent {
        XidEvent { index, uuid: uuid.into(), code }
    }

    /// Ticks until `metric` has `n` points (the thread delivers in the background), for at most
    /// 10 s.
    fn tick_until(r: &mut Rig, metric: &str, n: usize) -> Vec<crate::collectors::testutil::Point> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = r.after(1);
            if of(&p, metric).len() >= n || Instant::now() > deadline {
                return p;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn xid_errors_are_counted_per_gpu_and_code_with_one_log_line_each() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0), FakeGpu::h100(1)]);
        let mut r = Rig::new(fake.clone());
        let m = "nvidia.gpu.xid.errors";
        let (p, logs) = capture_logs(|| {
            assert!(of(&r.tick(), m).is_empty(), "no XID error yet: no point");
            fake.state().xid_events.extend([xid(0, UUID0, 79), xid(0, UUID0, 48), xid(0, UUID0, 79), xid(1, UUID1, 13)]);
            let p = tick_until(&mut r, m, 3);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut p = p;
            while value(&p, m, &at(0, &[("nvidia.gpu.xid", "79")])) != Some(2.0) && Instant::now() < deadline {
                p = r.after(1);
            }
            p
        });
        assert_eq!(value(&p, m, &at(0, &[("nvidia.gpu.xid", "79")])), Some(2.0));
        assert_eq!(value(&p, m, &at(0, &[("nvidia.gpu.xid", "48")])), Some(1.0));
        assert_eq!(value(&p, m, &at(1, &[("nvidia.gpu.xid", "13")])), Some(1.0));
        assert_eq!(kind(&p, m), Some(Kind::Counter));
        assert_eq!(logs.matches("GPU reported a critical XID error").count(), 4, "{logs}");
        assert!(logs.contains(&format!("hw.id={UUID0}")) && logs.contains("nvidia.gpu.xid=79") && logs.contains("gpu.index=1"), "{logs}");
    }

    #[test]
    fn without_xid_support_the_thread_ends_with_one_line_and_the_gpu_metrics_flow() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        fake.state().xid_supported = false;
        let mut r = Rig::new(fake.clone());
        let (p, logs) = capture_logs(|| {
            r.tick();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !r.c.xid_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            r.after(10)
        });
        assert!(of(&p, "nvidia.gpu.xid.errors").is_empty());
        assert_eq!(value(&p, "hw.power", &at(0, &[])), Some(115.35));
        assert_eq!(logs.matches("no GPU offers XID error events").count(), 1, "{logs}");
    }

    #[test]
    fn stopping_the_thread_returns_while_it_waits() {
        let fake = FakeNvml::with(vec![FakeGpu::h100(0)]);
        fake.state().initialised = true;
        let w = XidWatch::start(fake.fresh(), None).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!w.is_finished(), "the thread waits for events");
        drop(w); // joins: returns because the wait loop checks the stop flag
    }

    #[test]
    fn counts_are_bounded_per_gpu() {
        let counts = Mutex::new(Counts::new());
        for code in 0..(MAX_CODES_PER_GPU as u64 + 10) {
            record(&counts, xid(0, UUID0, code));
        }
        record(&counts, xid(0, UUID0, 3));
        let c = counts.lock().unwrap();
        assert_eq!(c[UUID0].len(), MAX_CODES_PER_GPU);
        assert_eq!(c[UUID0][&3], 2, "a known code still counts");
    }
}
