//! Apply: carry out a plan against the configured targets.
//!
//! The scheduler starts each operation once its dependencies are done; the
//! executor journals it, sends it through the target's client and gate, and
//! records the result. After the writes, Noyo connections that are still
//! moving are refreshed, so `status` and the report show where they stand.

pub mod executor;
pub mod ids;
pub mod progress;
pub mod scheduler;
pub mod targets;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::model::{CarrierId, Employee, EmployeeRef, Employer, EmployerRef};
use crate::plan::{Operation, Target};
use crate::remote::{self, CounterValues, Gate, GateConfig, Http, RetryPolicy};
use crate::state::{db, Effect, Snapshot, Store};
pub use executor::{Clients, Executor, Outcome};
pub use scheduler::Stop;
pub use targets::{RawTargets, TargetError, Targets};

/// How fast and how hard to push each target.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Requests per second per target: the gate paces just under it, and
    /// lower if the server answers 429 (see `remote::gate`).
    pub rate_limit: NonZeroU32,
    /// Requests that may go back to back after a quiet spell; 1 paces every
    /// request evenly, which is what window-counting servers want.
    pub burst: NonZeroU32,
    /// Requests in flight per target; it must cover rate x latency for the
    /// rate to be reached (`GateConfig::default_concurrency`).
    pub concurrency: usize,
    pub create_enrolment_intents: bool,
    pub retry: RetryPolicy,
    /// No progress output at all.
    pub quiet: bool,
    /// Period of the progress log lines when not on a terminal.
    pub progress_every: Duration,
}

/// A plan's operations and the data they need.
pub struct ApplyInput {
    /// Shared with the caller, which reports on the same list afterwards.
    pub operations: Arc<Vec<Operation>>,
    pub employers: Vec<Employer>,
    pub employees: HashMap<EmployeeRef, Employee>,
    pub snapshot: Snapshot,
    pub today: NaiveDate,
}

/// A Noyo connection's status after the run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConnectionStatus {
    pub employer_ref: String,
    pub carrier_id: String,
    pub status: String,
}

/// What happened.
pub struct ApplyResult {
    pub outcomes: Vec<Option<Outcome>>,
    pub stop: Stop,
    /// Requests per target (`Target::ALL` order).
    pub requests: [CounterValues; 3],
    pub connections: Vec<ConnectionStatus>,
    pub elapsed: Duration,
}

fn build_clients(targets: &Targets, opts: &ApplyOptions) -> Clients {
    let client = remote::http::client();
    let gate = || {
        Arc::new(Gate::new(GateConfig {
            rate: opts.rate_limit,
            burst: opts.burst,
            concurrency: opts.concurrency,
        }))
    };
    Clients {
        kota: targets.kota.as_ref().map(|k| {
            let http = Http::new(
                client.clone(),
                "kota",
                gate(),
                opts.retry,
                remote::kota::parse_error,
            );
            remote::kota::Kota::new(http, &k.url, &k.api_key)
        }),
        noyo: targets.noyo.as_ref().map(|n| {
            let http = Http::new(
                client.clone(),
                "noyo",
                gate(),
                opts.retry,
                remote::noyo::parse_error,
            );
            remote::noyo::Noyo::new(http, &n.url, &n.token_url, &n.client_id, &n.client_secret)
        }),
        ic: targets.ic.as_ref().map(|i| {
            let http = Http::new(
                client.clone(),
                "ic",
                gate(),
                opts.retry,
                remote::ic::parse_error,
            );
            remote::ic::Ic::new(http, &i.url, &i.token)
        }),
    }
}

