//! `cargo bench --bench pipeline`: the whole pipeline measured on this
//! machine, in one run, as `BENCHMARKS.md` describes.
//!
//! Every measured command is the release binary run as a child process:
//! wall time from spawn to exit (`Instant`), peak memory from the kernel's
//! accounting of that child (`wait4`'s `ru_maxrss`). The sandbox runs as a
//! process of its own, so client and server do not share a runtime.
//!
//! Parts (all by default; `BENCH_ONLY=plan,apply,noop` picks some):
//!
//! * `plan`: plan throughput and peak memory on `BENCH_EMPLOYEES` employees
//!   (default 1,000,000) and `BENCH_EMPLOYERS` employers (default a
//!   twentieth): cold state, warm state with nothing changed, warm state
//!   with 1% of employees changed; and the CSV parse floor, a bare
//!   `csv::ByteRecord` read of the same files in this process.
//! * `apply`: against a sandbox with `BENCH_LATENCY_MS` (10) of latency
//!   whose own limit equals the client's: the rate achieved over
//!   `--rate-limit` at each of `BENCH_RATES` (200,1000), 429s, requests per
//!   operation; and the same operations sent one at a time
//!   (`--concurrency 1`) as the sequential baseline (`BENCH_BASELINE=0`
//!   skips it). `BENCH_APPLY_EMPLOYEES` (6,250: 20,119 operations)
//!   sizes the plan.
//! * `noop`: `BENCH_NOOP_EMPLOYEES` (100,000) synced for real, then the
//!   same exports applied again: wall time and requests sent.
//!
//! The table is printed and written to `target/bench/results.md`; work
//! files (exports, states, sandbox data) live in `target/bench/work`
//! (`BENCH_DIR`), and generated exports are reused between runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use benefits_sync::plan::{self, PlanContext};
use benefits_sync::state::{bench_seed, db, Store};
use serde_json::Value;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_benefits-sync"))
}

/// `target/`: the binary lives in `target/release/`.
fn target_dir() -> PathBuf {
    bin()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        _ => default,
    }
}

/// Settings, from the environment.
struct Config {
    only: Vec<String>,
    seed: u64,
    employees: usize,
    employers: usize,
    plan_format: String,
    apply_employees: usize,
    apply_employers: usize,
    rates: Vec<u32>,
    latency_ms: u64,
    baseline: bool,
    noop_employees: usize,
    work: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let employees = env_or("BENCH_EMPLOYEES", 1_000_000usize);
        let apply_employees = env_or("BENCH_APPLY_EMPLOYEES", 6_250usize);
        Config {
            only: std::env::var("BENCH_ONLY")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            seed: env_or("BENCH_SEED", 1u64),
            employees,
            employers: env_or("BENCH_EMPLOYERS", (employees / 20).max(1)),
            plan_format: std::env::var("BENCH_PLAN_FORMAT").unwrap_or_else(|_| "text".into()),
            apply_employees,
            apply_employers: env_or("BENCH_APPLY_EMPLOYERS", (apply_employees / 20).max(1)),
            rates: std::env::var("BENCH_RATES")
                .unwrap_or_else(|_| "200,1000".into())
                .split(',')
                .map(|r| r.trim().parse().expect("BENCH_RATES: numbers"))
                .collect(),
            latency_ms: env_or("BENCH_LATENCY_MS", 10u64),
            baseline: env_or("BENCH_BASELINE", 1u8) != 0,
            noop_employees: env_or("BENCH_NOOP_EMPLOYEES", 100_000usize),
            work: std::env::var("BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| target_dir().join("bench").join("work")),
        }
    }

    fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

/// A finished child: exit code, wall time, peak resident memory.
struct Measured {
    code: i32,
    wall: Duration,
    max_rss_kb: u64,
}

/// Wait for `pid` with `wait4`, which hands back that child's own resource
/// use (its peak RSS, not the bench's).
fn reap(pid: u32) -> (i32, u64) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for the given child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(
        r,
        pid as libc::pid_t,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    // Linux reports ru_maxrss in kilobytes.
    (code, usage.ru_maxrss as u64)
}

/// Run the binary to completion, measured. Output goes to `log`.
// The child is reaped by `reap` (wait4), not `Child::wait`, which would
// not hand back its resource use.
#[allow(clippy::zombie_processes)]
fn measure(args: &[&str], env: &[(&str, String)], log: &Path) -> Measured {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env_remove("RUST_LOG");
    for k in benefits_sync::apply::targets::ENV_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn benefits-sync");
    let (code, max_rss_kb) = reap(child.id());
    Measured {
        code,
        wall: start.elapsed(),
        max_rss_kb,
    }
}

fn must(m: Measured, what: &str, log: &Path, ok: &[i32]) -> Measured {
    if !ok.contains(&m.code) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        panic!(
            "{what} exited {}; last lines of {}:\n{}",
            m.code,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    m
}

/// Write exports with `generate` unless the same ones are already there.
fn generate(dir: &Path, employers: usize, employees: usize, day: u8, seed: u64, change: f64) {
    let args = format!(
        "--employers {employers} --employees {employees} --day {day} --seed {seed} --change-rate {change} --leave-rate 0 --hire-rate 0"
    );
    let stamp = dir.join("generated-with");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(args.as_str())
        && dir.join("employees.csv").exists()
    {
        return;
    }
    std::fs::create_dir_all(dir).expect("work dir");
    let mut full = vec!["generate", "--out", dir.to_str().expect("utf-8 path")];
    full.extend(args.split(' '));
    let log = dir.join("generate.log");
    must(measure(&full, &[], &log), "generate", &log, &[0]);
    std::fs::write(&stamp, &args).expect("stamp");
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn exports(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("employers.csv"), dir.join("employees.csv"))
}

// ---------------------------------------------------------------- plan --

/// The parse floor: every record of a file read as raw bytes, nothing
/// else. Returns (records, seconds).
fn parse_floor(path: &Path) -> (u64, f64) {
    let start = Instant::now();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .expect("open export");
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    while reader.read_byte_record(&mut record).expect("csv") {
        rows += 1;
    }
    (rows, start.elapsed().as_secs_f64())
}

/// The number of operations a plan report announces (text or JSON).
fn operations_in_report(path: &Path) -> Option<u64> {
    let mut head = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("operations") {
            if let Ok(v) = rest.trim().parse() {
                return Some(v);
            }
        }
        if let Some(i) = t.find("\"total_operations\":") {
            let rest = &t[i + "\"total_operations\":".len()..];
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return digits.parse().ok();
        }
    }
    None
}

struct PlanRow {
    case: &'static str,
    operations: Option<u64>,
    /// The fastest of [`RUNS`] runs (peak memory: the highest of them).
    m: Measured,
    /// The other runs' wall times, in the order they ran.
    others: Vec<Duration>,
}

/// How often each plan case and each parse floor runs: the table keeps the
/// fastest. The first run after the files were last read by something
/// else pays for the page cache (this machine reclaims files not read for
/// a while), and the machine's speed wanders within minutes (the same
/// parse floor took 0.20 s in one run and 0.35 s in the next): the
/// fastest of three is the least disturbed, and the others are shown.
const RUNS: usize = 3;

struct PlanResults {
    employees: u64,
    employers: usize,
    employers_rows: u64,
    floor_employees: (u64, f64),
    floor_employers: (u64, f64),
    rows: Vec<PlanRow>,
    seed_secs: f64,
}

fn plan_part(cfg: &Config) -> PlanResults {
    let base = cfg.work.join(format!(
        "plan-{}-{}-s{}",
        cfg.employees, cfg.employers, cfg.seed
    ));
    let (d1, d2) = (base.join("day1"), base.join("day2"));
    eprintln!("plan: exports of {} employees ...", cfg.employees);
    generate(&d1, cfg.employers, cfg.employees, 1, cfg.seed, 0.0);
    generate(&d2, cfg.employers, cfg.employees, 2, cfg.seed, 0.01);
    let (ers1, ees1) = exports(&d1);
    let (ers2, ees2) = exports(&d2);

    // The floor first, with the files fresh in the page cache like the
    // plans that follow; the best of [`RUNS`] reads.
    eprintln!("plan: parse floor ...");
    let best = |p: &Path| {
        (0..RUNS)
            .map(|_| parse_floor(p))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("at least one run")
    };
    let floor_employees = best(&ees1);
    let floor_employers = best(&ers1);

    let report = base.join("report.out");
    let log = base.join("plan.log");
    let plan = |state: &Path, ers: &Path, ees: &Path| {
        let args = [
            "plan",
            "--employers",
            ers.to_str().expect("utf-8"),
            "--employees",
            ees.to_str().expect("utf-8"),
            "--state",
            state.to_str().expect("utf-8"),
            "--format",
            cfg.plan_format.as_str(),
            "--out",
            report.to_str().expect("utf-8"),
        ];
        let _ = std::fs::remove_file(&report);
        let m = must(measure(&args, &[], &log), "plan", &log, &[0]);
        let ops = operations_in_report(&report);
        let _ = std::fs::remove_file(&report);
        (m, ops)
    };
    // Each case runs [`RUNS`] times, as the parse floor does. The table
    // shows the fastest run's wall time, the others beside it, and the
    // highest peak memory of them all.
    let case_runs = |state: &Path, ers: &Path, ees: &Path, case: &'static str| {
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            if case.starts_with("cold") {
                remove_db(state);
            }
            runs.push(plan(state, ers, ees));
        }
        if case.starts_with("cold") {
            remove_db(state);
        }
        for r in &runs[1..] {
            assert_eq!(r.1, runs[0].1, "{case}: runs planned different operations");
        }
        let max_rss_kb = runs.iter().map(|r| r.0.max_rss_kb).max().unwrap_or(0);
        let fastest = (0..runs.len())
            .min_by_key(|&i| runs[i].0.wall)
            .expect("at least one run");
        let others = (0..runs.len())
            .filter(|&i| i != fastest)
            .map(|i| runs[i].0.wall)
            .collect();
        let fast = runs.swap_remove(fastest);
        PlanRow {
            case,
            operations: fast.1,
            others,
            m: Measured {
                max_rss_kb,
                ..fast.0
            },
        }
    };

    let mut rows = Vec::new();
    eprintln!("plan: cold ...");
    let cold_state = base.join("cold.db");
    rows.push(case_runs(
        &cold_state,
        &ers1,
        &ees1,
        "cold (empty state: everything to create)",
    ));

    // The warm state: day 1 recorded as synced. Built once per export set
    // and kept; `plan` only reads it.
    let warm = base.join("warm.db");
    let stamp = base.join("warm.done");
    let mut seed_secs = 0.0;
    // A state seeded by an older build (another schema, other digests)
    // would measure that build's state: the stamp names what it was made
    // for.
    let made_for = format!(
        "schema {}, row digests v{}, pages of {} bytes",
        benefits_sync::state::schema::CURRENT_VERSION,
        benefits_sync::input::ROW_DIGEST_VERSION,
        benefits_sync::state::schema::PAGE_SIZE
    );
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(made_for.as_str()) {
        eprintln!("plan: seeding the warm state (nights 1 and 2 recorded) ...");
        let start = Instant::now();
        // In a process of its own: a child forked from a bench that had
        // just planned a million rows in-process reported that high-water
        // mark as its own peak memory.
        let status = Command::new(std::env::current_exe().expect("bench binary"))
            .env(SEED_WARM, &base)
            .status()
            .expect("run the warm-state seeding");
        assert!(status.success(), "seeding the warm state failed: {status}");
        std::fs::write(&stamp, &made_for).expect("stamp");
        seed_secs = start.elapsed().as_secs_f64();
    }
    eprintln!("plan: warm, nothing changed ...");
    rows.push(case_runs(&warm, &ers1, &ees1, "warm, nothing changed"));
    eprintln!("plan: warm, 1% changed ...");
    rows.push(case_runs(
        &warm,
        &ers2,
        &ees2,
        "warm, 1% of employees changed",
    ));
    PlanResults {
        employees: floor_employees.0,
        employers: cfg.employers,
        employers_rows: floor_employers.0,
        floor_employees,
        floor_employers,
        rows,
        seed_secs,
    }
}

