//! Unit tests of the probe: options, states, evidence, packets, reports, verdicts.

use super::evidence::port_result;
use super::udp_name::{judge_ns, node_status_request};
use super::*;
use crate::target::TargetSet;
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::browser::GetBackupListResponse;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::nbns::{self, NodeStatus, Packet, RData, TYPE_NBSTAT};
use nbdgm_wire::nbns::{NodeName, Statistics, CLASS_IN};
use nbdgm_wire::Name;
use proptest::prelude::*;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

fn icmp(t: u8, code: u8) -> Evidence {
    Evidence::Icmp(IcmpError {
        origin: SO_EE_ORIGIN_ICMP,
        icmp_type: t,
        code,
        errno: 0,
        from: Some(Ipv4Addr::new(198, 51, 100, 10)),
        local: Some(Ipv4Addr::new(198, 51, 100, 20)),
    })
}

fn silence() -> Evidence {
    Evidence::Silence {
        attempts: 3,
        waited_ms: 7000,
        sent: "probes".into(),
    }
}

#[test]
fn state_decisions_from_evidence() {
    use PortState::*;
    let udp = Port::Dgm138Udp;
    let cases: Vec<(Port, Evidence, bool, PortState)> = vec![
        (udp, Evidence::Answer("x".into()), false, Open),
        (udp, icmp(3, 3), true, Closed),
        (udp, icmp(3, 13), true, Filtered),
        (udp, icmp(3, 10), false, Filtered),
        (udp, icmp(3, 9), false, Filtered),
        (udp, icmp(3, 1), false, HostDown),
        (udp, icmp(3, 0), false, HostDown),
        (udp, icmp(3, 4), false, Error),
        (udp, icmp(11, 0), false, Error),
        (udp, silence(), true, OpenFiltered),
        (udp, silence(), false, OpenFiltered),
        (Port::Ns137Udp, silence(), true, OpenFiltered),
        (Port::Smb445Tcp, silence(), false, Filtered),
        (Port::Smb445Tcp, Evidence::Reset, false, Closed),
        (Port::Smb445Tcp, icmp(3, 13), false, Filtered),
        (Port::Smb445Tcp, icmp(3, 1), false, HostDown),
        (
            udp,
            Evidence::Errno {
                errno: nix::libc::ECONNREFUSED,
                during: "receive".into(),
            },
            false,
            Closed,
        ),
        (
            udp,
            Evidence::Errno {
                errno: nix::libc::EHOSTUNREACH,
                during: String::new(),
            },
            false,
            HostDown,
        ),
        (
            udp,
            Evidence::Errno {
                errno: nix::libc::ENETUNREACH,
                during: "send".into(),
            },
            false,
            HostDown,
        ),
        (
            udp,
            Evidence::Errno {
                errno: nix::libc::EPERM,
                during: "send".into(),
            },
            false,
            Filtered,
        ),
        (
            udp,
            Evidence::Errno {
                errno: nix::libc::EACCES,
                during: "send".into(),
            },
            false,
            Error,
        ),
        (udp, Evidence::Failed("bad".into()), false, Error),
    ];
    for (port, ev, ns, want) in cases {
        let (got, text) = decide(port, &ev, ns);
        assert_eq!(got, want, "{port} {ev:?} → {text}");
        assert!(!text.is_empty());
    }
    let (_, t) = decide(udp, &icmp(3, 3), false);
    assert_eq!(
        t,
        "ICMP type 3 code 3 (port unreachable) from 198.51.100.10"
    );
    let mut arp = IcmpError {
        origin: SO_EE_ORIGIN_ICMP,
        icmp_type: 3,
        code: 1,
        errno: nix::libc::EHOSTUNREACH,
        from: Some(Ipv4Addr::new(198, 51, 100, 20)),
        local: Some(Ipv4Addr::new(198, 51, 100, 20)),
    };
    assert!(arp.to_string().contains("no ARP answer"));
    arp.origin = SO_EE_ORIGIN_LOCAL;
    assert_eq!(decide(udp, &Evidence::Icmp(arp), false).0, HostDown);
}

