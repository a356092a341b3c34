//! `browse_bench`: the browse list up to its cap, printing markdown tables for
//! docs/BENCHMARKS.md §5. Run by `bench/browse.sh`.
//!
//! - `engine`: the `nbdgm-browser` engine alone, as local master browser: N distinct
//!   HostAnnouncements (N = 0, 1000, 4096 = the cap, and a 100,000 flood against the cap),
//!   each case in a fresh child process (`engine-case`) so that its RSS is its own: time
//!   per announcement, entries kept, refusals, RSS along the way; then the cost of
//!   answering GetBackupListRequest with that list, and of building the list (`list()`).
//! - `lab`: the same flood of HostAnnouncements by unicast to `TESTGROUP<1D>` at port 138
//!   of an `nbdgm serve` that is local master, then (in a second lab) of Samba nmbd as
//!   LMB: entries kept, GetBackupListRequest and NAME QUERY answered (latency) before,
//!   during and after the flood, RSS and CPU time (network namespaces on 198.51.100.0/24
//!   made by `nbdgm-lab`; needs root and nmbd).
//!
//! Every traffic loop is bounded in count and in time; every process started is stopped
//! by PID. Benchmarks, never tests.

#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use nbdgm_bench::browse::{
    backup_list_request_frame, backup_list_response, browse_dat_count, browse_datagram, flood_name,
    udp_drops_of, wire_name, HostAnnouncementTemplate, FLOOD_TYPE,
};
use nbdgm_bench::daemon::{iface_counter, stats, wait_master, wait_names, DaemonConfig};
use nbdgm_bench::packets;
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, percentile, thousands};
use nbdgm_bench::setup;
use nbdgm_browser::{Action, Browser, BrowserConfig, Inbound, Role};
use nbdgm_lab::{Host, Lab, LabSpec, Nmbd, NmbdOptions};
use nbdgm_wire::browser::{BrowserFrame, RequestElection, ServerType};
use nbdgm_wire::mailslot::BROWSE;
use nbdgm_wire::Name;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WORKGROUP: &str = "TESTGROUP";
/// One announcement in this many carries BACKUP_BROWSER, so GetBackupListResponse has
/// backups to list.
const BACKUP_EVERY: u64 = 1000;

type Cli = setup::Cli<Cmd>;

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The browser engine in-process: fill to the cap, flood, GetBackupList cost.
    Engine(EngineArgs),
    /// nbdgm serve vs nmbd under the same announcement flood (needs root and nmbd).
    Lab(LabArgs),
    /// Both, with their default arguments.
    All,
    /// One engine case in this process; prints a JSON line (used by `engine`).
    #[command(hide = true)]
    EngineCase(CaseArgs),
}

#[derive(Args, Debug, Clone)]
struct EngineArgs {
    /// Distinct announcements per case.
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1000, 4096, 100_000])]
    sizes: Vec<u64>,
    /// max_servers.
    #[arg(long, default_value_t = 4096)]
    cap: usize,
    /// Child processes per case; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// GetBackupListRequests per case (also ≤ 2 s).
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
}

