//! One interface at run time: its sockets, its sans-IO [`Node`], and the checks at the
//! door (access lists, per-source rate limits, reply size and rate) (RFC 1002 §5.1, §5.3).
//!
//! The worker owns everything it touches, so the receive path takes no locks: read a
//! batch from the ready socket, check ACL and rate limit, hand the packet to the node,
//! then send what the node queued and pass its events on.

use crate::acl::Acl;
use crate::messenger::{Messenger, MessengerConfig, MessengerStats};
use crate::ratelimit::{LogLimiter, RateLimiter, RateStats};
use crate::reply_gate::{GateStats, Refusal, ReplyGate, ReplyService};
use crate::sockets::InterfaceSockets;
use nbdgm_api as proto;
use nbdgm_api::NameState as ApiNameState;
use nbdgm_browser::{Browser, BrowserConfig, BrowserStats};
use nbdgm_node::{
    Delivery, Event, LookupTarget, Name, NameAddress, NameState, Node, NodeConfig, SendMode,
    SendRequest, Service,
};
use nbdgm_runtime::driver::{Driver, Packet, Recv, Wake, BATCH, RECV_SLOTS};
use nbdgm_runtime::engines::{Engines, BROWSER_ROUNDS};
use nbdgm_runtime::sockets::Role;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Reads in a row that must find datagrams piling up before moderation.
const MODERATE_AFTER: u32 = 2;
/// Datagrams one read must find to count as piling up (a requester waiting for each
/// answer in turn never has more than one queued).
const MODERATE_MIN: usize = 2;

/// Longest wait for the release broadcasts at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Where delivered datagrams and name changes go (the API hub in the daemon).
pub trait Outlet: Send + Sync + 'static {
    /// True when somebody could want datagrams (skip building events otherwise).
    fn wants_datagrams(&self) -> bool;
    /// `to`: the local address and port it arrived at; `except`: the API client that
    /// sent it (a local copy), which does not get it.
    fn datagram(
        &self,
        interface: Ipv4Addr,
        to: SocketAddrV4,
        delivery: &Delivery,
        except: Option<u64>,
    );
    fn name(&self, interface: Ipv4Addr, name: &Name, state: ApiNameState, by: Option<SocketAddrV4>);
    /// The worker has passed on its events of one receive batch: wake whoever
    /// [`Outlet::datagram`] queued for (it may wait for this).
    fn flush(&self) {}
}

/// Door checks and limits of one worker; replaced as a whole on reload.
#[derive(Clone)]
pub struct Door {
    pub name_acl: Arc<Acl>,
    pub datagram_acl: Arc<Acl>,
    /// Received packets per source: rate per second and burst.
    pub rx_limit: (f64, u32),
    /// Replies per destination.
    pub reply_limit: (f64, u32),
    pub max_sources: usize,
    /// Answers may be at most this many times the request's size, and all answers to
    /// one address at most this many times what it sent (the reply gate).
    pub reply_amplification: usize,
    pub drop_log_per_s: u32,
    /// Receive moderation's wait (`[limits] rx_moderation_us`; zero: off).
    pub rx_moderation: Duration,
}

/// A failed command, as the API reports it.
#[derive(Debug, Clone)]
pub struct CmdError {
    pub code: &'static str,
    pub message: String,
}

impl CmdError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        CmdError {
            code,
            message: message.into(),
        }
    }
}

/// Where a command's typed answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, CmdError>>;

/// The result of `release`.
#[derive(Debug, Clone, Serialize)]
pub struct Released {
    pub name: String,
    pub state: ApiNameState,
}

impl Released {
    pub fn new(name: &Name) -> Self {
        Released {
            name: name.to_string(),
            state: ApiNameState::Released,
        }
    }
}

/// One interface's counters: the engines' and the runtime's (the answer to `Stats`).
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceStats {
    pub interface: Ipv4Addr,
    pub browser: Option<BrowserStats>,
    pub messenger: MessengerStats,
    pub roles: Value,
    pub node: nbdgm_node::Stats,
    pub runtime: RuntimeStats,
    pub rate_limit_rx: RateStats,
    pub rate_limit_reply: RateStats,
    pub reply_gate: GateStats,
    pub logs_suppressed: u64,
}

/// A command waiting for the engine's answer.
enum Pending {
    /// `bytes`: the user data's length.
    Send {
        bytes: usize,
        /// The API client that sent it: it gets no local copy of its own datagram.
        client: Option<u64>,
        reply: Reply<proto::SendResult>,
    },
    Lookup(Reply<proto::LookupResult>),
    Status(Reply<proto::StatusResult>),
}

