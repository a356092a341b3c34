//! LOGON_PRIMARY_QUERY (0x0007), NETLOGON_LOGON_QUERY: MS-ADTS §6.3.1.4.

use super::fields::{pad, put_strz, put_tail, put_utf16, read_tail, strz};
use super::{nt_version, TOKEN};
use crate::error::{Error, Result};
use crate::reader::Reader;

/// LOGON_PRIMARY_QUERY (0x0007), NETLOGON_LOGON_QUERY in MS-ADTS §6.3.1.4: "who is the PDC",
/// sent to `<domain>[1B]`/`[1C]`; only the PDC answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrimaryQuery {
    /// OEM (Latin-1 here) NetBIOS name of the client.
    pub computer_name: String,
    /// The mailslot the reply goes to, e.g. `\MAILSLOT\NET\GETDC5F3`.
    pub mailslot_name: String,
    /// UTF-16, after padding to an even offset. Absent in the LAN Manager 2.0 form.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unicode_computer_name: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub nt_version: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lmnt_token: Option<u16>,
    /// The only field after `mailslot_name` in the LAN Manager 2.0 form.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lm20_token: Option<u16>,
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Vec::is_empty",
            serialize_with = "crate::hex::serialize"
        )
    )]
    pub trailing: Vec<u8>,
}

impl PrimaryQuery {
    /// The NT form Samba's client sends: the Unicode name repeated, NtVersion 1, both tokens 0xFFFF.
    pub fn new(computer_name: &str, mailslot_name: &str) -> Self {
        PrimaryQuery {
            computer_name: computer_name.to_owned(),
            mailslot_name: mailslot_name.to_owned(),
            unicode_computer_name: Some(computer_name.to_owned()),
            nt_version: Some(nt_version::V1),
            lmnt_token: Some(TOKEN),
            lm20_token: Some(TOKEN),
            trailing: Vec::new(),
        }
    }

    pub(super) fn parse_body(r: &mut Reader) -> Result<Self> {
        let mut q = PrimaryQuery {
            computer_name: strz(r, "ComputerName")?,
            mailslot_name: strz(r, "MailslotName")?,
            ..PrimaryQuery::default()
        };
        match r.remaining() {
            0 | 1 => {}
            2 => q.lm20_token = Some(r.u16_le("Lm20Token")?),
            _ => {
                r.align(0, 2);
                q.unicode_computer_name = Some(r.utf16z("UnicodeComputerName")?);
                (q.nt_version, q.lmnt_token, q.lm20_token) = read_tail(r)?;
            }
        }
        q.trailing = r.rest().to_vec();
        Ok(q)
    }

    pub(super) fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        put_strz(m, &self.computer_name, "ComputerName")?;
        put_strz(m, &self.mailslot_name, "MailslotName")?;
        match &self.unicode_computer_name {
            Some(name) => {
                pad(m, 2);
                put_utf16(m, name, "UnicodeComputerName")?;
                put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
            }
            None => {
                if self.nt_version.is_some() || self.lmnt_token.is_some() {
                    return Err(Error::emit(
                        "UnicodeComputerName",
                        "NtVersion and LmNtToken need UnicodeComputerName before them",
                    ));
                }
                if let Some(t) = self.lm20_token {
                    m.extend_from_slice(&t.to_le_bytes());
                }
            }
        }
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}
