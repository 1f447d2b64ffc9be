//! A collector's sources failing alone.
//!
//! A collector that reads several independent sources (the network collector's `net/dev`,
//! TCP and UDP tables; paging's `vmstat` and `swaps`) reports what it could read: a source
//! that fails leaves out only its own metrics, logs its error once (again only when the error
//! changes) and its recovery once. The refresh fails, and the scheduler reports the collector
//! as failed, only when every source failed.

use super::CollectorError;
use std::collections::BTreeMap;

/// The last error of each failing source of one collector.
#[derive(Debug)]
pub struct Sources {
    collector: &'static str,
    failing: BTreeMap<&'static str, String>,
    /// Sources read this refresh, and the first error of this refresh.
    ok: usize,
    first_error: Option<CollectorError>,
}

impl Sources {
    /// No source failing yet.
    pub fn new(collector: &'static str) -> Self {
        Sources { collector, failing: BTreeMap::new(), ok: 0, first_error: None }
    }

    /// Starts a refresh.
    pub fn begin(&mut self) {
        self.ok = 0;
        self.first_error = None;
    }

    /// The value of a source's read, or `None` (logged once per distinct error) if it failed.
    pub fn check<T, E: Into<CollectorError>>(&mut self, source: &'static str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                self.ok += 1;
                if self.failing.remove(source).is_some() {
                    tracing::info!(collector = self.collector, source, "Source recovered");
                }
                Some(v)
            }
            Err(e) => {
                let e: CollectorError = e.into();
                let msg = e.to_string();
                if self.failing.get(source) != Some(&msg) {
                    tracing::warn!(collector = self.collector, source, error = %msg, "Source failed; its metrics are left out until it recovers");
                    self.failing.insert(source, msg);
                } else {
                    tracing::debug!(collector = self.collector, source, error = %msg, "Source still failing");
                }
                self.first_error.get_or_insert(e);
                None
            }
        }
    }

    /// Names of the sources failing now.
    pub fn failing(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.failing.keys().copied()
    }

    /// Ends a refresh: an error only when sources were read and every one failed.
    pub fn end(&mut self) -> Result<(), CollectorError> {
        match self.first_error.take() {
            Some(e) if self.ok == 0 => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(msg: &str) -> Result<u32, CollectorError> {
        Err(CollectorError::Other { what: "x".into(), msg: msg.into() })
    }

    #[test]
    fn one_failing_source_does_not_fail_the_refresh_but_all_failing_do() {
        let mut s = Sources::new("test");
        s.begin();
        assert_eq!(s.check("a", Ok::<_, CollectorError>(1)), Some(1));
        assert_eq!(s.check("b", err("gone")), None);
        assert!(s.end().is_ok());
        assert_eq!(s.failing().collect::<Vec<_>>(), ["b"]);
        s.begin();
        s.check("a", err("broken"));
        s.check("b", err("gone"));
        assert_eq!(s.end().unwrap_err().to_string(), "x: broken", "the first error is the collector's");
        s.begin();
        s.check("a", Ok::<_, CollectorError>(2));
        s.check("b", Ok::<_, CollectorError>(3));
        assert!(s.end().is_ok());
        assert_eq!(s.failing().count(), 0, "both recovered");
    }
}
