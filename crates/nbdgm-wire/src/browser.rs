//! Browser frames: the MS-BRWS §2.2 codec for `\MAILSLOT\BROWSE` (DIGEST §6.1–6.4, §8 items
//! 7–9, 24) and the LAN Manager announcements on `\MAILSLOT\LANMAN` (DIGEST §6.7).
//!
//! Input is the mailslot data, starting at the opcode byte; all integers are little-endian.
//! Names inside browser frames are plain Latin-1 text, never encoded NetBIOS names.
//!
//! Every frame [`BrowserFrame::parse`] accepts is emitted again byte for byte: bytes after the
//! NUL in the 16-byte name fields, a final string cut off by the end of the packet, and
//! anything after the last field are all kept. Conversely `parse(emit(x)) == x` for every
//! value, so `emit` refuses values that would not read back the same (a name longer than 15
//! bytes in a 16-byte field, a NUL inside a string, a count that disagrees with its list...).
//! The version and signature bytes are never validated on receive (MS-BRWS §2.2.1).
//!
//! One leniency for what real peers send (docs/peers.md): a 16-byte name field
//! (ServerName, MachineGroup) holding 16 name bytes and no NUL is read as a 16-byte name
//! with `server_name_unterminated` / `machine_group_unterminated` set, as nmbd reads it,
//! and emitted back the same way.

use crate::error::{Error, Result};
use crate::reader::{to_latin1, Reader};

mod announcement;
mod backup_list;
mod election;
mod fields;
mod lanman;
mod reset_state;
mod server_type;

pub use announcement::{Announcement, AnnouncementRequest, DomainAnnouncement, MasterAnnouncement};
pub use backup_list::{BecomeBackup, GetBackupListRequest, GetBackupListResponse};
pub use election::{election_os_names, election_role_names, ElectionCriteria, RequestElection};
pub use lanman::{looks_like_browse_layout, LanmanAnnouncement, LanmanFrame};
pub use reset_state::{
    reset_type_names, ResetStateRequest, RESET_STATE_CLEAR_ALL, RESET_STATE_STOP,
    RESET_STATE_STOP_MASTER,
};
pub use server_type::{server_type_names, ServerType};

use fields::*;

/// Value of the Signature field of the announcements (bytes `55 AA`).
pub const SIGNATURE: u16 = 0xAA55;
/// BrowserVersionMajor/Minor that announcing servers send (MS-BRWS §2.2.1).
pub const BROWSER_VERSION_MAJOR: u8 = 0x0F;
pub const BROWSER_VERSION_MINOR: u8 = 0x01;
/// Longest name in a 16-byte name field or a name string, without its NUL.
pub const MAX_NAME_LEN: usize = 15;
/// Longest announcement comment, without its NUL (43 bytes with it).
pub const MAX_COMMENT_LEN: usize = 42;
/// Size of the ServerName/MachineGroup field.
const FIXED_NAME_LEN: usize = 16;
/// Length of the fixed part of the announcement layout (the comment starts there).
const ANNOUNCEMENT_FIXED_LEN: usize = 32;

/// Browser opcodes (MS-BRWS §2.2).
pub mod opcode {
    pub const HOST_ANNOUNCEMENT: u8 = 0x01;
    pub const ANNOUNCEMENT_REQUEST: u8 = 0x02;
    pub const REQUEST_ELECTION: u8 = 0x08;
    pub const GET_BACKUP_LIST_REQUEST: u8 = 0x09;
    pub const GET_BACKUP_LIST_RESPONSE: u8 = 0x0A;
    pub const BECOME_BACKUP: u8 = 0x0B;
    pub const DOMAIN_ANNOUNCEMENT: u8 = 0x0C;
    pub const MASTER_ANNOUNCEMENT: u8 = 0x0D;
    pub const RESET_STATE_REQUEST: u8 = 0x0E;
    pub const LOCAL_MASTER_ANNOUNCEMENT: u8 = 0x0F;
}

/// The command name of an opcode, `"Unknown"` for the others.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        opcode::HOST_ANNOUNCEMENT => "HostAnnouncement",
        opcode::ANNOUNCEMENT_REQUEST => "AnnouncementRequest",
        opcode::REQUEST_ELECTION => "RequestElection",
        opcode::GET_BACKUP_LIST_REQUEST => "GetBackupListRequest",
        opcode::GET_BACKUP_LIST_RESPONSE => "GetBackupListResponse",
        opcode::BECOME_BACKUP => "BecomeBackup",
        opcode::DOMAIN_ANNOUNCEMENT => "DomainAnnouncement",
        opcode::MASTER_ANNOUNCEMENT => "MasterAnnouncement",
        opcode::RESET_STATE_REQUEST => "ResetStateRequest",
        opcode::LOCAL_MASTER_ANNOUNCEMENT => "LocalMasterAnnouncement",
        _ => "Unknown",
    }
}

fn is_known_opcode(op: u8) -> bool {
    matches!(op, 0x01 | 0x02 | 0x08..=0x0F)
}

