//! What applications pushed to the OTLP receiver, kept for `/metrics` when
//! `receivers.otlp.metrics_expiration` asks for it (as the Collector's prometheus exporter keeps
//! series for its `metric_expiration`): per resource and scope, the latest data of each metric,
//! dropped once it is older than the expiration.
//!
//! Bounded: at most [`MAX_RESOURCES`] resources (the oldest goes first, counted) and at most
//! [`MAX_METRICS_PER_RESOURCE`] metrics each (later new names are left out, counted).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most resources kept.
pub const MAX_RESOURCES: usize = 1024;
/// Most metrics kept per resource (all scopes together).
pub const MAX_METRICS_PER_RESOURCE: usize = 10_000;

/// The latest pushed metrics, by resource.
#[derive(Debug, Default)]
pub struct Received {
    /// `None`: nothing is kept (the default).
    expiration: Option<Duration>,
    by_resource: HashMap<String, Entry>,
    /// Resources evicted for [`MAX_RESOURCES`] and metrics left out for
    /// [`MAX_METRICS_PER_RESOURCE`], since start (logged once).
    pub dropped: u64,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    metrics: ResourceMetrics,
}

/// A resource's identity: its attributes, sorted.
fn key(attributes: &[KeyValue]) -> String {
    let mut kv: Vec<String> = attributes.iter().map(|kv| format!("{}={:?}", kv.key, kv.value)).collect();
    kv.sort_unstable();
    kv.join("\u{1f}")
}

fn same_scope(a: &ScopeMetrics, b: &ScopeMetrics) -> bool {
    a.schema_url == b.schema_url && a.scope == b.scope
}

fn metric_count(rm: &ResourceMetrics) -> usize {
    rm.scope_metrics.iter().map(|s| s.metrics.len()).sum()
}

impl Received {
    /// Keeps what is pushed for `expiration` (`None`: keeps nothing).
    pub fn set_expiration(&mut self, expiration: Option<Duration>) {
        self.expiration = expiration;
        if expiration.is_none() {
            self.by_resource.clear();
        }
    }

    /// Whether anything is kept at all.
    pub fn is_on(&self) -> bool {
        self.expiration.is_some()
    }

