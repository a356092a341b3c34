//! The NBNS role's group answers under the reply gate (issue 12 item 2; RFC 1002
//! §4.2.13). The gate refuses any answer above `[limits] reply_amplification` × its
//! request; the NBNS role is fed that factor and cuts a big group's answer to what
//! fits (a round-robin window, no TC), so a 40-member `DOMAIN<1C>` still gets an
//! answer instead of silence, and every member is listed in turn.

use crate::common::*;
use nbdgm_wire::nbns::{NbAddress, Packet, Question, RData, Record, CLASS_IN, TYPE_NB};
use nbdgm_wire::Name;
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// The default `[limits] reply_amplification`.
const FACTOR: usize = 4;
const MEMBERS: u8 = 40;

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 43, d)
}

fn group_registration(id: u16, name: &Name, at: Ipv4Addr) -> Vec<u8> {
    Packet {
        id,
        flags: 0x2900, // opcode 5, RD
        questions: vec![Question {
            name: name.clone(),
            qtype: TYPE_NB,
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![Record {
            name: name.clone(),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 300_000,
            rdata: RData::Nb(vec![NbAddress {
                flags: 0xE000, // G, ONT = H
                ip: at,
            }]),
        }],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

/// Send `req` from `sock` and wait (bounded) for the answer with `id`; `None` when
/// nothing comes (the gate refused it).
fn ask(sock: &UdpSocket, to: SocketAddrV4, id: u16, req: &[u8]) -> Option<(usize, Packet)> {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    sock.send_to(req, to).unwrap();
    let mut buf = [0u8; 1500];
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if let Ok(p) = Packet::parse(&buf[..n]) {
                if p.is_response() && p.id == id {
                    return Some((n, p));
                }
            }
        }
    }
    None
}

#[test]
fn a_40_member_group_gets_an_answer_within_the_factor() {
    let s = Scratch::new("hostile-nbns-answers");
    let ports = ports();
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "nbnsans",
        "NBNSANS",
        ip(1),
        ports,
        "[node]\nrole = [\"nbns\"]\n\n[nbns_server]\nmax_group_members = 50\n",
    ));
    d.wait_names(&["NBNSANS<00>"]);
    let nbns = SocketAddrV4::new(ip(1), ports.0);
    let group: Name = "DOMAIN<1C>".parse().unwrap();

    // 40 domain controllers, each registering from its own address.
    let mut members = HashSet::new();
    for k in 0..MEMBERS {
        let at = ip(100 + k);
        let sock = UdpSocket::bind((at, 0)).unwrap();
        let id = 0x100 + u16::from(k);
        let (_, p) = (0..5)
            .find_map(|_| ask(&sock, nbns, id, &group_registration(id, &group, at)))
            .unwrap_or_else(|| panic!("no registration answer for {at}\n{}", d.log_text()));
        assert_eq!(p.flags, 0xAD80, "member {at} granted");
        members.insert(at);
    }

    // A client asks 10 times; every answer arrives, fits the factor and is a window.
    let client = UdpSocket::bind((ip(10), 0)).unwrap();
    let mut listed = HashSet::new();
    let mut answers = 0;
    for id in 0..10u16 {
        let req = Packet::request(id, 0x0100, group.clone(), TYPE_NB)
            .to_bytes()
            .unwrap();
        let Some((len, p)) = ask(&client, nbns, id, &req) else {
            continue;
        };
        answers += 1;
        assert!(
            len <= FACTOR * req.len(),
            "{len} bytes for a {}-byte query",
            req.len()
        );
        assert_eq!(p.flags & 0x0200, 0, "no TC: the list fits one datagram");
        let ips: Vec<Ipv4Addr> = match p.answers.first().map(|r| &r.rdata) {
            Some(RData::Nb(v)) => v.iter().map(|a| a.ip).collect(),
            other => panic!("not a positive answer: {other:?}"),
        };
        // 12 + 34 + 10 + 6 × 24 = 200 = 4 × 50.
        assert_eq!(ips.len(), 24, "as many members as fit");
        assert!(ips.iter().all(|a| members.contains(a)));
        listed.extend(ips);
    }
    let st = d.stats();
    assert_eq!(answers, 10, "every query answered: {st}");
    assert_eq!(listed, members, "every member listed in turn");
    assert!(counter(&st, "roles.nbns.answers_truncated") >= 10, "{st}");
    assert_eq!(counter(&st, "roles.nbns.answers_tc"), 0);
    assert_eq!(
        counter(&st, "reply_gate.refused.amplification.nbns"),
        0,
        "{st}"
    );
    assert!(counter(&st, "reply_gate.passed.nbns") >= 50, "{st}");
}
