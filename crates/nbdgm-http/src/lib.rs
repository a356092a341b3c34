//! Hardened serving of nbdgm's read-only HTTP endpoints (the browse list of
//! `nbdgm serve`, the web listener of `nbdgm monitor run`):
//!
//! - [`ConnLimiter`]: connections at most per endpoint and per source IP; one more is
//!   closed at once (counted), so a flood never takes the process's descriptors;
//! - a connection must send its first byte within the header timeout, its headers
//!   within it too (hyper), and it lives at most the connection timeout; one request per
//!   connection (no keep-alive);
//! - [`AcceptBackoff`]: after an accept error (EMFILE, ENFILE) back off exponentially
//!   and log at most one line per interval, with the number of errors in between;
//! - [`HostCheck`]: the `Host` header must name the listening address, `localhost`
//!   or a configured name, else `421 Misdirected Request` (defeats DNS rebinding).
//! - [`serve_tls`]: the same over TLS (rustls), the handshake bounded by the header timeout.

#![forbid(unsafe_code)]

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Caps and timeouts of one endpoint.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one source IP.
    pub max_per_ip: usize,
    /// Time to the end of the request headers (and to the first byte).
    pub header_timeout: Duration,
    /// Longest life of a connection.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            max_per_ip: 8,
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters of one endpoint (`stats`).
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub refused_total: AtomicU64,
    pub refused_per_ip: AtomicU64,
    pub accept_errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub misdirected: AtomicU64,
}

/// A copy of [`Stats`] for JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub connections: usize,
    pub accepted: u64,
    pub refused_total: u64,
    pub refused_per_ip: u64,
    pub accept_errors: u64,
    pub timeouts: u64,
    pub misdirected: u64,
}

/// Open connections per endpoint and per source IP.
#[derive(Debug)]
pub struct ConnLimiter {
    limits: Limits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    pub stats: Stats,
}

/// One admitted connection; frees its slot when dropped.
#[derive(Debug)]
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ConnLimiter {
    pub fn new(limits: Limits) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            limits,
            open: Mutex::new((0, HashMap::new())),
            stats: Stats::default(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit a connection from `ip`, or `None` (counted) when a cap is reached.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnGuard> {
        let mut open = self.lock();
        if open.0 >= self.limits.max_connections {
            inc(&self.stats.refused_total);
            return None;
        }
        let n = open.1.entry(ip).or_insert(0);
        if *n >= self.limits.max_per_ip {
            inc(&self.stats.refused_per_ip);
            return None;
        }
        *n += 1;
        open.0 += 1;
        inc(&self.stats.accepted);
        Some(ConnGuard {
            limiter: self.clone(),
            ip,
        })
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            connections: self.lock().0,
            accepted: g(&s.accepted),
            refused_total: g(&s.refused_total),
            refused_per_ip: g(&s.refused_per_ip),
            accept_errors: g(&s.accept_errors),
            timeouts: g(&s.timeouts),
            misdirected: g(&s.misdirected),
        }
    }
}

/// Back-off and log limiting for accept errors (shared with the API's accept loops).
#[derive(Debug)]
pub struct AcceptBackoff {
    what: &'static str,
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

/// First pause after an accept error; doubled up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one accept-error line per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

impl AcceptBackoff {
    pub fn new(what: &'static str) -> Self {
        AcceptBackoff {
            what,
            delay: MIN_BACKOFF,
            last_log: None,
            suppressed: 0,
        }
    }

    /// An accept succeeded.
    pub fn reset(&mut self) {
        self.delay = MIN_BACKOFF;
    }

