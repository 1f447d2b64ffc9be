//! Delta temporality, a pipeline step of its own: turns a batch's cumulative points into
//! differences from the previous batch's, for an exporter whose receiver wants deltas (the OTLP
//! exporter with `temporality: delta` or `lowmemory` runs each batch through a
//! [`DeltaConverter`] of its own before encoding it).
//!
//! The agent collects cumulative values (counters since they started). With
//! `temporality: delta` the exporter converts before sending, as the SDK's delta temporality
//! would: it remembers the last value of every series (resource, scope, metric, attributes)
//! and sends the difference, with the previous point's time as the start time.
//!
//! - Monotonic sums (counters) and histograms (explicit-bucket and exponential) are converted.
//!   Non-monotonic sums (up-down counters) and gauges stay as they are, as the OpenTelemetry
//!   specification requires; summaries too (their quantiles cannot be subtracted).
//! - The first value of a series only sets the baseline and is not sent: the agent's counters
//!   count since boot or since the process started, not since the agent did, so their first
//!   value is not an increase over any interval the agent saw. The first batch is therefore
//!   smaller, and every counter starts one interval late.
//! - A counter that went down, or whose start time changed, was reset: its new value is sent
//!   whole, as the increase since the reset.
//! - Delta histogram points carry no `min`/`max` (they cannot be derived from two cumulative
//!   points), except right after a reset. An exponential histogram whose scale changed is
//!   re-based (one interval not sent).
//! - A series not seen for 32 batches is forgotten (its next value is a new baseline).
//! - `lowmemory` (as `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=lowmemory`): delta
//!   histograms, cumulative sums (every counter here is an observable one, which lowmemory keeps
//!   cumulative).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A series unseen for this many batches is forgotten by the delta conversion.
pub const DELTA_STALE_BATCHES: u64 = 32;
/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;
/// `AggregationTemporality` values.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// `temporality`: which cumulative points are sent as deltas (the OTLP exporter's option,
/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporality {
    /// As collected (default).
    #[default]
    Cumulative,
    /// Counters and histograms as differences between batches.
    Delta,
    /// Histograms as differences, sums cumulative.
    #[serde(alias = "low_memory")]
    Lowmemory,
}

impl Temporality {
    fn sums_delta(self) -> bool {
        self == Temporality::Delta
    }
    fn histograms_delta(self) -> bool {
        self != Temporality::Cumulative
    }
}

#[derive(Debug, Clone)]
enum Last {
    Int {
        start: u64,
        time: u64,
        value: i64,
    },
    Double {
        start: u64,
        time: u64,
        value: f64,
    },
    Hist {
        start: u64,
        time: u64,
        count: u64,
        sum: Option<f64>,
        bounds: Vec<f64>,
        buckets: Vec<u64>,
    },
    Exp {
        start: u64,
        time: u64,
        count: u64,
        sum: Option<f64>,
        scale: i32,
        zero_count: u64,
        zero_threshold: f64,
        positive: (i32, Vec<u64>),
        negative: (i32, Vec<u64>),
    },
}

impl Last {
    fn start_time(&self) -> (u64, u64) {
        match self {
            Last::Int { start, time, .. } | Last::Double { start, time, .. } | Last::Hist { start, time, .. } | Last::Exp { start, time, .. } => {
                (*start, *time)
            }
        }
    }
}

struct Series {
    seen: u64,
    last: Last,
}

/// Turns cumulative points into deltas by remembering each series' previous point.
#[derive(Default)]
pub struct DeltaConverter {
    batch: u64,
    series: HashMap<Vec<u8>, Series>,
}

/// Appends a length-prefixed component to a key.
fn key_part(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    key.extend_from_slice(bytes);
}

/// Attributes in a canonical order, encoded.
fn attributes_key(key: &mut Vec<u8>, attrs: &[KeyValue]) {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut buf = Vec::new();
    for kv in sorted {
        kv.encode_length_delimited(&mut buf).expect("a Vec grows");
    }
    key_part(key, &buf);
}

