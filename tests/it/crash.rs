//! Crash drill: the sandbox in its own process, `apply` as a child killed
//! with SIGKILL at seeded random moments, then rerun until it finishes. The
//! remote world must end with exactly the desired objects and no duplicate;
//! the state must be intact with nothing left in flight.
//!
//! Environment variables vary the drill (RELIABILITY.md has examples):
//! `CRASH_KILLS` (default 20), `CRASH_SEED` (kill moments, default 1),
//! `CRASH_EXPORT_SEED` (the generated export, default 42),
//! `CRASH_EMPLOYERS` / `CRASH_EMPLOYEES` (export size; defaults per drill)
//! and `CRASH_FAULTS` (the fault drill's sandbox flags, e.g.
//! `"--error-rate 0.1 --drop-rate 0.1 --latency-ms 5 --rate-limit 200 --seed 9"`).

#![cfg(unix)]

use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::AsyncBufReadExt;

use crate::common::*;

/// The sandbox as a separate process; killed when dropped.
struct SandboxProcess {
    child: tokio::process::Child,
    base: String,
}

async fn spawn_sandbox(extra: &[&str]) -> SandboxProcess {
    let mut c = tokio::process::Command::new(bin());
    c.args(["sandbox", "--listen", "127.0.0.1:0"]).args(extra);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = c.spawn().expect("sandbox process");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("sandbox prints its address")
        .unwrap()
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_owned();
    SandboxProcess { child, base }
}

async fn remote_stats(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/_sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A number from the environment, or `default`. A value that does not
/// parse is a mistake worth stopping for, not a silent default.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

async fn drill(sandbox_flags: &[&str], employers: usize, employees: usize) {
    let kills: usize = env_number("CRASH_KILLS", 20);
    let seed: u64 = env_number("CRASH_SEED", 1);
    let employers: usize = env_number("CRASH_EMPLOYERS", employers);
    let employees: usize = env_number("CRASH_EMPLOYEES", employees);
    let export_seed: u64 = env_number("CRASH_EXPORT_SEED", 42);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sb = spawn_sandbox(sandbox_flags).await;
    let dir = tempfile::tempdir().unwrap();
    benefits_sync::gen::generate(
        dir.path(),
        &benefits_sync::gen::GenOptions {
            employers,
            employees,
            day: 1,
            seed: export_seed,
            ..Default::default()
        },
    )
    .expect("generate");
    let env = benefits_sync::sandbox::client_env(&sb.base);
    let f = files(dir.path());
    // Killed runs go slowly enough that every kill lands mid-job; the
    // final run goes fast.
    let slow = cmd(
        &f,
        "apply",
        &["--rate-limit", "120", "--concurrency", "16", "-q"],
    );
    let a = cmd(
        &f,
        "apply",
        &["--rate-limit", "400", "--concurrency", "16", "-q"],
    );
    let mut killed = 0;
    let mut finished_early = 0;
    while killed < kills {
        let mut c = command(dir.path());
        c.args(&slow)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in &env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let wait = Duration::from_millis(rng.gen_range(50..700));
        match tokio::time::timeout(wait, child.wait()).await {
            Ok(status) => {
                // It finished before its kill: the job is done. More kills
                // would only hit no-op runs, so stop (the assert below says
                // whether enough landed).
                assert!(matches!(
                    status.unwrap().code(),
                    Some(0) | Some(1) | Some(4)
                ));
                finished_early += 1;
                if finished_early > 2 {
                    break;
                }
            }
            Err(_) => {
                child.start_kill().unwrap();
                let _ = child.wait().await;
                killed += 1;
                // A SIGKILLed run leaves its lock behind, as a real crash would.
                let out = run(
                    dir.path(),
                    &[],
                    &[
                        "unlock",
                        "--state",
                        dir.path().join("state.db").to_str().unwrap(),
                    ],
                )
                .await;
                assert_eq!(code(&out), 0, "{}", text(&out));
            }
        }
    }
    assert!(killed >= kills, "only {killed} kills landed");
    // Now let it finish.
    let mut last = run(dir.path(), &env, &a).await;
    for _ in 0..3 {
        if code(&last) == 0 {
            break;
        }
        last = run(dir.path(), &env, &a).await;
    }
    assert_eq!(code(&last), 0, "{}", text(&last));
    let s = remote_stats(&sb.base).await;
    assert_eq!(duplicates(&s), 0, "duplicates after {killed} kills: {s}");
    assert_eq!(
        s["objects"]["kota.employers"].as_u64().unwrap(),
        employers as u64,
        "{s}"
    );
    assert_eq!(
        s["objects"]["kota.employees"].as_u64().unwrap(),
        employees as u64,
        "{s}"
    );
    // Every membership the plan wanted is there: a plan now has none left.
    let p = cmd(&f, "plan", &["--format", "json"]);
    let out = run(dir.path(), &[], &p).await;
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let left: Vec<&serde_json::Value> = plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] != "membership.add")
        .collect();
    assert!(left.is_empty(), "left to do after the drill: {left:?}");
    let state = dir.path().join("state.db");
    let (integrity, in_flight) = tokio::task::block_in_place(|| {
        let store = benefits_sync::state::Store::open(&state).unwrap();
        let r = store
            .call(|c| {
                let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                let n: i64 = c.query_row(
                    "SELECT COUNT(*) FROM journal WHERE status IN ('in_flight','unknown')",
                    [],
                    |r| r.get(0),
                )?;
                Ok((ok, n))
            })
            .unwrap();
        store.close();
        r
    });
    assert_eq!(integrity, "ok");
    assert_eq!(in_flight, 0);
    eprintln!(
        "crash drill ({employers} employers, {employees} employees, export seed {export_seed}, kill seed {seed}, sandbox {sandbox_flags:?}): \
         {killed} kills survived, {} requests, {} writes, faults {}, duplicates 0",
        s["requests"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x["count"].as_u64()).sum::<u64>())
            .unwrap_or(0),
        s["write_requests"],
        s["faults"]
    );
    let _ = sb.child.start_kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    drill(&[], 10, 800).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_faults_loses_and_duplicates_nothing() {
    let custom = std::env::var("CRASH_FAULTS").ok();
    let flags: Vec<&str> = match &custom {
        Some(f) => f.split_whitespace().collect(),
        None => vec![
            "--latency-ms",
            "2",
            "--error-rate",
            "0.05",
            "--drop-rate",
            "0.05",
            "--rate-limit",
            "300",
            "--seed",
            "3",
        ],
    };
    drill(&flags, 8, 600).await;
}
