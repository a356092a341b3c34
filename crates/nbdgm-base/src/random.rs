//! The one random source of the workspace: a ChaCha generator (`rand::rngs::StdRng`)
//! seeded from the operating system, or from a fixed seed where runs must be
//! reproducible (simulations, tests). Engines take an `Option<u64>` seed in their
//! configuration and build a [`Random`] from it; tools draw from [`Random::from_os`].
//!
//! Transaction ids must be unpredictable (RFC 1002 §4.2.1.1 NAME_TRN_ID, §4.4.1
//! DGM_ID): an off-path host that can guess the NAME_TRN_ID of our next query can forge
//! its answer and poison the name cache. [`Random::fresh`] never hands out an id
//! that is still in use.

use rand::rngs::{StdRng, SysRng};
use rand::{Rng, SeedableRng};

/// Random draws before [`Random::fresh`] falls back to a scan.
const DRAWS: usize = 64;

/// A seeded or OS-seeded ChaCha generator.
#[derive(Debug)]
pub struct Random {
    rng: StdRng,
}

impl Random {
    /// `Some(seed)`: a reproducible stream; `None`: seeded from the OS random source.
    pub fn new(seed: Option<u64>) -> Random {
        match seed {
            Some(s) => Random::seeded(s),
            None => Random::from_os(),
        }
    }

    /// A reproducible stream.
    pub fn seeded(seed: u64) -> Random {
        Random {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Seeded with 256 bits from the OS (getrandom). If the OS source fails (it does
    /// not on Linux after boot), the seed comes from std's randomly keyed SipHash over
    /// the clock and the process id.
    pub fn from_os() -> Random {
        let rng = StdRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.write_u32(std::process::id());
            StdRng::seed_from_u64(h.finish())
        });
        Random { rng }
    }

    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        self.rng.fill_bytes(buf);
    }

    /// A seed for another generator (an engine's configuration, the browser's timers)
    /// drawn from this one.
    pub fn seed(&mut self) -> u64 {
        self.next_u64()
    }

    /// Any 16-bit id but 0.
    pub fn draw(&mut self) -> u16 {
        loop {
            let v = (self.rng.next_u32() >> 16) as u16;
            if v != 0 {
                return v;
            }
        }
    }

    /// A random id for which `in_use` is false (0 is never used).
    pub fn fresh(&mut self, in_use: impl Fn(u16) -> bool) -> u16 {
        for _ in 0..DRAWS {
            let v = self.draw();
            if !in_use(v) {
                return v;
            }
        }
        // Nearly every id is in use: scan from a random start.
        let start = self.draw();
        (0..=u16::MAX)
            .map(|i| start.wrapping_add(i))
            .find(|&v| v != 0 && !in_use(v))
            .unwrap_or(start)
    }
}

/// A seed from the OS random source, for configurations that take one.
pub fn os_seed() -> u64 {
    Random::from_os().next_u64()
}

/// 32 bits from the OS random source (one-shot tools: transaction ids, mailslot tags).
pub fn os_u32() -> u32 {
    Random::from_os().next_u32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ids(mut r: Random) -> Vec<u16> {
        (0..8).map(|_| r.draw()).collect()
    }

    #[test]
    fn seeded_streams_are_reproducible_and_os_streams_differ() {
        assert_eq!(ids(Random::new(Some(7))), ids(Random::seeded(7)));
        assert_ne!(ids(Random::seeded(7)), ids(Random::seeded(8)));
        assert_ne!(
            ids(Random::new(None)),
            ids(Random::from_os()),
            "two OS-seeded sources give different ids"
        );
        assert_ne!(os_seed(), os_seed());
    }

    #[test]
    fn ids_are_not_sequential_and_spread() {
        let mut s = Random::new(None);
        let ids: Vec<u16> = (0..256).map(|_| s.draw()).collect();
        let diffs: HashSet<u16> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(diffs.len() > 200, "differences vary: {}", diffs.len());
        // Each 4096-wide slice of the space gets some (expected 16 each).
        let mut slices = [0u32; 16];
        for &i in &ids {
            slices[usize::from(i >> 12)] += 1;
        }
        assert!(slices.iter().all(|&n| n > 0), "{slices:?}");
        assert!(!ids.contains(&0));
    }

    #[test]
    fn freshs_skip_ids_in_use() {
        let mut s = Random::seeded(1);
        let used: HashSet<u16> = (1..=u16::MAX).filter(|&v| v != 4242).collect();
        assert_eq!(s.fresh(|v| used.contains(&v)), 4242);
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let v = s.fresh(|v| seen.contains(&v));
            assert!(seen.insert(v), "{v} handed out twice");
        }
    }

    #[test]
    fn fill_covers_the_buffer() {
        let mut b = [0u8; 64];
        Random::seeded(3).fill(&mut b);
        assert!(b.iter().filter(|&&x| x == 0).count() < 8);
    }
}
