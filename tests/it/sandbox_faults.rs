//! Fault injection over real HTTP: latency, 5xx, 429 and commit-then-drop.
//! Timing assertions are lower bounds only, so a loaded machine passes.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::*;
use benefits_sync::sandbox::{FaultConfig, SandboxConfig, SANDBOX_KOTA_KEY};

#[tokio::test]
async fn latency_delays_requests() {
    let sb = start_sandbox(SandboxConfig {
        faults: FaultConfig {
            latency_ms: 300,
            latency_jitter_ms: 50,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let started = Instant::now();
    let (status, _) = ic(&sb, Method::GET, "/groups", None).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Control routes are never delayed or faulted.
    assert_eq!(stats(&sb).await["faults"]["latency"], 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn error_rate_answers_5xx_in_vendor_format_without_committing() {
    let sb = start_sandbox(SandboxConfig {
        faults: FaultConfig {
            error_rate: 1.0,
            seed: 42,
            ..FaultConfig::default()
        },
        ..instant_config()
    })
    .await;
    let (status, p) = kota(&sb, Method::POST, "/employers", Some(&employer_body("E"))).await;
    assert!(status == 500 || status == 503, "{status}");
    assert_eq!(p["status"], status);
    assert!(p["error_code"].is_string(), "{p}");
    let (status, e) = ic(&sb, Method::POST, "/groups", Some(&json!({"name": "A"}))).await;
    assert!(status == 500 || status == 503);
    assert_eq!(e["code"], status);
    let resp = client()
        .post(sb.noyo_token_url())
        .basic_auth("sandbox-client", Some("sandbox-secret"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("send");
    let (status, e) = parts(resp).await;
    assert!(status == 500 || status == 503);
    assert_eq!(e["status"], status);
    assert!(e["message"].is_string());
    let s = stats(&sb).await;
    assert_eq!(s["objects"]["kota.employers"], 0);
    assert_eq!(s["objects"]["ic.groups"], 0);
    assert_eq!(s["faults"]["errors_5xx"], 3);
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_api() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    set_faults(&sb, &json!({"global": {"rate_limit": 2}})).await;
    let mut limited = None;
    for _ in 0..20 {
        let resp = client()
            .get(format!("{}/employers", sb.kota_url()))
            .bearer_auth(SANDBOX_KOTA_KEY)
            .send()
            .await
            .expect("send");
        if resp.status().as_u16() == 429 {
            let retry_after: u64 = resp.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("integer seconds");
            assert!(retry_after >= 1);
            limited = Some(parts(resp).await.1);
            break;
        }
    }
    let p = limited.expect("some request was rate limited");
    assert_eq!(p["error_code"], "rate_limited");
    assert_eq!(p["status"], 429);
    // Each API has its own budget.
    let (status, _) = ic(&sb, Method::GET, "/groups", None).await;
    assert_eq!(status, 200);
    assert!(stats(&sb).await["faults"]["rate_limited_429"].as_u64() >= Some(1));
    sb.shutdown().await;
}

#[tokio::test]
async fn drop_after_commit_closes_the_connection_but_keeps_the_object() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    set_faults(
        &sb,
        &json!({"routes": {"POST /kota/employers": {"drop_rate": 1.0}, "POST /ic/groups": {"drop_rate": 1.0}}}),
    )
    .await;
    let result = client()
        .post(format!("{}/employers", sb.kota_url()))
        .bearer_auth(SANDBOX_KOTA_KEY)
        .json(&employer_body("DROP"))
        .send()
        .await;
    let err = result.expect_err("no response at all");
    assert!(!err.is_status(), "{err:?}");
    let result = client()
        .post(format!("{}/groups", sb.ic_url()))
        .bearer_auth("ic_test_x")
        .json(&json!({"name": "Dropped"}))
        .send()
        .await;
    assert!(result.is_err());

    // The writes were committed.
    let (_, list) = kota(&sb, Method::GET, "/employers", None).await;
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["items"][0]["metadata"]["id"], "DROP");
    let (_, groups) = ic(&sb, Method::GET, "/groups", None).await;
    assert_eq!(groups[0]["name"], "Dropped");
    // Other routes are unaffected; reads never drop.
    let er = list["items"][0]["id"].as_str().expect("id");
    create_employee(&sb, er, "P1").await;
    let s = stats(&sb).await;
    assert_eq!(s["faults"]["dropped_after_commit"], 2);

    let plan = client()
        .get(format!("{}/_sandbox/faults", sb.base_url()))
        .send()
        .await
        .expect("send");
    let (_, plan) = parts(plan).await;
    assert_eq!(plan["routes"]["POST /kota/employers"]["drop_rate"], 1.0);
    sb.shutdown().await;
}

#[tokio::test]
async fn fault_plan_is_validated_and_control_routes_are_never_faulted() {
    let sb = start_sandbox(SandboxConfig {
        faults: FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    for bad in [
        json!({"global": {"error_rate": 2.0}}),
        json!({"routes": {"POST /kota/nothing": {}}}),
        json!({"global": {"latency": 5}}),
    ] {
        let resp = client()
            .put(format!("{}/_sandbox/faults", sb.base_url()))
            .json(&bad)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
    }
    let s = stats(&sb).await;
    assert!(
        s["objects"].is_object(),
        "stats served despite error_rate 1"
    );
    // Reset restores the start-up plan.
    set_faults(&sb, &json!({"global": {}})).await;
    let (status, _) = ic(&sb, Method::GET, "/groups", None).await;
    assert_eq!(status, 200);
    client()
        .post(format!("{}/_sandbox/reset", sb.base_url()))
        .send()
        .await
        .expect("reset");
    let (status, _) = ic(&sb, Method::GET, "/groups", None).await;
    assert!(status >= 500);
    sb.shutdown().await;
}