#[test]
fn port_lists() {
    assert_eq!(
        Port::parse_list("137,138/udp,138/tcp,139,445").unwrap(),
        Port::ALL
    );
    assert_eq!(Port::parse_list("all").unwrap(), Port::ALL);
    assert_eq!(
        Port::parse_list("445, 138").unwrap(),
        vec![Port::Dgm138Udp, Port::Dgm138Tcp, Port::Smb445Tcp]
    );
    assert_eq!(
        Port::parse_list("138/UDP,138/udp").unwrap(),
        vec![Port::Dgm138Udp]
    );
    for bad in ["", "137,", "80", "137/tcp", "139/udp", "x"] {
        assert!(Port::parse_list(bad).is_err(), "{bad:?}");
    }
    assert!(Port::parse_list(&"137,".repeat(100)).is_err());
}

#[test]
fn options_are_bounded() {
    let d = ProbeOptions::default();
    assert_eq!(d.ports, Port::ALL);
    assert_eq!(d.timeout, Duration::from_secs(1));
    assert_eq!((d.retries, d.rate, d.concurrency), (2, DEFAULT_RATE, 64));
    assert_eq!(d.total_wait(), Duration::from_secs(7));
    let wild = ProbeOptions {
        ports: vec![Port::Smb445Tcp, Port::Ns137Udp, Port::Smb445Tcp],
        timeout: Duration::from_secs(3600),
        retries: 1000,
        rate: 5,
        concurrency: 0,
        workgroup: None,
    }
    .bounded();
    assert_eq!(wild.ports, vec![Port::Ns137Udp, Port::Smb445Tcp]);
    assert_eq!(wild.timeout, MAX_TIMEOUT);
    assert_eq!(wild.retries, MAX_RETRIES);
    assert_eq!(wild.concurrency, 1);
    assert!(wild.window(100) <= MAX_WINDOW);
    assert!(wild.total_wait() <= MAX_WINDOW * (MAX_RETRIES + 1));
}

#[test]
fn scope_refuses_other_addresses() {
    let s = Scope::new(TargetSet::single(Ipv4Addr::new(198, 51, 100, 10)));
    assert!(s.check(Ipv4Addr::new(198, 51, 100, 10)).is_ok());
    assert!(s.check(Ipv4Addr::new(198, 51, 100, 11)).is_err());
    let e = s
        .udp(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 255), 138))
        .err()
        .expect("refused");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(s
        .tcp_connect(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 445))
        .is_err());
}

fn status() -> NodeStatus {
    let n = |name: &str, suffix: u8, group: bool| NodeName {
        name: Name::new(name, suffix).unwrap(),
        flags: nbns::NAME_ACT | if group { nbns::NB_GROUP } else { 0 },
    };
    NodeStatus {
        names: vec![
            n("SAMBAA", 0x00, false),
            n("SAMBAA", 0x03, false),
            n("SAMBAA", 0x20, false),
            NodeName {
                name: Name::msbrowse(),
                flags: nbns::NB_GROUP | nbns::NAME_ACT,
            },
            n("TESTGROUP", 0x00, true),
            n("TESTGROUP", 0x1D, false),
            n("TESTGROUP", 0x1E, true),
            n("TESTGROUP", 0x1C, true),
            n("TESTGROUP", 0x1B, false),
        ],
        statistics: Some(Statistics {
            unit_id: [0x00, 0x15, 0x5d, 0x01, 0x02, 0xff],
            ..Statistics::default()
        }),
        extra: vec![],
    }
}

