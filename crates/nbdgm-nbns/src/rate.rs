//! Per-source token buckets for state-changing requests (RFC 1002 §5.1.4 leaves
//! policy to the server; this bounds what one IP can make the NBNS store or send).
//! The table holds at most `max_sources` buckets; idle (refilled) buckets are swept
//! when it is full, at most once a second.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    Limited,
    TableFull,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    max: usize,
    buckets: HashMap<Ipv4Addr, Bucket>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: u32, max: usize) -> Self {
        RateLimiter {
            rate,
            burst: f64::from(burst),
            max,
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    fn refill(&self, b: &Bucket, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + dt * self.rate).min(self.burst)
    }

    /// Take one token for `ip`.
    pub fn check(&mut self, ip: Ipv4Addr, now: Instant) -> Verdict {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.max {
            self.sweep(now);
            if self.buckets.len() >= self.max {
                return Verdict::TableFull;
            }
        }
        let fresh = Bucket {
            tokens: self.burst,
            last: now,
        };
        let b = *self.buckets.get(&ip).unwrap_or(&fresh);
        let tokens = self.refill(&b, now);
        let (tokens, verdict) = if tokens >= 1.0 {
            (tokens - 1.0, Verdict::Allowed)
        } else {
            (tokens, Verdict::Limited)
        };
        self.buckets.insert(ip, Bucket { tokens, last: now });
        verdict
    }

    /// Forget sources whose bucket is full again (they are idle).
    fn sweep(&mut self, now: Instant) {
        if let Some(t) = self.last_sweep {
            if now.saturating_duration_since(t) < Duration::from_secs(1) {
                return;
            }
        }
        self.last_sweep = Some(now);
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let dt = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + dt * rate < burst
        });
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
