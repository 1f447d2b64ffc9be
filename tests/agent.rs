//! The agent binary end to end: `--once`, `--check-config`, bad input and exit codes, the
//! HTTP server over real HTTP, and SIGTERM flushing a queued batch.

mod common;

use common::*;
use std::io::Write;
use std::time::Duration;

fn write_config(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
    p
}

#[test]
fn once_prints_memory_and_load_with_the_resource() {
    let out = agent().arg("--once").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // A stamped batch, then each resource with a header row over aligned columns.
    assert!(text.starts_with("batch 20") && text.lines().nth(1).unwrap().starts_with("resource "), "{text}");
    let header = text.lines().nth(2).unwrap();
    assert!(header.trim_start().starts_with("METRIC") && header.trim_end().ends_with("ATTRIBUTES"), "{header}");
    let value_col = header.find("VALUE").unwrap();
    let row = text.lines().find(|l| l.contains("system.memory.state=used")).unwrap();
    assert!(row[value_col..].chars().next().unwrap().is_ascii_digit(), "values line up under VALUE: {header}\n{row}");
    for needle in [
        "host.name=",
        "host.id=",
        "os.type=linux",
        "service.name=metricsd",
        "system.memory.usage",
        "system.memory.state=used",
        "system.memory.limit",
        "system.cpu.load_average.1m",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[test]
fn once_in_json_prints_one_otlp_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "c.yaml", "exporters:\n  - type: stdout\n    format: json\n");
    let out = agent().arg("--once").arg("-config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let names: Vec<&str> = v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"system.memory.usage") && names.contains(&"system.cpu.load_average.15m"), "{names:?}");
}

#[test]
fn every_example_config_passes_check_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml" | "toml")) {
            continue;
        }
        let out = agent().arg("--check-config").arg("--config").arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
        let _: serde_json::Value = serde_json::from_slice(&out.stdout).expect("effective config is JSON");
        n += 1;
    }
    assert!(n >= 4, "found only {n} examples");
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        "c.json",
        r#"{"exporters": [{"type": "prometheus_remote_write", "endpoint": "http://127.0.0.1:1/api/v1/write", "bearer_token": "very-secret", "headers": {"X-Api-Key": "k3y"}}]}"#,
    );
    let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("very-secret") && !text.contains("k3y"), "{text}");
    assert!(text.contains("<redacted>"));
}

fn expect_config_error(args: &[&str], envs: &[(&str, &str)], needles: &[&str]) {
    let mut c = agent();
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in: {err}");
    }
}

#[test]
fn bad_input_is_one_clear_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    expect_config_error(&["--config", missing.to_str().unwrap()], &[], &["nope.json", "cannot read config file"]);
    let bad_json = write_config(&dir, "bad.json", "{\n  \"server\": {\"port\": 80,}\n}");
    expect_config_error(&["-config", bad_json.to_str().unwrap()], &[], &["bad.json:2:"]);
    let bad_yaml = write_config(&dir, "bad.yaml", "server:\n  port: [1\n");
    expect_config_error(&["-c", bad_yaml.to_str().unwrap()], &[], &["bad.yaml"]);
    let bad_toml = write_config(&dir, "bad.toml", "[server]\nport = \n");
    expect_config_error(&["-c", bad_toml.to_str().unwrap()], &[], &["bad.toml:2:"]);
    let wrong_type = write_config(&dir, "type.json", "{\"collector\": {\n\"interval_seconds\": \"often\"}}");
    expect_config_error(&["-c", wrong_type.to_str().unwrap()], &[], &["type.json:2:", "invalid type"]);
    let unknown = write_config(&dir, "unknown.yaml", "server:\n  port: 1\ncolector:\n  enable_cpu: true\n");
    expect_config_error(&["-c", unknown.to_str().unwrap()], &[], &["unknown.yaml:3:", "colector"]);
    let unknown_exporter_key = write_config(&dir, "ex.yaml", "exporters:\n  - type: stdout\n    formatt: json\n");
    expect_config_error(&["-c", unknown_exporter_key.to_str().unwrap()], &[], &["ex.yaml:3:", "formatt"]);
    let bad_shipper = write_config(&dir, "ship.json", r#"{"shipper": {"type": "kafka", "endpoint": "x"}}"#);
    expect_config_error(&["-c", bad_shipper.to_str().unwrap()], &[], &["shipper", "kafka"]);
    expect_config_error(&["--once"], &[("MC_SERVER_PORT", "eighty")], &["MC_SERVER_PORT=\"eighty\""]);
    expect_config_error(&["--once"], &[("MC_TLS_ENABLED", "sometimes")], &["MC_TLS_ENABLED"]);
    expect_config_error(&["--bogus"], &[], &["--bogus"]);
}

