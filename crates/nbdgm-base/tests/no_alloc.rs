//! The per-packet paths of the rate tables and prefix sets do not allocate (the
//! daemon's worker counts allocations per delivered datagram).

use nbdgm_base::rate::{Rate, RateTable, WhenFull};
use nbdgm_base::PrefixSet;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn known_keys_and_lookups_do_not_allocate() {
    let t0 = Instant::now();
    let mut t = RateTable::new(Rate::new(100.0, 10), 64, WhenFull::Overflow).preallocated();
    let set: PrefixSet = "10.0.0.0/8, 192.0.2.0/24".parse().unwrap();
    for k in 0..64u32 {
        t.check(Ipv4Addr::from(k), t0);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut hits = 0u32;
    for i in 0..10_000u64 {
        let now = t0 + Duration::from_micros(i * 100);
        let ip = Ipv4Addr::from((i % 64) as u32);
        t.check(ip, now);
        // New keys beyond the cap go to the overflow bucket.
        t.check(Ipv4Addr::from(1000 + i as u32), now);
        hits += u32::from(set.contains(Ipv4Addr::new(10, 0, 0, (i % 256) as u8)));
    }
    assert_eq!(ALLOCS.load(Ordering::Relaxed) - before, 0);
    assert_eq!(hits, 10_000);
}
