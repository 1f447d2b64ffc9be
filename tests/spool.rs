//! The disk spool with the real agent: an outage, then `kill -9` while payloads are spooled, then
//! a restart against a backend that is back: every batch collected before the kill arrives, in
//! order, byte for byte; and a spool directory that cannot be used falls back to memory.

mod common;

use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the backend is down before the kill.
const OUTAGE: Duration = Duration::from_secs(3);

fn write_config(dir: &Path, port: u16, endpoint: &str, spool: &Path) -> std::path::PathBuf {
    let p = dir.join("c.yaml");
    std::fs::write(
        &p,
        format!(
            "server:\n  port: {port}\nshutdown_timeout: 3s\ncollector:\n  interval: 200ms\nexporters:\n  - type: stdout\n    format: json\n  - type: http_json\n    endpoint: {endpoint}\n    format: otlp_json\n    queue:\n      spool:\n        dir: {}\n    retry: {{initial_interval: 50ms, max_interval: 200ms}}\n",
            spool.display()
        ),
    )
    .unwrap();
    p
}

fn start(config: &Path) -> Running {
    Running::spawn({
        let mut c = agent();
        c.arg("-c").arg(config);
        c
    })
}

/// The batches the stdout exporter printed, one OTLP/JSON document a line.
fn printed(out: &str) -> Vec<serde_json::Value> {
    out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("stdout JSON")).collect()
}

/// The `/status` entry of the http_json exporter.
fn spool_status(addr: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get(addr, "/status")?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["exporters"].as_array()?.iter().find(|e| e["name"] == "http_json[1]").cloned()
}

#[test]
fn every_batch_collected_before_a_kill_9_arrives_in_order_after_the_restart() {
    let test_started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let up = Arc::new(AtomicBool::new(false));
    let sink = {
        let up = up.clone();
        Sink::start(
            move |_, _| if up.load(Ordering::SeqCst) { (200, vec![], String::new(), Duration::ZERO) } else { (503, vec![], "down".into(), Duration::ZERO) },
        )
    };
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &sink.url("/v1/metrics"), &spool);

    // 1. The backend is down: payloads pile up in the spool (and /status shows them).
    let agent1 = start(&config);
    let st = eventually(Duration::from_secs(15), || spool_status(&addr).filter(|s| s["spool_records"].as_u64() >= Some(3))).expect("payloads are spooled");
    assert!(st["spool_bytes"].as_u64().unwrap() > 0 && st["spool_error"].is_null(), "{st}");
    assert_eq!(st["queue_length"], 0, "nothing is held in memory: {st}");
    let record_bytes = st["spool_bytes"].as_u64().unwrap() / st["spool_records"].as_u64().unwrap();
    // Self-telemetry shows the spool too.
    eventually(Duration::from_secs(5), || {
        let (_, m) = http_get(&addr, "/metrics")?;
        m.lines().any(|l| l.starts_with("metricsd_exporter_spool_length{") && l.contains("http_json[1]") && !l.ends_with(" 0")).then_some(())
    })
    .expect("metricsd_exporter_spool_length > 0 on /metrics");
    std::thread::sleep(OUTAGE.saturating_sub(Duration::from_millis(600)));
    assert!(!sink.requests().is_empty(), "the exporter kept trying");
    agent1.signal(libc::SIGKILL);
    let (code, out1, err1) = agent1.wait(Duration::from_secs(10));
    assert_eq!(code, None, "killed by the signal");
    let before = printed(&out1);
    assert!(before.len() >= 10, "{} batches in the outage; stderr:\n{err1}", before.len());
    assert!(std::fs::read_dir(&spool).unwrap().any(|e| e.unwrap().file_name().to_str().unwrap().ends_with(".seg")));

    // 2. The backend is back; the agent restarts with the same configuration.
    up.store(true, Ordering::SeqCst);
    let first_after = sink.requests().len();
    let agent2 = start(&config);
    let delivered = || -> Vec<serde_json::Value> {
        sink.requests()[first_after..].iter().map(|r| serde_json::from_slice(&r.body).expect("no garbage: every body is JSON")).collect()
    };
    eventually(Duration::from_secs(20), || Some(()).filter(|_| delivered().len() >= before.len() + 3)).expect("the spool is replayed, then new batches follow");
    let st = eventually(Duration::from_secs(5), || spool_status(&addr).filter(|s| s["spool_records"] == 0)).expect("the spool drains");
    agent2.signal(libc::SIGTERM);
    let (code, out2, err2) = agent2.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err2}");
    assert!(err2.contains("sending what was left by the previous run first"), "{err2}");
    let after = printed(&out2);
    let got = delivered();
    for r in &sink.requests()[first_after..] {
        let _: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest =
            serde_json::from_slice(&r.body).expect("every body decodes as OTLP");
    }

    // Everything collected before the kill, in order, then what the second run collected. The
    // batch of the tick at the very moment of the kill may have been printed but not yet
    // spooled; nothing older may be missing.
    let replayed = if got.len() >= before.len() && got[..before.len()] == before[..] { before.len() } else { before.len() - 1 };
    assert_eq!(got[..replayed], before[..replayed], "the batches from before the kill, in order, as collected");
    assert_eq!(got[replayed..], after[..], "then the new ones, in order, each once");
    assert_eq!(st["dropped_payloads"], 0, "{st}");
    let points = |v: &[serde_json::Value]| -> u64 { v.iter().map(|b| metricsd::pipeline::count_points(&serde_json::from_value(b.clone()).unwrap())).sum() };
    let per_day = 86_400 / 60 * record_bytes;
    eprintln!(
        "spool: outage of {OUTAGE:?} then kill -9: {replayed} of {} batches ({} of {} points) collected before the kill delivered after the restart, {} points lost; \
         {record_bytes} bytes a batch on disk, so the default 256 MiB spool holds {:.0} days of outage at the default 60 s interval; test took {:?}",
        before.len(),
        points(&before[..replayed]),
        points(&before),
        points(&before[replayed..]),
        (256u64 << 20) as f64 / per_day as f64,
        test_started.elapsed()
    );
}

