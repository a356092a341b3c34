//! DcSockAddr of LOGON_SAM_LOGON_RESPONSE_EX: a SOCKADDR_IN (MS-ADTS §6.3.1.9).

use core::fmt;
use std::net::Ipv4Addr;

use super::{AF_INET, SOCKADDR_MIN_LEN};

/// DcSockAddr of the EX response: a SOCKADDR_IN (MS-ADTS §6.3.1.9). `sin_family` and
/// `sin_port` are little-endian, `sin_addr` is in network order. DcSockAddrSize on the wire
/// is `8 + sin_zero.len()` (16 in practice).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DcSockAddr {
    /// AF_INET (2); the only family this codec recognises on receive.
    pub family: u16,
    /// "SHOULD always be zero".
    pub port: u16,
    pub address: Ipv4Addr,
    /// Normally 8 zero bytes.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex::serialize"))]
    pub sin_zero: Vec<u8>,
}

impl DcSockAddr {
    /// The form a DC sends: AF_INET, port 0, eight zero bytes.
    pub fn new(address: Ipv4Addr) -> Self {
        DcSockAddr {
            family: AF_INET,
            port: 0,
            address,
            sin_zero: vec![0; 8],
        }
    }
}

/// Shows `address:port`.
impl fmt::Display for DcSockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.address, self.port)
    }
}

/// DcSockAddrSize when the byte at `pos` starts a DcSockAddr ending at or before `limit`:
/// a size of at least 8 followed by `sin_family` AF_INET.
pub(super) fn sockaddr_size_at(data: &[u8], pos: usize, limit: usize) -> Option<usize> {
    let size = usize::from(*data.get(pos)?);
    let family = data.get(pos + 1..pos + 3)?;
    (size >= SOCKADDR_MIN_LEN && pos + 1 + size <= limit && family == AF_INET.to_le_bytes())
        .then_some(size)
}
