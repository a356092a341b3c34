//! The pacer shared by every probe of a run: packets and connection attempts per second.

use std::time::Duration;

/// A global pacer shared by all probes of a run: at most `rate` packets and connection
/// attempts per second (no burst); 0 = unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            interval: (rate > 0).then(|| Duration::from_secs(1) / rate),
            next: std::sync::Mutex::new(None),
        }
    }

    pub fn unlimited() -> Self {
        RateLimiter::new(0)
    }

    /// Wait for the next free slot.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = tokio::time::Instant::now();
        let slot = {
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}
