//! The process collector itself: every tick it lists `/proc`, reads `/proc/[pid]/stat` of every
//! process (with buffers reused from tick to tick), ranks them (`top`), and reads `status`,
//! `io`, `cmdline` and `fd/` of those it reports; then `process.*` from what it read.

use super::names::{command_line, executable_name, ProcAttrs, COMM_MAX};
use super::top::{keep_top, score, Candidate};
use super::users::Users;
use super::ProcessConfig;
use crate::collectors::instruments::{ByDefault, Metric, MetricSpec};
use crate::collectors::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{pid, stat, ProcError, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What the collector remembers of a live process.
struct Entry {
    /// Tells a reused pid from the process seen before.
    starttime: u64,
    /// `(utime, stime)` at the previous tick.
    prev: Option<(u64, u64)>,
    seen: u64,
    /// The full executable name, when the command name may be cut (read from the command line).
    long_name: Option<Arc<str>>,
    /// The command line, once read.
    command_line: Option<Arc<str>>,
    attrs: Option<Arc<ProcAttrs>>,
}

impl Entry {
    /// Reads the command line once, and the full name from it when the command name may be cut.
    fn read_command_line(&mut self, paths: &HostPaths, p: &pid::PidStat) -> Result<(), ProcError> {
        if self.command_line.is_none() {
            let args = pid::read_cmdline(paths, p.pid)?;
            let name = executable_name(&p.comm, args.first().map(String::as_str));
            if name != p.comm {
                self.long_name = Some(Arc::from(name));
            }
            self.command_line = Some(Arc::from(command_line(&args)));
        }
        Ok(())
    }

    /// The executable name (see [`executable_name`]).
    fn name<'a>(&'a self, p: &'a pid::PidStat) -> &'a str {
        self.long_name.as_deref().unwrap_or(&p.comm)
    }
}

/// One reported process.
struct ProcPoint {
    attrs: Arc<ProcAttrs>,
    /// Seconds `[user, system]`.
    cpu: [f64; 2],
    util: Option<[f64; 2]>,
    rss: u64,
    vsize: u64,
    threads: u64,
    /// `[major, minor]`.
    faults: [u64; 2],
    /// `[read, write]` bytes.
    io: Option<[u64; 2]>,
    fds: Option<u64>,
}

#[derive(Default)]
struct Snapshot {
    procs: Vec<ProcPoint>,
}

/// Whether an error means the process is gone (it exited between the listing and the read).
fn gone(e: &ProcError) -> bool {
    match e {
        ProcError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH),
        _ => false,
    }
}

/// Reads the stat of every process, and the other files of the top N.
pub struct ProcessCollector {
    paths: HostPaths,
    config: ProcessConfig,
    /// `/proc/stat`, for the number of logical CPUs.
    stat_file: ProcFile,
    users: Users,
    procs: HashMap<u32, Entry>,
    hz: f64,
    /// The clock of the utilization's wall time (a fake in tests).
    now: Box<dyn FnMut() -> Instant + Send>,
    last: Option<Instant>,
    generation: u64,
    // Buffers reused from tick to tick.
    pids: Vec<u32>,
    buf: Vec<u8>,
    num: String,
    stats: Vec<pid::PidStat>,
    candidates: Vec<Candidate>,
    snap: Arc<SnapshotCell<Snapshot>>,
}

