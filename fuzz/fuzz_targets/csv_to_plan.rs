//! The CSV-to-plan path: both exports from arbitrary bytes, read, validated
//! and planned against an empty state, then rendered in every format.
//!
//! The first byte chooses what the rest is: the employers file (with a
//! valid employees file), the employees file (with valid employers, so rows
//! get past the employer checks into the planner), or both, split at the
//! first NUL byte. Bit 2 of it turns on --offboard-missing.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use benefits_sync::plan::{self, PlanContext, SavedPlan};
use benefits_sync::report::{self, Format};
use benefits_sync::state::Snapshot;
use libfuzzer_sys::fuzz_target;

const EMPLOYERS: &[u8] = include_bytes!("../../tests/corpus/base_employers.csv");
const EMPLOYEES: &[u8] = include_bytes!("../../tests/corpus/employees/valid.csv");

/// The readers take paths; one scratch directory per fuzzing process.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("csv-to-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (employers, employees): (&[u8], &[u8]) = match mode % 3 {
        0 => (rest, EMPLOYEES),
        1 => (EMPLOYERS, rest),
        _ => match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, b""),
        },
    };
    let er = scratch().join("employers.csv");
    let ee = scratch().join("employees.csv");
    std::fs::write(&er, employers).expect("write employers");
    std::fs::write(&ee, employees).expect("write employees");
    let ctx = PlanContext {
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date"),
        offboard_missing: mode & 4 != 0,
    };
    // A whole-file problem (no header, missing columns) is an error, not a
    // plan; that is a correct answer too.
    let Ok(plan) = plan::build(&er, &ee, &Snapshot::default(), ctx, true) else {
        return;
    };
    // The executor relies on dependencies pointing backwards.
    for (i, op) in plan.operations.iter().enumerate() {
        for d in &op.deps {
            assert!(
                (*d as usize) < i,
                "operation {i} depends on a later one ({d})"
            );
        }
    }
    for format in [Format::Text, Format::Json, Format::Csv, Format::Markdown] {
        let mut out = Vec::new();
        report::render(&plan, format, &mut out).expect("render to memory");
        if format == Format::Json {
            // Whatever the bytes were, the JSON report is JSON.
            serde_json::from_slice::<serde_json::Value>(&out).expect("the JSON report parses");
        }
    }
    let _ = SavedPlan::from_plan(&plan);
});
