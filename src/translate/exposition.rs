//! Families → the Prometheus text exposition format 0.0.4, as `/metrics` serves it, e.g.
//! `system_network_io_bytes_total{device="eth0",direction="receive"} 1000`.

use std::collections::HashMap;

use super::family::{Family, Kind, Sample};
use super::values::write_sample_value;

/// `Content-Type` of what [`render_text`] writes.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders families in the Prometheus text exposition format 0.0.4.
///
/// - Families with the same name are merged so each `# HELP` (first non-empty help; the line
///   is left out when there is none) and `# TYPE` (the first family's type) appears once and
///   all lines of a name are contiguous.
/// - Within a name, a label set that occurs more than once (several collections in one
///   batch) is written once, with its newest sample.
/// - No timestamps are written: the scraper stamps samples itself, which keeps Prometheus'
///   staleness handling working (as the Collector's `prometheus` exporter does by default).
/// - Escaping: label values `\` → `\\`, `"` → `\"`, newline → `\n`; help `\` → `\\`,
///   newline → `\n`. Values `NaN`, `+Inf`, `-Inf`.
pub fn render_text(families: &[Family], out: &mut String) {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&Family>> = HashMap::new();
    for f in families {
        groups
            .entry(f.name.as_str())
            .or_insert_with(|| {
                order.push(f.name.as_str());
                Vec::new()
            })
            .push(f);
    }
    for name in order {
        let group = &groups[name];
        let help = group.iter().map(|f| f.help.as_str()).find(|h| !h.is_empty()).unwrap_or("");
        write_family_header(out, name, help, group[0].kind);

        // Newest sample per label set, in order of first appearance.
        let mut chosen: Vec<&Sample> = Vec::new();
        let mut seen: HashMap<&[(String, String)], usize> = HashMap::new();
        for s in group.iter().flat_map(|f| f.samples.iter()) {
            match seen.get(s.labels.as_slice()) {
                Some(&i) => {
                    if s.timestamp_ms >= chosen[i].timestamp_ms {
                        chosen[i] = s;
                    }
                }
                None => {
                    seen.insert(s.labels.as_slice(), chosen.len());
                    chosen.push(s);
                }
            }
        }
        for s in chosen {
            write_sample_line(out, s);
        }
    }
}

/// The `# HELP` (left out when `help` is empty) and `# TYPE` lines of a family.
pub(super) fn write_family_header(out: &mut String, name: &str, help: &str, kind: Kind) {
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(out, help);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind.as_str());
    out.push('\n');
}

pub(super) fn write_sample_line(out: &mut String, s: &Sample) {
    out.push_str(s.name());
    let mut first = true;
    for (n, v) in &s.labels {
        if n == "__name__" {
            continue;
        }
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    write_sample_value(out, s.value);
    out.push('\n');
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, AggregationTemporality, Histogram, HistogramDataPoint, Metric};

    #[test]
    fn text_rendering_merges_families_escapes_and_formats_values() {
        let sample = |name: &str, extra: &[(&str, &str)], value: f64, ts: i64| {
            let mut l = labels(extra);
            l.push(("__name__".into(), name.into()));
            l.sort();
            Sample { labels: l, value, timestamp_ms: ts, start_ms: 0 }
        };
        let fams = vec![
            Family {
                name: "g".into(),
                kind: Kind::Gauge,
                help: "line1\nback\\slash \"q\"".into(),
                unit: String::new(),
                samples: vec![sample("g", &[("path", "C:\\dir \"x\"\nnext")], f64::NAN, 1), sample("g", &[("k", "a")], 1.0, 5)],
            },
            Family {
                name: "c_total".into(),
                kind: Kind::Counter,
                help: String::new(),
                unit: String::new(),
                samples: vec![sample("c_total", &[], f64::INFINITY, 1), sample("c_total", &[("k", "n")], f64::NEG_INFINITY, 1)],
            },
            Family {
                name: "g".into(),
                kind: Kind::Gauge,
                help: "ignored".into(),
                unit: String::new(),
                samples: vec![sample("g", &[("k", "a")], 2.0, 4), sample("g", &[("k", "b")], 1e-7, 1), sample("g", &[("k", "c")], 1234.5, 1)],
            },
        ];
        let mut out = String::new();
        render_text(&fams, &mut out);
        let want = "# HELP g line1\\nback\\\\slash \"q\"\n\
                    # TYPE g gauge\n\
                    g{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} NaN\n\
                    g{k=\"a\"} 1\n\
                    g{k=\"b\"} 1e-7\n\
                    g{k=\"c\"} 1234.5\n\
                    # TYPE c_total counter\n\
                    c_total +Inf\n\
                    c_total{k=\"n\"} -Inf\n";
        assert_eq!(out, want);
        assert_eq!(out.matches("# TYPE g ").count(), 1);
    }

    #[test]
    fn text_rendering_of_a_translated_histogram_keeps_its_lines_together() {
        let m = Metric {
            name: "d".into(),
            unit: "s".into(),
            description: "Duration.".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: T0,
                    count: 2,
                    sum: Some(0.3),
                    bucket_counts: vec![1, 1],
                    explicit_bounds: vec![0.25],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let (fams, _) = translate(&request(vec![(vec![s("service.name", "j")], vec![m])]), &no_target_info());
        let mut out = String::new();
        render_text(&fams, &mut out);
        assert_eq!(
            out,
            "# HELP d_seconds Duration.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{job=\"j\",le=\"0.25\"} 1\n\
             d_seconds_bucket{job=\"j\",le=\"+Inf\"} 2\n\
             d_seconds_sum{job=\"j\"} 0.3\n\
             d_seconds_count{job=\"j\"} 2\n"
        );
    }
}
