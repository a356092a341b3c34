//! The driver of one interface: its sockets ([`InterfaceSockets`]) and its engines
//! ([`Engines`]), the I/O half of the sans-IO design (RFC 1002 §5.1 name service and
//! §5.3 datagram service on UDP 137/138). One loop for the daemon's workers and for
//! the tools without a daemon ([`crate::Standalone`]):
//!
//! 1. [`Driver::wait`]: until a socket is readable, a timer of the engines (or the
//!    caller's) is due, or the caller's own future completes;
//! 2. [`Driver::recv_batch`] (one `recvmmsg`), then [`Driver::deliver`] to the node (the caller
//!    may check the packet first: access lists, rate limits, roles);
//! 3. the pairing's rounds ([`Engines::pump_browser`], [`Engines::observe`]) and
//!    [`Driver::send`] for what the node queued, or [`Driver::queue`] and
//!    [`Driver::send_queued`] to send it with one `sendmmsg` per batch.

use crate::engines::Engines;
use crate::recv_batch::{self, RecvBatch};
use crate::send_batch::{self, SendBatch};
use crate::sockets::{Arrivals, InterfaceSockets, Role};
use nbdgm_node::{Incoming, Service};
use std::future::{pending, Future};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Packets read from one socket before the driver looks at its other sockets.
pub const BATCH: usize = 64;
/// Packets one `recvmmsg` call reads (a [`BATCH`] takes two calls or fewer).
pub const RECV_SLOTS: usize = recv_batch::MAX_SLOTS;
/// Largest UDP payload read: one slot of the batch. The slots are allocated once
/// (32 × 64 KiB of address space; pages are touched only by the datagrams that fill
/// them).
pub const RECV_BUF: usize = 65_536;
/// Datagrams one `sendmmsg` call sends ([`Driver::queue`] holds this many).
pub const SEND_SLOTS: usize = send_batch::MAX_SLOTS;
/// Longest wait for a full kernel send queue.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// Why [`Driver::wait`] returned.
#[derive(Debug)]
pub enum Wake<T> {
    /// This socket is readable (or its readiness failed).
    Readable(Role, io::Result<()>),
    /// A timer is due: the engines' or the caller's.
    Timer,
    /// The caller's future completed.
    Other(T),
}

/// One received packet, its bytes in the driver's batch until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub from: SocketAddrV4,
    pub service: Service,
    /// Sent to a broadcast (or multicast) address: by its destination address when
    /// the socket reports it (`IP_PKTINFO`), else by the socket it arrived on (every
    /// packet of a socket that receives both, without `IP_PKTINFO`).
    pub broadcast: bool,
    /// The destination address of its IP header, when the socket reports it.
    pub dst: Option<Ipv4Addr>,
    /// The interface it came in on, when the socket reports it.
    pub ifindex: Option<u32>,
    pub len: usize,
    /// Its slot in the batch.
    slot: usize,
}

/// One entry of the batch [`Driver::recv_batch`] read.
#[derive(Debug)]
pub enum Recv {
    Packet(Packet),
    /// Not IPv4 (cannot reach an IPv4 socket; skipped).
    Skipped,
    /// Longer than [`RECV_BUF`] and cut by the kernel (cannot happen for IPv4, whose
    /// UDP payload is at most 65,507 bytes); dropped.
    Truncated,
}

/// Sockets and engines of one interface.
pub struct Driver {
    pub engines: Engines,
    sockets: InterfaceSockets,
    /// The unicast sockets receive broadcasts too (bound to 0.0.0.0): without
    /// `IP_PKTINFO` the node cannot tell, so every packet counts as broadcast (and never
    /// gets a DATAGRAM ERROR).
    all_broadcast: bool,
    /// Classifies the destinations `IP_PKTINFO` reports (the interfaces' broadcast
    /// addresses, read on first use).
    arrivals: Mutex<Arrivals>,
    batch: RecvBatch,
    /// The role of the socket the batch came from.
    batch_role: Role,
    /// Datagrams queued for one `sendmmsg` ([`Driver::queue`]), all from the socket
    /// of `out_service`.
    out: SendBatch,
    out_service: Service,
}

async fn readable(s: Option<&UdpSocket>) -> io::Result<()> {
    match s {
        Some(s) => s.readable().await,
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => pending().await,
    }
}

