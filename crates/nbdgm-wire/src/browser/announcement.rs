//! HostAnnouncement (0x01), LocalMasterAnnouncement (0x0F), DomainAnnouncement (0x0C),
//! AnnouncementRequest (0x02) and MasterAnnouncement (0x0D): MS-BRWS §2.2.1, §2.2.10,
//! §2.2.7, §2.2.2, §2.2.8.

use super::fields::{fixed_name, last_string, put_fixed_name, put_last_string};
use super::{ServerType, BROWSER_VERSION_MAJOR, BROWSER_VERSION_MINOR, SIGNATURE};
use crate::error::Result;
use crate::reader::Reader;

/// HostAnnouncement (0x01) and LocalMasterAnnouncement (0x0F), MS-BRWS §2.2.1 and §2.2.10.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Announcement {
    /// Sent as 0, ignored.
    pub update_count: u8,
    pub periodicity_ms: u32,
    /// Up to the first NUL of the 16-byte field (at most 15 bytes), or all 16 bytes when
    /// `server_name_unterminated`.
    pub server_name: String,
    /// The 16-byte field held 16 name bytes and no NUL (Samba with a 16-character name;
    /// docs/peers.md). Emit writes it back the same way.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::is_false"))]
    pub server_name_unterminated: bool,
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
            server_name_unterminated: false,
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

/// DomainAnnouncement (0x0C), MS-BRWS §2.2.7: the announcement layout with other meanings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DomainAnnouncement {
    pub update_count: u8,
    pub periodicity_ms: u32,
    /// Workgroup or domain, up to the first NUL of the 16-byte field (all 16 bytes when
    /// `machine_group_unterminated`).
    pub machine_group: String,
    /// The 16-byte field held 16 name bytes and no NUL (docs/peers.md).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "crate::is_false"))]
    pub machine_group_unterminated: bool,
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
            machine_group_unterminated: false,
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

/// The layout HostAnnouncement, LocalMasterAnnouncement (MS-BRWS §2.2.1) and
/// DomainAnnouncement (§2.2.7) share, whatever each calls its fields: UpdateCount,
/// Periodicity, a 16-byte name, two version bytes, ServerType, BrowserVersionMajor/Minor,
/// Signature, then a final string that may run to the end of the packet.
struct Layout<S, B> {
    update_count: u8,
    periodicity_ms: u32,
    name: S,
    name_unterminated: bool,
    name_padding: B,
    version: [u8; 2],
    server_type: u32,
    browser_version: [u8; 2],
    signature: u16,
    last: S,
    last_unterminated: bool,
    trailing: B,
}

/// A frame's names for the fields [`Layout`] reads and writes, for errors.
struct FieldNames {
    name: &'static str,
    version: [&'static str; 2],
    last: &'static str,
}

const ANNOUNCEMENT_FIELDS: FieldNames = FieldNames {
    name: "ServerName",
    version: ["OSVersionMajor", "OSVersionMinor"],
    last: "Comment",
};

const DOMAIN_FIELDS: FieldNames = FieldNames {
    name: "MachineGroup",
    version: ["BrowserConfigVersionMajor", "BrowserConfigVersionMinor"],
    last: "LocalMasterBrowserName",
};

impl Layout<String, Vec<u8>> {
    fn parse(r: &mut Reader<'_>, names: &FieldNames) -> Result<Self> {
        let update_count = r.u8("UpdateCount")?;
        let periodicity_ms = r.u32_le("Periodicity")?;
        let fixed = fixed_name(r, names.name)?;
        let version = [r.u8(names.version[0])?, r.u8(names.version[1])?];
        let server_type = r.u32_le("ServerType")?;
        let browser_version = [r.u8("BrowserVersionMajor")?, r.u8("BrowserVersionMinor")?];
        let signature = r.u16_le("Signature")?;
        let (last, last_unterminated) = last_string(r);
        Ok(Layout {
            update_count,
            periodicity_ms,
            name: fixed.name,
            name_unterminated: fixed.unterminated,
            name_padding: fixed.padding,
            version,
            server_type,
            browser_version,
            signature,
            last,
            last_unterminated,
            trailing: r.rest().to_vec(),
        })
    }
}

impl Layout<&str, &[u8]> {
    fn emit(&self, out: &mut Vec<u8>, names: &FieldNames) -> Result<()> {
        out.push(self.update_count);
        out.extend_from_slice(&self.periodicity_ms.to_le_bytes());
        put_fixed_name(
            out,
            self.name,
            self.name_padding,
            self.name_unterminated,
            names.name,
        )?;
        out.extend_from_slice(&self.version);
        out.extend_from_slice(&self.server_type.to_le_bytes());
        out.extend_from_slice(&self.browser_version);
        out.extend_from_slice(&self.signature.to_le_bytes());
        put_last_string(
            out,
            self.last,
            self.last_unterminated,
            self.trailing,
            names.last,
        )
    }
}

impl Announcement {
    pub(super) fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        let l = Layout::parse(r, &ANNOUNCEMENT_FIELDS)?;
        Ok(Announcement {
            update_count: l.update_count,
            periodicity_ms: l.periodicity_ms,
            server_name: l.name,
            server_name_unterminated: l.name_unterminated,
            server_name_padding: l.name_padding,
            os_major: l.version[0],
            os_minor: l.version[1],
            server_type: l.server_type,
            browser_version_major: l.browser_version[0],
            browser_version_minor: l.browser_version[1],
            signature: l.signature,
            comment: l.last,
            comment_unterminated: l.last_unterminated,
            trailing: l.trailing,
        })
    }

    pub(super) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        Layout {
            update_count: self.update_count,
            periodicity_ms: self.periodicity_ms,
            name: self.server_name.as_str(),
            name_unterminated: self.server_name_unterminated,
            name_padding: self.server_name_padding.as_slice(),
            version: [self.os_major, self.os_minor],
            server_type: self.server_type,
            browser_version: [self.browser_version_major, self.browser_version_minor],
            signature: self.signature,
            last: self.comment.as_str(),
            last_unterminated: self.comment_unterminated,
            trailing: self.trailing.as_slice(),
        }
        .emit(out, &ANNOUNCEMENT_FIELDS)
    }
}

impl DomainAnnouncement {
    pub(super) fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        let l = Layout::parse(r, &DOMAIN_FIELDS)?;
        Ok(DomainAnnouncement {
            update_count: l.update_count,
            periodicity_ms: l.periodicity_ms,
            machine_group: l.name,
            machine_group_unterminated: l.name_unterminated,
            machine_group_padding: l.name_padding,
            browser_config_version_major: l.version[0],
            browser_config_version_minor: l.version[1],
            server_type: l.server_type,
            browser_version_major: l.browser_version[0],
            browser_version_minor: l.browser_version[1],
            signature: l.signature,
            local_master_name: l.last,
            local_master_name_unterminated: l.last_unterminated,
            trailing: l.trailing,
        })
    }

    pub(super) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
        Layout {
            update_count: self.update_count,
            periodicity_ms: self.periodicity_ms,
            name: self.machine_group.as_str(),
            name_unterminated: self.machine_group_unterminated,
            name_padding: self.machine_group_padding.as_slice(),
            version: [
                self.browser_config_version_major,
                self.browser_config_version_minor,
            ],
            server_type: self.server_type,
            browser_version: [self.browser_version_major, self.browser_version_minor],
            signature: self.signature,
            last: self.local_master_name.as_str(),
            last_unterminated: self.local_master_name_unterminated,
            trailing: self.trailing.as_slice(),
        }
        .emit(out, &DOMAIN_FIELDS)
    }
}
