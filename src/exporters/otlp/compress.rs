//! A payload's compression, on the exporter's thread, with the compressor's state kept
//! per thread and reset for each body (gzip: raw deflate at [`crate::http::GZIP_LEVEL`] in
//! gzip's framing; zstd: one streaming encoder at level [`ZSTD_LEVEL`]). A batch is encoded
//! straight into the compressor ([`Compressing`], [`CHUNK`] bytes at a time), so its
//! uncompressed encoding never exists whole. The output is appended to a buffer the
//! caller may have started with a frame header, so gRPC's 5-byte prefix costs no copy:
//!
//! ```text
//! [0x01, 0x00, 0x00, 0x2f, 0x3a]  [1f 8b 08 00 ... gzip member of 12 090 bytes]
//!  flag  length (u32 big-endian)   the compressed ExportMetricsServiceRequest
//! ```

use super::config::Compression;
use bytes::buf::UninitSlice;
use bytes::BufMut;
use zstd::stream::raw::{InBuffer, Operation as _, OutBuffer};

/// The zstd level of request bodies (zstd's default; what the HTTP path always used).
pub const ZSTD_LEVEL: i32 = 3;

/// Bytes of encoding held before they are compressed: small enough to stay in the CPU's cache,
/// large enough that the compressor is called a few times a batch.
pub const CHUNK: usize = 32 * 1024;

/// Appends `raw` compressed with `compression` to `out` (`None` appends it as it is).
pub(super) fn compress_into(out: &mut Vec<u8>, raw: &[u8], compression: Compression) -> Result<(), String> {
    if compression == Compression::None {
        out.extend_from_slice(raw);
        return Ok(());
    }
    compress_with(out, compression, |c| {
        c.pledge(raw.len());
        c.put_slice(raw);
    })
}

/// Appends to `out` what `write` writes into the [`Compressing`] sink, compressed with
/// `compression` (`None` appends it as it is): an encoder writes a batch straight into the
/// compressor, so the batch's encoding is never whole in memory.
pub(super) fn compress_with(out: &mut Vec<u8>, compression: Compression, write: impl FnOnce(&mut Compressing<'_>)) -> Result<(), String> {
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<zstd::stream::raw::Encoder<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let start = out.len();
    let result = match compression {
        Compression::None => Compressing::run(out, Codec::None, write),
        Compression::Gzip => {
            out.extend_from_slice(&crate::http::GZIP_HEADER);
            crate::http::with_deflate(|d| Compressing::run(out, Codec::Gzip { deflate: d, crc: crc32fast::Hasher::new(), len: 0 }, write))
        }
        Compression::Zstd => ZSTD.with(|z| {
            let mut z = z.borrow_mut();
            if z.is_none() {
                *z = Some(zstd::stream::raw::Encoder::new(ZSTD_LEVEL).map_err(|e| format!("zstd: {e}"))?);
            }
            let Some(z) = z.as_mut() else { return Err("zstd: no compressor".to_string()) };
            z.reinit().map_err(|e| format!("zstd: {e}"))?;
            Compressing::run(out, Codec::Zstd(z), write)
        }),
    };
    if result.is_err() {
        out.truncate(start);
    }
    // Deflate grows the buffer ahead of its output: give the rest back before the payload waits
    // in the queue (shrinking reallocates in place).
    if out.capacity() - out.len() > out.len() / 8 {
        out.shrink_to_fit();
    }
    result
}

enum Codec<'a> {
    None,
    /// Raw deflate in gzip's framing: the CRC-32 and length of the input go in the trailer.
    Gzip {
        deflate: &'a mut flate2::Compress,
        crc: crc32fast::Hasher,
        len: u32,
    },
    Zstd(&'a mut zstd::stream::raw::Encoder<'static>),
}

/// A [`BufMut`] that compresses what is written into it, [`CHUNK`] bytes at a time, appending
/// the output to a buffer. The first error stops the compression; [`compress_with`] returns it.
pub struct Compressing<'a> {
    out: &'a mut Vec<u8>,
    chunk: Vec<u8>,
    codec: Codec<'a>,
    error: Option<String>,
}

