//! Tests of the token bucket and the keyed tables.

use super::*;

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn bucket_refills_up_to_the_burst() {
    let t0 = Instant::now();
    let r = Rate::new(100.0, 200);
    let mut b = Bucket::full(t0, r);
    assert!(b.take(t0, r, 150.0));
    assert!(!b.take(t0, r, 100.0));
    assert!(b.take(ms(t0, 500), r, 100.0));
    assert!(!b.is_full(ms(t0, 500), r));
    assert!(b.is_full(ms(t0, 3000), r));
    assert_eq!(b.available(ms(t0, 60_000), r), 200.0);
    // Time going backwards neither panics nor refills.
    assert!(b.take(ms(t0, 60_000), r, 200.0));
    assert!(!b.take(t0, r, 1.0));
}

#[test]
fn sanitized_rates() {
    assert_eq!(Rate::sanitized(f64::NAN, 3).rate, 0.0);
    assert_eq!(Rate::sanitized(-1.0, 3).rate, 0.0);
    assert_eq!(Rate::sanitized(f64::INFINITY, 3).rate, f64::MAX);
    let t0 = Instant::now();
    let r = Rate::sanitized(f64::INFINITY, 1);
    let mut b = Bucket::full(t0, r);
    assert!(b.take(t0, r, 1.0) && b.take(ms(t0, 1), r, 1.0));
}

#[test]
fn rate_table_burst_then_rate_per_key() {
    let t0 = Instant::now();
    let mut t = RateTable::new(Rate::new(10.0, 3), 16, WhenFull::Refuse);
    for _ in 0..3 {
        assert_eq!(t.check(1u32, t0), Verdict::Allowed);
    }
    assert_eq!(t.check(1, t0), Verdict::Limited);
    assert_eq!(t.check(2, t0), Verdict::Allowed);
    assert_eq!(t.check(1, ms(t0, 99)), Verdict::Limited);
    assert_eq!(t.check(1, ms(t0, 100)), Verdict::Allowed);
    let c = t.counters();
    assert_eq!((c.allowed, c.limited, c.keys, c.refused), (5, 2, 2, 0));
}

#[test]
fn cap_holds_and_refuses_or_overflows_when_no_entry_is_idle() {
    let t0 = Instant::now();
    let r = Rate::new(1.0, 2);
    let mut refuse = RateTable::new(r, 2, WhenFull::Refuse);
    let mut share = RateTable::new(r, 2, WhenFull::Overflow);
    for t in [&mut refuse, &mut share] {
        assert_eq!(t.check(1u32, t0), Verdict::Allowed);
        assert_eq!(t.check(2, t0), Verdict::Allowed);
    }
    assert_eq!(refuse.check(3, t0), Verdict::TableFull);
    assert_eq!(refuse.counters().refused, 1);
    // New keys share one overflow bucket of burst 2.
    assert_eq!(share.check(3, t0), Verdict::Allowed);
    assert_eq!(share.check(4, t0), Verdict::Allowed);
    assert_eq!(share.check(5, t0), Verdict::Limited);
    assert_eq!(share.len(), 2);
    assert_eq!(share.counters().refused, 3);
}

#[test]
fn only_idle_entries_are_evicted_one_shot_keys_first() {
    let t0 = Instant::now();
    let r = Rate::new(1.0, 2);
    let mut t = RateTable::new(r, 2, WhenFull::Refuse);
    // Key 1 is seen twice, key 2 once; both refill by t0 + 2 s.
    t.check(1u32, t0);
    t.check(1, t0);
    t.check(2, t0);
    assert_eq!(
        t.check(3, ms(t0, 500)),
        Verdict::TableFull,
        "nothing idle yet"
    );
    assert_eq!(t.check(3, ms(t0, 2600)), Verdict::Allowed);
    // The one-shot key went; the repeated one stayed.
    assert_eq!((t.len(), t.counters().evictions), (2, 1));
    assert_eq!(t.check(4, ms(t0, 5000)), Verdict::Allowed);
    // Now 1 (repeated) and 3 (once) are idle: 3 goes first.
    assert_eq!((t.len(), t.counters().evictions), (2, 2));
}

#[test]
fn sweeps_of_a_full_table_are_spaced_by_the_interval() {
    let t0 = Instant::now();
    let r = Rate::new(1000.0, 1);
    let mut t = RateTable::new(r, 1, WhenFull::Refuse).with_sweep_interval(Duration::from_secs(1));
    t.check(1u32, t0);
    assert_eq!(t.check(2, t0), Verdict::TableFull);
    // Key 1 is idle 1 ms later, but the last sweep was less than a second ago.
    assert_eq!(t.check(2, ms(t0, 10)), Verdict::TableFull);
    assert_eq!(t.check(2, ms(t0, 1000)), Verdict::Allowed);
}

#[test]
fn preallocated_table_does_not_grow_under_churn() {
    let t0 = Instant::now();
    let mut t = RateTable::new(Rate::new(200.0, 400), 4096, WhenFull::Overflow).preallocated();
    let cap = t.capacity();
    assert!(cap >= 4096);
    for i in 0..100_000u32 {
        t.check(i, t0 + Duration::from_micros(u64::from(i) * 10));
        assert!(t.len() <= 4096);
        assert!(t.capacity() <= cap);
    }
    let c = t.counters();
    assert_eq!(c.allowed + c.limited, 100_000);
    assert!(c.evictions > 0);
}

#[test]
fn keyed_table_entries_and_periodic_sweep() {
    let t0 = Instant::now();
    let mut t: KeyedTable<u8, u32> = KeyedTable::new(2);
    *t.entry(1, t0, || 0, |&v| v == 0).unwrap() += 5;
    t.entry(2, t0, || 0, |&v| v == 0).unwrap();
    // 2 is idle (0): evicted for 3.
    assert!(t.entry(3, ms(t0, 200), || 7, |&v| v == 0).is_some());
    assert!(!t.contains(&2) && t.get(&1) == Some(&5));
    *t.get_mut(&1).unwrap() = 0;
    t.sweep(ms(t0, 300), |&v| v == 0);
    assert_eq!((t.len(), t.evictions(), t.refused()), (1, 2, 0));
}
