//! Runs operations as soon as their dependencies are done: no phase
//! barriers, a bounded number of operations in flight per target, and an
//! orderly stop on Ctrl-C or SIGTERM.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::executor::{Executor, Outcome};
use super::progress::Progress;
use crate::plan::{Operation, Target};

/// How a run of the scheduler ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every operation ran or was skipped.
    Completed,
    /// A first signal: nothing new was started, in-flight ones finished.
    Interrupted,
    /// A second signal: in-flight operations were abandoned (their journal
    /// entries stay `in_flight`, so the next run looks before creating).
    Abandoned,
}

/// Settings of one scheduler run.
pub struct Limits {
    /// Operations in flight per target. Kept above the gate's request
    /// concurrency (an operation spends part of its life journaling, and a
    /// membership sends two requests one after the other) so that a request
    /// slot never waits for the scheduler. It is also what a stop waits
    /// for: on the first signal no new operation starts and at most this
    /// many per target run to completion.
    pub ops_in_flight: usize,
    /// Which targets are configured; the others' operations are skipped.
    pub configured: [bool; 3],
}

/// Run `ops`. Returns each operation's outcome (`None`: never started).
/// `signals` delivers one message per SIGINT/SIGTERM.
pub async fn run(
    exec: Arc<Executor>,
    ops: Arc<Vec<Operation>>,
    limits: Limits,
    progress: &Progress,
    signals: &mut mpsc::UnboundedReceiver<()>,
) -> (Vec<Option<Outcome>>, Stop) {
    let n = ops.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut waiting: Vec<u32> = ops.iter().map(|o| o.deps.len() as u32).collect();
    let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, op) in ops.iter().enumerate() {
        for d in op.deps.iter() {
            dependents[*d as usize].push(i as u32);
        }
    }
    let mut ready: [VecDeque<u32>; 3] = Default::default();
    for (i, op) in ops.iter().enumerate() {
        if op.deps.is_empty() {
            ready[op.target().index()].push_back(i as u32);
        }
    }
    let mut in_flight = [0usize; 3];
    let mut tasks: JoinSet<(u32, Outcome)> = JoinSet::new();
    let mut stop = Stop::Completed;
    // Skips are recorded in batches by this task's loop (cheap, no network).
    let mut skipped: Vec<(u32, String)> = Vec::new();

    loop {
        // Operations of unconfigured targets never start; say so.
        for t in Target::ALL {
            if !limits.configured[t.index()] {
                while let Some(i) = ready[t.index()].pop_front() {
                    skipped.push((i, format!("target not configured ({})", t.as_str())));
                }
            }
        }
        while let Some((i, why)) = skipped.pop() {
            if outcomes[i as usize].is_some() {
                continue;
            }
            let op = &ops[i as usize];
            exec.record_skip(op, &why).await;
            progress.record(op.target(), false);
            outcomes[i as usize] = Some(Outcome::Skipped { why });
            for &d in &dependents[i as usize] {
                if outcomes[d as usize].is_none() {
                    skipped.push((d, format!("needs {} which did not succeed", op.key())));
                }
            }
        }
        if stop == Stop::Completed {
            for t in Target::ALL {
                let q = &mut ready[t.index()];
                while in_flight[t.index()] < limits.ops_in_flight {
                    let Some(i) = q.pop_front() else { break };
                    in_flight[t.index()] += 1;
                    let (exec, ops) = (exec.clone(), ops.clone());
                    tasks.spawn(async move {
                        let outcome = exec.run(&ops[i as usize]).await;
                        (i, outcome)
                    });
                }
            }
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { continue };
                let Ok((i, outcome)) = joined else { continue };
                let op = &ops[i as usize];
                in_flight[op.target().index()] -= 1;
                progress.record(op.target(), outcome.succeeded());
                let ok = matches!(outcome, Outcome::Done { .. });
                if ok {
                    for &d in &dependents[i as usize] {
                        waiting[d as usize] -= 1;
                        if waiting[d as usize] == 0 {
                            ready[ops[d as usize].target().index()].push_back(d);
                        }
                    }
                } else {
                    for &d in &dependents[i as usize] {
                        if outcomes[d as usize].is_none() {
                            skipped.push((d, format!("needs {} which did not succeed", op.key())));
                        }
                    }
                }
                outcomes[i as usize] = Some(outcome);
            }
            Some(()) = signals.recv() => {
                if stop == Stop::Completed {
                    stop = Stop::Interrupted;
                    tracing::warn!("interrupted: starting no new operations; waiting for {} in flight (interrupt again to abandon them)", tasks.len());
                } else {
                    stop = Stop::Abandoned;
                    tracing::warn!("abandoning {} operations in flight; the next run will look them up before creating anything", tasks.len());
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
    (outcomes, stop)
}
