//! The real OpenTelemetry Collector for the integration tests: the binary built from
//! `tests/peers/otelcol/` (upstream components pinned at one release), found, built when
//! missing, started on a generated config and stopped.
//!
//! `scripts/test.sh` builds it into `target/otelcol-test` (again whenever its sources change) and
//! exports `METRICSD_OTELCOL`; a plain `cargo test` uses `target/otelcol-test` as it is, and
//! builds it only when it is missing and Go is installed. Without Go the tests that need it skip
//! with a printed reason, and fail under CI.
//!
//! A config is YAML with placeholders the helper fills: `{{GRPC}}` and `{{HTTP}}`
//! (free loopback `host:port`s) and `{{DIR}}` (a temporary directory, e.g. for the file
//! exporter's `{{DIR}}/out.json`). The Collector's own telemetry is turned off
//! (`service.telemetry.metrics.level: none`) so that parallel tests do not fight over its
//! default port 8888.

use super::{eventually, free_port, Running};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The environment variable naming the Collector binary (scripts/test.sh sets it).
pub const ENV: &str = "METRICSD_OTELCOL";

/// The Collector the tests build from `tests/peers/otelcol`.
pub const PEER: super::go_peer::GoPeer =
    super::go_peer::GoPeer { what: "OpenTelemetry Collector", env: ENV, file: "otelcol-test", dir: "tests/peers/otelcol", package: "./" };

/// The default place of the binary: `target/otelcol-test`.
pub fn default_bin() -> PathBuf {
    PEER.default_bin()
}

/// The Collector binary: `$METRICSD_OTELCOL`, else `target/otelcol-test`, built with Go when
/// missing; None (a skip, or a panic under CI) when it cannot be had.
pub fn bin() -> Option<PathBuf> {
    PEER.bin()
}

/// A running Collector; killed (if still running) and its directory removed when dropped
/// (`Running` kills the process on drop).
pub struct Collector {
    /// `127.0.0.1:port` for `{{GRPC}}`.
    pub grpc: String,
    /// `127.0.0.1:port` for `{{HTTP}}`.
    pub http: String,
    pub dir: tempfile::TempDir,
    proc: Option<Running>,
}

/// Fills the placeholders of a config template.
pub fn render(template: &str, grpc: &str, http: &str, dir: &Path) -> String {
    template.replace("{{GRPC}}", grpc).replace("{{HTTP}}", http).replace("{{DIR}}", &dir.display().to_string())
}

/// The `service.telemetry` block every generated config needs (no port 8888, quiet logs).
pub const QUIET_TELEMETRY: &str = "  telemetry:\n    metrics:\n      level: none\n    logs:\n      level: warn\n";

impl Collector {
    /// Starts the Collector on `template` (placeholders filled) and waits up to 30 s for the
    /// ports in `wait_for` (`"grpc"`, `"http"`) to accept connections.
    pub fn start(bin: &Path, template: &str, wait_for: &[&str]) -> Collector {
        Self::start_with_base(bin, &[], template, wait_for)
    }

    /// As [`Collector::start`], with `base` config files first: the Collector merges its
    /// `--config`s in order, so the generated one (an overlay) replaces what it names.
    pub fn start_with_base(bin: &Path, base: &[PathBuf], template: &str, wait_for: &[&str]) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let grpc = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let cfg = dir.path().join("otelcol.yaml");
        std::fs::write(&cfg, render(template, &grpc, &http, dir.path())).unwrap();
        let mut cmd = Command::new(bin);
        for b in base {
            cmd.arg(format!("--config={}", b.display()));
        }
        cmd.arg(format!("--config={}", cfg.display()));
        let proc = Running::spawn(cmd);
        let mut c = Collector { grpc, http, dir, proc: Some(proc) };
        for which in wait_for {
            let addr = if *which == "grpc" { c.grpc.clone() } else { c.http.clone() };
            if eventually(Duration::from_secs(30), || TcpStream::connect(&addr).ok()).is_none() {
                let (code, _, err) = c.stop();
                panic!("the Collector did not listen on {addr} ({which}) within 30 s; exit {code:?}; stderr:\n{err}");
            }
        }
        c
    }

    /// Whether the process has exited (a config it refused, a port taken).
    pub fn exited(&mut self) -> bool {
        self.proc.as_mut().and_then(|p| p.0.as_mut()).is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// A path inside the Collector's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops it with SIGTERM (exporters flush) and waits up to 20 s; (exit code, stdout, stderr).
    /// Its directory stays until it is dropped.
    pub fn stop(&mut self) -> (Option<i32>, String, String) {
        let p = self.proc.take().expect("the Collector is running");
        p.signal(libc::SIGTERM);
        p.wait(Duration::from_secs(20))
    }
}

/// Runs `otelcol-test validate` on `configs` (merged in order); (success, stderr).
pub fn validate(bin: &Path, configs: &[PathBuf]) -> (bool, String) {
    let mut cmd = Command::new(bin);
    cmd.arg("validate");
    for c in configs {
        cmd.arg(format!("--config={}", c.display()));
    }
    let out = cmd.output().expect("otelcol-test runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The file exporter's output (`format: json`): one OTLP/JSON `ExportMetricsServiceRequest`
/// per line.
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("the file exporter writes JSON lines")).collect()
}
