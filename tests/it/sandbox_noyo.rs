//! The sandbox's Noyo API over real HTTP: tokens, group connections, list
//! filters, status progression and retry.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;
use benefits_sync::sandbox::SandboxConfig;

const CARRIER: &str = "8fac0992-933a-4743-8dab-0d606ef2569e";
const OTHER_CARRIER: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const CONNECTIONS: &str = "/api/v1/group_connections";

fn create_body(carrier: &str, cgid: &str) -> Value {
    json!({
        "carrier_id": carrier,
        "federal_ein": "123456789",
        "group_data": {"carrier_group_id": cgid, "group_name": format!("Group {cgid}")}
    })
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

#[tokio::test]
async fn token_auth_and_expiry() {
    let sb = start_sandbox(SandboxConfig {
        noyo_token_ttl: Duration::from_secs(1),
        ..instant_config()
    })
    .await;
    let bad = client()
        .post(sb.noyo_token_url())
        .basic_auth("sandbox-client", Some("wrong"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("send");
    let (status, body) = parts(bad).await;
    assert_eq!(status, 401);
    assert_eq!(body["status"], 401);
    assert!(body["message"].is_string());

    let resp = client()
        .post(sb.noyo_token_url())
        .basic_auth("sandbox-client", Some("sandbox-secret"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("send");
    let (status, tok) = parts(resp).await;
    assert_eq!(status, 200, "{tok}");
    assert_eq!(tok["token_type"], "bearer");
    assert_eq!(tok["expires_in"], 1);
    let token = tok["access_token"].as_str().expect("token");

    let (status, _) = noyo(&sb, token, Method::GET, CONNECTIONS, None).await;
    assert_eq!(status, 200);
    let (status, body) = noyo(&sb, "not-a-token", Method::GET, CONNECTIONS, None).await;
    assert_eq!((status, body["status"].clone()), (401, json!(401)));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = noyo(&sb, token, Method::GET, CONNECTIONS, None).await;
    assert_eq!(status, 401, "expired token");

    let wrong_grant = client()
        .post(sb.noyo_token_url())
        .basic_auth("sandbox-client", Some("sandbox-secret"))
        .json(&json!({"grant_type": "password"}))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_grant.status().as_u16(), 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn create_get_nested_and_list_filters() {
    let sb = start_sandbox(instant_config()).await;
    let token = noyo_token(&sb).await;
    let (status, c) = noyo(
        &sb,
        &token,
        Method::POST,
        CONNECTIONS,
        Some(&create_body(CARRIER, "G-1")),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(
        keys(&c),
        [
            "carrier_id",
            "completed",
            "created",
            "federal_ein",
            "group_data",
            "group_id",
            "id",
            "modified",
            "organization_id",
            "request_type",
            "setup_metadata",
            "setup_result",
            "status",
            "version"
        ]
    );
    for k in ["id", "group_id", "organization_id", "version", "carrier_id"] {
        assert!(is_uuid(&c[k]), "{k}: {c}");
    }
    assert_eq!(c["carrier_id"], CARRIER);
    assert_eq!(c["request_type"], "initial");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["setup_result"], json!({}));
    assert!(c["created"].is_i64() && c["modified"].is_i64());
    assert_eq!(
        c["group_data"],
        json!({"carrier_group_id": "G-1", "group_name": "Group G-1"})
    );
    let id = c["id"].as_str().expect("id");
    let group_id = c["group_id"].as_str().expect("group");

    let (status, got) = noyo(
        &sb,
        &token,
        Method::GET,
        &format!("{CONNECTIONS}/{id}"),
        None,
    )
    .await;
    assert_eq!((status, &got), (200, &c));
    let (status, missing) = noyo(
        &sb,
        &token,
        Method::GET,
        &format!("{CONNECTIONS}/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!((status, missing["status"].clone()), (404, json!(404)));

    // Another carrier for the same group.
    let nested = json!({"carrier_id": OTHER_CARRIER, "group_data": {"carrier_group_id": "G-1"}});
    let (status, n) = noyo(
        &sb,
        &token,
        Method::POST,
        &format!("/api/v1/groups/{group_id}/group_connections"),
        Some(&nested),
    )
    .await;
    assert_eq!(status, 201, "{n}");
    assert_eq!(n["group_id"], group_id);
    assert_eq!(n["carrier_id"], OTHER_CARRIER);
    assert!(n["setup_data"].is_object() && n["setup_metadata"].is_object());
    let (status, e) = noyo(
        &sb,
        &token,
        Method::POST,
        &format!("/api/v1/groups/{}/group_connections", uuid::Uuid::new_v4()),
        Some(&nested),
    )
    .await;
    assert_eq!((status, e["status"].clone()), (404, json!(404)));
    let with_name = json!({"carrier_id": OTHER_CARRIER, "group_data": {"carrier_group_id": "G", "group_name": "no"}});
    let (status, _) = noyo(
        &sb,
        &token,
        Method::POST,
        &format!("/api/v1/groups/{group_id}/group_connections"),
        Some(&with_name),
    )
    .await;
    assert_eq!(status, 400, "nested group_data has no group_name");

    noyo(
        &sb,
        &token,
        Method::POST,
        CONNECTIONS,
        Some(&create_body(CARRIER, "G-2-AR")),
    )
    .await;

    let list = |q: String| {
        let sb = &sb;
        let token = token.clone();
        async move { noyo(sb, &token, Method::GET, &format!("{CONNECTIONS}{q}"), None).await }
    };
    let (status, all) = list(String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(
        all["meta"],
        json!({"offset": 0, "page_num": 1, "page_size": 100, "total_records": 3})
    );
    assert_eq!(all["response"].as_array().map(Vec::len), Some(3));
    let (_, by_carrier) = list(format!("?carrier_id={CARRIER}")).await;
    assert_eq!(by_carrier["meta"]["total_records"], 2);
    let (_, by_cgid) = list(format!("?carrier_id={CARRIER}&carrier_group_id=G-1")).await;
    assert_eq!(by_cgid["meta"]["total_records"], 1);
    assert_eq!(by_cgid["response"][0]["id"], id);
    let (status, _) = list("?carrier_group_id=G-1".into()).await;
    assert_eq!(status, 400, "carrier_group_id needs a single carrier_id");
    let (_, by_status) = list("?status=action_required,unable_to_connect".into()).await;
    assert_eq!(by_status["meta"]["total_records"], 1);
    let (_, by_id) = list(format!("?id={id}")).await;
    assert_eq!(by_id["meta"]["total_records"], 1);
    let (_, paged) = list("?offset=2&page_size=2".into()).await;
    assert_eq!(
        paged["meta"],
        json!({"offset": 2, "page_num": 2, "page_size": 2, "total_records": 3})
    );
    assert_eq!(paged["response"].as_array().map(Vec::len), Some(1));
    let (status, _) = list("?status=bogus".into()).await;
    assert_eq!(status, 400);
    let (_, of_group) = noyo(
        &sb,
        &token,
        Method::GET,
        &format!("/api/v1/groups/{group_id}/group_connections"),
        None,
    )
    .await;
    assert_eq!(of_group["meta"]["total_records"], 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn validation_errors_use_noyo_format() {
    let sb = start_sandbox(instant_config()).await;
    let token = noyo_token(&sb).await;
    let cases = vec![
        json!({"carrier_id": CARRIER, "group_data": {"carrier_group_id": "G"}}),
        json!({"carrier_id": "not-a-uuid", "group_data": {"carrier_group_id": "G", "group_name": "N"}}),
        json!({"carrier_id": CARRIER, "group_data": {"carrier_group_id": "", "group_name": "N"}}),
        json!({"carrier_id": CARRIER, "group_data": {"carrier_group_id": "G", "group_name": "N"}, "extra": 1}),
        json!({"carrier_id": CARRIER, "data_exchange_configuration": "fax", "group_data": {"carrier_group_id": "G", "group_name": "N"}}),
    ];
    for body in cases {
        let (status, e) = noyo(&sb, &token, Method::POST, CONNECTIONS, Some(&body)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(e["status"], 400);
        assert!(e["message"].is_string(), "{e}");
    }
    assert_eq!(stats(&sb).await["objects"]["noyo.connections"], 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn statuses_progress_over_time() {
    let sb = start_sandbox(SandboxConfig {
        noyo_status_step: Duration::from_millis(150),
        ..SandboxConfig::default()
    })
    .await;
    let token = noyo_token(&sb).await;
    let (_, c) = noyo(
        &sb,
        &token,
        Method::POST,
        CONNECTIONS,
        Some(&create_body(CARRIER, "G-1")),
    )
    .await;
    assert_eq!(c["status"], "created");
    assert!(c.get("completed").is_none());
    let id = c["id"].as_str().expect("id");
    let order = [
        "created",
        "processing",
        "noyo_review",
        "waiting_on_carrier",
        "completed",
    ];
    let mut last = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, now) = noyo(
            &sb,
            &token,
            Method::GET,
            &format!("{CONNECTIONS}/{id}"),
            None,
        )
        .await;
        let s = now["status"].as_str().expect("status");
        let pos = order.iter().position(|o| *o == s).expect("known status");
        assert!(pos >= last, "went back from {} to {s}", order[last]);
        last = pos;
        if s == "completed" {
            assert!(now["completed"].is_i64());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn outcomes_by_carrier_group_id_and_retry() {
    let sb = start_sandbox(instant_config()).await;
    let token = noyo_token(&sb).await;
    let (_, ar) = noyo(
        &sb,
        &token,
        Method::POST,
        CONNECTIONS,
        Some(&create_body(CARRIER, "G-9-AR")),
    )
    .await;
    assert_eq!(ar["status"], "action_required");
    let (_, action) = noyo(
        &sb,
        &token,
        Method::POST,
        CONNECTIONS,
        Some(&create_body(CARRIER, "needs-action-1")),
    )
    .await;
    assert_eq!(action["status"], "action_required");
    let (_, utc) = noyo(
        &sb,
        &token,
        Method::POST,
        CONNECTIONS,
        Some(&create_body(CARRIER, "G-7-UTC")),
    )
    .await;
    assert_eq!(utc["status"], "unable_to_connect");

    let ar_id = ar["id"].as_str().expect("id");
    let (status, e) = noyo(
        &sb,
        &token,
        Method::PUT,
        &format!("{CONNECTIONS}/{ar_id}/retry"),
        Some(&json!({})),
    )
    .await;
    assert_eq!((status, e["status"].clone()), (409, json!(409)), "{e}");

    let utc_id = utc["id"].as_str().expect("id");
    let (status, e) = noyo(
        &sb,
        &token,
        Method::PUT,
        &format!("{CONNECTIONS}/{utc_id}/retry"),
        Some(&json!({"bogus": 1})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let retry = json!({"employer_email_address": "hr@acme.example"});
    let (status, r) = noyo(
        &sb,
        &token,
        Method::PUT,
        &format!("{CONNECTIONS}/{utc_id}/retry"),
        Some(&retry),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["group_data"]["employer_email_address"], "hr@acme.example");
    assert_ne!(r["version"], utc["version"]);
    let (_, got) = noyo(
        &sb,
        &token,
        Method::GET,
        &format!("{CONNECTIONS}/{utc_id}"),
        None,
    )
    .await;
    assert_eq!(got["status"], "completed");
    sb.shutdown().await;
}