impl Default for EngineArgs {
    fn default() -> Self {
        EngineArgs {
            sizes: vec![0, 1000, 4096, 100_000],
            cap: 4096,
            runs: 3,
            requests: 20_000,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct CaseArgs {
    #[arg(long)]
    n: u64,
    #[arg(long)]
    cap: usize,
    #[arg(long)]
    requests: u64,
}

#[derive(Args, Debug, Clone)]
struct LabArgs {
    /// Distinct HostAnnouncements in the flood.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Flood rate (datagrams/s); the flood also stops after count / rate + 10 s.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Interval between probes (a GetBackupListRequest, then a NAME QUERY).
    #[arg(long, default_value_t = 100)]
    probe_ms: u64,
    /// Seconds probed before and after the flood.
    #[arg(long, default_value_t = 3.0)]
    quiet_secs: f64,
    /// Print nmbd's log (level 1) to stderr after the flood.
    #[arg(long)]
    nmbd_log: bool,
}

impl Default for LabArgs {
    fn default() -> Self {
        LabArgs {
            count: 20_000,
            rate: 2000.0,
            probe_ms: 100,
            quiet_secs: 3.0,
            nmbd_log: false,
        }
    }
}

fn main() {
    setup::main(
        "browse_bench",
        "Browse-list benchmarks (see docs/BENCHMARKS.md §5)",
        run,
    );
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::EngineCase(a) => {
            let r = engine_case(&a)?;
            println!("{r}");
            Ok(())
        }
        Cmd::Engine(a) => engine(&a),
        Cmd::Lab(a) => lab(&setup::nbdgm_binary(cli.nbdgm)?, &a),
        Cmd::All => {
            engine(&EngineArgs::default())?;
            lab(&setup::nbdgm_binary(cli.nbdgm)?, &LabArgs::default())
        }
    }
}

/// Wait (≤ 15 s) until the machine is < 10 % busy over one second; print it.
fn note_load(what: &str) {
    setup::note_load(what, Duration::from_secs(15));
}

// ---------------------------------------------------------------------------------------
// 1. The engine in-process
// ---------------------------------------------------------------------------------------

fn drain(b: &mut Browser) -> (usize, Vec<Name>) {
    let mut sends = 0;
    let mut registers = Vec::new();
    while let Some(a) = b.poll_action() {
        match a {
            Action::Send { .. } => sends += 1,
            Action::Register { name, .. } => registers.push(name),
            _ => {}
        }
    }
    (sends, registers)
}

/// A started browser (`<name><00>` registered at `t0`) made local master the way the
/// engine's tests do it: a RequestElection with criteria 0 forces an election, the timers
/// run on synthetic time until the engine asks for `<WG><1D>`, and the runtime reports
/// `<1D>` and MSBROWSE registered. Returns the time it became master.
fn master_browser(cfg: BrowserConfig, t0: Instant) -> anyhow::Result<(Browser, Instant)> {
    let me = wire_name(&cfg.name, 0)?;
    let wg1d = wire_name(&cfg.workgroup, 0x1D)?;
    let wg1e = wire_name(&cfg.workgroup, 0x1E)?;
    let mut b = Browser::new(cfg, t0, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    b.start(t0);
    b.name_registered(t0, &me);
    drain(&mut b);
    let force = BrowserFrame::RequestElection(RequestElection {
        election_version: 0,
        criteria: 0,
        server_name: "CLIENT".into(),
        ..Default::default()
    })
    .to_bytes()?;
    let client = wire_name("CLIENT", 0)?;
    b.handle(
        t0,
        Inbound {
            from: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 99), 138),
            source: &client,
            destination: &wg1e,
            mailslot: BROWSE,
            data: &force,
            broadcast: true,
            request_len: 0, // no reply gate here
        },
    );
    drain(&mut b);
    let mut t = t0;
    for _ in 0..1000 {
        let Some(next) = b.poll_timeout() else { break };
        t = next;
        b.handle_timeout(t);
        if drain(&mut b).1.iter().any(|n| n.raw() == wg1d.raw()) {
            break;
        }
    }
    b.name_registered(t, &Name::msbrowse());
    b.name_registered(t, &wg1d);
    drain(&mut b);
    if b.role() != Role::Master {
        bail!("the engine did not become master (role {:?})", b.role());
    }
    Ok((b, t))
}

/// RSS checkpoints of the flood (announcements fed so far).
const CHECKPOINTS: [u64; 8] = [1000, 2048, 4096, 8192, 16_384, 32_768, 65_536, 100_000];

fn engine_case(a: &CaseArgs) -> anyhow::Result<Value> {
    let pid = std::process::id();
    let rss_start = procfs::mem(pid)?;
    let t0 = Instant::now();
    let mut cfg = BrowserConfig::new("RUSTHOST", WORKGROUP);
    cfg.max_servers = a.cap;
    cfg.os_level = 255;
    cfg.preferred_master = true;
    let (mut b, t_master) = master_browser(cfg, t0)?;
    let rss_master = procfs::mem(pid)?;

    let mut plain = HostAnnouncementTemplate::new(FLOOD_TYPE)?;
    let mut backup = HostAnnouncementTemplate::new(
        FLOOD_TYPE | ServerType::POTENTIAL_BROWSER | ServerType::BACKUP_BROWSER,
    )?;
    let source = wire_name("FLOODER", 0)?;
    let dest = wire_name(WORKGROUP, 0x1D)?;
    let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 30), 138);
    let base = t_master + Duration::from_secs(1);
    let mut checkpoints = Vec::new();
    let mut insert_ns = 0u128;
    let mut name = String::with_capacity(16);
    let fill = Instant::now();
    for i in 0..a.n {
        name.clear();
        name.push_str(&flood_name(i));
        let tpl = if i.is_multiple_of(BACKUP_EVERY) {
            &mut backup
        } else {
            &mut plain
        };
        tpl.set_name(&name);
        let now = base + Duration::from_micros(i * 10);
        b.handle(
            now,
            Inbound {
                from,
                source: &source,
                destination: &dest,
                mailslot: BROWSE,
                data: &tpl.frame,
                broadcast: false,
                request_len: 0, // no reply gate here
            },
        );
        while b.poll_action().is_some() {}
        if i + 1 == a.cap as u64 {
            insert_ns = fill.elapsed().as_nanos();
        }
        if CHECKPOINTS.contains(&(i + 1)) {
            let m = procfs::mem(pid)?;
            checkpoints.push(json!({
                "fed": i + 1,
                "rss_kib": m.rss_kib,
                "servers": b.stats().servers,
                "refused": b.stats().refused_server_list_full,
            }));
        }
    }
    let fill_ns = fill.elapsed().as_nanos();
    if a.n <= a.cap as u64 {
        insert_ns = fill_ns;
    }
    let rss_filled = procfs::mem(pid)?;
    let now = base + Duration::from_secs(2);

    let g = backup_list_cost(&mut b, a, now, &dest)?;
    // list(): what the API's `browse` builds.
    let mut list_us = Vec::new();
    let mut list_len = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let l = b.list(now);
        list_us.push(t.elapsed().as_secs_f64() * 1e6);
        list_len = l.servers.len();
    }
    let rss_end = procfs::mem(pid)?;
    let s = b.stats();
    Ok(json!({
        "n": a.n,
        "cap": a.cap,
        "rss_start_kib": rss_start.rss_kib,
        "rss_master_kib": rss_master.rss_kib,
        "rss_filled_kib": rss_filled.rss_kib,
        "rss_end_kib": rss_end.rss_kib,
        "hwm_end_kib": rss_end.hwm_kib,
        "servers": s.servers,
        "refused": s.refused_server_list_full,
        "events_dropped": s.events_dropped,
        "fill_ns": fill_ns as f64,
        "insert_ns": insert_ns as f64,
        "inserted": a.n.min(a.cap as u64),
        "checkpoints": checkpoints,
        "gbl_requests": g.reqs,
        "gbl_answered": g.answered,
        "gbl_sends": g.sends,
        "gbl_ns": g.ns,
        "gbl_build_ns": g.build_ns,
        "gbl_listed": g.listed,
        "list_us": median(&list_us),
        "list_len": list_len,
        "sink": g.sink,
    }))
}

