//! Scrape targets that try to bloat or stall the agent (issue 20): the agent binary runs with
//! its default limits against a 9.9 MB Prometheus body of 357k series, a 2 MB JSON body whose
//! long key repeats over every leaf, and a gzip bomb, next to a healthy target; and against a
//! target as large as the default limits accept. Each test asserts the agent stays alive, its
//! peak resident memory stays under a stated bound well within the 96Mi the Kubernetes
//! manifests give it, its ticks keep arriving at an in-process OTLP receiver, and each hostile
//! target reports `up` 0 with the limit it passed.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Peak resident memory the agent may reach with every hostile target at once. The peak varies
/// from run to run (how much of the hostile bodies is parsed at the same moment): 64.6–69.6
/// MiB with stop 30's build, 64.2–73.2 MiB with stop 31's (each exporter on its own thread; debug
/// builds, 4–6 runs each, 2026-12-08), so 72 MiB failed now and then. The bound keeps a margin
/// under `deploy/kubernetes`' 96Mi limit.
const HOSTILE_PEAK_RSS: u64 = 78 << 20;
/// Peak resident memory with the largest target the default limits accept, exported.
/// Measured 62.8–64.2 MiB with stop 30's build, 65.6–69.6 MiB with stop 31's (2026-12-08).
const FITS_PEAK_RSS: u64 = 78 << 20;

/// One answer of the test target: content type, content encoding, body.
type Answer = (&'static str, Option<&'static str>, Bytes);

/// An HTTP server on 127.0.0.1 answering fixed bodies by path, and counting (then dropping)
/// whatever is POSTed to it: the hostile targets and the agent's OTLP receiver in one.
struct Server {
    addr: std::net::SocketAddr,
    posts: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(routes: HashMap<&'static str, Answer>) -> Server {
        let routes = Arc::new(routes);
        let posts = Arc::new(AtomicUsize::new(0));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let counter = posts.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        r = l.accept() => r.unwrap(),
                        _ = &mut stop_rx => return,
                    };
                    let (routes, counter) = (routes.clone(), counter.clone());
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let (routes, counter) = (routes.clone(), counter.clone());
                            async move {
                                let path = req.uri().path().to_string();
                                let post = req.method() == hyper::Method::POST;
                                let _ = req.into_body().collect().await;
                                let resp = if post {
                                    counter.fetch_add(1, Ordering::SeqCst);
                                    Response::builder().status(200).header("content-type", "application/x-protobuf").body(Full::new(Bytes::new()))
                                } else if let Some((ct, ce, body)) = routes.get(path.as_str()) {
                                    let mut r = Response::builder().status(200).header("content-type", *ct);
                                    if let Some(ce) = ce {
                                        r = r.header("content-encoding", *ce);
                                    }
                                    r.body(Full::new(body.clone()))
                                } else {
                                    Response::builder().status(404).body(Full::new(Bytes::new()))
                                };
                                Ok::<_, std::convert::Infallible>(resp.unwrap())
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Server { addr, posts, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// 9.9 MB of Prometheus text: ~357k series of 1000 families.
fn huge_prometheus() -> Bytes {
    let mut s = String::with_capacity(10 << 20);
    let mut i = 0u64;
    while s.len() < 9_900_000 {
        s.push_str(&format!("h_{}{{i=\"{i}\"}} {i}\n", i % 1000));
        i += 1;
    }
    assert!(i > 350_000, "{i} series");
    Bytes::from(s)
}

/// 2 MB of JSON whose 4000-byte key sits above every leaf: unbounded, each of the ~180k
/// leaves would become a 4 KB metric name (720 MB).
fn json_key_amplification() -> Bytes {
    let key = "k".repeat(4000);
    let mut s = format!("{{\"{key}\": {{");
    let mut i = 0;
    while s.len() < 2_000_000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"{i}\":1"));
        i += 1;
    }
    s.push_str("}}");
    Bytes::from(s)
}

