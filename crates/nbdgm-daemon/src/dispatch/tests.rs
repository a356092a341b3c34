//! The router and its handlers against a fake interface worker: the response
//! lines are the ones the protocol documents, byte for byte.

use super::*;
use nbdgm_api::{
    CacheEntry, CacheResult, RegisterArgs, RegisterResult, SendArgs, SendMode as ApiSendMode,
    SendResult,
};
use serde_json::json;
use std::sync::Mutex;

/// A worker that answers every command from a canned list and records them.
fn fake_worker(
    seen: Arc<Mutex<Vec<&'static str>>>,
    fail_register: bool,
) -> (WorkerHandle, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Command>(8);
    let task = tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            let what = match cmd {
                Command::Register { reply, .. } if fail_register => {
                    let e = CmdError::new("conflict", "APP<03>: owned by 192.0.2.9");
                    let _ = reply.send(Err(e));
                    "register"
                }
                Command::Register { name, group, reply } => {
                    let _ = reply.send(Ok(RegisterResult {
                        name: name.to_string(),
                        group,
                        state: nbdgm_api::NameState::Registered,
                    }));
                    "register"
                }
                Command::Release { name, reply } => {
                    let _ = reply.send(Ok(crate::worker::Released::new(&name)));
                    "release"
                }
                Command::Send { request, reply, .. } => {
                    let _ = reply.send(Ok(SendResult {
                        to: "192.0.2.255:138".parse().unwrap(),
                        fragments: 1,
                        bytes: request.data.len(),
                    }));
                    "send"
                }
                Command::Stats { reply } => {
                    let _ = reply.send(Ok(crate::worker::InterfaceStats {
                        interface: Ipv4Addr::new(192, 0, 2, 1),
                        browser: None,
                        messenger: Default::default(),
                        roles: Value::Null,
                        node: Default::default(),
                        runtime: Default::default(),
                        rate_limit_rx: Default::default(),
                        rate_limit_reply: Default::default(),
                        reply_gate: Default::default(),
                        logs_suppressed: 7,
                    }));
                    "stats"
                }
                Command::Cache { reply } => {
                    let _ = reply.send(Ok(CacheResult {
                        entries: vec![CacheEntry {
                            name: "X<00>".into(),
                            addresses: vec![],
                            ttl: 60,
                        }],
                    }));
                    "cache"
                }
                _ => continue,
            };
            seen.lock().unwrap().push(what);
        }
    });
    let w = WorkerHandle {
        interface: Ipv4Addr::new(192, 0, 2, 1),
        prefix: 24,
        broadcast: Ipv4Addr::new(192, 0, 2, 255),
        tx,
    };
    (w, task)
}

fn dispatcher(w: WorkerHandle) -> Dispatcher {
    let identity = Identity {
        node_name: "NODE<00>".parse().unwrap(),
        scope: String::new(),
        reserved: vec!["NODE<00>".parse().unwrap()],
    };
    Dispatcher::new(vec![w], identity, Arc::new(|| json!({"clients": 0})))
}

fn client(id: u64) -> ClientInfo {
    ClientInfo {
        id,
        pid: None,
        uid: None,
        gid: None,
        peer: format!("unix:pid={id}"),
    }
}

async fn answer(d: &mut Dispatcher, c: &ClientInfo, id: u64, op: Op) -> String {
    let r = match d.route(c, id, op) {
        Routed::Now(r) => r,
        Routed::Later(f) => f.await,
    };
    serde_json::to_string(&r).unwrap()
}

fn send_args(destination: &str, mode: ApiSendMode) -> SendArgs {
    SendArgs::new(destination, mode, b"hi")
}

