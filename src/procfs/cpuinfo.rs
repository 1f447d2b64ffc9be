//! `/proc/cpuinfo` (logical and physical CPU counts, per-CPU MHz), the CPU topology in
//! `/sys/devices/system/cpu/cpuN/topology/`, the online list and cpufreq.
//!
//! ```text
//! processor   : 0
//! cpu MHz             : 2445.404
//! physical id : 0
//! core id             : 0
//! ```
//!
//! `/proc/cpuinfo` has one blank-line separated block per online logical CPU. The physical
//! core count is the number of distinct (`physical id`, `core id`) pairs; where cpuinfo has no
//! such keys (ARM, some Xen guests) it comes from the distinct (`physical_package_id`,
//! `core_id`) pairs of `/sys/devices/system/cpu/cpu*/topology/`. `cpu MHz` is x86 only.
//!
//! `/sys/devices/system/cpu/online` is a CPU list (`0-3,5,7-8`). cpufreq's
//! `/sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq` is in kHz; VMs and containers
//! often have no cpufreq at all, which is not an error.

use super::{LineError, ProcError};
use crate::units::HostPaths;
use std::collections::HashSet;

/// What `/proc/cpuinfo` says about the CPUs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuInfo {
    /// Logical CPUs (`processor` blocks).
    pub logical: usize,
    /// Distinct (physical id, core id) pairs; `None` when cpuinfo has no such keys (then
    /// [`read`] fills it from sysfs where it can).
    pub physical_cores: Option<usize>,
    /// (processor, MHz) for CPUs with a `cpu MHz` line.
    pub mhz: Vec<(u32, f64)>,
    /// Whether `cpu MHz` is a measured, changing value: x86 CPUs with the `aperfmperf` flag.
    /// Without it (and without cpufreq) the kernel prints the boot-time `cpu_khz`, a constant
    /// (`show_cpuinfo` in `arch/x86/kernel/cpu/proc.c`): most VMs.
    pub mhz_measured: bool,
}

/// Parses the text of `/proc/cpuinfo`.
pub fn parse(text: &str) -> Result<CpuInfo, LineError> {
    let mut info = CpuInfo::default();
    let mut cores = HashSet::new();
    let mut cpu: Option<u32> = None;
    let mut package: Option<u64> = None;
    let mut core: Option<u64> = None;
    let mut flush = |package: &mut Option<u64>, core: &mut Option<u64>| {
        if let (Some(p), Some(c)) = (package.take(), core.take()) {
            cores.insert((p, c));
        }
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                flush(&mut package, &mut core);
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            // Old ARM kernels also have `Processor : ARMv7 ...`: only numbered ones count.
            "processor" => {
                if let Ok(p) = value.parse() {
                    flush(&mut package, &mut core);
                    cpu = Some(p);
                    info.logical += 1;
                }
            }
            "physical id" => package = Some(super::num(Some(value), n, key)?),
            "core id" => core = Some(super::num(Some(value), n, key)?),
            "flags" if value.split_ascii_whitespace().any(|f| f == "aperfmperf") => info.mhz_measured = true,
            "cpu MHz" => {
                let mhz = super::num(Some(value), n, key)?;
                if let Some(c) = cpu {
                    info.mhz.push((c, mhz));
                }
            }
            _ => {}
        }
    }
    flush(&mut package, &mut core);
    info.physical_cores = (!cores.is_empty()).then_some(cores.len());
    Ok(info)
}

/// Reads `/proc/cpuinfo`, taking the physical core count from sysfs when cpuinfo lacks it.
pub fn read(paths: &HostPaths) -> Result<CpuInfo, ProcError> {
    let p = paths.proc("cpuinfo");
    let mut info = parse(&super::read_to_string(&p)?).map_err(|e| super::at(&p, e))?;
    if info.physical_cores.is_none() {
        info.physical_cores = physical_cores_from_sysfs(paths);
    }
    Ok(info)
}

