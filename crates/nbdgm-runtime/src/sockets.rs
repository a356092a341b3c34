//! UDP sockets of one interface: unicast and broadcast, name service (137) and datagram
//! service (138) (RFC 1002 §5.1, §5.3; DIGEST §8 items 21–22).
//!
//! Like Samba, each service gets a socket on the interface's own address (unicast in,
//! everything out) and one on its directed broadcast address (broadcasts in). The
//! broadcast sockets share their address with `SO_REUSEADDR`, so several nodes on one host
//! (tests on loopback) all see the broadcasts. The unicast sockets do not, so a port
//! already held by another daemon (for example nmbd on 0.0.0.0) is reported, not shared.
//!
//! The tools without a daemon bind one socket per service, often to 0.0.0.0, which
//! receives both: there `IP_PKTINFO` ([`enable_pktinfo`]) gives each datagram's
//! destination address, and [`Arrivals`] tells a broadcast one from a unicast one.

use crate::privilege::explain_bind_error;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket as StdUdpSocket};
use std::os::fd::{AsFd, AsRawFd};
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

/// Ask the kernel for each datagram's `in_pktinfo` (ip(7) `IP_PKTINFO`): the batched
/// receive then reports its destination address and interface
/// ([`crate::recv_batch::PktInfo`]).
#[allow(unsafe_code)]
pub fn enable_pktinfo(s: &impl AsFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, and a pointer to a c_int with its size.
    let r = unsafe {
        libc::setsockopt(
            s.as_fd().as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True when a datagram sent to `dst` was a broadcast (or multicast): the limited
/// broadcast 255.255.255.255, a multicast group, or one of `directed`, the directed
/// broadcast addresses of the interface it came in on (RFC 1002 §5.3: B nodes send
/// to the broadcast address, datagrams to a name of ours come unicast).
pub fn is_broadcast_destination(dst: Ipv4Addr, directed: &[Ipv4Addr]) -> bool {
    dst.is_broadcast() || dst.is_multicast() || directed.contains(&dst)
}

/// Interfaces remembered by [`Arrivals`] (beyond: forgotten and looked up again).
const MAX_INTERFACES: usize = 256;

/// The directed broadcast addresses of the system's interfaces by index, read from
/// the system when an index is not known yet: classifies the arrivals a socket bound
/// to 0.0.0.0 reports through `IP_PKTINFO`.
#[derive(Debug, Default)]
pub struct Arrivals {
    by_index: HashMap<u32, Vec<Ipv4Addr>>,
    /// Times the interface list was read.
    pub lookups: u64,
    /// Times the table was full and forgotten.
    pub forgotten: u64,
}

impl Arrivals {
    /// Whether a datagram sent to `dst` that came in on interface `ifindex` was a
    /// broadcast. An interface the system does not list counts as having no directed
    /// broadcast address; when the list cannot be read, the kernel's own choice of
    /// answering address decides (`spec_dst` differs from `dst` only for broadcast
    /// and multicast datagrams).
    pub fn is_broadcast(&mut self, dst: Ipv4Addr, spec_dst: Ipv4Addr, ifindex: u32) -> bool {
        if dst.is_broadcast() || dst.is_multicast() {
            return true;
        }
        if !self.by_index.contains_key(&ifindex) && !self.look_up(ifindex) {
            return dst != spec_dst;
        }
        let directed = self.by_index.get(&ifindex).map(Vec::as_slice);
        is_broadcast_destination(dst, directed.unwrap_or_default())
    }

    /// Read the interface list; false when it cannot be read.
    fn look_up(&mut self, ifindex: u32) -> bool {
        self.lookups += 1;
        let Ok(list) = nix::ifaddrs::getifaddrs() else {
            return false;
        };
        if self.by_index.len() >= MAX_INTERFACES {
            self.by_index.clear();
            self.forgotten += 1;
        }
        // Known from now on, even when it has no IPv4 broadcast address.
        let known = self.by_index.entry(ifindex).or_default();
        let v4 = |a: &Option<nix::sys::socket::SockaddrStorage>| {
            a.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip())
        };
        for ifa in list {
            let (Some(addr), Some(mask)) = (v4(&ifa.address), v4(&ifa.netmask)) else {
                continue;
            };
            if nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).ok() != Some(ifindex) {
                continue;
            }
            let mut add = |b: Ipv4Addr| {
                if !known.contains(&b) && known.len() < MAX_INTERFACES {
                    known.push(b);
                }
            };
            // The subnet's directed broadcast (also on loopback, which has no
            // IFF_BROADCAST but a broadcast route), and the one the interface names.
            if u32::from(mask).leading_ones() < 31 {
                add(Ipv4Addr::from(u32::from(addr) | !u32::from(mask)));
            }
            if ifa
                .flags
                .contains(nix::net::if_::InterfaceFlags::IFF_BROADCAST)
            {
                if let Some(b) = v4(&ifa.broadcast) {
                    add(b);
                }
            }
        }
        true
    }
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

    #[test]
    fn broadcast_destinations_are_the_limited_multicast_and_directed_ones() {
        let directed = [Ipv4Addr::new(198, 51, 100, 255)];
        let bc = |a: [u8; 4]| is_broadcast_destination(Ipv4Addr::from(a), &directed);
        assert!(bc([255, 255, 255, 255]));
        assert!(bc([198, 51, 100, 255]));
        assert!(bc([224, 0, 0, 1]));
        assert!(!bc([198, 51, 100, 20]), "a unicast address");
        assert!(!bc([203, 0, 113, 255]), "another subnet's broadcast");
        assert!(!is_broadcast_destination(
            Ipv4Addr::new(198, 51, 100, 255),
            &[]
        ));
    }

    #[test]
    fn loopback_arrivals_are_classified_by_its_subnet() {
        let lo = std::ffi::CString::new("lo").unwrap();
        // SAFETY: a NUL-terminated string.
        #[allow(unsafe_code)]
        let index = unsafe { libc::if_nametoindex(lo.as_ptr()) };
        assert!(index > 0, "no lo");
        let mut a = Arrivals::default();
        let local = Ipv4Addr::LOCALHOST;
        assert!(!a.is_broadcast(local, local, index));
        assert!(a.is_broadcast(Ipv4Addr::BROADCAST, local, index));
        assert_eq!(a.lookups, 1);
        assert!(a.is_broadcast(Ipv4Addr::new(127, 255, 255, 255), local, index));
        // Known now: no second lookup.
        assert!(!a.is_broadcast(Ipv4Addr::new(127, 0, 0, 2), local, index));
        assert_eq!(a.lookups, 1);
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
