//! OTLP metrics flattened to one comparable line per data point, from either form a test sees:
//! the protobuf a tonic receiver decodes, or the OTLP/JSON a Collector's file exporter writes.
//! Two exports carry the same data exactly when their sorted lines are equal.
//!
//! A line names everything a point means (resource and scope included), attributes sorted:
//!
//! ```text
//! system.cpu.time|s|Seconds each logical CPU spent on each mode|sum|t=2|mono=true|[cpu.logical_number=i:0,cpu.mode=s:idle]|start=1733580000000000000|time=1733580001000000000|flags=0|d:1234.5 S[metricsd 0.1.0] R[host.name=s:web-1,service.name=s:metricsd]
//! ```
//!
//! OTLP/JSON leaves out default values (empty unit, `isMonotonic: false`) and writes 64-bit
//! integers as strings; both are read here as the protobuf's defaults.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumValue;
use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;
use serde_json::Value;

/// The scope and the resource go last, so that a truncated line still shows the point.
fn suffix(lines: &mut [String], scope: &str, res: &str) {
    for l in lines {
        l.push_str(&format!(" {scope} {res}"));
    }
}

// ------------------------------------------------------------------ protobuf

fn any(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => format!("s:{s}"),
        Some(any_value::Value::IntValue(i)) => format!("i:{i}"),
        Some(any_value::Value::DoubleValue(d)) => format!("d:{d:?}"),
        Some(any_value::Value::BoolValue(b)) => format!("b:{b}"),
        Some(other) => format!("other:{other:?}"),
        None => "none".into(),
    }
}

fn kvs(attrs: &[KeyValue]) -> String {
    let mut v: Vec<String> = attrs.iter().map(|kv| format!("{}={}", kv.key, any(kv.value.as_ref()))).collect();
    v.sort();
    format!("[{}]", v.join(","))
}

fn num(p: &NumberDataPoint) -> String {
    match p.value {
        Some(NumValue::AsInt(i)) => format!("i:{i}"),
        Some(NumValue::AsDouble(d)) => format!("d:{d:?}"),
        None => "none".into(),
    }
}

fn point_head(attrs: &[KeyValue], start: u64, time: u64, flags: u32) -> String {
    format!("{}|start={start}|time={time}|flags={flags}", kvs(attrs))
}

/// The lines of a protobuf request.
pub fn from_proto(req: &ExportMetricsServiceRequest) -> Vec<String> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        let res = format!("R{}", kvs(rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default()));
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map(|s| format!("S[{} {}]", s.name, s.version)).unwrap_or_else(|| "S[ ]".into());
            for m in &sm.metrics {
                let first = out.len();
                let head = format!("{}|{}|{}", m.name, m.unit, m.description);
                match &m.data {
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            out.push(format!("{head}|gauge|{}|{}", point_head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags), num(p)));
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for p in &s.data_points {
                            out.push(format!(
                                "{head}|sum|t={}|mono={}|{}|{}",
                                s.aggregation_temporality,
                                s.is_monotonic,
                                point_head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags),
                                num(p)
                            ));
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            out.push(format!(
                                "{head}|histogram|t={}|{}|count={}|sum={:?}|bounds={:?}|buckets={:?}|min={:?}|max={:?}",
                                h.aggregation_temporality,
                                point_head(&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags),
                                p.count,
                                p.sum,
                                p.explicit_bounds,
                                p.bucket_counts,
                                p.min,
                                p.max
                            ));
                        }
                    }
                    other => out.push(format!("{head}|unsupported:{other:?}")),
                }
                suffix(&mut out[first..], &scope, &res);
            }
        }
    }
    out
}

// ------------------------------------------------------------------ OTLP/JSON

fn u64_of(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

fn i64_of(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

fn f64_of(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            s => s.parse().unwrap_or(f64::NAN),
        },
        _ => 0.0,
    }
}

fn any_json(v: &Value) -> String {
    if let Some(s) = v.get("stringValue") {
        format!("s:{}", s.as_str().unwrap_or_default())
    } else if let Some(i) = v.get("intValue") {
        format!("i:{}", i64_of(i))
    } else if let Some(d) = v.get("doubleValue") {
        format!("d:{:?}", f64_of(d))
    } else if let Some(b) = v.get("boolValue") {
        format!("b:{}", b.as_bool().unwrap_or_default())
    } else if v.as_object().is_some_and(|o| o.is_empty()) || v.is_null() {
        "none".into()
    } else {
        format!("other:{v}")
    }
}

