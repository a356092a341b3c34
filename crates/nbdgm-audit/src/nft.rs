//! Translation of `nft -j list ruleset` (libnftables JSON, schema 1) into the evaluation
//! model: `filter` chains on the `prerouting` and `input` hooks of the `ip`, `ip6` and `inet`
//! families and their user chains. Expressions it does not know become unknown conditions
//! (so the evaluation says "undetermined" rather than guessing).

use crate::addrset::AddrSet;
use crate::eval::{Action, BaseChain, Chain, Cond, Family, Rule, Ruleset};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Most elements read from one set, rules from one ruleset.
const MAX_ELEMS: usize = 100_000;
const MAX_RULES: usize = 200_000;

/// What the translation noticed besides the chains (ingress hooks, skipped families, ...).
#[derive(Debug, Default)]
pub struct Parsed {
    pub ruleset: Ruleset,
    pub notes: Vec<String>,
    /// Whether the ruleset has any table at all.
    pub tables: usize,
}

fn family_of(s: &str) -> Option<Family> {
    match s {
        "ip" => Some(Family::Ip),
        "ip6" => Some(Family::Ip6),
        "inet" => Some(Family::Inet),
        _ => None,
    }
}

fn priority(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    // Newer nft may print a standard priority name, optionally with an offset.
    let s = v.as_str()?;
    let (name, off) = match s.find(['+', '-']) {
        Some(i) => (s[..i].trim(), s[i..].replace(' ', "").parse::<i64>().ok()?),
        None => (s.trim(), 0),
    };
    let base = match name {
        "raw" => -300,
        "mangle" => -150,
        "dstnat" => -100,
        "filter" => 0,
        "security" => 50,
        "srcnat" => 100,
        _ => return None,
    };
    Some(base + off)
}

/// Why `nft -j list ruleset` output cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("nft JSON: no \"nftables\" array")]
    NoRuleset,
}

/// Parse the JSON text of `nft -j list ruleset`.
pub fn parse(text: &str) -> Result<Parsed, NftError> {
    let v: Value = serde_json::from_str(text)?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or(NftError::NoRuleset)?;
    let mut out = Parsed::default();
    let mut sets: HashMap<(String, String, String), Vec<Value>> = HashMap::new();
    let mut chain_idx: HashMap<(String, String, String), usize> = HashMap::new();
    // Pass 1: tables, chains, sets.
    for item in items {
        if let Some(t) = item.get("table") {
            out.tables += 1;
            let fam = t.get("family").and_then(Value::as_str).unwrap_or("?");
            if fam == "netdev" {
                out.notes.push(format!(
                    "table netdev {} is not evaluated (ingress hooks run before the input path)",
                    t.get("name").and_then(Value::as_str).unwrap_or("?")
                ));
            }
        }
        if let Some(s) = item.get("set").or_else(|| item.get("map")) {
            let key = (str_of(s, "family"), str_of(s, "table"), str_of(s, "name"));
            let elems = s
                .get("elem")
                .and_then(Value::as_array)
                .map(|a| a.iter().take(MAX_ELEMS).cloned().collect())
                .unwrap_or_default();
            sets.insert(key, elems);
        }
        if let Some(c) = item.get("chain") {
            let fam = str_of(c, "family");
            let Some(family) = family_of(&fam) else {
                continue;
            };
            let base = match (
                c.get("hook").and_then(Value::as_str),
                c.get("type").and_then(Value::as_str),
            ) {
                (Some(hook), Some("filter")) => Some(BaseChain {
                    hook: hook.to_string(),
                    priority: c.get("prio").and_then(priority).unwrap_or(0),
                    policy: match c.get("policy").and_then(Value::as_str) {
                        Some("drop") => Action::Drop,
                        _ => Action::Accept,
                    },
                }),
                // nat/route chains on the path: not evaluated.
                (Some(_), _) => None,
                _ => None,
            };
            let key = (fam.clone(), str_of(c, "table"), str_of(c, "name"));
            chain_idx.insert(key, out.ruleset.chains.len());
            out.ruleset.chains.push(Chain {
                source: "nftables".into(),
                family,
                table: str_of(c, "table"),
                name: str_of(c, "name"),
                base,
                rules: Vec::new(),
            });
        }
    }
    // Pass 2: rules.
    let mut n = 0;
    for item in items {
        let Some(r) = item.get("rule") else { continue };
        n += 1;
        if n > MAX_RULES {
            out.notes.push("ruleset truncated: too many rules".into());
            break;
        }
        let fam = str_of(r, "family");
        let key = (fam.clone(), str_of(r, "table"), str_of(r, "chain"));
        let Some(&ci) = chain_idx.get(&key) else {
            continue;
        };
        let label = format!(
            "{} {} {} handle {}",
            fam,
            key.1,
            key.2,
            r.get("handle")
                .map(|h| h.to_string())
                .unwrap_or_else(|| "?".into())
        );
        let ctx = SetCtx {
            sets: &sets,
            family: fam,
            table: key.1.clone(),
        };
        let rule = translate_rule(r.get("expr"), label, &ctx);
        out.ruleset.chains[ci].rules.push(rule);
    }
    Ok(out)
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

struct SetCtx<'a> {
    sets: &'a HashMap<(String, String, String), Vec<Value>>,
    family: String,
    table: String,
}

