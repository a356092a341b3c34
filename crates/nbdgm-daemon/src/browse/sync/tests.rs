//! The HTTP side of list syncs on loopback: the daemon's `/api/browse` endpoint (the
//! real router and server, over a worker stand-in that answers `browse` from a fixed
//! list through the worker's own conversion) with and without `local=true`, and
//! [`fetch_http_list`] reading it; an oversized answer is refused.

use super::*;
use crate::dispatch::WorkerHandle;
use crate::worker::Command;
use nbdgm_browser::{BrowseList, Role, ServerEntry, WorkgroupEntry};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

fn server(name: &str, synced_from: Option<&str>) -> ServerEntry {
    ServerEntry {
        name: name.into(),
        workgroup: "WG".into(),
        server_type: 0x0000_1003,
        os_major: 6,
        os_minor: 1,
        comment: format!("{name} comment"),
        periodicity_ms: 720_000,
        address: Ipv4Addr::new(127, 0, 0, 9),
        age_s: 1,
        expires_in_s: 100,
        lanman: false,
        local: false,
        synced_from: synced_from.map(str::to_owned),
    }
}

fn workgroup(name: &str, synced_from: Option<&str>) -> WorkgroupEntry {
    WorkgroupEntry {
        name: name.into(),
        master: format!("{name}MASTER"),
        server_type: 0x8000_1003,
        os_major: 10,
        os_minor: 0,
        periodicity_ms: 720_000,
        address: Ipv4Addr::new(127, 0, 0, 9),
        age_s: 1,
        expires_in_s: 100,
        local: false,
        synced_from: synced_from.map(str::to_owned),
    }
}

/// Heard here: HEARD and OTHERWG's HEARD2, workgroups WG and FAR; synced from the
/// domain master browser DMB: FARSERVER and the workgroup FAR2.
fn list() -> BrowseList {
    let mut other = server("HEARD2", None);
    other.workgroup = "OTHERWG".into();
    BrowseList {
        workgroup: "WG".into(),
        role: Role::Master,
        master: Some("ME".into()),
        master_address: None,
        backups: vec![],
        servers: vec![
            server("FARSERVER", Some("DMB")),
            server("HEARD", None),
            other,
        ],
        workgroups: vec![
            workgroup("FAR", None),
            workgroup("FAR2", Some("DMB")),
            workgroup("WG", None),
        ],
        domain_master: Some("DMB".into()),
        domain_master_address: Some(Ipv4Addr::new(127, 0, 0, 7)),
        local_masters: vec![],
    }
}

/// The browse HTTP endpoint on 127.0.0.1 over a worker stand-in; its port.
fn endpoint(rt: &tokio::runtime::Runtime) -> u16 {
    endpoint_over(rt, list)
}

/// The endpoint over the list `make` builds.
fn endpoint_over(rt: &tokio::runtime::Runtime, make: fn() -> BrowseList) -> u16 {
    let lo = Ipv4Addr::LOCALHOST;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    rt.spawn(async move {
        while let Some(cmd) = rx.recv().await {
            if let Command::Browse {
                workgroup,
                page,
                budget,
                local,
                reply,
            } = cmd
            {
                let i = crate::browse::browse_interface(
                    lo,
                    lo,
                    make(),
                    workgroup.as_deref(),
                    page,
                    budget,
                    local,
                );
                let _ = reply.send(Ok(Some(i)));
            }
        }
    });
    let handle = WorkerHandle {
        interface: lo,
        prefix: 8,
        broadcast: Ipv4Addr::new(127, 255, 255, 255),
        tx,
    };
    let listener = rt.block_on(tokio::net::TcpListener::bind((lo, 0))).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    rt.spawn(nbdgm_http::serve(
        listener,
        crate::browse::http::router(Arc::new(vec![handle])),
        nbdgm_http::ConnLimiter::new(nbdgm_http::Limits::default()),
        nbdgm_http::HostCheck::new(addr, &[]),
        "test",
        std::future::pending(),
    ));
    addr.port()
}