#[tokio::test]
async fn handlers_answer_as_documented() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (w, _task) = fake_worker(seen.clone(), false);
    let mut d = dispatcher(w);
    let a = client(1);

    let hello = answer(&mut d, &a, 1, Op::Hello { client: None }).await;
    assert!(hello.starts_with(r#"{"id":1,"ok":true,"result":{"interfaces":[{"address":"192.0.2.1","broadcast":"192.0.2.255","prefix_len":24}],"protocol":1,"server":"nbdgm","version":""#), "{hello}");

    let reg = Op::Register(RegisterArgs {
        name: "app<03>".into(),
        group: false,
        persistent: false,
    });
    assert_eq!(
        answer(&mut d, &a, 2, reg).await,
        r#"{"id":2,"ok":true,"result":{"group":false,"name":"APP<03>","state":"registered"}}"#
    );
    let sent = Op::Send(send_args("*", ApiSendMode::Broadcast));
    assert_eq!(
        answer(&mut d, &a, 3, sent).await,
        r#"{"id":3,"ok":true,"result":{"bytes":2,"fragments":1,"to":"192.0.2.255:138"}}"#
    );
    assert_eq!(
        answer(&mut d, &a, 4, Op::Cache).await,
        r#"{"id":4,"ok":true,"result":{"entries":[{"addresses":[],"name":"X<00>","ttl":60}]}}"#
    );
    let stats = answer(&mut d, &a, 5, Op::Stats).await;
    assert!(
        stats.starts_with(r#"{"id":5,"ok":true,"result":{"api":{"clients":0,"names":{"#),
        "{stats}"
    );
    assert!(
        stats.contains(
            r#""interfaces":[{"browser":null,"interface":"192.0.2.1","logs_suppressed":7,"#
        ),
        "{stats}"
    );
    assert!(stats.ends_with(r#"}}],"uptime_s":0}}"#), "{stats}");
    let rel = Op::Release {
        name: "APP<03>".into(),
    };
    assert_eq!(
        answer(&mut d, &a, 6, rel).await,
        r#"{"id":6,"ok":true,"result":{"name":"APP<03>","state":"released"}}"#
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["register", "send", "cache", "stats", "release"]
    );
}

#[tokio::test]
async fn errors_are_answered_now_with_their_code() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (w, _task) = fake_worker(seen.clone(), false);
    let mut d = dispatcher(w);
    let a = client(1);
    let cases: Vec<(Op, &str)> = vec![
        (
            Op::Release {
                name: "bad*name<zz>".into(),
            },
            "bad_request",
        ),
        (
            Op::Release {
                name: "APP<03>".into(),
            },
            "not_found",
        ),
        (
            Op::Register(RegisterArgs {
                name: "NODE<00>".into(),
                group: false,
                persistent: false,
            }),
            "denied",
        ),
        (Op::Subscribe(Default::default()), "internal"),
        (
            Op::Send({
                let mut s = send_args("X<00>", ApiSendMode::Broadcast);
                s.address = Some("192.0.2.7".parse().unwrap());
                s
            }),
            "bad_request",
        ),
        (
            Op::Send({
                let mut s = send_args("X<00>", ApiSendMode::Unique);
                s.address = Some("2001:db8::1".parse().unwrap());
                s
            }),
            "bad_request",
        ),
        (
            Op::Send({
                let mut s = send_args("X<00>", ApiSendMode::Unique);
                s.data_text = Some("both".into());
                s
            }),
            "bad_request",
        ),
        (
            Op::Lookup {
                name: "X<00>".into(),
                server: Some("2001:db8::1".parse().unwrap()),
            },
            "bad_request",
        ),
        (
            Op::Status {
                address: "2001:db8::1".parse().unwrap(),
                name: None,
            },
            "bad_request",
        ),
    ];
    for (i, (op, code)) in cases.into_iter().enumerate() {
        let name = op.name();
        match d.route(&a, i as u64, op) {
            Routed::Now(r) => {
                let line = serde_json::to_string(&r).unwrap();
                assert!(
                    line.starts_with(&format!(
                        r#"{{"id":{i},"ok":false,"error":{{"code":"{code}","message":"#
                    )),
                    "{name}: {line}"
                );
            }
            Routed::Later(_) => panic!("{name}: an error must be answered at once"),
        }
    }
    assert!(seen.lock().unwrap().is_empty(), "no worker was asked");
}

#[tokio::test]
async fn refused_register_drops_the_claim() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (w, _task) = fake_worker(seen, true);
    let mut d = dispatcher(w);
    let (a, b) = (client(1), client(2));
    let reg = || {
        Op::Register(RegisterArgs {
            name: "APP<03>".into(),
            group: false,
            persistent: false,
        })
    };
    assert_eq!(
        answer(&mut d, &a, 1, reg()).await,
        r#"{"id":1,"ok":false,"error":{"code":"conflict","message":"APP<03>: owned by 192.0.2.9"}}"#
    );
    // The claim went with the refusal: another client may try the name.
    let again = answer(&mut d, &b, 2, reg()).await;
    assert!(again.contains(r#""code":"conflict""#), "{again}");
    assert_eq!(d.owners().owner(&"APP<03>".parse().unwrap()), None);
}
