//! Allow/deny lists of IPv4 prefixes, checked at the door for every packet and
//! API connection. Deny wins over allow; an empty allow list admits nobody
//! (use [`Acl::allow_any`] to admit everyone not denied).
//!
//! The prefixes are merged into a [`PrefixSet`] (sorted, disjoint address ranges) when
//! the list is built, so a lookup is one binary search (a few ns for typical lists).

use ipnet::Ipv4Net;
use nbdgm_base::prefix::{write_nets, PrefixSet};
use std::fmt;
use std::net::Ipv4Addr;

/// An allow/deny list of IPv4 prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    allow_any: bool,
    allow: PrefixSet,
    deny: PrefixSet,
    allow_nets: Vec<Ipv4Net>,
    deny_nets: Vec<Ipv4Net>,
}

impl Acl {
    /// Admit addresses in `allow` that are not in `deny`. Host bits are ignored
    /// (`10.0.0.5/24` means `10.0.0.0/24`). An empty `allow` admits nobody.
    pub fn new(allow: Vec<Ipv4Net>, deny: Vec<Ipv4Net>) -> Self {
        let allow_nets: Vec<Ipv4Net> = allow.iter().map(Ipv4Net::trunc).collect();
        let deny_nets: Vec<Ipv4Net> = deny.iter().map(Ipv4Net::trunc).collect();
        Acl {
            allow_any: false,
            allow: PrefixSet::from_nets(&allow_nets),
            deny: PrefixSet::from_nets(&deny_nets),
            allow_nets,
            deny_nets,
        }
    }

    /// The default ("auto") list: the subnets of the node's own interfaces.
    pub fn auto(interfaces: &[Ipv4Net]) -> Self {
        Acl::new(interfaces.to_vec(), Vec::new())
    }

    /// Admit every address except those in `deny`.
    pub fn allow_any(deny: Vec<Ipv4Net>) -> Self {
        let mut acl = Acl::new(Vec::new(), deny);
        acl.allow_any = true;
        acl
    }

    /// Admit nobody.
    pub fn deny_all() -> Self {
        Acl::new(Vec::new(), Vec::new())
    }

    /// Whether `ip` may pass: not denied, and allowed.
    #[inline]
    pub fn permits(&self, ip: Ipv4Addr) -> bool {
        !self.deny.contains(ip) && (self.allow_any || self.allow.contains(ip))
    }

    /// Whether the allow side admits every address.
    pub fn is_allow_any(&self) -> bool {
        self.allow_any
    }

    /// The allow prefixes as given (host bits cleared).
    pub fn allow_nets(&self) -> &[Ipv4Net] {
        &self.allow_nets
    }

    /// The deny prefixes as given (host bits cleared).
    pub fn deny_nets(&self) -> &[Ipv4Net] {
        &self.deny_nets
    }
}

