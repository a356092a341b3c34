//! Write-through and the writer: order, room, wake-ups, a full socket.

use super::super::conn::writer_task;
use super::super::tests::wakes;
use super::super::{Budget, Hub, Total};
use super::*;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn budget(lines: usize, bytes: usize) -> Arc<Budget> {
    Arc::new(Budget::new(lines, bytes, Arc::new(Total::new(1 << 30))))
}

/// Queue `line` (as a response: it takes room but not from the total); false when
/// there is no room.
fn queue(tx: &QueueTx, b: &Arc<Budget>, line: &[u8]) -> bool {
    let n = b.taken(line.len());
    if !b.take(n) {
        return false;
    }
    let q = Queued {
        line: Line::copy_from_slice(line),
        taken: n,
        event: false,
        budget: b.clone(),
    };
    tx.send_quiet(q).is_ok()
}

fn pair() -> (UnixStream, OwnedFd, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    let dup = ours.as_fd().try_clone_to_owned().unwrap();
    (ours, dup, peer)
}

fn lines_used(b: &Budget) -> usize {
    b.lines.load(Ordering::SeqCst)
}

#[test]
fn an_idle_writers_batch_is_written_through_in_order_without_a_wake_up() {
    let (_ours, dup, mut peer) = pair();
    let (tx, mut rx) = QueueTx::channel_to(Some(dup));
    let b = budget(100, 1 << 20);
    let (count, waker) = wakes();
    let mut cx = Context::from_waker(&waker);
    let mut buf = Vec::new();
    let mut gather = Box::pin(rx.gather(&mut buf, 1 << 16, |_| {}));
    assert!(gather.as_mut().poll(&mut cx).is_pending(), "nothing queued");
    let mut want = Vec::new();
    for i in 0..10 {
        let l = format!("{{\"n\":{i}}}\n");
        want.extend_from_slice(l.as_bytes());
        assert!(queue(&tx, &b, l.as_bytes()));
    }
    let dropped = AtomicU64::new(0);
    assert_eq!(
        tx.flusher().flush_batch(&dropped),
        Flushed::Written { lines: 10 }
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "the writer slept on");
    assert_eq!(lines_used(&b), 0, "written lines gave their room back");
    let mut got = vec![0; want.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
    assert!(gather.as_mut().poll(&mut cx).is_pending(), "nothing left");
    // An empty batch writes nothing and wakes nobody.
    assert_eq!(
        tx.flusher().flush_batch(&dropped),
        Flushed::Written { lines: 0 }
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
}

#[test]
fn an_overflow_to_report_or_no_socket_leaves_the_batch_to_the_writer() {
    let b = budget(100, 1 << 20);
    let (dropped, zero) = (AtomicU64::new(3), AtomicU64::new(0));
    let (_ours, dup, _peer) = pair();
    for (tx, mut rx, dropped) in [
        {
            let (tx, rx) = QueueTx::channel_to(Some(dup));
            (tx, rx, &dropped)
        },
        {
            let (tx, rx) = QueueTx::channel();
            (tx, rx, &zero)
        },
    ] {
        assert!(queue(&tx, &b, b"a\n"));
        assert!(queue(&tx, &b, b"b\n"));
        assert_eq!(tx.flusher().flush_batch(dropped), Flushed::Woke);
        let (count, waker) = wakes();
        let mut cx = Context::from_waker(&waker);
        let mut buf = Vec::new();
        let mut afters = 0;
        let ready = Box::pin(rx.gather(&mut buf, 1 << 16, |_| afters += 1))
            .as_mut()
            .poll(&mut cx);
        assert!(matches!(ready, Poll::Ready(true)), "the kick was stored");
        assert_eq!(buf, b"a\nb\n");
        assert_eq!(afters, 2, "the overflow check runs after each line");
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        rx.release();
    }
}

#[test]
fn a_full_socket_hands_the_rest_to_the_writer_first_in_line() {
    let (ours, dup, mut peer) = pair();
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::SndBuf, &4096).unwrap();
    let (tx, mut rx) = QueueTx::channel_to(Some(dup));
    let b = budget(10_000, 1 << 24);
    let mut want = Vec::new();
    for i in 0..2_000 {
        let l = format!("{i:08} {}\n", "x".repeat(90));
        want.extend_from_slice(l.as_bytes());
        assert!(queue(&tx, &b, l.as_bytes()));
    }
    let dropped = AtomicU64::new(0);
    let Flushed::Partial { lines } = tx.flusher().flush_batch(&dropped) else {
        panic!("a 4 KiB socket buffer cannot take 200 KB");
    };
    assert!(lines < 2_000);
    assert_eq!(
        lines_used(&b),
        2_000 - lines,
        "carried lines keep their room"
    );
    // While the writer has not taken the rest, the next batch waits behind it.
    assert!(queue(&tx, &b, b"late\n"));
    want.extend_from_slice(b"late\n");
    assert_eq!(tx.flusher().flush_batch(&dropped), Flushed::Woke);
    // What the socket took, then what the writer gathers, is every line in order.
    peer.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let _ = peer.read_to_end(&mut got);
    let (_count, waker) = wakes();
    let mut cx = Context::from_waker(&waker);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let polled = Box::pin(rx.gather(&mut buf, 16 * 1024, |_| {}))
            .as_mut()
            .poll(&mut cx);
        match polled {
            Poll::Ready(true) => got.extend_from_slice(&buf),
            other => {
                assert!(other.is_pending());
                break;
            }
        }
        rx.release();
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "lines lost, torn or out of order");
    assert_eq!(lines_used(&b), 0);
}

