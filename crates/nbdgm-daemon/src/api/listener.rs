//! Accepting API clients: the Unix socket (stale-socket handling, mode, group, peer
//! credentials and uid/gid allow lists) and the optional TCP listener (ACL, token
//! `hello` first); caps on clients in all and per peer, back-off on accept errors.

use super::conn::{
    next_line, parse_request, request_lines, start_client, Hello, Lines, Parsed, ReadLine,
};
use super::hub::{inc, Hub};
use super::*;
use nbdgm_api::{ErrorCode, Response, MAX_LINE};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Semaphore};

/// Removes the socket file when dropped, if it is still the one we created.
#[derive(Debug)]
pub(super) struct SocketGuard {
    pub(super) path: PathBuf,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove API socket");
                }
            }
            _ => {}
        }
    }
}

/// Bound API sockets, not yet accepting (see [`bind`] and [`ApiListener::run`]).
pub struct ApiListener {
    pub(super) config: ApiConfig,
    pub(super) unix: std::os::unix::net::UnixListener,
    pub(super) tcp: Option<std::net::TcpListener>,
    pub(super) guard: SocketGuard,
}

impl std::fmt::Debug for ApiListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiListener")
            .field("config", &self.config)
            .field("tcp", &self.tcp_addr())
            .finish_non_exhaustive()
    }
}

/// Remove a stale socket at `path` (nobody listening); refuse a live one or a file
/// that is not a socket.
pub(super) fn clear_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another process (another nbdgm daemon?) is listening on {}",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale API socket");
            std::fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot check existing socket {}: {e}", path.display()),
        )),
    }
}

pub(super) fn resolve_group(group: &str) -> io::Result<nix::unistd::Gid> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(n));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such group {group:?}"),
        )),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Create the Unix socket (and the TCP listener if configured): remove a stale
/// socket file, refuse if a daemon listens there, bind, chmod to `mode`, chown to
/// `group`. Call before dropping privileges so that errors surface early. The
/// socket file is removed when the returned listener (or its `run`) ends.
pub fn bind(config: ApiConfig) -> io::Result<ApiListener> {
    let path = config.socket.clone();
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)?;
        }
    }
    clear_stale_socket(&path)?;
    let unix = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
    let meta = std::fs::symlink_metadata(&path)?;
    let guard = SocketGuard {
        path: path.clone(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    unix.set_nonblocking(true)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(config.mode))?;
    if let Some(group) = &config.group {
        let gid = resolve_group(group)?;
        nix::unistd::chown(&path, None, Some(gid)).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("chown {} to group {group}: {e}", path.display()),
            )
        })?;
    }
    let tcp = match config.tcp {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("bind TCP {addr}: {e}")))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    tracing::info!(socket = %path.display(), mode = format_args!("{:o}", config.mode), tcp = ?config.tcp, "API listening");
    Ok(ApiListener {
        config,
        unix,
        tcp,
        guard,
    })
}

/// Shortest token accepted from `api.tcp_token_file`.
pub const MIN_TOKEN_LEN: usize = 16;

/// Read the TCP API's token: the file must be readable and writable by its owner only
/// and hold at least [`MIN_TOKEN_LEN`] bytes (surrounding whitespace is ignored). The
/// errors never contain the token.
pub fn read_token_file(path: &Path) -> io::Result<Arc<[u8]>> {
    let meta = std::fs::metadata(path)?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} has mode {:04o}: other users could read the token (chmod 600)",
                path.display(),
                mode & 0o7777
            ),
        ));
    }
    let text = std::fs::read(path)?;
    let token = text.trim_ascii();
    if token.len() < MIN_TOKEN_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the token must be at least {MIN_TOKEN_LEN} bytes",
                path.display()
            ),
        ));
    }
    Ok(Arc::from(token))
}

/// State shared by the accept loop and the connections.
pub(super) struct Shared {
    pub(super) config: ApiConfig,
    pub(super) hub: Arc<Hub>,
    pub(super) tx: mpsc::Sender<ApiMsg>,
    pub(super) active: AtomicUsize,
    /// Connected clients per peer (uid or TCP address).
    pub(super) per_peer: Mutex<HashMap<String, usize>>,
    /// Rejection lines being written.
    pub(super) rejecting: Arc<AtomicUsize>,
    /// TCP clients authenticating.
    pub(super) authenticating: Arc<Semaphore>,
}

