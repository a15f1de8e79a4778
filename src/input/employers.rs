//! employers.csv: one row per employer benefit group, merged into one
//! [`Employer`] per `employer_ref`.
//!
//! The employer's identity repeats on every row, so a bad row (or rows that
//! disagree) leaves the employer itself in doubt: the whole employer is
//! rejected and nothing depending on it is planned. The file is small (one
//! row per group), so rows are collected and merged after reading.

use std::collections::BTreeSet;
use std::path::Path;

use super::record::Record;
use compact_str::CompactString;

use super::header::Header;
use super::reader::{is_blank, CsvSource};
use super::ref_index::RefIndex;
use super::rejection::{sort, Rejection};
use super::row::{checked, AddressCols, Problem, Row};
use super::{no_data_rows, read_header, InputError, InputWarning};

use crate::fxhash::{FxHashMap, FxHashSet};
use crate::model::{
    parse_date, Address, AddressFields, CarrierId, ConnectionSpec, Contact, Ein, Email, Employer,
    EmployerRef, GroupName, GroupSpec, Metadata, Rule, Text,
};

const EMPLOYER_REF: usize = 0;
const LEGAL_NAME: usize = 1;
const REGISTRATION_NUMBER: usize = 2;
const ADDRESS_LINE1: usize = 3;
const ADDRESS_LINE2: usize = 4;
const ADDRESS_LINE3: usize = 5;
const CITY: usize = 6;
const STATE: usize = 7;
const POSTAL_CODE: usize = 8;
const COUNTRY_CODE: usize = 9;
const CONTACT_NAME: usize = 10;
const CONTACT_EMAIL: usize = 11;
const EARLIEST_BENEFITS_START_DATE: usize = 12;
const GROUP_NAME: usize = 13;
const GROUP_DESCRIPTION: usize = 14;
const CARRIER_ID: usize = 15;
const CARRIER_GROUP_ID: usize = 16;
const FEDERAL_EIN: usize = 17;
const BROKER_FEDERAL_EIN: usize = 18;
const BROKER_TIN: usize = 19;

pub(crate) const COLUMNS: &[&str] = &[
    "employer_ref",
    "legal_name",
    "registration_number",
    "address_line1",
    "address_line2",
    "address_line3",
    "city",
    "state",
    "postal_code",
    "country_code",
    "contact_name",
    "contact_email",
    "earliest_benefits_start_date",
    "group_name",
    "group_description",
    "carrier_id",
    "carrier_group_id",
    "federal_ein",
    "broker_federal_ein",
    "broker_tin",
];

const REQUIRED: &[usize] = &[
    EMPLOYER_REF,
    LEGAL_NAME,
    ADDRESS_LINE1,
    CITY,
    POSTAL_CODE,
    COUNTRY_CODE,
    CONTACT_NAME,
    CONTACT_EMAIL,
];

const ADDRESS: AddressCols = AddressCols::starting_at(ADDRESS_LINE1);

/// The employers of employers.csv: the valid ones, and the refs of the
/// rejected ones (so their employees are rejected with a clear reason).
#[derive(Debug)]
pub struct Employers {
    /// Valid employers, sorted by `employer_ref`.
    pub employers: Vec<Employer>,
    pub rejected: BTreeSet<EmployerRef>,
    /// Sorted by (file, line, column).
    pub rejections: Vec<Rejection>,
    pub warnings: Vec<InputWarning>,
    /// blake3 (hex) of the raw file bytes.
    pub content_hash: String,
    /// Data rows read (blank lines not counted).
    pub rows: u64,
    /// Position in `employers` by ref: every employee row looks its employer
    /// up, and a binary search of string compares was a fifth of a 1M-row
    /// plan. A table whose slot for a ref can be fetched ahead
    /// ([`Employers::prefetch_position`]), the ref inline in it.
    index: RefIndex,
    /// Each employer's ref, by position: what an employee row takes from
    /// its employer, packed apart from the large `Employer` records so that
    /// a million random lookups stay in cache.
    refs: Vec<EmployerRef>,
    /// Each employer's group names, sorted, in one flat list: employer `i`'s
    /// are `group_names[group_start[i]..group_start[i + 1]]`.
    group_names: Vec<GroupName>,
    group_start: Vec<u32>,
    /// Every employee row finds each of its groups among its employer's,
    /// and the binary search over `group_names` missed the cache twice a
    /// row (the employer's slice, then the names): a sixteenth of a cold
    /// plan. When the file names no more than 64 distinct groups, each has
    /// a number in name order and each employer a mask of its groups'
    /// numbers, one word read per row; otherwise `None`, and the search.
    group_masks: Option<GroupMasks>,
    /// Each employer's salt of its employees' row digests, by position
    /// (see `input::digest`).
    salts: Vec<u64>,
}

