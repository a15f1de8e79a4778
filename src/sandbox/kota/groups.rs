//! `/kota/groups`, group membership and the eligibility pre-check.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::json;

use super::schemas::{self, GROUP_STATUSES};
use super::types::{
    AddEmployeeToGroup, CheckEligibility, CreateGroup, Employee, Group, Membership, UpdateGroup,
};
use super::{id_filter, new_id, not_found, ok, page_of, paged, parse, status_filter};
use crate::sandbox::http::{kota_problem, Call, Reply};
use crate::sandbox::validate::parse_date;
use crate::sandbox::world::World;

/// Minimum age for the eligibility pre-check.
const MINIMUM_AGE: i32 = 18;

/// `POST /groups`: new groups are `pending`, `undefined`, `manual`. An
/// unknown employer is a 404 (the spec lists one for this operation).
pub fn create(w: &mut World, call: &Call) -> Reply {
    let req: CreateGroup = match parse(call.body, &schemas::CREATE_GROUP, |_, _| {}) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if w.employers.get(&req.employer_id).is_none() {
        return not_found("Employer", &req.employer_id);
    }
    let group = Group {
        id: new_id("gr_"),
        name: req.name,
        description: req.description,
        status: "pending".into(),
        group_type: "undefined".into(),
        enrolment_type: "manual".into(),
        employer_id: req.employer_id,
        object: "group".into(),
        group_policy_ids: Vec::new(),
        group_quote_intent_ids: Vec::new(),
        group_policy_intent_ids: Vec::new(),
    };
    let reply = ok(&group);
    w.groups.put(&mut w.persist, &group.id.clone(), group);
    reply
}

/// `GET /groups`: filters `employer_id`, `status` (comma list).
pub fn list(w: &mut World, call: &Call) -> Reply {
    let page = match page_of(call) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let statuses = match status_filter(call, "status", GROUP_STATUSES) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let employer = match id_filter(call, "employer_id", "er_") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let items: Vec<&Group> = w
        .groups
        .ordered()
        .into_iter()
        .filter(|g| statuses.as_ref().is_none_or(|s| s.contains(&g.status)))
        .filter(|g| employer.is_none_or(|id| g.employer_id == id))
        .collect();
    paged(items, &page)
}

/// `GET /groups/{id}`.
pub fn get(w: &mut World, call: &Call) -> Reply {
    match w.groups.get(call.id()) {
        Some(g) => ok(g),
        None => not_found("Group", call.id()),
    }
}

/// `PUT /groups/{id}`: name and description.
pub fn update(w: &mut World, call: &Call) -> Reply {
    let Some(old) = w.groups.get(call.id()) else {
        return not_found("Group", call.id());
    };
    let req: UpdateGroup = match parse(call.body, &schemas::UPDATE_GROUP, |_, _| {}) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut g = old.clone();
    if let Some(n) = req.name {
        g.name = n;
    }
    if let Some(d) = req.description {
        g.description = Some(d);
    }
    let reply = ok(&g);
    w.groups.put(&mut w.persist, &g.id.clone(), g);
    reply
}

fn membership_key(group_id: &str, employee_id: &str) -> String {
    format!("{group_id}/{employee_id}")
}

