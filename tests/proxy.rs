//! The agent's remote-write, OTLP/HTTP and OTLP/gRPC traffic through an HTTP proxy: a small
//! proxy written here (CONNECT tunnels and absolute-form forwarding) sees it when
//! `HTTP_PROXY` / `https_proxy` or a `proxy_url` say so, and sees none when `NO_PROXY` matches.
//!
//! Endpoints are named `*.invalid` (RFC 6761: they resolve nowhere), and the proxy sends
//! every destination to 127.0.0.1 at its port: a batch that arrives went through the proxy.
//! The agent runs as a child with its own environment, since proxy variables are per process.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the proxy saw: each connection's first line and its `Proxy-Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An HTTP proxy on 127.0.0.1, on its own thread: `CONNECT host:port` is tunnelled to
/// 127.0.0.1:port; an absolute-form request `POST http://host:port/…` is forwarded as it is
/// (hyper's server takes the absolute form) with the rest of the connection.
fn proxy() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                        let mut b = [0u8; 1];
                        if client.read(&mut b).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(b[0]);
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let first = text.lines().next().unwrap_or("").to_string();
                    let auth = text.lines().find(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:")).map(|l| l[20..].trim().to_string());
                    log.lock().unwrap().push((first.clone(), auth));
                    let target = first.split(' ').nth(1).unwrap_or("");
                    let port = target.trim_start_matches("http://").split('/').next().unwrap_or("").rsplit(':').next().unwrap_or("");
                    let Ok(mut server) = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await else { return };
                    if first.starts_with("CONNECT ") {
                        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                    } else {
                        let _ = server.write_all(&head).await;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
    });
    (rx.recv_timeout(Duration::from_secs(5)).unwrap(), seen)
}

/// A plain-text OTLP/gRPC receiver on 127.0.0.1 that counts the exports it gets.
fn grpc_receiver() -> (SocketAddr, Arc<AtomicUsize>) {
    #[derive(Clone)]
    struct Count(Arc<AtomicUsize>);
    #[tonic::async_trait]
    impl MetricsService for Count {
        async fn export(&self, _: tonic::Request<ExportMetricsServiceRequest>) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    let svc = Count(count.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .serve_with_incoming(MetricsServiceServer::new(svc).accept_compressed(tonic::codec::CompressionEncoding::Gzip), incoming)
                .await;
        });
    });
    (rx.recv_timeout(Duration::from_secs(5)).unwrap(), count)
}

/// The three receivers and a config sending to them by `*.invalid` names; `extra` is added
/// to every exporter (e.g. a `proxy_url`).
struct Backends {
    rw: Sink,
    otlp_http: Sink,
    grpc: SocketAddr,
    grpc_count: Arc<AtomicUsize>,
    dir: tempfile::TempDir,
}

impl Backends {
    fn start() -> Backends {
        let (grpc, grpc_count) = grpc_receiver();
        Backends { rw: Sink::ok(), otlp_http: Sink::ok(), grpc, grpc_count, dir: tempfile::tempdir().unwrap() }
    }

    fn rw_url(&self) -> String {
        format!("http://rw.invalid:{}/api/v1/write", self.rw.addr.port())
    }

    fn otlp_http_url(&self) -> String {
        format!("http://otlp.invalid:{}/v1/metrics", self.otlp_http.addr.port())
    }

    fn config(&self, extra: &str) -> std::path::PathBuf {
        let p = self.dir.path().join("c.yaml");
        let fast = "    retry: {initial_interval: 100ms, max_interval: 200ms}\n";
        std::fs::write(
            &p,
            format!(
                concat!(
                    "server:\n  enabled: false\nshutdown_timeout: 2s\ncollector:\n  interval: 250ms\nexporters:\n",
                    "  - type: prometheus_remote_write\n    endpoint: {}\n{fast}{extra}",
                    "  - type: otlp\n    protocol: http/protobuf\n    endpoint: {}\n{fast}{extra}",
                    "  - type: otlp\n    protocol: grpc\n    endpoint: http://grpc.invalid:{}\n{fast}{extra}",
                ),
                self.rw_url(),
                self.otlp_http_url(),
                self.grpc.port(),
                fast = fast,
                extra = extra,
            ),
        )
        .unwrap();
        p
    }

