//! The commands, each a function from parsed arguments to an exit code.
//! Errors carry their exit code (`AppError::exit_code`); `main` prints them.

pub mod apply;
pub mod plan;
pub mod sandbox;
pub mod status;
pub mod unlock;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::input::InputError;
use crate::plan::{Stale, Target};
use crate::state::{db, StateError, Store};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INVALID_STRICT: u8 = 3;
pub const EXIT_LOCKED: u8 = 4;
pub const EXIT_STALE: u8 = 5;
pub const EXIT_CHANGES: u8 = 10;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command stopped early.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Locked(String),
    #[error("saved plan is stale: {0}")]
    Stale(#[from] Stale),
    #[error("{0}")]
    Output(String),
}

impl From<crate::plan::BuildError> for AppError {
    fn from(e: crate::plan::BuildError) -> AppError {
        match e {
            crate::plan::BuildError::Input(e) => AppError::Input(e),
            crate::plan::BuildError::State(e) => AppError::State(e),
        }
    }
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Input(_) | AppError::State(_) => EXIT_USAGE,
            AppError::Locked(_) => EXIT_LOCKED,
            AppError::Stale(_) => EXIT_STALE,
            AppError::Output(_) => EXIT_FAILED,
        }
    }
}

/// Where the sandbox keeps its files.
pub const SANDBOX_STATE: &str = "state/sandbox.db";
pub const SANDBOX_DATA: &str = "state/sandbox-data.db";
pub const DEFAULT_STATE: &str = "state/benefits-sync.db";

pub fn state_path(given: &Option<PathBuf>, sandbox: bool) -> PathBuf {
    given.clone().unwrap_or_else(|| {
        PathBuf::from(if sandbox {
            SANDBOX_STATE
        } else {
            DEFAULT_STATE
        })
    })
}

pub fn parse_targets(list: &[String]) -> Result<Vec<Target>, AppError> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            Target::parse(s).ok_or_else(|| {
                AppError::Config(format!(
                    "unknown target '{s}' in --targets; use kota, noyo or ic"
                ))
            })
        })
        .collect()
}

pub fn as_of(given: &Option<String>) -> Result<NaiveDate, AppError> {
    match given {
        None => Ok(chrono::Local::now().date_naive()),
        Some(s) => crate::model::parse_date(s)
            .map_err(|v| AppError::Config(format!("--as-of: {}", v.message))),
    }
}

/// Open the state database (creating it if needed).
pub fn open_store(path: &Path) -> Result<Store, AppError> {
    Ok(Store::open(path)?)
}

/// Whether a process is alive on this host.
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // Signal 0 checks existence; EPERM means it exists but is not ours.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

pub fn hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Describe a lock holder, and whether it is still running.
pub fn describe_holder(state: &Path, h: &db::LockHolder) -> String {
    let here = hostname();
    let base = format!(
        "state database {} is locked by run {} (pid {} on host {}, since {})",
        state.display(),
        h.run_id,
        h.pid,
        h.host,
        h.started
    );
    if h.host == here && !pid_alive(h.pid) {
        format!(
            "{base}; that process is no longer running. If no other run uses this state, release the lock with: benefits-sync unlock --state {}",
            state.display()
        )
    } else {
        format!("{base}; wait for it to finish")
    }
}

/// `benefits-sync generate`.
pub fn generate(a: crate::cli::GenerateArgs) -> Result<u8, AppError> {
    let o = crate::gen::GenOptions {
        employers: a.employers,
        employees: a.employees,
        seed: a.seed,
        day: a.day,
        change_rate: a.change_rate,
        leave_rate: a.leave_rate,
        hire_rate: a.hire_rate,
        max_groups: a.max_groups,
        max_carriers: a.max_carriers,
    };
    crate::gen::generate(&a.out, &o)
        .map_err(|e| AppError::Output(format!("cannot write to {}: {e}", a.out.display())))?;
    Ok(EXIT_OK)
}
