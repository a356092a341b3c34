//! The sans-IO B-node (RFC 1001 §10, §15, §17; RFC 1002 §5.1.1, §5.3): it owns no
//! sockets and no clock. The caller feeds received packets ([`Node::handle`]) and the
//! time ([`Node::handle_timeout`]), and drains packets ([`Node::poll_transmit`]),
//! the next deadline ([`Node::poll_timeout`]) and events ([`Node::poll_event`]).

use crate::cache::{Cache, CacheDelta, CacheEntry};
use crate::config::{NodeConfig, Service};
use crate::error::NodeError;
use crate::event::{DropReason, Event, RequestId};
use crate::name_table::{NameEntry, NameTable};
use crate::reassembly::Reassembler;
use crate::stats::Stats;
use crate::transaction::Transactions;
use nbdgm_wire::datagram::NodeType;
use nbdgm_wire::nbns::{NB_GROUP, NB_ONT_MASK};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

/// A received UDP packet.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// UDP source.
    pub from: SocketAddrV4,
    /// Which of our ports it arrived on.
    pub service: Service,
    /// It arrived on the broadcast socket (was sent to a broadcast address).
    pub broadcast: bool,
    pub bytes: &'a [u8],
}

/// A UDP packet to send (`app_reply` marks an answer sent with [`Node::send_reply`]).
pub use nbdgm_base::Transmit;

/// Where a name query goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupTarget {
    /// Broadcast on the interface (uses and fills the cache).
    Broadcast,
    /// Unicast to one node or an NBNS (bypasses the cache).
    Unicast(Ipv4Addr),
}

/// How a datagram is addressed (RFC 1002 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendMode {
    /// Resolve the name; DIRECT_UNIQUE (0x10) unicast to its owner (DIRECT_GROUP to
    /// the broadcast address if it resolves to a group).
    Unique,
    /// DIRECT_GROUP (0x11) to the broadcast address.
    Group,
    /// BROADCAST (0x12) to `*` at the broadcast address (the destination is ignored).
    Broadcast,
    /// DIRECT_UNIQUE (0x10) to this address, without resolving the name (replies to
    /// the UDP source, `--server` targets).
    UniqueAt(SocketAddrV4),
    /// DIRECT_GROUP (0x11) to this address (announcements to a remote subnet).
    GroupAt(SocketAddrV4),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    pub source: Name,
    pub destination: Name,
    pub mode: SendMode,
    /// User data (e.g. an SMB mailslot write).
    pub data: Vec<u8>,
}

use nbdgm_wire::Name;

/// One NetBIOS B-node on one IPv4 interface.
#[derive(Debug)]
pub struct Node {
    pub(crate) config: NodeConfig,
    pub(crate) names: NameTable,
    pub(crate) cache: Cache,
    pub(crate) transactions: Transactions,
    pub(crate) reassembly: Reassembler,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    pub(crate) now: Instant,
    pub(crate) nbdd_queries: Vec<crate::nbdd_client::NbddQuery>,
    /// The unicast-to-members alternative after an NBDD refusal.
    pub(crate) nbdd_fanout: crate::nbdd_client::Fanout,
    /// NAME_TRN_IDs and DGM_IDs (issue 12 item 9): unpredictable, from
    /// [`NodeConfig::rng_seed`] or the OS.
    ids: crate::ids::IdSource,
    next_request: u64,
}

impl Node {
    /// A node with an empty name table. Fails on an invalid configuration (a P- or
    /// M-node without an NBNS among others).
    pub fn new(config: NodeConfig, now: Instant) -> Result<Node, NodeError> {
        config.validate()?;
        Ok(Node {
            names: NameTable::default(),
            cache: Cache::default(),
            transactions: Transactions::default(),
            reassembly: Reassembler::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            now,
            nbdd_queries: Vec::new(),
            nbdd_fanout: crate::nbdd_client::Fanout::default(),
            ids: crate::ids::IdSource::new(config.rng_seed),
            next_request: 0,
            config,
        })
    }

