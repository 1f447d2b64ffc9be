//! The agent's own server and shutdown against clients and sources that misbehave: the agent
//! binary is started as a child with its server on a free loopback port.
//!
//! - 2,000 idle connections: `/health` still answers (the oldest idle ones are closed);
//! - large `/metrics` renders queued up: `/health` answers meanwhile;
//! - a tick stuck in a blocking read (a FIFO where `/proc/meminfo` should be): SIGTERM still
//!   ends the agent within `shutdown_timeout`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// GET over a fresh HTTP/1.0 connection with a read limit; (status, body length, time taken).
fn get(addr: &str, path: &str, limit: Duration) -> Option<(u16, usize, Duration)> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&buf[..head_end]).ok()?.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf.len() - head_end - 4, start.elapsed()))
}

/// Raises this process's descriptor limit (the agent inherits it) to `want` or the hard
/// limit; returns the soft limit now in force.
fn raise_nofile(want: u64) -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write and read the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        if r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
    }
    r.rlim_cur
}

fn start_agent(config: &str) -> (tempfile::TempDir, Running, String) {
    start_agent_with(config, |_| {})
}

fn start_agent_with(config: &str, adjust: impl FnOnce(&mut std::process::Command)) -> (tempfile::TempDir, Running, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(&dir, &format!("server: {{host: 127.0.0.1, port: {port}}}\n{config}"));
    let mut c = agent();
    c.arg("-c").arg(&cfg);
    adjust(&mut c);
    let run = Running::spawn(c);
    let addr = format!("127.0.0.1:{port}");
    eventually(Duration::from_secs(20), || get(&addr, "/health", Duration::from_secs(2)).filter(|r| r.0 == 200)).expect("the agent serves /health");
    (dir, run, addr)
}

#[test]
fn health_answers_while_two_thousand_idle_connections_are_open() {
    let nofile = raise_nofile(4096);
    let idle_count = 2000.min(nofile.saturating_sub(200) as usize);
    assert!(idle_count >= 1000, "RLIMIT_NOFILE {nofile} is too low for this test");
    let (_dir, agent, addr) = start_agent("collector: {interval: 10s}\n");
    let mut idle = Vec::with_capacity(idle_count);
    for _ in 0..idle_count {
        match TcpStream::connect(&addr) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect {} failed: {e}", idle.len()),
        }
    }
    // Every one of them is open on our side; the agent keeps at most its cap.
    let (status, _, took) = get(&addr, "/health", Duration::from_secs(10)).expect("/health answers beside 2,000 idle connections");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "/health took {took:?}");
    let mut body = String::new();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /status HTTP/1.0\r\n\r\n").unwrap();
    s.read_to_string(&mut body).unwrap();
    let json: serde_json::Value = serde_json::from_str(body.split_once("\r\n\r\n").unwrap().1).unwrap();
    let srv = &json["server"];
    assert!(srv["connections"].as_u64().unwrap() <= srv["max_connections"].as_u64().unwrap(), "{srv}");
    let max = srv["max_connections"].as_u64().unwrap() as usize;
    assert!(srv["connections_shed"].as_u64().unwrap() as usize >= idle_count - max, "{srv}");
    drop(idle);
    agent.signal(libc::SIGTERM);
    let (code, _, _) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0));
}

