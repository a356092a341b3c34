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

use crate::error::{Error, Result};
use crate::reader::{latin1, to_latin1, Reader};

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

// ---------------------------------------------------------------------------------------------
// ServerType (DIGEST §6.3)

/// SV_TYPE bits (MS-RAP §2.5.5.2.1) with their names; 0x08000000 is not defined.
const SERVER_TYPE_BITS: [(u32, &str); 32] = [
    (0x0000_0001, "WORKSTATION"),
    (0x0000_0002, "SERVER"),
    (0x0000_0004, "SQLSERVER"),
    (0x0000_0008, "DOMAIN_CTRL"),
    (0x0000_0010, "DOMAIN_BAKCTRL"),
    (0x0000_0020, "TIME_SOURCE"),
    (0x0000_0040, "AFP"),
    (0x0000_0080, "NOVELL"),
    (0x0000_0100, "DOMAIN_MEMBER"),
    (0x0000_0200, "PRINTQ_SERVER"),
    (0x0000_0400, "DIALIN_SERVER"),
    (0x0000_0800, "SERVER_UNIX"),
    (0x0000_1000, "NT"),
    (0x0000_2000, "WFW"),
    (0x0000_4000, "SERVER_MFPN"),
    (0x0000_8000, "SERVER_NT"),
    (0x0001_0000, "POTENTIAL_BROWSER"),
    (0x0002_0000, "BACKUP_BROWSER"),
    (0x0004_0000, "MASTER_BROWSER"),
    (0x0008_0000, "DOMAIN_MASTER"),
    (0x0010_0000, "SERVER_OSF"),
    (0x0020_0000, "SERVER_VMS"),
    (0x0040_0000, "WINDOWS"),
    (0x0080_0000, "DFS"),
    (0x0100_0000, "CLUSTER_NT"),
    (0x0200_0000, "TERMINALSERVER"),
    (0x0400_0000, "CLUSTER_VS_NT"),
    (0x0800_0000, "UNDEFINED_0x08000000"),
    (0x1000_0000, "DCE"),
    (0x2000_0000, "ALTERNATE_XPORT"),
    (0x4000_0000, "LOCAL_LIST_ONLY"),
    (0x8000_0000, "DOMAIN_ENUM"),
];

/// The name of every set SV_TYPE bit, lowest bit first (DIGEST §6.3).
pub fn server_type_names(bits: u32) -> Vec<&'static str> {
    SERVER_TYPE_BITS
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// A ServerType word with the SV_TYPE constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerType(pub u32);

impl ServerType {
    pub const WORKSTATION: u32 = 0x0000_0001;
    pub const SERVER: u32 = 0x0000_0002;
    pub const SQLSERVER: u32 = 0x0000_0004;
    pub const DOMAIN_CTRL: u32 = 0x0000_0008;
    pub const DOMAIN_BAKCTRL: u32 = 0x0000_0010;
    pub const TIME_SOURCE: u32 = 0x0000_0020;
    pub const AFP: u32 = 0x0000_0040;
    pub const NOVELL: u32 = 0x0000_0080;
    pub const DOMAIN_MEMBER: u32 = 0x0000_0100;
    pub const PRINTQ_SERVER: u32 = 0x0000_0200;
    pub const DIALIN_SERVER: u32 = 0x0000_0400;
    pub const SERVER_UNIX: u32 = 0x0000_0800;
    pub const NT: u32 = 0x0000_1000;
    pub const WFW: u32 = 0x0000_2000;
    pub const SERVER_MFPN: u32 = 0x0000_4000;
    pub const SERVER_NT: u32 = 0x0000_8000;
    pub const POTENTIAL_BROWSER: u32 = 0x0001_0000;
    pub const BACKUP_BROWSER: u32 = 0x0002_0000;
    pub const MASTER_BROWSER: u32 = 0x0004_0000;
    pub const DOMAIN_MASTER: u32 = 0x0008_0000;
    pub const SERVER_OSF: u32 = 0x0010_0000;
    pub const SERVER_VMS: u32 = 0x0020_0000;
    pub const WINDOWS: u32 = 0x0040_0000;
    pub const DFS: u32 = 0x0080_0000;
    pub const CLUSTER_NT: u32 = 0x0100_0000;
    pub const TERMINALSERVER: u32 = 0x0200_0000;
    pub const CLUSTER_VS_NT: u32 = 0x0400_0000;
    pub const DCE: u32 = 0x1000_0000;
    pub const ALTERNATE_XPORT: u32 = 0x2000_0000;
    /// A request flag only: never put it in an announcement (Samba masks it).
    pub const LOCAL_LIST_ONLY: u32 = 0x4000_0000;
    pub const DOMAIN_ENUM: u32 = 0x8000_0000;
    pub const ALL: u32 = 0xFFFF_FFFF;

    /// True if every bit of `bits` is set.
    pub fn contains(self, bits: u32) -> bool {
        self.0 & bits == bits
    }

    pub fn names(self) -> Vec<&'static str> {
        server_type_names(self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Election criteria (DIGEST §6.4)

/// The RequestElection Criteria word: OS byte (31..24), browser version (23..8), role (7..0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ElectionCriteria(pub u32);

impl ElectionCriteria {
    /// OS byte bits (Wireshark names; MS-BRWS: 0x10 clients, 0x20 servers acting as PDC).
    /// Samba puts its numeric "os level" (default 20 = 0x14) here instead.
    pub const OS_WFW: u8 = 0x01;
    pub const OS_NT_WORKSTATION: u8 = 0x10;
    pub const OS_NT_SERVER: u8 = 0x20;
    /// The browser version the criteria carry (0x00010F00 in the word).
    pub const BROWSER_VERSION: u16 = 0x010F;
    pub const ROLE_PDC: u8 = 0x80;
    pub const ROLE_WINS_CLIENT: u8 = 0x20;
    pub const ROLE_PREFERRED_MASTER: u8 = 0x08;
    pub const ROLE_RUNNING_MASTER: u8 = 0x04;
    /// MS-BRWS "DC"; Samba MAINTAIN_LIST, Wireshark "standby".
    pub const ROLE_DOMAIN_CONTROLLER: u8 = 0x02;
    pub const ROLE_RUNNING_BACKUP: u8 = 0x01;

    pub fn new(os: u8, browser_version: u16, role: u8) -> Self {
        ElectionCriteria(
            (u32::from(os) << 24) | (u32::from(browser_version) << 8) | u32::from(role),
        )
    }

    pub fn os(self) -> u8 {
        (self.0 >> 24) as u8
    }

    pub fn browser_version(self) -> u16 {
        (self.0 >> 8) as u16
    }

    pub fn role(self) -> u8 {
        self.0 as u8
    }

    pub fn os_names(self) -> Vec<&'static str> {
        election_os_names(self.os())
    }

    pub fn role_names(self) -> Vec<&'static str> {
        election_role_names(self.role())
    }
}