/// The cost of GetBackupListRequests (MS-BRWS §2.2.4) at the engine.
struct BackupListCost {
    reqs: u64,
    answered: u64,
    sends: usize,
    /// ns per request, engine and frame building.
    ns: f64,
    /// ns per request of building the frame alone.
    build_ns: f64,
    /// The servers one response lists.
    listed: Vec<String>,
    sink: usize,
}

/// GetBackupListRequest to <WG><1D>, as a client sends it (count 4), up to `a.requests`
/// times (≤ 2 s); then the frame building alone, and one response decoded.
fn backup_list_cost(
    b: &mut Browser,
    a: &CaseArgs,
    now: Instant,
    dest: &nbdgm_wire::Name,
) -> anyhow::Result<BackupListCost> {
    // GetBackupListRequest to <WG><1D>, as a client sends it (count 4).
    let client = wire_name("BENCHCLI", 0)?;
    let cfrom = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 40), 40000);
    let answered0 = b.stats().backup_list_requests_answered;
    let mut reqs = 0u64;
    let mut sends = 0usize;
    let t = Instant::now();
    let max = Duration::from_secs(2);
    while reqs < a.requests {
        let req = backup_list_request_frame(4, reqs as u32)?;
        b.handle(
            now,
            Inbound {
                from: cfrom,
                source: &client,
                destination: dest,
                mailslot: BROWSE,
                data: &req,
                broadcast: false,
                request_len: 0, // no reply gate here
            },
        );
        sends += drain(b).0;
        reqs += 1;
        if reqs.is_multiple_of(256) && t.elapsed() > max {
            break;
        }
    }
    let gbl_ns = t.elapsed().as_nanos() as f64 / reqs.max(1) as f64;
    let answered = b.stats().backup_list_requests_answered - answered0;
    // The same loop without the engine: building the request frame alone.
    let t = Instant::now();
    let mut sink = 0usize;
    for i in 0..reqs {
        sink += backup_list_request_frame(4, i as u32)?.len();
    }
    let build_ns = t.elapsed().as_nanos() as f64 / reqs.max(1) as f64;
    // One response, decoded, for the report.
    b.handle(
        now,
        Inbound {
            from: cfrom,
            source: &client,
            destination: dest,
            mailslot: BROWSE,
            data: &backup_list_request_frame(4, 7)?,
            broadcast: false,
            request_len: 0, // no reply gate here
        },
    );
    let mut listed = Vec::new();
    while let Some(act) = b.poll_action() {
        if let Action::Send { data, .. } = act {
            let w = nbdgm_wire::mailslot::MailslotWrite::parse(&data)?;
            if let BrowserFrame::GetBackupListResponse(r) = BrowserFrame::parse(&w.data)? {
                listed = r.servers;
            }
        }
    }
    Ok(BackupListCost {
        reqs,
        answered,
        sends,
        ns: gbl_ns,
        build_ns,
        listed,
        sink,
    })
}

