//! Raw length checks of browser frames (MS-BRWS §2.2, DIGEST §6.2, §6.7): the shape of
//! MS11-019 / CVE-2011-0654 (over-long names, comments and election fields), read from
//! the mailslot bytes themselves, since the codec keeps or rejects what it cannot fit.
//!
//! A 16-byte ServerName/MachineGroup field without NUL is NOT reported: Samba hosts with
//! 16-character names fill the field that way (known peer deviation).

use nbdgm_wire::browser::{looks_like_browse_layout, opcode};
use nbdgm_wire::mailslot::MAX_SMB_LEN;
use nbdgm_wire::payload::Application;
use nbdgm_wire::reader::latin1;

/// Longest name string with its NUL (MS-BRWS: "less than or equal to 16 bytes ... including
/// the null terminator"). 16 bytes before the NUL are tolerated as the Samba deviation.
pub const NAME_LIMIT: usize = 16;
/// Longest comment with its NUL (MS-BRWS §2.2.1: 43 bytes).
pub const COMMENT_LIMIT: usize = 43;
/// Offset of the final string in the announcement layout.
const ANN_LAST: usize = 32;

/// One field over its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlong {
    /// Field name as MS-BRWS spells it.
    pub field: &'static str,
    /// Bytes before the NUL (or to the end of the frame when unterminated).
    pub length: usize,
    /// Limit in bytes, NUL included.
    pub limit: usize,
    /// Was a NUL found?
    pub terminated: bool,
    /// Browser opcode.
    pub opcode: u8,
    /// The field's bytes (Latin-1, cut at 64 characters).
    pub sample: String,
}

/// The string starting at `off`: (bytes before NUL, terminated).
fn strz_at(data: &[u8], off: usize) -> Option<(&[u8], bool)> {
    let rest = data.get(off..)?;
    Some(match rest.iter().position(|&b| b == 0) {
        Some(n) => (rest.get(..n).unwrap_or(&[]), true),
        None => (rest, false),
    })
}

/// The field at `off` when it breaks its limit, and the offset after it. `None` when the
/// frame ends before the field.
fn check(
    data: &[u8],
    off: usize,
    field: &'static str,
    limit: usize,
    op: u8,
) -> Option<(Option<Overlong>, usize)> {
    let (s, terminated) = strz_at(data, off)?;
    // `limit` counts the NUL; names may fill all 16 bytes before it (Samba deviation).
    let max_before_nul = if limit == NAME_LIMIT {
        limit
    } else {
        limit - 1
    };
    let next = off + s.len() + 1;
    if s.len() <= max_before_nul && terminated {
        return Some((None, next));
    }
    let found = Overlong {
        field,
        length: s.len(),
        limit,
        terminated,
        opcode: op,
        sample: latin1(s.get(..64).unwrap_or(s)),
    };
    Some((Some(found), next))
}

