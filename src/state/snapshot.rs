//! What the planner knows of the remote world: an in-memory copy of the
//! state tables, read once at the start of a command.

use std::borrow::Borrow;
use std::hash::Hash;

use thin_vec::ThinVec;

use crate::fxhash::FxHashMap;

use crate::model::{CarrierId, EmployeeRef, EmployerRef, GroupName};

/// Content fingerprints, one 64-bit salted hash per section of an object
/// (e.g. an employee's address, contact, metadata). Sections let an update
/// name what changed and send only that, without the state holding any of
/// the values. A thin vector (one word, no allocation when empty): a plan
/// holds one per operation, millions of them, and most are empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Sections(pub ThinVec<u64>);

impl Sections {
    pub fn to_blob(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.to_le_bytes()).collect()
    }
    pub fn from_blob(b: &[u8]) -> Sections {
        Sections(
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
        )
    }
    /// One hash of all sections: the fingerprint an operation carries.
    pub fn combined(&self) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for s in self.0.iter() {
            h.update(&s.to_le_bytes());
        }
        format!("{:016x}", h.digest())
    }
}

/// An employer as last synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployerSnap {
    /// Kota's `er_` id, once created.
    pub kota_id: Option<String>,
    pub fp: Sections,
    /// The Noyo group created with the employer's first connection.
    pub noyo_group_id: Option<String>,
}

/// A Noyo connection as last synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSnap {
    pub noyo_id: String,
    pub noyo_group_id: String,
    pub fp: Sections,
    /// The last status seen, e.g. `completed`, `unable_to_connect`.
    pub status: String,
}

/// How an employee's membership of a group stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipState {
    /// Kota holds the membership.
    Added,
    /// The eligibility pre-check said no. Checked again when it can have
    /// changed (see the planner). Boxed: ineligible memberships are few, and
    /// keeping the common case one word keeps a million employees' state
    /// small.
    Ineligible(Box<Ineligibility>),
}

/// Why and when a membership was last found ineligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ineligibility {
    /// The codes of the reasons, comma-separated.
    pub codes: String,
    /// The day of the check.
    pub checked: Option<chrono::NaiveDate>,
}

impl MembershipState {
    pub fn ineligible(codes: String, checked: Option<chrono::NaiveDate>) -> MembershipState {
        MembershipState::Ineligible(Box::new(Ineligibility { codes, checked }))
    }
}

/// An employee as last synced. (A million of these make up most of a warm
/// plan's memory: every field is as small as it can be.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeSnap {
    /// Its employer, by number: a position in [`Snapshot::employer_numbers`]
    /// ([`Snapshot::employer_of`] gives the ref). A number, not a shared
    /// ref: cloning the ref touched a count beside its text, a cache miss
    /// per row that was a fifth of loading a million employees. The reader
    /// finds the employer's row-digest salt by it, an array read, where the
    /// ref's text cost a hash probe a row, a fifth of a warm read.
    pub employer_no: u32,
    /// Kota's `ee_` id; empty in a planning snapshot and in summaries
    /// (`db::Detail`).
    pub kota_id: Box<str>,
    pub fp: Sections,
    pub offboarded: bool,
    /// The digest of the export row an apply last found nothing to do for
    /// (schema v4); 0 for none. The same row, read again, is skipped.
    pub row_digest: u64,
    /// Only a summary (employer, offboarding, digest): `fp` and
    /// `memberships` are left empty (see `db::Detail::Planning`).
    pub partial: bool,
    /// Sorted by group name.
    pub memberships: Box<[(GroupName, MembershipState)]>,
}

impl EmployeeSnap {
    pub fn membership(&self, g: &GroupName) -> Option<&MembershipState> {
        self.memberships
            .binary_search_by(|(n, _)| n.cmp(g))
            .ok()
            .map(|i| &self.memberships[i].1)
    }
}

