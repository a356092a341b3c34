//! Tests of `nbdgm_audit`: the nftables JSON, iptables-save and ufw parsers and the
//! evaluation on fixtures (the nft JSON was produced by nft 1.0.6 in a namespace), and a lab
//! test that binds 138/udp in a namespace and audits it while nftables rules change.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_audit::addrset::AddrSet;
use nbdgm_audit::eval;
use nbdgm_audit::{self as audit, ipt, nft, ufw, AuditOptions, FirewallView, VerdictKind};
use nbdgm_probe::probe::Port;

/// `nft -j list ruleset` after:
/// table inet filter; chain input { hook input priority 0; policy drop; }
/// iifname lo accept; ct state established,related accept;
/// ip saddr 198.51.100.0/24 udp dport { 137, 138 } accept; tcp dport 139-445 drop;
/// ip saddr { 198.51.100.0/24, 203.0.113.5 } tcp dport 445 reject; jump sub;
/// chain sub: udp dport 138 counter accept; meta l4proto udp th dport 137 accept;
/// ip6 saddr 2001:db8::/32 return
const NFT_SAMPLE: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "filter", "handle": 1}}, {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}, {"chain": {"family": "inet", "table": "filter", "name": "sub", "handle": 9}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 3, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "198.51.100.0", "len": 24}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [137, 138]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 6, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"range": [139, 445]}}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 8, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": [{"prefix": {"addr": "198.51.100.0", "len": 24}}, "203.0.113.5"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 445}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 10, "expr": [{"jump": {"target": "sub"}}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "sub", "handle": 11, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 138}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "sub", "handle": 12, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 137}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "sub", "handle": 13, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "2001:db8::", "len": 32}}}}, {"return": null}]}}]}"#;

fn local() -> AddrSet {
    AddrSet::addr("198.51.100.10".parse().unwrap())
}

fn view(rs: eval::Ruleset) -> FirewallView {
    FirewallView {
        ruleset: rs,
        ..Default::default()
    }
}

fn verdict(rs: &eval::Ruleset, port: Port) -> audit::FirewallVerdict {
    audit::port_verdict(&view(rs.clone()), port, &local())
}

#[test]
fn nft_sample_verdicts() {
    let p = nft::parse(NFT_SAMPLE).unwrap();
    assert_eq!(p.tables, 1);
    let rs = p.ruleset;
    let v = verdict(&rs, Port::Dgm138Udp);
    assert_eq!(v.verdict, VerdictKind::OpenToEveryone, "{v:?}");
    let v = verdict(&rs, Port::Ns137Udp);
    assert_eq!(v.verdict, VerdictKind::OpenToEveryone, "{v:?}");
    let v = verdict(&rs, Port::Ssn139Tcp);
    assert_eq!(v.verdict, VerdictKind::Closed, "{v:?}");
    assert!(v.decided_by.iter().any(|d| d.contains("handle 6")), "{v:?}");
    let v = verdict(&rs, Port::Dgm138Tcp);
    assert_eq!(v.verdict, VerdictKind::Closed, "{v:?}");
    assert!(v.decided_by.iter().any(|d| d.contains("policy")), "{v:?}");
}

