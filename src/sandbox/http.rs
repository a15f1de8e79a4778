//! The request and response shapes handlers work with, kept free of hyper so
//! the handlers stay synchronous and testable, plus each vendor's error
//! format.

use std::collections::BTreeMap;

use serde::Serialize;

use super::routes::{Api, Route};

/// Kota answers JSON errors as RFC 7807 problems.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Every other body.
pub const JSON: &str = "application/json";

/// A request, already read and routed.
pub struct Call<'a> {
    /// The matched route.
    pub route: &'static Route,
    /// Captured `{id}` parameters, in template order.
    pub params: &'a [String],
    /// Decoded query pairs, in order.
    pub query: &'a [(String, String)],
    /// Request headers.
    pub headers: &'a hyper::HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

impl Call<'_> {
    /// The first `{id}` parameter (every parameterised route has exactly one).
    pub fn id(&self) -> &str {
        self.params.first().map(String::as_str).unwrap_or("")
    }

    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The last value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

/// A response about to be written.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Extra headers (`Retry-After`...).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON reply.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        Reply::typed(status, JSON, value)
    }

    /// A reply of a JSON-based content type.
    pub fn typed<T: Serialize + ?Sized>(
        status: u16,
        content_type: &'static str,
        value: &T,
    ) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                content_type,
                body,
                headers: Vec::new(),
            },
            // Our own types always serialize; this only guards against a
            // future type that does not.
            Err(e) => Reply {
                status: 500,
                content_type: JSON,
                body: format!("{{\"message\":\"serialization failed: {e}\"}}").into_bytes(),
                headers: Vec::new(),
            },
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A Kota problem+json error.
pub fn kota_problem(status: u16, error_code: &str, detail: impl Into<String>) -> Reply {
    kota_problem_with(status, error_code, detail.into(), None)
}

/// A Kota 400 `validation_error` with its `errors` map (field -> messages).
pub fn kota_validation(errors: BTreeMap<String, Vec<String>>) -> Reply {
    kota_problem_with(
        400,
        "validation_error",
        "One or more validation errors occurred.".to_string(),
        Some(errors),
    )
}

fn kota_problem_with(
    status: u16,
    error_code: &str,
    detail: String,
    errors: Option<BTreeMap<String, Vec<String>>>,
) -> Reply {
    let mut body = serde_json::json!({
        "type": format!("https://docs.kota.io/errors/{error_code}"),
        "title": title_of(status),
        "status": status,
        "detail": detail,
        "error_code": error_code,
    });
    if let (Some(errors), Some(obj)) = (errors, body.as_object_mut()) {
        obj.insert("errors".into(), serde_json::json!(errors));
    }
    Reply::typed(status, PROBLEM_JSON, &body)
}

/// A Noyo `{message, status}` error.
pub fn noyo_error(status: u16, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"message": message.into(), "status": status}),
    )
}

/// An Invisible Collector `{code, message}` error.
pub fn ic_error(status: u16, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"code": status, "message": message.into()}),
    )
}

/// An error in the format of the API owning the path; `kota_code` is the
/// Kota `error_code`. Paths outside every API get the Noyo-like shape.
pub fn api_error(api: Option<Api>, status: u16, kota_code: &str, message: &str) -> Reply {
    match api {
        Some(Api::Kota) => kota_problem(status, kota_code, message),
        Some(Api::Ic) => ic_error(status, message),
        _ => noyo_error(status, message),
    }
}

fn title_of(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
