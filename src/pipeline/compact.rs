//! Scraped resources made compact as the tick takes them: a target's gauges and cumulative
//! sums become [`CompactMetric`]s whose points share interned attribute sets, as the host's
//! do (see [`crate::points`]), so a scraped series costs what a host series costs whatever
//! the exporter, instead of an OTLP point with owned strings held by two batches.
//!
//! What stays OTLP (in the resource's `otlp_scopes`): histograms, summaries, delta or
//! unspecified sums, metrics with metadata, and any metric with a point that a compact metric
//! cannot hold — exemplars, flags (no recorded value), no value, a time or start of its own, or
//! an attribute value that is an array, a map or bytes.
//!
//! ```text
//! http_requests_total{code="200"} 1027  →  Point { attributes: [code=200] (interned), value: Int(1027) }
//! ```

use crate::points::{Attributes, CompactMetric, CompactResource, CompactScope, Descriptor, Num, Point, Shape};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// The attribute sets of the scraped series, one allocation each, shared by every tick's
/// point of the series; a set no scrape brought in a tick is dropped after it.
#[derive(Default)]
pub struct ScrapeInterner {
    /// By the order-independent hash of the OTLP attributes: the set, and the tick that last
    /// saw it.
    sets: HashMap<u64, (Attributes, u64), foldhash::fast::FixedState>,
    tick: u64,
    touched: usize,
}

impl ScrapeInterner {
    /// The interned set of `attributes`, or `None` when one of them has no compact form.
    fn get(&mut self, attributes: &[ProtoKeyValue]) -> Option<Attributes> {
        let hash = proto_set_hash(attributes);
        let tick = self.tick;
        if let Some((set, seen)) = self.sets.get_mut(&hash) {
            if set.len() == attributes.len() && attributes.iter().all(|p| set.iter().any(|kv| same_attribute(kv, p))) {
                if *seen != tick {
                    *seen = tick;
                    self.touched += 1;
                }
                return Some(set.clone());
            }
            // Another set with the same hash: not interned.
            return to_api(attributes).map(Into::into);
        }
        let set: Attributes = to_api(attributes)?.into();
        self.sets.insert(hash, (set.clone(), tick));
        self.touched += 1;
        Some(set)
    }

    /// After a tick: forgets the sets it did not see.
    pub fn sweep(&mut self) {
        let tick = self.tick;
        if self.sets.len() > std::mem::take(&mut self.touched) {
            self.sets.retain(|_, (_, seen)| *seen == tick);
            if self.sets.capacity() > 4 * self.sets.len().max(16) {
                self.sets.shrink_to_fit();
            }
        }
        self.tick += 1;
    }

    /// Sets held.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether no set is held.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// A hash of OTLP attributes that does not depend on their order.
fn proto_set_hash(attributes: &[ProtoKeyValue]) -> u64 {
    let state = foldhash::fast::FixedState::with_seed(0x7363_7261_7065_6421);
    attributes.iter().fold(0u64, |acc, kv| {
        let mut h = state.build_hasher();
        kv.key.hash(&mut h);
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.hash(&mut h),
            Some(any_value::Value::IntValue(i)) => i.hash(&mut h),
            Some(any_value::Value::DoubleValue(d)) => d.to_bits().hash(&mut h),
            Some(any_value::Value::BoolValue(b)) => b.hash(&mut h),
            _ => 0u8.hash(&mut h),
        }
        acc.wrapping_add(h.finish())
    })
}

/// Whether an API attribute is the OTLP one.
fn same_attribute(kv: &KeyValue, p: &ProtoKeyValue) -> bool {
    use opentelemetry::Value;
    kv.key.as_str() == p.key
        && match (&kv.value, p.value.as_ref().and_then(|v| v.value.as_ref())) {
            (Value::String(a), Some(any_value::Value::StringValue(b))) => a.as_str() == b,
            (Value::I64(a), Some(any_value::Value::IntValue(b))) => a == b,
            (Value::F64(a), Some(any_value::Value::DoubleValue(b))) => a.to_bits() == b.to_bits(),
            (Value::Bool(a), Some(any_value::Value::BoolValue(b))) => a == b,
            _ => false,
        }
}