/// A frame with an opcode this codec does not know; kept whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UnknownFrame {
    /// Not serialized: the caller's `command_code` carries it.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub opcode: u8,
    /// Everything after the opcode.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex::serialize"))]
    pub data: Vec<u8>,
}

impl UnknownFrame {
    /// `head`, then `data`; refused (`reason`) when `parsed`: an opcode the codec parses
    /// would not read back as this frame.
    fn emit_unless(
        &self,
        parsed: bool,
        reason: &'static str,
        head: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if parsed {
            return Err(Error::emit("opcode", reason));
        }
        out.extend_from_slice(head);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// A frame on `\MAILSLOT\BROWSE` (MS-BRWS §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(untagged))]
pub enum BrowserFrame {
    HostAnnouncement(Announcement),
    AnnouncementRequest(AnnouncementRequest),
    RequestElection(RequestElection),
    GetBackupListRequest(GetBackupListRequest),
    GetBackupListResponse(GetBackupListResponse),
    BecomeBackup(BecomeBackup),
    DomainAnnouncement(DomainAnnouncement),
    MasterAnnouncement(MasterAnnouncement),
    ResetStateRequest(ResetStateRequest),
    LocalMasterAnnouncement(Announcement),
    /// Unknown opcodes are not an error (DIGEST §6.1: ignore them).
    Unknown(UnknownFrame),
}

impl BrowserFrame {
    /// Parse the mailslot data of `\MAILSLOT\BROWSE`, starting at the opcode byte.
    pub fn parse(data: &[u8]) -> Result<BrowserFrame> {
        let mut r = Reader::new(data);
        let op = r.u8("opcode")?;
        let r = &mut r;
        Ok(match op {
            opcode::HOST_ANNOUNCEMENT => {
                BrowserFrame::HostAnnouncement(Announcement::parse_body(r)?)
            }
            opcode::LOCAL_MASTER_ANNOUNCEMENT => {
                BrowserFrame::LocalMasterAnnouncement(Announcement::parse_body(r)?)
            }
            opcode::DOMAIN_ANNOUNCEMENT => {
                BrowserFrame::DomainAnnouncement(DomainAnnouncement::parse_body(r)?)
            }
            opcode::ANNOUNCEMENT_REQUEST => {
                BrowserFrame::AnnouncementRequest(AnnouncementRequest {
                    reserved: r.u8("Reserved")?,
                    response_name: strz(r, "ResponseName")?,
                    trailing: r.rest().to_vec(),
                })
            }
            opcode::REQUEST_ELECTION => BrowserFrame::RequestElection(RequestElection {
                election_version: r.u8("Version")?,
                criteria: r.u32_le("Criteria")?,
                uptime_ms: r.u32_le("Uptime")?,
                unused: r.u32_le("Unused")?,
                server_name: strz(r, "ServerName")?,
                trailing: r.rest().to_vec(),
            }),
            opcode::GET_BACKUP_LIST_REQUEST => {
                BrowserFrame::GetBackupListRequest(GetBackupListRequest {
                    count: r.u8("RequestedCount")?,
                    token: r.u32_le("Token")?,
                    trailing: r.rest().to_vec(),
                })
            }
            opcode::GET_BACKUP_LIST_RESPONSE => {
                BrowserFrame::GetBackupListResponse(GetBackupListResponse::parse_body(r)?)
            }
            opcode::BECOME_BACKUP => BrowserFrame::BecomeBackup(BecomeBackup {
                browser_to_promote: strz(r, "BrowserToPromote")?,
                trailing: r.rest().to_vec(),
            }),
            opcode::MASTER_ANNOUNCEMENT => BrowserFrame::MasterAnnouncement(MasterAnnouncement {
                master_name: strz(r, "MasterBrowserServerName")?,
                trailing: r.rest().to_vec(),
            }),
            opcode::RESET_STATE_REQUEST => BrowserFrame::ResetStateRequest(ResetStateRequest {
                reset_type: r.u8("Type")?,
                trailing: r.rest().to_vec(),
            }),
            _ => BrowserFrame::Unknown(UnknownFrame {
                opcode: op,
                data: r.rest().to_vec(),
            }),
        })
    }

    /// Append the frame's bytes to `out`. On error `out` is left as it was.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let res = self.emit_inner(out);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn emit_inner(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.command_code());
        match self {
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a) => {
                a.emit_body(out)
            }
            BrowserFrame::DomainAnnouncement(d) => d.emit_body(out),
            BrowserFrame::AnnouncementRequest(f) => {
                out.push(f.reserved);
                put_strz(out, &f.response_name, "ResponseName")?;
                out.extend_from_slice(&f.trailing);
                Ok(())
            }
            BrowserFrame::RequestElection(f) => {
                out.push(f.election_version);
                out.extend_from_slice(&f.criteria.to_le_bytes());
                out.extend_from_slice(&f.uptime_ms.to_le_bytes());
                out.extend_from_slice(&f.unused.to_le_bytes());
                put_strz(out, &f.server_name, "ServerName")?;
                out.extend_from_slice(&f.trailing);
                Ok(())
            }
            BrowserFrame::GetBackupListRequest(f) => {
                out.push(f.count);
                out.extend_from_slice(&f.token.to_le_bytes());
                out.extend_from_slice(&f.trailing);
                Ok(())
            }
            BrowserFrame::GetBackupListResponse(f) => f.emit_body(out),
            BrowserFrame::BecomeBackup(f) => {
                put_strz(out, &f.browser_to_promote, "BrowserToPromote")?;
                out.extend_from_slice(&f.trailing);
                Ok(())
            }
            BrowserFrame::MasterAnnouncement(f) => {
                put_strz(out, &f.master_name, "MasterBrowserServerName")?;
                out.extend_from_slice(&f.trailing);
                Ok(())
            }
            BrowserFrame::ResetStateRequest(f) => {
                out.push(f.reset_type);
                out.extend_from_slice(&f.trailing);
                Ok(())
            }
            BrowserFrame::Unknown(u) => u.emit_unless(
                is_known_opcode(u.opcode),
                "an Unknown frame cannot carry a known opcode",
                &[],
                out,
            ),
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(0, |v| self.emit(v))
    }

    pub fn command_code(&self) -> u8 {
        match self {
            BrowserFrame::HostAnnouncement(_) => opcode::HOST_ANNOUNCEMENT,
            BrowserFrame::AnnouncementRequest(_) => opcode::ANNOUNCEMENT_REQUEST,
            BrowserFrame::RequestElection(_) => opcode::REQUEST_ELECTION,
            BrowserFrame::GetBackupListRequest(_) => opcode::GET_BACKUP_LIST_REQUEST,
            BrowserFrame::GetBackupListResponse(_) => opcode::GET_BACKUP_LIST_RESPONSE,
            BrowserFrame::BecomeBackup(_) => opcode::BECOME_BACKUP,
            BrowserFrame::DomainAnnouncement(_) => opcode::DOMAIN_ANNOUNCEMENT,
            BrowserFrame::MasterAnnouncement(_) => opcode::MASTER_ANNOUNCEMENT,
            BrowserFrame::ResetStateRequest(_) => opcode::RESET_STATE_REQUEST,
            BrowserFrame::LocalMasterAnnouncement(_) => opcode::LOCAL_MASTER_ANNOUNCEMENT,
            BrowserFrame::Unknown(u) => u.opcode,
        }
    }

    /// `"HostAnnouncement"`, ..., `"Unknown"`.
    pub fn command(&self) -> &'static str {
        match self {
            BrowserFrame::Unknown(_) => "Unknown",
            _ => opcode_name(self.command_code()),
        }
    }