/// 200 MB of newlines gzipped to ~200 KB.
fn gzip_bomb() -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![b'\n'; 1 << 20];
    for _ in 0..200 {
        e.write_all(&chunk).unwrap();
    }
    Bytes::from(e.finish().unwrap())
}

/// `n` series of a typical service: 5 labels of 10–20 bytes each.
fn series(n: usize) -> Bytes {
    let mut s = String::from("# TYPE app_requests_total counter\n");
    for i in 0..n {
        s.push_str(&format!(
            "app_requests_total{{namespace=\"payments\",pod=\"api-7d9f8c-{:05}\",container=\"api\",method=\"GET\",route=\"/v1/items/{}\"}} {i}\n",
            i % 500,
            i
        ));
    }
    Bytes::from(s)
}

fn status(addr: &str) -> Option<Value> {
    let (code, body) = http_get(addr, "/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

fn find_target<'v>(st: &'v Value, name: &str) -> Option<&'v Value> {
    st["targets"].as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name))
}

fn target<'v>(st: &'v Value, name: &str) -> &'v Value {
    find_target(st, name).unwrap_or_else(|| panic!("no target {name} in {st}"))
}

fn scrapes(st: &Value, name: &str) -> u64 {
    find_target(st, name).and_then(|t| t["scrapes"].as_u64()).unwrap_or(0)
}

/// `VmHWM` (peak resident set) of a process, in bytes.
fn peak_rss(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap();
    kb * 1024
}

/// Starts the agent: 1 s ticks, OTLP/HTTP to `server`, `/status` on a free port, these
/// `endpoints` (YAML list items) with every limit at its default.
fn start_agent(server: &Server, endpoints: &str, dir: &tempfile::TempDir) -> (Running, String) {
    let port = free_port();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{host: 127.0.0.1, port: {port}}}\ncollector: {{interval: 1s}}\nexporters:\n  - type: otlp\n    protocol: http/protobuf\n    endpoint: {}\nendpoints:\n{endpoints}",
            server.url("")
        ),
    )
    .unwrap();
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    (agent, format!("127.0.0.1:{port}"))
}

