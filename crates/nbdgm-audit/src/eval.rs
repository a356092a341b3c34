//! A small model of a packet filter (base chains on a hook, user chains, rules made of
//! conditions and a verdict) and its symbolic evaluation: which source addresses get an
//! unsolicited packet to one port through. nftables and iptables rulesets are translated
//! into this model by `nft` and `ipt`; what they cannot translate becomes
//! [`Cond::Unknown`], and the addresses it could decide come out as *undetermined*.

use crate::addrset::AddrSet;
use std::collections::HashMap;

/// Address families a chain sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
}

impl Family {
    fn universe(self) -> AddrSet {
        match self {
            Family::Ip => AddrSet::all_v4(),
            Family::Ip6 => AddrSet::all_v6(),
            Family::Inet => AddrSet::all(),
        }
    }
}

/// The packet being evaluated: an unsolicited first packet (conntrack state `new`) from some
/// source outside, arriving on a non-loopback interface, to one of this host's addresses.
#[derive(Debug, Clone)]
pub struct Packet {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub dport: u16,
    /// The host's own non-loopback addresses (for destination matches).
    pub local: AddrSet,
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The packet's IP protocol is one of these (`negate`: none of these).
    Proto {
        protos: Vec<u8>,
        negate: bool,
    },
    /// The destination port is in one of the inclusive ranges. `proto`: only for that
    /// protocol (`tcp dport` never matches a UDP packet).
    DPort {
        proto: Option<u8>,
        ranges: Vec<(u16, u16)>,
        negate: bool,
    },
    /// The source port (never matches for sure: a probe can use any source port).
    SPortAny(String),
    SAddr {
        set: AddrSet,
        negate: bool,
    },
    DAddr {
        set: AddrSet,
        negate: bool,
    },
    /// Input interface name (`lo` is decidable; others are not).
    Iif {
        name: String,
        negate: bool,
    },
    /// Conntrack states (`new`, `established`, ...).
    CtState {
        states: Vec<String>,
        negate: bool,
    },
    /// Only for one family (`meta nfproto ipv4`).
    Family(Family),
    /// A condition that is always true (counters, comments).
    True,
    /// Something the evaluator does not understand.
    Unknown(String),
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    Reject,
    Return,
    Jump(String),
    Goto(String),
    /// Non-terminal or unknown target (`log`, `counter`, `LOG`): continue.
    Continue,
    /// A terminal statement the evaluator does not understand (`queue`, marks + verdict, ...).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Where the rule is, for the report: `inet filter input handle 5: ...` or `-A INPUT ...`.
    pub label: String,
    pub conds: Vec<Cond>,
    pub action: Action,
}

/// A base chain's place in the hook.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseChain {
    /// `prerouting` or `input`.
    pub hook: String,
    pub priority: i64,
    /// Policy verdict: `Accept` or `Drop`.
    pub policy: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Source of the ruleset (`nftables`, `iptables`, `ip6tables`).
    pub source: String,
    pub family: Family,
    pub table: String,
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

impl Chain {
    pub fn label(&self) -> String {
        format!("{} {} {}", family_name(self.family), self.table, self.name)
    }
}

pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::Ip => "ip",
        Family::Ip6 => "ip6",
        Family::Inet => "inet",
    }
}

/// A whole ruleset (one or several sources).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
}

/// Addresses with the rule that decided them.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub set: AddrSet,
    pub by: String,
}

/// The outcome for one packet kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub accepted: AddrSet,
    /// The rules that accepted (last chain that decided).
    pub accepted_by: Vec<Decided>,
    pub dropped: Vec<Decided>,
    pub undetermined: Vec<Decided>,
}

#[derive(Default)]
struct ChainOut {
    accepted: Vec<Decided>,
    dropped: Vec<Decided>,
    undetermined: Vec<Decided>,
    returned: AddrSet,
}

