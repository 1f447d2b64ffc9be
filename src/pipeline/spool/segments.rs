//! The spool's directory and [`Spool`], which appends records at one end of it and reads and
//! acknowledges them at the other:
//!
//! ```text
//! spool/otlp_0/00000007.seg  00000008.seg  cursor  lock
//! ```
//!
//! Segment files hold records (their format is in `record`). A new segment is started when the
//! current one reaches 8 MiB (or an eighth of `max_bytes`, if smaller, so the size bound drops a
//! small part at a time), and at every start (the previous run's last segment may end in a torn
//! record; it is never appended to).
//!
//! `cursor` holds the position of the first unacknowledged record (segment id and offset, with
//! its own checksum). It is rewritten after each acknowledgement, atomically (write
//! `cursor.tmp`, rename), and not fsynced: losing it to a power cut only means re-sending.
//! Segments before the cursor are fully consumed and deleted. `lock` is held with `flock` while
//! the spool is open, so two exporters or two agents never share a directory.
//!
//! fsync policy: a segment is fsynced when it is closed (rotation, shutdown) and at most a
//! second after a record was appended to it; the directory is fsynced when a segment is created.
//!
//! Reading back: records are not kept in memory; the sender reads the oldest record from disk
//! (normally from the page cache: it was just written) right before sending it, and checks its
//! checksum again. When a record is bad, the reader looks for the next valid record (its magic
//! and checksum) in the same segment, and skips to the next segment if there is none.

use super::record::{encode_record, parse, record_crc, scan, skip_bad, u32_at, u64_at, Parsed, SkipKind, Skipped, HEADER_BYTES, RECORD_MAGIC};
use super::SpoolConfig;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest time an appended record stays without fsync.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

const CURSOR_MAGIC: u32 = u32::from_le_bytes(*b"MSC1");
const CURSOR_BYTES: usize = 24;

/// Why the spool cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An operation on the directory or a file failed.
    #[error("spool directory {dir}: cannot {what}: {source}")]
    Io {
        /// The spool's directory.
        dir: PathBuf,
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another exporter or process holds the directory.
    #[error("spool directory {dir} is already in use by another exporter or metricsd process (its lock file is held)")]
    Locked {
        /// The spool's directory.
        dir: PathBuf,
    },
    /// The payload is bigger than the whole spool.
    #[error("a {len}-byte record does not fit in the spool bound of {max} bytes")]
    TooLarge {
        /// Record size, header included.
        len: u64,
        /// The bound.
        max: u64,
    },
}

/// Where a record lies, returned with it and given back to [`Spool::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Segment id.
    pub segment: u64,
    /// Offset of the record's header.
    pub offset: u64,
    /// Offset just past the record.
    pub next: u64,
    /// Points in the record.
    pub points: u64,
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its place, to acknowledge it.
    pub pos: Pos,
    /// The payload as appended.
    pub body: Bytes,
    /// Points in it.
    pub points: u64,
}

/// Records and points dropped to respect the size bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Records.
    pub records: u64,
    /// Points in them.
    pub points: u64,
}

/// What [`Spool::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Valid records waiting to be sent.
    pub records: u64,
    /// Points in them.
    pub points: u64,
    /// Bytes of the segments on disk.
    pub bytes: u64,
    /// Bad regions found (and skipped).
    pub skipped: Vec<Skipped>,
    /// The cursor file was unreadable: everything on disk is sent again.
    pub cursor_reset: bool,
}

/// Totals now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of the segment files.
    pub bytes: u64,
    /// Records not yet acknowledged.
    pub records: u64,
    /// Points in them.
    pub points: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    size: u64,
    /// Unacknowledged records and their points.
    records: u64,
    points: u64,
}

/// An open spool directory (see the module documentation). Blocking I/O: call it from a
/// blocking thread.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Oldest first; with a writer, the last one is being appended to.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    next_id: u64,
    /// First unacknowledged record: (segment id, offset).
    cursor: (u64, u64),
    reader: Option<(u64, File)>,
    in_flight: Option<Pos>,
    dirty: bool,
    last_sync: Instant,
    skipped: Vec<Skipped>,
    /// Dropped by the bound in an append that then failed: reported by the next one.
    unreported: Dropped,
    /// Tests: appends fail with this OS error (as on a full disk).
    #[cfg(test)]
    pub(crate) fail_appends: Option<i32>,
    _lock: File,
}

