//! List syncs between browsers across subnets (MS-BRWS §3.3.6, §3.4; Samba
//! `nmbd_browsesync.c` `sync_with_dmb`, `sync_with_lmb`): the peer's nbdgm HTTP
//! endpoint when `[browser] sync_http_port` is set (`GET /api/browse`), else, or when
//! that fails, RAP NetServerEnum2 over SMB. Blocking: each runs on a thread of its own,
//! bounded in time (10 s per exchange) and size (4 MiB of JSON, 10,000 RAP entries).

use nbdgm_api::BrowseResult;
use nbdgm_browser::{Listed, SyncKind};
// NetServerEnum2 type masks (MS-RAP §2.5.5.2.1).
use nbdgm_rap::{SV_TYPE_ALL, SV_TYPE_DOMAIN_ENUM, SV_TYPE_LOCAL_LIST_ONLY};
use std::collections::HashSet;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Deadline of one HTTP request or RAP exchange.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of JSON read from a peer's HTTP endpoint (its answers stay under 1 MiB of
/// servers per interface).
pub const MAX_HTTP_BODY: u64 = 4 << 20;
/// Entries taken from one RAP answer.
pub const MAX_RAP_ENTRIES: usize = 10_000;

/// A peer's list: servers, workgroups, and how it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedList {
    pub servers: Vec<Listed>,
    pub workgroups: Vec<Listed>,
    /// `"http"` or `"rap"`.
    pub via: &'static str,
}

/// A finished sync, for the worker.
#[derive(Debug)]
pub struct SyncDone {
    pub kind: SyncKind,
    pub peer: String,
    /// The list, or why neither way gave it (both errors when HTTP was tried).
    pub result: Result<SyncedList, String>,
}

/// Pull `peer`'s list at `address`: HTTP on `http_port` first when it is not 0, then
/// RAP. `me` makes our NBSS calling name.
pub fn sync_list(
    me: Ipv4Addr,
    address: Ipv4Addr,
    peer: &str,
    workgroup: &str,
    kind: SyncKind,
    http_port: u16,
) -> Result<SyncedList, String> {
    let local = kind == SyncKind::FromLocalMaster;
    let mut why = String::new();
    if http_port != 0 {
        match fetch_http_list(address, http_port, workgroup, local) {
            Ok((servers, workgroups)) => {
                return Ok(SyncedList {
                    servers,
                    workgroups,
                    via: "http",
                })
            }
            Err(e) => why = format!("http: {e}; "),
        }
    }
    rap_list(me, address, peer, workgroup, local)
        .map(|(servers, workgroups)| SyncedList {
            servers,
            workgroups,
            via: "rap",
        })
        .map_err(|e| format!("{why}rap: {e}"))
}

/// RAP NetServerEnum2 as Samba asks: from the domain master browser every workgroup
/// (`SV_TYPE_DOMAIN_ENUM`) then our workgroup's servers (`SV_TYPE_ALL`); from a local
/// master browser only what it heard itself (`SV_TYPE_LOCAL_LIST_ONLY`, with
/// `SV_TYPE_DOMAIN_ENUM` for the workgroups).
pub fn rap_list(
    me: Ipv4Addr,
    address: Ipv4Addr,
    peer: &str,
    workgroup: &str,
    local: bool,
) -> Result<(Vec<Listed>, Vec<Listed>), nbdgm_rap::RapError> {
    use nbdgm_rap::{net_server_enum2, Options};
    let opts = Options {
        timeout: SYNC_TIMEOUT,
        max_entries: MAX_RAP_ENTRIES,
        client_name: format!("NBDGM{}", u32::from(me) & 0xFFFF),
    };
    let (groups_mask, servers_mask) = if local {
        (
            SV_TYPE_LOCAL_LIST_ONLY | SV_TYPE_DOMAIN_ENUM,
            SV_TYPE_LOCAL_LIST_ONLY,
        )
    } else {
        (SV_TYPE_DOMAIN_ENUM, SV_TYPE_ALL)
    };
    let conv = |v: Vec<nbdgm_rap::ServerInfo>| {
        v.into_iter()
            .map(|s| Listed {
                name: s.name,
                os_major: s.os_major,
                os_minor: s.os_minor,
                // Samba clears the bit on what it stores.
                server_type: s.server_type & !SV_TYPE_LOCAL_LIST_ONLY,
                comment: s.comment,
            })
            .collect::<Vec<_>>()
    };
    let groups = net_server_enum2(address, peer, workgroup, groups_mask, &opts)?;
    let servers = net_server_enum2(address, peer, workgroup, servers_mask, &opts)?;
    Ok((conv(servers), conv(groups)))
}

