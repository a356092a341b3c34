//! Interop with a real Samba nmbd in network namespaces (198.51.100.0/24 only), and
//! nbdgm-to-nbdgm over a real bridge: name resolution both ways, conflicts both ways,
//! a HostAnnouncement accepted by nmbd, nmbd's announcements heard by `nbdgm listen`,
//! a 3,000-byte datagram fragmented and reassembled (also reordered). Facts about nmbd:
//! /work/shared/design/SAMBA-LAB.md. Needs root, iproute2, Samba and tshark: skipped
//! locally without them, a failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::{Event, NameState, SendArgs, SendMode, Subscription};
use nbdgm_lab::{nmblookup, require_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions};
use nbdgm_wire::browser::{Announcement, BrowserFrame};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Start `nbdgm serve` inside a host's namespace on the real ports.
fn daemon_in(host: &Host, dir: &std::path::Path, name: &str, extra: &str) -> Daemon {
    Daemon::start(DaemonSpec::in_host(host, dir, name, extra))
}

fn state_of(list: &[(String, NameState)], name: &str) -> Option<NameState> {
    list.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
}

#[test]
fn nmbd_and_nbdgm_resolve_each_other() {
    if !require_or_skip("nmbd_and_nbdgm_resolve_each_other") {
        return;
    }
    let s = Scratch::new("interop-resolve");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    let ours = daemon_in(&b, &s.0, "NBDGMB", "");
    let names = ours.wait_names(&["NBDGMB<00>", "TESTGROUP<00>"]);
    assert_eq!(
        state_of(&names, "NBDGMB<00>"),
        Some(NameState::Registered),
        "{names:?}"
    );
    nmbd.wait_registered(Duration::from_secs(20))
        .expect("nmbd registered");

    // nmblookup (Samba's client) resolves our name by unicast and by broadcast, from a
    // third host and from nmbd's own host.
    for from in [&c, &a] {
        let r = nmblookup(from, ["-U", "198.51.100.20", "NBDGMB"]).unwrap();
        assert_eq!(
            r.addresses("NBDGMB"),
            vec![b.addr()],
            "-U from {}: {r:?}",
            from.name()
        );
        let r = nmblookup(from, ["-B", "198.51.100.255", "NBDGMB"]).unwrap();
        assert_eq!(
            r.addresses("NBDGMB"),
            vec![b.addr()],
            "-B from {}: {r:?}",
            from.name()
        );
    }
    // Our group name: nmbd's host sees it as a group member.
    let r = nmblookup(&c, ["-B", "198.51.100.255", "TESTGROUP"]).unwrap();
    assert!(r.addresses("TESTGROUP").contains(&b.addr()), "{r:?}");
    // Node status (nmblookup -A) lists our names.
    let r = nmblookup(&c, ["-A", "198.51.100.20"]).unwrap();
    assert!(
        r.stdout.contains("NBDGMB") && r.stdout.contains("<GROUP>"),
        "{r:?}"
    );

    // We resolve nmbd's names: broadcast and unicast, and its node status.
    let mut api = ours.client();
    let l = api
        .lookup("SAMBAA<00>", None)
        .expect("broadcast lookup of SAMBAA");
    assert_eq!(l.addresses[0].address, IpAddr::V4(a.addr()));
    let l = api
        .lookup("SAMBAA<20>", Some(IpAddr::V4(a.addr())))
        .expect("unicast lookup of SAMBAA<20>");
    assert_eq!(l.addresses[0].address, IpAddr::V4(a.addr()));
    let st = api
        .status(IpAddr::V4(a.addr()), None)
        .expect("node status of nmbd");
    assert!(st.names.iter().any(|n| n.name == "SAMBAA<20>"), "{st:?}");
    assert!(
        st.names
            .iter()
            .any(|n| n.name == "TESTGROUP<00>" && n.group),
        "{st:?}"
    );
    // The same through the CLI, standalone (an ephemeral port, like nmblookup).
    let out = b
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .args([
            "lookup",
            "SAMBAA",
            "--standalone",
            "--server",
            "198.51.100.10",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("198.51.100.10"));
    // A name nobody holds: exit 1.
    let out = b
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .args([
            "lookup",
            "NOSUCHNAME",
            "--standalone",
            "--broadcast",
            "198.51.100.255",
            "--tries",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn name_conflicts_with_nmbd_in_both_directions() {
    if !require_or_skip("name_conflicts_with_nmbd_in_both_directions") {
        return;
    }
    let s = Scratch::new("interop-conflict");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let e = lab.add_host("e", "198.51.100.50/24").unwrap();

    // 1. nmbd holds SAMBAA; nbdgm tries to register it and is refused.
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    nmbd.wait_registered(Duration::from_secs(20))
        .expect("nmbd registered");
    let ours = daemon_in(&b, &s.0, "SAMBAA", "");
    let names = ours.wait_names(&["SAMBAA<00>"]);
    assert_eq!(
        state_of(&names, "SAMBAA<00>"),
        Some(NameState::Conflict),
        "{names:?}"
    );
    assert!(
        ours.log_text().contains("198.51.100.10"),
        "conflict names the owner:\n{}",
        ours.log_text()
    );
    // A name in conflict is not answered: nmblookup still gets only nmbd.
    let r = nmblookup(&c, ["-U", "198.51.100.20", "SAMBAA"]).unwrap();
    assert!(r.addresses("SAMBAA").is_empty(), "{r:?}");

    // 2. nbdgm holds NBDGMX; nmbd is started with that name and is refused by us.
    let x = daemon_in(&c, &s.0, "NBDGMX", "");
    let names = x.wait_names(&["NBDGMX<00>"]);
    assert_eq!(state_of(&names, "NBDGMX<00>"), Some(NameState::Registered));
    let nmbd2 = Nmbd::start(
        &e,
        NmbdOptions {
            netbios_name: "NBDGMX".into(),
            ..NmbdOptions::default()
        },
    )
    .expect("second nmbd");
    // Our NEGATIVE NAME REGISTRATION RESPONSE makes nmbd give the name up. (nmbd 4.17 logs
    // a unicast response to a broadcast registration as an "ignored WINS response", but it
    // still counts it, and the registration fails when its timer ends.)
    nmbd2
        .wait_for_log(
            "Failed to register my name NBDGMX<00>",
            Duration::from_secs(40),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(counter(&x.stats(), "node.defences_sent") >= 1);
    // We keep the name.
    let r = nmblookup(&a, ["-U", "198.51.100.30", "NBDGMX"]).unwrap();
    assert_eq!(r.addresses("NBDGMX"), vec![c.addr()]);
}

/// A HostAnnouncement frame (MS-BRWS §2.2.1) for `server`.
fn host_announcement(server: &str) -> Vec<u8> {
    BrowserFrame::HostAnnouncement(Announcement {
        update_count: 0,
        periodicity_ms: 720_000,
        server_name: server.into(),
        server_name_unterminated: false,
        server_name_padding: vec![],
        os_major: 6,
        os_minor: 1,
        server_type: 0x0000_1003, // workstation | server | NT workstation
        browser_version_major: 0x0F,
        browser_version_minor: 0x01,
        signature: 0xAA55,
        comment: "nbdgm interop".into(),
        comment_unterminated: false,
        trailing: vec![],
    })
    .to_bytes()
    .unwrap()
}

#[test]
fn browser_announcements_both_ways_with_nmbd() {
    if !require_or_skip("browser_announcements_both_ways_with_nmbd") {
        return;
    }
    let s = Scratch::new("interop-browse");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let ours = daemon_in(&b, &s.0, "NBDGMB", "");
    ours.wait_names(&["NBDGMB<00>"]);

    // `nbdgm listen` through the daemon, before nmbd starts: nmbd's first packet on 138
    // is a HostAnnouncement to TESTGROUP<1D> (not our name: --all).
    let listener = b
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .args([
            "listen",
            "--daemon",
            "--all",
            "--mailslot",
            "\\MAILSLOT\\BROWSE",
            "--count",
            "1",
            "--timeout-s",
            "30",
            "--format",
            "ndjson",
            "--api-socket",
        ])
        .arg(&ours.socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    let out = listener.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(v["from"], "198.51.100.10:138", "{v}");
    assert_eq!(v["browser"]["server_name"], "SAMBAA", "{v}");
    assert_eq!(v["nbdgm"]["destination_name"]["name"], "TESTGROUP", "{v}");

    // `nbdgm send` of a HostAnnouncement to TESTGROUP<1D> once nmbd is the local master
    // (it accepts <1D> datagrams only then: SAMBA-LAB G1); nmbd lists the server.
    nmbd.wait_local_master(Duration::from_secs(60))
        .expect("nmbd becomes LMB");
    let hex = nbdgm_wire::hex::encode(&host_announcement("NBDGMB"));
    let out = b
        .cmd(env!("CARGO_BIN_EXE_nbdgm"))
        .args([
            "send",
            "--daemon",
            "--to",
            "TESTGROUP<1d>",
            "--group",
            "--mailslot",
            "\\MAILSLOT\\BROWSE",
            "--hex",
            &hex,
            "--api-socket",
        ])
        .arg(&ours.socket)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nmbd.wait_for_log("Created server entry NBDGMB", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd.log()));
    let dat = nmbd
        .wait_browse_dat("NBDGMB", Duration::from_secs(30))
        .expect("browse.dat");
    assert!(dat.contains("nbdgm interop"), "{dat}");
}

#[test]
fn fragmented_datagram_between_nbdgm_nodes_over_a_bridge() {
    if !require_or_skip("fragmented_datagram_between_nbdgm_nodes_over_a_bridge") {
        return;
    }
    let s = Scratch::new("interop-frag");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let d = lab.add_host("d", "198.51.100.40/24").unwrap();
    let nb = daemon_in(&b, &s.0, "NODEB", "");
    let nc = daemon_in(&c, &s.0, "NODEC", "");
    nb.wait_names(&["NODEB<00>"]);
    nc.wait_names(&["NODEC<00>"]);
    let mut sub = nc.client();
    sub.subscribe(Subscription::default()).unwrap();

    // 1. Unique send of 3,000 bytes: resolved by broadcast, sent as 6+ fragments.
    let data: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(31) % 256) as u8)
        .collect();
    let r = nb
        .client()
        .send(SendArgs::new("NODEC<00>", SendMode::Unique, &data))
        .unwrap();
    assert!(r.fragments >= 6, "{r:?}");
    assert_eq!(r.to.to_string(), "198.51.100.30:138");
    // 2. The same bytes as fragments in reverse order, from a third host.
    let reversed = d
        .in_netns(move || {
            let sock = std::net::UdpSocket::bind(("198.51.100.40", 138)).unwrap();
            let frags = fragments(
                nbdgm_wire::datagram::MsgType::DirectUnique,
                SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 40), 138),
                "NODEC<00>",
                &data,
                0x7777,
                500,
            );
            for f in frags.iter().rev() {
                sock.send_to(f, ("198.51.100.30", 138)).unwrap();
            }
            frags.len()
        })
        .unwrap();
    assert!(reversed >= 6);

    let want: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(31) % 256) as u8)
        .collect();
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && Instant::now() < until {
        if let Some(Event::Datagram(ev)) = sub.next_event(Some(Duration::from_millis(500))).unwrap()
        {
            got.push(ev);
        }
    }
    assert_eq!(got.len(), 2, "{got:?}\n{}", nc.log_text());
    for ev in &got {
        assert_eq!(
            nbdgm_wire::hex::decode(&ev.data_hex).unwrap(),
            want,
            "byte for byte"
        );
        assert!(ev.fragments >= 6);
    }
    assert_eq!(got[0].from.to_string(), "198.51.100.20:138");
    assert_eq!(got[1].from.to_string(), "198.51.100.40:138");
    assert_eq!(counter(&nc.stats(), "node.datagrams_reassembled"), 2);
}