/// Whether the point restarted: its start time changed (both known).
fn start_changed(cur_start: u64, prev_start: u64) -> bool {
    cur_start != 0 && prev_start != 0 && cur_start != prev_start
}

/// The start of a delta after a reset: the counter's own start if it is known and later than
/// the previous point, else the previous point's time.
fn reset_start(cur_start: u64, prev_time: u64) -> u64 {
    cur_start.max(prev_time)
}

/// `cur - prev` bucket by bucket, the buckets aligned by index (exponential histograms);
/// `None` when a bucket went down or disappeared (a reset).
fn sub_exp_buckets(cur: Option<&Buckets>, prev: &(i32, Vec<u64>)) -> Option<Buckets> {
    let empty = Buckets::default();
    let cur = cur.unwrap_or(&empty);
    let at = |offset: i32, counts: &[u64], index: i64| -> u64 {
        let i = index - offset as i64;
        if i >= 0 && (i as usize) < counts.len() {
            counts[i as usize]
        } else {
            0
        }
    };
    for (i, &p) in prev.1.iter().enumerate() {
        let index = prev.0 as i64 + i as i64;
        if p > at(cur.offset, &cur.bucket_counts, index) {
            return None;
        }
    }
    let counts = cur.bucket_counts.iter().enumerate().map(|(i, &c)| c - at(prev.0, &prev.1, cur.offset as i64 + i as i64)).collect();
    Some(Buckets { offset: cur.offset, bucket_counts: counts })
}

fn buckets_of(b: Option<&Buckets>) -> (i32, Vec<u64>) {
    b.map(|b| (b.offset, b.bucket_counts.clone())).unwrap_or_default()
}

impl DeltaConverter {
    /// Series remembered.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Where the previous point of `key` is, after checking the new point is newer. Returns
    /// the previous point, or `None` when there is none (the new one becomes the baseline) or
    /// the new one is not newer (ignored).
    fn previous(&mut self, key: &[u8], time: u64) -> Result<Option<&mut Series>, ()> {
        let batch = self.batch;
        match self.series.get_mut(key) {
            Some(s) if time <= s.last.start_time().1 => {
                s.seen = batch;
                Err(())
            }
            Some(s) => {
                s.seen = batch;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    fn number(&mut self, key: Vec<u8>, p: &NumberDataPoint) -> Option<NumberDataPoint> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 || p.value.is_none() {
            return Some(p.clone());
        }
        let last = match p.value {
            Some(Value::AsInt(v)) => Last::Int { start: p.start_time_unix_nano, time: p.time_unix_nano, value: v },
            Some(Value::AsDouble(v)) => Last::Double { start: p.start_time_unix_nano, time: p.time_unix_nano, value: v },
            None => unreachable!("checked above"),
        };
        let batch = self.batch;
        let prev = match self.previous(&key, p.time_unix_nano) {
            Err(()) => return None,
            Ok(None) => {
                self.series.insert(key, Series { seen: batch, last });
                return None;
            }
            Ok(Some(s)) => std::mem::replace(&mut s.last, last),
        };
        let (prev_start, prev_time) = prev.start_time();
        let restarted = start_changed(p.start_time_unix_nano, prev_start);
        let (value, reset) = match (prev, p.value) {
            (Last::Int { value: old, .. }, Some(Value::AsInt(v))) if !restarted && v >= old => (Value::AsInt(v - old), false),
            (Last::Int { .. }, Some(Value::AsInt(v))) => (Value::AsInt(v), true),
            (Last::Double { value: old, .. }, Some(Value::AsDouble(v))) if !restarted && v.partial_cmp(&old) != Some(std::cmp::Ordering::Less) => {
                (Value::AsDouble(v - old), false)
            }
            (Last::Double { .. }, Some(Value::AsDouble(v))) => (Value::AsDouble(v), true),
            // The value changed type: the new one is a baseline.
            _ => return None,
        };
        let start = if reset { reset_start(p.start_time_unix_nano, prev_time) } else { prev_time };
        Some(NumberDataPoint { start_time_unix_nano: start, value: Some(value), ..p.clone() })
    }

    fn histogram(&mut self, key: Vec<u8>, p: &HistogramDataPoint) -> Option<HistogramDataPoint> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return Some(p.clone());
        }
        let last = Last::Hist {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            bounds: p.explicit_bounds.clone(),
            buckets: p.bucket_counts.clone(),
        };
        let batch = self.batch;
        let prev = match self.previous(&key, p.time_unix_nano) {
            Err(()) => return None,
            Ok(None) => {
                self.series.insert(key, Series { seen: batch, last });
                return None;
            }
            Ok(Some(s)) => std::mem::replace(&mut s.last, last),
        };
        let Last::Hist { start: prev_start, time: prev_time, count, sum, bounds, buckets } = prev else {
            return None;
        };
        if bounds != p.explicit_bounds || buckets.len() != p.bucket_counts.len() {
            return None; // new bucket layout: a new baseline
        }
        let reset = start_changed(p.start_time_unix_nano, prev_start) || p.count < count || p.bucket_counts.iter().zip(&buckets).any(|(c, o)| c < o);
        if reset {
            return Some(HistogramDataPoint { start_time_unix_nano: reset_start(p.start_time_unix_nano, prev_time), ..p.clone() });
        }
        Some(HistogramDataPoint {
            start_time_unix_nano: prev_time,
            count: p.count - count,
            sum: p.sum.zip(sum).map(|(c, o)| c - o),
            bucket_counts: p.bucket_counts.iter().zip(&buckets).map(|(c, o)| c - o).collect(),
            min: None,
            max: None,
            ..p.clone()
        })
    }

