//! The filesystem collector: `system.filesystem.*` per mounted filesystem, from the mount table
//! (`/proc/self/mountinfo`, or `/proc/1/mountinfo` when reading a host's `/proc`) and
//! `statvfs(3)` of each mount point.
//!
//! ```text
//! 22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
//! ```
//!
//! Its metrics (`system.filesystem.usage`, `.utilization`, `.limit`, `.inodes.usage`), their
//! attributes and sources are listed in [docs/metrics.md](../../../docs/metrics.md) (section
//! "filesystem").
//!
//! The numbers are `df`'s: `used` is `(blocks − bfree) × frsize` (df's Used), `free` is
//! `bavail × frsize` (df's Avail, what unprivileged users can still write), `reserved` is the
//! rest (`bfree − bavail`, kept for root), so the three add up to `system.filesystem.limit`
//! (df's Size); `utilization` is `used ÷ (used + free)` (df's Use%, as a fraction). Inodes:
//! `used` is `files − ffree`, `free` is `ffree` (`df -i`). `system.device` is the mount's
//! source as the mount table has it (`/dev/nvme0n1p2`, `tmpfs`, `server:/export`).
//!
//! Which mounts are reported is in `select` (the pseudo filesystems never; bind mounts and
//! mounts hidden by another once, as `df`), how a hung network filesystem is kept from holding
//! up the tick in `statvfs_pool`, and the collector itself, which reads the mount table again
//! only when it changed, in `collector`. The config section is [`FilesystemConfig`].

mod collector;
mod config;
mod select;
mod statvfs_pool;

pub use self::collector::{FilesystemCollector, METRICS};
pub use self::config::{FilesystemConfig, DEFAULT_EXCLUDE_MOUNTPOINTS};
pub use self::select::select;
pub use self::statvfs_pool::{may_hang, StatFn};
