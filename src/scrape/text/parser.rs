//! The parser: [`parse`] and [`parse_limited`] read an exposition line by line; `#` lines set
//! a family's help, type and unit, sample lines are assigned to their family (by the names its
//! type allows), malformed lines are reported and skipped, and limits stop the parse.

use std::borrow::Cow;
use std::collections::HashMap;

use super::super::limits::{Budget, LimitError, Limits};
use super::family::{member, Family, Kind, Parsed, Sample, Suffix, TextFormat};
use super::lexer::{clip, is_metric_name, is_name_byte, parse_value, quoted, split_token, unescape_help, Cursor};

/// Parses a whole exposition with no limits. Never fails: bad lines are skipped and listed in
/// `errors`.
pub fn parse(input: &str, format: TextFormat) -> Parsed<'_> {
    let unlimited = Limits::none();
    // Without limits nothing can fail.
    parse_limited(input, format, &unlimited).unwrap_or_default()
}

/// Parses a whole exposition within `limits`: bad lines are skipped and listed in `errors`;
/// the first limit passed stops the parse and fails it, with the samples read until then.
pub fn parse_limited<'a>(input: &'a str, format: TextFormat, limits: &Limits) -> Result<Parsed<'a>, (LimitError, usize)> {
    let mut p = Parser { format, out: Parsed::default(), index: HashMap::new(), current: None, budget: Budget::new(limits) };
    let mut saw_eof = false;
    for (i, raw) in input.split('\n').enumerate() {
        let line_no = i + 1;
        p.budget.check_time().map_err(|e| (e, p.out.samples))?;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if saw_eof {
            if !line.trim().is_empty() {
                p.out.error(line_no, "content after # EOF");
                break;
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if rest.trim_end() == " EOF" {
                saw_eof = true;
                continue;
            }
            let r = p.comment(rest);
            p.outcome(line_no, r)?;
            continue;
        }
        let r = p.sample(line);
        p.outcome(line_no, r)?;
    }
    if format == TextFormat::OpenMetrics && !saw_eof {
        let last = input.split('\n').count();
        p.out.error(last, "missing # EOF (the body may be truncated)");
    }
    Ok(p.out)
}

/// Why a line was not kept.
#[derive(Debug)]
enum SampleError {
    /// The line is malformed: skipped, the parse goes on.
    Line(String),
    /// A limit was passed: the parse stops.
    Limit(LimitError),
}

impl From<String> for SampleError {
    fn from(s: String) -> Self {
        SampleError::Line(s)
    }
}

impl From<&str> for SampleError {
    fn from(s: &str) -> Self {
        SampleError::Line(s.to_string())
    }
}

impl From<LimitError> for SampleError {
    fn from(e: LimitError) -> Self {
        SampleError::Limit(e)
    }
}

struct Parser<'a, 'l> {
    format: TextFormat,
    out: Parsed<'a>,
    /// Family name → index in `out.families`.
    index: HashMap<Cow<'a, str>, usize>,
    /// The family of the previous sample or metadata line (the fast path).
    current: Option<usize>,
    budget: Budget<'l>,
}

