//! `probe_bench`: `nbdgm probe` against nmap on one lab of network-namespace
//! hosts with known truth, printing markdown tables for docs/BENCHMARKS.md. Run by
//! `bench/probe.sh`.
//!
//! The lab (made by `nbdgm-lab`, 198.51.100.0/24 only): a scanner host and a few target
//! hosts per class — Samba nmbd as local master browser, nmbd not master, nothing
//! listening, nftables drop, nftables reject admin-prohibited — while the rest of the /24 is
//! empty. Each tool scans the whole /24 from the scanner's namespace (`ip netns exec`),
//! the tools alternating within each round. Measured per run: wall time, frames the scanner
//! put on the wire (an nftables `bridge` counter on the scanner's bridge port, the same
//! method for every tool) and the state each tool gave each address and port, compared with
//! the truth of its class.
//!
//! Every tool run is bounded in time and stopped by PID; the namespaces and nmbd processes
//! are removed by `nbdgm-lab`. Needs root, nmbd, nft and nmap.

#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use clap::Parser;
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, thousands};
use nbdgm_lab::{Host, Lab, LabSpec, Nmbd, NmbdOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scanned range.
const RANGE: &str = "198.51.100.0/24";
/// Host name of the scanner (its bridge port is `p-scan`).
const SCANNER: &str = "scan";
const SCANNER_IP: &str = "198.51.100.250/24";

#[derive(Parser, Debug)]
#[command(about = "`nbdgm probe` vs nmap on a lab /24 (see docs/BENCHMARKS.md §4)")]
struct Cli {
    /// The nbdgm binary [default: $NBDGM_BIN, else target/{release,debug}/nbdgm].
    #[arg(long)]
    nbdgm: Option<PathBuf>,
    /// The nmap binary.
    #[arg(long, default_value = "/usr/bin/nmap")]
    nmap: PathBuf,
    /// Rounds; in each, every tool runs once, in the order of --tools. Medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Which runs to make (comma-separated): nbdgm (ARP host discovery first, the default),
    /// nbdgm-nodisc (`--no-discovery`), nbdgm-unpriv (setpriv without CAP_NET_RAW), nbdgm-fast,
    /// nbdgm-quick, nmap-pn, nmap,
    /// nmap-nbstat, nmap-noarp (`-Pn --disable-arp-ping`).
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = ["nbdgm", "nmap-pn", "nbdgm-fast", "nmap", "nbdgm-quick", "nmap-nbstat"].map(String::from)
    )]
    tools: Vec<String>,
    /// Extra arguments of the `nbdgm-fast` run (space-separated).
    #[arg(long, default_value = "--concurrency 256")]
    fast_args: String,
    /// Extra arguments of the `nbdgm-quick` run (space-separated).
    #[arg(long, default_value = "--concurrency 256 --timeout-ms 200 --retries 1")]
    quick_args: String,
    /// Set net.ipv4.icmp_msgs_burst and icmp_msgs_per_sec in the scanner's namespace (the
    /// kernel's global ICMP budget, which also limits the host-unreachable errors it reports
    /// to local sockets when ARP fails; default 50 and 1000/s).
    #[arg(long)]
    scanner_icmp_burst: Option<u32>,
    /// Write each run's standard output (JSON, XML) into this directory.
    #[arg(long)]
    save_dir: Option<PathBuf>,
    /// Bound on one tool run (killed by PID after that).
    #[arg(long, default_value_t = 900)]
    max_secs: u64,
    /// Before each run, wait at most this long for the machine to be < 10 % busy.
    #[arg(long, default_value_t = 120)]
    idle_wait_secs: u64,
    /// Print every run's per-address states on stderr.
    #[arg(long)]
    verbose: bool,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("probe_bench: {e:#}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// Lab and truth
// ---------------------------------------------------------------------------------------

/// What is really there on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    /// A process listens and would take the datagram (nmbd).
    Open,
    /// Nothing listens, nothing filters: the kernel answers ICMP port unreachable.
    Closed,
    /// An nftables rule drops or rejects the datagram before any socket sees it.
    Filtered,
    /// No host has the address (no ARP answer).
    HostDown,
}

impl Truth {
    fn as_str(self) -> &'static str {
        match self {
            Truth::Open => "open",
            Truth::Closed => "closed",
            Truth::Filtered => "filtered",
            Truth::HostDown => "host-down",
        }
    }
}

/// A class of addresses with one truth per port.
struct Class {
    label: &'static str,
    truth: [Truth; 2],
    addrs: Vec<Ipv4Addr>,
    /// For nmbd classes: the (name, workgroup) of each address, in `addrs` order.
    nmbd: Vec<(String, String)>,
}

/// Target host plans: (class index, last octet, nmbd (name, workgroup, local master), nft rule).
struct Plan {
    class: usize,
    octet: u8,
    nmbd: Option<(&'static str, &'static str, bool)>,
    nft: Option<&'static str>,
}

