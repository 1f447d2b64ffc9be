//! What a received request may hold: points that cannot be exported are dropped and counted,
//! and the client is told in an OTLP partial success (`rejected_data_points` and a message):
//!
//! - a metric without a name (all its points);
//! - a NaN or infinite value in a monotonic sum (a counter cannot be NaN);
//! - a metric with no data (counted as no points);
//! - points beyond `max_points_per_request` (the request's first points are kept).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// What [`apply`] dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Points of metrics without a name, or NaN/infinite points of monotonic sums.
    pub invalid: u64,
    /// Points beyond the per-request limit.
    pub over_limit: u64,
    /// Why, for the partial success message (the first reason of each kind).
    pub reasons: Vec<String>,
}

impl Dropped {
    /// All dropped points.
    pub fn total(&self) -> u64 {
        self.invalid.saturating_add(self.over_limit)
    }

    fn note(&mut self, reason: String) {
        if self.reasons.len() < 3 {
            self.reasons.push(reason);
        }
    }

    /// The partial success message, empty when nothing was dropped.
    pub fn message(&self) -> String {
        self.reasons.join("; ")
    }
}

fn points(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn truncate(m: &mut Metric, keep: usize) {
    match &mut m.data {
        Some(Data::Gauge(g)) => g.data_points.truncate(keep),
        Some(Data::Sum(s)) => s.data_points.truncate(keep),
        Some(Data::Histogram(h)) => h.data_points.truncate(keep),
        Some(Data::ExponentialHistogram(h)) => h.data_points.truncate(keep),
        Some(Data::Summary(s)) => s.data_points.truncate(keep),
        None => {}
    }
}

/// Drops what cannot be exported and what is over `max_points`; returns the points kept and
/// what was dropped. Empty metrics, scopes and resources left behind are removed.
pub fn apply(req: &mut ExportMetricsServiceRequest, max_points: usize) -> (u64, Dropped) {
    let mut d = Dropped::default();
    let mut kept = 0usize;
    for rm in &mut req.resource_metrics {
        for sm in &mut rm.scope_metrics {
            for m in &mut sm.metrics {
                if m.name.is_empty() {
                    let n = points(m);
                    if n > 0 {
                        d.invalid = d.invalid.saturating_add(n as u64);
                        d.note(format!("{n} points of a metric without a name"));
                    }
                    m.data = None;
                    continue;
                }
                if let Some(Data::Sum(s)) = &mut m.data {
                    if s.is_monotonic {
                        let before = s.data_points.len();
                        s.data_points.retain(|p| match p.value {
                            Some(Value::AsDouble(v)) => v.is_finite(),
                            _ => true,
                        });
                        let n = before - s.data_points.len();
                        if n > 0 {
                            d.invalid = d.invalid.saturating_add(n as u64);
                            d.note(format!("{n} NaN or infinite points of monotonic sum {}", m.name));
                        }
                    }
                }
                let n = points(m);
                let room = max_points.saturating_sub(kept);
                if n > room {
                    truncate(m, room);
                    let over = n - room;
                    if d.over_limit == 0 {
                        d.note(format!("points beyond max_points_per_request ({max_points}) from {}", m.name));
                    }
                    d.over_limit = d.over_limit.saturating_add(over as u64);
                }
                kept = kept.saturating_add(n.min(room));
            }
            sm.metrics.retain(|m| points(m) > 0);
        }
        rm.scope_metrics.retain(|s| !s.metrics.is_empty());
    }
    req.resource_metrics.retain(|r| !r.scope_metrics.is_empty());
    (kept as u64, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::*;
    use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, Sum};

    fn sum(name: &str, values: &[f64], monotonic: bool) -> Metric {
        let dps = values.iter().map(|v| NumberDataPoint { value: Some(Value::AsDouble(*v)), ..Default::default() }).collect();
        Metric { name: name.into(), data: Some(Data::Sum(Sum { data_points: dps, aggregation_temporality: 2, is_monotonic: monotonic })), ..Default::default() }
    }

    #[test]
    fn nan_in_a_monotonic_sum_and_nameless_metrics_are_dropped_and_named_in_the_message() {
        let mut r = request("h", vec![sum("jobs", &[1.0, f64::NAN, f64::INFINITY], true), sum("temp", &[f64::NAN], false), sum("", &[1.0, 2.0], true)]);
        let (kept, d) = apply(&mut r, 100);
        assert_eq!((kept, d.invalid, d.over_limit), (2, 4, 0));
        assert!(d.message().contains("monotonic sum jobs") && d.message().contains("without a name"), "{}", d.message());
        let names: Vec<&str> = r.resource_metrics[0].scope_metrics[0].metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, vec!["jobs", "temp"], "a gauge-like non-monotonic sum may be NaN; the nameless metric is gone");
    }

    #[test]
    fn points_beyond_the_limit_are_dropped_keeping_the_first_ones() {
        let mut r = request("h", vec![sum("a", &[1.0, 2.0, 3.0], true), sum("b", &[4.0, 5.0], true), sum("c", &[6.0], true)]);
        let (kept, d) = apply(&mut r, 4);
        assert_eq!((kept, d.over_limit, d.total()), (4, 2, 2));
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(m.len(), 2, "c lost all its points and is removed");
        assert_eq!(points(&m[1]), 1);
        assert!(d.message().contains("max_points_per_request (4)"));
    }
}
