//! Sets of source addresses (IPv4 and IPv6) as sorted, disjoint inclusive ranges, with the
//! set algebra the firewall evaluation needs and a conversion back to CIDR blocks.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Sorted, disjoint, non-adjacent inclusive ranges over `0..=max`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ranges(Vec<(u128, u128)>);

impl Ranges {
    pub fn empty() -> Self {
        Ranges(Vec::new())
    }

    pub fn from_range(lo: u128, hi: u128) -> Self {
        if lo <= hi {
            Ranges(vec![(lo, hi)])
        } else {
            Ranges::empty()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.0
    }

    fn normalize(mut v: Vec<(u128, u128)>) -> Self {
        v.retain(|(a, b)| a <= b);
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Ranges(out)
    }

    pub fn union(&self, other: &Ranges) -> Ranges {
        let mut v = self.0.clone();
        v.extend_from_slice(&other.0);
        Ranges::normalize(v)
    }

    pub fn intersect(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < other.0.len() {
            let (a1, b1) = self.0[i];
            let (a2, b2) = other.0[j];
            let lo = a1.max(a2);
            let hi = b1.min(b2);
            if lo <= hi {
                out.push((lo, hi));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Ranges(out)
    }

    /// `self` minus `other`.
    pub fn subtract(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut lo = a;
            let mut done = false;
            for &(c, d) in &other.0 {
                if d < lo || c > b {
                    continue;
                }
                if c > lo {
                    out.push((lo, c - 1));
                }
                if d >= b {
                    done = true;
                    break;
                }
                lo = d + 1;
            }
            if !done {
                out.push((lo, b));
            }
        }
        Ranges::normalize(out)
    }

    /// The ranges as CIDR blocks of a `bits`-bit address space (at most `limit` blocks).
    fn blocks(&self, bits: u32, limit: usize) -> Vec<(u128, u8)> {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut lo = a;
            loop {
                if out.len() >= limit {
                    return out;
                }
                // Largest block starting at lo that fits in [lo, b].
                let mut size_bits = if lo == 0 {
                    bits
                } else {
                    lo.trailing_zeros().min(bits)
                };
                while size_bits > 0 {
                    let span = if size_bits >= 128 {
                        u128::MAX
                    } else {
                        (1u128 << size_bits) - 1
                    };
                    if lo.checked_add(span).is_some_and(|end| end <= b) {
                        break;
                    }
                    size_bits -= 1;
                }
                let span = if size_bits >= 128 {
                    u128::MAX
                } else {
                    (1u128 << size_bits) - 1
                };
                out.push((lo, (bits - size_bits) as u8));
                let end = lo.saturating_add(span);
                if end >= b {
                    break;
                }
                lo = end + 1;
            }
        }
        out
    }
}

/// Most CIDR blocks printed for one set.
pub const MAX_BLOCKS: usize = 64;

const V4_MAX: u128 = u32::MAX as u128;

/// A set of IPv4 and IPv6 source addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrSet {
    pub v4: Ranges,
    pub v6: Ranges,
}

impl AddrSet {
    pub fn empty() -> Self {
        AddrSet::default()
    }

    /// Every address of both families.
    pub fn all() -> Self {
        AddrSet {
            v4: Ranges::from_range(0, V4_MAX),
            v6: Ranges::from_range(0, u128::MAX),
        }
    }

    pub fn all_v4() -> Self {
        AddrSet {
            v4: Ranges::from_range(0, V4_MAX),
            v6: Ranges::empty(),
        }
    }

    pub fn all_v6() -> Self {
        AddrSet {
            v4: Ranges::empty(),
            v6: Ranges::from_range(0, u128::MAX),
        }
    }

    /// "Anywhere" as seen from the outside: every address except loopback (127.0.0.0/8,
    /// ::1), which the kernel never accepts from a real interface.
    pub fn outside() -> Self {
        let lo4 = AddrSet::net(
            &"127.0.0.0/8"
                .parse()
                .unwrap_or(IpNet::V4(Default::default())),
        );
        let lo6 = AddrSet::addr(IpAddr::V6(Ipv6Addr::LOCALHOST));
        AddrSet::all().subtract(&lo4.union(&lo6))
    }

    pub fn net(n: &IpNet) -> Self {
        let n = n.trunc();
        match n {
            IpNet::V4(n) => {
                let lo = u32::from(n.network()) as u128;
                let hi = u32::from(n.broadcast()) as u128;
                AddrSet {
                    v4: Ranges::from_range(lo, hi),
                    v6: Ranges::empty(),
                }
            }
            IpNet::V6(n) => {
                let lo = u128::from(n.network());
                let hi = u128::from(n.broadcast());
                AddrSet {
                    v4: Ranges::empty(),
                    v6: Ranges::from_range(lo, hi),
                }
            }
        }
    }

    pub fn addr(a: IpAddr) -> Self {
        AddrSet::range(a, a).unwrap_or_default()
    }

    /// `lo..=hi` of one family (None for mixed families).
    pub fn range(lo: IpAddr, hi: IpAddr) -> Option<Self> {
        match (lo, hi) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Some(AddrSet {
                v4: Ranges::from_range(u32::from(a) as u128, u32::from(b) as u128),
                v6: Ranges::empty(),
            }),
            (IpAddr::V6(a), IpAddr::V6(b)) => Some(AddrSet {
                v4: Ranges::empty(),
                v6: Ranges::from_range(u128::from(a), u128::from(b)),
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
        o.subtract(self).is_empty()
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        self.contains_set(&AddrSet::addr(a))
    }

    /// The set as CIDR strings (IPv4 first), at most [`MAX_BLOCKS`] (then `...`).
    pub fn to_cidrs(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .v4
            .blocks(32, MAX_BLOCKS + 1)
            .into_iter()
            .map(|(a, len)| format!("{}/{len}", Ipv4Addr::from(a as u32)))
            .collect();
        out.extend(
            self.v6
                .blocks(128, MAX_BLOCKS + 1)
                .into_iter()
                .map(|(a, len)| format!("{}/{len}", Ipv6Addr::from(a))),
        );
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
    }
}
