//! Per-source token buckets with bounded memory, and a global limiter for log
//! lines that input can trigger.
//!
//! The table ([`RateLimiter`]) is a [`nbdgm_base::RateTable`] keyed by source
//! address: at most `max_sources` buckets, only idle (refilled) buckets evicted, sweeps
//! of a full table at most once per sweep interval, and new sources sharing one overflow
//! bucket while the table is full of active sources (see [`nbdgm_base::rate`]). Time is
//! always passed in (`now`), never read.

use nbdgm_base::rate::{Bucket, Rate, RateTable, Verdict, WhenFull};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Default minimum time between two sweeps of a full table.
pub const DEFAULT_SWEEP_INTERVAL: Duration = nbdgm_base::rate::DEFAULT_SWEEP_INTERVAL;

/// Counters of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateStats {
    /// Packets allowed.
    pub allowed: u64,
    /// Packets refused.
    pub limited: u64,
    /// Sources with a bucket of their own now.
    pub sources: usize,
    /// Idle buckets removed to make room.
    pub evictions: u64,
    /// Packets from new sources that found the table full and used the shared overflow bucket.
    pub overflowed: u64,
}

/// Token bucket per source IPv4 address: `rate` tokens per second, at most `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    table: RateTable<Ipv4Addr>,
}

impl RateLimiter {
    /// `rate_per_s` ≤ 0 or NaN means buckets never refill (each source gets `burst`
    /// packets in all); `burst` 0 refuses everything; `max_sources` 0 puts every
    /// source in the shared overflow bucket.
    pub fn new(rate_per_s: f64, burst: u32, max_sources: usize) -> Self {
        let rate = Rate::sanitized(rate_per_s, burst);
        RateLimiter {
            table: RateTable::new(rate, max_sources, WhenFull::Overflow).preallocated(),
        }
    }

    /// Change the minimum time between sweeps of a full table.
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.table = self.table.with_sweep_interval(interval);
        self
    }

    /// Take one token for `ip` at time `now`; `true` means the packet may pass.
    pub fn check(&mut self, ip: Ipv4Addr, now: Instant) -> bool {
        self.table.check(ip, now) == Verdict::Allowed
    }

    /// The counters, with `sources` filled in.
    pub fn stats(&self) -> RateStats {
        let c = self.table.counters();
        RateStats {
            allowed: c.allowed,
            limited: c.limited,
            sources: c.keys,
            evictions: c.evictions,
            overflowed: c.refused,
        }
    }

    /// Sources holding a bucket of their own.
    pub fn sources(&self) -> usize {
        self.table.len()
    }

    /// The table's cap.
    pub fn max_sources(&self) -> usize {
        self.table.max()
    }
}

/// A global token bucket for log lines (`per_second` lines per second, bursts of
/// the same size) that counts what it suppressed.
#[derive(Debug)]
pub struct LogLimiter {
    rate: Rate,
    bucket: Option<Bucket>,
    pending: u64,
    suppressed: u64,
    logged: u64,
}

impl LogLimiter {
    /// `per_second` 0 suppresses every line.
    pub fn new(per_second: u32) -> Self {
        LogLimiter {
            rate: Rate::new(f64::from(per_second), per_second),
            bucket: None,
            pending: 0,
            suppressed: 0,
            logged: 0,
        }
    }

