//! The sandbox's Kota API over real HTTP: endpoints, response shapes,
//! validation, auth, pagination, business rules and idempotency.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;
use benefits_sync::sandbox::SandboxConfig;

const EMPLOYER_KEYS: &[&str] = &[
    "contact",
    "earliest_benefits_start_date",
    "id",
    "legal_address",
    "legal_name",
    "metadata",
    "object",
    "offboard_on",
    "platform_id",
    "registration_number",
    "status",
];
const EMPLOYEE_KEYS: &[&str] = &[
    "bank_account",
    "date_of_birth",
    "earliest_benefits_start_date",
    "email",
    "employer_id",
    "external_customer_id",
    "first_name",
    "home_address",
    "id",
    "last_name",
    "metadata",
    "national_tax_id",
    "nationality",
    "object",
    "offboard_on",
    "phone_number",
    "platform_id",
    "sex_at_birth",
    "start_on",
    "status",
];
const PAGE_KEYS: &[&str] = &[
    "has_next_page",
    "has_previous_page",
    "items",
    "page",
    "page_size",
    "total_count",
];

fn assert_problem(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    for k in ["type", "title", "detail"] {
        assert!(body[k].is_string(), "{k} missing in {body}");
    }
}

#[tokio::test]
async fn employers_create_get_update_list_offboard() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let (status, e) = kota(&sb, Method::POST, "/employers", Some(&employer_body("E1"))).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(keys(&e), EMPLOYER_KEYS);
    assert!(is_id(&e["id"], "er_"), "{e}");
    assert!(e["platform_id"]
        .as_str()
        .is_some_and(|p| p.starts_with("pt_")));
    assert_eq!(e["object"], "employer");
    assert_eq!(e["status"], "active");
    assert_eq!(e["legal_name"], "Acme E1 Ltd");
    assert_eq!(e["legal_address"]["country_code"], "ie");
    assert_eq!(e["legal_address"]["line3"], Value::Null);
    assert_eq!(e["metadata"], json!({"id": "E1"}));
    assert_eq!(e["offboard_on"], Value::Null);
    let id = e["id"].as_str().expect("id");

    let (status, got) = kota(&sb, Method::GET, &format!("/employers/{id}"), None).await;
    assert_eq!((status, &got), (200, &e));

    // Whole-object replacement of the address; the country is kept.
    let update = json!({
        "legal_name": "Acme Renamed",
        "legal_address": {"line1": "9 New Street", "city": "Galway", "postal_code": "H91"},
        "metadata": {"id": "E1", "tier": "gold"}
    });
    let (status, u) = kota(&sb, Method::PUT, &format!("/employers/{id}"), Some(&update)).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["legal_name"], "Acme Renamed");
    assert_eq!(
        u["legal_address"],
        json!({"line1": "9 New Street", "line2": null, "line3": null, "city": "Galway",
               "state": null, "postal_code": "H91", "country_code": "ie"})
    );
    assert_eq!(u["contact"], e["contact"], "fields not given are unchanged");
    assert_eq!(u["metadata"], json!({"id": "E1", "tier": "gold"}));

    // The country cannot change: it is an unknown field in an update.
    let bad = json!({"legal_address": {"line1": "x", "city": "y", "postal_code": "z", "country_code": "gb"}});
    let (status, p) = kota(&sb, Method::PUT, &format!("/employers/{id}"), Some(&bad)).await;
    assert_problem(status, &p, 400, "validation_error");
    assert!(p["errors"]["legal_address.country_code"].is_array(), "{p}");

    let (status, list) = kota(&sb, Method::GET, "/employers", None).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&list), PAGE_KEYS);
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["items"][0]["id"], id);

    let (status, o) = kota(
        &sb,
        Method::POST,
        &format!("/employers/{id}/offboard"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["status"], "offboarding");
    assert!(o["offboard_on"].is_string());
    let (status, again) = kota(
        &sb,
        Method::POST,
        &format!("/employers/{id}/offboard"),
        None,
    )
    .await;
    assert_problem(status, &again, 409, "conflict");

    let (status, filtered) = kota(&sb, Method::GET, "/employers?filter=active", None).await;
    assert_eq!((status, filtered["total_count"].clone()), (200, json!(0)));

    let (status, missing) = kota(&sb, Method::GET, "/employers/er_nope", None).await;
    assert_problem(status, &missing, 404, "not_found");
    sb.shutdown().await;
}