/// The synced employees: rows in a dense list, found by ref through an
/// index of positions. A map holding the rows themselves sized its table
/// for twice the rows, half of it empty 80-byte slots; positions also let
/// the planner mark the employees it saw in a bit per row.
///
/// The index is built when first needed. A state loads its employees in
/// ref order, and a payroll export in the same order finds each row's
/// employee next to the previous one's ([`EmployeeTable::position_after`]):
/// such a night builds no index at all (a million random inserts, and a
/// random probe per row, were a third of a warm plan).
#[derive(Debug, Default)]
pub struct EmployeeTable {
    /// Position in `rows` by ref; built on the first lookup the rows' order
    /// cannot answer.
    index: std::sync::OnceLock<FxHashMap<EmployeeRef, u32>>,
    rows: Vec<(EmployeeRef, EmployeeSnap)>,
    /// Whether the rows are in strictly increasing ref order (as far as
    /// [`EmployeeTable::push_ordered`] knows: `insert` clears it).
    ordered: bool,
    /// Lookups answered by binary search of the ordered rows so far: a few
    /// (rejected rows' refs, a changed row looked up twice) are cheaper
    /// that way than a million-entry index; past [`SEARCHES_BEFORE_INDEX`],
    /// the index is built.
    searches: std::sync::atomic::AtomicU32,
}

/// See `EmployeeTable::searches`.
const SEARCHES_BEFORE_INDEX: u32 = 4096;

impl Clone for EmployeeTable {
    fn clone(&self) -> EmployeeTable {
        EmployeeTable {
            index: self.index.clone(),
            rows: self.rows.clone(),
            ordered: self.ordered,
            searches: 0.into(),
        }
    }
}

