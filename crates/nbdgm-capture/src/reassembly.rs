//! IP fragment reassembly (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for IPv6).
//!
//! Fragments are keyed by (source, destination, protocol, identification) for IPv4
//! and (source, destination, identification) for IPv6. Fragments may arrive in any
//! order and may overlap: bytes already received win over later copies of the same
//! range ("first" policy), so overlapping fragments can never grow or rewrite data
//! that was already placed. A fragment that contradicts the datagram's known end (a
//! second, different last fragment, or data past the end) discards the datagram.
//!
//! Memory is bounded: at most [`ReassemblyLimits::max_pending`] datagrams and
//! [`ReassemblyLimits::max_bytes`] buffered bytes; a datagram is discarded when its
//! first fragment is older than [`ReassemblyLimits::timeout`] in capture time.
//! Every discarded datagram is counted in [`ReassemblyDrops`].

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Timestamp;

/// The largest reassembled payload accepted (the IP length fields are 16 bits).
pub const MAX_REASSEMBLED: u32 = 65_535;

/// Bounds on IP fragment reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Whether fragments are reassembled at all. When `false`, fragments are counted
    /// in [`Stats::ip_fragments`](crate::Stats::ip_fragments) and otherwise ignored.
    pub enabled: bool,
    /// Most datagrams being reassembled at once; the oldest is discarded to make room.
    pub max_pending: usize,
    /// Most bytes buffered for incomplete datagrams; the oldest are discarded beyond it.
    pub max_bytes: usize,
    /// Longest time, in capture time, from a datagram's first fragment to its last.
    pub timeout: Duration,
}

impl Default for ReassemblyLimits {
    /// Enabled, 4096 datagrams, 32 MiB, 30 seconds (the Linux `ipfrag_time`).
    fn default() -> Self {
        ReassemblyLimits {
            enabled: true,
            max_pending: 4096,
            max_bytes: 32 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Datagrams discarded during reassembly, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyDrops {
    /// Not completed within [`ReassemblyLimits::timeout`].
    pub timeout: u64,
    /// Evicted because [`ReassemblyLimits::max_pending`] datagrams were pending.
    pub pending_limit: u64,
    /// Evicted because [`ReassemblyLimits::max_bytes`] were buffered.
    pub byte_limit: u64,
    /// A fragment reached past 65 535 bytes.
    pub oversize: u64,
    /// Fragments disagreed about where the datagram ends.
    pub inconsistent: u64,
    /// Still incomplete when the capture ended (or hit a fatal error).
    pub incomplete_at_end: u64,
}

impl ReassemblyDrops {
    /// All discarded datagrams.
    pub fn total(&self) -> u64 {
        self.timeout
            + self.pending_limit
            + self.byte_limit
            + self.oversize
            + self.inconsistent
            + self.incomplete_at_end
    }
}

/// Identifies the datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FragKey {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        id: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        id: u32,
    },
}

#[derive(Debug)]
struct Pending {
    first_seen: Timestamp,
    /// Upper-layer protocol; for IPv6 known once the offset-0 fragment arrived.
    proto: Option<u8>,
    data: Vec<u8>,
    /// Received byte ranges: sorted, disjoint and not adjacent.
    ranges: Vec<(u32, u32)>,
    /// End of the datagram, known once the last fragment (MF=0) arrived.
    total: Option<u32>,
}

/// What became of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddResult {
    /// Stored; the datagram is still incomplete.
    Held,
    /// The datagram was discarded (counted in the drops).
    Dropped,
    /// The datagram is complete: its payload is in [`Reassembler::output`].
    Complete { proto: u8 },
}

