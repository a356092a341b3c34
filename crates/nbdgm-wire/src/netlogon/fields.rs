//! Field helpers shared by the NETLOGON messages (MS-ADTS §6.3.1): OEM and UTF-16
//! strings, alignment padding counted from the opcode, the NtVersion/LmNtToken/Lm20Token
//! tail, and SIDs (MS-DTYP §2.4.2).

use core::fmt;

use crate::error::{Error, Result};
use crate::reader::{latin1, put_utf16z, to_latin1, Reader};

pub(super) fn strz(r: &mut Reader, field: &'static str) -> Result<String> {
    Ok(latin1(r.cstr(field)?))
}

pub(super) fn put_strz(m: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    let bytes = to_latin1(s, field)?;
    if bytes.contains(&0) {
        return Err(Error::emit(field, "string contains a NUL"));
    }
    m.extend_from_slice(&bytes);
    m.push(0);
    Ok(())
}

pub(super) fn put_utf16(m: &mut Vec<u8>, s: &str, field: &'static str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::emit(field, "string contains a NUL"));
    }
    put_utf16z(m, s);
    Ok(())
}

pub(super) fn pad_len(pos: usize, align: usize) -> usize {
    (align - pos % align) % align
}

/// Zero bytes up to a multiple of `align` from the start of the message.
pub(super) fn pad(m: &mut Vec<u8>, align: usize) {
    m.resize(m.len() + pad_len(m.len(), align), 0);
}

/// NtVersion, LmNtToken, Lm20Token: each present when the one before it is and its bytes are.
pub(super) fn read_tail(r: &mut Reader) -> Result<(Option<u32>, Option<u16>, Option<u16>)> {
    let nt = if r.remaining() >= 4 {
        Some(r.u32_le("NtVersion")?)
    } else {
        None
    };
    let lmnt = if nt.is_some() && r.remaining() >= 2 {
        Some(r.u16_le("LmNtToken")?)
    } else {
        None
    };
    let lm20 = if lmnt.is_some() && r.remaining() >= 2 {
        Some(r.u16_le("Lm20Token")?)
    } else {
        None
    };
    Ok((nt, lmnt, lm20))
}

pub(super) fn put_tail(
    m: &mut Vec<u8>,
    nt: Option<u32>,
    lmnt: Option<u16>,
    lm20: Option<u16>,
) -> Result<()> {
    if (nt.is_none() && lmnt.is_some()) || (lmnt.is_none() && lm20.is_some()) {
        return Err(Error::emit(
            "NtVersion",
            "a token is present without the fields before it",
        ));
    }
    if let Some(v) = nt {
        m.extend_from_slice(&v.to_le_bytes());
    }
    for t in [lmnt, lm20].into_iter().flatten() {
        m.extend_from_slice(&t.to_le_bytes());
    }
    Ok(())
}

/// `S-R-A-S1-S2...` from a binary SID (MS-DTYP §2.4.2.2).
pub(super) fn sid_string(sid: &[u8]) -> Option<String> {
    use fmt::Write;
    let (&revision, rest) = sid.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let (authority, subs) = rest.split_at_checked(6)?;
    if subs.len() != 4 * usize::from(count) {
        return None;
    }
    let authority = authority
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut s = format!("S-{revision}-{authority}");
    for sub in subs.chunks_exact(4) {
        let _ = write!(
            s,
            "-{}",
            u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]])
        );
    }
    Some(s)
}
