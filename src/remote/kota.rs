//! The Kota client: employers, employees, groups and memberships.
//!
//! Request bodies follow Kota's published schemas field by field
//! (`additionalProperties: false` there, so nothing extra is sent).
//! Creates and offboards carry an `Idempotency-Key`; updates are whole-object
//! PUTs and safe to repeat.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::error::RemoteError;
use super::http::{join, Http, Safety};
use crate::model::{Address, Employee, Employer, GroupSpec, Metadata};

/// Kota's `AddressModel` (creates: with country).
#[derive(Serialize)]
struct AddressIn<'a> {
    line1: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line2: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line3: Option<&'a str>,
    city: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    postal_code: &'a str,
    country_code: &'a str,
}

/// Kota's `AddressModelWithoutCountry` (updates). The object is replaced
/// whole, so absent lines are sent as `null` to clear old values.
#[derive(Serialize)]
struct AddressUpdate<'a> {
    line1: &'a str,
    line2: Option<&'a str>,
    line3: Option<&'a str>,
    city: &'a str,
    state: Option<&'a str>,
    postal_code: &'a str,
}

fn address_in(a: &Address) -> AddressIn<'_> {
    AddressIn {
        line1: a.line1.as_str(),
        line2: a.line2.as_ref().map(|t| t.as_str()),
        line3: a.line3.as_ref().map(|t| t.as_str()),
        city: a.city.as_str(),
        state: a.state.as_ref().map(|t| t.as_str()),
        postal_code: a.postal_code.as_str(),
        country_code: a.country.as_str(),
    }
}

fn address_update(a: &Address) -> AddressUpdate<'_> {
    AddressUpdate {
        line1: a.line1.as_str(),
        line2: a.line2.as_ref().map(|t| t.as_str()),
        line3: a.line3.as_ref().map(|t| t.as_str()),
        city: a.city.as_str(),
        state: a.state.as_ref().map(|t| t.as_str()),
        postal_code: a.postal_code.as_str(),
    }
}

#[derive(Serialize)]
struct ContactIn<'a> {
    name: &'a str,
    email: &'a str,
}

/// Whether `o` carries `natural_key` as its benefits-sync ref (metadata `id`).
fn has_ref(o: &Object, natural_key: &str) -> bool {
    o.metadata
        .as_ref()
        .and_then(|m| m.get(Metadata::RESERVED_KEY))
        .map(String::as_str)
        == Some(natural_key)
}

/// Metadata as sent: the user's keys plus ours, `id` = the payroll ref.
fn metadata_out<'a>(m: &'a Metadata, natural_key: &'a str) -> BTreeMap<&'a str, &'a str> {
    let mut out: BTreeMap<&str, &str> = m.iter().collect();
    out.insert(Metadata::RESERVED_KEY, natural_key);
    out
}

#[derive(Serialize)]
struct CreateEmployer<'a> {
    legal_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_number: Option<&'a str>,
    legal_address: AddressIn<'a>,
    contact: ContactIn<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_benefits_start_date: Option<NaiveDate>,
    metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize, Default)]
struct UpdateEmployer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_number: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_address: Option<AddressUpdate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<ContactIn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_benefits_start_date: Option<Option<NaiveDate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
struct CreateEmployee<'a> {
    employer_id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    date_of_birth: NaiveDate,
    sex_at_birth: &'a str,
    home_address: AddressIn<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nationality: Option<&'a str>,
    national_tax_id: &'a str,
    start_on: NaiveDate,
    phone_number: &'a str,
    email: &'a str,
    metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize, Default)]
struct UpdateEmployee<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_address: Option<AddressUpdate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nationality: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    national_tax_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_on: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
struct Offboard<'a> {
    offboard_on: String,
    offboard_reason: &'a str,
}

#[derive(Serialize)]
struct CreateGroup<'a> {
    employer_id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

#[derive(Serialize)]
struct AddToGroup<'a> {
    employee_id: &'a str,
    create_enrolment_intents: bool,
}

#[derive(Serialize)]
struct EligibilityRequest<'a> {
    employee_id: &'a str,
}

/// The parts of Kota's responses benefits-sync reads. Other fields are
/// ignored (Kota may add fields; the sandbox test suite checks the full
/// schema).
#[derive(Deserialize, Debug, Clone)]
pub struct Object {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Debug)]
struct Page<T> {
    items: Vec<T>,
    #[serde(default)]
    has_next_page: Option<bool>,
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    page_size: Option<u64>,
}

impl<T> Page<T> {
    fn more(&self) -> bool {
        match (
            self.has_next_page,
            self.total_count,
            self.page,
            self.page_size,
        ) {
            (Some(m), ..) => m,
            (None, Some(t), Some(p), Some(s)) => p * s < t,
            _ => false,
        }
    }
}

/// A membership as `GET /groups/{id}/employees` lists it.
#[derive(Deserialize, Debug)]
pub struct Membership {
    pub id: String,
    pub group_id: String,
}

