//! The blocking exchange over one TCP connection, bounded by a deadline.

use crate::nbss::{self, SessionResponse};
use crate::smb::{self, Ids, Reply, TransAssembly};
use crate::{rap, Options, RapError, ServerInfo, SmbStatus, MAX_MESSAGE};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// RAP receive buffer size requested.
const RECV_BUFFER: u16 = 0xFFFF;
/// At most this many keep-alives / pieces before giving up (each is also time bounded).
const MAX_FRAMES: usize = 64;
/// Most bytes read from the peer over one connection (issue 12 item 1): the small
/// replies of the set-up plus one TRANSACTION reply (≤ 64 KiB of parameters and
/// 64 KiB of data, headers and a few pieces) fit with room to spare.
pub const MAX_READ_BYTES: usize = 512 * 1024;

struct Conn {
    stream: TcpStream,
    deadline: Instant,
    ids: Ids,
    /// Bytes still allowed from the peer ([`MAX_READ_BYTES`] at the start).
    budget: usize,
}

fn remaining(deadline: Instant, stage: &'static str) -> Result<Duration, RapError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) {
        Err(RapError::Timeout(stage))
    } else {
        Ok(left)
    }
}

fn io_error(stage: &'static str, e: std::io::Error) -> RapError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => RapError::Timeout(stage),
        _ => RapError::Io { stage, source: e },
    }
}

impl Conn {
    fn open(addr: Ipv4Addr, port: u16, deadline: Instant) -> Result<Conn, RapError> {
        let target = SocketAddr::V4(SocketAddrV4::new(addr, port));
        let left = remaining(deadline, "connect")?;
        let stream = TcpStream::connect_timeout(&target, left).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => RapError::Timeout("connect"),
            _ => RapError::Connect {
                addr,
                port,
                source: e,
            },
        })?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            deadline,
            ids: Ids {
                pid: (std::process::id() & 0xFFFF) as u16,
                ..Ids::default()
            },
            budget: MAX_READ_BYTES,
        })
    }

    fn write_all(&mut self, buf: &[u8], stage: &'static str) -> Result<(), RapError> {
        let left = remaining(self.deadline, stage)?;
        self.stream
            .set_write_timeout(Some(left))
            .map_err(|e| io_error(stage, e))?;
        self.stream.write_all(buf).map_err(|e| io_error(stage, e))
    }

    fn read_exact(&mut self, buf: &mut [u8], stage: &'static str) -> Result<(), RapError> {
        self.budget = self.budget.checked_sub(buf.len()).ok_or_else(|| {
            RapError::TooLarge(format!(
                "more than {MAX_READ_BYTES} bytes from the server during {stage}"
            ))
        })?;
        let mut got = 0;
        while got < buf.len() {
            let left = remaining(self.deadline, stage)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| io_error(stage, e))?;
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(RapError::Io {
                        stage,
                        source: std::io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "connection closed by the server",
                        ),
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(stage, e)),
            }
        }
        Ok(())
    }

    /// Read one NBSS packet (skipping keep-alives): (type, body). Bodies above
    /// [`MAX_MESSAGE`] cannot be announced by the 17-bit length.
    fn read_packet(&mut self, stage: &'static str) -> Result<(u8, Vec<u8>), RapError> {
        for _ in 0..MAX_FRAMES {
            let mut h = [0u8; 4];
            self.read_exact(&mut h, stage)?;
            let (t, len) = nbss::parse_header(&h)?;
            if len > MAX_MESSAGE || len > self.budget {
                return Err(RapError::TooLarge(format!(
                    "NBSS packet of {len} bytes ({} left of {MAX_READ_BYTES} per connection)",
                    self.budget
                )));
            }
            let mut body = vec![0u8; len];
            self.read_exact(&mut body, stage)?;
            if t != nbss::KEEP_ALIVE {
                return Ok((t, body));
            }
        }
        Err(RapError::Malformed("only keep-alives".into()))
    }

    fn session(&mut self, called: &str, calling: &str) -> Result<SessionResponse, RapError> {
        self.write_all(&nbss::session_request(called, calling), "session request")?;
        let (t, body) = self.read_packet("session request")?;
        nbss::parse_session_response(t, &body)
    }

    /// Send an SMB request and read its reply (by MID), returning the raw message.
    fn call(&mut self, req: Vec<u8>, stage: &'static str) -> Result<Vec<u8>, RapError> {
        self.write_all(&nbss::session_message(&req)?, stage)?;
        self.read_smb(stage)
    }

    fn read_smb(&mut self, stage: &'static str) -> Result<Vec<u8>, RapError> {
        let (t, body) = self.read_packet(stage)?;
        if t != nbss::SESSION_MESSAGE {
            return Err(RapError::Malformed(format!(
                "NBSS packet type {t:#04x} during {stage}"
            )));
        }
        Ok(body)
    }

    fn next_mid(&mut self) -> Ids {
        self.ids.mid = self.ids.mid.wrapping_add(1);
        self.ids
    }
}

