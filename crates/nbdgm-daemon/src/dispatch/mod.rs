//! Routes local API requests to the interface workers and gathers their answers
//! (the API side of issue 4 §3; names per client, released when the client leaves).

use crate::api::{ApiMsg, ClientInfo};
use crate::ownership::Owners;
use crate::worker::{CmdError, Command, Reply};
use nbdgm_api::{
    self as proto, ErrorCode, HelloResult, InterfaceInfo, NameState, Op, RegisterResult, Response,
};
use nbdgm_node::{LookupTarget, Name, SendMode, SendRequest};
use nbdgm_wire::mailslot::MailslotWrite;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
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

fn err(id: u64, e: CmdError) -> Response {
    let code = match e.code {
        "not_found" => ErrorCode::NotFound,
        "conflict" => ErrorCode::Conflict,
        "timeout" => ErrorCode::Timeout,
        "busy" => ErrorCode::Busy,
        "denied" => ErrorCode::Denied,
        "bad_request" => ErrorCode::BadRequest,
        "unsupported" => ErrorCode::Unsupported,
        _ => ErrorCode::Internal,
    };
    Response::err(Some(id), code, e.message)
}

fn bad(id: u64, msg: impl Into<String>) -> Response {
    Response::err(Some(id), ErrorCode::BadRequest, msg)
}

