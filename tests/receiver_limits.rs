//! The OTLP receiver's limits and guards against a running agent: an oversized request, a gzip
//! bomb, malformed protobuf and JSON each get the documented status over HTTP and gRPC and the
//! agent goes on collecting; TLS, mutual TLS and the bearer token accept and refuse as
//! configured; listening beyond loopback without TLS is refused by `--check-config`.

mod common;

use bytes::Bytes;
use common::grpc;
use common::*;
use http_body_util::{BodyExt, Full};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const GRPC_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

fn write_config(dir: &tempfile::TempDir, body: &str) -> PathBuf {
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

fn start(cfg: &std::path::Path, ports: &[u16]) -> Running {
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(cfg);
        c
    });
    for port in ports {
        eventually(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", *port)).ok()).expect("the receiver listens");
    }
    agent
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// POSTs to the HTTP receiver; returns the status and the body.
async fn post(port: u16, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = hyper::Request::post(format!("http://127.0.0.1:{port}/v1/metrics"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.expect("the receiver answers");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends one raw gRPC message (flag, declared length, bytes) over HTTP/2; returns grpc-status.
async fn grpc_raw(port: u16, compressed: bool, declared_len: u32, payload: Vec<u8>) -> (i32, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build_http::<Full<Bytes>>();
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&declared_len.to_be_bytes());
    frame.extend_from_slice(&payload);
    let mut req = hyper::Request::post(format!("http://127.0.0.1:{port}{GRPC_PATH}")).header("content-type", "application/grpc").header("te", "trailers");
    if compressed {
        req = req.header("grpc-encoding", "gzip");
    }
    let resp = client.request(req.body(Full::new(Bytes::from(frame))).unwrap()).await.expect("the receiver answers");
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let get = |k: &str| headers.get(k).or_else(|| trailers.get(k)).and_then(|v| v.to_str().ok()).map(str::to_string);
    (get("grpc-status").and_then(|s| s.parse().ok()).unwrap_or(-1), get("grpc-message").unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bombs_and_malformed_requests_get_the_documented_status_and_the_agent_keeps_collecting() {
    let downstream = grpc::Receiver::ok();
    let (g, h, s) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &format!(
            "server: {{host: 127.0.0.1, port: {s}}}\nshutdown_timeout: 3s\ncollector: {{interval: 300ms}}\nreceivers:\n  otlp:\n    max_decompressed_size: 1MiB\n    protocols:\n      \
             grpc: {{endpoint: '127.0.0.1:{g}', max_recv_msg_size_mib: 1}}\n      http: {{endpoint: '127.0.0.1:{h}', max_request_body_size: 64KiB}}\nexporters:\n  - type: otlp\n    endpoint: http://{}\n",
            downstream.addr
        ),
    );
    let agent = start(&cfg, &[g, h]);
    let pb = [("content-type", "application/x-protobuf")];
    let json = [("content-type", "application/json")];
    // 100 KB sent where 64 KiB is the limit.
    assert_eq!(post(h, &pb, vec![0u8; 100_000]).await.0, 413);
    // 64 MiB of zeros in ~64 KB of gzip, where 1 MiB is the decompressed limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 64 << 10, "the bomb fits the body limit: {}", bomb.len());
    let (status, msg) = post(h, &[pb[0], ("content-encoding", "gzip")], bomb.clone()).await;
    assert_eq!(status, 413, "{msg}");
    let (status, msg) = post(h, &pb, vec![0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(status, 400);
    assert!(msg.contains("malformed protobuf"), "{msg}");
    let (status, msg) = post(h, &json, br#"{"resourceMetrics": [{"scopeMetrics": 7}]}"#.to_vec()).await;
    assert_eq!(status, 400);
    assert!(msg.contains("malformed JSON") && msg.contains("scopeMetrics") || msg.contains("invalid type"), "{msg}");
    assert_eq!(post(h, &[("content-type", "text/plain")], b"x".to_vec()).await.0, 415);
    let (status, msg) = post(h, &json, br#"{"resourceMetrics": []}"#.to_vec()).await;
    assert_eq!((status, msg.as_str()), (200, "{}"), "an empty request is fine");

    // gRPC: a message declared over the limit, a bomb, garbage.
    let (code, msg) = grpc_raw(g, false, 2 << 20, vec![0u8; 2 << 20]).await;
    assert_eq!(code, 8, "RESOURCE_EXHAUSTED for an oversized message: {msg}");
    let (code, msg) = grpc_raw(g, true, bomb.len() as u32, bomb).await;
    assert_eq!(code, 8, "RESOURCE_EXHAUSTED for a bomb: {msg}");
    let (code, msg) = grpc_raw(g, false, 4, vec![0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(code, 3, "INVALID_ARGUMENT for a malformed message: {msg}");

    // Partial success: a NaN in a counter and a metric without a name are dropped and said so.
    {
        use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
        use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum};
        let point = |v: f64| NumberDataPoint { value: Some(Value::AsDouble(v)), time_unix_nano: 1, ..Default::default() };
        let sum = |name: &str, values: &[f64]| Metric {
            name: name.into(),
            data: Some(Data::Sum(Sum { data_points: values.iter().map(|v| point(*v)).collect(), aggregation_temporality: 2, is_monotonic: true })),
            ..Default::default()
        };
        let req = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics: vec![sum("app.ok", &[1.0, f64::NAN]), sum("", &[2.0])], ..Default::default() }],
                ..Default::default()
            }],
        };
        let mut client = MetricsServiceClient::connect(format!("http://127.0.0.1:{g}")).await.unwrap();
        let answer = client.export(req).await.expect("taken").into_inner();
        let partial = answer.partial_success.expect("a partial success");
        assert_eq!(partial.rejected_data_points, 2);
        assert!(partial.error_message.contains("NaN") && partial.error_message.contains("without a name"), "{}", partial.error_message);
        eventually(Duration::from_secs(10), || {
            downstream
                .got()
                .iter()
                .flat_map(|g| &g.request.resource_metrics)
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .find(|m| m.name == "app.ok")
                .cloned()
        })
        .expect("the valid point goes on");
    }

    // Still collecting: host batches keep reaching the downstream.
    let seen = downstream.got().len();
    eventually(Duration::from_secs(10), || (downstream.got().len() >= seen + 2).then_some(())).expect("host batches go on");
    let (_, status) = http_get(&format!("127.0.0.1:{s}"), "/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let r = &status["receiver"]["requests"];
    assert_eq!(
        (r["too_large"].as_u64(), r["malformed"].as_u64(), r["unsupported"].as_u64(), r["accepted"].as_u64()),
        (Some(4), Some(3), Some(1), Some(1)),
        "{r}"
    );
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err.matches("malformed protobuf").count(), 1, "a distinct refusal is logged once: {err}");
}

/// A test CA with a server certificate for 127.0.0.1/localhost and a client certificate.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "receiver test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let leaf = |sans: &[&str], usage| {
        let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        (p.signed_by(&key, &ca).unwrap().pem(), key.serialize_pem())
    };
    Pki { server: leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth), client: leaf(&[], ExtendedKeyUsagePurpose::ClientAuth), ca: ca.pem() }
}

/// POSTs JSON over HTTPS (trusting `ca`) with an optional bearer token; returns the status.
async fn https_post(port: u16, ca: &str, token: Option<&str>, body: &[u8]) -> Option<u16> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)).connect(name, tcp).await.ok()?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.ok()?;
    tokio::spawn(conn);
    let mut req = hyper::Request::post("/v1/metrics").header("host", "localhost").header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = send.send_request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.ok()?;
    Some(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mutual_tls_and_the_bearer_token_accept_the_right_client_and_refuse_the_others() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let (ca, cert, key) = (file("ca.pem", &pki.ca), file("server.pem", &pki.server.0), file("server.key", &pki.server.1));
    let (g, h) = (free_port(), free_port());
    let cfg = write_config(
        &dir,
        &format!(
            "server: {{enabled: false}}\nshutdown_timeout: 3s\nreceivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: '127.0.0.1:{g}'\n        \
             tls: {{cert_file: {cert}, key_file: {key}, client_ca_file: {ca}}}\n        auth: {{bearer_token: s3cret-token}}\n      \
             http:\n        endpoint: '127.0.0.1:{h}'\n        tls: {{cert_file: {cert}, key_file: {key}}}\n        auth: {{bearer_token: s3cret-token}}\n"
        ),
    );
    let agent = start(&cfg, &[g, h]);
    // HTTPS with the token, without it, and plain HTTP to the TLS port.
    let json = br#"{"resourceMetrics":[]}"#;
    assert_eq!(https_post(h, &pki.ca, Some("s3cret-token"), json).await, Some(200));
    assert_eq!(https_post(h, &pki.ca, Some("wrong"), json).await, Some(401));
    assert_eq!(https_post(h, &pki.ca, None, json).await, Some(401));
    let plain = tokio::time::timeout(Duration::from_secs(5), post(h, &[("content-type", "application/json")], json.to_vec()));
    assert!(matches!(tokio::spawn(plain).await, Err(_) | Ok(Err(_))), "plain HTTP to the TLS port gets no answer");
    let tls = |with_client_cert: bool| {
        let t = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca)).domain_name("localhost");
        if with_client_cert {
            t.identity(Identity::from_pem(&pki.client.0, &pki.client.1))
        } else {
            t
        }
    };
    let export = |channel: Channel, token: Option<&'static str>| async move {
        let mut req = tonic::Request::new(ExportMetricsServiceRequest::default());
        if let Some(t) = token {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        MetricsServiceClient::new(channel).export(req).await
    };
    let url = format!("https://127.0.0.1:{g}");
    let channel = Channel::from_shared(url.clone()).unwrap().tls_config(tls(true)).unwrap().connect().await.expect("mutual TLS handshake");
    export(channel.clone(), Some("s3cret-token")).await.expect("the right client with the right token is accepted");
    let st = export(channel.clone(), Some("wrong")).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    assert_eq!(export(channel, None).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    // Without a client certificate the handshake (or the first call) fails.
    let refused = match Channel::from_shared(url.clone()).unwrap().tls_config(tls(false)).unwrap().connect().await {
        Ok(ch) => export(ch, Some("s3cret-token")).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate is refused");
    // Plain text to a TLS listener gets nothing.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{g}")).unwrap().connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(3));
    let plain_refused = match plain.connect().await {
        Ok(ch) => export(ch, Some("s3cret-token")).await.is_err(),
        Err(_) => true,
    };
    assert!(plain_refused);
    agent.signal(libc::SIGTERM);
    let (code, out, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("s3cret-token") && !err.contains("s3cret-token"), "the token is never logged");
}

#[test]
fn check_config_refuses_listening_beyond_loopback_without_tls_and_redacts_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let run = |yaml: &str| {
        let cfg = write_config(&dir, yaml);
        let out = agent().arg("--check-config").arg("-c").arg(&cfg).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, _, err) = run("receivers:\n  otlp:\n    protocols:\n      http: {endpoint: '0.0.0.0:4318'}\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("receivers.otlp.protocols.http") && err.contains("insecure: true"), "{err}");
    let (code, out, err) = run("receivers:\n  otlp:\n    protocols:\n      http: {endpoint: '0.0.0.0:4318', insecure: true, auth: {bearer_token: hush-42}}\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"receivers\"") && !out.contains("hush-42") && out.contains("<redacted>"), "{out}");
    let (code, _, err) = run("receivers:\n  otlp:\n    protocols:\n      grpc: {endpont: x}\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("endpont"), "{err}");
}
