//! The load collector: `system.cpu.load_average.{1m,5m,15m}` from `/proc/loadavg`.
//!
//! ```text
//! 0.52 0.58 0.59 2/611 4138
//! ```

use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::host::HostPaths;
use crate::procfs::{loadavg, ProcFile};
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.load`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Reads `/proc/loadavg` every tick, keeping the file open.
pub struct LoadCollector {
    file: ProcFile,
    snap: Arc<SnapshotCell<loadavg::LoadAvg>>,
}

impl LoadCollector {
    /// A collector reading `paths`' `/proc/loadavg`.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        LoadCollector { file: ProcFile::new(paths.proc("loadavg")), snap: SnapshotCell::new(clock) }
    }
}

impl Collector for LoadCollector {
    fn name(&self) -> &'static str {
        "load"
    }

    fn register(&mut self, meter: &Meter) {
        for (name, pick) in [
            ("system.cpu.load_average.1m", (|l: &loadavg::LoadAvg| l.one) as fn(&loadavg::LoadAvg) -> f64),
            ("system.cpu.load_average.5m", |l| l.five),
            ("system.cpu.load_average.15m", |l| l.fifteen),
        ] {
            let snap = self.snap.clone();
            meter
                .f64_observable_gauge(name)
                .with_unit("{run_queue_item}")
                .with_description("Average number of runnable and uninterruptible tasks over the period")
                .with_callback(move |obs| {
                    snap.with(|l| obs.observe(pick(l), &[]));
                })
                .build();
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let path = self.file.path().to_path_buf();
        let text = self.file.read()?;
        let l = loadavg::parse(text).map_err(|msg| crate::procfs::ProcError::Parse { path, line: 1, msg })?;
        self.snap.set(l);
        Ok(())
    }
}
