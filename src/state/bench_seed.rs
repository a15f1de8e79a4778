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

    /// What a plan says, for comparing two plans of the same exports.
    fn outcome(p: &plan::Plan) -> String {
        let mut employees: Vec<_> = p.employees.keys().collect();
        employees.sort();
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            p.operations, p.findings, p.rejections, employees
        )
    }

    /// The row-digest fast path (`input::digest`) changes how fast a plan
    /// is made, never what it says: after a second night records digests,
    /// every later export plans exactly as it does against the same state
    /// without them, whatever changed (employees, leavers, hires, an
    /// employer's groups, a duplicated row, a moved employee).
    #[test]
    fn row_digests_change_no_plan() {
        let dir = tempfile::tempdir().unwrap();
        let day = |d: u8, sub: &str| {
            let o = crate::gen::GenOptions {
                employers: 8,
                employees: 400,
                day: d,
                change_rate: 0.1,
                leave_rate: 0.05,
                hire_rate: 0.05,
                ..Default::default()
            };
            let at = dir.path().join(sub);
            crate::gen::generate(&at, &o).unwrap();
            (at.join("employers.csv"), at.join("employees.csv"))
        };
        let (ers1, ees1) = day(1, "day1");
        let (ers2, ees2) = day(2, "day2");
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let ctx = PlanContext {
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            offboard_missing: true,
        };
        let build = |ers: &std::path::Path, ees: &std::path::Path, snap, keep| {
            plan::build(ers, ees, snap, ctx.clone(), keep).unwrap()
        };
        let snap = store.snapshot().unwrap();
        let night1 = build(&ers1, &ees1, &snap, plan::Keep::Fingerprints);
        record_as_synced(&store, &night1.operations, 1).unwrap();
        // Night 2: nothing to do; every synced row's digest is recorded.
        let snap = store.snapshot().unwrap();
        let night2 = build(&ers1, &ees1, &snap, plan::Keep::Everything);
        assert!(night2.operations.is_empty());
        assert_eq!(night2.skipped, 0);
        assert_eq!(night2.unchanged.len(), snap.employees.len());
        let (version, unchanged) = (night2.state_version, night2.unchanged);
        let n = store
            .call(move |c| db::record_row_digests(c, version, &unchanged))
            .unwrap();
        assert_eq!(n, snap.employees.len());
        let with = store.snapshot().unwrap();
        let mut without = with.clone();
        let refs: Vec<_> = with.employees.iter().map(|(k, _)| k.clone()).collect();
        for k in &refs {
            without.employees.get_mut(k).unwrap().row_digest = 0;
        }

        // Day 1 again: every row skipped, nothing more to record.
        let fast = build(&ers1, &ees1, &with, plan::Keep::Everything);
        assert_eq!(fast.skipped, refs.len() as u64);
        assert!(fast.unchanged.is_empty());
        assert_eq!(
            outcome(&fast),
            outcome(&build(&ers1, &ees1, &without, plan::Keep::Everything))
        );

        // Day 2, and day 2 with an employer's group dropped, a row
        // repeated and an employee moved to another employer.
        let employers = std::fs::read_to_string(&ers2).unwrap();
        let employees = std::fs::read_to_string(&ees2).unwrap();
        let dropped_group = {
            let mut lines: Vec<&str> = employers.lines().collect();
            let first_employer = lines[1].split(',').next().unwrap().to_owned();
            let at = lines
                .iter()
                .rposition(|l| l.starts_with(&format!("{first_employer},")))
                .unwrap();
            if at > 1 {
                lines.remove(at);
            }
            lines.join("\n") + "\n"
        };
        let edited_employees = {
            let mut lines: Vec<String> = employees.lines().map(str::to_owned).collect();
            let repeated = lines[3].clone();
            lines.push(repeated);
            let mut moved: Vec<String> = lines[5].split(',').map(str::to_owned).collect();
            moved[1] = lines[300].split(',').nth(1).unwrap().to_owned();
            lines[5] = moved.join(",");
            lines.join("\n") + "\n"
        };
        let variant = dir.path().join("variant");
        std::fs::create_dir_all(&variant).unwrap();
        let (ers3, ees3) = (variant.join("employers.csv"), variant.join("employees.csv"));
        std::fs::write(&ers3, dropped_group).unwrap();
        std::fs::write(&ees3, edited_employees).unwrap();
        for (ers, ees) in [(&ers2, &ees2), (&ers3, &ees3), (&ers1, &ees3)] {
            for keep in [plan::Keep::Everything, plan::Keep::Nothing] {
                let fast = build(ers, ees, &with, keep);
                assert!(fast.skipped > 0, "{ees:?}");
                let slow = build(ers, ees, &without, keep);
                assert_eq!(slow.skipped, 0);
                assert_eq!(outcome(&fast), outcome(&slow), "{ers:?} {ees:?}");
                assert!(!fast.operations.is_empty() && !fast.rejections.is_empty() || ees == &ees2);
            }
        }

        // The same against a planning snapshot, which holds only summaries
        // of digested employees and fetches the whole rows of those whose
        // rows changed, in the snapshot's read transaction.
        // With every employee summarised, then with a few and with half of
        // them loaded whole (their memberships looked up one by one, then
        // scanned).
        let fetch = |refs| -> plan::Pending { Box::new(store.fetch_employees_later(refs)) };
        for whole in [0, 20, 200] {
            let db = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
            db.execute(
                "UPDATE employees SET row_digest = NULL WHERE employee_ref IN \
                 (SELECT employee_ref FROM employees ORDER BY employee_ref LIMIT ?1)",
                [whole],
            )
            .unwrap();
            drop(db);
            let mut without = without.clone();
            let mut with = with.clone();
            for k in refs.iter().take(whole) {
                without.employees.get_mut(k).unwrap().row_digest = 0;
                with.employees.get_mut(k).unwrap().row_digest = 0;
            }
            let (planning, (), verdict) = store.snapshot_beside(db::Detail::Planning, || ());
            verdict.wait().unwrap();
            let planning = planning.unwrap();
            let summaries = planning.employees.values().filter(|e| e.partial).count();
            assert_eq!(summaries, refs.len() - whole);
            for (ers, ees) in [
                (&ers1, &ees1),
                (&ers2, &ees2),
                (&ers3, &ees3),
                (&ers1, &ees3),
            ] {
                for keep in [plan::Keep::Everything, plan::Keep::Nothing] {
                    let employers = plan::read_employers(ers).unwrap();
                    let lazy = plan::build_from(
                        employers,
                        ers,
                        ees,
                        &planning,
                        Some(&fetch),
                        ctx.clone(),
                        keep,
                    )
                    .unwrap();
                    let slow = plan::build(ers, ees, &without, ctx.clone(), keep).unwrap();
                    assert_eq!(outcome(&lazy), outcome(&slow), "{ers:?} {ees:?}");
                    let fast = plan::build(ers, ees, &with, ctx.clone(), keep).unwrap();
                    assert_eq!(lazy.skipped, fast.skipped);
                    assert_eq!(lazy.unchanged, fast.unchanged, "{ees:?}");
                }
            }
        }
        store.close();
    }
}
