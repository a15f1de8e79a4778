//! The diff: desired objects (from the exports) against remembered ones
//! (the state snapshot), giving operations and findings.
//!
//! Planning is a pure function of the validated exports, the snapshot and
//! the [`PlanContext`]: no clock, no network, no randomness. Employer-level
//! operations come first, sorted by employer ref; employee-level operations
//! follow in the order of the employees file; operations derived from the
//! state alone (missing employees) come last, sorted. So the same inputs give
//! the same plan, byte for byte.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::fingerprint::{
    self, EMPLOYEE_FIXED, EMPLOYEE_SECTIONS, EMPLOYER_COUNTRY, EMPLOYER_SECTIONS, HOME_ADDRESS,
    LEGAL_ADDRESS,
};
use super::op::{Changes, Deps, OpKind, Operation, Subject};
use crate::model::{Employee, EmployeeRef, Employer, EmployerRef, GroupName, GroupSet};
use crate::state::{
    Connections, EmployeeSnap, EmployerSnap, Groups, MembershipState, Sections, Snapshot,
};

/// The inputs of planning besides the exports and the state.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The day the plan is for: leavers with an `end_on` before it who were
    /// never synced are not created, and missing employees are offboarded on it.
    pub today: NaiveDate,
    /// Offboard employees that are in the state but missing from the export.
    pub offboard_missing: bool,
}

/// What a plan keeps besides each operation's kind, subject and order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Fingerprints and the employee records operations need: apply.
    Everything,
    /// Fingerprints, without employee records: a saved plan names each
    /// operation's fingerprint.
    Fingerprints,
    /// Neither: a report shows neither, and a first million-employee plan
    /// would otherwise hash and hold a million fingerprints nobody reads
    /// (new employees' fingerprints are left empty; changed ones are still
    /// computed, to find what changed).
    Nothing,
}

impl Keep {
    pub fn payloads(self) -> bool {
        self == Keep::Everything
    }
    pub fn fingerprints(self) -> bool {
        self != Keep::Nothing
    }
}

/// Something the plan did not turn into an operation but a person should
/// know about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// Natural key(s) it is about, e.g. `E1001` or `ACME|Health`.
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// In the state, absent from the export, not offboarded.
    MissingFromExport,
    /// `--offboard-missing` refused by a guard.
    OffboardRefused,
    /// A value changed that the vendor cannot change by update.
    ImmutableChange,
    /// A Noyo connection's details changed after it was created.
    ConnectionChanged,
    /// A group left the employers export; Kota and IC groups are kept.
    GroupRemoved,
    /// An employee left a group in payroll; Kota has no removal to call.
    MembershipRemoved,
    /// An employer left the employers export; it is not offboarded.
    EmployerMissing,
    /// A leaver whose leaving date passed before they were ever synced.
    LeftBeforeSync,
    /// Offboarded in Kota, but the export shows no leaving date.
    OffboardedButPresent,
}

impl FindingKind {
    pub fn code(self) -> &'static str {
        match self {
            FindingKind::MissingFromExport => "missing_from_export",
            FindingKind::OffboardRefused => "offboard_refused",
            FindingKind::ImmutableChange => "immutable_change",
            FindingKind::ConnectionChanged => "connection_changed",
            FindingKind::GroupRemoved => "group_removed",
            FindingKind::MembershipRemoved => "membership_removed",
            FindingKind::EmployerMissing => "employer_missing",
            FindingKind::LeftBeforeSync => "left_before_sync",
            FindingKind::OffboardedButPresent => "offboarded_but_present",
        }
    }
}

/// What planning produces besides what input validation already said.
#[derive(Debug, Default)]
pub struct PlanBody {
    pub operations: Vec<Operation>,
    pub findings: Vec<Finding>,
    /// The employees that operations need the data of (only when asked
    /// for: `plan` keeps none, so a million-row plan stays small).
    pub employees: HashMap<EmployeeRef, Employee>,
    /// Synced employees whose rows planned nothing, with the rows' digests,
    /// for apply to record (see `input::digest`); only when the plan keeps
    /// payloads, and only where the state does not hold that digest yet.
    pub unchanged: Vec<(EmployeeRef, u64)>,
    /// Rows the reader skipped as unchanged since the last apply.
    pub skipped: u64,
}

