//! 139/tcp, the session service: a SESSION REQUEST to `*SMBSERVER<20>` (RFC 1002 §4.3.2)
//! after the connect, and the description of the answer (§4.3.3–4.3.5).

use super::evidence::{port_result, Evidence};
use super::tcp::tcp_connect;
use super::{Port, PortResult, ProbeOptions, RateLimiter, Scope, PROBE_NAME};
use nbdgm_rap::nbss::{
    Refusal, NEGATIVE_RESPONSE, POSITIVE_RESPONSE, RETARGET_RESPONSE, SESSION_REQUEST,
};
use nbdgm_wire::Name;
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A NetBIOS SESSION REQUEST (RFC 1002 §4.3.2) from `calling` to `called`.
pub fn session_request(called: &Name, calling: &Name) -> Vec<u8> {
    let mut names = Vec::with_capacity(68);
    called.emit(&mut names);
    calling.emit(&mut names);
    let len = (names.len() as u32).min(0x1_ffff);
    let mut out = vec![
        SESSION_REQUEST,
        ((len >> 16) & 1) as u8,
        (len >> 8) as u8,
        len as u8,
    ];
    out.extend_from_slice(&names);
    out
}

pub(super) fn session_error_name(code: u8) -> &'static str {
    Refusal::from_code(code).map_or("unknown error code", Refusal::text)
}

/// Describe a session-service answer (4-byte header plus up to 6 bytes of body).
pub fn describe_session_answer(header: [u8; 4], body: &[u8]) -> String {
    match header[0] {
        POSITIVE_RESPONSE => "positive session response (0x82) to *SMBSERVER<20>".into(),
        NEGATIVE_RESPONSE => match body.first() {
            Some(&c) => format!(
                "negative session response (0x83), error {c:#04x} ({})",
                session_error_name(c)
            ),
            None => "negative session response (0x83) without error code".into(),
        },
        RETARGET_RESPONSE => match body.get(..6) {
            Some(b) => format!(
                "retarget session response (0x84) to {}.{}.{}.{}:{}",
                b[0],
                b[1],
                b[2],
                b[3],
                u16::from_be_bytes([b[4], b[5]])
            ),
            None => "retarget session response (0x84)".into(),
        },
        t => format!("unexpected session-service packet type {t:#04x}"),
    }
}

/// 139/tcp: connect, then a SESSION REQUEST to `*SMBSERVER<20>` from `NBDGMPROBE<00>`.
pub async fn probe_session(
    scope: &Scope,
    target: Ipv4Addr,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> PortResult {
    let port = Port::Ssn139Tcp;
    let (mut s, rtt, attempts) = match tcp_connect(scope, target, port, opts, limiter).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (Ok(called), Ok(calling)) = (Name::new("*SMBSERVER", 0x20), Name::new(PROBE_NAME, 0))
    else {
        return port_result(
            port,
            &Evidence::Answer("TCP handshake completed (SYN-ACK)".into()),
            false,
            Some(rtt),
            attempts,
        );
    };
    let req = session_request(&called, &calling);
    let window = opts.window(0).max(Duration::from_millis(500));
    let exchange = async {
        s.write_all(&req).await?;
        let mut header = [0u8; 4];
        s.read_exact(&mut header).await?;
        let len = (usize::from(header[1] & 1) << 16)
            | usize::from(header[2]) << 8
            | usize::from(header[3]);
        let mut body = vec![0u8; len.min(6)];
        s.read_exact(&mut body).await?;
        io::Result::Ok(describe_session_answer(header, &body))
    };
    let text = match tokio::time::timeout(window, exchange).await {
        Ok(Ok(t)) => format!("TCP handshake completed; {t}"),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "TCP handshake completed; closed without a session response".into()
        }
        Ok(Err(e)) => format!("TCP handshake completed; no session response: {e}"),
        Err(_) => format!(
            "TCP handshake completed; no session response within {} ms",
            window.as_millis()
        ),
    };
    port_result(port, &Evidence::Answer(text), false, Some(rtt), attempts)
}
