//! Browsing across subnets with a domain master browser (issue 17 §3; MS-BRWS §3.3.6,
//! §3.4; Samba `nmbd_browsesync.c`, `nmbd_synclists.c`), in network namespaces across
//! the router between 198.51.100.0/24 and 203.0.113.0/24 that forwards no broadcasts:
//!
//! 1. nbdgm as local master browser with a Samba domain master browser + WINS: it sends
//!    the MasterAnnouncement, pulls the DMB's list (RAP) and the DMB pulls ours from our
//!    RAP responder;
//! 2. Samba as local master browser with nbdgm as WINS + domain master browser, both
//!    ways over RAP;
//! 3. nbdgm on both sides: the lists merge through the HTTP endpoint (no SMB);
//! 4. a master conflict with nmbd on one subnet (partitioned by nftables, then joined):
//!    nbdgm sends Samba's ResetStateRequest and a RequestElection, one master remains.
//!
//! Facts about nmbd: /work/shared/design/SAMBA-LAB.md. Skipped locally without root,
//! Samba and tshark (and smbd, nft where used); a failure under CI=true.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_lab::{
    nmblookup, require_tools_or_skip, Host, Lab, LabSpec, Nmbd, NmbdOptions, Smbd, Tshark,
};
use nbdgm_wire::browser::{Announcement, AnnouncementRequest, BrowserFrame};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use serde_json::Value;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// The WINS server / domain master browser host on subnet 1.
const DMB_IP: &str = "198.51.100.10";

/// Both subnets may talk to every daemon (the default `auto` lists drop what crosses
/// the router), as in routed_interop.rs.
const ACCESS: &str =
    "[access]\nname_service = { allow = [\"198.51.100.0/24\", \"203.0.113.0/24\"] }\n\
                      datagram = { allow = [\"198.51.100.0/24\", \"203.0.113.0/24\"] }\n";

fn daemon_in(host: &Host, dir: &Path, name: &str, extra: &str) -> Daemon {
    Daemon::start(DaemonSpec::in_host(host, dir, name, extra))
}

/// The last `n` lines of a log, without the API connection lines our own polling
/// produces.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| !l.contains("nbdgm_daemon::api::") && !l.contains("api request client="))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The entries of an nmbd log (a `[date, level, ...]` header line and its text lines)
/// about browsing across subnets: what a failure message needs, not 10,000 lines.
fn nmbd_digest(log: &str) -> String {
    const KEYS: &[&str] = &[
        "domain master",
        "domain_master",
        "master_browser_announce",
        "sync",
        "SERVER<0x20>",
        "node status",
        "local master browser",
        "Lost election",
        "ResetState",
        "reset_state",
        "Unable to find",
    ];
    let mut out = Vec::new();
    let mut entry: Vec<&str> = Vec::new();
    let flush = |entry: &mut Vec<&str>, out: &mut Vec<String>| {
        let text = entry.join("\n");
        if KEYS.iter().any(|k| text.contains(k)) {
            out.push(text);
        }
        entry.clear();
    };
    for line in log.lines() {
        if line.starts_with('[') {
            flush(&mut entry, &mut out);
        }
        entry.push(line);
    }
    flush(&mut entry, &mut out);
    let n = out.len();
    out[n.saturating_sub(60)..].join("\n")
}

