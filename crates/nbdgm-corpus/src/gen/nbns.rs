//! Name-service packets a datagram node meets (RFC 1002 §4.2).

use super::{Gen, Host, SUFFIXES};
use crate::Generated;
use nbdgm_wire::name::Name;
use nbdgm_wire::nbns::{
    NbAddress, NodeName, NodeStatus, Packet, Question, RData, Record, Statistics, CLASS_IN,
    TYPE_NB, TYPE_NBSTAT, TYPE_NULL,
};
use std::net::{Ipv4Addr, SocketAddrV4};

impl Gen {
    // -----------------------------------------------------------------------------------------
    // Name service (RFC 1002 §4.2)

    pub(super) fn nbns_name(&mut self) -> Name {
        let h = self.host();
        let (n, s) = match self.rng.below(6) {
            0 => (h.group, *self.rng.pick(&[0x00, 0x1B, 0x1C, 0x1D, 0x1E])),
            _ => (h.name, *self.rng.pick(SUFFIXES)),
        };
        self.nbt_name(n, s)
    }

    pub(super) fn nb_flags(&mut self) -> u16 {
        let mut f = *self
            .rng
            .pick(&[0x0000, 0x2000, 0x4000, 0x6000, 0x8000, 0xE000]);
        if self.mixed() && self.rng.pct(5) {
            f |= self.rng.u16() & 0x1FFF;
        }
        f
    }

    pub(super) fn nb_record(&mut self, name: Name, ttl: u32, addrs: usize) -> Record {
        let mut list = Vec::with_capacity(addrs);
        for _ in 0..addrs {
            let ip = self.host().ip;
            list.push(NbAddress {
                flags: self.nb_flags(),
                ip,
            });
        }
        Record {
            name,
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl,
            rdata: RData::Nb(list),
        }
    }

    pub(super) fn ttl(&mut self) -> u32 {
        *self
            .rng
            .pick(&[300_000, 0, 259_200, 3600, 1, 0xFFFF_FFFF, 0x7FFF_FFFF])
    }

    pub(super) fn nbns_packet(
        &mut self,
        kind: &'static str,
        p: &Packet,
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Vec<Generated> {
        vec![Generated {
            src,
            dst,
            payload: p.to_bytes().expect("generated NBNS packet emits"),
            kind,
        }]
    }

    /// (requester's address, broadcast?) for a request from `h` to port 137.
    pub(super) fn nbns_request_ends(
        &mut self,
        h: &Host,
        bcast: bool,
    ) -> (SocketAddrV4, SocketAddrV4) {
        let port = if self.rng.pct(70) {
            137
        } else {
            self.ephemeral_port()
        };
        let dst_ip = if bcast {
            h.bcast
        } else {
            self.other_host(h).ip
        };
        (
            SocketAddrV4::new(h.ip, port),
            SocketAddrV4::new(dst_ip, 137),
        )
    }

    pub(super) fn nbns_response_ends(&mut self, responder: &Host) -> (SocketAddrV4, SocketAddrV4) {
        let to = self.other_host(responder);
        let port = if self.rng.pct(70) {
            137
        } else {
            self.ephemeral_port()
        };
        (
            SocketAddrV4::new(responder.ip, 137),
            SocketAddrV4::new(to.ip, port),
        )
    }

    pub(super) fn question(&mut self, name: Name, qtype: u16) -> Question {
        Question {
            name,
            qtype,
            qclass: CLASS_IN,
        }
    }

    pub(super) fn packet(&mut self, flags: u16) -> Packet {
        Packet {
            id: self.next_trn_id(),
            flags,
            questions: Vec::new(),
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            trailing: Vec::new(),
        }
    }

    pub(super) fn nbns_query_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let bcast = self.rng.pct(70);
        let mut flags = if bcast { 0x0110 } else { 0x0100 };
        if self.mixed() && self.rng.pct(10) {
            flags &= !0x0100; // RD clear
        }
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        p.questions.push(self.question(name, TYPE_NB));
        let (src, dst) = self.nbns_request_ends(&h, bcast);
        self.nbns_packet("nbns.query_request", &p, src, dst)
    }

