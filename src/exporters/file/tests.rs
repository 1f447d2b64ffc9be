use super::*;
use crate::pipeline::queue::{QueueHandle, RetryConfig};
use crate::pipeline::testutil::{int_point, kv, request, sum};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A batch whose one counter has `n` series of value `value`.
fn batch(seq: u64, n: usize, value: i64) -> Arc<Batch> {
    let points = (0..n).map(|i| int_point(vec![kv("device", &format!("sd{i}"))], 1, 2_000_000_000, value)).collect();
    Arc::new(Batch::from_request(request("web-1", vec![sum("system.disk.io", true, points)]), seq))
}

/// Polls `f` every 10 ms for up to 10 s (a generous bound: the write is one file).
async fn until(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn spawn(config: FileConfig) -> QueueHandle {
    crate::exporters::ExporterConfig::File(config).spawn(0).unwrap()
}

#[tokio::test]
async fn prometheus_format_replaces_the_file_with_the_latest_batch_as_metrics_renders_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metricsd.prom");
    let q = spawn(FileConfig { path: path.clone(), ..Default::default() });
    q.submit(batch(1, 2, 5));
    until(|| q.status().sent_payloads == 1).await;
    q.submit(batch(2, 2, 7));
    until(|| q.status().sent_payloads == 2).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let b = batch(2, 2, 7);
    let (families, _) = crate::translate::translate(&b.to_request(), &crate::translate::TranslateOptions::default());
    let mut expected = String::new();
    crate::translate::render_text(&families, &mut expected);
    assert_eq!(text, expected, "what /metrics would show for the batch");
    assert!(text.contains("system_disk_io_bytes_total{device=\"sd1\",instance=\"web-1\",job=\"metricsd\"} 7"), "{text}");
    // The scrape parser reads it back (another node_exporter's textfile collector would).
    let parsed = crate::scrape::text::parse(&text, crate::scrape::text::TextFormat::Prometheus);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left beside it");
    q.shutdown(Instant::now() + Duration::from_secs(5)).await;
}

#[tokio::test]
async fn otlp_json_format_appends_one_request_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    let q = spawn(FileConfig { path: path.clone(), format: FileFormat::OtlpJson, ..Default::default() });
    for seq in 1..=3 {
        q.submit(batch(seq, 1, seq as i64));
        until(|| q.status().sent_payloads == seq).await;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        let req: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest = serde_json::from_str(l).unwrap();
        assert_eq!(req, *batch(i as u64 + 1, 1, i as i64 + 1).to_request(), "line {i} is the batch's OTLP/JSON");
    }
    assert!(lines[0].starts_with("{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"host.name\""), "{}", lines[0]);
    q.shutdown(Instant::now() + Duration::from_secs(5)).await;
}

#[tokio::test]
async fn otlp_json_files_rotate_by_size_keeping_max_backups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    let rotation = RotationConfig { max_megabytes: 1, max_backups: 2 };
    let q = spawn(FileConfig { path: path.clone(), format: FileFormat::OtlpJson, rotation: Some(rotation), ..Default::default() });
    // About 200 KiB a batch: 5 a file, 30 batches make six files' worth.
    let line = render(&batch(1, 1300, 1), FileFormat::OtlpJson).unwrap().len();
    assert!((150_000..300_000).contains(&line), "{line}");
    for seq in 1..=30 {
        q.submit(batch(seq, 1300, seq as i64));
        until(|| q.status().sent_payloads == seq).await;
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["metrics.jsonl", "metrics.jsonl.1", "metrics.jsonl.2"]);
    for n in &names {
        let text = std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert!(text.len() as u64 <= rotation.max_bytes(), "{n}: {}", text.len());
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{n}: whole lines only");
    }
    q.shutdown(Instant::now() + Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_reader_in_a_loop_never_sees_a_partial_prometheus_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metricsd.prom");
    let q = spawn(FileConfig { path: path.clone(), ..Default::default() });
    q.submit(batch(1, 3000, 1));
    until(|| q.status().sent_payloads == 1).await;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).unwrap();
                let values: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).map(|l| l.rsplit_once(' ').unwrap().1).collect();
                assert_eq!(values.len(), 3000, "every series, read {reads}");
                assert!(values.iter().all(|v| *v == values[0]), "one batch, not a mix");
                assert!(text.ends_with('\n'));
                reads += 1;
            }
            reads
        })
    };
    for seq in 2..=40 {
        q.submit(batch(seq, 3000, seq as i64));
        until(|| q.status().sent_payloads == seq).await;
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw only whole files");
    assert!(reads > 0);
    q.shutdown(Instant::now() + Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_path_that_cannot_be_written_is_dropped_with_a_clear_reason_and_a_full_disk_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    // The "directory" is a file: ENOTDIR, which no retry fixes.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let exporter = FileExporter { path: dir.path().join("not-a-dir/m.prom"), format: FileFormat::Prometheus, rotation: RotationConfig::default() };
    let payload = exporter.encode(&batch(1, 1, 1)).unwrap().remove(0);
    match exporter.send(&payload).await {
        Outcome::Drop { reason } => assert!(reason.contains("not-a-dir/.m.prom.tmp") && reason.contains("cannot create"), "{reason}"),
        o => panic!("{o:?}"),
    }
    // /dev/full: every write fails with ENOSPC, as a full disk does.
    if std::path::Path::new("/dev/full").exists() {
        let full = FileExporter { path: "/dev/full".into(), format: FileFormat::OtlpJson, rotation: RotationConfig::default() };
        match full.send(&payload).await {
            Outcome::Retry { reason, .. } => assert!(reason.contains("/dev/full"), "{reason}"),
            o => panic!("{o:?}"),
        }
    }
    // A missing directory is refused when the exporter starts.
    let missing = FileConfig { path: dir.path().join("gone/m.prom"), retry: RetryConfig::default(), ..Default::default() };
    let e = crate::exporters::ExporterConfig::File(missing).spawn(0).err().unwrap();
    assert!(e.contains("gone") && e.contains("does not exist"), "{e}");
}