impl<'a> Parser<'a, '_> {
    /// Records a malformed line, or stops the parse at a limit.
    fn outcome(&mut self, line_no: usize, r: Result<(), SampleError>) -> Result<(), (LimitError, usize)> {
        match r {
            Ok(()) => Ok(()),
            Err(SampleError::Line(e)) => {
                self.out.error(line_no, e);
                Ok(())
            }
            Err(SampleError::Limit(e)) => Err((e, self.out.samples)),
        }
    }

    fn family(&mut self, name: &'a str) -> Result<usize, LimitError> {
        if let Some(i) = self.current.filter(|&i| self.out.families[i].name == name) {
            return Ok(i);
        }
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        self.budget.family(name.len())?;
        let i = self.out.families.len();
        self.out.families.push(Family::new(name, Kind::Untyped));
        self.index.insert(Cow::Borrowed(name), i);
        Ok(i)
    }

    /// A `#` line (`rest` is what follows the `#`).
    fn comment(&mut self, rest: &'a str) -> Result<(), SampleError> {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(rest);
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
            return Ok(()); // a plain comment
        }
        let (name, rest) = split_token(rest);
        if name.is_empty() {
            return Err(format!("# {keyword} without a metric name").into());
        }
        if !is_metric_name(name) {
            return Err(format!("# {keyword}: invalid metric name {:?}", clip(name)).into());
        }
        match keyword {
            "HELP" => {
                let i = self.family(name)?;
                self.budget.charge(rest.len())?;
                let f = &mut self.out.families[i];
                if !f.help.is_empty() {
                    return Err(format!("second # HELP for {name:.60}").into());
                }
                f.help = unescape_help(rest);
                self.current = Some(i);
            }
            "TYPE" => {
                let word = rest.trim();
                let kind = Kind::parse(word).ok_or_else(|| format!("# TYPE {name:.60}: unknown type {:?}", clip(word)))?;
                let existing = match self.current.filter(|&i| self.out.families[i].name == name) {
                    Some(i) => Some(i),
                    None => self.index.get(name).copied(),
                };
                if let Some(i) = existing {
                    let f = &self.out.families[i];
                    if !f.samples.is_empty() {
                        return Err(format!("# TYPE for {name:.60} after its samples").into());
                    }
                    if f.kind != Kind::Untyped && f.kind != kind {
                        return Err(format!("second # TYPE for {name:.60}").into());
                    }
                }
                let i = self.family(name)?;
                self.out.families[i].kind = kind;
                self.current = Some(i);
            }
            _ => {
                let i = self.family(name)?;
                self.budget.charge(rest.len())?;
                self.out.families[i].unit = Cow::Borrowed(rest.trim());
                self.current = Some(i);
            }
        }
        Ok(())
    }

    /// Which family and member a sample named `name` is.
    fn resolve(&mut self, name: &'a str) -> Result<(usize, Suffix), SampleError> {
        if let Some(i) = self.current {
            if let Some(s) = member(&self.out.families[i], name) {
                return Ok((i, s));
            }
        }
        if let Some(&i) = self.index.get(name) {
            return match member(&self.out.families[i], name) {
                Some(s) => Ok((i, s)),
                None => Err(format!("sample {name:.60} cannot belong to {} family {name:.60}", self.out.families[i].kind.as_str()).into()),
            };
        }
        for suffix in ["_total", "_bucket", "_sum", "_count", "_created", "_gsum", "_gcount", "_info"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(&i) = self.index.get(base) {
                    if let Some(s) = member(&self.out.families[i], name) {
                        return Ok((i, s));
                    }
                }
            }
        }
        Ok((self.family(name)?, Suffix::None))
    }

    fn sample(&mut self, line: &'a str) -> Result<(), SampleError> {
        let mut cur = Cursor { s: line, pos: 0 };
        cur.skip_ws();
        let mut name: Option<Cow<'a, str>> = None;
        let mut separated = false;
        if cur.peek() != Some(b'{') {
            let n = cur.take_while(is_name_byte);
            if n.is_empty() || n.as_bytes()[0].is_ascii_digit() {
                return Err(format!("expected a metric name, found {:?}", clip(cur.rest())).into());
            }
            name = Some(Cow::Borrowed(n));
            separated = cur.skip_ws();
        }
        let mut labels = Vec::new();
        if cur.peek() == Some(b'{') {
            cur.pos += 1;
            parse_labels(&mut cur, &mut labels, &mut name, &self.budget)?;
            separated = cur.skip_ws();
        }
        let name = name.ok_or("a sample without a metric name")?;
        let name: &'a str = match name {
            Cow::Borrowed(n) => n,
            Cow::Owned(_) => return Err("escapes in a quoted metric name are not supported".into()),
        };
        if !separated && !cur.at_end() {
            return Err(format!("expected a space before the value, found {:?}", clip(cur.rest())).into());
        }
        let value_tok = cur.token();
        if value_tok.is_empty() {
            return Err(format!("sample {name:.60} has no value").into());
        }
        let value = parse_value(value_tok).ok_or_else(|| format!("sample {name:.60}: invalid value {:?}", clip(value_tok)))?;
        cur.skip_ws();
        let mut timestamp_ms = None;
        if !cur.at_end() && cur.peek() != Some(b'#') {
            let t = cur.token();
            timestamp_ms = Some(match self.format {
                TextFormat::Prometheus => t.parse::<i64>().map_err(|_| format!("sample {name:.60}: invalid timestamp {:?} (integer milliseconds)", clip(t)))?,
                TextFormat::OpenMetrics => {
                    let secs = t
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("sample {name:.60}: invalid timestamp {:?} (seconds)", clip(t)))?;
                    (secs * 1000.0).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64
                }
            });
            cur.skip_ws();
        }
        if !cur.at_end() {
            let rest = cur.rest();
            // An exemplar (`# {trace_id="…"} 1.0 [ts]`), as OpenMetrics writes it; ignored.
            if !(rest.starts_with("# {") || rest.starts_with("#{")) {
                return Err(format!("sample {name:.60}: unexpected text after the value: {:?}", clip(rest)).into());
            }
        }
        let (fi, suffix) = self.resolve(name)?;
        let kind = self.out.families[fi].kind;
        let check = |labels: &[(Cow<str>, Cow<str>)], key: &str| -> Result<(), String> {
            match labels.iter().find(|(k, _)| k == key) {
                None => Err(format!("sample {name:.60} has no {key:?} label")),
                Some((_, v)) if parse_value(v).is_none() => Err(format!("sample {name:.60}: invalid {key} {:?}", clip(v))),
                Some(_) => Ok(()),
            }
        };
        match (kind, suffix) {
            (Kind::Histogram | Kind::GaugeHistogram, Suffix::Bucket) => check(&labels, "le")?,
            (Kind::Summary, Suffix::None) => check(&labels, "quantile")?,
            _ => {}
        }
        self.budget.sample(name, &labels)?;
        self.out.families[fi].samples.push(Sample { suffix, labels, value, timestamp_ms });
        self.out.samples += 1;
        self.current = Some(fi);
        Ok(())
    }
}

