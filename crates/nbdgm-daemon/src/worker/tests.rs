//! The receive → subscriber path of one datagram, measured: heap allocations made by
//! the worker's thread from the socket read to the serialized subscriber line; and the
//! batched receive (`recvmmsg`, RFC 1002 §5.3.3 datagrams) keeping the door's checks
//! and counters per packet; the batched send (`sendmmsg`, RFC 1002 §4.2.18 answers)
//! keeping the reply gate per answer.

use super::*;
use crate::acl::Acl;
use crate::api::{self, ApiConfig, Hub};
use nbdgm_api::{Event as ApiEvent, Subscription};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::MailslotWrite;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

/// Counts allocations of the current thread (other tests run on other threads).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// only addition is a thread-local counter, which never allocates (a const-initialised `Cell`).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

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

/// A BROADCAST to `*<00>` carrying a 100-byte mailslot write, as a sender puts it on
/// the wire.
fn packet(from: SocketAddrV4) -> Vec<u8> {
    let write = MailslotWrite::new("\\MAILSLOT\\TEST", vec![0x41; 100])
        .to_bytes()
        .unwrap();
    Datagram::data(
        MsgType::Broadcast,
        NodeType::B,
        7,
        (*from.ip(), from.port()),
        Name::new("SENDER", 0).unwrap(),
        Name::wildcard(),
        write,
    )
    .to_bytes()
    .unwrap()
}

