//! Test helpers: build inbound frames with the codec, run engines, parse what they send.
#![allow(dead_code)]

use nbdgm_browser::{Action, Browser, BrowserConfig, BrowserEvent, Inbound, Role, Target};
use nbdgm_wire::browser::{Announcement, BrowserFrame, LanmanFrame, ServerType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE, LANMAN};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

pub const WG: &str = "TESTGROUP";

pub fn addr(last: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, last), 138)
}

pub fn name(n: &str, suffix: u8) -> Name {
    Name::new(n, suffix).unwrap()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// One datagram an engine asked to send, parsed back.
#[derive(Debug, Clone)]
pub struct Sent {
    pub source: Name,
    pub destination: Name,
    pub target: Target,
    pub slot: String,
    pub data: Vec<u8>,
    /// Parsed when on BROWSE.
    pub frame: Option<BrowserFrame>,
    /// Parsed when on LANMAN.
    pub lanman: Option<LanmanFrame>,
}

#[derive(Debug, Default)]
pub struct Out {
    pub sent: Vec<Sent>,
    pub registers: Vec<(Name, bool)>,
    pub releases: Vec<Name>,
    pub events: Vec<BrowserEvent>,
    /// FetchMasterList: (master, address, workgroup).
    pub fetches: Vec<(String, std::net::Ipv4Addr, String)>,
    /// FindDomainMaster: the workgroup.
    pub dmb_lookups: Vec<String>,
    /// SyncList: (kind, peer, address, workgroup).
    pub syncs: Vec<(nbdgm_browser::SyncKind, String, std::net::Ipv4Addr, String)>,
}

impl Out {
    pub fn frames(&self, op: u8) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.frame.as_ref().is_some_and(|f| f.command_code() == op))
            .collect()
    }
    pub fn count(&self, op: u8) -> usize {
        self.frames(op).len()
    }
    pub fn announcement(&self, op: u8) -> Vec<(&Sent, &Announcement)> {
        self.sent
            .iter()
            .filter_map(|s| match &s.frame {
                Some(BrowserFrame::HostAnnouncement(a)) if op == 0x01 => Some((s, a)),
                Some(BrowserFrame::LocalMasterAnnouncement(a)) if op == 0x0F => Some((s, a)),
                _ => None,
            })
            .collect()
    }
    pub fn has_event(&self, f: impl Fn(&BrowserEvent) -> bool) -> bool {
        self.events.iter().any(f)
    }
    pub fn extend(&mut self, o: Out) {
        self.sent.extend(o.sent);
        self.registers.extend(o.registers);
        self.releases.extend(o.releases);
        self.events.extend(o.events);
        self.fetches.extend(o.fetches);
        self.dmb_lookups.extend(o.dmb_lookups);
        self.syncs.extend(o.syncs);
    }
}

pub fn drain(b: &mut Browser) -> Out {
    let mut o = Out::default();
    while let Some(a) = b.poll_action() {
        match a {
            Action::Send {
                source,
                destination,
                target,
                data,
                ..
            } => {
                let w = MailslotWrite::parse(&data).expect("engine sent an invalid mailslot write");
                let frame = if w.name == BROWSE {
                    Some(BrowserFrame::parse(&w.data).expect("invalid browser frame"))
                } else {
                    None
                };
                let lanman = if w.name == LANMAN {
                    Some(LanmanFrame::parse(&w.data).expect("invalid lanman frame"))
                } else {
                    None
                };
                assert!(
                    frame.is_some() || lanman.is_some(),
                    "unknown mailslot {}",
                    w.name
                );
                o.sent.push(Sent {
                    source,
                    destination,
                    target,
                    slot: w.name,
                    data: w.data,
                    frame,
                    lanman,
                });
            }
            Action::Register { name, group } => o.registers.push((name, group)),
            Action::Release { name } => o.releases.push(name),
            Action::Event(e) => o.events.push(e),
            Action::FetchMasterList {
                master,
                address,
                workgroup,
            } => o.fetches.push((master, address, workgroup)),
            Action::FindDomainMaster { workgroup } => o.dmb_lookups.push(workgroup),
            Action::SyncList {
                kind,
                peer,
                address,
                workgroup,
            } => o.syncs.push((kind, peer, address, workgroup)),
        }
    }
    o
}

