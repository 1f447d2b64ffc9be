//! Prometheus names of OTel metrics and attributes (the Collector's `normalizeName` and
//! `NormalizeLabel`), e.g. `system.network.io` (`By`) as a monotonic counter →
//! `system_network_io_bytes_total`, attribute `host.name` → label `host_name`.

/// What the OTel metric is, as far as naming is concerned (the Collector's
/// `otlptranslator.MetricType`). Only `MonotonicCounter` gets `_total` and only `Gauge` with
/// unit `1` gets `_ratio`; a non-monotonic sum is exported as a gauge but named without
/// `_ratio`, exactly as the Collector does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Gauge,
    MonotonicCounter,
    NonMonotonicCounter,
    Histogram,
    Summary,
    Unknown,
}

/// UCUM unit → Prometheus unit word (the Collector's `unitMap`). Units not listed are used
/// as written, sanitised.
fn main_unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The unit after `/` (the Collector's `perUnitMap`, singular).
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// Splits into the tokens the Collector joins with `_`: runs of `[a-zA-Z0-9:]`. Every other
/// character (and `_` itself) separates tokens, so invalid characters become `_`, repeated
/// `_` collapse and leading/trailing `_` disappear. `:` is kept, as Prometheus'
/// otlptranslator keeps it; non-ASCII letters are replaced (legacy Prometheus names are
/// ASCII only).
fn name_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')).filter(|t| !t.is_empty())
}

/// `CleanUpString` of the Collector: alphanumeric runs joined with `_`.
fn clean_up(s: &str) -> String {
    let mut out = String::new();
    for t in s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(t);
    }
    out
}

/// Unit suffix tokens for `unit`: main unit (unless empty, `{…}` or already a token of the
/// name), then `per` + per-unit under the same conditions (Collector `normalizeName`).
fn push_unit_tokens(tokens: &mut Vec<String>, unit: &str) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.trim(), None),
    };
    let is_annotation = |u: &str| u.contains('{') || u.contains('}');
    if !main.is_empty() && !is_annotation(main) {
        let word = clean_up(main_unit_word(main));
        if !word.is_empty() && !tokens.contains(&word) {
            tokens.push(word);
        }
    }
    if let Some(per) = per {
        if !per.is_empty() && !is_annotation(per) {
            let word = clean_up(per_unit_word(per));
            if !word.is_empty() && !tokens.contains(&word) {
                tokens.push("per".to_string());
                tokens.push(word);
            }
        }
    }
}

/// Prometheus metric name of an OTel metric (Collector `BuildCompliantName` with suffixes,
/// i.e. `normalizeName`):
///
/// 1. the name is split into tokens of `[a-zA-Z0-9:]` (so `.`, `-`, `/`… become `_` and
///    repeated `_` collapse);
/// 2. the unit suffix is appended unless the name already has that token: `By`→`bytes`,
///    `s`→`seconds`, `ms`→`milliseconds`, `Hz`→`hertz`, `Cel`→`celsius`, `W`→`watts`,
///    `J`→`joules` (full table in `main_unit_word`), unknown units as written; `{…}` units add
///    nothing; `a/b` adds `a_per_b` with the per-unit singular (`By/s` → `bytes_per_second`);
/// 3. monotonic counters get `_total` (any other `total` token is moved to the end, so it is
///    never doubled);
/// 4. gauges of unit `1` get `_ratio` (likewise never doubled);
/// 5. a name starting with a digit gets a `_` prefix.
///
/// Returns an empty string when nothing valid is left (the caller drops such metrics).
pub fn metric_name(otel_name: &str, unit: &str, kind_hint: NameKind) -> String {
    metric_name_with_prefix(None, otel_name, unit, kind_hint)
}

