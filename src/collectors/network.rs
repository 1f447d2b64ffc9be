//! The network collector: per-interface counters from `/proc/net/dev` and socket counts from
//! `/proc/net/{tcp,tcp6,udp,udp6}`.
//!
//! ```text
//!  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop ...
//!   eth0: 104351346    4268    0    0    0     0          0         0   259128    2950    0    0 ...
//! ```
//!
//! **Interfaces.** `system.network.io` (bytes), `.packet.count`, `.errors` (the `errs`
//! columns) and `.packet.dropped` (the `drop` columns), by `network.interface.name` and
//! `network.io.direction` (`receive`, `transmit`), as `ip -s link` and `ifconfig` show them.
//! Every interface is reported by default, loopback included (as the hostmetrics receiver
//! does); `include` and `exclude` select by name (see [`NetworkConfig`]). Inside a container
//! with the host's `/proc` mounted, the host's interfaces are read from `/proc/1/net/dev` (see
//! [`netdev`]).
//!
//! **Counter resets.** The values are the kernel's, reported as they are: nothing is summed or
//! clamped in the agent. An interface that disappears (a container's veth, an unplugged USB
//! NIC) stops reporting at the next tick; when one of the same name comes back its counters
//! start again from where the kernel has them (usually 0), and a driver reset can also restart
//! them. Either way the series goes down once, which every cumulative consumer (Prometheus
//! `rate()`, the Collector's cumulativetodelta processor) reads as a counter reset, exactly
//! what happened; the series' start time stays the instrument's. Reporting the kernel's
//! value is also what keeps these numbers equal to `ip -s link`'s.
//!
//! **Connections.** `system.network.connection.count{network.transport, network.connection.state}`:
//! TCP sockets (IPv4 and IPv6) in each of the eleven states (zeros included; `syn_received`,
//! `fin_wait_1`, `fin_wait_2` and `closed` as the semantic conventions spell them), as
//! `ss -tan state <state>` counts them; and UDP sockets, which have no connection state,
//! counted once with `network.transport="udp"` and no state attribute. Sockets in states the
//! kernel added later (`BOUND_INACTIVE`, 6.5+) are not reported. Counting allocates nothing per
//! socket, so hosts with 100k sockets stay cheap; `connections: false` skips it entirely.
//! TCP sockets are counted with one netlink `sock_diag` dump, as `ss` does (one walk of the
//! kernel's socket hash for IPv4 and IPv6, no text: 2.2–2.8 ms against 10–11.5 ms for `tcp` + `tcp6`
//! on a 24 GiB VM), whenever the namespace reported is the agent's own (no `HOST_PROC`, or a
//! host `/proc` whose `1/ns/net` is the agent's namespace, as with `hostNetwork: true`);
//! otherwise, and where the kernel refuses the dump, from `/proc/net/tcp` and `tcp6`. UDP
//! sockets always come from `/proc/net/udp` and `udp6` (a small table, ~0.1 ms).
//!
//! **Each source fails alone.** `net/dev`, the TCP count and the UDP tables are read apart: a
//! missing `/proc/net/udp` leaves out the UDP count only, and the interfaces and TCP states
//! are still reported (see [`super::sources`]). Only when all of them fail does the collector
//! fail.

use super::instruments::{Metric, MetricSpec};
use super::{Collector, CollectorError, SnapshotCell, TickClock};
use crate::procfs::{netdev, netstat, ProcFile};
use crate::units::HostPaths;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// `collector.network`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Run this collector (default true; metricsd's `enable_network` also switches it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Interfaces to report, by exact name or a pattern where `*` matches any run of
    /// characters (`eth*`, `*.100`, `en*s0`). Empty (the default): every interface.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Interfaces not to report, in the same form; wins over `include` (default: none, so
    /// `lo` is reported; `["lo", "veth*"]` is a common choice on container hosts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Count TCP and UDP sockets (`system.network.connection.count`; default true).
    pub connections: bool,
    /// How often the sockets are counted again (default `"60s"`; `"0s"` = every tick).
    /// Counting costs time in proportion to the kernel's socket hash table, not to the
    /// sockets in it: on a 24 GiB host about 2–3 ms over netlink, 10 ms from `/proc/net/tcp*`
    /// (see the module docs), more than everything else a tick does. Between counts the last
    /// counts are reported.
    pub connections_interval: crate::units::ConfigDuration,
}

