//! NetBIOS names: the 16-byte name with its suffix, first-level encoding
//! (RFC 1001 §14.1) and second-level encoding with scope labels (RFC 1001 §14.2,
//! RFC 1002 §4.1). Compression pointers are followed only where the caller allows
//! them (name-service packets, RFC 1002 §4.1); datagrams never use them.

use crate::error::{Error, Result};
use core::fmt;

/// Largest encoded name: all length bytes, labels and the final 0 (RFC 1002 §4.1).
pub const MAX_ENCODED_LEN: usize = 255;
/// Largest scope label (RFC 883 label rule).
pub const MAX_LABEL_LEN: usize = 63;
/// Pointer hops followed before giving up (Samba uses 10).
pub const MAX_POINTER_HOPS: usize = 10;
/// Encoded length of a name with no scope: 0x20, 32 characters, 0x00.
pub const PLAIN_ENCODED_LEN: usize = 34;

/// A NetBIOS name: 16 raw octets (15 name octets + suffix) plus an optional scope.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct Name {
    raw: [u8; 16],
    scope: String,
}

/// Equal when the octets and the scope are: what a derive would say, but the (almost
/// always empty) scope is compared only when it is not empty, so the per-datagram
/// comparisons (name table, repeat cache, subscriptions) make no `memcmp` call.
impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.same_scope(other)
    }
}

/// Hashes what [`PartialEq`] compares, as a derive would.
impl core::hash::Hash for Name {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
        self.scope.hash(state);
    }
}

impl Name {
    /// Build a name the Microsoft way: upper-case ASCII, space-padded to 15 octets,
    /// then the suffix. `*` gives the wildcard (`*` + 15 NULs, RFC 1001 §17.2).
    pub fn new(name: &str, suffix: u8) -> Result<Self> {
        if name == "*" {
            return Ok(Self::wildcard());
        }
        if name.is_empty() {
            return Err(Error::emit("name", "empty NetBIOS name"));
        }
        if name.len() > 15 {
            return Err(Error::emit("name", "NetBIOS name longer than 15 bytes"));
        }
        if !name.is_ascii() {
            return Err(Error::emit("name", "NetBIOS name must be ASCII"));
        }
        let mut raw = [0x20u8; 16];
        for (slot, b) in raw.iter_mut().zip(name.bytes()) {
            *slot = b.to_ascii_uppercase();
        }
        raw[15] = suffix;
        Ok(Name {
            raw,
            scope: String::new(),
        })
    }

    /// The broadcast/wildcard name `*` followed by 15 NUL octets.
    pub fn wildcard() -> Self {
        let mut raw = [0u8; 16];
        raw[0] = b'*';
        Name {
            raw,
            scope: String::new(),
        }
    }

    /// `\x01\x02__MSBROWSE__\x02\x01` (MS-BRWS §2.1.1).
    pub fn msbrowse() -> Self {
        Name::from_raw(*b"\x01\x02__MSBROWSE__\x02\x01")
    }

    /// A name from its 16 raw octets, taken as they are.
    pub fn from_raw(raw: [u8; 16]) -> Self {
        Name {
            raw,
            scope: String::new(),
        }
    }

    /// The same name in `scope` (a dotted DNS-style string, no leading/trailing dot).
    pub fn with_scope(mut self, scope: &str) -> Result<Self> {
        validate_scope(scope)?;
        self.scope = scope.to_owned();
        Ok(self)
    }

    pub fn raw(&self) -> &[u8; 16] {
        &self.raw
    }

    pub fn suffix(&self) -> u8 {
        self.raw[15]
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// True when both names have the same scope (cheap when both have none).
    #[inline]
    pub fn same_scope(&self, other: &Name) -> bool {
        self.scope.len() == other.scope.len()
            && (self.scope.is_empty() || self.scope == other.scope)
    }

    pub fn is_wildcard(&self) -> bool {
        self.raw[0] == b'*' && self.raw[1..].iter().all(|&b| b == 0)
    }

    /// The 15 name octets with trailing spaces removed (`*` for the wildcard), with
    /// non-printable octets shown as `<xx>` as Wireshark does.
    pub fn name(&self) -> String {
        if self.is_wildcard() {
            return "*".to_owned();
        }
        let body = &self.raw[..15];
        // Only space padding is removed: NUL padding is shown, so a NUL-padded name
        // never looks like the space-padded one (Wireshark shows it the same way).
        let end = body.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        let mut s = String::with_capacity(end);
        for &b in &body[..end] {
            push_printable(&mut s, b);
        }
        s
    }

    /// Length of the second-level encoding.
    pub fn encoded_len(&self) -> usize {
        let scope = if self.scope.is_empty() {
            0
        } else {
            self.scope.len() + 1
        };
        PLAIN_ENCODED_LEN + scope
    }

    /// Append the second-level encoding (never compressed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(0x20);
        for &b in &self.raw {
            out.push(b'A' + (b >> 4));
            out.push(b'A' + (b & 0x0F));
        }
        if !self.scope.is_empty() {
            for label in self.scope.split('.') {
                out.push(label.len() as u8);
                out.extend_from_slice(label.as_bytes());
            }
        }
        out.push(0);
    }

