//! Which row first named each employee ref: the duplicate check.
//!
//! The reading thread notes each ref as it reads the row (the bytes are
//! in its cache then), before the row is checked on another thread; the
//! file-order pass later marks which first rows went through. A synced
//! employee's ref is noted by its position in the state; any other ref by
//! its text, kept in one buffer rather than a string each. While those refs
//! come in increasing order (an export sorted by ref, as payroll systems
//! and the state keep them), a ref after the last one is new and needs no
//! index; the first one out of order indexes them all by a hash of their
//! text, and the hash finds every later one.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The first row with a ref: its line, and whether it went to the sink.
/// Packed in one word (line * 2 + streamed): a million of them are a large
/// part of a plan's memory, and a flag beside a u64 doubled it.
#[derive(Clone, Copy)]
pub(super) struct Seen(u64);

impl Seen {
    /// No row yet.
    const NONE: Seen = Seen(0);

    fn new(line: u64, streamed: bool) -> Seen {
        Seen(line << 1 | u64::from(streamed))
    }
    pub(super) fn line(self) -> u64 {
        self.0 >> 1
    }
    pub(super) fn streamed(self) -> bool {
        self.0 & 1 == 1
    }
}

/// Where a ref's first row is noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// The synced employee at this position.
    Synced(u32),
    /// The other ref whose entry starts here in `FirstRows::text`.
    Other(usize),
}

/// What a row's ref was when the row was read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Occurrence {
    /// The row has no valid ref, or its fields are not in their columns:
    /// it takes no part in the duplicate check.
    Unkeyed,
    /// The first row with its ref.
    First(Slot),
    /// A ref an earlier row already had (the text, for the messages).
    Again(Slot, Box<str>),
}

/// The first rows of the refs of one file.
pub(super) struct FirstRows {
    /// By position in the state.
    synced: Vec<Seen>,
    /// A 32-bit hash of a ref's text, to where its entry starts in `text`
    /// (while that is under 4 GiB).
    by_hash: HashMap<u32, u32, BuildHasherDefault<Spread>>,
    /// Refs whose hash an earlier, different ref already took (or noted
    /// past 4 GiB of entries), to where their entries start.
    others: HashMap<Box<[u8]>, usize>,
    /// Whether `by_hash` and `others` hold every entry. Until a ref comes
    /// out of order they hold none: probing a million-entry table at
    /// random was a third of the reading thread's time on a cold plan.
    indexed: bool,
    /// Where the last entry starts (while not `indexed`, the greatest).
    last: usize,
    /// About how many other refs the file has, to size the index once.
    expected: usize,
    /// The other refs, one entry each: the first row (8 bytes), the ref's
    /// length (one byte: a valid ref is at most 200 bytes), its text. One
    /// buffer, not a string and a map entry each: a million refs take 19
    /// bytes each here, and their first rows are updated in file order.
    text: Vec<u8>,
}

impl FirstRows {
    /// For a state of `synced` employees and about `others` other refs.
    pub(super) fn new(synced: usize, others: usize) -> FirstRows {
        FirstRows {
            synced: vec![Seen::NONE; synced],
            by_hash: HashMap::default(),
            others: HashMap::new(),
            indexed: false,
            last: 0,
            expected: others,
            text: Vec::with_capacity(others * 20),
        }
    }

    /// Whether no row has named the synced employee at `at` yet.
    pub(super) fn synced_is_new(&self, at: u32) -> bool {
        self.synced[at as usize].0 == 0
    }

    /// The synced employee at `at` first appears on `line`, unchanged
    /// since the last apply (handed over as it is read).
    pub(super) fn unchanged(&mut self, at: u32, line: u64) {
        self.synced[at as usize] = Seen::new(line, true);
    }

    /// Note a row on `line` with the valid ref `key` (of the synced
    /// employee at `synced`, if any).
    pub(super) fn note(&mut self, key: &str, synced: Option<u32>, line: u64) -> Occurrence {
        let slot = match synced {
            Some(at) => {
                if self.synced_is_new(at) {
                    self.synced[at as usize] = Seen::new(line, false);
                    return Occurrence::First(Slot::Synced(at));
                }
                Slot::Synced(at)
            }
            None => match self.other(key, line) {
                Ok(new) => return Occurrence::First(Slot::Other(new)),
                Err(earlier) => Slot::Other(earlier),
            },
        };
        Occurrence::Again(slot, key.into())
    }

