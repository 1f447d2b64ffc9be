//! The files of a cgroup v1 cgroup, one hierarchy per controller
//! (Documentation/admin-guide/cgroup-v1/):
//!
//! ```text
//! cpuacct.stat               user 196 / system 45           USER_HZ ticks
//! cpuacct.usage              2423771124                     ns, also cpuacct.usage_user, cpuacct.usage_sys
//! cpu.cfs_quota_us           50000                          -1: no limit
//! cpu.cfs_period_us          100000
//! cpu.stat                   nr_periods 45 / nr_throttled 42 / throttled_time 5051528560 (ns)
//! memory.usage_in_bytes      162500608
//! memory.limit_in_bytes      268435456                      9223372036854771712: no limit
//! memory.stat                total_rss 108617728 / total_inactive_file 50581504 / total_pgfault 59666
//! memory.oom_control         oom_kill 0                     (since 4.13)
//! blkio.throttle.io_service_bytes_recursive   254:0 Read 67112960 / 254:0 Write 67108864 / Total 134221824
//! blkio.throttle.io_serviced_recursive        254:0 Read 65 / 254:0 Write 64
//! pids.current 4, pids.max 64                               as v2
//! ```
//!
//! The CPU times come from `cpuacct.usage_user` and `usage_sys` (ns), else `cpuacct.stat`
//! (ticks of USER_HZ). `memory.stat`'s `total_` (hierarchical) values win over the cgroup's
//! own. Block I/O falls back from the `_recursive` throttle files to the non-recursive ones,
//! then to the CFQ and BFQ files ([`IO_BYTES`], [`IO_OPS`]); the `Total` lines are skipped.

use super::{first_present, for_each_pair, CgFile, CgroupStats, Devices, MemoryStat};
use crate::procfs::ProcError;

const NS: f64 = 1e9;

/// `memory.limit_in_bytes` reads the page-rounded `i64::MAX` (`9223372036854771712`) when no
/// limit is set; anything from 2⁶² up is taken as no limit.
pub const NO_MEMORY_LIMIT: u64 = 1 << 62;

/// Block I/O byte counts, best first.
pub const IO_BYTES: [&str; 5] = [
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes",
    "blkio.io_service_bytes_recursive",
    "blkio.io_service_bytes",
    "blkio.bfq.io_service_bytes_recursive",
];
/// Block I/O operation counts, best first.
pub const IO_OPS: [&str; 5] = [
    "blkio.throttle.io_serviced_recursive",
    "blkio.throttle.io_serviced",
    "blkio.io_serviced_recursive",
    "blkio.io_serviced",
    "blkio.bfq.io_serviced_recursive",
];

/// The CPU files: `cpuacct.*` of the `cpuacct` hierarchy, `cpu.*` of the `cpu` one.
pub(super) struct CpuFiles {
    pub(super) usage_user: CgFile,
    pub(super) usage_sys: CgFile,
    pub(super) acct_stat: CgFile,
    pub(super) usage: CgFile,
    pub(super) quota: CgFile,
    pub(super) period: CgFile,
    pub(super) stat: CgFile,
}

pub(super) fn read_cpu(files: &mut CpuFiles, s: &mut CgroupStats) -> Result<(), ProcError> {
    let CpuFiles { usage_user, usage_sys, acct_stat, usage, quota, period, stat } = files;
    match (usage_user.number()?, usage_sys.number()?) {
        (Some(u), Some(sy)) => (s.cpu_user, s.cpu_system) = (Some(u as f64 / NS), Some(sy as f64 / NS)),
        _ => {
            if let Some(text) = acct_stat.read()? {
                let hz = crate::procfs::stat::user_hz() as f64;
                for_each_pair(text, |k, v| match k {
                    "user" => s.cpu_user = Some(v as f64 / hz),
                    "system" => s.cpu_system = Some(v as f64 / hz),
                    _ => {}
                });
            }
        }
    }
    s.cpu_total = usage.number()?.map(|ns| ns as f64 / NS);
    if let (Some(q), Some(p)) = (quota.number()?, period.number()?) {
        s.cpu_limit = (p > 0).then(|| q as f64 / p as f64);
    }
    if let Some(text) = stat.read()? {
        let (mut periods, mut throttled) = (None, None);
        for_each_pair(text, |k, v| match k {
            "nr_periods" => periods = Some(v),
            "nr_throttled" => throttled = Some(v),
            "throttled_time" => s.throttled_seconds = Some(v as f64 / NS),
            _ => {}
        });
        s.periods = periods.zip(throttled).map(|(p, t)| [p, t]);
    }
    Ok(())
}

