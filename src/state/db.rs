//! Queries over the state database. Only the store thread calls these (and
//! the tests); everything else goes through [`super::Store`].

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::effect::{Effect, JournalStatus};
use super::snapshot::{
    ConnectionSnap, Connections, EmployeeSnap, EmployeeTable, EmployerSnap, Groups,
    MembershipState, Sections, Snapshot,
};
use super::{schema, StateError};
use crate::fxhash::FxHashMap;
use crate::model::{CarrierId, EmployeeRef, EmployerRef, GroupName};
use crate::remote::CounterValues;

/// When [`open_with`] checks the database's integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Before returning: anything may write next.
    AtOpen,
    /// Later, by [`quick_check`] on a connection of its own, while the
    /// opener only reads: a million-employee state's check and its snapshot
    /// then take one core each. A file that needs migrating (a write) is
    /// still checked first.
    Deferred,
}

/// Open (creating if absent, owner-only) and migrate the state database,
/// checking it first.
pub fn open(path: &Path) -> Result<Connection, StateError> {
    open_with(path, Check::AtOpen).map(|(conn, _)| conn)
}

/// [`open`], checking the database as `check` says. Also returns whether
/// the check is still to be made.
pub fn open_with(path: &Path, check: Check) -> Result<(Connection, bool), StateError> {
    let display = path.display().to_string();
    if path.is_dir() {
        return Err(StateError::NotAFile(display));
    }
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            read_only(path, e.to_string())
        }
        _ => StateError::Io(display.clone(), e),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if !path.exists() {
        create_private(path).map_err(io)?;
    }
    let mut conn = Connection::open(path).map_err(|e| StateError::Open(display.clone(), e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| StateError::Open(display.clone(), e))?;
    // The first real read is where SQLite notices a file that is not a
    // database. It comes before anything that writes (switching to WAL
    // rewrites the header), so a foreign, corrupt or newer file is reported
    // and left exactly as it was.
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| classify_open_error(path, e))?;
    if found > schema::CURRENT_VERSION {
        return Err(StateError::TooNew(display, found, schema::CURRENT_VERSION));
    }
    if found == 0 {
        // Only takes on a file not yet written (switching to WAL below is
        // its first write); on any other it changes nothing.
        conn.pragma_update(None, "page_size", schema::PAGE_SIZE)
            .map_err(|e| classify_open_error(path, e))?;
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| classify_open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::Corrupt(
            display,
            format!("could not enable WAL (got {mode})"),
        ));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| StateError::Open(display.clone(), e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| StateError::Open(display.clone(), e))?;
    let deferred = check == Check::Deferred && found == schema::CURRENT_VERSION;
    if found > 0 && !deferred {
        run_quick_check(&conn, path)?;
    }
    let before = schema::migrate(&mut conn).map_err(|e| classify_open_error(path, e))?;
    if before > 0 && before < schema::CURRENT_VERSION {
        tracing::info!(
            "state database {} upgraded from schema version {before} to {}",
            path.display(),
            schema::CURRENT_VERSION
        );
    }
    init_meta(&conn).map_err(|e| classify_open_error(path, e))?;
    Ok((conn, deferred))
}

fn run_quick_check(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let started = std::time::Instant::now();
    let ok: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| classify_open_error(path, e))?;
    if ok != "ok" {
        return Err(StateError::Corrupt(path.display().to_string(), ok));
    }
    tracing::debug!("state quick_check in {:.2?}", started.elapsed());
    Ok(())
}

/// The integrity check [`Check::Deferred`] put off, on a read-only
/// connection of its own (so it may run beside the opener's reads).
pub fn quick_check(path: &Path) -> Result<(), StateError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify_open_error(path, e))?;
    run_quick_check(&conn, path)
}

fn classify_open_error(path: &Path, e: rusqlite::Error) -> StateError {
    let display = path.display().to_string();
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            rusqlite::ErrorCode::NotADatabase => {
                StateError::Corrupt(display, "the file is not a SQLite database".into())
            }
            rusqlite::ErrorCode::DatabaseCorrupt => {
                StateError::Corrupt(display, "the database is corrupt".into())
            }
            rusqlite::ErrorCode::ReadOnly
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::PermissionDenied => read_only(path, e.to_string()),
            _ => StateError::Sql(display, e),
        },
        _ => StateError::Sql(display, e),
    }
}

/// The directory SQLite must write in: it keeps the write-ahead log and its
/// index (`FILE-wal`, `FILE-shm`) beside the database.
fn state_dir(path: &Path) -> String {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.display().to_string(),
        None => ".".to_owned(),
    }
}