/// What planning takes of a valid employee row.
pub struct PlanRow {
    pub employee_ref: EmployeeRef,
    /// The employee's position in the snapshot's employees, if synced.
    pub synced: Option<u32>,
    /// The row's digest (`input::digest`), when the plan keeps payloads;
    /// 0 otherwise.
    pub digest: u64,
    /// Groups of the employee's employer, by position in its groups.
    pub groups: GroupSet,
    pub start_on: NaiveDate,
    pub end_on: Option<NaiveDate>,
    /// The employee's fingerprint, when [`RowNeeds::fingerprints`].
    pub fp: Option<Sections>,
    /// The whole employee, when [`RowNeeds::payloads`] (apply).
    ///
    /// Boxed: a row is moved four or five times between the checking
    /// thread and the planner, and the whole employee inline made every
    /// row 480 bytes, a plan without payloads included (moving them was
    /// a tenth of the reading thread, cold).
    pub payload: Option<Box<Employee>>,
    /// The employee's whole state row, when the snapshot holds only a
    /// summary of it (`EmployeeSnap::partial`).
    pub old: Option<EmployeeSnap>,
}

/// What the rows handed to a [`Planner`] must carry: fingerprints when
/// the plan keeps them or the state has employees to compare with, whole
/// employees when the plan keeps payloads.
#[derive(Debug, Clone, Copy)]
pub struct RowNeeds {
    /// The state's fingerprint seed.
    pub seed: u64,
    pub fingerprints: bool,
    pub payloads: bool,
}

impl RowNeeds {
    /// What a planner against `snap` keeping `keep` needs of each row.
    pub fn of(snap: &Snapshot, keep: Keep) -> RowNeeds {
        RowNeeds {
            seed: snap.fp_seed,
            // A synced employee's fingerprint is compared with the state's.
            fingerprints: keep.fingerprints() || !snap.employees.is_empty(),
            payloads: keep.payloads(),
        }
    }
}

/// Builds a plan from the employers up front and the employees as they
/// stream in.
pub struct Planner<'a> {
    ctx: PlanContext,
    snap: &'a Snapshot,
    keep: Keep,
    body: PlanBody,
    /// The export's employers, sorted by ref; the planner names them by
    /// position, so the per-employee lookups below are array reads, not
    /// hash probes through scattered keys (a third of the planning thread).
    employers: &'a [Employer],
    /// Index of the create operation of each new employer, by employer
    /// position; [`NO_OP`] for employers that exist.
    employer_create: Vec<u32>,
    /// Index of the create operation of each new Kota group, at
    /// `group_base[employer] + position in employer.groups`; [`NO_OP`]
    /// for groups that exist.
    group_create: Vec<u32>,
    /// Where each employer's groups start in `group_create`.
    group_base: Vec<u32>,
    /// The employers' refs by position, copied here one after another
    /// ([`EmployerRef::pinned_copy`]): every operation of an employee
    /// names its employer, and reaching the export's own refs, scattered
    /// among the employers' other fields, missed the cache twice a row
    /// (half of [`Planner::row`] on a cold plan).
    employer_refs: Vec<EmployerRef>,
    /// The employers' group names at `group_base[employer] + position in
    /// employer.groups`: each membership names its group. Not copied:
    /// `input::read_employers` shares one pinned copy of each distinct
    /// name, which stays cached.
    group_names: Vec<GroupName>,
    /// The synced employees the export mentions, valid or rejected (the
    /// rest are missing): a bit per snapshot row, by position.
    seen: Vec<u64>,
    valid_employees: u64,
}

/// What the state holds of one of the export's employers, looked up for
/// all of them before any is planned (see [`Planner::new`]).
struct Held<'s> {
    employer: Option<&'s EmployerSnap>,
    kota_groups: Option<&'s Groups>,
    ic_groups: Option<&'s Groups>,
    connections: Option<&'s Connections>,
}

