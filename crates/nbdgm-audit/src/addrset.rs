//! Sets of source addresses (IPv4 and IPv6) for the firewall evaluation: one
//! [`nbdgm_base::PrefixSet`] per family (sorted, disjoint inclusive ranges with union,
//! intersection and difference), and the conversion back to CIDR blocks for reports.

use ipnet::IpNet;
use nbdgm_base::PrefixSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most CIDR blocks printed for one set.
pub const MAX_BLOCKS: usize = 64;

/// A set of IPv4 and IPv6 source addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrSet {
    pub v4: PrefixSet<Ipv4Addr>,
    pub v6: PrefixSet<Ipv6Addr>,
}

impl AddrSet {
    pub fn empty() -> Self {
        AddrSet::default()
    }

    /// Every address of both families.
    pub fn all() -> Self {
        AddrSet {
            v4: PrefixSet::full(),
            v6: PrefixSet::full(),
        }
    }

    pub fn all_v4() -> Self {
        AddrSet {
            v4: PrefixSet::full(),
            v6: PrefixSet::empty(),
        }
    }

    pub fn all_v6() -> Self {
        AddrSet {
            v4: PrefixSet::empty(),
            v6: PrefixSet::full(),
        }
    }

    /// "Anywhere" as seen from the outside: every address except loopback (127.0.0.0/8,
    /// ::1), which the kernel never accepts from a real interface.
    pub fn outside() -> Self {
        let lo4 = AddrSet::range(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(127, 255, 255, 255)),
        )
        .unwrap_or_default();
        let lo6 = AddrSet::addr(IpAddr::V6(Ipv6Addr::LOCALHOST));
        AddrSet::all().subtract(&lo4.union(&lo6))
    }

    /// The addresses of a prefix (host bits ignored).
    pub fn net(n: &IpNet) -> Self {
        match n {
            IpNet::V4(n) => AddrSet {
                v4: PrefixSet::from_nets([n]),
                v6: PrefixSet::empty(),
            },
            IpNet::V6(n) => AddrSet {
                v4: PrefixSet::empty(),
                v6: PrefixSet::from_nets([n]),
            },
        }
    }

    pub fn addr(a: IpAddr) -> Self {
        AddrSet::range(a, a).unwrap_or_default()
    }

    /// `lo..=hi` of one family (None for mixed families).
    pub fn range(lo: IpAddr, hi: IpAddr) -> Option<Self> {
        match (lo, hi) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Some(AddrSet {
                v4: PrefixSet::range(a, b),
                v6: PrefixSet::empty(),
            }),
            (IpAddr::V6(a), IpAddr::V6(b)) => Some(AddrSet {
                v4: PrefixSet::empty(),
                v6: PrefixSet::range(a, b),
            }),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn union(&self, o: &AddrSet) -> AddrSet {
        AddrSet {
            v4: self.v4.union(&o.v4),
            v6: self.v6.union(&o.v6),
        }
    }

    pub fn intersect(&self, o: &AddrSet) -> AddrSet {
        AddrSet {
            v4: self.v4.intersect(&o.v4),
            v6: self.v6.intersect(&o.v6),
        }
    }

    pub fn subtract(&self, o: &AddrSet) -> AddrSet {
        AddrSet {
            v4: self.v4.subtract(&o.v4),
            v6: self.v6.subtract(&o.v6),
        }
    }

    /// `self ⊇ o`.
    pub fn contains_set(&self, o: &AddrSet) -> bool {
        self.v4.contains_set(&o.v4) && self.v6.contains_set(&o.v6)
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.v4.contains(a),
            IpAddr::V6(a) => self.v6.contains(a),
        }
    }

    /// The set as CIDR strings (IPv4 first), at most [`MAX_BLOCKS`] (then `...`).
    pub fn to_cidrs(&self) -> Vec<String> {
        let mut out: Vec<String> = self.v4.to_nets().iter().map(|n| n.to_string()).collect();
        out.extend(self.v6.to_nets().iter().map(|n| n.to_string()));
        if out.len() > MAX_BLOCKS {
            out.truncate(MAX_BLOCKS);
            out.push("...".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> AddrSet {
        AddrSet::net(&s.parse().unwrap())
    }

    #[test]
    fn algebra_and_cidrs() {
        let a = n("198.51.100.0/24");
        assert_eq!(a.to_cidrs(), vec!["198.51.100.0/24"]);
        let b = a.subtract(&n("198.51.100.128/25"));
        assert_eq!(b.to_cidrs(), vec!["198.51.100.0/25"]);
        let c = b.union(&n("198.51.100.128/26"));
        assert_eq!(c.to_cidrs(), vec!["198.51.100.0/25", "198.51.100.128/26"]);
        assert!(a.contains_set(&c));
        assert!(!c.contains_set(&a));
        assert!(a.intersect(&n("203.0.113.0/24")).is_empty());
        assert_eq!(AddrSet::all_v4().to_cidrs(), vec!["0.0.0.0/0"]);
        assert_eq!(AddrSet::all_v6().to_cidrs(), vec!["::/0"]);
        let o = AddrSet::outside();
        assert!(!o.contains("127.0.0.1".parse().unwrap()));
        assert!(o.contains("198.51.100.7".parse().unwrap()));
        assert!(!o.contains("::1".parse().unwrap()));
        assert_eq!(n("::/0").subtract(&n("::/1")).to_cidrs(), vec!["8000::/1"]);
        // Host bits are ignored; single addresses print as /32 and /128.
        assert_eq!(n("198.51.100.77/24").to_cidrs(), vec!["198.51.100.0/24"]);
        let one = AddrSet::addr("198.51.100.7".parse().unwrap())
            .union(&AddrSet::addr("2001:db8::1".parse().unwrap()));
        assert_eq!(one.to_cidrs(), vec!["198.51.100.7/32", "2001:db8::1/128"]);
        // A range prints as its fewest blocks; a mixed-family range is none.
        let r = AddrSet::range("192.0.2.1".parse().unwrap(), "192.0.2.6".parse().unwrap());
        assert_eq!(
            r.unwrap().to_cidrs(),
            vec![
                "192.0.2.1/32",
                "192.0.2.2/31",
                "192.0.2.4/31",
                "192.0.2.6/32"
            ]
        );
        assert!(AddrSet::range("192.0.2.1".parse().unwrap(), "::1".parse().unwrap()).is_none());
    }

    #[test]
    fn long_lists_are_cut() {
        let mut s = AddrSet::empty();
        for i in 0..100u8 {
            s = s.union(&AddrSet::addr(IpAddr::V4(Ipv4Addr::new(
                198,
                51,
                100,
                i * 2,
            ))));
        }
        let c = s.to_cidrs();
        assert_eq!(c.len(), MAX_BLOCKS + 1);
        assert_eq!(c.last().map(String::as_str), Some("..."));
    }
}