fn read_only(path: &Path, why: String) -> StateError {
    StateError::ReadOnly {
        path: path.display().to_string(),
        dir: state_dir(path),
        why,
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

fn init_meta(conn: &Connection) -> rusqlite::Result<()> {
    let seed: u64 = rand::random();
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('fp_seed', ?1), ('state_version', '0')",
        params![seed.to_string()],
    )?;
    Ok(())
}

pub fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn version(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(get_meta(conn, "state_version")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn bump_version(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'state_version'",
        [],
    )?;
    Ok(())
}

/// Read the whole state into memory for planning.
pub fn load_snapshot(conn: &Connection, detail: Detail) -> rusqlite::Result<Snapshot> {
    let mut snap = Snapshot {
        version: version(conn)?,
        fp_seed: get_meta(conn, "fp_seed")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        ..Snapshot::default()
    };
    let mut st =
        conn.prepare("SELECT employer_ref, kota_id, fp, noyo_group_id, no FROM employers")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            EmployerSnap {
                kota_id: r.get(1)?,
                fp: Sections::from_blob(&r.get::<_, Vec<u8>>(2)?),
                noyo_group_id: r.get(3)?,
            },
            r.get::<_, Option<i64>>(4)?,
        ))
    })?;
    snap.employers.reserve(count_rows(conn, "employers")?);
    // Each employer's stored number and ref, in the table's order.
    let mut scanned = Vec::with_capacity(snap.employers.capacity());
    for row in rows {
        let (k, v, no) = row?;
        if let Ok(k) = EmployerRef::parse(&k) {
            // Every employee row below clones its employer's ref: pinned,
            // the clones count no references (see `GroupName::pin`).
            k.pin();
            if snap.employers.insert(k.clone(), v).is_none() {
                scanned.push((no.and_then(|n| u32::try_from(n).ok()), k));
            }
        }
    }
    // Groups and connections share the employers' refs and one copy of
    // each group name: a 50,000-employer state has 300,000 group rows.
    let mut employer_refs = EmployerRefs::new(scanned);
    let mut names = GroupNames::default();
    // Left empty for a plan (`Detail::Planning`).
    let ids = detail != Detail::Planning;
    for (table, id_col) in [("kota_groups", "kota_id"), ("ic_groups", "ic_id")] {
        let mut st = conn.prepare(&format!("SELECT employer_ref, name, {id_col} FROM {table}"))?;
        let mut by_number = ByEmployer::default();
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (Some(no), Some(n)) = (
                employer_refs.near(r.get_ref(0)?.as_str()?),
                names.get(r.get_ref(1)?.as_str()?),
            ) else {
                continue;
            };
            by_number.push(no, (n, if ids { r.get(2)? } else { String::new() }));
        }
        let map = if table == "kota_groups" {
            &mut snap.kota_groups
        } else {
            &mut snap.ic_groups
        };
        by_number.into_map(&employer_refs, map, Groups::from_unsorted);
    }
    let mut st = conn.prepare(
        "SELECT employer_ref, carrier_id, noyo_id, noyo_group_id, fp, status FROM connections",
    )?;
    let mut by_number = ByEmployer::default();
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (Some(no), Ok(c)) = (
            employer_refs.near(r.get_ref(0)?.as_str()?),
            CarrierId::parse(r.get_ref(1)?.as_str()?),
        ) else {
            continue;
        };
        let id = |i| -> rusqlite::Result<String> {
            Ok(match ids {
                true => r.get(i)?,
                false => String::new(),
            })
        };
        let v = ConnectionSnap {
            noyo_id: id(2)?,
            noyo_group_id: id(3)?,
            fp: Sections::from_blob(r.get_ref(4)?.as_blob()?),
            status: r.get(5)?,
        };
        by_number.push(no, (c, v));
    }
    by_number.into_map(
        &employer_refs,
        &mut snap.connections,
        Connections::from_unsorted,
    );
    // Employees in ref order (the table is clustered on it, so the order
    // is free), then their memberships (`load_memberships`). Employer refs
    // and group names are shared with the rest of the snapshot rather than
    // copied per row. A snapshot that summarises digested employees reads
    // the summaries from their own index (schema v5), a quarter of the
    // table's pages, and the other employees' remaining columns after
    // (`load_whole_rows`).
    let summarise = detail != Detail::Whole;
    let mut st = conn.prepare(if summarise {
        EMPLOYEE_SUMMARIES
    } else {
        "SELECT employee_ref, employer_no, employer_ref, offboarded, row_digest, kota_id, fp
         FROM employees ORDER BY employee_ref"
    })?;
    let mut rows = st.query([])?;
    snap.employees.reserve(count_rows(conn, "employees")?);
    // Positions of the employees loaded whole: their memberships follow.
    let mut whole = Vec::new();
    while let Some(r) = rows.next()? {
        let raw = r.get_ref(0)?.as_str()?;
        // By the stored number (schema v6), else by the ref's text.
        let employer_no = match employer_refs.stored(r.get_ref(1)?.as_i64_or_null()?) {
            Some(no) => Some(no),
            None => employer_refs.number(r.get_ref(2)?.as_str()?),
        };
        let (Ok(key), Some(employer_no)) = (EmployeeRef::parse(raw), employer_no) else {
            continue;
        };
        let offboarded = r.get(3)?;
        let row_digest = r.get::<_, Option<i64>>(4)?.map_or(0, |d| d as u64);
        // A planning snapshot leaves out what a digested employee's plan
        // only needs if the row changed: fetched then (`fetch_employees`).
        let partial = summarise && row_digest != 0;
        let (kota_id, fp) = match summarise {
            true => Default::default(),
            false => (
                r.get_ref(5)?.as_str()?.into(),
                Sections::from_blob(r.get_ref(6)?.as_blob()?),
            ),
        };
        if !partial {
            whole.push(snap.employees.len() as u32);
        }
        let row = EmployeeSnap {
            employer_no,
            kota_id,
            fp,
            offboarded,
            row_digest,
            partial,
            memberships: Box::default(),
        };
        // The scan is in the order of the refs' bytes, which is `str`'s.
        snap.employees.push_ordered(key, row);
    }
    // A nightly state has nearly every employee summarised: looking the
    // few others up beats stepping through every membership.
    // (The merge needs the rows in ref order, as the scan gives them.)
    let one_by_one = whole.len() * 8 < snap.employees.len() || !snap.employees.is_ordered();
    if summarise {
        load_whole_rows(conn, &mut snap.employees, &whole, detail, one_by_one)?;
    }
    load_memberships(conn, &mut snap.employees, &whole, one_by_one)?;
    snap.employer_numbers = employer_refs.by_number;
    Ok(snap)
}

/// Every employee's summary, in ref order, from the covering index alone
/// (schema v5 and v6): the columns of a whole load's query, up to the row
/// digest.
const EMPLOYEE_SUMMARIES: &str =
    "SELECT employee_ref, employer_no, employer_ref, offboarded, row_digest
     FROM employees INDEXED BY employees_summary ORDER BY employee_ref";

/// The fingerprints (and, for [`Detail::Nightly`], the Kota ids) of the
/// employees at `whole` (ascending positions), which a summarising scan
/// left out: looked up one by one, or taken from one scan of the table's
/// undigested rows in ref order.
fn load_whole_rows(
    conn: &Connection,
    employees: &mut EmployeeTable,
    whole: &[u32],
    detail: Detail,
    one_by_one: bool,
) -> rusqlite::Result<()> {
    let kota_ids = detail == Detail::Nightly;
    let fill = |row: &mut EmployeeSnap, r: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
        row.fp = Sections::from_blob(r.get_ref(1)?.as_blob()?);
        if kota_ids {
            row.kota_id = r.get_ref(0)?.as_str()?.into();
        }
        Ok(())
    };
    // Whole rows the scan did not give (none, in one transaction), or all
    // of them: looked up one by one.
    let mut missed = Vec::new();
    if one_by_one {
        missed.extend_from_slice(whole);
    } else {
        let mut st = conn.prepare(
            "SELECT kota_id, fp, employee_ref FROM employees
             WHERE coalesce(row_digest, 0) = 0 ORDER BY employee_ref",
        )?;
        let mut rows = st.query([])?;
        let mut whole = whole.iter().copied().peekable();
        while let Some(r) = rows.next()? {
            let raw = r.get_ref(2)?.as_str()?;
            while let Some(at) = whole.next_if(|&at| employees.at(at).0.as_str() < raw) {
                missed.push(at);
            }
            // A row without its own whole position is one the summarising
            // scan skipped (an invalid ref).
            if let Some(at) = whole.next_if(|&at| employees.at(at).0.as_str() == raw) {
                fill(employees.at_mut(at), r)?;
            }
        }
        missed.extend(whole);
    }
    let mut st =
        conn.prepare_cached("SELECT kota_id, fp FROM employees WHERE employee_ref = ?1")?;
    for at in missed {
        let mut rows = st.query([employees.at(at).0.as_str()])?;
        let r = rows.next()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        fill(employees.at_mut(at), r)?;
    }
    Ok(())
}

/// The memberships of one employee, by group name.
const MEMBERSHIPS_OF: &str = "SELECT group_name, status, reasons FROM memberships
     WHERE employee_ref = ?1 ORDER BY group_name";

/// Attach their memberships to the employees at `whole` (ascending
/// positions, rows in ref order as loaded): `one_by_one`, a lookup each;
/// otherwise one scan of the memberships in ref order, merged with the
/// rows, with no lookup per membership and the rows of summarised
/// employees stepped over undecoded.
fn load_memberships(
    conn: &Connection,
    employees: &mut EmployeeTable,
    whole: &[u32],
    one_by_one: bool,
) -> rusqlite::Result<()> {
    let mut names = GroupNames::default();
    let mut taken = Vec::new();
    if one_by_one {
        let mut st = conn.prepare_cached(MEMBERSHIPS_OF)?;
        for &at in whole {
            memberships_of(&mut st, employees.at(at).0, &mut names, &mut taken)?;
            employees.at_mut(at).memberships = taken.as_slice().into();
            taken.clear();
        }
        return Ok(());
    }
    let mut st = conn.prepare(
        "SELECT employee_ref, group_name, status, reasons FROM memberships
         ORDER BY employee_ref, group_name",
    )?;
    let mut cursor = MembershipCursor::start(st.query([])?, names)?;
    let mut whole = whole.iter().copied().peekable();
    for at in 0..employees.len() as u32 {
        let key = employees.at(at).0.as_str();
        if whole.next_if_eq(&at).is_some() {
            cursor.take_for(key, &mut taken)?;
            employees.at_mut(at).memberships = taken.as_slice().into();
            taken.clear();
        } else {
            cursor.skip_to(key)?;
        }
    }
    Ok(())
}

