//! The honey sender: a background thread sending honey rounds on real sockets, at
//! jittered intervals and a bounded packet rate. One round queries one fresh name the
//! way Windows does: NBNS broadcast 3 tries 750 ms apart with the same NAME_TRN_ID
//! (RFC 1002 §4.2.12, BcastNameQueryCount/Timeout), LLMNR to 224.0.0.252:5355 twice
//! 100 ms apart with the same id (RFC 4795 §2), mDNS one-shot to 224.0.0.251:5353
//! (RFC 6762 §5.1). Multicast goes out with TTL 1 on the interface of `source`
//! (IP_MULTICAST_IF). It never answers anything and sends nothing but these queries.

use super::names::{generate, jittered};
use super::query::{
    llmnr_query, mdns_query, nbns_query, LLMNR_RETRY_MS, LLMNR_TRIES, NBNS_RETRY_MS, NBNS_TRIES,
    TYPE_A,
};
use super::SentQuery;
use crate::state::Proto;
use nbdgm_base::random::Random;
use nbdgm_capture::Timestamp;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Capacity of the channel of [`SentQuery`]s (full: the report is dropped, counted).
pub const CHANNEL_CAP: usize = 1024;
/// Seeds kept (see [`HoneySender::update_seeds`]).
pub const MAX_SEEDS: usize = 256;
/// Longest sleep between checks of the stop flag.
const TICK: Duration = Duration::from_millis(20);
/// Rate window.
const MINUTE: Duration = Duration::from_secs(60);

/// Settings of [`HoneySender`].
#[derive(Debug, Clone)]
pub struct HoneyConfig {
    /// Mean time between honey rounds (default 60 s).
    pub interval: Duration,
    /// Relative jitter of `interval`, `0..=0.9` (default 0.5: 30 to 90 s).
    pub jitter: f64,
    /// Packets per minute at most, all protocols and tries together (default 30). A
    /// round starts only when all its packets fit.
    pub max_per_minute: u32,
    /// Send NBNS queries.
    pub nbns: bool,
    /// Send LLMNR queries.
    pub llmnr: bool,
    /// Send mDNS queries.
    pub mdns: bool,
    /// The interface's IPv4 broadcast address (NBNS destination).
    pub broadcast: Ipv4Addr,
    /// The interface's IPv4 address: sockets bind to it and multicast leaves by it.
    pub source: Ipv4Addr,
    /// Whether the caller should [`super::verify`] responders (the sender ignores it).
    pub verify: bool,
    /// How long answers still count after a name's last query (for
    /// [`super::HoneyBook::set_linger`]; default 10 min).
    pub linger: Duration,
    /// Preferred NBNS source port (137, like Windows); an ephemeral one if it is taken.
    /// 0: ephemeral.
    pub nbns_port: u16,
    /// Preferred mDNS source port (5353, like Windows); ephemeral if taken. 0: ephemeral.
    pub mdns_port: u16,
    /// NBNS destination; default `broadcast:137`.
    pub nbns_dst: Option<SocketAddr>,
    /// LLMNR destination; default 224.0.0.252:5355.
    pub llmnr_dst: Option<SocketAddr>,
    /// mDNS destination; default 224.0.0.251:5353.
    pub mdns_dst: Option<SocketAddr>,
    /// Stop after this many rounds (None: until stopped).
    pub max_rounds: Option<u64>,
}

impl HoneyConfig {
    /// Defaults for the interface with this address and broadcast address.
    pub fn new(source: Ipv4Addr, broadcast: Ipv4Addr) -> HoneyConfig {
        HoneyConfig {
            interval: Duration::from_secs(60),
            jitter: 0.5,
            max_per_minute: 30,
            nbns: true,
            llmnr: true,
            mdns: true,
            broadcast,
            source,
            verify: false,
            linger: super::DEFAULT_LINGER,
            nbns_port: 137,
            mdns_port: 5353,
            nbns_dst: None,
            llmnr_dst: None,
            mdns_dst: None,
            max_rounds: None,
        }
    }
}

/// Sender counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SenderStats {
    /// Rounds started.
    pub rounds: u64,
    /// Packets sent.
    pub sent: u64,
    /// Send errors.
    pub send_errors: u64,
    /// Rounds that had to wait for the rate cap (counted when the wait starts).
    pub rate_waits: u64,
    /// Reports dropped because the channel was full.
    pub channel_full: u64,
    /// The last send error (escaped).
    pub last_error: Option<String>,
    /// Local address of the NBNS socket.
    pub nbns_src: Option<SocketAddr>,
    /// Local address of the LLMNR socket.
    pub llmnr_src: Option<SocketAddr>,
    /// Local address of the mDNS socket.
    pub mdns_src: Option<SocketAddr>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    seeds: Mutex<Vec<String>>,
    stats: Mutex<SenderStats>,
}

