//! The packets the benchmarks send, built with `nbdgm_wire`.

use nbdgm_wire::browser::{Announcement, BrowserFrame};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, DatagramHeader, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::nbns::{self, NbnsHeader, Packet, Rcode, TYPE_NB, TYPE_NBSTAT};
use nbdgm_wire::Name;
use std::net::SocketAddrV4;

/// A DIRECT_GROUP datagram from `from` (header SOURCE_IP/PORT = the UDP source) to
/// `workgroup<00>` carrying a HostAnnouncement mailslot write to `\MAILSLOT\BROWSE`
/// (server BENCHSRC, comment "file server").
pub fn host_announcement(from: SocketAddrV4, workgroup: &str, id: u16) -> anyhow::Result<Vec<u8>> {
    let smb = host_announcement_mailslot()?;
    Ok(Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        id,
        (*from.ip(), from.port()),
        Name::new("BENCHSRC", 0)?,
        Name::new(workgroup, 0)?,
        smb,
    )
    .to_bytes()?)
}

/// Length of the mailslot write (SMB header to end) inside [`host_announcement`].
pub fn host_announcement_mailslot_len() -> anyhow::Result<usize> {
    Ok(host_announcement_mailslot()?.len())
}

/// The mailslot write inside [`host_announcement`]: a HostAnnouncement from server
/// BENCHSRC (comment "file server") to `\MAILSLOT\BROWSE`.
fn host_announcement_mailslot() -> anyhow::Result<Vec<u8>> {
    let frame = BrowserFrame::HostAnnouncement(Announcement {
        periodicity_ms: 720_000,
        server_name: "BENCHSRC".into(),
        os_major: 6,
        os_minor: 1,
        server_type: 0x0001_1003,
        comment: "file server".into(),
        ..Default::default()
    });
    Ok(MailslotWrite::new(BROWSE, frame.to_bytes()?).to_bytes()?)
}

/// A first fragment (F = 1, M = 1) of a DIRECT_GROUP datagram whose DGM_LENGTH announces
/// `total` data-section bytes, with `chunk` bytes of user data. It never completes.
pub fn first_fragment(
    from: SocketAddrV4,
    workgroup: &str,
    id: u16,
    chunk: usize,
    total: u16,
) -> anyhow::Result<Vec<u8>> {
    let d: Datagram = Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more: true,
            first: true,
            node_type: NodeType::B,
            reserved: 0,
        },
        id,
        source_ip: *from.ip(),
        source_port: from.port(),
        body: Body::Data {
            length: Some(total),
            offset: 0,
            body: DataBody::Names {
                source_name: Name::new("FLOODER", 0)?,
                destination_name: Name::new(workgroup, 0)?,
                user_data: vec![0x5a; chunk],
            },
        },
    };
    Ok(d.to_bytes()?)
}

/// A unicast NAME QUERY REQUEST (RD set, B clear) for `name` (`NAME<xx>`).
pub fn name_query(name: &str, id: u16) -> anyhow::Result<Vec<u8>> {
    question(name, TYPE_NB, id)
}

/// A NODE STATUS REQUEST for `*<00>` (as `nmblookup -A` sends it).
pub fn node_status(id: u16) -> anyhow::Result<Vec<u8>> {
    question("*<00>", TYPE_NBSTAT, id)
}

fn question(name: &str, qtype: u16, id: u16) -> anyhow::Result<Vec<u8>> {
    let name: Name = name
        .parse()
        .map_err(|e| anyhow::anyhow!("name {name:?}: {e}"))?;
    let flags = if qtype == TYPE_NB { nbns::FLAG_RD } else { 0 };
    Ok(Packet::request(id, flags, name, qtype).to_bytes()?)
}

/// Rewrite the NAME_TRN_ID of a name-service packet in place (nothing if it is shorter
/// than the header).
pub fn set_trn_id(pkt: &mut [u8], id: u16) {
    if let Ok(mut h) = NbnsHeader::new_checked(pkt) {
        h.set_trn_id(id);
    }
}

/// Rewrite the DGM_ID of a datagram in place (nothing if it is shorter than its header).
pub fn set_dgm_id(pkt: &mut [u8], id: u16) {
    if let Ok(mut h) = DatagramHeader::new_checked(pkt) {
        h.set_dgm_id(id);
    }
}

/// NAME_TRN_ID of a response, if it is a positive response (R set, RCODE 0) with an answer.
pub fn positive_response_id(buf: &[u8]) -> Option<u16> {
    let h = NbnsHeader::new_checked(buf).ok()?;
    (h.is_response() && h.rcode() == Rcode::Ok && h.ancount() > 0).then(|| h.trn_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn packets_parse_back() {
        let from = SocketAddrV4::new(Ipv4Addr::new(127, 0, 77, 1), 40000);
        let d = Datagram::parse(&host_announcement(from, "BENCHWG", 7).unwrap()).unwrap();
        assert_eq!(d.msg_type, MsgType::DirectGroup);
        let f = Datagram::parse(&first_fragment(from, "BENCHWG", 9, 400, 1200).unwrap()).unwrap();
        assert!(f.flags.first && f.flags.more);
        let mut q = name_query("SAMBAA<00>", 1).unwrap();
        set_trn_id(&mut q, 0x4242);
        let p = Packet::parse(&q).unwrap();
        assert_eq!(p.id, 0x4242);
        assert_eq!(p.kind(), "NAME QUERY REQUEST");
        let s = Packet::parse(&node_status(3).unwrap()).unwrap();
        assert_eq!(s.kind(), "NODE STATUS REQUEST");
    }

    #[test]
    fn ids_are_rewritten_and_read_through_the_header_views() {
        let from = SocketAddrV4::new(Ipv4Addr::new(127, 0, 77, 1), 40000);
        let mut a = host_announcement(from, "BENCHWG", 7).unwrap();
        set_dgm_id(&mut a, 0xBEEF);
        assert_eq!(Datagram::parse(&a).unwrap().id, 0xBEEF);
        set_dgm_id(&mut a[..3], 1); // too short: left alone
                                    // A request is not a response; a positive answer with one record is.
        let q = name_query("SAMBAA<00>", 0x1234).unwrap();
        assert_eq!(positive_response_id(&q), None);
        let mut r = Packet::parse(&q).unwrap();
        r.flags = nbns::FLAG_RESPONSE | nbns::FLAG_AA;
        r.answers.push(nbns::Record {
            name: r.questions[0].name.clone(),
            rr_type: TYPE_NB,
            rr_class: nbns::CLASS_IN,
            ttl: 60,
            rdata: nbns::RData::Nb(vec![]),
        });
        r.questions.clear();
        let ok = r.to_bytes().unwrap();
        assert_eq!(positive_response_id(&ok), Some(0x1234));
        r.flags |= 3; // NAM_ERR
        assert_eq!(positive_response_id(&r.to_bytes().unwrap()), None);
        assert_eq!(positive_response_id(&ok[..11]), None);
    }
}
