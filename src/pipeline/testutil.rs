//! OTLP requests for unit tests of the pipeline and the exporters above it.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// `AggregationTemporality` cumulative.
const CUMULATIVE: i32 = 2;

pub(crate) fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
}

pub(crate) fn int_point(attrs: Vec<KeyValue>, start: u64, time: u64, v: i64) -> NumberDataPoint {
    NumberDataPoint { attributes: attrs, start_time_unix_nano: start, time_unix_nano: time, value: Some(Value::AsInt(v)), ..Default::default() }
}

pub(crate) fn request(host: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![kv("host.name", host), kv("service.name", "metricsd")], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "metricsd".into(), ..Default::default() }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn sum(name: &str, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "By".into(),
        data: Some(Data::Sum(Sum { data_points: points, aggregation_temporality: CUMULATIVE, is_monotonic: monotonic })),
        ..Default::default()
    }
}

pub(crate) fn metrics(req: &ExportMetricsServiceRequest) -> Vec<&Metric> {
    req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).collect()
}

/// A real tick's batch: the default collectors on the `linux-6.18-vm` fixture tree, the host's
/// resource `host.name=h`.
pub(crate) fn fixture_tick() -> std::sync::Arc<super::Batch> {
    let clock = crate::collectors::TickClock::default();
    let collectors = crate::collectors::build(&Default::default(), &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
    let resource = [("host.name".to_string(), "h".to_string())].into();
    let mut sched = super::Scheduler::new(collectors, clock, &resource, std::time::Duration::from_secs(5), super::AgentState::new(Default::default()));
    sched.tick_now()
}

/// `tick`'s host metrics, compact, then the same metrics as OTLP under a resource of their own
/// (`service.name=app`, as a scraped target's), which has its own `target_info`.
pub(crate) fn host_and_scraped(tick: &super::Batch) -> super::Batch {
    let mut scraped = tick.to_request().resource_metrics[0].clone();
    scraped.resource.as_mut().expect("the host's resource").attributes.push(kv("service.name", "app"));
    super::Batch::with_host(tick.host().expect("a tick's batch").clone(), ExportMetricsServiceRequest { resource_metrics: vec![scraped] }, 1)
}
