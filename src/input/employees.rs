//! employees.csv: one row per employee, streamed. A migration file can hold
//! a million rows, so each valid employee goes to the caller's sink as soon
//! as it is read; only the keys seen so far are kept (for duplicates).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::record::Record;
use chrono::NaiveDate;

use super::ahead::{self, Ahead};
use super::digest::{salted, RowDigester};
use super::first_rows::{FirstRows, Occurrence};
use super::header::Header;
use super::parallel;
use super::reader::{CsvSource, Located, RawRecord};
use super::rejection::{sort, Rejection};
use super::row::{checked, fits_header, AddressCols, Problem, Row};
use super::{no_data_rows, read_header, Employers, InputError, InputWarning};
use crate::model::{
    epoch_1900, parse_date, trim, AddressFields, CountryCode, E164Phone, Email, Employee,
    EmployeeFields, EmployeeRef, EmployerRef, GroupName, GroupSet, Metadata, MetadataFields, Rule,
    SexAtBirth, TaxId, Text,
};

const EMPLOYEE_REF: usize = 0;
const EMPLOYER_REF: usize = 1;
const FIRST_NAME: usize = 2;
const LAST_NAME: usize = 3;
const EMAIL: usize = 4;
const PHONE_NUMBER: usize = 5;
const DATE_OF_BIRTH: usize = 6;
const START_ON: usize = 7;
const SEX_AT_BIRTH: usize = 8;
const NATIONAL_TAX_ID: usize = 9;
const ADDRESS_LINE1: usize = 10;
const CITY: usize = 13;
const POSTAL_CODE: usize = 15;
const COUNTRY_CODE: usize = 16;
const NATIONALITY: usize = 17;
const END_ON: usize = 18;
const GROUPS: usize = 19;

pub(crate) const COLUMNS: &[&str] = &[
    "employee_ref",
    "employer_ref",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "date_of_birth",
    "start_on",
    "sex_at_birth",
    "national_tax_id",
    "address_line1",
    "address_line2",
    "address_line3",
    "city",
    "state",
    "postal_code",
    "country_code",
    "nationality",
    "end_on",
    "groups",
];

const REQUIRED: &[usize] = &[
    EMPLOYEE_REF,
    EMPLOYER_REF,
    FIRST_NAME,
    LAST_NAME,
    EMAIL,
    PHONE_NUMBER,
    DATE_OF_BIRTH,
    START_ON,
    SEX_AT_BIRTH,
    NATIONAL_TAX_ID,
    ADDRESS_LINE1,
    CITY,
    POSTAL_CODE,
    COUNTRY_CODE,
];

const ADDRESS: AddressCols = AddressCols::starting_at(ADDRESS_LINE1);

/// What reading employees.csv found besides the employees themselves.
#[derive(Debug)]
pub struct EmployeesSummary {
    /// Sorted by (file, line, column).
    pub rejections: Vec<Rejection>,
    pub warnings: Vec<InputWarning>,
    /// blake3 (hex) of the raw file bytes.
    pub content_hash: String,
    /// Data rows read (blank lines not counted).
    pub rows: u64,
    /// Refs that appeared more than once although their first row was valid
    /// and already handed to the sink: the caller must drop those employees.
    pub duplicates: BTreeSet<EmployeeRef>,
    /// Whether the rows after a line near the middle were read ahead on a
    /// helper thread (`input::ahead`): it changes nothing but speed.
    pub read_ahead: bool,
}

/// Read and validate employees.csv, handing each valid employee to `sink`.
pub fn read_employees(
    path: &Path,
    employers: &Employers,
    sink: impl FnMut(Employee),
) -> Result<EmployeesSummary, InputError> {
    read_employees_as_of(path, employers, chrono::Local::now().date_naive(), sink)
}

/// [`read_employees`] with "today" given, so date-of-birth checks are
/// reproducible in tests.
pub fn read_employees_as_of(
    path: &Path,
    employers: &Employers,
    today: NaiveDate,
    mut sink: impl FnMut(Employee),
) -> Result<EmployeesSummary, InputError> {
    let make = |r: EmployeeRecord<'_>| r.to_employee();
    read_employee_rows(path, employers, today, None, make, |s| {
        if let Streamed::Record(e) = s {
            sink(e)
        }
    })
}

/// The synced employees as the reader needs them: to find which rows the
/// state promises need nothing (see `input::digest`), and to track the
/// refs it has seen by position instead of in a map of its own.
pub trait Synced {
    /// How many synced employees there are (positions are below this).
    fn count(&self) -> usize;
    /// Synced employee `key`, if there is one. `next` is the caller's
    /// own guess of where it is, updated to where the next one is likely
    /// to be (just after it, in an export in the state's order).
    fn find(&self, key: &str, next: &mut u32) -> Option<SyncedRow>;
}

/// A synced employee as the reader finds it.
#[derive(Debug, Clone, Copy)]
pub struct SyncedRow {
    /// Its position in the state.
    pub at: u32,
    /// The digest of the row an apply last found nothing to do for (0:
    /// none).
    pub digest: u64,
    /// The row-digest salt ([`Employers::salt_at`]) of the employer the
    /// state has the employee under, if the employers file has it and the
    /// state numbered it; `None` makes the reader find the employer by
    /// the row's ref. Either serves: the digest covers the row's own
    /// employer_ref, so a row naming another employer than the state's
    /// cannot match a digest recorded under the state's.
    pub salt: Option<u64>,
}

/// What the reader is told of the state.
#[derive(Clone, Copy)]
pub struct Known<'s> {
    pub employees: &'s (dyn Synced + Sync),
    /// The state's fingerprint seed, part of every row digest.
    pub seed: u64,
    /// Whether every valid row of a synced employee carries its digest
    /// (apply records them); otherwise a digest is computed only to compare.
    pub digest_all: bool,
}

/// A row as the reader hands it over, in file order among the records.
pub enum Streamed<T> {
    /// A valid row, as the caller's `make` turned it.
    Record(T),
    /// The synced employee at this position, whose row is byte for byte
    /// the one an apply last found nothing to do for: not validated again,
    /// and planned as nothing. (Handed over as soon as it is read, possibly
    /// before records from earlier lines.)
    Unchanged(u32),
}

