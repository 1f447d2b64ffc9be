//! The numbers agree with node_exporter's: Debian's `prometheus-node-exporter` is started on a
//! free loopback port and scraped right after `metricsd --once` on the same host, and the
//! values are compared within stated tolerances (the two reads are a few hundred ms apart):
//!
//! | what | node_exporter | metricsd | tolerance |
//! | --- | --- | --- | --- |
//! | memory total | `node_memory_MemTotal_bytes` | `system.memory.limit` | exact |
//! | memory available | `node_memory_MemAvailable_bytes` | `system.memory.linux.available` | 2 % |
//! | CPU time per cpu and mode | `node_cpu_seconds_total` | `system.cpu.time` | 2 s + 1 % (idle grows between reads) |
//! | disk bytes read / written | `node_disk_{read,written}_bytes_total` | `system.disk.io` | 4 MiB |
//! | filesystem size, available | `node_filesystem_{size,avail}_bytes` | `system.filesystem.limit`, `usage{free}` | exact, 1 % |
//! | network bytes | `node_network_{receive,transmit}_bytes_total` | `system.network.io` | 1 MiB (lo excluded: the scrape itself is loopback traffic) |

mod common;

use common::*;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

type Series = HashMap<String, f64>;

/// `name{a="x",b="y"}` → value, keys with labels sorted.
fn parse_exposition(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap();
        let key = match key.split_once('{') {
            Some((name, rest)) => {
                let mut labels: Vec<&str> = rest.trim_end_matches('}').split("\",").map(|l| l.trim_end_matches('"')).collect();
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => key.to_string(),
        };
        out.insert(key, value.parse().unwrap_or(f64::NAN));
    }
    out
}

/// metricsd's OTLP/JSON → `name{k=v,...}` → value.
fn parse_otlp(v: &serde_json::Value) -> Series {
    let mut out = Series::new();
    for m in v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap() {
        let data = if m["sum"].is_object() { &m["sum"] } else { &m["gauge"] };
        for dp in data["dataPoints"].as_array().into_iter().flatten() {
            let mut labels: Vec<String> = dp["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let val = &a["value"];
                    let s = val["stringValue"].as_str().map(String::from).or_else(|| val["intValue"].as_str().map(String::from)).unwrap_or_default();
                    format!("{}={}", a["key"].as_str().unwrap(), s)
                })
                .collect();
            labels.sort();
            let value = dp["asDouble"].as_f64().or_else(|| dp["asInt"].as_str().and_then(|s| s.parse().ok())).unwrap();
            out.insert(format!("{}{{{}}}", m["name"].as_str().unwrap(), labels.join(",")), value);
        }
    }
    out
}

fn close(what: &str, a: f64, b: f64, abs: f64, rel: f64) {
    let tol = abs + rel * a.abs().max(b.abs());
    assert!((a - b).abs() <= tol, "{what}: node_exporter {a} vs metricsd {b} (tolerance {tol})");
}

