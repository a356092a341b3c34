//! Administration of the NBNS table: static names (like nmbd's lmhosts `#PRE` lines and
//! WINS static mappings) and entries added or deleted by the operator through the local
//! API. A static name is defended like an owner that answers its challenge (RFC 1002
//! §5.1.4.1): a registration by another address, or of the other kind, gets ACT_ERR; a
//! registration or refresh by one of its own addresses is answered positively and
//! changes nothing.

use crate::event::RefuseReason;
use crate::packets::RCODE_ACT_ERR;
use crate::server::{NbRequest, NbnsServer};
use crate::table::{Fixed, Member};
use nbdgm_wire::nbns::{NB_GROUP, NB_ONT_MASK};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How far in the future a static address "expires" (never, in practice; an Instant
/// cannot hold more than the platform allows, so it is a finite hundred years).
const STATIC_LIFE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A name to put in the table by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticEntry {
    pub name: Name,
    pub group: bool,
    /// 1..=`max_group_members` addresses (several for a group or a multi-homed host).
    pub addresses: Vec<Ipv4Addr>,
}

/// Why an administrative change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    /// `max_names` reached.
    #[error("the name table is full ({0} names)")]
    Full(usize),
    #[error("no such name")]
    NotFound,
    /// The name comes from the configuration: only the configuration changes it.
    #[error("the name is static in the configuration; change the configuration instead")]
    Configured,
}

/// Check an entry against the configuration's caps and scope.
fn check(server: &NbnsServer, e: &StaticEntry) -> Result<(), AdminError> {
    let bad = |m: &str| Err(AdminError::Invalid(m.to_owned()));
    if e.addresses.is_empty() {
        return bad("at least one address is needed");
    }
    if e.addresses.len() > server.cfg.max_group_members {
        return bad("more addresses than max_group_members");
    }
    if e.addresses
        .iter()
        .any(|ip| ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
    {
        return bad("0.0.0.0, broadcast and multicast addresses cannot hold a name");
    }
    if e.name.raw()[0] == b'*' {
        return bad("names starting with '*' are never registered");
    }
    if !e.name.scope().eq_ignore_ascii_case(&server.cfg.scope) {
        return bad("the name is not in the served scope");
    }
    Ok(())
}

impl NbnsServer {
    /// Put a static name in the table, replacing what it held (registrations never
    /// replace it afterwards). `fixed`: where it comes from.
    pub fn add_static(
        &mut self,
        now: Instant,
        e: &StaticEntry,
        fixed: Fixed,
    ) -> Result<(), AdminError> {
        check(self, e)?;
        if let Some(Fixed::Config) = self.table.get(&e.name).and_then(|r| r.fixed) {
            if fixed != Fixed::Config {
                return Err(AdminError::Configured);
            }
        }
        let exists = self.table.get(&e.name).is_some();
        if !exists && self.table.len() >= self.cfg.max_names {
            self.stats.refused_table_full += 1;
            return Err(AdminError::Full(self.cfg.max_names));
        }
        let expires = now.checked_add(STATIC_LIFE).unwrap_or(now);
        let flags = if e.group { NB_GROUP } else { 0 };
        let mut addrs = e.addresses.clone();
        addrs.dedup();
        let members = addrs
            .iter()
            .map(|&ip| Member {
                ip,
                // H node: a static mapping says nothing of the node type.
                nb_flags: flags | (NB_ONT_MASK & 0x6000),
                ttl: 0,
                since: now,
                expires,
                established: true,
            })
            .collect();
        self.table
            .insert_all(e.name.clone(), e.group, members, Some(fixed));
        self.update_gauges();
        Ok(())
    }

    /// Add an address to a name with a TTL (an operator's dynamic entry: it expires like
    /// a registration unless the host refreshes it). A static name is refused.
    pub fn add_dynamic(
        &mut self,
        now: Instant,
        name: &Name,
        group: bool,
        ip: Ipv4Addr,
        ttl: u32,
    ) -> Result<(), AdminError> {
        let e = StaticEntry {
            name: name.clone(),
            group,
            addresses: vec![ip],
        };
        check(self, &e)?;
        let ttl = self.cfg.grant_ttl(ttl);
        let flags = if group { NB_GROUP } else { 0 } | (NB_ONT_MASK & 0x6000);
        let addr = nbdgm_wire::nbns::NbAddress { flags, ip };
        let m = self.member(now, addr, ttl);
        match self.table.get(name) {
            None => {
                if self.table.len() >= self.cfg.max_names {
                    self.stats.refused_table_full += 1;
                    return Err(AdminError::Full(self.cfg.max_names));
                }
                self.table.insert(name.clone(), group, m);
            }
            Some(r) if r.fixed.is_some() => {
                return Err(AdminError::Invalid("the name is static".into()))
            }
            Some(r) if r.group != group => {
                return Err(AdminError::Invalid(
                    "the name is held as the other kind (unique/group)".into(),
                ))
            }
            Some(r) if !r.has(ip) && r.members.len() >= self.cfg.max_group_members => {
                return Err(AdminError::Invalid(
                    "the name has max_group_members addresses".into(),
                ))
            }
            Some(_) => {
                self.table.update(name, |members| {
                    members.retain(|x| x.ip != ip);
                    members.push(m);
                });
            }
        }
        self.update_gauges();
        Ok(())
    }

    /// Delete a name (`ip` = `None`) or one of its addresses. Returns how many addresses
    /// went. Names from the configuration are refused.
    pub fn delete(&mut self, name: &Name, ip: Option<Ipv4Addr>) -> Result<usize, AdminError> {
        let rec = self.table.get(name).ok_or(AdminError::NotFound)?;
        if rec.fixed == Some(Fixed::Config) {
            return Err(AdminError::Configured);
        }
        let n = match ip {
            None => self.table.remove(name).map_or(0, |r| r.members.len()),
            Some(ip) => {
                if !rec.has(ip) {
                    return Err(AdminError::NotFound);
                }
                self.table.update(name, |members| {
                    members.retain(|m| m.ip != ip);
                });
                1
            }
        };
        self.update_gauges();
        Ok(n)
    }

    /// A registration or refresh of a static name: positive without change for one of
    /// its own addresses asking for the same kind (`same`), else ACT_ERR with the
    /// static holder, as an owner that defends (RFC 1002 §5.1.4.1).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn defend_static(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        id: u16,
        len: usize,
        req: &NbRequest,
        ttl: u32,
        same: bool,
    ) {
        if same {
            return self.grant(from, id, len, req, ttl);
        }
        self.stats.refused_static += 1;
        let holder = self.holder_addr(&req.name, now).unwrap_or(req.addr);
        self.refuse(
            from,
            id,
            len,
            RCODE_ACT_ERR,
            req,
            holder,
            RefuseReason::Static,
        );
    }
}
