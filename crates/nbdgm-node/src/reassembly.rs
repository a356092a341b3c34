//! Reassembly of datagram fragments (RFC 1001 §17.1.2; RFC 1002 §5.3.3; DIGEST §2.7).
//!
//! Sets are keyed by (UDP source IP, UDP source port, DGM_ID). Fragments may come in
//! any order; duplicates are ignored; overlapping or disagreeing fragments drop the
//! whole set. Incomplete sets expire after FRAGMENT_TO. Memory is bounded by the
//! [`ReassemblyLimits`]: sets in total, bytes per source IP, bytes in total, bytes per
//! datagram. Every set costs its data plus [`SET_OVERHEAD`] bytes of accounting.
//!
//! Two layouts are accepted (DIGEST §2.4): RFC 1001 §17.1.2 (names in the first
//! fragment only, PACKET_OFFSET over the data section), and names repeated in every
//! fragment (Hertel's implementation: DGM_LENGTH per fragment, PACKET_OFFSET over user
//! data only). A later fragment is read as "names repeated" only when its DGM_LENGTH
//! equals its own data section, it begins with two names, the first fragment's
//! DGM_LENGTH also equals its own section, and the names are the first fragment's; it
//! is otherwise RFC data, whatever its bytes look like. Such a fragment arriving before
//! the first one waits (charged to its set) until the first decides. One set holds one
//! layout: a mix drops it as inconsistent.

use crate::config::ReassemblyLimits;
use crate::event::{DropReason, FragmentLayout};
use nbdgm_wire::datagram::MsgType;
use nbdgm_wire::Name;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Bytes charged per set on top of its data (names, bookkeeping).
pub const SET_OVERHEAD: usize = 256;

/// One received fragment, already parsed by the codec.
#[derive(Debug, Clone)]
pub(crate) enum Fragment<'a> {
    /// F = 1, M = 1: both names and the start of the user data; `per_fragment_length`
    /// when DGM_LENGTH equals this packet's own data section.
    First {
        source: &'a Name,
        destination: &'a Name,
        names_len: usize,
        data: &'a [u8],
        per_fragment_length: bool,
    },
    /// F = 0: data-section bytes from `offset`; `last` when M = 0.
    Next {
        offset: usize,
        data: &'a [u8],
        last: bool,
        layout: FragmentLayout,
    },
    /// F = 0, DGM_LENGTH equal to this packet's data section, and `section` begins with
    /// two names taking `names_len` bytes: names repeated, or RFC data that merely
    /// looks like names. Decided against the first fragment ([`resolve`]).
    Ambiguous {
        packet_offset: usize,
        section: &'a [u8],
        names: (Name, Name),
        names_len: usize,
        last: bool,
    },
}

/// Where a fragment lies in the data section: `start..end`, and whether M = 0.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    last: bool,
}

impl<'a> Fragment<'a> {
    /// The user-data (or data-section) bytes it carries.
    fn data(&self) -> &'a [u8] {
        match *self {
            Fragment::First { data, .. } | Fragment::Next { data, .. } => data,
            Fragment::Ambiguous { section, .. } => section,
        }
    }

    /// The layout a later fragment stands for (none for the first).
    fn layout(&self) -> Option<FragmentLayout> {
        match self {
            Fragment::Next { layout, .. } => Some(*layout),
            _ => None,
        }
    }

    /// The first fragment starts at 0 and spans the names too; it is never the last.
    fn span(&self) -> Span {
        match *self {
            Fragment::First {
                names_len, data, ..
            } => Span {
                start: 0,
                end: names_len + data.len(),
                last: false,
            },
            Fragment::Next {
                offset, data, last, ..
            } => Span {
                start: offset,
                end: offset + data.len(),
                last,
            },
            Fragment::Ambiguous {
                packet_offset,
                section,
                last,
                ..
            } => Span {
                start: packet_offset,
                end: packet_offset + section.len(),
                last,
            },
        }
    }
}

