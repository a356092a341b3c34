//! The one reply gate: every packet sent in answer to a received one
//! — the node's name service and DATAGRAM ERRORs, the browser's answers, the NBNS and
//! NBDD roles' answers — passes here before it leaves, so that nobody can use the
//! daemon to reflect traffic at a spoofed victim (RFC 1002 has no source check; US-CERT
//! TA14-017A lists NetBIOS as a 3.8x amplifier).
//!
//! Per destination address:
//! * **amplification**: one answer is at most `factor` × its request;
//! * **budget**: bytes sent ≤ `factor` × bytes received from that address. Every
//!   packet accepted at the door credits its source with `factor` × its size (held at
//!   most `budget_ttl`, at most `factor` × [`BUDGET_CAP_IN`] bytes); every answer
//!   debits it. Many small answers to one larger request (fragments, group answers)
//!   therefore cannot add up past the factor either;
//! * **rate**: a token bucket per destination ([`RateLimiter`]).
//!
//! Both tables are bounded by `max_sources`; refusals are counted by reason and by
//! service.

use crate::ratelimit::{RateLimiter, RateStats};
use serde::Serialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Request bytes a destination's budget holds at most (× factor).
pub const BUDGET_CAP_IN: u64 = 4096;
/// How long received bytes keep their credit.
pub const BUDGET_TTL: Duration = Duration::from_secs(30);
/// Minimum time between two sweeps of a full budget table.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// A credit older than this is the first to go when the table is full.
const STALE: Duration = Duration::from_secs(1);

/// Who answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyService {
    /// The node's name service (query, node status, defence answers).
    Name,
    /// The node's DATAGRAM ERROR.
    DatagramError,
    /// The browser's answers (GetBackupListResponse).
    Browser,
    /// The NBNS role.
    Nbns,
    /// The NBDD role (DATAGRAM QUERY answers, its DATAGRAM ERRORs).
    Nbdd,
}

/// Why an answer was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than `factor` × its request.
    Amplification,
    /// Would exceed `factor` × the bytes received from the destination.
    Budget,
    /// The destination's reply rate.
    Rate,
}

/// One counter per [`ReplyService`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerService {
    pub name: u64,
    pub datagram_error: u64,
    pub browser: u64,
    pub nbns: u64,
    pub nbdd: u64,
}

impl PerService {
    fn bump(&mut self, s: ReplyService, n: u64) {
        let c = match s {
            ReplyService::Name => &mut self.name,
            ReplyService::DatagramError => &mut self.datagram_error,
            ReplyService::Browser => &mut self.browser,
            ReplyService::Nbns => &mut self.nbns,
            ReplyService::Nbdd => &mut self.nbdd,
        };
        *c = c.saturating_add(n);
    }
}

/// Refusals by reason, each by service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub amplification: PerService,
    pub budget: PerService,
    pub rate: PerService,
}

/// Counters of the gate (`reply_gate` in `nbdgm stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GateStats {
    pub factor: usize,
    /// Answers sent, and their bytes.
    pub passed: PerService,
    pub bytes_out: PerService,
    pub refused: Refused,
    /// Received bytes that earned credit.
    pub bytes_credited: u64,
    /// Destinations with a budget now (gauge) and the cap.
    pub sources: usize,
    pub max_sources: usize,
    /// Budgets removed to make room.
    pub evictions: u64,
    /// Received packets that found the budget table full (no credit: their answers
    /// are refused).
    pub table_full: u64,
    /// The per-destination reply rate table.
    pub rate: RateStats,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    bytes: u64,
    last: Instant,
}

/// The gate of one worker.
#[derive(Debug)]
pub struct ReplyGate {
    factor: usize,
    rate: RateLimiter,
    budgets: HashMap<Ipv4Addr, Budget>,
    max_sources: usize,
    last_sweep: Option<Instant>,
    stats: GateStats,
}

impl ReplyGate {
    /// `factor` ≥ 1; `rate` = (per second, burst) per destination.
    pub fn new(factor: usize, rate: (f64, u32), max_sources: usize) -> ReplyGate {
        ReplyGate {
            factor: factor.max(1),
            rate: RateLimiter::new(rate.0, rate.1, max_sources),
            budgets: HashMap::with_capacity(max_sources.min(1 << 16)),
            max_sources,
            last_sweep: None,
            stats: GateStats {
                factor: factor.max(1),
                max_sources,
                ..GateStats::default()
            },
        }
    }

    /// A packet of `len` bytes from `ip` passed the door: credit its budget.
    pub fn credit(&mut self, ip: Ipv4Addr, len: usize, now: Instant) {
        let cap = BUDGET_CAP_IN.saturating_mul(self.factor as u64);
        let add = (len as u64).saturating_mul(self.factor as u64);
        // A known source (the common case) costs one lookup.
        if let Some(b) = self.budgets.get_mut(&ip) {
            if now.saturating_duration_since(b.last) > BUDGET_TTL {
                b.bytes = 0;
            }
            b.bytes = b.bytes.saturating_add(add).min(cap);
            b.last = b.last.max(now);
        } else {
            if self.budgets.len() >= self.max_sources {
                self.sweep(now);
                if self.budgets.len() >= self.max_sources {
                    self.stats.table_full += 1;
                    return;
                }
            }
            let b = Budget {
                bytes: add.min(cap),
                last: now,
            };
            self.budgets.insert(ip, b);
        }
        self.stats.bytes_credited = self.stats.bytes_credited.saturating_add(len as u64);
    }