    /// The entry of `key` among the other refs: `Err` if an earlier row
    /// had it, else `Ok` with a new entry for `line`.
    fn other(&mut self, key: &str, line: u64) -> Result<usize, usize> {
        let key = key.as_bytes();
        let next = self.text.len();
        if !self.indexed && next > 0 {
            match self.text_at(self.last).cmp(key) {
                Ordering::Less => {}
                Ordering::Equal => return Err(self.last),
                Ordering::Greater => self.index_all(),
            }
        }
        if self.indexed {
            if let Some(earlier) = index(&mut self.by_hash, &mut self.others, &self.text, key, next)
            {
                return Err(earlier);
            }
        }
        let len = u8::try_from(key.len()).expect("a valid ref is at most 200 bytes");
        self.text
            .extend_from_slice(&Seen::new(line, false).0.to_le_bytes());
        self.text.push(len);
        self.text.extend_from_slice(key);
        self.last = next;
        Ok(next)
    }

    /// A ref came out of order: index every entry so far (all distinct,
    /// since each was greater than the one before).
    fn index_all(&mut self) {
        let mut at = 0;
        let mut entries = 0;
        while at < self.text.len() {
            entries += 1;
            at += 9 + usize::from(self.text[at + 8]);
        }
        self.by_hash.reserve(self.expected.max(entries));
        let mut at = 0;
        while at < self.text.len() {
            let key = entry_text(&self.text, at);
            let earlier = index(&mut self.by_hash, &mut self.others, &self.text, key, at);
            debug_assert!(
                earlier.is_none(),
                "entries in increasing order are distinct"
            );
            at += 9 + key.len();
        }
        self.indexed = true;
    }

    fn text_at(&self, at: usize) -> &[u8] {
        entry_text(&self.text, at)
    }

    fn seen_at(&self, at: usize) -> Seen {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.text[at..at + 8]);
        Seen(u64::from_le_bytes(word))
    }

    /// The first row noted in `slot`.
    pub(super) fn get(&self, slot: Slot) -> Seen {
        match slot {
            Slot::Synced(at) => self.synced[at as usize],
            Slot::Other(at) => self.seen_at(at),
        }
    }

    /// The first row noted in `slot` went to the sink.
    pub(super) fn streamed(&mut self, slot: Slot) {
        match slot {
            Slot::Synced(at) => {
                let seen = &mut self.synced[at as usize];
                *seen = Seen::new(seen.line(), true);
            }
            Slot::Other(at) => {
                let seen = Seen::new(self.seen_at(at).line(), true);
                self.text[at..at + 8].copy_from_slice(&seen.0.to_le_bytes());
            }
        }
    }
}

/// The text of the entry starting at `at` in `text`.
fn entry_text(text: &[u8], at: usize) -> &[u8] {
    let len = usize::from(text[at + 8]);
    &text[at + 9..at + 9 + len]
}

/// Find `key` among the indexed entries of `text`, or index it as the entry
/// starting at `at`: `Some` where an earlier entry with that text starts.
fn index(
    by_hash: &mut HashMap<u32, u32, BuildHasherDefault<Spread>>,
    others: &mut HashMap<Box<[u8]>, usize>,
    text: &[u8],
    key: &[u8],
    at: usize,
) -> Option<usize> {
    let hash = xxhash_rust::xxh3::xxh3_64(key) as u32;
    match (by_hash.get(&hash), u32::try_from(at)) {
        (None, Ok(at32)) => {
            by_hash.insert(hash, at32);
            None
        }
        (Some(&earlier), _) if entry_text(text, earlier as usize) == key => Some(earlier as usize),
        // Another ref has this hash (or the buffer is past 4 GiB): the
        // rare ones that collide are kept apart, by their text.
        _ => match others.get(key) {
            Some(&earlier) => Some(earlier),
            None => {
                others.insert(key.into(), at);
                None
            }
        },
    }
}

