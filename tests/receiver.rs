//! The OTLP receiver end to end: the official OpenTelemetry Rust SDK pushes a counter, a gauge
//! and a histogram over gRPC and over HTTP to the agent, which forwards them to a downstream
//! OTLP receiver and to a real Prometheus (remote-write); and a stuck downstream makes the
//! receiver push back with bounded memory. Limits, TLS and auth: tests/receiver_limits.rs.

mod common;

use common::grpc::{self, Got};
use common::*;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use std::path::PathBuf;
use std::time::Duration;

struct Ports {
    grpc: u16,
    http: u16,
    server: u16,
}

fn ports() -> Ports {
    Ports { grpc: free_port(), http: free_port(), server: free_port() }
}

/// The agent's config: both protocols, a config resource the apps lack, the exporters given.
fn config(dir: &tempfile::TempDir, p: &Ports, exporters: &str, extra: &str) -> PathBuf {
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        format!(
            "server: {{host: 127.0.0.1, port: {}}}\nshutdown_timeout: 3s\ncollector:\n  interval: 300ms\nresource: {{k8s.pod.name: pod-7}}\n\
             receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: '127.0.0.1:{}'}}\n      http: {{endpoint: '127.0.0.1:{}'}}\n{extra}exporters:\n{exporters}",
            p.server, p.grpc, p.http
        ),
    )
    .unwrap();
    path
}

fn start(cfg: &std::path::Path, p: &Ports) -> Running {
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(cfg);
        c
    });
    for port in [p.grpc, p.http] {
        eventually(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).ok()).expect("the receiver listens");
    }
    agent
}

fn stop(agent: Running) -> String {
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    err
}

/// Records a counter, a gauge and a histogram with the SDK and exports them once (flush).
fn push_with_sdk(exporter: opentelemetry_otlp::MetricExporter, service: &str) {
    let resource =
        opentelemetry_sdk::Resource::builder_empty().with_service_name(service.to_string()).with_attribute(KeyValue::new("host.name", "app-set-host")).build();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter).with_interval(Duration::from_secs(3600)).build())
        .with_resource(resource)
        .build();
    let meter = provider.meter("receiver-test");
    let route = [KeyValue::new("route", "/checkout")];
    meter.u64_counter("app.jobs").with_unit("{job}").build().add(5, &route);
    meter.f64_gauge("app.temperature").with_unit("Cel").build().record(21.5, &route);
    let h = meter.f64_histogram("app.latency").with_unit("s").with_boundaries(vec![0.1, 1.0]).build();
    for v in [0.05, 0.5, 2.0] {
        h.record(v, &route);
    }
    provider.force_flush().expect("the SDK's export succeeds");
    provider.shutdown().ok();
}

fn attr(rm: &ResourceMetrics, key: &str) -> Option<String> {
    rm.resource.as_ref()?.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    })
}

/// The downstream's resource metrics of `service`, once it has all three metrics.
fn received(got: &[Got], service: &str) -> Option<(ResourceMetrics, Vec<Metric>)> {
    let rms: Vec<&ResourceMetrics> =
        got.iter().flat_map(|g| &g.request.resource_metrics).filter(|rm| attr(rm, "service.name").as_deref() == Some(service)).collect();
    let metrics: Vec<Metric> = rms.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|s| s.metrics.clone()).collect();
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    (["app.jobs", "app.temperature", "app.latency"].iter().all(|n| names.contains(n))).then(|| ((*rms[0]).clone(), metrics))
}

