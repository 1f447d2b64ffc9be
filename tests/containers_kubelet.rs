//! The containers collector against a kubelet stand-in over TLS (rcgen certificates): it
//! checks the bearer token and serves `/pods` in the kubelet's format
//! (tests/fixtures/containers/kubelet-pods.json). Names arrive off the tick; a wrong token, a
//! kubelet that is down and an answer that is not a Pod list each give one clear reason, and
//! the points keep flowing with pod UIDs and container IDs.

use metricsd::collectors::containers::config::KubeletConfig;
use metricsd::collectors::containers::kubelet::{Kubelet, KubeletError};
use metricsd::collectors::containers::{ContainersCollector, ContainersConfig};
use metricsd::collectors::{Collector, TickClock};
use metricsd::pipeline::meter::MeterProvider;
use metricsd::units::{ConfigDuration, HostPaths};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "good-token";
const UID: &str = "1b2c3d4e-0000-4111-8222-333344445555";
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/containers").join(name)
}

/// A kubelet stand-in on 127.0.0.1: `GET /pods` with `Authorization: Bearer good-token`
/// gets `body`, any other token 401. Stops when dropped.
struct KubeletStandIn {
    port: u16,
    ca_pem: String,
    requests: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeletStandIn {
    fn start(body: &'static str) -> Self {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "kubelet test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let certs = vec![leaf.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = &mut stopped => return,
                        a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    };
                    let (acceptor, seen) = (acceptor.clone(), seen.clone());
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        let mut head = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        seen.fetch_add(1, Ordering::SeqCst);
                        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                        let authorized = head.lines().any(|l| l.trim() == format!("authorization: bearer {TOKEN}"));
                        let (status, body) = match (head.starts_with("get /pods "), authorized) {
                            (true, true) => ("200 OK", body),
                            (_, false) => ("401 Unauthorized", "Unauthorized"),
                            (false, true) => ("404 Not Found", "404 page not found"),
                        };
                        let answer =
                            format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                        let _ = tls.write_all(answer.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        });
        KubeletStandIn { port, ca_pem: ca.pem(), requests, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for KubeletStandIn {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pods_body() -> &'static str {
    Box::leak(std::fs::read_to_string(fixture("kubelet-pods.json")).unwrap().into_boxed_str())
}

/// Token and CA files, and a kubelet config for `port`.
fn kubelet_config(dir: &tempfile::TempDir, port: u16, ca_pem: &str, token: &str) -> KubeletConfig {
    let (token_path, ca_path) = (dir.path().join("token"), dir.path().join("ca.crt"));
    std::fs::File::create(&token_path).unwrap().write_all(format!("{token}\n").as_bytes()).unwrap();
    std::fs::write(&ca_path, ca_pem).unwrap();
    KubeletConfig {
        enabled: Some(true),
        endpoint: Some(format!("https://127.0.0.1:{port}")),
        token_path: Some(token_path),
        ca_path: Some(ca_path),
        insecure_skip_verify: false,
        min_interval: Some(ConfigDuration(Duration::ZERO)),
    }
}

fn fetch(config: &KubeletConfig) -> Kubelet {
    let k = Kubelet::new(config, |_| None);
    k.refresh();
    k.wait(Duration::from_secs(20));
    assert!(!k.in_flight(), "the fetch ends within its time limit");
    k
}

#[test]
fn names_come_from_the_kubelet_with_the_token_checked_against_its_ca() {
    let kubelet = KubeletStandIn::start(pods_body());
    let dir = tempfile::tempdir().unwrap();
    let k = fetch(&kubelet_config(&dir, kubelet.port, &kubelet.ca_pem, TOKEN));
    assert_eq!(k.last_error(), None);
    let pod = k.pod(UID).expect("the pod's names");
    assert_eq!((pod.name.as_str(), pod.namespace.as_str(), pod.node.as_deref()), ("web-7d9f8b6c5-x2x9q", "shop", Some("node-1")));
    assert_eq!(pod.containers.get(ID).map(String::as_str), Some("nginx"));
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refused_token_an_unreachable_kubelet_and_a_bad_answer_each_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = KubeletStandIn::start(pods_body());
    let k = fetch(&kubelet_config(&dir, kubelet.port, &kubelet.ca_pem, "stale-token"));
    let e = k.last_error().expect("refused");
    assert!(matches!(e, KubeletError::Refused { status: 401, .. }), "{e}");
    assert!(e.to_string().contains("nodes/proxy"), "{e}");
    assert!(k.pod(UID).is_none());

    let bad = KubeletStandIn::start("{\"kind\":\"PodList\",\"items\":[{\"metadata\":");
    let e = fetch(&kubelet_config(&dir, bad.port, &bad.ca_pem, TOKEN)).last_error().expect("bad JSON");
    assert!(matches!(e, KubeletError::BadAnswer { .. }) && e.to_string().contains("not a Pod list"), "{e}");

    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = fetch(&kubelet_config(&dir, port, &kubelet.ca_pem, TOKEN)).last_error().expect("down");
    assert!(matches!(e, KubeletError::Unreachable { .. }) && e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");

    // A certificate from another CA is refused too (no silent fallback to no verification).
    let other = KubeletStandIn::start(pods_body());
    let e = fetch(&kubelet_config(&dir, other.port, &kubelet.ca_pem, TOKEN)).last_error().expect("untrusted");
    assert!(matches!(e, KubeletError::Unreachable { .. }), "{e}");
}

/// `(metric, attributes)` of every point collected.
type Points = Vec<(String, Vec<(String, String)>)>;

fn collect(provider: &MeterProvider) -> Points {
    let mut out = Vec::new();
    for sm in provider.collect(std::time::SystemTime::now()) {
        for m in sm.metrics {
            let points = match m.data {
                Some(Data::Gauge(g)) => g.data_points,
                Some(Data::Sum(s)) => s.data_points,
                _ => continue,
            };
            for p in points {
                let attrs = p
                    .attributes
                    .iter()
                    .map(|kv| {
                        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(AnyValue::StringValue(s)) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), v)
                    })
                    .collect();
                out.push((m.name.clone(), attrs));
            }
        }
    }
    out
}

fn attr<'a>(points: &'a Points, metric: &str, key: &str) -> Vec<&'a str> {
    points.iter().filter(|p| p.0 == metric).flat_map(|p| p.1.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str())).collect()
}

