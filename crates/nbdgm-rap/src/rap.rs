//! RAP NetServerEnum2 (MS-RAP 2.5.5.2, 2.5.5.2.1, 2.5.5.2.2): request parameters and reply parsing.
//!
//! Bounded decoding: every string is cut at its field's protocol limit
//! ([`MAX_NAME_LEN`], [`MAX_COMMENT_LEN`]), a reply has at most [`MAX_ENTRIES`] entries,
//! and the strings of one reply decode into at most [`MAX_DECODED_BYTES`]: a hostile
//! master whose comment pointers all aim at one long run of non-NUL bytes gets 48-byte
//! comments, not one copy of the run per entry.

use crate::RapError;

/// RAP opcode of NetServerEnum2.
pub const NET_SERVER_ENUM2: u16 = 104;
/// NERR_Success.
pub const NERR_SUCCESS: u16 = 0;
/// ERROR_MORE_DATA: the entries returned are valid, more did not fit.
pub const ERROR_MORE_DATA: u16 = 234;
/// Size of a level-1 entry (SERVER_INFO_1).
pub const ENTRY_LEN: usize = 26;
/// Longest server name: the 16-byte ServerName field holds a NUL-terminated name
/// (MS-RAP 2.5.5.4.2 NetServerInfo1; NetBIOS names are 15 characters).
pub const MAX_NAME_LEN: usize = 15;
/// Longest comment kept: LAN Manager comments are at most 48 characters
/// (`LM20_MAXCOMMENTSZ` in lmcons.h, the limit of the RAP / LAN Manager 2.0 server
/// comment that NetServerInfo1's ServerComment points to, MS-RAP 2.5.5.4.2). Longer
/// strings are cut here; announcements carry even less (43 bytes with the NUL).
pub const MAX_COMMENT_LEN: usize = 48;
/// Most entries a reply can hold: the data block of a TRANSACTION reply is at most
/// 65,535 bytes (16-bit counts), 26 bytes an entry.
pub const MAX_ENTRIES: usize = 0xFFFF / ENTRY_LEN;
/// Cap on the string bytes (UTF-8) one reply decodes into: every entry at its limits,
/// Latin-1 bytes ≥ 0x80 taking two bytes in UTF-8 (about 310 KiB). With the entries
/// themselves (< 150 KiB) one reply costs well under 1 MiB, whatever the peer sends.
pub const MAX_DECODED_BYTES: usize = MAX_ENTRIES * 2 * (MAX_NAME_LEN + MAX_COMMENT_LEN);

/// One entry of a level-1 NetServerEnum2 reply (SERVER_INFO_1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server (or, for SV_TYPE_DOMAIN_ENUM, workgroup) name.
    pub name: String,
    pub os_major: u8,
    pub os_minor: u8,
    /// SV_TYPE_* bits.
    pub server_type: u32,
    /// Comment (for SV_TYPE_DOMAIN_ENUM: the workgroup's master browser name).
    pub comment: String,
}

/// Meaning of a RAP Status word.
pub fn status_name(s: u16) -> &'static str {
    match s {
        0 => "success",
        5 => "access denied",
        50 => "not supported",
        87 => "invalid parameter",
        124 => "invalid level",
        234 => "more data",
        2114 => "server service not started",
        2123 => "buffer too small",
        2127 => "remote error",
        2184 => "service not started / browser not running",
        2320 => "bad transaction configuration",
        6118 => "no browser servers found",
        _ => "unknown",
    }
}

/// Request parameters: opcode 104, `WrLehDz`, `B16BBDz`, level 1, `recv_len`,
/// `server_type`, `domain` (OEM, NUL-terminated).
pub fn request_params(recv_len: u16, server_type: u32, domain: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(32 + domain.len());
    p.extend_from_slice(&NET_SERVER_ENUM2.to_le_bytes());
    p.extend_from_slice(b"WrLehDz\0");
    p.extend_from_slice(b"B16BBDz\0");
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&recv_len.to_le_bytes());
    p.extend_from_slice(&server_type.to_le_bytes());
    p.extend_from_slice(domain.as_bytes());
    p.push(0);
    p
}

