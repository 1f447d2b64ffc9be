use super::*;
use crate::collectors::testutil::{value, Harness};
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumValue;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/textfile"))
}

fn collector(dir: &Path, clock: &TickClock) -> TextfileCollector {
    TextfileCollector::new(&TextfileConfig { directory: Some(dir.to_path_buf()), ..Default::default() }, clock)
}

/// Gauge and sum points of the files' metrics: `name{k=v,...}` (labels sorted) → value.
fn file_points(sm: &ScopeMetrics) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for m in &sm.metrics {
        let points = match &m.data {
            Some(Data::Gauge(g)) => &g.data_points,
            Some(Data::Sum(s)) => &s.data_points,
            _ => continue,
        };
        for p in points {
            let mut labels: Vec<String> =
                p.attributes.iter().map(|kv| format!("{}={}", kv.key, crate::translate::attribute_value(kv.value.as_ref()))).collect();
            labels.sort();
            let v = match p.value {
                Some(NumValue::AsDouble(d)) => d,
                Some(NumValue::AsInt(i)) => i as f64,
                None => f64::NAN,
            };
            out.insert(format!("{}{{{}}}", m.name, labels.join(",")), v);
        }
    }
    out
}

fn file(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

#[test]
fn the_textfile_scripts_files_are_read_into_the_host_scope_and_the_broken_one_is_reported() {
    let clock = TickClock::default();
    let mut c = collector(&fixtures(), &clock);
    let mut h = Harness::new(&clock, &mut c);
    let own = h.tick(&mut c).unwrap();
    let sm = c.take_scope_metrics().expect("the files' metrics");
    assert_eq!(sm.scope.as_ref().unwrap().name, SCOPE_NAME);
    let p = file_points(&sm);
    // apt_info.py
    assert_eq!(p["apt_upgrades_pending{arch=amd64,origin=Debian:bookworm-security/stable-security}"], 3.0);
    assert_eq!(p["apt_upgrades_held{arch=,origin=}"], 0.0);
    assert_eq!(p["apt_package_cache_timestamp_seconds{}"], 1796612401.2);
    // smartmon.sh: an info metric with ten labels.
    assert_eq!(p["smartmon_power_on_hours_raw_value{disk=/dev/sda,smart_id=9,type=sat}"], 12873.0);
    let info = p.keys().find(|k| k.starts_with("smartmon_device_info{")).unwrap();
    assert!(info.contains("device_model=Samsung SSD 860 EVO 500GB") && info.contains("lun_id=,"), "{info}");
    // ipmitool, directory-size.sh (no HELP/TYPE, an escaped quote), md_info.sh (", " separators).
    assert_eq!(p["ipmi_temperature_celsius{sensor=Inlet Temp}"], 22.0);
    assert_eq!(p["node_directory_size_bytes{directory=/var/lib/docker}"], 13523632128.0);
    assert_eq!(p["node_directory_size_bytes{directory=/home/a \"quoted\" name}"], 4096.0);
    assert_eq!(p["node_md_info_ActiveDevices{md_device=md0,md_name=server:0,md_uuid=3b2f3a2e:9c1d4f55:8a6b7c0d:1e2f3a4b,raid_level=1}"], 2.0);
    // A cron job's own file: HELP kept, the counter a monotonic sum, the histogram whole.
    let runs = sm.metrics.iter().find(|m| m.name == "backup_runs_total").unwrap();
    assert!(matches!(&runs.data, Some(Data::Sum(s)) if s.is_monotonic), "{runs:?}");
    assert_eq!(runs.description, "Backup runs by result.");
    let Some(Data::Histogram(hist)) = &sm.metrics.iter().find(|m| m.name == "backup_duration_seconds").unwrap().data else { panic!() };
    assert_eq!((hist.data_points[0].count, hist.data_points[0].bucket_counts.clone()), (415, vec![10, 390, 15]));
    // The torn file is left out whole: not even its complete first sample.
    assert!(!p.keys().any(|k| k.contains("/dev/sdb")), "{p:?}");
    // Duplicates: the first read wins (apt.prom before zz_duplicates.prom; the first line).
    assert_eq!(p["zz_job_runs{job=a}"], 1.0);
    assert_eq!(p["zz_job_runs{job=b}"], 5.0);
    assert_eq!(p["apt_autoremove_pending{}"], 2.0);
    // Not *.prom, a temp file, a dotfile: ignored.
    assert!(!p.keys().any(|k| k.starts_with("notes_") || k.starts_with("tmp_") || k.starts_with("hidden_")), "{p:?}");

    // The collector's own metrics, per file.
    for (f, err, dups) in [("apt.prom", 0.0, 0.0), ("empty.prom", 0.0, 0.0), ("torn.prom", 1.0, 0.0), ("zz_duplicates.prom", 0.0, 2.0)] {
        let attrs = [("file.path", file(f))];
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(value(&own, "metricsd.textfile.scrape_error", &attrs), Some(err), "{f}");
        assert_eq!(value(&own, "metricsd.textfile.duplicate_series", &attrs), Some(dups), "{f}");
        let mtime = value(&own, "metricsd.textfile.mtime", &attrs).unwrap();
        let real = std::fs::metadata(fixtures().join(f)).unwrap().modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((mtime - real).abs() < 1e-3, "{f}: {mtime} vs {real}");
    }
    assert_eq!(own.iter().filter(|p| p.0 == "metricsd.textfile.scrape_error").count(), 9, "one per *.prom file: {own:?}");
    assert_eq!(h.unit("metricsd.textfile.mtime"), Some("s"));
    assert!(c.take_scope_metrics().is_none(), "taken once");
}

#[test]
fn the_broken_file_is_named_with_its_line_in_one_log_line_per_distinct_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.prom"), "good 1\n").unwrap();
    std::fs::write(dir.path().join("b.prom"), "ok 1\nbroken{x=\"1\" 2\n").unwrap();
    let clock = TickClock::default();
    let mut c = collector(dir.path(), &clock);
    let logs = crate::test_logs::capture_logs(|| {
        for _ in 0..3 {
            clock.advance();
            c.refresh().unwrap();
        }
    })
    .1;
    let warned: Vec<&str> = logs.lines().filter(|l| l.contains("Textfile is broken")).collect();
    assert_eq!(warned.len(), 1, "{logs}");
    assert!(warned[0].contains("b.prom") && warned[0].contains("line 2"), "{}", warned[0]);
    let p = file_points(&c.take_scope_metrics().unwrap());
    assert_eq!(p.keys().collect::<Vec<_>>(), ["good{}"], "the other file goes on; nothing of the broken one");
    // Fixed: its metrics come back and the recovery is logged.
    std::fs::write(dir.path().join("b.prom"), "ok 1\n").unwrap();
    let logs = crate::test_logs::capture_logs(|| {
        clock.advance();
        c.refresh().unwrap();
    })
    .1;
    assert!(logs.contains("Textfile readable again") && logs.contains("b.prom"), "{logs}");
    assert_eq!(file_points(&c.take_scope_metrics().unwrap()).len(), 2);
}

