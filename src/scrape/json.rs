//! JSON scrape bodies, in the three shapes found in the wild, turned into the same
//! [`Family`] structure the text parser produces (so one converter serves both).
//!
//! 1. **metricsd** (what our `http_json` exporter and the Go metricsd POST):
//!    `{"timestamp": 1699185296, "resource": {...}, "metrics": [{"name", "value", "type",
//!    "labels"}]}`. `type` is `counter` (a monotonic sum), `gauge`, `untyped`, `histogram`
//!    (`_bucket` samples with `le`, `_sum`, `_count`) or `summary` (samples with `quantile`,
//!    `_sum`, `_count`); `value` a number, a boolean, or `"NaN"`, `"+Inf"`, `"-Inf"`.
//!    `resource` attributes are added to the target's resource (the target's own
//!    `service.name`/`service.instance.id` still win). `timestamp` is Unix seconds or RFC 3339.
//! 2. **plantd** (its metric module's message): `{"service", "timestamp", "metrics": {name:
//!    number}, "tags": {...}}`, or a batch `{"metrics": [such objects]}`. Every metric is a
//!    gauge labelled with `tags` and `service`.
//! 3. **Any other object**: every number (or boolean) in it is a gauge named by its key path,
//!    nested keys joined with `_` (`{"db": {"pool": {"idle": 3}}}` → `db_pool_idle`).
//!
//! Booleans are 0/1. Anything else (strings, nulls, arrays, a counter with a bad value, a
//! bucket without `le`) is skipped and counted; the first few are described in `errors`.
//! Characters not allowed in a Prometheus name become `_`.

use super::limits::{Budget, LimitError, Limits, JSON_VALUE_COST};
use super::text::{parse_value, Family, Kind, Sample, Suffix, MAX_REPORTED_ERRORS};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// Which shape the body had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"metrics": [{"name", "value", ...}]}`.
    Metricsd,
    /// `{"service", "metrics": {...}, "tags"}` or a batch of them.
    Plantd,
    /// An object of numbers, possibly nested.
    Object,
}

/// What a JSON body held.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonParsed {
    /// The shape recognised.
    pub shape: Shape,
    /// Families (every sample owned).
    pub families: Vec<Family<'static>>,
    /// Samples kept.
    pub samples: usize,
    /// Values skipped.
    pub skipped: usize,
    /// The first few skipped values, described.
    pub errors: Vec<String>,
    /// Resource attributes the body carried (metricsd shape).
    pub resource: Vec<(String, String)>,
}

/// Why a JSON body gave nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON, or not an object.
    #[error("{0}")]
    Invalid(String),
    /// A limit was passed after this many samples: the scrape fails whole.
    #[error("{0}")]
    Limit(LimitError, usize),
}

/// Parses a JSON body with no limits. Only a body that is not a JSON object is an error.
pub fn parse(body: &[u8]) -> Result<JsonParsed, String> {
    parse_limited(body, &Limits::none()).map_err(|e| e.to_string())
}

/// Parses a JSON body within `limits`: the document tree and the samples made from it are
/// each counted against `parsed_size_limit` as they are built, every sample against the
/// other limits, and the first limit passed stops the parse.
pub fn parse_limited(body: &[u8], limits: &Limits) -> Result<JsonParsed, JsonError> {
    let v = read_tree(body, limits)?;
    let Value::Object(top) = v else {
        return Err(JsonError::Invalid(format!("expected a JSON object, found {}", type_name(&v))));
    };
    let mut b = Builder::new(limits);
    match b.shapes(top) {
        Ok(shape) => Ok(JsonParsed { shape, samples: b.samples, skipped: b.skipped, errors: b.errors, resource: b.resource, families: b.families }),
        Err(e) => Err(JsonError::Limit(e, b.budget.samples())),
    }
}

/// The document as a `Value` tree, each value counted against the size and time budget as
/// it is built (a body of a million tiny values stops at the limit, not at a million).
fn read_tree(body: &[u8], limits: &Limits) -> Result<Value, JsonError> {
    let mut budget = Budget::counting(limits, "JSON document");
    let mut tripped = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = TreeSeed { budget: &mut budget, tripped: &mut tripped };
    let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|v| de.end().map(|()| v));
    match (parsed, tripped) {
        (_, Some(e)) => Err(JsonError::Limit(e, 0)),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(JsonError::Invalid(format!("invalid JSON: {e}"))),
    }
}