fn kvs_json(attrs: &Value) -> String {
    let mut v: Vec<String> =
        attrs.as_array().into_iter().flatten().map(|kv| format!("{}={}", kv["key"].as_str().unwrap_or_default(), any_json(&kv["value"]))).collect();
    v.sort();
    format!("[{}]", v.join(","))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn temporality(v: &Value) -> u64 {
    match v.as_str() {
        Some("AGGREGATION_TEMPORALITY_DELTA") => 1,
        Some("AGGREGATION_TEMPORALITY_CUMULATIVE") => 2,
        _ => u64_of(v),
    }
}

fn point_head_json(p: &Value) -> String {
    format!("{}|start={}|time={}|flags={}", kvs_json(&p["attributes"]), u64_of(&p["startTimeUnixNano"]), u64_of(&p["timeUnixNano"]), u64_of(&p["flags"]))
}

fn num_json(p: &Value) -> String {
    if let Some(i) = p.get("asInt") {
        format!("i:{}", i64_of(i))
    } else if let Some(d) = p.get("asDouble") {
        format!("d:{:?}", f64_of(d))
    } else {
        "none".into()
    }
}

fn opt_f64(v: &Value) -> Option<f64> {
    (!v.is_null()).then(|| f64_of(v))
}

/// The lines of an OTLP/JSON request (`{"resourceMetrics": [...]}`).
pub fn from_json(req: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rm in req["resourceMetrics"].as_array().into_iter().flatten() {
        let res = format!("R{}", kvs_json(&rm["resource"]["attributes"]));
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            let scope = format!("S[{} {}]", str_of(&sm["scope"]["name"]), str_of(&sm["scope"]["version"]));
            for m in sm["metrics"].as_array().into_iter().flatten() {
                let first = out.len();
                let head = format!("{}|{}|{}", str_of(&m["name"]), str_of(&m["unit"]), str_of(&m["description"]));
                if let Some(g) = m.get("gauge") {
                    for p in g["dataPoints"].as_array().into_iter().flatten() {
                        out.push(format!("{head}|gauge|{}|{}", point_head_json(p), num_json(p)));
                    }
                } else if let Some(s) = m.get("sum") {
                    for p in s["dataPoints"].as_array().into_iter().flatten() {
                        out.push(format!(
                            "{head}|sum|t={}|mono={}|{}|{}",
                            temporality(&s["aggregationTemporality"]),
                            s["isMonotonic"].as_bool().unwrap_or(false),
                            point_head_json(p),
                            num_json(p)
                        ));
                    }
                } else if let Some(h) = m.get("histogram") {
                    for p in h["dataPoints"].as_array().into_iter().flatten() {
                        let bounds: Vec<f64> = p["explicitBounds"].as_array().into_iter().flatten().map(f64_of).collect();
                        let buckets: Vec<u64> = p["bucketCounts"].as_array().into_iter().flatten().map(u64_of).collect();
                        out.push(format!(
                            "{head}|histogram|t={}|{}|count={}|sum={:?}|bounds={:?}|buckets={:?}|min={:?}|max={:?}",
                            temporality(&h["aggregationTemporality"]),
                            point_head_json(p),
                            u64_of(&p["count"]),
                            opt_f64(&p["sum"]),
                            bounds,
                            buckets,
                            opt_f64(&p["min"]),
                            opt_f64(&p["max"])
                        ));
                    }
                } else {
                    out.push(format!("{head}|unsupported:{m}"));
                }
                suffix(&mut out[first..], &scope, &res);
            }
        }
    }
    out
}

/// The first differences between two sorted line lists, for an assertion message.
pub fn diff(left: &[String], right: &[String], max: usize) -> String {
    let l: std::collections::BTreeMap<&String, usize> = left.iter().fold(Default::default(), |mut m, s| {
        *m.entry(s).or_default() += 1;
        m
    });
    let r: std::collections::BTreeMap<&String, usize> = right.iter().fold(Default::default(), |mut m, s| {
        *m.entry(s).or_default() += 1;
        m
    });
    let mut out = Vec::new();
    for (s, n) in &l {
        let m = r.get(s).copied().unwrap_or(0);
        if m != *n {
            out.push(format!("- ({n} vs {m}) {s}"));
        }
    }
    for (s, m) in &r {
        if !l.contains_key(s) {
            out.push(format!("+ (0 vs {m}) {s}"));
        }
    }
    let total = out.len();
    out.truncate(max);
    format!("{total} differing lines:\n{}", out.join("\n"))
}
