//! `benefits-sync plan`: the dry run.

use super::{as_of, state_path, AppError, EXIT_CHANGES, EXIT_INVALID_STRICT, EXIT_OK};
use crate::cli::PlanArgs;
use crate::plan::{self, Keep, PlanContext, SavedPlan};
use crate::report;
use crate::state::db;

pub fn run(args: PlanArgs) -> Result<u8, AppError> {
    let inputs = &args.inputs;
    super::parse_targets(&inputs.targets)?;
    let ctx = PlanContext {
        today: as_of(&inputs.as_of)?,
        offboard_missing: inputs.offboard_missing,
    };
    let started = std::time::Instant::now();
    // plan writes nothing of its own: the state's integrity check can run
    // beside the snapshot's loading (which waits for its verdict).
    let store = crate::state::Store::open_for_planning(&state_path(&inputs.state, inputs.sandbox))?;
    // The state loads on the store thread while employers.csv is read (and
    // then the state checked) on another: neither needs the other, and on a
    // million-employee state both take a while.
    let (snap, employers, verdict) = store.snapshot_beside(db::Detail::Planning, || {
        plan::read_employers(&inputs.employers)
    });
    let snap = snap?;
    let employers = match employers {
        Ok(employers) => employers,
        // A damaged state is the first thing to fix.
        Err(e) => return Err(verdict.wait().map_or_else(Into::into, |()| e.into())),
    };
    tracing::debug!(
        "state loaded in {:.2?}: {} employees (rss {})",
        started.elapsed(),
        snap.employees.len(),
        crate::memory::peak_rss()
    );
    let fetch = |refs| -> plan::Pending { Box::new(store.fetch_employees_later(refs)) };
    let plan = plan::build_from(
        employers,
        &inputs.employers,
        &inputs.employees,
        &snap,
        Some(&fetch),
        ctx,
        // Only a saved plan reads fingerprints.
        if args.save.is_some() {
            Keep::Fingerprints
        } else {
            Keep::Nothing
        },
    );
    // The integrity check ran beside the planning: its verdict comes
    // before the plan, or the plan's error, is used.
    verdict.wait()?;
    let plan = plan?;
    store.close();
    // Freeing a million-employee snapshot entry by entry took half a
    // second, and the process ends as soon as the report is written: let
    // the exit free it.
    std::mem::forget(snap);
    let started = std::time::Instant::now();
    let rendered = match &args.out {
        Some(path) => {
            report::write_private_with(path, |out| report::render(&plan, args.format, out)).map_err(
                |e| AppError::Output(format!("cannot write report {}: {e}", path.display())),
            )
        }
        None => report::BackgroundWriter::new(std::io::stdout())
            .and_then(|mut out| {
                report::render(&plan, args.format, &mut out)?;
                out.finish()
            })
            .map_err(|e| AppError::Output(e.to_string())),
    };
    rendered?;
    tracing::debug!(
        "report written in {:.2?} (rss {})",
        started.elapsed(),
        crate::memory::peak_rss()
    );
    if let Some(path) = &args.save {
        SavedPlan::from_plan(&plan)
            .save(path)
            .map_err(|e| AppError::Output(e.to_string()))?;
        tracing::info!("plan saved to {}", path.display());
    }
    if !plan.rejections.is_empty() {
        tracing::warn!(
            "{} rows rejected (listed in the report)",
            plan.rejections.len()
        );
        if inputs.strict {
            return Ok(EXIT_INVALID_STRICT);
        }
    }
    let changes = plan.has_changes();
    // As with the snapshot: the process ends now, and freeing millions of
    // operations one by one took a tenth of a second.
    std::mem::forget(plan);
    Ok(if args.detailed_exitcode && changes {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
