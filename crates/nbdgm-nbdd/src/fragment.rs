//! Re-fragmenting an oversize unfragmented datagram on relay (RFC 1001 §17.1.2;
//! RFC 1002 §5.3.1; DIGEST §2.4, §2.7): the data section (both names, then user data)
//! is split so that every IP datagram fits MAX_DATAGRAM_LENGTH; the first fragment
//! has F = M = 1 and OFFSET 0, later ones F = 0, M = 1 except the last, OFFSET = data
//! section bytes already sent, and DGM_LENGTH the total in every fragment. MSG_TYPE,
//! DGM_ID, SOURCE_IP, SOURCE_PORT and the SNT/reserved FLAGS bits are copied, so only
//! FLAGS.F/M, DGM_LENGTH and PACKET_OFFSET differ from the input header.
//!
//! The same layout as `nbdgm_node::fragment`, reimplemented here to work from the
//! received bytes and keep this crate on `nbdgm-wire` alone.
//!
//! Also [`Orphans`]: continuation fragments that arrive before their first fragment.
//! RFC 1001 §17.1.2 has the NBDD forward later fragments where the first one went, so
//! without the first there is nowhere to send them; rather than drop them (as RFC 1002
//! §5.3.3 lets a receiver do) they are held, bounded in entries and bytes (oldest
//! evicted) and in time, and released in arrival order (the last fragment last) once the first fragment arrives.

use nbdgm_wire::datagram::{DatagramHeader, Flags, MsgType, DATA_HEADER_LEN};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

/// IPv4 header (no options) + UDP header, counted against MAX_DATAGRAM_LENGTH.
pub const IP_UDP_HEADER: usize = 28;
/// Largest data section (DGM_LENGTH and PACKET_OFFSET are 16-bit).
pub const MAX_DATA_SECTION: usize = 65_535;

/// Why a datagram could not be re-fragmented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("not an unfragmented data datagram")]
    NotData,
    #[error("data section of {0} bytes exceeds 65535")]
    TooLarge(usize),
    #[error("the first fragment cannot hold both names")]
    NamesDoNotFit,
}

/// Split `packet`, an unfragmented data datagram (0x10–0x12, F = 1, M = 0) whose
/// names take `names_len` bytes, into fragments of at most `max_datagram_length`
/// bytes of IP datagram. Returns the packet itself when it already fits.
pub fn refragment(
    packet: &[u8],
    names_len: usize,
    max_datagram_length: usize,
) -> Result<Vec<Vec<u8>>, FragmentError> {
    let Ok(header) = DatagramHeader::new_checked(packet) else {
        return Err(FragmentError::NotData);
    };
    let flags = header.flags();
    let Some(section) = header.data_section() else {
        return Err(FragmentError::NotData);
    };
    if !flags.first || flags.more || names_len > section.len() {
        return Err(FragmentError::NotData);
    }
    if section.len() > MAX_DATA_SECTION {
        return Err(FragmentError::TooLarge(section.len()));
    }
    if IP_UDP_HEADER + packet.len() <= max_datagram_length {
        return Ok(vec![packet.to_vec()]);
    }
    let cap = max_datagram_length.saturating_sub(IP_UDP_HEADER + DATA_HEADER_LEN);
    if cap <= names_len {
        return Err(FragmentError::NamesDoNotFit);
    }
    let total = section.len() as u16; // checked above
    let mut out = Vec::with_capacity(section.len() / cap + 1);
    let mut offset = 0usize;
    for chunk in section.chunks(cap) {
        let first = offset == 0;
        let last = offset + chunk.len() == section.len();
        let mut p = Vec::with_capacity(DATA_HEADER_LEN + chunk.len());
        p.extend_from_slice(header.header_bytes());
        p.extend_from_slice(chunk);
        let mut h = DatagramHeader::new_unchecked(&mut p[..]);
        // Keep SNT and reserved bits; set F and M for this fragment.
        h.set_flags(Flags {
            first,
            more: !last,
            ..flags
        });
        h.set_dgm_length(total);
        h.set_packet_offset(offset as u16);
        out.push(p);
        offset += chunk.len();
    }
    Ok(out)
}

