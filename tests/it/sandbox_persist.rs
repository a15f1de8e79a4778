//! Persistence: a data file carries the world across restarts, and a bad
//! data file is refused without being touched.

use reqwest::Method;
use serde_json::json;

use crate::support::*;
use benefits_sync::sandbox::{self, SandboxConfig, SandboxError};

#[tokio::test]
async fn objects_and_idempotency_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("world.sqlite");
    let cfg = SandboxConfig {
        data: Some(data.clone()),
        ..instant_config()
    };
    let sb = start_sandbox(cfg.clone()).await;
    let (status, er) = kota_with(
        &sb,
        Method::POST,
        "/employers",
        Some(&employer_body("E1")),
        Some("k1"),
    )
    .await;
    assert_eq!(status, 200);
    let er_id = er["id"].as_str().expect("id").to_string();
    for i in 0..30 {
        create_employee(&sb, &er_id, &format!("P{i}")).await;
    }
    let gid = create_group(&sb, &er_id, "Health").await;
    let token = noyo_token(&sb).await;
    let conn = json!({"carrier_id": "8fac0992-933a-4743-8dab-0d606ef2569e",
        "group_data": {"carrier_group_id": "C1", "group_name": "N"}});
    let (_, c) = noyo(
        &sb,
        &token,
        Method::POST,
        "/api/v1/group_connections",
        Some(&conn),
    )
    .await;
    ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Acme"}))).await;
    let before = stats(&sb).await["objects"].clone();
    sb.shutdown().await;

    let sb = start_sandbox(cfg).await;
    assert_eq!(stats(&sb).await["objects"], before);
    let (status, got) = kota(&sb, Method::GET, &format!("/employers/{er_id}"), None).await;
    assert_eq!((status, &got), (200, &er));
    let (_, page) = kota(&sb, Method::GET, "/employees?page=3", None).await;
    assert_eq!(
        page["items"][0]["metadata"]["id"], "P20",
        "creation order survives"
    );
    let (status, _) = kota(&sb, Method::GET, &format!("/groups/{gid}"), None).await;
    assert_eq!(status, 200);
    let (status, replay) = kota_with(
        &sb,
        Method::POST,
        "/employers",
        Some(&employer_body("E1")),
        Some("k1"),
    )
    .await;
    assert_eq!((status, &replay), (200, &er), "idempotency record survives");
    let (status, _) = ic(&sb, Method::POST, "/groups", Some(&json!({"name": "Acme"}))).await;
    assert_eq!(status, 409, "IC uniqueness survives");
    let token = noyo_token(&sb).await;
    let (status, got) = noyo(
        &sb,
        &token,
        Method::GET,
        &format!(
            "/api/v1/group_connections/{}",
            c["id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], c["id"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn corrupt_or_foreign_data_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.sqlite");
    let bytes = vec![0x42u8; 8192];
    std::fs::write(&junk, &bytes).expect("write");
    let err = sandbox::start(SandboxConfig {
        data: Some(junk.clone()),
        ..SandboxConfig::default()
    })
    .await
    .err()
    .expect("refused");
    assert!(matches!(err, SandboxError::Store { .. }), "{err}");
    assert!(err.to_string().contains("junk.sqlite"), "{err}");
    assert_eq!(std::fs::read(&junk).expect("read"), bytes);

    let foreign = dir.path().join("foreign.sqlite");
    {
        let conn = rusqlite::Connection::open(&foreign).expect("open");
        conn.execute_batch("CREATE TABLE payroll (id TEXT);")
            .expect("create");
    }
    let err = sandbox::start(SandboxConfig {
        data: Some(foreign),
        ..SandboxConfig::default()
    })
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("not a sandbox data file"), "{err}");
}

#[tokio::test]
async fn bind_failure_is_an_error() {
    let sb = start_sandbox(SandboxConfig::default()).await;
    let err = sandbox::start(SandboxConfig {
        listen: sb.addr(),
        ..SandboxConfig::default()
    })
    .await
    .err()
    .expect("port in use");
    assert!(matches!(err, SandboxError::Bind { .. }), "{err}");
    sb.shutdown().await;
}

#[tokio::test]
async fn many_concurrent_writes_are_all_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SandboxConfig {
        data: Some(dir.path().join("world.sqlite")),
        ..SandboxConfig::default()
    };
    let sb = start_sandbox(cfg.clone()).await;
    let http = client();
    let url = format!("{}/groups", sb.ic_url());
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                for i in 0..64 {
                    let resp = http
                        .post(&url)
                        .bearer_auth("ic_test_x")
                        .json(&json!({"name": format!("g-{t}-{i}")}))
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(resp.status().as_u16(), 201);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    eprintln!("1024 writes in {:?}", started.elapsed());
    sb.shutdown().await;
    let sb = start_sandbox(cfg).await;
    assert_eq!(stats(&sb).await["objects"]["ic.groups"], 1024);
    sb.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let sb = start_sandbox(SandboxConfig {
        faults: benefits_sync::sandbox::FaultConfig {
            latency_ms: 400,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let url = format!("{}/groups", sb.ic_url());
    let in_flight = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth("ic_test_x")
            .json(&json!({"name": "late"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // Let the request reach the server and start its delay.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let addr = sb.addr();
    sb.shutdown().await;
    assert_eq!(in_flight.await.expect("task").expect("answered"), 201);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn invalid_fault_config_is_refused() {
    let err = sandbox::start(SandboxConfig {
        faults: benefits_sync::sandbox::FaultConfig {
            error_rate: 1.5,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .err()
    .expect("refused");
    assert!(matches!(err, SandboxError::Config(_)), "{err}");
}
