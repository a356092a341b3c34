//! Who may register and release which name through the local API (`docs/api.md`, `register`/`release`).
//!
//! - A unique name registered through the API belongs to that connection until it
//!   releases it or disconnects; another client's `register` or `release` is `denied`.
//! - A group name may be joined by several clients; it is released on the wire when the
//!   last of them releases it or disconnects. A client may only end its own membership.
//! - A `persistent` name outlives its connection; afterwards only a client of the same
//!   principal (the same uid on the Unix socket; the token holder on TCP) may take it
//!   over or release it.
//! - Reserved names (the configured names and, with a browser, the browser's names)
//!   belong to the configuration: the API can neither register nor release them.

use crate::api::ClientInfo;
use nbdgm_node::Name;
use std::collections::HashMap;

/// Names one client may hold, and persistent names one principal may keep.
pub const MAX_NAMES_PER_CLIENT: usize = 64;
/// Names held through the API in all (each a table entry in the node too).
pub const MAX_NAMES_TOTAL: usize = 1024;

/// Whose a persistent name stays after its connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principal {
    Uid(u32),
    Tcp,
    Unknown,
}

fn principal(c: &ClientInfo) -> Principal {
    match c.uid {
        Some(u) => Principal::Uid(u),
        None if c.peer.starts_with("tcp:") => Principal::Tcp,
        None => Principal::Unknown,
    }
}

#[derive(Debug, Clone)]
struct Holder {
    client: u64,
    principal: Principal,
    persistent: bool,
    connected: bool,
}

impl Holder {
    /// Whether `c` may act for this holder.
    fn is(&self, c: &ClientInfo) -> bool {
        self.client == c.id
            || (!self.connected
                && self.principal != Principal::Unknown
                && self.principal == principal(c))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    group: bool,
    holders: Vec<Holder>,
}

/// A refusal: the API error code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: String) -> Refusal {
    Refusal { code, message }
}

/// Counters shown under `stats.api_names`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OwnershipStats {
    pub held: usize,
    pub refused_owned: u64,
    pub refused_reserved: u64,
    pub refused_cap: u64,
}

/// The ownership table.
#[derive(Debug, Default)]
pub struct Owners {
    names: HashMap<Name, Entry>,
    reserved: Vec<Name>,
    stats: OwnershipStats,
}

impl Owners {
    /// Names the configuration owns (replaced at reload).
    pub fn set_reserved(&mut self, reserved: Vec<Name>) {
        self.reserved = reserved;
    }

    pub fn is_reserved(&self, name: &Name) -> bool {
        self.reserved.contains(name)
    }

    fn reserved_refusal(&mut self, name: &Name) -> Refusal {
        self.stats.refused_reserved += 1;
        refuse(
            "denied",
            format!("{name} belongs to the daemon's configuration; change it there"),
        )
    }

    fn held_by(&self, client: u64) -> usize {
        self.names
            .values()
            .filter(|e| e.holders.iter().any(|h| h.client == client))
            .count()
    }

    /// `client` asks to register `name`; Ok: ask the workers to register it.
    pub fn claim(
        &mut self,
        client: &ClientInfo,
        name: &Name,
        group: bool,
        persistent: bool,
    ) -> Result<(), Refusal> {
        if self.is_reserved(name) {
            return Err(self.reserved_refusal(name));
        }
        let me = Holder {
            client: client.id,
            principal: principal(client),
            persistent,
            connected: true,
        };
        if let Some(e) = self.names.get(name) {
            if e.group != group {
                self.stats.refused_owned += 1;
                let kind = if e.group { "group" } else { "unique" };
                return Err(refuse(
                    "denied",
                    format!("{name} is held through the API as a {kind} name"),
                ));
            }
            let mine = e.holders.iter().position(|h| h.is(client));
            if mine.is_none() && !group {
                self.stats.refused_owned += 1;
                let other = e.holders.first().map_or(0, |h| h.client);
                return Err(refuse(
                    "denied",
                    format!("{name} belongs to API client {other}"),
                ));
            }
            if mine.is_none() && self.held_by(client.id) >= MAX_NAMES_PER_CLIENT {
                self.stats.refused_cap += 1;
                return Err(refuse(
                    "busy",
                    format!("at most {MAX_NAMES_PER_CLIENT} names per client"),
                ));
            }
            // Present: looked up above, nothing removed it since.
            if let Some(e) = self.names.get_mut(name) {
                match mine {
                    Some(i) => e.holders[i] = me,
                    None => e.holders.push(me),
                }
            }
            return Ok(());
        }
        if self.held_by(client.id) >= MAX_NAMES_PER_CLIENT || self.names.len() >= MAX_NAMES_TOTAL {
            self.stats.refused_cap += 1;
            return Err(refuse(
                "busy",
                format!(
                    "at most {MAX_NAMES_PER_CLIENT} names per client and {MAX_NAMES_TOTAL} in all"
                ),
            ));
        }
        self.names.insert(
            name.clone(),
            Entry {
                group,
                holders: vec![me],
            },
        );
        Ok(())
    }

    /// `client` asks to release `name`; Ok(true): release it on the wire, Ok(false):
    /// other members still hold the group name.
    pub fn release(&mut self, client: &ClientInfo, name: &Name) -> Result<bool, Refusal> {
        if self.is_reserved(name) {
            return Err(self.reserved_refusal(name));
        }
        let Some(e) = self.names.get_mut(name) else {
            return Err(refuse(
                "not_found",
                format!("{name} was not registered through the API"),
            ));
        };
        let Some(i) = e.holders.iter().position(|h| h.is(client)) else {
            self.stats.refused_owned += 1;
            let other = e.holders.first().map_or(0, |h| h.client);
            return Err(refuse(
                "denied",
                format!("{name} belongs to API client {other}"),
            ));
        };
        e.holders.remove(i);
        if e.holders.is_empty() {
            self.names.remove(name);
            return Ok(true);
        }
        Ok(false)
    }