/// What the reading thread notes of a row it hands to a checking thread.
struct Noted {
    loc: Located,
    /// The position of the synced employee its employee_ref (as written,
    /// trimmed) names.
    synced: Option<u32>,
    /// The row's digest, if the reader computed it.
    digest: Option<Salted>,
    /// The hash of the row's raw bytes ([`RowDigester::raw`]), for a synced
    /// employee's row read with [`Known::digest_all`]: its digest under
    /// any employer.
    raw: Option<u64>,
    /// Whether the row is the first with its ref.
    occurrence: Occurrence,
}

/// A row's digest and the salt it was computed with: the state's
/// employer's, which is not the row's own for a row that moved.
#[derive(Clone, Copy)]
struct Salted {
    digest: u64,
    salt: u64,
}

/// A row as a checking thread leaves it, for the file-order pass.
enum Checked<T> {
    /// Fields not in their columns: nothing else was checked, and the row
    /// takes no part in the duplicate check. With the row's ref if valid.
    Misshapen(Problem, Option<String>),
    /// Valid so far (duplicates are decided in file order), made by the
    /// caller's `make`.
    Valid(T),
    /// Invalid: the problem in its earliest column, and the row's ref if
    /// valid (rejections name it).
    Invalid(Option<Problem>, Option<String>),
}

