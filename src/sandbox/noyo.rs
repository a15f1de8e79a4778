//! The Noyo fulfillment API under `/noyo`: OAuth client-credentials tokens,
//! group connections and their status progression.
//!
//! A connection's status is computed from the clock rather than moved by a
//! background task: it spends `noyo_status_step` in each of `created`,
//! `processing`, `noyo_review`, `waiting_on_carrier`, then stays in its final
//! status, chosen by its `carrier_group_id` (upper-cased):
//!
//! - ends in `-AR` or contains `ACTION`: `action_required`;
//! - ends in `-UTC`: `unable_to_connect`; after `PUT .../retry` it goes
//!   `processing`, `noyo_review`, `waiting_on_carrier`, `completed`;
//! - anything else: `completed`.

use std::time::Instant;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::http::{noyo_error, Call, Reply};
use super::routes::Op;
use super::server::{lock, App};
use super::validate::{self, Errors, Field, Schema, Ty};
use super::world::World;

/// The organization every sandbox connection belongs to.
const ORGANIZATION_ID: &str = "5a4db0c0-0000-4000-8000-000000000001";
/// Default `page_size` of list endpoints.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Statuses a connection passes through before its final one.
const INITIAL_PATH: [&str; 4] = ["created", "processing", "noyo_review", "waiting_on_carrier"];
/// Statuses after a retry.
const RETRY_PATH: [&str; 4] = [
    "processing",
    "noyo_review",
    "waiting_on_carrier",
    "completed",
];
/// The status enum of GroupSetupRequestPublicResult.
const STATUSES: &[&str] = &[
    "created",
    "processing",
    "noyo_review",
    "waiting_on_carrier",
    "carrier_authorization",
    "action_required",
    "unable_to_connect",
    "completed",
];

/// A Noyo group, created with its first connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NoyoGroup {
    /// UUID.
    pub id: String,
    /// Name from the first connection's `group_data.group_name`.
    pub name: String,
    /// Unix seconds.
    pub created: i64,
}

/// Carrier-specific group data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupData {
    /// The group's id at the carrier; decides the final status.
    pub carrier_group_id: String,
    /// Group name (the Noyo group's name for nested connections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Broker EIN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_federal_ein: Option<String>,
    /// Broker TIN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_tin: Option<String>,
    /// Employer email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employer_email_address: Option<String>,
}

/// A group connection as stored; [`Connection::view`] is what the API shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Connection {
    /// UUID.
    pub id: String,
    /// The Noyo group.
    pub group_id: String,
    /// Carrier UUID.
    pub carrier_id: String,
    /// Group data.
    pub group_data: GroupData,
    /// Federal EIN.
    pub federal_ein: Option<String>,
    /// Always `initial`.
    pub request_type: String,
    /// Unix seconds.
    pub created: i64,
    /// When the current run of statuses started (Unix ms).
    pub phase_start_ms: i64,
    /// Whether it was retried (then it follows the retry path).
    pub retried: bool,
}

