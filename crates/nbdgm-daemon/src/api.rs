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
//! Issue 12: queues are bounded in bytes per client and in total (item 6); clients
//! are capped per peer (uid, TCP address) as well as in all, accept errors back off
//! (item 7); a TCP client must say `hello` with the token first (item 10).

use nbdgm_api::{
    self as proto, DatagramEvent, ErrorCode, NameEvent, Op, Request, Response, SubscribeResult,
    Subscription, MAX_LINE, MAX_SERVER_LINE,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

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

/// One line to send, serialized once and shared by every client it goes to.
type Line = Arc<[u8]>;

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

/// Counters of the API layer (part of the daemon's `stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubStats {
    /// Clients connected now.
    pub clients: usize,
    /// Subscriptions now.
    pub subscriptions: usize,
    /// Clients accepted since start.
    pub clients_total: u64,
    /// Clients turned away because `max_clients` were connected.
    pub clients_rejected: u64,
    /// Clients turned away by the uid/gid allow lists or the TCP ACL.
    pub clients_denied: u64,
    /// Clients turned away because their peer (uid, TCP address) had its share.
    #[serde(default)]
    pub clients_rejected_per_peer: u64,
    /// TCP clients turned away for a missing or wrong token (or none in time).
    #[serde(default)]
    pub clients_unauthenticated: u64,
    /// Accept errors (e.g. out of descriptors); the listener backs off.
    #[serde(default)]
    pub accept_errors: u64,
    /// Events published (datagram and name), whether they matched or not.
    pub events_published: u64,
    /// Event lines queued to clients.
    pub events_delivered: u64,
    /// Event lines dropped because a client's queue was full (lines or bytes).
    pub events_dropped_queue_full: u64,
    /// Event lines dropped because all clients' queues together held their cap.
    #[serde(default)]
    pub events_dropped_total_bytes: u64,
    /// Bytes queued to all clients now.
    #[serde(default)]
    pub queued_bytes: usize,
    /// Events dropped because their line would exceed the line cap.
    pub events_too_large: u64,
    /// `overflow` events sent.
    pub overflow_events: u64,
    /// Request lines received.
    pub requests: u64,
    /// Request lines answered with `bad_request` or `unsupported`.
    pub bad_requests: u64,
    /// Connections closed for a line over 64 KiB.
    pub oversize_lines: u64,
    /// Connections closed because the client stopped reading.
    pub write_stalls: u64,
}

#[derive(Default)]
struct Counters {
    clients_total: AtomicU64,
    clients_rejected: AtomicU64,
    clients_denied: AtomicU64,
    clients_rejected_per_peer: AtomicU64,
    clients_unauthenticated: AtomicU64,
    accept_errors: AtomicU64,
    events_dropped_total_bytes: AtomicU64,
    events_published: AtomicU64,
    events_delivered: AtomicU64,
    events_dropped_queue_full: AtomicU64,
    events_too_large: AtomicU64,
    overflow_events: AtomicU64,
    requests: AtomicU64,
    bad_requests: AtomicU64,
    oversize_lines: AtomicU64,
    write_stalls: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct ClientSlot {
    tx: mpsc::Sender<Queued>,
    /// Queue bytes left to this client, of `cap`.
    bytes: Arc<Semaphore>,
    cap: usize,
    /// Events dropped since the last `overflow` event (shared with the writer).
    dropped: Arc<AtomicU64>,
    subscriptions: usize,
}

/// A subscription, its filters in canonical form.
struct Sub {
    client: u64,
    /// `NAME<xx>` as printed by [`nbdgm_wire::Name`].
    name: Option<String>,
    mailslot: Option<String>,
    all: bool,
}

#[derive(Default)]
struct HubInner {
    clients: HashMap<u64, ClientSlot>,
    subs: HashMap<u64, Sub>,
    next_sub: u64,
}

/// The subscription registry and event fan-out, shared by the API server and the
/// runtime (`Arc<Hub>`). All methods are synchronous and never block on a client.
pub struct Hub {
    inner: Mutex<HubInner>,
    counters: Counters,
    next_client: AtomicU64,
    /// Event bytes all queues may hold together.
    total: Arc<Semaphore>,
    total_cap: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::with_queue_bytes_total(DEFAULT_QUEUE_BYTES_TOTAL)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("stats", &self.stats()).finish()
    }
}

/// Borrowed events, so that publishing serializes without cloning.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum EventRef<'a> {
    Datagram(&'a DatagramEvent),
    Name(&'a NameEvent),
}

/// `NAME<xx>` in the form [`nbdgm_wire::Name`] prints it, or `None` if invalid.
fn canonical_name(s: &str) -> Option<String> {
    s.parse::<nbdgm_wire::Name>().ok().map(|n| n.to_string())
}

/// Check a subscription's filters; the error message is for `bad_request`.
pub fn validate_subscription(sub: &Subscription) -> Result<(), String> {
    if let Some(n) = &sub.name {
        if let Err(e) = n.parse::<nbdgm_wire::Name>() {
            return Err(format!("bad name {n:?}: {e}"));
        }
    }
    if let Some(m) = &sub.mailslot {
        // Mailslot names are Latin-1 on the wire (any octet but NUL), so a filter may
        // hold any character up to U+00FF: one octet each, 255 at most.
        let latin1 = m.chars().all(|c| c != '\0' && u32::from(c) <= 0xFF);
        if m.is_empty() || m.chars().count() > 255 || !latin1 {
            return Err(format!("bad mailslot name {m:?}"));
        }
    }
    Ok(())
}

/// A received datagram, borrowed: what the runtime hands the hub for every delivery.
/// [`DatagramView::line`] writes the same JSON that serde writes for [`DatagramEvent`]
/// (checked by a test), without the intermediate strings: this is the daemon's hot path.
#[derive(Debug, Clone, Copy)]
pub struct DatagramView<'a> {
    pub interface: Ipv4Addr,
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub header_source: SocketAddrV4,
    /// As [`proto::msg_type_str`] gives it.
    pub msg_type: &'static str,
    /// `NAME<xx>` as [`nbdgm_wire::Name`] prints it.
    pub source: &'a str,
    pub destination: &'a str,
    pub broadcast: bool,
    pub for_us: bool,
    pub fragments: u32,
    pub mailslot: Option<&'a str>,
    pub data: &'a [u8],
}