#[test]
fn an_unusable_spool_directory_is_logged_once_and_the_exporter_keeps_sending_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Tests run as root, where permissions do not stop writes: a directory under a regular file.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let spool = dir.path().join("file").join("spool");
    let sink = Sink::ok();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &sink.url("/v1/metrics"), &spool);
    let agent1 = start(&config);
    let st = eventually(Duration::from_secs(15), || spool_status(&addr).filter(|s| s["sent_payloads"].as_u64() >= Some(3))).expect("sends from memory");
    assert!(st["spool_error"].as_str().unwrap().contains(&spool.display().to_string()), "{st}");
    agent1.signal(libc::SIGTERM);
    let (code, out, err) = agent1.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("Cannot use the disk spool")).collect();
    assert_eq!(lines.len(), 1, "logged once:\n{err}");
    assert!(lines[0].contains(&spool.display().to_string()) && lines[0].contains("Not a directory"), "{}", lines[0]);
    let got: Vec<serde_json::Value> = sink.requests().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(got, printed(&out), "every batch delivered, in order");
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped.
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    fn mount(dir: &Path, size: &str) -> Option<TinyFs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status().is_ok_and(|s| s.success());
        ok.then(|| TinyFs(dir.to_path_buf()))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_spool_on_a_full_disk_is_reported_and_the_exporter_goes_on_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = TinyFs::mount(&dir.path().join("disk"), "256k") else {
        assert!(!under_ci(), "CI runs as root and must be able to mount a tmpfs for this test");
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    };
    let spool = dir.path().join("disk").join("spool");
    let sink = Sink::ok();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &sink.url("/v1/metrics"), &spool);
    let agent1 = start(&config);
    // The 256 KiB disk fills within a few payloads (a segment is bigger than the disk).
    let st = eventually(Duration::from_secs(20), || spool_status(&addr).filter(|s| s["spool_error"].is_string() && s["sent_payloads"].as_u64() >= Some(5)))
        .expect("the full disk is reported and sending goes on");
    assert!(st["spool_error"].as_str().unwrap().contains("No space left on device"), "{st}");
    agent1.signal(libc::SIGTERM);
    let (code, out, err) = agent1.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("No space left on device")).collect();
    assert!(!lines.is_empty() && lines.len() <= 2, "reported, not every tick:\n{err}");
    let got: Vec<serde_json::Value> = sink.requests().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(got, printed(&out), "every batch delivered once, in order, across the switch to memory");
}