#[test]
fn host_info_names_roles_mac() {
    let i = host_info(&status());
    assert_eq!(i.workgroup.as_deref(), Some("TESTGROUP"));
    assert_eq!(
        i.roles,
        vec!["LMB", "DMB", "DC", "browser", "file-server", "messenger"]
    );
    assert_eq!(i.mac.as_deref(), Some("00:15:5d:01:02:ff"));
    assert_eq!(i.names[0].name, "SAMBAA<00>");
    assert_eq!(i.names[3].name, "<01><02>__MSBROWSE__<02><01>");
    assert!(i.names[3].group);
    // A workstation: no roles but messenger, no workgroup when only MSBROWSE is a group.
    let ws = NodeStatus {
        names: vec![
            NodeName {
                name: Name::new("PC", 0x03).unwrap(),
                flags: 0,
            },
            NodeName {
                name: Name::msbrowse(),
                flags: nbns::NB_GROUP,
            },
        ],
        statistics: None,
        extra: vec![],
    };
    let i = host_info(&ws);
    assert_eq!(i.workgroup, None);
    assert_eq!(i.roles, vec!["browser", "messenger"]);
    assert_eq!(i.mac, None);
}

#[test]
fn node_status_answer_is_judged() {
    let id = 0x1234;
    let resp = Packet {
        id,
        flags: 0x8400,
        questions: vec![],
        answers: vec![nbns::Record {
            name: Name::wildcard(),
            rr_type: TYPE_NBSTAT,
            rr_class: CLASS_IN,
            ttl: 0,
            rdata: RData::NodeStatus(status()),
        }],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap();
    let (text, info) = judge_ns(id, &resp);
    assert!(text.starts_with("NODE STATUS response: 9 name(s), workgroup TESTGROUP"));
    assert!(info.is_some());
    let (text, info) = judge_ns(id + 1, &resp);
    assert!(
        info.is_none() && text.contains("name-service packet"),
        "{text}"
    );
    let (text, _) = judge_ns(id, b"hello");
    assert_eq!(text, "5-byte UDP answer (not a name-service packet)");
    let req = node_status_request(7).to_bytes().unwrap();
    let p = Packet::parse(&req).unwrap();
    assert_eq!(p.questions[0].qtype, TYPE_NBSTAT);
    assert!(p.questions[0].name.is_wildcard());
    assert!(!p.is_response());
}

#[test]
fn backup_list_request_and_response() {
    let src = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 20), 40000);
    let b = backup_list_request("testgroup", 77, 9, src).unwrap();
    let d = Datagram::parse(&b).unwrap();
    assert_eq!(d.msg_type, MsgType::DirectGroup);
    assert_eq!((d.source_ip, d.source_port), (*src.ip(), 40000));
    assert_eq!(display_name(d.destination_name().unwrap()), "TESTGROUP<1D>");
    assert_eq!(display_name(d.source_name().unwrap()), "NBDGMPROBE<00>");
    let ms = MailslotWrite::parse(d.user_data().unwrap()).unwrap();
    assert!(ms.is(mailslot::BROWSE));
    match BrowserFrame::parse(&ms.data).unwrap() {
        BrowserFrame::GetBackupListRequest(r) => assert_eq!((r.count, r.token), (4, 77)),
        other => panic!("{other:?}"),
    }
    assert!(backup_list_request("A_NAME_LONGER_THAN_15", 1, 1, src).is_err());

    // nmbd's answer (SAMBA-LAB: DIRECT_UNIQUE SAMBAA<00> → requester<00>).
    let mut data = Vec::new();
    BrowserFrame::GetBackupListResponse(GetBackupListResponse {
        count: 1,
        token: 77,
        servers: vec!["SAMBAA".into()],
        ..GetBackupListResponse::default()
    })
    .emit(&mut data)
    .unwrap();
    let answer = Datagram::data(
        MsgType::DirectUnique,
        NodeType::M,
        1,
        (Ipv4Addr::new(198, 51, 100, 10), 138),
        Name::new("SAMBAA", 0).unwrap(),
        Name::new(PROBE_NAME, 0).unwrap(),
        MailslotWrite::new(mailslot::BROWSE, data)
            .to_bytes()
            .unwrap(),
    )
    .to_bytes()
    .unwrap();
    assert_eq!(
        describe_dgm_answer(&answer),
        "GetBackupListResponse from SAMBAA<00>: 1 server(s): SAMBAA"
    );
    assert_eq!(
        describe_dgm_answer(&[1, 2, 3]),
        "3-byte UDP answer (not a NetBIOS datagram)"
    );
    assert!(describe_dgm_answer(&b).starts_with("browser frame GetBackupListRequest"));
}

