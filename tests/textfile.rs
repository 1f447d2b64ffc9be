//! The textfile collector end to end: `metricsd --once` on the fixtures of the textfile
//! scripts (tests/fixtures/textfile) prints their metrics under the host's resource, and
//! Debian's `prometheus-node-exporter` reading the same directory reports the same values.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/textfile"))
}

/// `metricsd --once` with the textfile collector on `dir`, as OTLP/JSON.
fn once(dir: &Path) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.yaml");
    std::fs::write(&cfg, format!("collector:\n  textfile:\n    directory: {}\nexporters:\n  - type: stdout\n    format: json\n", dir.display())).unwrap();
    let out = agent().arg("--once").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The gauge and sum points of scope `scope` of the first resource: `name{k=v,...}` → value.
fn points(v: &serde_json::Value, scope: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let scopes = v["resourceMetrics"][0]["scopeMetrics"].as_array().unwrap();
    for sm in scopes.iter().filter(|s| s["scope"]["name"] == scope) {
        for m in sm["metrics"].as_array().unwrap() {
            let data = if m["sum"].is_object() { &m["sum"] } else { &m["gauge"] };
            for dp in data["dataPoints"].as_array().into_iter().flatten() {
                let mut labels: Vec<String> = dp["attributes"]
                    .as_array()
                    .map(|a| a.iter().map(|a| format!("{}={}", a["key"].as_str().unwrap(), a["value"]["stringValue"].as_str().unwrap_or(""))).collect())
                    .unwrap_or_default();
                labels.sort();
                let value = dp["asDouble"].as_f64().or_else(|| dp["asInt"].as_str().and_then(|s| s.parse().ok())).unwrap();
                out.insert(format!("{}{{{}}}", m["name"].as_str().unwrap(), labels.join(",")), value);
            }
        }
    }
    out
}

#[test]
fn once_prints_the_textfiles_under_the_hosts_resource_and_reports_the_torn_one() {
    let v = once(&fixtures());
    assert_eq!(v["resourceMetrics"].as_array().unwrap().len(), 1, "no resource of their own");
    let resource = v["resourceMetrics"][0]["resource"]["attributes"].as_array().unwrap();
    assert!(resource.iter().any(|a| a["key"] == "host.name"), "{resource:?}");
    let files = points(&v, "metricsd/textfile");
    assert_eq!(files["apt_upgrades_pending{arch=amd64,origin=Debian:bookworm-security/stable-security}"], 3.0);
    assert_eq!(files["smartmon_temperature_celsius_raw_value{disk=/dev/sda,smart_id=194,type=sat}"], 31.0);
    assert_eq!(files["backup_runs_total{result=failed}"], 3.0);
    assert_eq!(files["zz_job_runs{job=a}"], 1.0, "the first of a duplicate wins");
    assert!(!files.keys().any(|k| k.contains("/dev/sdb") || k.starts_with("notes_") || k.starts_with("hidden_")), "{files:?}");
    let own = points(&v, "metricsd");
    let torn = format!("metricsd.textfile.scrape_error{{file.path={}}}", fixtures().join("torn.prom").display());
    assert_eq!(own[&torn], 1.0);
    let apt = format!("metricsd.textfile.scrape_error{{file.path={}}}", fixtures().join("apt.prom").display());
    assert_eq!(own[&apt], 0.0);
    let dups = format!("metricsd.textfile.duplicate_series{{file.path={}}}", fixtures().join("zz_duplicates.prom").display());
    assert_eq!(own[&dups], 2.0);
}

/// node_exporter's exposition: `name{k=v,...}` → value (its own metrics left out).
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let parsed = metricsd::scrape::text::parse(text, metricsd::scrape::text::TextFormat::Prometheus);
    let mut out = BTreeMap::new();
    for f in &parsed.families {
        for s in &f.samples {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            out.insert(format!("{}{{{}}}", f.sample_name(s), labels.join(",")), s.value);
        }
    }
    out
}

#[test]
fn node_exporter_reading_the_same_directory_reports_the_same_values() {
    let Some(bin) = require_program("prometheus-node-exporter") else { return };
    // The clean files only: node_exporter fails a whole scrape on a duplicate series.
    let dir = tempfile::tempdir().unwrap();
    for f in ["apt.prom", "smartmon.prom", "ipmitool.prom", "directory-size.prom", "md_info.prom", "backup.prom", "empty.prom"] {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    let port = free_port();
    let mut ne = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", dir.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let scraped = eventually(Duration::from_secs(20), || http_get(&addr, "/metrics").filter(|(s, _)| *s == 200));
    let _ = ne.kill();
    let _ = ne.wait();
    let ne = parse_exposition(&scraped.expect("node_exporter answers").1);
    let md = points(&once(dir.path()), "metricsd/textfile");
    let mut compared = 0;
    for (k, v) in &ne {
        if k.starts_with("node_textfile_")
            || k.starts_with("go_")
            || k.starts_with("process_")
            || k.starts_with("promhttp_")
            || k.starts_with("node_scrape_")
            || k.starts_with("node_exporter_")
        {
            continue;
        }
        if k.contains("_bucket{") || k.starts_with("backup_duration_seconds") {
            continue; // the histogram is an OTLP histogram here, compared in the unit tests
        }
        assert_eq!(md.get(k), Some(v), "{k}: node_exporter {v}, metricsd {:?}", md.get(k));
        compared += 1;
    }
    assert!(compared >= 30, "series compared: {compared}");
    let own = points(&once(dir.path()), "metricsd");
    for f in ["apt.prom", "backup.prom"] {
        let path = dir.path().join(f).display().to_string();
        let ne_mtime = ne
            .get(&format!("node_textfile_mtime_seconds{{file={path}}}"))
            .or(ne.get(&format!("node_textfile_mtime_seconds{{file={f}}}")))
            .unwrap_or_else(|| panic!("{f}: {:?}", ne.keys().filter(|k| k.contains("mtime")).collect::<Vec<_>>()));
        let md_mtime = own[&format!("metricsd.textfile.mtime{{file.path={path}}}")];
        // node_exporter truncates to whole seconds; metricsd keeps the nanoseconds.
        assert!((0.0..1.0).contains(&(md_mtime - ne_mtime)), "{f}: node_exporter {ne_mtime}, metricsd {md_mtime}");
    }
    assert_eq!(ne.get("node_textfile_scrape_error{}"), Some(&0.0));
}
