//! What the HTTP exporters (remote-write and `http_json`) share on top of [`crate::http`]:
//! the checks of their endpoint settings, the POST of one payload with its `Authorization`,
//! and the answer turned into the queue's [`Outcome`] (2xx sent; 5xx and the protocol's
//! `retryable` statuses retried, honouring `Retry-After`; any other status dropped).
//!
//! The classification lives here, not in the transport: `Outcome` is the retry decision of the
//! queue's [`crate::pipeline::queue::Exporter`] trait, a layer above `http`.

use crate::http::auth::{parse_endpoint, user_headers, Auth};
use crate::http::{body_snippet, retry_after, Answer, HttpClient, RequestError};
use crate::pipeline::queue::Outcome;
use crate::tls::TlsConfig;
use hyper::header::{HeaderName, HeaderValue};
use std::collections::BTreeMap;

/// The checks every HTTP exporter's config shares: endpoint, headers (not the protocol's
/// `reserved` ones), authentication, `max_batch_bytes` and TLS.
pub fn validate_http_exporter(
    endpoint: &str,
    headers: &BTreeMap<String, String>,
    reserved: &[&str],
    auth: &Auth,
    max_batch_bytes: usize,
    tls: &TlsConfig,
) -> Vec<String> {
    let mut v = Vec::new();
    if let Err(e) = parse_endpoint(endpoint) {
        v.push(e);
    }
    if let Err(e) = user_headers(headers, reserved) {
        v.push(e);
    }
    v.extend(auth.validate());
    if max_batch_bytes < 1024 {
        v.push("`max_batch_bytes` must be at least 1024".into());
    }
    if let Err(e) = tls.validate() {
        v.push(format!("tls: {e}"));
    }
    v
}

/// POSTs a payload with the fixed headers plus `Authorization` (files read now) and classifies
/// the answer: 2xx sent, 5xx and `retryable` retried, other statuses dropped.
pub async fn post_payload(
    client: &HttpClient,
    uri: &hyper::Uri,
    fixed: &[(HeaderName, HeaderValue)],
    auth: &Auth,
    body: bytes::Bytes,
    retryable: &[u16],
) -> Outcome {
    let mut headers = fixed.to_vec();
    match auth.header() {
        Ok(Some(h)) => headers.push((hyper::header::AUTHORIZATION, h)),
        Ok(None) => {}
        Err(e) => return Outcome::Retry { after: None, reason: e },
    }
    let r = client.request(hyper::Method::POST, uri, &headers, body, 64 * 1024).await;
    classify(r, retryable)
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
    use bytes::Bytes;
    use hyper::header::HeaderMap;
    use hyper::StatusCode;
    use std::time::Duration;

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
}
