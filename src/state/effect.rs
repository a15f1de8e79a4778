//! What a finished operation changes in the state, and how the journal
//! records an operation's life.

use serde::{Deserialize, Serialize};

use super::snapshot::Sections;
use crate::model::{CarrierId, EmployeeRef, EmployerRef, GroupName};

/// The state change a successful operation makes. Written in the same
/// transaction as the journal's `done` and the version bump, so the state
/// never claims a write the journal does not, nor the reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Employer {
        employer_ref: EmployerRef,
        kota_id: String,
        fp: Sections,
    },
    KotaGroup {
        employer_ref: EmployerRef,
        name: GroupName,
        kota_id: String,
    },
    IcGroup {
        employer_ref: EmployerRef,
        name: GroupName,
        ic_id: String,
    },
    Connection {
        employer_ref: EmployerRef,
        carrier_id: CarrierId,
        noyo_id: String,
        noyo_group_id: String,
        fp: Sections,
        status: String,
    },
    ConnectionStatus {
        employer_ref: EmployerRef,
        carrier_id: CarrierId,
        status: String,
    },
    Employee {
        employee_ref: EmployeeRef,
        employer_ref: EmployerRef,
        kota_id: String,
        fp: Sections,
    },
    EmployeeOffboarded {
        employee_ref: EmployeeRef,
    },
    Membership {
        employee_ref: EmployeeRef,
        group: GroupName,
        /// `None`: added. `Some(codes)`: the pre-check said ineligible.
        ineligible: Option<String>,
    },
}

/// Where an operation stands in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalStatus {
    /// Recorded before the first send; no outcome known. After a crash this
    /// means "may have reached the server": creates look up before retrying.
    InFlight,
    /// Succeeded; its effect is in the state. Never stored: finishing an
    /// operation as done deletes its row, and the effect is its record.
    Done,
    /// Refused by the server (a 4xx other than 429): nothing was created.
    Failed,
    /// Gave up after retries on errors that may hide a success (5xx, a
    /// dropped connection): treated like `InFlight` on the next run.
    Unknown,
    /// Not attempted: a dependency failed, or the run was interrupted first.
    Skipped,
}

impl JournalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalStatus::InFlight => "in_flight",
            JournalStatus::Done => "done",
            JournalStatus::Failed => "failed",
            JournalStatus::Unknown => "unknown",
            JournalStatus::Skipped => "skipped",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "in_flight" => JournalStatus::InFlight,
            "done" => JournalStatus::Done,
            "failed" => JournalStatus::Failed,
            "unknown" => JournalStatus::Unknown,
            "skipped" => JournalStatus::Skipped,
            _ => return None,
        })
    }
    /// Whether an earlier attempt may have reached the server unseen.
    pub fn uncertain(self) -> bool {
        matches!(self, JournalStatus::InFlight | JournalStatus::Unknown)
    }
}
