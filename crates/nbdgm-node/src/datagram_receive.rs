//! Receiving datagrams on any node (RFC 1002 §5.3.3; RFC 1001 §17.1–17.2; DIGEST §2.9,
//! §3.3, §8): parse, source-IP policy, reassembly, delivery, DATAGRAM ERROR for a
//! unicast DIRECT_UNIQUE to a name we do not hold. Fragments in either layout (RFC
//! 1001 §17.1.2, or names repeated in every fragment; DIGEST §2.4) are told apart in
//! [`crate::reassembly`].

use crate::config::{Service, SourceIpPolicy};
use crate::event::{Delivery, DropReason, Event, FragmentLayout};
use crate::node::{Incoming, Node};
use crate::reassembly::{Complete, Fragment};
use bytes::Bytes;
use nbdgm_wire::datagram::{
    Body, DataBody, Datagram, Flags, MsgType, Warning, ERR_DESTINATION_NAME_NOT_PRESENT,
};
use nbdgm_wire::Name;
use std::net::SocketAddrV4;
use std::time::Instant;

impl Node {
    pub(crate) fn handle_datagram(&mut self, now: Instant, inc: Incoming<'_>) {
        self.stats.datagram_packets_received += 1;
        let mut warnings = Vec::new();
        let dg = match Datagram::parse_ref(inc.bytes, &mut warnings) {
            Ok(d) => d,
            Err(_) => {
                self.drop_packet(DropReason::MalformedDatagram, inc.from);
                return;
            }
        };
        if warnings
            .iter()
            .any(|w| matches!(w, Warning::LengthMismatch { .. }))
        {
            self.stats.dgm_length_mismatches += 1;
        }
        let header = SocketAddrV4::new(dg.source_ip, dg.source_port);
        match dg.msg_type {
            MsgType::Error => {
                // The name service gave us a wrong address: forget it (RFC 1002 §5.3.3).
                self.stats.datagram_errors_received += 1;
                self.stats.cache_flushes += self.cache.flush_ip(*inc.from.ip());
                self.stats.cache_entries = self.cache.len() as u64;
                return;
            }
            MsgType::PositiveQueryResponse | MsgType::NegativeQueryResponse => {
                // The NBDD's answer to our DATAGRAM QUERY REQUEST (DIGEST §3.3 item 6).
                self.nbdd_response(inc, &dg);
                return;
            }
            MsgType::QueryRequest => {
                self.drop_packet(DropReason::NbddQuery, inc.from);
                return;
            }
            MsgType::DirectUnique | MsgType::DirectGroup | MsgType::Broadcast => {}
        }
        if header.ip() != inc.from.ip() {
            self.stats.source_ip_mismatches += 1;
            match self.config.source_ip_policy {
                SourceIpPolicy::Accept => {}
                SourceIpPolicy::Log => self.push_event(Event::SourceIpMismatch {
                    from: inc.from,
                    header,
                }),
                SourceIpPolicy::Drop => {
                    self.drop_packet(DropReason::SourceIpMismatch, inc.from);
                    return;
                }
            }
        }
        let Body::Data {
            length,
            offset,
            body,
        } = dg.body
        else {
            self.drop_packet(DropReason::MalformedDatagram, inc.from);
            return;
        };
        let Flags { first, more, .. } = dg.flags;
        if first && !more {
            if let DataBody::Names {
                source_name,
                destination_name,
                user_data,
            } = body
            {
                self.deliver(
                    inc,
                    Complete {
                        from: inc.from,
                        header_source: header,
                        msg_type: dg.msg_type,
                        source: source_name,
                        destination: destination_name,
                        data: user_data.to_vec(),
                        fragments: 1,
                        layout: FragmentLayout::Unfragmented,
                    },
                    dg.id,
                );
            }
            return;
        }
        let id = (dg.msg_type, dg.id);
        // The codec leaves `length` as None when DGM_LENGTH equals this packet's data
        // section: a per-fragment length, as senders repeating the names write it.
        let per_fragment_length = length.is_none();
        self.fragment(
            now,
            inc,
            header,
            id,
            (offset, per_fragment_length),
            more,
            &body,
        );
    }

