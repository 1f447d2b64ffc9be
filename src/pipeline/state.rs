//! The state the HTTP server and the self-telemetry read: the latest batch, each collector's
//! and exporter's status, the resource, the scrape targets and where the last tick's time went.
//! The scheduler writes it; `/status`, `/ready` and `/metrics` read it.

use super::queue::{ExporterStatus, QueueHandle};
use super::Batch;
use crate::resource::Attributes;
use crate::status::CollectorStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Where the last tick's time went (wall time, seconds), for `/status`: the refreshes (all
/// collectors, in turn), the OpenTelemetry collect (every instrument callback, writing OTLP
/// points), and the batch's encoding as OTLP protobuf (when an OTLP exporter wants it).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TickTimings {
    /// Tick number.
    pub tick: u64,
    /// Every collector's refresh, start of the first to end of the last.
    pub refresh_seconds: f64,
    /// Every instrument callback, each observation becoming an OTLP point of the batch.
    pub collect_seconds: f64,
    /// Data points in the batch.
    pub points: u64,
}

/// What the HTTP server shows: shared between the scheduler and the server.
pub struct AgentState {
    /// When the agent started.
    pub started: Instant,
    /// The resource attributes in use.
    pub resource: RwLock<Attributes>,
    /// The most recent batch.
    pub latest: RwLock<Option<Arc<Batch>>>,
    /// Per collector.
    pub collectors: Mutex<BTreeMap<String, CollectorStatus>>,
    /// The exporters' queues.
    pub exporters: RwLock<Vec<QueueHandle>>,
    /// Whether `/ready` waits for a first successful export (when exporters exist).
    pub ready_requires_export: std::sync::atomic::AtomicBool,
    /// The scrape targets, when `endpoints` is not empty.
    pub scrape: RwLock<Option<Arc<crate::scrape::Scraper>>>,
    /// Where the last tick's time went.
    pub tick: Mutex<TickTimings>,
    /// The OTLP receiver's counters; `None` when no receiver runs.
    pub receiver: Mutex<Option<crate::status::ReceiverStatus>>,
    /// What apps pushed, kept for `/metrics` when `receivers.otlp.metrics_expiration` is set.
    pub received: Mutex<super::received::Received>,
}

impl AgentState {
    /// A fresh state with these resource attributes.
    pub fn new(resource: Attributes) -> Arc<Self> {
        Arc::new(AgentState {
            started: Instant::now(),
            resource: RwLock::new(resource),
            latest: RwLock::new(None),
            collectors: Mutex::new(BTreeMap::new()),
            exporters: RwLock::new(Vec::new()),
            ready_requires_export: std::sync::atomic::AtomicBool::new(true),
            scrape: RwLock::new(None),
            tick: Mutex::new(TickTimings::default()),
            receiver: Mutex::new(None),
            received: Mutex::new(Default::default()),
        })
    }

    /// Every exporter's counters.
    pub fn exporter_status(&self) -> Vec<ExporterStatus> {
        self.exporters.read().unwrap().iter().map(|h| h.status()).collect()
    }

    /// Ready: a batch was collected, and (if any exporter exists) one of them has delivered.
    pub fn is_ready(&self) -> Result<(), String> {
        if self.latest.read().unwrap().is_none() {
            return Err("no collection has completed yet".into());
        }
        let ex = self.exporter_status();
        if self.ready_requires_export.load(std::sync::atomic::Ordering::Relaxed) && !ex.is_empty() && ex.iter().all(|e| e.last_success.is_none()) {
            return Err("no exporter has delivered a batch yet".into());
        }
        Ok(())
    }
}

impl crate::status::StatusSource for AgentState {
    fn collector_statuses(&self) -> Vec<(String, CollectorStatus)> {
        self.collectors.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    fn exporter_statuses(&self) -> Vec<ExporterStatus> {
        self.exporter_status()
    }
    fn receiver_status(&self) -> Option<crate::status::ReceiverStatus> {
        self.receiver.lock().unwrap().clone()
    }
}
