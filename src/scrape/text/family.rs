//! What a parse produces: [`Parsed`] families ([`Family`]) of samples ([`Sample`]), typed by
//! [`Kind`], each sample a member ([`Suffix`]) of its family, e.g. `http_requests_total` is
//! the [`Suffix::Total`] member of counter family `http_requests`.

use std::borrow::Cow;
use std::fmt;

/// Errors kept per parse (the rest are only counted).
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Which dialect to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// Prometheus text 0.0.4: timestamps in integer milliseconds.
    Prometheus,
    /// OpenMetrics 1.0: timestamps in float seconds, `# EOF` required, exemplars allowed.
    OpenMetrics,
}

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`, `unknown`, or no `# TYPE` line.
    Untyped,
    /// OpenMetrics `info`.
    Info,
    /// OpenMetrics `stateset`.
    StateSet,
    /// OpenMetrics `gaugehistogram`.
    GaugeHistogram,
}

impl Kind {
    pub(super) fn parse(word: &str) -> Option<Kind> {
        Some(match word {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" | "unknown" => Kind::Untyped,
            "info" => Kind::Info,
            "stateset" => Kind::StateSet,
            "gaugehistogram" => Kind::GaugeHistogram,
            _ => return None,
        })
    }

    /// The word as written on a `# TYPE` line (0.0.4 spelling where one exists).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
            Kind::Info => "info",
            Kind::StateSet => "stateset",
            Kind::GaugeHistogram => "gaugehistogram",
        }
    }

    /// The suffixes a sample name of this kind may add to the family name.
    fn suffixes(self) -> &'static [(&'static str, Suffix)] {
        match self {
            Kind::Counter => &[("_total", Suffix::Total), ("_created", Suffix::Created)],
            Kind::Histogram => &[("_bucket", Suffix::Bucket), ("_sum", Suffix::Sum), ("_count", Suffix::Count), ("_created", Suffix::Created)],
            Kind::Summary => &[("_sum", Suffix::Sum), ("_count", Suffix::Count), ("_created", Suffix::Created)],
            Kind::GaugeHistogram => &[("_bucket", Suffix::Bucket), ("_gsum", Suffix::Sum), ("_gcount", Suffix::Count)],
            Kind::Info => &[("_info", Suffix::Info)],
            Kind::Gauge | Kind::Untyped | Kind::StateSet => &[],
        }
    }

    /// Whether a sample named exactly as the family belongs to it.
    fn takes_bare_name(self) -> bool {
        !matches!(self, Kind::Histogram | Kind::GaugeHistogram | Kind::Info)
    }
}

/// Which member of its family a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// The family name itself (gauge, untyped, 0.0.4 counter, summary quantile).
    None,
    /// `_total`.
    Total,
    /// `_bucket`.
    Bucket,
    /// `_sum` (`_gsum` of a gauge histogram).
    Sum,
    /// `_count` (`_gcount` of a gauge histogram).
    Count,
    /// `_created`.
    Created,
    /// `_info`.
    Info,
}

impl Suffix {
    /// The suffix as written after the family name, for a family of `kind`.
    pub fn as_str(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Suffix::None, _) => "",
            (Suffix::Total, _) => "_total",
            (Suffix::Bucket, _) => "_bucket",
            (Suffix::Sum, Kind::GaugeHistogram) => "_gsum",
            (Suffix::Count, Kind::GaugeHistogram) => "_gcount",
            (Suffix::Sum, _) => "_sum",
            (Suffix::Count, _) => "_count",
            (Suffix::Created, _) => "_created",
            (Suffix::Info, _) => "_info",
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Which member of the family.
    pub suffix: Suffix,
    /// Labels in the order written.
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The value.
    pub value: f64,
    /// The sample's own timestamp in Unix milliseconds, if it has one.
    pub timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }
}

/// A metric family: metadata and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// The family name (`# TYPE` name, or the sample name when there is none).
    pub name: Cow<'a, str>,
    /// Type.
    pub kind: Kind,
    /// `# HELP` text, unescaped.
    pub help: Cow<'a, str>,
    /// `# UNIT`.
    pub unit: Cow<'a, str>,
    /// Samples in the order read.
    pub samples: Vec<Sample<'a>>,
}

impl<'a> Family<'a> {
    /// A family with no metadata.
    pub fn new(name: impl Into<Cow<'a, str>>, kind: Kind) -> Self {
        Family { name: name.into(), kind, help: Cow::Borrowed(""), unit: Cow::Borrowed(""), samples: Vec::new() }
    }

    /// The full name of a sample of this family.
    pub fn sample_name(&self, s: &Sample) -> String {
        let mut n = String::with_capacity(self.name.len() + 8);
        n.push_str(&self.name);
        n.push_str(s.suffix.as_str(self.kind));
        n
    }
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a parse found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed<'a> {
    /// Families in the order first seen.
    pub families: Vec<Family<'a>>,
    /// The first [`MAX_REPORTED_ERRORS`] malformed lines.
    pub errors: Vec<LineError>,
    /// Malformed lines in all.
    pub error_count: usize,
    /// Samples kept.
    pub samples: usize,
}

impl Parsed<'_> {
    pub(super) fn error(&mut self, line: usize, message: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(LineError { line, message: message.into() });
        }
    }
}

/// Whether `name` is a member of `f`, and which.
pub(super) fn member(f: &Family, name: &str) -> Option<Suffix> {
    let rest = name.strip_prefix(f.name.as_ref())?;
    if rest.is_empty() {
        return f.kind.takes_bare_name().then_some(Suffix::None);
    }
    f.kind.suffixes().iter().find(|(s, _)| *s == rest).map(|(_, s)| *s)
}