#[derive(Debug)]
pub(crate) struct Reassembler {
    limits: ReassemblyLimits,
    pending: HashMap<FragKey, Pending>,
    bytes: usize,
    /// Earliest `first_seen` among pending datagrams.
    oldest: Option<Timestamp>,
    pub drops: ReassemblyDrops,
    /// Fragments that overlapped data already received.
    pub overlaps: u64,
    out: Vec<u8>,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        Reassembler {
            limits,
            pending: HashMap::new(),
            bytes: 0,
            oldest: None,
            drops: ReassemblyDrops::default(),
            overlaps: 0,
            out: Vec::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.limits.enabled
    }

    /// The payload of the datagram last completed.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Number of datagrams pending.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Buffered bytes.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds one fragment: `offset` in bytes, `more` the MF flag, `proto` the
    /// upper-layer protocol if this fragment tells it (IPv4: always; IPv6: the
    /// offset-0 fragment).
    pub fn add(
        &mut self,
        key: FragKey,
        proto: Option<u8>,
        offset: u32,
        more: bool,
        payload: &[u8],
        now: Timestamp,
    ) -> AddResult {
        self.expire(now);
        let end = u64::from(offset) + payload.len() as u64;
        if end > u64::from(MAX_REASSEMBLED) {
            self.discard(&key);
            self.drops.oversize += 1;
            return AddResult::Dropped;
        }
        let end = end as u32;
        if !self.pending.contains_key(&key) {
            if self.limits.max_pending == 0 {
                self.drops.pending_limit += 1;
                return AddResult::Dropped;
            }
            while self.pending.len() >= self.limits.max_pending {
                if !self.evict_oldest(None) {
                    break;
                }
                self.drops.pending_limit += 1;
            }
            self.pending.insert(
                key,
                Pending {
                    first_seen: now,
                    proto: None,
                    data: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                },
            );
            self.oldest = Some(match self.oldest {
                Some(t) if t <= now => t,
                _ => now,
            });
        }
        let Some(p) = self.pending.get_mut(&key) else {
            return AddResult::Dropped;
        };
        if offset == 0 || matches!(key, FragKey::V4 { .. }) {
            if let Some(proto) = proto {
                p.proto = Some(proto);
            }
        }
        // Consistency of the datagram's end.
        let consistent = if more {
            !matches!(p.total, Some(t) if end > t)
        } else {
            !matches!(p.total, Some(t) if t != end)
                && !matches!(p.ranges.last(), Some(r) if r.1 > end)
        };
        if !consistent {
            self.discard(&key);
            self.drops.inconsistent += 1;
            return AddResult::Dropped;
        }
        if !more {
            p.total = Some(end);
        }
        let need = end as usize;
        if p.data.len() < need {
            self.bytes += need - p.data.len();
            p.data.resize(need, 0);
        }
        if insert_range(&mut p.ranges, &mut p.data, offset, payload) {
            self.overlaps += 1;
        }
        let complete = match (p.total, p.proto) {
            (Some(t), Some(proto)) if t > 0 && p.ranges.as_slice() == [(0, t)] => Some(proto),
            _ => None,
        };
        if let Some(proto) = complete {
            if let Some(mut p) = self.pending.remove(&key) {
                self.bytes = self.bytes.saturating_sub(p.data.len());
                std::mem::swap(&mut self.out, &mut p.data);
                return AddResult::Complete { proto };
            }
        }
        // Byte limit: evict the oldest other datagrams, then this one if need be.
        while self.bytes > self.limits.max_bytes {
            if self.evict_oldest(Some(&key)) {
                self.drops.byte_limit += 1;
            } else {
                self.discard(&key);
                self.drops.byte_limit += 1;
                return AddResult::Dropped;
            }
        }
        AddResult::Held
    }

    /// Discards everything pending (end of capture), counting it.
    pub fn finish(&mut self) {
        self.drops.incomplete_at_end += self.pending.len() as u64;
        self.pending.clear();
        self.bytes = 0;
        self.oldest = None;
    }

