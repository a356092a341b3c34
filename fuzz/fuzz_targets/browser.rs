//! `BrowserFrame::parse` (`\MAILSLOT\BROWSE` data); documented to re-emit byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::assert_round_trip;
use nbdgm_wire::browser::BrowserFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = BrowserFrame::parse(data) {
        let _ = (f.command(), f.check_sender_limits());
        assert_round_trip!(BrowserFrame, f, data, exact = true);
    }
});
