//! The few SMB1 messages this client needs (MS-CIFS 2.2), built and parsed with bounds checks.

use crate::{RapError, SmbStatus};

pub const SMB_COM_TRANSACTION: u8 = 0x25;
pub const SMB_COM_NEGOTIATE: u8 = 0x72;
pub const SMB_COM_SESSION_SETUP_ANDX: u8 = 0x73;
pub const SMB_COM_TREE_CONNECT_ANDX: u8 = 0x75;

/// SMB_FLAGS_CASE_INSENSITIVE | SMB_FLAGS_CANONICALIZED_PATHS.
const FLAGS: u8 = 0x18;
/// SMB_FLAGS_REPLY.
const FLAGS_REPLY: u8 = 0x80;
/// SMB_FLAGS2_LONG_NAMES | SMB_FLAGS2_NT_STATUS (no Unicode, no extended security).
const FLAGS2: u16 = 0x0001 | 0x4000;
const FLAGS2_NT_STATUS: u16 = 0x4000;
/// CAP_STATUS32.
const CAP_STATUS32: u32 = 0x0000_0040;
/// Largest message we announce we can receive.
pub const CLIENT_MAX_BUFFER: u16 = 0xFFFF;
/// SMB header length.
pub const HEADER_LEN: usize = 32;

/// Name of an SMB command (for messages).
pub fn command_name(c: u8) -> &'static str {
    match c {
        SMB_COM_TRANSACTION => "TRANSACTION",
        SMB_COM_NEGOTIATE => "NEGOTIATE",
        SMB_COM_SESSION_SETUP_ANDX => "SESSION_SETUP_ANDX",
        SMB_COM_TREE_CONNECT_ANDX => "TREE_CONNECT_ANDX",
        _ => "command",
    }
}

/// Names of a few NTSTATUS values a client may meet here.
pub fn nt_status_name(s: u32) -> Option<&'static str> {
    Some(match s {
        0xC000_0022 => "STATUS_ACCESS_DENIED",
        0xC000_006D => "STATUS_LOGON_FAILURE",
        0xC000_00BB => "STATUS_NOT_SUPPORTED",
        0xC000_00CC => "STATUS_BAD_NETWORK_NAME",
        0xC000_0002 => "STATUS_NOT_IMPLEMENTED",
        0xC000_000D => "STATUS_INVALID_PARAMETER",
        0xC000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xC000_0003 => "STATUS_INVALID_INFO_CLASS",
        _ => return None,
    })
}

/// Fields of the request header that vary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ids {
    pub tid: u16,
    pub pid: u16,
    pub uid: u16,
    pub mid: u16,
}

/// Build an SMB1 request: header, words, bytes.
pub fn request(command: u8, ids: Ids, words: &[u8], bytes: &[u8]) -> Vec<u8> {
    debug_assert!(words.len().is_multiple_of(2) && words.len() <= 510 && bytes.len() <= 0xFFFF);
    let mut m = Vec::with_capacity(HEADER_LEN + 3 + words.len() + bytes.len());
    m.extend_from_slice(b"\xFFSMB");
    m.push(command);
    m.extend_from_slice(&0u32.to_le_bytes());
    m.push(FLAGS);
    m.extend_from_slice(&FLAGS2.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes()); // PIDHigh
    m.extend_from_slice(&[0; 8]); // SecurityFeatures
    m.extend_from_slice(&0u16.to_le_bytes()); // Reserved
    m.extend_from_slice(&ids.tid.to_le_bytes());
    m.extend_from_slice(&ids.pid.to_le_bytes());
    m.extend_from_slice(&ids.uid.to_le_bytes());
    m.extend_from_slice(&ids.mid.to_le_bytes());
    m.push((words.len() / 2) as u8);
    m.extend_from_slice(words);
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend_from_slice(bytes);
    m
}

/// NEGOTIATE offering only "NT LM 0.12".
pub fn negotiate(ids: Ids) -> Vec<u8> {
    request(SMB_COM_NEGOTIATE, ids, &[], b"\x02NT LM 0.12\0")
}