impl DatagramView<'_> {
    /// The event line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(256 + self.data.len() * 2);
        b.extend_from_slice(br#"{"event":"datagram","interface":""#);
        push_ip(&mut b, self.interface);
        b.extend_from_slice(br#"","from":""#);
        push_addr(&mut b, self.from);
        b.extend_from_slice(br#"","to":""#);
        push_addr(&mut b, self.to);
        b.extend_from_slice(br#"","header_source":""#);
        push_addr(&mut b, self.header_source);
        b.extend_from_slice(br#"","msg_type":"#);
        push_str(&mut b, self.msg_type);
        b.extend_from_slice(br#","source":"#);
        push_str(&mut b, self.source);
        b.extend_from_slice(br#","destination":"#);
        push_str(&mut b, self.destination);
        b.extend_from_slice(br#","broadcast":"#);
        b.extend_from_slice(if self.broadcast { b"true" } else { b"false" });
        b.extend_from_slice(br#","for_us":"#);
        b.extend_from_slice(if self.for_us { b"true" } else { b"false" });
        b.extend_from_slice(br#","fragments":"#);
        push_u32(&mut b, self.fragments);
        b.extend_from_slice(br#","mailslot":"#);
        match self.mailslot {
            Some(m) => push_str(&mut b, m),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(br#","data_hex":""#);
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &x in self.data {
            b.push(DIGITS[usize::from(x >> 4)]);
            b.push(DIGITS[usize::from(x & 0xF)]);
        }
        b.extend_from_slice(b"\"}\n");
        b
    }
}

fn push_u32(b: &mut Vec<u8>, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b.extend_from_slice(&digits[i..]);
}

fn push_ip(b: &mut Vec<u8>, ip: Ipv4Addr) {
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            b.push(b'.');
        }
        push_u32(b, u32::from(o));
    }
}

fn push_addr(b: &mut Vec<u8>, a: SocketAddrV4) {
    push_ip(b, *a.ip());
    b.push(b':');
    push_u32(b, u32::from(a.port()));
}

/// A JSON string (names may hold any Latin-1 character, so escape as serde does).
fn push_str(b: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|c| c >= 0x20 && c != b'"' && c != b'\\' && c < 0x7f)
    {
        b.push(b'"');
        b.extend_from_slice(s.as_bytes());
        b.push(b'"');
    } else if serde_json::to_writer(&mut *b, s).is_err() {
        b.extend_from_slice(b"null");
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// An empty hub whose client queues hold at most `total` event bytes together.
    pub fn with_queue_bytes_total(total: usize) -> Hub {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Hub {
            inner: Mutex::default(),
            counters: Counters::default(),
            next_client: AtomicU64::new(0),
            total: Arc::new(Semaphore::new(total)),
            total_cap: total,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn attach(
        &self,
        client: u64,
        tx: mpsc::Sender<Queued>,
        bytes: (Arc<Semaphore>, usize),
        dropped: Arc<AtomicU64>,
    ) {
        self.lock().clients.insert(
            client,
            ClientSlot {
                tx,
                bytes: bytes.0,
                cap: bytes.1,
                dropped,
                subscriptions: 0,
            },
        );
    }

    /// Forget a client and its subscriptions; returns how many subscriptions ended.
    fn detach(&self, client: u64) -> usize {
        let mut inner = self.lock();
        inner.clients.remove(&client);
        let before = inner.subs.len();
        inner.subs.retain(|_, s| s.client != client);
        before - inner.subs.len()
    }

    fn try_subscribe(&self, client: u64, sub: Subscription) -> Result<u64, (ErrorCode, String)> {
        validate_subscription(&sub).map_err(|m| (ErrorCode::BadRequest, m))?;
        let mut inner = self.lock();
        let Some(slot) = inner.clients.get_mut(&client) else {
            return Err((ErrorCode::NotFound, "client is not connected".into()));
        };
        if slot.subscriptions >= MAX_SUBSCRIPTIONS_PER_CLIENT {
            return Err((
                ErrorCode::Busy,
                format!("at most {MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions per client"),
            ));
        }
        slot.subscriptions += 1;
        inner.next_sub += 1;
        let id = inner.next_sub;
        inner.subs.insert(
            id,
            Sub {
                client,
                name: sub.name.as_deref().and_then(canonical_name),
                mailslot: sub.mailslot,
                all: sub.all,
            },
        );
        Ok(id)
    }

    /// Add a subscription for a connected client; returns its id, or 0 when the
    /// client is not connected, a filter is invalid or the client has
    /// [`MAX_SUBSCRIPTIONS_PER_CLIENT`] already.
    pub fn subscribe(&self, client: u64, sub: Subscription) -> u64 {
        self.try_subscribe(client, sub).unwrap_or(0)
    }

    /// True when at least one subscription exists (the runtime skips building events
    /// nobody wants).
    pub fn has_subscriptions(&self) -> bool {
        !self.lock().subs.is_empty()
    }

    /// End subscription `id` of `client`; false if it has no such subscription.
    pub fn unsubscribe(&self, client: u64, id: u64) -> bool {
        let mut inner = self.lock();
        match inner.subs.get(&id) {
            Some(s) if s.client == client => {}
            _ => return false,
        }
        inner.subs.remove(&id);
        if let Some(slot) = inner.clients.get_mut(&client) {
            slot.subscriptions = slot.subscriptions.saturating_sub(1);
        }
        true
    }

    /// Queue a datagram event to every client with a matching subscription (once per
    /// client however many of its subscriptions match); returns how many clients it
    /// was queued to. A subscription matches when its `name` (if set) equals the
    /// destination name, its `mailslot` (if set) equals the event's mailslot
    /// ignoring ASCII case, and — unless it has `all` — the datagram is `for_us` or
    /// addressed to `*`.
    pub fn publish_datagram(&self, ev: &DatagramEvent) -> usize {
        inc(&self.counters.events_published);
        let dest = canonical_name(&ev.destination);
        let dest = dest.as_deref().unwrap_or(&ev.destination);
        let ours = ev.for_us || dest.starts_with("*<");
        let matches = |s: &Sub| {
            (s.all || ours)
                && s.name.as_deref().is_none_or(|n| n == dest)
                && s.mailslot.as_deref().is_none_or(|m| {
                    ev.mailslot
                        .as_deref()
                        .is_some_and(|em| em.eq_ignore_ascii_case(m))
                })
        };
        let targets = {
            let inner = self.lock();
            let mut ids: Vec<u64> = inner
                .subs
                .values()
                .filter(|s| matches(s))
                .map(|s| s.client)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            collect_targets(&inner, &ids)
        };
        self.fan_out(&EventRef::Datagram(ev), targets)
    }

    /// Queue a name event to every client that has at least one subscription;
    /// returns how many clients it was queued to.
    pub fn publish_name(&self, ev: &NameEvent) -> usize {
        inc(&self.counters.events_published);
        let targets = {
            let inner = self.lock();
            let mut ids: Vec<u64> = inner
                .clients
                .iter()
                .filter(|(_, c)| c.subscriptions > 0)
                .map(|(id, _)| *id)
                .collect();
            ids.sort_unstable();
            collect_targets(&inner, &ids)
        };
        self.fan_out(&EventRef::Name(ev), targets)
    }

    fn fan_out(&self, ev: &EventRef<'_>, targets: Vec<Target>) -> usize {
        if targets.is_empty() {
            return 0;
        }
        let Some(line) = encode_line(ev) else {
            inc(&self.counters.events_too_large);
            return 0;
        };
        self.send_line(line, targets)
    }

    /// Queue `line` to each target that has room in lines and bytes (its own and the
    /// total); the others count a drop.
    fn send_line(&self, line: Line, targets: Vec<Target>) -> usize {
        let mut sent = 0;
        for t in targets {
            let drop_one = |c: &AtomicU64| {
                t.dropped.fetch_add(1, Ordering::Relaxed);
                inc(c);
            };
            let Ok(bytes) = t
                .bytes
                .clone()
                .try_acquire_many_owned(permits(line.len(), t.cap))
            else {
                drop_one(&self.counters.events_dropped_queue_full);
                continue;
            };
            let Ok(total) = self
                .total
                .clone()
                .try_acquire_many_owned(permits(line.len(), self.total_cap))
            else {
                drop_one(&self.counters.events_dropped_total_bytes);
                continue;
            };
            let q = Queued {
                line: line.clone(),
                _bytes: Some(bytes),
                _total: Some(total),
            };
            match t.tx.try_send(q) {
                Ok(()) => {
                    sent += 1;
                    inc(&self.counters.events_delivered);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    drop_one(&self.counters.events_dropped_queue_full);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        sent
    }

    /// [`Hub::publish_datagram`] for the runtime's hot path: the event is borrowed and its
    /// line written directly (hex straight into the line, no intermediate strings). The
    /// names must be in the form [`nbdgm_wire::Name`] prints, as subscriptions are.
    pub fn publish_datagram_view(&self, v: &DatagramView<'_>) -> usize {
        inc(&self.counters.events_published);
        let ours = v.for_us || v.destination.starts_with("*<");
        let targets = {
            let inner = self.lock();
            let mut ids: Vec<u64> = inner
                .subs
                .values()
                .filter(|s| {
                    (s.all || ours)
                        && s.name.as_deref().is_none_or(|n| n == v.destination)
                        && s.mailslot
                            .as_deref()
                            .is_none_or(|m| v.mailslot.is_some_and(|em| em.eq_ignore_ascii_case(m)))
                })
                .map(|s| s.client)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            collect_targets(&inner, &ids)
        };
        if targets.is_empty() {
            return 0;
        }
        let line = v.line();
        if line.len() > MAX_SERVER_LINE + 1 {
            inc(&self.counters.events_too_large);
            return 0;
        }
        self.send_line(line.into(), targets)
    }

    /// The counters.
    pub fn stats(&self) -> HubStats {
        let (clients, subscriptions) = {
            let inner = self.lock();
            (inner.clients.len(), inner.subs.len())
        };
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HubStats {
            clients,
            subscriptions,
            clients_total: get(&c.clients_total),
            clients_rejected: get(&c.clients_rejected),
            clients_denied: get(&c.clients_denied),
            clients_rejected_per_peer: get(&c.clients_rejected_per_peer),
            clients_unauthenticated: get(&c.clients_unauthenticated),
            accept_errors: get(&c.accept_errors),
            events_dropped_total_bytes: get(&c.events_dropped_total_bytes),
            queued_bytes: self.total_cap - self.total.available_permits(),
            events_published: get(&c.events_published),
            events_delivered: get(&c.events_delivered),
            events_dropped_queue_full: get(&c.events_dropped_queue_full),
            events_too_large: get(&c.events_too_large),
            overflow_events: get(&c.overflow_events),
            requests: get(&c.requests),
            bad_requests: get(&c.bad_requests),
            oversize_lines: get(&c.oversize_lines),
            write_stalls: get(&c.write_stalls),
        }
    }
}

/// A client an event goes to.
struct Target {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    cap: usize,
    dropped: Arc<AtomicU64>,
}

fn collect_targets(inner: &HubInner, ids: &[u64]) -> Vec<Target> {
    ids.iter()
        .filter_map(|id| inner.clients.get(id))
        .map(|c| Target {
            tx: c.tx.clone(),
            bytes: c.bytes.clone(),
            cap: c.cap,
            dropped: c.dropped.clone(),
        })
        .collect()
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
        encode_line(&e).unwrap_or_else(|| Arc::from(&b"{\"id\":null,\"ok\":false}\n"[..]))
    })
}

/// Removes the socket file when dropped, if it is still the one we created.
#[derive(Debug)]
struct SocketGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove API socket");
                }
            }
            _ => {}
        }
    }
}

/// Bound API sockets, not yet accepting (see [`bind`] and [`ApiListener::run`]).
pub struct ApiListener {
    config: ApiConfig,
    unix: std::os::unix::net::UnixListener,
    tcp: Option<std::net::TcpListener>,
    guard: SocketGuard,
}

impl std::fmt::Debug for ApiListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiListener")
            .field("config", &self.config)
            .field("tcp", &self.tcp_addr())
            .finish_non_exhaustive()
    }
}

/// Remove a stale socket at `path` (nobody listening); refuse a live one or a file
/// that is not a socket.
fn clear_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another process (another nbdgm daemon?) is listening on {}",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale API socket");
            std::fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot check existing socket {}: {e}", path.display()),
        )),
    }
}

