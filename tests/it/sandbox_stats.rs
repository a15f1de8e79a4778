//! `/_sandbox/stats` and `/_sandbox/reset` over real HTTP.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;
use benefits_sync::sandbox::SandboxConfig;

fn count(s: &Value, method: &str, route: &str, status: u16) -> u64 {
    s["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .find(|r| r["method"] == method && r["route"] == route && r["status"] == status)
        .and_then(|r| r["count"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn stats_count_objects_duplicates_requests_and_writes() {
    let sb = start_sandbox(instant_config()).await;
    // Two employers with one payroll ref: one duplicate.
    let er = create_employer(&sb, "E1").await;
    create_employer(&sb, "E1").await;
    create_employer(&sb, "E2").await;
    // Same employer and ref twice, same email with another ref once.
    create_employee(&sb, &er, "P1").await;
    let ee = create_employee(&sb, &er, "P1").await;
    let gid = create_group(&sb, &er, "Health").await;
    create_group(&sb, &er, "Health").await;
    kota(
        &sb,
        Method::POST,
        &format!("/groups/{gid}/employees"),
        Some(&json!({"employee_id": ee})),
    )
    .await;
    kota(&sb, Method::GET, &format!("/employers/{er}"), None).await;
    kota(&sb, Method::GET, "/employers/er_missing", None).await;

    let token = noyo_token(&sb).await;
    let conn = json!({"carrier_id": "8fac0992-933a-4743-8dab-0d606ef2569e",
        "group_data": {"carrier_group_id": "C1", "group_name": "N"}});
    noyo(
        &sb,
        &token,
        Method::POST,
        "/api/v1/group_connections",
        Some(&conn),
    )
    .await;
    noyo(
        &sb,
        &token,
        Method::POST,
        "/api/v1/group_connections",
        Some(&conn),
    )
    .await;
    ic(&sb, Method::POST, "/groups", Some(&json!({"name": "A"}))).await;
    ic(&sb, Method::POST, "/groups", Some(&json!({"name": "A"}))).await;

    let s = stats(&sb).await;
    assert_eq!(
        s["objects"],
        json!({"kota.employers": 3, "kota.employees": 2, "kota.groups": 2, "kota.memberships": 1,
               "noyo.groups": 2, "noyo.connections": 2, "ic.groups": 1})
    );
    assert_eq!(
        s["duplicates"],
        json!({"kota.employers": 1, "kota.employees": 1, "kota.groups": 1, "kota.memberships": 0,
               "noyo.connections": 1, "ic.groups": 0})
    );
    assert_eq!(count(&s, "POST", "/kota/employers", 200), 3);
    assert_eq!(count(&s, "GET", "/kota/employers/{id}", 200), 1);
    assert_eq!(count(&s, "GET", "/kota/employers/{id}", 404), 1);
    assert_eq!(count(&s, "POST", "/kota/groups/{id}/employees", 200), 1);
    assert_eq!(count(&s, "POST", "/noyo/auth/public/token", 200), 1);
    assert_eq!(count(&s, "POST", "/ic/groups", 201), 1);
    assert_eq!(count(&s, "POST", "/ic/groups", 409), 1);
    // 3 employers + 2 employees + 2 groups + 1 membership + 2 connections
    // + 2 IC posts; the token request is not a write.
    assert_eq!(s["write_requests"], 12);
    assert_eq!(
        s["faults"],
        json!({"latency": 0, "errors_5xx": 0, "rate_limited_429": 0, "dropped_after_commit": 0})
    );
    assert!(s["requests"]
        .as_array()
        .expect("list")
        .iter()
        .all(|r| !r["route"].as_str().unwrap_or("").starts_with("/_sandbox")));

    let resp = client()
        .post(format!("{}/_sandbox/reset", sb.base_url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status().as_u16(), 200);
    let s = stats(&sb).await;
    assert!(
        s["objects"]
            .as_object()
            .expect("obj")
            .values()
            .all(|v| v == 0),
        "{s}"
    );
    assert_eq!(s["requests"], json!([]));
    assert_eq!(s["write_requests"], 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_get_vendor_errors() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let (status, p) = kota(&sb, Method::GET, "/nothing", None).await;
    assert_eq!((status, p["error_code"].clone()), (404, json!("not_found")));
    let (status, p) = kota(&sb, Method::DELETE, "/employers", None).await;
    assert_eq!(status, 405, "{p}");
    let (status, e) = ic(&sb, Method::GET, "/nothing", None).await;
    assert_eq!((status, e["code"].clone()), (404, json!(404)));
    let s = stats(&sb).await;
    assert_eq!(s["requests"][0]["route"], "<unmatched>");
    sb.shutdown().await;
}
