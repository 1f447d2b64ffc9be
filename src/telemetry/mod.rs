//! The agent's own logs and traces over OTLP (`telemetry`), with the OpenTelemetry SDK, as the
//! Collector's `service.telemetry` sends the Collector's.
//!
//! Two `tracing` layers are added beside the stderr one when `telemetry.endpoint` is set: the
//! SDK's log bridge (every event of the agent at or above `telemetry.logs.level` becomes a log
//! record) and `tracing-opentelemetry` (the agent's spans — `tick`, `refresh`, `collect`,
//! `encode`, `send` — become OpenTelemetry spans). Both carry the agent's detected resource.
//!
//! **Never feeding back.** Both layers take only the agent's own events and spans (target
//! `metricsd…`): what the SDK, tonic or hyper log while exporting — an unreachable endpoint,
//! say — goes to stderr only, so an export failure cannot produce records to export.

pub mod config;
pub mod exporter;

pub use config::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{filter_fn, FilterExt as _, LevelFilter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// How long shutdown waits for the last records and spans to go out.
pub const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The running SDK providers; [`Telemetry::shutdown`] flushes them.
pub struct Telemetry {
    logs: Option<SdkLoggerProvider>,
    traces: Option<SdkTracerProvider>,
    config: TelemetryConfig,
}

/// Whether an event or span is the agent's own (not its libraries').
fn own(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("metricsd")
}

impl Telemetry {
    /// Starts the providers `config` asks for, with `resource`; exports run on `handle`'s
    /// runtime. `None` when telemetry is off.
    pub fn start(config: &TelemetryConfig, resource: &crate::resource::Attributes, handle: tokio::runtime::Handle) -> Result<Option<Telemetry>, String> {
        if !config.is_on() {
            return Ok(None);
        }
        let _ctx = handle.enter();
        let resource = Resource::builder_empty().with_attributes(resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone()))).build();
        let logs = if config.logs.enabled {
            let exporter = exporter::OnRuntime::new(exporter::logs(config)?, handle.clone());
            Some(SdkLoggerProvider::builder().with_resource(resource.clone()).with_batch_exporter(exporter).build())
        } else {
            None
        };
        let traces = if config.traces.enabled {
            let exporter = exporter::OnRuntime::new(exporter::spans(config)?, handle.clone());
            Some(SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
        } else {
            None
        };
        Ok(Some(Telemetry { logs, traces, config: config.clone() }))
    }

    /// The `tracing` layers that feed the providers.
    pub fn layers<S>(&self) -> Vec<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let mut layers: Vec<Box<dyn Layer<S> + Send + Sync>> = Vec::new();
        if let Some(p) = &self.logs {
            let level = LevelFilter::from_level(self.config.logs.level.tracing());
            let only_events = filter_fn(|m| m.is_event() && own(m));
            layers.push(opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(p).with_filter(only_events.and(level)).boxed());
        }
        if let Some(p) = &self.traces {
            let tracer = p.tracer("metricsd");
            // Spans are at debug level (so stderr at info never shows them); their events are
            // the log records' business.
            let only_spans = filter_fn(|m| m.is_span() && own(m));
            layers.push(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(only_spans.and(LevelFilter::DEBUG)).boxed());
        }
        layers
    }

    /// Sends what is buffered and stops; bounded by [`SHUTDOWN_TIMEOUT`] per signal. Errors go
    /// to stderr only.
    pub fn shutdown(self) {
        if let Some(p) = self.traces {
            if let Err(e) = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                eprintln!("telemetry: traces: {e}");
            }
        }
        if let Some(p) = self.logs {
            if let Err(e) = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                eprintln!("telemetry: logs: {e}");
            }
        }
    }
}
