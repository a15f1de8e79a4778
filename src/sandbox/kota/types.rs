//! Kota objects as stored and returned (field for field the response
//! schemas of the Kota OpenAPI spec), and the request bodies.
//!
//! Request bodies are deserialized only after [`super::schemas`] accepted
//! them, so their serde shapes need not report errors well.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Kota metadata: string keys to string values.
pub type Metadata = BTreeMap<String, String>;

/// AddressModel (with country).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Address {
    /// First line, never empty.
    pub line1: String,
    /// Second line.
    pub line2: Option<String>,
    /// Third line.
    pub line3: Option<String>,
    /// City, never empty.
    pub city: String,
    /// State or province (required for us and ca).
    pub state: Option<String>,
    /// Postal code, never empty.
    pub postal_code: String,
    /// Lower-case ISO 3166 alpha-2 code.
    pub country_code: String,
}

/// AddressModelWithoutCountry: updates cannot move an address abroad.
#[derive(Clone, Debug, Deserialize)]
pub struct AddressUpdate {
    /// First line.
    pub line1: String,
    /// Second line; `null` or absent deletes it (whole-object replacement).
    pub line2: Option<String>,
    /// Third line; likewise.
    pub line3: Option<String>,
    /// City.
    pub city: String,
    /// State; likewise.
    pub state: Option<String>,
    /// Postal code.
    pub postal_code: String,
}

impl AddressUpdate {
    /// The full address after replacing `old` with this one.
    pub fn replacing(self, old: &Address) -> Address {
        Address {
            line1: self.line1,
            line2: self.line2,
            line3: self.line3,
            city: self.city,
            state: self.state,
            postal_code: self.postal_code,
            country_code: old.country_code.clone(),
        }
    }
}

/// ContactModel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Contact {
    /// Contact person.
    pub name: String,
    /// Contact email.
    pub email: String,
}

/// EmployerResponse.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Employer {
    /// `er_` + 32 hex.
    pub id: String,
    /// The sandbox platform (`pt_...`), the same for every object.
    pub platform_id: String,
    /// EmployerStatus: `active` on creation, `offboarding` once offboarded.
    pub status: String,
    /// Legal name.
    pub legal_name: String,
    /// Registration number.
    pub registration_number: Option<String>,
    /// Legal address.
    pub legal_address: Address,
    /// Contact.
    pub contact: Contact,
    /// When the employer is offboarded (RFC 3339).
    pub offboard_on: Option<String>,
    /// `YYYY-MM-DD`.
    pub earliest_benefits_start_date: Option<String>,
    /// Caller's key-value pairs; `metadata["id"]` is the payroll ref.
    pub metadata: Option<Metadata>,
    /// Always `employer`.
    pub object: String,
}

/// EmployeeBankAccount: only the last four characters are kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BankAccountView {
    /// Last four characters of the IBAN.
    pub account_number_last4: String,
}

/// EmployeeResponse.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Employee {
    /// The sandbox platform.
    pub platform_id: String,
    /// `ee_` + 32 hex.
    pub id: String,
    /// Owning employer.
    pub employer_id: String,
    /// EmployeeStatus: `active` on creation, `offboarding` once offboarded.
    pub status: String,
    /// EoR customer id.
    pub external_customer_id: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `male` or `female`.
    pub sex_at_birth: String,
    /// Home address.
    pub home_address: Address,
    /// Country code.
    pub nationality: Option<String>,
    /// Tax id.
    pub national_tax_id: String,
    /// `YYYY-MM-DD`.
    pub start_on: String,
    /// `YYYY-MM-DD`.
    pub earliest_benefits_start_date: Option<String>,
    /// E.164.
    pub phone_number: String,
    /// Email.
    pub email: String,
    /// RFC 3339, set by offboarding.
    pub offboard_on: Option<String>,
    /// Bank account, last four only.
    pub bank_account: Option<BankAccountView>,
    /// Caller's key-value pairs; `metadata["id"]` is the payroll ref.
    pub metadata: Option<Metadata>,
    /// Always `employee`.
    pub object: String,
}

/// GroupResponse.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Group {
    /// `gr_` + 32 hex.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// GroupStatus: `pending` on creation; `archived` only through
    /// `POST /_sandbox/kota/groups/{id}/archive`.
    pub status: String,
    /// Always `undefined` (no policies in the sandbox).
    pub group_type: String,
    /// Always `manual`.
    pub enrolment_type: String,
    /// Owning employer.
    pub employer_id: String,
    /// Always `group`.
    pub object: String,
    /// Always empty.
    pub group_policy_ids: Vec<String>,
    /// Always empty.
    pub group_quote_intent_ids: Vec<String>,
    /// Always empty.
    pub group_policy_intent_ids: Vec<String>,
}

/// GroupEmployeeResponse: an employee's membership of a group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Membership {
    /// Always `group_employee`.
    pub object: String,
    /// The employee (`ee_...`).
    pub id: String,
    /// The group.
    pub group_id: String,
    /// Always empty.
    pub policies: Vec<serde_json::Value>,
    /// Always empty.
    pub enrolments: Vec<serde_json::Value>,
    /// From the request's policy configuration.
    pub desired_policy_start_date: Option<String>,
    /// From the request's policy configuration.
    pub enrolment_date: Option<String>,
    /// `pending`: no group policy, so no eligibility check ran.
    pub eligibility_status: String,
    /// `not_available`: no group policy to enrol in.
    pub enrolment_status: String,
    /// Always empty.
    pub scheduled_group_transitions: Vec<serde_json::Value>,
}

