//! LAN Manager announcements on `\MAILSLOT\LANMAN` (DIGEST §6.7; Samba
//! `send_lm_announcement`, Wireshark `dissect_mailslot_lanman`).

use super::fields::{last_string, put_last_string, put_strz, strz};
use super::{opcode, BrowserFrame, UnknownFrame, ANNOUNCEMENT_FIXED_LEN};
use crate::error::{Error, Result};
use crate::reader::Reader;

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

pub(super) fn is_lanman_announcement_opcode(op: u8) -> bool {
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
            LanmanFrame::Unknown(u) => u.emit_unless(
                is_lanman_announcement_opcode(u.opcode),
                "an Unknown frame cannot carry an announcement opcode",
                &[u.opcode],
                out,
            ),
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::emit_to_vec(0, |v| self.emit(v))
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
