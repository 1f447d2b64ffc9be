//! The one OpenTelemetry → Prometheus translation, shared by the `/metrics` endpoint, the
//! remote-write exporter and the HTTP JSON exporter.
//!
//! - `names`: metric names, unit words and label names;
//! - `values`: attribute values as label values, and the number formats;
//! - `labels`: the label set of a series (job, instance, promoted and external labels);
//! - `otlp`: an OTLP batch → Prometheus [`Family`]s ([`translate`]), `target_info` included;
//! - `family`: what it produces ([`Family`], [`Sample`], [`Kind`]);
//! - `exposition`: families → the text exposition format ([`render_text`]).
//!
//! The rules are those of the OpenTelemetry Collector's `prometheus` and
//! `prometheusremotewrite` exporters (`pkg/translator/prometheus` and
//! `pkg/translator/prometheusremotewrite` in opentelemetry-collector-contrib, since moved to
//! `github.com/prometheus/otlptranslator`), which implement the OpenTelemetry specification
//! "Prometheus and OpenMetrics Compatibility". Each function cites the rule it follows; where
//! metricsd deliberately differs it says so.
//!
//! Examples (the README's):
//!
//! | OTel name | unit | instrument | Prometheus name |
//! | --- | --- | --- | --- |
//! | `system.network.io` | `By` | monotonic cumulative sum | `system_network_io_bytes_total` |
//! | `system.memory.utilization` | `1` | gauge | `system_memory_utilization_ratio` |
//! | `system.cpu.load_average.1m` | `{run_queue_item}` | gauge | `system_cpu_load_average_1m` |
//! | `system.disk.io_time` | `s` | monotonic cumulative sum | `system_disk_io_time_seconds_total` |
//! | `system.memory.usage` | `By` | non-monotonic sum | `system_memory_usage_bytes` (a gauge) |
//!
//! What is dropped (counted in [`TranslateStats`], never silently): DELTA sums and DELTA
//! histograms (metricsd exports cumulative; a delta point cannot become a Prometheus counter
//! without state, and the Collector's remote-write exporter drops them too), points of metrics
//! whose temporality is UNSPECIFIED, exponential histograms (remote-write 1.0 has no native
//! histograms), and points without a value or flagged "no recorded value" (no stale markers yet).

mod exposition;
mod family;
mod labels;
mod names;
mod otlp;
mod values;

pub use exposition::{render_text, TEXT_CONTENT_TYPE};
pub use family::{Family, Kind, Sample};
pub use names::{label_name, metric_name, metric_name_with_prefix, prometheus_unit, NameKind};
pub use otlp::{
    compact_samples, render_batch_text, translate, translate_batch, translate_resources, translate_rest, TranslateOptions, TranslateStats, TARGET_INFO,
    TARGET_INFO_HELP,
};
pub use values::attribute_value;

#[cfg(test)]
pub(crate) mod testutil;
