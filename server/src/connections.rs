//! Every TCP connection, from `accept` to close: the accept loop, and what bounds a connection
//! before anyone knows who is on the other end.
//!
//! - Caps: at most `--max-connections` open in all (lowered to what the open-file limit
//!   allows, after raising the soft limit to the hard one at start) and
//!   `--max-connections-per-ip` from one address (not applied with `--trust-forwarded`: then
//!   every connection comes from the proxy). A connection over a cap is closed at once,
//!   before a byte is read, and counted (`lantern_connections_refused_total`).
//! - Timeouts: a request's headers must arrive within `--header-timeout-secs` once they
//!   started (hyper's own timeout, which needs the timer given here); and a connection that
//!   carries no byte either way for `--idle-timeout-secs` is closed ([`Conn`], [`Idle`]): an
//!   idle keep-alive, a client that never sends a request, a peer that stopped reading.
//! - Shutdown: the loop stops accepting when the server begins to stop; each connection
//!   finishes the request under way and closes. Every connection's I/O holds a token of the
//!   [`Shutdown`] tracker, so an upgraded socket counts until its socket is dropped.
//!
//! HTTP/1.1 (with upgrades, for the sockets) and HTTP/2 are served by hyper-util's `auto`
//! builder, as `axum::serve` does; this loop exists because `axum::serve` has no hook for any
//! of the above.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use futures::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tower::ServiceExt;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// File descriptors kept for everything but connections: the database and its WAL, the
/// corpus, logs, child processes.
const RESERVED_FDS: u64 = 128;

/// How a connection is bounded (from [`Config`]).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Open connections in all; `usize::MAX` for no limit.
    pub max_total: usize,
    /// Open connections per peer address; `None` when not applied.
    pub max_per_ip: Option<usize>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Bounds {
    /// The bounds `config` asks for, the total lowered to `fd_limit` (less what the server
    /// needs besides connections).
    pub fn new(config: &Config, fd_limit: u64) -> Self {
        let fds =
            usize::try_from(fd_limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
        let asked = match config.max_connections {
            0 => usize::MAX,
            n => n,
        };
        let per_ip = (!config.trust_forwarded && config.max_connections_per_ip > 0)
            .then_some(config.max_connections_per_ip);
        Self {
            max_total: asked.min(fds),
            max_per_ip: per_ip,
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            idle_timeout: config.idle_timeout(),
        }
    }
}

/// Raise the soft open-file limit to the hard one (a server of many sockets needs more than
/// the common 1,024); returns the limit in force, `u64::MAX` where there is none to read.
pub fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => return limit,
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::Resource::NOFILE.get() {
        return soft;
    }
    u64::MAX
}

/// Accept connections on `listener` and serve `router` on each, until `shutdown` begins.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
) {
    let caps = Caps::new(bounds);
    let idle = Idle::new(bounds.idle_timeout);
    tokio::spawn(idle.clone().watch(shutdown.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e, &mut last_accept_error).await;
                    continue;
                }
            },
            () = shutdown.begun() => return,
        };
        let Some(slot) = caps.admit(peer.ip()) else {
            metrics.connections_refused.inc();
            continue;
        };
        // Events are small frames sent one by one: without TCP_NODELAY, Nagle's algorithm
        // holds a frame back until the peer acknowledges the previous one.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let io = Conn {
            tcp,
            activity: idle.register(),
            _slot: slot,
            _open: shutdown.connection_opened(),
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        tokio::spawn(serve_connection(
            builder.clone(),
            TokioIo::new(io),
            TowerToHyperService::new(service),
            shutdown.clone(),
        ));
    }
}

/// Serve one connection until it ends, or until the server begins to stop: then finish the
/// request under way and close.
async fn serve_connection<S>(
    builder: auto::Builder<TokioExecutor>,
    io: TokioIo<Conn>,
    service: S,
    shutdown: Shutdown,
) where
    S: hyper::service::Service<Request<Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.begun() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        // A peer that went away, a header timeout: routine, not the server's fault.
        tracing::debug!(error = %e, "connection ended");
    }
}