/// A register or release caller waiting for the name's outcome.
enum NameWaiter {
    Register {
        group: bool,
        reply: Reply<proto::RegisterResult>,
    },
    Release(Reply<Released>),
}

impl NameWaiter {
    /// `r`: the name's new state, or why it has none.
    fn answer(self, name: &Name, r: Result<ApiNameState, CmdError>) {
        match self {
            NameWaiter::Register { group, reply } => {
                let _ = reply.send(r.map(|state| proto::RegisterResult {
                    name: name.to_string(),
                    group,
                    state,
                }));
            }
            NameWaiter::Release(reply) => {
                let _ = reply.send(r.map(|state| Released {
                    name: name.to_string(),
                    state,
                }));
            }
        }
    }
}

/// Commands from the dispatcher.
pub enum Command {
    Register {
        name: Name,
        group: bool,
        reply: Reply<proto::RegisterResult>,
    },
    Release {
        name: Name,
        reply: Reply<Released>,
    },
    Send {
        request: SendRequest,
        /// The API client that asked (its id in the hub), when one did.
        client: Option<u64>,
        reply: Reply<proto::SendResult>,
    },
    Lookup {
        name: Name,
        target: LookupTarget,
        reply: Reply<proto::LookupResult>,
    },
    Status {
        address: Ipv4Addr,
        name: Option<Name>,
        reply: Reply<proto::StatusResult>,
    },
    Names {
        reply: Reply<proto::InterfaceNames>,
    },
    Cache {
        reply: Reply<proto::CacheResult>,
    },
    Stats {
        reply: Reply<InterfaceStats>,
    },
    /// The browse list (`None` without a browser); `workgroup` filters the servers.
    Browse {
        workgroup: Option<String>,
        /// (offset, limit) of the servers.
        page: Option<(usize, usize)>,
        /// Bytes of JSON the answer may take (see `browse::to_proto_capped`).
        budget: usize,
        /// Only entries heard on this subnet (none synced from another browser).
        local: bool,
        reply: Reply<Option<proto::BrowseInterface>>,
    },
    Reconfigure {
        node: Box<NodeConfig>,
        door: Door,
        names: Vec<(Name, bool)>,
        apps: Box<AppsConfig>,
    },
    /// The NBNS role's table (local API `wins_*`).
    Nbns {
        op: crate::nbns_state::NbnsAdmin,
        reply: Reply<crate::nbns_state::NbnsAdminReply>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Settings of the mailslot applications a worker runs.
#[derive(Debug, Clone, Default)]
pub struct AppsConfig {
    pub messenger: MessengerConfig,
    /// NBNS and NBDD roles (settings fixed at start-up).
    pub roles: Option<crate::roles::RoleSettings>,
    /// `None`: no browser on this interface.
    pub browser: Option<BrowserConfig>,
    /// `[browser] sync_http_port` (0: list syncs by RAP only).
    pub sync_http_port: u16,
}

/// Counters of the runtime side (the engine keeps its own).
#[derive(Debug, Default, Clone, Serialize)]
pub struct RuntimeStats {
    pub rx_name: u64,
    pub rx_datagram: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    /// Receive moderation's waits ([`Worker::moderate`]).
    pub rx_moderated: u64,
    pub acl_denied_name: u64,
    pub acl_denied_datagram: u64,
    pub rate_limited_rx: u64,
    /// Answers the reply gate refused by rate (all services; by service in `reply_gate`).
    pub rate_limited_reply: u64,
    /// Answers the reply gate refused by size or byte budget.
    pub amplification_dropped: u64,
    pub tx: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub delivered_to_api: u64,
    /// Browser frames the node refused to send (e.g. our name not registered yet).
    pub browser_send_errors: u64,
    /// HostAnnouncements not fed to the browser: identical repeats within a second
    /// (`nbdgm_runtime::engines::repeats`), and those not remembered for the source cap.
    pub browser_repeats_skipped: u64,
    pub browser_repeats_uncached: u64,
}

pub struct Worker<O: Outlet> {
    addr: Ipv4Addr,
    /// Sockets, node and browser: the runtime's driver (`nbdgm_runtime::driver`).
    driver: Driver,
    door: Door,
    rx_limiter: RateLimiter,
    /// Every answer to a received packet passes here (issue 12 item 2).
    gate: ReplyGate,
    log_limiter: LogLimiter,
    outlet: Arc<O>,
    stats: RuntimeStats,
    /// Commands waiting for the engine's answer, by request id.
    pending: HashMap<u64, Pending>,
    /// The names from the configuration file (released when a reload drops them).
    config_names: Vec<(Name, bool)>,
    /// Register and release callers waiting for the name's outcome.
    name_waiters: HashMap<Name, Vec<NameWaiter>>,
    messenger: Messenger,
    roles: crate::roles::RoleRuntime,
    /// Results of the list fetches (backup browser, one at a time) and syncs (across
    /// subnets, at most `MAX_SYNCS_RUNNING`) run on threads.
    sync_tx: mpsc::Sender<crate::browse::Fetched>,
    sync_rx: mpsc::Receiver<crate::browse::Fetched>,
    /// List syncs running.
    syncs_running: usize,
    /// `[browser] sync_http_port`.
    sync_http_port: u16,
    /// Receive moderation: reads in a row that found datagrams.
    busy_reads: u32,
}

/// An explicit address with port 0 means our own datagram port.
fn with_port(mut r: SendRequest, port: u16) -> SendRequest {
    match &mut r.mode {
        SendMode::UniqueAt(a) | SendMode::GroupAt(a) if a.port() == 0 => a.set_port(port),
        _ => {}
    }
    r
}

/// A name's address as the API shows it.
fn api_address(a: &NameAddress) -> proto::NameAddress {
    proto::NameAddress {
        address: a.addr.into(),
        group: a.group,
        node_type: a.ont.as_str().to_string(),
    }
}

/// Count a send's outcome in the stats; a failure is logged (rate-limited).
fn count_sent(
    stats: &mut RuntimeStats,
    limiter: &mut LogLimiter,
    addr: Ipv4Addr,
    to: SocketAddrV4,
    sent: io::Result<usize>,
    now: Instant,
) {
    match sent {
        Ok(n) => {
            stats.tx += 1;
            stats.tx_bytes += n as u64;
        }
        Err(e) => {
            stats.tx_errors += 1;
            if limiter.allow(now).is_some() {
                warn!(interface = %addr, %to, error = %e, "send failed");
            }
        }
    }
}

/// What the worker waits for besides sockets and timers.
enum Other {
    Fetched(crate::browse::Fetched),
    Command(Option<Command>),
}

impl<O: Outlet> Worker<O> {
    pub fn new(
        node: Node,
        sockets: InterfaceSockets,
        door: Door,
        outlet: Arc<O>,
        apps: AppsConfig,
    ) -> Self {
        let addr = node.config().interface.addr;
        let browser = apps.browser.and_then(|c| {
            let seed = nbdgm_base::random::os_seed();
            Browser::new(c, Instant::now(), seed)
                .map_err(|e| warn!(interface = %addr, error = %e, "browser not started"))
                .ok()
        });
        let roles = crate::roles::RoleRuntime::new(apps.roles.unwrap_or_default(), Instant::now())
            .unwrap_or_else(|e| {
                warn!(interface = %addr, error = %e, "NBNS/NBDD role not started");
                crate::roles::RoleRuntime::none()
            });
        let (sync_tx, sync_rx) = mpsc::channel(nbdgm_browser::engine::MAX_SYNCS_RUNNING + 1);
        Worker {
            addr,
            roles,
            rx_limiter: RateLimiter::new(door.rx_limit.0, door.rx_limit.1, door.max_sources),
            gate: ReplyGate::new(door.reply_amplification, door.reply_limit, door.max_sources),
            log_limiter: LogLimiter::new(door.drop_log_per_s),
            door,
            driver: Driver::new(Engines::new(node, browser), sockets, false),
            outlet,
            stats: RuntimeStats::default(),
            pending: HashMap::new(),
            config_names: Vec::new(),
            name_waiters: HashMap::new(),
            messenger: Messenger::new(&apps.messenger),
            sync_tx,
            sync_rx,
            syncs_running: 0,
            sync_http_port: apps.sync_http_port,
            busy_reads: 0,
        }
    }

    /// Register the configured names, then serve until shutdown.
    pub async fn run(mut self, names: Vec<(Name, bool)>, mut commands: mpsc::Receiver<Command>) {
        let now = Instant::now();
        self.config_names = names.clone();
        for (name, group) in names {
            if let Err(e) = self.driver.engines.node.register(now, name.clone(), group) {
                warn!(interface = %self.addr, %name, error = %e, "cannot register name");
            }
        }
        if let Some(b) = &mut self.driver.engines.browser {
            b.start(now);
        }
        loop {
            self.flush().await;
            self.moderate();
            let sync_rx = &mut self.sync_rx;
            let other = async {
                tokio::select! {
                    Some(r) = sync_rx.recv() => Other::Fetched(r),
                    cmd = commands.recv() => Other::Command(cmd),
                }
            };
            match self.driver.wait(self.roles.poll_timeout(), other).await {
                Wake::Readable(role, r) => self.ready(r, role),
                Wake::Timer => {
                    let now = Instant::now();
                    self.driver.engines.handle_timeout(now);
                    self.roles.handle_timeout(now);
                }
                Wake::Other(Other::Fetched(r)) => self.fetched(r),
                Wake::Other(Other::Command(cmd)) => match cmd {
                    Some(Command::Shutdown { done }) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(cmd) => self.command(cmd),
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
            }
        }
    }

    /// Receive moderation on the datagram service: while datagrams pile up faster than
    /// the worker reads them (the last [`MODERATE_AFTER`] reads each found at least
    /// [`MODERATE_MIN`] but less than a full batch), wait `rx_moderation` before the next
    /// read, so that it takes a batch: fewer system calls and wake-ups per datagram,
    /// for at most that much more latency, and only while a stream arrives. A read
    /// that finds fewer or a full batch ends it, and so does any name-service read:
    /// a requester waiting for its answers (one at a time or a window of them) is
    /// never made to wait. The worker has its own thread.
    fn moderate(&mut self) {
        let wait = self.door.rx_moderation;
        if self.busy_reads >= MODERATE_AFTER && !wait.is_zero() {
            self.stats.rx_moderated += 1;
            std::thread::sleep(wait);
        }
    }

    /// Count a read of `n` datagrams from `role`'s socket for [`Worker::moderate`].
    fn note_read(&mut self, role: Role, n: usize) {
        let piling_up = (MODERATE_MIN..RECV_SLOTS).contains(&n)
            && matches!(role, Role::DatagramUnicast | Role::DatagramBroadcast);
        self.busy_reads = if piling_up {
            self.busy_reads.saturating_add(1)
        } else {
            0
        };
    }

    /// Read batches (`recvmmsg`, up to [`BATCH`] packets) from the ready socket, each
    /// packet through the door.
    fn ready(&mut self, r: io::Result<()>, role: Role) {
        if r.is_err() {
            self.stats.rx_errors += 1;
            return;
        }
        let mut read = 0;
        while read < BATCH {
            let n = match self.driver.recv_batch(role) {
                Ok(n) => n,
                Err(e) => {
                    self.stats.rx_errors += 1;
                    if self.log_limiter.allow(Instant::now()).is_some() {
                        debug!(interface = %self.addr, error = %e, "receive error");
                    }
                    return;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                match self.driver.received(i) {
                    Some(Recv::Packet(p)) => self.packet(now, p),
                    Some(Recv::Skipped) | None => {} // IPv6 cannot reach an IPv4 socket
                    Some(Recv::Truncated) => self.stats.rx_errors += 1,
                }
            }
            self.note_read(role, n);
            if n < RECV_SLOTS {
                return;
            }
            read += n;
        }
    }

    /// The door (access list, rate limit, reply credit), the roles, then the node.
    fn packet(&mut self, now: Instant, p: Packet) {
        let Packet {
            from,
            service,
            broadcast,
            len,
            ..
        } = p;
        let ip = *from.ip();
        self.stats.rx_bytes += len as u64;
        let acl = match service {
            Service::Name => {
                self.stats.rx_name += 1;
                &self.door.name_acl
            }
            Service::Datagram => {
                self.stats.rx_datagram += 1;
                &self.door.datagram_acl
            }
        };
        if !acl.permits(ip) {
            match service {
                Service::Name => self.stats.acl_denied_name += 1,
                Service::Datagram => self.stats.acl_denied_datagram += 1,
            }
            self.drop_log(from, "access list");
            return;
        }
        if !self.rx_limiter.check(ip, now) {
            self.stats.rate_limited_rx += 1;
            self.drop_log(from, "rate limit");
            return;
        }
        // What this source sent is what answers to it may spend (× the factor).
        self.gate.credit(ip, len, now);
        if !self.roles.is_empty() {
            let (engines, bytes) = self.driver.packet(&p);
            let to_node = match service {
                Service::Name => {
                    let node = &engines.node;
                    self.roles
                        .route_name(now, from, broadcast, bytes, |n| node.holds(n))
                }
                Service::Datagram => self.roles.route_datagram(now, from, broadcast, bytes),
            };
            if !to_node {
                return;
            }
        }
        self.driver.deliver(now, &p);
    }

    fn drop_log(&mut self, from: SocketAddrV4, reason: &str) {
        if self.log_limiter.allow(Instant::now()).is_some() {
            info!(interface = %self.addr, %from, reason, "dropped packet");
        }
    }

    /// Hand the browser's wishes to the node, send what the node queued, pass its
    /// events on (browser frames go back to the browser); repeat while that made work.
    async fn flush(&mut self) {
        for _ in 0..BROWSER_ROUNDS {
            self.pump_browser();
            self.roles
                .drive(Instant::now(), &mut self.driver.engines.node);
            self.transmit().await;
            self.drain_events();
            if !self.driver.engines.take_fed() {
                break;
            }
        }
    }

    /// The node's events: to the pairing first (browser frames, name outcomes), then to
    /// the daemon's side (messenger, API, waiting commands).
    fn drain_events(&mut self) {
        let now = Instant::now();
        while let Some(ev) = self.driver.engines.node.poll_event() {
            if let Some(a) = self.driver.engines.observe(now, &ev) {
                self.domain_master_aside(a);
            }
            self.event(ev);
        }
        self.outlet.flush();
    }

    /// Send what the roles and the node queued, in that order, one `sendmmsg` per batch
    /// of one service's datagrams (each still through the reply gate, and counted).
    async fn transmit(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.roles.poll_transmit() {
            let (service, to, bytes) = (t.service, t.to, t.bytes);
            if let Some(request_len) = t.reply_to {
                let who = match service {
                    Service::Name => ReplyService::Nbns,
                    Service::Datagram => ReplyService::Nbdd,
                };
                if !self.pass_gate(who, to, bytes.len(), request_len, now) {
                    continue;
                }
            }
            // The roles' answers are dropped when the kernel queue is full.
            self.queue(service, to, &bytes, false, now).await;
        }
        self.send_queued(false, now).await;
        let limiter = &mut self.log_limiter;
        self.roles
            .log_events(self.addr, || limiter.allow(now).is_some());
        while let Some(t) = self.driver.engines.node.poll_transmit() {
            if let Some(request_len) = t.reply_to {
                let who = match (t.app_reply, t.service) {
                    (true, _) => ReplyService::Browser,
                    (false, Service::Name) => ReplyService::Name,
                    (false, Service::Datagram) => ReplyService::DatagramError,
                };
                if !self.pass_gate(who, t.to, t.bytes.len(), request_len, now) {
                    continue;
                }
            }
            // A full kernel queue is waited for, never longer than a second.
            self.queue(t.service, t.to, &t.bytes, true, now).await;
        }
        self.send_queued(true, now).await;
    }

    /// Queue a datagram for the next `sendmmsg`; a full queue, or one of the other
    /// service, is sent first (`wait` as in [`Worker::send_queued`]).
    async fn queue(
        &mut self,
        service: Service,
        to: SocketAddrV4,
        b: &[u8],
        wait: bool,
        now: Instant,
    ) {
        if !self.driver.queue(service, to, b) {
            self.send_queued(wait, now).await;
            // An empty queue takes any datagram.
            let queued = self.driver.queue(service, to, b);
            debug_assert!(queued);
        }
    }

    /// Send the queued datagrams, counting each; `wait`: a full kernel queue is waited
    /// for, never longer than a second without progress, else the rest is dropped.
    async fn send_queued(&mut self, wait: bool, now: Instant) {
        let (stats, limiter, addr) = (&mut self.stats, &mut self.log_limiter, self.addr);
        self.driver
            .send_queued(wait, |to, sent| {
                count_sent(stats, limiter, addr, to, sent, now)
            })
            .await;
    }

    /// The reply gate; refusals are counted (by reason and service in `reply_gate`).
    fn pass_gate(
        &mut self,
        who: ReplyService,
        to: SocketAddrV4,
        len: usize,
        request_len: usize,
        now: Instant,
    ) -> bool {
        match self.gate.check(who, *to.ip(), len, request_len, now) {
            Ok(()) => true,
            Err(Refusal::Rate) => {
                self.stats.rate_limited_reply += 1;
                false
            }
            Err(Refusal::Amplification | Refusal::Budget) => {
                self.stats.amplification_dropped += 1;
                false
            }
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::Delivered(d) => {
                // The browser got its frames from the pairing (`Engines::observe`).
                if d.is_mailslot(nbdgm_wire::mailslot::MESSNGR) {
                    self.messenger.on_delivery(self.addr, &d);
                }
                if self.outlet.wants_datagrams() {
                    self.stats.delivered_to_api += 1;
                    let cfg = self.driver.engines.node.config();
                    let ip = if d.broadcast {
                        cfg.interface.broadcast()
                    } else {
                        self.addr
                    };
                    let to = SocketAddrV4::new(ip, cfg.datagram_port);
                    // A local copy of a client's own send: not back to that client.
                    let except = d.local_copy.and_then(|id| match self.pending.get(&id.0) {
                        Some(Pending::Send { client, .. }) => *client,
                        _ => None,
                    });
                    self.outlet.datagram(self.addr, to, &d, except);
                }
            }
            Event::NameRegistered { name, group } => {
                info!(interface = %self.addr, %name, group, "name registered");
                self.outlet
                    .name(self.addr, &name, ApiNameState::Registered, None);
                self.answer_name(&name, Ok(ApiNameState::Registered));
            }
            Event::NameConflict { name, by, reason } => {
                warn!(interface = %self.addr, %name, by = ?by, reason = ?reason, "name conflict");
                self.outlet
                    .name(self.addr, &name, ApiNameState::Conflict, by);
                let who = by
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "another node".into());
                self.answer_name(
                    &name,
                    Err(CmdError::new(
                        "conflict",
                        format!("{name} is held by {who} ({reason:?})"),
                    )),
                );
            }
            Event::NameReleased { name } => {
                info!(interface = %self.addr, %name, "name released");
                self.outlet
                    .name(self.addr, &name, ApiNameState::Released, None);
                self.answer_name(&name, Ok(ApiNameState::Released));
            }
            Event::LookupDone { id, result, .. }
                if self.roles.lookup_done(Instant::now(), id.0, &result) => {}
            Event::LookupDone { id, name, result } => {
                if let Some(Pending::Lookup(reply)) = self.pending.remove(&id.0) {
                    let r = match result {
                        Ok(addrs) => Ok(proto::LookupResult {
                            name: name.to_string(),
                            addresses: addrs.iter().map(api_address).collect(),
                        }),
                        Err(e) => Err(CmdError::new("not_found", format!("{name}: {e}"))),
                    };
                    let _ = reply.send(r);
                }
            }
            Event::StatusDone { id, addr, result } => {
                if let Some(Pending::Status(reply)) = self.pending.remove(&id.0) {
                    let r = match result {
                        Ok(st) => Ok(proto::StatusResult::from_names(
                            addr.into(),
                            st.names.iter().map(|n| (&n.name, n.flags)),
                            st.unit_id,
                        )),
                        Err(e) => Err(CmdError::new("timeout", format!("{addr}: {e}"))),
                    };
                    let _ = reply.send(r);
                }
            }
            Event::SendDone { id, result } => {
                if let Some(Pending::Send { bytes, reply, .. }) = self.pending.remove(&id.0) {
                    let r = match result {
                        Ok(info) => Ok(proto::SendResult {
                            to: info.to.into(),
                            fragments: u32::try_from(info.fragments).unwrap_or(u32::MAX),
                            bytes,
                        }),
                        Err(e) => Err(CmdError::new("not_found", e.to_string())),
                    };
                    let _ = reply.send(r);
                }
            }
            Event::Dropped { reason, from } => {
                if self.log_limiter.allow(Instant::now()).is_some() {
                    debug!(interface = %self.addr, %from, reason = ?reason, "dropped");
                }
            }
            Event::SourceIpMismatch { from, header } => {
                if self.log_limiter.allow(Instant::now()).is_some() {
                    warn!(interface = %self.addr, %from, %header, "SOURCE_IP differs from the UDP source");
                }
            }
        }
    }

    fn answer_name(&mut self, name: &Name, r: Result<ApiNameState, CmdError>) {
        if let Some(waiters) = self.name_waiters.remove(name) {
            for w in waiters {
                w.answer(name, r.clone());
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Register { name, group, reply } => self.register(now, name, group, reply),
            Command::Release { name, reply } => self.release(now, name, reply),
            Command::Send {
                request,
                client,
                reply,
            } => self.send(now, request, client, reply),
            Command::Lookup {
                name,
                target,
                reply,
            } => {
                let r = self.driver.engines.node.lookup(now, name, target);
                self.start(r.map(|id| id.0), "busy", Pending::Lookup(reply));
            }
            Command::Status {
                address,
                name,
                reply,
            } => {
                let r = self.driver.engines.node.node_status(now, address, name);
                self.start(r.map(|id| id.0), "busy", Pending::Status(reply));
            }
            Command::Names { reply } => {
                let _ = reply.send(Ok(self.names_reply()));
            }
            Command::Cache { reply } => {
                let _ = reply.send(Ok(self.cache_reply()));
            }
            Command::Nbns { op, reply } => {
                let _ = reply.send(self.roles.nbns_admin(Instant::now(), op));
            }
            Command::Stats { reply } => {
                let _ = reply.send(Ok(self.stats_reply()));
            }
            Command::Browse {
                workgroup,
                page,
                budget,
                local,
                reply,
            } => {
                let r = self.browse_reply(workgroup.as_deref(), page, budget, local);
                let _ = reply.send(Ok(r));
            }
            Command::Reconfigure {
                node,
                door,
                names,
                apps,
            } => {
                self.messenger.set_config(&apps.messenger);
                self.reconfigure_browser(apps.browser);
                self.reconfigure(*node, door, names)
            }
            Command::Shutdown { .. } => {} // handled in run()
        }
    }

    /// `register`: an active name is answered now; otherwise the caller waits for
    /// the outcome.
    fn register(
        &mut self,
        now: Instant,
        name: Name,
        group: bool,
        reply: Reply<proto::RegisterResult>,
    ) {
        let existing = self
            .driver
            .engines
            .node
            .names()
            .into_iter()
            .find(|e| e.name == name);
        if let Some(e) = existing {
            if e.state == NameState::Active {
                let _ = reply.send(Ok(proto::RegisterResult {
                    name: name.to_string(),
                    group: e.group,
                    state: ApiNameState::Registered,
                }));
                return;
            }
        }
        match self.driver.engines.node.register(now, name.clone(), group) {
            Ok(()) => self
                .name_waiters
                .entry(name)
                .or_default()
                .push(NameWaiter::Register { group, reply }),
            Err(e) => {
                let _ = reply.send(Err(CmdError::new("bad_request", e.to_string())));
            }
        }
    }

    /// `release`: the caller waits for the outcome.
    fn release(&mut self, now: Instant, name: Name, reply: Reply<Released>) {
        match self.driver.engines.node.release(now, &name) {
            Ok(()) => self
                .name_waiters
                .entry(name)
                .or_default()
                .push(NameWaiter::Release(reply)),
            Err(e) => {
                let _ = reply.send(Err(CmdError::new("not_found", e.to_string())));
            }
        }
    }

    /// `send`: the caller waits for the engine's `SendDone`. `client` is remembered
    /// with it so that the node's local copy of a group or broadcast datagram
    /// ([`Delivery::local_copy`]) goes to the other subscribers, not back to the sender.
    fn send(
        &mut self,
        now: Instant,
        request: SendRequest,
        client: Option<u64>,
        reply: Reply<proto::SendResult>,
    ) {
        let bytes = request.data.len();
        let port = self.driver.engines.node.config().datagram_port;
        let r = self.driver.engines.node.send(now, with_port(request, port));
        self.start(
            r.map(|id| id.0),
            "bad_request",
            Pending::Send {
                bytes,
                client,
                reply,
            },
        );
    }

    /// A send, lookup or status request the engine started (`Ok(id)`) waits for its
    /// answer; one it refused is answered now with `code`.
    fn start<E: std::fmt::Display>(&mut self, r: Result<u64, E>, code: &'static str, p: Pending) {
        match r {
            Ok(id) => {
                self.pending.insert(id, p);
            }
            Err(e) => {
                let e = CmdError::new(code, e.to_string());
                match p {
                    Pending::Send { reply, .. } => {
                        let _ = reply.send(Err(e));
                    }
                    Pending::Lookup(reply) => {
                        let _ = reply.send(Err(e));
                    }
                    Pending::Status(reply) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// `names`: this interface's names and their states.
    fn names_reply(&self) -> proto::InterfaceNames {
        let names: Vec<proto::NameEntry> = self
            .driver
            .engines
            .node
            .names()
            .into_iter()
            .map(|e| proto::NameEntry {
                name: e.name.to_string(),
                group: e.group,
                state: match e.state {
                    NameState::Registering => proto::NameState::Registering,
                    NameState::Active => proto::NameState::Registered,
                    NameState::Conflict => proto::NameState::Conflict,
                    NameState::Releasing => proto::NameState::Released,
                },
                persistent: false,
                owner: None,
            })
            .collect();
        proto::InterfaceNames {
            interface: self.addr.into(),
            names,
        }
    }

    /// `cache`: the remote-name cache.
    fn cache_reply(&self) -> proto::CacheResult {
        let entries: Vec<proto::CacheEntry> = self
            .driver
            .engines
            .node
            .cache()
            .into_iter()
            .map(|e| proto::CacheEntry {
                name: e.name.to_string(),
                addresses: e.addresses.iter().map(api_address).collect(),
                ttl: u32::try_from(e.expires_in_secs).unwrap_or(u32::MAX),
            })
            .collect();
        proto::CacheResult { entries }
    }

    /// `stats`: the engines' and the runtime's counters.
    fn stats_reply(&self) -> InterfaceStats {
        InterfaceStats {
            interface: self.addr,
            browser: self
                .driver
                .engines
                .browser
                .as_ref()
                .map(|b| b.stats().clone()),
            messenger: self.messenger.stats(),
            roles: self.roles.stats(),
            node: self.driver.engines.node.stats().clone(),
            runtime: {
                let r = self.driver.engines.repeat_stats();
                RuntimeStats {
                    browser_repeats_skipped: r.skipped,
                    browser_repeats_uncached: r.full,
                    ..self.stats.clone()
                }
            },
            rate_limit_rx: self.rx_limiter.stats(),
            rate_limit_reply: self.gate.rate_stats(),
            reply_gate: self.gate.stats(),
            logs_suppressed: self.log_limiter.suppressed(),
        }
    }

    /// `browse`: the browse list (`null` without a browser), paged and capped.
    fn browse_reply(
        &self,
        workgroup: Option<&str>,
        page: Option<(usize, usize)>,
        budget: usize,
        local: bool,
    ) -> Option<proto::BrowseInterface> {
        let b = self.driver.engines.browser.as_ref()?;
        let node = &self.driver.engines.node;
        Some(crate::browse::browse_interface(
            self.addr,
            node.config().announce_address.unwrap_or(self.addr),
            b.list(Instant::now()),
            workgroup,
            page,
            budget,
            local,
        ))
    }

    fn reconfigure_browser(&mut self, cfg: Option<BrowserConfig>) {
        let now = Instant::now();
        match (&mut self.driver.engines.browser, cfg) {
            (Some(b), Some(c)) => {
                if let Err(e) = b.set_config(c, now) {
                    warn!(interface = %self.addr, error = %e, "reload: browser settings rejected");
                }
            }
            (Some(b), None) => {
                b.shutdown(now);
                self.pump_browser();
                self.driver.engines.browser = None;
            }
            (None, Some(c)) => {
                let seed = nbdgm_base::random::os_seed();
                match Browser::new(c, now, seed) {
                    Ok(mut b) => {
                        b.start(now);
                        // Names we already hold count as registered for the browser.
                        for e in self.driver.engines.node.names() {
                            if e.state == NameState::Active {
                                b.name_registered(now, &e.name);
                            }
                        }
                        self.driver.engines.browser = Some(b);
                    }
                    Err(e) => {
                        warn!(interface = %self.addr, error = %e, "reload: browser not started")
                    }
                }
            }
            (None, None) => {}
        }
    }

    fn reconfigure(&mut self, node: NodeConfig, door: Door, names: Vec<(Name, bool)>) {
        let now = Instant::now();
        if let Err(e) = self.driver.engines.node.set_config(node) {
            warn!(interface = %self.addr, error = %e, "reload: engine settings rejected, keeping the old ones");
        }
        if door.rx_limit != self.door.rx_limit || door.max_sources != self.door.max_sources {
            self.rx_limiter = RateLimiter::new(door.rx_limit.0, door.rx_limit.1, door.max_sources);
        }
        if door.reply_limit != self.door.reply_limit
            || door.max_sources != self.door.max_sources
            || door.reply_amplification != self.door.reply_amplification
        {
            self.gate =
                ReplyGate::new(door.reply_amplification, door.reply_limit, door.max_sources);
        }
        self.log_limiter = LogLimiter::new(door.drop_log_per_s);
        self.door = door;
        // Names: register the new ones; configured names that left the file are released.
        // Names registered through the API are not the file's business.
        let current: Vec<Name> = self
            .driver
            .engines
            .node
            .names()
            .into_iter()
            .map(|e| e.name)
            .collect();
        for (name, group) in &names {
            if !current.contains(name) {
                if let Err(e) = self.driver.engines.node.register(now, name.clone(), *group) {
                    warn!(interface = %self.addr, %name, error = %e, "reload: cannot register");
                }
            }
        }
        for (old, _) in &self.config_names {
            if !names.iter().any(|(n, _)| n == old) {
                if let Err(e) = self.driver.engines.node.release(now, old) {
                    warn!(interface = %self.addr, name = %old, error = %e, "reload: cannot release");
                }
            }
        }
        self.config_names = names;
        info!(interface = %self.addr, "configuration reloaded");
    }

    async fn shutdown(&mut self) {
        let start = Instant::now();
        self.roles.save_state(start);
        if let Some(b) = &mut self.driver.engines.browser {
            b.shutdown(start);
            self.pump_browser();
            self.transmit().await;
        }
        self.driver.engines.node.shutdown(start);
        // Drive the release broadcasts to the end (bounded).
        while !self.driver.engines.node.is_shutdown_complete() && start.elapsed() < SHUTDOWN_GRACE {
            self.flush().await;
            let deadline = self
                .driver
                .engines
                .node
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_millis(50));
            // P/M/H nodes release by unicast and wait for the NBNS's answer: read it.
            tokio::select! {
                r = self.driver.socket(Service::Name).readable() => self.ready(r, Role::NameUnicast),
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            self.driver.engines.node.handle_timeout(Instant::now());
        }
        self.flush().await;
        info!(interface = %self.addr, "names released");
    }
}

mod browser;
#[cfg(test)]
mod local_copy_tests;
#[cfg(test)]
mod tests;
