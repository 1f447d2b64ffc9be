//! The bytes of the OTLP/gRPC call. The request is the `ExportMetricsServiceRequest` the queue
//! already holds encoded, as one gRPC length-prefixed message (gRPC over HTTP/2: a compressed
//! flag, a `u32` big-endian length, the message), built on the exporter's thread:
//!
//! ```text
//! 01 00 00 2f 3a  1f 8b 08 00 ...   compressed (gzip or zstd), prefix written first, no copy
//! 0a 9c 7a 0a ...                   `compression: none`: the batch's encoding as it is; the
//!                                   prefix 00 00 00 bd 1c goes in front of it when sent
//! ```
//!
//! The answer, an `ExportMetricsServiceResponse`, is decoded by prost behind tonic's own frame
//! reader ([`ResponseDecoder`], see `grpc_call.rs`).

use super::compress::{compress_with, Compressing};
use super::config::Compression;
use bytes::BufMut as _;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message as _;

/// The gRPC method of OTLP metrics.
pub(super) const EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// The length of a gRPC message prefix: the compressed flag and a `u32` big-endian length.
pub const PREFIX_LEN: usize = 5;

/// The gRPC payload of an encoded request: compressed behind its prefix, or (uncompressed) the
/// encoding itself, shared with the batch.
pub fn grpc_payload(raw: bytes::Bytes, compression: Compression) -> Result<bytes::Bytes, String> {
    if compression == Compression::None {
        return Ok(raw);
    }
    grpc_compressed(&raw, compression)
}

/// The gRPC payload of an encoded request compressed with `compression` (not `None`): one
/// length-prefixed message flagged compressed.
pub fn grpc_compressed(raw: &[u8], compression: Compression) -> Result<bytes::Bytes, String> {
    grpc_compressed_with(compression, |c| {
        c.pledge(raw.len());
        c.put_slice(raw);
    })
}

/// The gRPC payload of what `write` encodes, compressed with `compression` (not `None`) as it
/// is written: the 5-byte prefix, then the compressed message, its length put in the prefix at
/// the end.
pub(super) fn grpc_compressed_with(compression: Compression, write: impl FnOnce(&mut Compressing<'_>)) -> Result<bytes::Bytes, String> {
    let mut out = Vec::new();
    out.extend_from_slice(&[1, 0, 0, 0, 0]);
    compress_with(&mut out, compression, write)?;
    let len = u32::try_from(out.len() - PREFIX_LEN).map_err(|_| format!("a gRPC message holds at most 4 GiB, not {} bytes", out.len()))?;
    out[1..PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(out.into())
}

/// How a payload goes on the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Wire {
    /// A whole length-prefixed message, compressed with this `grpc-encoding` (or not).
    Framed { encoding: Option<&'static str> },
    /// A bare encoded message (`compression: none`, or a spool written before payloads were
    /// framed), sent behind this prefix.
    Bare { prefix: [u8; PREFIX_LEN] },
}

/// What `payload` is. An encoded `ExportMetricsServiceRequest` starts with the tag of its field
/// 1 (`0x0a`) or is empty, never with a flag byte 0 or 1, so the two cannot be confused; a
/// compressed message says by its magic number whether it is gzip or zstd (a spool written
/// under another `compression` is still sent right).
pub fn wire(payload: &[u8]) -> Result<Wire, String> {
    if let [flag @ (0 | 1), a, b, c, d, message @ ..] = payload {
        if u32::from_be_bytes([*a, *b, *c, *d]) as usize == message.len() {
            let encoding = match (flag, message) {
                (0, _) => None,
                (_, [0x1f, 0x8b, ..]) => Some("gzip"),
                (_, [0x28, 0xb5, 0x2f, 0xfd, ..]) => Some("zstd"),
                _ => return Err("a compressed gRPC payload that is neither gzip nor zstd".to_string()),
            };
            return Ok(Wire::Framed { encoding });
        }
    }
    let len = u32::try_from(payload.len()).map_err(|_| format!("a gRPC message holds at most 4 GiB, not {} bytes", payload.len()))?;
    let mut prefix = [0; PREFIX_LEN];
    prefix[1..].copy_from_slice(&len.to_be_bytes());
    Ok(Wire::Bare { prefix })
}

/// The decoder of the answer, under tonic's frame reader: prost.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseDecoder;

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = ExportMetricsServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<ExportMetricsServiceResponse>, tonic::Status> {
        ExportMetricsServiceResponse::decode(src).map(Some).map_err(|e| tonic::Status::internal(format!("the answer is not an OTLP response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::otlp::testutil::big_request;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use std::io::Read as _;

    #[test]
    fn a_compressed_payload_is_one_length_prefixed_message_flagged_compressed() {
        let req = big_request(50);
        let raw: bytes::Bytes = req.encode_to_vec().into();
        let gz = grpc_payload(raw.clone(), Compression::Gzip).unwrap();
        assert_eq!(gz[0], 1);
        assert_eq!(u32::from_be_bytes(gz[1..5].try_into().unwrap()) as usize, gz.len() - 5);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[5..]).read_to_end(&mut back).unwrap();
        assert_eq!(ExportMetricsServiceRequest::decode(back.as_slice()).unwrap(), req);
        assert_eq!(wire(&gz), Ok(Wire::Framed { encoding: Some("gzip") }));

        let zs = grpc_payload(raw.clone(), Compression::Zstd).unwrap();
        assert_eq!(zstd::bulk::decompress(&zs[5..], raw.len()).unwrap(), raw);
        assert_eq!(wire(&zs), Ok(Wire::Framed { encoding: Some("zstd") }));
    }

    #[test]
    fn an_uncompressed_payload_is_the_shared_encoding_sent_behind_a_prefix() {
        let raw: bytes::Bytes = big_request(3).encode_to_vec().into();
        let p = grpc_payload(raw.clone(), Compression::None).unwrap();
        assert_eq!(p.as_ptr(), raw.as_ptr(), "not copied");
        let n = (raw.len() as u32).to_be_bytes();
        assert_eq!(wire(&p), Ok(Wire::Bare { prefix: [0, n[0], n[1], n[2], n[3]] }));
        assert_eq!(wire(b""), Ok(Wire::Bare { prefix: [0; 5] }));
        // Framed by hand, uncompressed: sent as it is.
        let mut framed = vec![0, n[0], n[1], n[2], n[3]];
        framed.extend_from_slice(&raw);
        assert_eq!(wire(&framed), Ok(Wire::Framed { encoding: None }));
    }

    #[test]
    fn a_compressed_payload_of_unknown_compression_is_refused_and_a_wrong_length_is_not_a_frame() {
        assert!(wire(&[1, 0, 0, 0, 3, 9, 9, 9]).is_err());
        // The length does not match: not a frame, so a bare message.
        assert!(matches!(wire(&[1, 0, 0, 0, 9, 0x1f, 0x8b]), Ok(Wire::Bare { prefix: [0, 0, 0, 0, 7] })));
    }
}