/// Frees the client's slots (in all and of its peer) when a connection ends, however
/// it ends.
pub(super) struct ActiveGuard(pub(super) Arc<Shared>, pub(super) String);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        let mut p = self.0.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = p.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                p.remove(&self.1);
            }
        }
    }
}

/// The key of a client's peer for `max_clients_per_peer`.
pub(super) fn peer_key(info: &ClientInfo) -> String {
    match (info.uid, info.peer.strip_prefix("tcp:")) {
        (Some(uid), _) => format!("uid:{uid}"),
        (None, Some(addr)) => addr
            .parse::<SocketAddr>()
            .map_or_else(|_| addr.to_owned(), |a| format!("ip:{}", a.ip())),
        (None, None) => "unknown".to_owned(),
    }
}

pub(super) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

impl ApiListener {
    /// Address of the TCP listener, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// Accept clients until `shutdown` becomes true (or its sender is dropped), then
    /// remove the socket file. Open connections end at shutdown too.
    pub async fn run(
        self,
        hub: Arc<Hub>,
        tx: mpsc::Sender<ApiMsg>,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let ApiListener {
            config,
            unix,
            tcp,
            guard,
        } = self;
        let unix = tokio::net::UnixListener::from_std(unix)?;
        let tcp = match tcp {
            Some(t) => Some(tokio::net::TcpListener::from_std(t)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            config,
            hub,
            tx,
            active: AtomicUsize::new(0),
            per_peer: Mutex::default(),
            rejecting: Arc::default(),
            authenticating: Arc::new(Semaphore::new(MAX_AUTHENTICATING)),
        });
        let mut backoff = nbdgm_http::AcceptBackoff::new("api");
        loop {
            tokio::select! {
                _ = wait_shutdown(&mut shutdown) => break,
                r = unix.accept() => match r {
                    Ok((stream, _)) => {
                        backoff.reset();
                        accept_unix(&shared, stream, shutdown.clone())
                    }
                    Err(e) => {
                        inc(&shared.hub.counters.accept_errors);
                        backoff.failed(&e).await
                    }
                },
                r = accept_tcp(tcp.as_ref()) => match r {
                    Ok((stream, peer)) => {
                        backoff.reset();
                        accept_tcp_conn(&shared, stream, peer, shutdown.clone())
                    }
                    Err(e) => {
                        inc(&shared.hub.counters.accept_errors);
                        backoff.failed(&e).await
                    }
                },
            }
        }
        drop(guard);
        tracing::info!("API stopped");
        Ok(())
    }
}

