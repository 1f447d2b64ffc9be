//! What one scrape may produce, checked while it is parsed, so a hostile or broken target
//! cannot make the agent balloon or spin: Prometheus' `sample_limit`, `label_limit`,
//! `label_name_length_limit` and `label_value_length_limit`, a budget on the memory the
//! parsed samples take (`parsed_size_limit`), and a time budget.
//!
//! The parsers call [`Budget`] for every family and sample they are about to keep (and the
//! JSON reader for every value it is about to build), and stop at the first limit passed:
//! as in Prometheus, a scrape over a limit fails whole (`up` 0, no partial data).
//!
//! **The size budget** counts what the kept data will hold in memory once converted to OTLP:
//! every metric name, label name and label value byte, plus [`SAMPLE_COST`] bytes for each
//! sample (an OTLP data point and its bookkeeping), [`LABEL_COST`] for each label (an OTLP
//! attribute: two small heap strings) and [`FAMILY_COST`] for each metric family. The JSON
//! reader also counts the document tree it builds ([`JSON_VALUE_COST`] a value, plus its key
//! and string bytes) against the same limit, separately. The costs are measured averages, not
//! exact sizes: measured with the agent binary (50,000 series of 1 and of 5 labels, no
//! exporter), one scrape's points held about 400 bytes a sample and 160 a label besides their
//! text. The agent holds about two such copies at a time (the batch being built and the last
//! one kept for `/metrics`), plus the body and the parse while a scrape is read.

use std::time::{Duration, Instant};

/// Bytes counted for each sample besides its name and labels.
pub const SAMPLE_COST: usize = 384;
/// Bytes counted for each label besides its name and value.
pub const LABEL_COST: usize = 160;
/// Bytes counted for each metric family besides its name, help and unit.
pub const FAMILY_COST: usize = 384;
/// Bytes counted for each value of a JSON document besides its key and string.
pub const JSON_VALUE_COST: usize = 80;
/// The clock is read once every this many checks.
const TIME_CHECK_EVERY: u32 = 256;
/// Characters of a metric or label name quoted in an error.
const QUOTED: usize = 50;

/// One target's limits (0 for any count or length: no limit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Samples one scrape may have.
    pub sample_limit: usize,
    /// Labels one sample may carry, `extra_labels` included.
    pub label_limit: usize,
    /// Bytes of one label name.
    pub label_name_length_limit: usize,
    /// Bytes of one label value or metric name.
    pub label_value_length_limit: usize,
    /// Estimated bytes the parsed samples may take (see the module docs).
    pub parsed_size_limit: usize,
    /// How long parsing may take.
    pub time_budget: Option<Duration>,
    /// Labels the target adds to every sample (its `labels`).
    pub extra_labels: usize,
    /// Their bytes (names and values).
    pub extra_label_bytes: usize,
}

impl Limits {
    /// No limit at all.
    pub fn none() -> Limits {
        Limits::default()
    }
}

