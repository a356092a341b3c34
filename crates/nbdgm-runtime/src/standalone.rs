//! The driver on sockets of its own, without a daemon: one node (and optionally a
//! browser, [`Engines`]) on two sockets, driven until the caller is done. Used by the
//! CLI tools (`nbdgm send`, `listen`, `message`, `browse`, `dc-ping`) when no daemon
//! runs (RFC 1002 §5.3.1 send, §5.3.3 receive).
//!
//! Its sockets ask for `IP_PKTINFO`: bound to 0.0.0.0 they receive unicast and
//! broadcast alike, and the destination address of each datagram tells them apart
//! (the node answers a unicast DIRECT_UNIQUE to a name it does not have with DATAGRAM
//! ERROR, RFC 1002 §4.4.3, a broadcast never). [`Standalone::run_with_packets`] also
//! hands the caller the packet an event followed from (`nbdgm listen` shows where it
//! was sent).
//!
//! Every packet the node sends in answer to a received one ([`Transmit::reply_to`]:
//! name-service answers, DATAGRAM ERRORs, the browser's answers) passes the reply
//! [`Gate`] the tool installs ([`Standalone::with_gate`]; `nbdgm` uses the daemon's,
//! with the `[limits]` defaults): every received packet credits its source, every answer
//! is checked (per-source rate, bytes out at most a factor × bytes in). Without a gate
//! no answer is sent. Answers refused, sent and failed are counted ([`ReplyCounts`]).
//!
//! [`Transmit::reply_to`]: nbdgm_node::Transmit::reply_to

use crate::driver::{Driver, Packet, Recv, Wake, BATCH, RECV_SLOTS};
use crate::engines::{Aside, Engines, BROWSER_ROUNDS};
use crate::sockets::Role;
use crate::sockets::{enable_pktinfo, open_shared, InterfaceSockets};
use nbdgm_browser::Browser;
use nbdgm_node::{Event, Node, NodeConfig, NodeError, SendError, SendInfo, SendRequest};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};
use tracing::debug;

/// Why a standalone node could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Node(#[from] NodeError),
}

/// What kind of answer a reply is (for the gate's counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The node's name service (query, node status, defence answers).
    Name,
    /// The node's DATAGRAM ERROR.
    DatagramError,
    /// An application's answer (the browser's GetBackupListResponse).
    Browser,
}

/// The reply gate of a standalone node: a packet sent in answer to a received one goes
/// out only when [`Gate::allow`] says so. The daemon's `ReplyGate` implements it.
pub trait Gate: Send {
    /// A packet of `len` bytes from `ip` reached the node: credit its source.
    fn credit(&mut self, ip: Ipv4Addr, len: usize, now: Instant);
    /// May an answer of `len` bytes to a request of `request_len` bytes go to `to`?
    fn allow(
        &mut self,
        kind: ReplyKind,
        to: Ipv4Addr,
        len: usize,
        request_len: usize,
        now: Instant,
    ) -> bool;
}

/// Answers (transmits marked `reply_to`) of a standalone node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCounts {
    /// Passed the gate and sent.
    pub sent: u64,
    /// Refused by the gate, or not sent because no gate is installed.
    pub refused: u64,
    /// Passed the gate, but the socket refused them (not fatal for an answer).
    pub failed: u64,
}

/// The driver on its own sockets.
pub struct Standalone {
    driver: Driver,
    /// The packet just delivered, while its events are handed out.
    current: Option<Packet>,
    /// The reply gate; `None`: no answer is sent.
    gate: Option<Box<dyn Gate>>,
    replies: ReplyCounts,
}

impl Standalone {
    /// Bind `bind`:datagram_port (0.0.0.0 receives unicast and broadcast alike) and an
    /// ephemeral name-service port (queries go out from it and answers come back to it;
    /// nobody needs to query a standalone tool), and start a node with `config`.
    pub fn open(config: NodeConfig, bind: Ipv4Addr) -> io::Result<Standalone> {
        let port = config.datagram_port;
        Self::with_ports(config, bind, port)
    }

    /// Like [`Standalone::open`], but the datagram socket is also ephemeral (no root
    /// needed): `config.datagram_port` is then only the remote port datagrams go to. For
    /// client tools whose peers answer the UDP source (`nbdgm dc-ping`; Samba nmbd
    /// replies to the request's source IP and port). Headers still carry
    /// `config.datagram_port` as SOURCE_PORT.
    pub fn open_ephemeral(config: NodeConfig, bind: Ipv4Addr) -> io::Result<Standalone> {
        Self::with_ports(config, bind, 0)
    }

