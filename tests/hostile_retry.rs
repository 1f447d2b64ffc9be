//! Backends that ask for absurd retry delays, beside a healthy one, against the real agent
//! binary: `Retry-After: 18446744073709551615` (once an abort: "overflow when adding duration
//! to instant"), `Retry-After: 0` and a date in the past (once a storm of thousands of requests
//! a second), `Retry-After: 86400` from a backend that then recovers (once a day's freeze), and
//! gRPC `UNAVAILABLE` with a `RetryInfo` of `i64::MAX` or zero seconds. The agent stays alive,
//! every hostile backend is retried at the backoff pace capped by `retry.max_interval`, the
//! recovering one is sent to again within that cap, the healthy exporter gets its batches on
//! schedule, and RSS stays bounded.

mod common;

use common::grpc::Receiver;
use common::*;
use metricsd::exporters::otlp::status_details_with_retry_info;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Code, Status};

const RUN: Duration = Duration::from_secs(6);
const INTERVAL_MS: u64 = 200;
/// The retry settings of every hostile exporter: steps from 50–100 ms up to 1 s.
const RETRY: &str = "{initial_interval: 100ms, max_interval: 1s, max_elapsed_time: 0s}";
/// A payload is retried at most once per backoff step (≥ 50 ms, doubling to 1 s): about 10
/// tries in 6 s. A storm would be thousands.
const MAX_TRIES: usize = 25;

fn rss_bytes(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn answering_503(retry_after: &'static str) -> Sink {
    Sink::start(move |_, _| (503, vec![("Retry-After".into(), retry_after.into())], "down".into(), Duration::ZERO))
}

fn grpc_unavailable(delay: Duration) -> Receiver {
    Receiver::start(None, move |_| {
        let details = status_details_with_retry_info(Code::Unavailable as i32, "down", delay);
        (Err(Status::with_details(Code::Unavailable, "down", details.into())), Duration::ZERO)
    })
}

#[test]
fn absurd_server_delays_neither_abort_nor_freeze_nor_storm() {
    let healthy = Sink::ok();
    let huge = answering_503("18446744073709551615");
    let huge_i64 = answering_503("9223372036854775807");
    let zero = answering_503("0");
    let past = answering_503("Sun, 06 Nov 1994 08:49:37 GMT");
    // One day asked for once, then the backend is back.
    let asked_a_day = Arc::new(AtomicBool::new(false));
    let recovering = {
        let asked = asked_a_day.clone();
        Sink::start(move |_, _| {
            if asked.swap(true, Ordering::SeqCst) {
                (200, vec![], String::new(), Duration::ZERO)
            } else {
                (503, vec![("Retry-After".into(), "86400".into())], "maintenance".into(), Duration::ZERO)
            }
        })
    };
    let grpc_huge = grpc_unavailable(Duration::from_secs(i64::MAX as u64));
    let grpc_zero = grpc_unavailable(Duration::ZERO);

    let otlp_http = |s: &Sink| format!("  - {{type: otlp, protocol: http/protobuf, endpoint: '{}', retry: {RETRY}}}\n", s.url(""));
    let otlp_grpc = |r: &Receiver| format!("  - {{type: otlp, endpoint: 'http://{}', retry: {RETRY}}}\n", r.addr);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yaml");
    let mut yaml = format!(
        "server: {{enabled: false}}\nshutdown_timeout: 2s\ncollector: {{interval: {INTERVAL_MS}ms}}\nexporters:\n  - {{type: http_json, endpoint: '{}', format: otlp_json}}\n",
        healthy.url("/ingest")
    );
    for s in [&huge, &huge_i64, &zero, &past, &recovering] {
        yaml += &otlp_http(s);
    }
    yaml += &otlp_grpc(&grpc_huge);
    yaml += &otlp_grpc(&grpc_zero);
    std::fs::write(&cfg, yaml).unwrap();

    let mut cmd = agent();
    cmd.arg("--config").arg(&cfg).env("RUST_LOG", "warn");
    let agent = Running::spawn(cmd);
    let pid = agent.pid();
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < RUN {
        std::thread::sleep(Duration::from_millis(250));
        peak_rss = peak_rss.max(rss_bytes(pid).expect("the agent is alive"));
    }
    // Alive all along (read above); SIGTERM ends it within shutdown_timeout despite the
    // payloads waiting for their retries.
    agent.signal(libc::SIGTERM);
    let (code, _out, err) = agent.wait(Duration::from_secs(5));
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("overflow"), "{err}");

    let healthy_batches = healthy.requests().len();
    let expected = (RUN.as_millis() as u64 / INTERVAL_MS) as usize;
    assert!(healthy_batches * 2 >= expected, "the healthy exporter got {healthy_batches} of ~{expected} batches");

    for (what, tries) in [
        ("Retry-After: u64::MAX", huge.requests().len()),
        ("Retry-After: i64::MAX", huge_i64.requests().len()),
        ("Retry-After: 0", zero.requests().len()),
        ("Retry-After: a past date", past.requests().len()),
        ("RetryInfo i64::MAX s", grpc_huge.got().len()),
        ("RetryInfo 0 s", grpc_zero.got().len()),
    ] {
        // Retried (a cap of 1 s, not a day) and at the backoff pace (not a storm).
        assert!((3..=MAX_TRIES).contains(&tries), "{what}: {tries} tries in {RUN:?}");
    }
    // The backend that asked for a day got the next try within max_interval, then every batch.
    let back = recovering.requests();
    assert!(back.len() >= 2, "the recovered backend was not tried again: {} requests", back.len());
    let gap = back[1].at.duration_since(back[0].at);
    // max_interval is 1 s; a generous bound for a busy machine, still a day short of 86400 s.
    assert!(gap <= Duration::from_secs(5), "next try after {gap:?}, not within max_interval");
    assert!(back.len() * 3 >= expected, "{} of ~{expected} batches after recovering", back.len());
    assert!(peak_rss < 64 << 20, "peak RSS {peak_rss} bytes");
    println!("healthy {healthy_batches} batches, recovering {}, peak RSS {} KiB", back.len(), peak_rss / 1024);
    drop(dir);
}
