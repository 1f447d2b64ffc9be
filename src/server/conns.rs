//! The server's open connections: at most [`DEFAULT_MAX_CONNECTIONS`], none idle for longer
//! than [`IDLE_TIMEOUT`].
//!
//! **Over the cap, the oldest idle connection goes.** Refusing new connections instead would
//! let whoever holds the slots (2,000 idle sockets, a slow-loris client) keep the kubelet's
//! `/health` probe out, and the agent would be restarted for it. So when a connection arrives
//! and the cap is reached, the oldest connection that is not rendering a response right now
//! (idle between requests, still sending its headers, or waiting for a render slot) is closed
//! and the new one is served. Only when every connection is rendering (at most
//! `MAX_CONCURRENT_RENDERS` can) is the new one refused: closed at once, counted.
//!
//! **Out of descriptors.** When `accept` fails for want of a descriptor (see
//! [`super::accept`]), the cap drops to [`EXHAUSTION_HEADROOM`] fewer than the connections
//! then open, and the oldest idle ones over it are closed at once: the listener, the
//! collectors' files and the exporters' sockets get descriptors back, and new connections keep
//! being served by shedding old ones. The configured cap returns when the episode is over.
//!
//! Each connection records when it last started or finished a request; its task closes it
//! once that is [`IDLE_TIMEOUT`] ago and no response is being rendered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Connections the server keeps open at most (the kubelet, Prometheus and a few people need a
/// handful; each costs a descriptor and a few kB).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Connections fewer than were open when descriptors ran out, kept while they are short.
pub const EXHAUSTION_HEADROOM: usize = 16;

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
    /// The cap in force: `max`, or lower while descriptors run out (see [`Registry::exhausted`]).
    limit: AtomicUsize,
    started: Instant,
    next_id: AtomicU64,
    /// Connections that may be shed, oldest first (a shed one leaves at once).
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// Sockets open: admitted and not yet closed by their task (a shed one counts until then).
    alive: AtomicUsize,
    /// Woken whenever a connection's task has closed it.
    closed: Notify,
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
            limit: AtomicUsize::new(max.max(1)),
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            alive: AtomicUsize::new(0),
            closed: Notify::new(),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            at_cap: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections open now (sockets: a shed one counts until its task has closed it).
    pub fn len(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The cap in force now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Descriptors ran out with this many connections open: keep [`EXHAUSTION_HEADROOM`]
    /// fewer from now on (closing the oldest idle ones at once), so that accepting, the
    /// collectors' files and the exporters' sockets have descriptors again. Returns the cap.
    pub fn exhausted(&self) -> usize {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let alive = self.len();
        let limit = alive.saturating_sub(EXHAUSTION_HEADROOM).clamp(1, self.max);
        self.limit.store(limit, Ordering::Relaxed);
        // Down to one under the cap, for the next connection.
        for _ in 0..=alive.saturating_sub(limit) {
            if !Self::shed_oldest(&mut open) {
                break;
            }
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
        limit
    }

    /// Descriptors are no longer short: back to the configured cap.
    pub fn restore(&self) {
        self.limit.store(self.max, Ordering::Relaxed);
    }

    /// Takes a new connection in, shedding the oldest idle one if the cap is reached.
    pub fn admit(&self) -> Admission {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let limit = self.limit();
        let alive = self.len();
        if alive >= limit {
            if !self.at_cap.swap(true, Ordering::Relaxed) {
                tracing::warn!(max_connections = limit, "Connection limit reached; closing the oldest idle connections for new ones");
            }
            if !Self::shed_oldest(&mut open) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Admission::Refuse;
            }
            self.shed.fetch_add(1, Ordering::Relaxed);
        } else if alive < limit / 2 && self.at_cap.swap(false, Ordering::Relaxed) {
            tracing::info!(
                open = alive,
                shed = self.shed.load(Ordering::Relaxed),
                refused = self.refused.load(Ordering::Relaxed),
                "Connections back under the limit"
            );
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn { last_active_ms: AtomicU64::new(self.now_ms()), rendering: AtomicBool::new(false), close: Notify::new() });
        open.insert(id, conn.clone());
        self.alive.fetch_add(1, Ordering::Relaxed);
        Admission::Serve(id, conn)
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

    /// Forgets a connection its task has closed (shed or not); call once per admitted one.
    pub fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        self.alive.fetch_sub(1, Ordering::Relaxed);
        self.closed.notify_waiters();
    }

    /// Resolves once no more sockets are open than the cap allows (shed connections close on
    /// their own tasks; the accept loop waits for them before taking more, so the descriptors
    /// in use stay near the cap however fast connections arrive).
    pub async fn within_cap(&self) {
        loop {
            // Made before the check: `notify_waiters` reaches it from then on.
            let closed = self.closed.notified();
            if self.len() <= self.limit() {
                return;
            }
            closed.await;
        }
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
        let (second_id, second) = serve(&r);
        let (_, _third) = serve(&r);
        let _busy = first.rendering();
        let (_, _fourth) = serve(&r);
        assert_eq!(r.shed.load(Ordering::Relaxed), 1);
        // The first renders, so the second (the oldest idle one) goes.
        tokio::time::timeout(Duration::from_secs(5), second.closed()).await.expect("the second connection is told to close");
        assert_eq!(r.len(), 4, "until its task closes it");
        r.remove(second_id);
        assert_eq!(r.len(), 3);
        assert!(tokio::time::timeout(Duration::from_millis(50), first.closed()).await.is_err(), "a rendering connection stays");
    }

    #[tokio::test]
    async fn a_new_connection_is_refused_only_when_every_slot_is_rendering() {
        let r = Registry::new(2);
        let (_, a) = serve(&r);
        let (_, b) = serve(&r);
        let (ga, gb) = (a.rendering(), b.rendering());
        assert!(matches!(r.admit(), Admission::Refuse));
        assert_eq!((r.refused.load(Ordering::Relaxed), r.len()), (1, 2), "a refused one is never counted");
        drop((ga, gb));
        assert!(matches!(r.admit(), Admission::Serve(..)), "once a render is done its connection can be shed");
    }

    #[tokio::test]
    async fn within_cap_waits_until_shed_connections_are_closed() {
        let r = Arc::new(Registry::new(2));
        let (a, _) = serve(&r);
        let (_b, _) = serve(&r);
        let (_c, _) = serve(&r); // sheds a, whose task has not closed it yet
        assert_eq!(r.len(), 3);
        let waiting = tokio::spawn({
            let r = r.clone();
            async move { r.within_cap().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "three sockets open, two allowed");
        r.remove(a);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("done once a's task closed it").unwrap();
    }

    #[tokio::test]
    async fn a_removed_connection_frees_its_slot() {
        let r = Registry::new(1);
        let (id, _a) = serve(&r);
        r.remove(id);
        assert!(r.is_empty());
        let (_, _b) = serve(&r);
        assert_eq!(r.shed.load(Ordering::Relaxed), 0, "nothing had to be shed");
    }

    #[tokio::test]
    async fn running_out_of_descriptors_lowers_the_cap_below_the_open_connections_until_restored() {
        let r = Registry::new(100);
        let conns: Vec<_> = (0..40).map(|_| serve(&r)).collect();
        assert_eq!(r.exhausted(), 40 - EXHAUSTION_HEADROOM);
        // One under the cap, for the next connection: the 17 oldest are told to close.
        let shed = EXHAUSTION_HEADROOM + 1;
        assert_eq!(r.shed.load(Ordering::Relaxed), shed as u64);
        for (id, c) in &conns[..shed] {
            tokio::time::timeout(Duration::from_secs(5), c.closed()).await.expect("an old one is told to close");
            r.remove(*id);
        }
        assert!(tokio::time::timeout(Duration::from_millis(20), conns[shed].1.closed()).await.is_err(), "the rest stay");
        assert_eq!(r.len(), 40 - shed);
        // New connections keep coming in, one for an old one once at the cap.
        let _new = serve(&r);
        assert_eq!(r.shed.load(Ordering::Relaxed), shed as u64);
        let _newer = serve(&r);
        assert_eq!(r.shed.load(Ordering::Relaxed), shed as u64 + 1);
        r.restore();
        assert_eq!(r.limit(), 100);
        let _more = serve(&r);
        assert_eq!(r.shed.load(Ordering::Relaxed), shed as u64 + 1, "no shedding under the configured cap");
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
