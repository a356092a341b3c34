//! Alerts and their repeat suppression.
//!
//! An [`Alert`] names its [`Signature`], the suspect (`src`, whenever one host is the
//! suspect), the packet that completed the detection and its evidence. Evidence strings
//! are kept exact (they come from the network); every human-readable output escapes them
//! with `nbdgm_wire::text::escape`.

use crate::signature::Signature;
use crate::state::CappedMap;
use nbdgm_capture::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::SocketAddr;

/// Suricata's severity scale: 1 high, 2 medium, 3 low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 1.
    High = 1,
    /// 2.
    Medium = 2,
    /// 3.
    Low = 3,
}

impl Severity {
    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// `high`, `medium`, `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Is `self` at least as severe as `other`?
    pub fn at_least(self, other: Severity) -> bool {
        self.number() <= other.number()
    }

    /// One step more severe (High stays High).
    pub fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            _ => Severity::High,
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "high" | "1" => Ok(Severity::High),
            "medium" | "2" => Ok(Severity::Medium),
            "low" | "3" => Ok(Severity::Low),
            _ => Err(format!("unknown severity {s:?} (high, medium, low or 1-3)")),
        }
    }
}

/// One detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What was detected.
    pub signature: &'static Signature,
    /// The signature's severity, or the one the evidence raised it to.
    pub severity: Severity,
    /// Time of the packet that completed the detection.
    pub time: Timestamp,
    /// Its frame number.
    pub frame: u64,
    /// The suspect's address (or the packet's source when there is no single suspect).
    pub src: SocketAddr,
    /// The packet's destination.
    pub dst: SocketAddr,
    /// Evidence: names, transaction ids, frames, earlier owners, counts. Exact strings.
    pub evidence: Map<String, Value>,
    /// What repeats are suppressed by, besides signature and suspect (a name, a
    /// workgroup); not output.
    pub key: String,
}

impl Alert {
    /// An alert with the signature's default severity, about packet `p`, suspect its
    /// source.
    pub fn new(signature: &'static Signature, p: &crate::Packet<'_>) -> Alert {
        Alert {
            signature,
            severity: signature.severity,
            time: p.time,
            frame: p.frame,
            src: p.src,
            dst: p.dst,
            evidence: Map::new(),
            key: String::new(),
        }
    }

    /// Sets the suppression key (see [`Suppressor`]).
    pub fn key(mut self, key: impl Into<String>) -> Alert {
        self.key = key.into();
        self
    }

    /// Adds one evidence field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Alert {
        self.evidence.insert(key.to_owned(), value.into());
        self
    }

    /// Sets the severity.
    pub fn severity(mut self, s: Severity) -> Alert {
        self.severity = s;
        self
    }
}

/// Repeat suppression: the same signature for the same suspect and key is emitted once
/// per `window_secs` of capture time; the next emission carries `repeats` (how many were
/// held back). The table is a [`CappedMap`]: when full, the older half goes (counted), so
/// a flood of new keys costs O(1) amortised per alert.
#[derive(Debug)]
pub struct Suppressor {
    window_secs: i64,
    seen: CappedMap<(u32, SocketAddr, String), (i64, u64)>,
    /// Alerts held back as repeats.
    pub suppressed: u64,
}

impl Suppressor {
    /// A suppressor with a window (0 disables suppression) and a cap on keys.
    pub fn new(window_secs: i64, max: usize) -> Suppressor {
        Suppressor {
            window_secs,
            seen: CappedMap::new(max),
            suppressed: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Entries dropped because the table was full.
    pub fn evicted(&self) -> u64 {
        self.seen.evicted
    }

    /// Should `a` (keyed by signature, suspect and [`Alert::key`]) be emitted? Adds
    /// `repeats` to its evidence when it follows suppressed ones.
    pub fn admit(&mut self, a: &mut Alert) -> bool {
        if self.window_secs <= 0 {
            return true;
        }
        let now = a.time.secs;
        let k = (a.signature.id, a.src, a.key.clone());
        if let Some((last, held)) = self.seen.get_mut(&k, now) {
            if now.saturating_sub(*last) < self.window_secs {
                *held += 1;
                self.suppressed += 1;
                return false;
            }
            if *held > 0 {
                a.evidence.insert("repeats".into(), Value::from(*held));
            }
            *last = now;
            *held = 0;
            return true;
        }
        self.seen.entry(k, now, || (now, 0));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::MALFORMED;

    fn alert(secs: i64, src: &str) -> Alert {
        let p = crate::Packet {
            frame: 1,
            time: Timestamp::new(secs, 0),
            src: src.parse().unwrap(),
            dst: "198.51.100.255:138".parse().unwrap(),
            src_mac: None,
            payload: &[],
        };
        Alert::new(&MALFORMED, &p).key("datagram")
    }

    #[test]
    fn repeats_are_held_back_within_the_window_and_counted() {
        let mut s = Suppressor::new(300, 100);
        assert!(s.admit(&mut alert(0, "198.51.100.1:138")));
        assert!(!s.admit(&mut alert(10, "198.51.100.1:138")));
        assert!(!s.admit(&mut alert(299, "198.51.100.1:138")));
        // Another suspect is another key.
        assert!(s.admit(&mut alert(20, "198.51.100.2:138")));
        let mut later = alert(300, "198.51.100.1:138");
        assert!(s.admit(&mut later));
        assert_eq!(later.evidence["repeats"], 2);
        assert_eq!(s.suppressed, 2);
    }

    #[test]
    fn a_flood_of_keys_stays_capped() {
        let mut s = Suppressor::new(300, 64);
        for i in 0..10_000u32 {
            let src = format!("198.51.{}.{}:138", i / 250, i % 250);
            assert!(s.admit(&mut alert(i64::from(i / 100), &src)));
            assert!(s.len() <= 64);
        }
        assert!(s.evicted() >= 10_000 - 64);
    }
}