/// Pages of one HTTP pull at most (each answer holds up to 1 MiB of servers).
pub const MAX_HTTP_PAGES: usize = 16;

/// `GET http://ADDRESS:PORT/api/browse?workgroup=WG[&local=true]` from a peer running
/// nbdgm: its servers of `workgroup` and its workgroups (every interface's, each name
/// once), each request within [`SYNC_TIMEOUT`], all pages together within
/// [`MAX_HTTP_BODY`] and [`MAX_HTTP_PAGES`]. A list longer than one answer is paged
/// with `offset` (the peer caps an answer at 1 MiB of servers and says `servers_total`).
pub fn fetch_http_list(
    address: Ipv4Addr,
    port: u16,
    workgroup: &str,
    local: bool,
) -> Result<(Vec<Listed>, Vec<Listed>), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(SYNC_TIMEOUT)
        .redirects(0)
        .build();
    let mut acc = Listing::default();
    let mut budget = MAX_HTTP_BODY;
    let mut offset = 0usize;
    for _ in 0..MAX_HTTP_PAGES {
        let mut req = agent
            .get(&format!("http://{address}:{port}/api/browse"))
            .query("workgroup", workgroup);
        if local {
            req = req.query("local", "true");
        }
        if offset > 0 {
            req = req.query("offset", &offset.to_string());
        }
        let resp = req.call().map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        resp.into_reader()
            .take(budget + 1)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        if body.len() as u64 > budget {
            return Err(format!("answer over {MAX_HTTP_BODY} bytes"));
        }
        budget -= body.len() as u64;
        let r: BrowseResult = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        // The next page starts where the shortest unfinished interface stopped.
        let next = r
            .interfaces
            .iter()
            .filter(|i| i.offset + i.servers.len() < i.servers_total)
            .map(|i| i.offset + i.servers.len())
            .min();
        acc.add(r, workgroup);
        match next {
            Some(n) if n > offset => offset = n,
            _ => return Ok((acc.servers, acc.groups)),
        }
    }
    Ok((acc.servers, acc.groups))
}

/// Servers and workgroups gathered from a peer's answers, each name once.
#[derive(Default)]
struct Listing {
    servers: Vec<Listed>,
    groups: Vec<Listed>,
    seen_servers: HashSet<String>,
    seen_groups: HashSet<String>,
}

impl Listing {
    fn add(&mut self, r: BrowseResult, workgroup: &str) {
        let os = |v: &str| {
            let (a, b) = v.split_once('.').unwrap_or((v, "0"));
            (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
        };
        for i in r.interfaces {
            for s in i.servers {
                if !s.workgroup.eq_ignore_ascii_case(workgroup)
                    || !self.seen_servers.insert(s.name.to_ascii_uppercase())
                {
                    continue;
                }
                let (os_major, os_minor) = os(&s.os_version);
                self.servers.push(Listed {
                    name: s.name,
                    os_major,
                    os_minor,
                    server_type: s.server_type,
                    comment: s.comment,
                });
            }
            for w in i.workgroups {
                if !self.seen_groups.insert(w.name.to_ascii_uppercase()) {
                    continue;
                }
                let (os_major, os_minor) = os(&w.os_version);
                self.groups.push(Listed {
                    name: w.name,
                    os_major,
                    os_minor,
                    server_type: w.server_type,
                    // NetServerEnum2 level 1 carries a workgroup's master in the comment.
                    comment: w.master,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
