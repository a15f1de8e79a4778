//! The Noyo client: carrier group connections, with client-credential
//! tokens refreshed before they expire, and again when Noyo answers 401.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::RemoteError;
use super::http::{join, Http, Safety};
use crate::model::{ConnectionSpec, Employer};

#[derive(Serialize)]
struct GroupData<'a> {
    carrier_group_id: &'a str,
    group_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_federal_ein: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_tin: Option<&'a str>,
    employer_email_address: &'a str,
}

/// `GroupSetupRequestPublicAPICreateRequest`: a connection with a new group.
#[derive(Serialize)]
struct Create<'a> {
    carrier_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    federal_ein: Option<&'a str>,
    group_data: GroupData<'a>,
}

#[derive(Serialize)]
struct NestedGroupData<'a> {
    carrier_group_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_federal_ein: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_tin: Option<&'a str>,
    employer_email_address: &'a str,
}

/// `GroupSetupRequestPublicAPINestedCreateRequest`: another carrier for an
/// existing group (no group name, no EIN: the group has them).
#[derive(Serialize)]
struct CreateNested<'a> {
    carrier_id: String,
    group_data: NestedGroupData<'a>,
}

/// `GroupSetupRequestPublicAPIRetryRequest`.
#[derive(Serialize)]
struct Retry<'a> {
    carrier_group_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    federal_ein: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_federal_ein: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_tin: Option<&'a str>,
    employer_email_address: &'a str,
}

