//! An OTLP/HTTP request body to an `ExportMetricsServiceRequest`: the `Content-Encoding`
//! (`gzip`, `zstd` or none) undone with the output bounded while decompressing (a gzip bomb
//! never allocates past the limit), then protobuf (`application/x-protobuf`) or OTLP/JSON
//! (`application/json`), e.g.
//!
//! ```json
//! {"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"app"}}]},
//!   "scopeMetrics":[{"metrics":[{"name":"jobs","sum":{"aggregationTemporality":2,"isMonotonic":true,
//!   "dataPoints":[{"asInt":"5","timeUnixNano":"1700000000000000000"}]}}]}]}]}
//! ```
//!
//! OTLP/JSON's particulars (camelCase keys, 64-bit integers as strings, enums as integers,
//! hex trace and span ids) are those of `opentelemetry-proto`'s serde mapping.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use std::io::Read;

/// The body's format, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

/// The body's compression, from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// None (`identity` or no header).
    Identity,
    /// `gzip`.
    Gzip,
    /// `zstd`.
    Zstd,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// `Content-Type` or `Content-Encoding` that the receiver does not take.
    #[error("unsupported {header}: {value:?} (expected {expected})")]
    Unsupported { header: &'static str, value: String, expected: &'static str },
    /// The decompressed body is over the limit.
    #[error("the request is larger than {limit} bytes after decompression")]
    TooLarge { limit: usize },
    /// The compressed stream is broken.
    #[error("cannot decompress the {encoding} body: {msg}")]
    Compression { encoding: &'static str, msg: String },
    /// Not a valid message of the format.
    #[error("malformed {format} ExportMetricsServiceRequest: {msg}")]
    Malformed { format: &'static str, msg: String },
}

impl Format {
    /// From a `Content-Type` value (parameters such as `; charset=utf-8` ignored).
    pub fn from_content_type(v: &str) -> Result<Format, DecodeError> {
        match v.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
            "application/json" => Ok(Format::Json),
            _ => Err(DecodeError::Unsupported { header: "Content-Type", value: v.into(), expected: "application/x-protobuf or application/json" }),
        }
    }
}

impl Encoding {
    /// From a `Content-Encoding` value (absent: identity).
    pub fn from_header(v: Option<&str>) -> Result<Encoding, DecodeError> {
        match v.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Ok(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Ok(Encoding::Gzip),
            Some("zstd") => Ok(Encoding::Zstd),
            Some(_) => Err(DecodeError::Unsupported { header: "Content-Encoding", value: v.unwrap_or_default().into(), expected: "gzip, zstd or none" }),
        }
    }
}

/// Undoes `encoding`, producing at most `limit` bytes (more is [`DecodeError::TooLarge`], found
/// after reading one byte past the limit, never more).
pub fn decompress(body: &[u8], encoding: Encoding, limit: usize) -> Result<Vec<u8>, DecodeError> {
    let (name, reader): (&'static str, Box<dyn Read + '_>) = match encoding {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            return Ok(body.to_vec());
        }
        Encoding::Gzip => ("gzip", Box::new(flate2::read::MultiGzDecoder::new(body))),
        Encoding::Zstd => {
            ("zstd", Box::new(zstd::stream::read::Decoder::new(body).map_err(|e| DecodeError::Compression { encoding: "zstd", msg: e.to_string() })?))
        }
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out).map_err(|e| DecodeError::Compression { encoding: name, msg: e.to_string() })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// Parses a (decompressed) body.
pub fn parse(body: &[u8], format: Format) -> Result<ExportMetricsServiceRequest, DecodeError> {
    match format {
        Format::Protobuf => ExportMetricsServiceRequest::decode(body).map_err(|e| DecodeError::Malformed { format: "protobuf", msg: e.to_string() }),
        Format::Json => serde_json::from_slice(body).map_err(|e| DecodeError::Malformed { format: "JSON", msg: e.to_string() }),
    }
}

