//! `nbdgm watch --interface`: live capture (nbdgm-capture `LiveCapture`, kernel BPF filter
//! on ports 137, 138, 5353, 5355; RFC 1002 §4.2, §4.4, RFC 6762, RFC 4795) into the engine,
//! until `--duration`, `--count`, SIGINT or SIGTERM; SIGUSR1 rewrites `--inventory`;
//! `--honey` runs the honey-query sender on the interface's IPv4 address.

use super::{write_inventory, Emitter, WatchArgs, WatchError};
use ipnet::IpNet;
use nbdgm_capture::UdpDatagram;
use nbdgm_capture::{LiveCapture, LiveOptions, LiveStats};
use nbdgm_watch::honey::{attach_verification, verify, HoneyConfig, HoneySender, Verification};
use nbdgm_watch::signature::HONEY_ANSWERED;
use nbdgm_watch::{Alert, Engine, Packet};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Datagrams taken from the capture per engine round.
const BATCH: usize = 256;
/// Longest wait for a batch before the stop conditions are checked again.
const TICK: Duration = Duration::from_millis(100);
/// Learned names handed to the honey sender as seeds.
const HONEY_SEEDS: usize = 64;

/// The interface's addresses: (address, prefix length, IPv4 broadcast).
fn addresses(iface: &str) -> Vec<(IpAddr, u8, Option<Ipv4Addr>)> {
    let Ok(all) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    all.filter(|a| a.interface_name == iface)
        .filter_map(|a| {
            let addr = a.address?;
            let mask = a.netmask?;
            if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                let bcast = a.broadcast.and_then(|b| b.as_sockaddr_in().map(|s| s.ip()));
                let prefix = u32::from(m.ip()).count_ones() as u8;
                return Some((IpAddr::V4(ip.ip()), prefix, bcast));
            }
            let (ip, m) = (addr.as_sockaddr_in6()?, mask.as_sockaddr_in6()?);
            let prefix = u128::from(m.ip()).count_ones() as u8;
            Some((IpAddr::V6(ip.ip()), prefix, None))
        })
        .collect()
}

/// The subnets of `iface`, for `local_nets` when the configuration gives none.
pub(super) fn local_nets(iface: &str) -> Vec<IpNet> {
    addresses(iface)
        .into_iter()
        .filter_map(|(ip, prefix, _)| IpNet::new(ip, prefix).ok().map(|n| n.trunc()))
        .collect()
}

/// Stop and SIGUSR1 flags, set by a signal thread.
struct Flags {
    stop: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
}

/// SIGINT and SIGTERM set `stop`, SIGUSR1 sets `usr1` (tokio's signal handling on a
/// small thread of its own).
fn signal_flags() -> io::Result<Flags> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut int, mut term, mut usr1) = rt.block_on(async {
        Ok::<_, io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::user_defined1())?,
        ))
    })?;
    let flags = Flags {
        stop: Arc::new(AtomicBool::new(false)),
        usr1: Arc::new(AtomicBool::new(false)),
    };
    let (stop, u) = (flags.stop.clone(), flags.usr1.clone());
    std::thread::Builder::new()
        .name("watch-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        _ = int.recv() => stop.store(true, Ordering::Relaxed),
                        _ = term.recv() => stop.store(true, Ordering::Relaxed),
                        _ = usr1.recv() => u.store(true, Ordering::Relaxed),
                    }
                }
            })
        })?;
    Ok(flags)
}

/// The honey sender on `iface`'s first IPv4 address.
fn start_honey(
    iface: &str,
    args: &WatchArgs,
    engine: &mut Engine,
) -> Result<
    (
        HoneySender,
        std::sync::mpsc::Receiver<nbdgm_watch::honey::SentQuery>,
    ),
    WatchError,
> {
    let (source, prefix, bcast) = addresses(iface)
        .into_iter()
        .find_map(|(ip, p, b)| match ip {
            IpAddr::V4(v) => Some((v, p, b)),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            WatchError::Usage(format!(
                "--honey: {} has no IPv4 address",
                nbdgm_wire::text::escape(iface)
            ))
        })?;
    let broadcast = bcast.unwrap_or_else(|| {
        let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        Ipv4Addr::from(u32::from(source) | host)
    });
    let mut cfg = HoneyConfig::new(source, broadcast);
    cfg.interval = args.honey_interval;
    cfg.verify = args.honey_verify;
    engine.honey_mut().set_linger(cfg.linger);
    HoneySender::start(cfg, engine.learned_names(HONEY_SEEDS))
        .map_err(|e| WatchError::Usage(format!("--honey: {e}")))
}