fn run_collector(config: KubeletConfig) -> (Points, Points) {
    let root = fixture("v2-systemd-node");
    let config = ContainersConfig { enabled: Some(true), root: Some(root.join("sys/fs/cgroup")), kubelet: config, ..Default::default() };
    let clock = TickClock::default();
    let mut c = ContainersCollector::new(&HostPaths::under(&root), &clock, &config, |_| None);
    let provider = MeterProvider::new();
    c.register(&provider.meter("t"));
    clock.advance();
    c.refresh().unwrap();
    let first = collect(&provider);
    c.kubelet().expect("kubelet enabled").wait(Duration::from_secs(20));
    clock.advance();
    c.refresh().unwrap();
    (first, collect(&provider))
}

#[test]
fn the_collector_asks_off_the_tick_and_names_its_points_from_the_next_tick_on() {
    let kubelet = KubeletStandIn::start(pods_body());
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = run_collector(kubelet_config(&dir, kubelet.port, &kubelet.ca_pem, TOKEN));
    assert_eq!(attr(&first, "k8s.pod.memory.usage", "k8s.pod.uid"), [UID], "points before the names arrive");
    assert_eq!(attr(&second, "k8s.pod.memory.usage", "k8s.pod.name"), ["web-7d9f8b6c5-x2x9q"]);
    assert_eq!(attr(&second, "k8s.pod.memory.usage", "k8s.namespace.name"), ["shop"]);
    assert_eq!(attr(&second, "k8s.pod.memory.usage", "k8s.node.name"), ["node-1"]);
    let mut names = attr(&second, "container.memory.usage", "k8s.container.name");
    names.sort_unstable();
    assert_eq!(names, ["migrate", "nginx"], "the init container's ID is in initContainerStatuses; Docker's is no pod's");
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), 1, "every pod known: no second fetch");
}

#[test]
fn a_pod_the_kubelet_does_not_list_stops_asking_after_two_answers() {
    // The kubelet answers a list without the fixture's pod (its cgroup lingers after deletion).
    let kubelet = KubeletStandIn::start(r#"{"kind":"PodList","apiVersion":"v1","items":[]}"#);
    let dir = tempfile::tempdir().unwrap();
    let root = fixture("v2-systemd-node");
    let config = ContainersConfig {
        enabled: Some(true),
        root: Some(root.join("sys/fs/cgroup")),
        kubelet: kubelet_config(&dir, kubelet.port, &kubelet.ca_pem, TOKEN),
        ..Default::default()
    };
    let clock = TickClock::default();
    let mut c = ContainersCollector::new(&HostPaths::under(&root), &clock, &config, |_| None);
    for _ in 0..5 {
        clock.advance();
        c.refresh().unwrap();
        c.kubelet().unwrap().wait(Duration::from_secs(20));
    }
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), 2, "asked twice, then no more");
}

#[test]
fn without_the_kubelet_points_still_flow_with_uids_and_ids() {
    let kubelet = KubeletStandIn::start(pods_body());
    let dir = tempfile::tempdir().unwrap();
    let (_, second) = run_collector(kubelet_config(&dir, kubelet.port, &kubelet.ca_pem, "wrong"));
    assert_eq!(attr(&second, "k8s.pod.memory.usage", "k8s.pod.uid"), [UID]);
    assert!(attr(&second, "k8s.pod.memory.usage", "k8s.pod.name").is_empty());
    assert_eq!(attr(&second, "container.memory.usage", "container.id").len(), 3);
}

#[test]
fn the_read_only_port_over_plain_http_gets_no_token() {
    use std::io::{BufRead as _, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(tcp.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push(line.to_ascii_lowercase());
        }
        let body = pods_body();
        let mut tcp = tcp;
        write!(tcp, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        head
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = kubelet_config(&dir, port, "", TOKEN);
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let k = fetch(&config);
    let head = server.join().unwrap();
    assert!(head[0].starts_with("get /pods "), "{head:?}");
    assert!(!head.iter().any(|h| h.starts_with("authorization")), "no token over plain http: {head:?}");
    assert_eq!(k.last_error(), None);
    assert_eq!(k.pod(UID).map(|p| p.name.clone()).as_deref(), Some("web-7d9f8b6c5-x2x9q"));
}
