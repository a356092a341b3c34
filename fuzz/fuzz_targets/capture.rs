//! `CaptureReader` over arbitrary bytes (pcap, pcapng, link layers, IP reassembly, tunnels,
//! UDP): draining `next_event()` must end without a panic.
//!
//! Inputs holding a pcapng Process Information Block type (0x80000001, either byte order) are
//! skipped unless `NBDGM_FUZZ_STRICT=1`: pcap-parser 0.17 panics on such a block shorter than
//! 12 bytes with overflow checks on (known bug, docs/FUZZING.md "Findings").
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_capture::{CaptureReader, Event};
use nbdgm_fuzz::strict;

fn has_pib_type(data: &[u8]) -> bool {
    data.windows(4)
        .any(|w| w == [0x01, 0x00, 0x00, 0x80] || w == [0x80, 0x00, 0x00, 0x01])
}

fuzz_target!(|data: &[u8]| {
    if !strict() && has_pib_type(data) {
        return;
    }
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