/// Batches in flight from the capture thread; when full the thread waits and the
/// kernel buffer absorbs (then drops, counted) the rest.
const QUEUE: usize = 64;
/// Payload bytes in flight from the capture thread, at most (the same back-pressure).
const QUEUE_BYTES: usize = 8 << 20;

/// What the capture thread hands over.
enum FromCapture {
    Batch(Vec<UdpDatagram<'static>>),
    Failed(String),
}

/// The capture thread: reads batches until `stop`, keeping `stats` current. libpcap
/// may block in a read while nothing arrives, so the engine side never waits on it.
fn capture_thread(
    mut cap: LiveCapture,
    tx: mpsc::SyncSender<FromCapture>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<LiveStats>>,
    in_flight: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        if in_flight.load(Ordering::Relaxed) >= QUEUE_BYTES {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut batch = Vec::with_capacity(BATCH);
        let r = cap.next_batch(&mut batch, BATCH);
        if let (Ok(s), Ok(mut slot)) = (cap.stats(), stats.lock()) {
            *slot = s;
        }
        let msg = match r {
            Ok(0) => continue,
            Ok(_) => {
                in_flight.fetch_add(batch_bytes(&batch), Ordering::Relaxed);
                FromCapture::Batch(batch)
            }
            Err(e) => FromCapture::Failed(e.to_string()),
        };
        let failed = matches!(msg, FromCapture::Failed(_));
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

/// Payload bytes of a batch.
fn batch_bytes(batch: &[UdpDatagram<'static>]) -> usize {
    batch.iter().map(|d| d.payload.len()).sum()
}

/// Responders verified at most once per run, and this many at the same time.
const MAX_VERIFIED: usize = 256;
const VERIFY_PARALLEL: usize = 4;
/// Timeout of each verification connection.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// `--honey-verify`: honey alerts wait for the verification of their responder (once per
/// responder; later alerts get the same result) on a few threads, off the capture loop.
struct Verifier {
    done: std::collections::HashMap<IpAddr, Verification>,
    running: usize,
    tx: mpsc::SyncSender<(Alert, Verification)>,
    rx: mpsc::Receiver<(Alert, Verification)>,
    /// Alerts waiting for a thread.
    waiting: std::collections::VecDeque<Alert>,
}

impl Verifier {
    fn new() -> Verifier {
        let (tx, rx) = mpsc::sync_channel(MAX_VERIFIED);
        Verifier {
            done: std::collections::HashMap::new(),
            running: 0,
            tx,
            rx,
            waiting: std::collections::VecDeque::new(),
        }
    }

    /// Takes a honey alert; returns it at once when its responder is verified already
    /// (or the table is full: then it goes out unverified).
    fn take(&mut self, mut a: Alert) -> Option<Alert> {
        let ip = a.src.ip();
        if let Some(v) = self.done.get(&ip) {
            attach_verification(&mut a, v);
            return Some(a);
        }
        if self.done.len() + self.running + self.waiting.len() >= MAX_VERIFIED {
            return Some(a);
        }
        self.waiting.push_back(a);
        self.start();
        None
    }

    fn start(&mut self) {
        while self.running < VERIFY_PARALLEL {
            let Some(a) = self.waiting.pop_front() else {
                return;
            };
            let tx = self.tx.clone();
            let spawned = std::thread::Builder::new()
                .name("watch-verify".into())
                .spawn(move || {
                    let v = verify(a.src.ip(), VERIFY_TIMEOUT);
                    let _ = tx.send((a, v));
                });
            if spawned.is_ok() {
                self.running += 1;
            }
        }
    }

    /// Verified alerts, ready to print; waits up to `wait` for the first.
    fn ready(&mut self, wait: Duration) -> Vec<Alert> {
        let mut out = Vec::new();
        let first = if wait.is_zero() {
            self.rx.try_recv().ok()
        } else {
            self.rx.recv_timeout(wait).ok()
        };
        let mut next = first;
        while let Some((mut a, v)) = next {
            self.running = self.running.saturating_sub(1);
            attach_verification(&mut a, &v);
            self.done.insert(a.src.ip(), v);
            out.push(a);
            next = self.rx.try_recv().ok();
        }
        self.start();
        out
    }

    fn pending(&self) -> bool {
        self.running > 0 || !self.waiting.is_empty()
    }
}

/// One batch through the engine; honey alerts wait for their verification.
fn process_batch(
    batch: &[UdpDatagram<'static>],
    engine: &mut Engine,
    em: &mut Emitter,
    mut verifier: Option<&mut Verifier>,
) -> Result<(), WatchError> {
    let mut alerts = Vec::new();
    for d in batch {
        engine.process(&Packet::from_capture(d), &mut alerts);
        for a in alerts.drain(..) {
            let a = match verifier.as_deref_mut() {
                Some(v) if a.signature.id == HONEY_ANSWERED.id => v.take(a),
                _ => Some(a),
            };
            if let Some(a) = a {
                em.alert(&a)?;
            }
        }
    }
    Ok(())
}

/// Captures on `iface` into `engine`, alerts to `em`. Returns the capture's counters.
pub(super) fn run(
    iface: &str,
    args: &WatchArgs,
    engine: &mut Engine,
    em: &mut Emitter,
) -> Result<LiveStats, WatchError> {
    let opts = LiveOptions {
        ports: nbdgm_watch::engine::PORTS.to_vec(),
        ..LiveOptions::default()
    };
    let cap = LiveCapture::open(iface, opts).map_err(|e| WatchError::Usage(e.to_string()))?;
    let flags = signal_flags().map_err(super::io_at("cannot handle signals"))?;
    let mut honey = if args.honey {
        Some(start_honey(iface, args, engine)?)
    } else {
        None
    };
    let stats = Arc::new(Mutex::new(LiveStats::default()));
    let cap_stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    {
        let (stop, stats, bytes) = (cap_stop.clone(), stats.clone(), in_flight.clone());
        std::thread::Builder::new()
            .name("watch-capture".into())
            .spawn(move || capture_thread(cap, tx, stop, stats, bytes))
            .map_err(super::io_at("cannot start the capture thread"))?;
    }
    let mut verifier = args.honey_verify.then(Verifier::new);
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut rounds = 0u64;
    let mut result = Ok(());
    while !em.tally.done && !flags.stop.load(Ordering::Relaxed) {
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => left.min(TICK),
                None => break,
            },
            None => TICK,
        };
        if let Some((sender, hrx)) = &honey {
            // Register the queries before the answers they may draw are processed.
            while let Ok(q) = hrx.try_recv() {
                engine.honey_mut().register(&q);
            }
            rounds += 1;
            if rounds.is_multiple_of(600) {
                sender.update_seeds(engine.learned_names(HONEY_SEEDS));
            }
        }
        match rx.recv_timeout(wait) {
            Ok(FromCapture::Batch(batch)) => {
                in_flight.fetch_sub(batch_bytes(&batch), Ordering::Relaxed);
                process_batch(&batch, engine, em, verifier.as_mut())?;
            }
            Ok(FromCapture::Failed(e)) => {
                result = Err(WatchError::Usage(e));
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(v) = &mut verifier {
            for a in v.ready(Duration::ZERO) {
                em.alert(&a)?;
            }
        }
        if flags.usr1.swap(false, Ordering::Relaxed) {
            if let Some(path) = &args.inventory {
                if let Err(e) = write_inventory(path, engine) {
                    eprintln!("nbdgm watch: {e}");
                }
            }
        }
    }
    // The capture thread ends at its next read timeout or packet, or with the process.
    cap_stop.store(true, Ordering::Relaxed);
    // What was captured before the end is still looked at (at most the queue's bound).
    if result.is_ok() {
        while let Ok(FromCapture::Batch(batch)) = rx.try_recv() {
            if em.tally.done {
                break;
            }
            process_batch(&batch, engine, em, verifier.as_mut())?;
        }
    }
    // Verifications under way finish within their timeouts (two connections each).
    if let Some(v) = &mut verifier {
        let until = Instant::now() + VERIFY_TIMEOUT * 3;
        while v.pending() && Instant::now() < until {
            for a in v.ready(Duration::from_millis(100)) {
                em.alert(&a)?;
            }
        }
    }
    if let Some((sender, _)) = honey.take() {
        if args.stats {
            let s = serde_json::json!({ "honey_sender": sender.stats() });
            eprintln!("{s}");
        }
        sender.stop();
    }
    let stats = stats.lock().map(|s| s.clone()).unwrap_or_default();
    if args.stats {
        // The kernel's counters, whatever the output format (the text summary has them
        // only on a terminal): `dropped` is the capture buffer overflowing.
        let s = serde_json::json!({ "capture": {
            "received": stats.received,
            "dropped": stats.dropped,
            "if_dropped": stats.if_dropped,
            "frames": stats.decoder.frames,
            "udp_matched": stats.decoder.udp_matched,
        }});
        eprintln!("{s}");
    }
    result.map(|()| stats)
}