/// `accept` failed: out of file descriptors (every connection slot and then some), or a
/// connection reset before it was accepted. Say so at most once a second, and pause a moment
/// so a lasting failure does not spin.
async fn accept_failed(error: &io::Error, last: &mut Option<Instant>) {
    if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
        tracing::warn!(%error, "accept failed");
        *last = Some(Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The connection counts behind the caps. One lock over a small map, taken once per accept
/// and once per close.
struct Caps {
    bounds: Bounds,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl Caps {
    fn new(bounds: Bounds) -> Arc<Self> {
        Arc::new(Self {
            bounds,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more connection from `ip`, if both caps allow it.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.lock();
        if open.total >= self.bounds.max_total {
            return None;
        }
        let counted = match self.bounds.max_per_ip {
            Some(max) => {
                let from_ip = open.by_ip.entry(ip).or_default();
                if *from_ip >= max {
                    return None;
                }
                *from_ip += 1;
                Some(ip)
            }
            None => None,
        };
        open.total += 1;
        Some(Slot {
            caps: self.clone(),
            ip: counted,
        })
    }
}

/// One connection's place under the caps, freed when it is dropped (with the connection's
/// I/O, so an upgraded socket keeps its place).
struct Slot {
    caps: Arc<Caps>,
    /// The address it is counted under, when the per-address cap applies.
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(from_ip) = open.by_ip.get_mut(&ip) {
                *from_ip -= 1;
                if *from_ip == 0 {
                    open.by_ip.remove(&ip);
                }
            }
        }
    }
}

/// The idle timeout, for every connection at once: one task sweeps them all every half
/// period, instead of a timer per connection (which cost every idle socket ~140 bytes more).
///
/// A connection's traffic stamps it with the current tick (a coarse clock the sweep keeps, so
/// a read or write costs one relaxed store, not a clock read); the sweep marks a connection
/// whose stamp is three ticks old and wakes its task, whose next read or write then fails
/// with `TimedOut`. So a silent connection is closed after one period to one and a half.
pub struct Idle {
    /// Sweeps so far: the clock connections stamp their traffic with.
    tick: AtomicU32,
    /// How many ticks make the timeout.
    ticks: u32,
    every: Duration,
    conns: Mutex<Vec<Weak<Activity>>>,
}

/// One connection's last traffic, as seen by [`Idle`].
struct Activity {
    /// The tick of its last byte either way.
    last: AtomicU32,
    /// Set by the sweep: the connection has been silent too long.
    expired: AtomicBool,
    /// The task waiting on the connection's I/O, woken when it expires.
    waiting: AtomicWaker,
    idle: Arc<Idle>,
}

impl Idle {
    fn new(timeout: Duration) -> Arc<Self> {
        let every = (timeout / 2).max(Duration::from_millis(100));
        Arc::new(Self {
            tick: AtomicU32::new(0),
            ticks: 3,
            every,
            conns: Mutex::default(),
        })
    }

    fn register(self: &Arc<Self>) -> Arc<Activity> {
        let activity = Arc::new(Activity {
            last: AtomicU32::new(self.tick.load(Ordering::Relaxed)),
            expired: AtomicBool::new(false),
            waiting: AtomicWaker::new(),
            idle: self.clone(),
        });
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&activity));
        activity
    }

    /// Sweep every half period until the server stops: expire the silent, forget the closed.
    async fn watch(self: Arc<Self>, shutdown: Shutdown) {
        let mut every = tokio::time::interval(self.every);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = shutdown.begun() => return,
            }
            self.sweep();
        }
    }

    fn sweep(&self) {
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|weak| {
            let Some(activity) = weak.upgrade() else {
                return false;
            };
            if now.wrapping_sub(activity.last.load(Ordering::Relaxed)) >= self.ticks {
                activity.expired.store(true, Ordering::Relaxed);
                activity.waiting.wake();
            }
            true
        });
    }
}

