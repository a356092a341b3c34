//! `nbdd_bench amplification`: the NBDD with the default per-source relay limit, one
//! sender at several rates to a 100-member group: bytes out / bytes in.

use crate::sockets::{nbdd_daemon, receive, send, Members, Rx, Tx};
use crate::{group, member_addr, note_load, sender_addr, AmpArgs, NBDD_ADDR};
use nbdgm_bench::daemon::{free_ports, iface_counter, stats};
use nbdgm_bench::nbdd::{group_datagram, register_members};
use nbdgm_bench::report::thousands;
use nbdgm_nbdd::NbddConfig;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) fn amplification(bin: &Path, a: &AmpArgs, m: &mut Members) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ports = free_ports(NBDD_ADDR)?;
    m.rebind(ports.1)?;
    // Default relay limits (relay_bytes_per_source_per_s, relay_burst_bytes); only the
    // policy is an allow list, so no NBNS verification is involved.
    let server = "policy = \"allow_list\"\nallow = [\"127.0.0.0/8\"]\n";
    let d = nbdd_daemon(bin, dir.path(), "amp", ports, server)?;
    let def = NbddConfig::default();
    let (rate, burst) = (
        def.relay_bytes_per_source_per_s.rate,
        def.relay_bytes_per_source_per_s.burst,
    );
    let g = group("AMPGROUP")?;
    let ips: Vec<Ipv4Addr> = (0..a.members).map(member_addr).collect();
    register_members(SocketAddrV4::new(NBDD_ADDR, ports.0), &g, &ips)?;
    note_load("amplification");
    println!("\n### 6.3 Amplification (`nbdd_bench amplification`)\n");
    println!(
        "The same daemon with the default `[nbdd_server]` relay limit ({} bytes/s per source, \
         burst {} bytes; total {} bytes/s, burst {}), policy allow_list, `[limits]` raised so \
         that the NBDD sees every packet. One sender per row (a fresh bucket each) sends \
         DIRECT_GROUP datagrams ({} bytes) to a {}-member group for {:.0} s (the flood: as \
         fast as one thread sends, ≤ {} packets). Bound: burst + rate × seconds of the \
         sender.\n",
        thousands(rate),
        thousands(burst as f64),
        thousands(def.relay_bytes_total_per_s.map_or(f64::NAN, |r| r.rate)),
        thousands(
            def.relay_bytes_total_per_s
                .map_or(f64::NAN, |r| r.burst as f64)
        ),
        a.user_len + 82,
        a.members,
        a.secs,
        thousands(a.flood_count as f64)
    );
    println!(
        "| sender packets/s | sent packets | NBDD bytes in | NBDD bytes out | out / in (NBDD stats) | copies relayed | copies rate-limited | packets refused (rate) | bytes received by members | received / sent | bound (bytes) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (k, &r) in a.rates.iter().enumerate() {
        let base = Instant::now();
        let st0 = stats(d.socket())?;
        let (_, off) = group_datagram(SocketAddrV4::new(sender_addr(1), 1), &g, a.user_len)?;
        let stop = AtomicBool::new(false);
        let hard = Duration::from_secs_f64(a.secs * 3.0 + 10.0);
        let run = 1000 + k as u64;
        let from = sender_addr(20 + k as u8);
        let n = a.members;
        let (sent, rx) = std::thread::scope(|s| -> anyhow::Result<(Tx, Rx)> {
            let h = s.spawn(|| receive(m, n, run, off, base, 0, &stop, hard));
            let sent = send(
                from,
                SocketAddrV4::new(NBDD_ADDR, ports.1),
                &g,
                a.user_len,
                r,
                a.secs,
                a.flood_count,
                run,
                base,
            );
            std::thread::sleep(Duration::from_millis(700));
            stop.store(true, Ordering::Release);
            let rx = h.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
            Ok((sent?, rx))
        })?;
        let st1 = stats(d.socket())?;
        let c = |p: &str| iface_counter(&st1, p).saturating_sub(iface_counter(&st0, p));
        let (bin_, bout) = (c("/roles/nbdd/bytes_in"), c("/roles/nbdd/bytes_out"));
        let bound = burst as f64 + rate * sent.secs;
        eprintln!(
            "[amplification] {} pkt/s: sent {} in {:.2} s, NBDD in {bin_} out {bout}, members {} bytes",
            if r == 0 { "flood".into() } else { r.to_string() },
            sent.packets,
            sent.secs,
            rx.bytes
        );
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.2} | {} |",
            if r == 0 {
                format!("flood ({}/s)", thousands(sent.packets as f64 / sent.secs))
            } else {
                thousands(r as f64)
            },
            thousands(sent.packets as f64),
            thousands(bin_ as f64),
            thousands(bout as f64),
            if bin_ > 0 {
                bout as f64 / bin_ as f64
            } else {
                f64::NAN
            },
            thousands(c("/roles/nbdd/relayed_copies") as f64),
            thousands(c("/roles/nbdd/copies_rate_limited") as f64),
            thousands(c("/roles/nbdd/drops/rate_limited") as f64),
            thousands(rx.bytes as f64),
            rx.bytes as f64 / sent.bytes.max(1) as f64,
            thousands(bound),
        );
    }
    drop(d);
    Ok(())
}
