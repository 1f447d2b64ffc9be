//! The disk spool: an append-only log of encoded payloads per exporter, so that an outage of the
//! backend or a restart of the agent loses nothing.
//!
//! ## Reliability
//!
//! Every exporter sends its payloads one at a time, oldest first, and retries what the backend
//! may accept later (exponential backoff with jitter, honouring `Retry-After` and gRPC
//! `RetryInfo`). What is guaranteed depends on whether the exporter has a spool.
//!
//! **Without a spool** (the default), payloads wait in memory, bounded by `queue.max_bytes`
//! (64 MiB). They survive an outage as long as they fit in that bound and each is sent within
//! `retry.max_elapsed_time` (5 min) of its first attempt; beyond that the oldest are dropped,
//! counted in `/status` (`dropped_payloads`, `dropped_points`) and logged once per episode. At
//! SIGTERM the queue is flushed for at most `shutdown_timeout`; what is still unsent then, and
//! everything queued at a crash, is lost.
//!
//! **With a spool** (`queue.spool: {dir: PATH}`), every encoded payload is first appended to a
//! log on disk (write-ahead) and is removed from it only once the backend has accepted it or
//! rejected it for good (a non-retryable answer such as HTTP 400). So:
//!
//! - an outage of any length is survived up to `queue.spool.max_bytes` (256 MiB) of payloads
//!   per exporter. `retry.max_elapsed_time` does not apply to spooled payloads: they are
//!   retried (at `retry.max_interval` at most) until sent, rejected, or pushed out by the size
//!   bound, which drops the oldest segment and counts its payloads and points as dropped;
//! - a restart (SIGTERM, crash, `kill -9`, OOM kill) loses nothing that was appended: the next
//!   start sends what is left, oldest first, before anything new;
//! - delivery is *at least once*: a payload sent just before a crash, whose acknowledgement was
//!   not yet recorded, is sent again after the restart;
//! - a power loss or kernel crash can lose what was appended in the last second (the spool is
//!   fsynced every second and when a segment is full, not after every record);
//! - a torn or corrupt record (power loss mid-write, a bad disk) is detected by its checksum,
//!   skipped and logged; it is never sent as garbage, and the records around it are kept;
//! - if the spool cannot be used (read-only or missing directory, full disk, a directory
//!   already used by another exporter or process), the error is logged once, naming the
//!   directory and the OS error, `/status` shows it in `spool_error`, and the exporter goes on
//!   in memory with the guarantees above; the spool is tried again every 30 s, once what waits
//!   in memory is sent (so that nothing overtakes it).
//!
//! `/status` shows per exporter `spool_bytes` and `spool_records` (payloads waiting on disk)
//! beside `queue_length` and `queue_bytes` (payloads waiting in memory).
//!
//! Limits: order holds per exporter, not across exporters; delivery is at least once, never
//! exactly once; while the spool is failing, payloads held in memory are as volatile as without
//! a spool; a payload larger than the spool's bound goes through memory; the bound counts the
//!
//! ## Why a segment log
//!
//! Why not an embedded store (sled, RocksDB, SQLite, redb): the spool is a FIFO that is only
//! appended at one end and consumed in order at the other, never updated or searched. A segment
//! log does exactly that with a few hundred lines, no compaction, no write amplification, a
//! format one can inspect with `xxd`, and no large dependency in a small agent.
//!
//! ## Files
//!
//! [`config`](SpoolConfig) is `queue.spool` (directory and bound); `record` is the on-disk
//! record format (framing, checksum, checking a segment's bytes, what damage looks like);
//! `segments` is the directory (segment files, the cursor, the lock) and [`Spool`] itself.

mod config;
mod record;
mod segments;

pub use self::config::{SpoolConfig, DEFAULT_SPOOL_MAX_BYTES, SEGMENT_BYTES};
pub use self::record::{SkipKind, Skipped, HEADER_BYTES};
pub use self::segments::{Dropped, OpenReport, Pos, Record, Spool, SpoolError, SpoolStats, SYNC_INTERVAL};
