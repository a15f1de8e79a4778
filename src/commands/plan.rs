//! `benefits-sync plan`: the dry run.

use std::io::Write;

use super::{as_of, open_store, state_path, AppError, EXIT_CHANGES, EXIT_INVALID_STRICT, EXIT_OK};
use crate::cli::PlanArgs;
use crate::plan::{self, PlanContext, SavedPlan};
use crate::report;

pub fn run(args: PlanArgs) -> Result<u8, AppError> {
    let inputs = &args.inputs;
    super::parse_targets(&inputs.targets)?;
    let store = open_store(&state_path(&inputs.state, inputs.sandbox))?;
    let snap = store.snapshot()?;
    store.close();
    let ctx = PlanContext {
        today: as_of(&inputs.as_of)?,
        offboard_missing: inputs.offboard_missing,
    };
    let plan = plan::build(&inputs.employers, &inputs.employees, &snap, ctx, false)?;
    drop(snap);
    let mut buf: Vec<u8> = Vec::new();
    report::render(&plan, args.format, &mut buf).map_err(|e| AppError::Output(e.to_string()))?;
    match &args.out {
        Some(path) => report::write_private(path, &buf).map_err(|e| {
            AppError::Output(format!("cannot write report {}: {e}", path.display()))
        })?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)
                .and_then(|_| out.flush())
                .map_err(|e| AppError::Output(e.to_string()))?;
        }
    }
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