    fn discard(&mut self, key: &FragKey) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes = self.bytes.saturating_sub(p.data.len());
        }
    }

    /// Removes the pending datagram with the oldest first fragment, other than
    /// `keep`. Returns false if there is none.
    fn evict_oldest(&mut self, keep: Option<&FragKey>) -> bool {
        let victim = self
            .pending
            .iter()
            .filter(|(k, _)| Some(*k) != keep)
            .min_by_key(|(_, p)| p.first_seen)
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                self.discard(&k);
                true
            }
            None => false,
        }
    }

    fn expire(&mut self, now: Timestamp) {
        let Some(oldest) = self.oldest else {
            return;
        };
        let timeout = self.limits.timeout.as_nanos() as i128;
        if now.nanos_since(&oldest) <= timeout {
            return;
        }
        let mut expired = 0u64;
        let mut freed = 0usize;
        let mut new_oldest: Option<Timestamp> = None;
        self.pending.retain(|_, p| {
            if now.nanos_since(&p.first_seen) > timeout {
                expired += 1;
                freed += p.data.len();
                false
            } else {
                new_oldest = Some(match new_oldest {
                    Some(t) if t <= p.first_seen => t,
                    _ => p.first_seen,
                });
                true
            }
        });
        self.drops.timeout += expired;
        self.bytes = self.bytes.saturating_sub(freed);
        self.oldest = new_oldest;
    }
}

