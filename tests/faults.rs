//! Backends that misbehave at once — one accepts TCP and never answers, one answers 400 to
//! everything, one takes seconds per request — beside a healthy one: collection keeps its
//! schedule, the healthy exporter gets every batch, the stuck queues stay within their byte
//! bound (dropping the oldest, counted), and the agent's RSS stays bounded (measured here from
//! `/proc/<pid>/status` and printed for docs/reliability.md's figures).

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Each exporter's in-memory queue bound in this test.
const QUEUE_MAX_BYTES: u64 = 256 * 1024;
const RUN: Duration = Duration::from_secs(15);
const INTERVAL_MS: u64 = 100;

fn rss_bytes(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn exporter(endpoint: &str, timeout: &str) -> String {
    format!(
        "  - type: http_json\n    endpoint: {endpoint}\n    format: otlp_json\n    timeout: {timeout}\n    queue: {{max_bytes: {QUEUE_MAX_BYTES}}}\n    retry: {{initial_interval: 50ms, max_interval: 200ms}}\n"
    )
}

#[test]
fn stuck_refusing_and_slow_backends_leave_collection_the_healthy_exporter_and_memory_bounded() {
    // Accepts and holds every connection, never answering.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_addr = hang.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in hang.incoming().flatten() {
            held.push(c);
        }
    });
    let bad = Sink::start(|_, _| (400, vec![], "bad request".into(), Duration::ZERO));
    let slow = Sink::start(|_, _| (200, vec![], String::new(), Duration::from_secs(3)));
    let good = Sink::start(|_, _| (200, vec![], String::new(), Duration::ZERO));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  port: {port}\nshutdown_timeout: 1s\ncollector:\n  interval: {INTERVAL_MS}ms\nexporters:\n{}{}{}{}",
            exporter(&format!("http://{hang_addr}/ingest"), "2s"),
            exporter(&bad.url("/ingest"), "2s"),
            exporter(&slow.url("/ingest"), "10s"),
            exporter(&good.url("/ingest"), "2s"),
        ),
    )
    .unwrap();
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    let started = Instant::now();
    eventually(Duration::from_secs(10), || (good.requests().len() >= 5).then_some(())).expect("the healthy backend gets batches");
    let baseline = rss_bytes(agent.pid()).unwrap();
    let mut max_rss = baseline;
    while started.elapsed() < RUN {
        max_rss = max_rss.max(rss_bytes(agent.pid()).unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, body) = http_get(&addr, "/status").expect("/status answers");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let elapsed = started.elapsed();
    let delivered = good.requests().len();
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");

    // Collection kept its schedule and the healthy exporter got its batches (loose bound: the
    // check is that the stuck exporters do not hold it back, not the timer's precision).
    let ticks = elapsed.as_millis() as u64 / INTERVAL_MS;
    assert!(delivered as u64 >= ticks / 2, "healthy backend got {delivered} batches in {elapsed:?} ({ticks} ticks)");
    let ex = status["exporters"].as_array().unwrap();
    let by_endpoint =
        |needle: &str| ex.iter().find(|e| e["endpoint"].as_str().is_some_and(|u| u.contains(needle))).unwrap_or_else(|| panic!("{needle} in {ex:?}"));
    let hung = by_endpoint(&hang_addr.to_string());
    let slowed = by_endpoint(&slow.url(""));
    let refused = by_endpoint(&bad.url(""));
    // The stuck queues stay within their bound, dropping the oldest and counting it.
    for e in [hung, slowed] {
        assert!(e["queue_bytes"].as_u64().unwrap() <= QUEUE_MAX_BYTES, "{e}");
        assert!(e["dropped_payloads"].as_u64().unwrap() > 0, "queue full must drop the oldest: {e}");
    }
    assert!(hung["last_error"].as_str().is_some_and(|s| s.contains("no answer within 2s")), "{hung}");
    // 400s are not retried: every payload is tried once and dropped.
    assert!(refused["dropped_payloads"].as_u64().unwrap() >= 5, "{refused}");
    // Nothing piles up: at most the batch of the tick in progress is queued when /status is read.
    assert!(refused["queue_length"].as_u64().unwrap() <= 1, "{refused}");
    assert!(bad.requests().len() as u64 <= refused["dropped_payloads"].as_u64().unwrap() + 1, "400s are not retried");
    // Memory: the queues hold at most 3 × 256 KiB; RSS must not grow past that and some slack
    // (unbounded, the two stuck queues would hold ~140 payloads of ~64 KiB each, ~18 MiB).
    let growth = max_rss.saturating_sub(baseline);
    eprintln!(
        "RSS with a stuck, a refusing and a slow backend over {elapsed:?}: baseline {:.1} MiB, max {:.1} MiB (+{:.1} MiB); healthy backend got {delivered} of {ticks} ticks; dropped: hung {}, slow {}",
        baseline as f64 / 1048576.0,
        max_rss as f64 / 1048576.0,
        growth as f64 / 1048576.0,
        hung["dropped_payloads"],
        slowed["dropped_payloads"]
    );
    assert!(growth < 8 * 1024 * 1024, "RSS grew by {growth} bytes (baseline {baseline}, max {max_rss})");
}
