//! A minimal, read-only RAP `NetServerEnum2` responder (the server side of this crate's
//! client), sans-IO: one NBSS packet in, the bytes to send back out.
//!
//! What it speaks (and nothing else):
//! - NetBIOS session service (RFC 1002 §4.3): SESSION REQUEST → POSITIVE SESSION RESPONSE
//!   for any well-formed called name (Samba calls `<NAME><20>`, our client falls back to
//!   `*SMBSERVER<20>`); keep-alives ignored; anything else before the session closes it.
//! - SMB1 (MS-CIFS 2.2.4.52 NEGOTIATE, 2.2.4.53 SESSION SETUP ANDX, 2.2.4.55 TREE CONNECT
//!   ANDX, 2.2.4.33 TRANSACTION, 2.2.4.39 ECHO, 2.2.4.54 LOGOFF ANDX, 2.2.4.51 TREE
//!   DISCONNECT): dialect `NT LM 0.12` only, no extended security, no signing, user-level
//!   security with an 8-byte challenge that is never checked: every session is a guest
//!   (credentials are not parsed, so they cannot reach a log); tree connect to `IPC$` only.
//! - RAP on `\PIPE\LANMAN` (MS-RAP 2.5.5.2 NetServerEnum2, opcode 104, and the
//!   continuation NetServerEnum3, opcode 215, that Samba's `cli_NetServerEnum` sends after
//!   ERROR_MORE_DATA), levels 0 (`B16`) and 1 (`B16BBDz`).
//!
//! Every other command gets STATUS_NOT_SUPPORTED (ERRSRV/ERRnosupport), every other RAP
//! call a RAP status (50 not supported, 124 invalid level, 87 invalid parameter). A
//! session answers at most [`MAX_REQUESTS`] SMB requests and takes packets of at most
//! [`MAX_REQUEST`] bytes; no reply is larger than [`MAX_REPLY`] bytes.

mod enum2;

pub use enum2::{
    answer_enum, EnumRequest, ListEntry, ListSnapshot, ERROR_INVALID_LEVEL,
    ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED, NET_SERVER_ENUM3, SV_TYPE_LOCAL_LIST_ONLY,
};

use crate::nbss;
use crate::smb::{self, le16, Ids, HEADER_LEN};

/// Largest NBSS packet body a session accepts (a RAP request is a few hundred bytes).
pub const MAX_REQUEST: usize = 64 * 1024;
/// SMB requests one session answers before it is closed.
pub const MAX_REQUESTS: usize = 64;
/// Largest packet a session sends (NBSS header included): a RAP reply is at most 65,535
/// bytes of SMB, an ECHO reply no longer than its request.
pub const MAX_REPLY: usize = 4 + MAX_REQUEST;
/// The MaxBufferSize we announce: the largest SMB message we accept.
const SERVER_MAX_BUFFER: u32 = 16_644;

pub const SMB_COM_TREE_DISCONNECT: u8 = 0x71;
pub const SMB_COM_LOGOFF_ANDX: u8 = 0x74;
pub const SMB_COM_ECHO: u8 = 0x2B;

/// SMB_FLAGS_REPLY | SMB_FLAGS_CASE_INSENSITIVE.
const REPLY_FLAGS: u8 = 0x80 | 0x08;
/// SMB_FLAGS2_LONG_NAMES (no Unicode, no extended security, no signing).
const FLAGS2_LONG_NAMES: u16 = 0x0001;
const FLAGS2_NT_STATUS: u16 = 0x4000;
const FLAGS2_UNICODE: u16 = 0x8000;
/// CAP_NT_SMBS | CAP_STATUS32.
const CAPABILITIES: u32 = 0x0000_0010 | 0x0000_0040;
/// The UID and TID a session hands out (one of each per connection).
const UID: u16 = 100;
const TID: u16 = 1;

/// An SMB error: the NTSTATUS and the DOS class/code a client without CAP_STATUS32 gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmbError {
    pub nt: u32,
    pub class: u8,
    pub code: u16,
}

