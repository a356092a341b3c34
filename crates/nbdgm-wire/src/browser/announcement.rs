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

impl Announcement {
    pub(super) fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
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

    pub(super) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
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
    pub(super) fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
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

    pub(super) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
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
