use super::conn::{next_line, request_lines, ReadLine};
use super::hub::{validate_subscription, DatagramOut, Hub, HubStats};
use super::listener::{bind, read_token_file};
use super::*;
use nbdgm_api::{
    self as proto, DatagramEvent, Event, EventEncoding, HelloResult, NameEvent, NameState, Op,
    RegisterResult, ServerMsg, Subscription, MAX_LINE,
};
use nbdgm_client::{Client, Error as ClientError};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as smpsc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

const T: Duration = Duration::from_secs(5);

/// Names as the wire may carry them: escapes in JSON (`"`, `\\`), octets printed as
/// `<xx>`, the wildcard, lower case, NUL padding, a scope.
fn odd_names() -> Vec<nbdgm_node::Name> {
    let raw = |b: &[u8], suffix: u8| {
        let mut r = [b' '; 16];
        r[..b.len()].copy_from_slice(b);
        r[15] = suffix;
        nbdgm_node::Name::from_raw(r)
    };
    vec![
        "SAMBAA<00>".parse().unwrap(),
        raw(b"ODD\"NAME\\\xe9", 0x1d)
            .with_scope("scope.example")
            .unwrap(),
        nbdgm_node::Name::wildcard(),
        nbdgm_node::Name::msbrowse(),
        raw(b"lower", 0x20),
        raw(b"*\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 0x20),
        raw(b"*", 0x1b),
        raw(b"", 0x00),
        raw(b"A<01>", 0x00),
        raw(b"\x1b[2J\x7f", 0x03),
    ]
}

/// The hand-written line of the hot path says exactly what serde says for the
/// same event (names that print `<xx>` or need escaping, an empty payload).
#[test]
fn datagram_line_equals_serde() {
    let slots = [
        Some("\\MAILSLOT\\BROWSE"),
        None,
        Some("\\MAILSLOT\\x\u{1}\u{e9}"),
    ];
    let payloads: [&[u8]; 3] = [b"\x01\x00\xff", b"", &[0u8; 300]];
    for (k, name) in odd_names().into_iter().enumerate() {
        let from: SocketAddrV4 = "198.51.100.20:138".parse().unwrap();
        let delivery = nbdgm_node::Delivery {
            from,
            header_source: "203.0.113.7:40000".parse().unwrap(),
            msg_type: nbdgm_node::MsgType::DirectGroup,
            source: name.clone(),
            destination: name.clone(),
            broadcast: true,
            for_us: false,
            fragments: 4_000_000_000,
            fragment_layout: nbdgm_node::FragmentLayout::Unfragmented,
            data: payloads[k % 3].to_vec().into(),
            mailslot: slots[k % 3].map(String::from),
            mailslot_data: None,
            local_copy: None,
        };
        let d = Dgram {
            interface: Ipv4Addr::new(198, 51, 100, 10),
            to: "198.51.100.255:138".parse().unwrap(),
            delivery,
        };
        let ev = Event::Datagram(d.event());
        let line = d.out().line();
        assert_eq!(line.last(), Some(&b'\n'));
        let ours: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(ours, serde_json::to_value(&ev).unwrap(), "{name:?}");
        match proto::parse_server_line(&line[..line.len() - 1]).unwrap() {
            ServerMsg::Event(back) => assert_eq!(back, ev),
            other => panic!("{other:?}"),
        }
        // base64: the same line but for the data field, which parses back to the bytes.
        let mut b64 = Vec::new();
        d.out().write_line(EventEncoding::Base64, &mut b64);
        let hex_at = line
            .windows(11)
            .position(|w| w == b"\"data_hex\":")
            .unwrap();
        assert_eq!(b64[..hex_at], line[..hex_at]);
        assert!(b64[hex_at..].starts_with(b"\"data_b64\":\""));
        assert!(b64.ends_with(b"\"}\n"));
        let back = match proto::parse_server_line(&b64[..b64.len() - 1]).unwrap() {
            ServerMsg::Event(Event::Datagram(back)) => back,
            other => panic!("{other:?}"),
        };
        assert_eq!(back, d.event_in(EventEncoding::Base64));
        assert_eq!(back.data().unwrap(), &d.delivery.data[..]);
        assert_eq!(d.event().data().unwrap(), &d.delivery.data[..]);
    }
}

/// The hand-written address writers print what `Display` prints, at the edges of
/// each octet's width (0, 9, 10, 99, 100, 255) and of the port's (0 … 65535).
#[test]
fn address_writers_agree_with_std() {
    let octets = [0u8, 1, 9, 10, 11, 99, 100, 101, 199, 200, 254, 255];
    let ports = [
        0u16, 1, 9, 10, 99, 100, 137, 138, 999, 1000, 9999, 10000, 65535,
    ];
    for (i, &a) in octets.iter().enumerate() {
        for &b in &octets {
            let ip = Ipv4Addr::new(a, b, octets[(i + 3) % octets.len()], 255 - a);
            let mut out = b"x".to_vec();
            super::hub::push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
            for &p in &ports {
                let sa = SocketAddrV4::new(ip, p);
                let mut out = Vec::new();
                super::hub::push_addr(&mut out, sa);
                assert_eq!(out, sa.to_string().into_bytes());
            }
        }
    }
    for v in [0u32, 7, 10, 99, 100, 65535, 4_000_000_000, u32::MAX] {
        let mut out = Vec::new();
        super::hub::push_u32(&mut out, v);
        assert_eq!(out, v.to_string().into_bytes());
    }
}

/// The hub's table-driven hex writes the bytes of the API crate's encoder, for every
/// octet value and for empty data; base64 is the API crate's own.
#[test]
fn data_writer_agrees_with_the_api_encoder() {
    let all: Vec<u8> = (0..=255u8).rev().collect();
    for data in [&all[..], &b""[..], &b"\x00"[..], &[0xffu8; 1000][..]] {
        for enc in EventEncoding::ALL {
            let (mut ours, mut theirs) = (b"{\"".to_vec(), b"{\"".to_vec());
            super::hub::push_data(&mut ours, enc, data);
            enc.push_data(&mut theirs, data);
            assert_eq!(ours, theirs, "{enc:?}");
        }
    }
}

/// The typed matching rule agrees with the one it replaced: the filter and the
/// destination both printed and read back as names, compared as `NAME<xx>` text, and
/// `*<` at the start of the printed destination counting as ours.
#[test]
fn typed_matching_agrees_with_printed_names() {
    let canonical = |s: &str| s.parse::<nbdgm_node::Name>().ok().map(|n| n.to_string());
    let filters = [
        "SAMBAA<00>",
        "sambaa",
        "LOWER<20>",
        "*<00>",
        "*<20>",
        "ODD<1d>.scope.example",
        "A<00>",
        "\u{1b}[2J\u{7f}<03>",
    ];
    for dest in odd_names() {
        let printed = dest.to_string();
        let old_dest = canonical(&printed).unwrap_or(printed.clone());
        assert_eq!(
            super::hub::addressed_to_star(&dest),
            old_dest.starts_with("*<"),
            "{printed}"
        );
        for f in filters {
            let filter: nbdgm_node::Name = f.parse().unwrap();
            let old = canonical(f).as_deref() == Some(old_dest.as_str());
            assert_eq!(
                super::hub::same_name(&filter, &dest),
                old,
                "{f} vs {printed}"
            );
        }
    }
}

fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "nbdgm-api-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The API server on its own runtime, with a fake runtime answering requests.
struct TestDaemon {
    dir: PathBuf,
    path: PathBuf,
    tcp: Option<SocketAddr>,
    hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    disconnected: smpsc::Receiver<u64>,
    server: Option<tokio::task::JoinHandle<io::Result<()>>>,
    rt: tokio::runtime::Runtime,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A fake runtime: hello, register, stats; `release` of `GONE<00>` is not
/// found; `lookup` of `DROP<00>` drops the reply; `names` echoes the client id.
async fn fake_runtime(mut rx: mpsc::Receiver<ApiMsg>, hub: Arc<Hub>, disc: smpsc::Sender<u64>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            ApiMsg::Disconnected { client } => {
                let _ = disc.send(client.id);
            }
            ApiMsg::Request {
                client,
                request,
                reply,
            } => {
                let id = request.id;
                let resp = match request.op {
                    Op::Hello { .. } => Response::ok(
                        id,
                        &HelloResult {
                            server: "nbdgm".into(),
                            version: "test".into(),
                            protocol: proto::PROTOCOL_VERSION,
                            interfaces: vec![],
                        },
                    ),
                    Op::Register(a) => Response::ok(
                        id,
                        &RegisterResult {
                            name: a.name,
                            group: a.group,
                            state: NameState::Registered,
                        },
                    ),
                    Op::Release { name } if name == "GONE<00>" => {
                        Response::err(Some(id), ErrorCode::NotFound, "no such name")
                    }
                    Op::Lookup { name, .. } if name == "DROP<00>" => {
                        drop(reply);
                        continue;
                    }
                    Op::Names => Response::ok(
                        id,
                        &serde_json::json!({"client": client.id, "uid": client.uid}),
                    ),
                    Op::Stats => Response::ok(id, &hub.stats()),
                    _ => Response::err(Some(id), ErrorCode::Unsupported, "not in the fake"),
                };
                // A wrong id from the runtime is corrected by the API layer.
                let mut resp = resp;
                resp.id = Some(12345);
                let _ = reply.send(resp);
            }
        }
    }
}

