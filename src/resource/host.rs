//! Host and OS identity: `host.name`, `host.id`, `host.arch`, `os.type`, `os.description`,
//! `os.name`, `os.version`, `os.build_id`.
//!
//! - `host.name`: when the host root is remapped (the agent watches its host from a
//!   container), the host's `ROOT/etc/hostname` (first line that is not a `#` comment, as
//!   hostname(5) has it); otherwise, or when that file is missing, the injected `gethostname()`
//!   result, else `PROC/sys/kernel/hostname`, else `gethostname(2)`. The kernel's unset name
//!   `(none)` counts as absent.
//! - `host.id`: the first of `ROOT/etc/machine-id`, `ROOT/var/lib/dbus/machine-id` (as the Go
//!   SDK reads them), `SYS/class/dmi/id/product_uuid` (the VM or board UUID; root-only on most
//!   systems), `PROC/sys/kernel/random/boot_id` (changes at every boot, so a note says so). An
//!   empty machine-id or systemd's first-boot `uninitialized` is skipped, and so are the
//!   all-zero and all-F placeholder UUIDs some firmware reports.
//! - `host.arch`: the build's `std::env::consts::ARCH` in semconv spelling ([`semconv_arch`]).
//! - `os.*`: `ROOT/etc/os-release`, else `ROOT/usr/lib/os-release` (os-release(5)): `NAME` →
//!   `os.name`, `VERSION_ID` → `os.version`, `BUILD_ID` → `os.build_id`; `os.description` is
//!   `PRETTY_NAME` followed by the kernel in parentheses, as the Go SDK writes it, with the
//!   release from `PROC/sys/kernel/osrelease`.
//!
//! ```text
//! /etc/machine-id:              5f3c0a8e9b2d4c61a7e4f0b1c2d3e4f5
//! /etc/os-release:              PRETTY_NAME="Ubuntu 22.04.4 LTS"
//! /proc/sys/kernel/osrelease:   5.15.0-105-generic
//! os.description:               Ubuntu 22.04.4 LTS (Linux 5.15.0-105-generic)
//! ```

use std::collections::BTreeMap;

use super::{read_trimmed, DetectInput, Detected};

/// Host and OS attributes; see the module documentation for the sources.
pub fn detect(input: &DetectInput) -> Detected {
    let mut out = Detected::default();
    let paths = input.paths;

    let hostname = if paths.is_remapped() {
        let from_root = read_trimmed(&paths.root("etc/hostname")).and_then(|t| first_hostname_line(&t));
        if from_root.is_none() {
            out.note(format!("host.name: {} unreadable; using this process's hostname", paths.root("etc/hostname").display()));
        }
        from_root.or_else(|| own_hostname(input))
    } else {
        own_hostname(input)
    };
    out.set("host.name", hostname);

    let machine_id = ["etc/machine-id", "var/lib/dbus/machine-id"].iter().filter_map(|rel| read_trimmed(&paths.root(rel))).find(|id| id != "uninitialized");
    let host_id = machine_id.or_else(|| read_trimmed(&paths.sys("class/dmi/id/product_uuid")).filter(|u| !is_placeholder_uuid(u))).or_else(|| {
        let boot_id = read_trimmed(&paths.proc("sys/kernel/random/boot_id"))?;
        out.note("host.id: no machine-id or DMI product_uuid; using the kernel boot_id, which changes at every boot");
        Some(boot_id)
    });
    out.set("host.id", host_id);

    out.set("host.arch", Some(semconv_arch(std::env::consts::ARCH)));
    out.set("os.type", Some("linux"));

    let release = read_trimmed(&paths.root("etc/os-release"))
        .or_else(|| read_trimmed(&paths.root("usr/lib/os-release")))
        .map(|t| parse_os_release(&t))
        .unwrap_or_default();
    let kernel = read_trimmed(&paths.proc("sys/kernel/osrelease"));
    out.set("os.name", release.get("NAME"));
    out.set("os.version", release.get("VERSION_ID"));
    out.set("os.build_id", release.get("BUILD_ID"));
    let description = match (release.get("PRETTY_NAME"), kernel) {
        (Some(pretty), Some(k)) => Some(format!("{pretty} (Linux {k})")),
        (Some(pretty), None) => Some(pretty.clone()),
        (None, Some(k)) => Some(format!("Linux {k}")),
        (None, None) => None,
    };
    out.set("os.description", description);
    out
}

/// The semantic-conventions `host.arch` value for a Rust `std::env::consts::ARCH`:
/// `x86_64` → `amd64`, `aarch64` → `arm64`, `arm` → `arm32`, `x86` → `x86`,
/// `powerpc` → `ppc32`, `powerpc64` → `ppc64`, `s390x` → `s390x`; others pass through.
pub fn semconv_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm32",
        "x86" => "x86",
        "powerpc" => "ppc32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Parses os-release(5): `KEY=value` lines, values unquoted (`"…"` with backslash escapes, or