/// Append the memberships of `employee` to `out`, by group name, through
/// a prepared [`MEMBERSHIPS_OF`].
fn memberships_of(
    st: &mut rusqlite::CachedStatement<'_>,
    employee: &EmployeeRef,
    names: &mut GroupNames,
    out: &mut Vec<(GroupName, MembershipState)>,
) -> rusqlite::Result<()> {
    let mut rows = st.query([employee.as_str()])?;
    while let Some(r) = rows.next()? {
        if let Some(g) = names.get(r.get_ref(0)?.as_str()?) {
            out.push((g, membership_state(r.get_ref(1)?.as_str()?, r.get(2)?)));
        }
    }
    Ok(())
}

/// One shared copy of each group name a scan meets.
#[derive(Default)]
struct GroupNames(FxHashMap<Box<str>, GroupName>);

impl GroupNames {
    /// The shared name, or `None` if `raw` is no longer a valid name.
    fn get(&mut self, raw: &str) -> Option<GroupName> {
        if let Some(n) = self.0.get(raw) {
            return Some(n.clone());
        }
        let n = GroupName::parse(raw).ok()?;
        self.0.insert(raw.into(), n.clone());
        Some(n)
    }
}

/// The Kota ids of the employees `refs` names that the state holds.
pub fn kota_ids(
    conn: &Connection,
    refs: &[EmployeeRef],
) -> rusqlite::Result<Vec<(EmployeeRef, String)>> {
    let mut st = conn.prepare_cached("SELECT kota_id FROM employees WHERE employee_ref = ?1")?;
    let mut out = Vec::with_capacity(refs.len());
    for ee in refs {
        if let Some(id) = st
            .query_row([ee.as_str()], |r| r.get::<_, String>(0))
            .optional()?
        {
            out.push((ee.clone(), id));
        }
    }
    Ok(out)
}

/// A summarised employee of a planning snapshot whose whole state row is
/// wanted ([`fetch_employees`]), as the snapshot has it.
#[derive(Debug, Clone)]
pub struct Summarised {
    pub employee: EmployeeRef,
    /// Its employer's ref, which the row must still name.
    pub employer: EmployerRef,
    /// Its employer's number in the snapshot, given to the whole row.
    pub employer_no: u32,
}

/// The whole state rows of `wanted` (Kota ids left out), in order; `None`
/// for an employee the state does not hold under the employer the snapshot
/// said. For the employees a planning snapshot summarised
/// ([`Detail::Planning`]) whose rows turned out changed. Run in the read
/// transaction the snapshot was loaded in, so the rows are the snapshot's.
pub fn fetch_employees(
    conn: &Connection,
    wanted: &[Summarised],
) -> rusqlite::Result<Vec<Option<EmployeeSnap>>> {
    let mut est = conn.prepare_cached(
        "SELECT employer_ref, fp, offboarded, row_digest FROM employees WHERE employee_ref = ?1",
    )?;
    let mut mst = conn.prepare_cached(MEMBERSHIPS_OF)?;
    let mut names = GroupNames::default();
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let row = est
            .query_row([w.employee.as_str()], |r| {
                Ok((
                    r.get_ref(0)?.as_str()? == w.employer.as_str(),
                    Sections::from_blob(r.get_ref(1)?.as_blob()?),
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<i64>>(3)?.map_or(0, |d| d as u64),
                ))
            })
            .optional()?;
        let Some((true, fp, offboarded, row_digest)) = row else {
            out.push(None);
            continue;
        };
        let mut memberships = Vec::new();
        memberships_of(&mut mst, &w.employee, &mut names, &mut memberships)?;
        out.push(Some(EmployeeSnap {
            employer_no: w.employer_no,
            kota_id: Box::default(),
            fp,
            offboarded,
            row_digest,
            partial: false,
            memberships: memberships.into(),
        }));
    }
    Ok(out)
}

/// A membership's state from its `status` and `reasons` columns.
fn membership_state(status: &str, reasons: Option<String>) -> MembershipState {
    if status == "added" {
        return MembershipState::Added;
    }
    // Stored as "code1,code2|YYYY-MM-DD".
    let reasons = reasons.unwrap_or_default();
    let (codes, checked) = match reasons.split_once('|') {
        Some((c, d)) => (
            c.to_owned(),
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok(),
        ),
        None => (reasons, None),
    };
    MembershipState::ineligible(codes, checked)
}

/// How much of each employee a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything, Kota ids included: apply names them in later operations.
    Whole,
    /// What planning reads: no remote ids, of employees, groups or
    /// connections (a plan only asks whether one was synced; a million ids
    /// are a million allocations; they are left empty), and
    /// for employees with a row digest (schema v4) only their employer,
    /// offboarding and digest: a nightly export skips nearly all of them,
    /// and the few whose rows changed are fetched when met
    /// ([`fetch_employees`]).
    Planning,
    /// What apply reads: employees with a row digest summarised as for
    /// planning, the others whole with their Kota ids. The ids of the few
    /// summarised employees that operations name are looked up before they
    /// start ([`kota_ids`]).
    Nightly,
}

/// The memberships scan, ordered by (employee ref, group name), read one
/// row ahead so that each employee can take the rows that are its own. The
/// row ahead is kept as text and decoded only when taken: the rows of
/// summarised employees are stepped over.
struct MembershipCursor<'s> {
    rows: rusqlite::Rows<'s>,
    /// The employee ref of the row read ahead; meaningless once `done`.
    employee: String,
    /// The row ahead's group name, status and reasons, as stored.
    group: String,
    status: String,
    reasons: Option<String>,
    done: bool,
    names: GroupNames,
}

impl<'s> MembershipCursor<'s> {
    fn start(rows: rusqlite::Rows<'s>, names: GroupNames) -> rusqlite::Result<Self> {
        let mut c = MembershipCursor {
            rows,
            employee: String::new(),
            group: String::new(),
            status: String::new(),
            reasons: None,
            done: false,
            names,
        };
        c.advance()?;
        Ok(c)
    }

    fn advance(&mut self) -> rusqlite::Result<()> {
        let Some(r) = self.rows.next()? else {
            self.done = true;
            return Ok(());
        };
        for (col, to) in [
            (0, &mut self.employee),
            (1, &mut self.group),
            (2, &mut self.status),
        ] {
            to.clear();
            to.push_str(r.get_ref(col)?.as_str()?);
        }
        self.reasons = r.get(3)?;
        Ok(())
    }

    /// The row ahead, decoded; `None` if its group name no longer parses.
    fn item(&mut self) -> Option<(GroupName, MembershipState)> {
        let name = self.names.get(&self.group)?;
        Some((name, membership_state(&self.status, self.reasons.take())))
    }

    /// Move the memberships of `employee` into `out` (sorted by group, as
    /// the scan gives them), skipping rows of refs before it: those belong
    /// to employees the snapshot left out. (`out` is reused: the caller
    /// copies it into an exact-size list.)
    fn take_for(
        &mut self,
        employee: &str,
        out: &mut Vec<(GroupName, MembershipState)>,
    ) -> rusqlite::Result<()> {
        while !self.done {
            match self.employee.as_str().cmp(employee) {
                std::cmp::Ordering::Greater => break,
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => out.extend(self.item()),
            }
            self.advance()?;
        }
        Ok(())
    }

    /// Step over the memberships of `employee` and of refs before it.
    fn skip_to(&mut self, employee: &str) -> rusqlite::Result<()> {
        while !self.done && self.employee.as_str() <= employee {
            self.advance()?;
        }
        Ok(())
    }
}

