//! Every Collector configuration shipped in `otel-collector-config/` run for real in the test
//! Collector (tests/peers/otelcol): it passes `otelcol-test validate`, then runs for a few ticks
//! with the agent sending OTLP to it. The file is used as shipped; an overlay config (merged
//! after it by the Collector's own `--config` chaining) replaces only what names the outside
//! world: the listening address (a free loopback port), the TLS files (rcgen certificates), the
//! remote-write endpoint (a real Prometheus, Debian's, started by the test) and, so the test
//! sees what passed through, a `file` exporter added to the pipeline's exporters.

mod common;

use common::otelcol::{self, Collector, QUIET_TELEMETRY};
use common::otlp_lines;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("otel-collector-config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    files
}

/// The overlay for `file`: local endpoints, the test's certificates, a file exporter added.
fn overlay(file: &Path, prom_write_url: &str, pki: &pki::Pki) -> String {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let exporters: Vec<String> = doc["service"]["pipelines"]["metrics"]["exporters"]
        .as_sequence()
        .expect("service.pipelines.metrics.exporters")
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .chain(["file".to_string()])
        .collect();
    let tls = if doc["receivers"]["otlp"]["protocols"]["grpc"]["tls"].is_mapping() {
        let mut t = format!("        tls:\n          cert_file: {}\n          key_file: {}\n", pki.file("server.pem"), pki.file("server.key"));
        if doc["receivers"]["otlp"]["protocols"]["grpc"]["tls"]["client_ca_file"].is_string() {
            t.push_str(&format!("          client_ca_file: {}\n", pki.file("ca.pem")));
        }
        t
    } else {
        String::new()
    };
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: {{{{GRPC}}}}\n{tls}\
         exporters:\n  prometheusremotewrite:\n    endpoint: {prom_write_url}\n  file:\n    path: {{{{DIR}}}}/out.json\n    format: json\n\
         service:\n{QUIET_TELEMETRY}  pipelines:\n    metrics:\n      exporters: [{}]\n",
        exporters.join(", ")
    )
}

/// The agent's OTLP exporter for `file`: plain gRPC, or mTLS with the client certificate.
fn agent_exporter(file: &Path, collector: &Collector, pki: &pki::Pki) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    if text.contains("client_ca_file") {
        format!(
            "  - type: otlp\n    endpoint: https://{}\n    tls: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
            collector.grpc,
            pki.file("ca.pem"),
            pki.file("client.pem"),
            pki.file("client.key")
        )
    } else {
        format!("  - type: otlp\n    endpoint: http://{}\n", collector.grpc)
    }
}

#[test]
fn every_shipped_collector_config_validates_and_carries_the_agents_metrics_to_prometheus() {
    let Some(bin) = otelcol::bin() else { return };
    let Some(prom) = Prometheus::start() else { return };
    let files = shipped();
    assert!(files.len() >= 2, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let pki = pki::Pki::new();
        let overlay_text = overlay(file, &prom.write_url(), &pki);

        // 1. validate: the shipped file alone, then with the overlay.
        let (ok, err) = otelcol::validate(&bin, &[file.to_path_buf()]);
        assert!(ok, "{name} does not validate:\n{err}");

        // 2. run it: the shipped file, then the overlay (the Collector merges them in order).
        let template = format!("# overlay\n{overlay_text}");
        let mut collector = Collector::start_with_base(&bin, std::slice::from_ref(file), &template, &["grpc"]);
        let (ok, err) = otelcol::validate(&bin, &[file.to_path_buf(), collector.path("otelcol.yaml")]);
        assert!(ok, "{name} with the local overlay does not validate:\n{err}");

        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agent.yaml");
        // A host name (and Prometheus `instance`) per file, to find this file's series in the one Prometheus.
        let host = format!("collector-config-{}", name.trim_end_matches(".yaml"));
        std::fs::write(
            &cfg,
            format!(
                "server:\n  enabled: false\nshutdown_timeout: 5s\ncollector:\n  interval: 250ms\nresource:\n  host.name: {host}\n  service.instance.id: {host}\nexporters:\n{}",
                agent_exporter(file, &collector, &pki)
            ),
        )
        .unwrap();
        let agent = Running::spawn({
            let mut c = agent();
            c.arg("-c").arg(&cfg);
            c
        });
        // The batch processor's timeout is 5 s: the series arrive within ~6 s.
        let found = eventually(Duration::from_secs(30), || {
            let r = prom.query(&format!("system_memory_usage_bytes{{instance=\"{host}\"}}"));
            (!r.is_empty()).then_some(r)
        });
        agent.signal(libc::SIGTERM);
        let (code, _, agent_err) = agent.wait(Duration::from_secs(20));
        let out = collector.path("out.json");
        let (ccode, _, cerr) = collector.stop();
        let found = found.unwrap_or_else(|| panic!("{name}: no system_memory_usage_bytes for {host} in Prometheus\nagent:\n{agent_err}\nCollector:\n{cerr}"));
        assert_eq!(code, Some(0), "{name}: agent:\n{agent_err}");
        assert_eq!(ccode, Some(0), "{name}: Collector:\n{cerr}");
        assert!(found.iter().any(|s| s["metric"]["system_memory_state"] == "used"), "{name}: {found:?}");
        let lines = otelcol::read_json_lines(&out);
        let points: Vec<String> = lines.iter().flat_map(otlp_lines::from_json).collect();
        assert!(points.iter().any(|l| l.starts_with("system.cpu.time|s|")), "{name}: the file exporter got no system.cpu.time");
        assert!(points.iter().all(|l| l.contains(&format!("host.name=s:{host}"))), "{name}: every point carries the agent's resource");
    }
}
