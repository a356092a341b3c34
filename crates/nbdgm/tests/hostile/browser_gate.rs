//! The browser's GetBackupListResponse through the reply gate, at the daemon level
//! (issue 12 item 2; MS-BRWS §3.3.5.8). The engine marks the answer with its
//! request's size; the gate must refuse it when it is larger than
//! `[limits] reply_amplification` × the request, and count it under
//! `reply_gate.refused.amplification.browser`. The answer lists at least our own name,
//! so it is always a few bytes longer than a plain request: factor 1 forces the case
//! (the default 4 is never exceeded now that only confirmed backups are listed). A
//! padded request of the same kind, longer than its answer, still gets through: the
//! gate judges sizes, it does not silence the browser.

use crate::common::*;
use nbdgm_wire::browser::{BrowserFrame, GetBackupListRequest};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 44, d)
}

/// A GetBackupListRequest to TESTGROUP<1D> from `src`, with `pad` trailing bytes.
fn backup_list_request(src: SocketAddrV4, token: u32, pad: usize) -> Vec<u8> {
    let f = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 255,
        token,
        trailing: vec![0x20; pad],
    });
    Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more: false,
            first: true,
            node_type: NodeType::B,
            reserved: 0,
        },
        id: 0x6161,
        source_ip: *src.ip(),
        source_port: src.port(),
        body: Body::Data {
            length: None,
            offset: 0,
            body: DataBody::Names {
                source_name: Name::new("VICTIM", 0).unwrap(),
                destination_name: Name::new("TESTGROUP", 0x1D).unwrap(),
                user_data: MailslotWrite::new(BROWSE, f.to_bytes().unwrap())
                    .to_bytes()
                    .unwrap(),
            },
        },
    }
    .to_bytes()
    .unwrap()
}

/// Send each request (100 ms apart) from `sock` and count what arrives back.
fn attack(sock: &UdpSocket, to: SocketAddrV4, reqs: &[Vec<u8>]) -> (u64, u64, u64) {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (mut sent, mut got, mut pkts) = (0u64, 0u64, 0u64);
    let mut buf = vec![0u8; 65_536];
    for r in reqs {
        sent += sock.send_to(r, to).unwrap() as u64;
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                got += n as u64;
                pkts += 1;
            }
        }
    }
    let until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < until {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            got += n as u64;
            pkts += 1;
        }
    }
    (sent, got, pkts)
}

#[test]
fn a_backup_list_answer_above_the_factor_is_refused_and_counted() {
    let s = Scratch::new("hostile-browser-gate");
    let ports = ports();
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "brgate",
        "BRGATE",
        ip(1),
        ports,
        "[browser]\nannounce = true\nlocal_master = true\nos_level = 60\n\
         preferred_master = true\n\n[limits]\nreply_amplification = 1\n",
    ));
    d.wait_names(&["BRGATE<00>"]);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = d.client().browse(None).expect("browse");
        if r.interfaces[0].role == "master" {
            break;
        }
        assert!(
            Instant::now() < until,
            "not master: {r:?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let dgm = SocketAddrV4::new(ip(1), ports.1);
    let victim = UdpSocket::bind((ip(10), 0)).unwrap();
    let me = match victim.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let before = d.stats();

    // 1. Plain requests: each answer ("BRGATE" listed) is longer than its request.
    let reqs: Vec<Vec<u8>> = (0..5).map(|t| backup_list_request(me, t, 0)).collect();
    let (sent, got, pkts) = attack(&victim, dgm, &reqs);
    let st = d.stats();
    let delta = |p: &str| counter(&st, p) - counter(&before, p);
    println!("plain: {sent} bytes in, {got} bytes out ({pkts} packets)");
    assert_eq!(
        delta("browser.backup_list_requests_answered"),
        5,
        "the engine answered: {st}"
    );
    assert_eq!((got, pkts), (0, 0), "nothing reached the victim: {st}");
    assert_eq!(
        delta("reply_gate.refused.amplification.browser"),
        5,
        "refused by the amplification rule and counted: {st}"
    );
    assert_eq!(delta("reply_gate.passed.browser"), 0);

    // 2. Padded requests (longer than their answers) pass the same gate.
    let reqs: Vec<Vec<u8>> = (10..15).map(|t| backup_list_request(me, t, 64)).collect();
    let (sent, got, pkts) = attack(&victim, dgm, &reqs);
    let st2 = d.stats();
    println!("padded: {sent} bytes in, {got} bytes out ({pkts} packets)");
    assert_eq!(pkts, 5, "padded requests answered: {st2}");
    assert!(got <= sent, "{got} bytes out for {sent} in at factor 1");
    assert_eq!(
        counter(&st2, "reply_gate.passed.browser") - counter(&st, "reply_gate.passed.browser"),
        5
    );
    assert_eq!(
        counter(&st2, "reply_gate.refused.amplification.browser"),
        counter(&st, "reply_gate.refused.amplification.browser")
    );
}
