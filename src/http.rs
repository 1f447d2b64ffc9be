//! The one HTTP client of the remote-write, HTTP JSON and OTLP/HTTP exporters and the
//! scraper: hyper-util's `legacy::Client` (HTTP/1.1, kept-alive
//! connections) over our one [`connect::Connector`] (TCP → optional proxy → rustls from
//! [`crate::tls`], so `server_name`, versions, ciphers and mTLS apply the same everywhere),
//! with a per-request timeout, a bounded response body, and `Retry-After` parsing; the
//! authentication helpers are in [`auth`]. Turning an answer into the queue's retry decision is
//! the exporters' job (`crate::exporters::http_post`), not the transport's.
//!
//! Why hyper-util and not reqwest: the agent already has hyper, hyper-util and tonic (which
//! itself runs on hyper), and needs one connector shared with the gRPC channel; reqwest would
//! bring its own connector and TLS set-up beside ours. Why not hand-written any more: parsing
//! every backend's answer by hand saved about 5 % of a tick, far less than the fifth of a tick
//! the project asks of hand-written code at the edge, and hyper is fuzzed and kept by many.

use crate::tls::{TlsConfig, TlsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub mod auth;
pub mod connect;
pub mod proxy;

pub use proxy::{Proxies, ProxyUrl};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("metricsd/", env!("CARGO_PKG_VERSION"));

/// The gzip level of request bodies: zlib's fastest, which keeps most of the gain on metric
/// payloads for a fraction of the default level's CPU.
pub const GZIP_LEVEL: u32 = 1;

/// `Content-Encoding: gzip` of a request body: flate2's raw deflate (zlib-rs backend) in the
/// gzip framing of RFC 1952 (a 10-byte header, the deflate stream, CRC-32 and length).
///
/// The deflate state (a few hundred KiB of window and hash tables) is kept per thread and reset
/// for each body instead of allocated and freed every tick: allocated anew, it left ~2.8 MB of
/// fragmented heap resident (measured with `/proc/PID/smaps`, OTLP/HTTP at 1 s: heap 3.6 MB
/// with `GzEncoder` per body, 0.8 MB without compression).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 3 + 64);
    gzip_into(&mut out, body);
    out
}

/// [`gzip`], appended to `out` (after a frame header the caller wrote, as gRPC's 5-byte
/// length prefix), with the same per-thread deflate state.
pub fn gzip_into(out: &mut Vec<u8>, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&GZIP_HEADER);
    let deflated = with_deflate(|d| loop {
        let consumed = d.total_in() as usize;
        out.reserve(body.len().saturating_sub(consumed) / 2 + 1024);
        match d.compress_vec(&body[consumed.min(body.len())..], out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    });
    if !deflated {
        // Deflating from memory into memory does not fail; should it, a fresh encoder does it.
        use std::io::Write;
        out.truncate(start);
        let mut e = flate2::write::GzEncoder::new(std::mem::take(out), flate2::Compression::new(GZIP_LEVEL));
        let _ = e.write_all(body);
        *out = e.finish().unwrap_or_default();
        return;
    }
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
}

/// The 10-byte gzip header of every body: ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=4 (fastest)
/// OS=255 (unknown).
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// Runs `f` with this thread's raw deflate state at [`GZIP_LEVEL`], reset for a new stream.
pub fn with_deflate<R>(f: impl FnOnce(&mut flate2::Compress) -> R) -> R {
    thread_local! {
        static DEFLATE: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false));
    }
    DEFLATE.with(|d| {
        let mut d = d.borrow_mut();
        d.reset();
        f(&mut d)
    })
}

/// A client for one endpoint's TLS and proxy settings: keeps up to [`MAX_IDLE`] connections
/// per server alive between requests for [`IDLE_TIMEOUT`].
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<connect::Connector, Full<Bytes>>,
    connector: connect::Connector,
    timeout: Duration,
}

/// Kept-alive connections per server.
pub const MAX_IDLE: usize = 2;
/// How long a connection is kept unused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The most bytes of an answer's head (status line and headers) that are read.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields an answer may have.
pub const MAX_HEADERS: usize = 128;
/// The most interim (1xx) answers before the final one; more fail the request at once.
pub const MAX_INTERIM_ANSWERS: usize = 32;

