//! PCIe bytes that do not undercount: a light dedicated thread reads NVML's PCIe byte counters
//! (field values 197/198, `NVML_FI_DEV_PCIE_COUNT_TX_BYTES` / `RX_BYTES`) every
//! `pcie_interval` and accumulates them into 64-bit totals that the tick reports as `hw.gpu.io`.
//!
//! The counters are 32-bit: they wrap every 4 GiB. A difference between two reads is right
//! modulo 2³², so the total is exact as long as less than 4 GiB moves between two reads of the
//! thread: 4.29 GB/s at the default 1 s. A PCIe Gen5 x16 link carries about 63 GB/s per
//! direction (32 GT/s × 16 lanes × 128/130 ÷ 8), which wraps the counter every 68 ms; so the
//! thread adapts: when one interval moved more than 1 GiB it halves its interval, down to
//! [`FAST_INTERVAL`] (50 ms: exact up to 85.9 GB/s, above any x16 link), and doubles it back
//! towards `pcie_interval` once an interval moved less than 256 MiB. What remains undercounted
//! is a burst of more than 4 GiB within one interval before the thread has sped up (at most the
//! first second of a jump from idle to over 4.29 GB/s), and any wrap the sampler missed while it
//! could not read (a lost GPU, a driver reload): after an error the next read starts a new
//! baseline, adding nothing for the gap.
//!
//! ```text
//! read 0: tx = 4294967000   total = 4294967000
//! read 1: tx = 200          total = 4294967000 + (200 - 4294967000 mod 2³²) = 4294967496
//! ```
//!
//! The thread owns its own NVML handle ([`GpuBackend::fresh`]) and measures its own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), logged at debug when it stops and readable by tests.

use super::device::{field, FieldValue, GpuBackend, GpuError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shortest interval the sampler adapts down to under load.
pub const FAST_INTERVAL: Duration = Duration::from_millis(50);
/// The shortest `pcie_interval` accepted (shorter ones are raised to this).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// An interval that moved more than this halves the interval.
const SPEED_UP_BYTES: u64 = 1 << 30;
/// An interval that moved less than this (every GPU, both directions) doubles it back.
const SLOW_DOWN_BYTES: u64 = 256 << 20;

/// One 32-bit counter accumulated into 64 bits.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Accumulator {
    last: Option<u32>,
    /// The next reading is a new baseline (after an error): it adds nothing.
    rebase: bool,
    pub(super) total: u64,
}

impl Accumulator {
    /// Takes a reading; returns the bytes it added.
    pub(super) fn add(&mut self, v: u32) -> u64 {
        let delta = match self.last {
            Some(last) if !self.rebase => v.wrapping_sub(last) as u64,
            Some(_) => 0,
            None => v as u64,
        };
        self.total = self.total.saturating_add(delta);
        self.last = Some(v);
        self.rebase = false;
        delta
    }

    /// A read failed: the next reading is a new baseline.
    pub(super) fn gap(&mut self) {
        self.rebase = self.last.is_some();
    }
}

/// Totals per GPU UUID: transmit, receive (`None` until read once).
type Totals = HashMap<String, [Option<u64>; 2]>;

/// The sampler thread and what it shares with the tick.
pub(super) struct PcieSampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    totals: Arc<Mutex<Totals>>,
    /// Rounds of reads done, the thread's CPU time so far (ns), its current interval (ms).
    pub(super) stats: Arc<[AtomicU64; 3]>,
}

impl PcieSampler {
    /// Starts the thread on `backend` (uninitialised), reading every `interval`.
    pub(super) fn start(mut backend: Box<dyn GpuBackend>, interval: Duration) -> std::io::Result<PcieSampler> {
        let interval = interval.max(MIN_INTERVAL);
        let stop = Arc::new(AtomicBool::new(false));
        let totals = Arc::new(Mutex::new(Totals::new()));
        let stats: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let (s, t, st) = (stop.clone(), totals.clone(), stats.clone());
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let handle = std::thread::Builder::new().name("gpu-pcie".into()).spawn(move || {
            let _log = tracing::dispatcher::set_default(&dispatch);
            match backend.init().and_then(|()| run(&*backend, interval, &s, &t, &st)) {
                Ok(()) => {}
                Err(GpuError::NotSupported) => tracing::info!("no GPU offers PCIe byte counters; hw.gpu.io is not reported"),
                Err(e) => tracing::warn!(error = %e, "the PCIe sampler stopped; hw.gpu.io is read on the tick until NVML is re-initialised"),
            }
            backend.shutdown();
        })?;
        Ok(PcieSampler { stop, handle: Some(handle), totals, stats })
    }

