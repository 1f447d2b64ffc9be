//! The numbers agree with the OpenTelemetry Collector's own `hostmetrics` receiver
//! (tests/peers/otelcol, contrib v0.160.0): the Collector scrapes this host every second into its
//! file exporter while `metricsd --once` reads it once, and the same-named semantic-convention
//! metrics of the agent's read and the Collector's nearest read are compared.
//!
//! The two reads are up to a second apart on a machine that other work keeps busy, so a fixed
//! tolerance would be either loose or flaky. Instead a sampler thread reads the kernel's own
//! figures every 20 ms for the whole window that holds both reads, and the tolerance of each
//! comparison is how far those figures moved in the window (their max − min), plus a small
//! slack for rounding:
//!
//! | metric | metricsd | hostmetrics | tolerance |
//! | --- | --- | --- | --- |
//! | `system.cpu.time`, summed over CPUs, per mode | `cpu.mode` user, nice, system, idle, iowait, interrupt, steal | `state` user, nice, system, idle, wait, interrupt + softirq, steal | the /proc/stat fields' move + 0.05 s |
//! | `system.memory.usage` used, free, buffers | `system.memory.state` used (MemTotal − MemAvailable), free, buffers | `state` used (the same: its `UseLinuxMemAvailable` gate is on by default), free, buffered | the /proc/meminfo field's move + 1 MiB |
//! | `system.memory.usage` cached | Cached | cached − slab_reclaimable (gopsutil adds SReclaimable to Cached) | the move of Cached + 1 MiB |
//! | `system.filesystem.usage` of `/`, per state | `system.filesystem.state` used, free, reserved | `state` used, free, reserved | the statvfs figures' move + 1 MiB |
//! | `system.network.io` of `lo`, per direction | `network.interface.name`, `network.io.direction` | `device`, `direction` | the /proc/net/dev counters' move + 64 KiB |
//!
//! The differences are of names (attribute keys and two state values), not of values: the
//! agent follows the current semantic conventions (`cpu.mode`, `system.memory.state`, ...),
//! the receiver at this release still writes the older `state`/`device`/`direction`; and the
//! receiver splits `softirq` out of `interrupt` and counts SReclaimable as `cached`.

mod common;

use common::otelcol::{self, Collector, QUIET_TELEMETRY};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const COLLECTOR: &str = r#"receivers:
  hostmetrics:
    collection_interval: 1s
    scrapers:
      cpu:
      memory:
      filesystem:
        include_mount_points:
          mount_points: ["/"]
          match_type: strict
      network:
        include:
          interfaces: [lo]
          match_type: strict
exporters:
  file:
    path: {{DIR}}/out.json
    format: json
    flush_interval: 100ms
service:
"#;

fn collector_config() -> String {
    format!("{COLLECTOR}{QUIET_TELEMETRY}  pipelines:\n    metrics:\n      receivers: [hostmetrics]\n      exporters: [file]\n")
}

/// One point: metric name, attributes, value, time.
#[derive(Debug)]
struct Point {
    name: String,
    attrs: BTreeMap<String, String>,
    value: f64,
    time: u64,
}

fn num(v: &Value) -> f64 {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(f64::NAN)
}

fn points(req: &Value) -> Vec<Point> {
    let mut out = Vec::new();
    for rm in req["resourceMetrics"].as_array().into_iter().flatten() {
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            for m in sm["metrics"].as_array().into_iter().flatten() {
                let data = if m["sum"].is_object() { &m["sum"] } else { &m["gauge"] };
                for p in data["dataPoints"].as_array().into_iter().flatten() {
                    let attrs = p["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let v = &a["value"];
                            let s = v["stringValue"].as_str().map(String::from).unwrap_or_else(|| v.to_string());
                            (a["key"].as_str().unwrap_or_default().to_string(), s)
                        })
                        .collect();
                    let value = p.get("asInt").map(num).or_else(|| p.get("asDouble").map(num)).unwrap_or(f64::NAN);
                    let time = p["timeUnixNano"].as_str().and_then(|s| s.parse().ok()).or_else(|| p["timeUnixNano"].as_u64()).unwrap_or(0);
                    out.push(Point { name: m["name"].as_str().unwrap_or_default().to_string(), attrs, value, time });
                }
            }
        }
    }
    out
}