    /// `Some(n)`: log this line now, and mention the `n` lines suppressed since the
    /// last one logged. `None`: stay silent (the line is counted).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let rate = self.rate;
        if self
            .bucket
            .get_or_insert_with(|| Bucket::full(now, rate))
            .take(now, rate, 1.0)
        {
            self.logged += 1;
            Some(std::mem::take(&mut self.pending))
        } else {
            self.pending += 1;
            self.suppressed += 1;
            None
        }
    }

    /// Lines suppressed in all.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Lines allowed in all.
    pub fn logged(&self) -> u64 {
        self.logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> Ipv4Addr {
        Ipv4Addr::from(n)
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10.0, 5, 16);
        let a = ip(1);
        for _ in 0..5 {
            assert!(rl.check(a, t0));
        }
        assert!(!rl.check(a, t0));
        // 10/s: one token every 100 ms.
        assert!(!rl.check(a, ms(t0, 99)));
        assert!(rl.check(a, ms(t0, 100)));
        assert!(!rl.check(a, ms(t0, 150)));
        assert!(rl.check(a, ms(t0, 200)));
        let s = rl.stats();
        assert_eq!((s.allowed, s.limited, s.sources), (7, 3, 1));
    }

    #[test]
    fn rate_enforced_over_simulated_time() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(200.0, 400, 16);
        let mut allowed = 0u64;
        // 10 000 packets per second for 10 s.
        for i in 0..100_000u64 {
            if rl.check(ip(7), t0 + Duration::from_micros(i * 100)) {
                allowed += 1;
            }
        }
        // burst + rate × 10 s, give or take one token.
        assert!((2399..=2401).contains(&allowed), "{allowed}");
    }

    #[test]
    fn refill_caps_at_burst_and_time_going_back_is_harmless() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1000.0, 3, 4);
        for _ in 0..3 {
            assert!(rl.check(ip(1), ms(t0, 1000)));
        }
        assert!(!rl.check(ip(1), ms(t0, 1000)));
        // An earlier `now` neither panics nor refills.
        assert!(!rl.check(ip(1), t0));
        let later = ms(t0, 1_000_000);
        for _ in 0..3 {
            assert!(rl.check(ip(1), later));
        }
        assert!(!rl.check(ip(1), later));
    }

    #[test]
    fn sources_are_independent() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1.0, 2, 16);
        assert!(rl.check(ip(1), t0));
        assert!(rl.check(ip(1), t0));
        assert!(!rl.check(ip(1), t0));
        assert!(rl.check(ip(2), t0));
        assert!(rl.check(ip(2), t0));
        assert!(!rl.check(ip(2), t0));
        assert_eq!(rl.sources(), 2);
    }

    #[test]
    fn degenerate_parameters_do_not_panic() {
        let t0 = Instant::now();
        let mut zero = RateLimiter::new(0.0, 0, 0);
        assert!(!zero.check(ip(1), t0));
        let mut nan = RateLimiter::new(f64::NAN, 1, 1);
        assert!(nan.check(ip(1), t0));
        assert!(!nan.check(ip(1), ms(t0, 10_000)));
        let mut inf = RateLimiter::new(f64::INFINITY, 1, 1);
        assert!(inf.check(ip(1), t0));
        assert!(inf.check(ip(1), ms(t0, 1)));
        let mut neg = RateLimiter::new(-5.0, 1, 1);
        assert!(neg.check(ip(1), t0));
        assert!(!neg.check(ip(1), ms(t0, 10_000)));
    }

    #[test]
    fn table_cap_holds_under_100k_sources() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(200.0, 400, 4096);
        let cap = rl.table.capacity();
        assert!(cap >= 4096);
        for i in 0..100_000u32 {
            rl.check(
                ip(0x0A00_0000 + i),
                t0 + Duration::from_micros(u64::from(i) * 10),
            );
            assert!(rl.sources() <= 4096);
            // Memory stays what was allocated up front.
            assert!(rl.table.capacity() <= cap);
        }
        let s = rl.stats();
        assert_eq!(s.allowed + s.limited, 100_000);
        assert!(s.evictions > 0);
        assert_eq!(s.sources, rl.sources());
    }

    #[test]
    fn flooder_cannot_reset_its_bucket_through_eviction() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(100.0, 10, 8);
        let flooder = ip(1);
        let mut flood_ok = 0u64;
        // Flooder: 10 000 pps for 2 s; meanwhile 50 000 one-shot sources churn the table.
        for i in 0..20_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            if rl.check(flooder, now) {
                flood_ok += 1;
            }
            for k in 0..2u32 {
                rl.check(ip(0x0B00_0000 + (i as u32) * 2 + k), now);
            }
        }
        assert!(flood_ok <= 10 + 200 + 1, "{flood_ok}");
    }

    #[test]
    fn legit_source_is_always_allowed_beside_a_flooder() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(200.0, 400, 4096);
        let (flooder, legit) = (ip(0xC633_6401), ip(0xC633_6402));
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            rl.check(flooder, now);
            if i % 1000 == 0 {
                assert!(rl.check(legit, now), "legit refused at packet {i}");
            }
        }
    }

    #[test]
    fn known_legit_source_survives_a_spoofed_flood() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(200.0, 400, 1024);
        let legit = ip(0xC633_6402);
        // An established peer: seen more than once before the flood.
        for k in 0..3 {
            assert!(rl.check(legit, ms(t0, k)));
        }
        // 100 000 spoofed one-shot sources at 20 000 pps, legit at 10 pps.
        for i in 0..100_000u64 {
            let now = ms(t0, 3) + Duration::from_micros(50 * i);
            rl.check(ip(0x0A00_0000 + i as u32), now);
            if i % 2000 == 0 {
                assert!(rl.check(legit, now), "legit refused at packet {i}");
            }
            assert!(rl.sources() <= 1024);
        }
        assert!(rl.stats().overflowed > 0);
    }

    #[test]
    fn log_limiter_counts_suppressed_lines() {
        let t0 = Instant::now();
        let mut log = LogLimiter::new(2);
        assert_eq!(log.allow(t0), Some(0));
        assert_eq!(log.allow(t0), Some(0));
        assert_eq!(log.allow(t0), None);
        assert_eq!(log.allow(t0), None);
        assert_eq!(log.allow(ms(t0, 500)), Some(2));
        assert_eq!(log.allow(ms(t0, 500)), None);
        assert_eq!((log.logged(), log.suppressed()), (3, 3));
        let mut silent = LogLimiter::new(0);
        assert_eq!(silent.allow(t0), None);
        assert_eq!(silent.allow(ms(t0, 10_000)), None);
        assert_eq!(silent.suppressed(), 2);
    }
}
