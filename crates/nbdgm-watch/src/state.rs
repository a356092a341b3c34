//! Capped state shared by the detectors: [`CappedMap`] (the one table type, capped in
//! entries with oldest-first eviction by capture time and counters) and the
//! [`NameTable`] of who owns which name on which protocol.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

/// A map capped at `max` entries. When full, the older half (by last touch, in capture
/// seconds) is dropped at once, so eviction costs O(1) amortised under a flood of new keys.
#[derive(Debug)]
pub struct CappedMap<K, V> {
    map: HashMap<K, (V, i64)>,
    max: usize,
    /// Entries dropped to make room.
    pub evicted: u64,
}

impl<K: Hash + Eq + Clone, V> CappedMap<K, V> {
    /// An empty map holding at most `max` entries.
    pub fn new(max: usize) -> Self {
        CappedMap {
            map: HashMap::new(),
            max: max.max(2),
            evicted: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The entry for `key`, touched at `now`.
    pub fn get_mut(&mut self, key: &K, now: i64) -> Option<&mut V> {
        self.map.get_mut(key).map(|(v, t)| {
            *t = now;
            v
        })
    }

    /// The entry for `key`, untouched.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// The entry for `key`, created with `make` if missing (evicting when full), touched
    /// at `now`.
    pub fn entry(&mut self, key: K, now: i64, make: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.max {
            self.evict_older_half();
        }
        let slot = self.map.entry(key).or_insert_with(|| (make(), now));
        slot.1 = now;
        &mut slot.0
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(v, _)| v)
    }

    /// Drops entries not touched since `before`.
    pub fn expire(&mut self, before: i64) {
        let n = self.map.len();
        self.map.retain(|_, (_, t)| *t >= before);
        self.evicted += (n - self.map.len()) as u64;
    }

    /// Every entry with its last touch.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V, i64)> {
        self.map.iter().map(|(k, (v, t))| (k, v, *t))
    }

    fn evict_older_half(&mut self) {
        let mut times: Vec<i64> = self.map.values().map(|(_, t)| *t).collect();
        let mid = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(mid);
        let median = *median;
        let n = self.map.len();
        self.map.retain(|_, (_, t)| *t > median);
        if self.map.len() == n {
            // All touched in the same second: drop arbitrary entries down to half.
            let drop: Vec<K> = self.map.keys().take(n - mid).cloned().collect();
            for k in drop {
                self.map.remove(&k);
            }
        }
        self.evicted += (n - self.map.len()) as u64;
    }
}

/// The name protocols watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// NetBIOS name service, UDP 137.
    Nbns,
    /// LLMNR, UDP 5355.
    Llmnr,
    /// Multicast DNS, UDP 5353.
    Mdns,
}

impl Proto {
    /// `nbns`, `llmnr`, `mdns`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Nbns => "nbns",
            Proto::Llmnr => "llmnr",
            Proto::Mdns => "mdns",
        }
    }
}

/// How a host came to own a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A registration or refresh (NBNS) / announcement (mDNS) by the host.
    Registered,
    /// A negative registration response defending the name.
    Defended,
    /// A positive answer that no detector doubted.
    Answered,
}

impl Claim {
    /// `registered`, `defended`, `answered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Registered => "registered",
            Claim::Defended => "defended",
            Claim::Answered => "answered",
        }
    }
}

/// One owner of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owner's address (the packet source, or the address it registered).
    pub addr: IpAddr,
    /// How it claimed the name.
    pub claim: Claim,
    /// Frame of the claim.
    pub frame: u64,
    /// Capture seconds of the claim.
    pub secs: i64,
}

/// Owners of one name (group names have many). At most [`NameEntry::MAX_OWNERS`].
#[derive(Debug, Clone, Default)]
pub struct NameEntry {
    /// Known owners, oldest first.
    pub owners: Vec<Owner>,
    /// A group name (NBNS G bit)?
    pub group: bool,
}

impl NameEntry {
    /// Owners kept per name.
    pub const MAX_OWNERS: usize = 16;

    /// Is `addr` an owner?
    pub fn owned_by(&self, addr: IpAddr) -> bool {
        self.owners.iter().any(|o| o.addr == addr)
    }
}

/// Who owns which name, per protocol. Keys are the protocol and the name in a canonical
/// form: NBNS `NAME<xx>` upper case; DNS names lower case without the trailing dot.
#[derive(Debug)]
pub struct NameTable {
    /// The table.
    pub names: CappedMap<(Proto, String), NameEntry>,
    /// How many NBNS names with each suffix each address owns: [`NameTable::owns_suffix`]
    /// without a scan of the table (it runs on frames an attacker can flood). A name the
    /// table evicts stays counted until its owner releases it.
    suffixes: CappedMap<(IpAddr, u8), u32>,
}

/// The suffix of a canonical NBNS name, `NAME<xx>` or `NAME<xx>.scope`.
fn nbns_suffix(name: &str) -> Option<u8> {
    let at = name.find('<')?;
    let hex = name.get(at + 1..at + 3)?;
    (name.get(at + 3..at + 4) == Some(">"))
        .then(|| u8::from_str_radix(hex, 16).ok())
        .flatten()
}

impl NameTable {
    /// A table of at most `max` names.
    pub fn new(max: usize) -> NameTable {
        NameTable {
            names: CappedMap::new(max),
            suffixes: CappedMap::new(max),
        }
    }

