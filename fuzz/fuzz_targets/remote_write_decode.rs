//! Any bytes as a remote-write body (snappy, then protobuf), and as the protobuf inside one:
//! no panic, no allocation beyond the decoder's bound, and what decodes encodes back to bytes
//! that decode to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::exporters::remote_write::encode::{decode, encode, proto::WriteRequest};
use prost::Message;

fn round_trips(req: &WriteRequest) {
    let body = encode(req, &mut Vec::new());
    let back = decode(&body).expect("an encoded request decodes");
    // Compared as bytes: NaN samples are not equal to themselves.
    assert_eq!(encode(&back, &mut Vec::new()), body);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode(data) {
        round_trips(&req);
    }
    if let Ok(req) = WriteRequest::decode(data) {
        round_trips(&req);
    }
});
