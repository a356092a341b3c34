//! Sending datagrams as a B-node (RFC 1002 §5.3.1; RFC 1001 §17.2; DIGEST §3.1):
//! unique names are resolved (cache or broadcast query) and get DIRECT_UNIQUE by
//! unicast; group names and NetBIOS broadcasts go to the broadcast address.

use crate::config::Service;
use crate::error::{NodeError, SendError};
use crate::event::{Delivery, Event, NameAddress, RequestId, SendInfo};
use crate::fragment::{self, FragmentError, Outgoing};
use crate::node::{Node, SendMode, SendRequest, Transmit};
use crate::transaction::{PendingSend, Waiter};
use nbdgm_wire::datagram::MsgType;
use nbdgm_wire::Name;
use std::net::SocketAddrV4;
use std::time::Instant;

impl Node {
    /// Send a datagram. Errors that can be known at once are returned; the outcome
    /// comes as [`Event::SendDone`].
    pub fn send(&mut self, now: Instant, req: SendRequest) -> Result<RequestId, NodeError> {
        self.touch(now);
        let source = self.scoped(&req.source)?;
        let destination = match req.mode {
            SendMode::Broadcast => self.scoped(&Name::wildcard())?,
            _ => self.scoped(&req.destination)?,
        };
        if !self.config.allow_unregistered_source && self.names.active(&source).is_none() {
            return Err(NodeError::SourceNotRegistered(source.to_string()));
        }
        let max = fragment::max_user_data(&source, &destination);
        if req.data.len() > max {
            return Err(NodeError::DataTooLarge {
                len: req.data.len(),
                max,
            });
        }
        let id = self.next_request_id();
        let pending = PendingSend {
            id,
            source,
            destination,
            data: req.data,
        };
        match req.mode {
            SendMode::Broadcast | SendMode::Group => {
                let msg_type = if req.mode == SendMode::Broadcast {
                    MsgType::Broadcast
                } else {
                    MsgType::DirectGroup
                };
                match self.config.nbdd_addr() {
                    // P/M (and H with an NBDD): through the NBDD (RFC 1002 §5.3.2).
                    Some(nbdd) => self.nbdd_send(pending, msg_type, nbdd),
                    None => {
                        self.local_copy(&pending, msg_type);
                        self.send_now(pending, msg_type, None)
                    }
                }
            }
            SendMode::UniqueAt(to) => self.send_now(pending, MsgType::DirectUnique, Some(to)),
            SendMode::GroupAt(to) => self.send_now(pending, MsgType::DirectGroup, Some(to)),
            SendMode::Unique => {
                let dest = pending.destination.clone();
                if self.names.active(&dest).is_some_and(|r| !r.group) {
                    self.deliver_locally(pending);
                    return Ok(id);
                }
                match self.resolve_locally(now, &dest) {
                    Some(Ok(addrs)) => self.send_resolved(pending, &addrs),
                    Some(Err(e)) => {
                        self.stats.sends_failed += 1;
                        self.push_event(Event::SendDone {
                            id,
                            result: Err(SendError::Unresolved(e)),
                        });
                    }
                    None => self.resolve(now, dest, Waiter::Send(pending))?,
                }
            }
        }
        Ok(id)
    }

    /// Send a datagram that answers a received one of `request_len` bytes (an
    /// application's reply, e.g. the browser's GetBackupListResponse): its packets are
    /// marked with [`Transmit::reply_to`] and [`Transmit::app_reply`] for the runtime's
    /// reply gate. Only addressed modes (`UniqueAt`, `GroupAt`) can be replies; other
    /// modes are refused.
    pub fn send_reply(
        &mut self,
        now: Instant,
        req: SendRequest,
        request_len: usize,
    ) -> Result<RequestId, NodeError> {
        if !matches!(req.mode, SendMode::UniqueAt(_) | SendMode::GroupAt(_)) {
            return Err(NodeError::InvalidConfig(
                "a reply goes to an address (UniqueAt or GroupAt)".into(),
            ));
        }
        let before = self.transmits.len();
        let id = self.send(now, req)?;
        for t in self.transmits.iter_mut().skip(before) {
            t.reply_to = Some(request_len);
            t.app_reply = true;
        }
        Ok(id)
    }

