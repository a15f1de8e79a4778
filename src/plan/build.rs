//! Assembling a whole plan: read both exports, plan against the snapshot.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

use super::fingerprint;
use super::planner::{Finding, Keep, PlanContext, PlanRow, Planner, RowNeeds};
use super::Operation;
use crate::input::{self, InputError, InputWarning, Rejection};
use crate::model::{Employee, EmployeeRef, Employer};
use crate::state::{EmployeeSnap, EmployeeTable, Snapshot, StateError, Summarised};

/// Why a plan could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// Fetching the summarised employees of a planning snapshot failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Where the whole rows of a planning snapshot's summarised employees come
/// from, in the order asked: asked for at once, collected later
/// (`state::Store::fetch_employees_later`).
pub type Fetch<'f> = &'f (dyn Fn(Vec<Summarised>) -> Pending + Sync);

/// Whole state rows asked for and not yet collected.
pub type Pending = Box<dyn FnOnce() -> Result<Vec<EmployeeSnap>, StateError> + Send>;

/// An input file as the plan names it: by path and content hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    pub path: String,
    /// blake3 of the file's bytes.
    pub blake3: String,
    pub rows: u64,
}

/// A complete plan: operations, findings, rejections, and (for apply) the
/// data the operations need.
#[derive(Debug)]
pub struct Plan {
    pub employers_file: FileInfo,
    pub employees_file: FileInfo,
    pub state_version: u64,
    pub as_of: NaiveDate,
    pub offboard_missing: bool,
    pub operations: Vec<Operation>,
    pub findings: Vec<Finding>,
    pub rejections: Vec<Rejection>,
    pub warnings: Vec<InputWarning>,
    pub employers: Vec<Employer>,
    pub employees: HashMap<EmployeeRef, Employee>,
    /// Synced employees whose rows planned nothing, with their rows'
    /// digests, for apply to record (`input::digest`).
    pub unchanged: Vec<(EmployeeRef, u64)>,
    /// Rows skipped as unchanged since the last apply (not read further).
    pub skipped: u64,
    /// What the plan kept: without fingerprints it is for reports only.
    pub kept: Keep,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.operations.is_empty()
    }
}

/// Employees cross from the reading thread to the planning thread in
/// batches: a channel message per row would cost more than the row.
const BATCH: usize = 1024;
/// Batches in flight between the two threads: enough to keep both busy,
/// few enough that a slower planner holds the reader back rather than the
/// file piling up in memory.
const IN_FLIGHT: usize = 16;

/// The snapshot's employees as the reader looks them up.
struct SyncedEmployees<'s> {
    table: &'s EmployeeTable,
    /// The row-digest salt of each of the state's employers, by number
    /// (`EmployeeSnap::employer_no`); 0 for one the employers file does
    /// not have, and for a salt that happens to be 0: the reader then
    /// finds the salt by the row's ref. (Plain words, not `Option`s: half
    /// the size, so that a million random reads stay in the core's cache.)
    salts: Vec<u64>,
}

/// How many rows ahead the planning loop asks for what the planner reads
/// of a row's employer (twice as far for the table slots).
const PLAN_AHEAD: usize = 8;

/// How many rows ahead [`SyncedEmployees::find`] asks for a salt.
const SALT_AHEAD: u32 = 16;

impl input::Synced for SyncedEmployees<'_> {
    fn count(&self) -> usize {
        self.table.len()
    }
    fn find(&self, key: &str, next: &mut u32) -> Option<input::SyncedRow> {
        let at = self.table.position_after(key, *next)?;
        *next = at + 1;
        // Employees come in ref order, their employers' salts at random:
        // ask now for the salt of the employee a few rows on, so that its
        // cache miss overlaps the rows before it (waiting for each salt
        // was most of this function).
        if let Some(ahead) = self.table.get_at(at.saturating_add(SALT_AHEAD)) {
            if let Some(salt) = self.salts.get(ahead.employer_no as usize) {
                crate::prefetch::prefetch(salt);
            }
        }
        let row = self.table.at(at).1;
        Some(input::SyncedRow {
            at,
            digest: row.row_digest,
            salt: self
                .salts
                .get(row.employer_no as usize)
                .copied()
                .filter(|&s| s != 0),
        })
    }
}