// -------------------------------------------------------------- sandbox --

/// A sandbox running as its own process.
struct SandboxProc {
    /// Taken by `stop`; if the bench panics first, `Drop` kills it so no
    /// server outlives the run.
    child: Option<Child>,
    url: String,
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl SandboxProc {
    fn start(data: &Path, extra: &[String], log: &Path) -> SandboxProc {
        remove_db(data);
        let mut cmd = Command::new(bin());
        cmd.args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().expect("utf-8"),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("sandbox log"));
        let mut child = cmd.spawn().expect("spawn sandbox");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sandbox prints its address");
        let url = line
            .trim()
            .strip_prefix("sandbox listening on ")
            .unwrap_or_else(|| panic!("unexpected sandbox output {line:?}"))
            .to_owned();
        SandboxProc {
            child: Some(child),
            url,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        benefits_sync::sandbox::client_env(&self.url)
    }

    /// `GET /_sandbox/stats` over a bare socket (loopback, one request).
    fn stats(&self) -> Value {
        let hostport = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(hostport).expect("connect to sandbox");
        write!(
            s,
            "GET /_sandbox/stats HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read");
        let text = String::from_utf8_lossy(&resp);
        let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        serde_json::from_str(body).expect("stats JSON")
    }

    /// SIGINT (a graceful stop: in-flight requests and the data file are
    /// flushed), then reap; returns the sandbox's peak RSS in KB.
    // Reaped by `reap` (wait4), which also hands back its resource use.
    #[allow(clippy::zombie_processes)]
    fn stop(mut self) -> u64 {
        let child = self.child.take().expect("running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        reap(child.id()).1
    }
}

fn total_429(stats: &Value) -> u64 {
    stats["faults"]["rate_limited_429"].as_u64().unwrap_or(0)
}

fn requests_seen(stats: &Value) -> u64 {
    stats["requests"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["count"].as_u64()).sum())
        .unwrap_or(0)
}

// --------------------------------------------------------------- apply --

struct ApplyRow {
    label: String,
    rate: u32,
    concurrency: String,
    operations: u64,
    wall: f64,
    apply_secs: f64,
    kota_requests: u64,
    requests: u64,
    throttled: u64,
    failed: u64,
}

impl ApplyRow {
    fn kota_rate(&self) -> f64 {
        self.kota_requests as f64 / self.apply_secs
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("report")).expect("report JSON")
}

fn report_requests(r: &Value) -> (u64, u64) {
    let per = &r["requests"];
    let total = ["kota", "noyo", "ic"]
        .iter()
        .map(|t| per[t]["requests"].as_u64().unwrap_or(0))
        .sum();
    (total, per["kota"]["requests"].as_u64().unwrap_or(0))
}

/// One apply of the exports in `dir` to a fresh sandbox whose own limit is
/// `rate`, as the client's.
fn apply_once(
    cfg: &Config,
    dir: &Path,
    label: &str,
    rate: u32,
    concurrency: Option<usize>,
) -> ApplyRow {
    let run = dir.join(format!(
        "run-{rate}-{}",
        concurrency.map_or("auto".into(), |c| c.to_string())
    ));
    std::fs::create_dir_all(&run).expect("run dir");
    let sb = SandboxProc::start(
        &run.join("sandbox-data.db"),
        &[
            "--latency-ms".into(),
            cfg.latency_ms.to_string(),
            "--rate-limit".into(),
            rate.to_string(),
        ],
        &run.join("sandbox.log"),
    );
    let state = run.join("state.db");
    remove_db(&state);
    let (ers, ees) = exports(dir);
    let report = run.join("report.json");
    let args = apply_args(&ers, &ees, &state, &report, rate, concurrency);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = run.join("apply.log");
    let m = must(measure(&args, &sb.env(), &log), label, &log, &[0, 1]);
    let stats = sb.stats();
    sb.stop();
    let r = read_json(&report);
    let (requests, kota_requests) = report_requests(&r);
    ApplyRow {
        label: label.to_owned(),
        rate,
        concurrency: concurrency.map_or_else(
            || {
                format!(
                    "{} (default)",
                    benefits_sync::remote::GateConfig::default_concurrency(
                        std::num::NonZeroU32::new(rate).expect("rate > 0")
                    )
                )
            },
            |c| c.to_string(),
        ),
        operations: r["totals"]["planned"].as_u64().unwrap_or(0),
        wall: m.wall.as_secs_f64(),
        apply_secs: r["elapsed_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        kota_requests,
        requests,
        throttled: total_429(&stats),
        failed: r["totals"]["failed"].as_u64().unwrap_or(0),
    }
}

fn apply_part(cfg: &Config) -> Vec<ApplyRow> {
    let dir = cfg.work.join(format!(
        "apply-{}-{}-s{}",
        cfg.apply_employees, cfg.apply_employers, cfg.seed
    ));
    generate(
        &dir,
        cfg.apply_employers,
        cfg.apply_employees,
        1,
        cfg.seed,
        0.0,
    );
    let mut rows = Vec::new();
    for &rate in &cfg.rates {
        eprintln!("apply: --rate-limit {rate} against a sandbox allowing {rate}/s ...");
        rows.push(apply_once(cfg, &dir, "benefits-sync", rate, None));
    }
    if cfg.baseline {
        let rate = cfg.rates.iter().copied().max().unwrap_or(1000);
        eprintln!("apply: sequential baseline (--concurrency 1) ...");
        rows.push(apply_once(
            cfg,
            &dir,
            "sequential baseline (one request at a time)",
            rate,
            Some(1),
        ));
    }
    rows
}

// ---------------------------------------------------------------- noop --

struct NoopResult {
    employees: usize,
    setup_operations: u64,
    setup_wall: f64,
    /// The first rerun: it finds nothing to do and records every row's
    /// digest (`input::digest`); its wall time and requests sent.
    first_wall: f64,
    first_requests: u64,
    /// Every later night: the rows are skipped by digest.
    wall: f64,
    planned: u64,
    client_requests: u64,
    server_requests: u64,
    server_writes: u64,
}

/// `apply` on the exports `ers`/`ees`, quietly, with its run report.
fn apply_args(
    ers: &Path,
    ees: &Path,
    state: &Path,
    report: &Path,
    rate: u32,
    concurrency: Option<usize>,
) -> Vec<String> {
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let mut args: Vec<String> = ["-q", "apply", "--employers"].map(String::from).to_vec();
    args.extend([
        path(ers),
        "--employees".into(),
        path(ees),
        "--state".into(),
        path(state),
        "--rate-limit".into(),
        rate.to_string(),
        "--report".into(),
        path(report),
    ]);
    if let Some(c) = concurrency {
        args.extend(["--concurrency".into(), c.to_string()]);
    }
    args
}

fn noop_part(cfg: &Config) -> NoopResult {
    let employers = (cfg.noop_employees / 20).max(1);
    let dir = cfg.work.join(format!(
        "noop-{}-{}-s{}",
        cfg.noop_employees, employers, cfg.seed
    ));
    generate(&dir, employers, cfg.noop_employees, 1, cfg.seed, 0.0);
    // No latency and no server limit: the first sync only sets the scene.
    // Connections settle at once, as they would have by the next night.
    let sb = SandboxProc::start(
        &dir.join("sandbox-data.db"),
        &["--noyo-step-ms".into(), "0".into()],
        &dir.join("sandbox.log"),
    );
    let state = dir.join("state.db");
    remove_db(&state);
    let (ers, ees) = exports(&dir);
    let report = dir.join("report.json");
    let args = apply_args(&ers, &ees, &state, &report, 50_000, Some(64));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    eprintln!("noop: first sync of {} employees ...", cfg.noop_employees);
    let log = dir.join("apply-first.log");
    let first = must(measure(&args, &sb.env(), &log), "first sync", &log, &[0]);
    let setup = read_json(&report);
    eprintln!("noop: the first rerun (records the row digests) ...");
    let log = dir.join("apply-first-rerun.log");
    let first_rerun = must(measure(&args, &sb.env(), &log), "first rerun", &log, &[0]);
    let first_requests = report_requests(&read_json(&report)).0;
    let before = sb.stats();
    eprintln!("noop: the nightly rerun ...");
    let log = dir.join("apply-noop.log");
    let m = must(measure(&args, &sb.env(), &log), "no-op run", &log, &[0]);
    let after = sb.stats();
    sb.stop();
    let r = read_json(&report);
    NoopResult {
        employees: cfg.noop_employees,
        setup_operations: setup["totals"]["planned"].as_u64().unwrap_or(0),
        setup_wall: first.wall.as_secs_f64(),
        first_wall: first_rerun.wall.as_secs_f64(),
        first_requests,
        wall: m.wall.as_secs_f64(),
        planned: r["totals"]["planned"].as_u64().unwrap_or(0),
        client_requests: report_requests(&r).0,
        server_requests: requests_seen(&after) - requests_seen(&before),
        server_writes: after["write_requests"].as_u64().unwrap_or(0)
            - before["write_requests"].as_u64().unwrap_or(0),
    }
}

// -------------------------------------------------------------- report --

fn machine() -> BTreeMap<&'static str, String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|x| x.1.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    BTreeMap::from([
        (
            "cpus",
            std::thread::available_parallelism().map_or("?".into(), |n| n.to_string()),
        ),
        ("cpu", cpu),
        ("ram", ram),
        ("rustc", rustc),
        ("load (1 min, at the end)", load),
    ])
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render(
    cfg: &Config,
    plan: Option<&PlanResults>,
    apply: Option<&[ApplyRow]>,
    noop: Option<&NoopResult>,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# benefits-sync pipeline benchmark\n");
    let _ = writeln!(
        o,
        "{} (`cargo bench --bench pipeline`)\n",
        chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
    );
    for (k, v) in machine() {
        let _ = writeln!(o, "- {k}: {v}");
    }
    if let Some(p) = plan {
        let floor = p.floor_employees.1 + p.floor_employers.1;
        let _ = writeln!(
            o,
            "\n## Plan: {} employees, {} employers ({} employer rows)\n",
            thousands(p.employees),
            thousands(p.employers as u64),
            thousands(p.employers_rows)
        );
        let _ = writeln!(
            o,
            "| case | operations | wall (s), fastest of {RUNS} | other runs (s) | employee rows/s | peak memory (MB) | x parse floor | targets |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---|");
        for r in &p.rows {
            let secs = r.m.wall.as_secs_f64();
            let target = if r.case.starts_with("cold") {
                ">= 500,000 rows/s, <= 400 MB, <= 3x floor"
            } else {
                ">= 1,000,000 rows/s, <= 400 MB, <= 3x floor"
            };
            let _ = writeln!(
                o,
                "| {} | {} | {:.2} | {} | {} | {:.0} | {:.2} | {} |",
                r.case,
                r.operations.map_or("?".into(), thousands),
                secs,
                r.others
                    .iter()
                    .map(|d| format!("{:.2}", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", "),
                thousands((p.employees as f64 / secs) as u64),
                r.m.max_rss_kb as f64 / 1024.0,
                secs / floor,
                target
            );
        }
        let _ = writeln!(
            o,
            "| parse floor: `csv::ByteRecord` read of both files, in-process (fastest of {RUNS}) | - | {:.2} | - | {} | - | 1.00 | |",
            floor,
            thousands((p.employees as f64 / floor) as u64)
        );
        let _ = writeln!(
            o,
            "\nParse floor alone: employees.csv {:.2} s ({} rows/s), employers.csv {:.3} s.",
            p.floor_employees.1,
            thousands((p.floor_employees.0 as f64 / p.floor_employees.1) as u64),
            p.floor_employers.1
        );
        if p.seed_secs > 0.0 {
            let _ = writeln!(
                o,
                "The warm state (day 1 recorded as synced by `state::bench_seed`, then the row digests a second night's apply records) took {:.1} s to build; it is reused by later runs.",
                p.seed_secs
            );
        }
    }
    if let Some(rows) = apply {
        let ops = rows.first().map_or(0, |r| r.operations);
        let _ = writeln!(
            o,
            "\n## Apply: {} operations, sandbox process with {} ms latency, server limit = --rate-limit\n",
            thousands(ops),
            cfg.latency_ms
        );
        let _ = writeln!(
            o,
            "| run | --rate-limit | --concurrency | wall (s) | apply phase (s) | Kota requests/s | achieved / limit | 429s | requests | requests / op | ops/s | failed |"
        );
        let _ = writeln!(
            o,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1}% | {} | {} | {:.3} | {:.1} | {} |",
                r.label,
                r.rate,
                r.concurrency,
                r.wall,
                r.apply_secs,
                r.kota_rate(),
                100.0 * r.kota_rate() / f64::from(r.rate),
                r.throttled,
                thousands(r.requests),
                r.requests as f64 / r.operations.max(1) as f64,
                r.operations as f64 / r.wall,
                r.failed
            );
        }
        let _ = writeln!(
            o,
            "\nAchieved / limit: Kota requests (the busiest target, every request counts against its limit) per second of the apply phase, over `--rate-limit`. Targets: >= 95% at every limit, 0 429s."
        );
    }
    if let Some(n) = noop {
        let _ = writeln!(
            o,
            "\n## No-op nightly run: {} employees, settled state, same exports\n",
            thousands(n.employees as u64)
        );
        let _ = writeln!(
            o,
            "| wall (s) | operations planned | requests sent (client) | requests seen (sandbox) | writes seen (sandbox) | target |"
        );
        let _ = writeln!(o, "|---:|---:|---:|---:|---:|---|");
        let _ = writeln!(
            o,
            "| {:.2} | {} | {} | {} | {} | 0 requests |",
            n.wall, n.planned, n.client_requests, n.server_requests, n.server_writes
        );
        let _ = writeln!(
            o,
            "\nSet up by a real first sync: {} operations in {:.1} s (no latency, no server limit). \
             The first rerun after it also found nothing to send ({} requests) and recorded each row's \
             digest, in {:.2} s; the run measured above is the next one, as every later night is.",
            thousands(n.setup_operations),
            n.setup_wall,
            n.first_requests,
            n.first_wall
        );
    }
    o
}

