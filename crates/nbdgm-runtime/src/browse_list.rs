//! A browser's list as the API and `nbdgm browse` show it (MS-BRWS §3.3.1: servers and
//! workgroups; the types by their SV_TYPE names, MS-RAP §2.5.5.2.1), optionally paged
//! and capped in bytes of JSON.

use nbdgm_api::{BrowseInterface, BrowseLocalMaster, BrowseServer, BrowseWorkgroup};
use nbdgm_browser::BrowseList;
use nbdgm_wire::browser::server_type_names;
use serde::Serialize;
use std::net::Ipv4Addr;

fn os(major: u8, minor: u8) -> String {
    format!("{major}.{minor}")
}

fn type_names(bits: u32) -> Vec<String> {
    server_type_names(bits)
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Bytes `v` takes as serde_json writes it (the API and HTTP write the same way).
fn json_len<T: Serialize>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Only what the browser heard on its own subnet (the API's and HTTP's `local`, what a
/// NetServerEnum2 with SV_TYPE_LOCAL_LIST_ONLY gets): entries synced from another
/// browser are left out.
pub fn local_only(mut l: BrowseList) -> BrowseList {
    l.servers.retain(|s| s.synced_from.is_none());
    l.workgroups.retain(|w| w.synced_from.is_none());
    l
}

/// The API's view of one interface's list; `workgroup` keeps only that workgroup's
/// servers (case-insensitive). `own` is the address we announce (the engine does not
/// know it): it fills our own entries and, as master, the master's address.
pub fn to_proto(
    interface: Ipv4Addr,
    own: Ipv4Addr,
    l: BrowseList,
    workgroup: Option<&str>,
    page: Option<(usize, usize)>,
) -> BrowseInterface {
    to_proto_capped(interface, own, l, workgroup, page, usize::MAX)
}

/// [`to_proto`] whose JSON stays within `budget` bytes: servers from the page's offset
/// are added while the interface's JSON fits, always at least one (so that paging
/// moves on), so the page may end before its `limit`; `servers_total` and `offset`
/// say where it stands. Only an interface whose workgroups alone exceed the budget,
/// plus that one server, is larger.
pub fn to_proto_capped(
    interface: Ipv4Addr,
    own: Ipv4Addr,
    l: BrowseList,
    workgroup: Option<&str>,
    page: Option<(usize, usize)>,
    budget: usize,
) -> BrowseInterface {
    let servers: Vec<_> = l
        .servers
        .into_iter()
        .filter(|s| workgroup.is_none_or(|w| s.workgroup.eq_ignore_ascii_case(w)))
        .collect();
    let servers_total = servers.len();
    let (offset, limit) = page.unwrap_or((0, usize::MAX));
    let master_address = match l.master_address {
        None if l.role == nbdgm_browser::Role::Master => Some(own),
        a => a,
    };
    let fill = |local: bool, a: Ipv4Addr| if local && a.is_unspecified() { own } else { a };
    let mut out = BrowseInterface {
        interface: interface.into(),
        workgroup: l.workgroup,
        role: l.role.as_str().to_owned(),
        master: l.master,
        master_address: master_address.map(Into::into),
        backups: l.backups,
        servers_total,
        offset,
        servers: Vec::new(),
        domain_master: l.domain_master,
        domain_master_address: l.domain_master_address.map(Into::into),
        local_masters: l
            .local_masters
            .into_iter()
            .map(|m| BrowseLocalMaster {
                name: m.name,
                workgroup: m.workgroup,
                address: m.address.into(),
                age_s: m.age_s,
                expires_in_s: m.expires_in_s,
                syncs: m.syncs,
                last_entries: m.last_entries,
            })
            .collect(),
        workgroups: l
            .workgroups
            .into_iter()
            .map(|w| BrowseWorkgroup {
                types: type_names(w.server_type),
                os_version: os(w.os_major, w.os_minor),
                name: w.name,
                master: w.master,
                server_type: w.server_type,
                periodicity_ms: w.periodicity_ms,
                address: fill(w.local, w.address).into(),
                age_s: w.age_s,
                expires_in_s: w.expires_in_s,
                local: w.local,
                synced_from: w.synced_from,
            })
            .collect(),
    };
    if budget == usize::MAX {
        // No cap (the standalone tool): skip the measuring.
        out.servers = servers
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|s| {
                let address = fill(s.local, s.address);
                server(s, address)
            })
            .collect();
        return out;
    }
    let mut used = json_len(&out);
    for s in servers.into_iter().skip(offset).take(limit) {
        let address = fill(s.local, s.address);
        let entry = server(s, address);
        let n = json_len(&entry) + 1; // and the comma
        if !out.servers.is_empty() && used.saturating_add(n) > budget {
            break;
        }
        used += n;
        out.servers.push(entry);
    }
    out
}

fn server(s: nbdgm_browser::ServerEntry, address: Ipv4Addr) -> BrowseServer {
    BrowseServer {
        types: type_names(s.server_type),
        os_version: os(s.os_major, s.os_minor),
        name: s.name,
        workgroup: s.workgroup,
        server_type: s.server_type,
        comment: s.comment,
        periodicity_ms: s.periodicity_ms,
        address: address.into(),
        age_s: s.age_s,
        expires_in_s: s.expires_in_s,
        lanman: s.lanman,
        local: s.local,
        synced_from: s.synced_from,
    }
}