impl<'s> Held<'s> {
    fn of(snap: &'s Snapshot, e: &Employer) -> Held<'s> {
        let er = &e.employer_ref;
        Held {
            employer: snap.employers.get(er),
            kota_groups: snap.kota_groups.get(er),
            ic_groups: snap.ic_groups.get(er),
            connections: snap.connections.get(er),
        }
    }
}

/// "No operation" in the planner's per-employer and per-group arrays.
const NO_OP: u32 = u32::MAX;

fn op_index(i: u32) -> Option<u32> {
    (i != NO_OP).then_some(i)
}

fn subject_str(er: &EmployerRef, g: &GroupName) -> String {
    format!("{er}|{g}")
}

impl<'a> Planner<'a> {
    /// Plan the employer-level operations. `employers` must be sorted by
    /// ref (as `input::read_employers` returns them); `rejected` names the
    /// employers whose rows were refused (left alone, not "missing").
    ///
    /// `room`: about how many operations the whole plan will hold. A
    /// million-row plan's list is hundreds of megabytes: growing it by
    /// doubling copied all of it each time (a tenth of the plan's time),
    /// and made room only after the employers' operations, it left their
    /// outgrown lists, tens of megabytes, freed but still resident at the
    /// plan's peak.
    pub fn new(
        ctx: PlanContext,
        snap: &'a Snapshot,
        employers: &'a [Employer],
        rejected: &BTreeSet<EmployerRef>,
        keep: Keep,
        room: usize,
    ) -> Planner<'a> {
        let mut p = Planner {
            ctx,
            snap,
            keep,
            body: PlanBody {
                operations: Vec::with_capacity(room),
                ..PlanBody::default()
            },
            employers,
            employer_create: vec![NO_OP; employers.len()],
            group_create: Vec::new(),
            group_base: Vec::with_capacity(employers.len()),
            employer_refs: Vec::with_capacity(employers.len()),
            group_names: Vec::new(),
            seen: vec![0; snap.employees.len().div_ceil(64)],
            valid_employees: 0,
        };
        // Every lookup of the state for all the employers first, in a loop
        // that does nothing else: each is a miss or two in a 50,000-entry
        // map, and there the core overlaps the misses of several
        // employers, where in the planning of each they came one by one
        // (the state's employers were half of a warm plan's planner).
        let held: Vec<Held<'a>> = employers.iter().map(|e| Held::of(snap, e)).collect();
        let mut synced_found = 0;
        for (i, (e, held)) in employers.iter().zip(&held).enumerate() {
            synced_found += usize::from(held.employer.is_some_and(|s| s.kota_id.is_some()));
            p.plan_employer(i, e, held);
        }
        drop(held);
        // Missing employers: none when every synced employer of the state
        // was found above (most nights), which needs no set of the
        // export's refs.
        let synced = snap
            .employers
            .values()
            .filter(|v| v.kota_id.is_some())
            .count();
        let mut missing: Vec<&EmployerRef> = Vec::new();
        if synced_found < synced {
            let present: HashSet<&EmployerRef> = employers
                .iter()
                .map(|e| &e.employer_ref)
                .chain(rejected.iter())
                .collect();
            missing.extend(
                snap.employers
                    .iter()
                    .filter(|(k, v)| v.kota_id.is_some() && !present.contains(k))
                    .map(|(k, _)| k),
            );
        }
        missing.sort();
        for er in missing {
            p.body.findings.push(Finding {
                kind: FindingKind::EmployerMissing,
                subject: er.to_string(),
                message: "synced before but absent from employers.csv; left as it is (employers are never offboarded automatically)".into(),
            });
        }
        p
    }

    fn push(&mut self, op: Operation) -> u32 {
        self.body.operations.push(op);
        (self.body.operations.len() - 1) as u32
    }

