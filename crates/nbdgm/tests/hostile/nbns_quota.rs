//! Attack: NBNS role quotas (issue 12 item 11). Attacker (a), a host on the served
//! subnet that spoofs its UDP source: one source tries to fill the name table, many
//! sources try to evict the established member of `DOMAIN<1C>`. Bounds: per-source
//! quotas (`max_names_per_source`, `max_groups_per_source`), the table cap, and
//! "a newcomer never evicts an established member" (docs/security.md, "The NBNS role").

use crate::common::*;
use nbdgm_wire::nbns::{NbAddress, Packet, Question, RData, Record, CLASS_IN, TYPE_NB};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

const REG: u16 = 0x2900; // opcode 5, RD
const REFRESH: u16 = 0x4000; // opcode 8
const GROUP_H: u16 = 0xE000; // G, ONT = H
const UNIQUE_H: u16 = 0x6000;
/// The defaults of `[nbns_server]` this test relies on.
const NAMES_PER_SOURCE: u64 = 32;
const GROUPS_PER_SOURCE: u64 = 16;
const MAX_GROUP_MEMBERS: usize = 25;

fn nb_request(id: u16, flags: u16, name: &Name, nb_flags: u16, ip: Ipv4Addr) -> Vec<u8> {
    Packet {
        id,
        flags,
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
            ttl: 300,
            rdata: RData::Nb(vec![NbAddress {
                flags: nb_flags,
                ip,
            }]),
        }],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap()
}

/// Send `req` from `sock` to the NBNS and wait (bounded) for the answer with `id`.
fn ask(sock: &UdpSocket, nbns: SocketAddrV4, id: u16, req: &[u8]) -> Packet {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        sock.send_to(req, nbns).unwrap();
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if let Ok(p) = Packet::parse(&buf[..n]) {
                    if p.is_response() && p.id == id {
                        return p;
                    }
                }
            }
        }
    }
    panic!("no answer to id {id:#06x} from the NBNS at {nbns}");
}

/// The addresses the NBNS answers for `name`.
fn query(sock: &UdpSocket, nbns: SocketAddrV4, id: u16, name: &Name) -> Vec<Ipv4Addr> {
    let req = Packet::request(id, 0x0100, name.clone(), TYPE_NB)
        .to_bytes()
        .unwrap();
    let p = ask(sock, nbns, id, &req);
    match p.answers.first().map(|r| &r.rdata) {
        Some(RData::Nb(v)) => v.iter().map(|a| a.ip).collect(),
        _ => vec![],
    }
}

/// Register then refresh `name` from `sock` (the member is then established).
fn register_and_refresh(sock: &UdpSocket, nbns: SocketAddrV4, name: &Name, nb_flags: u16) {
    let ip = match sock.local_addr().unwrap().ip() {
        std::net::IpAddr::V4(ip) => ip,
        _ => unreachable!(),
    };
    for (id, flags) in [(0x1001u16, REG), (0x1002, REFRESH)] {
        let p = ask(sock, nbns, id, &nb_request(id, flags, name, nb_flags, ip));
        assert_eq!(p.rcode(), 0, "{name} from {ip}: {p:?}");
    }
}

fn nbns_stat(d: &Daemon, field: &str) -> u64 {
    counter(&d.stats(), &format!("roles.nbns.{field}"))
}

/// Wait (bounded) until the NBNS's request counters, `base` before the attack, stop
/// moving: the daemon has processed what reached it.
fn settle(d: &Daemon, base: u64) {
    let requests = |d: &Daemon| {
        let st = d.stats();
        ["registrations", "refreshes"]
            .iter()
            .map(|f| counter(&st, &format!("roles.nbns.{f}")))
            .sum::<u64>()
    };
    let until = Instant::now() + Duration::from_secs(5);
    let mut last = base;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = requests(d);
        if now == last || Instant::now() > until {
            return;
        }
        last = now;
    }
}

fn start_nbns(s: &Scratch, tag: &'static str, addr: Ipv4Addr, extra: &str) -> (Daemon, u16) {
    let ports = ports();
    // Every rate limit opened wide: only the quotas and caps bound the attacker.
    let toml = format!(
        "[node]\nrole = [\"nbns\"]\n[browser]\nlisten = false\n\
         [limits]\nrx_per_source = {{ rate = 100000.0, burst = 100000 }}\n\
         [nbns_server]\nrequests_per_source_per_s = 100000.0\nrequests_burst = 100000\n{extra}"
    );
    let toml: &'static str = Box::leak(toml.into_boxed_str());
    let d = Daemon::start(DaemonSpec::loopback(
        &s.0, tag, "QUOTASRV", addr, ports, toml,
    ));
    (d, ports.0)
}

