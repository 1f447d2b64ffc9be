//! One HTTP/1.1 exchange on a kept-alive connection (RFC 9112): the request written at once,
//! the answer's head parsed by `httparse` (the parser hyper itself uses), its body framed by
//! `Content-Length`, by the chunked transfer coding, or by the end of the connection.
//!
//! ```text
//! POST /v1/metrics HTTP/1.1\r\nhost: 127.0.0.1:4318\r\nuser-agent: metricsd/0.1.0\r\n
//! content-type: application/x-protobuf\r\ncontent-encoding: gzip\r\ncontent-length: 5213\r\n\r\n<body>
//! HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n
//! ```
//!
//! Why not hyper's client: every exporter sends one request per tick, and with hyper-util's
//! pooled client (a pool, a connection task it talks to over a channel, a dispatcher, body
//! streams) the agent spent ~5 % more CPU per tick than with this file, measured side by side
//! (see the README's Performance section). What the agent needs of HTTP/1.1 is this file: no
//! pipelining, no upgrades, no request streaming.

use super::RequestError;
use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::StatusCode;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Largest answer head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in an answer.
const MAX_HEADERS: usize = 100;
/// Bodies up to this size are copied behind the head and sent in one write (one segment).
const COALESCE: usize = 256 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Most the read buffer grows by at once (it doubles up to this, so a large body takes few
/// reallocations).
const MAX_READ_AHEAD: usize = 1024 * 1024;

/// A connection, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How an answer's body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    /// No body: an answer to HEAD, a 204 or a 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    ToEof,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// Writing the request failed, so the server cannot have acted on it: a kept-alive
    /// connection the server closed while idle may fail so, and the request may be sent again
    /// on a new one.
    NotSent(io::Error),
    /// Anything else (a broken answer, a connection lost in the middle of one, a body too large).
    Other(RequestError),
}

impl From<Failure> for RequestError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NotSent(e) => RequestError::Transport(format!("sending the request: {e}")),
            Failure::Other(e) => e,
        }
    }
}

fn protocol(msg: impl Into<String>) -> Failure {
    Failure::Other(RequestError::Transport(msg.into()))
}

/// An answer's status, headers and how its body is framed.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    keep_alive: bool,
    framing: Framing,
}

/// The answer to one request.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the connection may carry the next request.
    pub keep_alive: bool,
}

/// A connection and what was read from it past the last answer's end.
pub(super) struct Conn {
    stream: Stream,
    buf: BytesMut,
}

impl Conn {
    pub(super) fn new(stream: Stream) -> Self {
        Conn { stream, buf: BytesMut::new() }
    }

    /// Whether the server closed this idle connection (or sent something unasked, which
    /// makes it as unusable): anything readable on it. A TLS close_notify is such a read too.
    pub(super) fn closed_while_idle(&self) -> bool {
        let tcp = match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        };
        !self.buf.is_empty() || !matches!(tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `head` (the request line and headers, ending in an empty line) and `body`, and
    /// reads the answer, its body up to `limit` bytes. `head_request`: the request was HEAD,
    /// so the answer has no body whatever its headers say.
    pub(super) async fn exchange(&mut self, head: &[u8], body: &[u8], head_request: bool, limit: usize) -> Result<Answer, Failure> {
        self.buf.clear();
        let written = if body.len() <= COALESCE {
            let mut one = Vec::with_capacity(head.len() + body.len());
            one.extend_from_slice(head);
            one.extend_from_slice(body);
            self.stream.write_all(&one).await
        } else {
            match self.stream.write_all(head).await {
                Ok(()) => self.stream.write_all(body).await,
                e => e,
            }
        };
        written.and(self.stream.flush().await).map_err(Failure::NotSent)?;
        let mut interim = false;
        let head = loop {
            let h = self.read_head(head_request, interim).await?;
            interim = true;
            // Interim answers (100 Continue, 103 Early Hints) come before the final one.
            if h.status.is_informational() && h.status != StatusCode::SWITCHING_PROTOCOLS {
                continue;
            }
            if h.status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(protocol("the server switched protocols (101), which was not asked for"));
            }
            break h;
        };
        let body = self.read_body(head.framing, limit).await?;
        Ok(Answer { status: head.status, headers: head.headers, body, keep_alive: head.keep_alive && head.framing != Framing::ToEof })
    }

