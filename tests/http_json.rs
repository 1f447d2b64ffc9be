//! The HTTP JSON exporter against an in-process server: both formats carry the values
//! collected (the stdout exporter prints the same batches for comparison), the metricsd format
//! validates against its JSON Schema, gzip, auth, splitting, retries, a 400, a hanging server.

mod common;

use common::*;
use std::io::Read;
use std::time::Duration;

fn run(exporter_yaml: &str, secs: f64) -> (Vec<serde_json::Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    std::fs::write(
        &p,
        format!(
            "server:\n  enabled: false\nshutdown_timeout: 2s\ncollector:\n  interval: 300ms\nexporters:\n  - type: stdout\n    format: json\n{exporter_yaml}"
        ),
    )
    .unwrap();
    let agent = Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(&p);
        c
    });
    std::thread::sleep(Duration::from_secs_f64(secs));
    agent.signal(libc::SIGTERM);
    let (code, out, err) = agent.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err}");
    (out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect(), err)
}

fn otlp_value(batch: &serde_json::Value, name: &str) -> f64 {
    for m in batch["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap() {
        if m["name"] == name {
            let dp = &m["sum"]["dataPoints"][0];
            let dp = if dp.is_null() { &m["gauge"]["dataPoints"][0] } else { dp };
            return dp["asInt"].as_str().map(|s| s.parse().unwrap()).or(dp["asDouble"].as_f64()).unwrap();
        }
    }
    panic!("{name} not in batch")
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/metricsd-json.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("schema compiles")
}

#[test]
fn metricsd_format_matches_the_schema_and_the_values_collected() {
    let sink = Sink::ok();
    let (batches, _) = run(&format!("  - type: http_json\n    endpoint: {}\n    resource_labels: [os.type]\n", sink.url("/ingest")), 1.0);
    let reqs = sink.requests();
    assert!(!reqs.is_empty() && !batches.is_empty());
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    let v = schema();
    for r in &reqs {
        let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{doc}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(doc["resource"]["service.name"], "metricsd");
    assert_eq!(doc["resource"]["os.type"], "linux");
    let limit = doc["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "system_memory_limit_bytes").expect("memory limit");
    assert_eq!(limit["type"], "gauge");
    assert_eq!(limit["labels"]["job"], "metricsd");
    assert_eq!(limit["labels"]["os_type"], "linux", "resource_labels folded into labels");
    assert_eq!(limit["value"].as_f64().unwrap(), otlp_value(&batches[0], "system.memory.limit"));
    let used =
        doc["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "system_memory_usage_bytes" && m["labels"]["system_memory_state"] == "used").unwrap();
    assert!(used["value"].as_f64().unwrap() > 0.0);
}

#[test]
fn otlp_json_format_is_the_batch_itself() {
    let sink = Sink::ok();
    let (batches, _) = run(&format!("  - type: http_json\n    endpoint: {}\n    format: otlp_json\n", sink.url("/v1/metrics")), 1.0);
    let reqs = sink.requests();
    assert!(!reqs.is_empty());
    let first: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(first, batches[0], "the body is the OTLP/JSON of the collected batch");
    let _: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest = serde_json::from_slice(&reqs[0].body).expect("decodes as OTLP");
}

#[test]
fn gzip_bodies_and_bearer_tokens_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let sink = Sink::ok();
    run(&format!("  - type: http_json\n    endpoint: {}\n    gzip: true\n    bearer_token_file: {}\n", sink.url("/i"), token.display()), 0.6);
    let r = &sink.requests()[0];
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut text).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["metrics"].as_array().unwrap().len() > 5);
}

#[test]
fn big_batches_are_split_into_complete_documents() {
    let sink = Sink::ok();
    let (batches, _) = run(&format!("  - type: http_json\n    endpoint: {}\n    max_batch_bytes: 1024\n", sink.url("/i")), 0.6);
    let reqs = sink.requests();
    assert!(reqs.len() > batches.len());
    let v = schema();
    for r in &reqs {
        assert!(r.body.len() <= 1024, "{}", r.body.len());
        let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v.is_valid(&doc));
    }
}

#[test]
fn retryable_statuses_are_retried_and_a_400_is_not() {
    let sink = Sink::start(|n, _| if n < 2 { (503, vec![], "busy".into(), Duration::ZERO) } else { (200, vec![], String::new(), Duration::ZERO) });
    let (batches, _) =
        run(&format!("  - type: http_json\n    endpoint: {}\n    retry: {{initial_interval: 50ms, max_interval: 100ms}}\n", sink.url("/i")), 1.2);
    let delivered = sink.requests().len() - 2;
    assert_eq!(delivered, batches.len(), "every batch delivered once after the outage");

    let sink = Sink::start(|_, _| (400, vec![], "bad payload".into(), Duration::ZERO));
    let (_, err) = run(&format!("  - type: http_json\n    endpoint: {}\n", sink.url("/i")), 1.0);
    let reqs = sink.requests();
    let mut bodies: Vec<&[u8]> = reqs.iter().map(|r| r.body.as_ref()).collect();
    bodies.dedup();
    assert_eq!(bodies.len(), reqs.len(), "no payload sent twice");
    assert!(err.contains("HTTP 400: bad payload"), "{err}");
}

#[test]
fn a_hanging_server_hits_the_timeout_and_collection_keeps_its_schedule() {
    let sink = Sink::start(|_, _| (200, vec![], String::new(), Duration::from_secs(30)));
    let (batches, err) =
        run(&format!("  - type: http_json\n    endpoint: {}\n    timeout: 300ms\n    retry: {{initial_interval: 50ms}}\n", sink.url("/i")), 1.5);
    assert!(err.contains("no answer within 300ms"), "{err}");
    assert!(batches.len() >= 4, "collection went on: {} batches", batches.len());
}
