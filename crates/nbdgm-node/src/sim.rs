//! A deterministic simulated subnet for tests (ARCHITECTURE: "whole networks of nodes
//! can be simulated in one deterministic test"). Built only with the `sim` feature
//! (off by default: not part of the production node). Simulated time starts at an arbitrary
//! `Instant` and only moves when the simulation runs; a seeded generator decides loss,
//! duplication and reordering, so every run of a test sees the same packets.
//!
//! Routing: a packet to a node's broadcast address (or 255.255.255.255) reaches every
//! node on the sender's subnet that listens on the destination port, the sender too
//! when `loopback` is on (as Linux does); a unicast packet reaches the node with that
//! address and port. Every packet is recorded in [`Sim::wire`].

use crate::config::{Interface, NodeConfig, Service};
use crate::error::NodeError;
use crate::event::{Delivery, Event, RequestId};
use crate::node::{Incoming, LookupTarget, Node, SendRequest, Transmit};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Network behaviour.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// One-way delay of every packet.
    pub latency: Duration,
    /// Probability that one copy of a packet is lost.
    pub loss: f64,
    /// Probability that a copy is delivered twice.
    pub duplicate: f64,
    /// Probability that a copy gets an extra random delay up to `reorder_window`.
    pub reorder: f64,
    pub reorder_window: Duration,
    /// Deliver broadcasts back to their sender.
    pub loopback: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            latency: Duration::from_millis(1),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_window: Duration::from_millis(20),
            loopback: true,
        }
    }
}

/// A packet as it went over the simulated wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePacket {
    pub at: Instant,
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub service: Service,
    pub broadcast: bool,
    pub reply_to: Option<usize>,
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    seq: u64,
    node: usize,
    from: SocketAddrV4,
    service: Service,
    broadcast: bool,
    bytes: Vec<u8>,
}

