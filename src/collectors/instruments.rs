//! A metric described once as data, and registered from that description: every collector's
//! instruments are [`Metric`] constants, and the catalog (`metricsd --list-metrics`,
//! docs/metrics.md) lists the same constants, so what is documented is what is registered.
//!
//! ```ignore
//! const USAGE: Metric<i64> = Metric::i64_up_down_counter("system.memory.usage", "By", "Reports memory in use by state")
//!     .attributes(&["system.memory.state"])
//!     .source("/proc/meminfo; used = MemTotal − MemAvailable");
//!
//! USAGE.register(meter, move |obs| snap.with(|m| obs.observe(used(m), &attrs)));
//! ```
//!
//! The constructors are named as the API's builders (`u64_counter` for `u64_observable_counter`):
//! the value type is part of the constant's type, and only the instruments the OpenTelemetry
//! API has can be described (no `u64` up-down counter, no `i64` counter). Registration runs
//! once at start; the callback is handed to the API's builder as it is, so observing costs
//! what it did before.

use opentelemetry::metrics::{AsyncInstrument, Meter};
use std::marker::PhantomData;

/// What kind of instrument a metric is (all are asynchronous: observed at collect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstrumentKind {
    /// A monotonic sum (`ObservableCounter`).
    Counter,
    /// A sum that may go down (`ObservableUpDownCounter`).
    UpDownCounter,
    /// A value at the time of the collect (`ObservableGauge`).
    Gauge,
}

impl InstrumentKind {
    /// The name the semantic conventions use (`Counter`, `UpDownCounter`, `Gauge`).
    pub fn as_str(self) -> &'static str {
        match self {
            InstrumentKind::Counter => "Counter",
            InstrumentKind::UpDownCounter => "UpDownCounter",
            InstrumentKind::Gauge => "Gauge",
        }
    }
}

/// The number type an instrument observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U64,
    I64,
    F64,
}

impl ValueType {
    /// `u64`, `i64` or `f64`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        }
    }
}

/// Whether a metric is reported with the default configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByDefault {
    On,
    Off,
    /// On only where the condition holds (`"in a container"`).
    When(&'static str),
}

impl ByDefault {
    /// `on`, `off`, or the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            ByDefault::On => "on",
            ByDefault::Off => "off",
            ByDefault::When(c) => c,
        }
    }
}

/// Where a metric's name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// A name the OpenTelemetry semantic conventions define.
    SemConv,
    /// metricsd's own name, not in the semantic conventions: it says so with its prefix
    /// (`metricsd.*`, `nvidia.*`) or a `.linux.` part (`system.linux.*`, `container.linux.*`).
    Agent,
    /// A name an OpenTelemetry Collector receiver reports (named here), not in the semantic
    /// conventions: kept so that the same data has the same name as beside the Collector.
    Receiver(&'static str),
}

impl Naming {
    /// `semconv`, `metricsd`, or the receiver whose name it is (`hostmetrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            Naming::SemConv => "semconv",
            Naming::Agent => "metricsd",
            Naming::Receiver(r) => r,
        }
    }

    /// Whether `name` may be named so: an agent name must say it is not a convention's.
    pub fn allows(self, name: &str) -> bool {
        match self {
            Naming::Agent => name.starts_with("metricsd.") || name.starts_with("nvidia.") || name.contains(".linux."),
            Naming::SemConv | Naming::Receiver(_) => true,
        }
    }
}

/// Everything the catalog says about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    /// The OpenTelemetry name (`system.memory.usage`).
    pub name: &'static str,
    pub kind: InstrumentKind,
    pub value_type: ValueType,
    /// The UCUM unit (`By`, `s`, `1`, `{packet}`).
    pub unit: &'static str,
    pub description: &'static str,
    /// The attribute keys its points carry (besides the resource's).
    pub attributes: &'static [&'static str],
    /// What it is read from: the /proc or /sys file, the system call, the NVML call.
    pub source: &'static str,
    pub by_default: ByDefault,
    pub naming: Naming,
}

/// A metric whose callbacks observe `T` (`u64`, `i64` or `f64`): a [`MetricSpec`] that can
/// only describe an instrument the OpenTelemetry API has for `T`.
#[derive(Debug)]
pub struct Metric<T> {
    spec: MetricSpec,
    _value: PhantomData<fn(T)>,
}

impl<T> Clone for Metric<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Metric<T> {}

