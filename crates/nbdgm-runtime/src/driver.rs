//! The driver of one interface: its sockets ([`InterfaceSockets`]) and its engines
//! ([`Engines`]), the I/O half of the sans-IO design (RFC 1002 §5.1 name service and
//! §5.3 datagram service on UDP 137/138). One loop for the daemon's workers and for
//! the tools without a daemon ([`crate::Standalone`]):
//!
//! 1. [`Driver::wait`]: until a socket is readable, a timer of the engines (or the
//!    caller's) is due, or the caller's own future completes;
//! 2. [`Driver::try_recv`] in batches, then [`Driver::deliver`] to the node (the caller
//!    may check the packet first: access lists, rate limits, roles);
//! 3. the pairing's rounds ([`Engines::pump_browser`], [`Engines::observe`]) and
//!    [`Driver::send`] for what the node queued.

use crate::engines::Engines;
use crate::sockets::{InterfaceSockets, Role};
use nbdgm_node::{Incoming, Service};
use std::future::{pending, Future};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Packets read from one socket before the driver looks at its other sockets.
pub const BATCH: usize = 64;
/// Largest UDP payload read.
pub const RECV_BUF: usize = 65_536;
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

/// One received packet, its bytes in the driver's buffer until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub from: SocketAddrV4,
    pub service: Service,
    /// Arrived on a broadcast socket (or on a socket that receives both).
    pub broadcast: bool,
    pub len: usize,
}

/// What [`Driver::try_recv`] found.
#[derive(Debug)]
pub enum Recv {
    Packet(Packet),
    /// Nothing more to read now.
    Empty,
    /// Not IPv4 (cannot reach an IPv4 socket; skipped).
    Skipped,
    Error(io::Error),
}

/// Sockets and engines of one interface.
pub struct Driver {
    pub engines: Engines,
    sockets: InterfaceSockets,
    /// The unicast sockets receive broadcasts too (bound to 0.0.0.0): the node cannot
    /// tell, so every packet counts as broadcast (and never gets a DATAGRAM ERROR).
    all_broadcast: bool,
    buf: Vec<u8>,
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
            buf: vec![0; RECV_BUF],
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

    /// Read one packet from the socket of `role` without waiting.
    pub fn try_recv(&mut self, role: Role) -> Recv {
        let sock = match role {
            Role::NameUnicast => Some(&self.sockets.name),
            Role::NameBroadcast => self.sockets.name_bcast.as_ref(),
            Role::DatagramUnicast => Some(&self.sockets.datagram),
            Role::DatagramBroadcast => self.sockets.datagram_bcast.as_ref(),
        };
        let Some(sock) = sock else {
            return Recv::Empty;
        };
        match sock.try_recv_from(&mut self.buf) {
            Ok((len, SocketAddr::V4(from))) => {
                let (service, broadcast) = match role {
                    Role::NameUnicast => (Service::Name, false),
                    Role::NameBroadcast => (Service::Name, true),
                    Role::DatagramUnicast => (Service::Datagram, false),
                    Role::DatagramBroadcast => (Service::Datagram, true),
                };
                Recv::Packet(Packet {
                    from,
                    service,
                    broadcast: broadcast || self.all_broadcast,
                    len,
                })
            }
            Ok(_) => Recv::Skipped,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Recv::Empty,
            Err(e) => Recv::Error(e),
        }
    }

    /// The engines and the bytes of the packet just read (for checks before
    /// [`Driver::deliver`]).
    pub fn packet(&mut self, p: &Packet) -> (&mut Engines, &[u8]) {
        (&mut self.engines, self.buf.get(..p.len).unwrap_or_default())
    }

    /// Hand the packet just read to the node.
    pub fn deliver(&mut self, now: Instant, p: &Packet) {
        self.engines.node.handle(
            now,
            Incoming {
                from: p.from,
                service: p.service,
                broadcast: p.broadcast,
                bytes: self.buf.get(..p.len).unwrap_or_default(),
            },
        );
    }

    /// Read and deliver up to [`BATCH`] packets from the socket of `role`, unchecked
    /// (the tools without a daemon). Errors other than "nothing to read" are returned.
    pub fn receive_all(&mut self, role: Role) -> io::Result<()> {
        for _ in 0..BATCH {
            match self.try_recv(role) {
                Recv::Packet(p) => self.deliver(Instant::now(), &p),
                Recv::Skipped => {}
                Recv::Empty => return Ok(()),
                Recv::Error(e) => return Err(e),
            }
        }
        Ok(())
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

    /// Whether the socket of `role` exists (broadcast sockets are optional).
    pub fn has(&self, role: Role) -> bool {
        self.by_role(role).is_some()
    }
}
