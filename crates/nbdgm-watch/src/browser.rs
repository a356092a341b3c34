//! Browser protocol threats (MS-BRWS §2.2 frames, §3.3 browser roles; DIGEST §6): who is
//! local master of each workgroup, elections, backups, and the detectors built on that
//! (master change, election storm and overclaim, rogue ResetState/BecomeBackup/backup
//! list, announcement floods, over-long fields).

mod raw;

use crate::alert::{Alert, Severity};
use crate::config::WatchConfig;
use crate::engine::Engine;
use crate::packet::Packet;
use crate::signature;
use crate::state::CappedMap;
use nbdgm_capture::Timestamp;
use nbdgm_wire::browser::{
    opcode, reset_type_names, server_type_names, BrowserFrame, ElectionCriteria, LanmanFrame,
    ServerType,
};
use nbdgm_wire::datagram::Datagram;
use nbdgm_wire::mailslot::MailslotWrite;
use nbdgm_wire::payload::{self, Application, Payload};
use nbdgm_wire::reader::latin1;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::IpAddr;

pub use raw::Overlong;

/// Distinct server names one address may announce before it looks like spoofed hosts.
pub const SPOOFED_NAMES: usize = 20;
/// Server names kept per address (a little above [`SPOOFED_NAMES`]).
const MAX_NAMES_PER_HOST: usize = 32;
/// Backup browser names kept per workgroup.
const MAX_BACKUPS: usize = 32;
/// Cap on the per-workgroup election ring and per-host announcement ring.
const MAX_RING: usize = 4096;
/// Seconds after an election claim before an announcement without the claimed running
/// role counts against it: the role appears only once the election is won (nmbd: after
/// registering `<1D>` and `__MSBROWSE__`, ~8 s, plus its up to 10 s clock lag, SAMBA-LAB G3).
pub const CLAIM_SETTLE_SECS: i64 = 60;

/// The local master of a workgroup.
#[derive(Debug, Clone)]
pub struct Master {
    /// Its address.
    pub ip: IpAddr,
    /// Its server name, when known.
    pub name: String,
    /// When it was first seen as master.
    pub since: Timestamp,
}

/// One workgroup.
#[derive(Debug, Default)]
pub struct Workgroup {
    /// Current local master.
    pub master: Option<Master>,
    /// RequestElection frames within the window: (capture secs, sender).
    elections: VecDeque<(i64, IpAddr)>,
    storm_alerted: Option<i64>,
    /// Names promoted to backup by the master (BecomeBackup).
    pub backups: Vec<String>,
}

/// What one address announced.
#[derive(Debug, Default)]
pub struct BrowserHost {
    /// Last announced server name.
    pub name: Option<String>,
    /// Last workgroup it announced in.
    pub workgroup: Option<String>,
    /// Last announced server type.
    pub server_type: Option<u32>,
    /// Every server-type bit it ever announced.
    pub announced_bits: u32,
    /// OS version of its host announcements.
    pub os: Option<(u8, u8)>,
    /// Last election criteria.
    pub criteria: Option<u32>,
    announcements: VecDeque<i64>,
    flood_alerted: Option<i64>,
    names: Vec<String>,
    names_alerted: bool,
    /// Running-role claim of an election not yet backed by an announcement.
    pending: Option<PendingClaim>,
}

/// A RequestElection's running-master/backup claim, judged against the sender's
/// announcements made [`CLAIM_SETTLE_SECS`] or more after it.
#[derive(Debug, Clone)]
struct PendingClaim {
    at: Timestamp,
    frame: u64,
    criteria: u32,
    workgroup: String,
}

/// Per-workgroup and per-host browser state.
#[derive(Debug)]
pub struct BrowserState {
    /// Workgroups, by upper-case name.
    pub workgroups: CappedMap<String, Workgroup>,
    /// Hosts, by address.
    pub hosts: CappedMap<IpAddr, BrowserHost>,
    frames: u64,
    undecodable: u64,
    storm: usize,
    storm_window: i64,
    flood: usize,
    flood_window: i64,
    local_nets: Vec<ipnet::IpNet>,
}

impl BrowserState {
    pub(crate) fn new(cfg: &WatchConfig) -> Self {
        BrowserState {
            workgroups: CappedMap::new(cfg.max_workgroups),
            hosts: CappedMap::new(cfg.max_hosts),
            frames: 0,
            undecodable: 0,
            storm: (cfg.election_storm as usize).clamp(1, MAX_RING),
            storm_window: i64::from(cfg.election_window_secs),
            flood: (cfg.announcement_flood as usize).clamp(1, MAX_RING),
            flood_window: i64::from(cfg.announcement_window_secs),
            local_nets: cfg.local_nets.clone(),
        }
    }