/// The fields of a group connection benefits-sync reads.
#[derive(Deserialize, Debug, Clone)]
pub struct Connection {
    pub id: String,
    #[serde(default)]
    pub group_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub carrier_id: Option<String>,
    #[serde(default)]
    pub group_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Paginated {
    meta: Meta,
    response: Vec<Connection>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    total_records: Option<u64>,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Noyo's error body: `{message, status}`.
pub fn parse_error(status: u16, body: &str) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct E {
        message: Option<serde_json::Value>,
    }
    match serde_json::from_str::<E>(body) {
        Ok(E { message: Some(m) }) => (
            None,
            match m {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            },
        ),
        _ => (
            None,
            format!("HTTP {status} {}", crate::model::truncate(body.trim(), 200)),
        ),
    }
}

/// Connection ids per list request when refreshing statuses: 50 UUIDs make
/// a query of under 2 KB, well inside any server's URL limit.
pub const IDS_PER_LIST: usize = 50;

/// Statuses after which Noyo will not move a connection on by itself.
pub fn is_settled(status: &str) -> bool {
    matches!(
        status,
        "completed" | "action_required" | "unable_to_connect"
    )
}

/// How many times one request may be refused with 401 and sent again with
/// a newer token.
const MAX_TOKEN_REFRESHES: u32 = 3;

pub struct Noyo {
    pub http: Http,
    base: String,
    token_url: String,
    client_id: String,
    /// Never logged.
    client_secret: String,
    /// The bearer token and when to stop using it (a minute before Noyo's
    /// expiry). The lock also makes concurrent refreshes wait for one.
    token: Mutex<Option<(String, Instant)>>,
}

impl Noyo {
    pub fn new(
        http: Http,
        base: &str,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Noyo {
        Noyo {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            token: Mutex::new(None),
        }
    }

    /// The `Authorization` value to send. `refused` is one Noyo just
    /// answered 401 to: it is replaced, unless another request already
    /// replaced it (then that newer token is used, so a revocation seen by
    /// many requests in flight costs one token request, not one each).
    async fn bearer(&self, refused: Option<&str>) -> Result<String, RemoteError> {
        let mut guard = self.token.lock().await;
        if let Some((t, until)) = guard.as_ref() {
            let header = format!("Bearer {t}");
            let still_good = match refused {
                Some(r) => r != header,
                None => Instant::now() < *until,
            };
            if still_good {
                return Ok(header);
            }
        }
        let url = self.token_url.clone();
        let tok: Token = self
            .http
            .send(Safety::Repeatable, |c| {
                c.post(&url)
                    .basic_auth(&self.client_id, Some(&self.client_secret))
                    .json(&serde_json::json!({"grant_type": "client_credentials"}))
            })
            .await?;
        let life = Duration::from_secs(tok.expires_in.unwrap_or(3600));
        let margin = Duration::from_secs(60).min(life / 2);
        *guard = Some((tok.access_token.clone(), Instant::now() + life - margin));
        Ok(format!("Bearer {}", tok.access_token))
    }

    /// Send with the current token; on a 401, get a newer token and resend.
    ///
    /// A 401 means Noyo did not act on the request, so even a `Once` create
    /// may be sent again. A request can meet more than one revocation: it
    /// takes its token before it waits for the gate, and other requests
    /// may go (and tokens be revoked) meanwhile. The bound stops the loop
    /// when Noyo refuses every new token (credentials without API access).
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        safety: Safety,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, RemoteError> {
        let mut auth = self.bearer(None).await?;
        let mut refreshed = 0;
        loop {
            match self.http.send(safety, |c| build(c, &auth)).await {
                Err(RemoteError::Auth { status: 401, .. }) if refreshed < MAX_TOKEN_REFRESHES => {
                    refreshed += 1;
                    tracing::debug!(target: "benefits_sync::remote", "noyo: token refused, using a newer one");
                    auth = self.bearer(Some(&auth)).await?;
                }
                other => return other,
            }
        }
    }

    /// Create a connection and with it the employer's Noyo group.
    pub async fn create_with_group(
        &self,
        e: &Employer,
        c: &ConnectionSpec,
    ) -> Result<Connection, RemoteError> {
        let body = Create {
            carrier_id: c.carrier_id.to_string(),
            federal_ein: c.federal_ein.as_ref().map(|x| x.as_str()),
            group_data: GroupData {
                carrier_group_id: c.carrier_group_id.as_str(),
                group_name: e.legal_name.as_str(),
                broker_federal_ein: c.broker_federal_ein.as_ref().map(|x| x.as_str()),
                broker_tin: c.broker_tin.as_ref().map(|x| x.as_str()),
                employer_email_address: e.contact.email.as_str(),
            },
        };
        let url = join(&self.base, "/api/v1/group_connections");
        self.call(Safety::Once, |cl, auth| {
            cl.post(&url).header("Authorization", auth).json(&body)
        })
        .await
    }

    /// Add a carrier to the employer's existing Noyo group.
    pub async fn create_in_group(
        &self,
        group_id: &str,
        e: &Employer,
        c: &ConnectionSpec,
    ) -> Result<Connection, RemoteError> {
        let body = CreateNested {
            carrier_id: c.carrier_id.to_string(),
            group_data: NestedGroupData {
                carrier_group_id: c.carrier_group_id.as_str(),
                broker_federal_ein: c.broker_federal_ein.as_ref().map(|x| x.as_str()),
                broker_tin: c.broker_tin.as_ref().map(|x| x.as_str()),
                employer_email_address: e.contact.email.as_str(),
            },
        };
        let url = join(
            &self.base,
            &format!("/api/v1/groups/{group_id}/group_connections"),
        );
        self.call(Safety::Once, |cl, auth| {
            cl.post(&url).header("Authorization", auth).json(&body)
        })
        .await
    }

    /// One page of the group connections list matching `filter`.
    async fn list_page(
        &self,
        filter: &[(&str, &str)],
        offset: usize,
        page_size: usize,
    ) -> Result<Paginated, RemoteError> {
        let url = join(&self.base, "/api/v1/group_connections");
        let (off, size) = (offset.to_string(), page_size.to_string());
        self.call(Safety::Repeatable, |cl, auth| {
            cl.get(&url)
                .header("Authorization", auth)
                .query(filter)
                .query(&[("offset", off.as_str()), ("page_size", size.as_str())])
        })
        .await
    }

    /// Find a connection by carrier and carrier group id.
    pub async fn find(&self, c: &ConnectionSpec) -> Result<Option<Connection>, RemoteError> {
        let carrier = c.carrier_id.to_string();
        let filter = [
            ("carrier_id", carrier.as_str()),
            ("carrier_group_id", c.carrier_group_id.as_str()),
        ];
        let mut offset = 0usize;
        loop {
            let page = self.list_page(&filter, offset, 100).await?;
            let n = page.response.len();
            let total = page.meta.total_records.unwrap_or(0) as usize;
            if let Some(found) = page.response.into_iter().find(|x| {
                x.carrier_id
                    .as_deref()
                    .is_none_or(|id| id.eq_ignore_ascii_case(&carrier))
                    && x.group_data
                        .as_ref()
                        .and_then(|g| g.get("carrier_group_id"))
                        .and_then(|v| v.as_str())
                        .is_none_or(|g| g == c.carrier_group_id.as_str())
            }) {
                return Ok(Some(found));
            }
            offset += n;
            if n == 0 || offset >= total {
                return Ok(None);
            }
        }
    }

    /// Connections by id, many per request: Noyo's list takes a
    /// comma-separated `id` filter, so refreshing the statuses of `n`
    /// connections costs `n / IDS_PER_LIST` requests instead of `n`.
    pub async fn get_many(&self, ids: &[&str]) -> Result<Vec<Connection>, RemoteError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_LIST) {
            let ids = chunk.join(",");
            let mut offset = 0usize;
            // One page holds the whole chunk; the loop only guards against
            // a server that pages smaller than asked.
            loop {
                let page = self
                    .list_page(&[("id", ids.as_str())], offset, chunk.len())
                    .await?;
                let n = page.response.len();
                let total = page.meta.total_records.unwrap_or(0) as usize;
                out.extend(page.response);
                offset += n;
                if n == 0 || offset >= total {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub async fn get(&self, id: &str) -> Result<Connection, RemoteError> {
        let url = join(&self.base, &format!("/api/v1/group_connections/{id}"));
        self.call(Safety::Repeatable, |cl, auth| {
            cl.get(&url).header("Authorization", auth)
        })
        .await
    }

    /// Ask Noyo to try an `unable_to_connect` connection again, with the
    /// current details.
    pub async fn retry(
        &self,
        id: &str,
        e: &Employer,
        c: &ConnectionSpec,
    ) -> Result<Connection, RemoteError> {
        let body = Retry {
            carrier_group_id: c.carrier_group_id.as_str(),
            federal_ein: c.federal_ein.as_ref().map(|x| x.as_str()),
            broker_federal_ein: c.broker_federal_ein.as_ref().map(|x| x.as_str()),
            broker_tin: c.broker_tin.as_ref().map(|x| x.as_str()),
            employer_email_address: e.contact.email.as_str(),
        };
        let url = join(&self.base, &format!("/api/v1/group_connections/{id}/retry"));
        // Retrying a retry is harmless: Noyo refuses it unless the
        // connection is unable_to_connect again.
        self.call(Safety::Repeatable, |cl, auth| {
            cl.put(&url).header("Authorization", auth).json(&body)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use super::*;
    use crate::remote::{http, Gate, GateConfig, RetryPolicy};
    use crate::sandbox::{self, SandboxConfig};

    async fn token_requests(sb: &sandbox::Sandbox) -> u64 {
        let stats: serde_json::Value = reqwest::get(format!("{}/_sandbox/stats", sb.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["route"] == "/noyo/auth/public/token" && r["status"] == 200)
            .filter_map(|r| r["count"].as_u64())
            .sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_token_is_replaced_once_for_all_requests_in_flight() {
        let sb = sandbox::start(SandboxConfig::default()).await.unwrap();
        let rate = NonZeroU32::new(10_000).unwrap();
        let gate = Arc::new(Gate::new(GateConfig {
            rate,
            burst: rate,
            concurrency: 16,
        }));
        let noyo = Noyo::new(
            Http::new(
                http::client(),
                "noyo",
                gate,
                RetryPolicy::default(),
                parse_error,
            ),
            &sb.noyo_url(),
            &sb.noyo_token_url(),
            sandbox::SANDBOX_NOYO_CLIENT_ID,
            sandbox::SANDBOX_NOYO_CLIENT_SECRET,
        );
        // An unknown connection: 404 proves the token was accepted.
        let accepted = |r: Result<Connection, RemoteError>| {
            assert_eq!(r.err().and_then(|e| e.status()), Some(404));
        };
        accepted(noyo.get("missing").await);
        assert_eq!(token_requests(&sb).await, 1);

        let revoked = http::client()
            .post(format!("{}/_sandbox/noyo/revoke_tokens", sb.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        // `join!` polls all eight before any answer is in, so all eight
        // send the revoked token and get a 401.
        let g = || noyo.get("missing");
        let (a, b, c, d, e, f, h, i) = tokio::join!(g(), g(), g(), g(), g(), g(), g(), g());
        for r in [a, b, c, d, e, f, h, i] {
            accepted(r);
        }
        assert_eq!(
            token_requests(&sb).await,
            2,
            "eight 401s at once fetch one new token"
        );
        sb.shutdown().await;
    }
}
