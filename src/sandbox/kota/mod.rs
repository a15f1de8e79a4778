//! The Kota API under `/kota`: bearer auth, idempotency, pagination and
//! dispatch to the employer, employee and group handlers.

mod employees;
mod employers;
mod groups;
mod idempotency;
pub mod schemas;
pub mod types;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::http::{kota_problem, kota_validation, Call, Reply};
use super::routes::Op;
use super::server::{lock, App};
use super::validate::{self, Errors, Schema};
use super::world::World;

/// The platform every sandbox object belongs to.
pub const PLATFORM_ID: &str = "pt_5a4db0c05a4db0c05a4db0c05a4db0c0";
/// Default page size (spec).
const DEFAULT_PAGE_SIZE: usize = 10;
/// Largest page size (spec).
const MAX_PAGE_SIZE: usize = 100;

/// Handles a Kota request.
pub fn handle(app: &App, call: &Call) -> Reply {
    let authorised = call
        .bearer()
        .is_some_and(|t| t.len() > "pk_test_".len() && t.starts_with("pk_test_"));
    if !authorised {
        return kota_problem(401, "unauthorized", "Missing or invalid API key.");
    }
    let now = Utc::now();
    let mut world = lock(&app.world);
    let w = &mut *world;
    let declares_key = matches!(
        call.route.op,
        Op::KotaCreateEmployer
            | Op::KotaCreateEmployee
            | Op::KotaOffboardEmployee
            | Op::KotaOffboardEmployer
            | Op::KotaAddGroupEmployee
    );
    match call.header("idempotency-key").filter(|_| declares_key) {
        Some(key) => idempotency::run(w, call, key, now.timestamp_millis(), |w| {
            route(w, call, now)
        }),
        None => route(w, call, now),
    }
}

fn route(w: &mut World, call: &Call, now: DateTime<Utc>) -> Reply {
    match call.route.op {
        Op::KotaCreateEmployer => employers::create(w, call),
        Op::KotaListEmployers => employers::list(w, call),
        Op::KotaGetEmployer => employers::get(w, call),
        Op::KotaUpdateEmployer => employers::update(w, call),
        Op::KotaOffboardEmployer => employers::offboard(w, call, now),
        Op::KotaCreateEmployee => employees::create(w, call, now),
        Op::KotaListEmployees => employees::list(w, call),
        Op::KotaGetEmployee => employees::get(w, call),
        Op::KotaUpdateEmployee => employees::update(w, call, now),
        Op::KotaOffboardEmployee => employees::offboard(w, call),
        Op::KotaCreateGroup => groups::create(w, call),
        Op::KotaListGroups => groups::list(w, call),
        Op::KotaGetGroup => groups::get(w, call),
        Op::KotaUpdateGroup => groups::update(w, call),
        Op::KotaAddGroupEmployee => groups::add_employee(w, call),
        Op::KotaListGroupEmployees => groups::list_employees(w, call),
        Op::KotaEligibilityCheck => groups::eligibility_check(w, call, now),
        _ => kota_problem(404, "not_found", "No such route."),
    }
}

/// `prefix` + 32 lower-case hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Parses and validates a body against a schema, then runs the extra
/// checks; any problem becomes a 400 `validation_error`.
pub fn parse<T: DeserializeOwned>(
    body: &[u8],
    schema: &Schema,
    extra: impl FnOnce(&Value, &mut Errors),
) -> Result<T, Reply> {
    let value = validate::parse_body(body).map_err(kota_validation)?;
    let mut errors = validate::check(&value, schema);
    if errors.is_empty() {
        extra(&value, &mut errors);
    }
    if !errors.is_empty() {
        return Err(kota_validation(errors));
    }
    serde_json::from_value(value)
        .map_err(|e| kota_validation(validate::one("body", &format!("Invalid body: {e}"))))
}

/// A 404 `not_found` naming the object.
pub fn not_found(what: &str, id: &str) -> Reply {
    kota_problem(404, "not_found", format!("{what} {id} was not found."))
}

/// A 200 with the object.
pub fn ok<T: Serialize>(v: &T) -> Reply {
    Reply::json(200, v)
}

/// Requested page.
pub struct Page {
    /// 1-based page number.
    number: usize,
    /// Requested size.
    size: usize,
}

/// Reads `page` and `page_size` (defaults 1 and 10, size at most 100).
pub fn page_of(call: &Call) -> Result<Page, Reply> {
    let mut errors = Errors::new();
    let mut int = |name: &str, default: usize, max: usize| match call.query(name) {
        None | Some("") => default,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 && n <= max => n,
            _ => {
                let msg = if max == usize::MAX {
                    "Must be an integer of at least 1.".to_string()
                } else {
                    format!("Must be an integer between 1 and {max}.")
                };
                validate::push(&mut errors, name, &msg);
                default
            }
        },
    };
    let number = int("page", 1, usize::MAX);
    let size = int("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    if errors.is_empty() {
        Ok(Page { number, size })
    } else {
        Err(kota_validation(errors))
    }
}

/// A paged list; `page_size` is the requested size, or the total when that
/// is smaller (as the spec describes it).
pub fn paged<T: Serialize>(items: Vec<&T>, page: &Page) -> Reply {
    let total = items.len();
    let start = (page.number - 1).saturating_mul(page.size).min(total);
    let end = start.saturating_add(page.size).min(total);
    Reply::json(
        200,
        &serde_json::json!({
            "items": &items[start..end],
            "page": page.number,
            "page_size": page.size.min(total),
            "total_count": total,
            "has_next_page": end < total,
            "has_previous_page": page.number > 1 && total > 0,
        }),
    )
}

/// Reads a comma-separated status filter; unknown values are a 400.
pub fn status_filter(
    call: &Call,
    name: &str,
    allowed: &[&str],
) -> Result<Option<Vec<String>>, Reply> {
    let Some(raw) = call.query(name).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let values: Vec<String> = raw.split(',').map(|s| s.trim().to_string()).collect();
    if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
        return Err(kota_validation(validate::one(
            name,
            &format!("Unknown value {bad:?}; allowed: {}.", allowed.join(", ")),
        )));
    }
    Ok(Some(values))
}

/// Reads an id filter that must carry `prefix`.
pub fn id_filter<'a>(call: &'a Call, name: &str, prefix: &str) -> Result<Option<&'a str>, Reply> {
    match call.query(name).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) if v.len() > prefix.len() && v.starts_with(prefix) => Ok(Some(v)),
        Some(_) => Err(kota_validation(validate::one(
            name,
            &format!("Must match the pattern {prefix}.+"),
        ))),
    }
}
