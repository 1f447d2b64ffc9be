//! How a process is named on its points: the executable name (the command name, extended from
//! the command line when the kernel cut it at 15 bytes), the command line (cut at 256
//! characters) and the attribute sets built from them once per process.
//!
//! ```text
//! comm "kube-controller" + argv[0] "/usr/local/bin/kube-controller-manager" → kube-controller-manager
//! ```

use opentelemetry::KeyValue;
use std::sync::Arc;

/// The longest `process.command_line` reported, in characters.
pub const COMMAND_LINE_MAX: usize = 256;

/// The kernel's limit on a command name (`TASK_COMM_LEN` − 1): a name this long may be cut.
pub(super) const COMM_MAX: usize = 15;

/// The executable name of a process: its command name, or, when the kernel may have cut that
/// (15 bytes), the base name of the first argument if it starts with the command name (as
/// gopsutil and the hostmetrics receiver extend it).
pub fn executable_name<'a>(comm: &'a str, argv0: Option<&'a str>) -> &'a str {
    if comm.len() >= COMM_MAX {
        if let Some(a) = argv0 {
            let a = a.split(' ').next().unwrap_or(a);
            let base = a.rsplit('/').next().unwrap_or(a);
            if base.starts_with(comm) {
                return base;
            }
        }
    }
    comm
}

/// The arguments joined by spaces, cut at [`COMMAND_LINE_MAX`] characters.
pub fn command_line(args: &[String]) -> String {
    let mut s = args.join(" ");
    if let Some((i, _)) = s.char_indices().nth(COMMAND_LINE_MAX) {
        s.truncate(i);
    }
    s
}

/// The attributes of one process, built when it is first reported.
#[derive(Debug)]
pub(super) struct ProcAttrs {
    pub(super) base: Vec<KeyValue>,
    /// With `cpu.mode`: `[user, system]`.
    pub(super) cpu: [Vec<KeyValue>; 2],
    /// With `disk.io.direction`: `[read, write]`.
    pub(super) io: [Vec<KeyValue>; 2],
    /// With `system.paging.fault.type`: `[major, minor]`.
    pub(super) faults: [Vec<KeyValue>; 2],
}

impl ProcAttrs {
    pub(super) fn new(pid: u32, name: &str, command_line: &str, owner: Option<Arc<str>>) -> Self {
        let mut base = vec![KeyValue::new("process.pid", i64::from(pid)), KeyValue::new("process.executable.name", Arc::<str>::from(name))];
        if !command_line.is_empty() {
            base.push(KeyValue::new("process.command_line", Arc::<str>::from(command_line)));
        }
        if let Some(owner) = owner {
            base.push(KeyValue::new("process.owner", owner));
        }
        let with = |k: &'static str, v: &'static str| {
            let mut a = base.clone();
            a.push(KeyValue::new(k, v));
            a
        };
        ProcAttrs {
            cpu: [with("cpu.mode", "user"), with("cpu.mode", "system")],
            io: [with("disk.io.direction", "read"), with("disk.io.direction", "write")],
            faults: [with("system.paging.fault.type", "major"), with("system.paging.fault.type", "minor")],
            base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_a_cut_command_name_from_the_first_argument() {
        assert_eq!(executable_name("kube-controller", Some("/usr/local/bin/kube-controller-manager")), "kube-controller-manager");
        assert_eq!(executable_name("kube-controller", Some("kube-controller-manager --leader-elect")), "kube-controller-manager");
        // Short names are never cut; an unrelated first argument is not used.
        assert_eq!(executable_name("sshd", Some("sshd: alice [priv]")), "sshd");
        assert_eq!(executable_name("rcu_tasks_kthre", None), "rcu_tasks_kthre");
        assert_eq!(executable_name("systemd-journal", Some("/lib/systemd/systemd-journald")), "systemd-journald");
        assert_eq!(executable_name("abcdefghijklmno", Some("/bin/other")), "abcdefghijklmno");
    }

    #[test]
    fn cuts_the_command_line_at_256_characters() {
        assert_eq!(command_line(&["a".into(), "b c".into()]), "a b c");
        let long: Vec<String> = vec!["é".repeat(300)];
        assert_eq!(command_line(&long).chars().count(), 256);
        assert_eq!(command_line(&[]), "");
    }
}