    /// Whether to write a log line now (and how many were suppressed since the last).
    pub fn should_log(&mut self, now: Instant) -> Option<u64> {
        match self.last_log {
            Some(t) if now.duration_since(t) < LOG_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_log = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// The pause after this error (doubling); connection-level errors need none.
    pub fn next_delay(&mut self, e: &io::Error) -> Duration {
        if is_connection_error(e) {
            return Duration::ZERO;
        }
        let d = self.delay;
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        d
    }

    /// Log (rate-limited) and pause after an accept error.
    pub async fn failed(&mut self, e: &io::Error) {
        let d = self.next_delay(e);
        if d.is_zero() {
            return;
        }
        if let Some(suppressed) = self.should_log(Instant::now()) {
            tracing::warn!(
                endpoint = self.what,
                error = %e,
                suppressed,
                "accept failed; backing off"
            );
        }
        tokio::time::sleep(d).await;
    }
}

/// Errors of one connection that do not concern the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Which `Host` headers a listener answers.
#[derive(Debug, Clone)]
pub struct HostCheck {
    listen: IpAddr,
    names: Vec<String>,
    any: bool,
}

impl HostCheck {
    /// The listening address plus extra names (case-insensitive, without port).
    pub fn new(listen: SocketAddr, extra: &[String]) -> Self {
        HostCheck {
            listen: listen.ip(),
            names: extra
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
            any: false,
        }
    }

    /// Every `Host` (an API authenticated by a bearer token, which DNS rebinding cannot
    /// borrow).
    pub fn any() -> Self {
        HostCheck {
            listen: IpAddr::from([0, 0, 0, 0]),
            names: Vec::new(),
            any: true,
        }
    }

    /// Whether `host` (a `Host` header value; `None` when absent) is ours. A request
    /// without `Host` (HTTP/1.0 tools) is admitted: browsers always send one.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host.filter(|_| !self.any) else {
            return true;
        };
        let host = host.trim();
        // Strip the port: `[v6]:port`, `v4:port`, `name:port`.
        let name = if let Some(rest) = host.strip_prefix('[') {
            match rest.split_once(']') {
                Some((ip, _)) => ip,
                None => return false,
            }
        } else {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        };
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip == self.listen || (self.listen.is_unspecified() && !ip.is_unspecified());
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        (name == "localhost" && (self.listen.is_loopback() || self.listen.is_unspecified()))
            || self.names.contains(&name)
    }
}

fn misdirected() -> Response<Body> {
    let mut r = Response::new(Body::from("misdirected request: unknown Host\n"));
    *r.status_mut() = StatusCode::MISDIRECTED_REQUEST;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serve `router` on `listener` until `shutdown` completes, with the caps of
/// `limiter` and the `Host` check of `hosts`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limiter: Arc<ConnLimiter>,
    hosts: HostCheck,
    what: &'static str,
    shutdown: impl Future<Output = ()>,
) {
    serve_maybe_tls(listener, router, limiter, hosts, what, None, shutdown).await
}

/// [`serve`] over TLS: each connection completes the handshake of `tls` within the
/// header timeout (a failed handshake is closed and counted as a timeout when slow).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limiter: Arc<ConnLimiter>,
    hosts: HostCheck,
    what: &'static str,
    tls: tokio_rustls::TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) {
    serve_maybe_tls(listener, router, limiter, hosts, what, Some(tls), shutdown).await
}

async fn serve_maybe_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limiter: Arc<ConnLimiter>,
    hosts: HostCheck,
    what: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let hosts = Arc::new(hosts);
    let mut backoff = AcceptBackoff::new(what);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    inc(&limiter.stats.accept_errors);
                    backoff.failed(&e).await;
                    continue;
                }
            },
        };
        backoff.reset();
        // Over a cap: closed at once (dropping the stream), before any byte is read.
        let Some(guard) = limiter.try_admit(peer.ip()) else {
            continue;
        };
        let (router, hosts, limiter) = (router.clone(), hosts.clone(), limiter.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            connection(stream, router, hosts, &limiter, tls).await;
            drop(guard);
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    hosts: Arc<HostCheck>,
    limiter: &ConnLimiter,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let limits = limiter.limits();
    // An idle connection (no first byte) is closed after the header timeout.
    if tokio::time::timeout(limits.header_timeout, stream.readable())
        .await
        .is_err()
    {
        inc(&limiter.stats.timeouts);
        return;
    }
    let Some(tls) = tls else {
        return serve_io(stream, router, hosts, limiter).await;
    };
    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
        Ok(Ok(s)) => serve_io(s, router, hosts, limiter).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => inc(&limiter.stats.timeouts),
    }
}