#[test]
fn session_request_layout() {
    let called = Name::new("*SMBSERVER", 0x20).unwrap();
    let calling = Name::new(PROBE_NAME, 0).unwrap();
    let r = session_request(&called, &calling);
    assert_eq!(r.len(), 72);
    assert_eq!(&r[..4], &[0x81, 0, 0, 68]);
    // Second-level encoding, no scope: 0x20, 32 characters, 0x00 (RFC 1002 §4.1).
    assert_eq!(r[4], 0x20);
    assert_eq!(r[37], 0);
    assert_eq!(&r[5..7], b"CK"); // '*' = 0x2A → 'C' 'K'
    assert_eq!(&r[35..37], b"CA"); // suffix 0x20
    assert_eq!(r[38], 0x20);
    assert_eq!(r[71], 0);
    assert!(describe_session_answer([0x82, 0, 0, 0], &[]).starts_with("positive"));
    assert_eq!(
        describe_session_answer([0x83, 0, 0, 1], &[0x82]),
        "negative session response (0x83), error 0x82 (called name not present)"
    );
    assert!(
        describe_session_answer([0x84, 0, 0, 6], &[198, 51, 100, 10, 0, 139])
            .ends_with("198.51.100.10:139")
    );
    assert!(describe_session_answer([0x00, 0, 0, 0], &[]).contains("0x00"));
}

fn sample() -> Vec<HostResult> {
    vec![
        HostResult {
            address: Ipv4Addr::new(198, 51, 100, 10),
            hostname: Some("samba.example".into()),
            ports: vec![
                PortResult {
                    port: Port::Ns137Udp,
                    state: PortState::Open,
                    evidence: "NODE STATUS response: 7 name(s), workgroup \"T\", x".into(),
                    rtt_ms: Some(0.5),
                    attempts: 1,
                },
                PortResult {
                    port: Port::Dgm138Udp,
                    state: PortState::LikelyOpen,
                    evidence: "no answer".into(),
                    rtt_ms: None,
                    attempts: 3,
                },
            ],
            info: Some(host_info(&status())),
            duration_ms: 12.0,
        },
        HostResult {
            address: Ipv4Addr::new(198, 51, 100, 11),
            hostname: None,
            ports: vec![PortResult {
                port: Port::Dgm138Udp,
                state: PortState::Closed,
                evidence: "ICMP type 3 code 3 (port unreachable) from 198.51.100.11".into(),
                rtt_ms: Some(0.2),
                attempts: 1,
            }],
            info: None,
            duration_ms: 1.0,
        },
    ]
}

#[test]
fn json_shape() {
    let v: serde_json::Value = serde_json::from_str(&to_json(&sample())).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["address"], "198.51.100.10");
    assert_eq!(a[0]["hostname"], "samba.example");
    assert_eq!(a[0]["ports"][0]["port"], "137/udp");
    assert_eq!(a[0]["ports"][0]["state"], "open");
    assert_eq!(a[0]["ports"][1]["state"], "likely-open");
    assert_eq!(a[0]["ports"][1]["rtt_ms"], serde_json::Value::Null);
    assert_eq!(a[0]["info"]["workgroup"], "TESTGROUP");
    assert_eq!(a[0]["info"]["roles"][0], "LMB");
    assert_eq!(a[0]["info"]["names"][0]["name"], "SAMBAA<00>");
    assert_eq!(a[1]["info"], serde_json::Value::Null);
    assert_eq!(a[1]["ports"][0]["state"], "closed");
    // Round trip through the shared types.
    let back: Vec<HostResult> = serde_json::from_value(v).unwrap();
    assert_eq!(back, sample());
    let s: PortState = serde_json::from_str("\"open|filtered\"").unwrap();
    assert_eq!(s, PortState::OpenFiltered);
}