#[test]
fn values_that_once_aborted_or_misdirected_the_agent_are_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needles) in [
        ("interval.yaml", "collector: {interval: 500000000000y}\n", &["collector.interval", "too long"][..]),
        ("seconds.json", r#"{"collector": {"interval_seconds": 18446744073709551615}}"#, &["collector.interval_seconds", "too long"]),
        ("shutdown.yaml", "shutdown_timeout: 500000000000y\n", &["shutdown_timeout", "too long"]),
        (
            "retry.yaml",
            "exporters: [{type: otlp, endpoint: 'http://h:4317', retry: {initial_interval: 300000000000y}}]\n",
            &["retry.initial_interval", "too long"],
        ),
        ("bare.yaml", "exporters: [{type: http_json, endpoint: 'http://h/', timeout: 30}]\n", &["bare.yaml:1", "\"30s\""]),
        ("bare.toml", "[collector]\ntimeout = 5\n", &["bare.toml:2:", "\"5s\""]),
        ("zero.yaml", "exporters: [{type: prometheus_remote_write, endpoint: 'http://h/', timeout: 0s}]\n", &["timeout", "too short"]),
        ("port.yaml", "exporters: [{type: prometheus_remote_write, endpoint: 'http://h:70000/api/v1/write'}]\n", &["exporters[0]", "\"70000\"", "1 to 65535"]),
        ("scrape.yaml", "endpoints: [{name: app, url: 'http://localhost:65536/metrics'}]\n", &["endpoints[0] (app)", "\"65536\""]),
    ] {
        let cfg = write_config(&dir, name, text);
        let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: missing {n:?} in: {err}");
        }
    }
}

#[test]
fn check_config_prints_environment_errors_together_with_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_config(&dir, "bad.yaml", "server:\n  port: [1\n");
    let out = agent().arg("--check-config").arg("-c").arg(&bad).env("MC_SERVER_PORT", "eighty").env("MC_COLLECTOR_INTERVAL", "often").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml") && err.contains("MC_SERVER_PORT") && err.contains("MC_COLLECTOR_INTERVAL"), "{err}");
    assert!(err.contains("\"30s\""), "the interval variable's message shows the duration form: {err}");
}

#[test]
fn a_port_in_use_is_reported_once_and_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = agent().env("MC_SERVER_PORT", port.to_string()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches(&format!("127.0.0.1:{port}")).count(), 1, "{err}");
    assert!(err.contains("Address already in use") || err.contains("in use"), "{err}");
}

#[test]
fn log_fields_carry_values_not_rust_options() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "c.yaml", "server: {enabled: false}\ncollector: {interval: 200ms}\n");
    let mut cmd = agent();
    cmd.arg("-c").arg(&cfg);
    let running = Running::spawn(cmd);
    std::thread::sleep(Duration::from_millis(700));
    running.signal(libc::SIGTERM);
    let (code, _, err) = running.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("Some(") && !err.contains("None"), "{err}");
    assert!(err.contains("nothing is exported"), "a run that exports nothing says so: {err}");
    assert!(err.contains(&format!("config={}", cfg.display())), "{err}");
}

#[test]
fn check_config_prints_every_error_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        "c.json",
        r#"{"collector": {"interval_seconds": 0}, "exporters": [{"type": "http_json", "endpoint": "ftp://x"}, {"type": "prometheus_remote_write", "endpoint": ""}]}"#,
    );
    let out = agent().arg("--check-config").arg("-c").arg(&cfg).env("MC_SERVER_PORT", "x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().filter(|l| l.starts_with("error:")).count() >= 4, "{err}");
}

#[test]
fn a_port_in_use_exits_1_naming_the_address() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let out = agent().env("MC_SERVER_PORT", port.to_string()).env("MC_SERVER_HOST", "127.0.0.1").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn a_missing_proc_file_fails_only_its_collector() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("proc/loadavg"), "0.50 0.40 0.30 1/100 42\n").unwrap();
    let out = agent().arg("--once").env("HOST_PROC", dir.path().join("proc")).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("system.cpu.load_average.5m") && text.contains("0.4"), "{text}");
    assert!(!text.contains("system.memory.usage"), "memory must report nothing: {text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("meminfo"), "the failure names the file");
}