    /// Replace the configuration (SIGHUP). The name table, cache and pending work are
    /// kept; tables are trimmed to smaller caps. The scope cannot change while names
    /// are held.
    pub fn set_config(&mut self, config: NodeConfig) -> Result<(), NodeError> {
        config.validate()?;
        if config.scope != self.config.scope && self.names.len() > 0 {
            return Err(NodeError::InvalidConfig(
                "the scope cannot change while names are held".into(),
            ));
        }
        self.config = config;
        let mut delta = CacheDelta::default();
        self.cache
            .shrink(self.config.cache.max_entries, self.now, &mut delta);
        self.account_cache(delta);
        let mut drops = Vec::new();
        self.reassembly.enforce(&self.config.reassembly, &mut drops);
        self.report_drops(drops);
        Ok(())
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Process one received UDP packet.
    pub fn handle(&mut self, now: Instant, incoming: Incoming<'_>) {
        self.touch(now);
        let own = SocketAddrV4::new(
            self.config.interface.addr,
            self.config.port(incoming.service),
        );
        // Our own broadcasts loop back. A unicast from our own socket is not a loop: it is
        // an NBNS or NBDD role on this host answering the node (DIGEST §8.21).
        if incoming.from == own && incoming.broadcast {
            self.drop_packet(DropReason::OwnPacket, incoming.from);
            return;
        }
        let ip = *incoming.from.ip();
        if ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_unspecified()
            || incoming.from.port() == 0
            || (ip == self.config.interface.broadcast() && ip != self.config.interface.addr)
        {
            self.drop_packet(DropReason::BadSource, incoming.from);
            return;
        }
        if incoming.broadcast && self.config.node_type == NodeType::P {
            // "always ignore UDP broadcast packets" (RFC 1002 §5.1.2.5, §5.3.3).
            match incoming.service {
                Service::Name => self.stats.name_packets_received += 1,
                Service::Datagram => self.stats.datagram_packets_received += 1,
            }
            self.drop_packet(DropReason::BroadcastIgnored, incoming.from);
            return;
        }
        match incoming.service {
            Service::Name => self.handle_name(now, incoming),
            Service::Datagram => self.handle_datagram(now, incoming),
        }
    }

    /// Run everything due at `now`: retransmissions, registrations that completed,
    /// releases, query timeouts, fragment expiry, cache expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        self.name_timeouts(now);
        self.ns_timeouts(now);
        self.transaction_timeouts(now);
        self.nbdd_timeouts(now);
        let mut drops = Vec::new();
        self.reassembly.expire(now, &mut drops);
        self.report_drops(drops);
        let expired = self.cache.purge_expired(now);
        self.stats.cache_expired += expired;
        self.stats.cache_entries = self.cache.len() as u64;
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next instant [`Node::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.names.next_deadline(),
            self.transactions.next_deadline(),
            self.reassembly.next_deadline(),
            self.nbdd_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Our names and their state.
    /// `name` is one of our active names.
    pub fn holds(&self, name: &Name) -> bool {
        self.names.active(name).is_some()
    }

    pub fn names(&self) -> Vec<NameEntry> {
        self.names.entries()
    }

    /// The remote-name cache (unexpired entries, as of the latest time the node saw).
    pub fn cache(&self) -> Vec<CacheEntry> {
        self.cache.entries(self.now)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True once [`Node::shutdown`] has finished: no names left and nothing to send.
    pub fn is_shutdown_complete(&self) -> bool {
        self.names.len() == 0 && self.transmits.is_empty()
    }

    // ---- helpers shared by the protocol modules ----

    pub(crate) fn touch(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    pub(crate) fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// A random NAME_TRN_ID that no pending request of ours uses.
    pub(crate) fn alloc_trn(&mut self) -> u16 {
        let (names, transactions) = (&self.names, &self.transactions);
        self.ids
            .fresh(|t| names.trn_in_use(t) || transactions.in_use(t))
    }

    /// A random DGM_ID.
    pub(crate) fn alloc_dgm_id(&mut self) -> u16 {
        self.ids.draw()
    }

    /// NB_FLAGS for one of our names: G bit and our ONT.
    pub(crate) fn nb_flags(&self, group: bool) -> u16 {
        let ont = (u16::from(self.config.node_type.bits()) << 13) & NB_ONT_MASK;
        ont | if group { NB_GROUP } else { 0 }
    }

    pub(crate) fn addr(&self) -> Ipv4Addr {
        self.config.interface.addr
    }

    /// The address our packets carry (NB_ADDRESS, SOURCE_IP): `announce_address` or
    /// the interface's own.
    pub(crate) fn announced_addr(&self) -> Ipv4Addr {
        self.config
            .announce_address
            .unwrap_or(self.config.interface.addr)
    }

    pub(crate) fn broadcast_to(&self, service: Service) -> SocketAddrV4 {
        SocketAddrV4::new(self.config.interface.broadcast(), self.config.port(service))
    }

    pub(crate) fn push_event(&mut self, ev: Event) {
        let cap = if ev.is_bulk() {
            self.config.max_events
        } else {
            self.config.max_events.saturating_mul(2)
        };
        if self.events.len() >= cap {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(ev);
    }

    /// Queue a packet; false (and counted) when the queue is full.
    pub(crate) fn push_transmit(&mut self, t: Transmit) -> bool {
        if self.transmits.len() >= self.config.max_transmits {
            self.stats.transmits_dropped += 1;
            return false;
        }
        match t.service {
            Service::Name => self.stats.name_packets_sent += 1,
            Service::Datagram => self.stats.datagram_packets_sent += 1,
        }
        self.transmits.push_back(t);
        true
    }

    /// Room for `n` more packets in the transmit queue.
    pub(crate) fn transmit_room(&self, n: usize) -> bool {
        self.transmits.len() + n <= self.config.max_transmits
    }

    /// Queue a reply to a received packet of `request_len` bytes, unless it breaks the
    /// amplification limit.
    pub(crate) fn reply(
        &mut self,
        to: SocketAddrV4,
        service: Service,
        bytes: Vec<u8>,
        request_len: usize,
    ) {
        if bytes.len() > self.config.reply_limit_factor.saturating_mul(request_len) {
            self.drop_packet(DropReason::ReplyTooLarge, to);
            return;
        }
        self.push_transmit(Transmit {
            to,
            service,
            bytes,
            broadcast: false,
            reply_to: Some(request_len),
            app_reply: false,
        });
    }

    pub(crate) fn drop_packet(&mut self, reason: DropReason, from: SocketAddrV4) {
        self.stats.dropped.bump(reason);
        self.push_event(Event::Dropped { reason, from });
    }

    pub(crate) fn report_drops(&mut self, drops: Vec<(DropReason, SocketAddrV4)>) {
        for (r, from) in drops {
            self.drop_packet(r, from);
        }
        self.stats.reassembly_pending = self.reassembly.pending() as u64;
        self.stats.reassembly_bytes = self.reassembly.bytes() as u64;
        self.stats.reassembly_bytes_peak = self
            .stats
            .reassembly_bytes_peak
            .max(self.stats.reassembly_bytes);
    }

    pub(crate) fn account_cache(&mut self, delta: CacheDelta) {
        self.stats.cache_evictions += delta.evicted;
        self.stats.cache_expired += delta.expired;
        self.stats.cache_entries = self.cache.len() as u64;
    }
}

/// A positive NAME QUERY RESPONSE (RFC 1002 §4.2.13) with one NB_ADDRESS, written in one
/// allocation: the same bytes as `name_service::packet``(id, FLAGS_POSITIVE_QUERY)` with the answer
/// `name_service::nb_record``(name, ttl, flags, ip)` gives through `Packet::to_bytes` (no question,
/// so the answer's name is written out, never a pointer).
pub(crate) fn positive_query_bytes(
    id: u16,
    name: &Name,
    ttl: u32,
    flags: u16,
    ip: Ipv4Addr,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + name.encoded_len() + 16);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&crate::name_service::FLAGS_POSITIVE_QUERY.to_be_bytes());
    // QDCOUNT 0, ANCOUNT 1, NSCOUNT 0, ARCOUNT 0.
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    name.emit(&mut b);
    b.extend_from_slice(&nbdgm_wire::nbns::TYPE_NB.to_be_bytes());
    b.extend_from_slice(&nbdgm_wire::nbns::CLASS_IN.to_be_bytes());
    b.extend_from_slice(&ttl.to_be_bytes());
    b.extend_from_slice(&6u16.to_be_bytes()); // RDLENGTH: one NB_FLAGS + NB_ADDRESS
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&ip.octets());
    b
}

#[cfg(test)]
mod tests {
    //! Literal packets from DIGEST §10 answered byte for byte.
    use super::*;
    use crate::config::Interface;
    use std::time::Duration;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn node_at(addr: &str, names: &[(&str, u8)]) -> (Node, Instant) {
        let t0 = Instant::now();
        let mut n = Node::new(NodeConfig::new(Interface::parse(addr).unwrap()), t0).unwrap();
        for (name, sfx) in names {
            n.register(t0, Name::new(name, *sfx).unwrap(), false)
                .unwrap();
        }
        let mut t = t0;
        for _ in 0..3 {
            t += Duration::from_millis(250);
            n.handle_timeout(t);
        }
        while n.poll_transmit().is_some() {}
        while n.poll_event().is_some() {}
        (n, t)
    }

    fn one_reply(n: &mut Node) -> Transmit {
        let t = n.poll_transmit().expect("a reply");
        assert!(n.poll_transmit().is_none());
        t
    }

    #[test]
    fn positive_query_response_matches_digest_vector() {
        let (mut n, now) = node_at("192.168.1.10/24", &[("FRED", 0x20)]);
        // NAME QUERY REQUEST for FRED<20>, TRN 0x8002, broadcast.
        let mut q = unhex("8002 0110 0001 0000 0000 0000");
        Name::new("FRED", 0x20).unwrap().emit(&mut q);
        q.extend_from_slice(&[0, 0x20, 0, 1]);
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 20), 137);
        n.handle(
            now,
            Incoming {
                from,
                service: Service::Name,
                broadcast: true,
                bytes: &q,
            },
        );
        let t = one_reply(&mut n);
        assert_eq!(t.to, from);
        assert_eq!(t.reply_to, Some(q.len()));
        let want = unhex(
            "80 02 85 80 00 00 00 01 00 00 00 00 20 45 47 46 43 45 46 45 45 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 00 00 20 00 01 00 04 93 e0 00 06 00 00 c0 a8 01 0a",
        );
        assert_eq!(t.bytes, want);
    }

    #[test]
    fn direct_positive_answer_is_the_codec_packet() {
        use crate::name_service::{nb_record, packet, FLAGS_POSITIVE_QUERY};
        let scoped = Name::new("SERVER", 0x20)
            .unwrap()
            .with_scope("corp.example")
            .unwrap();
        for (name, flags) in [(Name::new("FRED", 0).unwrap(), 0x6000), (scoped, 0x8000)] {
            let ip = Ipv4Addr::new(198, 51, 100, 20);
            let mut p = packet(0xBEEF, FLAGS_POSITIVE_QUERY);
            p.answers.push(nb_record(&name, 300_000, flags, ip));
            let direct = positive_query_bytes(0xBEEF, &name, 300_000, flags, ip);
            assert_eq!(direct, p.to_bytes().unwrap());
            assert_eq!(direct.len(), direct.capacity());
        }
    }

    #[test]
    fn defence_matches_digest_vector() {
        let (mut n, now) = node_at("192.168.1.20/24", &[("FRED", 0)]);
        let reg = unhex(
            "80 03 29 10 00 01 00 00 00 00 00 01 20 45 47 46 43 45 46 45 45 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00 00 20 00 01 c0 0c 00 20 00 01 00 04 93 e0 00 06 00 00 c0 a8 01 0a",
        );
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 10), 137);
        n.handle(
            now,
            Incoming {
                from,
                service: Service::Name,
                broadcast: true,
                bytes: &reg,
            },
        );
        let t = one_reply(&mut n);
        assert_eq!(t.to, from);
        let want = unhex(
            "80 03 ad 86 00 00 00 01 00 00 00 00 20 45 47 46 43 45 46 45 45 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00 00 20 00 01 00 00 00 00 00 06 00 00 c0 a8 01 14",
        );
        assert_eq!(t.bytes, want);
    }

    #[test]
    fn datagram_error_matches_digest_vector() {
        let (mut n, now) = node_at("192.168.1.20/24", &[("FRED", 0)]);
        let mut d = unhex("10 02 12 34 c0 a8 01 0a 00 8a 00 45 00 00");
        Name::new("BARNEY", 0).unwrap().emit(&mut d);
        Name::new("NOBODY", 0).unwrap().emit(&mut d);
        d.push(0x55);
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 10), 138);
        n.handle(
            now,
            Incoming {
                from,
                service: Service::Datagram,
                broadcast: false,
                bytes: &d,
            },
        );
        let t = one_reply(&mut n);
        assert_eq!(t.to, from);
        assert_eq!(t.service, Service::Datagram);
        assert_eq!(t.bytes, unhex("13 00 12 34 c0 a8 01 14 00 8a 82"));
    }

    #[test]
    fn node_status_response_layout() {
        let (mut n, now) = node_at("192.168.1.20/24", &[("FRED", 0), ("FRED", 0x20)]);
        // DIGEST §10.3 NODE STATUS REQUEST for `*`.
        let req = unhex(
            "80 04 00 00 00 01 00 00 00 00 00 00 20 43 4b 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 \
             41 41 41 41 41 41 41 41 41 41 41 41 41 00 00 21 00 01",
        );
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 99), 50000);
        n.handle(
            now,
            Incoming {
                from,
                service: Service::Name,
                broadcast: false,
                bytes: &req,
            },
        );
        let t = one_reply(&mut n);
        assert_eq!(t.to, from);
        let b = &t.bytes;
        assert_eq!(&b[..12], &unhex("80 04 84 00 00 00 00 01 00 00 00 00")[..]);
        assert_eq!(&b[12..46], &req[12..46]); // question name echoed
        assert_eq!(&b[46..56], &unhex("00 21 00 01 00 00 00 00 00 53")[..]); // RDLENGTH 1 + 2*18 + 46
        assert_eq!(b[56], 2);
        assert_eq!(&b[57..75], b"FRED           \x00\x04\x00");
        assert_eq!(&b[75..93], b"FRED           \x20\x04\x00");
        assert!(b[93..].iter().all(|&x| x == 0));
        assert_eq!(b.len(), 93 + 46);
    }
}
