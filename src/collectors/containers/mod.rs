//! The containers collector: every Kubernetes pod and container, Docker, containerd and podman
//! container and Proxmox guest on the host, each from its own cgroup — what cAdvisor or the
//! Collector's kubeletstats receiver report, read straight from the cgroup files.
//!
//! - **Finding them** ([`discover`]): one walk of a cgroup hierarchy per tick, by the names the
//!   kubelet (systemd and cgroupfs drivers, QoS levels) and the runtimes give their cgroups,
//!   at most `max_containers`; what is over is counted (`metricsd.containers.dropped`) and
//!   logged once.
//! - **Reading them**: the `cgroup` collector's readers ([`CgroupFiles`]: v2, v1 and hybrid,
//!   files kept open), plus the v2 pressure files ([`PressureFiles`]). A cgroup's files are
//!   opened when it is first seen and dropped when it is gone, so the series of a container
//!   that went away stop at the next tick.
//! - **Naming them**: pods and their containers from the kubelet's `/pods` ([`kubelet`]:
//!   cached, fetched off the tick when an unknown pod UID appears); others from the runtimes'
//!   state files and Proxmox's guest configs ([`runtime`]), read once per container.
//!
//! Points of a container carry `container.id`, `container.runtime.name` and, in a pod,
//! `k8s.pod.uid`, `k8s.pod.qos_class`, `k8s.pod.name`, `k8s.namespace.name`, `k8s.node.name`,
//! `k8s.container.name`; outside Kubernetes `container.name` and `container.image.name`; a
//! Proxmox guest `proxmox.vmid`, `container.name` (its hostname or VM name) and
//! `container.runtime.name` `lxc` or `qemu`. A pod's points (`k8s.pod.*`, from the pod-level
//! cgroup the kubelet makes, which holds all its containers and the sandbox) carry the pod's
//! attributes. The metrics and their sources are in `instruments.rs` and docs/containers.md.

pub mod config;
pub mod discover;
mod instruments;
pub mod kubelet;
pub mod runtime;

pub use config::ContainersConfig;
pub use instruments::METRICS;

use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::cgroup::find::{self, Hierarchy};
use crate::procfs::cgroup::{CgroupFiles, CgroupStats, FindError};
use crate::procfs::pressure::{PressureFiles, Stall};
use crate::units::HostPaths;
use discover::{Found, Kind};
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The attribute sets of one pod's, container's or guest's points, built when it is first
/// seen and again when the kubelet's names change.
#[derive(Debug, Default)]
pub(crate) struct RowAttrs {
    base: Vec<KeyValue>,
    /// `cpu.mode` user, system.
    modes: [Vec<KeyValue>; 2],
    /// `cpu.throttling.state` total, throttled.
    throttling: [Vec<KeyValue>; 2],
    /// `system.paging.fault.type` major, minor.
    faults: [Vec<KeyValue>; 2],
    /// Per resource (cpu, memory, io), some and full.
    psi: [[Vec<KeyValue>; 2]; 3],
}

impl RowAttrs {
    fn new(base: Vec<KeyValue>) -> Self {
        let with = |extra: &[KeyValue]| base.iter().cloned().chain(extra.iter().cloned()).collect::<Vec<_>>();
        let modes = ["user", "system"].map(|m| with(&[KeyValue::new("cpu.mode", m)]));
        let throttling = ["total", "throttled"].map(|t| with(&[KeyValue::new("cpu.throttling.state", t)]));
        let faults = ["major", "minor"].map(|t| with(&[KeyValue::new("system.paging.fault.type", t)]));
        let psi = super::pressure::pressure_attrs().map(|r| r.map(|a| with(&a)));
        RowAttrs { base, modes, throttling, faults, psi }
    }
}

/// One pod's, container's or guest's reading of a tick.
#[derive(Debug)]
pub(crate) struct Row {
    kind: Kind,
    attrs: Arc<RowAttrs>,
    stats: CgroupStats,
    /// CPUs used on average since the last tick.
    cpu_usage: Option<f64>,
    psi: Option<[Stall; 3]>,
    /// `[read, write]` attribute sets of each of `stats.io`'s devices, in its order.
    io_attrs: Vec<Arc<[Vec<KeyValue>; 2]>>,
}

/// What the instruments report from one tick.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    rows: Vec<Row>,
    /// Cgroups left out by `max_containers`, summed over refreshes.
    dropped: u64,
}

/// A cgroup being followed.
struct Tracked {
    found: Found,
    files: CgroupFiles,
    psi: Option<PressureFiles>,
    /// The previous refresh's (time, total CPU seconds).
    prev: Option<(Duration, f64)>,
    names: runtime::Names,
    attrs: Arc<RowAttrs>,
    /// The kubelet generation `attrs` were built with.
    generation: u64,
    devices: HashMap<Arc<str>, Arc<[Vec<KeyValue>; 2]>>,
    /// The refresh that last found it.
    seen: u64,
}