#[test]
fn health_ready_status_and_metrics_answer_over_http() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let agent = Running::spawn({
        let mut c = agent();
        c.env("MC_SERVER_PORT", port.to_string()).env("MC_COLLECTOR_INTERVAL", "1");
        c
    });
    let (status, body) = eventually(Duration::from_secs(10), || http_get(&addr, "/health")).expect("server answers");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "healthy");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(v["uptime"].as_str().unwrap().ends_with('s'));
    // Ready once a collection completed (no exporters configured).
    eventually(Duration::from_secs(10), || http_get(&addr, "/ready").filter(|(s, _)| *s == 200)).expect("becomes ready");
    let (status, body) = http_get(&addr, "/status").unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["resource"]["service.name"], "metricsd");
    assert!(v["collectors"]["memory"]["last_duration_seconds"].is_number(), "{v}");
    assert!(v["collectors"]["memory"]["last_error"].is_null());
    // Where the last tick's time went.
    let t = &v["last_tick"];
    assert!(t["tick"].as_u64().unwrap() >= 1, "{t}");
    assert!(t["points"].as_u64().unwrap() > 20, "{t}");
    for phase in ["refresh_seconds", "collect_seconds"] {
        assert!(t[phase].as_f64().is_some_and(|s| s > 0.0 && s < 5.0), "{phase}: {t}");
    }
    let (status, body) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE system_memory_usage_bytes gauge"), "{body}");
    assert!(body.contains("system_memory_usage_bytes{") && body.contains("system_memory_state=\"used\""), "{body}");
    assert!(body.contains("target_info{"), "{body}");
    assert_eq!(http_get(&addr, "/nope").unwrap().0, 404);
    // The container HEALTHCHECK probe.
    assert_eq!(agent_cmd_status(&["--health", &addr]), Some(0));
    assert_eq!(agent_cmd_status(&["--health", &format!("127.0.0.1:{}", free_port())]), Some(1));
    agent.signal(libc::SIGTERM);
    let (code, _, _) = agent.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}

/// The scheduling policy (stat field 41) of each of `pid`'s threads.
fn thread_policies(pid: i32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| {
            let stat = std::fs::read_to_string(t.unwrap().path().join("stat")).unwrap();
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            fields[41 - 3].parse().unwrap()
        })
        .collect()
}

#[test]
fn every_thread_runs_under_sched_batch_unless_told_to_inherit() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, want) in [("", libc::SCHED_BATCH as u32), ("scheduling_policy: inherit\n", libc::SCHED_OTHER as u32)] {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = write_config(&dir, "c.yaml", &format!("{extra}server:\n  port: {port}\ncollector:\n  interval: 1s\n"));
        let agent = Running::spawn({
            let mut c = agent();
            c.arg("-config").arg(&cfg);
            c
        });
        // Ready: the runtime's threads and the tick's thread have started.
        eventually(Duration::from_secs(10), || http_get(&addr, "/ready").filter(|(s, _)| *s == 200)).expect("becomes ready");
        let policies = thread_policies(agent.pid());
        assert!(policies.len() >= 3, "{policies:?}");
        assert!(policies.iter().all(|p| *p == want), "{extra:?}: {policies:?}");
        agent.signal(libc::SIGTERM);
        assert_eq!(agent.wait(Duration::from_secs(10)).0, Some(0));
    }
}

#[test]
fn ready_waits_for_a_first_delivery_when_exporters_exist() {
    let sink = Sink::start(|_, _| (503, vec![], "down".into(), Duration::ZERO));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        "c.yaml",
        &format!(
            "collector:\n  interval: 200ms\nexporters:\n  - type: http_json\n    endpoint: {}\n    retry: {{initial_interval: 50ms, max_interval: 100ms}}\n",
            sink.url("/ingest")
        ),
    );
    let _agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg).env("MC_SERVER_PORT", port.to_string());
        c
    });
    eventually(Duration::from_secs(10), || (sink.requests().len() >= 2).then_some(())).expect("agent tries to send");
    let (status, body) = http_get(&addr, "/ready").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no exporter has delivered"));
    let (_, body) = http_get(&addr, "/status").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let e = &v["exporters"][0];
    assert_eq!(e["name"], "http_json[0]");
    assert!(e["last_error"].as_str().unwrap().contains("HTTP 503"), "{e}");
    assert!(e["failed_attempts"].as_u64().unwrap() >= 1);
    assert!(e["last_success"].is_null());
    // Self-telemetry goes through the same pipeline: visible on /metrics.
    let body = eventually(Duration::from_secs(5), || {
        http_get(&addr, "/metrics")
            .map(|(_, b)| b)
            .filter(|b| b.contains("metricsd_exporter_failed_attempts_total{") && b.contains("metricsd_collector_duration_seconds{"))
    })
    .expect("self-telemetry on /metrics");
    assert!(body.contains("metricsd_exporter=\"http_json[0]\""), "{body}");
    assert!(body.contains("metricsd_collector_duration_seconds{"), "{body}");
    assert!(body.contains("metricsd_process_memory_rss_bytes"), "{body}");
}

