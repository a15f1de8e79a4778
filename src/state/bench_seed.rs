//! A benchmark aid: record a plan's operations in a state database as if
//! a run had carried every one of them out, without sending anything.
//!
//! Benchmarking `plan` against a warm state (a million employees already
//! synced) needs that state, and building it with a real `apply` means
//! millions of requests. This writes, per operation, exactly the journal
//! row and state effect a successful run records (through the same
//! [`db::journal_finish`]), with made-up remote ids of the right shape.
//!
//! Those ids exist on no server, so a state seeded this way is good for
//! planning only: an `apply` against it would update objects that do not
//! exist. That is why this is a library function for `benches/pipeline.rs`
//! and not a command.

use super::db;
use super::effect::{Effect, JournalStatus};
use super::{StateError, Store};
use crate::plan::{OpKind, Operation, Subject};

/// Operations per transaction: large enough that commits cost nothing next
/// to the inserts, small enough that the store thread's batch stays modest.
const CHUNK: usize = 50_000;

/// A fake remote id: `prefix` and 32 hex digits, unique per operation.
fn fake_id(prefix: &str, n: usize) -> String {
    format!(
        "{prefix}{:032x}",
        n as u128 ^ 0xbe9c_0000_0000_0000_0000_0000_0000_0000
    )
}

/// The effect a successful run of `op` records, with made-up ids. `None`
/// for an operation whose subject has the wrong shape (never made by the
/// planner).
fn effect_of(op: &Operation, n: usize) -> Option<Effect> {
    let noyo_uuid = || {
        let h = fake_id("", n);
        format!(
            "{}-{}-4{}-8{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    };
    Some(match (&op.kind, &op.subject) {
        (OpKind::EmployerCreate | OpKind::EmployerUpdate, Subject::Employer(er)) => {
            Effect::Employer {
                employer_ref: er.clone(),
                kota_id: fake_id("er_", n),
                fp: op.fp.clone(),
            }
        }
        (OpKind::GroupCreate, Subject::Group(er, g)) => Effect::KotaGroup {
            employer_ref: er.clone(),
            name: g.clone(),
            kota_id: fake_id("gr_", n),
        },
        (OpKind::IcGroupCreate, Subject::Group(er, g)) => Effect::IcGroup {
            employer_ref: er.clone(),
            name: g.clone(),
            ic_id: fake_id("", n),
        },
        (OpKind::ConnectionCreate | OpKind::ConnectionRetry, Subject::Connection(er, c)) => {
            Effect::Connection {
                employer_ref: er.clone(),
                carrier_id: *c,
                noyo_id: noyo_uuid(),
                noyo_group_id: noyo_uuid(),
                fp: op.fp.clone(),
                // Settled, as a connection a warm state remembers would be.
                status: "completed".into(),
            }
        }
        (OpKind::EmployeeCreate | OpKind::EmployeeUpdate, Subject::Employee(er, ee)) => {
            Effect::Employee {
                employee_ref: ee.clone(),
                employer_ref: er.clone(),
                kota_id: fake_id("ee_", n),
                fp: op.fp.clone(),
            }
        }
        (OpKind::EmployeeOffboard, Subject::Employee(_, ee)) => Effect::EmployeeOffboarded {
            employee_ref: ee.clone(),
        },
        (OpKind::MembershipAdd, Subject::Membership(_, ee, g)) => Effect::Membership {
            employee_ref: ee.clone(),
            group: g.clone(),
            ineligible: None,
        },
        _ => return None,
    })
}

/// Record every operation of `ops` (planned against this same state, so
/// that their fingerprints use its salt) as done by run `run_id`. Returns
/// the number recorded.
pub fn record_as_synced(
    store: &Store,
    ops: &[Operation],
    run_id: i64,
) -> Result<usize, StateError> {
    let now = chrono::Utc::now().to_rfc3339();
    let mut recorded = 0;
    for (c, chunk) in ops.chunks(CHUNK).enumerate() {
        let rows: Vec<(String, &'static str, Effect)> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, op)| {
                effect_of(op, c * CHUNK + i).map(|e| (op.key(), op.kind.code(), e))
            })
            .collect();
        recorded += rows.len();
        let now = now.clone();
        store.call(move |conn| {
            let tx = conn.transaction()?;
            for (key, kind, effect) in &rows {
                db::journal_finish(
                    &tx,
                    key,
                    kind,
                    JournalStatus::Done,
                    Some(effect),
                    None,
                    run_id,
                    &now,
                )?;
            }
            tx.commit()
        })?;
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{self, PlanContext};

    #[test]
    fn a_seeded_state_plans_nothing_for_the_same_exports() {
        let dir = tempfile::tempdir().unwrap();
        let o = crate::gen::GenOptions {
            employers: 6,
            employees: 150,
            ..Default::default()
        };
        crate::gen::generate(dir.path(), &o).unwrap();
        let (ers, ees) = (
            dir.path().join("employers.csv"),
            dir.path().join("employees.csv"),
        );
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let ctx = PlanContext {
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            offboard_missing: false,
        };
        let snap = store.snapshot().unwrap();
        let cold = plan::build(&ers, &ees, &snap, ctx.clone(), plan::Keep::Fingerprints).unwrap();
        assert!(cold.operations.len() > 150);
        let n = record_as_synced(&store, &cold.operations, 1).unwrap();
        assert_eq!(n, cold.operations.len());
        let warm = plan::build(
            &ers,
            &ees,
            &store.snapshot().unwrap(),
            ctx,
            plan::Keep::Nothing,
        )
        .unwrap();
        assert!(warm.operations.is_empty(), "{:?}", warm.operations.first());
        store.close();
    }
}
