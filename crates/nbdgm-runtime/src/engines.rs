//! The node and the browser of one interface, paired (MS-BRWS §3.2 over RFC 1002
//! §5.3): datagrams delivered on `\MAILSLOT\BROWSE` or `\MAILSLOT\LANMAN` go to the
//! browser, which gets the slice the node parsed (no second parse of the SMB header);
//! the browser's wishes (send, register, release) go to the node; the node's name
//! events tell the browser which of its names it holds.
//!
//! Both drivers use this pairing: the daemon's worker and [`crate::Standalone`].

use nbdgm_browser::{Action, Browser, BrowserEvent, Inbound, Target};
use nbdgm_node::{
    Delivery, Event, LookupError, Name, Node, NodeError, RequestId, SendMode, SendRequest,
};
use std::net::Ipv4Addr;
use std::time::Instant;

/// Rounds of browser ⇄ node exchange per flush (each round handles what the last
/// produced).
pub const BROWSER_ROUNDS: usize = 8;

/// What the pairing does not do itself; the driver decides (log, fetch, count).
#[derive(Debug)]
pub enum Aside {
    /// Something the browser reports (role changes, elections, refusals).
    Browser(BrowserEvent),
    /// A backup browser wants the master's list (MS-BRWS §3.3.6): RAP over SMB, which
    /// the driver runs off the engine thread; the answer goes to
    /// [`Browser::master_list`] or [`Browser::master_list_failed`].
    FetchMasterList {
        master: String,
        address: Ipv4Addr,
        workgroup: String,
    },
    /// A list sync with another browser (RAP over SMB, or HTTP to an nbdgm peer), run
    /// off the engine thread; the answer goes to [`Browser::list_synced`] or
    /// [`Browser::list_sync_failed`].
    SyncList {
        kind: nbdgm_browser::SyncKind,
        peer: String,
        address: Ipv4Addr,
        workgroup: String,
    },
    /// The browser looks for its domain master browser; for the log only (the pairing
    /// resolves it with the node: [`Engines::observe`]).
    FindDomainMaster { workgroup: String },
    /// How that search ended (for the log): the domain master browser's name and
    /// address, or why not.
    DomainMaster(Result<(String, Ipv4Addr), DmbFailure>),
    /// A browser frame the node refused to send (e.g. our name not registered yet).
    SendFailed(NodeError),
    /// The browser asked for a name the node could not register.
    RegisterFailed(Name, NodeError),
    /// The browser released a name the node could not release.
    ReleaseFailed(Name, NodeError),
}

/// Why the domain master browser was not found (MS-BRWS §3.3.6; Samba
/// `nmbd_browsesync.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmbFailure {
    /// The workgroup makes no NetBIOS name.
    BadName(String),
    /// `<WG><1B>` could not be asked for (the node refused).
    Lookup(NodeError),
    /// Nobody answered for `<WG><1B>`.
    NotFound(LookupError),
    /// `<WG><1B>` is ours (or answered with no usable address): we are the domain
    /// master browser.
    Ours(Ipv4Addr),
    /// The node status could not be asked for.
    Status(NodeError),
    /// The node status got no answer.
    NoStatus(LookupError),
    /// The node status held no unique `<20>` name.
    NoServerName,
}

/// The domain master search in progress: `<WG><1B>` resolved, then asked for its node
/// status. One at a time (a new search replaces the old one, whose answers are then
/// ignored).
#[derive(Debug, Clone)]
enum DmbSearch {
    Lookup { id: RequestId, name: Name },
    Status { id: RequestId, addr: Ipv4Addr },
}

/// One interface's engines.
pub struct Engines {
    pub node: Node,
    /// `None`: no browser on this interface.
    pub browser: Option<Browser>,
    /// A browser frame arrived since [`Engines::take_fed`]: the browser may have more
    /// to say (or the domain master search sent a query: the node has packets to send).
    fed: bool,
    dmb: Option<DmbSearch>,
    /// The last clean HostAnnouncement of each source (`engines/repeats.rs`).
    repeats: repeats::Repeats,
}

impl Engines {
    pub fn new(node: Node, browser: Option<Browser>) -> Engines {
        Engines {
            node,
            browser,
            fed: false,
            dmb: None,
            repeats: repeats::Repeats::default(),
        }
    }

    /// The earliest timer of the node and the browser.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let b = self.browser.as_ref().and_then(|b| b.poll_timeout());
        match (self.node.poll_timeout(), b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
        if let Some(b) = &mut self.browser {
            b.handle_timeout(now);
        }
    }

    /// Counters of the HostAnnouncement repeat cache ([`repeats`]).
    pub fn repeat_stats(&self) -> repeats::RepeatStats {
        self.repeats.stats()
    }

    /// True once since a browser frame was fed (the flush loop goes another round).
    pub fn take_fed(&mut self) -> bool {
        std::mem::take(&mut self.fed)
    }

