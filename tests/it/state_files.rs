//! State files the binary did not make itself: one from the previous
//! schema version (frozen SQL under tests/fixtures/state-v1), one from a
//! future version, and one in a directory it may not write to.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/state-v1")
        .join(name)
}

/// Every row of `tables`, as text, in a stable order.
/// The fixture's exports copied into `d`, and its v1 state written as
/// `d/state.db` (WAL, as the v1 build kept it) with its recorded sandbox
/// data file at `data`.
fn v1_state(d: &Path, data: &Path) -> (PathBuf, rusqlite::Connection) {
    for f in ["employers.csv", "employees.csv"] {
        std::fs::copy(fixture(f), d.join(f)).unwrap();
    }
    let state = d.join("state.db");
    let sql = std::fs::read_to_string(fixture("state-v1.sql"))
        .unwrap()
        .replace("@SANDBOX_DATA@", &data.display().to_string());
    let c = rusqlite::Connection::open(&state).unwrap();
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    c.execute_batch(&sql).unwrap();
    (state, c)
}

fn dump(db: &Path, tables: &[&str]) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut all = Vec::new();
    for t in tables {
        let mut st = c
            .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2"))
            .unwrap();
        // v4's row digests and v6's employer numbers are new, not
        // changed, data.
        let columns: Vec<usize> = (0..st.column_count())
            .filter(|i| !["row_digest", "no", "employer_no"].contains(&st.column_name(*i).unwrap()))
            .collect();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = columns
                .iter()
                .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(*i).unwrap()))
                .collect();
            all.push(format!("{t}: {}", cells.join(" | ")));
        }
    }
    all
}

fn user_version(db: &Path) -> u32 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// The v1 tables whose rows the migrations keep exactly (runs loses only
/// its copy of the request figures, and the journal its done rows: both
/// checked separately).
const KEPT: [&str; 8] = [
    "meta",
    "employers",
    "kota_groups",
    "ic_groups",
    "connections",
    "employees",
    "memberships",
    "run_lock",
];

