//! The scale bench's generated host (scripts/scale_tree.py) is one the agent reads: at a small
//! size, every CPU, interface, disk, mount and process generated is a series of the agent's
//! `--once` collection under `HOST_PROC`/`HOST_SYS`/`HOST_ROOT`, so the bench's series grow
//! with the sizes it names.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;

/// The distinct values of attribute `key` on the points of metric `name` in an OTLP JSON batch.
fn attribute_values(batch: &serde_json::Value, name: &str, key: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rm in batch["resourceMetrics"].as_array().into_iter().flatten() {
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            for m in sm["metrics"].as_array().into_iter().flatten().filter(|m| m["name"] == name) {
                let data = if m["sum"].is_object() { &m["sum"] } else { &m["gauge"] };
                for p in data["dataPoints"].as_array().into_iter().flatten() {
                    for a in p["attributes"].as_array().into_iter().flatten().filter(|a| a["key"] == key) {
                        let v = &a["value"];
                        // OTLP JSON writes 64-bit integers as strings.
                        let text = v["stringValue"].as_str().or_else(|| v["intValue"].as_str());
                        out.insert(text.map(str::to_owned).unwrap_or_else(|| v["intValue"].to_string()));
                    }
                }
            }
        }
    }
    out
}

fn generate(dir: &Path, args: &[&str]) -> bool {
    let Some(python) = require_program("python3") else { return false };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/scale_tree.py");
    let out = std::process::Command::new(python).arg(script).arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "scale_tree.py failed: {}", String::from_utf8_lossy(&out.stderr));
    true
}

#[test]
fn every_generated_cpu_interface_disk_mount_and_process_is_a_series() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    let sizes = ["--cpus", "3", "--interfaces", "5", "--disks", "4", "--mounts", "3", "--processes", "6", "--cgroups", "10"];
    if !generate(&root, &sizes) {
        return;
    }
    let cfg = tmp.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "collector:\n  network: {connections: false}\n  process: {enabled: true, top_n: 0}\n\
         exporters:\n  - type: stdout\n    format: json\n",
    )
    .unwrap();
    let out = agent()
        .arg("--once")
        .arg("-c")
        .arg(&cfg)
        .env("HOST_PROC", root.join("proc"))
        .env("HOST_SYS", root.join("sys"))
        .env("HOST_ROOT", &root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let batch: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one OTLP JSON object");

    let cpus = attribute_values(&batch, "system.cpu.time", "cpu.logical_number");
    assert_eq!(cpus, ["0", "1", "2"].map(String::from).into(), "the generated /proc/stat's cpuN lines");
    let interfaces = attribute_values(&batch, "system.network.io", "network.interface.name");
    assert_eq!(interfaces, ["lo", "eth0", "eth1", "eth2", "eth3"].map(String::from).into(), "the generated /proc/1/net/dev");
    let disks = attribute_values(&batch, "system.disk.io", "system.device");
    assert_eq!(disks, ["nvme0n1", "nvme1n1", "nvme2n1", "nvme3n1"].map(String::from).into(), "loop0 left out");
    let mounts = attribute_values(&batch, "system.filesystem.limit", "system.filesystem.mountpoint");
    let data: BTreeSet<_> = mounts.iter().filter(|m| m.starts_with("/data/")).cloned().collect();
    assert_eq!(data, ["/data/vol0", "/data/vol1", "/data/vol2"].map(String::from).into(), "statfs below the root: {mounts:?}");
    assert!(mounts.contains("/"), "{mounts:?}");
    let pids = attribute_values(&batch, "process.memory.usage", "process.pid");
    assert_eq!(pids.len(), 6, "one series per generated process: {pids:?}");
}
