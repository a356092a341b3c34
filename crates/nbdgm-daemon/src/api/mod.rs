//! Local API server of `nbdgm serve`: JSON lines (see `docs/api.md` and
//! [`nbdgm_api`]) on a Unix socket, optionally also on TCP.
//!
//! The API layer accepts clients (peer credentials, allow lists, client cap), reads
//! requests (64 KiB line cap), answers `subscribe`/`unsubscribe` itself through the
//! [`Hub`] and forwards every other request to the runtime as [`ApiMsg::Request`].
//! Each client has one bounded outgoing queue drained by a writer task (or written
//! through by the receiving thread while that task is idle: `queue.rs`); events that
//! find it full are dropped, counted, and reported to the client by an `overflow`
//! event as soon as the queue moves again.
//!
//! Queues are bounded in bytes per client and in total; clients are capped per peer
//! (uid, TCP address) as well as in all, accept errors back off; a TCP client must
//! say `hello` with the token first.

mod conn;
mod hub;
mod listener;
mod queue;
mod socket;

pub use hub::Hub;
pub use listener::{bind, read_token_file, ApiListener};
use queue::{Flushed, Line, QueueRx, QueueTx, Queued};

use nbdgm_api::{ErrorCode, Request, Response, MAX_SERVER_LINE};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Longest time a forwarded request may take before the client gets `timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests of one client that may be in flight at once (more wait: backpressure).
pub const MAX_IN_FLIGHT: usize = 32;
/// Subscriptions one client may hold.
pub const MAX_SUBSCRIPTIONS_PER_CLIENT: usize = 256;
/// A client that accepts no bytes for this long is disconnected.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to deliver the error line to a rejected client.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Rejections being written at once; beyond, a rejected connection is just closed.
const MAX_REJECTING: usize = 64;
/// A TCP client must authenticate (`hello` with the token) within this time.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP clients authenticating at once (they hold no client slot yet).
pub const MAX_AUTHENTICATING: usize = 8;
/// Default byte caps of the outgoing queues: per client and for all clients.
pub const DEFAULT_QUEUE_BYTES_PER_CLIENT: usize = 4 << 20;
pub const DEFAULT_QUEUE_BYTES_TOTAL: usize = 64 << 20;

/// Bytes a line takes from a byte cap of `cap` (a line larger than the cap takes it all).
fn taken(len: usize, cap: usize) -> usize {
    len.min(cap).max(1)
}

/// Bytes all clients' queues hold together, of `cap` (plain atomic counter: taking and
/// giving back never lock).
struct Total {
    used: AtomicUsize,
    cap: usize,
}

impl Total {
    fn new(cap: usize) -> Total {
        Total {
            used: AtomicUsize::new(0),
            cap: cap.max(1),
        }
    }

    fn try_take(&self, n: usize) -> bool {
        take_upto(&self.used, n, self.cap)
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Add `n` to `c` if the sum stays within `cap`.
fn take_upto(c: &AtomicUsize, n: usize, cap: usize) -> bool {
    c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
        u.checked_add(n).filter(|&v| v <= cap)
    })
    .is_ok()
}

/// One client's queue room, in lines and in bytes (`api.queue_per_client`,
/// `api.queue_bytes_per_client`): taken by the publisher, given back when the writer
/// has written a line (its [`Queued`] dropped). Plain atomic counters; only a response
/// waiting for room (never an event) parks, and while one waits events find the queue
/// full, as they did behind a fair semaphore.
struct Budget {
    lines: AtomicUsize,
    bytes: AtomicUsize,
    max_lines: usize,
    max_bytes: usize,
    /// Responses waiting for room.
    waiting: AtomicUsize,
    room: tokio::sync::Notify,
    /// The hub's total, which events (not responses) count against.
    total: Arc<Total>,
}

impl Budget {
    fn new(max_lines: usize, max_bytes: usize, total: Arc<Total>) -> Budget {
        Budget {
            lines: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            waiting: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
            total,
        }
    }

    /// Bytes a line of `len` takes from this budget.
    fn taken(&self, len: usize) -> usize {
        taken(len, self.max_bytes)
    }

    /// Take one line and `n` bytes if both have room.
    fn take(&self, n: usize) -> bool {
        if !take_upto(&self.lines, 1, self.max_lines) {
            return false;
        }
        if !take_upto(&self.bytes, n, self.max_bytes) {
            self.lines.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Room for an event line: none while a response waits.
    fn try_take_event(&self, n: usize) -> bool {
        self.waiting.load(Ordering::SeqCst) == 0 && self.take(n)
    }

    fn give(&self, n: usize, event: bool) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        self.lines.fetch_sub(1, Ordering::SeqCst);
        if event {
            self.total.give(n);
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Wait until one line and `n` bytes are free and take them (a response);
    /// false when `closed` ends first.
    async fn take_waiting(&self, n: usize, closed: impl std::future::Future<Output = ()>) -> bool {
        if self.take(n) {
            return true;
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _w = Waiting(&self.waiting);
        tokio::pin!(closed);
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.take(n) {
                return true;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = &mut closed => return false,
            }
        }
    }
}

/// Settings of the API listener.
#[derive(Clone)]
pub struct ApiConfig {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// Permission bits of the socket file (e.g. `0o660`).
    pub mode: u32,
    /// Group (name or number) to give the socket file.
    pub group: Option<String>,
    /// Connected clients at most (Unix and TCP together); more get `busy`.
    pub max_clients: usize,
    /// Outgoing lines queued per client; events beyond are dropped and counted.
    pub queue_per_client: usize,
    /// Bytes of outgoing lines queued per client; events beyond are dropped and
    /// counted, responses wait.
    pub queue_bytes_per_client: usize,
    /// Connected clients at most per peer: per uid (Unix) or per address (TCP).
    pub max_clients_per_peer: usize,
    /// Optional TCP listener (same protocol, no peer credentials).
    pub tcp: Option<SocketAddr>,
    /// The secret a TCP client must send in its first request, `hello` (`token`).
    pub tcp_token: Option<Arc<[u8]>>,
    /// Which TCP peers may connect.
    pub tcp_acl: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    /// Unix peers allowed by uid; when both lists are empty every peer that can open
    /// the socket (see `mode`) is allowed.
    pub allow_uids: Vec<u32>,
    /// Unix peers allowed by primary or supplementary gid.
    pub allow_gids: Vec<u32>,
    /// A client that accepts no bytes for this long is disconnected
    /// ([`WRITE_STALL_TIMEOUT`]).
    pub write_stall_timeout: Duration,
}

impl ApiConfig {
    /// Defaults: mode 0660, no group, 64 clients, 1024 lines per client, no TCP
    /// (and a TCP ACL allowing loopback only), no uid/gid restriction.
    pub fn new(socket: impl Into<PathBuf>) -> ApiConfig {
        ApiConfig {
            socket: socket.into(),
            mode: 0o660,
            group: None,
            max_clients: 64,
            queue_per_client: 1024,
            queue_bytes_per_client: DEFAULT_QUEUE_BYTES_PER_CLIENT,
            max_clients_per_peer: 32,
            tcp: None,
            tcp_token: None,
            tcp_acl: Arc::new(|ip: IpAddr| ip.is_loopback()),
            allow_uids: Vec::new(),
            allow_gids: Vec::new(),
            write_stall_timeout: WRITE_STALL_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("socket", &self.socket)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("group", &self.group)
            .field("max_clients", &self.max_clients)
            .field("queue_per_client", &self.queue_per_client)
            .field("queue_bytes_per_client", &self.queue_bytes_per_client)
            .field("max_clients_per_peer", &self.max_clients_per_peer)
            .field("tcp", &self.tcp)
            .field("tcp_token", &self.tcp_token.as_ref().map(|_| "<secret>"))
            .field("allow_uids", &self.allow_uids)
            .field("allow_gids", &self.allow_gids)
            .field("write_stall_timeout", &self.write_stall_timeout)
            .finish_non_exhaustive()
    }
}

/// Who a connected client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Unique for the life of the [`Hub`]; the key of its subscriptions.
    pub id: u64,
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `unix:pid=N` or `tcp:ip:port`.
    pub peer: String,
}

/// What the API layer asks of the runtime.
#[derive(Debug)]
pub enum ApiMsg {
    /// A request to execute (everything except `subscribe`/`unsubscribe`). The
    /// runtime answers on `reply`; the response id is forced to the request id.
    Request {
        client: Arc<ClientInfo>,
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    /// The client is gone: release its non-persistent names. Its subscriptions are
    /// already removed.
    Disconnected { client: Arc<ClientInfo> },
}

/// Serialize `v` as one line with its newline; `None` if it cannot be or is too long.
fn encode_line<T: Serialize + ?Sized>(v: &T) -> Option<Line> {
    let mut buf = serde_json::to_vec(v).ok()?;
    if buf.len() > MAX_SERVER_LINE {
        return None;
    }
    buf.push(b'\n');
    Some(buf.into())
}

/// A response line; a result too large for one line becomes an `internal` error.
fn response_line(r: &Response) -> Line {
    encode_line(r).unwrap_or_else(|| {
        let e = Response::err(
            r.id,
            ErrorCode::Internal,
            format!("response longer than {MAX_SERVER_LINE} bytes"),
        );
        encode_line(&e).unwrap_or_else(|| Line::from_static(b"{\"id\":null,\"ok\":false}\n"))
    })
}

#[cfg(test)]
mod tests;
