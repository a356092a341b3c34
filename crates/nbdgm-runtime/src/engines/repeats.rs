//! Repeated HostAnnouncements (MS-BRWS §2.2.1 HostAnnouncement, §3.2.5.2 receiving one;
//! issue 16 §1): a server announces the same bytes again and again, and a flood of them
//! made the browser parse each one and upsert the same list entry.
//!
//! Per source (IP and port) the pairing keeps the last HostAnnouncement on
//! `\MAILSLOT\BROWSE` that the browser took cleanly (its counters moved by
//! `frames_received` alone: no refusal, nothing ignored, the list's size unchanged, i.e.
//! an existing entry was refreshed). The same frame again (same source and destination
//! names, broadcast flag and mailslot bytes) within [`REPEAT_WINDOW`] of the last one the
//! browser saw is not handed to it again, and counted ([`RepeatStats::skipped`]). So
//! the browser still sees every source's announcement at least once per window: an
//! entry's expiry (minutes: `list::expiry_after`) is refreshed at most one window
//! late. Any other browser frame (election, reset, LMA, request...) clears the cache,
//! since it may change what a repeat would do. Bounded: [`MAX_SOURCES`] entries,
//! frames up to [`MAX_FRAME`] bytes; beyond, frames simply go to the browser
//! (counted in [`RepeatStats::full`]).

use nbdgm_node::{Delivery, Name};
use nbdgm_wire::browser::opcode;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// How long an identical repeat may be kept from the browser after the browser saw it.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(1);
/// Sources remembered at most.
pub const MAX_SOURCES: usize = 1024;
/// Longest mailslot payload remembered (a HostAnnouncement is 32 octets plus a comment
/// of at most 43).
pub const MAX_FRAME: usize = 256;

/// Counters of the repeat cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepeatStats {
    /// Identical repeats not handed to the browser.
    pub skipped: u64,
    /// Frames not remembered because [`MAX_SOURCES`] sources were (the browser got them).
    pub full: u64,
}

struct Last {
    source: Name,
    destination: Name,
    broadcast: bool,
    data: Vec<u8>,
    /// When the browser last saw this frame.
    at: Instant,
}

impl Last {
    fn same(&self, d: &Delivery, data: &[u8]) -> bool {
        self.broadcast == d.broadcast
            && self.data == data
            && self.source == d.source
            && self.destination == d.destination
    }
}

/// The last clean HostAnnouncement of each source.
#[derive(Default)]
pub struct Repeats {
    last: HashMap<SocketAddrV4, Last>,
    /// When entries older than the window were last dropped (when full).
    purged: Option<Instant>,
    stats: RepeatStats,
}

/// True for a frame this cache may remember: a HostAnnouncement on the browse mailslot
/// small enough to keep.
pub fn candidate(browse: bool, data: &[u8]) -> bool {
    browse && data.first() == Some(&opcode::HOST_ANNOUNCEMENT) && data.len() <= MAX_FRAME
}

impl Repeats {
    /// True (and counted) when `data` from `d.from` repeats the last clean frame of that
    /// source, seen by the browser less than [`REPEAT_WINDOW`] ago.
    pub fn is_repeat(&mut self, now: Instant, d: &Delivery, data: &[u8]) -> bool {
        let hit = self.last.get(&d.from).is_some_and(|l| {
            now.saturating_duration_since(l.at) < REPEAT_WINDOW && l.same(d, data)
        });
        if hit {
            self.stats.skipped += 1;
        }
        hit
    }

    /// The browser handled `data` from `d.from`; `clean` when its counters moved by
    /// `frames_received` alone. A clean frame is remembered, any other forgotten.
    pub fn record(&mut self, now: Instant, d: &Delivery, data: &[u8], clean: bool) {
        if !clean {
            self.last.remove(&d.from);
            return;
        }
        if let Some(l) = self.last.get_mut(&d.from) {
            if l.same(d, data) {
                l.at = now;
                return;
            }
        }
        if self.last.len() >= MAX_SOURCES && !self.last.contains_key(&d.from) {
            self.purge(now);
            if self.last.len() >= MAX_SOURCES {
                self.stats.full += 1;
                return;
            }
        }
        self.last.insert(
            d.from,
            Last {
                source: d.source.clone(),
                destination: d.destination.clone(),
                broadcast: d.broadcast,
                data: data.to_vec(),
                at: now,
            },
        );
    }

    /// Forget every source (another kind of browser frame arrived).
    pub fn clear(&mut self) {
        self.last.clear();
    }

    /// Drop entries older than the window, at most once per window.
    fn purge(&mut self, now: Instant) {
        if self
            .purged
            .is_some_and(|p| now.saturating_duration_since(p) < REPEAT_WINDOW)
        {
            return;
        }
        self.purged = Some(now);
        self.last
            .retain(|_, l| now.saturating_duration_since(l.at) < REPEAT_WINDOW);
    }

    pub fn stats(&self) -> RepeatStats {
        self.stats
    }

    /// Sources remembered now.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engines;
    use nbdgm_browser::{Browser, BrowserConfig};
    use nbdgm_node::{Event, Incoming, Interface, Node, NodeConfig, Service};
    use nbdgm_wire::browser::{Announcement, BrowserFrame};
    use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
    use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
    use std::net::Ipv4Addr;

