//! Values as the Prometheus side writes them: attribute values as label values (the
//! Collector's `pcommon.Value.AsString`, e.g. `["a",1]` for an array, `aGk=` for bytes), `le` and
//! `quantile` bounds, and sample values of the text format.
//!
//! JSON (arrays and key-value lists) is written by `serde_json` and bytes by the `base64`
//! crate; what stays ours is the ECMAScript number format ([`write_es6_number`]): Go's
//! `pcommon` writes doubles the way JavaScript's `Number.prototype.toString` does (`1e+21`,
//! `3`, not `1e21`, `3.0` as `serde_json` and `ryu` do), and the few lines over the standard
//! library's shortest round-trip formatting are cheaper than another dependency for it.

use std::fmt::Write as _;
use std::io;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

/// Label value of an attribute (the Collector's `pcommon.Value.AsString`): strings as is;
/// ints in decimal; doubles as JSON/ES6 numbers (`0.5`, `1e+21`, `1e-7`; NaN and ±Inf as
/// `NaN`, `+Inf`, `-Inf`); bools `true`/`false`; bytes base64 (standard alphabet, padded);
/// arrays and key-value lists as compact JSON (`["a",1]`, `{"k":"v"}`); an absent value or a
/// profiling string-table reference is empty (and an empty label is dropped).
pub fn attribute_value(v: Option<&AnyValue>) -> String {
    let mut out = String::new();
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(any_value::Value::StringValueStrindex(_)) => {}
        Some(any_value::Value::StringValue(s)) => out.push_str(s),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => write_es6_number(&mut out, *d, false),
        Some(any_value::Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode_string(b, &mut out),
        Some(value @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => write_json(&mut out, value),
    }
    out
}

/// ES6 number-to-string (what Go's pcommon uses for doubles): plain decimal unless
/// `|d| < 1e-6` or `|d| >= 1e21`, then exponent form with a sign (`1e+21`). In JSON
/// (`json`), NaN and ±Inf are `null`; otherwise `NaN`, `+Inf`, `-Inf`.
fn write_es6_number(out: &mut String, d: f64, json: bool) {
    if d.is_nan() {
        out.push_str(if json { "null" } else { "NaN" });
    } else if d.is_infinite() {
        out.push_str(match (json, d > 0.0) {
            (true, _) => "null",
            (false, true) => "+Inf",
            (false, false) => "-Inf",
        });
    } else {
        let a = d.abs();
        if a != 0.0 && !(1e-6..1e21).contains(&a) {
            let s = format!("{d:e}");
            match s.split_once('e') {
                Some((m, e)) if !e.starts_with('-') => {
                    let _ = write!(out, "{m}e+{e}");
                }
                _ => out.push_str(&s),
            }
        } else {
            let _ = write!(out, "{d}");
        }
    }
}

/// An array or key-value list as compact JSON.
fn write_json(out: &mut String, value: &any_value::Value) {
    let mut ser = serde_json::Serializer::with_formatter(Vec::new(), PcommonJson);
    // Writing into a Vec cannot fail, and every map key is a string.
    let _ = Json(Some(value)).serialize(&mut ser);
    out.push_str(&String::from_utf8_lossy(&ser.into_inner()));
}

/// An attribute value as `serde` sees it: strings, ints, bools and NaN/±Inf (`null`) as
/// `serde_json` writes them, doubles through [`PcommonJson`], bytes as a base64 string, arrays
/// as sequences, key-value lists as maps (keys in their order, duplicates kept).
struct Json<'a>(Option<&'a any_value::Value>);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None | Some(any_value::Value::StringValueStrindex(_)) => ser.serialize_none(),
            Some(any_value::Value::StringValue(s)) => ser.serialize_str(s),
            Some(any_value::Value::BoolValue(b)) => ser.serialize_bool(*b),
            Some(any_value::Value::IntValue(i)) => ser.serialize_i64(*i),
            Some(any_value::Value::DoubleValue(d)) => ser.serialize_f64(*d),
            Some(any_value::Value::BytesValue(b)) => ser.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            Some(any_value::Value::ArrayValue(a)) => {
                let mut seq = ser.serialize_seq(Some(a.values.len()))?;
                for e in &a.values {
                    seq.serialize_element(&Json(e.value.as_ref()))?;
                }
                seq.end()
            }
            Some(any_value::Value::KvlistValue(kv)) => {
                let mut map = ser.serialize_map(Some(kv.values.len()))?;
                for e in &kv.values {
                    map.serialize_entry(&e.key, &Json(e.value.as_ref().and_then(|v| v.value.as_ref())))?;
                }
                map.end()
            }
        }
    }
}

/// `serde_json`'s compact output with pcommon's two differences: doubles in the ES6 format
/// ([`write_es6_number`]), and backspace and form feed as `\u0008` and `\u000c` (as Go's
/// `encoding/json` wrote them before Go 1.22) instead of `\b` and `\f`.
struct PcommonJson;

impl Formatter for PcommonJson {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut s = String::new();
        write_es6_number(&mut s, value, true);
        writer.write_all(s.as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, writer: &mut W, char_escape: CharEscape) -> io::Result<()> {
        match char_escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(writer, other),
        }
    }
}

