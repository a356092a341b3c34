//! Target lists for the exposure probes: IPv4 addresses, CIDR ranges and host
//! names (resolved to IPv4 with the system resolver), expanded in the given order,
//! de-duplicated and capped. The network and broadcast addresses of a /0–/30 range are
//! left out (RFC 919/922 directed broadcast; a /31 or /32 has none, RFC 3021).

use ipnet::Ipv4Net;
use nbdgm_base::PrefixSet;
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

/// Default cap on the number of addresses one run may probe.
pub const DEFAULT_MAX_HOSTS: usize = 65_536;
/// Longest host name accepted (RFC 1035 §2.3.4).
pub const MAX_HOSTNAME_LEN: usize = 253;
/// Longest target argument accepted at all.
const MAX_SPEC_LEN: usize = 300;

/// One address to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: Ipv4Addr,
    /// The host name it was given as, when it was a name.
    pub hostname: Option<String>,
}

impl Target {
    pub fn new(addr: Ipv4Addr) -> Self {
        Target {
            addr,
            hostname: None,
        }
    }
}

/// Why a target list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("empty target")]
    Empty,
    #[error("{0:?}: IPv6 is not supported (IPv4 only)")]
    Ipv6(String),
    #[error("{0:?}: not an IPv4 address")]
    BadAddress(String),
    #[error("{spec:?}: not a CIDR range: {reason}")]
    BadRange { spec: String, reason: String },
    #[error("{0:?}: not an address, CIDR range or host name")]
    BadName(String),
    #[error("{spec:?}: {reason}")]
    Unusable { spec: String, reason: String },
    #[error("cannot resolve {name:?}: {reason}")]
    Resolve { name: String, reason: String },
    #[error("{0:?} has no IPv4 address")]
    NoIpv4(String),
    #[error("more than {max} addresses to probe (raise --max-hosts, or give smaller ranges)")]
    TooMany { max: usize },
}

/// The set of addresses a run may send to. Every probe socket's destination is checked
/// against it before any packet leaves ([`crate::probe`]). Kept as ranges
/// ([`nbdgm_base::PrefixSet`]): a /16 of targets is one range, a lookup a binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSet {
    addrs: PrefixSet,
}

impl TargetSet {
    pub fn from_targets(targets: &[Target]) -> Self {
        TargetSet {
            addrs: PrefixSet::from_ranges(targets.iter().map(|t| (t.addr, t.addr))),
        }
    }

    pub fn single(addr: Ipv4Addr) -> Self {
        TargetSet {
            addrs: PrefixSet::addr(addr),
        }
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.addrs.contains(addr)
    }

