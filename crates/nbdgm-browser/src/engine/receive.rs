//! Receiving frames on `\MAILSLOT\BROWSE` and `\MAILSLOT\LANMAN` (MS-BRWS §3.2.5, §3.3.5):
//! announcements into the browse list, AnnouncementRequest, ResetStateRequest.

use super::{dest_is, valid_name, Browser, BrowserEvent, Inbound, Refusal, Role};
use crate::list::{Heard, Upsert};
use crate::schedule::{self, millis};
use nbdgm_wire::browser as wire;
use nbdgm_wire::browser::{
    Announcement, BrowserFrame, DomainAnnouncement, LanmanFrame, ServerType, MAX_COMMENT_LEN,
    MAX_NAME_LEN,
};
use nbdgm_wire::Name;
use std::time::Instant;

/// The ResetStateRequest type Samba sends on a master conflict (`send_browser_reset(0x2,
/// "__SAMBA__", 0x20, ip)`): the bit MS-BRWS §2.2.9 names RESET_STATE_CLEAR_ALL, which
/// Samba's comment calls "stop being a local master browser" (its own handler,
/// `process_reset_browser`, discards its browse lists for it).
pub const SAMBA_RESET_TYPE: u8 = wire::RESET_STATE_CLEAR_ALL;

impl Browser {
    pub(super) fn handle_browse(&mut self, now: Instant, ib: &Inbound<'_>) {
        let f = match BrowserFrame::parse(ib.data) {
            Ok(f) => f,
            Err(_) => return self.refuse(Refusal::Malformed, ib.from),
        };
        if f.check_sender_limits().is_err() {
            if !long_master_name(&f) {
                return self.refuse(Refusal::Malformed, ib.from);
            }
            self.stats.long_master_names_accepted += 1;
        }
        self.count_unterminated_name(&f);
        match &f {
            BrowserFrame::HostAnnouncement(a) => {
                self.on_announcement(now, ib, heard(a, ib, false), false)
            }
            BrowserFrame::LocalMasterAnnouncement(a) => {
                self.on_announcement(now, ib, heard(a, ib, false), true)
            }
            BrowserFrame::AnnouncementRequest(_) => self.on_announcement_request(now, ib),
            BrowserFrame::RequestElection(e) => self.on_request_election(now, ib, e),
            BrowserFrame::GetBackupListRequest(r) => {
                self.on_backup_list_request(now, ib, r.count, r.token)
            }
            BrowserFrame::BecomeBackup(b) => self.on_become_backup(now, ib, b),
            BrowserFrame::DomainAnnouncement(d) => {
                if ib.destination.raw() != Name::msbrowse().raw() {
                    self.stats.frames_ignored += 1;
                    return;
                }
                self.on_domain(now, ib, heard_domain(d, ib, false));
            }
            BrowserFrame::MasterAnnouncement(m) => self.on_master_announcement(now, ib, m),
            BrowserFrame::ResetStateRequest(r) => self.on_reset(now, ib, r.reset_type),
            BrowserFrame::GetBackupListResponse(_) => self.stats.frames_ignored += 1,
            BrowserFrame::Unknown(_) => self.stats.unknown_opcodes += 1,
        }
    }

    pub(super) fn handle_lanman(&mut self, now: Instant, ib: &Inbound<'_>) {
        let f = match LanmanFrame::parse(ib.data) {
            Ok(f) => f,
            Err(_) => return self.refuse(Refusal::Malformed, ib.from),
        };
        let from_self = ib.source.raw() == self.me.raw();
        match f {
            LanmanFrame::Announcement(a) => {
                if !valid_name(&a.server_name) || a.comment.chars().count() > MAX_COMMENT_LEN {
                    return self.refuse(Refusal::Malformed, ib.from);
                }
                self.stats.lanman_announcements_received += 1;
                if !from_self && !a.server_name.eq_ignore_ascii_case(&self.cfg.name) {
                    self.heard_lanman_now(now);
                }
                let mut h = Heard {
                    name: a.server_name,
                    group: String::new(),
                    server_type: a.server_type,
                    os_major: a.os_major,
                    os_minor: a.os_minor,
                    periodicity_ms: u32::from(a.periodicity_s).saturating_mul(1000),
                    comment: a.comment,
                    address: *ib.from.ip(),
                    lanman: true,
                    synced_from: None,
                    remote: false,
                };
                if a.opcode == wire::opcode::DOMAIN_ANNOUNCEMENT {
                    // LM layout 0x0C: workgroup name, then its master's name.
                    h.group = std::mem::take(&mut h.comment);
                    self.on_domain(now, ib, h);
                } else {
                    let lma = a.opcode == wire::opcode::LOCAL_MASTER_ANNOUNCEMENT;
                    self.on_announcement(now, ib, h, lma);
                }
            }
            LanmanFrame::Browser(f) => {
                if f.check_sender_limits().is_err() {
                    if !long_master_name(&f) {
                        return self.refuse(Refusal::Malformed, ib.from);
                    }
                    self.stats.long_master_names_accepted += 1;
                }
                self.count_unterminated_name(&f);
                self.stats.lanman_announcements_received += 1;
                match &f {
                    BrowserFrame::HostAnnouncement(a)
                    | BrowserFrame::LocalMasterAnnouncement(a) => {
                        if !from_self && !a.server_name.eq_ignore_ascii_case(&self.cfg.name) {
                            self.heard_lanman_now(now);
                        }
                        let lma = matches!(f, BrowserFrame::LocalMasterAnnouncement(_));
                        self.on_announcement(now, ib, heard(a, ib, true), lma);
                    }
                    BrowserFrame::DomainAnnouncement(d) => {
                        self.on_domain(now, ib, heard_domain(d, ib, true));
                    }
                    _ => self.stats.unknown_opcodes += 1,
                }
            }
            LanmanFrame::Unknown(_) => self.stats.unknown_opcodes += 1,
        }
    }

