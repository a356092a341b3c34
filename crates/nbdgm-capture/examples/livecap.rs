//! Live capture for a while, then the counters: `livecap IFACE [SECONDS]`
//! (feature `live`; default 5 s). Prints the kernel filter, the datagrams per
//! destination port and the kernel's and decoder's counters. Immediate mode when
//! `LIVECAP_IMMEDIATE` is set.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nbdgm_capture::{LiveCapture, LiveOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(iface) = args.next() else {
        eprintln!("usage: livecap IFACE [SECONDS]");
        std::process::exit(2);
    };
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let opts = LiveOptions {
        immediate: std::env::var_os("LIVECAP_IMMEDIATE").is_some(),
        ..LiveOptions::default()
    };
    let mut cap = match LiveCapture::open(&iface, opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livecap: {e}");
            std::process::exit(1);
        }
    };
    println!("filter: {}", cap.filter());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::with_capacity(1024);
    let mut ports: BTreeMap<u16, u64> = BTreeMap::new();
    while Instant::now() < end {
        if let Err(e) = cap.next_batch(&mut out, 1024) {
            eprintln!("livecap: {e}");
            std::process::exit(1);
        }
        for d in out.drain(..) {
            *ports.entry(d.dst.port()).or_default() += 1;
        }
    }
    println!("datagrams by destination port: {ports:?}");
    match cap.stats() {
        Ok(s) => println!(
            "kernel: received {} dropped {} interface-dropped {}; decoder: {:?}",
            s.received, s.dropped, s.if_dropped, s.decoder
        ),
        Err(e) => eprintln!("livecap: {e}"),
    }
}
