//! Any bytes through the Prometheus and OpenMetrics text parsers and on into OTLP: no panic,
//! and the output stays proportional to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::scrape::convert::{ConvertOptions, Converter};
use metricsd::scrape::limits::Limits;
use metricsd::scrape::text::{parse, parse_limited, TextFormat, MAX_REPORTED_ERRORS};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut converter = Converter::default();
    let labels = [("team".to_string(), "x".to_string())];
    // Tight limits: every limit path is reached, and whatever passes stays within them.
    let limits =
        Limits { sample_limit: 20, label_limit: 4, label_name_length_limit: 16, label_value_length_limit: 32, parsed_size_limit: 8192, ..Limits::none() };
    for format in [TextFormat::Prometheus, TextFormat::OpenMetrics] {
        if let Ok(p) = parse_limited(&text, format, &limits) {
            assert!(p.samples <= 20);
            assert!(p.families.iter().flat_map(|f| &f.samples).all(|s| s.labels.len() <= 4));
        }
        let p = parse(&text, format);
        assert!(p.errors.len() <= MAX_REPORTED_ERRORS);
        assert!(p.samples <= text.len());
        // Twice, so the start-time and reset state is exercised too.
        for now_ns in [1_000_000_000, 2_000_000_000] {
            let metrics = converter.convert(&p.families, &ConvertOptions { now_ns, prefix: "app_", labels: &labels });
            assert!(metrics.len() <= p.samples);
        }
    }
});
