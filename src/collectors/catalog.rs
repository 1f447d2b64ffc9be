//! The metric catalog: every collector's [`MetricSpec`]s, the same constants the collectors
//! register from, and their rendering for `metricsd --list-metrics [--format table|markdown|json]`.
//! docs/metrics.md is the markdown rendering (checked by tests/metrics_doc.rs).
//!
//! ```text
//! memory  system.memory.usage  UpDownCounter  By  on  system.memory.state  /proc/meminfo; used = MemTotal − MemAvailable …
//! ```
//!
//! Listing reads nothing: no /proc, no NVML.

use super::instruments::MetricSpec;
use super::{cgroup, containers, cpu, disk, filesystem, gpu, load, memory, network, paging, pressure, process, processes, self_telemetry, textfile, uptime};
use super::{conntrack, edac, entropy, filefd, hwmon, mdadm, netstat, nvme, rapl, softnet, thermal, timex};

/// One collector's metrics.
#[derive(Debug, Clone, Copy)]
pub struct CollectorMetrics {
    /// The collector's name, as its `collector.<name>` config section is called.
    pub collector: &'static str,
    pub metrics: &'static [MetricSpec],
}

/// Every collector's metrics, in the order the agent builds the collectors.
pub const CATALOG: &[CollectorMetrics] = &[
    CollectorMetrics { collector: "memory", metrics: memory::METRICS },
    CollectorMetrics { collector: "load", metrics: load::METRICS },
    CollectorMetrics { collector: "cpu", metrics: cpu::METRICS },
    CollectorMetrics { collector: "paging", metrics: paging::METRICS },
    CollectorMetrics { collector: "network", metrics: network::METRICS },
    CollectorMetrics { collector: "processes", metrics: processes::METRICS },
    CollectorMetrics { collector: "disk", metrics: disk::METRICS },
    CollectorMetrics { collector: "filesystem", metrics: filesystem::METRICS },
    CollectorMetrics { collector: "process", metrics: process::METRICS },
    CollectorMetrics { collector: "uptime", metrics: uptime::METRICS },
    CollectorMetrics { collector: "cgroup", metrics: cgroup::METRICS },
    CollectorMetrics { collector: "pressure", metrics: pressure::METRICS },
    CollectorMetrics { collector: "containers", metrics: containers::METRICS },
    CollectorMetrics { collector: "gpu", metrics: gpu::instruments::METRICS },
    CollectorMetrics { collector: "textfile", metrics: textfile::METRICS },
    CollectorMetrics { collector: "netstat", metrics: netstat::METRICS },
    CollectorMetrics { collector: "softnet", metrics: softnet::METRICS },
    CollectorMetrics { collector: "conntrack", metrics: conntrack::METRICS },
    CollectorMetrics { collector: "filefd", metrics: filefd::METRICS },
    CollectorMetrics { collector: "entropy", metrics: entropy::METRICS },
    CollectorMetrics { collector: "timex", metrics: timex::METRICS },
    CollectorMetrics { collector: "hwmon", metrics: hwmon::METRICS },
    CollectorMetrics { collector: "thermal", metrics: thermal::METRICS },
    CollectorMetrics { collector: "rapl", metrics: rapl::METRICS },
    CollectorMetrics { collector: "edac", metrics: edac::METRICS },
    CollectorMetrics { collector: "nvme", metrics: nvme::METRICS },
    CollectorMetrics { collector: "mdadm", metrics: mdadm::METRICS },
    CollectorMetrics { collector: "agent", metrics: self_telemetry::METRICS },
];

/// How `--list-metrics` prints the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// docs/metrics.md.
    Markdown,
    /// One JSON array of metrics.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "markdown" | "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format {other:?} (table, markdown or json)")),
        }
    }
}

/// The catalog in `format`.
pub fn render(format: Format) -> String {
    match format {
        Format::Table => table(),
        Format::Markdown => markdown(),
        Format::Json => json(),
    }
}

