//! End to end into the real OpenTelemetry Collector (`tests/peers/otelcol`, see
//! tests/common/otelcol.rs): the agent ships OTLP to the Collector's `otlp` receiver, whose
//! `file` exporter (`format: json`) writes every request it got; the same agent ships the same
//! batches to an in-process tonic receiver as well. The test reads both and requires the same
//! data points line for line (tests/common/otlp_lines.rs): every metric, unit, description,
//! point, attribute, timestamp, temporality and resource attribute: nothing lost, nothing
//! renamed, nothing added.
//!
//! | case | transport | security | compression | temporality |
//! | --- | --- | --- | --- | --- |
//! | 1 | gRPC | plain | gzip | cumulative |
//! | 2 | HTTP/protobuf | plain | zstd | cumulative |
//! | 3 | gRPC | TLS (CA file) | zstd | cumulative |
//! | 4 | HTTP/protobuf | mTLS | gzip | cumulative |
//! | 5 | gRPC | plain | none | delta |
//! | 6 | HTTP/JSON (`http_json`, `format: otlp_json`) | plain | gzip | cumulative |

mod common;

use common::grpc::Receiver;
use common::otelcol::{self, Collector, QUIET_TELEMETRY};
use common::otlp_lines;
use common::*;
use std::path::Path;
use std::time::Duration;

/// Collector config: OTLP in (gRPC and HTTP, with `tls` under both when given), file out.
fn collector_config(tls: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: {{{{GRPC}}}}\n{tls}      http:\n        endpoint: {{{{HTTP}}}}\n{tls}\
         exporters:\n  file:\n    path: {{{{DIR}}}}/out.json\n    format: json\n\
         service:\n{QUIET_TELEMETRY}  pipelines:\n    metrics:\n      receivers: [otlp]\n      exporters: [file]\n"
    )
}

/// Agent config: `exporter` (to the Collector) and a plain gRPC OTLP exporter to the tonic
/// receiver with the same temporality; collection every 200 ms.
fn agent_config(dir: &Path, exporter: &str, tonic: &Receiver, temporality: &str) -> std::path::PathBuf {
    let p = dir.join("agent.yaml");
    std::fs::write(
        &p,
        format!(
            "server:\n  enabled: false\nshutdown_timeout: 5s\ncollector:\n  interval: 200ms\nexporters:\n{exporter}\
             \n  - type: otlp\n    endpoint: http://{}\n    compression: none\n    temporality: {temporality}\n",
            tonic.addr
        ),
    )
    .unwrap();
    p
}

/// Runs the agent for about 1.5 s against a Collector started on `tls`, stops both, and
/// returns (tonic lines, Collector lines), each sorted.
fn run_case(tls: &str, exporter: impl Fn(&Collector) -> String, temporality: &str) -> Option<(Vec<String>, Vec<String>)> {
    let bin = otelcol::bin()?;
    let mut collector = Collector::start(&bin, &collector_config(tls), &["grpc", "http"]);
    let tonic = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = agent_config(dir.path(), &exporter(&collector), &tonic, temporality);
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    // Enough ticks on a loaded machine: wait for 4 requests at the tonic receiver.
    eventually(Duration::from_secs(20), || (tonic.got().len() >= 4).then_some(()));
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "agent stderr:\n{err}");
    let out = collector.path("out.json");
    let (ccode, _, cerr) = collector.stop();
    assert_eq!(ccode, Some(0), "Collector stderr:\n{cerr}");
    let mut sent: Vec<String> = tonic.got().iter().flat_map(|g| otlp_lines::from_proto(&g.request)).collect();
    let mut received: Vec<String> = otelcol::read_json_lines(&out).iter().flat_map(otlp_lines::from_json).collect();
    sent.sort();
    received.sort();
    assert!(sent.len() > 50, "the agent sent {} points; stderr:\n{err}", sent.len());
    assert!(
        sent == received,
        "the Collector's file differs from what the agent sent (- sent, + Collector); {}\nagent stderr:\n{err}\nCollector stderr:\n{cerr}",
        otlp_lines::diff(&sent, &received, 30)
    );
    Some((sent, received))
}