    fn with_ports(config: NodeConfig, bind: Ipv4Addr, port: u16) -> io::Result<Standalone> {
        let name = open_shared(SocketAddrV4::new(bind, 0))?;
        let datagram = open_shared(SocketAddrV4::new(bind, port))?;
        enable_pktinfo(&name)?;
        enable_pktinfo(&datagram)?;
        let node = Node::new(config, Instant::now())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let sockets = InterfaceSockets {
            name,
            datagram,
            name_bcast: None,
            datagram_bcast: None,
        };
        // One socket per service on `bind` (0.0.0.0 gets both unicast and broadcast;
        // `IP_PKTINFO` tells which, `true` is the fallback when it is missing).
        Ok(Standalone {
            driver: Driver::new(Engines::new(node, None), sockets, true),
            current: None,
            gate: None,
            replies: ReplyCounts::default(),
        })
    }

    /// Install the reply gate: answers the node sends pass it (without one, none is sent).
    pub fn with_gate(mut self, gate: Box<dyn Gate>) -> Standalone {
        self.gate = Some(gate);
        self
    }

    /// Answers sent, refused by the gate (or for want of one), failed.
    pub fn replies(&self) -> ReplyCounts {
        self.replies
    }

    /// Answers not sent: refused by the gate, or no gate installed.
    pub fn replies_refused(&self) -> u64 {
        self.replies.refused
    }

    /// Pair a browser with the node: browser frames that arrive go to it, and what it
    /// wants sent goes out (`nbdgm browse`).
    pub fn with_browser(mut self, browser: Browser) -> Standalone {
        self.driver.engines.browser = Some(browser);
        self
    }

    /// The local address of the datagram socket.
    pub fn datagram_local_addr(&self) -> io::Result<SocketAddr> {
        self.driver
            .socket(nbdgm_node::Service::Datagram)
            .local_addr()
    }

    pub fn node(&mut self) -> &mut Node {
        &mut self.driver.engines.node
    }

    pub fn browser(&self) -> Option<&Browser> {
        self.driver.engines.browser.as_ref()
    }

    /// Send what the node queued; answers only through the gate, and a failed answer
    /// is counted, not fatal (its destination is whoever sent the request).
    async fn transmit(&mut self) -> io::Result<()> {
        let now = Instant::now();
        while let Some(t) = self.driver.engines.node.poll_transmit() {
            let Some(request_len) = t.reply_to else {
                self.driver.send(t.service, t.to, &t.bytes).await?;
                continue;
            };
            let kind = match (t.app_reply, t.service) {
                (true, _) => ReplyKind::Browser,
                (false, nbdgm_node::Service::Name) => ReplyKind::Name,
                (false, nbdgm_node::Service::Datagram) => ReplyKind::DatagramError,
            };
            let to = *t.to.ip();
            let allowed = self
                .gate
                .as_mut()
                .is_some_and(|g| g.allow(kind, to, t.bytes.len(), request_len, now));
            if !allowed {
                self.replies.refused += 1;
                continue;
            }
            match self.driver.send(t.service, t.to, &t.bytes).await {
                Ok(_) => self.replies.sent += 1,
                Err(e) => {
                    debug!(to = %t.to, error = %e, "answer not sent");
                    self.replies.failed += 1;
                }
            }
        }
        Ok(())
    }

    /// The browser's wishes to the node, the node's packets out, its events to the
    /// pairing and then to `on_event`; again while browser frames came in. False when
    /// `on_event` asked to stop.
    async fn flush(
        &mut self,
        on_event: &mut impl FnMut(Event, Option<Packet>) -> bool,
    ) -> io::Result<bool> {
        for _ in 0..BROWSER_ROUNDS {
            let now = Instant::now();
            let mut synced = Vec::new();
            self.driver.engines.pump_browser(now, |a| match a {
                // Without a daemon there is nobody to fetch for, nor to tell.
                Aside::FetchMasterList { .. } => {}
                // A standalone browser is passive: it pulls no lists.
                Aside::SyncList { kind, peer, .. } => synced.push((kind, peer)),
                other => debug!(?other, "browser"),
            });
            if let Some(b) = &mut self.driver.engines.browser {
                for (kind, peer) in synced {
                    b.list_sync_failed(now, kind, &peer);
                }
            }
            self.transmit().await?;
            while let Some(ev) = self.driver.engines.node.poll_event() {
                if let Some(a) = self.driver.engines.observe(Instant::now(), &ev) {
                    debug!(?a, "browser");
                }
                if !on_event(ev, self.current) {
                    self.transmit().await?;
                    return Ok(false);
                }
            }
            if !self.driver.engines.take_fed() {
                break;
            }
        }
        Ok(true)
    }

