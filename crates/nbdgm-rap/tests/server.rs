//! The RAP responder (`nbdgm_rap::server`): fuzzed (never panics, bounded output), our own
//! client against it over loopback TCP, and Samba's `smbclient -L` against it (SAMBA-LAB
//! G9: NT1, no SPNEGO; smbclient 4.17 lists workgroups only over port 139, so that test
//! binds 127.0.77.1:139 and needs root).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_rap::server::{
    ListEntry, ListSnapshot, ServerConfig, Session, Step, MAX_REPLY, MAX_REQUEST,
};
use nbdgm_rap::{nbss, net_server_enum2_port, smb, Options, SV_TYPE_ALL, SV_TYPE_DOMAIN_ENUM};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

fn cfg() -> ServerConfig {
    ServerConfig {
        server_name: "RAPSRV".into(),
        workgroup: "TESTGROUP".into(),
        challenge: *b"\x11\x22\x33\x44\x55\x66\x77\x88",
    }
}

fn entry(name: &str, wg: &str, ty: u32, comment: &str) -> ListEntry {
    ListEntry {
        name: name.into(),
        workgroup: wg.into(),
        os_major: 6,
        os_minor: 1,
        server_type: ty,
        comment: comment.into(),
        local: true,
    }
}

/// `n` extra servers named SRV0000.. with 40-byte comments, plus RAPSRV itself.
fn list(n: usize) -> ListSnapshot {
    let mut servers = vec![entry("RAPSRV", "TESTGROUP", 0x0004_9003, "the responder")];
    for i in 0..n {
        servers.push(entry(
            &format!("SRV{i:04}"),
            "TESTGROUP",
            0x0000_1003,
            &format!("server number {i:04} {}", "c".repeat(20)),
        ));
    }
    ListSnapshot {
        servers,
        workgroups: vec![
            entry("TESTGROUP", "", 0x8000_1000, "RAPSRV"),
            entry("OTHERGROUP", "", 0x8000_1000, "OTHERMASTER"),
        ],
    }
}

/// Serve one connection with a [`Session`] (blocking, like the daemon's driver in
/// spirit: bounded packets, a deadline).
fn serve_one(mut s: TcpStream, snapshot: &ListSnapshot) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut session = Session::new(cfg());
    loop {
        let mut h = [0u8; 4];
        if s.read_exact(&mut h).is_err() {
            return;
        }
        let Ok((kind, len)) = nbss::parse_header(&h) else {
            return;
        };
        if len > MAX_REQUEST {
            return;
        }
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let out = match session.handle(kind, &body) {
            Step::Nothing => continue,
            Step::Send(b) => b,
            Step::Enum(req) => session.answer(&req, snapshot),
            Step::Close(b) => {
                let _ = s.write_all(&b);
                return;
            }
        };
        assert!(out.len() <= MAX_REPLY);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// A listener serving `conns` connections on a thread; its port.
fn spawn_server(bind: SocketAddrV4, conns: usize, snapshot: ListSnapshot) -> std::io::Result<u16> {
    let l = TcpListener::bind(bind)?;
    let port = l.local_addr()?.port();
    std::thread::spawn(move || {
        for s in l.incoming().take(conns).flatten() {
            serve_one(s, &snapshot);
        }
    });
    Ok(port)
}

fn opts() -> Options {
    Options {
        timeout: Duration::from_secs(10),
        max_entries: 10_000,
        client_name: "RAPCLIENT".into(),
    }
}

#[test]
fn our_client_lists_servers_and_workgroups() {
    let lo = Ipv4Addr::LOCALHOST;
    let port = spawn_server(SocketAddrV4::new(lo, 0), 3, list(3)).unwrap();
    let v = net_server_enum2_port(lo, port, "RAPSRV", "TESTGROUP", SV_TYPE_ALL, &opts()).unwrap();
    let names: Vec<&str> = v.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["RAPSRV", "SRV0000", "SRV0001", "SRV0002"]);
    assert_eq!(v[0].comment, "the responder");
    assert_eq!(v[0].server_type, 0x0004_9003);
    let g = net_server_enum2_port(
        lo,
        port,
        "RAPSRV",
        "TESTGROUP",
        SV_TYPE_DOMAIN_ENUM,
        &opts(),
    )
    .unwrap();
    let groups: Vec<(&str, &str)> = g
        .iter()
        .map(|s| (s.name.as_str(), s.comment.as_str()))
        .collect();
    assert_eq!(
        groups,
        [("OTHERGROUP", "OTHERMASTER"), ("TESTGROUP", "RAPSRV")]
    );
    // another workgroup: empty
    let e = net_server_enum2_port(lo, port, "RAPSRV", "NOSUCH", SV_TYPE_ALL, &opts()).unwrap();
    assert!(e.is_empty());
}