/// Default `connections_interval`.
pub const DEFAULT_CONNECTIONS_INTERVAL: crate::units::ConfigDuration = crate::units::ConfigDuration::secs(60);

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: None,
            metrics: Default::default(),
            include: Vec::new(),
            exclude: Vec::new(),
            connections: true,
            connections_interval: DEFAULT_CONNECTIONS_INTERVAL,
        }
    }
}

impl NetworkConfig {
    /// Whether the interface `name` is reported.
    pub fn accepts(&self, name: &str) -> bool {
        super::passes(&self.include, &self.exclude, name, || true)
    }
}

/// The attributes of one interface, built once: `[receive, transmit]`.
#[derive(Debug)]
struct IfAttrs([[KeyValue; 2]; 2]);

impl IfAttrs {
    fn new(name: &str) -> Self {
        IfAttrs(["receive", "transmit"].map(|d| [KeyValue::new("network.interface.name", Arc::<str>::from(name)), KeyValue::new("network.io.direction", d)]))
    }
}

/// What one tick read.
#[derive(Debug, Default)]
struct Snapshot {
    /// (attributes, receive, transmit) per interface, in file order.
    interfaces: Vec<(Arc<IfAttrs>, netdev::Counters, netdev::Counters)>,
    /// TCP sockets by state, when `connections` is on and they could be counted.
    tcp: Option<netstat::TcpCounts>,
    /// UDP sockets, likewise.
    udp: Option<u64>,
}

/// Reads `/proc/net/dev` (and the socket tables) every tick, keeping the files open.
pub struct NetworkCollector {
    config: NetworkConfig,
    dev: ProcFile,
    sockets: netstat::SocketFiles,
    snap: Arc<SnapshotCell<Snapshot>>,
    /// Attributes by interface name, with the refresh that last saw the interface.
    attrs: HashMap<String, (Arc<IfAttrs>, u64)>,
    generation: u64,
    /// The last socket counts (each `None` if its source failed) and when they were read.
    last_sockets: Option<(std::time::Instant, Option<netstat::TcpCounts>, Option<u64>)>,
    /// Which of `net/dev`, the TCP and the UDP tables fail (each fails alone).
    sources: super::sources::Sources,
}

impl NetworkCollector {
    /// A collector reading `paths`' net/dev and socket tables (the host's; see the module docs).
    pub fn new(paths: &HostPaths, clock: &TickClock, config: &NetworkConfig) -> Self {
        NetworkCollector {
            config: config.clone(),
            dev: ProcFile::new(netdev::path(paths)),
            sockets: netstat::SocketFiles::new(paths),
            snap: SnapshotCell::new(clock),
            attrs: HashMap::new(),
            last_sockets: None,
            generation: 0,
            sources: super::sources::Sources::new("network"),
        }
    }
}

type Pick = fn(&netdev::Counters) -> u64;

const NETWORK_IO: Metric<u64> = Metric::u64_counter("system.network.io", "By", "Bytes received and transmitted")
    .attributes(&["network.interface.name", "network.io.direction"])
    .source("/proc/net/dev (the host's: HOST_PROC/1/net/dev when remapped)");
const PACKET_COUNT: Metric<u64> = Metric::u64_counter("system.network.packet.count", "{packet}", "Packets received and transmitted")
    .attributes(&["network.interface.name", "network.io.direction"])
    .source("/proc/net/dev packets");
const ERRORS: Metric<u64> = Metric::u64_counter("system.network.errors", "{error}", "Receive and transmit errors")
    .attributes(&["network.interface.name", "network.io.direction"])
    .source("/proc/net/dev errs");
const PACKET_DROPPED: Metric<u64> = Metric::u64_counter("system.network.packet.dropped", "{packet}", "Packets dropped on receive and transmit")
    .attributes(&["network.interface.name", "network.io.direction"])
    .source("/proc/net/dev drop");
