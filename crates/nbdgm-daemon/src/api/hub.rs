//! The subscription registry and event fan-out (`docs/api.md` "Events"): which
//! client wants which datagram and name events, each client's bounded outgoing
//! queue (in lines and bytes, per client and in total), each client's event encoding
//! (`hello` `encoding`), and the API counters.
//!
//! The datagram path allocates nothing per event but the event line itself: matching
//! fills a reused per-thread list, each wanted encoding's line is written once into a
//! reused buffer and shared by every client that takes it. A worker's events reach each
//! client once per receive batch ([`Hub::kick_batched`]), not once per event: written
//! through by the worker's thread while the client's writer is idle, or by the writer.

use super::queue::Flusher;
use super::*;
use nbdgm_api::{ErrorCode, EventEncoding, NameEvent, Subscription, MAX_SERVER_LINE};
use nbdgm_node::{Delivery, Name};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Receive batches written to a client's socket by the receiving thread itself
    /// (its writer idle), instead of waking the writer.
    #[serde(default)]
    pub writes_through: u64,
    /// Event lines those writes carried.
    #[serde(default)]
    pub lines_written_through: u64,
    /// Writes-through the socket took only part of: the rest went to the writer.
    #[serde(default)]
    pub writes_through_partial: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) clients_total: AtomicU64,
    pub(super) clients_rejected: AtomicU64,
    pub(super) clients_denied: AtomicU64,
    pub(super) clients_rejected_per_peer: AtomicU64,
    pub(super) clients_unauthenticated: AtomicU64,
    pub(super) accept_errors: AtomicU64,
    pub(super) events_dropped_total_bytes: AtomicU64,
    pub(super) events_published: AtomicU64,
    pub(super) events_delivered: AtomicU64,
    pub(super) events_dropped_queue_full: AtomicU64,
    pub(super) events_too_large: AtomicU64,
    pub(super) overflow_events: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) bad_requests: AtomicU64,
    pub(super) oversize_lines: AtomicU64,
    pub(super) write_stalls: AtomicU64,
    pub(super) writes_through: AtomicU64,
    pub(super) lines_written_through: AtomicU64,
    pub(super) writes_through_partial: AtomicU64,
}

pub(super) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(super) struct ClientSlot {
    pub(super) tx: QueueTx,
    /// This client's queue room in lines and bytes (the channel itself is unbounded).
    pub(super) budget: Arc<Budget>,
    /// Events dropped since the last `overflow` event (shared with the writer).
    pub(super) dropped: Arc<AtomicU64>,
    pub(super) subscriptions: usize,
    /// How this client's datagram events carry their data.
    pub(super) encoding: EventEncoding,
}

/// A subscription, its filters parsed.
pub(super) struct Sub {
    pub(super) client: u64,
    /// The destination name, typed: matched without printing the datagram's names.
    pub(super) name: Option<Name>,
    pub(super) mailslot: Option<String>,
    pub(super) all: bool,
}

impl Sub {
    /// The one matching rule: the subscription's `name` (if set) is the destination
    /// (as the filter reads it: see [`same_name`]), its `mailslot` (if set) is the
    /// datagram's ignoring ASCII case, and — unless it has `all` — the datagram is
    /// `for_us` or addressed to `*`.
    pub(super) fn matches(&self, d: &Delivery) -> bool {
        (self.all || d.for_us || addressed_to_star(&d.destination))
            && self
                .name
                .as_ref()
                .is_none_or(|n| same_name(n, &d.destination))
            && self.mailslot.as_deref().is_none_or(|m| d.is_mailslot(m))
    }
}

/// Printed as itself in `NAME<xx>` (ASCII 0x20–0x7E); other octets print as `<xx>`.
fn printable(b: u8) -> bool {
    (0x20..0x7F).contains(&b)
}

/// The 15 name octets without the trailing space padding (as `NAME<xx>` prints them).
fn body(n: &Name) -> &[u8] {
    let raw = &n.raw()[..15];
    let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
    &raw[..end]
}