    /// Parse an uncompressed second-level name at `offset` of `buf` (datagram rule:
    /// no pointers). Returns the name and the offset just after it.
    pub fn parse(buf: &[u8], offset: usize) -> Result<(Name, usize)> {
        parse_at(buf, offset, false)
    }

    /// Parse a name that may use compression pointers; `msg` is the whole
    /// name-service message, so pointer offsets count from its first byte.
    pub fn parse_compressed(msg: &[u8], offset: usize) -> Result<(Name, usize)> {
        parse_at(msg, offset, true)
    }
}

fn push_printable(s: &mut String, b: u8) {
    use fmt::Write;
    if (0x20..0x7F).contains(&b) {
        s.push(b as char);
    } else {
        let _ = write!(s, "<{b:02x}>");
    }
}

/// A scope is DNS-like: labels of 1..=63 bytes of printable ASCII separated by dots,
/// and the whole name stays within 255 encoded bytes.
pub fn validate_scope(scope: &str) -> Result<()> {
    if scope.is_empty() {
        return Ok(());
    }
    if PLAIN_ENCODED_LEN + scope.len() + 1 > MAX_ENCODED_LEN {
        return Err(Error::emit(
            "scope",
            "scope makes the encoded name longer than 255 bytes",
        ));
    }
    for label in scope.split('.') {
        if label.is_empty() {
            return Err(Error::emit("scope", "empty scope label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::emit("scope", "scope label longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| (0x21..0x7F).contains(&b) && b != b'.')
        {
            return Err(Error::emit("scope", "scope label must be printable ASCII"));
        }
    }
    Ok(())
}

fn parse_at(buf: &[u8], offset: usize, allow_pointers: bool) -> Result<(Name, usize)> {
    // Fast path for the usual name: one 32-byte label and no scope.
    if let Some([0x20, label @ .., 0]) = buf.get(offset..offset + PLAIN_ENCODED_LEN) {
        if let Ok(raw) = decode_first_level(label, offset + 1) {
            let name = Name {
                raw,
                scope: String::new(),
            };
            return Ok((name, offset + PLAIN_ENCODED_LEN));
        }
    }
    let mut pos = offset;
    let mut end: Option<usize> = None;
    let mut hops = 0usize;
    let mut total = 0usize;
    let mut raw: Option<[u8; 16]> = None;
    let mut scope = String::new();
    loop {
        let len = *buf.get(pos).ok_or(Error::Truncated {
            field: "name label length",
            offset: pos,
            need: 1,
            have: 0,
        })?;
        match len & 0xC0 {
            0xC0 => {
                if !allow_pointers {
                    return Err(Error::invalid(
                        "name",
                        pos,
                        "compression pointer in a datagram name",
                    ));
                }
                let lo = *buf.get(pos + 1).ok_or(Error::Truncated {
                    field: "name pointer",
                    offset: pos,
                    need: 2,
                    have: 1,
                })?;
                let target = usize::from(u16::from_be_bytes([len & 0x3F, lo]));
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(Error::invalid("name", pos, "too many compression pointers"));
                }
                // Only backward pointers: a forward one can only point into garbage.
                if target >= pos {
                    return Err(Error::invalid(
                        "name",
                        pos,
                        "compression pointer does not point backwards",
                    ));
                }
                end.get_or_insert(pos + 2);
                pos = target;
                continue;
            }
            0x40 | 0x80 => {
                return Err(Error::invalid("name", pos, "reserved label type"));
            }
            _ => {}
        }
        let len = usize::from(len);
        total += len + 1;
        if total > MAX_ENCODED_LEN {
            return Err(Error::invalid(
                "name",
                pos,
                "encoded name longer than 255 bytes",
            ));
        }
        if len == 0 {
            if raw.is_none() {
                return Err(Error::invalid("name", pos, "empty NetBIOS name label"));
            }
            pos += 1;
            break;
        }
        let label = buf.get(pos + 1..pos + 1 + len).ok_or(Error::Truncated {
            field: "name label",
            offset: pos + 1,
            need: len,
            have: buf.len().saturating_sub(pos + 1),
        })?;
        if raw.is_none() {
            if len != 32 {
                return Err(Error::invalid("name", pos, "first label is not 32 bytes"));
            }
            raw = Some(decode_first_level(label, pos + 1)?);
        } else {
            if !scope.is_empty() {
                scope.push('.');
            }
            if !label
                .iter()
                .all(|&b| (0x21..0x7F).contains(&b) && b != b'.')
            {
                return Err(Error::invalid(
                    "scope",
                    pos + 1,
                    "scope label is not printable ASCII",
                ));
            }
            scope.extend(label.iter().map(|&b| b as char));
        }
        pos += 1 + len;
    }
    let raw = raw.ok_or(Error::invalid("name", offset, "missing NetBIOS name label"))?;
    Ok((Name { raw, scope }, end.unwrap_or(pos)))
}

/// Decode 32 characters `A`..`P` into 16 octets (lower case is rejected, as Samba does).
pub fn decode_first_level(label: &[u8], offset: usize) -> Result<[u8; 16]> {
    let mut raw = [0u8; 16];
    if label.len() != 32 {
        return Err(Error::invalid(
            "name",
            offset,
            "first-level name is not 32 characters",
        ));
    }
    // Branch-free over all 32 characters; locate the bad one only on failure.
    let mut bad = 0u8;
    for (slot, pair) in raw.iter_mut().zip(label.chunks_exact(2)) {
        let hi = pair[0].wrapping_sub(b'A');
        let lo = pair[1].wrapping_sub(b'A');
        bad |= (hi | lo) & 0xF0;
        *slot = (hi << 4) | (lo & 0x0F);
    }
    if bad != 0 {
        let i = label
            .iter()
            .position(|c| !(b'A'..=b'P').contains(c))
            .unwrap_or(0);
        return Err(Error::invalid(
            "name",
            offset + i,
            "first-level encoding character outside A..P",
        ));
    }
    Ok(raw)
}

/// First-level encoding of 16 octets as 32 characters.
pub fn encode_first_level(raw: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32);
    for &b in raw {
        s.push((b'A' + (b >> 4)) as char);
        s.push((b'A' + (b & 0x0F)) as char);
    }
    s
}