/// `le` and `quantile` values: Go's `strconv.FormatFloat(f, 'f', -1, 64)` (shortest
/// round-trip decimal, never an exponent), `+Inf`/`-Inf`/`NaN` for the special values.
pub(super) fn format_bound(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// A sample value in the text format: `NaN`, `+Inf`, `-Inf`, otherwise the shortest
/// round-trip decimal, in exponent form outside `[1e-4, 1e21)` to keep lines short.
pub(super) fn write_sample_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let a = v.abs();
        if a != 0.0 && !(1e-4..1e21).contains(&a) {
            let _ = write!(out, "{v:e}");
        } else {
            let _ = write!(out, "{v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{kv, s};
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};

    #[test]
    fn attribute_values_are_formatted_like_pcommon_as_string() {
        let f = |v: any_value::Value| attribute_value(Some(&AnyValue { value: Some(v) }));
        assert_eq!(f(any_value::Value::StringValue("x y".into())), "x y");
        assert_eq!(f(any_value::Value::IntValue(-42)), "-42");
        assert_eq!(f(any_value::Value::DoubleValue(0.5)), "0.5");
        assert_eq!(f(any_value::Value::DoubleValue(3.0)), "3");
        assert_eq!(f(any_value::Value::DoubleValue(1e21)), "1e+21");
        assert_eq!(f(any_value::Value::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(f(any_value::Value::DoubleValue(f64::NAN)), "NaN");
        assert_eq!(f(any_value::Value::BoolValue(true)), "true");
        assert_eq!(f(any_value::Value::BytesValue(b"hello".to_vec())), "aGVsbG8=");
        assert_eq!(f(any_value::Value::BytesValue(b"hi!".to_vec())), "aGkh");
        let arr = any_value::Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue { value: Some(any_value::Value::StringValue("a\"b".into())) },
                AnyValue { value: Some(any_value::Value::IntValue(1)) },
                AnyValue { value: Some(any_value::Value::DoubleValue(f64::INFINITY)) },
                AnyValue { value: None },
            ],
        });
        assert_eq!(f(arr), r#"["a\"b",1,null,null]"#);
        let map = any_value::Value::KvlistValue(KeyValueList { values: vec![s("k", "v"), kv("n", any_value::Value::BoolValue(false))] });
        assert_eq!(f(map), r#"{"k":"v","n":false}"#);
        assert_eq!(attribute_value(None), "");
    }

    fn array(values: Vec<any_value::Value>) -> any_value::Value {
        any_value::Value::ArrayValue(ArrayValue { values: values.into_iter().map(|v| AnyValue { value: Some(v) }).collect() })
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_every_control_character() {
        let all: String = (0u8..0x20).map(char::from).chain("\"\\/\u{7f}é€😀".chars()).collect();
        let v = array(vec![any_value::Value::StringValue(all)]);
        let want = concat!(
            r#"["\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\t\n\u000b\u000c\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"#,
            "\\\"\\\\/\u{7f}é€😀\"]"
        );
        assert_eq!(attribute_value(Some(&AnyValue { value: Some(v) })), want);
    }

    #[test]
    fn nested_json_keeps_key_order_duplicates_and_es6_doubles() {
        let inner = any_value::Value::KvlistValue(KeyValueList {
            values: vec![
                kv("z", any_value::Value::DoubleValue(1e21)),
                kv("a", any_value::Value::DoubleValue(3.0)),
                kv("z", any_value::Value::DoubleValue(-1.5e-7)),
            ],
        });
        let bytes = any_value::Value::BytesValue(vec![0xff, 0x00, 0x10, 0x7f]);
        let v =
            array(vec![inner, array(vec![]), bytes, any_value::Value::KvlistValue(KeyValueList::default()), any_value::Value::DoubleValue(f64::NEG_INFINITY)]);
        let got = attribute_value(Some(&AnyValue { value: Some(v) }));
        assert_eq!(got, r#"[{"z":1e+21,"a":3,"z":-1.5e-7},[],"/wAQfw==",{},null]"#);
        let with_absent =
            any_value::Value::KvlistValue(KeyValueList { values: vec![KeyValue { key: "k\n".into(), value: None, ..Default::default() }, s("x", "")] });
        assert_eq!(attribute_value(Some(&AnyValue { value: Some(with_absent) })), r#"{"k\n":null,"x":""}"#);
    }

    #[test]
    fn bounds_are_never_in_exponent_form_and_sample_values_are_outside_the_usual_range() {
        assert_eq!(format_bound(1e-7), "0.0000001");
        assert_eq!(format_bound(1e22), "10000000000000000000000");
        assert_eq!([format_bound(f64::INFINITY), format_bound(f64::NEG_INFINITY), format_bound(f64::NAN)], ["+Inf", "-Inf", "NaN"]);
        let v = |x: f64| {
            let mut out = String::new();
            write_sample_value(&mut out, x);
            out
        };
        assert_eq!([v(0.0), v(0.5), v(1e-5), v(1e21), v(12345.0)], ["0", "0.5", "1e-5", "1e21", "12345"]);
    }
}