/// Read an ambiguous later fragment against the first: names repeated when the first
/// also carried a per-fragment DGM_LENGTH and the names are the same; else RFC data.
fn resolve<'a>(first: &FirstPart, frag: Fragment<'a>) -> Fragment<'a> {
    let Fragment::Ambiguous {
        packet_offset,
        section,
        names,
        names_len,
        last,
    } = frag
    else {
        return frag;
    };
    let repeated = first.per_fragment_length
        && first.names_len == names_len
        && first.source == names.0
        && first.destination == names.1;
    if repeated {
        Fragment::Next {
            offset: names_len + packet_offset,
            data: section.get(names_len..).unwrap_or(&[]),
            last,
            layout: FragmentLayout::RepeatedNames,
        }
    } else {
        Fragment::Next {
            offset: packet_offset,
            data: section,
            last,
            layout: FragmentLayout::Rfc,
        }
    }
}

/// An ambiguous fragment kept until its first fragment arrives.
#[derive(Debug)]
struct Deferred {
    packet_offset: usize,
    section: Vec<u8>,
    names: (Name, Name),
    names_len: usize,
    last: bool,
}

impl Deferred {
    fn fragment(&self) -> Fragment<'_> {
        Fragment::Ambiguous {
            packet_offset: self.packet_offset,
            section: &self.section,
            names: self.names.clone(),
            names_len: self.names_len,
            last: self.last,
        }
    }
}

/// A reassembled datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Complete {
    pub from: SocketAddrV4,
    pub header_source: SocketAddrV4,
    pub msg_type: MsgType,
    pub source: Name,
    pub destination: Name,
    pub data: Vec<u8>,
    pub fragments: usize,
    pub layout: FragmentLayout,
}

#[derive(Debug)]
struct FirstPart {
    source: Name,
    destination: Name,
    names_len: usize,
    data: Vec<u8>,
    header_source: SocketAddrV4,
    per_fragment_length: bool,
}

impl FirstPart {
    fn end(&self) -> usize {
        self.names_len + self.data.len()
    }
}

#[derive(Debug)]
struct Set {
    seq: u64,
    deadline: Instant,
    from: SocketAddrV4,
    msg_type: MsgType,
    first: Option<FirstPart>,
    /// Later fragments: (data-section offset, bytes), non-overlapping.
    pieces: Vec<(usize, Vec<u8>)>,
    total: Option<usize>,
    cost: usize,
    fragments: usize,
    /// Layout of the later fragments placed so far.
    layout: Option<FragmentLayout>,
    /// Ambiguous later fragments waiting for the first.
    deferred: Vec<Deferred>,
}

impl Set {
    fn covered(&self) -> usize {
        self.first.as_ref().map_or(0, FirstPart::end)
            + self.pieces.iter().map(|(_, d)| d.len()).sum::<usize>()
    }

    /// Keep an admitted fragment: the first one's names and data, or a later piece
    /// (the last one also gives the total length).
    fn add(&mut self, frag: Fragment<'_>, header_source: SocketAddrV4) {
        self.fragments += 1;
        match frag {
            Fragment::First {
                source,
                destination,
                names_len,
                data,
                per_fragment_length,
            } => {
                self.first = Some(FirstPart {
                    source: source.clone(),
                    destination: destination.clone(),
                    names_len,
                    data: data.to_vec(),
                    header_source,
                    per_fragment_length,
                });
            }
            Fragment::Next {
                offset,
                data,
                last,
                layout,
            } => {
                self.layout = Some(layout);
                if !data.is_empty() {
                    self.pieces.push((offset, data.to_vec()));
                }
                if last {
                    self.total = Some(offset + data.len());
                }
            }
            Fragment::Ambiguous {
                packet_offset,
                section,
                names,
                names_len,
                last,
            } => self.deferred.push(Deferred {
                packet_offset,
                section: section.to_vec(),
                names,
                names_len,
                last,
            }),
        }
    }

    /// The first fragment and the last are in, and the bytes between are all there.
    fn is_complete(&self) -> bool {
        matches!((&self.first, self.total), (Some(_), Some(t)) if self.covered() == t)
    }

    fn overlaps(&self, start: usize, end: usize) -> bool {
        let first = self
            .first
            .as_ref()
            .is_some_and(|f| start < f.end() && 0 < end);
        first
            || self
                .pieces
                .iter()
                .any(|(s, d)| start < s + d.len() && *s < end)
    }
}

type Key = (Ipv4Addr, u16, u16);

