//! The central side of the agent API: bearer tokens (SHA-256 digests compared in constant
//! time), `GET /api/agent/v1/checks`, `POST /api/agent/v1/results` (body capped, every
//! field validated, idempotent on cycle ids), each accepted cycle processed like a local
//! one ([`crate::scheduler::process_cycle`]) under the check name `CHECK@LOCATION`.

use super::proto::{self, AgentCheck, Batch, BatchReply, ChecksReply, Rejected, TargetSet};
use crate::config::{AgentSpec, MonitorConfig};
use crate::engine::Engine;
use crate::metrics::{AgentLabels, AgentSeenLabels, CheckLabels};
use crate::scheduler::{self, Shared};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use nbdgm_wire::text::Escaped;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// Cycle ids remembered (a retried batch is not stored twice).
pub const MAX_SEEN: usize = 100_000;

/// Counters of the agent API.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub unauthorized: AtomicU64,
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    last_warn: AtomicU64,
}

/// The running generation's configuration and channels (replaced on reload).
struct Gen {
    id: u64,
    config: Arc<MonitorConfig>,
    shared: Shared,
}

#[derive(Default)]
struct Processing {
    gen: u64,
    engines: HashMap<String, Engine>,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Processing {
    fn remember(&mut self, id: String) {
        if self.seen.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_SEEN {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }
}

/// The agent API's state.
#[derive(Default)]
pub struct AgentApi {
    gen: Mutex<Option<Gen>>,
    processing: tokio::sync::Mutex<Processing>,
    next_gen: AtomicU64,
    pub stats: ApiStats,
}

impl AgentApi {
    /// Serve this configuration with these channels (called for each generation).
    pub fn set_generation(&self, config: &MonitorConfig, shared: Shared) {
        let id = self.next_gen.fetch_add(1, Ordering::Relaxed) + 1;
        *self.gen.lock().unwrap_or_else(|p| p.into_inner()) = Some(Gen {
            id,
            config: Arc::new(config.clone()),
            shared,
        });
    }

    /// Stop serving (drops the alert sender, so the generation can drain).
    pub fn clear_generation(&self) {
        *self.gen.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn current(&self) -> Option<(u64, Arc<MonitorConfig>, Shared)> {
        let g = self.gen.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref()
            .map(|g| (g.id, g.config.clone(), g.shared.clone()))
    }

    fn warn_unauthorized(&self) {
        self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let last = self.stats.last_warn.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .stats
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let n = self.stats.unauthorized.load(Ordering::Relaxed);
            tracing::warn!(total = n, "agent API: request without a valid token (401)");
        }
    }
}

/// The agent whose token the `Authorization: Bearer` header carries (every digest is
/// compared: no early exit).
pub fn authenticate<'a>(agents: &'a [AgentSpec], headers: &HeaderMap) -> Option<&'a AgentSpec> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    let d = crate::config::agents::token_digest(token);
    let mut found = None;
    for a in agents {
        if bool::from(a.token_sha256.ct_eq(&d)) {
            found = Some(a);
        }
    }
    found
}

/// The routes.
pub fn router(api: Arc<AgentApi>) -> Router {
    Router::new()
        .route(proto::PATH_CHECKS, get(checks))
        .route(proto::PATH_RESULTS, post(results))
        .layer(DefaultBodyLimit::max(proto::MAX_BODY))
        .with_state(api)
}

fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    let body = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    json(status, &serde_json::json!({ "error": msg }))
}

type Auth = (u64, Arc<MonitorConfig>, Shared, AgentSpec);

fn auth(api: &AgentApi, headers: &HeaderMap) -> Result<Auth, (StatusCode, &'static str)> {
    let Some((id, cfg, shared)) = api.current() else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "not ready"));
    };
    let agents = cfg.agents.as_ref().map_or(&[][..], |a| &a.agents[..]);
    match authenticate(agents, headers) {
        Some(a) => {
            let a = a.clone();
            shared
                .metrics
                .agent_last_seen
                .get_or_create(&AgentSeenLabels {
                    agent: a.name.clone(),
                    location: a.location.clone(),
                })
                .set(chrono::Utc::now().timestamp());
            Ok((id, cfg, shared, a))
        }
        None => {
            shared.metrics.agent_unauthorized.inc();
            api.warn_unauthorized();
            Err((StatusCode::UNAUTHORIZED, "invalid or missing token"))
        }
    }
}

async fn checks(State(api): State<Arc<AgentApi>>, headers: HeaderMap) -> Response {
    let (_, cfg, _, agent) = match auth(&api, &headers) {
        Ok(v) => v,
        Err((code, msg)) => return error(code, msg),
    };
    let reply = ChecksReply {
        agent: agent.name.clone(),
        location: agent.location.clone(),
        checks: cfg
            .checks
            .iter()
            .filter(|c| c.agents.contains(&agent.name))
            .map(AgentCheck::from_check)
            .collect(),
    };
    json(StatusCode::OK, &reply)
}