impl Employers {
    /// The employer with this ref.
    pub fn get(&self, r: &str) -> Option<&Employer> {
        self.position(r).map(|i| &self.employers[i as usize])
    }
    /// Where the employer with this ref is in `employers`.
    pub fn position(&self, r: &str) -> Option<u32> {
        self.index.get(r)
    }
    /// Start fetching what [`Employers::position`] of `r` will read.
    pub(crate) fn prefetch_position(&self, r: &str) {
        self.index.prefetch(r);
    }
    /// The ref of the employer at `at` (a [`Employers::position`]).
    pub fn ref_at(&self, at: u32) -> &EmployerRef {
        &self.refs[at as usize]
    }
    /// The salt of the row digests of the employer at `at`'s employees.
    pub(crate) fn salt_at(&self, at: u32) -> u64 {
        self.salts[at as usize]
    }
    /// The group names of the employer at `at`, sorted: its
    /// `Employer::groups`' names, in their order.
    pub fn group_names(&self, at: u32) -> &[GroupName] {
        let at = at as usize;
        &self.group_names[self.group_start[at] as usize..self.group_start[at + 1] as usize]
    }
    /// Start fetching what [`Employers::group_position`] and
    /// [`Employers::group_names`] read of the employer at `at`: an employee
    /// row finds its employer first and its groups after its other
    /// fields, and both are read at random (employees are not in their
    /// employers' order), a cache miss each.
    pub(crate) fn prefetch_groups(&self, at: u32) {
        let at = at as usize;
        if let Some(mask) = self.group_masks.as_ref().and_then(|m| m.masks.get(at)) {
            crate::prefetch::prefetch(mask);
        }
        if let Some(start) = self.group_start.get(at) {
            crate::prefetch::prefetch(start);
        }
    }
    /// Where the group of the employer at `at` spelt exactly `name` is in
    /// its groups.
    pub fn group_position(&self, at: u32, name: &str) -> Option<usize> {
        if let Some(m) = &self.group_masks {
            return m.position(at, name);
        }
        self.group_names(at)
            .binary_search_by(|g| g.as_str().cmp(name))
            .ok()
    }
}

/// The employers' groups as bits (see `Employers::group_masks`).
#[derive(Debug)]
struct GroupMasks {
    /// Each distinct group name's number: its place among them in name
    /// order, so that the groups below a name's bit in an employer's mask
    /// are the ones before it in the employer's sorted groups.
    numbers: FxHashMap<CompactString, u8>,
    /// Each employer's groups, bit `n` for the group numbered `n`.
    masks: Vec<u64>,
}

impl GroupMasks {
    /// `None` if the employers name more than 64 distinct groups.
    fn new(employers: &[Employer]) -> Option<GroupMasks> {
        let names: std::collections::BTreeSet<&str> = employers
            .iter()
            .flat_map(|e| e.groups.iter().map(|g| g.name.as_str()))
            .collect();
        if names.len() > 64 {
            return None;
        }
        let numbers: FxHashMap<CompactString, u8> = names
            .into_iter()
            .enumerate()
            .map(|(n, name)| (CompactString::from(name), n as u8))
            .collect();
        let masks = employers
            .iter()
            .map(|e| {
                e.groups
                    .iter()
                    .fold(0u64, |m, g| m | 1 << numbers[g.name.as_str()])
            })
            .collect();
        Some(GroupMasks { numbers, masks })
    }

    /// [`Employers::group_position`].
    fn position(&self, at: u32, name: &str) -> Option<usize> {
        let bit = 1u64 << *self.numbers.get(name)?;
        let mask = self.masks[at as usize];
        (mask & bit != 0).then(|| (mask & (bit - 1)).count_ones() as usize)
    }
}

/// The fields every row of an employer repeats.
#[derive(Debug)]
struct Core {
    legal_name: Text,
    registration_number: Option<Text>,
    address: Address,
    contact: Contact,
    earliest_benefits_start_date: Option<chrono::NaiveDate>,
    metadata: Metadata,
}

/// A row's employer-level fields, borrowed from the record: every row of
/// an employer repeats them, and only the first row's are kept (owned); the
/// others are compared with it without a copy.
struct CoreFields<'a> {
    legal_name: &'a str,
    registration_number: Option<&'a str>,
    address: AddressFields<'a>,
    contact_name: &'a str,
    contact_email: &'a str,
    earliest_benefits_start_date: Option<chrono::NaiveDate>,
    metadata: Vec<(&'a str, &'a str)>,
}

impl CoreFields<'_> {
    fn to_core(&self) -> Core {
        Core {
            legal_name: checked(Text::parse(self.legal_name)),
            registration_number: self.registration_number.map(|r| checked(Text::parse(r))),
            address: self.address.to_address(),
            contact: Contact {
                name: checked(Text::parse(self.contact_name)),
                email: checked(Email::parse(self.contact_email)),
            },
            earliest_benefits_start_date: self.earliest_benefits_start_date,
            metadata: Metadata::from_checked(&self.metadata),
        }
    }

    fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| self.metadata[i].1)
    }
}

/// A valid row.
struct Parsed<'a> {
    /// Checked, not yet a shared ref: most rows repeat an employer's.
    employer_ref: &'a str,
    line: u64,
    core: CoreFields<'a>,
    group: Option<GroupSpec>,
    connection: Option<ConnectionSpec>,
}

/// What a row adds to its employer once its employer-level fields were
/// compared with the employer's first row.
#[derive(Debug)]
struct Extra {
    line: u64,
    /// Header position of the first employer-level field that differs from
    /// the first row, if any.
    diff: Option<usize>,
    group: Option<GroupSpec>,
    connection: Option<ConnectionSpec>,
}

/// An employer's rows so far: the first row's employer-level fields, and
/// from every row only what it adds. An employer repeats its fields on
/// each of its rows; keeping one copy, not one per row, keeps a 50,000
/// employer file's memory to what the employers themselves need.
#[derive(Debug)]
struct Rows {
    first_line: u64,
    core: Core,
    rows: Vec<Extra>,
}

/// Where a row's employer-level fields are (the known ones and the
/// metadata columns, in header order). Every row of an employer repeats
/// them, nearly always byte for byte: such a row needs only its group and
/// connection parsed, as the same bytes parse to the same valid values,
/// and anything else (a different spelling, a different value) goes the
/// whole way, to agree once normalised or to be a conflict.
struct CoreColumns(Vec<usize>);

impl CoreColumns {
    fn new(header: &Header) -> CoreColumns {
        let known = [
            LEGAL_NAME,
            REGISTRATION_NUMBER,
            ADDRESS_LINE1,
            ADDRESS_LINE2,
            ADDRESS_LINE3,
            CITY,
            STATE,
            POSTAL_CODE,
            COUNTRY_CODE,
            CONTACT_NAME,
            CONTACT_EMAIL,
            EARLIEST_BENEFITS_START_DATE,
        ];
        let mut at: Vec<usize> = known.iter().filter_map(|&id| header.pos(id)).collect();
        at.extend(header.metadata.iter().map(|(_, pos)| *pos));
        at.sort_unstable();
        CoreColumns(at)
    }

