//! Noyo revokes the access token in the middle of a run (as it does when
//! credentials are rotated, or when its token store restarts): the client
//! fetches a new token on the 401, sends the refused request again, and the
//! run ends with every connection created exactly once.

use benefits_sync::sandbox::FaultConfig;
use serde_json::{json, Value};

use crate::common::*;
use crate::support::{client, set_faults};

/// Requests the sandbox answered on Noyo routes with `status`.
fn noyo_answers(s: &Value, route: Option<&str>, status: u64) -> u64 {
    s["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["status"] == status
                && r["route"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("/noyo") && route.is_none_or(|want| t == want))
        })
        .filter_map(|r| r["count"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noyo_tokens_revoked_mid_run_are_replaced_and_each_connection_is_created_once() {
    let sb = start_sandbox(FaultConfig::default()).await;
    // Slow creates keep the run inside the window where some connections
    // exist and others do not yet.
    let slow = json!({"latency_ms": 150});
    set_faults(
        &sb,
        &json!({"routes": {
            "POST /noyo/api/v1/group_connections": slow,
            "POST /noyo/api/v1/groups/{id}/group_connections": slow,
        }}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, 4, 12, 1);
    let f = files(d);
    let out = run(d, &[], &cmd(&f, "plan", &["--format", "json"])).await;
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "connection.create")
        .count() as u64;
    assert!(
        expected >= 3,
        "the export needs a few connections: {expected}"
    );

    let report = d.join("report.json").display().to_string();
    let a = cmd(&f, "apply", &["--report", &report]);
    let mut c = command(d);
    c.args(&a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env_for(&sb) {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    let waiting = tokio::spawn(child.wait_with_output());
    let revoke_url = format!("{}/_sandbox/noyo/revoke_tokens", sb.base_url());
    // Two revocations, each while connections are still to come: after
    // the first connection (a token exists) and half way. Requests waiting
    // for their turn with the old token meet them too.
    let marks = [1, expected.div_ceil(2)];
    let mut revocations = 0;
    while !waiting.is_finished() {
        let made = stats(&sb).await["objects"]["noyo.connections"]
            .as_u64()
            .unwrap_or(0);
        if revocations < marks.len() && made >= marks[revocations] && made < expected {
            let r = client().post(&revoke_url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            revocations += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let out = waiting.await.unwrap().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(revocations, 2, "a revocation came too late");
    let revocations = revocations as u64;

    let s = stats(&sb).await;
    assert_eq!(s["objects"]["noyo.connections"], expected, "{s}");
    assert_eq!(duplicates(&s), 0, "{s}");
    // Each revocation was met (a 401 at least), and cost one new token
    // however many requests met it.
    assert!(noyo_answers(&s, None, 401) >= revocations, "{s}");
    assert_eq!(
        noyo_answers(&s, Some("/noyo/auth/public/token"), 200),
        revocations + 1,
        "{s}"
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["totals"]["failed"], 0, "{r}");
    let created = r["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["kind"] == "connection.create")
        .unwrap()
        .clone();
    assert_eq!(created["done"], expected, "{created}");
    sb.shutdown().await;
}
