//! `nbdd_bench engine`: the sans-IO NBDD relay (RFC 1002 §4.4, the NBDD of RFC 1001 §17.2)
//! in process against plain copy loops, and a long run with churn against the engine's caps.

use crate::{group, note_load, EngineArgs};
use anyhow::bail;
use nbdgm_bench::nbdd::{group_datagram, stamp};
use nbdgm_bench::procfs;
use nbdgm_bench::report::{median, thousands};
use nbdgm_nbdd::{Nbdd, NbddAction, NbddConfig, Rate, RelayPolicy, Resolution};
use nbdgm_wire::Name;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Allow-list policy for 10/8, no limiter in the way (per-source and total), no
/// re-fragmenting: what is measured is parse, policy, cache lookup and copies.
fn engine_config() -> NbddConfig {
    NbddConfig {
        policy: RelayPolicy::AllowList("10.0.0.0/8".parse().expect("prefix")),
        own_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
        relay_bytes_per_source_per_s: Rate::new(1e15, u32::MAX),
        relay_bytes_total_per_s: None,
        refragment: false,
        max_fanout: 256,
        ..NbddConfig::default()
    }
}

fn engine_members(n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8))
        .collect()
}

/// One timed measurement: packets and copies in `secs`.
#[derive(Debug, Clone, Copy)]
struct Timed {
    packets: u64,
    copies: u64,
    secs: f64,
}

impl Timed {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.secs
    }
    fn cps(&self) -> f64 {
        self.copies as f64 / self.secs
    }
    fn ns_per_packet(&self) -> f64 {
        1e9 * self.secs / self.packets as f64
    }
}

/// Hard bound on the packets of one timed loop (besides its time).
const MAX_LOOP_PACKETS: u64 = 200_000_000;

/// Answer every ResolveMembers with `members` (the runtime with a combined NBNS).
fn answer_all(e: &mut Nbdd, now: Instant, members: &[Ipv4Addr]) {
    while let Some(a) = e.poll_action() {
        if let NbddAction::ResolveMembers(name) = a {
            e.members_resolved(now, &name, Resolution::Members(members.to_vec()));
        }
    }
}

fn engine_relay(n: usize, secs: f64, user_len: usize) -> anyhow::Result<Timed> {
    let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 138);
    let g = group("BENCHGRP")?;
    let (mut pkt, off) = group_datagram(from, &g, user_len)?;
    let members = engine_members(n);
    let t = Instant::now();
    let mut e = Nbdd::new(engine_config(), t).map_err(anyhow::Error::msg)?;
    // Resolve once (the first packet waits for it), then cached for member_cache_ttl (60 s).
    e.handle(t, from, &pkt);
    answer_all(&mut e, t, &members);
    while e.poll_transmit().is_some() {}
    while e.poll_event().is_some() {}
    let dur = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let (mut packets, mut copies) = (0u64, 0u64);
    loop {
        for _ in 0..256 {
            stamp(&mut pkt, off, packets, 0);
            let now = Instant::now();
            e.handle(now, from, &pkt);
            while let Some(tx) = e.poll_transmit() {
                black_box(&tx);
                copies += 1;
            }
            while let Some(ev) = e.poll_event() {
                black_box(&ev);
            }
            packets += 1;
        }
        if t0.elapsed() >= dur || packets >= MAX_LOOP_PACKETS {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if e.stats().drops.total() > 0 || e.stats().copies_rate_limited > 0 {
        bail!("engine dropped in the throughput loop: {:?}", e.stats());
    }
    Ok(Timed {
        packets,
        copies,
        secs,
    })
}

/// The best possible copy loop: the same bytes into N freshly allocated (address,
/// Vec<u8>) outputs per packet, as the engine must hand owned copies over.
fn copy_alloc(n: usize, secs: f64, user_len: usize) -> anyhow::Result<Timed> {
    let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 138);
    let (mut pkt, off) = group_datagram(from, &group("BENCHGRP")?, user_len)?;
    let to: Vec<SocketAddrV4> = engine_members(n)
        .into_iter()
        .map(|ip| SocketAddrV4::new(ip, 138))
        .collect();
    let mut outs: Vec<(SocketAddrV4, Vec<u8>)> = Vec::with_capacity(n);
    Ok(copy_loop(secs, |packet| {
        stamp(&mut pkt, off, packet, 0);
        for &a in &to {
            outs.push((a, pkt.to_vec()));
        }
        let copies = outs.len() as u64;
        for o in outs.drain(..) {
            black_box(&o);
        }
        copies
    }))
}

/// The floor: the same bytes copied into N reused buffers (memcpy only, no allocation).
fn copy_reuse(n: usize, secs: f64, user_len: usize) -> anyhow::Result<Timed> {
    let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 138);
    let (mut pkt, off) = group_datagram(from, &group("BENCHGRP")?, user_len)?;
    let mut outs: Vec<Vec<u8>> = (0..n).map(|_| Vec::with_capacity(pkt.len())).collect();
    Ok(copy_loop(secs, |packet| {
        stamp(&mut pkt, off, packet, 0);
        for o in outs.iter_mut() {
            o.clear();
            o.extend_from_slice(&pkt);
            black_box(&o);
        }
        n as u64
    }))
}

