//! The `queue` and `retry` sections of an exporter, e.g.
//! `queue: {max_bytes: 67108864, spool: {dir: /var/spool/metricsd}}` and
//! `retry: {initial_interval: 1s, max_interval: 30s, max_elapsed_time: 5m}`, and the backoff
//! they define ([`RetryConfig::delay`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pipeline::spool::SpoolConfig;
use crate::units::ConfigDuration;

/// Default bound of one exporter's queue.
pub const DEFAULT_QUEUE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default first retry delay.
pub const DEFAULT_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
/// Default longest retry delay.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// Default time after which a payload that keeps failing is dropped.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(300);

/// `queue`: the bound of an exporter's in-memory queue, and its optional disk spool.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Most bytes of encoded payloads held in memory (default 64 MiB); beyond it the oldest are
    /// dropped.
    pub max_bytes: u64,
    /// Disk spool (`{dir, max_bytes}`; also accepted as `buffer`); none by default.
    #[serde(alias = "buffer", skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolConfig>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { max_bytes: DEFAULT_QUEUE_MAX_BYTES, spool: None }
    }
}

/// `retry`: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry at all (default true).
    pub enabled: bool,
    /// First delay (default `"1s"`); each retry doubles it.
    pub initial_interval: ConfigDuration,
    /// Longest delay (default `"30s"`).
    pub max_interval: ConfigDuration,
    /// Give up on a payload after this long (default `"5m"`; `"0s"` = never give up).
    pub max_elapsed_time: ConfigDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: DEFAULT_INITIAL_INTERVAL.into(),
            max_interval: DEFAULT_MAX_INTERVAL.into(),
            max_elapsed_time: DEFAULT_MAX_ELAPSED.into(),
        }
    }
}

impl RetryConfig {
    /// The delay before retry number `attempt` (1-based): full jitter over
    /// `min(max, initial × 2^(attempt−1))`, never below half of it.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.initial_interval.get().as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let cap = base.min(self.max_interval.get().as_secs_f64());
        // Saturates rather than panics on a duration no clock can hold (config is range-checked,
        // this keeps a programming error from being an abort).
        Duration::try_from_secs_f64(cap * (0.5 + fastrand::f64() * 0.5)).unwrap_or(self.max_interval.get())
    }

    /// The delay before retry number `attempt` when the server asked for `server` (`Retry-After`,
    /// gRPC `RetryInfo`): honoured, but never longer than `max_interval` (a `Retry-After: 86400`
    /// must not freeze the exporter for a day after the backend recovered) and never shorter than
    /// the normal backoff step (a `Retry-After: 0` or a date in the past must not become a storm).
    pub fn delay(&self, attempt: u32, server: Option<Duration>) -> Duration {
        let step = self.backoff(attempt);
        match server {
            Some(d) => d.min(self.max_interval.get()).max(step),
            None => step,
        }
    }

    /// Problems with the durations, as `--check-config` prints them.
    pub fn validate(&self) -> Vec<String> {
        use crate::units::duration::{check_range, MAX_ELAPSED, MAX_INTERVAL, MIN_TIMEOUT};
        let mut v: Vec<String> = [
            check_range("retry.initial_interval", self.initial_interval.get(), MIN_TIMEOUT, MAX_INTERVAL),
            check_range("retry.max_interval", self.max_interval.get(), MIN_TIMEOUT, MAX_INTERVAL),
            check_range("retry.max_elapsed_time", self.max_elapsed_time.get(), Duration::ZERO, MAX_ELAPSED),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if self.max_interval.get() < self.initial_interval.get() {
            v.push(format!("`retry.max_interval` ({}) is shorter than `retry.initial_interval` ({})", self.max_interval, self.initial_interval));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_delay_is_capped_at_max_interval_and_never_below_the_backoff_step() {
        let r = RetryConfig::default();
        for _ in 0..50 {
            assert_eq!(r.delay(3, Some(Duration::from_secs(86_400))), Duration::from_secs(30));
            assert_eq!(r.delay(1, Some(Duration::MAX)), Duration::from_secs(30));
            assert_eq!(r.delay(1, Some(Duration::from_secs(10))), Duration::from_secs(10));
            // Retry-After: 0 or a date in the past: the normal step, not at once.
            let d = r.delay(4, Some(Duration::ZERO));
            assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(8), "{d:?}");
            let d = r.delay(1, None);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1), "{d:?}");
        }
        let huge = RetryConfig { initial_interval: ConfigDuration(Duration::MAX), max_interval: ConfigDuration(Duration::MAX), ..r };
        assert!(huge.backoff(7) >= Duration::from_secs(u64::MAX / 4), "no panic on a duration past f64's precision");
    }

    #[test]
    fn retry_durations_are_range_checked() {
        assert!(RetryConfig::default().validate().is_empty());
        let r = RetryConfig { initial_interval: ConfigDuration(Duration::from_secs(300_000_000_000 * 31_557_600)), ..Default::default() };
        let v = r.validate();
        assert!(v.iter().any(|m| m.contains("retry.initial_interval") && m.contains("too long")), "{v:?}");
        let r = RetryConfig { initial_interval: ConfigDuration::secs(10), max_interval: ConfigDuration::secs(5), ..Default::default() };
        assert!(r.validate().iter().any(|m| m.contains("shorter than")));
        let r = RetryConfig { max_elapsed_time: ConfigDuration::secs(0), ..Default::default() };
        assert!(r.validate().is_empty(), "0 = never give up");
    }

    #[test]
    fn the_spool_is_configured_under_queue_as_spool_or_buffer() {
        let q: QueueConfig = serde_json::from_str(r#"{"spool": {"dir": "/var/spool/x"}}"#).unwrap();
        assert_eq!(q.spool, Some(SpoolConfig::new("/var/spool/x")));
        assert_eq!(q.max_bytes, DEFAULT_QUEUE_MAX_BYTES);
        let q: QueueConfig = serde_json::from_str(r#"{"buffer": {"dir": "/x", "max_bytes": 1000}}"#).unwrap();
        assert_eq!(q.spool.unwrap().max_bytes, 1000);
        assert!(serde_json::from_str::<QueueConfig>(r#"{"spool": {"dir": "/x", "size": 1}}"#).is_err());
        assert!(serde_json::from_str::<QueueConfig>(r#"{"spool": {}}"#).is_err(), "dir is required");
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let r = RetryConfig::default();
        for _ in 0..50 {
            let d1 = r.backoff(1);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1), "{d1:?}");
            let d10 = r.backoff(10);
            assert!(d10 >= Duration::from_secs(15) && d10 <= Duration::from_secs(30), "{d10:?}");
        }
    }
}
