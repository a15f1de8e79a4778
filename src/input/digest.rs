//! Row digests: how the reader recognises an employee row that the state
//! says needs nothing, without validating or diffing it again.
//!
//! An apply that plans nothing for a synced employee's row (no operation,
//! no finding, no membership waiting for an eligibility re-check) records a
//! digest of that row beside the employee's state row (schema v4); every
//! effect on the employee or its memberships clears it. Planning is a pure
//! function of its inputs, so while the digest stands, the same row read
//! against the same employer plans nothing again: the reader skips it.
//!
//! The digest therefore covers everything the employee's validation and
//! plan read besides the state row:
//! - the row's raw bytes as the file holds them, quotes and separators
//!   included, its terminator left out (the same bytes always parse to the
//!   same fields; a row written otherwise, say with a field quoted that was
//!   not, only misses its digest once);
//! - the header (the same bytes under other columns mean another row);
//! - the employer's ref and group names (they decide which of the row's
//!   groups are valid and which memberships exist);
//! - the state's fingerprint seed and [`ROW_DIGEST_VERSION`].
//!
//! Validation is otherwise a function of the row and the day, and the only
//! day-dependent rule (a birth date must be in the past) can only turn a
//! valid row invalid by moving the clock backwards.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::header::Header;

/// Bump when the validation or the planning of an employee row changes in
/// a way that can give an unchanged row a different plan: every recorded
/// digest then stops matching, and each row is read in full once more.
///
/// 2: the fields' lengths hashed apart from their bytes, which are hashed
/// where the record holds them instead of copied after each length (half
/// the time of a digest).
/// 3: the row's raw bytes, so that a row without quotes is recognised
/// before it is split into fields (splitting was most of reading it); the
/// employer's salt folded in after, so that the same bytes are hashed once
/// whatever the employer.
/// 4: the xxh3 of the raw bytes, hashed again with the seed and header:
/// a quoted record's bytes are hashed as they are parsed, not kept (a
/// quote left open can make a record of the rest of the file).
pub const ROW_DIGEST_VERSION: u64 = 4;

/// Hash `parts` with their lengths: one xxh3 over a length-prefixed
/// concatenation, `buf` reused.
fn hash_parts<'p>(seed: u64, buf: &mut Vec<u8>, parts: impl Iterator<Item = &'p [u8]>) -> u64 {
    buf.clear();
    for p in parts {
        buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
        buf.extend_from_slice(p);
    }
    xxh3_64_with_seed(buf, seed)
}

/// The salt of every employee row of one employer: its ref and its groups
/// (sorted names, as [`super::Employers`] holds them).
pub(crate) fn employer_salt<'g>(
    employer_ref: &'g str,
    groups: impl Iterator<Item = &'g str>,
) -> u64 {
    let mut buf = Vec::new();
    hash_parts(
        ROW_DIGEST_VERSION,
        &mut buf,
        std::iter::once(employer_ref.as_bytes()).chain(groups.map(str::as_bytes)),
    )
}

/// Digests the rows of one employees file.
pub(crate) struct RowDigester {
    /// The state's seed, the header and the digest version, folded.
    base: u64,
}

impl RowDigester {
    pub(crate) fn new(seed: u64, header: &Header) -> RowDigester {
        let mut buf = Vec::new();
        let names = hash_parts(
            seed ^ ROW_DIGEST_VERSION,
            &mut buf,
            header.names().map(str::as_bytes),
        );
        RowDigester { base: names }
    }

    /// The hash of a row's raw bytes, from their xxh3
    /// (`reader::RawRecord::hash`), which [`salted`] makes its digest under
    /// an employer.
    pub(crate) fn raw(&self, bytes_hash: u64) -> u64 {
        xxh3_64_with_seed(&bytes_hash.to_le_bytes(), self.base)
    }
}

/// The digest of the row whose raw hash ([`RowDigester::raw`]) is `raw`,
/// under the employer whose salt is `employer_salt`; never 0 (the state's
/// "no digest").
pub(crate) fn salted(raw: u64, employer_salt: u64) -> u64 {
    let mut both = [0u8; 16];
    both[..8].copy_from_slice(&raw.to_le_bytes());
    both[8..].copy_from_slice(&employer_salt.to_le_bytes());
    xxh3_64(&both).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::record::Record;

    fn digest(raw: &str) -> u64 {
        let header = Record::from(vec!["a", "b"]);
        let mut notes = Vec::new();
        let header = Header::resolve(&header, &["a", "b"], &[], &mut notes).unwrap();
        salted(RowDigester::new(7, &header).raw(xxh3_64(raw.as_bytes())), 3)
    }

    #[test]
    fn bytes_moved_between_fields_make_another_digest() {
        assert_ne!(digest("ab,c"), digest("a,bc"));
        assert_ne!(digest("abc,"), digest(",abc"));
        assert_ne!(digest("ab,c"), digest("ab,d"));
        assert_ne!(digest("ab,c"), digest("\"ab\",c"));
        assert_eq!(digest("ab,c"), digest("ab,c"));
    }

    /// The header, the employer's salt and the state's seed each make
    /// another digest of the same fields.
    #[test]
    fn header_salt_and_seed_are_part_of_the_digest() {
        let mut notes = Vec::new();
        let mut header = |names: [&str; 2]| {
            Header::resolve(
                &Record::from(names.to_vec()),
                &["a", "b", "c"],
                &[],
                &mut notes,
            )
            .unwrap()
        };
        let (ab, ac) = (header(["a", "b"]), header(["a", "c"]));
        let d = |seed, header: &Header, salt| {
            salted(RowDigester::new(seed, header).raw(xxh3_64(b"x,y")), salt)
        };
        let base = d(7, &ab, 3);
        assert_eq!(base, d(7, &ab, 3));
        assert_ne!(base, d(7, &ac, 3));
        assert_ne!(base, d(7, &ab, 4));
        assert_ne!(base, d(8, &ab, 3));
    }

    #[test]
    fn the_employers_groups_are_part_of_the_salt() {
        let a = employer_salt("ACME", ["Dental", "Health"].into_iter());
        let b = employer_salt("ACME", ["Health"].into_iter());
        let c = employer_salt("ACMEHealth", std::iter::empty());
        assert_ne!(a, b);
        assert_ne!(b, c);
    }
}