/// Copy packets 0, 1, ... with `copy` (it returns how many copies it made), 256 at a
/// time, until `secs` have passed or `MAX_LOOP_PACKETS` were copied; timed.
fn copy_loop(secs: f64, mut copy: impl FnMut(u64) -> u64) -> Timed {
    let dur = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let (mut packets, mut copies) = (0u64, 0u64);
    loop {
        for _ in 0..256 {
            copies += copy(packets);
            packets += 1;
        }
        if t0.elapsed() >= dur || packets >= MAX_LOOP_PACKETS {
            break;
        }
    }
    Timed {
        packets,
        copies,
        secs: t0.elapsed().as_secs_f64(),
    }
}

pub(crate) fn engine(a: &EngineArgs) -> anyhow::Result<()> {
    note_load("engine");
    let me = std::process::id();
    let rss_start = procfs::mem(me)?;
    println!("\n### 6.1 Engine in process (`nbdd_bench engine`)\n");
    println!(
        "One DIRECT_GROUP datagram ({} bytes of user data, {} bytes in all) relayed again and \
         again from one allow-listed source to a cached group; rate limits out of the way; \
         every transmit and event drained and dropped, as a runtime would. {:.1} s per \
         measurement, median of {} runs (engine and copy loops alternate).\n",
        a.user_len,
        a.user_len + 82,
        a.secs,
        a.runs
    );
    println!(
        "| members | engine packets/s | engine copies/s | engine ns/packet | alloc+copy loop packets/s | ns/packet | memcpy loop packets/s | ns/packet | engine / alloc+copy |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &a.members {
        let (mut e, mut c, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..a.runs {
            let te = engine_relay(n, a.secs, a.user_len)?;
            let tc = copy_alloc(n, a.secs, a.user_len)?;
            let tr = copy_reuse(n, a.secs, a.user_len)?;
            eprintln!(
                "[engine] members {n} run {}: engine {} pkt/s ({} copies/s), alloc+copy {} pkt/s, memcpy {} pkt/s",
                i + 1,
                thousands(te.pps()),
                thousands(te.cps()),
                thousands(tc.pps()),
                thousands(tr.pps())
            );
            e.push(te);
            c.push(tc);
            r.push(tr);
        }
        let m = |v: &[Timed], f: fn(&Timed) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        let (ep, ec, en) = (
            m(&e, Timed::pps),
            m(&e, Timed::cps),
            m(&e, Timed::ns_per_packet),
        );
        let (cp, cn) = (m(&c, Timed::pps), m(&c, Timed::ns_per_packet));
        let (rp, rn) = (m(&r, Timed::pps), m(&r, Timed::ns_per_packet));
        println!(
            "| {n} | {} | {} | {en:.0} | {} | {cn:.0} | {} | {rn:.0} | {:.2}× |",
            thousands(ep),
            thousands(ec),
            thousands(cp),
            thousands(rp),
            en / cn
        );
    }
    let rss_after_tput = procfs::mem(me)?;
    engine_long(a, rss_start, rss_after_tput)
}

/// The long run: 100 members, 60,000 distinct sources (> max_sources 4,096), one packet
/// in 8 to one of 100,000 other groups of which half are answered (1 member: fills the
/// member cache, max_cached_groups 4,096) and half never (fills the pending queue and
/// the in-flight table, max_pending 1,024, until resolve_timeout 5 s). Default caps.
fn engine_long(
    a: &EngineArgs,
    rss_start: procfs::Mem,
    rss_tput: procfs::Mem,
) -> anyhow::Result<()> {
    let me = std::process::id();
    let cfg = NbddConfig {
        policy: RelayPolicy::AllowList("10.0.0.0/8".parse().expect("prefix")),
        own_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
        relay_bytes_per_source_per_s: Rate::new(1e15, u32::MAX),
        relay_bytes_total_per_s: None,
        refragment: false,
        ..NbddConfig::default()
    };
    let caps = (
        cfg.max_pending,
        cfg.max_pending_bytes,
        cfg.max_cached_groups,
        cfg.max_sources,
        cfg.max_transmit_queue,
    );
    let g = group("BENCHGRP")?;
    let src0 = SocketAddrV4::new(Ipv4Addr::new(10, 2, 0, 1), 138);
    let (pkt, off) = group_datagram(src0, &g, a.user_len)?;
    let mut c = Churn {
        members: engine_members(100),
        g,
        pkt,
        off,
        user_len: a.user_len,
        i: 0,
        copies: 0,
    };
    let t = Instant::now();
    let mut e = Nbdd::new(cfg, t).map_err(anyhow::Error::msg)?;
    let dur = Duration::from_secs_f64(a.long_secs);
    let t0 = Instant::now();
    let mut checkpoints: Vec<(f64, procfs::Mem, usize, usize, usize, usize)> = Vec::new();
    let mut next_cp = Duration::from_secs(5);
    let sample = |e: &Nbdd, secs: f64, cps: &mut Vec<_>| -> anyhow::Result<()> {
        cps.push((
            secs,
            procfs::mem(me)?,
            e.pending_len(),
            e.cached_groups(),
            e.tracked_sources(),
            e.in_flight(),
        ));
        Ok(())
    };
    loop {
        c.batch(&mut e)?;
        let now = Instant::now();
        if e.poll_timeout().is_some_and(|d| d <= now) {
            e.handle_timeout(now);
        }
        let el = t0.elapsed();
        if el >= next_cp {
            sample(&e, el.as_secs_f64(), &mut checkpoints)?;
            next_cp += Duration::from_secs(5);
        }
        if el >= dur || c.i >= MAX_LOOP_PACKETS {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if checkpoints.last().is_none_or(|c| secs - c.0 > 0.5) {
        sample(&e, secs, &mut checkpoints)?;
    }
    let s = e.stats();
    let (i, copies) = (c.i, c.copies);
    println!(
        "\nLong run with churn ({:.0} s, default caps: max_pending {}, max_pending_bytes {}, \
         max_cached_groups {}, max_sources {}, max_transmit_queue {}): {} packets in \
         ({} /s), {} copies out, from 60,000 sources; one packet in 8 to one of 100,000 \
         other groups, half answered with one member, half never answered. RSS of the \
         benchmark process (the engine plus the benchmark's own few MiB): {} KiB at start, \
         {} KiB after the throughput runs.\n",
        secs,
        caps.0,
        caps.1,
        caps.2,
        caps.3,
        caps.4,
        thousands(i as f64),
        thousands(i as f64 / secs),
        thousands(copies as f64),
        thousands(rss_start.rss_kib as f64),
        thousands(rss_tput.rss_kib as f64),
    );
    println!("| at s | VmRSS KiB | VmHWM KiB | pending | cached groups | sources with buckets | in flight |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (t, m, p, cg, ts, inf) in &checkpoints {
        println!(
            "| {t:.0} | {} | {} | {p} | {cg} | {ts} | {inf} |",
            thousands(m.rss_kib as f64),
            thousands(m.hwm_kib as f64)
        );
    }
    println!(
        "\nCounters: member-cache evictions {}, sources overflowed {}, drops: pending_full {}, \
         resolver_busy {}, resolve_timeout {}, group_not_found {} (all drops {}).",
        thousands(s.member_cache_evictions as f64),
        thousands(s.sources_overflowed as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::PendingFull) as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::ResolverBusy) as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::ResolveTimeout) as f64),
        thousands(s.drops.get(nbdgm_nbdd::DropReason::GroupNotFound) as f64),
        thousands(s.drops.total() as f64),
    );
    Ok(())
}

