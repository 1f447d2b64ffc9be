//! The spool's on-disk record format: how a payload is framed in a segment file, its checksum,
//! checking and counting the records of a segment's bytes, and what a damaged region looks like.
//!
//! A segment file (`00000001.seg`, …) is a sequence of records, little-endian:
//!
//! ```text
//! [magic u32 = "MSR1"][len u32][crc32 u32][points u64][payload: len bytes]
//! 4d 53 52 31  05 00 00 00  xx xx xx xx  03 00 00 00 00 00 00 00  68 65 6c 6c 6f
//!                                        (the payload `hello`, 3 points)
//! ```
//!
//! The checksum is CRC-32 (IEEE, `crc32fast`) over `len`, `points` and the payload, so a damaged
//! length or point count is caught as well as a damaged body.
//!
//! What damage looks like: a region that does not start with a valid record (wrong magic, a
//! length over the bound, a wrong checksum) is [`SkipKind::Corrupt`]; reading goes on at the
//! next offset that holds the magic and a valid record, or skips to the segment's end if none
//! does. A segment that ends inside a record (a header or payload cut short by a crash or power
//! loss, with nothing valid after it) ends in a [`SkipKind::Torn`] region. Skipped regions are
//! reported as [`Skipped`], never sent, and the records around them are kept.

use super::segments::segment_name;

pub(super) const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"MSR1");
/// Bytes before a record's payload.
pub const HEADER_BYTES: u64 = 20;

/// Why a region of a segment was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// The segment ends inside a record (a write cut short by a crash or power loss).
    Torn,
    /// A record's magic, length or checksum is wrong.
    Corrupt,
}

/// A region of a segment that held no valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Segment id.
    pub segment: u64,
    /// Offset where the bad region starts.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
    /// Torn tail or corrupt record.
    pub kind: SkipKind,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            SkipKind::Torn => "torn record at the end",
            SkipKind::Corrupt => "corrupt record",
        };
        write!(f, "{what} of {} at offset {} ({} bytes skipped)", segment_name(self.segment), self.offset, self.bytes)
    }
}

pub(super) fn record_crc(len: &[u8], points: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(points);
    h.update(payload);
    h.finalize()
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes one record.
pub(super) fn encode_record(body: &[u8], points: u64) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    let pts = points.to_le_bytes();
    let mut buf = Vec::with_capacity(HEADER_BYTES as usize + body.len());
    buf.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&record_crc(&len, &pts, body).to_le_bytes());
    buf.extend_from_slice(&pts);
    buf.extend_from_slice(body);
    buf
}

pub(super) enum Parsed {
    /// A valid record: payload length and points.
    Ok { len: u64, points: u64 },
    /// The bytes end before the record does.
    Incomplete,
    /// Wrong magic, length or checksum.
    Bad,
}

/// Checks the record at `off` of `buf` (`buf` ends where the segment ends).
pub(super) fn parse(buf: &[u8], off: usize, max_len: u64) -> Parsed {
    let rest = &buf[off.min(buf.len())..];
    if rest.len() < HEADER_BYTES as usize {
        // A header cut short, unless what is there already cannot be a header.
        let magic = RECORD_MAGIC.to_le_bytes();
        return if rest.iter().zip(magic.iter()).all(|(a, b)| a == b) { Parsed::Incomplete } else { Parsed::Bad };
    }
    if u32_at(rest, 0) != RECORD_MAGIC {
        return Parsed::Bad;
    }
    let len = u32_at(rest, 4) as u64;
    if len > max_len {
        return Parsed::Bad;
    }
    let end = HEADER_BYTES + len;
    if (rest.len() as u64) < end {
        return Parsed::Incomplete;
    }
    let crc = u32_at(rest, 8);
    if record_crc(&rest[4..8], &rest[12..20], &rest[HEADER_BYTES as usize..end as usize]) != crc {
        return Parsed::Bad;
    }
    Parsed::Ok { len, points: u64_at(rest, 12) }
}