    /// The pairing's share of a node event, before the driver sees it: delivered
    /// browser frames go to the browser, name outcomes tell it which names it holds.
    /// The node's local copies of our own group and broadcast sends
    /// ([`nbdgm_node::Delivery::local_copy`], e.g. the browser's own announcements and
    /// election frames to `WORKGROUP<1E>`) are not fed back: the browser knows what it
    /// sent, and the copy that loops back from the network was never fed either.
    ///
    /// The answers to the domain master search ([`Action::FindDomainMaster`]) are
    /// handled here too; the driver sees them as well, under request ids no caller of
    /// its own holds. Returns what the driver may log of them.
    pub fn observe(&mut self, now: Instant, ev: &Event) -> Option<Aside> {
        match ev {
            Event::LookupDone { id, result, .. } => return self.dmb_lookup_done(now, *id, result),
            Event::StatusDone { id, result, .. } => return self.dmb_status_done(now, *id, result),
            _ => {}
        }
        let Some(b) = &mut self.browser else {
            return None;
        };
        match ev {
            Event::Delivered(d) if d.local_copy.is_some() => {}
            Event::Delivered(d) => self.fed |= feed(b, &mut self.repeats, now, d),
            Event::NameRegistered { name, .. } => b.name_registered(now, name),
            Event::NameConflict { name, .. } => b.name_failed(now, name),
            _ => {}
        }
        None
    }

    /// Carry out the browser's actions on the node; what the pairing cannot do goes to
    /// `aside`.
    pub fn pump_browser(&mut self, now: Instant, mut aside: impl FnMut(Aside)) {
        let Some(b) = &mut self.browser else { return };
        let mut actions = Vec::new();
        while let Some(a) = b.poll_action() {
            actions.push(a);
        }
        for a in actions {
            match a {
                Action::Send {
                    source,
                    destination,
                    target,
                    data,
                    reply_to,
                } => {
                    let mode = match target {
                        Target::Broadcast => SendMode::Group,
                        Target::Unique(to) => SendMode::UniqueAt(to),
                        Target::GroupAt(to) => SendMode::GroupAt(to),
                    };
                    let request = SendRequest {
                        source: self.scoped(source),
                        destination: self.scoped(destination),
                        mode,
                        data,
                    };
                    let sent = match reply_to {
                        Some(r) => self.node.send_reply(now, request, r.request_len),
                        None => self.node.send(now, request),
                    };
                    if let Err(e) = sent {
                        aside(Aside::SendFailed(e));
                    }
                }
                Action::Register { name, group } => {
                    let name = self.scoped(name);
                    if let Err(e) = self.node.register(now, name.clone(), group) {
                        aside(Aside::RegisterFailed(name, e));
                    }
                }
                Action::Release { name } => {
                    let name = self.scoped(name);
                    if let Err(e) = self.node.release(now, &name) {
                        aside(Aside::ReleaseFailed(name, e));
                    }
                }
                Action::Event(ev) => aside(Aside::Browser(ev)),
                Action::FetchMasterList {
                    master,
                    address,
                    workgroup,
                } => aside(Aside::FetchMasterList {
                    master,
                    address,
                    workgroup,
                }),
                Action::SyncList {
                    kind,
                    peer,
                    address,
                    workgroup,
                } => aside(Aside::SyncList {
                    kind,
                    peer,
                    address,
                    workgroup,
                }),
                Action::FindDomainMaster { workgroup } => {
                    let failed = self.find_domain_master(now, &workgroup).err();
                    aside(Aside::FindDomainMaster { workgroup });
                    if let Some(f) = failed {
                        aside(self.dmb_failed(now, f));
                    }
                }
            }
        }
    }

    /// A browser name in our scope.
    pub fn scoped(&self, name: Name) -> Name {
        let scope = &self.node.config().scope;
        if scope.is_empty() || !name.scope().is_empty() {
            return name;
        }
        name.clone().with_scope(scope).unwrap_or(name)
    }
}

mod dmb;
pub mod repeats;

/// A delivered datagram on BROWSE or LANMAN goes to the browser, as the mailslot data
/// the node already cut out. True when it went.
/// An identical repeat of a source's last clean HostAnnouncement within the window
/// is not fed ([`repeats`]); false then.
fn feed(b: &mut Browser, rep: &mut repeats::Repeats, now: Instant, d: &Delivery) -> bool {
    let Some(slot) = d.mailslot() else {
        return false;
    };
    let browse = slot.eq_ignore_ascii_case(nbdgm_wire::mailslot::BROWSE);
    if !browse && !slot.eq_ignore_ascii_case(nbdgm_wire::mailslot::LANMAN) {
        return false;
    }
    let data = d.mailslot_data().unwrap_or_default();
    let candidate = repeats::candidate(browse, data);
    if candidate && rep.is_repeat(now, d, data) {
        return false;
    }
    if !candidate && !rep.is_empty() {
        rep.clear();
    }
    let before = candidate.then(|| b.stats().clone());
    b.handle(
        now,
        Inbound {
            from: d.from,
            source: &d.source,
            destination: &d.destination,
            mailslot: slot,
            data,
            broadcast: d.broadcast,
            request_len: d.datagram_len(),
        },
    );
    if let Some(mut before) = before {
        before.frames_received += 1;
        rep.record(now, d, data, before == *b.stats());
    }
    true
}

#[cfg(test)]
mod tests;