/// Apply `input` as run `run_id` (whose lock the caller holds).
pub async fn apply(
    store: &Store,
    run_id: i64,
    targets: &Targets,
    input: ApplyInput,
    opts: &ApplyOptions,
    signals: &mut mpsc::UnboundedReceiver<()>,
) -> Result<ApplyResult, crate::state::StateError> {
    let started = std::time::Instant::now();
    let uncertain = store.uncertain_ops().await?;
    let (ids, summarised) = ids::Ids::from_snapshot(&input.snapshot, &input.operations);
    if !summarised.is_empty() {
        let known = store
            .call_async(move |c| db::kota_ids(c, &summarised))
            .await?;
        for (ee, id) in known {
            ids.set_employee(&ee, &id);
        }
    }
    let exec = Arc::new(Executor {
        clients: build_clients(targets, opts),
        store: store.clone(),
        run_id,
        ids,
        employers: input
            .employers
            .into_iter()
            .map(|e| (e.employer_ref.clone(), e))
            .collect(),
        employees: input.employees,
        uncertain,
        idem_seed: input.snapshot.fp_seed,
        create_enrolment_intents: opts.create_enrolment_intents,
        today: input.today,
    });
    drop(input.snapshot);
    let mut totals = [0u64; 3];
    for op in input.operations.iter() {
        totals[op.target().index()] += 1;
    }
    let progress = progress::Progress::start(totals, opts.quiet, opts.progress_every);
    let limits = scheduler::Limits {
        ops_in_flight: opts.concurrency * 2 + 4,
        configured: [
            targets.configured(Target::Kota),
            targets.configured(Target::Noyo),
            targets.configured(Target::Ic),
        ],
    };
    let ops = input.operations;
    let (outcomes, stop) = scheduler::run(exec.clone(), ops, limits, &progress, signals).await;
    progress.finish();
    if stop == Stop::Completed {
        refresh_connections(&exec).await;
    }
    let connections = store
        .call_async(|c| db::connections(c))
        .await?
        .into_iter()
        .map(|r| ConnectionStatus {
            employer_ref: r.employer_ref,
            carrier_id: r.carrier_id,
            status: r.status,
        })
        .collect();
    let https = [
        exec.clients.kota.as_ref().map(|k| &k.http),
        exec.clients.noyo.as_ref().map(|n| &n.http),
        exec.clients.ic.as_ref().map(|i| &i.http),
    ];
    for http in https.iter().flatten() {
        let gate = &http.gate;
        if gate.cuts() > 0 {
            tracing::warn!(
                "{} answered 429 and the run slowed down to {:.1} requests/s (from {:.1}); if that is its limit, pass --rate-limit {}",
                http.target,
                gate.rate(),
                gate.max_rate(),
                (gate.rate() / remote::gate::HEADROOM).floor().max(1.0)
            );
        }
    }
    let counters = |h: Option<&Http>| h.map(|h| h.counters.snapshot()).unwrap_or_default();
    let requests = [
        counters(exec.clients.kota.as_ref().map(|k| &k.http)),
        counters(exec.clients.noyo.as_ref().map(|n| &n.http)),
        counters(exec.clients.ic.as_ref().map(|i| &i.http)),
    ];
    Ok(ApplyResult {
        outcomes,
        stop,
        requests,
        connections,
        elapsed: started.elapsed(),
    })
}

/// Ask Noyo where each still-moving connection stands, and record changes.
/// Settled ones (completed, action_required, unable_to_connect) cost nothing,
/// so a nightly run with nothing to do sends no request; the others are
/// looked up [`remote::noyo::IDS_PER_LIST`] at a time.
async fn refresh_connections(exec: &Executor) {
    let Some(noyo) = exec.clients.noyo.as_ref() else {
        return;
    };
    let Ok(rows) = exec.store.call_async(|c| db::connections(c)).await else {
        return;
    };
    let moving: Vec<db::ConnectionRow> = rows
        .into_iter()
        .filter(|r| !remote::noyo::is_settled(&r.status))
        .collect();
    if moving.is_empty() {
        return;
    }
    let ids: Vec<&str> = moving.iter().map(|r| r.noyo_id.as_str()).collect();
    let found = match noyo.get_many(&ids).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                "could not refresh the status of {} Noyo connections: {e}",
                moving.len()
            );
            return;
        }
    };
    let status: HashMap<&str, &str> = found
        .iter()
        .map(|c| (c.id.as_str(), c.status.as_str()))
        .collect();
    let mut changed = Vec::new();
    for row in &moving {
        let Some(&now_status) = status.get(row.noyo_id.as_str()) else {
            tracing::warn!(
                "Noyo did not list connection {}|{}",
                row.employer_ref,
                row.carrier_id
            );
            continue;
        };
        if now_status == row.status {
            continue;
        }
        let (Ok(er), Ok(c)) = (
            EmployerRef::parse(&row.employer_ref),
            CarrierId::parse(&row.carrier_id),
        ) else {
            continue;
        };
        changed.push(Effect::ConnectionStatus {
            employer_ref: er,
            carrier_id: c,
            status: now_status.to_owned(),
        });
    }
    if changed.is_empty() {
        return;
    }
    // One transaction for all of them, and no journal row: a refresh is
    // not an operation, only a change seen in Noyo.
    let written = exec
        .store
        .write(move |tx| {
            changed
                .iter()
                .try_for_each(|effect| db::record_effect(tx, effect))
        })
        .await;
    if let Err(e) = written {
        tracing::warn!("could not record refreshed Noyo statuses: {e}");
    }
}