    /// Reads more from the connection; `what` names the part of the answer being read.
    async fn more(&mut self, what: &str) -> Result<(), Failure> {
        self.buf.reserve(READ_CHUNK.max(self.buf.len() / 2).min(MAX_READ_AHEAD));
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(protocol(format!("connection closed in the middle of the answer's {what}"))),
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::Other(RequestError::Transport(format!("reading the answer's {what}: {e}")))),
        }
    }

    /// Reads an answer's head; `started`: part of the answer (an interim one) came already.
    async fn read_head(&mut self, head_request: bool, started: bool) -> Result<Head, Failure> {
        let mut started = started || !self.buf.is_empty();
        loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut r = httparse::Response::new(&mut headers);
                match r.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let head = head_of(&r, head_request)?;
                        self.buf.advance(n);
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => {
                        return Err(protocol(format!("answer head larger than {MAX_HEAD} bytes")));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(protocol(format!("malformed answer head: {e}"))),
                }
            }
            if started {
                self.more("head").await?;
                continue;
            }
            // The first read. The request was sent whole, so the server may have acted on it
            // even if no answer comes: not sent again here (the exporter's retry decides).
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err(protocol("connection closed before an answer")),
                Ok(_) => started = true,
                Err(e) => return Err(protocol(format!("connection failed before an answer: {e}"))),
            }
        }
    }

    /// Reads until `n` bytes are buffered. Memory grows with what arrives, not with what a
    /// header claims.
    async fn fill(&mut self, n: usize, what: &str) -> Result<(), Failure> {
        while self.buf.len() < n {
            self.more(what).await?;
        }
        Ok(())
    }

    async fn read_body(&mut self, framing: Framing, limit: usize) -> Result<Bytes, Failure> {
        let too_large = || Failure::Other(RequestError::TooLarge(limit));
        match framing {
            Framing::Empty => Ok(Bytes::new()),
            Framing::Length(n) => {
                let n = usize::try_from(n).ok().filter(|n| *n <= limit).ok_or_else(too_large)?;
                self.fill(n, "body").await?;
                Ok(self.buf.split_to(n).freeze())
            }
            Framing::ToEof => loop {
                if self.buf.len() > limit {
                    return Err(too_large());
                }
                self.buf.reserve(READ_CHUNK);
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => return Ok(self.buf.split().freeze()),
                    Ok(_) => {}
                    Err(e) => return Err(protocol(format!("reading the answer's body: {e}"))),
                }
            },
            Framing::Chunked => {
                let mut body = BytesMut::new();
                loop {
                    let (line, size) = loop {
                        match httparse::parse_chunk_size(&self.buf) {
                            Ok(httparse::Status::Complete(c)) => break c,
                            Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => return Err(protocol("chunk size line too long")),
                            Ok(httparse::Status::Partial) => self.more("chunked body").await?,
                            Err(_) => return Err(protocol("malformed chunk size line in the answer's body")),
                        }
                    };
                    self.buf.advance(line);
                    if size == 0 {
                        return self.skip_trailers().await.map(|()| body.freeze());
                    }
                    let size = usize::try_from(size).ok().filter(|s| body.len().saturating_add(*s) <= limit && *s < usize::MAX - 2).ok_or_else(too_large)?;
                    self.fill(size + 2, "chunked body").await?;
                    if &self.buf[size..size + 2] != b"\r\n" {
                        return Err(protocol("a chunk of the answer's body does not end in CRLF"));
                    }
                    body.extend_from_slice(&self.buf[..size]);
                    self.buf.advance(size + 2);
                }
            }
        }
    }

    /// Reads the trailer fields after the last chunk, up to the empty line, and drops them.
    async fn skip_trailers(&mut self) -> Result<(), Failure> {
        let mut seen = 0;
        loop {
            match self.buf.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let empty = self.buf[..i] == b""[..] || self.buf[..i] == b"\r"[..];
                    self.buf.advance(i + 1);
                    seen += i + 1;
                    if empty {
                        return Ok(());
                    }
                }
                None if seen + self.buf.len() > MAX_HEAD => return Err(protocol("trailer fields too long")),
                None => self.more("trailer fields").await?,
            }
        }
    }
}

