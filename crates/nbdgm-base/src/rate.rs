//! Token buckets and bounded per-key tables of them: the rate limits of the daemon's
//! door and reply gate, the NBNS's per-source limits (RFC 1002 §5.1.4 leaves policy to
//! the server) and the NBDD's relay guard (RFC 1001 §11.2).
//!
//! Table policy ([`KeyedTable`], and [`RateTable`] on top of it): a `HashMap` (SipHash
//! with a random key, so spoofed sources cannot aim at one slot) holds at most `max`
//! entries. An entry that is *idle* — for a token bucket: refilled to its burst — holds
//! no information (a new key starts the same way), so only idle entries are ever
//! evicted; a flooder's bucket is never idle, so eviction cannot hand it a fresh burst.
//! When the table is full and a new key arrives, a sweep removes idle entries (keys seen
//! only once first, then any idle one); such sweeps run at most once per sweep interval,
//! which keeps the cost amortised O(1) per packet. If the sweep frees nothing, the new
//! key is refused ([`KeyedTable::entry`] gives `None`), and a [`RateTable`] either
//! refuses it or lets it share one overflow bucket ([`WhenFull`]). Time is always
//! passed in (`now`), never read.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries allocated up front by [`KeyedTable::preallocated`] at most (twice the cap,
/// so removing and re-adding never makes the map grow: it rehashes in place).
const PREALLOCATE_MAX: usize = 1 << 17;
/// Default minimum time between two sweeps of a full table.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// A token rate: `rate` tokens per second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub rate: f64,
    pub burst: u32,
}

impl Rate {
    pub const fn new(rate: f64, burst: u32) -> Self {
        Rate { rate, burst }
    }

    /// A rate ≤ 0 or NaN becomes 0 (buckets never refill) and +∞ becomes `f64::MAX`.
    pub fn sanitized(rate: f64, burst: u32) -> Self {
        let rate = if rate.is_nan() || rate <= 0.0 {
            0.0
        } else {
            rate.min(f64::MAX)
        };
        Rate { rate, burst }
    }

    fn burst_f(self) -> f64 {
        f64::from(self.burst)
    }
}

/// A token bucket holding some tokens at some instant; its [`Rate`] is passed in, so
/// one rate serves a whole table. Time going backwards neither panics nor refills.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A bucket holding `r.burst` tokens.
    pub fn full(now: Instant, r: Rate) -> Self {
        Bucket {
            tokens: r.burst_f(),
            last: now,
        }
    }

    /// Tokens the bucket would hold at `now` (without changing it).
    pub fn tokens_at(&self, now: Instant, r: Rate) -> f64 {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + dt * r.rate).min(r.burst_f())
    }

    fn refill(&mut self, now: Instant, r: Rate) {
        self.tokens = self.tokens_at(now, r);
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

    /// Refilled to the burst: holds no information, may be forgotten.
    pub fn is_full(&self, now: Instant, r: Rate) -> bool {
        self.tokens_at(now, r) >= r.burst_f()
    }
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    /// Times [`KeyedTable::entry`] found or made this entry (saturating).
    hits: u32,
}

/// A bounded map from keys to per-key state that evicts only idle entries (see the
/// module header). Counts the entries evicted and the new keys refused for lack of room.
#[derive(Debug)]
pub struct KeyedTable<K, V> {
    map: HashMap<K, Slot<V>>,
    max: usize,
    sweep_interval: Duration,
    last_sweep: Option<Instant>,
    evictions: u64,
    refused: u64,
}

impl<K: Hash + Eq + Copy, V> KeyedTable<K, V> {
    /// At most `max` entries; a full table is swept at most once per
    /// [`DEFAULT_SWEEP_INTERVAL`].
    pub fn new(max: usize) -> Self {
        KeyedTable {
            map: HashMap::new(),
            max,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            last_sweep: None,
            evictions: 0,
            refused: 0,
        }
    }

    /// Allocate room for the whole table now (up to 2^17 entries), so a churning
    /// table never allocates.
    pub fn preallocated(mut self) -> Self {
        self.map
            .reserve(self.max.saturating_mul(2).min(PREALLOCATE_MAX));
        self
    }

