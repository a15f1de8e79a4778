//! The dry-run report as one CSV table, for spreadsheets: one row per
//! operation, rejection and finding, told apart by `record`.

use std::io::Write;

use crate::plan::{Plan, Subject};

const HEADER: [&str; 12] = [
    "record",
    "kind",
    "target",
    "key",
    "employer_ref",
    "employee_ref",
    "group",
    "carrier_id",
    "detail",
    "file",
    "line",
    "column",
];

pub fn render(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let e = |e: csv::Error| std::io::Error::other(e.to_string());
    w.write_record(HEADER).map_err(e)?;
    for op in &plan.operations {
        let carrier = match &op.subject {
            Subject::Connection(_, c) => c.to_string(),
            _ => String::new(),
        };
        let mut detail = op.changes().join(";");
        if let Some(n) = &op.note {
            if !detail.is_empty() {
                detail.push(' ');
            }
            detail.push_str(n);
        }
        w.write_record([
            "operation",
            op.kind.code(),
            op.target().as_str(),
            &op.key(),
            op.subject.employer().as_str(),
            op.subject.employee().map(|x| x.as_str()).unwrap_or(""),
            op.subject.group().map(|x| x.as_str()).unwrap_or(""),
            &carrier,
            &detail,
            "",
            "",
            "",
        ])
        .map_err(e)?;
    }
    for r in &plan.rejections {
        w.write_record([
            "rejection",
            r.rule.code(),
            "",
            r.key.as_deref().unwrap_or(""),
            "",
            "",
            "",
            "",
            &r.message,
            &r.file,
            &r.line.to_string(),
            r.column.as_deref().unwrap_or(""),
        ])
        .map_err(e)?;
    }
    for f in &plan.findings {
        w.write_record([
            "finding",
            f.kind.code(),
            "",
            &f.subject,
            "",
            "",
            "",
            "",
            &f.message,
            "",
            "",
            "",
        ])
        .map_err(e)?;
    }
    w.flush()
}
