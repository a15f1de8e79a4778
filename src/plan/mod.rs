//! Planning: from validated exports and a state snapshot to operations.

pub mod build;
pub mod fingerprint;
pub mod op;
pub mod planner;
pub mod saved;

pub use build::{build, build_from, read_employers, BuildError, Fetch, FileInfo, Pending, Plan};
pub use op::{Deps, OpKind, Operation, Subject, Target};
pub use planner::{Finding, FindingKind, Keep, PlanBody, PlanContext, PlanRow, Planner, RowNeeds};
pub use saved::{SavedPlan, Stale};

#[cfg(test)]
mod tests;
