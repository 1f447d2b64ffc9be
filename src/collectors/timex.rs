//! The timex collector: the kernel clock's synchronization state from `adjtimex(2)` (a read,
//! no privilege), as node_exporter's `timex` collector: the offset being corrected, the
//! frequency adjustment, the maximum and estimated errors, the status bits, whether the clock is
//! synchronized, and the TAI offset.
//!
//! ```text
//! adjtimex → 0 (TIME_OK); offset 1500000 ns, freq 655360, maxerror 16000 µs, status 0x2001
//! ```
//!
//! Alert on `system.linux.time.synchronized == 0` (no NTP/PTP daemon has disciplined the clock,
//! or its maximum error passed 16 s). The call reads the running kernel's clock, which a
//! container shares with its host, so `HostPaths` do not apply. Where a seccomp policy refuses
//! the call, the collector reports nothing and logs that once at debug level. The names are
//! metricsd's (`system.linux.time.*`).

use super::instruments::{Metric, MetricSpec};
use super::optional::Presence;
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::timex::{self, Timex};
use opentelemetry::metrics::Meter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.timex`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimexConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Where the state comes from: the kernel, or a test's fixed answer.
type Read = Box<dyn FnMut() -> std::io::Result<Timex> + Send>;

/// Asks the kernel every tick.
pub struct TimexCollector {
    read: Read,
    presence: Presence,
    snap: Arc<SnapshotCell<Timex>>,
}

impl TimexCollector {
    /// A collector asking this kernel.
    pub fn new(clock: &TickClock) -> Self {
        Self::with_reader(clock, Box::new(timex::read))
    }

    fn with_reader(clock: &TickClock, read: Read) -> Self {
        TimexCollector { read, presence: Presence::new("timex"), snap: SnapshotCell::new(clock) }
    }
}

const SOURCE: &str = "adjtimex(2), modes 0";
const OFFSET: Metric<f64> =
    Metric::f64_gauge("system.linux.time.offset", "s", "Time offset the kernel is correcting (timex offset)").source(SOURCE).agent_name();
const FREQUENCY: Metric<f64> =
    Metric::f64_gauge("system.linux.time.frequency_adjustment", "1", "Clock frequency adjustment as a ratio: 1 + freq ÷ 2^16 ÷ 10^6")
        .source(SOURCE)
        .agent_name();
const MAX_ERROR: Metric<f64> = Metric::f64_gauge("system.linux.time.max_error", "s", "Maximum error of the clock (timex maxerror)").source(SOURCE).agent_name();
const ESTIMATED_ERROR: Metric<f64> =
    Metric::f64_gauge("system.linux.time.estimated_error", "s", "Estimated error of the clock (timex esterror)").source(SOURCE).agent_name();
const SYNCHRONIZED: Metric<i64> =
    Metric::i64_gauge("system.linux.time.synchronized", "{status}", "1 when the clock is synchronized (adjtimex does not return TIME_ERROR), else 0")
        .source(SOURCE)
        .agent_name();
const STATUS: Metric<i64> =
    Metric::i64_gauge("system.linux.time.status", "{status}", "The clock status bits (STA_*, timex status)").source(SOURCE).agent_name();
const TAI_OFFSET: Metric<i64> =
    Metric::i64_gauge("system.linux.time.tai_offset", "s", "TAI − UTC offset known to the kernel (timex tai)").source(SOURCE).agent_name();

/// The timex collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] =
    &[OFFSET.spec(), FREQUENCY.spec(), MAX_ERROR.spec(), ESTIMATED_ERROR.spec(), SYNCHRONIZED.spec(), STATUS.spec(), TAI_OFFSET.spec()];

impl Collector for TimexCollector {
    fn name(&self) -> &'static str {
        "timex"
    }

    fn register(&mut self, meter: &Meter) {
        type F = fn(&Timex) -> f64;
        for (metric, pick) in
            [(OFFSET, (|t: &Timex| t.offset) as F), (FREQUENCY, |t| t.frequency_ratio), (MAX_ERROR, |t| t.max_error), (ESTIMATED_ERROR, |t| t.estimated_error)]
        {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|t| obs.observe(pick(t), &[]));
            });
        }
        type I = fn(&Timex) -> i64;
        for (metric, pick) in [(SYNCHRONIZED, (|t: &Timex| i64::from(t.synchronized)) as I), (STATUS, |t| t.status), (TAI_OFFSET, |t| t.tai_offset)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|t| obs.observe(pick(t), &[]));
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        if !self.presence.due() {
            return Ok(());
        }
        match (self.read)() {
            Ok(t) => {
                self.presence.present();
                self.snap.set(t);
                Ok(())
            }
            // Refused by a seccomp policy or not implemented (gVisor): not this host's to give.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS | libc::EACCES)) => {
                self.presence.absent(&format_args!("adjtimex(2): {e}"));
                Ok(())
            }
            Err(e) => Err(CollectorError::Other { what: "adjtimex(2)".into(), msg: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, value, Harness};

    #[test]
    fn reports_the_clock_state_the_kernel_gives() {
        let clock = TickClock::default();
        let fixed = timex::from_raw(0, 1_500_000, 655_360, 16_000, 500, 0x2001, 37);
        let mut c = TimexCollector::with_reader(&clock, Box::new(move || Ok(fixed)));
        let p = collect_once(&clock, &mut c);
        assert_eq!(value(&p, "system.linux.time.offset", &[]), Some(0.0015));
        assert_eq!(value(&p, "system.linux.time.max_error", &[]), Some(0.016));
        assert_eq!(value(&p, "system.linux.time.synchronized", &[]), Some(1.0));
        assert_eq!(value(&p, "system.linux.time.status", &[]), Some(8193.0));
        assert_eq!(value(&p, "system.linux.time.tai_offset", &[]), Some(37.0));
    }

    #[test]
    fn a_refused_call_reports_nothing_without_failing_and_other_errors_fail() {
        let clock = TickClock::default();
        let mut c = TimexCollector::with_reader(&clock, Box::new(|| Err(std::io::Error::from_raw_os_error(libc::EPERM))));
        let mut h = Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).unwrap().is_empty());
        let mut c = TimexCollector::with_reader(&clock, Box::new(|| Err(std::io::Error::from_raw_os_error(libc::EINVAL))));
        let mut h = Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).is_err());
    }

    #[test]
    fn this_hosts_clock_is_reported() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut TimexCollector::new(&clock));
        let sync = value(&p, "system.linux.time.synchronized", &[]).expect("adjtimex answers here");
        assert!(sync == 0.0 || sync == 1.0);
    }
}