#[test]
fn our_client_gets_what_fits_of_a_long_list() {
    // 2,000 servers of 26 + 41 bytes do not fit in 64 KiB: ERROR_MORE_DATA, the client
    // keeps what came (about 970 entries).
    let lo = Ipv4Addr::LOCALHOST;
    let port = spawn_server(SocketAddrV4::new(lo, 0), 1, list(2000)).unwrap();
    let v = net_server_enum2_port(lo, port, "RAPSRV", "TESTGROUP", SV_TYPE_ALL, &opts()).unwrap();
    assert!(v.len() > 900 && v.len() < 2001, "{}", v.len());
    assert_eq!(v[0].name, "RAPSRV");
    assert_eq!(v[1].name, "SRV0000");
}

/// Valid requests of a whole exchange (to mutate).
fn exchange() -> Vec<(u8, Vec<u8>)> {
    let ids = smb::Ids {
        tid: 1,
        pid: 9,
        uid: 100,
        mid: 1,
    };
    let params = nbdgm_rap::rap::request_params(0xFFFF, SV_TYPE_ALL, "TESTGROUP");
    vec![
        (
            nbss::SESSION_REQUEST,
            nbss::session_request("RAPSRV", "FUZZ")[4..].to_vec(),
        ),
        (0, smb::negotiate(ids)),
        (0, smb::session_setup(ids, 1, 0)),
        (0, smb::tree_connect_ipc(ids, "RAPSRV")),
        (0, smb::transaction_lanman(ids, &params, 8, 0xFFFF)),
    ]
}

fn run(packets: &[(u8, Vec<u8>)], snapshot: &ListSnapshot) {
    let mut s = Session::new(cfg());
    for (kind, body) in packets {
        let out = match s.handle(*kind, body) {
            Step::Send(b) | Step::Close(b) => b,
            Step::Nothing => Vec::new(),
            Step::Enum(req) => s.answer(&req, snapshot),
        };
        assert!(out.len() <= MAX_REPLY, "{} bytes out", out.len());
        if !out.is_empty() {
            // every answer is one well-framed NBSS packet
            let (_, len) = nbss::parse_header(&out[..4]).unwrap();
            assert_eq!(len + 4, out.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_packets_never_panic(
        packets in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8)
    ) {
        let mut all = vec![(nbss::SESSION_REQUEST, nbss::session_request("A", "B")[4..].to_vec())];
        all.extend(packets);
        run(&all, &list(5));
    }

    #[test]
    fn mutated_exchanges_never_panic(
        flips in proptest::collection::vec((0usize..5, any::<u16>(), any::<u8>()), 1..12),
        cut in proptest::option::of((0usize..5, any::<u16>())),
    ) {
        let mut ex = exchange();
        for (i, at, v) in flips {
            let b = &mut ex[i].1;
            let n = b.len();
            b[usize::from(at) % n] = v;
        }
        if let Some((i, at)) = cut {
            let n = ex[i].1.len();
            ex[i].1.truncate(usize::from(at) % (n + 1));
        }
        run(&ex, &list(3000));
    }
}

/// `smbclient -L ADDR` (NT1, no SPNEGO; [`nbdgm_lab::smbclient_list_loopback`]):
/// (exit status success, stdout + stderr).
fn smbclient_list(addr: Ipv4Addr) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("nbdgm-rap-smbclient-{}", std::process::id()));
    let o = nbdgm_lab::smbclient_list_loopback(addr, &dir).expect("smbclient");
    (o.success(), o.stdout + &o.stderr)
}

#[test]
fn smbclient_lists_servers_and_workgroups() {
    if !nbdgm_lab::require_tools_or_skip("smbclient_lists_servers_and_workgroups", &["smbclient"]) {
        return;
    }
    let addr = Ipv4Addr::new(127, 0, 77, 1);
    // smbclient asks on 139 whatever -p says (a second connection for the workgroups).
    spawn_server(SocketAddrV4::new(addr, 139), 4, list(2)).expect("bind 127.0.77.1:139 (root)");
    let (ok, out) = smbclient_list(addr);
    eprintln!("{out}");
    assert!(ok, "{out}");
    for want in [
        "RAPSRV",
        "SRV0000",
        "SRV0001",
        "server number 0001",
        "OTHERGROUP",
        "OTHERMASTER",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("TESTGROUP") && l.contains("RAPSRV")),
        "{out}"
    );
}

/// A list longer than one reply: smbclient continues with NetServerEnum3 from the last
/// name and gets every server once.
#[test]
fn smbclient_continues_a_long_list_with_enum3() {
    if !nbdgm_lab::require_tools_or_skip(
        "smbclient_continues_a_long_list_with_enum3",
        &["smbclient"],
    ) {
        return;
    }
    let addr = Ipv4Addr::new(127, 0, 77, 2);
    spawn_server(SocketAddrV4::new(addr, 139), 4, list(1500)).expect("bind 127.0.77.2:139 (root)");
    let (ok, out) = smbclient_list(addr);
    assert!(ok, "{out}");
    let srv: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("SRV"))
        .collect();
    assert_eq!(srv.len(), 1500, "{}", &out[..out.len().min(3000)]);
    let mut dedup = srv.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 1500);
    assert_eq!(srv.last(), Some(&"SRV1499"));
}
