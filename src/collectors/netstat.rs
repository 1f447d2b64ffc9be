//! The netstat collector: TCP and UDP protocol counters (retransmits, resets, listen queue
//! overflows and drops, SYN cookies, UDP errors) from `/proc/net/snmp`, `/proc/net/netstat`
//! and `/proc/net/snmp6`, as node_exporter's `netstat` collector reports them by default.
//!
//! ```text
//! Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
//! Tcp: 1 200 120000 -1 79124 78323 737 3204 1 920214 911616 762 0 3583 0
//! ```
//!
//! The semantic conventions have no names for these counters: they are metricsd's
//! `system.linux.network.{tcp,udp}.*`. The files of the host's network namespace are read
//! (`/proc/1/net/...` when `/proc` is remapped, as for `net/dev`). A counter the kernel does not
//! have (an older kernel; `snmp6` without IPv6) has no point.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::snmp::{CounterFiles, NetCounters, Udp};
use crate::units::HostPaths;
use opentelemetry::metrics::{AsyncInstrument, Meter};
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `collector.netstat`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetstatConfig {
    /// Run this collector (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
}

/// Reads the protocol counter files every tick, keeping them open.
pub struct NetstatCollector {
    files: CounterFiles,
    snap: Arc<SnapshotCell<NetCounters>>,
}

impl NetstatCollector {
    /// A collector reading `paths`' counter files.
    pub fn new(paths: &HostPaths, clock: &TickClock) -> Self {
        NetstatCollector { files: CounterFiles::new(paths), snap: SnapshotCell::new(clock) }
    }
}

const TCP_SEGMENTS: Metric<u64> = Metric::u64_counter("system.linux.network.tcp.segments", "{segment}", "TCP segments received (InSegs) and sent (OutSegs)")
    .attributes(&["network.io.direction"])
    .source("/proc/net/snmp Tcp InSegs, OutSegs")
    .agent_name();
const TCP_RETRANSMITS: Metric<u64> = Metric::u64_counter("system.linux.network.tcp.retransmits", "{segment}", "TCP segments retransmitted (RetransSegs)")
    .source("/proc/net/snmp Tcp RetransSegs")
    .agent_name();
const TCP_RESETS: Metric<u64> = Metric::u64_counter("system.linux.network.tcp.resets", "{segment}", "TCP segments sent with the RST flag (OutRsts)")
    .source("/proc/net/snmp Tcp OutRsts")
    .agent_name();
const TCP_ERRORS: Metric<u64> =
    Metric::u64_counter("system.linux.network.tcp.errors", "{segment}", "TCP segments received in error, such as a bad checksum (InErrs)")
        .source("/proc/net/snmp Tcp InErrs")
        .agent_name();
const TCP_OPENS: Metric<u64> = Metric::u64_counter(
    "system.linux.network.tcp.opens",
    "{connection}",
    "TCP connections opened: active (connect, ActiveOpens), passive (accept, PassiveOpens)",
)
.attributes(&["system.linux.network.tcp.open.type"])
.source("/proc/net/snmp Tcp ActiveOpens, PassiveOpens")
.agent_name();
const TCP_LISTEN_OVERFLOWS: Metric<u64> = Metric::u64_counter(
    "system.linux.network.tcp.listen.overflows",
    "{connection}",
    "Connections dropped because a listening socket's accept queue was full (ListenOverflows)",
)
.source("/proc/net/netstat TcpExt ListenOverflows")
.agent_name();
const TCP_LISTEN_DROPS: Metric<u64> = Metric::u64_counter(
    "system.linux.network.tcp.listen.drops",
    "{connection}",
    "SYNs to listening sockets dropped for any reason, overflows included (ListenDrops)",
)
.source("/proc/net/netstat TcpExt ListenDrops")
.agent_name();
const TCP_SYNCOOKIES: Metric<u64> =
    Metric::u64_counter("system.linux.network.tcp.syncookies", "{cookie}", "SYN cookies sent, received valid, and received invalid")
        .attributes(&["system.linux.network.tcp.syncookie.state"])
        .source("/proc/net/netstat TcpExt SyncookiesSent, SyncookiesRecv, SyncookiesFailed")
        .agent_name();
const TCP_TIMEOUTS: Metric<u64> = Metric::u64_counter("system.linux.network.tcp.timeouts", "{event}", "TCP retransmission timeouts (TCPTimeouts)")
    .source("/proc/net/netstat TcpExt TCPTimeouts")
    .agent_name();
