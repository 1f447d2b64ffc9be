//! metricsd's `collector` section: the interval, the per-collector time limit, metricsd's
//! `enable_*` switches, and one sub-section per collector (each defined beside its collector).

use crate::units::ConfigDuration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default collection interval (metricsd's).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default time limit for one collector's refresh.
pub const DEFAULT_COLLECTOR_TIMEOUT: Duration = Duration::from_secs(5);

/// metricsd's `collector` section, with a sub-section per collector.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// metricsd's interval in whole seconds (default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// The interval as a duration (`"10s"`); wins over `interval_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<ConfigDuration>,
    /// Time limit of one collector's refresh (default `"5s"`, at most the interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ConfigDuration>,
    /// metricsd's switch for the cpu collector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_cpu: Option<bool>,
    /// metricsd's switch for the memory and paging (swap) collectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_memory: Option<bool>,
    /// metricsd's switch for the disk and filesystem collectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_disk: Option<bool>,
    /// metricsd's switch for the network collector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_network: Option<bool>,
    /// metricsd's switch for the NVIDIA GPU collector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_gpu: Option<bool>,
    /// The memory collector (`system.memory.*`).
    pub memory: super::memory::MemoryConfig,
    /// The agent's own telemetry (`metricsd.*`).
    pub agent: super::self_telemetry::SelfTelemetryConfig,
    /// The load collector (`system.cpu.load_average.*`).
    pub load: super::load::LoadConfig,
    /// The cpu collector (`system.cpu.time`, `.utilization`, `.logical.count`,
    /// `.physical.count`, `.frequency`); metricsd's `enable_cpu` also switches it.
    pub cpu: super::cpu::CpuConfig,
    /// The paging collector (`system.paging.*`: swap usage, faults, paging operations);
    /// metricsd's `enable_memory` also switches it.
    pub paging: super::paging::PagingConfig,
    /// The network collector (`system.network.*`: interface counters, socket counts);
    /// metricsd's `enable_network` also switches it.
    pub network: super::network::NetworkConfig,
    /// The disk collector (`system.disk.*`); metricsd's `enable_disk` also switches it.
    pub disk: super::disk::DiskConfig,
    /// The filesystem collector (`system.filesystem.*`); metricsd's `enable_disk` also
    /// switches it.
    pub filesystem: super::filesystem::FilesystemConfig,
    /// The per-process collector (`process.*` of the top N processes); off by default.
    pub process: super::process::ProcessConfig,
    /// The processes collector (`system.process.count`, `system.process.created`).
    pub processes: super::processes::ProcessesConfig,
    /// The uptime collector (`system.uptime`).
    pub uptime: super::uptime::UptimeConfig,
    /// The NVIDIA GPU collector (`hw.gpu.*`, `nvidia.gpu.*`, via NVML); off by default.
    pub gpu: super::gpu::GpuConfig,
    /// The cgroup collector (`container.*`: CPU, memory, block I/O and process limits and usage
    /// of the agent's own cgroup, of `path`, or with `scope: pod` of its Kubernetes pod); on by
    /// default only inside a container.
    pub cgroup: super::cgroup::CgroupConfig,
    /// The textfile collector (node_exporter's `--collector.textfile.directory`): every
    /// `*.prom` file of `directory`, parsed each tick into the host's metrics; off unless
    /// `directory` is set.
    pub textfile: super::textfile::TextfileConfig,
    /// The pressure collector (`system.linux.pressure.time`: the host's PSI stall times); on
    /// by default where `/proc/pressure` exists.
    pub pressure: super::pressure::PressureConfig,
    /// The containers collector (`container.*` and `k8s.pod.*` of every container, pod and
    /// Proxmox guest on the host); on by default in a Kubernetes DaemonSet that sees the
    /// node's pod cgroups, otherwise off.
    pub containers: super::containers::ContainersConfig,
    /// The netstat collector (`system.linux.network.{tcp,udp}.*`: retransmits, resets, listen
    /// overflows and drops, SYN cookies, UDP errors); metricsd's `enable_network` also switches it.
    pub netstat: super::netstat::NetstatConfig,
    /// The softnet collector (`system.linux.softnet.*`: per-CPU receive softirq drops and
    /// squeezes); metricsd's `enable_network` also switches it.
    pub softnet: super::softnet::SoftnetConfig,
    /// The conntrack collector (`system.network.conntrack.{count,max}`), where `nf_conntrack` is
    /// loaded; metricsd's `enable_network` also switches it.
    pub conntrack: super::conntrack::ConntrackConfig,
    /// The filefd collector (`system.linux.file_descriptor.{count,limit}`).
    pub filefd: super::filefd::FilefdConfig,
    /// The entropy collector (`system.linux.entropy.*`).
    pub entropy: super::entropy::EntropyConfig,
    /// The timex collector (`system.linux.time.*`: clock offset, errors, synchronized).
    pub timex: super::timex::TimexConfig,
    /// The hwmon collector (`hw.temperature`, `hw.fan.speed`, `hw.voltage`, `hw.power`,
    /// `hw.energy` of `/sys/class/hwmon` sensors), where the host has sensor chips.
    pub hwmon: super::hwmon::HwmonConfig,
    /// The thermal collector (`hw.temperature` of `/sys/class/thermal` zones, cooling device
    /// states), where the host has thermal zones.
    pub thermal: super::thermal::ThermalConfig,
    /// The rapl collector (`hw.energy` of RAPL domains: packages, cores, DRAM), where the host
    /// has RAPL and the agent runs as root.
    pub rapl: super::rapl::RaplConfig,
    /// The edac collector (`hw.errors` of memory controllers, per-row counts), where an EDAC
    /// driver is loaded.
    pub edac: super::edac::EdacConfig,
    /// The nvme collector (`system.linux.nvme.info`: model, serial, firmware, state);
    /// metricsd's `enable_disk` also switches it.
    pub nvme: super::nvme::NvmeConfig,
    /// The mdadm collector (`system.linux.md.*`: software RAID state, disks, sync progress);
    /// metricsd's `enable_disk` also switches it.
    pub mdadm: super::mdadm::MdadmConfig,
}