fn run_case(n: u64, a: &EngineArgs) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(&exe)
        .args([
            "engine-case",
            "--n",
            &n.to_string(),
            "--cap",
            &a.cap.to_string(),
            "--requests",
            &a.requests.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("run {} engine-case", exe.display()))?;
    if !out.status.success() {
        bail!("engine-case --n {n} failed: {}", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).context("engine-case output")
}

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn med(runs: &[Value], k: &str) -> f64 {
    median(&runs.iter().map(|v| f(v, k)).collect::<Vec<_>>())
}

fn engine(a: &EngineArgs) -> anyhow::Result<()> {
    note_load("engine");
    let mut cases: Vec<(u64, Vec<Value>)> = Vec::new();
    for &n in &a.sizes {
        let mut runs = Vec::new();
        for r in 0..a.runs {
            let v = run_case(n, a)?;
            eprintln!(
                "engine n={n} run {r}: servers {} refused {} fill {:.1} ms, GetBackupList {:.0} ns, RSS {} → {} KiB",
                v["servers"],
                v["refused"],
                f(&v, "fill_ns") / 1e6,
                f(&v, "gbl_ns"),
                v["rss_master_kib"],
                v["rss_end_kib"],
            );
            runs.push(v);
        }
        cases.push((n, runs));
    }

    println!("\n### Engine in-process: browse list up to the cap\n");
    println!(
        "`nbdgm-browser` engine as local master browser of TESTGROUP (`max_servers` = {}), \
         fed N HostAnnouncements to `TESTGROUP<1D>` with N distinct server names \
         (`FL0000000`…, type 0x00001003, one in {BACKUP_EVERY} also BACKUP_BROWSER, \
         periodicity 12 min so nothing expires), actions drained after each as the daemon \
         does. Each case runs in a fresh process ({} runs, medians); RSS is that process's \
         VmRSS (procfs). GetBackupListRequest (count 4) fed to `TESTGROUP<1D>` up to {} \
         times (≤ 2 s), response drained; `list()` is what the API `browse` builds.\n",
        a.cap,
        a.runs,
        thousands(a.requests as f64)
    );
    println!("| N announcements | entries kept | refused (list full) | ns / announcement (all) | ns / insert (first ≤ cap) | ns / refused one | RSS as master, empty list (KiB) | RSS after (KiB) | growth (KiB) | bytes / entry | GetBackupListRequest ns | list() µs |");
    println!(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (n, runs) in &cases {
        let servers = med(runs, "servers");
        let refused = med(runs, "refused");
        let fill = med(runs, "fill_ns");
        let ins = med(runs, "insert_ns");
        let inserted = med(runs, "inserted");
        let per_all = if *n > 0 { fill / *n as f64 } else { f64::NAN };
        let per_ins = if inserted > 0.0 {
            ins / inserted
        } else {
            f64::NAN
        };
        let per_ref = if refused > 0.0 {
            (fill - ins) / refused
        } else {
            f64::NAN
        };
        let r0 = med(runs, "rss_master_kib");
        let r1 = med(runs, "rss_filled_kib");
        let growth = r1 - r0;
        let per_entry = if servers > 0.0 {
            format!("{:.0}", growth * 1024.0 / servers)
        } else {
            "–".into()
        };
        let fmt = |x: f64| {
            if x.is_finite() {
                format!("{x:.0}")
            } else {
                "–".into()
            }
        };
        println!(
            "| {} | **{}** | {} | {} | {} | {} | {} | {} | **{}** | {} | **{}** | {:.0} |",
            thousands(*n as f64),
            thousands(servers),
            thousands(refused),
            fmt(per_all),
            fmt(per_ins),
            fmt(per_ref),
            thousands(r0),
            thousands(r1),
            thousands(growth),
            per_entry,
            thousands(med(runs, "gbl_ns")),
            med(runs, "list_us"),
        );
    }
    print_flood_detail(a, &cases);
    Ok(())
}

/// RSS along the flood beyond the cap and the GetBackupListResponse of the first run.
fn print_flood_detail(a: &EngineArgs, cases: &[(u64, Vec<Value>)]) {
    if let Some((n, runs)) = cases.iter().find(|(n, _)| *n > a.cap as u64) {
        let v = &runs[0];
        println!(
            "\nRSS along the {}-announcement flood (first run; the cap is {}):\n",
            thousands(*n as f64),
            thousands(a.cap as f64)
        );
        println!("| fed | entries kept | refused | VmRSS (KiB) |");
        println!("| ---: | ---: | ---: | ---: |");
        println!(
            "| 0 (master, empty list) | 0 | 0 | {} |",
            thousands(f(v, "rss_master_kib"))
        );
        for c in v["checkpoints"].as_array().into_iter().flatten() {
            println!(
                "| {} | {} | {} | {} |",
                thousands(f(c, "fed")),
                thousands(f(c, "servers")),
                thousands(f(c, "refused")),
                thousands(f(c, "rss_kib"))
            );
        }
        println!(
            "\nGetBackupListResponse with the full list lists {} (master first, then \
             backups, RequestedCount 4); every request answered: {} of {}; frame building \
             alone (outside the engine) {:.0} ns of each request.",
            v["gbl_listed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            v["gbl_answered"],
            v["gbl_requests"],
            f(v, "gbl_build_ns"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. nbdgm serve vs nmbd in namespaces
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    During,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    BackupList,
    NameQuery,
}

/// One probe: when it was sent, what, and its latency (None: unanswered within 1 s).
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: Instant,
    kind: ProbeKind,
    rtt_us: Option<f64>,
}

#[derive(Debug, Default)]
struct TargetRun {
    label: String,
    sent: u64,
    send_errors: u64,
    flood_secs: f64,
    kept: Option<u64>,
    kept_note: String,
    refused: Option<u64>,
    mem_before: procfs::Mem,
    mem_after: procfs::Mem,
    cpu_flood: f64,
    udp_drops: u64,
    probes: Vec<(Phase, Probe)>,
    ready_secs: f64,
}

/// Sockets for the prober, made in its namespace.
struct Prober {
    dgm: UdpSocket,
    nbns: UdpSocket,
}

fn probe_once(
    p: &Prober,
    target: Ipv4Addr,
    gbl: &mut Vec<u8>,
    query_name: &str,
    token: u32,
    kind: ProbeKind,
) -> anyhow::Result<Probe> {
    let mut buf = [0u8; 2048];
    let timeout = Duration::from_secs(1);
    let at = Instant::now();
    let (sock, pkt, to) = match kind {
        ProbeKind::BackupList => {
            let SocketAddr::V4(local) = p.dgm.local_addr()? else {
                bail!("not IPv4");
            };
            *gbl = browse_datagram(
                local,
                "BENCHCLI",
                &wire_name(WORKGROUP, 0x1D)?,
                token as u16,
                &backup_list_request_frame(4, token)?,
            )?;
            (&p.dgm, gbl.clone(), SocketAddrV4::new(target, 138))
        }
        ProbeKind::NameQuery => (
            &p.nbns,
            packets::name_query(query_name, token as u16)?,
            SocketAddrV4::new(target, 137),
        ),
    };
    sock.send_to(&pkt, to)?;
    let deadline = at + timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(Probe {
                at,
                kind,
                rtt_us: None,
            });
        }
        sock.set_read_timeout(Some(deadline - now))?;
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let ok = match kind {
            ProbeKind::BackupList => {
                backup_list_response(&buf[..len]).is_some_and(|(t, _)| t == token)
            }
            ProbeKind::NameQuery => {
                packets::positive_response_id(&buf[..len]) == Some(token as u16)
            }
        };
        if ok {
            return Ok(Probe {
                at,
                kind,
                rtt_us: Some(at.elapsed().as_secs_f64() * 1e6),
            });
        }
    }
}

/// Send `count` distinct HostAnnouncements (names `FL…`) from `sock` to `target:138`,
/// paced at `rate`/s, DIRECT_GROUP to `TESTGROUP<1D>`; stops after `max` too.
fn flood(sock: &UdpSocket, target: Ipv4Addr, count: u64, rate: f64) -> anyhow::Result<(u64, u64)> {
    let SocketAddr::V4(local) = sock.local_addr()? else {
        bail!("not IPv4");
    };
    let to = SocketAddrV4::new(target, 138);
    let dest = wire_name(WORKGROUP, 0x1D)?;
    let mut tpl = HostAnnouncementTemplate::new(FLOOD_TYPE)?;
    let max = Duration::from_secs_f64(count as f64 / rate + 10.0);
    let t0 = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    for i in 0..count {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let name = flood_name(i);
        tpl.set_name(&name);
        let pkt = browse_datagram(local, &name, &dest, i as u16, &tpl.frame)?;
        match sock.send_to(&pkt, to) {
            Ok(_) => sent += 1,
            Err(_) => errors += 1,
        }
        if t0.elapsed() > max {
            break;
        }
    }
    Ok((sent, errors))
}

/// Kernel drops on the target's port-138 sockets.
fn drops_138(pid: u32) -> u64 {
    udp_drops_of(pid, 138).unwrap_or(0)
}

/// What the flood run needs to know about the target.
struct Subject<'a> {
    host: &'a Host,
    pid: u32,
    query_name: String,
}

/// Probe for `quiet` s, flood while probing, probe for `quiet` s more.
fn flood_and_probe(
    s: &Subject<'_>,
    flooder: &UdpSocket,
    prober: &Prober,
    a: &LabArgs,
    run: &mut TargetRun,
) -> anyhow::Result<()> {
    let target = s.host.addr();
    run.mem_before = procfs::mem(s.pid)?;
    let drops0 = drops_138(s.pid);
    let flood_start: OnceLock<Instant> = OnceLock::new();
    let flood_end: OnceLock<Instant> = OnceLock::new();
    let quiet = Duration::from_secs_f64(a.quiet_secs);
    let interval = Duration::from_millis(a.probe_ms);
    let mut cpu0 = 0.0;
    let (flood_res, probes) = std::thread::scope(|sc| {
        let prober_thread = sc.spawn(|| -> anyhow::Result<Vec<Probe>> {
            let mut v = Vec::new();
            let mut gbl = Vec::new();
            let hard = Instant::now()
                + quiet * 2
                + Duration::from_secs_f64(a.count as f64 / a.rate + 30.0);
            let mut token = 1u32;
            loop {
                let tick = Instant::now();
                for kind in [ProbeKind::BackupList, ProbeKind::NameQuery] {
                    v.push(probe_once(
                        prober,
                        target,
                        &mut gbl,
                        &s.query_name,
                        token,
                        kind,
                    )?);
                    token += 1;
                }
                if flood_end.get().is_some_and(|e| e.elapsed() >= quiet) || Instant::now() > hard {
                    break;
                }
                let next = tick + interval;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
            }
            Ok(v)
        });
        std::thread::sleep(quiet);
        cpu0 = procfs::cpu_seconds(s.pid).unwrap_or(f64::NAN);
        let _ = flood_start.set(Instant::now());
        let r = flood(flooder, target, a.count, a.rate);
        let _ = flood_end.set(Instant::now());
        let probes = prober_thread
            .join()
            .map_err(|_| anyhow::anyhow!("prober panicked"))
            .and_then(|r| r);
        (r, probes)
    });
    let (sent, errors) = flood_res?;
    let probes = probes?;
    let (fs, fe) = (
        *flood_start.get().context("flood start")?,
        *flood_end.get().context("flood end")?,
    );
    run.cpu_flood = procfs::cpu_seconds(s.pid).unwrap_or(f64::NAN) - cpu0;
    run.sent = sent;
    run.send_errors = errors;
    run.flood_secs = fe.duration_since(fs).as_secs_f64();
    run.udp_drops = drops_138(s.pid).saturating_sub(drops0);
    run.probes = probes
        .into_iter()
        .map(|p| {
            let ph = if p.at < fs {
                Phase::Before
            } else if p.at < fe {
                Phase::During
            } else {
                Phase::After
            };
            (ph, p)
        })
        .collect();
    run.mem_after = procfs::mem(s.pid)?;
    Ok(())
}

struct LabHosts {
    lab: Lab,
    target: Host,
    flooder: UdpSocket,
    prober: Prober,
}

fn lab_hosts() -> anyhow::Result<LabHosts> {
    let lab = Lab::new(LabSpec::one_subnet())?;
    let target = lab.add_host("t", "198.51.100.10/24")?;
    let hf = lab.add_host("f", "198.51.100.30/24")?;
    let hp = lab.add_host("p", "198.51.100.40/24")?;
    let fa = hf.addr();
    let flooder = hf.in_netns(move || UdpSocket::bind((fa, 0)))??;
    let pa = hp.addr();
    let (dgm, nbns) = hp.in_netns(move || -> std::io::Result<(UdpSocket, UdpSocket)> {
        Ok((UdpSocket::bind((pa, 0))?, UdpSocket::bind((pa, 0))?))
    })??;
    Ok(LabHosts {
        lab,
        target,
        flooder,
        prober: Prober { dgm, nbns },
    })
}

fn run_nbdgm(bin: &Path, a: &LabArgs) -> anyhow::Result<TargetRun> {
    let h = lab_hosts()?;
    let socket = h.lab.dir().join("nbdgm.sock");
    let cfg = DaemonConfig {
        name: "NBDGMT".into(),
        workgroup: WORKGROUP.into(),
        address: h.target.addr(),
        prefix: 24,
        ports: (137, 138),
        socket: socket.clone(),
        raised_limits: true,
        extra: "[browser]\nlocal_master = true\nos_level = 255\npreferred_master = true\n".into(),
    };
    let t0 = Instant::now();
    let proc = cfg.start(bin, h.lab.dir(), "nbdgm", Some(&h.target))?;
    wait_names(&socket, &["NBDGMT<00>"], Duration::from_secs(15))?;
    wait_master(&socket, Duration::from_secs(60))
        .with_context(|| format!("stderr: {}", proc.log_text()))?;
    let mut c = nbdgm_client::Client::connect(&socket)?;
    let mut run = flood_master(
        &h,
        a,
        "nbdgm",
        "nbdgm serve (local master)",
        t0,
        proc.pid(),
        "NBDGMT<00>",
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let st = stats(&socket)?;
    let gauge = iface_counter(&st, "/browser/servers");
    // The API's `browse` (its answer may exceed the API's 256 KiB line limit).
    match c.browse(None) {
        Ok(r) => {
            let i = r.interfaces.first();
            let kept = i.map_or(0, |i| {
                i.servers
                    .iter()
                    .filter(|s| s.name.starts_with("FL"))
                    .count()
            });
            run.kept = Some(kept as u64);
            run.kept_note = format!(
                "API `browse`: {} servers, role {}; stats browser.servers {gauge}",
                i.map_or(0, |i| i.servers.len()),
                i.map_or("?", |i| i.role.as_str()),
            );
        }
        Err(e) => {
            run.kept = Some(gauge);
            run.kept_note = format!("stats browser.servers; API `browse` failed: {e}");
        }
    }
    run.refused = Some(iface_counter(&st, "/browser/refused_server_list_full"));
    eprintln!(
        "nbdgm: kept {:?}, refused {:?}, {}",
        run.kept, run.refused, run.kept_note
    );
    proc.stop();
    drop(h);
    Ok(run)
}

/// The target (`who`, process `pid`, answering `query_name`) became local master `t0`
/// after its start: say so, wait for a quiet machine, then flood and probe it; the run is
/// labelled `label`.
fn flood_master(
    h: &LabHosts,
    a: &LabArgs,
    who: &str,
    label: &str,
    t0: Instant,
    pid: u32,
    query_name: &str,
) -> anyhow::Result<TargetRun> {
    let mut run = TargetRun {
        label: label.into(),
        ready_secs: t0.elapsed().as_secs_f64(),
        ..Default::default()
    };
    eprintln!("{who} is local master after {:.1} s", run.ready_secs);
    note_load(&format!("lab {who}"));
    let subject = Subject {
        host: &h.target,
        pid,
        query_name: query_name.into(),
    };
    flood_and_probe(&subject, &h.flooder, &h.prober, a, &mut run)?;
    Ok(run)
}

fn run_nmbd(a: &LabArgs) -> anyhow::Result<TargetRun> {
    let h = lab_hosts()?;
    let t0 = Instant::now();
    // Samba's default log level is 0; 1 keeps the "now a local master browser" line
    // (level 0) without logging every packet as the lab's default of 10 would.
    let nmbd = Nmbd::start(
        &h.target,
        NmbdOptions {
            extra_global: vec!["log level = 1".into()],
            ..Default::default()
        },
    )?;
    nmbd.wait_local_master(Duration::from_secs(60))?;
    let mut run = flood_master(
        &h,
        a,
        "nmbd",
        "nmbd 4.17 (LMB)",
        t0,
        nmbd.pid(),
        "SAMBAA<00>",
    )?;
    // browse.dat after SIGHUP, until two reads 1 s apart agree (≤ 30 s).
    let until = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    let mut lines: usize;
    loop {
        nmbd.hup()?;
        std::thread::sleep(Duration::from_secs(1));
        let dat = nmbd.browse_dat().unwrap_or_default();
        let n = browse_dat_count(&dat, "FL");
        lines = dat.lines().count();
        if last == Some(n) && n > 0 || Instant::now() > until {
            last = Some(n);
            break;
        }
        last = Some(n);
    }
    run.kept = last.map(|n| n as u64);
    run.kept_note = format!("browse.dat after SIGHUP: {lines} lines");
    run.mem_after = procfs::mem(nmbd.pid()).unwrap_or(run.mem_after);
    eprintln!("nmbd: kept {:?}, {}", run.kept, run.kept_note);
    if a.nmbd_log {
        eprintln!("--- nmbd log ---\n{}", nmbd.log());
    }
    nmbd.stop()?;
    drop(h);
    Ok(run)
}

fn phase_summary(run: &TargetRun, ph: Phase, kind: ProbeKind) -> String {
    let v: Vec<&Probe> = run
        .probes
        .iter()
        .filter(|(p, pr)| *p == ph && pr.kind == kind)
        .map(|(_, pr)| pr)
        .collect();
    let mut rtts: Vec<f64> = v.iter().filter_map(|p| p.rtt_us).collect();
    rtts.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "–".into();
    }
    format!(
        "{}/{} · {:.0} / {:.0} / {:.0}",
        rtts.len(),
        v.len(),
        percentile(&rtts, 50.0),
        percentile(&rtts, 99.0),
        rtts.last().copied().unwrap_or(f64::NAN)
    )
}

fn lab(bin: &Path, a: &LabArgs) -> anyhow::Result<()> {
    if !nbdgm_lab::require_or_skip("browse_bench lab") {
        bail!("lab prerequisites missing (root, ip, nmbd, nmblookup, tshark, setsid)");
    }
    eprintln!("nbdgm binary: {}", bin.display());
    let runs = [run_nbdgm(bin, a)?, run_nmbd(a)?];
    println!("\n### nbdgm vs nmbd under the same announcement flood (one veth bridge)\n");
    println!(
        "A fresh lab per daemon, one after the other: the target 198.51.100.10 is `nbdgm serve` \
         (NBDGMT, `[browser] local_master = true, os_level = 255, preferred_master = true`, \
         max_servers 4096, rx_per_source raised as in §3) or nmbd (SAMBAA, local and \
         preferred master, os level 65, `log level = 1`), each local master browser of \
         TESTGROUP before the flood. Host 198.51.100.30 sends {} HostAnnouncements with \
         distinct server names at {} /s (DIRECT_GROUP, unicast to TESTGROUP<1D> at port 138, \
         periodicity 12 min). Host 198.51.100.40 probes every {} ms, {} s before, during and \
         {} s after the flood: a GetBackupListRequest (count 4) to TESTGROUP<1D> at port 138, \
         then a unicast NAME QUERY for the target's NAME<00> at port 137 (1 s timeout each). \
         Probe cells: answered/sent · p50 / p99 / max latency in µs.\n",
        thousands(a.count as f64),
        thousands(a.rate),
        a.probe_ms,
        a.quiet_secs,
        a.quiet_secs
    );
    println!("| measure | {} | {} |", runs[0].label, runs[1].label);
    println!("| --- | --- | --- |");
    type Row = (&'static str, Box<dyn Fn(&TargetRun) -> String>);
    let kib = |m: procfs::Mem| {
        format!(
            "{} / {}",
            thousands(m.rss_kib as f64),
            thousands(m.hwm_kib as f64)
        )
    };
    let rows: Vec<Row> = vec![
        (
            "local master after start (s)",
            Box::new(|r: &TargetRun| format!("{:.1}", r.ready_secs)),
        ),
        (
            "announcements sent (errors) / seconds",
            Box::new(|r: &TargetRun| {
                format!(
                    "{} ({}) / {:.1}",
                    thousands(r.sent as f64),
                    r.send_errors,
                    r.flood_secs
                )
            }),
        ),
        (
            "**entries kept** (flood names)",
            Box::new(|r: &TargetRun| {
                format!(
                    "**{}** ({})",
                    r.kept.map_or("?".into(), |k| thousands(k as f64)),
                    r.kept_note
                )
            }),
        ),
        (
            "refused (list full)",
            Box::new(|r: &TargetRun| {
                r.refused
                    .map_or("not counted".into(), |k| thousands(k as f64))
            }),
        ),
        (
            "kernel drops on port 138 during the run",
            Box::new(|r: &TargetRun| thousands(r.udp_drops as f64)),
        ),
        (
            "CPU time during the flood (s)",
            Box::new(|r: &TargetRun| format!("{:.2}", r.cpu_flood)),
        ),
        (
            "VmRSS / VmHWM before the flood (KiB)",
            Box::new(move |r: &TargetRun| kib(r.mem_before)),
        ),
        (
            "**VmRSS / VmHWM after** (KiB)",
            Box::new(move |r: &TargetRun| format!("**{}**", kib(r.mem_after))),
        ),
        (
            "RSS growth (KiB)",
            Box::new(|r: &TargetRun| {
                thousands(r.mem_after.rss_kib as f64 - r.mem_before.rss_kib as f64)
            }),
        ),
    ];
    for (label, f) in &rows {
        println!("| {label} | {} | {} |", f(&runs[0]), f(&runs[1]));
    }
    for (ph, pl) in [
        (Phase::Before, "before"),
        (Phase::During, "during"),
        (Phase::After, "after"),
    ] {
        for (k, kl) in [
            (ProbeKind::BackupList, "GetBackupListRequest"),
            (ProbeKind::NameQuery, "NAME QUERY"),
        ] {
            println!(
                "| {kl} {pl} the flood | {} | {} |",
                phase_summary(&runs[0], ph, k),
                phase_summary(&runs[1], ph, k)
            );
        }
    }
    Ok(())
}