/// Anonymous SESSION SETUP ANDX (NT LM 0.12 form without extended security).
pub fn session_setup(ids: Ids, max_mpx: u16, session_key: u32) -> Vec<u8> {
    let mut w = Vec::with_capacity(26);
    w.extend_from_slice(&[0xFF, 0]); // no AndX
    w.extend_from_slice(&0u16.to_le_bytes()); // AndXOffset
    w.extend_from_slice(&CLIENT_MAX_BUFFER.to_le_bytes());
    w.extend_from_slice(&max_mpx.clamp(1, 50).to_le_bytes());
    w.extend_from_slice(&0u16.to_le_bytes()); // VcNumber
    w.extend_from_slice(&session_key.to_le_bytes());
    w.extend_from_slice(&0u16.to_le_bytes()); // OEMPasswordLen
    w.extend_from_slice(&0u16.to_le_bytes()); // UnicodePasswordLen
    w.extend_from_slice(&0u32.to_le_bytes()); // Reserved
    w.extend_from_slice(&CAP_STATUS32.to_le_bytes());
    // Passwords (empty), AccountName "", PrimaryDomain "", NativeOS, NativeLanMan.
    request(SMB_COM_SESSION_SETUP_ANDX, ids, &w, b"\0\0Unix\0nbdgm\0")
}

/// TREE CONNECT ANDX to `\\SERVER\IPC$`, service "?????".
pub fn tree_connect_ipc(ids: Ids, server: &str) -> Vec<u8> {
    let mut w = Vec::with_capacity(8);
    w.extend_from_slice(&[0xFF, 0]);
    w.extend_from_slice(&0u16.to_le_bytes()); // AndXOffset
    w.extend_from_slice(&0u16.to_le_bytes()); // Flags
    w.extend_from_slice(&1u16.to_le_bytes()); // PasswordLength
    let mut b = vec![0u8]; // password: one NUL
    b.extend_from_slice(format!("\\\\{server}\\IPC$\0?????\0").as_bytes());
    request(SMB_COM_TREE_CONNECT_ANDX, ids, &w, &b)
}

/// TRANSACTION on `\PIPE\LANMAN` carrying `params` (and no data), asking for up to
/// `max_param` / `max_data` bytes back.
pub fn transaction_lanman(ids: Ids, params: &[u8], max_param: u16, max_data: u16) -> Vec<u8> {
    const NAME: &[u8] = b"\\PIPE\\LANMAN\0";
    // header + WordCount + 14 words + ByteCount
    let bytes_start = HEADER_LEN + 1 + 28 + 2;
    let pad = (4 - (bytes_start + NAME.len()) % 4) % 4;
    let param_off = bytes_start + NAME.len() + pad;
    let data_off = param_off + params.len();
    let mut w = Vec::with_capacity(28);
    w.extend_from_slice(&(params.len() as u16).to_le_bytes()); // TotalParameterCount
    w.extend_from_slice(&0u16.to_le_bytes()); // TotalDataCount
    w.extend_from_slice(&max_param.to_le_bytes());
    w.extend_from_slice(&max_data.to_le_bytes());
    w.push(0); // MaxSetupCount
    w.push(0);
    w.extend_from_slice(&0u16.to_le_bytes()); // Flags
    w.extend_from_slice(&0u32.to_le_bytes()); // Timeout
    w.extend_from_slice(&0u16.to_le_bytes()); // Reserved2
    w.extend_from_slice(&(params.len() as u16).to_le_bytes()); // ParameterCount
    w.extend_from_slice(&(param_off as u16).to_le_bytes());
    w.extend_from_slice(&0u16.to_le_bytes()); // DataCount
    w.extend_from_slice(&(data_off as u16).to_le_bytes());
    w.push(0); // SetupCount
    w.push(0);
    let mut b = NAME.to_vec();
    b.resize(NAME.len() + pad, 0);
    b.extend_from_slice(params);
    request(SMB_COM_TRANSACTION, ids, &w, &b)
}

pub(crate) fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn malformed(what: impl Into<String>) -> RapError {
    RapError::Malformed(what.into())
}

/// A parsed SMB1 reply: header fields, parameter words and bytes (slices of the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub command: u8,
    pub status: Option<SmbStatus>,
    pub tid: u16,
    pub uid: u16,
    pub mid: u16,
    pub words: &'a [u8],
    pub bytes: &'a [u8],
    /// The whole message (offsets in SMB replies are relative to its start).
    pub msg: &'a [u8],
}

/// Parse an SMB1 reply. `status` is `None` for success.
pub fn parse_reply(msg: &[u8]) -> Result<Reply<'_>, RapError> {
    let r = parse_message(msg)?;
    if msg[9] & FLAGS_REPLY == 0 {
        return Err(malformed("SMB message is not a reply"));
    }
    Ok(r)
}

