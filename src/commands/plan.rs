//! `benefits-sync plan`: the dry run.

use std::io::Write;

use super::{as_of, open_store, state_path, AppError, EXIT_CHANGES, EXIT_INVALID_STRICT, EXIT_OK};
use crate::cli::PlanArgs;
use crate::plan::{self, PlanContext, SavedPlan};
use crate::report;

pub fn run(args: PlanArgs) -> Result<u8, AppError> {
    let inputs = &args.inputs;
    super::parse_targets(&inputs.targets)?;
    let started = std::time::Instant::now();
    let store = open_store(&state_path(&inputs.state, inputs.sandbox))?;
    let snap = store.snapshot()?;
    store.close();
    tracing::debug!(
        "state loaded in {:.2?}: {} employees",
        started.elapsed(),
        snap.employees.len()
    );
    let ctx = PlanContext {
        today: as_of(&inputs.as_of)?,
        offboard_missing: inputs.offboard_missing,
    };
    let plan = plan::build(&inputs.employers, &inputs.employees, &snap, ctx, false)?;
    let started = std::time::Instant::now();
    drop(snap);
    tracing::debug!("state released in {:.2?}", started.elapsed());
    let started = std::time::Instant::now();
    let rendered = match &args.out {
        Some(path) => {
            report::write_private_with(path, |out| report::render(&plan, args.format, out)).map_err(
                |e| AppError::Output(format!("cannot write report {}: {e}", path.display())),
            )
        }
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            report::render(&plan, args.format, &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| AppError::Output(e.to_string()))
        }
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
    Ok(if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
