//! Rule generation of `nbdgm_probe::firewall` for nftables, iptables and ufw (no firewall is
//! touched here; applying is tested in network namespaces by `crates/nbdgm/tests/audit_cli.rs`).

use nbdgm_probe::audit::{ipt, nft};
use nbdgm_probe::firewall::{self, parse_net, Backend, FirewallOptions, Verifier};
use nbdgm_probe::probe::{Port, PortResult, PortState};
use std::net::Ipv4Addr;

fn opts(backend: Backend, allow: &[&str], include_445: bool) -> FirewallOptions {
    FirewallOptions {
        backend,
        allow: allow.iter().map(|a| parse_net(a).unwrap()).collect(),
        include_445,
    }
}

fn lines(cmds: &[firewall::FwCommand]) -> Vec<String> {
    cmds.iter().map(|c| c.argv.join(" ")).collect()
}

#[test]
fn nftables_rules() {
    let o = opts(
        Backend::Nftables,
        &["198.51.100.0/24", "2001:db8::/32"],
        false,
    );
    let l = lines(&firewall::apply_commands(&o));
    assert_eq!(l[0], "nft add table inet nbdgm");
    assert_eq!(l[1], "nft delete table inet nbdgm");
    assert!(l.contains(
        &"nft add rule inet nbdgm input ip saddr 198.51.100.0/24 udp dport { 137, 138 } accept"
            .to_string()
    ));
    assert!(l.contains(
        &"nft add rule inet nbdgm input ip6 saddr 2001:db8::/32 tcp dport { 138, 139 } accept"
            .to_string()
    ));
    assert_eq!(
        l.last().unwrap(),
        "nft add rule inet nbdgm input tcp dport { 138, 139 } drop"
    );
    let accepts = l
        .iter()
        .position(|x| x.ends_with("accept") && x.contains("saddr"))
        .unwrap();
    let drops = l.iter().position(|x| x.ends_with("drop")).unwrap();
    assert!(accepts < drops);
    assert_eq!(
        lines(&firewall::remove_commands(&o)),
        vec!["nft delete table inet nbdgm"]
    );
    let o = opts(Backend::Nftables, &[], true);
    assert!(lines(&firewall::apply_commands(&o))
        .iter()
        .any(|x| x.contains("{ 138, 139, 445 } drop")));
}

#[test]
fn iptables_rules() {
    let o = opts(Backend::Iptables, &["198.51.100.20"], true);
    let cmds = firewall::apply_commands(&o);
    let l = lines(&cmds);
    assert!(l.contains(&"iptables -w -N NBDGM".to_string()));
    assert!(l.contains(&"iptables -w -A NBDGM -s 198.51.100.20/32 -p tcp -m multiport --dports 138,139,445 -j RETURN".to_string()));
    assert!(l.contains(&"iptables -w -I INPUT 1 -j NBDGM".to_string()));
    // IPv6: no allowed networks given, so only loopback and the drops.
    assert!(!l
        .iter()
        .any(|x| x.starts_with("ip6tables") && x.contains("-s ")));
    assert!(l.contains(
        &"ip6tables -w -A NBDGM -p udp -m multiport --dports 137,138 -j DROP".to_string()
    ));
    assert!(cmds
        .iter()
        .filter(|c| c.may_fail)
        .all(|c| c.argv.iter().any(|a| a == "-D" || a == "-F" || a == "-X")));
    let r = lines(&firewall::remove_commands(&o));
    assert_eq!(r[0], "iptables -w -D INPUT -j NBDGM");
    assert_eq!(r.len(), 6);
    let script = firewall::to_script(&cmds);
    assert!(script.contains("iptables -w -D INPUT -j NBDGM 2>/dev/null || true"));
}

#[test]
fn generated_rules_evaluate_as_intended() {
    // Turn the generated iptables commands into iptables-save form and evaluate them.
    let o = opts(Backend::Iptables, &["198.51.100.0/24"], false);
    let mut save = String::from("*filter\n:INPUT ACCEPT [0:0]\n:NBDGM - [0:0]\n");
    for c in firewall::apply_commands(&o) {
        if c.argv[0] == "iptables" && c.argv[2] == "-A" {
            save.push_str(&c.argv[2..].join(" "));
            save.push('\n');
        }
    }
    save.push_str("-A INPUT -j NBDGM\nCOMMIT\n");
    let rs = ipt::parse(&save, "iptables");
    let local = nbdgm_probe::audit::addrset::AddrSet::addr("198.51.100.10".parse().unwrap());
    let view = nbdgm_probe::audit::FirewallView {
        ruleset: rs,
        ..Default::default()
    };
    let v = nbdgm_probe::audit::port_verdict(&view, Port::Dgm138Udp, &local);
    // IPv4: only the allowed network; IPv6 is not in this (iptables) view.
    assert_eq!(v.open_to[0], "198.51.100.0/24", "{v:?}");
    let v = nbdgm_probe::audit::port_verdict(&view, Port::Smb445Tcp, &local);
    assert!(
        v.open_to.contains(&"0.0.0.0/1".to_string()) || v.open_to.iter().any(|c| c == "0.0.0.0/0"),
        "{v:?}"
    );
    let _ = nft::parse("{\"nftables\":[]}").unwrap();
}

#[test]
fn ufw_rules_in_order() {
    let o = opts(Backend::Ufw, &["198.51.100.0/24"], false);
    let l = lines(&firewall::apply_commands(&o));
    assert_eq!(
        l[0],
        "ufw allow from 198.51.100.0/24 to any port 137 proto udp"
    );
    assert_eq!(l.len(), 8);
    let first_deny = l.iter().position(|x| x.starts_with("ufw deny")).unwrap();
    assert_eq!(first_deny, 4);
    assert!(l[4..].iter().all(|x| x.starts_with("ufw deny")));
    assert_eq!(l[7], "ufw deny 139/tcp");
    let r = lines(&firewall::remove_commands(&o));
    assert_eq!(
        r[0],
        "ufw --force delete allow from 198.51.100.0/24 to any port 137 proto udp"
    );
    assert_eq!(r[7], "ufw --force delete deny 139/tcp");
}

#[test]
fn allow_parsing() {
    assert_eq!(
        parse_net("198.51.100.7/24").unwrap().to_string(),
        "198.51.100.0/24"
    );
    assert_eq!(
        parse_net("198.51.100.7").unwrap().to_string(),
        "198.51.100.7/32"
    );
    assert_eq!(
        parse_net("2001:db8::1").unwrap().to_string(),
        "2001:db8::1/128"
    );
    assert!(parse_net("nope").is_err());
    assert!(parse_net("1.2.3.4/33").is_err());
}

struct Fake(Vec<PortResult>);

impl Verifier for Fake {
    fn probe(&self, _t: Ipv4Addr, _p: &[Port]) -> Result<Vec<PortResult>, String> {
        Ok(self.0.clone())
    }
    fn describe(&self) -> String {
        "fake".into()
    }
}

#[test]
fn verification_reports_exposed_ports() {
    let r = |port, state| PortResult {
        port,
        state,
        evidence: String::new(),
        rtt_ms: None,
        attempts: 1,
    };
    let v = firewall::verify(
        &Fake(vec![
            r(Port::Dgm138Udp, PortState::OpenFiltered),
            r(Port::Ssn139Tcp, PortState::Open),
        ]),
        "198.51.100.10".parse().unwrap(),
        &[Port::Dgm138Udp, Port::Ssn139Tcp],
    )
    .unwrap();
    assert_eq!(v.still_exposed, vec![Port::Ssn139Tcp]);
    assert!(firewall::is_blocked(PortState::OpenFiltered));
}