fn attributes(m: &MetricSpec, none: &str) -> String {
    if m.attributes.is_empty() {
        none.to_string()
    } else {
        m.attributes.join(", ")
    }
}

fn table() -> String {
    let header = ["COLLECTOR", "NAME", "INSTRUMENT", "UNIT", "DEFAULT", "ATTRIBUTES", "SOURCE"].map(String::from);
    let mut rows = vec![header];
    for c in CATALOG {
        for m in c.metrics {
            rows.push([
                c.collector.to_string(),
                m.name.to_string(),
                format!("{} ({})", m.kind.as_str(), m.value_type.as_str()),
                m.unit.to_string(),
                m.by_default.as_str().to_string(),
                attributes(m, "-"),
                m.source.to_string(),
            ]);
        }
    }
    // The attributes column is padded to at most ATTRIBUTES_WIDTH: the few longer lists (GPU
    // processes) push their row's source right rather than every row's.
    const ATTRIBUTES_WIDTH: usize = 60;
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let mut widths: Vec<usize> = (0..6).map(width).collect();
    widths[5] = widths[5].min(ATTRIBUTES_WIDTH);
    let mut out = String::new();
    for r in &rows {
        for (cell, w) in r.iter().zip(&widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
        }
        out.push_str(&r[6]);
        out.push('\n');
    }
    out
}

const MARKDOWN_HEADER: &str = "\
# Metrics

Every metric metricsd reports, by collector. This file is the output of
`metricsd --list-metrics --format markdown`, built from the descriptions the collectors
register their instruments from (each collector's `METRICS` in src/collectors/), so it lists
exactly what is registered. Do not edit it by hand; regenerate it with

```sh
cargo run --quiet -- --list-metrics --format markdown > docs/metrics.md
```

`cargo test --test metrics_doc` (part of the CI run) fails when it differs from the command's
output.

Columns: the instrument and the type it observes; the UCUM unit; the attributes of each
point besides the resource's (a point carries those that are known); `default`: whether the
default configuration reports it; `name`: `semconv` for a name of the OpenTelemetry semantic
conventions; `metricsd` for the agent's own, whose name says so (`metricsd.*`, `nvidia.*`, or a
`.linux.` part: `system.linux.*`, `container.linux.*`); or the OpenTelemetry Collector receiver
(`hostmetrics`, `kubeletstats`, `docker_stats`) whose name it keeps, for a name the conventions
do not define; the source it is read from. Each collector is configured in its
`collector.<name>` section, where `metrics` switches single metrics off or drops attributes.
";

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn code_list(items: &[&str]) -> String {
    if items.is_empty() {
        "–".to_string()
    } else {
        items.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
    }
}

fn markdown() -> String {
    let mut out = String::from(MARKDOWN_HEADER);
    for c in CATALOG {
        out.push_str(&format!("\n## {} (`collector.{}`)\n\n", c.collector, c.collector));
        out.push_str("| metric | instrument | unit | attributes | default | name | source | description |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for m in c.metrics {
            out.push_str(&format!(
                "| `{}` | {} ({}) | `{}` | {} | {} | {} | {} | {} |\n",
                m.name,
                m.kind.as_str(),
                m.value_type.as_str(),
                m.unit,
                code_list(m.attributes),
                m.by_default.as_str(),
                m.naming.as_str(),
                escape(m.source),
                escape(m.description),
            ));
        }
    }
    out
}