/// Follows every container on the host; see the module documentation.
pub struct ContainersCollector {
    paths: HostPaths,
    root: Option<PathBuf>,
    limit: usize,
    /// Found on the first refresh.
    hierarchies: Option<Vec<Hierarchy>>,
    tracked: HashMap<String, Tracked>,
    kubelet: Option<kubelet::Kubelet>,
    snap: Arc<SnapshotCell<Snapshot>>,
    refreshes: u64,
    dropped: u64,
    /// Whether the limit was hit last refresh (logged once per stretch).
    over_limit: bool,
    /// The last read error logged (one line per distinct error).
    last_error: Option<String>,
    /// Pod UIDs without names, and the kubelet generation when each was first seen: a UID
    /// still unknown after two answers (a pod the kubelet no longer lists, whose cgroup
    /// lingers) asks no more.
    unnamed: HashMap<String, u64>,
    start: Instant,
}

impl ContainersCollector {
    /// A collector for `config`; the kubelet is asked for names when running in Kubernetes
    /// (or `kubelet.enabled` says so). `env` reads the process environment.
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &ContainersConfig, env: impl Fn(&str) -> Option<String>) -> Self {
        let use_kubelet = config.kubelet.enabled.unwrap_or_else(|| config::in_kubernetes(&env));
        ContainersCollector {
            paths: paths.clone(),
            root: config.root.clone(),
            limit: config.max_containers(),
            hierarchies: None,
            tracked: HashMap::new(),
            kubelet: use_kubelet.then(|| kubelet::Kubelet::new(&config.kubelet, &env)),
            snap: SnapshotCell::new(clock),
            refreshes: 0,
            dropped: 0,
            over_limit: false,
            last_error: None,
            unnamed: HashMap::new(),
            start: Instant::now(),
        }
    }

    /// The kubelet client, when names come from it.
    pub fn kubelet(&self) -> Option<&kubelet::Kubelet> {
        self.kubelet.as_ref()
    }

    /// The base attributes of `f` with what its names say.
    fn base_attrs(&self, f: &Found, names: &runtime::Names) -> Vec<KeyValue> {
        let mut a = Vec::new();
        let pod = f.pod_uid.as_deref().and_then(|uid| self.kubelet.as_ref()?.pod(uid));
        if let Some(uid) = &f.pod_uid {
            a.push(KeyValue::new("k8s.pod.uid", uid.clone()));
        }
        if let Some(qos) = f.qos {
            a.push(KeyValue::new("k8s.pod.qos_class", qos));
        }
        if let Some(p) = &pod {
            a.push(KeyValue::new("k8s.pod.name", p.name.clone()));
            a.push(KeyValue::new("k8s.namespace.name", p.namespace.clone()));
            if let Some(n) = &p.node {
                a.push(KeyValue::new("k8s.node.name", n.clone()));
            }
        }
        match f.kind {
            Kind::Pod => {}
            Kind::Container => {
                if let Some(id) = &f.id {
                    a.push(KeyValue::new("container.id", id.clone()));
                    if let Some(name) = pod.as_ref().and_then(|p| p.containers.get(id)) {
                        a.push(KeyValue::new("k8s.container.name", name.clone()));
                    }
                }
            }
            Kind::Guest => {
                if let Some(id) = &f.id {
                    a.push(KeyValue::new("proxmox.vmid", id.clone()));
                }
            }
        }
        if let Some(rt) = f.runtime {
            a.push(KeyValue::new("container.runtime.name", rt));
        }
        if let Some(n) = &names.name {
            a.push(KeyValue::new("container.name", n.clone()));
        }
        if let Some(i) = &names.image {
            a.push(KeyValue::new("container.image.name", i.clone()));
        }
        a
    }

    fn hierarchies(&mut self) -> Result<&[Hierarchy], CollectorError> {
        if self.hierarchies.is_none() {
            let (h, _) = find::hierarchies(&self.paths, self.root.as_deref()).map_err(|e| match e {
                FindError::Proc(e) => CollectorError::Proc(e),
                FindError::NotFound { what, msg } => CollectorError::Other { what, msg },
            })?;
            if h.is_empty() {
                let what = self.root.as_ref().map(|r| r.display().to_string()).unwrap_or_else(|| self.paths.proc("self/mountinfo").display().to_string());
                return Err(CollectorError::Other { what, msg: "no cgroup hierarchy mounted".into() });
            }
            self.hierarchies = Some(h);
        }
        Ok(self.hierarchies.as_deref().unwrap_or_default())
    }

    /// Starts following `f`: opens its files, reads its names once.
    fn track(&self, hierarchies: &[Hierarchy], f: Found) -> Option<Tracked> {
        let loc = find::location_of(hierarchies, &f.rel)?;
        let psi = loc.unified.as_deref().filter(|d| d.join("cpu.pressure").exists()).map(PressureFiles::cgroup);
        let names = match (f.kind, f.pod_uid.is_some(), &f.id) {
            (Kind::Pod, _, _) | (_, true, _) | (_, _, None) => runtime::Names::default(),
            (_, false, Some(id)) => runtime::names(&self.paths, f.runtime, id),
        };
        let generation = self.kubelet.as_ref().map_or(0, |k| k.generation());
        let attrs = Arc::new(RowAttrs::new(self.base_attrs(&f, &names)));
        Some(Tracked { files: CgroupFiles::open(&loc), psi, prev: None, names, attrs, generation, devices: HashMap::new(), seen: 0, found: f })
    }

    /// Reads one cgroup into a row; `Err` with the reason when it could not be read (gone
    /// since the walk, or unreadable).
    fn read(t: &mut Tracked, now: Duration) -> Result<Row, String> {
        let mut s = CgroupStats::default();
        let r = t.files.read_cpu(&mut s).and_then(|_| t.files.read_memory(&mut s)).and_then(|_| t.files.read_io(&mut s));
        let r = r.and_then(|_| if t.files.has_pids() { t.files.read_pids(&mut s) } else { Ok(()) });
        r.map_err(|e| e.to_string())?;
        let psi = match t.psi.as_mut() {
            Some(p) => p.read().ok(),
            None => None,
        };
        let mut cpu_usage = None;
        if let Some(total) = s.cpu_total {
            if let Some((then, before)) = t.prev {
                let dt = now.saturating_sub(then).as_secs_f64();
                if dt > 0.0 && total >= before {
                    cpu_usage = Some((total - before) / dt);
                }
            }
            t.prev = Some((now, total));
        }
        let base = &t.attrs.base;
        let io_attrs =
            s.io.iter()
                .map(|d| {
                    t.devices
                        .entry(d.device.clone())
                        .or_insert_with(|| {
                            Arc::new(["read", "write"].map(|dir| {
                                let mut a = base.clone();
                                a.push(KeyValue::new("system.device", d.device.clone()));
                                a.push(KeyValue::new("disk.io.direction", dir));
                                a
                            }))
                        })
                        .clone()
                })
                .collect();
        Ok(Row { kind: t.found.kind, attrs: t.attrs.clone(), stats: s, cpu_usage, psi, io_attrs })
    }
}

