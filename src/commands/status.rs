//! `benefits-sync status`: recent runs, open journal entries, connections.

use serde::Serialize;

use super::{open_store, state_path, AppError, EXIT_OK};
use crate::cli::{StatusArgs, StatusFormat};
use crate::state::db;

#[derive(Serialize)]
struct Status {
    state: String,
    state_version: u64,
    lock: Option<db::LockHolder>,
    runs: Vec<db::RunRow>,
    journal: Vec<(String, i64)>,
    open_operations: Vec<db::JournalRow>,
    connections: Vec<db::ConnectionRow>,
}

pub fn run(args: StatusArgs) -> Result<u8, AppError> {
    let path = state_path(&args.state, args.sandbox);
    if !path.exists() {
        return Err(AppError::Config(format!(
            "no state database at {}: nothing has been synced with it yet",
            path.display()
        )));
    }
    let store = open_store(&path)?;
    let status = store.call(|c| {
        Ok(Status {
            state: String::new(),
            state_version: db::version(c)?,
            lock: db::lock_holder(c)?,
            runs: db::recent_runs(c, 10)?,
            journal: db::journal_counts(c)?,
            open_operations: db::open_journal(c)?,
            connections: db::connections(c)?,
        })
    })?;
    store.close();
    let status = Status {
        state: path.display().to_string(),
        ..status
    };
    match args.format {
        StatusFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&status)
                    .map_err(|e| AppError::Output(e.to_string()))?
            );
        }
        StatusFormat::Text => {
            println!("state {} (version {})", status.state, status.state_version);
            match &status.lock {
                Some(h) => println!(
                    "locked by run {} (pid {} on {}, since {})",
                    h.run_id, h.pid, h.host, h.started
                ),
                None => println!("not locked"),
            }
            println!("\nRecent runs");
            for r in &status.runs {
                let totals = r
                    .summary
                    .as_ref()
                    .and_then(|s| s.get("totals"))
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!(
                    "  #{:<4} {:<6} {} -> {} {} {}",
                    r.id,
                    r.command,
                    r.started,
                    r.finished.as_deref().unwrap_or("(running or died)"),
                    r.outcome.as_deref().unwrap_or(""),
                    totals
                );
            }
            println!("\nJournal");
            for (s, n) in &status.journal {
                println!("  {s:<10} {n}");
            }
            let open: Vec<_> = status
                .open_operations
                .iter()
                .filter(|o| o.status != "skipped")
                .collect();
            if !open.is_empty() {
                println!("\nPending and failed operations (planned again on the next run)");
                for o in open.iter().take(50) {
                    println!(
                        "  {:<10} {} (attempts {}, {}) {}",
                        o.status,
                        o.op_key,
                        o.attempts,
                        o.updated,
                        o.error.as_deref().unwrap_or("")
                    );
                }
                if open.len() > 50 {
                    println!("  ... {} more (use --format json)", open.len() - 50);
                }
            }
            if !status.connections.is_empty() {
                println!("\nNoyo connections");
                for c in &status.connections {
                    println!(
                        "  {} carrier {}: {}",
                        c.employer_ref, c.carrier_id, c.status
                    );
                }
            }
        }
    }
    Ok(EXIT_OK)
}