/// Parse an SMB1 message, request or reply (the server side uses it for requests):
/// header fields, words and bytes, all bounds checked.
pub fn parse_message(msg: &[u8]) -> Result<Reply<'_>, RapError> {
    if msg.len() < HEADER_LEN + 3 {
        return Err(malformed(format!("SMB message of {} bytes", msg.len())));
    }
    if &msg[..4] != b"\xFFSMB" {
        return Err(malformed(if &msg[..4] == b"\xFESMB" {
            "SMB2 reply (server does not speak SMB1?)".to_string()
        } else {
            format!("not an SMB1 message (starts {:02x?})", &msg[..4])
        }));
    }
    let command = msg[4];
    let flags2 = le16(msg, 10).ok_or_else(|| malformed("header"))?;
    let raw = le32(msg, 5).ok_or_else(|| malformed("header"))?;
    let status = if flags2 & FLAGS2_NT_STATUS != 0 {
        (raw != 0).then_some(SmbStatus::Nt(raw))
    } else {
        let class = msg[5];
        let code = le16(msg, 7).ok_or_else(|| malformed("header"))?;
        (class != 0 || code != 0).then_some(SmbStatus::Dos { class, code })
    };
    let tid = le16(msg, 24).ok_or_else(|| malformed("header"))?;
    let uid = le16(msg, 28).ok_or_else(|| malformed("header"))?;
    let mid = le16(msg, 30).ok_or_else(|| malformed("header"))?;
    let wc = usize::from(msg[HEADER_LEN]);
    let words_end = HEADER_LEN + 1 + 2 * wc;
    let words = msg
        .get(HEADER_LEN + 1..words_end)
        .ok_or_else(|| malformed(format!("WordCount {wc} beyond the message")))?;
    let bc =
        usize::from(le16(msg, words_end).ok_or_else(|| malformed("ByteCount beyond the message"))?);
    let bytes = msg
        .get(words_end + 2..words_end + 2 + bc)
        .ok_or_else(|| malformed(format!("ByteCount {bc} beyond the message")))?;
    Ok(Reply {
        command,
        status,
        tid,
        uid,
        mid,
        words,
        bytes,
        msg,
    })
}

/// What we keep from a NEGOTIATE reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub security_mode: u8,
    pub max_mpx: u16,
    pub max_buffer: u32,
    pub session_key: u32,
    pub capabilities: u32,
}

/// Parse the words of a NEGOTIATE reply for the single dialect we offered.
pub fn parse_negotiate(r: &Reply<'_>) -> Result<Negotiated, RapError> {
    let w = r.words;
    let idx = le16(w, 0).ok_or_else(|| malformed("NEGOTIATE reply without DialectIndex"))?;
    if idx != 0 {
        return Err(malformed(format!(
            "server did not accept NT LM 0.12 (DialectIndex {idx:#06x}; SMB1 disabled? \
             needs `server min protocol = NT1`)"
        )));
    }
    if w.len() != 34 {
        return Err(malformed(format!(
            "NEGOTIATE reply with WordCount {} (expected 17)",
            w.len() / 2
        )));
    }
    Ok(Negotiated {
        security_mode: w[2],
        max_mpx: le16(w, 3).unwrap_or(1),
        max_buffer: le32(w, 7).unwrap_or(0),
        session_key: le32(w, 15).unwrap_or(0),
        capabilities: le32(w, 19).unwrap_or(0),
    })
}

/// One piece of a TRANSACTION reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransPiece<'a> {
    pub total_params: usize,
    pub total_data: usize,
    pub params: &'a [u8],
    pub param_disp: usize,
    pub data: &'a [u8],
    pub data_disp: usize,
}