/// The eligibility pre-check's verdict.
#[derive(Deserialize, Debug, Clone)]
pub struct Eligibility {
    pub eligibility_status: String,
    #[serde(default)]
    pub reasons: Vec<Reason>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

impl Eligibility {
    pub fn eligible(&self) -> bool {
        self.eligibility_status != "ineligible"
    }
}

/// Kota's problem+json: `title`, `detail`, `error_code`, and `errors` (a
/// map of field to messages). Values are not repeated back by Kota.
pub fn parse_error(status: u16, body: &str) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct Problem {
        title: Option<String>,
        detail: Option<String>,
        error_code: Option<String>,
        errors: Option<BTreeMap<String, Vec<String>>>,
    }
    match serde_json::from_str::<Problem>(body) {
        Ok(p) => {
            let mut msg = p
                .detail
                .or(p.title)
                .unwrap_or_else(|| format!("HTTP {status}"));
            if let Some(errors) = p.errors.filter(|e| !e.is_empty()) {
                let fields: Vec<String> = errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.join("; ")))
                    .collect();
                msg = format!("{msg} ({})", fields.join(", "));
            }
            (p.error_code, msg)
        }
        Err(_) => (
            None,
            format!("HTTP {status} {}", crate::model::truncate(body.trim(), 200)),
        ),
    }
}

/// The Kota client.
pub struct Kota {
    pub http: Http,
    base: String,
    /// `Bearer <key>`; never logged.
    auth: String,
}

impl Kota {
    pub fn new(http: Http, base: &str, api_key: &str) -> Kota {
        Kota {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {api_key}"),
        }
    }

    fn url(&self, path: &str) -> String {
        join(&self.base, path)
    }