/// The daemon's browse result as JSON (`nbdgm browse --daemon --format json`), so the
/// test reads whatever fields the daemon shows (`synced_from`, `domain_master`,
/// `local_masters`) without depending on the client library's structs.
fn browse_json(d: &Daemon) -> Value {
    let out = bin()
        .args(["browse", "--daemon", "--format", "json", "--api-socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    // Exit 1 = empty list: still JSON.
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "browse --format json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every server entry of every interface.
fn servers(v: &Value) -> Vec<&Value> {
    v["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["servers"].as_array().into_iter().flatten())
        .collect()
}

fn server<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    servers(v)
        .into_iter()
        .find(|s| s["name"].as_str() == Some(name))
}

/// `name` is listed and was learnt from `peer` (`synced_from`).
fn synced(v: &Value, name: &str, peer: &str) -> bool {
    server(v, name).is_some_and(|s| s["synced_from"].as_str() == Some(peer))
}

fn role(v: &Value) -> String {
    v["interfaces"][0]["role"].as_str().unwrap_or("").to_owned()
}

/// `local_masters` of the first interface names `name` (a list of objects with `name`,
/// or of strings).
fn has_local_master(v: &Value, name: &str) -> bool {
    v["interfaces"][0]["local_masters"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["name"].as_str() == Some(name) || m.as_str() == Some(name))
}

/// Poll the daemon's browse list until `ok` holds; fail after `secs` with the list, the
/// daemon's log tail and `more()` (e.g. nmbd's log).
fn wait_browse(
    d: &Daemon,
    what: &str,
    secs: u64,
    ok: impl Fn(&Value) -> bool,
    more: impl Fn() -> String,
) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = browse_json(d);
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < until,
            "{what}: not within {secs} s; list:\n{v:#}\ndaemon log tail:\n{}\n{}",
            tail(&d.log_text(), 80),
            more()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Fail with `e` and both logs.
fn fail_with_logs(e: impl std::fmt::Display, nmbd: &Nmbd, d: &Daemon) -> ! {
    panic!(
        "{e}\nnmbd log tail:\n{}\ndaemon log tail:\n{}",
        nmbd_digest(&nmbd.log()),
        tail(&d.log_text(), 80)
    )
}

/// Poll `nmbd`'s log for `pattern`; fail with both logs.
fn wait_nmbd_log(nmbd: &Nmbd, pattern: &str, secs: u64, d: &Daemon) {
    nmbd.wait_for_log(pattern, Duration::from_secs(secs))
        .unwrap_or_else(|e| fail_with_logs(e, nmbd, d));
}

/// Poll `nmbd`'s browse.dat for `pattern` and return it; fail with both logs.
fn wait_browse_dat(nmbd: &Nmbd, pattern: &str, secs: u64, d: &Daemon) -> String {
    nmbd.wait_browse_dat(pattern, Duration::from_secs(secs))
        .unwrap_or_else(|e| fail_with_logs(e, nmbd, d))
}

/// A `\MAILSLOT\BROWSE` frame in a DIRECT_GROUP datagram from `src_name<00>` at `src`.
fn browse_datagram(f: &BrowserFrame, src: Ipv4Addr, src_name: &str, dest: Name) -> Vec<u8> {
    let data = MailslotWrite::new(BROWSE, f.to_bytes().unwrap())
        .to_bytes()
        .unwrap();
    Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more: false,
            first: true,
            node_type: NodeType::B,
            reserved: 0,
        },
        id: 0x6262,
        source_ip: src,
        source_port: 138,
        body: Body::Data {
            length: None,
            offset: 0,
            body: DataBody::Names {
                source_name: Name::new(src_name, 0).unwrap(),
                destination_name: dest,
                user_data: data,
            },
        },
    }
    .to_bytes()
    .unwrap()
}

/// A HostAnnouncement of `name` sent from `from` by unicast to the local master browser
/// at `lmb` (TESTGROUP<1D>): a server only that master knows (nobody else hears it).
fn announce_to_master(from: &Host, lmb: Ipv4Addr, name: &str, comment: &str) {
    let f = BrowserFrame::HostAnnouncement(Announcement {
        periodicity_ms: 720_000,
        server_name: name.into(),
        os_major: 6,
        os_minor: 1,
        server_type: 0x0000_1003,
        comment: comment.into(),
        ..Default::default()
    });
    let src = from.addr();
    let dg = browse_datagram(&f, src, name, Name::new("TESTGROUP", 0x1D).unwrap());
    from.in_netns(move || {
        let sock = UdpSocket::bind((src, 138)).unwrap();
        sock.send_to(&dg, (lmb, 138)).unwrap();
    })
    .unwrap();
}

/// Wait until the WINS at `wins` answers for `name` with suffix `suffix` (nmblookup
/// from `from`).
fn wait_wins(from: &Host, wins: &str, name: &str, suffix: u8, secs: u64, log: impl Fn() -> String) {
    let until = Instant::now() + Duration::from_secs(secs);
    let query = format!("{name}#{suffix:02x}");
    loop {
        let r = nmblookup(from, ["-U", wins, "--recursion", &query]).unwrap();
        if !r.addresses(name).is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "WINS {wins} does not answer for {query}: {r:?}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Test 1: nbdgm RUSTD, local master browser of subnet 2 (H-node, WINS = Samba SAMBAA),
/// finds the domain master browser SAMBAA (WINS `<1B>` + node status), sends it a
/// MasterAnnouncement, pulls SAMBAA's list over RAP (a server only SAMBAA knows is
/// listed with `synced_from` SAMBAA), and SAMBAA pulls ours from our RAP responder
/// (RUSTD in its browse.dat).
#[test]
fn nbdgm_lmb_syncs_with_samba_dmb() {
    if !require_tools_or_skip("nbdgm_lmb_syncs_with_samba_dmb", &["smbd"]) {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("dmb-samba-dmb");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let ha = lab.add_host("a", "198.51.100.10/24").unwrap();
    let hc = lab.add_host("c", "198.51.100.30/24").unwrap();
    let hd = lab.add_host("d", "203.0.113.40/24").unwrap();
    let nmbd = Nmbd::start(
        &ha,
        NmbdOptions {
            extra_global: vec!["domain master = yes".into(), "wins support = yes".into()],
            ..NmbdOptions::default()
        },
    )
    .expect("nmbd");
    let _smbd = Smbd::start(&ha, &nmbd).expect("smbd");
    nmbd.wait_domain_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd_digest(&nmbd.log())));
    wait_wins(&hd, DMB_IP, "SAMBAA", 0x20, 30, || nmbd_digest(&nmbd.log()));
    let dmb_at = t0.elapsed();
    // A server on subnet 1 that only SAMBAA knows (unicast to it once it is LMB), in
    // the browse.dat its smbd serves before our first sync (right after we win).
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd_digest(&nmbd.log())));
    announce_to_master(&hc, ha.addr(), "FARSERVER", "known to the samba dmb");
    nmbd.wait_browse_dat("FARSERVER", Duration::from_secs(30))
        .expect("nmbd lists FARSERVER");

    let ours = daemon_in(
        &hd,
        &s.0,
        "RUSTD",
        &format!(
            "[node]\nnode_type = \"h\"\n\n[nbns]\nservers = [\"{DMB_IP}\"]\n\n\
             [browser]\nannounce = true\nlocal_master = true\npreferred_master = true\n\
             os_level = 65\nrap_server = true\ncomment = \"nbdgm lmb of subnet 2\"\n{ACCESS}"
        ),
    );
    ours.wait_names(&["RUSTD<00>"]);
    let nlog = || format!("nmbd log digest:\n{}", nmbd_digest(&nmbd.log()));
    wait_browse(
        &ours,
        "RUSTD is local master",
        60,
        |v| role(v) == "master",
        nlog,
    );

    // The MasterAnnouncement reaches the Samba DMB.
    wait_nmbd_log(
        &nmbd,
        "process_master_browser_announce: Local master announce from RUSTD",
        60,
        &ours,
    );
    let announced = Instant::now();
    assert!(
        !nmbd
            .log()
            .contains("Local master announce made to us from RUSTD"),
        "SAMBAA was not DMB yet:\n{}",
        nmbd_digest(&nmbd.log())
    );

    // We pull the DMB's list: its subnet's servers, learnt from SAMBAA.
    let v = wait_browse(
        &ours,
        "SAMBAA's list synced",
        90,
        |v| synced(v, "FARSERVER", "SAMBAA") && synced(v, "SAMBAA", "SAMBAA"),
        nlog,
    );
    assert_eq!(
        v["interfaces"][0]["domain_master"].as_str(),
        Some("SAMBAA"),
        "{v:#}"
    );
    let far = server(&v, "FARSERVER").unwrap();
    assert_eq!(
        far["comment"].as_str(),
        Some("known to the samba dmb"),
        "{far}"
    );
    // Our own entry stays ours.
    let me = server(&v, "RUSTD").expect("RUSTD listed");
    assert!(me["synced_from"].is_null(), "{me}");
    let pulled = announced.elapsed();

    // The DMB pulls our list from our RAP responder 60 s after the first announcement
    // (plus its 20 s check and ~10 s clock lag, SAMBA-LAB G3).
    let dat = wait_browse_dat(&nmbd, "\"RUSTD\"", 150, &ours);
    assert!(dat.contains("nbdgm lmb of subnet 2"), "{dat}");
    assert!(
        nmbd.log()
            .contains("Initiating sync with local master browser RUSTD<0x20> at IP 203.0.113.40"),
        "{}",
        nmbd_digest(&nmbd.log())
    );
    // Samba's sync child pulled records from our responder (it logs the count).
    assert!(
        nmbd.log()
            .contains("sync with RUSTD(203.0.113.40) for workgroup TESTGROUP completed"),
        "{}",
        nmbd_digest(&nmbd.log())
    );
    eprintln!(
        "timings: nmbd DMB {} ms; MasterAnnouncement → our list synced {} ms; → RUSTD in \
         SAMBAA's browse.dat {} ms; total {} ms",
        dmb_at.as_millis(),
        pulled.as_millis(),
        announced.elapsed().as_millis(),
        t0.elapsed().as_millis()
    );
}

