//! Prints, per capture file, the UDP datagrams on the NetBIOS ports (137/138) and
//! the reader's counters. `capstat FILE...` (use `-` for stdin).
use std::io::Read;

use nbdgm_capture::{CaptureOptions, CaptureReader, PortFilter};

fn main() {
    let verbose = std::env::var_os("VERBOSE").is_some();
    for path in std::env::args().skip(1) {
        let input: Box<dyn Read> = if path == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            match std::fs::File::open(&path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    continue;
                }
            }
        };
        let opts = CaptureOptions {
            ports: PortFilter::netbios(),
            ..CaptureOptions::default()
        };
        let mut r = match CaptureReader::with_options(input, opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let mut n = 0u64;
        let mut err = None;
        while let Some(d) = r.next_udp() {
            match d {
                Ok(d) => {
                    n += 1;
                    if std::env::var_os("DUMP").is_some() {
                        let hex: String = d.payload.iter().map(|b| format!("{b:02x}")).collect();
                        println!("{}\t{}\t{}\t{}", d.frame, d.src.port(), d.dst.port(), hex);
                    }
                    if verbose {
                        println!(
                            "  {} {} {} -> {} len={} {}",
                            d.frame,
                            d.time,
                            d.src,
                            d.dst,
                            d.payload.len(),
                            d.warnings
                        );
                    }
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        println!("{n} {path}");
        if verbose {
            println!("  {:?}", r.stats());
        }
        if let Some(e) = err {
            println!("  error: {e}");
        }
    }
}