#[test]
fn running_out_of_descriptors_is_logged_once_and_health_still_answers() {
    use std::os::unix::process::CommandExt;
    let nofile = raise_nofile(4096);
    let idle_count = 2000.min(nofile.saturating_sub(200) as usize);
    assert!(idle_count >= 1000, "RLIMIT_NOFILE {nofile} is too low for this test");
    // The agent gets 128 descriptors: far fewer than its connection cap.
    let (_dir, agent, addr) = start_agent_with("collector: {interval: 1s}\n", |c| {
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let r = libc::rlimit { rlim_cur: 128, rlim_max: 128 };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let started = Instant::now();
    let mut idle = Vec::with_capacity(idle_count);
    let opened = Instant::now();
    for _ in 0..idle_count {
        let sock = addr.parse().unwrap();
        match TcpStream::connect_timeout(&sock, Duration::from_secs(10)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect {} failed: {e}", idle.len()),
        }
    }
    eprintln!("{} connections opened in {:?}", idle.len(), opened.elapsed());
    let (status, _, took) = get(&addr, "/health", Duration::from_secs(10)).expect("/health answers with descriptors short");
    eprintln!("/health took {took:?}");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "/health took {took:?}");
    // Ticks go on (the collectors' files are open; a tick's new ones find descriptors).
    std::thread::sleep(Duration::from_millis(1500));
    let (status, len, _) = get(&addr, "/metrics", Duration::from_secs(10)).expect("/metrics answers");
    assert!(status == 200 && len > 1000, "{status} {len}");
    drop(idle);
    agent.signal(libc::SIGTERM);
    let (code, _, stderr) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
    // One line an episode, and an episode lasts until 10 s pass without a failure: on a busy
    // machine the connects can take longer than that, so a run of T seconds may hold T/10 + 1.
    let warnings = stderr.lines().filter(|l| l.contains("Cannot accept connections")).count();
    let most = 1 + started.elapsed().as_secs() as usize / 10;
    assert!((1..=most).contains(&warnings), "{warnings} lines in {:?}, not one an episode:\n{stderr}", started.elapsed());
    eprintln!("{}", stderr.lines().filter(|l| !l.contains("INFO")).take(5).collect::<Vec<_>>().join("\n"));
}

#[test]
fn health_answers_while_large_metrics_renders_are_queued() {
    // 40,000 series (about 5 MB as /metrics): each render takes a good fraction of a second.
    let mut text = String::from("# TYPE app_request_duration_seconds_bucket gauge\n");
    for i in 0..40_000 {
        text.push_str(&format!("app_request_duration_seconds_bucket{{service=\"checkout-{}\",pod=\"pod-{i}\",le=\"{}\"}} {i}.5\n", i % 50, i % 13));
    }
    let sink = Sink::start(move |_, _| (200, vec![("content-type".into(), "text/plain; version=0.0.4".into())], text.clone(), Duration::ZERO));
    // The scrape limits are lifted: the target is meant to be big.
    let (_dir, agent, addr) = start_agent(&format!(
        "collector: {{interval: 10s}}\nendpoints:\n  - name: big\n    url: {}\n    sample_limit: 0\n    parsed_size_limit: 0\n",
        sink.url("/metrics")
    ));
    // Several rounds, in case a tick lands between a round's requests and the batch it renders
    // has no scrape in it.
    let big = 2_000_000;
    let mut proven = false;
    for _round in 0..4 {
        eventually(Duration::from_secs(40), || get(&addr, "/metrics", Duration::from_secs(30)).filter(|r| r.1 > big)).expect("the scrape shows in /metrics");
        let renders: Vec<_> = (0..6)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || get(&addr, "/metrics", Duration::from_secs(60)))
            })
            .collect();
        let mut health = Vec::new();
        while !renders.iter().all(|r| r.is_finished()) {
            let (status, _, took) = get(&addr, "/health", Duration::from_secs(10)).expect("/health answers during the renders");
            assert_eq!(status, 200);
            health.push(took);
            std::thread::sleep(Duration::from_millis(50));
        }
        let metrics: Vec<Duration> = renders.into_iter().filter_map(|r| r.join().unwrap()).filter(|r| r.0 == 200 && r.1 > big).map(|r| r.2).collect();
        let (Some(fastest), Some(slowest_health)) = (metrics.iter().min(), health.iter().max()) else { continue };
        if metrics.len() < 4 {
            continue;
        }
        eprintln!("/metrics: {} large renders, fastest {fastest:?}; /health: {} probes, slowest {slowest_health:?}", metrics.len(), health.len());
        // On the render's own worker, /health waited for a whole render; now it waits for none.
        assert!(*slowest_health * 3 < *fastest, "/health took {slowest_health:?} while a /metrics took {fastest:?} at best");
        proven = true;
        break;
    }
    assert!(proven, "no round saw four large renders");
    agent.signal(libc::SIGTERM);
    let (code, _, _) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0));
}

#[test]
fn sigterm_ends_the_agent_within_shutdown_timeout_while_a_tick_is_stuck_in_a_read() {
    // A FIFO without a writer where /proc/meminfo should be: the memory collector's open blocks
    // for good, on the tick's thread.
    let proc = tempfile::tempdir().unwrap();
    std::fs::write(proc.path().join("loadavg"), "0.50 0.40 0.30 1/100 42\n").unwrap();
    let fifo = std::ffi::CString::new(proc.path().join("meminfo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = write_config(&dir, &format!("server: {{host: 127.0.0.1, port: {port}}}\nshutdown_timeout: 2s\ncollector: {{interval: 1s}}\n"));
    let mut c = agent();
    c.arg("-c").arg(&cfg).env("HOST_PROC", proc.path());
    let run = Running::spawn(c);
    eventually(Duration::from_secs(20), || get(&addr, "/health", Duration::from_secs(2)).filter(|r| r.0 == 200)).expect("the agent serves /health");
    // The first tick starts within a tenth of the interval and blocks.
    std::thread::sleep(Duration::from_millis(1500));
    let (ready, _, _) = get(&addr, "/ready", Duration::from_secs(2)).expect("/ready answers");
    assert_eq!(ready, 503, "no collection can have completed");
    let start = Instant::now();
    run.signal(libc::SIGTERM);
    let (code, _, stderr) = run.wait(Duration::from_secs(10));
    let took = start.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_millis(2000 + 1500), "shutdown took {took:?} with shutdown_timeout 2s; stderr:\n{stderr}");
    assert!(stderr.contains("A collection is still running"), "{stderr}");
}
