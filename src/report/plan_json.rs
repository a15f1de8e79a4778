//! The machine-readable dry-run report. Its schema is documented in the
//! README ("JSON report") and versioned by the `schema` field: fields are
//! only ever added within `benefits-sync/plan/v1`.

use std::io::Write;

use serde::Serialize;

use crate::plan::{FileInfo, Finding, Plan, Subject};

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    as_of: String,
    state_version: u64,
    inputs: Inputs<'a>,
    summary: Summary,
    operations: Vec<Op<'a>>,
    rejections: Vec<Rejection<'a>>,
    findings: &'a [Finding],
    warnings: Vec<Warning<'a>>,
}

#[derive(Serialize)]
struct Inputs<'a> {
    employers: &'a FileInfo,
    employees: &'a FileInfo,
}

#[derive(Serialize)]
pub struct Count {
    pub target: &'static str,
    pub kind: &'static str,
    pub count: u64,
}

#[derive(Serialize)]
struct Summary {
    operations: Vec<Count>,
    total_operations: usize,
    rejected_rows: usize,
    missing_employees: usize,
    findings: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct Op<'a> {
    key: String,
    kind: &'static str,
    target: &'static str,
    employer_ref: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    employee_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier_id: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    changes: Vec<&'static str>,
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

#[derive(Serialize)]
struct Rejection<'a> {
    file: &'a str,
    line: u64,
    column: Option<&'a str>,
    rule: &'static str,
    message: &'a str,
    key: Option<&'a str>,
}

#[derive(Serialize)]
struct Warning<'a> {
    file: &'a str,
    line: Option<u64>,
    message: &'a str,
}

pub fn render(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let totals = super::totals(plan);
    let keys: Vec<String> = plan.operations.iter().map(|o| o.key()).collect();
    let report = Report {
        schema: "benefits-sync/plan/v1",
        as_of: plan.as_of.to_string(),
        state_version: plan.state_version,
        inputs: Inputs {
            employers: &plan.employers_file,
            employees: &plan.employees_file,
        },
        summary: Summary {
            operations: totals
                .operations
                .into_iter()
                .map(|((t, k), n)| Count {
                    target: t.as_str(),
                    kind: k.code(),
                    count: n,
                })
                .collect(),
            total_operations: plan.operations.len(),
            rejected_rows: plan.rejections.len(),
            missing_employees: totals.missing_employees,
            findings: plan.findings.len(),
            warnings: plan.warnings.len(),
        },
        operations: plan
            .operations
            .iter()
            .zip(&keys)
            .map(|(o, key)| Op {
                key: key.clone(),
                kind: o.kind.code(),
                target: o.target().as_str(),
                employer_ref: o.subject.employer().as_str(),
                employee_ref: o.subject.employee().map(|e| e.as_str()),
                group: o.subject.group().map(|g| g.as_str()),
                carrier_id: match &o.subject {
                    Subject::Connection(_, c) => Some(c.to_string()),
                    _ => None,
                },
                changes: o.changes(),
                depends_on: o.deps.iter().map(|d| keys[*d as usize].clone()).collect(),
                note: o.note.as_deref(),
            })
            .collect(),
        rejections: plan
            .rejections
            .iter()
            .map(|r| Rejection {
                file: &r.file,
                line: r.line,
                column: r.column.as_deref(),
                rule: r.rule.code(),
                message: &r.message,
                key: r.key.as_deref(),
            })
            .collect(),
        findings: &plan.findings,
        warnings: plan
            .warnings
            .iter()
            .map(|w| Warning {
                file: &w.file,
                line: w.line,
                message: &w.message,
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
}