/// [`read_employees_as_of`] against what `known` says of the state: rows
/// it vouches for come as [`Streamed::Unchanged`], and each record carries
/// its employee's position in the state. Each valid row is turned into
/// the caller's value by `make` on one of several checking threads
/// (`input::parallel`), and handed to `sink` on this one.
pub fn read_employee_rows<T: Send>(
    path: &Path,
    employers: &Employers,
    today: NaiveDate,
    known: Option<Known<'_>>,
    make: impl Fn(EmployeeRecord<'_>) -> T + Sync,
    sink: impl FnMut(Streamed<T>),
) -> Result<EmployeesSummary, InputError> {
    let threads = parallel::threads();
    read_rows_checked_on(
        threads,
        Split::Auto,
        path,
        employers,
        today,
        known,
        make,
        sink,
    )
}

/// Whether to read the rows after a seam on a helper thread (`ahead`).
#[derive(Debug, Clone, Copy)]
enum Split {
    /// For a large file read against a state: rows the state vouches for
    /// are cheap enough to check that reading them is the bottleneck.
    Auto,
    /// At this fraction of the file's bytes, whatever its size (tests).
    #[cfg(test)]
    At(u64, u64),
}

/// What the state says of a row, looked up before anything else
/// ([`look_up`]).
#[derive(Clone, Copy, Default)]
struct Looked {
    /// The synced employee its ref (as written, trimmed) names.
    synced: Option<u32>,
    /// The row's digest, if it was computed.
    digest: Option<Salted>,
    /// The hash of its raw bytes, if it was computed.
    raw: Option<u64>,
    /// The digest an apply recorded for that employee (0: none).
    recorded: u64,
}

impl Looked {
    /// The synced employee whose recorded digest the row's bytes match:
    /// unchanged, if this is that employee's first row.
    fn matching(&self) -> Option<u32> {
        let matches = self.recorded != 0 && self.digest.map(|s| s.digest) == Some(self.recorded);
        self.synced.filter(|_| matches)
    }
}

/// The row's state: the synced employee its ref names, and the row's
/// digest if it is one the state may vouch for. `compute` says whether to
/// digest a synced employee's row whose digest was recorded (the reader
/// asks whether the row is the employee's first; a row read ahead cannot
/// tell, so always). The refs are read from the raw bytes of a record
/// without quotes, unsplit; a quoted one's from its parse, `rec`.
#[allow(clippy::too_many_arguments)]
fn look_up(
    raw: RawRecord<'_>,
    rec: Option<&Record>,
    header: &Header,
    employers: &Employers,
    known: Known<'_>,
    digester: &RowDigester,
    next: &mut u32,
    compute: impl FnOnce(u32) -> bool,
) -> Looked {
    let field = |id: usize| {
        let pos = header.pos(id)?;
        let b = match rec {
            Some(rec) => rec.get(pos),
            None => raw.field(pos),
        }?;
        std::str::from_utf8(b).ok().map(trim)
    };
    let Some(found) = field(EMPLOYEE_REF).and_then(|r| known.employees.find(r, next)) else {
        return Looked::default();
    };
    let mut looked = Looked {
        synced: Some(found.at),
        recorded: found.digest,
        ..Looked::default()
    };
    if (found.digest != 0 && compute(found.at)) || known.digest_all {
        let hash = digester.raw(raw.hash());
        looked.raw = Some(hash);
        // A row whose employer is not in the file has no digest.
        let salt = found.salt.or_else(|| {
            field(EMPLOYER_REF)
                .and_then(|r| employers.position(r))
                .map(|e| employers.salt_at(e))
        });
        looked.digest = salt.map(|salt| Salted {
            digest: salted(hash, salt),
            salt,
        });
    }
    looked
}

/// [`read_employee_rows`] with `threads` checking threads (0: checked on
/// this one), reading ahead as `split` says.
#[allow(clippy::too_many_arguments)]
fn read_rows_checked_on<T: Send>(
    threads: usize,
    split: Split,
    path: &Path,
    employers: &Employers,
    today: NaiveDate,
    known: Option<Known<'_>>,
    make: impl Fn(EmployeeRecord<'_>) -> T + Sync,
    mut sink: impl FnMut(Streamed<T>),
) -> Result<EmployeesSummary, InputError> {
    let mut src = CsvSource::open(path)?;
    let (header, mut warnings) = read_header(&mut src, COLUMNS, REQUIRED)?;
    let known = known.filter(|k| k.employees.count() > 0);
    let mut order = FileOrder::new(&src, &header, known);
    let check = |rec: &Record, noted: &Noted, ahead: Option<&Record>| {
        if let Some(ahead) = ahead {
            prefetch_employer(ahead, &header, employers);
        }
        check_row(rec, noted, &header, employers, today, known, &make)
    };
    let digester = known.map(|k| RowDigester::new(k.seed, &header));
    // Where the rows are read ahead from, if they are (see `ahead`).
    let seam = known.and_then(|_| match split {
        Split::Auto if src.len >= ahead::MIN_LEN => ahead::seam(&src, path, (9, 20)),
        Split::Auto => None,
        #[cfg(test)]
        Split::At(n, d) => ahead::seam(&src, path, (n, d)),
    });
    let mut rows = 0u64;
    let header = &header;
    let read_ahead = std::thread::scope(|scope| {
        let ahead = seam.map(|at| {
            let (tx, rx) = ahead::channel();
            let k = known.expect("rows are read ahead only against a state");
            let from = at + src.skipped();
            std::thread::Builder::new()
                .name("read-ahead".into())
                .spawn_scoped(scope, move || {
                    let digester = RowDigester::new(k.seed, header);
                    let mut next = 0;
                    let look = |raw: RawRecord<'_>, rec: Option<&Record>| {
                        let looked =
                            look_up(raw, rec, header, employers, k, &digester, &mut next, |_| {
                                true
                            });
                        (looked, looked.matching())
                    };
                    ahead::read_ahead(path, from, look, tx);
                })
                .map(|_| (at, rx))
                .map_err(|e| InputError::Io {
                    path: src.path.clone(),
                    source: e,
                })
        });
        let ahead = ahead.transpose()?;
        read_rows(
            threads,
            &mut src,
            ahead,
            path,
            header,
            employers,
            known,
            &mut order,
            digester.as_ref(),
            &check,
            &mut rows,
            &mut sink,
        )
    })?;
    if rows == 0 {
        warnings.push(no_data_rows(&order.file));
    }
    let (rejections, duplicates) = order.finish();
    Ok(EmployeesSummary {
        rejections,
        warnings,
        content_hash: src.hex_digest(),
        rows,
        duplicates,
        read_ahead,
    })
}

/// The reading loop of [`read_rows_checked_on`]: each row is looked up in
/// the state, handed over if unchanged, else noted for the duplicate check
/// and sent to be checked; from the seam on (if `ahead` reached it), the
/// helper's rows are taken instead of read.
#[allow(clippy::too_many_arguments)]
fn read_rows<T: Send>(
    threads: usize,
    src: &mut CsvSource,
    mut ahead: Option<(u64, std::sync::mpsc::Receiver<ahead::Batch<Looked>>)>,
    path: &Path,
    header: &Header,
    employers: &Employers,
    known: Option<Known<'_>>,
    order: &mut FileOrder<'_>,
    digester: Option<&RowDigester>,
    check: parallel::Check<'_, Noted, Checked<T>>,
    rows: &mut u64,
    sink: &mut impl FnMut(Streamed<T>),
) -> Result<bool, InputError> {
    parallel::check_in_order(threads, check, |feed| {
        let mut next = 0;
        let mut took_ahead = false;
        loop {
            if let Some((at, _)) = &ahead {
                if src.offset() == *at {
                    let (at, rx) = ahead.take().expect("just seen");
                    let base = src.lines_before(at);
                    for batch in rx {
                        for row in batch? {
                            *rows += 1;
                            let (loc, noted) = match row {
                                Ahead::Matching { at, loc, offset } => {
                                    let loc = loc.after(base);
                                    if order.firsts.synced_is_new(at) {
                                        order.firsts.unchanged(at, loc.line);
                                        sink(Streamed::Unchanged(at));
                                        continue;
                                    }
                                    // A later row of an employee already
                                    // seen: checked as the reader would
                                    // (its digest is computed again if
                                    // apply records it).
                                    let raw = ahead::read_again(path, offset, feed.slot())?;
                                    let synced = Some(at);
                                    let raw = match (known, digester) {
                                        (Some(k), Some(d)) if k.digest_all => Some(d.raw(raw)),
                                        _ => None,
                                    };
                                    (
                                        loc,
                                        Looked {
                                            synced,
                                            raw,
                                            ..Looked::default()
                                        },
                                    )
                                }
                                Ahead::Row(row) => {
                                    let (rec, loc, note) = *row;
                                    *feed.slot() = rec;
                                    (loc.after(base), note)
                                }
                            };
                            let noted = Noted {
                                loc,
                                synced: noted.synced,
                                digest: noted.digest,
                                raw: noted.raw,
                                occurrence: Occurrence::Unkeyed,
                            };
                            keep(feed, order, header, noted, sink);
                        }
                    }
                    src.hash_rest()?;
                    took_ahead = true;
                    break;
                }
                if src.offset() > *at {
                    // The seam fell inside a record: the helper's rows are
                    // not records of this file. Dropping the channel stops
                    // it.
                    ahead = None;
                }
            }
            let Some(loc) = src.next_raw()? else {
                break;
            };
            // First, the row the state vouches for: found by its two refs
            // as written, it needs no other look (its digest covers its
            // shape: a row with other fields, or another number of them,
            // has other bytes). A row without quotes is looked up before
            // it is split into fields, and only split if it needs more.
            // Only a ref's first row can be taken as unchanged (a later
            // one is a duplicate). The digest, once computed, serves the
            // full check too.
            let firsts = &order.firsts;
            let unchanged = |l: &Looked| l.matching().filter(|&at| firsts.synced_is_new(at));
            let look = |raw: RawRecord<'_>, rec: Option<&Record>| match (known, digester) {
                (Some(k), Some(d)) => look_up(raw, rec, header, employers, k, d, &mut next, |at| {
                    firsts.synced_is_new(at)
                }),
                _ => Looked::default(),
            };
            let Some(looked) = src.look_then_split(feed.slot(), look, |l| unchanged(l).is_some())
            else {
                continue;
            };
            *rows += 1;
            if let Some(at) = unchanged(&looked) {
                order.firsts.unchanged(at, loc.line);
                sink(Streamed::Unchanged(at));
                continue;
            }
            let noted = Noted {
                loc,
                synced: looked.synced,
                digest: looked.digest,
                raw: looked.raw,
                occurrence: Occurrence::Unkeyed,
            };
            keep(feed, order, header, noted, sink);
        }
        feed.finish(&mut |n, c| {
            if let Some(v) = order.settle(n, c) {
                sink(Streamed::Record(v));
            }
        });
        Ok::<_, InputError>(took_ahead)
    })
}