    /// Checks the length limits MS-BRWS sets for senders, which `parse` and `emit` do not
    /// enforce on variable-length strings: names ≤ 15 bytes, comments ≤ 42 bytes (plus NUL),
    /// at most 255 backup servers. A 16-byte name field read without its NUL (the
    /// `*_unterminated` flags, a peer leniency: docs/peers.md) passes with its 16 bytes;
    /// the receiver decides what to do with it.
    pub fn check_sender_limits(&self) -> Result<()> {
        fn max(s: &str, n: usize, field: &'static str) -> Result<()> {
            if to_latin1(s, field)?.len() > n {
                return Err(Error::emit(field, "longer than MS-BRWS allows"));
            }
            Ok(())
        }
        fn fixed_max(unterminated: bool) -> usize {
            if unterminated {
                FIXED_NAME_LEN
            } else {
                MAX_NAME_LEN
            }
        }
        match self {
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a) => {
                max(
                    &a.server_name,
                    fixed_max(a.server_name_unterminated),
                    "ServerName",
                )?;
                max(&a.comment, MAX_COMMENT_LEN, "Comment")
            }
            BrowserFrame::DomainAnnouncement(d) => {
                let n = fixed_max(d.machine_group_unterminated);
                max(&d.machine_group, n, "MachineGroup")?;
                max(&d.local_master_name, MAX_NAME_LEN, "LocalMasterBrowserName")
            }
            BrowserFrame::AnnouncementRequest(f) => {
                max(&f.response_name, MAX_NAME_LEN, "ResponseName")
            }
            BrowserFrame::RequestElection(f) => max(&f.server_name, MAX_NAME_LEN, "ServerName"),
            BrowserFrame::GetBackupListResponse(f) => {
                if f.servers.len() > usize::from(u8::MAX) {
                    return Err(Error::emit("BackupServerList", "more than 255 servers"));
                }
                f.servers
                    .iter()
                    .try_for_each(|s| max(s, MAX_NAME_LEN, "BackupServerList"))
            }
            BrowserFrame::BecomeBackup(f) => {
                max(&f.browser_to_promote, MAX_NAME_LEN, "BrowserToPromote")
            }
            BrowserFrame::MasterAnnouncement(f) => {
                max(&f.master_name, MAX_NAME_LEN, "MasterBrowserServerName")
            }
            BrowserFrame::GetBackupListRequest(_)
            | BrowserFrame::ResetStateRequest(_)
            | BrowserFrame::Unknown(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
