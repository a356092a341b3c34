//! The subscription registry and event fan-out (`docs/api.md` "Events"): which
//! client wants which datagram and name events, each client's bounded outgoing
//! queue (in lines and bytes, per client and in total), and the API counters.

use super::*;
use nbdgm_api::{DatagramEvent, ErrorCode, NameEvent, Subscription, MAX_SERVER_LINE};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Semaphore};

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
}

pub(super) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(super) struct ClientSlot {
    pub(super) tx: mpsc::Sender<Queued>,
    /// Queue bytes left to this client, of `cap`.
    pub(super) bytes: Arc<Semaphore>,
    pub(super) cap: usize,
    /// Events dropped since the last `overflow` event (shared with the writer).
    pub(super) dropped: Arc<AtomicU64>,
    pub(super) subscriptions: usize,
}

/// A subscription, its filters in canonical form.
pub(super) struct Sub {
    pub(super) client: u64,
    /// `NAME<xx>` as printed by [`nbdgm_wire::Name`].
    pub(super) name: Option<String>,
    pub(super) mailslot: Option<String>,
    pub(super) all: bool,
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
    pub(super) total: Arc<Semaphore>,
    pub(super) total_cap: usize,
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
    Datagram(&'a DatagramEvent),
    Name(&'a NameEvent),
}

/// `NAME<xx>` in the form [`nbdgm_wire::Name`] prints it, or `None` if invalid.
pub(super) fn canonical_name(s: &str) -> Option<String> {
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

pub(super) fn push_u32(b: &mut Vec<u8>, mut v: u32) {
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

pub(super) fn push_ip(b: &mut Vec<u8>, ip: Ipv4Addr) {
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            b.push(b'.');
        }
        push_u32(b, u32::from(o));
    }
}

pub(super) fn push_addr(b: &mut Vec<u8>, a: SocketAddrV4) {
    push_ip(b, *a.ip());
    b.push(b':');
    push_u32(b, u32::from(a.port()));
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

    pub(super) fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn attach(
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
    pub(super) fn detach(&self, client: u64) -> usize {
        let mut inner = self.lock();
        inner.clients.remove(&client);
        let before = inner.subs.len();
        inner.subs.retain(|_, s| s.client != client);
        before - inner.subs.len()
    }

    pub(super) fn try_subscribe(
        &self,
        client: u64,
        sub: Subscription,
    ) -> Result<u64, (ErrorCode, String)> {
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
pub(super) struct Target {
    pub(super) tx: mpsc::Sender<Queued>,
    pub(super) bytes: Arc<Semaphore>,
    pub(super) cap: usize,
    pub(super) dropped: Arc<AtomicU64>,
}

pub(super) fn collect_targets(inner: &HubInner, ids: &[u64]) -> Vec<Target> {
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
