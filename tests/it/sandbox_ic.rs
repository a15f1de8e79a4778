//! The sandbox's Invisible Collector API over real HTTP.

use reqwest::Method;
use serde_json::json;

use crate::support::*;
use benefits_sync::sandbox::SandboxConfig;

#[tokio::test]
async fn groups_create_list_and_duplicates() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let (status, g) = ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Acme"}))).await;
    assert_eq!(status, 201, "{g}");
    assert_eq!(keys(&g), ["id", "name"]);
    assert_eq!(g["name"], "Acme");
    let (status, dup) = ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Acme"}))).await;
    assert_eq!(status, 409);
    assert_eq!(dup["code"], 409);
    assert!(dup["message"].is_string());
    ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Beta"}))).await;
    let (status, list) = ic(&sb, Method::GET, "/groups", None).await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([g, list[1].clone()]));
    assert_eq!(list[1]["name"], "Beta");

    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": 3}),
        json!({"name": "X", "colour": "red"}),
    ] {
        let (status, e) = ic(&sb, Method::POST, "/groups", Some(&bad)).await;
        assert_eq!((status, e["code"].clone()), (422, json!(422)), "{bad}");
    }
    for auth in [None, Some("pk_test_sandbox"), Some("ic_live_x")] {
        let mut req = client().get(format!("{}/groups", sb.ic_url()));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let (status, e) = parts(req.send().await.expect("send")).await;
        assert_eq!((status, e["code"].clone()), (401, json!(401)));
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn duplicate_status_can_be_422() {
    let sb = start_sandbox(SandboxConfig {
        ic_duplicate_status: 422,
        ..SandboxConfig::default()
    })
    .await;
    ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Acme"}))).await;
    let (status, e) = ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Acme"}))).await;
    assert_eq!((status, e["code"].clone()), (422, json!(422)));
    sb.shutdown().await;
}