/// Builds a [`Value`], charging every value to the budget.
struct TreeSeed<'b, 'l> {
    budget: &'b mut Budget<'l>,
    tripped: &'b mut Option<LimitError>,
}

impl TreeSeed<'_, '_> {
    fn charge<E: serde::de::Error>(&mut self, bytes: usize) -> Result<(), E> {
        let r = self.budget.check_time().and_then(|()| self.budget.charge(JSON_VALUE_COST.saturating_add(bytes)));
        r.map_err(|e| {
            let msg = e.to_string();
            *self.tripped = Some(e);
            E::custom(msg)
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for TreeSeed<'_, '_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TreeSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(mut self, v: bool) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<Value, E> {
        self.charge(v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_unit<E: serde::de::Error>(mut self) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(TreeSeed { budget: &mut *self.budget, tripped: &mut *self.tripped })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            self.charge(k.len())?;
            let v = map.next_value_seed(TreeSeed { budget: &mut *self.budget, tripped: &mut *self.tripped })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

impl Builder<'_> {
    /// The shape of `top`, and every sample in it.
    fn shapes(&mut self, top: Map<String, Value>) -> Result<Shape, LimitError> {
        let b = self;
        let shape = match top.get("metrics") {
            Some(Value::Array(items)) if items.iter().all(|i| i.get("metrics").is_some_and(Value::is_object)) && !items.is_empty() => {
                for item in items {
                    if let Value::Object(o) = item {
                        b.plantd(o)?;
                    }
                }
                Shape::Plantd
            }
            Some(Value::Array(items)) => {
                let ts = timestamp_ms(top.get("timestamp"));
                if let Some(Value::Object(r)) = top.get("resource") {
                    for (k, v) in r {
                        match scalar_string(v) {
                            Some(s) => b.resource.push((k.clone(), s)),
                            None => b.skip(format!("resource.{k:.60}: {} value skipped", type_name(v))),
                        }
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    b.metricsd_item(i, item, ts)?;
                }
                Shape::Metricsd
            }
            Some(Value::Object(_)) => {
                b.plantd(&top)?;
                Shape::Plantd
            }
            _ => {
                let mut path = String::new();
                b.flatten(&mut path, &Value::Object(top), &[], None)?;
                Shape::Object
            }
        };
        Ok(shape)
    }
}

struct Builder<'l> {
    families: Vec<Family<'static>>,
    index: HashMap<(String, KindKey), usize>,
    /// Hashes of (name, labels) already used by a flattened value (duplicates are skipped);
    /// a keyed hash, so a body cannot choose collisions.
    seen: std::collections::HashSet<u64>,
    seen_hasher: std::collections::hash_map::RandomState,
    samples: usize,
    skipped: usize,
    errors: Vec<String>,
    resource: Vec<(String, String)>,
    budget: Budget<'l>,
}

type KindKey = u8;

fn kind_key(k: Kind) -> KindKey {
    k as u8
}

impl<'l> Builder<'l> {
    fn new(limits: &'l Limits) -> Builder<'l> {
        Builder {
            families: Vec::new(),
            index: HashMap::new(),
            seen: Default::default(),
            seen_hasher: Default::default(),
            samples: 0,
            skipped: 0,
            errors: Vec::new(),
            resource: Vec::new(),
            budget: Budget::new(limits),
        }
    }

    fn skip(&mut self, why: String) {
        self.skipped += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(why);
        }
    }

    /// Keeps a sample already counted by the budget.
    fn push(&mut self, family: String, kind: Kind, sample: Sample<'static>) -> Result<(), LimitError> {
        let key = (family, kind_key(kind));
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                // The name is held twice: by the family and by the index.
                self.budget.family(key.0.len().saturating_mul(2))?;
                let i = self.families.len();
                self.families.push(Family::new(key.0.clone(), kind));
                self.index.insert(key, i);
                i
            }
        };
        self.families[i].samples.push(sample);
        self.samples += 1;
        Ok(())
    }

    /// One entry of a metricsd `metrics` array.
    fn metricsd_item(&mut self, i: usize, item: &Value, ts: Option<i64>) -> Result<(), LimitError> {
        let Some(name) = item.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            self.skip(format!("metrics[{i}]: no \"name\""));
            return Ok(());
        };
        let name = sanitize(name);
        let value = match item.get("value") {
            Some(v) => number(v),
            None => None,
        };
        let Some(value) = value else {
            self.skip(format!("metrics[{i}] ({name:.60}): value is not a number"));
            return Ok(());
        };
        let mut labels: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
        if let Some(Value::Object(l)) = item.get("labels") {
            for (k, v) in l {
                match scalar_string(v) {
                    Some(s) => labels.push((Cow::Owned(k.clone()), Cow::Owned(s))),
                    None => self.skip(format!("metrics[{i}] ({name:.60}): label {k:.60} is not a string")),
                }
            }
        }
        let kind = match item.get("type").and_then(Value::as_str).unwrap_or("untyped") {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            _ => Kind::Untyped,
        };
        let has = |labels: &[(Cow<str>, Cow<str>)], k: &str| labels.iter().any(|(n, v)| n == k && parse_value(v).is_some());
        let (family, suffix) = match kind {
            Kind::Histogram => {
                if let Some(b) = name.strip_suffix("_bucket") {
                    if !has(&labels, "le") {
                        self.skip(format!("metrics[{i}] ({name:.60}): histogram bucket without a valid \"le\" label"));
                        return Ok(());
                    }
                    (b.to_string(), Suffix::Bucket)
                } else if let Some(b) = name.strip_suffix("_sum") {
                    (b.to_string(), Suffix::Sum)
                } else if let Some(b) = name.strip_suffix("_count") {
                    (b.to_string(), Suffix::Count)
                } else {
                    self.skip(format!("metrics[{i}] ({name:.60}): histogram sample is not _bucket, _sum or _count"));
                    return Ok(());
                }
            }
            Kind::Summary => {
                if let Some(b) = name.strip_suffix("_sum") {
                    (b.to_string(), Suffix::Sum)
                } else if let Some(b) = name.strip_suffix("_count") {
                    (b.to_string(), Suffix::Count)
                } else if has(&labels, "quantile") {
                    (name.clone(), Suffix::None)
                } else {
                    self.skip(format!("metrics[{i}] ({name:.60}): summary sample without a valid \"quantile\" label"));
                    return Ok(());
                }
            }
            _ => (name.clone(), Suffix::None),
        };
        self.budget.sample(&name, &labels)?;
        self.push(family, kind, Sample { suffix, labels, value, timestamp_ms: ts })
    }

    /// One plantd message.
    fn plantd(&mut self, o: &Map<String, Value>) -> Result<(), LimitError> {
        let ts = timestamp_ms(o.get("timestamp"));
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(s) = o.get("service").and_then(scalar_string) {
            labels.push(("service".into(), s));
        }
        if let Some(Value::Object(tags)) = o.get("tags") {
            for (k, v) in tags {
                match scalar_string(v) {
                    Some(s) => {
                        labels.retain(|(n, _)| n != k);
                        labels.push((k.clone(), s));
                    }
                    None => self.skip(format!("tags.{k:.60}: {} value skipped", type_name(v))),
                }
            }
        }
        if let Some(m @ Value::Object(_)) = o.get("metrics") {
            let mut path = String::new();
            self.flatten(&mut path, m, &labels, ts)?;
        }
        Ok(())
    }

    /// Every number under `v`, named by its key path. The recursion is bounded by serde_json's
    /// own nesting limit (128) on the body it parsed.
    ///
    /// The key path is one buffer, extended and cut back on the way; a leaf's name is made
    /// from it only after the budget has counted the name and labels it would add, so a long
    /// key over many leaves stops at the limit instead of being copied onto each of them.
    fn flatten(&mut self, path: &mut String, v: &Value, labels: &[(String, String)], ts: Option<i64>) -> Result<(), LimitError> {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('_');
                    }
                    path.push_str(k);
                    let r = self.flatten(path, child, labels, ts);
                    path.truncate(len);
                    r?;
                }
            }
            Value::Number(_) | Value::Bool(_) => {
                let value = number(v).unwrap_or(f64::NAN);
                if path.is_empty() {
                    self.skip("a value with an empty key skipped".into());
                    return Ok(());
                }
                // Counted before any copy is made (a leading digit adds one `_`).
                self.budget.sample(path, labels)?;
                let name = sanitize(path);
                let key = std::hash::BuildHasher::hash_one(&self.seen_hasher, (&name, labels));
                if !self.seen.insert(key) {
                    self.skip(format!("{path:.60}: duplicate name {name:.60} skipped"));
                    return Ok(());
                }
                let labels = labels.iter().map(|(k, v)| (Cow::Owned(k.clone()), Cow::Owned(v.clone()))).collect();
                self.push(name, Kind::Gauge, Sample { suffix: Suffix::None, labels, value, timestamp_ms: ts })?;
            }
            other => {
                let p = if path.is_empty() { "(top)" } else { path.as_str() };
                let why = format!("{p:.60}: {} value skipped", type_name(other));
                self.skip(why);
            }
        }
        Ok(())
    }
}