/// Event batches written through by one thread, responses queued by another, a real
/// writer task and a slow socket: every line arrives whole, once, in each sender's order.
#[test]
fn write_through_and_the_writer_keep_every_line_whole_and_in_order() {
    const EVENTS: usize = 20_000;
    const RESPONSES: usize = 2_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ours, dup, peer) = pair();
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::SndBuf, &8192).unwrap();
    ours.set_nonblocking(true).unwrap();
    let (tx, rx) = QueueTx::channel_to(Some(dup));
    let b = budget(512, 1 << 20);
    let dropped = Arc::new(AtomicU64::new(0));
    let hub = Arc::new(Hub::new());
    let writer = {
        let _rt = rt.enter();
        let wr = tokio::net::UnixStream::from_std(ours).unwrap();
        rt.spawn(writer_task(wr, rx, dropped.clone(), hub, 1, T))
    };
    peer.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(peer)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let put = |tx: &QueueTx, line: String| {
        while !queue(tx, &b, line.as_bytes()) {
            assert!(Instant::now() < deadline, "no room for a minute");
            std::thread::yield_now();
        }
    };
    let pad = "e".repeat(100);
    // How the batches went (which path each took depends on the scheduler).
    let (mut through, mut partials, mut woke) = (0, 0, 0);
    std::thread::scope(|s| {
        let tx2 = tx.clone();
        s.spawn(move || {
            for j in 0..RESPONSES {
                put(&tx2, format!("r {j}\n"));
                tx2.kick();
            }
        });
        for i in 0..EVENTS {
            put(&tx, format!("e {i} {pad}\n"));
            if i % 16 == 15 {
                match tx.flusher().flush_batch(&dropped) {
                    Flushed::Written { lines } => through += lines,
                    Flushed::Partial { lines } => {
                        through += lines;
                        partials += 1;
                    }
                    Flushed::Woke => woke += 1,
                }
            }
        }
    });
    drop(tx); // the writer drains what is left, then closes
    rt.block_on(writer).unwrap();
    let got = reader.join().unwrap();
    let (mut e, mut r) = (0, 0);
    for l in &got {
        match l.split(' ').collect::<Vec<_>>()[..] {
            ["e", n, p] if p == pad => {
                assert_eq!(n.parse::<usize>().unwrap(), e, "event out of order");
                e += 1;
            }
            ["r", n] => {
                assert_eq!(n.parse::<usize>().unwrap(), r, "response out of order");
                r += 1;
            }
            _ => panic!("torn line {l:?}"),
        }
    }
    assert_eq!((e, r), (EVENTS, RESPONSES));
    assert!(through <= EVENTS);
    eprintln!("lines written through {through}, partial writes {partials}, writer woken {woke}");
    assert_eq!(lines_used(&b), 0);
}
