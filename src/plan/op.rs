//! Operations: the remote writes a plan is made of.

use std::fmt;

use arcstr::ArcStr;
use serde::{Deserialize, Serialize};

use crate::model::{CarrierId, EmployeeRef, EmployerRef, GroupName};
use crate::state::Sections;

/// A remote system benefits-sync writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Kota,
    Noyo,
    Ic,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Kota, Target::Noyo, Target::Ic];
    /// Position in [`Target::ALL`], for per-target arrays.
    pub fn index(self) -> usize {
        match self {
            Target::Kota => 0,
            Target::Noyo => 1,
            Target::Ic => 2,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Kota => "kota",
            Target::Noyo => "noyo",
            Target::Ic => "ic",
        }
    }
    pub fn parse(s: &str) -> Option<Target> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kota" => Some(Target::Kota),
            "noyo" => Some(Target::Noyo),
            "ic" | "invisible_collector" | "invisiblecollector" => Some(Target::Ic),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Target::Kota => "Kota",
            Target::Noyo => "Noyo",
            Target::Ic => "Invisible Collector",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operation does. The order of the variants is the order reports
/// list them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpKind {
    #[serde(rename = "employer.create")]
    EmployerCreate,
    #[serde(rename = "employer.update")]
    EmployerUpdate,
    #[serde(rename = "group.create")]
    GroupCreate,
    #[serde(rename = "ic_group.create")]
    IcGroupCreate,
    #[serde(rename = "connection.create")]
    ConnectionCreate,
    #[serde(rename = "connection.retry")]
    ConnectionRetry,
    #[serde(rename = "employee.create")]
    EmployeeCreate,
    #[serde(rename = "employee.update")]
    EmployeeUpdate,
    #[serde(rename = "employee.offboard")]
    EmployeeOffboard,
    #[serde(rename = "membership.add")]
    MembershipAdd,
}

impl OpKind {
    /// Every kind, in declaration order: `ALL[k as usize] == k`.
    pub const ALL: [OpKind; 10] = [
        OpKind::EmployerCreate,
        OpKind::EmployerUpdate,
        OpKind::GroupCreate,
        OpKind::IcGroupCreate,
        OpKind::ConnectionCreate,
        OpKind::ConnectionRetry,
        OpKind::EmployeeCreate,
        OpKind::EmployeeUpdate,
        OpKind::EmployeeOffboard,
        OpKind::MembershipAdd,
    ];
    pub fn code(self) -> &'static str {
        match self {
            OpKind::EmployerCreate => "employer.create",
            OpKind::EmployerUpdate => "employer.update",
            OpKind::GroupCreate => "group.create",
            OpKind::IcGroupCreate => "ic_group.create",
            OpKind::ConnectionCreate => "connection.create",
            OpKind::ConnectionRetry => "connection.retry",
            OpKind::EmployeeCreate => "employee.create",
            OpKind::EmployeeUpdate => "employee.update",
            OpKind::EmployeeOffboard => "employee.offboard",
            OpKind::MembershipAdd => "membership.add",
        }
    }
    pub fn target(self) -> Target {
        match self {
            OpKind::IcGroupCreate => Target::Ic,
            OpKind::ConnectionCreate | OpKind::ConnectionRetry => Target::Noyo,
            _ => Target::Kota,
        }
    }
    /// The names of the fingerprint sections an update of this kind can
    /// send ([`Changes`] indexes them); none for other kinds.
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            OpKind::EmployerUpdate => &super::fingerprint::EMPLOYER_SECTIONS,
            OpKind::EmployeeUpdate => &super::fingerprint::EMPLOYEE_SECTIONS,
            _ => &[],
        }
    }
    /// Creates that the vendor cannot deduplicate with an idempotency key:
    /// after an uncertain attempt they look the object up before creating.
    pub fn is_create(self) -> bool {
        matches!(
            self,
            OpKind::EmployerCreate
                | OpKind::GroupCreate
                | OpKind::IcGroupCreate
                | OpKind::ConnectionCreate
                | OpKind::EmployeeCreate
                | OpKind::MembershipAdd
        )
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What an operation is about, by natural keys only (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Employer(EmployerRef),
    Group(EmployerRef, GroupName),
    Connection(EmployerRef, CarrierId),
    Employee(EmployerRef, EmployeeRef),
    Membership(EmployerRef, EmployeeRef, GroupName),
}

impl Subject {
    pub fn employer(&self) -> &EmployerRef {
        match self {
            Subject::Employer(e)
            | Subject::Group(e, _)
            | Subject::Connection(e, _)
            | Subject::Employee(e, _)
            | Subject::Membership(e, _, _) => e,
        }
    }
    pub fn employee(&self) -> Option<&EmployeeRef> {
        match self {
            Subject::Employee(_, e) | Subject::Membership(_, e, _) => Some(e),
            _ => None,
        }
    }
    pub fn group(&self) -> Option<&GroupName> {
        match self {
            Subject::Group(_, g) | Subject::Membership(_, _, g) => Some(g),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    /// The stable text form used in operation keys: employee-level subjects
    /// are named by employee ref (unique across employers).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Employer(e) => write!(f, "{e}"),
            Subject::Group(e, g) => write!(f, "{e}|{g}"),
            Subject::Connection(e, c) => write!(f, "{e}|{c}"),
            Subject::Employee(_, e) => write!(f, "{e}"),
            Subject::Membership(_, e, g) => write!(f, "{e}|{g}"),
        }
    }
}

/// One remote write, with the operations it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub kind: OpKind,
    pub subject: Subject,
    /// Fingerprint sections the state records once this succeeds.
    pub fp: Sections,
    /// For updates: the sections that changed and are sent (names by
    /// [`Operation::changes`]).
    pub changes: Changes,
    /// Indices (into the plan's operations) of the operations this one needs
    /// done first: the employer before its groups and employees, the group
    /// and the employee before the membership.
    pub deps: Deps,
    /// Why, in a few words, when the kind alone does not say it. (One word:
    /// most operations have none.)
    pub note: Option<ArcStr>,
}