pub(super) async fn accept_tcp(
    l: Option<&tokio::net::TcpListener>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Supplementary groups of `pid` from `/proc/PID/status` (empty when unknown).
pub(super) fn supplementary_groups(pid: Option<i32>) -> Vec<u32> {
    let Some(pid) = pid.filter(|p| *p > 0) else {
        return Vec::new();
    };
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a Unix peer passes the allow lists.
pub(super) fn peer_allowed(config: &ApiConfig, info: &ClientInfo) -> bool {
    if config.allow_uids.is_empty() && config.allow_gids.is_empty() {
        return true;
    }
    if info.uid.is_some_and(|u| config.allow_uids.contains(&u)) {
        return true;
    }
    if config.allow_gids.is_empty() {
        return false;
    }
    if info.gid.is_some_and(|g| config.allow_gids.contains(&g)) {
        return true;
    }
    supplementary_groups(info.pid)
        .iter()
        .any(|g| config.allow_gids.contains(g))
}

pub(super) fn accept_unix(
    shared: &Arc<Shared>,
    stream: tokio::net::UnixStream,
    shutdown: watch::Receiver<bool>,
) {
    let id = shared.hub.next_client_id();
    let cred = stream.peer_cred().ok();
    let pid = cred.as_ref().and_then(|c| c.pid());
    let info = ClientInfo {
        id,
        pid,
        uid: cred.as_ref().map(|c| c.uid()),
        gid: cred.as_ref().map(|c| c.gid()),
        peer: match pid {
            Some(p) => format!("unix:pid={p}"),
            None => "unix".to_owned(),
        },
    };
    tracing::info!(client = id, pid = ?info.pid, uid = ?info.uid, gid = ?info.gid, "API client connected");
    if !peer_allowed(&shared.config, &info) {
        inc(&shared.hub.counters.clients_denied);
        tracing::warn!(client = id, pid = ?info.pid, uid = ?info.uid, gid = ?info.gid, "API client denied by uid/gid allow list");
        reject(
            shared,
            stream,
            ErrorCode::Denied,
            "not allowed to use this API",
        );
        return;
    }
    start_client(shared, stream, info, None, shutdown);
}

pub(super) fn accept_tcp_conn(
    shared: &Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let id = shared.hub.next_client_id();
    tracing::info!(client = id, %peer, "API TCP client connected");
    if !(shared.config.tcp_acl)(peer.ip()) {
        inc(&shared.hub.counters.clients_denied);
        tracing::warn!(client = id, %peer, "API TCP client denied by ACL");
        reject(shared, stream, ErrorCode::Denied, "address not allowed");
        return;
    }
    let _ = stream.set_nodelay(true);
    let info = ClientInfo {
        id,
        pid: None,
        uid: None,
        gid: None,
        peer: format!("tcp:{peer}"),
    };
    let Some(token) = shared.config.tcp_token.clone() else {
        // Only reachable when the API is built in code without a token.
        start_client(shared, stream, info, None, shutdown);
        return;
    };
    let Ok(permit) = shared.authenticating.clone().try_acquire_owned() else {
        inc(&shared.hub.counters.clients_rejected);
        reject(
            shared,
            stream,
            ErrorCode::Busy,
            "too many clients authenticating",
        );
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut lines = request_lines(stream, MAX_LINE);
        let first = tokio::time::timeout(AUTH_TIMEOUT, authenticate(&mut lines, &token)).await;
        drop(permit);
        let rest = lines.read_buffer().to_vec();
        let stream = lines.into_inner();
        match first {
            Ok(Ok(request)) => {
                let hello = Hello { request, rest };
                start_client(&shared, stream, info, Some(hello), shutdown)
            }
            r => {
                inc(&shared.hub.counters.clients_unauthenticated);
                let message = match r {
                    Ok(Err(m)) => m,
                    _ => "no hello with the token in time",
                };
                tracing::warn!(client = info.id, peer = %info.peer, "API TCP client not authenticated: {message}");
                reject(&shared, stream, ErrorCode::Denied, message);
            }
        }
    });
}

/// Read the first request of a TCP client: it must be `hello` with the token. The
/// token is compared in constant time and never logged.
pub(super) async fn authenticate<R: AsyncRead + Unpin>(
    lines: &mut Lines<R>,
    token: &[u8],
) -> Result<Parsed, &'static str> {
    let line = loop {
        match next_line(lines).await {
            Ok(ReadLine::Line(l)) if l.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(ReadLine::Line(l)) => break l,
            _ => return Err("no hello with the token"),
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&line)
        .map_err(|_| "the first request must be hello with the token")?;
    let given = match (v.get("op").and_then(|o| o.as_str()), v.get("token")) {
        (Some("hello"), Some(serde_json::Value::String(t))) => t.as_bytes(),
        _ => return Err("the first request must be hello with the token"),
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(given, token)) {
        return Err("wrong token");
    }
    parse_request(&line).map_err(|_| match v.get("encoding") {
        Some(_) => "hello asks for an unknown encoding (known: hex, base64)",
        None => "the first request must be hello with the token",
    })
}

/// Send one error line and close (in the background, a bounded number at once).
pub(super) fn reject<S: AsyncWrite + Unpin + Send + 'static>(
    shared: &Arc<Shared>,
    mut stream: S,
    code: ErrorCode,
    message: &'static str,
) {
    let rejecting = shared.rejecting.clone();
    if rejecting.fetch_add(1, Ordering::Relaxed) >= MAX_REJECTING {
        rejecting.fetch_sub(1, Ordering::Relaxed);
        return; // dropped: closed at once
    }
    tokio::spawn(async move {
        let line = response_line(&Response::err(None, code, message));
        let _ = tokio::time::timeout(REJECT_WRITE_TIMEOUT, async {
            let _ = stream.write_all(&line).await;
            let _ = stream.shutdown().await;
        })
        .await;
        rejecting.fetch_sub(1, Ordering::Relaxed);
    });
}