/// Rows in `table`, to size a map before filling it.
fn count_rows(conn: &Connection, table: &str) -> rusqlite::Result<usize> {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| usize::try_from(n).unwrap_or(0))
}

/// The employers' numbers ([`EmployeeSnap::employer_no`]), found by the
/// text of a row's employer ref, and their shared refs by number (the
/// snapshot's `employer_numbers`). Keys are inline (`compact_str`), so a
/// million random lookups read no scattered heap copy of the key (probing
/// the employers map itself was a seventh of loading a million employees),
/// and an employee row takes only the number: a shared ref's clone
/// touches a count beside its text, one more cache miss per row.
struct EmployerRefs {
    /// Each ref's number by its text.
    by_text: FxHashMap<compact_str::CompactString, u32>,
    /// The refs by number: the snapshot's `employer_numbers`.
    by_number: Vec<EmployerRef>,
    /// The number [`EmployerRefs::near`] last found: the groups and
    /// connections tables list an employer's rows one after another, so
    /// most rows need no lookup.
    last: Option<u32>,
    /// Each number by the employer's stored `no` (schema v6), `u32::MAX`
    /// for none: a small array, where the text's map is a cache miss.
    by_stored: Vec<u32>,
}

impl EmployerRefs {
    /// The employers' (stored number, ref), numbered in that order: the
    /// order they were written in, which the groups and connections
    /// tables mostly follow too ([`EmployerRefs::near`]).
    fn new(scanned: Vec<(Option<u32>, EmployerRef)>) -> EmployerRefs {
        let count = scanned.len();
        let mut by_stored = Vec::new();
        let mut by_number = Vec::with_capacity(count);
        for (no, (stored, k)) in scanned.into_iter().enumerate() {
            by_number.push(k);
            let Some(at) = stored.map(|s| s as usize) else {
                continue;
            };
            // Numbers go up one employer at a time: one far above the
            // employers' count is not this scheme's, and is left to the
            // text rather than sizing the array by it.
            if at > 4 * count + 1024 {
                continue;
            }
            if by_stored.len() <= at {
                by_stored.resize(at + 1, u32::MAX);
            }
            by_stored[at] = no as u32;
        }
        let by_text = by_number
            .iter()
            .enumerate()
            .map(|(no, k)| (k.as_str().into(), no as u32))
            .collect();
        EmployerRefs {
            by_text,
            by_number,
            last: None,
            by_stored,
        }
    }

    /// The number of the employer stored as `no`, if it has one.
    fn stored(&self, no: Option<i64>) -> Option<u32> {
        let no = usize::try_from(no?).ok()?;
        self.by_stored.get(no).copied().filter(|&n| n != u32::MAX)
    }

    /// [`EmployerRefs::number`], for rows that come grouped by employer:
    /// the last number found first, then the next one (the groups and
    /// connections of the employer written after the last).
    fn near(&mut self, raw: &str) -> Option<u32> {
        let is = |no: u32| {
            self.by_number
                .get(no as usize)
                .is_some_and(|k| k.as_str() == raw)
        };
        let no = match self.last {
            Some(no) if is(no) => no,
            Some(no) if is(no + 1) => no + 1,
            _ => self.number(raw)?,
        };
        self.last = Some(no);
        Some(no)
    }

    /// The ref's number, a new one for an employer the state no longer
    /// lists; `None` if it is not a valid ref.
    fn number(&mut self, raw: &str) -> Option<u32> {
        if let Some(no) = self.by_text.get(raw) {
            return Some(*no);
        }
        let k = EmployerRef::parse(raw).ok()?;
        k.pin();
        let no = self.by_number.len() as u32;
        self.by_number.push(k);
        self.by_text.insert(raw.into(), no);
        Some(no)
    }
}

/// Rows of a table listing employers' things (groups, connections), each
/// employer's together by its number, for the snapshot's per-employer
/// maps: filled by number, with no hash of a key per row.
struct ByEmployer<T>(Vec<Vec<T>>);

impl<T> Default for ByEmployer<T> {
    fn default() -> Self {
        ByEmployer(Vec::new())
    }
}

impl<T> ByEmployer<T> {
    fn push(&mut self, no: u32, row: T) {
        let no = no as usize;
        if self.0.len() <= no {
            self.0.resize_with(no + 1, Vec::new);
        }
        self.0[no].push(row);
    }

    /// Into `map`, each employer's rows made into a `V` by `make`.
    fn into_map<V>(
        self,
        refs: &EmployerRefs,
        map: &mut FxHashMap<EmployerRef, V>,
        make: impl Fn(Vec<T>) -> V,
    ) {
        map.reserve(self.0.iter().filter(|g| !g.is_empty()).count());
        for (no, rows) in self.0.into_iter().enumerate() {
            if !rows.is_empty() {
                map.insert(refs.by_number[no].clone(), make(rows));
            }
        }
    }
}

/// Ops whose last attempt may have reached the server unseen.
pub fn uncertain_ops(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut st =
        conn.prepare("SELECT op_key FROM journal WHERE status IN ('in_flight', 'unknown')")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Record an operation before its first request is sent.
#[allow(clippy::too_many_arguments)] // one column each
pub fn journal_begin(
    tx: &Transaction,
    op_key: &str,
    kind: &str,
    idem_key: &str,
    fp: &str,
    run_id: i64,
    now: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO journal(op_key, kind, idem_key, fp, status, attempts, run_id, first_sent, updated, error)
         VALUES (?1, ?2, ?3, ?4, 'in_flight', 1, ?5, ?6, ?6, NULL)
         ON CONFLICT(op_key) DO UPDATE SET
            kind = excluded.kind, idem_key = excluded.idem_key, fp = excluded.fp,
            status = 'in_flight', attempts = journal.attempts + 1, run_id = excluded.run_id,
            first_sent = CASE WHEN journal.status IN ('in_flight','unknown') AND journal.idem_key = excluded.idem_key
                              THEN journal.first_sent ELSE excluded.first_sent END,
            updated = excluded.updated, error = NULL",
        params![op_key, kind, idem_key, fp, run_id, now],
    )?;
    Ok(())
}

/// Record an operation's outcome and, when it succeeded, its effect, in the
/// caller's transaction.
#[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
pub fn journal_finish(
    tx: &Transaction,
    op_key: &str,
    kind: &str,
    status: JournalStatus,
    effect: Option<&Effect>,
    error: Option<&str>,
    run_id: i64,
    now: &str,
) -> rusqlite::Result<()> {
    if status == JournalStatus::Done {
        // The effect (below, same transaction) is the record of a done
        // operation; its journal row would be history nobody reads.
        tx.execute("DELETE FROM journal WHERE op_key = ?1", params![op_key])?;
    } else {
        tx.execute(
        "INSERT INTO journal(op_key, kind, idem_key, fp, status, attempts, run_id, first_sent, updated, error)
         VALUES (?1, ?2, '', '', ?3, 0, ?4, ?5, ?5, ?6)
         ON CONFLICT(op_key) DO UPDATE SET status = excluded.status, run_id = excluded.run_id,
            updated = excluded.updated, error = excluded.error",
        params![op_key, kind, status.as_str(), run_id, now, error],
    )?;
    }
    match effect {
        Some(effect) => record_effect(tx, effect),
        None => Ok(()),
    }
}

/// Put `effect` in the state and bump its version, in the caller's
/// transaction: what a done operation leaves, and all that a change seen
/// without an operation (a refreshed Noyo status) leaves.
pub fn record_effect(tx: &Transaction, effect: &Effect) -> rusqlite::Result<()> {
    apply_effect(tx, effect)?;
    bump_version(tx)
}

