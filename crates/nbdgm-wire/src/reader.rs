//! Bounds-checked cursor over a byte slice. Every read either succeeds or returns
//! [`Error::Truncated`] naming the field; nothing here can panic.

use crate::error::{Error, Result};

/// A read cursor. `pos` is relative to the start of `buf`.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// A cursor that starts at `pos` within `buf`.
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Take `n` bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Error::Truncated {
                field,
                offset: self.pos,
                need: n,
                have: self.remaining(),
            }),
        }
    }

    /// Take everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    pub fn skip(&mut self, n: usize, field: &'static str) -> Result<()> {
        self.bytes(n, field).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let s = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16_be(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub fn u16_le(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub fn u32_be(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub fn u32_le(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Bytes up to (not including) the next NUL; the NUL is consumed.
    /// Fails if no NUL occurs before the end of the buffer.
    pub fn cstr(&mut self, field: &'static str) -> Result<&'a [u8]> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                let s = &rest[..n];
                self.pos += n + 1;
                Ok(s)
            }
            None => Err(Error::Invalid {
                field,
                offset: self.pos,
                reason: "string is not NUL-terminated",
            }),
        }
    }

    /// Like [`Reader::cstr`], but also accepts a string cut off by the end of the buffer
    /// (returns it and whether it was terminated).
    pub fn cstr_lenient(&mut self) -> (&'a [u8], bool) {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                (&rest[..n], true)
            }
            None => {
                self.pos = self.buf.len();
                (rest, false)
            }
        }
    }

    /// UTF-16LE string up to a 0x0000 code unit (consumed). Unpaired surrogates
    /// become U+FFFD.
    pub fn utf16z(&mut self, field: &'static str) -> Result<String> {
        let start = self.pos;
        let mut units = Vec::new();
        loop {
            let u = self.u16_le(field).map_err(|_| Error::Invalid {
                field,
                offset: start,
                reason: "UTF-16 string is not NUL-terminated",
            })?;
            if u == 0 {
                break;
            }
            units.push(u);
        }
        Ok(String::from_utf16_lossy(&units))
    }

    /// Advance to the next multiple of `align` relative to `base` (an absolute position
    /// in `buf`), if the bytes are there; otherwise stay (lenient for trailing padding).
    pub fn align(&mut self, base: usize, align: usize) {
        let rel = self.pos.saturating_sub(base);
        let pad = (align - rel % align) % align;
        if self.remaining() >= pad {
            self.pos += pad;
        }
    }
}

/// Text from a byte string in a one-byte code page: ASCII stays, other bytes map to
/// the same Unicode code point (Latin-1), so no input is lost or rejected.
pub fn latin1(bytes: &[u8]) -> String {
    match core::str::from_utf8(bytes) {
        // ASCII (the usual case) is the same in both: copy it whole.
        Ok(s) if bytes.is_ascii() => s.to_owned(),
        _ => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// Inverse of [`latin1`]: characters above U+00FF cannot be emitted.
pub fn to_latin1(s: &str, field: &'static str) -> Result<Vec<u8>> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| Error::emit(field, "character outside Latin-1"))
        })
        .collect()
}

/// Append `s` as UTF-16LE followed by a 0x0000 terminator.
pub fn put_utf16z(out: &mut Vec<u8>, s: &str) {
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16_be("a").unwrap(), 0x0102);
        assert!(matches!(
            r.u16_be("b"),
            Err(Error::Truncated {
                field: "b",
                offset: 2,
                need: 2,
                have: 1
            })
        ));
        assert_eq!(r.u8("c").unwrap(), 3);
        assert!(r.u8("d").is_err());
        assert!(r.bytes(usize::MAX, "e").is_err());
    }

    #[test]
    fn cstr_needs_terminator() {
        let mut r = Reader::new(b"AB\0CD");
        assert_eq!(r.cstr("s").unwrap(), b"AB");
        assert!(r.cstr("s").is_err());
        let mut r = Reader::new(b"CD");
        assert_eq!(r.cstr_lenient(), (&b"CD"[..], false));
    }

    #[test]
    fn utf16_round_trip() {
        let mut v = Vec::new();
        put_utf16z(&mut v, "DC1é");
        let mut r = Reader::new(&v);
        assert_eq!(r.utf16z("u").unwrap(), "DC1é");
        assert!(Reader::new(&[0x41, 0]).utf16z("u").is_err());
    }
}
