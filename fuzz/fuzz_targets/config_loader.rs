//! Any bytes as a JSON, YAML or TOML config through the real loader (`Config::parse`, what
//! `Config::load` does after reading the file): no panic; a config that parses and validates is
//! written back as JSON (as `--check-config` prints it) and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::config::{Config, Format};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let format = [Format::Json, Format::Yaml, Format::Toml][usize::from(which % 3)];
    let text = String::from_utf8_lossy(rest);
    let Ok(config) = Config::parse(&text, format, Path::new("fuzz.cfg")) else { return };
    let _ = config.redacted_json();
    let _ = config.all_exporters();
    if config.validate().is_empty() {
        let json = serde_json::to_string(&config).expect("a parsed config serializes");
        let back = Config::parse(&json, Format::Json, Path::new("back.json")).expect("the written-back config reads back");
        assert_eq!(back, config, "{json}");
    }
});