    /// Merges `pushed` in: each metric replaces the one of the same name in the same resource
    /// and scope.
    pub fn keep(&mut self, pushed: &[ResourceMetrics], now: Instant) {
        if self.expiration.is_none() {
            return;
        }
        for rm in pushed {
            let k = key(rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default());
            if !self.by_resource.contains_key(&k) && self.by_resource.len() >= MAX_RESOURCES {
                if let Some(oldest) = self.by_resource.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone()) {
                    self.by_resource.remove(&oldest);
                    self.count_dropped("resources");
                }
            }
            let entry = self.by_resource.entry(k).or_insert_with(|| Entry {
                at: now,
                metrics: ResourceMetrics { resource: rm.resource.clone(), scope_metrics: Vec::new(), schema_url: rm.schema_url.clone() },
            });
            entry.at = now;
            for sm in &rm.scope_metrics {
                let mut count = metric_count(&entry.metrics);
                let pos = match entry.metrics.scope_metrics.iter().position(|s| same_scope(s, sm)) {
                    Some(p) => p,
                    None => {
                        entry.metrics.scope_metrics.push(ScopeMetrics { scope: sm.scope.clone(), metrics: Vec::new(), schema_url: sm.schema_url.clone() });
                        entry.metrics.scope_metrics.len() - 1
                    }
                };
                let kept = &mut entry.metrics.scope_metrics[pos].metrics;
                for m in &sm.metrics {
                    match kept.iter_mut().find(|k| k.name == m.name) {
                        Some(k) => *k = m.clone(),
                        None if count < MAX_METRICS_PER_RESOURCE => {
                            kept.push(m.clone());
                            count += 1;
                        }
                        None => {
                            self.dropped += 1;
                            if self.dropped == 1 {
                                tracing::warn!(
                                    limit = MAX_METRICS_PER_RESOURCE,
                                    "Pushed metrics kept for /metrics: a resource has too many; new names are left out (exported as usual)"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    fn count_dropped(&mut self, what: &'static str) {
        self.dropped += 1;
        if self.dropped == 1 {
            tracing::warn!(what, limit = MAX_RESOURCES, "Pushed metrics kept for /metrics: too many resources; the oldest is left out (exported as usual)");
        }
    }

    /// Resources kept now (expired ones included until the next [`current`](Received::current)).
    pub fn resources(&self) -> usize {
        self.by_resource.len()
    }

    /// What is kept and not yet expired at `now` (expired resources are dropped).
    pub fn current(&mut self, now: Instant) -> Vec<ResourceMetrics> {
        let Some(exp) = self.expiration else { return Vec::new() };
        self.by_resource.retain(|_, e| now.saturating_duration_since(e.at) <= exp);
        let mut out: Vec<(Instant, &ResourceMetrics)> = self.by_resource.values().map(|e| (e.at, &e.metrics)).collect();
        out.sort_by_key(|(at, _)| *at);
        out.into_iter().map(|(_, m)| m.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope};
    use opentelemetry_proto::tonic::metrics::v1::Metric;
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn rm(service: &str, metrics: &[(&str, &str)]) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                    key_strindex: 0,
                }],
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "app".into(), ..Default::default() }),
                metrics: metrics.iter().map(|(n, d)| Metric { name: n.to_string(), description: d.to_string(), ..Default::default() }).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }
    }

    fn names(v: &[ResourceMetrics]) -> Vec<(String, String)> {
        v.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).map(|m| (m.name.clone(), m.description.clone())).collect()
    }

    #[test]
    fn nothing_is_kept_unless_an_expiration_is_set() {
        let mut r = Received::default();
        r.keep(&[rm("a", &[("m", "1")])], Instant::now());
        assert!(r.current(Instant::now()).is_empty());
    }

    #[test]
    fn a_later_push_replaces_a_metric_of_the_same_resource_and_scope_and_keeps_the_others() {
        let mut r = Received::default();
        r.set_expiration(Some(Duration::from_secs(60)));
        let t = Instant::now();
        r.keep(&[rm("a", &[("m", "1"), ("n", "1")])], t);
        r.keep(&[rm("a", &[("m", "2")]), rm("b", &[("m", "b")])], t);
        let got = r.current(t);
        assert_eq!(got.len(), 2, "two resources");
        let mut n = names(&got);
        n.sort();
        assert_eq!(n, [("m".to_string(), "2".to_string()), ("m".into(), "b".into()), ("n".into(), "1".into())]);
    }

    #[test]
    fn a_resource_not_pushed_for_longer_than_the_expiration_is_dropped() {
        let mut r = Received::default();
        r.set_expiration(Some(Duration::from_secs(60)));
        let t = Instant::now();
        r.keep(&[rm("old", &[("m", "1")])], t);
        r.keep(&[rm("new", &[("m", "1")])], t + Duration::from_secs(50));
        let got = r.current(t + Duration::from_secs(90));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].resource, rm("new", &[]).resource);
    }

    #[test]
    fn resources_beyond_the_limit_evict_the_oldest_and_are_counted() {
        let mut r = Received::default();
        r.set_expiration(Some(Duration::from_secs(3600)));
        let t = Instant::now();
        for i in 0..MAX_RESOURCES + 3 {
            r.keep(&[rm(&format!("s{i}"), &[("m", "1")])], t + Duration::from_millis(i as u64));
        }
        let got = r.current(t + Duration::from_secs(10));
        assert_eq!(got.len(), MAX_RESOURCES);
        assert_eq!(r.dropped, 3);
        assert!(!got.iter().any(|g| g.resource == rm("s0", &[]).resource), "the oldest went first");
    }
}