/// Advance to `until`, firing every deadline on the way; all output collected.
pub fn run_until(b: &mut Browser, until: Instant) -> Out {
    let mut o = drain(b);
    while let Some(t) = b.poll_timeout() {
        if t > until {
            break;
        }
        b.handle_timeout(t);
        o.extend(drain(b));
    }
    o
}

/// Same as [`run_until`], with the time of each send.
pub fn run_timed(b: &mut Browser, until: Instant) -> Vec<(Instant, Out)> {
    let mut v = vec![];
    while let Some(t) = b.poll_timeout() {
        if t > until {
            break;
        }
        b.handle_timeout(t);
        v.push((t, drain(b)));
    }
    v
}

pub fn config(n: &str) -> BrowserConfig {
    BrowserConfig::new(n, WG)
}

/// A started engine whose `<name><00>` is registered at `t0` (actions drained).
pub fn started(cfg: BrowserConfig, t0: Instant, seed: u64) -> Browser {
    let me = name(&cfg.name, 0);
    let mut b = Browser::new(cfg, t0, seed).unwrap();
    b.start(t0);
    b.name_registered(t0, &me);
    drain(&mut b);
    b
}

/// Feed a raw payload.
pub fn feed_raw(
    b: &mut Browser,
    now: Instant,
    from: SocketAddrV4,
    src: &Name,
    dst: &Name,
    slot: &str,
    data: &[u8],
) {
    b.handle(
        now,
        Inbound {
            from,
            source: src,
            destination: dst,
            mailslot: slot,
            data,
            broadcast: true,
            request_len: 82 + data.len(),
        },
    );
}

pub fn feed(
    b: &mut Browser,
    now: Instant,
    from: SocketAddrV4,
    src: &str,
    dst: &Name,
    f: &BrowserFrame,
) {
    let data = f.to_bytes().unwrap();
    feed_raw(b, now, from, &name(src, 0), dst, BROWSE, &data);
}

pub fn host_ann(server: &str, server_type: u32, periodicity_ms: u32) -> BrowserFrame {
    BrowserFrame::HostAnnouncement(Announcement {
        periodicity_ms,
        server_name: server.into(),
        os_major: 6,
        os_minor: 1,
        server_type,
        comment: format!("{server} comment"),
        ..Announcement::default()
    })
}

pub fn lma(server: &str, server_type: u32) -> BrowserFrame {
    BrowserFrame::LocalMasterAnnouncement(Announcement {
        periodicity_ms: 120_000,
        server_name: server.into(),
        os_major: 6,
        os_minor: 1,
        server_type: server_type | ServerType::MASTER_BROWSER,
        ..Announcement::default()
    })
}

pub fn election(criteria: u32, uptime_ms: u32, server: &str) -> BrowserFrame {
    BrowserFrame::RequestElection(nbdgm_wire::browser::RequestElection {
        election_version: 1,
        criteria,
        uptime_ms,
        server_name: server.into(),
        ..Default::default()
    })
}

/// Drive a started engine until it has won: returns it as master with all output.
pub fn make_master(b: &mut Browser, now: Instant) -> (Instant, Out) {
    if b.poll_timeout().is_none() {
        panic!("nothing scheduled");
    }
    // Force an election as a client would.
    let force = BrowserFrame::RequestElection(nbdgm_wire::browser::RequestElection {
        election_version: 0,
        criteria: 0,
        server_name: "CLIENT".into(),
        ..Default::default()
    });
    feed(b, now, addr(99), "CLIENT", &name(WG, 0x1E), &force);
    let mut out = drain(b);
    let mut t = now;
    for _ in 0..1000 {
        let Some(next) = b.poll_timeout() else { break };
        t = next;
        b.handle_timeout(t);
        let o = drain(b);
        let won = o.registers.iter().any(|(n, g)| n == &name(WG, 0x1D) && !g);
        out.extend(o);
        if won {
            break;
        }
    }
    b.name_registered(t, &Name::msbrowse());
    b.name_registered(t, &name(WG, 0x1D));
    out.extend(drain(b));
    assert_eq!(b.role(), Role::Master);
    (t, out)
}
