//! RFC 1035 compressed strings of the V5 and EX responses (MS-ADTS §6.3.7) and the
//! [`WireLayout`] that keeps their wire form for byte-exact re-emission.

use core::fmt;

use super::{MAX_LABELS, MAX_LABEL_LEN, MAX_POINTER, MAX_POINTER_HOPS};
use crate::error::{Error, Result};
use crate::reader::Reader;

/// How the compressed strings of a parsed message looked on the wire, in field order, so
/// that `emit` can reproduce them byte for byte. For a V5 response it also keeps the three
/// UTF-16 strings before them when one of them does not come out the same from its text (an
/// unpaired surrogate, read as U+FFFD): the compressed strings may point into them. It is a
/// cache, not part of the value: it compares equal to every other `WireLayout`, is not
/// serialized, and built values use `WireLayout::default()` (empty: every string is
/// compressed afresh).
#[derive(Clone, Default)]
pub struct WireLayout {
    /// The compressed strings in field order; for a V5 response, then the three UTF-16
    /// strings (NUL included) when they are kept.
    pub(super) strings: Vec<Vec<u8>>,
}

/// Where a V5 response's [`WireLayout`] keeps its UTF-16 strings: after the three compressed
/// ones.
pub(super) const V5_UTF16_AT: usize = 3;

impl WireLayout {
    pub(super) fn get(&self, i: usize) -> Option<&[u8]> {
        self.strings.get(i).map(Vec::as_slice)
    }

    /// The kept form of the V5 response's UTF-16 string `i`, if it still reads as `s`.
    pub(super) fn utf16_for(&self, i: usize, s: &str) -> Option<&[u8]> {
        let raw = self.strings.get(V5_UTF16_AT + i)?;
        (Reader::new(raw).utf16z("").ok()? == s).then_some(raw.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

impl PartialEq for WireLayout {
    fn eq(&self, _: &WireLayout) -> bool {
        true
    }
}

impl Eq for WireLayout {}

impl fmt::Debug for WireLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WireLayout({} strings)", self.strings.len())
    }
}

/// Read the compressed string at `r`, record its wire bytes in `wire` and move past it.
///
/// The text must be one that [`put_dns_string`] can write without the cached bytes (they
/// stop reading back when what they point to is not reproduced exactly, e.g. a UTF-16
/// string with an unpaired surrogate): [`dns_labels`] must split it. It always can, unless
/// a label grew past 63 bytes when its invalid UTF-8 became U+FFFD (3 bytes per bad byte).
pub(super) fn dns_field(
    r: &mut Reader,
    field: &'static str,
    wire: &mut WireLayout,
) -> Result<String> {
    let start = r.pos();
    let (s, end) = read_dns_string(r.buf(), start, field)?;
    if dns_labels(&s).is_none() {
        return Err(Error::invalid(
            field,
            start,
            "a label is longer than 63 bytes once its invalid UTF-8 is replaced by U+FFFD",
        ));
    }
    wire.strings.push(r.bytes(end - start, field)?.to_vec());
    Ok(s)
}

/// Decode the name at `start` of `msg` (the whole NETLOGON message: pointers count from its
/// first byte). Returns the text, labels joined by `.`, and the offset after the in-line part.
/// A pointer must point backwards, and what it points to must end before the pointer itself,
/// so a string never depends on the bytes after it.
pub(super) fn read_dns_string(
    msg: &[u8],
    start: usize,
    field: &'static str,
) -> Result<(String, usize)> {
    let mut pos = start;
    // Once a pointer has been followed, reads must stay before the last pointer.
    let mut limit = msg.len();
    let mut end = None;
    let mut hops = 0usize;
    let mut labels = 0usize;
    let mut text: Vec<u8> = Vec::new();
    let take = |from: usize, n: usize, limit: usize| -> Result<&[u8]> {
        match msg.get(from..from + n) {
            Some(b) if from + n <= limit => Ok(b),
            _ if limit < msg.len() => Err(Error::invalid(
                field,
                from,
                "pointed-to name runs into the pointer",
            )),
            _ => Err(Error::Truncated {
                field,
                offset: from,
                need: n,
                have: msg.len().saturating_sub(from),
            }),
        }
    };
    loop {
        let len = take(pos, 1, limit)?.first().copied().unwrap_or_default();
        match len & 0xC0 {
            0x00 if len == 0 => {
                let end = end.unwrap_or(pos + 1);
                return Ok((String::from_utf8_lossy(&text).into_owned(), end));
            }
            0x00 => {
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(Error::invalid(field, pos, "too many labels"));
                }
                let n = usize::from(len);
                let label = take(pos + 1, n, limit)?;
                if labels > 1 {
                    text.push(b'.');
                }
                text.extend_from_slice(label);
                pos += 1 + n;
            }
            0xC0 => {
                let lo = take(pos + 1, 1, limit)?
                    .first()
                    .copied()
                    .unwrap_or_default();
                let target = usize::from(u16::from_be_bytes([len & 0x3F, lo]));
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(Error::invalid(field, pos, "too many compression pointers"));
                }
                if target >= pos {
                    return Err(Error::invalid(
                        field,
                        pos,
                        "compression pointer does not point backwards",
                    ));
                }
                end.get_or_insert(pos + 2);
                limit = pos;
                pos = target;
            }
            _ => return Err(Error::invalid(field, pos, "reserved label type")),
        }
    }
}

/// Suffixes already on the wire (text → offset of its first label), for pointers.
#[derive(Default)]
pub(super) struct Compressor {
    suffixes: Vec<(String, usize)>,
}

impl Compressor {
    pub(super) fn find(&self, s: &str) -> Option<usize> {
        self.suffixes.iter().find(|(t, _)| t == s).map(|&(_, o)| o)
    }

