//! The deployment files are verified, not just written: every YAML/JSON/TOML file in
//! `deploy/`, `examples/` and `otel-collector-config/` parses; every metricsd config embedded in
//! a Kubernetes ConfigMap passes `--check-config`; and the binary runs as the container image
//! runs it — an unprivileged user (uid 65532, distroless' `nonroot`), a read-only working
//! directory, `HOST_PROC`/`HOST_SYS` pointing at a copied fixture tree — and reports the
//! fixture's values. (The Kubernetes API-schema validation runs in `.ci/run` with
//! `kubernetes-validate` from PyPI.)

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

fn files(dirs: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json" | "toml")) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn every_deployment_and_example_file_parses() {
    let all = files(&["deploy", "examples", "otel-collector-config"]);
    assert!(all.len() >= 8, "{all:?}");
    for p in all {
        let text = std::fs::read_to_string(&p).unwrap();
        let r: Result<(), String> = match p.extension().unwrap().to_str().unwrap() {
            "json" => serde_json::from_str::<serde_json::Value>(&text).map(|_| ()).map_err(|e| e.to_string()),
            "toml" => toml::from_str::<toml::Value>(&text).map(|_| ()).map_err(|e| e.to_string()),
            _ => {
                let mut r = Ok(());
                for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                    if let Err(e) = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc) {
                        r = Err(e.to_string());
                    }
                }
                r
            }
        };
        r.unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn configs_inside_kubernetes_configmaps_pass_check_config() {
    let mut n = 0;
    for p in files(&["deploy/kubernetes"]) {
        let text = std::fs::read_to_string(&p).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc).unwrap();
            if v["kind"].as_str() != Some("ConfigMap") {
                continue;
            }
            for (name, body) in v["data"].as_mapping().unwrap() {
                let dir = tempfile::tempdir().unwrap();
                let f = dir.path().join(name.as_str().unwrap());
                std::fs::write(&f, body.as_str().unwrap()).unwrap();
                let out = agent().arg("--check-config").arg("-c").arg(&f).output().unwrap();
                assert_eq!(out.status.code(), Some(0), "{} {}: {}", p.display(), name.as_str().unwrap(), String::from_utf8_lossy(&out.stderr));
                n += 1;
            }
        }
    }
    assert!(n >= 2, "configmaps checked: {n}");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

#[test]
fn runs_as_the_image_does_unprivileged_read_only_on_a_host_tree() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to switch to an unprivileged user (CI runs as root)");
        assert!(!under_ci(), "CI must run this as root");
        return;
    }
    let host = tempfile::tempdir().unwrap();
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc/linux-6.18-vm"), host.path());
    let workdir = tempfile::tempdir().unwrap();
    for d in [host.path(), workdir.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(workdir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    // The agent binary must be reachable by uid 65532: copy it next to the tree.
    let bin = host.path().join("metricsd");
    std::fs::copy(agent_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--once")
        .current_dir(workdir.path())
        .env_clear()
        .env("HOST_PROC", host.path().join("proc"))
        .env("HOST_SYS", host.path().join("sys"))
        .env("HOST_ROOT", host.path())
        .uid(65532)
        .gid(65532);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // MemTotal: 24683656 kB in the fixture.
    let limit = text.lines().find(|l| l.trim_start().starts_with("system.memory.limit ")).expect("memory limit line");
    assert!(limit.trim_end().ends_with(&(24683656u64 * 1024).to_string()), "{limit}");
    assert!(text.contains("system.cpu.load_average.1m"));
}

#[test]
fn in_a_container_the_cgroup_collector_reports_the_containers_limits_not_the_hosts() {
    // A Kubernetes container's view (cgroup v2, containerd, 1.5 CPU and 512 MiB limits): the
    // collector turns itself on from `self/cgroup` and reads the fixture tree.
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup/v2-k8s-container");
    let out = agent().arg("--once").env("HOST_PROC", tree.join("proc")).env("HOST_SYS", tree.join("sys")).env("HOST_ROOT", &tree).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        |name: &str| text.lines().find(|l| l.trim_start().starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} missing:\n{text}")).to_string();
    assert!(line("container.linux.memory.limit").trim_end().ends_with(" 536870912"), "{}", line("container.linux.memory.limit"));
    assert!(line("container.cpu.limit").trim_end().ends_with(" 1.5"), "{}", line("container.cpu.limit"));
    assert!(text.contains("container.memory.working_set"), "{text}");
    assert!(text.contains("container.pids.count"), "{text}");
}
