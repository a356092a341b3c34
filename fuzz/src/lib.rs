//! Helpers shared by the fuzz targets and the `seed` program: the input layout of the
//! targets that take more than one value, and the round-trip checks.
//!
//! Input layouts:
//! - `name`: byte 0 picks the offset (`byte % (rest.len() + 1)`), the rest is the buffer;
//! - `decode`: bit 0 of byte 0 picks the protocol (0 = datagram service, 1 = name service),
//!   the rest is the UDP payload;
//! - every other target takes the bytes of its layer as they are.

use std::fmt::Write;

/// Lower-case hex of `b`, for assertion messages.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 * b.len());
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Splits a `name` target input into (buffer, offset).
pub fn name_input(data: &[u8]) -> Option<(&[u8], usize)> {
    let (&sel, buf) = data.split_first()?;
    Some((buf, usize::from(sel) % (buf.len() + 1)))
}

/// The `name` target input for `buf` read at `offset` (offsets above 255 cannot be expressed).
pub fn make_name_input(buf: &[u8], offset: usize) -> Option<Vec<u8>> {
    let sel = u8::try_from(offset).ok()?;
    let mut v = Vec::with_capacity(buf.len() + 1);
    v.push(sel);
    v.extend_from_slice(buf);
    Some(v)
}

/// Protocol selector byte of the `decode` target.
pub const DECODE_NBDGM: u8 = 0;
pub const DECODE_NBNS: u8 = 1;

/// Whether to check the round trip of mailslot writes whose name has a byte >= 0x80 (a known
/// codec bug, see docs/FUZZING.md). Off unless `NBDGM_FUZZ_STRICT=1`, so that the `mailslot`
/// target goes on finding other problems.
pub fn strict() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("NBDGM_FUZZ_STRICT").is_some_and(|v| v == "1"))
}

/// Asserts `parse(emit(x)) == x` for a value `x` that `parse` produced from `input`, and,
/// with `exact`, that `emit(x) == input`.
#[macro_export]
macro_rules! assert_round_trip {
    ($ty:ty, $x:expr, $input:expr, exact = $exact:expr) => {{
        let x = $x;
        let input: &[u8] = $input;
        let bytes = match x.to_bytes() {
            Ok(b) => b,
            Err(e) => panic!(
                "parsed value does not emit: {e}\ninput: {}\nvalue: {x:?}",
                $crate::hex(input)
            ),
        };
        let back = <$ty>::parse(&bytes);
        assert!(
            back.as_ref() == Ok(&x),
            "round trip differs\ninput:   {}\nemitted: {}\nvalue: {x:?}\nback:  {back:?}",
            $crate::hex(input),
            $crate::hex(&bytes)
        );
        if $exact {
            assert!(
                bytes == input,
                "re-emitted bytes differ\ninput:   {}\nemitted: {}",
                $crate::hex(input),
                $crate::hex(&bytes)
            );
        }
    }};
}