const DROP_BOTH: &str = "udp dport { 137, 138 } drop";
const DROP_138: &str = "udp dport 138 drop";
const REJECT_BOTH: &str = "udp dport { 137, 138 } reject with icmp type admin-prohibited";

fn classes_and_plans() -> (Vec<Class>, Vec<Plan>) {
    use Truth::*;
    let c = |label, t137, t138| Class {
        label,
        truth: [t137, t138],
        addrs: Vec::new(),
        nmbd: Vec::new(),
    };
    let classes = vec![
        c("nmbd, local master browser", Open, Open),
        c("nmbd, not master browser", Open, Open),
        c("nothing listening", Closed, Closed),
        c("nmbd behind nft drop 137+138", Filtered, Filtered),
        c("nothing, nft drop 137+138", Filtered, Filtered),
        c("nmbd, nft drop 138 only", Open, Filtered),
        c(
            "nmbd behind nft reject admin-prohibited 137+138",
            Filtered,
            Filtered,
        ),
        c(
            "nothing, nft reject admin-prohibited 137+138",
            Filtered,
            Filtered,
        ),
        c(
            "the scanner itself (.250, nothing listening)",
            Closed,
            Closed,
        ),
        c("no host at the address (empty)", HostDown, HostDown),
    ];
    let p = |class, octet, nmbd, nft| Plan {
        class,
        octet,
        nmbd,
        nft,
    };
    let plans = vec![
        p(0, 10, Some(("NBLMB10", "WGLMB10", true)), None),
        p(0, 11, Some(("NBLMB11", "WGLMB11", true)), None),
        p(1, 12, Some(("NBPLAIN12", "WGPLAIN", false)), None),
        p(1, 13, Some(("NBPLAIN13", "WGPLAIN", false)), None),
        p(2, 20, None, None),
        p(2, 21, None, None),
        p(3, 30, Some(("NBDROP30", "WGDROP", false)), Some(DROP_BOTH)),
        p(4, 31, None, Some(DROP_BOTH)),
        p(5, 32, Some(("NBDROP32", "WGDROP", false)), Some(DROP_138)),
        p(6, 40, Some(("NBREJ40", "WGREJ", false)), Some(REJECT_BOTH)),
        p(7, 41, None, Some(REJECT_BOTH)),
    ];
    (classes, plans)
}

