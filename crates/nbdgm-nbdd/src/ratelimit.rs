//! Token buckets per UDP source with bounded memory: the amplification guard of the
//! relay (RFC 1001 §11.2 lets the NBDD "partially complete" any relay).
//!
//! A bucket that has refilled to its burst holds no information (a new source starts
//! full), so only such idle buckets are removed, by a sweep at most once a second.
//! When the table is full of active sources, new sources share one overflow bucket,
//! so a spoofed-source flood can never mint fresh bursts.

use crate::config::Rate;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Time between sweeps of idle entries.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two sweeps forced by a full table.
pub const FORCED_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// A token bucket holding `tokens` at `last`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(now: Instant, r: Rate) -> Self {
        Bucket {
            tokens: f64::from(r.burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant, r: Rate) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * r.rate).min(f64::from(r.burst));
        if now > self.last {
            self.last = now;
        }
    }

    /// Tokens available at `now`.
    pub fn available(&mut self, now: Instant, r: Rate) -> f64 {
        self.refill(now, r);
        self.tokens
    }

    /// Take `n` tokens if there are that many.
    pub fn take(&mut self, now: Instant, r: Rate, n: f64) -> bool {
        self.refill(now, r);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    pub fn is_full(&mut self, now: Instant, r: Rate) -> bool {
        self.available(now, r) >= f64::from(r.burst)
    }
}

/// State kept per UDP source.
#[derive(Debug, Clone)]
pub struct SourceState {
    pub relay: Bucket,
    pub reply: Bucket,
    /// Fragment sets of this source being relayed.
    pub fragment_sets: usize,
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
    map: HashMap<Ipv4Addr, SourceState>,
    overflow: SourceState,
    max: usize,
    relay_rate: Rate,
    reply_rate: Rate,
    next_sweep: Instant,
    next_forced_sweep: Instant,
}

impl SourceTable {
    pub fn new(now: Instant, max: usize, relay_rate: Rate, reply_rate: Rate) -> Self {
        SourceTable {
            map: HashMap::new(),
            overflow: SourceState {
                relay: Bucket::full(now, relay_rate),
                reply: Bucket::full(now, reply_rate),
                fragment_sets: 0,
            },
            max,
            relay_rate,
            reply_rate,
            next_sweep: now + SWEEP_INTERVAL,
            next_forced_sweep: now,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn relay_rate(&self) -> Rate {
        self.relay_rate
    }

    pub fn reply_rate(&self) -> Rate {
        self.reply_rate
    }

    /// The slot for `ip`, creating an entry if there is room. The second value is
    /// true when the source had to join the overflow slot.
    pub fn slot(&mut self, now: Instant, ip: Ipv4Addr) -> (Slot, bool) {
        if self.map.contains_key(&ip) {
            return (Slot::Own(ip), false);
        }
        if self.map.len() >= self.max {
            self.sweep(now, true);
        }
        if self.map.len() >= self.max {
            return (Slot::Overflow, true);
        }
        self.map.insert(
            ip,
            SourceState {
                relay: Bucket::full(now, self.relay_rate),
                reply: Bucket::full(now, self.reply_rate),
                fragment_sets: 0,
            },
        );
        (Slot::Own(ip), false)
    }

    /// The state for a slot; a missing entry (removed meanwhile) maps to the overflow.
    pub fn get(&mut self, slot: Slot) -> &mut SourceState {
        match slot {
            Slot::Own(ip) => match self.map.get_mut(&ip) {
                Some(s) => s,
                None => &mut self.overflow,
            },
            Slot::Overflow => &mut self.overflow,
        }
    }

    /// The slot already holding `ip`, without creating one.
    pub fn existing(&self, ip: Ipv4Addr) -> Slot {
        if self.map.contains_key(&ip) {
            Slot::Own(ip)
        } else {
            Slot::Overflow
        }
    }

    /// Remove idle entries (both buckets full, no fragment sets): at most once per
    /// [`SWEEP_INTERVAL`], or once per [`FORCED_SWEEP_INTERVAL`] when `force` is set
    /// (the table is full and a new source arrived), so the cost stays amortised.
    pub fn sweep(&mut self, now: Instant, force: bool) {
        if force {
            if now < self.next_forced_sweep {
                return;
            }
        } else if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        self.next_forced_sweep = now + FORCED_SWEEP_INTERVAL;
        let (relay, reply) = (self.relay_rate, self.reply_rate);
        self.map.retain(|_, s| {
            !(s.fragment_sets == 0 && s.relay.is_full(now, relay) && s.reply.is_full(now, reply))
        });
    }

    /// When the next sweep is due, if there is anything to sweep.
    pub fn next_sweep(&self) -> Option<Instant> {
        (!self.map.is_empty()).then_some(self.next_sweep)
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
