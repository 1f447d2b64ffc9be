//! Criterion benches of the hot paths (run: `cargo bench --bench hot_paths`):
//!
//! - `refresh/full_tick`: one full tick on the captured fixture tree — every default collector
//!   refreshed, the OpenTelemetry collect, and the conversion to the OTLP batch;
//! - `encode/otlp_protobuf`: encoding that batch as the OTLP exporter sends it;
//! - `remote_write/{10k,100k}`: OTel→Prometheus translation + protobuf + snappy of a batch of
//!   N series (prints series/s and bytes per sample on the wire);
//! - `scrape/parse_100k`: the Prometheus text parser on node_exporter's output repeated to
//!   ~100k series, and parse + convert to OTLP (prints lines/s, and allocations per sample
//!   counted by this bench's global allocator).
//!
//! Compare with node_exporter in the same run with `scripts/bench_side_by_side.py` (node_exporter and the Collector's hostmetrics receiver).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use metricsd::collectors::{self, TickClock};
use metricsd::config::Config;
use metricsd::exporters::remote_write::encode;
use metricsd::pipeline::{AgentState, Scheduler};
use metricsd::translate::{translate, TranslateOptions};
use metricsd::units::HostPaths;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting allocations (for allocations per sample).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (incl. reallocations) made by `f`.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let r = f();
    (ALLOCATIONS.load(Ordering::Relaxed) - before, r)
}

fn fixture() -> HostPaths {
    HostPaths::under(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc/linux-6.18-vm"))
}

fn full_tick(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = Config::default();
    let clock = TickClock::default();
    let state = AgentState::new(Default::default());
    let collectors = collectors::build(&config.collector, &fixture(), &clock);
    let mut sched = rt.block_on(async {
        Scheduler::new(collectors, clock, &[("host.name".to_string(), "bench".to_string())].into(), std::time::Duration::from_secs(5), state)
    });
    let batch = rt.block_on(sched.tick());
    let request = batch.to_request().into_owned();
    eprintln!("full tick: {} data points, {} bytes as OTLP protobuf", batch.points, request.encoded_len());
    c.bench_function("refresh/full_tick", |b| b.iter(|| rt.block_on(sched.tick())));
    let mut buf = Vec::with_capacity(64 * 1024);
    c.bench_function("encode/otlp_protobuf", |b| {
        b.iter(|| {
            buf.clear();
            request.encode(&mut buf).unwrap();
            buf.len()
        })
    });
    // What the tick uses: each nested length computed once (metricsd::pipeline::encode).
    let mut lens = Vec::new();
    c.bench_function("encode/otlp_protobuf_lengths_once", |b| {
        b.iter(|| {
            buf.clear();
            let n = metricsd::pipeline::encode::encoded_len(&request, &mut lens);
            buf.reserve(n);
            metricsd::pipeline::encode::encode(&request, &lens, &mut buf);
            buf.len()
        })
    });
    // What the tick does now: the host's compact points (metricsd::points) encoded in place.
    c.bench_function("encode/otlp_protobuf_compact", |b| {
        b.iter(|| {
            buf.clear();
            let n = metricsd::pipeline::encode::batch_encoded_len(batch.compact(), &Default::default(), &mut lens);
            buf.reserve(n);
            metricsd::pipeline::encode::encode_batch(batch.compact(), &Default::default(), &lens, &mut buf);
            buf.len()
        })
    });
    // The OTLP/HTTP body: `metricsd::http::gzip` (flate2, zlib-rs, level 1).
    let body = request.encode_to_vec();
    eprintln!("gzip: {} → {} bytes", body.len(), metricsd::http::gzip(&body).len());
    c.bench_function("encode/gzip", |b| b.iter(|| metricsd::http::gzip(&body).len()));
}

fn kv(k: &str, v: String) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }), ..Default::default() }
}