    /// One fragment of a datagram (RFC 1001 §17.1.2): to reassembly; delivered when the
    /// set is complete.
    #[allow(clippy::too_many_arguments)]
    fn fragment(
        &mut self,
        now: Instant,
        inc: Incoming<'_>,
        header: SocketAddrV4,
        (msg_type, dgm_id): (MsgType, u16),
        (offset, per_fragment_length): (u16, bool),
        more: bool,
        body: &DataBody<&[u8]>,
    ) {
        self.stats.fragments_received += 1;
        let mut drops = Vec::new();
        let fragment = match body {
            DataBody::Names {
                source_name,
                destination_name,
                user_data,
            } => Fragment::First {
                source: source_name,
                destination: destination_name,
                names_len: source_name.encoded_len() + destination_name.encoded_len(),
                data: user_data,
                per_fragment_length,
            },
            DataBody::Continuation { data } => {
                continuation(usize::from(offset), data, !more, per_fragment_length)
            }
        };
        let complete = self.reassembly.insert(
            now,
            &self.config.reassembly,
            self.config.fragment_timeout,
            inc.from,
            header,
            msg_type,
            dgm_id,
            fragment,
            &mut drops,
        );
        self.report_drops(drops);
        if let Some(c) = complete {
            self.stats.datagrams_reassembled += 1;
            if c.layout == FragmentLayout::RepeatedNames {
                self.stats.datagrams_reassembled_repeated_names += 1;
            }
            self.deliver(inc, c, dgm_id);
        }
    }

    /// True when `dest` is ours: an active name, or `*` in our scope for BROADCAST.
    fn is_for_us(&self, msg_type: MsgType, dest: &Name) -> bool {
        self.names.active(dest).is_some()
            || (msg_type == MsgType::Broadcast
                && dest.is_wildcard()
                && dest.scope() == self.config.scope)
    }

    fn deliver(&mut self, inc: Incoming<'_>, c: Complete, dgm_id: u16) {
        let for_us = self.is_for_us(c.msg_type, &c.destination);
        if !for_us {
            self.stats.datagrams_not_for_us += 1;
            // Only a DIRECT_UNIQUE that reached us by unicast gets an error, and it goes
            // to the UDP source, never to the header's SOURCE_IP (DIGEST §3.3, §8.5).
            // A passive name (listened for, not held) counts as known here only.
            if c.msg_type == MsgType::DirectUnique
                && !inc.broadcast
                && self.config.datagram_error_on_unknown
                && !self.config.passive_names.contains(&c.destination)
            {
                self.datagram_error(inc, dgm_id);
            }
            if !self.config.deliver_not_for_us {
                self.drop_packet(DropReason::NotOwned, inc.from);
                return;
            }
        }
        // The one parse of the SMB header: consumers slice the mailslot data.
        let (mailslot, mailslot_data) = Delivery::parse_mailslot(&c.data);
        self.stats.datagrams_delivered += 1;
        self.push_event(Event::Delivered(Delivery {
            from: c.from,
            header_source: c.header_source,
            msg_type: c.msg_type,
            source: c.source,
            destination: c.destination,
            broadcast: inc.broadcast,
            for_us,
            fragments: c.fragments,
            fragment_layout: c.layout,
            data: Bytes::from(c.data),
            mailslot,
            mailslot_data,
            local_copy: None,
        }));
    }

    /// DATAGRAM ERROR 0x82, F = M = 0, our IP and port, DGM_ID echoed (RFC 1002 §4.4.3).
    fn datagram_error(&mut self, inc: Incoming<'_>, dgm_id: u16) {
        let d: Datagram = Datagram {
            msg_type: MsgType::Error,
            flags: Flags {
                more: false,
                first: false,
                node_type: self.config.node_type,
                reserved: 0,
            },
            id: dgm_id,
            source_ip: self.announced_addr(),
            source_port: self.config.datagram_port,
            body: Body::Error {
                code: ERR_DESTINATION_NAME_NOT_PRESENT,
            },
        };
        if let Ok(bytes) = d.to_bytes() {
            self.stats.datagram_errors_sent += 1;
            self.reply(inc.from, Service::Datagram, bytes, inc.bytes.len());
        }
    }
}

/// A later fragment (F = 0). With a per-fragment DGM_LENGTH and two names at the start
/// of its data it may carry repeated names; the first fragment decides.
fn continuation(offset: usize, data: &[u8], last: bool, per_fragment_length: bool) -> Fragment<'_> {
    let names = per_fragment_length
        .then(|| {
            let (s, p) = Name::parse(data, 0).ok()?;
            let (d, p) = Name::parse(data, p).ok()?;
            Some((s, d, p))
        })
        .flatten();
    match names {
        Some((s, d, names_len)) => Fragment::Ambiguous {
            packet_offset: offset,
            section: data,
            names: (s, d),
            names_len,
            last,
        },
        None => Fragment::Next {
            offset,
            data,
            last,
            layout: FragmentLayout::Rfc,
        },
    }
}
