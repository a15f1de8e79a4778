//! Planning: from validated exports and a state snapshot to operations.

pub mod fingerprint;
pub mod op;
pub mod planner;

pub use op::{OpKind, Operation, Subject, Target};
pub use planner::{Finding, FindingKind, PlanBody, PlanContext, Planner};
