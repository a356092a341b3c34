//! LOGON_SAM_LOGON_RESPONSE_EX, LOGON_SAM_PAUSE_RESPONSE_EX and LOGON_SAM_USER_UNKNOWN_EX
//! (0x0017–0x0019): NETLOGON_SAM_LOGON_RESPONSE_EX, MS-ADTS §6.3.1.9.

use super::dc_sock_addr::sockaddr_size_at;
use super::dns_string::{dns_field, put_dns_string, Compressor, WireLayout};
use super::{nt_version, DcSockAddr, Guid, AF_INET, SOCKADDR_MIN_LEN, TAIL_LEN, TOKEN};
use crate::error::{Error, Result};
use crate::reader::Reader;
use std::net::Ipv4Addr;

/// LOGON_SAM_LOGON_RESPONSE_EX (0x0017), LOGON_SAM_PAUSE_RESPONSE_EX (0x0018) and
/// LOGON_SAM_USER_UNKNOWN_EX (0x0019): NETLOGON_SAM_LOGON_RESPONSE_EX, MS-ADTS §6.3.1.9.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SamLogonResponseEx {
    /// "MUST be set to 0".
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "super::is_zero"))]
    pub sbz: u16,
    /// DS_FLAG bits ([`ds_flag`]).
    pub flags: u32,
    pub domain_guid: Guid,
    /// DnsForestName; this and the next seven strings are compressed UTF-8.
    pub forest: String,
    /// DnsDomainName.
    pub dns_domain: String,
    /// DnsHostName.
    pub dns_host_name: String,
    /// NetbiosDomainName.
    pub netbios_domain: String,
    /// NetbiosComputerName.
    pub netbios_computer_name: String,
    /// UserName copied from the request.
    pub user_name: String,
    /// DcSiteName.
    pub dc_site_name: String,
    /// ClientSiteName.
    pub client_site_name: String,
    /// DcSockAddrSize + DcSockAddr: present when the request had 5EX_WITH_IP.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub dc_sock_addr: Option<DcSockAddr>,
    /// Present when the request had WITH_CLOSEST_SITE and the DC is 2008 or later.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub next_closest_site_name: Option<String>,
    /// V1 | V5EX (5), plus WITH_CLOSEST_SITE when `next_closest_site_name` is present.
    pub nt_version: u32,
    pub lmnt_token: u16,
    pub lm20_token: u16,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub wire: WireLayout,
}

impl Default for SamLogonResponseEx {
    /// Empty strings, no options, NtVersion V1 | V5EX and both tokens 0xFFFF.
    fn default() -> Self {
        SamLogonResponseEx {
            sbz: 0,
            flags: 0,
            domain_guid: Guid::NULL,
            forest: String::new(),
            dns_domain: String::new(),
            dns_host_name: String::new(),
            netbios_domain: String::new(),
            netbios_computer_name: String::new(),
            user_name: String::new(),
            dc_site_name: String::new(),
            client_site_name: String::new(),
            dc_sock_addr: None,
            next_closest_site_name: None,
            nt_version: nt_version::V1 | nt_version::V5EX,
            lmnt_token: TOKEN,
            lm20_token: TOKEN,
            wire: WireLayout::default(),
        }
    }
}