fn resolve_group(group: &str) -> io::Result<nix::unistd::Gid> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(n));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such group {group:?}"),
        )),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Create the Unix socket (and the TCP listener if configured): remove a stale
/// socket file, refuse if a daemon listens there, bind, chmod to `mode`, chown to
/// `group`. Call before dropping privileges so that errors surface early. The
/// socket file is removed when the returned listener (or its `run`) ends.
pub fn bind(config: ApiConfig) -> io::Result<ApiListener> {
    let path = config.socket.clone();
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)?;
        }
    }
    clear_stale_socket(&path)?;
    let unix = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
    let meta = std::fs::symlink_metadata(&path)?;
    let guard = SocketGuard {
        path: path.clone(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    unix.set_nonblocking(true)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(config.mode))?;
    if let Some(group) = &config.group {
        let gid = resolve_group(group)?;
        nix::unistd::chown(&path, None, Some(gid)).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("chown {} to group {group}: {e}", path.display()),
            )
        })?;
    }
    let tcp = match config.tcp {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("bind TCP {addr}: {e}")))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    tracing::info!(socket = %path.display(), mode = format_args!("{:o}", config.mode), tcp = ?config.tcp, "API listening");
    Ok(ApiListener {
        config,
        unix,
        tcp,
        guard,
    })
}

/// Shortest token accepted from `api.tcp_token_file`.
pub const MIN_TOKEN_LEN: usize = 16;

/// Read the TCP API's token: the file must be readable and writable by its owner only
/// and hold at least [`MIN_TOKEN_LEN`] bytes (surrounding whitespace is ignored). The
/// errors never contain the token.
pub fn read_token_file(path: &Path) -> io::Result<Arc<[u8]>> {
    let meta = std::fs::metadata(path)?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} has mode {:04o}: other users could read the token (chmod 600)",
                path.display(),
                mode & 0o7777
            ),
        ));
    }
    let text = std::fs::read(path)?;
    let token = text.trim_ascii();
    if token.len() < MIN_TOKEN_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the token must be at least {MIN_TOKEN_LEN} bytes",
                path.display()
            ),
        ));
    }
    Ok(Arc::from(token))
}

/// Bind and run until `shutdown` becomes true (or its sender is dropped).
pub async fn serve(
    config: ApiConfig,
    hub: Arc<Hub>,
    tx: mpsc::Sender<ApiMsg>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    bind(config)?.run(hub, tx, shutdown).await
}

/// State shared by the accept loop and the connections.
struct Shared {
    config: ApiConfig,
    hub: Arc<Hub>,
    tx: mpsc::Sender<ApiMsg>,
    active: AtomicUsize,
    /// Connected clients per peer (uid or TCP address).
    per_peer: Mutex<HashMap<String, usize>>,
    /// Rejection lines being written.
    rejecting: Arc<AtomicUsize>,
    /// TCP clients authenticating.
    authenticating: Arc<Semaphore>,
}

/// Frees the client's slots (in all and of its peer) when a connection ends, however
/// it ends.
struct ActiveGuard(Arc<Shared>, String);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        let mut p = self.0.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = p.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                p.remove(&self.1);
            }
        }
    }
}

/// The key of a client's peer for `max_clients_per_peer`.
fn peer_key(info: &ClientInfo) -> String {
    match (info.uid, info.peer.strip_prefix("tcp:")) {
        (Some(uid), _) => format!("uid:{uid}"),
        (None, Some(addr)) => addr
            .parse::<SocketAddr>()
            .map_or_else(|_| addr.to_owned(), |a| format!("ip:{}", a.ip())),
        (None, None) => "unknown".to_owned(),
    }
}

async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

impl ApiListener {
    /// Path of the Unix socket.
    pub fn socket_path(&self) -> &Path {
        &self.guard.path
    }

    /// Address of the TCP listener, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// Accept clients until `shutdown` becomes true (or its sender is dropped), then
    /// remove the socket file. Open connections end at shutdown too.
    pub async fn run(
        self,
        hub: Arc<Hub>,
        tx: mpsc::Sender<ApiMsg>,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let ApiListener {
            config,
            unix,
            tcp,
            guard,
        } = self;
        let unix = tokio::net::UnixListener::from_std(unix)?;
        let tcp = match tcp {
            Some(t) => Some(tokio::net::TcpListener::from_std(t)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            config,
            hub,
            tx,
            active: AtomicUsize::new(0),
            per_peer: Mutex::default(),
            rejecting: Arc::default(),
            authenticating: Arc::new(Semaphore::new(MAX_AUTHENTICATING)),
        });
        let mut backoff = nbdgm_http::AcceptBackoff::new("api");
        loop {
            tokio::select! {
                _ = wait_shutdown(&mut shutdown) => break,
                r = unix.accept() => match r {
                    Ok((stream, _)) => {
                        backoff.reset();
                        accept_unix(&shared, stream, shutdown.clone())
                    }
                    Err(e) => {
                        inc(&shared.hub.counters.accept_errors);
                        backoff.failed(&e).await
                    }
                },
                r = accept_tcp(tcp.as_ref()) => match r {
                    Ok((stream, peer)) => {
                        backoff.reset();
                        accept_tcp_conn(&shared, stream, peer, shutdown.clone())
                    }
                    Err(e) => {
                        inc(&shared.hub.counters.accept_errors);
                        backoff.failed(&e).await
                    }
                },
            }
        }
        drop(guard);
        tracing::info!("API stopped");
        Ok(())
    }
}