#[test]
fn privileges_bind_errors_and_capabilities() {
    if !require_or_skip("privileges_bind_errors_and_capabilities") {
        return;
    }
    let s = Scratch::new("interop-priv");
    // A directory the unprivileged daemons can create their API sockets in.
    let open_dir = s.0.join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(
        &open_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let d = lab.add_host("d", "198.51.100.40/24").unwrap();
    let nbdgm = env!("CARGO_BIN_EXE_nbdgm");

    // 1. Port taken by nmbd: a clear message, exit 2.
    let _nmbd = Nmbd::start(&a, NmbdOptions::default()).expect("nmbd");
    let out = a
        .cmd(nbdgm)
        .args(["serve", "--interface", "198.51.100.10/24", "--api-socket"])
        .arg(s.0.join("a.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains("nmbd"),
        "{err}"
    );

    // 2. Unprivileged without CAP_NET_BIND_SERVICE: a clear message, exit 2.
    let setpriv = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
    ];
    let out = b
        .cmd("setpriv")
        .args(&setpriv[1..])
        .args([
            nbdgm,
            "serve",
            "--interface",
            "198.51.100.20/24",
            "--api-socket",
        ])
        .arg(open_dir.join("b.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CAP_NET_BIND_SERVICE"), "{err}");

    // 3. Unprivileged with only CAP_NET_BIND_SERVICE (as the systemd unit runs it): serves.
    let mut wrapper: Vec<String> = ["ip", "netns", "exec", b.netns()]
        .iter()
        .map(|x| x.to_string())
        .collect();
    wrapper.extend(setpriv.iter().map(|x| x.to_string()));
    wrapper.extend(
        [
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
        ]
        .map(String::from),
    );
    let capped = Daemon::start(DaemonSpec {
        dir: &open_dir,
        tag: "b",
        name: "CAPPED",
        addr: b.addr(),
        prefix: 24,
        ports: (137, 138),
        extra: "",
        wrapper,
    });
    capped.wait_names(&["CAPPED<00>"]);
    let r = nmblookup(&d, ["-U", "198.51.100.20", "CAPPED"]).unwrap();
    assert_eq!(r.addresses("CAPPED"), vec![b.addr()], "{r:?}");
    assert_eq!(uid_of(capped.pid()), Some(65534));

    // 4. Started as root, drops to nobody after binding, keeps serving, exits cleanly.
    let mut dropped = daemon_in(&c, &s.0, "DROPPED", "[privileges]\nuser = \"nobody\"\n");
    dropped.wait_names(&["DROPPED<00>"]);
    assert_eq!(uid_of(dropped.pid()), Some(65534));
    let r = nmblookup(&d, ["-U", "198.51.100.30", "DROPPED"]).unwrap();
    assert_eq!(r.addresses("DROPPED"), vec![c.addr()], "{r:?}");
    assert!(dropped.log_text().contains("dropped privileges"));
    assert_eq!(dropped.stop(), Some(0), "{}", dropped.log_text());
}

/// Real uid of a process, from /proc.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
