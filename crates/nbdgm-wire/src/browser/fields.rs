//! Field helpers shared by the browser frames (MS-BRWS §2.2): 16-byte name fields,
//! NUL-terminated Latin-1 strings, the final string that may be cut off, and bit names.

use super::{FIXED_NAME_LEN, MAX_NAME_LEN};
use crate::error::{Error, Result};
use crate::reader::{latin1, to_latin1, Reader};

pub(super) fn bit_names(bits: u8, table: &[(u8, &'static str)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// A 16-byte name field read as nmbd reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FixedName {
    pub name: String,
    /// Bytes after the NUL, trailing zeros removed.
    pub padding: Vec<u8>,
    /// All 16 bytes are the name, no NUL: a peer leniency (docs/peers.md), what Samba 3's
    /// `push_string(p+5, name, 16, STR_ASCII|STR_TERMINATE)` writes for a 16-character name.
    pub unterminated: bool,
}

/// A 16-byte NUL-terminated, NUL-padded name field (DIGEST §8 item 24). A field of 16
/// non-NUL bytes is accepted as a 16-byte name with `unterminated` set (nmbd does the same).
pub(super) fn fixed_name(r: &mut Reader<'_>, field: &'static str) -> Result<FixedName> {
    let raw = r.bytes(FIXED_NAME_LEN, field)?;
    let Some(nul) = raw.iter().position(|&b| b == 0) else {
        return Ok(FixedName {
            name: latin1(raw),
            padding: Vec::new(),
            unterminated: true,
        });
    };
    let (name, after) = raw.split_at(nul);
    let after = after.get(1..).unwrap_or(&[]);
    let keep = after.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    Ok(FixedName {
        name: latin1(name),
        padding: after.get(..keep).unwrap_or(&[]).to_vec(),
        unterminated: false,
    })
}

/// A NUL-terminated string whose terminator is mandatory.
pub(super) fn strz(r: &mut Reader<'_>, field: &'static str) -> Result<String> {
    r.cstr(field).map(latin1)
}

/// The last string of the announcement layouts: its NUL may be cut off by the end of the
/// packet. Returns the string and whether it was unterminated.
pub(super) fn last_string(r: &mut Reader<'_>) -> (String, bool) {
    let (s, terminated) = r.cstr_lenient();
    (latin1(s), !terminated)
}

/// Latin-1 bytes of a string that is NUL-terminated on the wire (so it cannot contain NUL).
pub(super) fn text(s: &str, field: &'static str) -> Result<Vec<u8>> {
    let b = to_latin1(s, field)?;
    if b.contains(&0) {
        return Err(Error::emit(field, "string contains a NUL character"));
    }
    Ok(b)
}

/// Writes a 16-byte name field. `unterminated`: the name fills all 16 bytes with no NUL
/// (only as read from a peer; see [`FixedName::unterminated`]).
pub(super) fn put_fixed_name(
    out: &mut Vec<u8>,
    name: &str,
    padding: &[u8],
    unterminated: bool,
    field: &'static str,
) -> Result<()> {
    let b = text(name, field)?;
    if unterminated {
        if b.len() != FIXED_NAME_LEN || !padding.is_empty() {
            return Err(Error::emit(
                field,
                "an unterminated name must be exactly 16 bytes, without padding",
            ));
        }
        out.extend_from_slice(&b);
        return Ok(());
    }
    if b.len() > MAX_NAME_LEN {
        return Err(Error::emit(
            field,
            "name longer than 15 bytes for a 16-byte field",
        ));
    }
    if padding.len() > MAX_NAME_LEN - b.len() {
        return Err(Error::emit(
            field,
            "padding does not fit after the name and its NUL",
        ));
    }
    if padding.last() == Some(&0) {
        return Err(Error::emit(field, "padding must not end with a zero byte"));
    }
    out.extend_from_slice(&b);
    out.push(0);
    out.extend_from_slice(padding);
    out.resize(out.len() + (MAX_NAME_LEN - b.len() - padding.len()), 0);
    Ok(())
}

pub(super) fn put_strz(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    out.extend_from_slice(&text(s, field)?);
    out.push(0);
    Ok(())
}

/// The last string of an announcement followed by the trailing bytes.
pub(super) fn put_last_string(
    out: &mut Vec<u8>,
    s: &str,
    unterminated: bool,
    trailing: &[u8],
    field: &'static str,
) -> Result<()> {
    out.extend_from_slice(&text(s, field)?);
    if unterminated {
        if !trailing.is_empty() {
            return Err(Error::emit(
                field,
                "an unterminated string must end the frame",
            ));
        }
    } else {
        out.push(0);
        out.extend_from_slice(trailing);
    }
    Ok(())
}
