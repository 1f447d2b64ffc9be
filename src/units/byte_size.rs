//! Sizes in bytes as users write them: an integer, or `"10MiB"`, `"512KB"`, `"1GiB"`.

use serde::{de, Deserialize, Deserializer, Serialize};

/// A size in bytes: an integer, or a string such as `"10MiB"`, `"512KB"`, `"1GiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub usize);

/// Parses `"10MiB"`, `"10MB"`, `"512 KiB"`, `"1048576"`.
pub fn parse_byte_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = (s[..split].trim(), s[split..].trim());
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?} (write e.g. \"10MiB\" or a number of bytes)"))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" | "k" => 1024.0,
        "mb" => 1e6,
        "mib" | "m" => 1024.0 * 1024.0,
        "gb" => 1e9,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("invalid size unit in {s:?} (B, KB, KiB, MB, MiB, GB, GiB)")),
    };
    let v = n * mult;
    if !v.is_finite() || v > usize::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(v as usize)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as \"10MiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                usize::try_from(v).map(ByteSize).map_err(|_| E::custom("size too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                usize::try_from(v).map(ByteSize).map_err(|_| E::custom("size must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_and_decimal_units_and_plain_numbers() {
        assert_eq!(parse_byte_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_byte_size("10 MB").unwrap(), 10_000_000);
        assert_eq!(parse_byte_size("512").unwrap(), 512);
        assert!(parse_byte_size("ten").is_err() && parse_byte_size("1 parsec").is_err());
    }
}
