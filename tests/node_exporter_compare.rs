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
//!
//! The kernel collectors (`kernel_sources_agree_with_node_exporter`): counters must lie
//! between node_exporter's reads just before and just after metricsd's tick, within a few
//! units (the scrapes are loopback TCP: they move the TCP counters and may add conntrack
//! entries); limits and pool sizes exactly:
//!
//! | what | node_exporter | metricsd | tolerance |
//! | --- | --- | --- | --- |
//! | TCP, TcpExt, UDP counters | `node_netstat_Tcp_RetransSegs`, `_OutRsts`, `_InSegs`, `_OutSegs`, `_ActiveOpens`, `_PassiveOpens`, `_InErrs`, `TcpExt_ListenOverflows`, `_ListenDrops`, `_Syncookies*`, `Udp[6]_InDatagrams`, `_OutDatagrams`, `_NoPorts`, `_InErrors`, `_RcvbufErrors`, `_SndbufErrors` | `system.linux.network.{tcp,udp}.*` | between, + 16 |
//! | softnet per CPU | `node_softnet_{processed,dropped,times_squeezed}_total` | `system.linux.softnet.*` | between, + 16 |
//! | conntrack | `node_nf_conntrack_entries`, `_entries_limit` | `system.network.conntrack.{count,max}` | between + 64, exact |
//! | file handles | `node_filefd_allocated`, `_maximum` | `system.linux.file_descriptor.{count,limit}` | between ± 50 % + 512 (builds start and stop processes), exact |
//! | entropy | `node_entropy_available_bits`, `_pool_size_bits` | `system.linux.entropy.*` | between ± 128, exact |
//! | huge pages | `node_memory_HugePages_{Total,Free,Rsvd,Surp}`, `node_memory_Hugepagesize_bytes` | `system.memory.linux.hugepages.*` | exact |
//! | clock | `node_timex_sync_status`, `_status`, `_maxerror_seconds`, `_offset_seconds`, `_frequency_adjustment_ratio` | `system.linux.time.*` | exact, exact, 0.1 s, 0.01 s, 10⁻⁶ |
//!
//! The hardware collectors (`hardware_sources_agree_with_node_exporter_on_the_fixture_tree`):
//! this host has no hwmon, RAPL, EDAC, NVMe or md RAID, so both read the hand-written tree
//! `tests/fixtures/proc/linux-6.8-sensors` (node_exporter with `--path.sysfs`/`--path.procfs`,
//! metricsd with `root_path`), and every value node_exporter reports for `hwmon`, `rapl`,
//! `edac`, `nvme` and `mdadm` must be metricsd's exactly (10⁻⁹ for the decimal conversions),
//! except `node_md_blocks_synced` of a running recovery or check, which counts one member's
//! blocks (metricsd reports done ÷ total of the progress line instead).
//! node_exporter 1.5's `thermal_zone` collector fails as a whole on the tree's firmware zone
//! without a `temp` file (metricsd skips that zone), so thermal zones are not compared.

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

/// node_exporter (only `collectors`) scraped just before and just after one `metricsd --once`
/// with its default collectors: (before, after, metricsd), or `None` where node_exporter is
/// not installed.
fn around_one_tick(collectors: &[&str]) -> Option<(Series, Series, Series)> {
    let bin = require_program("prometheus-node-exporter")?;
    let port = free_port();
    let mut ne = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .args(collectors.iter().map(|c| format!("--collector.{c}")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(20), || http_get(&addr, "/metrics").filter(|(s, _)| *s == 200));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "exporters:\n  - type: stdout\n    format: json\n").unwrap();
    let first = http_get(&addr, "/metrics");
    let out = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    let scraped = http_get(&addr, "/metrics");
    let _ = ne.kill();
    let _ = ne.wait();
    ready.expect("node_exporter answers");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let before = parse_exposition(&first.expect("node_exporter answers").1);
    let after = parse_exposition(&scraped.expect("node_exporter answers").1);
    Some((before, after, parse_otlp(&serde_json::from_slice(&out.stdout).unwrap())))
}

