//! The files of a cgroup v2 (unified) cgroup (Documentation/admin-guide/cgroup-v2.rst):
//!
//! ```text
//! cpu.stat        usage_usec 3481266 / user_usec 2514875 / system_usec 966391 /
//!                 nr_periods 1205 / nr_throttled 37 / throttled_usec 1825490     (one pair a line)
//! cpu.max         150000 100000          quota and period in µs; "max 100000": no limit
//! memory.current  157286400
//! memory.max      536870912              "max": no limit
//! memory.stat     anon 104857600 / inactive_file 31457280 / pgfault 248910 / pgmajfault 121
//! memory.events   oom_kill 1
//! io.stat         8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
//! pids.current    7
//! pids.max        1024                   "max": no limit
//! ```
//!
//! Keys not listed here (`io.stat`'s `cost.usage=…` of iocost, `memory.stat`'s many others)
//! are ignored; a `cpu.stat` without the throttling keys (no `cpu` controller) leaves the
//! periods unset.

use super::{for_each_pair, CgFile, CgroupStats, Devices, MemoryStat};
use crate::procfs::ProcError;

const US: f64 = 1e6;

/// `cpu.stat` and `cpu.max`.
pub(super) fn read_cpu(stat: &mut CgFile, max: &mut CgFile, s: &mut CgroupStats) -> Result<(), ProcError> {
    if let Some(text) = stat.read()? {
        let (mut periods, mut throttled) = (None, None);
        for_each_pair(text, |k, v| match k {
            "usage_usec" => s.cpu_total = Some(v as f64 / US),
            "user_usec" => s.cpu_user = Some(v as f64 / US),
            "system_usec" => s.cpu_system = Some(v as f64 / US),
            "nr_periods" => periods = Some(v),
            "nr_throttled" => throttled = Some(v),
            "throttled_usec" => s.throttled_seconds = Some(v as f64 / US),
            _ => {}
        });
        s.periods = periods.zip(throttled).map(|(p, t)| [p, t]);
    }
    s.cpu_limit = max.read()?.and_then(parse_cpu_max);
    Ok(())
}

/// `cpu.max`: `quota period` in µs, or `max period`: the quota in CPUs.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_ascii_whitespace();
    let quota: u64 = it.next()?.parse().ok()?;
    let period: u64 = it.next()?.parse().ok()?;
    (period > 0).then(|| quota as f64 / period as f64)
}

/// `memory.current`, `memory.max`, `memory.stat` and `memory.events`.
pub(super) fn read_memory(
    current: &mut CgFile,
    max: &mut CgFile,
    stat: &mut CgFile,
    events: &mut CgFile,
    s: &mut CgroupStats,
) -> Result<MemoryStat, ProcError> {
    let mut m = MemoryStat::default();
    s.memory_usage = current.number()?;
    s.memory_limit = max.number()?;
    if let Some(text) = stat.read()? {
        for_each_pair(text, |k, v| match k {
            "anon" => s.rss = Some(v),
            "inactive_file" => m.inactive_file = Some(v),
            "pgfault" => m.pgfault = Some(v),
            "pgmajfault" => m.pgmajfault = Some(v),
            _ => {}
        });
    }
    if let Some(text) = events.read()? {
        for_each_pair(text, |k, v| {
            if k == "oom_kill" {
                s.oom_kills = Some(v);
            }
        });
    }
    Ok(m)
}

/// `io.stat`: one line per device, `key=value` pairs after the device.
pub(super) fn read_io(stat: &mut CgFile, devices: &mut Devices, s: &mut CgroupStats) -> Result<(), ProcError> {
    if let Some(text) = stat.read()? {
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let Some(dev) = it.next() else { continue };
            let mut d = devices.io(dev);
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else { continue };
                let slot = match k {
                    "rbytes" => &mut d.bytes[0],
                    "wbytes" => &mut d.bytes[1],
                    "rios" => &mut d.ops[0],
                    "wios" => &mut d.ops[1],
                    _ => continue,
                };
                *slot = v.parse().ok();
            }
            s.io.push(d);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::cgroup::{fixture, locate, CgroupFiles, Target};
    use crate::units::HostPaths;

    #[test]
    fn cpu_max_is_the_quota_over_the_period_and_max_is_no_limit() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("50000 0\n"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    #[test]
    fn reads_the_v2_files_of_a_kubernetes_container_into_stats() {
        let paths = HostPaths::under(fixture("v2-k8s-container"));
        let mut files = CgroupFiles::open(&locate(&paths, None, Target::Own).unwrap());
        let mut s = CgroupStats::default();
        files.read_cpu(&mut s).unwrap();
        files.read_memory(&mut s).unwrap();
        files.read_io(&mut s).unwrap();
        files.read_pids(&mut s).unwrap();
        // cpu.stat, cpu.max "150000 100000".
        assert_eq!((s.cpu_total, s.cpu_user, s.cpu_system), (Some(3.481266), Some(2.514875), Some(0.966391)));
        assert_eq!((s.periods, s.throttled_seconds, s.cpu_limit), (Some([1205, 37]), Some(1.82549), Some(1.5)));
        // memory.current − inactive_file; memory.max − working set; pgfault − pgmajfault.
        assert_eq!((s.memory_usage, s.memory_limit, s.working_set, s.available), (Some(157286400), Some(536870912), Some(125829120), Some(411041792)));
        assert_eq!((s.rss, s.oom_kills, s.faults), (Some(104857600), Some(1), Some([121, 248789])));
        // io.stat, in the file's order; iocost's keys are ignored.
        let io: Vec<_> = s.io.iter().map(|d| (&*d.device, d.bytes, d.ops)).collect();
        assert_eq!(io, [("8:0", [Some(1459200), Some(314773504)], [Some(192), Some(353)]), ("253:0", [Some(4096), Some(1048576)], [Some(1), Some(256)])]);
        assert_eq!((s.pids, s.pids_limit), (Some(7), Some(1024)));
        // Read again: the device names are the same allocation.
        let first = s.io[0].device.clone();
        s.clear();
        files.read_io(&mut s).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &s.io[0].device));
    }
}