/// The offset of the first valid record at or after `from`, if any.
pub(super) fn resync(buf: &[u8], from: usize, max_len: u64) -> Option<usize> {
    let magic = RECORD_MAGIC.to_le_bytes();
    let mut i = from;
    while i + HEADER_BYTES as usize <= buf.len() {
        let next = buf[i..].iter().position(|&b| b == magic[0])? + i;
        if next + HEADER_BYTES as usize > buf.len() {
            return None;
        }
        if buf[next..next + 4] == magic && matches!(parse(buf, next, max_len), Parsed::Ok { .. }) {
            return Some(next);
        }
        i = next + 1;
    }
    None
}

/// Skips the bad region at `off`: returns the offset of the next valid record (or the end) and
/// what was skipped.
pub(super) fn skip_bad(buf: &[u8], off: usize, segment: u64, max_len: u64, incomplete: bool) -> (usize, Skipped) {
    match resync(buf, off + 1, max_len) {
        Some(n) => (n, Skipped { segment, offset: off as u64, bytes: (n - off) as u64, kind: SkipKind::Corrupt }),
        None => {
            let kind = if incomplete { SkipKind::Torn } else { SkipKind::Corrupt };
            (buf.len(), Skipped { segment, offset: off as u64, bytes: (buf.len() - off) as u64, kind })
        }
    }
}

/// Counts the valid records of `buf` from `start`, noting bad regions.
pub(super) fn scan(buf: &[u8], start: usize, segment: u64, max_len: u64, skipped: &mut Vec<Skipped>) -> (u64, u64) {
    let (mut records, mut points, mut off) = (0u64, 0u64, start);
    while off < buf.len() {
        match parse(buf, off, max_len) {
            Parsed::Ok { len, points: p } => {
                records += 1;
                // A record's point count is read from disk: add without overflowing.
                points = points.saturating_add(p);
                off += (HEADER_BYTES + len) as usize;
            }
            bad => {
                let (next, s) = skip_bad(buf, off, segment, max_len, matches!(bad, Parsed::Incomplete));
                skipped.push(s);
                off = next;
            }
        }
    }
    (records, points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_record_has_the_documented_layout_and_parses_back() {
        let rec = encode_record(b"hello", 3);
        assert_eq!(&rec[..4], b"MSR1");
        assert_eq!(&rec[4..8], &[5, 0, 0, 0]);
        assert_eq!(&rec[12..20], &[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&rec[20..], b"hello");
        assert_eq!(rec.len() as u64, HEADER_BYTES + 5);
        assert!(matches!(parse(&rec, 0, 1 << 20), Parsed::Ok { len: 5, points: 3 }));
    }

    #[test]
    fn a_record_cut_short_is_incomplete_and_a_damaged_one_is_bad() {
        let rec = encode_record(b"hello", 3);
        assert!(matches!(parse(&rec[..10], 0, 1 << 20), Parsed::Incomplete), "a header cut short");
        assert!(matches!(parse(&rec[..22], 0, 1 << 20), Parsed::Incomplete), "a payload cut short");
        assert!(matches!(parse(&rec, 0, 4), Parsed::Bad), "a length over the bound");
        // (A damaged length that points past the segment's end reads as a torn record.)
        for at in [0, 9, 13, 21] {
            let mut bad = rec.clone();
            bad[at] ^= 0x40;
            assert!(matches!(parse(&bad, 0, 1 << 20), Parsed::Bad), "byte {at} flipped");
        }
    }

    #[test]
    fn scanning_a_segment_counts_good_records_and_reports_a_corrupt_one_and_a_torn_tail() {
        let mut seg = encode_record(b"one", 1);
        let corrupt_at = seg.len();
        let mut bad = encode_record(b"two", 2);
        bad[21] ^= 1;
        seg.extend_from_slice(&bad);
        seg.extend_from_slice(&encode_record(b"three", 4));
        let torn_at = seg.len();
        seg.extend_from_slice(&encode_record(b"four", 8)[..12]);
        let mut skipped = Vec::new();
        assert_eq!(scan(&seg, 0, 7, 1 << 20, &mut skipped), (2, 5));
        assert_eq!(
            skipped,
            vec![
                Skipped { segment: 7, offset: corrupt_at as u64, bytes: bad.len() as u64, kind: SkipKind::Corrupt },
                Skipped { segment: 7, offset: torn_at as u64, bytes: 12, kind: SkipKind::Torn },
            ]
        );
        assert_eq!(skipped[1].to_string(), format!("torn record at the end of 00000007.seg at offset {torn_at} (12 bytes skipped)"));
    }
}
