//! UDP sockets of one interface: unicast and broadcast, name service (137) and datagram
//! service (138) (RFC 1002 §5.1, §5.3; DIGEST §8 items 21–22).
//!
//! Like Samba, each service gets a socket on the interface's own address (unicast in,
//! everything out) and one on its directed broadcast address (broadcasts in). The
//! broadcast sockets share their address with `SO_REUSEADDR`, so several nodes on one host
//! (tests on loopback) all see the broadcasts. The unicast sockets do not, so a port
//! already held by another daemon (for example nmbd on 0.0.0.0) is reported, not shared.

use crate::privilege::explain_bind_error;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket as StdUdpSocket};
use tokio::net::UdpSocket;

/// Kernel receive buffer asked for on every socket (floods are absorbed here).
const RECV_BUFFER: usize = 4 << 20;

/// Which of the four sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    NameUnicast,
    NameBroadcast,
    DatagramUnicast,
    DatagramBroadcast,
}

/// The bound sockets of one interface.
pub struct InterfaceSockets {
    pub name: UdpSocket,
    pub datagram: UdpSocket,
    pub name_bcast: Option<UdpSocket>,
    pub datagram_bcast: Option<UdpSocket>,
}

/// The same sockets before they join a tokio runtime: bound (as root, before privileges
/// are dropped) in one place, registered with the runtime of the thread that serves them.
pub struct BoundSockets {
    name: StdUdpSocket,
    datagram: StdUdpSocket,
    name_bcast: Option<StdUdpSocket>,
    datagram_bcast: Option<StdUdpSocket>,
}

impl BoundSockets {
    /// Register with the current tokio runtime.
    pub fn into_tokio(self) -> io::Result<InterfaceSockets> {
        let opt = |s: Option<StdUdpSocket>| s.map(UdpSocket::from_std).transpose();
        Ok(InterfaceSockets {
            name: UdpSocket::from_std(self.name)?,
            datagram: UdpSocket::from_std(self.datagram)?,
            name_bcast: opt(self.name_bcast)?,
            datagram_bcast: opt(self.datagram_bcast)?,
        })
    }
}

/// A bind failure with a message a user can act on.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BindError {
    pub message: String,
    #[source]
    pub source: io::Error,
}

fn open(addr: SocketAddrV4, reuse: bool) -> Result<StdUdpSocket, BindError> {
    let wrap = |e: io::Error| BindError {
        message: explain_bind_error(&e, SocketAddr::V4(addr)),
        source: e,
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(wrap)?;
    s.set_reuse_address(reuse).map_err(wrap)?;
    s.set_broadcast(true).map_err(wrap)?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    s.set_nonblocking(true).map_err(wrap)?;
    s.bind(&SocketAddr::V4(addr).into()).map_err(wrap)?;
    Ok(s.into())
}

/// A socket for the tools without a daemon, registered with the current tokio
/// runtime: `SO_REUSEADDR` (a daemon's broadcast sockets and several tools share the
/// port), broadcasts allowed, the kernel's default receive buffer.
pub fn open_shared(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let wrap =
        |e: io::Error| io::Error::new(e.kind(), explain_bind_error(&e, SocketAddr::V4(addr)));
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(wrap)?;
    s.set_broadcast(true).map_err(wrap)?;
    s.set_reuse_address(true).map_err(wrap)?;
    s.set_nonblocking(true).map_err(wrap)?;
    s.bind(&SocketAddr::V4(addr).into()).map_err(wrap)?;
    UdpSocket::from_std(s.into())
}

/// Bind the sockets of one interface. `broadcast` equal to `addr` (a /32) skips the
/// broadcast sockets.
pub fn bind(
    addr: Ipv4Addr,
    broadcast: Ipv4Addr,
    name_port: u16,
    datagram_port: u16,
) -> Result<BoundSockets, BindError> {
    let name = open(SocketAddrV4::new(addr, name_port), false)?;
    let datagram = open(SocketAddrV4::new(addr, datagram_port), false)?;
    let (name_bcast, datagram_bcast) = if broadcast != addr {
        (
            Some(open(SocketAddrV4::new(broadcast, name_port), true)?),
            Some(open(SocketAddrV4::new(broadcast, datagram_port), true)?),
        )
    } else {
        (None, None)
    };
    Ok(BoundSockets {
        name,
        datagram,
        name_bcast,
        datagram_bcast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_on_loopback_and_reports_port_in_use() {
        let a = Ipv4Addr::new(127, 0, 0, 1);
        // Ephemeral ports first, then the same ports again must fail with a clear text.
        let s = bind(a, a, 0, 0).unwrap();
        let np = s.name.local_addr().unwrap().port();
        let dp = s.datagram.local_addr().unwrap().port();
        let err = bind(a, a, np, dp).err().expect("second bind must fail");
        assert!(err.message.contains("already in use"), "{}", err.message);
    }

    #[tokio::test]
    async fn broadcast_sockets_are_shared() {
        let a = Ipv4Addr::new(127, 0, 0, 2);
        let b = Ipv4Addr::new(127, 0, 0, 3);
        let bc = Ipv4Addr::new(127, 255, 255, 255);
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let sa = bind(a, bc, port, 0).unwrap();
        let sb = bind(b, bc, port, 0).unwrap();
        assert!(sa.name_bcast.is_some() && sb.name_bcast.is_some());
    }
}