/// An employer row gets its number (schema v6) when first written, one more
/// than the largest, and keeps it: the upserts below never set `no`. An
/// employee row takes its employer's number with its employer's ref.
fn apply_effect(tx: &Transaction, effect: &Effect) -> rusqlite::Result<()> {
    match effect {
        Effect::Employer {
            employer_ref,
            kota_id,
            fp,
        } => {
            tx.execute(
                "INSERT INTO employers(employer_ref, kota_id, fp, no) VALUES (?1, ?2, ?3, (SELECT coalesce(max(no), 0) + 1 FROM employers))
                 ON CONFLICT(employer_ref) DO UPDATE SET kota_id = excluded.kota_id, fp = excluded.fp",
                params![employer_ref.as_str(), kota_id, fp.to_blob()],
            )?;
        }
        Effect::KotaGroup {
            employer_ref,
            name,
            kota_id,
        } => {
            tx.execute(
                "INSERT OR REPLACE INTO kota_groups(employer_ref, name, kota_id) VALUES (?1, ?2, ?3)",
                params![employer_ref.as_str(), name.as_str(), kota_id],
            )?;
        }
        Effect::IcGroup {
            employer_ref,
            name,
            ic_id,
        } => {
            tx.execute(
                "INSERT OR REPLACE INTO ic_groups(employer_ref, name, ic_id) VALUES (?1, ?2, ?3)",
                params![employer_ref.as_str(), name.as_str(), ic_id],
            )?;
        }
        Effect::Connection {
            employer_ref,
            carrier_id,
            noyo_id,
            noyo_group_id,
            fp,
            status,
        } => {
            tx.execute(
                "INSERT OR REPLACE INTO connections(employer_ref, carrier_id, noyo_id, noyo_group_id, fp, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![employer_ref.as_str(), carrier_id.to_string(), noyo_id, noyo_group_id, fp.to_blob(), status],
            )?;
            // The employer's Noyo group is the one its first connection made.
            tx.execute(
                "INSERT INTO employers(employer_ref, kota_id, fp, noyo_group_id, no) VALUES (?1, NULL, x'', ?2, (SELECT coalesce(max(no), 0) + 1 FROM employers))
                 ON CONFLICT(employer_ref) DO UPDATE SET noyo_group_id = COALESCE(employers.noyo_group_id, excluded.noyo_group_id)",
                params![employer_ref.as_str(), noyo_group_id],
            )?;
        }
        Effect::ConnectionStatus {
            employer_ref,
            carrier_id,
            status,
        } => {
            tx.execute(
                "UPDATE connections SET status = ?3 WHERE employer_ref = ?1 AND carrier_id = ?2",
                params![employer_ref.as_str(), carrier_id.to_string(), status],
            )?;
        }
        Effect::Employee {
            employee_ref,
            employer_ref,
            kota_id,
            fp,
        } => {
            tx.execute(
                "INSERT INTO employees(employee_ref, employer_ref, employer_no, kota_id, fp)
                    VALUES (?1, ?2, (SELECT no FROM employers WHERE employer_ref = ?2), ?3, ?4)
                 ON CONFLICT(employee_ref) DO UPDATE SET employer_ref = excluded.employer_ref,
                    employer_no = excluded.employer_no, kota_id = excluded.kota_id,
                    fp = excluded.fp, row_digest = NULL",
                params![
                    employee_ref.as_str(),
                    employer_ref.as_str(),
                    kota_id,
                    fp.to_blob()
                ],
            )?;
        }
        Effect::EmployeeOffboarded { employee_ref } => {
            tx.execute(
                "UPDATE employees SET offboarded = 1, row_digest = NULL WHERE employee_ref = ?1",
                params![employee_ref.as_str()],
            )?;
        }
        Effect::Membership {
            employee_ref,
            group,
            ineligible,
        } => {
            let status = if ineligible.is_some() {
                "ineligible"
            } else {
                "added"
            };
            tx.execute(
                "INSERT OR REPLACE INTO memberships(employee_ref, group_name, status, reasons) VALUES (?1, ?2, ?3, ?4)",
                params![employee_ref.as_str(), group.as_str(), status, ineligible],
            )?;
            // The employee's row digest promised "nothing to do" against
            // the memberships it was written beside.
            tx.execute(
                "UPDATE employees SET row_digest = NULL WHERE employee_ref = ?1",
                params![employee_ref.as_str()],
            )?;
        }
    }
    Ok(())
}

/// Write the row digests of employees an apply found nothing to do for
/// (see schema v4), if the state is still at `version`, the one planned
/// against: a digest vouches for the state row it was computed beside.
/// Returns how many were written. The state version is not bumped:
/// digests change no plan, only how fast it is made.
pub fn record_row_digests(
    conn: &mut Connection,
    version: u64,
    digests: &[(EmployeeRef, u64)],
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    if self::version(&tx)? != version {
        return Ok(0);
    }
    let mut n = 0;
    {
        let mut st = tx.prepare("UPDATE employees SET row_digest = ?2 WHERE employee_ref = ?1")?;
        for (ee, d) in digests {
            n += st.execute(params![ee.as_str(), *d as i64])?;
        }
    }
    tx.commit()?;
    Ok(n)
}

/// Who holds the run lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockHolder {
    pub run_id: i64,
    pub pid: u32,
    pub host: String,
    pub started: String,
}

pub fn lock_holder(conn: &Connection) -> rusqlite::Result<Option<LockHolder>> {
    conn.query_row(
        "SELECT run_id, pid, host, started FROM run_lock WHERE id = 1",
        [],
        |r| {
            Ok(LockHolder {
                run_id: r.get(0)?,
                pid: r.get(1)?,
                host: r.get(2)?,
                started: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Take the run lock and open a run, or name the holder.
pub fn acquire_lock(
    conn: &mut Connection,
    command: &str,
    pid: u32,
    host: &str,
    now: &str,
) -> rusqlite::Result<Result<i64, LockHolder>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Some(holder) = lock_holder(&tx)? {
        return Ok(Err(holder));
    }
    tx.execute(
        "INSERT INTO runs(command, started, pid, host) VALUES (?1, ?2, ?3, ?4)",
        params![command, now, pid, host],
    )?;
    let run_id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO run_lock(id, run_id, pid, host, started) VALUES (1, ?1, ?2, ?3, ?4)",
        params![run_id, pid, host, now],
    )?;
    tx.commit()?;
    Ok(Ok(run_id))
}

/// Close a run, record its request figures per target and release its lock.
pub fn release_lock(
    conn: &mut Connection,
    run_id: i64,
    outcome: &str,
    summary: &str,
    requests: &[(&str, CounterValues)],
    now: &str,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE runs SET finished = ?2, outcome = ?3, summary = ?4 WHERE id = ?1",
        params![run_id, now, outcome, summary],
    )?;
    for (target, c) in requests {
        tx.execute(
            "INSERT OR REPLACE INTO run_requests(run_id, target, requests, writes, retries,
                throttled, server_errors, network_errors)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run_id,
                target,
                c.requests,
                c.writes,
                c.retries,
                c.throttled,
                c.server_errors,
                c.network_errors
            ],
        )?;
    }
    tx.execute("DELETE FROM run_lock WHERE run_id = ?1", [run_id])?;
    tx.commit()
}

