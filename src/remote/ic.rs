//! The Invisible Collector client: groups, whose names are unique per
//! account. A create that finds the name taken (409, or 422 in older API
//! versions) adopts the existing group.

use serde::{Deserialize, Serialize};

use super::error::RemoteError;
use super::http::{join, Http, Safety};

#[derive(Serialize)]
struct CreateGroup<'a> {
    name: &'a str,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// Invisible Collector's error body: `{code, message}`.
pub fn parse_error(status: u16, body: &str) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct E {
        code: Option<serde_json::Value>,
        message: Option<String>,
    }
    match serde_json::from_str::<E>(body) {
        Ok(E {
            code,
            message: Some(m),
        }) => (code.map(|c| c.to_string().trim_matches('"').to_owned()), m),
        _ => (
            None,
            format!("HTTP {status} {}", crate::model::truncate(body.trim(), 200)),
        ),
    }
}

pub struct Ic {
    pub http: Http,
    base: String,
    /// `Bearer <token>`; never logged.
    auth: String,
}

/// How a create ended.
pub enum Created {
    New(Group),
    /// The name was taken; this is the group that has it.
    Adopted(Group),
}

impl Ic {
    pub fn new(http: Http, base: &str, token: &str) -> Ic {
        Ic {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
        }
    }

    pub async fn find_group(&self, name: &str) -> Result<Option<Group>, RemoteError> {
        let url = join(&self.base, "/groups");
        let all: Vec<Group> = self
            .http
            .send(Safety::Repeatable, |c| {
                c.get(&url).header("Authorization", &self.auth)
            })
            .await?;
        Ok(all.into_iter().find(|g| g.name == name))
    }

    /// Create the group, or adopt the one that already has the name. The
    /// name's uniqueness makes a repeated create safe, so this retries like
    /// an idempotent call.
    pub async fn create_group(&self, name: &str) -> Result<Created, RemoteError> {
        let url = join(&self.base, "/groups");
        let body = CreateGroup { name };
        let res: Result<Group, _> = self
            .http
            .send(Safety::Repeatable, |c| {
                c.post(&url).header("Authorization", &self.auth).json(&body)
            })
            .await;
        match res {
            Ok(g) => Ok(Created::New(g)),
            Err(e) if matches!(e.status(), Some(409) | Some(422)) => {
                match self.find_group(name).await? {
                    Some(g) => Ok(Created::Adopted(g)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
