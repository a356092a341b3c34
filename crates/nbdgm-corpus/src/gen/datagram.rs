//! Datagrams (RFC 1002 §4.4): header and data-datagram builders, fragments
//! (RFC 1001 §17.1.2), DATAGRAM ERROR and the datagram-query packets.

use super::{Gen, Host};
use crate::Generated;
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::name::Name;
use std::net::{Ipv4Addr, SocketAddrV4};

impl Gen {
    // -----------------------------------------------------------------------------------------
    // Datagrams

    pub(super) fn node_type(&mut self) -> NodeType {
        match self.rng.below(10) {
            0..=3 => NodeType::B,
            4 => NodeType::P,
            5..=6 => NodeType::M,
            _ => NodeType::H,
        }
    }

    /// The FLAGS of an unfragmented datagram; in the Mixed corpus sometimes with reserved bits.
    pub(super) fn single_flags(&mut self) -> Flags {
        let mut f = Flags::single(self.node_type());
        if self.mixed() && self.rng.pct(4) {
            f.reserved = 1 + self.rng.below(15) as u8;
        }
        f
    }

    /// UDP source and the header's SOURCE_IP/SOURCE_PORT for a datagram from `from`.
    pub(super) fn dgm_source(&mut self, from: &Host) -> (SocketAddrV4, Ipv4Addr, u16) {
        let mut port = 138;
        if self.rng.pct(6) {
            port = self.ephemeral_port();
        }
        let udp = SocketAddrV4::new(from.ip, port);
        let mut hdr_ip = from.ip;
        let mut hdr_port = port;
        if self.mixed() {
            if self.rng.pct(3) {
                hdr_ip = self.host().ip; // relayed, or a sender that lies
            }
            if self.rng.pct(3) {
                hdr_port = 0; // macOS senders
            }
        }
        (udp, hdr_ip, hdr_port)
    }

