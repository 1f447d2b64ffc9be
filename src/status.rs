//! What the agent knows about its own parts, as plain values: each collector's last refresh
//! ([`CollectorStatus`]) and each exporter's counters ([`ExporterStatus`]), shown on `/status`
//! and reported as self-telemetry. [`StatusSource`] is how a reader (the self-telemetry
//! collector) gets them without knowing who keeps them (the pipeline's `AgentState`).

use serde::Serialize;

/// The last refresh of one collector, for `/status` and self-telemetry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectorStatus {
    /// Seconds the last refresh took.
    pub last_duration_seconds: f64,
    /// The last refresh's error, if it failed.
    pub last_error: Option<String>,
    /// Refreshes that failed or timed out since start.
    pub errors: u64,
    /// Refreshes since start.
    pub refreshes: u64,
}

/// Counters and state of one exporter, shown on `/status` and in self-telemetry.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ExporterStatus {
    /// `type[index]`, e.g. `otlp[0]`.
    pub name: String,
    /// Where it sends.
    pub endpoint: String,
    /// Payloads delivered.
    pub sent_payloads: u64,
    /// Points delivered.
    pub sent_points: u64,
    /// Points the server rejected in a partial success.
    pub rejected_points: u64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Payloads dropped (not retryable, retries exhausted, queue or spool full, unsent at shutdown
    /// without a spool, or a corrupt region of the spool skipped).
    pub dropped_payloads: u64,
    /// Points in the dropped payloads.
    pub dropped_points: u64,
    /// Payloads waiting.
    pub queue_length: usize,
    /// Bytes waiting.
    pub queue_bytes: u64,
    /// Last delivery, RFC 3339.
    pub last_success: Option<String>,
    /// Last failure, with its reason.
    pub last_error: Option<String>,
    /// Duration of the last successful send, seconds.
    pub last_send_seconds: Option<f64>,
    /// Bytes of the disk spool's segments (0 without a spool).
    pub spool_bytes: u64,
    /// Payloads waiting in the disk spool.
    pub spool_records: u64,
    /// Why the configured spool is not in use (payloads then wait in memory).
    pub spool_error: Option<String>,
}

/// Whoever keeps the statuses: the pipeline's `AgentState`, or a fixed set in tests.
pub trait StatusSource: Send + Sync + 'static {
    /// Each collector's last refresh, by name.
    fn collector_statuses(&self) -> Vec<(String, CollectorStatus)>;
    /// Each exporter's counters.
    fn exporter_statuses(&self) -> Vec<ExporterStatus>;
    /// The OTLP receiver's counters, when it runs.
    fn receiver_status(&self) -> Option<ReceiverStatus> {
        None
    }
}

/// The OTLP receiver's counters, shown on `/status` (`receiver`) and in self-telemetry
/// (`metricsd.receiver.requests{outcome}`, `metricsd.receiver.points{outcome}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReceiverStatus {
    /// Requests by outcome: `accepted`, `partial`, `busy` (queues full or too many at once),
    /// `too_large`, `malformed`, `unauthenticated`, `unsupported` (media type or encoding).
    pub requests: std::collections::BTreeMap<&'static str, u64>,
    /// Points by outcome: `accepted`, `invalid` (no name, NaN in a counter), `over_limit`
    /// (beyond `max_points_per_request`), `refused` (in requests answered busy).
    pub points: std::collections::BTreeMap<&'static str, u64>,
    /// The last refusal, with its reason.
    pub last_error: Option<String>,
}

impl ReceiverStatus {
    /// Counts one request with `outcome`.
    pub fn request(&mut self, outcome: &'static str) {
        let n = self.requests.entry(outcome).or_default();
        *n = n.saturating_add(1);
    }

    /// Counts `n` points with `outcome`.
    pub fn points(&mut self, outcome: &'static str, n: u64) {
        if n > 0 {
            let c = self.points.entry(outcome).or_default();
            *c = c.saturating_add(n);
        }
    }
}
