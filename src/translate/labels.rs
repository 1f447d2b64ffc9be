//! The label set of one series: point attributes, promoted resource attributes, `job` and
//! `instance` from the resource, external labels, and `__name__`/`le`/`quantile` (the
//! Collector's `createAttributes`), computed once per resource in [`ResourceCtx`].

use opentelemetry_proto::tonic::common::v1::KeyValue;

/// A point attribute as the labels read it: an OTLP attribute, or the meter's
/// (`opentelemetry::KeyValue`, see [`crate::points`]).
pub(super) trait PointAttr {
    fn key(&self) -> &str;
    /// The label value ([`attribute_value`]'s rules).
    fn label_value(&self) -> String;
}

impl PointAttr for KeyValue {
    fn key(&self) -> &str {
        &self.key
    }
    fn label_value(&self) -> String {
        attribute_value(self.value.as_ref())
    }
}

impl PointAttr for opentelemetry::KeyValue {
    fn key(&self) -> &str {
        self.key.as_str()
    }
    fn label_value(&self) -> String {
        match &self.value {
            opentelemetry::Value::String(s) => s.as_str().to_string(),
            opentelemetry::Value::I64(i) => i.to_string(),
            other => attribute_value(Some(&crate::points::proto_value(other))),
        }
    }
}

use super::names::label_name;
use super::otlp::TranslateOptions;
use super::values::attribute_value;

pub(super) const SERVICE_NAME: &str = "service.name";
pub(super) const SERVICE_NAMESPACE: &str = "service.namespace";
pub(super) const SERVICE_INSTANCE_ID: &str = "service.instance.id";
pub(super) const HOST_NAME: &str = "host.name";

/// Per-resource state computed once.
pub(super) struct ResourceCtx<'a> {
    /// `service.namespace/service.name` or `service.name`.
    pub(super) job: Option<String>,
    /// `service.instance.id`, else `host.name` (metricsd's default; the Collector has none).
    pub(super) instance: Option<String>,
    pub(super) instance_from_host_name: bool,
    /// Promoted resource attributes: (raw key, value).
    pub(super) promoted: Vec<(&'a str, String)>,
    /// Sanitised external labels.
    pub(super) external: &'a [(String, String)],
}

fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

fn non_empty_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    find_attr(attrs, key).map(|kv| attribute_value(kv.value.as_ref())).filter(|v| !v.is_empty())
}

impl<'a> ResourceCtx<'a> {
    pub(super) fn new(attrs: &'a [KeyValue], opts: &'a TranslateOptions, external: &'a [(String, String)]) -> Self {
        // Collector `createAttributes`: job = "<service.namespace>/<service.name>" when both
        // exist, else service.name; instance = service.instance.id.
        let job = non_empty_attr(attrs, SERVICE_NAME).map(|name| match non_empty_attr(attrs, SERVICE_NAMESPACE) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        let (instance, instance_from_host_name) = match non_empty_attr(attrs, SERVICE_INSTANCE_ID) {
            Some(id) => (Some(id), false),
            None => match non_empty_attr(attrs, HOST_NAME) {
                Some(h) => (Some(h), true),
                None => (None, false),
            },
        };
        let promoted = opts
            .promote_resource_attributes
            .iter()
            .filter_map(|key| {
                let kv = find_attr(attrs, key)?;
                let v = attribute_value(kv.value.as_ref());
                (!v.is_empty()).then_some((kv.key.as_str(), v))
            })
            .collect();
        Self { job, instance, instance_from_host_name, promoted, external }
    }

    /// Labels of one series (Collector `createAttributes`, in its order):
    /// 1. data point attributes plus promoted resource attributes (a point attribute of the
    ///    same key wins), empty values skipped;
    /// 2. sorted by original key, names sanitised with [`label_name`]; keys that collide after
    ///    sanitising (`a.b`, `a_b`) are joined with `;` in that order;
    /// 3. `job` and `instance` from the resource override attributes of those names;
    /// 4. external labels are added where the name is still free;
    /// 5. `extra` (`__name__`, `le`, `quantile`) overrides anything.
    pub(super) fn labels<A: PointAttr>(&self, point_attrs: &[A], extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut raw: Vec<(&str, String)> = Vec::with_capacity(point_attrs.len() + self.promoted.len());
        for kv in point_attrs {
            if kv.key().is_empty() {
                continue;
            }
            let v = kv.label_value();
            if !v.is_empty() {
                raw.push((kv.key(), v));
            }
        }
        for (k, v) in &self.promoted {
            if !point_attrs.iter().any(|kv| kv.key() == *k) {
                raw.push((*k, v.clone()));
            }
        }
        raw.sort_by(|a, b| a.0.cmp(b.0));

        let mut labels: Vec<(String, String)> = Vec::with_capacity(raw.len() + 4 + self.external.len());
        for (k, v) in raw {
            let name = label_name(k);
            match labels.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(';');
                    existing.push_str(&v);
                }
                None => labels.push((name, v)),
            }
        }
        if let Some(job) = &self.job {
            set_label(&mut labels, "job", job);
        }
        if let Some(instance) = &self.instance {
            set_label(&mut labels, "instance", instance);
        }
        for (name, value) in self.external {
            if !labels.iter().any(|(n, _)| n == name) {
                labels.push((name.clone(), value.clone()));
            }
        }
        for (name, value) in extra {
            set_label(&mut labels, name, value);
        }
        labels.retain(|(n, v)| !n.is_empty() && !v.is_empty());
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels
    }
}