/// The journal's rows as [`dump`] gives them, with their status.
fn journal(db: &Path) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT status FROM journal ORDER BY op_key, kind")
        .unwrap();
    let statuses: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    statuses.into_iter().zip(dump(db, &["journal"])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_state_migrates_keeps_its_data_and_syncs_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The remote world the v1 state was synced against, and the state.
    let data = d.join("sandbox-data.db");
    rusqlite::Connection::open(&data)
        .unwrap()
        .execute_batch(&std::fs::read_to_string(fixture("sandbox-data.sql")).unwrap())
        .unwrap();
    let data = std::fs::canonicalize(&data).unwrap();
    let state = {
        let (state, c) = v1_state(d, &data);
        // A refused operation, as a v1 run would have left it: the v1 sync
        // finished every operation, and open rows must survive v3 and v4.
        c.execute(
            "INSERT INTO journal VALUES ('employee.create|EE00000099', 'employee.create', \
             'idem-99', 'fp-99', 'failed', 1, 3, '2026-11-20T10:00:00Z', \
             '2026-11-20T10:00:01Z', 'HTTP 422: invalid_field')",
            [],
        )
        .unwrap();
        state
    };
    assert_eq!(user_version(&state), 1);
    let before = dump(&state, &KEPT);
    assert!(before.len() > 20, "the fixture has rows: {before:?}");
    let journal_before = journal(&state);
    assert!(
        journal_before.iter().any(|(s, _)| s == "done")
            && journal_before.iter().any(|(s, _)| s != "done"),
        "the fixture's journal has done and other rows: {journal_before:?}"
    );

    // `status` opens it: the migration runs, the v1 request figures are
    // now per target, and the runs a v1 build recorded without figures
    // (killed, refused) show none.
    let st = state.display().to_string();
    let out = run(d, &[], &["status", "--state", &st, "--format", "json"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        user_version(&state),
        benefits_sync::state::schema::CURRENT_VERSION
    );
    assert_eq!(
        dump(&state, &KEPT),
        before,
        "v1 rows changed by the migration"
    );
    // v6 numbered the employers once each, and every employee carries its
    // employer's number.
    {
        let c = rusqlite::Connection::open(&state).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert!(count("SELECT count(*) FROM employees") > 0);
        assert_eq!(
            count("SELECT count(DISTINCT no) FROM employers"),
            count("SELECT count(*) FROM employers")
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM employees e JOIN employers r USING (employer_ref)
                 WHERE e.employer_no IS r.no"
            ),
            count("SELECT count(*) FROM employees")
        );
    }
    // v3 keeps no done journal rows (their effects are the record); every
    // other row is kept as it was.
    let open: Vec<_> = journal_before
        .into_iter()
        .filter(|(s, _)| s != "done")
        .collect();
    assert_eq!(journal(&state), open, "open journal rows changed");
    let s = json(&out);
    assert_eq!(s["state_version"], 27, "{s}");
    let runs = s["runs"].as_array().unwrap();
    let by_id = |id: i64| runs.iter().find(|r| r["id"] == id).unwrap().clone();
    let first = by_id(1);
    assert_eq!(first["requests"]["kota"]["requests"], 23, "{first}");
    assert_eq!(first["requests"]["noyo"]["requests"], 7, "{first}");
    assert_eq!(first["requests"]["noyo"]["writes"], 4, "{first}");
    assert_eq!(first["requests"]["ic"]["requests"], 3, "{first}");
    assert_eq!(first["summary"]["totals"]["done"], 24, "{first}");
    assert!(first["summary"].get("requests").is_none(), "{first}");
    assert_eq!(by_id(2)["requests"]["noyo"]["requests"], 4);
    assert_eq!(by_id(4)["outcome"], "abandoned");
    assert_eq!(by_id(4)["requests"], serde_json::json!({}));
    assert_eq!(by_id(5)["summary"], serde_json::json!({"rejected_rows": 3}));
    assert_eq!(by_id(5)["requests"], serde_json::json!({}));
    let connections = s["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 3);
    assert!(
        connections.iter().all(|c| c["status"] == "completed"),
        "{s}"
    );
    let out = run(d, &[], &["status", "--state", &st]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("requests 33 (ic 3, kota 23, noyo 7), 30 writes"),
        "{}",
        text(&out)
    );

    // The synced v1 state is still in sync: nothing to plan, and a run
    // against the same remote world sends no request at all.
    let f = files(d);
    let as_of = ["--as-of", "2026-11-20"];
    let mut p = cmd(&f, "plan", &["--detailed-exitcode"]);
    p.extend(as_of);
    let out = run(d, &[], &p).await;
    assert_eq!(
        code(&out),
        0,
        "changes planned on a synced state: {}",
        text(&out)
    );
    let data_arg = data.display().to_string();
    let report_path = d.join("report.json").display().to_string();
    let mut a = cmd(
        &f,
        "apply",
        &[
            "--sandbox",
            "--sandbox-data",
            &data_arg,
            "--report",
            &report_path,
        ],
    );
    a.extend(as_of);
    let out = run(d, &[], &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(r["totals"]["planned"], 0, "{r}");
    for t in ["kota", "noyo", "ic"] {
        assert_eq!(r["requests"][t]["requests"], 0, "{r}");
    }
    // That run found nothing to do for any employee row and recorded each
    // row's digest (none before: the migration adds the column empty).
    let digests = |state: &Path| -> i64 {
        rusqlite::Connection::open(state)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM employees WHERE row_digest IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let synced: i64 = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM employees e WHERE NOT EXISTS (SELECT 1 FROM memberships m \
             WHERE m.employee_ref = e.employee_ref AND m.status != 'added')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(synced > 0);
    assert_eq!(digests(&state), synced, "{}", text(&out));

    // Day 2 on the migrated state: an address change and a new hire are
    // applied to the objects the v1 state knows, by their v1 ids.
    let employees = d.join("employees.csv");
    let mut csv = std::fs::read_to_string(&employees)
        .unwrap()
        .replace("297 Home Rd", "298 Home Rd");
    csv.push_str("EE00000008,ER000001,Ivy,Lee,person8@example.com,+447700900008,1991-02-14,2024-03-01,female,TAX000000008,12 Home Rd,San Francisco,CA,94105,us,,Health,Dept 8\n");
    std::fs::write(&employees, csv).unwrap();
    let mut p = cmd(&f, "plan", &["--format", "json"]);
    p.extend(as_of);
    let out = run(d, &[], &p).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let mut kinds: Vec<String> = json(&out)["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["employee_ref"]))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "employee.create \"EE00000008\"",
            "employee.update \"EE00000001\"",
            "membership.add \"EE00000008\""
        ]
    );
    let out = run(d, &[], &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(r["totals"]["planned"], 3, "{r}");
    assert_eq!(r["totals"]["done"], 3, "{r}");
    // The update took EE00000001's digest away; the new hire has none yet.
    assert_eq!(digests(&state), synced - 1);
    let out = run(d, &[], &["status", "--state", &st, "--format", "json"]).await;
    let last = json(&out)["runs"][0].clone();
    assert_eq!(last["outcome"], "completed", "{last}");
    assert!(
        last["requests"]["kota"]["writes"].as_u64().unwrap() >= 3,
        "{last}"
    );

    let sb = crate::support::start_sandbox(benefits_sync::sandbox::SandboxConfig {
        data: Some(data.clone()),
        ..fast_config()
    })
    .await;
    let s = stats(&sb).await;
    assert_eq!(duplicates(&s), 0, "{s}");
    assert_eq!(s["objects"]["kota.employees"], 9, "{s}");
    // EE00000001's Kota id as the v1 state recorded it.
    let (status, ee) = crate::support::kota(
        &sb,
        reqwest::Method::GET,
        "/employees/ee_b71edd3630d64ac0894ee4a9f58e41bb",
        None,
    )
    .await;
    assert_eq!(status, 200, "{ee}");
    assert_eq!(ee["home_address"]["line1"], "298 Home Rd", "{ee}");
    sb.shutdown().await;
}

/// A database as a newer benefits-sync would leave it.
fn future_state(path: &Path, wal: bool) -> Vec<u8> {
    {
        let c = rusqlite::Connection::open(path).unwrap();
        if wal {
            c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .unwrap();
        }
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
             INSERT INTO meta VALUES ('state_version', '5000');
             CREATE TABLE holograms (id INTEGER PRIMARY KEY, payload BLOB);
             PRAGMA user_version = 99;",
        )
        .unwrap();
    }
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, 1, 3, 1);
    let f = files(d);
    // Both journal modes: a rollback-journal file is the one that would
    // change if the database were switched to WAL before the check.
    for wal in [false, true] {
        let state = d.join("state.db");
        let _ = std::fs::remove_file(&state);
        let bytes = future_state(&state, wal);
        let st = state.display().to_string();
        for args in [
            vec!["status", "--state", st.as_str()],
            cmd(&f, "plan", &[]),
            cmd(&f, "apply", &[]),
        ] {
            let out = run(d, &[], &args).await;
            assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&st)
                    && err.contains("schema version 99")
                    && err.contains("upgrade benefits-sync"),
                "{args:?}: {err}"
            );
            assert_eq!(
                std::fs::read(&state).unwrap(),
                bytes,
                "{args:?} (wal {wal}) changed the file"
            );
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    // Root ignores directory permissions, so as root the binary runs as
    // `nobody`; the directory and the state in it belong to whoever runs it.
    let uid = match unsafe { libc::geteuid() } {
        0 => 65534,
        me => me,
    };
    let gid = if uid == 65534 {
        65534
    } else {
        unsafe { libc::getegid() }
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    mode(d, 0o755);
    // A copy of the binary `nobody` can run wherever the build lives.
    let exe = d.join("benefits-sync");
    std::fs::copy(bin(), &exe).unwrap();
    mode(&exe, 0o755);
    generate(d, 1, 3, 1);
    let states = d.join("states");
    std::fs::create_dir(&states).unwrap();
    std::os::unix::fs::chown(&states, Some(uid), Some(gid)).unwrap();
    let as_user = |args: Vec<String>| {
        let mut c = std::process::Command::new(&exe);
        c.args(&args).current_dir(d).uid(uid).gid(gid);
        c.env_remove("BENEFITS_SYNC_LOG");
        // The copy was just written: a process another test forks in the
        // meantime holds its write handle until it execs, and until then
        // running the copy fails with ETXTBSY. Wait that out.
        for _ in 0..50 {
            match c.output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other.unwrap(),
            }
        }
        c.output().unwrap()
    };
    let plan = |state: &Path| {
        let mut a: Vec<String> = files(d);
        let i = a.iter().position(|x| x == "--state").unwrap();
        a[i + 1] = state.display().to_string();
        a.insert(0, "plan".into());
        a
    };
    let state = states.join("state.db");
    // While the directory is writable the same user makes and uses a state,
    // so what follows fails for the directory alone.
    let out = as_user(plan(&state));
    assert_eq!(code(&out), 0, "{}", text(&out));
    let bytes = std::fs::read(&state).unwrap();

    mode(&states, 0o555);
    let dir_name = states.display().to_string();
    for (what, target) in [
        ("an existing state", &state),
        ("a new state", &states.join("new.db")),
    ] {
        let out = as_user(plan(target));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(code(&out), 2, "{what}: {}", text(&out));
        assert!(
            err.contains(&format!("its directory {dir_name} is read-only"))
                && err.contains("writable")
                && err.contains("--state"),
            "{what}: {err}"
        );
    }
    let out = as_user(vec![
        "status".into(),
        "--state".into(),
        state.display().to_string(),
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&dir_name),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&state).unwrap(), bytes, "the state changed");
    assert!(!states.join("new.db").exists());
    mode(&states, 0o755);
}