    pub(crate) fn stats(&self) -> Value {
        json!({
            "frames": self.frames,
            "undecodable": self.undecodable,
            "workgroups": {"len": self.workgroups.len(), "max": self.workgroups.max(), "evicted": self.workgroups.evicted},
            "hosts": {"len": self.hosts.len(), "max": self.hosts.max(), "evicted": self.hosts.evicted},
        })
    }

    /// Is `ip` the current master of some workgroup, or did it ever announce the
    /// master-browser bit?
    pub fn is_known_master(&self, ip: IpAddr) -> bool {
        self.hosts
            .get(&ip)
            .is_some_and(|h| h.announced_bits & ServerType::MASTER_BROWSER != 0)
            || self
                .workgroups
                .iter()
                .any(|(_, w, _)| w.master.as_ref().is_some_and(|m| m.ip == ip))
    }

    /// The broadcast segment of `ip`: the most specific configured local net holding it,
    /// else its /24 (IPv4) or /64 (IPv6). Browsing is per subnet (MS-BRWS §3.3: one local
    /// master per machine group and subnet), so masters and elections are kept per segment.
    pub fn segment(&self, ip: IpAddr) -> String {
        let best = self
            .local_nets
            .iter()
            .filter(|n| n.contains(&ip))
            .max_by_key(|n| n.prefix_len());
        let net = match best {
            Some(n) => Some(n.trunc()),
            None => ipnet::IpNet::new(ip, if ip.is_ipv4() { 24 } else { 64 })
                .ok()
                .map(|n| n.trunc()),
        };
        net.map_or_else(|| ip.to_string(), |n| n.to_string())
    }

    /// The table key of workgroup `wg` on the segment of `ip`.
    pub fn wg_key(&self, wg: &str, ip: IpAddr) -> String {
        format!("{wg}@{}", self.segment(ip))
    }

    /// Did `ip` announce the backup bit, or was its name promoted by a master?
    pub fn is_backup(&self, ip: IpAddr) -> bool {
        let Some(h) = self.hosts.get(&ip) else {
            return false;
        };
        if h.announced_bits & ServerType::BACKUP_BROWSER != 0 {
            return true;
        }
        h.name.as_ref().is_some_and(|n| {
            self.workgroups
                .iter()
                .any(|(_, w, _)| w.backups.iter().any(|b| b.eq_ignore_ascii_case(n)))
        })
    }
}

/// A datagram's mailslot write, unless it is a first fragment or not a mailslot write.
pub(crate) fn mailslot(d: &Datagram) -> Option<MailslotWrite<&[u8]>> {
    if d.flags.more {
        return None;
    }
    let ud = d.user_data()?;
    MailslotWrite::parse_ref(ud).ok()
}

/// The announcement fields of a HostAnnouncement, LocalMasterAnnouncement or
/// DomainAnnouncement (on BROWSE or LANMAN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnInfo {
    /// 0x01, 0x0C or 0x0F.
    pub opcode: u8,
    /// ServerName (for 0x0C: LocalMasterBrowserName, the sender).
    pub server_name: String,
    /// OS version (not for 0x0C, whose bytes are the browser config version).
    pub os: Option<(u8, u8)>,
    /// ServerType bits.
    pub server_type: u32,
    /// MachineGroup of a DomainAnnouncement.
    pub machine_group: Option<String>,
}