/// Sets `name` to `value`, replacing an existing label of that name.
fn set_label(labels: &mut Vec<(String, String)>, name: &str, value: &str) {
    match labels.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value.to_string(),
        None => labels.push((name.to_string(), value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;

    #[test]
    fn labels_are_sorted_unique_and_never_empty() {
        let req = request(vec![(
            vec![s("service.name", "svc")],
            vec![gauge("m", "", vec![(vec![s("zeta", "1"), s("Alpha", "2"), s("empty", ""), s("", "nokey"), s("mid", "3")], 1.0)])],
        )]);
        let (fams, _) = translate(&req, &no_target_info());
        let l = &fams[0].samples[0].labels;
        let names: Vec<&str> = l.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Alpha", "__name__", "job", "mid", "zeta"]);
        assert!(l.iter().all(|(n, v)| !n.is_empty() && !v.is_empty()));
    }

    #[test]
    fn attribute_keys_that_collide_after_sanitising_are_joined_with_semicolons() {
        let req =
            request(vec![(vec![s("service.name", "svc")], vec![gauge("m", "", vec![(vec![s("a_b", "second"), s("a.b", "first"), s("a-b", "zeroth")], 1.0)])])]);
        let (fams, _) = translate(&req, &no_target_info());
        // Sorted by original key: "a-b" < "a.b" < "a_b".
        assert_eq!(fams[0].samples[0].label("a_b"), Some("zeroth;first;second"));
    }

    #[test]
    fn job_joins_namespace_and_name_and_instance_prefers_service_instance_id() {
        let res = vec![s("service.namespace", "shop"), s("service.name", "cart"), s("service.instance.id", "cart-7"), s("host.name", "node1")];
        let (fams, _) = translate(&request(vec![(res, vec![gauge("m", "", vec![(vec![], 1.0)])])]), &no_target_info());
        let l = &fams[0].samples[0];
        assert_eq!(l.label("job"), Some("shop/cart"));
        assert_eq!(l.label("instance"), Some("cart-7"));
        assert_eq!(l.label("host_name"), None, "resource attributes are not copied unless promoted");
    }

    #[test]
    fn resource_job_and_instance_override_point_attributes_of_the_same_name() {
        let res = vec![s("service.name", "svc"), s("host.name", "h")];
        let m = gauge("m", "", vec![(vec![s("job", "mine"), s("instance", "mine")], 1.0)]);
        let (fams, _) = translate(&request(vec![(res, vec![m])]), &no_target_info());
        assert_eq!(fams[0].samples[0].label("job"), Some("svc"));
        assert_eq!(fams[0].samples[0].label("instance"), Some("h"));
    }

    #[test]
    fn promoted_resource_attributes_go_on_every_series_but_point_attributes_win() {
        let res = vec![s("service.name", "svc"), s("host.name", "node1"), s("k8s.pod.name", "pod-1"), s("region", "eu")];
        let m = gauge("m", "", vec![(vec![], 1.0), (vec![s("region", "us")], 2.0)]);
        let opts = TranslateOptions {
            promote_resource_attributes: vec!["k8s.pod.name".into(), "region".into(), "absent".into(), "host.name".into()],
            ..no_target_info()
        };
        let (fams, _) = translate(&request(vec![(res, vec![m])]), &opts);
        let a = &fams[0].samples[0];
        assert_eq!(a.label("k8s_pod_name"), Some("pod-1"));
        assert_eq!(a.label("region"), Some("eu"));
        assert_eq!(a.label("host_name"), Some("node1"));
        assert_eq!(a.label("absent"), None);
        assert_eq!(fams[0].samples[1].label("region"), Some("us"));
    }

    #[test]
    fn external_labels_are_added_without_overriding_series_labels() {
        let res = vec![s("service.name", "svc"), s("env", "x")];
        let m = gauge("m", "", vec![(vec![s("cluster", "own")], 1.0), (vec![], 2.0)]);
        let opts = TranslateOptions {
            external_labels: vec![("cluster".into(), "ext".into()), ("job".into(), "ext-job".into()), ("dc.name".into(), "fra".into())],
            ..Default::default()
        };
        let (fams, _) = translate(&request(vec![(res, vec![m])]), &opts);
        let m = family(&fams, "m");
        assert_eq!(m.samples[0].label("cluster"), Some("own"));
        assert_eq!(m.samples[1].label("cluster"), Some("ext"));
        assert_eq!(m.samples[1].label("job"), Some("svc"));
        assert_eq!(m.samples[1].label("dc_name"), Some("fra"));
        assert_eq!(family(&fams, "target_info").samples[0].label("dc_name"), Some("fra"));
    }
}