/// (SOURCE_IP, DGM_ID) of a fragmented datagram.
pub(crate) type FragKey = (Ipv4Addr, u16);

/// A continuation fragment held until its first fragment arrives.
#[derive(Debug, Clone)]
pub(crate) struct Orphan {
    pub from: SocketAddrV4,
    pub msg_type: MsgType,
    pub bytes: Vec<u8>,
    pub last: bool,
    expires: Instant,
    seq: u64,
}

/// What [`Orphans::hold`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Held; this many older fragments were evicted (from these sources) to make room.
    Yes { evicted: usize },
    /// Not held: holding is off or the fragment alone exceeds the byte bound.
    No,
}

/// Held continuations by fragment set, bounded in entries and bytes.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    by_key: HashMap<FragKey, Vec<Orphan>>,
    entries: usize,
    bytes: usize,
    seq: u64,
}

impl Orphans {
    pub fn entries(&self) -> usize {
        self.entries
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_key.values().flatten().map(|o| o.expires).min()
    }

    /// Hold a continuation until `expires`, evicting the oldest held ones so that at
    /// most `max_entries` fragments and `max_bytes` bytes are held. Evicted fragments'
    /// UDP sources are pushed to `evicted`.
    #[allow(clippy::too_many_arguments)]
    pub fn hold(
        &mut self,
        key: FragKey,
        from: SocketAddrV4,
        msg_type: MsgType,
        bytes: &[u8],
        last: bool,
        expires: Instant,
        (max_entries, max_bytes): (usize, usize),
        evicted: &mut Vec<SocketAddrV4>,
    ) -> Held {
        if max_entries == 0 || bytes.len() > max_bytes {
            return Held::No;
        }
        let before = evicted.len();
        while self.entries >= max_entries || self.bytes + bytes.len() > max_bytes {
            match self.evict_oldest() {
                Some(o) => evicted.push(o.from),
                None => break,
            }
        }
        self.seq += 1;
        self.entries += 1;
        self.bytes += bytes.len();
        self.by_key.entry(key).or_default().push(Orphan {
            from,
            msg_type,
            bytes: bytes.to_vec(),
            last,
            expires,
            seq: self.seq,
        });
        Held::Yes {
            evicted: evicted.len() - before,
        }
    }

    fn evict_oldest(&mut self) -> Option<Orphan> {
        let (key, i) = self
            .by_key
            .iter()
            .flat_map(|(k, v)| v.iter().enumerate().map(move |(i, o)| (o.seq, *k, i)))
            .min()
            .map(|(_, k, i)| (k, i))?;
        let list = self.by_key.get_mut(&key)?;
        let o = list.remove(i);
        if list.is_empty() {
            self.by_key.remove(&key);
        }
        self.entries -= 1;
        self.bytes -= o.bytes.len();
        Some(o)
    }

    /// The fragments held for `key`, in arrival order except that the last fragment
    /// (M = 0, which ends the set on relay) comes after the others.
    pub fn take(&mut self, key: &FragKey) -> Vec<Orphan> {
        let mut list = self.by_key.remove(key).unwrap_or_default();
        list.sort_by_key(|o| o.last);
        self.entries -= list.len();
        self.bytes -= list.iter().map(|o| o.bytes.len()).sum::<usize>();
        list
    }