/// Distinct (`physical_package_id`, `core_id`) pairs under
/// `/sys/devices/system/cpu/cpu*/topology/`; `None` when there are none.
pub fn physical_cores_from_sysfs(paths: &HostPaths) -> Option<usize> {
    let mut cores = HashSet::new();
    for (_, dir) in cpu_dirs(paths) {
        let read = |f: &str| -> Option<i64> { std::fs::read_to_string(dir.join("topology").join(f)).ok()?.trim().parse().ok() };
        if let (Some(p), Some(c)) = (read("physical_package_id"), read("core_id")) {
            cores.insert((p, c));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// The `cpuN` directories of `/sys/devices/system/cpu`, sorted by N.
fn cpu_dirs(paths: &HostPaths) -> Vec<(u32, std::path::PathBuf)> {
    let base = paths.sys("devices/system/cpu");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, std::path::PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort_unstable_by_key(|x| x.0);
    out
}

/// Parses a kernel CPU list (`0-3,5,7-8`) into CPU numbers.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, LineError> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (super::num(Some(a), 1, "cpu list")?, super::num(Some(b), 1, "cpu list")?),
            None => {
                let n: u32 = super::num(Some(part), 1, "cpu list")?;
                (n, n)
            }
        };
        if a > b {
            return Err(LineError::new(1, format!("cpu list: range {part:?} runs backwards")));
        }
        // The count is checked before the range is expanded: a list the kernel would never write
        // ("0-4294967295") is an error, not gigabytes of CPU numbers.
        if b >= MAX_CPUS || out.len() as u64 + u64::from(b - a) + 1 > u64::from(MAX_CPUS) {
            return Err(LineError::new(1, format!("cpu list: {part:?} goes past {MAX_CPUS} CPUs")));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

/// The most CPUs a cpu list may name, and the highest CPU number plus one: Linux's `NR_CPUS`
/// is at most 8,192 on every architecture today; this leaves room eight times over.
pub const MAX_CPUS: u32 = 65_536;

/// The online CPUs, from `/sys/devices/system/cpu/online`.
pub fn read_online(paths: &HostPaths) -> Result<Vec<u32>, ProcError> {
    let p = paths.sys("devices/system/cpu/online");
    parse_cpu_list(&super::read_to_string(&p)?).map_err(|e| super::at(&p, e))
}

/// (cpu, Hz) from `/sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq` (kHz × 1000), sorted
/// by cpu. CPUs without cpufreq, or a host without `/sys/devices/system/cpu`, give nothing.
pub fn read_cpufreq(paths: &HostPaths) -> Vec<(u32, u64)> {
    cpu_dirs(paths)
        .into_iter()
        .filter_map(|(cpu, dir)| {
            let text = std::fs::read_to_string(dir.join("cpufreq/scaling_cur_freq")).ok()?;
            let khz: u64 = text.trim().parse().ok()?;
            Some((cpu, khz.checked_mul(1000)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn counts_logical_and_physical_cpus_of_a_6_18_vm() {
        let info = read(&fixture_paths("linux-6.18-vm")).unwrap();
        assert_eq!(info.logical, 2);
        assert_eq!(info.physical_cores, Some(2)); // (0,0) and (0,1)
        assert_eq!(info.mhz, [(0, 2445.404), (1, 2445.404)]);
        assert!(!info.mhz_measured, "a VM without aperfmperf prints the constant cpu_khz");
    }

    #[test]
    fn counts_hyperthreads_once_as_physical_cores() {
        let info = read(&fixture_paths("linux-5.15-server")).unwrap();
        assert_eq!(info.logical, 4);
        assert_eq!(info.physical_cores, Some(2)); // cpus 0,2 on core 0 and 1,3 on core 1
        assert_eq!(info.mhz, [(0, 3400.012), (1, 1200.0), (2, 3399.871), (3, 800.25)]);
    }

    #[test]
    fn falls_back_to_sysfs_topology_when_cpuinfo_has_no_core_ids() {
        let info = read(&fixture_paths("linux-2.6.32-old")).unwrap();
        assert_eq!(info.logical, 3);
        // sysfs: cpu0 (0,0), cpu1 (0,1), cpu3 (0,1).
        assert_eq!(info.physical_cores, Some(2));
        assert_eq!(info.mhz, [(0, 2593.748), (1, 2593.748), (3, 2593.748)]);
        assert!(info.mhz_measured, "this CPU has the aperfmperf flag");
    }

    #[test]
    fn ignores_the_model_line_of_old_arm_cpuinfo() {
        let info = parse("Processor\t: ARMv7 Processor rev 10 (v7l)\nprocessor\t: 0\nBogoMIPS\t: 38.00\n\nprocessor\t: 1\n").unwrap();
        assert_eq!((info.logical, info.physical_cores), (2, None));
    }

    #[test]
    fn reads_cpufreq_in_hertz_and_nothing_where_there_is_none() {
        assert_eq!(read_cpufreq(&fixture_paths("linux-5.15-server")), [(0, 3_400_012_000), (1, 1_200_000_000), (2, 3_399_871_000), (3, 800_250_000)]);
        assert_eq!(read_cpufreq(&fixture_paths("linux-6.18-vm")), []);
        assert_eq!(read_cpufreq(&fixture_paths("no-such-tree")), []);
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5,7-8\n").unwrap(), [0, 1, 2, 3, 5, 7, 8]);
        assert_eq!(read_online(&fixture_paths("linux-6.18-vm")).unwrap(), [0, 1]);
        assert_eq!(parse_cpu_list("0-x").unwrap_err().to_string(), "line 1: cpu list: not a number: \"x\"");
    }

    #[test]
    fn a_cpu_list_past_any_kernel_is_an_error_before_it_is_expanded() {
        assert_eq!(parse_cpu_list("9-1555555555\n").unwrap_err().to_string(), "line 1: cpu list: \"9-1555555555\" goes past 65536 CPUs");
        assert!(parse_cpu_list("0-65535").is_ok());
        assert!(parse_cpu_list("0-65535,3").is_err(), "the count is bounded, not only the numbers");
        assert_eq!(parse_cpu_list("5-2").unwrap_err().to_string(), "line 1: cpu list: range \"5-2\" runs backwards");
    }
}
