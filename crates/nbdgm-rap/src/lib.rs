//! A minimal, memory-safe SMB1 client for one job: fetch a browse list from a (local) master
//! browser with RAP `NetServerEnum2`, as an MS-BRWS backup browser does (MS-BRWS 3.3.6,
//! MS-RAP 3.2.5.x).
//!
//! The exchange, over NetBIOS session service on TCP 139 (RFC 1002):
//! 1. NBSS SESSION REQUEST to `SERVER<20>` (on "called name not present" / "insufficient
//!    resources" a fresh connection to `*SMBSERVER<20>`),
//! 2. SMB1 NEGOTIATE offering only `NT LM 0.12`, without extended security,
//! 3. anonymous SESSION SETUP ANDX (empty account, empty passwords),
//! 4. TREE CONNECT ANDX to `\\SERVER\IPC$`, service `?????`,
//! 5. TRANSACTION on `\PIPE\LANMAN`: RAP opcode 104 (`WrLehDz` / `B16BBDz`, level 1).
//!
//! Strings are sent as OEM (ASCII); received bytes ≥ 0x80 are decoded as Latin-1 (the
//! server's OEM code page is unknown). Every read is bounded in size ([`MAX_MESSAGE`] a
//! packet, [`MAX_READ_BYTES`] a connection) and by the overall [`Options::timeout`].
//! Parsers never panic: every field is bounds checked, and a reply decodes into at most
//! [`rap::MAX_ENTRIES`] entries and [`rap::MAX_DECODED_BYTES`] of strings, each cut at its
//! field's limit (a hostile master cannot make us allocate more).
//!
//! ```no_run
//! use nbdgm_rap::{net_server_enum2, Options, SV_TYPE_ALL};
//! use std::net::Ipv4Addr;
//! let list = net_server_enum2(
//!     Ipv4Addr::new(198, 51, 100, 10),
//!     "SAMBAA",
//!     "TESTGROUP",
//!     SV_TYPE_ALL,
//!     &Options::default(),
//! )
//! .unwrap();
//! for s in list {
//!     println!("{} {:#010x} {}", s.name, s.server_type, s.comment);
//! }
//! ```

#![forbid(unsafe_code)]

mod conn;
pub mod nbss;
pub mod rap;
pub mod server;
pub mod smb;

use std::net::Ipv4Addr;
use std::time::Duration;

pub use conn::MAX_READ_BYTES;
pub use rap::ServerInfo;

/// `ServerType` mask for all servers.
pub const SV_TYPE_ALL: u32 = 0xFFFF_FFFF;
/// `ServerType` for the list of workgroups/domains (SV_TYPE_DOMAIN_ENUM).
pub const SV_TYPE_DOMAIN_ENUM: u32 = 0x8000_0000;
/// `ServerType` bit: only the entries heard on the browser's own subnet.
pub const SV_TYPE_LOCAL_LIST_ONLY: u32 = 0x4000_0000;

/// Largest NBSS message accepted (the 17-bit NBSS length limit).
pub const MAX_MESSAGE: usize = 0x1_FFFF;

/// Settings of [`net_server_enum2`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Overall deadline for the whole exchange (connect included).
    pub timeout: Duration,
    /// Refuse ([`RapError::TooLarge`]) a reply with more entries than this.
    pub max_entries: usize,
    /// Our NetBIOS name (calling name `NAME<00>`; 1–15 characters, upper-cased).
    pub client_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(10),
            max_entries: 10_000,
            client_name: "NBDGM".into(),
        }
    }
}

/// An SMB error status from a reply header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmbStatus {
    /// NTSTATUS (the server set FLAGS2_32BIT_STATUS).
    Nt(u32),
    /// DOS error class and code.
    Dos { class: u8, code: u16 },
}

impl std::fmt::Display for SmbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SmbStatus::Nt(s) => {
                write!(f, "NTSTATUS {s:#010x}")?;
                if let Some(n) = smb::nt_status_name(s) {
                    write!(f, " ({n})")?;
                }
                Ok(())
            }
            SmbStatus::Dos { class, code } => write!(f, "DOS error class {class} code {code}"),
        }
    }
}

/// Errors of [`net_server_enum2`].
#[derive(Debug, thiserror::Error)]
pub enum RapError {
    /// A bad argument (name too long, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The TCP connection could not be opened.
    #[error("connect to {addr}:{port}: {source}")]
    Connect {
        addr: Ipv4Addr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The NBSS session request was refused (RFC 1002 4.3.4 error code, e.g. 0x80 "not
    /// listening on called name", 0x82 "called name not present", 0x83 "called name present, but insufficient resources").
    #[error("NetBIOS session to {called} refused: error {code:#04x} ({})", nbss::refusal_name(*.code))]
    SessionRefused { called: String, code: u8 },
    /// An SMB command failed.
    #[error("SMB {} failed: {status}", smb::command_name(*.command))]
    Smb { command: u8, status: SmbStatus },
    /// The RAP call returned a non-success Status word (e.g. 2114 "server service not
    /// started", 2184 "service not started / browser not running", 5 access denied).
    #[error("RAP NetServerEnum2 status {status} ({})", rap::status_name(*.status))]
    Rap { status: u16 },
    /// A reply that does not parse.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// A reply above a size or count limit.
    #[error("reply too large: {0}")]
    TooLarge(String),
    /// The overall deadline passed.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// Other I/O error on the established connection (reset, EOF, ...).
    #[error("I/O during {stage}: {source}")]
    Io {
        stage: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Fetch the browse list of `workgroup` from the master browser at `addr` (TCP 139),
/// whose NetBIOS name is `server_name`. `server_type` is the ServerType mask
/// ([`SV_TYPE_ALL`] for all servers, [`SV_TYPE_DOMAIN_ENUM`] for the workgroup list).
/// Blocking; bounded by `opts.timeout`.
pub fn net_server_enum2(
    addr: Ipv4Addr,
    server_name: &str,
    workgroup: &str,
    server_type: u32,
    opts: &Options,
) -> Result<Vec<ServerInfo>, RapError> {
    conn::run(
        addr,
        nbss::SESSION_PORT,
        server_name,
        workgroup,
        server_type,
        opts,
    )
}

/// [`net_server_enum2`] to a session service on another port than 139 (tests, a
/// responder on an unprivileged port).
pub fn net_server_enum2_port(
    addr: Ipv4Addr,
    port: u16,
    server_name: &str,
    workgroup: &str,
    server_type: u32,
    opts: &Options,
) -> Result<Vec<ServerInfo>, RapError> {
    conn::run(addr, port, server_name, workgroup, server_type, opts)
}