#[tokio::test]
async fn employees_create_get_update_filter_offboard() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let er = create_employer(&sb, "E1").await;
    let other = create_employer(&sb, "E2").await;
    let (status, e) = kota(
        &sb,
        Method::POST,
        "/employees",
        Some(&employee_body(&er, "P-Alpha")),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(keys(&e), EMPLOYEE_KEYS);
    assert!(is_id(&e["id"], "ee_"), "{e}");
    assert_eq!(e["object"], "employee");
    assert_eq!(e["employer_id"], er.as_str());
    assert_eq!(e["status"], "active");
    assert_eq!(e["bank_account"], json!({"account_number_last4": "5678"}));
    assert_eq!(e["home_address"]["country_code"], "ie");
    let id = e["id"].as_str().expect("id").to_string();
    create_employee(&sb, &er, "P-Beta").await;
    create_employee(&sb, &other, "P-alphabet").await;

    let (status, got) = kota(&sb, Method::GET, &format!("/employees/{id}"), None).await;
    assert_eq!((status, &got), (200, &e));

    let (_, by_employer) = kota(
        &sb,
        Method::GET,
        &format!("/employees?employer_id={er}"),
        None,
    )
    .await;
    assert_eq!(by_employer["total_count"], 2);
    // metadata_id: case-insensitive partial match.
    let (_, by_meta) = kota(&sb, Method::GET, "/employees?metadata_id=alpha", None).await;
    assert_eq!(by_meta["total_count"], 2, "{by_meta}");
    let (_, both) = kota(
        &sb,
        Method::GET,
        &format!("/employees?metadata_id=ALPHA&employer_id={er}"),
        None,
    )
    .await;
    assert_eq!(both["total_count"], 1);
    assert_eq!(both["items"][0]["id"], id.as_str());
    let (status, bad) = kota(&sb, Method::GET, "/employees?employer_id=nope", None).await;
    assert_problem(status, &bad, 400, "validation_error");

    let update = json!({"last_name": "Murray", "home_address": {"line1": "3 Quay", "city": "Cork", "postal_code": "T12"}});
    let (status, u) = kota(&sb, Method::PUT, &format!("/employees/{id}"), Some(&update)).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["last_name"], "Murray");
    assert_eq!(u["first_name"], "Grace");
    assert_eq!(u["home_address"]["line1"], "3 Quay");
    assert_eq!(u["home_address"]["country_code"], "ie");

    let (status, p) = kota(
        &sb,
        Method::POST,
        &format!("/employees/{id}/offboard"),
        Some(&json!({})),
    )
    .await;
    assert_problem(status, &p, 400, "validation_error");
    assert!(
        p["errors"]["offboard_on"].is_array() && p["errors"]["offboard_reason"].is_array(),
        "{p}"
    );
    let (status, p) = kota(
        &sb,
        Method::POST,
        &format!("/employees/{id}/offboard"),
        Some(&json!({"offboard_on": "2024-13-01", "offboard_reason": "left"})),
    )
    .await;
    assert_problem(status, &p, 400, "validation_error");
    let body = json!({"offboard_on": "2030-01-31T00:00:00Z", "offboard_reason": "resigned"});
    let (status, o) = kota(
        &sb,
        Method::POST,
        &format!("/employees/{id}/offboard"),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["status"], "offboarding");
    assert_eq!(o["offboard_on"], "2030-01-31T00:00:00Z");
    let (_, offboarding) = kota(&sb, Method::GET, "/employees?filter=offboarding", None).await;
    assert_eq!(offboarding["total_count"], 1);

    // Unknown employer: a validation error on employer_id.
    let (status, p) = kota(
        &sb,
        Method::POST,
        "/employees",
        Some(&employee_body("er_missing", "X")),
    )
    .await;
    assert_problem(status, &p, 400, "validation_error");
    assert!(p["errors"]["employer_id"].is_array(), "{p}");
    sb.shutdown().await;
}

