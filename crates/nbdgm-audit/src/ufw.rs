//! Reading `ufw status verbose`: the default incoming policy and the rule table, turned into
//! a one-chain ruleset of the evaluation model (ufw applies the first matching rule). Used
//! when the netfilter rules ufw generates cannot be evaluated directly.

use crate::addrset::AddrSet;
use crate::eval::{Action, BaseChain, Chain, Cond, Family, Rule, Ruleset};
use ipnet::IpNet;

/// The parsed status.
#[derive(Debug, Clone, PartialEq)]
pub struct UfwStatus {
    pub active: bool,
    pub ruleset: Ruleset,
}

fn split_cols(line: &str) -> Vec<String> {
    // Columns are separated by two or more spaces.
    let mut cols = Vec::new();
    let mut cur = String::new();
    let mut spaces = 0;
    for c in line.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        if spaces >= 2 && !cur.is_empty() {
            cols.push(std::mem::take(&mut cur));
        } else if spaces == 1 && !cur.is_empty() {
            cur.push(' ');
        }
        spaces = 0;
        cur.push(c);
    }
    if !cur.is_empty() {
        cols.push(cur);
    }
    cols
}

/// Port ranges and the protocol (None: both).
type PortSpec = (Vec<(u16, u16)>, Option<u8>);

fn ports(spec: &str) -> Option<PortSpec> {
    let (list, proto) = match spec.split_once('/') {
        Some((l, "tcp")) => (l, Some(6)),
        Some((l, "udp")) => (l, Some(17)),
        Some(_) => return None,
        None => (spec, None),
    };
    let ranges = list
        .split(',')
        .map(|p| match p.split_once(':') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => p.parse().ok().map(|x| (x, x)),
        })
        .collect::<Option<Vec<(u16, u16)>>>()?;
    Some((ranges, proto))
}

/// An address or a network as ufw prints it.
fn addr_set(w: &str) -> Option<AddrSet> {
    w.parse::<IpNet>()
        .ok()
        .map(|n| AddrSet::net(&n))
        .or_else(|| w.parse().ok().map(AddrSet::addr))
}

/// The rule of one table row `t` (line `line_no`): `To  Action  From`. Outgoing and
/// forwarding rules, and rows that are not rules, give none.
fn rule(line_no: usize, t: &str) -> Option<Rule> {
    let cols = split_cols(t);
    if cols.len() < 3 {
        return None;
    }
    let label = format!("ufw rule line {line_no}: {t}");
    let (to, act, from) = (&cols[0], &cols[1], &cols[2]);
    if act.ends_with("OUT") || act.ends_with("FWD") {
        return None;
    }
    let v6 = to.ends_with("(v6)") || from.ends_with("(v6)");
    let to = to.trim_end_matches("(v6)").trim();
    let from = from.trim_end_matches("(v6)").trim();
    let mut conds = vec![Cond::Family(if v6 { Family::Ip6 } else { Family::Ip })];
    // To: "Anywhere", "PORTS[/proto]", "ADDR PORTS[/proto]", "ADDR", or an app profile.
    let mut to_words: Vec<&str> = to.split_whitespace().collect();
    if to_words.first() == Some(&"Anywhere") {
        to_words.remove(0);
    } else if let Some(a) = to_words.first().and_then(|w| addr_set(w)) {
        conds.push(Cond::DAddr {
            set: a,
            negate: false,
        });
        to_words.remove(0);
    }
    match to_words.as_slice() {
        [] => {}
        [p] => match ports(p) {
            Some((ranges, proto)) => conds.push(Cond::DPort {
                proto,
                ranges,
                negate: false,
            }),
            None => conds.push(Cond::Unknown(format!("the application profile {p:?}"))),
        },
        _ => conds.push(Cond::Unknown(format!("the destination {to:?}"))),
    }
    let mut from_words: Vec<&str> = from.split_whitespace().collect();
    if from_words.first() == Some(&"Anywhere") {
        from_words.remove(0);
    } else if let Some(w) = from_words.first().copied() {
        match addr_set(w) {
            Some(set) => {
                conds.push(Cond::SAddr { set, negate: false });
                from_words.remove(0);
            }
            None => conds.push(Cond::Unknown(format!("the source {w:?}"))),
        }
    }
    if !from_words.is_empty() {
        conds.push(Cond::SPortAny(format!("from {from}")));
    }
    let action = match act.split_whitespace().next().unwrap_or("") {
        // LIMIT accepts a first packet (it only limits rates).
        "ALLOW" | "LIMIT" => Action::Accept,
        "DENY" => Action::Drop,
        "REJECT" => Action::Reject,
        other => Action::Unknown(format!("the action {other}")),
    };
    Some(Rule {
        label,
        conds,
        action,
    })
}

/// Parse `ufw status verbose` (or `ufw status`) output.
pub fn parse(text: &str) -> UfwStatus {
    let mut active = false;
    let mut policy = Action::Accept;
    let mut rules = Vec::new();
    let mut in_table = false;
    for (n, line) in text.lines().take(100_000).enumerate() {
        let t = line.trim();
        if let Some(s) = t.strip_prefix("Status:") {
            active = s.trim() == "active";
            continue;
        }
        if let Some(d) = t.strip_prefix("Default:") {
            let incoming = d
                .split(',')
                .find(|p| p.contains("(incoming)"))
                .unwrap_or("");
            policy = if incoming.contains("deny") || incoming.contains("reject") {
                Action::Drop
            } else {
                Action::Accept
            };
            continue;
        }
        if t.starts_with("--") {
            in_table = true;
            continue;
        }
        if !in_table || t.is_empty() {
            continue;
        }
        rules.extend(rule(n + 1, t));
    }
    UfwStatus {
        active,
        ruleset: Ruleset {
            chains: vec![Chain {
                source: "ufw".into(),
                family: Family::Inet,
                table: "ufw".into(),
                name: "status".into(),
                base: Some(BaseChain {
                    hook: "input".into(),
                    priority: 0,
                    policy,
                }),
                rules,
            }],
        },
    }
}