/// Announcement fields of mailslot `data` on a browser mailslot. The 16-byte name field
/// is read up to its first NUL or whole (Samba's 16-character names have none), so
/// frames the strict codec refuses for that reason still count.
pub fn announcement_info(app: Application, data: &[u8]) -> Option<AnnInfo> {
    let op = *data.first()?;
    if !matches!(
        op,
        opcode::HOST_ANNOUNCEMENT | opcode::LOCAL_MASTER_ANNOUNCEMENT | opcode::DOMAIN_ANNOUNCEMENT
    ) {
        return None;
    }
    if app == Application::Lanman && !nbdgm_wire::browser::looks_like_browse_layout(data) {
        return match LanmanFrame::parse(data).ok()? {
            LanmanFrame::Announcement(a) => Some(AnnInfo {
                opcode: a.opcode,
                server_name: a.server_name,
                os: Some((a.os_major, a.os_minor)),
                server_type: a.server_type,
                machine_group: None,
            }),
            _ => None,
        };
    }
    // MS-BRWS §2.2.1 / §2.2.7 layout: name at 6..22, versions 22..24, type 24..28, string at 32.
    let field = data.get(6..22)?;
    let name = latin1(field.split(|&b| b == 0).next().unwrap_or(field));
    let ty = data.get(24..28)?;
    let server_type = u32::from_le_bytes([ty[0], ty[1], ty[2], ty[3]]);
    let last = data.get(32..).unwrap_or(&[]);
    let last = latin1(last.split(|&b| b == 0).next().unwrap_or(last));
    let (v0, v1) = (*data.get(22)?, *data.get(23)?);
    Some(if op == opcode::DOMAIN_ANNOUNCEMENT {
        AnnInfo {
            opcode: op,
            server_name: last,
            os: None,
            server_type,
            machine_group: Some(name),
        }
    } else {
        AnnInfo {
            opcode: op,
            server_name: name,
            os: Some((v0, v1)),
            server_type,
            machine_group: None,
        }
    })
}

/// Upper-case NetBIOS name of the destination when its suffix is one of `suffixes`.
fn dest_group(d: &Datagram, suffixes: &[u8]) -> Option<String> {
    let n = d.destination_name()?;
    suffixes
        .contains(&n.suffix())
        .then(|| n.name().to_ascii_uppercase())
}

fn host_workgroup(st: &BrowserState, ip: IpAddr) -> Option<String> {
    st.hosts.get(&ip).and_then(|h| h.workgroup.clone())
}

/// `p` as sent by its originator: a datagram relayed by a configured NBDD counts as
/// coming from its header SOURCE_IP/SOURCE_PORT (RFC 1002 §4.4.1); otherwise `p` itself.
pub(crate) fn originator<'a>(cfg: &WatchConfig, p: &Packet<'a>, d: &Datagram) -> Packet<'a> {
    if cfg.nbdd.contains(&p.src.ip()) {
        Packet {
            src: std::net::SocketAddr::new(IpAddr::V4(d.source_ip), d.source_port),
            // The link-layer source is the relay's.
            src_mac: None,
            ..*p
        }
    } else {
        *p
    }
}

pub(crate) fn on_datagram(e: &mut Engine, p: &Packet<'_>, d: &Datagram, out: &mut Vec<Alert>) {
    let Some(w) = mailslot(d) else {
        return;
    };
    let orig = originator(&e.cfg, p, d);
    let p = &orig;
    let app = payload::classify(&w.name);
    if !matches!(app, Application::Browser | Application::Lanman) {
        return;
    }
    e.browser.frames += 1;
    // The SMB message up to the end of the frame data; bytes after the data (padding a
    // sender appended to the datagram) are not part of the browser frame.
    let smb_len = w.data_offset() + w.data.len();
    if let Some(o) = raw::scan(app, w.data, smb_len) {
        out.push(overlong_alert(p, &w.name, &o));
    }
    let src = p.src.ip();
    if let Some(a) = announcement_info(app, w.data) {
        on_announcement(e, p, d, &a, out);
        return;
    }
    let frame = match payload::parse(&w.name, w.data) {
        Ok(Some(Payload::Browser(f))) | Ok(Some(Payload::Lanman(LanmanFrame::Browser(f)))) => f,
        Ok(_) => return,
        Err(_) => {
            e.browser.undecodable += 1;
            return;
        }
    };
    match frame {
        BrowserFrame::RequestElection(r) => on_election(e, p, d, &r, out),
        BrowserFrame::MasterAnnouncement(m) => {
            // Sent by the LMB to the PDC: the sender is master of its own workgroup.
            if let Some(wg) = host_workgroup(&e.browser, src) {
                set_master(e, p, &wg, &m.master_name, out);
            }
        }
        BrowserFrame::ResetStateRequest(r) => {
            if e.browser.is_known_master(src) {
                return;
            }
            let dmb = e
                .browser
                .hosts
                .get(&src)
                .is_some_and(|h| h.announced_bits & ServerType::DOMAIN_MASTER != 0)
                || e.names.owns_suffix(src, &[0x1b]);
            let target = d.destination_name().map(|n| n.name()).unwrap_or_default();
            out.push(
                Alert::new(&signature::RESET_STATE, p)
                    .with("reset_type", r.reset_type)
                    .with("reset_type_names", reset_type_names(r.reset_type))
                    .with("target", target.clone())
                    .with("sender_is_domain_master", dmb)
                    .severity(if dmb {
                        Severity::Medium
                    } else {
                        Severity::High
                    })
                    .key(target),
            );
        }
        BrowserFrame::BecomeBackup(b) => on_become_backup(e, p, d, &b.browser_to_promote, out),
        BrowserFrame::GetBackupListResponse(r) => {
            if e.browser.is_known_master(src) || e.browser.is_backup(src) {
                return;
            }
            // No master known on the sender's segment yet (capture started late): Low.
            let suffix = format!("@{}", e.browser.segment(src));
            let master_known = e
                .browser
                .workgroups
                .iter()
                .any(|(k, w, _)| k.ends_with(&suffix) && w.master.is_some());
            let a = Alert::new(&signature::BACKUP_LIST_ROGUE, p)
                .with("servers", r.servers.clone())
                .with("token", r.token)
                .with("workgroup", host_workgroup(&e.browser, src))
                .with("master_known", master_known)
                .key("backup-list");
            out.push(if master_known {
                a
            } else {
                a.severity(Severity::Low)
            });
        }
        _ => {}
    }
}