/// `POST /groups/{id}/employees`. Refused: unknown group or employee (404),
/// employee of another employer (400 `employer_mismatch`), archived group
/// (400 `group_archived`), employee already in the group (409
/// `employee_already_in_group`).
pub fn add_employee(w: &mut World, call: &Call) -> Reply {
    let Some(group) = w.groups.get(call.id()) else {
        return not_found("Group", call.id());
    };
    let req: AddEmployeeToGroup = match parse(call.body, &schemas::ADD_EMPLOYEE_TO_GROUP, |_, _| {})
    {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Some(employee) = w.employees.get(&req.employee_id) else {
        return not_found("Employee", &req.employee_id);
    };
    if employee.employer_id != group.employer_id {
        return kota_problem(
            400,
            "employer_mismatch",
            "The employee belongs to another employer than the group.",
        );
    }
    if group.status == "archived" {
        return kota_problem(
            400,
            "group_archived",
            "Archived groups cannot accept new employees.",
        );
    }
    let key = membership_key(&group.id, &employee.id);
    if w.memberships.get(&key).is_some() {
        return kota_problem(
            409,
            "employee_already_in_group",
            "The employee is already assigned to this group.",
        );
    }
    let config = req.policy_configuration;
    let m = Membership {
        object: "group_employee".into(),
        id: employee.id.clone(),
        group_id: group.id.clone(),
        policies: Vec::new(),
        enrolments: Vec::new(),
        desired_policy_start_date: config
            .as_ref()
            .and_then(|c| c.desired_policy_start_date.clone()),
        enrolment_date: config.and_then(|c| c.enrolment_date),
        eligibility_status: "pending".into(),
        enrolment_status: "not_available".into(),
        scheduled_group_transitions: Vec::new(),
    };
    let reply = ok(&m);
    w.memberships.put(&mut w.persist, &key, m);
    reply
}

/// `GET /groups/{id}/employees`: filter `employee_id`.
pub fn list_employees(w: &mut World, call: &Call) -> Reply {
    if w.groups.get(call.id()).is_none() {
        return not_found("Group", call.id());
    }
    let page = match page_of(call) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let employee = match id_filter(call, "employee_id", "ee_") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let group_id = call.id();
    let items: Vec<&Membership> = w
        .memberships
        .ordered()
        .into_iter()
        .filter(|m| m.group_id == group_id)
        .filter(|m| employee.is_none_or(|id| m.id == id))
        .collect();
    paged(items, &page)
}

/// `POST /groups/{id}/eligibility_check`: a dry run, deterministic. The
/// employee is `ineligible` with one reason per rule it breaks, checked in
/// this order, else `eligible`:
///
/// - `employer_mismatch`: the employee belongs to another employer;
/// - `group_archived`: the group is archived;
/// - `offboarded`: the employee is `offboarding` or `inactive`;
/// - `not_started`: the employee's `start_on` is after today (UTC);
/// - `under_minimum_age`: the employee is under 18 today (UTC).
///
/// Unknown group or employee: 404. The provider is always "Sandbox Health"
/// (`pr_sandbox_health`); the plan id is `pl_` + the group's hex.
pub fn eligibility_check(w: &mut World, call: &Call, now: DateTime<Utc>) -> Reply {
    let Some(group) = w.groups.get(call.id()) else {
        return not_found("Group", call.id());
    };
    let req: CheckEligibility = match parse(call.body, &schemas::CHECK_ELIGIBILITY, |_, _| {}) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Some(employee) = w.employees.get(&req.employee_id) else {
        return not_found("Employee", &req.employee_id);
    };
    let reasons = ineligibility(group, employee, now.date_naive());
    let status = if reasons.is_empty() {
        "eligible"
    } else {
        "ineligible"
    };
    let reasons: Vec<_> = reasons
        .into_iter()
        .map(|(code, message)| json!({"code": code, "message": message}))
        .collect();
    Reply::json(
        200,
        &json!({
            "object": "eligibility_check",
            "eligibility_status": status,
            "reasons": reasons,
            "provider": {
                "id": "pr_sandbox_health",
                "name": "Sandbox Health",
                "description": "The benefits-sync sandbox's only insurance provider.",
                "logo_url": "https://sandbox.invalid/logos/sandbox-health.png",
            },
            "plan": {
                "id": format!("pl_{}", group.id.trim_start_matches("gr_")),
                "name": format!("{} plan", group.name),
                "description": "Sandbox plan of the group.",
            },
        }),
    )
}

/// The rules of [`eligibility_check`], as (code, message) pairs.
fn ineligibility(
    group: &Group,
    employee: &Employee,
    today: NaiveDate,
) -> Vec<(&'static str, &'static str)> {
    let mut reasons = Vec::new();
    if employee.employer_id != group.employer_id {
        reasons.push((
            "employer_mismatch",
            "The employee belongs to another employer than the group.",
        ));
    }
    if group.status == "archived" {
        reasons.push(("group_archived", "The group is archived."));
    }
    if employee.status == "offboarding" || employee.status == "inactive" {
        reasons.push((
            "offboarded",
            "The employee is being or has been offboarded.",
        ));
    }
    if parse_date(&employee.start_on).is_some_and(|d| d > today) {
        reasons.push((
            "not_started",
            "The employee has not started employment yet.",
        ));
    }
    if parse_date(&employee.date_of_birth).is_some_and(|dob| age_on(dob, today) < MINIMUM_AGE) {
        reasons.push((
            "under_minimum_age",
            "The employee is under the minimum age of 18.",
        ));
    }
    reasons
}

/// Whole years between `dob` and `today`.
fn age_on(dob: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - dob.year();
    if (today.month(), today.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).expect("date")
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(d("2000-06-15"), d("2018-06-14")), 17);
        assert_eq!(age_on(d("2000-06-15"), d("2018-06-15")), 18);
        assert_eq!(age_on(d("2000-02-29"), d("2018-02-28")), 17);
    }
}
