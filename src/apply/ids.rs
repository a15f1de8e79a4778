//! Remote ids known during a run: those the state had at the start, and
//! those created since. Operations look their dependencies' ids up here.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::{CarrierId, EmployeeRef, EmployerRef, GroupName};
use crate::plan::Operation;
use crate::state::Snapshot;

#[derive(Default)]
struct Maps {
    employers: HashMap<EmployerRef, String>,
    noyo_groups: HashMap<EmployerRef, String>,
    kota_groups: HashMap<(EmployerRef, GroupName), String>,
    employees: HashMap<EmployeeRef, String>,
    connections: HashMap<(EmployerRef, CarrierId), String>,
}

/// Shared by every operation task; each lock is held for one map access.
#[derive(Default)]
pub struct Ids(Mutex<Maps>);

impl Ids {
    /// The ids the state holds, for `operations`: every employer, group and
    /// connection (a few per employer), but only the employees the
    /// operations name. Operations look employees up by their own subject
    /// only, and copying a million employees' ids for a night that touches
    /// a hundred of them was most of a no-op night's apply. Also returns
    /// the employees named whose ids a summarised snapshot left out (to be
    /// looked up and [`Ids::set_employee`]d before the operations start).
    pub fn from_snapshot(s: &Snapshot, operations: &[Operation]) -> (Ids, Vec<EmployeeRef>) {
        let mut m = Maps::default();
        for (k, v) in &s.employers {
            if let Some(id) = &v.kota_id {
                m.employers.insert(k.clone(), id.clone());
            }
            if let Some(g) = &v.noyo_group_id {
                m.noyo_groups.insert(k.clone(), g.clone());
            }
        }
        for (er, groups) in &s.kota_groups {
            for (name, id) in groups.iter() {
                m.kota_groups.insert((er.clone(), name.clone()), id.clone());
            }
        }
        let mut summarised = Vec::new();
        for ee in operations.iter().filter_map(|op| op.subject.employee()) {
            if m.employees.contains_key(ee) || summarised.last() == Some(ee) {
                continue;
            }
            match s.employees.get_key_value(ee) {
                Some((k, v)) if v.partial => summarised.push(k.clone()),
                Some((k, v)) => {
                    m.employees.insert(k.clone(), v.kota_id.to_string());
                }
                None => {}
            }
        }
        summarised.sort();
        summarised.dedup();
        for (er, connections) in &s.connections {
            for (c, v) in connections.iter() {
                m.connections.insert((er.clone(), *c), v.noyo_id.clone());
                m.noyo_groups
                    .entry(er.clone())
                    .or_insert_with(|| v.noyo_group_id.clone());
            }
        }
        (Ids(Mutex::new(m)), summarised)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Maps) -> T) -> T {
        f(&mut self.0.lock().expect("ids lock"))
    }

    pub fn employer(&self, r: &EmployerRef) -> Option<String> {
        self.with(|m| m.employers.get(r).cloned())
    }
    pub fn set_employer(&self, r: &EmployerRef, id: &str) {
        self.with(|m| m.employers.insert(r.clone(), id.to_owned()));
    }
    pub fn noyo_group(&self, r: &EmployerRef) -> Option<String> {
        self.with(|m| m.noyo_groups.get(r).cloned())
    }
    pub fn set_noyo_group(&self, r: &EmployerRef, id: &str) {
        self.with(|m| {
            m.noyo_groups
                .entry(r.clone())
                .or_insert_with(|| id.to_owned());
        });
    }
    pub fn kota_group(&self, r: &EmployerRef, g: &GroupName) -> Option<String> {
        self.with(|m| m.kota_groups.get(&(r.clone(), g.clone())).cloned())
    }
    pub fn set_kota_group(&self, r: &EmployerRef, g: &GroupName, id: &str) {
        self.with(|m| m.kota_groups.insert((r.clone(), g.clone()), id.to_owned()));
    }
    pub fn employee(&self, r: &EmployeeRef) -> Option<String> {
        self.with(|m| m.employees.get(r).cloned())
    }
    pub fn set_employee(&self, r: &EmployeeRef, id: &str) {
        self.with(|m| m.employees.insert(r.clone(), id.to_owned()));
    }
    pub fn connection(&self, r: &EmployerRef, c: &CarrierId) -> Option<String> {
        self.with(|m| m.connections.get(&(r.clone(), *c)).cloned())
    }
    pub fn set_connection(&self, r: &EmployerRef, c: &CarrierId, id: &str) {
        self.with(|m| m.connections.insert((r.clone(), *c), id.to_owned()));
    }
}
