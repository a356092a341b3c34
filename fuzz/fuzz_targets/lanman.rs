//! `LanmanFrame::parse` (`\MAILSLOT\LANMAN` data: LM layout or MS-BRWS layout); re-emits
//! byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::assert_round_trip;
use nbdgm_wire::browser::LanmanFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = LanmanFrame::parse(data) {
        let _ = f.command();
        assert_round_trip!(LanmanFrame, f, data, exact = true);
    }
});
