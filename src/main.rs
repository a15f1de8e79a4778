//! The `benefits-sync` binary: parse, set up logging, run, map to an exit code.

use std::process::ExitCode;

use anyhow::Context;
use benefits_sync::cli::{Cli, Command, LogFormat};
use benefits_sync::commands::{self, EXIT_USAGE};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a million-row plan makes tens
/// of millions of small allocations (validated fields, keys, operations), and
/// glibc's malloc/free were a sixth of its profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e`
/// (`include/mimalloc.h`, the same in v2 and v3), which the bindings do
/// not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory freed in whole pages stays resident before mimalloc
/// gives it back, in milliseconds. mimalloc v3 waits a second (v2 waited
/// 10 ms), longer than most of a million-row plan: what its phases freed
/// (the employers' temporaries, the reading threads' buffers) stayed
/// resident, and whether it was given back before the plan's peak
/// depended on the machine's speed (cold plans peaked 20-35 MB higher in
/// fast runs, warm plans 30-40 MB higher in all).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Shorten mimalloc's purge delay to [`PURGE_DELAY_MS`], unless the
/// environment sets it (`MIMALLOC_PURGE_DELAY`, read by mimalloc itself).
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores the value; mimalloc reads its
        // options at every purge decision, from any thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

fn init_logging(log: &benefits_sync::cli::LogArgs) {
    let level = match (log.quiet, log.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("BENEFITS_SYNC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,benefits_sync={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let quiet = cli.log.quiet;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = match cli.command {
        Command::Plan(a) => commands::plan::run(a),
        Command::Apply(a) => runtime.block_on(commands::apply::run(a, quiet)),
        Command::Status(a) => commands::status::run(a),
        Command::Unlock(a) => commands::unlock::run(a),
        Command::Sandbox(a) => runtime.block_on(commands::sandbox::run(a)),
        Command::Generate(a) => commands::generate(a),
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("benefits-sync: {e}");
            Ok(e.exit_code())
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.log);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("benefits-sync: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option set is mimalloc's purge delay: the one whose default is
    /// a second (none of the others' is), and which then reads back.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading and storing an option, as tune_allocator does.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            tune_allocator();
            assert_eq!(
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                PURGE_DELAY_MS
            );
        }
    }
}
