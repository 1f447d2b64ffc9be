//! Any bytes through the JSON scrape parser (metricsd, plantd and plain-object shapes) and on
//! into OTLP: no panic, and the output stays proportional to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::scrape::convert::{ConvertOptions, Converter};
use metricsd::scrape::json::{parse, parse_limited};
use metricsd::scrape::limits::Limits;
use metricsd::scrape::text::MAX_REPORTED_ERRORS;

fuzz_target!(|data: &[u8]| {
    // Tight limits: every limit path is reached, and whatever passes stays within them.
    let limits =
        Limits { sample_limit: 20, label_limit: 4, label_name_length_limit: 16, label_value_length_limit: 32, parsed_size_limit: 8192, ..Limits::none() };
    if let Ok(p) = parse_limited(data, &limits) {
        assert!(p.samples <= 20);
    }
    if let Ok(p) = parse(data) {
        assert!(p.errors.len() <= MAX_REPORTED_ERRORS);
        assert!(p.samples <= data.len());
        let metrics = Converter::default().convert(&p.families, &ConvertOptions { now_ns: 1, prefix: "", labels: &[] });
        assert!(metrics.len() <= p.samples);
    }
});
