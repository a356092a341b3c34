//! Unpredictable transaction ids (RFC 1002 §4.2.1.1 NAME_TRN_ID, §4.4.1 DGM_ID), drawn
//! from the workspace's one random source, [`nbdgm_base::random`]: OS-seeded ChaCha,
//! or seeded from [`crate::NodeConfig::rng_seed`] where runs must be reproducible.
//! Ids in use are never handed out twice ([`IdSource::fresh`]).

/// A source of 16-bit ids.
pub type IdSource = nbdgm_base::Random;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn node_ids_are_seeded_through_the_config_seed() {
        let a: Vec<u16> = {
            let mut s = IdSource::new(Some(7));
            (0..8).map(|_| s.draw()).collect()
        };
        let b: Vec<u16> = {
            let mut s = IdSource::new(Some(7));
            (0..8).map(|_| s.draw()).collect()
        };
        assert_eq!(a, b);
        let mut s = IdSource::new(None);
        let c: Vec<u16> = (0..8).map(|_| s.draw()).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn fresh_skips_ids_in_use() {
        let mut s = IdSource::new(Some(1));
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let v = s.fresh(|v| seen.contains(&v));
            assert!(v != 0 && seen.insert(v), "{v} handed out twice");
        }
    }
}