#[test]
fn a_file_replaced_by_rename_while_ticking_is_always_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let body = |n: u64| (0..2000).map(|i| format!("job_value{{i=\"{i}\"}} {n}\n")).collect::<String>();
    std::fs::write(dir.path().join("job.prom"), body(0)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (dir, stop) = (dir.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = dir.join(format!(".job.prom.{n}"));
                std::fs::write(&tmp, body(n)).unwrap();
                std::fs::rename(&tmp, dir.join("job.prom")).unwrap();
                n += 1;
            }
        })
    };
    let clock = TickClock::default();
    let mut c = collector(dir.path(), &clock);
    for _ in 0..50 {
        clock.advance();
        c.refresh().unwrap();
        let p = file_points(&c.take_scope_metrics().expect("read"));
        assert_eq!(p.len(), 2000, "every series of one version");
        let first = p.values().next().copied().unwrap();
        assert!(p.values().all(|v| *v == first), "one version, not a mix");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn limits_make_a_file_broken_without_stopping_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.prom"), "a 1\na 2\n".replace("a 2", "b 2")).unwrap();
    std::fs::write(dir.path().join("b.prom"), "c{x=\"1\"} 1\nc{x=\"2\"} 1\n").unwrap();
    std::fs::write(dir.path().join("c.prom"), "x".repeat(200) + " 1\n").unwrap();
    std::fs::write(dir.path().join("d.prom"), "d 1 1796612401000\n").unwrap();
    std::fs::write(dir.path().join("e.prom"), b"e{x=\"\xff\"} 1\n").unwrap();
    let clock = TickClock::default();
    let config =
        TextfileConfig { directory: Some(dir.path().to_path_buf()), sample_limit: 3, file_size_limit: crate::units::ByteSize(100), ..Default::default() };
    let mut c = TextfileCollector::new(&config, &clock);
    let mut h = Harness::new(&clock, &mut c);
    let logs = crate::test_logs::capture_logs(|| {
        let own = h.tick(&mut c).unwrap();
        let err = |f: &str| value(&own, "metricsd.textfile.scrape_error", &[("file.path", &dir.path().join(f).display().to_string())]);
        assert_eq!([err("a.prom"), err("b.prom"), err("c.prom"), err("d.prom"), err("e.prom")], [Some(0.0), Some(1.0), Some(1.0), Some(1.0), Some(1.0)]);
    })
    .1;
    assert!(logs.contains("sample_limit"), "{logs}");
    assert!(logs.contains("file_size_limit"), "{logs}");
    assert!(logs.contains("timestamps"), "{logs}");
    assert!(logs.contains("line 1: not valid UTF-8"), "{logs}");
    assert_eq!(file_points(&c.take_scope_metrics().unwrap()).keys().collect::<Vec<_>>(), ["a{}", "b{}"]);
}

