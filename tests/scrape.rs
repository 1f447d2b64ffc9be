//! Scraping application endpoints end to end: the agent binary scraping a real
//! `prometheus-node-exporter`, targets that fail in every way next to healthy ones, JSON
//! targets, and `--once`.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Every `ResourceMetrics` of every OTLP/JSON line the stdout exporter printed.
fn resource_metrics(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .flat_map(|l| serde_json::from_str::<Value>(l).map(|v| v["resourceMetrics"].as_array().cloned().unwrap_or_default()).unwrap_or_default())
        .collect()
}

fn attr<'a>(rm: &'a Value, key: &str) -> Option<&'a str> {
    rm["resource"]["attributes"].as_array()?.iter().find(|kv| kv["key"] == key)?["value"]["stringValue"].as_str()
}

/// Metrics of the resources whose `service.name` is `service`, by name (last seen wins).
fn metrics_of(rms: &[Value], service: &str) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for rm in rms.iter().filter(|rm| attr(rm, "service.name") == Some(service)) {
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            for m in sm["metrics"].as_array().into_iter().flatten() {
                out.insert(m["name"].as_str().unwrap_or_default().to_string(), m.clone());
            }
        }
    }
    out
}

fn number(v: &Value) -> f64 {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(f64::NAN)
}

fn gauge_value(m: &Value) -> f64 {
    number(&m["gauge"]["dataPoints"][0]["asDouble"])
}

fn is_cumulative(v: &Value) -> bool {
    v == 2 || v == "AGGREGATION_TEMPORALITY_CUMULATIVE"
}

