//! Sending: HostAnnouncement, LocalMasterAnnouncement, DomainAnnouncement and LAN Manager
//! announcements on their timers (MS-BRWS §3.2.6, §3.3.6, DIGEST §6.5), and replies.

use super::{Action, Browser, Inbound, ReplyTo, Role, Target};
use crate::schedule::{self, millis};
use nbdgm_wire::browser::{
    Announcement, BrowserFrame, DomainAnnouncement, LanmanAnnouncement, LanmanFrame, ServerType,
};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE, LANMAN};
use nbdgm_wire::Name;
use std::net::SocketAddrV4;
use std::time::Instant;

impl Browser {
    pub(super) fn send(&mut self, slot: &str, destination: Name, target: Target, payload: Vec<u8>) {
        self.send_marked(slot, destination, target, payload, None)
    }

    pub(super) fn send_marked(
        &mut self,
        slot: &str,
        destination: Name,
        target: Target,
        payload: Vec<u8>,
        reply_to: Option<ReplyTo>,
    ) {
        if let Ok(data) = MailslotWrite::new(slot, payload).to_bytes() {
            self.actions.push_back(Action::Send {
                source: self.me.clone(),
                destination,
                target,
                data,
                reply_to,
            });
        }
    }

    /// Answer the frame `ib` by unicast to its UDP source, marked as a reply.
    pub(super) fn reply_browse(&mut self, ib: &Inbound<'_>, destination: Name, f: &BrowserFrame) {
        if let Ok(b) = f.to_bytes() {
            let reply_to = Some(ReplyTo {
                to: ib.from,
                request_len: ib.request_len,
            });
            self.send_marked(BROWSE, destination, Target::Unique(ib.from), b, reply_to);
        }
    }

    pub(super) fn send_browse(&mut self, destination: Name, target: Target, f: &BrowserFrame) {
        if let Ok(b) = f.to_bytes() {
            self.send(BROWSE, destination, target, b);
        }
    }

    pub(super) fn announcement(&self, periodicity_ms: u32, server_type: u32) -> Announcement {
        Announcement {
            periodicity_ms,
            server_name: self.cfg.name.clone(),
            os_major: self.cfg.os_version.0,
            os_minor: self.cfg.os_version.1,
            server_type,
            comment: self.cfg.comment.clone(),
            ..Announcement::default()
        }
    }

    /// HostAnnouncement to `<WG><1D>` (broadcast) and to every remote target.
    pub(super) fn send_host(&mut self, periodicity_ms: u32, server_type: u32) {
        let f = BrowserFrame::HostAnnouncement(self.announcement(periodicity_ms, server_type));
        if self.role != Role::Master || server_type == 0 {
            self.send_browse(self.wg_name(0x1D), Target::Broadcast, &f);
            self.stats.host_announcements_sent += 1;
        }
        self.send_remote(&f);
    }

    pub(super) fn send_remote(&mut self, f: &BrowserFrame) {
        for i in 0..self.cfg.remote_announce.len() {
            let r = &self.cfg.remote_announce[i];
            let wg = r
                .workgroup
                .clone()
                .unwrap_or_else(|| self.cfg.workgroup.clone());
            let to = SocketAddrV4::new(r.address, self.cfg.datagram_port);
            if let Ok(n) = Name::new(&wg, 0x1D) {
                self.send_browse(n, Target::GroupAt(to), f);
                self.stats.remote_announcements_sent += 1;
            }
        }
    }

    pub(super) fn host_timer(&mut self, now: Instant) {
        let i = schedule::host_interval(self.host.count, self.cfg.max_announce_interval);
        self.send_host(millis(i), self.our_type());
        self.host.fired(now, i);
    }

    pub(super) fn send_lma(&mut self, periodicity_ms: u32) {
        let f = BrowserFrame::LocalMasterAnnouncement(
            self.announcement(periodicity_ms, self.our_type()),
        );
        self.send_browse(self.wg_name(0x1E), Target::Broadcast, &f);
        self.stats.local_master_announcements_sent += 1;
    }

    pub(super) fn send_domain(&mut self, periodicity_ms: u32) {
        let f = BrowserFrame::DomainAnnouncement(DomainAnnouncement {
            periodicity_ms,
            machine_group: self.cfg.workgroup.clone(),
            server_type: ServerType::DOMAIN_ENUM | ServerType::NT,
            local_master_name: self.cfg.name.clone(),
            ..DomainAnnouncement::default()
        });
        self.send_browse(Name::msbrowse(), Target::Broadcast, &f);
        self.stats.domain_announcements_sent += 1;
    }

    pub(super) fn lma_timer(&mut self, now: Instant) {
        let i = schedule::lma_interval(self.lma.count);
        self.send_lma(millis(i));
        self.lma.fired(now, i);
    }

    pub(super) fn domain_timer(&mut self, now: Instant) {
        let i = schedule::domain_interval(self.dom.count);
        self.send_domain(millis(i));
        self.dom.fired(now, i);
    }

    /// LAN Manager announcement to `<WG><00>` on `\MAILSLOT\LANMAN`.
    pub(super) fn send_lanman(&mut self, server_type: u32) {
        let secs = u16::try_from(self.cfg.lm_interval.as_secs()).unwrap_or(u16::MAX);
        let f = LanmanFrame::Announcement(LanmanAnnouncement {
            server_type,
            os_major: self.cfg.os_version.0,
            os_minor: self.cfg.os_version.1,
            periodicity_s: secs,
            server_name: self.cfg.name.clone(),
            comment: self.cfg.comment.clone(),
            ..LanmanAnnouncement::default()
        });
        if let Ok(b) = f.to_bytes() {
            self.send(LANMAN, self.wg_name(0x00), Target::Broadcast, b);
            self.stats.lanman_announcements_sent += 1;
        }
    }
}
