//! `CaptureReader` over arbitrary bytes (pcap, pcapng, link layers, IP reassembly, tunnels,
//! UDP): draining `next_event()` must end without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_capture::{CaptureReader, Event};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(std::io::Cursor::new(data)) else {
        return;
    };
    while let Some(ev) = reader.next_event() {
        match ev {
            Ok(Event::Udp(d)) => {
                let _ = (d.payload.len(), d.time.to_rfc3339_micros(), d.src, d.dst);
            }
            Ok(Event::Skipped(p)) => {
                let _ = format!("{p:?}");
            }
            Err(e) => {
                let _ = (e.to_string(), e.offset());
            }
        }
    }
    let _ = reader.stats();
});
