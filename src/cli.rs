//! Command-line definitions (the contract in DESIGN.md: names are fixed).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Format;

pub const EXIT_CODES: &str = "Exit codes:
  0    success (plan --detailed-exitcode: no changes)
  1    some operations failed
  2    usage or configuration error
  3    invalid input with --strict (nothing applied)
  4    the state database is locked by another run
  5    a saved plan is stale (inputs or state changed)
  10   changes pending (plan --detailed-exitcode)
  130  interrupted";

#[derive(Parser, Debug)]
#[command(
    name = "benefits-sync",
    version,
    about = "Keep Kota, Noyo and Invisible Collector in step with payroll exports",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output: warnings and errors only, no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read the exports, diff them against the state, report the plan. Makes no network call.
    #[command(after_help = EXIT_CODES)]
    Plan(PlanArgs),
    /// Carry out the plan against the configured targets.
    #[command(after_help = EXIT_CODES)]
    Apply(ApplyArgs),
    /// Show recent runs, pending and failed operations, and Noyo connection statuses.
    Status(StatusArgs),
    /// Serve the built-in emulator of the Kota, Noyo and Invisible Collector APIs.
    Sandbox(SandboxArgs),
    /// Release the run lock left by a run that died (after checking it is gone).
    Unlock(UnlockArgs),
    /// Write synthetic exports of any size (for trials, drills and benchmarks).
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Directory to write employers.csv and employees.csv into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub employers: usize,
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub employees: usize,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// 1, or 2 for the next day's export of the same seed (changes, leavers, hires).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub day: u8,
    /// Day 2: share of employees changed.
    #[arg(long, default_value_t = 0.01, value_name = "F")]
    pub change_rate: f64,
    /// Day 2: share of employees leaving.
    #[arg(long, default_value_t = 0.005, value_name = "F")]
    pub leave_rate: f64,
    /// Day 2: new hires as a share of employees.
    #[arg(long, default_value_t = 0.01, value_name = "F")]
    pub hire_rate: f64,
    /// Most groups per employer (1 to 5).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_groups: usize,
    /// Most carriers per employer (0 to 5).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_carriers: usize,
}

#[derive(Args, Debug, Clone)]
pub struct Inputs {
    /// The employers export (CSV).
    #[arg(long, value_name = "FILE")]
    pub employers: PathBuf,
    /// The employees export (CSV).
    #[arg(long, value_name = "FILE")]
    pub employees: PathBuf,
    /// The state database [default: state/benefits-sync.db, or state/sandbox.db with --sandbox].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Refuse to apply anything if any row is invalid (exit 3).
    #[arg(long)]
    pub strict: bool,
    /// Use the built-in sandbox's state database (and, for apply, the sandbox itself).
    #[arg(long)]
    pub sandbox: bool,
    /// Plan the employees missing from the export as offboarded (guarded: refused above 10% of an employer, or for an empty export).
    #[arg(long)]
    pub offboard_missing: bool,
    /// Only these targets (comma-separated: kota,noyo,ic).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub targets: Vec<String>,
    /// The date to plan as of (YYYY-MM-DD) [default: today].
    #[arg(long, value_name = "DATE", hide = true)]
    pub as_of: Option<String>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Save the plan (no personal data) for `apply --plan`.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Exit 10 when there are changes, 0 when none.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Apply exactly this saved plan (exit 5 if an input or the state changed since).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Requests per second per target (paced 2% under it; lowered for the run if the server answers 429).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub rate_limit: u32,
    /// Requests allowed back to back after a quiet spell [default: 1, evenly paced].
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,
    /// Requests in flight per target [default: rate-limit / 10, at least 8, at most 256].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Write the run report (JSON) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Ask Kota to create enrolment intents when adding employees to groups.
    #[arg(long)]
    pub create_enrolment_intents: bool,
    /// Allow plain http:// to hosts other than loopback (test networks only).
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Kota base URL [env: KOTA_API_URL].
    #[arg(long, value_name = "URL")]
    pub kota_url: Option<String>,
    /// Noyo base URL [env: NOYO_API_URL].
    #[arg(long, value_name = "URL")]
    pub noyo_url: Option<String>,
    /// Noyo token endpoint [env: NOYO_TOKEN_URL; default: NOYO_API_URL + /auth/public/token].
    #[arg(long, value_name = "URL")]
    pub noyo_token_url: Option<String>,
    /// Invisible Collector base URL [env: IC_API_URL].
    #[arg(long, value_name = "URL")]
    pub ic_url: Option<String>,
    /// With --sandbox: the sandbox's data file [default: state/sandbox-data.db].
    #[arg(long, value_name = "FILE")]
    pub sandbox_data: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The state database [default: state/benefits-sync.db, or state/sandbox.db with --sandbox].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[arg(long)]
    pub sandbox: bool,
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Persist remote objects in this SQLite file (else in memory).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Fixed latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub latency_ms: u64,
    /// Random extra latency, up to this many milliseconds.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub latency_jitter_ms: u64,
    /// Share of requests answered with a 5xx.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub error_rate: f64,
    /// Share of writes committed and then answered by dropping the connection.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub drop_rate: f64,
    /// Requests per second per API before answering 429 with Retry-After.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Seed of the fault injection, so a failing run replays.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Answer 422 instead of 409 to a duplicate Invisible Collector group (as older docs did).
    #[arg(long)]
    pub ic_duplicate_422: bool,
    /// Time a Noyo connection spends in each status before moving on; 0 settles it at once.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub noyo_step_ms: u64,
}

#[derive(Args, Debug)]
pub struct UnlockArgs {
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[arg(long)]
    pub sandbox: bool,
    /// Release the lock even if its holder seems alive (e.g. another host).
    #[arg(long)]
    pub force: bool,
}
