//! End to end: the binary against the sandbox over loopback HTTP.

use benefits_sync::sandbox::FaultConfig;
use serde_json::Value;

use crate::common::*;

const FAST: [&str; 4] = ["--rate-limit", "500", "--concurrency", "16"];

fn report(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_once_then_a_second_run_sends_no_write() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 6, 120, 1);
    let env = env_for(&sb);
    let f = files(dir.path());
    let report_path = dir.path().join("report.json").display().to_string();
    let mut a = cmd(&f, "apply", &["--report", &report_path]);
    a.extend(FAST);
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r = report(dir.path());
    assert_eq!(r["totals"]["failed"], 0, "{r}");
    assert_eq!(
        r["totals"]["planned"],
        r["totals"]["done"].as_u64().unwrap() + r["totals"]["ineligible"].as_u64().unwrap()
    );
    let s1 = stats(&sb).await;
    assert_eq!(duplicates(&s1), 0, "{s1}");
    assert_eq!(s1["objects"]["kota.employers"], 6);
    assert_eq!(s1["objects"]["kota.employees"], 120);

    // Let Noyo connections settle, then the second run: nothing to write.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let before = stats(&sb).await["write_requests"].as_u64().unwrap();
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s2 = stats(&sb).await;
    assert_eq!(
        s2["write_requests"].as_u64().unwrap(),
        before,
        "a no-op run wrote: {}",
        text(&out)
    );
    assert_eq!(report(dir.path())["totals"]["planned"], 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_two_sends_exactly_the_planned_writes() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 5, 200, 1);
    let f = files(dir.path());
    let mut a = cmd(&f, "apply", &[]);
    a.extend(FAST);
    assert_eq!(code(&run(dir.path(), &env, &a).await), 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(code(&run(dir.path(), &env, &a).await), 0);

    let o = benefits_sync::gen::GenOptions {
        employers: 5,
        employees: 200,
        day: 2,
        seed: 42,
        change_rate: 0.05,
        leave_rate: 0.03,
        hire_rate: 0.05,
        ..Default::default()
    };
    benefits_sync::gen::generate(dir.path(), &o).unwrap();
    let p = cmd(&f, "plan", &["--format", "json"]);
    let out = run(dir.path(), &[], &p).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |kind: &str| {
        plan["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == kind)
            .count() as u64
    };
    let (creates, updates, offboards, adds) = (
        count("employee.create"),
        count("employee.update"),
        count("employee.offboard"),
        count("membership.add"),
    );
    assert!(creates > 0 && updates > 0 && offboards > 0, "{plan}");
    assert_eq!(
        plan["summary"]["total_operations"].as_u64().unwrap(),
        creates + updates + offboards + adds
    );

    let before = stats(&sb).await["write_requests"].as_u64().unwrap();
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let after = stats(&sb).await;
    // One write per create, update and offboard; a membership is an
    // eligibility pre-check and, when eligible, the add.
    let written = after["write_requests"].as_u64().unwrap() - before;
    assert!(
        written >= creates + updates + offboards + adds
            && written <= creates + updates + offboards + 2 * adds,
        "{written}"
    );
    assert_eq!(duplicates(&after), 0, "{after}");
    assert_eq!(
        after["objects"]["kota.employees"].as_u64().unwrap(),
        200 + creates
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_throttling_end_with_no_duplicates_and_nothing_lost() {
    let faults = FaultConfig {
        error_rate: 0.10,
        drop_rate: 0.05,
        rate_limit: Some(150),
        seed: 7,
        ..Default::default()
    };
    let sb = start_sandbox(faults).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 8, 250, 1);
    let f = files(dir.path());
    let report_path = dir.path().join("report.json").display().to_string();
    let a = cmd(
        &f,
        "apply",
        &[
            "--report",
            &report_path,
            "--rate-limit",
            "400",
            "--concurrency",
            "16",
        ],
    );
    let out = run(dir.path(), &env, &a).await;
    // Everything either done or explained; with bounded retries a rare
    // operation may still fail, and the next run must finish it.
    let mut last = out;
    for _ in 0..3 {
        if code(&last) == 0 {
            break;
        }
        assert_eq!(code(&last), 1, "{}", text(&last));
        last = run(dir.path(), &env, &a).await;
    }
    assert_eq!(code(&last), 0, "{}", text(&last));
    let s = stats(&sb).await;
    assert_eq!(duplicates(&s), 0, "{s}");
    assert_eq!(s["objects"]["kota.employers"], 8);
    assert_eq!(s["objects"]["kota.employees"], 250);
    assert!(
        s["faults"]["dropped_after_commit"].as_u64().unwrap() > 0,
        "{s}"
    );
    assert!(s["faults"]["errors_5xx"].as_u64().unwrap() > 0, "{s}");
    // And a clean rerun has nothing left to do.
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(report(dir.path())["totals"]["failed"], 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_state_exits_4_naming_the_holder_and_a_dead_holder_can_be_released() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 2, 10, 1);
    let state = dir.path().join("state.db");
    // A live holder: this test process.
    let me = std::process::id();
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    let h = host.clone();
    tokio::task::block_in_place(|| {
        let store = benefits_sync::state::Store::open(&state).unwrap();
        store
            .call(move |c| benefits_sync::state::db::acquire_lock(c, "apply", me, &h, "t0"))
            .unwrap()
            .unwrap();
        store.close();
    });
    let f = files(dir.path());
    let a = cmd(&f, "apply", &[]);
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains(&format!("pid {me}")), "{}", text(&out));
    let out = run(
        dir.path(),
        &env,
        &["unlock", "--state", state.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        code(&out),
        4,
        "a live holder is not released: {}",
        text(&out)
    );

    // A dead holder: a process that has exited.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let _ = dead.wait_with_output();
    tokio::task::block_in_place(|| {
        let store = benefits_sync::state::Store::open(&state).unwrap();
        store
            .call(|c| benefits_sync::state::db::break_lock(c, "t1"))
            .unwrap();
        store
            .call(move |c| {
                benefits_sync::state::db::acquire_lock(c, "apply", dead_pid, &host, "t2")
            })
            .unwrap()
            .unwrap();
        store.close();
    });
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 4);
    assert!(
        text(&out).contains("no longer running") && text(&out).contains("benefits-sync unlock"),
        "{}",
        text(&out)
    );
    let out = run(
        dir.path(),
        &env,
        &["unlock", "--state", state.to_str().unwrap()],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_one_runs_the_other_exits_4() {
    let faults = FaultConfig {
        latency_ms: 20,
        ..Default::default()
    };
    let sb = start_sandbox(faults).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 3, 80, 1);
    let f = files(dir.path());
    let a = cmd(&f, "apply", &["--rate-limit", "100", "--concurrency", "4"]);
    let (x, y) = tokio::join!(run(dir.path(), &env, &a), async {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        run(dir.path(), &env, &a).await
    });
    let mut codes = [code(&x), code(&y)];
    codes.sort();
    assert_eq!(codes, [0, 4], "{}\n{}", text(&x), text(&y));
    assert_eq!(duplicates(&stats(&sb).await), 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_plans_apply_only_while_fresh() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 2, 20, 1);
    let f = files(dir.path());
    let saved = dir.path().join("plan.json").display().to_string();
    let p = cmd(&f, "plan", &["--save", &saved]);
    assert_eq!(code(&run(dir.path(), &[], &p).await), 0);
    let plan_text = std::fs::read_to_string(&saved).unwrap();
    assert!(
        !plan_text.contains("@example.com") && !plan_text.contains("TAX0"),
        "no personal data in a saved plan"
    );

    // An input changed: stale.
    let employees = dir.path().join("employees.csv");
    let original = std::fs::read(&employees).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"\n");
    std::fs::write(&employees, &changed).unwrap();
    let a = cmd(&f, "apply", &["--plan", &saved]);
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 5, "{}", text(&out));
    std::fs::write(&employees, &original).unwrap();
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    // The state moved on: the same saved plan is stale now.
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 5, "{}", text(&out));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_and_detailed_exit_codes() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 2, 10, 1);
    let employees = dir.path().join("employees.csv");
    let mut text_in = std::fs::read_to_string(&employees).unwrap();
    let good = text_in.clone();
    text_in = text_in.replacen("@example.com", "-at-example.com", 1);
    std::fs::write(&employees, &text_in).unwrap();
    let f = files(dir.path());
    let p = cmd(&f, "plan", &["--strict"]);
    assert_eq!(code(&run(dir.path(), &[], &p).await), 3);
    let a = cmd(&f, "apply", &["--strict"]);
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(
        stats(&sb).await["write_requests"],
        0,
        "--strict applies nothing"
    );

    std::fs::write(&employees, &good).unwrap();
    let d = cmd(&f, "plan", &["--detailed-exitcode"]);
    assert_eq!(code(&run(dir.path(), &[], &d).await), 10);
    let a = cmd(&f, "apply", &[]);
    assert_eq!(code(&run(dir.path(), &env, &a).await), 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(code(&run(dir.path(), &env, &a).await), 0);
    let out = run(dir.path(), &[], &d).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_file_holds_no_personal_data() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 3, 30, 1);
    let f = files(dir.path());
    let report_path = dir.path().join("report.json").display().to_string();
    let a = cmd(&f, "apply", &["--report", &report_path]);
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let state = dir.path().join("state.db");
    // Read it as a stranger would: every table, every value, as text.
    let dump: String = tokio::task::block_in_place(|| {
        let store = benefits_sync::state::Store::open(&state).unwrap();
        let dump: String = store
            .call(|c| {
                let tables: Vec<String> = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut all = String::new();
                for t in tables {
                    let mut st = c.prepare(&format!("SELECT * FROM {t}"))?;
                    let n = st.column_count();
                    let mut rows = st.query([])?;
                    while let Some(row) = rows.next()? {
                        for i in 0..n {
                            let v: rusqlite::types::Value = row.get(i)?;
                            all.push_str(&format!("{v:?}\n"));
                        }
                    }
                }
                Ok(all)
            })
            .unwrap();
        store.close();
        dump
    });
    let employees = std::fs::read_to_string(dir.path().join("employees.csv")).unwrap();
    let mut lines = employees.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut checked = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for col in [
            "first_name",
            "last_name",
            "email",
            "phone_number",
            "date_of_birth",
            "national_tax_id",
            "address_line1",
        ] {
            let v = cells[header.iter().position(|h| *h == col).unwrap()];
            for (what, hay) in [
                ("state", &dump),
                ("stdout", &String::from_utf8_lossy(&out.stdout).into_owned()),
            ] {
                assert!(!hay.contains(v), "{col} value {v} found in {what}");
            }
            let rep = std::fs::read_to_string(&report_path).unwrap();
            assert!(!rep.contains(v), "{col} value {v} found in the run report");
            checked += 1;
        }
    }
    assert!(checked >= 30 * 7);
    assert!(
        !dump.contains(benefits_sync::sandbox::SANDBOX_KOTA_KEY),
        "no credential in the state"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&report_path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    sb.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly_and_a_rerun_finishes_the_job() {
    let faults = FaultConfig {
        latency_ms: 30,
        ..Default::default()
    };
    let sb = start_sandbox(faults).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sb);
    generate(dir.path(), 3, 150, 1);
    let f = files(dir.path());
    let a = cmd(&f, "apply", &["--rate-limit", "30", "--concurrency", "4"]);
    let mut c = command(dir.path());
    c.args(&a);
    for (k, v) in &env {
        c.env(k, v);
    }
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    unsafe {
        libc::kill(child.id().unwrap() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 130, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("interrupted"),
        "{}",
        text(&out)
    );
    // Nothing left in flight after an orderly stop.
    let store = benefits_sync::state::Store::open(&dir.path().join("state.db")).unwrap();
    let uncertain = store.uncertain_ops().await.unwrap();
    store.close();
    assert!(uncertain.is_empty(), "{uncertain:?}");
    let fast = cmd(&f, "apply", &["--rate-limit", "500", "--concurrency", "16"]);
    let out = run(dir.path(), &env, &fast).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = stats(&sb).await;
    assert_eq!(duplicates(&s), 0, "{s}");
    assert_eq!(s["objects"]["kota.employees"], 150);
    sb.shutdown().await;
}

/// The operations of a `plan --format json` run, as "kind ref".
async fn planned(dir: &std::path::Path, f: &[String]) -> Vec<String> {
    let out = run(dir, &[], &cmd(f, "plan", &["--format", "json"])).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["employee_ref"]))
        .collect()
}

