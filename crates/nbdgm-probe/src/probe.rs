//! Exposure probes of the NetBIOS ports (issue 5 §1): NODE STATUS on 137/udp (RFC 1002
//! §4.2.17–4.2.18, DIGEST §4.3), a GetBackupListRequest mailslot write on 138/udp (MS-MAIL
//! §2.2.1, MS-BRWS §2.2.4–2.2.5, DIGEST §5–§6), TCP connects on 138 and 445, and a NetBIOS
//! SESSION REQUEST on 139/tcp (RFC 1002 §4.3.2). Every port ends in a [`PortState`] with the
//! evidence for it (the answer, the ICMP error read from the socket's error queue with
//! `IP_RECVERR`, or the silence); `docs/probe.md` has the mapping.
//!
//! Safety rails: every socket is created, connected and sent on only through [`Scope`],
//! which refuses any destination outside the probed targets; every wait, retry, read and
//! list is bounded; nothing here panics on any input.

use crate::target::{Target, TargetSet};
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{self, MailslotWrite};
use nbdgm_wire::nbns::{self, NodeStatus, Packet, RData, TYPE_NBSTAT};
use nbdgm_wire::Name;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};

/// A probed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Port {
    /// 137/udp, name service.
    #[serde(rename = "137/udp")]
    Ns137Udp,
    /// 138/udp, datagram service.
    #[serde(rename = "138/udp")]
    Dgm138Udp,
    /// 138/tcp (registered by IANA, unused in practice).
    #[serde(rename = "138/tcp")]
    Dgm138Tcp,
    /// 139/tcp, session service.
    #[serde(rename = "139/tcp")]
    Ssn139Tcp,
    /// 445/tcp, SMB direct.
    #[serde(rename = "445/tcp")]
    Smb445Tcp,
}

/// The state a probe ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    Open,
    /// 138/udp silent while 137/udp answered from the same host.
    LikelyOpen,
    #[serde(rename = "open|filtered")]
    OpenFiltered,
    Filtered,
    Closed,
    HostDown,
    Error,
}

/// One port's result with the evidence for its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortResult {
    pub port: Port,
    pub state: PortState,
    /// Which packet answered, or which ICMP came back, or why there is no answer.
    pub evidence: String,
    /// Round-trip time of the deciding answer.
    pub rtt_ms: Option<f64>,
    /// Packets or connection attempts made.
    pub attempts: u32,
}

/// One name from the NODE STATUS answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceName {
    /// `NAME<xx>`.
    pub name: String,
    pub group: bool,
}

/// What the 137/udp answer says about the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub names: Vec<ServiceName>,
    pub workgroup: Option<String>,
    /// `LMB` (<1D>), `DMB` (<1B>), `DC` (<1C>), `browser` (<1E>, MSBROWSE), `file-server` (<20>), ...
    pub roles: Vec<String>,
    /// UNIT_ID as `aa:bb:cc:dd:ee:ff` (zeros from Samba).
    pub mac: Option<String>,
}

/// Everything learned about one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    pub address: Ipv4Addr,
    /// The name the target was given as, when it was a host name.
    pub hostname: Option<String>,
    pub ports: Vec<PortResult>,
    pub info: Option<HostInfo>,
    pub duration_ms: f64,
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub ports: Vec<Port>,
    /// Wait for an answer per attempt (doubled on each retry: backoff).
    pub timeout: Duration,
    pub retries: u32,
    /// Packets (and connection attempts) per second in all; 0 = unlimited.
    pub rate: u32,
    /// Hosts probed at the same time.
    pub concurrency: usize,
    /// Workgroup for the 138/udp probe when 137 gives none.
    pub workgroup: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Ports, states and options

/// Upper bounds applied to [`ProbeOptions`] (see [`ProbeOptions::bounded`]).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);
pub const MAX_RETRIES: u32 = 8;
/// Longest single wait (the backoff doubles the timeout up to this).
pub const MAX_WINDOW: Duration = Duration::from_secs(60);
pub const MAX_CONCURRENCY: usize = 4096;
/// Longest evidence text kept.
pub const MAX_EVIDENCE_LEN: usize = 400;
/// Names kept from one NODE STATUS answer (a 576-byte answer holds about 24).
pub const MAX_NAMES: usize = 64;
/// Source name of the 138/udp probe and calling name of the 139/tcp session request.
pub const PROBE_NAME: &str = "NBDGMPROBE";
/// Workgroup used for the 138/udp probe when neither 137/udp nor the options give one.
pub const DEFAULT_WORKGROUP: &str = "WORKGROUP";

impl Port {
    /// All five, in report order.
    pub const ALL: [Port; 5] = [
        Port::Ns137Udp,
        Port::Dgm138Udp,
        Port::Dgm138Tcp,
        Port::Ssn139Tcp,
        Port::Smb445Tcp,
    ];

    pub fn number(self) -> u16 {
        match self {
            Port::Ns137Udp => 137,
            Port::Dgm138Udp | Port::Dgm138Tcp => 138,
            Port::Ssn139Tcp => 139,
            Port::Smb445Tcp => 445,
        }
    }

    pub fn is_udp(self) -> bool {
        matches!(self, Port::Ns137Udp | Port::Dgm138Udp)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Port::Ns137Udp => "137/udp",
            Port::Dgm138Udp => "138/udp",
            Port::Dgm138Tcp => "138/tcp",
            Port::Ssn139Tcp => "139/tcp",
            Port::Smb445Tcp => "445/tcp",
        }
    }

    /// Parse a `--ports` list: comma-separated `137`, `137/udp`, `138` (both 138/udp and
    /// 138/tcp), `138/udp`, `138/tcp`, `139`, `139/tcp`, `445`, `445/tcp`, or `all`.
    /// The result is in report order without duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<Port>, String> {
        let mut want = Vec::new();
        if s.len() > 200 {
            return Err("port list too long".into());
        }
        for item in s.split(',') {
            let item = item.trim().to_ascii_lowercase();
            let ports: &[Port] = match item.as_str() {
                "all" => &Port::ALL,
                "137" | "137/udp" => &[Port::Ns137Udp],
                "138" => &[Port::Dgm138Udp, Port::Dgm138Tcp],
                "138/udp" => &[Port::Dgm138Udp],
                "138/tcp" => &[Port::Dgm138Tcp],
                "139" | "139/tcp" => &[Port::Ssn139Tcp],
                "445" | "445/tcp" => &[Port::Smb445Tcp],
                "" => return Err("empty entry in the port list".into()),
                other => {
                    return Err(format!(
                        "{other:?}: not one of 137, 138/udp, 138/tcp, 139, 445 (or 138, all)"
                    ))
                }
            };
            want.extend_from_slice(ports);
        }
        Ok(Port::ALL
            .iter()
            .copied()
            .filter(|p| want.contains(p))
            .collect())
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::LikelyOpen => "likely-open",
            PortState::OpenFiltered => "open|filtered",
            PortState::Filtered => "filtered",
            PortState::Closed => "closed",
            PortState::HostDown => "host-down",
            PortState::Error => "error",
        }
    }

    /// `open` or `likely-open`: the service is reachable.
    pub fn is_exposed(self) -> bool {
        matches!(self, PortState::Open | PortState::LikelyOpen)
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default packets per second. Unreachable errors for absent hosts are generated by the
/// local kernel about 3 s after the send (ARP failure) and fall under its ICMP rate limit
/// (`net.ipv4.icmp_msgs_per_sec` 1000, burst 50): sending faster than that to many absent
/// addresses loses most of them, and those hosts read `open|filtered` instead of `host-down`
/// (measured in docs/BENCHMARKS.md §4).
pub const DEFAULT_RATE: u32 = 500;

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            ports: Port::ALL.to_vec(),
            timeout: Duration::from_secs(1),
            retries: 2,
            rate: DEFAULT_RATE,
            concurrency: 64,
            workgroup: None,
        }
    }
}

impl ProbeOptions {
    /// The same options with every value inside its bounds: timeout 10 ms–30 s, at most
    /// 8 retries, concurrency 1–4096, ports de-duplicated in report order.
    pub fn bounded(&self) -> ProbeOptions {
        ProbeOptions {
            ports: Port::ALL
                .iter()
                .copied()
                .filter(|p| self.ports.contains(p))
                .collect(),
            timeout: self.timeout.clamp(MIN_TIMEOUT, MAX_TIMEOUT),
            retries: self.retries.min(MAX_RETRIES),
            rate: self.rate,
            concurrency: self.concurrency.clamp(1, MAX_CONCURRENCY),
            workgroup: self.workgroup.clone(),
        }
    }

    /// The wait after attempt `n` (0-based): the timeout doubled `n` times, at most 60 s.
    pub fn window(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.timeout
            .checked_mul(factor)
            .unwrap_or(MAX_WINDOW)
            .min(MAX_WINDOW)
    }

