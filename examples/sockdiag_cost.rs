//! Side-by-side cost of counting TCP sockets by state, interleaved in one process:
//! - `netlink`: what the agent uses (`procfs::sockdiag::count_tcp`: netlink-sys and
//!   netlink-packet-core, one `inet_diag` compatibility dump for IPv4 and IPv6);
//! - `by-family`: netlink-packet-sock-diag's own request type, which asks per family
//!   (`SOCK_DIAG_BY_FAMILY`): two dumps, two walks of the kernel's socket hash;
//! - `ffi`: the earlier hand-written reader (raw `libc` socket calls), for comparison;
//! - `files`: `/proc/net/tcp` and `tcp6`.
//!
//! `cargo run --release --example sockdiag_cost [ROUNDS]`
use metricsd::procfs::{netstat, sockdiag};
use std::io;
use std::time::{Duration, Instant};

/// From `procfs::netstat` (its state counter is crate-private).
#[derive(Debug, Default, Clone, Copy)]
struct Counts([u64; 14]);
impl Counts {
    fn add_code(&mut self, code: u8) {
        self.0[usize::from(code).min(13)] += 1;
    }
    fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

const RECV_BUF: usize = 32 * 1024;
const STATES: u32 = 0xffe;
const NLMSG_HDRLEN: usize = 16;

/// The earlier reader: raw socket calls, its own framing.
fn count_tcp_ffi() -> io::Result<Counts> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut req = [0u8; 76];
    req[0..4].copy_from_slice(&76u32.to_ne_bytes());
    req[4..6].copy_from_slice(&18u16.to_ne_bytes());
    req[6..8].copy_from_slice(&0x301u16.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[68..72].copy_from_slice(&STATES.to_ne_bytes());
    // SAFETY: plain system calls on a descriptor we own; buffers outlive the calls.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 4) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; RECV_BUF];
    let mut counts = Counts::default();
    loop {
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
        if n <= 0 {
            return Ok(counts);
        }
        let b = &buf[..(n as usize).min(RECV_BUF)];
        let mut off = 0;
        while off + NLMSG_HDRLEN <= b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(b[off + 4..off + 6].try_into().unwrap());
            match kind {
                3 | 2 => return Ok(counts),
                18 => counts.add_code(b[off + NLMSG_HDRLEN + 1]),
                _ => {}
            }
            off += (len.max(NLMSG_HDRLEN) + 3) & !3;
        }
    }
}

/// The same count through the rust-netlink crates (two `SOCK_DIAG_BY_FAMILY` dumps, one per family).
fn count_tcp_by_family() -> io::Result<Counts> {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {what}"));
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket2::SockRef::from(&socket).set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut counts = Counts::default();
    let mut buf = vec![0u8; RECV_BUF];
    for (seq, family) in [(1u32, AF_INET), (2, AF_INET6)] {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let socket_id = if family == AF_INET { SocketId::new_v4() } else { SocketId::new_v6() };
        let req = InetRequest { family, protocol: IPPROTO_TCP, extensions: ExtensionFlags::empty(), states: StateFlags::from_bits_truncate(STATES), socket_id };
        let mut msg = NetlinkMessage::new(header, SockDiagMessage::InetRequest(req).into());
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);
        socket.send(&out, 0)?;
        'dump: loop {
            let n = socket.recv(&mut &mut buf[..], libc::MSG_TRUNC)?;
            if n > buf.len() {
                return Err(invalid(format!("a {n}-byte message does not fit the {RECV_BUF}-byte buffer")));
            }
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<SockDiagMessage>::deserialize(&buf[off..n]).map_err(|e| invalid(e.to_string()))?;
                let len = m.header.length as usize;
                match m.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => counts.add_code(r.header.state),
                    NetlinkPayload::Done(_) => break 'dump,
                    NetlinkPayload::Error(e) => {
                        if let Some(code) = e.code {
                            return Err(io::Error::from_raw_os_error(code.get().saturating_abs()));
                        }
                    }
                    _ => {}
                }
                if len < NLMSG_HDRLEN {
                    return Err(invalid(format!("netlink message length {len}")));
                }
                off += (len + 3) & !3;
            }
        }
    }
    Ok(counts)
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let paths = metricsd::units::HostPaths::default();
    let mut took = [Duration::ZERO; 4];
    for _ in 0..rounds {
        let t = Instant::now();
        let a = sockdiag::count_tcp().unwrap().total();
        took[0] += t.elapsed();
        let t = Instant::now();
        let b = count_tcp_by_family().unwrap().total();
        took[1] += t.elapsed();
        let t = Instant::now();
        let c = count_tcp_ffi().unwrap().total();
        took[2] += t.elapsed();
        let t = Instant::now();
        let d = netstat::read_tcp_files(&paths).unwrap().total();
        took[3] += t.elapsed();
        std::hint::black_box((a, b, c, d));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64;
    println!("rounds={rounds} per count: netlink={:.3} ms by-family={:.3} ms ffi={:.3} ms files={:.3} ms", ms(took[0]), ms(took[1]), ms(took[2]), ms(took[3]));
}
