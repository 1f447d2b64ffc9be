//! The agent's own logs and traces over OTLP (`telemetry`): an in-process OTLP logs and traces
//! receiver (tonic, from opentelemetry-proto's generated services) and, for http/protobuf, an
//! HTTP sink receive the agent's log records and spans, with the agent's resource; nothing of
//! the libraries' own logging comes back (no feedback).

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};

#[derive(Default, Clone)]
struct Got {
    logs: Arc<Mutex<Vec<ExportLogsServiceRequest>>>,
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl LogsService for Got {
    async fn export(&self, r: Request<ExportLogsServiceRequest>) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.logs.lock().unwrap().push(r.into_inner());
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Got {
    async fn export(&self, r: Request<ExportTraceServiceRequest>) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.traces.lock().unwrap().push(r.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The logs and the traces service on one port, by path (tonic's router needs axum).
#[derive(Clone)]
struct Both {
    logs: LogsServiceServer<Got>,
    traces: TraceServiceServer<Got>,
}

impl tonic::server::NamedService for Both {
    const NAME: &'static str = "logs+traces";
}

impl tower_service::Service<hyper::Request<tonic::body::Body>> for Both {
    type Response = hyper::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: hyper::Request<tonic::body::Body>) -> Self::Future {
        if req.uri().path().starts_with("/opentelemetry.proto.collector.logs.") {
            Box::pin(tower_service::Service::call(&mut self.logs, req))
        } else {
            Box::pin(tower_service::Service::call(&mut self.traces, req))
        }
    }
}

/// A gRPC logs + traces receiver on a free loopback port, on its own thread.
fn grpc_receiver() -> (std::net::SocketAddr, Got, tokio::sync::oneshot::Sender<()>) {
    let got = Got::default();
    let svc = got.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let both = Both {
                logs: LogsServiceServer::new(svc.clone()).accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                traces: TraceServiceServer::new(svc).accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            };
            let _ = tonic::transport::Server::builder()
                .serve_with_incoming_shutdown(both, tonic::transport::server::TcpIncoming::from(listener), async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    (addr_rx.recv_timeout(Duration::from_secs(5)).unwrap(), got, stop_tx)
}

fn string(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attr<'a>(r: &'a Option<Resource>, key: &str) -> Option<&'a str> {
    r.as_ref()?.attributes.iter().find(|kv| kv.key == key).and_then(string)
}

/// Runs the agent with `telemetry` (YAML lines under `telemetry:`) for about 3 s at a 1 s
/// interval, then SIGTERM (which flushes the batch processors).
fn run_agent(telemetry: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    let port = free_port();
    std::fs::write(
        &cfg,
        format!(
            "collector: {{interval: 1s}}\nserver: {{host: 127.0.0.1, port: {port}}}\nresource: {{deployment.environment.name: test}}\ntelemetry:\n{telemetry}"
        ),
    )
    .unwrap();
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&cfg);
        c
    });
    std::thread::sleep(Duration::from_millis(3200));
    agent.signal(libc::SIGTERM);
    let (code, _, err) = agent.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    err
}

#[test]
fn the_agents_logs_and_spans_reach_an_otlp_grpc_receiver_with_its_resource() {
    let (addr, got, _stop) = grpc_receiver();
    let stderr = run_agent(&format!("  endpoint: http://{addr}\n"));
    let logs = got.logs.lock().unwrap().clone();
    let traces = got.traces.lock().unwrap().clone();
    assert!(!logs.is_empty(), "no log export; stderr:\n{stderr}");
    let records: Vec<_> =
        logs.iter().flat_map(|r| &r.resource_logs).flat_map(|rl| rl.scope_logs.iter().flat_map(|s| &s.log_records).map(move |l| (&rl.resource, l))).collect();
    let bodies: Vec<String> = records.iter().filter_map(|(_, l)| l.body.as_ref().and_then(|b| b.value.as_ref())).map(|v| format!("{v:?}")).collect();
    assert!(bodies.iter().any(|b| b.contains("HTTP server listening")), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("Stopping")), "the shutdown's own records are flushed too: {bodies:?}");
    // Only the agent's own events: nothing the SDK, tonic or hyper logged while exporting.
    assert!(!bodies.iter().any(|b| b.contains("BatchLogProcessor") || b.contains("Tonic")), "{bodies:?}");
    for (resource, l) in &records {
        assert_eq!(attr(resource, "service.name"), Some("metricsd"));
        assert_eq!(attr(resource, "deployment.environment.name"), Some("test"), "the config's resource");
        assert!(attr(resource, "host.name").is_some_and(|h| !h.is_empty()));
        assert!(l.severity_number >= 9, "info or above: {l:?}");
    }
    let spans: Vec<_> =
        traces.iter().flat_map(|r| &r.resource_spans).flat_map(|rs| rs.scope_spans.iter().flat_map(|s| &s.spans).map(move |sp| (&rs.resource, sp))).collect();
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    for want in ["tick", "refresh", "collect"] {
        assert!(names.contains(&want), "no {want} span in {names:?}");
    }
    let tick = spans.iter().find(|(_, s)| s.name == "tick").unwrap().1;
    let collect = spans.iter().find(|(_, s)| s.name == "collect").unwrap().1;
    assert!(spans.iter().any(|(_, s)| s.name == "collect" && s.trace_id == tick.trace_id) || collect.parent_span_id.len() == 8, "collect is a child of a tick");
    assert!(spans.iter().all(|(r, _)| attr(r, "service.name") == Some("metricsd")));
}

#[test]
fn over_http_protobuf_records_and_spans_go_to_v1_logs_and_v1_traces() {
    let sink = Sink::ok();
    let stderr = run_agent(&format!("  endpoint: http://{}\n  protocol: http/protobuf\n  compression: none\n", sink.addr));
    let reqs = sink.requests();
    let logs: Vec<_> = reqs.iter().filter(|r| r.path == "/v1/logs").collect();
    let traces: Vec<_> = reqs.iter().filter(|r| r.path == "/v1/traces").collect();
    assert!(!logs.is_empty() && !traces.is_empty(), "paths {:?}; stderr:\n{stderr}", reqs.iter().map(|r| &r.path).collect::<Vec<_>>());
    assert_eq!(logs[0].header("content-type"), Some("application/x-protobuf"));
    assert!(logs[0].header("user-agent").is_some_and(|u| u.starts_with("OTel-OTLP-Exporter-Rust")), "the SDK's exporter: {:?}", logs[0].headers);
    let decoded = ExportLogsServiceRequest::decode(logs[0].body.clone()).unwrap();
    assert!(!decoded.resource_logs.is_empty());
    let spans = ExportTraceServiceRequest::decode(traces[0].body.clone()).unwrap();
    assert!(spans.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).any(|s| s.name == "tick"));
}

#[test]
fn an_unreachable_telemetry_endpoint_is_reported_on_stderr_and_never_exported_in_a_loop() {
    // Port 1 on loopback refuses: every export fails. The failures are the SDK's and tonic's,
    // which only stderr shows; the agent still collects and stops cleanly.
    let port = free_port();
    let stderr = run_agent(&format!("  endpoint: http://127.0.0.1:{port}\n  timeout: 500ms\n"));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("BatchLogProcessor.ExportError"), "the SDK's export error is on stderr: {stderr}");
    assert!(stderr.contains("Stopped"), "{stderr}");
}
