//! The host's points of one tick, kept compact.
//!
//! An OTLP `NumberDataPoint` owns every attribute as two heap strings inside a `KeyValue`
//! inside a `Vec`: about 350 bytes for a point of two attributes, and the agent holds two
//! ticks' batches (the one being sent, the one being built). On a host of 1,024 CPUs, 4,000
//! interfaces and 500 disks (45,000 series) that was 0.85 KB of RSS a series with no exporter
//! at all — more than node_exporter's whole cost per series. Here a point is 32 bytes: its
//! value and a reference to its series' attribute set, which the meter interns (one
//! allocation per series, shared by every tick's point of it and dropped when the series
//! goes away). The OTLP encoder, the Prometheus translation and `to_metric` read these
//! directly; nothing materialises a tick's OTLP structures unless an exporter that needs them
//! (stdout, the file exporter, http_json, delta temporality) asks.
//!
//! ```text
//! system.network.io  start 1733590000000000000  time 1733590061000000000
//!   [network.interface.name=eth0, network.io.direction=receive]  AsInt(123456)
//! ```

use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ScopeMetrics, Sum};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::Arc;

/// One series' attribute set, interned by the meter: every tick's point of the series
/// shares it.
pub type Attributes = Arc<[KeyValue]>;

/// A point's value, as OTLP has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Double(f64),
}

impl Num {
    /// The value as a float (integers converted, as Prometheus takes them).
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Double(d) => d,
        }
    }

    /// The OTLP value.
    pub fn to_proto(self) -> number_data_point::Value {
        match self {
            Num::Int(i) => number_data_point::Value::AsInt(i),
            Num::Double(d) => number_data_point::Value::AsDouble(d),
        }
    }
}

/// One point: its series' attributes and its value (the times are the metric's).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub attributes: Attributes,
    pub value: Num,
}

/// Gauge, or cumulative sum (monotonic for counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Gauge,
    Sum { monotonic: bool },
}

/// What a metric is: the same every tick, shared.
#[derive(Debug, PartialEq)]
pub struct Descriptor {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub shape: Shape,
}

/// One metric of one tick: every point stamped `time_ns`, started `start_ns`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactMetric {
    pub descriptor: Arc<Descriptor>,
    pub start_ns: u64,
    pub time_ns: u64,
    pub points: Vec<Point>,
}

impl CompactMetric {
    /// The metric as OTLP (a copy: every attribute becomes owned strings).
    pub fn to_metric(&self) -> Metric {
        let d = &self.descriptor;
        let points = self
            .points
            .iter()
            .map(|p| NumberDataPoint {
                attributes: p.attributes.iter().map(proto_key_value).collect(),
                start_time_unix_nano: self.start_ns,
                time_unix_nano: self.time_ns,
                exemplars: Vec::new(),
                flags: 0,
                value: Some(p.value.to_proto()),
            })
            .collect();
        let data = match d.shape {
            Shape::Gauge => Data::Gauge(Gauge { data_points: points }),
            Shape::Sum { monotonic } => {
                Data::Sum(Sum { data_points: points, aggregation_temporality: AggregationTemporality::Cumulative as i32, is_monotonic: monotonic })
            }
        };
        Metric { name: d.name.clone(), description: d.description.clone(), unit: d.unit.clone(), metadata: Vec::new(), data: Some(data) }
    }
}

/// The metrics one instrumentation scope observed in one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactScope {
    pub scope: Arc<InstrumentationScope>,
    pub schema_url: Arc<str>,
    pub metrics: Vec<CompactMetric>,
}

impl CompactScope {
    /// The scope as OTLP (a copy).
    pub fn to_scope_metrics(&self) -> ScopeMetrics {
        ScopeMetrics {
            scope: Some((*self.scope).clone()),
            metrics: self.metrics.iter().map(CompactMetric::to_metric).collect(),
            schema_url: self.schema_url.to_string(),
        }
    }

    /// Points in the scope.
    pub fn points(&self) -> usize {
        self.metrics.iter().map(|m| m.points.len()).sum()
    }
}

/// One resource in one tick, compact: the host's (the meter's scopes, then the scopes
/// collectors produced as OTLP themselves: textfiles) or a scraped target's (its gauges and
/// cumulative sums compact, its histograms and summaries as OTLP).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactResource {
    pub resource: Resource,
    pub scopes: Vec<CompactScope>,
    pub otlp_scopes: Vec<ScopeMetrics>,
}

