//! `/proc/net/snmp`, `/proc/net/netstat` and `/proc/net/snmp6`: the kernel's protocol counters
//! (MIB-II and Linux extensions). Not to be confused with [`netstat`](super::netstat), which
//! counts sockets in `/proc/net/tcp`.
//!
//! `snmp` and `netstat` come in pairs of lines, a header naming the counters and a line of
//! values, both prefixed with the section:
//!
//! ```text
//! Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
//! Tcp: 1 200 120000 -1 79124 78323 737 3204 1 920214 911616 762 0 3583 0
//! TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts ... ListenOverflows ListenDrops ...
//! TcpExt: 0 0 0 0 ... 352 352 ...
//! ```
//!
//! `snmp6` has one `Name value` line per counter, the section glued to the name:
//!
//! ```text
//! Udp6InDatagrams                     12  (name, spaces, a tab, value)
//! ```
//!
//! Only the counters in [`NetCounters`] are kept; each is `None` when the kernel does not have
//! it (an older kernel, IPv6 disabled). Negative values (`MaxConn -1`) are not counters and are
//! skipped; any other value that is not a number is an error naming the line.

use super::{LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// UDP counters of one IP version (`Udp:` of `snmp`, `Udp6*` of `snmp6`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Udp {
    pub in_datagrams: Option<u64>,
    pub out_datagrams: Option<u64>,
    /// Datagrams to a port nobody listens on.
    pub no_ports: Option<u64>,
    /// Datagrams that could not be delivered for other reasons (includes the buffer errors).
    pub in_errors: Option<u64>,
    pub rcvbuf_errors: Option<u64>,
    pub sndbuf_errors: Option<u64>,
}

/// The protocol counters the netstat collector reports (node_exporter's default set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub tcp_active_opens: Option<u64>,
    pub tcp_passive_opens: Option<u64>,
    pub tcp_in_segs: Option<u64>,
    pub tcp_out_segs: Option<u64>,
    pub tcp_retrans_segs: Option<u64>,
    pub tcp_in_errs: Option<u64>,
    pub tcp_out_rsts: Option<u64>,
    pub tcpext_listen_overflows: Option<u64>,
    pub tcpext_listen_drops: Option<u64>,
    pub tcpext_syncookies_sent: Option<u64>,
    pub tcpext_syncookies_recv: Option<u64>,
    pub tcpext_syncookies_failed: Option<u64>,
    pub tcpext_tcp_timeouts: Option<u64>,
    pub tcpext_tcp_syn_retrans: Option<u64>,
    pub udp: Udp,
    pub udp6: Udp,
}

impl NetCounters {
    /// Where `section`'s `key` goes, if it is kept.
    fn slot(&mut self, section: &str, key: &str) -> Option<&mut Option<u64>> {
        Some(match (section, key) {
            ("Tcp", "ActiveOpens") => &mut self.tcp_active_opens,
            ("Tcp", "PassiveOpens") => &mut self.tcp_passive_opens,
            ("Tcp", "InSegs") => &mut self.tcp_in_segs,
            ("Tcp", "OutSegs") => &mut self.tcp_out_segs,
            ("Tcp", "RetransSegs") => &mut self.tcp_retrans_segs,
            ("Tcp", "InErrs") => &mut self.tcp_in_errs,
            ("Tcp", "OutRsts") => &mut self.tcp_out_rsts,
            ("TcpExt", "ListenOverflows") => &mut self.tcpext_listen_overflows,
            ("TcpExt", "ListenDrops") => &mut self.tcpext_listen_drops,
            ("TcpExt", "SyncookiesSent") => &mut self.tcpext_syncookies_sent,
            ("TcpExt", "SyncookiesRecv") => &mut self.tcpext_syncookies_recv,
            ("TcpExt", "SyncookiesFailed") => &mut self.tcpext_syncookies_failed,
            ("TcpExt", "TCPTimeouts") => &mut self.tcpext_tcp_timeouts,
            ("TcpExt", "TCPSynRetrans") => &mut self.tcpext_tcp_syn_retrans,
            ("Udp", k) => udp_slot(&mut self.udp, k)?,
            ("Udp6", k) => udp_slot(&mut self.udp6, k)?,
            _ => return None,
        })
    }
}

fn udp_slot<'a>(u: &'a mut Udp, key: &str) -> Option<&'a mut Option<u64>> {
    Some(match key {
        "InDatagrams" => &mut u.in_datagrams,
        "OutDatagrams" => &mut u.out_datagrams,
        "NoPorts" => &mut u.no_ports,
        "InErrors" => &mut u.in_errors,
        "RcvbufErrors" => &mut u.rcvbuf_errors,
        "SndbufErrors" => &mut u.sndbuf_errors,
        _ => return None,
    })
}

/// A counter's value: `None` for a negative number (not a counter), an error for anything else
/// that is not a number.
fn counter(v: &str, line: usize, key: &str) -> Result<Option<u64>, LineError> {
    if let Ok(n) = v.parse::<u64>() {
        return Ok(Some(n));
    }
    match v.parse::<i64>() {
        Ok(n) if n < 0 => Ok(None),
        _ => Err(LineError::new(line, format!("{key}: not a number: {v:?}"))),
    }
}

/// Adds the counters of `snmp` or `netstat` text (header and value line pairs) to `out`.
pub fn parse_pairs(text: &str, out: &mut NetCounters) -> Result<(), LineError> {
    let mut lines = text.lines().enumerate();
    while let Some((i, header)) = lines.next() {
        let Some((section, names)) = header.split_once(':') else {
            continue;
        };
        let Some((j, values)) = lines.next() else {
            return Err(LineError::new(i + 1, format!("{section}: header without a line of values")));
        };
        let Some((vsection, values)) = values.split_once(':') else {
            return Err(LineError::new(j + 1, format!("{section}: expected its line of values")));
        };
        if vsection != section {
            return Err(LineError::new(j + 1, format!("{section}: values of {vsection:?} follow its header")));
        }
        let (mut names, mut values) = (names.split_ascii_whitespace(), values.split_ascii_whitespace());
        loop {
            match (names.next(), values.next()) {
                (Some(name), Some(v)) => {
                    if let Some(slot) = out.slot(section, name) {
                        *slot = counter(v, j + 1, name)?;
                    }
                }
                (None, None) => break,
                _ => return Err(LineError::new(j + 1, format!("{section}: as many values as names expected"))),
            }
        }
    }
    Ok(())
}

/// Adds the counters of `snmp6` text (`Udp6InDatagrams 12` lines) to `out`.
pub fn parse_snmp6(text: &str, out: &mut NetCounters) -> Result<(), LineError> {
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let (Some(name), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        // Only the sections kept: `Udp6` (not `UdpLite6`).
        if let Some(key) = name.strip_prefix("Udp6") {
            if let Some(slot) = out.slot("Udp6", key) {
                *slot = counter(v, i + 1, name)?;
            }
        }
    }
    Ok(())
}

/// `/proc/net/NAME` (`snmp`, `netstat`, `snmp6`), or `/proc/1/net/NAME` when the paths are
/// remapped (the host's network namespace, as for `net/dev`).
pub fn path(paths: &HostPaths, name: &str) -> PathBuf {
    super::netstat::path(paths, name)
}

/// The three files, kept open between ticks.
#[derive(Debug)]
pub struct CounterFiles {
    snmp: ProcFile,
    netstat: ProcFile,
    snmp6: ProcFile,
}

impl CounterFiles {
    pub fn new(paths: &HostPaths) -> Self {
        CounterFiles { snmp: ProcFile::new(path(paths, "snmp")), netstat: ProcFile::new(path(paths, "netstat")), snmp6: ProcFile::new(path(paths, "snmp6")) }
    }

    /// Reads the three files. `snmp` must be there; a missing `netstat` or `snmp6` (IPv6
    /// disabled) leaves its counters `None`.
    pub fn read(&mut self) -> Result<NetCounters, ProcError> {
        let mut out = NetCounters::default();
        let text = self.snmp.read()?;
        parse_pairs(text, &mut out).map_err(|e| super::at(self.snmp.path(), e))?;
        match self.netstat.read() {
            Ok(text) => parse_pairs(text, &mut out).map_err(|e| super::at(self.netstat.path(), e))?,
            Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => {}
            Err(e) => return Err(e),
        }
        match self.snmp6.read() {
            Ok(text) => parse_snmp6(text, &mut out).map_err(|e| super::at(self.snmp6.path(), e))?,
            Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }
}

/// Reads the three files once.
pub fn read(paths: &HostPaths) -> Result<NetCounters, ProcError> {
    CounterFiles::new(paths).read()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixture_paths;

    #[test]
    fn reads_the_tcp_udp_and_tcpext_counters_of_a_6_18_capture() {
        let c = read(&fixture_paths("linux-6.18-vm")).unwrap();
        // Tcp: 1 200 120000 -1 79135 78323 737 3204 2 925004 916264 763 0 3583 0
        assert_eq!((c.tcp_active_opens, c.tcp_passive_opens), (Some(79135), Some(78323)));
        assert_eq!((c.tcp_in_segs, c.tcp_out_segs, c.tcp_retrans_segs), (Some(925004), Some(916264), Some(763)));
        assert_eq!((c.tcp_in_errs, c.tcp_out_rsts), (Some(0), Some(3583)));
        // TcpExt: ListenOverflows and ListenDrops are the 23rd and 24th counters.
        assert_eq!((c.tcpext_listen_overflows, c.tcpext_listen_drops), (Some(352), Some(352)));
        assert_eq!(c.tcpext_syncookies_sent, Some(0));
        assert_eq!((c.tcpext_tcp_timeouts, c.tcpext_tcp_syn_retrans), (Some(355), Some(352)));
        // Udp: 3246 0 0 3248 0 0 0 0 0
        assert_eq!(
            c.udp,
            Udp { in_datagrams: Some(3246), out_datagrams: Some(3248), no_ports: Some(0), in_errors: Some(0), rcvbuf_errors: Some(0), sndbuf_errors: Some(0) }
        );
        assert_eq!((c.udp6.in_datagrams, c.udp6.sndbuf_errors), (Some(0), Some(0)), "snmp6 has Udp6InDatagrams");
    }

    #[test]
    fn the_remapped_paths_read_the_host_namespace_files() {
        let p = fixture_paths("linux-6.18-vm");
        assert_eq!(path(&p, "snmp"), p.proc("1/net/snmp"));
        assert_eq!(path(&HostPaths::default(), "netstat"), std::path::Path::new("/proc/net/netstat"));
    }

    #[test]
    fn skips_negative_values_and_names_the_line_of_a_bad_one() {
        let mut c = NetCounters::default();
        parse_pairs("Tcp: MaxConn RetransSegs\nTcp: -1 7\n", &mut c).unwrap();
        assert_eq!(c.tcp_retrans_segs, Some(7));
        let err = parse_pairs("Ip: Forwarding\nIp: 1\nTcp: RetransSegs\nTcp: x\n", &mut c).unwrap_err();
        assert_eq!(err.to_string(), "line 4: RetransSegs: not a number: \"x\"");
    }

    #[test]
    fn a_header_without_its_values_or_with_too_few_is_an_error() {
        let mut c = NetCounters::default();
        assert!(parse_pairs("Tcp: InSegs\n", &mut c).unwrap_err().to_string().contains("header without"));
        assert!(parse_pairs("Tcp: InSegs OutSegs\nTcp: 1\n", &mut c).unwrap_err().to_string().contains("as many values"));
        assert!(parse_pairs("Tcp: InSegs\nUdp: 1\n", &mut c).unwrap_err().to_string().contains("follow its header"));
    }

    #[test]
    fn counters_of_an_older_kernel_without_them_stay_none() {
        let mut c = NetCounters::default();
        parse_pairs("Tcp: InSegs OutSegs\nTcp: 5 6\n", &mut c).unwrap();
        parse_snmp6("Udp6InDatagrams 9\nUdpLite6InDatagrams 4\n", &mut c).unwrap();
        assert_eq!((c.tcp_in_segs, c.tcp_out_segs, c.tcp_out_rsts), (Some(5), Some(6), None));
        assert_eq!((c.udp6.in_datagrams, c.udp6.out_datagrams, c.udp.in_datagrams), (Some(9), None, None));
    }

    #[test]
    fn a_missing_snmp6_leaves_the_ipv6_counters_out() {
        let (dir, paths) = crate::collectors::testutil::fixture_copy("linux-6.18-vm");
        std::fs::remove_file(dir.path().join("proc/1/net/snmp6")).unwrap();
        let c = read(&paths).unwrap();
        assert_eq!(c.udp6, Udp::default());
        assert!(c.tcp_in_segs.is_some());
    }
}
