//! A node without a daemon: one [`Node`] on two sockets of its own, driven until a
//! command completes. Used by `nbdgm send` and `nbdgm listen` when no daemon runs
//! (RFC 1002 §5.3.1 send, §5.3.3 receive).

use crate::privilege::explain_bind_error;
use nbdgm_node::{Event, Incoming, Node, NodeConfig, Service};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;
use tokio::net::UdpSocket;

/// A node on its own sockets.
pub struct Standalone {
    node: Node,
    name: UdpSocket,
    datagram: UdpSocket,
    buf: Vec<u8>,
}

fn open(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let wrap =
        |e: io::Error| io::Error::new(e.kind(), explain_bind_error(&e, SocketAddr::V4(addr)));
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(wrap)?;
    s.set_broadcast(true).map_err(wrap)?;
    s.set_reuse_address(true).map_err(wrap)?;
    s.set_nonblocking(true).map_err(wrap)?;
    s.bind(&SocketAddr::V4(addr).into()).map_err(wrap)?;
    UdpSocket::from_std(s.into())
}

impl Standalone {
    /// Bind `bind`:datagram_port (0.0.0.0 receives unicast and broadcast alike) and an
    /// ephemeral name-service port (queries go out from it and answers come back to it;
    /// nobody needs to query a standalone tool), and start a node with `config`.
    pub fn open(config: NodeConfig, bind: Ipv4Addr) -> io::Result<Standalone> {
        let name = open(SocketAddrV4::new(bind, 0))?;
        let datagram = open(SocketAddrV4::new(bind, config.datagram_port))?;
        let node = Node::new(config, Instant::now())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Standalone {
            node,
            name,
            datagram,
            buf: vec![0; 65_536],
        })
    }

    /// Like [`Standalone::open`], but the datagram socket is also ephemeral (no root
    /// needed): `config.datagram_port` is then only the remote port datagrams go to. For
    /// client tools whose peers answer the UDP source (`nbdgm dc-ping`; Samba nmbd
    /// replies to the request's source IP and port). Headers still carry
    /// `config.datagram_port` as SOURCE_PORT.
    pub fn open_ephemeral(config: NodeConfig, bind: Ipv4Addr) -> io::Result<Standalone> {
        let name = open(SocketAddrV4::new(bind, 0))?;
        let datagram = open(SocketAddrV4::new(bind, 0))?;
        let node = Node::new(config, Instant::now())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Standalone {
            node,
            name,
            datagram,
            buf: vec![0; 65_536],
        })
    }

    /// The local address of the datagram socket.
    pub fn datagram_local_addr(&self) -> io::Result<SocketAddr> {
        self.datagram.local_addr()
    }

    pub fn node(&mut self) -> &mut Node {
        &mut self.node
    }

    async fn flush(&mut self) -> io::Result<()> {
        while let Some(t) = self.node.poll_transmit() {
            let sock = match t.service {
                Service::Name => &self.name,
                Service::Datagram => &self.datagram,
            };
            sock.send_to(&t.bytes, SocketAddr::V4(t.to)).await?;
        }
        Ok(())
    }

    fn incoming(node: &mut Node, r: io::Result<(usize, SocketAddr)>, buf: &[u8], service: Service) {
        if let Ok((n, SocketAddr::V4(from))) = r {
            node.handle(
                Instant::now(),
                Incoming {
                    from,
                    service,
                    // One socket for both: the node cannot tell, so it treats all as broadcast
                    // and never sends DATAGRAM ERRORs.
                    broadcast: true,
                    bytes: buf.get(..n).unwrap_or_default(),
                },
            );
        }
    }

    /// Run until `on_event` returns false or `deadline` passes. Returns false on timeout.
    pub async fn run(
        &mut self,
        deadline: Option<Instant>,
        mut on_event: impl FnMut(Event) -> bool,
    ) -> io::Result<bool> {
        let mut name_buf = vec![0u8; 65_536];
        loop {
            self.flush().await?;
            while let Some(ev) = self.node.poll_event() {
                if !on_event(ev) {
                    self.flush().await?;
                    return Ok(true);
                }
            }
            let timer = self.node.poll_timeout();
            let wake = match (timer, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(w.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.name.recv_from(&mut name_buf) => {
                    Self::incoming(&mut self.node, r, &name_buf, Service::Name);
                }
                r = self.datagram.recv_from(&mut self.buf) => {
                    Self::incoming(&mut self.node, r, &self.buf, Service::Datagram);
                }
                _ = sleep => {
                    let now = Instant::now();
                    self.node.handle_timeout(now);
                    if deadline.is_some_and(|d| now >= d) {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// Send one datagram from a standalone node on `bind` and wait (at most `timeout`) for
/// its outcome: `Ok(None)` when none came in time. Used by `nbdgm send` and `nbdgm
/// message send` without a daemon.
pub fn send_once(
    config: NodeConfig,
    bind: Ipv4Addr,
    request: nbdgm_node::SendRequest,
    timeout: std::time::Duration,
) -> Result<Option<Result<nbdgm_node::SendInfo, nbdgm_node::SendError>>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut node = Standalone::open(config, bind).map_err(|e| e.to_string())?;
        let id = node
            .node()
            .send(Instant::now(), request)
            .map_err(|e| e.to_string())?;
        let mut outcome = None;
        node.run(Some(Instant::now() + timeout), |ev| match ev {
            Event::SendDone { id: done, result } if done == id => {
                outcome = Some(result);
                false
            }
            _ => true,
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(outcome)
    })
}
