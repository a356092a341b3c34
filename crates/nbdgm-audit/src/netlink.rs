//! Change notifications for `nbdgm audit --watch`: netlink multicast subscriptions to
//! address and link changes (rtnetlink `RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR`,
//! `RTMGRP_IPV6_IFADDR`) and to nftables ruleset changes (`NETLINK_NETFILTER`,
//! `NFNLGRP_NFTABLES`), each read by a small thread that forwards one [`Change`] per
//! datagram on a bounded channel. The sockets belong to the network namespace of the
//! thread that opens them. There is no multicast for new listening sockets (sock_diag has
//! none): listeners are polled.

use nix::sys::socket::{
    bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
/// `NFNLGRP_NFTABLES` (7) as a bind mask.
const NFTABLES_GROUP: u32 = 1 << (7 - 1);
/// Changes queued for the watcher; beyond, they are dropped (one pending change is enough
/// to re-evaluate) and counted.
pub const QUEUE: usize = 64;
/// How long a reader thread blocks before looking at the stop flag.
const POLL_STOP: Duration = Duration::from_millis(250);
/// Receive buffer of a reader thread.
const BUF: usize = 64 * 1024;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// rtnetlink: links and addresses.
    Route,
    /// nftables ruleset.
    Nftables,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Route => "rtnetlink (links, addresses)",
            Source::Nftables => "nfnetlink (nftables)",
        }
    }
}

/// One datagram of notifications (or a receive overflow, which means "something changed").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub source: Source,
    /// Netlink messages in the datagram (0 after an overflow).
    pub messages: u32,
}

/// Counters of the reader threads.
#[derive(Debug, Default)]
pub struct Counters {
    pub datagrams: AtomicU64,
    pub overflows: AtomicU64,
    /// Changes not queued: the channel was full.
    pub dropped: AtomicU64,
}

/// The running subscriptions.
pub struct Events {
    pub rx: Receiver<Change>,
    /// What is subscribed, and what failed (with the error).
    pub subscribed: Vec<Source>,
    pub failed: Vec<(Source, String)>,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// A netlink socket of `proto` bound to the multicast `groups`, in this thread's namespace.
fn open(proto: SockProtocol, groups: u32) -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        proto,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &TimeVal::new(0, POLL_STOP.as_micros() as _),
    )?;
    Ok(fd)
}

/// The number of netlink messages in a datagram (their headers' lengths, bounded).
pub fn count_messages(buf: &[u8]) -> u32 {
    let mut off = 0usize;
    let mut n = 0u32;
    while off + 16 <= buf.len() && n < 10_000 {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < 16 {
            break;
        }
        n += 1;
        off = off.saturating_add((len + 3) & !3);
    }
    n
}

fn read_loop(
    fd: OwnedFd,
    source: Source,
    tx: SyncSender<Change>,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
) {
    let mut buf = vec![0u8; BUF];
    while !stop.load(Ordering::Relaxed) {
        let change = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => {
                c.datagrams.fetch_add(1, Ordering::Relaxed);
                Change {
                    source,
                    messages: count_messages(&buf[..n.min(buf.len())]),
                }
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ENOBUFS) => {
                c.overflows.fetch_add(1, Ordering::Relaxed);
                Change {
                    source,
                    messages: 0,
                }
            }
            Err(_) => return,
        };
        match tx.try_send(change) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

impl Events {
    /// Subscribe to what the kernel allows (nftables needs CAP_NET_ADMIN); what fails is
    /// listed in `failed` and left to the poll.
    pub fn start() -> Events {
        let (tx, rx) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut ev = Events {
            rx,
            subscribed: Vec::new(),
            failed: Vec::new(),
            counters: counters.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for (source, proto, groups) in [
            (
                Source::Route,
                SockProtocol::NetlinkRoute,
                RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
            ),
            (
                Source::Nftables,
                SockProtocol::NetlinkNetFilter,
                NFTABLES_GROUP,
            ),
        ] {
            let fd = match open(proto, groups) {
                Ok(fd) => fd,
                Err(e) => {
                    ev.failed.push((source, e.to_string()));
                    continue;
                }
            };
            let (tx, stop, c) = (tx.clone(), stop.clone(), counters.clone());
            match std::thread::Builder::new()
                .name("audit-netlink".into())
                .spawn(move || read_loop(fd, source, tx, stop, c))
            {
                Ok(h) => {
                    ev.threads.push(h);
                    ev.subscribed.push(source);
                }
                Err(e) => ev.failed.push((source, e.to_string())),
            }
        }
        ev
    }

    /// Stop the reader threads (each within [`POLL_STOP`]).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_messages_and_survives_garbage() {
        let mut b = Vec::new();
        for len in [20u32, 16] {
            b.extend_from_slice(&len.to_ne_bytes());
            b.resize(b.len() + len as usize - 4, 0);
        }
        assert_eq!(count_messages(&b), 2);
        assert_eq!(count_messages(&[0xff; 3]), 0);
        assert_eq!(count_messages(&0u32.to_ne_bytes().repeat(8)), 0);
        let huge = u32::MAX.to_ne_bytes().repeat(8);
        assert_eq!(count_messages(&huge), 1);
    }
}
