//! `Datagram::parse`; a parsed datagram emits to bytes that parse to the same datagram (not
//! always the same bytes: bytes after an ERROR or QUERY packet are dropped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::assert_round_trip;
use nbdgm_wire::datagram::Datagram;

fuzz_target!(|data: &[u8]| {
    let mut warnings = Vec::new();
    if let Ok(d) = Datagram::parse_with_warnings(data, &mut warnings) {
        for w in &warnings {
            let _ = w.to_string();
        }
        let _ = (
            d.dgm_length(),
            d.len(),
            d.source_name(),
            d.destination_name(),
        );
        assert_round_trip!(Datagram, d, data, exact = false);
    }
});
