//! RAP NetServerEnum2 / NetServerEnum3 on the server side (MS-RAP 2.5.5.2, 3.2.5.x;
//! the selection follows Samba's `api_RNetServerEnum2`, source3/smbd/smb1_lanman.c):
//! request parameters, the selection from a list snapshot, and the reply.

use super::{reply, Header};
use crate::rap::{
    ENTRY_LEN, ERROR_MORE_DATA, MAX_COMMENT_LEN, MAX_NAME_LEN, NERR_SUCCESS, NET_SERVER_ENUM2,
};
use crate::smb::{le16, le32};
pub use crate::SV_TYPE_LOCAL_LIST_ONLY;
use crate::{SV_TYPE_ALL, SV_TYPE_DOMAIN_ENUM};

/// RAP opcode of NetServerEnum3 (NetServerEnum2 with a name to resume from).
pub const NET_SERVER_ENUM3: u16 = 215;
/// RAP status: not supported (an opcode other than 104/215).
pub const ERROR_NOT_SUPPORTED: u16 = 50;
/// RAP status: invalid parameter (descriptor or field).
pub const ERROR_INVALID_PARAMETER: u16 = 87;
/// RAP status: invalid level.
pub const ERROR_INVALID_LEVEL: u16 = 124;
/// Size of a level-0 entry (SERVER_INFO_0: the name).
const LEVEL0_LEN: usize = 16;
/// Bytes of a TRANSACTION reply around its data: header, WordCount, 10 words,
/// ByteCount, one pad byte, 8 parameter bytes.
pub(crate) const REPLY_OVERHEAD: usize = 32 + 1 + 20 + 2 + 1 + 8;
/// Longest workgroup / resume name taken from a request.
const MAX_REQUEST_STRING: usize = 64;

/// One entry the responder can list: a server (with its workgroup) or a workgroup
/// (`comment` = its master browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    /// The server's workgroup (ignored for workgroup entries).
    pub workgroup: String,
    pub os_major: u8,
    pub os_minor: u8,
    pub server_type: u32,
    pub comment: String,
    /// Heard on this subnet (not synchronised from another browser): what a
    /// SV_TYPE_LOCAL_LIST_ONLY request gets.
    pub local: bool,
}

/// The browse list a request is answered from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSnapshot {
    pub servers: Vec<ListEntry>,
    pub workgroups: Vec<ListEntry>,
}

/// A NetServerEnum2/3 call waiting for the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumRequest {
    /// 104 or 215.
    pub opcode: u16,
    /// 0 or 1.
    pub level: u16,
    pub server_type: u32,
    /// The workgroup asked for (empty: ours).
    pub domain: String,
    /// NetServerEnum3: the name to resume from (included if present).
    pub resume: Option<String>,
    /// Data bytes the reply may hold: the RAP receive buffer, the TRANSACTION's
    /// MaxDataCount and the client's MaxBufferSize, whichever is least.
    pub max_data: usize,
    pub(crate) header: Header,
}

/// Text to OEM bytes (Latin-1; other characters and NUL as `?`), at most `max` bytes.
pub fn oem(s: &str, max: usize) -> Vec<u8> {
    s.chars()
        .take(max)
        .map(|c| match u32::from(c) {
            1..=0xFF => c as u8,
            _ => b'?',
        })
        .collect()
}

/// A NUL-terminated string of at most [`MAX_REQUEST_STRING`] bytes at `b[at..]`: the
/// string and the offset after its NUL.
fn cstr(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let end = rest
        .iter()
        .take(MAX_REQUEST_STRING + 1)
        .position(|&c| c == 0)?;
    Some((&rest[..end], at + end + 1))
}

/// Parse RAP request parameters; `Err` is the RAP status to answer with.
pub(crate) fn parse_request(p: &[u8]) -> Result<EnumRequest, u16> {
    let opcode = le16(p, 0).ok_or(ERROR_INVALID_PARAMETER)?;
    let want_desc: &[u8] = match opcode {
        NET_SERVER_ENUM2 => b"WrLehDz",
        NET_SERVER_ENUM3 => b"WrLehDzz",
        _ => return Err(ERROR_NOT_SUPPORTED),
    };
    let (param_desc, at) = cstr(p, 2).ok_or(ERROR_INVALID_PARAMETER)?;
    if param_desc != want_desc {
        return Err(ERROR_INVALID_PARAMETER);
    }
    let (data_desc, at) = cstr(p, at).ok_or(ERROR_INVALID_PARAMETER)?;
    let level = le16(p, at).ok_or(ERROR_INVALID_PARAMETER)?;
    match (level, data_desc) {
        (0, b"B16") | (1, b"B16BBDz") => {}
        _ => return Err(ERROR_INVALID_LEVEL),
    }
    let recv_len = le16(p, at + 2).ok_or(ERROR_INVALID_PARAMETER)?;
    let server_type = le32(p, at + 4).ok_or(ERROR_INVALID_PARAMETER)?;
    let (domain, at) = cstr(p, at + 8).ok_or(ERROR_INVALID_PARAMETER)?;
    let resume = if opcode == NET_SERVER_ENUM3 {
        let (r, _) = cstr(p, at).ok_or(ERROR_INVALID_PARAMETER)?;
        Some(crate::rap::oem_to_string(r))
    } else {
        None
    };
    Ok(EnumRequest {
        opcode,
        level,
        server_type,
        domain: crate::rap::oem_to_string(domain),
        resume,
        max_data: usize::from(recv_len),
        header: Header {
            command: crate::smb::SMB_COM_TRANSACTION,
            ids: crate::smb::Ids::default(),
            nt_status: true,
            unicode: false,
        },
    })
}

