//! The OTLP exporter, run in the real agent binary, against in-process receivers: a tonic
//! `MetricsService` server built from opentelemetry-proto's generated stub (plain, TLS and
//! mTLS with rcgen certificates) and an HTTP `/v1/metrics` server. Also checks the Collector
//! configurations in otel-collector-config/ and the example that ships to them.

mod common;

use common::grpc::{ok, Got, Receiver};
use common::*;
use flate2::read::GzDecoder;
use metricsd::exporters::otlp::status_details_with_retry_info;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint};
use prost::Message as _;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Code, Status};

impl Got {
    /// The collection time of the batch (every point of a batch carries the same one).
    fn batch_time(&self) -> u64 {
        batch_time(&self.request)
    }
}

// ---------------------------------------------------------------- running the agent

/// A config with a stdout exporter (JSON, one line per batch, to count batches) and the
/// exporter given; collection every 200 ms.
fn config(dir: &tempfile::TempDir, exporter_yaml: &str, server_yaml: &str) -> PathBuf {
    let p = dir.path().join("c.yaml");
    let server = if server_yaml.is_empty() { "server:\n  enabled: false\n".to_string() } else { server_yaml.to_string() };
    std::fs::write(&p, format!("{server}shutdown_timeout: 3s\ncollector:\n  interval: 200ms\nexporters:\n  - type: stdout\n    format: json\n{exporter_yaml}"))
        .unwrap();
    p
}

fn start_agent(cfg: &Path) -> Running {
    Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(cfg);
        c
    })
}

/// Runs the agent for `secs`, stops it with SIGTERM; returns (batches printed by stdout, stderr).
fn run_for(cfg: &Path, secs: f64) -> (usize, String) {
    let agent = start_agent(cfg);
    std::thread::sleep(Duration::from_secs_f64(secs));
    agent.signal(libc::SIGTERM);
    let (code, out, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    (out.lines().filter(|l| l.starts_with('{')).count(), err)
}

fn otlp(endpoint: &str, extra: &str) -> String {
    format!("  - type: otlp\n    endpoint: {endpoint}\n{extra}")
}

/// Fast retries so a test sees several attempts in a second.
const FAST_RETRY: &str = "    retry: {initial_interval: 50ms, max_interval: 100ms}\n";
/// Fast retries, with room for a server's delay of a second or two (a server's delay is capped
/// at `max_interval`).
const FAST_RETRY_HONOURING_SERVER: &str = "    retry: {initial_interval: 50ms, max_interval: 5s}\n";

// ---------------------------------------------------------------- reading requests

fn batch_time(req: &ExportMetricsServiceRequest) -> u64 {
    metrics(req)
        .iter()
        .find_map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.first().map(|p| p.time_unix_nano),
            Some(Data::Sum(s)) => s.data_points.first().map(|p| p.time_unix_nano),
            _ => None,
        })
        .expect("a number point")
}

fn metrics(req: &ExportMetricsServiceRequest) -> Vec<&Metric> {
    req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).collect()
}

fn metric<'a>(req: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    metrics(req).into_iter().find(|m| m.name == name)
}

fn resource_attr(req: &ExportMetricsServiceRequest, key: &str) -> Option<String> {
    let r = req.resource_metrics.first()?.resource.as_ref()?;
    r.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

fn point_attr(p: &NumberDataPoint, key: &str) -> Option<String> {
    p.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    })
}

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(Value::AsInt(i)) => i as f64,
        Some(Value::AsDouble(d)) => d,
        None => f64::NAN,
    }
}

/// What every host batch must carry, whatever its temporality.
fn check_host_batch(req: &ExportMetricsServiceRequest) {
    assert!(!resource_attr(req, "host.name").unwrap_or_default().is_empty(), "host.name");
    assert_eq!(resource_attr(req, "service.name").as_deref(), Some("metricsd"));
    let usage = metric(req, "system.memory.usage").expect("system.memory.usage");
    assert_eq!(usage.unit, "By");
    let Some(Data::Sum(s)) = &usage.data else { panic!("system.memory.usage is an up-down counter (sum)") };
    assert!(!s.is_monotonic);
    assert_eq!(s.aggregation_temporality, 2, "up-down counters stay cumulative");
    let used = s.data_points.iter().find(|p| point_attr(p, "system.memory.state").as_deref() == Some("used")).expect("state=used");
    let used = number(used);
    assert!(used > 1e6 && used < 1e15, "used memory {used}");
    let util = metric(req, "system.memory.utilization").expect("system.memory.utilization");
    assert_eq!(util.unit, "1");
    let Some(Data::Gauge(g)) = &util.data else { panic!("utilization is a gauge") };
    for p in &g.data_points {
        let v = number(p);
        assert!((0.0..=1.0).contains(&v), "a ratio, not a percent: {v}");
    }
}

