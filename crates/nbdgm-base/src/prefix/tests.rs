//! Tests of [`super::PrefixSet`].

use super::*;
use proptest::prelude::*;

fn set(s: &str) -> PrefixSet {
    s.parse().unwrap()
}
fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn addresses_prefixes_and_ranges_parse() {
    let s = set("192.0.2.7, 10.0.0.5/8 , 198.51.100.10-198.51.100.20");
    assert!(s.contains(ip("192.0.2.7")));
    assert!(!s.contains(ip("192.0.2.8")));
    assert!(s.contains(ip("10.0.0.0")) && s.contains(ip("10.255.255.255")));
    assert!(!s.contains(ip("11.0.0.0")) && !s.contains(ip("9.255.255.255")));
    assert!(s.contains(ip("198.51.100.10")) && s.contains(ip("198.51.100.20")));
    assert!(!s.contains(ip("198.51.100.9")) && !s.contains(ip("198.51.100.21")));
    assert!(set("").is_empty());
    assert_eq!(set("0.0.0.0/0"), PrefixSet::full());
    assert_eq!(set("0.0.0.0/0").addr_count(), 1 << 32);
}

#[test]
fn bad_text_is_refused_with_the_offending_item() {
    let e = |s: &str| s.parse::<PrefixSet>().unwrap_err().to_string();
    assert_eq!(e("10.0.0.300"), "bad address in \"10.0.0.300\"");
    assert_eq!(e("10.0.0.0/x"), "bad prefix length in \"10.0.0.0/x\"");
    assert_eq!(e("10.0.0.0/33"), "prefix length > 32 in \"10.0.0.0/33\"");
    assert_eq!(
        e("10.0.0.9-10.0.0.1"),
        "range start after its end in \"10.0.0.9-10.0.0.1\""
    );
    assert_eq!(e("1.2.3.4, ::1"), "bad address in \"::1\"");
    assert!("::/129".parse::<PrefixSet<Ipv6Addr>>().is_err());
}

#[test]
fn edges_slash_zero_and_slash_32() {
    let top = set("255.255.255.255/32");
    assert!(top.contains(ip("255.255.255.255")));
    assert!(!top.contains(ip("255.255.255.254")));
    let bottom = set("0.0.0.0");
    assert!(bottom.contains(ip("0.0.0.0")) && !bottom.contains(ip("0.0.0.1")));
    assert!(!PrefixSet::<Ipv4Addr>::empty().contains(ip("0.0.0.0")));
    assert_eq!(
        PrefixSet::<Ipv4Addr>::full().complement(),
        PrefixSet::empty()
    );
    assert_eq!(
        PrefixSet::<Ipv4Addr>::empty().complement(),
        PrefixSet::full()
    );
}

#[test]
fn overlapping_and_adjacent_items_merge() {
    let s = set("10.0.0.0/24, 10.0.0.128/25, 10.0.1.0/24, 10.0.0.0/23, 10.0.3.0/24");
    assert_eq!(s.ranges().len(), 2);
    assert_eq!(s.to_string(), "10.0.0.0/23, 10.0.3.0/24");
}

#[test]
fn algebra() {
    let a = set("10.0.0.0/8");
    let b = set("10.9.0.0/16, 192.0.2.0/24");
    assert_eq!(a.intersect(&b), set("10.9.0.0/16"));
    assert_eq!(a.union(&b), set("10.0.0.0/8, 192.0.2.0/24"));
    let d = a.subtract(&b);
    assert!(!d.contains(ip("10.9.1.1")) && d.contains(ip("10.8.255.255")));
    assert_eq!(d.to_string(), "10.0.0.0/13, 10.8.0.0/16, 10.10.0.0/15, 10.12.0.0/14, 10.16.0.0/12, 10.32.0.0/11, 10.64.0.0/10, 10.128.0.0/9");
    assert!(a.contains_set(&set("10.1.0.0/16")));
    assert!(!a.contains_set(&b));
}

#[test]
fn ranges_become_fewest_prefixes_and_iterate_lazily() {
    let s = set("192.0.2.1-192.0.2.6");
    assert_eq!(
        s.to_string(),
        "192.0.2.1/32, 192.0.2.2/31, 192.0.2.4/31, 192.0.2.6/32"
    );
    let addrs: Vec<Ipv4Addr> = s.addrs().collect();
    assert_eq!(addrs.len(), 6);
    assert_eq!(addrs[0], ip("192.0.2.1"));
    assert_eq!(
        PrefixSet::<Ipv4Addr>::full().addrs().nth(5),
        Some(ip("0.0.0.5"))
    );
    assert_eq!(PrefixSet::<Ipv4Addr>::empty().to_string(), "none");
}

#[test]
fn ipv6_sets() {
    let full = PrefixSet::<Ipv6Addr>::full();
    assert_eq!(full.to_string(), "::/0");
    assert_eq!(full.addr_count(), u128::MAX);
    let s: PrefixSet<Ipv6Addr> = "2001:db8::/32, ::1".parse().unwrap();
    assert!(s.contains("2001:db8::5".parse().unwrap()));
    assert!(!s.contains("2001:db9::".parse().unwrap()));
    assert_eq!(s.complement().complement(), s);
}

fn arb_net() -> impl Strategy<Value = Ipv4Net> {
    // Cluster addresses so the items overlap often.
    (0u32..64, 0u8..=32)
        .prop_map(|(a, p)| Ipv4Net::new(Ipv4Addr::from(0x0A00_0000 | (a << 20)), p).unwrap())
}

proptest! {
    #[test]
    fn matches_naive_check_and_round_trips(
        a in proptest::collection::vec(arb_net(), 0..8),
        b in proptest::collection::vec(arb_net(), 0..8),
        probe in proptest::collection::vec(any::<u32>(), 32),
        near in 0u32..64,
        low in any::<u32>(),
    ) {
        let (sa, sb) = (PrefixSet::from_nets(&a), PrefixSet::from_nets(&b));
        let inside = |nets: &[Ipv4Net], x: Ipv4Addr| nets.iter().any(|n| n.contains(&x));
        let near = 0x0A00_0000 | (near << 20) | (low & 0xF_FFFF);
        for x in probe.into_iter().chain([near, 0, u32::MAX]) {
            let x = Ipv4Addr::from(x);
            prop_assert_eq!(sa.contains(x), inside(&a, x));
            prop_assert_eq!(sa.subtract(&sb).contains(x), inside(&a, x) && !inside(&b, x));
            prop_assert_eq!(sa.intersect(&sb).contains(x), inside(&a, x) && inside(&b, x));
        }
        prop_assert_eq!(PrefixSet::from_nets(&sa.to_nets()), sa.clone());
        prop_assert_eq!(sa.to_string().parse::<PrefixSet>().unwrap_or_default(), if sa.is_empty() { PrefixSet::empty() } else { sa.clone() });
    }
}