/// Deepest chain nesting followed.
pub const MAX_DEPTH: usize = 32;
/// Most rules evaluated for one packet (guards against huge or looping rulesets).
pub const MAX_STEPS: usize = 200_000;

struct Ctx<'a> {
    pkt: &'a Packet,
    by_name: HashMap<(String, Family, String, String), usize>,
    chains: &'a [Chain],
    steps: usize,
}

fn push(v: &mut Vec<Decided>, set: AddrSet, by: &str) {
    if !set.is_empty() {
        v.push(Decided {
            set,
            by: by.to_string(),
        })
    }
}

/// A condition the evaluation cannot decide, by its description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct Undecidable(String);

/// The set of sources for which all conditions hold, or why it cannot be known.
fn match_set(conds: &[Cond], pkt: &Packet, family: Family) -> Result<AddrSet, Undecidable> {
    let mut m = family.universe();
    let mut unknown: Option<String> = None;
    for c in conds {
        let s = match c {
            Cond::True => continue,
            Cond::Proto { protos, negate } => all_or_none(protos.contains(&pkt.proto) != *negate),
            Cond::DPort {
                proto,
                ranges,
                negate,
            } => {
                if proto.is_some_and(|p| p != pkt.proto) {
                    AddrSet::empty()
                } else {
                    let inside = ranges
                        .iter()
                        .any(|&(a, b)| a <= pkt.dport && pkt.dport <= b);
                    all_or_none(inside != *negate)
                }
            }
            Cond::SAddr { set, negate } => {
                if *negate {
                    AddrSet::all().subtract(set)
                } else {
                    set.clone()
                }
            }
            Cond::DAddr { set, negate } => {
                let inter = pkt.local.intersect(set);
                let (all, none) = (inter == pkt.local, inter.is_empty());
                let (all, none) = if *negate { (none, all) } else { (all, none) };
                if all {
                    AddrSet::all()
                } else if none {
                    AddrSet::empty()
                } else {
                    unknown.get_or_insert_with(|| {
                        "a destination address match covering only some of this host's addresses"
                            .into()
                    });
                    continue;
                }
            }
            Cond::Iif { name, negate } => {
                if name == "lo" {
                    all_or_none(*negate)
                } else {
                    unknown.get_or_insert_with(|| {
                        format!("input interface {}{name}", if *negate { "!= " } else { "" })
                    });
                    continue;
                }
            }
            Cond::CtState { states, negate } => {
                all_or_none(states.iter().any(|s| s == "new") != *negate)
            }
            Cond::Family(f) => f.universe(),
            Cond::SPortAny(what) => {
                unknown.get_or_insert_with(|| format!("a source port match ({what})"));
                continue;
            }
            Cond::Unknown(what) => {
                unknown.get_or_insert_with(|| what.clone());
                continue;
            }
        };
        m = m.intersect(&s);
        if m.is_empty() {
            // A known false condition decides, whatever the unknown ones say.
            return Ok(m);
        }
    }
    match unknown {
        Some(u) => Err(Undecidable(u)),
        None => Ok(m),
    }
}

fn all_or_none(b: bool) -> AddrSet {
    if b {
        AddrSet::all()
    } else {
        AddrSet::empty()
    }
}

