//! Helpers shared by the integration tests: start a sandbox, talk to it
//! with real HTTP, and build valid request bodies.

use std::time::Duration;

use benefits_sync::sandbox::{
    self, Sandbox, SandboxConfig, SANDBOX_IC_TOKEN, SANDBOX_KOTA_KEY, SANDBOX_NOYO_CLIENT_ID,
    SANDBOX_NOYO_CLIENT_SECRET,
};
use serde_json::{json, Value};

/// Starts a sandbox on a free loopback port.
pub async fn start_sandbox(cfg: SandboxConfig) -> Sandbox {
    sandbox::start(cfg).await.expect("sandbox starts")
}

/// A sandbox whose Noyo connections reach their final status at once.
pub fn instant_config() -> SandboxConfig {
    SandboxConfig {
        noyo_status_step: Duration::ZERO,
        ..SandboxConfig::default()
    }
}

/// A plain client; no retries, generous timeout for a loaded machine.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A response's status and JSON body (`Value::Null` if not JSON).
pub async fn parts(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Kota request with the sandbox key.
pub async fn kota(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    kota_with(sb, method, path, body, None).await
}

/// Kota request with an optional idempotency key.
pub async fn kota_with(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", sb.kota_url()))
        .bearer_auth(SANDBOX_KOTA_KEY);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    parts(req.send().await.expect("kota request")).await
}

/// A Noyo access token.
pub async fn noyo_token(sb: &Sandbox) -> String {
    let resp = client()
        .post(sb.noyo_token_url())
        .basic_auth(SANDBOX_NOYO_CLIENT_ID, Some(SANDBOX_NOYO_CLIENT_SECRET))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("token request");
    let (status, body) = parts(resp).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_string()
}

/// Noyo request with a bearer token.
pub async fn noyo(
    sb: &Sandbox,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", sb.noyo_url()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    parts(req.send().await.expect("noyo request")).await
}

/// Invisible Collector request with the sandbox token.
pub async fn ic(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", sb.ic_url()))
        .bearer_auth(SANDBOX_IC_TOKEN);
    if let Some(b) = body {
        req = req.json(b);
    }
    parts(req.send().await.expect("ic request")).await
}

/// `GET /_sandbox/stats`.
pub async fn stats(sb: &Sandbox) -> Value {
    let resp = client()
        .get(format!("{}/_sandbox/stats", sb.base_url()))
        .send()
        .await
        .expect("stats");
    parts(resp).await.1
}

/// `PUT /_sandbox/faults`.
pub async fn set_faults(sb: &Sandbox, plan: &Value) {
    let resp = client()
        .put(format!("{}/_sandbox/faults", sb.base_url()))
        .json(plan)
        .send()
        .await
        .expect("faults");
    let (status, body) = parts(resp).await;
    assert_eq!(status, 200, "{body}");
}

/// A valid CreateEmployerRequest.
pub fn employer_body(reference: &str) -> Value {
    json!({
        "legal_name": format!("Acme {reference} Ltd"),
        "registration_number": format!("REG-{reference}"),
        "legal_address": {
            "line1": "1 Main Street", "line2": "Floor 2", "city": "Dublin",
            "postal_code": "D02 X285", "country_code": "ie"
        },
        "contact": {"name": "Ada Admin", "email": "ada@acme.example"},
        "metadata": {"id": reference}
    })
}

/// A valid CreateEmployeeRequest for `employer_id`.
pub fn employee_body(employer_id: &str, reference: &str) -> Value {
    json!({
        "employer_id": employer_id,
        "first_name": "Grace",
        "last_name": "Hopper",
        "date_of_birth": "1990-12-09",
        "sex_at_birth": "female",
        "home_address": {
            "line1": "2 Side Road", "city": "Cork", "postal_code": "T12 ABCD", "country_code": "ie"
        },
        "national_tax_id": "1234567T",
        "start_on": "2020-01-06",
        "phone_number": "+353861234567",
        "email": format!("{reference}@acme.example"),
        "bank_account": {"account_number": "IE29AIBK93115212345678"},
        "metadata": {"id": reference}
    })
}

/// Creates an employer and returns its id.
pub async fn create_employer(sb: &Sandbox, reference: &str) -> String {
    let (status, body) = kota(
        sb,
        reqwest::Method::POST,
        "/employers",
        Some(&employer_body(reference)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().expect("id").to_string()
}

/// Creates an employee and returns its id.
pub async fn create_employee(sb: &Sandbox, employer_id: &str, reference: &str) -> String {
    let body = employee_body(employer_id, reference);
    let (status, body) = kota(sb, reqwest::Method::POST, "/employees", Some(&body)).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().expect("id").to_string()
}

/// Creates a group and returns its id.
pub async fn create_group(sb: &Sandbox, employer_id: &str, name: &str) -> String {
    let body = json!({"employer_id": employer_id, "name": name});
    let (status, body) = kota(sb, reqwest::Method::POST, "/groups", Some(&body)).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().expect("id").to_string()
}

/// `prefix` followed by exactly 32 lower-case hex digits.
pub fn is_id(v: &Value, prefix: &str) -> bool {
    v.as_str().is_some_and(|s| {
        s.strip_prefix(prefix).is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    })
}

/// The sorted keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}
