//! `amplification_bench`: reflection and amplification, nbdgm vs Samba
//! nmbd side by side, for docs/BENCHMARKS.md ("Amplification").
//!
//! Lab (`nbdgm-lab`, one veth bridge on 198.51.100.0/24): host a runs nmbd (SAMBAA,
//! local master of TESTGROUP), host b runs `nbdgm serve` with the default `[limits]`
//! (NBDGMB, local master of BENCHWG), host c is the victim whose address an attacker
//! would spoof: it sends each request with its own address as the UDP source (what the
//! spoofer's packet looks like on the wire) from ports 137 and 138 and counts the UDP
//! payload bytes that come back from the daemon (sockets bound to c's unicast address,
//! so broadcasts are not counted). Requests: NAME QUERY for NAME<00> (RFC 1002
//! §4.2.12), NODE STATUS for `*<00>` (§4.2.17), a DIRECT_UNIQUE datagram to a name
//! nobody holds (DATAGRAM ERROR trigger, RFC 1002 §4.4.3), GetBackupListRequest to
//! WG<1D> (MS-BRWS §2.2.4), and a flood of NAME QUERYs at once (the per-source rate).
//!
//! Every loop is bounded in count and time; nmbd and nbdgm are stopped by PID.
//! Benchmarks, never tests: nothing here asserts. Needs root (namespaces, ports 137/138).

#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use clap::Parser;
use nbdgm_bench::daemon::{start_daemon, stats, wait_master, wait_names, Daemon, DaemonConfig};
use nbdgm_bench::packets;
use nbdgm_bench::procfs;
use nbdgm_bench::setup;
use nbdgm_lab::{Host, Lab, Nmbd, NmbdOptions};
use nbdgm_wire::browser::{BrowserFrame, GetBackupListRequest};
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::nbns::{NbAddress, Packet, Question, RData, Record, CLASS_IN, TYPE_NB};
use nbdgm_wire::Name;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Bytes out ÷ bytes in per request kind, nbdgm vs nmbd (needs root)")]
struct Cli {
    /// The nbdgm binary [default: $NBDGM_BIN, else target/{release,debug}/nbdgm].
    #[arg(long)]
    nbdgm: Option<PathBuf>,
    /// Requests per kind (GetBackupListRequest: half as many, 100 ms apart).
    #[arg(long, default_value_t = 20)]
    requests: u16,
    /// Gap between two requests of a kind, milliseconds.
    #[arg(long, default_value_t = 25)]
    gap_ms: u64,
    /// NAME QUERYs sent at once for the rate row.
    #[arg(long, default_value_t = 400)]
    flood: u16,
    /// A kind is over when nothing arrived for this long, milliseconds.
    #[arg(long, default_value_t = 400)]
    quiet_ms: u64,
    /// Longest wait for nmbd to become local master, seconds.
    #[arg(long, default_value_t = 120)]
    master_timeout_s: u64,
    /// Members of DOMAIN<1C> registered for the name-server row (0: skip that row).
    #[arg(long, default_value_t = 40)]
    members: u8,
}

/// One daemon under test.
struct Target {
    label: String,
    host: Host,
    addr: Ipv4Addr,
    name: String,
    workgroup: String,
}

/// What one kind of request produced.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    requests: u64,
    bytes_in: u64,
    bytes_out: u64,
    answers: u64,
}

impl Measured {
    fn ratio(&self) -> f64 {
        self.bytes_out as f64 / self.bytes_in.max(1) as f64
    }

    fn cell(&self) -> String {
        format!(
            "{} ({:.2}), {} answers",
            thousands(self.bytes_out),
            self.ratio(),
            self.answers
        )
    }
}

fn thousands(n: u64) -> String {
    nbdgm_bench::report::thousands(n as f64)
}

/// The victim's sockets on host c: name service (137) and datagram (138).
struct Victim {
    ns: UdpSocket,
    dgm: UdpSocket,
    addr: Ipv4Addr,
}

impl Victim {
    fn new(host: &Host) -> anyhow::Result<Victim> {
        let a = host.addr();
        let (ns, dgm) = host.in_netns(|| -> std::io::Result<(UdpSocket, UdpSocket)> {
            Ok((UdpSocket::bind((a, 137))?, UdpSocket::bind((a, 138))?))
        })??;
        ns.set_nonblocking(true)?;
        dgm.set_nonblocking(true)?;
        Ok(Victim { ns, dgm, addr: a })
    }

