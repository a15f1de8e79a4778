//! Kota's `Idempotency-Key`: "If the same key is used for multiple
//! _identical & successful_ requests, the same response will be returned."
//!
//! The key is checked and the response stored under the world lock, so two
//! concurrent requests with one key cannot both create an object. Only 2xx
//! responses are stored; a failed request can be retried with its key.
//! Records expire after one hour.

use serde_json::Value;

use crate::sandbox::http::{kota_problem, Call, Reply, JSON};
use crate::sandbox::kota::types::IdempotencyRecord;
use crate::sandbox::world::World;

/// Lifetime of a key.
pub const KEY_TTL_MS: i64 = 60 * 60 * 1000;
/// Expired records are swept whenever the table grows to a multiple of
/// this, so a long benchmark does not keep every response in memory.
const SWEEP_EVERY: usize = 1024;

/// Runs `f` under idempotency key `key`.
pub fn run(
    w: &mut World,
    call: &Call,
    key: &str,
    now_ms: i64,
    f: impl FnOnce(&mut World) -> Reply,
) -> Reply {
    let fingerprint = fingerprint(call);
    if let Some(rec) = w.idempotency.get(key) {
        if now_ms - rec.created_ms < KEY_TTL_MS {
            if rec.fingerprint == fingerprint {
                return Reply {
                    status: rec.status,
                    content_type: JSON,
                    body: rec.body.clone().into_bytes(),
                    headers: Vec::new(),
                }
                .with_header("idempotent-replayed", "true".into());
            }
            return kota_problem(
                409,
                "idempotency_error",
                "This Idempotency-Key was already used with a different request.",
            );
        }
    }
    let reply = f(w);
    if reply.is_success() {
        let rec = IdempotencyRecord {
            fingerprint,
            status: reply.status,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
            created_ms: now_ms,
        };
        w.idempotency.put(&mut w.persist, key, rec);
        if w.idempotency.len() % SWEEP_EVERY == 0 {
            w.idempotency
                .remove_where(&w.persist, |r| now_ms - r.created_ms >= KEY_TTL_MS);
        }
    }
    reply
}

/// Method, concrete path and body. A JSON body is re-serialized with sorted
/// keys so formatting and key order do not make "the same" body differ.
fn fingerprint(call: &Call) -> String {
    let mut path = call.route.template.to_string();
    for p in call.params {
        path = path.replacen("{id}", p, 1);
    }
    let body = match serde_json::from_slice::<Value>(call.body) {
        Ok(v) => serde_json::to_vec(&v).unwrap_or_else(|_| call.body.to_vec()),
        Err(_) => call.body.to_vec(),
    };
    let mut h = blake3::Hasher::new();
    h.update(call.route.method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(&body);
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::routes::by_key;

    fn call<'a>(body: &'a [u8], headers: &'a hyper::HeaderMap) -> Call<'a> {
        Call {
            route: by_key("POST /kota/employers").expect("route"),
            params: &[],
            query: &[],
            headers,
            body,
        }
    }

    #[test]
    fn replays_rejects_and_expires() {
        let headers = hyper::HeaderMap::new();
        let mut w = World::new(None);
        let mut runs = 0;
        let mut go = |w: &mut World, body: &[u8], now: i64| {
            run(w, &call(body, &headers), "k", now, |_| {
                runs += 1;
                Reply::json(200, &serde_json::json!({"n": runs}))
            })
        };
        let first = go(&mut w, br#"{"a":1,"b":2}"#, 0);
        let replay = go(&mut w, br#"{ "b":2, "a":1 }"#, 1000);
        assert_eq!(first.body, replay.body);
        let other = go(&mut w, br#"{"a":2}"#, 2000);
        assert_eq!(other.status, 409);
        let expired = go(&mut w, br#"{"a":2}"#, KEY_TTL_MS + 1);
        assert_eq!(expired.status, 200);
        assert_eq!(expired.body, br#"{"n":2}"#);
    }
}