    fn plan_employer(&mut self, at: usize, e: &'a Employer, held: &Held<'a>) {
        let seed = self.snap.fp_seed;
        let er = &e.employer_ref;
        let fp = fingerprint::employer(seed, e);
        let synced = held.employer;
        match synced.filter(|s| s.kota_id.is_some()) {
            None => {
                let i = self.push(Operation {
                    kind: OpKind::EmployerCreate,
                    subject: Subject::Employer(er.clone()),
                    fp,
                    changes: Changes::NONE,
                    deps: Deps::NONE,
                    note: None,
                });
                self.employer_create[at] = i;
            }
            Some(old) => {
                let mut record = fp.clone();
                let mut changes = fingerprint::changed(&EMPLOYER_SECTIONS, &old.fp, &fp);
                if old.fp.0.get(EMPLOYER_COUNTRY) != fp.0.get(EMPLOYER_COUNTRY)
                    && old.fp.0.len() == fp.0.len()
                {
                    // Kota updates addresses without their country: keep the
                    // old address (and its fingerprint) and say so.
                    changes = changes.without(LEGAL_ADDRESS);
                    record.0[LEGAL_ADDRESS] = old.fp.0[LEGAL_ADDRESS];
                    record.0[EMPLOYER_COUNTRY] = old.fp.0[EMPLOYER_COUNTRY];
                    self.body.findings.push(Finding {
                        kind: FindingKind::ImmutableChange,
                        subject: er.to_string(),
                        message: "the employer's country changed; Kota cannot change an address's country by update, so the address was not updated (contact Kota to move the employer)".into(),
                    });
                }
                if !changes.is_empty() {
                    self.push(Operation {
                        kind: OpKind::EmployerUpdate,
                        subject: Subject::Employer(er.clone()),
                        fp: record,
                        changes,
                        deps: Deps::NONE,
                        note: None,
                    });
                }
            }
        }
        let employer_dep = Deps::of(op_index(self.employer_create[at]));
        self.group_base.push(self.group_create.len() as u32);
        self.employer_refs.push(er.pinned_copy());
        let (kota, ic) = (held.kota_groups, held.ic_groups);
        for g in &e.groups {
            self.group_names.push(g.name.clone());
            let name = g.name.as_str();
            let mut create = NO_OP;
            if kota.and_then(|k| k.get(name)).is_none() {
                create = self.push(Operation {
                    kind: OpKind::GroupCreate,
                    subject: Subject::Group(er.clone(), g.name.clone()),
                    fp: Sections::default(),
                    changes: Changes::NONE,
                    deps: employer_dep,
                    note: None,
                });
            }
            self.group_create.push(create);
            if ic.and_then(|k| k.get(name)).is_none() {
                self.push(Operation {
                    kind: OpKind::IcGroupCreate,
                    subject: Subject::Group(er.clone(), g.name.clone()),
                    fp: Sections::default(),
                    changes: Changes::NONE,
                    deps: Deps::NONE,
                    note: None,
                });
            }
        }
        // In name order, as the state's groups are.
        let removed = kota
            .into_iter()
            .flat_map(Groups::iter)
            .map(|(n, _)| n)
            .filter(|n| e.group(n).is_none());
        for n in removed {
            self.body.findings.push(Finding {
                kind: FindingKind::GroupRemoved,
                subject: subject_str(er, n),
                message: "group no longer in employers.csv; the Kota and Invisible Collector groups are kept (archive them in Kota if intended)".into(),
            });
        }
        self.plan_connections(e, held);
    }

