//! Rule generation of `nbdgm_audit::firewall` for nftables, iptables and ufw (no firewall is
//! touched here; applying is tested in network namespaces by `crates/nbdgm/tests/audit_cli.rs`).

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_audit::firewall::{self, parse_net, Backend, FirewallOptions, Verifier};
use nbdgm_audit::{ipt, nft};
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
    // One `nft -f -` transaction: declare, delete, declare whole (idempotent, atomic).
    let cmds = firewall::apply_commands(&o);
    assert_eq!(cmds.len(), 1);
    assert_eq!(lines(&cmds), vec!["nft -f -"]);
    let rs = cmds[0].stdin.as_deref().unwrap();
    let l: Vec<&str> = rs.lines().map(str::trim).collect();
    assert_eq!(
        &l[..3],
        &[
            "table inet nbdgm",
            "delete table inet nbdgm",
            "table inet nbdgm {"
        ]
    );
    assert!(l.contains(&"ip saddr 198.51.100.0/24 udp dport { 137, 138 } accept"));
    assert!(l.contains(&"ip6 saddr 2001:db8::/32 tcp dport { 138, 139 } accept"));
    let accepts = l.iter().position(|x| x.contains("saddr")).unwrap();
    let drops = l.iter().position(|x| x.ends_with("drop")).unwrap();
    assert!(accepts < drops);
    assert!(l.contains(&"tcp dport { 138, 139 } drop"));
    let script = firewall::to_script(&cmds);
    assert!(
        script.contains("nft -f - <<'NBDGM_EOF'\ntable inet nbdgm\n"),
        "{script}"
    );
    assert!(script.ends_with("}\nNBDGM_EOF\n"), "{script}");
    assert_eq!(
        lines(&firewall::remove_commands(&o)),
        vec!["nft delete table inet nbdgm"]
    );
    let o = opts(Backend::Nftables, &[], true);
    assert!(firewall::nft_ruleset(&o).contains("tcp dport { 138, 139, 445 } drop"));
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
    let local = nbdgm_audit::addrset::AddrSet::addr("198.51.100.10".parse().unwrap());
    let view = nbdgm_audit::FirewallView {
        ruleset: rs,
        ..Default::default()
    };
    let v = nbdgm_audit::port_verdict(&view, Port::Dgm138Udp, &local);
    // IPv4: only the allowed network; IPv6 is not in this (iptables) view.
    assert_eq!(v.open_to[0], "198.51.100.0/24", "{v:?}");
    let v = nbdgm_audit::port_verdict(&view, Port::Smb445Tcp, &local);
    assert!(
        v.open_to.contains(&"0.0.0.0/1".to_string()) || v.open_to.iter().any(|c| c == "0.0.0.0/0"),
        "{v:?}"
    );
    let _ = nft::parse("{\"nftables\":[]}").unwrap();
}

#[test]
fn ufw_rules_in_order() {
    // Command lines only: ufw is not run here (watch_ns.rs runs these deny lines in a
    // namespace with its own copy of /etc/ufw).
    let o = opts(Backend::Ufw, &["198.51.100.0/24"], false);
    let l = lines(&firewall::apply_commands(&o));
    assert_eq!(l.len(), 8);
    // Every rule is prepended (above any earlier allow) and tagged.
    assert!(l
        .iter()
        .all(|x| x.starts_with("ufw prepend ") && x.ends_with(" comment nbdgm")));
    // Each prepend lands on top: denies first, allows last, so the final list is the
    // allows (137/udp first), then the denies (137/udp first).
    assert_eq!(l[0], "ufw prepend deny 139/tcp comment nbdgm");
    assert_eq!(l[3], "ufw prepend deny 137/udp comment nbdgm");
    assert_eq!(
        l[7],
        "ufw prepend allow from 198.51.100.0/24 to any port 137 proto udp comment nbdgm"
    );
    let mut final_order = l.clone();
    final_order.reverse();
    let first_deny = final_order
        .iter()
        .position(|x| x.contains(" deny "))
        .unwrap();
    assert_eq!(first_deny, 4);
    assert!(firewall::remove_commands(&o).is_empty());
    // --remove deletes exactly the tagged rules, by number, highest first.
    let status = "Status: active\n\n     To                         Action      From\n     \
        --                         ------      ----\n\
        [ 1] 137/udp                    ALLOW IN    198.51.100.0/24            # nbdgm\n\
        [ 2] 137/udp                    DENY IN     Anywhere                   # nbdgm\n\
        [ 3] 22/tcp                     ALLOW IN    Anywhere                   # ssh nbdgm\n\
        [ 4] 80/tcp                     ALLOW IN    Anywhere\n\
        [10] 139/tcp (v6)               DENY IN     Anywhere (v6)              # nbdgm\n";
    assert_eq!(firewall::ufw_tagged_rules(status), vec![1, 2, 10]);
    assert_eq!(
        lines(&firewall::ufw_remove_commands(status)),
        vec![
            "ufw --force delete 10",
            "ufw --force delete 2",
            "ufw --force delete 1"
        ]
    );
}

#[test]
fn tools_come_from_system_directories_only() {
    use nbdgm_audit::find_tool;
    // Whatever $PATH says (these run as root): never a relative or PATH lookup.
    for t in ["sh", "ip"] {
        if let Ok(p) = find_tool(t) {
            assert!(
                ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"]
                    .iter()
                    .any(|d| p.starts_with(d)),
                "{p:?}"
            );
        }
    }
    assert!(find_tool("no-such-firewall-tool")
        .unwrap_err()
        .to_string()
        .contains("not found"));
    assert!(find_tool("../bin/sh").is_err());
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
    fn probe(&self, _t: Ipv4Addr, _p: &[Port]) -> Result<Vec<PortResult>, firewall::FirewallError> {
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
