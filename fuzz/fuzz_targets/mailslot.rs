//! `MailslotWrite::parse` on datagram user data; a parsed write emits the same bytes and
//! parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::assert_round_trip;
use nbdgm_wire::mailslot::MailslotWrite;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = MailslotWrite::parse(data) {
        let _ = nbdgm_wire::payload::classify(&w.name);
        assert_round_trip!(MailslotWrite, w, data, exact = true);
    }
});