    /// `held`: what the state holds of the employer.
    fn plan_connections(&mut self, e: &'a Employer, held: &Held<'a>) {
        let seed = self.snap.fp_seed;
        let er = &e.employer_ref;
        // The employer's Noyo group exists once any connection was made.
        let mut group_known = held
            .employer
            .and_then(|s| s.noyo_group_id.as_ref())
            .is_some();
        let mut group_creator: Option<u32> = None;
        let synced = held.connections;
        for c in &e.connections {
            let fp = fingerprint::connection(seed, e, c);
            match synced.and_then(|s| s.get(&c.carrier_id)) {
                None => {
                    let deps = Deps::of(group_creator);
                    let note = if group_known || group_creator.is_some() {
                        "adds a carrier to the employer's Noyo group"
                    } else {
                        "creates the employer's Noyo group"
                    };
                    let i = self.push(Operation {
                        kind: OpKind::ConnectionCreate,
                        subject: Subject::Connection(er.clone(), c.carrier_id),
                        fp,
                        changes: Changes::NONE,
                        deps,
                        note: Some(note.into()),
                    });
                    if !group_known && group_creator.is_none() {
                        group_creator = Some(i);
                    }
                }
                Some(old) => {
                    group_known = true;
                    if old.status == "unable_to_connect" {
                        self.push(Operation {
                            kind: OpKind::ConnectionRetry,
                            subject: Subject::Connection(er.clone(), c.carrier_id),
                            fp,
                            changes: Changes::NONE,
                            deps: Deps::NONE,
                            note: Some("Noyo reported unable_to_connect".into()),
                        });
                    } else if old.fp != fp {
                        self.body.findings.push(Finding {
                            kind: FindingKind::ConnectionChanged,
                            subject: format!("{er}|{}", c.carrier_id),
                            message: format!(
                                "connection details changed after it was created (status {}); Noyo has no update for a connection, so nothing is sent unless it becomes unable_to_connect",
                                old.status
                            ),
                        });
                    }
                }
            }
        }
    }

    /// Note an employee ref that the export has on a rejected row: it is
    /// not "missing", and nothing is planned for it.
    pub fn rejected_employee(&mut self, key: &str) {
        self.note_seen(key);
    }

    fn note_seen(&mut self, key: &str) {
        if let Some(i) = self.snap.employees.position(key) {
            self.mark_seen(i);
        }
    }

    fn mark_seen(&mut self, position: u32) {
        self.seen[position as usize / 64] |= 1 << (position % 64);
    }

    fn was_seen(&self, position: usize) -> bool {
        self.seen[position / 64] & (1 << (position % 64)) != 0
    }

    /// Plan one valid employee (its employer is valid: input checked it).
    pub fn employee(&mut self, e: Employee) {
        // `employers` is sorted by ref.
        let at = self
            .employers
            .binary_search_by(|x| x.employer_ref.cmp(&e.employer_ref))
            .ok()
            .map(|i| i as u32);
        let fp = Some(fingerprint::employee(self.snap.fp_seed, &e));
        let mut groups = GroupSet::default();
        if let Some(employer) = at.map(|i| &self.employers[i as usize]) {
            for g in &e.groups {
                if let Some(p) = employer.group_position(g.as_str()) {
                    groups.insert(p);
                }
            }
        }
        let r = PlanRow {
            synced: self.snap.employees.position(&e.employee_ref),
            digest: 0,
            old: None,
            employee_ref: e.employee_ref.clone(),
            groups,
            start_on: e.start_on,
            end_on: e.end_on,
            fp,
            payload: None,
        };
        let payload = self.keep.payloads().then(|| Box::new(e));
        self.row(at, PlanRow { payload, ..r });
    }

    /// Start fetching the slots [`Planner::row`] reads for the employer
    /// at `at`: its shared ref, its create operation, and where its
    /// groups start.
    pub fn prefetch_slots(&self, at: u32) {
        let at = at as usize;
        if let Some(r) = self.employer_refs.get(at) {
            crate::prefetch::prefetch(r);
        }
        if let Some(c) = self.employer_create.get(at) {
            crate::prefetch::prefetch(c);
        }
        if let Some(g) = self.group_base.get(at) {
            crate::prefetch::prefetch(g);
        }
    }

    /// Start fetching what those slots point to (best once
    /// [`Planner::prefetch_slots`] has brought them in): the ref's
    /// text and count, and the employer's group names and their create
    /// operations.
    pub fn prefetch_refs(&self, at: u32) {
        let at = at as usize;
        if let Some(r) = self.employer_refs.get(at) {
            crate::prefetch::prefetch(r.as_str());
        }
        if let Some(&base) = self.group_base.get(at) {
            if let Some(names) = self.group_names.get(base as usize) {
                crate::prefetch::prefetch(names);
            }
            if let Some(creates) = self.group_create.get(base as usize) {
                crate::prefetch::prefetch(creates);
            }
        }
    }