/// The sum of the points of `name` whose attributes include every `(key, value)` of `with`.
fn sum(points: &[Point], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for p in points.iter().filter(|p| p.name == name) {
        if with.iter().all(|(k, v)| p.attrs.get(*k).map(String::as_str) == Some(*v)) {
            found = true;
            total += p.value;
        }
    }
    found.then_some(total)
}

// ------------------------------------------------------------------ the kernel's figures

/// min and max of each sampled figure over the window.
type Ranges = HashMap<String, (f64, f64)>;

fn sample(into: &mut Ranges) {
    let mut put = |k: String, v: f64| {
        let e = into.entry(k).or_insert((v, v));
        e.0 = e.0.min(v);
        e.1 = e.1.max(v);
    };
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        let f: Vec<f64> = stat.lines().next().unwrap_or_default().split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0.0)).collect();
        for (i, mode) in ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"].iter().enumerate() {
            put(format!("cpu.{mode}"), f.get(i).copied().unwrap_or(0.0) / hz);
        }
    }
    if let Ok(mi) = std::fs::read_to_string("/proc/meminfo") {
        for line in mi.lines() {
            let mut it = line.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                put(format!("mem.{}", k.trim_end_matches(':')), v.parse::<f64>().unwrap_or(0.0) * 1024.0);
            }
        }
    }
    if let Ok(dev) = std::fs::read_to_string("/proc/net/dev") {
        if let Some(lo) = dev.lines().find(|l| l.trim_start().starts_with("lo:")) {
            let f: Vec<f64> = lo.split_once(':').unwrap().1.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
            put("net.lo.receive".into(), f[0]);
            put("net.lo.transmit".into(), f[8]);
        }
    }
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c"/".as_ptr(), &mut s) } == 0 {
        let fr = s.f_frsize as f64;
        put("fs.used".into(), (s.f_blocks - s.f_bfree) as f64 * fr);
        put("fs.free".into(), s.f_bavail as f64 * fr);
        put("fs.reserved".into(), (s.f_bfree - s.f_bavail) as f64 * fr);
    }
}

