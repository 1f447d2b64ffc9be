//! The `file` exporter end to end: the agent writes its batches as a Prometheus file that
//! Debian's `prometheus-node-exporter` reads as a textfile (the platform-agnostic exporter's
//! "Prometheus file" mode) and as OTLP/JSON lines; `--check-config` names a missing directory.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_agents_prometheus_file_is_read_by_node_exporters_textfile_collector_and_its_json_lines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let prom = textfiles.join("metricsd.prom");
    let jsonl = dir.path().join("metrics.jsonl");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "collector: {{interval: 1s}}\nexporters:\n  - type: file\n    path: {}\n  - type: file\n    path: {}\n    format: otlp_json\n",
            prom.display(),
            jsonl.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut cmd = agent();
    cmd.arg("-c").arg(&cfg).env("MC_SERVER_PORT", port.to_string());
    let _agent = Running::spawn(cmd);
    let lines = eventually(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&jsonl).ok()?;
        (text.lines().count() >= 2 && prom.exists()).then_some(text)
    })
    .expect("both files written within 20 s");
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["resourceMetrics"][0]["scopeMetrics"].as_array().is_some_and(|s| !s.is_empty()), "{l}");
    }
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("# TYPE system_memory_limit_bytes gauge"), "{text}");
    let limit = memory_limit(&text).expect("system_memory_limit_bytes in the agent's file");

    let Some(bin) = require_program("prometheus-node-exporter") else { return };
    let ne_port = free_port();
    let mut ne = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", textfiles.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{ne_port}");
    let scraped = eventually(Duration::from_secs(20), || http_get(&addr, "/metrics").filter(|(s, _)| *s == 200));
    let _ = ne.kill();
    let _ = ne.wait();
    let body = scraped.expect("node_exporter answers").1;
    assert!(body.contains("node_textfile_scrape_error 0"), "node_exporter read the agent's file without error:\n{body}");
    // The memory limit does not change between two ticks: node_exporter serves the same value.
    assert_eq!(memory_limit(&body), Some(limit), "{body}");
}

/// The value of `system_memory_limit_bytes` in an exposition.
fn memory_limit(text: &str) -> Option<f64> {
    let parsed = metricsd::scrape::text::parse(text, metricsd::scrape::text::TextFormat::Prometheus);
    parsed.families.iter().find(|f| f.name == "system_memory_limit_bytes").and_then(|f| f.samples.first()).map(|s| s.value)
}

#[test]
fn check_config_names_a_missing_directory_of_a_file_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let missing = dir.path().join("no-such-dir/m.prom");
    std::fs::write(&cfg, format!("exporters:\n  - type: file\n    path: {}\n", missing.display())).unwrap();
    let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("exporters[0]") && err.contains("no-such-dir") && err.contains("does not exist"), "{err}");
}
