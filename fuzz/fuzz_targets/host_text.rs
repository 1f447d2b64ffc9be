//! Any bytes as the text of a /proc, /sys or /etc file, or of an environment variable, through
//! the crate's parser of it (the first byte picks which), and through the accessors that
//! compute with the numbers read: no panic, no overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::procfs::*;
use metricsd::resource::{container, env, host};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = &*String::from_utf8_lossy(rest);
    // The kernel collectors' parsers: first bytes 240..=244 (the older corpus uses 0..=47).
    if which >= 240 {
        match which % 5 {
            0 => drop(snmp::parse_pairs(text, &mut Default::default())),
            1 => drop(snmp::parse_snmp6(text, &mut Default::default())),
            2 => drop(softnet::parse(text)),
            3 => drop(filefd::parse(text)),
            _ => drop(mdstat::parse(text).map(|v| v.iter().map(|a| a.blocks.saturating_mul(1024)).count())),
        }
        return;
    }
    match which % 24 {
        0 => drop(stat::parse(text).map(|s| (s.total.total(), s.cpus.iter().map(|(_, c)| c.total()).count()))),
        1 => drop(meminfo::parse(text)),
        2 => drop(loadavg::parse(text)),
        3 => drop(uptime::parse(text)),
        4 => drop(vmstat::parse(text).map(|v| v.minor_faults())),
        5 => drop(vmstat::entries(text).count()),
        6 => drop(diskstats::parse(text).map(|d| d.iter().map(|d| d.read_bytes() ^ d.written_bytes()).count())),
        7 => drop(netdev::parse(text)),
        8 => drop(netstat::count_tcp(text, &mut Default::default())),
        9 => drop(netstat::count_udp(text)),
        10 => drop(mountinfo::parse(text).map(|m| m.iter().map(|m| m.mode()).count())),
        11 => drop(mountinfo::unescape(text)),
        12 => drop(swaps::parse(text)),
        13 => drop(cpuinfo::parse(text)),
        14 => drop(cpuinfo::parse_cpu_list(text)),
        15 => drop(pid::parse_stat(text).map(|s| s.rss_bytes())),
        16 => drop(pid::parse_status(text)),
        17 => drop(pid::parse_io(text)),
        18 => drop((pid::parse_cmdline(rest), pid::stat_state(rest))),
        19 => drop(host::parse_os_release(text)),
        20 => drop(env::parse_otel_resource_attributes(text)),
        21 => drop((container::container_of_cgroup_line(text), container::k8s_pod_uid_of_cgroup(text))),
        22 => drop(container::container_of_mountinfo(text)),
        _ => drop((metricsd::collectors::process::parse_passwd(text), metricsd::exporters::otlp::parse_env_headers(text))),
    }
});