/// OTLP attributes as API ones, if each has a compact form (a string, an integer, a double
/// or a bool).
fn to_api(attributes: &[ProtoKeyValue]) -> Option<Vec<KeyValue>> {
    attributes
        .iter()
        .map(|p| {
            let key = p.key.clone();
            Some(match p.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => KeyValue::new(key, s.clone()),
                any_value::Value::IntValue(i) => KeyValue::new(key, *i),
                any_value::Value::DoubleValue(d) => KeyValue::new(key, *d),
                any_value::Value::BoolValue(b) => KeyValue::new(key, *b),
                _ => return None,
            })
        })
        .collect()
}

/// A scraped resource, its gauges and cumulative sums made compact.
pub fn compact_resource(rm: ResourceMetrics, interner: &mut ScrapeInterner) -> CompactResource {
    let mut out = CompactResource { resource: rm.resource.unwrap_or_default(), scopes: Vec::new(), otlp_scopes: Vec::new() };
    for sm in rm.scope_metrics {
        let scope = Arc::new(sm.scope.unwrap_or_default());
        let schema_url: Arc<str> = sm.schema_url.into();
        let mut compact = CompactScope { scope: scope.clone(), schema_url: schema_url.clone(), metrics: Vec::new() };
        let mut otlp = ScopeMetrics { scope: Some((*scope).clone()), metrics: Vec::new(), schema_url: schema_url.to_string() };
        for m in sm.metrics {
            match compact_metric(&m, interner) {
                Some(c) => compact.metrics.push(c),
                None => otlp.metrics.push(m),
            }
        }
        if !compact.metrics.is_empty() {
            out.scopes.push(compact);
        }
        if !otlp.metrics.is_empty() {
            out.otlp_scopes.push(otlp);
        }
    }
    out
}

