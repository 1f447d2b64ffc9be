//! The mdadm collector: Linux software RAID arrays from `/proc/mdstat` — each array's state,
//! its disks by state, the disks it needs, its size and the progress of a recovery, resync,
//! check or reshape — as node_exporter's `mdadm` collector (`node_md_state`, `node_md_disks`,
//! `node_md_disks_required`, `node_md_blocks`, `node_md_blocks_synced`).
//!
//! ```text
//! md1 : active raid5 sdc1[2] sdd1[3](F) sde1[4](S) sdb1[0]
//!       3906764800 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [U_U]
//!       [=>...................]  recovery =  8.5% (166261248/1953382400) finish=194.8min speed=152832K/sec
//! ```
//!
//! Alert on `system.linux.md.disks{system.linux.md.disk.state="failed"} > 0`, or on active
//! disks below `system.linux.md.disks.required`. The names are metricsd's
//! (`system.linux.md.*`). A host without md arrays (no `/proc/mdstat`) reports nothing and logs
//! that once at debug level.

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::mdstat::{self, Array, State};
use crate::procfs::ProcFile;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.mdadm`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MdadmConfig {
    /// Run this collector (default true; it reports nothing where there is no `/proc/mdstat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads `/proc/mdstat` every tick, keeping the file open.
pub struct MdadmCollector {
    file: ProcFile,
    presence: Presence,
    snap: Arc<SnapshotCell<Vec<Array>>>,
}

impl MdadmCollector {
    /// A collector of `paths`' `/proc/mdstat`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        MdadmCollector { file: ProcFile::new(mdstat::path(paths)), presence: Presence::new("mdadm"), snap: SnapshotCell::new(clock) }
    }
}

const SOURCE: &str = "/proc/mdstat";
const STATE: Metric<i64> =
    Metric::i64_gauge("system.linux.md.state", "{state}", "1 for the array's state (active, inactive, recovering, resync, check, reshape), 0 for the others")
        .attributes(&["system.device", "system.linux.md.state"])
        .source(SOURCE)
        .agent_name();
const DISKS: Metric<i64> = Metric::i64_up_down_counter("system.linux.md.disks", "{disk}", "Member disks of the array by state: active, failed, spare")
    .attributes(&["system.device", "system.linux.md.disk.state"])
    .source(SOURCE)
    .agent_name();
const DISKS_REQUIRED: Metric<i64> = Metric::i64_up_down_counter("system.linux.md.disks.required", "{disk}", "Disks a redundant array needs to be complete")
    .attributes(&["system.device"])
    .source("/proc/mdstat [required/up]")
    .agent_name();
const SIZE: Metric<i64> = Metric::i64_up_down_counter("system.linux.md.size", "By", "Size of the array")
    .attributes(&["system.device"])
    .source("/proc/mdstat blocks × 1024")
    .agent_name();
const SYNC_COMPLETION: Metric<f64> =
    Metric::f64_gauge("system.linux.md.sync.completion", "1", "Fraction done of the running recovery, resync, check or reshape (1 when none runs)")
        .attributes(&["system.device"])
        .source("/proc/mdstat (done/total)")
        .agent_name();

/// The mdadm collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[STATE.spec(), DISKS.spec(), DISKS_REQUIRED.spec(), SIZE.spec(), SYNC_COMPLETION.spec()];

fn device(a: &Array) -> KeyValue {
    KeyValue::new("system.device", a.device.clone())
}

impl Collector for MdadmCollector {
    fn name(&self) -> &'static str {
        "mdadm"
    }

    fn register(&mut self, meter: &Meter) {
        let snap = self.snap.clone();
        STATE.register(meter, move |obs| {
            snap.with(|v| {
                for a in v {
                    for s in State::ALL {
                        obs.observe(i64::from(a.state == s), &[device(a), KeyValue::new("system.linux.md.state", s.as_str())]);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        DISKS.register(meter, move |obs| {
            snap.with(|v| {
                for a in v {
                    for (state, n) in [("active", a.active), ("failed", a.failed), ("spare", a.spare)] {
                        obs.observe(i64::from(n), &[device(a), KeyValue::new("system.linux.md.disk.state", state)]);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        DISKS_REQUIRED.register(meter, move |obs| {
            snap.with(|v| {
                for a in v {
                    if let Some(r) = a.required {
                        obs.observe(i64::from(r), &[device(a)]);
                    }
                }
            });
        });
        let snap = self.snap.clone();
        SIZE.register(meter, move |obs| {
            snap.with(|v| {
                for a in v {
                    obs.observe(a.blocks.saturating_mul(1024).min(i64::MAX as u64) as i64, &[device(a)]);
                }
            });
        });
        let snap = self.snap.clone();
        SYNC_COMPLETION.register(meter, move |obs| {
            snap.with(|v| {
                for a in v.iter().filter(|a| a.state != State::Inactive) {
                    let done = match a.sync {
                        Some((_, 0)) | None => 1.0,
                        Some((d, t)) => (d as f64 / t as f64).min(1.0),
                    };
                    obs.observe(done, &[device(a)]);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        if let Some(arrays) = self.presence.check(mdstat::read_file(&mut self.file))? {
            self.snap.set(arrays);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, of, value, Harness};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_state_disks_size_and_sync_progress_of_each_array() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut MdadmCollector::new(&fixture_paths("linux-6.8-sensors"), &clock));
        let md = |d: &'static str| ("system.device", d);
        assert_eq!(value(&p, "system.linux.md.state", &[md("md1"), ("system.linux.md.state", "recovering")]), Some(1.0));
        assert_eq!(value(&p, "system.linux.md.state", &[md("md1"), ("system.linux.md.state", "active")]), Some(0.0));
        assert_eq!(value(&p, "system.linux.md.state", &[md("md0"), ("system.linux.md.state", "inactive")]), Some(1.0));
        assert_eq!(value(&p, "system.linux.md.disks", &[md("md1"), ("system.linux.md.disk.state", "failed")]), Some(1.0));
        assert_eq!(value(&p, "system.linux.md.disks", &[md("md1"), ("system.linux.md.disk.state", "active")]), Some(2.0));
        assert_eq!(value(&p, "system.linux.md.disks.required", &[md("md1")]), Some(3.0));
        assert_eq!(value(&p, "system.linux.md.size", &[md("md2")]), Some(1_919_891_456.0 * 1024.0));
        let check = value(&p, "system.linux.md.sync.completion", &[md("md3")]).unwrap();
        assert!((check - 508_720_128.0 / 976_628_736.0).abs() < 1e-12, "{check}");
        assert_eq!(value(&p, "system.linux.md.sync.completion", &[md("md2")]), Some(1.0));
        assert_eq!(of(&p, "system.linux.md.sync.completion").len(), 4, "not for the inactive md0");
    }

    #[test]
    fn a_host_without_md_reports_nothing_and_does_not_fail() {
        let clock = TickClock::default();
        let mut c = MdadmCollector::new(&fixture_paths("linux-6.18-vm"), &clock);
        assert!(Harness::new(&clock, &mut c).tick(&mut c).unwrap().is_empty());
    }
}
