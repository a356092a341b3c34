//! The local name table (RFC 1001 §15.1.1, §15.2; RFC 1002 §5.1.1): our unique and
//! group names with their state, and the retransmission job of a registration or
//! release in progress.

use crate::event::ser_name;
use nbdgm_wire::Name;
use serde::Serialize;
use std::time::Instant;

/// State of one of our names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameState {
    /// Registration broadcasts still going out.
    Registering,
    /// Registered: answered, defended, datagrams delivered.
    Active,
    /// Refused or challenged: logically gone (RFC 1001 §15.1.3.5); only release is allowed.
    Conflict,
    /// Release broadcasts going out.
    Releasing,
}

/// A row of [`crate::Node::names`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameEntry {
    /// Serialized as `NAME<xx>` (with `.scope` when there is one).
    #[serde(serialize_with = "ser_name")]
    pub name: Name,
    pub group: bool,
    pub state: NameState,
}

/// A broadcast that is repeated (registration or release).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub trn: u16,
    pub packet: Vec<u8>,
    pub sends_left: u32,
    pub deadline: Instant,
}

/// What a unicast exchange with the NBNS is for (RFC 1002 §5.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NsOp {
    Register,
    Refresh,
    Release,
    /// NAME OVERWRITE ("UPDATE") REQUEST after winning an end-node challenge.
    Overwrite,
}

/// A unicast request to the NBNS, retried UCAST_REQ_RETRY_COUNT times per server,
/// then sent to the next server.
#[derive(Debug, Clone)]
pub(crate) struct NsJob {
    pub op: NsOp,
    pub trn: u16,
    /// Index into `NodeConfig::nbns`.
    pub server: usize,
    pub packet: Vec<u8>,
    pub sends_left: u32,
    pub deadline: Instant,
    /// WACKs cannot push the deadline past this.
    pub limit: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct NameRecord {
    pub name: Name,
    pub group: bool,
    pub state: NameState,
    pub job: Option<Job>,
    /// Exchange with the NBNS in progress (P/M/H).
    pub ns: Option<NsJob>,
    /// When the next NAME REFRESH REQUEST is due (P/M/H).
    pub refresh_at: Option<Instant>,
}

/// Our names, in registration order (node status lists them in that order).
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    records: Vec<NameRecord>,
}

impl NameTable {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn get(&self, name: &Name) -> Option<&NameRecord> {
        self.records.iter().find(|r| &r.name == name)
    }

    pub fn get_mut(&mut self, name: &Name) -> Option<&mut NameRecord> {
        self.records.iter_mut().find(|r| &r.name == name)
    }

    /// The record of an active (registered, not in conflict) name.
    pub fn active(&self, name: &Name) -> Option<&NameRecord> {
        self.get(name).filter(|r| r.state == NameState::Active)
    }

    pub fn insert(&mut self, rec: NameRecord) {
        self.records.retain(|r| r.name != rec.name);
        self.records.push(rec);
    }

    pub fn remove(&mut self, name: &Name) -> Option<NameRecord> {
        let i = self.records.iter().position(|r| &r.name == name)?;
        Some(self.records.remove(i))
    }

    /// The record whose registration used TRN id `trn`.
    pub fn by_registration_trn(&mut self, trn: u16) -> Option<&mut NameRecord> {
        self.records.iter_mut().find(|r| {
            r.state == NameState::Registering && r.job.as_ref().is_some_and(|j| j.trn == trn)
        })
    }

    pub fn trn_in_use(&self, trn: u16) -> bool {
        self.records.iter().any(|r| {
            r.job.as_ref().is_some_and(|j| j.trn == trn)
                || r.ns.as_ref().is_some_and(|j| j.trn == trn)
        })
    }

    /// The record whose NBNS exchange used TRN id `trn`.
    pub fn by_ns_trn(&mut self, trn: u16) -> Option<&mut NameRecord> {
        self.records
            .iter_mut()
            .find(|r| r.ns.as_ref().is_some_and(|j| j.trn == trn))
    }

    pub fn iter(&self) -> impl Iterator<Item = &NameRecord> {
        self.records.iter()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.records
            .iter()
            .flat_map(|r| {
                [
                    r.job.as_ref().map(|j| j.deadline),
                    r.ns.as_ref().map(|j| j.deadline),
                    r.refresh_at,
                ]
            })
            .flatten()
            .min()
    }

    pub fn entries(&self) -> Vec<NameEntry> {
        self.records
            .iter()
            .map(|r| NameEntry {
                name: r.name.clone(),
                group: r.group,
                state: r.state,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: &str, state: NameState) -> NameRecord {
        NameRecord {
            name: n.parse().unwrap(),
            group: false,
            state,
            job: None,
            ns: None,
            refresh_at: None,
        }
    }

    #[test]
    fn table_basics() {
        let mut t = NameTable::default();
        t.insert(rec("A<00>", NameState::Active));
        t.insert(rec("B<20>", NameState::Conflict));
        assert!(t.active(&"A<00>".parse().unwrap()).is_some());
        assert!(t.active(&"B<20>".parse().unwrap()).is_none());
        assert!(t.get(&"B<20>".parse().unwrap()).is_some());
        t.insert(rec("B<20>", NameState::Active));
        assert_eq!(t.len(), 2);
        let json = serde_json::to_string(&t.entries()).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"A<00>","group":false,"state":"active"},{"name":"B<20>","group":false,"state":"active"}]"#
        );
        assert!(t.remove(&"A<00>".parse().unwrap()).is_some());
        assert_eq!(t.len(), 1);
    }
}