#[tokio::test]
async fn validation_errors_are_problem_json_with_field_errors() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let er = create_employer(&sb, "E1").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "missing required",
            {
                let mut b = employer_body("X");
                b.as_object_mut().expect("obj").remove("legal_name");
                b
            },
            "legal_name",
        ),
        (
            "unknown field",
            {
                let mut b = employer_body("X");
                b["colour"] = json!("blue");
                b
            },
            "colour",
        ),
        (
            "upper-case country",
            {
                let mut b = employer_body("X");
                b["legal_address"]["country_code"] = json!("IE");
                b
            },
            "legal_address.country_code",
        ),
        (
            "us needs a state",
            {
                let mut b = employer_body("X");
                b["legal_address"]["country_code"] = json!("us");
                b
            },
            "legal_address.state",
        ),
        (
            "metadata value not a string",
            {
                let mut b = employer_body("X");
                b["metadata"] = json!({"id": 7});
                b
            },
            "metadata.id",
        ),
    ];
    for (what, body, field) in cases {
        let resp = client()
            .post(format!("{}/employers", sb.kota_url()))
            .bearer_auth("pk_test_other")
            .json(&body)
            .send()
            .await
            .expect("send");
        let ct = resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .to_string();
        let (status, p) = parts(resp).await;
        assert_eq!(ct, "application/problem+json", "{what}");
        assert_problem(status, &p, 400, "validation_error");
        assert!(p["errors"][field].is_array(), "{what}: {p}");
    }
    let employee_cases: Vec<(&str, &str, Value)> = vec![
        ("bad enum", "sex_at_birth", json!("other")),
        ("bad date", "date_of_birth", json!("1990-02-30")),
        ("future birth", "date_of_birth", json!("2999-01-01")),
        ("bad phone", "phone_number", json!("0861234567")),
        ("bad id pattern", "employer_id", json!("emp_1")),
        ("wrong type", "first_name", json!(42)),
    ];
    for (what, field, value) in employee_cases {
        let mut body = employee_body(&er, "X");
        body[field] = value;
        let (status, p) = kota(&sb, Method::POST, "/employees", Some(&body)).await;
        assert_problem(status, &p, 400, "validation_error");
        assert!(p["errors"][field].is_array(), "{what}: {p}");
    }
    let resp = client()
        .post(format!("{}/employers", sb.kota_url()))
        .bearer_auth("pk_test_x")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    let (status, p) = parts(resp).await;
    assert_problem(status, &p, 400, "validation_error");
    sb.shutdown().await;
}