// ---------------------------------------------------------------- gRPC

#[test]
fn grpc_delivers_resource_names_units_and_cumulative_values_gzip_compressed_with_headers_as_metadata() {
    let rx = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), "    headers: {x-tenant: team-a, Authorization: Bearer t0ken}\n"), "");
    let (batches, err) = run_for(&cfg, 1.3);
    let got = rx.got();
    assert!(got.len() >= 2, "{} requests; stderr:\n{err}", got.len());
    assert_eq!(got.len(), batches, "one request per batch");
    for g in &got {
        assert_eq!(g.metadata.get("grpc-encoding").map(String::as_str), Some("gzip"));
        assert_eq!(g.metadata.get("x-tenant").map(String::as_str), Some("team-a"));
        assert_eq!(g.metadata.get("authorization").map(String::as_str), Some("Bearer t0ken"));
        assert!(g.metadata.get("user-agent").is_some_and(|u| u.starts_with("metricsd/")), "{:?}", g.metadata.get("user-agent"));
        check_host_batch(&g.request);
        for m in metrics(&g.request) {
            if let Some(Data::Sum(s)) = &m.data {
                assert_eq!(s.aggregation_temporality, 2, "{} is cumulative", m.name);
            }
        }
    }
    let times: Vec<u64> = got.iter().map(Got::batch_time).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "batches in order: {times:?}");
}

#[test]
fn one_http2_connection_carries_every_grpc_export_of_every_compression() {
    for compression in ["gzip", "zstd", "none"] {
        let rx = Receiver::ok();
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), &format!("    compression: {compression}\n")), "");
        let (batches, err) = run_for(&cfg, 1.3);
        let got = rx.got();
        assert!(got.len() >= 3, "{compression}: {} requests; stderr:\n{err}", got.len());
        assert_eq!(got.len(), batches, "{compression}: one request per batch");
        got.iter().for_each(|g| check_host_batch(&g.request));
        assert_eq!(rx.connections(), 1, "{compression}: {} exports over {} connections", got.len(), rx.connections());
    }
}

#[test]
fn zstd_compression_arrives_as_grpc_encoding_zstd() {
    let rx = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), "    compression: zstd\n"), "");
    run_for(&cfg, 0.8);
    let got = rx.got();
    assert!(!got.is_empty());
    for g in &got {
        assert_eq!(g.metadata.get("grpc-encoding").map(String::as_str), Some("zstd"));
        check_host_batch(&g.request);
    }
}

#[test]
fn delta_temporality_sends_counters_as_differences_and_keeps_up_down_counters_cumulative() {
    let rx = Receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), "    temporality: delta\n"), "");
    run_for(&cfg, 1.5);
    let got = rx.got();
    assert!(got.len() >= 3, "{} requests", got.len());
    // series → (start, time) of its points, request by request
    let mut last_time: BTreeMap<String, u64> = BTreeMap::new();
    let mut delta_points = 0;
    for g in &got {
        check_host_batch(&g.request);
        for m in metrics(&g.request) {
            match &m.data {
                Some(Data::Sum(s)) if s.is_monotonic => {
                    assert_eq!(s.aggregation_temporality, 1, "{} is delta", m.name);
                    for p in &s.data_points {
                        // Attribute order inside a point is not stable: sort for the key.
                        let mut attrs: Vec<String> = p.attributes.iter().map(|a| format!("{a:?}")).collect();
                        attrs.sort();
                        let key = format!("{}{:?}", m.name, attrs);
                        if let Some(prev) = last_time.get(&key) {
                            assert_eq!(p.start_time_unix_nano, *prev, "{key}: a delta starts where the previous one ended");
                        }
                        assert!(p.start_time_unix_nano < p.time_unix_nano);
                        assert!(number(p) >= 0.0, "{key}: {p:?}");
                        last_time.insert(key, p.time_unix_nano);
                        delta_points += 1;
                    }
                }
                Some(Data::Sum(s)) => assert_eq!(s.aggregation_temporality, 2, "{} (up-down) stays cumulative", m.name),
                Some(Data::Histogram(h)) => assert_eq!(h.aggregation_temporality, 1, "{}", m.name),
                _ => {}
            }
        }
    }
    if delta_points == 0 {
        // The delta arithmetic itself is covered by the unit tests in src/pipeline/delta.rs.
        eprintln!("NOTE: the agent collected no monotonic counter; only the cumulative up-down counters were checked");
    }
}