#[test]
fn csv_shape() {
    let csv = to_csv(&sample()).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 3, "one row per host × port");
    assert_eq!(&rows[0][0], "198.51.100.10");
    assert_eq!(&rows[0][1], "samba.example");
    assert_eq!(&rows[0][2], "137/udp");
    assert_eq!(&rows[0][3], "open");
    assert!(rows[0][4].contains("\"T\""), "quotes survive");
    assert_eq!(&rows[0][5], "0.500");
    assert_eq!(&rows[0][7], "TESTGROUP");
    assert_eq!(&rows[1][3], "likely-open");
    assert_eq!(&rows[1][5], "");
    assert_eq!(&rows[2][0], "198.51.100.11");
    assert_eq!(&rows[2][7], "");
    assert_eq!(to_csv(&[]).unwrap().lines().count(), 1);
}

#[test]
fn text_shape() {
    let t = to_text(&sample());
    assert!(t.contains("198.51.100.10 (samba.example)"));
    assert!(t.contains("workgroup: TESTGROUP"));
    assert!(t.contains("MAC: 00:15:5d:01:02:ff"));
    assert!(t.contains("138/udp  likely-open"));
}

fn one(state: PortState) -> Vec<HostResult> {
    vec![HostResult {
        address: Ipv4Addr::new(198, 51, 100, 10),
        hostname: None,
        ports: vec![PortResult {
            port: Port::Dgm138Udp,
            state,
            evidence: String::new(),
            rtt_ms: None,
            attempts: 1,
        }],
        info: None,
        duration_ms: 0.0,
    }]
}

#[test]
fn nagios_codes() {
    use PortState::*;
    for (state, closed, open) in [
        (Open, 2, 0),
        (LikelyOpen, 1, 1),
        (OpenFiltered, 1, 1),
        (Filtered, 0, 2),
        (Closed, 0, 2),
        (HostDown, 0, 2),
        (Error, 3, 3),
    ] {
        assert_eq!(nagios(&one(state), Expect::Closed).code, closed, "{state}");
        assert_eq!(nagios(&one(state), Expect::Open).code, open, "{state}");
    }
    // CRITICAL wins over UNKNOWN, UNKNOWN over WARNING.
    let mut mixed = sample();
    mixed[1].ports[0].state = Error;
    let v = nagios(&mixed, Expect::Closed);
    assert_eq!(v.code, NAGIOS_CRITICAL);
    assert!(v
        .summary
        .starts_with("NBDGM PROBE CRITICAL - expected closed: "));
    assert!(v.summary.contains("198.51.100.10 137/udp open"));
    assert!(v.summary.ends_with(
        "| hosts=2 open=1 likely_open=1 open_filtered=0 filtered=0 closed=0 host_down=0 error=1"
    ));
    mixed[0].ports[0].state = Closed;
    assert_eq!(nagios(&mixed, Expect::Closed).code, NAGIOS_UNKNOWN);
    let ok = nagios(&one(Closed), Expect::Closed);
    assert!(ok
        .summary
        .starts_with("NBDGM PROBE OK - 1 port(s) on 1 host(s)"));
    assert!(!ok.summary.contains('\n'));
}