/// The simulated subnet.
#[derive(Debug)]
pub struct Sim {
    pub cfg: SimConfig,
    base: Instant,
    now: Instant,
    nodes: Vec<Node>,
    events: Vec<Vec<Event>>,
    in_flight: Vec<InFlight>,
    rng: nbdgm_base::Random,
    seq: u64,
    /// Every packet sent, in order.
    pub wire: Vec<WirePacket>,
    /// When set, packets are recorded and kept in [`Sim::captured`] instead of delivered.
    pub capture: bool,
    pub captured: Vec<WirePacket>,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let now = Instant::now();
        Sim {
            rng: nbdgm_base::Random::seeded(cfg.seed),
            cfg,
            base: now,
            now,
            nodes: Vec::new(),
            events: Vec::new(),
            in_flight: Vec::new(),
            seq: 0,
            wire: Vec::new(),
            capture: false,
            captured: Vec::new(),
        }
    }

    /// From the seeded workspace generator ([`nbdgm_base::random`]).
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64)) < p
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Add a node with default configuration on `iface` (e.g. "10.0.0.1/24").
    pub fn add(&mut self, iface: &str) -> usize {
        let iface = Interface::parse(iface).expect("interface");
        self.add_node(NodeConfig::new(iface)).expect("node")
    }

    /// Without a seed, the node gets one derived from its address (reproducible runs).
    pub fn add_node(&mut self, mut config: NodeConfig) -> Result<usize, NodeError> {
        config
            .rng_seed
            .get_or_insert(u64::from(u32::from(config.interface.addr)));
        let node = Node::new(config, self.now)?;
        self.nodes.push(node);
        self.events.push(Vec::new());
        Ok(self.nodes.len() - 1)
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Run `f` on node `i` at the current time, then collect its output.
    pub fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i], now);
        self.pump(i);
        r
    }

    pub fn register(&mut self, i: usize, name: &str, group: bool) -> Result<(), NodeError> {
        let name: Name = name.parse().expect("name");
        self.with(i, |n, now| n.register(now, name, group))
    }

    pub fn release(&mut self, i: usize, name: &str) -> Result<(), NodeError> {
        let name: Name = name.parse().expect("name");
        self.with(i, |n, now| n.release(now, &name))
    }

    pub fn shutdown(&mut self, i: usize) {
        self.with(i, |n, now| n.shutdown(now))
    }

    pub fn send(&mut self, i: usize, req: SendRequest) -> Result<RequestId, NodeError> {
        self.with(i, |n, now| n.send(now, req))
    }

    pub fn lookup(
        &mut self,
        i: usize,
        name: &str,
        target: LookupTarget,
    ) -> Result<RequestId, NodeError> {
        let name: Name = name.parse().expect("name");
        self.with(i, |n, now| n.lookup(now, name, target))
    }

    pub fn node_status(
        &mut self,
        i: usize,
        addr: Ipv4Addr,
        name: Option<&str>,
    ) -> Result<RequestId, NodeError> {
        let name = name.map(|s| s.parse::<Name>().expect("name"));
        self.with(i, |n, now| n.node_status(now, addr, name))
    }

    /// Hand a packet to node `i` now, as if it came from `from`.
    pub fn inject(
        &mut self,
        i: usize,
        from: SocketAddrV4,
        service: Service,
        broadcast: bool,
        bytes: &[u8],
    ) {
        let now = self.now;
        self.nodes[i].handle(
            now,
            Incoming {
                from,
                service,
                broadcast,
                bytes,
            },
        );
        self.pump(i);
    }

    /// Route a recorded packet again (e.g. one taken from [`Sim::captured`]).
    pub fn replay(&mut self, p: &WirePacket) {
        let saved = self.capture;
        self.capture = false;
        self.route(p.clone());
        self.capture = saved;
    }

    /// Events of node `i` so far (kept until [`Sim::take_events`]).
    pub fn events(&self, i: usize) -> &[Event] {
        &self.events[i]
    }

    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// Datagrams delivered to node `i` so far.
    pub fn delivered(&self, i: usize) -> Vec<Delivery> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                Event::Delivered(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// Packets on the wire sent by node `i`.
    pub fn sent_by(&self, i: usize) -> Vec<WirePacket> {
        let ip = self.nodes[i].config().interface.addr;
        self.wire
            .iter()
            .filter(|p| *p.from.ip() == ip)
            .cloned()
            .collect()
    }

    fn pump(&mut self, i: usize) {
        while let Some(ev) = self.nodes[i].poll_event() {
            self.events[i].push(ev);
        }
        let mut out = Vec::new();
        while let Some(t) = self.nodes[i].poll_transmit() {
            out.push(t);
        }
        let cfg = self.nodes[i].config();
        let addr = cfg.interface.addr;
        let ports = (cfg.name_port, cfg.datagram_port);
        for t in out {
            let Transmit {
                to,
                service,
                bytes,
                broadcast,
                reply_to,
                ..
            } = t;
            let port = match service {
                Service::Name => ports.0,
                Service::Datagram => ports.1,
            };
            let p = WirePacket {
                at: self.now,
                from: SocketAddrV4::new(addr, port),
                to,
                service,
                broadcast,
                reply_to,
                bytes,
            };
            self.wire.push(p.clone());
            if self.capture {
                self.captured.push(p);
            } else {
                self.route(p);
            }
        }
    }

    fn route(&mut self, p: WirePacket) {
        let targets: Vec<(usize, Service, bool)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(j, n)| {
                let c = n.config();
                let service = if p.to.port() == c.name_port {
                    Service::Name
                } else if p.to.port() == c.datagram_port {
                    Service::Datagram
                } else {
                    return None;
                };
                let bcast = *p.to.ip() == Ipv4Addr::BROADCAST
                    || (*p.to.ip() == c.interface.broadcast()
                        && c.interface.contains(*p.from.ip()));
                let me = *p.from.ip() == c.interface.addr && p.from.port() == c.port(service);
                if bcast {
                    (!me || self.cfg.loopback).then_some((j, service, true))
                } else {
                    (*p.to.ip() == c.interface.addr).then_some((j, service, false))
                }
            })
            .collect();
        for (j, service, broadcast) in targets {
            if self.chance(self.cfg.loss) {
                continue;
            }
            let copies = if self.chance(self.cfg.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let mut at = p.at.max(self.now) + self.cfg.latency;
                if self.chance(self.cfg.reorder) {
                    let w = self.cfg.reorder_window.as_micros().max(1) as u64;
                    at += Duration::from_micros(self.next_u64() % w);
                }
                self.seq += 1;
                self.in_flight.push(InFlight {
                    at,
                    seq: self.seq,
                    node: j,
                    from: p.from,
                    service,
                    broadcast,
                    bytes: p.bytes.clone(),
                });
            }
        }
    }

    fn next_time(&self) -> Option<Instant> {
        let pkt = self.in_flight.iter().map(|f| f.at).min();
        let timer = self.nodes.iter().filter_map(Node::poll_timeout).min();
        [pkt, timer].into_iter().flatten().min()
    }

    /// Advance simulated time by `d`, delivering packets and firing timers in order.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut guard = 0u32;
        while let Some(t) = self.next_time() {
            if t > end {
                break;
            }
            guard += 1;
            assert!(guard < 1_000_000, "simulation does not settle");
            self.now = self.now.max(t);
            let now = self.now;
            // Packets due now, in (time, sequence) order.
            while let Some(k) = self
                .in_flight
                .iter()
                .enumerate()
                .filter(|(_, f)| f.at <= now)
                .min_by_key(|(_, f)| (f.at, f.seq))
                .map(|(k, _)| k)
            {
                let f = self.in_flight.swap_remove(k);
                self.nodes[f.node].handle(
                    now,
                    Incoming {
                        from: f.from,
                        service: f.service,
                        broadcast: f.broadcast,
                        bytes: &f.bytes,
                    },
                );
                self.pump(f.node);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].handle_timeout(now);
                    self.pump(i);
                }
            }
        }
        self.now = end;
    }

    /// Run until nothing is in flight and no timer is due within `limit`.
    pub fn settle(&mut self, limit: Duration) {
        self.run_for(limit);
    }
}
