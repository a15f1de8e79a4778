//! The human dry-run report: a summary table, then every operation, every
//! rejected row, every finding.

use std::fmt::Write as _;
use std::io::Write;

use crate::plan::{OpKind, Plan, Subject};

/// How many operations ahead the rendering asks for an employer's ref.
const RENDER_AHEAD: usize = 16;

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
    let totals = super::totals(plan);
    for ((t, k), n) in &totals.operations {
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
        "missing employees", totals.missing_employees
    )?;
    writeln!(out, "  {:<43} {:>8}", "findings", plan.findings.len())?;
    writeln!(out, "  {:<43} {:>8}", "warnings", plan.warnings.len())?;
    if !plan.operations.is_empty() {
        writeln!(out)?;
        writeln!(out, "Operations")?;
        // Millions of lines: each is assembled from string pieces in one
        // reused buffer and written whole, without the formatting machinery
        // (which cost more than the rest of the report).
        let prefixes =
            OpKind::ALL.map(|k| format!("  {:<5} {:<18} ", k.target().as_str(), k.code()));
        let mut line = String::with_capacity(256);
        for (i, op) in plan.operations.iter().enumerate() {
            // An employee's line names its employer: one of 50,000 refs,
            // at random, whose text missed the cache on most lines (four
            // fifths of this loop). Ask for it a few lines ahead.
            if let Some(ahead) = plan.operations.get(i + RENDER_AHEAD) {
                if !matches!(ahead.subject, Subject::Membership(..)) {
                    crate::prefetch::prefetch(ahead.subject.employer().as_str());
                }
            }
            line.clear();
            line.push_str(&prefixes[op.kind as usize]);
            let parts: [&str; 4] = match &op.subject {
                Subject::Employer(e) => ["employer ", e.as_str(), "", ""],
                Subject::Group(e, g) => ["group '", g.as_str(), "' of ", e.as_str()],
                Subject::Connection(e, c) => {
                    write!(line, "carrier {c} for {e}").expect("a String takes any text");
                    ["", "", "", ""]
                }
                Subject::Employee(e, ee) => ["employee ", ee.as_str(), " of ", e.as_str()],
                Subject::Membership(_, ee, g) => {
                    line.push_str("employee ");
                    line.push_str(ee.as_str());
                    ["", " to group '", g.as_str(), "'"]
                }
            };
            parts.iter().for_each(|p| line.push_str(p));
            if !op.changes.is_empty() {
                line.push_str(" (changes: ");
                line.push_str(&op.changes().join(", "));
                line.push(')');
            }
            if let Some(n) = &op.note {
                line.push_str(" [");
                line.push_str(n);
                line.push(']');
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
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
