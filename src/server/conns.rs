//! The server's open connections: at most [`DEFAULT_MAX_CONNECTIONS`], none idle for longer
//! than [`IDLE_TIMEOUT`].
//!
//! **Over the cap, the oldest idle connection goes.** Refusing new connections instead would
//! let whoever holds the slots (2,000 idle sockets, a slow-loris client) keep the kubelet's
//! `/health` probe out, and the agent would be restarted for it. So when a connection arrives
//! and the cap is reached, the oldest connection that is not rendering a response right now
//! (idle between requests, still sending its headers, or waiting for a render slot) is closed
//! and the new one is served. Only when every connection is rendering (at most
//! `MAX_CONCURRENT_RENDERS` can) is the new one refused: closed at once, counted. The same
//! shedding frees a descriptor when `accept` runs out of them (see [`super::accept`]).
//!
//! Each connection records when it last started or finished a request; its task closes it
//! once that is [`IDLE_TIMEOUT`] ago and no response is being rendered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Connections the server keeps open at most (the kubelet, Prometheus and a few people need a
/// handful; each costs a descriptor and a few kB).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// A connection with no request for this long is closed (Prometheus reconnects at its next
/// scrape; keeping a socket for it costs more than the handshake).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One open connection, shared between the registry and its task.
#[derive(Debug)]
pub struct Conn {
    /// Milliseconds after the registry's start when a request last started or ended.
    last_active_ms: AtomicU64,
    /// Whether a response is being rendered (the connection holds a render slot).
    rendering: AtomicBool,
    /// Told to close (shed for a newer connection).
    close: Notify,
}

impl Conn {
    /// Marks a request starting or ending now.
    pub fn touch(&self, reg: &Registry) {
        self.last_active_ms.store(reg.now_ms(), Ordering::Relaxed);
    }

    /// Marks the connection as rendering (not to be shed) until the guard drops.
    pub fn rendering(self: &Arc<Self>) -> RenderingGuard {
        self.rendering.store(true, Ordering::Relaxed);
        RenderingGuard(self.clone())
    }

    /// Resolves when the connection was told to close.
    pub async fn closed(&self) {
        self.close.notified().await
    }

    /// When the connection, idle since its last request, is due to be closed.
    pub fn idle_deadline(&self, reg: &Registry) -> Instant {
        reg.started + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed)) + IDLE_TIMEOUT
    }

    /// Whether the connection has been idle for [`IDLE_TIMEOUT`] at `now`.
    pub fn is_idle_expired(&self, reg: &Registry, now: Instant) -> bool {
        !self.rendering.load(Ordering::Relaxed) && self.idle_deadline(reg) <= now
    }
}

/// Clears the rendering mark of a connection when dropped.
#[derive(Debug)]
pub struct RenderingGuard(Arc<Conn>);

impl Drop for RenderingGuard {
    fn drop(&mut self) {
        self.0.rendering.store(false, Ordering::Relaxed);
    }
}

/// What [`Registry::admit`] decided for a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; keep the handle until it closes, then [`Registry::remove`] it.
    Serve(u64, Arc<Conn>),
    /// Every slot holds a connection that is rendering: close this one.
    Refuse,
}

/// Every open connection by id (ids grow, so the first is the oldest), with counters.
#[derive(Debug)]
pub struct Registry {
    max: usize,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// Connections closed to make room for a newer one (or a descriptor).
    pub shed: AtomicU64,
    /// Connections refused because every slot was rendering.
    pub refused: AtomicU64,
    /// Connections closed after [`IDLE_TIMEOUT`] without a request.
    pub idle_closed: AtomicU64,
    /// Whether the cap is being hit (logged once per episode).
    at_cap: AtomicBool,
}

