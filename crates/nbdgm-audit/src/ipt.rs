//! Translation of `iptables-save` / `ip6tables-save` text (also the `-S` form of one table)
//! into the evaluation model: the built-in chains of the input path (`raw`/`mangle`
//! PREROUTING, `mangle`/`filter`/`security` INPUT) and user chains. Matches and targets it
//! does not know become unknown conditions or actions.

use crate::addrset::AddrSet;
use crate::eval::{Action, BaseChain, Chain, Cond, Family, Rule, Ruleset};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

const MAX_LINES: usize = 200_000;
const MAX_LABEL: usize = 120;

/// Split a line like a POSIX shell would for the quoting iptables-save emits (`"..."` with
/// `\"` and `\\` escapes, and `'...'`).
pub fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                has = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n)
                            }
                        }
                        c => cur.push(c),
                    }
                }
            }
            '\'' => {
                has = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn builtin(table: &str, chain: &str) -> Option<(&'static str, i64)> {
    match (table, chain) {
        ("raw", "PREROUTING") => Some(("prerouting", -300)),
        ("mangle", "PREROUTING") => Some(("prerouting", -150)),
        ("mangle", "INPUT") => Some(("input", -150)),
        ("filter", "INPUT") => Some(("input", 0)),
        ("security", "INPUT") => Some(("input", 50)),
        _ => None,
    }
}

const BUILTIN_NAMES: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// Parse `iptables-save` output. `source` is `iptables` or `ip6tables` (and decides the family).
pub fn parse(text: &str, source: &str) -> Ruleset {
    let family = if source.starts_with("ip6") {
        Family::Ip6
    } else {
        Family::Ip
    };
    let mut rs = Ruleset::default();
    let mut idx: HashMap<(String, String), usize> = HashMap::new();
    // `-S` output has no `*table` line: assume filter.
    let mut table = "filter".to_string();
    let lines: Vec<&str> = text.lines().take(MAX_LINES).collect();
    // Pass 1: chains (declared with `:NAME POLICY` or `-N NAME`/`-P NAME POLICY`).
    let mut ensure = |rs: &mut Ruleset, table: &str, name: &str, policy: Option<&str>| {
        let key = (table.to_string(), name.to_string());
        let i = *idx.entry(key).or_insert_with(|| {
            rs.chains.push(Chain {
                source: source.into(),
                family,
                table: table.into(),
                name: name.into(),
                base: builtin(table, name).map(|(hook, priority)| BaseChain {
                    hook: hook.into(),
                    priority,
                    policy: Action::Accept,
                }),
                rules: Vec::new(),
            });
            rs.chains.len() - 1
        });
        if let (Some(p), Some(b)) = (policy, rs.chains[i].base.as_mut()) {
            b.policy = if p == "DROP" {
                Action::Drop
            } else {
                Action::Accept
            };
        }
        i
    };
    for line in &lines {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut f = decl.split_whitespace();
            if let Some(name) = f.next() {
                ensure(&mut rs, &table, name, f.next());
            }
            continue;
        }
        let w = split_words(line);
        match w.first().map(String::as_str) {
            Some("-P") if w.len() >= 3 => {
                ensure(&mut rs, &table, &w[1], Some(&w[2]));
            }
            Some("-N") if w.len() >= 2 => {
                ensure(&mut rs, &table, &w[1], None);
            }
            Some("-A") if w.len() >= 2 => {
                ensure(&mut rs, &table, &w[1], None);
            }
            _ => {}
        }
    }
    // Pass 2: rules.
    let known: std::collections::HashSet<(String, String)> = rs
        .chains
        .iter()
        .map(|c| (c.table.clone(), c.name.clone()))
        .collect();
    table = "filter".into();
    for (n, line) in lines.iter().enumerate() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            continue;
        }
        let w = split_words(line);
        if w.first().map(String::as_str) != Some("-A") || w.len() < 2 {
            continue;
        }
        let mut label: String = format!("{source} {table} line {}: {line}", n + 1);
        if label.len() > MAX_LABEL {
            let mut cut = MAX_LABEL;
            while !label.is_char_boundary(cut) {
                cut -= 1;
            }
            label.truncate(cut);
            label.push_str("...");
        }
        let rule = translate(&w[2..], label, |c| {
            known.contains(&(table.clone(), c.to_string()))
        });
        if let Some(&ci) = idx.get(&(table.clone(), w[1].clone())) {
            rs.chains[ci].rules.push(rule);
        }
    }
    rs
}

