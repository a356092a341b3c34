//! The remote-name cache of a B-node (RFC 1001 §15.1.8; DIGEST §4.4 "Cache"):
//! answers of our queries, kept for a TTL, bounded with least-recently-used eviction,
//! flushed on a heard release, a conflict demand we sent, or a DATAGRAM ERROR.

use crate::event::{ser_name, NameAddress};
use nbdgm_wire::Name;
use serde::Serialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Most addresses kept per name (WINS keeps 25 for <1C>).
pub const MAX_ADDRESSES: usize = 25;

/// A row of [`crate::Node::cache`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheEntry {
    #[serde(serialize_with = "ser_name")]
    pub name: Name,
    /// Empty for a negative entry.
    pub addresses: Vec<NameAddress>,
    /// Seconds until it expires (from the node's latest known time).
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    addresses: Vec<NameAddress>,
    expires: Instant,
    used: u64,
}

/// Outcome of a cache lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    Hit(Vec<NameAddress>),
    Negative,
    Miss,
}

#[derive(Debug, Default)]
pub(crate) struct Cache {
    map: HashMap<Name, Slot>,
    clock: u64,
}

/// What a cache operation did, for the counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CacheDelta {
    pub evicted: u64,
    pub expired: u64,
}

impl Cache {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn get(&mut self, name: &Name, now: Instant, delta: &mut CacheDelta) -> Cached {
        let used = self.tick();
        match self.map.get_mut(name) {
            Some(s) if s.expires > now => {
                s.used = used;
                if s.addresses.is_empty() {
                    Cached::Negative
                } else {
                    Cached::Hit(s.addresses.clone())
                }
            }
            Some(_) => {
                self.map.remove(name);
                delta.expired += 1;
                Cached::Miss
            }
            None => Cached::Miss,
        }
    }

    /// Insert or replace; `addresses` empty = negative entry. Evicts to stay within `max`.
    pub fn insert(
        &mut self,
        name: Name,
        mut addresses: Vec<NameAddress>,
        ttl: Duration,
        now: Instant,
        max: usize,
        delta: &mut CacheDelta,
    ) {
        if ttl.is_zero() {
            return;
        }
        addresses.truncate(MAX_ADDRESSES);
        let used = self.tick();
        if !self.map.contains_key(&name) {
            self.make_room(max.saturating_sub(1), now, delta);
        }
        self.map.insert(
            name,
            Slot {
                addresses,
                expires: now + ttl,
                used,
            },
        );
    }

    /// Add one address to a positive entry (another member of a group).
    pub fn add_address(&mut self, name: &Name, a: NameAddress) {
        if let Some(s) = self.map.get_mut(name) {
            if !s.addresses.is_empty()
                && s.addresses.len() < MAX_ADDRESSES
                && !s.addresses.iter().any(|x| x.addr == a.addr)
            {
                s.addresses.push(a);
            }
        }
    }

    fn make_room(&mut self, keep: usize, now: Instant, delta: &mut CacheDelta) {
        if self.map.len() <= keep {
            return;
        }
        let before = self.map.len();
        self.map.retain(|_, s| s.expires > now);
        delta.expired += (before - self.map.len()) as u64;
        while self.map.len() > keep {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(n, _)| n.clone())
            else {
                break;
            };
            self.map.remove(&oldest);
            delta.evicted += 1;
        }
    }

    /// Shrink to `max` entries (after a configuration change).
    pub fn shrink(&mut self, max: usize, now: Instant, delta: &mut CacheDelta) {
        self.make_room(max, now, delta);
    }

    pub fn purge_expired(&mut self, now: Instant) -> u64 {
        let before = self.map.len();
        self.map.retain(|_, s| s.expires > now);
        (before - self.map.len()) as u64
    }

    pub fn remove(&mut self, name: &Name) -> bool {
        self.map.remove(name).is_some()
    }

    /// Drop `ip` from every entry; entries left without addresses go. Returns entries touched.
    pub fn flush_ip(&mut self, ip: Ipv4Addr) -> u64 {
        let mut n = 0;
        self.map.retain(|_, s| {
            let before = s.addresses.len();
            s.addresses.retain(|a| a.addr != ip);
            if s.addresses.len() != before {
                n += 1;
                !s.addresses.is_empty()
            } else {
                true
            }
        });
        n
    }

    pub fn entries(&self, now: Instant) -> Vec<CacheEntry> {
        let mut v: Vec<CacheEntry> = self
            .map
            .iter()
            .filter(|(_, s)| s.expires > now)
            .map(|(n, s)| CacheEntry {
                name: n.clone(),
                addresses: s.addresses.clone(),
                expires_in_secs: s.expires.saturating_duration_since(now).as_secs(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::datagram::NodeType;

    fn addr(last: u8) -> NameAddress {
        NameAddress {
            addr: Ipv4Addr::new(10, 0, 0, last),
            group: false,
            ont: NodeType::B,
        }
    }

    #[test]
    fn ttl_lru_and_flush() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        let mut d = CacheDelta::default();
        let ttl = Duration::from_secs(10);
        let n = |s: &str| s.parse::<Name>().unwrap();
        c.insert(n("A"), vec![addr(1)], ttl, t0, 2, &mut d);
        c.insert(n("B"), vec![addr(2)], ttl, t0, 2, &mut d);
        // Touch A so that B is the least recently used.
        assert_eq!(c.get(&n("A"), t0, &mut d), Cached::Hit(vec![addr(1)]));
        c.insert(n("C"), vec![addr(3)], ttl, t0, 2, &mut d);
        assert_eq!(d.evicted, 1);
        assert_eq!(c.get(&n("B"), t0, &mut d), Cached::Miss);
        assert!(matches!(c.get(&n("A"), t0, &mut d), Cached::Hit(_)));
        // Expiry.
        let later = t0 + ttl;
        assert_eq!(c.get(&n("A"), later, &mut d), Cached::Miss);
        assert_eq!(d.expired, 1);
        // Negative entries and flush by IP.
        c.insert(n("N"), vec![], ttl, t0, 3, &mut d);
        assert_eq!(c.get(&n("N"), t0, &mut d), Cached::Negative);
        assert_eq!(c.flush_ip(Ipv4Addr::new(10, 0, 0, 3)), 1);
        assert_eq!(c.get(&n("C"), t0, &mut d), Cached::Miss);
        // Zero TTL is not cached.
        c.insert(n("Z"), vec![addr(9)], Duration::ZERO, t0, 3, &mut d);
        assert_eq!(c.get(&n("Z"), t0, &mut d), Cached::Miss);
    }
}