fn status(addr: &str) -> Option<Value> {
    let (code, body) = http_get(addr, "/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn scrapes_a_real_node_exporter_with_the_right_types_and_resource() {
    let Some(bin) = require_program("prometheus-node-exporter") else {
        return;
    };
    let ne_port = free_port();
    let ne_addr = format!("127.0.0.1:{ne_port}");
    let _ne = Exporter(
        Command::new(bin)
            .arg(format!("--web.listen-address={ne_addr}"))
            .args(["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.loadavg"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node exporter starts"),
    );
    eventually(Duration::from_secs(15), || http_get(&ne_addr, "/metrics").filter(|(s, _)| *s == 200)).expect("node exporter answers");

    // The scraped series also go by remote-write into a real Prometheus.
    let prom = Prometheus::start().expect("prometheus is installed with node_exporter");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        &dir,
        &format!(
            "server: {{host: 127.0.0.1, port: {port}}}\ncollector: {{interval: 1s}}\nexporters:\n  - type: stdout\n    format: json\n  - type: prometheus_remote_write\n    endpoint: {}\nendpoints:\n  - name: node\n    url: http://{ne_addr}/metrics\n",
            prom.write_url()
        ),
    );
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    let addr = format!("127.0.0.1:{port}");
    let st = eventually(Duration::from_secs(20), || status(&addr).filter(|v| v["targets"][0]["scrapes"].as_u64() >= Some(3))).expect("three scrapes");
    let t = &st["targets"][0];
    assert_eq!((t["name"].as_str(), t["up"].as_bool(), t["format"].as_str()), (Some("node"), Some(true), Some("prometheus")), "{t}");
    assert!(t["samples"].as_u64().unwrap() > 50, "{t}");
    std::thread::sleep(Duration::from_millis(1200)); // one more tick drains the latest scrape
    agent.signal(libc::SIGTERM);
    let (code, stdout, stderr) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");

    let rms = resource_metrics(&stdout);
    let node: Vec<&Value> = rms.iter().filter(|rm| attr(rm, "service.name") == Some("node")).collect();
    assert!(node.len() >= 2, "the target's metrics are in the batches");
    let rm = node[0];
    assert_eq!(attr(rm, "service.instance.id"), Some(ne_addr.as_str()));
    assert_eq!(attr(rm, "server.port"), Some(ne_port.to_string().as_str()));
    assert!(attr(rm, "host.name").is_some(), "the host's resource attributes are kept");
    assert!(rms.iter().any(|rm| attr(rm, "service.name") == Some("metricsd")), "the host's own metrics are still there");

    let m = metrics_of(&rms, "node");
    let cpu = &m["node_cpu_seconds_total"];
    assert_eq!(cpu["sum"]["isMonotonic"], true, "{cpu}");
    assert!(is_cumulative(&cpu["sum"]["aggregationTemporality"]), "{cpu}");
    let p = &cpu["sum"]["dataPoints"][0];
    assert!(number(&p["startTimeUnixNano"]) > 0.0 && number(&p["startTimeUnixNano"]) <= number(&p["timeUnixNano"]), "{p}");
    assert!(p["attributes"].as_array().unwrap().iter().any(|kv| kv["key"] == "mode"), "{p}");
    // The start time is the first time the series was seen: the same across scrapes.
    let starts: std::collections::BTreeSet<String> = node
        .iter()
        .flat_map(|rm| rm["scopeMetrics"][0]["metrics"].as_array().unwrap().iter())
        .filter(|m| m["name"] == "node_cpu_seconds_total")
        .map(|m| m["sum"]["dataPoints"][0]["startTimeUnixNano"].to_string())
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    let mem = &m["node_memory_MemTotal_bytes"];
    assert!(gauge_value(mem) > 1e6, "{mem}");
    let gc = &m["go_gc_duration_seconds"];
    let q = gc["summary"]["dataPoints"][0]["quantileValues"].as_array().expect("go_gc_duration_seconds is a summary");
    assert_eq!(q.len(), 5, "{gc}");
    assert_eq!(gauge_value(&m["up"]), 1.0);
    assert!(gauge_value(&m["scrape_samples_scraped"]) > 50.0);
    assert!(gauge_value(&m["scrape_duration_seconds"]) > 0.0);
    assert_eq!(m["scrape_duration_seconds"]["unit"], "s");

    // In Prometheus: the scraped names unchanged (no suffix added twice), job and instance from
    // the target's resource, the types' series (counter, gauge, summary quantiles) all there.
    let sel = format!("{{job=\"node\",instance=\"{ne_addr}\"}}");
    let idle = prom.query(&format!("node_cpu_seconds_total{{mode=\"idle\",job=\"node\",instance=\"{ne_addr}\"}}"));
    assert!(!idle.is_empty(), "node_cpu_seconds_total in Prometheus; names there: {:?}", prom.query("count by (__name__) ({job=\"node\"})"));
    assert!(idle[0]["metric"]["cpu"].as_str().is_some(), "{idle:?}");
    let total = prom.query(&format!("node_memory_MemTotal_bytes{sel}"));
    assert_eq!(total.len(), 1, "{total:?}");
    let v: f64 = total[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((v - gauge_value(mem)).abs() < 1.0, "Prometheus {v} vs batch {}", gauge_value(mem));
    assert_eq!(prom.query(&format!("up{sel}"))[0]["value"][1], "1");
    assert_eq!(prom.query(&format!("go_gc_duration_seconds{sel}")).len(), 5, "summary quantiles");
    assert_eq!(prom.query(&format!("go_gc_duration_seconds_count{sel}")).len(), 1);
    for doubled in ["node_cpu_seconds_total_seconds_total", "node_memory_MemTotal_bytes_bytes", "node_cpu_seconds_total_total"] {
        assert!(prom.query(doubled).is_empty(), "{doubled} must not exist");
    }
    // The host's own series arrive beside the target's, under the agent's own job.
    assert!(!prom.query("system_memory_usage_bytes{job=\"metricsd\"}").is_empty());
}

const GOOD: &str =
    "# HELP ok_requests_total Requests.\n# TYPE ok_requests_total counter\nok_requests_total{path=\"/\"} 5\nthis line is broken\nok_temperature 21.5\n";
const PLANTD: &str = r#"{"service": "org.plantd.Broker", "timestamp": "2024-01-01T12:00:00Z", "metrics": {"message_count": 1250, "queue_depth": 45, "healthy": true, "version": "1.0"}, "tags": {"env": "test"}}"#;

fn garbage() -> String {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..4096).map(|_| char::from_u32(rng.u32(0..0x2000)).unwrap_or('\u{fffd}')).collect()
}

#[test]
fn a_failing_target_reports_only_itself_and_the_others_go_on() {
    let big = "a".repeat(50 << 20);
    let junk = garbage();
    let sink = Sink::start(move |_, r| {
        let text = |s: &str| vec![("content-type".to_string(), s.to_string())];
        match r.path.as_str() {
            "/ok" => (200, text("text/plain; version=0.0.4"), GOOD.to_string(), Duration::ZERO),
            "/500" => (500, vec![], "boom".to_string(), Duration::ZERO),
            "/hang" => (200, vec![], "late 1\n".to_string(), Duration::from_secs(8)),
            "/big" => (200, text("text/plain"), big.clone(), Duration::ZERO),
            "/garbage" => (200, text("text/plain"), junk.clone(), Duration::ZERO),
            "/plantd" => (200, text("application/json"), PLANTD.to_string(), Duration::ZERO),
            _ => (404, vec![], String::new(), Duration::ZERO),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut yaml =
        format!("server: {{host: 127.0.0.1, port: {port}}}\ncollector: {{interval: 1s}}\nexporters:\n  - type: stdout\n    format: json\nendpoints:\n");
    for name in ["ok", "500", "hang", "big", "garbage", "plantd"] {
        yaml.push_str(&format!("  - name: t-{name}\n    url: {}\n    timeout: 1s\n    labels: {{team: blue}}\n", sink.url(&format!("/{name}"))));
    }
    let cfg = write_config(&dir, &yaml);
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    let addr = format!("127.0.0.1:{port}");
    let ready = |v: &Value| {
        let ts = v["targets"].as_array()?;
        (ts.len() == 6 && ts.iter().all(|t| t["scrapes"].as_u64() >= Some(2))).then_some(())
    };
    let st = eventually(Duration::from_secs(30), || status(&addr).filter(|v| ready(v).is_some())).expect("every target scraped twice");
    let by_name = |n: &str| st["targets"].as_array().unwrap().iter().find(|t| t["name"] == n).cloned().unwrap();
    let ok = by_name("t-ok");
    assert_eq!((ok["up"].as_bool(), ok["samples"].as_u64(), ok["skipped"].as_u64()), (Some(true), Some(2), Some(1)), "{ok}");
    assert!(ok["last_error"].is_null());
    assert!(ok["last_duration_seconds"].as_f64().unwrap() < 1.0, "the hanging target does not slow the others: {ok}");
    let expect_down = |n: &str, needle: &str| {
        let t = by_name(n);
        assert_eq!(t["up"].as_bool(), Some(false), "{t}");
        assert!(t["last_error"].as_str().unwrap_or("").contains(needle), "{n}: {t}");
    };
    expect_down("t-500", "500");
    expect_down("t-hang", "no answer within 1s");
    expect_down("t-big", "body_size_limit");
    expect_down("t-garbage", "nothing parsed");
    let pl = by_name("t-plantd");
    assert_eq!(
        (pl["up"].as_bool(), pl["samples"].as_u64(), pl["skipped"].as_u64(), pl["format"].as_str()),
        (Some(true), Some(3), Some(1), Some("json")),
        "{pl}"
    );

    std::thread::sleep(Duration::from_millis(1200));
    agent.signal(libc::SIGTERM);
    let (code, stdout, stderr) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
    let rms = resource_metrics(&stdout);
    for (name, up) in [("t-ok", 1.0), ("t-500", 0.0), ("t-hang", 0.0), ("t-big", 0.0), ("t-garbage", 0.0), ("t-plantd", 1.0)] {
        let m = metrics_of(&rms, name);
        assert_eq!(m.get("up").map(gauge_value), Some(up), "{name}: {:?}", m.keys());
    }
    let ok = metrics_of(&rms, "t-ok");
    let c = &ok["ok_requests_total"];
    assert_eq!(c["sum"]["isMonotonic"], true);
    assert_eq!(c["description"], "Requests.");
    let attrs = c["sum"]["dataPoints"][0]["attributes"].to_string();
    assert!(attrs.contains("team") && attrs.contains("blue") && attrs.contains("path"), "{attrs}");
    assert_eq!(gauge_value(&ok["ok_temperature"]), 21.5);
    assert_eq!(gauge_value(&ok["scrape_samples_skipped"]), 1.0);
    let failed = metrics_of(&rms, "t-500");
    assert_eq!(failed.len(), 7, "a failed target has only up and scrape_*: {:?}", failed.keys());
    assert!(failed.keys().all(|k| k == "up" || k.starts_with("scrape_")), "{:?}", failed.keys());
    let pl = metrics_of(&rms, "t-plantd");
    assert_eq!(gauge_value(&pl["message_count"]), 1250.0);
    assert_eq!(gauge_value(&pl["healthy"]), 1.0);
    assert!(pl["queue_depth"]["gauge"]["dataPoints"][0]["attributes"].to_string().contains("org.plantd.Broker"));
    // Each distinct error is logged once, not at every scrape.
    assert_eq!(stderr.matches("line 4: sample this").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("HTTP 500").count(), 1, "{stderr}");
    assert!(rms.iter().any(|rm| attr(rm, "service.name") == Some("metricsd")), "host metrics unaffected");
}

#[test]
fn once_scrapes_before_printing_and_applies_the_prefix() {
    let sink = Sink::start(|_, _| {
        (
            200,
            vec![("content-type".into(), "application/openmetrics-text; version=1.0.0".into())],
            "# TYPE requests counter\nrequests_total 7\nrequests_created 1700000000\n# EOF\n".into(),
            Duration::ZERO,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &format!("exporters:\n  - type: stdout\n    format: json\nendpoints:\n  - name: app1\n    url: {}\n    metric_prefix: app_\n", sink.url("/metrics")),
    );
    let out = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rms = resource_metrics(&String::from_utf8_lossy(&out.stdout));
    let m = metrics_of(&rms, "app1");
    let p = &m["app_requests_total"]["sum"]["dataPoints"][0];
    assert_eq!(number(&p["startTimeUnixNano"]), 1.7e18, "_created is the start time: {p}");
    assert_eq!(gauge_value(&m["up"]), 1.0);
    assert_eq!(sink.requests()[0].header("accept").map(|a| a.contains("openmetrics")), Some(true));
}

#[test]
fn once_reports_a_dead_target_and_still_prints_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let cfg = write_config(
        &dir,
        &format!("exporters:\n  - type: stdout\n    format: json\nendpoints:\n  - name: gone\n    url: http://127.0.0.1:{dead}/metrics\n    timeout: 2s\n"),
    );
    let out = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("target gone failed"), "{err}");
    let rms = resource_metrics(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(gauge_value(&metrics_of(&rms, "gone")["up"]), 0.0);
    assert!(metrics_of(&rms, "metricsd").contains_key("system.memory.usage"));
}

#[test]
fn check_config_names_a_bad_endpoint_option() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "endpoints:\n  - name: a\n    url: http://127.0.0.1:1/m\n    format: xml\n");
    let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let cfg = write_config(&dir, "endpoints:\n  - name: a\n    url: http://127.0.0.1:1/m\n    timeout: 30s\n    interval: 10s\n");
    let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than `interval`"));
}
