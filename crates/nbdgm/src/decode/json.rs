//! Compact JSON for `decode --format json|ndjson` (schema: `docs/json-schema.md`),
//! written straight into the caller's buffer. The bytes are the same as
//! `serde_json::to_writer` gives for every value (the tests compare both on every
//! bundled capture and on random strings); it is faster because strings are scanned
//! for the characters JSON escapes eight bytes at a time. A value this serializer
//! does not handle (a map key that is not a string) is written by `serde_json` instead.

use serde::ser::{self, Serialize};
use std::fmt;

/// Append `value` as compact JSON, byte for byte what `serde_json::to_writer` writes.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if value.serialize(&mut Ser { out: &mut *out }).is_err() {
        out.truncate(start);
        // Writing to a Vec cannot fail; a value that cannot be serialized leaves what
        // serde_json wrote before the error, as before.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

/// A value this serializer leaves to `serde_json`.
#[derive(Debug)]
pub struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unsupported by the fast JSON writer")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// True when one of the 8 bytes of `x` is below 0x20, `"` or `\`.
#[inline]
fn has_special(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    below | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) != 0
}

#[inline]
fn escape_byte(out: &mut Vec<u8>, b: u8) -> bool {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        0..=0x1f => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
            return true;
        }
        _ => return false,
    };
    out.extend_from_slice(&[b'\\', short]);
    true
}

/// `"s"` with JSON's escapes (serde_json's choice of forms: `\"`, `\\`, `\b`, `\t`,
/// `\n`, `\f`, `\r`, `\u00xx` for the other C0 controls; nothing else is escaped).
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // Keys and most values: nothing to escape, one copy. Eight bytes at a time, then
    // the tail byte by byte.
    let mut chunks = b.chunks_exact(8);
    let mut special = false;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        special |= has_special(u64::from_le_bytes(w));
    }
    for &c in chunks.remainder() {
        special |= c < 0x20 || c == b'"' || c == b'\\';
    }
    if !special {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    push_str_scan(out, b);
}

#[inline(never)]
fn push_str_scan(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut run = 0; // start of the bytes not yet copied
    let mut i = 0;
    while i < b.len() {
        if i + 8 <= b.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            if !has_special(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(b.len());
        for j in i..end {
            let c = b[j];
            if c < 0x20 || c == b'"' || c == b'\\' {
                out.extend_from_slice(&b[run..j]);
                escape_byte(out, c);
                run = j + 1;
            }
        }
        i = end;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

/// Two decimal digits for each value below 100.
const DIGITS2: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    let mut d = [0u8; 20];
    let mut i = d.len();
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        d[i..i + 2].copy_from_slice(&DIGITS2[r..r + 2]);
    }
    if v >= 10 {
        let r = v as usize * 2;
        i -= 2;
        d[i..i + 2].copy_from_slice(&DIGITS2[r..r + 2]);
    } else {
        i -= 1;
        d[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&d[i..]);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

struct Ser<'a> {
    out: &'a mut Vec<u8>,
}

/// An array, object or variant being written: `close` ends it.
#[doc(hidden)]
pub struct Compound<'b, 'a> {
    ser: &'b mut Ser<'a>,
    first: bool,
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
    }

    /// A struct field's name: a Rust identifier or a `rename`, never with a
    /// character JSON escapes (checked in debug builds), so it is copied as it is.
    fn key(&mut self, key: &'static str) {
        debug_assert!(!key.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\'));
        self.comma();
        let out = &mut *self.ser.out;
        out.reserve(key.len() + 3);
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
    }
}

type R = Result<(), Unsupported>;

impl<'b, 'a> ser::Serializer for &'b mut Ser<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'b, 'a>;
    type SerializeTuple = Compound<'b, 'a>;
    type SerializeTupleStruct = Compound<'b, 'a>;
    type SerializeTupleVariant = Compound<'b, 'a>;
    type SerializeMap = Compound<'b, 'a>;
    type SerializeStruct = Compound<'b, 'a>;
    type SerializeStructVariant = Compound<'b, 'a>;

    fn serialize_bool(self, v: bool) -> R {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> R {
        push_i64(self.out, v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> R {
        push_i64(self.out, v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> R {
        push_i64(self.out, v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> R {
        push_i64(self.out, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> R {
        push_u64(self.out, v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> R {
        push_u64(self.out, v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> R {
        push_u64(self.out, v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> R {
        push_u64(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> R {
        serde_json::to_writer(&mut *self.out, &v).map_err(|_| Unsupported)
    }
    fn serialize_f64(self, v: f64) -> R {
        serde_json::to_writer(&mut *self.out, &v).map_err(|_| Unsupported)
    }
    fn serialize_char(self, v: char) -> R {
        push_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> R {
        push_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        self.out.push(b'[');
        for (i, b) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            push_u64(self.out, u64::from(*b));
        }
        self.out.push(b']');
        Ok(())
    }
    fn serialize_none(self) -> R {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_unit(self) -> R {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> R {
        push_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> R {
        self.out.push(b'{');
        push_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'b, 'a>, Unsupported> {
        self.out.push(b'[');
        Ok(Compound {
            ser: self,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'b, 'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'b, 'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'b, 'a>, Unsupported> {
        self.out.push(b'{');
        push_str(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound {
            ser: self,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'b, 'a>, Unsupported> {
        self.out.push(b'{');
        Ok(Compound {
            ser: self,
            first: true,
            close: b"}",
        })
    }
    fn serialize_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'b, 'a>, Unsupported> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'b, 'a>, Unsupported> {
        self.out.push(b'{');
        push_str(self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound {
            ser: self,
            first: true,
            close: b"}}",
        })
    }
}

impl Compound<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        self.comma();
        value.serialize(&mut *self.ser)
    }

    fn finish(self) -> R {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        self.element(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        self.element(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        self.element(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        self.element(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> R {
        self.comma();
        key.serialize(KeySer { out: self.ser.out })?;
        self.ser.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> R {
        self.key(key);
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> R {
        self.key(key);
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> R {
        self.finish()
    }
}

/// Map keys: strings only; anything else goes to serde_json (which quotes numbers).
struct KeySer<'a> {
    out: &'a mut Vec<u8>,
}

impl ser::Serializer for KeySer<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<(), Unsupported>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> R {
        push_str(self.out, v);
        Ok(())
    }
    fn serialize_bool(self, _: bool) -> R {
        Err(Unsupported)
    }
    fn serialize_i8(self, _: i8) -> R {
        Err(Unsupported)
    }
    fn serialize_i16(self, _: i16) -> R {
        Err(Unsupported)
    }
    fn serialize_i32(self, _: i32) -> R {
        Err(Unsupported)
    }
    fn serialize_i64(self, _: i64) -> R {
        Err(Unsupported)
    }
    fn serialize_u8(self, _: u8) -> R {
        Err(Unsupported)
    }
    fn serialize_u16(self, _: u16) -> R {
        Err(Unsupported)
    }
    fn serialize_u32(self, _: u32) -> R {
        Err(Unsupported)
    }
    fn serialize_u64(self, _: u64) -> R {
        Err(Unsupported)
    }
    fn serialize_f32(self, _: f32) -> R {
        Err(Unsupported)
    }
    fn serialize_f64(self, _: f64) -> R {
        Err(Unsupported)
    }
    fn serialize_char(self, _: char) -> R {
        Err(Unsupported)
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Err(Unsupported)
    }
    fn serialize_none(self) -> R {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> R {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> R {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Err(Unsupported)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        Err(Unsupported)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> R {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> R {
        Err(Unsupported)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}