/// Test 2: Samba SAMBAD, local master browser of subnet 2 with nbdgm RUSTA (subnet 1) as
/// its WINS server and domain master browser: SAMBAD finds RUSTA through our NBNS,
/// sends the MasterAnnouncement (RUSTA lists SAMBAD among its local masters), RUSTA
/// pulls SAMBAD's local list over RAP (a server only SAMBAD knows, `synced_from`
/// SAMBAD), and SAMBAD pulls RUSTA's list from our RAP responder (browse.dat).
#[test]
fn samba_lmb_syncs_with_nbdgm_dmb() {
    if !require_tools_or_skip("samba_lmb_syncs_with_nbdgm_dmb", &["smbd"]) {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("dmb-nbdgm-dmb");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let ha = lab.add_host("a", "198.51.100.10/24").unwrap();
    let hd = lab.add_host("d", "203.0.113.40/24").unwrap();
    let he = lab.add_host("e", "203.0.113.50/24").unwrap();
    let ours = daemon_in(
        &ha,
        &s.0,
        "RUSTA",
        &format!(
            "[node]\nrole = [\"nbns\"]\n[browser]\ndomain_master = true\n\
             announce = true\nlocal_master = true\nrap_server = true\ncomment = \"nbdgm dmb\"\n\
             {ACCESS}"
        ),
    );
    ours.wait_names(&["RUSTA<00>"]);
    let nmbd = Nmbd::start(
        &hd,
        NmbdOptions {
            netbios_name: "SAMBAD".into(),
            extra_global: vec![format!("wins server = {DMB_IP}")],
            ..NmbdOptions::default()
        },
    )
    .expect("nmbd");
    let _smbd = Smbd::start(&hd, &nmbd).expect("smbd");
    let nlog = || format!("nmbd log digest:\n{}", nmbd_digest(&nmbd.log()));
    // We are the domain master browser: `<1B>` resolves through our NBNS.
    wait_wins(&he, DMB_IP, "TESTGROUP", 0x1b, 30, || {
        format!("{}\n{}", tail(&ours.log_text(), 60), nlog())
    });
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd_digest(&nmbd.log())));
    let lmb_at = t0.elapsed();
    announce_to_master(&he, hd.addr(), "FARSERVER2", "known to the samba lmb");
    nmbd.wait_browse_dat("FARSERVER2", Duration::from_secs(30))
        .expect("nmbd lists FARSERVER2");

    // SAMBAD's MasterAnnouncement: it is one of our local masters.
    wait_browse(
        &ours,
        "SAMBAD among the local masters",
        60,
        |v| has_local_master(v, "SAMBAD"),
        nlog,
    );
    let announced = Instant::now();

    // SAMBAD syncs from our RAP responder right after announcing.
    let dat = wait_browse_dat(&nmbd, "\"RUSTA\"", 60, &ours);
    assert!(dat.contains("nbdgm dmb"), "{dat}");
    // From our RAP responder: RUSTA announces on subnet 1 only, which SAMBAD cannot hear.
    assert!(
        nmbd.log()
            .contains("sync with RUSTA(198.51.100.10) for workgroup TESTGROUP completed"),
        "{}",
        nmbd_digest(&nmbd.log())
    );
    let lmb_synced = announced.elapsed();

    // We pull SAMBAD's local list a minute after its first announcement.
    let v = wait_browse(
        &ours,
        "SAMBAD's list synced",
        120,
        |v| synced(v, "SAMBAD", "SAMBAD") && synced(v, "FARSERVER2", "SAMBAD"),
        nlog,
    );
    let far = server(&v, "FARSERVER2").unwrap();
    assert_eq!(
        far["comment"].as_str(),
        Some("known to the samba lmb"),
        "{far}"
    );
    eprintln!(
        "timings: SAMBAD LMB {} ms; MasterAnnouncement → RUSTA in SAMBAD's browse.dat {} ms; \
         → SAMBAD's list at RUSTA {} ms; total {} ms",
        lmb_at.as_millis(),
        lmb_synced.as_millis(),
        announced.elapsed().as_millis(),
        t0.elapsed().as_millis()
    );
}

