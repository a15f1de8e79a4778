//! Request and fault counters behind `GET /_sandbox/stats`. Object and
//! duplicate counts come from the world at read time; these counters live
//! only as long as the process (or until `POST /_sandbox/reset`).

use std::collections::BTreeMap;

use serde::Serialize;

/// Counters of what the fault layer did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultCounts {
    /// Requests delayed by a non-zero latency.
    pub latency: u64,
    /// Requests answered 500/503 by injection.
    pub errors_5xx: u64,
    /// Requests answered 429 by the rate limiter.
    pub rate_limited_429: u64,
    /// Writes committed whose connection was then dropped.
    pub dropped_after_commit: u64,
}

/// Per-process request counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// (route template, method, status) -> count.
    requests: BTreeMap<(String, &'static str, u16), u64>,
    /// POST/PUT/DELETE to vendor routes, token endpoint excluded.
    pub write_requests: u64,
    /// Fault counters.
    pub faults: FaultCounts,
}

/// One line of the `requests` list.
#[derive(Serialize)]
pub struct RequestCount {
    /// Method.
    pub method: &'static str,
    /// Route template, or `<unmatched>`.
    pub route: String,
    /// Status answered (for a dropped write, the status it would have had).
    pub status: u16,
    /// How many.
    pub count: u64,
}

impl Stats {
    /// Counts one answered request.
    pub fn record(&mut self, method: &'static str, route: &str, status: u16) {
        *self
            .requests
            .entry((route.to_string(), method, status))
            .or_default() += 1;
    }

    /// The `requests` list, sorted by route, method, status.
    pub fn request_counts(&self) -> Vec<RequestCount> {
        self.requests
            .iter()
            .map(|((route, method, status), count)| RequestCount {
                method,
                route: route.clone(),
                status: *status,
                count: *count,
            })
            .collect()
    }
}