    /// The longest a port probe can wait for answers in all (every window).
    pub fn total_wait(&self) -> Duration {
        (0..=self.retries.min(MAX_RETRIES))
            .map(|a| self.window(a))
            .fold(Duration::ZERO, |acc, w| acc.saturating_add(w))
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limit

/// A global pacer shared by all probes of a run: at most `rate` packets and connection
/// attempts per second (no burst); 0 = unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            interval: (rate > 0).then(|| Duration::from_secs(1) / rate),
            next: std::sync::Mutex::new(None),
        }
    }

    pub fn unlimited() -> Self {
        RateLimiter::new(0)
    }

    /// Wait for the next free slot.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = tokio::time::Instant::now();
        let slot = {
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evidence and the state decision

/// An entry of a socket's error queue (`IP_RECVERR`, `struct sock_extended_err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// `SO_EE_ORIGIN_*`: 1 local, 2 ICMP.
    pub origin: u8,
    pub icmp_type: u8,
    pub code: u8,
    /// The errno the kernel derived from it.
    pub errno: i32,
    /// Who sent the ICMP (the offender address).
    pub from: Option<Ipv4Addr>,
    /// Our own address on the probing socket, when known (an ICMP from it means the
    /// local kernel gave up, e.g. ARP got no answer).
    pub local: Option<Ipv4Addr>,
}

pub const SO_EE_ORIGIN_LOCAL: u8 = 1;
pub const SO_EE_ORIGIN_ICMP: u8 = 2;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// The RFC 792/1812 name of a destination-unreachable code.
pub fn unreach_code_name(code: u8) -> &'static str {
    match code {
        0 => "net unreachable",
        1 => "host unreachable",
        2 => "protocol unreachable",
        3 => "port unreachable",
        4 => "fragmentation needed",
        5 => "source route failed",
        6 => "destination network unknown",
        7 => "destination host unknown",
        8 => "source host isolated",
        9 => "network administratively prohibited",
        10 => "host administratively prohibited",
        11 => "network unreachable for TOS",
        12 => "host unreachable for TOS",
        13 => "communication administratively prohibited",
        14 => "host precedence violation",
        15 => "precedence cutoff in effect",
        _ => "unknown code",
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin == SO_EE_ORIGIN_ICMP {
            write!(f, "ICMP type {} code {}", self.icmp_type, self.code)?;
            if self.icmp_type == ICMP_DEST_UNREACH {
                write!(f, " ({})", unreach_code_name(self.code))?;
            } else if self.icmp_type == ICMP_TIME_EXCEEDED {
                f.write_str(" (time exceeded)")?;
            }
            if let Some(from) = self.from {
                write!(f, " from {from}")?;
                if Some(from) == self.local && self.icmp_type == ICMP_DEST_UNREACH && self.code == 1
                {
                    f.write_str(" (this host: no ARP answer from the target)")?;
                }
            }
            Ok(())
        } else {
            write!(
                f,
                "local error (origin {}): {}",
                self.origin,
                errno_text(self.errno)
            )
        }
    }
}

fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{} ({e:?})", e.desc())
}

/// What a probe saw, before it is turned into a [`PortState`] by [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A UDP answer, or a completed TCP handshake (with what followed).
    Answer(String),
    /// TCP connection refused by a reset.
    Reset,
    /// An ICMP error (or local error) from the socket's error queue.
    Icmp(IcmpError),
    /// A socket error without error-queue detail.
    Errno { errno: i32, during: String },
    /// Nothing came back.
    Silence {
        attempts: u32,
        waited_ms: u64,
        sent: String,
    },
    /// The probe could not be made (bad option, socket failure, ...).
    Failed(String),
}

/// The state and evidence text for what a probe saw. `ns_answered`: 137/udp of the same
/// host answered (turns a silent 138/udp into `likely-open`).
pub fn decide(port: Port, ev: &Evidence, ns_answered: bool) -> (PortState, String) {
    use PortState::*;
    match ev {
        Evidence::Answer(s) => (Open, s.clone()),
        Evidence::Reset => (Closed, "TCP reset (connection refused)".into()),
        Evidence::Icmp(icmp) => {
            let text = icmp.to_string();
            if icmp.origin != SO_EE_ORIGIN_ICMP {
                let (state, _) = decide(
                    port,
                    &Evidence::Errno {
                        errno: icmp.errno,
                        during: String::new(),
                    },
                    ns_answered,
                );
                return (state, text);
            }
            let state = match (icmp.icmp_type, icmp.code) {
                (ICMP_DEST_UNREACH, 3) => Closed,
                (ICMP_DEST_UNREACH, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => HostDown,
                (ICMP_DEST_UNREACH, 2 | 9 | 10 | 13 | 14 | 15) => Filtered,
                _ => Error,
            };
            (state, text)
        }
        Evidence::Errno { errno, during } => {
            use nix::errno::Errno as E;
            let e = E::from_raw(*errno);
            let state = match e {
                E::ECONNREFUSED => Closed,
                E::EHOSTUNREACH | E::ENETUNREACH | E::EHOSTDOWN | E::ENONET => HostDown,
                E::EPERM => Filtered,
                E::ETIMEDOUT => Filtered,
                _ => Error,
            };
            let mut text = errno_text(*errno);
            if e == E::EPERM {
                text.push_str(": a local firewall refused the packet");
            }
            if !during.is_empty() {
                text = format!("{during}: {text}");
            }
            (state, text)
        }
        Evidence::Silence {
            attempts,
            waited_ms,
            sent,
        } => {
            let base = format!("no answer to {attempts} {sent} in {waited_ms} ms");
            match port {
                Port::Dgm138Udp if ns_answered => (
                    LikelyOpen,
                    format!(
                        "{base} and no ICMP error, while 137/udp answered (nmbd answers \
                         GetBackupList only as local master browser)"
                    ),
                ),
                Port::Ns137Udp | Port::Dgm138Udp => {
                    (OpenFiltered, format!("{base} and no ICMP error"))
                }
                _ => (Filtered, format!("{base} (no SYN-ACK, no reset, no ICMP)")),
            }
        }
        Evidence::Failed(s) => (Error, s.clone()),
    }
}

/// Bounded evidence: at most [`MAX_EVIDENCE_LEN`] characters (then `…`). The text is kept
/// as received (JSON is exact); text output escapes it ([`nbdgm_wire::text::escape`]).
pub fn clean(s: &str) -> String {
    match s.char_indices().nth(MAX_EVIDENCE_LEN) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn port_result(
    port: Port,
    ev: &Evidence,
    ns_answered: bool,
    rtt: Option<Duration>,
    attempts: u32,
) -> PortResult {
    let (state, evidence) = decide(port, ev, ns_answered);
    PortResult {
        port,
        state,
        evidence: clean(&evidence),
        rtt_ms: rtt.map(ms),
        attempts,
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------
// The send guard

/// The only way to a probe socket: [`Scope::check`] runs before every socket is connected,
/// and sockets are only sent on after being connected to a checked destination, so no
/// packet can leave for an address outside the targets.
#[derive(Debug, Clone)]
pub struct Scope {
    allowed: Arc<TargetSet>,
}

impl Scope {
    pub fn new(allowed: TargetSet) -> Self {
        Scope {
            allowed: Arc::new(allowed),
        }
    }

    /// Refuse any destination outside the target set.
    pub fn check(&self, dest: Ipv4Addr) -> io::Result<()> {
        if self.allowed.contains(dest) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refusing to send to {dest}: not one of the given targets"),
            ))
        }
    }

    /// A UDP socket from an ephemeral port, `IP_RECVERR` on, connected to `dest`.
    fn udp(&self, dest: SocketAddrV4) -> io::Result<ProbeUdp> {
        self.check(*dest.ip())?;
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
            .map_err(io::Error::from)?;
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())?;
        s.connect(&SocketAddr::V4(dest).into())?;
        let local = match s.local_addr()?.as_socket() {
            Some(SocketAddr::V4(a)) => a,
            _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        };
        let std: std::net::UdpSocket = s.into();
        Ok(ProbeUdp {
            sock: tokio::net::UdpSocket::from_std(std)?,
            local,
        })
    }

    /// A TCP connect to `dest` (the returned future), from a socket with `IP_RECVERR` on,
    /// and a second handle on that socket for reading its error queue.
    fn tcp_connect(
        &self,
        dest: SocketAddrV4,
    ) -> io::Result<(
        impl Future<Output = io::Result<tokio::net::TcpStream>>,
        socket2::Socket,
    )> {
        self.check(*dest.ip())?;
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
            .map_err(io::Error::from)?;
        s.set_nonblocking(true)?;
        let errq = s.try_clone()?;
        let std: std::net::TcpStream = s.into();
        let sock = tokio::net::TcpSocket::from_std_stream(std);
        Ok((sock.connect(SocketAddr::V4(dest)), errq))
    }
}