impl Ctx<'_> {
    fn eval_chain(&mut self, idx: usize, flow: AddrSet, depth: usize) -> ChainOut {
        let mut out = ChainOut::default();
        let chain = &self.chains[idx];
        let mut flow = flow.intersect(&chain.family.universe());
        for rule in &chain.rules {
            if flow.is_empty() {
                break;
            }
            self.steps += 1;
            if self.steps > MAX_STEPS || depth > MAX_DEPTH {
                push(
                    &mut out.undetermined,
                    flow.clone(),
                    &format!("{}: ruleset too large or too deeply nested", rule.label),
                );
                return out;
            }
            let m = match match_set(&rule.conds, self.pkt, chain.family) {
                Ok(m) => m,
                Err(why) => {
                    if rule.action == Action::Continue {
                        continue;
                    }
                    let m = match_set(
                        &rule
                            .conds
                            .iter()
                            .filter(|c| {
                                !matches!(
                                    c,
                                    Cond::Unknown(_)
                                        | Cond::Iif { .. }
                                        | Cond::SPortAny(_)
                                        | Cond::DAddr { .. }
                                )
                            })
                            .cloned()
                            .collect::<Vec<_>>(),
                        self.pkt,
                        chain.family,
                    )
                    .unwrap_or_else(|_| AddrSet::all());
                    let hit = flow.intersect(&m);
                    push(
                        &mut out.undetermined,
                        hit.clone(),
                        &format!("undetermined: rule {} uses {why}", rule.label),
                    );
                    flow = flow.subtract(&hit);
                    continue;
                }
            };
            let hit = flow.intersect(&m);
            if hit.is_empty() {
                continue;
            }
            match &rule.action {
                Action::Continue => continue,
                Action::Accept => push(&mut out.accepted, hit.clone(), &rule.label),
                Action::Drop | Action::Reject => push(&mut out.dropped, hit.clone(), &rule.label),
                Action::Return => out.returned = out.returned.union(&hit),
                Action::Unknown(what) => push(
                    &mut out.undetermined,
                    hit.clone(),
                    &format!("undetermined: rule {} uses {what}", rule.label),
                ),
                Action::Jump(target) | Action::Goto(target) => {
                    let key = (
                        chain.source.clone(),
                        chain.family,
                        chain.table.clone(),
                        target.clone(),
                    );
                    match self.by_name.get(&key).copied() {
                        Some(t) => {
                            let sub = self.eval_chain(t, hit.clone(), depth + 1);
                            out.accepted.extend(sub.accepted);
                            out.dropped.extend(sub.dropped);
                            out.undetermined.extend(sub.undetermined);
                            if matches!(rule.action, Action::Jump(_)) {
                                flow = flow.subtract(&hit).union(&sub.returned);
                            } else {
                                out.returned = out.returned.union(&sub.returned);
                                flow = flow.subtract(&hit);
                            }
                            continue;
                        }
                        None => push(
                            &mut out.undetermined,
                            hit.clone(),
                            &format!(
                                "undetermined: rule {} jumps to unknown chain {target}",
                                rule.label
                            ),
                        ),
                    }
                }
            }
            flow = flow.subtract(&hit);
        }
        out.returned = out.returned.union(&flow);
        out
    }
}

/// Hooks traversed by a packet to this host, in order.
const HOOKS: [&str; 2] = ["prerouting", "input"];