/// The server's answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body (at most the limit asked for).
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connect, proxy, TLS or protocol failure.
    #[error("{0}")]
    Transport(String),
    /// The body was larger than allowed.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

impl HttpClient {
    /// A client using `tls` for `https://` URLs (`server_name` from `tls` overrides SNI) and
    /// the environment's proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`).
    pub fn new(tls: &TlsConfig, timeout: Duration) -> Result<Self, TlsError> {
        Self::with_proxies(tls, timeout, Proxies::new(None).unwrap_or_else(|_| unreachable!("the environment always gives proxies")))
    }

    /// A client through `proxy_url` when there is one, else the environment's proxies. The
    /// error says what is wrong with the TLS settings or the proxy URL.
    pub fn with_proxy(tls: &TlsConfig, timeout: Duration, proxy_url: Option<&ProxyUrl>) -> Result<Self, String> {
        let proxies = Proxies::new(proxy_url)?;
        Self::with_proxies(tls, timeout, proxies).map_err(|e| format!("tls: {e}"))
    }

    fn with_proxies(tls: &TlsConfig, timeout: Duration, proxies: Proxies) -> Result<Self, TlsError> {
        let connector = connect::Connector::new(tls, proxies, connect::Mode::Http)?.with_timeout(timeout);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE)
            .http1_max_buf_size(MAX_HEAD_BYTES)
            .http1_max_headers(MAX_HEADERS)
            // Only a request that never left is sent again on a new connection; one sent whole
            // and left unanswered is for the exporter's retry to decide (a delta must not count
            // twice).
            .retry_canceled_requests(true)
            .build(connector.clone());
        Ok(HttpClient { inner: Arc::new(Inner { client, connector, timeout }) })
    }

    /// Sends a request; the body of the answer is read up to `body_limit` bytes.
    pub async fn request(
        &self,
        method: Method,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        body_limit: usize,
    ) -> Result<Answer, RequestError> {
        let mut req = self.build(method, uri, headers, body)?;
        // hyper skips interim answers without limit; a server sending them without end would
        // keep the connection busy for the whole timeout.
        let interim = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
        let seen = interim.clone();
        hyper::ext::on_informational(&mut req, move |_| {
            if seen.0.fetch_add(1, Ordering::Relaxed) + 1 == MAX_INTERIM_ANSWERS {
                seen.1.notify_one();
            }
        });
        let fut = async {
            let resp = tokio::select! {
                biased;
                () = interim.1.notified() => return Err(RequestError::Transport(format!("more than {MAX_INTERIM_ANSWERS} interim (1xx) answers"))),
                r = self.inner.client.request(req) => r.map_err(|e| RequestError::Transport(client_error(&e)))?,
            };
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, body_limit).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    RequestError::TooLarge(body_limit)
                } else {
                    RequestError::Transport(format!("reading the answer's body: {}", error_chain(&*e)))
                }
            })?;
            Ok(Answer { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        match tokio::time::timeout(self.inner.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(RequestError::Timeout(self.inner.timeout)),
        }
    }

    /// The request: `user-agent` (unless `headers` has one), `headers` (less the framing ones,
    /// which hyper sets), `content-length` where a body can be, and `Proxy-Authorization`
    /// when a plain `http` request goes to a proxy with credentials.
    fn build(&self, method: Method, uri: &Uri, headers: &[(HeaderName, HeaderValue)], body: Bytes) -> Result<hyper::Request<Full<Bytes>>, RequestError> {
        match uri.scheme_str() {
            Some("http" | "https") => {}
            other => return Err(RequestError::Transport(format!("unsupported URL scheme {:?} in {uri}", other.unwrap_or("")))),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(RequestError::Transport(format!("no host in {uri}")));
        }
        let mut req = hyper::Request::builder().method(method.clone()).uri(uri.clone());
        let h = req.headers_mut().ok_or_else(|| RequestError::Transport(format!("bad request to {uri}")))?;
        if !headers.iter().any(|(k, _)| k == hyper::header::USER_AGENT) {
            h.insert(hyper::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        for (k, v) in headers {
            if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH && k != hyper::header::TRANSFER_ENCODING && k != hyper::header::CONNECTION {
                h.append(k.clone(), v.clone());
            }
        }
        if !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        if uri.scheme_str() == Some("http") {
            if let Some(auth) = self.inner.connector.route(uri).and_then(|r| r.auth) {
                h.insert(hyper::header::PROXY_AUTHORIZATION, auth);
            }
        }
        req.body(Full::new(body)).map_err(|e| RequestError::Transport(format!("bad request to {uri}: {e}")))
    }
}

/// A client error without hyper-util's own wrapper ("client error (Connect)"): the connector's
/// message (which names the server or proxy), or hyper's.
fn client_error(e: &hyper_util::client::legacy::Error) -> String {
    match std::error::Error::source(e) {
        Some(inner) => error_chain(inner),
        None => e.to_string(),
    }
}

/// The error and its causes on one line (hyper hides the useful part in `source()`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(hyper::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP date (IMF-fixdate, RFC 850 or asctime, as RFC 9110 asks a recipient to accept).
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The start of a body, for an error message.
pub fn body_snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(256)]);
    s.trim().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// What the scripted server does after reading a request: answer it, or close unanswered.
    type Step = Option<&'static [u8]>;

    /// A server on 127.0.0.1 (TLS with `tls`) that follows one script per connection it
    /// accepts: per request, read it whole and take the step; after the last step, close.
    /// Returns its address and the requests it read, per connection.
    async fn scripted(scripts: Vec<Vec<Step>>, tls: Option<Arc<rustls::ServerConfig>>) -> (std::net::SocketAddr, Arc<Mutex<Vec<Vec<String>>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
        impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for script in scripts {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut s: Box<dyn Io> = match &tls {
                    Some(c) => match tokio_rustls::TlsAcceptor::from(c.clone()).accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(_) => continue, // the client refused the handshake
                    },
                    None => Box::new(tcp),
                };
                let conn = {
                    let mut l = log.lock().unwrap();
                    l.push(Vec::new());
                    l.len() - 1
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for step in script {
                        let request = loop {
                            let mut chunk = [0u8; 4096];
                            let end = buf.windows(4).position(|w| w == b"\r\n\r\n");
                            if let Some(end) = end {
                                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                                let len = head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |v| v.parse::<usize>().unwrap());
                                if buf.len() >= end + 4 + len {
                                    let r = String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
                                    buf.drain(..end + 4 + len);
                                    break Some(r);
                                }
                            }
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => break None,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let Some(request) = request else { return };
                        log.lock().unwrap()[conn].push(request);
                        match step {
                            Some(answer) => s.write_all(answer).await.unwrap(),
                            None => return,
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        (addr, seen)
    }

    const OK: Step = Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");

    fn client(timeout_ms: u64) -> HttpClient {
        HttpClient::new(&TlsConfig::default(), Duration::from_millis(timeout_ms)).unwrap()
    }

    async fn post(c: &HttpClient, url: &str) -> Result<Answer, RequestError> {
        let headers = [(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"))];
        c.request(Method::POST, &url.parse().unwrap(), &headers, Bytes::from_static(b"body"), 1024).await
    }

    #[tokio::test]
    async fn requests_go_out_on_one_kept_alive_connection_with_their_head_and_body() {
        let (addr, seen) = scripted(vec![vec![OK, OK, OK]], None).await;
        let c = client(5000);
        for _ in 0..3 {
            let a = post(&c, &format!("http://{addr}/v1/metrics?x=1")).await.unwrap();
            assert_eq!((a.status, &a.body[..]), (StatusCode::OK, &b"ok"[..]));
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "one connection for three requests");
        for r in &seen[0] {
            let r = r.to_ascii_lowercase();
            assert!(r.starts_with("post /v1/metrics?x=1 http/1.1\r\n"), "{r}");
            for line in [
                format!("host: {addr}"),
                format!("user-agent: {}", USER_AGENT.to_ascii_lowercase()),
                "content-type: application/x-protobuf".into(),
                "content-length: 4".into(),
            ] {
                assert!(r.contains(&format!("\r\n{line}\r\n")), "{line} in {r}");
            }
            assert!(r.ends_with("\r\n\r\nbody"), "{r}");
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
        // Each connection answers once and closes: the client finds it closed when it next
        // wants it and opens another.
        let (addr, seen) = scripted(vec![vec![OK], vec![OK]], None).await;
        let c = client(5000);
        post(&c, &format!("http://{addr}/")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        post(&c, &format!("http://{addr}/")).await.unwrap();
        assert_eq!(seen.lock().unwrap().iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
    }

    #[tokio::test]
    async fn a_request_left_unanswered_on_a_kept_connection_is_an_error_and_not_sent_again() {
        // The server may have acted on a request it received whole: the exporter's retry, not
        // the client, decides whether to send it again (delta temporality would count twice).
        let (addr, seen) = scripted(vec![vec![OK, None], vec![OK]], None).await;
        let c = client(5000);
        post(&c, &format!("http://{addr}/")).await.unwrap();
        match post(&c, &format!("http://{addr}/")).await {
            Err(RequestError::Transport(m)) => assert_eq!(m, "connection closed before message completed"),
            other => panic!("{other:?}"),
        }
        assert_eq!(&post(&c, &format!("http://{addr}/")).await.unwrap().body[..], b"ok");
        assert_eq!(seen.lock().unwrap().iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    }

    #[tokio::test]
    async fn a_new_connection_closed_unanswered_is_an_error_and_not_sent_again() {
        let (addr, seen) = scripted(vec![vec![None], vec![OK]], None).await;
        match post(&client(5000), &format!("http://{addr}/")).await {
            Err(RequestError::Transport(m)) => assert!(m.contains("connection closed before message completed"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_runs_into_the_timeout_and_refused_connections_name_the_server() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let (held, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(held);
        });
        assert!(matches!(post(&client(300), &format!("http://{addr}/")).await, Err(RequestError::Timeout(_))));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        match post(&client(5000), &format!("http://{closed}/")).await {
            Err(RequestError::Transport(m)) => assert!(m.starts_with(&format!("connecting to 127.0.0.1:{}: ", closed.port())), "{m}"),
            other => panic!("{other:?}"),
        }
        match post(&client(5000), "ftp://127.0.0.1/").await {
            Err(RequestError::Transport(m)) => assert!(m.contains("unsupported URL scheme"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// A rustls server config with a certificate for `name` from a fresh CA, and the CA's PEM
    /// file (in the returned directory).
    fn tls_server(name: &str) -> (Arc<rustls::ServerConfig>, tempfile::TempDir, std::path::PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&key, &ca).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        (Arc::new(server), dir, ca_file)
    }

    /// An HTTP proxy on 127.0.0.1 that sends every destination, whatever its host, to
    /// 127.0.0.1 at the destination's port: `CONNECT` tunnels, and absolute-form requests
    /// forwarded as they are. Records each connection's first line and `proxy-authorization`.
    async fn proxy() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, Option<String>)>>>) {
        proxy_with(None).await
    }

    /// [`proxy`], with TLS to the proxy when `tls` is given.
    async fn proxy_with(tls: Option<Arc<rustls::ServerConfig>>) -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, Option<String>)>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (log, tls) = (log.clone(), tls.clone());
                tokio::spawn(async move {
                    let mut client: Box<dyn connect::Io> = match tls {
                        Some(c) => match tokio_rustls::TlsAcceptor::from(c).accept(tcp).await {
                            Ok(s) => Box::new(s),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut b = [0u8; 1];
                        if client.read(&mut b).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(b[0]);
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let first = text.lines().next().unwrap_or("").to_string();
                    let auth = text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("proxy-authorization: ").map(|_| l[21..].to_string()));
                    log.lock().unwrap().push((first.clone(), auth));
                    let target = first.split(' ').nth(1).unwrap_or("");
                    let target = target.strip_prefix("http://").unwrap_or(target);
                    let port = target.split('/').next().unwrap().rsplit(':').next().unwrap();
                    let mut server = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
                    if first.starts_with("CONNECT ") {
                        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
                    } else {
                        server.write_all(&head).await.unwrap();
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn through_a_proxy_url_https_is_tunnelled_with_the_url_host_as_tls_name_and_http_goes_in_absolute_form() {
        let (server, _dir, ca_file) = tls_server("collector.invalid");
        let (tls_addr, tls_seen) = scripted(vec![vec![OK, OK]], Some(server)).await;
        let (plain_addr, plain_seen) = scripted(vec![vec![OK, OK]], None).await;
        let (proxy_addr, proxied) = proxy().await;
        let url = ProxyUrl::new(format!("http://agent:s3cret@{proxy_addr}"));
        let tls = TlsConfig { ca_file: Some(ca_file), ..TlsConfig::default() };
        let c = HttpClient::with_proxy(&tls, Duration::from_secs(5), Some(&url)).unwrap();
        // `.invalid` names resolve nowhere: only the proxy can reach these servers.
        let https = format!("https://collector.invalid:{}/v1/metrics", tls_addr.port());
        let http = format!("http://backend.invalid:{}/api/v1/write", plain_addr.port());
        for _ in 0..2 {
            assert_eq!(&post(&c, &https).await.unwrap().body[..], b"ok");
            assert_eq!(&post(&c, &http).await.unwrap().body[..], b"ok");
        }
        let basic = "Basic YWdlbnQ6czNjcmV0"; // agent:s3cret
        let mut proxied = proxied.lock().unwrap().clone();
        proxied.sort();
        assert_eq!(
            proxied,
            [
                (format!("CONNECT collector.invalid:{} HTTP/1.1", tls_addr.port()), Some(basic.to_string())),
                (format!("POST {http} HTTP/1.1"), Some(basic.to_string())),
            ],
            "one kept-alive connection each"
        );
        // Inside the tunnel the request is in origin form and carries no proxy credentials.
        let tls_seen = tls_seen.lock().unwrap().clone();
        assert!(tls_seen[0].iter().all(|r| r.starts_with("POST /v1/metrics HTTP/1.1\r\n") && !r.contains("proxy-authorization")), "{tls_seen:?}");
        let plain_seen = plain_seen.lock().unwrap().clone();
        assert_eq!(plain_seen[0].len(), 2);
        assert!(plain_seen[0].iter().all(|r| r.starts_with(&format!("POST {http} HTTP/1.1\r\n")) && r.contains(basic)), "{plain_seen:?}");
    }

    #[tokio::test]
    async fn a_proxy_that_refuses_or_is_down_is_an_error_that_names_it_without_credentials() {
        let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let url = ProxyUrl::new(format!("http://agent:s3cret@{down}"));
        let c = HttpClient::with_proxy(&TlsConfig::default(), Duration::from_secs(5), Some(&url)).unwrap();
        for dst in ["https://backend.invalid/", "http://backend.invalid/"] {
            match post(&c, dst).await {
                Err(RequestError::Transport(m)) => assert!(m.contains(&format!("proxy {down}")) && !m.contains("s3cret"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        let (refusing, _) = scripted(vec![vec![Some(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")]], None).await;
        let url = ProxyUrl::new(format!("http://{refusing}"));
        let c = HttpClient::with_proxy(&TlsConfig::default(), Duration::from_secs(5), Some(&url)).unwrap();
        match post(&c, "https://backend.invalid/").await {
            Err(RequestError::Transport(m)) => assert!(m.contains("CONNECT backend.invalid:443 through proxy") && m.contains("authorization required"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_few_interim_answers_are_skipped_and_an_endless_stream_of_them_fails_at_once() {
        let few: &'static [u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let flood: &'static [u8] = Box::leak(b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM_ANSWERS + 1).into_boxed_slice());
        let (addr, _) = scripted(vec![vec![Some(few)], vec![Some(flood), None]], None).await;
        assert_eq!(&post(&client(30_000), &format!("http://{addr}/")).await.unwrap().body[..], b"ok");
        let start = std::time::Instant::now();
        match post(&client(30_000), &format!("http://{addr}/")).await {
            Err(RequestError::Transport(m)) => assert!(m.contains("interim (1xx) answers"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not left to the 30 s timeout");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_however_it_is_framed_and_a_lying_length_waits_without_reserving() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world",
        ] {
            let (addr, _) = scripted(vec![vec![Some(answer)]], None).await;
            let headers = [(hyper::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))];
            match client(5000).request(Method::POST, &format!("http://{addr}/").parse().unwrap(), &headers, Bytes::from_static(b"body"), 10).await {
                Err(RequestError::TooLarge(10)) => {}
                other => panic!("{other:?}"),
            }
        }
        let (addr, _) = scripted(vec![vec![Some(b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nshort"), None]], None).await;
        let r = client(300).request(Method::GET, &format!("http://{addr}/").parse().unwrap(), &[], Bytes::new(), usize::MAX).await;
        assert!(matches!(r, Err(RequestError::Timeout(_)) | Err(RequestError::Transport(_))), "{r:?}");
    }

    #[tokio::test]
    async fn an_https_proxy_gets_tls_and_a_proxy_that_never_answers_runs_into_the_timeout() {
        let (proxy_tls, _dir, ca_file) = tls_server("localhost");
        let (proxy_addr, proxied) = proxy_with(Some(proxy_tls)).await;
        let (plain_addr, plain_seen) = scripted(vec![vec![OK]], None).await;
        let url = ProxyUrl::new(format!("https://localhost:{}", proxy_addr.port()));
        let tls = TlsConfig { ca_file: Some(ca_file), ..TlsConfig::default() };
        let c = HttpClient::with_proxy(&tls, Duration::from_secs(5), Some(&url)).unwrap();
        let http = format!("http://backend.invalid:{}/x", plain_addr.port());
        assert_eq!(&post(&c, &http).await.unwrap().body[..], b"ok");
        assert_eq!(proxied.lock().unwrap().clone(), [(format!("POST {http} HTTP/1.1"), None)]);
        assert_eq!(plain_seen.lock().unwrap().len(), 1);

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let connector = connect::Connector::new(
            &TlsConfig::default(),
            ProxyUrl::new(format!("http://{silent_addr}")).route().map(Proxies::Fixed).unwrap(),
            connect::Mode::Grpc { tls: true },
        )
        .unwrap()
        .with_timeout(Duration::from_millis(300));
        let start = std::time::Instant::now();
        match tower_service::Service::call(&mut connector.clone(), "http://backend.invalid:4317".parse().unwrap()).await {
            Err(e) => assert!(e.to_string().contains("not done within 300ms"), "{e}"),
            Ok(_) => panic!("a proxy that never answers gave a connection"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn https_verifies_the_server_name_that_replaces_the_url_host_and_keeps_the_connection() {
        let (server, _dir, ca_file) = tls_server("collector.internal");
        let (addr, seen) = scripted(vec![vec![OK, OK], vec![OK]], Some(server)).await;
        let url = format!("https://127.0.0.1:{}/v1/metrics", addr.port());
        let named = TlsConfig { ca_file: Some(ca_file.clone()), server_name: Some("collector.internal".into()), ..TlsConfig::default() };
        let c = HttpClient::new(&named, Duration::from_secs(5)).unwrap();
        for _ in 0..2 {
            assert_eq!(&post(&c, &url).await.unwrap().body[..], b"ok");
        }
        assert_eq!(seen.lock().unwrap().iter().map(Vec::len).collect::<Vec<_>>(), [2]);
        // Without server_name, the certificate does not cover 127.0.0.1.
        let unnamed = TlsConfig { ca_file: Some(ca_file), ..TlsConfig::default() };
        match post(&HttpClient::new(&unnamed, Duration::from_secs(5)).unwrap(), &url).await {
            Err(RequestError::Transport(m)) => assert!(m.starts_with("TLS handshake with 127.0.0.1:") && m.contains("certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gzip_bodies_decode_to_what_went_in_one_after_another_on_the_same_state() {
        use std::io::Read;
        let big: Vec<u8> = (0..2_000_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()).collect();
        let text = "system.cpu.time{cpu.mode=\"user\"} 1234.5\n".repeat(5000).into_bytes();
        for body in [&text[..], b"", &big[..], b"x", &text[..]] {
            let gz = gzip(body);
            assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "gzip magic and deflate");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, body, "round trip of {} bytes", body.len());
            if body.len() == text.len() {
                assert!(gz.len() < body.len() / 20, "repetitive text compresses: {} → {}", body.len(), gz.len());
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let future = SystemTime::now() + Duration::from_secs(3600);
        // IMF-fixdate with the right weekday ("Tue, 08 Dec 2026 00:30:00 GMT"): a wrong one is
        // refused, so a weekday written by hand made this test fail on other days.
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_str(&httpdate::fmt_http_date(future)).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(3500) && d <= Duration::from_secs(3600), "{d:?}");
    }
}
