//! Helper of `bench/watch.sh` (issue 14 §5), a benchmark tool, never a test:
//! - `send`: replays the UDP payloads of ports 137/138 (RFC 1002 §4.2, §4.4) taken from a
//!   pcap (the `nbdgm-corpus --mix realistic` corpus) as broadcasts from `--src` at a
//!   paced rate with `sendmmsg`, bounded in count and time; prints a JSON summary.
//! - `flood-pcap`: writes a pcap of unique names, hosts and transaction ids (NBNS queries,
//!   NBNS registrations, HostAnnouncements, LocalMasterAnnouncements, answers) to fill `nbdgm watch`'s table caps. The
//!   addresses are 10.0.0.0/8 in the file only; nothing is sent.

#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use nbdgm_bench::browse::{browse_datagram, wire_name, HostAnnouncementTemplate};
use nbdgm_bench::packets::name_query;
use nbdgm_wire::nbns::{
    NbAddress, Packet, RData, Record, CLASS_IN, FLAG_AA, FLAG_B, FLAG_RD, FLAG_RESPONSE, TYPE_NB,
};
use std::io::{BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Sender and flood-capture writer of bench/watch.sh")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay port 137/138 payloads of a pcap as paced broadcasts.
    Send {
        /// pcap (Ethernet, IPv4) whose UDP payloads are replayed.
        #[arg(long)]
        corpus: PathBuf,
        /// Most payloads kept from the corpus (they are replayed in a loop).
        #[arg(long, default_value_t = 100_000)]
        payloads: usize,
        /// Source address (bound on ports 137 and 138).
        #[arg(long)]
        src: Ipv4Addr,
        /// Destination address (a broadcast address of the test subnet).
        #[arg(long)]
        dst: Ipv4Addr,
        /// Datagrams per second.
        #[arg(long, default_value_t = 100_000)]
        rate: u64,
        /// Datagrams to send at most.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// Seconds at most.
        #[arg(long, default_value_t = 30)]
        max_secs: u64,
    },
    /// Write a pcap of COUNT packets with unique names, hosts and transaction ids.
    FloodPcap {
        #[arg(long, default_value_t = 2_000_000)]
        count: u64,
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Datagrams per `sendmmsg` call.
const BURST: usize = 32;

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Send {
            corpus,
            payloads,
            src,
            dst,
            rate,
            count,
            max_secs,
        } => send(&corpus, payloads, src, dst, rate, count, max_secs),
        Cmd::FloodPcap { count, output } => flood_pcap(count, &output),
    }
}