    /// A group datagram to a group name we hold, or a NetBIOS broadcast, sent by
    /// broadcast: our user gets a copy now, as Windows and Samba deliver to the other
    /// local users of the name, since the copy that loops back from the network is
    /// dropped as our own packet ([`crate::DropReason::OwnPacket`]). The copy carries
    /// [`Delivery::local_copy`]. Not through an NBDD, which forwards to the members.
    fn local_copy(&mut self, p: &PendingSend, msg_type: MsgType) {
        let held = msg_type == MsgType::Broadcast
            || self.names.active(&p.destination).is_some_and(|r| r.group);
        if !held {
            return;
        }
        let me = SocketAddrV4::new(self.addr(), self.config.datagram_port);
        let (mailslot, mailslot_data) = Delivery::parse_mailslot(&p.data);
        self.stats.datagrams_delivered += 1;
        self.stats.datagrams_delivered_locally += 1;
        self.push_event(Event::Delivered(Delivery {
            from: me,
            header_source: me,
            msg_type,
            source: p.source.clone(),
            destination: p.destination.clone(),
            broadcast: true,
            for_us: true,
            fragments: 1,
            fragment_layout: crate::event::FragmentLayout::Unfragmented,
            data: bytes::Bytes::from(p.data.clone()),
            mailslot,
            mailslot_data,
            local_copy: Some(p.id),
        }));
    }

    /// A unique name of our own: hand the datagram straight to our user.
    fn deliver_locally(&mut self, p: PendingSend) {
        let me = SocketAddrV4::new(self.addr(), self.config.datagram_port);
        let (mailslot, mailslot_data) = Delivery::parse_mailslot(&p.data);
        self.stats.datagrams_sent += 1;
        self.stats.datagrams_delivered += 1;
        self.stats.datagrams_delivered_locally += 1;
        self.push_event(Event::Delivered(Delivery {
            from: me,
            header_source: me,
            msg_type: MsgType::DirectUnique,
            source: p.source,
            destination: p.destination,
            broadcast: false,
            for_us: true,
            fragments: 1,
            fragment_layout: crate::event::FragmentLayout::Unfragmented,
            data: bytes::Bytes::from(p.data),
            mailslot,
            mailslot_data,
            local_copy: None,
        }));
        self.push_event(Event::SendDone {
            id: p.id,
            result: Ok(SendInfo {
                to: me,
                fragments: 1,
            }),
        });
    }

    /// Send after resolution: unicast DIRECT_UNIQUE to the first unique owner, or
    /// DIRECT_GROUP to the broadcast address when the name is a group.
    pub(crate) fn send_resolved(&mut self, p: PendingSend, addrs: &[NameAddress]) {
        if self.take_fanout(&p) {
            // Refused by the NBDD; resolved for the unicast-to-members alternative.
            return self.nbdd_fanout(p, addrs);
        }
        match addrs.iter().find(|a| !a.group) {
            Some(a) => {
                let to = SocketAddrV4::new(a.addr, self.config.datagram_port);
                self.send_now(p, MsgType::DirectUnique, Some(to))
            }
            None => match self.config.nbdd_addr() {
                Some(nbdd) => self.nbdd_send(p, MsgType::DirectGroup, nbdd),
                None => self.send_now(p, MsgType::DirectGroup, None),
            },
        }
    }

    /// Build, fragment and queue; then report [`Event::SendDone`].
    pub(crate) fn send_now(&mut self, p: PendingSend, msg_type: MsgType, to: Option<SocketAddrV4>) {
        let result = self.transmit_datagram(&p, msg_type, to);
        if result.is_err() {
            self.stats.sends_failed += 1;
        }
        self.push_event(Event::SendDone { id: p.id, result });
    }

    pub(crate) fn transmit_datagram(
        &mut self,
        p: &PendingSend,
        msg_type: MsgType,
        to: Option<SocketAddrV4>,
    ) -> Result<SendInfo, SendError> {
        let dgm_id = self.alloc_dgm_id();
        let out = Outgoing {
            msg_type,
            node_type: self.config.node_type,
            id: dgm_id,
            source: (self.announced_addr(), self.config.datagram_port),
            source_name: &p.source,
            destination_name: &p.destination,
            data: &p.data,
        };
        let packets =
            fragment::build(&out, self.config.max_datagram_length).map_err(|e| match e {
                FragmentError::TooLarge { len, max } => {
                    SendError::Encode(format!("{len} bytes of user data, at most {max}"))
                }
                FragmentError::NamesDoNotFit => {
                    SendError::Encode("max_datagram_length too small for the names".into())
                }
                FragmentError::Encode(s) => SendError::Encode(s),
            })?;
        if !self.transmit_room(packets.len()) {
            self.stats.transmits_dropped += packets.len() as u64;
            return Err(SendError::QueueFull);
        }
        let (dest, broadcast) = match to {
            Some(to) => (
                to,
                to.ip().is_broadcast() || *to.ip() == self.config.interface.broadcast(),
            ),
            None => (self.broadcast_to(Service::Datagram), true),
        };
        let fragments = packets.len();
        for bytes in packets {
            self.push_transmit(Transmit {
                to: dest,
                service: Service::Datagram,
                bytes,
                broadcast,
                reply_to: None,
                app_reply: false,
            });
        }
        self.stats.datagrams_sent += 1;
        if fragments > 1 {
            self.stats.fragments_sent += fragments as u64;
        }
        Ok(SendInfo {
            to: dest,
            fragments,
        })
    }
}