/// OEM bytes to text: ASCII as is, bytes ≥ 0x80 as Latin-1 (the code page is unknown).
pub fn oem_to_string(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// The string bytes (UTF-8) decoded for `v`: what [`MAX_DECODED_BYTES`] bounds.
pub fn decoded_bytes(v: &[ServerInfo]) -> usize {
    v.iter().map(|s| s.name.len() + s.comment.len()).sum()
}

/// Parse the reply parameters (`Status`, `Converter`, `EntriesReturned`, `EntriesAvailable`)
/// and level-1 entries from `data`. Status 0 and ERROR_MORE_DATA return the entries; any
/// other status is [`RapError::Rap`]. More than `max_entries` (or [`MAX_ENTRIES`]) entries
/// is [`RapError::TooLarge`]. Names are cut at [`MAX_NAME_LEN`], comments at
/// [`MAX_COMMENT_LEN`]; the result never holds more than [`MAX_DECODED_BYTES`] of strings.
pub fn parse_reply(
    params: &[u8],
    data: &[u8],
    max_entries: usize,
) -> Result<Vec<ServerInfo>, RapError> {
    let word = |at: usize| {
        params
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let status = word(0).ok_or_else(|| {
        RapError::Malformed(format!("RAP reply parameters of {} bytes", params.len()))
    })?;
    if status != NERR_SUCCESS && status != ERROR_MORE_DATA {
        return Err(RapError::Rap { status });
    }
    let (Some(converter), Some(count)) = (word(2), word(4)) else {
        return Err(RapError::Malformed(format!(
            "RAP reply parameters of {} bytes (need 8)",
            params.len()
        )));
    };
    let count = usize::from(count);
    let limit = max_entries.min(MAX_ENTRIES);
    if count > limit {
        return Err(RapError::TooLarge(format!(
            "{count} entries (limit {limit})"
        )));
    }
    if count * ENTRY_LEN > data.len() {
        return Err(RapError::Malformed(format!(
            "{count} entries but only {} data bytes",
            data.len()
        )));
    }
    let mut out = Vec::with_capacity(count);
    let mut decoded = 0usize;
    for e in data.chunks_exact(ENTRY_LEN).take(count) {
        let name_end = e[..MAX_NAME_LEN]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_NAME_LEN);
        let server_type = u32::from_le_bytes([e[18], e[19], e[20], e[21]]);
        let ptr = u32::from_le_bytes([e[22], e[23], e[24], e[25]]);
        let s = ServerInfo {
            name: oem_to_string(&e[..name_end]),
            os_major: e[16],
            os_minor: e[17],
            server_type,
            comment: comment_at(data, ptr, converter)?,
        };
        decoded += s.name.len() + s.comment.len();
        if decoded > MAX_DECODED_BYTES {
            return Err(RapError::TooLarge(format!(
                "more than {MAX_DECODED_BYTES} bytes of strings"
            )));
        }
        out.push(s);
    }
    Ok(out)
}

/// The NUL-terminated string a RAP pointer refers to: offset = low word − Converter.
/// A zero pointer is an empty string. Only the first [`MAX_COMMENT_LEN`] + 1 bytes are
/// looked at: a longer string is cut at [`MAX_COMMENT_LEN`]; a string that the data
/// block cuts off before its NUL (and before the limit) is malformed.
fn comment_at(data: &[u8], ptr: u32, converter: u16) -> Result<String, RapError> {
    if ptr == 0 {
        return Ok(String::new());
    }
    let low = (ptr & 0xFFFF) as u16;
    let off = usize::from(low.wrapping_sub(converter));
    let rest = data.get(off..).filter(|r| !r.is_empty()).ok_or_else(|| {
        RapError::Malformed(format!(
            "comment pointer {ptr:#010x} (converter {converter:#06x}) outside {} data bytes",
            data.len()
        ))
    })?;
    let window = &rest[..rest.len().min(MAX_COMMENT_LEN + 1)];
    let end = match window.iter().position(|&b| b == 0) {
        Some(end) => end,
        None if window.len() > MAX_COMMENT_LEN => MAX_COMMENT_LEN,
        None => {
            return Err(RapError::Malformed(format!(
                "comment at {off} not NUL-terminated"
            )))
        }
    };
    Ok(oem_to_string(&rest[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a reply the way Samba does: entries first, strings after them.
    pub(crate) fn build(
        status: u16,
        converter: u16,
        entries: &[(&str, u32, &str)],
    ) -> (Vec<u8>, Vec<u8>) {
        let mut data = vec![0u8; entries.len() * ENTRY_LEN];
        let mut strings = Vec::new();
        for (i, (name, ty, comment)) in entries.iter().enumerate() {
            let e = &mut data[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
            e[..name.len()].copy_from_slice(name.as_bytes());
            e[16] = 4;
            e[17] = 9;
            e[18..22].copy_from_slice(&ty.to_le_bytes());
            let off = (entries.len() * ENTRY_LEN + strings.len()) as u16;
            let ptr = u32::from(off.wrapping_add(converter));
            e[22..26].copy_from_slice(&ptr.to_le_bytes());
            strings.extend_from_slice(comment.as_bytes());
            strings.push(0);
        }
        data.extend_from_slice(&strings);
        let mut p = Vec::new();
        for v in [
            status,
            converter,
            entries.len() as u16,
            entries.len() as u16,
        ] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        (p, data)
    }

    #[test]
    fn parses_entries_with_converter() {
        let (p, d) = build(
            0,
            0x1234,
            &[
                ("SAMBAA", 0x0084_9a03, "Samba 4.17"),
                ("RAPTEST", 0x1003, ""),
            ],
        );
        let v = parse_reply(&p, &d, 100).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "SAMBAA");
        assert_eq!(v[0].comment, "Samba 4.17");
        assert_eq!(v[0].server_type, 0x0084_9a03);
        assert_eq!((v[0].os_major, v[0].os_minor), (4, 9));
        assert_eq!(v[1].name, "RAPTEST");
        assert_eq!(v[1].comment, "");
        // converter larger than the offset: wraps like the 16-bit arithmetic it is
        let (p, d) = build(ERROR_MORE_DATA, 0xFFF0, &[("X", 1, "c")]);
        assert_eq!(parse_reply(&p, &d, 100).unwrap()[0].comment, "c");
        let (p, d) = build(0, 0, &[("ABCDEFGHIJKLMNOP", 1, "")]);
        assert_eq!(parse_reply(&p, &d, 100).unwrap()[0].name, "ABCDEFGHIJKLMNO");
    }

    /// The reply of issue 12 item 1: every comment pointer aims at one 60 KB run of
    /// non-NUL bytes ≥ 0x80. Before the caps each entry copied the whole run (2 bytes a
    /// character in UTF-8: ~120 KB an entry, 150 MB for this reply).
    #[test]
    fn comment_bomb_is_cut_at_the_field_limits() {
        let n = 200;
        let mut data = vec![0u8; n * ENTRY_LEN];
        for (i, e) in data.chunks_exact_mut(ENTRY_LEN).enumerate() {
            e[..16].fill(b'A' + (i % 26) as u8); // 16 bytes, no NUL
            e[22..26].copy_from_slice(&((n * ENTRY_LEN) as u32).to_le_bytes());
        }
        data.resize(0xFFFF - 1, 0xC1);
        data.push(0);
        let mut p = vec![0u8, 0, 0, 0];
        p.extend_from_slice(&(n as u16).to_le_bytes());
        p.extend_from_slice(&(n as u16).to_le_bytes());
        let v = parse_reply(&p, &data, 10_000).unwrap();
        assert_eq!(v.len(), n);
        for s in &v {
            assert_eq!(s.name.chars().count(), MAX_NAME_LEN);
            assert_eq!(s.comment.chars().count(), MAX_COMMENT_LEN);
        }
        assert!(decoded_bytes(&v) <= n * 2 * (MAX_NAME_LEN + MAX_COMMENT_LEN));
        // entry count above MAX_ENTRIES is refused whatever max_entries says
        let mut p = p.clone();
        p[4..6].copy_from_slice(&((MAX_ENTRIES + 1) as u16).to_le_bytes());
        assert!(matches!(
            parse_reply(&p, &vec![0; 0xFFFF], usize::MAX),
            Err(RapError::TooLarge(_))
        ));
        // a comment of exactly the limit, NUL-terminated, is kept whole
        let c = "c".repeat(MAX_COMMENT_LEN);
        let (p, d) = build(0, 0, &[("X", 1, &c)]);
        assert_eq!(parse_reply(&p, &d, 10).unwrap()[0].comment, c);
    }

    #[test]
    fn rejects_errors_limits_and_garbage() {
        let (p, d) = build(2114, 0, &[]);
        assert!(matches!(
            parse_reply(&p, &d, 10),
            Err(RapError::Rap { status: 2114 })
        ));
        let (p, d) = build(0, 0, &[("A", 1, "x"), ("B", 1, "y")]);
        assert!(matches!(parse_reply(&p, &d, 1), Err(RapError::TooLarge(_))));
        // EntriesAvailable (bytes 6..8) is not needed
        for n in 0..6 {
            assert!(parse_reply(&p[..n], &d, 10).is_err());
        }
        // truncated data: either fewer entry bytes or a cut-off comment
        for n in 0..d.len() {
            assert!(parse_reply(&p, &d[..n], 10).is_err(), "data prefix {n}");
        }
        // pointer outside the data
        let mut bad = d.clone();
        bad[22..26].copy_from_slice(&0xFFFFu32.to_le_bytes());
        assert!(matches!(
            parse_reply(&p, &bad, 10),
            Err(RapError::Malformed(_))
        ));
        // pseudo-random garbage never panics
        let mut x: u32 = 99;
        let mut rnd = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect()
        };
        for i in 0..500 {
            let mut p = rnd(8);
            p[0] = 0;
            p[1] = 0;
            p[5] = (i % 3) as u8;
            let d = rnd(i % 120);
            let _ = parse_reply(&p, &d, 10_000);
        }
    }

    #[test]
    fn request_layout() {
        let p = request_params(0xFFFF, 0x8000_0000, "TESTGROUP");
        assert_eq!(&p[..2], &[104, 0]);
        assert_eq!(&p[2..18], b"WrLehDz\0B16BBDz\0");
        assert_eq!(&p[18..20], &[1, 0]);
        assert_eq!(&p[20..22], &[0xFF, 0xFF]);
        assert_eq!(&p[22..26], &[0, 0, 0, 0x80]);
        assert_eq!(&p[26..], b"TESTGROUP\0");
    }
}
