//! Probing hosts: the ports of one host (137/udp first, its workgroup addresses 138/udp;
//! TCP alongside), and many hosts at a bounded concurrency under one rate limit.

use super::evidence::{ms, port_result, Evidence};
use super::tcp::probe_tcp;
use super::tcp_session::probe_session;
use super::udp_datagram::probe_dgm;
use super::udp_name::probe_ns;
use super::{
    HostResult, Port, PortResult, PortState, ProbeOptions, RateLimiter, Scope, DEFAULT_WORKGROUP,
};
use crate::target::{Target, TargetSet};
use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

pub(super) async fn maybe<F: Future<Output = PortResult>>(on: bool, f: F) -> Option<PortResult> {
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

pub(super) fn failed_host(t: &Target, opts: &ProbeOptions, why: &str) -> HostResult {
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