/// Run `nft ARGS` (one argument string, as nft joins its arguments) in a host.
fn nft_host(host: &Host, args: &str) -> anyhow::Result<()> {
    let out = host.output("nft", [args])?;
    if !out.status.success() {
        bail!(
            "nft {args} in {}: {}",
            host.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `ip netns exec NS nft ARGS` in the lab's bridge namespace (bounded by 30 s).
fn nft_bridge(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let nft = nbdgm_lab::tool_path("nft").context("nft not found")?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(nft).args(args);
    let out = run_bounded(cmd, Duration::from_secs(30), None)?;
    if out.code != Some(0) {
        bail!("nft {args:?} in {ns}: {}", out.stderr);
    }
    Ok(out.stdout)
}

/// The lab: scanner, targets (nmbd processes kept alive), classes with their addresses.
struct Setup {
    lab: Lab,
    scanner: Host,
    _hosts: Vec<Host>,
    nmbds: Vec<Nmbd>,
    classes: Vec<Class>,
}

fn build_lab() -> anyhow::Result<Setup> {
    let t0 = Instant::now();
    let lab = Lab::new(LabSpec::one_subnet()).context("lab")?;
    let scanner = lab.add_host(SCANNER, SCANNER_IP)?;
    let (mut classes, plans) = classes_and_plans();
    let mut hosts = Vec::new();
    let mut nmbds = Vec::new();
    for p in &plans {
        let h = lab.add_host(
            &format!("t{}", p.octet),
            &format!("198.51.100.{}/24", p.octet),
        )?;
        if let Some(rule) = p.nft {
            nft_host(&h, "add table ip bench")?;
            nft_host(
                &h,
                "add chain ip bench input { type filter hook input priority 0 ; policy accept ; }",
            )?;
            nft_host(&h, &format!("add rule ip bench input {rule}"))?;
        }
        if let Some((name, wg, lm)) = p.nmbd {
            let opts = NmbdOptions {
                netbios_name: name.into(),
                workgroup: wg.into(),
                local_master: lm,
                preferred_master: lm,
                ..NmbdOptions::default()
            };
            nmbds.push(Nmbd::start(&h, opts).with_context(|| format!("nmbd {name}"))?);
            classes[p.class].nmbd.push((name.into(), wg.into()));
        }
        classes[p.class].addrs.push(h.addr());
        hosts.push(h);
    }
    classes[8].addrs.push(scanner.addr());
    let taken: BTreeSet<Ipv4Addr> = classes.iter().flat_map(|c| c.addrs.clone()).collect();
    classes[9].addrs = (1u8..=254)
        .map(|o| Ipv4Addr::new(198, 51, 100, o))
        .filter(|a| !taken.contains(a))
        .collect();
    for n in &nmbds {
        n.wait_registered(Duration::from_secs(30))
            .with_context(|| format!("{} registered", n.options().netbios_name))?;
    }
    for n in nmbds.iter().filter(|n| n.options().local_master) {
        n.wait_local_master(Duration::from_secs(90))
            .with_context(|| format!("{} local master", n.options().netbios_name))?;
    }
    eprintln!(
        "lab ready in {:.1} s: {} target hosts, {} nmbd, scanner {}",
        t0.elapsed().as_secs_f64(),
        hosts.len(),
        nmbds.len(),
        scanner.addr()
    );
    // Frame counters on the scanner's bridge port (bridge family: sees every frame the
    // scanner puts on the wire, whether from a UDP socket or a packet socket).
    let br = lab.bridge_netns();
    let port = format!("p-{SCANNER}");
    nft_bridge(&br, &["add table bridge nbbench"])?;
    nft_bridge(
        &br,
        &["add chain bridge nbbench pre { type filter hook prerouting priority 0 ; policy accept ; }"],
    )?;
    nft_bridge(
        &br,
        &["add chain bridge nbbench post { type filter hook postrouting priority 0 ; policy accept ; }"],
    )?;
    for (rule, comment) in [
        ("udp dport 137", "udp137"),
        ("udp dport 138", "udp138"),
        ("ether type arp", "arp"),
        ("ether type ip", "ip"),
        ("", "all"),
    ] {
        nft_bridge(
            &br,
            &[&format!(
                "add rule bridge nbbench pre iifname \"{port}\" {rule} counter comment \"{comment}\""
            )],
        )?;
    }
    nft_bridge(
        &br,
        &[&format!(
            "add rule bridge nbbench post oifname \"{port}\" counter comment \"to-scanner\""
        )],
    )?;
    Ok(Setup {
        lab,
        scanner,
        _hosts: hosts,
        nmbds,
        classes,
    })
}

/// Frame counters on the scanner's bridge port.
#[derive(Debug, Clone, Copy, Default)]
struct Wire {
    udp137: u64,
    udp138: u64,
    arp: u64,
    ip: u64,
    all: u64,
    to_scanner: u64,
}

impl Wire {
    fn sub(self, b: Wire) -> Wire {
        Wire {
            udp137: self.udp137 - b.udp137,
            udp138: self.udp138 - b.udp138,
            arp: self.arp - b.arp,
            ip: self.ip - b.ip,
            all: self.all - b.all,
            to_scanner: self.to_scanner - b.to_scanner,
        }
    }
    fn probes(self) -> u64 {
        self.udp137 + self.udp138
    }
}

fn read_wire(br: &str) -> anyhow::Result<Wire> {
    let text = nft_bridge(br, &["-j", "list", "table", "bridge", "nbbench"])?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let mut w = Wire::default();
    for item in v["nftables"].as_array().context("nft json")? {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let packets = rule["expr"]
            .as_array()
            .and_then(|e| e.iter().find_map(|x| x["counter"]["packets"].as_u64()))
            .unwrap_or(0);
        match rule["comment"].as_str() {
            Some("udp137") => w.udp137 = packets,
            Some("udp138") => w.udp138 = packets,
            Some("arp") => w.arp = packets,
            Some("ip") => w.ip = packets,
            Some("all") => w.all = packets,
            Some("to-scanner") => w.to_scanner = packets,
            _ => {}
        }
    }
    Ok(w)
}

// ---------------------------------------------------------------------------------------
// Running a tool
// ---------------------------------------------------------------------------------------

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
}

/// Run `cmd` with stdout and stderr into temporary files, killed (by its PID) after `max`.
fn run_bounded(mut cmd: Command, max: Duration, dir: Option<&Path>) -> anyhow::Result<Finished> {
    let tmp = match dir {
        Some(d) => tempfile::Builder::new().tempdir_in(d)?,
        None => tempfile::Builder::new()
            .prefix("nbdgm-probe-bench-")
            .tempdir()?,
    };
    let out_p = tmp.path().join("out");
    let err_p = tmp.path().join("err");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_p)?)
        .stderr(std::fs::File::create(&err_p)?);
    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let code = loop {
        if let Some(s) = child.try_wait()? {
            break s.code();
        }
        if t0.elapsed() > max {
            eprintln!("killing pid {} after {} s", child.id(), max.as_secs());
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = t0.elapsed().as_secs_f64();
    Ok(Finished {
        code,
        stdout: std::fs::read_to_string(&out_p).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_p).unwrap_or_default(),
        secs,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nbdgm,
    Nmap,
}

/// nmap's own summary, or for nbdgm the hosts in its JSON and its stderr line
/// "nbdgm probe: discovery: arp-raw on ...: N swept, ...".
fn run_summary(kind: Kind, f: &Finished, hosts: usize) -> String {
    if kind == Kind::Nmap {
        return nmap_summary(&f.stdout);
    }
    let disc = f
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("nbdgm probe: discovery: "))
        .unwrap_or("?");
    format!("{hosts} hosts in the JSON; discovery {disc}")
}

struct Tool {
    key: String,
    label: String,
    kind: Kind,
    args: Vec<String>,
    /// Ports scanned: [137, 138].
    ports: [bool; 2],
}

fn tools(cli: &Cli, nbdgm: &Path) -> anyhow::Result<Vec<Tool>> {
    let mut out = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    let nb = nbdgm.display().to_string();
    let nmap = cli.nmap.display().to_string();
    for key in &cli.tools {
        let base_nb = s(&[
            &nb,
            "probe",
            RANGE,
            "--ports",
            "137,138/udp",
            "--format",
            "json",
            "--no-progress",
        ]);
        let t = match key.as_str() {
            "nbdgm" => Tool {
                key: key.clone(),
                label: "nbdgm (defaults)".into(),
                kind: Kind::Nbdgm,
                args: base_nb,
                ports: [true, true],
            },
            "nbdgm-nodisc" => {
                let mut args = base_nb;
                args.push("--no-discovery".into());
                Tool {
                    key: key.clone(),
                    label: "nbdgm `--no-discovery`".into(),
                    kind: Kind::Nbdgm,
                    args,
                    ports: [true, true],
                }
            }
            "nbdgm-unpriv" => Tool {
                key: key.clone(),
                label: "nbdgm without CAP_NET_RAW (neighbour table)".into(),
                kind: Kind::Nbdgm,
                args: [
                    s(&["setpriv", "--inh-caps=-all", "--bounding-set=-net_raw"]),
                    base_nb,
                ]
                .concat(),
                ports: [true, true],
            },
            "nbdgm-fast" => {
                let mut args = base_nb;
                args.extend(cli.fast_args.split_whitespace().map(String::from));
                Tool {
                    key: key.clone(),
                    label: format!("nbdgm `{}`", cli.fast_args),
                    kind: Kind::Nbdgm,
                    args,
                    ports: [true, true],
                }
            }
            "nbdgm-quick" => {
                let mut args = base_nb;
                args.extend(cli.quick_args.split_whitespace().map(String::from));
                Tool {
                    key: key.clone(),
                    label: format!("nbdgm `{}`", cli.quick_args),
                    kind: Kind::Nbdgm,
                    args,
                    ports: [true, true],
                }
            }
            "nmap-pn" => Tool {
                key: key.clone(),
                label: "nmap -sU -Pn".into(),
                kind: Kind::Nmap,
                args: s(&[&nmap, "-sU", "-p137,138", "-n", "-Pn", RANGE, "-oX", "-"]),
                ports: [true, true],
            },
            "nmap-noarp" => Tool {
                key: key.clone(),
                label: "nmap -sU -Pn --disable-arp-ping".into(),
                kind: Kind::Nmap,
                args: s(&[
                    &nmap,
                    "-sU",
                    "-p137,138",
                    "-n",
                    "-Pn",
                    "--disable-arp-ping",
                    RANGE,
                    "-oX",
                    "-",
                ]),
                ports: [true, true],
            },
            "nmap" => Tool {
                key: key.clone(),
                label: "nmap -sU (ARP ping)".into(),
                kind: Kind::Nmap,
                args: s(&[&nmap, "-sU", "-p137,138", "-n", RANGE, "-oX", "-"]),
                ports: [true, true],
            },
            "nmap-nbstat" => Tool {
                key: key.clone(),
                label: "nmap -sU -p137 --script nbstat".into(),
                kind: Kind::Nmap,
                args: s(&[
                    &nmap, "-sU", "-p137", "--script", "nbstat", "-n", RANGE, "-oX", "-",
                ]),
                ports: [true, false],
            },
            other => bail!("unknown tool {other:?}"),
        };
        out.push(t);
    }
    Ok(out)
}

/// What a tool said about one address.
#[derive(Debug, Clone, Default)]
struct Obs {
    /// States of 137/udp and 138/udp (None: not reported).
    state: [Option<String>; 2],
    /// NetBIOS names as `NAME<xx>` (upper-case hex), when the tool got a name table.
    names: Option<BTreeSet<String>>,
}

struct RunRecord {
    tool: usize,
    secs: f64,
    wire: Wire,
    /// nbdgm only: the sum of `attempts` over all ports.
    attempts: Option<u64>,
    code: Option<i32>,
    obs: BTreeMap<Ipv4Addr, Obs>,
    busy: f64,
}

fn parse_nbdgm(json: &str) -> anyhow::Result<(BTreeMap<Ipv4Addr, Obs>, u64)> {
    let v: serde_json::Value = serde_json::from_str(json).context("nbdgm json")?;
    let mut map = BTreeMap::new();
    let mut attempts = 0u64;
    for h in v.as_array().context("nbdgm json: not an array")? {
        let addr: Ipv4Addr = h["address"].as_str().context("address")?.parse()?;
        let mut o = Obs::default();
        for p in h["ports"].as_array().context("ports")? {
            attempts += p["attempts"].as_u64().unwrap_or(0);
            let i = match p["port"].as_str() {
                Some("137/udp") => 0,
                Some("138/udp") => 1,
                _ => continue,
            };
            o.state[i] = p["state"].as_str().map(String::from);
        }
        if let Some(names) = h["info"]["names"].as_array() {
            o.names = Some(
                names
                    .iter()
                    .filter_map(|n| n["name"].as_str())
                    .map(normalize_name)
                    .collect(),
            );
        }
        map.insert(addr, o);
    }
    Ok((map, attempts))
}

/// `NAME<xx>` with the suffix in upper-case hex and trailing spaces removed.
fn normalize_name(s: &str) -> String {
    match s.rsplit_once('<') {
        Some((n, rest)) => format!(
            "{}<{}>",
            n.trim_end(),
            rest.trim_end_matches('>').to_ascii_uppercase()
        ),
        None => s.trim_end().to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// nmap XML (a small parser over the text of `-oX -`)
// ---------------------------------------------------------------------------------------

/// The value of attribute `name` in the tag text `tag` (`<x a="1" b="2">`), unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')? + i;
    Some(unescape(&tag[i..j]))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(j) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let ent = &tail[1..j];
        let decoded = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=j]),
        }
        rest = &tail[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Every opening tag `<name ...>` in `text`, as its full text.
fn tags<'a>(text: &'a str, name: &str) -> std::vec::IntoIter<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    for (i, _) in text.match_indices(open.as_str()) {
        let rest = &text[i + open.len()..];
        if !matches!(rest.chars().next(), Some(' ' | '>' | '/')) {
            continue;
        }
        if let Some(end) = text[i..].find('>') {
            out.push(&text[i..=i + end]);
        }
    }
    out.into_iter()
}