#[test]
fn kernel_sources_agree_with_node_exporter() {
    let Some((before, ne, md)) = around_one_tick(&["netstat", "softnet", "conntrack", "filefd", "entropy", "timex", "meminfo"]) else { return };
    let mut compared = 0;
    // metricsd's value lies between node_exporter's two reads, `abs` beyond either end at most.
    let mut between = |ne_key: &str, md_key: &str, abs: f64| {
        let (Some(lo), Some(hi)) = (before.get(ne_key), ne.get(ne_key)) else {
            panic!("node_exporter has no {ne_key}");
        };
        let b = *md.get(md_key).unwrap_or_else(|| panic!("metricsd has no {md_key}"));
        let (lo, hi) = (lo.min(*hi), lo.max(*hi));
        assert!(lo - abs <= b && b <= hi + abs, "{md_key}: node_exporter {ne_key} {lo} before and {hi} after, metricsd {b} (tolerance {abs})");
        compared += 1;
    };

    // TCP and UDP protocol counters (/proc/net/snmp, netstat, snmp6).
    for (ne_key, md_key) in [
        ("node_netstat_Tcp_RetransSegs", "system.linux.network.tcp.retransmits{}"),
        ("node_netstat_Tcp_OutRsts", "system.linux.network.tcp.resets{}"),
        ("node_netstat_Tcp_InErrs", "system.linux.network.tcp.errors{}"),
        ("node_netstat_Tcp_InSegs", "system.linux.network.tcp.segments{network.io.direction=receive}"),
        ("node_netstat_Tcp_OutSegs", "system.linux.network.tcp.segments{network.io.direction=transmit}"),
        ("node_netstat_Tcp_ActiveOpens", "system.linux.network.tcp.opens{system.linux.network.tcp.open.type=active}"),
        ("node_netstat_Tcp_PassiveOpens", "system.linux.network.tcp.opens{system.linux.network.tcp.open.type=passive}"),
        ("node_netstat_TcpExt_ListenOverflows", "system.linux.network.tcp.listen.overflows{}"),
        ("node_netstat_TcpExt_ListenDrops", "system.linux.network.tcp.listen.drops{}"),
        ("node_netstat_TcpExt_SyncookiesSent", "system.linux.network.tcp.syncookies{system.linux.network.tcp.syncookie.state=sent}"),
        ("node_netstat_TcpExt_SyncookiesRecv", "system.linux.network.tcp.syncookies{system.linux.network.tcp.syncookie.state=received}"),
        ("node_netstat_TcpExt_SyncookiesFailed", "system.linux.network.tcp.syncookies{system.linux.network.tcp.syncookie.state=failed}"),
        ("node_netstat_Udp_InDatagrams", "system.linux.network.udp.datagrams{network.io.direction=receive,network.type=ipv4}"),
        ("node_netstat_Udp_OutDatagrams", "system.linux.network.udp.datagrams{network.io.direction=transmit,network.type=ipv4}"),
        ("node_netstat_Udp_NoPorts", "system.linux.network.udp.errors{error.type=no_port,network.type=ipv4}"),
        ("node_netstat_Udp_InErrors", "system.linux.network.udp.errors{error.type=receive,network.type=ipv4}"),
        ("node_netstat_Udp_RcvbufErrors", "system.linux.network.udp.errors{error.type=receive_buffer,network.type=ipv4}"),
        ("node_netstat_Udp_SndbufErrors", "system.linux.network.udp.errors{error.type=send_buffer,network.type=ipv4}"),
    ] {
        between(ne_key, md_key, 16.0);
    }
    if ne.contains_key("node_netstat_Udp6_InDatagrams") {
        between("node_netstat_Udp6_InDatagrams", "system.linux.network.udp.datagrams{network.io.direction=receive,network.type=ipv6}", 16.0);
        between("node_netstat_Udp6_NoPorts", "system.linux.network.udp.errors{error.type=no_port,network.type=ipv6}", 16.0);
    }

    // Softnet, per CPU.
    for cpu in 0..std::thread::available_parallelism().unwrap().get() {
        for (ne_name, md_name) in [("processed", "processed"), ("dropped", "dropped"), ("times_squeezed", "time_squeezed")] {
            let ne_key = format!("node_softnet_{ne_name}_total{{cpu=\"{cpu}}}");
            if ne.contains_key(&ne_key) {
                between(&ne_key, &format!("system.linux.softnet.{md_name}{{cpu.logical_number={cpu}}}"), 16.0);
            }
        }
    }

    // Conntrack, where the module is loaded (the scrapes may add entries).
    if ne.contains_key("node_nf_conntrack_entries") {
        between("node_nf_conntrack_entries", "system.network.conntrack.count{}", 64.0);
        assert_eq!(ne["node_nf_conntrack_entries_limit"], md["system.network.conntrack.max{}"]);
    } else {
        assert!(!md.contains_key("system.network.conntrack.count{}"), "metricsd reports conntrack where node_exporter found none");
    }

    // File handles: a busy build host starts and ends processes between the reads.
    let (a, b) = (before["node_filefd_allocated"], ne["node_filefd_allocated"]);
    let count = md["system.linux.file_descriptor.count{}"];
    assert!(a.min(b) * 0.5 - 512.0 <= count && count <= a.max(b) * 1.5 + 512.0, "file handles: node_exporter {a} and {b}, metricsd {count}");
    assert_eq!(ne["node_filefd_maximum"], md["system.linux.file_descriptor.limit{}"]);

    // Entropy.
    between("node_entropy_available_bits", "system.linux.entropy.available{}", 128.0);
    assert_eq!(ne["node_entropy_pool_size_bits"], md["system.linux.entropy.pool_size{}"]);

    // Huge pages (meminfo).
    for (ne_key, md_key) in [
        ("node_memory_HugePages_Total", "system.memory.linux.hugepages.limit{}"),
        ("node_memory_HugePages_Free", "system.memory.linux.hugepages.usage{system.memory.linux.hugepages.state=free}"),
        ("node_memory_HugePages_Rsvd", "system.memory.linux.hugepages.reserved{}"),
        ("node_memory_HugePages_Surp", "system.memory.linux.hugepages.surplus{}"),
        ("node_memory_Hugepagesize_bytes", "system.memory.linux.hugepages.page_size{}"),
    ] {
        if let Some(v) = ne.get(ne_key) {
            assert_eq!(Some(v), md.get(md_key), "{ne_key} vs {md_key}");
        }
    }

    // The clock (adjtimex).
    assert_eq!(ne["node_timex_sync_status"], md["system.linux.time.synchronized{}"], "synchronized");
    assert_eq!(ne["node_timex_status"], md["system.linux.time.status{}"], "status bits");
    close("maxerror", ne["node_timex_maxerror_seconds"], md["system.linux.time.max_error{}"], 0.1, 0.0);
    close("offset", ne["node_timex_offset_seconds"], md["system.linux.time.offset{}"], 0.01, 0.0);
    close("frequency", ne["node_timex_frequency_adjustment_ratio"], md["system.linux.time.frequency_adjustment{}"], 1e-6, 0.0);
    assert!(compared >= 22, "counters compared: {compared}");
}