    /// Plan one valid employee row, given the position of its employer in
    /// the employers slice (`input::EmployeeRecord::employer`), which
    /// spares a lookup by ref. The row carries what [`RowNeeds::of`]
    /// says.
    pub fn row(&mut self, employer: Option<u32>, mut r: PlanRow) {
        self.valid_employees += 1;
        let Some(at) = employer.map(|i| i as usize) else {
            return;
        };
        let employer = &self.employers[at];
        let er = &self.employer_refs[at].clone();
        let first = self.body.operations.len() as u32;
        let findings = self.body.findings.len();
        // `snap` outlives `self`'s borrows.
        let snap = self.snap;
        let fetched = r.old.take();
        let synced = match r.synced {
            Some(i) => {
                self.mark_seen(i);
                let summary = snap.employees.at(i).1;
                Some(match &fetched {
                    Some(whole) => whole,
                    None => {
                        assert!(
                            !summary.partial,
                            "a summarised employee's row comes with its whole state row"
                        );
                        summary
                    }
                })
            }
            None => None,
        };
        let fp = if synced.is_some() || self.keep.fingerprints() {
            r.fp.expect("a row the plan compares or keeps carries its fingerprint (RowNeeds)")
        } else {
            Sections::default()
        };
        let changed = synced.is_some_and(|o| o.fp != fp);
        let subject = Subject::Employee(er.clone(), r.employee_ref.clone());
        let mut create: Option<u32> = None;
        let mut leaving_or_left = r.end_on.is_some();
        match synced {
            None => {
                if let Some(end) = r.end_on.filter(|d| *d < self.ctx.today) {
                    self.body.findings.push(Finding {
                        kind: FindingKind::LeftBeforeSync,
                        subject: r.employee_ref.to_string(),
                        message: format!("left on {end}, before ever being synced; not created"),
                    });
                    return;
                }
                let deps = Deps::of(op_index(self.employer_create[at]));
                create = Some(self.push(Operation {
                    kind: OpKind::EmployeeCreate,
                    subject: subject.clone(),
                    fp,
                    changes: Changes::NONE,
                    deps,
                    note: None,
                }));
            }
            Some(old) => {
                let was = snap.employer_of(old);
                if was != er {
                    self.body.findings.push(Finding {
                        kind: FindingKind::ImmutableChange,
                        subject: r.employee_ref.to_string(),
                        message: format!(
                            "moved from employer {was} to {er}; Kota cannot move an employee between employers: offboard and re-hire under a new employee_ref"
                        ),
                    });
                    return;
                }
                leaving_or_left |= old.offboarded;
                if old.offboarded && r.end_on.is_none() {
                    self.body.findings.push(Finding {
                        kind: FindingKind::OffboardedButPresent,
                        subject: r.employee_ref.to_string(),
                        message: "offboarded in Kota, but the export has no end_on; cancel the offboarding in Kota if this is a re-hire".into(),
                    });
                }
                let mut record = fp.clone();
                let mut changes = fingerprint::changed(&EMPLOYEE_SECTIONS, &old.fp, &fp);
                if old.fp.0.len() == fp.0.len() && old.fp.0[EMPLOYEE_FIXED] != fp.0[EMPLOYEE_FIXED]
                {
                    // Date of birth, sex at birth and address country cannot
                    // be updated in Kota. The address is left as it was when
                    // the country moved; the finding repeats until resolved.
                    changes = changes.without(HOME_ADDRESS);
                    record.0[HOME_ADDRESS] = old.fp.0[HOME_ADDRESS];
                    record.0[EMPLOYEE_FIXED] = old.fp.0[EMPLOYEE_FIXED];
                    self.body.findings.push(Finding {
                        kind: FindingKind::ImmutableChange,
                        subject: r.employee_ref.to_string(),
                        message: "date of birth, sex at birth or home country changed; Kota cannot update these (the home address was left as it was); correct the record in Kota".into(),
                    });
                }
                if !changes.is_empty() && !old.offboarded {
                    self.push(Operation {
                        kind: OpKind::EmployeeUpdate,
                        subject: subject.clone(),
                        fp: record,
                        changes,
                        deps: Deps::NONE,
                        note: None,
                    });
                }
                let mut gone: Vec<&GroupName> = old
                    .memberships
                    .iter()
                    .filter(|(g, s)| {
                        *s == MembershipState::Added
                            && employer
                                .group_position(g.as_str())
                                .is_none_or(|p| !r.groups.contains(p))
                    })
                    .map(|(g, _)| g)
                    .collect();
                gone.sort();
                for g in gone {
                    self.body.findings.push(Finding {
                        kind: FindingKind::MembershipRemoved,
                        subject: format!("{}|{g}", r.employee_ref),
                        message: "no longer in this group in payroll; Kota has no call to remove a member: end it in Kota".into(),
                    });
                }
            }
        }
        if !leaving_or_left {
            for gi in r.groups.iter() {
                let g = &self.group_names[self.group_base[at] as usize + gi].clone();
                let state = synced.and_then(|s| s.membership(g));
                match state {
                    Some(MembershipState::Added) => continue,
                    Some(MembershipState::Ineligible(i)) if !changed => {
                        let (codes, checked) = (&i.codes, i.checked);
                        // Eligibility changes with the employee's data or with
                        // time: check again when the data changed, when a
                        // not-yet-started employee's start date has come, or
                        // weekly; not every night (a nightly no-op run sends
                        // nothing).
                        let started = codes.contains("not_started") && r.start_on <= self.ctx.today;
                        let stale =
                            checked.is_none_or(|d| d + chrono::Days::new(7) <= self.ctx.today);
                        if !started && !stale {
                            continue;
                        }
                    }
                    _ => {}
                }
                let mut deps = Deps::of(create);
                if let Some(op) = op_index(self.group_create[self.group_base[at] as usize + gi]) {
                    deps.push(op);
                }
                let note = match state {
                    Some(MembershipState::Ineligible(i)) => {
                        Some(format!("re-check: last found ineligible ({})", i.codes).into())
                    }
                    _ => None,
                };
                self.push(Operation {
                    kind: OpKind::MembershipAdd,
                    subject: Subject::Membership(er.clone(), r.employee_ref.clone(), g.clone()),
                    fp: Sections::default(),
                    changes: Changes::NONE,
                    deps,
                    note,
                });
            }
        }
        let offboarded = synced.is_some_and(|s| s.offboarded);
        if let (Some(end), false) = (r.end_on, offboarded) {
            self.push(Operation {
                kind: OpKind::EmployeeOffboard,
                subject,
                fp: Sections::default(),
                changes: Changes::NONE,
                deps: Deps::of(create),
                note: Some(format!("end_on {end}").into()),
            });
        }
        if self.body.operations.len() as u32 > first {
            if let Some(p) = r.payload {
                self.body.employees.insert(r.employee_ref, *p);
            }
        } else if let Some(old) = synced.filter(|_| self.body.findings.len() == findings) {
            // Nothing to do and nothing to say: the same row will plan
            // nothing again until the employee's state changes, unless a
            // membership awaits an eligibility re-check (which time alone
            // can bring).
            if r.digest != 0
                && r.digest != old.row_digest
                && old
                    .memberships
                    .iter()
                    .all(|(_, m)| *m == MembershipState::Added)
            {
                self.body.unchanged.push((r.employee_ref, r.digest));
            }
        }
    }

