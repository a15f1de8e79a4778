//! The run report of `apply`: a closing summary table on stdout and, with
//! `--report FILE`, the same as JSON with every failure and ineligibility.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::apply::{ApplyResult, ConnectionStatus, Outcome, Stop};
use crate::plan::{Finding, OpKind, Operation, Plan, Target};
use crate::remote::CounterValues;

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub planned: u64,
    pub done: u64,
    pub adopted: u64,
    pub failed: u64,
    pub skipped: u64,
    pub ineligible: u64,
    pub not_started: u64,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub target: &'static str,
    pub kind: &'static str,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub key: String,
    pub error: String,
    /// The server may have acted; the next run looks before creating.
    pub uncertain: bool,
}

#[derive(Debug, Serialize)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Ineligible {
    pub key: String,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Serialize)]
pub struct Skip {
    pub key: String,
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub schema: &'static str,
    pub run_id: i64,
    pub outcome: &'static str,
    pub as_of: String,
    pub elapsed_ms: u64,
    pub summary: Vec<Row>,
    pub totals: Tally,
    pub requests: BTreeMap<&'static str, CounterValues>,
    pub failures: Vec<Failure>,
    pub ineligible: Vec<Ineligible>,
    pub skipped: Vec<Skip>,
    pub connections: Vec<ConnectionStatus>,
    pub rejected_rows: usize,
    pub findings: Vec<Finding>,
}

impl RunReport {
    pub fn build(
        run_id: i64,
        plan_ops: &[Operation],
        plan: &Plan,
        result: &ApplyResult,
    ) -> RunReport {
        let mut table: BTreeMap<(Target, OpKind), Tally> = BTreeMap::new();
        let mut totals = Tally::default();
        let (mut failures, mut ineligible, mut skipped) = (vec![], vec![], vec![]);
        for (op, outcome) in plan_ops.iter().zip(&result.outcomes) {
            let t = table.entry((op.target(), op.kind)).or_default();
            t.planned += 1;
            totals.planned += 1;
            let bump = |t: &mut Tally, f: fn(&mut Tally) -> &mut u64| *f(t) += 1;
            let field: fn(&mut Tally) -> &mut u64 = match outcome {
                Some(Outcome::Done { adopted: false }) => |t| &mut t.done,
                Some(Outcome::Done { adopted: true }) => |t| &mut t.adopted,
                Some(Outcome::Failed { error, uncertain }) => {
                    failures.push(Failure {
                        key: op.key(),
                        error: error.clone(),
                        uncertain: *uncertain,
                    });
                    |t| &mut t.failed
                }
                Some(Outcome::Skipped { why }) => {
                    skipped.push(Skip {
                        key: op.key(),
                        why: why.clone(),
                    });
                    |t| &mut t.skipped
                }
                Some(Outcome::Ineligible { reasons }) => {
                    ineligible.push(Ineligible {
                        key: op.key(),
                        reasons: reasons
                            .iter()
                            .map(|(c, m)| Reason {
                                code: c.clone(),
                                message: m.clone(),
                            })
                            .collect(),
                    });
                    |t| &mut t.ineligible
                }
                None => |t| &mut t.not_started,
            };
            bump(t, field);
            bump(&mut totals, field);
        }
        RunReport {
            schema: "benefits-sync/apply-report/v1",
            run_id,
            outcome: match result.stop {
                Stop::Completed if failures.is_empty() => "completed",
                Stop::Completed => "completed_with_failures",
                Stop::Interrupted => "interrupted",
                Stop::Abandoned => "abandoned",
            },
            as_of: plan.as_of.to_string(),
            elapsed_ms: result.elapsed.as_millis() as u64,
            summary: table
                .into_iter()
                .map(|((t, k), tally)| Row {
                    target: t.as_str(),
                    kind: k.code(),
                    tally,
                })
                .collect(),
            totals,
            requests: Target::ALL
                .iter()
                .zip(result.requests)
                .map(|(t, c)| (t.as_str(), c))
                .collect(),
            failures,
            ineligible,
            skipped,
            connections: result.connections.clone(),
            rejected_rows: plan.rejections.len(),
            findings: plan.findings.clone(),
        }
    }

    /// The closing table people (and cron mails) read.
    pub fn render_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "benefits-sync apply: run {} {} in {:.1}s",
            self.run_id,
            self.outcome,
            self.elapsed_ms as f64 / 1000.0
        )?;
        writeln!(
            out,
            "  {:<6} {:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10} {:>11}",
            "target",
            "operation",
            "planned",
            "done",
            "adopted",
            "failed",
            "skipped",
            "ineligible",
            "not started"
        )?;
        let line = |out: &mut dyn Write, t: &str, k: &str, x: &Tally| {
            writeln!(
                out,
                "  {:<6} {:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10} {:>11}",
                t,
                k,
                x.planned,
                x.done,
                x.adopted,
                x.failed,
                x.skipped,
                x.ineligible,
                x.not_started
            )
        };
        for r in &self.summary {
            line(out, r.target, r.kind, &r.tally)?;
        }
        line(out, "all", "", &self.totals)?;
        let reqs: Vec<String> = self
            .requests
            .iter()
            .filter(|(_, c)| c.requests > 0)
            .map(|(t, c)| {
                format!(
                    "{t} {} ({} writes, {} retries, {} throttled)",
                    c.requests, c.writes, c.retries, c.throttled
                )
            })
            .collect();
        writeln!(
            out,
            "  requests: {}",
            if reqs.is_empty() {
                "none".to_owned()
            } else {
                reqs.join("; ")
            }
        )?;
        if self.rejected_rows > 0 {
            writeln!(
                out,
                "  rejected rows: {} (see `benefits-sync plan` for each)",
                self.rejected_rows
            )?;
        }
        for f in &self.failures {
            writeln!(
                out,
                "  FAILED {}: {}{}",
                f.key,
                f.error,
                if f.uncertain {
                    " (may have reached the server; the next run checks)"
                } else {
                    ""
                }
            )?;
        }
        for i in &self.ineligible {
            let why: Vec<String> = i
                .reasons
                .iter()
                .map(|r| format!("{}: {}", r.code, r.message))
                .collect();
            writeln!(out, "  INELIGIBLE {}: {}", i.key, why.join("; "))?;
        }
        for s in self.skipped.iter().take(20) {
            writeln!(out, "  skipped {}: {}", s.key, s.why)?;
        }
        if self.skipped.len() > 20 {
            writeln!(
                out,
                "  ... and {} more skipped (see --report)",
                self.skipped.len() - 20
            )?;
        }
        if !self.connections.is_empty() {
            writeln!(out, "  Noyo connections:")?;
            for c in &self.connections {
                writeln!(
                    out,
                    "    {} carrier {}: {}",
                    c.employer_ref, c.carrier_id, c.status
                )?;
            }
        }
        Ok(())
    }
}
