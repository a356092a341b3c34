//! Random numbers: SplitMix64 (Steele, Lea, Flood 2014), enough for test data.

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + ((u128::from(self.next_u64()) * u128::from(hi - lo + 1)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    pub(crate) fn pct(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub(crate) fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    pub(crate) fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }

    /// `n` printable ASCII characters (0x20..=0x7E).
    pub(crate) fn printable(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| (0x20 + self.below(0x5F) as u8) as char)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary
