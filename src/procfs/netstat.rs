//! `/proc/net/tcp`, `tcp6`, `udp`, `udp6`: one line per socket after a header; only the `st`
//! column (4th, two hex digits) is read, to count sockets by state.
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//!    0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1598 1 ...
//! ```
//!
//! TCP states (`include/net/tcp_states.h`): 01 established, 02 syn_sent, 03 syn_recv,
//! 04 fin_wait1, 05 fin_wait2, 06 time_wait, 07 close, 08 close_wait, 09 last_ack, 0A listen,
//! 0B closing. [`TcpState::name`] gives these lower-cased kernel names (as the hostmetrics
//! receiver lower-cases gopsutil's); [`TcpState::semconv`] gives the semantic conventions'
//! `network.connection.state` values (`syn_received`, `fin_wait_1`, `fin_wait_2`, `closed`
//! differ). Other codes (13 = `BOUND_INACTIVE` on 6.5+) are counted in [`TcpCounts::other`].
//!
//! UDP sockets have no connection state: they are only counted; a collector that needs a
//! state value for them uses [`UDP_STATE`] (the empty string).
//!
//! Counting allocates nothing per line, so hosts with 100k sockets stay cheap; keep the files
//! open with [`SocketFiles`] so their buffers are reused too. As with net/dev, the files show
//! the reader's network namespace: [`path`] reads `/proc/1/net/...` when the paths are
//! remapped to a host's `/proc`.

use super::{LineError, ProcError, ProcFile};
use crate::units::HostPaths;
use std::path::PathBuf;

/// The `network.connection.state` value used for UDP sockets, which have none.
pub const UDP_STATE: &str = "";

/// A TCP state as `/proc/net/tcp` codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
}

impl TcpState {
    /// All states, in code order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    /// The state of a code, `None` for codes outside 1..=11.
    pub fn from_code(code: u8) -> Option<TcpState> {
        Self::ALL.get((code as usize).wrapping_sub(1)).copied()
    }

    /// The kernel's name, lower-cased: `established`, `syn_recv`, `fin_wait1`, `close`, ...
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::Close => "close",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::Listen => "listen",
            TcpState::Closing => "closing",
        }
    }

    /// The semantic conventions' `network.connection.state` value: `established`,
    /// `syn_received`, `fin_wait_1`, `closed`, ...
    pub fn semconv(self) -> &'static str {
        match self {
            TcpState::SynRecv => "syn_received",
            TcpState::FinWait1 => "fin_wait_1",
            TcpState::FinWait2 => "fin_wait_2",
            TcpState::Close => "closed",
            s => s.name(),
        }
    }
}

/// TCP sockets counted by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounts {
    /// Indexed by state code; index 0 is unused.
    by_code: [u64; 12],
    /// Sockets with a code outside 1..=11.
    pub other: u64,
}

impl TcpCounts {
    /// Sockets in `state`.
    pub fn get(&self, state: TcpState) -> u64 {
        self.by_code[state as usize]
    }

    /// Every state with its count (zeros included), in code order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u64)> + '_ {
        TcpState::ALL.iter().map(|&s| (s, self.get(s)))
    }

    /// All sockets counted.
    pub fn total(&self) -> u64 {
        self.by_code.iter().sum::<u64>() + self.other
    }

    pub(crate) fn add_code(&mut self, code: u8) {
        match self.by_code.get_mut(code as usize) {
            Some(c) if code != 0 => *c += 1,
            _ => self.other += 1,
        }
    }
}

/// Adds the sockets of one `/proc/net/tcp` or `tcp6` text to `counts`.
pub fn count_tcp(text: &str, counts: &mut TcpCounts) -> Result<(), LineError> {
    for_each_state(text, |code| counts.add_code(code))
}

/// Counts the sockets of one `/proc/net/udp` or `udp6` text.
pub fn count_udp(text: &str) -> Result<u64, LineError> {
    let mut n = 0;
    for_each_state(text, |_| n += 1)?;
    Ok(n)
}

fn for_each_state(text: &str, mut f: impl FnMut(u8)) -> Result<(), LineError> {
    for (i, line) in text.lines().enumerate().skip(1) {
        let Some(st) = line.split_ascii_whitespace().nth(3) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(LineError::new(i + 1, "st: missing field"));
        };
        match u8::from_str_radix(st, 16) {
            Ok(code) => f(code),
            Err(_) => return Err(LineError::new(i + 1, format!("st: not a hex number: {st:?}"))),
        }
    }
    Ok(())
}

/// `/proc/net/NAME` (`tcp`, `tcp6`, `udp`, `udp6`), or `/proc/1/net/NAME` when the paths are
/// remapped.
pub fn path(paths: &HostPaths, name: &str) -> PathBuf {
    if paths.is_remapped() {
        paths.proc(&format!("1/net/{name}"))
    } else {
        paths.proc(&format!("net/{name}"))
    }
}

/// The four socket tables, kept open between ticks. A missing `tcp6`/`udp6` (IPv6 disabled)
/// counts as empty.
///
/// TCP sockets are counted over netlink ([`sockdiag`](super::sockdiag), ~6× cheaper) when the
/// namespace to report is the agent's own: `/proc` is not remapped, or the remapped
/// `1/ns/net` is the same namespace as `/proc/self/ns/net` (a DaemonSet with
/// `hostNetwork: true`). Otherwise, or when the kernel refuses the dump (logged once), the
/// files are read.
#[derive(Debug)]
pub struct SocketFiles {
    tcp: ProcFile,
    tcp6: ProcFile,
    udp: ProcFile,
    udp6: ProcFile,
    diag: bool,
}

/// Whether the network namespace `paths` describe is the calling process's.
pub fn own_namespace(paths: &HostPaths) -> bool {
    if !paths.is_remapped() {
        return true;
    }
    use std::os::unix::fs::MetadataExt;
    let id = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (id(&paths.proc("1/ns/net")), id(std::path::Path::new("/proc/self/ns/net"))) {
        (Some(host), Some(own)) => host == own,
        _ => false,
    }
}

impl SocketFiles {
    pub fn new(paths: &HostPaths) -> Self {
        SocketFiles {
            tcp: ProcFile::new(path(paths, "tcp")),
            tcp6: ProcFile::new(path(paths, "tcp6")),
            udp: ProcFile::new(path(paths, "udp")),
            udp6: ProcFile::new(path(paths, "udp6")),
            diag: own_namespace(paths),
        }
    }

    /// Whether TCP sockets are counted over netlink (see the type's docs).
    pub fn uses_sock_diag(&self) -> bool {
        self.diag
    }

    /// TCP sockets (IPv4 and IPv6) by state.
    pub fn tcp(&mut self) -> Result<TcpCounts, ProcError> {
        if self.diag {
            match super::sockdiag::count_tcp() {
                Ok(c) => return Ok(c),
                // Out of descriptors or memory for a moment: this count fails (alone), the
                // next one tries netlink again.
                Err(error) if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                    return Err(ProcError::Io { path: "netlink sock_diag".into(), source: error });
                }
                Err(error) => {
                    tracing::info!(%error, fallback = %self.tcp.path().display(), "Netlink sock_diag refused; counting TCP sockets from the files");
                    self.diag = false;
                }
            }
        }
        self.tcp_files()
    }

    /// TCP sockets (IPv4 and IPv6) by state, from the files whatever [`Self::uses_sock_diag`] says.
    pub fn tcp_files(&mut self) -> Result<TcpCounts, ProcError> {
        let mut counts = TcpCounts::default();
        for (file, required) in [(&mut self.tcp, true), (&mut self.tcp6, false)] {
            match file.read() {
                Ok(text) => count_tcp(text, &mut counts).map_err(|e| super::at(file.path(), e))?,
                Err(e) if !required && e.is_io_kind(std::io::ErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(counts)
    }

    /// UDP sockets (IPv4 and IPv6).
    pub fn udp(&mut self) -> Result<u64, ProcError> {
        let mut n = 0;
        for (file, required) in [(&mut self.udp, true), (&mut self.udp6, false)] {
            match file.read() {
                Ok(text) => n += count_udp(text).map_err(|e| super::at(file.path(), e))?,
                Err(e) if !required && e.is_io_kind(std::io::ErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// TCP sockets (IPv4 and IPv6) by state, read once.
pub fn read_tcp(paths: &HostPaths) -> Result<TcpCounts, ProcError> {
    SocketFiles::new(paths).tcp()
}

/// TCP sockets (IPv4 and IPv6) by state, read once from the files.
pub fn read_tcp_files(paths: &HostPaths) -> Result<TcpCounts, ProcError> {
    SocketFiles::new(paths).tcp_files()
}

/// UDP sockets (IPv4 and IPv6), read once.
pub fn read_udp(paths: &HostPaths) -> Result<u64, ProcError> {
    SocketFiles::new(paths).udp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{fixture, fixture_paths};

    #[test]
    fn counts_the_one_listening_socket_of_the_6_18_capture() {
        let text = std::fs::read_to_string(fixture("linux-6.18-vm/proc/net/tcp")).unwrap();
        let mut c = TcpCounts::default();
        count_tcp(&text, &mut c).unwrap();
        assert_eq!(c.get(TcpState::Listen), 1);
        assert_eq!(c.total(), 1);
    }

    #[test]
    fn counts_tcp_and_tcp6_sockets_by_state_of_a_5_15_host() {
        let c = read_tcp(&fixture_paths("linux-5.15-server")).unwrap();
        // tcp: 3 listen, 4 established, 2 time_wait, 1 close_wait, 1 last_ack;
        // tcp6: 2 listen, 1 established, 1 code 0D (bound_inactive).
        assert_eq!(c.get(TcpState::Listen), 5);
        assert_eq!(c.get(TcpState::Established), 5);
        assert_eq!(c.get(TcpState::TimeWait), 2);
        assert_eq!(c.get(TcpState::CloseWait), 1);
        assert_eq!(c.get(TcpState::LastAck), 1);
        assert_eq!(c.get(TcpState::SynSent), 0);
        assert_eq!(c.other, 1);
        assert_eq!(c.total(), 15);
        let nonzero: Vec<(&str, u64)> = c.iter().filter(|x| x.1 > 0).map(|(s, n)| (s.name(), n)).collect();
        assert_eq!(nonzero, [("established", 5), ("time_wait", 2), ("close_wait", 1), ("last_ack", 1), ("listen", 5)]);
    }

    #[test]
    fn netlink_is_used_only_for_the_agents_own_network_namespace() {
        assert!(SocketFiles::new(&HostPaths::default()).uses_sock_diag());
        // A fixture tree has no 1/ns/net: its files are read.
        let fixture = fixture_paths("linux-5.15-server");
        assert!(!SocketFiles::new(&fixture).uses_sock_diag());
        assert_eq!(read_tcp(&fixture).unwrap(), read_tcp_files(&fixture).unwrap());
        // The real /proc remapped (as HOST_PROC=/proc would): netlink exactly when PID 1 is seen
        // to share this process's namespace (not when its namespace cannot be looked at).
        let remapped = HostPaths { sys: "/nonexistent/sys".into(), ..HostPaths::default() };
        assert!(remapped.is_remapped());
        let link = |p: &str| std::fs::read_link(p).ok();
        let same = link("/proc/1/ns/net").is_some_and(|l| Some(l) == link("/proc/self/ns/net"));
        assert_eq!(own_namespace(&remapped), same);
    }

    #[test]
    fn counts_udp_and_udp6_sockets() {
        assert_eq!(read_udp(&fixture_paths("linux-5.15-server")).unwrap(), 4);
    }

    #[test]
    fn treats_a_missing_tcp6_as_empty_but_not_a_missing_tcp() {
        let dir = std::env::temp_dir().join(format!("netstat-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("proc/1/net")).unwrap();
        let p = HostPaths::under(&dir);
        assert!(read_tcp(&p).unwrap_err().is_io_kind(std::io::ErrorKind::NotFound));
        std::fs::write(dir.join("proc/1/net/tcp"), "header\n   0: 0:0 0:0 01 x\n").unwrap();
        assert_eq!(read_tcp(&p).unwrap().get(TcpState::Established), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn maps_state_codes_to_kernel_and_semconv_names() {
        assert_eq!(TcpState::from_code(0x0A), Some(TcpState::Listen));
        assert_eq!(TcpState::from_code(0), None);
        assert_eq!(TcpState::from_code(12), None);
        assert_eq!(TcpState::from_code(3).map(TcpState::name), Some("syn_recv"));
        assert_eq!(TcpState::SynRecv.semconv(), "syn_received");
        assert_eq!(TcpState::FinWait2.semconv(), "fin_wait_2");
        assert_eq!(TcpState::Close.semconv(), "closed");
        assert_eq!(TcpState::CloseWait.semconv(), "close_wait");
    }

    #[test]
    fn names_the_line_of_a_bad_state() {
        let mut c = TcpCounts::default();
        let e = count_tcp("h\n 0: a b 0A\n 1: a b ZZ\n", &mut c).unwrap_err();
        assert_eq!(e.to_string(), "line 3: st: not a hex number: \"ZZ\"");
    }

    #[test]
    fn counts_a_hundred_thousand_sockets_quickly() {
        let mut text = String::from("  sl  local_address rem_address   st tx_queue ...\n");
        for i in 0..100_000 {
            let st = if i % 10 == 0 { "0A" } else { "01" };
            text.push_str(&format!(
                "{i:>6}: 0100007F:1F90 0100007F:{:04X} {st} 00000000:00000000 00:00000000 00000000  1000        0 {} 1 0000000000000000 20 4 30 10 -1\n",
                i % 65536,
                100_000 + i
            ));
        }
        let start = std::time::Instant::now();
        let mut c = TcpCounts::default();
        count_tcp(&text, &mut c).unwrap();
        let took = start.elapsed();
        assert_eq!((c.get(TcpState::Listen), c.get(TcpState::Established)), (10_000, 90_000));
        // ~15 MB of text; debug builds manage this in well under a second.
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }
}
