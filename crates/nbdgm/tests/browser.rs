//! The browser service of `nbdgm serve` end to end on loopback (127.0.0.0/8, one
//! broadcast domain, unprivileged ports): three daemons elect the one with the highest
//! OS level (MS-BRWS §3.3.5.8), announce themselves and list each other, the master
//! answers GetBackupListRequest (§3.3.5.2), a shutdown announcement removes a server
//! (§3.2.7), `nbdgm browse` and the HTTP endpoint show the list, ResetStateRequest is
//! refused by default and election floods are capped.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use nbdgm_client::proto::BrowseResult;
use nbdgm_wire::browser::{BrowserFrame, GetBackupListRequest, RequestElection};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::Name;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 6, d)
}

fn spec<'a>(
    dir: &'a std::path::Path,
    tag: &'a str,
    name: &'a str,
    addr: Ipv4Addr,
    ports: (u16, u16),
    extra: &'a str,
) -> DaemonSpec<'a> {
    DaemonSpec::loopback(dir, tag, name, addr, ports, extra)
}

fn browser_toml(os_level: u8, preferred: bool, more: &str) -> String {
    format!(
        "[browser]\nannounce = true\nlocal_master = true\nos_level = {os_level}\n\
         preferred_master = {preferred}\ncomment = \"loopback {os_level}\"\n{more}\n"
    )
}

fn browse(d: &Daemon) -> BrowseResult {
    d.client().browse(None).expect("browse")
}

/// Poll the daemon's browse list until `ok` holds (bounded).
fn wait_list(
    d: &Daemon,
    what: &str,
    secs: u64,
    ok: impl Fn(&BrowseResult) -> bool,
) -> BrowseResult {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = browse(d);
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < until,
            "{what}: not within {secs} s; list: {r:#?}\nlog:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn has_server(r: &BrowseResult, name: &str) -> bool {
    r.interfaces[0].servers.iter().any(|s| s.name == name)
}