fn parse_addrs(s: &str) -> Option<AddrSet> {
    s.split(',').try_fold(AddrSet::empty(), |acc, a| {
        let set = if a.contains('/') {
            // iptables prints masks as prefix lengths; a dotted mask is also accepted.
            match a.parse::<IpNet>() {
                Ok(n) => AddrSet::net(&n),
                Err(_) => {
                    let (ip, mask) = a.split_once('/')?;
                    let ip: IpAddr = ip.parse().ok()?;
                    let mask: IpAddr = mask.parse().ok()?;
                    let len = ipnet::ip_mask_to_prefix(mask).ok()?;
                    AddrSet::net(&IpNet::new(ip, len).ok()?)
                }
            }
        } else {
            AddrSet::addr(a.parse().ok()?)
        };
        Some(acc.union(&set))
    })
}

fn port_of(s: &str) -> Option<u16> {
    match s {
        "netbios-ns" => Some(137),
        "netbios-dgm" => Some(138),
        "netbios-ssn" => Some(139),
        "microsoft-ds" => Some(445),
        s => s.parse().ok(),
    }
}

fn parse_ports(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|p| match p.split_once(':') {
            Some((a, b)) => {
                let a = if a.is_empty() { 0 } else { port_of(a)? };
                let b = if b.is_empty() { u16::MAX } else { port_of(b)? };
                Some((a.min(b), a.max(b)))
            }
            None => port_of(p).map(|x| (x, x)),
        })
        .collect()
}

fn proto_of(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "ipv6-icmp" | "icmpv6" => Some(58),
        "sctp" => Some(132),
        "udplite" => Some(136),
        "esp" => Some(50),
        "ah" => Some(51),
        "gre" => Some(47),
        s => s.parse().ok(),
    }
}

/// Non-terminating targets (the packet goes on to the next rule).
const CONTINUE_TARGETS: [&str; 16] = [
    "LOG",
    "NFLOG",
    "ULOG",
    "MARK",
    "CONNMARK",
    "TRACE",
    "AUDIT",
    "CT",
    "NOTRACK",
    "TCPMSS",
    "DSCP",
    "TOS",
    "CLASSIFY",
    "SET",
    "TEE",
    "CONNSECMARK",
];