    /// The peer leniency of docs/peers.md: a 16-byte name field without its NUL is kept
    /// (cut to 15 characters by [`heard`] / [`heard_domain`]) and counted.
    fn count_unterminated_name(&mut self, f: &BrowserFrame) {
        let unterminated = match f {
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a) => {
                a.server_name_unterminated
            }
            BrowserFrame::DomainAnnouncement(d) => d.machine_group_unterminated,
            _ => false,
        };
        if unterminated {
            self.stats.unterminated_names_accepted += 1;
        }
    }

    pub(super) fn heard_lanman_now(&mut self, now: Instant) {
        if !self.heard_lanman {
            self.heard_lanman = true;
            self.refresh_lm(now);
        }
    }

    /// A server announcement (HostAnnouncement, LMA, LANMAN); `h.group` is filled in
    /// from the destination here.
    pub(super) fn on_announcement(
        &mut self,
        now: Instant,
        ib: &Inbound<'_>,
        mut h: Heard,
        lma: bool,
    ) {
        if !matches!(ib.destination.suffix(), 0x00 | 0x1D | 0x1E) {
            self.stats.frames_ignored += 1;
            return;
        }
        if !valid_name(&h.name) {
            return self.refuse(Refusal::Malformed, ib.from);
        }
        if ib.source.raw() == self.me.raw() || h.name.eq_ignore_ascii_case(&self.cfg.name) {
            return;
        }
        h.group = ib.destination.name().to_ascii_uppercase();
        let ours = h.group.eq_ignore_ascii_case(&self.cfg.workgroup);
        if h.server_type == 0 {
            self.table.remove_server(&h.group, &h.name);
            if ours
                && self
                    .master
                    .as_ref()
                    .is_some_and(|m| m.0.eq_ignore_ascii_case(&h.name))
            {
                self.master = None;
            }
            return;
        }
        let name = h.name.clone();
        let periodicity = h.periodicity_ms;
        let is_backup = h.server_type & ServerType::BACKUP_BROWSER != 0;
        if self.table.upsert_server(now, h, self.cfg.max_servers) == Upsert::Full {
            self.refuse(Refusal::ServerListFull, ib.from);
        }
        if ours && is_backup && self.promoted.remove(&name.to_ascii_uppercase()).is_some() {
            let wg = self.cfg.workgroup.clone();
            self.table.confirm_backup(&wg, &name);
        }
        if ours && lma {
            self.on_master_seen(now, ib, name, periodicity);
        }
    }

    pub(super) fn on_master_seen(
        &mut self,
        now: Instant,
        ib: &Inbound<'_>,
        name: String,
        periodicity: u32,
    ) {
        let addr = *ib.from.ip();
        let changed = !self
            .master
            .as_ref()
            .is_some_and(|m| m.0.eq_ignore_ascii_case(&name) && m.1 == addr);
        if changed {
            self.event(BrowserEvent::MasterSeen {
                name: name.clone(),
                from: ib.from,
            });
        }
        if self.role == Role::Master {
            // Two masters (Samba's process_local_master_announce; MS-BRWS §3.3.5.8): tell
            // the other one to stop (ResetStateRequest 0x02 to the name only Samba
            // listens on, as a reply through the gate), give up, and hold an election.
            self.stats.master_conflicts += 1;
            let f = BrowserFrame::ResetStateRequest(wire::ResetStateRequest {
                reset_type: SAMBA_RESET_TYPE,
                trailing: Vec::new(),
            });
            if let Ok(to) = Name::new("__SAMBA__", 0x20) {
                self.reply_browse(ib, to, &f);
                self.stats.reset_states_sent += 1;
            }
            self.drop_roles(now, self.demoted_role());
            self.start_election(now);
        }
        self.master = Some((name, addr, now + crate::list::expiry_after(periodicity)));
    }

    pub(super) fn on_domain(&mut self, now: Instant, ib: &Inbound<'_>, h: Heard) {
        if !valid_name(&h.name) {
            return self.refuse(Refusal::Malformed, ib.from);
        }
        if ib.source.raw() == self.me.raw()
            || (h.name.eq_ignore_ascii_case(&self.cfg.workgroup)
                && h.group.eq_ignore_ascii_case(&self.cfg.name))
        {
            return;
        }
        if h.server_type == 0 {
            self.table.remove_group(&h.name);
            return;
        }
        if self.table.upsert_group(now, h, self.cfg.max_workgroups) == Upsert::Full {
            self.refuse(Refusal::WorkgroupListFull, ib.from);
        }
    }

    pub(super) fn on_announcement_request(&mut self, now: Instant, ib: &Inbound<'_>) {
        let d = ib.destination;
        let for_us =
            d.name().eq_ignore_ascii_case(&self.cfg.workgroup) || dest_is(d, &self.cfg.name, 0x00);
        if !for_us || ib.source.raw() == self.me.raw() {
            self.stats.frames_ignored += 1;
            return;
        }
        self.stats.announcement_requests_received += 1;
        if !self.announcing() && self.role != Role::Master {
            return;
        }
        if self.reply_at.is_none() {
            let d = self
                .rng
                .millis_between(0, millis(schedule::ANNOUNCE_REPLY_MAX).into());
            self.reply_at = Some(now + d);
        }
    }

    pub(super) fn on_reset(&mut self, now: Instant, ib: &Inbound<'_>, flags: u8) {
        let d = ib.destination.name();
        if !(d.eq_ignore_ascii_case(&self.cfg.name) || d.eq_ignore_ascii_case(&self.cfg.workgroup))
        {
            self.stats.frames_ignored += 1;
            return;
        }
        if !self.cfg.allow_reset {
            return self.refuse(Refusal::ResetState, ib.from);
        }
        if flags & wire::RESET_STATE_STOP_MASTER != 0 && self.role == Role::Master {
            self.drop_roles(now, Role::Potential);
        }
        if flags & wire::RESET_STATE_CLEAR_ALL != 0 {
            self.table.clear();
            self.master = None;
            self.promoted.clear();
            if self.role != Role::None {
                self.drop_roles(now, Role::Potential);
            }
        }
        if flags & wire::RESET_STATE_STOP != 0 {
            self.drop_roles(now, Role::None);
            if self.holds_1e {
                let n = self.wg_name(0x1E);
                self.release(n);
                self.holds_1e = false;
            }
            self.stopped = true;
            self.changed(now);
        }
        self.stats.reset_state_obeyed += 1;
        self.event(BrowserEvent::ResetState {
            flags,
            from: ib.from,
        });
    }
}

