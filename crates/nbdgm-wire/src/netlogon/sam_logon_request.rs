//! LOGON_SAM_LOGON_REQUEST (0x0012), NETLOGON_SAM_LOGON_REQUEST: MS-ADTS §6.3.1.6.

use super::fields::{pad, pad_len, put_strz, put_tail, put_utf16, read_tail, sid_string, strz};
use super::TOKEN;
use crate::error::{Error, Result};
use crate::reader::Reader;

/// LOGON_SAM_LOGON_REQUEST (0x0012), NETLOGON_SAM_LOGON_REQUEST in MS-ADTS §6.3.1.6: the
/// mailslot ping a client sends to `<domain>[1C]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonRequest {
    /// Number of times the user has repeated the request.
    pub request_count: u16,
    pub unicode_computer_name: String,
    /// UnicodeUserName: the account being asked about, often empty.
    pub user_name: String,
    /// The mailslot the reply goes to (OEM / Latin-1).
    pub mailslot_name: String,
    /// userAccountControl bits the account may have (Samba sends ACB_WSTRUST 0x80 for a
    /// machine account).
    pub allowable_account_control_bits: u32,
    /// The raw SID (MS-DTYP §2.4.2); DomainSidSize is its length. When non-empty it is
    /// preceded by padding to a 4-byte offset. See [`SamLogonRequest::domain_sid_string`].
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex::serialize"))]
    pub domain_sid: Vec<u8>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub nt_version: Option<u32>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub lmnt_token: Option<u16>,
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

impl SamLogonRequest {
    /// A request with no SID, RequestCount 0 and both tokens 0xFFFF.
    pub fn new(computer_name: &str, user_name: &str, mailslot_name: &str, nt_version: u32) -> Self {
        SamLogonRequest {
            request_count: 0,
            unicode_computer_name: computer_name.to_owned(),
            user_name: user_name.to_owned(),
            mailslot_name: mailslot_name.to_owned(),
            allowable_account_control_bits: 0,
            domain_sid: Vec::new(),
            nt_version: Some(nt_version),
            lmnt_token: Some(TOKEN),
            lm20_token: Some(TOKEN),
            trailing: Vec::new(),
        }
    }

    /// `S-1-5-21-...` when `domain_sid` is a well-formed SID.
    pub fn domain_sid_string(&self) -> Option<String> {
        sid_string(&self.domain_sid)
    }

    pub(super) fn parse_body(r: &mut Reader) -> Result<Self> {
        let mut q = SamLogonRequest {
            request_count: r.u16_le("RequestCount")?,
            unicode_computer_name: r.utf16z("UnicodeComputerName")?,
            user_name: r.utf16z("UnicodeUserName")?,
            mailslot_name: strz(r, "MailslotName")?,
            allowable_account_control_bits: r.u32_le("AllowableAccountControlBits")?,
            ..SamLogonRequest::default()
        };
        let sid_size = r.u32_le("DomainSidSize")?;
        if sid_size > 0 {
            r.skip(pad_len(r.pos(), 4), "DomainSid padding")?;
            let size = usize::try_from(sid_size).unwrap_or(usize::MAX);
            q.domain_sid = r.bytes(size, "DomainSid")?.to_vec();
        }
        (q.nt_version, q.lmnt_token, q.lm20_token) = read_tail(r)?;
        q.trailing = r.rest().to_vec();
        Ok(q)
    }

    pub(super) fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        m.extend_from_slice(&self.request_count.to_le_bytes());
        put_utf16(m, &self.unicode_computer_name, "UnicodeComputerName")?;
        put_utf16(m, &self.user_name, "UnicodeUserName")?;
        put_strz(m, &self.mailslot_name, "MailslotName")?;
        m.extend_from_slice(&self.allowable_account_control_bits.to_le_bytes());
        let size = u32::try_from(self.domain_sid.len())
            .map_err(|_| Error::emit("DomainSid", "too long"))?;
        m.extend_from_slice(&size.to_le_bytes());
        if size > 0 {
            pad(m, 4);
            m.extend_from_slice(&self.domain_sid);
        }
        put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}