/// True when `dest`, printed as `NAME<xx>`, begins with `*<`: the wildcard, `*` with
/// space padding, or `*` followed by an octet printed as `<xx>`.
pub(super) fn addressed_to_star(dest: &Name) -> bool {
    let b = body(dest);
    dest.raw()[0] == b'*' && (dest.is_wildcard() || b.len() == 1 || !printable(b[1]))
}

/// Whether the subscription filter `filter` (a name parsed from `NAME<xx>`) names
/// `dest`: `dest` is read as a filter would be (ASCII upper case, `*` is the wildcard
/// whatever its suffix) when its printed form reads back; otherwise (octets printed as
/// `<xx>`, an empty name) its octets must be the filter's.
pub(super) fn same_name(filter: &Name, dest: &Name) -> bool {
    if !filter.same_scope(dest) {
        return false;
    }
    let b = body(dest);
    let reads_back = !b.is_empty() && b.iter().all(|&c| printable(c) && c != b'<');
    if dest.is_wildcard() || (reads_back && b == b"*") {
        return filter.is_wildcard();
    }
    let (f, d) = (filter.raw(), dest.raw());
    if reads_back {
        f[15] == d[15]
            && f[..15]
                .iter()
                .zip(&d[..15])
                .all(|(x, y)| *x == y.to_ascii_uppercase())
    } else {
        f == d
    }
}

#[derive(Default)]
pub(super) struct HubInner {
    pub(super) clients: HashMap<u64, ClientSlot>,
    pub(super) subs: HashMap<u64, Sub>,
    pub(super) next_sub: u64,
}

/// The subscription registry and event fan-out, shared by the API server and the
/// runtime (`Arc<Hub>`). All methods are synchronous and never block on a client.
pub struct Hub {
    pub(super) inner: Mutex<HubInner>,
    pub(super) counters: Counters,
    pub(super) next_client: AtomicU64,
    /// Event bytes all queues may hold together.
    pub(super) total: Arc<Total>,
    /// Subscriptions now (`inner.subs.len()`, kept under the lock), read without it by
    /// [`Hub::has_subscriptions`] for every datagram.
    subs_now: AtomicUsize,
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
pub(super) enum EventRef<'a> {
    Name(&'a NameEvent),
}

/// Why a subscription's filter is refused (answered `bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("bad name {name:?}: {reason}")]
    Name { name: String, reason: String },
    #[error("bad mailslot name {0:?}")]
    Mailslot(String),
}

/// Check a subscription's filters.
pub fn validate_subscription(sub: &Subscription) -> Result<(), FilterError> {
    if let Some(n) = &sub.name {
        if let Err(e) = n.parse::<nbdgm_wire::Name>() {
            return Err(FilterError::Name {
                name: n.clone(),
                reason: e.to_string(),
            });
        }
    }
    if let Some(m) = &sub.mailslot {
        // Mailslot names are Latin-1 on the wire (any octet but NUL), so a filter may
        // hold any character up to U+00FF: one octet each, 255 at most.
        let latin1 = m.chars().all(|c| c != '\0' && u32::from(c) <= 0xFF);
        if m.is_empty() || m.chars().count() > 255 || !latin1 {
            return Err(FilterError::Mailslot(m.clone()));
        }
    }
    Ok(())
}

/// A delivered datagram and where it arrived: what the runtime hands the hub for every
/// delivery (the node's [`Delivery`], borrowed). [`DatagramOut::line`] writes the JSON
/// that serde writes for [`nbdgm_api::DatagramEvent`] (checked by a test) straight from
/// the delivery: names printed into the line, the payload's hex written once.
#[derive(Debug, Clone, Copy)]
pub struct DatagramOut<'a> {
    pub interface: Ipv4Addr,
    /// The local address and port it arrived at.
    pub to: SocketAddrV4,
    pub delivery: &'a Delivery,
    /// The client that sent it (the node's local copy of a client's group or broadcast
    /// send, [`Delivery::local_copy`]): its subscriptions do not get it, so a sender
    /// sees no echo of its own datagram.
    pub except: Option<u64>,
}