    pub(super) fn nbns_positive_query_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let flags = *self.rng.pick(&[0x8500, 0x8580, 0x8400, 0x8780]);
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        let n = if self.rng.pct(80) {
            1
        } else {
            self.rng.range(2, 6) as usize
        };
        let ttl = self.ttl();
        if self.mixed() && self.rng.pct(8) {
            // The question echoed, DNS-style; the answer's name becomes the pointer C0 0C.
            p.questions.push(self.question(name.clone(), TYPE_NB));
        }
        let rec = self.nb_record(name, ttl, n);
        p.answers.push(rec);
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.positive_query_response", &p, src, dst)
    }

    pub(super) fn nbns_negative_query_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let rcode = *self.rng.pick(&[3, 3, 3, 1, 2, 5]);
        let flags = *self.rng.pick(&[0x8580u16, 0x8500]) | rcode;
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        let rr_type = if self.rng.pct(80) { TYPE_NULL } else { TYPE_NB };
        p.answers.push(Record {
            name,
            rr_type,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Raw(Vec::new()),
        });
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.negative_query_response", &p, src, dst)
    }

    /// A request with the question and one additional NB record whose name is the
    /// pointer C0 0C (RFC 1002 §4.2.2).
    pub(super) fn nbns_name_request(
        &mut self,
        kind: &'static str,
        flags_bcast: u16,
        flags_unicast: u16,
        ttl: u32,
    ) -> Vec<Generated> {
        let h = self.host();
        let bcast = self.rng.pct(60);
        let mut p = self.packet(if bcast { flags_bcast } else { flags_unicast });
        let name = self.nbns_name();
        p.questions.push(self.question(name.clone(), TYPE_NB));
        let mut rec = self.nb_record(name, ttl, 1);
        if let RData::Nb(a) = &mut rec.rdata {
            a[0].ip = h.ip;
        }
        p.additional.push(rec);
        let (src, dst) = self.nbns_request_ends(&h, bcast);
        self.nbns_packet(kind, &p, src, dst)
    }

    pub(super) fn nbns_registration_request(&mut self) -> Vec<Generated> {
        let ttl = if self.rng.pct(70) { 300_000 } else { 0 };
        match self.rng.below(8) {
            // NAME OVERWRITE REQUEST & DEMAND: RD clear (RFC 1002 §4.2.3).
            0 => self.nbns_name_request("nbns.overwrite_demand", 0x2810, 0x2800, ttl),
            // Microsoft multi-homed registration, opcode 15 (MS-NBTE §2.2.2).
            1 => self.nbns_name_request("nbns.multihomed_registration", 0x7910, 0x7900, ttl),
            _ => self.nbns_name_request("nbns.registration_request", 0x2910, 0x2900, ttl),
        }
    }

    pub(super) fn nbns_release(&mut self) -> Vec<Generated> {
        if self.rng.pct(70) {
            return self.nbns_name_request("nbns.release_request", 0x3010, 0x3000, 0);
        }
        let h = self.host();
        let rcode = *self.rng.pick(&[0, 0, 3, 5, 6]);
        let mut p = self.packet(0xB400 | rcode);
        let name = self.nbns_name();
        let rec = self.nb_record(name, 0, 1);
        p.answers.push(rec);
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.release_response", &p, src, dst)
    }

    pub(super) fn nbns_refresh(&mut self) -> Vec<Generated> {
        // Opcode 8, and 9 as the RFC 1002 §4.2.4 picture shows it.
        if self.rng.pct(60) {
            self.nbns_name_request("nbns.refresh_request", 0x4010, 0x4000, 300_000)
        } else {
            self.nbns_name_request("nbns.refresh_request", 0x4810, 0x4800, 300_000)
        }
    }

    pub(super) fn nbns_registration_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let (flags, kind) = if self.rng.pct(35) {
            (0xAD00, "nbns.positive_registration_response")
        } else {
            let rcode = *self.rng.pick(&[6, 6, 6, 1, 2, 4, 5]);
            (0xAD80 | rcode, "nbns.negative_registration_response")
        };
        let mut p = self.packet(flags);
        let name = self.nbns_name();
        let ttl = if flags == 0xAD00 { 300_000 } else { 0 };
        let mut rec = self.nb_record(name, ttl, 1);
        if let RData::Nb(a) = &mut rec.rdata {
            a[0].ip = h.ip;
        }
        p.answers.push(rec);
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet(kind, &p, src, dst)
    }

    /// NAME CONFLICT DEMAND (RFC 1002 §4.2.8): RCODE CFT_ERR, TTL 0, ONT only, 0.0.0.0.
    pub(super) fn nbns_conflict_demand(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut p = self.packet(0xAD87);
        let name = self.nbns_name();
        let ont = *self.rng.pick(&[0x0000, 0x2000, 0x4000, 0x6000]);
        p.answers.push(Record {
            name,
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::Nb(vec![NbAddress {
                flags: ont,
                ip: Ipv4Addr::UNSPECIFIED,
            }]),
        });
        let to = self.other_host(&h);
        let src = SocketAddrV4::new(h.ip, 137);
        let dst = SocketAddrV4::new(to.ip, 137);
        self.nbns_packet("nbns.conflict_demand", &p, src, dst)
    }

    /// WAIT FOR ACKNOWLEDGEMENT (RFC 1002 §4.2.16): RR type NB (Samba 4) or NULL (Samba 3),
    /// RDATA the request's flags word.
    pub(super) fn nbns_wack(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut p = self.packet(0xBC00);
        let name = self.nbns_name();
        let rr_type = if self.rng.pct(60) { TYPE_NB } else { TYPE_NULL };
        let req = *self.rng.pick(&[0x2900u16, 0x2910, 0x3000, 0x4000, 0x7900]);
        p.answers.push(Record {
            name,
            rr_type,
            rr_class: CLASS_IN,
            ttl: self.rng.range(1, 120) as u32,
            rdata: RData::Wack(req),
        });
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.wack", &p, src, dst)
    }

    pub(super) fn nbns_node_status_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let bcast = self.rng.pct(15);
        let mut p = self.packet(if bcast { 0x0010 } else { 0x0000 });
        let name = if self.rng.pct(60) {
            self.scoped(Name::wildcard())
        } else {
            self.nbns_name()
        };
        p.questions.push(self.question(name, TYPE_NBSTAT));
        let port = self.ephemeral_port();
        let to = if bcast {
            h.bcast
        } else {
            self.other_host(&h).ip
        };
        let src = SocketAddrV4::new(h.ip, if self.rng.pct(50) { 137 } else { port });
        let dst = SocketAddrV4::new(to, 137);
        self.nbns_packet("nbns.node_status_request", &p, src, dst)
    }

    pub(super) fn name_flags(&mut self, group: bool) -> u16 {
        let mut f = 0x0400; // ACT
        if group {
            f |= 0x8000;
        }
        f |= *self.rng.pick(&[0x0000, 0x2000, 0x4000, 0x6000]);
        if self.rng.pct(10) {
            f |= 0x1000; // DRG
        }
        if self.rng.pct(10) {
            f |= 0x0800; // CNF
        }
        if self.rng.pct(10) {
            f |= 0x0200; // PRM
        }
        if self.mixed() && self.rng.pct(5) {
            f ^= 0x0400;
        }
        if self.mixed() && self.rng.pct(5) {
            f |= self.rng.u16() & 0x01FF;
        }
        f
    }

    pub(super) fn statistics(&mut self) -> Statistics {
        let mut s = Statistics::default();
        if self.rng.pct(30) {
            return s; // Samba zeros everything
        }
        let mac = self.rng.bytes(6);
        s.unit_id.copy_from_slice(&mac);
        s.jumpers = self.rng.u8();
        s.test_result = self.rng.u8();
        s.version_number = self.rng.u16();
        s.period_of_statistics = self.rng.u16();
        s.number_of_crcs = self.rng.u16();
        s.number_alignment_errors = self.rng.u16();
        s.number_of_collisions = self.rng.u16();
        s.number_send_aborts = self.rng.u16();
        s.number_good_sends = self.rng.u32();
        s.number_good_receives = self.rng.u32();
        s.number_retransmits = self.rng.u16();
        s.number_no_resource_conditions = self.rng.u16();
        s.number_free_command_blocks = self.rng.u16();
        s.total_number_command_blocks = self.rng.u16();
        s.max_total_number_command_blocks = self.rng.u16();
        s.number_pending_sessions = self.rng.u16();
        s.max_number_pending_sessions = self.rng.u16();
        s.max_total_sessions_possible = self.rng.u16();
        s.session_data_packet_size = self.rng.u16();
        s
    }

    pub(super) fn nbns_node_status_response(&mut self) -> Vec<Generated> {
        let h = self.host();
        let flags = *self.rng.pick(&[0x8400, 0x8400, 0x8500, 0x8480]);
        let mut p = self.packet(flags);
        let n = match self.rng.below(10) {
            0 => 0,
            1..=7 => self.rng.range(1, 8) as usize,
            _ => self.rng.range(9, 24) as usize,
        };
        let mut names = Vec::with_capacity(n);
        for i in 0..n {
            let (name, group) = match (i, self.rng.below(10)) {
                (0, _) => (self.name(h.name, 0x00), false),
                (_, 0) => (Name::msbrowse(), true),
                (_, 1) => (self.name(h.group, 0x1E), true),
                (_, 2) => (self.name(h.group, 0x00), true),
                (_, 3) if self.mixed() => {
                    let mut raw = *b"NP\x01\x02name\x7f\xff      ";
                    if self.rng.pct(40) {
                        // Nothing printable: 60 characters as <xx>.
                        for (i, b) in raw.iter_mut().enumerate() {
                            *b = 0x80 + i as u8;
                        }
                    }
                    raw[15] = self.rng.u8();
                    (Name::from_raw(raw), false)
                }
                _ => {
                    let s = *self.rng.pick(SUFFIXES);
                    (self.name(h.name, s), false)
                }
            };
            let flags = self.name_flags(group);
            names.push(NodeName { name, flags });
        }
        let question_name = if self.rng.pct(50) {
            Name::wildcard()
        } else {
            self.name(h.name, 0x00)
        };
        let question_name = self.scoped(question_name);
        p.answers.push(Record {
            name: question_name,
            rr_type: TYPE_NBSTAT,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::NodeStatus(NodeStatus {
                names,
                statistics: Some(self.statistics()),
                extra: Vec::new(),
            }),
        });
        let (src, dst) = self.nbns_response_ends(&h);
        self.nbns_packet("nbns.node_status_response", &p, src, dst)
    }

    pub(super) fn nbns_unknown_opcode(&mut self) -> Vec<Generated> {
        let h = self.host();
        let op = *self.rng.pick(&[1u16, 2, 3, 4, 10, 11, 12, 13, 14]);
        let mut p = self.packet(op << 11);
        let name = self.nbns_name();
        p.questions.push(self.question(name, TYPE_NB));
        let (src, dst) = self.nbns_request_ends(&h, false);
        self.nbns_packet("nbns.unknown_opcode", &p, src, dst)
    }
}