/// Why a scrape stopped. The messages are stable from one scrape to the next (no counts that
/// vary), so a target failing the same way logs once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// More samples than `sample_limit`.
    #[error("sample_limit exceeded: more than {limit} samples")]
    Samples {
        /// The limit.
        limit: usize,
    },
    /// A sample with more labels than `label_limit`.
    #[error("label_limit exceeded (metric: {metric}, limit: {limit} labels)")]
    Labels {
        /// The metric (clipped).
        metric: String,
        /// The limit.
        limit: usize,
    },
    /// A label name longer than `label_name_length_limit`.
    #[error("label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {length}, limit: {limit})")]
    LabelName {
        /// The metric (clipped).
        metric: String,
        /// The label (clipped).
        name: String,
        /// Its length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// A label value (or metric name, `__name__`) longer than `label_value_length_limit`.
    #[error("label_value_length_limit exceeded (metric: {metric}, label: {name}, length: {length}, limit: {limit})")]
    LabelValue {
        /// The metric (clipped).
        metric: String,
        /// The label (clipped), `__name__` for the metric name.
        name: String,
        /// Its length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The parsed samples would take more than `parsed_size_limit`.
    #[error("parsed_size_limit exceeded: the {what} would take more than {limit} bytes once parsed")]
    Size {
        /// `samples` or `JSON document`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Parsing ran out of time.
    #[error("parsing took longer than its time budget ({budget:?}); the scrape is dropped")]
    Time {
        /// The budget.
        budget: Duration,
    },
}

/// A parse's running count against its [`Limits`].
#[derive(Debug)]
pub struct Budget<'l> {
    limits: &'l Limits,
    deadline: Option<Instant>,
    samples: usize,
    bytes: usize,
    what: &'static str,
    calls: u32,
}

impl<'l> Budget<'l> {
    /// A budget for the samples of one parse; the time budget starts now.
    pub fn new(limits: &'l Limits) -> Budget<'l> {
        Budget::counting(limits, "samples")
    }

    /// A budget counting `what` (used in the size error).
    pub fn counting(limits: &'l Limits, what: &'static str) -> Budget<'l> {
        let deadline = limits.time_budget.and_then(|d| Instant::now().checked_add(d));
        Budget { limits, deadline, samples: 0, bytes: 0, what, calls: 0 }
    }

    /// Samples counted so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Estimated bytes counted so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Fails once the time budget is spent (the clock is read every few hundred calls).
    pub fn check_time(&mut self) -> Result<(), LimitError> {
        self.calls = self.calls.wrapping_add(1);
        if !self.calls.is_multiple_of(TIME_CHECK_EVERY) {
            return Ok(());
        }
        match (self.deadline, self.limits.time_budget) {
            (Some(d), Some(budget)) if Instant::now() >= d => Err(LimitError::Time { budget }),
            _ => Ok(()),
        }
    }

    /// Counts `bytes` against `parsed_size_limit`.
    pub fn charge(&mut self, bytes: usize) -> Result<(), LimitError> {
        self.bytes = self.bytes.saturating_add(bytes);
        let limit = self.limits.parsed_size_limit;
        if limit != 0 && self.bytes > limit {
            return Err(LimitError::Size { what: self.what, limit });
        }
        Ok(())
    }

    /// A new metric family with these texts.
    pub fn family(&mut self, name_help_unit_bytes: usize) -> Result<(), LimitError> {
        self.charge(FAMILY_COST.saturating_add(name_help_unit_bytes))
    }

    /// Fails when a sample of `name` may carry no more labels than `count` so far (checked
    /// while the labels are read, so a line of a million labels stops at the limit).
    pub fn label_count(&self, name: &str, count: usize) -> Result<(), LimitError> {
        let limit = self.limits.label_limit;
        if limit != 0 && count.saturating_add(self.limits.extra_labels) > limit {
            return Err(LimitError::Labels { metric: quote(name), limit });
        }
        Ok(())
    }

    /// A sample about to be kept: checks every limit, then counts it.
    pub fn sample<K: AsRef<str>, V: AsRef<str>>(&mut self, name: &str, labels: &[(K, V)]) -> Result<(), LimitError> {
        self.check_time()?;
        let l = self.limits;
        if l.sample_limit != 0 && self.samples >= l.sample_limit {
            return Err(LimitError::Samples { limit: l.sample_limit });
        }
        if l.label_value_length_limit != 0 && name.len() > l.label_value_length_limit {
            return Err(LimitError::LabelValue { metric: quote(name), name: "__name__".into(), length: name.len(), limit: l.label_value_length_limit });
        }
        self.label_count(name, labels.len())?;
        let mut bytes = SAMPLE_COST.saturating_add(name.len()).saturating_add(l.extra_label_bytes).saturating_add(l.extra_labels.saturating_mul(LABEL_COST));
        for (k, v) in labels {
            let (k, v) = (k.as_ref(), v.as_ref());
            if l.label_name_length_limit != 0 && k.len() > l.label_name_length_limit {
                return Err(LimitError::LabelName { metric: quote(name), name: quote(k), length: k.len(), limit: l.label_name_length_limit });
            }
            if l.label_value_length_limit != 0 && v.len() > l.label_value_length_limit {
                return Err(LimitError::LabelValue { metric: quote(name), name: quote(k), length: v.len(), limit: l.label_value_length_limit });
            }
            bytes = bytes.saturating_add(LABEL_COST).saturating_add(k.len()).saturating_add(v.len());
        }
        self.charge(bytes)?;
        self.samples += 1;
        Ok(())
    }
}

/// At most [`QUOTED`] characters of a name, for an error message.
fn quote(s: &str) -> String {
    let mut end = s.len().min(QUOTED);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { sample_limit: 2, label_limit: 2, label_name_length_limit: 4, label_value_length_limit: 8, parsed_size_limit: 10_000, ..Limits::none() }
    }

    #[test]
    fn the_sample_past_sample_limit_fails() {
        let l = limits();
        let mut b = Budget::new(&l);
        let none: [(&str, &str); 0] = [];
        b.sample("a", &none).unwrap();
        b.sample("b", &none).unwrap();
        assert_eq!(b.sample("c", &none), Err(LimitError::Samples { limit: 2 }));
        assert_eq!(b.samples(), 2);
    }

    #[test]
    fn label_count_names_and_values_are_checked_and_the_metric_name_counts_as_a_value() {
        let l = limits();
        let mut b = Budget::new(&l);
        assert!(matches!(b.sample("m", &[("a", "1"), ("b", "2"), ("c", "3")]), Err(LimitError::Labels { limit: 2, .. })));
        assert!(matches!(b.sample("m", &[("long_name", "1")]), Err(LimitError::LabelName { length: 9, .. })));
        assert!(matches!(b.sample("m", &[("a", "123456789")]), Err(LimitError::LabelValue { length: 9, .. })));
        let e = b.sample("metric_name_too_long", &[("a", "1")]).unwrap_err();
        assert!(e.to_string().contains("label: __name__"), "{e}");
        assert_eq!(b.samples(), 0);
    }

    #[test]
    fn the_target_labels_count_toward_label_limit_and_the_size() {
        let l = Limits { label_limit: 3, extra_labels: 2, extra_label_bytes: 10, ..Limits::none() };
        let mut b = Budget::new(&l);
        b.sample("m", &[("a", "1")]).unwrap();
        assert_eq!(b.bytes(), SAMPLE_COST + 1 + 10 + 2 * LABEL_COST + LABEL_COST + 2);
        assert!(b.sample("m", &[("a", "1"), ("b", "2")]).is_err());
    }

    #[test]
    fn the_size_budget_stops_a_parse_before_the_limit_is_passed_by_much() {
        let l = Limits { parsed_size_limit: 10 * SAMPLE_COST, ..Limits::none() };
        let mut b = Budget::new(&l);
        let none: [(&str, &str); 0] = [];
        let kept = (0..100).take_while(|_| b.sample("", &none).is_ok()).count();
        assert_eq!(kept, 10);
        assert!(b.sample("", &none).unwrap_err().to_string().starts_with("parsed_size_limit exceeded"));
    }

    #[test]
    fn a_spent_time_budget_fails_the_next_checks() {
        let l = Limits { time_budget: Some(Duration::ZERO), ..Limits::none() };
        let mut b = Budget::new(&l);
        let failed = (0..2 * TIME_CHECK_EVERY).any(|_| b.check_time().is_err());
        assert!(failed);
        let unlimited = Limits::none();
        let mut b = Budget::new(&unlimited);
        assert!((0..2 * TIME_CHECK_EVERY).all(|_| b.check_time().is_ok()));
    }

    #[test]
    fn names_in_errors_are_clipped() {
        let l = limits();
        let mut b = Budget::new(&l);
        let long = "x".repeat(10_000);
        let e = b.sample(&long, &[("a", "1")]).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
    }
}
