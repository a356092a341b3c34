//! NETLOGON (MS-ADTS §6.3.1), WinPopup (MS-MSRP) and other mailslot writes (MS-MAIL §2.2.1).

use super::{Gen, Host};
use crate::Generated;
use nbdgm_wire::datagram::MsgType;
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::messenger::{self, Message};
use nbdgm_wire::name::Name;
use nbdgm_wire::netlogon::{
    NetlogonMessage, PrimaryQuery, PrimaryResponse, SamLogonRequest, SamLogonResponse,
};

impl Gen {
    // -----------------------------------------------------------------------------------------
    // NETLOGON (MS-ADTS §6.3.1), WinPopup, other mailslots

    pub(super) fn reply_slot(&mut self) -> String {
        if self.rng.pct(30) {
            "\\MAILSLOT\\TEMP\\NETLOGON".into()
        } else {
            format!("\\MAILSLOT\\NET\\GETDC{:03X}", self.rng.below(0x1000))
        }
    }

    /// The host's name, or in the Mixed corpus sometimes one with OEM (Latin-1) letters.
    pub(super) fn netlogon_computer(&mut self, h: &Host) -> &'static str {
        if self.mixed() && self.rng.pct(10) {
            "B\u{dc}RO-PC-\u{c9}T\u{c9}"
        } else {
            h.name
        }
    }

    pub(super) fn netlogon(&mut self, m: &NetlogonMessage, slot: &str) -> Vec<u8> {
        let data = m.to_bytes().expect("generated NETLOGON message emits");
        self.mailslot(slot, data)
    }

    pub(super) fn netlogon_primary_query(&mut self) -> Vec<Generated> {
        let h = self.host();
        let reply = self.reply_slot();
        let computer = self.netlogon_computer(&h);
        let mut q = PrimaryQuery::new(computer, &reply);
        match self.rng.below(4) {
            0 => {
                // LAN Manager 2.0 / Windows 9x form: only the Lm20Token.
                q.unicode_computer_name = None;
                q.nt_version = None;
                q.lmnt_token = None;
            }
            1 => q.nt_version = Some(*self.rng.pick(&[0x0B, 0x2000_0006, 0x1000_0001])),
            _ => {}
        }
        let data = self.netlogon(&NetlogonMessage::PrimaryQuery(q), mailslot::NETLOGON);
        let suffix = if self.rng.pct(50) { 0x1B } else { 0x1C };
        vec![self.group_dgm("netlogon.primary_query", &h, suffix, data)]
    }

    pub(super) fn netlogon_primary_response(&mut self) -> Vec<Generated> {
        let pdc = self.host();
        let to = self.other_host(&pdc);
        let mut p = PrimaryResponse {
            primary_dc_name: pdc.name.into(),
            unicode_primary_dc_name: Some(pdc.name.into()),
            unicode_domain_name: Some(pdc.group.into()),
            nt_version: Some(1),
            lmnt_token: Some(0xFFFF),
            lm20_token: Some(0xFFFF),
            trailing: Vec::new(),
        };
        if self.rng.pct(20) {
            // An old PDC: only the OEM name.
            p.unicode_primary_dc_name = None;
            p.unicode_domain_name = None;
            p.nt_version = None;
            p.lmnt_token = None;
            p.lm20_token = None;
        }
        let reply = self.reply_slot();
        let data = self.netlogon(&NetlogonMessage::PrimaryResponse(p), &reply);
        vec![self.unique_dgm("netlogon.primary_response", &pdc, &to, 0x00, data)]
    }

    pub(super) fn domain_sid(&mut self) -> Vec<u8> {
        // S-1-5-21-a-b-c (MS-DTYP §2.4.2).
        let mut sid = vec![1, 4, 0, 0, 0, 0, 0, 5];
        sid.extend_from_slice(&21u32.to_le_bytes());
        for _ in 0..3 {
            sid.extend_from_slice(&self.rng.u32().to_le_bytes());
        }
        sid
    }

    pub(super) fn netlogon_sam_logon_request(&mut self) -> Vec<Generated> {
        let h = self.host();
        let reply = self.reply_slot();
        let user = *self
            .rng
            .pick(&["", "administrator", "alice", "WORKSTATION6$"]);
        let ntv = *self
            .rng
            .pick(&[0x0000_000B, 0x2000_0006, 0x0000_0001, 0x0100_0016]);
        let computer = self.netlogon_computer(&h);
        let mut q = SamLogonRequest::new(computer, user, &reply, ntv);
        q.request_count = self.rng.range(0, 3) as u16;
        q.allowable_account_control_bits = *self.rng.pick(&[0, 0x80, 0x10, 0x200]);
        if self.rng.pct(40) {
            q.domain_sid = self.domain_sid();
        }
        let data = self.netlogon(&NetlogonMessage::SamLogonRequest(q), mailslot::NETLOGON);
        vec![self.group_dgm("netlogon.sam_logon_request", &h, 0x1C, data)]
    }

    pub(super) fn netlogon_sam_logon_response(&mut self) -> Vec<Generated> {
        let dc = self.host();
        let to = self.other_host(&dc);
        let p = SamLogonResponse {
            unicode_logon_server: format!("\\\\{}", dc.name),
            user_name: (*self.rng.pick(&["", "alice", "administrator"])).into(),
            unicode_domain_name: dc.group.into(),
            v5: None,
            nt_version: Some(1),
            lmnt_token: Some(0xFFFF),
            lm20_token: Some(0xFFFF),
            trailing: Vec::new(),
        };
        let m = if self.rng.pct(70) {
            NetlogonMessage::SamLogonResponse(p)
        } else {
            NetlogonMessage::SamUserUnknown(p)
        };
        let reply = self.reply_slot();
        let data = self.netlogon(&m, &reply);
        vec![self.unique_dgm("netlogon.sam_logon_response", &dc, &to, 0x00, data)]
    }

    pub(super) fn messenger(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let recipient = if self.rng.pct(20) { "*" } else { to.name };
        const TEXTS: [&str; 4] = [
            "Hello",
            "The printer on floor 2 is out of paper.\nPlease refill it.",
            "",
            "Meeting moved to 15:00",
        ];
        let text = TEXTS[self.rng.below(TEXTS.len())];
        let text = messenger::crlf(text);
        let m = Message::new(from.name, recipient, &text);
        let data = self.mailslot(
            mailslot::MESSNGR,
            m.to_bytes().expect("generated message emits"),
        );
        vec![self.unique_dgm("messenger", &from, &to, 0x03, data)]
    }

    /// A write to a mailslot nbdgm does not decode, often padded (MS-MAIL §4 example).
    pub(super) fn mailslot_other(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        let slot = *self.rng.pick(&[
            "\\MAILSLOT\\test1\\sample_mailslot",
            "\\MAILSLOT\\FOO",
            "\\MAILSLOT\\APP\\X",
            "\\MAILSLOT\\abc",
        ]);
        let n = self.rng.below(80);
        let mut w = MailslotWrite::new(slot, self.rng.bytes(n));
        if self.rng.pct(60) {
            w = w.aligned();
        }
        w.priority = self.rng.range(0, 9) as u16;
        let data = w.to_bytes().expect("generated mailslot write emits");
        vec![self.unique_dgm("mailslot.other", &from, &to, 0x00, data)]
    }

    /// User data that is not an SMB mailslot write.
    pub(super) fn non_smb_data(&mut self) -> Vec<Generated> {
        let from = self.host();
        let n = self.rng.range(1, 60) as usize;
        let mut data = if self.rng.pct(50) {
            self.rng.printable(n).into_bytes()
        } else {
            self.rng.bytes(n)
        };
        if data[0] == 0xFF || data[0] == 0xFE {
            data[0] = 0x42;
        }
        let src = self.nbt_name(from.name, 0x00);
        let dst = self.scoped(Name::wildcard());
        vec![self.data_datagram(
            "dgm.non_smb_data",
            &from,
            MsgType::Broadcast,
            src,
            dst,
            data,
            None,
        )]
    }

    pub(super) fn empty_user_data(&mut self) -> Vec<Generated> {
        let from = self.host();
        let to = self.other_host(&from);
        vec![self.unique_dgm("dgm.empty_user_data", &from, &to, 0x00, Vec::new())]
    }
}