impl DatagramOut<'_> {
    /// The event line in the default encoding (hex), newline included.
    #[cfg(test)]
    pub fn line(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.write_line(EventEncoding::Hex, &mut b);
        b
    }

    /// Append the event line, newline included, with the data in `enc`.
    pub fn write_line(&self, enc: EventEncoding, b: &mut Vec<u8>) {
        let d = self.delivery;
        let names = 2 * (40 + d.source.scope().len() + d.destination.scope().len());
        b.reserve(320 + names + d.data.len() * 2);
        b.extend_from_slice(br#"{"event":"datagram","interface":""#);
        push_ip(b, self.interface);
        b.extend_from_slice(br#"","from":""#);
        push_addr(b, d.from);
        b.extend_from_slice(br#"","to":""#);
        push_addr(b, self.to);
        b.extend_from_slice(br#"","header_source":""#);
        push_addr(b, d.header_source);
        b.extend_from_slice(br#"","msg_type":"#);
        push_str(b, nbdgm_api::msg_type_str(d.msg_type));
        b.extend_from_slice(br#","source":"#);
        push_name(b, &d.source);
        b.extend_from_slice(br#","destination":"#);
        push_name(b, &d.destination);
        b.extend_from_slice(br#","broadcast":"#);
        b.extend_from_slice(if d.broadcast { b"true" } else { b"false" });
        b.extend_from_slice(br#","for_us":"#);
        b.extend_from_slice(if d.for_us { b"true" } else { b"false" });
        b.extend_from_slice(br#","fragments":"#);
        push_u32(b, u32::try_from(d.fragments).unwrap_or(u32::MAX));
        b.extend_from_slice(br#","mailslot":"#);
        match d.mailslot() {
            Some(m) => push_str(b, m),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"");
        b.extend_from_slice(enc.data_field().as_bytes());
        b.extend_from_slice(b"\":\"");
        push_data(b, enc, &d.data);
        b.extend_from_slice(b"\"}\n");
    }
}

/// Per-thread buffers of [`Hub::publish_datagram`], reused from one datagram to the next.
#[derive(Default)]
struct Scratch {
    /// Matching clients and their encodings.
    targets: Vec<(u64, EventEncoding)>,
    /// The line being written.
    line: Vec<u8>,
    /// Clients queued batched events whose writers are not woken yet.
    unkicked: Vec<u64>,
    /// Their queues, while [`Hub::kick_batched`] writes them through.
    flushing: Vec<(Flusher, Arc<AtomicU64>)>,
}

/// Largest capacity a [`Scratch`] buffer keeps between datagrams.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// A name as a JSON string, printed as [`Name`]'s `Display` prints it (`NAME<xx>`,
/// `.scope`), without an intermediate `String`.
pub(super) fn push_name(b: &mut Vec<u8>, n: &Name) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let start = b.len();
    b.push(b'"');
    let hex = |b: &mut Vec<u8>, x: u8| {
        b.extend_from_slice(&[
            b'<',
            DIGITS[usize::from(x >> 4)],
            DIGITS[usize::from(x & 0xF)],
            b'>',
        ])
    };
    if n.is_wildcard() {
        b.push(b'*');
    } else {
        for &c in body(n) {
            if printable(c) {
                b.push(c);
            } else {
                hex(b, c);
            }
        }
    }
    hex(b, n.suffix());
    if !n.scope().is_empty() {
        b.push(b'.');
        b.extend_from_slice(n.scope().as_bytes());
    }
    // `"` and `\` in a name, or a scope that is not plain ASCII: escape as serde does.
    let plain = |c: &u8| (0x20..0x7F).contains(c) && *c != b'"' && *c != b'\\';
    if b[start + 1..].iter().all(plain) {
        b.push(b'"');
    } else {
        let text = String::from_utf8_lossy(&b[start + 1..]).into_owned();
        b.truncate(start);
        push_str(b, &text);
    }
}

pub(super) fn push_u32(b: &mut Vec<u8>, mut v: u32) {
    if v < 10 {
        b.push(b'0' + v as u8);
        return;
    }
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

/// One octet in decimal, without `core::fmt` or a division loop: written into `out`
/// from `at`; returns where the next byte goes.
#[inline]
fn put_octet(out: &mut [u8; 21], at: usize, o: u8) -> usize {
    if o >= 100 {
        out[at] = b'0' + o / 100;
        out[at + 1] = b'0' + (o / 10) % 10;
        out[at + 2] = b'0' + o % 10;
        at + 3
    } else if o >= 10 {
        out[at] = b'0' + o / 10;
        out[at + 1] = b'0' + o % 10;
        at + 2
    } else {
        out[at] = b'0' + o;
        at + 1
    }
}

/// `a.b.c.d`, then `:port` when given: built on the stack, appended with one copy
/// (the same bytes as `Ipv4Addr`'s and `SocketAddrV4`'s `Display`, checked by a test).
fn push_ip_port(b: &mut Vec<u8>, ip: Ipv4Addr, port: Option<u16>) {
    let mut out = [0u8; 21]; // "255.255.255.255:65535"
    let mut at = 0;
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out[at] = b'.';
            at += 1;
        }
        at = put_octet(&mut out, at, o);
    }
    if let Some(mut p) = port {
        out[at] = b':';
        at += 1;
        let mut d = [0u8; 5];
        let mut n = d.len();
        loop {
            n -= 1;
            d[n] = b'0' + (p % 10) as u8;
            p /= 10;
            if p == 0 {
                break;
            }
        }
        let k = d.len() - n;
        out[at..at + k].copy_from_slice(&d[n..]);
        at += k;
    }
    b.extend_from_slice(&out[..at]);
}

pub(super) fn push_ip(b: &mut Vec<u8>, ip: Ipv4Addr) {
    push_ip_port(b, ip, None);
}

pub(super) fn push_addr(b: &mut Vec<u8>, a: SocketAddrV4) {
    push_ip_port(b, *a.ip(), Some(a.port()));
}

/// Lower-case hex of every octet: `HEX_PAIRS[x]` is the two digits of `x`.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 0xF]];
        i += 1;
    }
    t
};

/// The data in `enc`: hex through [`HEX_PAIRS`] into space reserved once (the same
/// bytes as [`EventEncoding::push_data`], checked by a test); base64 as the API crate
/// writes it.
pub(super) fn push_data(b: &mut Vec<u8>, enc: EventEncoding, data: &[u8]) {
    match enc {
        EventEncoding::Hex => {
            let start = b.len();
            b.resize(start + data.len() * 2, 0);
            for (pair, &x) in b[start..].chunks_exact_mut(2).zip(data) {
                pair.copy_from_slice(&HEX_PAIRS[usize::from(x)]);
            }
        }
        EventEncoding::Base64 => enc.push_data(b, data),
    }
}

/// A JSON string (names may hold any Latin-1 character, so escape as serde does).
pub(super) fn push_str(b: &mut Vec<u8>, s: &str) {
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
    #[cfg(test)]
    pub fn new() -> Hub {
        Hub::default()
    }

    /// An empty hub whose client queues hold at most `total` event bytes together.
    pub fn with_queue_bytes_total(total: usize) -> Hub {
        Hub {
            inner: Mutex::default(),
            counters: Counters::default(),
            next_client: AtomicU64::new(0),
            total: Arc::new(Total::new(total)),
            subs_now: AtomicUsize::new(0),
        }
    }

    /// A client's queue room: `lines` lines and `bytes` bytes, its events also counted
    /// against this hub's total.
    pub(super) fn budget(&self, lines: usize, bytes: usize) -> Arc<Budget> {
        Arc::new(Budget::new(lines, bytes, self.total.clone()))
    }

    fn count_subs(&self, inner: &HubInner) {
        self.subs_now.store(inner.subs.len(), Ordering::Relaxed);
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn attach(
        &self,
        client: u64,
        tx: QueueTx,
        budget: Arc<Budget>,
        dropped: Arc<AtomicU64>,
    ) {
        self.lock().clients.insert(
            client,
            ClientSlot {
                tx,
                budget,
                dropped,
                subscriptions: 0,
                encoding: EventEncoding::Hex,
            },
        );
    }

    /// Set how `client`'s datagram events carry their data (from its `hello`); false
    /// when it is not connected.
    pub(super) fn set_encoding(&self, client: u64, encoding: EventEncoding) -> bool {
        match self.lock().clients.get_mut(&client) {
            Some(slot) => {
                slot.encoding = encoding;
                true
            }
            None => false,
        }
    }

    /// Forget a client and its subscriptions; returns how many subscriptions ended.
    pub(super) fn detach(&self, client: u64) -> usize {
        let mut inner = self.lock();
        inner.clients.remove(&client);
        let before = inner.subs.len();
        inner.subs.retain(|_, s| s.client != client);
        self.count_subs(&inner);
        before - inner.subs.len()
    }

    pub(super) fn try_subscribe(
        &self,
        client: u64,
        sub: Subscription,
    ) -> Result<u64, (ErrorCode, String)> {
        validate_subscription(&sub).map_err(|e| (ErrorCode::BadRequest, e.to_string()))?;
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
                name: sub.name.as_deref().and_then(|n| n.parse().ok()),
                mailslot: sub.mailslot,
                all: sub.all,
            },
        );
        self.count_subs(&inner);
        Ok(id)
    }

    /// Add a subscription for a connected client; returns its id, or 0 when the
    /// client is not connected, a filter is invalid or the client has
    /// [`MAX_SUBSCRIPTIONS_PER_CLIENT`] already.
    #[cfg(test)]
    pub fn subscribe(&self, client: u64, sub: Subscription) -> u64 {
        self.try_subscribe(client, sub).unwrap_or(0)
    }

    /// True when at least one subscription exists (the runtime skips building events
    /// nobody wants).
    pub fn has_subscriptions(&self) -> bool {
        self.subs_now.load(Ordering::Relaxed) > 0
    }

    /// End subscription `id` of `client`; false if it has no such subscription.
    pub fn unsubscribe(&self, client: u64, id: u64) -> bool {
        let mut inner = self.lock();
        match inner.subs.get(&id) {
            Some(s) if s.client == client => {}
            _ => return false,
        }
        inner.subs.remove(&id);
        self.count_subs(&inner);
        if let Some(slot) = inner.clients.get_mut(&client) {
            slot.subscriptions = slot.subscriptions.saturating_sub(1);
        }
        true
    }

    /// Queue a datagram event to every client with a matching subscription (once per
    /// client however many of its subscriptions match, [`Sub::matches`]) and wake their
    /// writers; returns how many clients it was queued to. Subscribers are matched on the
    /// typed delivery, and the line is written only when one matches, once per encoding
    /// wanted. (The workers publish through [`Outlet`](crate::worker::Outlet): the same,
    /// with one wake-up per receive batch.)
    #[cfg(test)]
    pub fn publish_datagram(&self, ev: &DatagramOut<'_>) -> usize {
        self.publish_datagram_as(ev, false)
    }

    /// [`Hub::publish_datagram`], but when `batched` the writers of the clients it went
    /// to are woken only by this thread's next [`Hub::kick_batched`] (once per receive
    /// batch, not once per event).
    fn publish_datagram_as(&self, ev: &DatagramOut<'_>, batched: bool) -> usize {
        inc(&self.counters.events_published);
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.publish_with(ev, &mut s, batched),
            Err(_) => self.publish_with(ev, &mut Scratch::default(), false),
        })
    }

    /// End this thread's batch: the clients it queued batched events to since its last
    /// call get them written through by this thread when their writers are idle, or
    /// their writers woken (queue.rs). The writes happen after the hub's lock is let go.
    pub fn kick_batched(&self) {
        SCRATCH.with(|cell| {
            let Ok(mut s) = cell.try_borrow_mut() else {
                return;
            };
            if s.unkicked.is_empty() {
                return;
            }
            let s = &mut *s;
            {
                let inner = self.lock();
                for id in &s.unkicked {
                    if let Some(c) = inner.clients.get(id) {
                        s.flushing.push((c.tx.flusher(), c.dropped.clone()));
                    }
                }
            }
            s.unkicked.clear();
            for (f, dropped) in s.flushing.drain(..) {
                match f.flush_batch(&dropped) {
                    Flushed::Woke => {}
                    Flushed::Written { lines } => self.count_through(lines, false),
                    Flushed::Partial { lines } => self.count_through(lines, true),
                }
            }
        });
    }

    /// Count a write-through of `lines` event lines (`partial`: the socket took only
    /// part of what it was given).
    fn count_through(&self, lines: usize, partial: bool) {
        let c = &self.counters;
        if lines > 0 {
            inc(&c.writes_through);
            c.lines_written_through
                .fetch_add(lines as u64, Ordering::Relaxed);
        }
        if partial {
            inc(&c.writes_through_partial);
        }
    }

    /// Match, write and queue under one hold of the hub's lock (the line is written
    /// while it is held: the registry cannot change between matching and queueing).
    fn publish_with(&self, ev: &DatagramOut<'_>, s: &mut Scratch, batched: bool) -> usize {
        s.targets.clear();
        let inner = self.lock();
        for sub in inner.subs.values() {
            if Some(sub.client) != ev.except && sub.matches(ev.delivery) {
                if let Some(c) = inner.clients.get(&sub.client) {
                    s.targets.push((sub.client, c.encoding));
                }
            }
        }
        if s.targets.is_empty() {
            return 0;
        }
        s.targets.sort_unstable_by_key(|t| t.0);
        s.targets.dedup_by_key(|t| t.0);
        // Each wanted encoding's line, written once, and how many clients take it.
        let mut lines: [(Option<Line>, usize); 2] = Default::default();
        for &(_, enc) in &s.targets {
            lines[enc as usize].1 += 1;
        }
        for enc in EventEncoding::ALL {
            if lines[enc as usize].1 == 0 {
                continue;
            }
            s.line.clear();
            ev.write_line(enc, &mut s.line);
            if s.line.len() > MAX_SERVER_LINE + 1 {
                inc(&self.counters.events_too_large);
                lines[enc as usize].1 = 0;
                continue;
            }
            lines[enc as usize].0 = Some(Line::copy_from_slice(&s.line));
        }
        if s.line.capacity() > SCRATCH_KEEP {
            s.line = Vec::new();
        }
        let mut sent = 0;
        for &(id, enc) in &s.targets {
            let (line, left) = &mut lines[enc as usize];
            // The last client of a line takes it, the others a reference.
            let line = match *left {
                0 => continue,
                1 => line.take(),
                _ => line.clone(),
            };
            *left = left.saturating_sub(1);
            let (Some(line), Some(c)) = (line, inner.clients.get(&id)) else {
                continue;
            };
            let queued = self.offer(c.target(), line, batched);
            if queued && batched {
                // Sorted, at most one entry per connected client.
                if let Err(at) = s.unkicked.binary_search(&id) {
                    s.unkicked.insert(at, id);
                }
            }
            sent += usize::from(queued);
        }
        sent
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

    pub(super) fn fan_out(&self, ev: &EventRef<'_>, targets: Vec<Target>) -> usize {
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
    pub(super) fn send_line(&self, line: Line, targets: Vec<Target>) -> usize {
        targets
            .iter()
            .filter(|t| self.offer(t.as_ref(), line.clone(), false))
            .count()
    }

    /// Queue `line` to `t` if it has room in lines and bytes (its own and the total);
    /// else count a drop. True when queued. `quiet`: do not wake its writer (the
    /// caller will).
    fn offer(&self, t: TargetRef<'_>, line: Line, quiet: bool) -> bool {
        let drop_one = |c: &AtomicU64| {
            t.dropped.fetch_add(1, Ordering::Relaxed);
            inc(c);
        };
        let n = t.budget.taken(line.len());
        if !t.budget.try_take_event(n) {
            drop_one(&self.counters.events_dropped_queue_full);
            return false;
        }
        if !self.total.try_take(n) {
            t.budget.give(n, false);
            drop_one(&self.counters.events_dropped_total_bytes);
            return false;
        }
        let q = Queued {
            line,
            taken: n,
            event: true,
            budget: t.budget.clone(),
        };
        // Unbounded channel: the budget above is the bound (lines and bytes).
        let sent = if quiet {
            t.tx.send_quiet(q)
        } else {
            t.tx.send(q)
        };
        match sent {
            Ok(()) => {
                inc(&self.counters.events_delivered);
                true
            }
            Err(_) => false, // the writer is gone; dropping the line gave its room back
        }
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
            queued_bytes: self.total.used(),
            events_published: get(&c.events_published),
            events_delivered: get(&c.events_delivered),
            events_dropped_queue_full: get(&c.events_dropped_queue_full),
            events_too_large: get(&c.events_too_large),
            overflow_events: get(&c.overflow_events),
            requests: get(&c.requests),
            bad_requests: get(&c.bad_requests),
            oversize_lines: get(&c.oversize_lines),
            write_stalls: get(&c.write_stalls),
            writes_through: get(&c.writes_through),
            lines_written_through: get(&c.lines_written_through),
            writes_through_partial: get(&c.writes_through_partial),
        }
    }
}

/// A client an event goes to.
pub(super) struct Target {
    pub(super) tx: QueueTx,
    pub(super) budget: Arc<Budget>,
    pub(super) dropped: Arc<AtomicU64>,
}

/// A client an event goes to, borrowed (from a [`Target`] or, under the hub's lock,
/// from its [`ClientSlot`]).
#[derive(Clone, Copy)]
pub(super) struct TargetRef<'a> {
    tx: &'a QueueTx,
    budget: &'a Arc<Budget>,
    dropped: &'a AtomicU64,
}

impl Target {
    fn as_ref(&self) -> TargetRef<'_> {
        TargetRef {
            tx: &self.tx,
            budget: &self.budget,
            dropped: &self.dropped,
        }
    }
}

impl ClientSlot {
    fn target(&self) -> TargetRef<'_> {
        TargetRef {
            tx: &self.tx,
            budget: &self.budget,
            dropped: &self.dropped,
        }
    }
}

pub(super) fn collect_targets(inner: &HubInner, ids: &[u64]) -> Vec<Target> {
    ids.iter()
        .filter_map(|id| inner.clients.get(id))
        .map(|c| Target {
            tx: c.tx.clone(),
            budget: c.budget.clone(),
            dropped: c.dropped.clone(),
        })
        .collect()
}

/// The daemon's outlet: the API hub. Datagrams are matched on the typed delivery and
/// serialized once, only when a subscriber wants them.
impl crate::worker::Outlet for Hub {
    fn wants_datagrams(&self) -> bool {
        self.has_subscriptions()
    }

    fn datagram(
        &self,
        interface: Ipv4Addr,
        to: SocketAddrV4,
        delivery: &Delivery,
        except: Option<u64>,
    ) {
        self.publish_datagram_as(
            &DatagramOut {
                interface,
                to,
                delivery,
                except,
            },
            true,
        );
    }

    fn flush(&self) {
        self.kick_batched();
    }

    fn name(
        &self,
        interface: Ipv4Addr,
        name: &Name,
        state: nbdgm_api::NameState,
        by: Option<SocketAddrV4>,
    ) {
        self.publish_name(&NameEvent {
            interface: interface.into(),
            name: name.to_string(),
            state,
            by: by.map(|b| b.to_string()),
        });
    }
}
