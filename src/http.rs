//! The one HTTP client of the remote-write, HTTP JSON and OTLP/HTTP exporters and of the
//! scraper: hyper with rustls from [`crate::tls`] (so `server_name`, versions, ciphers and mTLS
//! apply the same everywhere), a per-request timeout, a bounded response body, and the HTTP
//! retry rules shared by those protocols.

use crate::pipeline::queue::Outcome;
use crate::tls::{TlsConfig, TlsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, SystemTime};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("metricsd/", env!("CARGO_PKG_VERSION"));

/// `Content-Encoding: gzip` of a request body at level 1: metric payloads (repetitive names and
/// attributes) compress nearly as well as at the default level 6, for about a third of the CPU.
///
/// The deflate state (~300 KB of dictionary and hash tables) is kept per thread and reset
/// between bodies: a `GzEncoder` per body allocates and zero-fills it afresh, and the pages the
/// allocator then hands back to the kernel fault in again on the next tick, which cost more than
/// compressing a tick's batch. The gzip framing (RFC 1952: a 10-byte header, the raw deflate
/// stream, CRC-32 and length) is written here around it.
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::fast(), false));
    }
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=4 (fastest) OS=255 (unknown).
    let mut out = Vec::with_capacity(body.len() / 4 + 64);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255]);
    DEFLATE.with(|d| {
        let mut d = d.borrow_mut();
        d.reset();
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(4096));
            }
            let consumed = d.total_in() as usize;
            match d.compress_vec(&body[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    })?;
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    Ok(out)
}

/// A client for one endpoint's TLS settings.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

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
    /// Connect, TLS or protocol failure.
    #[error("{0}")]
    Transport(String),
    /// The body was larger than allowed.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

impl HttpClient {
    /// A client using `tls` for `https://` URLs. `server_name` from `tls` overrides SNI.
    pub fn new(tls: &TlsConfig, timeout: Duration) -> Result<Self, TlsError> {
        let config = tls.client_config(Vec::new())?; // hyper-rustls sets ALPN itself
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let b = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_or_http();
        let connector = match tls.server_name.as_deref().filter(|n| !n.is_empty()) {
            Some(_) => {
                let name = tls.server_name("")?;
                b.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name)).enable_http1().wrap_connector(http)
            }
            None => b.enable_http1().wrap_connector(http),
        };
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).pool_max_idle_per_host(2).build(connector);
        Ok(HttpClient { client, timeout })
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
        let mut req = Request::builder().method(method).uri(uri.clone());
        let h = req.headers_mut().expect("builder has no error yet");
        for (k, v) in headers {
            h.insert(k.clone(), v.clone());
        }
        if !h.contains_key(hyper::header::USER_AGENT) {
            h.insert(hyper::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        let req = req.body(Full::new(body)).map_err(|e| RequestError::Transport(e.to_string()))?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| RequestError::Transport(error_chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, body_limit).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    RequestError::TooLarge(body_limit)
                } else {
                    RequestError::Transport(format!("reading the body: {e}"))
                }
            })?;
            Ok(Answer { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(RequestError::Timeout(self.timeout)),
        }
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
    let when = httpdate_parse(v)?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

fn httpdate_parse(v: &str) -> Option<SystemTime> {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" → humantime's RFC 3339 parser.
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == parts[2])? + 1;
    let s = format!("{}-{:02}-{:0>2}T{}Z", parts[3], month, parts[1], parts[4]);
    humantime::parse_rfc3339(&s).ok()
}

/// The start of a body, for an error message.
pub fn body_snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(256)]);
    s.trim().replace('\n', " ")
}

/// HTTP answers as the exporters' protocols classify them: 2xx sent; `retryable` statuses
/// (and every 5xx) retried, honouring `Retry-After`; any other status dropped.
pub fn classify(result: Result<Answer, RequestError>, retryable: &[u16]) -> Outcome {
    match result {
        Ok(a) if a.status.is_success() => Outcome::Sent,
        Ok(a) => {
            let reason = format!("HTTP {}: {}", a.status.as_u16(), body_snippet(&a.body));
            if a.status.is_server_error() || retryable.contains(&a.status.as_u16()) {
                Outcome::Retry { after: retry_after(&a.headers), reason }
            } else {
                Outcome::Drop { reason }
            }
        }
        Err(e) => Outcome::Retry { after: None, reason: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_bodies_decode_to_what_went_in_one_after_another_on_the_same_state() {
        use std::io::Read;
        let big: Vec<u8> = (0..2_000_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()).collect();
        let text = "system.cpu.time{cpu.mode=\"user\"} 1234.5\n".repeat(5000).into_bytes();
        for body in [&text[..], b"", &big[..], b"x", &text[..]] {
            let gz = gzip(body).unwrap();
            assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "gzip magic and deflate");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, body, "round trip of {} bytes", body.len());
            if body.len() == text.len() {
                assert!(gz.len() < body.len() / 20, "repetitive text compresses: {} → {}", body.len(), gz.len());
            }
        }
    }

    fn answer(status: u16, retry: Option<&str>) -> Result<Answer, RequestError> {
        let mut headers = HeaderMap::new();
        if let Some(r) = retry {
            headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        Ok(Answer { status: StatusCode::from_u16(status).unwrap(), headers, body: Bytes::from_static(b"out of order sample\n") })
    }

    #[test]
    fn server_errors_and_listed_statuses_are_retried_other_client_errors_dropped() {
        assert_eq!(classify(answer(204, None), &[429]), Outcome::Sent);
        assert!(matches!(classify(answer(503, None), &[429]), Outcome::Retry { after: None, .. }));
        assert!(matches!(classify(answer(429, Some("7")), &[429]), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)));
        match classify(answer(400, None), &[429]) {
            Outcome::Drop { reason } => assert_eq!(reason, "HTTP 400: out of order sample"),
            o => panic!("{o:?}"),
        }
        assert!(matches!(classify(answer(408, None), &[408, 429]), Outcome::Retry { .. }));
        assert!(matches!(classify(Err(RequestError::Timeout(Duration::from_secs(1))), &[]), Outcome::Retry { .. }));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let future = SystemTime::now() + Duration::from_secs(3600);
        let t = humantime::format_rfc3339_seconds(future).to_string(); // 2026-11-23T12:00:00Z
        let (date, time) = t.trim_end_matches('Z').split_once('T').unwrap();
        let ymd: Vec<&str> = date.split('-').collect();
        let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][ymd[1].parse::<usize>().unwrap() - 1];
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_str(&format!("Mon, {} {mon} {} {time} GMT", ymd[2], ymd[0])).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(3500) && d <= Duration::from_secs(3600), "{d:?}");
    }
}
