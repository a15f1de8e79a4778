//! Salted content fingerprints of the desired remote objects.
//!
//! Each object is cut into sections that an update replaces as a whole
//! (Kota replaces `home_address`, `legal_address`, `contact` and `metadata`
//! entirely), and each section is hashed on its own. The state keeps only the
//! hashes, seeded per state database, never the values.

use thin_vec::thin_vec;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use chrono::{Datelike, NaiveDate};

use super::op::Changes;
use crate::model::{
    AddressFields, ConnectionSpec, CountryCode, Employee, EmployeeFields, Employer, Text,
};
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
/// Index of the employer's address section.
pub const LEGAL_ADDRESS: usize = 2;
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
/// Index of the employee's address section.
pub const HOME_ADDRESS: usize = 3;
/// Index of the section of values Kota cannot update (date of birth, sex at
/// birth, address country).
pub const EMPLOYEE_FIXED: usize = 7;

/// A field-by-field hasher: every field is tagged, so `None` and `""` and
/// shifted boundaries all hash differently. One per object: each section
/// gathers its tagged fields in a reused buffer, and [`H::done`] hashes
/// them in one call and starts the next section.
///
/// (The one-shot seeded xxh3 of the gathered bytes is by definition the
/// streaming xxh3 of the same bytes, which is how earlier releases hashed
/// each section; the streaming hasher derived a 192-byte secret from the
/// seed for every section of every employee, most of a warm plan's hashing.)
struct H {
    seed: u64,
    buf: Vec<u8>,
}

impl H {
    fn new(seed: u64) -> H {
        H {
            seed,
            buf: Vec::with_capacity(256),
        }
    }
    fn s(&mut self, v: &str) -> &mut Self {
        self.buf.push(1);
        self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(v.as_bytes());
        self
    }
    fn o(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.s(v),
            None => {
                self.buf.push(0);
                self
            }
        }
    }
    fn t(&mut self, v: &Option<Text>) -> &mut Self {
        self.o(v.as_ref().map(Text::as_str))
    }
    /// The section's hash; the next call starts a new section.
    fn done(&mut self) -> u64 {
        let h = xxh3_64_with_seed(&self.buf, self.seed);
        self.buf.clear();
        h
    }
}

fn address(h: &mut H, a: &AddressFields) -> u64 {
    h.s(a.line1)
        .o(a.line2)
        .o(a.line3)
        .s(a.city)
        .o(a.state)
        .s(a.postal_code)
        .done()
}

fn metadata<'a>(h: &mut H, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    for (k, v) in pairs {
        h.s(k).s(v);
    }
    h.done()
}

/// A date as `YYYY-MM-DD` text (what its `Display` writes), without a
/// heap string: a million employees' two dates were two million
/// allocations. Dates from the exports have four-digit years; others take
/// the slow path.
struct Ymd([u8; 10]);

