//! statvfs of mounts that may hang: network and FUSE filesystems are called on a small pool of
//! threads, and a tick waits for them only so long.
//!
//! statvfs of a network filesystem whose server is gone (NFS `hard` mounts,
//! sshfs) can block for minutes. statvfs of such filesystems (network and FUSE types, see
//! [`may_hang`]) runs on a small pool of worker threads, and the tick waits for them at most
//! `statvfs_timeout` (default 1 s) in all; local filesystems (ext4, xfs, btrfs, tmpfs, ...)
//! answer from the kernel's in-memory superblock and are called inline, which saves two thread
//! hand-offs per mount per tick. A mount whose statvfs has
//! not returned is skipped, and no new statvfs is started on it until the hung one returns; the
//! other mounts are reported as usual. A warning naming the mount point is logged once when a
//! mount hangs, and an info line when it answers again. Mounts whose statvfs fails (a mount
//! point not visible in this container, permission denied) are skipped too; only when no mount
//! at all could be read does the collector fail.

use crate::procfs::statvfs::FsStats;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Whether statvfs of this filesystem type may block for long: network filesystems and FUSE
/// (whose daemon may be stuck). Those go through the thread pool under the time limit.
pub fn may_hang(fs_type: &str) -> bool {
    const NETWORK: &str =
        "nfs nfs4 cifs smb3 smbfs ncpfs ceph glusterfs 9p afs lustre gpfs ocfs2 gfs2 beegfs davfs fuse fuseblk virtiofs cvmfs panfs orangefs pvfs2";
    fs_type.starts_with("fuse.") || NETWORK.split(' ').any(|t| t == fs_type)
}

/// A statvfs function: the real [`statvfs`](crate::procfs::statvfs::statvfs), or a fake in tests.
pub type StatFn = Arc<dyn Fn(&Path) -> std::io::Result<FsStats> + Send + Sync>;

pub(super) struct Job {
    pub(super) id: u64,
    pub(super) path: Arc<PathBuf>,
}

pub(super) struct Done {
    pub(super) id: u64,
    pub(super) result: std::io::Result<FsStats>,
}

/// Threads running statvfs calls. `wanted` is the pool's size: a few, plus one per call that
/// hangs, so that hung mounts never starve the others; a thread whose hung call returns leaves
/// when the pool is larger than wanted.
pub(super) struct Pool {
    pub(super) jobs: mpsc::Sender<Job>,
    pub(super) queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    pub(super) done_tx: mpsc::Sender<Done>,
    pub(super) done: mpsc::Receiver<Done>,
    pub(super) threads: Arc<AtomicUsize>,
    pub(super) wanted: Arc<AtomicUsize>,
    pub(super) statfs: StatFn,
    /// Jobs sent and not answered.
    pub(super) outstanding: usize,
}

/// Threads kept for statvfs when nothing hangs.
pub(super) const BASE_THREADS: usize = 2;
/// At most this many threads, hung ones included.
pub(super) const MAX_THREADS: usize = 64;

impl Pool {
    pub(super) fn new(statfs: StatFn) -> Self {
        let (jobs, queue) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        Pool {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            done_tx,
            done,
            threads: Arc::new(AtomicUsize::new(0)),
            wanted: Arc::new(AtomicUsize::new(0)),
            statfs,
            outstanding: 0,
        }
    }

    /// Makes sure `n` threads (at most [`MAX_THREADS`]) are running.
    pub(super) fn ensure(&self, n: usize) {
        let n = n.min(MAX_THREADS);
        self.wanted.store(n, Ordering::Release);
        while self.threads.load(Ordering::Acquire) < n {
            self.threads.fetch_add(1, Ordering::AcqRel);
            let (queue, done, statfs) = (self.queue.clone(), self.done_tx.clone(), self.statfs.clone());
            let (threads, wanted) = (self.threads.clone(), self.wanted.clone());
            let spawned = std::thread::Builder::new().name("metricsd-statvfs".into()).spawn(move || worker(queue, done, statfs, threads, wanted));
            if let Err(e) = spawned {
                self.threads.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!(error = %e, "cannot start a statvfs thread");
                break;
            }
        }
    }
}

fn worker(queue: Arc<Mutex<mpsc::Receiver<Job>>>, done: mpsc::Sender<Done>, statfs: StatFn, threads: Arc<AtomicUsize>, wanted: Arc<AtomicUsize>) {
    loop {
        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = job else { break };
        let result = statfs(&job.path);
        if done.send(Done { id: job.id, result }).is_err() {
            break;
        }
        let t = threads.load(Ordering::Acquire);
        if t > wanted.load(Ordering::Acquire) && threads.compare_exchange(t, t - 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
    }
    threads.fetch_sub(1, Ordering::AcqRel);
}