    /// Note a row the reader skipped as unchanged since the last apply
    /// (`input::Streamed::Unchanged`): the synced employee at `position`
    /// is present and valid, and plans nothing.
    pub fn unchanged(&mut self, position: u32) {
        self.mark_seen(position);
        self.valid_employees += 1;
        self.body.skipped += 1;
    }

    /// Finish: drop everything planned for duplicated refs, then find the
    /// employees missing from the export.
    pub fn finish(mut self, duplicates: &BTreeSet<EmployeeRef>) -> PlanBody {
        for d in duplicates {
            self.note_seen(d.as_str());
        }
        self.drop_duplicates(duplicates);
        self.plan_missing();
        self.body
    }

    /// A duplicated ref's first row was planned before its repeat was read:
    /// drop every operation about it (only its own row plans operations
    /// about an employee, and no other employee's operation depends on them).
    fn drop_duplicates(&mut self, duplicates: &BTreeSet<EmployeeRef>) {
        if duplicates.is_empty() {
            return;
        }
        for d in duplicates {
            self.body.employees.remove(d);
        }
        self.body.unchanged.retain(|(e, _)| !duplicates.contains(e));
        let drop: Vec<bool> = self
            .body
            .operations
            .iter()
            .map(|op| {
                op.subject
                    .employee()
                    .is_some_and(|e| duplicates.contains(e))
            })
            .collect();
        if !drop.contains(&true) {
            return;
        }
        let mut new_index = vec![u32::MAX; drop.len()];
        let mut n = 0u32;
        for (i, d) in drop.iter().enumerate() {
            if !d {
                new_index[i] = n;
                n += 1;
            }
        }
        let ops = std::mem::take(&mut self.body.operations);
        self.body.operations = ops
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !drop[*i])
            .map(|(_, mut op)| {
                op.deps = Deps::of(
                    op.deps
                        .iter()
                        .map(|d| new_index[*d as usize])
                        .filter(|d| *d != u32::MAX),
                );
                op
            })
            .collect();
    }

    fn plan_missing(&mut self) {
        let mut missing: Vec<(&EmployeeRef, &EmployerRef)> = self
            .snap
            .employees
            .iter()
            .enumerate()
            .filter(|(i, (_, v))| !v.offboarded && !self.was_seen(*i))
            .map(|(_, (k, v))| (k, self.snap.employer_of(v)))
            .collect();
        missing.sort();
        if missing.is_empty() {
            return;
        }
        // Guards: never offboard from an empty export, nor more than 10% of
        // an employer's synced, active employees in one run.
        let mut active: HashMap<&EmployerRef, u64> = HashMap::new();
        for v in self.snap.employees.values().filter(|v| !v.offboarded) {
            *active.entry(self.snap.employer_of(v)).or_default() += 1;
        }
        let mut missing_per: HashMap<&EmployerRef, u64> = HashMap::new();
        for (_, er) in &missing {
            *missing_per.entry(er).or_default() += 1;
        }
        let empty_export = self.valid_employees == 0;
        for (ee, er) in missing {
            let refused = if !self.ctx.offboard_missing {
                None
            } else if empty_export {
                Some("the employees export has no valid rows".to_owned())
            } else {
                let m = missing_per[er];
                let a = active[er].max(1);
                (m * 10 > a).then(|| {
                    format!(
                        "{m} of employer {er}'s {a} synced employees are missing (more than 10%)"
                    )
                })
            };
            match (self.ctx.offboard_missing, refused) {
                (true, None) => {
                    self.body.operations.push(Operation {
                        kind: OpKind::EmployeeOffboard,
                        subject: Subject::Employee(er.clone(), ee.clone()),
                        fp: Sections::default(),
                        changes: Changes::NONE,
                        deps: Deps::NONE,
                        note: Some(format!("missing from export; offboarded on {}", self.ctx.today).into()),
                    });
                }
                (true, Some(why)) => self.body.findings.push(Finding {
                    kind: FindingKind::OffboardRefused,
                    subject: ee.to_string(),
                    message: format!("missing from the export but not offboarded: {why}"),
                }),
                (false, _) => self.body.findings.push(Finding {
                    kind: FindingKind::MissingFromExport,
                    subject: ee.to_string(),
                    message: format!("synced before (employer {er}) but missing from the export; use --offboard-missing to offboard"),
                }),
            }
        }
    }
}
