//! rustc's Fx hash, for the maps keyed by the user's own payroll ids and
//! group names (the duplicate-ref check, the employer index, the planner's
//! indices). Those keys come from the user's own export, so SipHash's flood
//! resistance buys nothing, and SipHash was the largest single cost in the
//! 1M-row profile.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;
pub type FxHashSet<K> = HashSet<K, FxBuildHasher>;

#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    /// Fx alone leaves the low bits of the hash depending only on the low
    /// bytes of each word, and hashbrown picks buckets by the low bits: refs
    /// like `ER000001`..`ER049999` (their digits in the high bytes) would all
    /// share a few buckets. A final avalanche (murmur3's fmix64) spreads
    /// every input bit over the whole hash.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Sequential payroll refs must spread over the low bits (the bucket
    /// index) as well as the high ones.
    #[test]
    fn sequential_refs_spread_over_buckets() {
        let b = FxBuildHasher::default();
        let buckets: FxHashSet<u64> = (0..4096)
            .map(|i| b.hash_one(format!("ER{i:06}").as_str()) & 4095)
            .collect();
        assert!(
            buckets.len() > 2000,
            "only {} of 4096 buckets used",
            buckets.len()
        );
    }
}
