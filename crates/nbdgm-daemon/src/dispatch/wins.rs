//! Handlers of the NBNS table operations (`wins_list`, `wins_add`, `wins_delete`;
//! docs/api.md "NBNS table"; the name database of RFC 1001 §15.1.1). Changes are for
//! administrators only: a Unix peer running as root or as the daemon's own user. Other
//! local users of the API group, and TCP clients (no peer credentials), get `denied`.

use super::{ask, Dispatcher, OpError, Outcome, WorkerHandle};
use crate::api::ClientInfo;
use crate::nbns_state::{NbnsAdmin, NbnsAdminReply};
use crate::worker::Command;
use nbdgm_api::{
    ErrorCode, WinsAddArgs, WinsChangeResult, WinsDeleteArgs, WinsInterface, WinsListArgs,
    WinsListResult, WINS_PAGE, WINS_PAGE_BYTES, WINS_PAGE_MAX,
};
use std::net::IpAddr;
use tracing::info;

/// May `client` change the NBNS table? Root, or the daemon's own user.
pub(crate) fn is_admin(client: &ClientInfo) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    client.uid.is_some_and(|u| u == 0 || u == me)
}

fn denied(op: &str) -> OpError {
    OpError::new(
        ErrorCode::Denied,
        format!("{op} changes the NBNS table: only root or the daemon's user may"),
    )
}

fn unsupported() -> OpError {
    OpError::new(ErrorCode::Unsupported, "no interface has the NBNS role")
}

impl Dispatcher {
    fn wins_workers(&self, interface: Option<IpAddr>) -> Result<Vec<WorkerHandle>, OpError> {
        match interface {
            None => Ok(self.workers.clone()),
            Some(i) => self
                .worker_for(Some(i), None)
                .map(|w| vec![w])
                .ok_or_else(|| OpError::new(ErrorCode::NotFound, format!("no interface {i}"))),
        }
    }

    /// Ask every chosen worker; workers without the role are skipped (`unsupported`
    /// when none has it), any other error ends the request.
    async fn ask_all(
        workers: Vec<WorkerHandle>,
        op: NbnsAdmin,
    ) -> Result<Vec<(WorkerHandle, NbnsAdminReply)>, OpError> {
        let mut out = Vec::new();
        for w in workers {
            match ask(&w, |reply| Command::Nbns {
                op: op.clone(),
                reply,
            })
            .await
            {
                Ok(r) => out.push((w, r)),
                Err(e) if e.code == "unsupported" => {}
                Err(e) => return Err(e.into()),
            }
        }
        if out.is_empty() {
            return Err(unsupported());
        }
        Ok(out)
    }

    /// `wins_list`: one page of the table of every interface with the NBNS role.
    pub(super) fn wins_list(&self, args: WinsListArgs) -> Result<Outcome<WinsListResult>, OpError> {
        let workers = self.wins_workers(args.interface)?;
        let op = NbnsAdmin::List {
            offset: args.offset.unwrap_or(0),
            limit: args.limit.unwrap_or(WINS_PAGE).clamp(1, WINS_PAGE_MAX),
            budget: WINS_PAGE_BYTES / workers.len().max(1),
        };
        Ok(Outcome::later(async move {
            let mut interfaces = Vec::new();
            for (w, r) in Self::ask_all(workers, op).await? {
                if let NbnsAdminReply::List {
                    total,
                    entries,
                    next_offset,
                } = r
                {
                    interfaces.push(WinsInterface {
                        interface: w.interface,
                        total,
                        entries,
                        next_offset,
                    });
                }
            }
            Ok(WinsListResult { interfaces })
        }))
    }

    /// `wins_add` (administrators only).
    pub(super) fn wins_add(
        &self,
        client: &ClientInfo,
        args: WinsAddArgs,
    ) -> Result<Outcome<WinsChangeResult>, OpError> {
        if !is_admin(client) {
            return Err(denied("wins_add"));
        }
        let name = self.parse_name(&args.name)?;
        let workers = self.wins_workers(args.interface)?;
        info!(client = client.id, %name, static_ = args.is_static, "api: NBNS entry added");
        let op = NbnsAdmin::Add {
            name: name.clone(),
            group: args.group,
            addresses: args.addresses,
            is_static: args.is_static,
            ttl: args.ttl,
        };
        Ok(Outcome::later(async move {
            let done = Self::ask_all(workers, op).await?;
            Ok(WinsChangeResult {
                name: name.to_string(),
                interfaces: done.iter().map(|(w, _)| w.interface).collect(),
                removed: 0,
            })
        }))
    }