/// Check a reply belongs to our request and succeeded.
fn check<'a>(
    msg: &'a [u8],
    command: u8,
    mid: u16,
    ok: &[SmbStatus],
) -> Result<Reply<'a>, RapError> {
    let r = smb::parse_reply(msg)?;
    if r.command != command || r.mid != mid {
        return Err(RapError::Malformed(format!(
            "reply to command {:#04x} mid {} while waiting for {} mid {mid}",
            r.command,
            r.mid,
            smb::command_name(command)
        )));
    }
    if let Some(status) = r.status {
        if !ok.contains(&status) {
            return Err(RapError::Smb { command, status });
        }
    }
    Ok(r)
}

fn connect_session(
    addr: Ipv4Addr,
    port: u16,
    server: &str,
    calling: &str,
    deadline: Instant,
) -> Result<Conn, RapError> {
    let mut conn = Conn::open(addr, port, deadline)?;
    match conn.session(server, calling)? {
        SessionResponse::Positive => Ok(conn),
        SessionResponse::Negative(code @ (0x80 | 0x82)) if server != "*SMBSERVER" => {
            drop(conn);
            let mut conn = Conn::open(addr, port, deadline)?;
            match conn.session("*SMBSERVER", calling)? {
                SessionResponse::Positive => Ok(conn),
                SessionResponse::Negative(_) => Err(RapError::SessionRefused {
                    called: format!("{server}<20> (and *SMBSERVER<20>)"),
                    code,
                }),
                SessionResponse::Retarget(a, p) => Err(RapError::Malformed(format!(
                    "session retargeted to {a}:{p} (not supported)"
                ))),
            }
        }
        SessionResponse::Negative(code) => Err(RapError::SessionRefused {
            called: format!("{server}<20>"),
            code,
        }),
        SessionResponse::Retarget(a, p) => Err(RapError::Malformed(format!(
            "session retargeted to {a}:{p} (not supported)"
        ))),
    }
}

pub(crate) fn run(
    addr: Ipv4Addr,
    port: u16,
    server_name: &str,
    workgroup: &str,
    server_type: u32,
    opts: &Options,
) -> Result<Vec<ServerInfo>, RapError> {
    let server = nbss::check_name("server name", server_name)?;
    let calling = nbss::check_name("client name", &opts.client_name)?;
    let domain = if workgroup.is_empty() {
        String::new()
    } else {
        nbss::check_name("workgroup", workgroup)?
    };
    let deadline = Instant::now() + opts.timeout;
    let mut conn = connect_session(addr, port, &server, &calling, deadline)?;

    // NEGOTIATE
    let ids = conn.next_mid();
    let msg = conn.call(smb::negotiate(ids), "negotiate")?;
    let neg = smb::parse_negotiate(&check(&msg, smb::SMB_COM_NEGOTIATE, ids.mid, &[])?)?;

    // SESSION SETUP (anonymous)
    let ids = conn.next_mid();
    let msg = conn.call(
        smb::session_setup(ids, neg.max_mpx, neg.session_key),
        "session setup",
    )?;
    let r = check(&msg, smb::SMB_COM_SESSION_SETUP_ANDX, ids.mid, &[])?;
    conn.ids.uid = r.uid;

    // TREE CONNECT \\SERVER\IPC$
    let ids = conn.next_mid();
    let msg = conn.call(smb::tree_connect_ipc(ids, &server), "tree connect")?;
    let r = check(&msg, smb::SMB_COM_TREE_CONNECT_ANDX, ids.mid, &[])?;
    conn.ids.tid = r.tid;

    // TRANSACTION \PIPE\LANMAN: NetServerEnum2
    let ids = conn.next_mid();
    let params = rap::request_params(RECV_BUFFER, server_type, &domain);
    let req = smb::transaction_lanman(ids, &params, 8, RECV_BUFFER);
    conn.write_all(&nbss::session_message(&req)?, "transaction")?;
    // STATUS_BUFFER_OVERFLOW / ERRDOS ERRmoredata: partial data, still a valid reply.
    let partial = [
        SmbStatus::Nt(0x8000_0005),
        SmbStatus::Dos {
            class: 1,
            code: 234,
        },
    ];
    let mut asm = TransAssembly::default();
    for _ in 0..MAX_FRAMES {
        let msg = conn.read_smb("transaction")?;
        let r = check(&msg, smb::SMB_COM_TRANSACTION, ids.mid, &partial)?;
        if asm.add(&smb::parse_trans(&r)?)? {
            let (p, d) = asm.finish();
            return rap::parse_reply(&p, &d, opts.max_entries);
        }
    }
    Err(RapError::TooLarge(format!(
        "TRANSACTION reply in more than {MAX_FRAMES} pieces"
    )))
}