/// Ask one worker; a full command queue is `busy`.
pub(crate) async fn ask(
    w: &WorkerHandle,
    make: impl FnOnce(Reply) -> Command,
) -> Result<Value, CmdError> {
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

    pub fn workers(&self) -> &[WorkerHandle] {
        &self.workers
    }

    fn parse_name(&self, s: &str) -> Result<Name, String> {
        let n: Name = s.parse().map_err(|e| format!("bad name {s:?}: {e}"))?;
        // A name without a scope lives in the node's scope.
        if n.scope().is_empty() && !self.identity.scope.is_empty() {
            n.with_scope(&self.identity.scope)
                .map_err(|e| e.to_string())
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
                match self.request(&client, id, request.op) {
                    Ok(fut) => {
                        tokio::spawn(async move {
                            let r = fut.await;
                            let _ = reply.send(r);
                        });
                    }
                    Err(r) => {
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

    #[allow(clippy::type_complexity)]
    fn request(
        &mut self,
        client: &ClientInfo,
        id: u64,
        op: Op,
    ) -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>, Response>
    {
        let workers = self.workers.clone();
        Ok(match op {
            Op::Hello { client: who } => {
                if let Some(who) = who {
                    info!(client = client.id, name = %nbdgm_wire::text::Escaped(&who), "api hello");
                }
                let r = HelloResult {
                    server: "nbdgm".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    protocol: proto::PROTOCOL_VERSION,
                    interfaces: workers
                        .iter()
                        .map(|w| InterfaceInfo {
                            address: w.interface.into(),
                            prefix_len: Some(w.prefix),
                            broadcast: Some(w.broadcast.into()),
                            name: None,
                        })
                        .collect(),
                };
                return Err(Response::ok(id, &r));
            }
            Op::Subscribe(_) | Op::Unsubscribe { .. } => {
                return Err(Response::err(
                    Some(id),
                    ErrorCode::Internal,
                    "subscriptions are handled by the API layer",
                ))
            }
            Op::Register(args) => {
                let name = self.parse_name(&args.name).map_err(|e| bad(id, e))?;
                self.owners()
                    .claim(client, &name, args.group, args.persistent)
                    .map_err(|r| err(id, CmdError::new(r.code, r.message)))?;
                let group = args.group;
                let (owners, who) = (self.owners.clone(), client.clone());
                Box::pin(async move {
                    for w in &workers {
                        let n = name.clone();
                        if let Err(e) = ask(w, |reply| Command::Register {
                            name: n,
                            group,
                            reply,
                        })
                        .await
                        {
                            // Not registered: the claim goes too.
                            if let Ok(mut o) = owners.lock() {
                                let _ = o.release(&who, &name);
                            }
                            return err(id, e);
                        }
                    }
                    Response::ok(
                        id,
                        &RegisterResult {
                            name: name.to_string(),
                            group,
                            state: NameState::Registered,
                        },
                    )
                })
            }
            Op::Release { name } => {
                let name = self.parse_name(&name).map_err(|e| bad(id, e))?;
                // Only the holder may release; other members keep a group name.
                let last = self
                    .owners()
                    .release(client, &name)
                    .map_err(|r| err(id, CmdError::new(r.code, r.message)))?;
                if !last {
                    return Err(Response::ok(
                        id,
                        &json!({"name": name.to_string(), "state": "released"}),
                    ));
                }
                Box::pin(async move {
                    let mut last = Ok(Value::Null);
                    for w in &workers {
                        let n = name.clone();
                        last = ask(w, |reply| Command::Release { name: n, reply }).await;
                    }
                    match last {
                        Ok(_) => Response::ok(
                            id,
                            &json!({"name": name.to_string(), "state": "released"}),
                        ),
                        Err(e) => err(id, e),
                    }
                })
            }
            Op::Send(args) => {
                let data = args.data().map_err(|e| bad(id, e))?;
                let destination = match args.mode {
                    proto::SendMode::Broadcast
                        if args.destination.is_empty() || args.destination == "*" =>
                    {
                        Name::wildcard()
                    }
                    _ => self.parse_name(&args.destination).map_err(|e| bad(id, e))?,
                };
                let source = match &args.source {
                    Some(s) => self.parse_name(s).map_err(|e| bad(id, e))?,
                    None => self.identity.node_name.clone(),
                };
                let data = match &args.mailslot {
                    Some(m) => MailslotWrite::new(m, data)
                        .to_bytes()
                        .map_err(|e| bad(id, format!("mailslot write: {e}")))?,
                    None => data,
                };
                let bytes = data.len();
                let at = match args.address {
                    None => None,
                    Some(IpAddr::V4(ip)) => Some(SocketAddrV4::new(ip, args.port.unwrap_or(0))),
                    Some(IpAddr::V6(_)) => return Err(bad(id, "address: IPv4 only")),
                };
                // Port 0: the worker fills in its datagram port.
                let mode = match (args.mode, at) {
                    (proto::SendMode::Unique, None) => SendMode::Unique,
                    (proto::SendMode::Group, None) => SendMode::Group,
                    (proto::SendMode::Broadcast, None) => SendMode::Broadcast,
                    (proto::SendMode::Unique, Some(a)) => SendMode::UniqueAt(a),
                    (proto::SendMode::Group, Some(a)) => SendMode::GroupAt(a),
                    (proto::SendMode::Broadcast, Some(_)) => {
                        return Err(bad(id, "address cannot be used with mode broadcast"))
                    }
                };
                let w = self
                    .worker_for(args.interface, at.map(|a| *a.ip()))
                    .ok_or_else(|| bad(id, "no such interface"))?;
                let request = SendRequest {
                    source,
                    destination,
                    mode,
                    data,
                };
                Box::pin(async move {
                    match ask(&w, |reply| Command::Send { request, reply }).await {
                        Ok(v) => Response::ok(
                            id,
                            &json!({"to": v["to"], "fragments": v["fragments"], "bytes": bytes}),
                        ),
                        Err(e) => err(id, e),
                    }
                })
            }
            Op::Lookup { name, server } => {
                let name = self.parse_name(&name).map_err(|e| bad(id, e))?;
                let (target, w) = match server {
                    Some(IpAddr::V4(ip)) => {
                        (LookupTarget::Unicast(ip), self.worker_for(None, Some(ip)))
                    }
                    Some(IpAddr::V6(_)) => return Err(bad(id, "NetBIOS over TCP/IP is IPv4 only")),
                    None => (LookupTarget::Broadcast, self.workers.first().cloned()),
                };
                let w = w.ok_or_else(|| bad(id, "no interface"))?;
                Box::pin(async move {
                    match ask(&w, |reply| Command::Lookup {
                        name,
                        target,
                        reply,
                    })
                    .await
                    {
                        Ok(v) => Response::ok(id, &v),
                        Err(e) => err(id, e),
                    }
                })
            }
            Op::Status { address, name } => {
                let IpAddr::V4(address) = address else {
                    return Err(bad(id, "NetBIOS over TCP/IP is IPv4 only"));
                };
                let name = name
                    .map(|n| self.parse_name(&n))
                    .transpose()
                    .map_err(|e| bad(id, e))?;
                let w = self
                    .worker_for(None, Some(address))
                    .ok_or_else(|| bad(id, "no interface"))?;
                Box::pin(async move {
                    match ask(&w, |reply| Command::Status {
                        address,
                        name,
                        reply,
                    })
                    .await
                    {
                        Ok(v) => Response::ok(id, &v),
                        Err(e) => err(id, e),
                    }
                })
            }
            Op::Names => {
                let owners = self.owners.clone();
                Box::pin(async move {
                    let mut interfaces = Vec::new();
                    for w in &workers {
                        match ask(w, |reply| Command::Names { reply }).await {
                            Ok(mut v) => {
                                if let (Some(list), Ok(o)) =
                                    (v["names"].as_array_mut(), owners.lock())
                                {
                                    for e in list.iter_mut() {
                                        let key =
                                            e["name"].as_str().and_then(|s| s.parse::<Name>().ok());
                                        if let Some((owner, persistent)) =
                                            key.and_then(|k| o.owner(&k))
                                        {
                                            e["owner"] = json!(owner);
                                            e["persistent"] = json!(persistent);
                                        }
                                    }
                                }
                                interfaces.push(v)
                            }
                            Err(e) => return err(id, e),
                        }
                    }
                    Response::ok(id, &json!({ "interfaces": interfaces }))
                })
            }
            Op::Cache => Box::pin(async move {
                let mut entries = Vec::new();
                for w in &workers {
                    match ask(w, |reply| Command::Cache { reply }).await {
                        Ok(v) => {
                            if let Some(list) = v["entries"].as_array() {
                                entries.extend(list.iter().cloned());
                            }
                        }
                        Err(e) => return err(id, e),
                    }
                }
                Response::ok(id, &json!({ "entries": entries }))
            }),
            Op::Browse {
                workgroup,
                offset,
                limit,
            } => Box::pin(async move {
                let limit = limit
                    .unwrap_or(proto::BROWSE_PAGE)
                    .min(proto::BROWSE_PAGE_MAX);
                let page = Some((offset.unwrap_or(0), limit));
                // Capped in bytes too, under the client's line limit (hostile entries
                // are four times the usual size).
                let budget = proto::BROWSE_PAGE_BYTES;
                match crate::browse::collect(&workers, workgroup, page, budget).await {
                    Ok(r) => Response::ok(id, &r),
                    Err(e) => err(id, e),
                }
            }),
            Op::Stats => {
                let mut extra = (self.stats)();
                if let Some(x) = extra.as_object_mut() {
                    x.insert("names".into(), json!(self.owners().stats()));
                }
                let uptime = self.started.elapsed().as_secs();
                Box::pin(async move {
                    let mut interfaces = Vec::new();
                    for w in &workers {
                        match ask(w, |reply| Command::Stats { reply }).await {
                            Ok(v) => interfaces.push(v),
                            Err(e) => return err(id, e),
                        }
                    }
                    Response::ok(
                        id,
                        &json!({"uptime_s": uptime, "api": extra, "interfaces": interfaces}),
                    )
                })
            }
        })
    }
}