#[test]
fn ready_can_be_told_not_to_wait_for_a_delivery() {
    let sink = Sink::start(|_, _| (503, vec![], "down".into(), Duration::ZERO));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        "c.yaml",
        &format!(
            "server:\n  port: {port}\n  ready_requires_export: false\ncollector:\n  interval: 200ms\nexporters:\n  - type: http_json\n    endpoint: {}\n",
            sink.url("/ingest")
        ),
    );
    let _agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    eventually(Duration::from_secs(10), || (!sink.requests().is_empty()).then_some(())).expect("agent tries to send");
    let (status, body) = eventually(Duration::from_secs(5), || http_get(&addr, "/ready").filter(|(s, _)| *s == 200)).expect("ready without a delivery");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (_, body) = http_get(&addr, "/status").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["exporters"][0]["last_success"].is_null(), "nothing was delivered: {body}");
}

#[test]
fn sigterm_flushes_a_queued_batch_before_exiting() {
    // The backend refuses everything until the agent is told to stop, then accepts.
    let accepting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<bytes::Bytes>::new()));
    let (acc, accd) = (accepting.clone(), accepted.clone());
    let sink = Sink::start(move |_, r| {
        if acc.load(std::sync::atomic::Ordering::SeqCst) {
            accd.lock().unwrap().push(r.body.clone());
            (200, vec![], String::new(), Duration::ZERO)
        } else {
            (503, vec![], "not yet".into(), Duration::ZERO)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        "c.json",
        &format!(
            r#"{{"server": {{"enabled": false}}, "collector": {{"interval": "300ms"}}, "shutdown_timeout": "5s",
            "exporters": [{{"type": "http_json", "endpoint": "{}", "retry": {{"initial_interval": "100ms", "max_interval": "200ms"}}}},
                          {{"type": "stdout", "format": "json"}}]}}"#,
            sink.url("/ingest")
        ),
    );
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    eventually(Duration::from_secs(10), || (sink.requests().len() >= 3).then_some(())).expect("agent retries while the backend is down");
    std::thread::sleep(Duration::from_millis(1000)); // a few more batches queue up
    accepting.store(true, std::sync::atomic::Ordering::SeqCst);
    agent.signal(libc::SIGTERM);
    let (code, stdout, stderr) = agent.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    // The stdout exporter printed every batch collected; each must have been delivered once.
    let collected = stdout.lines().filter(|l| l.starts_with('{')).count();
    let delivered = accepted.lock().unwrap().len();
    assert!(collected >= 3, "several batches were collected during the outage ({collected})");
    assert_eq!(delivered, collected, "every collected batch is delivered exactly once");
    assert!(stderr.contains("Stopping"), "{stderr}");
    assert!(!stderr.contains("unsent payloads dropped"), "nothing may be lost at shutdown: {stderr}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one_and_a_new_exporter_starts() {
    let a = Sink::ok();
    let b = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let good = |sinks: &[&Sink]| {
        let mut y = String::from("server:\n  enabled: false\nshutdown_timeout: 2s\ncollector:\n  interval: 200ms\nexporters:\n");
        for s in sinks {
            y.push_str(&format!("  - type: http_json\n    endpoint: {}\n", s.url("/i")));
        }
        y
    };
    let cfg = write_config(&dir, "c.yaml", &good(&[&a]));
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    eventually(Duration::from_secs(10), || (!a.requests().is_empty()).then_some(())).expect("first exporter delivers");
    // A broken config: reported, and the running one keeps going.
    std::fs::write(&cfg, "exporters:\n  - type: http_json\n    endpoint: [\n").unwrap();
    agent.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    let before = a.requests().len();
    eventually(Duration::from_secs(5), || (a.requests().len() > before + 1).then_some(())).expect("old config keeps shipping");
    // A config with a second exporter: it starts.
    std::fs::write(&cfg, good(&[&a, &b])).unwrap();
    agent.signal(libc::SIGHUP);
    eventually(Duration::from_secs(10), || (!b.requests().is_empty()).then_some(())).expect("new exporter starts after reload");
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Reload failed; keeping the running configuration") && err.contains("c.yaml:4"), "{err}");
    assert!(err.contains("Reloaded"), "{err}");
}

fn agent_cmd_status(args: &[&str]) -> Option<i32> {
    agent().args(args).output().unwrap().status.code()
}