impl Driver {
    /// `all_broadcast`: see [`Driver`]; true for sockets bound to the wildcard address.
    pub fn new(engines: Engines, sockets: InterfaceSockets, all_broadcast: bool) -> Driver {
        Driver {
            engines,
            sockets,
            all_broadcast,
            arrivals: Mutex::new(Arrivals::default()),
            batch: RecvBatch::new(RECV_SLOTS, RECV_BUF),
            batch_role: Role::DatagramUnicast,
            // Answers to one requester go as one GSO message per run.
            out: SendBatch::new(SEND_SLOTS).with_gso(true),
            out_service: Service::Name,
        }
    }

    /// The unicast socket of `service` (everything goes out from it).
    pub fn socket(&self, service: Service) -> &UdpSocket {
        match service {
            Service::Name => &self.sockets.name,
            Service::Datagram => &self.sockets.datagram,
        }
    }

    fn by_role(&self, role: Role) -> Option<&UdpSocket> {
        match role {
            Role::NameUnicast => Some(&self.sockets.name),
            Role::NameBroadcast => self.sockets.name_bcast.as_ref(),
            Role::DatagramUnicast => Some(&self.sockets.datagram),
            Role::DatagramBroadcast => self.sockets.datagram_bcast.as_ref(),
        }
    }

