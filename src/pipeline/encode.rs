//! OTLP protobuf encoding of a batch with each nested message's length computed once.
//!
//! prost writes a nested message as tag, length, body, and gets the length by walking the
//! message; a data point's attribute value sits eight messages deep in an
//! `ExportMetricsServiceRequest` (request → resource metrics → scope metrics → metric → sum →
//! point → attribute → value), so prost walks it eight times over: in perf, length computation
//! was over half of encoding a tick's batch. Here the levels down to the data point are walked
//! once to compute their lengths (kept in a list, in the order they are written), then once to
//! write; a data point and everything inside it, and the rare parts (resources, scopes,
//! histograms, summaries, metadata), are left to prost. The output is byte for byte what
//! prost writes (fields in tag order, defaults left out), which the tests check.
//!
//! ```text
//! 0a 9c c4 01    resource_metrics (field 1, length-delimited, 25116 bytes)
//! ```

use bytes::BufMut;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;

use crate::points::{CompactMetric, CompactResource, CompactScope, Num, Point, Shape};

/// Bytes `req` encodes to; `lens` gets the nested lengths [`encode`] needs.
pub fn encoded_len(req: &ExportMetricsServiceRequest, lens: &mut Vec<usize>) -> usize {
    lens.clear();
    req.resource_metrics.iter().map(|rm| nested(1, lens, |lens| resource_metrics_len(rm, lens))).sum()
}

/// Writes `req` using the lengths [`encoded_len`] computed for it.
pub fn encode(req: &ExportMetricsServiceRequest, lens: &[usize], buf: &mut impl BufMut) {
    let mut lens = lens.iter().copied();
    for rm in &req.resource_metrics {
        header(1, &mut lens, buf);
        write_resource_metrics(rm, &mut lens, buf);
    }
}

/// Bytes a tick's batch (the compact resources, then `req`) encodes to; `lens` gets the
/// nested lengths [`encode_batch`] needs.
pub fn batch_encoded_len(compact: &[CompactResource], req: &ExportMetricsServiceRequest, lens: &mut Vec<usize>) -> usize {
    lens.clear();
    let compact_len = compact.iter().map(|h| nested(1, lens, |lens| host_len(h, lens))).sum::<usize>();
    compact_len + req.resource_metrics.iter().map(|rm| nested(1, lens, |lens| resource_metrics_len(rm, lens))).sum::<usize>()
}

/// Writes a tick's batch using the lengths [`batch_encoded_len`] computed for it: one
/// `ExportMetricsServiceRequest`, the compact resources first.
pub fn encode_batch(compact: &[CompactResource], req: &ExportMetricsServiceRequest, lens: &[usize], buf: &mut impl BufMut) {
    let mut lens = lens.iter().copied();
    for h in compact {
        header(1, &mut lens, buf);
        write_host(h, &mut lens, buf);
    }
    for rm in &req.resource_metrics {
        header(1, &mut lens, buf);
        write_resource_metrics(rm, &mut lens, buf);
    }
}

fn host_len(h: &CompactResource, lens: &mut Vec<usize>) -> usize {
    let mut n = prost::encoding::message::encoded_len(1, &h.resource);
    n += h.scopes.iter().map(|s| nested(2, lens, |lens| compact_scope_len(s, lens))).sum::<usize>();
    n + h.otlp_scopes.iter().map(|sm| nested(2, lens, |lens| scope_metrics_len(sm, lens))).sum::<usize>()
}

fn write_host(h: &CompactResource, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    prost::encoding::message::encode(1, &h.resource, buf);
    for s in &h.scopes {
        header(2, lens, buf);
        write_compact_scope(s, lens, buf);
    }
    for sm in &h.otlp_scopes {
        header(2, lens, buf);
        write_scope_metrics(sm, lens, buf);
    }
}

fn compact_scope_len(s: &CompactScope, lens: &mut Vec<usize>) -> usize {
    let mut n = prost::encoding::message::encoded_len(1, &*s.scope);
    n += s.metrics.iter().map(|m| nested(2, lens, |lens| compact_metric_len(m, lens))).sum::<usize>();
    n + str_field_len(3, &s.schema_url)
}

