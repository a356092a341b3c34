//! `messenger::Message::parse` (`\MAILSLOT\MESSNGR` data); re-emits byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::assert_round_trip;
use nbdgm_wire::messenger::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let _ = m.lines().count();
        assert_round_trip!(Message, m, data, exact = true);
    }
});
