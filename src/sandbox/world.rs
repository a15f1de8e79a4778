//! The remote world: every object the three APIs hold, in memory, with
//! write-through to the data file. One mutex guards it (see `server::App`),
//! so each request's read-check-write is atomic, which is what makes
//! idempotency and uniqueness rules race-free.

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ic::IcGroup;
use super::kota::types::{Employee, Employer, Group, IdempotencyRecord, Membership};
use super::noyo::{Connection, NoyoGroup};
use super::store::{Row as StoredRow, Store};

/// An object with its creation order, which lists follow.
#[derive(Serialize, Deserialize)]
struct Row<T> {
    /// Creation sequence number.
    seq: u64,
    /// The object.
    v: T,
}

/// Where changes go besides memory, and the sequence counter.
#[derive(Default)]
pub struct Persist {
    /// The data file, when there is one.
    pub store: Option<Store>,
    /// Next creation sequence number.
    seq: u64,
}

/// Objects of one kind, by id.
pub struct Table<T> {
    /// Persistence kind, also the stats name (`kota.employers`).
    kind: &'static str,
    /// Rows by id.
    rows: HashMap<String, Row<T>>,
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    fn new(kind: &'static str) -> Self {
        Table {
            kind,
            rows: HashMap::new(),
        }
    }

    /// One object.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.rows.get(id).map(|r| &r.v)
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Every object, oldest first.
    pub fn ordered(&self) -> Vec<&T> {
        let mut rows: Vec<&Row<T>> = self.rows.values().collect();
        rows.sort_by_key(|r| r.seq);
        rows.into_iter().map(|r| &r.v).collect()
    }

    /// Every object, in no order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.rows.values().map(|r| &r.v)
    }

    /// Inserts or replaces an object (keeping its place in the order) and
    /// writes it through.
    pub fn put(&mut self, persist: &mut Persist, id: &str, v: T) {
        let seq = match self.rows.get(id) {
            Some(r) => r.seq,
            None => {
                persist.seq += 1;
                persist.seq
            }
        };
        let row = Row { seq, v };
        if let Some(store) = &persist.store {
            match serde_json::to_string(&row) {
                Ok(body) => store.put(self.kind, id, body),
                Err(e) => tracing::error!(kind = self.kind, error = %e, "cannot persist"),
            }
        }
        self.rows.insert(id.to_string(), row);
    }

    /// Removes every object `expired` selects, in memory and on disk.
    pub fn remove_where(&mut self, persist: &Persist, expired: impl Fn(&T) -> bool) {
        let kind = self.kind;
        self.rows.retain(|id, row| {
            let keep = !expired(&row.v);
            if !keep {
                if let Some(store) = &persist.store {
                    store.delete(kind, id);
                }
            }
            keep
        });
    }

    fn load(&mut self, persist: &mut Persist, id: String, body: &str) -> Result<(), String> {
        let row: Row<T> =
            serde_json::from_str(body).map_err(|e| format!("bad {} row {id}: {e}", self.kind))?;
        persist.seq = persist.seq.max(row.seq);
        self.rows.insert(id, row);
        Ok(())
    }
}

/// Everything the emulated vendors hold.
pub struct World {
    /// Persistence and ordering.
    pub persist: Persist,
    /// Kota employers.
    pub employers: Table<Employer>,
    /// Kota employees.
    pub employees: Table<Employee>,
    /// Kota groups.
    pub groups: Table<Group>,
    /// Kota group memberships, by `group_id/employee_id`.
    pub memberships: Table<Membership>,
    /// Kota idempotency records, by key.
    pub idempotency: Table<IdempotencyRecord>,
    /// Noyo groups.
    pub noyo_groups: Table<NoyoGroup>,
    /// Noyo group connections.
    pub noyo_connections: Table<Connection>,
    /// Invisible Collector groups.
    pub ic_groups: Table<IcGroup>,
}

impl World {
    /// An empty world writing through to `store`.
    pub fn new(store: Option<Store>) -> World {
        World {
            persist: Persist { store, seq: 0 },
            employers: Table::new("kota.employers"),
            employees: Table::new("kota.employees"),
            groups: Table::new("kota.groups"),
            memberships: Table::new("kota.memberships"),
            idempotency: Table::new("kota.idempotency"),
            noyo_groups: Table::new("noyo.groups"),
            noyo_connections: Table::new("noyo.connections"),
            ic_groups: Table::new("ic.groups"),
        }
    }

