//! Planner tests: the diff rules, dependencies, and determinism.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use proptest::prelude::*;

use super::fingerprint;
use super::planner::{FindingKind, Keep, PlanContext, Planner};
use super::{OpKind, Operation};
use crate::model::*;
use crate::state::{EmployeeSnap, EmployerSnap, MembershipState, Snapshot};

fn d(s: &str) -> NaiveDate {
    parse_date(s).unwrap()
}

fn addr(country: &str, line1: &str) -> Address {
    Address {
        line1: Text::parse(line1).unwrap(),
        line2: None,
        line3: None,
        city: Text::parse("Dublin").unwrap(),
        state: None,
        postal_code: Text::parse("D02 X285").unwrap(),
        country: CountryCode::parse(country).unwrap(),
    }
}

fn employer(r: &str, groups: &[&str], carriers: &[&str]) -> Employer {
    let mut groups: Vec<GroupSpec> = groups
        .iter()
        .map(|g| GroupSpec {
            name: GroupName::parse(g).unwrap(),
            description: None,
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut connections: Vec<ConnectionSpec> = carriers
        .iter()
        .map(|c| ConnectionSpec {
            carrier_id: CarrierId::parse(c).unwrap(),
            carrier_group_id: Text::parse("10000001").unwrap(),
            federal_ein: None,
            broker_federal_ein: None,
            broker_tin: None,
        })
        .collect();
    connections.sort_by_key(|a| a.carrier_id);
    Employer {
        employer_ref: EmployerRef::parse(r).unwrap(),
        legal_name: Text::parse(&format!("{r} Ltd")).unwrap(),
        registration_number: None,
        address: addr("ie", "1 Main St"),
        contact: Contact {
            name: Text::parse("Pat").unwrap(),
            email: Email::parse("pat@example.com").unwrap(),
        },
        earliest_benefits_start_date: None,
        metadata: Metadata::default(),
        groups,
        connections,
        line: 2,
    }
}

fn employee(r: &str, er: &str, groups: &[&str]) -> Employee {
    let mut groups: Vec<GroupName> = groups
        .iter()
        .map(|g| GroupName::parse(g).unwrap())
        .collect();
    groups.sort();
    Employee {
        employee_ref: EmployeeRef::parse(r).unwrap(),
        employer_ref: EmployerRef::parse(er).unwrap(),
        first_name: Text::parse("Ann").unwrap(),
        last_name: Text::parse("Lee").unwrap(),
        email: Email::parse("ann@example.com").unwrap(),
        phone: E164Phone::parse("+353851234567").unwrap(),
        date_of_birth: d("1990-01-01"),
        start_on: d("2024-01-01"),
        sex_at_birth: SexAtBirth::Female,
        national_tax_id: TaxId::parse("1234567T").unwrap(),
        home_address: addr("ie", "2 Side St"),
        nationality: None,
        end_on: None,
        groups,
        metadata: Metadata::default(),
        line: 2,
    }
}

const C1: &str = "8fac0992-933a-4743-8dab-0d606ef2569e";
const C2: &str = "9fac0992-933a-4743-8dab-0d606ef2569e";

fn ctx() -> PlanContext {
    PlanContext {
        today: d("2026-06-01"),
        offboard_missing: false,
    }
}

fn plan(
    snap: &Snapshot,
    employers: &[Employer],
    employees: Vec<Employee>,
    ctx: PlanContext,
) -> super::PlanBody {
    let mut p = Planner::new(ctx, snap, employers, &BTreeSet::new(), Keep::Everything, 0);
    for e in employees {
        p.employee(e);
    }
    p.finish(&BTreeSet::new())
}

fn keys(ops: &[Operation]) -> Vec<String> {
    ops.iter().map(|o| o.key()).collect()
}

/// A snapshot as if `employers` and `employees` had all been synced.
fn synced(employers: &[Employer], employees: &[Employee]) -> Snapshot {
    let mut s = Snapshot {
        fp_seed: 7,
        version: 3,
        ..Snapshot::default()
    };
    for e in employers {
        s.employers.insert(
            e.employer_ref.clone(),
            EmployerSnap {
                kota_id: Some("er_1".into()),
                fp: fingerprint::employer(7, e),
                noyo_group_id: None,
            },
        );
        for g in &e.groups {
            let er = &e.employer_ref;
            let kota = s.kota_groups.entry(er.clone()).or_default();
            kota.insert(g.name.clone(), "gr_1".into());
            let ic = s.ic_groups.entry(er.clone()).or_default();
            ic.insert(g.name.clone(), "ic_1".into());
        }
    }
    for e in employees {
        let employer_no = s.employer_number(&e.employer_ref);
        s.employees.insert(
            e.employee_ref.clone(),
            EmployeeSnap {
                employer_no,
                kota_id: "ee_1".into(),
                fp: fingerprint::employee(7, e),
                offboarded: false,
                row_digest: 0,
                partial: false,
                memberships: e
                    .groups
                    .iter()
                    .map(|g| (g.clone(), MembershipState::Added))
                    .collect(),
            },
        );
    }
    s
}

#[test]
fn cold_state_creates_everything_in_dependency_order() {
    let ers = vec![employer("ACME", &["Health", "Dental"], &[C2, C1])];
    let body = plan(
        &Snapshot::default(),
        &ers,
        vec![employee("E1", "ACME", &["Health"])],
        ctx(),
    );
    assert_eq!(
        keys(&body.operations),
        [
            "employer.create:ACME",
            "group.create:ACME|Dental",
            "ic_group.create:ACME|Dental",
            "group.create:ACME|Health",
            "ic_group.create:ACME|Health",
            &format!("connection.create:ACME|{C1}"),
            &format!("connection.create:ACME|{C2}"),
            "employee.create:E1",
            "membership.add:E1|Health",
        ]
    );
    let ops = &body.operations;
    assert_eq!(ops[1].deps, [0]);
    assert!(ops[2].deps.is_empty(), "IC groups need nothing from Kota");
    assert!(
        ops[5].deps.is_empty(),
        "the first connection creates the Noyo group"
    );
    assert_eq!(
        ops[6].deps,
        [5],
        "later carriers join the group the first made"
    );
    assert_eq!(ops[7].deps, [0]);
    assert_eq!(ops[8].deps, [7, 3]);
    assert!(body
        .employees
        .contains_key(&EmployeeRef::parse("E1").unwrap()));
}

#[test]
fn warm_state_with_no_change_plans_nothing() {
    let ers = vec![employer("ACME", &["Health"], &[])];
    let ees = vec![employee("E1", "ACME", &["Health"])];
    let snap = synced(&ers, &ees);
    let body = plan(&snap, &ers, ees, ctx());
    assert!(body.operations.is_empty(), "{:?}", keys(&body.operations));
    assert!(body.findings.is_empty());
}

#[test]
fn an_address_change_updates_only_the_address() {
    let ers = vec![employer("ACME", &["Health"], &[])];
    let ees = vec![employee("E1", "ACME", &["Health"])];
    let snap = synced(&ers, &ees);
    let mut moved = ees[0].clone();
    moved.home_address.line1 = Text::parse("9 New Rd").unwrap();
    let body = plan(&snap, &ers, vec![moved], ctx());
    assert_eq!(keys(&body.operations), ["employee.update:E1"]);
    assert_eq!(body.operations[0].changes(), ["home_address"]);
}

#[test]
fn a_country_change_is_a_finding_not_an_update() {
    let ers = vec![employer("ACME", &[], &[])];
    let ees = vec![employee("E1", "ACME", &[])];
    let snap = synced(&ers, &ees);
    let mut moved = ees[0].clone();
    moved.home_address = addr("gb", "9 New Rd");
    moved.email = Email::parse("ann.lee@example.com").unwrap();
    let body = plan(&snap, &ers, vec![moved], ctx());
    assert_eq!(keys(&body.operations), ["employee.update:E1"]);
    assert_eq!(body.operations[0].changes(), ["contact"]);
    assert_eq!(body.findings[0].kind, FindingKind::ImmutableChange);
}

#[test]
fn leavers_are_offboarded_and_past_leavers_never_created() {
    let ers = vec![employer("ACME", &["Health"], &[])];
    let ees = vec![employee("E1", "ACME", &["Health"])];
    let snap = synced(&ers, &ees);
    let mut leaving = ees[0].clone();
    leaving.end_on = Some(d("2026-06-30"));
    let mut gone = employee("E2", "ACME", &["Health"]);
    gone.end_on = Some(d("2026-01-01"));
    let body = plan(&snap, &ers, vec![leaving, gone], ctx());
    assert_eq!(keys(&body.operations), ["employee.offboard:E1"]);
    assert_eq!(body.findings[0].kind, FindingKind::LeftBeforeSync);
}

#[test]
fn missing_employees_are_reported_and_offboarded_only_within_the_guard() {
    let ers = vec![employer("ACME", &[], &[])];
    let all: Vec<Employee> = (0..20)
        .map(|i| employee(&format!("E{i:02}"), "ACME", &[]))
        .collect();
    let snap = synced(&ers, &all);
    let present: Vec<Employee> = all[..18].to_vec();
    let body = plan(&snap, &ers, present.clone(), ctx());
    assert!(body.operations.is_empty());
    assert_eq!(
        body.findings
            .iter()
            .filter(|f| f.kind == FindingKind::MissingFromExport)
            .count(),
        2
    );
    let body = plan(
        &snap,
        &ers,
        present,
        PlanContext {
            offboard_missing: true,
            ..ctx()
        },
    );
    assert_eq!(
        keys(&body.operations),
        ["employee.offboard:E18", "employee.offboard:E19"]
    );
    // Three of twenty is over 10%: refused, all of them.
    let body = plan(
        &snap,
        &ers,
        all[..17].to_vec(),
        PlanContext {
            offboard_missing: true,
            ..ctx()
        },
    );
    assert!(body.operations.is_empty());
    assert_eq!(
        body.findings
            .iter()
            .filter(|f| f.kind == FindingKind::OffboardRefused)
            .count(),
        3
    );
    // An empty export never offboards anyone.
    let body = plan(
        &snap,
        &ers,
        vec![],
        PlanContext {
            offboard_missing: true,
            ..ctx()
        },
    );
    assert!(body.operations.is_empty());
}

#[test]
fn duplicated_refs_plan_nothing_and_dependencies_stay_right() {
    let ers = vec![employer("ACME", &["Health"], &[])];
    let ees = vec![
        employee("E1", "ACME", &["Health"]),
        employee("E2", "ACME", &["Health"]),
    ];
    let snap = Snapshot::default();
    let mut p = Planner::new(ctx(), &snap, &ers, &BTreeSet::new(), Keep::Everything, 0);
    for e in ees {
        p.employee(e);
    }
    let dups: BTreeSet<EmployeeRef> = [EmployeeRef::parse("E1").unwrap()].into();
    let body = p.finish(&dups);
    assert_eq!(
        keys(&body.operations),
        [
            "employer.create:ACME",
            "group.create:ACME|Health",
            "ic_group.create:ACME|Health",
            "employee.create:E2",
            "membership.add:E2|Health"
        ]
    );
    assert_eq!(body.operations[4].deps, [3, 1]);
    assert!(!body
        .employees
        .contains_key(&EmployeeRef::parse("E1").unwrap()));
}

#[test]
fn ineligible_memberships_are_checked_again() {
    let ers = vec![employer("ACME", &["Health"], &[])];
    let ees = vec![employee("E1", "ACME", &["Health"])];
    let mut snap = synced(&ers, &ees);
    snap.employees
        .get_mut(&EmployeeRef::parse("E1").unwrap())
        .unwrap()
        .memberships = vec![(
        GroupName::parse("Health").unwrap(),
        MembershipState::ineligible("under_minimum_age".into(), Some(d("2026-05-30"))),
    )]
    .into();
    // Checked two days ago and nothing changed: not again tonight.
    assert!(plan(&snap, &ers, ees.clone(), ctx()).operations.is_empty());
    // A week later, or as soon as the employee's data changes, it is.
    let later = PlanContext {
        today: d("2026-06-08"),
        ..ctx()
    };
    let body = plan(&snap, &ers, ees.clone(), later);
    assert_eq!(keys(&body.operations), ["membership.add:E1|Health"]);
    assert!(body.operations[0]
        .note
        .as_deref()
        .unwrap()
        .contains("under_minimum_age"));
    let mut changed = ees[0].clone();
    changed.email = Email::parse("new@example.com").unwrap();
    let body = plan(&snap, &ers, vec![changed], ctx());
    assert_eq!(
        keys(&body.operations),
        ["employee.update:E1", "membership.add:E1|Health"]
    );
}

#[test]
fn unable_to_connect_is_retried() {
    let ers = vec![employer("ACME", &[], &[C1])];
    let mut snap = synced(&ers, &[]);
    snap.connections
        .entry(EmployerRef::parse("ACME").unwrap())
        .or_default()
        .insert(
            CarrierId::parse(C1).unwrap(),
            crate::state::ConnectionSnap {
                noyo_id: "c1".into(),
                noyo_group_id: "g1".into(),
                fp: fingerprint::connection(7, &ers[0], &ers[0].connections[0]),
                status: "unable_to_connect".into(),
            },
        );
    let body = plan(&snap, &ers, vec![], ctx());
    assert_eq!(
        keys(&body.operations),
        [format!("connection.retry:ACME|{C1}")]
    );
}

proptest! {
    /// Same inputs, same plan: whatever the employees, planning twice (with
    /// the snapshot's hash maps built independently) gives identical output.
    #[test]
    fn planning_is_deterministic(
        n in 0usize..40,
        synced_mask in proptest::collection::vec(any::<bool>(), 40),
        changed_mask in proptest::collection::vec(any::<bool>(), 40),
        offboard in any::<bool>(),
    ) {
        let ers = vec![employer("ACME", &["Health", "Dental"], &[C1]), employer("BETA", &["Health"], &[])];
        let ees: Vec<Employee> = (0..n)
            .map(|i| employee(&format!("E{i}"), if i % 3 == 0 { "BETA" } else { "ACME" }, &["Health"]))
            .collect();
        let old: Vec<Employee> = ees.iter().zip(&synced_mask).filter(|(_, s)| **s).map(|(e, _)| e.clone()).collect();
        let now: Vec<Employee> = ees
            .iter()
            .zip(&changed_mask)
            .map(|(e, c)| {
                let mut e = e.clone();
                if *c {
                    e.email = Email::parse("changed@example.com").unwrap();
                }
                e
            })
            .take(n.saturating_sub(1))
            .collect();
        let ctx = PlanContext { offboard_missing: offboard, ..ctx() };
        let a = plan(&synced(&ers[..1], &old), &ers, now.clone(), ctx.clone());
        let b = plan(&synced(&ers[..1], &old), &ers, now, ctx);
        prop_assert_eq!(&a.operations, &b.operations);
        prop_assert_eq!(&a.findings, &b.findings);
        for (i, op) in a.operations.iter().enumerate() {
            for d in op.deps.iter() {
                prop_assert!((*d as usize) < i, "dependencies come first");
            }
        }
    }
}

/// The state's groups are asked about per employer: a group the file still
/// names plans nothing, a new one is created in Kota and Invisible
/// Collector, and each group the file no longer names is a finding, in name
/// order.
#[test]
fn groups_are_created_kept_or_reported_removed() {
    let before = vec![employer("ACME", &["Vision", "Health", "Dental"], &[])];
    let snap = synced(&before, &[]);
    let now = vec![employer("ACME", &["Health", "Life"], &[])];
    let body = plan(&snap, &now, Vec::new(), ctx());
    let created: Vec<(OpKind, String)> =
        body.operations.iter().map(|o| (o.kind, o.key())).collect();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0].0, OpKind::GroupCreate, "{created:?}");
    assert_eq!(created[1].0, OpKind::IcGroupCreate, "{created:?}");
    assert!(
        created.iter().all(|(_, k)| k.contains("Life")),
        "{created:?}"
    );
    let removed: Vec<(FindingKind, &str)> = body
        .findings
        .iter()
        .map(|f| (f.kind, f.subject.as_str()))
        .collect();
    assert_eq!(
        removed,
        [
            (FindingKind::GroupRemoved, "ACME|Dental"),
            (FindingKind::GroupRemoved, "ACME|Vision")
        ]
    );
}