fn translate(words: &[String], label: String, is_chain: impl Fn(&str) -> bool) -> Rule {
    let mut conds = Vec::new();
    let mut action = Action::Continue;
    let mut proto: Option<u8> = None;
    let mut negate = false;
    let mut i = 0;
    let arg = |i: usize| words.get(i + 1).map(String::as_str).unwrap_or("");
    while i < words.len() {
        let w = words[i].as_str();
        if w == "!" {
            negate = true;
            i += 1;
            continue;
        }
        let mut used = 2;
        let v = arg(i);
        match w {
            "-s" | "--source" | "--src" => conds.push(match parse_addrs(v) {
                Some(set) => Cond::SAddr { set, negate },
                None => Cond::Unknown(format!("-s {v}")),
            }),
            "-d" | "--destination" | "--dst" => conds.push(match parse_addrs(v) {
                Some(set) => Cond::DAddr { set, negate },
                None => Cond::Unknown(format!("-d {v}")),
            }),
            "-p" | "--protocol" => conds.extend(protocol(v, negate, &mut proto)),
            "-i" | "--in-interface" => conds.push(if v == "lo" {
                Cond::Iif {
                    name: "lo".into(),
                    negate,
                }
            } else {
                Cond::Iif {
                    name: v.into(),
                    negate,
                }
            }),
            "-m" | "--match" => {
                // Modules only announce their options; the options decide.
                if !matches!(
                    v,
                    "tcp" | "udp" | "multiport" | "conntrack" | "state" | "comment" | "iprange"
                ) {
                    conds.push(Cond::Unknown(format!("-m {v}")));
                }
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                conds.push(match parse_ports(v) {
                    Some(ranges) => Cond::DPort {
                        proto,
                        ranges,
                        negate,
                    },
                    None => Cond::Unknown(format!("{w} {v}")),
                })
            }
            "--ports" => conds.push(Cond::SPortAny(format!("--ports {v}"))),
            "--sport" | "--source-port" | "--sports" | "--source-ports" => {
                conds.push(Cond::SPortAny(format!("{w} {v}")))
            }
            "--ctstate" | "--state" => conds.push(Cond::CtState {
                states: v.split(',').map(|s| s.to_ascii_lowercase()).collect(),
                negate,
            }),
            "--comment" => {}
            "--src-range" | "--dst-range" => conds.push(address_range(w, v, negate)),
            "-j" | "--jump" | "-g" | "--goto" => {
                action = target(w, v, &is_chain);
                // Target options (`--reject-with ...`, `--log-prefix ...`) follow: skip them.
                i += 2;
                while i < words.len() && words[i] != "!" && !is_match_opt(&words[i]) {
                    i += 1;
                }
                negate = false;
                continue;
            }
            "-f" | "--fragment" => {
                used = 1;
                conds.push(Cond::Unknown("-f".into()))
            }
            other if other.starts_with('-') => {
                // An unknown option: its value, if any, is the next word unless that is an
                // option itself.
                if v.is_empty() || v.starts_with('-') || v == "!" {
                    used = 1;
                    conds.push(Cond::Unknown(other.to_string()));
                } else {
                    conds.push(Cond::Unknown(format!("{other} {v}")));
                }
            }
            _ => used = 1,
        }
        negate = false;
        i += used;
    }
    Rule {
        label,
        conds,
        action,
    }
}

/// `-p v` (`negate`: `! -p v`); a plain protocol also qualifies the port matches after it.
fn protocol(v: &str, negate: bool, proto: &mut Option<u8>) -> Option<Cond> {
    if v == "all" || v == "0" {
        return negate.then(|| Cond::Proto {
            protos: vec![],
            negate: false,
        });
    }
    Some(match proto_of(v) {
        Some(p) => {
            if !negate {
                *proto = Some(p);
            }
            Cond::Proto {
                protos: vec![p],
                negate,
            }
        }
        None => Cond::Unknown(format!("-p {v}")),
    })
}

/// `--src-range A-B` or `--dst-range A-B` (module iprange).
fn address_range(w: &str, v: &str, negate: bool) -> Cond {
    let set = v
        .split_once('-')
        .and_then(|(a, b)| AddrSet::range(a.parse().ok()?, b.parse().ok()?));
    match (set, w) {
        (Some(set), "--src-range") => Cond::SAddr { set, negate },
        (Some(set), _) => Cond::DAddr { set, negate },
        (None, _) => Cond::Unknown(format!("{w} {v}")),
    }
}

/// The action of `-j v` or `-g v` (`w`).
fn target(w: &str, v: &str, is_chain: &impl Fn(&str) -> bool) -> Action {
    match v {
        "ACCEPT" => Action::Accept,
        "DROP" => Action::Drop,
        "REJECT" => Action::Reject,
        "RETURN" => Action::Return,
        t if CONTINUE_TARGETS.contains(&t) => Action::Continue,
        t if is_chain(t) && !BUILTIN_NAMES.contains(&t) => {
            if w.starts_with("-g") || w == "--goto" {
                Action::Goto(t.into())
            } else {
                Action::Jump(t.into())
            }
        }
        t => Action::Unknown(format!("-j {t}")),
    }
}

/// Options that are matches even after a target (`-j X -m ...` is unusual but possible).
fn is_match_opt(w: &str) -> bool {
    matches!(w, "-m" | "-p" | "-s" | "-d" | "-i" | "-j" | "-g")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes() {
        assert_eq!(
            split_words(r#"-A INPUT -m comment --comment "a \"b\" c" -j ACCEPT"#),
            vec![
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "a \"b\" c",
                "-j",
                "ACCEPT"
            ]
        );
        assert_eq!(split_words("'x y' \"\""), vec!["x y", ""]);
    }
}
