//! Durations as users write them: `"30s"`, `"1m30s"`, `"500ms"` (humantime), or metricsd's
//! integer nanoseconds (Go's `time.Duration` in JSON: `30000000000` is 30 s).
//!
//! A bare number is nanoseconds, as Go's JSON has it; one below a millisecond (other than 0) is
//! refused with a hint, since `timeout: 30` in YAML or TOML means 30 seconds to whoever wrote it,
//! not 30 ns. Each key's sane range is checked by [`check_range`] with the bounds below, so that
//! `--check-config` refuses `interval: 500000000000y` instead of the agent aborting on an
//! `Instant` overflow at its first tick; [`deadline_after`] is the saturating `Instant + Duration`
//! for the places that add a peer's or config's duration to now.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, Instant};

/// Shortest collection or scrape interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest interval (collection, scrape, a collector's own period, a retry step): a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Shortest timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Longest timeout (a request, a collector's refresh, the shutdown flush): an hour.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3_600);
/// Longest time a payload may keep being retried (`retry.max_elapsed_time`): 30 days.
pub const MAX_ELAPSED: Duration = Duration::from_secs(30 * 86_400);
/// Bare numbers below this many nanoseconds are refused (they are seconds or milliseconds meant
/// as nanoseconds).
const MIN_BARE_NANOS: u64 = 1_000_000;

/// `Ok` when `d` lies in `min..=max`, else the message `--check-config` prints for `key`.
pub fn check_range(key: &str, d: Duration, min: Duration, max: Duration) -> Result<(), String> {
    if d < min {
        Err(format!("`{key}` ({}) is too short (minimum {})", ConfigDuration(d), ConfigDuration(min)))
    } else if d > max {
        Err(format!("`{key}` ({}) is too long (maximum {})", ConfigDuration(d), ConfigDuration(max)))
    } else {
        Ok(())
    }
}

/// `from + d`, or a year after `from` where that overflows the platform's clock (a peer's or a
/// config's duration must never abort the agent).
pub fn deadline_after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d).or_else(|| from.checked_add(Duration::from_secs(365 * 86_400))).unwrap_or(from)
}

fn bare_nanos(ns: u64) -> Result<Duration, String> {
    if ns != 0 && ns < MIN_BARE_NANOS {
        return Err(format!("a bare number is nanoseconds: {ns} is {ns} ns; write a duration with its unit, e.g. \"{ns}s\" or \"{ns}ms\""));
    }
    Ok(Duration::from_nanos(ns))
}

/// A [`Duration`] read from `"30s"` or integer nanoseconds, written back as `"30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// `n` seconds.
    pub const fn secs(n: u64) -> Self {
        ConfigDuration(Duration::from_secs(n))
    }
    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Self {
        ConfigDuration(Duration::from_millis(n))
    }
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        ConfigDuration(d)
    }
}

/// Parses `"30s"`, `"1m30s"`, `"250ms"` or a bare integer of nanoseconds (`"30000000000"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(ns) = s.parse::<u64>() {
        return bare_nanos(ns);
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e} (write e.g. \"30s\", \"1m\", \"500ms\")"))
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30s\" or integer nanoseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                bare_nanos(v).map(ConfigDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                let v = u64::try_from(v).map_err(|_| E::custom(format!("negative duration {v}")))?;
                self.visit_u64(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 {
                    self.visit_u64(v as u64)
                } else {
                    Err(E::custom(format!("invalid duration {v}")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_humantime_strings_and_go_nanoseconds() {
        let v: Vec<ConfigDuration> = serde_json::from_str(r#"["30s", "1m30s", "250ms", 30000000000, "5000000000"]"#).unwrap();
        assert_eq!(v[0].get(), Duration::from_secs(30));
        assert_eq!(v[1].get(), Duration::from_secs(90));
        assert_eq!(v[2].get(), Duration::from_millis(250));
        assert_eq!(v[3].get(), Duration::from_secs(30));
        assert_eq!(v[4].get(), Duration::from_secs(5));
    }

    #[test]
    fn rejects_garbage_and_negative_durations_with_a_hint() {
        let e = serde_json::from_str::<ConfigDuration>(r#""thirty""#).unwrap_err().to_string();
        assert!(e.contains("invalid duration \"thirty\""), "{e}");
        assert!(serde_json::from_str::<ConfigDuration>("-5").is_err());
    }

    #[test]
    fn a_bare_number_below_a_millisecond_is_refused_with_a_hint_in_every_format() {
        for (text, e) in [
            ("30", serde_json::from_str::<ConfigDuration>("30").map(|_| ()).map_err(|e| e.to_string())),
            ("30", serde_yaml_ng::from_str::<ConfigDuration>("30").map(|_| ()).map_err(|e| e.to_string())),
            ("\"999999\"", serde_json::from_str::<ConfigDuration>("\"999999\"").map(|_| ()).map_err(|e| e.to_string())),
            ("1.5", serde_json::from_str::<ConfigDuration>("1.5").map(|_| ()).map_err(|e| e.to_string())),
        ] {
            let e = e.expect_err(text);
            assert!(e.contains("nanoseconds") && e.contains("s\""), "{text}: {e}");
        }
        #[derive(Deserialize)]
        struct T {
            #[allow(dead_code)]
            timeout: ConfigDuration,
        }
        let e = toml::from_str::<T>("timeout = 30").map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("\"30s\""), "{e}");
        // Zero is zero in any unit, and a millisecond or more of nanoseconds is metricsd's JSON.
        assert_eq!(serde_yaml_ng::from_str::<ConfigDuration>("0").unwrap().get(), Duration::ZERO);
        assert_eq!(serde_json::from_str::<ConfigDuration>("1000000").unwrap().get(), Duration::from_millis(1));
    }

    #[test]
    fn a_number_too_large_for_a_duration_is_an_error_not_a_saturation() {
        assert!(serde_json::from_str::<ConfigDuration>("1e300").is_err());
        assert!(serde_json::from_str::<ConfigDuration>("-1").is_err());
        let huge = serde_json::from_str::<ConfigDuration>("18446744073709551615").unwrap();
        assert!(check_range("k", huge.get(), MIN_INTERVAL, MAX_INTERVAL).unwrap_err().contains("too long"));
    }

    #[test]
    fn ranges_name_the_key_and_the_bound() {
        assert_eq!(
            check_range("collector.interval", Duration::from_millis(50), MIN_INTERVAL, MAX_INTERVAL).unwrap_err(),
            "`collector.interval` (50ms) is too short (minimum 100ms)"
        );
        let e = check_range("timeout", Duration::from_secs(500_000_000_000 * 31_557_600), MIN_TIMEOUT, MAX_TIMEOUT).unwrap_err();
        assert!(e.starts_with("`timeout` (") && e.ends_with("is too long (maximum 1h)"), "{e}");
        assert!(check_range("t", Duration::from_millis(1), MIN_TIMEOUT, MAX_TIMEOUT).is_ok());
    }

    #[test]
    fn a_deadline_past_the_clock_saturates_instead_of_aborting() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        assert!(deadline_after(now, Duration::MAX) > now);
        assert!(deadline_after(now, Duration::from_secs(u64::MAX)) >= now + Duration::from_secs(86_400));
    }

    #[test]
    fn writes_back_as_a_human_string() {
        assert_eq!(serde_json::to_string(&ConfigDuration::secs(90)).unwrap(), "\"1m 30s\"");
    }
}