async fn accept_tcp(
    l: Option<&tokio::net::TcpListener>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Supplementary groups of `pid` from `/proc/PID/status` (empty when unknown).
fn supplementary_groups(pid: Option<i32>) -> Vec<u32> {
    let Some(pid) = pid.filter(|p| *p > 0) else {
        return Vec::new();
    };
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a Unix peer passes the allow lists.
fn peer_allowed(config: &ApiConfig, info: &ClientInfo) -> bool {
    if config.allow_uids.is_empty() && config.allow_gids.is_empty() {
        return true;
    }
    if info.uid.is_some_and(|u| config.allow_uids.contains(&u)) {
        return true;
    }
    if config.allow_gids.is_empty() {
        return false;
    }
    if info.gid.is_some_and(|g| config.allow_gids.contains(&g)) {
        return true;
    }
    supplementary_groups(info.pid)
        .iter()
        .any(|g| config.allow_gids.contains(g))
}

fn accept_unix(
    shared: &Arc<Shared>,
    stream: tokio::net::UnixStream,
    shutdown: watch::Receiver<bool>,
) {
    let id = shared.hub.next_client_id();
    let cred = stream.peer_cred().ok();
    let pid = cred.as_ref().and_then(|c| c.pid());
    let info = ClientInfo {
        id,
        pid,
        uid: cred.as_ref().map(|c| c.uid()),
        gid: cred.as_ref().map(|c| c.gid()),
        peer: match pid {
            Some(p) => format!("unix:pid={p}"),
            None => "unix".to_owned(),
        },
    };
    tracing::info!(client = id, pid = ?info.pid, uid = ?info.uid, gid = ?info.gid, "API client connected");
    if !peer_allowed(&shared.config, &info) {
        inc(&shared.hub.counters.clients_denied);
        tracing::warn!(client = id, pid = ?info.pid, uid = ?info.uid, gid = ?info.gid, "API client denied by uid/gid allow list");
        reject(
            shared,
            stream,
            ErrorCode::Denied,
            "not allowed to use this API",
        );
        return;
    }
    start_client(shared, stream, info, None, shutdown);
}

fn accept_tcp_conn(
    shared: &Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let id = shared.hub.next_client_id();
    tracing::info!(client = id, %peer, "API TCP client connected");
    if !(shared.config.tcp_acl)(peer.ip()) {
        inc(&shared.hub.counters.clients_denied);
        tracing::warn!(client = id, %peer, "API TCP client denied by ACL");
        reject(shared, stream, ErrorCode::Denied, "address not allowed");
        return;
    }
    let _ = stream.set_nodelay(true);
    let info = ClientInfo {
        id,
        pid: None,
        uid: None,
        gid: None,
        peer: format!("tcp:{peer}"),
    };
    let Some(token) = shared.config.tcp_token.clone() else {
        // Only reachable when the API is built in code without a token.
        start_client(shared, stream, info, None, shutdown);
        return;
    };
    let Ok(permit) = shared.authenticating.clone().try_acquire_owned() else {
        inc(&shared.hub.counters.clients_rejected);
        reject(
            shared,
            stream,
            ErrorCode::Busy,
            "too many clients authenticating",
        );
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut stream = BufReader::new(stream);
        let first = tokio::time::timeout(AUTH_TIMEOUT, authenticate(&mut stream, &token)).await;
        drop(permit);
        match first {
            Ok(Ok(hello)) => start_client(&shared, stream, info, Some(hello), shutdown),
            r => {
                inc(&shared.hub.counters.clients_unauthenticated);
                let message = match r {
                    Ok(Err(m)) => m,
                    _ => "no hello with the token in time",
                };
                tracing::warn!(client = info.id, peer = %info.peer, "API TCP client not authenticated: {message}");
                reject(&shared, stream, ErrorCode::Denied, message);
            }
        }
    });
}

/// Read the first request of a TCP client: it must be `hello` with the token. The
/// token is compared in constant time and never logged.
async fn authenticate<S: AsyncBufRead + Unpin>(
    stream: &mut S,
    token: &[u8],
) -> Result<Request, &'static str> {
    let mut line = Vec::with_capacity(256);
    loop {
        match read_line_capped(stream, &mut line, MAX_LINE).await {
            Ok(ReadLine::Line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(ReadLine::Line) => break,
            _ => return Err("no hello with the token"),
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&line)
        .map_err(|_| "the first request must be hello with the token")?;
    let given = match (v.get("op").and_then(|o| o.as_str()), v.get("token")) {
        (Some("hello"), Some(serde_json::Value::String(t))) => t.as_bytes(),
        _ => return Err("the first request must be hello with the token"),
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(given, token)) {
        return Err("wrong token");
    }
    parse_request(&line).map_err(|_| "the first request must be hello with the token")
}

/// Send one error line and close (in the background, a bounded number at once).
fn reject<S: AsyncWrite + Unpin + Send + 'static>(
    shared: &Arc<Shared>,
    mut stream: S,
    code: ErrorCode,
    message: &'static str,
) {
    let rejecting = shared.rejecting.clone();
    if rejecting.fetch_add(1, Ordering::Relaxed) >= MAX_REJECTING {
        rejecting.fetch_sub(1, Ordering::Relaxed);
        return; // dropped: closed at once
    }
    tokio::spawn(async move {
        let line = response_line(&Response::err(None, code, message));
        let _ = tokio::time::timeout(REJECT_WRITE_TIMEOUT, async {
            let _ = stream.write_all(&line).await;
            let _ = stream.shutdown().await;
        })
        .await;
        rejecting.fetch_sub(1, Ordering::Relaxed);
    });
}

trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

fn start_client<S: Conn>(
    shared: &Arc<Shared>,
    stream: S,
    info: ClientInfo,
    first: Option<Request>,
    shutdown: watch::Receiver<bool>,
) {
    let max = shared.config.max_clients;
    if shared.active.fetch_add(1, Ordering::Relaxed) >= max {
        shared.active.fetch_sub(1, Ordering::Relaxed);
        inc(&shared.hub.counters.clients_rejected);
        tracing::warn!(
            client = info.id,
            max,
            "API client rejected: too many clients"
        );
        reject(shared, stream, ErrorCode::Busy, "too many clients");
        return;
    }
    let key = peer_key(&info);
    {
        let mut p = shared.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        let n = p.entry(key.clone()).or_insert(0);
        if *n >= shared.config.max_clients_per_peer {
            drop(p);
            shared.active.fetch_sub(1, Ordering::Relaxed);
            inc(&shared.hub.counters.clients_rejected_per_peer);
            tracing::warn!(
                client = info.id,
                peer = %key,
                max = shared.config.max_clients_per_peer,
                "API client rejected: too many clients of this peer"
            );
            reject(
                shared,
                stream,
                ErrorCode::Busy,
                "too many clients of this peer",
            );
            return;
        }
        *n += 1;
    }
    inc(&shared.hub.counters.clients_total);
    let guard = ActiveGuard(shared.clone(), key);
    tokio::spawn(connection(guard, stream, Arc::new(info), first, shutdown));
}

/// Outcome of reading one line.
enum ReadLine {
    Line,
    Eof,
    TooLong,
}

/// Read one line (without its newline) into `buf`, refusing more than `max` bytes.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<ReadLine> {
    buf.clear();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                ReadLine::Eof
            } else {
                ReadLine::Line
            });
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(p) => (p, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > max {
            return Ok(ReadLine::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take + usize::from(done));
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(ReadLine::Line);
        }
    }
}

/// A client's queue for responses: they wait for queue bytes, never dropped.
#[derive(Clone)]
struct Responder {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    cap: usize,
}

impl Responder {
    async fn send(&self, line: Line) -> Result<(), ()> {
        let n = permits(line.len(), self.cap);
        let bytes = self
            .bytes
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(drop)?;
        let q = Queued {
            line,
            _bytes: Some(bytes),
            _total: None,
        };
        self.tx.send(q).await.map_err(drop)
    }

    async fn closed(&self) {
        self.tx.closed().await
    }
}