/// STATUS_NOT_SUPPORTED / ERRSRV ERRnosupport.
pub const NOT_SUPPORTED: SmbError = SmbError {
    nt: 0xC000_00BB,
    class: 2,
    code: 0xFFFF,
};
/// STATUS_INVALID_PARAMETER / ERRDOS ERRinvalidparam: a malformed request.
pub const INVALID_PARAMETER: SmbError = SmbError {
    nt: 0xC000_000D,
    class: 1,
    code: 87,
};
/// STATUS_BAD_NETWORK_NAME / ERRSRV ERRinvnetname: a share other than IPC$.
pub const BAD_NETWORK_NAME: SmbError = SmbError {
    nt: 0xC000_00CC,
    class: 2,
    code: 6,
};
/// STATUS_INVALID_SMB / ERRSRV ERRerror: a command before NEGOTIATE, a second NEGOTIATE.
pub const INVALID_SMB: SmbError = SmbError {
    nt: 0x0001_0002,
    class: 2,
    code: 1,
};
/// STATUS_SMB_BAD_UID / ERRSRV ERRbaduid: no session (or not ours).
pub const BAD_UID: SmbError = SmbError {
    nt: 0x005B_0002,
    class: 2,
    code: 91,
};
/// STATUS_SMB_BAD_TID / ERRSRV ERRinvtid: no tree connect (or not ours).
pub const BAD_TID: SmbError = SmbError {
    nt: 0x0005_0002,
    class: 2,
    code: 5,
};

/// Who we are, as a session tells its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Our NetBIOS name (NEGOTIATE's ServerName).
    pub server_name: String,
    /// Our workgroup (NEGOTIATE's DomainName, SESSION SETUP's PrimaryDomain, and the
    /// workgroup of a NetServerEnum2 without one).
    pub workgroup: String,
    /// The challenge of NEGOTIATE (never checked: sessions are guests).
    pub challenge: [u8; 8],
}

/// What the driver does after a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes (one NBSS packet).
    Send(Vec<u8>),
    /// Nothing to send (keep-alive, ECHO with count 0).
    Nothing,
    /// Fetch the browse list and send [`answer_enum`]`(request, list)`.
    Enum(EnumRequest),
    /// Send these bytes (possibly none), then close the connection.
    Close(Vec<u8>),
}

/// Counters of one session (the daemon adds them up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// SMB requests seen.
    pub requests: u64,
    /// SMB error replies and RAP error statuses sent.
    pub errors: u64,
    /// NetServerEnum2/3 requests handed to the driver.
    pub enums: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for SESSION REQUEST.
    Start,
    /// NBSS session up; SMB state below.
    Session,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct Session {
    cfg: ServerConfig,
    state: State,
    negotiated: bool,
    uid: Option<u16>,
    tid: Option<u16>,
    /// The client's MaxBufferSize (SESSION SETUP), bounds our replies.
    client_max_buffer: usize,
    pub counters: SessionCounters,
}

/// The fields of a request header a reply copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub command: u8,
    pub ids: Ids,
    pub nt_status: bool,
    pub unicode: bool,
}

/// Build an SMB1 reply (framed as an NBSS SESSION MESSAGE) to `h`.
pub(crate) fn reply(h: &Header, err: Option<SmbError>, words: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut m = smb::request(h.command, h.ids, words, bytes);
    m[9] = REPLY_FLAGS;
    let mut flags2 = FLAGS2_LONG_NAMES;
    if h.nt_status {
        flags2 |= FLAGS2_NT_STATUS;
    }
    m[10..12].copy_from_slice(&flags2.to_le_bytes());
    if let Some(e) = err {
        if h.nt_status {
            m[5..9].copy_from_slice(&e.nt.to_le_bytes());
        } else {
            m[5] = e.class;
            m[6] = 0;
            m[7..9].copy_from_slice(&e.code.to_le_bytes());
        }
    }
    // smb::request keeps every message under the 17-bit NBSS limit: words ≤ 510 bytes,
    // bytes ≤ 65,535 bytes; ours are far smaller.
    nbss::session_message(&m).unwrap_or_default()
}

fn error_reply(h: &Header, e: SmbError) -> Vec<u8> {
    reply(h, Some(e), &[], &[])
}

