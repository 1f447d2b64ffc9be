//! Durations as users write them: `"30s"`, `"1m30s"`, `"500ms"` (humantime), or metricsd's
//! integer nanoseconds (Go's `time.Duration` in JSON: `30000000000` is 30 s).

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

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
        return Ok(Duration::from_nanos(ns));
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
                Ok(ConfigDuration(Duration::from_nanos(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(|v| ConfigDuration(Duration::from_nanos(v))).map_err(|_| E::custom(format!("negative duration {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(ConfigDuration(Duration::from_nanos(v as u64)))
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
    fn writes_back_as_a_human_string() {
        assert_eq!(serde_json::to_string(&ConfigDuration::secs(90)).unwrap(), "\"1m 30s\"");
    }
}
