//! The one place requests are sent: gate, send, classify, back off, retry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use super::error::RemoteError;
use super::gate::Gate;

/// Whether a request may be sent again after an answer we did not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// GET, PUT (whole replacement), or a POST with an idempotency key:
    /// repeating it cannot create a second object.
    Repeatable,
    /// A POST the server cannot deduplicate: resent only when it surely did
    /// not arrive (429, connect failure); otherwise the caller looks first.
    Once,
}

/// Retry policy: bounded attempts, jittered exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts that ended in a 5xx or a network error, in all.
    pub max_attempts: u32,
    /// 429s one request may draw before it gives up. Counted apart from
    /// `max_attempts`: a 429 says "not now", the request was not processed,
    /// and the gate has already paused and slowed the whole target, so a
    /// throttled request waits its turn instead of failing the operation.
    pub max_throttled: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_throttled: 50,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter": a uniform wait up to the exponential bound, so that
    /// many clients retrying at once spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let bound = exp.min(self.cap).as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(bound / 2..=bound))
    }
}

/// Request counters of one target, for the run report and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub writes: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub network_errors: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterValues {
        CounterValues {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            network_errors: self.network_errors.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CounterValues {
    pub requests: u64,
    pub writes: u64,
    pub retries: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub network_errors: u64,
}

/// Reads a vendor's error body into (code, message).
pub type ErrorParser = fn(u16, &str) -> (Option<String>, String);

/// A target's HTTP sender.
pub struct Http {
    pub client: reqwest::Client,
    pub target: &'static str,
    pub gate: Arc<Gate>,
    pub retry: RetryPolicy,
    pub counters: Arc<Counters>,
    parse_error: ErrorParser,
}

/// The shared reqwest client: rustls, bounded connect and request times.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("benefits-sync/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("reqwest client with static settings")
}

impl Http {
    pub fn new(
        client: reqwest::Client,
        target: &'static str,
        gate: Arc<Gate>,
        retry: RetryPolicy,
        parse_error: ErrorParser,
    ) -> Http {
        Http {
            client,
            target,
            gate,
            retry,
            counters: Arc::new(Counters::default()),
            parse_error,
        }
    }

    /// Send the request `build` makes, retrying as `safety` allows, and
    /// decode a success body as `T`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        safety: Safety,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<T, RemoteError> {
        let (mut attempt, mut throttled) = (0, 0);
        loop {
            let result = self.once::<T>(&build).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let is_429 = err.status() == Some(429);
            let budget_left = if is_429 {
                throttled += 1;
                throttled < self.retry.max_throttled
            } else {
                attempt += 1;
                attempt < self.retry.max_attempts
            };
            let may_repeat = safety == Safety::Repeatable || !err.maybe_committed();
            if !(err.retryable() && may_repeat && budget_left) {
                return Err(err);
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "benefits_sync::remote", api = self.target, attempt, throttled, error = %err, "retrying");
            // A 429 paused the gate already; otherwise back off here.
            if !is_429 {
                tokio::time::sleep(self.retry.backoff(attempt)).await;
            }
        }
    }

    async fn once<T: DeserializeOwned>(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<T, RemoteError> {
        let request = build(&self.client);
        let pass = self.gate.enter().await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let req = request.build().map_err(|e| RemoteError::Network {
            target: self.target,
            message: format!("cannot build request: {e}"),
            maybe_sent: false,
        })?;
        if req.method() != reqwest::Method::GET {
            self.counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let path = req.url().path().to_owned();
        let sent = self.client.execute(req).await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                // No answer says nothing about the server's limit.
                drop(pass);
                self.counters.network_errors.fetch_add(1, Ordering::Relaxed);
                return Err(RemoteError::Network {
                    target: self.target,
                    message: describe(&e),
                    maybe_sent: !e.is_connect(),
                });
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(300.0)));
        let body = resp.bytes().await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            pass.throttled(retry_after.unwrap_or(Duration::from_secs(1)));
        } else {
            pass.accepted();
        }
        tracing::debug!(target: "benefits_sync::remote", api = self.target, %method, path, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "request");
        let body = body.map_err(|e| {
            self.counters.network_errors.fetch_add(1, Ordering::Relaxed);
            RemoteError::Network {
                target: self.target,
                message: format!("response cut off: {}", describe(&e)),
                maybe_sent: true,
            }
        })?;
        if status.is_success() {
            let bytes: &[u8] = if body.is_empty() { b"null" } else { &body };
            return serde_json::from_slice(bytes).map_err(|e| RemoteError::Decode {
                target: self.target,
                message: format!("{method} {path}: {e}"),
            });
        }
        if status.is_server_error() {
            self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let text = String::from_utf8_lossy(&body);
        let (code, message) = (self.parse_error)(status.as_u16(), &text);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RemoteError::Auth {
                target: self.target,
                status: status.as_u16(),
                message,
            });
        }
        Err(RemoteError::Status {
            target: self.target,
            status: status.as_u16(),
            code,
            message,
            retry_after,
        })
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "connection failed".to_owned()
    };
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Join a base URL and a path without doubling or dropping the slash.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}
