//! Assembling a whole plan: read both exports, plan against the snapshot.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

use super::planner::{Finding, PlanContext, Planner};
use super::Operation;
use crate::input::{self, InputError, InputWarning, Rejection};
use crate::model::{Employee, EmployeeRef, Employer};
use crate::state::Snapshot;

/// An input file as the plan names it: by path and content hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    pub path: String,
    /// blake3 of the file's bytes.
    pub blake3: String,
    pub rows: u64,
}

/// A complete plan: operations, findings, rejections, and (for apply) the
/// data the operations need.
#[derive(Debug)]
pub struct Plan {
    pub employers_file: FileInfo,
    pub employees_file: FileInfo,
    pub state_version: u64,
    pub as_of: NaiveDate,
    pub offboard_missing: bool,
    pub operations: Vec<Operation>,
    pub findings: Vec<Finding>,
    pub rejections: Vec<Rejection>,
    pub warnings: Vec<InputWarning>,
    pub employers: Vec<Employer>,
    pub employees: HashMap<EmployeeRef, Employee>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.operations.is_empty()
    }
}

/// Read the exports and plan them against `snap`. `keep_payloads` keeps the
/// employee records operations need (apply does; plan need not).
pub fn build(
    employers_path: &Path,
    employees_path: &Path,
    snap: &Snapshot,
    ctx: PlanContext,
    keep_payloads: bool,
) -> Result<Plan, InputError> {
    let employers = input::read_employers(employers_path)?;
    let mut planner = Planner::new(
        ctx.clone(),
        snap,
        &employers.employers,
        &employers.rejected,
        keep_payloads,
    );
    let summary = input::read_employees(employees_path, &employers, |e| planner.employee(e))?;
    for r in &summary.rejections {
        if let Some(k) = &r.key {
            planner.rejected_employee(k);
        }
    }
    let body = planner.finish(&summary.duplicates);
    let mut rejections = employers.rejections.clone();
    rejections.extend(summary.rejections);
    let mut warnings = employers.warnings.clone();
    warnings.extend(summary.warnings);
    Ok(Plan {
        employers_file: FileInfo {
            path: employers_path.display().to_string(),
            blake3: employers.content_hash.clone(),
            rows: employers.rows,
        },
        employees_file: FileInfo {
            path: employees_path.display().to_string(),
            blake3: summary.content_hash,
            rows: summary.rows,
        },
        state_version: snap.version,
        as_of: ctx.today,
        offboard_missing: ctx.offboard_missing,
        operations: body.operations,
        findings: body.findings,
        rejections,
        warnings,
        employers: employers.employers,
        employees: body.employees,
    })
}