/// Stops the agent with SIGTERM: it exits 0 in time.
fn stop(agent: Running) -> String {
    agent.signal(libc::SIGTERM);
    let (code, _, stderr) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

#[test]
fn hostile_targets_fail_at_their_limits_while_the_agent_stays_small_and_on_time() {
    let routes = HashMap::from([
        ("/huge", ("text/plain; version=0.0.4", None, huge_prometheus())),
        ("/json", ("application/json", None, json_key_amplification())),
        ("/bomb", ("text/plain; version=0.0.4", Some("gzip"), gzip_bomb())),
        ("/ok", ("text/plain; version=0.0.4", None, Bytes::from_static(b"# TYPE ok_total counter\nok_total 1\n"))),
        ("/2000", ("text/plain; version=0.0.4", None, series(2000))),
    ]);
    let server = Server::start(routes);
    let dir = tempfile::tempdir().unwrap();
    let mut endpoints = String::new();
    for name in ["huge", "json", "bomb", "ok"] {
        endpoints.push_str(&format!("  - name: {name}\n    url: {}\n", server.url(&format!("/{name}"))));
    }
    // A lower sample_limit stops a body under every other limit.
    endpoints.push_str(&format!("  - name: counted\n    url: {}\n    sample_limit: 1000\n", server.url("/2000")));
    let (agent, addr) = start_agent(&server, &endpoints, &dir);
    let pid = agent.pid();

    let scraped = |st: &Value| ["huge", "counted", "json", "bomb", "ok"].iter().all(|n| scrapes(st, n) >= 3);
    let st = eventually(Duration::from_secs(30), || status(&addr).filter(scraped)).expect("every target scraped three times");
    let posts_then = server.posts();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let posts = server.posts() - posts_then;
    let elapsed = t0.elapsed().as_secs_f64();
    let peak = peak_rss(pid);
    eprintln!("hostile targets: peak RSS {:.1} MiB, {posts} batches in {elapsed:.1} s", peak as f64 / 1048576.0);
    let st_end = status(&addr).expect("the agent still answers");

    let huge = target(&st, "huge");
    assert_eq!(huge["up"], false, "{huge}");
    assert!(huge["last_error"].as_str().unwrap().starts_with("parsed_size_limit exceeded"), "{huge}");
    assert!(huge["limit_failures"].as_u64() >= Some(3), "{huge}");
    let counted = target(&st, "counted");
    assert_eq!(counted["up"], false, "{counted}");
    assert_eq!(counted["last_error"], "sample_limit exceeded: more than 1000 samples", "{counted}");
    assert_eq!(counted["samples"], 1000, "the samples read until the limit: {counted}");
    let json = target(&st, "json");
    assert_eq!(json["up"], false, "{json}");
    // The size budget stops it; on a slow (debug, loaded) build the time budget may come first.
    let e = json["last_error"].as_str().unwrap();
    assert!(e.starts_with("parsed_size_limit exceeded") || e.starts_with("parsing took longer than its time budget"), "{json}");
    let bomb = target(&st, "bomb");
    assert_eq!(bomb["up"], false, "{bomb}");
    assert!(bomb["last_error"].as_str().unwrap().contains("body_size_limit"), "{bomb}");
    let ok = target(&st_end, "ok");
    assert_eq!((ok["up"].as_bool(), ok["samples"].as_u64(), ok["last_error"].is_null()), (Some(true), Some(1), true), "{ok}");

    // Ticks every second: at least 3 batches in 5 s (generous for a loaded machine).
    assert!(posts >= 3, "{posts} batches in {elapsed:.1} s");
    assert!(peak < HOSTILE_PEAK_RSS, "peak RSS {} MiB, bound {} MiB", peak >> 20, HOSTILE_PEAK_RSS >> 20);

    let stderr = stop(agent);
    // One warning per distinct error, however many scrapes failed the same way.
    let warned = stderr.lines().filter(|l| l.contains("sample_limit exceeded")).count();
    assert_eq!(warned, 1, "{stderr}");
}

#[test]
fn the_largest_target_the_default_limits_accept_stays_within_the_memory_bound() {
    // 5 labels of typical length: ~1,280 estimated bytes a sample, so about 13,100 fit in
    // the default parsed_size_limit (16 MiB).
    let routes =
        HashMap::from([("/fits", ("text/plain; version=0.0.4", None, series(12_000))), ("/over", ("text/plain; version=0.0.4", None, series(14_000)))]);
    let server = Server::start(routes);
    let dir = tempfile::tempdir().unwrap();
    let endpoints = format!("  - name: fits\n    url: {}\n  - name: over\n    url: {}\n", server.url("/fits"), server.url("/over"));
    let (agent, addr) = start_agent(&server, &endpoints, &dir);
    let pid = agent.pid();

    let st = eventually(Duration::from_secs(30), || status(&addr).filter(|st| scrapes(st, "fits") >= 4 && scrapes(st, "over") >= 1)).expect("four scrapes");
    let posts_then = server.posts();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let posts = server.posts() - posts_then;
    let elapsed = t0.elapsed().as_secs_f64();
    let peak = peak_rss(pid);
    eprintln!("12k series of 5 labels accepted: peak RSS {:.1} MiB, {posts} batches in {elapsed:.1} s", peak as f64 / 1048576.0);

    let fits = target(&st, "fits");
    assert_eq!((fits["up"].as_bool(), fits["samples"].as_u64()), (Some(true), Some(12_000)), "{fits}");
    assert_eq!(fits["series_added"], 0, "the same series every scrape: {fits}");
    let over = target(&st, "over");
    assert_eq!(over["up"], false, "{over}");
    assert!(over["last_error"].as_str().unwrap().starts_with("parsed_size_limit exceeded"), "{over}");
    assert!(posts >= 3, "{posts} batches in {elapsed:.1} s");
    assert!(peak < FITS_PEAK_RSS, "peak RSS {} MiB, bound {} MiB", peak >> 20, FITS_PEAK_RSS >> 20);
    stop(agent);
}