/// Checks the string fields of a frame; the first over-long one, if any. `smb_len` is
/// the length of the SMB message up to the end of the frame data (limit [`MAX_SMB_LEN`],
/// MS-MAIL §2.1).
pub fn scan(app: Application, data: &[u8], smb_len: usize) -> Option<Overlong> {
    let op = *data.first()?;
    if smb_len > MAX_SMB_LEN {
        return Some(Overlong {
            field: "MailslotData",
            length: smb_len,
            limit: MAX_SMB_LEN,
            terminated: true,
            opcode: op,
            sample: String::new(),
        });
    }
    let lanman_layout = app == Application::Lanman && !looks_like_browse_layout(data);
    let mut fields: Vec<(usize, &'static str, usize)> = Vec::new();
    if lanman_layout {
        // opcode(1) 0(1) ServerType(4) OSMajor(1) OSMinor(1) Periodicity(2) ServerName Comment.
        let (name, _) = strz_at(data, 10)?;
        fields.push((10, "ServerName", NAME_LIMIT));
        fields.push((10 + name.len() + 1, "Comment", COMMENT_LIMIT));
    } else {
        match op {
            opcode::HOST_ANNOUNCEMENT | opcode::LOCAL_MASTER_ANNOUNCEMENT => {
                fields.push((ANN_LAST, "Comment", COMMENT_LIMIT))
            }
            opcode::DOMAIN_ANNOUNCEMENT => {
                fields.push((ANN_LAST, "LocalMasterBrowserName", NAME_LIMIT))
            }
            opcode::REQUEST_ELECTION => fields.push((14, "ServerName", NAME_LIMIT)),
            opcode::ANNOUNCEMENT_REQUEST => fields.push((2, "ResponseName", NAME_LIMIT)),
            opcode::BECOME_BACKUP => fields.push((1, "BrowserToPromote", NAME_LIMIT)),
            opcode::MASTER_ANNOUNCEMENT => fields.push((1, "MasterBrowserServerName", NAME_LIMIT)),
            opcode::GET_BACKUP_LIST_RESPONSE => {
                let count = usize::from(*data.get(1)?);
                let mut off = 6;
                for _ in 0..count {
                    let (o, next) = check(data, off, "BackupServerList", NAME_LIMIT, op)?;
                    if o.is_some() {
                        return o;
                    }
                    off = next;
                }
                return None;
            }
            _ => return None,
        }
    }
    for (off, field, limit) in fields {
        let (o, _) = check(data, off, field, limit, op)?;
        if o.is_some() {
            return o;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(name16: &[u8; 16], comment: &[u8]) -> Vec<u8> {
        let mut v = vec![0x01, 0, 0x60, 0xEA, 0, 0];
        v.extend_from_slice(name16);
        v.extend_from_slice(&[6, 1, 3, 0x10, 0, 0, 0x0F, 0x01, 0x55, 0xAA]);
        v.extend_from_slice(comment);
        v
    }

    #[test]
    fn samba_sixteen_byte_name_alone_is_fine() {
        let d = ann(b"ABCDEFGHIJKLMNOP", b"samba\0");
        assert_eq!(scan(Application::Browser, &d, 100), None);
    }

    #[test]
    fn long_or_unterminated_comment_is_reported() {
        let mut c = vec![b'A'; 43];
        c.push(0);
        let o = scan(
            Application::Browser,
            &ann(b"HOST\0\0\0\0\0\0\0\0\0\0\0\0", &c),
            150,
        );
        let o = o.unwrap();
        assert_eq!((o.field, o.length, o.limit), ("Comment", 43, 43));
        let ok = scan(
            Application::Browser,
            &ann(b"HOST\0\0\0\0\0\0\0\0\0\0\0\0", &c[1..]),
            150,
        );
        assert_eq!(ok, None, "42 bytes + NUL is the limit");
        let o = scan(
            Application::Browser,
            &ann(b"HOST\0\0\0\0\0\0\0\0\0\0\0\0", b"abc"),
            150,
        )
        .unwrap();
        assert!(!o.terminated);
    }

    #[test]
    fn election_name_limits() {
        let mut e = vec![0x08, 1, 0, 0x0F, 1, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
        e.extend_from_slice(b"ABCDEFGHIJKLMNOP\0");
        assert_eq!(
            scan(Application::Browser, &e, 100),
            None,
            "16 + NUL tolerated"
        );
        e.pop();
        e.extend_from_slice(b"Q\0");
        let o = scan(Application::Browser, &e, 100).unwrap();
        assert_eq!((o.field, o.length), ("ServerName", 17));
    }

    #[test]
    fn oversized_mailslot_and_backup_list() {
        assert_eq!(
            scan(Application::Browser, &[0x0E, 1], 600).unwrap().field,
            "MailslotData"
        );
        let mut r = vec![0x0A, 2, 1, 0, 0, 0];
        r.extend_from_slice(b"A\0");
        r.extend_from_slice(&[b'B'; 40]);
        let o = scan(Application::Browser, &r, 100).unwrap();
        assert_eq!(
            (o.field, o.length, o.terminated),
            ("BackupServerList", 40, false)
        );
    }
}