fn write_compact_scope(s: &CompactScope, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    prost::encoding::message::encode(1, &*s.scope, buf);
    for m in &s.metrics {
        header(2, lens, buf);
        write_compact_metric(m, lens, buf);
    }
    write_str(3, &s.schema_url, buf);
}

/// The OTLP enum value of cumulative temporality, as a sum writes it (field 2, varint).
const CUMULATIVE: i32 = opentelemetry_proto::tonic::metrics::v1::AggregationTemporality::Cumulative as i32;

fn compact_metric_len(m: &CompactMetric, lens: &mut Vec<usize>) -> usize {
    let d = &m.descriptor;
    let n = str_field_len(1, &d.name) + str_field_len(2, &d.description) + str_field_len(3, &d.unit);
    let points = |_: &mut Vec<usize>| m.points.iter().map(|p| key_len(1) + delimited_len(compact_point_len(m, p))).sum::<usize>();
    n + match d.shape {
        Shape::Gauge => nested(5, lens, points),
        Shape::Sum { monotonic } => nested(7, lens, |lens| {
            points(lens) + prost::encoding::int32::encoded_len(2, &CUMULATIVE) + if monotonic { prost::encoding::bool::encoded_len(3, &true) } else { 0 }
        }),
    }
}

fn write_compact_metric(m: &CompactMetric, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    let d = &m.descriptor;
    write_str(1, &d.name, buf);
    write_str(2, &d.description, buf);
    write_str(3, &d.unit, buf);
    let (tag, monotonic) = match d.shape {
        Shape::Gauge => (5, None),
        Shape::Sum { monotonic } => (7, Some(monotonic)),
    };
    header(tag, lens, buf);
    for p in &m.points {
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(compact_point_len(m, p) as u64, buf);
        write_compact_point(m, p, buf);
    }
    if let Some(monotonic) = monotonic {
        prost::encoding::int32::encode(2, &CUMULATIVE, buf);
        if monotonic {
            prost::encoding::bool::encode(3, &true, buf);
        }
    }
}

/// Bytes a compact metric takes in a request, its tag and length prefix included.
pub fn compact_metric_size(m: &CompactMetric) -> usize {
    nested(2, &mut Vec::new(), |lens| compact_metric_len(m, lens))
}

/// A length-delimited body of `n` bytes with its length prefix.
fn delimited_len(n: usize) -> usize {
    encoded_len_varint(n as u64) + n
}

/// Bytes of one point's `NumberDataPoint` body, written in prost's (tag) order: the times
/// (fixed64, left out when 0), the value (a double or an sfixed64, always 9 bytes), the
/// attributes.
fn compact_point_len(m: &CompactMetric, p: &Point) -> usize {
    let times = if m.start_ns != 0 { 9 } else { 0 } + if m.time_ns != 0 { 9 } else { 0 };
    times + 9 + p.attributes.iter().map(|kv| key_len(7) + delimited_len(key_value_len(kv))).sum::<usize>()
}

fn write_compact_point(m: &CompactMetric, p: &Point, buf: &mut impl BufMut) {
    if m.start_ns != 0 {
        encode_key(2, WireType::SixtyFourBit, buf);
        buf.put_u64_le(m.start_ns);
    }
    if m.time_ns != 0 {
        encode_key(3, WireType::SixtyFourBit, buf);
        buf.put_u64_le(m.time_ns);
    }
    match p.value {
        Num::Double(d) => {
            encode_key(4, WireType::SixtyFourBit, buf);
            buf.put_f64_le(d);
        }
        Num::Int(i) => {
            encode_key(6, WireType::SixtyFourBit, buf);
            buf.put_i64_le(i);
        }
    }
    for kv in p.attributes.iter() {
        encode_key(7, WireType::LengthDelimited, buf);
        encode_varint(key_value_len(kv) as u64, buf);
        write_key_value(kv, buf);
    }
}

/// Bytes of an attribute's `KeyValue` body: the key, then the value (an `AnyValue` message
/// whose one field is always written, even when it is the default).
fn key_value_len(kv: &opentelemetry::KeyValue) -> usize {
    str_field_len(1, kv.key.as_str()) + key_len(2) + delimited_len(any_value_len(&kv.value))
}

