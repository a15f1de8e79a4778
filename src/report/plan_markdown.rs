//! The dry-run report as Markdown, for a pull request or a ticket.

use std::io::Write;

use crate::plan::Plan;

/// Escape what would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "# benefits-sync plan as of {}", plan.as_of)?;
    writeln!(out)?;
    writeln!(
        out,
        "State version {}. Inputs: `{}` ({} rows), `{}` ({} rows).",
        plan.state_version,
        plan.employers_file.path,
        plan.employers_file.rows,
        plan.employees_file.path,
        plan.employees_file.rows
    )?;
    writeln!(out)?;
    writeln!(out, "## Summary")?;
    writeln!(out)?;
    writeln!(out, "| target | operation | count |")?;
    writeln!(out, "|---|---|---:|")?;
    let totals = super::totals(plan);
    for ((t, k), n) in &totals.operations {
        writeln!(out, "| {} | {} | {n} |", t.label(), k.code())?;
    }
    writeln!(out, "| **all** | operations | {} |", plan.operations.len())?;
    writeln!(out, "| | rejected rows | {} |", plan.rejections.len())?;
    writeln!(
        out,
        "| | missing employees | {} |",
        totals.missing_employees
    )?;
    writeln!(out, "| | findings | {} |", plan.findings.len())?;
    if !plan.operations.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Operations")?;
        writeln!(out)?;
        writeln!(out, "| target | operation | subject | details |")?;
        writeln!(out, "|---|---|---|---|")?;
        for op in &plan.operations {
            let mut details = op.changes().join(", ");
            if let Some(n) = &op.note {
                if !details.is_empty() {
                    details.push_str("; ");
                }
                details.push_str(n);
            }
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                op.target().as_str(),
                op.kind.code(),
                cell(&op.subject.to_string()),
                cell(&details)
            )?;
        }
    }
    if !plan.rejections.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Rejected rows")?;
        writeln!(out)?;
        writeln!(out, "| file | line | column | rule | reason |")?;
        writeln!(out, "|---|---:|---|---|---|")?;
        for r in &plan.rejections {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&r.file),
                r.line,
                cell(r.column.as_deref().unwrap_or("")),
                r.rule.code(),
                cell(&r.message)
            )?;
        }
    }
    if !plan.findings.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Findings")?;
        writeln!(out)?;
        writeln!(out, "| kind | subject | message |")?;
        writeln!(out, "|---|---|---|")?;
        for f in &plan.findings {
            writeln!(
                out,
                "| {} | {} | {} |",
                f.kind.code(),
                cell(&f.subject),
                cell(&f.message)
            )?;
        }
    }
    Ok(())
}