/// Parse a TRANSACTION reply (words and the parameter/data slices it points at).
pub fn parse_trans<'a>(r: &Reply<'a>) -> Result<TransPiece<'a>, RapError> {
    let w = r.words;
    if w.len() < 20 {
        return Err(malformed(format!(
            "TRANSACTION reply with WordCount {}",
            w.len() / 2
        )));
    }
    let g = |at| usize::from(le16(w, at).unwrap_or(0));
    let (total_params, total_data) = (g(0), g(2));
    let (pc, po, pd, dc, doff, dd) = (g(6), g(8), g(10), g(12), g(14), g(16));
    let slice = |what: &str, off: usize, len: usize| {
        if len == 0 {
            return Ok(&r.msg[..0]);
        }
        r.msg
            .get(off..off + len)
            .ok_or_else(|| malformed(format!("TRANSACTION {what} {off}+{len} beyond the reply")))
    };
    let params = slice("parameters", po, pc)?;
    let data = slice("data", doff, dc)?;
    if pd + pc > total_params || dd + dc > total_data {
        return Err(malformed("TRANSACTION piece beyond its announced totals"));
    }
    Ok(TransPiece {
        total_params,
        total_data,
        params,
        param_disp: pd,
        data,
        data_disp: dd,
    })
}

/// Reassembles TRANSACTION reply pieces.
#[derive(Debug, Default)]
pub struct TransAssembly {
    params: Vec<u8>,
    data: Vec<u8>,
    got_params: usize,
    got_data: usize,
    totals: Option<(usize, usize)>,
}

impl TransAssembly {
    /// Add a piece; `Ok(true)` when complete. Totals may only shrink (MS-CIFS).
    pub fn add(&mut self, p: &TransPiece<'_>) -> Result<bool, RapError> {
        let (tp, td) = match self.totals {
            None => {
                self.params = vec![0; p.total_params];
                self.data = vec![0; p.total_data];
                (p.total_params, p.total_data)
            }
            Some((tp, td)) => (tp.min(p.total_params), td.min(p.total_data)),
        };
        self.totals = Some((tp, td));
        let pe = p.param_disp + p.params.len();
        let de = p.data_disp + p.data.len();
        let (Some(pdst), Some(ddst)) = (
            self.params.get_mut(p.param_disp..pe),
            self.data.get_mut(p.data_disp..de),
        ) else {
            return Err(malformed("TRANSACTION piece beyond the first totals"));
        };
        pdst.copy_from_slice(p.params);
        ddst.copy_from_slice(p.data);
        self.got_params += p.params.len();
        self.got_data += p.data.len();
        if p.params.is_empty() && p.data.is_empty() && (self.got_params < tp || self.got_data < td)
        {
            return Err(malformed("empty TRANSACTION piece"));
        }
        Ok(self.got_params >= tp && self.got_data >= td)
    }