    /// Change the minimum time between two sweeps.
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// The state of `key`, made with `make` if it is new and there is room. A full
    /// table is first swept of entries for which `idle` holds. `None`: no room (counted
    /// in [`KeyedTable::refused`]).
    pub fn entry(
        &mut self,
        key: K,
        now: Instant,
        make: impl FnOnce() -> V,
        idle: impl Fn(&V) -> bool,
    ) -> Option<&mut V> {
        if !self.map.contains_key(&key) {
            if self.map.len() >= self.max {
                self.make_room(now, idle);
            }
            if self.map.len() >= self.max {
                self.refused += 1;
                return None;
            }
        }
        let slot = self.map.entry(key).or_insert_with(|| Slot {
            value: make(),
            hits: 0,
        });
        slot.hits = slot.hits.saturating_add(1);
        Some(&mut slot.value)
    }

    /// Remove idle entries to make room: keys seen once first, any idle one if that
    /// frees nothing. At most once per sweep interval.
    fn make_room(&mut self, now: Instant, idle: impl Fn(&V) -> bool) {
        if !self.sweep_due(now) {
            return;
        }
        let before = self.map.len();
        self.map.retain(|_, s| !(s.hits <= 1 && idle(&s.value)));
        if self.map.len() == before {
            self.map.retain(|_, s| !idle(&s.value));
        }
        self.evictions += (before - self.map.len()) as u64;
    }

    fn sweep_due(&mut self, now: Instant) -> bool {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < self.sweep_interval)
        {
            return false;
        }
        self.last_sweep = Some(now);
        true
    }

    /// Remove every idle entry now (a periodic sweep; counted as evictions). Also
    /// restarts the sweep interval.
    pub fn sweep(&mut self, now: Instant, idle: impl Fn(&V) -> bool) {
        self.last_sweep = Some(now);
        let before = self.map.len();
        self.map.retain(|_, s| !idle(&s.value));
        self.evictions += (before - self.map.len()) as u64;
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|s| &s.value)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|s| &mut s.value)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Entries now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Entries the map can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Idle entries removed in all.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// New keys that found the table full.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// What a [`RateTable`] does with a new key when the table is full of active keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Such keys share one overflow bucket of the same rate (known keys keep theirs).
    Overflow,
    /// Refuse them ([`Verdict::TableFull`]).
    Refuse,
}

/// The answer of [`RateTable::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited,
    /// A new key, no room ([`WhenFull::Refuse`] only).
    TableFull,
}

/// Counters of a [`RateTable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateCounters {
    pub allowed: u64,
    pub limited: u64,
    /// Keys with a bucket of their own now.
    pub keys: usize,
    /// Idle buckets removed to make room.
    pub evictions: u64,
    /// New keys that found the table full (overflowed or refused).
    pub refused: u64,
}

/// One token bucket per key, at most `max` of them (see the module header).
#[derive(Debug)]
pub struct RateTable<K> {
    rate: Rate,
    when_full: WhenFull,
    table: KeyedTable<K, Bucket>,
    overflow: Option<Bucket>,
    allowed: u64,
    limited: u64,
}

impl<K: Hash + Eq + Copy> RateTable<K> {
    /// `rate` per key; burst 0 refuses everything; `max` 0 puts every key in the
    /// overflow (or refuses it).
    pub fn new(rate: Rate, max: usize, when_full: WhenFull) -> Self {
        RateTable {
            rate,
            when_full,
            table: KeyedTable::new(max),
            overflow: None,
            allowed: 0,
            limited: 0,
        }
    }

    /// See [`KeyedTable::preallocated`].
    pub fn preallocated(mut self) -> Self {
        self.table = self.table.preallocated();
        self
    }

    /// See [`KeyedTable::with_sweep_interval`].
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.table = self.table.with_sweep_interval(interval);
        self
    }

    /// Take one token for `key` at `now`.
    pub fn check(&mut self, key: K, now: Instant) -> Verdict {
        let r = self.rate;
        let bucket =
            match self
                .table
                .entry(key, now, || Bucket::full(now, r), |b| b.is_full(now, r))
            {
                Some(b) => b,
                None => match self.when_full {
                    WhenFull::Refuse => return Verdict::TableFull,
                    WhenFull::Overflow => self.overflow.get_or_insert_with(|| Bucket::full(now, r)),
                },
            };
        if bucket.take(now, r, 1.0) {
            self.allowed += 1;
            Verdict::Allowed
        } else {
            self.limited += 1;
            Verdict::Limited
        }
    }

    /// The counters now.
    pub fn counters(&self) -> RateCounters {
        RateCounters {
            allowed: self.allowed,
            limited: self.limited,
            keys: self.table.len(),
            evictions: self.table.evictions(),
            refused: self.table.refused(),
        }
    }

    /// Keys holding a bucket of their own.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.table.max()
    }

    /// Entries the table can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }
}

#[cfg(test)]
mod tests;
