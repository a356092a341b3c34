//! The send guard: every probe socket is created and connected through [`Scope`], which
//! refuses any destination outside the probed targets.

use super::udp::ProbeUdp;
use crate::target::TargetSet;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// The only way to a probe socket: [`Scope::check`] runs before every socket is connected,
/// and sockets are only sent on after being connected to a checked destination, so no
/// packet can leave for an address outside the targets.
#[derive(Debug, Clone)]
pub struct Scope {
    allowed: Arc<TargetSet>,
}

impl Scope {
    pub fn new(allowed: TargetSet) -> Self {
        Scope {
            allowed: Arc::new(allowed),
        }
    }

    /// Refuse any destination outside the target set.
    pub fn check(&self, dest: Ipv4Addr) -> io::Result<()> {
        if self.allowed.contains(dest) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refusing to send to {dest}: not one of the given targets"),
            ))
        }
    }

    /// A UDP socket from an ephemeral port, `IP_RECVERR` on, connected to `dest`.
    pub(super) fn udp(&self, dest: SocketAddrV4) -> io::Result<ProbeUdp> {
        self.check(*dest.ip())?;
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
            .map_err(io::Error::from)?;
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())?;
        s.connect(&SocketAddr::V4(dest).into())?;
        let local = match s.local_addr()?.as_socket() {
            Some(SocketAddr::V4(a)) => a,
            _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        };
        let std: std::net::UdpSocket = s.into();
        Ok(ProbeUdp {
            sock: tokio::net::UdpSocket::from_std(std)?,
            local,
        })
    }

    /// A TCP connect to `dest` (the returned future), from a socket with `IP_RECVERR` on,
    /// and a second handle on that socket for reading its error queue.
    pub(super) fn tcp_connect(
        &self,
        dest: SocketAddrV4,
    ) -> io::Result<(
        impl Future<Output = io::Result<tokio::net::TcpStream>>,
        socket2::Socket,
    )> {
        self.check(*dest.ip())?;
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
            .map_err(io::Error::from)?;
        s.set_nonblocking(true)?;
        let errq = s.try_clone()?;
        let std: std::net::TcpStream = s.into();
        let sock = tokio::net::TcpSocket::from_std_stream(std);
        Ok((sock.connect(SocketAddr::V4(dest)), errq))
    }
}