    /// The client is gone: the names to release on the wire (persistent names stay).
    pub fn disconnect(&mut self, client: u64) -> Vec<Name> {
        let mut gone = Vec::new();
        self.names.retain(|name, e| {
            e.holders.retain_mut(|h| {
                if h.client != client {
                    return true;
                }
                h.connected = false;
                h.persistent
            });
            if e.holders.is_empty() {
                gone.push(name.clone());
                false
            } else {
                true
            }
        });
        // A name the configuration took over meanwhile stays registered.
        gone.retain(|n| !self.reserved.contains(n));
        gone
    }

    /// The first holder of `name` and whether it is persistent (for the `names` view).
    pub fn owner(&self, name: &Name) -> Option<(u64, bool)> {
        let e = self.names.get(name)?;
        let h = e
            .holders
            .iter()
            .find(|h| h.connected)
            .or(e.holders.first())?;
        Some((h.client, h.persistent))
    }

    pub fn stats(&self) -> OwnershipStats {
        OwnershipStats {
            held: self.names.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(id: u64, uid: u32) -> ClientInfo {
        ClientInfo {
            id,
            pid: Some(100 + id as i32),
            uid: Some(uid),
            gid: Some(uid),
            peer: format!("unix:pid={}", 100 + id),
        }
    }

    fn n(s: &str) -> Name {
        s.parse().unwrap()
    }

    #[test]
    fn unique_names_are_exclusive() {
        let mut o = Owners::default();
        let (a, b) = (unix(1, 1000), unix(2, 1000));
        o.claim(&a, &n("APP<03>"), false, false).unwrap();
        assert_eq!(
            o.claim(&b, &n("APP<03>"), false, false).unwrap_err().code,
            "denied"
        );
        assert_eq!(
            o.claim(&b, &n("APP<03>"), true, false).unwrap_err().code,
            "denied"
        );
        assert_eq!(o.release(&b, &n("APP<03>")).unwrap_err().code, "denied");
        assert_eq!(o.owner(&n("APP<03>")), Some((1, false)));
        // Re-registering one's own name is fine.
        o.claim(&a, &n("APP<03>"), false, false).unwrap();
        assert!(o.release(&a, &n("APP<03>")).unwrap());
        assert_eq!(o.release(&a, &n("APP<03>")).unwrap_err().code, "not_found");
        assert_eq!(o.stats().refused_owned, 3);
    }

    #[test]
    fn reserved_names_belong_to_the_configuration() {
        let mut o = Owners::default();
        o.set_reserved(vec![n("NODE<00>"), n("WG<1d>")]);
        let a = unix(1, 0);
        for name in ["NODE<00>", "wg<1D>"] {
            assert_eq!(
                o.claim(&a, &n(name), false, true).unwrap_err().code,
                "denied"
            );
            assert_eq!(o.release(&a, &n(name)).unwrap_err().code, "denied");
        }
        assert_eq!(o.stats().refused_reserved, 4);
        // A name the configuration takes over is not released when its client leaves.
        o.claim(&a, &n("LATER<20>"), false, false).unwrap();
        o.set_reserved(vec![n("LATER<20>")]);
        assert!(o.disconnect(1).is_empty());
    }

    #[test]
    fn group_names_are_shared_until_the_last_member_leaves() {
        let mut o = Owners::default();
        let (a, b, c) = (unix(1, 1), unix(2, 2), unix(3, 3));
        o.claim(&a, &n("TEAM<00>"), true, false).unwrap();
        o.claim(&b, &n("TEAM<00>"), true, false).unwrap();
        assert_eq!(o.release(&c, &n("TEAM<00>")).unwrap_err().code, "denied");
        assert!(!o.release(&a, &n("TEAM<00>")).unwrap());
        assert!(o.disconnect(1).is_empty());
        assert_eq!(o.disconnect(2), vec![n("TEAM<00>")]);
    }

    #[test]
    fn persistent_names_stay_with_their_principal() {
        let mut o = Owners::default();
        let (a, a2, b) = (unix(1, 1000), unix(2, 1000), unix(3, 1001));
        o.claim(&a, &n("KEEP<20>"), false, true).unwrap();
        o.claim(&a, &n("TEMP<20>"), false, false).unwrap();
        // While A is connected, its other connections are other clients.
        assert_eq!(o.release(&a2, &n("KEEP<20>")).unwrap_err().code, "denied");
        assert_eq!(o.disconnect(1), vec![n("TEMP<20>")]);
        assert_eq!(o.release(&b, &n("KEEP<20>")).unwrap_err().code, "denied");
        assert_eq!(
            o.claim(&b, &n("KEEP<20>"), false, false).unwrap_err().code,
            "denied"
        );
        assert!(o.release(&a2, &n("KEEP<20>")).unwrap());
    }

    #[test]
    fn caps_are_counted() {
        let mut o = Owners::default();
        let a = unix(1, 1);
        for i in 0..MAX_NAMES_PER_CLIENT {
            o.claim(&a, &n(&format!("N{i}<00>")), false, false).unwrap();
        }
        assert_eq!(
            o.claim(&a, &n("ONEMORE<00>"), false, false)
                .unwrap_err()
                .code,
            "busy"
        );
        assert_eq!(o.stats().refused_cap, 1);
        assert_eq!(o.stats().held, MAX_NAMES_PER_CLIENT);
        assert_eq!(o.disconnect(1).len(), MAX_NAMES_PER_CLIENT);
    }
}
