//! The NBNS name database (RFC 1001 §15.1.1; RFC 1002 §5.1.4.2 timer-driven removal;
//! MS-NBTE §3.2.1 several addresses per name). Each address has its own TTL; a name
//! lives while one address does. An ordered deadline index makes the next expiry
//! O(log n); a per-address index counts what each address holds, for the per-source
//! quotas.

use nbdgm_wire::Name;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::Instant;

/// One address of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub ip: Ipv4Addr,
    /// NB_FLAGS as registered (G and ONT).
    pub nb_flags: u16,
    /// Granted TTL in seconds.
    pub ttl: u32,
    /// First registration (for "oldest address" eviction).
    pub since: Instant,
    /// Removal time: last refresh + TTL + grace.
    pub expires: Instant,
    /// Refreshed at least once by its own address: never evicted by a newcomer.
    pub established: bool,
}

/// Where a name that never expires came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    /// `[[nbns_server.static]]` in the configuration (like an lmhosts `#PRE` line):
    /// applied at every start, never saved to the state file, never deleted by the API.
    Config,
    /// Added through the local API with `static`: saved to the state file.
    Admin,
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub group: bool,
    /// A static name: its addresses never expire and registrations never change it
    /// (the NBNS defends it like an owner, RFC 1002 §5.1.4.1).
    pub fixed: Option<Fixed>,
    pub members: Vec<Member>,
    deadline: Instant,
    /// Where the next cut query answer starts (round robin over the live addresses).
    cursor: usize,
}

impl Record {
    /// Addresses still alive at `now`.
    pub fn live(&self, now: Instant) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.expires > now)
    }

    /// The live addresses, oldest registration first; `None` when there are none.
    pub fn live_oldest_first(&self, now: Instant) -> Option<Vec<&Member>> {
        let mut live: Vec<&Member> = self.live(now).collect();
        if live.is_empty() {
            return None;
        }
        live.sort_by_key(|m| m.since);
        Some(live)
    }

    pub fn has(&self, ip: Ipv4Addr) -> bool {
        self.members.iter().any(|m| m.ip == ip)
    }
}

/// What one address holds: addresses of unique names, and group memberships.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub unique: usize,
    pub groups: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    map: HashMap<Name, Record>,
    index: BTreeSet<(Instant, Name)>,
    members: usize,
    /// Per address; an address holding nothing has no entry.
    held: HashMap<Ipv4Addr, Held>,
}

fn min_expiry(members: &[Member]) -> Option<Instant> {
    members.iter().map(|m| m.expires).min()
}

impl Table {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn members(&self) -> usize {
        self.members
    }

    /// What `ip` holds.
    pub fn held_by(&self, ip: Ipv4Addr) -> Held {
        self.held.get(&ip).copied().unwrap_or_default()
    }

    /// Addresses holding at least one name.
    pub fn sources(&self) -> usize {
        self.held.len()
    }

    fn account(held: &mut HashMap<Ipv4Addr, Held>, group: bool, members: &[Member], add: bool) {
        for m in members {
            let h = held.entry(m.ip).or_default();
            let n = if group { &mut h.groups } else { &mut h.unique };
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
            if *h == Held::default() {
                held.remove(&m.ip);
            }
        }
    }

    pub fn get(&self, name: &Name) -> Option<&Record> {
        self.map.get(name)
    }

    /// The start of the next cut answer for `name` among `live` addresses, then move
    /// the cursor on by `sent`: successive cut answers list every address in turn.
    pub fn rotate(&mut self, name: &Name, live: usize, sent: usize) -> usize {
        let Some(rec) = self.map.get_mut(name) else {
            return 0;
        };
        if live == 0 {
            return 0;
        }
        let start = rec.cursor % live;
        rec.cursor = (start + sent) % live;
        start
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Name, &Record)> {
        self.map.iter()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.index.first().map(|(t, _)| *t)
    }

    /// Add a new name (the caller checked that it is absent and that there is room).
    pub fn insert(&mut self, name: Name, group: bool, member: Member) {
        // Not expected to be present; keep the counters right anyway.
        self.remove(&name);
        let deadline = member.expires;
        self.index.insert((deadline, name.clone()));
        self.members += 1;
        Self::account(&mut self.held, group, std::slice::from_ref(&member), true);
        self.map.insert(
            name,
            Record {
                group,
                fixed: None,
                members: vec![member],
                deadline,
                cursor: 0,
            },
        );
    }

    /// Add a name with several addresses at once (static entries, the state file). The
    /// caller checked that there is room; a previous record of the name is replaced.
    pub fn insert_all(
        &mut self,
        name: Name,
        group: bool,
        members: Vec<Member>,
        fixed: Option<Fixed>,
    ) {
        self.remove(&name);
        let Some(deadline) = min_expiry(&members) else {
            return;
        };
        self.index.insert((deadline, name.clone()));
        self.members += members.len();
        Self::account(&mut self.held, group, &members, true);
        self.map.insert(
            name,
            Record {
                group,
                fixed,
                members,
                deadline,
                cursor: 0,
            },
        );
    }