/// A browser frame in a DIRECT_GROUP datagram from `src_name` at `src` to `dest`.
fn datagram(src: SocketAddrV4, src_name: &str, dest: Name, frame: &BrowserFrame) -> Vec<u8> {
    let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
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
        id: 0x4242,
        source_ip: *src.ip(),
        source_port: src.port(),
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

#[test]
fn three_daemons_elect_list_answer_and_forget() {
    let s = Scratch::new("browser-three");
    let ports = ports();
    // C is the preferred master and starts the election; B has the highest OS level and
    // must win; A is weakest.
    let ta = browser_toml(10, false, "");
    let tb = browser_toml(50, false, "");
    let tc = browser_toml(30, true, "");
    let mut a = Daemon::start(spec(&s.0, "a", "BRWA", ip(1), ports, &ta));
    let b = Daemon::start(spec(&s.0, "b", "BRWB", ip(2), ports, &tb));
    let c = Daemon::start(spec(&s.0, "c", "BRWC", ip(3), ports, &tc));
    for d in [&a, &b, &c] {
        d.wait_names(&[]);
    }

    // One master, the strongest, known to all three.
    for d in [&a, &b, &c] {
        wait_list(d, "master BRWB", 40, |r| {
            r.interfaces[0].master.as_deref() == Some("BRWB")
        });
    }
    assert_eq!(browse(&b).interfaces[0].role, "master");
    for d in [&a, &c] {
        let role = browse(d).interfaces[0].role.clone();
        assert!(role == "potential" || role == "backup", "{role}");
    }
    // B holds TESTGROUP<1D> and MSBROWSE; A and C do not.
    let names: Vec<String> = b
        .client()
        .names()
        .unwrap()
        .interfaces
        .iter()
        .flat_map(|i| i.names.iter().map(|n| n.name.clone()))
        .collect();
    assert!(names.iter().any(|n| n == "TESTGROUP<1d>"), "{names:?}");
    let a_names: Vec<String> = a
        .client()
        .names()
        .unwrap()
        .interfaces
        .iter()
        .flat_map(|i| i.names.iter().map(|n| n.name.clone()))
        .collect();
    assert!(!a_names.iter().any(|n| n == "TESTGROUP<1d>"), "{a_names:?}");

    // Everybody's list has all three servers, with the master's type bits on B.
    let r = wait_list(&a, "three servers on A", 40, |r| {
        ["BRWA", "BRWB", "BRWC"].iter().all(|n| has_server(r, n))
    });
    let sb = r.interfaces[0]
        .servers
        .iter()
        .find(|s| s.name == "BRWB")
        .unwrap();
    assert!(sb.types.iter().any(|t| t == "MASTER_BROWSER"), "{sb:?}");
    assert_eq!(sb.comment, "loopback 50");
    assert_eq!(sb.workgroup, "TESTGROUP");
    let own = r.interfaces[0]
        .servers
        .iter()
        .find(|s| s.name == "BRWA")
        .unwrap();
    assert!(own.local, "{own:?}");

    // GetBackupListRequest to TESTGROUP<1D>: answered by B only, to our UDP source,
    // token echoed, B in the list.
    let sock = UdpSocket::bind((ip(9), 0)).unwrap();
    sock.set_broadcast(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let me = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let req = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 4,
        token: 0x0102_0304,
        ..Default::default()
    });
    let bytes = datagram(me, "CLIENT", Name::new("TESTGROUP", 0x1D).unwrap(), &req);
    sock.send_to(&bytes, (Ipv4Addr::new(127, 255, 255, 255), ports.1))
        .unwrap();
    let mut answers = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            answers.push((from, buf[..n].to_vec()));
        }
    }
    assert_eq!(answers.len(), 1, "exactly one answer (the master's)");
    let (from, bytes) = &answers[0];
    assert_eq!(from.ip(), std::net::IpAddr::V4(ip(2)));
    let d = Datagram::parse(bytes).unwrap();
    assert_eq!(d.msg_type, MsgType::DirectUnique);
    let Body::Data {
        body:
            DataBody::Names {
                destination_name,
                user_data,
                ..
            },
        ..
    } = d.body
    else {
        panic!("{d:?}")
    };
    assert_eq!(destination_name.to_string(), "CLIENT<00>");
    let m = MailslotWrite::parse(&user_data).unwrap();
    match BrowserFrame::parse(&m.data).unwrap() {
        BrowserFrame::GetBackupListResponse(r) => {
            assert_eq!(r.token, 0x0102_0304);
            assert!(r.servers.iter().any(|s| s == "BRWB"), "{r:?}");
        }
        f => panic!("{f:?}"),
    }

    // `nbdgm browse` through the daemon: text and JSON.
    let out = run(&[
        "browse",
        "--daemon",
        "--workgroup",
        "testgroup",
        "--format",
        "json",
        "--api-socket",
        c.socket.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: BrowseResult = serde_json::from_slice(&out.stdout).unwrap();
    assert!(has_server(&v, "BRWB"));
    let out = run(&[
        "browse",
        "--daemon",
        "--api-socket",
        c.socket.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("local master browser BRWB"), "{text}");
    assert!(text.contains("loopback 10"), "{text}");
    // A workgroup nobody announces into: empty list, exit 1.
    let out = run(&[
        "browse",
        "--daemon",
        "--workgroup",
        "NOBODY",
        "--api-socket",
        c.socket.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));

    // A shuts down: its server-type-0 announcement removes it from the others' lists
    // at once (long before 3 x periodicity).
    a.stop();
    wait_list(&c, "A gone from C", 10, |r| !has_server(r, "BRWA"));
}

#[test]
fn http_endpoint_reset_refusal_and_election_cap() {
    let s = Scratch::new("browser-http");
    let ports = ports();
    let http_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let extra = browser_toml(
        40,
        true,
        &format!("http = \"127.0.0.1:{http_port}\"\nelections_per_minute = 5"),
    );
    let d = Daemon::start(spec(&s.0, "h", "BRWH", ip(20), ports, &extra));
    wait_list(&d, "master", 40, |r| r.interfaces[0].role == "master");

    // HTTP: GET /api/browse is the same list as the API.
    let get = |path: &str| {
        let mut t = std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            t,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut s = String::new();
        t.read_to_string(&mut s).unwrap();
        s
    };
    let resp = get("/api/browse?workgroup=TESTGROUP");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let v: BrowseResult = serde_json::from_str(body).unwrap();
    assert_eq!(v.interfaces[0].role, "master");
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(get("/nope").starts_with("HTTP/1.1 404"));

    // ResetStateRequest (clear everything, stop being master) is refused and counted.
    let sock = UdpSocket::bind((ip(21), 0)).unwrap();
    let me = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let reset = BrowserFrame::ResetStateRequest(nbdgm_wire::browser::ResetStateRequest {
        reset_type: 0x03,
        ..Default::default()
    });
    let bytes = datagram(me, "ATTACKER", Name::new("BRWH", 0).unwrap(), &reset);
    sock.send_to(&bytes, (ip(20), ports.1)).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let st = d.stats();
        if counter(&st, "browser.refused_reset_state") >= 1 {
            break;
        }
        assert!(Instant::now() < until, "reset not refused: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(browse(&d).interfaces[0].role, "master", "still master");

    // 50 weak RequestElections in a burst: at most the cap is processed, the rest counted.
    for i in 0..50u32 {
        let e = BrowserFrame::RequestElection(RequestElection {
            election_version: 1,
            criteria: 0x0101_0F00,
            uptime_ms: i,
            server_name: format!("WEAK{i}"),
            ..Default::default()
        });
        let bytes = datagram(me, "ATTACKER", Name::new("TESTGROUP", 0x1E).unwrap(), &e);
        sock.send_to(&bytes, (ip(20), ports.1)).unwrap();
    }
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let st = d.stats();
        if counter(&st, "browser.refused_election_rate") >= 40 {
            break;
        }
        assert!(Instant::now() < until, "election cap: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        browse(&d).interfaces[0].role,
        "master",
        "weak elections change nothing"
    );
}

/// HostAnnouncements to a remote subnet by unicast (`remote_announce`), and `nbdgm browse
/// --standalone` building the list from announcements it hears, without a daemon.
#[test]
fn remote_announce_and_standalone_browse() {
    let s = Scratch::new("browser-remote");
    let ports = ports();
    // The "remote subnet" is a socket of ours; the daemon sends to its port via
    // the datagram port, so bind it on another loopback address.
    let remote = UdpSocket::bind((ip(41), ports.1)).unwrap();
    remote
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let extra = format!(
        "[browser]\nannounce = true\ncomment = \"remote\"\n\
         [[browser.remote_announce]]\naddress = \"{}\"\nworkgroup = \"FARAWAY\"\n",
        ip(41)
    );
    let d = Daemon::start(spec(&s.0, "r", "BRWR", ip(40), ports, &extra));
    d.wait_names(&["BRWR<00>"]);
    let until = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    let got = loop {
        assert!(
            Instant::now() < until,
            "no remote announcement\n{}",
            d.log_text()
        );
        let Ok((n, from)) = remote.recv_from(&mut buf) else {
            continue;
        };
        let dg = Datagram::parse(&buf[..n]).unwrap();
        if let Body::Data {
            body:
                DataBody::Names {
                    destination_name,
                    user_data,
                    ..
                },
            ..
        } = dg.body
        {
            break (from, dg.msg_type, destination_name, user_data);
        }
    };
    assert_eq!(got.0.ip(), std::net::IpAddr::V4(ip(40)));
    assert_eq!(got.1, MsgType::DirectGroup);
    assert_eq!(got.2.to_string(), "FARAWAY<1d>");
    let m = MailslotWrite::parse(&got.3).unwrap();
    match BrowserFrame::parse(&m.data).unwrap() {
        BrowserFrame::HostAnnouncement(a) => {
            assert_eq!(a.server_name, "BRWR");
            assert_eq!(a.comment, "remote");
        }
        f => panic!("{f:?}"),
    }
    drop(d);

    // Standalone: `browse` listens on its own socket while a "server" announces.
    let (_, port) = common::ports();
    let child = bin()
        .args([
            "browse",
            "--standalone",
            "--interface",
            &format!("{}/8", ip(50)),
            "--bind",
            &ip(50).to_string(),
            "--port",
            &port.to_string(),
            "--wait",
            "3",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let srv = UdpSocket::bind((ip(51), 0)).unwrap();
    let me = match srv.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let ann = BrowserFrame::HostAnnouncement(nbdgm_wire::browser::Announcement {
        periodicity_ms: 60_000,
        server_name: "FILER".into(),
        os_major: 10,
        server_type: 0x0000_9003,
        comment: "standalone heard".into(),
        ..Default::default()
    });
    let bytes = datagram(me, "FILER", Name::new("OFFICE", 0x1D).unwrap(), &ann);
    srv.send_to(&bytes, (ip(50), port)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: BrowseResult = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v.interfaces[0].servers;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (
            e[0].name.as_str(),
            e[0].workgroup.as_str(),
            e[0].comment.as_str(),
            e[0].os_version.as_str()
        ),
        ("FILER", "OFFICE", "standalone heard", "10.0")
    );
    assert!(
        e[0].types.iter().any(|t| t == "SERVER_NT"),
        "{:?}",
        e[0].types
    );
}

/// A list larger than one API line: `browse` pages the servers (`servers_total`,
/// `offset`, `limit`), the client joins the pages, and the cap holds.
#[test]
fn large_browse_list_is_paged_and_capped() {
    let s = Scratch::new("browser-paged");
    let ports = ports();
    let extra = "[browser]\nmax_servers = 1500\n\
                 [limits]\nrx_per_source = { rate = 100000.0, burst = 100000 }\n";
    let d = Daemon::start(spec(&s.0, "p", "BRWP", ip(60), ports, extra));
    d.wait_names(&["BRWP<00>"]);
    let sock = UdpSocket::bind((ip(61), 0)).unwrap();
    let me = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    for i in 0..1600u32 {
        let ann = BrowserFrame::HostAnnouncement(nbdgm_wire::browser::Announcement {
            periodicity_ms: 720_000,
            server_name: format!("SRV{i:05}"),
            os_major: 6,
            os_minor: 1,
            server_type: 0x0000_1003,
            comment: "a comment of forty bytes to pad the JSON".into(),
            ..Default::default()
        });
        let bytes = datagram(me, "SRV", Name::new("TESTGROUP", 0x1D).unwrap(), &ann);
        sock.send_to(&bytes, (ip(60), ports.1)).unwrap();
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let st = d.stats();
        if counter(&st, "browser.servers") >= 1500 {
            assert!(
                counter(&st, "browser.refused_server_list_full") >= 100,
                "{st}"
            );
            break;
        }
        assert!(Instant::now() < until, "{st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // One raw page: the default size, and the total.
    let mut c = d.client();
    let v = c
        .request(nbdgm_client::proto::Op::Browse {
            workgroup: None,
            offset: None,
            limit: None,
            local: false,
        })
        .unwrap();
    let i = &v["interfaces"][0];
    assert_eq!(
        i["servers"].as_array().unwrap().len(),
        nbdgm_client::proto::BROWSE_PAGE
    );
    assert_eq!(i["servers_total"], 1500);
    // The client joins every page: 1500 distinct servers.
    let r = c.browse(Some("testgroup")).unwrap();
    let names: std::collections::BTreeSet<&str> = r.interfaces[0]
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names.len(), 1500);
    // And the CLI prints them all.
    let out = run(&[
        "browse",
        "--daemon",
        "--format",
        "json",
        "--api-socket",
        d.socket.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: BrowseResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.interfaces[0].servers.len(), 1500);
}