#[test]
fn plain_exit_codes() {
    use PortState::*;
    assert_eq!(exit_code(&one(Closed)), 0);
    assert_eq!(exit_code(&one(OpenFiltered)), 0);
    assert_eq!(exit_code(&one(Open)), 1);
    assert_eq!(exit_code(&one(LikelyOpen)), 1);
    assert_eq!(exit_code(&one(Error)), 2);
    assert_eq!(exit_code(&sample()), 1);
    assert_eq!(exit_code(&[]), 0);
}

#[test]
fn evidence_is_bounded_and_escaped_in_text_only() {
    assert_eq!(clean("a\u{1b}[31mb\n"), "a\u{1b}[31mb\n");
    assert!(clean(&"x".repeat(10_000)).chars().count() <= MAX_EVIDENCE_LEN + 1);
    let mut r = sample();
    r[0].ports[0].evidence = "x\u{1b}[2J\ny\u{202e}".into();
    let text = to_text(&r);
    assert!(text.contains("x\\x1b[2J\\ny\\u{202e}"), "{text}");
    assert!(to_json(&r).contains("x\\u001b[2J\\ny\u{202e}"));
}

#[test]
fn csv_cells_never_start_a_formula() {
    for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
        assert_eq!(csv_cell(bad), format!("'{bad}"));
    }
    assert_eq!(csv_cell("open"), "open");
    let mut r = sample();
    r[0].hostname = Some("=HYPERLINK(\"x\")".into());
    let csv = to_csv(&r).unwrap();
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    for row in rd.records() {
        let row = row.unwrap();
        assert!(row.iter().all(|c| !c.starts_with('=')), "{row:?}");
    }
}

#[test]
fn rate_limiter_paces() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let l = RateLimiter::new(100);
        for _ in 0..6 {
            l.acquire().await;
        }
        let u = RateLimiter::unlimited();
        for _ in 0..1000 {
            u.acquire().await;
        }
    });
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(50), "{e:?}");
    assert!(e < Duration::from_secs(2), "{e:?}");
}