/// A number, a boolean (0/1), or `"NaN"`/`"+Inf"`/`"-Inf"`.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "nan" | "+inf" | "-inf" | "inf") => parse_value(s),
        _ => None,
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Unix seconds (a number) or an RFC 3339 string, in milliseconds.
fn timestamp_ms(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|s| s.is_finite() && *s > 0.0 && *s < 1e11).map(|s| (s * 1000.0) as i64),
        Value::String(s) => {
            let t = humantime::parse_rfc3339_weak(s).ok()?;
            Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis().min(i64::MAX as u128) as i64)
        }
        _ => None,
    }
}

/// A Prometheus-valid name: other characters become `_`, a leading digit gets a `_`.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/scrape/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn fam<'p>(p: &'p JsonParsed, name: &str) -> &'p Family<'static> {
        p.families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name} in {:?}", p.families.iter().map(|f| &f.name).collect::<Vec<_>>()))
    }

    #[test]
    fn reads_metricsds_own_payload_with_types_resource_and_timestamp() {
        let p = parse(&fixture("metricsd.json")).unwrap();
        assert_eq!(p.shape, Shape::Metricsd);
        assert_eq!(p.resource, vec![("host.name".to_string(), "web-1".to_string()), ("service.name".to_string(), "metricsd".to_string())]);
        let c = fam(&p, "app_requests_total");
        assert_eq!(c.kind, Kind::Counter);
        assert_eq!(c.samples[0].label("route"), Some("/"));
        assert_eq!(c.samples[0].timestamp_ms, Some(1_699_185_296_000));
        let g = fam(&p, "system_memory_usage_bytes");
        assert_eq!((g.kind, g.samples[0].value), (Kind::Gauge, 1204224000.0));
        assert!(fam(&p, "weird").samples[0].value.is_nan());
        assert_eq!(fam(&p, "weird").samples[1].value, f64::INFINITY);
        assert_eq!(fam(&p, "up_flag").samples[0].value, 1.0);
        let h = fam(&p, "latency_seconds");
        assert_eq!(h.kind, Kind::Histogram);
        assert_eq!(h.samples.iter().filter(|s| s.suffix == Suffix::Bucket).count(), 2);
        assert_eq!(h.samples.iter().find(|s| s.suffix == Suffix::Sum).unwrap().value, 0.7);
        let s = fam(&p, "rpc_seconds");
        assert_eq!(s.kind, Kind::Summary);
        assert_eq!(s.samples.len(), 3);
        // a string value, a bucket without `le`, an entry without a name
        assert_eq!(p.skipped, 3, "{:?}", p.errors);
    }

    #[test]
    fn reads_plantds_message_with_tags_and_service_as_labels() {
        let p = parse(&fixture("plantd.json")).unwrap();
        assert_eq!(p.shape, Shape::Plantd);
        let t = fam(&p, "temperature_celsius");
        assert_eq!((t.kind, t.samples[0].value), (Kind::Gauge, 23.5));
        assert_eq!(t.samples[0].label("service"), Some("org.plantd.TempSensor"));
        assert_eq!(t.samples[0].label("location"), Some("server_room"));
        assert_eq!(t.samples[0].timestamp_ms, Some(1_704_110_400_000));
        assert_eq!(p.samples, 3);
    }

    #[test]
    fn reads_a_plantd_batch() {
        let p = parse(br#"{"metrics": [{"service": "s1", "metrics": {"value": 1.0}}, {"service": "s2", "timestamp": "2024-01-01T12:00:01Z", "metrics": {"value": 2.0}}]}"#).unwrap();
        assert_eq!(p.shape, Shape::Plantd);
        let v = fam(&p, "value");
        assert_eq!(v.samples.iter().map(|s| (s.label("service").unwrap(), s.value)).collect::<Vec<_>>(), [("s1", 1.0), ("s2", 2.0)]);
    }

    #[test]
    fn flattens_nested_objects_joining_keys_and_counts_what_it_skips() {
        let p = parse(&fixture("nested.json")).unwrap();
        assert_eq!(p.shape, Shape::Object);
        assert_eq!(fam(&p, "db_pool_idle").samples[0].value, 3.0);
        assert_eq!(fam(&p, "db_pool_open").samples[0].value, 1.0);
        assert_eq!(fam(&p, "cache_hit_ratio").samples[0].value, 0.93);
        assert_eq!(fam(&p, "healthy").samples[0].value, 1.0);
        assert_eq!(fam(&p, "http_5xx_rate").samples[0].value, 0.0);
        assert_eq!(fam(&p, "_2xx").samples[0].value, 7.0);
        // version (string), owner (null), tags (array)
        assert_eq!(p.skipped, 3, "{:?}", p.errors);
        assert!(p.errors.iter().any(|e| e.contains("version: string")), "{:?}", p.errors);
    }

    #[test]
    fn non_objects_and_invalid_json_are_errors() {
        assert!(parse(b"[1,2]").unwrap_err().contains("array"));
        assert!(parse(b"{\"a\":").unwrap_err().contains("invalid JSON"));
        assert!(parse(b"\x00\xff garbage").is_err());
    }

    /// The body of issue 20: a long key above many leaves. Unbounded, every leaf's name would
    /// copy the key; within a budget the parse stops when the names it made reach it.
    #[test]
    fn a_long_key_over_many_leaves_stops_at_the_size_budget() {
        let key = "k".repeat(4000);
        let leaves: Vec<String> = (0..4_000).map(|i| format!("\"{i}\":1")).collect();
        let body = format!("{{\"{key}\": {{{}}}}}", leaves.join(","));
        let limits = Limits { parsed_size_limit: 1 << 20, ..Limits::none() };
        match parse_limited(body.as_bytes(), &limits) {
            Err(JsonError::Limit(LimitError::Size { what: "samples", .. }, read)) => assert!(read < 1_000_000 / 4000, "{read} samples"),
            other => panic!("{other:?}"),
        }
        let p = parse(body.as_bytes()).unwrap();
        assert_eq!(p.samples, 4_000, "without limits the same body parses");
    }

    #[test]
    fn a_body_of_many_tiny_values_stops_while_its_tree_is_built() {
        let body = format!("{{\"a\": [{}]}}", vec!["0"; 100_000].join(","));
        let limits = Limits { parsed_size_limit: 100 * JSON_VALUE_COST, ..Limits::none() };
        match parse_limited(body.as_bytes(), &limits) {
            Err(JsonError::Limit(LimitError::Size { what: "JSON document", .. }, 0)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_samples_meet_the_sample_and_label_limits() {
        let body = br#"{"metrics": [{"name": "a", "value": 1, "labels": {"x": "1", "y": "2"}}, {"name": "b", "value": 2}]}"#;
        let one = Limits { sample_limit: 1, ..Limits::none() };
        assert!(matches!(parse_limited(body, &one), Err(JsonError::Limit(LimitError::Samples { limit: 1 }, 1))));
        let labels = Limits { label_limit: 1, ..Limits::none() };
        assert!(matches!(parse_limited(body, &labels), Err(JsonError::Limit(LimitError::Labels { .. }, 0))));
        assert_eq!(parse_limited(body, &Limits { sample_limit: 2, label_limit: 2, ..Limits::none() }).unwrap().samples, 2);
    }

    #[test]
    fn duplicate_flattened_names_are_still_skipped() {
        let p = parse(br#"{"a.b": 1, "a_b": 2, "c": 3}"#).unwrap();
        assert_eq!((p.samples, p.skipped), (2, 1), "{:?}", p.errors);
    }

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let seeds = [fixture("metricsd.json"), fixture("plantd.json"), fixture("nested.json")];
        let alphabet: &[u8] = b"{}[]\":,0123456789.e-+ truefalsnNaI\\metricsvaluetypelabels";
        let mut rng = fastrand::Rng::with_seed(0x15_0e);
        for round in 0..5000 {
            let mut bytes: Vec<u8> =
                if round % 3 == 0 { (0..rng.usize(0..200)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect() } else { seeds[round % 3].clone() };
            for _ in 0..rng.usize(0..6) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.usize(..bytes.len());
                match rng.u8(0..3) {
                    0 => bytes[at] = alphabet[rng.usize(..alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, rng.u8(..)),
                }
            }
            if let Ok(p) = parse(&bytes) {
                assert!(p.samples <= bytes.len());
                assert!(p.errors.len() <= MAX_REPORTED_ERRORS);
            }
        }
        // Deep nesting is refused by serde_json's recursion limit, not a stack overflow.
        let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(parse(deep.as_bytes()).is_err());
    }
}
