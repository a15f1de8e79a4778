//! `benefits-sync apply`: lock, plan, apply, record, report.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{
    as_of, describe_holder, hostname, open_store, parse_targets, state_path, AppError, EXIT_FAILED,
    EXIT_INTERRUPTED, EXIT_INVALID_STRICT, EXIT_OK,
};
use crate::apply::{self, ApplyInput, ApplyOptions, RawTargets, Stop, Targets};
use crate::cli::ApplyArgs;
use crate::plan::{self, saved::file_hash, PlanContext, SavedPlan, Target};
use crate::remote::{CounterValues, RetryPolicy};
use crate::report::run::RunReport;
use crate::state::{db, Store};

/// Deliver one message per SIGINT or SIGTERM. The task ends with the runtime.
fn signals() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if tx.send(()).is_err() {
                    return;
                }
            }
        }
        #[cfg(not(unix))]
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    rx
}

/// How hard to push each target, from the flags.
#[derive(Debug, Clone, Copy)]
struct Pace {
    rate: NonZeroU32,
    burst: NonZeroU32,
    concurrency: usize,
}

pub async fn run(args: ApplyArgs, quiet: bool) -> Result<u8, AppError> {
    let inputs = args.inputs.clone();
    let only = parse_targets(&inputs.targets)?;
    let rate = NonZeroU32::new(args.rate_limit)
        .ok_or_else(|| AppError::Config("--rate-limit must be at least 1".into()))?;
    // Evenly paced by default: servers count requests per window, and a
    // burst on top of a full second's worth is what draws 429s.
    let burst = NonZeroU32::new(args.burst.unwrap_or(1))
        .ok_or_else(|| AppError::Config("--burst must be at least 1".into()))?;
    let concurrency = match args.concurrency {
        Some(0) => return Err(AppError::Config("--concurrency must be at least 1".into())),
        Some(n) => n,
        None => crate::remote::GateConfig::default_concurrency(rate),
    };

    // The sandbox, when asked for, lives for the whole run.
    let mut sandbox = None;
    let targets = if inputs.sandbox {
        let data: std::path::PathBuf = args
            .sandbox_data
            .clone()
            .unwrap_or_else(|| super::SANDBOX_DATA.into());
        if let Some(dir) = data.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| AppError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let sb = crate::sandbox::start(crate::sandbox::SandboxConfig {
            data: Some(data.clone()),
            ..Default::default()
        })
        .await
        .map_err(|e| AppError::Config(format!("cannot start the sandbox: {e}")))?;
        tracing::info!("sandbox listening on {}", sb.base_url());
        let raw = RawTargets {
            kota_url: Some(sb.kota_url()),
            kota_key: Some(crate::sandbox::SANDBOX_KOTA_KEY.into()),
            noyo_url: Some(sb.noyo_url()),
            noyo_token_url: Some(sb.noyo_token_url()),
            noyo_client_id: Some(crate::sandbox::SANDBOX_NOYO_CLIENT_ID.into()),
            noyo_client_secret: Some(crate::sandbox::SANDBOX_NOYO_CLIENT_SECRET.into()),
            ic_url: Some(sb.ic_url()),
            ic_token: Some(crate::sandbox::SANDBOX_IC_TOKEN.into()),
        };
        let abs = std::fs::canonicalize(&data).unwrap_or(data);
        let mut t =
            Targets::from_raw(&raw, &only, false).map_err(|e| AppError::Config(e.to_string()))?;
        t.sandbox_identity = Some(format!("sandbox:{}", abs.display()));
        sandbox = Some(sb);
        t
    } else {
        let mut raw = RawTargets::from_env();
        raw.kota_url = args.kota_url.clone().or(raw.kota_url);
        raw.noyo_url = args.noyo_url.clone().or(raw.noyo_url);
        raw.noyo_token_url = args.noyo_token_url.clone().or(raw.noyo_token_url);
        raw.ic_url = args.ic_url.clone().or(raw.ic_url);
        Targets::from_raw(&raw, &only, args.allow_insecure_http)
            .map_err(|e| AppError::Config(e.to_string()))?
    };
    if !(targets.kota.is_some() || targets.noyo.is_some() || targets.ic.is_some()) {
        tracing::warn!("no target is configured (set KOTA_API_URL/KOTA_API_KEY, NOYO_*, IC_* or use --sandbox): every operation will be reported as skipped");
    }

    let path = state_path(&inputs.state, inputs.sandbox);
    let store = open_store(&path)?;
    let pid = std::process::id();
    let host = hostname();
    let started = chrono::Utc::now().to_rfc3339();
    let run_id = {
        let h = host.clone();
        match store
            .call_async(move |c| db::acquire_lock(c, "apply", pid, &h, &started))
            .await?
        {
            Ok(id) => id,
            Err(holder) => {
                let msg = describe_holder(&path, &holder);
                store.close();
                return Err(AppError::Locked(msg));
            }
        }
    };
    let pace = Pace {
        rate,
        burst,
        concurrency,
    };
    let result = locked(&store, run_id, &args, &targets, pace, quiet).await;
    let (outcome, summary, requests) = match &result {
        Ok(end) => (
            match end.code {
                EXIT_OK => "completed",
                EXIT_FAILED => "completed_with_failures",
                EXIT_INTERRUPTED => "interrupted",
                EXIT_INVALID_STRICT => "refused_invalid_input",
                _ => "stopped",
            },
            end.summary.clone(),
            end.requests.clone(),
        ),
        Err(e) => (
            "error",
            serde_json::json!({"error": e.to_string()}).to_string(),
            Vec::new(),
        ),
    };
    let now = chrono::Utc::now().to_rfc3339();
    let release = store
        .call_async(move |c| db::release_lock(c, run_id, outcome, &summary, &requests, &now))
        .await;
    store.close();
    if let Some(sb) = sandbox {
        sb.shutdown().await;
    }
    release?;
    result.map(|end| end.code)
}

