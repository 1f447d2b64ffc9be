//! Helpers shared by the integration tests: the agent binary, free ports, and an in-process
//! HTTP server that records what it receives and answers as the test says.
#![allow(dead_code)]

pub mod go_peer;
pub mod grpc;
pub mod otelcol;
pub mod otlp_lines;
pub mod pki;
pub mod prometheus3;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The agent binary cargo built for these tests.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_metricsd"))
}

/// A command running the agent with a clean `MC_*`/`OTEL_*`/`HOST_*` environment.
pub fn agent() -> Command {
    let mut c = Command::new(agent_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("MC_") || k.starts_with("OTEL_") || k.starts_with("HOST_") || k.starts_with("K8S_") {
            c.env_remove(k);
        }
    }
    c.current_dir(std::env::temp_dir());
    c
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child when dropped, so a failing test leaves nothing running. Its output is
/// drained by threads as it comes, so a chatty agent never blocks on a full pipe.
pub struct Running(pub Option<Child>, Vec<std::thread::JoinHandle<String>>);

fn drain(r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let mut r = std::io::BufReader::new(r);
        let _ = std::io::Read::read_to_string(&mut r, &mut s);
        s
    })
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("agent starts");
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        Running(Some(child), vec![out, err])
    }
    pub fn pid(&self) -> i32 {
        self.0.as_ref().unwrap().id() as i32
    }
    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }
    /// Waits up to `limit` for exit; returns (code, stdout, stderr).
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let mut child = self.0.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut d = std::mem::take(&mut self.1).into_iter();
                let out = d.next().unwrap().join().unwrap_or_default();
                let err = d.next().unwrap().join().unwrap_or_default();
                return (status.code(), out, err);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let err = std::mem::take(&mut self.1).pop().unwrap().join().unwrap_or_default();
                panic!("agent did not exit within {limit:?}; stderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 50 ms until it returns Some, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A plain HTTP/1.1 GET with std only (the tests must not trust the agent's own client).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n" // 1.0: no chunked bodies
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    // Our server answers with a content-length body; chunked is not used.
    Some((status, body))
}

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The answer for the n-th request (0-based): status, extra headers, body, delay.
pub type Responder = dyn Fn(usize, &Received) -> (u16, Vec<(String, String)>, String, Duration) + Send + Sync;

/// An HTTP server on 127.0.0.1 that records requests; runs on its own thread and runtime.
pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    pub fn start(responder: impl Fn(usize, &Received) -> (u16, Vec<(String, String)>, String, Duration) + Send + Sync + 'static) -> Sink {
        let responder: Arc<Responder> = Arc::new(responder);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rec = received.clone();
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
                    let (rec, responder) = (rec.clone(), responder.clone());
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let (rec, responder) = (rec.clone(), responder.clone());
                            async move {
                                let method = req.method().to_string();
                                let path = req.uri().path().to_string();
                                let headers = req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
                                let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                let r = Received { method, path, headers, body, at: Instant::now() };
                                let n = {
                                    let mut g = rec.lock().unwrap();
                                    g.push(r.clone());
                                    g.len() - 1
                                };
                                let (status, hdrs, body, delay) = responder(n, &r);
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                let mut resp = Response::builder().status(status);
                                for (k, v) in hdrs {
                                    resp = resp.header(k, v);
                                }
                                Ok::<_, std::convert::Infallible>(resp.body(Full::new(Bytes::from(body))).unwrap())
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Sink { addr, received, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Always 200.
    pub fn ok() -> Sink {
        Sink::start(|_, _| (200, vec![], String::new(), Duration::ZERO))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether the tests run under CI, where a missing real server is a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false)
}

/// The path of a program on PATH (or in /usr/bin, /usr/sbin), or a skip / CI failure.
pub fn require_program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!("{name} is not installed (apt-get install {name}; scripts/test.sh does it)");
        if under_ci() {
            panic!("{msg}: this end-to-end test must run under CI");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus (Debian's package) on a free loopback port with the remote-write
/// receiver on; stopped and its data removed when dropped.
pub struct Prometheus {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
    bin: PathBuf,
    extra_args: Vec<String>,
}

impl Prometheus {
    pub fn start() -> Option<Prometheus> {
        let bin = require_program("prometheus")?;
        Some(Self::start_with(bin, &[]))
    }

    /// Starts `bin` (a Prometheus server) as [`Prometheus::start`] does, with `extra_args` added
    /// (Prometheus 3's receivers: see `prometheus3`).
    pub fn start_with(bin: PathBuf, extra_args: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), "global:\n  scrape_interval: 1h\n").unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let child = Self::spawn(&bin, &extra_args, dir.path(), &addr);
        let p = Prometheus { addr, child, _dir: dir, bin, extra_args };
        p.wait_ready();
        p
    }

    fn spawn(bin: &std::path::Path, extra_args: &[String], dir: &std::path::Path, addr: &str) -> Child {
        Command::new(bin)
            .args(extra_args)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts")
    }

    fn wait_ready(&self) {
        eventually(Duration::from_secs(30), || http_get(&self.addr, "/-/ready").filter(|(s, _)| *s == 200)).expect("prometheus becomes ready");
    }

    /// An outage: the server is killed (SIGKILL; what it acknowledged is in its WAL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The end of an outage: the same server (port, data) started again.
    pub fn restart(&mut self) {
        self.child = Self::spawn(&self.bin, &self.extra_args, self._dir.path(), &self.addr);
        self.wait_ready();
    }

    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// Prometheus 3's OTLP/HTTP receiver (`--web.enable-otlp-receiver`).
    pub fn otlp_url(&self) -> String {
        format!("http://{}/api/v1/otlp/v1/metrics", self.addr)
    }

    /// `/api/v1/<path>` (query string included) as JSON, asserting status 200.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = http_get(&self.addr, &format!("/api/v1/{path}")).expect("the API answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("API JSON")
    }

    /// `/api/v1/query` result vector as JSON values.
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let (status, body) = http_get(&self.addr, &format!("/api/v1/query?query={}", urlencode(q))).expect("query answers");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("query JSON");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
