//! What the translation produces: Prometheus metric families ([`Family`]) of samples
//! ([`Sample`], one per series and point), typed by [`Kind`].

/// Prometheus metric type of a [`Family`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Unknown,
}

impl Kind {
    /// The word used on a `# TYPE` line of the text exposition format 0.0.4.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Unknown => "untyped",
        }
    }
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sorted by name (byte order), names unique, `__name__` included, no empty values.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch (from the point's `time_unix_nano`).
    pub timestamp_ms: i64,
    /// When the series started counting, milliseconds since the Unix epoch (a cumulative sum's,
    /// histogram's or summary's `start_time_unix_nano`); 0 when unknown or for a gauge.
    /// Remote-write 2.0 sends it as the sample's `start_timestamp`; 1.0 has no place for it.
    pub start_ms: i64,
}

impl Sample {
    /// The value of `__name__`.
    pub fn name(&self) -> &str {
        self.label("__name__").unwrap_or("")
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| self.labels[i].1.as_str())
    }
}

/// All samples of one metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Base name: the `__name__` of counters and gauges (`_total` included), the name before
    /// `_bucket`/`_sum`/`_count` for histograms and summaries.
    pub name: String,
    pub kind: Kind,
    /// The OTel description.
    pub help: String,
    /// The Prometheus unit word (`bytes`, `seconds`, `bytes_per_second`, `ratio`), empty for
    /// dimensionless and `{annotation}` units (what remote-write metadata carries).
    pub unit: String,
    pub samples: Vec<Sample>,
}
