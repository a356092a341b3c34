//! Local delivery of a client's group datagram (issue 17 §2; RFC 1001 §17.2): two API
//! clients subscribed to the same group name; what one sends through the worker reaches
//! the other exactly once (the node's local copy), and never comes back to the sender.

use super::*;
use crate::acl::Acl;
use crate::api::{self, ApiConfig, ApiMsg, Hub};
use nbdgm_api::{Event as ApiEvent, Op, Response, SendArgs, Subscription};
use nbdgm_client::Client;

fn door() -> Door {
    Door {
        name_acl: Arc::new(Acl::allow_any(vec![])),
        datagram_acl: Arc::new(Acl::allow_any(vec![])),
        rx_limit: (1e6, 1_000_000),
        reply_limit: (1e6, 1_000_000),
        max_sources: 1024,
        reply_amplification: 4,
        drop_log_per_s: 10,
        rx_moderation: Duration::ZERO,
    }
}

/// A worker on loopback publishing to `hub`, holding HOSTA<00> and the group WG<00>.
fn worker(hub: Arc<Hub>, rt: &tokio::runtime::Runtime) -> Worker<Hub> {
    let lo = Ipv4Addr::LOCALHOST;
    let sockets = {
        let _g = rt.enter();
        crate::sockets::bind(lo, lo, 0, 0)
            .unwrap()
            .into_tokio()
            .unwrap()
    };
    let mut config = NodeConfig::new(nbdgm_node::Interface::new(lo, 8));
    config.datagram_port = sockets.datagram.local_addr().unwrap().port();
    let start = Instant::now();
    let mut node = Node::new(config, start).unwrap();
    node.register(start, Name::new("HOSTA", 0).unwrap(), false)
        .unwrap();
    node.register(start, Name::new("WG", 0).unwrap(), true)
        .unwrap();
    // B-node registration: its broadcasts go unanswered, the names become active.
    for k in 1..=100u64 {
        node.handle_timeout(start + Duration::from_millis(100 * k));
    }
    let active = node
        .names()
        .iter()
        .filter(|e| e.state == nbdgm_node::NameState::Active)
        .count();
    assert_eq!(active, 2, "{:?}", node.names());
    let mut w = Worker::new(node, sockets, door(), hub, AppsConfig::default());
    w.drain_events();
    w
}

/// Client `c`'s group send to WG<00>, carried through the worker as the dispatcher
/// does (with the sending client's id).
fn send_through(
    w: &mut Worker<Hub>,
    api_rx: &mut mpsc::Receiver<ApiMsg>,
    mut c: Client,
    data: &'static [u8],
) -> Client {
    let t = std::thread::spawn(move || {
        let mut args = SendArgs::new("WG<00>", nbdgm_api::SendMode::Group, data);
        args.source = Some("HOSTA<00>".into());
        c.send(args).unwrap();
        c
    });
    let Some(ApiMsg::Request {
        client,
        request,
        reply,
    }) = api_rx.blocking_recv()
    else {
        panic!("expected the send request")
    };
    let Op::Send(args) = request.op else {
        panic!("expected a send")
    };
    let (tx, mut rx) = oneshot::channel();
    w.command(Command::Send {
        request: SendRequest {
            source: Name::new("HOSTA", 0).unwrap(),
            destination: Name::new("WG", 0).unwrap(),
            mode: SendMode::Group,
            data: args.data().unwrap(),
        },
        client: Some(client.id),
        reply: tx,
    });
    w.drain_events();
    let result = rx.try_recv().unwrap().unwrap();
    let _ = reply.send(Response::ok(request.id, &result));
    t.join().unwrap()
}

fn next_datagram(c: &mut Client) -> nbdgm_api::DatagramEvent {
    match c.next_event(Some(Duration::from_secs(5))).unwrap() {
        Some(ApiEvent::Datagram(ev)) => ev,
        other => panic!("expected a datagram event, got {other:?}"),
    }
}

#[test]
fn a_group_send_reaches_the_other_subscriber_once_and_not_the_sender() {
    let dir = std::env::temp_dir().join(format!("nbdgm-local-copy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hub = Arc::new(Hub::new());
    let mut w = worker(hub.clone(), &rt);
    let (api_tx, mut api_rx) = mpsc::channel(16);
    let (_sd_tx, sd_rx) = tokio::sync::watch::channel(false);
    let listener = api::bind(ApiConfig::new(dir.join("api.sock"))).unwrap();
    rt.spawn(listener.run(hub.clone(), api_tx, sd_rx));
    let connect = || {
        let mut c = Client::connect(dir.join("api.sock")).unwrap();
        c.set_timeout(Duration::from_secs(5)).unwrap();
        c.subscribe(Subscription {
            name: Some("WG<00>".into()),
            mailslot: None,
            all: false,
        })
        .unwrap();
        c
    };
    let (a, b) = (connect(), connect());

    // A sends: B gets it once, as a group datagram from our own address.
    let a = send_through(&mut w, &mut api_rx, a, b"from A");
    let mut b = b;
    let ev = next_datagram(&mut b);
    assert_eq!(ev.destination, "WG<00>");
    assert_eq!(ev.source, "HOSTA<00>");
    assert_eq!(ev.data_hex, hex(b"from A"));
    assert_eq!(ev.msg_type, nbdgm_api::DatagramType::DirectGroup);
    assert!(ev.for_us && ev.broadcast);
    assert_eq!(w.driver.engines.node.stats().datagrams_delivered_locally, 1);

    // B sends: A's first event is B's datagram (its own never queued), and B's next
    // event is not its own either: the queues are in order, so no echo was queued.
    let mut b = send_through(&mut w, &mut api_rx, b, b"from B");
    let mut a = a;
    let ev = next_datagram(&mut a);
    assert_eq!(ev.data_hex, hex(b"from B"));
    assert_eq!(w.driver.engines.node.stats().datagrams_delivered_locally, 2);
    let a = send_through(&mut w, &mut api_rx, a, b"again A");
    let ev = next_datagram(&mut b);
    assert_eq!(ev.data_hex, hex(b"again A"));
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