    /// Remove fragments whose time is up; their UDP sources are returned.
    pub fn expire(&mut self, now: Instant) -> Vec<SocketAddrV4> {
        let mut gone = Vec::new();
        let (mut entries, mut bytes) = (0, 0);
        self.by_key.retain(|_, list| {
            list.retain(|o| {
                let keep = o.expires > now;
                if keep {
                    entries += 1;
                    bytes += o.bytes.len();
                } else {
                    gone.push(o.from);
                }
                keep
            });
            !list.is_empty()
        });
        (self.entries, self.bytes) = (entries, bytes);
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbdgm_wire::datagram::{Datagram, NodeType};
    use nbdgm_wire::Name;
    use std::net::Ipv4Addr;

    fn packet(data_len: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..data_len).map(|i| (i % 251) as u8).collect();
        Datagram::data(
            MsgType::DirectGroup,
            NodeType::M,
            0x0102,
            (Ipv4Addr::new(10, 0, 0, 9), 138),
            Name::new("FRED", 0).unwrap(),
            Name::new("GROUP", 0x1e).unwrap(),
            data,
        )
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn fits_unchanged() {
        let p = packet(466);
        assert_eq!(refragment(&p, 68, 576).unwrap(), vec![p]);
    }

    #[test]
    fn splits_like_rfc1001() {
        let p = packet(3000);
        let f = refragment(&p, 68, 576).unwrap();
        assert_eq!(f.len(), 6);
        let mut section = Vec::new();
        for (i, x) in f.iter().enumerate() {
            assert!(x.len() + IP_UDP_HEADER <= 576);
            assert_eq!(x[0], 0x11);
            assert_eq!(x[1] & 0x0C, 0x08, "SNT kept");
            assert_eq!(x[1] & 0x02 != 0, i == 0);
            assert_eq!(x[1] & 0x01 != 0, i + 1 != f.len());
            assert_eq!(&x[2..10], &p[2..10]);
            assert_eq!(u16::from_be_bytes([x[10], x[11]]), 3068);
            assert_eq!(
                usize::from(u16::from_be_bytes([x[12], x[13]])),
                section.len()
            );
            section.extend_from_slice(&x[14..]);
        }
        assert_eq!(&section[..], &p[14..]);
    }

    #[test]
    fn refusals() {
        assert_eq!(refragment(&[0x11; 5], 0, 576), Err(FragmentError::NotData));
        let mut p = packet(600);
        assert_eq!(refragment(&p, 68, 100), Err(FragmentError::NamesDoNotFit));
        p[1] |= 0x01; // already a fragment
        assert_eq!(refragment(&p, 68, 576), Err(FragmentError::NotData));
    }

    #[test]
    fn orphans_are_bounded_and_released_in_order() {
        let now = Instant::now();
        let at = |s| now + std::time::Duration::from_secs(s);
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 138);
        let key = |id| (Ipv4Addr::new(10, 0, 0, 9), id);
        let mut o = Orphans::default();
        let mut ev = Vec::new();
        let t = MsgType::DirectGroup;
        assert_eq!(
            o.hold(key(1), from, t, &[1; 10], false, at(2), (0, 100), &mut ev),
            Held::No
        );
        assert_eq!(
            o.hold(key(1), from, t, &[1; 101], false, at(2), (4, 100), &mut ev),
            Held::No
        );
        for (id, b) in [(1, 1u8), (1, 2), (2, 3)] {
            let h = o.hold(key(id), from, t, &[b; 30], false, at(2), (4, 100), &mut ev);
            assert_eq!(h, Held::Yes { evicted: 0 });
        }
        assert_eq!((o.entries(), o.bytes()), (3, 90));
        // 30 more bytes exceed 100: the oldest (id 1, first piece) goes.
        let h = o.hold(key(3), from, t, &[4; 30], true, at(5), (4, 100), &mut ev);
        assert_eq!(h, Held::Yes { evicted: 1 });
        assert_eq!((o.entries(), o.bytes()), (3, 90));
        let got = o.take(&key(1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bytes, vec![2; 30]);
        assert_eq!(o.next_deadline(), Some(at(2)));
        assert_eq!(o.expire(at(2)), vec![from]);
        assert_eq!((o.entries(), o.bytes()), (1, 30));
        assert!(o.take(&key(3))[0].last);
        assert_eq!((o.entries(), o.bytes()), (0, 0));
        assert!(o.next_deadline().is_none());
    }
}