/// Decompresses (bounded by `limit`) and parses.
pub fn decode_body(body: &[u8], format: Format, encoding: Encoding, limit: usize) -> Result<ExportMetricsServiceRequest, DecodeError> {
    let plain = decompress(body, encoding, limit)?;
    parse(&plain, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    use std::io::Write;

    /// The OTLP/JSON example of the opentelemetry-proto repository (examples/metrics.json),
    /// shortened: string int64s, an enum as an integer, attributes of several types.
    const SPEC_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
      "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
      "metrics":[{"name":"my.counter","unit":"1","description":"I am a Counter","sum":{"aggregationTemporality":1,"isMonotonic":true,
        "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
          "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}},{"key":"n","value":{"intValue":"7"}}],
          "exemplars":[{"timeUnixNano":"1544712660300000000","asInt":"3","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},
      {"name":"my.gauge","gauge":{"dataPoints":[{"asInt":"10","timeUnixNano":"1544712660300000000"}]}},
      {"name":"my.histogram","histogram":{"aggregationTemporality":1,"dataPoints":[{"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
        "count":"2","sum":2,"bucketCounts":["1","1"],"explicitBounds":[1],"min":0,"max":2}]}}]}]}]}"#;

    #[test]
    fn the_spec_example_of_otlp_json_decodes_with_string_int64s_enums_as_integers_and_hex_ids() {
        let r = parse(SPEC_JSON.as_bytes(), Format::Json).unwrap();
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(m.len(), 3);
        let Some(Data::Sum(s)) = &m[0].data else { panic!("a sum") };
        assert_eq!((s.aggregation_temporality, s.is_monotonic), (1, true));
        let p = &s.data_points[0];
        assert_eq!(p.value, Some(Value::AsDouble(5.0)));
        assert_eq!(p.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(p.exemplars[0].trace_id.len(), 16, "hex trace id decoded to bytes");
        assert_eq!(p.exemplars[0].trace_id[0], 0x5b);
        let Some(Data::Gauge(g)) = &m[1].data else { panic!("a gauge") };
        assert_eq!(g.data_points[0].value, Some(Value::AsInt(10)));
        let Some(Data::Histogram(h)) = &m[2].data else { panic!("a histogram") };
        assert_eq!((h.data_points[0].count, h.data_points[0].bucket_counts.clone()), (2, vec![1, 1]));
    }

    #[test]
    fn protobuf_and_json_agree_and_both_compressions_round_trip() {
        let r = parse(SPEC_JSON.as_bytes(), Format::Json).unwrap();
        let pb = r.encode_to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&pb).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&pb[..], 1).unwrap();
        assert_eq!(decode_body(&pb, Format::Protobuf, Encoding::Identity, 1 << 20).unwrap(), r);
        assert_eq!(decode_body(&gz, Format::Protobuf, Encoding::Gzip, 1 << 20).unwrap(), r);
        assert_eq!(decode_body(&zs, Format::Protobuf, Encoding::Zstd, 1 << 20).unwrap(), r);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit_without_allocating_its_full_size() {
        // 64 MiB of zeros compress to ~64 KiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(decompress(&bomb, Encoding::Gzip, 4 << 20), Err(DecodeError::TooLarge { limit: 4 << 20 }));
        let zbomb = zstd::encode_all(&vec![0u8; 8 << 20][..], 3).unwrap();
        assert_eq!(decompress(&zbomb, Encoding::Zstd, 1 << 20), Err(DecodeError::TooLarge { limit: 1 << 20 }));
        assert_eq!(decompress(&[0u8; 10], Encoding::Identity, 9), Err(DecodeError::TooLarge { limit: 9 }));
    }

    #[test]
    fn malformed_bodies_and_unknown_headers_are_errors_that_say_what_was_wrong() {
        let e = parse(b"\xff\xff\xff", Format::Protobuf).unwrap_err();
        assert!(matches!(e, DecodeError::Malformed { format: "protobuf", .. }), "{e}");
        let e = parse(br#"{"resourceMetrics": 5}"#, Format::Json).unwrap_err();
        assert!(e.to_string().starts_with("malformed JSON"), "{e}");
        assert!(matches!(decompress(b"not gzip", Encoding::Gzip, 100), Err(DecodeError::Compression { encoding: "gzip", .. })));
        assert_eq!(Format::from_content_type("application/json; charset=utf-8"), Ok(Format::Json));
        assert!(Format::from_content_type("text/plain").unwrap_err().to_string().contains("Content-Type"));
        assert_eq!(Encoding::from_header(Some("GZIP")), Ok(Encoding::Gzip));
        assert!(Encoding::from_header(Some("br")).unwrap_err().to_string().contains("Content-Encoding"));
    }
}