    pub(super) fn remember(&mut self, s: &str, offset: usize) {
        if offset <= MAX_POINTER && self.find(s).is_none() {
            self.suffixes.push((s.to_owned(), offset));
        }
    }

    /// Remember every in-line label of the string written at `start`.
    pub(super) fn learn(&mut self, msg: &[u8], start: usize) {
        let mut pos = start;
        while let Some(&len) = msg.get(pos) {
            if len == 0 || len & 0xC0 != 0 {
                break;
            }
            if let Ok((text, _)) = read_dns_string(msg, pos, "") {
                self.remember(&text, pos);
            }
            pos += 1 + usize::from(len);
        }
    }
}

/// The labels `s` is written as: split at every dot, a final dot kept inside the last label,
/// as Samba's `ndr_push_dns_string_list` does. Text that this cannot split into labels of 1
/// to 63 bytes (at most [`MAX_LABELS`]) — an empty piece from a leading, doubled or final
/// double dot, as a sender's label holding a `.` byte gives — is split into the fewest labels
/// that can hold it, some dots staying inside labels. Read back, the labels joined by dots
/// are `s` again. `None` when no split exists (a run of more than 63 bytes without a dot, or
/// more than [`MAX_LABELS`] labels needed). The empty string has no labels.
pub(super) fn dns_labels(s: &str) -> Option<Vec<&str>> {
    samba_labels(s)
        .filter(|l| l.len() <= MAX_LABELS)
        .or_else(|| fewest_labels(s))
        .filter(|l| l.len() <= MAX_LABELS)
}

/// Samba's split; `None` on an empty or over-long label.
pub(super) fn samba_labels(s: &str) -> Option<Vec<&str>> {
    let mut labels = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut n = rest.find('.').unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        if rest.get(n..) == Some(".") {
            n += 1;
        }
        if n > MAX_LABEL_LEN {
            return None;
        }
        labels.push(rest.get(..n)?);
        rest = rest.get(n..)?;
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Some(labels)
}

/// The split of `s` at some of its dots into the fewest labels of 1 to 63 bytes (the longest
/// first label among them), or `None`.
pub(super) fn fewest_labels(s: &str) -> Option<Vec<&str>> {
    let b = s.as_bytes();
    let len = b.len();
    // best[a]: (labels, end of the first label) for the text from `a`, a label start (0 or
    // just after a dot).
    let mut best: Vec<Option<(usize, usize)>> = vec![None; len + 1];
    for a in (0..len).rev() {
        if a > 0 && b.get(a - 1) != Some(&b'.') {
            continue;
        }
        let mut choice = None;
        if len - a <= MAX_LABEL_LEN {
            choice = Some((1, len));
        } else {
            // The label ends at a dot `p`, and the next one is not empty.
            for p in (a + 1..=a + MAX_LABEL_LEN).rev() {
                if b.get(p) != Some(&b'.') {
                    continue;
                }
                if let Some(&Some((n, _))) = best.get(p + 1) {
                    if choice.is_none_or(|(m, _)| n + 1 < m) {
                        choice = Some((n + 1, p));
                    }
                }
            }
        }
        if let Some(slot) = best.get_mut(a) {
            *slot = choice;
        }
    }
    let mut labels = Vec::new();
    let mut a = 0;
    while a < len {
        let (_, end) = (*best.get(a)?)?;
        labels.push(s.get(a..end)?);
        a = end + 1;
    }
    Some(labels)
}

/// Append `labels`, with a pointer as soon as the rest of the string is a suffix `comp`
/// knows (none without `comp`).
pub(super) fn put_labels(msg: &mut Vec<u8>, labels: &[&str], comp: Option<&Compressor>) {
    for (i, label) in labels.iter().enumerate() {
        if let Some(off) = comp.and_then(|c| c.find(&labels[i..].join("."))) {
            msg.extend_from_slice(&(0xC000 | off as u16).to_be_bytes());
            return;
        }
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
}

/// Append `s` to `msg` (the message so far). `cached` is the string's wire form from parsing;
/// it is kept if it still reads back as `s` here (it may not when it points into bytes that
/// came out differently, or when the message has moved), otherwise `s` is split by
/// [`dns_labels`] and compressed as Samba does: a pointer as soon as the rest of the string is
/// a suffix already written. If that does not read back (a pointer into a string that has
/// its own pointers can exceed [`MAX_POINTER_HOPS`] or [`MAX_LABELS`]), the labels are
/// written without pointers.
pub(super) fn put_dns_string(
    msg: &mut Vec<u8>,
    s: &str,
    cached: Option<&[u8]>,
    comp: &mut Compressor,
    field: &'static str,
) -> Result<()> {
    let start = msg.len();
    let reads_back = |msg: &[u8]| matches!(read_dns_string(msg, start, field), Ok((t, end)) if t == s && end == msg.len());
    if let Some(wire) = cached {
        msg.extend_from_slice(wire);
        if reads_back(msg) {
            comp.learn(msg, start);
            return Ok(());
        }
        msg.truncate(start);
    }
    let Some(labels) = dns_labels(s) else {
        let reason = if fewest_labels(s).is_some() {
            "more than 128 labels"
        } else {
            "label longer than 63 bytes"
        };
        return Err(Error::emit(field, reason));
    };
    for compress in [true, false] {
        put_labels(msg, &labels, compress.then_some(&*comp));
        if reads_back(msg) {
            comp.learn(msg, start);
            return Ok(());
        }
        msg.truncate(start);
    }
    Err(Error::emit(
        field,
        "string cannot be encoded so that it reads back the same",
    ))
}
