//! The read-only RAP `NetServerEnum2` responder on TCP 139 (issue 17 §3: Samba browsers
//! — nmbd's `sync_browse_lists`, `smbclient -L` — pull our browse list; MS-RAP 2.5.5.2,
//! MS-CIFS 2.2.4, RFC 1002 §4.3). Off unless `[browser] rap_server = true`.
//!
//! One listener per interface address at `rap_port`, bound while still root. A peer is
//! admitted only if the `[access] datagram` list permits it and the connection caps
//! (`rap_max_connections`, `rap_max_connections_per_ip`, [`nbdgm_http::ConnLimiter`])
//! leave room; a refused connection is closed at once and counted. Each connection lives
//! at most [`CONNECTION_TIMEOUT`], waits at most [`IDLE_TIMEOUT`] for each packet, and
//! takes packets of at most [`MAX_REQUEST`] bytes. The protocol is
//! [`nbdgm_rap::server::Session`] (sans-IO; nothing but RAP on IPC$); a NetServerEnum2 is
//! answered from the interface's worker, as `GET /api/browse` is (`browse::collect`).

use crate::acl::Acl;
use crate::browse::collect;
use crate::config::{Config, Interface};
use crate::dispatch::WorkerHandle;
use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use nbdgm_api::BrowseInterface;
use nbdgm_http::{AcceptBackoff, ConnLimiter, Limits};
use nbdgm_rap::nbss;
use nbdgm_rap::server::{ListEntry, ListSnapshot, ServerConfig, Session, Step, MAX_REQUEST};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// Longest life of a connection: the whole exchange must be done by then.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for each packet (header and body).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of list (as JSON, `browse::collect`'s budget) one request may make the worker
/// build; a RAP reply holds at most 64 KiB of it anyway.
const LIST_BUDGET: usize = 1 << 20;
/// Type of our own workgroup's entry: SV_TYPE_DOMAIN_ENUM | SV_TYPE_NT.
const OWN_WORKGROUP_TYPE: u32 = 0x8000_0000 | 0x0000_1000;
/// RAP status when the interface's worker does not answer: NERR_ServerNotStarted.
const NERR_SERVER_NOT_STARTED: u16 = 2114;

/// Counters of the responder (`stats`: `api.rap`).
#[derive(Debug, Default)]
pub struct RapStats {
    /// Connections refused by the `[access] datagram` list.
    pub refused_acl: AtomicU64,
    /// SMB requests received.
    pub requests: AtomicU64,
    /// NetServerEnum2/3 answered with a list.
    pub enums_answered: AtomicU64,
    /// Error replies sent (SMB and RAP) and connections closed for a protocol error.
    pub errors: AtomicU64,
    /// Connections cut by [`CONNECTION_TIMEOUT`] or [`IDLE_TIMEOUT`].
    pub timeouts: AtomicU64,
    /// Packets above [`MAX_REQUEST`] (connection closed).
    pub too_large: AtomicU64,
}

/// The responder's shared state: caps and counters.
#[derive(Debug)]
pub struct Rap {
    pub limiter: Arc<ConnLimiter>,
    pub stats: RapStats,
}

/// A copy of the counters for JSON.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RapSnapshot {
    /// Open connections now.
    pub connections: usize,
    pub accepted: u64,
    pub refused_total: u64,
    pub refused_per_ip: u64,
    pub refused_acl: u64,
    pub accept_errors: u64,
    pub requests: u64,
    pub enums_answered: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub too_large: u64,
}

impl Rap {
    pub fn new(cfg: &Config) -> Arc<Rap> {
        Arc::new(Rap {
            limiter: ConnLimiter::new(Limits {
                max_connections: cfg.browser.rap_max_connections,
                max_per_ip: cfg.browser.rap_max_connections_per_ip,
                header_timeout: IDLE_TIMEOUT,
                connection_timeout: CONNECTION_TIMEOUT,
            }),
            stats: RapStats::default(),
        })
    }