    /// May an answer of `len` bytes to a request of `request_len` bytes go to `to`?
    /// On success its bytes are debited from `to`'s budget.
    pub fn check(
        &mut self,
        service: ReplyService,
        to: Ipv4Addr,
        len: usize,
        request_len: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        let r = self.decide(to, len, request_len, now);
        match r {
            Ok(()) => {
                self.stats.passed.bump(service, 1);
                self.stats.bytes_out.bump(service, len as u64);
            }
            Err(Refusal::Amplification) => self.stats.refused.amplification.bump(service, 1),
            Err(Refusal::Budget) => self.stats.refused.budget.bump(service, 1),
            Err(Refusal::Rate) => self.stats.refused.rate.bump(service, 1),
        }
        r
    }

    fn decide(
        &mut self,
        to: Ipv4Addr,
        len: usize,
        request_len: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        if len > request_len.saturating_mul(self.factor) {
            return Err(Refusal::Amplification);
        }
        let len = len as u64;
        // One lookup: a budget past its TTL counts as empty.
        let budget = self
            .budgets
            .get_mut(&to)
            .filter(|b| now.saturating_duration_since(b.last) <= BUDGET_TTL);
        let left = budget.as_ref().map_or(0, |b| b.bytes);
        if left < len {
            return Err(Refusal::Budget);
        }
        if !self.rate.check(to, now) {
            return Err(Refusal::Rate);
        }
        if let Some(b) = budget {
            b.bytes -= len;
        }
        Ok(())
    }

    /// Make room: expired or empty budgets first, then those not credited for a second.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let before = self.budgets.len();
        self.budgets
            .retain(|_, b| b.bytes > 0 && now.saturating_duration_since(b.last) <= BUDGET_TTL);
        if self.budgets.len() == before {
            self.budgets
                .retain(|_, b| now.saturating_duration_since(b.last) <= STALE);
        }
        self.stats.evictions += (before - self.budgets.len()) as u64;
    }

    pub fn stats(&self) -> GateStats {
        GateStats {
            sources: self.budgets.len(),
            rate: self.rate.stats(),
            ..self.stats.clone()
        }
    }

    /// The per-destination reply rate counters.
    pub fn rate_stats(&self) -> RateStats {
        self.rate.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0A00_0000 + n)
    }

    #[test]
    fn one_request_cannot_buy_more_than_factor_times_its_size() {
        let t = Instant::now();
        let mut g = ReplyGate::new(4, (1000.0, 1000), 16);
        g.credit(ip(1), 100, t);
        let mut out = 0;
        // Many small answers to one 100-byte request.
        while g.check(ReplyService::Browser, ip(1), 30, 100, t).is_ok() {
            out += 30;
        }
        assert!(out <= 400, "{out}");
        assert_eq!(out, 390);
        assert_eq!(g.stats().refused.budget.browser, 1);
        // No credit at all: nothing goes out.
        assert_eq!(
            g.check(ReplyService::Name, ip(2), 10, 50, t),
            Err(Refusal::Budget)
        );
    }

    #[test]
    fn single_answer_above_factor_is_refused() {
        let t = Instant::now();
        let mut g = ReplyGate::new(4, (1000.0, 1000), 16);
        for _ in 0..10 {
            g.credit(ip(1), 50, t);
        }
        assert_eq!(
            g.check(ReplyService::Name, ip(1), 201, 50, t),
            Err(Refusal::Amplification)
        );
        assert!(g.check(ReplyService::Name, ip(1), 200, 50, t).is_ok());
        let s = g.stats();
        assert_eq!(s.refused.amplification.name, 1);
        assert_eq!((s.passed.name, s.bytes_out.name), (1, 200));
    }

    #[test]
    fn rate_bounds_answers_and_credit_expires_and_is_capped() {
        let t = Instant::now();
        let mut g = ReplyGate::new(4, (10.0, 5), 16);
        let mut ok = 0;
        for _ in 0..100 {
            g.credit(ip(1), 50, t);
            if g.check(ReplyService::Nbns, ip(1), 60, 50, t).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 5);
        assert_eq!(g.stats().refused.rate.nbns, 95);
        // Credit is capped and expires.
        let mut g = ReplyGate::new(2, (1e6, 1_000_000), 16);
        for _ in 0..10_000 {
            g.credit(ip(1), 500, t);
        }
        let later = t + BUDGET_TTL + Duration::from_secs(1);
        assert_eq!(
            g.check(ReplyService::Nbdd, ip(1), 10, 500, later),
            Err(Refusal::Budget)
        );
        let mut sent = 0u64;
        while g.check(ReplyService::Nbdd, ip(1), 1000, 500, t).is_ok() {
            sent += 1000;
        }
        assert_eq!(sent, 2 * BUDGET_CAP_IN / 1000 * 1000);
    }

    #[test]
    fn budget_table_is_bounded_under_a_spoofed_flood() {
        let t = Instant::now();
        let mut g = ReplyGate::new(4, (50.0, 100), 64);
        let legit = ip(0xFFFF);
        g.credit(legit, 50, t);
        for i in 0..100_000u32 {
            let now = t + Duration::from_micros(u64::from(i) * 20);
            g.credit(ip(i), 50, now);
            let _ = g.check(ReplyService::Name, ip(i), 62, 50, now);
            assert!(g.budgets.len() <= 64);
        }
        let s = g.stats();
        assert!(s.evictions > 0 && s.table_full > 0, "{s:?}");
        let bytes: u64 = s.bytes_out.name;
        assert!(bytes <= 4 * s.bytes_credited, "{s:?}");
    }
}
