//! A one-pass deflate encoder (RFC 1951) for request bodies: LZ77 matches found through a
//! small hash table, written in one block with the fixed Huffman codes (§3.2.6), or as stored
//! blocks (§3.2.4) when that would be smaller.
//!
//! ```text
//! BFINAL=1 BTYPE=01 | literal 'm' (8 bits) ... | length 5 + distance 37 | ... | end of block (256)
//! ```
//!
//! Why not zlib-rs (flate2) here: measured inside a running agent, gzip of a tick's ~19 KB
//! body took ~87 µs, a seventh of the tick, most of it clearing and then missing in zlib-rs's
//! 128 KiB hash table as a tick finds the caches. This encoder's 16 KiB table is never
//! cleared (positions are stored offset by a base that moves past each body) and writes that
//! body in the same size (4 979 against 4 967 bytes). `cargo bench --bench hot_paths --
//! encode/` on the bench's 5.9 KB body: 10.4 µs against zlib-rs's 15.7 µs (deflate alone)
//! warm, 25.9 against 35.5 µs with the caches evicted. Metric payloads are names and
//! attribute keys repeated: fixed codes lose little to dynamic ones on them, and nothing here
//! needs more than zlib's level 1. Bodies are decoded by flate2 and GNU gzip in the tests.

/// Hash table size (log2): 4096 entries of 4 bytes.
const HASH_BITS: u32 = 12;
/// Farthest back a match may point (the deflate window).
const WINDOW: usize = 32 * 1024;
/// Shortest match looked for: the hash covers 4 bytes.
const MIN_MATCH: usize = 4;
/// Longest match deflate can say.
const MAX_MATCH: usize = 258;
/// Largest stored block.
const STORED_MAX: usize = 65_535;

/// The encoder's state, kept between bodies.
pub struct Deflate {
    /// Per hash of 4 bytes: `base + position + 1` of the last place they were seen; entries
    /// not above `base` are from earlier bodies, so the table is never cleared.
    table: Vec<u32>,
    base: u32,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate { table: vec![0; 1 << HASH_BITS], base: 0 }
    }
}

