//! Received resources gain the agent's detected identity: every attribute of the agent's
//! resource (host, container, k8s, ... as `/status` shows it) that the application's resource
//! lacks is added; nothing the application set is overwritten, and `service.*` attributes are
//! never added (the application's service is not the agent's `metricsd`). E.g. an app's
//! `{service.name: checkout}` becomes `{service.name: checkout, host.name: node-7,
//! k8s.pod.name: checkout-5d8f, ...}`.

use crate::resource::Attributes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Whether an agent attribute is one a received resource may gain.
fn is_added(key: &str) -> bool {
    !key.starts_with("service.") && !key.starts_with("telemetry.sdk.")
}

/// Adds the agent's attributes that each resource of `req` lacks.
pub fn enrich(req: &mut ExportMetricsServiceRequest, agent: &Attributes) {
    for rm in &mut req.resource_metrics {
        let res = rm.resource.get_or_insert_with(Resource::default);
        for (k, v) in agent {
            if is_added(k) && !res.attributes.iter().any(|a| a.key == *k) {
                res.attributes.push(KeyValue {
                    key: k.clone(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.clone())) }),
                    ..Default::default()
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::{kv, request};

    #[test]
    fn the_app_keeps_its_attributes_and_gains_only_the_agents_missing_non_service_ones() {
        let mut r = request("app-host", vec![]);
        r.resource_metrics[0].resource.as_mut().unwrap().attributes = vec![kv("service.name", "checkout"), kv("host.name", "set-by-app")];
        r.resource_metrics.push(Default::default());
        let agent: Attributes =
            [("service.name", "metricsd"), ("service.version", "1"), ("host.name", "node-7"), ("k8s.pod.name", "checkout-5d8f"), ("container.id", "abc")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        enrich(&mut r, &agent);
        let get = |i: usize, k: &str| {
            r.resource_metrics[i].resource.as_ref().unwrap().attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone()).and_then(|v| v.value).map(
                |v| match v {
                    any_value::Value::StringValue(s) => s,
                    _ => String::new(),
                },
            )
        };
        assert_eq!(get(0, "service.name").as_deref(), Some("checkout"));
        assert_eq!(get(0, "host.name").as_deref(), Some("set-by-app"), "never overwritten");
        assert_eq!(get(0, "k8s.pod.name").as_deref(), Some("checkout-5d8f"));
        assert_eq!(get(0, "container.id").as_deref(), Some("abc"));
        assert_eq!(get(0, "service.version"), None, "service.* are the app's");
        assert_eq!(get(1, "host.name").as_deref(), Some("node-7"), "a resource-less ResourceMetrics gains a resource");
        assert_eq!(get(1, "service.name"), None);
    }
}