#[tokio::test]
async fn unauthorised_requests_get_401_problem() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    for auth in [None, Some("pk_live_real"), Some("pk_test_")] {
        let mut req = client().get(format!("{}/employers", sb.kota_url()));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let (status, p) = parts(req.send().await.expect("send")).await;
        assert_problem(status, &p, 401, "unauthorized");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn pagination_pages_and_limits() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    for i in 0..25 {
        create_employer(&sb, &format!("E{i:02}")).await;
    }
    let (_, first) = kota(&sb, Method::GET, "/employers", None).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(10));
    assert_eq!(first["page"], 1);
    assert_eq!(first["page_size"], 10);
    assert_eq!(first["total_count"], 25);
    assert_eq!(first["has_next_page"], true);
    assert_eq!(first["has_previous_page"], false);
    assert_eq!(first["items"][0]["metadata"]["id"], "E00", "oldest first");
    let (_, last) = kota(&sb, Method::GET, "/employers?page=3&page_size=10", None).await;
    assert_eq!(last["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(last["items"][4]["metadata"]["id"], "E24");
    assert_eq!(last["has_next_page"], false);
    assert_eq!(last["has_previous_page"], true);
    let (_, all) = kota(&sb, Method::GET, "/employers?page_size=100", None).await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(25));
    assert_eq!(all["page_size"], 25);
    for q in ["page_size=101", "page_size=0", "page=0", "page=x"] {
        let (status, p) = kota(&sb, Method::GET, &format!("/employers?{q}"), None).await;
        assert_problem(status, &p, 400, "validation_error");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn groups_and_membership_rules() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let er = create_employer(&sb, "E1").await;
    let other = create_employer(&sb, "E2").await;
    let (status, g) = kota(
        &sb,
        Method::POST,
        "/groups",
        Some(&json!({"employer_id": er, "name": "Health", "description": "Main plan"})),
    )
    .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(
        keys(&g),
        [
            "description",
            "employer_id",
            "enrolment_type",
            "group_policy_ids",
            "group_policy_intent_ids",
            "group_quote_intent_ids",
            "group_type",
            "id",
            "name",
            "object",
            "status"
        ]
    );
    assert!(is_id(&g["id"], "gr_"));
    assert_eq!(g["object"], "group");
    assert_eq!(g["status"], "pending");
    assert_eq!(g["group_type"], "undefined");
    assert_eq!(g["enrolment_type"], "manual");
    assert_eq!(g["group_policy_ids"], json!([]));
    let gid = g["id"].as_str().expect("id").to_string();
    create_group(&sb, &other, "Other health").await;

    let (status, p) = kota(
        &sb,
        Method::POST,
        "/groups",
        Some(&json!({"employer_id": "er_missing", "name": "x"})),
    )
    .await;
    assert_problem(status, &p, 404, "not_found");

    let (_, got) = kota(&sb, Method::GET, &format!("/groups/{gid}"), None).await;
    assert_eq!(got, g);
    let (status, u) = kota(
        &sb,
        Method::PUT,
        &format!("/groups/{gid}"),
        Some(&json!({"name": "Health+"})),
    )
    .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["name"], "Health+");
    assert_eq!(u["description"], "Main plan");
    let (_, mine) = kota(&sb, Method::GET, &format!("/groups?employer_id={er}"), None).await;
    assert_eq!(mine["total_count"], 1);
    let (_, pending) = kota(&sb, Method::GET, "/groups?status=pending,ready", None).await;
    assert_eq!(pending["total_count"], 2);
    let (status, p) = kota(&sb, Method::GET, "/groups?status=gone", None).await;
    assert_problem(status, &p, 400, "validation_error");

    let ee = create_employee(&sb, &er, "P1").await;
    let stranger = create_employee(&sb, &other, "P2").await;
    let add = |e: &str| {
        json!({"employee_id": e, "create_enrolment_intents": false,
        "policy_configuration": {"desired_policy_start_date": "2030-01-01"}})
    };
    let (status, m) = kota(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add(&ee)),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        keys(&m),
        [
            "desired_policy_start_date",
            "eligibility_status",
            "enrolment_date",
            "enrolment_status",
            "enrolments",
            "group_id",
            "id",
            "object",
            "policies",
            "scheduled_group_transitions"
        ]
    );
    assert_eq!(m["object"], "group_employee");
    assert_eq!(m["id"], ee.as_str());
    assert_eq!(m["group_id"], gid.as_str());
    assert_eq!(m["desired_policy_start_date"], "2030-01-01");
    assert_eq!(m["eligibility_status"], "pending");

    let (status, p) = kota(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add(&ee)),
    )
    .await;
    assert_problem(status, &p, 409, "employee_already_in_group");
    let (status, p) = kota(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add(&stranger)),
    )
    .await;
    assert_problem(status, &p, 400, "employer_mismatch");
    let (status, p) = kota(
        &sb,
        Method::POST,
        "/groups/gr_missing/employees",
        Some(&add(&ee)),
    )
    .await;
    assert_problem(status, &p, 404, "not_found");
    let (status, p) = kota(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add("ee_missing")),
    )
    .await;
    assert_problem(status, &p, 404, "not_found");

    let (_, members) = kota(&sb, Method::GET, &format!("/groups/{gid}/employees"), None).await;
    assert_eq!(members["total_count"], 1);
    assert_eq!(members["items"][0], m);
    let (_, filtered) = kota(
        &sb,
        Method::GET,
        &format!("/groups/{gid}/employees?employee_id={stranger}"),
        None,
    )
    .await;
    assert_eq!(filtered["total_count"], 0);

    // Archived groups refuse new members.
    let archived = client()
        .post(format!(
            "{}/_sandbox/kota/groups/{gid}/archive",
            sb.base_url()
        ))
        .send()
        .await
        .expect("archive");
    assert_eq!(archived.status().as_u16(), 200);
    let ee2 = create_employee(&sb, &er, "P3").await;
    let (status, p) = kota(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add(&ee2)),
    )
    .await;
    assert_problem(status, &p, 400, "group_archived");
    let (_, archived_list) = kota(&sb, Method::GET, "/groups?status=archived", None).await;
    assert_eq!(archived_list["total_count"], 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn eligibility_check_rules() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let er = create_employer(&sb, "E1").await;
    let other = create_employer(&sb, "E2").await;
    let gid = create_group(&sb, &er, "Health").await;
    let check = |e: &str| json!({"employee_id": e});
    let path = format!("/groups/{gid}/eligibility_check");

    let ok = create_employee(&sb, &er, "OK").await;
    let (status, r) = kota(&sb, Method::POST, &path, Some(&check(&ok))).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        keys(&r),
        [
            "eligibility_status",
            "object",
            "plan",
            "provider",
            "reasons"
        ]
    );
    assert_eq!(r["object"], "eligibility_check");
    assert_eq!(r["eligibility_status"], "eligible");
    assert_eq!(r["reasons"], json!([]));
    assert_eq!(
        keys(&r["provider"]),
        ["description", "id", "logo_url", "name"]
    );
    assert!(r["provider"]["id"]
        .as_str()
        .is_some_and(|s| s.starts_with("pr_")));
    assert_eq!(keys(&r["plan"]), ["description", "id", "name"]);
    assert!(r["plan"]["id"]
        .as_str()
        .is_some_and(|s| s.starts_with("pl_")));

    let mut young = employee_body(&er, "YOUNG");
    let today = chrono::Utc::now().date_naive();
    young["date_of_birth"] = json!(today.with_year_sub(10));
    young["start_on"] = json!("2999-01-01");
    let (status, y) = kota(&sb, Method::POST, "/employees", Some(&young)).await;
    assert_eq!(status, 200, "{y}");
    let (_, r) = kota(
        &sb,
        Method::POST,
        &path,
        Some(&check(y["id"].as_str().expect("id"))),
    )
    .await;
    assert_eq!(r["eligibility_status"], "ineligible");
    let codes: Vec<&str> = r["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|x| x["code"].as_str())
        .collect();
    assert_eq!(codes, ["not_started", "under_minimum_age"]);
    assert!(r["reasons"][0]["message"].is_string());

    let stranger = create_employee(&sb, &other, "S").await;
    let (_, r) = kota(&sb, Method::POST, &path, Some(&check(&stranger))).await;
    assert_eq!(r["reasons"][0]["code"], "employer_mismatch");

    let off = json!({"offboard_on": "2030-01-01T00:00:00Z", "offboard_reason": "left"});
    kota(
        &sb,
        Method::POST,
        &format!("/employees/{ok}/offboard"),
        Some(&off),
    )
    .await;
    let (_, r) = kota(&sb, Method::POST, &path, Some(&check(&ok))).await;
    assert_eq!(r["reasons"][0]["code"], "offboarded");

    let (status, p) = kota(&sb, Method::POST, &path, Some(&check("ee_missing"))).await;
    assert_problem(status, &p, 404, "not_found");
    let (status, _) = kota(
        &sb,
        Method::POST,
        "/groups/gr_missing/eligibility_check",
        Some(&check(&ok)),
    )
    .await;
    assert_eq!(status, 404);
    // A dry run: nobody joined.
    let (_, members) = kota(&sb, Method::GET, &format!("/groups/{gid}/employees"), None).await;
    assert_eq!(members["total_count"], 0);
    sb.shutdown().await;
}