    /// The fields' bytes into `out`, each after its length (so that no two
    /// different rows copy the same).
    fn copy(&self, rec: &Record, out: &mut Vec<u8>) {
        out.clear();
        for &pos in &self.0 {
            let field = rec.get(pos).unwrap_or_default();
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
        }
    }

    /// Whether `rec` spells its fields exactly as `copied` holds them.
    fn same(&self, rec: &Record, copied: &[u8]) -> bool {
        let mut rest = copied;
        for &pos in &self.0 {
            let field = rec.get(pos).unwrap_or_default();
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return false;
            };
            if u32::from_le_bytes(*len) as usize != field.len() || !tail.starts_with(field) {
                return false;
            }
            rest = &tail[field.len()..];
        }
        rest.is_empty()
    }
}

/// Read and validate employers.csv.
pub fn read_employers(path: &Path) -> Result<Employers, InputError> {
    let mut src = CsvSource::open(path)?;
    let (header, mut warnings) = read_header(&mut src, COLUMNS, REQUIRED)?;
    let file = src.path.clone();
    let mut rec = Record::new();
    let mut rows = 0u64;
    // Each employer's rows, in the order employers first appear, and where
    // each is. A file lists an employer's rows together, so a row is
    // usually the last employer's and needs no lookup: a search of a
    // 50,000-key tree per row was a tenth of reading the file.
    let mut valid: Vec<(EmployerRef, Rows)> = Vec::new();
    let mut where_is: FxHashMap<EmployerRef, usize> = FxHashMap::default();
    let mut rejected = BTreeSet::new();
    let mut rejections = Vec::new();
    let core = CoreColumns::new(&header);
    // The employer-level fields of the newest employer's first row, as
    // spelt (`CoreColumns::copy`), and where that employer is in `valid`.
    // Only the newest: a file lists an employer's rows together, and a
    // row of another employer is parsed in full, which is always right.
    let mut newest_core = Vec::new();
    let mut newest = None;
    while let Some(loc) = src.next_record(&mut rec)? {
        if is_blank(&rec) {
            continue;
        }
        rows += 1;
        let mut row = Row::new(&rec, &header, None);
        let shape = row.check_shape(&loc);
        let key = EmployerRef::check(row.raw(EMPLOYER_REF)).ok();
        let seen = |k: &str| match valid.last() {
            Some((last, _)) if last.as_str() == k => Some(valid.len() - 1),
            _ => where_is.get(k).copied(),
        };
        // A further row of an employer, its employer-level fields spelt
        // as on the employer's first row: only what it adds is parsed.
        let repeats = match (&shape, key) {
            (Ok(()), Some(k)) => {
                seen(k).filter(|&at| newest == Some(at) && core.same(&rec, &newest_core))
            }
            _ => None,
        };
        if let Some(at) = repeats {
            match parse_additions(row) {
                Ok((group, connection)) => valid[at].1.rows.push(Extra {
                    line: loc.line,
                    diff: None,
                    group,
                    connection,
                }),
                Err(p) => {
                    let k = valid[at].0.clone();
                    rejections.push(rejection(&file, loc.line, p, Some(&k)));
                    rejected.insert(k);
                }
            }
            continue;
        }
        let outcome = match shape {
            Err(p) => Err(p),
            Ok(()) => parse_row(row, loc.line),
        };
        match outcome {
            Ok(parsed) => {
                let Parsed {
                    employer_ref,
                    line,
                    core: fields,
                    group,
                    connection,
                } = parsed;
                let mut extra = Extra {
                    line,
                    diff: None,
                    group,
                    connection,
                };
                match seen(employer_ref) {
                    None => {
                        let key = checked(EmployerRef::parse(employer_ref));
                        where_is.insert(key.clone(), valid.len());
                        let mut rows = Vec::with_capacity(4);
                        rows.push(extra);
                        core.copy(&rec, &mut newest_core);
                        newest = Some(valid.len());
                        valid.push((
                            key,
                            Rows {
                                first_line: line,
                                core: fields.to_core(),
                                rows,
                            },
                        ));
                    }
                    Some(at) => {
                        let acc = &mut valid[at].1;
                        extra.diff = first_core_difference(&acc.core, &fields, &header);
                        acc.rows.push(extra);
                    }
                }
            }
            Err(p) => {
                let key = key.map(|k| checked(EmployerRef::parse(k)));
                rejections.push(rejection(&file, loc.line, p, key.as_ref()));
                if let Some(k) = key {
                    rejected.insert(k);
                }
            }
        }
    }
    if rows == 0 {
        warnings.push(no_data_rows(&file));
    }
    drop(where_is);
    // Sorted by ref, as the planner needs them (a file in ref order is
    // already sorted, which the sort sees in one pass).
    valid.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    let mut employers = Vec::with_capacity(valid.len());
    for (key, rows) in valid {
        if rejected.contains(&key) {
            // A bad row of this employer was already reported; its other
            // rows are dropped silently (the ref in `rejected` says why).
            continue;
        }
        match merge(&key, rows, &header) {
            Ok(e) => employers.push(e),
            Err(problems) => {
                rejections.extend(
                    problems
                        .into_iter()
                        .map(|(line, p)| rejection(&file, line, p, Some(&key))),
                );
                rejected.insert(key);
            }
        }
    }
    sort(&mut rejections);
    intern_group_names(&mut employers);
    let index = RefIndex::new(employers.iter().map(|e| e.employer_ref.as_str()));
    let mut group_start = Vec::with_capacity(employers.len() + 1);
    let mut group_names = Vec::new();
    for e in &employers {
        group_start.push(group_names.len() as u32);
        group_names.extend(e.groups.iter().map(|g| g.name.clone()));
    }
    group_start.push(group_names.len() as u32);
    let salts = employers
        .iter()
        .map(|e| {
            super::digest::employer_salt(
                e.employer_ref.as_str(),
                e.groups.iter().map(|g| g.name.as_str()),
            )
        })
        .collect();
    Ok(Employers {
        index,
        salts,
        group_masks: GroupMasks::new(&employers),
        refs: employers.iter().map(|e| e.employer_ref.clone()).collect(),
        group_names,
        group_start,
        employers,
        rejected,
        rejections,
        warnings,
        content_hash: src.hex_digest(),
        rows,
    })
}