const CONNECTION_COUNT: Metric<i64> = Metric::i64_up_down_counter("system.network.connection.count", "{connection}", "TCP sockets by state and UDP sockets")
    .attributes(&["network.transport", "network.connection.state"])
    .source("netlink sock_diag (as ss) for TCP in the agent's own network namespace, else /proc/net/tcp, tcp6; /proc/net/udp, udp6; with connections (default true)");

/// The network collector's metrics, in registration order.
pub const METRICS: &[MetricSpec] = &[NETWORK_IO.spec(), PACKET_COUNT.spec(), ERRORS.spec(), PACKET_DROPPED.spec(), CONNECTION_COUNT.spec()];

impl Collector for NetworkCollector {
    fn name(&self) -> &'static str {
        "network"
    }

    fn register(&mut self, meter: &Meter) {
        for (metric, pick) in [(NETWORK_IO, (|c| c.bytes) as Pick), (PACKET_COUNT, |c| c.packets), (ERRORS, |c| c.errs), (PACKET_DROPPED, |c| c.drop)] {
            let snap = self.snap.clone();
            metric.register(meter, move |obs| {
                snap.with(|s| {
                    for (a, rx, tx) in &s.interfaces {
                        obs.observe(pick(rx), &a.0[0]);
                        obs.observe(pick(tx), &a.0[1]);
                    }
                });
            });
        }
        if !self.config.connections {
            return;
        }
        let tcp: Vec<(netstat::TcpState, [KeyValue; 2])> = netstat::TcpState::ALL
            .iter()
            .map(|&s| (s, [KeyValue::new("network.transport", "tcp"), KeyValue::new("network.connection.state", s.semconv())]))
            .collect();
        let udp = [KeyValue::new("network.transport", "udp")];
        let snap = self.snap.clone();
        CONNECTION_COUNT.register(meter, move |obs| {
            snap.with(|s| {
                if let Some(t) = &s.tcp {
                    for (state, a) in &tcp {
                        obs.observe(t.get(*state) as i64, a);
                    }
                }
                if let Some(u) = s.udp {
                    obs.observe(u as i64, &udp);
                }
            });
        });
    }

    fn refresh(&mut self) -> Result<(), CollectorError> {
        // Interfaces, TCP and UDP sockets are read apart: one failing leaves out only its own.
        self.sources.begin();
        let config = &self.config;
        let devs = self.sources.check("net/dev", netdev::read_file(&mut self.dev, |name| config.accepts(name))).unwrap_or_default();
        let (tcp, udp) = if self.config.connections {
            let due = match &self.last_sockets {
                Some((at, ..)) => at.elapsed() >= self.config.connections_interval.get(),
                None => true,
            };
            if due {
                let tcp = self.sources.check("tcp", self.sockets.tcp());
                let udp = self.sources.check("udp", self.sockets.udp());
                self.last_sockets = Some((std::time::Instant::now(), tcp, udp));
            }
            self.last_sockets.as_ref().map(|(_, t, u)| (*t, *u)).unwrap_or_default()
        } else {
            (None, None)
        };
        self.generation += 1;
        let generation = self.generation;
        let mut snap = self.snap.take().unwrap_or_default();
        snap.interfaces.clear();
        snap.tcp = tcp;
        snap.udp = udp;
        for d in devs {
            let a = match self.attrs.get_mut(&d.name) {
                Some((a, seen)) => {
                    *seen = generation;
                    a.clone()
                }
                None => {
                    let a = Arc::new(IfAttrs::new(&d.name));
                    self.attrs.insert(d.name, (a.clone(), generation));
                    a
                }
            };
            snap.interfaces.push((a, d.rx, d.tx));
        }
        // Forget interfaces that are gone.
        if self.attrs.len() > snap.interfaces.len() {
            self.attrs.retain(|_, (_, seen)| *seen == generation);
        }
        self.snap.set(snap);
        self.sources.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::glob_match;
    use crate::collectors::testutil::{fixture_copy, kind, of, value, write, Harness, Kind, Point};
    use crate::procfs::fixture_paths;

    fn get(p: &[Point], metric: &str, ifname: &str, dir: &str) -> Option<f64> {
        value(p, metric, &[("network.interface.name", ifname), ("network.io.direction", dir)])
    }

    fn interfaces(p: &[Point]) -> Vec<String> {
        let mut v: Vec<String> =
            of(p, "system.network.io").iter().filter_map(|x| x.1.iter().find(|a| a.0 == "network.interface.name").map(|a| a.1.clone())).collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn reports_the_host_interfaces_of_the_5_15_server() {
        let clock = TickClock::default();
        let mut c = NetworkCollector::new(&fixture_paths("linux-5.15-server"), &clock, &NetworkConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        // proc/1/net/dev (the host's namespace), lo included.
        assert_eq!(interfaces(&p), ["bond0.100", "docker0", "enp3s0", "lo", "veth1a2b3c4"]);
        // enp3s0: 98765432101 123456789 3 1024 0 2 0 55501 | 12345678901 45678901 0 7 0 0 1 0
        assert_eq!(get(&p, "system.network.io", "enp3s0", "receive"), Some(98_765_432_101.0));
        assert_eq!(get(&p, "system.network.io", "enp3s0", "transmit"), Some(12_345_678_901.0));
        assert_eq!(get(&p, "system.network.packet.count", "enp3s0", "receive"), Some(123_456_789.0));
        assert_eq!(get(&p, "system.network.packet.count", "enp3s0", "transmit"), Some(45_678_901.0));
        assert_eq!(get(&p, "system.network.errors", "enp3s0", "receive"), Some(3.0));
        assert_eq!(get(&p, "system.network.errors", "enp3s0", "transmit"), Some(0.0));
        assert_eq!(get(&p, "system.network.packet.dropped", "enp3s0", "receive"), Some(1024.0));
        assert_eq!(get(&p, "system.network.packet.dropped", "enp3s0", "transmit"), Some(7.0));
        assert_eq!(get(&p, "system.network.io", "lo", "receive"), Some(2_837_461_923.0));
        assert_eq!(of(&p, "system.network.io").len(), 10);
        for m in ["system.network.io", "system.network.packet.count", "system.network.errors", "system.network.packet.dropped"] {
            assert_eq!(kind(&p, m), Some(Kind::Counter), "{m}");
        }
        assert_eq!(h.unit("system.network.io"), Some("By"));
        assert_eq!(h.unit("system.network.packet.count"), Some("{packet}"));
        assert_eq!(h.unit("system.network.errors"), Some("{error}"));
        assert_eq!(h.unit("system.network.packet.dropped"), Some("{packet}"));
    }

    #[test]
    fn socket_tables_are_reread_only_after_the_connections_interval() {
        let (dir, paths) = crate::collectors::testutil::fixture_copy("linux-5.15-server");
        let clock = TickClock::default();
        let mut c = NetworkCollector::new(&paths, &clock, &NetworkConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let listen = |p: &[crate::collectors::testutil::Point]| {
            value(p, "system.network.connection.count", &[("network.transport", "tcp"), ("network.connection.state", "listen")])
        };
        assert_eq!(listen(&h.tick(&mut c).unwrap()), Some(5.0));
        // The tables empty out; within the interval the last counts are reported.
        crate::collectors::testutil::write(&dir, "proc/1/net/tcp", "  sl  local_address rem_address   st\n");
        crate::collectors::testutil::write(&dir, "proc/1/net/tcp6", "  sl  local_address rem_address   st\n");
        assert_eq!(listen(&h.tick(&mut c).unwrap()), Some(5.0));
        let every_tick = NetworkConfig { connections_interval: crate::units::ConfigDuration::secs(0), ..NetworkConfig::default() };
        let mut c2 = NetworkCollector::new(&paths, &clock, &every_tick);
        let mut h2 = Harness::new(&clock, &mut c2);
        assert_eq!(listen(&h2.tick(&mut c2).unwrap()), Some(0.0));
    }

    #[test]
    fn counts_tcp_sockets_by_semconv_state_and_udp_sockets_without_a_state() {
        let clock = TickClock::default();
        let mut c = NetworkCollector::new(&fixture_paths("linux-5.15-server"), &clock, &NetworkConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        let tcp = |s| value(&p, "system.network.connection.count", &[("network.transport", "tcp"), ("network.connection.state", s)]);
        // tcp: 3 listen, 4 established, 2 time_wait, 1 close_wait, 1 last_ack;
        // tcp6: 2 listen, 1 established, 1 in state 0D (not reported).
        assert_eq!(tcp("listen"), Some(5.0));
        assert_eq!(tcp("established"), Some(5.0));
        assert_eq!(tcp("time_wait"), Some(2.0));
        assert_eq!(tcp("close_wait"), Some(1.0));
        assert_eq!(tcp("last_ack"), Some(1.0));
        assert_eq!(tcp("syn_received"), Some(0.0));
        assert_eq!(tcp("fin_wait_1"), Some(0.0));
        assert_eq!(tcp("closed"), Some(0.0));
        // udp: 3 sockets, udp6: 1.
        assert_eq!(value(&p, "system.network.connection.count", &[("network.transport", "udp")]), Some(4.0));
        assert_eq!(of(&p, "system.network.connection.count").len(), 12);
        assert_eq!(kind(&p, "system.network.connection.count"), Some(Kind::UpDownCounter));
        assert_eq!(h.unit("system.network.connection.count"), Some("{connection}"));
    }

    #[test]
    fn include_and_exclude_select_interfaces_by_name_or_pattern() {
        let clock = TickClock::default();
        let paths = fixture_paths("linux-5.15-server");
        let cfg = NetworkConfig { exclude: vec!["lo".into(), "veth*".into()], connections: false, ..NetworkConfig::default() };
        let mut c = NetworkCollector::new(&paths, &clock, &cfg);
        let p = crate::collectors::testutil::collect_once(&clock, &mut c);
        assert_eq!(interfaces(&p), ["bond0.100", "docker0", "enp3s0"]);
        assert!(of(&p, "system.network.connection.count").is_empty());

        let cfg = NetworkConfig { include: vec!["en*".into(), "*.100".into(), "docker0".into()], exclude: vec!["docker*".into()], ..NetworkConfig::default() };
        let clock = TickClock::default();
        let mut c = NetworkCollector::new(&paths, &clock, &cfg);
        let p = crate::collectors::testutil::collect_once(&clock, &mut c);
        assert_eq!(interfaces(&p), ["bond0.100", "enp3s0"]);
    }

    #[test]
    fn a_vanished_interface_stops_reporting_and_counters_are_the_kernels_values() {
        let (dir, paths) = fixture_copy("linux-6.18-vm");
        let cfg = NetworkConfig { connections: false, ..NetworkConfig::default() };
        let clock = TickClock::default();
        let mut c = NetworkCollector::new(&paths, &clock, &cfg);
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).unwrap();
        assert_eq!(interfaces(&p), ["eth0", "ifb0", "ifb1", "lo"]);
        assert_eq!(get(&p, "system.network.io", "eth0", "receive"), Some(104_351_346.0));
        assert_eq!(get(&p, "system.network.packet.count", "eth0", "transmit"), Some(2950.0));
        // ifb1 is deleted; eth0's driver was reset (its counters restarted).
        let head = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n";
        write(
            &dir,
            "proc/1/net/dev",
            &format!("{head}    lo: 3300 31 0 0 0 0 0 0 3300 31 0 0 0 0 0 0\n  ifb0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n  eth0: 1500 3 0 0 0 0 0 0 900 2 0 0 0 0 0 0\n"),
        );
        let p = h.tick(&mut c).unwrap();
        assert_eq!(interfaces(&p), ["eth0", "ifb0", "lo"]);
        assert_eq!(get(&p, "system.network.io", "eth0", "receive"), Some(1500.0));
        assert_eq!(get(&p, "system.network.io", "ifb1", "receive"), None);
        assert_eq!(of(&p, "system.network.io").len(), 6);
        // ifb1 comes back from zero.
        write(&dir, "proc/1/net/dev", &format!("{head}    lo: 3300 31 0 0 0 0 0 0 3300 31 0 0 0 0 0 0\n  ifb1: 10 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"));
        let p = h.tick(&mut c).unwrap();
        assert_eq!(interfaces(&p), ["ifb1", "lo"]);
        assert_eq!(get(&p, "system.network.io", "ifb1", "receive"), Some(10.0));
        assert_eq!(c.attrs.len(), 2, "attributes of vanished interfaces are dropped");
    }

    #[test]
    fn missing_socket_tables_leave_out_only_the_socket_counts() {
        // The 6.18 tree has no proc/1/net/tcp.
        let clock = TickClock::default();
        let mut c = NetworkCollector::new(&fixture_paths("linux-6.18-vm"), &clock, &NetworkConfig::default());
        let mut h = Harness::new(&clock, &mut c);
        let p = h.tick(&mut c).expect("interfaces were read");
        assert_eq!(interfaces(&p), ["eth0", "ifb0", "ifb1", "lo"]);
        assert!(value(&p, "system.network.connection.count", &[("network.transport", "tcp"), ("network.connection.state", "listen")]).is_none());
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["tcp", "udp"], "its proc/1/net has no socket tables");
    }

    #[test]
    fn each_source_fails_alone_and_only_all_failing_fails_the_collector() {
        let every_tick = NetworkConfig { connections_interval: crate::units::ConfigDuration::secs(0), ..NetworkConfig::default() };
        let (dir, paths) = fixture_copy("linux-5.15-server");
        let udp = |p: &[Point]| value(p, "system.network.connection.count", &[("network.transport", "udp")]);
        let listen = |p: &[Point]| value(p, "system.network.connection.count", &[("network.transport", "tcp"), ("network.connection.state", "listen")]);
        // Each collector opens its files at its first tick (and keeps them open).
        let tick = || {
            let clock = TickClock::default();
            let mut c = NetworkCollector::new(&paths, &clock, &every_tick);
            let mut h = Harness::new(&clock, &mut c);
            let r = h.tick(&mut c);
            (c, h, r)
        };
        // No udp table: interfaces and TCP sockets are still reported.
        std::fs::remove_file(dir.path().join("proc/1/net/udp")).unwrap();
        let p = tick().2.expect("a missing udp table fails only itself");
        assert_eq!(get(&p, "system.network.io", "enp3s0", "receive"), Some(98_765_432_101.0));
        assert_eq!(listen(&p), Some(5.0));
        assert_eq!(udp(&p), None);
        // No net/dev either: the sockets are still counted.
        std::fs::remove_file(dir.path().join("proc/1/net/dev")).unwrap();
        let p = tick().2.expect("the tcp table was read");
        assert!(of(&p, "system.network.io").is_empty());
        assert_eq!(listen(&p), Some(5.0));
        // Nothing left: now the collector fails.
        std::fs::remove_file(dir.path().join("proc/1/net/tcp")).unwrap();
        let (mut c, mut h, r) = tick();
        assert!(r.is_err());
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["net/dev", "tcp", "udp"]);
        // The udp table comes back: reported again at the next tick.
        write(&dir, "proc/1/net/udp", "  sl  local_address rem_address   st\n   0: 0:0 0:0 07 x\n");
        let p = h.tick(&mut c).expect("udp was read");
        assert_eq!(udp(&p), Some(2.0), "the new udp line and udp6's one");
        assert_eq!(c.sources.failing().collect::<Vec<_>>(), ["net/dev", "tcp"]);
    }

    #[test]
    fn globs_match_exact_names_prefixes_suffixes_and_infixes() {
        assert!(glob_match("lo", "lo"));
        assert!(!glob_match("lo", "lo0"));
        assert!(glob_match("eth*", "eth0"));
        assert!(glob_match("eth*", "eth"));
        assert!(!glob_match("eth*", "veth0"));
        assert!(glob_match("*.100", "bond0.100"));
        assert!(glob_match("en*s0", "enp3s0"));
        assert!(!glob_match("en*s0", "enp3s1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("**x", "yyx"));
    }
}