#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    sets: BTreeMap<Key, Set>,
    per_source: BTreeMap<Ipv4Addr, usize>,
    total: usize,
    seq: u64,
}

impl Reassembler {
    pub fn pending(&self) -> usize {
        self.sets.len()
    }

    pub fn bytes(&self) -> usize {
        self.total
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.sets.values().map(|s| s.deadline).min()
    }

    fn remove(&mut self, key: &Key) -> Option<Set> {
        let set = self.sets.remove(key)?;
        self.total -= set.cost;
        if let Some(b) = self.per_source.get_mut(&key.0) {
            *b -= set.cost;
            if *b == 0 {
                self.per_source.remove(&key.0);
            }
        }
        Some(set)
    }

    fn charge(&mut self, key: &Key, n: usize) {
        if let Some(s) = self.sets.get_mut(key) {
            s.cost += n;
            self.total += n;
            *self.per_source.entry(key.0).or_insert(0) += n;
        }
    }

    /// Evict the oldest set matching `pred` other than `keep`; false when there is none.
    fn evict_oldest(
        &mut self,
        keep: &Key,
        pred: impl Fn(&Key) -> bool,
        drops: &mut Vec<(DropReason, SocketAddrV4)>,
    ) -> bool {
        let victim = self
            .sets
            .iter()
            .filter(|(k, _)| *k != keep && pred(k))
            .min_by_key(|(_, s)| s.seq)
            .map(|(k, _)| *k);
        match victim.and_then(|k| self.remove(&k)) {
            Some(set) => {
                drops.push((DropReason::FragmentEvicted, set.from));
                true
            }
            None => false,
        }
    }