proptest! {
    #[test]
    fn answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = describe_dgm_answer(&bytes);
        let _ = judge_ns(1, &bytes);
        let mut h = [0u8; 4];
        for (d, s) in h.iter_mut().zip(&bytes) { *d = *s; }
        let _ = describe_session_answer(h, bytes.get(4..).unwrap_or_default());
        let _ = clean(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn icmp_sender_and_silence_read_back_what_decide_wrote() {
    let (state, text) = decide(Port::Ns137Udp, &icmp(3, 3), false);
    assert_eq!(state, PortState::Closed);
    assert_eq!(icmp_sender(&text), Some(Ipv4Addr::new(198, 51, 100, 10)));
    let (_, text) = decide(Port::Ns137Udp, &icmp(3, 1), false);
    assert_eq!(icmp_sender(&text), Some(Ipv4Addr::new(198, 51, 100, 10)));
    assert_eq!(icmp_sender("TCP reset (connection refused)"), None);
    assert_eq!(icmp_sender("answer from 198.51.100.9"), None);
    assert!(!by_silence(state, &text));
    for port in [Port::Ns137Udp, Port::Dgm138Udp, Port::Ssn139Tcp] {
        for ns in [false, true] {
            let (s, t) = decide(port, &silence(), ns);
            assert!(by_silence(s, &t), "{port} {s} {t}");
        }
    }
    let timed_out = Evidence::Errno {
        errno: nix::libc::ETIMEDOUT,
        during: "connect".into(),
    };
    let (s, t) = decide(Port::Smb445Tcp, &timed_out, false);
    assert!(by_silence(s, &t), "{s} {t}");
    let (s, t) = decide(Port::Smb445Tcp, &icmp(3, 13), false);
    assert_eq!(s, PortState::Filtered);
    assert!(!by_silence(s, &t), "an ICMP error is not silence: {t}");
    let (s, t) = decide(Port::Smb445Tcp, &Evidence::Reset, false);
    assert!(!by_silence(s, &t));
    assert_eq!(
        serde_json::to_string(&PortState::Unknown).unwrap(),
        "\"unknown\""
    );
    assert_eq!(PortState::Unknown.as_str(), "unknown");
}

#[test]
fn silent_138_beside_answering_137_is_open_filtered_with_the_reason() {
    let (state, text) = decide(Port::Dgm138Udp, &silence(), true);
    assert_eq!(state, PortState::OpenFiltered);
    assert!(text.contains("137/udp answered"), "{text}");
    assert!(text.contains("filter on 138 alone"), "{text}");
    let (_, alone) = decide(Port::Dgm138Udp, &silence(), false);
    assert!(!alone.contains("137/udp"), "{alone}");
}

#[test]
fn live_host_turns_only_nbstat_silence_into_filtered() {
    let nbstat = Evidence::Silence {
        attempts: 3,
        waited_ms: 700,
        sent: "NODE STATUS request(s)".into(),
    };
    let mut r137 = port_result(Port::Ns137Udp, &nbstat, false, None, 3);
    assert_eq!(r137.state, PortState::OpenFiltered);
    let mut stale = r137.clone();
    on_live_host(&mut stale, "neighbour entry STALE", false);
    assert_eq!(
        stale.state,
        PortState::OpenFiltered,
        "a STALE entry is not proof of now"
    );
    assert!(stale.evidence.ends_with("host up: neighbour entry STALE"));
    on_live_host(&mut r137, "ARP reply from 02:00:00:00:00:01", true);
    assert_eq!(r137.state, PortState::Filtered);
    assert!(r137
        .evidence
        .contains("host up: ARP reply from 02:00:00:00:00:01"));
    assert!(
        by_silence(r137.state, &r137.evidence),
        "still rests on silence"
    );
    // 138/udp silence stays two-state (a listening nmbd is silent too).
    let mut r138 = port_result(Port::Dgm138Udp, &silence(), true, None, 3);
    on_live_host(&mut r138, "ARP reply from 02:00:00:00:00:01", true);
    assert_eq!(r138.state, PortState::OpenFiltered);
    assert!(r138
        .evidence
        .ends_with("host up: ARP reply from 02:00:00:00:00:01"));
    // Answers and ICMP-based states are untouched.
    for ev in [Evidence::Answer("x".into()), icmp(3, 3), icmp(3, 13)] {
        let mut r = port_result(Port::Ns137Udp, &ev, false, None, 1);
        let before = r.clone();
        on_live_host(&mut r, "ARP reply from 02:00:00:00:00:01", true);
        assert_eq!(r, before);
    }
}

#[test]
fn announcement_request_bytes_and_answers() {
    let src = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 250), 40000);
    let b = super::udp_announce::announcement_request("testgroup", 7, src).unwrap();
    let d = Datagram::parse(&b).unwrap();
    assert_eq!(d.msg_type, MsgType::DirectGroup);
    let ms = MailslotWrite::parse(d.user_data().unwrap()).unwrap();
    assert!(ms.is(mailslot::BROWSE));
    assert!(matches!(
        BrowserFrame::parse(&ms.data).unwrap(),
        BrowserFrame::AnnouncementRequest(_)
    ));
    // Our own request is not an announcement; garbage is nothing.
    assert!(super::udp_announce::describe_announcement(&b).is_none());
    assert!(super::udp_announce::describe_announcement(&[0u8; 3]).is_none());
    assert!(
        super::udp_announce::announcement_request("A-NAME-FAR-TOO-LONG-FOR-NETBIOS", 7, src)
            .is_none()
    );
}

#[test]
fn announcement_listener_only_on_a_connected_broadcast_subnet() {
    use super::udp_announce::subnet_broadcast;
    // 240.0.0.0/4 (reserved) is on no interface; loopback is not broadcast-capable.
    assert_eq!(subnet_broadcast(Ipv4Addr::new(240, 0, 2, 77)), None);
    assert_eq!(subnet_broadcast(Ipv4Addr::LOCALHOST), None);
}