/// Set in the environment of the bench re-run as a child to seed the warm
/// state of the plan part in the directory it names.
const SEED_WARM: &str = "BENCH_SEED_WARM";

/// The warm state: day 1's operations recorded as done (night 1), then an
/// apply's plan of the same exports, which finds nothing to do and records
/// each row's digest (night 2), as every night after a row last changed does.
fn seed_warm(base: &Path) {
    let warm = base.join("warm.db");
    let (ers1, ees1) = exports(&base.join("day1"));
    remove_db(&warm);
    let store = Store::open(&warm).expect("open warm state");
    let snap = store.snapshot().expect("snapshot");
    let ctx = PlanContext {
        today: chrono::Local::now().date_naive(),
        offboard_missing: false,
    };
    let day1 = plan::build(&ers1, &ees1, &snap, ctx.clone(), plan::Keep::Fingerprints)
        .expect("plan day 1");
    drop(snap);
    bench_seed::record_as_synced(&store, &day1.operations, 1).expect("seed");
    drop(day1);
    // The second night: an apply of the same exports finds nothing to
    // do and records each row's digest (`input::digest`), as every
    // night after a row last changed does.
    let snap = store.snapshot().expect("snapshot");
    let night2 =
        plan::build(&ers1, &ees1, &snap, ctx, plan::Keep::Everything).expect("plan night 2");
    assert!(
        night2.operations.is_empty(),
        "the seeded state plans nothing"
    );
    let (version, unchanged) = (night2.state_version, night2.unchanged);
    drop(snap);
    let recorded = store
        .call(move |c| db::record_row_digests(c, version, &unchanged))
        .expect("record row digests");
    eprintln!("plan: recorded {recorded} row digests");
    store.close();
}

fn main() {
    if let Some(base) = std::env::var_os(SEED_WARM) {
        seed_warm(Path::new(&base));
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is taken from the
    // command line (settings come from BENCH_* variables).
    let cfg = Config::from_env();
    std::fs::create_dir_all(&cfg.work).expect("work dir");
    let plan = cfg.wants("plan").then(|| plan_part(&cfg));
    let apply = cfg.wants("apply").then(|| apply_part(&cfg));
    let noop = cfg.wants("noop").then(|| noop_part(&cfg));
    let text = render(&cfg, plan.as_ref(), apply.as_deref(), noop.as_ref());
    println!("{text}");
    let out = target_dir().join("bench").join("results.md");
    std::fs::create_dir_all(out.parent().expect("parent")).expect("bench dir");
    std::fs::write(&out, &text).expect("write results");
    eprintln!("written to {}", out.display());
}