/// [`metric_name`] with the Collector's `namespace` prepended as a token.
pub fn metric_name_with_prefix(prefix: Option<&str>, otel_name: &str, unit: &str, kind_hint: NameKind) -> String {
    let mut tokens: Vec<String> = name_tokens(otel_name).map(str::to_string).collect();
    if tokens.is_empty() {
        return String::new();
    }
    push_unit_tokens(&mut tokens, unit);
    if kind_hint == NameKind::MonotonicCounter {
        tokens.retain(|t| t != "total");
        tokens.push("total".to_string());
    }
    if kind_hint == NameKind::Gauge && unit == "1" {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".to_string());
    }
    let mut name = String::with_capacity(otel_name.len() + 16);
    if let Some(prefix) = prefix {
        for t in name_tokens(prefix) {
            name.push_str(t);
            name.push('_');
        }
    }
    name.push_str(&tokens.join("_"));
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The Prometheus unit word carried in [`Family::unit`](super::Family::unit): `bytes`, `seconds`,
/// `bytes_per_second`, `ratio` for gauges of unit `1`, empty for `{…}` and other
/// dimensionless units.
pub fn prometheus_unit(unit: &str, kind_hint: NameKind) -> String {
    if unit == "1" {
        return if kind_hint == NameKind::Gauge { "ratio".to_string() } else { String::new() };
    }
    let mut tokens = Vec::new();
    push_unit_tokens(&mut tokens, unit);
    tokens.join("_")
}

/// Prometheus label name of an attribute key (Collector `NormalizeLabel`): every character
/// outside `[a-zA-Z0-9_]` becomes `_` (one `_` per character: label names are not
/// collapsed, as in the Collector), a leading digit gets `key_`, a single leading `_` gets
/// `key` (`_foo` → `key_foo`); names starting with `__` are kept.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_collector_table() {
        use NameKind::*;
        let table: &[(&str, &str, NameKind, &str)] = &[
            ("system.network.io", "By", MonotonicCounter, "system_network_io_bytes_total"),
            ("system.memory.utilization", "1", Gauge, "system_memory_utilization_ratio"),
            ("system.cpu.load_average.1m", "{run_queue_item}", Gauge, "system_cpu_load_average_1m"),
            ("system.cpu.time", "s", MonotonicCounter, "system_cpu_time_seconds_total"),
            ("system.disk.io_time", "s", MonotonicCounter, "system_disk_io_time_seconds_total"),
            ("system.memory.usage", "By", NonMonotonicCounter, "system_memory_usage_bytes"),
            ("system.cpu.frequency", "Hz", Gauge, "system_cpu_frequency_hertz"),
            ("hw.temperature", "Cel", Gauge, "hw_temperature_celsius"),
            ("hw.power", "W", Gauge, "hw_power_watts"),
            ("hw.energy", "J", MonotonicCounter, "hw_energy_joules_total"),
            ("http.duration", "ms", Histogram, "http_duration_milliseconds"),
            ("net.rate", "By/s", Gauge, "net_rate_bytes_per_second"),
            ("req.rate", "{request}/s", Gauge, "req_rate_per_second"),
            ("odd.rate", "foo/bar", Gauge, "odd_rate_foo_per_bar"),
            ("weird.unit", "m V", Gauge, "weird_unit_m_V"),
            ("pct", "%", Gauge, "pct_percent"),
            ("requests_total", "{request}", MonotonicCounter, "requests_total"),
            ("total.requests", "", MonotonicCounter, "requests_total"),
            ("already_bytes", "By", Gauge, "already_bytes"),
            ("cache.ratio", "1", Gauge, "cache_ratio"),
            ("process.count", "1", NonMonotonicCounter, "process_count"),
            ("events", "1", MonotonicCounter, "events_total"),
            ("2xx.responses", "", Gauge, "_2xx_responses"),
            ("a..b__c--d", "", Gauge, "a_b_c_d"),
            ("_leading.and.trailing_", "", Gauge, "leading_and_trailing"),
            ("ns:sub.metric", "", Gauge, "ns:sub_metric"),
            ("caf\u{e9}.m", "", Gauge, "caf_m"),
            ("...", "s", Gauge, ""),
        ];
        for (otel, unit, kind, want) in table {
            assert_eq!(metric_name(otel, unit, *kind), *want, "{otel} [{unit}] {kind:?}");
        }
        assert_eq!(metric_name_with_prefix(Some("metricsd"), "1m.load", "", NameKind::Gauge), "metricsd_1m_load");
    }

    #[test]
    fn label_names_follow_the_collector_table() {
        let table = [
            ("host.name", "host_name"),
            ("a_b", "a_b"),
            ("a..b", "a__b"),
            ("0.key", "key_0_key"),
            ("_private", "key_private"),
            ("__reserved__", "__reserved__"),
            ("k8s.pod.name", "k8s_pod_name"),
            ("caf\u{e9}", "caf_"),
            ("", ""),
        ];
        for (key, want) in table {
            assert_eq!(label_name(key), want, "{key}");
        }
    }
}