    /// The reassembled parameters and data.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u8>) {
        let (tp, td) = self.totals.unwrap_or((0, 0));
        self.params.truncate(tp);
        self.data.truncate(td);
        (self.params, self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(command: u8, status: u32, words: &[u8], bytes: &[u8]) -> Vec<u8> {
        let mut m = request(command, Ids::default(), words, bytes);
        m[9] |= FLAGS_REPLY;
        m[5..9].copy_from_slice(&status.to_le_bytes());
        m
    }

    #[test]
    fn parse_reply_bounds() {
        let m = reply(SMB_COM_NEGOTIATE, 0, &[1, 0], b"xy");
        let r = parse_reply(&m).unwrap();
        assert_eq!(r.words, &[1, 0]);
        assert_eq!(r.bytes, b"xy");
        for n in 0..m.len() {
            assert!(parse_reply(&m[..n]).is_err(), "prefix {n}");
        }
        let mut bad = m.clone();
        bad[0] = 0xFE;
        assert!(parse_reply(&bad).is_err());
        let mut req = m.clone();
        req[9] = 0;
        assert!(parse_reply(&req).is_err());
        let e = reply(SMB_COM_NEGOTIATE, 0xC000_0022, &[], &[]);
        assert_eq!(
            parse_reply(&e).unwrap().status,
            Some(SmbStatus::Nt(0xC000_0022))
        );
        let mut d = e.clone();
        d[10] = 1;
        d[11] = 0; // DOS errors
        assert_eq!(
            parse_reply(&d).unwrap().status,
            Some(SmbStatus::Dos {
                class: 0x22,
                code: 0xC000
            })
        );
        // garbage of all lengths never panics
        let mut x: u32 = 7;
        for len in 0..200 {
            let g: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let mut g2 = g.clone();
            if g2.len() >= 10 {
                g2[..4].copy_from_slice(b"\xFFSMB");
                g2[9] |= 0x80;
            }
            for m in [g, g2] {
                if let Ok(r) = parse_reply(&m) {
                    let _ = parse_negotiate(&r);
                    let _ = parse_trans(&r);
                }
            }
        }
    }

    #[test]
    fn negotiate_parser() {
        let mut w = vec![0u8; 34];
        w[2] = 3;
        w[7..11].copy_from_slice(&4356u32.to_le_bytes());
        let m = reply(SMB_COM_NEGOTIATE, 0, &w, &[]);
        let n = parse_negotiate(&parse_reply(&m).unwrap()).unwrap();
        assert_eq!(n.max_buffer, 4356);
        let m = reply(SMB_COM_NEGOTIATE, 0, &[0xFF, 0xFF], &[]);
        assert!(parse_negotiate(&parse_reply(&m).unwrap()).is_err());
        let m = reply(SMB_COM_NEGOTIATE, 0, &[], &[]);
        assert!(parse_negotiate(&parse_reply(&m).unwrap()).is_err());
        let m = reply(SMB_COM_NEGOTIATE, 0, &[0, 0, 0, 0], &[]);
        assert!(parse_negotiate(&parse_reply(&m).unwrap()).is_err());
    }

    fn trans_reply(tp: u16, td: u16, params: &[u8], pd: u16, data: &[u8], dd: u16) -> Vec<u8> {
        let start = (HEADER_LEN + 1 + 20 + 2) as u16;
        let mut w = Vec::new();
        for v in [
            tp,
            td,
            0,
            params.len() as u16,
            start,
            pd,
            data.len() as u16,
            start + params.len() as u16,
            dd,
        ] {
            w.extend_from_slice(&v.to_le_bytes());
        }
        w.extend_from_slice(&[0, 0]);
        let mut b = params.to_vec();
        b.extend_from_slice(data);
        reply(SMB_COM_TRANSACTION, 0, &w, &b)
    }

    #[test]
    fn trans_pieces_reassemble_and_reject_bad_offsets() {
        let a = trans_reply(4, 6, &[1, 2, 3, 4], 0, &[5, 6, 7], 0);
        let b = trans_reply(4, 6, &[], 0, &[8, 9, 10], 3);
        let mut asm = TransAssembly::default();
        assert!(!asm
            .add(&parse_trans(&parse_reply(&a).unwrap()).unwrap())
            .unwrap());
        assert!(asm
            .add(&parse_trans(&parse_reply(&b).unwrap()).unwrap())
            .unwrap());
        assert_eq!(asm.finish(), (vec![1, 2, 3, 4], vec![5, 6, 7, 8, 9, 10]));
        // data displacement beyond the totals
        let c = trans_reply(4, 6, &[], 0, &[8, 9, 10], 4);
        assert!(parse_trans(&parse_reply(&c).unwrap()).is_err());
        // offset beyond the message
        let mut d = trans_reply(4, 6, &[1, 2, 3, 4], 0, &[5, 6, 7], 0);
        let at = HEADER_LEN + 1 + 8;
        d[at..at + 2].copy_from_slice(&0xFFF0u16.to_le_bytes());
        assert!(parse_trans(&parse_reply(&d).unwrap()).is_err());
        // too few words
        let e = reply(SMB_COM_TRANSACTION, 0, &[0; 10], &[]);
        assert!(parse_trans(&parse_reply(&e).unwrap()).is_err());
        // a later piece with bigger totals than the first cannot overflow
        let f = trans_reply(8, 8, &[1], 0, &[2], 7);
        let mut asm = TransAssembly::default();
        asm.add(&parse_trans(&parse_reply(&a).unwrap()).unwrap())
            .unwrap();
        assert!(asm
            .add(&parse_trans(&parse_reply(&f).unwrap()).unwrap())
            .is_err());
    }

    #[test]
    fn requests_have_consistent_counts() {
        let t = transaction_lanman(Ids::default(), &[1, 2, 3], 8, 0xFFFF);
        assert_eq!(t[HEADER_LEN], 14);
        let po = usize::from(u16::from_le_bytes([t[HEADER_LEN + 21], t[HEADER_LEN + 22]]));
        assert_eq!(po % 4, 0);
        assert_eq!(&t[po..], &[1, 2, 3]);
        let s = session_setup(Ids::default(), 50, 7);
        assert_eq!(s[HEADER_LEN], 13);
        let tc = tree_connect_ipc(Ids::default(), "SAMBAA");
        assert!(tc.ends_with(b"\\\\SAMBAA\\IPC$\0?????\0"));
    }
}