/// `allow 10.0.0.0/8, 192.0.2.0/24; deny 10.9.0.0/16` (for logs and `--check-config`).
impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("allow ")?;
        if self.allow_any {
            f.write_str("any")?;
        } else {
            write_nets(f, &self.allow_nets)?;
        }
        f.write_str("; deny ")?;
        write_nets(f, &self.deny_nets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_allow_denies_everything() {
        let acl = Acl::deny_all();
        assert!(!acl.permits(ip("0.0.0.0")));
        assert!(!acl.permits(ip("192.0.2.1")));
        assert!(!acl.permits(ip("255.255.255.255")));
        assert_eq!(acl, Acl::new(vec![], vec![]));
    }

    #[test]
    fn allow_any_admits_all_but_denied() {
        let acl = Acl::allow_any(vec![net("10.0.0.0/8")]);
        assert!(acl.permits(ip("0.0.0.0")));
        assert!(acl.permits(ip("255.255.255.255")));
        assert!(!acl.permits(ip("10.1.2.3")));
        assert!(acl.permits(ip("11.0.0.0")));
        assert!(acl.permits(ip("9.255.255.255")));
    }

    #[test]
    fn slash_zero_and_slash_32() {
        let all = Acl::new(vec![net("0.0.0.0/0")], vec![]);
        assert!(all.permits(ip("0.0.0.0")));
        assert!(all.permits(ip("255.255.255.255")));
        let one = Acl::new(vec![net("192.0.2.7/32")], vec![]);
        assert!(one.permits(ip("192.0.2.7")));
        assert!(!one.permits(ip("192.0.2.6")));
        assert!(!one.permits(ip("192.0.2.8")));
        let deny_all = Acl::new(vec![net("0.0.0.0/0")], vec![net("0.0.0.0/0")]);
        assert!(!deny_all.permits(ip("1.2.3.4")));
        let top = Acl::new(vec![net("255.255.255.255/32")], vec![]);
        assert!(top.permits(ip("255.255.255.255")));
        assert!(!top.permits(ip("255.255.255.254")));
    }

    #[test]
    fn deny_wins_over_allow() {
        let acl = Acl::new(
            vec![net("192.168.0.0/16")],
            vec![net("192.168.5.0/24"), net("192.168.9.9/32")],
        );
        assert!(acl.permits(ip("192.168.4.255")));
        assert!(!acl.permits(ip("192.168.5.0")));
        assert!(!acl.permits(ip("192.168.5.255")));
        assert!(acl.permits(ip("192.168.6.0")));
        assert!(!acl.permits(ip("192.168.9.9")));
        assert!(acl.permits(ip("192.168.9.10")));
        assert!(!acl.permits(ip("10.0.0.1")));
    }

    #[test]
    fn overlapping_and_adjacent_prefixes_merge() {
        let acl = Acl::new(
            vec![
                net("10.0.0.0/24"),
                net("10.0.0.128/25"),
                net("10.0.1.0/24"),
                net("10.0.0.0/23"),
                net("10.0.3.0/24"),
            ],
            vec![],
        );
        assert_eq!(acl.allow.ranges().len(), 2);
        assert!(acl.permits(ip("10.0.1.255")));
        assert!(!acl.permits(ip("10.0.2.0")));
        assert!(acl.permits(ip("10.0.3.0")));
        assert!(!acl.permits(ip("10.0.4.0")));
    }

    #[test]
    fn host_bits_are_ignored_and_auto_uses_subnets() {
        let acl = Acl::auto(&[net("198.51.100.10/24"), net("127.0.0.1/8")]);
        assert!(acl.permits(ip("198.51.100.200")));
        assert!(acl.permits(ip("127.9.9.9")));
        assert!(!acl.permits(ip("198.51.101.1")));
        assert_eq!(acl.allow_nets()[0], net("198.51.100.0/24"));
        assert_eq!(
            acl.to_string(),
            "allow 198.51.100.0/24, 127.0.0.0/8; deny none"
        );
        assert_eq!(
            Acl::allow_any(vec![net("10.0.0.0/8")]).to_string(),
            "allow any; deny 10.0.0.0/8"
        );
    }

    fn naive(allow: &[Ipv4Net], deny: &[Ipv4Net], ip: Ipv4Addr) -> bool {
        !deny.iter().any(|n| n.contains(&ip)) && allow.iter().any(|n| n.contains(&ip))
    }

    fn arb_net() -> impl Strategy<Value = Ipv4Net> {
        // Cluster addresses so the lists overlap often.
        (0u32..64, 0u8..=32)
            .prop_map(|(a, p)| Ipv4Net::new(Ipv4Addr::from(0x0A00_0000 | (a << 20)), p).unwrap())
    }

    proptest! {
        #[test]
        fn matches_naive_check(
            allow in proptest::collection::vec(arb_net(), 0..8),
            deny in proptest::collection::vec(arb_net(), 0..8),
            probe in proptest::collection::vec(any::<u32>(), 32),
            a in 0u32..64,
            low in any::<u32>(),
        ) {
            let acl = Acl::new(allow.clone(), deny.clone());
            let near = 0x0A00_0000 | (a << 20) | (low & 0xF_FFFF);
            for x in probe.into_iter().chain([near, 0, u32::MAX]) {
                let ip = Ipv4Addr::from(x);
                prop_assert_eq!(acl.permits(ip), naive(&allow, &deny, ip), "{}", ip);
            }
        }
    }
}