const fn new<T>(name: &'static str, kind: InstrumentKind, value_type: ValueType, unit: &'static str, description: &'static str) -> Metric<T> {
    Metric {
        spec: MetricSpec { name, kind, value_type, unit, description, attributes: &[], source: "", by_default: ByDefault::On, naming: Naming::SemConv },
        _value: PhantomData,
    }
}

impl Metric<u64> {
    pub const fn u64_counter(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::Counter, ValueType::U64, unit, description)
    }
    pub const fn u64_gauge(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::Gauge, ValueType::U64, unit, description)
    }
}

impl Metric<i64> {
    pub const fn i64_up_down_counter(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::UpDownCounter, ValueType::I64, unit, description)
    }
    pub const fn i64_gauge(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::Gauge, ValueType::I64, unit, description)
    }
}

impl Metric<f64> {
    pub const fn f64_counter(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::Counter, ValueType::F64, unit, description)
    }
    pub const fn f64_up_down_counter(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::UpDownCounter, ValueType::F64, unit, description)
    }
    pub const fn f64_gauge(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        new(name, InstrumentKind::Gauge, ValueType::F64, unit, description)
    }
}

impl<T> Metric<T> {
    /// The attribute keys of its points.
    pub const fn attributes(mut self, keys: &'static [&'static str]) -> Self {
        self.spec.attributes = keys;
        self
    }

    /// What it is read from.
    pub const fn source(mut self, source: &'static str) -> Self {
        self.spec.source = source;
        self
    }

    /// Whether the default configuration reports it (default [`ByDefault::On`]).
    pub const fn by_default(mut self, by_default: ByDefault) -> Self {
        self.spec.by_default = by_default;
        self
    }

    /// Marks the name as metricsd's own, not one of the semantic conventions.
    pub const fn agent_name(mut self) -> Self {
        self.spec.naming = Naming::Agent;
        self
    }

    /// Marks the name as one an OpenTelemetry Collector receiver (`receiver`) reports, not in
    /// the semantic conventions.
    pub const fn receiver_name(mut self, receiver: &'static str) -> Self {
        self.spec.naming = Naming::Receiver(receiver);
        self
    }

    /// The description, for the catalog.
    pub const fn spec(&self) -> MetricSpec {
        self.spec
    }
}

impl<T: Measure> Metric<T> {
    /// Registers the instrument on `meter` with its name, unit and description, observed by
    /// `callback` at every collect.
    pub fn register(&self, meter: &Meter, callback: impl Fn(&dyn AsyncInstrument<T>) + Send + Sync + 'static) {
        T::build(meter, &self.spec, callback);
    }
}

/// A value type the OpenTelemetry API has observable instruments for.
pub trait Measure: Sized + 'static {
    /// Builds the instrument `spec` describes (its kind is one the constructors of
    /// [`Metric<Self>`] allow).
    fn build(meter: &Meter, spec: &MetricSpec, callback: impl Fn(&dyn AsyncInstrument<Self>) + Send + Sync + 'static);
}

impl Measure for u64 {
    fn build(meter: &Meter, s: &MetricSpec, callback: impl Fn(&dyn AsyncInstrument<u64>) + Send + Sync + 'static) {
        match s.kind {
            InstrumentKind::Counter => {
                meter.u64_observable_counter(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
            InstrumentKind::Gauge => {
                meter.u64_observable_gauge(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
            InstrumentKind::UpDownCounter => unreachable!("Metric<u64> has no up-down counter constructor"),
        }
    }
}

impl Measure for i64 {
    fn build(meter: &Meter, s: &MetricSpec, callback: impl Fn(&dyn AsyncInstrument<i64>) + Send + Sync + 'static) {
        match s.kind {
            InstrumentKind::UpDownCounter => {
                meter.i64_observable_up_down_counter(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
            InstrumentKind::Gauge => {
                meter.i64_observable_gauge(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
            InstrumentKind::Counter => unreachable!("Metric<i64> has no counter constructor"),
        }
    }
}

impl Measure for f64 {
    fn build(meter: &Meter, s: &MetricSpec, callback: impl Fn(&dyn AsyncInstrument<f64>) + Send + Sync + 'static) {
        match s.kind {
            InstrumentKind::Counter => {
                meter.f64_observable_counter(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
            InstrumentKind::UpDownCounter => {
                meter.f64_observable_up_down_counter(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
            InstrumentKind::Gauge => {
                meter.f64_observable_gauge(s.name).with_unit(s.unit).with_description(s.description).with_callback(callback).build();
            }
        }
    }
}