fn overlong_alert(p: &Packet<'_>, slot: &str, o: &Overlong) -> Alert {
    Alert::new(&signature::OVERLONG_BROWSER_FIELD, p)
        .with("field", o.field)
        .with("length", o.length)
        .with("limit", o.limit)
        .with("terminated", o.terminated)
        .with("opcode", o.opcode)
        .with("command", nbdgm_wire::browser::opcode_name(o.opcode))
        .with("mailslot", slot)
        .with("sample", o.sample.clone())
        .key(o.field)
}

fn on_announcement(
    e: &mut Engine,
    p: &Packet<'_>,
    d: &Datagram,
    a: &AnnInfo,
    out: &mut Vec<Alert>,
) {
    let now = p.time.secs;
    let src = p.src.ip();
    let wg = match &a.machine_group {
        Some(g) => Some(g.to_ascii_uppercase()),
        None => dest_group(d, &[0x1d, 0x1e, 0x00]).filter(|g| !g.is_empty()),
    };
    let (flood, window) = (e.browser.flood, e.browser.flood_window);
    let h = e.browser.hosts.entry(src, now, BrowserHost::default);
    if a.machine_group.is_none() {
        h.name = Some(a.server_name.clone());
        h.server_type = Some(a.server_type);
        h.announced_bits |= a.server_type;
        h.os = a.os.or(h.os);
        if wg.is_some() {
            h.workgroup.clone_from(&wg);
        }
        if !h.names.contains(&a.server_name) && h.names.len() < MAX_NAMES_PER_HOST {
            h.names.push(a.server_name.clone());
        }
    } else {
        // A DomainAnnouncement is sent by the LMB of the machine group.
        h.announced_bits |= ServerType::MASTER_BROWSER;
        h.workgroup.clone_from(&wg);
        if h.name.is_none() {
            h.name = Some(a.server_name.clone());
        }
    }
    h.announcements.push_back(now);
    while h
        .announcements
        .front()
        .is_some_and(|&t| now.saturating_sub(t) >= window)
        || h.announcements.len() > MAX_RING
    {
        h.announcements.pop_front();
    }
    let rate_hit = h.announcements.len() >= flood
        && h.flood_alerted
            .is_none_or(|t| now.saturating_sub(t) >= window);
    if rate_hit {
        h.flood_alerted = Some(now);
        out.push(
            Alert::new(&signature::ANNOUNCEMENT_FLOOD, p)
                .with("kind", "rate")
                .with("count", h.announcements.len())
                .with("window_secs", window)
                .with("threshold", flood)
                .with("server_name", a.server_name.clone())
                .key("rate"),
        );
    }
    if h.names.len() >= SPOOFED_NAMES && !h.names_alerted {
        h.names_alerted = true;
        out.push(
            Alert::new(&signature::ANNOUNCEMENT_FLOOD, p)
                .with("kind", "names")
                .with("distinct_names", h.names.len())
                .with("threshold", SPOOFED_NAMES)
                .with(
                    "names",
                    h.names.iter().take(10).cloned().collect::<Vec<_>>(),
                )
                .key("names"),
        );
    }
    let is_master =
        a.opcode != opcode::HOST_ANNOUNCEMENT || a.server_type & ServerType::MASTER_BROWSER != 0;
    if let (true, Some(wg)) = (is_master, wg) {
        set_master(e, p, &wg, &a.server_name, out);
    }
    judge_pending(e, p, out);
}

