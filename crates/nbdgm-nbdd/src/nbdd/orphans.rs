//! Continuations that arrive before their first fragment (RFC 1001 §17.1.2; RFC 1002
//! §5.3.3): held in [`crate::fragment::Orphans`] and released behind the first.

use super::Nbdd;
use crate::fragment::{FragKey, Held};
use crate::stats::DropReason;
use nbdgm_wire::datagram::MsgType;
use std::net::SocketAddrV4;
use std::time::Instant;

impl Nbdd {
    /// A continuation without its first fragment: held for it, or dropped.
    pub(super) fn hold_orphan(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        key: FragKey,
        (msg_type, last): (MsgType, bool),
        bytes: &[u8],
    ) {
        let mut evicted = Vec::new();
        let bounds = (self.cfg.max_orphan_fragments, self.cfg.max_orphan_bytes);
        let expires = now + self.cfg.orphan_timeout;
        let held = self.orphans.hold(
            key,
            from,
            msg_type,
            bytes,
            last,
            expires,
            bounds,
            &mut evicted,
        );
        for e in evicted {
            self.stats.orphans_evicted += 1;
            self.dropped(e, DropReason::OrphanFragment);
        }
        match held {
            Held::Yes { .. } => self.stats.orphans_held += 1,
            Held::No => self.dropped(from, DropReason::OrphanFragment),
        }
    }

    /// The first fragment for `key` is in: release the continuations held for it.
    pub(super) fn release_orphans(&mut self, now: Instant, key: FragKey) {
        for o in self.orphans.take(&key) {
            self.stats.orphans_released += 1;
            let kind = (o.msg_type, o.last);
            self.handle_continuation(now, o.from, key, kind, &o.bytes, false);
        }
    }
}