impl Connection {
    fn path(&self) -> Vec<&'static str> {
        if self.retried {
            return RETRY_PATH.to_vec();
        }
        let cgid = self.group_data.carrier_group_id.to_ascii_uppercase();
        let last = if cgid.ends_with("-AR") || cgid.contains("ACTION") {
            "action_required"
        } else if cgid.ends_with("-UTC") {
            "unable_to_connect"
        } else {
            "completed"
        };
        let mut p = INITIAL_PATH.to_vec();
        p.push(last);
        p
    }

    /// Index in the path at `now_ms`.
    fn phase(&self, now_ms: i64, step_ms: i64) -> usize {
        let last = self.path().len() - 1;
        if step_ms <= 0 {
            return last;
        }
        let steps = (now_ms - self.phase_start_ms).max(0) / step_ms;
        usize::try_from(steps).map_or(last, |s| s.min(last))
    }

    /// The status at `now_ms`.
    pub fn status(&self, now_ms: i64, step_ms: i64) -> &'static str {
        self.path()[self.phase(now_ms, step_ms)]
    }

    /// GroupSetupRequestPublicResult at `now_ms`.
    pub fn view(&self, now_ms: i64, step_ms: i64) -> Value {
        let phase = self.phase(now_ms, step_ms);
        let status = self.path()[phase];
        let entered_ms = self.phase_start_ms + step_ms.max(0) * phase as i64;
        let modified = (entered_ms / 1000).max(self.created);
        let mut seed = blake3::Hasher::new();
        seed.update(self.id.as_bytes());
        seed.update(&[u8::from(self.retried)]);
        seed.update(&phase.to_le_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&seed.finalize().as_bytes()[..16]);
        let version = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut v = json!({
            "carrier_id": self.carrier_id,
            "created": self.created,
            "group_data": self.group_data,
            "group_id": self.group_id,
            "id": self.id,
            "modified": modified,
            "organization_id": ORGANIZATION_ID,
            "request_type": self.request_type,
            "setup_metadata": {},
            "setup_result": {},
            "status": status,
            "version": version.to_string(),
        });
        if let Some(obj) = v.as_object_mut() {
            if status == "completed" {
                obj.insert("completed".into(), json!(modified));
            }
            if let Some(ein) = &self.federal_ein {
                obj.insert("federal_ein".into(), json!(ein));
            }
        }
        v
    }
}

static GROUP_DATA: Schema = Schema {
    fields: &[
        Field::req("carrier_group_id", Ty::NonEmpty),
        Field::req("group_name", Ty::NonEmpty),
        Field::opt_non_null("broker_federal_ein", Ty::Str),
        Field::opt_non_null("broker_tin", Ty::Str),
        Field::opt_non_null("employer_email_address", Ty::Str),
    ],
};

static NESTED_GROUP_DATA: Schema = Schema {
    fields: &[
        Field::req("carrier_group_id", Ty::NonEmpty),
        Field::opt_non_null("broker_federal_ein", Ty::Str),
        Field::opt_non_null("broker_tin", Ty::Str),
        Field::opt_non_null("employer_email_address", Ty::Str),
    ],
};

static EXCHANGE: &[&str] = &["api", "edi"];

static CREATE: Schema = Schema {
    fields: &[
        Field::req("carrier_id", Ty::Uuid),
        Field::opt_non_null("data_exchange_configuration", Ty::Enum(EXCHANGE)),
        Field::opt_non_null("federal_ein", Ty::Str),
        Field::req("group_data", Ty::Object(&GROUP_DATA)),
        Field::opt_non_null("ignore_eligibility", Ty::Bool),
    ],
};

static NESTED_CREATE: Schema = Schema {
    fields: &[
        Field::req("carrier_id", Ty::Uuid),
        Field::opt_non_null("data_exchange_configuration", Ty::Enum(EXCHANGE)),
        Field::req("group_data", Ty::Object(&NESTED_GROUP_DATA)),
        Field::opt_non_null("ignore_eligibility", Ty::Bool),
    ],
};

static RETRY: Schema = Schema {
    fields: &[
        Field::opt_non_null("broker_federal_ein", Ty::Str),
        Field::opt_non_null("broker_tin", Ty::Str),
        Field::opt_non_null("carrier_group_id", Ty::NonEmpty),
        Field::opt_non_null("employer_email_address", Ty::Str),
        Field::opt_non_null("federal_ein", Ty::Str),
    ],
};

static TOKEN: Schema = Schema {
    fields: &[Field::req("grant_type", Ty::Enum(&["client_credentials"]))],
};

/// The fields of a (nested) create the sandbox keeps; the others are
/// validated and ignored.
#[derive(Deserialize)]
struct CreateRequest {
    /// Carrier UUID.
    carrier_id: String,
    /// Federal EIN (top-level create only).
    federal_ein: Option<String>,
    /// Group data.
    group_data: GroupData,
}

/// GroupSetupRequestPublicAPIRetryRequest: given fields replace stored ones.
#[derive(Deserialize)]
struct RetryRequest {
    /// Broker EIN.
    broker_federal_ein: Option<String>,
    /// Broker TIN.
    broker_tin: Option<String>,
    /// Corrected carrier group id.
    carrier_group_id: Option<String>,
    /// Employer email.
    employer_email_address: Option<String>,
    /// Federal EIN.
    federal_ein: Option<String>,
}