/// A pending running-role claim of `p`'s sender, after one of its announcements: dropped
/// once announcements or mastership back it, or once another host became master of the
/// workgroup after the claim (the claimant lost); raised as ELECTION_OVERCLAIM when an
/// announcement [`CLAIM_SETTLE_SECS`] or more after the claim still does not show it.
fn judge_pending(e: &mut Engine, p: &Packet<'_>, out: &mut Vec<Alert>) {
    let src = p.src.ip();
    let Some(pc) = e.browser.hosts.get(&src).and_then(|h| h.pending.clone()) else {
        return;
    };
    let ctx = ClaimContext {
        bits: e.browser.hosts.get(&src).map_or(0, |h| h.announced_bits),
        master_now: e.browser.is_known_master(src),
        backup: e.browser.is_backup(src),
        owns_1b: false,
    };
    let still: Vec<_> = overclaims(pc.criteria, &ctx)
        .into_iter()
        .filter(|(c, _)| is_transient(c))
        .collect();
    let lost = e
        .browser
        .workgroups
        .get(&e.browser.wg_key(&pc.workgroup, src))
        .and_then(|w| w.master.as_ref())
        .is_some_and(|m| m.ip != src && m.since.secs >= pc.at.secs);
    let waited = p.time.secs.saturating_sub(pc.at.secs);
    if !still.is_empty() && !lost && waited < CLAIM_SETTLE_SECS {
        return;
    }
    let Some(h) = e.browser.hosts.get_mut(&src, p.time.secs) else {
        return;
    };
    h.pending = None;
    if still.is_empty() || lost {
        return;
    }
    let c = ElectionCriteria(pc.criteria);
    out.push(
        Alert::new(&signature::ELECTION_OVERCLAIM, p)
            .with("workgroup", pc.workgroup.clone())
            .with("server_name", h.name.clone())
            .with("criteria", format!("0x{:08x}", pc.criteria))
            .with("os_level", c.os())
            .with("roles", c.role_names())
            .with("claim_frame", pc.frame)
            .with("claim_time", pc.at.to_rfc3339_micros())
            .with("waited_secs", waited)
            .with("announced_server_type", format!("0x{:08x}", ctx.bits))
            .with("announced_roles", server_type_names(ctx.bits))
            .with("announced_os", h.os.map(|(a, b)| format!("{a}.{b}")))
            .with(
                "unbacked",
                still
                    .iter()
                    .map(|(c, why)| json!({"claim": c, "why": why}))
                    .collect::<Vec<_>>(),
            )
            .key(pc.workgroup),
    );
}

/// Claims that follow the election's outcome (running master, running backup): the
/// sender's announcements can show them only after it has won, so they are judged
/// against later announcements, not earlier ones.
pub fn is_transient(claim: &str) -> bool {
    matches!(claim, "RUNNING_MASTER" | "RUNNING_BACKUP")
}

/// Records `src` as master of `wg`; a different host than before raises MASTER_CHANGE.
fn set_master(e: &mut Engine, p: &Packet<'_>, wg: &str, name: &str, out: &mut Vec<Alert>) {
    let src = p.src.ip();
    let segment = e.browser.segment(src);
    let w = e
        .browser
        .workgroups
        .entry(format!("{wg}@{segment}"), p.time.secs, Workgroup::default);
    let new = Master {
        ip: src,
        name: name.to_owned(),
        since: p.time,
    };
    match &mut w.master {
        Some(m) if m.ip == src => {
            if !name.is_empty() {
                m.name = name.to_owned();
            }
        }
        Some(m) => {
            out.push(
                Alert::new(&signature::MASTER_CHANGE, p)
                    .with("workgroup", wg)
                    .with("segment", segment)
                    .with("master", json!({"name": name, "ip": src.to_string()}))
                    .with(
                        "previous_master",
                        json!({"name": m.name, "ip": m.ip.to_string()}),
                    )
                    .with("previous_since", m.since.to_rfc3339_micros())
                    .with("since", p.time.to_rfc3339_micros())
                    .key(wg),
            );
            *m = new;
        }
        None => w.master = Some(new),
    }
}

