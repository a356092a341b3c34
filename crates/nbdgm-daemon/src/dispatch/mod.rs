//! Routes local API requests (`docs/api.md`, "Operations") to the interface workers
//! and gathers their answers; names registered through the API belong to their
//! client and are released when it leaves.
//!
//! One handler per operation ([`handlers`]); the router ([`Dispatcher::route`])
//! turns a handler's typed result or [`OpError`] into the response line.

mod handlers;
mod wins;

use crate::api::{ApiMsg, ClientInfo};
use crate::ownership::{Owners, Refusal};
use crate::worker::{CmdError, Command, Reply};
use nbdgm_api::{ErrorCode, Op, Response};
use nbdgm_node::Name;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

/// A worker as the dispatcher sees it.
#[derive(Clone)]
pub struct WorkerHandle {
    pub interface: Ipv4Addr,
    pub prefix: u8,
    pub broadcast: Ipv4Addr,
    pub tx: mpsc::Sender<Command>,
}

impl WorkerHandle {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        };
        u32::from(ip) & mask == u32::from(self.interface) & mask
    }
}

/// What the dispatcher needs from the configuration.
#[derive(Clone)]
pub struct Identity {
    /// The node name `<00>` (default source of sends), with the scope.
    pub node_name: Name,
    pub scope: String,
    /// Names only the configuration may change (configured and browser names).
    pub reserved: Vec<Name>,
}

pub struct Dispatcher {
    workers: Vec<WorkerHandle>,
    identity: Identity,
    /// Who holds which name registered through the API (issue 12 item 5).
    owners: Arc<std::sync::Mutex<Owners>>,
    started: Instant,
    stats: Arc<dyn Fn() -> Value + Send + Sync>,
}

/// Why a request fails: the protocol's error code and the message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    pub code: ErrorCode,
    pub message: String,
}

impl OpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        OpError {
            code,
            message: message.into(),
        }
    }

    /// A `bad_request` error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        OpError::new(ErrorCode::BadRequest, message)
    }

    /// The error response to request `id`.
    pub fn response(self, id: u64) -> Response {
        Response::err(Some(id), self.code, self.message)
    }
}

/// The protocol code of a worker's or the ownership table's error code.
fn error_code(code: &str) -> ErrorCode {
    match code {
        "not_found" => ErrorCode::NotFound,
        "conflict" => ErrorCode::Conflict,
        "timeout" => ErrorCode::Timeout,
        "busy" => ErrorCode::Busy,
        "denied" => ErrorCode::Denied,
        "bad_request" => ErrorCode::BadRequest,
        "unsupported" => ErrorCode::Unsupported,
        _ => ErrorCode::Internal,
    }
}

impl From<CmdError> for OpError {
    fn from(e: CmdError) -> Self {
        OpError::new(error_code(e.code), e.message)
    }
}

impl From<Refusal> for OpError {
    fn from(r: Refusal) -> Self {
        OpError::new(error_code(r.code), r.message)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler's answer: ready now, or work to finish in its own task.
pub(crate) enum Outcome<T> {
    Ready(T),
    Later(BoxFuture<Result<T, OpError>>),
}

impl<T> Outcome<T> {
    /// Work to finish in its own task.
    fn later(f: impl Future<Output = Result<T, OpError>> + Send + 'static) -> Self {
        Outcome::Later(Box::pin(f))
    }
}

/// The router's answer: a response now, or one to wait for.
pub(crate) enum Routed {
    Now(Response),
    Later(BoxFuture<Response>),
}

/// The response to request `id` from a handler's result.
fn finish<T: Serialize + Send + 'static>(id: u64, r: Result<Outcome<T>, OpError>) -> Routed {
    match r {
        Err(e) => Routed::Now(e.response(id)),
        Ok(Outcome::Ready(v)) => Routed::Now(Response::ok(id, &v)),
        Ok(Outcome::Later(f)) => Routed::Later(Box::pin(async move {
            match f.await {
                Ok(v) => Response::ok(id, &v),
                Err(e) => e.response(id),
            }
        })),
    }
}

/// Ask one worker; a full command queue is `busy`.
pub(crate) async fn ask<T>(
    w: &WorkerHandle,
    make: impl FnOnce(Reply<T>) -> Command,
) -> Result<T, CmdError> {
    let (tx, rx) = oneshot::channel();
    w.tx.try_send(make(tx))
        .map_err(|_| CmdError::new("busy", format!("interface {} is overloaded", w.interface)))?;
    rx.await
        .unwrap_or_else(|_| Err(CmdError::new("internal", "the interface worker stopped")))
}

impl Dispatcher {
    pub fn new(
        workers: Vec<WorkerHandle>,
        identity: Identity,
        stats: Arc<dyn Fn() -> Value + Send + Sync>,
    ) -> Self {
        let mut owners = Owners::default();
        owners.set_reserved(identity.reserved.clone());
        Dispatcher {
            workers,
            identity,
            owners: Arc::new(std::sync::Mutex::new(owners)),
            started: Instant::now(),
            stats,
        }
    }

