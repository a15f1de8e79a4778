//! Print what the readers make of an employers file and an employees file:
//! rejections, warnings and counts. Handy when writing samples or corpus cases.
//!
//! cargo run --example input_dump -- EMPLOYERS.csv [EMPLOYEES.csv]

use std::path::PathBuf;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some(employers_path) = args.first() else {
        eprintln!("usage: input_dump EMPLOYERS.csv [EMPLOYEES.csv]");
        std::process::exit(2);
    };
    let employers = match benefits_sync::input::read_employers(employers_path) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "employers: {} rows, {} valid, {} rejected",
        employers.rows,
        employers.employers.len(),
        employers.rejected.len()
    );
    for w in &employers.warnings {
        println!("warning: {w}");
    }
    for r in &employers.rejections {
        println!("{r}");
    }
    if let Some(p) = args.get(1) {
        let mut valid = 0u64;
        match benefits_sync::input::read_employees(p, &employers, |_| valid += 1) {
            Ok(s) => {
                println!(
                    "employees: {} rows, {} streamed, {} duplicated refs",
                    s.rows,
                    valid,
                    s.duplicates.len()
                );
                for w in &s.warnings {
                    println!("warning: {w}");
                }
                for r in &s.rejections {
                    println!("{r}");
                }
            }
            Err(e) => println!("{e}"),
        }
    }
}
