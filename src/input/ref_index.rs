//! The employers' positions by ref, in a table whose slot for a ref can be
//! asked for before it is looked up.
//!
//! Every employee row looks its employer up, and the rows name their
//! employers at random: each lookup was a cache miss on a checking thread
//! (an eighth of a cold plan's samples). A std map cannot say where a key
//! would be without looking; this open-addressing table can, so a checking
//! thread starts fetching the slot of a row a few rows ahead
//! ([`RefIndex::prefetch`]) and finds it cached when that row's turn comes.
//! Refs up to 24 bytes live in the slot itself, so a lookup reads no heap
//! copy of the key.

use std::hash::BuildHasher;

use compact_str::CompactString;

use crate::fxhash::FxBuildHasher;

/// `at` of a slot that holds no ref.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Slot {
    key: CompactString,
    at: u32,
}

/// Positions by ref: linear probing over a power-of-two table at most half
/// full.
#[derive(Debug)]
pub(crate) struct RefIndex {
    slots: Vec<Slot>,
    /// `slots.len() - 1`: a hash's low bits pick its first slot.
    mask: usize,
}

impl RefIndex {
    /// The index of `refs`, each at its place in the iteration; a ref
    /// given twice keeps its first place.
    pub(crate) fn new<'r>(refs: impl ExactSizeIterator<Item = &'r str>) -> RefIndex {
        let len = (refs.len() * 2).next_power_of_two().max(8);
        let empty = Slot {
            key: CompactString::default(),
            at: EMPTY,
        };
        let mut index = RefIndex {
            slots: vec![empty; len],
            mask: len - 1,
        };
        for (at, key) in refs.enumerate() {
            let mut i = index.first(key);
            loop {
                let slot = &mut index.slots[i];
                if slot.at == EMPTY {
                    *slot = Slot {
                        key: CompactString::from(key),
                        at: u32::try_from(at).expect("fewer than 4 billion employers"),
                    };
                    break;
                }
                if slot.key == key {
                    break;
                }
                i = (i + 1) & index.mask;
            }
        }
        index
    }

    fn first(&self, key: &str) -> usize {
        // Truncated on 32-bit targets: the low bits are the ones used.
        FxBuildHasher::default().hash_one(key) as usize & self.mask
    }

    /// The position of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<u32> {
        let mut i = self.first(key);
        loop {
            let slot = &self.slots[i];
            if slot.at == EMPTY {
                return None;
            }
            if slot.key == key {
                return Some(slot.at);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Start fetching the slot a lookup of `key` reads first (the one it
    /// finds it in, nearly always); nothing else happens.
    pub(crate) fn prefetch(&self, key: &str) {
        crate::prefetch::prefetch(&self.slots[self.first(key)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ref is found at its place, repeats keep the first, others are
    /// not found: with refs that collide in the table (sequential, long,
    /// empty) and table sizes from the smallest up.
    #[test]
    fn refs_are_found_at_their_places_and_no_others() {
        for n in [0usize, 1, 3, 8, 100, 5000] {
            let mut refs: Vec<String> = (0..n).map(|i| format!("ER{i:06}")).collect();
            if n > 2 {
                refs[1] = "a-ref-longer-than-twenty-four-bytes-kept-on-the-heap".into();
                refs[2] = String::new();
            }
            let index = RefIndex::new(refs.iter().map(String::as_str));
            for (at, r) in refs.iter().enumerate() {
                assert_eq!(index.get(r), Some(at as u32), "{r:?} of {n}");
                index.prefetch(r);
            }
            for missing in ["ER9999999", "er000001", "ER00000", "x"] {
                assert_eq!(index.get(missing), None, "{missing} of {n}");
                index.prefetch(missing);
            }
            assert!(index.slots.len() >= 2 * n);
        }
        let index = RefIndex::new(["B", "A", "B"].into_iter());
        assert_eq!((index.get("A"), index.get("B")), (Some(1), Some(0)));
    }
}
