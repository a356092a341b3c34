//! Sets of addresses built from single addresses, CIDR prefixes (RFC 4632 §3.1) and
//! inclusive ranges: the daemon's access lists, the NBDD relay allow list and the
//! probes' target and firewall sets share this one type.
//!
//! A set is kept as sorted, disjoint, non-adjacent inclusive ranges, so membership is
//! one binary search and union, intersection and difference are linear merges.
//! [`PrefixSet`] is IPv4 by default; `PrefixSet<Ipv6Addr>` holds IPv6 addresses.

use ipnet::{Ipv4Net, Ipv6Net};
use std::fmt;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::Ipv4Addr {}
    impl Sealed for std::net::Ipv6Addr {}
}

/// An address family a [`PrefixSet`] can hold: [`Ipv4Addr`] or [`Ipv6Addr`].
pub trait Family: sealed::Sealed + Copy + Ord + fmt::Debug + fmt::Display + FromStr {
    /// The family's CIDR prefix type (`ipnet`).
    type Net: Copy + Eq + fmt::Debug + fmt::Display;
    /// Address width in bits.
    const BITS: u32;
    /// The address as an integer.
    fn to_bits(self) -> u128;
    /// The address of an integer below `2^BITS`.
    fn from_bits(v: u128) -> Self;
    /// First and last address of a prefix (host bits ignored).
    fn net_bounds(net: &Self::Net) -> (Self, Self);
    /// The prefix `addr/len`; `len <= BITS`.
    fn net(addr: Self, len: u8) -> Self::Net;
}

impl Family for Ipv4Addr {
    type Net = Ipv4Net;
    const BITS: u32 = 32;
    fn to_bits(self) -> u128 {
        u128::from(u32::from(self))
    }
    fn from_bits(v: u128) -> Self {
        Ipv4Addr::from(v as u32)
    }
    fn net_bounds(net: &Ipv4Net) -> (Self, Self) {
        (net.network(), net.broadcast())
    }
    fn net(addr: Self, len: u8) -> Ipv4Net {
        Ipv4Net::new(addr, len.min(32)).unwrap_or_default()
    }
}

impl Family for Ipv6Addr {
    type Net = Ipv6Net;
    const BITS: u32 = 128;
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(v: u128) -> Self {
        Ipv6Addr::from(v)
    }
    fn net_bounds(net: &Ipv6Net) -> (Self, Self) {
        (net.network(), net.broadcast())
    }
    fn net(addr: Self, len: u8) -> Ipv6Net {
        Ipv6Net::new(addr, len.min(128)).unwrap_or_default()
    }
}

/// Why an address, prefix or range did not parse. The messages name the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("bad address in {0:?}")]
    BadAddress(String),
    #[error("bad prefix length in {0:?}")]
    BadLength(String),
    #[error("prefix length > {max} in {spec:?}")]
    LengthTooLong { spec: String, max: u32 },
    #[error("range start after its end in {0:?}")]
    BackwardsRange(String),
}

/// A set of addresses of one family (IPv4 unless said otherwise).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PrefixSet<A: Family = Ipv4Addr> {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ranges: Vec<(u128, u128)>,
    family: PhantomData<A>,
}

impl<A: Family> Default for PrefixSet<A> {
    fn default() -> Self {
        PrefixSet::empty()
    }
}

impl<A: Family> PrefixSet<A> {
    const MAX: u128 = if A::BITS >= 128 {
        u128::MAX
    } else {
        (1u128 << A::BITS) - 1
    };

    fn normalize(mut v: Vec<(u128, u128)>) -> Self {
        v.retain(|(lo, hi)| lo <= hi);
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match out.last_mut() {
                // Overlapping or adjacent: extend the previous range.
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        PrefixSet {
            ranges: out,
            family: PhantomData,
        }
    }

    /// No address.
    pub fn empty() -> Self {
        PrefixSet {
            ranges: Vec::new(),
            family: PhantomData,
        }
    }

    /// Every address of the family.
    pub fn full() -> Self {
        Self::normalize(vec![(0, Self::MAX)])
    }

    /// One address.
    pub fn addr(a: A) -> Self {
        Self::range(a, a)
    }

    /// The addresses `lo..=hi` (empty when `lo > hi`).
    pub fn range(lo: A, hi: A) -> Self {
        Self::normalize(vec![(lo.to_bits(), hi.to_bits())])
    }

    /// The union of prefixes; host bits are ignored (`10.0.0.5/24` means `10.0.0.0/24`).
    pub fn from_nets<'a>(nets: impl IntoIterator<Item = &'a A::Net>) -> Self
    where
        A::Net: 'a,
    {
        Self::from_ranges(nets.into_iter().map(A::net_bounds))
    }

    /// The union of inclusive ranges (backwards ones are ignored).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (A, A)>) -> Self {
        Self::normalize(
            ranges
                .into_iter()
                .map(|(lo, hi)| (lo.to_bits(), hi.to_bits()))
                .collect(),
        )
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `a` is in the set (one binary search).
    #[inline]
    pub fn contains(&self, a: A) -> bool {
        let ip = a.to_bits();
        // Ranges starting at or before `ip`; only the last of them can hold it.
        let i = self.ranges.partition_point(|&(start, _)| start <= ip);
        match i.checked_sub(1).and_then(|j| self.ranges.get(j)) {
            Some(&(_, end)) => ip <= end,
            None => false,
        }
    }

    /// Whether every address of `other` is in `self`.
    pub fn contains_set(&self, other: &Self) -> bool {
        other.subtract(self).is_empty()
    }