/// Decode a first-level encoded NetBIOS name (RFC 1001 14.1) at the start of `b`,
/// returning its length on the wire (scope labels included); `None` if malformed.
fn encoded_name_len(b: &[u8]) -> Option<usize> {
    let first = b.first()?;
    if *first != 32 {
        return None;
    }
    let half = b.get(1..33)?;
    if !half.iter().all(|c| (b'A'..=b'P').contains(c)) {
        return None;
    }
    // Scope labels (bounded by the packet), then the root label.
    let mut at = 33;
    for _ in 0..128 {
        let len = usize::from(*b.get(at)?);
        if len == 0 {
            return Some(at + 1);
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    None
}

impl Session {
    pub fn new(cfg: ServerConfig) -> Session {
        Session {
            cfg,
            state: State::Start,
            negotiated: false,
            uid: None,
            tid: None,
            client_max_buffer: usize::from(u16::MAX),
            counters: SessionCounters::default(),
        }
    }

    /// The reply to a [`Step::Enum`] request from `list`.
    pub fn answer(&self, req: &EnumRequest, list: &ListSnapshot) -> Vec<u8> {
        answer_enum(req, list, &self.cfg.workgroup)
    }

    /// The reply to a [`Step::Enum`] request when no list can be had: RAP `status`
    /// (e.g. 2114, server service not started).
    pub fn answer_status(&mut self, req: &EnumRequest, status: u16) -> Vec<u8> {
        self.counters.errors += 1;
        enum2::rap_reply(&req.header, status, 0, 0, &[])
    }

    /// Our workgroup.
    pub fn workgroup(&self) -> &str {
        &self.cfg.workgroup
    }

    /// Handle one NBSS packet: `kind` is the NBSS type, `body` its payload (the driver
    /// reads the 4-byte header with [`nbss::parse_header`] and refuses bodies above
    /// [`MAX_REQUEST`]).
    pub fn handle(&mut self, kind: u8, body: &[u8]) -> Step {
        if body.len() > MAX_REQUEST {
            return Step::Close(Vec::new());
        }
        match (self.state, kind) {
            (_, nbss::KEEP_ALIVE) => Step::Nothing,
            (State::Start, nbss::SESSION_REQUEST) => {
                let called = encoded_name_len(body);
                let calling = called.and_then(|n| encoded_name_len(&body[n..]).map(|m| n + m));
                if calling == Some(body.len()) {
                    self.state = State::Session;
                    Step::Send(vec![nbss::POSITIVE_RESPONSE, 0, 0, 0])
                } else {
                    // Unspecified error (RFC 1002 4.3.4), then close.
                    self.counters.errors += 1;
                    Step::Close(vec![nbss::NEGATIVE_RESPONSE, 0, 0, 1, 0x8F])
                }
            }
            (State::Session, nbss::SESSION_MESSAGE) => self.smb(body),
            // A message before the session, a second SESSION REQUEST, a response type
            // from a client: not NBSS as a client speaks it.
            _ => {
                self.counters.errors += 1;
                Step::Close(Vec::new())
            }
        }
    }

    fn smb(&mut self, msg: &[u8]) -> Step {
        self.counters.requests += 1;
        if self.counters.requests > MAX_REQUESTS as u64 {
            self.counters.errors += 1;
            return Step::Close(Vec::new());
        }
        // Without a whole SMB1 header there is nothing to address a reply to.
        if msg.len() < HEADER_LEN || &msg[..4] != b"\xFFSMB" {
            self.counters.errors += 1;
            return Step::Close(Vec::new());
        }
        let flags2 = le16(msg, 10).unwrap_or(0);
        let h = Header {
            command: msg[4],
            ids: Ids {
                tid: le16(msg, 24).unwrap_or(0),
                pid: le16(msg, 26).unwrap_or(0),
                uid: le16(msg, 28).unwrap_or(0),
                mid: le16(msg, 30).unwrap_or(0),
            },
            nt_status: flags2 & FLAGS2_NT_STATUS != 0,
            unicode: flags2 & FLAGS2_UNICODE != 0,
        };
        let step = match smb::parse_message(msg) {
            Err(_) => Step::Send(error_reply(&h, INVALID_PARAMETER)),
            Ok(_) if msg[9] & 0x80 != 0 => Step::Send(error_reply(&h, INVALID_PARAMETER)),
            Ok(r) => self.command(&h, r.words, r.bytes, msg),
        };
        if let Step::Send(b) = &step {
            // NBSS header (4) + SMB status at 5..9.
            if b.get(9..13).is_some_and(|s| s != [0; 4]) {
                self.counters.errors += 1;
            }
        }
        step
    }

    fn command(&mut self, h: &Header, words: &[u8], bytes: &[u8], msg: &[u8]) -> Step {
        if h.command == smb::SMB_COM_NEGOTIATE {
            return Step::Send(self.negotiate(h, bytes));
        }
        if !self.negotiated {
            return Step::Send(error_reply(h, INVALID_SMB));
        }
        if h.command == SMB_COM_ECHO {
            // EchoCount 0: no reply (MS-CIFS 3.3.5.32); else one, whatever the count.
            return match le16(words, 0) {
                None => Step::Send(error_reply(h, INVALID_PARAMETER)),
                Some(0) => Step::Nothing,
                Some(_) => Step::Send(reply(h, None, &1u16.to_le_bytes(), bytes)),
            };
        }
        if h.command == smb::SMB_COM_SESSION_SETUP_ANDX {
            return Step::Send(self.session_setup(h, words));
        }
        if self.uid != Some(h.ids.uid) {
            return Step::Send(error_reply(h, BAD_UID));
        }
        match h.command {
            smb::SMB_COM_TREE_CONNECT_ANDX => Step::Send(self.tree_connect(h, words, bytes, msg)),
            SMB_COM_LOGOFF_ANDX => {
                self.uid = None;
                self.tid = None;
                Step::Send(reply(h, None, &[0xFF, 0, 0, 0], &[]))
            }
            _ if self.tid != Some(h.ids.tid) => Step::Send(error_reply(h, BAD_TID)),
            SMB_COM_TREE_DISCONNECT => {
                self.tid = None;
                Step::Send(reply(h, None, &[], &[]))
            }
            smb::SMB_COM_TRANSACTION => self.transaction(h, words, bytes, msg),
            _ => Step::Send(error_reply(h, NOT_SUPPORTED)),
        }
    }

    fn negotiate(&mut self, h: &Header, bytes: &[u8]) -> Vec<u8> {
        if self.negotiated {
            return error_reply(h, INVALID_SMB);
        }
        // Dialects: 0x02 "name" NUL, ...
        let mut index = None;
        let mut count = 0u16;
        let mut rest = bytes;
        while let Some((&0x02, tail)) = rest.split_first() {
            let Some(end) = tail.iter().position(|&b| b == 0) else {
                return error_reply(h, INVALID_PARAMETER);
            };
            if index.is_none() && &tail[..end] == b"NT LM 0.12" {
                index = Some(count);
            }
            count = count.saturating_add(1);
            rest = &tail[end + 1..];
        }
        if !rest.is_empty() || count == 0 {
            return error_reply(h, INVALID_PARAMETER);
        }
        let Some(index) = index else {
            // No dialect we speak: DialectIndex 0xFFFF (MS-CIFS 2.2.4.52.2).
            return reply(h, None, &0xFFFFu16.to_le_bytes(), &[]);
        };
        self.negotiated = true;
        let mut w = Vec::with_capacity(34);
        w.extend_from_slice(&index.to_le_bytes());
        w.push(0x03); // user-level security, challenge/response
        w.extend_from_slice(&1u16.to_le_bytes()); // MaxMpxCount
        w.extend_from_slice(&1u16.to_le_bytes()); // MaxNumberVcs
        w.extend_from_slice(&SERVER_MAX_BUFFER.to_le_bytes());
        w.extend_from_slice(&65_536u32.to_le_bytes()); // MaxRawSize
        w.extend_from_slice(&0u32.to_le_bytes()); // SessionKey
        w.extend_from_slice(&CAPABILITIES.to_le_bytes());
        w.extend_from_slice(&0u64.to_le_bytes()); // SystemTime
        w.extend_from_slice(&0u16.to_le_bytes()); // ServerTimeZone
        w.push(8); // ChallengeLength
        let mut b = self.cfg.challenge.to_vec();
        // DomainName and ServerName: UTF-16LE, as Windows sends them and as Samba's
        // client reads them whatever FLAGS2 says.
        for s in [&self.cfg.workgroup, &self.cfg.server_name] {
            for c in s.encode_utf16().take(15).chain(std::iter::once(0)) {
                b.extend_from_slice(&c.to_le_bytes());
            }
        }
        reply(h, None, &w, &b)
    }

    fn session_setup(&mut self, h: &Header, words: &[u8]) -> Vec<u8> {
        // No AndX chain: a chained request would go unanswered.
        if words.first().is_some_and(|&c| c != 0xFF) {
            return error_reply(h, NOT_SUPPORTED);
        }
        // The credentials are not even parsed: every session is a guest.
        if let Some(max) = le16(words, 4) {
            self.client_max_buffer = usize::from(max).max(1024);
        } else {
            return error_reply(h, INVALID_PARAMETER);
        }
        self.uid = Some(UID);
        let mut h = *h;
        h.ids.uid = UID;
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(b"Unix\0nbdgm\0");
        b.extend_from_slice(&enum2::oem(&self.cfg.workgroup, 15));
        b.push(0);
        // AndXCommand none, reserved, AndXOffset 0, Action: logged in as guest.
        reply(&h, None, &[0xFF, 0, 0, 0, 1, 0], &b)
    }

    fn tree_connect(&mut self, h: &Header, words: &[u8], bytes: &[u8], msg: &[u8]) -> Vec<u8> {
        if words.len() < 8 {
            return error_reply(h, INVALID_PARAMETER);
        }
        if words[0] != 0xFF {
            return error_reply(h, NOT_SUPPORTED);
        }
        let pw_len = usize::from(le16(words, 6).unwrap_or(0));
        let Some(after_pw) = bytes.get(pw_len..) else {
            return error_reply(h, INVALID_PARAMETER);
        };
        let bytes_at = msg.len() - bytes.len();
        let Some(path) = read_string(after_pw, bytes_at + pw_len, h.unicode) else {
            return error_reply(h, INVALID_PARAMETER);
        };
        let share = path.rsplit('\\').next().unwrap_or("");
        if !share.eq_ignore_ascii_case("IPC$") {
            return error_reply(h, BAD_NETWORK_NAME);
        }
        self.tid = Some(TID);
        let mut h = *h;
        h.ids.tid = TID;
        // AndX none, OptionalSupport 0; Service "IPC", NativeFileSystem "".
        reply(&h, None, &[0xFF, 0, 0, 0, 0, 0], b"IPC\0\0")
    }

    fn transaction(&mut self, h: &Header, words: &[u8], bytes: &[u8], msg: &[u8]) -> Step {
        let send = |e| Step::Send(error_reply(h, e));
        if words.len() < 28 {
            return send(INVALID_PARAMETER);
        }
        let w = |at| usize::from(le16(words, at).unwrap_or(0));
        let (total_params, total_data, max_data) = (w(0), w(2), w(6));
        let (pc, po, dc) = (w(18), w(20), w(22));
        let setup_count = usize::from(words[26]);
        if words.len() != 28 + 2 * setup_count {
            return send(INVALID_PARAMETER);
        }
        // One piece only: RAP requests are small (no TRANSACTION SECONDARY).
        if pc != total_params || dc != total_data {
            return send(NOT_SUPPORTED);
        }
        let bytes_at = msg.len() - bytes.len();
        let Some(name) = read_string(bytes, bytes_at, h.unicode) else {
            return send(INVALID_PARAMETER);
        };
        if !name.eq_ignore_ascii_case("\\PIPE\\LANMAN") {
            return send(NOT_SUPPORTED);
        }
        let Some(params) = msg.get(po..po + pc).filter(|_| po >= bytes_at) else {
            return send(INVALID_PARAMETER);
        };
        let limit = max_data.min(self.client_max_buffer.saturating_sub(enum2::REPLY_OVERHEAD));
        match enum2::parse_request(params) {
            Ok(mut req) => {
                req.header = *h;
                req.max_data = req.max_data.min(limit);
                self.counters.enums += 1;
                Step::Enum(req)
            }
            Err(status) => {
                self.counters.errors += 1;
                Step::Send(enum2::rap_reply(h, status, 0, 0, &[]))
            }
        }
    }
}

/// A NUL-terminated string at the start of `b` (which starts `at` bytes into the SMB
/// message): OEM (Latin-1), or UTF-16LE aligned to an even offset when `unicode`.
/// At most 1,024 characters; `None` without a terminator.
fn read_string(b: &[u8], at: usize, unicode: bool) -> Option<String> {
    if !unicode {
        let end = b.iter().take(1024).position(|&c| c == 0)?;
        return Some(crate::rap::oem_to_string(&b[..end]));
    }
    let b = b.get(at % 2..)?;
    let units: Vec<u16> = b
        .chunks_exact(2)
        .take(1024)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    if b.len() < 2 * units.len() + 2 {
        return None;
    }
    Some(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests;
