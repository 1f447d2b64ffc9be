//! Remote-write 1.0 bodies written series by series: each `TimeSeries` goes straight into the
//! protobuf of the current `WriteRequest`, which is snappy-compressed into a body when the
//! next series would take it over `max_batch_bytes`.
//!
//! The host's points come one at a time from [`crate::translate::compact_samples`], so a tick
//! never holds its series as families of owned labels and `TimeSeries` structures (~0.8 KB a
//! series, then encoded again); the other resources' series ([`super::encode::to_series`])
//! are written the same way. The bytes are what prost writes for the same `WriteRequest`
//! (fields in tag order, defaults left out), which the tests check.
//!
//! ```text
//! 0a 3c          timeseries (field 1, 60 bytes)
//!   0a 1a        labels: Label { name: "__name__", value: "system_uptime_seconds" }
//!   12 0b        samples: Sample { value (09 …), timestamp (10 …) }
//! ```

use super::encode::proto;
use crate::pipeline::queue::Payload;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message as _;

/// Remote-write bodies being written, each at most `max_batch_bytes` of protobuf before
/// compression (a single series larger than that goes alone).
pub struct Bodies {
    max: usize,
    buf: Vec<u8>,
    points: u64,
    out: Vec<Payload>,
}

/// Bytes of a string field as prost writes it (left out when empty).
fn str_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn write_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.extend_from_slice(s.as_bytes());
    }
}

/// Bytes of a `Sample` body: the value (a double, left out when 0) and the timestamp (an
/// int64 varint, left out when 0).
fn sample_len(value: f64, timestamp: i64) -> usize {
    (if value != 0.0 { 9 } else { 0 }) + if timestamp != 0 { 1 + encoded_len_varint(timestamp as u64) } else { 0 }
}

impl Bodies {
    /// No body yet; bodies of at most `max_batch_bytes` of protobuf.
    pub fn new(max_batch_bytes: usize) -> Self {
        Bodies { max: max_batch_bytes.max(1), buf: Vec::new(), points: 0, out: Vec::new() }
    }

    /// Adds a series of one sample; `labels` are sorted, `__name__` included.
    pub fn push(&mut self, labels: &[(String, String)], value: f64, timestamp: i64) {
        let labels_len: usize = labels.iter().map(|(n, v)| 1 + len_prefixed(str_len(n) + str_len(v))).sum();
        let sample = sample_len(value, timestamp);
        let body = labels_len + 1 + len_prefixed(sample);
        self.make_room(1 + len_prefixed(body));
        let buf = &mut self.buf;
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(body as u64, buf);
        for (n, v) in labels {
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint((str_len(n) + str_len(v)) as u64, buf);
            write_str(1, n, buf);
            write_str(2, v, buf);
        }
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(sample as u64, buf);
        if value != 0.0 {
            prost::encoding::double::encode(1, &value, buf);
        }
        if timestamp != 0 {
            prost::encoding::int64::encode(2, &timestamp, buf);
        }
        self.points += 1;
    }

    /// Adds a series as prost holds it.
    pub fn push_series(&mut self, ts: &proto::TimeSeries) {
        let body = ts.encoded_len();
        self.make_room(1 + len_prefixed(body));
        encode_key(1, WireType::LengthDelimited, &mut self.buf);
        encode_varint(body as u64, &mut self.buf);
        ts.encode_raw(&mut self.buf);
        self.points += ts.samples.len() as u64;
    }

    /// The bodies, snappy-compressed (block format).
    pub fn finish(mut self) -> Vec<Payload> {
        self.flush();
        self.out
    }

    /// Closes the current body when `next` more bytes would take it over the limit.
    fn make_room(&mut self, next: usize) {
        if !self.buf.is_empty() && self.buf.len() + next > self.max {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let body = snap::raw::Encoder::new().compress_vec(&self.buf).expect("remote-write body exceeds snappy's 4 GiB input limit");
        self.out.push(Payload { body: body.into(), points: std::mem::take(&mut self.points) });
        self.buf.clear();
    }
}

/// A length prefix and the `n` bytes after it.
fn len_prefixed(n: usize) -> usize {
    encoded_len_varint(n as u64) + n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::remote_write::encode::{decode, to_write_requests};
    use crate::translate::{Family, Kind, Sample};

    fn family(n: usize) -> Family {
        let samples = (0..n)
            .map(|i| Sample {
                labels: vec![("__name__".into(), "m".into()), ("cpu".into(), i.to_string()), ("empty_is_skipped".into(), String::new())],
                value: if i % 3 == 0 { 0.0 } else { i as f64 * 1.5 },
                timestamp_ms: if i % 5 == 0 { 0 } else { 1_700_000_000_000 + i as i64 },
                start_ms: 0,
            })
            .collect();
        Family { name: "m".into(), kind: Kind::Gauge, help: String::new(), unit: String::new(), samples }
    }

    #[test]
    fn series_written_one_by_one_decode_to_what_prost_encodes_for_the_same_requests() {
        let fam = family(300);
        let max = 2048;
        let want = to_write_requests(vec![fam.clone()], max);
        let mut bodies = Bodies::new(max);
        for s in &fam.samples {
            bodies.push(&s.labels, s.value, s.timestamp_ms);
        }
        let got = bodies.finish();
        assert_eq!(got.len(), want.len(), "the same split");
        for (g, w) in got.iter().zip(&want) {
            let raw = snap::raw::Decoder::new().decompress_vec(&g.body).unwrap();
            assert_eq!(raw, w.encode_to_vec(), "byte for byte");
            assert_eq!(decode(&g.body).unwrap(), *w);
            assert_eq!(g.points, w.timeseries.len() as u64);
        }
    }

    #[test]
    fn prost_series_go_into_the_same_bodies_and_nothing_is_no_body() {
        assert!(Bodies::new(100).finish().is_empty());
        let ts = proto::TimeSeries {
            labels: vec![proto::Label { name: "__name__".into(), value: "x".into() }],
            samples: vec![proto::Sample { value: 1.0, timestamp: 5 }, proto::Sample { value: 2.0, timestamp: 6 }],
        };
        let mut b = Bodies::new(1 << 20);
        b.push(&[("__name__".into(), "y".into())], 3.0, 7);
        b.push_series(&ts);
        let out = b.finish();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].points, 3);
        let req = decode(&out[0].body).unwrap();
        assert_eq!(req.timeseries[1], ts);
        assert_eq!(req.timeseries[0].samples, [proto::Sample { value: 3.0, timestamp: 7 }]);
    }
}