/// The traffic of the long run: one packet in 8 to one of 100,000 other groups (half of
/// them answered with one member, half never), the rest to BENCHGRP (100 members), from
/// 60,000 sources.
struct Churn {
    members: Vec<Ipv4Addr>,
    g: Name,
    pkt: Vec<u8>,
    off: usize,
    user_len: usize,
    /// Packets handed to the engine so far.
    i: u64,
    /// Copies the engine transmitted so far.
    copies: u64,
}

impl Churn {
    /// Hand 256 packets to the engine, answer its resolutions, drain its transmits.
    fn batch(&mut self, e: &mut Nbdd) -> anyhow::Result<()> {
        for _ in 0..256 {
            let i = self.i;
            let k = (i % 60_000) as u32;
            let ip = Ipv4Addr::new(10, 2 + (k >> 16) as u8, (k >> 8) as u8, k as u8);
            let from = SocketAddrV4::new(ip, 138);
            let now = Instant::now();
            if i % 8 == 7 {
                let j = (i / 8) % 100_000;
                let other = group(&format!("U{j:06}"))?;
                let (p, _) = group_datagram(from, &other, self.user_len)?;
                let mut p = p;
                p[4..8].copy_from_slice(&ip.octets());
                e.handle(now, from, &p);
            } else {
                stamp(&mut self.pkt, self.off, i, 0);
                self.pkt[4..8].copy_from_slice(&ip.octets());
                e.handle(now, from, &self.pkt);
            }
            while let Some(act) = e.poll_action() {
                if let NbddAction::ResolveMembers(name) = act {
                    if name == self.g {
                        let all = Resolution::Members(self.members.clone());
                        e.members_resolved(now, &name, all);
                    } else if name.raw()[5] % 2 == 0 {
                        // "U00000x": even last digit answered with one member.
                        let one = Resolution::Members(vec![self.members[0]]);
                        e.members_resolved(now, &name, one);
                    }
                }
            }
            while let Some(tx) = e.poll_transmit() {
                black_box(&tx);
                self.copies += 1;
            }
            while e.poll_event().is_some() {}
            self.i += 1;
        }
        Ok(())
    }
}