/// An API attribute as an OTLP attribute.
pub fn proto_key_value(kv: &KeyValue) -> ProtoKeyValue {
    ProtoKeyValue { key: kv.key.as_str().to_string(), value: Some(proto_value(&kv.value)), key_strindex: 0 }
}

/// An API attribute value as an OTLP value.
pub fn proto_value(v: &Value) -> AnyValue {
    let value = match v {
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::I64(i) => any_value::Value::IntValue(*i),
        Value::F64(f) => any_value::Value::DoubleValue(*f),
        Value::String(s) => any_value::Value::StringValue(s.as_str().to_string()),
        Value::Array(a) => {
            let values = match a {
                Array::Bool(v) => v.iter().map(|b| proto_value(&Value::Bool(*b))).collect(),
                Array::I64(v) => v.iter().map(|i| proto_value(&Value::I64(*i))).collect(),
                Array::F64(v) => v.iter().map(|f| proto_value(&Value::F64(*f))).collect(),
                Array::String(v) => v.iter().map(|s| AnyValue { value: Some(any_value::Value::StringValue(s.as_str().to_string())) }).collect(),
                _ => Vec::new(),
            };
            any_value::Value::ArrayValue(ArrayValue { values })
        }
        other => any_value::Value::StringValue(other.as_str().into_owned()),
    };
    AnyValue { value: Some(value) }
}

/// Whether two attribute lists hold the same attributes, in any order.
pub fn same_set(a: &[KeyValue], b: &[KeyValue]) -> bool {
    a.len() == b.len() && (a == b || a.iter().all(|kv| b.contains(kv)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_its_value_and_a_shared_reference_to_its_attributes() {
        assert_eq!(std::mem::size_of::<Point>(), 32);
        let attrs: Attributes = vec![KeyValue::new("device", "sda"), KeyValue::new("direction", "read")].into();
        let m = CompactMetric {
            descriptor: Arc::new(Descriptor { name: "d".into(), description: "x".into(), unit: "By".into(), shape: Shape::Sum { monotonic: true } }),
            start_ns: 1,
            time_ns: 2,
            points: vec![Point { attributes: attrs.clone(), value: Num::Int(5) }, Point { attributes: attrs.clone(), value: Num::Double(0.5) }],
        };
        assert_eq!(Arc::strong_count(&attrs), 3, "one allocation shared by every point of the series");
        let otlp = m.to_metric();
        let Some(Data::Sum(s)) = otlp.data else { panic!("a sum") };
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].attributes[0].key, "device");
        assert_eq!(s.data_points[1].value, Some(number_data_point::Value::AsDouble(0.5)));
        assert_eq!((s.data_points[0].start_time_unix_nano, s.data_points[0].time_unix_nano), (1, 2));
    }

    #[test]
    fn attribute_sets_are_the_same_in_any_order_and_differ_by_any_value() {
        let a = [KeyValue::new("a", "x"), KeyValue::new("b", 1i64)];
        let b = [KeyValue::new("b", 1i64), KeyValue::new("a", "x")];
        assert!(same_set(&a, &b));
        assert!(!same_set(&a, &[KeyValue::new("a", "x"), KeyValue::new("b", 2i64)]));
        assert!(!same_set(&a, &a[..1]));
    }

    #[test]
    fn attribute_values_of_every_type_become_their_otlp_types() {
        let kv = |v: Value| proto_key_value(&KeyValue::new("k", v)).value.unwrap().value.unwrap();
        assert_eq!(kv(Value::Bool(true)), any_value::Value::BoolValue(true));
        assert_eq!(kv(Value::I64(-2)), any_value::Value::IntValue(-2));
        assert_eq!(kv(Value::F64(1.5)), any_value::Value::DoubleValue(1.5));
        assert_eq!(kv(Value::from("s")), any_value::Value::StringValue("s".into()));
        let arr = kv(Value::Array(Array::I64(vec![1, 2])));
        assert_eq!(
            arr,
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(any_value::Value::IntValue(1)) }, AnyValue { value: Some(any_value::Value::IntValue(2)) }]
            })
        );
    }
}