/// The sections an update changed, as bits over the names of its kind's
/// sections ([`OpKind::sections`]). A plan can hold millions of
/// operations, and a list of names cost 16 bytes each, empty or not.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes(u16);

impl Changes {
    pub const NONE: Changes = Changes(0);

    /// Section `i` changed as well.
    pub fn with(self, i: usize) -> Changes {
        assert!(i < 16, "at most 16 sections");
        Changes(self.0 | 1 << i)
    }
    /// Section `i` is not sent after all.
    pub fn without(self, i: usize) -> Changes {
        Changes(self.0 & !(1 << i))
    }
    pub fn contains(self, i: usize) -> bool {
        i < 16 && self.0 & (1 << i) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The names of the changed sections, given the kind's section names.
    pub fn names(self, sections: &'static [&'static str]) -> Vec<&'static str> {
        sections
            .iter()
            .enumerate()
            .filter(|(i, _)| self.contains(*i))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((0..16).filter(|i| self.contains(*i)))
            .finish()
    }
}

/// An operation's dependencies, held inline: a plan can hold millions of
/// operations, and a heap allocation each for one or two indices was a
/// fifth of a million-row plan's memory. No operation needs more than two
/// (a membership waits for its employee and its group; everything else for
/// one parent), and [`Deps::push`] enforces that.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Deps {
    ids: [u32; 2],
    len: u8,
}

impl Deps {
    pub const NONE: Deps = Deps {
        ids: [0; 2],
        len: 0,
    };

    /// Depend on `op` as well. Panics past two: the planner never asks for
    /// more, and a silently dropped dependency could let a membership run
    /// before its employee exists.
    pub fn push(&mut self, op: u32) {
        assert!(
            (self.len as usize) < self.ids.len(),
            "an operation has at most two dependencies"
        );
        self.ids[self.len as usize] = op;
        self.len += 1;
    }

    /// The dependencies in `ops`, in order.
    pub fn of(ops: impl IntoIterator<Item = u32>) -> Deps {
        let mut d = Deps::NONE;
        for op in ops {
            d.push(op);
        }
        d
    }
}

impl std::ops::Deref for Deps {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        &self.ids[..self.len as usize]
    }
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[u32; N]> for Deps {
    fn eq(&self, other: &[u32; N]) -> bool {
        **self == other[..]
    }
}

impl Operation {
    /// The operation's stable key, e.g. `employee.create:E1001`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.subject)
    }
    pub fn target(&self) -> Target {
        self.kind.target()
    }
    /// The names of the sections an update sends, in section order.
    pub fn changes(&self) -> Vec<&'static str> {
        self.changes.names(self.kind.sections())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A million-employee plan holds over three million operations: every
    /// byte here is 3 MB of a cold plan's peak memory.
    #[test]
    fn an_operation_fits_a_cache_line() {
        assert!(
            std::mem::size_of::<Operation>() <= 64,
            "{}",
            std::mem::size_of::<Operation>()
        );
    }

    #[test]
    fn every_kind_is_at_its_own_index() {
        for (i, k) in OpKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k}");
        }
    }

    #[test]
    fn changes_name_their_sections_in_order() {
        let c = Changes::NONE.with(3).with(0).with(6);
        let names = c.names(OpKind::EmployeeUpdate.sections());
        assert_eq!(names, ["name", "home_address", "metadata"]);
        assert_eq!(c.without(3).names(&["a", "b", "c", "d"]), ["a"]);
        assert!(Changes::NONE.is_empty() && !c.is_empty());
        assert!(OpKind::MembershipAdd.sections().is_empty());
    }
}