pub(super) fn segment_name(id: u64) -> String {
    format!("{id:08}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_cursor(dir: &Path) -> Result<Option<(u64, u64)>, ()> {
    let b = match fs::read(dir.join("cursor")) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    if b.len() != CURSOR_BYTES || u32_at(&b, 0) != CURSOR_MAGIC || crc32fast::hash(&b[..20]) != u32_at(&b, 20) {
        return Err(());
    }
    Ok(Some((u64_at(&b, 4), u64_at(&b, 12))))
}

impl Spool {
    /// Opens (or creates) the spool in `cfg.dir`: takes its lock, deletes consumed segments and
    /// checks every record still to send. Bad regions are reported, not fatal.
    pub fn open(cfg: &SpoolConfig) -> Result<(Spool, OpenReport), SpoolError> {
        let dir = cfg.dir.clone();
        let io_err = |what: String| {
            let dir = dir.clone();
            move |source: io::Error| SpoolError::Io { dir, what, source }
        };
        fs::create_dir_all(&dir).map_err(io_err("create it".into()))?;
        let lock =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join("lock")).map_err(io_err("create its lock file".into()))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(SpoolError::Locked { dir });
            }
            return Err(io_err("lock it".into())(e));
        }
        let max_len = cfg.max_bytes.saturating_sub(HEADER_BYTES).min(u32::MAX as u64);
        let mut report = OpenReport::default();
        let cursor = read_cursor(&dir).unwrap_or_else(|()| {
            report.cursor_reset = true;
            None
        });
        let _ = fs::remove_file(dir.join("cursor.tmp"));
        let mut ids: Vec<u64> = fs::read_dir(&dir)
            .map_err(io_err("list it".into()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(parse_segment_name))
            .collect();
        ids.sort_unstable();
        let (mut cur_seg, mut cur_off) = cursor.unwrap_or((ids.first().copied().unwrap_or(1), 0));
        // Segments before the cursor's were fully sent.
        for id in ids.iter().filter(|id| **id < cur_seg) {
            let _ = fs::remove_file(dir.join(segment_name(*id)));
        }
        ids.retain(|id| *id >= cur_seg);
        if ids.first() != Some(&cur_seg) {
            // The cursor's segment is gone (consumed, or dropped by the bound): start at the next.
            cur_seg = ids.first().copied().unwrap_or(cur_seg);
            cur_off = 0;
        }
        let next_id = ids.last().map(|l| l + 1).unwrap_or(cur_seg).max(cur_seg).max(1);
        if ids.is_empty() {
            cur_seg = next_id;
            cur_off = 0;
        }
        let mut segments = VecDeque::new();
        for id in ids {
            let name = segment_name(id);
            let buf = fs::read(dir.join(&name)).map_err(io_err(format!("read {name}")))?;
            let start = if id == cur_seg { cur_off.min(buf.len() as u64) as usize } else { 0 };
            if id == cur_seg {
                cur_off = start as u64;
            }
            let (records, points) = scan(&buf, start, id, max_len, &mut report.skipped);
            report.records += records;
            report.points = report.points.saturating_add(points);
            report.bytes += buf.len() as u64;
            segments.push_back(Segment { id, size: buf.len() as u64, records, points });
        }
        let mut spool = Spool {
            dir,
            max_bytes: cfg.max_bytes,
            segment_bytes: cfg.segment_bytes(),
            segments,
            writer: None,
            next_id,
            cursor: (cur_seg, cur_off),
            reader: None,
            in_flight: None,
            dirty: false,
            last_sync: Instant::now(),
            skipped: Vec::new(),
            unreported: Dropped::default(),
            #[cfg(test)]
            fail_appends: None,
            _lock: lock,
        };
        spool.advance_consumed();
        Ok((spool, report))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes, records and points now.
    pub fn stats(&self) -> SpoolStats {
        let mut s = SpoolStats::default();
        for seg in &self.segments {
            s.bytes += seg.size;
            s.records += seg.records;
            s.points = s.points.saturating_add(seg.points);
        }
        s
    }

    /// Bad regions met while reading since the last call.
    pub fn take_skipped(&mut self) -> Vec<Skipped> {
        std::mem::take(&mut self.skipped)
    }

    fn io_err(&self, what: impl Into<String>) -> impl FnOnce(io::Error) -> SpoolError {
        let (dir, what) = (self.dir.clone(), what.into());
        move |source| SpoolError::Io { dir, what, source }
    }

    fn max_len(&self) -> u64 {
        self.max_bytes.saturating_sub(HEADER_BYTES).min(u32::MAX as u64)
    }

    fn is_writer(&self, id: u64) -> bool {
        self.writer.is_some() && self.segments.back().map(|s| s.id) == Some(id)
    }

    /// Appends a payload. Returns what the size bound pushed out to make room.
    pub fn append(&mut self, body: &[u8], points: u64) -> Result<Dropped, SpoolError> {
        let rec_len = HEADER_BYTES + body.len() as u64;
        if rec_len > self.max_bytes || body.len() as u64 > u32::MAX as u64 {
            return Err(SpoolError::TooLarge { len: rec_len, max: self.max_bytes });
        }
        while self.stats().bytes + rec_len > self.max_bytes && !self.segments.is_empty() {
            let d = self.drop_oldest();
            self.unreported.records += d.records;
            self.unreported.points = self.unreported.points.saturating_add(d.points);
        }
        if self.writer.is_none() || self.segments.back().is_none_or(|s| s.size >= self.segment_bytes) {
            self.rotate()?;
        }
        let buf = encode_record(body, points);
        let seg = self.segments.back_mut().expect("rotate made a segment");
        let w = self.writer.as_ref().expect("rotate opened a writer");
        #[cfg(test)]
        let written = match self.fail_appends {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => w.write_all_at(&buf, seg.size),
        };
        #[cfg(not(test))]
        let written = w.write_all_at(&buf, seg.size);
        if let Err(e) = written {
            // Take back a partial record, and never append after one.
            let _ = w.set_len(seg.size);
            self.writer = None;
            let name = segment_name(seg.id);
            return Err(self.io_err(format!("write to {name}"))(e));
        }
        seg.size += rec_len;
        seg.records += 1;
        seg.points = seg.points.saturating_add(points);
        self.dirty = true;
        Ok(std::mem::take(&mut self.unreported))
    }

    /// Closes the current segment (fsynced) and starts a new one.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        if let Some(w) = self.writer.take() {
            let name = self.segments.back().map(|s| segment_name(s.id)).unwrap_or_default();
            w.sync_data().map_err(self.io_err(format!("fsync {name}")))?;
            self.dirty = false;
        }
        let id = self.next_id;
        let name = segment_name(id);
        let f = OpenOptions::new().write(true).create_new(true).open(self.dir.join(&name)).map_err(self.io_err(format!("create {name}")))?;
        self.next_id += 1;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        if self.segments.is_empty() {
            self.cursor = (id, 0);
        }
        self.segments.push_back(Segment { id, size: 0, records: 0, points: 0 });
        self.writer = Some(f);
        Ok(())
    }

    /// Deletes the oldest segment; returns the unsent records it held (not counting the one
    /// being sent, which its sender still holds and accounts for).
    fn drop_oldest(&mut self) -> Dropped {
        let Some(s) = self.segments.pop_front() else { return Dropped::default() };
        if self.segments.is_empty() {
            self.writer = None;
            self.dirty = false;
        }
        let mut d = Dropped { records: s.records, points: s.points };
        if let Some(p) = self.in_flight {
            if p.segment == s.id && self.cursor == (p.segment, p.offset) {
                d.records = d.records.saturating_sub(1);
                d.points = d.points.saturating_sub(p.points);
            }
        }
        if self.cursor.0 <= s.id {
            self.cursor = (self.segments.front().map(|f| f.id).unwrap_or(self.next_id), 0);
            let _ = self.write_cursor();
        }
        if self.reader.as_ref().map(|r| r.0) == Some(s.id) {
            self.reader = None;
        }
        let _ = fs::remove_file(self.dir.join(segment_name(s.id)));
        d
    }

    /// Deletes the segments the cursor has gone past (never the one being appended to).
    fn advance_consumed(&mut self) {
        while let Some(front) = self.segments.front() {
            let consumed = self.cursor.0 > front.id || (self.cursor.0 == front.id && self.cursor.1 >= front.size);
            if !consumed || self.is_writer(front.id) {
                break;
            }
            let id = front.id;
            self.segments.pop_front();
            self.cursor = (self.segments.front().map(|f| f.id).unwrap_or(self.next_id), 0);
            // The cursor first: a crash in between leaves a segment before the cursor, which
            // the next start deletes.
            let _ = self.write_cursor();
            if self.reader.as_ref().map(|r| r.0) == Some(id) {
                self.reader = None;
            }
            let _ = fs::remove_file(self.dir.join(segment_name(id)));
        }
    }

    fn write_cursor(&self) -> Result<(), SpoolError> {
        let mut b = [0u8; CURSOR_BYTES];
        b[0..4].copy_from_slice(&CURSOR_MAGIC.to_le_bytes());
        b[4..12].copy_from_slice(&self.cursor.0.to_le_bytes());
        b[12..20].copy_from_slice(&self.cursor.1.to_le_bytes());
        let crc = crc32fast::hash(&b[..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("cursor.tmp");
        fs::write(&tmp, b).map_err(self.io_err("write cursor.tmp"))?;
        fs::rename(&tmp, self.dir.join("cursor")).map_err(self.io_err("rename cursor.tmp to cursor"))
    }

    /// The oldest unacknowledged record, checked again; bad regions on the way are skipped
    /// (see [`Spool::take_skipped`]). The same record is returned until it is acknowledged.
    pub fn read_head(&mut self) -> Option<Record> {
        loop {
            self.advance_consumed();
            let seg = self.segments.front()?;
            let (id, size) = (seg.id, seg.size);
            if self.cursor.0 != id {
                self.cursor = (id, 0);
            }
            let off = self.cursor.1;
            if off >= size {
                // The segment being appended to, all sent (or skipped): nothing is waiting in it.
                if let Some(s) = self.segments.front_mut() {
                    s.records = 0;
                    s.points = 0;
                }
                return None;
            }
            match self.read_at(id, off, size) {
                Ok(Ok(rec)) => {
                    self.in_flight = Some(rec.pos);
                    return Some(rec);
                }
                Ok(Err(skipped)) => {
                    self.cursor.1 = skipped.offset + skipped.bytes;
                    self.skipped.push(skipped);
                }
                Err(_) => {
                    // Unreadable (I/O error, file removed): give up the rest of the segment.
                    self.skipped.push(Skipped { segment: id, offset: off, bytes: size - off, kind: SkipKind::Corrupt });
                    self.cursor.1 = size;
                    if self.is_writer(id) {
                        // Never append after what cannot be read.
                        self.writer = None;
                    }
                }
            }
            let _ = self.write_cursor();
        }
    }

    /// Reads the record at `off` of segment `id` (of `size` bytes): the record, or the bad
    /// region to skip.
    fn read_at(&mut self, id: u64, off: u64, size: u64) -> io::Result<Result<Record, Skipped>> {
        if self.reader.as_ref().map(|r| r.0) != Some(id) {
            self.reader = Some((id, File::open(self.dir.join(segment_name(id)))?));
        }
        let max_len = self.max_len();
        let f = &self.reader.as_ref().expect("just opened").1;
        let avail = size - off;
        if avail >= HEADER_BYTES {
            let mut hdr = [0u8; HEADER_BYTES as usize];
            f.read_exact_at(&mut hdr, off)?;
            let len = u32_at(&hdr, 4) as u64;
            if u32_at(&hdr, 0) == RECORD_MAGIC && len <= max_len && HEADER_BYTES + len <= avail {
                let mut body = vec![0u8; len as usize];
                f.read_exact_at(&mut body, off + HEADER_BYTES)?;
                if record_crc(&hdr[4..8], &hdr[12..20], &body) == u32_at(&hdr, 8) {
                    let points = u64_at(&hdr, 12);
                    let pos = Pos { segment: id, offset: off, next: off + HEADER_BYTES + len, points };
                    return Ok(Ok(Record { pos, body: Bytes::from(body), points }));
                }
            }
        }
        // Bad: look for the next valid record in the rest of the segment.
        let mut rest = vec![0u8; avail as usize];
        f.read_exact_at(&mut rest, off)?;
        let incomplete = matches!(parse(&rest, 0, max_len), Parsed::Incomplete);
        let (_, mut s) = skip_bad(&rest, 0, id, max_len, incomplete);
        s.offset = off;
        Ok(Err(s))
    }

    /// Marks the record at `pos` sent (or given up): the cursor moves past it. A record already
    /// dropped by the size bound is ignored.
    pub fn ack(&mut self, pos: Pos) -> Result<(), SpoolError> {
        if self.in_flight == Some(pos) {
            self.in_flight = None;
        }
        if self.cursor != (pos.segment, pos.offset) {
            return Ok(());
        }
        self.cursor = (pos.segment, pos.next);
        if let Some(s) = self.segments.front_mut().filter(|s| s.id == pos.segment) {
            s.records = s.records.saturating_sub(1);
            s.points = s.points.saturating_sub(pos.points);
        }
        let r = self.write_cursor();
        self.advance_consumed();
        r
    }

    /// fsyncs the segment being appended to if a record has waited [`SYNC_INTERVAL`] (or at
    /// all, with `force`).
    pub fn sync(&mut self, force: bool) -> Result<(), SpoolError> {
        if !self.dirty || (!force && self.last_sync.elapsed() < SYNC_INTERVAL) {
            return Ok(());
        }
        if let Some(w) = &self.writer {
            let name = self.segments.back().map(|s| segment_name(s.id)).unwrap_or_default();
            w.sync_data().map_err(self.io_err(format!("fsync {name}")))?;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.sync(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig { dir: dir.to_path_buf(), max_bytes }
    }

    fn body(i: u32, len: usize) -> Vec<u8> {
        let mut b = format!("payload-{i:04}-").into_bytes();
        b.resize(len.max(b.len()), b'x');
        b
    }

    /// Reads and acknowledges everything: (bodies, points).
    fn drain(s: &mut Spool) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        while let Some(r) = s.read_head() {
            out.push((r.body.to_vec(), r.points));
            s.ack(r.pos).unwrap();
        }
        out
    }

    fn segments(dir: &Path) -> Vec<u64> {
        let mut v: Vec<u64> = fs::read_dir(dir).unwrap().filter_map(|e| parse_segment_name(e.unwrap().file_name().to_str().unwrap())).collect();
        v.sort();
        v
    }

    #[test]
    fn point_counts_read_from_disk_add_up_without_overflowing() {
        // Found by the spool_segment fuzz target: two valid records claiming u64::MAX points
        // each overflowed the count of the open (a panic with overflow checks on).
        let dir = tempfile::tempdir().unwrap();
        let rec = encode_record(b"x", u64::MAX);
        fs::write(dir.path().join(segment_name(1)), [&rec[..], &rec[..]].concat()).unwrap();
        let (mut s, report) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!((report.records, report.points), (2, u64::MAX));
        assert_eq!(s.stats().points, u64::MAX);
        assert_eq!(drain(&mut s), vec![(b"x".to_vec(), u64::MAX), (b"x".to_vec(), u64::MAX)]);
    }

    #[test]
    fn appended_records_are_read_back_in_order_and_acknowledged() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, report) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert_eq!(report, OpenReport::default());
        for i in 0..5 {
            assert_eq!(s.append(&body(i, 100), i as u64 + 1).unwrap(), Dropped::default());
        }
        assert_eq!(s.stats(), SpoolStats { bytes: 5 * (HEADER_BYTES + 100), records: 5, points: 15 });
        let first = s.read_head().unwrap();
        assert_eq!(first.body.as_ref(), body(0, 100).as_slice());
        assert_eq!(s.read_head().unwrap().pos, first.pos, "unacknowledged: the same record again");
        s.ack(first.pos).unwrap();
        s.ack(first.pos).unwrap(); // a second acknowledgement changes nothing
        let rest = drain(&mut s);
        assert_eq!(rest.iter().map(|r| r.1).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert_eq!(rest[3].0, body(4, 100));
        assert_eq!(s.stats().records, 0);
        assert!(s.read_head().is_none());
    }

    #[test]
    fn a_reopened_spool_resumes_at_the_cursor_and_deletes_sent_segments() {
        let d = tempfile::tempdir().unwrap();
        // 800-byte bound: 100-byte segments, one 120-byte record each.
        {
            let (mut s, _) = Spool::open(&cfg(d.path(), 800)).unwrap();
            for i in 0..4 {
                s.append(&body(i, 100), 1).unwrap();
            }
            assert_eq!(segments(d.path()), vec![1, 2, 3, 4]);
            for _ in 0..2 {
                let r = s.read_head().unwrap();
                s.ack(r.pos).unwrap();
            }
            assert_eq!(segments(d.path()), vec![3, 4], "sent segments are deleted");
        }
        let (mut s, report) = Spool::open(&cfg(d.path(), 800)).unwrap();
        assert_eq!((report.records, report.points, report.skipped.len(), report.cursor_reset), (2, 2, 0, false));
        s.append(&body(9, 100), 1).unwrap();
        assert_eq!(segments(d.path()), vec![3, 4, 5], "a new segment at each start");
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![body(2, 100), body(3, 100), body(9, 100)]);
        drop(s);
        let (mut s, report) = Spool::open(&cfg(d.path(), 800)).unwrap();
        assert_eq!(report.records, 0);
        assert!(s.read_head().is_none());
        assert!(segments(d.path()).len() <= 1);
    }

    #[test]
    fn a_cursor_inside_a_segment_resumes_at_the_next_record() {
        let d = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
            for i in 0..3 {
                s.append(&body(i, 50), 1).unwrap();
            }
            let r = s.read_head().unwrap();
            s.ack(r.pos).unwrap();
        }
        let (mut s, report) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert_eq!(report.records, 2);
        assert_eq!(drain(&mut s).into_iter().map(|r| r.0).collect::<Vec<_>>(), vec![body(1, 50), body(2, 50)]);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_reported_and_the_good_records_kept() {
        let d = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
            for i in 0..3 {
                s.append(&body(i, 100), 7).unwrap();
            }
        }
        // Cut the last record in the middle of its payload, as a crash mid-write would.
        let seg = d.path().join("00000001.seg");
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 50).unwrap();
        let (mut s, report) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert_eq!((report.records, report.points), (2, 14));
        assert_eq!(report.skipped, vec![Skipped { segment: 1, offset: 240, bytes: 70, kind: SkipKind::Torn }]);
        s.append(&body(3, 100), 7).unwrap();
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![body(0, 100), body(1, 100), body(3, 100)], "never the torn record");
        assert_eq!(s.take_skipped().len(), 1, "met again when read");
        // A header cut short is a torn tail too.
        drop(s);
        let (mut s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        s.append(&body(4, 100), 7).unwrap();
        drop(s);
        let seg = d.path().join(segment_name(*segments(d.path()).last().unwrap()));
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(10).unwrap();
        let (_, report) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert_eq!(report.records, 0);
        assert_eq!(report.skipped.iter().map(|s| s.kind).collect::<Vec<_>>(), vec![SkipKind::Torn]);
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_reported_and_the_good_records_kept() {
        let d = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
            for i in 0..5 {
                s.append(&body(i, 100), 1).unwrap();
            }
        }
        let seg = d.path().join("00000001.seg");
        let mut b = fs::read(&seg).unwrap();
        b[120 + 60] ^= 0x01; // the second record's payload
        b[360 + 5] ^= 0x80; // the fourth record's length
        fs::write(&seg, &b).unwrap();
        let (mut s, report) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert_eq!(report.records, 3);
        assert_eq!(
            report.skipped,
            vec![
                Skipped { segment: 1, offset: 120, bytes: 120, kind: SkipKind::Corrupt },
                Skipped { segment: 1, offset: 360, bytes: 120, kind: SkipKind::Corrupt }
            ]
        );
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![body(0, 100), body(2, 100), body(4, 100)]);
        assert_eq!(s.take_skipped().len(), 2);
    }

    #[test]
    fn a_record_damaged_after_it_was_appended_is_skipped_when_read() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        for i in 0..3 {
            s.append(&body(i, 100), 1).unwrap();
        }
        let seg = d.path().join("00000001.seg");
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(b"garbage!", 0).unwrap();
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![body(1, 100), body(2, 100)]);
        assert_eq!(s.take_skipped(), vec![Skipped { segment: 1, offset: 0, bytes: 120, kind: SkipKind::Corrupt }]);
        assert_eq!(s.stats().records, 0, "nothing is left waiting");
    }

    #[test]
    fn the_size_bound_drops_the_oldest_segments_and_counts_them() {
        let d = tempfile::tempdir().unwrap();
        // 1000 bytes: segments closed at 125 bytes, so two 120-byte records (3 points each) per
        // segment; 8 records fit.
        let (mut s, _) = Spool::open(&cfg(d.path(), 1000)).unwrap();
        let mut dropped = Dropped::default();
        for i in 0..12 {
            let d = s.append(&body(i, 100), 3).unwrap();
            dropped.records += d.records;
            dropped.points += d.points;
            assert!(s.stats().bytes <= 1000);
        }
        assert_eq!(dropped, Dropped { records: 4, points: 12 });
        let on_disk: u64 = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_str().unwrap().ends_with(".seg"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 1000, "{on_disk}");
        assert_eq!(s.stats().records, 8);
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().map(|r| r.0).collect();
        assert_eq!(got, (4..12).map(|i| body(i, 100)).collect::<Vec<_>>(), "the newest kept, in order");
    }

    #[test]
    fn the_record_being_sent_is_not_counted_when_its_segment_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(&cfg(d.path(), 1000)).unwrap();
        for i in 0..8 {
            s.append(&body(i, 100), 3).unwrap();
        }
        let head = s.read_head().unwrap();
        let d1 = s.append(&body(8, 100), 3).unwrap();
        assert_eq!(d1, Dropped { records: 1, points: 3 }, "two records dropped, but the one being sent is its sender's to count");
        s.ack(head.pos).unwrap(); // late: ignored
        assert_eq!(s.read_head().unwrap().body.as_ref(), body(2, 100).as_slice(), "the next segment's first record");
    }

    #[test]
    fn a_record_larger_than_the_bound_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(&cfg(d.path(), 100)).unwrap();
        assert!(matches!(s.append(&[0u8; 100], 1), Err(SpoolError::TooLarge { len: 120, max: 100 })));
        assert_eq!(s.stats(), SpoolStats::default());
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error_naming_it() {
        // Tests run as root, where permissions do not stop writes: use a path under a file.
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("file"), b"").unwrap();
        let dir = d.path().join("file").join("spool");
        let e = Spool::open(&cfg(&dir, 1 << 20)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&dir.display().to_string()) && msg.contains("Not a directory"), "{msg}");
    }

    #[test]
    fn a_directory_in_use_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (_s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert!(matches!(Spool::open(&cfg(d.path(), 1 << 20)), Err(SpoolError::Locked { .. })));
    }

    #[test]
    fn a_damaged_cursor_replays_everything_rather_than_losing_anything() {
        let d = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
            for i in 0..3 {
                s.append(&body(i, 10), 1).unwrap();
            }
            let r = s.read_head().unwrap();
            s.ack(r.pos).unwrap();
        }
        fs::write(d.path().join("cursor"), b"nonsense").unwrap();
        let (mut s, report) = Spool::open(&cfg(d.path(), 1 << 20)).unwrap();
        assert!(report.cursor_reset);
        assert_eq!(drain(&mut s).len(), 3);
    }
}
