//! docs/metrics.md is `metricsd --list-metrics --format markdown`: this runs the binary and
//! compares, so the committed catalog can never drift from what the collectors register.
//! Regenerate with `cargo run --quiet -- --list-metrics --format markdown > docs/metrics.md`
//! (or `scripts/metrics_doc.sh --write`).

use std::process::Command;

#[test]
fn docs_metrics_md_is_the_output_of_list_metrics_markdown() {
    let out = Command::new(env!("CARGO_BIN_EXE_metricsd")).args(["--list-metrics", "--format", "markdown"]).output().expect("run metricsd");
    assert!(out.status.success(), "metricsd --list-metrics failed: {}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).expect("docs/metrics.md");
    assert!(
        generated == committed,
        "docs/metrics.md differs from `metricsd --list-metrics --format markdown`; regenerate it with\n  cargo run --quiet -- --list-metrics --format markdown > docs/metrics.md"
    );
}

#[test]
fn list_metrics_needs_no_config_and_starts_nothing() {
    // A config file that does not exist would fail the agent's start: listing never reads it.
    let out = Command::new(env!("CARGO_BIN_EXE_metricsd"))
        .args(["--config", "/nonexistent/metricsd.yaml", "--list-metrics", "--format", "json"])
        .output()
        .expect("run metricsd");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"name\": \"hw.gpu.utilization\""), "GPU metrics are listed without a GPU");
}
