//! Unpredictable transaction ids (issue 12 item 9; RFC 1002 §4.2.1.1 NAME_TRN_ID,
//! §4.4.1 DGM_ID). An off-path host that can guess the NAME_TRN_ID of our next query can
//! forge its answer and poison the name cache, so ids come from a ChaCha generator
//! (`rand::rngs::StdRng`) seeded from the operating system, or from a fixed seed where
//! runs must be reproducible (simulations). Ids in use are never handed out twice.

use rand::rngs::{StdRng, SysRng};
use rand::{Rng, SeedableRng};

/// Random draws before [`IdSource::fresh`] falls back to a scan.
const DRAWS: usize = 64;

/// A source of 16-bit ids.
#[derive(Debug)]
pub struct IdSource {
    rng: StdRng,
}

impl IdSource {
    /// `Some(seed)`: reproducible ids; `None`: seeded from the OS random source.
    pub fn new(seed: Option<u64>) -> IdSource {
        match seed {
            Some(s) => IdSource {
                rng: StdRng::seed_from_u64(s),
            },
            None => IdSource::from_os(),
        }
    }

    /// Seeded with 256 bits from the OS (getrandom). If the OS source fails (it does
    /// not on Linux after boot), the seed comes from std's randomly keyed SipHash.
    pub fn from_os() -> IdSource {
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
        IdSource { rng }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seeded_ids_are_reproducible_and_os_ids_differ() {
        let a: Vec<u16> = {
            let mut s = IdSource::new(Some(7));
            (0..8).map(|_| s.draw()).collect()
        };
        let b: Vec<u16> = {
            let mut s = IdSource::new(Some(7));
            (0..8).map(|_| s.draw()).collect()
        };
        assert_eq!(a, b);
        let c: Vec<u16> = {
            let mut s = IdSource::new(None);
            (0..8).map(|_| s.draw()).collect()
        };
        let d: Vec<u16> = {
            let mut s = IdSource::new(None);
            (0..8).map(|_| s.draw()).collect()
        };
        assert_ne!(c, d, "two OS-seeded sources give different ids");
    }

    #[test]
    fn ids_are_not_sequential_and_spread() {
        let mut s = IdSource::new(None);
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
    fn fresh_skips_ids_in_use() {
        let mut s = IdSource::new(Some(1));
        let used: HashSet<u16> = (1..=u16::MAX).filter(|&v| v != 4242).collect();
        assert_eq!(s.fresh(|v| used.contains(&v)), 4242);
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let v = s.fresh(|v| seen.contains(&v));
            assert!(seen.insert(v), "{v} handed out twice");
        }
    }
}
