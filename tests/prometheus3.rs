//! The agent into a real Prometheus 3 (`tests/common/prometheus3.rs`): its OTLP/HTTP exporter
//! into Prometheus' OTLP receiver, and remote-write 2.0 (`protocol_version: 2`) with the values
//! and the metadata queried back. Remote-write 1.0 into it is in tests/remote_write.rs.

mod common;

use common::*;
use std::time::Duration;

fn config(dir: &tempfile::TempDir, exporter_yaml: &str) -> std::path::PathBuf {
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, format!("server:\n  enabled: false\ncollector:\n  interval: 250ms\nexporters:\n{exporter_yaml}")).unwrap();
    p
}

fn run_agent_for(cfg: &std::path::Path, secs: f64) -> (String, String) {
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(cfg);
        c
    });
    std::thread::sleep(Duration::from_secs_f64(secs));
    agent.signal(libc::SIGTERM);
    let (code, out, err) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err}");
    (out, err)
}

fn value(v: &serde_json::Value) -> f64 {
    v["value"][1].as_str().expect("a sample value").parse().unwrap()
}

#[test]
fn the_otlp_http_exporter_lands_in_the_otlp_receiver_of_prometheus_3() {
    let Some(prom) = prometheus3::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: otlp\n    protocol: http/protobuf\n    endpoint: {}\n", prom.otlp_url()));
    let (_, err) = run_agent_for(&cfg, 3.0);
    // Prometheus 3 translates OTel names itself (UnderscoreEscapingWithSuffixes by default):
    // units and _total as suffixes, and resource attributes on target_info.
    let used = eventually(Duration::from_secs(10), || {
        let r = prom.query("system_memory_usage_bytes{system_memory_state=\"used\"}");
        (!r.is_empty()).then_some(r)
    })
    .unwrap_or_else(|| panic!("no memory series from OTLP; agent stderr:\n{err}"));
    assert_eq!(used.len(), 1, "{used:?}");
    assert!(value(&used[0]) > 0.0);
    assert_eq!(used[0]["metric"]["job"], "metricsd", "service.name → job");
    assert!(!prom.query("system_cpu_time_seconds_total{cpu_mode=\"idle\"}").is_empty(), "counter with _total and the unit");
    let ti = prom.query("target_info");
    assert_eq!(ti.len(), 1, "{ti:?}");
    assert_eq!(ti[0]["metric"]["os_type"], "linux");
    assert_eq!(ti[0]["metric"]["service_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn remote_write_2_lands_in_prometheus_3_with_values_and_metadata() {
    let Some(prom) = prometheus3::start_with_metadata_labels() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    protocol_version: 2\n", prom.write_url()));
    let (_, err) = run_agent_for(&cfg, 3.0);
    assert!(!err.contains("HTTP 4"), "every request accepted: {err}");
    let used = prom.query("system_memory_usage_bytes{system_memory_state=\"used\"}");
    assert_eq!(used.len(), 1, "{used:?}\nagent stderr:\n{err}");
    assert!(value(&used[0]) > 0.0);
    assert_eq!(used[0]["metric"]["job"], "metricsd");
    // The series' 2.0 metadata, as Prometheus' type-and-unit labels.
    assert_eq!(used[0]["metric"]["__type__"], "gauge", "{used:?}");
    assert_eq!(used[0]["metric"]["__unit__"], "bytes", "{used:?}");
    let idle = prom.query("system_cpu_time_seconds_total{cpu_mode=\"idle\"}");
    assert!(!idle.is_empty(), "cpu series");
    assert_eq!(idle[0]["metric"]["__type__"], "counter", "{idle:?}");
    assert_eq!(idle[0]["metric"]["__unit__"], "seconds", "{idle:?}");
    let ti = prom.query("target_info");
    assert_eq!(ti.len(), 1, "{ti:?}");
    assert_eq!(ti[0]["metric"]["os_type"], "linux");
    // One sample per tick arrived, counters grow.
    let n = prom.query("count_over_time(system_memory_limit_bytes[1m])");
    assert!(value(&n[0]) >= 5.0, "{n:?}");
    let grew = prom.query("sum(max_over_time(system_cpu_time_seconds_total[1m])) - sum(min_over_time(system_cpu_time_seconds_total[1m]))");
    assert!(value(&grew[0]) > 0.5, "{grew:?}");
}

#[test]
fn remote_write_2_into_a_1_0_only_prometheus_is_a_clear_error_logged_once_not_retried() {
    // Debian's Prometheus 2.42 accepts only 1.0 and, not checking the Content-Type, answers a
    // 2.0 body 204 without the written-count headers (later 2.x answer 415).
    let Some(prom) = Prometheus::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    protocol_version: 2\n    retry: {{initial_interval: 50ms}}\n", prom.write_url()),
    );
    let (_, err) = run_agent_for(&cfg, 1.5);
    assert!(err.contains("protocol_version: 1"), "{err}");
    assert_eq!(err.matches("not retryable").count(), 1, "logged once: {err}");
    assert!(prom.query("system_memory_usage_bytes").is_empty(), "nothing was written");
}