/// Test 3: nbdgm on both subnets, no Samba and no RAP (port 139 closed on both): RUSTA is
/// NBNS + domain master browser on subnet 1, RUSTD local master browser on subnet 2;
/// each subnet has one more nbdgm server that only announces. The lists merge both
/// ways through the HTTP endpoints (`http`, `sync_http_port`).
#[test]
fn nbdgm_lmb_and_nbdgm_dmb_sync_over_http() {
    if !require_tools_or_skip("nbdgm_lmb_and_nbdgm_dmb_sync_over_http", &[]) {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("dmb-http");
    let lab = Lab::new(LabSpec::two_subnets()).expect("lab");
    let ha = lab.add_host("a", "198.51.100.10/24").unwrap();
    let hb = lab.add_host("b", "198.51.100.20/24").unwrap();
    let hd = lab.add_host("d", "203.0.113.40/24").unwrap();
    let he = lab.add_host("e", "203.0.113.50/24").unwrap();
    let dmb = daemon_in(
        &ha,
        &s.0,
        "RUSTA",
        &format!(
            "[node]\nrole = [\"nbns\"]\n[browser]\ndomain_master = true\n\
             announce = true\nlocal_master = true\npreferred_master = true\nos_level = 65\n\
             http = \"198.51.100.10:8139\"\nsync_http_port = 8139\n{ACCESS}"
        ),
    );
    dmb.wait_names(&["RUSTA<00>"]);
    // The DMB's <1B> resolves through its NBNS before the LMB looks for it.
    wait_wins(&hb, DMB_IP, "TESTGROUP", 0x1b, 30, || {
        tail(&dmb.log_text(), 80)
    });
    let lmb = daemon_in(
        &hd,
        &s.0,
        "RUSTD",
        &format!(
            "[node]\nnode_type = \"h\"\n\n[nbns]\nservers = [\"{DMB_IP}\"]\n\n\
             [browser]\nannounce = true\nlocal_master = true\npreferred_master = true\n\
             os_level = 65\nhttp = \"203.0.113.40:8139\"\nsync_http_port = 8139\n{ACCESS}"
        ),
    );
    lmb.wait_names(&["RUSTD<00>"]);
    let announcer = "[browser]\nannounce = true\n";
    let one = daemon_in(&hb, &s.0, "SRVONE", announcer);
    let two = daemon_in(&he, &s.0, "SRVTWO", announcer);
    one.wait_names(&["SRVONE<00>"]);
    two.wait_names(&["SRVTWO<00>"]);
    let dlog = || format!("DMB log tail:\n{}", tail(&dmb.log_text(), 80));
    let llog = || format!("LMB log tail:\n{}", tail(&lmb.log_text(), 80));
    // Both masters of their subnets, each hearing its announcer.
    wait_browse(
        &dmb,
        "RUSTA master, SRVONE heard",
        90,
        |v| role(v) == "master" && server(v, "SRVONE").is_some(),
        llog,
    );
    wait_browse(
        &lmb,
        "RUSTD master, SRVTWO heard",
        90,
        |v| role(v) == "master" && server(v, "SRVTWO").is_some(),
        dlog,
    );
    let ready = t0.elapsed();
    // The LMB announces itself to the DMB and pulls the DMB's list at once.
    wait_browse(
        &dmb,
        "RUSTD a local master",
        60,
        |v| has_local_master(v, "RUSTD"),
        llog,
    );
    let v = wait_browse(
        &lmb,
        "the DMB's list at the LMB",
        60,
        |v| synced(v, "SRVONE", "RUSTA") && synced(v, "RUSTA", "RUSTA"),
        dlog,
    );
    assert_eq!(
        v["interfaces"][0]["domain_master"].as_str(),
        Some("RUSTA"),
        "{v:#}"
    );
    assert!(
        server(&v, "SRVTWO").unwrap()["synced_from"].is_null(),
        "{v:#}"
    );
    let down = t0.elapsed();
    // The DMB pulls the LMB's local list a minute after its first announcement.
    let v = wait_browse(
        &dmb,
        "the LMB's list at the DMB",
        120,
        |v| synced(v, "SRVTWO", "RUSTD") && synced(v, "RUSTD", "RUSTD"),
        llog,
    );
    assert!(
        server(&v, "SRVONE").unwrap()["synced_from"].is_null(),
        "{v:#}"
    );
    // Nothing went over RAP: neither side runs a responder on 139.
    assert!(hd.tcp_refused(ha.addr(), 139).unwrap());
    assert!(ha.tcp_refused(hd.addr(), 139).unwrap());
    eprintln!(
        "timings: masters + announcers {} ms; DMB list at the LMB {} ms; LMB list at the DMB \
         {} ms (total)",
        ready.as_millis(),
        down.as_millis(),
        t0.elapsed().as_millis()
    );
}

/// Drop UDP 137/138 from `peer` in `host`'s namespace (input and output), or lift the
/// drop. Broadcasts are covered by the input rule on each side.
fn partition(host: &Host, peer: Ipv4Addr, on: bool, dir: &Path) {
    let script = if on {
        format!(
            "table inet nbpart {{\n\
             \x20 chain in {{ type filter hook input priority 0; policy accept;\n\
             \x20   ip saddr {peer} udp dport {{ 137, 138 }} drop\n  }}\n\
             \x20 chain out {{ type filter hook output priority 0; policy accept;\n\
             \x20   ip daddr {peer} udp dport {{ 137, 138 }} drop\n  }}\n}}\n"
        )
    } else {
        "delete table inet nbpart\n".to_owned()
    };
    let file = dir.join(format!("nft-{}-{on}.nft", host.name()));
    std::fs::write(&file, script).unwrap();
    let out = host.cmd("nft").arg("-f").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "nft in {}: {}",
        host.name(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which of `hosts` answer a unicast NAME QUERY for TESTGROUP<1D> (nmblookup -U from
/// `from`). Not `nmblookup -M`: for a unique name its broadcast query stops at the
/// first answer.
fn masters(from: &Host, hosts: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    hosts
        .iter()
        .copied()
        .filter(|h| {
            let r = nmblookup(from, ["-U", &h.to_string(), "TESTGROUP#1d"]).unwrap();
            r.addresses("TESTGROUP").contains(h)
        })
        .collect()
}

/// `ip.src|ip.dst|nbdgm.type|nbdgm.destination_name|browser.command|browser.reset_cmd`
/// of every browser frame in a capture.
fn decode_browser(path: &Path) -> Vec<Vec<String>> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", "browser", "-T", "fields", "-E", "separator=|"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "nbdgm.type"])
        .args(["-e", "nbdgm.destination_name", "-e", "browser.command"])
        .args(["-e", "browser.reset_cmd"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// A tshark hex field (`0x0e`, `0x0000000e`) equals `n`.
fn hex_is(field: &str, n: u32) -> bool {
    field
        .strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        == Some(n)
}

/// Test 4: nmbd (os level 65) and nbdgm (os level 32) on one subnet, partitioned by nftables:
/// each becomes local master browser. Joined again, an AnnouncementRequest makes each
/// hear the other's LocalMasterAnnouncement: nbdgm sends, as Samba does, a
/// ResetStateRequest (0x02) to `__SAMBA__<20>` at nmbd's address and a RequestElection
/// (seen on the wire), and afterwards exactly one master remains: nmbd, the stronger.
#[test]
fn master_conflict_with_nmbd() {
    if !require_tools_or_skip("master_conflict_with_nmbd", &["nft"]) {
        return;
    }
    let t0 = Instant::now();
    let s = Scratch::new("dmb-conflict");
    let lab = Lab::new(LabSpec::one_subnet()).expect("lab");
    let ha = lab.add_host("a", "198.51.100.10/24").unwrap();
    let hb = lab.add_host("b", "198.51.100.20/24").unwrap();
    let hc = lab.add_host("c", "198.51.100.30/24").unwrap();
    partition(&ha, hb.addr(), true, &s.0);
    partition(&hb, ha.addr(), true, &s.0);
    let cap = s.0.join("conflict.pcap");
    let shark = Tshark::start(&hb, "udp port 138", &cap).expect("tshark");
    let nmbd = Nmbd::start(&ha, NmbdOptions::default()).expect("nmbd");
    let ours = daemon_in(
        &hb,
        &s.0,
        "RUSTB",
        "[browser]\nannounce = true\nlocal_master = true\npreferred_master = true\n\
         os_level = 32\n",
    );
    ours.wait_names(&["RUSTB<00>"]);
    let nlog = || format!("nmbd log digest:\n{}", nmbd_digest(&nmbd.log()));
    wait_browse(
        &ours,
        "RUSTB master while partitioned",
        60,
        |v| role(v) == "master",
        nlog,
    );
    nmbd.wait_local_master(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", nmbd_digest(&nmbd.log())));
    // Two masters: both answer for TESTGROUP<1D>.
    let both = masters(&hc, &[ha.addr(), hb.addr()]);
    assert_eq!(
        both,
        vec![ha.addr(), hb.addr()],
        "two masters while partitioned"
    );
    let split_at = t0.elapsed();

    partition(&ha, hb.addr(), false, &s.0);
    partition(&hb, ha.addr(), false, &s.0);
    let req = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
        reserved: 0,
        response_name: "PROBEC".into(),
        trailing: vec![],
    });
    let dg = browse_datagram(
        &req,
        hc.addr(),
        "PROBEC",
        Name::new("TESTGROUP", 0x1E).unwrap(),
    );
    let (src, bcast) = (hc.addr(), hc.broadcast());
    hc.in_netns(move || {
        let sock = UdpSocket::bind((src, 138)).unwrap();
        sock.set_broadcast(true).unwrap();
        sock.send_to(&dg, (bcast, 138)).unwrap();
    })
    .unwrap();
    let joined = Instant::now();

    // One master remains, the stronger nmbd: only it answers for <1D>, our role is not
    // master and our list names SAMBAA as master. Stable over three lookups.
    let until = Instant::now() + Duration::from_secs(120);
    let mut stable = 0;
    while stable < 3 {
        let m = masters(&hc, &[ha.addr(), hb.addr()]);
        let v = browse_json(&ours);
        let ok = m == vec![ha.addr()]
            && role(&v) != "master"
            && v["interfaces"][0]["master"].as_str() == Some("SAMBAA");
        stable = if ok { stable + 1 } else { 0 };
        assert!(
            Instant::now() < until,
            "no single master: TESTGROUP<1D> held by {m:?}; our list {v:#}\ndaemon log tail:\n{}\n{}",
            tail(&ours.log_text(), 80),
            nlog()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let settled = joined.elapsed();

    let path = shark.stop().expect("tshark stop");
    let rows = decode_browser(&path);
    let dump = rows
        .iter()
        .map(|r| r.join("|"))
        .collect::<Vec<_>>()
        .join("\n");
    let from_us = |cmd: u32| -> Vec<&Vec<String>> {
        rows.iter()
            .filter(|r| r.len() >= 6 && r[0] == "198.51.100.20" && hex_is(&r[4], cmd))
            .collect()
    };
    // ResetStateRequest (0x0e), DIRECT_UNIQUE (0x10 = 16) to __SAMBA__<20> at nmbd,
    // flags 0x02, as nmbd sends it (SAMBA-LAB G10).
    let resets = from_us(0x0e);
    assert!(
        resets.iter().any(|r| r[1] == "198.51.100.10"
            && r[2] == "16"
            && r[3].starts_with("__SAMBA__")
            && r[3].contains("<20>")
            && hex_is(&r[5], 0x02)),
        "no ResetStateRequest to __SAMBA__<20> at nmbd:\n{dump}"
    );
    // A RequestElection from us after that ResetStateRequest (the ones before it are
    // our start-up election while partitioned).
    let first_reset = rows
        .iter()
        .position(|r| r.len() >= 6 && r[0] == "198.51.100.20" && hex_is(&r[4], 0x0e))
        .unwrap();
    let elections: Vec<&Vec<String>> = rows[first_reset..]
        .iter()
        .filter(|r| r.len() >= 6 && r[0] == "198.51.100.20" && hex_is(&r[4], 0x08))
        .collect();
    assert!(
        !elections.is_empty(),
        "no RequestElection from us after the ResetStateRequest:\n{dump}"
    );
    eprintln!(
        "timings: both masters while partitioned at {} ms; joined → one master (stable) {} ms; \
         {} ResetStateRequest, {} RequestElection from us; total {} ms",
        split_at.as_millis(),
        settled.as_millis(),
        resets.len(),
        elections.len(),
        t0.elapsed().as_millis()
    );
}
