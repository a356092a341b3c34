//! `nbdgm audit` and `nbdgm firewall` end to end in network namespaces (nbdgm-lab): host a
//! listens on 137/udp, 138/udp and 139/tcp; `nbdgm firewall --apply` runs inside a's
//! namespace and verifies with a probe from b's (and c's) namespace. Only the lab's
//! namespaces are touched, never the root namespace's firewall.

#![cfg(feature = "audit")]
// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_lab::{Host, Lab, LabSpec};
use serde_json::Value;
use std::net::{TcpListener, UdpSocket};

const BIN: &str = env!("CARGO_BIN_EXE_nbdgm");

fn run_in(host: &Host, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![BIN];
    all.extend_from_slice(args);
    let out = host
        .output_timeout(all[0], &all[1..], std::time::Duration::from_secs(120))
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Port → state from a `firewall --format json` verification.
fn states(json: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["verification"]["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no verification: {json}"))
        .iter()
        .map(|p| {
            (
                p["port"].as_str().unwrap_or("").to_string(),
                p["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn state_of(s: &[(String, String)], port: &str) -> String {
    s.iter()
        .find(|(p, _)| p == port)
        .map(|(_, st)| st.clone())
        .unwrap_or_default()
}

struct Listeners {
    _u137: UdpSocket,
    _u138: UdpSocket,
    _t139: TcpListener,
}

fn setup() -> Option<(Lab, Host, Host, Host, Listeners)> {
    let lab = Lab::new(LabSpec::one_subnet()).unwrap();
    let a = lab.add_host("a", "198.51.100.10/24").unwrap();
    let b = lab.add_host("b", "198.51.100.20/24").unwrap();
    let c = lab.add_host("c", "198.51.100.30/24").unwrap();
    let l = a
        .in_netns(|| -> std::io::Result<Listeners> {
            Ok(Listeners {
                _u137: UdpSocket::bind("0.0.0.0:137")?,
                _u138: UdpSocket::bind("0.0.0.0:138")?,
                _t139: TcpListener::bind("0.0.0.0:139")?,
            })
        })
        .unwrap()
        .unwrap();
    Some((lab, a, b, c, l))
}

fn backend_cycle(backend: &str) {
    let Some((_lab, a, b, c, _l)) = setup() else {
        return;
    };
    let target = a.addr().to_string();
    // The audit in a's namespace: 138/udp listens (owner: this test process) and is open.
    let (code, out, err) = run_in(&a, &["audit", "--format", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let p138 = &v["ports"][1];
    assert_eq!(p138["port"], "138/udp");
    assert_eq!(p138["firewall"]["verdict"], "open-to-everyone");
    let pid = std::process::id();
    assert!(
        p138["listening"][0]["owners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["pid"] == pid),
        "{p138}"
    );

    // Apply, verify from b: closed off.
    let apply = |allow: &[&str], from: &Host| {
        let mut args = vec![
            "firewall",
            "--backend",
            backend,
            "--apply",
            "--format",
            "json",
        ];
        for al in allow {
            args.extend(["--allow", al]);
        }
        args.extend(["--verify-from", from.netns(), "--verify-target", &target]);
        run_in(&a, &args)
    };
    let (code, out, err) = apply(&[], &b);
    assert_eq!(code, 0, "{out}{err}");
    let s = states(&out);
    assert!(
        ["filtered", "open|filtered"].contains(&state_of(&s, "138/udp").as_str()),
        "{s:?}"
    );
    assert_eq!(state_of(&s, "139/tcp"), "filtered", "{s:?}");
    // The audit agrees.
    let (code, out, _) = run_in(&a, &["audit", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ports"][1]["firewall"]["verdict"], "closed", "{out}");
    assert_eq!(v["ports"][3]["firewall"]["verdict"], "closed", "{out}");
    assert_eq!(code, 0, "{out}");

    // Re-apply with b allowed (replaces): open for b, closed for c.
    let b_cidr = format!("{}/32", b.addr());
    let (code, out, err) = apply(&[&b_cidr], &b);
    assert_eq!(code, 1, "139 answers for b: {out}{err}");
    assert_eq!(state_of(&states(&out), "139/tcp"), "open", "{out}");
    let (code, out, err) = apply(&[&b_cidr], &c);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(state_of(&states(&out), "139/tcp"), "filtered", "{out}");
    let (_, out, _) = run_in(&a, &["audit", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ports"][3]["firewall"]["verdict"], "open-to", "{out}");
    assert_eq!(
        v["ports"][3]["firewall"]["open_to"][0],
        b_cidr.as_str(),
        "{out}"
    );

    // Remove: open again from c.
    let (code, out, err) = run_in(
        &a,
        &[
            "firewall",
            "--backend",
            backend,
            "--remove",
            "--format",
            "json",
            "--verify-from",
            c.netns(),
            "--verify-target",
            &target,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(state_of(&states(&out), "139/tcp"), "open", "{out}");
    let (_, out, _) = run_in(&a, &["audit", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["ports"][3]["firewall"]["verdict"], "open-to-everyone",
        "{out}"
    );
}

#[test]
fn firewall_nftables_apply_verify_remove() {
    if !nbdgm_lab::require_or_skip("firewall_nftables_apply_verify_remove") {
        return;
    }
    if nbdgm_lab::tool_path("nft").is_none() {
        eprintln!("SKIPPED firewall_nftables_apply_verify_remove: nft not installed");
        return;
    }
    backend_cycle("nftables");
}

#[test]
fn firewall_iptables_apply_verify_remove() {
    if !nbdgm_lab::require_or_skip("firewall_iptables_apply_verify_remove") {
        return;
    }
    if nbdgm_lab::tool_path("iptables").is_none() || nbdgm_lab::tool_path("ip6tables").is_none() {
        eprintln!(
            "SKIPPED firewall_iptables_apply_verify_remove: iptables/ip6tables not installed"
        );
        return;
    }
    backend_cycle("iptables");
}

#[test]
fn firewall_prints_rules_without_root() {
    let out = std::process::Command::new(BIN)
        .args([
            "firewall",
            "--backend",
            "nftables",
            "--allow",
            "198.51.100.0/24",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["argv"][0], "nft");
    let out = std::process::Command::new(BIN)
        .args(["firewall", "--backend", "ufw", "--allow", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(BIN)
        .args(["firewall", "--backend", "nftables", "--verify-from", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