fn names(v: &[Listed]) -> Vec<&str> {
    v.iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn http_list_fetch_and_the_local_filter() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let port = endpoint(&rt);
    let lo = Ipv4Addr::LOCALHOST;
    // Everything: our workgroup's servers (OTHERWG's left out), every workgroup.
    let (servers, groups) = fetch_http_list(lo, port, "wg", false).unwrap();
    assert_eq!(names(&servers), ["FARSERVER", "HEARD"]);
    assert_eq!(names(&groups), ["FAR", "FAR2", "WG"]);
    let heard = &servers[1];
    assert_eq!(
        (heard.os_major, heard.os_minor, heard.server_type),
        (6, 1, 0x1003)
    );
    assert_eq!(heard.comment, "HEARD comment");
    // A workgroup's comment is its master's name (as NetServerEnum2 level 1 has it).
    assert_eq!(groups[0].comment, "FARMASTER");
    assert_eq!((groups[0].os_major, groups[0].os_minor), (10, 0));
    // local=true: nothing synced from another browser.
    let (servers, groups) = fetch_http_list(lo, port, "WG", true).unwrap();
    assert_eq!(names(&servers), ["HEARD"]);
    assert_eq!(names(&groups), ["FAR", "WG"]);
    // The whole sync goes by HTTP when the port is given.
    let got = sync_list(lo, lo, "PEER", "WG", SyncKind::FromLocalMaster, port).unwrap();
    assert_eq!((got.via, names(&got.servers)), ("http", vec!["HEARD"]));
}

/// 6,000 servers with 42-character comments: over the endpoint's 1 MiB a page.
fn long_list() -> BrowseList {
    let mut l = list();
    l.servers = (0..6000)
        .map(|i| {
            let mut s = server(&format!("S{i:05}"), None);
            s.comment = "c".repeat(42);
            s
        })
        .collect();
    l
}

/// A list longer than one answer comes in pages (`offset`), every server once.
#[test]
fn http_list_fetch_pages_a_long_list() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let port = endpoint_over(&rt, long_list);
    let lo = Ipv4Addr::LOCALHOST;
    // One answer does not hold them all (the test would not test paging otherwise).
    let first: nbdgm_api::BrowseResult = serde_json::from_str(
        &ureq::get(&format!("http://127.0.0.1:{port}/api/browse"))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert!(first.interfaces[0].servers.len() < 6000);
    let (servers, _) = fetch_http_list(lo, port, "WG", false).unwrap();
    assert_eq!(servers.len(), 6000);
    let mut n: Vec<&str> = names(&servers);
    n.dedup();
    assert_eq!(n.len(), 6000, "each server once");
}

/// The JSON of `local=true` through the HTTP endpoint: `synced_from` and the domain
/// master fields are shown; filtered entries are absent.
#[test]
fn http_local_filter_in_the_json() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let port = endpoint(&rt);
    let get = |q: &str| -> serde_json::Value {
        let body = ureq::get(&format!("http://127.0.0.1:{port}/api/browse{q}"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    };
    let all = get("");
    let i = &all["interfaces"][0];
    assert_eq!(i["domain_master"], "DMB");
    assert_eq!(i["domain_master_address"], "127.0.0.7");
    assert!(i.get("local_masters").is_none(), "empty: skipped");
    assert_eq!(i["servers"][0]["synced_from"], "DMB");
    assert!(i["servers"][1].get("synced_from").is_none());
    assert_eq!(i["workgroups"][1]["synced_from"], "DMB");
    assert_eq!(i["servers_total"], 3);
    let local = get("?local=true");
    let i = &local["interfaces"][0];
    assert_eq!(i["servers_total"], 2);
    let s: Vec<_> = i["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(s, ["HEARD", "HEARD2"]);
    let w = i["workgroups"].as_array().unwrap();
    assert!(w.iter().all(|w| w.get("synced_from").is_none()), "{w:?}");
    assert_eq!(w.len(), 2);
}

/// A peer whose answer is larger than [`MAX_HTTP_BODY`] is refused once that much is
/// read; a closed port fails too.
#[test]
fn oversized_or_absent_http_answers_fail() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = std::io::Read::read(&mut s, &mut buf);
        let len = MAX_HTTP_BODY + 1024;
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        );
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0u64;
        while sent < len {
            if s.write_all(&chunk).is_err() {
                break; // the client stopped reading
            }
            sent += chunk.len() as u64;
        }
    });
    let e = fetch_http_list(Ipv4Addr::LOCALHOST, port, "WG", false).unwrap_err();
    assert!(e.contains("over"), "{e}");
    peer.join().unwrap();
    // Nobody listens there any more.
    assert!(fetch_http_list(Ipv4Addr::LOCALHOST, port, "WG", false).is_err());
}
