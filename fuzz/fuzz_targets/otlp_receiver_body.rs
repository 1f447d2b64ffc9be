//! Any bytes as an OTLP/HTTP request body to the receiver: the first byte picks the
//! `Content-Type` (protobuf or JSON) and `Content-Encoding` (none, gzip, zstd), the rest is the
//! body. Decompression must stop at its limit (never a bigger result), decoding must not panic,
//! and a decoded request must go through the receiver's limits keeping at most the allowed
//! points, and through the enrichment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::pipeline::count_points;
use metricsd::receiver::decode::{decode_body, decompress, Encoding, Format};
use metricsd::receiver::{enrich, limits};

const LIMIT: usize = 1 << 20;
const MAX_POINTS: usize = 1000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let format = if mode & 1 == 0 { Format::Protobuf } else { Format::Json };
    let encoding = match (mode >> 1) % 3 {
        0 => Encoding::Identity,
        1 => Encoding::Gzip,
        _ => Encoding::Zstd,
    };
    if let Ok(plain) = decompress(body, encoding, LIMIT) {
        assert!(plain.len() <= LIMIT);
    }
    let Ok(mut req) = decode_body(body, format, encoding, LIMIT) else { return };
    let (kept, dropped) = limits::apply(&mut req, MAX_POINTS);
    assert!(kept as usize <= MAX_POINTS);
    assert_eq!(count_points(&req), kept, "{dropped:?}");
    let agent = [("host.name".to_string(), "h".to_string()), ("service.name".to_string(), "metricsd".to_string())].into_iter().collect();
    enrich::enrich(&mut req, &agent);
});