#[test]
fn nft_allow_list_and_undetermined() {
    let json = r#"{"nftables":[{"table":{"family":"ip","name":"t"}},
      {"chain":{"family":"ip","table":"t","name":"in","type":"filter","hook":"input","prio":-5,"policy":"accept"}},
      {"set":{"family":"ip","table":"t","name":"ok","type":"ipv4_addr","flags":["interval"],"elem":[{"prefix":{"addr":"198.51.100.0","len":24}}]}},
      {"rule":{"family":"ip","table":"t","chain":"in","handle":4,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@ok"}},{"accept":null}]}},
      {"rule":{"family":"ip","table":"t","chain":"in","handle":5,"expr":[{"match":{"op":"==","left":{"meta":{"key":"mark"}},"right":1}},{"accept":null}]}},
      {"rule":{"family":"ip","table":"t","chain":"in","handle":6,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":138}},{"drop":null}]}},
      {"rule":{"family":"ip","table":"t","chain":"in","handle":7,"expr":[{"match":{"op":"!=","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[22,139]}}},{"drop":null}]}}
    ]}"#;
    let rs = nft::parse(json).unwrap().ruleset;
    // 138/udp: 198.51.100.0/24 accepted by the set; the mark rule is undecidable elsewhere.
    let v = verdict(&rs, Port::Dgm138Udp);
    assert_eq!(v.verdict, VerdictKind::OpenTo, "{v:?}");
    assert!(v.open_to.contains(&"198.51.100.0/24".to_string()), "{v:?}");
    // IPv6 is not filtered by an `ip` table.
    assert!(v.open_to.iter().any(|c| c.contains(':')), "{v:?}");
    assert!(v.undetermined[0].contains("handle 5"), "{v:?}");
    assert!(v.text().starts_with("open to 198.51.100.0/24"));
    let t = r#"{"nftables":[{"chain":{"family":"inet","table":"t","name":"in","type":"filter","hook":"input","prio":0,"policy":"accept"}},
      {"rule":{"family":"inet","table":"t","chain":"in","handle":2,"expr":[{"match":{"op":"==","left":{"meta":{"key":"mark"}},"right":1}},{"drop":null}]}}]}"#;
    let rs = nft::parse(t).unwrap().ruleset;
    let v = verdict(&rs, Port::Dgm138Udp);
    assert_eq!(v.verdict, VerdictKind::Undetermined);
    assert_eq!(
        v.text(),
        "undetermined: rule inet t in handle 2 uses the match {\"meta\":{\"key\":\"mark\"}} == 1"
    );
}

#[test]
fn nft_garbage_never_panics() {
    for s in [
        "",
        "{}",
        "[]",
        r#"{"nftables": 5}"#,
        r#"{"nftables": [{"rule": 5}, {"chain": []}, {"rule": {"family":"inet","expr":7}}]}"#,
        r#"{"nftables": [{"chain":{"family":"inet","table":"t","name":"c","type":"filter","hook":"input","prio":"filter + 5"}},{"rule":{"family":"inet","table":"t","chain":"c","expr":[{"match":{}},{"jump":{}},5,{"match":{"op":"<","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":0}}]}}]}"#,
    ] {
        if let Ok(p) = nft::parse(s) {
            for port in Port::ALL {
                let _ = verdict(&p.ruleset, port);
            }
        }
    }
}

const IPT_SAMPLE: &str = r#"# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:NETBIOS - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -m comment --comment "netbios \"rules\"" -j NETBIOS
-A INPUT -p tcp -m multiport --dports 139,445 -m limit --limit 5/min -j LOG --log-prefix "smb "
-A NETBIOS -s 198.51.100.0/24 -p udp -m multiport --dports 137:138 -j ACCEPT
-A NETBIOS ! -s 203.0.113.0/24 -p tcp -m tcp --dport 139 -j REJECT --reject-with tcp-reset
-A NETBIOS -s 203.0.113.0/24 -p tcp -m tcp --dport 139 -j ACCEPT
-A NETBIOS -p tcp --dport 445 -m recent --rcheck -j ACCEPT
COMMIT
"#;

#[test]
fn iptables_save_verdicts() {
    let rs = ipt::parse(IPT_SAMPLE, "iptables");
    let v = verdict(&rs, Port::Dgm138Udp);
    assert_eq!(v.verdict, VerdictKind::OpenTo, "{v:?}");
    // ip (IPv4) rules: IPv6 passes untouched.
    assert_eq!(v.open_to[0], "198.51.100.0/24");
    let v = verdict(&rs, Port::Ssn139Tcp);
    assert_eq!(v.verdict, VerdictKind::OpenTo, "{v:?}");
    assert_eq!(v.open_to[0], "203.0.113.0/24");
    let v = verdict(&rs, Port::Smb445Tcp);
    assert_eq!(v.verdict, VerdictKind::OpenTo, "{v:?}");
    assert!(v.undetermined[0].contains("-m recent"), "{v:?}");
    let v = verdict(&rs, Port::Dgm138Tcp);
    assert_eq!(v.verdict, VerdictKind::OpenTo);
    assert!(
        !v.open_to.iter().any(|c| c.contains('.')),
        "only IPv6 passes: {v:?}"
    );
    let rs6 = ipt::parse(
        ":INPUT DROP [0:0]\n-A INPUT -s 2001:db8::/32 -j ACCEPT\n",
        "ip6tables",
    );
    let mut all = rs.clone();
    all.chains.extend(rs6.chains);
    let v = verdict(&all, Port::Dgm138Udp);
    assert_eq!(v.open_to, vec!["198.51.100.0/24", "2001:db8::/32"]);
    for s in [
        "",
        "*filter\n-A",
        "-A INPUT ! ! -s",
        "-A INPUT -j",
        ":INPUT\n-A INPUT -p tcp --dport 99999 -j DROP\n-A X -g",
    ] {
        let rs = ipt::parse(s, "iptables");
        for port in Port::ALL {
            let _ = verdict(&rs, port);
        }
    }
}

#[test]
fn ufw_status_verdicts() {
    let text = "Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), disabled (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW IN    Anywhere
137,138/udp                ALLOW IN    198.51.100.0/24
139/tcp                    DENY IN     Anywhere
139                        ALLOW IN    Anywhere
445/tcp                    ALLOW IN    Anywhere
Samba                      ALLOW IN    Anywhere
445/tcp (v6)               ALLOW IN    Anywhere (v6)
";
    let st = ufw::parse(text);
    assert!(st.active);
    let v = verdict(&st.ruleset, Port::Dgm138Udp);
    assert_eq!(v.verdict, VerdictKind::OpenTo, "{v:?}");
    assert_eq!(v.open_to, vec!["198.51.100.0/24"]);
    // First match wins: the deny before the allow.
    assert_eq!(
        verdict(&st.ruleset, Port::Ssn139Tcp).verdict,
        VerdictKind::Closed
    );
    let v = verdict(&st.ruleset, Port::Dgm138Tcp);
    assert_eq!(v.verdict, VerdictKind::Undetermined);
    assert!(v.undetermined[0].contains("Samba"), "{v:?}");
    assert_eq!(
        verdict(&st.ruleset, Port::Smb445Tcp).verdict,
        VerdictKind::OpenToEveryone
    );
    assert!(!ufw::parse("Status: inactive\n").active);
}

#[test]
fn proc_fixture_sockets() {
    let tmp = nbdgm_lab::daemon::scratch_dir("audit-proc").unwrap();
    let dir = tmp.path().to_owned();
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::create_dir_all(dir.join("4242/fd")).unwrap();
    std::fs::write(
        dir.join("net/udp"),
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n \
         1: 00000000:008A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777001 2 0000000000000000 0\n \
         2: 0100007F:0089 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777002 2 0000000000000000 0\n",
    )
    .unwrap();
    std::fs::write(dir.join("net/tcp"), "garbage\n").unwrap();
    std::fs::write(dir.join("4242/comm"), "nmbd\n").unwrap();
    std::fs::write(dir.join("4242/status"), "Name:\tnmbd\nUid:\t0\t0\t0\t0\n").unwrap();
    std::os::unix::fs::symlink("socket:[777001]", dir.join("4242/fd/5")).unwrap();
    std::os::unix::fs::symlink("/dev/null", dir.join("4242/fd/0")).unwrap();
    let mut notes = Vec::new();
    // A fake root has no thread-self: net/ is read.
    let s = audit::sockets::bound_sockets(&dir, &mut notes);
    assert_eq!(s.len(), 2, "{s:?} {notes:?}");
    let s138 = s.iter().find(|b| b.port == 138).unwrap();
    assert_eq!(s138.owners[0].pid, 4242);
    assert_eq!(s138.owners[0].command, "nmbd");
    assert_eq!(s138.owners[0].uid, Some(0));
    let s137 = s.iter().find(|b| b.port == 137).unwrap();
    assert!(s137.owners.is_empty());
    assert!(s137.owner_text().starts_with("unknown owner"));
    let report = audit::assemble(s, &FirewallView::default(), &local(), notes);
    let p138 = report
        .ports
        .iter()
        .find(|p| p.port == Port::Dgm138Udp)
        .unwrap();
    assert!(p138.exposed);
    let p137 = report
        .ports
        .iter()
        .find(|p| p.port == Port::Ns137Udp)
        .unwrap();
    assert!(!p137.exposed, "loopback only");
    assert_eq!(audit::exit_code(&report), 1);
    let text = audit::to_text(&report);
    assert!(text.contains("nmbd[4242]"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&audit::to_json(&report)).unwrap();
    assert_eq!(json["ports"][1]["firewall"]["verdict"], "open-to-everyone");
    drop(tmp);
}

fn port_audit(r: &audit::AuditReport, p: Port) -> audit::PortAudit {
    r.ports.iter().find(|x| x.port == p).cloned().unwrap()
}

fn nft(host: &nbdgm_lab::Host, args: &[&str]) {
    let out = host.output("nft", args).unwrap();
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lab_audit_sees_socket_and_nftables() {
    if !nbdgm_lab::require_or_skip("lab_audit_sees_socket_and_nftables") {
        return;
    }
    if nbdgm_lab::tool_path("nft").is_none() {
        eprintln!("SKIPPED lab_audit_sees_socket_and_nftables: nft not installed");
        return;
    }
    let lab = nbdgm_lab::Lab::new(nbdgm_lab::LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let sock = a
        .in_netns(|| std::net::UdpSocket::bind("0.0.0.0:138"))
        .unwrap()
        .unwrap();
    let run = || {
        a.in_netns(|| audit::audit(&AuditOptions::default()))
            .unwrap()
    };
    let r = run();
    let p = port_audit(&r, Port::Dgm138Udp);
    assert!(p.listening_outside, "{r:?}");
    let me = std::process::id();
    assert!(
        p.listening
            .iter()
            .any(|s| s.owners.iter().any(|o| o.pid == me)),
        "our pid {me} not among the owners: {:?}",
        p.listening
    );
    assert_eq!(p.firewall.verdict, VerdictKind::OpenToEveryone, "{p:?}");
    assert!(p.exposed);
    assert_eq!(audit::exit_code(&r), 1);

    // A drop rule for 138/udp.
    nft(&a, &["add", "table", "inet", "t"]);
    nft(
        &a,
        &[
            "add",
            "chain",
            "inet",
            "t",
            "in",
            "{ type filter hook input priority 0 ; policy accept ; }",
        ],
    );
    nft(
        &a,
        &[
            "add", "rule", "inet", "t", "in", "udp", "dport", "138", "drop",
        ],
    );
    let r = run();
    let p = port_audit(&r, Port::Dgm138Udp);
    assert_eq!(p.firewall.verdict, VerdictKind::Closed, "{p:?}");
    assert!(!p.exposed);
    assert_eq!(audit::exit_code(&r), 0, "{}", audit::to_text(&r));

    // Allow 198.51.100.0/24 only.
    nft(&a, &["flush", "chain", "inet", "t", "in"]);
    nft(
        &a,
        &[
            "add",
            "rule",
            "inet",
            "t",
            "in",
            "ip",
            "saddr",
            "198.51.100.0/24",
            "udp",
            "dport",
            "138",
            "accept",
        ],
    );
    nft(
        &a,
        &[
            "add", "rule", "inet", "t", "in", "udp", "dport", "138", "drop",
        ],
    );
    let r = run();
    let p = port_audit(&r, Port::Dgm138Udp);
    assert_eq!(p.firewall.verdict, VerdictKind::OpenTo, "{p:?}");
    assert_eq!(p.firewall.text(), "open to 198.51.100.0/24");
    drop(sock);
}