/// `memory.usage_in_bytes`, `memory.limit_in_bytes`, `memory.stat` and `memory.oom_control`.
pub(super) fn read_memory(usage: &mut CgFile, limit: &mut CgFile, stat: &mut CgFile, oom: &mut CgFile, s: &mut CgroupStats) -> Result<MemoryStat, ProcError> {
    let mut m = MemoryStat::default();
    s.memory_usage = usage.number()?;
    s.memory_limit = limit.number()?.filter(|&l| l < NO_MEMORY_LIMIT);
    if let Some(text) = stat.read()? {
        // The `total_` (hierarchical) values win over this cgroup's own.
        let (mut rss, mut inactive, mut fault, mut major) = ([None; 2], [None; 2], [None; 2], [None; 2]);
        for_each_pair(text, |k, v| {
            let (k, i) = match k.strip_prefix("total_") {
                Some(k) => (k, 0),
                None => (k, 1),
            };
            match k {
                "rss" => rss[i] = Some(v),
                "inactive_file" => inactive[i] = Some(v),
                "pgfault" => fault[i] = Some(v),
                "pgmajfault" => major[i] = Some(v),
                _ => {}
            }
        });
        s.rss = rss[0].or(rss[1]);
        m.inactive_file = inactive[0].or(inactive[1]);
        m.pgfault = fault[0].or(fault[1]);
        m.pgmajfault = major[0].or(major[1]);
    }
    if let Some(text) = oom.read()? {
        for_each_pair(text, |k, v| {
            if k == "oom_kill" {
                s.oom_kills = Some(v);
            }
        });
    }
    Ok(m)
}

/// The first present file of `bytes` and of `ops`: `254:0 Read 67112960` lines, merged by
/// device.
pub(super) fn read_io(bytes: &mut [CgFile], ops: &mut [CgFile], devices: &mut Devices, s: &mut CgroupStats) -> Result<(), ProcError> {
    for (list, is_bytes) in [(bytes, true), (ops, false)] {
        let Some(text) = first_present(list)? else { continue };
        // `254:0 Read 67112960`; the `Total` lines are skipped.
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let (Some(dev), Some(op), Some(v)) = (it.next(), it.next(), it.next()) else { continue };
            let i = match op {
                "Read" => 0,
                "Write" => 1,
                _ => continue,
            };
            let Ok(v) = v.parse() else { continue };
            let pos = match s.io.iter().position(|d| &*d.device == dev) {
                Some(p) => p,
                None => {
                    s.io.push(devices.io(dev));
                    s.io.len() - 1
                }
            };
            let d = &mut s.io[pos];
            if is_bytes {
                d.bytes[i] = Some(v);
            } else {
                d.ops[i] = Some(v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::cgroup::{fixture, fixture_copy, locate, CgroupFiles, Target};
    use crate::units::HostPaths;

    fn read_all(paths: &HostPaths) -> CgroupStats {
        let mut files = CgroupFiles::open(&locate(paths, None, Target::Own).unwrap());
        let mut s = CgroupStats::default();
        files.read_cpu(&mut s).unwrap();
        files.read_memory(&mut s).unwrap();
        files.read_io(&mut s).unwrap();
        files.read_pids(&mut s).unwrap();
        s
    }

    #[test]
    fn reads_the_v1_controllers_of_the_captured_hybrid_host_into_stats() {
        let s = read_all(&HostPaths::under(fixture("v1-hybrid")));
        // cpuacct.usage_user, usage_sys (ns); cpu.cfs_quota_us ÷ cpu.cfs_period_us; cpu.stat.
        assert_eq!((s.cpu_user, s.cpu_system, s.cpu_limit), (Some(2.022564416), Some(0.483929808), Some(0.5)));
        assert_eq!((s.periods, s.throttled_seconds), (Some([45, 42]), Some(5.05152856)));
        // memory.usage_in_bytes − total_inactive_file; the total_ values.
        assert_eq!((s.memory_usage, s.memory_limit, s.working_set, s.available), (Some(162500608), Some(268435456), Some(111919104), Some(156516352)));
        assert_eq!((s.rss, s.oom_kills, s.faults), (Some(108617728), Some(0), Some([0, 59666])));
        // One device, bytes and operations merged; the Total lines skipped.
        let io: Vec<_> = s.io.iter().map(|d| (&*d.device, d.bytes, d.ops)).collect();
        assert_eq!(io, [("254:0", [Some(67112960), Some(67108864)], [Some(65), Some(64)])]);
        assert_eq!((s.pids, s.pids_limit), (Some(4), Some(64)));
    }

    #[test]
    fn a_memory_limit_from_two_to_the_62_up_and_a_quota_of_minus_one_are_no_limit() {
        let (dir, paths) = fixture_copy("v1-hybrid");
        let memory = "sys/fs/cgroup/memory/process_api/8b5719f0e97bc94c3a3aa952264dc347/metricsd-capture";
        std::fs::write(dir.path().join(memory).join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(dir.path().join("sys/fs/cgroup/cpu/metricsd-capture/cpu.cfs_quota_us"), "-1\n").unwrap();
        let s = read_all(&paths);
        assert_eq!((s.memory_limit, s.available, s.cpu_limit), (None, None, None));
        assert_eq!(s.working_set, Some(111919104));
    }
}
