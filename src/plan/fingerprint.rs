//! Salted content fingerprints of the desired remote objects.
//!
//! Each object is cut into sections that an update replaces as a whole
//! (Kota replaces `home_address`, `legal_address`, `contact` and `metadata`
//! entirely), and each section is hashed on its own. The state keeps only the
//! hashes, seeded per state database, never the values.

use xxhash_rust::xxh3::Xxh3;

use crate::model::{Address, ConnectionSpec, Employee, Employer, Metadata, Text};
use crate::state::Sections;

/// Sections of an employer, in blob order.
pub const EMPLOYER_SECTIONS: [&str; 6] = [
    "legal_name",
    "registration_number",
    "legal_address",
    "contact",
    "earliest_benefits_start_date",
    "metadata",
];
/// Index of the section Kota cannot update: the address's country.
pub const EMPLOYER_COUNTRY: usize = 6;

/// Sections of an employee, in blob order.
pub const EMPLOYEE_SECTIONS: [&str; 7] = [
    "name",
    "national_tax_id",
    "contact",
    "home_address",
    "nationality",
    "start_on",
    "metadata",
];
/// Index of the section of values Kota cannot update (date of birth, sex at
/// birth, address country).
pub const EMPLOYEE_FIXED: usize = 7;

/// A field-by-field hasher: every field is tagged, so `None` and `""` and
/// shifted boundaries all hash differently.
struct H(Xxh3);

impl H {
    fn new(seed: u64) -> H {
        H(Xxh3::with_seed(seed))
    }
    fn s(&mut self, v: &str) -> &mut Self {
        self.0.update(&[1]);
        self.0.update(&(v.len() as u32).to_le_bytes());
        self.0.update(v.as_bytes());
        self
    }
    fn o(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.s(v),
            None => {
                self.0.update(&[0]);
                self
            }
        }
    }
    fn t(&mut self, v: &Option<Text>) -> &mut Self {
        self.o(v.as_ref().map(Text::as_str))
    }
    fn done(&mut self) -> u64 {
        self.0.digest()
    }
}

fn address(h: &mut H, a: &Address) -> u64 {
    h.s(a.line1.as_str())
        .t(&a.line2)
        .t(&a.line3)
        .s(a.city.as_str())
        .t(&a.state)
        .s(a.postal_code.as_str())
        .done()
}

fn metadata(h: &mut H, m: &Metadata) -> u64 {
    for (k, v) in m.iter() {
        h.s(k).s(v);
    }
    h.done()
}

pub fn employer(seed: u64, e: &Employer) -> Sections {
    let d = e.earliest_benefits_start_date.map(|d| d.to_string());
    Sections(
        vec![
            H::new(seed).s(e.legal_name.as_str()).done(),
            H::new(seed).t(&e.registration_number).done(),
            address(&mut H::new(seed), &e.address),
            H::new(seed)
                .s(e.contact.name.as_str())
                .s(e.contact.email.as_str())
                .done(),
            H::new(seed).o(d.as_deref()).done(),
            metadata(&mut H::new(seed), &e.metadata),
            H::new(seed).s(e.address.country.as_str()).done(),
        ]
        .into(),
    )
}

pub fn employee(seed: u64, e: &Employee) -> Sections {
    let nationality = e.nationality.map(|c| c.as_str().to_owned());
    let start = e.start_on.to_string();
    let dob = e.date_of_birth.to_string();
    Sections(
        vec![
            H::new(seed)
                .s(e.first_name.as_str())
                .s(e.last_name.as_str())
                .done(),
            H::new(seed).s(e.national_tax_id.expose()).done(),
            H::new(seed).s(e.email.as_str()).s(e.phone.as_str()).done(),
            address(&mut H::new(seed), &e.home_address),
            H::new(seed).o(nationality.as_deref()).done(),
            H::new(seed).s(&start).done(),
            metadata(&mut H::new(seed), &e.metadata),
            H::new(seed)
                .s(&dob)
                .s(e.sex_at_birth.as_str())
                .s(e.home_address.country.as_str())
                .done(),
        ]
        .into(),
    )
}

pub fn connection(seed: u64, employer: &Employer, c: &ConnectionSpec) -> Sections {
    Sections(
        vec![H::new(seed)
            .s(c.carrier_group_id.as_str())
            .o(c.federal_ein.as_ref().map(|e| e.as_str()))
            .o(c.broker_federal_ein.as_ref().map(|e| e.as_str()))
            .t(&c.broker_tin)
            .s(employer.legal_name.as_str())
            .s(employer.contact.email.as_str())
            .done()]
        .into(),
    )
}

/// The sections of `new` that differ from `old`, by name. An old blob of
/// another length (an older release's layout) counts as all changed.
pub fn changed(names: &[&'static str], old: &Sections, new: &Sections) -> Vec<&'static str> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| old.0.get(*i) != new.0.get(*i) || old.0.len() != new.0.len())
        .map(|(_, n)| *n)
        .collect()
}
