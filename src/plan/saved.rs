//! Saved plans (`plan --save`, `apply --plan`): what will be done, named by
//! content hash and state version, with no personal data at all.

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::build::{FileInfo, Plan};

pub const SCHEMA: &str = "benefits-sync/saved-plan/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedOp {
    pub key: String,
    pub fingerprint: String,
    pub depends_on: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedPlan {
    pub schema: String,
    pub employers: FileInfo,
    pub employees: FileInfo,
    pub state_version: u64,
    /// The plan's date: apply re-plans as of it, so the same inputs give the
    /// same operations whatever day it runs.
    pub as_of: NaiveDate,
    pub offboard_missing: bool,
    pub operations: Vec<SavedOp>,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read saved plan {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is not a benefits-sync saved plan: {1}")]
    Format(String, String),
    #[error("cannot write saved plan {0}: {1}")]
    Write(String, std::io::Error),
}

/// Why a saved plan no longer applies.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Stale {
    #[error(
        "{which} changed since the plan was saved (blake3 {saved} then, {now} now); run plan again"
    )]
    Input {
        which: &'static str,
        saved: String,
        now: String,
    },
    #[error("the state database moved from version {saved} to {now} since the plan was saved; run plan again")]
    State { saved: u64, now: u64 },
    #[error("the plan computed now differs from the saved one ({0}); run plan again")]
    Operations(String),
}

impl SavedPlan {
    pub fn from_plan(p: &Plan) -> SavedPlan {
        assert!(
            p.kept.fingerprints(),
            "a saved plan names fingerprints: plan with Keep::Fingerprints"
        );
        SavedPlan {
            schema: SCHEMA.into(),
            employers: p.employers_file.clone(),
            employees: p.employees_file.clone(),
            state_version: p.state_version,
            as_of: p.as_of,
            offboard_missing: p.offboard_missing,
            operations: p
                .operations
                .iter()
                .map(|o| SavedOp {
                    key: o.key(),
                    fingerprint: o.fp.combined(),
                    depends_on: o.deps.to_vec(),
                })
                .collect(),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), SavedPlanError> {
        let text = serde_json::to_string_pretty(self).expect("a saved plan serializes");
        crate::report::write_private(path, text.as_bytes())
            .map_err(|e| SavedPlanError::Write(path.display().to_string(), e))
    }

    pub fn load(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let d = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SavedPlanError::Read(d.clone(), e))?;
        let p: SavedPlan = serde_json::from_str(&text)
            .map_err(|e| SavedPlanError::Format(d.clone(), e.to_string()))?;
        if p.schema != SCHEMA {
            return Err(SavedPlanError::Format(
                d,
                format!("schema {} (expected {SCHEMA})", p.schema),
            ));
        }
        Ok(p)
    }

    /// Compare with the hashes of the files now and the state version now.
    pub fn check_inputs(
        &self,
        employers_hash: &str,
        employees_hash: &str,
        state_version: u64,
    ) -> Result<(), Stale> {
        if self.employers.blake3 != employers_hash {
            return Err(Stale::Input {
                which: "employers file",
                saved: short(&self.employers.blake3),
                now: short(employers_hash),
            });
        }
        if self.employees.blake3 != employees_hash {
            return Err(Stale::Input {
                which: "employees file",
                saved: short(&self.employees.blake3),
                now: short(employees_hash),
            });
        }
        if self.state_version != state_version {
            return Err(Stale::State {
                saved: self.state_version,
                now: state_version,
            });
        }
        Ok(())
    }

    /// The re-computed plan must be the saved one, operation for operation.
    pub fn check_plan(&self, p: &Plan) -> Result<(), Stale> {
        let now = SavedPlan::from_plan(p);
        if now.operations.len() != self.operations.len() {
            return Err(Stale::Operations(format!(
                "{} operations saved, {} now",
                self.operations.len(),
                now.operations.len()
            )));
        }
        if let Some((a, b)) = self
            .operations
            .iter()
            .zip(&now.operations)
            .find(|(a, b)| a != b)
        {
            return Err(Stale::Operations(format!(
                "saved {} but now {}",
                a.key, b.key
            )));
        }
        Ok(())
    }
}

fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

/// Hash a file's bytes as the input readers do.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().to_hex().to_string())
}
