//! The tick: on a thread of its own, refreshes every collector (in turn; those that may block
//! each on a blocking thread under the time limit), collects the OpenTelemetry instruments into
//! one [`Batch`] and hands it to every exporter's queue; a late tick delays the following ones.

use super::meter;
use super::state::{AgentState, TickTimings};
use super::Batch;
use crate::collectors::metric_settings::MetricSettings;
use crate::collectors::{Collector, TickClock};
use crate::points::CompactResource;
use crate::resource::Attributes;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A collector's refresh: its name, how long it took, and its error.
type RefreshResult = (&'static str, Duration, Result<(), String>);
type SlowTx = std::sync::mpsc::Sender<RefreshResult>;

/// The tick after which the pages only start-up used are given back.
const RELEASE_PAGES_AFTER_TICKS: u64 = 3;

type SharedCollector = Arc<Mutex<Box<dyn Collector>>>;

/// Collectors, their instruments and the exporters' queues: everything one tick needs.
pub struct Scheduler {
    clock: TickClock,
    collectors: Vec<(&'static str, SharedCollector)>,
    provider: meter::MeterProvider,
    /// The host's resource, as every batch carries it.
    resource: Resource,
    /// The last batch (still `/metrics`' latest) and the one before: once every exporter is
    /// done with that one, the tick rewrites its points and encoding buffer in place (see
    /// [`meter::MeterProvider::collect_reusing`]) instead of allocating them anew.
    recent: [Option<Arc<Batch>>; 2],
    timeout: Duration,
    state: Arc<AgentState>,
    seq: u64,
    last_errors: BTreeMap<&'static str, String>,
    scraper: Option<Arc<crate::scrape::Scraper>>,
    /// The scraped series' attribute sets.
    scrape_interner: super::compact::ScrapeInterner,
}

impl Scheduler {
    /// Registers every collector's instruments on a new meter provider carrying `resource`.
    pub fn new(collectors: Vec<Box<dyn Collector>>, clock: TickClock, resource: &Attributes, timeout: Duration, state: Arc<AgentState>) -> Self {
        Self::with_settings(collectors, clock, resource, timeout, state, &BTreeMap::new())
    }

    /// [`new`](Scheduler::new), each collector's instruments registered as its per-metric
    /// `settings` say (by collector name: `collector.<name>.metrics`).
    pub fn with_settings(
        mut collectors: Vec<Box<dyn Collector>>,
        clock: TickClock,
        resource: &Attributes,
        timeout: Duration,
        state: Arc<AgentState>,
        settings: &BTreeMap<&'static str, Arc<MetricSettings>>,
    ) -> Self {
        let resource = Resource {
            attributes: resource.iter().map(|(k, v)| meter::proto_key_value(&KeyValue::new(k.clone(), v.clone()))).collect(),
            dropped_attributes_count: 0,
            entity_refs: Vec::new(),
        };
        let provider = meter::MeterProvider::new();
        let scope = opentelemetry::InstrumentationScope::builder("metricsd").with_version(env!("CARGO_PKG_VERSION")).build();
        let meter = provider.meter_with_scope(scope.clone());
        for c in collectors.iter_mut() {
            match settings.get(c.name()).filter(|s| !s.is_empty()) {
                Some(s) => c.register(&provider.meter_with_settings(scope.clone(), s.clone())),
                None => c.register(&meter),
            }
        }
        let collectors = collectors.into_iter().map(|c| (c.name(), Arc::new(Mutex::new(c)))).collect();
        Scheduler {
            clock,
            collectors,
            provider,
            resource,
            recent: [None, None],
            timeout,
            state,
            seq: 0,
            last_errors: BTreeMap::new(),
            scraper: None,
            scrape_interner: Default::default(),
        }
    }

    /// Adds the scrape targets' latest results to every batch.
    pub fn with_scraper(mut self, s: Option<Arc<crate::scrape::Scraper>>) -> Self {
        self.scraper = s;
        self
    }

    /// Names of the collectors in use.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|(n, _)| *n).collect()
    }

    /// One tick: refresh, collect; the batch is stored as the latest and returned (each
    /// exporter encodes it on its own thread).
    /// Runs on the calling thread (see [`tick_now`](Scheduler::tick_now)).
    pub async fn tick(&mut self) -> Arc<Batch> {
        self.tick_now()
    }

    /// One tick on the calling thread.
    ///
    /// Collectors that cannot block (plain /proc and /sys reads) are refreshed in turn here,
    /// then the OpenTelemetry collect and the encoding run here too: no thread hand-off at
    /// all. Collectors that may block (driver calls) run each on a blocking thread, and the
    /// tick waits for them until the time limit.
    pub fn tick_now(&mut self) -> Arc<Batch> {
        self.clock.advance();
        self.seq += 1;
        // Spans are at debug level: stderr at info never shows them; `telemetry.traces` sends them.
        let _tick = tracing::debug_span!("tick", seq = self.seq).entered();
        let started = Instant::now();
        let deadline = crate::units::duration::deadline_after(started, self.timeout);
        // Collectors that may block run on threads of their own; the channel that brings their
        // results back is only made when there is one (most ticks have none: making it is ~1 %
        // of a tick).
        let mut slow: Option<(SlowTx, std::sync::mpsc::Receiver<RefreshResult>)> = None;
        let mut pending = Vec::new();
        for (name, c) in &self.collectors {
            if !c.try_lock().map(|c| c.may_block()).unwrap_or(true) {
                continue;
            }
            let slow_tx = &slow.get_or_insert_with(std::sync::mpsc::channel).0;
            let (c, tx, name) = (c.clone(), slow_tx.clone(), *name);
            let job = move || {
                let r = match c.try_lock() {
                    Ok(mut c) => c.refresh().map_err(|e| e.to_string()),
                    Err(_) => Err("the previous refresh is still running".to_string()),
                };
                let _ = tx.send((name, started.elapsed(), r));
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => drop(h.spawn_blocking(job)),
                Err(_) => drop(std::thread::spawn(job)),
            }
            pending.push(name);
        }
        let slow_rx = slow.map(|(tx, rx)| {
            drop(tx);
            rx
        });
        let mut results: Vec<RefreshResult> = Vec::with_capacity(self.collectors.len());
        for (name, c) in &self.collectors {
            if pending.contains(name) {
                continue;
            }
            let t = Instant::now();
            let _refresh = tracing::debug_span!("refresh", collector = *name).entered();
            let r = match c.try_lock() {
                Ok(mut c) => c.refresh().map_err(|e| e.to_string()),
                Err(_) => Err("the previous refresh is still running".to_string()),
            };
            results.push((*name, t.elapsed(), r));
        }
        while let (false, Some(slow_rx)) = (pending.is_empty(), slow_rx.as_ref()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match slow_rx.recv_timeout(left) {
                Ok(r) => {
                    pending.retain(|n| *n != r.0);
                    results.push(r);
                }
                Err(_) => break,
            }
        }
        for name in pending {
            results.push((name, self.timeout, Err(format!("refresh timed out after {:?}", self.timeout))));
        }
        // A collector that failed or timed out reports nothing this tick. One still running
        // would stamp its snapshot late; advancing the clock for the collect would hide good
        // ones too, so instead we only record the failure (its cell keeps the old stamp, which
        // no longer matches the current tick unless it finishes in time).
        let refreshed = Instant::now();
        // The batch before the last, if no exporter and no `/metrics` request holds it any more.
        let host = match self.recent[1].take().map(Arc::try_unwrap) {
            Some(Ok(b)) => b.into_parts().into_iter().next(),
            _ => None,
        };
        let mut host = host.unwrap_or_else(|| CompactResource { resource: self.resource.clone(), ..Default::default() });
        let old = std::mem::take(&mut host.scopes);
        host.otlp_scopes.clear();
        host.scopes = tracing::debug_span!("collect").in_scope(|| self.provider.collect_compact(std::time::SystemTime::now(), old));
        let collected = Instant::now();
        // Metrics a collector read whole (textfiles) join the host's resource, from collectors
        // whose refresh succeeded this tick.
        for (name, c) in &self.collectors {
            if results.iter().any(|(n, _, r)| n == name && r.is_ok()) {
                if let Some(sm) = c.try_lock().ok().and_then(|mut c| c.take_scope_metrics()) {
                    host.otlp_scopes.push(sm);
                }
            }
        }
        self.record(&results);
        let mut compact = vec![host];
        // Scraped targets' results since the previous tick, each under its own resource, their
        // gauges and sums made compact.
        if let Some(scraped) = self.scraper.as_ref().map(|s| s.drain()) {
            compact.extend(scraped.into_iter().map(|rm| super::compact::compact_resource(rm, &mut self.scrape_interner)));
            self.scrape_interner.sweep();
        }
        let batch = Batch::with_compact(compact, ExportMetricsServiceRequest::default(), self.seq);
        *self.state.tick.lock().unwrap() = TickTimings {
            tick: self.seq,
            refresh_seconds: (refreshed - started).as_secs_f64(),
            collect_seconds: (collected - refreshed).as_secs_f64(),
            points: batch.points,
        };
        let batch = Arc::new(batch);
        *self.state.latest.write().unwrap() = Some(batch.clone());
        self.recent = [Some(batch.clone()), self.recent[0].take()];
        batch
    }

    /// Records each collector's refresh in the shared state, logging a failure once per
    /// distinct error and the recovery.
    fn record(&mut self, results: &[RefreshResult]) {
        let mut st = self.state.collectors.lock().unwrap();
        for (name, took, r) in results {
            let e = match st.get_mut(*name) {
                Some(e) => e,
                None => st.entry(name.to_string()).or_default(),
            };
            e.refreshes += 1;
            e.last_duration_seconds = took.as_secs_f64();
            match r {
                Ok(()) => {
                    e.last_error = None;
                    if self.last_errors.remove(name).is_some() {
                        tracing::info!(collector = %name, "Collector recovered");
                    }
                }
                Err(msg) => {
                    e.errors += 1;
                    e.last_error = Some(msg.clone());
                    if self.last_errors.get(name) != Some(msg) {
                        tracing::warn!(collector = %name, error = %msg, "Collector failed; it reports nothing until it recovers");
                        self.last_errors.insert(name, msg.clone());
                    } else {
                        tracing::debug!(collector = %name, error = %msg, "Collector still failing");
                    }
                }
            }
        }
    }

    /// Ticks every `interval` (first after a small random offset) until `stop` fires, handing
    /// each batch to every exporter.
    ///
    /// The ticks run on one thread of their own (`tick`) that sleeps
    /// until the next tick: a tick wakes one thread, does all its work there, and wakes the
    /// exporters once with the batch. A late tick delays the following ones (no burst).
    pub async fn run(self, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        // A thread named `tick` (in `top -H`, `perf` and `/proc/PID/task/*/comm`), inside the
        // runtime's context so that collectors that may block still go to its blocking pool.
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("tick".into())
            .spawn(move || {
                let _inside = runtime.enter();
                let _ = done_tx.send(self.run_blocking(interval, rx));
            })
            .expect("the OS refused the tick thread");
        // Stop when told to, or when the sender is gone.
        let _ = stop.wait_for(|s| *s).await;
        drop(tx);
        done_rx.await.expect("the tick thread panicked")
    }

    /// The loop of [`run`](Scheduler::run): sleeps on `stop` until the next tick; a message or
    /// the sender's end stops it.
    fn run_blocking(mut self, interval: Duration, stop: std::sync::mpsc::Receiver<()>) -> Self {
        let offset = Duration::from_secs_f64(fastrand::f64() * interval.min(Duration::from_secs(10)).as_secs_f64() / 10.0);
        let mut next = crate::units::duration::deadline_after(Instant::now(), offset);
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(next.saturating_duration_since(Instant::now())) {
            let batch = self.tick_now();
            for q in self.state.exporters.read().unwrap().iter() {
                q.submit(batch.clone());
            }
            if self.seq == RELEASE_PAGES_AFTER_TICKS {
                // Start-up is over (config, resource detection, first connections): let the
                // pages only it used go (see `crate::mem`).
                let kb = crate::mem::release_startup_pages();
                tracing::debug!(released_kb = kb, "Dropped the pages start-up used");
            }
            next = crate::units::duration::deadline_after(next, interval);
            let now = Instant::now();
            if next <= now {
                next = crate::units::duration::deadline_after(now, interval);
            }
        }
        self
    }

    /// Drops every instrument and its callbacks.
    pub fn shutdown(self) {
        self.provider.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CollectorStatus;

    #[test]
    fn a_ticks_batch_encodes_byte_for_byte_as_prost_writes_its_otlp_copy() {
        let state = AgentState::new(Default::default());
        let clock = TickClock::default();
        let collectors = crate::collectors::build(&Default::default(), &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
        let mut sched = Scheduler::new(collectors, clock, &Default::default(), Duration::from_secs(5), state);
        let batch = sched.tick_now();
        let bytes = batch.encoded();
        let prost_bytes = prost::Message::encode_to_vec(&*batch.to_request());
        let first_difference = bytes.iter().zip(&prost_bytes).position(|(a, b)| a != b);
        assert_eq!((first_difference, bytes.len()), (None, prost_bytes.len()), "the request's protobuf, byte for byte as prost writes it");
        assert_eq!(batch.encoded_len(), bytes.len());
        let mut buf = Vec::with_capacity(1 << 20);
        let at = buf.as_ptr();
        batch.encode_to(&mut buf);
        assert_eq!((buf.as_slice(), buf.as_ptr()), (&bytes[..], at), "into the caller's buffer, its allocation kept");
    }

    #[test]
    fn a_tick_rewrites_the_batch_before_the_last_in_place_once_nothing_else_holds_it() {
        let state = AgentState::new(Default::default());
        let clock = TickClock::default();
        let collectors = crate::collectors::build(&Default::default(), &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
        let mut sched = Scheduler::new(collectors, clock, &[("host.name".to_string(), "h".to_string())].into(), Duration::from_secs(5), state);
        let points = |b: &Batch| b.host().unwrap().scopes[0].metrics[0].points.as_ptr() as usize;
        let first = sched.tick_now();
        let (first_points_at, first_points) = (points(&first), first.points);
        drop(first);
        let second = sched.tick_now();
        let third = sched.tick_now();
        assert_eq!(points(&third), first_points_at, "the first batch's points vector was reused");
        assert_eq!(third.points, second.points);
        assert!(third.points >= first_points);
        // A batch someone still holds is left alone: the tick allocates anew.
        let fourth = sched.tick_now();
        let _held = sched.tick_now();
        let sixth = sched.tick_now();
        assert_ne!(points(&sixth), points(&fourth));
        assert_eq!(sixth.host().unwrap().resource, third.host().unwrap().resource);
        let names = |b: &Batch| b.host().unwrap().scopes[0].metrics.iter().map(|m| m.descriptor.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&sixth), names(&second));
    }

    #[test]
    fn textfile_metrics_join_the_hosts_resource_every_tick_and_only_while_the_collector_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("apt.prom"), "apt_upgrades_pending{origin=\"x\"} 3\n").unwrap();
        let mut config = crate::collectors::CollectorConfig::default();
        config.textfile.directory = Some(dir.path().to_path_buf());
        let clock = TickClock::default();
        let collectors = crate::collectors::build(&config, &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
        let state = AgentState::new(Default::default());
        let mut sched = Scheduler::new(collectors, clock, &[("host.name".to_string(), "h".to_string())].into(), Duration::from_secs(5), state);
        let scopes = |b: &Batch| b.to_request().resource_metrics[0].scope_metrics.iter().map(|s| s.scope.as_ref().unwrap().name.clone()).collect::<Vec<_>>();
        for _ in 0..3 {
            // The batch before the last is reused: the textfile scope must be added afresh.
            let b = sched.tick_now();
            assert_eq!(b.to_request().resource_metrics.len(), 1, "the host's resource, not one of its own");
            assert_eq!(scopes(&b), ["metricsd", crate::collectors::textfile::SCOPE_NAME]);
            assert_eq!(b.to_request().resource_metrics[0].scope_metrics[1].metrics[0].name, "apt_upgrades_pending");
        }
        std::fs::remove_dir_all(dir.path()).unwrap();
        let b = sched.tick_now();
        assert_eq!(scopes(&b), ["metricsd"], "a failed refresh adds nothing");
    }

    /// A collector that may block, whose refresh takes `sleep`.
    struct Slow {
        name: &'static str,
        sleep: Duration,
    }

    impl Collector for Slow {
        fn name(&self) -> &'static str {
            self.name
        }
        fn register(&mut self, _meter: &opentelemetry::metrics::Meter) {}
        fn refresh(&mut self) -> Result<(), crate::collectors::CollectorError> {
            std::thread::sleep(self.sleep);
            Ok(())
        }
        fn may_block(&self) -> bool {
            true
        }
    }

    #[test]
    fn collectors_that_may_block_run_beside_the_others_and_one_past_the_time_limit_is_recorded_as_timed_out() {
        let clock = TickClock::default();
        let mut collectors = crate::collectors::build(&Default::default(), &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
        let plain = collectors.len();
        collectors.push(Box::new(Slow { name: "quick", sleep: Duration::from_millis(1) }));
        collectors.push(Box::new(Slow { name: "stuck", sleep: Duration::from_millis(1500) }));
        let state = AgentState::new(Default::default());
        let mut sched = Scheduler::new(collectors, clock, &Default::default(), Duration::from_millis(300), state.clone());
        let batch = sched.tick_now();
        assert!(batch.points > 0, "the plain collectors reported");
        let st = state.collectors.lock().unwrap();
        assert_eq!(st.len(), plain + 2, "every collector's refresh was recorded: {:?}", st.keys());
        assert_eq!(st["quick"].last_error, None);
        assert_eq!(st["stuck"].last_error.as_deref(), Some("refresh timed out after 300ms"));
        assert_eq!(st["stuck"].errors, 1);
        // The others fare as they do on their own (this fixture tree lacks a mount table and
        // the socket tables).
        let alone = AgentState::new(Default::default());
        let clock = TickClock::default();
        let others = crate::collectors::build(&Default::default(), &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
        Scheduler::new(others, clock, &Default::default(), Duration::from_millis(300), alone.clone()).tick_now();
        let failed = |m: &BTreeMap<String, CollectorStatus>| m.iter().filter(|(_, c)| c.last_error.is_some()).map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let mut expected = failed(&alone.collectors.lock().unwrap());
        expected.push("stuck".into());
        expected.sort();
        assert_eq!(failed(&st), expected);
        drop(st);
        // Still running: the next tick does not start it twice.
        sched.tick_now();
        assert_eq!(state.collectors.lock().unwrap()["stuck"].last_error.as_deref(), Some("the previous refresh is still running"));
    }
}
