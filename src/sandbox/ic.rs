//! Invisible Collector under `/ic`: groups, unique by name per account.
//!
//! `POST /groups` answers 201 with `{id, name}`; a name already taken
//! (exact, case-sensitive match) answers `ic_duplicate_status` (409 as
//! documented, or 422). A missing or empty name, a non-string name or any
//! other field is a 422. Errors are `{"code": <status>, "message": ...}`.

use serde::{Deserialize, Serialize};

use super::http::{ic_error, Call, Reply};
use super::routes::Op;
use super::server::{lock, App};
use super::validate::{self, Field, Schema, Ty};

/// An Invisible Collector group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IcGroup {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
}

static CREATE: Schema = Schema {
    fields: &[Field::req("name", Ty::NonEmpty)],
};

/// Handles an Invisible Collector request.
pub fn handle(app: &App, call: &Call) -> Reply {
    let authorised = call
        .bearer()
        .is_some_and(|t| t.len() > "ic_test_".len() && t.starts_with("ic_test_"));
    if !authorised {
        return ic_error(401, "Unauthorized - Invalid credentials were supplied.");
    }
    let mut world = lock(&app.world);
    let w = &mut *world;
    match call.route.op {
        Op::IcListGroups => Reply::json(200, &w.ic_groups.ordered()),
        Op::IcCreateGroup => {
            let value = match validate::parse_body(call.body) {
                Ok(v) => v,
                Err(e) => return ic_error(422, describe(&e)),
            };
            let errors = validate::check(&value, &CREATE);
            if !errors.is_empty() {
                return ic_error(422, describe(&errors));
            }
            let name = value
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            if w.ic_groups.values().any(|g| g.name == name) {
                let status = if app.settings.ic_duplicate_status == 422 {
                    422
                } else {
                    409
                };
                return ic_error(
                    status,
                    "Conflict - A group with the same name already exists for the company.",
                );
            }
            let group = IcGroup {
                id: uuid::Uuid::new_v4().to_string(),
                name,
            };
            let reply = Reply::json(201, &group);
            w.ic_groups.put(&mut w.persist, &group.id.clone(), group);
            reply
        }
        _ => ic_error(404, "Not found."),
    }
}

fn describe(errors: &validate::Errors) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|(f, m)| format!("{f}: {}", m.join(" ")))
        .collect();
    format!("Unprocessable Entity - {}", parts.join("; "))
}