/// The names listed by nbstat's output (`  NAME<xx>   Flags: ...` lines after `Names:`), as
/// `NAME<XX>`, nmap's `\xNN` escapes written `<NN>` as nbdgm does.
fn nbstat_names(out: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Some((_, list)) = out.split_once("Names:") else {
        return names;
    };
    for line in list.lines() {
        let Some((name, _)) = line.split_once("Flags:") else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let mut fixed = String::new();
        let mut rest = name;
        while let Some(i) = rest.find("\\x") {
            fixed.push_str(&rest[..i]);
            let hex = rest.get(i + 2..i + 4).unwrap_or("");
            if hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                fixed.push_str(&format!("<{}>", hex.to_ascii_uppercase()));
                rest = &rest[i + 4..];
            } else {
                fixed.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
        fixed.push_str(rest);
        names.insert(normalize_name(&fixed));
    }
    names
}

/// Per address: the states of 137/138 and the nbstat names. Addresses not listed, and
/// hosts with `<status state="down">`, are `host-down`.
fn parse_nmap(xml: &str) -> BTreeMap<Ipv4Addr, Obs> {
    let mut map = BTreeMap::new();
    for block in xml.split("<host ").skip(1).chain(
        // `<host>` without attributes.
        xml.split("<host>").skip(1),
    ) {
        let block = block.split("</host>").next().unwrap_or(block);
        let Some(addr) = tags(block, "address")
            .find(|t| attr(t, "addrtype").as_deref() == Some("ipv4"))
            .and_then(|t| attr(t, "addr"))
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let mut o = Obs::default();
        let up = tags(block, "status")
            .next()
            .and_then(|t| attr(t, "state"))
            .is_none_or(|s| s == "up");
        if !up {
            o.state = [Some("host-down".into()), Some("host-down".into())];
            map.insert(addr, o);
            continue;
        }
        // Collapsed ports (`<extraports state="open|filtered" count="2">`).
        if let Some(t) = tags(block, "extraports").next() {
            let s = attr(t, "state");
            o.state = [s.clone(), s];
        }
        for (i, _) in block.match_indices("<port ") {
            let tag = tags(&block[i..], "port").next().unwrap_or("");
            let idx = match attr(tag, "portid").as_deref() {
                Some("137") => 0,
                Some("138") => 1,
                _ => continue,
            };
            let body = &block[i..];
            let body = body.split("</port>").next().unwrap_or(body);
            if let Some(st) = tags(body, "state").next().and_then(|t| attr(t, "state")) {
                o.state[idx] = Some(st);
            }
        }
        // nbstat's text output (`-oX` of nmap 7.93 carries the names only there):
        // "NetBIOS name: X, ...\nNames:\n  X<00>          Flags: <unique><active>\n ...".
        if let Some(out) = tags(block, "script")
            .find(|t| attr(t, "id").as_deref() == Some("nbstat"))
            .and_then(|t| attr(t, "output"))
        {
            o.names = Some(nbstat_names(&out));
        }
        map.insert(addr, o);
    }
    map
}

/// nmap's summary line, e.g. `Nmap done at ...; 256 IP addresses (12 hosts up) scanned in 31.07 seconds`.
fn nmap_summary(xml: &str) -> String {
    tags(xml, "finished")
        .next()
        .and_then(|t| attr(t, "summary"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------

fn run(cli: &Cli) -> anyhow::Result<()> {
    let bin = match &cli.nbdgm {
        Some(p) => p.clone(),
        None => nbdgm_lab::find_nbdgm_binary()?,
    };
    let bin = bin.canonicalize().context("nbdgm binary")?;
    let tools = tools(cli, &bin)?;
    if !nbdgm_lab::require_or_skip("probe_bench") {
        bail!("the lab cannot run here (needs root, iproute2, nmbd, tshark)");
    }
    nbdgm_lab::tool_path("nft").context("nft not found")?;
    if !cli.nmap.exists() {
        bail!("{} not found", cli.nmap.display());
    }
    let setup = build_lab()?;
    let br = setup.lab.bridge_netns();
    if let Some(burst) = cli.scanner_icmp_burst {
        for (k, v) in [
            ("net.ipv4.icmp_msgs_burst", burst),
            ("net.ipv4.icmp_msgs_per_sec", burst.max(1000)),
        ] {
            let out = setup
                .scanner
                .output("sysctl", ["-w".to_string(), format!("{k}={v}")])?;
            if !out.status.success() {
                bail!("sysctl {k}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    let sysctl = setup.scanner.output(
        "sysctl",
        ["net.ipv4.icmp_msgs_burst", "net.ipv4.icmp_msgs_per_sec"],
    )?;
    eprintln!(
        "scanner: {}",
        String::from_utf8_lossy(&sysctl.stdout).replace('\n', "; ")
    );
    if let Some(d) = &cli.save_dir {
        std::fs::create_dir_all(d)?;
    }
    let mut records: Vec<RunRecord> = Vec::new();
    for round in 0..cli.runs {
        for (ti, t) in tools.iter().enumerate() {
            let busy = procfs::wait_idle(0.10, Duration::from_secs(cli.idle_wait_secs));
            let before = read_wire(&br)?;
            let mut cmd = setup.scanner.cmd(&t.args[0]);
            cmd.args(&t.args[1..]);
            let f = run_bounded(cmd, Duration::from_secs(cli.max_secs), None)?;
            let after = read_wire(&br)?;
            let wire = after.sub(before);
            if let Some(d) = &cli.save_dir {
                let ext = if t.kind == Kind::Nbdgm { "json" } else { "xml" };
                std::fs::write(d.join(format!("{}-{}.{ext}", t.key, round + 1)), &f.stdout)?;
            }
            let (obs, attempts) = match t.kind {
                Kind::Nbdgm => {
                    let (o, a) = parse_nbdgm(&f.stdout).with_context(|| {
                        format!(
                            "{} (exit {:?}): {}",
                            t.label,
                            f.code,
                            f.stderr.lines().take(5).collect::<Vec<_>>().join(" / ")
                        )
                    })?;
                    (o, Some(a))
                }
                Kind::Nmap => (parse_nmap(&f.stdout), None),
            };
            let summary = run_summary(t.kind, &f, obs.len());
            eprintln!(
                "round {} {:<32} {:7.2} s, exit {:?}, wire: udp137 {} udp138 {} arp {} ip {} all {} to-scanner {}{}; busy before {:.0} %; {}",
                round + 1,
                t.label,
                f.secs,
                f.code,
                wire.udp137,
                wire.udp138,
                wire.arp,
                wire.ip,
                wire.all,
                wire.to_scanner,
                attempts.map_or(String::new(), |a| format!(", attempts {a}")),
                100.0 * busy,
                summary
            );
            if cli.verbose {
                for (a, o) in &obs {
                    eprintln!(
                        "    {a} {:?} {:?}",
                        o.state,
                        o.names.as_ref().map(|n| n.len())
                    );
                }
            }
            records.push(RunRecord {
                tool: ti,
                secs: f.secs,
                wire,
                attempts,
                code: f.code,
                obs,
                busy,
            });
        }
    }
    for n in &setup.nmbds {
        n.stop()?;
    }
    report(cli, &tools, &setup.classes, &records);
    drop(setup);
    Ok(())
}

/// State of `addr`/`port` in one run (unlisted by nmap = host-down).
fn state_of(r: &RunRecord, addr: Ipv4Addr, port: usize) -> String {
    match r.obs.get(&addr) {
        Some(o) => o.state[port].clone().unwrap_or_else(|| "(none)".into()),
        None => "host-down".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Right,
    /// A two-state answer (`open|filtered`, `likely-open`) that includes the truth.
    Ambiguous,
    Wrong,
}

fn verdict(truth: Truth, state: &str) -> Verdict {
    if state == truth.as_str() {
        return Verdict::Right;
    }
    match (state, truth) {
        ("open|filtered", Truth::Open | Truth::Filtered) => Verdict::Ambiguous,
        ("likely-open", Truth::Open) => Verdict::Ambiguous,
        _ => Verdict::Wrong,
    }
}

/// The runs of tool `ti`.
fn runs_of(recs: &[RunRecord], ti: usize) -> impl Iterator<Item = &RunRecord> {
    recs.iter().filter(move |r| r.tool == ti)
}

/// The tables of docs/BENCHMARKS.md §4: wall time and rate, states per class, accuracy,
/// NetBIOS names.
fn report(cli: &Cli, tools: &[Tool], classes: &[Class], recs: &[RunRecord]) {
    report_time(cli, tools, classes, recs);
    report_states(tools, classes, recs);
    report_accuracy(tools, classes, recs);
    report_names(tools, classes, recs);
}

/// Wall time, probe rate and frames on the wire; exit codes; the commands.
fn report_time(cli: &Cli, tools: &[Tool], classes: &[Class], recs: &[RunRecord]) {
    let of = |ti: usize| runs_of(recs, ti);
    let list = |v: &[f64], prec: usize| {
        v.iter()
            .map(|x| format!("{x:.prec$}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let addresses: usize = classes.iter().map(|c| c.addrs.len()).sum();
    println!("\n### Wall time and probe rate for {RANGE} ({addresses} addresses)\n");
    println!(
        "{} rounds, the tools alternating in each; medians, then every run. Frames counted by an \
         nftables `bridge` counter on the scanner's bridge port (everything the scanner put on \
         the wire, the same for every tool). \"UDP probes\" = frames to UDP port 137 or 138; \
         probes/s = those ÷ wall time.\n",
        cli.runs
    );
    println!("| tool | wall time (s) | runs (s) | UDP probes on the wire | probes/s | ARP requests | all frames from the scanner | frames to the scanner | probes counted by the tool |");
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (ti, t) in tools.iter().enumerate() {
        let secs: Vec<f64> = of(ti).map(|r| r.secs).collect();
        let m = |f: &dyn Fn(&RunRecord) -> f64| median(&of(ti).map(f).collect::<Vec<_>>());
        let probes = m(&|r| r.wire.probes() as f64);
        let rate = m(&|r| r.wire.probes() as f64 / r.secs);
        let attempts = if t.kind == Kind::Nbdgm {
            thousands(m(&|r| r.attempts.unwrap_or(0) as f64))
        } else {
            "—".into()
        };
        println!(
            "| {} | **{:.2}** | {} | {} ({} + {}) | **{:.1}** | {} | {} | {} | {} |",
            t.label,
            median(&secs),
            list(&secs, 2),
            thousands(probes),
            thousands(m(&|r| r.wire.udp137 as f64)),
            thousands(m(&|r| r.wire.udp138 as f64)),
            rate,
            thousands(m(&|r| r.wire.arp as f64)),
            thousands(m(&|r| r.wire.all as f64)),
            thousands(m(&|r| r.wire.to_scanner as f64)),
            attempts,
        );
    }
    let codes: Vec<String> = tools
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            format!(
                "{}: {}",
                t.label,
                of(ti)
                    .map(|r| r.code.map_or("killed".into(), |c| c.to_string()))
                    .collect::<Vec<_>>()
                    .join("/")
            )
        })
        .collect();
    let busy: Vec<f64> = recs.iter().map(|r| 100.0 * r.busy).collect();
    println!(
        "\nExit codes: {}. Machine busy before each run (whole machine, 1 s): {:.0}–{:.0} %.",
        codes.join("; "),
        busy.iter().copied().fold(f64::INFINITY, f64::min),
        busy.iter().copied().fold(0.0, f64::max)
    );
    println!("\nCommands (run inside the scanner's namespace with `ip netns exec`):\n");
    for t in tools {
        let mut a = t.args.clone();
        a[0] = match t.kind {
            Kind::Nbdgm => "nbdgm".into(),
            Kind::Nmap => "nmap".into(),
        };
        println!("* {}: `{}`", t.label, a.join(" "));
    }
}

/// States per class of address and port, against the truth.
fn report_states(tools: &[Tool], classes: &[Class], recs: &[RunRecord]) {
    let of = |ti: usize| runs_of(recs, ti);
    println!("\n### Accuracy: states per class of address and port, against the truth\n");
    println!(
        "Each cell counts (address, run) pairs: every address of the class in every run. \
         nmap does not list hosts it found down; they count as `host-down`.\n"
    );
    print!("| class (addresses) | port | truth |");
    for t in tools {
        print!(" {} |", t.label);
    }
    println!();
    print!("| --- | --- | --- |");
    for _ in tools {
        print!(" --- |");
    }
    println!();
    for c in classes {
        for port in 0..2 {
            print!(
                "| {} ({}) | {}/udp | {} |",
                c.label,
                c.addrs.len(),
                [137, 138][port],
                c.truth[port].as_str()
            );
            for (ti, t) in tools.iter().enumerate() {
                if !t.ports[port] {
                    print!(" — |");
                    continue;
                }
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for r in of(ti) {
                    for &a in &c.addrs {
                        *counts.entry(state_of(r, a, port)).or_default() += 1;
                    }
                }
                let total: usize = counts.values().sum();
                let mut v: Vec<(String, usize)> = counts.into_iter().collect();
                v.sort_by_key(|b| std::cmp::Reverse(b.1));
                let cell = v
                    .iter()
                    .map(|(s, n)| {
                        let s = s.replace('|', "\\|");
                        let s = match verdict(c.truth[port], &s.replace("\\|", "|")) {
                            Verdict::Right => format!("**{s}**"),
                            Verdict::Ambiguous => s,
                            Verdict::Wrong => format!("*{s}*"),
                        };
                        if *n == total {
                            format!("{s} (all {total})")
                        } else {
                            format!("{s} {n}/{total}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                print!(" {cell} |");
            }
            println!();
        }
    }
    println!(
        "\n**bold** = the truth; plain = a two-state answer that includes the truth \
         (`open|filtered`, `likely-open`); *italic* = wrong.\n"
    );
}

/// Right, ambiguous and wrong answers per tool.
fn report_accuracy(tools: &[Tool], classes: &[Class], recs: &[RunRecord]) {
    let of = |ti: usize| runs_of(recs, ti);
    println!("| tool | (address, port, run) judged | right | ambiguous, includes the truth | wrong | right, without the empty addresses |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (ti, t) in tools.iter().enumerate() {
        let (mut n, mut right, mut amb, mut wrong, mut n_real, mut right_real) = (0, 0, 0, 0, 0, 0);
        for r in of(ti) {
            for c in classes {
                for port in (0..2).filter(|&p| t.ports[p]) {
                    for &a in &c.addrs {
                        let v = verdict(c.truth[port], &state_of(r, a, port));
                        n += 1;
                        let real = c.truth[port] != Truth::HostDown;
                        n_real += usize::from(real);
                        match v {
                            Verdict::Right => {
                                right += 1;
                                right_real += usize::from(real);
                            }
                            Verdict::Ambiguous => amb += 1,
                            Verdict::Wrong => wrong += 1,
                        }
                    }
                }
            }
        }
        println!(
            "| {} | {} | {} ({:.1} %) | {} | {} | {} of {} |",
            t.label,
            thousands(n as f64),
            thousands(right as f64),
            100.0 * right as f64 / n.max(1) as f64,
            thousands(amb as f64),
            thousands(wrong as f64),
            right_real,
            n_real
        );
    }
}

/// Name tables: nbdgm's NODE STATUS names vs nmap's nbstat names, per nmbd host.
fn report_names(tools: &[Tool], classes: &[Class], recs: &[RunRecord]) {
    let nb = tools.iter().position(|t| t.kind == Kind::Nbdgm);
    let ns = tools.iter().position(|t| t.key == "nmap-nbstat");
    println!("\n### NetBIOS names: nbdgm's NODE STATUS table vs nmap's nbstat\n");
    println!(
        "Per nmbd host, in the first run of `{}` and of `{}`. Expected at least NAME<00>, \
         NAME<03>, NAME<20>, WORKGROUP<00> (a master browser adds WORKGROUP<1D>, WORKGROUP<1E> \
         and `<01><02>__MSBROWSE__<02><01>`, nmap's `\\x01\\x02__MSBROWSE__\\x02<01>`).\n",
        nb.map_or("—", |i| tools[i].label.as_str()),
        ns.map_or("—", |i| tools[i].label.as_str())
    );
    println!(
        "| host | class | nbdgm names | nmap nbstat names | same set | expected names in both |"
    );
    println!("| --- | --- | ---: | ---: | --- | --- |");
    let first = |ti: Option<usize>| ti.and_then(|i| recs.iter().find(|r| r.tool == i));
    let (rn, rs) = (first(nb), first(ns));
    for c in classes.iter().filter(|c| !c.nmbd.is_empty()) {
        for (a, (name, wg)) in c.addrs.iter().zip(&c.nmbd) {
            let get =
                |r: Option<&RunRecord>| r.and_then(|r| r.obs.get(a)).and_then(|o| o.names.clone());
            let (x, y) = (get(rn), get(rs));
            let expected = [
                format!("{name}<00>"),
                format!("{name}<03>"),
                format!("{name}<20>"),
                format!("{wg}<00>"),
            ];
            let has = |s: &Option<BTreeSet<String>>| {
                s.as_ref()
                    .is_some_and(|s| expected.iter().all(|e| s.contains(e)))
            };
            let cnt = |s: &Option<BTreeSet<String>>| {
                s.as_ref().map_or("none".into(), |s| s.len().to_string())
            };
            let same = match (&x, &y) {
                (Some(x), Some(y)) if x == y => "yes".to_string(),
                (Some(x), Some(y)) => format!(
                    "no (only nbdgm: {:?}; only nmap: {:?})",
                    x.difference(y).collect::<Vec<_>>(),
                    y.difference(x).collect::<Vec<_>>()
                ),
                _ => "—".into(),
            };
            println!(
                "| {a} ({name}) | {} | {} | {} | {same} | {} |",
                c.label,
                cnt(&x),
                cnt(&y),
                match (has(&x), has(&y)) {
                    (true, true) => "yes",
                    (true, false) => "nbdgm only",
                    (false, true) => "nmap only",
                    (false, false) => "neither",
                }
            );
        }
    }
}

#[cfg(test)]
mod tests;
