//! Per-metric control end to end: a config that switches three metrics off and drops an
//! attribute, seen in `--once`, on `/metrics` and in the OTLP the agent sends; and `--once`
//! showing CPU utilization from a single run.

mod common;

use common::grpc::Receiver;
use common::*;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::time::Duration;

const OFF: [&str; 3] = ["system.cpu.logical.count", "system.memory.utilization", "system.uptime"];

fn settings() -> &'static str {
    "collector:
  cpu:
    metrics:
      system.cpu.logical.count: {enabled: false}
      system.cpu.time: {drop_attributes: [cpu.logical_number]}
  memory:
    metrics:
      system.memory.utilization: {enabled: false}
  uptime:
    metrics:
      system.uptime: {enabled: false}
"
}

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn once(cfg: Option<&std::path::Path>) -> String {
    let mut c = agent();
    c.arg("--once");
    if let Some(cfg) = cfg {
        c.arg("-c").arg(cfg);
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The `--once` table's rows of `metric`.
fn rows<'a>(text: &'a str, metric: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.split_whitespace().next() == Some(metric)).collect()
}

#[test]
fn once_without_settings_reports_what_the_settings_then_remove() {
    let text = once(None);
    for m in OFF {
        assert!(!rows(&text, m).is_empty(), "{m} is reported by default:\n{text}");
    }
    assert!(rows(&text, "system.cpu.time").iter().all(|r| r.contains("cpu.logical_number=")), "{text}");
}

#[test]
fn once_leaves_out_disabled_metrics_and_sums_cpu_time_over_the_dropped_cpu_number() {
    let dir = tempfile::tempdir().unwrap();
    let text = once(Some(&write(&dir, settings())));
    for m in OFF {
        assert!(rows(&text, m).is_empty(), "{m} still reported:\n{text}");
    }
    let time = rows(&text, "system.cpu.time");
    assert!(!time.is_empty() && time.iter().all(|r| !r.contains("cpu.logical_number")), "{text}");
    let modes: Vec<&str> = time.iter().filter_map(|r| r.split("cpu.mode=").nth(1)).collect();
    let mut unique = modes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(modes.len(), unique.len(), "one series per mode: {time:?}");
    // Other cpu metrics are untouched.
    assert!(rows(&text, "system.cpu.utilization").iter().any(|r| r.contains("cpu.logical_number=0")), "{text}");
}

#[test]
fn once_shows_cpu_utilization_from_a_single_run() {
    let text = once(None);
    let util = rows(&text, "system.cpu.utilization");
    assert!(!util.is_empty(), "{text}");
    // The shares of one CPU's modes add up to 1 (the window had time in it).
    let cpu0: f64 = util.iter().filter(|r| r.contains("cpu.logical_number=0,")).map(|r| r.split_whitespace().nth(3).unwrap().parse::<f64>().unwrap()).sum();
    assert!((cpu0 - 1.0).abs() < 1e-6, "cpu 0's modes add up to {cpu0}: {util:?}");
}

#[test]
fn a_misspelt_metric_or_attribute_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        write(&dir, "collector:\n  cpu:\n    metrics:\n      system.cpu.frequncy: {enabled: false}\n      system.cpu.time: {drop_attributes: [cpu.state]}\n");
    let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["collector.cpu.metrics.system.cpu.frequncy", "system.cpu.frequency", "collector.cpu.metrics.system.cpu.time.drop_attributes", "cpu.state"] {
        assert!(err.contains(needle), "missing {needle} in: {err}");
    }
}

#[test]
fn disabled_metrics_are_absent_from_metrics_and_from_otlp_too() {
    let rx = Receiver::ok();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        &dir,
        &format!("{}  interval: 1s\nserver: {{host: 127.0.0.1, port: {port}}}\nexporters:\n  - type: otlp\n    endpoint: http://{}\n", settings(), rx.addr),
    );
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    let body =
        eventually(Duration::from_secs(15), || http_get(&addr, "/metrics").filter(|(s, b)| *s == 200 && b.contains("system_cpu_time"))).expect("/metrics").1;
    for m in OFF {
        let prom = m.replace('.', "_");
        assert!(!body.lines().any(|l| l.starts_with(&prom)), "{prom} on /metrics:\n{body}");
    }
    assert!(body.lines().filter(|l| l.starts_with("system_cpu_time")).all(|l| !l.contains("cpu_logical_number")), "{body}");
    assert!(body.contains("system_memory_usage_bytes{"), "{body}");
    let got = eventually(Duration::from_secs(15), || Some(rx.got()).filter(|g| !g.is_empty())).expect("an OTLP request");
    agent.signal(libc::SIGTERM);
    let _ = agent.wait(Duration::from_secs(10));
    let metrics: Vec<_> = got[0].request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).collect();
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&"system.memory.usage"), "{names:?}");
    for m in OFF {
        assert!(!names.contains(&m), "{m} sent: {names:?}");
    }
    let time = metrics.iter().find(|m| m.name == "system.cpu.time").expect("cpu time");
    let Some(Data::Sum(sum)) = &time.data else { panic!("{time:?}") };
    assert!(sum.data_points.iter().all(|p| p.attributes.iter().all(|kv| kv.key == "cpu.mode")), "{sum:?}");
}