impl TestDaemon {
    fn start(tweak: impl FnOnce(&mut ApiConfig)) -> TestDaemon {
        let dir = temp_dir();
        let path = dir.join("api.sock");
        let mut config = ApiConfig::new(&path);
        tweak(&mut config);
        Self::start_with(dir, config).unwrap()
    }

    fn start_with(dir: PathBuf, config: ApiConfig) -> io::Result<TestDaemon> {
        let rt = rt();
        let path = config.socket.clone();
        let hub = Arc::new(Hub::new());
        let (tx, rx) = mpsc::channel(16);
        let (sd_tx, sd_rx) = watch::channel(false);
        let (disc_tx, disc_rx) = smpsc::channel();
        let listener = bind(config)?;
        let tcp = listener.tcp_addr();
        let _enter = rt.enter();
        rt.spawn(fake_runtime(rx, hub.clone(), disc_tx));
        let server = rt.spawn(listener.run(hub.clone(), tx, sd_rx));
        drop(_enter);
        Ok(TestDaemon {
            dir,
            path,
            tcp,
            hub,
            shutdown: sd_tx,
            disconnected: disc_rx,
            server: Some(server),
            rt,
        })
    }

    fn client(&self) -> Client {
        let mut c = Client::connect(&self.path).unwrap();
        c.set_timeout(T).unwrap();
        c
    }

    fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(s) = self.server.take() {
            self.rt.block_on(s).unwrap().unwrap();
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A delivery as the runtime publishes it (the one publish path), and the event a
/// subscriber should get for it.
#[derive(Debug)]
struct Dgram {
    interface: Ipv4Addr,
    to: SocketAddrV4,
    delivery: nbdgm_node::Delivery,
}

impl Dgram {
    fn out(&self) -> DatagramOut<'_> {
        DatagramOut {
            interface: self.interface,
            to: self.to,
            delivery: &self.delivery,
            except: None,
        }
    }

    fn event(&self) -> DatagramEvent {
        let d = &self.delivery;
        DatagramEvent {
            interface: IpAddr::V4(self.interface),
            from: SocketAddr::V4(d.from),
            to: Some(SocketAddr::V4(self.to)),
            header_source: SocketAddr::V4(d.header_source),
            msg_type: proto::DatagramType::from_wire(d.msg_type).unwrap(),
            source: d.source.to_string(),
            destination: d.destination.to_string(),
            broadcast: d.broadcast,
            for_us: d.for_us,
            fragments: d.fragments as u32,
            mailslot: d.mailslot.clone(),
            data_hex: nbdgm_wire::hex::encode(&d.data),
            data_b64: None,
        }
    }

    /// [`Dgram::event`] as a client that chose `encoding` gets it.
    fn event_in(&self, encoding: EventEncoding) -> DatagramEvent {
        let mut e = self.event();
        if encoding == EventEncoding::Base64 {
            let mut b = Vec::new();
            encoding.push_data(&mut b, &self.delivery.data);
            e.data_hex.clear();
            e.data_b64 = Some(String::from_utf8(b).unwrap());
        }
        e
    }
}

impl PartialEq<Dgram> for DatagramEvent {
    fn eq(&self, other: &Dgram) -> bool {
        *self == other.event()
    }
}

/// `dest` as a datagram's destination name: parsed, or (for odd names) its raw octets.
fn dest_name(dest: &str) -> nbdgm_node::Name {
    dest.parse().unwrap()
}

fn dgram(dest: &str, mailslot: Option<&str>, for_us: bool, data_hex: &str) -> Dgram {
    let data = nbdgm_wire::hex::decode(data_hex).unwrap();
    dgram_data(dest, mailslot, for_us, data)
}

/// [`dgram`] with the payload as bytes (large payloads: no hex decoding per event).
fn dgram_data(dest: &str, mailslot: Option<&str>, for_us: bool, data: Vec<u8>) -> Dgram {
    let from: SocketAddrV4 = "198.51.100.20:138".parse().unwrap();
    Dgram {
        interface: Ipv4Addr::new(198, 51, 100, 10),
        to: "198.51.100.255:138".parse().unwrap(),
        delivery: nbdgm_node::Delivery {
            from,
            header_source: from,
            msg_type: nbdgm_node::MsgType::DirectGroup,
            source: "SAMBAA<00>".parse().unwrap(),
            destination: dest_name(dest),
            broadcast: true,
            for_us,
            fragments: 1,
            fragment_layout: nbdgm_node::FragmentLayout::Unfragmented,
            data: data.into(),
            mailslot: mailslot.map(str::to_owned),
            mailslot_data: None,
            local_copy: None,
        },
    }
}

fn next_datagram(c: &mut Client) -> Option<DatagramEvent> {
    match c.next_event(Some(Duration::from_millis(300))).unwrap() {
        Some(Event::Datagram(d)) => Some(d),
        None => None,
        Some(other) => panic!("unexpected event {other:?}"),
    }
}

/// Wait until the hub has `n` subscriptions (subscribe is answered before the
/// test publishes, so this is only needed across clients).
fn subs(d: &TestDaemon) -> usize {
    d.hub.stats().subscriptions
}

#[test]
fn hello_register_and_runtime_errors() {
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    let h = c.hello().unwrap();
    assert_eq!(h.server, "nbdgm");
    assert_eq!(h.protocol, 1);
    let r = c.register("foo<20>", false).unwrap();
    assert_eq!(r.state, NameState::Registered);
    match c.release("GONE<00>") {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    match c.lookup("DROP<00>", None) {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Internal),
        other => panic!("{other:?}"),
    }
    let names: serde_json::Value = c.call(Op::Names).unwrap();
    assert_eq!(names["uid"], nix::unistd::getuid().as_raw());
    let stats: HubStats = serde_json::from_value(c.stats().unwrap()).unwrap();
    assert_eq!(stats.clients, 1);
    assert_eq!(stats.requests, 6);
    assert_eq!(stats.bad_requests, 0);
}

#[test]
fn latin1_mailslot_filter_accepted_and_matched() {
    // Mailslot names are Latin-1: U+009B is the octet 0x9b on the wire.
    let name = "\\MAILSLOT\\EV\x1b[2J\u{9b}\n";
    let ok = |m: &str| {
        validate_subscription(&Subscription {
            mailslot: Some(m.into()),
            ..Default::default()
        })
    };
    assert_eq!(ok(name), Ok(()));
    assert_eq!(ok(&"\u{ff}".repeat(255)), Ok(()));
    for bad in ["", "\\MAILSLOT\\\u{100}", "a\0b"] {
        assert_eq!(
            ok(bad).unwrap_err().to_string(),
            format!("bad mailslot name {bad:?}")
        );
    }
    assert!(ok(&"\u{ff}".repeat(256)).is_err());
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    c.subscribe(Subscription {
        mailslot: Some(name.into()),
        ..Default::default()
    })
    .unwrap();
    let ev = dgram("TESTGROUP<1d>", Some(name), true, "01");
    assert_eq!(d.hub.publish_datagram(&ev.out()), 1);
    let got = next_datagram(&mut c).unwrap();
    assert_eq!(got.mailslot.as_deref(), Some(name));
    assert_eq!(got, ev);
}

#[test]
fn subscribe_by_name_mailslot_and_all() {
    let d = TestDaemon::start(|_| {});
    let mut by_name = d.client();
    let mut by_slot = d.client();
    let mut all = d.client();
    let mut default = d.client();
    by_name
        .subscribe(Subscription {
            name: Some("testgroup<1d>".into()),
            ..Default::default()
        })
        .unwrap();
    by_slot
        .subscribe(Subscription {
            mailslot: Some("\\mailslot\\Browse".into()),
            ..Default::default()
        })
        .unwrap();
    all.subscribe(Subscription {
        all: true,
        ..Default::default()
    })
    .unwrap();
    default.subscribe(Subscription::default()).unwrap();
    assert_eq!(subs(&d), 4);

    // For us, to TESTGROUP<1d>, on \MAILSLOT\BROWSE: everybody.
    let ev = dgram("TESTGROUP<1d>", Some("\\MAILSLOT\\BROWSE"), true, "01");
    assert_eq!(d.hub.publish_datagram(&ev.out()), 4);
    for c in [&mut by_name, &mut by_slot, &mut all, &mut default] {
        assert_eq!(next_datagram(c).unwrap(), ev);
    }
    // Another name, other mailslot: default and all only.
    let ev2 = dgram("OTHER<00>", Some("\\MAILSLOT\\LANMAN"), true, "02");
    assert_eq!(d.hub.publish_datagram(&ev2.out()), 2);
    assert_eq!(next_datagram(&mut all).unwrap(), ev2);
    assert_eq!(next_datagram(&mut default).unwrap(), ev2);
    // Not for us: the promiscuous subscriber only.
    let ev3 = dgram("TESTGROUP<1d>", Some("\\MAILSLOT\\BROWSE"), false, "03");
    assert_eq!(d.hub.publish_datagram(&ev3.out()), 1);
    assert_eq!(next_datagram(&mut all).unwrap(), ev3);
    // `*` counts as ours even when the runtime did not say so.
    let ev4 = dgram("*<00>", None, false, "04");
    assert_eq!(d.hub.publish_datagram(&ev4.out()), 2);
    assert_eq!(next_datagram(&mut all).unwrap(), ev4);
    assert_eq!(next_datagram(&mut default).unwrap(), ev4);
    // Nothing else arrived anywhere.
    for c in [&mut by_name, &mut by_slot, &mut all, &mut default] {
        assert!(next_datagram(c).is_none());
    }
    // Name events go to clients with subscriptions.
    let ne = NameEvent {
        interface: "198.51.100.10".parse().unwrap(),
        name: "FOO<00>".into(),
        state: NameState::Conflict,
        by: Some("198.51.100.9".into()),
    };
    assert_eq!(d.hub.publish_name(&ne), 4);
    assert_eq!(by_name.next_event(Some(T)).unwrap(), Some(Event::Name(ne)));
    let st = d.hub.stats();
    assert_eq!(st.events_published, 5);
    assert_eq!(st.events_delivered, 13);
}

#[test]
fn unsubscribe_and_bad_subscriptions() {
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    let s1 = c.subscribe(Subscription::default()).unwrap();
    let s2 = c
        .subscribe(Subscription {
            all: true,
            ..Default::default()
        })
        .unwrap();
    assert_ne!(s1, s2);
    let ev = dgram("X<00>", None, true, "");
    // Two matching subscriptions, one event.
    assert_eq!(d.hub.publish_datagram(&ev.out()), 1);
    assert!(next_datagram(&mut c).is_some());
    assert!(next_datagram(&mut c).is_none());
    c.unsubscribe(s1).unwrap();
    c.unsubscribe(s2).unwrap();
    assert_eq!(d.hub.publish_datagram(&ev.out()), 0);
    assert!(next_datagram(&mut c).is_none());
    match c.unsubscribe(s1) {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    // Another client cannot end someone else's subscription.
    let s3 = c.subscribe(Subscription::default()).unwrap();
    let mut other = d.client();
    assert!(other.unsubscribe(s3).is_err());
    assert!(!d.hub.unsubscribe(999, s3));
    match c.subscribe(Subscription {
        name: Some("NAME-TOO-LONG-FOR-NETBIOS<00>".into()),
        ..Default::default()
    }) {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::BadRequest),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.hub.subscribe(999, Subscription::default()), 0);
    assert_eq!(subs(&d), 1);
}

#[test]
fn subscriptions_end_at_disconnect() {
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    c.subscribe(Subscription::default()).unwrap();
    c.subscribe(Subscription {
        all: true,
        ..Default::default()
    })
    .unwrap();
    let names: serde_json::Value = c.call(Op::Names).unwrap();
    let id = names["client"].as_u64().unwrap();
    assert_eq!(subs(&d), 2);
    drop(c);
    assert_eq!(d.disconnected.recv_timeout(T).unwrap(), id);
    assert_eq!(subs(&d), 0);
    wait_until("client count 0", || d.hub.stats().clients == 0);
    assert_eq!(
        d.hub
            .publish_datagram(&dgram("X<00>", None, true, "").out()),
        0
    );
}

#[test]
fn bad_json_keeps_the_connection() {
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    let expect_err = |c: &mut Client, line: &[u8], id: Option<u64>, code: ErrorCode| {
        c.send_raw_line(line).unwrap();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => {
                assert!(!r.ok);
                assert_eq!(r.id, id, "{}", String::from_utf8_lossy(line));
                assert_eq!(r.error.unwrap().code, code);
            }
            other => panic!("{other:?}"),
        }
    };
    expect_err(&mut c, b"{not json", None, ErrorCode::BadRequest);
    expect_err(&mut c, b"[1,2]", None, ErrorCode::BadRequest);
    expect_err(&mut c, br#"{"op":"hello"}"#, None, ErrorCode::BadRequest);
    expect_err(
        &mut c,
        br#"{"id":-1,"op":"hello"}"#,
        None,
        ErrorCode::BadRequest,
    );
    expect_err(&mut c, br#"{"id":5}"#, Some(5), ErrorCode::BadRequest);
    expect_err(
        &mut c,
        br#"{"id":6,"op":"fly"}"#,
        Some(6),
        ErrorCode::Unsupported,
    );
    expect_err(
        &mut c,
        br#"{"id":7,"op":"register"}"#,
        Some(7),
        ErrorCode::BadRequest,
    );
    expect_err(&mut c, b"\xff\xfe", None, ErrorCode::BadRequest);
    // Blank lines are ignored; the connection still works.
    c.send_raw_line(b"").unwrap();
    c.send_raw_line(b"  \r").unwrap();
    assert_eq!(c.hello().unwrap().server, "nbdgm");
    let st = d.hub.stats();
    assert_eq!(st.bad_requests, 8);
    assert_eq!(st.requests, 9);
}

#[test]
fn oversize_line_closes() {
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    let mut line = br#"{"id":1,"op":"hello","client":""#.to_vec();
    line.resize(MAX_LINE + 100, b'a');
    // The daemon may close before it has read everything we write.
    let _ = c.send_raw_line(&line);
    match c.read_raw(Some(T)) {
        Ok(Some(ServerMsg::Response(r))) => {
            assert_eq!(r.error.unwrap().code, ErrorCode::BadRequest);
            assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
        }
        Err(ClientError::Closed) | Err(ClientError::Io(_)) => {}
        other => panic!("{other:?}"),
    }
    wait_until("oversize counted", || d.hub.stats().oversize_lines == 1);
    // A line of exactly MAX_LINE bytes is fine.
    let mut c = d.client();
    let mut line = br#"{"id":1,"op":"hello","client":""#.to_vec();
    line.resize(MAX_LINE - 2, b'a');
    line.extend_from_slice(b"\"}");
    c.send_raw_line(&line).unwrap();
    match c.read_raw(Some(T)).unwrap() {
        Some(ServerMsg::Response(r)) => assert!(r.ok),
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_clients_enforced() {
    let d = TestDaemon::start(|c| c.max_clients = 2);
    let mut a = d.client();
    let mut b = d.client();
    a.hello().unwrap();
    b.hello().unwrap();
    let mut c = d.client();
    match c.read_raw(Some(T)).unwrap() {
        Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Busy),
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
    assert_eq!(d.hub.stats().clients_rejected, 1);
    drop(a);
    d.disconnected.recv_timeout(T).unwrap();
    wait_until("slot freed", || d.hub.stats().clients == 1);
    // The slot is free again (the count drops when the writer has finished).
    let start = Instant::now();
    loop {
        let mut c = d.client();
        match c.hello() {
            Ok(_) => break,
            Err(_) if start.elapsed() < T => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{e}"),
        }
    }
    b.hello().unwrap();
}

#[test]
fn queue_overflow_is_counted_and_reported() {
    let d = TestDaemon::start(|c| c.queue_per_client = 4);
    let mut c = d.client();
    c.subscribe(Subscription::default()).unwrap();
    // Large events fill the socket buffers quickly while the client reads nothing.
    let data = [0xab; 30_000];
    let published = 400u64;
    let mut sent = 0u64;
    for i in 0..published {
        let ev = dgram_data(
            "X<00>",
            None,
            true,
            [&(i as u16).to_be_bytes()[..], &data].concat(),
        );
        sent += d.hub.publish_datagram(&ev.out()) as u64;
    }
    let st = d.hub.stats();
    assert!(st.events_dropped_queue_full > 0, "{st:?}");
    assert_eq!(st.events_dropped_queue_full + sent, published);
    let mut got = 0u64;
    let mut overflow = 0u64;
    c.set_event_buffer(1_000);
    while let Some(ev) = c.next_event(Some(Duration::from_millis(500))).unwrap() {
        match ev {
            Event::Datagram(_) => got += 1,
            Event::Overflow { dropped } => overflow += dropped,
            Event::Name(_) => panic!("no name events here"),
        }
    }
    assert_eq!(got, sent);
    assert_eq!(overflow, st.events_dropped_queue_full);
    assert!(d.hub.stats().overflow_events >= 1);
    // The connection still works.
    c.hello().unwrap();
}

#[test]
fn queues_are_bounded_in_bytes() {
    for enc in EventEncoding::ALL {
        queues_are_bounded_in_bytes_with(enc);
    }
}

fn queues_are_bounded_in_bytes_with(enc: EventEncoding) {
    let cap = 300 * 1024;
    let d = TestDaemon::start(|c| {
        c.queue_per_client = 100_000;
        c.queue_bytes_per_client = cap;
    });
    let mut c = d.client();
    c.hello_with(None, Some(enc)).unwrap();
    c.subscribe(Subscription::default()).unwrap();
    let data = [0xab; 30_000];
    let mut peak = 0;
    for i in 0..2_000u32 {
        d.hub.publish_datagram(
            &dgram_data(
                "X<00>",
                None,
                true,
                [&(i as u16).to_be_bytes()[..], &data].concat(),
            )
            .out(),
        );
        peak = peak.max(d.hub.stats().queued_bytes);
    }
    let st = d.hub.stats();
    assert!(st.events_dropped_queue_full > 0, "{st:?}");
    // Events only count against the total; the per-client cap bounds them.
    assert!(peak <= cap, "{peak} queued bytes, cap {cap}");
    // The client still gets what was queued, and an overflow notice.
    c.set_event_buffer(100_000);
    let (mut overflow, mut got) = (0, 0);
    while let Some(ev) = c.next_event(Some(Duration::from_millis(500))).unwrap() {
        match ev {
            Event::Overflow { dropped } => overflow += dropped,
            Event::Datagram(d) => {
                assert_eq!(d.data_b64.is_some(), enc == EventEncoding::Base64);
                assert_eq!(d.data().unwrap()[2..], data);
                got += 1;
            }
            _ => {}
        }
    }
    assert_eq!(overflow, st.events_dropped_queue_full);
    assert_eq!(got + overflow, 2_000, "{enc:?}");
    c.hello().unwrap();
}

#[test]
fn total_queue_bytes_are_capped_across_clients() {
    let hub = Hub::with_queue_bytes_total(200_000);
    let mut keep = Vec::new();
    for id in 1..=4u64 {
        let (tx, rx) = QueueTx::channel();
        keep.push(rx);
        hub.attach(id, tx, hub.budget(10_000, 1 << 30), Arc::default());
        hub.subscribe(id, Subscription::default());
    }
    let data = "ab".repeat(10_000);
    for _ in 0..20 {
        hub.publish_datagram(&dgram("X<00>", None, true, &data).out());
    }
    let st = hub.stats();
    assert!(st.queued_bytes <= 200_000, "{st:?}");
    assert!(st.events_dropped_total_bytes > 0, "{st:?}");
    assert_eq!(st.events_delivered + st.events_dropped_total_bytes, 80);
    // Written lines give their bytes back.
    for rx in &mut keep {
        while rx.try_recv().is_some() {}
    }
    assert_eq!(hub.stats().queued_bytes, 0);
}

/// Counts the wake-ups of a task (a writer waiting on its queue).
pub(super) struct Wakes(pub(super) std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub(super) fn wakes() -> (Arc<Wakes>, std::task::Waker) {
    let w = Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
    (w.clone(), std::task::Waker::from(w))
}

#[test]
fn the_receive_path_wakes_a_writer_once_per_batch() {
    use crate::worker::Outlet;
    use std::future::Future;
    use std::task::{Context, Poll};
    let hub = Hub::new();
    let (tx, mut rx) = QueueTx::channel();
    hub.attach(1, tx, hub.budget(100, 1 << 20), Arc::default());
    hub.subscribe(1, Subscription::default());
    let (count, waker) = wakes();
    let mut cx = Context::from_waker(&waker);
    let ev = dgram("X<00>", None, true, "0102");
    {
        let mut recv = Box::pin(rx.recv());
        assert!(
            recv.as_mut().poll(&mut cx).is_pending(),
            "nothing queued yet"
        );
        for _ in 0..10 {
            hub.datagram(ev.interface, ev.to, &ev.delivery, None);
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "not woken per event");
        hub.flush();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken once for the batch"
        );
        assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
    }
    let mut got = 1;
    while rx.try_recv().is_some() {
        got += 1;
    }
    assert_eq!(got, 10);
    // Nothing batched since: the next flush wakes nobody.
    let mut recv = Box::pin(rx.recv());
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    hub.flush();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    // Any other publish wakes the writer at once.
    assert_eq!(hub.publish_datagram(&ev.out()), 1);
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
}

/// A worker's batch to a client whose writer is idle is written by the worker's thread
/// itself: the event lines in order, no wake-up, counted in the stats.
#[test]
fn the_receive_path_writes_a_batch_through_when_the_writer_is_idle() {
    use crate::worker::Outlet;
    use std::future::Future;
    use std::io::Read;
    use std::os::fd::AsFd;
    let hub = Hub::new();
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (tx, mut rx) = QueueTx::channel_to(Some(ours.as_fd().try_clone_to_owned().unwrap()));
    hub.attach(1, tx, hub.budget(100, 1 << 20), Arc::default());
    hub.subscribe(1, Subscription::default());
    let (count, waker) = wakes();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut recv = Box::pin(rx.recv());
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    let mut want = Vec::new();
    for i in 0..10u8 {
        let ev = dgram("X<00>", None, true, &format!("{i:02x}"));
        want.extend_from_slice(&ev.out().line());
        hub.datagram(ev.interface, ev.to, &ev.delivery, None);
    }
    hub.flush();
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "the writer slept on");
    let mut got = vec![0; want.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
    let st = hub.stats();
    assert_eq!(
        (
            st.writes_through,
            st.lines_written_through,
            st.writes_through_partial
        ),
        (1, 10, 0)
    );
    assert_eq!((st.events_delivered, st.queued_bytes), (10, 0));
    assert!(recv.as_mut().poll(&mut cx).is_pending(), "nothing left");
}

/// Publish `n` numbered events of `size` data octets the way a worker does: in
/// batches of 16, each ended by the outlet's flush (write-through or a wake-up).
fn publish_batches(hub: &Hub, n: u32, size: usize) {
    use crate::worker::Outlet;
    for i in 0..n {
        let ev = dgram_data(
            "X<00>",
            None,
            true,
            [&i.to_be_bytes()[..], &vec![0xcd; size]].concat(),
        );
        hub.datagram(ev.interface, ev.to, &ev.delivery, None);
        if i % 16 == 15 {
            hub.flush();
        }
    }
    hub.flush();
}

/// A client that reads nothing while 12 MB of events are published: the socket fills
/// during a write-through, the writer takes the rest and waits for room; once the
/// client reads, every event arrives, whole and in order.
#[test]
fn batches_written_through_reach_a_slow_client_whole_and_in_order() {
    let d = TestDaemon::start(|c| {
        c.queue_per_client = 100_000;
        c.queue_bytes_per_client = 60 << 20;
    });
    let mut c = d.client();
    c.hello().unwrap();
    c.subscribe(Subscription::default()).unwrap();
    // The writer has written the response and let go of the queue.
    wait_until("writer idle", || {
        d.hub.lock().clients.values().all(|c| c.tx.idle())
    });
    publish_batches(&d.hub, 2_000, 3_000);
    let st = d.hub.stats();
    assert!(st.writes_through >= 1, "{st:?}");
    assert!(st.writes_through_partial >= 1, "the socket filled: {st:?}");
    assert_eq!(st.events_dropped_queue_full, 0);
    c.set_event_buffer(100_000);
    let mut next = 0u32;
    while let Some(ev) = c.next_event(Some(Duration::from_millis(2_000))).unwrap() {
        let Event::Datagram(e) = ev else {
            panic!("{ev:?}");
        };
        let data = e.data().unwrap();
        assert_eq!(data[..4], next.to_be_bytes(), "out of order");
        assert_eq!(data.len(), 3_004);
        next += 1;
        if next == 2_000 {
            break;
        }
    }
    assert_eq!(next, 2_000);
    assert_eq!(d.hub.stats().queued_bytes, 0);
}

/// A client that stops reading is disconnected once the write half has waited the
/// stall timeout for room, and its slot is freed.
#[test]
fn a_client_that_stops_reading_is_disconnected_after_the_stall_timeout() {
    let d = TestDaemon::start(|c| {
        c.write_stall_timeout = Duration::from_millis(300);
        c.queue_per_client = 100_000;
        c.queue_bytes_per_client = 60 << 20;
    });
    let mut c = d.client();
    c.hello().unwrap();
    c.subscribe(Subscription::default()).unwrap();
    publish_batches(&d.hub, 1_000, 3_000);
    wait_until("write stall", || d.hub.stats().write_stalls == 1);
    wait_until("slot freed", || d.hub.stats().clients == 0);
    assert_eq!(
        d.hub.stats().queued_bytes,
        0,
        "its queue gave its room back"
    );
    drop(c);
}

#[test]
fn a_writer_waiting_for_a_kick_sees_its_queue_close() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let (tx, mut rx) = QueueTx::channel();
    let tx2 = tx.clone();
    let (count, waker) = wakes();
    let mut cx = Context::from_waker(&waker);
    let mut recv = Box::pin(rx.recv());
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    drop(tx);
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "a dropped sender kicks");
    assert!(
        recv.as_mut().poll(&mut cx).is_pending(),
        "one sender is left"
    );
    drop(tx2);
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Ready(None)));
}