/// The label set after its `{`. Stops at `label_limit` (counted as the labels are read, so a
/// line of a million labels never builds a list of a million).
fn parse_labels<'a>(
    cur: &mut Cursor<'a>,
    labels: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    name: &mut Option<Cow<'a, str>>,
    budget: &Budget,
) -> Result<(), SampleError> {
    loop {
        cur.skip_ws();
        match cur.peek() {
            None => return Err("unterminated label set (no closing '}')".into()),
            Some(b'}') => {
                cur.pos += 1;
                return Ok(());
            }
            _ => {}
        }
        let key: Cow<'a, str> = if cur.peek() == Some(b'"') {
            cur.pos += 1;
            let k = quoted(cur)?;
            cur.skip_ws();
            // `{"metric.name", ...}`: a quoted name without `=` is the metric name.
            if matches!(cur.peek(), Some(b',') | Some(b'}')) {
                if name.is_some() {
                    return Err("two metric names".into());
                }
                *name = Some(k);
                if cur.peek() == Some(b',') {
                    cur.pos += 1;
                }
                continue;
            }
            k
        } else {
            let at = cur.rest();
            let k = cur.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
            if k.is_empty() || k.as_bytes()[0].is_ascii_digit() {
                return Err(format!("invalid label name at {:?}", clip(at)).into());
            }
            Cow::Borrowed(k)
        };
        cur.skip_ws();
        if cur.peek() != Some(b'=') {
            return Err(format!("expected '=' after label {:?}", clip(&key)).into());
        }
        cur.pos += 1;
        cur.skip_ws();
        if cur.peek() != Some(b'"') {
            return Err(format!("label {:?}: value is not quoted", clip(&key)).into());
        }
        cur.pos += 1;
        let value = quoted(cur)?;
        if labels.iter().any(|(k, _)| *k == key) {
            return Err(format!("duplicate label {:?}", clip(&key)).into());
        }
        labels.push((key, value));
        budget.label_count(name.as_deref().unwrap_or(""), labels.len())?;
        cur.skip_ws();
        match cur.peek() {
            Some(b',') => cur.pos += 1,
            Some(b'}') => {}
            None => return Err("unterminated label set (no closing '}')".into()),
            Some(_) => return Err(format!("expected ',' or '}}' in the label set, found {:?}", clip(cur.rest())).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_REPORTED_ERRORS;
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/scrape/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn fam<'p, 'a>(p: &'p Parsed<'a>, name: &str) -> &'p Family<'a> {
        p.families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name}"))
    }

    #[test]
    fn parses_every_construct_of_the_prometheus_fixture() {
        let text = fixture("all_types.prom");
        let p = parse(&text, TextFormat::Prometheus);
        assert!(p.errors.is_empty(), "{:?}", p.errors);

        let c = fam(&p, "http_requests_total");
        assert_eq!(c.kind, Kind::Counter);
        assert_eq!(c.help, "The total number of HTTP requests.");
        assert_eq!(c.samples.len(), 2);
        assert_eq!(c.samples[0].label("method"), Some("post"));
        assert_eq!(c.samples[0].value, 1027.0);
        assert_eq!(c.samples[0].timestamp_ms, Some(1395066363000));
        assert_eq!(c.samples[1].timestamp_ms, None);

        let e = fam(&p, "msdos_file_access_time_seconds");
        assert_eq!(e.kind, Kind::Untyped);
        assert_eq!(e.samples[0].label("path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(e.samples[0].label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
        assert_eq!(e.samples[0].value, 1.458255915e9);

        let m = fam(&p, "metric_without_timestamp_and_labels");
        assert_eq!((m.kind, m.samples[0].value), (Kind::Untyped, 12.47));

        let g = fam(&p, "weird_values");
        assert!(g.samples[0].value.is_nan());
        assert_eq!(g.samples[1].value, f64::INFINITY);
        assert_eq!(g.samples[2].value, f64::NEG_INFINITY);
        assert_eq!(g.samples[3].timestamp_ms, Some(-1));

        let h = fam(&p, "http_request_duration_seconds");
        assert_eq!(h.kind, Kind::Histogram);
        let buckets: Vec<_> = h.samples.iter().filter(|s| s.suffix == Suffix::Bucket).map(|s| s.label("le").unwrap()).collect();
        assert_eq!(buckets, ["0.05", "0.1", "0.2", "0.5", "1", "+Inf"]);
        assert!(h.samples.iter().any(|s| s.suffix == Suffix::Sum && s.value == 53423.0));
        assert!(h.samples.iter().any(|s| s.suffix == Suffix::Count && s.value == 144320.0));

        let s = fam(&p, "rpc_duration_seconds");
        assert_eq!(s.kind, Kind::Summary);
        assert_eq!(s.samples.iter().filter(|s| s.suffix == Suffix::None).count(), 5);
        assert_eq!(s.samples.iter().find(|s| s.suffix == Suffix::Count).unwrap().value, 2693.0);

        let sp = fam(&p, "spaced_out");
        assert_eq!(sp.samples[0].labels, vec![(Cow::from("a"), Cow::from("1")), (Cow::from("b"), Cow::from("x y"))]);
        assert_eq!(fam(&p, "trailing_comma").samples[0].label("x"), Some("y"));
        assert_eq!(fam(&p, "odd_escape").samples[0].label("v"), Some("tab\\there"));
        let q = fam(&p, "my.dotted.metric");
        assert_eq!(q.samples[0].label("service.name"), Some("api"));
        assert_eq!(fam(&p, "help_escapes").help, "line one\nback\\slash");
    }

    #[test]
    fn parses_openmetrics_created_unit_info_stateset_exemplars_and_eof() {
        let text = fixture("openmetrics.txt");
        let p = parse(&text, TextFormat::OpenMetrics);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let c = fam(&p, "acme_http_router_request");
        assert_eq!((c.kind, c.unit.as_ref()), (Kind::Counter, "seconds"));
        assert_eq!(c.samples.iter().filter(|s| s.suffix == Suffix::Total).count(), 2);
        let created = c.samples.iter().find(|s| s.suffix == Suffix::Created).unwrap();
        assert_eq!(created.value, 1605281325.0);
        let t = c.samples.iter().find(|s| s.suffix == Suffix::Total).unwrap();
        assert_eq!(t.timestamp_ms, Some(1605281325500));
        let h = fam(&p, "request_latency_seconds");
        assert_eq!(h.kind, Kind::Histogram);
        assert!(h.samples.iter().any(|s| s.suffix == Suffix::Created));
        assert_eq!(fam(&p, "build").kind, Kind::Info);
        assert_eq!(fam(&p, "build").samples[0].suffix, Suffix::Info);
        assert_eq!(fam(&p, "feature").kind, Kind::StateSet);
        assert_eq!(fam(&p, "queue_depth").kind, Kind::GaugeHistogram);
        assert_eq!(fam(&p, "queue_depth").samples.iter().filter(|s| s.suffix == Suffix::Sum).count(), 1);
        assert_eq!(fam(&p, "thing").kind, Kind::Untyped);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_numbers_and_the_rest_is_kept() {
        let text = fixture("malformed.prom");
        let p = parse(&text, TextFormat::Prometheus);
        let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 18, 19, 21], "{:#?}", p.errors);
        assert_eq!(p.error_count, 14);
        assert!(p.errors[0].message.contains("invalid value"), "{}", p.errors[0]);
        assert_eq!(p.errors[0].to_string().split(':').next(), Some("line 4"));
        let good = fam(&p, "good");
        assert_eq!(good.samples.iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 2.0, 3.0]);
        assert_eq!(fam(&p, "also_good").samples.len(), 1);
        assert_eq!(p.samples, 4);
    }

    #[test]
    fn node_exporter_output_parses_cleanly() {
        let text = fixture("node_exporter.prom");
        let p = parse(&text, TextFormat::Prometheus);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(fam(&p, "node_cpu_seconds_total").kind, Kind::Counter);
        assert_eq!(fam(&p, "node_memory_MemTotal_bytes").kind, Kind::Gauge);
        assert_eq!(fam(&p, "go_gc_duration_seconds").kind, Kind::Summary);
        let declared = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(p.families.len(), declared);
        assert_eq!(p.samples, text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count());
    }

    #[test]
    fn openmetrics_without_eof_is_reported_and_content_after_it_too() {
        let p = parse("a 1\n", TextFormat::OpenMetrics);
        assert_eq!(p.samples, 1);
        assert!(p.errors[0].message.contains("EOF"));
        let p = parse("a 1\n# EOF\nb 2\n", TextFormat::OpenMetrics);
        assert_eq!((p.samples, p.errors[0].line), (1, 3));
    }

    #[test]
    fn errors_are_counted_but_only_the_first_hundred_kept() {
        let text = "!\n".repeat(1000);
        let p = parse(&text, TextFormat::Prometheus);
        assert_eq!((p.error_count, p.errors.len()), (1000, MAX_REPORTED_ERRORS));
    }

    #[test]
    fn buckets_without_le_and_quantile_samples_without_quantile_are_errors() {
        let p = parse("# TYPE h histogram\nh_bucket 1\nh_bucket{le=\"x\"} 1\nh_count 1\n# TYPE s summary\ns 1\n", TextFormat::Prometheus);
        assert_eq!(p.errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3, 6]);
        assert_eq!(p.samples, 1);
    }

    #[test]
    fn a_parse_stops_at_the_first_limit_and_reports_the_samples_read() {
        let limits = Limits { sample_limit: 3, ..Limits::none() };
        let text = "a 1\nbad line\nb 2\nc 3\nd 4\ne 5\n";
        let (e, read) = parse_limited(text, TextFormat::Prometheus, &limits).unwrap_err();
        assert_eq!((e, read), (LimitError::Samples { limit: 3 }, 3));
        assert_eq!(parse_limited("a 1\nb 2\nc 3\n", TextFormat::Prometheus, &limits).unwrap().samples, 3, "exactly at the limit is fine");
    }

    #[test]
    fn a_line_of_a_million_labels_stops_at_label_limit() {
        let mut line = String::from("m{");
        for i in 0..1_000_000 {
            line.push_str(&format!("l{i}=\"\","));
        }
        line.push_str("} 1\n");
        let limits = Limits { label_limit: 64, ..Limits::none() };
        let (e, _) = parse_limited(&line, TextFormat::Prometheus, &limits).unwrap_err();
        assert_eq!(e, LimitError::Labels { metric: "m".into(), limit: 64 });
    }

    #[test]
    fn long_label_names_values_and_metric_names_fail_the_parse() {
        let limits = Limits { label_name_length_limit: 8, label_value_length_limit: 8, ..Limits::none() };
        let fails = |text: &str| parse_limited(text, TextFormat::Prometheus, &limits).unwrap_err().0;
        assert!(matches!(fails("m{long_name=\"x\"} 1\n"), LimitError::LabelName { length: 9, .. }));
        assert!(matches!(fails("m{a=\"123456789\"} 1\n"), LimitError::LabelValue { length: 9, .. }));
        assert!(matches!(fails("metric_name 1\n"), LimitError::LabelValue { length: 11, .. }));
        assert!(parse_limited("m{a=\"12345678\"} 1\n", TextFormat::Prometheus, &limits).is_ok());
    }

    #[test]
    fn families_and_help_texts_count_against_the_size_budget() {
        let limits = Limits { parsed_size_limit: 100_000, ..Limits::none() };
        let help: String = (0..10_000).map(|i| format!("# HELP f{i} some help text\n")).collect();
        let (e, read) = parse_limited(&help, TextFormat::Prometheus, &limits).unwrap_err();
        assert!(matches!(e, LimitError::Size { .. }) && read == 0, "{e}");
    }

    #[test]
    fn a_parse_out_of_time_stops() {
        let limits = Limits { time_budget: Some(std::time::Duration::ZERO), ..Limits::none() };
        let text = "a 1\n".repeat(10_000);
        assert!(matches!(parse_limited(&text, TextFormat::Prometheus, &limits).unwrap_err().0, LimitError::Time { .. }));
    }

    #[test]
    fn long_names_in_line_errors_are_clipped() {
        let text = format!("{} x\n", "n".repeat(1 << 20));
        let p = parse(&text, TextFormat::Prometheus);
        assert!(p.errors[0].message.len() < 200, "{}", p.errors[0].message.len());
    }

    /// Random and mutated inputs: never a panic, output bounded by the input.
    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let seeds = [fixture("all_types.prom"), fixture("openmetrics.txt"), fixture("malformed.prom")];
        let alphabet: &[u8] = b"abc_:{}=\",\\# \t\n\r01.e+-InfNaN\xc3\xa9";
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for round in 0..5000 {
            let mut bytes: Vec<u8> = if round % 3 == 0 {
                (0..rng.usize(0..300)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect()
            } else {
                seeds[round % seeds.len()].as_bytes().to_vec()
            };
            for _ in 0..rng.usize(0..12) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.usize(..bytes.len());
                match rng.u8(0..4) {
                    0 => bytes[at] = alphabet[rng.usize(..alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, rng.u8(..)),
                    _ => {
                        let end = (at + rng.usize(0..40)).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        bytes.splice(at..at, chunk);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            for format in [TextFormat::Prometheus, TextFormat::OpenMetrics] {
                let p = parse(&text, format);
                assert!(p.samples <= text.lines().count() + 1);
                assert!(p.errors.len() <= MAX_REPORTED_ERRORS);
                let labels: usize = p.families.iter().flat_map(|f| &f.samples).map(|s| s.labels.len()).sum();
                assert!(labels <= text.len());
            }
        }
    }
}