#[test]
fn one_datagram_from_socket_to_subscriber_line() {
    let dir = std::env::temp_dir().join(format!("nbdgm-worker-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hub = Arc::new(Hub::new());
    let (api_tx, _api_rx) = mpsc::channel(16);
    let (_sd_tx, sd_rx) = tokio::sync::watch::channel(false);
    let listener = api::bind(ApiConfig::new(dir.join("api.sock"))).unwrap();
    rt.spawn(listener.run(hub.clone(), api_tx, sd_rx));
    let mut client = nbdgm_client::Client::connect(dir.join("api.sock")).unwrap();
    client.set_timeout(Duration::from_secs(5)).unwrap();
    client
        .subscribe(Subscription {
            name: None,
            mailslot: Some("\\MAILSLOT\\TEST".into()),
            all: false,
        })
        .unwrap();

    let (mut w, to) = loopback_worker(door(), hub.clone(), &rt);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(from) = sender.local_addr().unwrap() else {
        unreachable!()
    };
    let bytes = packet(from);

    let mut counts = Vec::new();
    for _ in 0..3 {
        sender.send_to(&bytes, to).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let before = allocs();
        w.ready(Ok(()), Role::DatagramUnicast);
        w.drain_events();
        counts.push(allocs() - before);
        match client.next_event(Some(Duration::from_secs(5))).unwrap() {
            Some(ApiEvent::Datagram(ev)) => {
                assert_eq!(ev.mailslot.as_deref(), Some("\\MAILSLOT\\TEST"));
                assert_eq!(ev.destination, "*<00>");
                assert_eq!(ev.data_hex.len(), 2 * (bytes.len() - 82));
            }
            other => panic!("expected a datagram event, got {other:?}"),
        }
    }
    // The first datagram from a source also creates its rate-limit entries. Was 12
    // before the typed delivery (names printed twice, the line copied into an Arc).
    let steady = counts[2];
    eprintln!("allocations per delivered datagram: {counts:?}");
    assert!(steady <= 6, "allocations per datagram: {counts:?}");
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A worker on loopback with `door`, publishing to `hub`, and its datagram socket's address.
fn loopback_worker(
    door: Door,
    hub: Arc<Hub>,
    rt: &tokio::runtime::Runtime,
) -> (Worker<Hub>, SocketAddr) {
    let lo = Ipv4Addr::LOCALHOST;
    let sockets = {
        let _g = rt.enter();
        crate::sockets::bind(lo, lo, 0, 0)
            .unwrap()
            .into_tokio()
            .unwrap()
    };
    let to = sockets.datagram.local_addr().unwrap();
    let mut config = NodeConfig::new(nbdgm_node::Interface::new(lo, 8));
    config.datagram_port = to.port();
    let node = Node::new(config, Instant::now()).unwrap();
    (
        Worker::new(node, sockets, door, hub, AppsConfig::default()),
        to,
    )
}

/// Receive moderation waits only after datagram-service reads in a row that each found
/// datagrams piling up (two or more, less than a batch); one datagram per read (a
/// requester waiting for each answer), an empty read or a name-service read ends it,
/// and zero turns it off.
#[test]
fn receive_moderation_waits_only_while_datagrams_pile_up() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let wait = Duration::from_millis(2);
    let d = Door {
        rx_moderation: wait,
        ..door()
    };
    let (mut w, to) = loopback_worker(d, Arc::new(Hub::new()), &rt);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(from) = sender.local_addr().unwrap() else {
        unreachable!()
    };
    let bytes = packet(from);
    // `k` datagrams queued, then one read.
    let read = |w: &mut Worker<Hub>, k: usize| {
        for _ in 0..k {
            sender.send_to(&bytes, to).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        w.ready(Ok(()), Role::DatagramUnicast);
    };
    let moderated = |w: &mut Worker<Hub>| {
        let t = Instant::now();
        w.moderate();
        (w.stats.rx_moderated, t.elapsed())
    };
    read(&mut w, 2);
    assert_eq!(moderated(&mut w).0, 0, "one read is not a stream");
    read(&mut w, 3);
    let (n, took) = moderated(&mut w);
    assert_eq!(n, 1, "two reads in a row with datagrams piling up are");
    assert!(took >= wait, "waited {took:?}");
    read(&mut w, 2);
    assert_eq!(moderated(&mut w).0, 2, "still piling up");
    // A read that finds one datagram ends it: a requester waiting for each answer.
    for _ in 0..4 {
        read(&mut w, 1);
        assert_eq!(moderated(&mut w).0, 2);
    }
    // So does an empty read.
    read(&mut w, 2);
    read(&mut w, 0);
    read(&mut w, 2);
    assert_eq!(moderated(&mut w).0, 2);
    // And a read of the name service.
    w.note_read(Role::NameUnicast, 5);
    read(&mut w, 2);
    assert_eq!(moderated(&mut w).0, 2);
    assert_eq!(w.stats.rx_datagram, 17);
    // Zero: off.
    w.door.rx_moderation = Duration::ZERO;
    read(&mut w, 2);
    read(&mut w, 2);
    assert_eq!(moderated(&mut w).0, 2);
}

/// More datagrams than one `recvmmsg` batch, from an allowed and a denied source, all
/// read in one readiness: every one counted, the denied ones refused, the rest delivered.
#[test]
fn batched_receive_keeps_the_door_and_the_counters() {
    // The I/O driver on a thread of its own marks the socket readable, as `wait` does.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut d = door();
    d.datagram_acl = Arc::new(Acl::allow_any(vec!["127.0.0.2/32".parse().unwrap()]));
    let (mut w, to) = loopback_worker(d, Arc::new(Hub::new()), &rt);
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let (SocketAddr::V4(fa), SocketAddr::V4(fb)) =
        (a.local_addr().unwrap(), b.local_addr().unwrap())
    else {
        unreachable!()
    };
    for i in 0..40 {
        a.send_to(&packet(fa), to).unwrap();
        if i % 13 == 0 {
            b.send_to(&packet(fb), to).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    w.ready(Ok(()), Role::DatagramUnicast);
    w.drain_events();
    assert_eq!(w.stats.rx_datagram, 44);
    assert_eq!(w.stats.acl_denied_datagram, 4);
    assert_eq!(w.stats.rx_errors, 0);
    assert_eq!(w.driver.engines.node.stats().datagrams_delivered, 40);
    // Nothing left: the next readiness reads nothing.
    w.ready(Ok(()), Role::DatagramUnicast);
    assert_eq!(w.stats.rx_datagram, 44);
}

/// The per-source rate limit still applies packet by packet inside a batch.
#[test]
fn batched_receive_applies_the_rate_limit_per_packet() {
    // The I/O driver on a thread of its own marks the socket readable, as `wait` does.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut d = door();
    d.rx_limit = (0.001, 5);
    let (mut w, to) = loopback_worker(d, Arc::new(Hub::new()), &rt);
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(fa) = a.local_addr().unwrap() else {
        unreachable!()
    };
    for _ in 0..12 {
        a.send_to(&packet(fa), to).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    w.ready(Ok(()), Role::DatagramUnicast);
    w.drain_events();
    assert_eq!(w.stats.rx_datagram, 12);
    assert_eq!(w.stats.rate_limited_rx, 7);
    assert_eq!(w.driver.engines.node.stats().datagrams_delivered, 5);
}

/// A NODE STATUS REQUEST for `*<00>` (RFC 1002 §4.2.17), which the node answers.
fn node_status_request(id: u16) -> Vec<u8> {
    use nbdgm_wire::nbns::{Packet as NbnsPacket, TYPE_NBSTAT};
    let star: Name = "*<00>".parse().unwrap();
    NbnsPacket::request(id, 0, star, TYPE_NBSTAT)
        .to_bytes()
        .unwrap()
}

/// Send `n` NODE STATUS requests to the worker's name socket, let it read and answer
/// them (one readiness, one flush: the batched send path), and collect the answers'
/// transaction ids.
fn burst(w: &mut Worker<Hub>, rt: &tokio::runtime::Runtime, n: u16) -> Vec<u16> {
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = w.driver.socket(Service::Name).local_addr().unwrap();
    for id in 0..n {
        client.send_to(&node_status_request(id), to).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    w.ready(Ok(()), Role::NameUnicast);
    rt.block_on(w.flush());
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut ids = Vec::new();
    let mut buf = [0u8; 2048];
    // Bounded: at most n answers are read, and a quiet 300 ms ends it.
    while ids.len() < usize::from(n) + 1 {
        match client.recv_from(&mut buf) {
            Ok((len, from)) => {
                assert_eq!(from, to, "answered from the name socket");
                assert!(len > 12 && buf[2] & 0x80 != 0, "a response");
                ids.push(u16::from_be_bytes([buf[0], buf[1]]));
            }
            Err(_) => break,
        }
    }
    ids
}

/// A burst larger than one `sendmmsg` batch: every request answered, in order, each
/// answer counted once in tx / tx_bytes; nothing refused.
#[test]
fn a_burst_of_queries_gets_every_answer_through_the_batched_send() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (mut w, _) = loopback_worker(door(), Arc::new(Hub::new()), &rt);
    let n = 50u16; // more than one batch of `SEND_SLOTS`
    assert!(usize::from(n) > nbdgm_runtime::driver::SEND_SLOTS);
    let ids = burst(&mut w, &rt, n);
    assert_eq!(ids, (0..n).collect::<Vec<_>>(), "all answered, in order");
    assert_eq!(w.stats.rx_name, u64::from(n));
    assert_eq!(w.stats.tx, u64::from(n));
    assert_eq!(w.stats.tx_errors, 0);
    assert!(w.stats.tx_bytes > 50 * u64::from(n));
    assert_eq!(
        w.stats.rate_limited_reply + w.stats.amplification_dropped,
        0
    );
}

/// The reply gate still checks each answer before the batch: past its burst the rest
/// are refused and counted, never sent.
#[test]
fn the_reply_gate_refuses_beyond_its_budget_in_a_batch() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut d = door();
    d.reply_limit = (0.001, 5);
    let (mut w, _) = loopback_worker(d, Arc::new(Hub::new()), &rt);
    let ids = burst(&mut w, &rt, 20);
    assert_eq!(ids, vec![0, 1, 2, 3, 4], "the burst of 5, then nothing");
    assert_eq!(w.stats.rx_name, 20);
    assert_eq!(w.stats.tx, 5);
    assert_eq!(w.stats.rate_limited_reply, 15);
    assert_eq!(w.stats.tx_errors, 0);
}
