//! The state database schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version. Each migration is a batch
//! of SQL that moves the schema from version N to N+1; opening a database
//! runs the missing ones in one transaction, so a database from an older
//! release is upgraded in place and a crash mid-migration leaves the old
//! version intact.
//!
//! No table holds personal data: natural keys (payroll refs), group names,
//! carrier ids, remote ids, salted content fingerprints, statuses and error
//! codes only.

use rusqlite::Connection;

/// The page size of a new state, in bytes, fixed when the file is first
/// written (a state made with SQLite's default 4 KiB keeps it). Every run
/// reads the whole file once (the integrity check) and scans the largest
/// index whole: a quarter of the reads, each a system call and a page
/// header, took a third off the check (0.33-0.57 s -> 0.24-0.37 s for a
/// million employees). A changed row's lookup copies a bigger leaf, which
/// the 1%-changed plan did not notice (BENCHMARKS.md, change 44).
pub const PAGE_SIZE: u32 = 16 * 1024;

/// The migrations, in order. Index `i` moves the schema from `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE employers (
        employer_ref TEXT PRIMARY KEY,
        kota_id      TEXT,
        fp           BLOB NOT NULL,
        noyo_group_id TEXT
    ) STRICT;
    CREATE TABLE kota_groups (
        employer_ref TEXT NOT NULL,
        name         TEXT NOT NULL,
        kota_id      TEXT NOT NULL,
        PRIMARY KEY (employer_ref, name)
    ) STRICT;
    CREATE TABLE ic_groups (
        employer_ref TEXT NOT NULL,
        name         TEXT NOT NULL,
        ic_id        TEXT NOT NULL,
        PRIMARY KEY (employer_ref, name)
    ) STRICT;
    CREATE TABLE connections (
        employer_ref  TEXT NOT NULL,
        carrier_id    TEXT NOT NULL,
        noyo_id       TEXT NOT NULL,
        noyo_group_id TEXT NOT NULL,
        fp            BLOB NOT NULL,
        status        TEXT NOT NULL,
        PRIMARY KEY (employer_ref, carrier_id)
    ) STRICT;
    CREATE TABLE employees (
        employee_ref TEXT PRIMARY KEY,
        employer_ref TEXT NOT NULL,
        kota_id      TEXT NOT NULL,
        fp           BLOB NOT NULL,
        offboarded   INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE memberships (
        employee_ref TEXT NOT NULL,
        group_name   TEXT NOT NULL,
        status       TEXT NOT NULL,
        reasons      TEXT,
        PRIMARY KEY (employee_ref, group_name)
    ) STRICT;
    CREATE TABLE journal (
        op_key      TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        idem_key    TEXT NOT NULL,
        fp          TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        run_id      INTEGER NOT NULL,
        first_sent  TEXT NOT NULL,
        updated     TEXT NOT NULL,
        error       TEXT
    ) STRICT;
    CREATE INDEX journal_status ON journal(status);
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        command     TEXT NOT NULL,
        started     TEXT NOT NULL,
        finished    TEXT,
        pid         INTEGER NOT NULL,
        host        TEXT NOT NULL,
        outcome     TEXT,
        summary     TEXT
    ) STRICT;
    CREATE TABLE run_lock (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        run_id   INTEGER NOT NULL,
        pid      INTEGER NOT NULL,
        host     TEXT NOT NULL,
        started  TEXT NOT NULL
    ) STRICT;
    ",
    // 2: request figures per run and target, so `status` can say what each
    // run cost (requests, retries, 429s, 5xx, network errors) and a slow or
    // throttled night shows without opening a report. v1 kept them only
    // inside `runs.summary` (JSON, when the run finished); they are copied
    // out of it here. A run killed before it finished has no row.
    "
    CREATE TABLE run_requests (
        run_id         INTEGER NOT NULL REFERENCES runs(id),
        target         TEXT NOT NULL,
        requests       INTEGER NOT NULL,
        writes         INTEGER NOT NULL,
        retries        INTEGER NOT NULL,
        throttled      INTEGER NOT NULL,
        server_errors  INTEGER NOT NULL,
        network_errors INTEGER NOT NULL,
        PRIMARY KEY (run_id, target)
    ) STRICT;
    INSERT INTO run_requests
    SELECT runs.id, t.key,
           CAST(COALESCE(json_extract(t.value, '$.requests'), 0) AS INTEGER),
           CAST(COALESCE(json_extract(t.value, '$.writes'), 0) AS INTEGER),
           CAST(COALESCE(json_extract(t.value, '$.retries'), 0) AS INTEGER),
           CAST(COALESCE(json_extract(t.value, '$.throttled'), 0) AS INTEGER),
           CAST(COALESCE(json_extract(t.value, '$.server_errors'), 0) AS INTEGER),
           CAST(COALESCE(json_extract(t.value, '$.network_errors'), 0) AS INTEGER)
    FROM runs,
         json_each(CASE WHEN json_valid(runs.summary) THEN runs.summary ELSE '{}' END,
                   '$.requests') AS t
    WHERE t.key IS NOT NULL AND json_type(t.value) = 'object';
    -- The figures copied now live in run_requests only.
    UPDATE runs SET summary = json_remove(summary, '$.requests')
    WHERE CASE WHEN json_valid(summary)
               THEN json_type(summary, '$.requests') = 'object'
               ELSE 0 END;
    ",
    // 3: a million-employee state must load in well under a second.
    // - Done journal rows are no longer kept: once an operation's effect is
    //   in the state, its row was history only (each run's figures are in
    //   `runs` and `run_requests`), and after a first large sync those rows
    //   were two thirds of the file, read by every integrity check.
    // - employees and memberships become WITHOUT ROWID tables clustered on
    //   their keys: one b-tree each instead of a table plus a unique index,
    //   and a scan in key order lets the snapshot attach memberships to
    //   their employee by merging two ordered scans, with no lookups.
    "
    DELETE FROM journal WHERE status = 'done';
    CREATE TABLE employees_v3 (
        employee_ref TEXT PRIMARY KEY,
        employer_ref TEXT NOT NULL,
        kota_id      TEXT NOT NULL,
        fp           BLOB NOT NULL,
        offboarded   INTEGER NOT NULL DEFAULT 0
    ) STRICT, WITHOUT ROWID;
    INSERT INTO employees_v3 (employee_ref, employer_ref, kota_id, fp, offboarded)
    SELECT employee_ref, employer_ref, kota_id, fp, offboarded FROM employees;
    DROP TABLE employees;
    ALTER TABLE employees_v3 RENAME TO employees;
    CREATE TABLE memberships_v3 (
        employee_ref TEXT NOT NULL,
        group_name   TEXT NOT NULL,
        status       TEXT NOT NULL,
        reasons      TEXT,
        PRIMARY KEY (employee_ref, group_name)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO memberships_v3 (employee_ref, group_name, status, reasons)
    SELECT employee_ref, group_name, status, reasons FROM memberships;
    DROP TABLE memberships;
    ALTER TABLE memberships_v3 RENAME TO memberships;
    ",
    // 4: a nightly plan must not re-validate and re-diff a million rows that
    // did not change. `row_digest` is a salted hash of the employee's raw
    // export row (with its employer's groups and the header), written by an
    // apply that found nothing to do for that row, and cleared by every
    // effect on the employee or its memberships. While it stands, the same
    // row plans nothing again, so the reader skips it (see
    // `input::employees`). NULL: no such promise.
    "
    ALTER TABLE employees ADD COLUMN row_digest INTEGER;
    ",
    // 5: a planning snapshot of a nightly state reads only each employee's
    // summary (ref, employer, offboarding, row digest): from the table,
    // that meant reading every page of it, fingerprints and Kota ids
    // included, four times the bytes. This index holds the summaries in
    // ref order (`db::load_snapshot`).
    "
    CREATE INDEX employees_summary ON employees(employee_ref, employer_ref, offboarded, row_digest);
    ",
    // 6: each employee's employer by number. Finding a million employees'
    // employers by the text of their refs was a hash probe each, a fifth
    // of a warm plan's load. An employer's `no` is given when its row is
    // first written (one more than the largest) and never changes: no
    // statement updates it, and no employer row is ever deleted. An
    // employee's `employer_no` is its employer's `no`, written with
    // `employer_ref` (`db::apply_effect`); NULL when the employer had no
    // number then, and the load falls back on the ref's text.
    "
    ALTER TABLE employers ADD COLUMN no INTEGER;
    UPDATE employers SET no = rowid;
    CREATE UNIQUE INDEX employers_no ON employers(no);
    ALTER TABLE employees ADD COLUMN employer_no INTEGER;
    UPDATE employees SET employer_no =
        (SELECT no FROM employers WHERE employers.employer_ref = employees.employer_ref);
    DROP INDEX employees_summary;
    CREATE INDEX employees_summary
        ON employees(employee_ref, employer_no, employer_ref, offboarded, row_digest);
    ",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Bring `conn` up to [`CURRENT_VERSION`]. Returns the version found before.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<u32> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found >= CURRENT_VERSION {
        return Ok(found);
    }
    let tx = conn.transaction()?;
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", CURRENT_VERSION)?;
    tx.commit()?;
    Ok(found)
}