/// What crosses from the reading thread to the planning thread: valid
/// rows, and the positions of rows skipped as unchanged (apart: a position
/// is 4 bytes, a row hundreds, and the planner's handling of a skipped row
/// does not depend on its order among the others).
struct Batch {
    /// Valid rows, each with its employer's position.
    rows: Vec<(u32, PlanRow)>,
    /// Synced employees whose rows are unchanged since the last apply.
    unchanged: Vec<u32>,
    /// Which of `rows` are of summarised employees, and their whole state
    /// rows, in that order, asked for when the batch was sent.
    fetched: Option<(Vec<usize>, Pending)>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            rows: Vec::with_capacity(BATCH),
            unchanged: Vec::new(),
            fetched: None,
        }
    }
    fn full(&self) -> bool {
        self.rows.len() == BATCH || self.unchanged.len() == 16 * BATCH
    }
    /// Ask for the whole state rows of the summarised employees among the
    /// rows (`fetch` panics if there are some and no way to fetch them).
    fn ask(&mut self, snap: &Snapshot, fetch: Option<Fetch<'_>>) {
        let mut at = Vec::new();
        let mut wanted = Vec::new();
        for (i, (_, r)) in self.rows.iter().enumerate() {
            let Some(summary) = r.synced.map(|p| snap.employees.at(p).1) else {
                continue;
            };
            if summary.partial {
                at.push(i);
                wanted.push(Summarised {
                    employee: r.employee_ref.clone(),
                    employer: snap.employer_of(summary).clone(),
                    employer_no: summary.employer_no,
                });
            }
        }
        if !at.is_empty() {
            let fetch = fetch.expect("a snapshot with summarised employees needs a fetch");
            self.fetched = Some((at, fetch(wanted)));
        }
    }
}

/// Read employees.csv on one thread and plan each valid employee on this
/// one, in file order. Reading (CSV, UTF-8, validation) and planning
/// (fingerprints, diff, operations) cost about the same per row, so two
/// cores nearly halve a million-row plan.
///
/// The planner is made (`make`: the employer-level operations) on this
/// thread while the first rows are read.
fn read_and_plan<'p>(
    path: &Path,
    employers: &input::Employers,
    snap: &Snapshot,
    fetch: Option<Fetch<'_>>,
    needs: RowNeeds,
    make: impl FnOnce() -> Planner<'p>,
) -> Result<(input::EmployeesSummary, Planner<'p>), BuildError> {
    // Each row travels with its employer's position in the employers
    // slice (found while validating) and its employee's position in the
    // snapshot (found while checking for duplicates), so that the planner
    // reads arrays instead of probing maps by ref. The reading thread
    // fingerprints the row from its borrowed values and copies them into
    // an owned employee only when the plan keeps payloads (apply): a plan
    // for a report allocates nothing per row but its ref and groups. Rows
    // the state vouches for (`input::digest`) are not read further.
    let synced = SyncedEmployees {
        table: &snap.employees,
        salts: snap
            .employer_numbers
            .iter()
            .map(|r| {
                employers
                    .position(r.as_str())
                    .map_or(0, |at| employers.salt_at(at))
            })
            .collect(),
    };
    let known = input::Known {
        employees: &synced,
        seed: needs.seed,
        digest_all: needs.payloads,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(IN_FLIGHT);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("read-employees".into())
            .spawn_scoped(scope, move || {
                let mut batch = Batch::new();
                let today = chrono::Local::now().date_naive();
                // Each valid row becomes its plan row on a checking thread.
                let make = |mut r: input::EmployeeRecord<'_>| {
                    let fp = needs
                        .fingerprints
                        .then(|| fingerprint::employee_fields(needs.seed, &r.fields()));
                    let payload = needs.payloads.then(|| Box::new(r.to_employee()));
                    let row = PlanRow {
                        employee_ref: r.employee_ref,
                        synced: r.synced,
                        digest: r.digest,
                        old: None,
                        groups: std::mem::take(&mut r.groups),
                        start_on: r.start_on,
                        end_on: r.end_on,
                        fp,
                        payload,
                    };
                    (r.employer, row)
                };
                let summary =
                    input::read_employee_rows(path, employers, today, Some(known), make, |item| {
                        match item {
                            input::Streamed::Unchanged(at) => batch.unchanged.push(at),
                            input::Streamed::Record(row) => batch.rows.push(row),
                        }
                        if batch.full() {
                            batch.ask(snap, fetch);
                            // A send fails only if the planner is gone, i.e.
                            // it panicked or failed; the scope re-raises a
                            // panic, and a failure is returned below.
                            let _ = tx.send(std::mem::replace(&mut batch, Batch::new()));
                        }
                    });
                if !(batch.rows.is_empty() && batch.unchanged.is_empty()) {
                    batch.ask(snap, fetch);
                    let _ = tx.send(batch);
                }
                summary
            })
            .map_err(|source| InputError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let mut planner = make();
        let mut failed = None;
        for mut batch in rx {
            for at in batch.unchanged {
                planner.unchanged(at);
            }
            // Summarised employees whose rows turned out changed: their
            // whole state rows, asked for when the batch was sent.
            if let Some((at, fetched)) = batch.fetched.take() {
                match fetched() {
                    Ok(rows) => {
                        for (i, whole) in at.into_iter().zip(rows) {
                            batch.rows[i].1.old = Some(whole);
                        }
                    }
                    Err(e) => {
                        // Dropping the receiver stops the reader's sends.
                        failed = Some(e);
                        break;
                    }
                }
            }
            // Rows name their employers at random: ask for what the
            // planner reads of the employer of a row some rows on, the
            // table slots first and what they point to once those are in.
            // (The rows after the current one, as the iterator holds them:
            // no copy of their employers per batch.)
            let mut rows = batch.rows.into_iter();
            while let Some((at, row)) = rows.next() {
                let after = rows.as_slice();
                if let Some((far, _)) = after.get(2 * PLAN_AHEAD - 1) {
                    planner.prefetch_slots(*far);
                }
                if let Some((near, _)) = after.get(PLAN_AHEAD - 1) {
                    planner.prefetch_refs(*near);
                }
                planner.row(Some(at), row);
            }
        }
        let summary = match reader.join() {
            Ok(summary) => summary,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match failed {
            Some(e) => Err(e.into()),
            None => Ok((summary?, planner)),
        }
    })
}

