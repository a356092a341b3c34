//! Announcement timers (MS-BRWS §3.2.6, §3.3.6; DIGEST §6.5) and the engine's small
//! deterministic random source.
//!
//! * HostAnnouncement: after the n-th send 1, 1, 2, 4, 8, then 12 min (capped by
//!   `max_announce_interval`).
//! * LocalMasterAnnouncement: 2, 2, 4, 8, then 12 min.
//! * DomainAnnouncement: 1, 1, 5, 5, 10, 10, then 15 min.
//!
//! The LMA and DomainAnnouncement run on two separate timers, as MS-BRWS describes
//! (Samba shares one). Every announcement carries the interval to its next send as
//! Periodicity. A change (configuration, role) restarts the HostAnnouncement sequence
//! after [`CHANGE_DELAY`].

use std::time::{Duration, Instant};

/// Delay of the announcement that follows a change.
pub const CHANGE_DELAY: Duration = Duration::from_secs(1);
/// Longest random delay of the answer to an AnnouncementRequest (MS-BRWS §3.2.5.1).
pub const ANNOUNCE_REPLY_MAX: Duration = Duration::from_secs(30);

const MIN: u64 = 60;

/// HostAnnouncement interval after the send numbered `count` (0-based).
pub fn host_interval(count: u32, max: Duration) -> Duration {
    let m = match count {
        0 | 1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        _ => 12,
    };
    Duration::from_secs(m * MIN)
        .min(max)
        .max(Duration::from_secs(1))
}

/// LocalMasterAnnouncement interval after the send numbered `count` (0-based).
pub fn lma_interval(count: u32) -> Duration {
    let m = match count {
        0 | 1 => 2,
        2 => 4,
        3 => 8,
        _ => 12,
    };
    Duration::from_secs(m * MIN)
}

/// DomainAnnouncement interval after the send numbered `count` (0-based).
pub fn domain_interval(count: u32) -> Duration {
    let m = match count {
        0 | 1 => 1,
        2 | 3 => 5,
        4 | 5 => 10,
        _ => 15,
    };
    Duration::from_secs(m * MIN)
}

/// Milliseconds of a duration for a Periodicity field (saturating).
pub fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// One backing-off announcement timer.
#[derive(Debug, Clone, Default)]
pub struct Periodic {
    /// Next send; `None` when stopped.
    pub next: Option<Instant>,
    /// Sends so far in this sequence.
    pub count: u32,
    /// Periodicity of the last send (ms), 0 before the first.
    pub last_ms: u32,
}

impl Periodic {
    /// Restart the sequence with the first send at `at`.
    pub fn restart(&mut self, at: Instant) {
        self.next = Some(at);
        self.count = 0;
    }

    pub fn stop(&mut self) {
        self.next = None;
        self.count = 0;
    }

    pub fn due(&self, now: Instant) -> bool {
        self.next.is_some_and(|t| t <= now)
    }

    /// Record a send at `now` with `interval` to the next one.
    pub fn fired(&mut self, now: Instant, interval: Duration) {
        self.count = self.count.saturating_add(1);
        self.last_ms = millis(interval);
        self.next = Some(now + interval);
    }
}

/// SplitMix64: a tiny seeded generator for the random delays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (ms), as a duration.
    pub fn millis_between(&mut self, lo: u64, hi: u64) -> Duration {
        let span = hi.saturating_sub(lo).saturating_add(1);
        Duration::from_millis(lo + self.next_u64() % span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        let max = Duration::from_secs(720);
        let host: Vec<u64> = (0..7)
            .map(|c| host_interval(c, max).as_secs() / 60)
            .collect();
        assert_eq!(host, [1, 1, 2, 4, 8, 12, 12]);
        assert_eq!(
            host_interval(9, Duration::from_secs(300)),
            Duration::from_secs(300)
        );
        let lma: Vec<u64> = (0..6).map(|c| lma_interval(c).as_secs() / 60).collect();
        assert_eq!(lma, [2, 2, 4, 8, 12, 12]);
        let dom: Vec<u64> = (0..8).map(|c| domain_interval(c).as_secs() / 60).collect();
        assert_eq!(dom, [1, 1, 5, 5, 10, 10, 15, 15]);
    }

    #[test]
    fn rng_range_and_determinism() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let d = a.millis_between(200, 600);
            assert_eq!(d, b.millis_between(200, 600));
            assert!((200..=600).contains(&(d.as_millis() as u64)));
        }
        assert_eq!(Rng::new(1).millis_between(5, 5), Duration::from_millis(5));
    }
}