fn json() -> String {
    let list: Vec<serde_json::Value> = CATALOG
        .iter()
        .flat_map(|c| {
            c.metrics.iter().map(move |m| {
                serde_json::json!({
                    "collector": c.collector,
                    "name": m.name,
                    "instrument": m.kind.as_str(),
                    "value_type": m.value_type.as_str(),
                    "unit": m.unit,
                    "description": m.description,
                    "attributes": m.attributes,
                    "source": m.source,
                    "default": m.by_default.as_str(),
                    "naming": m.naming.as_str(),
                })
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&list).expect("JSON of strings");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::instruments::{InstrumentKind, ValueType};
    use crate::collectors::{Collector, TickClock};
    use crate::pipeline::meter::MeterProvider;
    use crate::procfs::fixture_paths;
    use opentelemetry::metrics::{self as api, AsyncInstrumentBuilder, InstrumentProvider, Meter, MeterProvider as _};
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use std::sync::{Arc, Mutex};

    /// What a collector asked the meter for at registration: name, kind, value type, unit,
    /// description.
    type Registered = (String, InstrumentKind, ValueType, String, String);

    /// An `InstrumentProvider` that records every instrument built on it.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Registered>>);

    impl Recorder {
        fn push<I, M>(&self, b: &AsyncInstrumentBuilder<'_, I, M>, kind: InstrumentKind, value_type: ValueType) {
            let text = |c: &Option<std::borrow::Cow<'static, str>>| c.as_deref().unwrap_or_default().to_string();
            self.0.lock().unwrap().push((b.name.to_string(), kind, value_type, text(&b.unit), text(&b.description)));
        }
    }

    impl InstrumentProvider for Recorder {
        fn u64_observable_counter(&self, b: AsyncInstrumentBuilder<'_, api::ObservableCounter<u64>, u64>) -> api::ObservableCounter<u64> {
            self.push(&b, InstrumentKind::Counter, ValueType::U64);
            api::ObservableCounter::new()
        }
        fn f64_observable_counter(&self, b: AsyncInstrumentBuilder<'_, api::ObservableCounter<f64>, f64>) -> api::ObservableCounter<f64> {
            self.push(&b, InstrumentKind::Counter, ValueType::F64);
            api::ObservableCounter::new()
        }
        fn i64_observable_up_down_counter(&self, b: AsyncInstrumentBuilder<'_, api::ObservableUpDownCounter<i64>, i64>) -> api::ObservableUpDownCounter<i64> {
            self.push(&b, InstrumentKind::UpDownCounter, ValueType::I64);
            api::ObservableUpDownCounter::new()
        }
        fn f64_observable_up_down_counter(&self, b: AsyncInstrumentBuilder<'_, api::ObservableUpDownCounter<f64>, f64>) -> api::ObservableUpDownCounter<f64> {
            self.push(&b, InstrumentKind::UpDownCounter, ValueType::F64);
            api::ObservableUpDownCounter::new()
        }
        fn u64_observable_gauge(&self, b: AsyncInstrumentBuilder<'_, api::ObservableGauge<u64>, u64>) -> api::ObservableGauge<u64> {
            self.push(&b, InstrumentKind::Gauge, ValueType::U64);
            api::ObservableGauge::new()
        }
        fn i64_observable_gauge(&self, b: AsyncInstrumentBuilder<'_, api::ObservableGauge<i64>, i64>) -> api::ObservableGauge<i64> {
            self.push(&b, InstrumentKind::Gauge, ValueType::I64);
            api::ObservableGauge::new()
        }
        fn f64_observable_gauge(&self, b: AsyncInstrumentBuilder<'_, api::ObservableGauge<f64>, f64>) -> api::ObservableGauge<f64> {
            self.push(&b, InstrumentKind::Gauge, ValueType::F64);
            api::ObservableGauge::new()
        }
    }

    struct NoStatus;

    impl crate::status::StatusSource for NoStatus {
        fn collector_statuses(&self) -> Vec<(String, crate::status::CollectorStatus)> {
            Vec::new()
        }
        fn exporter_statuses(&self) -> Vec<crate::status::ExporterStatus> {
            Vec::new()
        }
    }

    /// Every collector, each enabled with the options that register the most instruments,
    /// on the 6.18 VM's fixture tree.
    fn every_collector(clock: &TickClock) -> Vec<Box<dyn Collector>> {
        let mut config = crate::collectors::CollectorConfig::default();
        config.process.enabled = Some(true);
        config.gpu.enabled = Some(true);
        config.cgroup.enabled = Some(true);
        config.textfile.directory = Some("/nonexistent".into());
        config.pressure.enabled = Some(true);
        let mut v = crate::collectors::build(&config, &fixture_paths("linux-6.18-vm"), clock);
        // Never built beside the cgroup collector (it replaces it), so made here.
        let containers = crate::collectors::containers::ContainersConfig { enabled: Some(true), ..Default::default() };
        v.push(Box::new(crate::collectors::containers::ContainersCollector::new(&fixture_paths("linux-6.18-vm"), clock, &containers, |_| None)));
        v.push(Box::new(crate::collectors::self_telemetry::SelfTelemetryCollector::new(Arc::new(NoStatus), clock)));
        v
    }

    #[test]
    fn every_registered_instrument_appears_in_the_catalog_once_with_its_unit_and_kind() {
        let clock = TickClock::default();
        let mut collectors = every_collector(&clock);
        assert_eq!(collectors.len(), CATALOG.len(), "one catalog entry per collector");
        for c in &mut collectors {
            let recorder = Arc::new(Recorder::default());
            c.register(&Meter::new(recorder.clone()));
            let registered = recorder.0.lock().unwrap().clone();
            let entry = CATALOG.iter().find(|e| e.collector == c.name()).unwrap_or_else(|| panic!("{} is not in the catalog", c.name()));
            let listed: Vec<Registered> =
                entry.metrics.iter().map(|m| (m.name.to_string(), m.kind, m.value_type, m.unit.to_string(), m.description.to_string())).collect();
            assert_eq!(registered, listed, "{}: what is registered, in order, is what the catalog lists", c.name());
        }
        // A name is listed once per collector; the hardware conventions' names (`hw.temperature`,
        // `hw.power`, `hw.energy`) may come from several collectors (GPUs, hwmon), with one
        // instrument kind, value type and unit.
        let mut names: Vec<(&str, &str)> = CATALOG.iter().flat_map(|c| c.metrics.iter().map(|m| (m.name, c.collector))).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "every metric is listed once per collector");
        for m in CATALOG.iter().flat_map(|c| c.metrics) {
            for other in CATALOG.iter().flat_map(|c| c.metrics).filter(|o| o.name == m.name) {
                assert_eq!((m.kind, m.value_type, m.unit), (other.kind, other.value_type, other.unit), "{} is one instrument wherever it comes from", m.name);
            }
        }
        for m in containers::METRICS.iter().filter(|m| m.name.starts_with("container.") && m.name != "container.linux.pressure.time") {
            let g = cgroup::METRICS.iter().find(|g| g.name == m.name).unwrap_or_else(|| panic!("{} is the cgroup collector's", m.name));
            assert_eq!(
                (g.kind, g.value_type, g.unit, g.description, g.attributes, g.naming),
                (m.kind, m.value_type, m.unit, m.description, m.attributes, m.naming),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn a_name_not_in_the_conventions_says_so_with_its_prefix_or_names_the_receiver_it_comes_from() {
        let bad: Vec<&str> = CATALOG.iter().flat_map(|c| c.metrics).filter(|m| !m.naming.allows(m.name)).map(|m| m.name).collect();
        assert!(bad.is_empty(), "metricsd's own names without metricsd./nvidia./.linux.: {bad:?}");
    }

    #[test]
    fn what_the_agents_meter_provider_collects_on_a_fixture_tree_has_the_catalogs_unit_and_kind() {
        let clock = TickClock::default();
        let mut collectors = every_collector(&clock);
        let provider = MeterProvider::new();
        for c in &mut collectors {
            c.register(&provider.meter("metricsd"));
        }
        clock.advance();
        for c in &mut collectors {
            let _ = c.refresh();
        }
        let mut seen = 0;
        for sm in provider.collect(std::time::SystemTime::now()) {
            for m in sm.metrics {
                let spec = CATALOG.iter().flat_map(|c| c.metrics).find(|s| s.name == m.name).unwrap_or_else(|| panic!("{} is not in the catalog", m.name));
                let kind = match m.data {
                    Some(Data::Gauge(_)) => InstrumentKind::Gauge,
                    Some(Data::Sum(s)) if s.is_monotonic => InstrumentKind::Counter,
                    Some(Data::Sum(_)) => InstrumentKind::UpDownCounter,
                    other => panic!("{}: {other:?}", m.name),
                };
                assert_eq!((m.unit.as_str(), kind), (spec.unit, spec.kind), "{}", m.name);
                seen += 1;
            }
        }
        assert!(seen >= 30, "the fixture tree reports most host metrics ({seen})");
    }

    #[test]
    fn agent_names_and_only_they_carry_the_agents_prefixes() {
        for m in CATALOG.iter().flat_map(|c| c.metrics) {
            if m.name.starts_with("metricsd.") || m.name.starts_with("nvidia.") {
                assert_eq!(m.naming, crate::collectors::instruments::Naming::Agent, "{}", m.name);
            }
            assert!(!m.source.is_empty() && !m.description.is_empty(), "{} says where it comes from and what it is", m.name);
        }
    }

    #[test]
    fn the_table_lists_every_metric_under_a_header_with_its_unit_and_default() {
        let t = render(Format::Table);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("COLLECTOR") && lines[0].ends_with("SOURCE"));
        assert_eq!(lines.len(), 1 + CATALOG.iter().map(|c| c.metrics.len()).sum::<usize>());
        let usage = lines.iter().find(|l| l.contains("system.memory.usage")).unwrap();
        let cells: Vec<&str> = usage.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(&cells[..6], ["memory", "system.memory.usage", "UpDownCounter (i64)", "By", "on", "system.memory.state"]);
        // Columns line up: every name starts where the header's NAME does.
        let at = lines[0].find("NAME").unwrap();
        assert!(lines.iter().skip(1).all(|l| l.chars().nth(at - 1) == Some(' ') && l.chars().nth(at) != Some(' ')));
    }

    #[test]
    fn markdown_has_a_section_per_collector_and_a_row_per_metric() {
        let md = render(Format::Markdown);
        assert!(md.starts_with("# Metrics\n"));
        for c in CATALOG {
            assert!(md.contains(&format!("\n## {} (`collector.{}`)\n", c.collector, c.collector)));
        }
        assert!(md.contains("| `system.cpu.time` | Counter (f64) | `s` | `cpu.mode`, `cpu.logical_number` | on | semconv |"), "{md}");
        assert!(md.contains("| `process.cpu.time` | Counter (f64) | `s` |"));
        assert_eq!(md.lines().filter(|l| l.starts_with("| `")).count(), CATALOG.iter().map(|c| c.metrics.len()).sum::<usize>());
    }

    #[test]
    fn json_is_one_array_with_every_field_of_every_metric() {
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), CATALOG.iter().map(|c| c.metrics.len()).sum::<usize>());
        let gpu = list.iter().find(|m| m["name"] == "hw.power").unwrap();
        assert_eq!(gpu["collector"], "gpu");
        assert_eq!(gpu["instrument"], "Gauge");
        assert_eq!(gpu["value_type"], "f64");
        assert_eq!(gpu["unit"], "W");
        assert_eq!(gpu["default"], "off");
        assert_eq!(gpu["naming"], "semconv");
        assert!(gpu["attributes"].as_array().unwrap().contains(&serde_json::json!("hw.id")));
        assert!(gpu["source"].as_str().unwrap().contains("nvmlDeviceGetPowerUsage"));
    }

    #[test]
    fn formats_parse_from_their_names() {
        assert_eq!("table".parse::<Format>(), Ok(Format::Table));
        assert_eq!("markdown".parse::<Format>(), Ok(Format::Markdown));
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert!("yaml".parse::<Format>().unwrap_err().contains("yaml"));
    }
}