/// Evaluate the packet against every base chain of the input path, in hook and priority
/// order. A packet passes when every base chain accepts it (an accept only ends its own
/// chain); a drop or reject anywhere ends it.
pub fn evaluate(rs: &Ruleset, pkt: &Packet) -> Outcome {
    let mut by_name = HashMap::new();
    for (i, c) in rs.chains.iter().enumerate() {
        by_name.insert(
            (c.source.clone(), c.family, c.table.clone(), c.name.clone()),
            i,
        );
    }
    let mut ctx = Ctx {
        pkt,
        by_name,
        chains: &rs.chains,
        steps: 0,
    };
    let mut bases: Vec<(usize, i64, usize)> = rs
        .chains
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let b = c.base.as_ref()?;
            let h = HOOKS.iter().position(|h| *h == b.hook)?;
            Some((h, b.priority, i))
        })
        .collect();
    bases.sort();
    let mut outcome = Outcome::default();
    let mut flow = AddrSet::outside();
    let mut last_accept: Vec<Decided> = vec![Decided {
        set: flow.clone(),
        by: "no rule (nothing filters this packet)".into(),
    }];
    for (_, _, i) in bases {
        let chain = &rs.chains[i];
        let universe = chain.family.universe();
        let inside = flow.intersect(&universe);
        if inside.is_empty() {
            continue;
        }
        let passthrough = flow.subtract(&universe);
        let r = ctx.eval_chain(i, inside, 0);
        let mut accepted: Vec<Decided> = r.accepted;
        let policy_label = format!("policy of chain {} ({})", chain.label(), chain.source);
        match chain.base.as_ref().map(|b| &b.policy) {
            Some(Action::Drop) | Some(Action::Reject) => {
                push(&mut outcome.dropped, r.returned.clone(), &policy_label)
            }
            _ => push(&mut accepted, r.returned.clone(), &policy_label),
        }
        outcome.dropped.extend(r.dropped);
        outcome.undetermined.extend(r.undetermined);
        let acc_set = accepted
            .iter()
            .fold(AddrSet::empty(), |a, d| a.union(&d.set));
        // Addresses that passed through untouched keep their previous deciding rule.
        let mut next: Vec<Decided> = last_accept
            .iter()
            .map(|d| Decided {
                set: d.set.intersect(&passthrough),
                by: d.by.clone(),
            })
            .filter(|d| !d.set.is_empty())
            .collect();
        next.extend(accepted);
        last_accept = next;
        flow = acc_set.union(&passthrough);
    }
    outcome.accepted = flow;
    outcome.accepted_by = last_accept;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> AddrSet {
        AddrSet::net(&s.parse().unwrap())
    }

    fn rule(conds: Vec<Cond>, action: Action) -> Rule {
        Rule {
            label: "r".into(),
            conds,
            action,
        }
    }

    fn base(rules: Vec<Rule>, policy: Action) -> Chain {
        Chain {
            source: "t".into(),
            family: Family::Inet,
            table: "f".into(),
            name: "input".into(),
            base: Some(BaseChain {
                hook: "input".into(),
                priority: 0,
                policy,
            }),
            rules,
        }
    }

    fn pkt(dport: u16) -> Packet {
        Packet {
            proto: 17,
            dport,
            local: net("198.51.100.10/32"),
        }
    }

    #[test]
    fn policy_and_allow_list() {
        let rs = Ruleset {
            chains: vec![base(
                vec![
                    rule(
                        vec![Cond::Iif {
                            name: "lo".into(),
                            negate: false,
                        }],
                        Action::Accept,
                    ),
                    rule(
                        vec![
                            Cond::SAddr {
                                set: net("198.51.100.0/24"),
                                negate: false,
                            },
                            Cond::DPort {
                                proto: Some(17),
                                ranges: vec![(137, 138)],
                                negate: false,
                            },
                        ],
                        Action::Accept,
                    ),
                ],
                Action::Drop,
            )],
        };
        let o = evaluate(&rs, &pkt(138));
        assert_eq!(o.accepted.to_cidrs(), vec!["198.51.100.0/24"]);
        let o = evaluate(&rs, &pkt(139));
        assert!(o.accepted.is_empty());
    }

    #[test]
    fn unknown_condition_is_undetermined() {
        let rs = Ruleset {
            chains: vec![base(
                vec![
                    rule(vec![Cond::Unknown("meta mark".into())], Action::Drop),
                    rule(vec![Cond::Unknown("log".into())], Action::Continue),
                ],
                Action::Accept,
            )],
        };
        let o = evaluate(&rs, &pkt(138));
        assert!(o.accepted.is_empty());
        assert_eq!(o.undetermined.len(), 1);
        assert!(o.undetermined[0].by.contains("meta mark"));
    }

    #[test]
    fn loops_are_bounded() {
        let mut c = base(
            vec![rule(vec![], Action::Jump("input".into()))],
            Action::Accept,
        );
        c.rules.push(rule(vec![], Action::Accept));
        let rs = Ruleset { chains: vec![c] };
        let o = evaluate(&rs, &pkt(138));
        assert!(!o.undetermined.is_empty());
    }
}
