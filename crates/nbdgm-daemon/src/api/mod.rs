//! Local API server of `nbdgm serve`: JSON lines (see `docs/api.md` and
//! [`nbdgm_api`]) on a Unix socket, optionally also on TCP.
//!
//! The API layer accepts clients (peer credentials, allow lists, client cap), reads
//! requests (64 KiB line cap), answers `subscribe`/`unsubscribe` itself through the
//! [`Hub`] and forwards every other request to the runtime as [`ApiMsg::Request`].
//! Each client has one bounded outgoing queue drained by a writer task; events that
//! find it full are dropped, counted, and reported to the client by an `overflow`
//! event as soon as the queue moves again.
//!
//! Queues are bounded in bytes per client and in total; clients are capped per peer
//! (uid, TCP address) as well as in all, accept errors back off; a TCP client must
//! say `hello` with the token first.

mod conn;
mod hub;
mod listener;

pub use hub::Hub;
pub use listener::{bind, read_token_file, ApiListener};

use nbdgm_api::{ErrorCode, Request, Response, MAX_SERVER_LINE};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

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

/// One line to send, serialized once and shared by every client it goes to (a
/// `Vec` becomes one without a copy).
type Line = bytes::Bytes;

/// A queued line and the queue bytes it holds until written.
struct Queued {
    line: Line,
    _bytes: Option<OwnedSemaphorePermit>,
    _total: Option<OwnedSemaphorePermit>,
}

/// Bytes a line takes from a byte cap of `cap` (a line larger than the cap takes it all).
fn permits(len: usize, cap: usize) -> u32 {
    u32::try_from(len.min(cap).max(1)).unwrap_or(u32::MAX)
}

/// Take the permits a line of `len` bytes needs from `sem` (capped at `cap`), if
/// free now.
fn try_permits(
    sem: &std::sync::Arc<tokio::sync::Semaphore>,
    len: usize,
    cap: usize,
) -> Option<OwnedSemaphorePermit> {
    sem.clone().try_acquire_many_owned(permits(len, cap)).ok()
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
