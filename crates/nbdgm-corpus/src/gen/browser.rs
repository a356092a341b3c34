//! Browser frames (MS-BRWS §2.2) and LAN Manager announcements.

use super::{Gen, Host};
use crate::Generated;
use nbdgm_wire::browser::{
    Announcement, AnnouncementRequest, BecomeBackup, BrowserFrame, DomainAnnouncement,
    GetBackupListRequest, GetBackupListResponse, LanmanAnnouncement, LanmanFrame,
    MasterAnnouncement, RequestElection, ResetStateRequest, UnknownFrame,
};
use nbdgm_wire::datagram::MsgType;
use nbdgm_wire::mailslot::{self};
use nbdgm_wire::name::Name;

impl Gen {
    // -----------------------------------------------------------------------------------------
    // Browser frames (MS-BRWS §2.2)

    pub(super) fn periodicity_ms(&mut self) -> u32 {
        *self
            .rng
            .pick(&[60_000, 120_000, 240_000, 480_000, 720_000, 900_000, 0, 1])
    }

    pub(super) fn server_type(&mut self) -> u32 {
        match self.rng.below(8) {
            0 => 0x0001_1003,
            1 => 0x0005_1003,
            2 => 0x0004_9A03,
            3 => 0x0084_9A03,
            4 => 0x0040_1003,
            5 if self.mixed() => 0,
            6 if self.mixed() => self.rng.u32(),
            _ => 0x0001_0003,
        }
    }

    pub(super) fn comment(&mut self) -> String {
        match self.rng.below(8) {
            0 | 1 => String::new(),
            2 => "rust nbdgm test host".into(),
            3 => "Samba 4.17.12-Debian".into(),
            4 => "0123456789abcdefghijklmnopqrstuvwxyzABCDEF".into(), // 42, the maximum
            5 => "File & print server, room 2.14".into(),
            // Latin-1 (an OEM code page in practice): a German or Spanish LAN.
            6 if self.mixed() && self.rng.pct(30) => (*self.rng.pick(&[
                "B\u{fc}ro-PC von J\u{fc}rgen",
                "\u{d1}and\u{fa}",
                "caf\u{e9}",
            ]))
            .into(),
            _ => {
                let n = self.rng.below(43);
                self.rng.printable(n)
            }
        }
    }

    pub(super) fn announcement(&mut self, h: &Host) -> Announcement {
        let mut a = Announcement {
            update_count: 0,
            periodicity_ms: self.periodicity_ms(),
            server_name: h.name.into(),
            os_major: 6,
            os_minor: 1,
            server_type: self.server_type(),
            comment: self.comment(),
            ..Announcement::default()
        };
        (a.os_major, a.os_minor) =
            *self
                .rng
                .pick(&[(6, 1), (10, 0), (5, 1), (4, 9), (6, 2), (6, 3)]);
        if self.mixed() {
            if self.rng.pct(10) {
                a.update_count = self.rng.u8();
            }
            if self.rng.pct(5) {
                a.server_name = String::new();
            }
            if self.rng.pct(5) {
                a.os_major = self.rng.u8();
                a.os_minor = self.rng.u8();
            }
            if self.rng.pct(5) {
                a.browser_version_major = self.rng.u8();
                a.browser_version_minor = self.rng.u8();
            }
            if self.rng.pct(3) {
                a.signature = self.rng.u16();
            }
            if self.rng.pct(3) {
                a.periodicity_ms = self.rng.u32();
            }
            if self.rng.pct(4) && a.server_name.len() < 14 {
                // Garbage after the NUL inside the 16-byte ServerName field.
                let room = 15 - a.server_name.len();
                let n = self.rng.range(1, room as u64) as usize;
                let mut pad = self.rng.bytes(n);
                if let Some(last) = pad.last_mut() {
                    *last |= 1;
                }
                a.server_name_padding = pad;
            }
            match self.rng.below(40) {
                0 => a.comment_unterminated = true,
                1 => {
                    let n = 1 + self.rng.below(8);
                    a.trailing = self.rng.bytes(n);
                }
                _ => {}
            }
        }
        a
    }