/// Remove a lock left by a run that died; marks its run as abandoned.
pub fn break_lock(conn: &mut Connection, now: &str) -> rusqlite::Result<Option<LockHolder>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let holder = lock_holder(&tx)?;
    if let Some(h) = &holder {
        tx.execute(
            "UPDATE runs SET finished = ?2, outcome = 'abandoned' WHERE id = ?1 AND finished IS NULL",
            params![h.run_id, now],
        )?;
        tx.execute("DELETE FROM run_lock", [])?;
    }
    tx.commit()?;
    Ok(holder)
}

/// One past run, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub command: String,
    pub started: String,
    pub finished: Option<String>,
    pub outcome: Option<String>,
    pub summary: Option<serde_json::Value>,
    /// Request figures per target; empty for a run that died before it
    /// could record them.
    pub requests: BTreeMap<String, CounterValues>,
}

pub fn recent_runs(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<RunRow>> {
    let mut st = conn.prepare(
        "SELECT id, command, started, finished, outcome, summary FROM runs ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st.query_map([limit], |r| {
        Ok(RunRow {
            id: r.get(0)?,
            command: r.get(1)?,
            started: r.get(2)?,
            finished: r.get(3)?,
            outcome: r.get(4)?,
            summary: r
                .get::<_, Option<String>>(5)?
                .and_then(|s| serde_json::from_str(&s).ok()),
            requests: BTreeMap::new(),
        })
    })?;
    let mut runs: Vec<RunRow> = rows.collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare(
        "SELECT target, requests, writes, retries, throttled, server_errors, network_errors
         FROM run_requests WHERE run_id = ?1 ORDER BY target",
    )?;
    for run in &mut runs {
        let figures = st.query_map([run.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                CounterValues {
                    requests: r.get(1)?,
                    writes: r.get(2)?,
                    retries: r.get(3)?,
                    throttled: r.get(4)?,
                    server_errors: r.get(5)?,
                    network_errors: r.get(6)?,
                },
            ))
        })?;
        run.requests = figures.collect::<rusqlite::Result<_>>()?;
    }
    Ok(runs)
}

/// A journal row that is not done, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalRow {
    pub op_key: String,
    pub status: String,
    pub attempts: i64,
    pub updated: String,
    pub error: Option<String>,
}