/// The entries a request selects, sorted by name (case-insensitive), as Samba does.
fn select<'a>(req: &EnumRequest, list: &'a ListSnapshot, ours: &str) -> Vec<&'a ListEntry> {
    let mut t = req.server_type;
    if t == SV_TYPE_ALL {
        t &= !(SV_TYPE_DOMAIN_ENUM | SV_TYPE_LOCAL_LIST_ONLY);
    }
    if t & SV_TYPE_LOCAL_LIST_ONLY != 0 && t & SV_TYPE_DOMAIN_ENUM == 0 {
        t = SV_TYPE_ALL & !SV_TYPE_DOMAIN_ENUM;
    }
    let local_only = t & SV_TYPE_LOCAL_LIST_ONLY != 0;
    let domain = if req.domain.is_empty() {
        ours
    } else {
        &req.domain
    };
    let mut v: Vec<&ListEntry> = if t & SV_TYPE_DOMAIN_ENUM != 0 {
        list.workgroups
            .iter()
            .filter(|e| !local_only || e.local)
            .collect()
    } else {
        let mask = t & !SV_TYPE_LOCAL_LIST_ONLY;
        list.servers
            .iter()
            .filter(|e| !local_only || e.local)
            .filter(|e| e.server_type & mask != 0)
            .filter(|e| e.workgroup.eq_ignore_ascii_case(domain))
            .collect()
    };
    v.sort_by_cached_key(|e| oem(&e.name.to_ascii_uppercase(), MAX_NAME_LEN));
    v.dedup_by(|a, b| a.name.eq_ignore_ascii_case(&b.name));
    if let Some(from) = &req.resume {
        let from = oem(&from.to_ascii_uppercase(), MAX_NAME_LEN);
        v.retain(|e| oem(&e.name.to_ascii_uppercase(), MAX_NAME_LEN) >= from);
    }
    v
}

/// Answer `req` from `list` (`ours`: our workgroup, for a request without one): as many
/// entries as fit in `req.max_data`, ERROR_MORE_DATA when some did not.
pub fn answer_enum(req: &EnumRequest, list: &ListSnapshot, ours: &str) -> Vec<u8> {
    let chosen = select(req, list, ours);
    let fixed = if req.level == 0 {
        LEVEL0_LEN
    } else {
        ENTRY_LEN
    };
    // Fixed parts first, the comments after them (as Samba and Windows lay it out).
    let mut entries: Vec<u8> = Vec::new();
    let mut strings: Vec<u8> = Vec::new();
    let mut comments: Vec<Vec<u8>> = Vec::new();
    let mut count = 0usize;
    for e in &chosen {
        let comment = if req.level == 0 {
            Vec::new()
        } else {
            let mut c = oem(&e.comment, MAX_COMMENT_LEN);
            c.push(0);
            c
        };
        let need = (count + 1) * fixed + strings.len() + comment.len();
        if need > req.max_data || count == usize::from(u16::MAX) {
            break;
        }
        strings.extend_from_slice(&comment);
        comments.push(comment);
        count += 1;
    }
    let mut string_at = count * fixed;
    for (e, comment) in chosen.iter().zip(&comments) {
        let mut name = oem(&e.name, MAX_NAME_LEN);
        name.resize(16, 0);
        entries.extend_from_slice(&name);
        if req.level == 1 {
            entries.push(e.os_major);
            entries.push(e.os_minor);
            entries.extend_from_slice(&e.server_type.to_le_bytes());
            // Converter 0: the pointer is the offset into the data.
            entries.extend_from_slice(&(string_at as u32).to_le_bytes());
            string_at += comment.len();
        }
    }
    entries.extend_from_slice(&strings);
    let status = if count < chosen.len() {
        ERROR_MORE_DATA
    } else {
        NERR_SUCCESS
    };
    let available = chosen.len().min(usize::from(u16::MAX)) as u16;
    rap_reply(&req.header, status, count as u16, available, &entries)
}

/// A TRANSACTION reply carrying RAP parameters (status, converter 0, entries returned,
/// entries available) and `data`.
pub(crate) fn rap_reply(
    h: &Header,
    status: u16,
    count: u16,
    available: u16,
    data: &[u8],
) -> Vec<u8> {
    let param_off = REPLY_OVERHEAD - 8;
    let data_off = REPLY_OVERHEAD;
    let data = &data[..data.len().min(0xFFFF - REPLY_OVERHEAD)];
    let mut w = Vec::with_capacity(20);
    for v in [8, data.len(), 0, 8, param_off, 0, data.len(), data_off, 0] {
        w.extend_from_slice(&(v as u16).to_le_bytes());
    }
    w.extend_from_slice(&[0, 0]); // SetupCount, Reserved
    let mut b = Vec::with_capacity(9 + data.len());
    b.push(0); // pad: parameters on a 4-byte boundary
    for v in [status, 0, count, available] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(data);
    reply(h, None, &w, &b)
}