    /// How many distinct addresses.
    pub fn len(&self) -> usize {
        usize::try_from(self.addrs.addr_count()).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Parse and expand `specs` with the system resolver for host names.
pub fn parse_targets<S: AsRef<str>>(
    specs: &[S],
    max_hosts: usize,
) -> Result<Vec<Target>, TargetError> {
    parse_targets_with(specs, max_hosts, system_resolve)
}

/// Parse and expand `specs`; `resolve` turns a host name into IPv4 addresses. The result
/// keeps the order of first appearance and holds each address once; more than
/// `max_hosts` addresses is an error (checked while expanding, so a /0 costs at most
/// `max_hosts + 1` steps).
pub fn parse_targets_with<S, R>(
    specs: &[S],
    max_hosts: usize,
    mut resolve: R,
) -> Result<Vec<Target>, TargetError>
where
    S: AsRef<str>,
    R: FnMut(&str) -> io::Result<Vec<Ipv4Addr>>,
{
    let mut seen: HashSet<Ipv4Addr> = HashSet::new();
    let mut out: Vec<Target> = Vec::new();
    let mut push = |t: Target, out: &mut Vec<Target>| -> Result<(), TargetError> {
        if seen.insert(t.addr) {
            if out.len() >= max_hosts {
                return Err(TargetError::TooMany { max: max_hosts });
            }
            out.push(t);
        }
        Ok(())
    };
    for spec in specs {
        let spec = spec.as_ref().trim();
        match classify(spec)? {
            Spec::Addr(a) => push(Target::new(a), &mut out)?,
            Spec::Range(net) => {
                for a in range_hosts(net) {
                    push(Target::new(a), &mut out)?;
                }
            }
            Spec::Name(name) => {
                let addrs = resolve(&name).map_err(|e| TargetError::Resolve {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
                let mut any = false;
                for a in addrs {
                    if check_addr(&name, a).is_err() {
                        continue;
                    }
                    any = true;
                    push(
                        Target {
                            addr: a,
                            hostname: Some(name.clone()),
                        },
                        &mut out,
                    )?;
                }
                if !any {
                    return Err(TargetError::NoIpv4(name));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(out)
}

enum Spec {
    Addr(Ipv4Addr),
    Range(Ipv4Net),
    Name(String),
}

fn classify(spec: &str) -> Result<Spec, TargetError> {
    if spec.is_empty() {
        return Err(TargetError::Empty);
    }
    if spec.len() > MAX_SPEC_LEN {
        return Err(TargetError::BadName(spec.chars().take(40).collect()));
    }
    if spec.contains(':') {
        return Err(TargetError::Ipv6(spec.to_string()));
    }
    if let Some((addr, len)) = spec.split_once('/') {
        let bad = |reason: &str| TargetError::BadRange {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("bad IPv4 address"))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 2 {
            return Err(bad("prefix length must be 0-32"));
        }
        let len: u8 = len.parse().map_err(|_| bad("prefix length must be 0-32"))?;
        let net = Ipv4Net::new(addr, len).map_err(|_| bad("prefix length must be 0-32"))?;
        let net = net.trunc();
        let multicast: Ipv4Net = Ipv4Net::new(Ipv4Addr::new(224, 0, 0, 0), 4).unwrap_or_default();
        if multicast.contains(&net) || net.contains(&multicast) {
            return Err(TargetError::Unusable {
                spec: spec.to_string(),
                reason: "the range includes multicast addresses (224.0.0.0/4)".into(),
            });
        }
        return Ok(Spec::Range(net));
    }
    if spec.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let a: Ipv4Addr = spec
            .parse()
            .map_err(|_| TargetError::BadAddress(spec.to_string()))?;
        check_addr(spec, a)?;
        return Ok(Spec::Addr(a));
    }
    let valid_name = spec.len() <= MAX_HOSTNAME_LEN
        && spec.split('.').enumerate().all(|(i, label)| {
            (!label.is_empty() || i > 0 && spec.ends_with('.'))
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
        });
    if !valid_name {
        return Err(TargetError::BadName(spec.to_string()));
    }
    Ok(Spec::Name(spec.to_string()))
}

fn check_addr(spec: &str, a: Ipv4Addr) -> Result<(), TargetError> {
    let reason = if a.is_unspecified() {
        "0.0.0.0 is not a host"
    } else if a.is_broadcast() {
        "255.255.255.255 is the limited broadcast address"
    } else if a.is_multicast() {
        "multicast addresses cannot be probed"
    } else {
        return Ok(());
    };
    Err(TargetError::Unusable {
        spec: spec.to_string(),
        reason: reason.into(),
    })
}

/// The addresses of a range: all of a /31 or /32, the hosts between the network and
/// broadcast addresses otherwise. Lazy, so a huge range costs nothing until iterated.
pub fn range_hosts(net: Ipv4Net) -> impl DoubleEndedIterator<Item = Ipv4Addr> {
    let net = net.trunc();
    let first = u32::from(net.network());
    let last = u32::from(net.broadcast());
    let (lo, hi) = if net.prefix_len() >= 31 {
        (first, last)
    } else {
        (first.saturating_add(1), last.saturating_sub(1))
    };
    (lo..=hi).map(Ipv4Addr::from)
}

/// Resolve a host name with the system resolver (`getaddrinfo`), IPv4 answers only, in
/// the resolver's order without duplicates.
pub fn system_resolve(name: &str) -> io::Result<Vec<Ipv4Addr>> {
    let mut out = Vec::new();
    for sa in (name, 0u16).to_socket_addrs()? {
        if let IpAddr::V4(a) = sa.ip() {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if out.len() >= 64 {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dns(name: &str) -> io::Result<Vec<Ipv4Addr>> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no {name}"),
        ))
    }

    fn addrs(specs: &[&str], max: usize) -> Result<Vec<Ipv4Addr>, TargetError> {
        parse_targets_with(specs, max, no_dns).map(|v| v.into_iter().map(|t| t.addr).collect())
    }

    #[test]
    fn single_addresses_keep_order_and_dedupe() {
        let v = addrs(&["198.51.100.20", "198.51.100.10", "198.51.100.20"], 10).unwrap();
        assert_eq!(
            v,
            vec![
                Ipv4Addr::new(198, 51, 100, 20),
                Ipv4Addr::new(198, 51, 100, 10)
            ]
        );
    }

    #[test]
    fn ranges_skip_network_and_broadcast() {
        let v = addrs(&["198.51.100.0/30"], 10).unwrap();
        assert_eq!(
            v,
            vec![
                Ipv4Addr::new(198, 51, 100, 1),
                Ipv4Addr::new(198, 51, 100, 2)
            ]
        );
        assert_eq!(addrs(&["198.51.100.0/24"], 1000).unwrap().len(), 254);
        // A host address with a prefix means its network.
        assert_eq!(addrs(&["198.51.100.77/29"], 10).unwrap().len(), 6);
    }

    #[test]
    fn slash_31_and_32_are_whole() {
        assert_eq!(
            addrs(&["198.51.100.4/31"], 10).unwrap(),
            vec![
                Ipv4Addr::new(198, 51, 100, 4),
                Ipv4Addr::new(198, 51, 100, 5)
            ]
        );
        assert_eq!(
            addrs(&["198.51.100.9/32"], 10).unwrap(),
            vec![Ipv4Addr::new(198, 51, 100, 9)]
        );
    }

    #[test]
    fn overlapping_ranges_dedupe() {
        let v = addrs(&["198.51.100.0/29", "198.51.100.4/30", "198.51.100.3"], 100).unwrap();
        assert_eq!(v.len(), 6);
        assert_eq!(v.first(), Some(&Ipv4Addr::new(198, 51, 100, 1)));
    }

    #[test]
    fn cap_is_enforced_cheaply() {
        assert_eq!(addrs(&["198.51.100.0/24"], 254).unwrap().len(), 254);
        assert_eq!(
            addrs(&["198.51.100.0/24"], 253),
            Err(TargetError::TooMany { max: 253 })
        );
        // /0 stops at the cap instead of expanding 4 billion addresses.
        assert_eq!(
            addrs(&["0.0.0.0/1"], 65_536),
            Err(TargetError::TooMany { max: 65_536 })
        );
        // Duplicates do not count against the cap.
        assert_eq!(
            addrs(&["198.51.100.1", "198.51.100.1"], 1).unwrap().len(),
            1
        );
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            "",
            "  ",
            "198.51.100.300",
            "198.51.100",
            "198.51.100.0/33",
            "198.51.100.0/",
            "198.51.100.0/-1",
            "198.51.100.0/+8",
            "x/24",
            "2001:db8::1",
            "::1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "224.0.0.0/24",
            "192.0.0.0/2",
            "bad name",
            "-leading.example",
            "a..b",
            "ünïcode",
        ] {
            assert!(addrs(&[bad], 100).is_err(), "{bad:?} accepted");
        }
        assert!(addrs(&[&"a".repeat(400) as &str], 100).is_err());
        assert_eq!(addrs(&[] as &[&str], 10), Err(TargetError::Empty));
    }

    #[test]
    fn host_names_resolve_ipv4_and_keep_the_name() {
        let v = parse_targets_with(&["samba.example", "198.51.100.10"], 10, |n| {
            assert_eq!(n, "samba.example");
            Ok(vec![
                Ipv4Addr::new(198, 51, 100, 10),
                Ipv4Addr::new(224, 0, 0, 1),
                Ipv4Addr::new(198, 51, 100, 11),
            ])
        })
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].hostname.as_deref(), Some("samba.example"));
        assert_eq!(v[1].addr, Ipv4Addr::new(198, 51, 100, 11));
        assert!(matches!(
            parse_targets_with(&["nowhere.example"], 10, no_dns),
            Err(TargetError::Resolve { .. })
        ));
        assert!(matches!(
            parse_targets_with(&["v6only.example"], 10, |_| Ok(vec![])),
            Err(TargetError::NoIpv4(_))
        ));
    }

    #[test]
    fn localhost_resolves_with_the_system_resolver() {
        // /etc/hosts; no DNS traffic.
        let v = parse_targets(&["localhost"], 10).unwrap();
        assert!(v.iter().all(|t| t.addr.is_loopback()));
    }

    #[test]
    fn target_set_membership() {
        let t = parse_targets_with(&["198.51.100.0/30"], 10, no_dns).unwrap();
        let s = TargetSet::from_targets(&t);
        assert!(s.contains(Ipv4Addr::new(198, 51, 100, 1)));
        assert!(!s.contains(Ipv4Addr::new(198, 51, 100, 0)));
        assert!(!s.contains(Ipv4Addr::new(198, 51, 100, 3)));
        assert_eq!(s.len(), 2);
        // Duplicates count once; adjacent addresses merge into one range.
        let d = [198u8, 199, 198, 200].map(|h| Target::new(Ipv4Addr::new(198, 51, 100, h)));
        let s = TargetSet::from_targets(&d);
        assert_eq!(s.len(), 3);
        assert!(s.contains(Ipv4Addr::new(198, 51, 100, 200)));
        assert!(!s.contains(Ipv4Addr::new(198, 51, 100, 201)));
        assert!(TargetSet::from_targets(&[]).is_empty());
        assert_eq!(TargetSet::single(Ipv4Addr::new(192, 0, 2, 1)).len(), 1);
    }

    #[test]
    fn huge_range_iterator_is_lazy_and_bounded() {
        let net: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        let mut it = range_hosts(net);
        assert_eq!(it.next(), Some(Ipv4Addr::new(0, 0, 0, 1)));
        assert_eq!(
            range_hosts(net).next_back(),
            Some(Ipv4Addr::new(255, 255, 255, 254))
        );
    }
}