    fn engines(now: Instant) -> Engines {
        let mut c = NodeConfig::new(Interface::new(Ipv4Addr::new(192, 0, 2, 1), 24));
        c.deliver_not_for_us = true;
        let mut bc = BrowserConfig::new("ME", "WG");
        bc.announce = false;
        bc.potential_browser = false;
        let browser = Browser::new(bc, now, 1).unwrap();
        Engines::new(Node::new(c, now).unwrap(), Some(browser))
    }

    fn datagram(frame: BrowserFrame, suffix: u8) -> Vec<u8> {
        let data = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap())
            .to_bytes()
            .unwrap();
        Datagram::data(
            MsgType::DirectGroup,
            NodeType::B,
            1,
            (Ipv4Addr::new(192, 0, 2, 9), 138),
            Name::new("SERVER1", 0).unwrap(),
            Name::new("WG", suffix).unwrap(),
            data,
        )
        .to_bytes()
        .unwrap()
    }

    fn host(comment: &str) -> BrowserFrame {
        BrowserFrame::HostAnnouncement(Announcement {
            server_name: "SERVER1".into(),
            periodicity_ms: 60_000,
            server_type: 0x3,
            comment: comment.into(),
            ..Default::default()
        })
    }

    /// Receive `bytes` from 192.0.2.9:`port` at `now`; true when the browser was fed.
    fn receive(e: &mut Engines, now: Instant, port: u16, bytes: &[u8]) -> bool {
        e.node.handle(
            now,
            Incoming {
                from: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), port),
                service: Service::Datagram,
                broadcast: true,
                bytes,
            },
        );
        while let Some(ev) = e.node.poll_event() {
            assert!(matches!(ev, Event::Delivered(_)), "{ev:?}");
            e.observe(now, &ev);
        }
        e.take_fed()
    }

    fn frames(e: &Engines) -> u64 {
        e.browser.as_ref().unwrap().stats().frames_received
    }

    #[test]
    fn identical_repeats_within_the_window_are_not_fed_again() {
        let now = Instant::now();
        let mut e = engines(now);
        let d = datagram(host("a"), 0x1D);
        // The first adds the entry (the list grew: not clean), the second refreshes it.
        assert!(receive(&mut e, now, 138, &d));
        assert!(receive(&mut e, now, 138, &d));
        for _ in 0..3 {
            assert!(!receive(&mut e, now, 138, &d));
        }
        assert_eq!(frames(&e), 2);
        assert_eq!(e.repeat_stats().skipped, 3);
        let list = e.browser.as_ref().unwrap().list(now);
        assert!(list.servers.iter().any(|s| s.name == "SERVER1"), "{list:?}");
        // After the window the browser sees it again (its expiry refreshed), then skips.
        let later = now + REPEAT_WINDOW;
        assert!(receive(&mut e, later, 138, &d));
        assert!(!receive(&mut e, later, 138, &d));
        assert_eq!(frames(&e), 3);
        assert_eq!(e.repeat_stats().skipped, 4);
    }

    #[test]
    fn a_different_frame_or_source_is_fed() {
        let now = Instant::now();
        let mut e = engines(now);
        let d = datagram(host("a"), 0x1D);
        assert!(receive(&mut e, now, 138, &d));
        assert!(receive(&mut e, now, 138, &d));
        assert!(!receive(&mut e, now, 138, &d));
        // Another comment: fed (and its entry updated).
        assert!(receive(&mut e, now, 138, &datagram(host("b"), 0x1D)));
        let list = e.browser.as_ref().unwrap().list(now);
        assert!(list.servers.iter().any(|s| s.comment == "b"), "{list:?}");
        // The same bytes from another port: another source.
        assert!(receive(&mut e, now, 139, &d));
        assert_eq!(e.repeat_stats().skipped, 1);
    }

    #[test]
    fn frames_the_browser_refuses_or_ignores_are_always_fed() {
        let now = Instant::now();
        let mut e = engines(now);
        // To WG<20>: ignored by the browser (frames_ignored), so never remembered.
        let d = datagram(host("a"), 0x20);
        for _ in 0..4 {
            assert!(receive(&mut e, now, 138, &d));
        }
        assert_eq!(frames(&e), 4);
        assert_eq!(e.browser.as_ref().unwrap().stats().frames_ignored, 4);
        assert_eq!(e.repeat_stats().skipped, 0);
    }

    #[test]
    fn another_browser_frame_clears_the_cache() {
        let now = Instant::now();
        let mut e = engines(now);
        let d = datagram(host("a"), 0x1D);
        assert!(receive(&mut e, now, 138, &d));
        assert!(receive(&mut e, now, 138, &d));
        assert!(!receive(&mut e, now, 138, &d));
        let request = BrowserFrame::AnnouncementRequest(Default::default());
        assert!(receive(&mut e, now, 140, &datagram(request, 0x1D)));
        assert!(receive(&mut e, now, 138, &d), "the cache was cleared");
    }

    #[test]
    fn sources_are_bounded_and_counted() {
        let now = Instant::now();
        let mut e = engines(now);
        let d = datagram(host("a"), 0x1D);
        assert!(receive(&mut e, now, 1, &d));
        let extra = 3;
        for port in 1..=(MAX_SOURCES as u16 + extra) {
            assert!(receive(&mut e, now, port, &d), "port {port}");
        }
        assert_eq!(e.repeats.len(), MAX_SOURCES);
        assert_eq!(e.repeat_stats().full, u64::from(extra));
        // A remembered source repeats; one beyond the cap is fed.
        assert!(!receive(&mut e, now, 1, &d));
        assert!(receive(&mut e, now, MAX_SOURCES as u16 + 1, &d));
    }
}
