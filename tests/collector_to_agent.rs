//! From the real OpenTelemetry Collector into the agent's OTLP receiver (the other direction of
//! tests/collector.rs): the Collector's hostmetrics receiver is exported by its `otlp` (gRPC) and
//! `otlphttp` exporters to the agent's `receivers.otlp`, and by its `file` exporter to a file;
//! the agent forwards what it received to an in-process tonic receiver. Every point the
//! Collector wrote to its file arrives twice (once per protocol), unchanged, its resource
//! gaining the agent's detected attributes and never `service.name`.

mod common;

use common::grpc::Receiver;
use common::otelcol::{self, Collector, QUIET_TELEMETRY};
use common::otlp_lines;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// A line without its resource part (` R[...]`, last), which the agent adds to.
fn point_and_scope(line: &str) -> &str {
    line.rsplit_once(" R[").map(|(head, _)| head).unwrap_or(line)
}

fn counts<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

#[test]
fn the_collectors_hostmetrics_over_grpc_and_http_reach_the_agent_and_go_on_unchanged() {
    let Some(bin) = otelcol::bin() else { return };
    let (grpc, http) = (free_port(), free_port());
    let downstream = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{enabled: false}}\nshutdown_timeout: 5s\ncollector: {{interval: 1s}}\n\
             receivers: {{otlp: {{protocols: {{grpc: {{endpoint: '127.0.0.1:{grpc}'}}, http: {{endpoint: '127.0.0.1:{http}'}}}}}}}}\n\
             exporters:\n  - type: otlp\n    endpoint: http://{}\n    compression: none\n",
            downstream.addr
        ),
    )
    .unwrap();
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    for port in [grpc, http] {
        eventually(Duration::from_secs(15), || std::net::TcpStream::connect(("127.0.0.1", port)).ok()).expect("the agent's receiver listens");
    }
    let template = format!(
        "receivers:\n  hostmetrics:\n    collection_interval: 1s\n    scrapers:\n      memory:\n      load:\n\
         exporters:\n  otlp:\n    endpoint: 127.0.0.1:{grpc}\n    tls: {{insecure: true}}\n  otlphttp:\n    endpoint: http://127.0.0.1:{http}\n\
         \x20 file:\n    path: {{{{DIR}}}}/out.json\n    format: json\n\
         service:\n{QUIET_TELEMETRY}  pipelines:\n    metrics:\n      receivers: [hostmetrics]\n      exporters: [otlp, otlphttp, file]\n"
    );
    let mut collector = Collector::start(&bin, &template, &[]);
    let is_hostmetrics = |l: &&String| l.contains(" S[github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver");
    // A few collections of the Collector, forwarded twice each.
    let forwarded = || -> Vec<String> { downstream.got().iter().flat_map(|g| otlp_lines::from_proto(&g.request)).filter(|l| is_hostmetrics(&l)).collect() };
    eventually(Duration::from_secs(30), || (forwarded().len() >= 12).then_some(()));
    let out = collector.path("out.json");
    let (ccode, _, cerr) = collector.stop();
    assert_eq!(ccode, Some(0), "Collector stderr:\n{cerr}");
    // Stopped Collector: what it wrote is final; give the agent's exporter a moment to forward
    // the last requests it received, then stop it.
    std::thread::sleep(Duration::from_millis(1500));
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "agent stderr:\n{err}");

    let written: Vec<String> = otelcol::read_json_lines(&out).iter().flat_map(otlp_lines::from_json).collect();
    let got = forwarded();
    assert!(written.len() >= 6, "the Collector wrote {} points; stderr:\n{cerr}", written.len());
    let want: BTreeMap<&str, usize> = counts(written.iter().map(|l| point_and_scope(l))).into_iter().map(|(l, n)| (l, 2 * n)).collect();
    let have = counts(got.iter().map(|l| point_and_scope(l)));
    assert_eq!(have, want, "each point the Collector wrote arrives once over gRPC and once over HTTP, unchanged\nagent stderr:\n{err}");
    for l in &got {
        let resource = l.rsplit_once(" R[").map(|(_, r)| r).unwrap_or("");
        assert!(resource.contains("host.name=s:"), "the agent's host.name is added: {l}");
        assert!(!resource.contains("service.name="), "service.name is never added: {l}");
    }
}