impl SamLogonResponseEx {
    /// The eight strings before DcSockAddr, in wire order, with their field names.
    fn strings(&self) -> [(&str, &'static str); 8] {
        [
            (&self.forest, "DnsForestName"),
            (&self.dns_domain, "DnsDomainName"),
            (&self.dns_host_name, "DnsHostName"),
            (&self.netbios_domain, "NetbiosDomainName"),
            (&self.netbios_computer_name, "NetbiosComputerName"),
            (&self.user_name, "UserName"),
            (&self.dc_site_name, "DcSiteName"),
            (&self.client_site_name, "ClientSiteName"),
        ]
    }

    pub(super) fn parse_body(r: &mut Reader) -> Result<Self> {
        let sbz = r.u16_le("Sbz")?;
        let flags = r.u32_le("Flags")?;
        let domain_guid = Guid(r.array("DomainGuid")?);
        let mut wire = WireLayout::default();
        let mut names: [String; 8] = Default::default();
        for (slot, field) in names.iter_mut().zip(EX_STRING_FIELDS) {
            *slot = dns_field(r, field, &mut wire)?;
        }
        let [forest, dns_domain, dns_host_name, netbios_domain, netbios_computer_name, user_name, dc_site_name, client_site_name] =
            names;
        // The last 8 bytes are NtVersion and the tokens; the optional fields fill the gap.
        let tail_at = r
            .buf()
            .len()
            .checked_sub(TAIL_LEN)
            .filter(|&t| t >= r.pos())
            .ok_or(Error::Truncated {
                field: "NtVersion",
                offset: r.pos(),
                need: TAIL_LEN,
                have: r.remaining(),
            })?;
        let mut dc_sock_addr = None;
        if let Some(size) = sockaddr_size_at(r.buf(), r.pos(), tail_at) {
            r.skip(1, "DcSockAddrSize")?;
            dc_sock_addr = Some(DcSockAddr {
                family: r.u16_le("sin_family")?,
                port: r.u16_le("sin_port")?,
                address: Ipv4Addr::from(r.array::<4>("sin_addr")?),
                sin_zero: r.bytes(size - SOCKADDR_MIN_LEN, "sin_zero")?.to_vec(),
            });
        }
        let mut next_closest_site_name = None;
        if r.pos() < tail_at {
            let at = r.pos();
            next_closest_site_name = Some(dns_field(r, "NextClosestSiteName", &mut wire)?);
            if r.pos() != tail_at {
                return Err(Error::invalid(
                    "NextClosestSiteName",
                    at,
                    "bytes between ClientSiteName and NtVersion are neither DcSockAddr nor one string",
                ));
            }
        }
        Ok(SamLogonResponseEx {
            sbz,
            flags,
            domain_guid,
            forest,
            dns_domain,
            dns_host_name,
            netbios_domain,
            netbios_computer_name,
            user_name,
            dc_site_name,
            client_site_name,
            dc_sock_addr,
            next_closest_site_name,
            nt_version: r.u32_le("NtVersion")?,
            lmnt_token: r.u16_le("LmNtToken")?,
            lm20_token: r.u16_le("Lm20Token")?,
            wire,
        })
    }

    pub(super) fn emit_body(&self, m: &mut Vec<u8>) -> Result<()> {
        m.extend_from_slice(&self.sbz.to_le_bytes());
        m.extend_from_slice(&self.flags.to_le_bytes());
        m.extend_from_slice(&self.domain_guid.0);
        let mut comp = Compressor::default();
        for (i, (s, field)) in self.strings().into_iter().enumerate() {
            put_dns_string(m, s, self.wire.get(i), &mut comp, field)?;
        }
        if let Some(sa) = &self.dc_sock_addr {
            if sa.family != AF_INET {
                return Err(Error::emit(
                    "sin_family",
                    "only AF_INET (2) can be recognised on receive",
                ));
            }
            let size = u8::try_from(SOCKADDR_MIN_LEN + sa.sin_zero.len())
                .map_err(|_| Error::emit("DcSockAddr", "longer than 255 bytes"))?;
            m.push(size);
            m.extend_from_slice(&sa.family.to_le_bytes());
            m.extend_from_slice(&sa.port.to_le_bytes());
            m.extend_from_slice(&sa.address.octets());
            m.extend_from_slice(&sa.sin_zero);
        }
        if let Some(s) = &self.next_closest_site_name {
            put_dns_string(m, s, self.wire.get(8), &mut comp, "NextClosestSiteName")?;
        }
        m.extend_from_slice(&self.nt_version.to_le_bytes());
        m.extend_from_slice(&self.lmnt_token.to_le_bytes());
        m.extend_from_slice(&self.lm20_token.to_le_bytes());
        Ok(())
    }
}

pub(super) const EX_STRING_FIELDS: [&str; 8] = [
    "DnsForestName",
    "DnsDomainName",
    "DnsHostName",
    "NetbiosDomainName",
    "NetbiosComputerName",
    "UserName",
    "DcSiteName",
    "ClientSiteName",
];