/// Several ticks arrived, with host metrics in semantic-convention names and units.
fn check_content(lines: &[String], temporality: u8) {
    let times: std::collections::BTreeSet<&str> =
        lines.iter().filter(|l| l.starts_with("system.cpu.time|s|")).filter_map(|l| l.split("|time=").nth(1)?.split('|').next()).collect();
    assert!(times.len() >= 3, "ticks of system.cpu.time: {times:?}");
    assert!(lines.iter().any(|l| l.starts_with("system.memory.usage|By|") && l.contains("system.memory.state=s:used")));
    assert!(lines.iter().all(|l| l.contains("service.name=s:metricsd")), "every point carries the resource");
    let cpu_t = format!("|sum|t={temporality}|mono=true|");
    assert!(lines.iter().filter(|l| l.starts_with("system.cpu.time|")).all(|l| l.contains(&cpu_t)), "system.cpu.time has temporality {temporality}");
}

fn otlp_exporter(endpoint: &str, extra: &str) -> String {
    format!("  - type: otlp\n    endpoint: {endpoint}\n{extra}")
}

#[test]
fn grpc_plain_gzip_reaches_the_collector_unchanged() {
    let Some((sent, _)) = run_case("", |c| otlp_exporter(&format!("http://{}", c.grpc), "    compression: gzip\n"), "cumulative") else { return };
    check_content(&sent, 2);
}

#[test]
fn http_protobuf_plain_zstd_reaches_the_collector_unchanged() {
    let Some((sent, _)) = run_case("", |c| otlp_exporter(&format!("http://{}", c.http), "    protocol: http/protobuf\n    compression: zstd\n"), "cumulative")
    else {
        return;
    };
    check_content(&sent, 2);
}

#[test]
fn grpc_over_tls_zstd_reaches_the_collector_unchanged() {
    let pki = pki::Pki::new();
    let tls = format!("        tls:\n          cert_file: {}\n          key_file: {}\n", pki.file("server.pem"), pki.file("server.key"));
    let ca = pki.file("ca.pem");
    let Some((sent, _)) =
        run_case(&tls, |c| otlp_exporter(&format!("https://{}", c.grpc), &format!("    compression: zstd\n    tls: {{ca_file: {ca}}}\n")), "cumulative")
    else {
        return;
    };
    check_content(&sent, 2);
}

#[test]
fn http_protobuf_over_mtls_gzip_reaches_the_collector_unchanged() {
    let pki = pki::Pki::new();
    let tls = format!(
        "        tls:\n          cert_file: {}\n          key_file: {}\n          client_ca_file: {}\n",
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem")
    );
    let extra = format!(
        "    protocol: http/protobuf\n    compression: gzip\n    tls: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
        pki.file("ca.pem"),
        pki.file("client.pem"),
        pki.file("client.key")
    );
    let Some((sent, _)) = run_case(&tls, |c| otlp_exporter(&format!("https://{}", c.http), &extra), "cumulative") else { return };
    check_content(&sent, 2);
}

#[test]
fn delta_temporality_reaches_the_collector_as_delta_sums() {
    let Some((sent, _)) = run_case("", |c| otlp_exporter(&format!("http://{}", c.grpc), "    compression: none\n    temporality: delta\n"), "delta") else {
        return;
    };
    check_content(&sent, 1);
    // Up-down counters stay cumulative under delta, as the SDK's delta preference does.
    assert!(sent.iter().filter(|l| l.starts_with("system.memory.usage|")).all(|l| l.contains("|sum|t=2|mono=false|")));
}

#[test]
fn http_json_otlp_json_reaches_the_collector_unchanged() {
    let Some((sent, _)) = run_case("", |c| format!("  - type: http_json\n    endpoint: http://{}/v1/metrics\n    format: otlp_json\n", c.http), "cumulative")
    else {
        return;
    };
    check_content(&sent, 2);
}