    pub fn snapshot(&self) -> RapSnapshot {
        let l = self.limiter.snapshot();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.stats;
        RapSnapshot {
            connections: l.connections,
            accepted: l.accepted,
            refused_total: l.refused_total,
            refused_per_ip: l.refused_per_ip,
            refused_acl: g(&s.refused_acl),
            accept_errors: l.accept_errors,
            requests: g(&s.requests),
            enums_answered: g(&s.enums_answered),
            errors: g(&s.errors),
            timeouts: g(&s.timeouts),
            too_large: g(&s.too_large),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The responder's listeners and its access list, made before the privilege drop.
pub struct Bound {
    listeners: Vec<std::net::TcpListener>,
    acl: Arc<Acl>,
}

/// Bind a listener at `rap_port` on every interface address (while we may be root);
/// none when `[browser] rap_server` is off. `auto`: the `auto` access list's prefixes
/// (for `[access] datagram`).
pub fn bind(cfg: &Config, interfaces: &[Interface], auto: &[Ipv4Net]) -> Result<Bound> {
    let acl = Arc::new(cfg.access.datagram.acl(auto));
    let mut listeners = Vec::new();
    if !cfg.browser.rap_server {
        return Ok(Bound { listeners, acl });
    }
    for i in interfaces {
        let addr = SocketAddr::from((i.net.addr(), cfg.browser.rap_port));
        let l = std::net::TcpListener::bind(addr)
            .with_context(|| format!("browser.rap_server: listening on {addr}"))?;
        l.set_nonblocking(true)
            .with_context(|| format!("browser.rap_server {addr}"))?;
        listeners.push(l);
    }
    Ok(Bound { listeners, acl })
}

/// Serve the bound listeners, each from the worker of its interface.
pub fn spawn(
    bound: Bound,
    cfg: &Config,
    handles: &[WorkerHandle],
    rap: &Arc<Rap>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Bound { listeners, acl } = bound;
    let mut tasks = Vec::new();
    for l in listeners {
        let Ok(local) = l.local_addr() else { continue };
        let Some(worker) = handles
            .iter()
            .find(|h| IpAddr::V4(h.interface) == local.ip())
        else {
            continue;
        };
        let l = match TcpListener::from_std(l) {
            Ok(l) => l,
            Err(e) => {
                warn!(%local, error = %e, "RAP responder: cannot register the listener");
                continue;
            }
        };
        info!(%local, "RAP NetServerEnum2 responder listening (read-only, IPC$ only)");
        let ctx = Arc::new(Ctx {
            worker: worker.clone(),
            rap: rap.clone(),
            acl: acl.clone(),
            server_name: cfg.node_name(),
            workgroup: cfg.node.workgroup.clone(),
        });
        tasks.push(tokio::spawn(accept_loop(l, ctx)));
    }
    tasks
}

struct Ctx {
    worker: WorkerHandle,
    rap: Arc<Rap>,
    acl: Arc<Acl>,
    server_name: String,
    workgroup: String,
}

async fn accept_loop(l: TcpListener, ctx: Arc<Ctx>) {
    let mut backoff = AcceptBackoff::new("browser.rap_server");
    loop {
        let (stream, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                add(&ctx.rap.limiter.stats.accept_errors, 1);
                backoff.failed(&e).await;
                continue;
            }
        };
        backoff.reset();
        let permitted = match peer.ip() {
            IpAddr::V4(ip) => ctx.acl.permits(ip),
            IpAddr::V6(_) => false,
        };
        if !permitted {
            add(&ctx.rap.stats.refused_acl, 1);
            debug!(%peer, "RAP: refused by [access] datagram");
            continue; // dropping the stream closes it
        }
        let Some(guard) = ctx.rap.limiter.try_admit(peer.ip()) else {
            debug!(%peer, "RAP: refused, connection cap reached");
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let mut session = Session::new(ServerConfig {
                server_name: ctx.server_name.clone(),
                workgroup: ctx.workgroup.clone(),
                challenge: challenge(),
            });
            let r =
                tokio::time::timeout(CONNECTION_TIMEOUT, serve(stream, &mut session, &ctx)).await;
            let s = &ctx.rap.stats;
            if r.is_err() {
                add(&s.timeouts, 1);
            }
            let c = session.counters;
            add(&s.requests, c.requests);
            add(&s.errors, c.errors);
            debug!(%peer, requests = c.requests, enums = c.enums, errors = c.errors,
                   timed_out = r.is_err(), "RAP connection done");
        });
    }
}

/// Eight bytes for NEGOTIATE's challenge (never checked: sessions are guests), from the
/// process's random hash keys and a counter.
fn challenge() -> [u8; 8] {
    use std::hash::{BuildHasher, Hasher};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.finish().to_le_bytes()
}

/// Read one packet within [`IDLE_TIMEOUT`]: `None` on EOF, error, timeout (counted) or a
/// packet above [`MAX_REQUEST`] (counted).
async fn read_packet(stream: &mut TcpStream, rap: &Rap) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    let idle = |r: Result<std::io::Result<usize>, _>| match r {
        Ok(Ok(_)) => Some(()),
        Ok(Err(_)) => None,
        Err(_) => {
            add(&rap.stats.timeouts, 1);
            None
        }
    };
    idle(tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut h)).await)?;
    let Ok((kind, len)) = nbss::parse_header(&h) else {
        add(&rap.stats.errors, 1);
        return None;
    };
    if len > MAX_REQUEST {
        add(&rap.stats.too_large, 1);
        return None;
    }
    let mut body = vec![0u8; len];
    idle(tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut body)).await)?;
    Some((kind, body))
}

async fn serve(mut stream: TcpStream, session: &mut Session, ctx: &Ctx) {
    let _ = stream.set_nodelay(true);
    while let Some((kind, body)) = read_packet(&mut stream, &ctx.rap).await {
        let (out, close) = match session.handle(kind, &body) {
            Step::Nothing => continue,
            Step::Send(b) => (b, false),
            Step::Close(b) => (b, true),
            Step::Enum(req) => {
                let out = match list(&ctx.worker).await {
                    Some(l) => {
                        add(&ctx.rap.stats.enums_answered, 1);
                        session.answer(&req, &l)
                    }
                    None => session.answer_status(&req, NERR_SERVER_NOT_STARTED),
                };
                (out, false)
            }
        };
        if stream.write_all(&out).await.is_err() || close {
            return;
        }
    }
}