    async fn post<B: Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idem: Option<&str>,
    ) -> Result<T, RemoteError> {
        let url = self.url(path);
        let safety = if idem.is_some() {
            Safety::Repeatable
        } else {
            Safety::Once
        };
        self.http
            .send(safety, |c| {
                let r = c.post(&url).header("Authorization", &self.auth).json(body);
                match idem {
                    Some(k) => r.header("Idempotency-Key", k),
                    None => r,
                }
            })
            .await
    }

    async fn put<B: Serialize + Sync>(&self, path: &str, body: &B) -> Result<Object, RemoteError> {
        let url = self.url(path);
        self.http
            .send(Safety::Repeatable, |c| {
                c.put(&url).header("Authorization", &self.auth).json(body)
            })
            .await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, RemoteError> {
        let url = self.url(path);
        self.http
            .send(Safety::Repeatable, |c| {
                c.get(&url).header("Authorization", &self.auth).query(query)
            })
            .await
    }

    /// Every page of a list endpoint, 100 at a time.
    async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, &str)],
        mut stop: impl FnMut(&T) -> bool,
    ) -> Result<Option<T>, RemoteError> {
        let mut page = 1u64;
        loop {
            let p = page.to_string();
            let mut q: Vec<(&str, &str)> = filters.to_vec();
            q.push(("page", &p));
            q.push(("page_size", "100"));
            let got: Page<T> = self.get(path, &q).await?;
            let more = got.more() && !got.items.is_empty();
            if let Some(found) = got.items.into_iter().find(|i| stop(i)) {
                return Ok(Some(found));
            }
            if !more || page >= 100_000 {
                return Ok(None);
            }
            page += 1;
        }
    }

    pub async fn create_employer(&self, e: &Employer, idem: &str) -> Result<Object, RemoteError> {
        let body = CreateEmployer {
            legal_name: e.legal_name.as_str(),
            registration_number: e.registration_number.as_ref().map(|t| t.as_str()),
            legal_address: address_in(&e.address),
            contact: ContactIn {
                name: e.contact.name.as_str(),
                email: e.contact.email.as_str(),
            },
            earliest_benefits_start_date: e.earliest_benefits_start_date,
            metadata: metadata_out(&e.metadata, e.employer_ref.as_str()),
        };
        self.post("/employers", &body, Some(idem)).await
    }

    /// Send the sections named in `changes` (names from
    /// `plan::fingerprint::EMPLOYER_SECTIONS`), each whole.
    pub async fn update_employer(
        &self,
        id: &str,
        e: &Employer,
        changes: &[&str],
    ) -> Result<Object, RemoteError> {
        let mut body = UpdateEmployer::default();
        for c in changes {
            match *c {
                "legal_name" => body.legal_name = Some(e.legal_name.as_str()),
                "registration_number" => {
                    body.registration_number =
                        Some(e.registration_number.as_ref().map(|t| t.as_str()))
                }
                "legal_address" => body.legal_address = Some(address_update(&e.address)),
                "contact" => {
                    body.contact = Some(ContactIn {
                        name: e.contact.name.as_str(),
                        email: e.contact.email.as_str(),
                    })
                }
                "earliest_benefits_start_date" => {
                    body.earliest_benefits_start_date = Some(e.earliest_benefits_start_date)
                }
                "metadata" => {
                    body.metadata = Some(metadata_out(&e.metadata, e.employer_ref.as_str()))
                }
                _ => {}
            }
        }
        self.put(&format!("/employers/{id}"), &body).await
    }

    /// Find an employer by the payroll ref kept in its metadata. Kota has no
    /// filter for it, so this pages through the account's employers.
    pub async fn find_employer(&self, employer_ref: &str) -> Result<Option<Object>, RemoteError> {
        self.list_all::<Object>("/employers", &[], |o| has_ref(o, employer_ref))
            .await
    }

    pub async fn create_group(
        &self,
        employer_id: &str,
        g: &GroupSpec,
    ) -> Result<Object, RemoteError> {
        let body = CreateGroup {
            employer_id,
            name: g.name.as_str(),
            description: g.description.as_ref().map(|t| t.as_str()),
        };
        self.post("/groups", &body, None).await
    }

    pub async fn find_group(
        &self,
        employer_id: &str,
        name: &str,
    ) -> Result<Option<Object>, RemoteError> {
        self.list_all::<Object>("/groups", &[("employer_id", employer_id)], |o| {
            o.name.as_deref() == Some(name)
        })
        .await
    }

    pub async fn create_employee(
        &self,
        employer_id: &str,
        e: &Employee,
        idem: &str,
    ) -> Result<Object, RemoteError> {
        let body = CreateEmployee {
            employer_id,
            first_name: e.first_name.as_str(),
            last_name: e.last_name.as_str(),
            date_of_birth: e.date_of_birth,
            sex_at_birth: e.sex_at_birth.as_str(),
            home_address: address_in(&e.home_address),
            nationality: e.nationality.as_ref().map(|c| c.as_str()),
            national_tax_id: e.national_tax_id.expose(),
            start_on: e.start_on,
            phone_number: e.phone.as_str(),
            email: e.email.as_str(),
            metadata: metadata_out(&e.metadata, e.employee_ref.as_str()),
        };
        self.post("/employees", &body, Some(idem)).await
    }

    /// Send the sections named in `changes` (names from
    /// `plan::fingerprint::EMPLOYEE_SECTIONS`), each whole.
    pub async fn update_employee(
        &self,
        id: &str,
        e: &Employee,
        changes: &[&str],
    ) -> Result<Object, RemoteError> {
        let mut body = UpdateEmployee::default();
        for c in changes {
            match *c {
                "name" => {
                    body.first_name = Some(e.first_name.as_str());
                    body.last_name = Some(e.last_name.as_str());
                }
                "national_tax_id" => body.national_tax_id = Some(e.national_tax_id.expose()),
                "contact" => {
                    body.email = Some(e.email.as_str());
                    body.phone_number = Some(e.phone.as_str());
                }
                "home_address" => body.home_address = Some(address_update(&e.home_address)),
                "nationality" => {
                    body.nationality = Some(e.nationality.as_ref().map(|c| c.as_str()))
                }
                "start_on" => body.start_on = Some(e.start_on),
                "metadata" => {
                    body.metadata = Some(metadata_out(&e.metadata, e.employee_ref.as_str()))
                }
                _ => {}
            }
        }
        self.put(&format!("/employees/{id}"), &body).await
    }

    /// Find an employee by the payroll ref kept in its metadata `id`
    /// (Kota's `metadata_id` filter matches partially; the match here is exact).
    pub async fn find_employee(
        &self,
        employer_id: &str,
        employee_ref: &str,
    ) -> Result<Option<Object>, RemoteError> {
        self.list_all::<Object>(
            "/employees",
            &[("employer_id", employer_id), ("metadata_id", employee_ref)],
            |o| has_ref(o, employee_ref),
        )
        .await
    }

    pub async fn offboard_employee(
        &self,
        id: &str,
        on: NaiveDate,
        reason: &str,
        idem: &str,
    ) -> Result<Object, RemoteError> {
        let body = Offboard {
            offboard_on: format!("{on}T00:00:00Z"),
            offboard_reason: reason,
        };
        self.post(&format!("/employees/{id}/offboard"), &body, Some(idem))
            .await
    }

    pub async fn check_eligibility(
        &self,
        group_id: &str,
        employee_id: &str,
    ) -> Result<Eligibility, RemoteError> {
        // A dry run on Kota's side: safe to repeat.
        let url = self.url(&format!("/groups/{group_id}/eligibility_check"));
        let body = EligibilityRequest { employee_id };
        self.http
            .send(Safety::Repeatable, |c| {
                c.post(&url).header("Authorization", &self.auth).json(&body)
            })
            .await
    }

    pub async fn add_to_group(
        &self,
        group_id: &str,
        employee_id: &str,
        create_enrolment_intents: bool,
        idem: &str,
    ) -> Result<Membership, RemoteError> {
        let body = AddToGroup {
            employee_id,
            create_enrolment_intents,
        };
        self.post(&format!("/groups/{group_id}/employees"), &body, Some(idem))
            .await
    }

    pub async fn find_membership(
        &self,
        group_id: &str,
        employee_id: &str,
    ) -> Result<Option<Membership>, RemoteError> {
        self.list_all::<Membership>(
            &format!("/groups/{group_id}/employees"),
            &[("employee_id", employee_id)],
            |m| m.id == employee_id,
        )
        .await
    }
}