fn check_points(metrics: &[Metric]) {
    let by = |n: &str| metrics.iter().find(|m| m.name == n).unwrap().clone();
    let route_of = |attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| attrs.iter().find(|a| a.key == "route").and_then(|a| a.value.clone());
    let Some(Data::Sum(s)) = by("app.jobs").data else { panic!("app.jobs is a sum") };
    assert!(s.is_monotonic);
    assert_eq!(s.data_points[0].value, Some(Value::AsInt(5)));
    assert!(route_of(&s.data_points[0].attributes).is_some());
    let Some(Data::Gauge(g)) = by("app.temperature").data else { panic!("app.temperature is a gauge") };
    assert_eq!(g.data_points[0].value, Some(Value::AsDouble(21.5)));
    let Some(Data::Histogram(h)) = by("app.latency").data else { panic!("app.latency is a histogram") };
    let p = &h.data_points[0];
    assert_eq!((p.count, p.bucket_counts.clone(), p.explicit_bounds.clone()), (3, vec![1, 1, 1], vec![0.1, 1.0]));
    assert!((p.sum.unwrap() - 2.55).abs() < 1e-9);
    assert_eq!(by("app.latency").unit, "s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_over_grpc_and_http_reach_the_downstream_and_prometheus_with_the_agents_resource_added() {
    let downstream = grpc::Receiver::ok();
    let prometheus = Prometheus::start();
    let p = ports();
    let dir = tempfile::tempdir().unwrap();
    let mut exporters = format!("  - type: otlp\n    endpoint: http://{}\n", downstream.addr);
    if let Some(prom) = &prometheus {
        exporters += &format!("  - type: prometheus_remote_write\n    endpoint: {}\n", prom.write_url());
    }
    let agent = start(&config(&dir, &p, &exporters, ""), &p);

    let grpc_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://127.0.0.1:{}", p.grpc))
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .unwrap();
    tokio::task::spawn_blocking(move || push_with_sdk(grpc_exporter, "app-grpc")).await.unwrap();
    let http_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("http://127.0.0.1:{}/v1/metrics", p.http))
        .with_compression(opentelemetry_otlp::Compression::Zstd)
        .build()
        .unwrap();
    tokio::task::spawn_blocking(move || push_with_sdk(http_exporter, "app-http")).await.unwrap();
    let json_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
        .with_endpoint(format!("http://127.0.0.1:{}/v1/metrics", p.http))
        .build()
        .unwrap();
    tokio::task::spawn_blocking(move || push_with_sdk(json_exporter, "app-json")).await.unwrap();

    for service in ["app-grpc", "app-http", "app-json"] {
        let (rm, metrics) =
            eventually(Duration::from_secs(15), || received(&downstream.got(), service)).unwrap_or_else(|| panic!("{service}'s metrics reach the downstream"));
        check_points(&metrics);
        assert_eq!(attr(&rm, "host.name").as_deref(), Some("app-set-host"), "the app's attribute is never overwritten");
        assert_eq!(attr(&rm, "k8s.pod.name").as_deref(), Some("pod-7"), "the agent's resource is added");
        assert!(attr(&rm, "os.type").is_some(), "the agent's detected attributes are added");
    }
    // The host's own metrics go on beside them.
    let host = || downstream.got().iter().flat_map(|g| &g.request.resource_metrics).any(|rm| attr(rm, "service.name").as_deref() == Some("metricsd"));
    assert!(eventually(Duration::from_secs(15), || host().then_some(())).is_some(), "the host's metrics reach the downstream");
    let (_, status) = http_get(&format!("127.0.0.1:{}", p.server), "/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    // Each SDK exports at the flush and again at its shutdown: three points each time.
    let requests = status["receiver"]["requests"]["accepted"].as_u64().unwrap();
    assert!(requests >= 3, "{}", status["receiver"]);
    assert_eq!(status["receiver"]["points"]["accepted"].as_u64(), Some(3 * requests), "{}", status["receiver"]);

    if let Some(prom) = &prometheus {
        for job in ["app-grpc", "app-http"] {
            let q = format!("app_jobs_total{{job=\"{job}\",route=\"/checkout\"}}");
            let r = eventually(Duration::from_secs(15), || Some(prom.query(&q)).filter(|r| !r.is_empty())).unwrap_or_else(|| panic!("{q} in Prometheus"));
            assert_eq!(r[0]["value"][1], "5");
            let q = format!("app_latency_seconds_count{{job=\"{job}\"}}");
            let r = eventually(Duration::from_secs(15), || Some(prom.query(&q)).filter(|r| !r.is_empty())).unwrap_or_else(|| panic!("{q} in Prometheus"));
            assert_eq!(r[0]["value"][1], "3");
            let q = format!("target_info{{job=\"{job}\"}}");
            let info = eventually(Duration::from_secs(15), || Some(prom.query(&q)).filter(|r| !r.is_empty())).unwrap_or_else(|| panic!("{q} in Prometheus"));
            assert_eq!(info[0]["metric"]["k8s_pod_name"], "pod-7", "the agent's resource reaches Prometheus: {info:?}");
        }
    }
    stop(agent);
}

/// The agent's resident memory, bytes.
fn rss(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_downstream_makes_the_receiver_answer_429_and_grpc_resource_exhausted_with_bounded_memory() {
    use prost::Message;
    // A downstream that takes requests and never answers.
    let downstream = grpc::Receiver::start(None, |_| (Ok(Default::default()), Duration::from_secs(3600)));
    let p = ports();
    let dir = tempfile::tempdir().unwrap();
    const QUEUE: u64 = 2 << 20;
    let exporters = format!("  - type: otlp\n    endpoint: http://{}\n    timeout: 60s\n    queue: {{max_bytes: {QUEUE}}}\n", downstream.addr);
    let agent = start(&config(&dir, &p, &exporters, ""), &p);
    // One request of 2000 points (~200 KB of protobuf), sent over and over: 100 MB offered.
    let points: Vec<_> = (0..2000)
        .map(|i| opentelemetry_proto::tonic::metrics::v1::NumberDataPoint {
            attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                key: "series".into(),
                value: Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(AnyValue::StringValue(format!("s{i:05}-{}", "x".repeat(40)))) }),
                ..Default::default()
            }],
            time_unix_nano: 1,
            value: Some(Value::AsDouble(i as f64)),
            ..Default::default()
        })
        .collect();
    let req = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![opentelemetry_proto::tonic::metrics::v1::ScopeMetrics {
                metrics: vec![Metric {
                    name: "load.gauge".into(),
                    data: Some(Data::Gauge(opentelemetry_proto::tonic::metrics::v1::Gauge { data_points: points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = req.encode_to_vec();
    eventually(Duration::from_secs(10), || downstream.got().first().cloned()).expect("the host's first batch reaches the (stuck) downstream");
    let before = rss(agent.pid());
    let (mut ok, mut busy) = (0, 0);
    for _ in 0..500 {
        let (status, retry_after) = post(p.http, &body).await;
        match status {
            200 => ok += 1,
            429 => {
                busy += 1;
                assert_eq!(retry_after.as_deref(), Some("5"));
            }
            s => panic!("unexpected status {s}"),
        }
    }
    let after = rss(agent.pid());
    eprintln!("stuck downstream: {ok} requests taken, {busy} refused; agent RSS {before} -> {after} bytes");
    assert!(busy > 0 && ok > 0, "ok {ok}, busy {busy}");
    // What is held: the queue (QUEUE), at most 8 batches waiting to be encoded, and slack for
    // the allocator; far below the 100 MB offered.
    let bound = 16 * QUEUE + (32 << 20);
    assert!(after.saturating_sub(before) < bound, "RSS grew from {before} to {after} (bound {bound}); {ok} taken, {busy} refused");
    // gRPC says the same with RetryInfo.
    let mut client =
        opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient::connect(format!("http://127.0.0.1:{}", p.grpc))
            .await
            .unwrap();
    let st = client.export(req.clone()).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
    use tonic_types::StatusExt;
    assert_eq!(st.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(5)));
    let (_, status) = http_get(&format!("127.0.0.1:{}", p.server), "/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status["receiver"]["requests"]["busy"].as_u64().unwrap() > busy as u64, "{}", status["receiver"]);
    stop(agent);
}

/// POSTs a protobuf body to the HTTP receiver; returns the status and `Retry-After`.
async fn post(port: u16, body: &[u8]) -> (u16, Option<String>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = hyper::Request::post(format!("http://127.0.0.1:{port}/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(body)))
        .unwrap();
    let resp = client.request(req).await.expect("the receiver answers");
    (resp.status().as_u16(), resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string))
}

fn http_exporter(p: &Ports) -> opentelemetry_otlp::MetricExporter {
    opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("http://127.0.0.1:{}/v1/metrics", p.http))
        .build()
        .unwrap()
}

#[test]
fn pushed_metrics_are_served_on_metrics_only_when_metrics_expiration_is_set() {
    for (extra, served) in [("    metrics_expiration: 5m\n", true), ("", false)] {
        let dir = tempfile::tempdir().unwrap();
        let p = ports();
        let cfg = config(&dir, &p, " []\n", extra);
        let agent = start(&cfg, &p);
        let addr = format!("127.0.0.1:{}", p.server);
        eventually(Duration::from_secs(15), || http_get(&addr, "/metrics").filter(|(s, b)| *s == 200 && b.contains("system_memory_usage_bytes")))
            .expect("/metrics");
        push_with_sdk(http_exporter(&p), "shop");
        let body = http_get(&addr, "/metrics").unwrap().1;
        let status: serde_json::Value = serde_json::from_str(&http_get(&addr, "/status").unwrap().1).unwrap();
        stop(agent);
        let jobs = body.lines().find(|l| l.starts_with("app_jobs_total{"));
        if served {
            let jobs = jobs.unwrap_or_else(|| panic!("app_jobs_total on /metrics:\n{body}"));
            assert!(jobs.contains("job=\"shop\"") && jobs.contains("route=\"/checkout\"") && jobs.ends_with(" 5"), "{jobs}");
            assert!(body.contains("app_latency_seconds_bucket{"), "{body}");
            assert!(body.contains("system_memory_usage_bytes{"), "the host's metrics stay: {body}");
            assert_eq!(status["received_on_metrics"]["resources"], 1, "{status}");
        } else {
            assert!(jobs.is_none(), "not served unless asked:\n{body}");
            assert!(status["received_on_metrics"].is_null(), "{status}");
        }
    }
}