fn any_value_len(v: &opentelemetry::Value) -> usize {
    use opentelemetry::Value;
    match v {
        Value::String(s) => key_len(1) + delimited_len(s.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + encoded_len_varint(*i as u64),
        Value::F64(_) => 9,
        other => crate::points::proto_value(other).encoded_len(),
    }
}

fn write_key_value(kv: &opentelemetry::KeyValue, buf: &mut impl BufMut) {
    use opentelemetry::Value;
    write_str(1, kv.key.as_str(), buf);
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint(any_value_len(&kv.value) as u64, buf);
    match &kv.value {
        Value::String(s) => {
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint(s.as_str().len() as u64, buf);
            buf.put_slice(s.as_str().as_bytes());
        }
        Value::Bool(b) => prost::encoding::bool::encode(2, b, buf),
        Value::I64(i) => prost::encoding::int64::encode(3, i, buf),
        Value::F64(f) => prost::encoding::double::encode(4, f, buf),
        other => crate::points::proto_value(other).encode_raw(buf),
    }
}

/// `req` as OTLP protobuf, in a buffer of exactly the right size.
pub fn encode_to_vec(req: &ExportMetricsServiceRequest) -> Vec<u8> {
    let mut lens = Vec::new();
    let mut buf = Vec::with_capacity(encoded_len(req, &mut lens));
    encode(req, &lens, &mut buf);
    buf
}

/// Length of a nested message field `tag` whose body `body` measures; the body's length is
/// recorded in `lens` in write order.
fn nested(tag: u32, lens: &mut Vec<usize>, body: impl FnOnce(&mut Vec<usize>) -> usize) -> usize {
    let at = lens.len();
    lens.push(0);
    let n = body(lens);
    lens[at] = n;
    key_len(tag) + encoded_len_varint(n as u64) + n
}

/// Writes the tag and the next recorded length of a nested message.
fn header(tag: u32, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(lens.next().expect("a length for every nested message") as u64, buf);
}

fn resource_metrics_len(rm: &ResourceMetrics, lens: &mut Vec<usize>) -> usize {
    let mut n = rm.resource.as_ref().map_or(0, |r| prost::encoding::message::encoded_len(1, r));
    n += rm.scope_metrics.iter().map(|sm| nested(2, lens, |lens| scope_metrics_len(sm, lens))).sum::<usize>();
    n + str_field_len(3, &rm.schema_url)
}

fn write_resource_metrics(rm: &ResourceMetrics, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    if let Some(r) = &rm.resource {
        prost::encoding::message::encode(1, r, buf);
    }
    for sm in &rm.scope_metrics {
        header(2, lens, buf);
        write_scope_metrics(sm, lens, buf);
    }
    write_str(3, &rm.schema_url, buf);
}

fn scope_metrics_len(sm: &ScopeMetrics, lens: &mut Vec<usize>) -> usize {
    let mut n = sm.scope.as_ref().map_or(0, |s| prost::encoding::message::encoded_len(1, s));
    n += sm.metrics.iter().map(|m| nested(2, lens, |lens| metric_len(m, lens))).sum::<usize>();
    n + str_field_len(3, &sm.schema_url)
}

fn write_scope_metrics(sm: &ScopeMetrics, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    if let Some(s) = &sm.scope {
        prost::encoding::message::encode(1, s, buf);
    }
    for m in &sm.metrics {
        header(2, lens, buf);
        write_metric(m, lens, buf);
    }
    write_str(3, &sm.schema_url, buf);
}

fn metric_len(m: &Metric, lens: &mut Vec<usize>) -> usize {
    let mut n = str_field_len(1, &m.name) + str_field_len(2, &m.description) + str_field_len(3, &m.unit);
    n += prost::encoding::message::encoded_len_repeated(12, &m.metadata);
    n + match &m.data {
        Some(Data::Gauge(g)) => nested(5, lens, |lens| points_len(&g.data_points, lens)),
        Some(Data::Sum(s)) => nested(7, lens, |lens| {
            points_len(&s.data_points, lens)
                + if s.aggregation_temporality != 0 { prost::encoding::int32::encoded_len(2, &s.aggregation_temporality) } else { 0 }
                + if s.is_monotonic { prost::encoding::bool::encoded_len(3, &s.is_monotonic) } else { 0 }
        }),
        Some(other) => other.encoded_len(),
        None => 0,
    }
}

fn write_metric(m: &Metric, lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    write_str(1, &m.name, buf);
    write_str(2, &m.description, buf);
    write_str(3, &m.unit, buf);
    match &m.data {
        Some(Data::Gauge(g)) => {
            header(5, lens, buf);
            write_points(&g.data_points, lens, buf);
        }
        Some(Data::Sum(s)) => {
            header(7, lens, buf);
            write_points(&s.data_points, lens, buf);
            if s.aggregation_temporality != 0 {
                prost::encoding::int32::encode(2, &s.aggregation_temporality, buf);
            }
            if s.is_monotonic {
                prost::encoding::bool::encode(3, &s.is_monotonic, buf);
            }
        }
        Some(other) => other.encode(buf),
        None => {}
    }
    for kv in &m.metadata {
        prost::encoding::message::encode(12, kv, buf);
    }
}

/// Data points (field 1 of a gauge or sum): each one's length once, from prost.
fn points_len(points: &[NumberDataPoint], lens: &mut Vec<usize>) -> usize {
    points.iter().map(|p| nested(1, lens, |_| p.encoded_len())).sum()
}

fn write_points(points: &[NumberDataPoint], lens: &mut impl Iterator<Item = usize>, buf: &mut impl BufMut) {
    for p in points {
        header(1, lens, buf);
        p.encode_raw(buf);
    }
}

/// A string field as prost writes it: left out when empty.
fn str_field_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn write_str(tag: u32, s: &str, buf: &mut impl BufMut) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.put_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        number_data_point, summary_data_point::ValueAtQuantile, Gauge, Histogram, HistogramDataPoint, Sum, Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
    }

    fn point(i: i64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: vec![kv("device", &format!("sd{i}")), kv("direction", "read")],
            start_time_unix_nano: 1_700_000_000_000_000_000,
            time_unix_nano: 1_700_000_001_000_000_000 + i as u64,
            value: Some(if i % 2 == 0 { number_data_point::Value::AsInt(i * 1000) } else { number_data_point::Value::AsDouble(i as f64 / 3.0) }),
            ..Default::default()
        }
    }

    /// Every kind of metric, empty and non-empty strings, a resource and none, scopes with
    /// attributes and schema URLs, metadata, and a metric with no data.
    fn request() -> ExportMetricsServiceRequest {
        let metrics = vec![
            Metric { name: "g".into(), unit: "By".into(), data: Some(Data::Gauge(Gauge { data_points: (0..5).map(point).collect() })), ..Default::default() },
            Metric {
                name: "s".into(),
                description: "a sum".into(),
                data: Some(Data::Sum(Sum { data_points: (0..300).map(point).collect(), aggregation_temporality: 2, is_monotonic: true })),
                ..Default::default()
            },
            Metric {
                name: "u".into(),
                data: Some(Data::Sum(Sum { data_points: vec![point(1)], aggregation_temporality: 0, is_monotonic: false })),
                ..Default::default()
            },
            Metric {
                name: "h".into(),
                metadata: vec![kv("prometheus.type", "histogram")],
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        count: 3,
                        sum: Some(1.5),
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![0.5],
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                })),
                ..Default::default()
            },
            Metric {
                name: "q".into(),
                data: Some(Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        count: 2,
                        sum: 4.0,
                        quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 2.0 }],
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            },
            Metric { name: "empty".into(), ..Default::default() },
            Metric { name: "gauge-without-points".into(), data: Some(Data::Gauge(Gauge::default())), ..Default::default() },
        ];
        ExportMetricsServiceRequest {
            resource_metrics: vec![
                ResourceMetrics {
                    resource: Some(Resource { attributes: vec![kv("host.name", "h1"), kv("service.name", "metricsd")], ..Default::default() }),
                    scope_metrics: vec![
                        ScopeMetrics {
                            scope: Some(InstrumentationScope {
                                name: "metricsd".into(),
                                version: "0.1.0".into(),
                                attributes: vec![kv("a", "b")],
                                ..Default::default()
                            }),
                            metrics,
                            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                        },
                        ScopeMetrics::default(),
                    ],
                    schema_url: String::new(),
                },
                ResourceMetrics { resource: None, scope_metrics: vec![], schema_url: "s".into() },
            ],
        }
    }

    /// Where two encodings first differ (a readable failure instead of two long byte lists).
    fn first_difference(a: &[u8], b: &[u8]) -> Option<(usize, usize, usize)> {
        let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        (a.len() != b.len() || i < a.len()).then_some((i, a.len(), b.len()))
    }

    #[test]
    fn encoding_is_byte_for_byte_what_prost_writes() {
        let req = request();
        assert_eq!(first_difference(&encode_to_vec(&req), &req.encode_to_vec()), None, "(index, our length, prost's)");
        let mut lens = Vec::new();
        assert_eq!(encoded_len(&req, &mut lens), req.encoded_len());
        assert_eq!(encode_to_vec(&ExportMetricsServiceRequest::default()), Vec::<u8>::new());
    }

    #[test]
    fn a_real_ticks_batch_encodes_as_prost_does_and_decodes_back() {
        let clock = crate::collectors::TickClock::default();
        let collectors = crate::collectors::build(&Default::default(), &crate::procfs::fixture_paths("linux-6.18-vm"), &clock);
        let state = crate::pipeline::AgentState::new(Default::default());
        let mut sched =
            crate::pipeline::Scheduler::new(collectors, clock, &[("host.name".to_string(), "h".to_string())].into(), std::time::Duration::from_secs(5), state);
        sched.tick_now();
        let batch = sched.tick_now();
        let bytes = batch.encoded();
        let request = batch.to_request();
        assert_eq!(first_difference(&bytes, &request.encode_to_vec()), None, "(index, our length, prost's)");
        assert_eq!(ExportMetricsServiceRequest::decode(&bytes[..]).unwrap(), *request);
    }

    #[test]
    fn compact_host_metrics_with_every_attribute_type_encode_as_their_otlp_copy_does() {
        use crate::points::{CompactMetric, CompactResource, CompactScope, Descriptor, Num, Point, Shape};
        use opentelemetry::{Array, KeyValue as Kv, Value};
        use std::sync::Arc;
        let attrs = |i: i64| -> crate::points::Attributes {
            vec![
                Kv::new("s", format!("v{i}")),
                Kv::new("empty", ""),
                Kv::new("i", -i),
                Kv::new("b", i % 2 == 0),
                Kv::new("f", i as f64 / 4.0),
                Kv::new("a", Value::Array(Array::String(vec!["x".into(), "y".into()]))),
            ]
            .into()
        };
        let metric = |name: &str, shape, start_ns, values: Vec<Num>| CompactMetric {
            descriptor: Arc::new(Descriptor {
                name: name.into(),
                description: if start_ns == 0 { String::new() } else { "d".into() },
                unit: "By".into(),
                shape,
            }),
            start_ns,
            time_ns: 1_700_000_001_000_000_000,
            points: values.into_iter().enumerate().map(|(i, value)| Point { attributes: attrs(i as i64), value }).collect(),
        };
        let host = CompactResource {
            resource: Resource { attributes: vec![kv("host.name", "h")], ..Default::default() },
            scopes: vec![CompactScope {
                scope: Arc::new(InstrumentationScope { name: "metricsd".into(), ..Default::default() }),
                schema_url: "".into(),
                metrics: vec![
                    metric("g", Shape::Gauge, 0, vec![Num::Double(0.5), Num::Int(-3)]),
                    metric("c", Shape::Sum { monotonic: true }, 1_700_000_000_000_000_000, (0..200).map(Num::Int).collect()),
                    metric("u", Shape::Sum { monotonic: false }, 5, vec![Num::Int(0)]),
                ],
            }],
            otlp_scopes: request().resource_metrics[0].scope_metrics.clone(),
        };
        let batch = crate::pipeline::Batch::with_host(host, request(), 1);
        let want = batch.to_request().encode_to_vec();
        assert_eq!(first_difference(&batch.encoded(), &want), None, "(index, our length, prost's)");
        assert_eq!(batch.points, crate::pipeline::count_points(&batch.to_request()));
    }
}