/// Read the exports and plan them against `snap` (a whole snapshot, with
/// no summarised employees), keeping what `keep` says (apply needs
/// everything; a report nothing).
pub fn build(
    employers_path: &Path,
    employees_path: &Path,
    snap: &Snapshot,
    ctx: PlanContext,
    keep: Keep,
) -> Result<Plan, BuildError> {
    let employers = read_employers(employers_path)?;
    build_from(
        employers,
        employers_path,
        employees_path,
        snap,
        None,
        ctx,
        keep,
    )
}

/// Read employers.csv, timing it at -vv. (A caller may run this while the
/// state loads on the store thread, then hand both to [`build_from`].)
pub fn read_employers(path: &Path) -> Result<input::Employers, InputError> {
    let started = std::time::Instant::now();
    let employers = input::read_employers(path)?;
    tracing::debug!(
        "read {} employer rows in {:.2?} (rss {})",
        employers.rows,
        started.elapsed(),
        crate::memory::peak_rss()
    );
    Ok(employers)
}

/// [`build`] with the employers already read (from `employers_path`),
/// against a snapshot that may summarise employees (a planning snapshot),
/// whose whole rows `fetch` gives when their rows turn out changed.
pub fn build_from(
    employers: input::Employers,
    employers_path: &Path,
    employees_path: &Path,
    snap: &Snapshot,
    fetch: Option<Fetch<'_>>,
    ctx: PlanContext,
    keep: Keep,
) -> Result<Plan, BuildError> {
    let make = || {
        // Roughly one operation per 48 bytes of employees.csv (a row of
        // ~160 bytes makes its create and two or three memberships), and
        // up to three per employer row (its group in Kota and in IC, its
        // carrier's connection). Only a hint: the list still grows past
        // it, and untouched capacity costs no memory.
        let bytes = std::fs::metadata(employees_path).map_or(0, |m| m.len());
        let room = usize::try_from(bytes / 48 + 3 * employers.rows).unwrap_or(0);
        Planner::new(
            ctx.clone(),
            snap,
            &employers.employers,
            &employers.rejected,
            keep,
            room,
        )
    };
    let started = std::time::Instant::now();
    let needs = RowNeeds::of(snap, keep);
    let (summary, mut planner) =
        read_and_plan(employees_path, &employers, snap, fetch, needs, make)?;
    for r in &summary.rejections {
        if let Some(k) = &r.key {
            planner.rejected_employee(k);
        }
    }
    let body = planner.finish(&summary.duplicates);
    tracing::debug!(
        "read and planned {} employee rows in {:.2?} ({} unchanged since the last apply{}) (rss {})",
        summary.rows,
        started.elapsed(),
        body.skipped,
        if summary.read_ahead {
            "; second half read ahead"
        } else {
            ""
        },
        crate::memory::peak_rss()
    );
    let mut rejections = employers.rejections.clone();
    rejections.extend(summary.rejections);
    let mut warnings = employers.warnings.clone();
    warnings.extend(summary.warnings);
    Ok(Plan {
        employers_file: FileInfo {
            path: employers_path.display().to_string(),
            blake3: employers.content_hash.clone(),
            rows: employers.rows,
        },
        employees_file: FileInfo {
            path: employees_path.display().to_string(),
            blake3: summary.content_hash,
            rows: summary.rows,
        },
        state_version: snap.version,
        as_of: ctx.today,
        offboard_missing: ctx.offboard_missing,
        operations: body.operations,
        findings: body.findings,
        rejections,
        warnings,
        employers: employers.employers,
        employees: body.employees,
        unchanged: body.unchanged,
        skipped: body.skipped,
        kept: keep,
    })
}