/// Send the row in the feed's slot to be checked, noting it first for the
/// duplicate check if it fits the header and has a valid ref (while the row
/// is at hand).
fn keep<T: Send>(
    feed: &mut parallel::Feed<'_, Noted, Checked<T>>,
    order: &mut FileOrder<'_>,
    header: &Header,
    mut noted: Noted,
    sink: &mut impl FnMut(Streamed<T>),
) {
    let rec = feed.slot();
    let raw_ref = rec
        .get(header.pos(EMPLOYEE_REF).unwrap_or(usize::MAX))
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(trim);
    if let Some(r) = raw_ref.filter(|r| EmployeeRef::check(r).is_ok()) {
        if fits_header(rec, header, &noted.loc) {
            noted.occurrence = order.firsts.note(r, noted.synced, noted.loc.line);
        }
    }
    feed.push(noted, &mut |n, c| {
        if let Some(v) = order.settle(n, c) {
            sink(Streamed::Record(v));
        }
    });
}

/// Start fetching the employers' index slot of the employer a row names:
/// the rows name their employers at random, and a slot asked for a few
/// rows before its own row is checked is in the cache by then.
fn prefetch_employer(rec: &Record, header: &Header, employers: &Employers) {
    let field = header.pos(EMPLOYER_REF).and_then(|pos| rec.get(pos));
    if let Some(Ok(text)) = field.map(std::str::from_utf8) {
        employers.prefetch_position(trim(text));
    }
}

/// Validate one row on a checking thread: everything but the duplicate
/// check, which needs the rows before it.
fn check_row<T>(
    rec: &Record,
    noted: &Noted,
    header: &Header,
    employers: &Employers,
    today: NaiveDate,
    known: Option<Known<'_>>,
    make: &impl Fn(EmployeeRecord<'_>) -> T,
) -> Checked<T> {
    let mut row = Row::new(rec, header, Some(NATIONAL_TAX_ID));
    // The row's ref if it is a valid one: rejections name it.
    let key = |row: &Row<'_>| {
        EmployeeRef::check(row.raw(EMPLOYEE_REF))
            .ok()
            .map(str::to_owned)
    };
    if let Err(p) = row.check_shape(&noted.loc) {
        return Checked::Misshapen(p, key(&row));
    }
    let parsed = parse_row(&mut row, employers, today, noted.loc.line);
    match (row.has_problem(), parsed) {
        (false, Some(mut record)) => {
            // The reader looked the ref up as written; a valid ref is that
            // text.
            record.synced = noted.synced;
            if let (Some(k), Some(_)) = (known, noted.synced) {
                if k.digest_all {
                    // The digest recorded is under the row's own employer:
                    // one the reader took from the state's, for a row that
                    // moved employer, is computed again.
                    let salt = employers.salt_at(record.employer);
                    record.digest = match (noted.digest, noted.raw) {
                        (Some(s), _) if s.salt == salt => s.digest,
                        (_, Some(raw)) => salted(raw, salt),
                        // Never for a synced row (the reader hashes every
                        // one when digests are recorded); no digest only
                        // costs the next run a full read of the row.
                        (_, None) => 0,
                    };
                }
            }
            Checked::Valid(make(record))
        }
        (_, _) => {
            let key = key(&row);
            Checked::Invalid(row.finish(), key)
        }
    }
}

/// The file-order pass over checked rows: duplicate refs, rejections.
struct FileOrder<'h> {
    file: String,
    header: &'h Header,
    /// The first row of each ref, noted by the reader as it reads.
    firsts: FirstRows,
    /// First occurrences already streamed, by line: (ref, line that
    /// repeats it).
    late: BTreeMap<u64, (String, u64)>,
    rejections: Vec<Rejection>,
}

impl<'h> FileOrder<'h> {
    fn new(src: &CsvSource, header: &'h Header, known: Option<Known<'_>>) -> FileOrder<'h> {
        // Sized up front from the file (an employee row is rarely under
        // 128 bytes): growing a million-entry map rehashed it twenty times.
        let others = match known {
            None => usize::try_from(src.len / 128).unwrap_or(0),
            Some(_) => 0,
        };
        FileOrder {
            file: src.path.clone(),
            header,
            firsts: FirstRows::new(known.map_or(0, |k| k.employees.count()), others),
            late: BTreeMap::new(),
            rejections: Vec::new(),
        }
    }

    /// Settle a checked row in file order: the value to hand over, or
    /// `None` if the row is rejected (recorded here).
    fn settle<T>(&mut self, noted: Noted, checked: Checked<T>) -> Option<T> {
        let line = noted.loc.line;
        let (mut problem, value, key) = match checked {
            Checked::Misshapen(p, key) => {
                self.rejections.push(rejection(&self.file, line, p, key));
                return None;
            }
            Checked::Valid(v) => (None, Some(v), None),
            Checked::Invalid(p, key) => (p, None, key),
        };
        let key = match noted.occurrence {
            Occurrence::Again(first, k) => {
                let first = self.firsts.get(first);
                let message = format!(
                    "employee_ref '{k}' also appears on line {}; every row with this \
                     ref is rejected until it is unique",
                    first.line()
                );
                let p = Problem::in_column(self.header, EMPLOYEE_REF, Rule::DuplicateKey, message);
                Problem::keep_earliest(&mut problem, p);
                if first.streamed() && !self.late.contains_key(&first.line()) {
                    self.late.insert(first.line(), (k.to_string(), line));
                }
                Some(k.into())
            }
            Occurrence::First(slot) if problem.is_none() && value.is_some() => {
                self.firsts.streamed(slot);
                key
            }
            _ => key,
        };
        if problem.is_none() && value.is_some() {
            return value;
        }
        let p = problem.unwrap_or_else(unexplained);
        self.rejections.push(rejection(&self.file, line, p, key));
        None
    }

    /// The rejections, sorted, and the refs whose first row went through
    /// although a later row repeats them.
    fn finish(mut self) -> (Vec<Rejection>, BTreeSet<EmployeeRef>) {
        let mut duplicates = BTreeSet::new();
        for (line, (k, again)) in std::mem::take(&mut self.late) {
            self.rejections.push(Rejection {
                file: self.file.clone(),
                line,
                column: Some(self.header.name(EMPLOYEE_REF).to_owned()),
                rule: Rule::DuplicateKey,
                message: format!(
                    "employee_ref '{k}' appears again on line {again}; every row with this ref \
                     is rejected until it is unique"
                ),
                key: Some(k.clone()),
            });
            // Only valid refs are noted as first rows.
            if let Ok(r) = EmployeeRef::parse(&k) {
                duplicates.insert(r);
            }
        }
        sort(&mut self.rejections);
        (self.rejections, duplicates)
    }
}