    fn exponential(&mut self, key: Vec<u8>, p: &ExponentialHistogramDataPoint) -> Option<ExponentialHistogramDataPoint> {
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return Some(p.clone());
        }
        let last = Last::Exp {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            scale: p.scale,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            positive: buckets_of(p.positive.as_ref()),
            negative: buckets_of(p.negative.as_ref()),
        };
        let batch = self.batch;
        let prev = match self.previous(&key, p.time_unix_nano) {
            Err(()) => return None,
            Ok(None) => {
                self.series.insert(key, Series { seen: batch, last });
                return None;
            }
            Ok(Some(s)) => std::mem::replace(&mut s.last, last),
        };
        let Last::Exp { start: prev_start, time: prev_time, count, sum, scale, zero_count, zero_threshold, positive, negative } = prev else {
            return None;
        };
        if scale != p.scale || zero_threshold != p.zero_threshold {
            return None; // rescaled: a new baseline
        }
        let pos = sub_exp_buckets(p.positive.as_ref(), &positive);
        let neg = sub_exp_buckets(p.negative.as_ref(), &negative);
        let reset = start_changed(p.start_time_unix_nano, prev_start) || p.count < count || p.zero_count < zero_count || pos.is_none() || neg.is_none();
        if reset {
            return Some(ExponentialHistogramDataPoint { start_time_unix_nano: reset_start(p.start_time_unix_nano, prev_time), ..p.clone() });
        }
        Some(ExponentialHistogramDataPoint {
            start_time_unix_nano: prev_time,
            count: p.count - count,
            sum: p.sum.zip(sum).map(|(c, o)| c - o),
            zero_count: p.zero_count - zero_count,
            positive: p.positive.as_ref().and(pos),
            negative: p.negative.as_ref().and(neg),
            min: None,
            max: None,
            ..p.clone()
        })
    }

    /// The request with cumulative monotonic sums (when `mode` says so) and histograms turned
    /// into deltas; metrics, scopes and resources left with no point are removed.
    pub fn convert(&mut self, req: &ExportMetricsServiceRequest, mode: Temporality) -> ExportMetricsServiceRequest {
        self.batch += 1;
        let mut out = ExportMetricsServiceRequest::default();
        for rm in &req.resource_metrics {
            let mut rkey = Vec::new();
            attributes_key(&mut rkey, rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]));
            let mut new_rm = ResourceMetrics { resource: rm.resource.clone(), scope_metrics: Vec::new(), schema_url: rm.schema_url.clone() };
            for sm in &rm.scope_metrics {
                let mut skey = rkey.clone();
                let (name, version) = sm.scope.as_ref().map(|s| (s.name.as_str(), s.version.as_str())).unwrap_or(("", ""));
                key_part(&mut skey, name.as_bytes());
                key_part(&mut skey, version.as_bytes());
                let mut new_sm = ScopeMetrics { scope: sm.scope.clone(), metrics: Vec::with_capacity(sm.metrics.len()), schema_url: sm.schema_url.clone() };
                for m in &sm.metrics {
                    let mut mkey = skey.clone();
                    key_part(&mut mkey, m.name.as_bytes());
                    let point_key = |tag: u8, attrs: &[KeyValue]| {
                        let mut k = mkey.clone();
                        k.push(tag);
                        attributes_key(&mut k, attrs);
                        k
                    };
                    let data = match &m.data {
                        Some(Data::Sum(s)) if s.is_monotonic && s.aggregation_temporality == CUMULATIVE && mode.sums_delta() => {
                            let points: Vec<_> = s.data_points.iter().filter_map(|p| self.number(point_key(b's', &p.attributes), p)).collect();
                            if points.is_empty() {
                                continue;
                            }
                            Some(Data::Sum(Sum { data_points: points, aggregation_temporality: DELTA, is_monotonic: true }))
                        }
                        Some(Data::Histogram(h)) if h.aggregation_temporality == CUMULATIVE && mode.histograms_delta() => {
                            let points: Vec<_> = h.data_points.iter().filter_map(|p| self.histogram(point_key(b'h', &p.attributes), p)).collect();
                            if points.is_empty() {
                                continue;
                            }
                            Some(Data::Histogram(Histogram { data_points: points, aggregation_temporality: DELTA }))
                        }
                        Some(Data::ExponentialHistogram(h)) if h.aggregation_temporality == CUMULATIVE && mode.histograms_delta() => {
                            let points: Vec<_> = h.data_points.iter().filter_map(|p| self.exponential(point_key(b'e', &p.attributes), p)).collect();
                            if points.is_empty() {
                                continue;
                            }
                            Some(Data::ExponentialHistogram(ExponentialHistogram { data_points: points, aggregation_temporality: DELTA }))
                        }
                        other => other.clone(),
                    };
                    new_sm.metrics.push(Metric {
                        name: m.name.clone(),
                        description: m.description.clone(),
                        unit: m.unit.clone(),
                        metadata: m.metadata.clone(),
                        data,
                    });
                }
                if !new_sm.metrics.is_empty() {
                    new_rm.scope_metrics.push(new_sm);
                }
            }
            if !new_rm.scope_metrics.is_empty() {
                out.resource_metrics.push(new_rm);
            }
        }
        if self.batch.is_multiple_of(8) {
            let batch = self.batch;
            self.series.retain(|_, s| s.seen + DELTA_STALE_BATCHES >= batch);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::{int_point, kv, metrics, request, sum};
    use opentelemetry_proto::tonic::metrics::v1::Gauge;

    fn sum_points(m: &Metric) -> (&Sum, Vec<(u64, u64, i64)>) {
        let Some(Data::Sum(s)) = &m.data else { panic!("not a sum") };
        let pts = s
            .data_points
            .iter()
            .map(|p| match p.value {
                Some(Value::AsInt(v)) => (p.start_time_unix_nano, p.time_unix_nano, v),
                _ => panic!("not an int"),
            })
            .collect();
        (s, pts)
    }

    #[test]
    fn the_first_observation_of_a_counter_only_sets_the_baseline() {
        let mut d = DeltaConverter::default();
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 100, 1000, 50)])]), Temporality::Delta);
        assert!(out.resource_metrics.is_empty(), "{out:?}");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn monotonic_sums_become_differences_with_the_previous_time_as_start() {
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![kv("dir", "rx")], 100, 1000, 50)])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![kv("dir", "rx")], 100, 2000, 80)])]), Temporality::Delta);
        let ms = metrics(&out);
        assert_eq!(ms.len(), 1);
        let (s, pts) = sum_points(ms[0]);
        assert_eq!(s.aggregation_temporality, DELTA);
        assert!(s.is_monotonic);
        assert_eq!(pts, vec![(1000, 2000, 30)]);
        assert_eq!(ms[0].unit, "By");
        assert_eq!(out.resource_metrics[0].resource.as_ref().unwrap().attributes[0], kv("host.name", "h"));
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![kv("dir", "rx")], 100, 3000, 80)])]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(2000, 3000, 0)]);
    }

    #[test]
    fn double_counters_subtract_as_doubles() {
        let mut d = DeltaConverter::default();
        let p = |t, v| NumberDataPoint { start_time_unix_nano: 1, time_unix_nano: t, value: Some(Value::AsDouble(v)), ..Default::default() };
        d.convert(&request("h", vec![sum("cpu", true, vec![p(10, 1.5)])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![sum("cpu", true, vec![p(20, 4.0)])]), Temporality::Delta);
        let Some(Data::Sum(s)) = &metrics(&out)[0].data else { panic!() };
        assert_eq!(s.data_points[0].value, Some(Value::AsDouble(2.5)));
    }

    #[test]
    fn a_counter_that_went_down_or_restarted_sends_its_new_value_whole() {
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 100, 1000, 50)])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 100, 2000, 7)])]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(1000, 2000, 7)]);
        // A new start time (the process restarted) after the previous point: it is the start.
        let out = d.convert(&request("h", vec![sum("c", true, vec![int_point(vec![], 2500, 3000, 9)])]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(2500, 3000, 9)]);
    }

    #[test]
    fn non_monotonic_sums_gauges_and_delta_input_stay_as_they_are() {
        let mut d = DeltaConverter::default();
        let gauge = Metric { name: "g".into(), data: Some(Data::Gauge(Gauge { data_points: vec![int_point(vec![], 0, 1000, 3)] })), ..Default::default() };
        let req = request("h", vec![sum("updown", false, vec![int_point(vec![], 100, 1000, 5)]), gauge]);
        let out = d.convert(&req, Temporality::Delta);
        assert_eq!(out, req);
        let out = d.convert(&req, Temporality::Delta);
        assert_eq!(out, req, "the same twice: still cumulative, still sent");
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn series_are_told_apart_by_resource_metric_and_attributes_in_any_order() {
        let mut d = DeltaConverter::default();
        let pts = |t, a: i64, b: i64| {
            vec![int_point(vec![kv("cpu", "0"), kv("mode", "user")], 1, t, a), int_point(vec![kv("cpu", "1"), kv("mode", "user")], 1, t, b)]
        };
        d.convert(&request("h1", vec![sum("c", true, pts(10, 100, 200))]), Temporality::Delta);
        d.convert(&request("h2", vec![sum("c", true, pts(10, 1000, 2000))]), Temporality::Delta);
        d.convert(&request("h1", vec![sum("other", true, pts(10, 5, 5))]), Temporality::Delta);
        assert_eq!(d.len(), 6);
        // Attributes arrive in another order: the same series.
        let swapped = vec![int_point(vec![kv("mode", "user"), kv("cpu", "1")], 1, 20, 260), int_point(vec![kv("mode", "user"), kv("cpu", "0")], 1, 20, 110)];
        let out = d.convert(&request("h1", vec![sum("c", true, swapped)]), Temporality::Delta);
        assert_eq!(sum_points(metrics(&out)[0]).1, vec![(10, 20, 60), (10, 20, 10)]);
        assert_eq!(d.len(), 6);
    }

    #[test]
    fn histograms_subtract_count_sum_and_buckets_and_leave_min_max_unset() {
        let mut d = DeltaConverter::default();
        let h = |t, count, sum: f64, buckets: Vec<u64>| Metric {
            name: "lat".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: 1,
                    time_unix_nano: t,
                    count,
                    sum: Some(sum),
                    bucket_counts: buckets,
                    explicit_bounds: vec![0.1, 1.0],
                    min: Some(0.01),
                    max: Some(3.0),
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        };
        d.convert(&request("h", vec![h(10, 3, 2.5, vec![1, 1, 1])]), Temporality::Delta);
        let out = d.convert(&request("h", vec![h(20, 5, 3.0, vec![2, 2, 1])]), Temporality::Delta);
        let Some(Data::Histogram(hh)) = &metrics(&out)[0].data else { panic!() };
        assert_eq!(hh.aggregation_temporality, DELTA);
        let p = &hh.data_points[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano, p.count, p.sum, p.bucket_counts.clone()), (10, 20, 2, Some(0.5), vec![1, 1, 0]));
        assert_eq!((p.min, p.max), (None, None));
        // lowmemory converts histograms too, but not sums.
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![h(10, 3, 2.5, vec![1, 1, 1]), sum("c", true, vec![int_point(vec![], 1, 10, 5)])]), Temporality::Lowmemory);
        let out = d.convert(&request("h", vec![h(20, 5, 3.0, vec![2, 2, 1]), sum("c", true, vec![int_point(vec![], 1, 20, 8)])]), Temporality::Lowmemory);
        let ms = metrics(&out);
        assert!(matches!(&ms[0].data, Some(Data::Histogram(h)) if h.aggregation_temporality == DELTA));
        assert_eq!(sum_points(ms[1]).0.aggregation_temporality, CUMULATIVE);
        assert_eq!(sum_points(ms[1]).1, vec![(1, 20, 8)]);
    }

    #[test]
    fn exponential_histograms_subtract_buckets_aligned_by_index() {
        let mut d = DeltaConverter::default();
        let e = |t, count, offset, buckets: Vec<u64>| Metric {
            name: "e".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    start_time_unix_nano: 1,
                    time_unix_nano: t,
                    count,
                    scale: 2,
                    positive: Some(Buckets { offset, bucket_counts: buckets }),
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        };
        d.convert(&request("h", vec![e(10, 3, 5, vec![1, 2])]), Temporality::Delta);
        // The range grew downwards by one bucket.
        let out = d.convert(&request("h", vec![e(20, 7, 4, vec![1, 3, 3])]), Temporality::Delta);
        let Some(Data::ExponentialHistogram(h)) = &metrics(&out)[0].data else { panic!() };
        let p = &h.data_points[0];
        assert_eq!(p.count, 4);
        assert_eq!(p.positive, Some(Buckets { offset: 4, bucket_counts: vec![1, 2, 1] }));
        assert_eq!(p.start_time_unix_nano, 10);
    }

    #[test]
    fn series_not_seen_for_a_while_are_forgotten() {
        let mut d = DeltaConverter::default();
        d.convert(&request("h", vec![sum("gone", true, vec![int_point(vec![], 1, 10, 5)])]), Temporality::Delta);
        for i in 0..(DELTA_STALE_BATCHES + 10) {
            d.convert(&request("h", vec![sum("kept", true, vec![int_point(vec![], 1, 20 + i, 5)])]), Temporality::Delta);
        }
        assert_eq!(d.len(), 1);
    }
}
