//! Attack: predictable transaction ids (issue 12 item 9). An off-path host that can
//! predict the NAME_TRN_ID of the daemon's next NAME QUERY can race the real answer
//! with a forged one and poison the name cache. The daemon resolves names by unicast
//! through the API at a "server" socket of the test, which records every id and
//! answers; the ids must not be predictable from the previous ones, and a forged
//! positive answer with the right id from an address we did not ask is not accepted.

use crate::common::*;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 41, d)
}

fn answer(id: u16, question: &[u8], at: Ipv4Addr) -> Vec<u8> {
    // POSITIVE NAME QUERY RESPONSE: the question's name, TTL 300, one NB address.
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[0x85, 0x80, 0, 0, 0, 1, 0, 0, 0, 0]);
    v.extend_from_slice(&question[12..question.len() - 4]);
    v.extend_from_slice(&[0, 0x20, 0, 1, 0, 0, 1, 0x2C, 0, 6, 0, 0]);
    v.extend_from_slice(&at.octets());
    v
}

/// Read one NAME QUERY at `server`; answer it positively with `at` unless `forge`
/// first sends the forged answer. Returns the id.
fn serve_one(server: &UdpSocket) -> Option<(u16, Vec<u8>, SocketAddrV4)> {
    let mut buf = [0u8; 1024];
    let (n, from) = server.recv_from(&mut buf).ok()?;
    let std::net::SocketAddr::V4(from) = from else {
        return None;
    };
    let q = buf[..n].to_vec();
    (n >= 50 && q[2] & 0x80 == 0).then(|| (u16::from_be_bytes([q[0], q[1]]), q, from))
}

#[test]
fn query_ids_are_unpredictable_and_forged_answers_refused() {
    let s = Scratch::new("hostile-txid");
    let ports = ports();
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0,
        "txid",
        "TXIDNODE",
        ip(1),
        ports,
        "[browser]\nlisten = false\n",
    ));
    d.wait_names(&["TXIDNODE<00>"]);
    let server = UdpSocket::bind((ip(9), ports.0)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    // 24 lookups of distinct names; the test's server answers each.
    let mut ids = Vec::new();
    for k in 0..24 {
        let name = format!("TXNAME{k:02}<00>");
        let sock = d.socket.clone();
        let t = std::thread::spawn(move || {
            let mut c = nbdgm_client::Client::connect(&sock).unwrap();
            c.set_timeout(Duration::from_secs(10)).unwrap();
            c.lookup(&name, Some(IpAddr::V4(ip(9))))
        });
        let (id, q, from) = serve_one(&server).expect("the daemon's NAME QUERY");
        server.send_to(&answer(id, &q, ip(200)), from).unwrap();
        t.join().unwrap().expect("lookup answered");
        ids.push(id);
    }
    let diffs: Vec<u16> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    println!("NAME_TRN_IDs: {ids:04x?}\ndifferences: {diffs:?}");
    let distinct: HashSet<u16> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "ids repeat: {ids:?}");
    let small = diffs
        .iter()
        .filter(|&&d| d <= 16 || d >= u16::MAX - 16)
        .count();
    assert!(
        small <= 2,
        "{small} ids follow the previous one closely: {ids:?}"
    );
    let first = diffs[0];
    assert!(
        !diffs.iter().all(|&d| d == first),
        "constant step {first}: predictable"
    );
    let spread = ids.iter().max().unwrap() - ids.iter().min().unwrap();
    assert!(
        spread > 0x4000,
        "ids within {spread} of each other: {ids:?}"
    );
    let slices: HashSet<u16> = ids.iter().map(|i| i >> 12).collect();
    assert!(slices.len() >= 6, "ids in {} of 16 slices", slices.len());

    // Forgery: even with the right id and the right name, an answer from an address
    // we did not ask is dropped and counted; the real answer wins.
    let before = counter(&d.stats(), "node.dropped.answer_wrong_source");
    let sock = d.socket.clone();
    let t = std::thread::spawn(move || {
        let mut c = nbdgm_client::Client::connect(&sock).unwrap();
        c.set_timeout(Duration::from_secs(10)).unwrap();
        c.lookup("POISONME<00>", Some(IpAddr::V4(ip(9))))
    });
    let (id, q, from) = serve_one(&server).expect("the daemon's NAME QUERY");
    let forger = UdpSocket::bind((ip(66), ports.0)).unwrap();
    forger.send_to(&answer(id, &q, ip(66)), from).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.send_to(&answer(id, &q, ip(201)), from).unwrap();
    let r = t.join().unwrap().expect("lookup answered");
    let got: Vec<String> = r.addresses.iter().map(|a| a.address.to_string()).collect();
    assert_eq!(got, vec![ip(201).to_string()], "the forged answer won");
    let after = counter(&d.stats(), "node.dropped.answer_wrong_source");
    assert_eq!(after, before + 1, "the forged answer is counted");
}