    /// Drop sets whose FRAGMENT_TO has passed.
    pub fn expire(&mut self, now: Instant, drops: &mut Vec<(DropReason, SocketAddrV4)>) {
        let due: Vec<Key> = self
            .sets
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some(set) = self.remove(&k) {
                drops.push((DropReason::FragmentTimeout, set.from));
            }
        }
    }

    /// Make the table fit new `limits` (after a configuration change).
    pub fn enforce(
        &mut self,
        limits: &ReassemblyLimits,
        drops: &mut Vec<(DropReason, SocketAddrV4)>,
    ) {
        let none: Key = (Ipv4Addr::UNSPECIFIED, 0, 0);
        while self.sets.len() > limits.max_pending || self.total > limits.max_total_bytes {
            if !self.evict_oldest(&none, |_| true, drops) {
                break;
            }
        }
    }

    /// Add one fragment. Returns the datagram when this fragment completed it.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        now: Instant,
        limits: &ReassemblyLimits,
        timeout: Duration,
        from: SocketAddrV4,
        header_source: SocketAddrV4,
        msg_type: MsgType,
        id: u16,
        frag: Fragment<'_>,
        drops: &mut Vec<(DropReason, SocketAddrV4)>,
    ) -> Option<Complete> {
        let key: Key = (*from.ip(), from.port(), id);
        let frag = match self.sets.get(&key).and_then(|s| s.first.as_ref()) {
            Some(first) => resolve(first, frag),
            None => frag,
        };
        let is_first = matches!(frag, Fragment::First { .. });
        if !self.admit(&key, from, msg_type, &frag, limits, drops) {
            return None;
        }
        let new = !self.sets.contains_key(&key);
        let cost = frag.data().len() + if new { SET_OVERHEAD } else { 0 };
        if !self.make_room(&key, from, new, cost, limits, drops) {
            return None;
        }
        if new {
            self.open(key, now + timeout, from, msg_type);
        }
        self.charge(&key, cost);
        let set = self.sets.get_mut(&key)?;
        set.add(frag, header_source);
        if is_first && !self.replay(&key, from, msg_type, limits, drops) {
            return None;
        }
        if !self.sets.get(&key)?.is_complete() {
            return None;
        }
        self.take_complete(&key, from)
    }

    /// The first fragment is in: place the ambiguous fragments that waited for it
    /// (their bytes are charged already). False when that dropped the set.
    fn replay(
        &mut self,
        key: &Key,
        from: SocketAddrV4,
        msg_type: MsgType,
        limits: &ReassemblyLimits,
        drops: &mut Vec<(DropReason, SocketAddrV4)>,
    ) -> bool {
        let Some(set) = self.sets.get_mut(key) else {
            return false;
        };
        let deferred = std::mem::take(&mut set.deferred);
        for d in &deferred {
            let Some(first) = self.sets.get(key).and_then(|s| s.first.as_ref()) else {
                return false;
            };
            let frag = resolve(first, d.fragment());
            if !self.admit(key, from, msg_type, &frag, limits, drops) {
                if !self.sets.contains_key(key) {
                    return false;
                }
                continue;
            }
            let Some(set) = self.sets.get_mut(key) else {
                return false;
            };
            set.fragments -= 1; // counted when it arrived
            set.add(frag, from);
        }
        true
    }

    /// Whether the fragment may go in: within the datagram size limit, not an empty
    /// middle fragment, consistent with what its set already holds (a duplicate is
    /// dropped; a contradiction drops the whole set, as does an oversize fragment).
    fn admit(
        &mut self,
        key: &Key,
        from: SocketAddrV4,
        msg_type: MsgType,
        frag: &Fragment<'_>,
        limits: &ReassemblyLimits,
        drops: &mut Vec<(DropReason, SocketAddrV4)>,
    ) -> bool {
        let span = frag.span();
        if span.end > limits.max_datagram_bytes {
            self.remove(key);
            drops.push((DropReason::FragmentOversize, from));
            return false;
        }
        if let Fragment::Next {
            last: false, data, ..
        } = frag
        {
            if data.is_empty() {
                drops.push((DropReason::MalformedDatagram, from));
                return false;
            }
        }
        if let Some(set) = self.sets.get(key) {
            match check(set, frag, msg_type, span.start, span.end, span.last) {
                Verdict::Ok => {}
                Verdict::Duplicate => {
                    drops.push((DropReason::FragmentDuplicate, from));
                    return false;
                }
                Verdict::Inconsistent => {
                    self.remove(key);
                    drops.push((DropReason::FragmentInconsistent, from));
                    return false;
                }
            }
        }
        true
    }

    /// Room for `cost` more bytes (and, when `new`, one more set), made by evicting the
    /// oldest sets. False when it cannot be made: the fragment is dropped, and its own
    /// set with it once that is the only one left to evict.
    fn make_room(
        &mut self,
        key: &Key,
        from: SocketAddrV4,
        new: bool,
        cost: usize,
        limits: &ReassemblyLimits,
        drops: &mut Vec<(DropReason, SocketAddrV4)>,
    ) -> bool {
        if cost > limits.max_bytes_per_source || cost > limits.max_total_bytes {
            drops.push((DropReason::FragmentEvicted, from));
            return false;
        }
        if new {
            while self.sets.len() >= limits.max_pending {
                if !self.evict_oldest(key, |_| true, drops) {
                    break;
                }
            }
        }
        let ip = key.0;
        while self.per_source.get(&ip).copied().unwrap_or(0) + cost > limits.max_bytes_per_source {
            if !self.evict_oldest(key, |k| k.0 == ip, drops) {
                // Only this set is left for the source: give it up.
                self.remove(key);
                drops.push((DropReason::FragmentEvicted, from));
                return false;
            }
        }
        while self.total + cost > limits.max_total_bytes {
            if !self.evict_oldest(key, |_| true, drops) {
                self.remove(key);
                drops.push((DropReason::FragmentEvicted, from));
                return false;
            }
        }
        true
    }

    /// Start an empty set for `key`, expiring at `deadline`.
    fn open(&mut self, key: Key, deadline: Instant, from: SocketAddrV4, msg_type: MsgType) {
        self.seq += 1;
        self.sets.insert(
            key,
            Set {
                seq: self.seq,
                deadline,
                from,
                msg_type,
                first: None,
                pieces: Vec::new(),
                total: None,
                cost: 0,
                fragments: 0,
                layout: None,
                deferred: Vec::new(),
            },
        );
    }

    /// Remove a complete set and join its data: the first fragment's, then the later
    /// pieces by offset.
    fn take_complete(&mut self, key: &Key, from: SocketAddrV4) -> Option<Complete> {
        let set = self.remove(key)?;
        let first = set.first?;
        let mut pieces = set.pieces;
        pieces.sort_by_key(|(s, _)| *s);
        let mut data = first.data;
        for (_, p) in pieces {
            data.extend_from_slice(&p);
        }
        Some(Complete {
            from,
            header_source: first.header_source,
            msg_type: set.msg_type,
            source: first.source,
            destination: first.destination,
            data,
            fragments: set.fragments,
            layout: set.layout.unwrap_or(FragmentLayout::Rfc),
        })
    }
}