trait YearsAgo {
    fn with_year_sub(self, years: i32) -> String;
}
impl YearsAgo for chrono::NaiveDate {
    fn with_year_sub(self, years: i32) -> String {
        use chrono::Datelike;
        let d = self.with_day(1).expect("day 1");
        d.with_year(d.year() - years)
            .expect("date")
            .format("%Y-%m-%d")
            .to_string()
    }
}

#[tokio::test]
async fn idempotency_replays_and_conflicts() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let body = employer_body("IDEM");
    let (s1, r1) = kota_with(&sb, Method::POST, "/employers", Some(&body), Some("key-1")).await;
    let (s2, r2) = kota_with(&sb, Method::POST, "/employers", Some(&body), Some("key-1")).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(r1, r2, "same key and body: same response");
    let (_, list) = kota(&sb, Method::GET, "/employers", None).await;
    assert_eq!(list["total_count"], 1, "no second object");

    let (status, p) = kota_with(
        &sb,
        Method::POST,
        "/employers",
        Some(&employer_body("OTHER")),
        Some("key-1"),
    )
    .await;
    assert_problem(status, &p, 409, "idempotency_error");

    // Failed requests are not stored: the key stays usable.
    let mut bad = employer_body("LATER");
    bad["bogus"] = json!(1);
    let (status, _) = kota_with(&sb, Method::POST, "/employers", Some(&bad), Some("key-2")).await;
    assert_eq!(status, 400);
    let (status, _) = kota_with(
        &sb,
        Method::POST,
        "/employers",
        Some(&employer_body("LATER")),
        Some("key-2"),
    )
    .await;
    assert_eq!(status, 200);

    // Membership and offboarding honour keys too.
    let er = r1["id"].as_str().expect("id").to_string();
    let ee = create_employee(&sb, &er, "P1").await;
    let gid = create_group(&sb, &er, "G").await;
    let add = json!({"employee_id": ee});
    let (a, m1) = kota_with(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add),
        Some("m-1"),
    )
    .await;
    let (b, m2) = kota_with(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&add),
        Some("m-1"),
    )
    .await;
    assert_eq!(
        (a, b),
        (200, 200),
        "replay instead of employee_already_in_group"
    );
    assert_eq!(m1, m2);
    let off = json!({"offboard_on": "2030-01-01T00:00:00Z", "offboard_reason": "left"});
    let (a, o1) = kota_with(
        &sb,
        Method::POST,
        &format!("/employees/{ee}/offboard"),
        Some(&off),
        Some("o-1"),
    )
    .await;
    let (b, o2) = kota_with(
        &sb,
        Method::POST,
        &format!("/employees/{ee}/offboard"),
        Some(&off),
        Some("o-1"),
    )
    .await;
    assert_eq!((a, b), (200, 200));
    assert_eq!(o1, o2);
    let (a, _) = kota_with(
        &sb,
        Method::POST,
        &format!("/employers/{er}/offboard"),
        None,
        Some("eo-1"),
    )
    .await;
    let (b, _) = kota_with(
        &sb,
        Method::POST,
        &format!("/employers/{er}/offboard"),
        None,
        Some("eo-1"),
    )
    .await;
    assert_eq!((a, b), (200, 200));
    // Same key on another endpoint is another request.
    let (status, p) = kota_with(
        &sb,
        Method::POST,
        "/employees",
        Some(&employee_body(&er, "Q")),
        Some("key-1"),
    )
    .await;
    assert_problem(status, &p, 409, "idempotency_error");
    sb.shutdown().await;
}