/// A stored successful response to an idempotent request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Hash of method, concrete path and canonical body.
    pub fingerprint: String,
    /// The response status.
    pub status: u16,
    /// The response body, byte for byte.
    pub body: String,
    /// When it was stored (Unix ms); records expire after one hour.
    pub created_ms: i64,
}

/// CreateEmployerRequest.
#[derive(Debug, Deserialize)]
pub struct CreateEmployer {
    /// Legal name.
    pub legal_name: String,
    /// Registration number.
    pub registration_number: Option<String>,
    /// Legal address.
    pub legal_address: Address,
    /// Contact.
    pub contact: Contact,
    /// Earliest benefits start.
    pub earliest_benefits_start_date: Option<String>,
    /// Metadata.
    pub metadata: Option<Metadata>,
}

/// UpdateEmployerRequest: absent or `null` fields are left unchanged.
#[derive(Debug, Deserialize)]
pub struct UpdateEmployer {
    /// Legal name.
    pub legal_name: Option<String>,
    /// Registration number.
    pub registration_number: Option<String>,
    /// Replaces the whole address, keeping the country.
    pub legal_address: Option<AddressUpdate>,
    /// Replaces the contact.
    pub contact: Option<Contact>,
    /// Earliest benefits start.
    pub earliest_benefits_start_date: Option<String>,
    /// Replaces the whole metadata map.
    pub metadata: Option<Metadata>,
}

/// CreateEmployeeBankAccount.
#[derive(Debug, Deserialize)]
pub struct BankAccountIn {
    /// IBAN.
    pub account_number: String,
}

impl BankAccountIn {
    /// What the API echoes back.
    pub fn view(&self) -> BankAccountView {
        let chars: Vec<char> = self.account_number.chars().collect();
        let start = chars.len().saturating_sub(4);
        BankAccountView {
            account_number_last4: chars[start..].iter().collect(),
        }
    }
}

/// CreateEmployeeRequest.
#[derive(Debug, Deserialize)]
pub struct CreateEmployee {
    /// Owning employer.
    pub employer_id: String,
    /// EoR customer.
    pub external_customer_id: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Birth date.
    pub date_of_birth: String,
    /// Sex at birth.
    pub sex_at_birth: String,
    /// Home address.
    pub home_address: Address,
    /// Nationality.
    pub nationality: Option<String>,
    /// Tax id.
    pub national_tax_id: String,
    /// Start date.
    pub start_on: String,
    /// Earliest benefits start.
    pub earliest_benefits_start_date: Option<String>,
    /// Phone.
    pub phone_number: String,
    /// Email.
    pub email: String,
    /// Bank account.
    pub bank_account: Option<BankAccountIn>,
    /// Metadata.
    pub metadata: Option<Metadata>,
}

/// UpdateEmployeeRequest: absent or `null` fields are left unchanged.
#[derive(Debug, Deserialize)]
pub struct UpdateEmployee {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Replaces the whole address, keeping the country.
    pub home_address: Option<AddressUpdate>,
    /// Nationality.
    pub nationality: Option<String>,
    /// Tax id.
    pub national_tax_id: Option<String>,
    /// Phone.
    pub phone_number: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Start date.
    pub start_on: Option<String>,
    /// Earliest benefits start.
    pub earliest_benefits_start_date: Option<String>,
    /// Bank account.
    pub bank_account: Option<BankAccountIn>,
    /// Replaces the whole metadata map.
    pub metadata: Option<Metadata>,
}

/// OffboardEmployeeRequest.
#[derive(Debug, Deserialize)]
pub struct OffboardEmployee {
    /// RFC 3339.
    pub offboard_on: String,
    /// Free text; accepted, not returned (the response has no such field).
    #[allow(dead_code)]
    pub offboard_reason: String,
}

/// CreateGroupRequest.
#[derive(Debug, Deserialize)]
pub struct CreateGroup {
    /// Owning employer.
    pub employer_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// UpdateGroupRequest.
#[derive(Debug, Deserialize)]
pub struct UpdateGroup {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// PolicyConfigurationRequest.
#[derive(Debug, Deserialize)]
pub struct PolicyConfiguration {
    /// Desired policy start.
    pub desired_policy_start_date: Option<String>,
    /// Enrolment date.
    pub enrolment_date: Option<String>,
}

/// AddEmployeeToGroupRequest.
#[derive(Debug, Deserialize)]
pub struct AddEmployeeToGroup {
    /// The employee.
    pub employee_id: String,
    /// Accepted and ignored: the sandbox has no enrolment intents.
    #[allow(dead_code)]
    pub create_enrolment_intents: Option<bool>,
    /// Per-employee policy configuration.
    pub policy_configuration: Option<PolicyConfiguration>,
}

/// CheckGroupEligibilityRequest.
#[derive(Debug, Deserialize)]
pub struct CheckEligibility {
    /// The employee.
    pub employee_id: String,
}