fn on_become_backup(
    e: &mut Engine,
    p: &Packet<'_>,
    d: &Datagram,
    target: &str,
    out: &mut Vec<Alert>,
) {
    let src = p.src.ip();
    let wg = dest_group(d, &[0x1e]).or_else(|| host_workgroup(&e.browser, src));
    let master = wg
        .as_ref()
        .and_then(|g| e.browser.workgroups.get(&e.browser.wg_key(g, src)))
        .and_then(|w| w.master.clone());
    let legit = match &master {
        Some(m) => m.ip == src,
        None => e.browser.is_known_master(src),
    };
    if legit {
        if let Some(g) = &wg {
            let w = e.browser.workgroups.entry(
                e.browser.wg_key(g, src),
                p.time.secs,
                Workgroup::default,
            );
            if !w.backups.iter().any(|b| b.eq_ignore_ascii_case(target))
                && w.backups.len() < MAX_BACKUPS
            {
                w.backups.push(target.to_owned());
            }
        }
        return;
    }
    let mut a = Alert::new(&signature::BECOME_BACKUP_ROGUE, p)
        .with("browser_to_promote", target)
        .with("workgroup", wg.clone())
        .with("master_known", master.is_some())
        .key(wg.unwrap_or_default());
    if let Some(m) = master {
        a = a.with("master", json!({"name": m.name, "ip": m.ip.to_string()}));
    } else {
        a = a.severity(Severity::Low);
    }
    out.push(a);
}

fn on_election(
    e: &mut Engine,
    p: &Packet<'_>,
    d: &Datagram,
    r: &nbdgm_wire::browser::RequestElection,
    out: &mut Vec<Alert>,
) {
    let now = p.time.secs;
    let src = p.src.ip();
    let wg = dest_group(d, &[0x1e])
        .or_else(|| host_workgroup(&e.browser, src))
        .unwrap_or_default();
    // Overclaim first, against what the sender announced before this frame.
    check_overclaim(e, p, r, &wg, out);
    let h = e.browser.hosts.entry(src, now, BrowserHost::default);
    h.criteria = Some(r.criteria);
    if h.name.is_none() && !r.server_name.is_empty() {
        h.name = Some(r.server_name.clone());
    }
    if !wg.is_empty() {
        count_election(e, p, wg, out);
    }
}

/// ELECTION_OVERCLAIM: persistent claims judged now, running roles kept pending
/// (`judge_pending`), both against what the sender announced before this frame.
fn check_overclaim(
    e: &mut Engine,
    p: &Packet<'_>,
    r: &nbdgm_wire::browser::RequestElection,
    wg: &str,
    out: &mut Vec<Alert>,
) {
    let now = p.time.secs;
    let src = p.src.ip();
    if r.election_version != 0 && r.criteria != 0 {
        if let Some(h) = e.browser.hosts.get(&src) {
            if h.server_type.is_some() {
                // The table scans only when a claimed bit is not backed by announcements.
                let role = ElectionCriteria(r.criteria).role();
                let bits = h.announced_bits;
                let unbacked = |claim: u8, backing: u32| role & claim != 0 && bits & backing == 0;
                let master_bits = ServerType::MASTER_BROWSER;
                let ctx = ClaimContext {
                    bits,
                    master_now: (unbacked(ElectionCriteria::ROLE_RUNNING_MASTER, master_bits)
                        || unbacked(ElectionCriteria::ROLE_RUNNING_BACKUP, master_bits))
                        && e.browser.is_known_master(src),
                    backup: unbacked(
                        ElectionCriteria::ROLE_RUNNING_BACKUP,
                        ServerType::BACKUP_BROWSER | master_bits,
                    ) && e.browser.is_backup(src),
                    owns_1b: unbacked(
                        ElectionCriteria::ROLE_PDC,
                        ServerType::DOMAIN_CTRL | ServerType::DOMAIN_MASTER,
                    ) && e.names.owns_suffix(src, &[0x1b]),
                };
                // Running roles follow the election's outcome: judged later (judge_pending).
                let (transient, unbacked): (Vec<_>, Vec<_>) = overclaims(r.criteria, &ctx)
                    .into_iter()
                    .partition(|(c, _)| is_transient(c));
                let pending = match (transient.is_empty(), &h.pending) {
                    (true, _) => Some(None),
                    (false, None) => Some(Some(PendingClaim {
                        at: p.time,
                        frame: p.frame,
                        criteria: r.criteria,
                        workgroup: wg.to_owned(),
                    })),
                    (false, Some(_)) => None,
                };
                if !unbacked.is_empty() {
                    let c = ElectionCriteria(r.criteria);
                    out.push(
                        Alert::new(&signature::ELECTION_OVERCLAIM, p)
                            .with("workgroup", wg)
                            .with("server_name", r.server_name.clone())
                            .with("criteria", format!("0x{:08x}", r.criteria))
                            .with("os_level", c.os())
                            .with("roles", c.role_names())
                            .with("announced_server_type", format!("0x{:08x}", ctx.bits))
                            .with("announced_roles", server_type_names(ctx.bits))
                            .with("announced_os", h.os.map(|(a, b)| format!("{a}.{b}")))
                            .with(
                                "unbacked",
                                unbacked
                                    .iter()
                                    .map(|(c, why)| json!({"claim": c, "why": why}))
                                    .collect::<Vec<_>>(),
                            )
                            .key(wg),
                    );
                }
                if let (Some(pc), Some(h)) = (pending, e.browser.hosts.get_mut(&src, now)) {
                    h.pending = pc;
                }
            }
        }
    }
}