/// The running sender. Stops on [`HoneySender::stop`] or drop.
#[derive(Debug)]
pub struct HoneySender {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn now_ts() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

/// A UDP socket bound to `source:port` (or `source:0` when `port` is taken), with
/// broadcast allowed or multicast TTL 1 out of `source`'s interface.
fn socket(source: Ipv4Addr, port: u16, multicast: bool) -> io::Result<UdpSocket> {
    let mut last = None;
    for p in [port, 0] {
        if p == 0 && port == 0 && last.is_some() {
            break;
        }
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        if multicast {
            s.set_multicast_if_v4(&source)?;
            s.set_multicast_ttl_v4(1)?;
        } else {
            s.set_broadcast(true)?;
        }
        match s.bind(&SocketAddrV4::new(source, p).into()) {
            Ok(()) => return Ok(s.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port")))
}

struct Sockets {
    nbns: Option<(UdpSocket, SocketAddr)>,
    llmnr: Option<(UdpSocket, SocketAddr)>,
    mdns: Option<(UdpSocket, SocketAddr)>,
}

/// One packet of a round.
struct Step {
    at: Duration,
    proto: Proto,
    name: String,
    txid: u16,
    qtype: u16,
    attempt: u8,
    bytes: Vec<u8>,
}

impl HoneySender {
    /// Opens the sockets and starts the thread. Every query is reported on the returned
    /// channel just before it is sent: drain it into
    /// [`crate::Engine::honey_mut`]`().register(..)` before processing captured packets.
    /// `seeds` are learned names ([`crate::Engine::learned_names`]).
    pub fn start(
        cfg: HoneyConfig,
        seeds: Vec<String>,
    ) -> io::Result<(HoneySender, Receiver<SentQuery>)> {
        if !(cfg.nbns || cfg.llmnr || cfg.mdns) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "honey: no protocol enabled",
            ));
        }
        if cfg.max_per_minute == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "honey: max_per_minute must be at least 1",
            ));
        }
        let open = |on: bool, port: u16, mc: bool, dst: SocketAddr| -> io::Result<_> {
            if !on {
                return Ok(None);
            }
            Ok(Some((socket(cfg.source, port, mc)?, dst)))
        };
        let sockets = Sockets {
            nbns: open(
                cfg.nbns,
                cfg.nbns_port,
                false,
                cfg.nbns_dst
                    .unwrap_or(SocketAddr::from((cfg.broadcast, 137))),
            )?,
            llmnr: open(
                cfg.llmnr,
                0,
                true,
                cfg.llmnr_dst
                    .unwrap_or(SocketAddr::from(([224, 0, 0, 252], 5355))),
            )?,
            mdns: open(
                cfg.mdns,
                cfg.mdns_port,
                true,
                cfg.mdns_dst
                    .unwrap_or(SocketAddr::from(([224, 0, 0, 251], 5353))),
            )?,
        };
        let local =
            |s: &Option<(UdpSocket, SocketAddr)>| s.as_ref().and_then(|(s, _)| s.local_addr().ok());
        let shared = Arc::new(Shared::default());
        if let Ok(mut st) = shared.stats.lock() {
            st.nbns_src = local(&sockets.nbns);
            st.llmnr_src = local(&sockets.llmnr);
            st.mdns_src = local(&sockets.mdns);
        }
        let mut s = seeds;
        s.truncate(MAX_SEEDS);
        if let Ok(mut g) = shared.seeds.lock() {
            *g = s;
        }
        let (tx, rx) = sync_channel(CHANNEL_CAP);
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("nbdgm-honey".into())
            .spawn(move || run(&cfg, &sockets, &sh, &tx))?;
        Ok((
            HoneySender {
                shared,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Replaces the learned names new honey names are shaped after (at most
    /// [`MAX_SEEDS`] kept).
    pub fn update_seeds(&self, mut seeds: Vec<String>) {
        seeds.truncate(MAX_SEEDS);
        if let Ok(mut g) = self.shared.seeds.lock() {
            *g = seeds;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SenderStats {
        self.shared
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Has the thread ended (stopped, `max_rounds` reached, channel closed)?
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the thread (within about 20 ms) and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HoneySender {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps until `until`, in ticks; false when asked to stop.
fn sleep_until(sh: &Shared, until: Instant) -> bool {
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(TICK));
    }
}

fn stat(sh: &Shared, f: impl FnOnce(&mut SenderStats)) {
    if let Ok(mut s) = sh.stats.lock() {
        f(&mut s);
    }
}

/// The packets of one round for a fresh name, in send order.
fn plan(cfg: &HoneyConfig, seeds: &[String], rng: &mut Random) -> Vec<Step> {
    let name = generate(seeds, rng);
    let mut steps = Vec::new();
    if cfg.nbns {
        let suffix = if rng.next_u32().is_multiple_of(4) {
            0x00
        } else {
            0x20
        };
        let txid = rng.draw();
        if let Ok(bytes) = nbns_query(txid, &name.netbios, suffix) {
            for i in 0..NBNS_TRIES {
                steps.push(Step {
                    at: Duration::from_millis(NBNS_RETRY_MS * u64::from(i)),
                    proto: Proto::Nbns,
                    name: format!("{}<{suffix:02X}>", name.netbios),
                    txid,
                    qtype: nbdgm_wire::nbns::TYPE_NB,
                    attempt: i + 1,
                    bytes: bytes.clone(),
                });
            }
        }
    }
    if cfg.llmnr {
        let txid = rng.draw();
        if let Ok(bytes) = llmnr_query(txid, &name.label, TYPE_A) {
            for i in 0..LLMNR_TRIES {
                steps.push(Step {
                    at: Duration::from_millis(LLMNR_RETRY_MS * u64::from(i)),
                    proto: Proto::Llmnr,
                    name: name.label.clone(),
                    txid,
                    qtype: TYPE_A,
                    attempt: i + 1,
                    bytes: bytes.clone(),
                });
            }
        }
    }
    if cfg.mdns {
        if let Ok(bytes) = mdns_query(&name.mdns(), TYPE_A) {
            steps.push(Step {
                at: Duration::ZERO,
                proto: Proto::Mdns,
                name: name.mdns(),
                txid: 0,
                qtype: TYPE_A,
                attempt: 1,
                bytes,
            });
        }
    }
    steps.sort_by_key(|s| s.at);
    steps
}

fn run(cfg: &HoneyConfig, sockets: &Sockets, sh: &Shared, tx: &SyncSender<SentQuery>) {
    let mut rng = Random::from_os();
    let cap = usize::try_from(cfg.max_per_minute)
        .unwrap_or(usize::MAX)
        .max(1);
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(cap.min(4096));
    let mut rounds = 0u64;
    while !sh.stop.load(Ordering::SeqCst) && cfg.max_rounds.is_none_or(|m| rounds < m) {
        let seeds = sh.seeds.lock().map(|g| g.clone()).unwrap_or_default();
        let mut steps = plan(cfg, &seeds, &mut rng);
        steps.truncate(cap);
        // Wait until the whole round fits in the rate window.
        let mut waited = false;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= MINUTE)
            {
                sent.pop_front();
            }
            if sent.len() + steps.len() <= cap {
                break;
            }
            if !waited {
                waited = true;
                stat(sh, |s| s.rate_waits += 1);
            }
            let until = sent.front().map_or(now, |t| *t + MINUTE);
            if !sleep_until(sh, until) {
                return;
            }
        }
        rounds += 1;
        stat(sh, |s| s.rounds += 1);
        let start = Instant::now();
        for step in steps {
            if !sleep_until(sh, start + step.at) {
                return;
            }
            let (sock, dst) = match step.proto {
                Proto::Nbns => &sockets.nbns,
                Proto::Llmnr => &sockets.llmnr,
                Proto::Mdns => &sockets.mdns,
            }
            .as_ref()
            .map(|(s, d)| (s, *d))
            .unzip();
            let (Some(sock), Some(dst)) = (sock, dst) else {
                continue;
            };
            let q = SentQuery {
                proto: step.proto,
                name: step.name,
                txid: step.txid,
                qtype: step.qtype,
                attempt: step.attempt,
                time: now_ts(),
                src: sock
                    .local_addr()
                    .unwrap_or(SocketAddr::from((cfg.source, 0))),
                dst,
            };
            match tx.try_send(q) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => stat(sh, |s| s.channel_full += 1),
                Err(TrySendError::Disconnected(_)) => return,
            }
            sent.push_back(Instant::now());
            match sock.send_to(&step.bytes, dst) {
                Ok(_) => stat(sh, |s| s.sent += 1),
                Err(e) => stat(sh, |s| {
                    s.send_errors += 1;
                    s.last_error = Some(nbdgm_wire::text::escape(&e.to_string()).into_owned());
                }),
            }
        }
        if cfg.max_rounds.is_some_and(|m| rounds >= m) {
            break;
        }
        let pause = jittered(cfg.interval, cfg.jitter, &mut rng);
        if !sleep_until(sh, Instant::now() + pause) {
            return;
        }
    }
}
