//! `scrape_series_added`: how many series of a scrape were not in the target's previous
//! successful scrape, as Prometheus reports it. Each series is kept as a 64-bit keyed hash of
//! its metric name and attributes (about 16 bytes a series), not as a copy of its labels.

use super::limits::{FAMILY_COST, LABEL_COST, SAMPLE_COST};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric, ResourceMetrics};
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};

/// The series of a target's last successful scrape.
#[derive(Debug, Default)]
pub struct SeriesTracker {
    previous: HashSet<u64>,
    hasher: RandomState,
}

impl SeriesTracker {
    /// Records this scrape's series; returns how many were not in the previous one.
    pub fn added(&mut self, metrics: &[Metric]) -> usize {
        let mut now = HashSet::with_capacity(self.previous.len());
        for m in metrics {
            for attrs in points(m) {
                let mut h = self.hasher.build_hasher();
                m.name.hash(&mut h);
                for kv in attrs {
                    kv.key.hash(&mut h);
                    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => s.hash(&mut h),
                        _ => crate::translate::attribute_value(kv.value.as_ref()).hash(&mut h),
                    }
                }
                now.insert(h.finish());
            }
        }
        let added = now.iter().filter(|s| !self.previous.contains(s)).count();
        self.previous = now;
        added
    }

    /// Forgets every series (the target failed: all its series are gone).
    pub fn clear(&mut self) {
        self.previous = HashSet::new();
    }

    /// Series remembered.
    pub fn len(&self) -> usize {
        self.previous.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.previous.is_empty()
    }
}

/// The estimated memory of a scrape result, as [`crate::scrape::limits`] counts it: each
/// point and attribute at its cost, plus the attributes' text.
pub fn estimated_bytes(rm: &ResourceMetrics) -> usize {
    let mut total = 0usize;
    for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
        total = total.saturating_add(FAMILY_COST).saturating_add(m.name.len());
        for attrs in points(m) {
            total = total.saturating_add(SAMPLE_COST);
            for kv in attrs {
                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.len(),
                    _ => 8,
                };
                total = total.saturating_add(LABEL_COST).saturating_add(kv.key.len()).saturating_add(value);
            }
        }
    }
    total
}

/// The attributes of each data point of `m`.
fn points(m: &Metric) -> Box<dyn Iterator<Item = &[KeyValue]> + '_> {
    match &m.data {
        Some(Data::Gauge(g)) => Box::new(g.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(Data::Sum(s)) => Box::new(s.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(Data::Histogram(h)) => Box::new(h.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(Data::Summary(s)) => Box::new(s.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(Data::ExponentialHistogram(h)) => Box::new(h.data_points.iter().map(|p| p.attributes.as_slice())),
        None => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::convert::{ConvertOptions, Converter};
    use crate::scrape::text::{parse, TextFormat};

    fn metrics(text: &str) -> Vec<Metric> {
        let p = parse(text, TextFormat::Prometheus);
        Converter::default().convert(&p.families, &ConvertOptions { now_ns: 1, prefix: "", labels: &[] })
    }

    #[test]
    fn only_series_missing_from_the_previous_scrape_count_as_added() {
        let mut t = SeriesTracker::default();
        assert_eq!(t.added(&metrics("a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\n")), 3);
        assert_eq!(t.added(&metrics("a{x=\"1\"} 5\na{x=\"2\"} 6\nb 7\n")), 0, "new values, same series");
        assert_eq!(t.added(&metrics("a{x=\"1\"} 5\na{x=\"3\"} 6\nc 7\n")), 2);
        assert_eq!(t.len(), 3);
        t.clear();
        assert_eq!(t.added(&metrics("a{x=\"1\"} 5\n")), 1, "after a failure every series is new");
    }
}
