//! `nbdgm-wire`: a memory-safe codec for the NetBIOS datagram service and what runs on it.
//!
//! Layers (each module names its specification section):
//! - [`name`]: NetBIOS names (RFC 1001 §14, RFC 1002 §4.1)
//! - [`nbns`]: name-service packets (RFC 1002 §4.2), with a field view of the header
//!   ([`nbns::NbnsHeader`], §4.2.1.1)
//! - [`datagram`]: datagram-service packets (RFC 1002 §4.4), with a field view of the
//!   header ([`datagram::DatagramHeader`], §4.4.1)
//! - [`mailslot`]: SMB mailslot write (MS-MAIL §2.2.1)
//! - [`browser`]: browser frames (MS-BRWS §2.2) and LAN Manager announcements
//! - [`netlogon`]: NETLOGON mailslot messages (MS-ADTS §6.3.1) and the mailslot ping
//!   that locates domain controllers with them ([`netlogon::ping`], §6.3.5)
//! - [`messenger`]: WinPopup messages on `\MAILSLOT\MESSNGR`
//! - [`payload`]: dispatch of mailslot data to the application codecs by mailslot name
//! - [`text`]: escaping of network strings for logs and terminals (one function for all output)
//!
//! Parsing never panics; malformed input returns [`Error`]. With the `serde` feature
//! (on by default) the Repr types serialize with the field names of the JSON contract
//! in `docs/json-schema.md`.
#![forbid(unsafe_code)]

pub mod browser;
pub mod datagram;
pub mod error;
pub mod hex;
pub mod mailslot;
pub mod messenger;
pub mod name;
pub mod nbns;
pub mod netlogon;
pub mod payload;
pub mod reader;
pub mod text;

pub use error::{Error, Result};
pub use name::Name;

/// `#[serde(skip_serializing_if = "crate::is_false")]` for flags that are usually false.
#[cfg(feature = "serde")]
fn is_false(b: &bool) -> bool {
    !*b
}

/// The bytes `emit` appends to an empty buffer of `capacity`: every `to_bytes` in this crate.
fn emit_to_vec(capacity: usize, emit: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(capacity);
    emit(&mut v)?;
    Ok(v)
}