    /// Loads rows read from the data file.
    pub fn load(&mut self, rows: Vec<StoredRow>) -> Result<(), String> {
        for (kind, id, body) in rows {
            let p = &mut self.persist;
            match kind.as_str() {
                "kota.employers" => self.employers.load(p, id, &body)?,
                "kota.employees" => self.employees.load(p, id, &body)?,
                "kota.groups" => self.groups.load(p, id, &body)?,
                "kota.memberships" => self.memberships.load(p, id, &body)?,
                "kota.idempotency" => self.idempotency.load(p, id, &body)?,
                "noyo.groups" => self.noyo_groups.load(p, id, &body)?,
                "noyo.connections" => self.noyo_connections.load(p, id, &body)?,
                "ic.groups" => self.ic_groups.load(p, id, &body)?,
                other => return Err(format!("unknown object kind {other:?}")),
            }
        }
        Ok(())
    }

    /// Forgets every object, in memory and in the data file.
    pub fn clear(&mut self) {
        let store = self.persist.store.take();
        if let Some(s) = &store {
            s.clear();
        }
        *self = World::new(store);
    }

    /// Object counts for `/_sandbox/stats`.
    pub fn object_counts(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("kota.employers", self.employers.len()),
            ("kota.employees", self.employees.len()),
            ("kota.groups", self.groups.len()),
            ("kota.memberships", self.memberships.len()),
            ("noyo.groups", self.noyo_groups.len()),
            ("noyo.connections", self.noyo_connections.len()),
            ("ic.groups", self.ic_groups.len()),
        ])
    }

    /// Extra objects per natural key, i.e. what a client that lost track of
    /// its creations would have duplicated:
    /// employers by `metadata["id"]`, else registration number, else legal
    /// name; employees by employer and `metadata["id"]`, else email; groups
    /// by employer and name; memberships by employee and group; Noyo
    /// connections by carrier and carrier group id; IC groups by name.
    pub fn duplicate_counts(&self) -> BTreeMap<&'static str, usize> {
        let meta_id = |m: &Option<super::kota::types::Metadata>| {
            m.as_ref().and_then(|m| m.get("id")).cloned()
        };
        BTreeMap::from([
            (
                "kota.employers",
                extra(self.employers.values().map(|e| {
                    meta_id(&e.metadata)
                        .map(|v| format!("id:{v}"))
                        .or_else(|| e.registration_number.as_ref().map(|r| format!("reg:{r}")))
                        .unwrap_or_else(|| format!("name:{}", e.legal_name))
                })),
            ),
            (
                "kota.employees",
                extra(self.employees.values().map(|e| {
                    let k = meta_id(&e.metadata)
                        .map(|v| format!("id:{v}"))
                        .unwrap_or_else(|| format!("email:{}", e.email));
                    format!("{}/{k}", e.employer_id)
                })),
            ),
            (
                "kota.groups",
                extra(
                    self.groups
                        .values()
                        .map(|g| format!("{}/{}", g.employer_id, g.name)),
                ),
            ),
            (
                "kota.memberships",
                extra(
                    self.memberships
                        .values()
                        .map(|m| format!("{}/{}", m.id, m.group_id)),
                ),
            ),
            (
                "noyo.connections",
                extra(
                    self.noyo_connections
                        .values()
                        .map(|c| format!("{}/{}", c.carrier_id, c.group_data.carrier_group_id)),
                ),
            ),
            (
                "ic.groups",
                extra(self.ic_groups.values().map(|g| g.name.clone())),
            ),
        ])
    }
}

/// Number of items beyond the first per distinct key.
fn extra(keys: impl Iterator<Item = String>) -> usize {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for k in keys {
        *seen.entry(k).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_counts_beyond_first() {
        let keys = ["a", "b", "a", "a", "c", "b"].map(String::from);
        assert_eq!(extra(keys.into_iter()), 3);
    }
}