/// ELECTION_STORM: elections per workgroup (and subnet) within the window.
fn count_election(e: &mut Engine, p: &Packet<'_>, wg: String, out: &mut Vec<Alert>) {
    let now = p.time.secs;
    let src = p.src.ip();
    let (storm, window) = (e.browser.storm, e.browser.storm_window);
    let segment = e.browser.segment(src);
    let w = e
        .browser
        .workgroups
        .entry(e.browser.wg_key(&wg, src), now, Workgroup::default);
    w.elections.push_back((now, src));
    while w
        .elections
        .front()
        .is_some_and(|&(t, _)| now.saturating_sub(t) >= window)
        || w.elections.len() > MAX_RING
    {
        w.elections.pop_front();
    }
    if w.elections.len() < storm
        || w.storm_alerted
            .is_some_and(|t| now.saturating_sub(t) < window)
    {
        return;
    }
    w.storm_alerted = Some(now);
    let mut senders: Vec<(IpAddr, usize)> = Vec::new();
    for &(_, ip) in &w.elections {
        if let Some((_, n)) = senders.iter_mut().find(|(a, _)| *a == ip) {
            *n += 1;
        } else if senders.len() < 256 {
            senders.push((ip, 1));
        }
    }
    senders.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut a = Alert::new(&signature::ELECTION_STORM, p)
        .with("workgroup", wg.clone())
        .with("segment", segment)
        .with("count", w.elections.len())
        .with("window_secs", window)
        .with("threshold", storm)
        .with(
            "top_senders",
            senders
                .iter()
                .take(5)
                .map(|(ip, n)| json!({"ip": ip.to_string(), "count": n}))
                .collect::<Vec<_>>(),
        )
        .key(wg);
    if let Some((top, _)) = senders.first() {
        a.src = std::net::SocketAddr::new(*top, p.src.port());
    }
    out.push(a);
}

/// What an election's sender has shown about itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimContext {
    /// Union of the server-type bits it announced.
    pub bits: u32,
    /// Master of some workgroup now (or announced the master bit).
    pub master_now: bool,
    /// Backup by announcement or BecomeBackup.
    pub backup: bool,
    /// Owns a `<1B>` (domain master) name.
    pub owns_1b: bool,
}