pub fn open_journal(conn: &Connection) -> rusqlite::Result<Vec<JournalRow>> {
    let mut st = conn.prepare(
        "SELECT op_key, status, attempts, updated, error FROM journal
         WHERE status <> 'done' ORDER BY status, op_key",
    )?;
    let rows = st.query_map([], |r| {
        Ok(JournalRow {
            op_key: r.get(0)?,
            status: r.get(1)?,
            attempts: r.get(2)?,
            updated: r.get(3)?,
            error: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Journal counts by status.
pub fn journal_counts(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st =
        conn.prepare("SELECT status, COUNT(*) FROM journal GROUP BY status ORDER BY status")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// How many employees the state holds, how many of them are offboarded,
/// and how many carry a row digest (their unchanged rows are skipped).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct EmployeeCounts {
    pub synced: i64,
    pub offboarded: i64,
    pub row_digests: i64,
}

pub fn employee_counts(conn: &Connection) -> rusqlite::Result<EmployeeCounts> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(offboarded), 0), count(row_digest) FROM employees",
        [],
        |r| {
            Ok(EmployeeCounts {
                synced: r.get(0)?,
                offboarded: r.get(1)?,
                row_digests: r.get(2)?,
            })
        },
    )
}

/// One connection's ids and last status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionRow {
    pub employer_ref: String,
    pub carrier_id: String,
    pub noyo_id: String,
    pub status: String,
}

pub fn connections(conn: &Connection) -> rusqlite::Result<Vec<ConnectionRow>> {
    let mut st = conn.prepare(
        "SELECT employer_ref, carrier_id, noyo_id, status FROM connections ORDER BY employer_ref, carrier_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(ConnectionRow {
            employer_ref: r.get(0)?,
            carrier_id: r.get(1)?,
            noyo_id: r.get(2)?,
            status: r.get(3)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new state database in a temporary directory, with `sql` run in it.
    fn state_with(sql: &str) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("state.db")).unwrap();
        conn.execute_batch(sql).unwrap();
        (dir, conn)
    }

    /// A new state gets the larger pages; a state written with SQLite's
    /// default keeps its own, and opens and migrates as before.
    #[test]
    fn new_states_get_the_page_size_and_old_ones_keep_theirs() {
        let page_size =
            |c: &Connection| -> u32 { c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap() };
        let (_dir, conn) = state_with("");
        assert_eq!(page_size(&conn), schema::PAGE_SIZE);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(schema::MIGRATIONS[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        assert_eq!(page_size(&old), 4096);
        drop(old);
        let conn = open(&path).unwrap();
        assert_eq!(page_size(&conn), 4096);
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::CURRENT_VERSION);
    }

    /// The merge of the two ordered scans: each employee gets exactly its
    /// own memberships, sorted, whatever lies between (memberships of
    /// refs without an employee row, or of rows the snapshot skips).
    #[test]
    fn memberships_merge_onto_their_employees() {
        let (_dir, conn) = state_with(
            "INSERT INTO employers(employer_ref, kota_id, fp) VALUES ('ER1', 'er_1', x'');
             INSERT INTO employees(employee_ref, employer_ref, kota_id, fp) VALUES
                ('E1', 'ER1', 'ee_1', x''), ('E3', 'ER1', 'ee_3', x''),
                ('E5', '', 'ee_5', x''), ('E6', 'ER1', 'ee_6', x'');
             INSERT INTO memberships(employee_ref, group_name, status, reasons) VALUES
                ('E0', 'A', 'added', NULL), ('E1', 'B', 'added', NULL),
                ('E1', 'A', 'ineligible', 'not_started|2026-11-01'),
                ('E2', 'A', 'added', NULL), ('E3', 'C', 'added', NULL),
                ('E5', 'A', 'added', NULL), ('E6', ' ', 'added', NULL),
                ('E6', 'D', 'added', NULL), ('E9', 'A', 'added', NULL);",
        );
        let snap = load_snapshot(&conn, Detail::Whole).unwrap();
        let groups = |e: &str| -> Vec<String> {
            snap.employees[e]
                .memberships
                .iter()
                .map(|(g, _)| g.to_string())
                .collect()
        };
        assert_eq!(snap.employees.len(), 3, "E5's employer ref is invalid");
        assert_eq!(groups("E1"), ["A", "B"]);
        assert_eq!(
            snap.employees["E1"].memberships[0].1,
            MembershipState::ineligible(
                "not_started".into(),
                chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
            )
        );
        assert_eq!(groups("E3"), ["C"]);
        assert_eq!(groups("E6"), ["D"], "an invalid group name is skipped");
        assert_eq!(&*snap.employees["E3"].kota_id, "ee_3");
        let plan = load_snapshot(&conn, Detail::Planning).unwrap();
        assert_eq!(&*plan.employees["E3"].kota_id, "");
        assert_eq!(plan.employees["E1"].memberships.len(), 2);

        // A planning snapshot summarises digested employees (E3) and gives
        // the others the same memberships, whether they are scanned or
        // looked up one by one.
        conn.execute_batch("UPDATE employees SET row_digest = 9 WHERE employee_ref = 'E3'")
            .unwrap();
        let plan = load_snapshot(&conn, Detail::Planning).unwrap();
        assert!(plan.employees["E3"].partial && plan.employees["E3"].memberships.is_empty());
        assert!(!plan.employees["E1"].partial);
        let whole: Vec<u32> = ["E1", "E6"]
            .iter()
            .map(|e| plan.employees.position(*e).unwrap())
            .collect();
        for one_by_one in [false, true] {
            let mut employees = plan.employees.clone();
            for &at in &whole {
                employees.at_mut(at).memberships = Box::default();
            }
            load_memberships(&conn, &mut employees, &whole, one_by_one).unwrap();
            for e in ["E1", "E6"] {
                assert_eq!(
                    employees[e].memberships, snap.employees[e].memberships,
                    "{e}, one by one: {one_by_one}"
                );
            }
            assert!(employees["E3"].memberships.is_empty());
        }
    }

    /// A row digest vouches for the state row it was recorded beside: any
    /// effect on the employee or a membership of theirs takes it away, an
    /// effect on someone else does not, and a digest planned against an
    /// older state is not recorded at all.
    /// A summarising snapshot reads digested employees from the summary
    /// index and the others' fingerprints (and, nightly, Kota ids) after,
    /// by one scan or by lookups alike: the same rows as a whole load. A
    /// plan's snapshot leaves the groups' and connections' ids empty.
    #[test]
    fn summarised_loads_fill_whole_rows_as_a_whole_load_does() {
        let (_dir, conn) = state_with(
            "INSERT INTO employers(employer_ref, kota_id, fp) VALUES ('ER1', 'er_1', x'');
             INSERT INTO employees(employee_ref, employer_ref, kota_id, fp, offboarded, row_digest)
             VALUES ('E1', 'ER1', 'ee_1', x'0100000000000000', 0, 5), ('E2', 'ER1', 'ee_2', x'0200000000000000', 1, NULL),
                    ('E3', '', 'ee_3', x'0300000000000000', 0, NULL), ('E4', 'ER1', 'ee_4', x'0400000000000000', 0, 0),
                    ('E5', 'ER1', 'ee_5', x'0500000000000000', 0, 9), ('E6', 'ER1', 'ee_6', x'0600000000000000', 0, NULL);
             INSERT INTO kota_groups(employer_ref, name, kota_id) VALUES
                ('ER1', 'B', 'gr_2'), ('GONE', 'A', 'gr_3'), ('ER1', 'A', 'gr_1');
             INSERT INTO ic_groups(employer_ref, name, ic_id) VALUES ('ER1', 'A', 'ic_1');
             INSERT INTO connections(employer_ref, carrier_id, noyo_id, noyo_group_id, fp, status)
             VALUES ('ER1', '8fac0992-933a-4743-8dab-0d606ef2569e', 'c_1', 'g_1', x'0100000000000000', 'completed');",
        );
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {EMPLOYEE_SUMMARIES}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|p| p.contains("COVERING INDEX employees_summary")),
            "{plan:?}"
        );
        let all = load_snapshot(&conn, Detail::Whole).unwrap();
        assert_eq!(all.employees.len(), 5, "E3's employer ref is invalid");
        for detail in [Detail::Planning, Detail::Nightly] {
            let loaded = load_snapshot(&conn, detail).unwrap();
            // A plan's snapshot has the groups and connections without
            // their remote ids; apply's has them.
            let ids = detail == Detail::Nightly;
            // Each employer's groups together, in name order, an employer
            // the employers table lacks included.
            let id = |id: &str| if ids { id.to_owned() } else { String::new() };
            let groups = |g: &Groups| -> Vec<(String, String)> {
                g.iter()
                    .map(|(n, id)| (n.to_string(), id.clone()))
                    .collect()
            };
            let a_b = [("A".to_owned(), id("gr_1")), ("B".to_owned(), id("gr_2"))];
            assert_eq!(groups(&loaded.kota_groups["ER1"]), a_b);
            assert_eq!(
                groups(&loaded.kota_groups["GONE"]),
                [("A".to_owned(), id("gr_3"))]
            );
            assert_eq!(loaded.kota_groups["ER1"].get("B"), Some(&id("gr_2")));
            assert_eq!(loaded.kota_groups["ER1"].get("C"), None);
            assert_eq!(
                groups(&loaded.ic_groups["ER1"]),
                [("A".to_owned(), id("ic_1"))]
            );
            let c = loaded.connections["ER1"]
                .get(&CarrierId::parse("8fac0992-933a-4743-8dab-0d606ef2569e").unwrap())
                .unwrap();
            assert_eq!((c.status.as_str(), c.fp.0.len()), ("completed", 1));
            assert_eq!(c.noyo_id, if ids { "c_1" } else { "" });
            assert_eq!(c.noyo_group_id, if ids { "g_1" } else { "" });
            let whole: Vec<u32> = (0..loaded.employees.len() as u32)
                .filter(|&at| !loaded.employees.at(at).1.partial)
                .collect();
            let names: Vec<&str> = whole
                .iter()
                .map(|&at| loaded.employees.at(at).0.as_str())
                .collect();
            assert_eq!(names, ["E2", "E4", "E6"], "{detail:?}");
            for one_by_one in [false, true] {
                let mut employees = loaded.employees.clone();
                for &at in &whole {
                    let row = employees.at_mut(at);
                    (row.fp, row.kota_id) = Default::default();
                }
                load_whole_rows(&conn, &mut employees, &whole, detail, one_by_one).unwrap();
                for &at in &whole {
                    let (k, row) = employees.at(at);
                    let want = &all.employees[k.as_str()];
                    assert_ne!(want.fp, Sections::default());
                    assert_eq!(row.fp, want.fp, "{k}, {detail:?}, one by one: {one_by_one}");
                    assert_eq!(row.offboarded, want.offboarded, "{k}");
                    let kota_id = if detail == Detail::Nightly {
                        &*want.kota_id
                    } else {
                        ""
                    };
                    assert_eq!(&*row.kota_id, kota_id, "{k}, {detail:?}");
                }
            }
            for k in ["E1", "E5"] {
                let row = &loaded.employees[k];
                assert!(row.partial && row.fp == Sections::default() && row.kota_id.is_empty());
                assert_eq!(row.row_digest, all.employees[k].row_digest);
            }
        }
    }

    /// The stored numbers (schema v6): each employer written gets its own
    /// and keeps it through later writes, each employee written carries
    /// its employer's, and the load finds employers by them; a row without
    /// a usable number (its employer unnumbered when it was written, or a
    /// number no employer has) is found by its employer's ref instead.
    #[test]
    fn employers_are_numbered_once_and_employees_carry_the_number() {
        let (_dir, mut conn) = state_with("");
        let er = |s: &str| EmployerRef::parse(s).unwrap();
        let ee = |s: &str| EmployeeRef::parse(s).unwrap();
        let employer = |r: &str| Effect::Employer {
            employer_ref: er(r),
            kota_id: format!("k_{r}"),
            fp: Sections::default(),
        };
        let employee = |e: &str, r: &str| Effect::Employee {
            employee_ref: ee(e),
            employer_ref: er(r),
            kota_id: format!("k_{e}"),
            fp: Sections::default(),
        };
        let tx = conn.transaction().unwrap();
        for effect in [
            employer("ER1"),
            employer("ER2"),
            employee("E1", "ER1"),
            employee("E2", "ER2"),
            // An employee written before its employer: no number yet.
            employee("E3", "ER3"),
            // An employer first written by its connection.
            Effect::Connection {
                employer_ref: er("ER3"),
                carrier_id: CarrierId::parse("8fac0992-933a-4743-8dab-0d606ef2569e").unwrap(),
                noyo_id: "n1".into(),
                noyo_group_id: "g1".into(),
                fp: Sections::default(),
                status: "pending".into(),
            },
            employee("E4", "ER3"),
            // Written again: the same numbers.
            employer("ER1"),
            employer("ER3"),
            // Moved to another employer: the other's number.
            employee("E2", "ER1"),
        ] {
            apply_effect(&tx, &effect).unwrap();
        }
        tx.commit().unwrap();
        // Each row's ref and number, as "ref=number" ("ref=" for none).
        let numbered = |sql: &str| -> Vec<String> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| {
                    let no: Option<i64> = r.get(1)?;
                    Ok(format!(
                        "{}={}",
                        r.get::<_, String>(0)?,
                        no.map_or(String::new(), |n| n.to_string())
                    ))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(
            numbered("SELECT employer_ref, no FROM employers ORDER BY employer_ref"),
            ["ER1=1", "ER2=2", "ER3=3"]
        );
        assert_eq!(
            numbered("SELECT employee_ref, employer_no FROM employees ORDER BY employee_ref"),
            ["E1=1", "E2=1", "E3=", "E4=3"]
        );
        // A number no employer has (as from a hand-edited state) and one
        // far out of range: found by the ref's text.
        conn.execute_batch(
            "INSERT INTO employees(employee_ref, employer_ref, employer_no, kota_id, fp)
             VALUES ('E5', 'ER2', 7, 'k', x''), ('E6', 'ER3', 4000000000, 'k', x'')",
        )
        .unwrap();
        for detail in [Detail::Whole, Detail::Planning, Detail::Nightly] {
            let snap = load_snapshot(&conn, detail).unwrap();
            let employer = |e: &str| snap.employer_of(&snap.employees[e]).as_str();
            assert_eq!(
                ["E1", "E2", "E3", "E4", "E5", "E6"].map(employer),
                ["ER1", "ER1", "ER3", "ER3", "ER2", "ER3"],
                "{detail:?}"
            );
        }
    }

    /// Group rows find their employers whatever their order: the last
    /// employer's again, the next one written, any other, and one the
    /// employers table lacks.
    #[test]
    fn groups_find_their_employers_in_any_order() {
        let (_dir, conn) = state_with(
            "INSERT INTO employers(employer_ref, kota_id, fp, no) VALUES
                ('ER1', 'k1', x'', 1), ('ER2', 'k2', x'', 2), ('ER3', 'k3', x'', 3),
                ('ER4', 'k4', x'', 4);
             INSERT INTO kota_groups(employer_ref, name, kota_id) VALUES
                ('ER1', 'A', 'g1'), ('ER1', 'B', 'g2'), ('ER2', 'A', 'g3'),
                ('ER3', 'A', 'g4'), ('ER1', 'C', 'g5'), ('ER4', 'A', 'g6'),
                ('GONE', 'A', 'g7'), ('ER3', 'B', 'g8'), ('ER4', 'B', 'g9');",
        );
        let snap = load_snapshot(&conn, Detail::Whole).unwrap();
        let groups = |er: &str| -> Vec<String> {
            snap.kota_groups[er]
                .iter()
                .map(|(n, id)| format!("{n}={id}"))
                .collect()
        };
        assert_eq!(groups("ER1"), ["A=g1", "B=g2", "C=g5"]);
        assert_eq!(groups("ER2"), ["A=g3"]);
        assert_eq!(groups("ER3"), ["A=g4", "B=g8"]);
        assert_eq!(groups("ER4"), ["A=g6", "B=g9"]);
        assert_eq!(groups("GONE"), ["A=g7"]);
    }

    /// Employees name their employers by number, the same number for the
    /// same employer, including one the employers table lacks; a summarised
    /// employee's whole row comes with the number the snapshot gave it, and
    /// not at all if the state has it under another employer.
    #[test]
    fn employees_name_their_employers_by_number() {
        let (_dir, conn) = state_with(
            "INSERT INTO employers(employer_ref, kota_id, fp) VALUES
                ('ER1', 'er_1', x''), ('ER2', 'er_2', x'');
             INSERT INTO employees(employee_ref, employer_ref, kota_id, fp, row_digest) VALUES
                ('E1', 'ER1', 'ee_1', x'', 5), ('E2', 'ER2', 'ee_2', x'', NULL),
                ('E3', 'ER1', 'ee_3', x'', 7), ('E4', 'GONE', 'ee_4', x'', 8);
             INSERT INTO memberships(employee_ref, group_name, status, reasons) VALUES
                ('E1', 'A', 'added', NULL);",
        );
        let snap = load_snapshot(&conn, Detail::Planning).unwrap();
        let employer = |e: &str| snap.employer_of(&snap.employees[e]).as_str();
        assert_eq!(
            ["E1", "E2", "E3", "E4"].map(employer),
            ["ER1", "ER2", "ER1", "GONE"]
        );
        assert_eq!(
            snap.employees["E1"].employer_no,
            snap.employees["E3"].employer_no
        );
        assert_eq!(
            snap.employer_numbers.len(),
            3,
            "each employer numbered once"
        );

        let e1 = &snap.employees["E1"];
        assert!(e1.partial);
        let wanted = |employer: &str| Summarised {
            employee: EmployeeRef::parse("E1").unwrap(),
            employer: EmployerRef::parse(employer).unwrap(),
            employer_no: e1.employer_no,
        };
        let rows = fetch_employees(&conn, &[wanted("ER1")]).unwrap();
        let whole = rows[0].as_ref().expect("E1 is under ER1");
        assert_eq!(whole.employer_no, e1.employer_no);
        assert_eq!(whole.row_digest, 5);
        assert_eq!(whole.memberships.len(), 1);
        assert!(!whole.partial);
        let moved = fetch_employees(&conn, &[wanted("ER2")]).unwrap();
        assert!(moved[0].is_none(), "E1 is not under ER2");
    }

    #[test]
    fn effects_on_an_employee_clear_its_row_digest() {
        let (_dir, mut conn) = state_with(
            "INSERT INTO employers(employer_ref, kota_id, fp) VALUES ('ER1', 'er_1', x'');
             INSERT INTO employees(employee_ref, employer_ref, kota_id, fp) VALUES
                ('E1', 'ER1', 'ee_1', x''), ('E2', 'ER1', 'ee_2', x'');",
        );
        let ee = |s: &str| EmployeeRef::parse(s).unwrap();
        let er = EmployerRef::parse("ER1").unwrap();
        let digests = |conn: &Connection| -> Vec<(String, Option<i64>)> {
            let mut st = conn
                .prepare("SELECT employee_ref, row_digest FROM employees ORDER BY 1")
                .unwrap();
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        let stale = version(&conn).unwrap() + 1;
        assert_eq!(
            record_row_digests(&mut conn, stale, &[(ee("E1"), 5)]).unwrap(),
            0
        );
        assert_eq!(digests(&conn)[0].1, None);
        let effects = [
            Effect::Employee {
                employee_ref: ee("E1"),
                employer_ref: er.clone(),
                kota_id: "ee_1".into(),
                fp: Sections::default(),
            },
            Effect::EmployeeOffboarded {
                employee_ref: ee("E1"),
            },
            Effect::Membership {
                employee_ref: ee("E1"),
                group: GroupName::parse("Health").unwrap(),
                ineligible: None,
            },
        ];
        for effect in &effects {
            let v = version(&conn).unwrap();
            let both = [(ee("E1"), 5), (ee("E2"), 7)];
            assert_eq!(record_row_digests(&mut conn, v, &both).unwrap(), 2);
            assert_eq!(version(&conn).unwrap(), v, "digests change no plan");
            let tx = conn.transaction().unwrap();
            record_effect(&tx, effect).unwrap();
            tx.commit().unwrap();
            assert_eq!(
                digests(&conn),
                [("E1".to_owned(), None), ("E2".to_owned(), Some(7))],
                "{effect:?}"
            );
        }
    }
}