async fn connection<S: Conn>(
    guard: ActiveGuard,
    stream: S,
    info: Arc<ClientInfo>,
    mut first: Option<Request>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = guard.0.clone();
    let hub = shared.hub.clone();
    let (rd, wr) = tokio::io::split(stream);
    let (tx, qrx) = mpsc::channel::<Queued>(shared.config.queue_per_client.max(1));
    let cap = shared
        .config
        .queue_bytes_per_client
        .clamp(1, Semaphore::MAX_PERMITS);
    let bytes = Arc::new(Semaphore::new(cap));
    let qtx = Responder {
        tx: tx.clone(),
        bytes: bytes.clone(),
        cap,
    };
    drop(tx);
    let dropped = Arc::new(AtomicU64::new(0));
    hub.attach(info.id, qtx.tx.clone(), (bytes, cap), dropped.clone());
    let writer = tokio::spawn(writer_task(wr, qrx, dropped, hub.clone(), info.id));

    let mut reader = BufReader::with_capacity(16 * 1024, rd);
    let mut line = Vec::with_capacity(1024);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // The authenticated `hello` of a TCP client comes first.
        if let Some(request) = first.take() {
            if !handle_request(&shared, &info, &qtx, &in_flight, request, &mut shutdown).await {
                break;
            }
            continue;
        }
        let r = tokio::select! {
            _ = wait_shutdown(&mut shutdown) => break,
            _ = qtx.closed() => break, // the writer gave up on this client
            r = read_line_capped(&mut reader, &mut line, MAX_LINE) => r,
        };
        match r {
            Ok(ReadLine::Line) => {}
            Ok(ReadLine::Eof) => break,
            Ok(ReadLine::TooLong) => {
                inc(&hub.counters.requests);
                inc(&hub.counters.bad_requests);
                inc(&hub.counters.oversize_lines);
                tracing::warn!(
                    client = info.id,
                    "API request line over {MAX_LINE} bytes; closing"
                );
                let r = Response::err(
                    None,
                    ErrorCode::BadRequest,
                    format!("request line longer than {MAX_LINE} bytes; closing the connection"),
                );
                let _ = qtx.send(response_line(&r)).await;
                break;
            }
            Err(e) => {
                tracing::debug!(client = info.id, error = %e, "API read failed");
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        inc(&hub.counters.requests);
        let request = match parse_request(&line) {
            Ok(r) => r,
            Err(resp) => {
                inc(&hub.counters.bad_requests);
                if qtx.send(response_line(&resp)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if !handle_request(&shared, &info, &qtx, &in_flight, request, &mut shutdown).await {
            break;
        }
    }

    let ended = hub.detach(info.id);
    drop(qtx);
    tracing::info!(
        client = info.id,
        subscriptions = ended,
        "API client disconnected"
    );
    let msg = ApiMsg::Disconnected {
        client: info.clone(),
    };
    if tokio::time::timeout(Duration::from_secs(5), shared.tx.send(msg))
        .await
        .is_err()
    {
        tracing::warn!(
            client = info.id,
            "runtime did not take the disconnect notice"
        );
    }
    if *shutdown.borrow() {
        writer.abort();
    }
    let _ = writer.await;
    drop(guard);
}

/// Answer `subscribe`/`unsubscribe` here, forward the rest to the runtime (at most
/// [`MAX_IN_FLIGHT`] at a time); false when the connection must end.
async fn handle_request(
    shared: &Arc<Shared>,
    info: &Arc<ClientInfo>,
    qtx: &Responder,
    in_flight: &Arc<Semaphore>,
    request: Request,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let id = request.id;
    let local = match &request.op {
        Op::Subscribe(sub) => Some(match shared.hub.try_subscribe(info.id, sub.clone()) {
            Ok(s) => Response::ok(id, &SubscribeResult { subscription: s }),
            Err((code, msg)) => Response::err(Some(id), code, msg),
        }),
        Op::Unsubscribe { subscription } => {
            Some(if shared.hub.unsubscribe(info.id, *subscription) {
                Response::ok(id, &serde_json::json!({}))
            } else {
                Response::err(
                    Some(id),
                    ErrorCode::NotFound,
                    format!("no subscription {subscription}"),
                )
            })
        }
        _ => None,
    };
    if let Some(resp) = local {
        return qtx.send(response_line(&resp)).await.is_ok();
    }
    // Forward to the runtime, at most MAX_IN_FLIGHT at a time.
    let permit = tokio::select! {
        _ = wait_shutdown(shutdown) => return false,
        p = in_flight.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return false },
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    let msg = ApiMsg::Request {
        client: info.clone(),
        request,
        reply: reply_tx,
    };
    let forwarded = tokio::select! {
        _ = wait_shutdown(shutdown) => return false,
        r = shared.tx.send(msg) => r.is_ok(),
    };
    if !forwarded {
        let r = Response::err(Some(id), ErrorCode::Internal, "the daemon is shutting down");
        return qtx.send(response_line(&r)).await.is_ok();
    }
    let qtx = qtx.clone();
    tokio::spawn(async move {
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, reply_rx).await {
            Ok(Ok(mut r)) => {
                r.id = Some(id);
                r
            }
            Ok(Err(_)) => Response::err(Some(id), ErrorCode::Internal, "request was dropped"),
            Err(_) => Response::err(Some(id), ErrorCode::Timeout, "no answer in time"),
        };
        let _ = qtx.send(response_line(&resp)).await;
        drop(permit);
    });
    true
}

/// Parse a request line; the error is the response to send.
fn parse_request(line: &[u8]) -> Result<Request, Response> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Response::err(None, ErrorCode::BadRequest, format!("invalid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(Response::err(
            None,
            ErrorCode::BadRequest,
            "a request must be a JSON object",
        ));
    };
    let Some(id) = obj.get("id").and_then(|i| i.as_u64()) else {
        return Err(Response::err(
            None,
            ErrorCode::BadRequest,
            "missing or invalid \"id\" (an unsigned integer)",
        ));
    };
    match obj.get("op").and_then(|o| o.as_str()) {
        None => {
            return Err(Response::err(
                Some(id),
                ErrorCode::BadRequest,
                "missing \"op\"",
            ))
        }
        Some(op) if !proto::OPS.contains(&op) => {
            return Err(Response::err(
                Some(id),
                ErrorCode::Unsupported,
                format!("unknown op {op:?}"),
            ))
        }
        Some(_) => {}
    }
    serde_json::from_value(v)
        .map_err(|e| Response::err(Some(id), ErrorCode::BadRequest, e.to_string()))
}

/// Drain the client's queue into the socket, flushing whenever the queue is
/// momentarily empty; report dropped events with an `overflow` event.
async fn writer_task<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Queued>,
    dropped: Arc<AtomicU64>,
    hub: Arc<Hub>,
    client: u64,
) {
    let mut w = tokio::io::BufWriter::with_capacity(64 * 1024, wr);
    let result: io::Result<()> = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(q) = next.take() {
                timed(WRITE_STALL_TIMEOUT, w.write_all(&q.line)).await?;
                drop(q); // its queue bytes are free again
                let n = dropped.swap(0, Ordering::Relaxed);
                if n > 0 {
                    inc(&hub.counters.overflow_events);
                    let ev = proto::Event::Overflow { dropped: n };
                    if let Some(l) = encode_line(&ev) {
                        timed(WRITE_STALL_TIMEOUT, w.write_all(&l)).await?;
                    }
                }
                next = rx.try_recv().ok();
            }
            timed(WRITE_STALL_TIMEOUT, w.flush()).await?;
        }
        let _ = timed(REJECT_WRITE_TIMEOUT, w.shutdown()).await;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if e.kind() == io::ErrorKind::TimedOut {
            inc(&hub.counters.write_stalls);
            tracing::warn!(client, "API client stopped reading; disconnecting");
        } else {
            tracing::debug!(client, error = %e, "API write failed");
        }
    }
}

