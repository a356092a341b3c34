//! `NetlogonMessage::parse`; a parsed message emits to bytes that parse to the same message.
//! Not always the same bytes: alignment pad bytes are read over and emitted as zeros, and
//! invalid UTF-16 (unpaired surrogates) or UTF-8 in the strings is read as U+FFFD (V5 and
//! EX responses keep their raw string bytes and come out byte for byte). Without U+FFFD in
//! the value the length must be kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::{assert_round_trip, hex};
use nbdgm_wire::netlogon::NetlogonMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = NetlogonMessage::parse(data) {
        let _ = m.command();
        let lossy = format!("{m:?}").contains('\u{FFFD}');
        if !lossy {
            let len = m.to_bytes().map(|b| b.len());
            assert_eq!(len, Ok(data.len()), "input {}", hex(data));
        }
        assert_round_trip!(NetlogonMessage, m, data, exact = false);
    }
});
