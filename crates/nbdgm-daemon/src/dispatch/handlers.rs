//! One handler per API operation (`docs/api.md`, "Operations"): each checks its
//! arguments and returns a typed result or an [`OpError`]; work on the interface
//! workers is returned as [`Outcome::Later`] and runs in its own task.

use super::{ask, Dispatcher, OpError, Outcome};
use crate::api::ClientInfo;
use crate::worker::{Command, InterfaceStats, Released};
use nbdgm_api::{
    BrowseResult, CacheResult, HelloResult, InterfaceInfo, LookupResult, NameState, NamesResult,
    RegisterArgs, RegisterResult, SendArgs, SendResult, StatusResult, BROWSE_PAGE,
    BROWSE_PAGE_BYTES, BROWSE_PAGE_MAX, PROTOCOL_VERSION,
};
use nbdgm_node::{LookupTarget, Name, SendMode, SendRequest};
use nbdgm_wire::mailslot::MailslotWrite;
use serde::Serialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddrV4};
use tracing::info;

/// The result of `stats`.
#[derive(Debug, Serialize)]
pub(crate) struct Stats {
    uptime_s: u64,
    api: Value,
    interfaces: Vec<InterfaceStats>,
}

impl Dispatcher {
    /// `hello`: who we are and our interfaces.
    pub(super) fn hello(&self, client: &ClientInfo, who: Option<String>) -> HelloResult {
        if let Some(who) = who {
            info!(client = client.id, name = %nbdgm_wire::text::Escaped(&who), "api hello");
        }
        HelloResult {
            server: "nbdgm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL_VERSION,
            interfaces: self
                .workers
                .iter()
                .map(|w| InterfaceInfo {
                    address: w.interface.into(),
                    prefix_len: Some(w.prefix),
                    broadcast: Some(w.broadcast.into()),
                    name: None,
                })
                .collect(),
        }
    }

    /// `register`: claim the name for the client, then register it on every
    /// interface; if one refuses, the claim goes too.
    pub(super) fn register(
        &self,
        client: &ClientInfo,
        args: RegisterArgs,
    ) -> Result<Outcome<RegisterResult>, OpError> {
        let name = self.parse_name(&args.name)?;
        self.owners()
            .claim(client, &name, args.group, args.persistent)?;
        let group = args.group;
        let (workers, owners, who) = (self.workers.clone(), self.owners.clone(), client.clone());
        Ok(Outcome::later(async move {
            for w in &workers {
                let n = name.clone();
                if let Err(e) = ask(w, |reply| Command::Register {
                    name: n,
                    group,
                    reply,
                })
                .await
                {
                    if let Ok(mut o) = owners.lock() {
                        let _ = o.release(&who, &name);
                    }
                    return Err(e.into());
                }
            }
            Ok(RegisterResult {
                name: name.to_string(),
                group,
                state: NameState::Registered,
            })
        }))
    }

    /// `release`: only the holder may release; other members keep a group name,
    /// and the last one releases it on every interface.
    pub(super) fn release(
        &self,
        client: &ClientInfo,
        name: &str,
    ) -> Result<Outcome<Released>, OpError> {
        let name = self.parse_name(name)?;
        let last = self.owners().release(client, &name)?;
        if !last {
            return Ok(Outcome::Ready(Released::new(&name)));
        }
        let workers = self.workers.clone();
        Ok(Outcome::later(async move {
            // The answer is the last interface's.
            let mut last = Ok(Released::new(&name));
            for w in &workers {
                let n = name.clone();
                last = ask(w, |reply| Command::Release { name: n, reply }).await;
            }
            last.map(|_| Released::new(&name)).map_err(OpError::from)
        }))
    }

    /// `send`: a datagram from `source` (default: the node name) on the interface
    /// given, or the one on the target's subnet, or the first. The client's id goes
    /// with it: the local copy of a group or broadcast datagram is not echoed to it.
    pub(super) fn send(
        &self,
        client: &ClientInfo,
        args: SendArgs,
    ) -> Result<Outcome<SendResult>, OpError> {
        let data = args
            .data()
            .map_err(|e| OpError::bad_request(e.to_string()))?;
        let destination = match args.mode {
            nbdgm_api::SendMode::Broadcast
                if args.destination.is_empty() || args.destination == "*" =>
            {
                Name::wildcard()
            }
            _ => self.parse_name(&args.destination)?,
        };
        let source = match &args.source {
            Some(s) => self.parse_name(s)?,
            None => self.identity.node_name.clone(),
        };
        let data = match &args.mailslot {
            Some(m) => MailslotWrite::new(m, data)
                .to_bytes()
                .map_err(|e| OpError::bad_request(format!("mailslot write: {e}")))?,
            None => data,
        };
        let at = match args.address {
            None => None,
            Some(IpAddr::V4(ip)) => Some(SocketAddrV4::new(ip, args.port.unwrap_or(0))),
            Some(IpAddr::V6(_)) => return Err(OpError::bad_request("address: IPv4 only")),
        };
        let mode = send_mode(args.mode, at)?;
        let w = self
            .worker_for(args.interface, at.map(|a| *a.ip()))
            .ok_or_else(|| OpError::bad_request("no such interface"))?;
        let request = SendRequest {
            source,
            destination,
            mode,
            data,
        };
        let client = Some(client.id);
        Ok(Outcome::later(async move {
            Ok(ask(&w, |reply| Command::Send {
                request,
                client,
                reply,
            })
            .await?)
        }))
    }