async fn serve_io<S>(stream: S, router: axum::Router, hosts: Arc<HostCheck>, limiter: &ConnLimiter)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = limiter.limits();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let host = req
            .headers()
            .get(header::HOST)
            .map(|h| h.to_str().unwrap_or("\u{0}"));
        let ok = hosts.allows(host);
        let mut router = router.clone();
        async move {
            if !ok {
                return Ok::<_, std::convert::Infallible>(misdirected());
            }
            let req = req.map(Body::new);
            tower_service::Service::call(&mut router, req).await
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(false)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), svc);
    match tokio::time::timeout(limits.connection_timeout, conn).await {
        Ok(_) => {}
        Err(_) => inc(&limiter.stats.timeouts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_check() {
        let h = HostCheck::new(
            "127.0.0.1:8139".parse().unwrap(),
            &["Browse.Example".into()],
        );
        for ok in [
            None,
            Some("127.0.0.1"),
            Some("127.0.0.1:8139"),
            Some("localhost:8139"),
            Some("LOCALHOST"),
            Some("browse.example"),
            Some("browse.example.:80"),
        ] {
            assert!(h.allows(ok), "{ok:?}");
        }
        for bad in [
            Some("attacker.example"),
            Some("127.0.0.2:8139"),
            Some("browse.example.attacker.example"),
            Some(""),
            Some("[::1"),
            Some("\u{0}"),
        ] {
            assert!(!h.allows(bad), "{bad:?}");
        }
        assert!(HostCheck::any().allows(Some("central.example:8443")));
        let any = HostCheck::new("0.0.0.0:80".parse().unwrap(), &[]);
        assert!(any.allows(Some("198.51.100.10:80")));
        assert!(any.allows(Some("[2001:db8::1]:80")));
        assert!(!any.allows(Some("nbdgm.attacker.example")));
        let v4 = HostCheck::new("198.51.100.10:80".parse().unwrap(), &[]);
        assert!(!v4.allows(Some("localhost")));
    }

    #[test]
    fn limiter_caps_total_and_per_ip() {
        let l = ConnLimiter::new(Limits {
            max_connections: 3,
            max_per_ip: 2,
            ..Limits::default()
        });
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let g1 = l.try_admit(a).unwrap();
        let _g2 = l.try_admit(a).unwrap();
        assert!(l.try_admit(a).is_none());
        let _g3 = l.try_admit(b).unwrap();
        assert!(l.try_admit(b).is_none());
        let s = l.snapshot();
        assert_eq!(
            (s.refused_per_ip, s.refused_total, s.connections),
            (1, 1, 3)
        );
        drop(g1);
        assert!(l.try_admit(a).is_some());
    }

    #[test]
    fn backoff_doubles_and_logs_once_per_interval() {
        let mut b = AcceptBackoff::new("t");
        let e = io::Error::from_raw_os_error(24); // EMFILE
        let delays: Vec<_> = (0..10).map(|_| b.next_delay(&e)).collect();
        assert_eq!(delays[0], MIN_BACKOFF);
        assert_eq!(delays[1], MIN_BACKOFF * 2);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
        b.reset();
        assert_eq!(b.next_delay(&e), MIN_BACKOFF);
        assert_eq!(
            b.next_delay(&io::Error::from(io::ErrorKind::ConnectionAborted)),
            Duration::ZERO
        );
        let t = Instant::now();
        assert_eq!(b.should_log(t), Some(0));
        for _ in 0..100 {
            assert_eq!(b.should_log(t + Duration::from_secs(1)), None);
        }
        assert_eq!(b.should_log(t + LOG_INTERVAL), Some(100));
    }
}
