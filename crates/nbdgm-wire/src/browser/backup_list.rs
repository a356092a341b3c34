//! GetBackupListRequest (0x09), GetBackupListResponse (0x0A) and BecomeBackup (0x0B):
//! MS-BRWS §2.2.4–§2.2.6.

use super::fields::{put_strz, strz};
use crate::error::{Error, Result};
use crate::reader::Reader;

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

impl GetBackupListResponse {
    pub(super) fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
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

    pub(super) fn emit_body(&self, out: &mut Vec<u8>) -> Result<()> {
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