/// Status, headers, keep-alive and framing of a parsed head.
fn head_of(r: &httparse::Response<'_, '_>, head_request: bool) -> Result<Head, Failure> {
    let status = r.code.and_then(|c| StatusCode::from_u16(c).ok()).ok_or_else(|| protocol("answer with an invalid status code"))?;
    let mut headers = HeaderMap::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        // httparse checked the names; a value with bytes HeaderValue refuses is dropped.
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value)) {
            headers.append(name, value);
        }
    }
    let has_token = |token: &str| {
        headers.get_all(CONNECTION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let has_te = headers.contains_key(TRANSFER_ENCODING);
    // Transfer-Encoding beside Content-Length, or in an HTTP/1.0 answer, is framing to
    // distrust (RFC 9112 §6.1, §6.3): the body is read as TE says and the connection closed.
    let dubious = has_te && (headers.contains_key(CONTENT_LENGTH) || r.version != Some(1));
    let keep_alive = !dubious
        && match r.version {
            Some(1) => !has_token("close"),
            _ => has_token("keep-alive"),
        };
    let framing = if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED || status.is_informational() {
        Framing::Empty
    } else if let Some(last) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let last = last.to_str().unwrap_or("").rsplit(',').next().unwrap_or("").trim();
        if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::ToEof
        }
    } else {
        let digits = |v: &str| Some(v.trim()).filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).and_then(|v| v.parse::<u64>().ok());
        let mut lengths = headers.get_all(CONTENT_LENGTH).iter().flat_map(|v| v.to_str().unwrap_or("x").split(',')).map(digits);
        match lengths.next() {
            None => Framing::ToEof,
            Some(Some(n)) if lengths.all(|m| m == Some(n)) => Framing::Length(n),
            Some(_) => return Err(protocol("answer with an invalid Content-Length")),
        }
    };
    Ok(Head { status, headers, keep_alive, framing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A connection to a server that reads one request (up to its empty line and
    /// `Content-Length` body) and writes `answer` in the given pieces, then keeps the
    /// connection open until the client closes it. Returns the connection and the request
    /// the server saw.
    async fn against(answer: Vec<&'static [u8]>) -> (Conn, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let len = head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |v| v.parse::<usize>().unwrap());
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                assert!(n > 0, "client closed before its request was whole");
            }
            for piece in answer {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let _ = s.read(&mut buf).await;
            got
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        (Conn::new(Stream::Plain(tcp)), server)
    }

    /// A server that, for each of `answers` in turn, accepts a connection, reads the request
    /// (one read), writes the answer and closes the connection.
    async fn closing(answers: Vec<&'static [u8]>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for answer in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(answer).await.unwrap();
            }
        });
        addr
    }

    async fn connect(addr: std::net::SocketAddr) -> Conn {
        Conn::new(Stream::Plain(TcpStream::connect(addr).await.unwrap()))
    }

    const POST: &[u8] = b"POST /v1/metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n";

    async fn one(answer: Vec<&'static [u8]>, limit: usize) -> Result<Answer, Failure> {
        let (mut conn, _server) = against(answer).await;
        conn.exchange(POST, b"hello", false, limit).await
    }

    #[tokio::test]
    async fn a_content_length_body_is_read_whole_across_reads_and_the_request_arrives_intact() {
        let (mut conn, server) = against(vec![b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 11\r\nX-A: 1\r\n\r\nhello", b" world"]).await;
        let a = conn.exchange(POST, b"hello", false, 1024).await.unwrap();
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(&a.body[..], b"hello world");
        assert_eq!(a.headers.get("x-a").unwrap(), "1");
        assert!(a.keep_alive);
        drop(conn);
        let seen = server.await.unwrap();
        assert_eq!(seen, [POST, b"hello"].concat());
    }

    #[tokio::test]
    async fn a_chunked_body_with_extensions_and_trailers_is_decoded() {
        let a = one(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n", b"6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"], 1024)
            .await
            .unwrap();
        assert_eq!(&a.body[..], b"hello world");
        assert!(a.keep_alive);
    }

    #[tokio::test]
    async fn a_body_without_length_ends_with_the_connection_which_is_then_not_kept() {
        let mut conn = connect(closing(vec![b"HTTP/1.0 200 OK\r\n\r\nuntil the end"]).await).await;
        let a = conn.exchange(POST, b"hello", false, 1024).await.unwrap();
        assert_eq!(&a.body[..], b"until the end");
        assert!(!a.keep_alive);
    }

    #[tokio::test]
    async fn connection_close_and_http_1_0_answers_are_not_kept_alive() {
        let a = one(vec![b"HTTP/1.1 204 No Content\r\nConnection: Close\r\n\r\n"], 1024).await.unwrap();
        assert!(!a.keep_alive);
        let a = one(vec![b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"], 1024).await.unwrap();
        assert!(!a.keep_alive);
        let a = one(vec![b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"], 1024).await.unwrap();
        assert!(a.keep_alive);
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_204_has_no_body_whatever_its_headers_say() {
        let a = one(vec![b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"], 1024).await.unwrap();
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert!(a.body.is_empty());
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_however_they_are_framed() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world",
        ] {
            match one(vec![answer], 10).await {
                Err(Failure::Other(RequestError::TooLarge(10))) => {}
                Err(e) => panic!("{e:?}"),
                Ok(a) => panic!("{:?}", a.body),
            }
        }
    }

    #[tokio::test]
    async fn broken_answers_are_named_errors() {
        let cases: [(&'static [u8], &str); 4] = [
            (b"HTTP/1.1 2OO OK\r\n\r\n", "malformed answer head"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "invalid Content-Length"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", "does not end in CRLF"),
        ];
        for (answer, want) in cases {
            match one(vec![answer], 1024).await {
                Err(Failure::Other(RequestError::Transport(m))) => assert!(m.contains(want), "{m} should say {want}"),
                Err(e) => panic!("{e:?}"),
                Ok(a) => panic!("{:?}", a.status),
            }
        }
    }

    #[tokio::test]
    async fn transfer_encoding_beside_content_length_or_in_http_1_0_closes_the_connection() {
        let a = one(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"], 1024).await.unwrap();
        assert_eq!((&a.body[..], a.keep_alive), (&b"ok"[..], false));
        let a = one(vec![b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"], 1024).await.unwrap();
        assert_eq!((&a.body[..], a.keep_alive), (&b"ok"[..], false));
        match one(vec![b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"], 1024).await {
            Err(Failure::Other(RequestError::Transport(m))) => assert!(m.contains("invalid Content-Length"), "{m}"),
            other => panic!("{:?}", other.map(|a| a.body)),
        }
    }

    #[tokio::test]
    async fn lengths_a_server_claims_neither_overflow_nor_allocate_ahead_of_the_data() {
        // With no limit to speak of, a claimed 2^64 − 1 chunk is refused and a claimed
        // 2^64 − 1 Content-Length waits for bytes that never come (no reservation of it).
        match one(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nok"], usize::MAX).await {
            Err(Failure::Other(RequestError::TooLarge(_))) => {}
            other => panic!("{:?}", other.map(|a| a.body)),
        }
        let mut conn = connect(closing(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nshort"]).await).await;
        match conn.exchange(POST, b"hello", false, usize::MAX).await {
            Err(Failure::Other(RequestError::Transport(m))) => assert!(m.contains("middle of the answer's body"), "{m}"),
            other => panic!("{:?}", other.map(|a| a.body)),
        }
    }

    #[tokio::test]
    async fn a_write_to_a_connection_the_server_reset_is_not_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let s = s.into_std().unwrap();
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: a valid socket and a linger struct of the size given: close sends RST.
            let r = unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&s),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as u32,
                )
            };
            assert_eq!(r, 0);
        });
        let mut conn = connect(addr).await;
        server.await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(conn.closed_while_idle(), "the reset is seen before reuse");
        assert!(matches!(conn.exchange(POST, b"hello", false, 1024).await, Err(Failure::NotSent(_))));
    }

    #[tokio::test]
    async fn a_connection_closed_before_any_answer_is_told_apart_from_one_cut_mid_answer() {
        let addr = closing(vec![b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"]).await;
        let mut conn = connect(addr).await;
        match conn.exchange(POST, b"hello", false, 1024).await {
            Err(Failure::Other(RequestError::Transport(m))) => assert_eq!(m, "connection closed before an answer"),
            other => panic!("{:?}", other.map(|a| a.status)),
        }
        let mut conn = connect(addr).await;
        match conn.exchange(POST, b"hello", false, 1024).await {
            Err(Failure::Other(RequestError::Transport(m))) => assert!(m.contains("middle of the answer's body"), "{m}"),
            other => panic!("{:?}", other.map(|a| a.status)),
        }
    }
}