struct ProbeUdp {
    sock: tokio::net::UdpSocket,
    local: SocketAddrV4,
}

/// Read one entry of the error queue, if there is one (never blocks).
fn read_errqueue(fd: RawFd, local: Option<Ipv4Addr>) -> io::Result<Option<IcmpError>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn};
    let mut data = [0u8; 576];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in);
    let msg = match recvmsg::<SockaddrIn>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Ok(cmsgs) = msg.cmsgs() else {
        return Ok(None);
    };
    for c in cmsgs {
        if let ControlMessageOwned::Ipv4RecvErr(ee, offender) = c {
            return Ok(Some(IcmpError {
                origin: ee.ee_origin,
                icmp_type: ee.ee_type,
                code: ee.ee_code,
                errno: ee.ee_errno as i32,
                from: offender.map(|sin| Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                local,
            }));
        }
    }
    Ok(None)
}

enum UdpEvent {
    Datagram(Vec<u8>),
    Icmp(IcmpError),
    Errno(io::Error),
}

impl ProbeUdp {
    fn local_ip(&self) -> Option<Ipv4Addr> {
        Some(*self.local.ip()).filter(|a| !a.is_unspecified())
    }

    /// The next datagram or error on the socket (error queue first).
    async fn next_event(&self) -> io::Result<UdpEvent> {
        let fd = self.sock.as_raw_fd();
        let local = self.local_ip();
        self.sock
            .async_io(Interest::READABLE | Interest::ERROR, || {
                match read_errqueue(fd, local) {
                    Ok(Some(icmp)) => return Ok(UdpEvent::Icmp(icmp)),
                    Ok(None) => {}
                    Err(e) => return Ok(UdpEvent::Errno(e)),
                }
                let mut buf = [0u8; 1500];
                match nix::sys::socket::recv(fd, &mut buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT)
                {
                    Ok(n) => Ok(UdpEvent::Datagram(
                        buf.get(..n).unwrap_or_default().to_vec(),
                    )),
                    Err(nix::errno::Errno::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
                    Err(e) => Ok(UdpEvent::Errno(e.into())),
                }
            })
            .await
    }

    async fn send(&self, bytes: &[u8]) -> Result<(), UdpEvent> {
        match self.sock.send(bytes).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // A pending ICMP error surfaces on send too: prefer its details.
                match read_errqueue(self.sock.as_raw_fd(), self.local_ip()) {
                    Ok(Some(icmp)) => Err(UdpEvent::Icmp(icmp)),
                    _ => Err(UdpEvent::Errno(e)),
                }
            }
        }
    }
}

struct UdpOutcome<T> {
    result: Result<T, Evidence>,
    attempts: u32,
    rtt: Option<Duration>,
}

/// Send `make(attempt)` up to `retries + 1` times with doubling waits; the first datagram
/// `judge` accepts, or the first ICMP error, ends it.
async fn udp_exchange<T>(
    scope: &Scope,
    dest: SocketAddrV4,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
    sent_what: &str,
    mut make: impl FnMut(u32, SocketAddrV4) -> Result<Vec<u8>, String>,
    mut judge: impl FnMut(&[u8]) -> Option<T>,
) -> UdpOutcome<T> {
    let fail = |result, attempts| UdpOutcome {
        result: Err(result),
        attempts,
        rtt: None,
    };
    let udp = match scope.udp(dest) {
        Ok(u) => u,
        Err(e) => return fail(io_evidence(&e, "socket"), 0),
    };
    let mut waited = Duration::ZERO;
    let mut attempts = 0;
    for attempt in 0..=opts.retries {
        let bytes = match make(attempt, udp.local) {
            Ok(b) => b,
            Err(e) => return fail(Evidence::Failed(e), attempts),
        };
        limiter.acquire().await;
        attempts += 1;
        let sent = Instant::now();
        if let Err(ev) = udp.send(&bytes).await {
            return fail(udp_event_evidence(ev, "send"), attempts);
        }
        let window = opts.window(attempt);
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, udp.next_event()).await {
                Err(_) => break,
                Ok(Err(e)) => return fail(io_evidence(&e, "receive"), attempts),
                Ok(Ok(UdpEvent::Datagram(d))) => {
                    if let Some(t) = judge(&d) {
                        return UdpOutcome {
                            result: Ok(t),
                            attempts,
                            rtt: Some(sent.elapsed()),
                        };
                    }
                }
                Ok(Ok(ev)) => {
                    let rtt = sent.elapsed();
                    let mut out = fail(udp_event_evidence(ev, "receive"), attempts);
                    out.rtt = Some(rtt);
                    return out;
                }
            }
        }
        waited += window;
    }
    fail(
        Evidence::Silence {
            attempts,
            waited_ms: waited.as_millis().try_into().unwrap_or(u64::MAX),
            sent: sent_what.to_string(),
        },
        attempts,
    )
}

fn udp_event_evidence(ev: UdpEvent, during: &str) -> Evidence {
    match ev {
        UdpEvent::Icmp(i) => Evidence::Icmp(i),
        UdpEvent::Errno(e) => io_evidence(&e, during),
        UdpEvent::Datagram(d) => Evidence::Answer(format!("{}-byte UDP answer", d.len())),
    }
}