/// Every failed parse records a problem; this keeps that invariant from
/// ever becoming a panic on input.
fn unexplained() -> Problem {
    Problem {
        pos: usize::MAX,
        column: None,
        rule: Rule::Malformed,
        message: "row could not be read".to_owned(),
    }
}

fn rejection(file: &str, line: u64, p: Problem, key: Option<String>) -> Rejection {
    Rejection {
        file: file.to_owned(),
        line,
        column: p.column,
        rule: p.rule,
        message: p.message,
        key,
    }
}

/// A valid employee row, its values borrowed from the record being read:
/// what planning needs is here without a copy, and
/// [`EmployeeRecord::to_employee`] makes the owned [`Employee`] apply needs.
pub struct EmployeeRecord<'a> {
    /// The employer's position in `Employers::employers`.
    pub employer: u32,
    pub employee_ref: EmployeeRef,
    /// Borrowed: cloning the shared ref read its count, a cache miss on a
    /// string written among the employers' other fields, for every row (a
    /// sixth of the checking threads' time), and planning needs only
    /// `employer`.
    pub employer_ref: &'a EmployerRef,
    pub start_on: NaiveDate,
    pub end_on: Option<NaiveDate>,
    /// Groups of the employee's employer, by position in its groups.
    pub groups: GroupSet,
    /// The employer's group names, by position.
    group_names: &'a [GroupName],
    pub line: u64,
    /// The employee's position in the state, if synced (only when read
    /// with [`Known`]).
    pub synced: Option<u32>,
    /// The row's digest, for a synced employee read with
    /// [`Known::digest_all`]; 0 otherwise.
    pub digest: u64,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    phone: &'a str,
    date_of_birth: NaiveDate,
    sex_at_birth: SexAtBirth,
    national_tax_id: &'a str,
    home_address: AddressFields<'a>,
    nationality: Option<CountryCode>,
    metadata: Vec<(&'a str, &'a str)>,
}

impl EmployeeRecord<'_> {
    /// The values its fingerprint covers.
    pub fn fields(&self) -> EmployeeFields<'_> {
        EmployeeFields {
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            phone: self.phone,
            date_of_birth: self.date_of_birth,
            start_on: self.start_on,
            sex_at_birth: self.sex_at_birth,
            national_tax_id: self.national_tax_id,
            home_address: self.home_address,
            nationality: self.nationality,
            metadata: MetadataFields::Checked(&self.metadata),
        }
    }

    /// The owned employee (every value was checked when the row was read).
    pub fn to_employee(&self) -> Employee {
        Employee {
            employee_ref: self.employee_ref.clone(),
            employer_ref: self.employer_ref.clone(),
            first_name: checked(Text::parse(self.first_name)),
            last_name: checked(Text::parse(self.last_name)),
            email: checked(Email::parse(self.email)),
            phone: checked(E164Phone::parse(self.phone)),
            date_of_birth: self.date_of_birth,
            start_on: self.start_on,
            sex_at_birth: self.sex_at_birth,
            national_tax_id: checked(TaxId::parse(self.national_tax_id)),
            home_address: self.home_address.to_address(),
            nationality: self.nationality,
            end_on: self.end_on,
            groups: self
                .groups
                .iter()
                .map(|at| self.group_names[at].clone())
                .collect(),
            metadata: Metadata::from_checked(&self.metadata),
            line: self.line,
        }
    }
}

fn parse_row<'a>(
    row: &mut Row<'a>,
    employers: &'a Employers,
    today: NaiveDate,
    line: u64,
) -> Option<EmployeeRecord<'a>> {
    let employee_ref = row.required(EMPLOYEE_REF, EmployeeRef::parse);
    // A ref that names one of the file's employers is valid by
    // construction: take that employer (and its shared ref) without parsing
    // a new copy. Anything else is parsed for its precise rejection.
    let employer = employers.position(trim(row.raw(EMPLOYER_REF))).or_else(|| {
        row.required(EMPLOYER_REF, EmployerRef::parse)
            .and_then(|r| employer_of(row, employers, &r))
    });
    // Its groups are looked at after the other fields: fetch them now.
    if let Some(at) = employer {
        employers.prefetch_groups(at);
    }
    let first_name = row.required(FIRST_NAME, Text::check);
    let last_name = row.required(LAST_NAME, Text::check);
    let email = row.required(EMAIL, Email::check);
    let phone = row.required(PHONE_NUMBER, E164Phone::check);
    let date_of_birth = row.required(DATE_OF_BIRTH, parse_date);
    let start_on = row.required(START_ON, parse_date);
    let sex_at_birth = row.required(SEX_AT_BIRTH, SexAtBirth::parse);
    let national_tax_id = row.required(NATIONAL_TAX_ID, TaxId::check);
    let home_address = row.address_fields(&ADDRESS);
    let nationality = row.optional(NATIONALITY, CountryCode::parse);
    let end_on = row.optional(END_ON, parse_date);
    let groups = groups(row, employers, employer);
    let metadata = row.metadata_pairs();

    let epoch = epoch_1900();
    if let Some(dob) = date_of_birth {
        if dob <= epoch || dob >= today {
            row.fail(
                DATE_OF_BIRTH,
                Rule::DateOfBirthRange,
                "must be in the past and after 1900-01-01".to_owned(),
            );
        }
    }
    if let Some(start) = start_on {
        if start <= epoch {
            row.fail(
                START_ON,
                Rule::DateRange,
                format!("{start} must be after 1900-01-01"),
            );
        }
    }
    if let (Some(start), Some(Some(end))) = (start_on, end_on) {
        if end < start {
            row.fail(
                END_ON,
                Rule::EndBeforeStart,
                format!("{end} is before start_on {start}; a leaving date follows the start"),
            );
        }
    }
    if row.has_problem() {
        return None;
    }
    let at = employer?;
    Some(EmployeeRecord {
        employer: at,
        employee_ref: employee_ref?,
        employer_ref: employers.ref_at(at),
        first_name: first_name?,
        last_name: last_name?,
        email: email?,
        phone: phone?,
        date_of_birth: date_of_birth?,
        start_on: start_on?,
        sex_at_birth: sex_at_birth?,
        national_tax_id: national_tax_id?,
        home_address: home_address?,
        nationality: nationality?,
        end_on: end_on?,
        groups: groups?,
        group_names: employers.group_names(at),
        metadata: metadata?,
        line,
        synced: None,
        digest: 0,
    })
}