    /// A data datagram (0x10–0x12) carrying `user_data`, to `to` (None: the broadcast address).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn data_datagram(
        &mut self,
        kind: &'static str,
        from: &Host,
        msg_type: MsgType,
        source_name: Name,
        destination_name: Name,
        user_data: Vec<u8>,
        to: Option<Ipv4Addr>,
    ) -> Generated {
        let (src, source_ip, source_port) = self.dgm_source(from);
        let mut msg_type = msg_type;
        if self.mixed() && self.rng.pct(8) {
            msg_type = *self.rng.pick(&[
                MsgType::DirectUnique,
                MsgType::DirectGroup,
                MsgType::Broadcast,
            ]);
        }
        let section = source_name.encoded_len() + destination_name.encoded_len() + user_data.len();
        let mut length = None;
        let mut offset = 0;
        if self.mixed() && self.rng.pct(5) {
            let s = section as u16;
            let random = self.rng.u16();
            let wrong = *self.rng.pick(&[
                s.wrapping_add(1),
                s.wrapping_sub(1),
                s.wrapping_add(14),
                0,
                0xFFFF,
                random,
            ]);
            if wrong != s {
                length = Some(wrong);
            }
        }
        if self.mixed() && self.rng.pct(2) {
            offset = self.rng.u16();
        }
        let d = Datagram {
            msg_type,
            flags: self.single_flags(),
            id: self.next_dgm_id(),
            source_ip,
            source_port,
            body: Body::Data {
                length,
                offset,
                body: DataBody::Names {
                    source_name,
                    destination_name,
                    user_data,
                },
            },
        };
        let dst = match to {
            Some(ip) => SocketAddrV4::new(ip, 138),
            None if self.mixed() && self.rng.pct(5) => SocketAddrV4::new(Ipv4Addr::BROADCAST, 138),
            None => SocketAddrV4::new(from.bcast, 138),
        };
        Generated {
            src,
            dst,
            payload: d.to_bytes().expect("generated datagram emits"),
            kind,
        }
    }

    /// A mailslot write of `data` on `slot`, with the odd values MS-MAIL allows in Mixed.
    pub(super) fn mailslot(&mut self, slot: &str, data: Vec<u8>) -> Vec<u8> {
        let mut w = MailslotWrite::new(slot, data);
        if self.mixed() {
            if self.rng.pct(25) {
                w = w.aligned();
            }
            w.priority = match self.rng.below(10) {
                0..=3 => 0,
                4..=6 => 1,
                7 => self.rng.range(2, 9) as u16,
                8 => self.rng.u16(),
                _ => 9,
            };
            w.class = match self.rng.below(20) {
                0..=15 => 2,
                16..=17 => 1,
                18 => 0,
                _ => self.rng.range(3, 0xFFFF) as u16,
            };
            w.timeout = match self.rng.below(4) {
                0 => 0,
                1 => 1000,
                2 => self.rng.u32(),
                _ => 0xFFFF_FFFF,
            };
            if self.rng.pct(15) {
                // A Windows client application (MS-MAIL §4 example).
                w.header.flags = 0x18;
                w.header.flags2 = 0x0004;
                w.header.pid_low = 0xFEFF;
                w.max_parameter_count = 2;
                w.transaction_flags = 2;
                w.parameter_offset = w.data_offset() as u16;
            }
        } else {
            w.priority = *self.rng.pick(&[0, 1]);
            w.timeout = *self.rng.pick(&[0, 1000]);
        }
        w.to_bytes().expect("generated mailslot write emits")
    }

    pub(super) fn browse(&mut self, frame: &BrowserFrame) -> Vec<u8> {
        let data = frame.to_bytes().expect("generated browser frame emits");
        // Mailslot names compare case-insensitively (MS-MAIL 3.2.5.1).
        let slot = if self.mixed() && self.rng.pct(3) {
            "\\mailslot\\Browse"
        } else {
            mailslot::BROWSE
        };
        self.mailslot(slot, data)
    }

    pub(super) fn group_dgm(
        &mut self,
        kind: &'static str,
        from: &Host,
        dst_suffix: u8,
        user_data: Vec<u8>,
    ) -> Generated {
        let src = self.nbt_name(from.name, 0x00);
        let dst = self.nbt_name(from.group, dst_suffix);
        self.data_datagram(kind, from, MsgType::DirectGroup, src, dst, user_data, None)
    }

    pub(super) fn unique_dgm(
        &mut self,
        kind: &'static str,
        from: &Host,
        to: &Host,
        dst_suffix: u8,
        user_data: Vec<u8>,
    ) -> Generated {
        let src = self.nbt_name(from.name, 0x00);
        let dst = self.nbt_name(to.name, dst_suffix);
        self.data_datagram(
            kind,
            from,
            MsgType::DirectUnique,
            src,
            dst,
            user_data,
            Some(to.ip),
        )
    }

    /// One datagram split into 2 or 3 fragments (RFC 1001 §17.1.2): names first, every
    /// fragment with the full header, the same DGM_ID and DGM_LENGTH (the total), and
    /// PACKET_OFFSET counting data-section bytes already sent.
    pub(super) fn fragments(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let src_name = self.nbt_name(from.name, 0x00);
        let dst_name = self.nbt_name(to.name, 0x00);
        let n = self.rng.range(300, 900) as usize;
        let payload = self.rng.bytes(n);
        let user_data = MailslotWrite::new("\\MAILSLOT\\BIG\\DATA", payload)
            .to_bytes()
            .expect("mailslot write emits");
        let names_len = src_name.encoded_len() + dst_name.encoded_len();
        let total = names_len + user_data.len();
        let mut section = Vec::with_capacity(total);
        src_name.emit(&mut section);
        dst_name.emit(&mut section);
        section.extend_from_slice(&user_data);
        let parts = if self.rng.pct(50) { 2 } else { 3 };
        // Cut points inside the user data.
        let first_end = names_len + self.rng.range(1, (user_data.len() / parts) as u64) as usize;
        let mut cuts = vec![0, first_end];
        if parts == 3 {
            let mid = first_end + self.rng.range(1, ((total - first_end) / 2) as u64) as usize;
            cuts.push(mid);
        }
        cuts.push(total);
        let id = self.next_dgm_id();
        let (src, source_ip, source_port) = self.dgm_source(&from);
        let node_type = self.node_type();
        let mut out = Vec::new();
        for i in 0..parts {
            let (a, b) = (cuts[i], cuts[i + 1]);
            let first = i == 0;
            let more = i + 1 < parts;
            let body = if first {
                DataBody::Names {
                    source_name: src_name.clone(),
                    destination_name: dst_name.clone(),
                    user_data: user_data[..b - names_len].to_vec(),
                }
            } else {
                DataBody::Continuation {
                    data: section[a..b].to_vec(),
                }
            };
            let d = Datagram {
                msg_type: MsgType::DirectUnique,
                flags: Flags {
                    more,
                    first,
                    node_type,
                    reserved: 0,
                },
                id,
                source_ip,
                source_port,
                body: Body::Data {
                    length: Some(total as u16),
                    offset: a as u16,
                    body,
                },
            };
            let kind = match (first, more) {
                (true, _) => "dgm.fragment_first",
                (false, true) => "dgm.fragment_middle",
                (false, false) => "dgm.fragment_last",
            };
            out.push(Generated {
                src,
                dst: SocketAddrV4::new(to.ip, 138),
                payload: d.to_bytes().expect("fragment emits"),
                kind,
            });
        }
        out
    }

    /// Any FLAGS byte: the RFC gives no rule for ERROR and QUERY packets.
    pub(super) fn any_flags(&mut self) -> Flags {
        let mut b = self.rng.u8();
        if !self.rng.pct(10) {
            b &= 0x0F;
        }
        Flags::from_byte(b)
    }

    pub(super) fn dgm_error(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let code = if self.rng.pct(75) {
            *self.rng.pick(&[0x82, 0x83, 0x84])
        } else {
            *self.rng.pick(&[0x00, 0x01, 0x80, 0x81, 0x85, 0x90, 0xFF])
        };
        let mut flags = self.any_flags();
        if self.rng.pct(50) {
            // RFC 1002 §5.3.3: F and M cleared.
            flags.first = false;
            flags.more = false;
        }
        let (src, source_ip, source_port) = self.dgm_source(&from);
        let d: Datagram = Datagram {
            msg_type: MsgType::Error,
            flags,
            id: self.rng.u16(),
            source_ip,
            source_port,
            body: Body::Error { code },
        };
        vec![Generated {
            src,
            dst: SocketAddrV4::new(to.ip, 138),
            payload: d.to_bytes().expect("error datagram emits"),
            kind: "dgm.error",
        }]
    }

    pub(super) fn dgm_query(&mut self) -> Vec<Generated> {
        let node = self.host();
        let nbdd = self.other_host(&node);
        let (msg_type, kind, from, to) = match self.rng.below(3) {
            0 => (
                MsgType::QueryRequest,
                "dgm.query_request",
                node.clone(),
                nbdd.clone(),
            ),
            1 => (
                MsgType::PositiveQueryResponse,
                "dgm.positive_query_response",
                nbdd.clone(),
                node.clone(),
            ),
            _ => (
                MsgType::NegativeQueryResponse,
                "dgm.negative_query_response",
                nbdd.clone(),
                node.clone(),
            ),
        };
        let suffix = *self.rng.pick(&[0x00, 0x1E, 0x1C, 0x20, 0x1D]);
        let destination_name = self.nbt_name(node.group, suffix);
        let (src, source_ip, source_port) = self.dgm_source(&from);
        let d: Datagram = Datagram {
            msg_type,
            flags: self.any_flags(),
            id: self.next_dgm_id(),
            source_ip,
            source_port,
            body: Body::Query { destination_name },
        };
        vec![Generated {
            src,
            dst: SocketAddrV4::new(to.ip, 138),
            payload: d.to_bytes().expect("query datagram emits"),
            kind,
        }]
    }
}