/// UDP payloads of ports 137 and 138 (by destination port) in a classic pcap with
/// Ethernet framing and IPv4; fragments and other frames are skipped.
fn corpus_payloads(path: &PathBuf, max: usize) -> anyhow::Result<[Vec<Vec<u8>>; 2]> {
    let mut f = std::io::BufReader::new(
        std::fs::File::open(path).with_context(|| format!("{}", path.display()))?,
    );
    let mut gh = [0u8; 24];
    f.read_exact(&mut gh)?;
    let le = match gh[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!("{}: not a classic pcap", path.display()),
    };
    let u32_at = |b: &[u8], o: usize| -> u32 {
        let w = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    if u32_at(&gh, 20) != 1 {
        bail!("{}: link type is not Ethernet", path.display());
    }
    let mut out: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut rec = [0u8; 16];
    let mut frame = Vec::new();
    while out[0].len() + out[1].len() < max && f.read_exact(&mut rec).is_ok() {
        let len = u32_at(&rec, 8) as usize;
        if len > 262_144 {
            bail!("{}: record of {len} bytes", path.display());
        }
        frame.resize(len, 0);
        f.read_exact(&mut frame)?;
        let Some(ip) = frame.get(14..).filter(|_| frame[12..14] == [8, 0]) else {
            continue;
        };
        let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
        let frag = ip
            .get(6..8)
            .map_or(1, |b| u16::from_be_bytes([b[0], b[1]]) & 0x3fff);
        if ihl < 20 || frag != 0 || ip.get(9) != Some(&17) {
            continue;
        }
        let Some(udp) = ip.get(ihl..) else { continue };
        let Some(h) = udp.get(..8) else { continue };
        let dport = u16::from_be_bytes([h[2], h[3]]);
        let ulen = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let Some(payload) = udp.get(8..ulen.max(8)) else {
            continue;
        };
        match dport {
            137 => out[0].push(payload.to_vec()),
            138 => out[1].push(payload.to_vec()),
            _ => {}
        }
    }
    Ok(out)
}

fn send(
    corpus: &PathBuf,
    max_payloads: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    rate: u64,
    count: u64,
    max_secs: u64,
) -> anyhow::Result<()> {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let lists = corpus_payloads(corpus, max_payloads)?;
    if lists.iter().any(|l| l.is_empty()) {
        bail!("the corpus has no payloads on port 137 or on 138");
    }
    let total = (lists[0].len() + lists[1].len()) as u64;
    let mut socks = Vec::new();
    for port in [137u16, 138] {
        let s = UdpSocket::bind((src, port)).with_context(|| format!("bind {src}:{port}"))?;
        s.set_broadcast(true)?;
        socks.push(s);
    }
    let addrs: [Vec<Option<SockaddrIn>>; 2] =
        [137u16, 138].map(|p| vec![Some(SockaddrIn::from(SocketAddrV4::new(dst, p))); BURST]);
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BURST, None);
    // Bursts follow the corpus proportions: port 137 gets `share` of every 1,000.
    let share = lists[0].len() as u64 * 1000 / total;
    let (mut next, mut sent, mut errors, mut acc) = ([0usize; 2], 0u64, 0u64, 0u64);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(max_secs);
    while sent + errors < count && Instant::now() < deadline {
        let due = t0 + Duration::from_secs_f64((sent + errors) as f64 / rate.max(1) as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // 0 = port 137, 1 = port 138, spread evenly (error accumulator).
        acc += share;
        let k = if acc >= 1000 {
            acc -= 1000;
            0
        } else {
            1
        };
        let n = (BURST as u64).min(count - sent - errors) as usize;
        let list = &lists[k];
        let slices: Vec<[IoSlice<'_>; 1]> = (0..n)
            .map(|j| [IoSlice::new(&list[(next[k] + j) % list.len()])])
            .collect();
        next[k] = (next[k] + n) % list.len();
        match sendmmsg(
            socks[k].as_raw_fd(),
            &mut headers,
            &slices,
            &addrs[k][..n],
            [],
            MsgFlags::empty(),
        ) {
            Ok(r) => {
                let c = r.count() as u64;
                sent += c;
                errors += n as u64 - c;
            }
            Err(_) => errors += n as u64,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "sent": sent, "errors": errors, "secs": secs,
            "rate": (sent as f64 / secs).round(),
            "payloads": {"137": lists[0].len(), "138": lists[1].len()},
        })
    );
    Ok(())
}

/// Host number `i` as 10.0.0.0/8 address (file only).
fn host(i: u64) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | ((i as u32 + 1) & 0x00ff_ffff).max(1))
}

/// A broadcast NAME REGISTRATION REQUEST (B node, unique name) of `name<00>` at `ip`.
fn registration(name: &str, ip: Ipv4Addr, id: u16) -> anyhow::Result<Vec<u8>> {
    let n = wire_name(name, 0)?;
    let mut p = Packet::request(id, (5 << 11) | FLAG_RD | FLAG_B, n.clone(), TYPE_NB);
    p.additional.push(Record {
        name: n,
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl: 300_000,
        rdata: RData::Nb(vec![NbAddress { flags: 0, ip }]),
    });
    Ok(p.to_bytes()?)
}

/// Ethernet + IPv4 + UDP (checksum 0) around `payload`.
fn frame(src: Ipv4Addr, port: u16, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let udp_len = u16::try_from(8 + payload.len())?;
    let ip_len = udp_len + 20;
    let mut f = Vec::with_capacity(14 + usize::from(ip_len));
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[0x02, 0x00]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 128;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&[10, 255, 255, 255]);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    Ok(f)
}

/// A positive NAME QUERY RESPONSE (RFC 1002 §4.2.13) for `name<00>` at `ip`.
fn positive_answer(name: &str, ip: Ipv4Addr, id: u16) -> anyhow::Result<Vec<u8>> {
    let n = wire_name(name, 0)?;
    let mut p = Packet::request(id, FLAG_RESPONSE | FLAG_AA | FLAG_RD, n.clone(), TYPE_NB);
    p.questions.clear();
    p.answers.push(Record {
        name: n,
        rr_type: TYPE_NB,
        rr_class: CLASS_IN,
        ttl: 300_000,
        rdata: RData::Nb(vec![NbAddress { flags: 0, ip }]),
    });
    Ok(p.to_bytes()?)
}

/// Kinds of flood packets, cycled.
const KINDS: u64 = 5;

/// Packet `i` of the flood, from host `i` with names numbered `i` and transaction /
/// datagram id `i`: a name query, a registration, a HostAnnouncement, a
/// LocalMasterAnnouncement of workgroup number `i`, or a positive answer (from a new
/// host each time) to the query four packets before.
fn flood_packet(
    i: u64,
    host_tpl: &mut HostAnnouncementTemplate,
    lma_tpl: &mut HostAnnouncementTemplate,
) -> anyhow::Result<Vec<u8>> {
    let ip = host(i);
    let id = i as u16;
    let num = i % 10_000_000;
    match i % KINDS {
        0 => frame(ip, 137, &name_query(&format!("FQ{num:07}<00>"), id)?),
        1 => frame(ip, 137, &registration(&format!("FN{num:07}"), ip, id)?),
        2 => {
            let server = format!("FS{num:07}");
            host_tpl.set_name(&server);
            let wg = wire_name(&format!("WG{:05}", i % 4096), 0x1d)?;
            let d = browse_datagram(
                SocketAddrV4::new(ip, 138),
                &server,
                &wg,
                id,
                &host_tpl.frame,
            )?;
            frame(ip, 138, &d)
        }
        3 => {
            let server = format!("FM{num:07}");
            lma_tpl.set_name(&server);
            let wg = wire_name(&format!("FW{num:07}"), 0x1d)?;
            let d = browse_datagram(SocketAddrV4::new(ip, 138), &server, &wg, id, &lma_tpl.frame)?;
            frame(ip, 138, &d)
        }
        _ => {
            let q = i.saturating_sub(4);
            let name = format!("FQ{:07}", q % 10_000_000);
            frame(ip, 137, &positive_answer(&name, ip, q as u16)?)
        }
    }
}

fn flood_pcap(count: u64, output: &PathBuf) -> anyhow::Result<()> {
    let mut w = BufWriter::new(
        std::fs::File::create(output).with_context(|| format!("{}", output.display()))?,
    );
    let mut gh = Vec::with_capacity(24);
    gh.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    gh.extend_from_slice(&2u16.to_le_bytes());
    gh.extend_from_slice(&4u16.to_le_bytes());
    gh.extend_from_slice(&[0; 8]);
    gh.extend_from_slice(&65_535u32.to_le_bytes());
    gh.extend_from_slice(&1u32.to_le_bytes());
    w.write_all(&gh)?;
    let mut host_tpl = HostAnnouncementTemplate::new(0x0000_1003)?;
    let mut lma_tpl = HostAnnouncementTemplate::new(0x0004_100b)?;
    // The same frame with the LocalMasterAnnouncement opcode (15).
    lma_tpl.frame[0] = 15;
    let mut offsets = serde_json::Map::new();
    let mut bytes = 24u64;
    // 10 µs apart: 100,000 packets per second of capture time.
    let t0 = 1_800_000_000u64 * 1_000_000;
    for i in 0..count {
        let f = flood_packet(i, &mut host_tpl, &mut lma_tpl)?;
        let t = t0 + i * 10;
        let mut rec = Vec::with_capacity(16);
        rec.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
        w.write_all(&rec)?;
        w.write_all(&f)?;
        bytes += (16 + f.len()) as u64;
        let done = i + 1;
        if done * 4 % count == 0 || done == count {
            offsets.insert(done.to_string(), bytes.into());
        }
    }
    w.flush()?;
    println!(
        "{}",
        serde_json::json!({ "packets": count, "bytes": bytes, "offsets": offsets })
    );
    Ok(())
}