impl ProcessCollector {
    /// A collector of the processes in `paths`' `/proc`.
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &ProcessConfig) -> Self {
        ProcessCollector {
            paths: paths.clone(),
            config: config.clone(),
            stat_file: ProcFile::new(stat::path(paths)),
            users: Users { path: paths.root("etc/passwd"), names: HashMap::new(), read_at: None },
            procs: HashMap::new(),
            hz: stat::user_hz() as f64,
            now: Box::new(Instant::now),
            last: None,
            generation: 0,
            pids: Vec::new(),
            buf: Vec::with_capacity(512),
            num: String::new(),
            stats: Vec::new(),
            candidates: Vec::new(),
            snap: SnapshotCell::new(clock),
        }
    }

    /// The number of `cpuN` lines of `/proc/stat`; `None` when it cannot be read.
    fn logical_cpus(&mut self) -> Option<u64> {
        match self.stat_file.read() {
            Ok(text) => {
                let n = text.lines().filter(|l| l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))).count() as u64;
                (n > 0).then_some(n)
            }
            Err(e) => {
                tracing::debug!(error = %e, "no CPU count for process.cpu.utilization");
                None
            }
        }
    }

    /// Lists the pids into `self.pids`.
    fn list(&mut self) -> Result<(), ProcError> {
        self.pids.clear();
        let dir = std::fs::read_dir(&self.paths.proc).map_err(|e| ProcError::io(&self.paths.proc, e))?;
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                self.pids.push(pid);
            }
        }
        Ok(())
    }

    /// Reads and parses `/proc/[pid]/stat`; `None` when the process is gone or unreadable.
    fn read_stat(&mut self, pid: u32, path: &mut PathBuf) -> Option<pid::PidStat> {
        self.num.clear();
        let _ = write!(self.num, "{pid}");
        path.push(&self.num);
        path.push("stat");
        self.buf.clear();
        let r = std::fs::File::open(&*path).and_then(|mut f| f.read_to_end(&mut self.buf));
        let out = match r {
            Ok(_) => {
                let text = String::from_utf8_lossy(&self.buf);
                match pid::parse_stat(&text) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::debug!(path = %path.display(), error = %e, "unreadable process stat");
                        None
                    }
                }
            }
            Err(_) => None,
        };
        path.pop();
        path.pop();
        out
    }
}

/// The attributes that name a process, on every point of this collector.
const PROCESS: [&str; 4] = ["process.pid", "process.executable.name", "process.command_line", "process.owner"];
const OFF: ByDefault = ByDefault::Off;

const CPU_TIME: Metric<f64> = Metric::f64_counter("process.cpu.time", "s", "CPU time used by the process, by mode")
    .attributes(&["process.pid", "process.executable.name", "process.command_line", "process.owner", "cpu.mode"])
    .source("/proc/PID/stat utime, stime")
    .by_default(OFF);
const CPU_UTILIZATION: Metric<f64> =
    Metric::f64_gauge("process.cpu.utilization", "1", "CPU time used by the process since the last collection, as a fraction of the time of all logical CPUs")
        .attributes(&["process.pid", "process.executable.name", "process.command_line", "process.owner", "cpu.mode"])
        .source("Δ /proc/PID/stat CPU time ÷ wall time ÷ logical CPUs")
        .by_default(OFF);
const MEMORY_USAGE: Metric<i64> = Metric::i64_up_down_counter("process.memory.usage", "By", "Resident set size of the process")
    .attributes(&PROCESS)
    .source("/proc/PID/stat rss")
    .by_default(OFF);
const MEMORY_VIRTUAL: Metric<i64> = Metric::i64_up_down_counter("process.memory.virtual", "By", "Virtual memory size of the process")
    .attributes(&PROCESS)
    .source("/proc/PID/stat vsize")
    .by_default(OFF);
const THREAD_COUNT: Metric<i64> = Metric::i64_up_down_counter("process.thread.count", "{thread}", "Threads of the process")
    .attributes(&PROCESS)
    .source("/proc/PID/stat num_threads")
    .by_default(OFF);
const OPEN_FILE_DESCRIPTOR_COUNT: Metric<i64> =
    Metric::i64_up_down_counter("process.unix.file_descriptor.count", "{file_descriptor}", "File descriptors the process has open")
        .attributes(&PROCESS)
        .source("/proc/PID/fd entries (when listable)")
        .by_default(OFF);
const DISK_IO: Metric<u64> = Metric::u64_counter("process.disk.io", "By", "Bytes the process made storage read and write")
    .attributes(&["process.pid", "process.executable.name", "process.command_line", "process.owner", "disk.io.direction"])
    .source("/proc/PID/io read_bytes, write_bytes (when readable)")
    .by_default(OFF);
const PAGING_FAULTS: Metric<u64> = Metric::u64_counter("process.paging.faults", "{fault}", "Page faults of the process, by type")
    .attributes(&["process.pid", "process.executable.name", "process.command_line", "process.owner", "system.paging.fault.type"])
    .source("/proc/PID/stat majflt, minflt")
    .by_default(OFF);

/// The process collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    CPU_TIME.spec(),
    CPU_UTILIZATION.spec(),
    MEMORY_USAGE.spec(),
    MEMORY_VIRTUAL.spec(),
    THREAD_COUNT.spec(),
    OPEN_FILE_DESCRIPTOR_COUNT.spec(),
    DISK_IO.spec(),
    PAGING_FAULTS.spec(),
];

