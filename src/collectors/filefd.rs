//! The filefd collector: file handles allocated system-wide and their limit (`fs.file-max`),
//! from `/proc/sys/fs/file-nr`, as node_exporter's `filefd` collector.
//!
//! ```text
//! 1376    0    2466239  (tab-separated)
//! ```
//!
//! The names are metricsd's (`system.linux.file_descriptor.*`; the semantic conventions name
//! only the per-process `process.unix.file_descriptor.count`).

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::filefd::{self, FileNr};
use crate::procfs::ProcFile;
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.filefd`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilefdConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads `file-nr` every tick, keeping the file open.
pub struct FilefdCollector {
    file: ProcFile,
    snap: Arc<SnapshotCell<FileNr>>,
}

impl FilefdCollector {
    /// A collector reading `paths`' `/proc/sys/fs/file-nr`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        FilefdCollector { file: ProcFile::new(filefd::path(paths)), snap: SnapshotCell::new(clock) }
    }
}

const COUNT: Metric<i64> =
    Metric::i64_up_down_counter("system.linux.file_descriptor.count", "{file_descriptor}", "File handles allocated by the kernel, system-wide")
        .source("/proc/sys/fs/file-nr, 1st field")
        .agent_name();
const LIMIT: Metric<i64> =
    Metric::i64_up_down_counter("system.linux.file_descriptor.limit", "{file_descriptor}", "Most file handles the kernel will allocate (fs.file-max)")
        .source("/proc/sys/fs/file-nr, 3rd field")
        .agent_name();

/// The filefd collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[COUNT.spec(), LIMIT.spec()];

impl Collector for FilefdCollector {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn register(&mut self, meter: &Meter) {
        type Pick = fn(&FileNr) -> u64;
        for (metric, pick) in [(COUNT, (|f: &FileNr| f.allocated) as Pick), (LIMIT, |f| f.maximum)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|f| obs.observe(pick(f).min(i64::MAX as u64) as i64, &[]));
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let f = filefd::read_file(&mut self.file)?;
        self.snap.set(f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, value};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_the_allocated_handles_and_the_limit_of_a_capture() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut FilefdCollector::new(&fixture_paths("linux-6.18-vm"), &clock));
        assert_eq!(value(&p, "system.linux.file_descriptor.count", &[]), Some(1376.0));
        assert_eq!(value(&p, "system.linux.file_descriptor.limit", &[]), Some(2466239.0));
    }
}
