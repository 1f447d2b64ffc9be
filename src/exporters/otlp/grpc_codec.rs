//! The tonic codec of the OTLP/gRPC call: the request is the `ExportMetricsServiceRequest`
//! the queue already holds encoded (sent as it is, not decoded and encoded again), the answer an
//! `ExportMetricsServiceResponse` decoded by prost.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message as _;

/// The gRPC method of OTLP metrics.
pub(super) const EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// A tonic codec whose request is an `ExportMetricsServiceRequest` already encoded (the bytes
/// the queue holds) and whose answer is decoded as `ExportMetricsServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreEncoded;

/// The encoder of [`PreEncoded`]: copies the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreEncodedEncoder;

/// The decoder of [`PreEncoded`]: prost.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseDecoder;

impl tonic::codec::Codec for PreEncoded {
    type Encode = bytes::Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = PreEncodedEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl tonic::codec::Encoder for PreEncodedEncoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: bytes::Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = ExportMetricsServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<ExportMetricsServiceResponse>, tonic::Status> {
        ExportMetricsServiceResponse::decode(src).map(Some).map_err(|e| tonic::Status::internal(format!("the answer is not an OTLP response: {e}")))
    }
}