/// Handles a Noyo request.
pub fn handle(app: &App, call: &Call) -> Reply {
    if call.route.op == Op::NoyoToken {
        return token(app, call);
    }
    let authorised = call.bearer().is_some_and(|t| {
        lock(&app.tokens)
            .get(t)
            .is_some_and(|exp| *exp > Instant::now())
    });
    if !authorised {
        return noyo_error(401, "Invalid or expired access token.");
    }
    let now_ms = Utc::now().timestamp_millis();
    let step_ms = i64::try_from(app.settings.noyo_status_step.as_millis()).unwrap_or(i64::MAX);
    let mut world = lock(&app.world);
    let w = &mut *world;
    let t = Clock { now_ms, step_ms };
    match call.route.op {
        Op::NoyoCreateConnection => create(w, call, t),
        Op::NoyoCreateNestedConnection => create_nested(w, call, t),
        Op::NoyoListConnections => list(w, call, t, None),
        Op::NoyoListGroupConnections => {
            if w.noyo_groups.get(call.id()).is_none() {
                return noyo_error(404, "Group not found.");
            }
            list(w, call, t, Some(call.id()))
        }
        Op::NoyoGetConnection => match w.noyo_connections.get(call.id()) {
            Some(c) => Reply::json(200, &c.view(now_ms, step_ms)),
            None => noyo_error(404, "Group connection not found."),
        },
        Op::NoyoRetryConnection => retry(w, call, t),
        _ => noyo_error(404, "No such route."),
    }
}

/// The time a request is handled at.
#[derive(Clone, Copy)]
struct Clock {
    /// Now, Unix ms.
    now_ms: i64,
    /// `noyo_status_step` in ms.
    step_ms: i64,
}

/// Validation errors as Noyo reports them: one 400 message.
fn invalid(errors: Errors) -> Reply {
    let parts: Vec<String> = errors
        .iter()
        .map(|(field, msgs)| format!("{field}: {}", msgs.join(" ")))
        .collect();
    noyo_error(400, format!("Invalid request: {}", parts.join("; ")))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], schema: &Schema) -> Result<T, Reply> {
    let value = validate::parse_body(body).map_err(invalid)?;
    let errors = validate::check(&value, schema);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    serde_json::from_value(value)
        .map_err(|e| invalid(validate::one("body", &format!("Invalid body: {e}"))))
}