    /// Wait for a readable socket, the earliest of the engines' timers and `deadline`,
    /// or `other`.
    pub async fn wait<T>(
        &self,
        deadline: Option<Instant>,
        other: impl Future<Output = T>,
    ) -> Wake<T> {
        let deadline = match (self.engines.poll_timeout(), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let s = &self.sockets;
        tokio::select! {
            r = s.name.readable() => Wake::Readable(Role::NameUnicast, r),
            r = readable(s.name_bcast.as_ref()) => Wake::Readable(Role::NameBroadcast, r),
            r = s.datagram.readable() => Wake::Readable(Role::DatagramUnicast, r),
            r = readable(s.datagram_bcast.as_ref()) => Wake::Readable(Role::DatagramBroadcast, r),
            _ = sleep_until(deadline) => Wake::Timer,
            t = other => Wake::Other(t),
        }
    }

    /// Read up to [`RECV_SLOTS`] packets from the socket of `role` without waiting (one
    /// `recvmmsg`): `Ok(0)` when nothing is queued. The packets are then
    /// [`Driver::received`] `0..n`, valid until the next call.
    pub fn recv_batch(&mut self, role: Role) -> io::Result<usize> {
        let sock = match role {
            Role::NameUnicast => Some(&self.sockets.name),
            Role::NameBroadcast => self.sockets.name_bcast.as_ref(),
            Role::DatagramUnicast => Some(&self.sockets.datagram),
            Role::DatagramBroadcast => self.sockets.datagram_bcast.as_ref(),
        };
        let Some(sock) = sock else {
            return Ok(0);
        };
        self.batch_role = role;
        let batch = &mut self.batch;
        // Through tokio, so that "would block" clears the socket's readiness.
        match sock.try_io(Interest::READABLE, || batch.recv(sock.as_fd())) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Entry `i` of the last batch (`None` past its end).
    pub fn received(&self, i: usize) -> Option<Recv> {
        let (e, _) = self.batch.get(i)?;
        let Some(from) = e.from else {
            return Some(Recv::Skipped);
        };
        if e.truncated {
            return Some(Recv::Truncated);
        }
        let (service, broadcast) = match self.batch_role {
            Role::NameUnicast => (Service::Name, false),
            Role::NameBroadcast => (Service::Name, true),
            Role::DatagramUnicast => (Service::Datagram, false),
            Role::DatagramBroadcast => (Service::Datagram, true),
        };
        let old = broadcast || self.all_broadcast;
        // A Mutex (not a RefCell) keeps the driver `Sync`; nothing else holds it.
        let broadcast = match e.pktinfo {
            Some(pi) => self
                .arrivals
                .lock()
                .map_or(old, |mut a| a.is_broadcast(pi.dst, pi.spec_dst, pi.ifindex)),
            None => old,
        };
        Some(Recv::Packet(Packet {
            from,
            service,
            broadcast,
            dst: e.pktinfo.map(|pi| pi.dst),
            ifindex: e.pktinfo.map(|pi| pi.ifindex),
            len: e.len,
            slot: i,
        }))
    }

    /// The engines and the bytes of a packet of the last batch (for checks before
    /// [`Driver::deliver`]).
    pub fn packet(&mut self, p: &Packet) -> (&mut Engines, &[u8]) {
        let bytes = self.batch.get(p.slot).map(|(_, b)| b).unwrap_or_default();
        (&mut self.engines, bytes)
    }

    /// Hand a packet of the last batch to the node.
    pub fn deliver(&mut self, now: Instant, p: &Packet) {
        let bytes = self.batch.get(p.slot).map(|(_, b)| b).unwrap_or_default();
        self.engines.node.handle(
            now,
            Incoming {
                from: p.from,
                service: p.service,
                broadcast: p.broadcast,
                bytes,
            },
        );
    }

    /// Send from the unicast socket of `service`; a full kernel queue is waited for,
    /// but never longer than a second.
    pub async fn send(
        &self,
        service: Service,
        to: SocketAddrV4,
        bytes: &[u8],
    ) -> io::Result<usize> {
        let sock = self.socket(service);
        let to = SocketAddr::V4(to);
        match sock.try_send_to(bytes, to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match tokio::time::timeout(SEND_WAIT, sock.send_to(bytes, to)).await {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
                }
            }
            r => r,
        }
    }

    /// Send without waiting (answers of the roles: dropped when the queue is full).
    pub fn try_send(&self, service: Service, to: SocketAddrV4, bytes: &[u8]) -> io::Result<usize> {
        self.socket(service).try_send_to(bytes, SocketAddr::V4(to))
    }

    /// Send `batch` from the unicast socket of `service` without waiting (one
    /// `sendmmsg` per run of datagrams the kernel takes; see [`SendBatch::send`]):
    /// `Err(WouldBlock)` when the kernel queue is full, the rest still queued.
    pub fn try_send_batch(&self, service: Service, batch: &mut SendBatch) -> io::Result<()> {
        try_send_batch(self.socket(service), batch)
    }

    /// Send `batch` from the unicast socket of `service`; a full kernel queue is waited
    /// for, but never longer than a second without progress. What is left then fails
    /// with `TimedOut` (each datagram's result is in the batch).
    pub async fn send_batch(&self, service: Service, batch: &mut SendBatch) -> io::Result<()> {
        send_batch_waiting(self.socket(service), batch).await
    }

    /// Queue a copy of a datagram for [`Driver::send_queued`], from the unicast socket of
    /// `service`. `false` (nothing queued) when the queue is full or holds datagrams of
    /// the other service: send those first, so the datagrams leave in the order queued.
    pub fn queue(&mut self, service: Service, to: SocketAddrV4, bytes: &[u8]) -> bool {
        if !self.out.is_empty() && self.out_service != service {
            return false;
        }
        self.out_service = service;
        self.out.push(to, bytes)
    }

    /// Send what [`Driver::queue`] holds, one `sendmmsg` per batch; `wait`: a full kernel
    /// queue is waited for as in [`Driver::send_batch`], else what it did not take fails
    /// with `WouldBlock`. Then each datagram's destination and result go to `done`, in
    /// the order queued, and the queue is empty.
    pub async fn send_queued(
        &mut self,
        wait: bool,
        done: impl FnMut(SocketAddrV4, io::Result<usize>),
    ) {
        if self.out.is_empty() {
            return;
        }
        let sock = match self.out_service {
            Service::Name => &self.sockets.name,
            Service::Datagram => &self.sockets.datagram,
        };
        // The results are in the batch; the overall outcome adds nothing to them.
        let _ = if wait {
            send_batch_waiting(sock, &mut self.out).await
        } else {
            try_send_batch(sock, &mut self.out)
        };
        self.out.drain(done);
    }

    /// Whether the socket of `role` exists (broadcast sockets are optional).
    pub fn has(&self, role: Role) -> bool {
        self.by_role(role).is_some()
    }
}

/// Through tokio, so that "would block" clears the socket's write readiness.
fn try_send_batch(sock: &UdpSocket, batch: &mut SendBatch) -> io::Result<()> {
    sock.try_io(Interest::WRITABLE, || batch.send(sock.as_fd()))
}

/// [`Driver::send_batch`]: each wait for writability ends within [`SEND_WAIT`] of the
/// last progress.
async fn send_batch_waiting(sock: &UdpSocket, batch: &mut SendBatch) -> io::Result<()> {
    let mut deadline = tokio::time::Instant::now() + SEND_WAIT;
    loop {
        let before = batch.unsent();
        match try_send_batch(sock, batch) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            r => return r,
        }
        if batch.unsent() < before {
            deadline = tokio::time::Instant::now() + SEND_WAIT;
        }
        if tokio::time::timeout_at(deadline, sock.writable())
            .await
            .is_err()
        {
            batch.fail_unsent(io::ErrorKind::TimedOut);
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
    }
}
