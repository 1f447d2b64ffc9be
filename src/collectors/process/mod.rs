//! The process collector: `process.*` metrics of the busiest processes (off by default), from
//! `/proc/[pid]/{stat,status,io,cmdline,fd}` and the host's `/etc/passwd`.
//!
//! ```text
//! 4244 (dd) D 1 4244 4244 34816 4244 4194304 140 0 2 0 80 15021 0 0 20 0 1 0 1900021 5763072 232 ...
//! ```
//!
//! Its metrics (`process.cpu.time`, `.cpu.utilization`, `.memory.usage`, `.memory.virtual`,
//! `.disk.io`, `.thread.count`, `.unix.file_descriptor.count`, `.paging.faults`), their
//! attributes and sources are listed in [docs/metrics.md](../../../docs/metrics.md) (section
//! "process").
//!
//! **Attributes.** In OpenTelemetry each process is a resource of its own; the agent reports
//! every metric under the host's one resource instead, so the process is named by data point
//! attributes on every point: `process.pid`, `process.executable.name` (the command name as
//! `ps -o comm` shows it; when the kernel cut it at 15 bytes, the full name from the first
//! argument of the command line, as the hostmetrics receiver does), `process.command_line` (the
//! arguments joined by spaces, cut at 256 characters; absent for kernel threads) and
//! `process.owner` (the name of the process's effective user, as `ps` and `top` show it, from the
//! host's `/etc/passwd`; the number when the user is not there). Command line and owner are read
//! when a process is first reported and kept while it lives.
//!
//! **Values.** `process.cpu.utilization` is the CPU time used since the previous tick divided by
//! the wall time between the ticks and by the number of logical CPUs (`cpuN` lines of
//! `/proc/stat`), as the semantic conventions and the hostmetrics receiver define it: 1 is every
//! CPU busy. It is reported from the second tick a process is seen. `process.disk.io` is the
//! bytes the process made storage read and write (`read_bytes`, `write_bytes` of
//! `/proc/[pid]/io`); that file is readable only for the agent's own user's processes unless it
//! runs as root (or with CAP_SYS_PTRACE), and the metric is missing for the others, as is
//! `process.unix.file_descriptor.count` when `/proc/[pid]/fd` cannot be listed.
//!
//! **Which processes.** Every tick the collector reads `/proc/[pid]/stat` of every process (one
//! small read each; zombies and dead processes are skipped), keeps those whose executable name
//! `include` and `exclude` accept, and reports the `top_n` of them by CPU time used since the
//! previous tick (`top_by: cpu`; on the first tick, by CPU time since start) or by resident
//! memory (`top_by: memory`). Only for these does it read `status`, `io`, `cmdline` and `fd/`.
//! Each reported process adds 12 series; `top_n: 0` reports every matching process, so on
//! a busy host keep `include` narrow then.
//!
//! The files: `config` (`collector.process`), `top` (ranking and keeping the top N), `names`
//! (the executable name, the command line and the attribute sets of a process), `users` (user
//! names from `/etc/passwd`), `collector` (reading `/proc/[pid]/…` every tick and the
//! instruments); the files themselves are parsed in [`crate::procfs::pid`].

mod collector;
mod config;
mod names;
mod top;
mod users;

pub use self::collector::{ProcessCollector, METRICS};
pub use self::config::{ProcessConfig, TopBy};
pub use self::names::{command_line, executable_name, COMMAND_LINE_MAX};
pub use self::users::parse_passwd;