impl CollectorConfig {
    /// The effective interval: `interval`, else `interval_seconds`, else 60 s.
    pub fn interval(&self) -> Duration {
        self.interval.map(|d| d.get()).or(self.interval_seconds.map(Duration::from_secs)).unwrap_or(DEFAULT_INTERVAL)
    }

    /// Each collector's per-metric settings (`collector.<name>.metrics`), by the collector's
    /// name as the catalog and [`super::Collector::name`] give it.
    pub fn metric_settings(&self) -> Vec<(&'static str, &super::metric_settings::MetricSettings)> {
        vec![
            ("memory", &self.memory.metrics),
            ("load", &self.load.metrics),
            ("cpu", &self.cpu.metrics),
            ("paging", &self.paging.metrics),
            ("network", &self.network.metrics),
            ("processes", &self.processes.metrics),
            ("disk", &self.disk.metrics),
            ("filesystem", &self.filesystem.metrics),
            ("process", &self.process.metrics),
            ("uptime", &self.uptime.metrics),
            ("cgroup", &self.cgroup.metrics),
            ("gpu", &self.gpu.metrics),
            ("agent", &self.agent.metrics),
            ("textfile", &self.textfile.metrics),
            ("pressure", &self.pressure.metrics),
            ("containers", &self.containers.metrics),
            ("netstat", &self.netstat.metrics),
            ("softnet", &self.softnet.metrics),
            ("conntrack", &self.conntrack.metrics),
            ("filefd", &self.filefd.metrics),
            ("entropy", &self.entropy.metrics),
            ("timex", &self.timex.metrics),
            ("hwmon", &self.hwmon.metrics),
            ("thermal", &self.thermal.metrics),
            ("rapl", &self.rapl.metrics),
            ("edac", &self.edac.metrics),
            ("nvme", &self.nvme.metrics),
            ("mdadm", &self.mdadm.metrics),
        ]
    }

    /// The effective per-collector time limit, never longer than the interval.
    pub fn timeout(&self) -> Duration {
        self.timeout.map(|d| d.get()).unwrap_or(DEFAULT_COLLECTOR_TIMEOUT).min(self.interval())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_collector_of_the_catalog_has_its_metrics_settings_listed_once() {
        let c = CollectorConfig::default();
        let listed: Vec<&str> = c.metric_settings().into_iter().map(|(n, _)| n).collect();
        for entry in super::super::catalog::CATALOG {
            assert_eq!(listed.iter().filter(|n| **n == entry.collector).count(), 1, "collector.{}.metrics is not in metric_settings()", entry.collector);
        }
    }
}
