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