    pub fn set_identity(&mut self, identity: Identity) {
        self.owners().set_reserved(identity.reserved.clone());
        self.identity = identity;
    }

    /// A name from a request (`bad_request` if invalid); without a scope, it lives
    /// in the node's scope.
    fn parse_name(&self, s: &str) -> Result<Name, OpError> {
        let n: Name = s
            .parse()
            .map_err(|e| OpError::bad_request(format!("bad name {s:?}: {e}")))?;
        if n.scope().is_empty() && !self.identity.scope.is_empty() {
            n.with_scope(&self.identity.scope)
                .map_err(|e| OpError::bad_request(e.to_string()))
        } else {
            Ok(n)
        }
    }

    fn worker_for(
        &self,
        interface: Option<IpAddr>,
        target: Option<Ipv4Addr>,
    ) -> Option<WorkerHandle> {
        if let Some(IpAddr::V4(i)) = interface {
            return self.workers.iter().find(|w| w.interface == i).cloned();
        }
        if interface.is_some() {
            return None;
        }
        target
            .and_then(|t| self.workers.iter().find(|w| w.contains(t)))
            .or_else(|| self.workers.first())
            .cloned()
    }

    /// Handle one message from the API layer. Slow requests run in their own task.
    pub fn handle(&mut self, msg: ApiMsg) {
        match msg {
            ApiMsg::Disconnected { client } => self.disconnected(&client),
            ApiMsg::Request {
                client,
                request,
                reply,
            } => {
                let id = request.id;
                debug!(client = client.id, op = request.op.name(), "api request");
                match self.route(&client, id, request.op) {
                    Routed::Later(fut) => {
                        tokio::spawn(async move {
                            let r = fut.await;
                            let _ = reply.send(r);
                        });
                    }
                    Routed::Now(r) => {
                        let _ = reply.send(r);
                    }
                }
            }
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn disconnected(&mut self, client: &ClientInfo) {
        let names = self.owners().disconnect(client.id);
        for name in names {
            info!(client = client.id, %name, "client left: releasing its name");
            for w in self.workers.clone() {
                let name = name.clone();
                tokio::spawn(async move {
                    let _ = ask(&w, |reply| Command::Release { name, reply }).await;
                });
            }
        }
    }

    /// One handler per operation; validation and name claims happen here, in
    /// request order, and the workers' part runs in its own task.
    fn route(&mut self, client: &ClientInfo, id: u64, op: Op) -> Routed {
        match op {
            Op::Hello { client: who } => finish(id, Ok(Outcome::Ready(self.hello(client, who)))),
            Op::Subscribe(_) | Op::Unsubscribe { .. } => Routed::Now(
                OpError::new(
                    ErrorCode::Internal,
                    "subscriptions are handled by the API layer",
                )
                .response(id),
            ),
            Op::Register(args) => finish(id, self.register(client, args)),
            Op::Release { name } => finish(id, self.release(client, &name)),
            Op::Send(args) => finish(id, self.send(client, args)),
            Op::Lookup { name, server } => finish(id, self.lookup(&name, server)),
            Op::Status { address, name } => finish(id, self.status(address, name)),
            Op::Names => finish(id, Ok(self.names())),
            Op::Cache => finish(id, Ok(self.cache())),
            Op::Browse {
                workgroup,
                offset,
                limit,
                local,
            } => finish(id, Ok(self.browse(workgroup, offset, limit, local))),
            Op::Stats => finish(id, Ok(self.stats())),
            Op::WinsList(args) => finish(id, self.wins_list(args)),
            Op::WinsAdd(args) => finish(id, self.wins_add(client, args)),
            Op::WinsDelete(args) => finish(id, self.wins_delete(client, args)),
        }
    }
}

#[cfg(test)]
mod tests;
