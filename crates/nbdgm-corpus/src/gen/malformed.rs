//! Deliberately malformed packets (kinds `malformed.*`).

use super::Gen;
use crate::{Generated, Mix};

impl Gen {
    // -----------------------------------------------------------------------------------------
    // Malformed packets

    /// A well-formed packet to damage: a browser datagram or an NBNS packet.
    pub(super) fn victim(&mut self) -> Generated {
        let saved = self.mix;
        self.mix = Mix::Realistic; // plain shapes, so the damage is the only oddity
        let mut g = if self.rng.pct(70) {
            match self.rng.below(3) {
                0 => self.host_announcement(),
                1 => self.request_election(),
                _ => self.get_backup_list_response(),
            }
        } else {
            self.nbns_positive_query_response()
        };
        self.mix = saved;
        g.remove(0)
    }

    pub(super) fn malformed_truncated(&mut self) -> Vec<Generated> {
        let mut g = self.victim();
        let keep = loop {
            let keep = self.rng.range(1, g.payload.len() as u64 - 1) as usize;
            // 82..=85 bytes of a datagram leave 0..3 bytes of user data: not an SMB
            // header at all, so not malformed.
            if g.dst.port() != 138 || !(82..86).contains(&keep) {
                break keep;
            }
        };
        g.payload.truncate(keep);
        g.kind = "malformed.truncated";
        vec![g]
    }

    pub(super) fn dgm_victim(&mut self) -> Generated {
        loop {
            let g = self.victim();
            if g.dst.port() == 138 {
                return g;
            }
        }
    }

    /// A first-level character outside `A`..`P` in a datagram name (RFC 1001 §14.1).
    pub(super) fn malformed_bad_first_level(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        // Source name at 14, destination name at 48 (no scope in victims).
        let base = if self.rng.pct(50) { 14 } else { 48 };
        let at = base + 1 + self.rng.below(32);
        g.payload[at] = *self.rng.pick(&[b'Z', b'a', b'0', b'Q', b'@', b' ', 0x00]);
        g.kind = "malformed.bad_first_level";
        vec![g]
    }

    /// A compression pointer as a datagram name (forbidden by RFC 1002 §4.1).
    pub(super) fn malformed_pointer_name(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        // Replace the destination name (34 bytes at 48) by a pointer to the source name.
        let mut p = g.payload[..48].to_vec();
        p.extend_from_slice(&[0xC0, 0x0E]);
        p.extend_from_slice(&g.payload[82..]);
        let len = (p.len() - 14) as u16;
        p[10..12].copy_from_slice(&len.to_be_bytes());
        g.payload = p;
        g.kind = "malformed.pointer_name";
        vec![g]
    }

    /// A MSG_TYPE outside 0x10..=0x16.
    pub(super) fn malformed_bad_msg_type(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        g.payload[0] = *self
            .rng
            .pick(&[0x00, 0x0F, 0x17, 0x18, 0x20, 0x80, 0xDE, 0xFF]);
        if self.rng.pct(30) {
            let n = self.rng.range(1, 20) as usize;
            g.payload = std::iter::once(g.payload[0])
                .chain(self.rng.bytes(n))
                .collect();
        }
        g.kind = "malformed.bad_msg_type";
        vec![g]
    }

    /// A first label that is not 32 bytes, or a reserved label type (RFC 1002 §4.1).
    pub(super) fn malformed_bad_label(&mut self) -> Vec<Generated> {
        let mut g = self.dgm_victim();
        let at = if self.rng.pct(50) { 14 } else { 48 };
        g.payload[at] = *self.rng.pick(&[0x10, 0x21, 0x1F, 0x40, 0x80, 0x00]);
        g.kind = "malformed.bad_label";
        vec![g]
    }
}
