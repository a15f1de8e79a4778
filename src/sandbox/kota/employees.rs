//! `/kota/employees`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::schemas::{self, PERSON_STATUSES};
use super::types::{CreateEmployee, Employee, OffboardEmployee, UpdateEmployee};
use super::{id_filter, new_id, not_found, ok, page_of, paged, parse, status_filter, PLATFORM_ID};
use crate::sandbox::http::{kota_problem, kota_validation, Call, Reply};
use crate::sandbox::validate;
use crate::sandbox::world::World;

/// `POST /employees`: new employees are `active`. An unknown employer is a
/// 400 `validation_error` on `employer_id` (the spec lists no 404 here).
pub fn create(w: &mut World, call: &Call, now: DateTime<Utc>) -> Reply {
    let today = now.date_naive();
    let req: CreateEmployee = match parse(call.body, &schemas::CREATE_EMPLOYEE, |v, e| {
        let address = v.get("home_address").unwrap_or(&Value::Null);
        let country = address.get("country_code").and_then(Value::as_str);
        schemas::check_state(address, country, "home_address", e);
        schemas::check_metadata(v, e);
        schemas::check_phone(v, e);
        schemas::check_email(v, "email", e);
        schemas::check_dates(v, today, e);
    }) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if w.employers.get(&req.employer_id).is_none() {
        return kota_validation(validate::one("employer_id", "Employer not found."));
    }
    let employee = Employee {
        platform_id: PLATFORM_ID.into(),
        id: new_id("ee_"),
        employer_id: req.employer_id,
        status: "active".into(),
        external_customer_id: req.external_customer_id,
        first_name: req.first_name,
        last_name: req.last_name,
        date_of_birth: req.date_of_birth,
        sex_at_birth: req.sex_at_birth,
        home_address: req.home_address,
        nationality: req.nationality,
        national_tax_id: req.national_tax_id,
        start_on: req.start_on,
        earliest_benefits_start_date: req.earliest_benefits_start_date,
        phone_number: req.phone_number,
        email: req.email,
        offboard_on: None,
        bank_account: req.bank_account.as_ref().map(|b| b.view()),
        metadata: req.metadata,
        object: "employee".into(),
    };
    let reply = ok(&employee);
    w.employees
        .put(&mut w.persist, &employee.id.clone(), employee);
    reply
}

/// `GET /employees`: filters `filter` (statuses), `employer_id`,
/// `external_customer_id`, `metadata_id` (case-insensitive substring of
/// `metadata["id"]`).
pub fn list(w: &mut World, call: &Call) -> Reply {
    let page = match page_of(call) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let statuses = match status_filter(call, "filter", PERSON_STATUSES) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let employer = match id_filter(call, "employer_id", "er_") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let customer = call.query("external_customer_id").filter(|s| !s.is_empty());
    let meta = call
        .query("metadata_id")
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let items: Vec<&Employee> = w
        .employees
        .ordered()
        .into_iter()
        .filter(|e| statuses.as_ref().is_none_or(|s| s.contains(&e.status)))
        .filter(|e| employer.is_none_or(|id| e.employer_id == id))
        .filter(|e| customer.is_none_or(|c| e.external_customer_id.as_deref() == Some(c)))
        .filter(|e| {
            meta.as_ref().is_none_or(|needle| {
                e.metadata
                    .as_ref()
                    .and_then(|m| m.get("id"))
                    .is_some_and(|v| v.to_lowercase().contains(needle.as_str()))
            })
        })
        .collect();
    paged(items, &page)
}

/// `GET /employees/{id}`.
pub fn get(w: &mut World, call: &Call) -> Reply {
    match w.employees.get(call.id()) {
        Some(e) => ok(e),
        None => not_found("Employee", call.id()),
    }
}

/// `PUT /employees/{id}`: given fields replace the old ones; the address
/// and metadata are replaced whole; the country never changes.
pub fn update(w: &mut World, call: &Call, now: DateTime<Utc>) -> Reply {
    let Some(old) = w.employees.get(call.id()) else {
        return not_found("Employee", call.id());
    };
    let country = old.home_address.country_code.clone();
    let today = now.date_naive();
    let req: UpdateEmployee = match parse(call.body, &schemas::UPDATE_EMPLOYEE, |v, e| {
        if let Some(a) = v.get("home_address").filter(|a| !a.is_null()) {
            schemas::check_state(a, Some(&country), "home_address", e);
        }
        schemas::check_metadata(v, e);
        schemas::check_phone(v, e);
        schemas::check_email(v, "email", e);
        schemas::check_dates(v, today, e);
    }) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut e = old.clone();
    let set = |slot: &mut String, v: Option<String>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut e.first_name, req.first_name);
    set(&mut e.last_name, req.last_name);
    set(&mut e.national_tax_id, req.national_tax_id);
    set(&mut e.phone_number, req.phone_number);
    set(&mut e.email, req.email);
    set(&mut e.start_on, req.start_on);
    if let Some(a) = req.home_address {
        e.home_address = a.replacing(&e.home_address);
    }
    if let Some(n) = req.nationality {
        e.nationality = Some(n);
    }
    if let Some(d) = req.earliest_benefits_start_date {
        e.earliest_benefits_start_date = Some(d);
    }
    if let Some(b) = req.bank_account {
        e.bank_account = Some(b.view());
    }
    if let Some(m) = req.metadata {
        e.metadata = Some(m);
    }
    let reply = ok(&e);
    w.employees.put(&mut w.persist, &e.id.clone(), e);
    reply
}

/// `POST /employees/{id}/offboard`: status `offboarding`, `offboard_on`
/// from the body. Offboarding twice is a 409 `conflict`.
pub fn offboard(w: &mut World, call: &Call) -> Reply {
    let Some(old) = w.employees.get(call.id()) else {
        return not_found("Employee", call.id());
    };
    if old.status == "offboarding" || old.status == "inactive" {
        return kota_problem(409, "conflict", "The employee is already offboarded.");
    }
    let req: OffboardEmployee = match parse(call.body, &schemas::OFFBOARD_EMPLOYEE, |_, _| {}) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut e = old.clone();
    e.status = "offboarding".into();
    e.offboard_on = Some(req.offboard_on);
    let reply = ok(&e);
    w.employees.put(&mut w.persist, &e.id.clone(), e);
    reply
}