/// How a locked run ended, as recorded in the `runs` table.
struct RunEnd {
    code: u8,
    /// JSON: the totals (or why nothing was applied).
    summary: String,
    /// Request figures of the targets that were configured.
    requests: Vec<(&'static str, CounterValues)>,
}

/// Everything done under the run lock.
async fn locked(
    store: &Store,
    run_id: i64,
    args: &ApplyArgs,
    targets: &Targets,
    pace: Pace,
    quiet: bool,
) -> Result<RunEnd, AppError> {
    let inputs = &args.inputs;
    let recorded = store.call_async(|c| db::get_meta(c, "targets")).await?;
    let record = targets
        .check_against(recorded.as_deref())
        .map_err(|e| AppError::Config(e.to_string()))?;
    store
        .call_async(move |c| db::set_meta(c, "targets", &record))
        .await?;

    // The state loads while employers.csv is read beside it.
    let s = store.clone();
    let ers_path = inputs.employers.clone();
    // (apply's store checked the state as it opened it: the verdict is in.)
    let (snap, ers) = tokio::task::spawn_blocking(move || {
        let (snap, ers, verdict) =
            s.snapshot_beside(db::Detail::Nightly, || plan::read_employers(&ers_path));
        (verdict.wait().and(snap), ers)
    })
    .await
    .map_err(|e| AppError::Output(e.to_string()))?;
    let snap = snap?;
    let saved = match &args.plan {
        Some(p) => Some(SavedPlan::load(p).map_err(|e| AppError::Config(e.to_string()))?),
        None => None,
    };
    let ctx = match &saved {
        Some(sp) => {
            let hash = |p: &std::path::Path| {
                file_hash(p)
                    .map_err(|e| AppError::Config(format!("cannot read {}: {e}", p.display())))
            };
            sp.check_inputs(
                &hash(&inputs.employers)?,
                &hash(&inputs.employees)?,
                snap.version,
            )?;
            PlanContext {
                today: sp.as_of,
                offboard_missing: sp.offboard_missing,
            }
        }
        None => PlanContext {
            today: as_of(&inputs.as_of)?,
            offboard_missing: inputs.offboard_missing,
        },
    };
    let (employers, employees) = (inputs.employers.clone(), inputs.employees.clone());
    let s = store.clone();
    let (plan, snap) = tokio::task::spawn_blocking(move || {
        let fetch = |refs| -> plan::Pending { Box::new(s.fetch_employees_later(refs)) };
        let plan = ers.map_err(plan::BuildError::from).and_then(|ers| {
            plan::build_from(
                ers,
                &employers,
                &employees,
                &snap,
                Some(&fetch),
                ctx,
                plan::Keep::Everything,
            )
        });
        (plan, snap)
    })
    .await
    .map_err(|e| AppError::Output(e.to_string()))?;
    let mut plan = plan?;
    if let Some(sp) = &saved {
        sp.check_plan(&plan)?;
    }
    if !plan.rejections.is_empty() {
        for r in plan.rejections.iter().take(20) {
            tracing::warn!("rejected: {r}");
        }
        if plan.rejections.len() > 20 {
            tracing::warn!(
                "... {} rejected rows in all (run plan for the full list)",
                plan.rejections.len()
            );
        }
        if inputs.strict {
            tracing::error!(
                "--strict: {} invalid rows, nothing applied",
                plan.rejections.len()
            );
            return Ok(RunEnd {
                code: EXIT_INVALID_STRICT,
                summary: serde_json::json!({"rejected_rows": plan.rejections.len()}).to_string(),
                requests: Vec::new(),
            });
        }
    }
    // Rows that planned nothing: tomorrow's read skips them while the
    // state stays as it is (`input::digest`).
    let unchanged = std::mem::take(&mut plan.unchanged);
    if !unchanged.is_empty() {
        let (n, version) = (unchanged.len(), plan.state_version);
        let written = store
            .call_async(move |c| db::record_row_digests(c, version, &unchanged))
            .await?;
        tracing::debug!("recorded the row digests of {written} of {n} unchanged employees");
    }
    tracing::info!(
        "applying {} operations (run {run_id})",
        plan.operations.len()
    );
    let operations = std::sync::Arc::new(std::mem::take(&mut plan.operations));
    let input = ApplyInput {
        operations: operations.clone(),
        employers: std::mem::take(&mut plan.employers),
        employees: std::mem::take(&mut plan.employees),
        snapshot: snap,
        today: plan.as_of,
    };
    let opts = ApplyOptions {
        rate_limit: pace.rate,
        burst: pace.burst,
        concurrency: pace.concurrency,
        create_enrolment_intents: args.create_enrolment_intents,
        retry: RetryPolicy::default(),
        quiet,
        progress_every: Duration::from_secs(5),
    };
    let mut sig = signals();
    let result = apply::apply(store, run_id, targets, input, &opts, &mut sig).await?;
    let report = RunReport::build(run_id, &operations, &plan, &result);
    let mut text = Vec::new();
    report
        .render_text(&mut text)
        .map_err(|e| AppError::Output(e.to_string()))?;
    print!("{}", String::from_utf8_lossy(&text));
    if let Some(path) = &args.report {
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| AppError::Output(e.to_string()))?;
        crate::report::write_private(path, &json).map_err(|e| {
            AppError::Output(format!("cannot write report {}: {e}", path.display()))
        })?;
    }
    let summary = serde_json::json!({"totals": report.totals}).to_string();
    let code = match result.stop {
        Stop::Interrupted | Stop::Abandoned => EXIT_INTERRUPTED,
        Stop::Completed if report.totals.failed > 0 => EXIT_FAILED,
        Stop::Completed => EXIT_OK,
    };
    let requests = Target::ALL
        .iter()
        .filter(|t| targets.configured(**t))
        .map(|t| (t.as_str(), result.requests[t.index()]))
        .collect();
    Ok(RunEnd {
        code,
        summary,
        requests,
    })
}