/// `'…'`), blank lines and `#` comments skipped.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        out.insert(key.trim().to_string(), unquote(value.trim()));
    }
    out
}

fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

fn first_hostname_line(text: &str) -> Option<String> {
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string)
}

fn own_hostname(input: &DetectInput) -> Option<String> {
    let valid = |h: String| {
        let h = h.trim().to_string();
        (!h.is_empty() && h != "(none)").then_some(h)
    };
    input
        .hostname
        .clone()
        .and_then(valid)
        .or_else(|| read_trimmed(&input.paths.proc("sys/kernel/hostname")).and_then(valid))
        .or_else(|| gethostname().and_then(valid))
}

fn gethostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; POSIX may leave it unterminated on
    // truncation, so the last byte is reserved and the string is cut at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

fn is_placeholder_uuid(u: &str) -> bool {
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    hex.chars().all(|c| c == '0') || hex.chars().all(|c| c.eq_ignore_ascii_case(&'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::{env_of, fixture};
    use crate::resource::Attributes;
    use crate::units::HostPaths;

    fn run(paths: &HostPaths, hostname: Option<&str>) -> Detected {
        let env = env_of(&[]);
        let config = Attributes::new();
        detect(&DetectInput { paths, env: &env, config_resource: &config, hostname: hostname.map(str::to_string) })
    }

    #[test]
    fn parses_quoted_single_quoted_and_bare_os_release_values() {
        let r = parse_os_release("# comment\nNAME=\"Fedora Linux\"\nVERSION_ID=40\nPRETTY_NAME='Fedora 40'\nX=\"a \\\"q\\\" \\$b\"\n\nBAD LINE\n");
        assert_eq!(r["NAME"], "Fedora Linux");
        assert_eq!(r["VERSION_ID"], "40");
        assert_eq!(r["PRETTY_NAME"], "Fedora 40");
        assert_eq!(r["X"], "a \"q\" $b");
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn maps_rust_arch_names_to_semconv_values() {
        assert_eq!(semconv_arch("x86_64"), "amd64");
        assert_eq!(semconv_arch("aarch64"), "arm64");
        assert_eq!(semconv_arch("arm"), "arm32");
        assert_eq!(semconv_arch("powerpc64"), "ppc64");
        assert_eq!(semconv_arch("riscv64"), "riscv64");
    }

    #[test]
    fn a_remapped_root_takes_host_name_from_its_etc_hostname() {
        let d = run(&fixture("aws-ec2"), Some("agent-container"));
        assert_eq!(d.attributes["host.name"], "ip-172-31-5-20.ec2.internal");
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn a_remapped_root_without_etc_hostname_falls_back_to_the_injected_name_with_a_note() {
        let d = run(&fixture("docker-cgroupv2"), Some("agent-container"));
        assert_eq!(d.attributes["host.name"], "agent-container");
        assert!(d.notes[0].starts_with("host.name:"), "{:?}", d.notes);
    }

    #[test]
    fn the_default_root_uses_the_injected_hostname() {
        let d = run(&HostPaths::default(), Some("injected"));
        assert_eq!(d.attributes["host.name"], "injected");
    }

    #[test]
    fn the_kernel_placeholder_hostname_counts_as_absent() {
        let d = run(&HostPaths::default(), Some("(none)"));
        assert_ne!(d.attributes.get("host.name").map(String::as_str), Some("(none)"));
    }

    #[test]
    fn host_id_falls_back_from_an_empty_machine_id_to_the_dmi_uuid() {
        let d = run(&fixture("qemu-kvm"), None);
        assert_eq!(d.attributes["host.id"], "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn os_release_falls_back_to_usr_lib() {
        let d = run(&fixture("bare-host"), None);
        assert_eq!(d.attributes["os.name"], "Ubuntu");
        assert!(!d.attributes.contains_key("os.build_id"));
    }

    #[test]
    fn recognises_placeholder_uuids() {
        assert!(is_placeholder_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(is_placeholder_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"));
        assert!(!is_placeholder_uuid("6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"));
    }

    #[test]
    fn missing_files_leave_attributes_absent() {
        let d = run(&HostPaths::under("/nonexistent-metricsd-fixture"), Some("h"));
        assert_eq!(d.attributes["host.name"], "h");
        for absent in ["host.id", "os.name", "os.version", "os.description"] {
            assert!(!d.attributes.contains_key(absent), "{absent}");
        }
        assert_eq!(d.attributes["os.type"], "linux");
    }
}
