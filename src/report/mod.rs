//! Rendering: dry-run reports (text, JSON, CSV, Markdown) and run reports.
//!
//! Reports name objects by natural keys (payroll refs, group names, carrier
//! ids) and never carry personal data: a reviewer sees what will be done to
//! whom by ref, and the payroll system shows who that is.

mod background;
pub mod plan_csv;
pub mod plan_json;
pub mod plan_markdown;
pub mod plan_text;
pub mod run;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::plan::{FindingKind, OpKind, Plan, Target};
pub use background::BackgroundWriter;

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
    Markdown,
}

/// Render `plan` in `format` to `out`.
pub fn render(plan: &Plan, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Text => plan_text::render(plan, out),
        Format::Json => plan_json::render(plan, out),
        Format::Csv => plan_csv::render(plan, out),
        Format::Markdown => plan_markdown::render(plan, out),
    }
}

/// What a report's summary counts.
pub struct Totals {
    /// Operations by (target, kind), in report order.
    pub operations: BTreeMap<(Target, OpKind), u64>,
    /// Employees missing from the export: findings, and offboardings
    /// planned because of it.
    pub missing_employees: usize,
}

/// Count a plan's summary in one pass over its operations (a million-row
/// plan holds 200 MB of them; a pass each cost a twentieth of a second).
/// Operations are counted by kind in an array: a map entry per operation
/// was a sixth of the report.
pub fn totals(plan: &Plan) -> Totals {
    let mut by_kind = [0u64; OpKind::ALL.len()];
    let mut missing_offboards = 0;
    for op in &plan.operations {
        by_kind[op.kind as usize] += 1;
        if op.kind == OpKind::EmployeeOffboard
            && op.note.as_deref().is_some_and(|n| n.starts_with("missing"))
        {
            missing_offboards += 1;
        }
    }
    let missing_findings = plan
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FindingKind::MissingFromExport | FindingKind::OffboardRefused
            )
        })
        .count();
    Totals {
        operations: OpKind::ALL
            .iter()
            .zip(by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| ((k.target(), *k), n))
            .collect(),
        missing_employees: missing_findings + missing_offboards,
    }
}

/// Write a file readable by its owner only (reports and saved plans name
/// payroll refs; keep them as private as the state).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_private_with(path, |out| out.write_all(bytes))
}

/// Stream a file readable by its owner only: `fill` writes through a
/// buffer (written out by a second thread, [`BackgroundWriter`]) into a
/// temporary file beside `path`, which replaces `path` only
/// once complete. A million-row report is never held in memory whole, and a
/// failed render never leaves half a report where the last good one was.
pub fn write_private_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|f| {
        let mut out = BackgroundWriter::new(f)?;
        fill(&mut out)?;
        out.finish()
    });
    match written.and_then(|()| replace(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Put the complete file `new` at `path`, moving any file there aside
/// first and removing it after. ext4 (`auto_da_alloc`) writes out a file
/// renamed over another before the rename returns: a quarter of a second
/// for a million-row report, on every night that reuses the report's name.
/// Moved aside, the old file stays whole until the new one is in place
/// (and is put back if that fails).
fn replace(new: &Path, path: &Path) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".old-{}", std::process::id()));
    let aside = path.with_file_name(name);
    let moved = std::fs::rename(path, &aside).is_ok();
    match std::fs::rename(new, path) {
        Ok(()) => {
            if moved {
                let _ = std::fs::remove_file(&aside);
            }
            Ok(())
        }
        Err(e) => {
            if moved {
                let _ = std::fs::rename(&aside, path);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_report_replaces_the_last_one_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.txt");
        write_private(&path, b"first").unwrap();
        write_private_with(&path, |out| out.write_all(b"second")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A failed render leaves the last good report as it was.
        let failed = write_private_with(&path, |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Nothing is left beside it: no partial file, no old one.
        assert_eq!(names(dir.path()), ["plan.txt"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
