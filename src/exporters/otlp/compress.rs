//! A payload's compression, on the exporter's encoder thread, with the compressor's state kept
//! per thread and reset for each body (gzip: [`crate::http::gzip_into`]; zstd: one
//! `zstd::bulk::Compressor` at level [`ZSTD_LEVEL`]). The output is appended to a buffer the
//! caller may have started with a frame header, so gRPC's 5-byte prefix costs no copy:
//!
//! ```text
//! [0x01, 0x00, 0x00, 0x2f, 0x3a]  [1f 8b 08 00 ... gzip member of 12 090 bytes]
//!  flag  length (u32 big-endian)   the compressed ExportMetricsServiceRequest
//! ```

use super::config::Compression;

/// The zstd level of request bodies (zstd's default; what the HTTP path always used).
pub const ZSTD_LEVEL: i32 = 3;

/// Appends `raw` compressed with `compression` to `out` (`None` appends it as it is).
pub(super) fn compress_into(out: &mut Vec<u8>, raw: &[u8], compression: Compression) -> Result<(), String> {
    match compression {
        Compression::None => out.extend_from_slice(raw),
        Compression::Gzip => crate::http::gzip_into(out, raw),
        Compression::Zstd => zstd_into(out, raw)?,
    }
    // Deflate grows the buffer ahead of its output and zstd needs its worst-case bound: give the
    // rest back before the payload waits in the queue (shrinking reallocates in place).
    if out.capacity() - out.len() > out.len() / 8 {
        out.shrink_to_fit();
    }
    Ok(())
}

fn zstd_into(out: &mut Vec<u8>, raw: &[u8]) -> Result<(), String> {
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let start = out.len();
    let bound = start.checked_add(zstd::compress_bound(raw.len())).ok_or("zstd: payload too large")?;
    out.resize(bound, 0);
    let written = ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        if z.is_none() {
            *z = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| format!("zstd: {e}"))?);
        }
        let Some(z) = z.as_mut() else { return Err("zstd: no compressor".to_string()) };
        z.compress_to_buffer(raw, &mut out[start..]).map_err(|e| format!("zstd: {e}"))
    });
    match written {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn sample() -> Vec<u8> {
        (0..20_000u32).flat_map(|i| format!("system.cpu.time{{cpu={}}} {i};", i % 64).into_bytes()).collect()
    }

    #[test]
    fn gzip_and_zstd_output_follows_what_the_caller_wrote_and_decompresses_to_the_input() {
        let raw = sample();
        for _ in 0..2 {
            // Twice: the kept state is reset between bodies.
            let mut out = b"HEAD!".to_vec();
            compress_into(&mut out, &raw, Compression::Gzip).unwrap();
            assert_eq!(&out[..5], b"HEAD!");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[5..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, raw);
            assert!(out.len() < raw.len() / 4, "{} of {}", out.len(), raw.len());

            let mut out = b"HEAD!".to_vec();
            compress_into(&mut out, &raw, Compression::Zstd).unwrap();
            assert_eq!(&out[..5], b"HEAD!");
            assert_eq!(zstd::bulk::decompress(&out[5..], raw.len()).unwrap(), raw);
            assert!(out.capacity() - out.len() <= out.len() / 8, "spare capacity given back: {} of {}", out.capacity(), out.len());
        }
        let mut out = vec![7];
        compress_into(&mut out, b"abc", Compression::None).unwrap();
        assert_eq!(out, b"\x07abc");
    }

    #[test]
    fn an_empty_body_compresses_to_a_valid_empty_stream() {
        let mut out = Vec::new();
        compress_into(&mut out, b"", Compression::Zstd).unwrap();
        assert!(zstd::bulk::decompress(&out, 16).unwrap().is_empty());
        let mut out = Vec::new();
        compress_into(&mut out, b"", Compression::Gzip).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(out.as_slice()).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