#[test]
fn unavailable_is_retried_until_delivered_and_no_batch_is_lost() {
    let rx = Receiver::start(None, |n| if n < 3 { (Err(Status::unavailable("warming up")), Duration::ZERO) } else { ok() });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), FAST_RETRY), "");
    let (batches, err) = run_for(&cfg, 1.5);
    let got = rx.got();
    assert!(got.len() >= 5, "{} requests", got.len());
    let first = got[0].batch_time();
    assert!(got[..4].iter().all(|g| g.batch_time() == first), "the first batch is re-sent until accepted");
    let delivered: Vec<u64> = got[3..].iter().map(Got::batch_time).collect();
    assert!(delivered.windows(2).all(|w| w[0] < w[1]), "each batch once, in order: {delivered:?}");
    assert_eq!(delivered.len(), batches, "every collected batch delivered; stderr:\n{err}");
    assert!(err.contains("UNAVAILABLE"), "{err}");
}

#[test]
fn invalid_argument_is_dropped_without_retrying() {
    let rx = Receiver::start(None, |_| (Err(Status::invalid_argument("bad metric")), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), FAST_RETRY), "");
    let (batches, err) = run_for(&cfg, 1.0);
    let times: Vec<u64> = rx.got().iter().map(Got::batch_time).collect();
    let distinct: BTreeSet<u64> = times.iter().copied().collect();
    assert_eq!(distinct.len(), times.len(), "no batch sent twice: {times:?}");
    assert_eq!(times.len(), batches);
    assert!(err.contains("INVALID_ARGUMENT") && err.contains("not retryable"), "{err}");
}

#[test]
fn a_hanging_server_runs_into_the_timeout_and_the_batch_is_sent_again() {
    let rx = Receiver::start(None, |n| if n == 0 { (Ok(ExportMetricsServiceResponse::default()), Duration::from_secs(30)) } else { ok() });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), &format!("    timeout: 300ms\n{FAST_RETRY}")), "");
    run_for(&cfg, 1.5);
    let got = rx.got();
    assert!(got.len() >= 2, "{} requests", got.len());
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(300) && gap < Duration::from_secs(3), "retried after {gap:?}");
    assert_eq!(got[1].batch_time(), got[0].batch_time(), "the timed-out batch is the one re-sent");
}

#[test]
fn resource_exhausted_with_retry_info_is_retried_after_the_delay_it_asks_for() {
    let rx = Receiver::start(None, |n| {
        if n == 0 {
            let details = status_details_with_retry_info(Code::ResourceExhausted as i32, "slow down", Duration::from_millis(1200));
            (Err(Status::with_details(Code::ResourceExhausted, "slow down", details.into())), Duration::ZERO)
        } else {
            ok()
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), FAST_RETRY_HONOURING_SERVER), "");
    run_for(&cfg, 2.2);
    let got = rx.got();
    assert!(got.len() >= 2, "{} requests", got.len());
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(1200) && gap < Duration::from_secs(3), "retried after {gap:?}, not the 50 ms backoff");
    assert_eq!(got[1].batch_time(), got[0].batch_time());
}

#[test]
fn resource_exhausted_without_retry_info_is_dropped() {
    let rx = Receiver::start(None, |_| (Err(Status::resource_exhausted("quota exceeded")), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", rx.addr), FAST_RETRY), "");
    let (batches, err) = run_for(&cfg, 1.0);
    let times: Vec<u64> = rx.got().iter().map(Got::batch_time).collect();
    let distinct: BTreeSet<u64> = times.iter().copied().collect();
    assert_eq!(distinct.len(), times.len(), "no batch sent twice: {times:?}");
    assert_eq!(times.len(), batches);
    assert!(err.contains("RESOURCE_EXHAUSTED"), "{err}");
}

// ---------------------------------------------------------------- HTTP/protobuf

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(b).read_to_end(&mut out).expect("gzip body");
    out
}

#[test]
fn http_protobuf_posts_gzip_protobuf_to_v1_metrics_with_the_headers() {
    let sink = Sink::start(|_, _| (200, vec![("content-type".into(), "application/x-protobuf".into())], String::new(), Duration::ZERO));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &otlp(&format!("http://{}", sink.addr), "    protocol: http/protobuf\n    headers: {x-tenant: team-b}\n"), "");
    let (batches, _) = run_for(&cfg, 1.0);
    let reqs = sink.requests();
    assert!(!reqs.is_empty());
    assert_eq!(reqs.len(), batches);
    for r in &reqs {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/metrics"));
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("x-tenant"), Some("team-b"));
        let req = ExportMetricsServiceRequest::decode(gunzip(&r.body).as_slice()).expect("protobuf body");
        check_host_batch(&req);
    }
}