async fn timed<T>(
    t: Duration,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_api::{Event, HelloResult, NameState, RegisterResult, ServerMsg};
    use nbdgm_client::{Client, Error as ClientError};
    use std::sync::mpsc as smpsc;
    use std::time::Instant;

    const T: Duration = Duration::from_secs(5);

    /// The hand-written line of the hot path says exactly what serde says for the
    /// same event (including names that need escaping and an empty payload).
    #[test]
    fn datagram_view_line_equals_serde() {
        let cases: [(&str, Option<&str>, &[u8]); 3] = [
            ("SAMBAA<00>", Some("\\MAILSLOT\\BROWSE"), b"\x01\x00\xff"),
            ("ODD\"NAME\\\u{e9}<1d>.scope", None, b""),
            ("*<00>", Some("\\MAILSLOT\\x\u{1}"), &[0u8; 300]),
        ];
        for (name, mailslot, data) in cases {
            let v = DatagramView {
                interface: Ipv4Addr::new(198, 51, 100, 10),
                from: "198.51.100.20:138".parse().unwrap(),
                to: "198.51.100.255:138".parse().unwrap(),
                header_source: "203.0.113.7:40000".parse().unwrap(),
                msg_type: "direct_group",
                source: name,
                destination: name,
                broadcast: true,
                for_us: false,
                fragments: 4_000_000_000,
                mailslot,
                data,
            };
            let ev = Event::Datagram(DatagramEvent {
                interface: IpAddr::V4(v.interface),
                from: SocketAddr::V4(v.from),
                to: Some(SocketAddr::V4(v.to)),
                header_source: SocketAddr::V4(v.header_source),
                msg_type: v.msg_type.into(),
                source: name.into(),
                destination: name.into(),
                broadcast: v.broadcast,
                for_us: v.for_us,
                fragments: v.fragments,
                mailslot: mailslot.map(String::from),
                data_hex: nbdgm_wire::hex::encode(data),
            });
            let line = v.line();
            assert_eq!(line.last(), Some(&b'\n'));
            let ours: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(ours, serde_json::to_value(&ev).unwrap());
            match proto::parse_server_line(&line[..line.len() - 1]).unwrap() {
                ServerMsg::Event(back) => assert_eq!(back, ev),
                other => panic!("{other:?}"),
            }
        }
    }

    fn temp_dir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "nbdgm-api-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The API server on its own runtime, with a fake runtime answering requests.
    struct TestDaemon {
        dir: PathBuf,
        path: PathBuf,
        tcp: Option<SocketAddr>,
        hub: Arc<Hub>,
        shutdown: watch::Sender<bool>,
        disconnected: smpsc::Receiver<u64>,
        server: Option<tokio::task::JoinHandle<io::Result<()>>>,
        rt: tokio::runtime::Runtime,
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A fake runtime: hello, register, stats; `release` of `GONE<00>` is not
    /// found; `lookup` of `DROP<00>` drops the reply; `names` echoes the client id.
    async fn fake_runtime(mut rx: mpsc::Receiver<ApiMsg>, hub: Arc<Hub>, disc: smpsc::Sender<u64>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                ApiMsg::Disconnected { client } => {
                    let _ = disc.send(client.id);
                }
                ApiMsg::Request {
                    client,
                    request,
                    reply,
                } => {
                    let id = request.id;
                    let resp = match request.op {
                        Op::Hello { .. } => Response::ok(
                            id,
                            &HelloResult {
                                server: "nbdgm".into(),
                                version: "test".into(),
                                protocol: proto::PROTOCOL_VERSION,
                                interfaces: vec![],
                            },
                        ),
                        Op::Register(a) => Response::ok(
                            id,
                            &RegisterResult {
                                name: a.name,
                                group: a.group,
                                state: NameState::Registered,
                            },
                        ),
                        Op::Release { name } if name == "GONE<00>" => {
                            Response::err(Some(id), ErrorCode::NotFound, "no such name")
                        }
                        Op::Lookup { name, .. } if name == "DROP<00>" => {
                            drop(reply);
                            continue;
                        }
                        Op::Names => Response::ok(
                            id,
                            &serde_json::json!({"client": client.id, "uid": client.uid}),
                        ),
                        Op::Stats => Response::ok(id, &hub.stats()),
                        _ => Response::err(Some(id), ErrorCode::Unsupported, "not in the fake"),
                    };
                    // A wrong id from the runtime is corrected by the API layer.
                    let mut resp = resp;
                    resp.id = Some(12345);
                    let _ = reply.send(resp);
                }
            }
        }
    }

    impl TestDaemon {
        fn start(tweak: impl FnOnce(&mut ApiConfig)) -> TestDaemon {
            let dir = temp_dir();
            let path = dir.join("api.sock");
            let mut config = ApiConfig::new(&path);
            tweak(&mut config);
            Self::start_with(dir, config).unwrap()
        }

        fn start_with(dir: PathBuf, config: ApiConfig) -> io::Result<TestDaemon> {
            let rt = rt();
            let path = config.socket.clone();
            let hub = Arc::new(Hub::new());
            let (tx, rx) = mpsc::channel(16);
            let (sd_tx, sd_rx) = watch::channel(false);
            let (disc_tx, disc_rx) = smpsc::channel();
            let listener = bind(config)?;
            let tcp = listener.tcp_addr();
            let _enter = rt.enter();
            rt.spawn(fake_runtime(rx, hub.clone(), disc_tx));
            let server = rt.spawn(listener.run(hub.clone(), tx, sd_rx));
            drop(_enter);
            Ok(TestDaemon {
                dir,
                path,
                tcp,
                hub,
                shutdown: sd_tx,
                disconnected: disc_rx,
                server: Some(server),
                rt,
            })
        }

        fn client(&self) -> Client {
            let mut c = Client::connect(&self.path).unwrap();
            c.set_timeout(T).unwrap();
            c
        }

        fn stop(&mut self) {
            let _ = self.shutdown.send(true);
            if let Some(s) = self.server.take() {
                self.rt.block_on(s).unwrap().unwrap();
            }
        }
    }

    impl Drop for TestDaemon {
        fn drop(&mut self) {
            let _ = self.shutdown.send(true);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < T, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn dgram(dest: &str, mailslot: Option<&str>, for_us: bool, data: &str) -> DatagramEvent {
        DatagramEvent {
            interface: "198.51.100.10".parse().unwrap(),
            from: "198.51.100.20:138".parse().unwrap(),
            to: None,
            header_source: "198.51.100.20:138".parse().unwrap(),
            msg_type: "direct_group".into(),
            source: "SAMBAA<00>".into(),
            destination: dest.into(),
            broadcast: true,
            for_us,
            fragments: 1,
            mailslot: mailslot.map(str::to_owned),
            data_hex: data.into(),
        }
    }

    fn next_datagram(c: &mut Client) -> Option<DatagramEvent> {
        match c.next_event(Some(Duration::from_millis(300))).unwrap() {
            Some(Event::Datagram(d)) => Some(d),
            None => None,
            Some(other) => panic!("unexpected event {other:?}"),
        }
    }

    /// Wait until the hub has `n` subscriptions (subscribe is answered before the
    /// test publishes, so this is only needed across clients).
    fn subs(d: &TestDaemon) -> usize {
        d.hub.stats().subscriptions
    }

    #[test]
    fn hello_register_and_runtime_errors() {
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        let h = c.hello().unwrap();
        assert_eq!(h.server, "nbdgm");
        assert_eq!(h.protocol, 1);
        let r = c.register("foo<20>", false).unwrap();
        assert_eq!(r.state, NameState::Registered);
        match c.release("GONE<00>") {
            Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
            other => panic!("{other:?}"),
        }
        match c.lookup("DROP<00>", None) {
            Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Internal),
            other => panic!("{other:?}"),
        }
        let names: serde_json::Value = c.call(Op::Names).unwrap();
        assert_eq!(names["uid"], nix::unistd::getuid().as_raw());
        let stats: HubStats = serde_json::from_value(c.stats().unwrap()).unwrap();
        assert_eq!(stats.clients, 1);
        assert_eq!(stats.requests, 6);
        assert_eq!(stats.bad_requests, 0);
    }

    #[test]
    fn latin1_mailslot_filter_accepted_and_matched() {
        // Mailslot names are Latin-1: U+009B is the octet 0x9b on the wire.
        let name = "\\MAILSLOT\\EV\x1b[2J\u{9b}\n";
        let ok = |m: &str| {
            validate_subscription(&Subscription {
                mailslot: Some(m.into()),
                ..Default::default()
            })
        };
        assert_eq!(ok(name), Ok(()));
        assert_eq!(ok(&"\u{ff}".repeat(255)), Ok(()));
        for bad in ["", "\\MAILSLOT\\\u{100}", "a\0b"] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
        assert!(ok(&"\u{ff}".repeat(256)).is_err());
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        c.subscribe(Subscription {
            mailslot: Some(name.into()),
            ..Default::default()
        })
        .unwrap();
        let ev = dgram("TESTGROUP<1d>", Some(name), true, "01");
        assert_eq!(d.hub.publish_datagram(&ev), 1);
        let got = next_datagram(&mut c).unwrap();
        assert_eq!(got.mailslot.as_deref(), Some(name));
        assert_eq!(got, ev);
    }

    #[test]
    fn subscribe_by_name_mailslot_and_all() {
        let d = TestDaemon::start(|_| {});
        let mut by_name = d.client();
        let mut by_slot = d.client();
        let mut all = d.client();
        let mut default = d.client();
        by_name
            .subscribe(Subscription {
                name: Some("testgroup<1d>".into()),
                ..Default::default()
            })
            .unwrap();
        by_slot
            .subscribe(Subscription {
                mailslot: Some("\\mailslot\\Browse".into()),
                ..Default::default()
            })
            .unwrap();
        all.subscribe(Subscription {
            all: true,
            ..Default::default()
        })
        .unwrap();
        default.subscribe(Subscription::default()).unwrap();
        assert_eq!(subs(&d), 4);

        // For us, to TESTGROUP<1d>, on \MAILSLOT\BROWSE: everybody.
        let ev = dgram("TESTGROUP<1d>", Some("\\MAILSLOT\\BROWSE"), true, "01");
        assert_eq!(d.hub.publish_datagram(&ev), 4);
        for c in [&mut by_name, &mut by_slot, &mut all, &mut default] {
            assert_eq!(next_datagram(c).unwrap(), ev);
        }
        // Another name, other mailslot: default and all only.
        let ev2 = dgram("OTHER<00>", Some("\\MAILSLOT\\LANMAN"), true, "02");
        assert_eq!(d.hub.publish_datagram(&ev2), 2);
        assert_eq!(next_datagram(&mut all).unwrap(), ev2);
        assert_eq!(next_datagram(&mut default).unwrap(), ev2);
        // Not for us: the promiscuous subscriber only.
        let ev3 = dgram("TESTGROUP<1d>", Some("\\MAILSLOT\\BROWSE"), false, "03");
        assert_eq!(d.hub.publish_datagram(&ev3), 1);
        assert_eq!(next_datagram(&mut all).unwrap(), ev3);
        // `*` counts as ours even when the runtime did not say so.
        let ev4 = dgram("*<00>", None, false, "04");
        assert_eq!(d.hub.publish_datagram(&ev4), 2);
        assert_eq!(next_datagram(&mut all).unwrap(), ev4);
        assert_eq!(next_datagram(&mut default).unwrap(), ev4);
        // Nothing else arrived anywhere.
        for c in [&mut by_name, &mut by_slot, &mut all, &mut default] {
            assert!(next_datagram(c).is_none());
        }
        // Name events go to clients with subscriptions.
        let ne = NameEvent {
            interface: "198.51.100.10".parse().unwrap(),
            name: "FOO<00>".into(),
            state: NameState::Conflict,
            by: Some("198.51.100.9".into()),
        };
        assert_eq!(d.hub.publish_name(&ne), 4);
        assert_eq!(by_name.next_event(Some(T)).unwrap(), Some(Event::Name(ne)));
        let st = d.hub.stats();
        assert_eq!(st.events_published, 5);
        assert_eq!(st.events_delivered, 13);
    }

    #[test]
    fn unsubscribe_and_bad_subscriptions() {
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        let s1 = c.subscribe(Subscription::default()).unwrap();
        let s2 = c
            .subscribe(Subscription {
                all: true,
                ..Default::default()
            })
            .unwrap();
        assert_ne!(s1, s2);
        let ev = dgram("X<00>", None, true, "");
        // Two matching subscriptions, one event.
        assert_eq!(d.hub.publish_datagram(&ev), 1);
        assert!(next_datagram(&mut c).is_some());
        assert!(next_datagram(&mut c).is_none());
        c.unsubscribe(s1).unwrap();
        c.unsubscribe(s2).unwrap();
        assert_eq!(d.hub.publish_datagram(&ev), 0);
        assert!(next_datagram(&mut c).is_none());
        match c.unsubscribe(s1) {
            Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
            other => panic!("{other:?}"),
        }
        // Another client cannot end someone else's subscription.
        let s3 = c.subscribe(Subscription::default()).unwrap();
        let mut other = d.client();
        assert!(other.unsubscribe(s3).is_err());
        assert!(!d.hub.unsubscribe(999, s3));
        match c.subscribe(Subscription {
            name: Some("NAME-TOO-LONG-FOR-NETBIOS<00>".into()),
            ..Default::default()
        }) {
            Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::BadRequest),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.hub.subscribe(999, Subscription::default()), 0);
        assert_eq!(subs(&d), 1);
    }

    #[test]
    fn subscriptions_end_at_disconnect() {
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        c.subscribe(Subscription::default()).unwrap();
        c.subscribe(Subscription {
            all: true,
            ..Default::default()
        })
        .unwrap();
        let names: serde_json::Value = c.call(Op::Names).unwrap();
        let id = names["client"].as_u64().unwrap();
        assert_eq!(subs(&d), 2);
        drop(c);
        assert_eq!(d.disconnected.recv_timeout(T).unwrap(), id);
        assert_eq!(subs(&d), 0);
        wait_until("client count 0", || d.hub.stats().clients == 0);
        assert_eq!(d.hub.publish_datagram(&dgram("X<00>", None, true, "")), 0);
    }

    #[test]
    fn bad_json_keeps_the_connection() {
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        let expect_err = |c: &mut Client, line: &[u8], id: Option<u64>, code: ErrorCode| {
            c.send_raw_line(line).unwrap();
            match c.read_raw(Some(T)).unwrap() {
                Some(ServerMsg::Response(r)) => {
                    assert!(!r.ok);
                    assert_eq!(r.id, id, "{}", String::from_utf8_lossy(line));
                    assert_eq!(r.error.unwrap().code, code);
                }
                other => panic!("{other:?}"),
            }
        };
        expect_err(&mut c, b"{not json", None, ErrorCode::BadRequest);
        expect_err(&mut c, b"[1,2]", None, ErrorCode::BadRequest);
        expect_err(&mut c, br#"{"op":"hello"}"#, None, ErrorCode::BadRequest);
        expect_err(
            &mut c,
            br#"{"id":-1,"op":"hello"}"#,
            None,
            ErrorCode::BadRequest,
        );
        expect_err(&mut c, br#"{"id":5}"#, Some(5), ErrorCode::BadRequest);
        expect_err(
            &mut c,
            br#"{"id":6,"op":"fly"}"#,
            Some(6),
            ErrorCode::Unsupported,
        );
        expect_err(
            &mut c,
            br#"{"id":7,"op":"register"}"#,
            Some(7),
            ErrorCode::BadRequest,
        );
        expect_err(&mut c, b"\xff\xfe", None, ErrorCode::BadRequest);
        // Blank lines are ignored; the connection still works.
        c.send_raw_line(b"").unwrap();
        c.send_raw_line(b"  \r").unwrap();
        assert_eq!(c.hello().unwrap().server, "nbdgm");
        let st = d.hub.stats();
        assert_eq!(st.bad_requests, 8);
        assert_eq!(st.requests, 9);
    }

    #[test]
    fn oversize_line_closes() {
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        let mut line = br#"{"id":1,"op":"hello","client":""#.to_vec();
        line.resize(MAX_LINE + 100, b'a');
        // The daemon may close before it has read everything we write.
        let _ = c.send_raw_line(&line);
        match c.read_raw(Some(T)) {
            Ok(Some(ServerMsg::Response(r))) => {
                assert_eq!(r.error.unwrap().code, ErrorCode::BadRequest);
                assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
            }
            Err(ClientError::Closed) | Err(ClientError::Io(_)) => {}
            other => panic!("{other:?}"),
        }
        wait_until("oversize counted", || d.hub.stats().oversize_lines == 1);
        // A line of exactly MAX_LINE bytes is fine.
        let mut c = d.client();
        let mut line = br#"{"id":1,"op":"hello","client":""#.to_vec();
        line.resize(MAX_LINE - 2, b'a');
        line.extend_from_slice(b"\"}");
        c.send_raw_line(&line).unwrap();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => assert!(r.ok),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn max_clients_enforced() {
        let d = TestDaemon::start(|c| c.max_clients = 2);
        let mut a = d.client();
        let mut b = d.client();
        a.hello().unwrap();
        b.hello().unwrap();
        let mut c = d.client();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Busy),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
        assert_eq!(d.hub.stats().clients_rejected, 1);
        drop(a);
        d.disconnected.recv_timeout(T).unwrap();
        wait_until("slot freed", || d.hub.stats().clients == 1);
        // The slot is free again (the count drops when the writer has finished).
        let start = Instant::now();
        loop {
            let mut c = d.client();
            match c.hello() {
                Ok(_) => break,
                Err(_) if start.elapsed() < T => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("{e}"),
            }
        }
        b.hello().unwrap();
    }

    #[test]
    fn queue_overflow_is_counted_and_reported() {
        let d = TestDaemon::start(|c| c.queue_per_client = 4);
        let mut c = d.client();
        c.subscribe(Subscription::default()).unwrap();
        // Large events fill the socket buffers quickly while the client reads nothing.
        let data = "ab".repeat(30_000);
        let published = 400u64;
        let mut sent = 0u64;
        for i in 0..published {
            let ev = dgram("X<00>", None, true, &format!("{i:04x}{data}"));
            sent += d.hub.publish_datagram(&ev) as u64;
        }
        let st = d.hub.stats();
        assert!(st.events_dropped_queue_full > 0, "{st:?}");
        assert_eq!(st.events_dropped_queue_full + sent, published);
        let mut got = 0u64;
        let mut overflow = 0u64;
        c.set_event_buffer(1_000);
        while let Some(ev) = c.next_event(Some(Duration::from_millis(500))).unwrap() {
            match ev {
                Event::Datagram(_) => got += 1,
                Event::Overflow { dropped } => overflow += dropped,
                Event::Name(_) => panic!("no name events here"),
            }
        }
        assert_eq!(got, sent);
        assert_eq!(overflow, st.events_dropped_queue_full);
        assert!(d.hub.stats().overflow_events >= 1);
        // The connection still works.
        c.hello().unwrap();
    }

    #[test]
    fn queues_are_bounded_in_bytes() {
        let cap = 300 * 1024;
        let d = TestDaemon::start(|c| {
            c.queue_per_client = 100_000;
            c.queue_bytes_per_client = cap;
        });
        let mut c = d.client();
        c.subscribe(Subscription::default()).unwrap();
        let data = "ab".repeat(30_000);
        let mut peak = 0;
        for i in 0..2_000u32 {
            d.hub
                .publish_datagram(&dgram("X<00>", None, true, &format!("{i:04x}{data}")));
            peak = peak.max(d.hub.stats().queued_bytes);
        }
        let st = d.hub.stats();
        assert!(st.events_dropped_queue_full > 0, "{st:?}");
        // Events only count against the total; the per-client cap bounds them.
        assert!(peak <= cap, "{peak} queued bytes, cap {cap}");
        // The client still gets what was queued, and an overflow notice.
        c.set_event_buffer(100_000);
        let mut overflow = 0;
        while let Some(ev) = c.next_event(Some(Duration::from_millis(500))).unwrap() {
            if let Event::Overflow { dropped } = ev {
                overflow += dropped;
            }
        }
        assert_eq!(overflow, st.events_dropped_queue_full);
        c.hello().unwrap();
    }

    #[test]
    fn total_queue_bytes_are_capped_across_clients() {
        let hub = Hub::with_queue_bytes_total(200_000);
        let mut keep = Vec::new();
        for id in 1..=4u64 {
            let (tx, rx) = mpsc::channel(10_000);
            keep.push(rx);
            hub.attach(
                id,
                tx,
                (Arc::new(Semaphore::new(1 << 30)), 1 << 30),
                Arc::default(),
            );
            hub.subscribe(id, Subscription::default());
        }
        let data = "ab".repeat(10_000);
        for _ in 0..20 {
            hub.publish_datagram(&dgram("X<00>", None, true, &data));
        }
        let st = hub.stats();
        assert!(st.queued_bytes <= 200_000, "{st:?}");
        assert!(st.events_dropped_total_bytes > 0, "{st:?}");
        assert_eq!(st.events_delivered + st.events_dropped_total_bytes, 80);
        // Written lines give their bytes back.
        for rx in &mut keep {
            while rx.try_recv().is_ok() {}
        }
        assert_eq!(hub.stats().queued_bytes, 0);
    }

    #[test]
    fn clients_per_peer_capped() {
        let d = TestDaemon::start(|c| c.max_clients_per_peer = 2);
        let mut a = d.client();
        let mut b = d.client();
        a.hello().unwrap();
        b.hello().unwrap();
        let mut c = d.client();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Busy),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.hub.stats().clients_rejected_per_peer, 1);
        drop(a);
        wait_until("slot freed", || d.hub.stats().clients == 1);
        let start = Instant::now();
        while d.client().hello().is_err() {
            assert!(start.elapsed() < T);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn tcp_needs_the_token_first() {
        let token = "0123456789abcdef-token";
        let d = TestDaemon::start(|c| {
            c.tcp = Some("127.0.0.1:0".parse().unwrap());
            c.tcp_token = Some(Arc::from(token.as_bytes()));
        });
        let addr = d.tcp.unwrap();
        let denied = |first: &[u8]| {
            let mut c = Client::connect_tcp(addr).unwrap();
            c.set_timeout(T).unwrap();
            c.send_raw_line(first).unwrap();
            match c.read_raw(Some(T)).unwrap() {
                Some(ServerMsg::Response(r)) => {
                    assert_eq!(r.error.unwrap().code, ErrorCode::Denied)
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
        };
        denied(br#"{"id":1,"op":"names"}"#);
        denied(br#"{"id":1,"op":"hello"}"#);
        denied(br#"{"id":1,"op":"hello","token":"0123456789abcdef-tokeX"}"#);
        denied(br#"{"id":1,"op":"hello","token":7}"#);
        denied(b"not json");
        assert_eq!(d.hub.stats().clients_unauthenticated, 5);
        assert_eq!(d.hub.stats().clients_total, 0);
        let mut c = Client::connect_tcp(addr).unwrap();
        c.set_timeout(T).unwrap();
        assert_eq!(c.hello_with_token(token).unwrap().server, "nbdgm");
        let names: serde_json::Value = c.call(Op::Names).unwrap();
        assert!(names["uid"].is_null());
        // The Unix socket needs no token.
        d.client().hello().unwrap();
    }

    #[test]
    fn token_file_must_be_private() {
        let dir = temp_dir();
        let f = dir.join("token");
        std::fs::write(&f, "  0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token_file(&f).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(!e.to_string().contains("0123456789abcdef"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(&*read_token_file(&f).unwrap(), b"0123456789abcdef0123");
        std::fs::write(&f, "short").unwrap();
        assert!(read_token_file(&f).is_err());
        assert!(read_token_file(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn uid_allow_list() {
        let me = nix::unistd::getuid().as_raw();
        let d = TestDaemon::start(|c| c.allow_uids = vec![me.wrapping_add(1)]);
        let mut c = d.client();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Denied),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
        assert_eq!(d.hub.stats().clients_denied, 1);
        assert_eq!(d.hub.stats().clients_total, 0);

        let d = TestDaemon::start(|c| c.allow_uids = vec![me]);
        d.client().hello().unwrap();
        let mygid = nix::unistd::getgid().as_raw();
        let d = TestDaemon::start(|c| {
            c.allow_uids = vec![me.wrapping_add(1)];
            c.allow_gids = vec![mygid];
        });
        d.client().hello().unwrap();
        assert_eq!(d.hub.stats().clients_denied, 0);
    }

    #[test]
    fn socket_mode_group_and_removal() {
        let gid = nix::unistd::getgid().as_raw();
        let mut d = TestDaemon::start(|c| c.group = Some(gid.to_string()));
        let m = std::fs::metadata(&d.path).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o7777, 0o660);
        assert_eq!(m.gid(), gid);
        d.client().hello().unwrap();
        d.stop();
        assert!(!d.path.exists(), "socket removed at shutdown");

        let dir = temp_dir();
        let mut cfg = ApiConfig::new(dir.join("api.sock"));
        cfg.group = Some("no-such-group-nbdgm-test".into());
        assert!(bind(cfg).is_err());
        assert!(!dir.join("api.sock").exists(), "no socket left behind");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn stale_socket_replaced_live_socket_refused() {
        let dir = temp_dir();
        let path = dir.join("api.sock");
        // Stale: a socket file nobody listens on.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let d = TestDaemon::start_with(dir.clone(), ApiConfig::new(&path)).unwrap();
        d.client().hello().unwrap();
        // Live: a second daemon is refused and the first keeps working.
        let err = bind(ApiConfig::new(&path)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        d.client().hello().unwrap();
        // Not a socket: refused, the file is left alone.
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(bind(ApiConfig::new(&file)).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        // A listener that is dropped without running removes its socket.
        let other = dir.join("other.sock");
        drop(bind(ApiConfig::new(&other)).unwrap());
        assert!(!other.exists());
    }

    #[test]
    fn tcp_listener_with_acl() {
        let d = TestDaemon::start(|c| c.tcp = Some("127.0.0.1:0".parse().unwrap()));
        let addr = d.tcp.unwrap();
        let mut c = Client::connect_tcp(addr).unwrap();
        c.set_timeout(T).unwrap();
        assert_eq!(c.hello().unwrap().server, "nbdgm");
        let names: serde_json::Value = c.call(Op::Names).unwrap();
        assert!(names["uid"].is_null());
        c.subscribe(Subscription::default()).unwrap();
        assert_eq!(d.hub.publish_datagram(&dgram("X<00>", None, true, "")), 1);
        assert!(next_datagram(&mut c).is_some());

        let d = TestDaemon::start(|c| {
            c.tcp = Some("127.0.0.1:0".parse().unwrap());
            c.tcp_acl = Arc::new(|_| false);
        });
        let mut c = Client::connect_tcp(d.tcp.unwrap()).unwrap();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Denied),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.hub.stats().clients_denied, 1);
    }

    #[test]
    fn pipelined_requests_all_answered() {
        let d = TestDaemon::start(|_| {});
        let mut c = d.client();
        for i in 0..200u64 {
            c.send_raw_line(format!(r#"{{"id":{i},"op":"hello"}}"#).as_bytes())
                .unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 200 {
            match c.read_raw(Some(T)).unwrap() {
                Some(ServerMsg::Response(r)) => {
                    assert!(r.ok);
                    assert!(seen.insert(r.id.unwrap()));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn line_reader_caps() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let data = b"abc\r\nxyz\nlong line here\ntail".to_vec();
            let mut r = BufReader::with_capacity(4, &data[..]);
            let mut buf = Vec::new();
            assert!(matches!(
                read_line_capped(&mut r, &mut buf, 8).await.unwrap(),
                ReadLine::Line
            ));
            assert_eq!(buf, b"abc");
            assert!(matches!(
                read_line_capped(&mut r, &mut buf, 8).await.unwrap(),
                ReadLine::Line
            ));
            assert_eq!(buf, b"xyz");
            assert!(matches!(
                read_line_capped(&mut r, &mut buf, 8).await.unwrap(),
                ReadLine::TooLong
            ));
        });
    }
}
