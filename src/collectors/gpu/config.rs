//! `collector.gpu`: the GPU collector's config section, its defaults and what each key does.
//!
//! ```json
//! {"collector": {"gpu": {"enabled": true, "max_processes": 8, "energy_interval": "10s"}}}
//! ```

use crate::units::ConfigDuration;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `collector.gpu`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// Run this collector (default false; metricsd's `enable_gpu` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Report GPU memory per process, with its executable, container and pod (default true).
    pub processes: bool,
    /// Report at most this many processes per GPU, those using the most memory (default 64).
    pub max_processes: usize,
    /// Report the memory of each MIG device of GPUs in MIG mode (default true).
    pub mig: bool,
    /// Report PCIe bytes (`hw.gpu.io`) from NVML's PCIe byte counters (default true).
    pub pcie_io: bool,
    /// How often a dedicated thread reads the PCIe byte counters (32-bit, they wrap every
    /// 4 GiB) into 64-bit totals; it shortens its interval down to 50 ms while the GPU moves
    /// more than 1 GiB per interval. `"0s"` reads them on the tick instead, which undercounts
    /// above 4 GiB per tick (default `"1s"`; at least `"10ms"`).
    pub pcie_interval: ConfigDuration,
    /// Report memory health: remapped rows and retired pages, where the GPU tracks them
    /// (default true).
    pub memory_health: bool,
    /// Report NVLink link state, bytes and error counters, for GPUs that have links
    /// (default true).
    pub nvlink: bool,
    /// Count critical XID errors per GPU and code (`nvidia.gpu.xid.errors`), from NVML events
    /// waited on by a dedicated thread (default true).
    pub xid: bool,
    /// The kubelet's PodResources socket, from which GPUs learn the pod and container they are
    /// allocated to (default `/var/lib/kubelet/pod-resources/kubelet.sock`; a missing default
    /// socket is logged at debug, a missing configured one at warn).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_resources_socket: Option<PathBuf>,
    /// How often to ask the kubelet which pod holds each GPU, on a dedicated thread (sooner,
    /// at most every 5 s, when a GPU with processes has no pod); `"0s"` turns it off
    /// (default `"30s"`).
    pub pod_resources_interval: ConfigDuration,
    /// How often to read the energy counter, a 4 ms driver call; `hw.energy` holds the last
    /// reading in between (default `"60s"`; `"0s"` reads it every tick).
    pub energy_interval: ConfigDuration,
    /// Wait before retrying when there is no driver or a GPU was lost; doubles after each
    /// failed retry, up to 10 minutes (default `"60s"`).
    pub retry_interval: ConfigDuration,
    /// Where `libnvidia-ml.so.1` is, when not on the library search path (default: searched,
    /// as `dlopen` does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library_path: Option<PathBuf>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            enabled: None,
            metrics: Default::default(),
            processes: true,
            max_processes: 64,
            mig: true,
            pcie_io: true,
            pcie_interval: ConfigDuration::secs(1),
            memory_health: true,
            xid: true,
            nvlink: true,
            pod_resources_socket: None,
            pod_resources_interval: ConfigDuration::secs(30),
            energy_interval: ConfigDuration::secs(60),
            retry_interval: ConfigDuration::secs(60),
            library_path: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_config_section_has_documented_defaults_and_rejects_unknown_keys() {
        let c: GpuConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, GpuConfig::default());
        assert!(c.processes && c.mig && c.pcie_io);
        assert_eq!(c.max_processes, 64);
        assert_eq!(c.energy_interval.get(), Duration::from_secs(60));
        assert_eq!(c.retry_interval.get(), Duration::from_secs(60));
        let c: GpuConfig = serde_json::from_str(
            r#"{"enabled": true, "energy_interval": "10s", "max_processes": 8, "library_path": "/usr/local/nvidia/lib64/libnvidia-ml.so.1"}"#,
        )
        .unwrap();
        assert_eq!((c.enabled, c.max_processes), (Some(true), 8));
        assert_eq!(c.energy_interval.get(), Duration::from_secs(10));
        let e = serde_json::from_str::<GpuConfig>(r#"{"bogus": 1}"#).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
