//! The daemon's reply gate for the tools that run without a daemon: [`ReplyGate`]
//! behind the standalone driver's [`Gate`] trait, built from `[limits]` (the defaults
//! unless given). Every answer to a received packet passes one gate, in the daemon and
//! in the standalone tools alike (per-source rate; bytes out at most
//! `reply_amplification` × bytes in; see `reply_gate`).

use crate::config::LimitsConfig;
use crate::reply_gate::{ReplyGate, ReplyService};
use nbdgm_runtime::standalone::{Gate, ReplyKind};
use std::net::Ipv4Addr;
use std::time::Instant;

impl Gate for ReplyGate {
    fn credit(&mut self, ip: Ipv4Addr, len: usize, now: Instant) {
        ReplyGate::credit(self, ip, len, now);
    }

    fn allow(
        &mut self,
        kind: ReplyKind,
        to: Ipv4Addr,
        len: usize,
        request_len: usize,
        now: Instant,
    ) -> bool {
        let service = match kind {
            ReplyKind::Name => ReplyService::Name,
            ReplyKind::DatagramError => ReplyService::DatagramError,
            ReplyKind::Browser => ReplyService::Browser,
        };
        self.check(service, to, len, request_len, now).is_ok()
    }
}

/// A gate with these limits: `replies_per_source` (rate, burst),
/// `reply_amplification`, `max_sources`.
pub fn gate(limits: &LimitsConfig) -> Box<dyn Gate> {
    Box::new(ReplyGate::new(
        limits.reply_amplification as usize,
        (
            limits.replies_per_source.rate,
            limits.replies_per_source.burst,
        ),
        limits.max_sources,
    ))
}

/// A gate with the `[limits]` defaults (50 answers/s per source, bursts of 100,
/// factor 4): what the standalone tools install.
pub fn default_gate() -> Box<dyn Gate> {
    gate(&LimitsConfig::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the trait: no credit, no answer; a credited source gets answers up to the
    /// burst, each at most the factor × its request.
    #[test]
    fn the_default_gate_through_the_trait() {
        let (t, ip) = (Instant::now(), Ipv4Addr::new(198, 51, 100, 10));
        let mut g = default_gate();
        assert!(!g.allow(ReplyKind::DatagramError, ip, 11, 80, t));
        let l = LimitsConfig::default();
        let mut sent = 0;
        for _ in 0..1000 {
            g.credit(ip, 80, t);
            if g.allow(ReplyKind::DatagramError, ip, 11, 80, t) {
                sent += 1;
            }
        }
        assert_eq!(sent, l.replies_per_source.burst);
        g.credit(ip, 10, t + std::time::Duration::from_secs(60));
        let later = t + std::time::Duration::from_secs(60);
        assert!(!g.allow(ReplyKind::Name, ip, 41, 10, later));
        assert!(g.allow(ReplyKind::Name, ip, 40, 10, later));
    }
}
