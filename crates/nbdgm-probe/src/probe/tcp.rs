//! TCP connects with retries (138/tcp, 445/tcp, and the start of 139/tcp): a handshake, a
//! reset, an ICMP error from the error queue, or the silence.

use super::evidence::{io_evidence, port_result, Evidence};
use super::icmp::read_errqueue;
use super::{Port, PortResult, ProbeOptions, RateLimiter, Scope};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub(super) enum TcpAttempt {
    Connected(tokio::net::TcpStream, Duration),
    Failed(Evidence, Option<Duration>),
    Timeout,
}

pub(super) async fn tcp_attempt(scope: &Scope, dest: SocketAddrV4, window: Duration) -> TcpAttempt {
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
pub(super) async fn tcp_connect(
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