/// The room asked for is made before the employers' operations, so that
/// they go into it: a list outgrown and freed on the way is still resident
/// at a million-row plan's peak.
#[test]
fn the_employers_operations_go_into_the_room_made_for_the_plan() {
    let ers = vec![
        employer("ACME", &["Health", "Dental"], &[]),
        employer("BETA", &["Health"], &[]),
    ];
    let snap = Snapshot::default();
    let room = 1000;
    let p = Planner::new(ctx(), &snap, &ers, &BTreeSet::new(), Keep::Nothing, room);
    let body = p.finish(&BTreeSet::new());
    assert!(body.operations.len() > 4, "{}", body.operations.len());
    assert_eq!(body.operations.capacity(), room);
}

/// An employer synced before and absent from the export is a finding,
/// one each, in ref order; one whose rows were rejected is not missing,
/// and one the state never created in Kota is not either.
#[test]
fn synced_employers_absent_from_the_export_are_findings() {
    let all = vec![
        employer("ACME", &["Health"], &[]),
        employer("BETA", &["Health"], &[]),
        employer("DELTA", &["Health"], &[]),
        employer("GAMMA", &["Health"], &[]),
        employer("OMEGA", &["Health"], &[]),
    ];
    let mut snap = synced(&all, &[]);
    let never_created = EmployerRef::parse("OMEGA").unwrap();
    snap.employers.get_mut(&never_created).unwrap().kota_id = None;
    let missing = |export: &[Employer], rejected: &[&str]| -> Vec<String> {
        let rejected: BTreeSet<EmployerRef> = rejected
            .iter()
            .map(|r| EmployerRef::parse(r).unwrap())
            .collect();
        let p = Planner::new(ctx(), &snap, export, &rejected, Keep::Everything, 0);
        let body = p.finish(&BTreeSet::new());
        body.findings
            .iter()
            .filter(|f| f.kind == FindingKind::EmployerMissing)
            .map(|f| f.subject.clone())
            .collect()
    };
    assert_eq!(missing(&all, &[]), Vec::<String>::new());
    assert_eq!(missing(&all[..4], &[]), Vec::<String>::new());
    assert_eq!(missing(&all[..1], &["DELTA"]), ["BETA", "GAMMA"]);
    assert_eq!(missing(&all[2..3], &[]), ["ACME", "BETA", "GAMMA"]);
    assert_eq!(
        missing(&[], &["ACME", "BETA", "DELTA", "GAMMA"]),
        Vec::<String>::new()
    );
}

/// A plan row crosses from a checking thread to the planner by value,
/// moved four or five times: a million rows at 480 bytes (the employee
/// inline, needed by apply alone) were a seventh of the reading thread.
#[test]
fn a_plan_row_stays_small() {
    let size = std::mem::size_of::<super::PlanRow>();
    assert!(size <= 160, "{size}");
}