/// The metric compact, or `None` when it has to stay OTLP.
fn compact_metric(m: &Metric, interner: &mut ScrapeInterner) -> Option<CompactMetric> {
    if !m.metadata.is_empty() {
        return None;
    }
    let cumulative = AggregationTemporality::Cumulative as i32;
    let (shape, points) = match m.data.as_ref()? {
        Data::Gauge(g) => (Shape::Gauge, &g.data_points),
        Data::Sum(s) if s.aggregation_temporality == cumulative => (Shape::Sum { monotonic: s.is_monotonic }, &s.data_points),
        _ => return None,
    };
    let first: &NumberDataPoint = points.first()?;
    let (start_ns, time_ns) = (first.start_time_unix_nano, first.time_unix_nano);
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        if p.flags != 0 || !p.exemplars.is_empty() || p.start_time_unix_nano != start_ns || p.time_unix_nano != time_ns {
            return None;
        }
        let value = match p.value? {
            number_data_point::Value::AsInt(i) => Num::Int(i),
            number_data_point::Value::AsDouble(d) => Num::Double(d),
        };
        out.push(Point { attributes: interner.get(&p.attributes)?, value });
    }
    let descriptor = Arc::new(Descriptor { name: m.name.clone(), description: m.description.clone(), unit: m.unit.clone(), shape });
    Some(CompactMetric { descriptor, start_ns, time_ns, points: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Histogram, Sum};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: any_value::Value) -> ProtoKeyValue {
        ProtoKeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    fn s(k: &str, v: &str) -> ProtoKeyValue {
        kv(k, any_value::Value::StringValue(v.into()))
    }

    fn point(attributes: Vec<ProtoKeyValue>, v: i64) -> NumberDataPoint {
        NumberDataPoint { attributes, start_time_unix_nano: 5, time_unix_nano: 9, value: Some(number_data_point::Value::AsInt(v)), ..Default::default() }
    }

    fn resource(metrics: Vec<Metric>) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(Resource { attributes: vec![s("service.name", "app")], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { scope: Some(Default::default()), metrics, ..Default::default() }],
            schema_url: String::new(),
        }
    }

    fn sum(name: &str, points: Vec<NumberDataPoint>, temporality: AggregationTemporality) -> Metric {
        Metric {
            name: name.into(),
            data: Some(Data::Sum(Sum { data_points: points, aggregation_temporality: temporality as i32, is_monotonic: true })),
            ..Default::default()
        }
    }

    #[test]
    fn gauges_and_cumulative_sums_become_compact_and_copy_back_to_the_same_otlp() {
        let metrics = vec![
            sum(
                "requests",
                vec![point(vec![s("code", "200"), kv("shard", any_value::Value::IntValue(3))], 7), point(vec![s("code", "500")], 1)],
                AggregationTemporality::Cumulative,
            ),
            Metric { name: "temp".into(), unit: "Cel".into(), data: Some(Data::Gauge(Gauge { data_points: vec![point(vec![], 21)] })), ..Default::default() },
        ];
        let rm = resource(metrics);
        let mut interner = ScrapeInterner::default();
        let c = compact_resource(rm.clone(), &mut interner);
        assert!(c.otlp_scopes.is_empty());
        assert_eq!(c.scopes[0].metrics.len(), 2);
        let back = ResourceMetrics {
            resource: Some(c.resource.clone()),
            scope_metrics: c.scopes.iter().map(CompactScope::to_scope_metrics).collect(),
            schema_url: String::new(),
        };
        assert_eq!(back, rm, "nothing lost");
    }

    #[test]
    fn what_a_compact_metric_cannot_hold_stays_otlp() {
        let mut own_time = point(vec![s("a", "2")], 2);
        own_time.time_unix_nano = 10;
        let mut flagged = point(vec![], 1);
        flagged.flags = 1;
        let metrics = vec![
            sum("delta", vec![point(vec![], 1)], AggregationTemporality::Delta),
            sum("times", vec![point(vec![s("a", "1")], 1), own_time], AggregationTemporality::Cumulative),
            sum("flagged", vec![flagged], AggregationTemporality::Cumulative),
            sum("array", vec![point(vec![kv("a", any_value::Value::ArrayValue(ArrayValue::default()))], 1)], AggregationTemporality::Cumulative),
            Metric { name: "h".into(), data: Some(Data::Histogram(Histogram::default())), ..Default::default() },
            sum("kept", vec![point(vec![s("a", "1")], 1)], AggregationTemporality::Cumulative),
        ];
        let c = compact_resource(resource(metrics), &mut ScrapeInterner::default());
        let otlp: Vec<&str> = c.otlp_scopes[0].metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(otlp, ["delta", "times", "flagged", "array", "h"]);
        assert_eq!(c.scopes[0].metrics[0].descriptor.name, "kept");
    }

    #[test]
    fn a_series_shares_its_set_from_tick_to_tick_whatever_the_order_and_a_gone_one_is_freed() {
        let mut interner = ScrapeInterner::default();
        let tick = |attrs: Vec<Vec<ProtoKeyValue>>, interner: &mut ScrapeInterner| {
            let points = attrs.into_iter().enumerate().map(|(i, a)| point(a, i as i64)).collect();
            let c = compact_resource(resource(vec![sum("r", points, AggregationTemporality::Cumulative)]), interner);
            interner.sweep();
            c
        };
        let one = tick(vec![vec![s("a", "1"), s("b", "2")], vec![s("a", "3")]], &mut interner);
        let two = tick(vec![vec![s("b", "2"), s("a", "1")]], &mut interner);
        let (p1, p2) = (&one.scopes[0].metrics[0].points, &two.scopes[0].metrics[0].points);
        assert!(Arc::ptr_eq(&p1[0].attributes, &p2[0].attributes));
        assert_eq!(interner.len(), 1, "a=3 was not scraped again");
    }
}