    /// Run until `on_event` returns false or `deadline` passes. Returns false on timeout.
    pub async fn run(
        &mut self,
        deadline: Option<Instant>,
        mut on_event: impl FnMut(Event) -> bool,
    ) -> io::Result<bool> {
        self.run_with_packets(deadline, |ev, _| on_event(ev)).await
    }

    /// Like [`Standalone::run`], and each event comes with the packet whose delivery
    /// raised it (`None` for events of timers and sends): its destination address and
    /// interface ([`Packet::dst`], [`Packet::ifindex`]) and whether it was a broadcast.
    pub async fn run_with_packets(
        &mut self,
        deadline: Option<Instant>,
        mut on_event: impl FnMut(Event, Option<Packet>) -> bool,
    ) -> io::Result<bool> {
        loop {
            if !self.flush(&mut on_event).await? {
                return Ok(true);
            }
            match self
                .driver
                .wait(deadline, std::future::pending::<()>())
                .await
            {
                Wake::Readable(role, r) => {
                    if r.is_ok() && !self.receive(role, &mut on_event).await? {
                        return Ok(true);
                    }
                }
                Wake::Timer | Wake::Other(()) => {
                    let now = Instant::now();
                    self.driver.engines.handle_timeout(now);
                    if deadline.is_some_and(|d| now >= d) {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Read up to [`BATCH`] packets from the socket of `role` and deliver them one by
    /// one, each followed by its events (so that they are handed out with it). False
    /// when `on_event` asked to stop.
    async fn receive(
        &mut self,
        role: Role,
        on_event: &mut impl FnMut(Event, Option<Packet>) -> bool,
    ) -> io::Result<bool> {
        let mut read = 0;
        while read < BATCH {
            // Receive errors (an ICMP port unreachable on Linux) are not fatal.
            let Ok(n) = self.driver.recv_batch(role) else {
                break;
            };
            for i in 0..n {
                if let Some(Recv::Packet(p)) = self.driver.received(i) {
                    let now = Instant::now();
                    // What this source sent is what answers to it may spend.
                    if let Some(g) = &mut self.gate {
                        g.credit(*p.from.ip(), p.len, now);
                    }
                    self.driver.deliver(now, &p);
                    self.current = Some(p);
                    let go = self.flush(on_event).await;
                    self.current = None;
                    if !go? {
                        return Ok(false);
                    }
                }
            }
            if n < RECV_SLOTS {
                break;
            }
            read += n;
        }
        Ok(true)
    }
}

/// Send one datagram from a standalone node on `bind` and wait (at most `timeout`) for
/// its outcome: `Ok(None)` when none came in time. Used by `nbdgm send` and `nbdgm
/// message send` without a daemon.
/// Answers the node sends meanwhile pass `gate` (none without).
pub fn send_once(
    config: NodeConfig,
    bind: Ipv4Addr,
    request: SendRequest,
    timeout: Duration,
    gate: Option<Box<dyn Gate>>,
) -> Result<Option<Result<SendInfo, SendError>>, StandaloneError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut node = Standalone::open(config, bind)?;
        node.gate = gate;
        let id = node.node().send(Instant::now(), request)?;
        let mut outcome = None;
        node.run(Some(Instant::now() + timeout), |ev| match ev {
            Event::SendDone { id: done, result } if done == id => {
                outcome = Some(result);
                false
            }
            _ => true,
        })
        .await?;
        Ok(outcome)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_node::{Interface, Name, SendMode};

    fn config(port: u16) -> NodeConfig {
        let mut c = NodeConfig::new(Interface::new(Ipv4Addr::LOCALHOST, 8));
        c.datagram_port = port;
        c.node_status = false;
        c.datagram_error_on_unknown = false;
        c.deliver_not_for_us = true;
        c.allow_unregistered_source = true;
        c
    }

    /// A datagram from one standalone node reaches another, mailslot parsed once.
    #[tokio::test]
    async fn one_standalone_node_hears_another() {
        let lo = Ipv4Addr::LOCALHOST;
        let mut rx = Standalone::open_ephemeral(config(0), lo).unwrap();
        let port = rx.datagram_local_addr().unwrap().port();
        let mut tx = Standalone::open_ephemeral(config(port), lo).unwrap();
        let data = nbdgm_wire::mailslot::MailslotWrite::new("\\MAILSLOT\\T", vec![1, 2, 3])
            .to_bytes()
            .unwrap();
        tx.node()
            .send(
                Instant::now(),
                SendRequest {
                    source: Name::new("A", 0).unwrap(),
                    destination: Name::new("B", 0).unwrap(),
                    mode: SendMode::UniqueAt(SocketAddrV4::new(lo, port)),
                    data,
                },
            )
            .unwrap();
        let _ = tx
            .run(Some(Instant::now() + Duration::from_millis(200)), |_| true)
            .await;
        let mut got = None;
        let done = rx
            .run(Some(Instant::now() + Duration::from_secs(5)), |ev| {
                if let Event::Delivered(d) = ev {
                    got = Some(d);
                    return false;
                }
                true
            })
            .await
            .unwrap();
        assert!(done, "nothing arrived");
        let d = got.unwrap();
        assert!(d.is_mailslot("\\mailslot\\t"));
        assert_eq!(d.mailslot_data(), Some(&[1u8, 2, 3][..]));
        assert_eq!(d.mailslot_bytes().as_deref(), Some(&[1u8, 2, 3][..]));
    }

    /// A gate that lets `allow` answers through and records the credits.
    struct TestGate {
        allow: bool,
        credited: std::sync::Arc<std::sync::Mutex<Vec<(Ipv4Addr, usize)>>>,
    }

    impl Gate for TestGate {
        fn credit(&mut self, ip: Ipv4Addr, len: usize, _: Instant) {
            self.credited.lock().unwrap().push((ip, len));
        }
        fn allow(&mut self, kind: ReplyKind, _: Ipv4Addr, _: usize, _: usize, _: Instant) -> bool {
            assert_eq!(kind, ReplyKind::DatagramError);
            self.allow
        }
    }

    /// A unicast DIRECT_UNIQUE to a name the node does not hold, from a plain socket, to
    /// a node answering with DATAGRAM ERROR; what came back (loopback delivers at once).
    async fn unicast_to_unknown(gate: Option<Box<dyn Gate>>) -> (ReplyCounts, Option<Vec<u8>>) {
        let lo = Ipv4Addr::LOCALHOST;
        let mut c = config(0);
        c.datagram_error_on_unknown = true;
        let mut rx = Standalone::open_ephemeral(c, lo).unwrap();
        if let Some(g) = gate {
            rx = rx.with_gate(g);
        }
        let port = rx.datagram_local_addr().unwrap().port();
        let tx = std::net::UdpSocket::bind((lo, 0)).unwrap();
        let src = match tx.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let dg = nbdgm_wire::datagram::Datagram::data(
            nbdgm_node::MsgType::DirectUnique,
            nbdgm_node::NodeType::B,
            7,
            (*src.ip(), src.port()),
            Name::new("A", 0).unwrap(),
            Name::new("NOBODY", 0).unwrap(),
            b"x".to_vec(),
        )
        .to_bytes()
        .unwrap();
        tx.send_to(&dg, (lo, port)).unwrap();
        let done = rx
            .run(Some(Instant::now() + Duration::from_secs(5)), |ev| {
                !matches!(ev, Event::Delivered(_))
            })
            .await
            .unwrap();
        assert!(done, "nothing arrived");
        tx.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let back = tx.recv(&mut buf).ok().map(|n| buf[..n].to_vec());
        (rx.replies(), back)
    }

    /// Without a gate the node's DATAGRAM ERROR is not sent, only counted.
    #[tokio::test]
    async fn without_a_gate_no_answer_is_sent() {
        let (counts, back) = unicast_to_unknown(None).await;
        assert_eq!(back, None);
        assert_eq!(
            counts,
            ReplyCounts {
                sent: 0,
                refused: 1,
                failed: 0
            }
        );
    }

    /// With a gate: the source is credited with the packet's size, and the answer goes
    /// out when the gate allows it, not when it refuses.
    #[tokio::test]
    async fn the_gate_decides_and_is_credited() {
        let credited = std::sync::Arc::default();
        let gate = TestGate {
            allow: true,
            credited: std::sync::Arc::clone(&credited),
        };
        let (counts, back) = unicast_to_unknown(Some(Box::new(gate))).await;
        let back = back.expect("no DATAGRAM ERROR");
        assert_eq!((back[0], back[10]), (0x13, 0x82));
        assert_eq!((counts.sent, counts.refused), (1, 0));
        let credits = credited.lock().unwrap().clone();
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].0, Ipv4Addr::LOCALHOST);
        assert!(credits[0].1 > 60, "{credits:?}");

        let gate = TestGate {
            allow: false,
            credited: std::sync::Arc::default(),
        };
        let (counts, back) = unicast_to_unknown(Some(Box::new(gate))).await;
        assert_eq!(back, None);
        assert_eq!((counts.sent, counts.refused), (0, 1));
    }
}