/// A little-endian bit writer (deflate packs from the least significant bit).
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits<'_> {
    #[inline(always)]
    fn put(&mut self, value: u32, len: u8) {
        self.acc |= u64::from(value) << self.n;
        self.n += u32::from(len);
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    fn finish(self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// `code`'s lowest `len` bits in reverse order: Huffman codes are sent most significant bit
/// first into the least-significant-first stream.
const fn reverse(code: u32, len: u32) -> u32 {
    let (mut c, mut r, mut i) = (code, 0, 0);
    while i < len {
        r = (r << 1) | (c & 1);
        c >>= 1;
        i += 1;
    }
    r
}

/// The fixed literal/length code (§3.2.6), bit-reversed, with its length, per symbol 0..=287.
const LITLEN: [(u16, u8); 288] = {
    let mut t = [(0u16, 0u8); 288];
    let mut s = 0;
    while s < 288 {
        let (code, len) = match s {
            0..=143 => (0x30 + s as u32, 8),
            144..=255 => (0x190 + s as u32 - 144, 9),
            256..=279 => (s as u32 - 256, 7),
            _ => (0xC0 + s as u32 - 280, 8),
        };
        t[s] = (reverse(code, len) as u16, len as u8);
        s += 1;
    }
    t
};

const LEN_BASE: [u16; 29] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE: [u16; 30] =
    [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA: [u8; 30] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// The length code (0..=28, symbol 257 + it) of each match length 3..=258.
const LEN_CODE: [u8; 259] = {
    let mut t = [0u8; 259];
    let (mut c, mut len) = (0, 3);
    while len <= 258 {
        while c + 1 < 29 && LEN_BASE[c + 1] as usize <= len {
            c += 1;
        }
        t[len] = c as u8;
        len += 1;
    }
    t
};

/// The distance code (0..=29) of a distance 1..=32768: two codes per power of two past 4.
#[inline(always)]
fn dist_code(d: usize) -> usize {
    if d <= 4 {
        d - 1
    } else {
        let log = (usize::BITS - 1 - (d - 1).leading_zeros()) as usize;
        2 * log + (((d - 1) >> (log - 1)) & 1)
    }
}

#[inline(always)]
fn load4(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn hash(w: u32) -> usize {
    (w.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// How many bytes from `a` and `b` on agree in `input`, up to `max`.
#[inline(always)]
fn match_len(input: &[u8], a: usize, b: usize, max: usize) -> usize {
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_le_bytes(input[a + n..a + n + 8].try_into().unwrap()) ^ u64::from_le_bytes(input[b + n..b + n + 8].try_into().unwrap());
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && input[a + n] == input[b + n] {
        n += 1;
    }
    n
}

impl Deflate {
    /// Appends `input` as a complete raw deflate stream to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if u64::from(self.base) + input.len() as u64 + 2 >= u64::from(u32::MAX) {
            self.table.fill(0);
            self.base = 0;
        }
        self.fixed_block(input, out);
        self.base += input.len() as u32 + 1;
        // Incompressible input grows under fixed codes (9 bits for bytes 144–255): stored
        // blocks cost 5 bytes per 64 KiB instead.
        let stored = input.len() + 5 * input.len().div_ceil(STORED_MAX).max(1);
        if out.len() - start > stored {
            out.truncate(start);
            stored_blocks(input, out);
        }
    }

    fn fixed_block(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 3 + 64);
        let base = self.base;
        let mut bits = Bits { out, acc: 0, n: 0 };
        bits.put(0b011, 3); // BFINAL = 1, BTYPE = 01 (fixed Huffman codes)
        let literal = |bits: &mut Bits, byte: u8| {
            let (code, len) = LITLEN[byte as usize];
            bits.put(u32::from(code), len);
        };
        let n = input.len();
        let mut i = 0;
        while i + MIN_MATCH <= n {
            let word = load4(input, i);
            let slot = &mut self.table[hash(word)];
            let candidate = *slot;
            *slot = base + i as u32 + 1;
            if candidate > base {
                let at = (candidate - base - 1) as usize;
                let distance = i - at;
                if distance <= WINDOW && load4(input, at) == word {
                    let len = MIN_MATCH + match_len(input, at + MIN_MATCH, i + MIN_MATCH, (n - i).min(MAX_MATCH) - MIN_MATCH);
                    let lc = LEN_CODE[len] as usize;
                    let (code, clen) = LITLEN[257 + lc];
                    bits.put(u32::from(code), clen);
                    bits.put((len - LEN_BASE[lc] as usize) as u32, LEN_EXTRA[lc]);
                    let dc = dist_code(distance);
                    bits.put(reverse(dc as u32, 5), 5);
                    bits.put((distance - DIST_BASE[dc] as usize) as u32, DIST_EXTRA[dc]);
                    // The match's last position goes into the table too: the next field of a
                    // repeated record often starts right after it.
                    let last = i + len - 1;
                    if last + MIN_MATCH <= n && len > MIN_MATCH {
                        self.table[hash(load4(input, last))] = base + last as u32 + 1;
                    }
                    i += len;
                    continue;
                }
            }
            literal(&mut bits, input[i]);
            i += 1;
        }
        for &byte in &input[i..] {
            literal(&mut bits, byte);
        }
        let (code, len) = LITLEN[256];
        bits.put(u32::from(code), len);
        bits.finish();
    }
}

/// `input` as stored blocks (at least one, so empty input is a valid stream too).
fn stored_blocks(input: &[u8], out: &mut Vec<u8>) {
    let mut chunks = input.chunks(STORED_MAX).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last)); // BFINAL, BTYPE = 00, padding to the byte
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(raw: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(raw).read_to_end(&mut back).expect("a valid deflate stream");
        back
    }

    fn round_trip(d: &mut Deflate, input: &[u8]) -> usize {
        let mut out = vec![0xAA]; // compress appends
        d.compress(input, &mut out);
        assert_eq!(inflate(&out[1..]), input, "round trip of {} bytes", input.len());
        out.len() - 1
    }

    #[test]
    fn the_code_tables_match_rfc_1951() {
        // §3.2.6: literal 0 is 00110000, 144 is 110010000, 256 is 0000000, 280 is 11000000.
        assert_eq!(LITLEN[0], (reverse(0b0011_0000, 8) as u16, 8));
        assert_eq!(LITLEN[144], (reverse(0b1_1001_0000, 9) as u16, 9));
        assert_eq!(LITLEN[256], (0, 7));
        assert_eq!(LITLEN[287], (reverse(0b1100_0111, 8) as u16, 8));
        // §3.2.5: lengths 3 → 257, 10 → 264, 11–12 → 265, 227–257 → 284, 258 → 285.
        assert_eq!([3, 10, 11, 12, 13, 227, 257, 258].map(|l| 257 + LEN_CODE[l] as usize), [257, 264, 265, 265, 266, 284, 284, 285]);
        // distances 1–4 → 0–3, 5–6 → 4, 7–8 → 5, 24577–32768 → 29.
        assert_eq!([1, 4, 5, 6, 7, 8, 9, 24_576, 24_577, 32_768].map(dist_code), [0, 3, 4, 4, 5, 5, 6, 28, 29, 29]);
        for d in 1..=WINDOW {
            let c = dist_code(d);
            assert!(DIST_BASE[c] as usize <= d && d - (DIST_BASE[c] as usize) < 1 << DIST_EXTRA[c], "distance {d} → code {c}");
        }
    }

    #[test]
    fn any_input_inflates_back_to_itself_on_one_kept_state() {
        let mut d = Deflate::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let random: Vec<u8> = (0..200_000).map(|_| rng.u8(..)).collect();
        let text = "system.cpu.time{cpu.mode=\"user\",cpu.logical_number=\"1\"} 1234.5\n".repeat(3000).into_bytes();
        let runs = [vec![0u8; 100_000], vec![b'a'; 259], vec![b'a'; 258 * 3 + 2]].concat();
        // Few symbols, many short matches at every distance up to past the window.
        let small_alphabet: Vec<u8> = (0..150_000).map(|_| b"abc"[rng.usize(..3)]).collect();
        let far: Vec<u8> = [&random[..40_000], &random[..40_000]].concat();
        for input in [&b""[..], b"x", b"abcd", b"abcdabcdabcd", &text, &random, &runs, &small_alphabet, &far, &text] {
            round_trip(&mut d, input);
        }
        for len in 0..300 {
            round_trip(&mut d, &text[..len]);
            round_trip(&mut d, &random[..len]);
        }
    }

    #[test]
    fn gnu_gzip_decodes_our_gzip_bodies() {
        // An independent inflater: GNU gzip (in every Debian base system), not flate2.
        let mut rng = fastrand::Rng::with_seed(3);
        let text: String = (0..3000).map(|i| format!("metricsd.collector.duration{{metricsd.collector=\"c{}\"}} {}\n", i % 13, i * 31)).collect();
        let random: Vec<u8> = (0..70_000).map(|_| rng.u8(..)).collect();
        for body in [text.as_bytes(), &random, b""] {
            let mut child = std::process::Command::new("gzip")
                .arg("-dc")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("gzip(1) runs");
            let gz = crate::http::gzip(body);
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &gz));
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap().unwrap();
            assert!(out.status.success(), "gzip -dc failed on a {}-byte body: {}", body.len(), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout, body);
        }
    }

    #[test]
    fn incompressible_input_is_stored_and_grows_by_five_bytes_per_64_kib() {
        let mut rng = fastrand::Rng::with_seed(1);
        let random: Vec<u8> = (0..150_000).map(|_| rng.u8(..)).collect();
        assert_eq!(round_trip(&mut Deflate::default(), &random), 150_000 + 3 * 5);
        assert_eq!(round_trip(&mut Deflate::default(), b""), 2, "an empty fixed block: 3 + 7 bits");
    }

    #[test]
    fn repetitive_metric_text_compresses_as_well_as_zlib_level_1() {
        let text: String = (0..2000)
            .map(|i| format!("system.network.io{{network.interface.name=\"eth{}\",network.io.direction=\"receive\"}} {}\n", i % 7, i * 7919))
            .collect();
        let ours = round_trip(&mut Deflate::default(), text.as_bytes());
        let mut zlib = Vec::with_capacity(text.len());
        flate2::Compress::new(flate2::Compression::fast(), false).compress_vec(text.as_bytes(), &mut zlib, flate2::FlushCompress::Finish).unwrap();
        assert!(ours * 100 < zlib.len() * 115, "ours {ours} bytes, zlib level 1 {}", zlib.len());
    }

    #[test]
    fn the_table_is_cleared_only_when_the_positions_would_overflow() {
        let mut d = Deflate { base: u32::MAX - 10, ..Deflate::default() };
        d.table[5] = u32::MAX - 3;
        round_trip(&mut d, b"abcdabcdabcdabcd");
        assert_eq!(d.base, 17, "restarted from 0 after the body");
        round_trip(&mut d, b"abcdabcdabcdabcd");
        assert_eq!(d.base, 34);
    }
}