impl Registry {
    /// A registry allowing `max` connections (at least 1).
    pub fn new(max: usize) -> Self {
        Registry {
            max: max.max(1),
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            at_cap: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes a new connection in, shedding the oldest idle one if the cap is reached.
    pub fn admit(&self) -> Admission {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= self.max {
            if !self.at_cap.swap(true, Ordering::Relaxed) {
                tracing::warn!(max_connections = self.max, "Connection limit reached; closing the oldest idle connections for new ones");
            }
            if !Self::shed_oldest(&mut open) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Admission::Refuse;
            }
            self.shed.fetch_add(1, Ordering::Relaxed);
        } else if open.len() < self.max / 2 && self.at_cap.swap(false, Ordering::Relaxed) {
            tracing::info!(
                open = open.len(),
                shed = self.shed.load(Ordering::Relaxed),
                refused = self.refused.load(Ordering::Relaxed),
                "Connections back under the limit"
            );
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn { last_active_ms: AtomicU64::new(self.now_ms()), rendering: AtomicBool::new(false), close: Notify::new() });
        open.insert(id, conn.clone());
        Admission::Serve(id, conn)
    }

    /// Closes the oldest idle connection (to free a descriptor); false if none is idle.
    pub fn shed_one(&self) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let done = Self::shed_oldest(&mut open);
        if done {
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    fn shed_oldest(open: &mut BTreeMap<u64, Arc<Conn>>) -> bool {
        let Some(id) = open.iter().find(|(_, c)| !c.rendering.load(Ordering::Relaxed)).map(|(id, _)| *id) else {
            return false;
        };
        if let Some(c) = open.remove(&id) {
            // A stored permit: the task sees it even if it is not waiting right now.
            c.close.notify_one();
        }
        true
    }

    /// Forgets a closed connection.
    pub fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(r: &Registry) -> (u64, Arc<Conn>) {
        match r.admit() {
            Admission::Serve(id, c) => (id, c),
            Admission::Refuse => panic!("refused"),
        }
    }

    #[tokio::test]
    async fn over_the_cap_the_oldest_idle_connection_is_told_to_close() {
        let r = Registry::new(3);
        let (_, first) = serve(&r);
        let (_, second) = serve(&r);
        let (_, _third) = serve(&r);
        let _busy = first.rendering();
        let (_, _fourth) = serve(&r);
        assert_eq!(r.len(), 3);
        assert_eq!(r.shed.load(Ordering::Relaxed), 1);
        // The first renders, so the second (the oldest idle one) goes.
        tokio::time::timeout(Duration::from_secs(5), second.closed()).await.expect("the second connection is told to close");
        assert!(tokio::time::timeout(Duration::from_millis(50), first.closed()).await.is_err(), "a rendering connection stays");
    }

    #[tokio::test]
    async fn a_new_connection_is_refused_only_when_every_slot_is_rendering() {
        let r = Registry::new(2);
        let (_, a) = serve(&r);
        let (_, b) = serve(&r);
        let (ga, gb) = (a.rendering(), b.rendering());
        assert!(matches!(r.admit(), Admission::Refuse));
        assert_eq!((r.refused.load(Ordering::Relaxed), r.len()), (1, 2));
        drop((ga, gb));
        assert!(matches!(r.admit(), Admission::Serve(..)), "once a render is done its connection can be shed");
    }

    #[tokio::test]
    async fn a_removed_connection_frees_its_slot_and_shed_one_needs_an_idle_connection() {
        let r = Registry::new(2);
        let (id, _a) = serve(&r);
        r.remove(id);
        assert!(r.is_empty());
        assert!(!r.shed_one(), "nothing to shed");
        let (_, b) = serve(&r);
        let g = b.rendering();
        assert!(!r.shed_one(), "a rendering connection is not shed");
        drop(g);
        assert!(r.shed_one());
        assert!(r.is_empty());
    }

    #[tokio::test]
    async fn a_connection_is_idle_expired_after_the_timeout_unless_rendering() {
        let r = Registry::new(4);
        let (_, c) = serve(&r);
        assert!(!c.is_idle_expired(&r, Instant::now()));
        let later = Instant::now() + IDLE_TIMEOUT + Duration::from_secs(1);
        assert!(c.is_idle_expired(&r, later));
        let g = c.rendering();
        assert!(!c.is_idle_expired(&r, later), "not while rendering");
        drop(g);
        assert!(c.is_idle_expired(&r, later));
        // A request a while from now starts the idle time again.
        c.last_active_ms.store(r.now_ms() + 5_000, Ordering::Relaxed);
        assert!(!c.is_idle_expired(&r, later));
    }
}