/// Copies the parts of `payload` (placed at `offset`) that no earlier fragment
/// covered into `data`, and records the range. Returns whether it overlapped.
/// `data` must be at least `offset + payload.len()` long.
fn insert_range(
    ranges: &mut Vec<(u32, u32)>,
    data: &mut [u8],
    offset: u32,
    payload: &[u8],
) -> bool {
    let start = offset;
    let end = offset + payload.len() as u32;
    if start == end {
        return false;
    }
    let mut copy = |from: u32, to: u32| {
        let (a, b) = (from as usize, to as usize);
        let (pa, pb) = (a - start as usize, b - start as usize);
        if let (Some(dst), Some(src)) = (data.get_mut(a..b), payload.get(pa..pb)) {
            dst.copy_from_slice(src);
        }
    };
    let mut cur = start;
    let mut overlapped = false;
    for &(a, b) in ranges.iter() {
        if b <= cur {
            continue;
        }
        if a >= end {
            break;
        }
        if a > cur {
            copy(cur, a);
        }
        overlapped = true;
        cur = cur.max(b);
        if cur >= end {
            break;
        }
    }
    if cur < end {
        copy(cur, end);
    }
    // Merge [start, end) with the overlapping or adjacent ranges.
    let (mut s, mut e) = (start, end);
    ranges.retain(|&(a, b)| {
        if b < s || a > e {
            true
        } else {
            s = s.min(a);
            e = e.max(b);
            false
        }
    });
    let at = ranges.partition_point(|&(a, _)| a < s);
    ranges.insert(at, (s, e));
    overlapped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> FragKey {
        FragKey::V4 {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            proto: 17,
            id,
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::new(secs, 0)
    }

    #[test]
    fn in_order() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(
            r.add(key(1), Some(17), 0, true, &[1; 8], t(0)),
            AddResult::Held
        );
        assert_eq!(
            r.add(key(1), Some(17), 8, false, &[2; 3], t(0)),
            AddResult::Complete { proto: 17 }
        );
        assert_eq!(r.output(), &[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn out_of_order_with_overlap_first_wins() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(
            r.add(key(1), Some(17), 16, false, &[3; 4], t(0)),
            AddResult::Held
        );
        assert_eq!(
            r.add(key(1), Some(17), 8, true, &[2; 12], t(0)),
            AddResult::Held
        );
        assert_eq!(r.overlaps, 1);
        assert_eq!(
            r.add(key(1), Some(17), 0, true, &[1; 16], t(0)),
            AddResult::Complete { proto: 17 }
        );
        assert_eq!(r.overlaps, 2);
        let mut want = vec![1u8; 8];
        want.extend([2; 8]);
        want.extend([3; 4]);
        assert_eq!(r.output(), want.as_slice());
    }

    #[test]
    fn inconsistent_end() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        r.add(key(1), Some(17), 8, false, &[0; 8], t(0));
        assert_eq!(
            r.add(key(1), Some(17), 16, true, &[0; 8], t(0)),
            AddResult::Dropped
        );
        assert_eq!(r.drops.inconsistent, 1);
        r.add(key(2), Some(17), 8, false, &[0; 8], t(0));
        assert_eq!(
            r.add(key(2), Some(17), 0, false, &[0; 8], t(0)),
            AddResult::Dropped
        );
        assert_eq!(r.drops.inconsistent, 2);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn oversize() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(
            r.add(key(1), Some(17), 65_528, false, &[0; 16], t(0)),
            AddResult::Dropped
        );
        assert_eq!(r.drops.oversize, 1);
    }

    #[test]
    fn caps() {
        let limits = ReassemblyLimits {
            enabled: true,
            max_pending: 2,
            max_bytes: 100,
            timeout: Duration::from_secs(5),
        };
        let mut r = Reassembler::new(limits);
        r.add(key(1), Some(17), 0, true, &[0; 8], t(0));
        r.add(key(2), Some(17), 0, true, &[0; 8], t(1));
        r.add(key(3), Some(17), 0, true, &[0; 8], t(2));
        assert_eq!(r.drops.pending_limit, 1);
        assert_eq!(r.pending(), 2);
        // Key 1 was evicted: its last fragment alone does not complete it.
        assert_eq!(
            r.add(key(1), Some(17), 8, false, &[0; 8], t(2)),
            AddResult::Held
        );
        assert_eq!(r.drops.pending_limit, 2);
        // Bytes: one big fragment pushes the others out.
        assert_eq!(
            r.add(key(9), Some(17), 0, true, &[0; 96], t(3)),
            AddResult::Held
        );
        assert!(r.drops.byte_limit >= 1);
        assert!(r.buffered_bytes() <= 100);
        // A fragment bigger than the byte cap is dropped itself.
        assert_eq!(
            r.add(key(10), Some(17), 0, true, &[0; 200], t(3)),
            AddResult::Dropped
        );
        r.add(key(12), Some(17), 0, true, &[0; 8], t(3));
        // Timeout: everything from t=3 is older than 5 s at t=9.
        r.add(key(11), Some(17), 0, true, &[0; 8], t(9));
        assert!(r.drops.timeout >= 1);
        assert_eq!(r.pending(), 1);
        r.finish();
        assert_eq!(r.drops.incomplete_at_end, 1);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn ipv6_proto_from_first_fragment() {
        let k = FragKey::V6 {
            src: [1; 16],
            dst: [2; 16],
            id: 7,
        };
        let mut r = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(r.add(k, Some(6), 8, false, &[2; 4], t(0)), AddResult::Held);
        assert_eq!(
            r.add(k, Some(17), 0, true, &[1; 8], t(0)),
            AddResult::Complete { proto: 17 }
        );
    }

    #[test]
    fn ranges_merge() {
        let mut ranges = Vec::new();
        let mut data = vec![0u8; 64];
        assert!(!insert_range(&mut ranges, &mut data, 0, &[1; 8]));
        assert!(!insert_range(&mut ranges, &mut data, 16, &[3; 8]));
        assert_eq!(ranges, vec![(0, 8), (16, 24)]);
        assert!(!insert_range(&mut ranges, &mut data, 8, &[2; 8]));
        assert_eq!(ranges, vec![(0, 24)]);
        assert!(insert_range(&mut ranges, &mut data, 4, &[9; 40]));
        assert_eq!(ranges, vec![(0, 44)]);
        assert_eq!(&data[..4], &[1; 4]);
        assert_eq!(&data[4..8], &[1; 4]);
        assert_eq!(&data[24..44], &[9; 20]);
        assert!(!insert_range(&mut ranges, &mut data, 50, &[]));
    }
}
