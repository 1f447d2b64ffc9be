//! The remote-write exporter against an in-process receiver (headers, auth, labels, batching,
//! retries) and end to end against a real Prometheus (Debian's 2.x and Prometheus 3).

mod common;

use common::*;
use metricsd::exporters::remote_write::encode::{decode, proto};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn config(dir: &tempfile::TempDir, exporter_yaml: &str) -> std::path::PathBuf {
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, format!("server:\n  enabled: false\ncollector:\n  interval: 250ms\nexporters:\n{exporter_yaml}  - type: stdout\n    format: json\n"))
        .unwrap();
    p
}

fn labels(ts: &proto::TimeSeries) -> BTreeMap<String, String> {
    ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect()
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

#[test]
fn sends_snappy_protobuf_with_the_protocol_headers_auth_and_external_labels() {
    let sink = Sink::start(|_, _| (204, vec![], String::new(), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!(
        "  - type: prometheus_remote_write\n    endpoint: {}\n    headers: {{X-Scope-OrgID: tenant-7}}\n    basic_auth: {{username: agent, password: pw}}\n    external_labels: {{cluster: c1}}\n    promote_resource_attributes: [os.type]\n",
        sink.url("/api/v1/write")
    ));
    run_agent_for(&cfg, 1.0);
    let reqs = sink.requests();
    assert!(!reqs.is_empty());
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert_eq!(r.header("user-agent"), Some(concat!("metricsd/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(r.header("x-scope-orgid"), Some("tenant-7"));
    assert_eq!(r.header("authorization"), Some("Basic YWdlbnQ6cHc="));
    let w = decode(&r.body).expect("snappy + protobuf body");
    let mem = w
        .timeseries
        .iter()
        .map(labels)
        .find(|l| l["__name__"] == "system_memory_usage_bytes" && l.get("system_memory_state").map(String::as_str) == Some("used"))
        .expect("memory series");
    assert_eq!(mem["cluster"], "c1");
    assert_eq!(mem["job"], "metricsd");
    assert_eq!(mem["os_type"], "linux");
    assert!(!mem["instance"].is_empty());
    for ts in &w.timeseries {
        let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "labels sorted and unique");
        assert!(ts.labels.iter().all(|l| !l.value.is_empty()));
        assert!(!ts.samples.is_empty());
    }
    assert!(w.timeseries.iter().any(|t| labels(t)["__name__"] == "target_info"));
}

#[test]
fn protocol_version_2_sends_a_2_0_request_with_its_headers_and_counts_a_partial_write() {
    use metricsd::exporters::remote_write::encode_v2;
    // Claims 1 sample written of every request: the rest is a partial write.
    let sink = Sink::start(|_, _| (204, vec![("X-Prometheus-Remote-Write-Samples-Written".into(), "1".into())], String::new(), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    protocol_version: 2\n", sink.url("/api/v1/write")));
    let (_, err) = run_agent_for(&cfg, 1.0);
    let reqs = sink.requests();
    assert!(!reqs.is_empty());
    let r = &reqs[0];
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"));
    assert_eq!(r.header("x-prometheus-remote-write-version"), Some("2.0.0"));
    let w = encode_v2::decode(&r.body).expect("snappy + protobuf 2.0 body");
    assert_eq!(w.symbols[0], "");
    let mem = w
        .timeseries
        .iter()
        .find(|ts| {
            let l: BTreeMap<String, String> = encode_v2::resolve_labels(&w.symbols, ts).unwrap().into_iter().collect();
            l["__name__"] == "system_memory_usage_bytes" && l.get("system_memory_state").map(String::as_str) == Some("used")
        })
        .expect("memory series");
    let md = mem.metadata.as_ref().expect("metadata");
    assert_eq!(md.r#type, encode_v2::proto::metadata::MetricType::Gauge as i32);
    assert_eq!(w.symbols[md.unit_ref as usize], "bytes");
    assert!(!w.symbols[md.help_ref as usize].is_empty(), "help text");
    assert!(err.contains("Server rejected part of a batch"), "partial write logged: {err}");
}

#[test]
fn big_batches_are_split_under_max_batch_bytes() {
    let sink = Sink::start(|_, _| (204, vec![], String::new(), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    max_batch_bytes: 1024\n", sink.url("/w")));
    let (out, _) = run_agent_for(&cfg, 0.6);
    let batches = out.lines().filter(|l| l.starts_with('{')).count();
    let reqs = sink.requests();
    assert!(reqs.len() > batches, "{} requests for {batches} batches", reqs.len());
    for r in &reqs {
        let w = decode(&r.body).unwrap();
        let size = prost::Message::encoded_len(&w);
        // A single series larger than the limit may go alone; ours are all small.
        assert!(size <= 1024, "request of {size} bytes");
    }
}

#[test]
fn server_errors_are_retried_until_accepted_and_nothing_is_lost() {
    // 503 three times, then 204.
    let sink = Sink::start(|n, _| if n < 3 { (503, vec![], "overloaded".into(), Duration::ZERO) } else { (204, vec![], String::new(), Duration::ZERO) });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    retry: {{initial_interval: 50ms, max_interval: 100ms}}\n", sink.url("/w")),
    );
    let (out, _) = run_agent_for(&cfg, 1.5);
    let batches = out.lines().filter(|l| l.starts_with('{')).count();
    let reqs = sink.requests();
    assert!(reqs.len() >= 4);
    // Every collected batch's memory-limit sample arrived in an accepted request, in order.
    let mut stamps = Vec::new();
    for r in &reqs[3..] {
        for ts in decode(&r.body).unwrap().timeseries {
            if labels(&ts)["__name__"] == "system_memory_limit_bytes" {
                stamps.extend(ts.samples.iter().map(|s| s.timestamp));
            }
        }
    }
    let distinct: BTreeSet<i64> = stamps.iter().copied().collect();
    assert_eq!(distinct.len(), batches, "one sample per collected batch");
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "timestamps in order: {stamps:?}");
}

#[test]
fn a_400_is_dropped_without_retrying() {
    let sink = Sink::start(|_, _| (400, vec![], "out of order sample".into(), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    retry: {{initial_interval: 50ms}}\n", sink.url("/w")));
    let (_, err) = run_agent_for(&cfg, 1.0);
    let reqs = sink.requests();
    let distinct: BTreeSet<&[u8]> = reqs.iter().map(|r| r.body.as_ref()).collect();
    assert_eq!(distinct.len(), reqs.len(), "each payload was sent once");
    assert!(err.contains("out of order sample"), "the server's message is logged: {err}");
    assert_eq!(err.matches("not retryable").count(), 1, "logged once, not every tick: {err}");
}

#[test]
fn a_429_with_retry_after_waits_as_asked() {
    let sink = Sink::start(|n, _| {
        if n == 0 {
            (429, vec![("Retry-After".into(), "1".into())], "slow down".into(), Duration::ZERO)
        } else {
            (204, vec![], String::new(), Duration::ZERO)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    retry: {{initial_interval: 10ms}}\n", sink.url("/w")));
    run_agent_for(&cfg, 1.8);
    let reqs = sink.requests();
    assert!(reqs.len() >= 2);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[test]
fn end_to_end_into_a_real_prometheus() {
    let Some(prom) = Prometheus::start() else { return };
    lands_with_the_translated_names_labels_and_values(&prom);
}

#[test]
fn end_to_end_into_a_real_prometheus_3() {
    let Some(prom) = common::prometheus3::start() else { return };
    lands_with_the_translated_names_labels_and_values(&prom);
}

/// Runs the agent's remote-write (1.0) into `prom` for 3 s and queries what landed.
fn lands_with_the_translated_names_labels_and_values(prom: &Prometheus) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &format!("  - type: prometheus_remote_write\n    endpoint: {}\n", prom.write_url()));
    run_agent_for(&cfg, 3.0);
    let host = metricsd_host_name();
    // Memory and load series with the translated names and labels.
    let used = prom.query("system_memory_usage_bytes{system_memory_state=\"used\"}");
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0]["metric"]["job"], "metricsd");
    assert_eq!(used[0]["metric"]["instance"], host.as_str());
    let v: f64 = used[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(v > 0.0);
    assert_eq!(prom.query("system_cpu_load_average_1m").len(), 1);
    assert_eq!(prom.query("system_memory_utilization_ratio").len(), 4);
    // target_info carries the resource.
    let ti = prom.query("target_info");
    assert_eq!(ti.len(), 1, "{ti:?}");
    assert_eq!(ti[0]["metric"]["os_type"], "linux");
    assert_eq!(ti[0]["metric"]["service_version"], env!("CARGO_PKG_VERSION"));
    assert!(ti[0]["metric"]["host_id"].as_str().is_some_and(|s| !s.is_empty()));
    // cpu, filesystem and network series, named and labelled by the translation.
    let idle = prom.query("system_cpu_time_seconds_total{cpu_mode=\"idle\"}");
    assert!(!idle.is_empty(), "cpu series");
    assert!(idle[0]["metric"]["cpu_logical_number"].as_str().is_some());
    assert!(!prom.query("system_network_io_bytes_total{network_io_direction=\"receive\"}").is_empty(), "network series");
    let fs = prom.query("system_filesystem_usage_bytes{system_filesystem_state=\"used\"}");
    assert!(!fs.is_empty(), "filesystem series");
    assert!(fs[0]["metric"]["system_filesystem_mountpoint"].as_str().is_some());
    // Counters increase between ticks.
    let grew = prom.query("sum(max_over_time(system_cpu_time_seconds_total[1m])) - sum(min_over_time(system_cpu_time_seconds_total[1m]))");
    let d: f64 = grew[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(d > 0.5, "CPU time (all modes) grew by {d} s over the run");
    // Several samples arrived over the run (one per tick).
    let n = prom.query("count_over_time(system_memory_limit_bytes[1m])");
    let count: f64 = n[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(count >= 5.0, "{count} samples");
}

/// The host.name the agent reports (its resource detector, run in-process).
fn metricsd_host_name() -> String {
    let paths = metricsd::units::HostPaths::default();
    let input = metricsd::resource::DetectInput { paths: &paths, env: &|_| None, config_resource: &Default::default(), hostname: None };
    metricsd::resource::detect(&input).attributes["host.name"].clone()
}

/// `timeUnixNano` of `system.memory.limit` in each OTLP/JSON batch the stdout exporter printed.
fn printed_memory_limit_times_ms(stdout: &str) -> Vec<u64> {
    let mut times = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).expect("stdout JSON");
        for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten().filter(|m| m["name"] == "system.memory.limit") {
                    let p = &m["sum"]["dataPoints"][0];
                    let ns: u64 = p["timeUnixNano"].as_str().map(|s| s.parse().unwrap()).or(p["timeUnixNano"].as_u64()).expect("timeUnixNano");
                    times.push(ns / 1_000_000);
                }
            }
        }
    }
    times
}

#[test]
fn an_outage_of_the_real_prometheus_loses_nothing_and_the_window_can_be_queried_back() {
    let Some(mut prom) = Prometheus::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &format!("  - type: prometheus_remote_write\n    endpoint: {}\n    retry: {{initial_interval: 100ms, max_interval: 500ms}}\n", prom.write_url()),
    );
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    std::thread::sleep(Duration::from_secs(2));
    // The outage: Prometheus is gone (connection refused) for 4 s, then comes back.
    let down_from = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    prom.kill();
    std::thread::sleep(Duration::from_secs(4));
    let down_to = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    prom.restart();
    std::thread::sleep(Duration::from_secs(3));
    agent.signal(libc::SIGTERM);
    let (code, out, err) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err}");

    let collected = printed_memory_limit_times_ms(&out);
    let in_outage = collected.iter().filter(|t| (down_from..down_to).contains(t)).count();
    assert!(in_outage >= 8, "{in_outage} batches collected while Prometheus was down");
    // Every sample collected, including those of the outage, is in Prometheus exactly once.
    let series = eventually(Duration::from_secs(10), || {
        let r = prom.query("system_memory_limit_bytes[10m]");
        (r.len() == 1 && r[0]["values"].as_array().map_or(0, |v| v.len()) >= collected.len()).then_some(r)
    })
    .unwrap_or_else(|| panic!("Prometheus has {:?}; collected {collected:?}", prom.query("system_memory_limit_bytes[10m]")));
    let stored: Vec<u64> = series[0]["values"].as_array().unwrap().iter().map(|v| (v[0].as_f64().unwrap() * 1000.0).round() as u64).collect();
    let missing: Vec<u64> = collected.iter().copied().filter(|t| !stored.contains(t)).collect();
    assert!(missing.is_empty(), "samples missing from Prometheus: {missing:?}\nstored {stored:?}");
    assert_eq!(stored.len(), collected.len(), "no sample twice or extra: stored {stored:?} collected {collected:?}");
    let stored_in_outage = stored.iter().filter(|t| (down_from..down_to).contains(t)).count();
    eprintln!(
        "outage {} ms: {in_outage} batches collected during it, {stored_in_outage} queried back; {} of {} samples stored",
        down_to - down_from,
        stored.len(),
        collected.len()
    );
}