async fn results(State(api): State<Arc<AgentApi>>, headers: HeaderMap, body: Bytes) -> Response {
    let (gen, cfg, shared, agent) = match auth(&api, &headers) {
        Ok(v) => v,
        Err((code, msg)) => return error(code, msg),
    };
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad batch: {e}")),
    };
    if batch.location != agent.location {
        return error(
            StatusCode::FORBIDDEN,
            "location differs from the agent's configured location",
        );
    }
    if batch.cycles.len() > proto::MAX_CYCLES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {} cycles per batch", proto::MAX_CYCLES),
        );
    }
    let mut p = api.processing.lock().await;
    if p.gen != gen {
        p.gen = gen;
        p.engines.clear();
    }
    let mut reply = BatchReply::default();
    for c in batch.cycles {
        if p.seen.contains(&c.id) {
            reply.duplicates += 1;
            continue;
        }
        let check = cfg
            .check(&c.check)
            .filter(|k| k.agents.contains(&agent.name));
        let Some(check) = check else {
            reply.rejected.push(Rejected {
                id: c.id.clone(),
                reason: "check not assigned to this agent".into(),
            });
            continue;
        };
        if let Err(reason) =
            proto::validate_cycle(&c, check, &TargetSet::of(check), chrono::Utc::now())
        {
            reply.rejected.push(Rejected { id: c.id, reason });
            continue;
        }
        let mut vantage = check.clone();
        vantage.name = proto::vantage_name(&check.name, &agent.location);
        match process(&mut p, &cfg, &shared, vantage, &c).await {
            Ok(stored) => {
                p.remember(c.id);
                if stored {
                    reply.accepted += 1;
                } else {
                    reply.duplicates += 1;
                }
            }
            Err(e) => {
                shared.metrics.store_errors.inc();
                tracing::error!(agent = %agent.name, error = %e, "agent cycle not stored");
                // What was stored stays remembered; the agent resends the rest.
                return error(StatusCode::SERVICE_UNAVAILABLE, "store error; retry later");
            }
        }
    }
    drop(p);
    let s = &api.stats;
    s.accepted
        .fetch_add(reply.accepted as u64, Ordering::Relaxed);
    s.duplicates
        .fetch_add(reply.duplicates as u64, Ordering::Relaxed);
    s.rejected
        .fetch_add(reply.rejected.len() as u64, Ordering::Relaxed);
    for (result, n) in [
        ("accepted", reply.accepted),
        ("duplicate", reply.duplicates),
        ("rejected", reply.rejected.len()),
    ] {
        shared
            .metrics
            .agent_cycles
            .get_or_create(&AgentLabels {
                agent: agent.name.clone(),
                location: agent.location.clone(),
                result: result.into(),
            })
            .inc_by(n as u64);
    }
    for r in &reply.rejected {
        tracing::warn!(agent = %agent.name, cycle = %Escaped(&r.id), reason = %Escaped(&r.reason), "agent cycle rejected");
    }
    json(StatusCode::OK, &reply)
}

/// Process one validated cycle as the check `vantage` (`CHECK@LOCATION`); `false` when the
/// store already has it (a batch retried across a restart of the central).
async fn process(
    p: &mut Processing,
    cfg: &MonitorConfig,
    shared: &Shared,
    vantage: crate::config::Check,
    c: &proto::Cycle,
) -> Result<bool, String> {
    let engine = p.engines.remove(&vantage.name);
    let (store, metrics) = (shared.store.clone(), shared.metrics.clone());
    let windows = cfg.maintenance.clone();
    let (results, started, finished) = (c.results.clone(), c.started, c.finished);
    let name = vantage.name.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
        match s.has_run(&vantage.name, started, finished) {
            Ok(false) => {}
            Ok(true) => return (engine, Ok(None)),
            Err(e) => return (engine, Err(e)),
        }
        let mut engine = match engine {
            Some(e) => e,
            None => match scheduler::load_engine(&mut s, &vantage.name) {
                Ok(e) => e,
                Err(e) => return (None, Err(e)),
            },
        };
        let r = scheduler::process_cycle(
            &mut s,
            &metrics,
            &mut engine,
            &vantage,
            &windows,
            &results,
            started,
            finished,
        );
        (Some(engine), r.map(Some))
    })
    .await;
    let (engine, r) = joined.map_err(|e| e.to_string())?;
    if let Some(e) = engine {
        p.engines.insert(name.clone(), e);
    }
    let Some(jobs) = r.map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    shared
        .metrics
        .cycles
        .get_or_create(&CheckLabels { check: name })
        .inc();
    scheduler::queue_alerts(shared, jobs).await;
    Ok(true)
}
