//! metricsd: an OpenTelemetry-native host metrics agent.
//!
//! Data flow: [`collectors`] refresh snapshots at each tick of the [`pipeline`] scheduler; the
//! OpenTelemetry instruments read them (the API implemented in [`pipeline::meter`]); the collected batch (an OTLP
//! `ExportMetricsServiceRequest`) goes to every exporter's queue ([`exporters`]); the
//! [`server`] shows health, status and the latest batch.

pub mod agent;
pub mod collectors;
pub mod config;
pub mod exporters;
pub mod http;
pub mod mem;
pub mod pipeline;
pub mod points;
pub mod procfs;
pub mod receiver;
pub mod resource;
pub mod sched;
pub mod scrape;
pub mod server;
pub mod status;
pub mod telemetry;
#[cfg(test)]
mod test_logs;
pub mod tls;
pub mod translate;
pub mod units;
