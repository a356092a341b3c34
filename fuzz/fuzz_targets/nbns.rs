//! `nbns::Packet::parse`; a parsed packet emits to bytes that parse to the same packet
//! (not the same bytes: names are re-compressed only as `C0 0C`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::assert_round_trip;
use nbdgm_wire::nbns::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::parse(data) {
        let _ = (p.kind(), p.opcode().name(), p.rcode());
        assert_round_trip!(Packet, p, data, exact = false);
    }
});