/// One series: name, labels, value.
type Labeled = (String, std::collections::BTreeMap<String, String>, f64);

/// Every sample of a Prometheus text exposition, labels unescaped.
fn exposition_series(text: &str) -> Vec<Labeled> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (head, value) = line.rsplit_once(' ').unwrap();
        let mut labels = std::collections::BTreeMap::new();
        let name = match head.split_once('{') {
            None => head.to_string(),
            Some((name, mut rest)) => {
                while let Some((key, after)) = rest.split_once("=\"") {
                    let mut val = String::new();
                    let mut chars = after.char_indices();
                    let mut end = after.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => val.extend(chars.next().map(|(_, c)| if c == 'n' { '\n' } else { c })),
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            c => val.push(c),
                        }
                    }
                    labels.insert(key.trim_start_matches(',').to_string(), val);
                    rest = &after[end..];
                }
                name.to_string()
            }
        };
        out.push((name, labels, value.parse().unwrap_or(f64::NAN)));
    }
    out
}

/// Every point of metricsd's OTLP/JSON output, attributes as strings.
fn otlp_series(v: &serde_json::Value) -> Vec<Labeled> {
    let mut out = Vec::new();
    for rm in v["resourceMetrics"].as_array().unwrap() {
        for sm in rm["scopeMetrics"].as_array().unwrap() {
            for m in sm["metrics"].as_array().unwrap() {
                let data = if m["sum"].is_object() { &m["sum"] } else { &m["gauge"] };
                for dp in data["dataPoints"].as_array().into_iter().flatten() {
                    let labels = dp["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| {
                            let val = &a["value"];
                            let s = val["stringValue"].as_str().map(String::from).or_else(|| val["intValue"].as_str().map(String::from)).unwrap_or_default();
                            (a["key"].as_str().unwrap().to_string(), s)
                        })
                        .collect();
                    let value = dp["asDouble"].as_f64().or_else(|| dp["asInt"].as_str().and_then(|s| s.parse().ok())).unwrap();
                    out.push((m["name"].as_str().unwrap().to_string(), labels, value));
                }
            }
        }
    }
    out
}