impl EmployeeTable {
    pub fn reserve(&mut self, n: usize) {
        self.rows.reserve_exact(n);
    }
    /// Add or replace the row of `key`.
    pub fn insert(&mut self, key: EmployeeRef, row: EmployeeSnap) {
        self.ordered = false;
        self.index();
        let index = self.index.get_mut().expect("built above");
        // One probe: loading a million employees is a million inserts.
        let next = u32::try_from(self.rows.len()).expect("at most 4 billion employees");
        match index.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => self.rows[*o.get() as usize].1 = row,
            std::collections::hash_map::Entry::Vacant(v) => {
                let key = v.key().clone();
                v.insert(next);
                self.rows.push((key, row));
            }
        }
    }
    /// Add the row of `key`, read in ref order: after every key already
    /// here, it needs no index. (Out of order, it is an [`insert`].)
    ///
    /// [`insert`]: EmployeeTable::insert
    pub fn push_ordered(&mut self, key: EmployeeRef, row: EmployeeSnap) {
        match self.rows.last() {
            None => self.ordered = true,
            Some((last, _)) if self.ordered && *last < key => {}
            Some(_) => return self.insert(key, row),
        }
        if let Some(index) = self.index.get_mut() {
            index.insert(key.clone(), self.rows.len() as u32);
        }
        self.rows.push((key, row));
    }
    /// Whether the rows are in increasing ref order.
    pub fn is_ordered(&self) -> bool {
        self.ordered || self.rows.is_empty()
    }
    fn index(&self) -> &FxHashMap<EmployeeRef, u32> {
        self.index.get_or_init(|| {
            let mut index = FxHashMap::default();
            index.reserve(self.rows.len());
            for (i, (k, _)) in self.rows.iter().enumerate() {
                index.insert(k.clone(), i as u32);
            }
            index
        })
    }
    /// The position of `key`'s row ([`EmployeeTable::at`]).
    pub fn position<Q>(&self, key: &Q) -> Option<u32>
    where
        EmployeeRef: Borrow<Q>,
        Q: Hash + Eq + Ord + ?Sized,
    {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(index) = self.index.get() {
            return index.get(key).copied();
        }
        if self.is_ordered() && self.searches.fetch_add(1, Relaxed) < SEARCHES_BEFORE_INDEX {
            return self
                .rows
                .binary_search_by(|(k, _)| k.borrow().cmp(key))
                .ok()
                .map(|i| i as u32);
        }
        self.index().get(key).copied()
    }
    /// [`EmployeeTable::position`], trying the row at `guess` and the one
    /// before it first: a reader of a file in the rows' order passes the
    /// position after the last one it found, and reads the rows in
    /// sequence (a row it looks up twice is the one before).
    pub fn position_after(&self, key: &str, guess: u32) -> Option<u32> {
        for at in [guess, guess.wrapping_sub(1)] {
            if self
                .rows
                .get(at as usize)
                .is_some_and(|(k, _)| k.as_str() == key)
            {
                return Some(at);
            }
        }
        self.position(key)
    }
    /// The row at `position`, with its ref.
    pub fn at(&self, position: u32) -> (&EmployeeRef, &EmployeeSnap) {
        let (k, v) = &self.rows[position as usize];
        (k, v)
    }
    /// The row at `position`, if there is one.
    pub fn get_at(&self, position: u32) -> Option<&EmployeeSnap> {
        self.rows.get(position as usize).map(|(_, v)| v)
    }
    /// The row at `position`, to change.
    pub fn at_mut(&mut self, position: u32) -> &mut EmployeeSnap {
        &mut self.rows[position as usize].1
    }
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&EmployeeRef, &EmployeeSnap)>
    where
        EmployeeRef: Borrow<Q>,
        Q: Hash + Eq + Ord + ?Sized,
    {
        self.position(key).map(|i| self.at(i))
    }
    pub fn get<Q>(&self, key: &Q) -> Option<&EmployeeSnap>
    where
        EmployeeRef: Borrow<Q>,
        Q: Hash + Eq + Ord + ?Sized,
    {
        self.get_key_value(key).map(|(_, v)| v)
    }
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut EmployeeSnap>
    where
        EmployeeRef: Borrow<Q>,
        Q: Hash + Eq + Ord + ?Sized,
    {
        let i = self.position(key)?;
        Some(&mut self.rows[i as usize].1)
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// The rows in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&EmployeeRef, &EmployeeSnap)> {
        self.rows.iter().map(|(k, v)| (k, v))
    }
    pub fn values(&self) -> impl Iterator<Item = &EmployeeSnap> {
        self.rows.iter().map(|(_, v)| v)
    }
}

impl<Q> std::ops::Index<&Q> for EmployeeTable
where
    EmployeeRef: Borrow<Q>,
    Q: Hash + Eq + Ord + ?Sized,
{
    type Output = EmployeeSnap;
    fn index(&self, key: &Q) -> &EmployeeSnap {
        self.get(key).expect("no such employee in the snapshot")
    }
}

/// One employer's things of one kind, sorted by key: its groups in Kota or
/// Invisible Collector ([`Groups`]), its Noyo connections
/// ([`Connections`]). Per employer rather than keyed by (employer, key):
/// the planner asks about an employer's few groups and connections
/// together, and 150,000 group keys (twice) and 124,000 connection keys
/// cost a hash probe and two cache misses each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerEmployer<K, V>(Vec<(K, V)>);

/// An employer's groups, by name, with their remote ids (empty in a plan's
/// snapshot: `db::Detail::Planning`).
pub type Groups = PerEmployer<GroupName, String>;

/// An employer's Noyo connections, by carrier.
pub type Connections = PerEmployer<CarrierId, ConnectionSnap>;

impl<K, V> Default for PerEmployer<K, V> {
    fn default() -> Self {
        PerEmployer(Vec::new())
    }
}

