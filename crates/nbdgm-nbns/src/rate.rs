//! Per-source token buckets for state-changing requests (RFC 1002 §5.1.4 leaves
//! policy to the server; this bounds what one IP can make the NBNS store or send).
//! A [`nbdgm_base::RateTable`] of at most `max_sources` buckets; idle (refilled)
//! buckets are swept when it is full, at most once a second, and new sources are
//! refused while it is full of active ones.

use nbdgm_base::rate::{Rate, RateTable, WhenFull};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub(crate) use nbdgm_base::rate::Verdict;

/// Least time between two sweeps of a full table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct RateLimiter(RateTable<Ipv4Addr>);

impl RateLimiter {
    pub fn new(rate: f64, burst: u32, max: usize) -> Self {
        RateLimiter(
            RateTable::new(Rate::new(rate, burst), max, WhenFull::Refuse)
                .with_sweep_interval(SWEEP_INTERVAL),
        )
    }

    /// Sources holding a bucket.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Take one token for `ip`.
    pub fn check(&mut self, ip: Ipv4Addr, now: Instant) -> Verdict {
        self.0.check(ip, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let mut r = RateLimiter::new(2.0, 3, 10);
        for _ in 0..3 {
            assert_eq!(r.check(ip, t0), Verdict::Allowed);
        }
        assert_eq!(r.check(ip, t0), Verdict::Limited);
        assert_eq!(
            r.check(ip, t0 + Duration::from_millis(500)),
            Verdict::Allowed
        );
        assert_eq!(
            r.check(ip, t0 + Duration::from_millis(500)),
            Verdict::Limited
        );
    }

    #[test]
    fn table_full_then_sweep() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1.0, 2, 2);
        assert_eq!(r.check(Ipv4Addr::new(10, 0, 0, 1), t0), Verdict::Allowed);
        assert_eq!(r.check(Ipv4Addr::new(10, 0, 0, 2), t0), Verdict::Allowed);
        assert_eq!(r.check(Ipv4Addr::new(10, 0, 0, 3), t0), Verdict::TableFull);
        // Two seconds later both buckets are full again: swept.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(r.check(Ipv4Addr::new(10, 0, 0, 3), t1), Verdict::Allowed);
        assert_eq!(r.len(), 1);
    }
}