/// The hasher of `by_hash`, whose keys are hashes already: it spreads the
/// 32 bits over 64, since the table takes its buckets from the low bits
/// and its tags from the high ones.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u32` keys are hashed here; any other input still hashes.
        for &b in bytes {
            self.write_u32(u32::from(b) ^ (self.0 as u32).rotate_left(8));
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ref_is_first_once_and_then_again() {
        let mut f = FirstRows::new(3, 0);
        assert_eq!(f.note("A", None, 2), Occurrence::First(Slot::Other(0)));
        assert_eq!(f.note("C", None, 3), Occurrence::First(Slot::Other(10)));
        assert_eq!(f.note("B", Some(1), 4), Occurrence::First(Slot::Synced(1)));
        assert_eq!(
            f.note("A", None, 5),
            Occurrence::Again(Slot::Other(0), "A".into())
        );
        assert_eq!(
            f.note("B", Some(1), 6),
            Occurrence::Again(Slot::Synced(1), "B".into())
        );
        assert!(!f.get(Slot::Other(0)).streamed());
        f.streamed(Slot::Other(0));
        let a = f.get(Slot::Other(0));
        assert!(a.streamed() && a.line() == 2);
        assert!(f.synced_is_new(2));
        f.unchanged(2, 9);
        assert!(!f.synced_is_new(2) && f.get(Slot::Synced(2)).streamed());
    }

    /// Refs whose hashes collide are still told apart by their text.
    #[test]
    fn colliding_hashes_keep_refs_apart() {
        let hash = |s: &str| xxhash_rust::xxh3::xxh3_64(s.as_bytes()) as u32;
        let mut by: HashMap<u32, String> = HashMap::new();
        let (a, b) = (0u64..)
            .map(|i| format!("E{i}"))
            .find_map(|s| by.insert(hash(&s), s.clone()).map(|earlier| (earlier, s)))
            .unwrap();
        assert_eq!(hash(&a), hash(&b));
        let mut f = FirstRows::new(0, 0);
        assert!(matches!(f.note(&a, None, 2), Occurrence::First(_)));
        assert!(matches!(f.note(&b, None, 3), Occurrence::First(_)));
        assert!(matches!(f.note(&b, None, 4), Occurrence::Again(_, _)));
        assert!(matches!(f.note(&a, None, 5), Occurrence::Again(_, _)));
        let Occurrence::Again(slot, text) = f.note(&b, None, 6) else {
            panic!("b was noted")
        };
        assert_eq!((f.get(slot).line(), &*text), (3, b.as_str()));
    }

    /// Refs in increasing order are noted without an index; the first out
    /// of order indexes them, colliding hashes included, and every earlier
    /// ref is still found with its first row.
    #[test]
    fn refs_out_of_order_find_the_ones_noted_in_order() {
        let hash = |s: &str| xxhash_rust::xxh3::xxh3_64(s.as_bytes()) as u32;
        let mut by: HashMap<u32, String> = HashMap::new();
        let (a, b) = (0u64..)
            .map(|i| format!("E{i}"))
            .find_map(|s| by.insert(hash(&s), s.clone()).map(|earlier| (earlier, s)))
            .unwrap();
        let (a, b) = (a.clone().min(b.clone()), a.max(b));
        let mut f = FirstRows::new(0, 4);
        let mut lines = HashMap::new();
        for (line, r) in [(2, "D1"), (3, a.as_str()), (4, b.as_str()), (5, "F")] {
            assert!(matches!(f.note(r, None, line), Occurrence::First(_)), "{r}");
            lines.insert(r.to_string(), line);
        }
        // The last one again, still in order.
        let Occurrence::Again(slot, _) = f.note("F", None, 6) else {
            panic!("F was noted")
        };
        assert_eq!(f.get(slot).line(), 5);
        assert!(!f.indexed);
        // Out of order: a new ref, then every earlier one again.
        assert!(matches!(f.note("C", None, 7), Occurrence::First(_)));
        assert!(f.indexed);
        lines.insert("C".into(), 7);
        for (r, line) in &lines {
            let Occurrence::Again(slot, text) = f.note(r, None, 99) else {
                panic!("{r} was noted")
            };
            assert_eq!((f.get(slot).line(), &*text), (*line, r.as_str()));
        }
        assert!(matches!(f.note("A", None, 100), Occurrence::First(_)));
    }
}
