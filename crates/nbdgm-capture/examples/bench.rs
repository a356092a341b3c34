//! Read-path throughput on synthetic captures held in memory:
//! `cargo run --release -p nbdgm-capture --example bench [packets]`.

// Example/benchmark program: a failed setup aborts the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;
use std::time::Instant;

use nbdgm_capture::{CaptureOptions, CaptureReader, PortFilter};

fn frame(i: u32) -> Vec<u8> {
    // Ethernet + IPv4 + UDP with a 18-byte payload (a 60-byte frame); every
    // fourth datagram is on port 138.
    let port: u16 = if i.is_multiple_of(4) { 138 } else { 5353 };
    let mut f = vec![0xff; 6];
    f.extend([0, 1, 2, 3, 4, 5, 0x08, 0x00]);
    f.extend([
        0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 255,
    ]);
    f.extend(port.to_be_bytes());
    f.extend(port.to_be_bytes());
    f.extend([0, 26, 0, 0]);
    f.extend((0..18u8).map(|b| b.wrapping_add(i as u8)));
    f
}

fn pcap(n: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + n as usize * 76);
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        b.extend(v.to_le_bytes());
    }
    for i in 0..n {
        let f = frame(i);
        for v in [i, 0, f.len() as u32, f.len() as u32] {
            b.extend(v.to_le_bytes());
        }
        b.extend(f);
    }
    b
}

fn pcapng(n: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + n as usize * 92);
    for v in [
        0x0A0D_0D0Au32,
        28,
        0x1A2B_3C4D,
        1,
        0xffff_ffff,
        0xffff_ffff,
        28,
    ] {
        b.extend(v.to_le_bytes());
    }
    for v in [1u32, 20, 1, 0, 20] {
        b.extend(v.to_le_bytes());
    }
    for i in 0..n {
        let f = frame(i);
        let len = 32 + f.len() as u32; // 60 bytes: already 4-aligned
        for v in [6u32, len, 0, 0, i, f.len() as u32, f.len() as u32] {
            b.extend(v.to_le_bytes());
        }
        b.extend(&f);
        b.extend(len.to_le_bytes());
    }
    b
}

fn run_file(name: &str, data: &[u8], n: u32) {
    let path = std::env::temp_dir().join(format!("nbdgm-bench-{}.cap", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let opts = CaptureOptions {
        ports: PortFilter::netbios(),
        ..CaptureOptions::default()
    };
    let start = Instant::now();
    let file = std::fs::File::open(&path).unwrap();
    let mut r = CaptureReader::with_options(file, opts).unwrap();
    let mut count = 0u64;
    while let Some(d) = r.next_udp() {
        d.unwrap();
        count += 1;
    }
    let t = start.elapsed();
    let _ = std::fs::remove_file(&path);
    std::hint::black_box(count);
    println!(
        "{name:<28} {n} frames in {:>7.3} s: {:>6.2} M frames/s (from a file)",
        t.as_secs_f64(),
        f64::from(n) / t.as_secs_f64() / 1e6
    );
}

fn run(name: &str, data: &[u8], n: u32, ports: PortFilter) {
    let best = (0..3)
        .map(|_| {
            let opts = CaptureOptions {
                ports: ports.clone(),
                ..CaptureOptions::default()
            };
            let start = Instant::now();
            let mut r = CaptureReader::with_options(Cursor::new(data), opts).unwrap();
            let mut bytes = 0usize;
            while let Some(d) = r.next_udp() {
                bytes += d.unwrap().payload.len();
            }
            let t = start.elapsed();
            assert_eq!(r.stats().frames, u64::from(n));
            std::hint::black_box(bytes);
            t
        })
        .min()
        .unwrap();
    println!(
        "{name:<28} {n} frames in {:>7.3} s: {:>6.2} M frames/s, {:>7.1} MB/s",
        best.as_secs_f64(),
        f64::from(n) / best.as_secs_f64() / 1e6,
        data.len() as f64 / best.as_secs_f64() / 1e6
    );
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let p = pcap(n);
    let g = pcapng(n);
    run("pcap, ports 137/138", &p, n, PortFilter::netbios());
    run("pcap, all ports", &p, n, PortFilter::all());
    run("pcapng, ports 137/138", &g, n, PortFilter::netbios());
    run("pcapng, all ports", &g, n, PortFilter::all());
    run_file("pcap, ports 137/138", &p, n);
    run_file("pcapng, ports 137/138", &g, n);
}