impl<K: Ord, V> PerEmployer<K, V> {
    /// The value of `key`, if the state has it.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.0
            .binary_search_by(|(k, _)| k.borrow().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }
    /// Record `value` for `key` (replacing one it had).
    #[cfg(test)]
    pub fn insert(&mut self, key: K, value: V) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }
    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    /// Built from entries in any order, with distinct keys.
    pub(crate) fn from_unsorted(mut entries: Vec<(K, V)>) -> Self {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        PerEmployer(entries)
    }
}

/// The whole state, as the planner sees it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Bumped by every applied change; a saved plan names it.
    pub version: u64,
    /// Seed of the fingerprint hash, random per state database, so that a
    /// fingerprint cannot be matched against a table of known values.
    pub fp_seed: u64,
    pub employers: FxHashMap<EmployerRef, EmployerSnap>,
    /// Each employer's Kota groups.
    pub kota_groups: FxHashMap<EmployerRef, Groups>,
    /// Each employer's Invisible Collector groups.
    pub ic_groups: FxHashMap<EmployerRef, Groups>,
    /// Each employer's Noyo connections.
    pub connections: FxHashMap<EmployerRef, Connections>,
    pub employees: EmployeeTable,
    /// The refs of the employers the employees are under, by the number
    /// each employee row names ([`EmployeeSnap::employer_no`]).
    pub employer_numbers: Vec<EmployerRef>,
}

impl Snapshot {
    /// The ref of `e`'s employer.
    pub fn employer_of(&self, e: &EmployeeSnap) -> &EmployerRef {
        &self.employer_numbers[e.employer_no as usize]
    }

    /// `er`'s number in [`Snapshot::employer_numbers`], given one if it has
    /// none. (A linear search: for snapshots built a few rows at a time;
    /// the state load numbers its employers through a map.)
    #[cfg(test)]
    pub fn employer_number(&mut self, er: &EmployerRef) -> u32 {
        let no = match self.employer_numbers.iter().position(|k| k == er) {
            Some(no) => no,
            None => {
                self.employer_numbers.push(er.clone());
                self.employer_numbers.len() - 1
            }
        };
        no as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(digest: u64) -> EmployeeSnap {
        EmployeeSnap {
            employer_no: 0,
            kota_id: Box::default(),
            fp: Sections::default(),
            offboarded: false,
            row_digest: digest,
            partial: false,
            memberships: Box::default(),
        }
    }

    fn key(s: &str) -> EmployeeRef {
        EmployeeRef::parse(s).unwrap()
    }

    /// Rows pushed in order are found by their order or by the index built
    /// on demand, alike; a row out of order, or replaced, still is, and
    /// the table then says it is no longer ordered.
    #[test]
    fn ordered_rows_are_found_with_or_without_the_index() {
        let mut t = EmployeeTable::default();
        for (i, k) in ["E1", "E2", "E4"].iter().enumerate() {
            t.push_ordered(key(k), row(i as u64));
        }
        assert!(t.is_ordered());
        assert!(t.index.get().is_none(), "no index built yet");
        assert_eq!(t.position_after("E2", 1), Some(1));
        assert_eq!(t.position_after("E2", 2), Some(1), "looked up twice");
        assert!(t.index.get().is_none(), "found by its order");
        assert_eq!(t.position_after("E4", 0), Some(2), "a wrong guess");
        assert_eq!(t.position_after("E3", 2), None);
        assert!(t.index.get().is_none(), "a few searches build no index");
        for _ in 0..SEARCHES_BEFORE_INDEX {
            assert_eq!(t.position("E4"), Some(2));
        }
        assert!(t.index.get().is_some(), "many do");
        t.push_ordered(key("E5"), row(5));
        assert_eq!(t.position("E5"), Some(3), "the index follows pushes");
        t.push_ordered(key("E0"), row(9));
        assert!(!t.is_ordered());
        assert_eq!(t.get("E0").unwrap().row_digest, 9);
        t.push_ordered(key("E2"), row(7));
        assert_eq!(t.len(), 5, "a repeated ref replaces its row");
        assert_eq!(t["E2"].row_digest, 7);
    }
}