    /// The thread ended (no counters, or the driver went away).
    pub(super) fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// The GPU's totals: transmit, receive.
    pub(super) fn totals_of(&self, uuid: &str) -> [Option<u64>; 2] {
        let t = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        t.get(uuid).copied().unwrap_or_default()
    }
}

impl Drop for PcieSampler {
    /// Stops the thread and waits for it (it sleeps in slices of at most 50 ms).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        let rounds = self.stats[0].load(Ordering::Relaxed);
        let cpu_ns = self.stats[1].load(Ordering::Relaxed);
        tracing::debug!(rounds, cpu_ms = cpu_ns / 1_000_000, per_round_us = cpu_ns / rounds.max(1) / 1000, "PCIe sampler stopped");
    }
}

/// CPU time this thread has used, in ns (0 where the clock is not available).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// The sampler's loop: until `stop`, read every GPU's two counters, then sleep.
fn run(b: &dyn GpuBackend, configured: Duration, stop: &AtomicBool, totals: &Mutex<Totals>, stats: &[AtomicU64; 3]) -> Result<(), GpuError> {
    let n = b.device_count()?;
    let mut gpus: Vec<(u32, String, [Accumulator; 2])> = Vec::new();
    for dev in 0..n {
        match b.identity(dev) {
            Ok(id) => gpus.push((dev, id.uuid, Default::default())),
            Err(e @ GpuError::DriverUnavailable(_)) => return Err(e),
            Err(_) => {} // lost or failing: the tick reports it
        }
    }
    let ids = [field::PCIE_TX_BYTES, field::PCIE_RX_BYTES];
    let mut out = Vec::with_capacity(2);
    let mut interval = configured;
    let mut supported = vec![true; gpus.len()];
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut most = 0u64;
        for (i, (dev, uuid, acc)) in gpus.iter_mut().enumerate() {
            if !supported[i] {
                continue;
            }
            out.clear();
            match b.field_values(*dev, &ids, &mut out) {
                Ok(()) => {}
                Err(GpuError::NotSupported) => {
                    supported[i] = false;
                    continue;
                }
                Err(e @ GpuError::DriverUnavailable(_)) => return Err(e),
                Err(_) => {
                    acc.iter_mut().for_each(Accumulator::gap);
                    continue;
                }
            }
            let mut now = [None; 2];
            let mut any = false;
            for (k, r) in out.iter().take(2).enumerate() {
                match r {
                    Ok(FieldValue::U32(v)) => {
                        most = most.max(acc[k].add(*v));
                        now[k] = Some(acc[k].total);
                        any = true;
                    }
                    Ok(FieldValue::U64(v)) => {
                        // A driver that widens the counter: taken as it is.
                        acc[k].total = *v;
                        now[k] = Some(*v);
                        any = true;
                    }
                    Ok(_) | Err(GpuError::NotSupported) => {}
                    Err(_) => acc[k].gap(),
                }
            }
            if any {
                let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                t.insert(uuid.clone(), now);
            } else if out.iter().all(|r| matches!(r, Err(GpuError::NotSupported))) {
                supported[i] = false;
            }
        }
        if !supported.iter().any(|s| *s) {
            return Err(GpuError::NotSupported);
        }
        interval = next_interval(interval, configured, most);
        stats[0].fetch_add(1, Ordering::Relaxed);
        stats[1].store(thread_cpu_ns(), Ordering::Relaxed);
        stats[2].store(interval.as_millis() as u64, Ordering::Relaxed);
        let wake = started + interval;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= wake {
                break;
            }
            std::thread::park_timeout((wake - now).min(FAST_INTERVAL));
        }
    }
    Ok(())
}