#[test]
fn a_name_with_another_type_in_a_later_file_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.prom"), "# TYPE jobs gauge\njobs{q=\"1\"} 4\n").unwrap();
    std::fs::write(dir.path().join("b.prom"), "# TYPE jobs summary\njobs{q=\"2\",quantile=\"0.5\"} 1\njobs_sum{q=\"2\"} 1\njobs_count{q=\"2\"} 1\n").unwrap();
    std::fs::write(dir.path().join("c.prom"), "jobs{q=\"3\"} 9\n").unwrap();
    let clock = TickClock::default();
    let mut c = collector(dir.path(), &clock);
    let mut h = Harness::new(&clock, &mut c);
    let own = h.tick(&mut c).unwrap();
    let sm = c.take_scope_metrics().unwrap();
    assert_eq!(sm.metrics.iter().filter(|m| m.name == "jobs").count(), 1, "one metric per name; the later gauge joins it");
    assert!(matches!(&sm.metrics[0].data, Some(Data::Gauge(g)) if g.data_points.len() == 2), "{:?}", sm.metrics[0]);
    assert_eq!(value(&own, "metricsd.textfile.duplicate_series", &[("file.path", &dir.path().join("b.prom").display().to_string())]), Some(1.0));
}

#[test]
fn a_missing_directory_fails_the_refresh_and_a_later_one_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("textfile");
    let clock = TickClock::default();
    let mut c = collector(&sub, &clock);
    clock.advance();
    let e = c.refresh().unwrap_err().to_string();
    assert!(e.contains("textfile") && e.contains(&sub.display().to_string()), "{e}");
    assert!(c.take_scope_metrics().is_none());
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("x.prom"), "x 1\n").unwrap();
    clock.advance();
    c.refresh().unwrap();
    assert!(c.take_scope_metrics().is_some());
}

#[test]
fn files_over_max_files_are_not_read_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["a", "b", "c"] {
        std::fs::write(dir.path().join(format!("{n}.prom")), format!("{n} 1\n")).unwrap();
    }
    let clock = TickClock::default();
    let mut c = TextfileCollector::new(&TextfileConfig { directory: Some(dir.path().to_path_buf()), max_files: 2, ..Default::default() }, &clock);
    let logs = crate::test_logs::capture_logs(|| {
        for _ in 0..3 {
            clock.advance();
            c.refresh().unwrap();
        }
    })
    .1;
    assert_eq!(logs.matches("More textfiles than max_files").count(), 1, "{logs}");
    assert!(logs.contains("skipped=1"), "{logs}");
    assert_eq!(file_points(&c.take_scope_metrics().unwrap()).keys().collect::<Vec<_>>(), ["a{}", "b{}"]);
}