#[test]
fn clients_per_peer_capped() {
    let d = TestDaemon::start(|c| c.max_clients_per_peer = 2);
    let mut a = d.client();
    let mut b = d.client();
    a.hello().unwrap();
    b.hello().unwrap();
    let mut c = d.client();
    match c.read_raw(Some(T)).unwrap() {
        Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Busy),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.hub.stats().clients_rejected_per_peer, 1);
    drop(a);
    wait_until("slot freed", || d.hub.stats().clients == 1);
    let start = Instant::now();
    while d.client().hello().is_err() {
        assert!(start.elapsed() < T);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tcp_needs_the_token_first() {
    let token = "0123456789abcdef-token";
    let d = TestDaemon::start(|c| {
        c.tcp = Some("127.0.0.1:0".parse().unwrap());
        c.tcp_token = Some(Arc::from(token.as_bytes()));
    });
    let addr = d.tcp.unwrap();
    let denied = |first: &[u8]| {
        let mut c = Client::connect_tcp(addr).unwrap();
        c.set_timeout(T).unwrap();
        c.send_raw_line(first).unwrap();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => {
                assert_eq!(r.error.unwrap().code, ErrorCode::Denied)
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
    };
    denied(br#"{"id":1,"op":"names"}"#);
    denied(br#"{"id":1,"op":"hello"}"#);
    denied(br#"{"id":1,"op":"hello","token":"0123456789abcdef-tokeX"}"#);
    denied(br#"{"id":1,"op":"hello","token":7}"#);
    denied(b"not json");
    assert_eq!(d.hub.stats().clients_unauthenticated, 5);
    assert_eq!(d.hub.stats().clients_total, 0);
    let mut c = Client::connect_tcp(addr).unwrap();
    c.set_timeout(T).unwrap();
    assert_eq!(c.hello_with_token(token).unwrap().server, "nbdgm");
    let names: serde_json::Value = c.call(Op::Names).unwrap();
    assert!(names["uid"].is_null());
    // The Unix socket needs no token.
    d.client().hello().unwrap();
}

#[test]
fn token_file_must_be_private() {
    let dir = temp_dir();
    let f = dir.join("token");
    std::fs::write(&f, "  0123456789abcdef0123\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = read_token_file(&f).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(!e.to_string().contains("0123456789abcdef"), "{e}");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(&*read_token_file(&f).unwrap(), b"0123456789abcdef0123");
    std::fs::write(&f, "short").unwrap();
    assert!(read_token_file(&f).is_err());
    assert!(read_token_file(&dir.join("missing")).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn uid_allow_list() {
    let me = nix::unistd::getuid().as_raw();
    let d = TestDaemon::start(|c| c.allow_uids = vec![me.wrapping_add(1)]);
    let mut c = d.client();
    match c.read_raw(Some(T)).unwrap() {
        Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Denied),
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.read_raw(Some(T)), Err(ClientError::Closed)));
    assert_eq!(d.hub.stats().clients_denied, 1);
    assert_eq!(d.hub.stats().clients_total, 0);

    let d = TestDaemon::start(|c| c.allow_uids = vec![me]);
    d.client().hello().unwrap();
    let mygid = nix::unistd::getgid().as_raw();
    let d = TestDaemon::start(|c| {
        c.allow_uids = vec![me.wrapping_add(1)];
        c.allow_gids = vec![mygid];
    });
    d.client().hello().unwrap();
    assert_eq!(d.hub.stats().clients_denied, 0);
}

#[test]
fn socket_mode_group_and_removal() {
    let gid = nix::unistd::getgid().as_raw();
    let mut d = TestDaemon::start(|c| c.group = Some(gid.to_string()));
    let m = std::fs::metadata(&d.path).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o7777, 0o660);
    assert_eq!(m.gid(), gid);
    d.client().hello().unwrap();
    d.stop();
    assert!(!d.path.exists(), "socket removed at shutdown");

    let dir = temp_dir();
    let mut cfg = ApiConfig::new(dir.join("api.sock"));
    cfg.group = Some("no-such-group-nbdgm-test".into());
    assert!(bind(cfg).is_err());
    assert!(!dir.join("api.sock").exists(), "no socket left behind");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stale_socket_replaced_live_socket_refused() {
    let dir = temp_dir();
    let path = dir.join("api.sock");
    // Stale: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let d = TestDaemon::start_with(dir.clone(), ApiConfig::new(&path)).unwrap();
    d.client().hello().unwrap();
    // Live: a second daemon is refused and the first keeps working.
    let err = bind(ApiConfig::new(&path)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    d.client().hello().unwrap();
    // Not a socket: refused, the file is left alone.
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert!(bind(ApiConfig::new(&file)).is_err());
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // A listener that is dropped without running removes its socket.
    let other = dir.join("other.sock");
    drop(bind(ApiConfig::new(&other)).unwrap());
    assert!(!other.exists());
}

#[test]
fn tcp_listener_with_acl() {
    let d = TestDaemon::start(|c| c.tcp = Some("127.0.0.1:0".parse().unwrap()));
    let addr = d.tcp.unwrap();
    let mut c = Client::connect_tcp(addr).unwrap();
    c.set_timeout(T).unwrap();
    assert_eq!(c.hello().unwrap().server, "nbdgm");
    let names: serde_json::Value = c.call(Op::Names).unwrap();
    assert!(names["uid"].is_null());
    c.subscribe(Subscription::default()).unwrap();
    assert_eq!(
        d.hub
            .publish_datagram(&dgram("X<00>", None, true, "").out()),
        1
    );
    assert!(next_datagram(&mut c).is_some());

    let d = TestDaemon::start(|c| {
        c.tcp = Some("127.0.0.1:0".parse().unwrap());
        c.tcp_acl = Arc::new(|_| false);
    });
    let mut c = Client::connect_tcp(d.tcp.unwrap()).unwrap();
    match c.read_raw(Some(T)).unwrap() {
        Some(ServerMsg::Response(r)) => assert_eq!(r.error.unwrap().code, ErrorCode::Denied),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.hub.stats().clients_denied, 1);
}

#[test]
fn pipelined_requests_all_answered() {
    let d = TestDaemon::start(|_| {});
    let mut c = d.client();
    for i in 0..200u64 {
        c.send_raw_line(format!(r#"{{"id":{i},"op":"hello"}}"#).as_bytes())
            .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 200 {
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => {
                assert!(r.ok);
                assert!(seen.insert(r.id.unwrap()));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn line_reader_caps() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let line = |r: ReadLine| match r {
            ReadLine::Line(l) => Some(l),
            _ => None,
        };
        // A line of exactly the cap passes; `\r` counts and is dropped; any bytes.
        let data = b"abc\r\n12345678\n\xff\xfe\nlong line here\ntail".to_vec();
        let mut r = request_lines(&data[..], 8);
        assert_eq!(line(next_line(&mut r).await.unwrap()).unwrap(), b"abc");
        assert_eq!(line(next_line(&mut r).await.unwrap()).unwrap(), b"12345678");
        assert_eq!(line(next_line(&mut r).await.unwrap()).unwrap(), b"\xff\xfe");
        assert!(matches!(
            next_line(&mut r).await.unwrap(),
            ReadLine::TooLong
        ));
        // One byte over, counting the `\r`.
        let mut r = request_lines(&b"1234567\r\n"[..], 7);
        assert!(matches!(
            next_line(&mut r).await.unwrap(),
            ReadLine::TooLong
        ));
        // The last line may lack its newline; then the end.
        let mut r = request_lines(&b"x\ntail"[..], 8);
        assert_eq!(line(next_line(&mut r).await.unwrap()).unwrap(), b"x");
        assert_eq!(line(next_line(&mut r).await.unwrap()).unwrap(), b"tail");
        assert!(matches!(next_line(&mut r).await.unwrap(), ReadLine::Eof));
    });
}

/// `hello` with `encoding`: base64 for one client, hex for the other, in one
/// publish; arbitrary bytes (empty, every length mod 3, the largest datagram's data)
/// come back whole; `hex` switches back.
#[test]
fn hello_negotiates_the_event_encoding() {
    let d = TestDaemon::start(|c| c.queue_bytes_per_client = 8 << 20);
    let mut b64 = d.client();
    let h = b64.hello_encoding(EventEncoding::Base64).unwrap();
    assert_eq!(h.server, "nbdgm");
    let mut hex = d.client();
    hex.hello().unwrap();
    for c in [&mut b64, &mut hex] {
        c.subscribe(Subscription::default()).unwrap();
    }
    let mut x = 0x2545_f491_u32;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    for n in [0, 1, 2, 3, 4, 5, 130, 65_535] {
        let ev = dgram_data("X<00>", None, true, bytes(n));
        assert_eq!(d.hub.publish_datagram(&ev.out()), 2);
        let got = next_datagram(&mut b64).unwrap();
        assert_eq!(got, ev.event_in(EventEncoding::Base64), "{n}");
        assert!(got.data_hex.is_empty());
        assert_eq!(got.data().unwrap(), &ev.delivery.data[..], "{n}");
        let got = next_datagram(&mut hex).unwrap();
        assert_eq!(got, ev, "{n}");
        assert_eq!(got.data_b64, None);
    }
    // On the wire: hello says the encoding, the event has no data_hex at all.
    let mut raw = std::os::unix::net::UnixStream::connect(&d.path).unwrap();
    raw.set_read_timeout(Some(T)).unwrap();
    io::Write::write_all(
        &mut raw,
        b"{\"id\":1,\"op\":\"hello\",\"encoding\":\"base64\"}\n{\"id\":2,\"op\":\"subscribe\"}\n",
    )
    .unwrap();
    let mut lines = io::BufRead::lines(io::BufReader::new(raw));
    let mut next = || lines.next().unwrap().unwrap();
    // The runtime answers hello, the API layer subscribe: in either order.
    let mut answers: Vec<serde_json::Value> = (0..2)
        .map(|_| serde_json::from_str(&next()).unwrap())
        .collect();
    answers.sort_by_key(|v| v["id"].as_u64());
    assert_eq!(answers[0]["result"]["encoding"], "base64");
    assert_eq!(answers[1]["ok"], true);
    let ev = dgram("X<00>", None, true, "00ff");
    d.hub.publish_datagram(&ev.out());
    let line = next();
    assert!(!line.contains("data_hex"), "{line}");
    assert!(
        line.ends_with(r#","mailslot":null,"data_b64":"AP8="}"#),
        "{line}"
    );
    next_datagram(&mut b64).unwrap();
    // Back to hex.
    b64.hello_encoding(EventEncoding::Hex).unwrap();
    d.hub.publish_datagram(&ev.out());
    assert_eq!(next_datagram(&mut b64).unwrap(), ev);
}

/// An unknown encoding (or one that is not a string) is refused with a clear error;
/// the connection stays, in the encoding it had. On TCP, such a hello is refused.
#[test]
fn unknown_event_encoding_is_refused() {
    let token = "0123456789abcdef-token";
    let d = TestDaemon::start(|c| {
        c.tcp = Some("127.0.0.1:0".parse().unwrap());
        c.tcp_token = Some(Arc::from(token.as_bytes()));
    });
    let mut c = d.client();
    let refused = |c: &mut Client, line: &[u8], code: ErrorCode| {
        c.send_raw_line(line).unwrap();
        match c.read_raw(Some(T)).unwrap() {
            Some(ServerMsg::Response(r)) => {
                let e = r.error.unwrap();
                assert_eq!((r.id, e.code), (Some(7), code), "{}", e.message);
                assert!(e.message.contains("hex, base64"), "{}", e.message);
                e.message
            }
            other => panic!("{other:?}"),
        }
    };
    let m = refused(
        &mut c,
        br#"{"id":7,"op":"hello","encoding":"zstd"}"#,
        ErrorCode::Unsupported,
    );
    assert!(m.contains("unknown encoding \"zstd\""), "{m}");
    refused(
        &mut c,
        br#"{"id":7,"op":"hello","encoding":"BASE64"}"#,
        ErrorCode::Unsupported,
    );
    refused(
        &mut c,
        br#"{"id":7,"op":"hello","encoding":1}"#,
        ErrorCode::BadRequest,
    );
    c.subscribe(Subscription::default()).unwrap();
    let ev = dgram("X<00>", None, true, "0102");
    d.hub.publish_datagram(&ev.out());
    assert_eq!(next_datagram(&mut c).unwrap(), ev);
    assert_eq!(d.hub.stats().bad_requests, 3);
    // TCP: the token and the encoding in one hello; a bad encoding is denied.
    let addr = d.tcp.unwrap();
    let mut t = Client::connect_tcp(addr).unwrap();
    t.set_timeout(T).unwrap();
    t.hello_with(Some(token), Some(EventEncoding::Base64))
        .unwrap();
    let mut t = Client::connect_tcp(addr).unwrap();
    t.set_timeout(T).unwrap();
    let line = format!(r#"{{"id":1,"op":"hello","token":"{token}","encoding":"zstd"}}"#);
    t.send_raw_line(line.as_bytes()).unwrap();
    match t.read_raw(Some(T)).unwrap() {
        Some(ServerMsg::Response(r)) => {
            let e = r.error.unwrap();
            assert_eq!(e.code, ErrorCode::Denied);
            assert!(e.message.contains("unknown encoding"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
}