/// A state whose employees table is damaged: every command refuses it with
/// the same clear error and leaves the file as it was. `plan` checks the
/// file beside loading it (not before), so this also shows that the
/// deferred check still decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_state_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (state, c) = v1_state(d, Path::new("/nonexistent"));
    drop(c);
    let st = state.display().to_string();
    let out = run(d, &[], &["status", "--state", &st]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        user_version(&state),
        benefits_sync::state::schema::CURRENT_VERSION
    );
    // Overwrite the employees table's page (a handful of rows: one page).
    let (root, page_size): (u64, u64) = {
        let c = rusqlite::Connection::open(&state).unwrap();
        let root = c
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'employees'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (root, size)
    };
    let mut bytes = std::fs::read(&state).unwrap();
    let at = ((root - 1) * page_size) as usize;
    bytes[at..at + page_size as usize].fill(0xA5);
    std::fs::write(&state, &bytes).unwrap();

    let f = files(d);
    for args in [
        vec!["status", "--state", st.as_str()],
        cmd(&f, "plan", &["--as-of", "2026-11-20"]),
        cmd(&f, "apply", &["--as-of", "2026-11-20"]),
    ] {
        let out = run(d, &[], &args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        // The integrity check's own words (the page it found damaged),
        // not just a read that failed.
        assert!(
            err.contains(&st) && err.contains("is not usable") && err.contains("in database main"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read(&state).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
    }
}
