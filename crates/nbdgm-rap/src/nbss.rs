//! NetBIOS session service framing (RFC 1002 §4.3): the packet types, the NEGATIVE
//! SESSION RESPONSE error codes and the port, shared with the exposure probe of 139/tcp
//! (`nbdgm_probe::probe::tcp_session`), and the framing the RAP client uses.

use crate::{RapError, MAX_MESSAGE};

/// SESSION MESSAGE.
pub const SESSION_MESSAGE: u8 = 0x00;
/// SESSION REQUEST.
pub const SESSION_REQUEST: u8 = 0x81;
/// POSITIVE SESSION RESPONSE.
pub const POSITIVE_RESPONSE: u8 = 0x82;
/// NEGATIVE SESSION RESPONSE.
pub const NEGATIVE_RESPONSE: u8 = 0x83;
/// RETARGET SESSION RESPONSE.
pub const RETARGET_RESPONSE: u8 = 0x84;
/// SESSION KEEP ALIVE.
pub const KEEP_ALIVE: u8 = 0x85;

/// The session service port (RFC 1002 §4.3.1, RFC 1001 §16.1).
pub const SESSION_PORT: u16 = 139;

/// The error code of a NEGATIVE SESSION RESPONSE (RFC 1002 §4.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Refusal {
    NotListeningOnCalledName = 0x80,
    NotListeningForCallingName = 0x81,
    CalledNameNotPresent = 0x82,
    InsufficientResources = 0x83,
    Unspecified = 0x8F,
}

impl Refusal {
    /// All five, in code order.
    pub const ALL: [Refusal; 5] = [
        Refusal::NotListeningOnCalledName,
        Refusal::NotListeningForCallingName,
        Refusal::CalledNameNotPresent,
        Refusal::InsufficientResources,
        Refusal::Unspecified,
    ];

    /// The code of `byte`, if the RFC defines it.
    pub fn from_code(byte: u8) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.code() == byte)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The RFC's wording, in lower case.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::NotListeningOnCalledName => "not listening on called name",
            Refusal::NotListeningForCallingName => "not listening for calling name",
            Refusal::CalledNameNotPresent => "called name not present",
            Refusal::InsufficientResources => "called name present, but insufficient resources",
            Refusal::Unspecified => "unspecified error",
        }
    }
}

/// Meaning of a NEGATIVE SESSION RESPONSE error code (`unknown` outside the RFC's five).
pub fn refusal_name(code: u8) -> &'static str {
    Refusal::from_code(code).map_or("unknown", Refusal::text)
}

/// Check a NetBIOS name (1–15 characters, printable ASCII) and upper-case it.
pub fn check_name(what: &str, name: &str) -> Result<String, RapError> {
    if name.is_empty() || name.len() > 15 || !name.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Err(RapError::InvalidArgument(format!(
            "{what} {name:?}: 1-15 printable ASCII characters"
        )));
    }
    Ok(name.to_ascii_uppercase())
}

/// First-level encoded name (RFC 1001 14.1) without scope: length 32, 32 half-byte
/// characters, root label. `name` is padded with spaces to 15 bytes (`*SMBSERVER` too:
/// it is a name, not the wildcard).
pub fn encode_name(name: &str, suffix: u8, out: &mut Vec<u8>) {
    let mut raw = [b' '; 16];
    for (d, s) in raw.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    raw[15] = suffix;
    out.push(32);
    for b in raw {
        out.push(b'A' + (b >> 4));
        out.push(b'A' + (b & 0x0F));
    }
    out.push(0);
}