/// The interface's browse list, as the responder serves it.
async fn list(worker: &WorkerHandle) -> Option<ListSnapshot> {
    let r = collect(std::slice::from_ref(worker), None, None, LIST_BUDGET, false)
        .await
        .ok()?;
    let mut snap = ListSnapshot::default();
    for i in &r.interfaces {
        snapshot_of(i, &mut snap);
    }
    Some(snap)
}

fn os_version(s: &str) -> (u8, u8) {
    let mut it = s.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// One interface's list as entries: `local` = heard on this subnet (not synchronised
/// from another browser), what SV_TYPE_LOCAL_LIST_ONLY asks for.
pub(crate) fn snapshot_of(i: &BrowseInterface, snap: &mut ListSnapshot) {
    for s in &i.servers {
        let (os_major, os_minor) = os_version(&s.os_version);
        snap.servers.push(ListEntry {
            name: s.name.clone(),
            workgroup: s.workgroup.clone(),
            os_major,
            os_minor,
            server_type: s.server_type,
            comment: s.comment.clone(),
            local: s.synced_from.is_none(),
        });
    }
    // Our own workgroup, with its master, when the list has no entry for it (a local
    // master browser lists its own workgroup, as nmbd does: DOMAIN_ENUM | NT).
    if let Some(master) = &i.master {
        if !i
            .workgroups
            .iter()
            .any(|w| w.name.eq_ignore_ascii_case(&i.workgroup))
        {
            let m = i
                .servers
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(master));
            let (os_major, os_minor) = m.map_or((0, 0), |s| os_version(&s.os_version));
            snap.workgroups.push(ListEntry {
                name: i.workgroup.clone(),
                workgroup: String::new(),
                os_major,
                os_minor,
                server_type: OWN_WORKGROUP_TYPE,
                comment: master.clone(),
                local: true,
            });
        }
    }
    for w in &i.workgroups {
        let (os_major, os_minor) = os_version(&w.os_version);
        snap.workgroups.push(ListEntry {
            name: w.name.clone(),
            workgroup: String::new(),
            os_major,
            os_minor,
            server_type: w.server_type,
            comment: w.master.clone(),
            local: w.synced_from.is_none(),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn os_versions_parse_without_panic() {
        assert_eq!(os_version("6.1"), (6, 1));
        assert_eq!(os_version("4"), (4, 0));
        assert_eq!(os_version("x.999"), (0, 0));
        assert_eq!(os_version(""), (0, 0));
    }

    fn server(name: &str, synced: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "name": name, "workgroup": "TESTGROUP", "server_type": 4099, "types": [],
            "os_version": "6.1", "comment": "c", "periodicity_ms": 720000,
            "address": "127.0.0.1", "age_s": 0, "expires_in_s": 60, "synced_from": synced,
        })
    }

    fn interface(master: Option<&str>, groups: serde_json::Value) -> BrowseInterface {
        serde_json::from_value(serde_json::json!({
            "interface": "127.0.0.1", "workgroup": "TESTGROUP", "role": "master",
            "master": master,
            "servers": [server("ME", None), server("FAR", Some("DMB"))],
            "workgroups": groups,
        }))
        .unwrap()
    }

    #[test]
    fn snapshot_marks_synced_entries_and_adds_our_workgroup() {
        let mut snap = ListSnapshot::default();
        snapshot_of(&interface(Some("ME"), serde_json::json!([])), &mut snap);
        let local: Vec<(&str, bool)> = snap
            .servers
            .iter()
            .map(|e| (e.name.as_str(), e.local))
            .collect();
        assert_eq!(local, [("ME", true), ("FAR", false)]);
        assert_eq!(snap.servers[0].os_major, 6);
        assert_eq!(snap.workgroups.len(), 1);
        let w = &snap.workgroups[0];
        assert_eq!((w.name.as_str(), w.comment.as_str()), ("TESTGROUP", "ME"));
        assert_eq!(w.server_type, OWN_WORKGROUP_TYPE);
        // No master known: no entry made up; a listed entry is not doubled.
        let mut snap = ListSnapshot::default();
        snapshot_of(&interface(None, serde_json::json!([])), &mut snap);
        assert!(snap.workgroups.is_empty());
        let listed = serde_json::json!([{
            "name": "testgroup", "master": "OTHER", "server_type": 0, "types": [],
            "os_version": "1.0", "periodicity_ms": 0, "address": "127.0.0.2",
            "age_s": 0, "expires_in_s": 1, "synced_from": "DMB",
        }]);
        let mut snap = ListSnapshot::default();
        snapshot_of(&interface(Some("ME"), listed), &mut snap);
        assert_eq!(snap.workgroups.len(), 1);
        assert_eq!(snap.workgroups[0].comment, "OTHER");
        assert!(!snap.workgroups[0].local);
    }

    #[test]
    fn challenges_differ() {
        assert_ne!(challenge(), challenge());
    }
}