#[test]
fn hardware_sources_agree_with_node_exporter_on_the_fixture_tree() {
    let Some(bin) = require_program("prometheus-node-exporter") else { return };
    let tree = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc/linux-6.8-sensors");
    let port = free_port();
    let mut ne = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--path.sysfs={}", tree.join("sys").display()))
        .arg(format!("--path.procfs={}", tree.join("proc").display()))
        .args(["--collector.disable-defaults", "--collector.hwmon", "--collector.rapl", "--collector.edac", "--collector.nvme", "--collector.mdadm"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let scraped = eventually(Duration::from_secs(20), || http_get(&addr, "/metrics").filter(|(s, _)| *s == 200));
    let _ = ne.kill();
    let _ = ne.wait();
    let ne = exposition_series(&scraped.expect("node_exporter answers").1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, format!("root_path: {}\nexporters:\n  - type: stdout\n    format: json\n", tree.display())).unwrap();
    let out = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let md = otlp_series(&serde_json::from_slice(&out.stdout).unwrap());

    // The one metricsd point of `name` whose attributes satisfy `pick`.
    let one = |name: &str, what: &str, pick: &dyn Fn(&std::collections::BTreeMap<String, String>) -> bool| -> f64 {
        let found: Vec<f64> = md.iter().filter(|(n, l, _)| n == name && pick(l)).map(|p| p.2).collect();
        assert_eq!(found.len(), 1, "{what}: metricsd has {} points of {name} for it", found.len());
        found[0]
    };
    let same = |what: &str, a: f64, b: f64| assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{what}: node_exporter {a}, metricsd {b}");
    let mut compared = 0;
    for (name, l, v) in &ne {
        let what = format!("{name}{l:?}");
        let label = |k: &str| l.get(k).cloned().unwrap_or_default();
        // hwmon: metricsd's hw.id is `<chip id>_<sensor>`, its chip id node_exporter's chip
        // label (with the hwmon directory where the chip has no device link).
        let sensor_of = |l2: &std::collections::BTreeMap<String, String>| {
            let id = l2.get("hw.id").map(String::as_str).unwrap_or("");
            id.starts_with(&format!("{}_", label("chip"))) && id.ends_with(&format!("_{}", label("sensor")))
        };
        let got = match name.as_str() {
            "node_hwmon_temp_celsius" => Some(one("hw.temperature", &what, &|l2| sensor_of(l2) && !l2.contains_key("hw.limit_type"))),
            "node_hwmon_temp_max_celsius" => Some(one("hw.temperature.limit", &what, &|l2| sensor_of(l2) && l2["hw.limit_type"] == "high.degraded")),
            "node_hwmon_temp_crit_celsius" => Some(one("hw.temperature.limit", &what, &|l2| sensor_of(l2) && l2["hw.limit_type"] == "high.critical")),
            "node_hwmon_fan_rpm" => Some(one("hw.fan.speed", &what, &sensor_of)),
            "node_hwmon_in_volts" => Some(one("hw.voltage", &what, &sensor_of)),
            "node_hwmon_power_average_watt" => Some(one("hw.power", &what, &sensor_of)),
            n if n.starts_with("node_rapl_") && n.ends_with("_joules_total") => {
                let zone = label("path").rsplit('/').next().unwrap().to_string();
                Some(one("hw.energy", &what, &|l2| l2.get("hw.id") == Some(&zone)))
            }
            "node_edac_correctable_errors_total" | "node_edac_uncorrectable_errors_total" => {
                let ty = if name.contains("uncorrectable") { "uncorrected" } else { "corrected" };
                let id = format!("edac_mc{}", label("controller"));
                Some(one("hw.errors", &what, &|l2| l2.get("hw.id") == Some(&id) && l2["error.type"] == ty))
            }
            "node_edac_csrow_correctable_errors_total" | "node_edac_csrow_uncorrectable_errors_total" => {
                let ty = if name.contains("uncorrectable") { "uncorrected" } else { "corrected" };
                let row = label("csrow");
                let id = format!("edac_mc{}_{}", label("controller"), if row == "unknown" { row.clone() } else { format!("csrow{row}") });
                Some(one("system.linux.edac.csrow.errors", &what, &|l2| l2.get("hw.id") == Some(&id) && l2["error.type"] == ty))
            }
            "node_nvme_info" => Some(one("system.linux.nvme.info", &what, &|l2| {
                l2["hw.id"] == label("device")
                    && l2["hw.model"] == label("model")
                    && l2["hw.serial_number"] == label("serial")
                    && l2["hw.firmware_version"] == label("firmware_revision")
                    && l2["system.linux.nvme.state"] == label("state")
            })),
            "node_md_state" => {
                Some(one("system.linux.md.state", &what, &|l2| l2["system.device"] == label("device") && l2["system.linux.md.state"] == label("state")))
            }
            "node_md_disks" => {
                Some(one("system.linux.md.disks", &what, &|l2| l2["system.device"] == label("device") && l2["system.linux.md.disk.state"] == label("state")))
            }
            "node_md_disks_required" if *v > 0.0 => Some(one("system.linux.md.disks.required", &what, &|l2| l2["system.device"] == label("device"))),
            "node_md_blocks" => Some(one("system.linux.md.size", &what, &|l2| l2["system.device"] == label("device")) / 1024.0),
            "node_md_blocks_synced"
                if !ne.iter().any(|(n, l2, v)| {
                    n == "node_md_state" && l2 == &[("device".into(), label("device")), ("state".into(), "inactive".into())].into() && *v == 1.0
                }) =>
            {
                // node_exporter's `blocks_synced` is the progress line's done count, which for
                // raid5/raid10 counts blocks of one member, not of the array: its ratio to
                // `node_md_blocks` is not the completion. Not syncing: done = blocks, complete.
                let blocks = ne.iter().find(|(n, l2, _)| n == "node_md_blocks" && l2.get("device") == l.get("device")).unwrap().2;
                let completion = one("system.linux.md.sync.completion", &what, &|l2| l2["system.device"] == label("device"));
                if *v == blocks || *v == 0.0 {
                    Some(if *v == 0.0 { completion } else { completion * blocks })
                } else {
                    assert!(completion > 0.0 && completion < 1.0, "{what}: syncing, metricsd's completion {completion}");
                    None
                }
            }
            _ => None,
        };
        if let Some(got) = got {
            same(&what, *v, got);
            compared += 1;
        }
    }
    assert!(compared >= 80, "series compared: {compared}");
}
