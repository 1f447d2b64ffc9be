//! Test helper: runs a collector through real OpenTelemetry instruments and reads back what
//! they report, as the scheduler would (tick, refresh, collect into OTLP points).
//!
//! ```ignore
//! let clock = TickClock::default();
//! let mut c = UptimeCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
//! let mut h = Harness::new(&clock, &mut c);
//! let points = h.tick(&mut c).unwrap();
//! assert_eq!(value(&points, "system.uptime", &[]), Some(2300.30));
//! ```

#![allow(dead_code)] // shared with other collectors' tests; not every helper is used by each

use super::{Collector, CollectorError, TickClock};
use crate::pipeline::meter::MeterProvider;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumValue;
use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;
use std::collections::BTreeMap;

/// The instrument kind a point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Monotonic sum (Counter, ObservableCounter).
    Counter,
    /// Non-monotonic sum (UpDownCounter).
    UpDownCounter,
    /// Gauge.
    Gauge,
}

/// One reported data point: metric name, attributes sorted by key (values as strings), value,
/// instrument kind.
pub(crate) type Point = (String, Vec<(String, String)>, f64, Kind);

/// A meter provider on which one collector is registered.
pub(crate) struct Harness {
    clock: TickClock,
    provider: MeterProvider,
    units: BTreeMap<String, String>,
}

impl Harness {
    /// Registers `collector`'s instruments on a fresh provider, as the agent does. `clock`
    /// must be the one the collector was built with.
    pub(crate) fn new(clock: &TickClock, collector: &mut dyn Collector) -> Self {
        let provider = MeterProvider::new();
        collector.register(&provider.meter("metricsd-test"));
        Harness { clock: clock.clone(), provider, units: BTreeMap::new() }
    }

    /// One tick: advances the clock, refreshes the collector and collects. A failed refresh is
    /// returned as the error (nothing is collected then).
    pub(crate) fn tick(&mut self, collector: &mut dyn Collector) -> Result<Vec<Point>, CollectorError> {
        self.clock.advance();
        collector.refresh()?;
        Ok(self.collect())
    }

    /// Collects without ticking or refreshing (what a callback reports right now).
    pub(crate) fn collect(&mut self) -> Vec<Point> {
        let mut out = Vec::new();
        {
            for sm in &self.provider.collect(std::time::SystemTime::now()) {
                for m in &sm.metrics {
                    self.units.insert(m.name.clone(), m.unit.clone());
                    let (kind, points): (Kind, &[NumberDataPoint]) = match &m.data {
                        Some(Data::Gauge(g)) => (Kind::Gauge, &g.data_points),
                        Some(Data::Sum(s)) if s.is_monotonic => (Kind::Counter, &s.data_points),
                        Some(Data::Sum(s)) => (Kind::UpDownCounter, &s.data_points),
                        _ => continue,
                    };
                    for p in points {
                        let mut attrs: Vec<(String, String)> = p
                            .attributes
                            .iter()
                            .map(|kv| {
                                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                    Some(AnyValue::StringValue(s)) => s.clone(),
                                    Some(AnyValue::IntValue(i)) => i.to_string(),
                                    Some(AnyValue::DoubleValue(d)) => d.to_string(),
                                    Some(AnyValue::BoolValue(b)) => b.to_string(),
                                    other => format!("{other:?}"),
                                };
                                (kv.key.clone(), v)
                            })
                            .collect();
                        attrs.sort();
                        let v = match p.value {
                            Some(NumValue::AsDouble(d)) => d,
                            Some(NumValue::AsInt(i)) => i as f64,
                            None => f64::NAN,
                        };
                        out.push((m.name.clone(), attrs, v, kind));
                    }
                }
            }
        }
        out
    }

    /// The unit of a metric seen in an earlier collect.
    pub(crate) fn unit(&self, metric: &str) -> Option<&str> {
        self.units.get(metric).map(String::as_str)
    }
}

/// Registers `collector`, ticks once and returns what it reports (panics if refresh fails).
pub(crate) fn collect_once(clock: &TickClock, collector: &mut dyn Collector) -> Vec<Point> {
    let mut h = Harness::new(clock, collector);
    h.tick(collector).expect("refresh")
}

/// The value of the point of `metric` whose attributes are exactly `attrs` (any order).
pub(crate) fn value(points: &[Point], metric: &str, attrs: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    want.sort();
    points.iter().find(|p| p.0 == metric && p.1 == want).map(|p| p.2)
}

/// The points of one metric.
pub(crate) fn of<'a>(points: &'a [Point], metric: &str) -> Vec<&'a Point> {
    points.iter().filter(|p| p.0 == metric).collect()
}

/// The kind of a metric (of its first point).
pub(crate) fn kind(points: &[Point], metric: &str) -> Option<Kind> {
    points.iter().find(|p| p.0 == metric).map(|p| p.3)
}

/// A writable copy of a fixture tree (`tests/fixtures/proc/<kernel>`), for tests that change
/// files between ticks. The tree lives as long as the returned `TempDir`.
pub(crate) fn fixture_copy(kernel: &str) -> (tempfile::TempDir, crate::units::HostPaths) {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&crate::procfs::fixture(kernel), dir.path());
    let paths = crate::units::HostPaths::under(dir.path());
    (dir, paths)
}

/// Writes `text` to `rel` (`proc/stat`) below a tree from [`fixture_copy`], creating
/// directories; the file is rewritten in place so files kept open see the new contents.
pub(crate) fn write(dir: &tempfile::TempDir, rel: &str, text: &str) {
    let p = dir.path().join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::load::LoadCollector;
    use crate::procfs::fixture_paths;

    #[test]
    fn the_harness_reads_back_what_a_collector_reports_and_nothing_once_stale() {
        let clock = TickClock::default();
        let mut c = LoadCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(value(&p, "system.cpu.load_average.1m", &[]), Some(0.30));
        assert_eq!(kind(&p, "system.cpu.load_average.15m"), Some(Kind::Gauge));
        assert_eq!(h.unit("system.cpu.load_average.5m"), Some("{run_queue_item}"));
        clock.advance();
        assert!(h.collect().is_empty(), "a stale snapshot must report nothing");
    }
}