    /// Read what is queued on both sockets; count packets from `from` only.
    fn drain(&self, from: Ipv4Addr, m: &mut Measured, buf: &mut [u8]) -> bool {
        let mut any = false;
        for s in [&self.ns, &self.dgm] {
            while let Ok((n, src)) = s.recv_from(buf) {
                if src.ip() == std::net::IpAddr::V4(from) {
                    m.bytes_out += n as u64;
                    m.answers += 1;
                    any = true;
                }
            }
        }
        any
    }

    /// Send `reqs` (to `port` of `t`, from the socket of the same port), `gap` apart
    /// (zero: all at once), then read until quiet for `quiet` (at most 10 s).
    fn attack(
        &self,
        t: &Target,
        port: u16,
        reqs: &[Vec<u8>],
        gap: Duration,
        quiet: Duration,
    ) -> anyhow::Result<Measured> {
        let sock = if port == 137 { &self.ns } else { &self.dgm };
        let to = SocketAddrV4::new(t.addr, port);
        let mut m = Measured::default();
        let mut buf = vec![0u8; 65_536];
        self.drain(t.addr, &mut Measured::default(), &mut buf); // stale packets
        for r in reqs {
            m.bytes_in += sock.send_to(r, to)? as u64;
            m.requests += 1;
            if !gap.is_zero() {
                let until = Instant::now() + gap;
                while Instant::now() < until {
                    self.drain(t.addr, &mut m, &mut buf);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let end = Instant::now() + Duration::from_secs(10);
        let mut last = Instant::now();
        while last.elapsed() < quiet && Instant::now() < end {
            if self.drain(t.addr, &mut m, &mut buf) {
                last = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(m)
    }
}

fn name(s: &str, suffix: u8) -> anyhow::Result<Name> {
    Ok(Name::new(s, suffix)?)
}

/// A DIRECT_UNIQUE or DIRECT_GROUP datagram from the victim's port 138.
fn datagram(
    v: &Victim,
    msg_type: MsgType,
    id: u16,
    src: Name,
    dst: Name,
    data: Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    Ok(Datagram::data(msg_type, NodeType::B, id, (v.addr, 138), src, dst, data).to_bytes()?)
}

fn backup_list_request(v: &Victim, t: &Target, token: u32) -> anyhow::Result<Vec<u8>> {
    let f = BrowserFrame::GetBackupListRequest(GetBackupListRequest {
        count: 255,
        token,
        trailing: Vec::new(),
    });
    let smb = MailslotWrite::new(BROWSE, f.to_bytes()?).to_bytes()?;
    datagram(
        v,
        MsgType::DirectGroup,
        0x4000 + token as u16,
        name("VICTIM", 0)?,
        name(&t.workgroup, 0x1D)?,
        smb,
    )
}

const KINDS: [&str; 5] = [
    "NAME QUERY NAME<00>",
    "NODE STATUS *<00>",
    "DIRECT_UNIQUE to an unknown name (DATAGRAM ERROR trigger)",
    "GetBackupListRequest, count 255, to WG<1D> (local master)",
    "NAME QUERY flood at once (rate)",
];

fn measure(cli: &Cli, v: &Victim, t: &Target) -> anyhow::Result<Vec<Measured>> {
    let gap = Duration::from_millis(cli.gap_ms);
    let quiet = Duration::from_millis(cli.quiet_ms);
    let n = cli.requests;
    let mut out = Vec::new();
    let q: Vec<Vec<u8>> = (0..n)
        .map(|i| packets::name_query(&format!("{}<00>", t.name), 0x100 + i))
        .collect::<anyhow::Result<_>>()?;
    out.push(v.attack(t, 137, &q, gap, quiet)?);
    let q: Vec<Vec<u8>> = (0..n)
        .map(|i| packets::node_status(0x200 + i))
        .collect::<anyhow::Result<_>>()?;
    out.push(v.attack(t, 137, &q, gap, quiet)?);
    let q: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            datagram(
                v,
                MsgType::DirectUnique,
                0x300 + i,
                name("SENDER", 0)?,
                name("NOBODYHERE", 0)?,
                b"hello".to_vec(),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    out.push(v.attack(t, 138, &q, gap, quiet)?);
    let q: Vec<Vec<u8>> = (0..(n / 2).max(1))
        .map(|i| backup_list_request(v, t, u32::from(i) + 1))
        .collect::<anyhow::Result<_>>()?;
    out.push(v.attack(t, 138, &q, Duration::from_millis(100), quiet)?);
    // Full reply buckets for the flood (nbdgm: burst 100 / 50 per s = 2 s).
    std::thread::sleep(Duration::from_secs(3));
    let q: Vec<Vec<u8>> = (0..cli.flood)
        .map(|i| packets::name_query(&format!("{}<00>", t.name), 0x1000 + i))
        .collect::<anyhow::Result<_>>()?;
    let drops = udp_drops(&t.host, 137);
    out.push(v.attack(t, 137, &q, Duration::ZERO, quiet)?);
    let drops = udp_drops(&t.host, 137)
        .zip(drops)
        .map(|(b, a)| b.saturating_sub(a));
    eprintln!(
        "{}: flood: kernel receive-queue drops on port 137: {}",
        t.label,
        drops.map_or("n/a".into(), |d| d.to_string())
    );
    for (k, m) in KINDS.iter().zip(&out) {
        eprintln!(
            "{}: {k}: {} requests, {} bytes in, {} bytes out, {} answers, {:.2}",
            t.label,
            m.requests,
            m.bytes_in,
            m.bytes_out,
            m.answers,
            m.ratio()
        );
    }
    Ok(out)
}

/// Start nbdgm serve in `host` with the default limits, local master of BENCHWG.
fn start_nbdgm(bin: &Path, lab: &Lab, host: &Host) -> anyhow::Result<(Daemon, PathBuf)> {
    let socket = lab.dir().join("nbdgm-amp.sock");
    let cfg = DaemonConfig {
        name: "NBDGMB".into(),
        workgroup: "BENCHWG".into(),
        address: host.addr(),
        prefix: 24,
        ports: (137, 138),
        socket: socket.clone(),
        raised_limits: false,
        extra: "[browser]\nannounce = true\nlocal_master = true\nos_level = 60\n\
                preferred_master = true\n"
            .into(),
    };
    let d = cfg.start(bin, lab.dir(), "nbdgm-amp", Some(host))?;
    wait_names(&socket, &["NBDGMB<00>"], Duration::from_secs(15))?;
    wait_master(&socket, Duration::from_secs(60)).context("nbdgm is not master of BENCHWG")?;
    Ok((d, socket))
}

/// A group NAME REGISTRATION REQUEST (unicast, RD; G, ONT = H) of `name` at `at`.
fn group_registration(id: u16, name: &Name, at: Ipv4Addr) -> anyhow::Result<Vec<u8>> {
    Ok(Packet {
        id,
        flags: 0x2900,
        questions: vec![Question {
            name: name.clone(),
            qtype: TYPE_NB,
            qclass: CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![Record {
            name: name.clone(),
            rr_type: TYPE_NB,
            rr_class: CLASS_IN,
            ttl: 300_000,
            rdata: RData::Nb(vec![NbAddress {
                flags: 0xE000,
                ip: at,
            }]),
        }],
        trailing: vec![],
    }
    .to_bytes()?)
}

/// Addresses of the group members on host c (198.51.100.100 and up).
fn member_addr(k: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 100 + k)
}

/// Give host c the members' addresses (once).
fn add_member_addresses(hc: &Host, n: u8) -> anyhow::Result<()> {
    for k in 0..n {
        let a = format!("{}/24", member_addr(k));
        let out = hc.output("ip", ["addr", "add", a.as_str(), "dev", hc.iface()])?;
        if !out.status.success() {
            bail!("ip addr add {a}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

/// Register `n` members of `group` at the name server `nbns`, each from its own
/// address (≤ 5 tries of 1 s each); returns how many got a positive answer.
fn register_members(hc: &Host, nbns: Ipv4Addr, group: &Name, n: u8) -> anyhow::Result<u8> {
    let mut granted = 0;
    for k in 0..n {
        let at = member_addr(k);
        let sock = hc.in_netns(|| UdpSocket::bind((at, 0)))??;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let id = 0x7000 + u16::from(k);
        let req = group_registration(id, group, at)?;
        let mut buf = [0u8; 1500];
        'tries: for _ in 0..5 {
            sock.send_to(&req, (nbns, 137))?;
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until {
                let Ok((len, _)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(p) = Packet::parse(&buf[..len]) else {
                    continue;
                };
                // WACK (opcode 7): keep waiting; a final answer ends the tries.
                if p.id == id && p.is_response() && (p.flags >> 11) & 0xF != 7 {
                    if p.rcode() == 0 {
                        granted += 1;
                    }
                    break 'tries;
                }
            }
        }
    }
    Ok(granted)
}

/// The name-server row: `members` register DOMAIN<1C> at `t`, then the victim asks
/// for it `requests` times.
fn nbns_row(cli: &Cli, hc: &Host, v: &Victim, t: &Target) -> anyhow::Result<(u8, Measured)> {
    let group = name("DOMAIN", 0x1C)?;
    let granted = register_members(hc, t.addr, &group, cli.members)?;
    let q: Vec<Vec<u8>> = (0..cli.requests)
        .map(|i| packets::name_query("DOMAIN<1C>", 0x500 + i))
        .collect::<anyhow::Result<_>>()?;
    let m = v.attack(
        t,
        137,
        &q,
        Duration::from_millis(cli.gap_ms),
        Duration::from_millis(cli.quiet_ms),
    )?;
    eprintln!(
        "{}: DOMAIN<1C> with {granted} granted of {} members: {} bytes in, {} out, {} answers, {:.2}",
        t.label,
        cli.members,
        m.bytes_in,
        m.bytes_out,
        m.answers,
        m.ratio()
    );
    Ok((granted, m))
}

/// nbdgm serve with the NBNS role (default limits; room for the members).
fn start_nbdgm_nbns(
    bin: &Path,
    lab: &Lab,
    host: &Host,
    members: u8,
) -> anyhow::Result<(Daemon, PathBuf)> {
    let socket = lab.dir().join("nbdgm-amp-nbns.sock");
    let text = format!(
        "# written by amplification_bench\n[node]\nname = \"NBDGMB\"\nworkgroup = \"BENCHWG\"\n\
         role = [\"nbns\"]\n\n[[interface]]\naddress = \"{}/24\"\n\n[ports]\nname = 137\n\
         datagram = 138\n\n[api]\nsocket = \"{}\"\n\n[nbns_server]\nmax_group_members = {}\n",
        host.addr(),
        socket.display(),
        u32::from(members).max(25)
    );
    let d = start_daemon(bin, &text, &socket, lab.dir(), "nbdgm-amp-nbns", Some(host))?;
    wait_names(&socket, &["NBDGMB<00>"], Duration::from_secs(15))?;
    Ok((d, socket))
}

/// Sum of the `drops` column of the UDP sockets on `port` in `host`'s namespace (packets
/// the kernel discarded because a socket's receive queue was full).
fn udp_drops(host: &Host, port: u16) -> Option<u64> {
    let out = host.output("cat", ["/proc/net/udp"]).ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(procfs::udp_port_drops(&text, port))
}

fn nmbd_version() -> String {
    std::process::Command::new("/usr/sbin/nmbd")
        .arg("--version")
        .output()
        .map(|o| {
            let v = String::from_utf8_lossy(&o.stdout);
            format!("nmbd {}", v.trim().trim_start_matches("Version "))
        })
        .unwrap_or_else(|_| "nmbd".into())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("amplification_bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let (lab, ha, hb, hc) = setup::lab_abc("amplification_bench")?;
    let bin = setup::nbdgm_binary(cli.nbdgm.clone())?;
    // log level 3: the lab's wait helpers read the log; 10 would write every packet.
    let nmbd = setup::quiet_nmbd(&ha, 3, &[])?;
    let (nb_proc, nb_sock) = start_nbdgm(&bin, &lab, &hb)?;
    nmbd.wait_local_master(Duration::from_secs(cli.master_timeout_s))?;
    let v = Victim::new(&hc)?;
    let targets = [
        Target {
            label: nmbd_version(),
            host: ha.clone(),
            addr: ha.addr(),
            name: "SAMBAA".into(),
            workgroup: "TESTGROUP".into(),
        },
        Target {
            label: "nbdgm (default configuration)".into(),
            host: hb.clone(),
            addr: hb.addr(),
            name: "NBDGMB".into(),
            workgroup: "BENCHWG".into(),
        },
    ];
    let mut results = Vec::new();
    for t in &targets {
        results.push(measure(cli, &v, t)?);
    }
    let st = stats(&nb_sock)?;
    eprintln!("nbdgm reply_gate: {}", st["interfaces"][0]["reply_gate"]);
    eprintln!("nbdgm runtime: {}", st["interfaces"][0]["runtime"]);
    nb_proc.stop();
    nmbd.stop()?;
    let nbns = if cli.members > 0 {
        Some(nbns_rows(
            cli,
            &bin,
            &lab,
            [&ha, &hb, &hc],
            &v,
            &targets[0].label,
        )?)
    } else {
        None
    };
    print_table(cli, &targets, &results, nbns);
    Ok(())
}

/// The name-server row: nmbd as WINS server vs nbdgm's NBNS role, with `cli.members`
/// group members registered from the victim host.
fn nbns_rows(
    cli: &Cli,
    bin: &Path,
    lab: &Lab,
    [ha, hb, hc]: [&Host; 3],
    v: &Victim,
    nmbd_label: &str,
) -> anyhow::Result<NbnsRows> {
    {
        add_member_addresses(hc, cli.members)?;
        let wins = Nmbd::start(
            ha,
            NmbdOptions {
                extra_global: vec!["log level = 3".into(), "wins support = yes".into()],
                ..Default::default()
            },
        )?;
        // As its own WINS server nmbd may log its registrations differently: the
        // members' registrations below retry anyway.
        if let Err(e) = wins.wait_registered(Duration::from_secs(20)) {
            eprintln!("nmbd (wins): {e}");
        }
        let tw = Target {
            label: format!("{nmbd_label} (wins support = yes)"),
            host: ha.clone(),
            addr: ha.addr(),
            name: "SAMBAA".into(),
            workgroup: "TESTGROUP".into(),
        };
        let a = nbns_row(cli, hc, v, &tw)?;
        wins.stop()?;
        let (p, sock) = start_nbdgm_nbns(bin, lab, hb, cli.members)?;
        let tn = Target {
            label: "nbdgm (role nbns)".into(),
            host: hb.clone(),
            addr: hb.addr(),
            name: "NBDGMB".into(),
            workgroup: "BENCHWG".into(),
        };
        let b = nbns_row(cli, hc, v, &tn)?;
        let st = stats(&sock)?;
        eprintln!("nbdgm nbns: {}", st["interfaces"][0]["roles"]["nbns"]);
        eprintln!("nbdgm reply_gate: {}", st["interfaces"][0]["reply_gate"]);
        p.stop();
        Ok((a, b))
    }
}

/// The WINS and NBNS rows: (granted registrations, measurement) of nmbd and of nbdgm.
type NbnsRows = ((u8, Measured), (u8, Measured));

/// The markdown table of docs/BENCHMARKS.md ("Amplification").
fn print_table(
    cli: &Cli,
    targets: &[Target; 2],
    results: &[Vec<Measured>],
    nbns: Option<NbnsRows>,
) {
    println!(
        "\nLab: 198.51.100.0/24 in network namespaces; victim 198.51.100.30 sends from ports \
         137/138 and counts the UDP payload bytes coming back (out) against those it sent \
         (in). {} requests per kind, {} ms apart ({} GetBackupListRequests, 100 ms apart); \
         the flood is {} NAME QUERYs at once.\n",
        cli.requests,
        cli.gap_ms,
        (cli.requests / 2).max(1),
        cli.flood
    );
    println!(
        "| request | bytes in | {}: out (÷ in), answers | {}: out (÷ in), answers |",
        targets[0].label, targets[1].label
    );
    println!("|---|---:|---|---|");
    for (k, kind) in KINDS.iter().enumerate() {
        let (a, b) = (&results[0][k], &results[1][k]);
        println!(
            "| {kind} | {} | {} | {} |",
            thousands(a.bytes_in),
            a.cell(),
            b.cell()
        );
    }
    if let Some(((ga, a), (gb, b))) = nbns {
        println!(
            "| NAME QUERY DOMAIN<1C>, {} members registered (WINS / NBNS role; granted {ga} / {gb}) | {} | {} | {} |",
            cli.members,
            thousands(a.bytes_in),
            a.cell(),
            b.cell()
        );
    }
}