#[test]
fn system_metrics_agree_with_node_exporter() {
    let Some(bin) = require_program("prometheus-node-exporter") else { return };
    let port = free_port();
    let mut ne = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.meminfo",
            "--collector.diskstats",
            "--collector.filesystem",
            "--collector.netdev",
            "--collector.loadavg",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(20), || http_get(&addr, "/metrics").filter(|(s, _)| *s == 200));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "exporters:\n  - type: stdout\n    format: json\n").unwrap();
    // Counters are read by node_exporter just before and just after metricsd's one tick, and
    // metricsd's value must lie between the two (within the tolerance): a busy disk or network
    // moves megabytes between two reads a few tens of milliseconds apart.
    let first = http_get(&addr, "/metrics");
    let out = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    let scraped = http_get(&addr, "/metrics");
    let _ = ne.kill();
    let _ = ne.wait();
    ready.expect("node_exporter answers");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let before = parse_exposition(&first.expect("node_exporter answers").1);
    let ne = parse_exposition(&scraped.unwrap().1);
    let between = |what: &str, key: &str, b: f64, abs: f64| {
        let (lo, hi) = (before[key], ne[key]);
        assert!(lo - abs <= b && b <= hi + abs, "{what}: node_exporter {lo} before and {hi} after, metricsd {b} (tolerance {abs})");
    };
    let md = parse_otlp(&serde_json::from_slice(&out.stdout).unwrap());

    // Memory.
    assert_eq!(ne["node_memory_MemTotal_bytes"], md["system.memory.limit{}"]);
    close("MemAvailable", ne["node_memory_MemAvailable_bytes"], md["system.memory.linux.available{}"], 0.0, 0.02);

    // CPU time per cpu and mode.
    let mut cpu_checked = 0;
    for (mode_ne, mode_md) in [("user", "user"), ("system", "system"), ("idle", "idle"), ("iowait", "iowait"), ("steal", "steal")] {
        for cpu in 0..std::thread::available_parallelism().unwrap().get() {
            let k_ne = format!("node_cpu_seconds_total{{cpu=\"{cpu},mode=\"{mode_ne}}}");
            let k_md = format!("system.cpu.time{{cpu.logical_number={cpu},cpu.mode={mode_md}}}");
            if let (Some(_), Some(b)) = (ne.get(&k_ne), md.get(&k_md)) {
                between(&k_md, &k_ne, *b, 2.0);
                cpu_checked += 1;
            }
        }
    }
    assert!(
        cpu_checked >= 6,
        "cpu series compared: {cpu_checked}; metricsd has {:?}",
        md.keys().filter(|k| k.starts_with("system.cpu.time")).take(3).collect::<Vec<_>>()
    );
    // irq + softirq = interrupt.
    let irq = ne.get("node_cpu_seconds_total{cpu=\"0,mode=\"irq}").copied().unwrap_or(0.0)
        + ne.get("node_cpu_seconds_total{cpu=\"0,mode=\"softirq}").copied().unwrap_or(0.0);
    close("interrupt", irq, md["system.cpu.time{cpu.logical_number=0,cpu.mode=interrupt}"], 1.0, 0.01);

    // Disks metricsd reports.
    let mut disks = 0;
    for (k, v) in md.iter().filter(|(k, _)| k.starts_with("system.disk.io{")) {
        let dev = k.split("system.device=").nth(1).unwrap().trim_end_matches('}').split(',').next().unwrap();
        let dir = if k.contains("direction=read") { "read" } else { "written" };
        let key = format!("node_disk_{dir}_bytes_total{{device=\"{dev}}}");
        if ne.contains_key(&key) {
            between(k, &key, *v, 1024.0 * 1024.0);
            disks += 1;
        }
    }
    assert!(disks >= 2, "disk series compared: {disks}");

    // The root filesystem.
    let size = ne.iter().find(|(k, _)| k.starts_with("node_filesystem_size_bytes{") && k.contains("mountpoint=\"/\"")).map(|(_, v)| *v);
    let avail = ne.iter().find(|(k, _)| k.starts_with("node_filesystem_avail_bytes{") && k.contains("mountpoint=\"/\"")).map(|(_, v)| *v);
    let limit = md.iter().find(|(k, _)| k.starts_with("system.filesystem.limit{") && k.contains("system.filesystem.mountpoint=/,")).map(|(_, v)| *v);
    let free = md
        .iter()
        .find(|(k, _)| k.starts_with("system.filesystem.usage{") && k.contains("system.filesystem.mountpoint=/,") && k.contains("state=free"))
        .map(|(_, v)| *v);
    if let Some(size) = size {
        assert_eq!(Some(size), limit, "root filesystem size");
        close("root avail", avail.unwrap(), free.expect("free state of /"), 0.0, 0.01);
    }

    // Network, every interface but lo.
    let mut ifaces = 0;
    for (k, v) in md.iter().filter(|(k, _)| k.starts_with("system.network.io{") && !k.contains("name=lo,")) {
        let dev = k.split("network.interface.name=").nth(1).unwrap().split([',', '}']).next().unwrap();
        let dir = if k.contains("direction=receive") { "receive" } else { "transmit" };
        let key = format!("node_network_{dir}_bytes_total{{device=\"{dev}}}");
        if ne.contains_key(&key) {
            between(k, &key, *v, 64.0 * 1024.0);
            ifaces += 1;
        }
    }
    assert!(ifaces >= 2, "network series compared: {ifaces}");
}
