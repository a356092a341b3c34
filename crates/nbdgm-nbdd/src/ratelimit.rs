//! Token buckets per UDP source with bounded memory: the amplification guard of the
//! relay (RFC 1001 §11.2 lets the NBDD "partially complete" any relay).
//!
//! A [`nbdgm_base::rate::KeyedTable`] of [`SourceState`]s: an entry whose buckets have
//! refilled to their bursts and that relays no fragment set holds no information (a
//! new source starts the same way), so only such idle entries are removed, by a sweep
//! at most once a second (and, when the table is full, at most every 100 ms). When the
//! table is full of active sources, new sources share one overflow entry, so a
//! spoofed-source flood can never mint fresh bursts.

use crate::config::Rate;
use nbdgm_base::rate::KeyedTable;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub use nbdgm_base::rate::Bucket;

/// Time between sweeps of idle entries.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two sweeps forced by a full table.
pub const FORCED_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// State kept per UDP source.
#[derive(Debug, Clone)]
pub struct SourceState {
    pub relay: Bucket,
    pub reply: Bucket,
    /// Fragment sets of this source being relayed.
    pub fragment_sets: usize,
}

impl SourceState {
    fn new(now: Instant, relay: Rate, reply: Rate) -> Self {
        SourceState {
            relay: Bucket::full(now, relay),
            reply: Bucket::full(now, reply),
            fragment_sets: 0,
        }
    }

    fn is_idle(&self, now: Instant, relay: Rate, reply: Rate) -> bool {
        self.fragment_sets == 0 && self.relay.is_full(now, relay) && self.reply.is_full(now, reply)
    }
}

/// Which bucket pair serves a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Own(Ipv4Addr),
    Overflow,
}

/// Bounded per-source table plus one shared overflow entry.
#[derive(Debug)]
pub struct SourceTable {
    table: KeyedTable<Ipv4Addr, SourceState>,
    overflow: SourceState,
    relay_rate: Rate,
    reply_rate: Rate,
    next_sweep: Instant,
}

impl SourceTable {
    pub fn new(now: Instant, max: usize, relay_rate: Rate, reply_rate: Rate) -> Self {
        SourceTable {
            table: KeyedTable::new(max).with_sweep_interval(FORCED_SWEEP_INTERVAL),
            overflow: SourceState::new(now, relay_rate, reply_rate),
            relay_rate,
            reply_rate,
            next_sweep: now + SWEEP_INTERVAL,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn relay_rate(&self) -> Rate {
        self.relay_rate
    }

    pub fn reply_rate(&self) -> Rate {
        self.reply_rate
    }

    /// The slot for `ip`, creating an entry if there is room (a full table is swept
    /// of idle entries first). The second value is true when the source had to join
    /// the overflow slot.
    pub fn slot(&mut self, now: Instant, ip: Ipv4Addr) -> (Slot, bool) {
        let (relay, reply) = (self.relay_rate, self.reply_rate);
        let made = self.table.entry(
            ip,
            now,
            || SourceState::new(now, relay, reply),
            |s| s.is_idle(now, relay, reply),
        );
        match made {
            Some(_) => (Slot::Own(ip), false),
            None => (Slot::Overflow, true),
        }
    }

    /// The state for a slot; a missing entry (removed meanwhile) maps to the overflow.
    pub fn get(&mut self, slot: Slot) -> &mut SourceState {
        match slot {
            Slot::Own(ip) => match self.table.get_mut(&ip) {
                Some(s) => s,
                None => &mut self.overflow,
            },
            Slot::Overflow => &mut self.overflow,
        }
    }

    /// The slot already holding `ip`, without creating one.
    pub fn existing(&self, ip: Ipv4Addr) -> Slot {
        if self.table.contains(&ip) {
            Slot::Own(ip)
        } else {
            Slot::Overflow
        }
    }

    /// Remove idle entries (both buckets full, no fragment sets), at most once per
    /// [`SWEEP_INTERVAL`].
    pub fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        let (relay, reply) = (self.relay_rate, self.reply_rate);
        self.table.sweep(now, |s| s.is_idle(now, relay, reply));
    }

    /// When the next sweep is due, if there is anything to sweep.
    pub fn next_sweep(&self) -> Option<Instant> {
        (!self.table.is_empty()).then_some(self.next_sweep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills() {
        let t0 = Instant::now();
        let r = Rate::new(100.0, 200);
        let mut b = Bucket::full(t0, r);
        assert!(b.take(t0, r, 150.0));
        assert!(!b.take(t0, r, 100.0));
        assert!(b.take(t0 + Duration::from_millis(500), r, 100.0));
        assert!(!b.is_full(t0 + Duration::from_millis(500), r));
        assert!(b.is_full(t0 + Duration::from_secs(3), r));
        // Time going backwards neither panics nor refills.
        assert!(!b.take(t0, r, 1000.0));
    }

    #[test]
    fn table_is_bounded_and_overflows() {
        let t0 = Instant::now();
        let r = Rate::new(10.0, 10);
        let mut t = SourceTable::new(t0, 2, r, r);
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let c = Ipv4Addr::new(10, 0, 0, 3);
        assert_eq!(t.slot(t0, a), (Slot::Own(a), false));
        assert_eq!(t.slot(t0, b), (Slot::Own(b), false));
        assert!(t.get(Slot::Own(a)).relay.take(t0, r, 5.0));
        assert!(t.get(Slot::Own(b)).relay.take(t0, r, 5.0));
        assert_eq!(t.slot(t0, c), (Slot::Overflow, true));
        assert_eq!(t.len(), 2);
        // After refill both are idle and get swept for the new source.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(t.slot(later, c), (Slot::Own(c), false));
        assert_eq!(t.len(), 1);
    }
}