#[test]
fn http_protobuf_retries_a_503_after_retry_after_and_drops_a_400() {
    let sink = Sink::start(|n, _| match n {
        0 => (503, vec![("retry-after".into(), "1".into())], "busy".into(), Duration::ZERO),
        1 => (400, vec![], "bad request".into(), Duration::ZERO),
        _ => (200, vec![], String::new(), Duration::ZERO),
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        &otlp(&format!("http://{}/otlp/v1/metrics", sink.addr), &format!("    protocol: http/protobuf\n    compression: none\n{FAST_RETRY_HONOURING_SERVER}")),
        "",
    );
    let (_, err) = run_for(&cfg, 1.8);
    let reqs = sink.requests();
    assert!(reqs.len() >= 3, "{} requests", reqs.len());
    assert_eq!(reqs[0].path, "/otlp/v1/metrics", "a path in the endpoint is used as is");
    assert_eq!(reqs[0].header("content-encoding"), None);
    assert_eq!(reqs[1].body, reqs[0].body, "the 503 is retried");
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_secs(1), "after Retry-After, not the backoff: {gap:?}");
    assert_ne!(reqs[2].body, reqs[1].body, "the 400 is not retried");
    assert!(err.contains("HTTP 400"), "{err}");
}

// ---------------------------------------------------------------- TLS

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    server_cert: String,
    server_key: String,
}

fn ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    rcgen::CertifiedIssuer::self_signed(p, rcgen::KeyPair::generate().unwrap()).unwrap()
}

fn leaf(issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, sans: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, "metricsd otlp test");
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// A CA, a server certificate for localhost / 127.0.0.1, a client certificate, and a
    /// second CA that signed nothing here; files ca.pem, other-ca.pem, client.pem, client.key.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca1 = ca("metricsd test CA");
        let ca2 = ca("some other CA");
        let (server_cert, server_key) = leaf(&ca1, &["localhost", "127.0.0.1"], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf(&ca1, &[], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        std::fs::write(dir.path().join("ca.pem"), ca1.pem()).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), ca2.pem()).unwrap();
        std::fs::write(dir.path().join("client.pem"), client_cert).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key).unwrap();
        Pki { ca_pem: ca1.pem(), server_cert, server_key, dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn server(&self, require_client_cert: bool) -> ServerTlsConfig {
        let t = ServerTlsConfig::new().identity(Identity::from_pem(&self.server_cert, &self.server_key));
        if require_client_cert {
            t.client_ca_root(Certificate::from_pem(&self.ca_pem))
        } else {
            t
        }
    }
}

#[test]
fn tls_with_a_ca_file_delivers_and_server_name_replaces_the_url_host() {
    let pki = Pki::new();
    let rx = Receiver::start(Some(pki.server(false)), |_| ok());
    let dir = tempfile::tempdir().unwrap();
    // The URL names an IP address; the certificate is checked against `server_name`.
    let extra = format!("    tls: {{ca_file: {}, server_name: localhost}}\n", pki.file("ca.pem"));
    let cfg = config(&dir, &otlp(&format!("https://127.0.0.1:{}", rx.addr.port()), &extra), "");
    let (_, err) = run_for(&cfg, 1.0);
    let got = rx.got();
    assert!(!got.is_empty(), "nothing delivered over TLS; stderr:\n{err}");
    assert_eq!(got[0].peer_certs, 0);
    check_host_batch(&got[0].request);
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let pki = Pki::new();
    let rx = Receiver::start(Some(pki.server(true)), |_| ok());
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "    compression: zstd\n    tls: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
        pki.file("ca.pem"),
        pki.file("client.pem"),
        pki.file("client.key")
    );
    let cfg = config(&dir, &otlp(&format!("https://localhost:{}", rx.addr.port()), &extra), "");
    let (_, err) = run_for(&cfg, 1.0);
    let got = rx.got();
    assert!(!got.is_empty(), "nothing delivered over mTLS; stderr:\n{err}");
    assert!(got.iter().all(|g| g.peer_certs == 1), "the client certificate reached the server");
    assert_eq!(got[0].metadata.get("grpc-encoding").map(String::as_str), Some("zstd"));
}

