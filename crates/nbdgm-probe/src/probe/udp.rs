//! One UDP exchange of a probe: send with retries and doubling waits, read answers and the
//! ICMP errors of the error queue, until an accepted answer, an error or the silence.

use super::evidence::{io_evidence, Evidence};
use super::icmp::{read_errqueue, IcmpError};
use super::{ProbeOptions, RateLimiter, Scope};

/// A probe packet that cannot be built (from a bad option such as the workgroup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build NODE STATUS: {0}")]
    NodeStatus(#[source] nbdgm_wire::Error),
    #[error("cannot build GetBackupListRequest: {0}")]
    BackupList(#[source] nbdgm_wire::Error),
    #[error("cannot build the mailslot write: {0}")]
    Mailslot(#[source] nbdgm_wire::Error),
    #[error("workgroup {0:?}: {1}")]
    Workgroup(String, #[source] nbdgm_wire::Error),
    #[error("{0}")]
    SourceName(#[source] nbdgm_wire::Error),
    #[error("cannot build the datagram: {0}")]
    Datagram(#[source] nbdgm_wire::Error),
}
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::Interest;

pub(super) struct ProbeUdp {
    pub(super) sock: tokio::net::UdpSocket,
    pub(super) local: SocketAddrV4,
}

pub(super) enum UdpEvent {
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

    pub(super) async fn send(&self, bytes: &[u8]) -> Result<(), UdpEvent> {
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

pub(super) struct UdpOutcome<T> {
    pub(super) result: Result<T, Evidence>,
    pub(super) attempts: u32,
    pub(super) rtt: Option<Duration>,
}

/// Send `make(attempt)` up to `retries + 1` times with doubling waits; the first datagram
/// `judge` accepts, or the first ICMP error, ends it.
pub(super) async fn udp_exchange<T>(
    scope: &Scope,
    dest: SocketAddrV4,
    opts: &ProbeOptions,
    limiter: &RateLimiter,
    sent_what: &str,
    mut make: impl FnMut(u32, SocketAddrV4) -> Result<Vec<u8>, BuildError>,
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
            Err(e) => return fail(Evidence::Failed(e.to_string()), attempts),
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

pub(super) fn udp_event_evidence(ev: UdpEvent, during: &str) -> Evidence {
    match ev {
        UdpEvent::Icmp(i) => Evidence::Icmp(i),
        UdpEvent::Errno(e) => io_evidence(&e, during),
        UdpEvent::Datagram(d) => Evidence::Answer(format!("{}-byte UDP answer", d.len())),
    }
}

pub(super) fn random_u32() -> u32 {
    nbdgm_base::random::os_u32()
}
