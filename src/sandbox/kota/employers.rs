//! `/kota/employers`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::schemas::{self, PERSON_STATUSES};
use super::types::{CreateEmployer, Employer, UpdateEmployer};
use super::{new_id, not_found, ok, page_of, paged, parse, status_filter, PLATFORM_ID};
use crate::sandbox::http::{kota_problem, Call, Reply};
use crate::sandbox::world::World;

/// `POST /employers`: new employers are `active`.
pub fn create(w: &mut World, call: &Call) -> Reply {
    let req: CreateEmployer = match parse(call.body, &schemas::CREATE_EMPLOYER, |v, e| {
        let address = v.get("legal_address").unwrap_or(&Value::Null);
        let country = address.get("country_code").and_then(Value::as_str);
        schemas::check_state(address, country, "legal_address", e);
        schemas::check_metadata(v, e);
        if let Some(contact) = v.get("contact") {
            let mut inner = Default::default();
            schemas::check_email(contact, "email", &mut inner);
            if !inner.is_empty() {
                crate::sandbox::validate::push(
                    e,
                    "contact.email",
                    "Must be a valid email address.",
                );
            }
        }
    }) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let employer = Employer {
        id: new_id("er_"),
        platform_id: PLATFORM_ID.into(),
        status: "active".into(),
        legal_name: req.legal_name,
        registration_number: req.registration_number,
        legal_address: req.legal_address,
        contact: req.contact,
        offboard_on: None,
        earliest_benefits_start_date: req.earliest_benefits_start_date,
        metadata: req.metadata,
        object: "employer".into(),
    };
    let reply = ok(&employer);
    w.employers
        .put(&mut w.persist, &employer.id.clone(), employer);
    reply
}

/// `GET /employers`, filter `filter` (statuses).
pub fn list(w: &mut World, call: &Call) -> Reply {
    let page = match page_of(call) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let statuses = match status_filter(call, "filter", PERSON_STATUSES) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let items: Vec<&Employer> = w
        .employers
        .ordered()
        .into_iter()
        .filter(|e| statuses.as_ref().is_none_or(|s| s.contains(&e.status)))
        .collect();
    paged(items, &page)
}

/// `GET /employers/{id}`.
pub fn get(w: &mut World, call: &Call) -> Reply {
    match w.employers.get(call.id()) {
        Some(e) => ok(e),
        None => not_found("Employer", call.id()),
    }
}

/// `PUT /employers/{id}`: given fields replace the old ones; addresses,
/// contact and metadata are replaced whole; the country never changes.
pub fn update(w: &mut World, call: &Call) -> Reply {
    let Some(old) = w.employers.get(call.id()) else {
        return not_found("Employer", call.id());
    };
    let country = old.legal_address.country_code.clone();
    let req: UpdateEmployer = match parse(call.body, &schemas::UPDATE_EMPLOYER, |v, e| {
        if let Some(a) = v.get("legal_address").filter(|a| !a.is_null()) {
            schemas::check_state(a, Some(&country), "legal_address", e);
        }
        schemas::check_metadata(v, e);
    }) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut e = old.clone();
    if let Some(v) = req.legal_name {
        e.legal_name = v;
    }
    if let Some(v) = req.registration_number {
        e.registration_number = Some(v);
    }
    if let Some(a) = req.legal_address {
        e.legal_address = a.replacing(&e.legal_address);
    }
    if let Some(c) = req.contact {
        e.contact = c;
    }
    if let Some(d) = req.earliest_benefits_start_date {
        e.earliest_benefits_start_date = Some(d);
    }
    if let Some(m) = req.metadata {
        e.metadata = Some(m);
    }
    let reply = ok(&e);
    w.employers.put(&mut w.persist, &e.id.clone(), e);
    reply
}

/// `POST /employers/{id}/offboard` (no body): status `offboarding`,
/// `offboard_on` now. Offboarding twice is a 409 `conflict`.
pub fn offboard(w: &mut World, call: &Call, now: DateTime<Utc>) -> Reply {
    let Some(old) = w.employers.get(call.id()) else {
        return not_found("Employer", call.id());
    };
    if old.status == "offboarding" || old.status == "inactive" {
        return kota_problem(409, "conflict", "The employer is already offboarded.");
    }
    let mut e = old.clone();
    e.status = "offboarding".into();
    e.offboard_on = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
    let reply = ok(&e);
    w.employers.put(&mut w.persist, &e.id.clone(), e);
    reply
}
