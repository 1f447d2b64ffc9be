//! `/proc/stat`: CPU time in USER_HZ ticks (jiffies) for all CPUs together (`cpu`) and each
//! online CPU (`cpuN`), and system-wide counters.
//!
//! ```text
//! cpu  13341 0 3640 441601 375 0 88 237 0 0
//! cpu0 6364 0 1763 221237 99 0 15 115 0 0
//! intr 201665 0 0 0 ...
//! ctxt 327338
//! btime 1795433952
//! processes 6457
//! procs_running 1
//! procs_blocked 0
//! ```
//!
//! CPU columns are user nice system idle iowait irq softirq steal guest guest_nice. Older
//! kernels have fewer (iowait, irq, softirq 2.6; steal 2.6.11; guest 2.6.24; guest_nice
//! 2.6.33): at least 4 are required and missing ones read 0. Columns beyond 10 are ignored.
//! guest and guest_nice are already counted inside user and nice. Offline CPUs have no `cpuN`
//! line, so CPUs are listed with their number. Only the total of `intr` is kept.

use super::{num, LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Jiffies spent in each mode by one CPU or all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl CpuTimes {
    /// All modes except guest and guest_nice (already inside user and nice), wrapping at 2⁶⁴
    /// as the counters it adds do rather than overflowing.
    pub fn total(&self) -> u64 {
        [self.nice, self.system, self.idle, self.iowait, self.irq, self.softirq, self.steal].iter().fold(self.user, |t, v| t.wrapping_add(*v))
    }
}

/// The contents of `/proc/stat` that the cpu, processes and uptime collectors use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    /// The `cpu` line: all CPUs together.
    pub total: CpuTimes,
    /// The `cpuN` lines: (N, times), in file order.
    pub cpus: Vec<(u32, CpuTimes)>,
    /// Context switches since boot.
    pub ctxt: u64,
    /// Interrupts serviced since boot (the first number of `intr`).
    pub intr: u64,
    /// Boot time, seconds since the Unix epoch.
    pub btime: u64,
    /// Processes and threads created since boot (forks).
    pub processes: u64,
    /// Runnable threads now.
    pub procs_running: u64,
    /// Threads blocked waiting for I/O now.
    pub procs_blocked: u64,
}

/// Parses the text of `/proc/stat`. A `cpu` line with fewer than 4 numbers or a non-number
/// is an error naming the line; other lines are ignored.
pub fn parse(text: &str) -> Result<Stat, LineError> {
    let mut st = Stat::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        if let Some(rest) = key.strip_prefix("cpu") {
            let times = cpu_times(it, n, key)?;
            if rest.is_empty() {
                st.total = times;
            } else {
                let cpu = rest.parse().map_err(|_| LineError::new(n, format!("bad cpu name {key:?}")))?;
                st.cpus.push((cpu, times));
            }
            continue;
        }
        let slot = match key {
            "ctxt" => &mut st.ctxt,
            "intr" => &mut st.intr,
            "btime" => &mut st.btime,
            "processes" => &mut st.processes,
            "procs_running" => &mut st.procs_running,
            "procs_blocked" => &mut st.procs_blocked,
            _ => continue,
        };
        *slot = num(it.next(), n, key)?;
    }
    Ok(st)
}

fn cpu_times<'a>(it: impl Iterator<Item = &'a str>, line: usize, key: &str) -> Result<CpuTimes, LineError> {
    let mut v = [0u64; 10];
    let mut count = 0;
    for (slot, field) in v.iter_mut().zip(it) {
        *slot = num(Some(field), line, key)?;
        count += 1;
    }
    if count < 4 {
        return Err(LineError::new(line, format!("{key}: {count} columns, expected at least 4")));
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice] = v;
    Ok(CpuTimes { user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice })
}

/// USER_HZ, the unit of the CPU columns (`sysconf(_SC_CLK_TCK)`, 100 on every Linux
/// architecture in practice; 100 if sysconf fails).
pub fn user_hz() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        // SAFETY: sysconf has no preconditions and only reads configuration.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 {
            hz as u64
        } else {
            100
        }
    })
}

/// `/proc/stat` below the host's `/proc`.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.proc("stat")
}

/// Reads and parses `/proc/stat` through a file kept open between ticks.
pub fn read_file(file: &mut ProcFile) -> Result<Stat, ProcError> {
    let text = file.read()?;
    parse(text).map_err(|e| super::at(file.path(), e))
}

/// Reads and parses `/proc/stat` once.
pub fn read(paths: &HostPaths) -> Result<Stat, ProcError> {
    read_file(&mut ProcFile::new(path(paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn parses_stat_of_a_6_18_kernel_with_all_ten_columns() {
        let st = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(
            st.total,
            CpuTimes { user: 13341, nice: 0, system: 3640, idle: 441601, iowait: 375, irq: 0, softirq: 88, steal: 237, guest: 0, guest_nice: 0 }
        );
        assert_eq!(st.cpus.len(), 2);
        assert_eq!(st.cpus[1].0, 1);
        assert_eq!((st.cpus[1].1.user, st.cpus[1].1.idle, st.cpus[1].1.steal), (6976, 220363, 122));
        assert_eq!(st.ctxt, 327338);
        assert_eq!(st.intr, 201665);
        assert_eq!(st.btime, 1795433952);
        assert_eq!(st.processes, 6457);
        assert_eq!((st.procs_running, st.procs_blocked), (1, 0));
    }

    #[test]
    fn parses_stat_of_a_2_6_32_kernel_without_guest_nice_and_with_an_offline_cpu() {
        let st = read(&fixture_paths("linux-2.6.32-old")).unwrap();
        assert_eq!(st.total.user, 2254125);
        assert_eq!(st.total.guest, 0);
        assert_eq!(st.total.guest_nice, 0);
        assert_eq!(st.total.steal, 1035);
        // cpu2 is offline: cpu0, cpu1, cpu3 are listed.
        let cpus: Vec<u32> = st.cpus.iter().map(|c| c.0).collect();
        assert_eq!(cpus, [0, 1, 3]);
        assert_eq!(st.cpus[2].1.softirq, 1771);
        assert_eq!(st.ctxt, 2_164_749_364);
        assert_eq!(st.btime, 1_425_396_432);
    }

    #[test]
    fn tolerates_four_column_cpu_lines_and_ignores_unknown_columns_and_lines() {
        let st = parse("cpu 1 2 3 4\ncpu0 1 2 3 4 5 6 7 8 9 10 11 12\nnewthing 9\n").unwrap();
        assert_eq!(st.total, CpuTimes { user: 1, nice: 2, system: 3, idle: 4, ..CpuTimes::default() });
        assert_eq!(st.cpus[0].1.guest_nice, 10);
    }

    #[test]
    fn names_the_line_of_a_short_or_bad_cpu_line() {
        assert_eq!(parse("cpu 1 2 3 4\ncpu0 1 2 3\n").unwrap_err().to_string(), "line 2: cpu0: 3 columns, expected at least 4");
        assert_eq!(parse("ctxt 1\nbtime x\n").unwrap_err().to_string(), "line 2: btime: not a number: \"x\"");
    }

    #[test]
    fn the_total_of_counters_near_two_to_the_64_wraps_instead_of_overflowing() {
        // Found by the host_text fuzz target: the sum of the mode times overflowed (a panic
        // with overflow checks on).
        let s = parse("cpu  18446744073709551615 2 1 1 1 1 1 1 0 0\nctxt 1\nbtime 1\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n").unwrap();
        assert_eq!(s.total.total(), 7);
    }

    #[test]
    fn user_hz_is_positive() {
        assert!(user_hz() >= 100);
    }
}