/// SESSION REQUEST packet from `calling<00>` to `called<20>`.
pub fn session_request(called: &str, calling: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(68);
    encode_name(called, 0x20, &mut body);
    encode_name(calling, 0x00, &mut body);
    let mut out = vec![SESSION_REQUEST, 0];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Frame an SMB message as a SESSION MESSAGE.
pub fn session_message(smb: &[u8]) -> Result<Vec<u8>, RapError> {
    if smb.len() > MAX_MESSAGE {
        return Err(RapError::TooLarge(format!(
            "request of {} bytes",
            smb.len()
        )));
    }
    let len = smb.len() as u32;
    let mut out = Vec::with_capacity(4 + smb.len());
    out.push(SESSION_MESSAGE);
    out.push(((len >> 16) & 1) as u8);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(smb);
    Ok(out)
}

/// Parse a 4-byte NBSS header: (type, length). The length uses the extension bit.
pub fn parse_header(h: &[u8]) -> Result<(u8, usize), RapError> {
    let [t, flags, hi, lo] = *h else {
        return Err(RapError::Malformed(format!(
            "NBSS header of {} bytes",
            h.len()
        )));
    };
    if flags & !1 != 0 {
        return Err(RapError::Malformed(format!(
            "NBSS flags {flags:#04x} (not an NBSS/SMB server?)"
        )));
    }
    let len = (usize::from(flags & 1) << 16) | usize::from(u16::from_be_bytes([hi, lo]));
    Ok((t, len))
}

/// Outcome of a session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionResponse {
    Positive,
    Negative(u8),
    Retarget(std::net::Ipv4Addr, u16),
}

/// Interpret the answer to a SESSION REQUEST: header type and body.
pub fn parse_session_response(t: u8, body: &[u8]) -> Result<SessionResponse, RapError> {
    match (t, body) {
        (POSITIVE_RESPONSE, []) => Ok(SessionResponse::Positive),
        (NEGATIVE_RESPONSE, [code]) => Ok(SessionResponse::Negative(*code)),
        (RETARGET_RESPONSE, [a, b, c, d, p1, p2]) => Ok(SessionResponse::Retarget(
            std::net::Ipv4Addr::new(*a, *b, *c, *d),
            u16::from_be_bytes([*p1, *p2]),
        )),
        _ => Err(RapError::Malformed(format!(
            "session response type {t:#04x} with {} bytes (not an NBSS server?)",
            body.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_are_those_of_rfc_1002() {
        let table: Vec<(u8, &str)> = (0..=255u8)
            .filter_map(|b| Refusal::from_code(b).map(|r| (b, r.text())))
            .collect();
        assert_eq!(
            table,
            [
                (0x80, "not listening on called name"),
                (0x81, "not listening for calling name"),
                (0x82, "called name not present"),
                (0x83, "called name present, but insufficient resources"),
                (0x8F, "unspecified error"),
            ]
        );
        assert_eq!(refusal_name(0x82), "called name not present");
        assert_eq!(refusal_name(0x84), "unknown");
        assert!(Refusal::ALL
            .iter()
            .all(|r| Refusal::from_code(r.code()) == Some(*r)));
    }

    #[test]
    fn encodes_names() {
        let mut v = Vec::new();
        encode_name("SAMBAA", 0x20, &mut v);
        assert_eq!(v.len(), 34);
        assert_eq!(&v[1..5], b"FDEB");
        assert_eq!(&v[31..33], b"CA");
        assert_eq!(session_request("A", "B").len(), 4 + 68);
    }

    #[test]
    fn header_and_response_parsers_reject_garbage() {
        assert!(parse_header(&[]).is_err());
        assert!(parse_header(&[0, 0, 0]).is_err());
        assert!(parse_header(b"HTTP").is_err());
        assert_eq!(parse_header(&[0, 1, 0, 2]).unwrap(), (0, 0x10002));
        assert_eq!(
            parse_session_response(0x82, &[]).unwrap(),
            SessionResponse::Positive
        );
        assert_eq!(
            parse_session_response(0x83, &[0x80]).unwrap(),
            SessionResponse::Negative(0x80)
        );
        assert!(parse_session_response(0x83, &[]).is_err());
        assert!(parse_session_response(0x82, &[1]).is_err());
        assert!(parse_session_response(0x00, &[]).is_err());
        assert!(parse_session_response(0x84, &[1, 2, 3]).is_err());
        assert!(session_message(&vec![0; MAX_MESSAGE + 1]).is_err());
        let m = session_message(&vec![0; 0x10001]).unwrap();
        assert_eq!(parse_header(&m[..4]).unwrap(), (0, 0x10001));
    }
}
