//! LOGON_PRIMARY_RESPONSE (0x000C), NETLOGON_PRIMARY_RESPONSE: MS-ADTS §6.3.1.5.

use super::fields::{pad, put_strz, put_tail, put_utf16, read_tail, strz};
use crate::error::{Error, Result};
use crate::reader::Reader;

/// LOGON_PRIMARY_RESPONSE (0x000C), NETLOGON_PRIMARY_RESPONSE in MS-ADTS §6.3.1.5: the PDC's
/// answer. An old PDC may send only `primary_dc_name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrimaryResponse {
    /// OEM (Latin-1 here) NetBIOS name of the PDC.
    pub primary_dc_name: String,
    /// UTF-16, after padding to an even offset.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unicode_primary_dc_name: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unicode_domain_name: Option<String>,
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

impl PrimaryResponse {
    pub(super) fn parse_body(r: &mut Reader) -> Result<Self> {
        let mut p = PrimaryResponse {
            primary_dc_name: strz(r, "PrimaryDCName")?,
            ..PrimaryResponse::default()
        };
        // The Unicode part is there when a UTF-16 terminator fits after the pad byte.
        if r.remaining() >= r.pos() % 2 + 2 {
            r.align(0, 2);
            p.unicode_primary_dc_name = Some(r.utf16z("UnicodePrimaryDCName")?);
            if r.remaining() >= 2 {
                p.unicode_domain_name = Some(r.utf16z("UnicodeDomainName")?);
                (p.nt_version, p.lmnt_token, p.lm20_token) = read_tail(r)?;
            }
        }
        p.trailing = r.rest().to_vec();
        Ok(p)
    }

    pub(super) fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        put_strz(m, &self.primary_dc_name, "PrimaryDCName")?;
        match (&self.unicode_primary_dc_name, &self.unicode_domain_name) {
            (Some(pdc), domain) => {
                pad(m, 2);
                put_utf16(m, pdc, "UnicodePrimaryDCName")?;
                if let Some(domain) = domain {
                    put_utf16(m, domain, "UnicodeDomainName")?;
                    put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
                } else if self.nt_version.is_some()
                    || self.lmnt_token.is_some()
                    || self.lm20_token.is_some()
                {
                    return Err(Error::emit(
                        "UnicodeDomainName",
                        "NtVersion and the tokens need it before them",
                    ));
                }
            }
            (None, None) => {
                if self.nt_version.is_some()
                    || self.lmnt_token.is_some()
                    || self.lm20_token.is_some()
                {
                    return Err(Error::emit(
                        "UnicodePrimaryDCName",
                        "NtVersion and the tokens need it before them",
                    ));
                }
            }
            (None, Some(_)) => {
                return Err(Error::emit(
                    "UnicodePrimaryDCName",
                    "UnicodeDomainName needs it before it",
                ));
            }
        }
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}