    fn count_suffix(&mut self, proto: Proto, name: &str, addr: IpAddr, now: i64, up: bool) {
        let Some(sfx) = (proto == Proto::Nbns).then(|| nbns_suffix(name)).flatten() else {
            return;
        };
        if up {
            *self.suffixes.entry((addr, sfx), now, || 0) += 1;
        } else if let Some(n) = self.suffixes.get_mut(&(addr, sfx), now) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.suffixes.remove(&(addr, sfx));
            }
        }
    }

    /// The owners of `name`.
    pub fn get(&self, proto: Proto, name: &str) -> Option<&NameEntry> {
        self.names.get(&(proto, name.to_owned()))
    }

    /// Records that `owner` claims `name`.
    pub fn claim(&mut self, proto: Proto, name: &str, group: bool, owner: Owner) {
        let e = self
            .names
            .entry((proto, name.to_owned()), owner.secs, NameEntry::default);
        e.group |= group;
        if let Some(o) = e.owners.iter_mut().find(|o| o.addr == owner.addr) {
            o.secs = owner.secs;
            o.frame = owner.frame;
            if owner.claim != Claim::Answered {
                o.claim = owner.claim;
            }
            return;
        }
        let dropped = (e.owners.len() >= NameEntry::MAX_OWNERS).then(|| e.owners.remove(0));
        let (addr, now) = (owner.addr, owner.secs);
        e.owners.push(owner);
        if let Some(d) = dropped {
            self.count_suffix(proto, name, d.addr, now, false);
        }
        self.count_suffix(proto, name, addr, now, true);
    }

    /// Forgets `addr` as an owner of `name` (a release).
    pub fn release(&mut self, proto: Proto, name: &str, addr: IpAddr) {
        let key = (proto, name.to_owned());
        let Some(e) = self.names.remove(&key) else {
            return;
        };
        let mut e = e;
        let before = e.owners.len();
        e.owners.retain(|o| o.addr != addr);
        let last = e.owners.iter().map(|o| o.secs).max().unwrap_or(0);
        if e.owners.len() < before {
            self.count_suffix(proto, name, addr, last, false);
        }
        if !e.owners.is_empty() {
            // Back with its newest owner's time, so the release does not age it.
            self.names.entry(key, last, || e);
        }
    }

    /// Does `addr` own an NBNS name with one of these suffixes? O(suffixes).
    pub fn owns_suffix(&self, addr: IpAddr, suffixes: &[u8]) -> bool {
        suffixes
            .iter()
            .any(|&s| self.suffixes.get(&(addr, s)).is_some_and(|&n| n > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_map_never_exceeds_its_cap_and_counts_evictions() {
        let mut m = CappedMap::new(100);
        for i in 0..10_000u32 {
            *m.entry(i, i64::from(i / 7), || 0u32) += 1;
            assert!(m.len() <= 100);
        }
        assert!(m.evicted >= 9_900);
        assert!(m.get(&9_999).is_some(), "the newest survives");
    }

    #[test]
    fn capped_map_same_second_flood_still_capped() {
        let mut m = CappedMap::new(10);
        for i in 0..1_000u32 {
            m.entry(i, 5, || ());
        }
        assert!(m.len() <= 10);
    }

    #[test]
    fn name_table_claims_and_releases() {
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let mut t = NameTable::new(10);
        t.claim(
            Proto::Nbns,
            "HOST<20>",
            false,
            Owner {
                addr: a,
                claim: Claim::Registered,
                frame: 1,
                secs: 1,
            },
        );
        assert!(t.get(Proto::Nbns, "HOST<20>").unwrap().owned_by(a));
        assert!(t.owns_suffix(a, &[0x20]));
        assert!(!t.owns_suffix(a, &[0x1c]));
        t.release(Proto::Nbns, "HOST<20>", a);
        assert!(t.get(Proto::Nbns, "HOST<20>").is_none());
        assert!(!t.owns_suffix(a, &[0x20]));
    }

    #[test]
    fn suffix_index_follows_claims_releases_and_owner_turnover() {
        let ip = |n: u8| IpAddr::from([198, 51, 100, n]);
        let own = |n: u8| Owner {
            addr: ip(n),
            claim: Claim::Registered,
            frame: 1,
            secs: 1,
        };
        let mut t = NameTable::new(100);
        t.claim(Proto::Nbns, "CORP<1C>", true, own(1));
        t.claim(Proto::Nbns, "CORP<1C>.lab", true, own(2));
        t.claim(Proto::Llmnr, "corp<1c>", false, own(3));
        assert!(t.owns_suffix(ip(1), &[0x1b, 0x1c]));
        assert!(t.owns_suffix(ip(2), &[0x1c]));
        assert!(!t.owns_suffix(ip(3), &[0x1c]), "not NBNS");
        assert!(!t.owns_suffix(ip(1), &[0x1b]));
        // A second name with the same suffix: one release leaves the other.
        t.claim(Proto::Nbns, "OTHER<1C>", true, own(1));
        t.release(Proto::Nbns, "CORP<1C>", ip(1));
        assert!(t.owns_suffix(ip(1), &[0x1c]));
        t.release(Proto::Nbns, "OTHER<1C>", ip(1));
        assert!(!t.owns_suffix(ip(1), &[0x1c]));
        // A group name holds MAX_OWNERS; the owner pushed out no longer owns it.
        for n in 10..10 + NameEntry::MAX_OWNERS as u8 + 1 {
            t.claim(Proto::Nbns, "GRP<1C>", true, own(n));
        }
        assert!(!t.owns_suffix(ip(10), &[0x1c]));
        assert!(t.owns_suffix(ip(11), &[0x1c]));
        assert_eq!(nbns_suffix("X<1B>"), Some(0x1b));
        assert_eq!(nbns_suffix("X<1B>.scope"), Some(0x1b));
        assert_eq!(nbns_suffix("x.local"), None);
        assert_eq!(nbns_suffix("X<zz>"), None);
    }
}
