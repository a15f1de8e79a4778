//! One CSV record's fields, as the reader hands them to the checks.
//!
//! Nearly every record of a payroll export is a line without quotes, and
//! its fields are then the line cut at its commas: the line is copied once
//! and only where each field lies is noted. (Filling a `csv::ByteRecord`
//! field by field, a copy and a bounds update each, cost as much as
//! parsing the line.) A record with quotes holds the fields as `csv_core`
//! unquoted them, one after another.

/// A record's fields: the bytes they lie in and where each lies.
#[derive(Default, Clone)]
pub(crate) struct Record {
    /// The fields' bytes; for a line without quotes, the line itself
    /// (commas included).
    bytes: Vec<u8>,
    /// Each field's start and end in `bytes`.
    bounds: Vec<(u32, u32)>,
}

impl Record {
    pub(crate) fn new() -> Record {
        Record::default()
    }

    /// Field `i`, if the record has that many.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let &(start, end) = self.bounds.get(i)?;
        Some(&self.bytes[start as usize..end as usize])
    }

    pub(crate) fn len(&self) -> usize {
        self.bounds.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.bounds
            .iter()
            .map(|&(start, end)| &self.bytes[start as usize..end as usize])
    }

    /// How many bytes the fields lie in: no field is longer.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether every field is ASCII.
    pub(crate) fn is_ascii(&self) -> bool {
        // The only bytes between fields are commas.
        self.bytes.is_ascii()
    }

    /// The last byte of the last field, if any.
    pub(crate) fn last_byte(&self) -> Option<u8> {
        let &(start, end) = self.bounds.last()?;
        (end > start).then(|| self.bytes[end as usize - 1])
    }

    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.bounds.clear();
    }

    /// Add a field after the others.
    pub(crate) fn push_field(&mut self, field: &[u8]) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(field);
        self.bounds.push((start, self.bytes.len() as u32));
    }

    /// The fields of `line`, a record without quotes: its bytes between
    /// commas.
    pub(crate) fn set_line(&mut self, line: &[u8]) {
        self.bytes.clear();
        self.bytes.extend_from_slice(line);
        self.bounds.clear();
        let start = split_at_commas(line, &mut self.bounds);
        self.bounds.push((start, line.len() as u32));
    }

    /// The fields `csv_core` wrote into `out`, ending at `ends`: `out`
    /// becomes the record's bytes (not copied: a quote left open can make
    /// a record of the whole rest of the file), and its bytes before are
    /// returned for the next parse to write into.
    pub(crate) fn set_unquoted(&mut self, mut out: Vec<u8>, ends: &[usize]) -> Vec<u8> {
        out.truncate(ends.last().copied().unwrap_or(0));
        let old = std::mem::replace(&mut self.bytes, out);
        self.bounds.clear();
        let mut start = 0;
        for &end in ends {
            self.bounds.push((start as u32, end as u32));
            start = end;
        }
        old
    }
}

/// Push the bounds of every field of `line` that a comma ends; returns
/// where the last field starts.
///
/// The reader splits every line that is not skipped as unchanged (183,000
/// employer rows and, on a cold plan, a million employee rows of about
/// twenty fields): a byte-at-a-time loop, whose branch mispredicts at
/// nearly every comma, was the largest item of a cold plan (8% of its
/// samples). Sixteen bytes are compared at once instead (SSE2, part of
/// every x86_64 target) and the commas taken from the bit mask; `memchr`
/// pays a call per field, which fields this short do not repay.
fn split_at_commas(line: &[u8], bounds: &mut Vec<(u32, u32)>) -> u32 {
    let mut start = 0u32;
    let mut at = 0usize;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        while at + 16 <= line.len() {
            // SAFETY: SSE2 is part of every x86_64 target, and the 16
            // bytes loaded (unaligned) are `line[at..at + 16]`.
            let mut commas = unsafe {
                let chunk = _mm_loadu_si128(line.as_ptr().add(at).cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(chunk, _mm_set1_epi8(b',' as i8))) as u32
            };
            while commas != 0 {
                let end = at as u32 + commas.trailing_zeros();
                bounds.push((start, end));
                start = end + 1;
                commas &= commas - 1;
            }
            at += 16;
        }
    }
    for (i, &b) in line[at..].iter().enumerate() {
        if b == b',' {
            let end = (at + i) as u32;
            bounds.push((start, end));
            start = end + 1;
        }
    }
    start
}

impl<T: AsRef<[u8]>> From<Vec<T>> for Record {
    fn from(fields: Vec<T>) -> Record {
        let mut rec = Record::new();
        for f in &fields {
            rec.push_field(f.as_ref());
        }
        rec
    }
}

/// Records are equal when their fields are, however they lie.
impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Record {}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_cut_at_its_commas() {
        let mut rec = Record::new();
        rec.set_line(b"a,,b c\r");
        assert_eq!(rec, Record::from(vec!["a", "", "b c\r"]));
        assert_eq!(rec.last_byte(), Some(b'\r'));
        rec.set_line(b"");
        assert_eq!(rec, Record::from(vec![""]));
        assert_eq!(rec.last_byte(), None);
        rec.set_unquoted(b"x\ny,z".to_vec(), &[3, 3, 5]);
        let fields: Vec<&[u8]> = rec.iter().collect();
        assert_eq!(fields, [&b"x\ny"[..], b"", b",z"]);
        assert_eq!(
            (rec.len(), rec.get(2), rec.get(3)),
            (3, Some(&b",z"[..]), None)
        );
    }

    proptest::proptest! {
        /// Lines of any length, commas anywhere (several in a sixteen-byte
        /// block, at its edges, none at all), cut as `split` cuts them.
        #[test]
        fn lines_are_cut_as_split_cuts_them(
            line in proptest::collection::vec(
                proptest::prop_oneof![3 => proptest::strategy::Just(b','), 7 => proptest::num::u8::ANY],
                0..100,
            )
        ) {
            let mut rec = Record::new();
            rec.set_line(&line);
            let want: Vec<&[u8]> = line.split(|&b| b == b',').collect();
            proptest::prop_assert_eq!(rec.iter().collect::<Vec<_>>(), want);
        }
    }
}
