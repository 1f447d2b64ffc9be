use metricsd::collectors::{self, TickClock};
use metricsd::config::Config;
use metricsd::host::HostPaths;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider, Temporality};
use std::sync::Arc;
#[derive(Debug, Clone)]
struct R(Arc<ManualReader>);
impl MetricReader for R {
    fn register_pipeline(&self, p: std::sync::Weak<opentelemetry_sdk::metrics::Pipeline>) {
        self.0.register_pipeline(p)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, t: std::time::Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(t)
    }
    fn temporality(&self, k: opentelemetry_sdk::metrics::InstrumentKind) -> Temporality {
        self.0.temporality(k)
    }
}
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let clock = TickClock::default();
    let mut cs = collectors::build(&Config::default(), &HostPaths::default(), &clock);
    let reader = Arc::new(ManualReader::builder().with_temporality(Temporality::Cumulative).build());
    let provider = SdkMeterProvider::builder().with_reader(R(reader.clone())).build();
    let meter = provider.meter("x");
    for c in cs.iter_mut() {
        c.register(&meter);
    }
    clock.advance();
    for c in cs.iter_mut() {
        c.refresh().unwrap();
    }
    clock.advance();
    for c in cs.iter_mut() {
        c.refresh().unwrap();
    }
    let t = std::time::Instant::now();
    let mut pts = 0;
    for _ in 0..n {
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        pts += rm.scope_metrics().map(|s| s.metrics().count()).sum::<usize>();
    }
    let e = t.elapsed();
    println!("collect: {:.1} us/iter, {} metrics/iter", e.as_secs_f64() * 1e6 / n as f64, pts / n);
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
        let req = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::from(&rm);
        std::hint::black_box(req);
    }
    println!("convert: {:.1} us/iter", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