/// Samples every 20 ms until dropped-and-joined; the ranges so far on `stop`.
struct Sampler {
    ranges: Arc<Mutex<Ranges>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Sampler {
        let ranges = Arc::new(Mutex::new(Ranges::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (ranges.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                sample(&mut r.lock().unwrap());
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        sample(&mut ranges.lock().unwrap());
        Sampler { ranges, stop, thread: Some(thread) }
    }

    fn stop(mut self) -> Ranges {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        sample(&mut self.ranges.lock().unwrap());
        self.ranges.lock().unwrap().clone()
    }
}

fn moved(r: &Ranges, keys: &[&str]) -> f64 {
    keys.iter().map(|k| r.get(*k).map(|(lo, hi)| hi - lo).unwrap_or_else(|| panic!("{k} was not sampled"))).sum()
}

fn agree(what: &str, agent: Option<f64>, collector: Option<f64>, tol: f64, failures: &mut Vec<String>) {
    let (Some(a), Some(c)) = (agent, collector) else {
        failures.push(format!("{what}: metricsd {agent:?}, hostmetrics {collector:?}: missing"));
        return;
    };
    let line = format!("{what}: metricsd {a} vs hostmetrics {c} (|Δ| {} ≤ tolerance {tol})", (a - c).abs());
    eprintln!("{line}");
    if (a - c).abs() > tol {
        failures.push(line);
    }
}

#[test]
fn system_metrics_agree_with_the_collectors_hostmetrics_receiver() {
    let Some(bin) = otelcol::bin() else { return };
    let mut collector = Collector::start(&bin, &collector_config(), &[]);
    let out = collector.path("out.json");
    if eventually(Duration::from_secs(30), || (!otelcol::read_json_lines(&out).is_empty() || collector.exited()).then_some(())).is_none() || collector.exited()
    {
        let (code, _, err) = collector.stop();
        panic!("the hostmetrics receiver wrote nothing (Collector exit {code:?}); stderr:\n{err}");
    }

    let sampler = Sampler::start();
    let window_start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(&cfg, "server:\n  enabled: false\nexporters:\n  - type: stdout\n    format: json\n").unwrap();
    let run = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let ours: Vec<Point> = stdout.lines().filter(|l| l.starts_with('{')).flat_map(|l| points(&serde_json::from_str(l).unwrap())).collect();
    let our_time = ours.iter().find(|p| p.name == "system.cpu.time").expect("metricsd reports system.cpu.time").time;

    // The Collector's reads in the window; wait for one after ours, so the nearest is in it.
    let theirs_all = eventually(Duration::from_secs(30), || {
        let pts: Vec<Point> = otelcol::read_json_lines(&out).iter().flat_map(points).filter(|p| p.time >= window_start).collect();
        pts.iter().any(|p| p.name == "system.cpu.time" && p.time > our_time).then_some(pts)
    })
    .expect("a hostmetrics read after metricsd's within 30 s");
    let ranges = sampler.stop();
    let (code, _, err) = collector.stop();
    assert_eq!(code, Some(0), "{err}");

    // Per metric, the Collector's read nearest to ours (each scraper stamps its own time).
    let mut theirs: Vec<Point> = Vec::new();
    for name in ["system.cpu.time", "system.memory.usage", "system.filesystem.usage", "system.network.io"] {
        let nearest = theirs_all.iter().filter(|p| p.name == name).map(|p| p.time).min_by_key(|t| t.abs_diff(our_time));
        let nearest = nearest.unwrap_or_else(|| panic!("hostmetrics reported no {name}"));
        theirs.extend(theirs_all.iter().filter(|p| p.name == name && p.time == nearest).map(|p| Point {
            name: p.name.clone(),
            attrs: p.attrs.clone(),
            value: p.value,
            time: p.time,
        }));
    }

    let mut failures = Vec::new();
    for (ours_mode, their_states, fields) in [
        ("user", &["user"][..], &["cpu.user"][..]),
        ("nice", &["nice"], &["cpu.nice"]),
        ("system", &["system"], &["cpu.system"]),
        ("idle", &["idle"], &["cpu.idle"]),
        ("iowait", &["wait"], &["cpu.iowait"]),
        ("interrupt", &["interrupt", "softirq"], &["cpu.irq", "cpu.softirq"]),
        ("steal", &["steal"], &["cpu.steal"]),
    ] {
        let c: Option<f64> = their_states.iter().map(|s| sum(&theirs, "system.cpu.time", &[("state", s)])).sum();
        agree(
            &format!("system.cpu.time {ours_mode}"),
            sum(&ours, "system.cpu.time", &[("cpu.mode", ours_mode)]),
            c,
            moved(&ranges, fields) + 0.05,
            &mut failures,
        );
    }
    let mib = 1024.0 * 1024.0;
    for (state, their_state, field) in [("used", "used", "mem.MemAvailable"), ("free", "free", "mem.MemFree"), ("buffers", "buffered", "mem.Buffers")] {
        agree(
            &format!("system.memory.usage {state}"),
            sum(&ours, "system.memory.usage", &[("system.memory.state", state)]),
            sum(&theirs, "system.memory.usage", &[("state", their_state)]),
            moved(&ranges, &[field]) + mib,
            &mut failures,
        );
    }
    let their_cached = sum(&theirs, "system.memory.usage", &[("state", "cached")])
        .zip(sum(&theirs, "system.memory.usage", &[("state", "slab_reclaimable")]))
        .map(|(c, s)| c - s);
    agree(
        "system.memory.usage cached",
        sum(&ours, "system.memory.usage", &[("system.memory.state", "cached")]),
        their_cached,
        moved(&ranges, &["mem.Cached"]) + mib,
        &mut failures,
    );
    for state in ["used", "free", "reserved"] {
        agree(
            &format!("system.filesystem.usage / {state}"),
            sum(&ours, "system.filesystem.usage", &[("system.filesystem.mountpoint", "/"), ("system.filesystem.state", state)]),
            sum(&theirs, "system.filesystem.usage", &[("mountpoint", "/"), ("state", state)]),
            moved(&ranges, &[&format!("fs.{state}")]) + mib,
            &mut failures,
        );
    }
    for dir in ["receive", "transmit"] {
        agree(
            &format!("system.network.io lo {dir}"),
            sum(&ours, "system.network.io", &[("network.interface.name", "lo"), ("network.io.direction", dir)]),
            sum(&theirs, "system.network.io", &[("device", "lo"), ("direction", dir)]),
            moved(&ranges, &[&format!("net.lo.{dir}")]) + 65536.0,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "metricsd and the hostmetrics receiver disagree:\n{}", failures.join("\n"));
}