/// N gauge series in 100 metrics, each with two attributes.
fn synthetic(n: usize) -> ExportMetricsServiceRequest {
    let per_metric = n / 100;
    let now = 1_763_900_000_000_000_000u64;
    let metrics = (0..100)
        .map(|m| Metric {
            name: format!("app.metric.{m}"),
            unit: "By".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: (0..per_metric)
                    .map(|i| NumberDataPoint {
                        attributes: vec![kv("device", format!("dev{i}")), kv("direction", if i % 2 == 0 { "read".into() } else { "write".into() })],
                        time_unix_nano: now,
                        value: Some(number_data_point::Value::AsDouble(i as f64 * 1.5)),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![kv("service.name", "bench".into()), kv("host.name", "h1".into())], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn remote_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("remote_write");
    for n in [10_000usize, 100_000] {
        let req = synthetic(n);
        let opts = TranslateOptions::default();
        let mut buf = Vec::new();
        let wire: usize = {
            let (fams, _) = translate(&req, &opts);
            encode::to_write_requests(fams, 2 * 1024 * 1024).iter().map(|w| encode::encode(w, &mut buf).len()).sum()
        };
        eprintln!("remote_write {n} series: {wire} bytes on the wire, {:.2} bytes/sample", wire as f64 / n as f64);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("translate_encode_snappy", n), &req, |b, req| {
            b.iter(|| {
                let (fams, _) = translate(req, &opts);
                encode::to_write_requests(fams, 2 * 1024 * 1024).iter().map(|w| encode::encode(w, &mut buf).len()).sum::<usize>()
            })
        });
        // What the exporter does since issue 27: the batch's compact points translated and
        // written series by series (metricsd::exporters::remote_write::stream).
        let mut interner = metricsd::pipeline::compact::ScrapeInterner::default();
        let compact: Vec<_> = req.resource_metrics.iter().cloned().map(|rm| metricsd::pipeline::compact::compact_resource(rm, &mut interner)).collect();
        g.bench_with_input(BenchmarkId::new("compact_stream_snappy", n), &compact, |b, compact| {
            b.iter(|| {
                let mut bodies = metricsd::exporters::remote_write::stream::Bodies::new(2 * 1024 * 1024);
                for r in compact {
                    metricsd::translate::compact_samples(r, &opts, |s, _| bodies.push(&s.labels, s.value, s.timestamp_ms));
                }
                bodies.finish().iter().map(|p| p.body.len()).sum::<usize>()
            })
        });
    }
    g.finish();
}

fn scrape(c: &mut Criterion) {
    let one = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scrape/node_exporter.prom")).unwrap();
    let per = one.lines().filter(|l| !l.starts_with('#')).count().max(1);
    // Repeat with a distinguishing label so series stay distinct.
    let mut body = String::new();
    let mut copies = 0;
    while copies * per < 100_000 {
        for line in one.lines() {
            if line.starts_with('#') {
                if copies == 0 {
                    body.push_str(line);
                    body.push('\n');
                }
                continue;
            }
            match line.split_once('{') {
                Some((name, rest)) => body.push_str(&format!("{name}{{copy=\"{copies}\",{rest}\n")),
                None => {
                    if let Some((name, v)) = line.split_once(' ') {
                        body.push_str(&format!("{name}{{copy=\"{copies}\"}} {v}\n"));
                    }
                }
            }
        }
        copies += 1;
    }
    let lines = body.lines().count();
    eprintln!("scrape: {lines} lines, {} bytes", body.len());
    let mut g = c.benchmark_group("scrape");
    g.throughput(Throughput::Elements(lines as u64));
    g.sample_size(10);
    g.bench_function("parse_100k", |b| b.iter(|| metricsd::scrape::text::parse(&body, metricsd::scrape::text::TextFormat::Prometheus).families.len()));
    let mut conv = metricsd::scrape::convert::Converter::default();
    {
        let opts = metricsd::scrape::convert::ConvertOptions { now_ns: 1, prefix: "", labels: &[] };
        let (parse_allocs, parsed) = allocations(|| metricsd::scrape::text::parse(&body, metricsd::scrape::text::TextFormat::Prometheus));
        let samples: usize = parsed.families.iter().map(|f| f.samples.len()).sum();
        let _ = conv.convert(&parsed.families, &opts); // first sight of every series: start times recorded
        let (convert_allocs, _) = allocations(|| conv.convert(&parsed.families, &opts).len());
        eprintln!(
            "scrape: {samples} samples; allocations per sample: parse {:.2}, convert (steady state) {:.2}",
            parse_allocs as f64 / samples as f64,
            convert_allocs as f64 / samples as f64
        );
    }
    g.bench_function("parse_convert_100k", |b| {
        b.iter(|| {
            let p = metricsd::scrape::text::parse(&body, metricsd::scrape::text::TextFormat::Prometheus);
            conv.convert(&p.families, &metricsd::scrape::convert::ConvertOptions { now_ns: 1, prefix: "", labels: &[] }).len()
        })
    });
    g.finish();
}

criterion_group!(benches, full_tick, remote_write, scrape);
criterion_main!(benches);