/// Halves the interval (down to [`FAST_INTERVAL`]) after an interval that moved more than
/// 1 GiB in one direction of one GPU; doubles it back (up to `configured`) after one that
/// moved less than 256 MiB.
fn next_interval(current: Duration, configured: Duration, most: u64) -> Duration {
    let floor = FAST_INTERVAL.min(configured);
    if most > SPEED_UP_BYTES {
        (current / 2).max(floor)
    } else if most < SLOW_DOWN_BYTES {
        current.saturating_mul(2).min(configured)
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::gpu::fake::{FakeGpu, FakeNvml};
    use crate::collectors::gpu::rig::*;

    fn wait_for(mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn the_accumulator_counts_every_wrap_and_adds_nothing_across_a_gap() {
        let mut a = Accumulator::default();
        assert_eq!(a.add(4_294_967_000), 4_294_967_000);
        assert_eq!(a.add(200), 496);
        assert_eq!(a.total, 4_294_967_496);
        a.gap();
        assert_eq!(a.add(5_000), 0, "after a failed read the next one is a new baseline");
        assert_eq!(a.add(6_000), 1_000);
        assert_eq!(a.total, 4_294_968_496);
    }

    #[test]
    fn the_64_bit_total_is_exact_across_wraps_at_a_high_rate() {
        // 3 GiB per read: the u32 counter wraps on most reads, as at ~60 GB/s read every 50 ms.
        let step: u32 = 3 << 30;
        let mut gpu = FakeGpu::h100(0);
        gpu.pcie_tx = 1000;
        gpu.pcie_tx_step = step;
        let fake = FakeNvml::with(vec![gpu, FakeGpu::h100(1)]);
        fake.state().initialised = true;
        let s = PcieSampler::start(fake.fresh(), MIN_INTERVAL).unwrap();
        wait_for(|| s.stats[0].load(Ordering::Relaxed) >= 40);
        let totals = s.totals.clone();
        let stats = s.stats.clone();
        drop(s);
        let reads = fake.calls(0, "helper:field_values") as u64;
        assert!(reads >= 40, "{reads}");
        let tx = totals.lock().unwrap()[UUID0][0].unwrap();
        assert_eq!(tx, 1000 + (reads - 1) * step as u64, "every wrap counted");
        assert_eq!(totals.lock().unwrap()[UUID1], [Some(1000), Some(2000)], "an idle GPU stays put");
        let (rounds, cpu) = (stats[0].load(Ordering::Relaxed), stats[1].load(Ordering::Relaxed));
        println!("PCIe sampler on the fake, 2 GPUs: {rounds} rounds, {} µs CPU per round", cpu / rounds.max(1) / 1000);
    }

    #[test]
    fn the_interval_shortens_under_load_and_returns_when_idle() {
        let one = Duration::from_secs(1);
        assert_eq!(next_interval(one, one, 2 << 30), Duration::from_millis(500));
        assert_eq!(next_interval(Duration::from_millis(60), one, 2 << 30), FAST_INTERVAL);
        assert_eq!(next_interval(FAST_INTERVAL, one, 100 << 20), Duration::from_millis(100));
        assert_eq!(next_interval(Duration::from_millis(800), one, 0), one);
        assert_eq!(next_interval(Duration::from_millis(400), one, 512 << 20), Duration::from_millis(400));
        assert_eq!(next_interval(MIN_INTERVAL, MIN_INTERVAL, 4 << 30), MIN_INTERVAL, "never above the configured interval");
    }

    #[test]
    fn the_tick_reports_the_samplers_totals_and_stops_reading_the_counters_itself() {
        let mut gpu = FakeGpu::h100(0);
        gpu.pcie_tx_step = 3 << 30;
        let fake = FakeNvml::with(vec![gpu]);
        let config =
            crate::collectors::gpu::GpuConfig { pcie_interval: crate::units::ConfigDuration::millis(10), ..crate::collectors::gpu::GpuConfig::default() };
        let mut r = Rig::with(fake.clone(), config, crate::units::HostPaths::under("/nonexistent-metricsd-test"));
        let tx = at(0, &[("network.io.direction", "transmit")]);
        r.tick();
        let mut p = r.after(1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::collectors::testutil::value(&p, "hw.gpu.io", &tx).is_none_or(|v| v < 20.0 * (3u64 << 30) as f64) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            p = r.after(1);
        }
        let v = crate::collectors::testutil::value(&p, "hw.gpu.io", &tx).unwrap();
        assert!(v >= 20.0 * (3u64 << 30) as f64, "{v}: more than 4 GiB between ticks, still counted");
        drop(r); // stops the sampler, so that the counts below are final
        assert_eq!(fake.calls(0, "pcie_tx_read"), fake.calls(0, "helper:field_values"), "only the sampler reads the counters");
    }
}
