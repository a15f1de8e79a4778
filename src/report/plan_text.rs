//! The human dry-run report: a summary table, then every operation, every
//! rejected row, every finding.

use std::io::Write;

use crate::plan::{Plan, Subject};

pub fn render(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "benefits-sync plan as of {} (state version {})",
        plan.as_of, plan.state_version
    )?;
    for f in [&plan.employers_file, &plan.employees_file] {
        writeln!(
            out,
            "  input {} ({} rows, blake3 {})",
            f.path,
            f.rows,
            &f.blake3[..f.blake3.len().min(16)]
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Summary")?;
    writeln!(out, "  {:<22} {:<20} {:>8}", "target", "operation", "count")?;
    let counts = super::counts(plan);
    for ((t, k), n) in &counts {
        writeln!(out, "  {:<22} {:<20} {:>8}", t.label(), k.code(), n)?;
    }
    writeln!(out, "  {:<43} {:>8}", "operations", plan.operations.len())?;
    writeln!(
        out,
        "  {:<43} {:>8}",
        "rejected rows",
        plan.rejections.len()
    )?;
    writeln!(
        out,
        "  {:<43} {:>8}",
        "missing employees",
        super::missing_count(plan)
    )?;
    writeln!(out, "  {:<43} {:>8}", "findings", plan.findings.len())?;
    writeln!(out, "  {:<43} {:>8}", "warnings", plan.warnings.len())?;
    if !plan.operations.is_empty() {
        writeln!(out)?;
        writeln!(out, "Operations")?;
        for op in &plan.operations {
            write!(out, "  {:<5} {:<18} ", op.target().as_str(), op.kind.code())?;
            match &op.subject {
                Subject::Employer(e) => write!(out, "employer {e}"),
                Subject::Group(e, g) => write!(out, "group '{g}' of {e}"),
                Subject::Connection(e, c) => write!(out, "carrier {c} for {e}"),
                Subject::Employee(e, ee) => write!(out, "employee {ee} of {e}"),
                Subject::Membership(_, ee, g) => write!(out, "employee {ee} to group '{g}'"),
            }?;
            if !op.changes.is_empty() {
                write!(out, " (changes: {})", op.changes().join(", "))?;
            }
            if let Some(n) = &op.note {
                write!(out, " [{n}]")?;
            }
            writeln!(out)?;
        }
    }
    if !plan.rejections.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Rejected rows (nothing is planned for them or for what depends on them)"
        )?;
        for r in &plan.rejections {
            writeln!(out, "  {r}")?;
        }
    }
    if !plan.findings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Findings")?;
        for f in &plan.findings {
            writeln!(out, "  {:<22} {}: {}", f.kind.code(), f.subject, f.message)?;
        }
    }
    if !plan.warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Warnings")?;
        for w in &plan.warnings {
            match w.line {
                Some(l) => writeln!(out, "  {}:{l}: {}", w.file, w.message)?,
                None => writeln!(out, "  {}: {}", w.file, w.message)?,
            }
        }
    }
    Ok(())
}