impl Activity {
    fn touch(&self) {
        self.last
            .store(self.idle.tick.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The stream is not ready: `Ready` with an error once the connection expired, else
    /// `Pending` (the sweep will wake this task if it does).
    fn wait(&self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.waiting.register(cx.waker());
        if self.expired.load(Ordering::Relaxed) {
            return Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ));
        }
        Poll::Pending
    }
}

/// A connection's I/O: the TCP stream, closed with `TimedOut` once it has carried no byte
/// either way for the idle timeout ([`Idle`]), and holding the connection's place (caps,
/// shutdown tracker) for as long as it exists.
pub struct Conn {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
    _open: TaskTrackerToken,
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.activity.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.activity.wait(cx).map(Err),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.tcp).poll_write(cx, buf) {
            Poll::Ready(result) => {
                if result.as_ref().is_ok_and(|n| *n > 0) {
                    this.activity.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.activity.wait(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                if result.as_ref().is_ok_and(|n| *n > 0) {
                    this.activity.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.activity.wait(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        [10, 0, 0, last].into()
    }

    fn bounds(max_total: usize, max_per_ip: Option<usize>) -> Bounds {
        Bounds {
            max_total,
            max_per_ip,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn caps_count_per_address_and_in_all_and_free_on_drop() {
        let caps = Caps::new(bounds(3, Some(2)));
        let a1 = caps.admit(ip(1)).expect("first");
        let _a2 = caps.admit(ip(1)).expect("second");
        assert!(caps.admit(ip(1)).is_none(), "over the per-address cap");
        let _b1 = caps.admit(ip(2)).expect("another address");
        assert!(caps.admit(ip(3)).is_none(), "over the total cap");
        drop(a1);
        assert!(caps.admit(ip(1)).is_some(), "a freed place is taken again");
        assert_eq!(
            caps.lock().by_ip.get(&ip(3)),
            None,
            "a refused address holds nothing"
        );
    }

    #[test]
    fn without_a_per_address_cap_only_the_total_counts() {
        let caps = Caps::new(bounds(2, None));
        let _a = caps.admit(ip(1)).expect("first");
        let _b = caps.admit(ip(1)).expect("second");
        assert!(caps.admit(ip(1)).is_none());
        assert!(caps.lock().by_ip.is_empty());
    }

    #[test]
    fn the_total_is_lowered_to_the_open_file_limit_and_forwarding_drops_the_address_cap() {
        let mut config = Config::default();
        assert_eq!(Bounds::new(&config, 1024).max_total, 1024 - 128);
        assert_eq!(Bounds::new(&config, u64::MAX).max_total, 10_000);
        assert_eq!(Bounds::new(&config, u64::MAX).max_per_ip, Some(256));
        config.max_connections = 0;
        config.trust_forwarded = true;
        let b = Bounds::new(&config, 4096);
        assert_eq!((b.max_total, b.max_per_ip), (4096 - 128, None));
    }

    #[test]
    fn the_sweep_expires_a_connection_silent_for_a_whole_period_and_wakes_it() {
        let idle = Idle::new(Duration::from_secs(60));
        let silent = idle.register();
        let busy = idle.register();
        let gone = idle.register();
        drop(gone);
        idle.sweep();
        idle.sweep();
        busy.touch();
        assert!(
            !silent.expired.load(Ordering::Relaxed),
            "a whole period, perhaps less"
        );
        idle.sweep();
        assert!(
            silent.expired.load(Ordering::Relaxed),
            "at least a whole period of silence"
        );
        assert!(
            !busy.expired.load(Ordering::Relaxed),
            "it carried a byte since"
        );
        assert_eq!(
            idle.conns.lock().map(|c| c.len()).unwrap_or(0),
            2,
            "the closed one is forgotten"
        );
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(silent.wait(&mut cx).is_ready());
        assert!(busy.wait(&mut cx).is_pending());
    }

    #[test]
    fn the_idle_timeout_is_never_under_three_heartbeats() {
        let config = Config {
            idle_timeout_secs: 1,
            heartbeat_ms: 2000,
            ..Config::default()
        };
        assert_eq!(
            Bounds::new(&config, 4096).idle_timeout,
            Duration::from_secs(6)
        );
    }
}
