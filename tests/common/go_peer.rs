//! A real server the tests build from a Go module under `tests/peers/` (the OpenTelemetry
//! Collector, Prometheus 3): the binary named by an environment variable (scripts/test.sh builds
//! it and sets it), else `target/<name>`, built with Go when missing (once per test process per
//! binary). Without it: a printed skip, or a panic under CI.

use super::under_ci;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// One Go-built test peer.
pub struct GoPeer {
    /// What the messages call it (`the OpenTelemetry Collector`).
    pub what: &'static str,
    /// The environment variable naming a prebuilt binary.
    pub env: &'static str,
    /// The binary's file name in `target/`.
    pub file: &'static str,
    /// The module directory under the repository (`tests/peers/otelcol`).
    pub dir: &'static str,
    /// The package `go build` builds there (`./`, or an import path).
    pub package: &'static str,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skip_or_fail(msg: &str) {
    if under_ci() {
        panic!("{msg}: this end-to-end test must run under CI");
    }
    eprintln!("SKIPPED: {msg}");
}

impl GoPeer {
    /// The default place of the binary: `target/<file>`.
    pub fn default_bin(&self) -> PathBuf {
        repo().join("target").join(self.file)
    }

    /// The binary, or None (a skip, or a panic under CI) when it cannot be had.
    pub fn bin(&self) -> Option<PathBuf> {
        static BUILD: Mutex<()> = Mutex::new(());
        if let Some(p) = std::env::var_os(self.env) {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Some(p);
            }
            skip_or_fail(&format!("{}={} is not a file", self.env, p.display()));
            return None;
        }
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let p = self.default_bin();
        if p.is_file() {
            return Some(p);
        }
        let go = Command::new("go").arg("version").output();
        if !go.is_ok_and(|o| o.status.success()) {
            skip_or_fail(&format!("the {} test binary needs Go to build (`go` not found; see {}/)", self.what, self.dir));
            return None;
        }
        eprintln!("building the {} test binary ({}) into {}", self.what, self.dir, p.display());
        let status = Command::new("go")
            .args(["build", "-trimpath", "-o"])
            .arg(&p)
            .arg(self.package)
            .current_dir(repo().join(self.dir))
            .env("GOFLAGS", "-mod=mod -buildvcs=false")
            .status()
            .expect("go runs");
        if !status.success() {
            skip_or_fail(&format!("`go build` of {} failed (output above)", self.dir));
            return None;
        }
        Some(p)
    }
}
