//! Continuation fragments that reach the NBDD before their first fragment (RFC 1001
//! §17.1.2; RFC 1002 §5.3.3): held, bounded in entries and bytes with counted
//! evictions, expired after `orphan_timeout`, and relayed behind the first fragment.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nbdgm_nbdd::{DropReason, Nbdd, NbddConfig, RelayPolicy, Resolution, Transmit};
use nbdgm_wire::datagram::{Body, DataBody, Datagram, Flags, MsgType, NodeType};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
const C: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 12);

fn cfg() -> NbddConfig {
    NbddConfig {
        policy: RelayPolicy::AllowList("10.0.0.0/8".parse().unwrap()),
        own_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
        ..NbddConfig::default()
    }
}

fn sa(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, 138)
}

fn group() -> Name {
    Name::new("WORKGROUP", 0x1e).unwrap()
}

/// A fragment of a DIRECT_GROUP datagram from A (F, M, offset, data).
fn fragment(id: u16, first: bool, more: bool, offset: u16, data: Vec<u8>) -> Vec<u8> {
    let body = if first {
        DataBody::Names {
            source_name: Name::new("FRED", 0).unwrap(),
            destination_name: group(),
            user_data: data,
        }
    } else {
        DataBody::Continuation { data }
    };
    Datagram {
        msg_type: MsgType::DirectGroup,
        flags: Flags {
            more,
            first,
            node_type: NodeType::P,
            reserved: 0,
        },
        id,
        source_ip: A,
        source_port: 138,
        body: Body::Data {
            length: Some(1068),
            offset,
            body,
        },
    }
    .to_bytes()
    .unwrap()
}

fn transmits(n: &mut Nbdd) -> Vec<Transmit> {
    std::iter::from_fn(|| n.poll_transmit()).collect()
}

fn orphan_drops(n: &Nbdd) -> u64 {
    n.stats().drops.get(DropReason::OrphanFragment)
}

#[test]
fn out_of_order_continuations_are_relayed_behind_their_first() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    let f1 = fragment(9, true, true, 0, vec![1; 466]);
    let f2 = fragment(9, false, true, 534, vec![2; 300]);
    let f3 = fragment(9, false, false, 834, vec![3; 234]);
    // Last, then middle, then (members not yet known) the first.
    n.handle(now, sa(A), &f3);
    n.handle(now, sa(A), &f2);
    assert_eq!(n.held_orphans(), (2, f2.len() + f3.len()));
    assert!(transmits(&mut n).is_empty());
    n.handle(now, sa(A), &f1);
    assert_eq!(n.held_orphans(), (0, 0));
    assert_eq!(n.pending_len(), 3, "both wait behind their first");
    n.members_resolved(now, &group(), Resolution::Members(vec![A, B, C]));
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 6);
    for (i, f) in [&f1, &f1, &f2, &f2, &f3, &f3].iter().enumerate() {
        assert_eq!(
            &tx[i].bytes, *f,
            "copy {i} unchanged, the last fragment last"
        );
    }
    let st = n.stats();
    assert_eq!((st.orphans_held, st.orphans_released), (2, 2));
    assert_eq!(st.fragment_sets_completed, 1);
    assert_eq!(orphan_drops(&n), 0);
    assert_eq!(n.fragment_sets(), 0);
}

#[test]
fn overflow_evicts_the_oldest_and_counts_it() {
    let now = Instant::now();
    let c = NbddConfig {
        max_orphan_fragments: 2,
        max_orphan_bytes: 700,
        ..cfg()
    };
    let mut n = Nbdd::new(c, now).unwrap();
    n.members_resolved(now, &group(), Resolution::Members(vec![B]));
    for id in 1..=3 {
        n.handle(
            now,
            sa(A),
            &fragment(id, false, false, 534, vec![id as u8; 100]),
        );
    }
    assert_eq!(n.held_orphans().0, 2);
    assert_eq!(n.stats().orphans_evicted, 1);
    assert_eq!(orphan_drops(&n), 1);
    // 614 bytes: one eviction for the entry bound, one more for the byte bound.
    n.handle(now, sa(A), &fragment(4, false, false, 534, vec![4; 600]));
    assert_eq!(n.held_orphans(), (1, 614));
    assert_eq!(n.stats().orphans_evicted, 3);
    // Larger than the byte bound alone: never held.
    n.handle(now, sa(A), &fragment(5, false, false, 534, vec![5; 700]));
    assert_eq!(n.held_orphans(), (1, 614));
    assert_eq!(orphan_drops(&n), 4);
    // The evicted set 1 gets only its first fragment relayed; set 4 gets both.
    n.handle(now, sa(A), &fragment(1, true, true, 0, vec![1; 100]));
    n.handle(now, sa(A), &fragment(4, true, true, 0, vec![4; 100]));
    let tx = transmits(&mut n);
    assert_eq!(tx.len(), 3);
    assert_eq!(n.stats().orphans_released, 1);
}

#[test]
fn held_fragments_expire_and_holding_can_be_off() {
    let now = Instant::now();
    let mut n = Nbdd::new(cfg(), now).unwrap();
    n.members_resolved(now, &group(), Resolution::Members(vec![B]));
    n.handle(now, sa(A), &fragment(7, false, false, 534, vec![7; 50]));
    n.handle_timeout(now + Duration::from_millis(1999));
    assert_eq!(n.held_orphans().0, 1);
    n.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(n.held_orphans(), (0, 0));
    assert_eq!(n.stats().orphans_expired, 1);
    assert_eq!(orphan_drops(&n), 1);
    // The first fragment arriving afterwards goes alone.
    n.handle(now, sa(A), &fragment(7, true, true, 0, vec![7; 100]));
    assert_eq!(transmits(&mut n).len(), 1);

    let off = NbddConfig {
        max_orphan_fragments: 0,
        ..cfg()
    };
    let mut n = Nbdd::new(off, now).unwrap();
    n.handle(now, sa(A), &fragment(8, false, false, 534, vec![8; 50]));
    assert_eq!(n.held_orphans(), (0, 0));
    assert_eq!(orphan_drops(&n), 1);
    assert_eq!(n.stats().orphans_held, 0);
}