/// `POST /auth/public/token`: HTTP Basic `client_id:client_secret`, body
/// `{"grant_type": "client_credentials"}` (JSON or form-encoded).
fn token(app: &App, call: &Call) -> Reply {
    let creds = call
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .and_then(|b| decode_base64(b.trim()))
        .and_then(|raw| String::from_utf8(raw).ok());
    let expected = format!(
        "{}:{}",
        app.settings.noyo_client_id, app.settings.noyo_client_secret
    );
    if creds.as_deref() != Some(expected.as_str()) {
        return noyo_error(401, "Invalid client credentials.");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(call.body).into_owned().collect();
    let is_form = call
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let grant_ok = if is_form {
        form.iter()
            .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    } else {
        match parse::<Value>(call.body, &TOKEN) {
            Ok(_) => true,
            Err(reply) => return reply,
        }
    };
    if !grant_ok {
        return noyo_error(400, "grant_type must be client_credentials.");
    }
    let ttl = app.settings.noyo_token_ttl;
    let access = format!("noyo_sandbox_{}", uuid::Uuid::new_v4().simple());
    {
        let mut tokens = lock(&app.tokens);
        let now = Instant::now();
        tokens.retain(|_, exp| *exp > now);
        tokens.insert(access.clone(), now + ttl);
    }
    Reply::json(
        200,
        &json!({"access_token": access, "token_type": "bearer", "expires_in": ttl.as_secs()}),
    )
}

/// `POST /api/v1/group_connections`: a new Noyo group and its connection.
fn create(w: &mut World, call: &Call, t: Clock) -> Reply {
    let req: CreateRequest = match parse(call.body, &CREATE) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let created = t.now_ms / 1000;
    let group = NoyoGroup {
        id: uuid::Uuid::new_v4().to_string(),
        name: req.group_data.group_name.clone().unwrap_or_default(),
        created,
    };
    let conn = Connection {
        id: uuid::Uuid::new_v4().to_string(),
        group_id: group.id.clone(),
        carrier_id: normalise_uuid(&req.carrier_id),
        group_data: req.group_data,
        federal_ein: req.federal_ein,
        request_type: "initial".into(),
        created,
        phase_start_ms: t.now_ms,
        retried: false,
    };
    w.noyo_groups.put(&mut w.persist, &group.id.clone(), group);
    let reply = Reply::json(201, &conn.view(t.now_ms, t.step_ms));
    w.noyo_connections
        .put(&mut w.persist, &conn.id.clone(), conn);
    reply
}

/// `POST /api/v1/groups/{group_id}/group_connections`: another carrier for
/// an existing group (GroupSetupRequestResult, which adds `setup_data`).
fn create_nested(w: &mut World, call: &Call, t: Clock) -> Reply {
    let Some(group) = w.noyo_groups.get(call.id()) else {
        return noyo_error(404, "Group not found.");
    };
    let mut req: CreateRequest = match parse(call.body, &NESTED_CREATE) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    req.group_data.group_name = Some(group.name.clone());
    let conn = Connection {
        id: uuid::Uuid::new_v4().to_string(),
        group_id: group.id.clone(),
        carrier_id: normalise_uuid(&req.carrier_id),
        group_data: req.group_data,
        federal_ein: None,
        request_type: "initial".into(),
        created: t.now_ms / 1000,
        phase_start_ms: t.now_ms,
        retried: false,
    };
    let mut view = conn.view(t.now_ms, t.step_ms);
    if let Some(obj) = view.as_object_mut() {
        obj.insert("setup_data".into(), Value::Object(Map::new()));
    }
    w.noyo_connections
        .put(&mut w.persist, &conn.id.clone(), conn);
    Reply::json(201, &view)
}

/// `PUT /api/v1/group_connections/{id}/retry`: only from
/// `unable_to_connect` (else 409); fields given replace the stored ones.
fn retry(w: &mut World, call: &Call, t: Clock) -> Reply {
    let Some(old) = w.noyo_connections.get(call.id()) else {
        return noyo_error(404, "Group connection not found.");
    };
    let status = old.status(t.now_ms, t.step_ms);
    if status != "unable_to_connect" {
        return noyo_error(
            409,
            format!("Only connections in unable_to_connect can be retried; this one is {status}."),
        );
    }
    let req: RetryRequest = match parse(call.body, &RETRY) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut c = old.clone();
    let gd = &mut c.group_data;
    for (slot, v) in [
        (&mut gd.broker_federal_ein, req.broker_federal_ein),
        (&mut gd.broker_tin, req.broker_tin),
        (&mut gd.employer_email_address, req.employer_email_address),
    ] {
        if v.is_some() {
            *slot = v;
        }
    }
    if let Some(id) = req.carrier_group_id {
        gd.carrier_group_id = id;
    }
    if req.federal_ein.is_some() {
        c.federal_ein = req.federal_ein;
    }
    c.retried = true;
    c.phase_start_ms = t.now_ms;
    let reply = Reply::json(201, &c.view(t.now_ms, t.step_ms));
    w.noyo_connections.put(&mut w.persist, &c.id.clone(), c);
    reply
}

fn comma_list(call: &Call, name: &str) -> Option<Vec<String>> {
    call.query(name).filter(|s| !s.is_empty()).map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

/// Lists connections: filters `carrier_id`, `carrier_group_id` (needs one
/// `carrier_id`, as the spec says), `status`, `id`, `organization_id`,
/// paging `offset` (default 0) and `page_size` (default 100).
fn list(w: &mut World, call: &Call, t: Clock, group: Option<&str>) -> Reply {
    let carriers = comma_list(call, "carrier_id")
        .map(|v| v.iter().map(|c| normalise_uuid(c)).collect::<Vec<String>>());
    if let Some(bad) = carriers
        .iter()
        .flatten()
        .find(|c| uuid::Uuid::parse_str(c).is_err())
    {
        return noyo_error(400, format!("carrier_id: {bad:?} is not a valid UUID."));
    }
    let carrier_group = call.query("carrier_group_id").filter(|s| !s.is_empty());
    if carrier_group.is_some() && carriers.as_ref().map_or(0, Vec::len) != 1 {
        return noyo_error(
            400,
            "carrier_group_id must be used with a single carrier_id.",
        );
    }
    let statuses = comma_list(call, "status");
    if let Some(bad) = statuses
        .iter()
        .flatten()
        .find(|s| !STATUSES.contains(&s.as_str()))
    {
        return noyo_error(400, format!("status: unknown status {bad:?}."));
    }
    let ids = comma_list(call, "id");
    let org = call.query("organization_id").filter(|s| !s.is_empty());
    let number = |name: &str, default: usize, min: usize| match call.query(name) {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(noyo_error(
                400,
                format!("{name}: must be an integer of at least {min}."),
            )),
        },
    };
    let (offset, page_size) = match (
        number("offset", 0, 0),
        number("page_size", DEFAULT_PAGE_SIZE, 1),
    ) {
        (Ok(o), Ok(p)) => (o, p),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let matching: Vec<Value> = w
        .noyo_connections
        .ordered()
        .into_iter()
        .filter(|c| group.is_none_or(|g| c.group_id == g))
        .filter(|c| carriers.as_ref().is_none_or(|v| v.contains(&c.carrier_id)))
        .filter(|c| carrier_group.is_none_or(|g| c.group_data.carrier_group_id == g))
        .filter(|c| ids.as_ref().is_none_or(|v| v.contains(&c.id)))
        .filter(|_| org.is_none_or(|o| o == ORGANIZATION_ID))
        .filter(|c| {
            statuses
                .as_ref()
                .is_none_or(|v| v.iter().any(|s| s == c.status(t.now_ms, t.step_ms)))
        })
        .map(|c| c.view(t.now_ms, t.step_ms))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching.into_iter().skip(offset).take(page_size).collect();
    Reply::json(
        200,
        &json!({
            "meta": {
                "offset": offset,
                "page_num": offset / page_size + 1,
                "page_size": page_size,
                "total_records": total,
            },
            "response": page,
        }),
    )
}

/// Lower-case hyphenated form, so filters match however a UUID was written.
fn normalise_uuid(s: &str) -> String {
    uuid::Uuid::parse_str(s).map_or_else(|_| s.to_string(), |u| u.to_string())
}

/// Standard base64 (with or without padding); `None` if malformed.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(cgid: &str) -> Connection {
        Connection {
            id: "c".into(),
            group_id: "g".into(),
            carrier_id: "x".into(),
            group_data: GroupData {
                carrier_group_id: cgid.into(),
                group_name: None,
                broker_federal_ein: None,
                broker_tin: None,
                employer_email_address: None,
            },
            federal_ein: None,
            request_type: "initial".into(),
            created: 0,
            phase_start_ms: 0,
            retried: false,
        }
    }

    #[test]
    fn statuses_progress_to_outcome() {
        let c = conn("G-1");
        let seen: Vec<&str> = (0..6).map(|i| c.status(i * 100, 100)).collect();
        assert_eq!(
            seen,
            [
                "created",
                "processing",
                "noyo_review",
                "waiting_on_carrier",
                "completed",
                "completed"
            ]
        );
        assert_eq!(conn("g-ar").status(10_000, 100), "action_required");
        assert_eq!(conn("needs action").status(0, 0), "action_required");
        assert_eq!(conn("G-UTC").status(0, 0), "unable_to_connect");
        let mut retried = conn("G-UTC");
        retried.retried = true;
        assert_eq!(retried.status(0, 100), "processing");
        assert_eq!(retried.status(1_000, 100), "completed");
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(
            decode_base64("c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="),
            Some(b"sandbox-client:sandbox-secret".to_vec())
        );
        assert_eq!(decode_base64("!!"), None);
    }
}