/// A DomainAnnouncement whose only fault is a LocalMasterBrowserName longer than 15
/// characters: Samba 4.17 writes its whole `netbios name` there (docs/peers.md). Kept, the
/// name cut to the 15 characters it registers.
fn long_master_name(f: &BrowserFrame) -> bool {
    let BrowserFrame::DomainAnnouncement(d) = f else {
        return false;
    };
    if d.local_master_name.chars().count() <= MAX_NAME_LEN {
        return false;
    }
    let mut cut = d.clone();
    cut.local_master_name = cut.local_master_name.chars().take(MAX_NAME_LEN).collect();
    BrowserFrame::DomainAnnouncement(cut)
        .check_sender_limits()
        .is_ok()
}

/// A name from a 16-byte field: whole, or its first 15 characters when it filled the field
/// without a NUL (the NetBIOS name a host with a longer name registers).
fn fixed_field_name(name: &str, unterminated: bool) -> String {
    if unterminated {
        name.chars().take(MAX_NAME_LEN).collect()
    } else {
        name.to_owned()
    }
}

fn heard(a: &Announcement, ib: &Inbound<'_>, lanman: bool) -> Heard {
    Heard {
        name: fixed_field_name(&a.server_name, a.server_name_unterminated),
        group: String::new(),
        server_type: a.server_type,
        os_major: a.os_major,
        os_minor: a.os_minor,
        periodicity_ms: a.periodicity_ms,
        comment: a.comment.clone(),
        address: *ib.from.ip(),
        lanman,
        synced_from: None,
        remote: false,
    }
}

/// A DomainAnnouncement as heard: the workgroup under its master's name, no comment.
fn heard_domain(d: &DomainAnnouncement, ib: &Inbound<'_>, lanman: bool) -> Heard {
    Heard {
        name: fixed_field_name(&d.machine_group, d.machine_group_unterminated),
        group: d.local_master_name.chars().take(MAX_NAME_LEN).collect(),
        server_type: d.server_type,
        os_major: d.browser_config_version_major,
        os_minor: d.browser_config_version_minor,
        periodicity_ms: d.periodicity_ms,
        comment: String::new(),
        address: *ib.from.ip(),
        lanman,
        synced_from: None,
        remote: false,
    }
}