    fn all_received(&self) -> bool {
        !self.rw.requests().is_empty() && !self.otlp_http.requests().is_empty() && self.grpc_count.load(Ordering::SeqCst) > 0
    }
}

/// Runs the agent on `cfg` with only `env` of the proxy variables, until `done` or 15 s;
/// returns its stderr.
fn run(cfg: &std::path::Path, env: &[(&str, String)], done: impl Fn() -> bool) -> String {
    let mut c = agent();
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD"] {
        c.env_remove(k);
    }
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    c.arg("-c").arg(cfg);
    let agent = Running::spawn(c);
    eventually(Duration::from_secs(15), || done().then_some(()));
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err}");
    err
}

fn first_lines(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().iter().map(|(l, _)| l.clone()).collect()
}

#[test]
fn environment_proxies_carry_remote_write_otlp_http_and_otlp_grpc_traffic() {
    let (proxy, seen) = proxy();
    let b = Backends::start();
    let url = format!("http://{proxy}");
    let err = run(&b.config(""), &[("HTTP_PROXY", url.clone()), ("https_proxy", url)], || b.all_received());
    assert!(b.all_received(), "every backend got batches through the proxy; stderr:\n{err}");
    let lines = first_lines(&seen);
    // Plain HTTP goes to the proxy in absolute form; gRPC is tunnelled with CONNECT (as grpc-go
    // does, under HTTPS_PROXY whatever the endpoint's scheme).
    assert!(lines.iter().any(|l| l.starts_with(&format!("POST {} HTTP/1.1", b.rw_url()))), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("POST {} HTTP/1.1", b.otlp_http_url()))), "{lines:?}");
    assert!(lines.contains(&format!("CONNECT grpc.invalid:{} HTTP/1.1", b.grpc.port())), "{lines:?}");
    // The hyper server saw the absolute form too, i.e. the request came through the proxy.
    assert!(b.rw.requests().iter().all(|r| r.path == "/api/v1/write"));
}

#[test]
fn no_proxy_sends_directly_and_the_proxy_sees_nothing() {
    let (proxy, seen) = proxy();
    let b = Backends::start();
    let url = format!("http://{proxy}");
    // Directly, `*.invalid` cannot be resolved: the agent retries, naming the hosts.
    let env = [("HTTP_PROXY", url.clone()), ("HTTPS_PROXY", url), ("NO_PROXY", "example.com, .invalid".to_string())];
    let start = std::time::Instant::now();
    let err = run(&b.config(""), &env, || start.elapsed() > Duration::from_secs(3));
    assert_eq!(first_lines(&seen), Vec::<String>::new(), "nothing went through the proxy");
    for host in ["rw.invalid", "otlp.invalid"] {
        assert!(err.contains(host), "a direct attempt to {host} failed; stderr:\n{err}");
    }
    assert!(!b.all_received());
}

#[test]
fn a_proxy_url_wins_over_the_environment_sends_its_credentials_and_its_password_is_never_printed() {
    let (proxy, seen) = proxy();
    let b = Backends::start();
    // The environment names a proxy that is down; the config's proxy_url is used instead.
    let dead = format!("http://{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap());
    let extra = format!("    proxy_url: http://agent:hunter2@{proxy}\n");
    let cfg = b.config(&extra);
    let err = run(&cfg, &[("HTTP_PROXY", dead.clone()), ("HTTPS_PROXY", dead)], || b.all_received());
    assert!(b.all_received(), "stderr:\n{err}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.iter().all(|(_, auth)| auth.as_deref() == Some("Basic YWdlbnQ6aHVudGVyMg==")), "agent:hunter2 on every proxied connection: {seen:?}");
    assert!(!err.contains("hunter2"));

    let out = agent().arg("-c").arg(&cfg).arg("--check-config").output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains(&format!("http://agent:<redacted>@{proxy}")) && !printed.contains("hunter2"), "{printed}");
}

#[test]
fn a_proxy_url_with_a_bad_scheme_or_port_is_a_config_error_naming_the_key() {
    let b = Backends::start();
    for (proxy_url, want) in [("socks5://proxy:1080", "scheme"), ("http://u:hunter2@proxy:70000", "65535")] {
        let cfg = b.config(&format!("    proxy_url: {proxy_url}\n"));
        let out = agent().arg("-c").arg(&cfg).arg("--check-config").output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains("proxy_url") && text.contains(want) && !text.contains("hunter2"), "{text}");
    }
}
