//! Backends that answer as no HTTP server should: an endless stream of `100 Continue`, a flood
//! of other 1xx answers, a Content-Length of 2^63 with a few bytes and then nothing, an endless
//! chunked body, a reset in the middle of the answer, a header that never ends. For each, the
//! agent (a child process) stays alive, its resident memory stays under [`RSS_LIMIT_KB`], the
//! healthy exporter beside the hostile one gets its batches, and the hostile one is retried
//! (each attempt runs into the 1 s timeout or an error, never into unbounded memory).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most resident memory the agent may use while a backend misbehaves (a debug build idles
/// at 10–20 MiB; a body buffered whole would be far over).
const RSS_LIMIT_KB: u64 = 96 * 1024;
/// How long each case runs.
const RUN: Duration = Duration::from_secs(4);

/// A raw TCP server on 127.0.0.1: for each connection, reads the request head, then lets
/// `answer` write what it likes (a write error ends it: the agent gave up). Counts connections.
fn hostile(answer: fn(&mut TcpStream) -> std::io::Result<()>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let n = count.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            n.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let _ = answer(&mut s);
            });
        }
    });
    (addr, count)
}

/// Writes `piece` until the peer goes away.
fn forever(s: &mut TcpStream, piece: &[u8]) -> std::io::Result<()> {
    loop {
        s.write_all(piece)?;
    }
}

/// The agent's resident memory in KiB, from /proc/PID/status.
fn rss_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs the agent with a remote-write exporter to the hostile backend and one to a healthy
/// sink, checks the agent's memory as it runs and what the two backends got, and that the
/// agent logged `reason` for the hostile one.
fn survives(reason: &str, answer: fn(&mut TcpStream) -> std::io::Result<()>) {
    let (bad, attempts) = hostile(answer);
    let good = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let retry = "    timeout: 1s\n    retry: {initial_interval: 100ms, max_interval: 200ms}\n";
    std::fs::write(
        &cfg,
        format!(
            "server:\n  enabled: false\nshutdown_timeout: 2s\ncollector:\n  interval: 250ms\nexporters:\n  - type: prometheus_remote_write\n    endpoint: http://{bad}/api/v1/write\n{retry}  - type: prometheus_remote_write\n    endpoint: {}\n{retry}",
            good.url("/api/v1/write")
        ),
    )
    .unwrap();
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed() < RUN {
        let rss = rss_kb(agent.pid()).expect("the agent is alive");
        peak = peak.max(rss);
        assert!(rss < RSS_LIMIT_KB, "RSS {rss} kB over {RSS_LIMIT_KB} kB after {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu_ticks = std::fs::read_to_string(format!("/proc/{}/stat", agent.pid())).ok().and_then(|s| {
        let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "the agent exits cleanly; stderr:\n{err}");
    let healthy = good.requests().len();
    let tries = attempts.load(Ordering::SeqCst);
    eprintln!("peak RSS {peak} kB, CPU {cpu_ticks:?} ticks in {RUN:?}, healthy batches {healthy}, hostile connections {tries}");
    // 16 ticks in 4 s: the healthy exporter keeps up whatever the other one suffers.
    assert!(healthy >= 8, "the healthy exporter got {healthy} batches; stderr:\n{err}");
    assert!(tries >= 2, "the hostile backend is retried: {tries} connections; stderr:\n{err}");
    assert!(tries <= 80, "retries keep their pace: {tries} connections in {RUN:?}");
    assert!(err.contains("Send failed; will retry") && err.contains(reason), "the agent says {reason:?}:\n{err}");
}

#[test]
fn an_endless_stream_of_100_continue() {
    survives("interim (1xx) answers", |s| forever(s, b"HTTP/1.1 100 Continue\r\n\r\n"));
}

#[test]
fn a_flood_of_1xx_answers_with_headers() {
    survives("interim (1xx) answers", |s| {
        forever(s, format!("HTTP/1.1 103 Early Hints\r\nLink: </{}>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n", "x".repeat(2000)).as_bytes())
    });
}

#[test]
fn a_content_length_of_2_to_the_63_with_a_few_bytes_then_nothing() {
    survives("no answer within 1s", |s| {
        s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9223372036854775808\r\n\r\nshort")?;
        std::thread::sleep(Duration::from_secs(30));
        Ok(())
    });
}

#[test]
fn an_endless_chunked_body() {
    survives("response body larger than", |s| {
        s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        let chunk = [b"FFFF\r\n".to_vec(), vec![b'x'; 0xFFFF], b"\r\n".to_vec()].concat();
        forever(s, &chunk)
    });
}

#[test]
fn a_reset_in_the_middle_of_the_answer() {
    survives("reading the answer's body", |s| {
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")?;
        s.flush()?;
        std::thread::sleep(Duration::from_millis(20));
        // SO_LINGER 0: close sends RST.
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: a valid socket and a linger struct of the size given.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&*s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as u32,
            );
        }
        Ok(())
    });
}

#[test]
fn a_header_that_never_ends() {
    survives("message head is too large", |s| {
        s.write_all(b"HTTP/1.1 200 OK\r\nX-Huge: ")?;
        forever(s, &[b'a'; 8192])
    });
}
