//! Finding the domain master browser for the browser (MS-BRWS §3.3.6; Samba
//! `nmbd_browsesync.c` `find_domain_master_name_query_success`): resolve `<WG><1B>`
//! (the node asks its NBNS for P/M/H nodes, broadcasts for a B-node), ask the address
//! that answers for its node status with the question name `<WG><1B>` (Windows refuses
//! `*`), and take the first unique `<20>` name.

use super::{Aside, DmbFailure, DmbSearch, Engines};
use nbdgm_node::{LookupError, LookupTarget, Name, NameAddress, NodeStatusReply, RequestId};
use std::net::Ipv4Addr;
use std::time::Instant;

/// The server service suffix (`<20>`).
const SERVER: u8 = 0x20;
/// The domain master browser name suffix (`<WG><1B>`).
const DOMAIN_MASTER: u8 = 0x1B;

impl Engines {
    /// Start the search: the lookup of `<workgroup><1B>`.
    pub(super) fn find_domain_master(
        &mut self,
        now: Instant,
        workgroup: &str,
    ) -> Result<(), DmbFailure> {
        self.dmb = None;
        let name =
            Name::new(workgroup, DOMAIN_MASTER).map_err(|e| DmbFailure::BadName(e.to_string()))?;
        let name = self.scoped(name);
        let id = self
            .node
            .lookup(now, name.clone(), LookupTarget::Broadcast)
            .map_err(DmbFailure::Lookup)?;
        self.dmb = Some(DmbSearch::Lookup { id, name });
        // A query may be queued (or the cache answered at once): another round.
        self.fed = true;
        Ok(())
    }

    /// The browser learns the failure; the driver gets it for its log.
    pub(super) fn dmb_failed(&mut self, now: Instant, f: DmbFailure) -> Aside {
        self.dmb = None;
        if let Some(b) = &mut self.browser {
            b.domain_master_failed(now);
        }
        self.fed = true;
        Aside::DomainMaster(Err(f))
    }

    /// The address of `<WG><1B>`: ask it for its node status.
    pub(super) fn dmb_lookup_done(
        &mut self,
        now: Instant,
        id: RequestId,
        result: &Result<Vec<NameAddress>, LookupError>,
    ) -> Option<Aside> {
        let name = match &self.dmb {
            Some(DmbSearch::Lookup { id: i, name }) if *i == id => name.clone(),
            _ => return None,
        };
        let addr = match result {
            Ok(a) => a.first().map(|a| a.addr).unwrap_or(Ipv4Addr::UNSPECIFIED),
            Err(e) => return Some(self.dmb_failed(now, DmbFailure::NotFound(*e))),
        };
        let cfg = self.node.config();
        if addr.is_unspecified() || addr == cfg.interface.addr || cfg.announce_address == Some(addr)
        {
            return Some(self.dmb_failed(now, DmbFailure::Ours(addr)));
        }
        match self.node.node_status(now, addr, Some(name)) {
            Ok(id) => {
                self.dmb = Some(DmbSearch::Status { id, addr });
                self.fed = true;
                None
            }
            Err(e) => Some(self.dmb_failed(now, DmbFailure::Status(e))),
        }
    }

    /// The node status of the domain master browser: its first unique `<20>` name.
    pub(super) fn dmb_status_done(
        &mut self,
        now: Instant,
        id: RequestId,
        result: &Result<NodeStatusReply, LookupError>,
    ) -> Option<Aside> {
        // The address we asked (the event carries the same).
        let addr = match &self.dmb {
            Some(DmbSearch::Status { id: i, addr: a }) if *i == id => *a,
            _ => return None,
        };
        let reply = match result {
            Ok(r) => r,
            Err(e) => return Some(self.dmb_failed(now, DmbFailure::NoStatus(*e))),
        };
        let Some(name) = server_name(reply) else {
            return Some(self.dmb_failed(now, DmbFailure::NoServerName));
        };
        self.dmb = None;
        if let Some(b) = &mut self.browser {
            b.domain_master_found(now, &name, addr);
        }
        self.fed = true;
        Some(Aside::DomainMaster(Ok((name, addr))))
    }
}

/// The first unique `<20>` name of a node status, trailing spaces trimmed.
fn server_name(reply: &NodeStatusReply) -> Option<String> {
    reply
        .names
        .iter()
        .find(|n| n.name.suffix() == SERVER && !n.group)
        .map(|n| n.name.name())
        .filter(|n| !n.is_empty())
}