const TCP_SYN_RETRANSMITS: Metric<u64> =
    Metric::u64_counter("system.linux.network.tcp.syn_retransmits", "{segment}", "SYN and SYN-ACK retransmissions (TCPSynRetrans)")
        .source("/proc/net/netstat TcpExt TCPSynRetrans")
        .agent_name();
const UDP_DATAGRAMS: Metric<u64> =
    Metric::u64_counter("system.linux.network.udp.datagrams", "{datagram}", "UDP datagrams delivered (InDatagrams) and sent (OutDatagrams)")
        .attributes(&["network.type", "network.io.direction"])
        .source("/proc/net/snmp Udp, /proc/net/snmp6 Udp6: InDatagrams, OutDatagrams")
        .agent_name();
const UDP_ERRORS: Metric<u64> = Metric::u64_counter(
    "system.linux.network.udp.errors",
    "{datagram}",
    "UDP errors: no_port (NoPorts), receive (InErrors, which includes receive_buffer), receive_buffer (RcvbufErrors), send_buffer (SndbufErrors)",
)
.attributes(&["network.type", "error.type"])
.source("/proc/net/snmp Udp, /proc/net/snmp6 Udp6: NoPorts, InErrors, RcvbufErrors, SndbufErrors")
.agent_name();

/// The netstat collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[
    TCP_SEGMENTS.spec(),
    TCP_RETRANSMITS.spec(),
    TCP_RESETS.spec(),
    TCP_ERRORS.spec(),
    TCP_OPENS.spec(),
    TCP_LISTEN_OVERFLOWS.spec(),
    TCP_LISTEN_DROPS.spec(),
    TCP_SYNCOOKIES.spec(),
    TCP_TIMEOUTS.spec(),
    TCP_SYN_RETRANSMITS.spec(),
    UDP_DATAGRAMS.spec(),
    UDP_ERRORS.spec(),
];

type Pick = fn(&NetCounters) -> Option<u64>;

/// Registers `metric` with one point per `(attributes, counter)`.
fn register(meter: &Meter, snap: &Arc<SnapshotCell<NetCounters>>, metric: Metric<u64>, points: Vec<(Vec<KeyValue>, Pick)>) {
    let snap = snap.clone();
    metric.register(meter, move |obs: &dyn AsyncInstrument<u64>| {
        snap.with(|c| {
            for (attrs, pick) in &points {
                if let Some(v) = pick(c) {
                    obs.observe(v, attrs);
                }
            }
        });
    });
}

fn kv(k: &'static str, v: &'static str) -> KeyValue {
    KeyValue::new(k, v)
}

