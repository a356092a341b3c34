//! Types of the NBNS role's table operations (`wins_list`, `wins_add`, `wins_delete`;
//! docs/api.md "NBNS table"): the name database of RFC 1001 §15.1.1 as the operator
//! sees and changes it.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// Entries in one `wins_list` page unless `limit` says otherwise.
pub const WINS_PAGE: usize = 100;
/// Most entries in one `wins_list` page.
pub const WINS_PAGE_MAX: usize = 500;
/// Bytes of entries in one page at most (under [`crate::MAX_SERVER_LINE`]).
pub const WINS_PAGE_BYTES: usize = 192 * 1024;

/// Arguments of `wins_list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsListArgs {
    /// One interface only (default: every interface with the NBNS role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Arguments of `wins_add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsAddArgs {
    /// `NAME<xx>` (or `NAME<xx>.scope`).
    pub name: String,
    #[serde(default)]
    pub group: bool,
    /// One address, or several with `static`.
    pub addresses: Vec<Ipv4Addr>,
    /// Never expires and is defended against registrations (saved in the state file).
    #[serde(default, rename = "static")]
    pub is_static: bool,
    /// Seconds, for a dynamic entry (default: the role's `default_ttl_s`; clamped to
    /// `min_ttl_s..=max_ttl_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<IpAddr>,
}

/// Arguments of `wins_delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsDeleteArgs {
    pub name: String,
    /// Only this address of the name (default: the whole name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<IpAddr>,
}

/// One address of a [`WinsEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsMember {
    pub ip: Ipv4Addr,
    pub nb_flags: u16,
    /// B, P, M or H.
    pub ont: String,
    /// Granted TTL in seconds (0 for static names).
    pub ttl: u32,
    /// Seconds until removal unless refreshed (0 for static names).
    pub expires_in_s: u64,
}

/// One name of the table. `name` comes from the network: escape it before printing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsEntry {
    pub name: String,
    pub suffix: u8,
    pub group: bool,
    #[serde(rename = "static")]
    pub is_static: bool,
    /// `dynamic`, `config` or `admin`.
    pub origin: String,
    pub members: Vec<WinsMember>,
}

/// One interface's page of `wins_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsInterface {
    pub interface: Ipv4Addr,
    /// Names in the table.
    pub total: usize,
    pub entries: Vec<WinsEntry>,
    /// Where the next page starts; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

/// Result of `wins_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsListResult {
    pub interfaces: Vec<WinsInterface>,
}

/// Result of `wins_add` and `wins_delete`: the interfaces changed, and addresses
/// removed (delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsChangeResult {
    pub name: String,
    pub interfaces: Vec<Ipv4Addr>,
    #[serde(default)]
    pub removed: usize,
}
