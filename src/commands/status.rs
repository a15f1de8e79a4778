//! `benefits-sync status`: recent runs, employees and row digests, open
//! journal entries, connections.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{open_store, state_path, AppError, EXIT_OK};
use crate::cli::{StatusArgs, StatusFormat};
use crate::remote::CounterValues;
use crate::state::db;

#[derive(Serialize)]
struct Status {
    state: String,
    state_version: u64,
    lock: Option<db::LockHolder>,
    runs: Vec<db::RunRow>,
    employees: db::EmployeeCounts,
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
            employees: db::employee_counts(c)?,
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
                if let Some(line) = requests_line(&r.requests) {
                    println!("        {line}");
                }
            }
            let e = status.employees;
            println!("\nEmployees");
            println!(
                "  {:<12} {} (offboarded {})",
                "synced", e.synced, e.offboarded
            );
            // Why a night's plan is quick or slow: rows of employees with a
            // digest are skipped while unchanged (`input::digest`).
            println!(
                "  {:<12} {} (their rows are skipped while unchanged)",
                "row digests", e.row_digests
            );
            // Done operations leave no journal row (their effect is the
            // record): what is listed is what a run left open.
            println!("\nJournal (operations left open; done ones are not kept)");
            if status.journal.is_empty() {
                println!("  none");
            }
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

/// One line of a run's request figures: the total, then each target, then
/// what went wrong on the way (only what happened), e.g.
/// `requests 33 (ic 3, kota 23, noyo 7), 19 writes, 4 retries, 2 429s`.
/// `None` for a run that recorded no figures (it died, or was refused).
fn requests_line(by_target: &BTreeMap<String, CounterValues>) -> Option<String> {
    if by_target.is_empty() {
        return None;
    }
    let sum = |f: fn(&CounterValues) -> u64| by_target.values().map(f).sum::<u64>();
    if sum(|c| c.requests) == 0 {
        return Some("no requests".to_owned());
    }
    let parts: Vec<String> = by_target
        .iter()
        .map(|(t, c)| format!("{t} {}", c.requests))
        .collect();
    let mut line = format!(
        "requests {} ({}), {} writes",
        sum(|c| c.requests),
        parts.join(", "),
        sum(|c| c.writes)
    );
    for (n, what) in [
        (sum(|c| c.retries), "retries"),
        (sum(|c| c.throttled), "429s"),
        (sum(|c| c.server_errors), "5xx"),
        (sum(|c| c.network_errors), "network errors"),
    ] {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_line_names_each_target_and_only_the_trouble_seen() {
        assert_eq!(requests_line(&BTreeMap::new()), None);
        let mut m = BTreeMap::new();
        m.insert("kota".to_owned(), CounterValues::default());
        assert_eq!(requests_line(&m).as_deref(), Some("no requests"));
        m.insert(
            "kota".to_owned(),
            CounterValues {
                requests: 20,
                writes: 15,
                retries: 3,
                throttled: 2,
                ..Default::default()
            },
        );
        m.insert(
            "ic".to_owned(),
            CounterValues {
                requests: 3,
                writes: 3,
                network_errors: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            requests_line(&m).unwrap(),
            "requests 23 (ic 3, kota 20), 18 writes, 3 retries, 2 429s, 1 network errors"
        );
    }
}