impl Collector for ProcessCollector {
    fn name(&self) -> &'static str {
        "process"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        CPU_TIME.register(meter, move |obs| {
            snap.with(|s| {
                for p in &s.procs {
                    for (v, a) in p.cpu.iter().zip(&p.attrs.cpu) {
                        obs.observe(*v, a);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        CPU_UTILIZATION.register(meter, move |obs| {
            snap.with(|s| {
                for p in &s.procs {
                    if let Some(u) = &p.util {
                        for (v, a) in u.iter().zip(&p.attrs.cpu) {
                            obs.observe(*v, a);
                        }
                    }
                }
            });
        });
        type Pick = fn(&ProcPoint) -> Option<u64>;
        for (metric, pick) in [
            (MEMORY_USAGE, (|p: &ProcPoint| Some(p.rss)) as Pick),
            (MEMORY_VIRTUAL, |p| Some(p.vsize)),
            (THREAD_COUNT, |p| Some(p.threads)),
            (OPEN_FILE_DESCRIPTOR_COUNT, |p| p.fds),
        ] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|s| {
                    for p in &s.procs {
                        if let Some(v) = pick(p) {
                            obs.observe(i64::try_from(v).unwrap_or(i64::MAX), &p.attrs.base);
                        }
                    }
                });
            });
        }
        let snap = self.snap.clone();
        DISK_IO.register(meter, move |obs| {
            snap.with(|s| {
                for p in &s.procs {
                    if let Some(io) = &p.io {
                        for (v, a) in io.iter().zip(&p.attrs.io) {
                            obs.observe(*v, a);
                        }
                    }
                }
            });
        });
        let snap = self.snap.clone();
        PAGING_FAULTS.register(meter, move |obs| {
            snap.with(|s| {
                for p in &s.procs {
                    for (v, a) in p.faults.iter().zip(&p.attrs.faults) {
                        obs.observe(*v, a);
                    }
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let now = (self.now)();
        let wall = self.last.map(|l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        let cpus = self.logical_cpus();
        self.list()?;
        self.generation += 1;
        let gen = self.generation;

        // 1. stat of every process; rank those the config accepts.
        self.stats.clear();
        self.candidates.clear();
        let mut path = self.paths.proc.clone();
        let pids = std::mem::take(&mut self.pids);
        for &p in &pids {
            let Some(st) = self.read_stat(p, &mut path) else {
                continue;
            };
            if matches!(st.state, 'Z' | 'X' | 'x') {
                continue;
            }
            let e = self.procs.entry(p).or_insert_with(|| Entry {
                starttime: st.starttime,
                prev: None,
                seen: gen,
                long_name: None,
                command_line: None,
                attrs: None,
            });
            if e.starttime != st.starttime {
                *e = Entry { starttime: st.starttime, prev: None, seen: gen, long_name: None, command_line: None, attrs: None };
            }
            e.seen = gen;
            let delta = e.prev.map(|(u, s)| [st.utime.saturating_sub(u), st.stime.saturating_sub(s)]);
            e.prev = Some((st.utime, st.stime));
            if self.config.filters() {
                if st.comm.len() >= COMM_MAX {
                    if let Err(err) = e.read_command_line(&self.paths, &st) {
                        if gone(&err) {
                            continue;
                        }
                        tracing::debug!(error = %err, "cannot read a command line");
                    }
                }
                if !self.config.accepts(e.name(&st)) {
                    continue;
                }
            }
            let score = score(self.config.top_by, &st, delta);
            self.candidates.push(Candidate { idx: self.stats.len(), score, delta });
            self.stats.push(st);
        }
        self.pids = pids;
        self.procs.retain(|_, e| e.seen == gen);

        // 2. The top N, by score and then pid.
        keep_top(&mut self.candidates, &self.stats, self.config.top_n);

        // 3. The other files of those.
        let mut snap = self.snap.take().unwrap_or_default();
        snap.procs.clear();
        for c in &self.candidates {
            let st = &self.stats[c.idx];
            let Some(e) = self.procs.get_mut(&st.pid) else {
                continue;
            };
            if e.attrs.is_none() {
                let status = match pid::read_status(&self.paths, st.pid) {
                    Ok(s) => Some(s),
                    Err(err) if gone(&err) => continue,
                    Err(err) => {
                        tracing::debug!(error = %err, "cannot read a process status");
                        None
                    }
                };
                if let Err(err) = e.read_command_line(&self.paths, st) {
                    if gone(&err) {
                        continue;
                    }
                    tracing::debug!(error = %err, "cannot read a command line");
                }
                let owner = status.map(|s| self.users.name(s.uid[1]));
                let cmd = e.command_line.clone().unwrap_or_else(|| Arc::from(""));
                e.attrs = Some(Arc::new(ProcAttrs::new(st.pid, e.name(st), &cmd, owner)));
            }
            let Some(attrs) = e.attrs.clone() else {
                continue;
            };
            let io = match pid::read_io(&self.paths, st.pid) {
                Ok(io) => io.map(|io| [io.read_bytes, io.write_bytes]),
                Err(err) => {
                    if !gone(&err) {
                        tracing::debug!(error = %err, "cannot read a process's I/O");
                    }
                    None
                }
            };
            let fds = pid::count_fds(&self.paths, st.pid).ok().flatten();
            let util = match (c.delta, wall, cpus) {
                (Some(d), Some(w), Some(n)) if w > 0.0 => {
                    let denom = self.hz * w * n as f64;
                    Some([d[0] as f64 / denom, d[1] as f64 / denom])
                }
                _ => None,
            };
            snap.procs.push(ProcPoint {
                attrs,
                cpu: [st.utime as f64 / self.hz, st.stime as f64 / self.hz],
                util,
                rss: st.rss_bytes(),
                vsize: st.vsize,
                threads: st.num_threads,
                faults: [st.majflt, st.minflt],
                io,
                fds,
            });
        }
        self.snap.set(snap);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::process::TopBy;
    use crate::collectors::testutil::{fixture_copy, kind, of, write, Harness, Kind, Point};
    use crate::procfs::fixture_paths;
    use std::sync::Mutex;
    use std::time::Duration;
    const TREE: &str = "linux-5.15-server-procs";
    const KUBE_CMD: &str = "/usr/local/bin/kube-controller-manager --kubeconfig=/etc/kubernetes/controller-manager.conf --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf --bind-address=127.0.0.1 --cl";

    fn hz() -> f64 {
        stat::user_hz() as f64
    }

    /// The pids reported (of `process.memory.usage`), sorted.
    fn pids(p: &[Point]) -> Vec<u32> {
        let mut v: Vec<u32> = of(p, "process.memory.usage").iter().map(|p| p.1.iter().find(|(k, _)| k == "process.pid").unwrap().1.parse().unwrap()).collect();
        v.sort();
        v
    }

    /// The attributes of the point of `metric` for `pid`, sorted.
    fn attrs_of(p: &[Point], metric: &str, pid: u32) -> Vec<(String, String)> {
        of(p, metric).into_iter().find(|p| p.1.contains(&("process.pid".into(), pid.to_string()))).map(|p| p.1.clone()).unwrap_or_default()
    }

    /// The value of `metric` for `pid` (with the extra attribute `extra`).
    fn val(p: &[Point], metric: &str, pid: u32, extra: Option<(&str, &str)>) -> Option<f64> {
        let pid = pid.to_string();
        of(p, metric)
            .into_iter()
            .find(|p| p.1.contains(&("process.pid".into(), pid.clone())) && extra.is_none_or(|(k, v)| p.1.contains(&(k.into(), v.into()))))
            .map(|p| p.2)
    }

    fn collect(cfg: &ProcessConfig) -> Vec<Point> {
        let clock = TickClock::default();
        let mut c = ProcessCollector::new(&fixture_paths(TREE), &clock, cfg);
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap()
    }

    #[test]
    fn reports_the_top_three_by_cpu_time_with_their_attributes_and_values() {
        let p = collect(&ProcessConfig { top_n: 3, ..Default::default() });
        // utime + stime: 4250 39000, 4244 15101, 4242 5745; then 1 3733, 4245 15, ...
        assert_eq!(pids(&p), [4242, 4244, 4250]);
        let a: Vec<(String, String)> = attrs_of(&p, "process.memory.usage", 4242);
        let want: Vec<(String, String)> = [
            ("process.command_line", "./weird --flag a b"),
            ("process.executable.name", "my (weird) ) x"),
            // Real uid 1000, effective 0: the effective user, as ps shows it.
            ("process.owner", "root"),
            ("process.pid", "4242"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(a, want);
        let cpu = |pid, mode| val(&p, "process.cpu.time", pid, Some(("cpu.mode", mode)));
        assert_eq!(cpu(4242, "user"), Some(5012.0 / hz()));
        assert_eq!(cpu(4242, "system"), Some(733.0 / hz()));
        assert_eq!(val(&p, "process.memory.usage", 4242, None), Some((31872 * pid::page_size()) as f64));
        assert_eq!(val(&p, "process.memory.virtual", 4242, None), Some(1_210_380_288.0));
        assert_eq!(val(&p, "process.thread.count", 4242, None), Some(9.0));
        assert_eq!(val(&p, "process.unix.file_descriptor.count", 4242, None), Some(5.0));
        let io = |pid, d| val(&p, "process.disk.io", pid, Some(("disk.io.direction", d)));
        assert_eq!(io(4242, "read"), Some(45056.0));
        assert_eq!(io(4242, "write"), Some(8192.0));
        let faults = |pid, t| val(&p, "process.paging.faults", pid, Some(("system.paging.fault.type", t)));
        assert_eq!(faults(4242, "major"), Some(17.0));
        assert_eq!(faults(4242, "minor"), Some(90211.0));
        // The cut name "kube-controller" is extended from the command line, which is cut.
        let k = attrs_of(&p, "process.thread.count", 4250);
        assert!(k.contains(&("process.executable.name".into(), "kube-controller-manager".into())), "{k:?}");
        assert!(k.contains(&("process.command_line".into(), KUBE_CMD.into())), "{k:?}");
        assert_eq!(KUBE_CMD.chars().count(), 256);
        assert_eq!(val(&p, "process.thread.count", 4250, None), Some(24.0));
        assert_eq!(io(4250, "read"), Some(3_391_488.0));
        // dd runs as alice (uid 1000) and wrote 10 GiB.
        assert!(attrs_of(&p, "process.thread.count", 4244).contains(&("process.owner".into(), "alice".into())));
        assert_eq!(io(4244, "write"), Some(10_737_418_240.0));
        assert_eq!(val(&p, "process.unix.file_descriptor.count", 4244, None), Some(4.0));
        // First tick: no utilization yet.
        assert!(of(&p, "process.cpu.utilization").is_empty());
        assert_eq!(kind(&p, "process.cpu.time"), Some(Kind::Counter));
        assert_eq!(kind(&p, "process.disk.io"), Some(Kind::Counter));
        assert_eq!(kind(&p, "process.paging.faults"), Some(Kind::Counter));
        assert_eq!(kind(&p, "process.memory.usage"), Some(Kind::UpDownCounter));
        assert_eq!(kind(&p, "process.thread.count"), Some(Kind::UpDownCounter));
        assert_eq!(kind(&p, "process.unix.file_descriptor.count"), Some(Kind::UpDownCounter));
    }

    #[test]
    fn ranks_by_resident_memory_and_skips_zombies_and_dead_processes() {
        let p = collect(&ProcessConfig { top_n: 3, top_by: TopBy::Memory, ..Default::default() });
        // rss pages: 4250 60000, 4242 31872, 1 3211; then 4245 2201, ...
        assert_eq!(pids(&p), [1, 4242, 4250]);
        let all = collect(&ProcessConfig { top_n: 0, ..Default::default() });
        // 4243 (Z) and 4247 (X) are not reported.
        assert_eq!(pids(&all), [1, 2, 12, 4242, 4244, 4245, 4246, 4250]);
    }

    #[test]
    fn leaves_out_what_cannot_be_read() {
        let p = collect(&ProcessConfig { top_n: 0, ..Default::default() });
        // 4245 (vim) and 4246 (traced) have no io file; 4246 no fd directory.
        assert_eq!(val(&p, "process.disk.io", 4245, Some(("disk.io.direction", "read"))), None);
        assert_eq!(val(&p, "process.unix.file_descriptor.count", 4245, None), Some(4.0));
        assert_eq!(val(&p, "process.unix.file_descriptor.count", 4246, None), None);
        assert_eq!(of(&p, "process.disk.io").len(), 2 * 4);
        // uid 1001 is not in /etc/passwd: the number.
        assert!(attrs_of(&p, "process.thread.count", 4246).contains(&("process.owner".into(), "1001".into())));
        // Kernel threads have no command line attribute.
        let k = attrs_of(&p, "process.thread.count", 12);
        assert!(k.iter().all(|(k, _)| k != "process.command_line"), "{k:?}");
        assert!(k.contains(&("process.executable.name".into(), "rcu_tasks_kthre".into())));
    }

    #[test]
    fn include_and_exclude_match_the_executable_name() {
        let cfg = ProcessConfig { include: vec!["kube-controller-manager".into(), "rcu*".into(), "vim".into()], top_n: 0, ..Default::default() };
        assert_eq!(pids(&collect(&cfg)), [12, 4245, 4250]);
        let cfg = ProcessConfig { exclude: vec!["kube*".into()], top_n: 2, ..Default::default() };
        assert_eq!(pids(&collect(&cfg)), [4242, 4244]);
    }

    #[test]
    fn ranks_by_cpu_used_since_the_last_tick_and_reports_utilization_of_all_cpus() {
        let (dir, paths) = fixture_copy(TREE);
        let clock = TickClock::default();
        let mut c = ProcessCollector::new(&paths, &clock, &ProcessConfig { top_n: 1, ..Default::default() });
        let t = Arc::new(Mutex::new(Instant::now()));
        let t2 = t.clone();
        c.now = Box::new(move || *t2.lock().unwrap());
        let mut h = Harness::new(&clock, &mut c);
        assert_eq!(pids(&h.tick(&mut c).unwrap()), [4250]);
        // In 10 s dd uses 100 ticks of user and 300 of system time; nothing else runs.
        write(&dir, "proc/4244/stat", "4244 (dd) D 1 4244 4244 34816 4244 4194304 140 0 2 0 180 15321 0 0 20 0 1 0 1900021 5763072 232 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
        *t.lock().unwrap() += Duration::from_secs(10);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(pids(&p), [4244]);
        // 4 logical CPUs (cpu0-cpu3 in proc/stat): 100 ticks ÷ HZ ÷ (10 s × 4).
        let util = |mode| val(&p, "process.cpu.utilization", 4244, Some(("cpu.mode", mode)));
        assert_eq!(util("user"), Some(100.0 / (hz() * 10.0 * 4.0)));
        assert_eq!(util("system"), Some(300.0 / (hz() * 10.0 * 4.0)));
        assert_eq!(kind(&p, "process.cpu.utilization"), Some(Kind::Gauge));
        assert_eq!(h.unit("process.cpu.utilization"), Some("1"));
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let (dir, paths) = fixture_copy(TREE);
        let clock = TickClock::default();
        let mut c = ProcessCollector::new(&paths, &clock, &ProcessConfig { top_n: 0, ..Default::default() });
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        // pid 4245 exits and a new process "top" gets its pid.
        write(&dir, "proc/4245/stat", "4245 (top) S 1 4245 4245 34817 4245 4194304 10 0 0 0 1 1 0 0 20 0 1 0 2100000 9000000 900 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
        write(&dir, "proc/4245/cmdline", "top\0");
        std::thread::sleep(Duration::from_millis(5));
        let p = h.tick(&mut c).unwrap();
        let a = attrs_of(&p, "process.thread.count", 4245);
        assert!(a.contains(&("process.executable.name".into(), "top".into())), "{a:?}");
        assert!(a.contains(&("process.command_line".into(), "top".into())), "{a:?}");
        assert_eq!(val(&p, "process.cpu.utilization", 4245, Some(("cpu.mode", "user"))), None);
        // The others were seen before: utilization 0.
        assert_eq!(val(&p, "process.cpu.utilization", 4242, Some(("cpu.mode", "user"))), Some(0.0));
    }

    #[test]
    fn reads_this_hosts_processes() {
        let clock = TickClock::default();
        let cfg = ProcessConfig { top_n: 0, ..Default::default() };
        let mut c = ProcessCollector::new(&HostPaths::default(), &clock, &cfg);
        let mut h = Harness::new(&clock, &mut c);
        h.tick(&mut c).unwrap();
        let p = h.tick(&mut c).unwrap();
        let me = std::process::id();
        assert!(pids(&p).contains(&me));
        assert!(val(&p, "process.thread.count", me, None).unwrap() >= 1.0);
        assert!(val(&p, "process.unix.file_descriptor.count", me, None).unwrap() >= 3.0);
        assert!(val(&p, "process.cpu.utilization", me, Some(("cpu.mode", "user"))).is_some());
    }
}