impl Collector for ContainersCollector {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn register(&mut self, meter: &Meter) {
        instruments::register(meter, &self.snap);
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        self.refreshes += 1;
        let tick = self.refreshes;
        let limit = self.limit;
        let hierarchies = self.hierarchies()?.to_vec();
        let Some(primary) = discover::primary(&hierarchies) else { return Ok(()) };
        let walk = discover::walk(&primary.dir, limit);
        if walk.over_limit > 0 {
            self.dropped = self.dropped.saturating_add(walk.over_limit as u64);
            if !self.over_limit {
                tracing::warn!(
                    limit,
                    left_out = walk.over_limit,
                    "More cgroups than collector.containers.max_containers; the rest are left out (metricsd.containers.dropped counts them)"
                );
            }
        } else if self.over_limit {
            tracing::info!(limit, "Every container fits collector.containers.max_containers again");
        }
        self.over_limit = walk.over_limit > 0;
        let generation = self.kubelet.as_ref().map_or(0, |k| k.generation());
        let mut unknown_pod = false;
        let now = self.start.elapsed();
        let mut rows = Vec::with_capacity(walk.found.len());
        let mut first_error = None;
        for f in walk.found {
            if f.kind == Kind::Pod {
                if let (Some(k), Some(uid)) = (&self.kubelet, &f.pod_uid) {
                    if k.pod(uid).is_none() {
                        let since = *self.unnamed.entry(uid.clone()).or_insert(generation);
                        unknown_pod |= generation < since.saturating_add(2);
                    }
                }
            }
            let rel = f.rel.clone();
            if !self.tracked.contains_key(&rel) {
                match self.track(&hierarchies, f) {
                    Some(t) => {
                        self.tracked.insert(rel.clone(), t);
                    }
                    None => continue,
                }
            }
            let Some(t) = self.tracked.get(&rel) else { continue };
            if t.generation != generation {
                let attrs = Arc::new(RowAttrs::new(self.base_attrs(&t.found, &t.names)));
                if let Some(t) = self.tracked.get_mut(&rel) {
                    (t.attrs, t.generation) = (attrs, generation);
                    t.devices.clear();
                }
            }
            let Some(t) = self.tracked.get_mut(&rel) else { continue };
            t.seen = tick;
            match Self::read(t, now) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    // Gone since the walk (a container that just stopped) is no error.
                    if t.files.dirs().iter().all(|d| d.is_dir()) {
                        first_error.get_or_insert(e);
                    }
                    t.seen = 0;
                }
            }
        }
        self.tracked.retain(|_, t| t.seen == tick);
        let tracked = &self.tracked;
        self.unnamed.retain(|uid, _| tracked.values().any(|t| t.found.kind == Kind::Pod && t.found.pod_uid.as_ref() == Some(uid)));
        match first_error {
            Some(e) if self.last_error.as_ref() != Some(&e) => {
                tracing::warn!(error = %e, "A container's cgroup files could not be read; it is left out this tick");
                self.last_error = Some(e);
            }
            Some(_) => {}
            None => self.last_error = None,
        }
        if unknown_pod {
            if let Some(k) = &self.kubelet {
                k.refresh();
            }
        }
        self.snap.set(Snapshot { rows, dropped: self.dropped });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
