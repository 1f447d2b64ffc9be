//! Any bytes through the JSON scrape parser (metricsd, plantd and plain-object shapes) and on
//! into OTLP: no panic, and the output stays proportional to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::scrape::convert::{ConvertOptions, Converter};
use metricsd::scrape::json::parse;
use metricsd::scrape::text::MAX_REPORTED_ERRORS;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse(data) {
        assert!(p.errors.len() <= MAX_REPORTED_ERRORS);
        assert!(p.samples <= data.len());
        let metrics = Converter::default().convert(&p.families, &ConvertOptions { now_ns: 1, prefix: "", labels: &[] });
        assert!(metrics.len() <= p.samples);
    }
});