/// A row skipped as unchanged since the last apply is only skipped while
/// the state is what it was: an employee changed and then changed back is
/// sent both times, not lost to the digest recorded before either change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_changed_and_changed_back_is_sent_both_times() {
    let sb = start_sandbox(FaultConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, 3, 60, 1);
    let env = env_for(&sb);
    let f = files(d);
    let mut a = cmd(&f, "apply", &[]);
    a.extend(FAST);
    assert_eq!(code(&run(d, &env, &a).await), 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The second night finds nothing to do and records the row digests.
    let out = run(d, &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let digests = || -> i64 {
        rusqlite::Connection::open(d.join("state.db"))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM employees WHERE row_digest IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let recorded = digests();
    assert!(recorded > 50, "{recorded} digests");
    let st = d.join("state.db").display().to_string();
    let out = run(d, &[], &["status", "--state", &st, "--format", "json"]).await;
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["employees"]["synced"], 60, "{s}");
    assert_eq!(s["employees"]["row_digests"], recorded, "{s}");
    assert!(planned(d, &f).await.is_empty());

    // One employee moves house, then moves back.
    let path = d.join("employees.csv");
    let original = std::fs::read_to_string(&path).unwrap();
    let mut rdr = csv::Reader::from_reader(original.as_bytes());
    let header = rdr.headers().unwrap().clone();
    let mut rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let who = rows[7][col("employee_ref")].to_owned();
    let mut fields: Vec<String> = rows[7].iter().map(str::to_owned).collect();
    fields[col("address_line1")] = "1 Moved Street".into();
    rows[7] = csv::StringRecord::from(fields);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for r in &rows {
        w.write_record(r).unwrap();
    }
    std::fs::write(&path, w.into_inner().unwrap()).unwrap();
    let update = format!("employee.update \"{who}\"");
    assert_eq!(planned(d, &f).await, std::slice::from_ref(&update));
    assert_eq!(code(&run(d, &env, &a).await), 0);
    assert_eq!(digests(), recorded - 1, "the update took the digest away");

    std::fs::write(&path, &original).unwrap();
    assert_eq!(
        planned(d, &f).await,
        std::slice::from_ref(&update),
        "the move back"
    );
    let before = stats(&sb).await["write_requests"].as_u64().unwrap();
    assert_eq!(code(&run(d, &env, &a).await), 0);
    let after = stats(&sb).await["write_requests"].as_u64().unwrap();
    assert_eq!(after - before, 1, "one update sent");
    assert!(planned(d, &f).await.is_empty());
    // The next night records the digest again; the night after skips it.
    assert_eq!(code(&run(d, &env, &a).await), 0);
    assert_eq!(digests(), recorded);
    sb.shutdown().await;
}