fn io_evidence(e: &io::Error, during: &str) -> Evidence {
    match e.raw_os_error() {
        Some(errno) => Evidence::Errno {
            errno,
            during: during.to_string(),
        },
        None => Evidence::Failed(format!("{during}: {e}")),
    }
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

// ---------------------------------------------------------------------------------------------
// 137/udp: NODE STATUS

/// `NAME<XX>` with the suffix in upper-case hex.
pub fn display_name(n: &Name) -> String {
    format!("{}<{:02X}>", n.name(), n.suffix())
}

fn is_msbrowse(n: &Name) -> bool {
    n.raw()[..15] == Name::msbrowse().raw()[..15]
}

/// What a NODE STATUS answer says about the host (DIGEST §4.3, §6.6).
pub fn host_info(status: &NodeStatus) -> HostInfo {
    let names: Vec<&nbns::NodeName> = status.names.iter().take(MAX_NAMES).collect();
    let group = |n: &nbns::NodeName| n.flags & nbns::NB_GROUP != 0;
    let has = |suffix: u8, want_group: bool| {
        names
            .iter()
            .any(|n| n.name.suffix() == suffix && group(n) == want_group && !is_msbrowse(&n.name))
    };
    let workgroup = names
        .iter()
        .find(|n| n.name.suffix() == 0x00 && group(n) && !is_msbrowse(&n.name))
        .map(|n| clean(&n.name.name()));
    let mut roles = Vec::new();
    if has(0x1D, false) {
        roles.push("LMB".to_string());
    }
    if has(0x1B, false) {
        roles.push("DMB".to_string());
    }
    if has(0x1C, true) {
        roles.push("DC".to_string());
    }
    if has(0x1E, true) || names.iter().any(|n| is_msbrowse(&n.name)) {
        roles.push("browser".to_string());
    }
    if has(0x20, false) {
        roles.push("file-server".to_string());
    }
    if has(0x03, false) {
        roles.push("messenger".to_string());
    }
    let mac = status.statistics.as_ref().map(|s| {
        s.unit_id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    });
    HostInfo {
        names: names
            .iter()
            .map(|n| ServiceName {
                name: clean(&display_name(&n.name)),
                group: group(n),
            })
            .collect(),
        workgroup,
        roles,
        mac,
    }
}

fn node_status_request(id: u16) -> Packet {
    Packet::request(id, 0, Name::wildcard(), TYPE_NBSTAT)
}

/// Judge an answer on 137: a NODE STATUS RESPONSE with our id gives the host info; any
/// other datagram from the port still proves it open.
fn judge_ns(id: u16, d: &[u8]) -> (String, Option<HostInfo>) {
    match Packet::parse(d) {
        Ok(p) if p.is_response() && p.id == id => {
            let status = p.answers.iter().find_map(|rr| match &rr.rdata {
                RData::NodeStatus(s) => Some(s),
                _ => None,
            });
            match status {
                Some(s) => {
                    let info = host_info(s);
                    let mut text = format!("NODE STATUS response: {} name(s)", s.names.len());
                    if let Some(w) = &info.workgroup {
                        text.push_str(&format!(", workgroup {w}"));
                    }
                    if !info.roles.is_empty() {
                        text.push_str(&format!(", roles {}", info.roles.join(" ")));
                    }
                    (text, Some(info))
                }
                None => (
                    format!(
                        "name-service response without a node status ({}, rcode {})",
                        p.kind(),
                        p.rcode()
                    ),
                    None,
                ),
            }
        }
        Ok(p) => (
            format!("name-service packet {} (id {:#06x})", p.kind(), p.id),
            None,
        ),
        Err(_) => (
            format!("{}-byte UDP answer (not a name-service packet)", d.len()),
            None,
        ),
    }
}

/// 137/udp: a unicast NODE STATUS REQUEST for `*` from an ephemeral port.
pub async fn probe_ns(
    scope: &Scope,
    target: Ipv4Addr,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> (PortResult, Option<HostInfo>) {
    // 16 unpredictable bits (SipHash under the process's random key), never 0.
    let id = (random_u32() as u16).max(1);
    let bytes = node_status_request(id).to_bytes();
    let out = udp_exchange(
        scope,
        SocketAddrV4::new(target, nbns::NS_PORT),
        opts,
        limiter,
        "NODE STATUS request(s)",
        |_, _| {
            bytes
                .clone()
                .map_err(|e| format!("cannot build NODE STATUS: {e}"))
        },
        |d| Some(judge_ns(id, d)),
    )
    .await;
    match out.result {
        Ok((text, info)) => (
            port_result(
                Port::Ns137Udp,
                &Evidence::Answer(text),
                false,
                out.rtt,
                out.attempts,
            ),
            info,
        ),
        Err(ev) => (
            port_result(Port::Ns137Udp, &ev, false, out.rtt, out.attempts),
            None,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// 138/udp: GetBackupListRequest

/// The bytes of a GetBackupListRequest (count 4, `token`) in a DIRECT_GROUP datagram from
/// `NBDGMPROBE<00>` to `<workgroup><1D>` on `\MAILSLOT\BROWSE`.
pub fn backup_list_request(
    workgroup: &str,
    token: u32,
    id: u16,
    source: SocketAddrV4,
) -> Result<Vec<u8>, String> {
    let frame = BrowserFrame::GetBackupListRequest(nbdgm_wire::browser::GetBackupListRequest {
        count: 4,
        token,
        trailing: Vec::new(),
    });
    let mut data = Vec::new();
    frame
        .emit(&mut data)
        .map_err(|e| format!("cannot build GetBackupListRequest: {e}"))?;
    let smb = MailslotWrite::new(mailslot::BROWSE, data)
        .to_bytes()
        .map_err(|e| format!("cannot build the mailslot write: {e}"))?;
    let dest = Name::new(workgroup, 0x1D).map_err(|e| format!("workgroup {workgroup:?}: {e}"))?;
    let src = Name::new(PROBE_NAME, 0x00).map_err(|e| e.to_string())?;
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        id,
        (*source.ip(), source.port()),
        src,
        dest,
        smb,
    )
    .to_bytes()
    .map_err(|e| format!("cannot build the datagram: {e}"))
}

/// Describe any datagram that came back from 138.
pub fn describe_dgm_answer(d: &[u8]) -> String {
    let Ok(dgm) = Datagram::parse(d) else {
        return format!("{}-byte UDP answer (not a NetBIOS datagram)", d.len());
    };
    let src = dgm
        .source_name()
        .map(display_name)
        .unwrap_or_else(|| "?".into());
    let Some(user) = dgm.user_data() else {
        return format!("NetBIOS datagram {} from {src}", dgm.msg_type.name());
    };
    let Ok(ms) = MailslotWrite::parse(user) else {
        return format!(
            "NetBIOS datagram {} from {src} (not a mailslot write)",
            dgm.msg_type.name()
        );
    };
    if !ms.is(mailslot::BROWSE) {
        return format!("mailslot write to {} from {src}", ms.name);
    }
    match BrowserFrame::parse(&ms.data) {
        Ok(BrowserFrame::GetBackupListResponse(r)) => {
            let shown: Vec<String> = r.servers.iter().take(10).cloned().collect();
            let more = if r.servers.len() > 10 { ", …" } else { "" };
            format!(
                "GetBackupListResponse from {src}: {} server(s): {}{more}",
                r.servers.len(),
                shown.join(", ")
            )
        }
        Ok(other) => format!("browser frame {} from {src}", frame_name(&other)),
        Err(_) => format!("malformed browser frame from {src}"),
    }
}

fn frame_name(f: &BrowserFrame) -> &'static str {
    match f {
        BrowserFrame::HostAnnouncement(_) => "HostAnnouncement",
        BrowserFrame::AnnouncementRequest(_) => "AnnouncementRequest",
        BrowserFrame::RequestElection(_) => "RequestElection",
        BrowserFrame::GetBackupListRequest(_) => "GetBackupListRequest",
        BrowserFrame::GetBackupListResponse(_) => "GetBackupListResponse",
        BrowserFrame::BecomeBackup(_) => "BecomeBackup",
        BrowserFrame::DomainAnnouncement(_) => "DomainAnnouncement",
        BrowserFrame::MasterAnnouncement(_) => "MasterAnnouncement",
        BrowserFrame::ResetStateRequest(_) => "ResetStateRequest",
        BrowserFrame::LocalMasterAnnouncement(_) => "LocalMasterAnnouncement",
        BrowserFrame::Unknown(_) => "unknown opcode",
    }
}

/// 138/udp: GetBackupListRequest to `<workgroup><1D>` from a connected ephemeral socket.
pub async fn probe_dgm(
    scope: &Scope,
    target: Ipv4Addr,
    workgroup: &str,
    ns_answered: bool,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> PortResult {
    let token0 = random_u32();
    let id0 = random_u32() as u16;
    let sent = format!(
        "GetBackupListRequest(s) to {}<1D>",
        workgroup.to_ascii_uppercase()
    );
    let out = udp_exchange(
        scope,
        SocketAddrV4::new(target, nbdgm_wire::datagram::DGM_PORT),
        opts,
        limiter,
        &sent,
        |attempt, local| {
            backup_list_request(
                workgroup,
                token0.wrapping_add(attempt),
                id0.wrapping_add(attempt as u16),
                local,
            )
        },
        |d| Some(describe_dgm_answer(d)),
    )
    .await;
    let ev = match out.result {
        Ok(text) => Evidence::Answer(text),
        Err(ev) => ev,
    };
    port_result(Port::Dgm138Udp, &ev, ns_answered, out.rtt, out.attempts)
}

// ---------------------------------------------------------------------------------------------
// TCP

enum TcpAttempt {
    Connected(tokio::net::TcpStream, Duration),
    Failed(Evidence, Option<Duration>),
    Timeout,
}

async fn tcp_attempt(scope: &Scope, dest: SocketAddrV4, window: Duration) -> TcpAttempt {
    let start = Instant::now();
    let (connect, errq) = match scope.tcp_connect(dest) {
        Ok(c) => c,
        Err(e) => return TcpAttempt::Failed(io_evidence(&e, "connect"), None),
    };
    match tokio::time::timeout(window, connect).await {
        Err(_) => TcpAttempt::Timeout,
        Ok(Ok(stream)) => TcpAttempt::Connected(stream, start.elapsed()),
        Ok(Err(e)) => {
            let rtt = Some(start.elapsed());
            let local = errq
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket_ipv4())
                .map(|a| *a.ip())
                .filter(|a| !a.is_unspecified());
            if let Ok(Some(icmp)) = read_errqueue(errq.as_raw_fd(), local) {
                return TcpAttempt::Failed(Evidence::Icmp(icmp), rtt);
            }
            if e.raw_os_error() == Some(nix::libc::ECONNREFUSED) {
                return TcpAttempt::Failed(Evidence::Reset, rtt);
            }
            TcpAttempt::Failed(io_evidence(&e, "connect"), rtt)
        }
    }
}

/// Connect with retries (fresh connect, doubled wait each time).
async fn tcp_connect(
    scope: &Scope,
    target: Ipv4Addr,
    port: Port,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> Result<(tokio::net::TcpStream, Duration, u32), PortResult> {
    let dest = SocketAddrV4::new(target, port.number());
    let mut waited = Duration::ZERO;
    let mut attempts = 0;
    for attempt in 0..=opts.retries {
        limiter.acquire().await;
        attempts += 1;
        let window = opts.window(attempt);
        match tcp_attempt(scope, dest, window).await {
            TcpAttempt::Connected(s, rtt) => return Ok((s, rtt, attempts)),
            TcpAttempt::Failed(ev, rtt) => {
                return Err(port_result(port, &ev, false, rtt, attempts))
            }
            TcpAttempt::Timeout => waited += window,
        }
    }
    Err(port_result(
        port,
        &Evidence::Silence {
            attempts,
            waited_ms: waited.as_millis().try_into().unwrap_or(u64::MAX),
            sent: "SYN(s)".into(),
        },
        false,
        None,
        attempts,
    ))
}

/// 138/tcp or 445/tcp: a TCP connect.
pub async fn probe_tcp(
    scope: &Scope,
    target: Ipv4Addr,
    port: Port,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> PortResult {
    match tcp_connect(scope, target, port, opts, limiter).await {
        Ok((_s, rtt, attempts)) => port_result(
            port,
            &Evidence::Answer("TCP handshake completed (SYN-ACK)".into()),
            false,
            Some(rtt),
            attempts,
        ),
        Err(r) => r,
    }
}

/// A NetBIOS SESSION REQUEST (RFC 1002 §4.3.2) from `calling` to `called`.
pub fn session_request(called: &Name, calling: &Name) -> Vec<u8> {
    let mut names = Vec::with_capacity(68);
    called.emit(&mut names);
    calling.emit(&mut names);
    let len = (names.len() as u32).min(0x1_ffff);
    let mut out = vec![0x81, ((len >> 16) & 1) as u8, (len >> 8) as u8, len as u8];
    out.extend_from_slice(&names);
    out
}

fn session_error_name(code: u8) -> &'static str {
    match code {
        0x80 => "not listening on called name",
        0x81 => "not listening for calling name",
        0x82 => "called name not present",
        0x83 => "called name present, but insufficient resources",
        0x8F => "unspecified error",
        _ => "unknown error code",
    }
}

/// Describe a session-service answer (4-byte header plus up to 6 bytes of body).
pub fn describe_session_answer(header: [u8; 4], body: &[u8]) -> String {
    match header[0] {
        0x82 => "positive session response (0x82) to *SMBSERVER<20>".into(),
        0x83 => match body.first() {
            Some(&c) => format!(
                "negative session response (0x83), error {c:#04x} ({})",
                session_error_name(c)
            ),
            None => "negative session response (0x83) without error code".into(),
        },
        0x84 => match body.get(..6) {
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

// ---------------------------------------------------------------------------------------------
// Hosts

async fn maybe<F: Future<Output = PortResult>>(on: bool, f: F) -> Option<PortResult> {
    if on {
        Some(f.await)
    } else {
        None
    }
}

/// Probe the selected ports of one host. 137/udp runs first (its workgroup addresses the
/// 138/udp probe); the TCP ports run alongside. Sends only to `target`.
pub async fn probe_host(
    target: Ipv4Addr,
    hostname: Option<String>,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
) -> HostResult {
    let start = Instant::now();
    let opts = opts.bounded();
    let scope = Scope::new(TargetSet::single(target));
    let want = |p: Port| opts.ports.contains(&p);
    let udp = async {
        let (r137, info) = if want(Port::Ns137Udp) {
            let (r, i) = probe_ns(&scope, target, &opts, limiter).await;
            (Some(r), i)
        } else {
            (None, None)
        };
        let r138 = if want(Port::Dgm138Udp) {
            let ns_answered = r137.as_ref().is_some_and(|r| r.state == PortState::Open);
            let wg = info
                .as_ref()
                .and_then(|i| i.workgroup.clone())
                .or_else(|| opts.workgroup.clone())
                .unwrap_or_else(|| DEFAULT_WORKGROUP.to_string());
            Some(probe_dgm(&scope, target, &wg, ns_answered, &opts, limiter).await)
        } else {
            None
        };
        (r137, r138, info)
    };
    let tcp = async {
        tokio::join!(
            maybe(
                want(Port::Dgm138Tcp),
                probe_tcp(&scope, target, Port::Dgm138Tcp, &opts, limiter)
            ),
            maybe(
                want(Port::Ssn139Tcp),
                probe_session(&scope, target, &opts, limiter)
            ),
            maybe(
                want(Port::Smb445Tcp),
                probe_tcp(&scope, target, Port::Smb445Tcp, &opts, limiter)
            ),
        )
    };
    let ((r137, r138, info), (t138, t139, t445)) = tokio::join!(udp, tcp);
    HostResult {
        address: target,
        hostname,
        ports: [r137, r138, t138, t139, t445]
            .into_iter()
            .flatten()
            .collect(),
        info,
        duration_ms: ms(start.elapsed()),
    }
}

fn failed_host(t: &Target, opts: &ProbeOptions, why: &str) -> HostResult {
    HostResult {
        address: t.addr,
        hostname: t.hostname.clone(),
        ports: opts
            .ports
            .iter()
            .map(|&p| port_result(p, &Evidence::Failed(why.to_string()), false, None, 0))
            .collect(),
        info: None,
        duration_ms: 0.0,
    }
}

/// Probe every target, `opts.concurrency` hosts at a time, all sharing one rate limit.
/// Results come back in the order of `targets`. `progress(done, total)` is called as
/// hosts finish (and once with 0 at the start).
pub async fn probe_all(
    targets: Vec<Target>,
    opts: &ProbeOptions,
    progress: impl Fn(usize, usize),
) -> Vec<HostResult> {
    let total = targets.len();
    let opts = Arc::new(opts.bounded());
    let limiter = Arc::new(RateLimiter::new(opts.rate));
    let mut results: Vec<Option<HostResult>> = vec![None; total];
    let mut tasks = tokio::task::JoinSet::new();
    let mut index: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut queue = targets.iter().enumerate();
    let mut done = 0;
    progress(0, total);
    loop {
        while tasks.len() < opts.concurrency {
            let Some((i, t)) = queue.next() else { break };
            let (opts, limiter, t) = (Arc::clone(&opts), Arc::clone(&limiter), t.clone());
            let h = tasks.spawn(async move {
                probe_host(t.addr, t.hostname.clone(), &opts, &limiter).await
            });
            index.insert(h.id(), i);
        }
        let Some(joined) = tasks.join_next_with_id().await else {
            break;
        };
        let (id, r) = match joined {
            Ok((id, r)) => (id, Ok(r)),
            Err(e) => (e.id(), Err(e.to_string())),
        };
        if let Some(i) = index.remove(&id) {
            if let (Some(slot), Some(t)) = (results.get_mut(i), targets.get(i)) {
                *slot = Some(match r {
                    Ok(r) => r,
                    Err(e) => failed_host(t, &opts, &format!("probe task failed: {e}")),
                });
            }
        }
        done += 1;
        progress(done, total);
    }
    results
        .into_iter()
        .zip(&targets)
        .map(|(r, t)| r.unwrap_or_else(|| failed_host(t, &opts, "not probed")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reports

/// The results as a pretty JSON array of [`HostResult`].
pub fn to_json(results: &[HostResult]) -> String {
    serde_json::to_string_pretty(results).unwrap_or_else(|_| "[]".into())
}

/// CSV columns, one row per host × port.
pub const CSV_HEADER: [&str; 11] = [
    "address",
    "hostname",
    "port",
    "state",
    "evidence",
    "rtt_ms",
    "attempts",
    "workgroup",
    "roles",
    "mac",
    "names",
];

/// A CSV cell that a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`,
/// TAB or CR gets a leading `'` (OWASP, "CSV Injection").
pub fn csv_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// The results as CSV: a header, then one row per host × port. Every cell passes
/// [`csv_cell`] (names, workgroups and evidence come from the network).
pub fn to_csv(results: &[HostResult]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for h in results {
        let info = h.info.clone().unwrap_or_default();
        let names: Vec<String> = info
            .names
            .iter()
            .map(|n| {
                if n.group {
                    format!("{}(g)", n.name)
                } else {
                    n.name.clone()
                }
            })
            .collect();
        for p in &h.ports {
            let row = [
                h.address.to_string(),
                h.hostname.clone().unwrap_or_default(),
                p.port.to_string(),
                p.state.to_string(),
                p.evidence.clone(),
                p.rtt_ms.map(|r| format!("{r:.3}")).unwrap_or_default(),
                p.attempts.to_string(),
                info.workgroup.clone().unwrap_or_default(),
                info.roles.join(" "),
                info.mac.clone().unwrap_or_default(),
                names.join(" "),
            ];
            w.write_record(row.iter().map(|c| csv_cell(c)))?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The results as text: a block per host with its names, roles and MAC, then a table of
/// ports. Every string from the network or a resolver is escaped
/// ([`nbdgm_wire::text::escape`]): no control character reaches the terminal.
pub fn to_text(results: &[HostResult]) -> String {
    use nbdgm_wire::text::{escape, Escaped};
    use std::fmt::Write as _;
    let mut s = String::new();
    for h in results {
        let _ = write!(s, "{}", h.address);
        if let Some(n) = &h.hostname {
            let _ = write!(s, " ({})", Escaped(&clean(n)));
        }
        let _ = writeln!(s, "  [{:.0} ms]", h.duration_ms);
        if let Some(info) = &h.info {
            let names: Vec<String> = info
                .names
                .iter()
                .map(|n| {
                    if n.group {
                        format!("{} (group)", escape(&n.name))
                    } else {
                        escape(&n.name).into_owned()
                    }
                })
                .collect();
            let _ = writeln!(s, "  names:     {}", names.join(", "));
            let _ = writeln!(
                s,
                "  workgroup: {}   roles: {}   MAC: {}",
                Escaped(info.workgroup.as_deref().unwrap_or("-")),
                if info.roles.is_empty() {
                    "-".to_string()
                } else {
                    escape(&info.roles.join(", ")).into_owned()
                },
                Escaped(info.mac.as_deref().unwrap_or("-"))
            );
        }
        let _ = writeln!(s, "  {:<8} {:<14} {:>9}  EVIDENCE", "PORT", "STATE", "RTT");
        for p in &h.ports {
            let rtt = p
                .rtt_ms
                .map(|r| format!("{r:.1} ms"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "  {:<8} {:<14} {:>9}  {}",
                p.port.as_str(),
                p.state.as_str(),
                rtt,
                Escaped(&p.evidence)
            );
        }
        s.push('\n');
    }
    s
}

/// What `--expect` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Closed,
    Open,
}

/// Nagios plugin exit codes.
pub const NAGIOS_OK: u8 = 0;
pub const NAGIOS_WARNING: u8 = 1;
pub const NAGIOS_CRITICAL: u8 = 2;
pub const NAGIOS_UNKNOWN: u8 = 3;

/// The Nagios level of one port given the expectation.
pub fn nagios_level(state: PortState, expect: Expect) -> u8 {
    use PortState::*;
    match (expect, state) {
        (_, Error) => NAGIOS_UNKNOWN,
        (Expect::Closed, Open) => NAGIOS_CRITICAL,
        (Expect::Closed, LikelyOpen | OpenFiltered) => NAGIOS_WARNING,
        (Expect::Closed, Filtered | Closed | HostDown) => NAGIOS_OK,
        (Expect::Open, Open) => NAGIOS_OK,
        (Expect::Open, LikelyOpen | OpenFiltered) => NAGIOS_WARNING,
        (Expect::Open, Filtered | Closed | HostDown) => NAGIOS_CRITICAL,
    }
}

/// A Nagios verdict: exit code and the one-line summary with performance data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub code: u8,
    pub summary: String,
}

/// The Nagios verdict of a run: CRITICAL if any port contradicts the expectation, else
/// UNKNOWN if any probe failed, else WARNING if any port is uncertain, else OK.
pub fn nagios(results: &[HostResult], expect: Expect) -> Verdict {
    let mut worst = NAGIOS_OK;
    let mut counts: HashMap<PortState, usize> = HashMap::new();
    let mut notable: Vec<String> = Vec::new();
    let rank = |c: u8| match c {
        NAGIOS_CRITICAL => 3,
        NAGIOS_UNKNOWN => 2,
        NAGIOS_WARNING => 1,
        _ => 0,
    };
    for h in results {
        for p in &h.ports {
            *counts.entry(p.state).or_default() += 1;
            let level = nagios_level(p.state, expect);
            if level != NAGIOS_OK {
                if notable.len() < 5 {
                    notable.push(format!("{} {} {}", h.address, p.port, p.state));
                } else if notable.len() == 5 {
                    notable.push("…".into());
                }
            }
            if rank(level) > rank(worst) {
                worst = level;
            }
        }
    }
    let word = match worst {
        NAGIOS_OK => "OK",
        NAGIOS_WARNING => "WARNING",
        NAGIOS_CRITICAL => "CRITICAL",
        _ => "UNKNOWN",
    };
    let c = |s| counts.get(&s).copied().unwrap_or(0);
    let expect_word = match expect {
        Expect::Closed => "closed",
        Expect::Open => "open",
    };
    let ports: usize = results.iter().map(|h| h.ports.len()).sum();
    let detail = if notable.is_empty() {
        format!(
            "{ports} port(s) on {} host(s) as expected ({expect_word})",
            results.len()
        )
    } else {
        format!("expected {expect_word}: {}", notable.join(", "))
    };
    Verdict {
        code: worst,
        summary: format!(
            "NBDGM PROBE {word} - {detail} | hosts={} open={} likely_open={} open_filtered={} \
             filtered={} closed={} host_down={} error={}",
            results.len(),
            c(PortState::Open),
            c(PortState::LikelyOpen),
            c(PortState::OpenFiltered),
            c(PortState::Filtered),
            c(PortState::Closed),
            c(PortState::HostDown),
            c(PortState::Error),
        ),
    }
}

/// Exit code without `--expect`: 2 when every probe failed (nothing could be probed),
/// 1 when any port is `open` or `likely-open` (findings), 0 otherwise.
pub fn exit_code(results: &[HostResult]) -> u8 {
    let all: Vec<&PortResult> = results.iter().flat_map(|h| &h.ports).collect();
    if !all.is_empty() && all.iter().all(|p| p.state == PortState::Error) {
        2
    } else if all.iter().any(|p| p.state.is_exposed()) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::browser::GetBackupListResponse;
    use nbdgm_wire::nbns::{NodeName, Statistics, CLASS_IN};
    use proptest::prelude::*;

    fn icmp(t: u8, code: u8) -> Evidence {
        Evidence::Icmp(IcmpError {
            origin: SO_EE_ORIGIN_ICMP,
            icmp_type: t,
            code,
            errno: 0,
            from: Some(Ipv4Addr::new(198, 51, 100, 10)),
            local: Some(Ipv4Addr::new(198, 51, 100, 20)),
        })
    }

    fn silence() -> Evidence {
        Evidence::Silence {
            attempts: 3,
            waited_ms: 7000,
            sent: "probes".into(),
        }
    }

    #[test]
    fn state_decisions_from_evidence() {
        use PortState::*;
        let udp = Port::Dgm138Udp;
        let cases: Vec<(Port, Evidence, bool, PortState)> = vec![
            (udp, Evidence::Answer("x".into()), false, Open),
            (udp, icmp(3, 3), true, Closed),
            (udp, icmp(3, 13), true, Filtered),
            (udp, icmp(3, 10), false, Filtered),
            (udp, icmp(3, 9), false, Filtered),
            (udp, icmp(3, 1), false, HostDown),
            (udp, icmp(3, 0), false, HostDown),
            (udp, icmp(3, 4), false, Error),
            (udp, icmp(11, 0), false, Error),
            (udp, silence(), true, LikelyOpen),
            (udp, silence(), false, OpenFiltered),
            (Port::Ns137Udp, silence(), true, OpenFiltered),
            (Port::Smb445Tcp, silence(), false, Filtered),
            (Port::Smb445Tcp, Evidence::Reset, false, Closed),
            (Port::Smb445Tcp, icmp(3, 13), false, Filtered),
            (Port::Smb445Tcp, icmp(3, 1), false, HostDown),
            (
                udp,
                Evidence::Errno {
                    errno: nix::libc::ECONNREFUSED,
                    during: "receive".into(),
                },
                false,
                Closed,
            ),
            (
                udp,
                Evidence::Errno {
                    errno: nix::libc::EHOSTUNREACH,
                    during: String::new(),
                },
                false,
                HostDown,
            ),
            (
                udp,
                Evidence::Errno {
                    errno: nix::libc::ENETUNREACH,
                    during: "send".into(),
                },
                false,
                HostDown,
            ),
            (
                udp,
                Evidence::Errno {
                    errno: nix::libc::EPERM,
                    during: "send".into(),
                },
                false,
                Filtered,
            ),
            (
                udp,
                Evidence::Errno {
                    errno: nix::libc::EACCES,
                    during: "send".into(),
                },
                false,
                Error,
            ),
            (udp, Evidence::Failed("bad".into()), false, Error),
        ];
        for (port, ev, ns, want) in cases {
            let (got, text) = decide(port, &ev, ns);
            assert_eq!(got, want, "{port} {ev:?} → {text}");
            assert!(!text.is_empty());
        }
        let (_, t) = decide(udp, &icmp(3, 3), false);
        assert_eq!(
            t,
            "ICMP type 3 code 3 (port unreachable) from 198.51.100.10"
        );
        let mut arp = IcmpError {
            origin: SO_EE_ORIGIN_ICMP,
            icmp_type: 3,
            code: 1,
            errno: nix::libc::EHOSTUNREACH,
            from: Some(Ipv4Addr::new(198, 51, 100, 20)),
            local: Some(Ipv4Addr::new(198, 51, 100, 20)),
        };
        assert!(arp.to_string().contains("no ARP answer"));
        arp.origin = SO_EE_ORIGIN_LOCAL;
        assert_eq!(decide(udp, &Evidence::Icmp(arp), false).0, HostDown);
    }

    #[test]
    fn port_lists() {
        assert_eq!(
            Port::parse_list("137,138/udp,138/tcp,139,445").unwrap(),
            Port::ALL
        );
        assert_eq!(Port::parse_list("all").unwrap(), Port::ALL);
        assert_eq!(
            Port::parse_list("445, 138").unwrap(),
            vec![Port::Dgm138Udp, Port::Dgm138Tcp, Port::Smb445Tcp]
        );
        assert_eq!(
            Port::parse_list("138/UDP,138/udp").unwrap(),
            vec![Port::Dgm138Udp]
        );
        for bad in ["", "137,", "80", "137/tcp", "139/udp", "x"] {
            assert!(Port::parse_list(bad).is_err(), "{bad:?}");
        }
        assert!(Port::parse_list(&"137,".repeat(100)).is_err());
    }

    #[test]
    fn options_are_bounded() {
        let d = ProbeOptions::default();
        assert_eq!(d.ports, Port::ALL);
        assert_eq!(d.timeout, Duration::from_secs(1));
        assert_eq!((d.retries, d.rate, d.concurrency), (2, DEFAULT_RATE, 64));
        assert_eq!(d.total_wait(), Duration::from_secs(7));
        let wild = ProbeOptions {
            ports: vec![Port::Smb445Tcp, Port::Ns137Udp, Port::Smb445Tcp],
            timeout: Duration::from_secs(3600),
            retries: 1000,
            rate: 5,
            concurrency: 0,
            workgroup: None,
        }
        .bounded();
        assert_eq!(wild.ports, vec![Port::Ns137Udp, Port::Smb445Tcp]);
        assert_eq!(wild.timeout, MAX_TIMEOUT);
        assert_eq!(wild.retries, MAX_RETRIES);
        assert_eq!(wild.concurrency, 1);
        assert!(wild.window(100) <= MAX_WINDOW);
        assert!(wild.total_wait() <= MAX_WINDOW * (MAX_RETRIES + 1));
    }

    #[test]
    fn scope_refuses_other_addresses() {
        let s = Scope::new(TargetSet::single(Ipv4Addr::new(198, 51, 100, 10)));
        assert!(s.check(Ipv4Addr::new(198, 51, 100, 10)).is_ok());
        assert!(s.check(Ipv4Addr::new(198, 51, 100, 11)).is_err());
        let e = s
            .udp(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 255), 138))
            .err()
            .expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(s
            .tcp_connect(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 445))
            .is_err());
    }

    fn status() -> NodeStatus {
        let n = |name: &str, suffix: u8, group: bool| NodeName {
            name: Name::new(name, suffix).unwrap(),
            flags: nbns::NAME_ACT | if group { nbns::NB_GROUP } else { 0 },
        };
        NodeStatus {
            names: vec![
                n("SAMBAA", 0x00, false),
                n("SAMBAA", 0x03, false),
                n("SAMBAA", 0x20, false),
                NodeName {
                    name: Name::msbrowse(),
                    flags: nbns::NB_GROUP | nbns::NAME_ACT,
                },
                n("TESTGROUP", 0x00, true),
                n("TESTGROUP", 0x1D, false),
                n("TESTGROUP", 0x1E, true),
                n("TESTGROUP", 0x1C, true),
                n("TESTGROUP", 0x1B, false),
            ],
            statistics: Some(Statistics {
                unit_id: [0x00, 0x15, 0x5d, 0x01, 0x02, 0xff],
                ..Statistics::default()
            }),
            extra: vec![],
        }
    }

    #[test]
    fn host_info_names_roles_mac() {
        let i = host_info(&status());
        assert_eq!(i.workgroup.as_deref(), Some("TESTGROUP"));
        assert_eq!(
            i.roles,
            vec!["LMB", "DMB", "DC", "browser", "file-server", "messenger"]
        );
        assert_eq!(i.mac.as_deref(), Some("00:15:5d:01:02:ff"));
        assert_eq!(i.names[0].name, "SAMBAA<00>");
        assert_eq!(i.names[3].name, "<01><02>__MSBROWSE__<02><01>");
        assert!(i.names[3].group);
        // A workstation: no roles but messenger, no workgroup when only MSBROWSE is a group.
        let ws = NodeStatus {
            names: vec![
                NodeName {
                    name: Name::new("PC", 0x03).unwrap(),
                    flags: 0,
                },
                NodeName {
                    name: Name::msbrowse(),
                    flags: nbns::NB_GROUP,
                },
            ],
            statistics: None,
            extra: vec![],
        };
        let i = host_info(&ws);
        assert_eq!(i.workgroup, None);
        assert_eq!(i.roles, vec!["browser", "messenger"]);
        assert_eq!(i.mac, None);
    }

    #[test]
    fn node_status_answer_is_judged() {
        let id = 0x1234;
        let resp = Packet {
            id,
            flags: 0x8400,
            questions: vec![],
            answers: vec![nbns::Record {
                name: Name::wildcard(),
                rr_type: TYPE_NBSTAT,
                rr_class: CLASS_IN,
                ttl: 0,
                rdata: RData::NodeStatus(status()),
            }],
            authority: vec![],
            additional: vec![],
            trailing: vec![],
        }
        .to_bytes()
        .unwrap();
        let (text, info) = judge_ns(id, &resp);
        assert!(text.starts_with("NODE STATUS response: 9 name(s), workgroup TESTGROUP"));
        assert!(info.is_some());
        let (text, info) = judge_ns(id + 1, &resp);
        assert!(
            info.is_none() && text.contains("name-service packet"),
            "{text}"
        );
        let (text, _) = judge_ns(id, b"hello");
        assert_eq!(text, "5-byte UDP answer (not a name-service packet)");
        let req = node_status_request(7).to_bytes().unwrap();
        let p = Packet::parse(&req).unwrap();
        assert_eq!(p.questions[0].qtype, TYPE_NBSTAT);
        assert!(p.questions[0].name.is_wildcard());
        assert!(!p.is_response());
    }

    #[test]
    fn backup_list_request_and_response() {
        let src = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 20), 40000);
        let b = backup_list_request("testgroup", 77, 9, src).unwrap();
        let d = Datagram::parse(&b).unwrap();
        assert_eq!(d.msg_type, MsgType::DirectGroup);
        assert_eq!((d.source_ip, d.source_port), (*src.ip(), 40000));
        assert_eq!(display_name(d.destination_name().unwrap()), "TESTGROUP<1D>");
        assert_eq!(display_name(d.source_name().unwrap()), "NBDGMPROBE<00>");
        let ms = MailslotWrite::parse(d.user_data().unwrap()).unwrap();
        assert!(ms.is(mailslot::BROWSE));
        match BrowserFrame::parse(&ms.data).unwrap() {
            BrowserFrame::GetBackupListRequest(r) => assert_eq!((r.count, r.token), (4, 77)),
            other => panic!("{other:?}"),
        }
        assert!(backup_list_request("A_NAME_LONGER_THAN_15", 1, 1, src).is_err());

        // nmbd's answer (SAMBA-LAB: DIRECT_UNIQUE SAMBAA<00> → requester<00>).
        let mut data = Vec::new();
        BrowserFrame::GetBackupListResponse(GetBackupListResponse {
            count: 1,
            token: 77,
            servers: vec!["SAMBAA".into()],
            ..GetBackupListResponse::default()
        })
        .emit(&mut data)
        .unwrap();
        let answer = Datagram::data(
            MsgType::DirectUnique,
            NodeType::M,
            1,
            (Ipv4Addr::new(198, 51, 100, 10), 138),
            Name::new("SAMBAA", 0).unwrap(),
            Name::new(PROBE_NAME, 0).unwrap(),
            MailslotWrite::new(mailslot::BROWSE, data)
                .to_bytes()
                .unwrap(),
        )
        .to_bytes()
        .unwrap();
        assert_eq!(
            describe_dgm_answer(&answer),
            "GetBackupListResponse from SAMBAA<00>: 1 server(s): SAMBAA"
        );
        assert_eq!(
            describe_dgm_answer(&[1, 2, 3]),
            "3-byte UDP answer (not a NetBIOS datagram)"
        );
        assert!(describe_dgm_answer(&b).starts_with("browser frame GetBackupListRequest"));
    }

    #[test]
    fn session_request_layout() {
        let called = Name::new("*SMBSERVER", 0x20).unwrap();
        let calling = Name::new(PROBE_NAME, 0).unwrap();
        let r = session_request(&called, &calling);
        assert_eq!(r.len(), 72);
        assert_eq!(&r[..4], &[0x81, 0, 0, 68]);
        // Second-level encoding, no scope: 0x20, 32 characters, 0x00 (RFC 1002 §4.1).
        assert_eq!(r[4], 0x20);
        assert_eq!(r[37], 0);
        assert_eq!(&r[5..7], b"CK"); // '*' = 0x2A → 'C' 'K'
        assert_eq!(&r[35..37], b"CA"); // suffix 0x20
        assert_eq!(r[38], 0x20);
        assert_eq!(r[71], 0);
        assert!(describe_session_answer([0x82, 0, 0, 0], &[]).starts_with("positive"));
        assert_eq!(
            describe_session_answer([0x83, 0, 0, 1], &[0x82]),
            "negative session response (0x83), error 0x82 (called name not present)"
        );
        assert!(
            describe_session_answer([0x84, 0, 0, 6], &[198, 51, 100, 10, 0, 139])
                .ends_with("198.51.100.10:139")
        );
        assert!(describe_session_answer([0x00, 0, 0, 0], &[]).contains("0x00"));
    }

    fn sample() -> Vec<HostResult> {
        vec![
            HostResult {
                address: Ipv4Addr::new(198, 51, 100, 10),
                hostname: Some("samba.example".into()),
                ports: vec![
                    PortResult {
                        port: Port::Ns137Udp,
                        state: PortState::Open,
                        evidence: "NODE STATUS response: 7 name(s), workgroup \"T\", x".into(),
                        rtt_ms: Some(0.5),
                        attempts: 1,
                    },
                    PortResult {
                        port: Port::Dgm138Udp,
                        state: PortState::LikelyOpen,
                        evidence: "no answer".into(),
                        rtt_ms: None,
                        attempts: 3,
                    },
                ],
                info: Some(host_info(&status())),
                duration_ms: 12.0,
            },
            HostResult {
                address: Ipv4Addr::new(198, 51, 100, 11),
                hostname: None,
                ports: vec![PortResult {
                    port: Port::Dgm138Udp,
                    state: PortState::Closed,
                    evidence: "ICMP type 3 code 3 (port unreachable) from 198.51.100.11".into(),
                    rtt_ms: Some(0.2),
                    attempts: 1,
                }],
                info: None,
                duration_ms: 1.0,
            },
        ]
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value = serde_json::from_str(&to_json(&sample())).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["address"], "198.51.100.10");
        assert_eq!(a[0]["hostname"], "samba.example");
        assert_eq!(a[0]["ports"][0]["port"], "137/udp");
        assert_eq!(a[0]["ports"][0]["state"], "open");
        assert_eq!(a[0]["ports"][1]["state"], "likely-open");
        assert_eq!(a[0]["ports"][1]["rtt_ms"], serde_json::Value::Null);
        assert_eq!(a[0]["info"]["workgroup"], "TESTGROUP");
        assert_eq!(a[0]["info"]["roles"][0], "LMB");
        assert_eq!(a[0]["info"]["names"][0]["name"], "SAMBAA<00>");
        assert_eq!(a[1]["info"], serde_json::Value::Null);
        assert_eq!(a[1]["ports"][0]["state"], "closed");
        // Round trip through the shared types.
        let back: Vec<HostResult> = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
        let s: PortState = serde_json::from_str("\"open|filtered\"").unwrap();
        assert_eq!(s, PortState::OpenFiltered);
    }

    #[test]
    fn csv_shape() {
        let csv = to_csv(&sample()).unwrap();
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER);
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), 3, "one row per host × port");
        assert_eq!(&rows[0][0], "198.51.100.10");
        assert_eq!(&rows[0][1], "samba.example");
        assert_eq!(&rows[0][2], "137/udp");
        assert_eq!(&rows[0][3], "open");
        assert!(rows[0][4].contains("\"T\""), "quotes survive");
        assert_eq!(&rows[0][5], "0.500");
        assert_eq!(&rows[0][7], "TESTGROUP");
        assert_eq!(&rows[1][3], "likely-open");
        assert_eq!(&rows[1][5], "");
        assert_eq!(&rows[2][0], "198.51.100.11");
        assert_eq!(&rows[2][7], "");
        assert_eq!(to_csv(&[]).unwrap().lines().count(), 1);
    }

    #[test]
    fn text_shape() {
        let t = to_text(&sample());
        assert!(t.contains("198.51.100.10 (samba.example)"));
        assert!(t.contains("workgroup: TESTGROUP"));
        assert!(t.contains("MAC: 00:15:5d:01:02:ff"));
        assert!(t.contains("138/udp  likely-open"));
    }

    fn one(state: PortState) -> Vec<HostResult> {
        vec![HostResult {
            address: Ipv4Addr::new(198, 51, 100, 10),
            hostname: None,
            ports: vec![PortResult {
                port: Port::Dgm138Udp,
                state,
                evidence: String::new(),
                rtt_ms: None,
                attempts: 1,
            }],
            info: None,
            duration_ms: 0.0,
        }]
    }

    #[test]
    fn nagios_codes() {
        use PortState::*;
        for (state, closed, open) in [
            (Open, 2, 0),
            (LikelyOpen, 1, 1),
            (OpenFiltered, 1, 1),
            (Filtered, 0, 2),
            (Closed, 0, 2),
            (HostDown, 0, 2),
            (Error, 3, 3),
        ] {
            assert_eq!(nagios(&one(state), Expect::Closed).code, closed, "{state}");
            assert_eq!(nagios(&one(state), Expect::Open).code, open, "{state}");
        }
        // CRITICAL wins over UNKNOWN, UNKNOWN over WARNING.
        let mut mixed = sample();
        mixed[1].ports[0].state = Error;
        let v = nagios(&mixed, Expect::Closed);
        assert_eq!(v.code, NAGIOS_CRITICAL);
        assert!(v
            .summary
            .starts_with("NBDGM PROBE CRITICAL - expected closed: "));
        assert!(v.summary.contains("198.51.100.10 137/udp open"));
        assert!(v.summary.ends_with(
            "| hosts=2 open=1 likely_open=1 open_filtered=0 filtered=0 closed=0 host_down=0 error=1"
        ));
        mixed[0].ports[0].state = Closed;
        assert_eq!(nagios(&mixed, Expect::Closed).code, NAGIOS_UNKNOWN);
        let ok = nagios(&one(Closed), Expect::Closed);
        assert!(ok
            .summary
            .starts_with("NBDGM PROBE OK - 1 port(s) on 1 host(s)"));
        assert!(!ok.summary.contains('\n'));
    }

    #[test]
    fn plain_exit_codes() {
        use PortState::*;
        assert_eq!(exit_code(&one(Closed)), 0);
        assert_eq!(exit_code(&one(OpenFiltered)), 0);
        assert_eq!(exit_code(&one(Open)), 1);
        assert_eq!(exit_code(&one(LikelyOpen)), 1);
        assert_eq!(exit_code(&one(Error)), 2);
        assert_eq!(exit_code(&sample()), 1);
        assert_eq!(exit_code(&[]), 0);
    }

    #[test]
    fn evidence_is_bounded_and_escaped_in_text_only() {
        assert_eq!(clean("a\u{1b}[31mb\n"), "a\u{1b}[31mb\n");
        assert!(clean(&"x".repeat(10_000)).chars().count() <= MAX_EVIDENCE_LEN + 1);
        let mut r = sample();
        r[0].ports[0].evidence = "x\u{1b}[2J\ny\u{202e}".into();
        let text = to_text(&r);
        assert!(text.contains("x\\x1b[2J\\ny\\u{202e}"), "{text}");
        assert!(to_json(&r).contains("x\\u001b[2J\\ny\u{202e}"));
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_cell(bad), format!("'{bad}"));
        }
        assert_eq!(csv_cell("open"), "open");
        let mut r = sample();
        r[0].hostname = Some("=HYPERLINK(\"x\")".into());
        let csv = to_csv(&r).unwrap();
        let mut rd = csv::Reader::from_reader(csv.as_bytes());
        for row in rd.records() {
            let row = row.unwrap();
            assert!(row.iter().all(|c| !c.starts_with('=')), "{row:?}");
        }
    }

    #[test]
    fn rate_limiter_paces() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let t = Instant::now();
        rt.block_on(async {
            let l = RateLimiter::new(100);
            for _ in 0..6 {
                l.acquire().await;
            }
            let u = RateLimiter::unlimited();
            for _ in 0..1000 {
                u.acquire().await;
            }
        });
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(50), "{e:?}");
        assert!(e < Duration::from_secs(2), "{e:?}");
    }

    proptest! {
        #[test]
        fn answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = describe_dgm_answer(&bytes);
            let _ = judge_ns(1, &bytes);
            let mut h = [0u8; 4];
            for (d, s) in h.iter_mut().zip(&bytes) { *d = *s; }
            let _ = describe_session_answer(h, bytes.get(4..).unwrap_or_default());
            let _ = clean(&String::from_utf8_lossy(&bytes));
        }
    }
}