    /// `lookup`: a name query by broadcast, or by unicast to `server`.
    pub(super) fn lookup(
        &self,
        name: &str,
        server: Option<IpAddr>,
    ) -> Result<Outcome<LookupResult>, OpError> {
        let name = self.parse_name(name)?;
        let (target, w) = match server {
            Some(IpAddr::V4(ip)) => (LookupTarget::Unicast(ip), self.worker_for(None, Some(ip))),
            Some(IpAddr::V6(_)) => {
                return Err(OpError::bad_request("NetBIOS over TCP/IP is IPv4 only"))
            }
            None => (LookupTarget::Broadcast, self.workers.first().cloned()),
        };
        let w = w.ok_or_else(|| OpError::bad_request("no interface"))?;
        Ok(Outcome::later(async move {
            Ok(ask(&w, |reply| Command::Lookup {
                name,
                target,
                reply,
            })
            .await?)
        }))
    }

    /// `status`: a node status request to `address`.
    pub(super) fn status(
        &self,
        address: IpAddr,
        name: Option<String>,
    ) -> Result<Outcome<StatusResult>, OpError> {
        let IpAddr::V4(address) = address else {
            return Err(OpError::bad_request("NetBIOS over TCP/IP is IPv4 only"));
        };
        let name = name.map(|n| self.parse_name(&n)).transpose()?;
        let w = self
            .worker_for(None, Some(address))
            .ok_or_else(|| OpError::bad_request("no interface"))?;
        Ok(Outcome::later(async move {
            Ok(ask(&w, |reply| Command::Status {
                address,
                name,
                reply,
            })
            .await?)
        }))
    }

    /// `names`: every interface's name table, API names marked with their owner.
    pub(super) fn names(&self) -> Outcome<NamesResult> {
        let (workers, owners) = (self.workers.clone(), self.owners.clone());
        Outcome::later(async move {
            let mut interfaces = Vec::new();
            for w in &workers {
                let mut v = ask(w, |reply| Command::Names { reply }).await?;
                if let Ok(o) = owners.lock() {
                    for e in v.names.iter_mut() {
                        let key = e.name.parse::<Name>().ok();
                        if let Some((owner, persistent)) = key.and_then(|k| o.owner(&k)) {
                            e.owner = Some(owner);
                            e.persistent = persistent;
                        }
                    }
                }
                interfaces.push(v)
            }
            Ok(NamesResult { interfaces })
        })
    }

    /// `cache`: the name cache of every interface.
    pub(super) fn cache(&self) -> Outcome<CacheResult> {
        let workers = self.workers.clone();
        Outcome::later(async move {
            let mut entries = Vec::new();
            for w in &workers {
                let v = ask(w, |reply| Command::Cache { reply }).await?;
                entries.extend(v.entries);
            }
            Ok(CacheResult { entries })
        })
    }

    /// `browse`: one page of every interface's browse list.
    pub(super) fn browse(
        &self,
        workgroup: Option<String>,
        offset: Option<usize>,
        limit: Option<usize>,
        local: bool,
    ) -> Outcome<BrowseResult> {
        let workers = self.workers.clone();
        Outcome::later(async move {
            let limit = limit.unwrap_or(BROWSE_PAGE).min(BROWSE_PAGE_MAX);
            let page = Some((offset.unwrap_or(0), limit));
            // Capped in bytes too, under the client's line limit (hostile entries
            // are four times the usual size).
            let budget = BROWSE_PAGE_BYTES;
            Ok(crate::browse::collect(&workers, workgroup, page, budget, local).await?)
        })
    }

    /// `stats`: the daemon's counters and every interface's.
    pub(super) fn stats(&self) -> Outcome<Stats> {
        let mut api = (self.stats)();
        if let Some(x) = api.as_object_mut() {
            x.insert("names".into(), json!(self.owners().stats()));
        }
        let uptime_s = self.started.elapsed().as_secs();
        let workers = self.workers.clone();
        Outcome::later(async move {
            let mut interfaces = Vec::new();
            for w in &workers {
                interfaces.push(ask(w, |reply| Command::Stats { reply }).await?);
            }
            Ok(Stats {
                uptime_s,
                api,
                interfaces,
            })
        })
    }
}

/// The engine's send mode; port 0 in `at`: the worker fills in its datagram port.
fn send_mode(mode: nbdgm_api::SendMode, at: Option<SocketAddrV4>) -> Result<SendMode, OpError> {
    use nbdgm_api::SendMode as Api;
    Ok(match (mode, at) {
        (Api::Unique, None) => SendMode::Unique,
        (Api::Group, None) => SendMode::Group,
        (Api::Broadcast, None) => SendMode::Broadcast,
        (Api::Unique, Some(a)) => SendMode::UniqueAt(a),
        (Api::Group, Some(a)) => SendMode::GroupAt(a),
        (Api::Broadcast, Some(_)) => {
            return Err(OpError::bad_request(
                "address cannot be used with mode broadcast",
            ))
        }
    })
}