impl<'a> Compressing<'a> {
    fn run(out: &'a mut Vec<u8>, codec: Codec<'a>, write: impl FnOnce(&mut Compressing<'_>)) -> Result<(), String> {
        let mut c = Compressing { out, chunk: Vec::with_capacity(CHUNK), codec, error: None };
        write(&mut c);
        c.finish()
    }

    /// Tells the compressor how many bytes will be written (zstd sizes its tables by it, and
    /// checks it at the end); call it before writing.
    pub fn pledge(&mut self, len: usize) {
        if let Codec::Zstd(z) = &mut self.codec {
            if let Err(e) = z.set_pledged_src_size(Some(len as u64)) {
                self.error.get_or_insert(format!("zstd: {e}"));
            }
        }
    }

    fn flush(&mut self) {
        let chunk = std::mem::take(&mut self.chunk);
        self.feed(&chunk);
        self.chunk = chunk;
        self.chunk.clear();
    }

    /// Compresses `data` into the output.
    fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        let out = &mut *self.out;
        let r = match &mut self.codec {
            Codec::None => {
                out.extend_from_slice(data);
                Ok(())
            }
            Codec::Gzip { deflate, crc, len } => {
                crc.update(data);
                *len = len.wrapping_add(data.len() as u32);
                let start = deflate.total_in();
                loop {
                    let consumed = (deflate.total_in() - start) as usize;
                    if consumed >= data.len() {
                        break Ok(());
                    }
                    out.reserve((data.len() - consumed) / 2 + 1024);
                    let (was_in, was_out) = (deflate.total_in(), deflate.total_out());
                    if let Err(e) = deflate.compress_vec(&data[consumed..], out, flate2::FlushCompress::None) {
                        break Err(format!("gzip: {e}"));
                    }
                    if (was_in, was_out) == (deflate.total_in(), deflate.total_out()) {
                        break Err("gzip: deflate made no progress".to_string());
                    }
                }
            }
            Codec::Zstd(z) => {
                let mut input = InBuffer::around(data);
                loop {
                    if input.pos() >= data.len() {
                        break Ok(());
                    }
                    out.reserve((data.len() - input.pos()) / 2 + 1024);
                    let pos = out.len();
                    let mut output = OutBuffer::around_pos(out, pos);
                    if let Err(e) = z.run(&mut input, &mut output) {
                        break Err(format!("zstd: {e}"));
                    }
                }
            }
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    /// Compresses what is left and ends the stream.
    fn finish(mut self) -> Result<(), String> {
        self.flush();
        if let Some(e) = self.error {
            return Err(e);
        }
        let out = self.out;
        match self.codec {
            Codec::None => Ok(()),
            Codec::Gzip { deflate, crc, len } => {
                loop {
                    out.reserve(1024);
                    match deflate.compress_vec(&[], out, flate2::FlushCompress::Finish) {
                        Ok(flate2::Status::StreamEnd) => break,
                        Ok(_) => continue,
                        Err(e) => return Err(format!("gzip: {e}")),
                    }
                }
                out.extend_from_slice(&crc.finalize().to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
                Ok(())
            }
            Codec::Zstd(z) => loop {
                out.reserve(1024);
                let pos = out.len();
                let mut output = OutBuffer::around_pos(out, pos);
                match z.finish(&mut output, true) {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(format!("zstd: {e}")),
                }
            },
        }
    }
}

// SAFETY: every method hands on to the chunk `Vec<u8>`'s own `BufMut`, after emptying the chunk
// into the compressor when it is full (so `Vec` never needs to grow, and never does beyond
// `CHUNK` bytes).
unsafe impl BufMut for Compressing<'_> {
    fn remaining_mut(&self) -> usize {
        isize::MAX as usize - self.chunk.len()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of the chunk `chunk_mut` returned, which
        // is the chunk `Vec`'s own spare capacity.
        unsafe { self.chunk.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.chunk.len() >= CHUNK {
            self.flush();
        }
        self.chunk.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if self.chunk.len() + src.len() > CHUNK {
            self.flush();
            if src.len() > CHUNK {
                return self.feed(src);
            }
        }
        self.chunk.extend_from_slice(src);
    }

    fn put_u8(&mut self, n: u8) {
        if self.chunk.len() >= CHUNK {
            self.flush();
        }
        self.chunk.push(n);
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

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(b).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn what_is_written_into_the_sink_byte_by_byte_or_in_slices_across_many_chunks_decompresses_to_the_same_bytes() {
        let raw = sample();
        assert!(raw.len() > 10 * CHUNK);
        // The ways prost writes: single bytes (varints), short and long slices, and the chunk
        // handed out by chunk_mut.
        let write = |c: &mut Compressing<'_>| {
            c.pledge(raw.len());
            let mut rest = &raw[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = [1, 7, 300, 3 * CHUNK + 5, 1000][i % 5].min(rest.len());
                match i % 3 {
                    0 if n == 1 => c.put_u8(rest[0]),
                    1 => {
                        let dst = c.chunk_mut();
                        let k = n.min(dst.len());
                        dst[..k].copy_from_slice(&rest[..k]);
                        // SAFETY: k bytes of the chunk were just written.
                        unsafe { c.advance_mut(k) };
                        rest = &rest[k..];
                        i += 1;
                        continue;
                    }
                    _ => c.put_slice(&rest[..n]),
                }
                rest = &rest[n..];
                i += 1;
            }
        };
        for round in 0..2 {
            let mut out = vec![9];
            compress_with(&mut out, Compression::Gzip, write).unwrap();
            assert_eq!(gunzip(&out[1..]), raw, "gzip, round {round}");
            let mut out = vec![9];
            compress_with(&mut out, Compression::Zstd, write).unwrap();
            assert_eq!(zstd::bulk::decompress(&out[1..], raw.len()).unwrap(), raw, "zstd, round {round}");
            let mut out = vec![9];
            compress_with(&mut out, Compression::None, write).unwrap();
            assert_eq!(&out[1..], &raw[..]);
        }
    }

    #[test]
    fn a_zstd_body_longer_or_shorter_than_pledged_is_an_error_and_leaves_the_buffer_as_it_was() {
        let mut out = b"HEAD".to_vec();
        let e = compress_with(&mut out, Compression::Zstd, |c| {
            c.pledge(10);
            c.put_slice(b"only five");
            c.put_slice(b" more than ten");
        })
        .unwrap_err();
        assert!(e.starts_with("zstd: "), "{e}");
        assert_eq!(out, b"HEAD");
        // The kept encoder works again after the error.
        compress_into(&mut out, b"abc", Compression::Zstd).unwrap();
        assert_eq!(zstd::bulk::decompress(&out[4..], 3).unwrap(), b"abc");
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
