//! `Name::parse` and `Name::parse_compressed` at any offset; a parsed name emits to bytes
//! that parse to the same name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbdgm_fuzz::{hex, name_input};
use nbdgm_wire::name::{Name, MAX_ENCODED_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((buf, offset)) = name_input(data) else {
        return;
    };
    for r in [
        Name::parse(buf, offset),
        Name::parse_compressed(buf, offset),
    ] {
        let Ok((name, end)) = r else { continue };
        assert!(end <= buf.len());
        let _ = name.to_string();
        let mut enc = Vec::new();
        name.emit(&mut enc);
        assert_eq!(enc.len(), name.encoded_len());
        assert!(enc.len() <= MAX_ENCODED_LEN, "{}", hex(&enc));
        assert_eq!(
            Name::parse(&enc, 0),
            Ok((name, enc.len())),
            "input {}",
            hex(data)
        );
    }
});