#[test]
fn one_source_holds_at_most_its_quota() {
    let s = Scratch::new("nbns-quota-one");
    let srv = Ipv4Addr::new(127, 0, 12, 1);
    let (d, port) = start_nbns(&s, "srv", srv, "max_names = 400\n");
    let nbns = SocketAddrV4::new(srv, port);
    let domain = Name::new("DOMAIN", 0x1C).unwrap();
    let dc = Name::new("LEGITDC", 0x00).unwrap();

    let legit = UdpSocket::bind((Ipv4Addr::new(127, 0, 12, 2), 0)).unwrap();
    register_and_refresh(&legit, nbns, &domain, GROUP_H);
    register_and_refresh(&legit, nbns, &dc, UNIQUE_H);
    let held_before = nbns_stat(&d, "addresses");
    let base = nbns_stat(&d, "registrations") + nbns_stat(&d, "refreshes");

    // One attacker source: 2,000 unique names and 2,000 group memberships, paced so
    // that loopback buffers keep up (bounded in count and time).
    let atk_ip = Ipv4Addr::new(127, 0, 12, 3);
    let atk = UdpSocket::bind((atk_ip, 0)).unwrap();
    atk.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sink = [0u8; 1500];
    for i in 0..4_000u32 {
        if Instant::now() > deadline {
            break;
        }
        let (name, flags) = if i % 2 == 0 {
            (Name::new(&format!("ATK{i}"), 0x00).unwrap(), UNIQUE_H)
        } else {
            (Name::new(&format!("GRP{i}"), 0x1C).unwrap(), GROUP_H)
        };
        let _ = atk.send_to(&nb_request(i as u16, REG, &name, flags, atk_ip), nbns);
        while atk.recv_from(&mut sink).is_ok() {}
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    settle(&d, base);

    let attacker_holds = nbns_stat(&d, "addresses") - held_before;
    let names = nbns_stat(&d, "names");
    eprintln!("attacker holds {attacker_holds} addresses; table {names} names");
    assert!(
        attacker_holds <= NAMES_PER_SOURCE + GROUPS_PER_SOURCE,
        "one source holds {attacker_holds} addresses"
    );
    assert!(names <= 400);
    // The legitimate member is still answered, and its refresh still works.
    let members = query(&legit, nbns, 0x2001, &domain);
    assert!(members.contains(&legit_ip(&legit)), "{members:?}");
    assert_eq!(query(&legit, nbns, 0x2002, &dc), vec![legit_ip(&legit)]);
    register_and_refresh(&legit, nbns, &domain, GROUP_H);
    // Every refusal was counted.
    assert!(nbns_stat(&d, "refused_names_per_source") > 0);
    assert!(nbns_stat(&d, "refused_groups_per_source") > 0);
    assert_eq!(nbns_stat(&d, "refused_table_full"), 0);
}

fn legit_ip(sock: &UdpSocket) -> Ipv4Addr {
    match sock.local_addr().unwrap().ip() {
        std::net::IpAddr::V4(ip) => ip,
        _ => unreachable!(),
    }
}

#[test]
fn many_sources_never_evict_an_established_member() {
    let s = Scratch::new("nbns-quota-many");
    let srv = Ipv4Addr::new(127, 0, 13, 1);
    let (d, port) = start_nbns(&s, "srv", srv, "max_names = 300\n");
    let nbns = SocketAddrV4::new(srv, port);
    let domain = Name::new("DOMAIN", 0x1C).unwrap();
    let dc = Name::new("LEGITDC", 0x00).unwrap();

    let legit = UdpSocket::bind((Ipv4Addr::new(127, 0, 13, 2), 0)).unwrap();
    register_and_refresh(&legit, nbns, &domain, GROUP_H);
    register_and_refresh(&legit, nbns, &dc, UNIQUE_H);
    let base = nbns_stat(&d, "registrations") + nbns_stat(&d, "refreshes");

    // 200 spoofed sources: each joins DOMAIN<1C> and refreshes at once (so that its
    // own membership looks established too), then registers 5 names of its own.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sink = [0u8; 1500];
    for k in 0..200u32 {
        if Instant::now() > deadline {
            break;
        }
        let ip = Ipv4Addr::new(127, 0, 14, (k % 250 + 1) as u8);
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_nonblocking(true).unwrap();
        let mut reqs = vec![
            nb_request(1, REG, &domain, GROUP_H, ip),
            nb_request(2, REFRESH, &domain, GROUP_H, ip),
        ];
        for j in 0..5 {
            let n = Name::new(&format!("S{k}N{j}"), 0x20).unwrap();
            reqs.push(nb_request(3 + j, REG, &n, UNIQUE_H, ip));
        }
        for r in reqs {
            let _ = sock.send_to(&r, nbns);
        }
        std::thread::sleep(Duration::from_millis(3));
        while sock.recv_from(&mut sink).is_ok() {}
    }
    settle(&d, base);

    let members = query(&legit, nbns, 0x3001, &domain);
    eprintln!(
        "DOMAIN<1C> has {} members; legit among them: {}; table {} names",
        members.len(),
        members.contains(&legit_ip(&legit)),
        nbns_stat(&d, "names")
    );
    assert!(
        members.contains(&legit_ip(&legit)),
        "the established member was evicted: {members:?}"
    );
    assert!(members.len() <= MAX_GROUP_MEMBERS);
    assert!(nbns_stat(&d, "names") <= 300);
    // The legitimate names survive a full table and still refresh.
    assert_eq!(query(&legit, nbns, 0x3002, &dc), vec![legit_ip(&legit)]);
    register_and_refresh(&legit, nbns, &dc, UNIQUE_H);
    assert!(nbns_stat(&d, "refused_group_established") > 0);
    assert!(nbns_stat(&d, "refused_table_full") > 0);
}