/// Shows `NAME<xx>` and, with a scope, `NAME<xx>.scope`.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<{:02x}>", self.name(), self.suffix())?;
        if !self.scope.is_empty() {
            write!(f, ".{}", self.scope)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Parse the user syntax `NAME<xx>` (suffix in hex, default 0x00 when omitted),
/// optionally followed by `.scope`.
impl core::str::FromStr for Name {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (body, rest) = match s.find('<') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let (suffix, scope) = if rest.is_empty() {
            let (b, scope) = match body.split_once('.') {
                Some((b, sc)) => (b, sc),
                None => (body, ""),
            };
            return Name::new(b, 0)?.with_scope(scope);
        } else {
            let close = rest
                .find('>')
                .ok_or(Error::emit("name", "missing '>' after the suffix"))?;
            let hex = &rest[1..close];
            let suffix = u8::from_str_radix(hex, 16).map_err(|_| {
                Error::emit("name", "suffix must be two hex digits, as in NAME<20>")
            })?;
            let after = &rest[close + 1..];
            let scope = after.strip_prefix('.').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('.') {
                return Err(Error::emit("name", "unexpected text after the suffix"));
            }
            (suffix, scope)
        };
        Name::new(body, suffix)?.with_scope(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(n: &Name) -> String {
        encode_first_level(n.raw())
    }

    #[test]
    fn digest_first_level_vectors() {
        assert_eq!(
            enc(&Name::from_raw(*b"FRED            ")),
            "EGFCEFEECACACACACACACACACACACACA"
        );
        assert_eq!(
            enc(&Name::new("FRED", 0).unwrap()),
            "EGFCEFEECACACACACACACACACACACAAA"
        );
        assert_eq!(enc(&Name::wildcard()), "CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            enc(&Name::new("WORKGROUP", 0x1d).unwrap()),
            "FHEPFCELEHFCEPFFFACACACACACACABN"
        );
        assert_eq!(enc(&Name::msbrowse()), "ABACFPFPENFDECFCEPFHFDEFFPFPACAB");
        // RFC 1001 §14.1 prints a wrong value; the DIGEST gives the right one.
        assert_eq!(
            enc(&Name::from_raw(*b"The NetBIOS name")),
            "FEGIGFCAEOGFHEECEJEPFDCAGOGBGNGF"
        );
    }

    #[test]
    fn second_level_with_scope() {
        let n = Name::from_raw(*b"FRED            ")
            .with_scope("NETBIOS.COM")
            .unwrap();
        let mut v = Vec::new();
        n.emit(&mut v);
        assert_eq!(v.len(), 46);
        assert_eq!(v.len(), n.encoded_len());
        assert_eq!(&v[33..], b"\x07NETBIOS\x03COM\x00");
        let (back, end) = Name::parse(&v, 0).unwrap();
        assert_eq!(back, n);
        assert_eq!(end, 46);
    }

    #[test]
    fn rejects_bad_encodings() {
        let mut v = Vec::new();
        Name::new("FRED", 0).unwrap().emit(&mut v);
        let mut lower = v.clone();
        lower[1] = b'e';
        assert!(matches!(
            Name::parse(&lower, 0),
            Err(Error::Invalid { offset: 1, .. })
        ));
        let mut short = v.clone();
        short[0] = 0x10;
        assert!(Name::parse(&short, 0).is_err());
        assert!(Name::parse(&v[..20], 0).is_err());
        assert!(Name::parse(&[0x00], 0).is_err());
        assert!(Name::parse(&[0x40], 0).is_err());
        // Pointers are refused in datagrams, followed (backwards only) in NBNS.
        let mut msg = v.clone();
        msg.extend_from_slice(&[0xC0, 0x00]);
        assert!(Name::parse(&msg, 34).is_err());
        let (n, end) = Name::parse_compressed(&msg, 34).unwrap();
        assert_eq!(n, Name::new("FRED", 0).unwrap());
        assert_eq!(end, 36);
        // A pointer to itself is a loop.
        assert!(Name::parse_compressed(&[0xC0, 0x00], 0).is_err());
    }

    #[test]
    fn scope_limits() {
        assert!(Name::new("A", 0)
            .unwrap()
            .with_scope(&"a".repeat(64))
            .is_err());
        let ok = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(28),
        ]
        .join(".");
        assert_eq!(34 + ok.len() + 1, 255);
        let n = Name::new("A", 0).unwrap().with_scope(&ok).unwrap();
        let mut v = Vec::new();
        n.emit(&mut v);
        assert_eq!(Name::parse(&v, 0).unwrap().0, n);
        let too_long = format!("{ok}x");
        assert!(Name::new("A", 0).unwrap().with_scope(&too_long).is_err());
    }

    #[test]
    fn user_syntax() {
        let n: Name = "fred<20>".parse().unwrap();
        assert_eq!(n.to_string(), "FRED<20>");
        let n: Name = "WORKGROUP<1d>.corp".parse().unwrap();
        assert_eq!(n.scope(), "corp");
        assert_eq!(n.suffix(), 0x1d);
        assert_eq!(Name::msbrowse().to_string(), "<01><02>__MSBROWSE__<02><01>");
        assert_eq!(Name::wildcard().to_string(), "*<00>");
        let mut raw = *b"NULPD\0\0\0\0\0\0\0\0\0\0\x1f";
        assert_eq!(
            Name::from_raw(raw).name(),
            "NULPD<00><00><00><00><00><00><00><00><00><00>"
        );
        raw[5..15].fill(b' ');
        assert_eq!(Name::from_raw(raw).name(), "NULPD");
        assert!("TOOLONGNAME123456<00>".parse::<Name>().is_err());
        assert!("X<zz>".parse::<Name>().is_err());
    }

    #[test]
    fn equality_and_hash_cover_octets_and_scope() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let h = |n: &Name| {
            let mut s = DefaultHasher::new();
            n.hash(&mut s);
            s.finish()
        };
        let a: Name = "FRED<20>".parse().unwrap();
        let corp: Name = "FRED<20>.corp".parse().unwrap();
        let corp2: Name = "FRED<20>.corp".parse().unwrap();
        let corq: Name = "FRED<20>.corq".parse().unwrap();
        let other: Name = "FRED<00>".parse().unwrap();
        assert_eq!(a, a.clone());
        assert_eq!(h(&a), h(&a.clone()));
        assert_eq!(corp, corp2);
        assert_eq!(h(&corp), h(&corp2));
        assert!(corp.same_scope(&corp2) && !corp.same_scope(&corq) && !a.same_scope(&corp));
        for (x, y) in [(&a, &corp), (&corp, &corq), (&a, &other), (&corp, &a)] {
            assert_ne!(x, y);
            assert_ne!(x.cmp(y), core::cmp::Ordering::Equal);
        }
    }
}
