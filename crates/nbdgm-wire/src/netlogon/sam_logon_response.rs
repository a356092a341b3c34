//! LOGON_SAM_LOGON_RESPONSE, LOGON_SAM_PAUSE_RESPONSE and LOGON_SAM_USER_UNKNOWN
//! (0x0013–0x0015): NETLOGON_SAM_LOGON_RESPONSE_NT40 (MS-ADTS §6.3.1.7) and
//! NETLOGON_SAM_LOGON_RESPONSE, the V5 form (§6.3.1.8).

use super::dns_string::{dns_field, put_dns_string, Compressor, WireLayout};
use super::fields::{put_tail, put_utf16, read_tail};
use super::{nt_version, Guid, TAIL_LEN, V5_MIN_LEN};
use crate::error::Result;
use crate::reader::{put_utf16z, Reader};
use std::net::Ipv4Addr;

/// LOGON_SAM_LOGON_RESPONSE (0x0013), LOGON_SAM_PAUSE_RESPONSE (0x0014) and
/// LOGON_SAM_USER_UNKNOWN (0x0015): NETLOGON_SAM_LOGON_RESPONSE_NT40 (MS-ADTS §6.3.1.7),
/// or NETLOGON_SAM_LOGON_RESPONSE (§6.3.1.8) when `v5` is present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonResponse {
    /// NetBIOS name of the DC (Samba and Windows NT send it as `\\NAME`).
    pub unicode_logon_server: String,
    /// UnicodeUserName copied from the request.
    pub user_name: String,
    pub unicode_domain_name: String,
    /// The V5 fields; their JSON keys sit beside the others.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub v5: Option<SamLogonResponseV5>,
    /// 1 in the NT 4.0 form, 3 (V1 | V5) in the V5 form.
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

/// The fields NETLOGON_SAM_LOGON_RESPONSE adds after UnicodeDomainName.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonResponseV5 {
    pub domain_guid: Guid,
    /// Always the null GUID (Samba: zero_uuid; MS-ADTS §6.3.3.2 calls it SiteGuid).
    pub null_guid: Guid,
    /// DnsForestName (compressed UTF-8).
    pub forest: String,
    /// DnsDomainName.
    pub dns_domain: String,
    /// DnsHostName.
    pub dns_host_name: String,
    /// DcIpAddress, read in network order as MS-ADTS says (RFC 791). Samba's NDR code writes
    /// it as a little-endian integer, which shows reversed here.
    pub dc_ip_address: Ipv4Addr,
    /// DS_FLAG bits ([`ds_flag`]).
    pub flags: u32,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub wire: WireLayout,
}

impl Default for SamLogonResponseV5 {
    /// Null GUIDs, empty names, 0.0.0.0, no flags.
    fn default() -> Self {
        SamLogonResponseV5 {
            domain_guid: Guid::NULL,
            null_guid: Guid::NULL,
            forest: String::new(),
            dns_domain: String::new(),
            dns_host_name: String::new(),
            dc_ip_address: Ipv4Addr::UNSPECIFIED,
            flags: 0,
            wire: WireLayout::default(),
        }
    }
}

impl SamLogonResponse {
    /// The UTF-16 fields, in wire order.
    const UTF16_FIELDS: [&'static str; 3] =
        ["UnicodeLogonServer", "UnicodeUserName", "UnicodeDomainName"];

    pub(super) fn parse_body(r: &mut Reader) -> Result<Self> {
        let start = r.pos();
        let mut p = SamLogonResponse {
            unicode_logon_server: r.utf16z("UnicodeLogonServer")?,
            user_name: r.utf16z("UnicodeUserName")?,
            unicode_domain_name: r.utf16z("UnicodeDomainName")?,
            ..SamLogonResponse::default()
        };
        let utf16_end = r.pos();
        let data = r.buf();
        let end_version = data
            .len()
            .checked_sub(TAIL_LEN)
            .and_then(|i| data.get(i..i + 4))
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if r.remaining() >= V5_MIN_LEN && end_version & nt_version::V5 != 0 {
            let domain_guid = Guid(r.array("DomainGuid")?);
            let null_guid = Guid(r.array("NullGuid")?);
            let mut wire = WireLayout::default();
            let forest = dns_field(r, "DnsForestName", &mut wire)?;
            let dns_domain = dns_field(r, "DnsDomainName", &mut wire)?;
            let dns_host_name = dns_field(r, "DnsHostName", &mut wire)?;
            // The compressed strings may point into the UTF-16 ones: keep their bytes if
            // their text would not give them back.
            let mut again = Vec::new();
            for text in p.utf16_strings() {
                put_utf16z(&mut again, text);
            }
            let raw = data.get(start..utf16_end).unwrap_or_default();
            if again != raw {
                let mut rest = Reader::new(raw);
                for field in Self::UTF16_FIELDS {
                    let from = rest.pos();
                    rest.utf16z(field)?;
                    wire.strings
                        .push(raw.get(from..rest.pos()).unwrap_or_default().to_vec());
                }
            }
            p.v5 = Some(SamLogonResponseV5 {
                domain_guid,
                null_guid,
                forest,
                dns_domain,
                dns_host_name,
                dc_ip_address: Ipv4Addr::from(r.array::<4>("DcIpAddress")?),
                flags: r.u32_le("Flags")?,
                wire,
            });
        }
        (p.nt_version, p.lmnt_token, p.lm20_token) = read_tail(r)?;
        p.trailing = r.rest().to_vec();
        Ok(p)
    }

    fn utf16_strings(&self) -> [&str; 3] {
        [
            &self.unicode_logon_server,
            &self.user_name,
            &self.unicode_domain_name,
        ]
    }

    pub(super) fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        for (i, (text, field)) in self
            .utf16_strings()
            .into_iter()
            .zip(Self::UTF16_FIELDS)
            .enumerate()
        {
            match self.v5.as_ref().and_then(|v5| v5.wire.utf16_for(i, text)) {
                Some(raw) => m.extend_from_slice(raw),
                None => put_utf16(m, text, field)?,
            }
        }
        if let Some(v5) = &self.v5 {
            m.extend_from_slice(&v5.domain_guid.0);
            m.extend_from_slice(&v5.null_guid.0);
            let mut comp = Compressor::default();
            put_dns_string(m, &v5.forest, v5.wire.get(0), &mut comp, "DnsForestName")?;
            put_dns_string(
                m,
                &v5.dns_domain,
                v5.wire.get(1),
                &mut comp,
                "DnsDomainName",
            )?;
            put_dns_string(
                m,
                &v5.dns_host_name,
                v5.wire.get(2),
                &mut comp,
                "DnsHostName",
            )?;
            m.extend_from_slice(&v5.dc_ip_address.octets());
            m.extend_from_slice(&v5.flags.to_le_bytes());
        }
        put_tail(m, self.nt_version, self.lmnt_token, self.lm20_token)?;
        m.extend_from_slice(&self.trailing);
        Ok(())
    }
}
