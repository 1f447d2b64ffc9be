//! A remote-write 2.0 receiver's answer as the queue's [`Outcome`]: as for 1.0
//! ([`classify`]), plus what 2.0 adds. A 2xx carries what was written in headers, e.g.
//!
//! ```text
//! HTTP/1.1 204 No Content
//! X-Prometheus-Remote-Write-Samples-Written: 118
//! X-Prometheus-Remote-Write-Histograms-Written: 0
//! X-Prometheus-Remote-Write-Exemplars-Written: 0
//! ```
//!
//! Fewer samples and histograms written than sent is a partial write: the rest is counted as
//! rejected points (as OTLP's partial success). A 1.0-only receiver either answers 415
//! (Prometheus 2.54 to 2.x, or 3.x without `io.prometheus.write.v2.Request` in its accepted
//! messages) or, not checking the `Content-Type`, decodes the body as an empty 1.0 request and
//! answers 2xx with no such headers (Prometheus before 2.54, e.g. Debian's 2.42). Both are
//! dropped, never retried, with an error that names `protocol_version`: the spec's "required
//! written response headers" rule, which Prometheus' own sender applies (a 2xx that reports
//! nothing written for a non-empty request is a failure).

use crate::http::{Answer, RequestError};
use crate::pipeline::queue::Outcome;
use hyper::header::HeaderMap;

/// The answer header with the number of samples written.
pub const SAMPLES_WRITTEN: &str = "x-prometheus-remote-write-samples-written";
/// The answer header with the number of native histograms written.
pub const HISTOGRAMS_WRITTEN: &str = "x-prometheus-remote-write-histograms-written";
/// The answer header with the number of exemplars written.
pub const EXEMPLARS_WRITTEN: &str = "x-prometheus-remote-write-exemplars-written";

fn header_count(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Classifies the answer to a 2.0 request that carried `points` samples.
pub fn classify_v2(result: Result<Answer, RequestError>, points: u64, retryable: &[u16]) -> Outcome {
    if let Ok(a) = &result {
        if a.status.as_u16() == 415 {
            return Outcome::Drop {
                reason: format!(
                    "HTTP 415: the receiver does not accept remote-write 2.0 (`protocol_version: 2`); set `protocol_version: 1` for it ({})",
                    crate::http::body_snippet(&a.body)
                ),
            };
        }
        if a.status.is_success() {
            let samples = header_count(&a.headers, SAMPLES_WRITTEN).unwrap_or(0);
            let histograms = header_count(&a.headers, HISTOGRAMS_WRITTEN).unwrap_or(0);
            let exemplars = header_count(&a.headers, EXEMPLARS_WRITTEN).unwrap_or(0);
            let written = samples.saturating_add(histograms);
            if points > 0 && written == 0 && exemplars == 0 {
                return Outcome::Drop {
                    reason: format!(
                        "HTTP {} reporting no sample written (X-Prometheus-Remote-Write-*-Written): the receiver wrote nothing, as a remote-write 1.0 receiver does with a 2.0 body; set `protocol_version: 1` for it",
                        a.status.as_u16()
                    ),
                };
            }
            return match points.checked_sub(written) {
                Some(rejected) if rejected > 0 => Outcome::Partial {
                    rejected,
                    message: format!("the receiver wrote {written} of {points} samples ({exemplars} exemplars): {}", crate::http::body_snippet(&a.body)),
                },
                _ => Outcome::Sent,
            };
        }
    }
    super::super::http_post::classify(result, retryable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::header::HeaderValue;
    use hyper::StatusCode;

    fn answer(status: u16, written: &[(&'static str, &str)], body: &'static str) -> Result<Answer, RequestError> {
        let mut headers = HeaderMap::new();
        for (k, v) in written {
            headers.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Ok(Answer { status: StatusCode::from_u16(status).unwrap(), headers, body: Bytes::from_static(body.as_bytes()) })
    }

    #[test]
    fn all_samples_written_is_sent_and_fewer_is_a_partial_write_counting_the_rest() {
        assert_eq!(classify_v2(answer(204, &[(SAMPLES_WRITTEN, "10"), (HISTOGRAMS_WRITTEN, "0")], ""), 10, &[429]), Outcome::Sent);
        match classify_v2(answer(204, &[(SAMPLES_WRITTEN, "7")], "out of order sample"), 10, &[429]) {
            Outcome::Partial { rejected, message } => {
                assert_eq!(rejected, 3);
                assert!(message.contains("7 of 10") && message.contains("out of order sample"), "{message}");
            }
            o => panic!("{o:?}"),
        }
        // A receiver claiming more than was sent never underflows.
        assert_eq!(classify_v2(answer(204, &[(SAMPLES_WRITTEN, "99")], ""), 10, &[429]), Outcome::Sent);
        // Nothing to write, nothing reported: fine.
        assert_eq!(classify_v2(answer(204, &[], ""), 0, &[429]), Outcome::Sent);
    }

    #[test]
    fn a_2xx_reporting_nothing_written_is_a_1_0_receiver_and_dropped_naming_protocol_version() {
        for headers in [&[][..], &[(SAMPLES_WRITTEN, "0")][..], &[(SAMPLES_WRITTEN, "lots")][..]] {
            match classify_v2(answer(204, headers, ""), 10, &[429]) {
                Outcome::Drop { reason } => assert!(reason.contains("protocol_version: 1") && reason.contains("HTTP 204"), "{reason}"),
                o => panic!("{headers:?}: {o:?}"),
            }
        }
    }

    #[test]
    fn a_415_from_a_1_0_only_receiver_is_dropped_naming_protocol_version() {
        match classify_v2(answer(415, &[], "unsupported Content-Type"), 10, &[429]) {
            Outcome::Drop { reason } => assert!(reason.contains("protocol_version: 1") && reason.contains("HTTP 415"), "{reason}"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn other_answers_are_classified_as_for_1_0() {
        assert!(matches!(classify_v2(answer(503, &[], ""), 10, &[429]), Outcome::Retry { .. }));
        assert!(matches!(classify_v2(answer(429, &[], ""), 10, &[429]), Outcome::Retry { .. }));
        assert!(matches!(classify_v2(answer(400, &[], "bad"), 10, &[429]), Outcome::Drop { .. }));
    }
}