enum Verdict {
    Ok,
    Duplicate,
    Inconsistent,
}

fn check(
    set: &Set,
    frag: &Fragment<'_>,
    msg_type: MsgType,
    start: usize,
    end: usize,
    last: bool,
) -> Verdict {
    match frag {
        Fragment::First {
            source,
            destination,
            names_len,
            data,
            ..
        } => {
            if let Some(f) = &set.first {
                let same = &f.source == *source
                    && &f.destination == *destination
                    && f.names_len == *names_len
                    && f.data == *data;
                // (per_fragment_length of a duplicate is not compared: it only
                // decides how ambiguous later fragments are read.)
                return if same && set.msg_type == msg_type {
                    Verdict::Duplicate
                } else {
                    Verdict::Inconsistent
                };
            }
        }
        Fragment::Ambiguous { .. } => {
            // Waits for the first fragment; only its type is checked now.
            return if set.msg_type == msg_type {
                Verdict::Ok
            } else {
                Verdict::Inconsistent
            };
        }
        Fragment::Next { data, .. } => {
            if let Some((_, d)) = set.pieces.iter().find(|(s, _)| *s == start) {
                if d == data && set.msg_type == msg_type && (!last || set.total == Some(end)) {
                    return Verdict::Duplicate;
                }
                return Verdict::Inconsistent;
            }
            if data.is_empty() && last && set.total == Some(end) {
                return Verdict::Duplicate;
            }
        }
    }
    if set.msg_type != msg_type {
        return Verdict::Inconsistent;
    }
    if let (Some(have), Some(new)) = (set.layout, frag.layout()) {
        if have != new {
            return Verdict::Inconsistent;
        }
    }
    if set.overlaps(start, end) && end > start {
        return Verdict::Inconsistent;
    }
    if let Some(t) = set.total {
        if end > t || last {
            // A second, different last fragment, or data past the end.
            return Verdict::Inconsistent;
        }
    }
    if last {
        let beyond = set.pieces.iter().any(|(s, d)| s + d.len() > end)
            || set.first.as_ref().is_some_and(|f| f.end() > end);
        if beyond {
            return Verdict::Inconsistent;
        }
    }
    Verdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T {
        r: Reassembler,
        limits: ReassemblyLimits,
        now: Instant,
        drops: Vec<(DropReason, SocketAddrV4)>,
        s: Name,
        d: Name,
    }

    fn from(n: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 138)
    }

    impl T {
        fn new() -> T {
            T {
                r: Reassembler::default(),
                limits: ReassemblyLimits::default(),
                now: Instant::now(),
                drops: Vec::new(),
                s: Name::new("SRC", 0).unwrap(),
                d: Name::new("DST", 0).unwrap(),
            }
        }
        fn first(&mut self, src: u8, id: u16, data: &[u8]) -> Option<Complete> {
            let (s, d) = (self.s.clone(), self.d.clone());
            self.r.insert(
                self.now,
                &self.limits,
                Duration::from_secs(2),
                from(src),
                from(src),
                MsgType::DirectUnique,
                id,
                Fragment::First {
                    source: &s,
                    destination: &d,
                    names_len: 68,
                    data,
                    per_fragment_length: false,
                },
                &mut self.drops,
            )
        }
        fn next(
            &mut self,
            src: u8,
            id: u16,
            offset: usize,
            data: &[u8],
            last: bool,
        ) -> Option<Complete> {
            self.r.insert(
                self.now,
                &self.limits,
                Duration::from_secs(2),
                from(src),
                from(src),
                MsgType::DirectUnique,
                id,
                Fragment::Next {
                    offset,
                    data,
                    last,
                    layout: FragmentLayout::Rfc,
                },
                &mut self.drops,
            )
        }
        fn reasons(&self) -> Vec<DropReason> {
            self.drops.iter().map(|d| d.0).collect()
        }
    }

    #[test]
    fn in_order_and_reordered() {
        let mut t = T::new();
        assert!(t.first(1, 1, &[1; 10]).is_none());
        assert!(t.next(1, 1, 78, &[2; 5], false).is_none());
        let c = t.next(1, 1, 83, &[3; 4], true).unwrap();
        assert_eq!(c.data, [&[1u8; 10][..], &[2; 5], &[3; 4]].concat());
        assert_eq!(c.fragments, 3);
        assert_eq!(t.r.pending(), 0);
        assert_eq!(t.r.bytes(), 0);
        // Reversed order.
        assert!(t.next(1, 2, 83, &[3; 4], true).is_none());
        assert!(t.next(1, 2, 78, &[2; 5], false).is_none());
        let c = t.first(1, 2, &[1; 10]).unwrap();
        assert_eq!(c.data.len(), 19);
        assert!(t.drops.is_empty());
    }

    #[test]
    fn duplicates_and_inconsistency() {
        let mut t = T::new();
        t.first(1, 1, &[1; 10]);
        t.first(1, 1, &[1; 10]);
        t.next(1, 1, 78, &[2; 5], false);
        t.next(1, 1, 78, &[2; 5], false);
        assert_eq!(t.reasons(), vec![DropReason::FragmentDuplicate; 2]);
        // Overlap: drops the set.
        t.next(1, 1, 80, &[9; 5], false);
        assert_eq!(t.reasons()[2], DropReason::FragmentInconsistent);
        assert_eq!(t.r.pending(), 0);
        // Same offset, other bytes.
        t.first(1, 3, &[1; 10]);
        t.next(1, 3, 78, &[2; 5], false);
        t.next(1, 3, 78, &[7; 5], false);
        assert_eq!(t.reasons()[3], DropReason::FragmentInconsistent);
        // Two different last fragments.
        t.next(1, 4, 100, &[1], true);
        t.next(1, 4, 200, &[1], true);
        assert_eq!(t.reasons()[4], DropReason::FragmentInconsistent);
        // Data before the end of the names.
        t.first(1, 5, &[1; 10]);
        t.next(1, 5, 10, &[1; 4], false);
        assert_eq!(t.reasons()[5], DropReason::FragmentInconsistent);
        // A last fragment ending before data already held.
        t.next(1, 6, 300, &[1; 4], false);
        t.next(1, 6, 100, &[1; 4], true);
        assert_eq!(t.reasons()[6], DropReason::FragmentInconsistent);
        assert_eq!(t.r.pending(), 0);
        assert_eq!(t.r.bytes(), 0);
    }

    #[test]
    fn expiry_and_caps() {
        let mut t = T::new();
        t.first(1, 1, &[1; 10]);
        assert_eq!(t.r.next_deadline(), Some(t.now + Duration::from_secs(2)));
        t.r.expire(t.now + Duration::from_millis(1999), &mut t.drops);
        assert_eq!(t.r.pending(), 1);
        t.r.expire(t.now + Duration::from_secs(2), &mut t.drops);
        assert_eq!(t.reasons(), vec![DropReason::FragmentTimeout]);
        assert_eq!(t.r.bytes(), 0);

        t.drops.clear();
        t.limits = ReassemblyLimits {
            max_pending: 3,
            max_bytes_per_source: 1000,
            max_total_bytes: 1500,
            max_datagram_bytes: 2000,
        };
        for id in 0..5 {
            t.next(1, id, 100, &[0; 100], false);
        }
        // 356 bytes a set (100 + overhead): two fit the 1000-byte source cap.
        assert_eq!(t.r.pending(), 2);
        assert!(t.r.bytes() <= 1000);
        for src in 2..10 {
            t.next(src, 1, 100, &[0; 300], false);
            assert!(t.r.bytes() <= 1500);
            assert!(t.r.pending() <= 3);
        }
        assert!(t
            .reasons()
            .iter()
            .all(|r| *r == DropReason::FragmentEvicted));
        t.next(1, 99, 1990, &[0; 20], false);
        assert_eq!(*t.reasons().last().unwrap(), DropReason::FragmentOversize);
        t.next(1, 98, 0, &[0; 1200], false);
        assert_eq!(*t.reasons().last().unwrap(), DropReason::FragmentEvicted);
    }
}