    /// Addresses in either set.
    pub fn union(&self, other: &Self) -> Self {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&other.ranges);
        Self::normalize(v)
    }

    /// Addresses in both sets.
    pub fn intersect(&self, other: &Self) -> Self {
        let (a, b) = (&self.ranges, &other.ranges);
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let lo = a[i].0.max(b[j].0);
            let hi = a[i].1.min(b[j].1);
            if lo <= hi {
                out.push((lo, hi));
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        PrefixSet {
            ranges: out,
            family: PhantomData,
        }
    }

    /// Addresses in `self` but not in `other`.
    pub fn subtract(&self, other: &Self) -> Self {
        self.intersect(&other.complement())
    }

    /// Addresses of the family not in the set.
    pub fn complement(&self) -> Self {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next: Option<u128> = Some(0);
        for &(lo, hi) in &self.ranges {
            if let Some(n) = next {
                if n < lo {
                    out.push((n, lo - 1));
                }
            }
            next = hi.checked_add(1).filter(|&n| n <= Self::MAX);
        }
        if let Some(n) = next {
            out.push((n, Self::MAX));
        }
        PrefixSet {
            ranges: out,
            family: PhantomData,
        }
    }

    /// The inclusive ranges, sorted and disjoint.
    pub fn ranges(&self) -> impl ExactSizeIterator<Item = (A, A)> + '_ {
        self.ranges
            .iter()
            .map(|&(lo, hi)| (A::from_bits(lo), A::from_bits(hi)))
    }

    /// How many addresses the set holds (saturating at `u128::MAX` for all of IPv6).
    pub fn addr_count(&self) -> u128 {
        self.ranges.iter().fold(0u128, |n, &(lo, hi)| {
            n.saturating_add((hi - lo).saturating_add(1))
        })
    }

    /// Every address, in order (lazy: a /0 costs nothing until iterated).
    pub fn addrs(&self) -> impl Iterator<Item = A> + '_ {
        self.ranges
            .iter()
            .flat_map(|&(lo, hi)| (lo..=hi).map(A::from_bits))
    }

    /// The fewest CIDR prefixes covering exactly the set, in address order.
    pub fn to_nets(&self) -> Vec<A::Net> {
        let mut out = Vec::new();
        for &(lo, hi) in &self.ranges {
            let mut lo = lo;
            loop {
                let align = if lo == 0 {
                    A::BITS
                } else {
                    lo.trailing_zeros().min(A::BITS)
                };
                let fit = match (hi - lo).checked_add(1) {
                    Some(n) => 127 - n.leading_zeros(),
                    None => 128,
                };
                let k = align.min(fit);
                out.push(A::net(A::from_bits(lo), (A::BITS - k) as u8));
                let end = if k >= 128 {
                    u128::MAX
                } else {
                    lo | ((1u128 << k) - 1)
                };
                if end >= hi {
                    break;
                }
                lo = end + 1;
            }
        }
        out
    }

    /// One item: an address (`192.0.2.1`), a prefix (`192.0.2.0/24`, host bits ignored)
    /// or an inclusive range (`192.0.2.10-192.0.2.20`). Surrounding spaces are allowed.
    pub fn parse_item(s: &str) -> Result<Self, PrefixError> {
        let s = s.trim();
        let addr = |t: &str| {
            t.trim()
                .parse::<A>()
                .map_err(|_| PrefixError::BadAddress(s.to_string()))
        };
        if let Some((a, l)) = s.split_once('/') {
            let a = addr(a)?;
            let len: u32 = l
                .trim()
                .parse()
                .map_err(|_| PrefixError::BadLength(s.to_string()))?;
            if len > A::BITS {
                return Err(PrefixError::LengthTooLong {
                    spec: s.to_string(),
                    max: A::BITS,
                });
            }
            Ok(Self::from_nets([&A::net(a, len as u8)]))
        } else if let Some((lo, hi)) = s.split_once('-') {
            let (lo, hi) = (addr(lo)?, addr(hi)?);
            if lo > hi {
                return Err(PrefixError::BackwardsRange(s.to_string()));
            }
            Ok(Self::range(lo, hi))
        } else {
            Ok(Self::addr(addr(s)?))
        }
    }
}

/// A comma-separated list of [`PrefixSet::parse_item`] items; empty text is the empty set.
impl<A: Family> FromStr for PrefixSet<A> {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let mut set = PrefixSet::empty();
        for item in s.split(',').filter(|i| !i.trim().is_empty()) {
            set = set.union(&Self::parse_item(item)?);
        }
        Ok(set)
    }
}

impl<A: Family> FromIterator<A::Net> for PrefixSet<A> {
    fn from_iter<I: IntoIterator<Item = A::Net>>(iter: I) -> Self {
        let v: Vec<A::Net> = iter.into_iter().collect();
        Self::from_nets(&v)
    }
}

/// Write `nets` comma-separated (`10.0.0.0/8, 192.0.2.1/32`), or `none` when empty.
pub fn write_nets<N: fmt::Display>(f: &mut fmt::Formatter<'_>, nets: &[N]) -> fmt::Result {
    if nets.is_empty() {
        return f.write_str("none");
    }
    for (i, n) in nets.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{n}")?;
    }
    Ok(())
}

/// The covering prefixes, comma-separated (`10.0.0.0/8, 192.0.2.1/32`), or `none`.
impl<A: Family> fmt::Display for PrefixSet<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_nets(f, &self.to_nets())
    }
}

impl<A: Family> fmt::Debug for PrefixSet<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrefixSet({self})")
    }
}

#[cfg(test)]
mod tests;