/// The position of the employee's employer, or why there is none.
fn employer_of(row: &mut Row<'_>, employers: &Employers, r: &EmployerRef) -> Option<u32> {
    if employers.rejected.contains(r) {
        row.fail(
            EMPLOYER_REF,
            Rule::EmployerRejected,
            format!(
                "employer '{r}' was rejected in the employers file (see its rejections); \
                 its employees wait until it is fixed"
            ),
        );
        return None;
    }
    let found = employers.position(r.as_str());
    if found.is_none() {
        row.fail(
            EMPLOYER_REF,
            Rule::UnknownEmployer,
            format!("employer '{r}' is not in the employers file"),
        );
    }
    found
}

/// The `;`-separated groups, each a group of the employee's employer, by
/// position in its groups. Unchecked against the employer if it is unknown
/// (that is reported on employer_ref, and the row is rejected).
fn groups(row: &mut Row<'_>, employers: &Employers, employer: Option<u32>) -> Option<GroupSet> {
    let raw = row.raw(GROUPS);
    let mut out = GroupSet::default();
    for part in raw.split(';').map(trim).filter(|p| !p.is_empty()) {
        // A name the employer declares was validated with the employer.
        if let Some(at) = employer.and_then(|at| employers.group_position(at, part)) {
            out.insert(at);
            continue;
        }
        let employer = employer.map(|at| &employers.employers[at as usize]);
        let name = match GroupName::parse(part) {
            Ok(n) => n,
            Err(v) => {
                let message = row.describe(GROUPS, part, &v);
                row.fail(GROUPS, v.rule, message);
                return None;
            }
        };
        if let Some(e) = employer {
            let Some(at) = e.group_position(name.as_str()) else {
                let known: Vec<&str> = e.groups.iter().map(|g| g.name.as_str()).collect();
                row.fail(
                    GROUPS,
                    Rule::UnknownGroup,
                    format!(
                        "'{}' is not a group of employer '{}' (its groups: {})",
                        crate::model::truncate(part, 40),
                        e.employer_ref,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            crate::model::truncate(&known.join(", "), 200)
                        }
                    ),
                );
                return None;
            };
            out.insert(at);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const EMPLOYERS: &str = "employer_ref,legal_name,address_line1,city,postal_code,country_code,contact_name,contact_email,group_name\n\
        A,Acme,1 High St,London,E1 6AN,gb,Jo,jo@example.com,Health\n\
        A,Acme,1 High St,London,E1 6AN,gb,Jo,jo@example.com,Dental\n\
        B,Bad,1 High St,London,E1 6AN,gb,Jo,not-an-email,\n";
    const HEAD: &str = "employee_ref,employer_ref,first_name,last_name,email,phone_number,date_of_birth,start_on,sex_at_birth,national_tax_id,address_line1,city,state,postal_code,country_code,nationality,end_on,groups";

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    /// A valid row with one `column=value` override.
    fn row(r: &str, set: &[(&str, &str)]) -> String {
        let mut fields: Vec<String> = [
            r,
            "A",
            "Jane",
            "Doe",
            "jane@example.com",
            "+447700900001",
            "1985-04-12",
            "2020-01-06",
            "female",
            "QQ123456C",
            "1 Main St",
            "London",
            "",
            "E1 6AN",
            "gb",
            "",
            "",
            "Health",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (col, value) in set {
            let i = COLUMNS.iter().position(|c| c == col).unwrap();
            // COLUMNS has address_line2/3 that HEAD leaves out.
            let i = if i > ADDRESS_LINE1 { i - 2 } else { i };
            fields[i] = value.to_string();
        }
        fields.join(",") + "\n"
    }

    fn read(rows: &[String]) -> (EmployeesSummary, Vec<Employee>) {
        let employers = super::super::read_employers(file(EMPLOYERS).path()).unwrap();
        let f = file(&format!("{HEAD}\n{}", rows.concat()));
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let mut out = Vec::new();
        let s = read_employees_as_of(f.path(), &employers, today, |e| out.push(e)).unwrap();
        (s, out)
    }

    fn first_rule(set: &[(&str, &str)]) -> Option<(String, Rule)> {
        let (s, _) = read(&[row("E1", set)]);
        s.rejections
            .first()
            .map(|r| (r.column.clone().unwrap_or_default(), r.rule))
    }

    fn is(col: &str, rule: Rule) -> Option<(String, Rule)> {
        Some((col.to_owned(), rule))
    }

    /// A row fingerprinted from its borrowed values (plan) and from the
    /// owned employee made of them (apply, and what the state records) must
    /// agree, or a synced employee would look changed to one of them.
    #[test]
    fn a_record_and_its_employee_fingerprint_alike() {
        let employers = super::super::read_employers(file(EMPLOYERS).path()).unwrap();
        let head = format!("{HEAD},address_line2,address_line3,metadata.dept,metadata.cost");
        let rows = [
            format!("{},,,,", row("E1", &[]).trim_end()),
            format!(
                "{}, Flat 2 ,Block C, Sales ,CC1",
                row(
                    "E2",
                    &[
                        ("state", "LDN"),
                        ("nationality", "fr"),
                        ("end_on", "2026-01-01")
                    ]
                )
                .trim_end()
            ),
            format!(
                "{},,,,Zoë",
                row(
                    "E3",
                    &[("first_name", " Zoë "), ("groups", "Dental;Health")]
                )
                .trim_end()
            ),
        ];
        let f = file(&format!("{head}\n{}\n", rows.join("\n")));
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let mut seen = 0;
        let compare = |r: EmployeeRecord<'_>| {
            let e = r.to_employee();
            assert_eq!(e.employee_ref, r.employee_ref);
            for seed in [0, 7] {
                assert_eq!(
                    crate::plan::fingerprint::employee_fields(seed, &r.fields()),
                    crate::plan::fingerprint::employee(seed, &e),
                    "{}",
                    r.employee_ref
                );
            }
        };
        let s =
            read_employee_rows(f.path(), &employers, today, None, compare, |_| seen += 1).unwrap();
        assert!(s.rejections.is_empty(), "{:?}", s.rejections);
        assert_eq!(seen, 3);
    }

    #[test]
    fn valid_row_streams_with_sorted_unique_groups() {
        let (s, out) = read(&[row("E1", &[("groups", "Health;Dental; Health ;")])]);
        assert!(s.rejections.is_empty());
        let groups: Vec<&str> = out[0].groups.iter().map(GroupName::as_str).collect();
        assert_eq!(groups, ["Dental", "Health"]);
        assert_eq!(out[0].line, 2);
    }

    #[test]
    fn each_rule_on_its_column() {
        assert_eq!(
            first_rule(&[("phone_number", "0770")]),
            is("phone_number", Rule::Phone)
        );
        assert_eq!(first_rule(&[("email", "x")]), is("email", Rule::Email));
        assert_eq!(
            first_rule(&[("first_name", "")]),
            is("first_name", Rule::Required)
        );
        assert_eq!(
            first_rule(&[("sex_at_birth", "x")]),
            is("sex_at_birth", Rule::SexAtBirth)
        );
        assert_eq!(
            first_rule(&[("nationality", "uk")]),
            is("nationality", Rule::Country)
        );
        assert_eq!(
            first_rule(&[("country_code", "us")]),
            is("state", Rule::StateRequired)
        );
        assert_eq!(
            first_rule(&[("employer_ref", "Z")]),
            is("employer_ref", Rule::UnknownEmployer)
        );
        assert_eq!(
            first_rule(&[("employer_ref", "B")]),
            is("employer_ref", Rule::EmployerRejected)
        );
        assert_eq!(
            first_rule(&[("groups", "Gym")]),
            is("groups", Rule::UnknownGroup)
        );
        assert_eq!(
            first_rule(&[("start_on", "2020-1-6")]),
            is("start_on", Rule::Date)
        );
        assert_eq!(
            first_rule(&[("start_on", "1899-12-31")]),
            is("start_on", Rule::DateRange)
        );
        assert_eq!(
            first_rule(&[("end_on", "2019-12-31")]),
            is("end_on", Rule::EndBeforeStart)
        );
        assert_eq!(first_rule(&[("end_on", "2020-01-06")]), None);
    }

    #[test]
    fn date_of_birth_strictly_past_and_after_1900() {
        let dob = |d| first_rule(&[("date_of_birth", d)]);
        assert_eq!(dob("2025-05-31"), None);
        assert_eq!(
            dob("2025-06-01"),
            is("date_of_birth", Rule::DateOfBirthRange)
        );
        assert_eq!(
            dob("1900-01-01"),
            is("date_of_birth", Rule::DateOfBirthRange)
        );
        assert_eq!(dob("1900-01-02"), None);
    }

    #[test]
    fn tax_id_never_in_a_message() {
        let long = format!("SECRET{}", "1".repeat(80));
        let (s, _) = read(&[row("E1", &[("national_tax_id", long.as_str())])]);
        assert_eq!(s.rejections[0].rule, Rule::TooLong);
        assert!(!s.rejections[0].to_string().contains("SECRET"));
    }

    #[test]
    fn duplicate_after_a_streamed_first_is_reported_back() {
        let (s, out) = read(&[row("E1", &[]), row("E2", &[]), row("E1", &[])]);
        assert_eq!(out.len(), 2);
        assert_eq!(s.duplicates.len(), 1);
        let lines: Vec<(u64, Rule)> = s.rejections.iter().map(|r| (r.line, r.rule)).collect();
        assert_eq!(lines, [(2, Rule::DuplicateKey), (4, Rule::DuplicateKey)]);
    }

    #[test]
    fn duplicate_of_a_rejected_first_needs_no_late_rejection() {
        let (s, out) = read(&[row("E1", &[("email", "x")]), row("E1", &[])]);
        assert!(out.is_empty() && s.duplicates.is_empty());
        let lines: Vec<(u64, Rule)> = s.rejections.iter().map(|r| (r.line, r.rule)).collect();
        assert_eq!(lines, [(2, Rule::Email), (3, Rule::DuplicateKey)]);
    }

    /// Synced employees for the reader, from (ref, stored digest) pairs,
    /// all under the employer whose salt is given (if the state numbered
    /// it).
    struct State(Vec<(String, u64)>, Option<u64>);

    impl Synced for State {
        fn count(&self) -> usize {
            self.0.len()
        }
        fn find(&self, key: &str, _next: &mut u32) -> Option<SyncedRow> {
            let at = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
            Some(SyncedRow {
                at: at as u32,
                digest: self.0[at].1,
                salt: self.1,
            })
        }
    }

    /// What a read hands over and reports, whatever the number of
    /// checking threads: records in file order, unchanged rows, rejections
    /// and duplicates.
    type Outcome = (Vec<(String, u64)>, Vec<u32>, Vec<String>, Vec<String>);

    fn read_on(
        threads: usize,
        path: &Path,
        employers: &Employers,
        known: Option<Known<'_>>,
    ) -> Outcome {
        read_split(threads, Split::Auto, path, employers, known).0
    }

    /// [`read_on`], reading ahead as `split` says: also the rows counted,
    /// the file's hash, and whether the helper's rows were taken.
    fn read_split(
        threads: usize,
        split: Split,
        path: &Path,
        employers: &Employers,
        known: Option<Known<'_>>,
    ) -> (Outcome, (u64, String), bool) {
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let (mut records, mut unchanged) = (Vec::new(), Vec::new());
        let make = |r: EmployeeRecord<'_>| (r.employee_ref.to_string(), r.line, r.digest);
        let s = read_rows_checked_on(
            threads,
            split,
            path,
            employers,
            today,
            known,
            make,
            |item| match item {
                Streamed::Record((r, line, digest)) => {
                    records.push((format!("{r}@{line}"), digest))
                }
                Streamed::Unchanged(at) => unchanged.push(at),
            },
        )
        .unwrap();
        let rejections = s
            .rejections
            .iter()
            .map(|r| format!("{}:{:?}:{:?}:{}", r.line, r.column, r.rule, r.message))
            .collect();
        let duplicates = s.duplicates.iter().map(|d| d.to_string()).collect();
        (
            (records, unchanged, rejections, duplicates),
            (s.rows, s.content_hash),
            s.read_ahead,
        )
    }

    /// Rows read ahead from a seam anywhere in the file give what reading
    /// alone gives: the same records with the same lines, unchanged rows,
    /// rejections, duplicates (across the seam too), row count and hash;
    /// a seam inside a quoted field that spans lines is not taken.
    #[test]
    fn reading_ahead_changes_nothing_but_speed() {
        let mut rows = Vec::new();
        for i in 0..700 {
            let r = format!("E{:04}", i);
            rows.push(match i % 29 {
                // A field spanning lines: seams inside it are missed.
                3 => row(&r, &[("address_line1", "\"1 Main\nSt\"")]),
                // An exact repeat of an earlier row, unchanged or not.
                5 | 17 => row(&format!("E{:04}", i * 7 % (i + 1) / 2 * 2), &[]),
                8 => row(&r, &[("email", "nope")]),
                11 => format!("{r},A,short\n"),
                13 => "\n\n".to_owned(),
                19 => " , ,\r\n".to_owned(),
                23 => row(&r, &[]).replace('\n', "\r\n"),
                _ => row(&r, &[]),
            });
        }
        let employers = super::super::read_employers(file(EMPLOYERS).path()).unwrap();
        for bom in ["", "\u{feff}"] {
            let f = file(&format!("{bom}{HEAD}\n{}", rows.concat()));
            // Every other ref synced, each with the digest of its first
            // row recorded: those rows are unchanged.
            let (synced, _) = synced_with_digests(f.path(), &employers, 700, |_| true);
            let state = State(synced, None);
            for digest_all in [false, true] {
                let known = Known {
                    employees: &state,
                    seed: 9,
                    digest_all,
                };
                let alone = read_split(1, Split::Auto, f.path(), &employers, Some(known));
                assert!(!alone.2, "a small file is read on one thread");
                assert!(!alone.0 .1.is_empty() && !alone.0 .2.is_empty() && !alone.0 .3.is_empty());
                let mut taken = 0;
                for k in 1..80 {
                    for threads in [0, 2] {
                        let split = Split::At(k, 80);
                        let (outcome, file, took) =
                            read_split(threads, split, f.path(), &employers, Some(known));
                        assert_eq!(outcome, alone.0, "{split:?}, bom {bom:?}");
                        assert_eq!(file, alone.1, "{split:?}, bom {bom:?}");
                        taken += usize::from(took);
                    }
                }
                assert!(taken > 100, "most seams are taken: {taken} of 158");
            }
        }
    }

    /// A state holding every other ref of `E0000` to `n`, with the digest
    /// of its first valid row recorded at the positions `recorded` picks;
    /// and what reading `path` against it, every digest computed, gave.
    fn synced_with_digests(
        path: &Path,
        employers: &Employers,
        n: usize,
        recorded: impl Fn(usize) -> bool,
    ) -> (Vec<(String, u64)>, Outcome) {
        let mut synced: Vec<(String, u64)> =
            (0..n).step_by(2).map(|i| (format!("E{i:04}"), 0)).collect();
        let state = State(synced.clone(), None);
        let known = Known {
            employees: &state,
            seed: 9,
            digest_all: true,
        };
        let digested = read_on(0, path, employers, Some(known));
        for (r, d) in &digested.0 {
            let r = r.split('@').next().unwrap();
            if let Ok(at) = synced.binary_search_by(|(k, _)| k.as_str().cmp(r)) {
                if recorded(at) {
                    synced[at].1 = *d;
                }
            }
        }
        (synced, digested)
    }

    /// Duplicates, rejections and unchanged rows are decided in file order
    /// although the rows are checked on several threads, in batches that
    /// finish out of order: every thread count gives the same result.
    #[test]
    fn checking_threads_change_nothing_but_speed() {
        let mut rows = Vec::new();
        for i in 0..3000 {
            let r = format!("E{:04}", i % 2400);
            rows.push(match i % 13 {
                // Invalid rows, some repeating a valid ref, some a first.
                5 => row(&r, &[("email", "nope")]),
                // Fields out of their columns: no part in duplicates.
                9 => format!("{r},A,short\n"),
                11 => row("bad|ref", &[]),
                _ => row(&r, &[]),
            });
        }
        let employers = super::super::read_employers(file(EMPLOYERS).path()).unwrap();
        let f = file(&format!("{HEAD}\n{}", rows.concat()));
        let cold: Vec<Outcome> = [0, 1, 3]
            .iter()
            .map(|&t| read_on(t, f.path(), &employers, None))
            .collect();
        assert!(
            cold[0].2.iter().any(|r| r.contains("DuplicateKey")),
            "{:?}",
            cold[0].2
        );
        assert!(!cold[0].3.is_empty());
        assert_eq!(cold[0], cold[1]);
        assert_eq!(cold[0], cold[2]);
        // A state holding every other ref, half of them with the digest
        // of their (first) row: those are taken as unchanged.
        let (synced, digested) = synced_with_digests(f.path(), &employers, 2400, |at| at % 2 == 0);
        // The salt found by the state's number or by the row's ref: the
        // same digests, so the same rows taken as unchanged.
        let salt = employers.salt_at(employers.position("A").unwrap());
        let mut by_ref_or_number = Vec::new();
        for (digest_all, salt) in [(false, None), (true, None), (false, Some(salt))] {
            let state = State(synced.clone(), salt);
            let known = Known {
                employees: &state,
                seed: 9,
                digest_all,
            };
            let warm: Vec<Outcome> = [0, 1, 3]
                .iter()
                .map(|&t| read_on(t, f.path(), &employers, Some(known)))
                .collect();
            if !digest_all {
                by_ref_or_number.push(warm[0].clone());
            }
            assert!(!warm[0].1.is_empty());
            assert!(warm[0].0.len() < cold[0].0.len());
            assert_eq!(warm[0], warm[1]);
            assert_eq!(warm[0], warm[2]);
            // Same rejections as without the state: a ref repeated after
            // an unchanged row is still a duplicate.
            assert_eq!(warm[0].2, cold[0].2);
            assert_eq!(warm[0].3, cold[0].3);
        }
        assert_eq!(by_ref_or_number[0], by_ref_or_number[1]);
        // The state has them under another employer (rows that moved):
        // none is taken as unchanged, and the digests recorded are still
        // under the row's own employer.
        let state = State(synced.clone(), Some(salt ^ 1));
        for digest_all in [false, true] {
            let known = Known {
                employees: &state,
                seed: 9,
                digest_all,
            };
            let moved = read_on(1, f.path(), &employers, Some(known));
            assert!(moved.1.is_empty());
            assert_eq!(moved.0.len(), cold[0].0.len());
            if digest_all {
                assert_eq!(moved.0, digested.0);
            }
        }
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