/// Election claims (MS-BRWS §2.2.3 Criteria, DIGEST §6.4) its announcements do not back
/// (running master/backup are [`is_transient`]: the caller judges them only against
/// announcements made after the claim):
///
/// * role 0x80 (PDC), Windows only: needs SV_TYPE_DOMAIN_CTRL (0x08) or
///   SV_TYPE_DOMAIN_MASTER (0x80000) announced, or a `<1B>` name. Samba sets 0x80 whenever
///   `domain master = yes`, before it announces DOMAIN_MASTER, so it is not judged there.
/// * role 0x04 (running master): needs SV_TYPE_MASTER_BROWSER (0x40000) announced or
///   current mastership.
/// * role 0x01 (running backup): needs SV_TYPE_BACKUP_BROWSER (0x20000) or the master
///   bit, or a BecomeBackup naming it.
/// * role 0x02 (DC): Windows only — Samba always sets it (its MAINTAIN_LIST); needs
///   SV_TYPE_DOMAIN_CTRL or SV_TYPE_DOMAIN_BAKCTRL (0x10).
/// * OS byte (bits 31–24), Windows only (no SV_TYPE_SERVER_UNIX 0x800): MS-BRWS <14> has
///   0x10 for clients and 0x20 for PDCs (Wireshark adds 0x01 WfW). 0x20 needs a DC bit or
///   SV_TYPE_SERVER_NT (0x8000); above 0x20 is more than any Windows sends. Values below
///   0x20 pass (Samba-style "os level = 20" from browsers that do not set SERVER_UNIX,
///   nbdgm-browser's default). Samba (SERVER_UNIX) is not judged: its "os level" is
///   configurable 0–255.
///
/// Preferred master (0x08) and WINS client (0x20) cannot be checked from announcements.
pub fn overclaims(criteria: u32, ctx: &ClaimContext) -> Vec<(&'static str, &'static str)> {
    let c = ElectionCriteria(criteria);
    let (role, os) = (c.role(), c.os());
    let has = |b: u32| ctx.bits & b != 0;
    let windows = !has(ServerType::SERVER_UNIX);
    let dc = has(ServerType::DOMAIN_CTRL | ServerType::DOMAIN_BAKCTRL);
    let mut v = Vec::new();
    if windows
        && role & ElectionCriteria::ROLE_PDC != 0
        && !has(ServerType::DOMAIN_CTRL | ServerType::DOMAIN_MASTER)
        && !ctx.owns_1b
    {
        v.push((
            "PDC",
            "no DOMAIN_CTRL or DOMAIN_MASTER announced and no <1B> name",
        ));
    }
    if role & ElectionCriteria::ROLE_RUNNING_MASTER != 0
        && !has(ServerType::MASTER_BROWSER)
        && !ctx.master_now
    {
        v.push(("RUNNING_MASTER", "never announced MASTER_BROWSER"));
    }
    if role & ElectionCriteria::ROLE_RUNNING_BACKUP != 0
        && !has(ServerType::BACKUP_BROWSER | ServerType::MASTER_BROWSER)
        && !ctx.backup
        && !ctx.master_now
    {
        v.push((
            "RUNNING_BACKUP",
            "never announced BACKUP_BROWSER nor promoted",
        ));
    }
    if windows && role & ElectionCriteria::ROLE_DOMAIN_CONTROLLER != 0 && !dc {
        v.push((
            "DOMAIN_CONTROLLER",
            "no DOMAIN_CTRL or DOMAIN_BAKCTRL announced",
        ));
    }
    if windows {
        let ok = match os {
            0x00..=0x1F => true,
            ElectionCriteria::OS_NT_SERVER => dc || has(ServerType::SERVER_NT),
            _ => false,
        };
        if !ok {
            v.push((
                "OS_LEVEL",
                "above what a Windows host announcing this server type sends",
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overclaim_rules() {
        let ws = ClaimContext {
            bits: 0x0001_1003,
            ..Default::default()
        };
        // A Windows workstation's honest criteria: NT workstation, version, no roles.
        assert!(overclaims(0x1001_0F00, &ws).is_empty());
        // Claims PDC and running master with OS 0xFF.
        let v = overclaims(0xFF01_0F84, &ws);
        let claims: Vec<_> = v.iter().map(|(c, _)| *c).collect();
        assert_eq!(claims, ["PDC", "RUNNING_MASTER", "OS_LEVEL"]);
        // Samba (SERVER_UNIX): os level 255 and MAINTAIN_LIST are not judged.
        let samba = ClaimContext {
            bits: 0x0001_0803,
            ..Default::default()
        };
        assert!(overclaims(0xFF01_0F02, &samba).is_empty());
        assert!(
            overclaims(0x4101_0F8A, &samba).is_empty(),
            "domain master = yes"
        );
        // A PDC with <1B>.
        let pdc = ClaimContext {
            bits: 0x0001_900B,
            owns_1b: true,
            ..Default::default()
        };
        assert!(overclaims(0x2001_0F82, &pdc).is_empty());
        // Backup claimed after a BecomeBackup.
        let b = ClaimContext {
            bits: 0x0001_1003,
            backup: true,
            ..Default::default()
        };
        assert!(overclaims(0x1001_0F01, &b).is_empty());
        assert_eq!(overclaims(0x1001_0F01, &ws).len(), 1);
    }

    #[test]
    fn announcement_info_reads_samba_sixteen_byte_names() {
        let mut v = vec![0x0F, 0, 0x60, 0xEA, 0, 0];
        v.extend_from_slice(b"ABCDEFGHIJKLMNOP");
        v.extend_from_slice(&[6, 1, 0x03, 0x18, 0x04, 0, 0x0F, 0x01, 0x55, 0xAA, 0]);
        let a = announcement_info(Application::Browser, &v).unwrap();
        assert_eq!(a.server_name, "ABCDEFGHIJKLMNOP");
        assert_eq!(a.server_type, 0x0004_1803);
        assert_eq!(a.os, Some((6, 1)));
        assert!(announcement_info(Application::Browser, &v[..20]).is_none());
    }
}