    /// `wins_delete` (administrators only).
    pub(super) fn wins_delete(
        &self,
        client: &ClientInfo,
        args: WinsDeleteArgs,
    ) -> Result<Outcome<WinsChangeResult>, OpError> {
        if !is_admin(client) {
            return Err(denied("wins_delete"));
        }
        let name = self.parse_name(&args.name)?;
        let workers = self.wins_workers(args.interface)?;
        info!(client = client.id, %name, "api: NBNS entry deleted");
        let op = NbnsAdmin::Delete {
            name: name.clone(),
            address: args.address,
        };
        Ok(Outcome::later(async move {
            let done = Self::ask_all(workers, op).await?;
            let removed = done
                .iter()
                .map(|(_, r)| match r {
                    NbnsAdminReply::Changed { removed } => *removed,
                    NbnsAdminReply::List { .. } => 0,
                })
                .sum();
            Ok(WinsChangeResult {
                name: name.to_string(),
                interfaces: done.iter().map(|(w, _)| w.interface).collect(),
                removed,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Identity, Routed};
    use super::*;
    use nbdgm_api::Op;
    use nbdgm_nbns::{NbnsConfig, NbnsServer};
    use serde_json::json;
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::time::Instant;
    use tokio::sync::mpsc;

    /// A worker whose NBNS role is a real engine.
    fn nbns_worker() -> WorkerHandle {
        let (tx, mut rx) = mpsc::channel::<Command>(8);
        tokio::spawn(async move {
            let mut s = NbnsServer::new(NbnsConfig::default(), Instant::now()).unwrap();
            while let Some(cmd) = rx.recv().await {
                if let Command::Nbns { op, reply } = cmd {
                    let _ = reply.send(crate::nbns_state::admin(&mut s, Instant::now(), op));
                }
            }
        });
        WorkerHandle {
            interface: Ipv4Addr::new(192, 0, 2, 1),
            prefix: 24,
            broadcast: Ipv4Addr::new(192, 0, 2, 255),
            tx,
        }
    }

    fn client(uid: Option<u32>) -> ClientInfo {
        ClientInfo {
            id: 1,
            pid: None,
            uid,
            gid: None,
            peer: "unix:pid=1".into(),
        }
    }

    async fn answer(d: &mut Dispatcher, c: &ClientInfo, op: Op) -> serde_json::Value {
        let r = match d.route(c, 5, op) {
            Routed::Now(r) => r,
            Routed::Later(f) => f.await,
        };
        serde_json::to_value(&r).unwrap()
    }

    fn add(name: &str) -> Op {
        Op::WinsAdd(WinsAddArgs {
            name: name.into(),
            group: false,
            addresses: vec![Ipv4Addr::new(192, 0, 2, 7)],
            is_static: true,
            ttl: None,
            interface: None,
        })
    }

    #[tokio::test]
    async fn add_list_delete_and_refusals() {
        let identity = Identity {
            node_name: "NODE<00>".parse().unwrap(),
            scope: String::new(),
            reserved: vec![],
        };
        let mut d = Dispatcher::new(vec![nbns_worker()], identity, Arc::new(|| json!({})));
        let root = client(Some(0));
        // Someone else of the API group, and a TCP client: denied, nothing changes.
        let other = client(Some(nix::unistd::geteuid().as_raw().wrapping_add(4242)));
        let tcp = ClientInfo {
            uid: None,
            peer: "tcp:127.0.0.1:5000".into(),
            ..client(None)
        };
        for c in [&other, &tcp] {
            let r = answer(&mut d, c, add("PRINTER<20>")).await;
            assert_eq!(r["error"]["code"], "denied", "{r}");
            let del = Op::WinsDelete(WinsDeleteArgs {
                name: "PRINTER<20>".into(),
                address: None,
                interface: None,
            });
            assert_eq!(answer(&mut d, c, del).await["error"]["code"], "denied");
        }
        let list = Op::WinsList(WinsListArgs::default());
        let r = answer(&mut d, &other, list.clone()).await;
        assert_eq!(r["result"]["interfaces"][0]["total"], 0, "{r}");

        let r = answer(&mut d, &root, add("printer<20>")).await;
        assert_eq!(
            r["result"],
            json!({"name": "PRINTER<20>", "interfaces": ["192.0.2.1"], "removed": 0})
        );
        // Listing is for every API user.
        let r = answer(&mut d, &other, list.clone()).await;
        let e = &r["result"]["interfaces"][0]["entries"][0];
        assert_eq!(e["name"], "PRINTER<20>");
        assert_eq!(e["static"], true);
        assert_eq!(e["origin"], "admin");
        assert_eq!(e["members"][0]["ip"], "192.0.2.7");

        let del = Op::WinsDelete(WinsDeleteArgs {
            name: "PRINTER<20>".into(),
            address: None,
            interface: None,
        });
        assert_eq!(
            answer(&mut d, &root, del.clone()).await["result"]["removed"],
            1
        );
        assert_eq!(
            answer(&mut d, &root, del).await["error"]["code"],
            "not_found"
        );
        let bad = Op::WinsAdd(WinsAddArgs {
            addresses: vec![],
            ..match add("X<00>") {
                Op::WinsAdd(a) => a,
                _ => unreachable!(),
            }
        });
        assert_eq!(
            answer(&mut d, &root, bad).await["error"]["code"],
            "bad_request"
        );
    }
}