impl SetCtx<'_> {
    /// The right-hand side as a list of values: a set, a named set, or one value.
    fn values(&self, right: &Value) -> Option<Vec<Value>> {
        if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
            let elems =
                self.sets
                    .get(&(self.family.clone(), self.table.clone(), name.to_string()))?;
            return Some(elems.iter().map(unwrap_elem).collect());
        }
        if let Some(set) = right.get("set").and_then(Value::as_array) {
            return Some(set.iter().take(MAX_ELEMS).map(unwrap_elem).collect());
        }
        if let Some(arr) = right.as_array() {
            return Some(arr.iter().take(MAX_ELEMS).map(unwrap_elem).collect());
        }
        Some(vec![right.clone()])
    }
}

fn unwrap_elem(v: &Value) -> Value {
    v.get("elem")
        .and_then(|e| e.get("val"))
        .cloned()
        .unwrap_or_else(|| v.clone())
}

fn translate_rule(expr: Option<&Value>, label: String, ctx: &SetCtx) -> Rule {
    let mut conds = Vec::new();
    let mut action = Action::Continue;
    let stmts: &[Value] = expr
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for st in stmts {
        let Some(obj) = st.as_object() else {
            conds.push(Cond::Unknown("a malformed statement".into()));
            continue;
        };
        let Some((kind, body)) = obj.iter().next() else {
            continue;
        };
        match kind.as_str() {
            "match" => conds.push(translate_match(body, ctx)),
            "accept" => action = Action::Accept,
            "drop" => action = Action::Drop,
            "reject" => action = Action::Reject,
            "return" => action = Action::Return,
            "continue" => action = Action::Continue,
            "jump" => {
                action = Action::Jump(
                    body.get("target")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                )
            }
            "goto" => {
                action = Action::Goto(
                    body.get("target")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                )
            }
            // Statements that do not change whether or how the packet matches.
            "counter" | "log" | "mangle" | "notrack" | "set" | "meter" | "ct helper"
            | "ct timeout" | "ct expectation" | "synproxy" | "flow" => {}
            "limit" | "quota" | "xt" | "fib" => {
                conds.push(Cond::Unknown(format!("{kind} ({})", short(body))))
            }
            "vmap" => action = Action::Unknown("a verdict map".into()),
            "queue" | "dnat" | "snat" | "masquerade" | "redirect" | "tproxy" | "dup" | "fwd" => {
                action = Action::Unknown(kind.clone())
            }
            other => conds.push(Cond::Unknown(format!("the statement {other}"))),
        }
    }
    Rule {
        label,
        conds,
        action,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let mut cut = 60;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

fn proto_num(v: &Value) -> Option<u8> {
    if let Some(n) = v.as_u64() {
        return u8::try_from(n).ok();
    }
    match v.as_str()? {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" | "ipv6-icmp" => Some(58),
        "sctp" => Some(132),
        "udplite" => Some(136),
        "dccp" => Some(33),
        "esp" => Some(50),
        "ah" => Some(51),
        "gre" => Some(47),
        _ => None,
    }
}

/// Port value: number or a service name of the ports this tool cares about.
fn port_num(v: &Value) -> Option<u16> {
    if let Some(n) = v.as_u64() {
        return u16::try_from(n).ok();
    }
    match v.as_str()? {
        "netbios-ns" => Some(137),
        "netbios-dgm" => Some(138),
        "netbios-ssn" => Some(139),
        "microsoft-ds" => Some(445),
        s => s.parse().ok(),
    }
}

fn port_ranges(vals: &[Value]) -> Option<Vec<(u16, u16)>> {
    vals.iter()
        .map(|v| {
            if let Some(r) = v.get("range").and_then(Value::as_array) {
                let a = port_num(r.first()?)?;
                let b = port_num(r.get(1)?)?;
                Some((a.min(b), a.max(b)))
            } else {
                let p = port_num(v)?;
                Some((p, p))
            }
        })
        .collect()
}

fn addr_value(v: &Value) -> Option<AddrSet> {
    if let Some(s) = v.as_str() {
        return Some(AddrSet::addr(s.parse::<IpAddr>().ok()?));
    }
    if let Some(p) = v.get("prefix") {
        let a: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        return Some(AddrSet::net(&IpNet::new(a, len).ok()?));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        let a: IpAddr = r.first()?.as_str()?.parse().ok()?;
        let b: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
        return AddrSet::range(a, b);
    }
    None
}

fn addr_set(vals: &[Value]) -> Option<AddrSet> {
    vals.iter()
        .try_fold(AddrSet::empty(), |acc, v| Some(acc.union(&addr_value(v)?)))
}

fn translate_match(m: &Value, ctx: &SetCtx) -> Cond {
    let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
    let left = m.get("left").unwrap_or(&Value::Null);
    let right = m.get("right").unwrap_or(&Value::Null);
    let unknown = || Cond::Unknown(format!("the match {} {op} {}", short(left), short(right)));
    let negate = match op {
        "==" | "in" => false,
        "!=" => true,
        "<" | ">" | "<=" | ">=" => {
            return relational(left, op, right).unwrap_or_else(unknown);
        }
        _ => return unknown(),
    };
    let Some(vals) = ctx.values(right) else {
        return Cond::Unknown(format!("the unknown set {}", short(right)));
    };
    if let Some(p) = left.get("payload") {
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
        let field = p.get("field").and_then(Value::as_str).unwrap_or("");
        return match (proto, field) {
            ("ip" | "ip6", "saddr") => match addr_set(&vals) {
                Some(set) => {
                    let fam = if proto == "ip" {
                        AddrSet::all_v4()
                    } else {
                        AddrSet::all_v6()
                    };
                    // `ip saddr X` also implies "the packet is IPv4".
                    if negate {
                        Cond::SAddr {
                            set: AddrSet::all().subtract(&fam).union(&set),
                            negate: true,
                        }
                    } else {
                        Cond::SAddr { set, negate: false }
                    }
                }
                None => unknown(),
            },
            ("ip" | "ip6", "daddr") => match addr_set(&vals) {
                Some(set) => Cond::DAddr { set, negate },
                None => unknown(),
            },
            ("ip", "protocol") | ("ip6", "nexthdr") => {
                match vals.iter().map(proto_num).collect::<Option<Vec<_>>>() {
                    Some(protos) => Cond::Proto { protos, negate },
                    None => unknown(),
                }
            }
            ("tcp" | "udp" | "th" | "udplite" | "sctp" | "dccp", "dport") => {
                match port_ranges(&vals) {
                    Some(ranges) => Cond::DPort {
                        proto: match proto {
                            "tcp" => Some(6),
                            "udp" => Some(17),
                            "th" => None,
                            "udplite" => Some(136),
                            "sctp" => Some(132),
                            _ => Some(33),
                        },
                        ranges,
                        negate,
                    },
                    None => unknown(),
                }
            }
            (_, "sport") => Cond::SPortAny(format!("{proto} sport")),
            _ => unknown(),
        };
    }
    if let Some(meta) = left.get("meta") {
        let key = meta.get("key").and_then(Value::as_str).unwrap_or("");
        return match key {
            "iifname" | "iif" => {
                let names: Option<Vec<String>> = vals
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect();
                match names.as_deref() {
                    Some([one]) if !one.contains('*') => Cond::Iif {
                        name: one.clone(),
                        negate,
                    },
                    // A set of names containing lo and others, or wildcards.
                    Some(list) if list.iter().all(|n| n == "lo") && !list.is_empty() => Cond::Iif {
                        name: "lo".into(),
                        negate,
                    },
                    _ => unknown(),
                }
            }
            "l4proto" => match vals.iter().map(proto_num).collect::<Option<Vec<_>>>() {
                Some(protos) => Cond::Proto { protos, negate },
                None => unknown(),
            },
            "nfproto" => match (vals.as_slice(), negate) {
                ([v], false) if v.as_str() == Some("ipv4") => Cond::Family(Family::Ip),
                ([v], false) if v.as_str() == Some("ipv6") => Cond::Family(Family::Ip6),
                ([v], true) if v.as_str() == Some("ipv4") => Cond::Family(Family::Ip6),
                ([v], true) if v.as_str() == Some("ipv6") => Cond::Family(Family::Ip),
                _ => unknown(),
            },
            _ => unknown(),
        };
    }
    if let Some(ct) = left.get("ct") {
        if ct.get("key").and_then(Value::as_str) == Some("state") {
            let states: Option<Vec<String>> = vals
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            return match states {
                Some(states) => Cond::CtState { states, negate },
                None => unknown(),
            };
        }
    }
    unknown()
}

fn relational(left: &Value, op: &str, right: &Value) -> Option<Cond> {
    let p = left.get("payload")?;
    if p.get("field")?.as_str()? != "dport" {
        return None;
    }
    let proto = match p.get("protocol")?.as_str()? {
        "tcp" => Some(6),
        "udp" => Some(17),
        "th" => None,
        _ => return None,
    };
    let n = port_num(right)?;
    let range = match op {
        "<" => (0, n.checked_sub(1)?),
        "<=" => (0, n),
        ">" => (n.checked_add(1)?, u16::MAX),
        _ => (n, u16::MAX),
    };
    Some(Cond::DPort {
        proto,
        ranges: vec![range],
        negate: false,
    })
}
