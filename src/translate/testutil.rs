//! Test fixtures for the translation: attributes, gauges, sums and requests in one line
//! each (the remote-write encoder's tests use them too).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::{Family, TranslateOptions};

pub(crate) const T0: u64 = 1_700_000_000_123_456_789;
pub(crate) const T0_MS: i64 = 1_700_000_000_123;

pub(crate) fn s(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
}

pub(crate) fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

pub(crate) fn gauge(name: &str, unit: &str, points: Vec<(Vec<KeyValue>, f64)>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} help"),
        data: Some(Data::Gauge(Gauge { data_points: number_points_of(points) })),
        ..Default::default()
    }
}

pub(crate) fn number_points_of(points: Vec<(Vec<KeyValue>, f64)>) -> Vec<NumberDataPoint> {
    points
        .into_iter()
        .map(|(attributes, v)| NumberDataPoint { attributes, time_unix_nano: T0, value: Some(number_data_point::Value::AsDouble(v)), ..Default::default() })
        .collect()
}

pub(crate) fn sum(name: &str, unit: &str, monotonic: bool, temporality: AggregationTemporality, points: Vec<(Vec<KeyValue>, f64)>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(Data::Sum(Sum { data_points: number_points_of(points), aggregation_temporality: temporality as i32, is_monotonic: monotonic })),
        ..Default::default()
    }
}

pub(crate) fn request(resources: Vec<(Vec<KeyValue>, Vec<Metric>)>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: resources
            .into_iter()
            .map(|(attributes, metrics)| ResourceMetrics {
                resource: Some(Resource { attributes, ..Default::default() }),
                scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    }
}

pub(crate) fn host_resource() -> Vec<KeyValue> {
    vec![s("service.name", "metricsd"), s("host.name", "node1"), s("os.type", "linux")]
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

pub(crate) fn family<'a>(fams: &'a [Family], name: &str) -> &'a Family {
    fams.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name} in {:?}", fams.iter().map(|f| &f.name).collect::<Vec<_>>()))
}

pub(crate) fn no_target_info() -> TranslateOptions {
    TranslateOptions { add_target_info: false, ..Default::default() }
}