    pub(super) fn host_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        let f = BrowserFrame::HostAnnouncement(self.announcement(&h));
        let data = self.browse(&f);
        vec![self.group_dgm("browser.host_announcement", &h, 0x1D, data)]
    }

    pub(super) fn local_master_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut a = self.announcement(&h);
        a.server_type |= 0x0004_0000;
        let f = BrowserFrame::LocalMasterAnnouncement(a);
        let data = self.browse(&f);
        vec![self.group_dgm("browser.local_master_announcement", &h, 0x1E, data)]
    }

    pub(super) fn announcement_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let f = BrowserFrame::AnnouncementRequest(AnnouncementRequest {
            reserved: if self.rng.pct(70) { 0 } else { self.rng.u8() },
            response_name: if self.rng.pct(10) {
                String::new()
            } else {
                h.name.into()
            },
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        let suffix = *self.rng.pick(&[0x00, 0x1D, 0x1E]);
        vec![self.group_dgm("browser.announcement_request", &h, suffix, data)]
    }

    pub(super) fn request_election(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut e = RequestElection {
            election_version: 1,
            criteria: match self.rng.below(6) {
                0 => 0x2001_0F04,
                1 => 0x1001_0F00,
                2 => 0x1401_0F02,
                3 => 0x2001_0FA7,
                4 => 0x0101_0F01,
                _ => self.rng.u32(),
            },
            uptime_ms: if self.rng.pct(50) {
                self.rng.range(0, 3_600_000) as u32
            } else {
                self.rng.u32()
            },
            unused: 0,
            server_name: h.name.into(),
            trailing: Vec::new(),
        };
        if self.rng.pct(10) {
            // A forced election: version 0, criteria 0 (MS-BRWS §3.1.6).
            e.election_version = 0;
            e.criteria = 0;
        }
        if self.mixed() {
            if self.rng.pct(5) {
                e.unused = self.rng.u32();
            }
            if self.rng.pct(5) {
                e.election_version = self.rng.u8();
            }
        }
        let f = BrowserFrame::RequestElection(e);
        let data = self.browse(&f);
        vec![self.group_dgm("browser.request_election", &h, 0x1E, data)]
    }

    pub(super) fn get_backup_list_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let f = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
            count: if self.rng.pct(80) { 4 } else { self.rng.u8() },
            token: if self.rng.pct(50) {
                self.rng.range(0, 10) as u32
            } else {
                self.rng.u32()
            },
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        let suffix = if self.rng.pct(85) { 0x1D } else { 0x1B };
        vec![self.group_dgm("browser.get_backup_list_request", &h, suffix, data)]
    }

    pub(super) fn get_backup_list_response(&mut self) -> Vec<Generated> {
        let lmb = self.host();
        let to = self.other_host(&lmb);
        let n = match self.rng.below(10) {
            0 => 0,
            1..=5 => 1,
            6..=8 => self.rng.range(2, 4) as usize,
            _ => self.rng.range(5, 12) as usize,
        };
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            servers.push(if i == 0 {
                lmb.name.to_string()
            } else {
                self.host().name.to_string()
            });
        }
        let trailing = if self.mixed() && self.rng.pct(5) {
            let n = 1 + self.rng.below(6);
            self.rng.bytes(n)
        } else {
            Vec::new()
        };
        let f = BrowserFrame::GetBackupListResponse(GetBackupListResponse {
            count: n as u8,
            token: self.rng.range(0, 20) as u32,
            servers,
            trailing,
        });
        let data = self.browse(&f);
        vec![self.unique_dgm("browser.get_backup_list_response", &lmb, &to, 0x00, data)]
    }

    pub(super) fn become_backup(&mut self) -> Vec<Generated> {
        let lmb = self.host();
        let to = self.other_host(&lmb);
        let f = BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: to.name.into(),
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        if self.rng.pct(50) {
            vec![self.group_dgm("browser.become_backup", &lmb, 0x1E, data)]
        } else {
            vec![self.unique_dgm("browser.become_backup", &lmb, &to, 0x00, data)]
        }
    }

    pub(super) fn domain_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut d = DomainAnnouncement {
            periodicity_ms: self.periodicity_ms(),
            machine_group: h.group.into(),
            local_master_name: h.name.into(),
            ..DomainAnnouncement::default()
        };
        match self.rng.below(3) {
            0 => {}
            1 => {
                // Samba: its OS version in the config version bytes.
                d.browser_config_version_major = 6;
                d.browser_config_version_minor = 1;
            }
            _ => {
                // Windows leaves bytes 28..31 uninitialised (Wireshark's "Mysterious Field").
                let v = self.rng.u32().to_le_bytes();
                d.browser_version_major = v[0];
                d.browser_version_minor = v[1];
                d.signature = u16::from_le_bytes([v[2], v[3]]);
            }
        }
        if self.mixed() && self.rng.pct(20) {
            d.server_type = self.server_type() | 0x8000_0000;
        }
        let f = BrowserFrame::DomainAnnouncement(d);
        let data = self.browse(&f);
        let src = self.nbt_name(h.name, 0x00);
        let dst = self.scoped(Name::msbrowse());
        vec![self.data_datagram(
            "browser.domain_announcement",
            &h,
            MsgType::DirectGroup,
            src,
            dst,
            data,
            None,
        )]
    }

    pub(super) fn master_announcement(&mut self) -> Vec<Generated> {
        let lmb = self.host();
        let pdc = self.other_host(&lmb);
        let f = BrowserFrame::MasterAnnouncement(MasterAnnouncement {
            master_name: lmb.name.into(),
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        vec![self.unique_dgm("browser.master_announcement", &lmb, &pdc, 0x00, data)]
    }

    pub(super) fn reset_state_request(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let f = BrowserFrame::ResetStateRequest(ResetStateRequest {
            reset_type: *self
                .rng
                .pick(&[0x01, 0x02, 0x04, 0x03, 0x07, 0x00, 0x80, 0xFF]),
            trailing: Vec::new(),
        });
        let data = self.browse(&f);
        vec![self.unique_dgm("browser.reset_state_request", &from, &to, 0x1D, data)]
    }

    pub(super) fn browser_unknown(&mut self) -> Vec<Generated> {
        let h = self.host();
        let opcode = *self.rng.pick(&[
            0x00, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x20, 0x7F, 0xFF,
        ]);
        let n = self.rng.below(24);
        let f = BrowserFrame::Unknown(UnknownFrame {
            opcode,
            data: self.rng.bytes(n),
        });
        let data = self.browse(&f);
        vec![self.group_dgm("browser.unknown_opcode", &h, 0x1D, data)]
    }

    /// An MS-BRWS HostAnnouncement sent on `\MAILSLOT\LANMAN` (MS-BRWS §2.2.1 "SHOULD", <9>).
    pub(super) fn browse_layout_on_lanman(&mut self) -> Vec<Generated> {
        let h = self.host();
        let mut a = self.announcement(&h);
        a.signature = 0xAA55;
        a.comment_unterminated = false; // keep the 33 bytes the LANMAN heuristic needs
        let f = LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a));
        let data = f.to_bytes().expect("browse layout on LANMAN emits");
        let data = self.mailslot(mailslot::LANMAN, data);
        vec![self.group_dgm("lanman.browse_layout", &h, 0x1D, data)]
    }

    /// A LAN Manager announcement (DIGEST §6.7).
    pub(super) fn lanman_announcement(&mut self) -> Vec<Generated> {
        let h = self.host();
        loop {
            let a = LanmanAnnouncement {
                opcode: *self.rng.pick(&[0x01, 0x01, 0x01, 0x0F, 0x0C]),
                update_count: if self.rng.pct(80) { 0 } else { self.rng.u8() },
                server_type: self.server_type(),
                os_major: *self.rng.pick(&[4, 5, 6, 10]),
                os_minor: *self.rng.pick(&[0, 1, 9]),
                periodicity_s: *self.rng.pick(&[60, 720, 900, 0, 0xFFFF]),
                server_name: h.name.into(),
                comment: self.comment(),
                ..LanmanAnnouncement::default()
            };
            // Retry in the unlikely case bytes 30..31 come out as 55 AA.
            if let Ok(data) = LanmanFrame::Announcement(a).to_bytes() {
                let data = self.mailslot(mailslot::LANMAN, data);
                return vec![self.group_dgm("lanman.announcement", &h, 0x00, data)];
            }
        }
    }
}