impl Collector for NetstatCollector {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn register(&mut self, meter: &Meter) {
        let s = &self.snap;
        let dir = "network.io.direction";
        register(meter, s, TCP_SEGMENTS, vec![(vec![kv(dir, "receive")], |c| c.tcp_in_segs), (vec![kv(dir, "transmit")], |c| c.tcp_out_segs)]);
        register(meter, s, TCP_RETRANSMITS, vec![(vec![], |c| c.tcp_retrans_segs)]);
        register(meter, s, TCP_RESETS, vec![(vec![], |c| c.tcp_out_rsts)]);
        register(meter, s, TCP_ERRORS, vec![(vec![], |c| c.tcp_in_errs)]);
        let open = "system.linux.network.tcp.open.type";
        register(meter, s, TCP_OPENS, vec![(vec![kv(open, "active")], |c| c.tcp_active_opens), (vec![kv(open, "passive")], |c| c.tcp_passive_opens)]);
        register(meter, s, TCP_LISTEN_OVERFLOWS, vec![(vec![], |c| c.tcpext_listen_overflows)]);
        register(meter, s, TCP_LISTEN_DROPS, vec![(vec![], |c| c.tcpext_listen_drops)]);
        let st = "system.linux.network.tcp.syncookie.state";
        register(
            meter,
            s,
            TCP_SYNCOOKIES,
            vec![
                (vec![kv(st, "sent")], |c| c.tcpext_syncookies_sent),
                (vec![kv(st, "received")], |c| c.tcpext_syncookies_recv),
                (vec![kv(st, "failed")], |c| c.tcpext_syncookies_failed),
            ],
        );
        register(meter, s, TCP_TIMEOUTS, vec![(vec![], |c| c.tcpext_tcp_timeouts)]);
        register(meter, s, TCP_SYN_RETRANSMITS, vec![(vec![], |c| c.tcpext_tcp_syn_retrans)]);
        type UdpPick = fn(&Udp) -> Option<u64>;
        let both = |attrs: &[(&'static str, &'static str)]| -> [Vec<KeyValue>; 2] {
            let with = |ty: &'static str| std::iter::once(kv("network.type", ty)).chain(attrs.iter().map(|(k, v)| kv(k, v))).collect();
            [with("ipv4"), with("ipv6")]
        };
        let mut datagrams = Vec::new();
        for (d, pick) in [("receive", (|u: &Udp| u.in_datagrams) as UdpPick), ("transmit", |u| u.out_datagrams)] {
            let [v4, v6] = both(&[(dir, d)]);
            datagrams.push((v4, pick, false));
            datagrams.push((v6, pick, true));
        }
        let mut errors = Vec::new();
        for (e, pick) in [
            ("no_port", (|u: &Udp| u.no_ports) as UdpPick),
            ("receive", |u| u.in_errors),
            ("receive_buffer", |u| u.rcvbuf_errors),
            ("send_buffer", |u| u.sndbuf_errors),
        ] {
            let [v4, v6] = both(&[("error.type", e)]);
            errors.push((v4, pick, false));
            errors.push((v6, pick, true));
        }
        for (metric, points) in [(UDP_DATAGRAMS, datagrams), (UDP_ERRORS, errors)] {
            let snap = s.clone();
            metric.register(meter, move |obs| {
                snap.with(|c| {
                    for (attrs, pick, v6) in &points {
                        if let Some(v) = pick(if *v6 { &c.udp6 } else { &c.udp }) {
                            obs.observe(v, attrs);
                        }
                    }
                });
            });
        }
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        let c = self.files.read()?;
        self.snap.set(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testutil::{collect_once, kind, of, value, Kind};
    use crate::procfs::fixture_paths;

    #[test]
    fn reports_the_tcp_and_udp_counters_of_a_6_18_capture() {
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut NetstatCollector::new(&fixture_paths("linux-6.18-vm"), &clock));
        // Tcp: 1 200 120000 -1 79135 78323 737 3204 2 925004 916264 763 0 3583 0
        assert_eq!(value(&p, "system.linux.network.tcp.retransmits", &[]), Some(763.0));
        assert_eq!(value(&p, "system.linux.network.tcp.resets", &[]), Some(3583.0));
        assert_eq!(value(&p, "system.linux.network.tcp.segments", &[("network.io.direction", "receive")]), Some(925004.0));
        assert_eq!(value(&p, "system.linux.network.tcp.segments", &[("network.io.direction", "transmit")]), Some(916264.0));
        assert_eq!(value(&p, "system.linux.network.tcp.opens", &[("system.linux.network.tcp.open.type", "passive")]), Some(78323.0));
        assert_eq!(value(&p, "system.linux.network.tcp.listen.overflows", &[]), Some(352.0));
        assert_eq!(value(&p, "system.linux.network.tcp.listen.drops", &[]), Some(352.0));
        assert_eq!(of(&p, "system.linux.network.tcp.syncookies").len(), 3);
        assert_eq!(kind(&p, "system.linux.network.tcp.retransmits"), Some(Kind::Counter));
        // Udp: 3246 0 0 3248 ...; and Udp6 from snmp6.
        assert_eq!(value(&p, "system.linux.network.udp.datagrams", &[("network.type", "ipv4"), ("network.io.direction", "receive")]), Some(3246.0));
        assert_eq!(value(&p, "system.linux.network.udp.datagrams", &[("network.type", "ipv4"), ("network.io.direction", "transmit")]), Some(3248.0));
        assert!(value(&p, "system.linux.network.udp.datagrams", &[("network.type", "ipv6"), ("network.io.direction", "receive")]).is_some());
        assert_eq!(of(&p, "system.linux.network.udp.errors").len(), 8, "4 errors × ipv4, ipv6");
    }

    #[test]
    fn without_snmp6_only_the_ipv6_points_are_missing() {
        let (dir, paths) = crate::collectors::testutil::fixture_copy("linux-6.18-vm");
        std::fs::remove_file(dir.path().join("proc/1/net/snmp6")).unwrap();
        let clock = TickClock::default();
        let p = collect_once(&clock, &mut NetstatCollector::new(&paths, &clock));
        assert_eq!(of(&p, "system.linux.network.udp.errors").len(), 4);
        assert!(p.iter().all(|p| !p.1.contains(&("network.type".into(), "ipv6".into()))));
    }

    #[test]
    fn a_missing_snmp_file_fails_the_refresh() {
        let clock = TickClock::default();
        let mut c = NetstatCollector::new(&fixture_paths("linux-2.6.32-old"), &clock);
        let mut h = crate::collectors::testutil::Harness::new(&clock, &mut c);
        assert!(h.tick(&mut c).is_err());
    }
}