fn bit_names(bits: u8, table: &[(u8, &'static str)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// Names of the defined bits of the criteria OS byte (undefined bits are not named).
pub fn election_os_names(os: u8) -> Vec<&'static str> {
    bit_names(
        os,
        &[
            (ElectionCriteria::OS_WFW, "WFW"),
            (ElectionCriteria::OS_NT_WORKSTATION, "NT_WORKSTATION"),
            (ElectionCriteria::OS_NT_SERVER, "NT_SERVER"),
        ],
    )
}

/// Names of the defined role flags of the criteria (0x10 and 0x40 are not defined).
pub fn election_role_names(role: u8) -> Vec<&'static str> {
    bit_names(
        role,
        &[
            (ElectionCriteria::ROLE_RUNNING_BACKUP, "RUNNING_BACKUP"),
            (
                ElectionCriteria::ROLE_DOMAIN_CONTROLLER,
                "DOMAIN_CONTROLLER",
            ),
            (ElectionCriteria::ROLE_RUNNING_MASTER, "RUNNING_MASTER"),
            (ElectionCriteria::ROLE_PREFERRED_MASTER, "PREFERRED_MASTER"),
            (ElectionCriteria::ROLE_WINS_CLIENT, "WINS_CLIENT"),
            (ElectionCriteria::ROLE_PDC, "PDC"),
        ],
    )
}

/// ResetStateRequest Type bits (MS-BRWS §2.2.9; Samba treats them as flags).
pub const RESET_STATE_STOP_MASTER: u8 = 0x01;
pub const RESET_STATE_CLEAR_ALL: u8 = 0x02;
pub const RESET_STATE_STOP: u8 = 0x04;

/// Names of the defined ResetStateRequest Type bits.
pub fn reset_type_names(t: u8) -> Vec<&'static str> {
    bit_names(
        t,
        &[
            (RESET_STATE_STOP_MASTER, "STOP_MASTER"),
            (RESET_STATE_CLEAR_ALL, "CLEAR_ALL"),
            (RESET_STATE_STOP, "STOP"),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Frame types

/// HostAnnouncement (0x01) and LocalMasterAnnouncement (0x0F), MS-BRWS §2.2.1 and §2.2.10.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Announcement {
    /// Sent as 0, ignored.
    pub update_count: u8,
    pub periodicity_ms: u32,
    /// Up to the first NUL of the 16-byte field (at most 15 bytes).
    pub server_name: String,
    /// Bytes after that NUL, trailing zeros removed: empty unless the sender left garbage.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub server_name_padding: Vec<u8>,
    pub os_major: u8,
    pub os_minor: u8,
    pub server_type: u32,
    /// BrowserConfigVersionMajor/Minor in §2.2.10; 0x0F/0x01 in practice.
    pub browser_version_major: u8,
    pub browser_version_minor: u8,
    pub signature: u16,
    pub comment: String,
    /// The comment ran to the end of the packet without its NUL.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::is_false"))]
    pub comment_unterminated: bool,
    /// Bytes after the comment's NUL.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl Default for Announcement {
    /// An empty announcement with the version and signature servers send.
    fn default() -> Self {
        Announcement {
            update_count: 0,
            periodicity_ms: 0,
            server_name: String::new(),
            server_name_padding: Vec::new(),
            os_major: 0,
            os_minor: 0,
            server_type: 0,
            browser_version_major: BROWSER_VERSION_MAJOR,
            browser_version_minor: BROWSER_VERSION_MINOR,
            signature: SIGNATURE,
            comment: String::new(),
            comment_unterminated: false,
            trailing: Vec::new(),
        }
    }
}

/// AnnouncementRequest (0x02), MS-BRWS §2.2.2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AnnouncementRequest {
    /// MS-BRWS: 0. Samba puts a token here.
    pub reserved: u8,
    /// The sender's name; receivers ignore it.
    pub response_name: String,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

/// RequestElection (0x08), MS-BRWS §2.2.3.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RequestElection {
    /// 1; 0 together with criteria 0 forces an election.
    pub election_version: u8,
    /// See [`ElectionCriteria`].
    pub criteria: u32,
    /// Milliseconds in practice (Samba, Wireshark); MS-BRWS says seconds (DIGEST §8 item 9).
    pub uptime_ms: u32,
    /// Sent as 0, ignored.
    pub unused: u32,
    pub server_name: String,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl Default for RequestElection {
    fn default() -> Self {
        RequestElection {
            election_version: 1,
            criteria: 0,
            uptime_ms: 0,
            unused: 0,
            server_name: String::new(),
            trailing: Vec::new(),
        }
    }
}

/// GetBackupListRequest (0x09), MS-BRWS §2.2.4: 6 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GetBackupListRequest {
    /// RequestedCount.
    pub count: u8,
    pub token: u32,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

/// GetBackupListResponse (0x0A), MS-BRWS §2.2.5.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GetBackupListResponse {
    /// BackupServerCount; always equal to `servers.len()` (emit checks it).
    pub count: u8,
    /// The request's token, echoed.
    pub token: u32,
    pub servers: Vec<String>,
    /// Bytes after the `count`-th name.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

/// BecomeBackup (0x0B), MS-BRWS §2.2.6.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BecomeBackup {
    pub browser_to_promote: String,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

/// DomainAnnouncement (0x0C), MS-BRWS §2.2.7: the announcement layout with other meanings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DomainAnnouncement {
    pub update_count: u8,
    pub periodicity_ms: u32,
    /// Workgroup or domain, up to the first NUL of the 16-byte field.
    pub machine_group: String,
    /// Bytes after that NUL, trailing zeros removed.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub machine_group_padding: Vec<u8>,
    /// Windows 0x03/0x0A; Samba puts its OS version here.
    pub browser_config_version_major: u8,
    pub browser_config_version_minor: u8,
    pub server_type: u32,
    /// Bytes 28..31: Windows leaves them uninitialised (Wireshark's "Mysterious Field");
    /// they are kept as read.
    pub browser_version_major: u8,
    pub browser_version_minor: u8,
    pub signature: u16,
    /// LocalMasterBrowserName: the sender.
    pub local_master_name: String,
    /// The name ran to the end of the packet without its NUL.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::is_false"))]
    pub local_master_name_unterminated: bool,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl Default for DomainAnnouncement {
    fn default() -> Self {
        DomainAnnouncement {
            update_count: 0,
            periodicity_ms: 0,
            machine_group: String::new(),
            machine_group_padding: Vec::new(),
            browser_config_version_major: 0x03,
            browser_config_version_minor: 0x0A,
            server_type: ServerType::DOMAIN_ENUM | ServerType::NT,
            browser_version_major: BROWSER_VERSION_MAJOR,
            browser_version_minor: BROWSER_VERSION_MINOR,
            signature: SIGNATURE,
            local_master_name: String::new(),
            local_master_name_unterminated: false,
            trailing: Vec::new(),
        }
    }
}

/// MasterAnnouncement (0x0D), MS-BRWS §2.2.8.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MasterAnnouncement {
    /// MasterBrowserServerName: the LMB.
    pub master_name: String,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

/// ResetStateRequest (0x0E), MS-BRWS §2.2.9.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ResetStateRequest {
    /// `RESET_STATE_*` bits; see [`reset_type_names`].
    pub reset_type: u8,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
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

// ---------------------------------------------------------------------------------------------
// Field helpers

/// A 16-byte NUL-terminated, NUL-padded name field (DIGEST §8 item 24). Returns the name and
/// the bytes after its NUL with trailing zeros removed.
fn fixed_name(r: &mut Reader<'_>, field: &'static str) -> Result<(String, Vec<u8>)> {
    let offset = r.pos();
    let raw = r.bytes(FIXED_NAME_LEN, field)?;
    let nul = raw.iter().position(|&b| b == 0).ok_or(Error::invalid(
        field,
        offset,
        "16-byte name field has no NUL terminator",
    ))?;
    let (name, after) = raw.split_at(nul);
    let after = after.get(1..).unwrap_or(&[]);
    let keep = after.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    Ok((latin1(name), after.get(..keep).unwrap_or(&[]).to_vec()))
}

/// A NUL-terminated string whose terminator is mandatory.
fn strz(r: &mut Reader<'_>, field: &'static str) -> Result<String> {
    r.cstr(field).map(latin1)
}

/// The last string of the announcement layouts: its NUL may be cut off by the end of the
/// packet. Returns the string and whether it was unterminated.
fn last_string(r: &mut Reader<'_>) -> (String, bool) {
    let (s, terminated) = r.cstr_lenient();
    (latin1(s), !terminated)
}

/// Latin-1 bytes of a string that is NUL-terminated on the wire (so it cannot contain NUL).
fn text(s: &str, field: &'static str) -> Result<Vec<u8>> {
    let b = to_latin1(s, field)?;
    if b.contains(&0) {
        return Err(Error::emit(field, "string contains a NUL character"));
    }
    Ok(b)
}

fn put_fixed_name(
    out: &mut Vec<u8>,
    name: &str,
    padding: &[u8],
    field: &'static str,
) -> Result<()> {
    let b = text(name, field)?;
    if b.len() > MAX_NAME_LEN {
        return Err(Error::emit(
            field,
            "name longer than 15 bytes for a 16-byte field",
        ));
    }
    if padding.len() > MAX_NAME_LEN - b.len() {
        return Err(Error::emit(
            field,
            "padding does not fit after the name and its NUL",
        ));
    }
    if padding.last() == Some(&0) {
        return Err(Error::emit(field, "padding must not end with a zero byte"));
    }
    out.extend_from_slice(&b);
    out.push(0);
    out.extend_from_slice(padding);
    out.resize(out.len() + (MAX_NAME_LEN - b.len() - padding.len()), 0);
    Ok(())
}

fn put_strz(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    out.extend_from_slice(&text(s, field)?);
    out.push(0);
    Ok(())
}

/// The last string of an announcement followed by the trailing bytes.
fn put_last_string(
    out: &mut Vec<u8>,
    s: &str,
    unterminated: bool,
    trailing: &[u8],
    field: &'static str,
) -> Result<()> {
    out.extend_from_slice(&text(s, field)?);
    if unterminated {
        if !trailing.is_empty() {
            return Err(Error::emit(
                field,
                "an unterminated string must end the frame",
            ));
        }
    } else {
        out.push(0);
        out.extend_from_slice(trailing);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Per-frame codecs (the reader stands just after the opcode)

impl Announcement {
    fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        let update_count = r.u8("UpdateCount")?;
        let periodicity_ms = r.u32_le("Periodicity")?;
        let (server_name, server_name_padding) = fixed_name(r, "ServerName")?;
        let os_major = r.u8("OSVersionMajor")?;
        let os_minor = r.u8("OSVersionMinor")?;
        let server_type = r.u32_le("ServerType")?;
        let browser_version_major = r.u8("BrowserVersionMajor")?;
        let browser_version_minor = r.u8("BrowserVersionMinor")?;
        let signature = r.u16_le("Signature")?;
        let (comment, comment_unterminated) = last_string(r);
        Ok(Announcement {
            update_count,
            periodicity_ms,
            server_name,
            server_name_padding,
            os_major,
            os_minor,
            server_type,
            browser_version_major,
            browser_version_minor,
            signature,
            comment,
            comment_unterminated,
            trailing: r.rest().to_vec(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.update_count);
        out.extend_from_slice(&self.periodicity_ms.to_le_bytes());
        put_fixed_name(
            out,
            &self.server_name,
            &self.server_name_padding,
            "ServerName",
        )?;
        out.extend_from_slice(&[self.os_major, self.os_minor]);
        out.extend_from_slice(&self.server_type.to_le_bytes());
        out.extend_from_slice(&[self.browser_version_major, self.browser_version_minor]);
        out.extend_from_slice(&self.signature.to_le_bytes());
        put_last_string(
            out,
            &self.comment,
            self.comment_unterminated,
            &self.trailing,
            "Comment",
        )
    }
}

impl DomainAnnouncement {
    fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        let update_count = r.u8("UpdateCount")?;
        let periodicity_ms = r.u32_le("Periodicity")?;
        let (machine_group, machine_group_padding) = fixed_name(r, "MachineGroup")?;
        let browser_config_version_major = r.u8("BrowserConfigVersionMajor")?;
        let browser_config_version_minor = r.u8("BrowserConfigVersionMinor")?;
        let server_type = r.u32_le("ServerType")?;
        let browser_version_major = r.u8("BrowserVersionMajor")?;
        let browser_version_minor = r.u8("BrowserVersionMinor")?;
        let signature = r.u16_le("Signature")?;
        let (local_master_name, local_master_name_unterminated) = last_string(r);
        Ok(DomainAnnouncement {
            update_count,
            periodicity_ms,
            machine_group,
            machine_group_padding,
            browser_config_version_major,
            browser_config_version_minor,
            server_type,
            browser_version_major,
            browser_version_minor,
            signature,
            local_master_name,
            local_master_name_unterminated,
            trailing: r.rest().to_vec(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.update_count);
        out.extend_from_slice(&self.periodicity_ms.to_le_bytes());
        put_fixed_name(
            out,
            &self.machine_group,
            &self.machine_group_padding,
            "MachineGroup",
        )?;
        out.extend_from_slice(&[
            self.browser_config_version_major,
            self.browser_config_version_minor,
        ]);
        out.extend_from_slice(&self.server_type.to_le_bytes());
        out.extend_from_slice(&[self.browser_version_major, self.browser_version_minor]);
        out.extend_from_slice(&self.signature.to_le_bytes());
        put_last_string(
            out,
            &self.local_master_name,
            self.local_master_name_unterminated,
            &self.trailing,
            "LocalMasterBrowserName",
        )
    }
}

impl GetBackupListResponse {
    fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        let count = r.u8("BackupServerCount")?;
        let token = r.u32_le("Token")?;
        let mut servers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            // Fewer names than BackupServerCount is malformed (MS-BRWS §2.2.5 "MUST"); the frame
            // is rejected rather than returned with a short list. Wireshark marks it malformed too.
            if r.is_empty() {
                return Err(Error::invalid(
                    "BackupServerList",
                    r.pos(),
                    "fewer server names than BackupServerCount",
                ));
            }
            servers.push(strz(r, "BackupServerList")?);
        }
        Ok(GetBackupListResponse {
            count,
            token,
            servers,
            trailing: r.rest().to_vec(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        if usize::from(self.count) != self.servers.len() {
            return Err(Error::emit(
                "BackupServerCount",
                "count differs from the number of servers",
            ));
        }
        out.push(self.count);
        out.extend_from_slice(&self.token.to_le_bytes());
        for s in &self.servers {
            put_strz(out, s, "BackupServerList")?;
        }
        out.extend_from_slice(&self.trailing);
        Ok(())
    }
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
            BrowserFrame::Unknown(u) => {
                if is_known_opcode(u.opcode) {
                    return Err(Error::emit(
                        "opcode",
                        "an Unknown frame cannot carry a known opcode",
                    ));
                }
                out.extend_from_slice(&u.data);
                Ok(())
            }
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
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
    /// at most 255 backup servers.
    pub fn check_sender_limits(&self) -> Result<()> {
        fn max(s: &str, n: usize, field: &'static str) -> Result<()> {
            if to_latin1(s, field)?.len() > n {
                return Err(Error::emit(field, "longer than MS-BRWS allows"));
            }
            Ok(())
        }
        match self {
            BrowserFrame::HostAnnouncement(a) | BrowserFrame::LocalMasterAnnouncement(a) => {
                max(&a.server_name, MAX_NAME_LEN, "ServerName")?;
                max(&a.comment, MAX_COMMENT_LEN, "Comment")
            }
            BrowserFrame::DomainAnnouncement(d) => {
                max(&d.machine_group, MAX_NAME_LEN, "MachineGroup")?;
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

// ---------------------------------------------------------------------------------------------
// \MAILSLOT\LANMAN (DIGEST §6.7)

/// A LAN Manager announcement (Samba `send_lm_announcement`, Wireshark `dissect_mailslot_lanman`):
/// `opcode(1) 0(1) ServerType(4) OSMajor(1) OSMinor(1) Periodicity(2, seconds) ServerName(strz)
/// Comment(strz)`. Opcode 0x01, or 0x0F/0x0C; for 0x0C Wireshark reads the second string as the
/// master browser's name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LanmanAnnouncement {
    /// 0x01, 0x0C or 0x0F. Not serialized: the caller's `command_code` carries it.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub opcode: u8,
    /// The byte after the opcode (Wireshark "update count"; Samba writes the opcode as a u16).
    pub update_count: u8,
    pub server_type: u32,
    pub os_major: u8,
    pub os_minor: u8,
    pub periodicity_s: u16,
    pub server_name: String,
    pub comment: String,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::is_false"))]
    pub comment_unterminated: bool,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl Default for LanmanAnnouncement {
    fn default() -> Self {
        LanmanAnnouncement {
            opcode: opcode::HOST_ANNOUNCEMENT,
            update_count: 0,
            server_type: 0,
            os_major: 0,
            os_minor: 0,
            periodicity_s: 0,
            server_name: String::new(),
            comment: String::new(),
            comment_unterminated: false,
            trailing: Vec::new(),
        }
    }
}

/// A frame on `\MAILSLOT\LANMAN`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(untagged))]
pub enum LanmanFrame {
    /// The LAN Manager layout.
    Announcement(LanmanAnnouncement),
    /// An MS-BRWS announcement sent on LANMAN (MS-BRWS <9>); only opcodes 0x01, 0x0C, 0x0F.
    Browser(BrowserFrame),
    /// Any other opcode, kept whole.
    Unknown(UnknownFrame),
}

fn is_lanman_announcement_opcode(op: u8) -> bool {
    matches!(
        op,
        opcode::HOST_ANNOUNCEMENT | opcode::DOMAIN_ANNOUNCEMENT | opcode::LOCAL_MASTER_ANNOUNCEMENT
    )
}

/// The DIGEST §6.7 heuristic: a LANMAN announcement uses the MS-BRWS layout when it is at
/// least 33 bytes long and bytes 30–31 are the signature `55 AA`.
pub fn looks_like_browse_layout(data: &[u8]) -> bool {
    data.len() > ANNOUNCEMENT_FIXED_LEN && data.get(30..32) == Some(&[0x55, 0xAA][..])
}

impl LanmanFrame {
    /// Parse the mailslot data of `\MAILSLOT\LANMAN`, starting at the opcode byte.
    pub fn parse(data: &[u8]) -> Result<LanmanFrame> {
        let mut r = Reader::new(data);
        let op = r.u8("opcode")?;
        if !is_lanman_announcement_opcode(op) {
            return Ok(LanmanFrame::Unknown(UnknownFrame {
                opcode: op,
                data: r.rest().to_vec(),
            }));
        }
        if looks_like_browse_layout(data) {
            return BrowserFrame::parse(data).map(LanmanFrame::Browser);
        }
        let update_count = r.u8("UpdateCount")?;
        let server_type = r.u32_le("ServerType")?;
        let os_major = r.u8("OSMajor")?;
        let os_minor = r.u8("OSMinor")?;
        let periodicity_s = r.u16_le("Periodicity")?;
        let server_name = strz(&mut r, "ServerName")?;
        let (comment, comment_unterminated) = last_string(&mut r);
        Ok(LanmanFrame::Announcement(LanmanAnnouncement {
            opcode: op,
            update_count,
            server_type,
            os_major,
            os_minor,
            periodicity_s,
            server_name,
            comment,
            comment_unterminated,
            trailing: r.rest().to_vec(),
        }))
    }

    /// Append the frame's bytes to `out`. Fails (leaving `out` as it was) for a frame that
    /// would be read back as another variant.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let res = self.emit_inner(out, start);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn emit_inner(&self, out: &mut Vec<u8>, start: usize) -> Result<()> {
        match self {
            LanmanFrame::Announcement(a) => {
                if !is_lanman_announcement_opcode(a.opcode) {
                    return Err(Error::emit(
                        "opcode",
                        "LANMAN announcements use opcode 0x01, 0x0C or 0x0F",
                    ));
                }
                out.extend_from_slice(&[a.opcode, a.update_count]);
                out.extend_from_slice(&a.server_type.to_le_bytes());
                out.extend_from_slice(&[a.os_major, a.os_minor]);
                out.extend_from_slice(&a.periodicity_s.to_le_bytes());
                put_strz(out, &a.server_name, "ServerName")?;
                put_last_string(
                    out,
                    &a.comment,
                    a.comment_unterminated,
                    &a.trailing,
                    "Comment",
                )?;
                if looks_like_browse_layout(out.get(start..).unwrap_or(&[])) {
                    return Err(Error::emit(
                        "LanmanAnnouncement",
                        "bytes 30-31 would be 55 AA, so it would read back in the MS-BRWS layout",
                    ));
                }
                Ok(())
            }
            LanmanFrame::Browser(f) => {
                if !is_lanman_announcement_opcode(f.command_code()) {
                    return Err(Error::emit(
                        "opcode",
                        "only MS-BRWS announcements are recognised on LANMAN",
                    ));
                }
                f.emit(out)?;
                if !looks_like_browse_layout(out.get(start..).unwrap_or(&[])) {
                    return Err(Error::emit(
                        "Signature",
                        "an MS-BRWS frame on LANMAN needs 33 bytes and signature 0xAA55 to read back",
                    ));
                }
                Ok(())
            }
            LanmanFrame::Unknown(u) => {
                if is_lanman_announcement_opcode(u.opcode) {
                    return Err(Error::emit(
                        "opcode",
                        "an Unknown frame cannot carry an announcement opcode",
                    ));
                }
                out.push(u.opcode);
                out.extend_from_slice(&u.data);
                Ok(())
            }
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
    }

    pub fn command_code(&self) -> u8 {
        match self {
            LanmanFrame::Announcement(a) => a.opcode,
            LanmanFrame::Browser(f) => f.command_code(),
            LanmanFrame::Unknown(u) => u.opcode,
        }
    }

    /// `"LanmanAnnouncement"` for the LM layout (whatever its opcode), else the MS-BRWS name.
    pub fn command(&self) -> &'static str {
        match self {
            LanmanFrame::Announcement(_) => "LanmanAnnouncement",
            LanmanFrame::Browser(f) => f.command(),
            LanmanFrame::Unknown(_) => "Unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DIGEST §10.1: the browser payload of the HostAnnouncement datagram (33 bytes).
    const HOST_ANNOUNCEMENT: [u8; 33] = [
        0x01, 0x00, 0x80, 0xfc, 0x0a, 0x00, b'F', b'R', b'E', b'D', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0x06, 0x01, 0x03, 0x10, 0x01, 0x00, 0x0f, 0x01, 0x55, 0xaa, 0x00,
    ];

    fn round_trip(bytes: &[u8]) -> BrowserFrame {
        let f = BrowserFrame::parse(bytes).unwrap();
        assert_eq!(f.to_bytes().unwrap(), bytes, "{f:?}");
        f
    }

    fn lanman_round_trip(bytes: &[u8]) -> LanmanFrame {
        let f = LanmanFrame::parse(bytes).unwrap();
        assert_eq!(f.to_bytes().unwrap(), bytes, "{f:?}");
        f
    }

    #[test]
    fn digest_host_announcement() {
        let f = round_trip(&HOST_ANNOUNCEMENT);
        assert_eq!((f.command_code(), f.command()), (0x01, "HostAnnouncement"));
        let BrowserFrame::HostAnnouncement(a) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            a,
            Announcement {
                periodicity_ms: 720_000,
                server_name: "FRED".into(),
                os_major: 6,
                os_minor: 1,
                server_type: 0x0001_1003,
                ..Announcement::default()
            }
        );
        assert_eq!(
            server_type_names(a.server_type),
            ["WORKSTATION", "SERVER", "NT", "POTENTIAL_BROWSER"]
        );
    }

    #[test]
    fn digest_request_election() {
        let bytes = [
            0x08, 0x01, 0x04, 0x0f, 0x01, 0x20, 0x80, 0xee, 0x36, 0x00, 0, 0, 0, 0, b'F', b'R',
            b'E', b'D', 0,
        ];
        let f = round_trip(&bytes);
        assert_eq!(f.command(), "RequestElection");
        let BrowserFrame::RequestElection(e) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            e,
            RequestElection {
                election_version: 1,
                criteria: 0x2001_0F04,
                uptime_ms: 3_600_000,
                unused: 0,
                server_name: "FRED".into(),
                trailing: vec![],
            }
        );
        let c = ElectionCriteria(e.criteria);
        assert_eq!(
            (c.os(), c.browser_version(), c.role()),
            (0x20, 0x010F, 0x04)
        );
        assert_eq!(
            c,
            ElectionCriteria::new(0x20, ElectionCriteria::BROWSER_VERSION, 0x04)
        );
        assert_eq!(c.os_names(), ["NT_SERVER"]);
        assert_eq!(c.role_names(), ["RUNNING_MASTER"]);
    }

    #[test]
    fn digest_backup_list() {
        let f = round_trip(&[0x09, 0x04, 0x01, 0x00, 0x00, 0x00]);
        assert_eq!(
            f,
            BrowserFrame::GetBackupListRequest(GetBackupListRequest {
                count: 4,
                token: 1,
                trailing: vec![]
            })
        );
        assert_eq!(f.command(), "GetBackupListRequest");
        let f = round_trip(&[
            0x0a, 0x01, 0x01, 0x00, 0x00, 0x00, b'F', b'R', b'E', b'D', 0,
        ]);
        assert_eq!(
            f,
            BrowserFrame::GetBackupListResponse(GetBackupListResponse {
                count: 1,
                token: 1,
                servers: vec!["FRED".into()],
                trailing: vec![]
            })
        );
        assert_eq!(f.command(), "GetBackupListResponse");
    }

    #[test]
    fn digest_short_frames() {
        let f = round_trip(&[0x02, 0x00, b'F', b'R', b'E', b'D', 0]);
        assert_eq!(f.command(), "AnnouncementRequest");
        assert_eq!(
            f,
            BrowserFrame::AnnouncementRequest(AnnouncementRequest {
                reserved: 0,
                response_name: "FRED".into(),
                trailing: vec![]
            })
        );
        let f = round_trip(&[0x0b, b'B', b'A', b'R', b'N', b'E', b'Y', 0]);
        assert_eq!(f.command(), "BecomeBackup");
        assert_eq!(
            f,
            BrowserFrame::BecomeBackup(BecomeBackup {
                browser_to_promote: "BARNEY".into(),
                trailing: vec![]
            })
        );
        let f = round_trip(&[0x0d, b'F', b'R', b'E', b'D', 0]);
        assert_eq!(f.command(), "MasterAnnouncement");
        assert_eq!(
            f,
            BrowserFrame::MasterAnnouncement(MasterAnnouncement {
                master_name: "FRED".into(),
                trailing: vec![]
            })
        );
        let f = round_trip(&[0x0e, 0x01]);
        assert_eq!(f.command(), "ResetStateRequest");
        assert_eq!(
            f,
            BrowserFrame::ResetStateRequest(ResetStateRequest {
                reset_type: RESET_STATE_STOP_MASTER,
                trailing: vec![]
            })
        );
        assert_eq!(reset_type_names(0x07), ["STOP_MASTER", "CLEAR_ALL", "STOP"]);
    }

    #[test]
    fn local_master_announcement() {
        let mut bytes = HOST_ANNOUNCEMENT.to_vec();
        bytes[0] = 0x0f;
        bytes[22] = 0x0a;
        bytes[23] = 0x00;
        bytes[24..28].copy_from_slice(&0x0005_1003u32.to_le_bytes());
        bytes.pop();
        bytes.extend_from_slice(b"Samba 4.17\0");
        let f = round_trip(&bytes);
        assert_eq!(
            (f.command_code(), f.command()),
            (0x0f, "LocalMasterAnnouncement")
        );
        let BrowserFrame::LocalMasterAnnouncement(a) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            (a.os_major, a.os_minor, a.server_type),
            (10, 0, 0x0005_1003)
        );
        assert_eq!(a.comment, "Samba 4.17");
        assert!(ServerType(a.server_type).contains(ServerType::MASTER_BROWSER));
    }

    #[test]
    fn domain_announcement_keeps_uninitialised_bytes() {
        let bytes = [
            0x0c, 0x00, 0x60, 0xea, 0x00, 0x00, b'W', b'O', b'R', b'K', b'G', b'R', b'O', b'U',
            b'P', 0, 0, 0, 0, 0, 0, 0, 0x03, 0x0a, 0x00, 0x10, 0x00, 0x80, 0xde, 0xad, 0xbe, 0xef,
            b'F', b'R', b'E', b'D', 0,
        ];
        let f = round_trip(&bytes);
        assert_eq!(f.command(), "DomainAnnouncement");
        let BrowserFrame::DomainAnnouncement(d) = f else {
            panic!("{f:?}")
        };
        assert_eq!(
            d,
            DomainAnnouncement {
                periodicity_ms: 60_000,
                machine_group: "WORKGROUP".into(),
                browser_version_major: 0xde,
                browser_version_minor: 0xad,
                signature: 0xefbe,
                local_master_name: "FRED".into(),
                ..DomainAnnouncement::default()
            }
        );
        assert_eq!(server_type_names(d.server_type), ["NT", "DOMAIN_ENUM"]);
    }

    #[test]
    fn garbage_after_name_nul_and_trailing_bytes() {
        let mut bytes = HOST_ANNOUNCEMENT.to_vec();
        bytes[12] = b'X';
        bytes[14] = 0xff;
        bytes.extend_from_slice(&[0x00, 0x99]);
        let f = round_trip(&bytes);
        let BrowserFrame::HostAnnouncement(a) = f else {
            panic!("{f:?}")
        };
        assert_eq!(a.server_name, "FRED");
        assert_eq!(a.server_name_padding, [0, b'X', 0, 0xff]);
        assert_eq!(a.trailing, [0x00, 0x99]);
        // Trailing bytes after every other frame type.
        round_trip(&[0x02, 0x07, b'A', 0, 1, 2]);
        round_trip(&[0x09, 0x04, 0x01, 0x00, 0x00, 0x00, 0xaa]);
        round_trip(&[0x0a, 0x00, 0x01, 0x00, 0x00, 0x00, b'X', 0]);
        round_trip(&[0x0b, 0, 0]);
        round_trip(&[0x0d, b'M', 0, b'Z']);
        round_trip(&[0x0e, 0x02, 0x00, 0x00]);
        round_trip(&[0x08, 0x00, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0xee]);
    }

    #[test]
    fn comment_without_terminator() {
        let mut bytes = HOST_ANNOUNCEMENT.to_vec();
        bytes.pop();
        bytes.extend_from_slice(b"cut off");
        let f = round_trip(&bytes);
        let BrowserFrame::HostAnnouncement(a) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(a.comment, "cut off");
        assert!(a.comment_unterminated);
        // No comment at all: 32 bytes.
        let f = round_trip(&HOST_ANNOUNCEMENT[..32]);
        let BrowserFrame::HostAnnouncement(a) = &f else {
            panic!("{f:?}")
        };
        assert_eq!((a.comment.as_str(), a.comment_unterminated), ("", true));
        // Same for the LMB name of a DomainAnnouncement.
        let mut d = HOST_ANNOUNCEMENT[..32].to_vec();
        d[0] = 0x0c;
        d.extend_from_slice(b"FRED");
        let f = round_trip(&d);
        let BrowserFrame::DomainAnnouncement(d) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(d.local_master_name, "FRED");
        assert!(d.local_master_name_unterminated);
    }

    #[test]
    fn latin1_names() {
        let f = round_trip(&[0x0d, b'K', 0xd6, b'L', b'N', 0]);
        let BrowserFrame::MasterAnnouncement(m) = f else {
            panic!()
        };
        assert_eq!(m.master_name, "KÖLN");
    }

    #[test]
    fn unknown_opcodes() {
        let f = round_trip(&[0x03, 1, 2, 3]);
        assert_eq!(
            f,
            BrowserFrame::Unknown(UnknownFrame {
                opcode: 3,
                data: vec![1, 2, 3]
            })
        );
        assert_eq!((f.command_code(), f.command()), (3, "Unknown"));
        round_trip(&[0xff]);
        let bad = BrowserFrame::Unknown(UnknownFrame {
            opcode: 0x0e,
            data: vec![1],
        });
        assert!(matches!(
            bad.to_bytes(),
            Err(Error::Emit {
                field: "opcode",
                ..
            })
        ));
    }

    fn invalid_at(data: &[u8]) -> (&'static str, usize) {
        match BrowserFrame::parse(data) {
            Err(Error::Invalid { field, offset, .. }) => (field, offset),
            other => panic!("{other:?}"),
        }
    }

    fn truncated_at(data: &[u8]) -> (&'static str, usize) {
        match BrowserFrame::parse(data) {
            Err(Error::Truncated { field, offset, .. }) => (field, offset),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(truncated_at(&[]), ("opcode", 0));
        // Fixed parts cut short.
        assert_eq!(truncated_at(&HOST_ANNOUNCEMENT[..20]), ("ServerName", 6));
        assert_eq!(truncated_at(&HOST_ANNOUNCEMENT[..31]), ("Signature", 30));
        assert_eq!(truncated_at(&[0x0f]), ("UpdateCount", 1));
        let mut d = HOST_ANNOUNCEMENT[..25].to_vec();
        d[0] = 0x0c;
        assert_eq!(truncated_at(&d), ("ServerType", 24));
        assert_eq!(truncated_at(&[0x02]), ("Reserved", 1));
        assert_eq!(
            truncated_at(&[0x08, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("Unused", 10)
        );
        assert_eq!(truncated_at(&[0x09, 4, 1, 0, 0]), ("Token", 2));
        assert_eq!(truncated_at(&[0x0a, 1, 1, 0]), ("Token", 2));
        assert_eq!(truncated_at(&[0x0e]), ("Type", 1));
        // A 16-byte name field with no NUL.
        let mut h = HOST_ANNOUNCEMENT;
        h[6..22].copy_from_slice(b"SIXTEENCHARSNAME");
        assert_eq!(invalid_at(&h), ("ServerName", 6));
        let mut d = HOST_ANNOUNCEMENT;
        d[0] = 0x0c;
        d[6..22].copy_from_slice(b"SIXTEENCHARSNAME");
        assert_eq!(invalid_at(&d), ("MachineGroup", 6));
        // Mandatory terminators.
        assert_eq!(invalid_at(&[0x02, 0, b'F', b'R']), ("ResponseName", 2));
        assert_eq!(
            invalid_at(&[0x08, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'F']),
            ("ServerName", 14)
        );
        assert_eq!(invalid_at(&[0x0b, b'B', b'A']), ("BrowserToPromote", 1));
        assert_eq!(invalid_at(&[0x0b]), ("BrowserToPromote", 1));
        assert_eq!(invalid_at(&[0x0d, b'F']), ("MasterBrowserServerName", 1));
        // BackupServerCount larger than the names present, or a name cut off.
        assert_eq!(
            invalid_at(&[0x0a, 2, 1, 0, 0, 0, b'F', b'R', b'E', b'D', 0]),
            ("BackupServerList", 11)
        );
        assert_eq!(invalid_at(&[0x0a, 1, 1, 0, 0, 0]), ("BackupServerList", 6));
        assert_eq!(
            invalid_at(&[0x0a, 1, 1, 0, 0, 0, b'F', b'R']),
            ("BackupServerList", 6)
        );
    }

    fn emit_err(f: BrowserFrame) -> &'static str {
        let mut out = vec![0xAB];
        match f.emit(&mut out) {
            Err(Error::Emit { field, .. }) => {
                assert_eq!(out, [0xAB], "a failed emit leaves the buffer alone");
                field
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn emit_rejects_what_would_not_read_back() {
        let host = |a: Announcement| BrowserFrame::HostAnnouncement(a);
        let named = |n: &str| Announcement {
            server_name: n.into(),
            ..Announcement::default()
        };
        assert!(host(named("FIFTEEN_CHARS_X")).to_bytes().is_ok());
        assert_eq!(emit_err(host(named("SIXTEEN_CHARS_XY"))), "ServerName");
        assert_eq!(emit_err(host(named("Ωmega"))), "ServerName");
        assert_eq!(emit_err(host(named("A\0B"))), "ServerName");
        let padded = |pad: &[u8]| Announcement {
            server_name_padding: pad.to_vec(),
            ..named("FRED")
        };
        assert!(host(padded(&[1; 11])).to_bytes().is_ok());
        assert_eq!(emit_err(host(padded(&[1; 12]))), "ServerName");
        assert_eq!(emit_err(host(padded(&[1, 0]))), "ServerName");
        let cut = Announcement {
            comment_unterminated: true,
            trailing: vec![1],
            ..named("FRED")
        };
        assert_eq!(emit_err(host(cut)), "Comment");
        let d = DomainAnnouncement {
            machine_group: "A_VERY_LONG_GROUP".into(),
            ..DomainAnnouncement::default()
        };
        assert_eq!(
            emit_err(BrowserFrame::DomainAnnouncement(d)),
            "MachineGroup"
        );
        let r = GetBackupListResponse {
            count: 2,
            servers: vec!["A".into()],
            ..GetBackupListResponse::default()
        };
        assert_eq!(
            emit_err(BrowserFrame::GetBackupListResponse(r)),
            "BackupServerCount"
        );
        let m = MasterAnnouncement {
            master_name: "\0".into(),
            trailing: vec![],
        };
        assert_eq!(
            emit_err(BrowserFrame::MasterAnnouncement(m)),
            "MasterBrowserServerName"
        );
    }

    #[test]
    fn sender_limits() {
        let long = BrowserFrame::BecomeBackup(BecomeBackup {
            browser_to_promote: "SIXTEEN_CHARS_XY".into(),
            trailing: vec![],
        });
        // Emitted and read back as they are, but over the MS-BRWS limit for senders.
        assert_eq!(
            BrowserFrame::parse(&long.to_bytes().unwrap()).unwrap(),
            long
        );
        assert!(long.check_sender_limits().is_err());
        let a = Announcement {
            comment: "c".repeat(43),
            ..Announcement::default()
        };
        assert!(BrowserFrame::HostAnnouncement(a)
            .check_sender_limits()
            .is_err());
        assert!(BrowserFrame::parse(&HOST_ANNOUNCEMENT)
            .unwrap()
            .check_sender_limits()
            .is_ok());
    }

    #[test]
    fn server_type_and_criteria_names() {
        assert_eq!(server_type_names(0), Vec::<&str>::new());
        assert_eq!(server_type_names(ServerType::ALL).len(), 32);
        assert_eq!(
            ServerType(0x0005_1003).names(),
            [
                "WORKSTATION",
                "SERVER",
                "NT",
                "POTENTIAL_BROWSER",
                "MASTER_BROWSER"
            ]
        );
        assert_eq!(server_type_names(0x0800_0000), ["UNDEFINED_0x08000000"]);
        let c = ElectionCriteria(0x1401_0FAF);
        assert_eq!(c.os_names(), ["NT_WORKSTATION"]);
        assert_eq!(
            c.role_names(),
            [
                "RUNNING_BACKUP",
                "DOMAIN_CONTROLLER",
                "RUNNING_MASTER",
                "PREFERRED_MASTER",
                "WINS_CLIENT",
                "PDC"
            ]
        );
        assert_eq!(election_os_names(0x01), ["WFW"]);
    }

    /// An LM-layout announcement as Samba's `send_lm_announcement` builds it.
    fn lm_announcement(comment: &[u8]) -> Vec<u8> {
        let mut v = vec![0x01, 0x00, 0x03, 0x10, 0x01, 0x00, 0x06, 0x01, 0xd0, 0x02];
        v.extend_from_slice(b"FRED\0");
        v.extend_from_slice(comment);
        v
    }

    #[test]
    fn lanman_lm_layout() {
        let bytes = lm_announcement(b"Samba 4.17\0");
        let f = lanman_round_trip(&bytes);
        assert_eq!(
            (f.command_code(), f.command()),
            (0x01, "LanmanAnnouncement")
        );
        let LanmanFrame::Announcement(a) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(
            *a,
            LanmanAnnouncement {
                opcode: 1,
                server_type: 0x0001_1003,
                os_major: 6,
                os_minor: 1,
                periodicity_s: 720,
                server_name: "FRED".into(),
                comment: "Samba 4.17".into(),
                ..LanmanAnnouncement::default()
            }
        );
        // Long enough for the heuristic, but no signature at 30..31: still the LM layout.
        let long = lm_announcement(b"Samba 4.17.12-Debian file server\0");
        assert!(long.len() >= 33);
        assert!(matches!(
            lanman_round_trip(&long),
            LanmanFrame::Announcement(_)
        ));
        // Opcodes 0x0C and 0x0F in the LM layout; comment without NUL.
        let mut d = lm_announcement(b"WORKGROUP");
        d[0] = 0x0c;
        let f = lanman_round_trip(&d);
        assert_eq!(
            (f.command_code(), f.command()),
            (0x0c, "LanmanAnnouncement")
        );
        let LanmanFrame::Announcement(a) = &f else {
            panic!("{f:?}")
        };
        assert!(a.comment_unterminated);
        let mut l = lm_announcement(b"\0\x01");
        l[0] = 0x0f;
        assert_eq!(lanman_round_trip(&l).command_code(), 0x0f);
    }

    #[test]
    fn lanman_heuristic_picks_browse_layout() {
        // MS-BRWS <9>: Windows servers send the §2.2.1 layout on LANMAN.
        let f = lanman_round_trip(&HOST_ANNOUNCEMENT);
        assert_eq!(f.command(), "HostAnnouncement");
        assert_eq!(
            f,
            LanmanFrame::Browser(BrowserFrame::parse(&HOST_ANNOUNCEMENT).unwrap())
        );
        // 32 bytes is too short for the heuristic: read as LM (and the name has no NUL there).
        assert!(!looks_like_browse_layout(&HOST_ANNOUNCEMENT[..32]));
        // Other opcodes are kept whole.
        let f = lanman_round_trip(&[0x02, 0x00, b'F', 0]);
        assert_eq!((f.command_code(), f.command()), (2, "Unknown"));
    }

    #[test]
    fn lanman_malformed_and_emit_errors() {
        assert!(matches!(
            LanmanFrame::parse(&[]),
            Err(Error::Truncated {
                field: "opcode",
                ..
            })
        ));
        assert!(matches!(
            LanmanFrame::parse(&lm_announcement(b"")[..9]),
            Err(Error::Truncated {
                field: "Periodicity",
                offset: 8,
                ..
            })
        ));
        assert!(matches!(
            LanmanFrame::parse(&lm_announcement(b"")[..12]),
            Err(Error::Invalid {
                field: "ServerName",
                offset: 10,
                ..
            })
        ));
        let mut h = HOST_ANNOUNCEMENT;
        h[6..22].copy_from_slice(b"SIXTEENCHARSNAME");
        assert!(matches!(
            LanmanFrame::parse(&h),
            Err(Error::Invalid {
                field: "ServerName",
                offset: 6,
                ..
            })
        ));

        // LM values whose bytes 30..31 would be 55 AA cannot be told from the MS-BRWS layout.
        // The comment starts at offset 11 (empty server name), so its bytes 19..20 land there.
        let clash = LanmanFrame::Announcement(LanmanAnnouncement {
            comment: latin1(b"0123456789abcdefghi\x55\xaaz"),
            ..LanmanAnnouncement::default()
        });
        assert!(clash.to_bytes().is_err());
        let op = LanmanFrame::Announcement(LanmanAnnouncement {
            opcode: 0x02,
            ..LanmanAnnouncement::default()
        });
        assert!(op.to_bytes().is_err());
        // MS-BRWS frames on LANMAN must satisfy the heuristic to read back.
        let mut a = Announcement::default();
        assert!(
            LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a.clone()))
                .to_bytes()
                .is_ok()
        );
        a.signature = 0;
        assert!(LanmanFrame::Browser(BrowserFrame::HostAnnouncement(a))
            .to_bytes()
            .is_err());
        let req = BrowserFrame::ResetStateRequest(ResetStateRequest::default());
        assert!(LanmanFrame::Browser(req).to_bytes().is_err());
        let unk = LanmanFrame::Unknown(UnknownFrame {
            opcode: 0x0f,
            data: vec![],
        });
        assert!(unk.to_bytes().is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_field_names() {
        #[derive(serde::Serialize)]
        struct Wrapped<'a> {
            command_code: u8,
            command: &'static str,
            #[serde(flatten)]
            frame: &'a BrowserFrame,
        }
        let f = BrowserFrame::parse(&HOST_ANNOUNCEMENT).unwrap();
        let v = serde_json::to_value(Wrapped {
            command_code: f.command_code(),
            command: f.command(),
            frame: &f,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "command_code": 1, "command": "HostAnnouncement", "update_count": 0,
                "periodicity_ms": 720000, "server_name": "FRED", "os_major": 6, "os_minor": 1,
                "server_type": 0x11003, "browser_version_major": 15, "browser_version_minor": 1,
                "signature": 0xAA55, "comment": ""
            })
        );
        let mut odd = HOST_ANNOUNCEMENT[..32].to_vec();
        odd[12] = 7;
        let v = serde_json::to_value(BrowserFrame::parse(&odd).unwrap()).unwrap();
        assert_eq!(v["server_name_padding"], "0007");
        assert_eq!(v["comment_unterminated"], true);
        let v = serde_json::to_value(
            BrowserFrame::parse(&[0x0a, 1, 7, 0, 0, 0, b'A', 0, 0xff]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"count": 1, "token": 7, "servers": ["A"], "trailing": "ff"})
        );
        let v = serde_json::to_value(BrowserFrame::parse(&[0x42, 0xbe, 0xef]).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"data": "beef"}));
        let v = serde_json::to_value(LanmanFrame::parse(&lm_announcement(b"\0")).unwrap()).unwrap();
        assert_eq!(v["periodicity_s"], 720);
        assert!(v.get("opcode").is_none());
    }

    mod prop {
        use super::super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn text(max: usize) -> impl Strategy<Value = String> {
            vec(1u8..=255, 0..=max).prop_map(|b| latin1(&b))
        }

        fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
            vec(any::<u8>(), 0..=max)
        }

        /// A name for a 16-byte field and its padding (no trailing zero).
        fn fixed_name() -> impl Strategy<Value = (String, Vec<u8>)> {
            (0usize..=15)
                .prop_flat_map(|n| {
                    (
                        vec(1u8..=255, n),
                        vec(any::<u8>(), 0..=15 - n),
                        any::<bool>(),
                    )
                })
                .prop_map(|(name, mut pad, keep)| {
                    if !keep {
                        pad.clear();
                    }
                    while pad.last() == Some(&0) {
                        pad.pop();
                    }
                    (latin1(&name), pad)
                })
        }

        /// The last string of an announcement, its flag, and the trailing bytes.
        fn last_string() -> impl Strategy<Value = (String, bool, Vec<u8>)> {
            (text(50), any::<bool>(), bytes(6)).prop_map(|(s, unterminated, t)| {
                let t = if unterminated { Vec::new() } else { t };
                (s, unterminated, t)
            })
        }

        fn announcement() -> impl Strategy<Value = Announcement> {
            (
                (
                    any::<u8>(),
                    any::<u32>(),
                    fixed_name(),
                    any::<u8>(),
                    any::<u8>(),
                ),
                (
                    any::<u32>(),
                    any::<u8>(),
                    any::<u8>(),
                    any::<u16>(),
                    last_string(),
                ),
            )
                .prop_map(
                    |((uc, p, (n, pad), maj, min), (st, bvj, bvn, sig, (c, cu, t)))| Announcement {
                        update_count: uc,
                        periodicity_ms: p,
                        server_name: n,
                        server_name_padding: pad,
                        os_major: maj,
                        os_minor: min,
                        server_type: st,
                        browser_version_major: bvj,
                        browser_version_minor: bvn,
                        signature: sig,
                        comment: c,
                        comment_unterminated: cu,
                        trailing: t,
                    },
                )
        }

        fn domain_announcement() -> impl Strategy<Value = DomainAnnouncement> {
            (announcement(), any::<bool>()).prop_map(|(a, flip)| DomainAnnouncement {
                update_count: a.update_count,
                periodicity_ms: a.periodicity_ms,
                machine_group: a.server_name,
                machine_group_padding: a.server_name_padding,
                browser_config_version_major: a.os_major,
                browser_config_version_minor: if flip { a.os_minor } else { 0x0A },
                server_type: a.server_type,
                browser_version_major: a.browser_version_major,
                browser_version_minor: a.browser_version_minor,
                signature: a.signature,
                local_master_name: a.comment,
                local_master_name_unterminated: a.comment_unterminated,
                trailing: a.trailing,
            })
        }

        pub(super) fn frame() -> impl Strategy<Value = BrowserFrame> {
            prop_oneof![
                announcement().prop_map(BrowserFrame::HostAnnouncement),
                announcement().prop_map(BrowserFrame::LocalMasterAnnouncement),
                domain_announcement().prop_map(BrowserFrame::DomainAnnouncement),
                (any::<u8>(), text(20), bytes(6)).prop_map(
                    |(reserved, response_name, trailing)| {
                        BrowserFrame::AnnouncementRequest(AnnouncementRequest {
                            reserved,
                            response_name,
                            trailing,
                        })
                    }
                ),
                (
                    any::<u8>(),
                    any::<u32>(),
                    any::<u32>(),
                    any::<u32>(),
                    text(20),
                    bytes(6)
                )
                    .prop_map(
                        |(election_version, criteria, uptime_ms, unused, server_name, trailing)| {
                            BrowserFrame::RequestElection(RequestElection {
                                election_version,
                                criteria,
                                uptime_ms,
                                unused,
                                server_name,
                                trailing,
                            })
                        }
                    ),
                (any::<u8>(), any::<u32>(), bytes(6)).prop_map(|(count, token, trailing)| {
                    BrowserFrame::GetBackupListRequest(GetBackupListRequest {
                        count,
                        token,
                        trailing,
                    })
                }),
                (any::<u32>(), vec(text(16), 0..8), bytes(6)).prop_map(
                    |(token, servers, trailing)| {
                        BrowserFrame::GetBackupListResponse(GetBackupListResponse {
                            count: servers.len() as u8,
                            token,
                            servers,
                            trailing,
                        })
                    }
                ),
                (text(20), bytes(6)).prop_map(|(browser_to_promote, trailing)| {
                    BrowserFrame::BecomeBackup(BecomeBackup {
                        browser_to_promote,
                        trailing,
                    })
                }),
                (text(20), bytes(6)).prop_map(|(master_name, trailing)| {
                    BrowserFrame::MasterAnnouncement(MasterAnnouncement {
                        master_name,
                        trailing,
                    })
                }),
                (any::<u8>(), bytes(6)).prop_map(|(reset_type, trailing)| {
                    BrowserFrame::ResetStateRequest(ResetStateRequest {
                        reset_type,
                        trailing,
                    })
                }),
                (
                    any::<u8>().prop_filter("unknown opcode", |&o| opcode_name(o) == "Unknown"),
                    bytes(40)
                )
                    .prop_map(|(opcode, data)| BrowserFrame::Unknown(
                        UnknownFrame { opcode, data }
                    )),
            ]
        }

        fn lanman_frame() -> impl Strategy<Value = LanmanFrame> {
            prop_oneof![
                (
                    prop::sample::select(vec![0x01u8, 0x0C, 0x0F]),
                    (
                        any::<u8>(),
                        any::<u32>(),
                        any::<u8>(),
                        any::<u8>(),
                        any::<u16>()
                    ),
                    text(20),
                    last_string()
                )
                    .prop_map(
                        |(opcode, (uc, st, maj, min, p), server_name, (c, cu, t))| {
                            LanmanFrame::Announcement(LanmanAnnouncement {
                                opcode,
                                update_count: uc,
                                server_type: st,
                                os_major: maj,
                                os_minor: min,
                                periodicity_s: p,
                                server_name,
                                comment: c,
                                comment_unterminated: cu,
                                trailing: t,
                            })
                        }
                    ),
                // MS-BRWS announcements made to pass the heuristic, and any other frame.
                announcement().prop_map(|mut a| {
                    a.signature = SIGNATURE;
                    a.comment_unterminated = false;
                    LanmanFrame::Browser(BrowserFrame::LocalMasterAnnouncement(a))
                }),
                frame().prop_map(LanmanFrame::Browser),
                (any::<u8>(), bytes(40))
                    .prop_map(|(opcode, data)| LanmanFrame::Unknown(UnknownFrame { opcode, data })),
            ]
        }

        /// Byte strings that start with a likely opcode and often contain NULs.
        fn wire() -> impl Strategy<Value = Vec<u8>> {
            (
                prop_oneof![
                    prop::sample::select(vec![1u8, 2, 8, 9, 10, 11, 12, 13, 14, 15]),
                    any::<u8>()
                ],
                vec(
                    prop_oneof![Just(0u8), Just(0x55), Just(0xaa), any::<u8>()],
                    0..80,
                ),
            )
                .prop_map(|(op, mut rest)| {
                    rest.insert(0, op);
                    rest
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn emit_then_parse(f in frame()) {
                let bytes = f.to_bytes().unwrap();
                prop_assert_eq!(BrowserFrame::parse(&bytes).unwrap(), f);
            }

            #[test]
            fn parse_then_emit(data in wire()) {
                if let Ok(f) = BrowserFrame::parse(&data) {
                    prop_assert_eq!(f.to_bytes().unwrap(), data);
                }
            }

            #[test]
            fn parse_arbitrary_bytes(data in vec(any::<u8>(), 0..120)) {
                if let Ok(f) = BrowserFrame::parse(&data) {
                    prop_assert_eq!(f.to_bytes().unwrap(), data.clone());
                }
                if let Ok(f) = LanmanFrame::parse(&data) {
                    prop_assert_eq!(f.to_bytes().unwrap(), data);
                }
            }

            #[test]
            fn lanman_emit_then_parse(f in lanman_frame()) {
                // Values that the §6.7 heuristic would read as the other layout fail to emit.
                if let Ok(bytes) = f.to_bytes() {
                    prop_assert_eq!(LanmanFrame::parse(&bytes).unwrap(), f);
                }
            }

            #[test]
            fn lanman_parse_then_emit(data in wire()) {
                if let Ok(f) = LanmanFrame::parse(&data) {
                    prop_assert_eq!(f.to_bytes().unwrap(), data);
                }
            }
        }
    }
}