/// Runs the agent with the HTTP server on, until `/status` shows an error for the otlp
/// exporter; returns it.
fn otlp_error_on_status(exporter_yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(&dir, exporter_yaml, &format!("server:\n  host: 127.0.0.1\n  port: {port}\n"));
    let agent = start_agent(&cfg);
    let addr = format!("127.0.0.1:{port}");
    let error = eventually(Duration::from_secs(10), || {
        let (_, body) = http_get(&addr, "/status")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let e = v["exporters"].as_array()?.iter().find(|e| e["name"].as_str().is_some_and(|n| n.starts_with("otlp")))?.clone();
        assert!(e["last_success"].is_null(), "{e}");
        e["last_error"].as_str().map(str::to_string)
    });
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    error.unwrap_or_else(|| panic!("no error on /status; stderr:\n{err}"))
}

#[test]
fn a_server_certificate_from_another_ca_is_refused_and_the_error_shows_on_status() {
    let pki = Pki::new();
    let rx = Receiver::start(Some(pki.server(false)), |_| ok());
    let extra = format!("{FAST_RETRY}    tls: {{ca_file: {}}}\n", pki.file("other-ca.pem"));
    let error = otlp_error_on_status(&otlp(&format!("https://localhost:{}", rx.addr.port()), &extra));
    assert!(error.contains("UNAVAILABLE") && error.contains("UnknownIssuer"), "{error}");
    assert!(rx.got().is_empty());
}

#[test]
fn a_server_name_the_certificate_does_not_cover_is_refused() {
    let pki = Pki::new();
    let rx = Receiver::start(Some(pki.server(false)), |_| ok());
    let extra = format!("{FAST_RETRY}    tls: {{ca_file: {}, server_name: collector.example.com}}\n", pki.file("ca.pem"));
    let error = otlp_error_on_status(&otlp(&format!("https://127.0.0.1:{}", rx.addr.port()), &extra));
    assert!(error.contains("not valid for name") || error.contains("NotValidForName"), "{error}");
    assert!(rx.got().is_empty());
}

// ---------------------------------------------------------------- Collector configs

fn keys(v: &serde_yaml_ng::Value) -> BTreeSet<String> {
    v.as_mapping().map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

#[test]
fn collector_configs_define_every_component_their_pipelines_use() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("otel-collector-config");
    let mut checked = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let defined = |section: &str| keys(&doc[section]);
        let pipelines = doc["service"]["pipelines"].as_mapping().unwrap_or_else(|| panic!("{name}: service.pipelines"));
        assert!(pipelines.contains_key("metrics"), "{name}: a metrics pipeline");
        for (pname, pipeline) in pipelines {
            for section in ["receivers", "processors", "exporters"] {
                let used: Vec<String> =
                    pipeline[section].as_sequence().map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
                if section != "processors" {
                    assert!(!used.is_empty(), "{name}: pipeline {pname:?} has no {section}");
                }
                for id in &used {
                    assert!(defined(section).contains(id), "{name}: pipeline {pname:?} uses {section} {id:?}, which is not defined");
                }
            }
        }
        let metrics = &doc["service"]["pipelines"]["metrics"];
        let processors: Vec<&str> = metrics["processors"].as_sequence().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(processors.first().copied(), Some("memory_limiter"), "{name}: memory_limiter comes first");
        assert!(processors.contains(&"batch"), "{name}");
        let exporters = defined("exporters");
        assert!(exporters.contains("prometheusremotewrite") && exporters.contains("debug"), "{name}: {exporters:?}");
        let grpc = &doc["receivers"]["otlp"]["protocols"]["grpc"];
        assert!(grpc["endpoint"].as_str().is_some_and(|e| e.ends_with(":4317")), "{name}: OTLP gRPC on 4317");
        if name.contains("mtls") {
            for k in ["cert_file", "key_file", "client_ca_file"] {
                assert!(grpc["tls"][k].as_str().is_some(), "{name}: receivers.otlp.protocols.grpc.tls.{k}");
            }
        }
        checked.push(name);
    }
    checked.sort();
    assert_eq!(checked, vec!["gateway-mtls.yaml", "gateway.yaml"]);
}

#[test]
fn the_collector_example_ships_otlp_grpc_to_the_gateway_port() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/otel-collector.yaml");
    let c = metricsd::config::Config::load(&p).unwrap();
    let errors: Vec<String> = c.validate().iter().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let otlp = c.exporters.iter().find_map(|e| match e {
        metricsd::exporters::ExporterConfig::Otlp(o) => Some(o),
        _ => None,
    });
    let otlp = otlp.expect("an otlp exporter");
    assert_eq!(otlp.protocol(), metricsd::exporters::otlp::Protocol::Grpc);
    assert!(otlp.target().unwrap().uri.port_u16() == Some(4317));
}
