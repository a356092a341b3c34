//! Standalone name-service queries from an ephemeral port, like `nmblookup`:
//! NAME QUERY (RFC 1002 §4.2.12, §5.1.1) and NODE STATUS (RFC 1002 §4.2.17–4.2.18).
//!
//! Every answer within the wait is collected (a broadcast query can have several
//! responders, and Samba answers broadcasts twice), matched on NAME_TRN_ID.

use nbdgm_wire::nbns::{self, Packet, RData, FLAG_B, FLAG_RD, TYPE_NB, TYPE_NBSTAT};
use nbdgm_wire::Name;
use serde::Serialize;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Where a query goes.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub broadcast: bool,
}

/// One response, with the address it came from.
#[derive(Debug, Clone)]
pub struct Answer {
    pub from: SocketAddrV4,
    pub packet: Packet,
}

/// Send `packet` up to `tries` times (`interval` apart, stopping after the first answer
/// unless `collect_all`) and gather responses with its id until `wait` after the last try.
pub fn exchange(
    packet: &Packet,
    target: Target,
    bind: SocketAddrV4,
    tries: u32,
    interval: Duration,
    collect_all: bool,
) -> io::Result<Vec<Answer>> {
    let sock = UdpSocket::bind(bind)?;
    sock.set_broadcast(true)?;
    let bytes = packet
        .to_bytes()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let to = SocketAddr::V4(SocketAddrV4::new(target.ip, target.port));
    let mut answers: Vec<Answer> = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..tries.max(1) {
        sock.send_to(&bytes, to)?;
        let until = Instant::now() + interval;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv_from(&mut buf) {
                Ok((n, SocketAddr::V4(from))) => {
                    let Ok(p) = nbns::Packet::parse(buf.get(..n).unwrap_or_default()) else {
                        continue;
                    };
                    if p.id != packet.id || !p.is_response() {
                        continue;
                    }
                    // Samba answers broadcasts twice (SAMBA-LAB G2): keep one per responder.
                    if !answers.iter().any(|a| a.from == from && a.packet == p) {
                        answers.push(Answer { from, packet: p });
                    }
                }
                Ok(_) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        if !answers.is_empty() && !collect_all {
            break;
        }
    }
    Ok(answers)
}

fn transaction_id() -> u16 {
    (nbdgm_base::random::os_u32() & 0x7fff) as u16 | 1
}

/// A NAME QUERY REQUEST (flags 0x0110 broadcast, 0x0100 unicast).
pub fn name_query(name: &Name, broadcast: bool) -> Packet {
    let flags = FLAG_RD | if broadcast { FLAG_B } else { 0 };
    Packet::request(transaction_id(), flags, name.clone(), TYPE_NB)
}

/// A NODE STATUS REQUEST for `name` (usually `*`).
pub fn status_query(name: &Name) -> Packet {
    Packet::request(transaction_id(), 0, name.clone(), TYPE_NBSTAT)
}

/// One address of a positive name query response.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Address {
    pub address: Ipv4Addr,
    pub group: bool,
    pub node_type: &'static str,
    /// Who answered.
    pub from: String,
}

/// Addresses from the positive answers; negative answers (RCODE ≠ 0) give none.
pub fn addresses(answers: &[Answer]) -> Vec<Address> {
    let mut out = Vec::new();
    for a in answers {
        if a.packet.rcode() != 0 {
            continue;
        }
        for rr in &a.packet.answers {
            if let RData::Nb(entries) = &rr.rdata {
                for e in entries {
                    out.push(Address {
                        address: e.ip,
                        group: e.is_group(),
                        node_type: nbns::ont_name(e.flags),
                        from: a.from.to_string(),
                    });
                }
            }
        }
    }
    out
}

/// The negative answers' RCODE names (e.g. NAM_ERR), for the message when nothing was found.
pub fn negatives(answers: &[Answer]) -> Vec<String> {
    answers
        .iter()
        .filter(|a| a.packet.rcode() != 0)
        .map(|a| format!("{} from {}", nbns::rcode_name(a.packet.rcode()), a.from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::nbns::{NbAddress, Record as Rr, CLASS_IN};

    #[test]
    fn query_flags() {
        let n: Name = "FRED<00>".parse().unwrap();
        assert_eq!(name_query(&n, true).flags, 0x0110);
        assert_eq!(name_query(&n, false).flags, 0x0100);
        assert_eq!(
            status_query(&Name::wildcard()).questions[0].qtype,
            TYPE_NBSTAT
        );
    }

    #[test]
    fn exchange_on_loopback_collects_matching_answers_only() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let n: Name = "FRED<00>".parse().unwrap();
        let q = name_query(&n, false);
        let id = q.id;
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 600];
            let (len, from) = server.recv_from(&mut buf).unwrap();
            let req = Packet::parse(&buf[..len]).unwrap();
            let mut resp = Packet {
                id: req.id.wrapping_add(1), // wrong id: ignored
                flags: 0x8580,
                questions: vec![],
                answers: vec![Rr {
                    name: req.questions[0].name.clone(),
                    rr_type: TYPE_NB,
                    rr_class: CLASS_IN,
                    ttl: 0,
                    rdata: RData::Nb(vec![NbAddress {
                        flags: 0,
                        ip: Ipv4Addr::new(198, 51, 100, 10),
                    }]),
                }],
                authority: vec![],
                additional: vec![],
                trailing: vec![],
            };
            server.send_to(&resp.to_bytes().unwrap(), from).unwrap();
            server.send_to(b"garbage", from).unwrap();
            resp.id = req.id;
            server.send_to(&resp.to_bytes().unwrap(), from).unwrap();
            server.send_to(&resp.to_bytes().unwrap(), from).unwrap(); // duplicate
        });
        let answers = exchange(
            &q,
            Target {
                ip: Ipv4Addr::LOCALHOST,
                port,
                broadcast: false,
            },
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            1,
            Duration::from_millis(300),
            true,
        )
        .unwrap();
        t.join().unwrap();
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].packet.id, id);
        let a = addresses(&answers);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].address, Ipv4Addr::new(198, 51, 100, 10));
        assert!(!a[0].group);
    }
}