    /// Remove a whole name.
    pub fn remove(&mut self, name: &Name) -> Option<Record> {
        let rec = self.map.remove(name)?;
        self.index.remove(&(rec.deadline, name.clone()));
        self.members -= rec.members.len();
        Self::account(&mut self.held, rec.group, &rec.members, false);
        Some(rec)
    }

    /// Change a name's addresses with `f`; the index and counters follow, and a name
    /// left without addresses is removed. `None` if the name is not held.
    pub fn update<R>(&mut self, name: &Name, f: impl FnOnce(&mut Vec<Member>) -> R) -> Option<R> {
        let rec = self.map.get_mut(name)?;
        let before = rec.members.len();
        let old_deadline = rec.deadline;
        Self::account(&mut self.held, rec.group, &rec.members, false);
        let out = f(&mut rec.members);
        Self::account(&mut self.held, rec.group, &rec.members, true);
        let after = rec.members.len();
        self.members = self.members - before + after;
        match min_expiry(&rec.members) {
            None => {
                self.map.remove(name);
                self.index.remove(&(old_deadline, name.clone()));
            }
            Some(d) if d != old_deadline => {
                rec.deadline = d;
                self.index.remove(&(old_deadline, name.clone()));
                self.index.insert((d, name.clone()));
            }
            Some(_) => {}
        }
        Some(out)
    }

    /// Remove every address whose time is up. Reports (name, ip, name gone).
    pub fn expire(&mut self, now: Instant, out: &mut Vec<(Name, Ipv4Addr, bool)>) {
        while let Some((d, name)) = self.index.first().cloned() {
            if d > now {
                break;
            }
            let mut gone = Vec::new();
            let res = self.update(&name, |members| {
                members.retain(|m| {
                    let keep = m.expires > now;
                    if !keep {
                        gone.push(m.ip);
                    }
                    keep
                });
                members.is_empty()
            });
            match res {
                Some(emptied) => {
                    let n = gone.len();
                    for (i, ip) in gone.into_iter().enumerate() {
                        out.push((name.clone(), ip, emptied && i + 1 == n));
                    }
                }
                None => {
                    // Index entry without a record: repair.
                    self.index.remove(&(d, name));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn m(ip: u8, now: Instant, secs: u64) -> Member {
        Member {
            ip: Ipv4Addr::new(10, 0, 0, ip),
            nb_flags: 0,
            ttl: secs as u32,
            since: now,
            expires: now + Duration::from_secs(secs),
            established: false,
        }
    }

    #[test]
    fn expiry_per_address() {
        let t0 = Instant::now();
        let mut t = Table::default();
        let n = Name::new("G", 0).unwrap();
        t.insert(n.clone(), true, m(1, t0, 10));
        t.update(&n, |v| v.push(m(2, t0, 20))).unwrap();
        assert_eq!(t.members(), 2);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(10)));
        let mut out = vec![];
        t.expire(t0 + Duration::from_secs(10), &mut out);
        assert_eq!(out, vec![(n.clone(), Ipv4Addr::new(10, 0, 0, 1), false)]);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(20)));
        out.clear();
        t.expire(t0 + Duration::from_secs(30), &mut out);
        assert_eq!(out, vec![(n.clone(), Ipv4Addr::new(10, 0, 0, 2), true)]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.members(), 0);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.sources(), 0);
    }

    #[test]
    fn per_address_counts_follow_changes() {
        let t0 = Instant::now();
        let mut t = Table::default();
        let (g, u) = (Name::new("G", 0).unwrap(), Name::new("U", 0).unwrap());
        t.insert(g.clone(), true, m(1, t0, 10));
        t.insert(u.clone(), false, m(1, t0, 10));
        t.update(&g, |v| v.push(m(2, t0, 10))).unwrap();
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        assert_eq!(
            t.held_by(ip(1)),
            Held {
                unique: 1,
                groups: 1
            }
        );
        assert_eq!(
            t.held_by(ip(2)),
            Held {
                unique: 0,
                groups: 1
            }
        );
        t.update(&g, |v| v.retain(|m| m.ip != ip(1))).unwrap();
        assert_eq!(
            t.held_by(ip(1)),
            Held {
                unique: 1,
                groups: 0
            }
        );
        t.remove(&u);
        assert_eq!(t.held_by(ip(1)), Held::default());
        assert_eq!(t.sources(), 1);
        let mut out = vec![];
        t.expire(t0 + Duration::from_secs(10), &mut out);
        assert_eq!(t.sources(), 0);
    }

    #[test]
    fn update_to_empty_removes() {
        let t0 = Instant::now();
        let mut t = Table::default();
        let n = Name::new("U", 0x20).unwrap();
        t.insert(n.clone(), false, m(1, t0, 10));
        t.update(&n, |v| v.clear()).unwrap();
        assert!(t.get(&n).is_none());
        assert_eq!(t.next_deadline(), None);
        assert!(t.update(&n, |_| ()).is_none());
    }
}