/// One shared copy of each distinct group name across all employers.
/// Every employee row looks its groups up by name: with a copy per employer,
/// fifty thousand employers' names were scattered over the heap and each
/// comparison missed the cache (a tenth of a million-row plan); a few
/// shared names stay cached.
/// Then pin them, and the employers' refs, for the run (see
/// [`GroupName::pin`]).
fn intern_group_names(employers: &mut [Employer]) {
    let mut names: FxHashSet<GroupName> = FxHashSet::default();
    for e in employers.iter_mut() {
        e.employer_ref.pin();
        for g in e.groups.iter_mut() {
            match names.get(&g.name) {
                Some(n) => g.name = n.clone(),
                None => {
                    g.name.pin();
                    names.insert(g.name.clone());
                }
            }
        }
    }
}

fn rejection(file: &str, line: u64, p: Problem, key: Option<&EmployerRef>) -> Rejection {
    Rejection {
        file: file.to_owned(),
        line,
        column: p.column,
        rule: p.rule,
        message: p.message,
        key: key.map(|k| k.as_str().to_owned()),
    }
}

fn parse_row(mut row: Row<'_>, line: u64) -> Result<Parsed<'_>, Problem> {
    let employer_ref = row.required(EMPLOYER_REF, EmployerRef::check);
    let legal_name = row.required(LEGAL_NAME, Text::check);
    let registration_number = row.optional(REGISTRATION_NUMBER, Text::check);
    let address = row.address_fields(&ADDRESS);
    let contact_name = row.required(CONTACT_NAME, Text::check);
    let contact_email = row.required(CONTACT_EMAIL, Email::check);
    let earliest = row.optional(EARLIEST_BENEFITS_START_DATE, parse_date);
    let metadata = row.metadata_pairs();
    let group = group(&mut row);
    let connection = connection(&mut row);
    let problem = row.finish();
    let parsed = (|| {
        Some(Parsed {
            employer_ref: employer_ref?,
            line,
            core: CoreFields {
                legal_name: legal_name?,
                registration_number: registration_number?,
                address: address?,
                contact_name: contact_name?,
                contact_email: contact_email?,
                earliest_benefits_start_date: earliest?,
                metadata: metadata?,
            },
            group: group?,
            connection: connection?,
        })
    })();
    match (problem, parsed) {
        (None, Some(p)) => Ok(p),
        (Some(p), _) => Err(p),
        (None, None) => Err(unrecorded()),
    }
}

/// The problem of a row whose parse failed without recording one. Every
/// failed parse records a problem; this guards the invariant without
/// panicking on input.
fn unrecorded() -> Problem {
    Problem {
        pos: usize::MAX,
        column: None,
        rule: Rule::Malformed,
        message: "row could not be read".to_owned(),
    }
}

/// The group and connection of a row whose employer-level fields are
/// those of a row already found valid ([`CoreColumns::same`]).
fn parse_additions(
    mut row: Row<'_>,
) -> Result<(Option<GroupSpec>, Option<ConnectionSpec>), Problem> {
    let group = group(&mut row);
    let connection = connection(&mut row);
    match (row.finish(), group, connection) {
        (None, Some(g), Some(c)) => Ok((g, c)),
        (Some(p), _, _) => Err(p),
        (None, _, _) => Err(unrecorded()),
    }
}

/// The group a row declares: `Some(None)` for none, `None` if invalid.
fn group(row: &mut Row<'_>) -> Option<Option<GroupSpec>> {
    let name = row.optional(GROUP_NAME, GroupName::parse);
    let description = row.optional(GROUP_DESCRIPTION, Text::parse);
    match (name?, description?) {
        (Some(name), description) => Some(Some(GroupSpec { name, description })),
        (None, None) => Some(None),
        (None, Some(_)) => {
            row.fail(
                GROUP_NAME,
                Rule::Required,
                "must not be empty when group_description is set".to_owned(),
            );
            None
        }
    }
}

/// The Noyo connection a row declares: `Some(None)` for none, `None` if
/// invalid.
fn connection(row: &mut Row<'_>) -> Option<Option<ConnectionSpec>> {
    let carrier_id = row.optional(CARRIER_ID, CarrierId::parse);
    let carrier_group_id = row.optional(CARRIER_GROUP_ID, Text::parse);
    let federal_ein = row.optional(FEDERAL_EIN, Ein::parse);
    let broker_federal_ein = row.optional(BROKER_FEDERAL_EIN, Ein::parse);
    let broker_tin = row.optional(BROKER_TIN, Text::parse);
    let (carrier_id, carrier_group_id, federal_ein, broker_federal_ein, broker_tin) = (
        carrier_id?,
        carrier_group_id?,
        federal_ein?,
        broker_federal_ein?,
        broker_tin?,
    );
    match (carrier_id, carrier_group_id) {
        (Some(carrier_id), Some(carrier_group_id)) => Some(Some(ConnectionSpec {
            carrier_id,
            carrier_group_id,
            federal_ein,
            broker_federal_ein,
            broker_tin,
        })),
        (Some(_), None) => {
            row.fail(
                CARRIER_GROUP_ID,
                Rule::Required,
                "must not be empty when carrier_id is set (a Noyo connection needs both)"
                    .to_owned(),
            );
            None
        }
        (None, Some(_)) => {
            row.fail(
                CARRIER_ID,
                Rule::Required,
                "must not be empty when carrier_group_id is set (a Noyo connection needs both)"
                    .to_owned(),
            );
            None
        }
        (None, None) => {
            if federal_ein.is_some() || broker_federal_ein.is_some() || broker_tin.is_some() {
                row.fail(
                    CARRIER_ID,
                    Rule::Required,
                    "must not be empty when federal_ein, broker_federal_ein or broker_tin is \
                     set (they describe a Noyo connection)"
                        .to_owned(),
                );
                return None;
            }
            Some(None)
        }
    }
}

/// Merge the valid rows of one employer, or say why it is rejected: one
/// problem per affected row, with its line.
fn merge(key: &EmployerRef, rows: Rows, header: &Header) -> Result<Employer, Vec<(u64, Problem)>> {
    if let Some(problems) = conflicts(key, &rows, header) {
        return Err(problems);
    }
    let mut groups: Firsts<GroupName, GroupSpec> = Firsts::default();
    let mut connections: Firsts<CarrierId, ConnectionSpec> = Firsts::default();
    let mut problems = Vec::new();
    for row in rows.rows {
        // One problem per row: the one in the earliest column.
        let mut found: Option<Problem> = None;
        let mut keep = |p: Problem| {
            if found.as_ref().is_none_or(|f| p.pos < f.pos) {
                found = Some(p);
            }
        };
        if let Some(g) = row.group {
            match groups.first(&g.name, |g| &g.name) {
                Some((other, line)) if other.description != g.description => keep(Problem {
                    pos: header.pos(GROUP_DESCRIPTION).unwrap_or(usize::MAX),
                    column: Some(header.name(GROUP_DESCRIPTION).to_owned()),
                    rule: Rule::GroupConflict,
                    message: format!(
                        "group '{}' of employer '{key}' is declared on line {line} with a \
                         different description; give it one description",
                        g.name
                    ),
                }),
                Some(_) => {}
                None => groups.note(g, row.line),
            }
        }
        if let Some(c) = row.connection {
            match connections.first(&c.carrier_id, |c| &c.carrier_id) {
                Some((other, line)) if *other != c => {
                    let col = first_connection_difference(other, &c, header);
                    keep(Problem {
                        pos: header.pos(col).unwrap_or(usize::MAX),
                        column: Some(header.name(col).to_owned()),
                        rule: Rule::GroupConflict,
                        message: format!(
                            "carrier {} of employer '{key}' is declared on line {line} with \
                             different details; an employer has one connection per carrier",
                            c.carrier_id
                        ),
                    })
                }
                Some(_) => {}
                None => connections.note(c, row.line),
            }
        }
        if let Some(p) = found {
            problems.push((row.line, p));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut groups = groups.into_values();
    groups.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut connections = connections.into_values();
    connections.sort_unstable_by_key(|c| c.carrier_id);
    let core = rows.core;
    Ok(Employer {
        employer_ref: key.clone(),
        legal_name: core.legal_name,
        registration_number: core.registration_number,
        address: core.address,
        contact: core.contact,
        earliest_benefits_start_date: core.earliest_benefits_start_date,
        metadata: core.metadata,
        groups,
        connections,
        line: rows.first_line,
    })
}

/// The first row declaring each key (a group's name, a carrier) among one
/// employer's rows, in the order met. An employer declares a few, so they
/// are searched in a list: a map made a node and cloned every value for
/// each of 50,000 employers (a fifth of reading employers.csv). Past
/// [`Firsts::LINEAR`] keys an index takes over, so that an employer with
/// thousands of groups still costs time in proportion to its rows.
struct Firsts<K, V> {
    /// Each key's first value, with its line.
    found: Vec<(V, u64)>,
    /// Position in `found` by key, for the first `index.len()` entries;
    /// built only past [`Firsts::LINEAR`].
    index: FxHashMap<K, usize>,
}

impl<K, V> Default for Firsts<K, V> {
    fn default() -> Self {
        Firsts {
            found: Vec::new(),
            index: FxHashMap::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Firsts<K, V> {
    /// Keys searched for in the list before the index is built.
    const LINEAR: usize = 32;

    /// The first value noted with `key` (`key_of` gives a value's key),
    /// and its line.
    fn first(&mut self, key: &K, key_of: impl Fn(&V) -> &K) -> Option<&(V, u64)> {
        let at = if self.found.len() <= Self::LINEAR {
            self.found.iter().position(|(v, _)| key_of(v) == key)
        } else {
            for (i, (v, _)) in self.found.iter().enumerate().skip(self.index.len()) {
                self.index.insert(key_of(v).clone(), i);
            }
            self.index.get(key).copied()
        };
        at.map(|i| &self.found[i])
    }

    /// Note `value`, whose key [`Firsts::first`] did not find, from `line`.
    fn note(&mut self, value: V, line: u64) {
        self.found.push((value, line));
    }

    /// The values, in a list of their own size: they are kept for the
    /// whole run, and a `collect` would reuse the larger list they were
    /// found in (in place), 14 MB more for 50,000 employers.
    fn into_values(self) -> Vec<V> {
        let mut values = Vec::with_capacity(self.found.len());
        values.extend(self.found.into_iter().map(|(v, _)| v));
        values
    }
}

fn first_connection_difference(a: &ConnectionSpec, b: &ConnectionSpec, header: &Header) -> usize {
    [
        (CARRIER_GROUP_ID, a.carrier_group_id != b.carrier_group_id),
        (FEDERAL_EIN, a.federal_ein != b.federal_ein),
        (
            BROKER_FEDERAL_EIN,
            a.broker_federal_ein != b.broker_federal_ein,
        ),
        (BROKER_TIN, a.broker_tin != b.broker_tin),
    ]
    .into_iter()
    .filter(|(_, differs)| *differs)
    .map(|(id, _)| id)
    .min_by_key(|&id| header.pos(id).unwrap_or(usize::MAX))
    .unwrap_or(CARRIER_GROUP_ID)
}

/// If the employer's rows disagree, an `EmployerConflict` for every row:
/// rows that differ from the first row name it, the others name the first
/// row that differs (the whole employer is in doubt, so no row is kept
/// silently).
fn conflicts(key: &EmployerRef, rows: &Rows, header: &Header) -> Option<Vec<(u64, Problem)>> {
    let (witness, witness_col) = rows
        .rows
        .iter()
        .find_map(|r| r.diff.map(|pos| (r.line, pos)))?;
    let problems = rows
        .rows
        .iter()
        .map(|r| {
            let (pos, other) = match r.diff {
                Some(pos) => (pos, rows.first_line),
                None => (witness_col, witness),
            };
            let column = header.name_at(pos).to_owned();
            let message = format!(
                "'{column}' differs from line {other} of employer '{key}'; an employer's \
                 fields must be the same on each of its rows, so the employer is rejected"
            );
            (
                r.line,
                Problem {
                    pos,
                    column: Some(column),
                    rule: Rule::EmployerConflict,
                    message,
                },
            )
        })
        .collect();
    Some(problems)
}

/// Header position of the first employer-level column (in header order)
/// whose normalised value differs between two rows.
fn first_core_difference(a: &Core, b: &CoreFields, header: &Header) -> Option<usize> {
    let aa = a.address.fields();
    let ba = &b.address;
    let known = [
        (LEGAL_NAME, a.legal_name.as_str() != b.legal_name),
        (
            REGISTRATION_NUMBER,
            a.registration_number.as_ref().map(Text::as_str) != b.registration_number,
        ),
        (ADDRESS_LINE1, aa.line1 != ba.line1),
        (ADDRESS_LINE2, aa.line2 != ba.line2),
        (ADDRESS_LINE3, aa.line3 != ba.line3),
        (CITY, aa.city != ba.city),
        (STATE, aa.state != ba.state),
        (POSTAL_CODE, aa.postal_code != ba.postal_code),
        (COUNTRY_CODE, aa.country != ba.country),
        (CONTACT_NAME, a.contact.name.as_str() != b.contact_name),
        // Mail domains are case-insensitive and exports vary the case.
        (
            CONTACT_EMAIL,
            !a.contact
                .email
                .as_str()
                .eq_ignore_ascii_case(b.contact_email),
        ),
        (
            EARLIEST_BENEFITS_START_DATE,
            a.earliest_benefits_start_date != b.earliest_benefits_start_date,
        ),
    ];
    let known = known
        .into_iter()
        .filter(|(_, differs)| *differs)
        .filter_map(|(id, _)| header.pos(id));
    let meta = header
        .metadata
        .iter()
        .filter(|(k, _)| a.metadata.get(k) != b.metadata(k))
        .map(|(_, pos)| *pos);
    known.chain(meta).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEAD: &str = "employer_ref,legal_name,address_line1,city,state,postal_code,country_code,contact_name,contact_email,group_name,group_description,carrier_id,carrier_group_id,federal_ein";
    const CARRIER: &str = "8fac0992-933a-4743-8dab-0d606ef2569e";

    fn read(body: &str) -> Employers {
        read_with(HEAD, body)
    }

    fn read_with(head: &str, body: &str) -> Employers {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "{head}\n{body}").unwrap();
        read_employers(f.path()).unwrap()
    }

    fn rules(e: &Employers) -> Vec<(u64, Option<&str>, Rule)> {
        e.rejections
            .iter()
            .map(|r| (r.line, r.column.as_deref(), r.rule))
            .collect()
    }

    fn row(r: &str, extra: &str) -> String {
        format!("{r},Acme Ltd,1 High St,London,,E1 6AN,gb,Jo Bloggs,jo@example.com,{extra}\n")
    }

    #[test]
    fn rows_merge_into_one_employer_with_groups_and_connections() {
        let body = [
            row(
                "A",
                &format!("Health,Medical cover,{CARRIER},10000001,12-3456789"),
            ),
            row("A", "Dental,,,,"),
            row(
                "A",
                &format!("Health,Medical cover,{CARRIER},10000001,123456789"),
            ),
            row("B", ",,,,"),
        ]
        .concat();
        let e = read(&body);
        assert_eq!(rules(&e), vec![]);
        assert_eq!(e.rows, 4);
        let a = e.get("A").unwrap();
        let names: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["Dental", "Health"]);
        assert_eq!(a.connections.len(), 1);
        assert_eq!(
            a.connections[0].federal_ein.as_ref().unwrap().as_str(),
            "123456789"
        );
        assert_eq!(a.line, 2);
        let b = e.get("B").unwrap();
        assert!(b.groups.is_empty() && b.connections.is_empty());
    }

    /// An employer's rows need not be together, nor employers in ref
    /// order: rows join the employer they name wherever they are, a
    /// conflict names the employer's first line, and the employers come
    /// out sorted by ref.
    #[test]
    fn scattered_rows_join_their_employer_and_employers_come_out_sorted() {
        let together = [
            row("C", "Health,,,,"),
            row("C", "Dental,,,,"),
            row("B", "Vision,,,,"),
            row("A", "Life,,,,"),
            row("A", "Health,,,,"),
        ]
        .concat();
        let scattered = [
            row("C", "Health,,,,"),
            row("A", "Life,,,,"),
            row("B", "Vision,,,,"),
            row("C", "Dental,,,,"),
            row("A", "Health,,,,"),
        ]
        .concat();
        let names = |e: &Employers| -> Vec<(String, Vec<String>)> {
            e.employers
                .iter()
                .map(|x| {
                    let groups = x.groups.iter().map(|g| g.name.to_string()).collect();
                    (x.employer_ref.to_string(), groups)
                })
                .collect()
        };
        let (a, b) = (read(&together), read(&scattered));
        assert_eq!(rules(&a), vec![]);
        assert_eq!(rules(&b), vec![]);
        assert_eq!(names(&a), names(&b));
        let refs: Vec<String> = names(&b).into_iter().map(|(r, _)| r).collect();
        assert_eq!(refs, vec!["A", "B", "C"]);
        assert_eq!(b.get("C").unwrap().line, 2);
        assert_eq!(b.get("A").unwrap().line, 3);
        assert_eq!(b.position("B"), Some(1));

        // A later row of C, after other employers, that disagrees with
        // C's first row rejects every row of C and nothing else.
        let conflicting = [
            row("C", "Health,,,,"),
            row("A", "Life,,,,"),
            row("C", "Dental,,,,").replace("Acme Ltd", "Other Ltd"),
        ]
        .concat();
        let e = read(&conflicting);
        assert_eq!(
            rules(&e),
            vec![
                (2, Some("legal_name"), Rule::EmployerConflict),
                (4, Some("legal_name"), Rule::EmployerConflict),
            ]
        );
        assert!(e.get("C").is_none() && e.get("A").is_some());
    }

    /// A group's position among its employer's, by mask (a file with few
    /// distinct names) or by search (more than 64): each the position in
    /// the employer's sorted groups, `None` for a name it does not have.
    #[test]
    fn group_positions_by_mask_or_search_are_the_sorted_positions() {
        for distinct in [7, 64, 65, 90] {
            let mut body = String::new();
            for e in 0..12 {
                // Each employer a different subset, in no order.
                for g in (0..distinct).filter(|g| (g * 7 + e) % 5 < 2) {
                    body.push_str(&row(&format!("E{e}"), &format!("G{g:03},,,,")));
                }
            }
            let e = read(&body);
            assert_eq!(rules(&e), vec![]);
            assert_eq!(e.group_masks.is_some(), distinct <= 64);
            for at in 0..e.employers.len() as u32 {
                let names = e.group_names(at);
                assert!(!names.is_empty());
                for (i, n) in names.iter().enumerate() {
                    assert_eq!(e.group_position(at, n.as_str()), Some(i));
                }
                for g in 0..distinct + 2 {
                    let name = format!("G{g:03}");
                    let expected = names.iter().position(|n| n.as_str() == name);
                    assert_eq!(e.group_position(at, &name), expected, "{name}");
                }
                assert_eq!(e.group_position(at, "g000"), None);
            }
        }
    }

    #[test]
    fn disagreeing_rows_reject_every_row_of_the_employer() {
        let body = [
            row("A", "Health,,,,"),
            row("A", "Dental,,,,").replace("London", "Leeds"),
            row("A", "Vision,,,,"),
            row("B", ",,,,"),
        ]
        .concat();
        let e = read(&body);
        assert_eq!(
            rules(&e),
            vec![
                (2, Some("city"), Rule::EmployerConflict),
                (3, Some("city"), Rule::EmployerConflict),
                (4, Some("city"), Rule::EmployerConflict),
            ]
        );
        assert!(e.rejections[0].message.contains("line 3"));
        assert!(e.rejections[1].message.contains("line 2"));
        assert!(e.rejected.contains(&EmployerRef::parse("A").unwrap()));
        assert_eq!(e.employers.len(), 1);
    }

    #[test]
    fn normalised_values_agree() {
        let body = [
            row("A", "Health,,,,"),
            row("A", "Dental,,,,")
                .replace(",gb,", ",GB,")
                .replace("jo@example.com", "Jo@Example.com"),
        ]
        .concat();
        assert_eq!(rules(&read(&body)), vec![]);
    }

    /// A later row that spells the employer-level fields as the first
    /// row does is taken without parsing them again (`CoreColumns`): so
    /// every employer-level column, metadata too, must count. A row that
    /// changes any one of them is a conflict naming it; one that only
    /// spells them differently agrees.
    #[test]
    fn every_employer_level_column_is_compared() {
        let head = "employer_ref,legal_name,registration_number,address_line1,address_line2,\
                    address_line3,city,state,postal_code,country_code,contact_name,contact_email,\
                    earliest_benefits_start_date,group_name,group_description,carrier_id,\
                    carrier_group_id,federal_ein,broker_federal_ein,broker_tin,metadata.cost_center";
        let first = [
            "A",
            "Acme Ltd",
            "REG1",
            "1 High St",
            "Floor 2",
            "Suite 3",
            "Boston",
            "MA",
            "02110",
            "us",
            "Jo Bloggs",
            "jo@example.com",
            "2026-01-01",
            "Health",
            "",
            "",
            "",
            "",
            "",
            "",
            "CC1",
        ];
        let others = [
            (1, "Other Ltd"),
            (2, "REG2"),
            (3, "2 High St"),
            (4, "Floor 3"),
            (5, "Suite 4"),
            (6, "Salem"),
            (7, "NH"),
            (8, "03101"),
            (9, "ca"),
            (10, "Al Bloggs"),
            (11, "al@example.com"),
            (12, "2026-02-01"),
            (20, "CC2"),
        ];
        let line = |fields: &[&str], group: &str| {
            let mut f = fields.to_vec();
            f[13] = group;
            format!("{}\n", f.join(","))
        };
        let alone = read_with(head, &line(&first, "Health"));
        assert_eq!(rules(&alone), vec![]);
        let columns: Vec<&str> = head.split(',').collect();
        for (at, value) in others {
            let mut second = first;
            second[at] = value;
            let body = line(&first, "Health") + &line(&second, "Dental");
            let e = read_with(head, &body);
            let named = Some(columns[at]);
            assert_eq!(
                rules(&e),
                vec![
                    (2, named, Rule::EmployerConflict),
                    (3, named, Rule::EmployerConflict)
                ],
                "{}",
                columns[at]
            );
        }
        // The same values spelt alike, and spelt differently: both agree,
        // into the same employer.
        let mut respelt = first;
        respelt[9] = "US";
        respelt[11] = "Jo@Example.com";
        respelt[1] = " Acme Ltd ";
        for second in [first, respelt] {
            let body = line(&first, "Health") + &line(&second, "Dental");
            let e = read_with(head, &body);
            assert_eq!(rules(&e), vec![]);
            let (a, b) = (&e.employers[0], &alone.employers[0]);
            assert_eq!(a.legal_name, b.legal_name);
            assert_eq!(a.address, b.address);
            assert_eq!(a.metadata, b.metadata);
            assert_eq!(a.groups.len(), 2);
        }
    }

    #[test]
    fn group_and_carrier_conflicts() {
        let body = [
            row("A", "Health,Medical,,,"),
            row("A", "Health,Dental,,,"),
            row("B", &format!(",,{CARRIER},1,")),
            row("B", &format!(",,{CARRIER},2,")),
        ]
        .concat();
        let e = read(&body);
        assert_eq!(
            rules(&e),
            vec![
                (3, Some("group_description"), Rule::GroupConflict),
                (5, Some("carrier_group_id"), Rule::GroupConflict),
            ]
        );
        assert!(e.employers.is_empty());
        assert_eq!(e.rejected.len(), 2);
    }

    /// An employer with more groups and carriers than are searched in a
    /// list: repeats agree or conflict with the first declaration as with
    /// a few, and the groups and carriers come out sorted.
    #[test]
    fn many_groups_and_carriers_merge_as_a_few_do() {
        let carrier = |i: usize| format!("8fac0992-933a-4743-8dab-{i:012x}");
        let n = 3 * Firsts::<GroupName, GroupSpec>::LINEAR;
        // Declared in descending order, each twice, the carriers' rows
        // after the groups'.
        let mut body = String::new();
        for i in (0..n).rev() {
            body.push_str(&row("A", &format!("G{i:03},cover {i},,,")));
        }
        for i in (0..n).rev() {
            body.push_str(&row("A", &format!(",,{},{i},", carrier(i))));
        }
        for i in 0..n {
            body.push_str(&row("A", &format!("G{i:03},cover {i},{},{i},", carrier(i))));
        }
        let e = read(&body);
        assert_eq!(rules(&e), vec![]);
        let a = e.get("A").unwrap();
        let names: Vec<String> = a.groups.iter().map(|g| g.name.to_string()).collect();
        let want: Vec<String> = (0..n).map(|i| format!("G{i:03}")).collect();
        assert_eq!(names, want);
        let carriers: Vec<String> = a
            .connections
            .iter()
            .map(|c| c.carrier_id.to_string())
            .collect();
        assert_eq!(carriers, (0..n).map(carrier).collect::<Vec<_>>());

        // One late row disagrees on a group found through the index, one
        // on a carrier: those rows, and only those, are named.
        let late = 2 * n + 2;
        body.push_str(&row("A", "G005,other cover,,,"));
        body.push_str(&row("A", &format!(",,{},999,", carrier(7))));
        let e = read(&body);
        assert_eq!(
            rules(&e),
            vec![
                (
                    late as u64 + n as u64,
                    Some("group_description"),
                    Rule::GroupConflict
                ),
                (
                    late as u64 + n as u64 + 1,
                    Some("carrier_group_id"),
                    Rule::GroupConflict
                ),
            ]
        );
    }

    #[test]
    fn half_a_connection_is_required_on_the_missing_column() {
        let body = [
            row("A", &format!(",,{CARRIER},,")),
            row("B", ",,,1,"),
            row("C", ",,,,123456789"),
            row("D", ",Desc,,,"),
        ]
        .concat();
        assert_eq!(
            rules(&read(&body)),
            vec![
                (2, Some("carrier_group_id"), Rule::Required),
                (3, Some("carrier_id"), Rule::Required),
                (4, Some("carrier_id"), Rule::Required),
                (5, Some("group_name"), Rule::Required),
            ]
        );
    }

    #[test]
    fn one_bad_row_rejects_the_employer_with_one_rejection() {
        let body = [
            row("A", "Health,,,,"),
            row("A", &format!("Dental,,{CARRIER},1,12345")),
            row("A", "Vision,,,,"),
        ]
        .concat();
        let e = read(&body);
        assert_eq!(rules(&e), vec![(3, Some("federal_ein"), Rule::Ein)]);
        assert_eq!(e.rejections[0].key.as_deref(), Some("A"));
        assert!(e.employers.is_empty());
    }

    #[test]
    fn state_required_for_us_and_ca() {
        let body = [
            row("A", ",,,,").replace(",gb,", ",us,"),
            row("B", ",,,,").replace(",,E1 6AN,gb,", ",ON,M5V 2T6,ca,"),
        ]
        .concat();
        assert_eq!(
            rules(&read(&body)),
            vec![(2, Some("state"), Rule::StateRequired)]
        );
    }
}

#[cfg(test)]
mod address_layout {
    use super::super::row::ADDRESS_COLUMNS;
    use super::*;

    #[test]
    fn address_columns_are_contiguous_in_order() {
        assert_eq!(COLUMNS[ADDRESS_LINE1..ADDRESS_LINE1 + 7], ADDRESS_COLUMNS);
        assert_eq!(ADDRESS.country, COUNTRY_CODE);
        assert_eq!(ADDRESS.city, CITY);
    }
}