impl Ymd {
    fn of(d: NaiveDate) -> Result<Ymd, String> {
        let y = d.year();
        if !(0..=9999).contains(&y) {
            return Err(d.to_string());
        }
        let mut b = *b"0000-00-00";
        let digits = |b: &mut [u8], mut n: u32| {
            for c in b.iter_mut().rev() {
                *c = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        digits(&mut b[0..4], y as u32);
        digits(&mut b[5..7], d.month());
        digits(&mut b[8..10], d.day());
        Ok(Ymd(b))
    }
}

/// Hash `d` as its text: identical to hashing `d.to_string()`.
fn date(h: &mut H, d: NaiveDate) -> &mut H {
    match Ymd::of(d) {
        Ok(Ymd(b)) => h.s(std::str::from_utf8(&b).expect("ascii digits")),
        Err(text) => h.s(&text),
    }
}

pub fn employer(seed: u64, e: &Employer) -> Sections {
    let h = &mut H::new(seed);
    Sections(thin_vec![
        h.s(e.legal_name.as_str()).done(),
        h.t(&e.registration_number).done(),
        address(h, &e.address.fields()),
        h.s(e.contact.name.as_str())
            .s(e.contact.email.as_str())
            .done(),
        match e.earliest_benefits_start_date {
            Some(d) => date(h, d).done(),
            None => h.o(None).done(),
        },
        metadata(h, e.metadata.iter()),
        h.s(e.address.country.as_str()).done(),
    ])
}

pub fn employee(seed: u64, e: &Employee) -> Sections {
    employee_fields(seed, &e.fields())
}

/// [`employee`] from borrowed values (the reader fingerprints rows without
/// making owned employees).
pub fn employee_fields(seed: u64, e: &EmployeeFields) -> Sections {
    let h = &mut H::new(seed);
    Sections(thin_vec![
        h.s(e.first_name).s(e.last_name).done(),
        h.s(e.national_tax_id).done(),
        h.s(e.email).s(e.phone).done(),
        address(h, &e.home_address),
        h.o(e.nationality.as_ref().map(CountryCode::as_str)).done(),
        date(h, e.start_on).done(),
        metadata(h, e.metadata.iter()),
        date(h, e.date_of_birth)
            .s(e.sex_at_birth.as_str())
            .s(e.home_address.country.as_str())
            .done(),
    ])
}

pub fn connection(seed: u64, employer: &Employer, c: &ConnectionSpec) -> Sections {
    Sections(thin_vec![H::new(seed)
        .s(c.carrier_group_id.as_str())
        .o(c.federal_ein.as_ref().map(|e| e.as_str()))
        .o(c.broker_federal_ein.as_ref().map(|e| e.as_str()))
        .t(&c.broker_tin)
        .s(employer.legal_name.as_str())
        .s(employer.contact.email.as_str())
        .done()])
}

/// The sections of `new` that differ from `old`, as bits over `names`. An
/// old blob of another length (an older release's layout) counts as all
/// changed.
pub fn changed(names: &[&'static str], old: &Sections, new: &Sections) -> Changes {
    (0..names.len())
        .filter(|i| old.0.get(*i) != new.0.get(*i) || old.0.len() != new.0.len())
        .fold(Changes::NONE, Changes::with)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::Xxh3;

    /// Earlier releases hashed each section with a streaming xxh3 made
    /// from the seed; the one-shot hash of the same bytes must be the same
    /// number (on both sides of xxh3's 16/128/240-byte paths), or every
    /// synced object would look changed after an upgrade.
    #[test]
    fn sections_hash_as_the_streaming_hasher_did() {
        for seed in [0, 7, 0x9E37_79B9_7F4A_7C15, u64::MAX] {
            for n in [
                0usize, 1, 3, 11, 16, 17, 120, 128, 129, 230, 240, 241, 500, 1024, 5000,
            ] {
                let field: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
                let mut h = H::new(seed);
                let one_shot = h.s(&field).o(None).s("x").done();
                let mut x = Xxh3::with_seed(seed);
                let len = (n as u32).to_le_bytes();
                let one = 1u32.to_le_bytes();
                let parts: [&[u8]; 7] = [&[1], &len, field.as_bytes(), &[0], &[1], &one, b"x"];
                for part in parts {
                    x.update(part);
                }
                assert_eq!(one_shot, x.digest(), "seed {seed}, {n} bytes");
                // `done` starts the next section afresh.
                let mut x = Xxh3::with_seed(seed);
                x.update(&[1, 1, 0, 0, 0, b'y']);
                assert_eq!(h.s("y").done(), x.digest());
            }
        }
    }

    /// Fingerprints recorded by earlier releases hashed `to_string()`:
    /// the stack copy must give the same text, or every employee would
    /// look changed after an upgrade.
    #[test]
    fn dates_hash_as_their_display_text() {
        let mut d = NaiveDate::from_ymd_opt(1899, 12, 25).unwrap();
        let end = NaiveDate::from_ymd_opt(2101, 1, 3).unwrap();
        while d <= end {
            let Ymd(b) = Ymd::of(d).unwrap();
            assert_eq!(std::str::from_utf8(&b).unwrap(), d.to_string());
            d = d.succ_opt().unwrap();
        }
        for d in [
            NaiveDate::from_ymd_opt(0, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(999, 2, 3).unwrap(),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
        ] {
            let Ymd(b) = Ymd::of(d).unwrap();
            assert_eq!(std::str::from_utf8(&b).unwrap(), d.to_string());
        }
        let far = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap();
        assert_eq!(Ymd::of(far).err(), Some(far.to_string()));
        let hash = |d: NaiveDate| date(&mut H::new(7), d).done();
        let text = |d: NaiveDate| H::new(7).s(&d.to_string()).done();
        assert_eq!(hash(end), text(end));
        assert_eq!(hash(far), text(far));
    }
}
