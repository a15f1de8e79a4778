//! Synthetic exports of any size, for tests, crash drills and benchmarks.
//!
//! Deterministic by seed: the same options write the same bytes. Day 2 of
//! the same seed is day 1 with a share of employees changed (address, email,
//! metadata), a share leaving (`end_on`), and new hires appended.

use std::io::{BufWriter, Write};
use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub employers: usize,
    pub employees: usize,
    pub seed: u64,
    /// 1 or 2.
    pub day: u8,
    /// Share of employees changed on day 2.
    pub change_rate: f64,
    /// Share of employees leaving on day 2.
    pub leave_rate: f64,
    /// New hires on day 2, as a share of employees.
    pub hire_rate: f64,
    /// Employers get 1..=max_groups groups and 0..=max_carriers carriers.
    pub max_groups: usize,
    pub max_carriers: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            employers: 10,
            employees: 100,
            seed: 1,
            day: 1,
            change_rate: 0.01,
            leave_rate: 0.005,
            hire_rate: 0.01,
            max_groups: 5,
            max_carriers: 5,
        }
    }
}

const COUNTRIES: [(&str, Option<&str>, &str, &str); 5] = [
    ("gb", None, "London", "SW1A 1AA"),
    ("ie", None, "Dublin", "D02 X285"),
    ("us", Some("CA"), "San Francisco", "94105"),
    ("ca", Some("ON"), "Toronto", "M5V 2T6"),
    ("es", None, "Madrid", "28001"),
];
const GROUPS: [&str; 5] = ["Health", "Dental", "Vision", "Life", "Pension"];
const FIRST: [&str; 8] = ["Ann", "Bob", "Cara", "Dev", "Eve", "Finn", "Gia", "Hugo"];
const LAST: [&str; 8] = [
    "Lee", "Ray", "Ng", "Ortiz", "Patel", "Quinn", "Rossi", "Silva",
];

fn carrier_uuid(i: usize) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        0x8fac_0000u32 + i as u32,
        i
    )
}

/// Per-employer shape, derived from the seed so both days agree.
fn employer_shape(seed: u64, i: usize, o: &GenOptions) -> (usize, usize, usize) {
    let mut r = SmallRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let groups = r.gen_range(1..=o.max_groups.clamp(1, GROUPS.len()));
    let carriers = r.gen_range(0..=o.max_carriers.min(5));
    let country = r.gen_range(0..COUNTRIES.len());
    (groups, carriers, country)
}

/// Write `employers.csv` and `employees.csv` into `dir`.
pub fn generate(dir: &Path, o: &GenOptions) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let employers = o.employers.max(1);
    let mut w = BufWriter::new(std::fs::File::create(dir.join("employers.csv"))?);
    writeln!(
        w,
        "employer_ref,legal_name,registration_number,address_line1,city,state,postal_code,country_code,contact_name,contact_email,group_name,group_description,carrier_id,carrier_group_id,federal_ein,metadata.cost_center"
    )?;
    for i in 0..employers {
        let (groups, carriers, c) = employer_shape(o.seed, i, o);
        let (cc, state, city, postal) = COUNTRIES[c];
        let rows = groups.max(carriers);
        for (row, name) in GROUPS
            .iter()
            .chain(std::iter::repeat(&""))
            .take(rows)
            .enumerate()
        {
            let (g, gd) = if row < groups {
                (*name, format!("{name} cover"))
            } else {
                ("", String::new())
            };
            let (cid, cgid, ein) = if row < carriers {
                (
                    carrier_uuid(row),
                    format!("{}{:06}", 10 + row, i),
                    format!("{:02}-{:07}", 10 + row, i % 10_000_000),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            writeln!(
                w,
                "ER{i:06},Employer {i} Ltd,REG{i:08},{} Commerce St,{city},{},{postal},{cc},Contact {i},hr{i}@example.com,{g},{gd},{cid},{cgid},{ein},CC{}",
                i % 900 + 1,
                state.unwrap_or(""),
                i % 50
            )?;
        }
    }
    w.flush()?;
    let mut w = BufWriter::new(std::fs::File::create(dir.join("employees.csv"))?);
    writeln!(
        w,
        "employee_ref,employer_ref,first_name,last_name,email,phone_number,date_of_birth,start_on,sex_at_birth,national_tax_id,address_line1,city,state,postal_code,country_code,end_on,groups,metadata.department"
    )?;
    let hires = if o.day >= 2 {
        (o.employees as f64 * o.hire_rate).round() as usize
    } else {
        0
    };
    let mut day2 = SmallRng::seed_from_u64(o.seed.wrapping_add(2));
    for j in 0..o.employees + hires {
        let mut r = SmallRng::seed_from_u64(
            o.seed ^ 0xABCD ^ (j as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
        );
        let er = r.gen_range(0..employers);
        let (groups, _, c) = employer_shape(o.seed, er, o);
        let (cc, state, city, postal) = COUNTRIES[c];
        let member_of: Vec<&str> = (0..groups)
            .filter(|_| r.gen_bool(0.6))
            .map(|g| GROUPS[g])
            .collect();
        let (mut street, mut email_tag, mut end_on) = (r.gen_range(1..999), "", String::new());
        if o.day >= 2 && j < o.employees {
            if day2.gen_bool(o.change_rate.clamp(0.0, 1.0)) {
                street += 1000;
                email_tag = ".new";
            }
            if day2.gen_bool(o.leave_rate.clamp(0.0, 1.0)) {
                end_on = "2030-12-31".into();
            }
        }
        let born = 1960 + r.gen_range(0..40);
        writeln!(
            w,
            "EE{j:08},ER{er:06},{},{},person{j}{email_tag}@example.com,+4477009{:05},{born}-{:02}-{:02},20{:02}-{:02}-01,{},TAX{j:09},{street} Home Rd,{city},{},{postal},{cc},{end_on},{},Dept {}",
            FIRST[j % FIRST.len()],
            LAST[(j / FIRST.len()) % LAST.len()],
            j % 100_000,
            r.gen_range(1..=12),
            r.gen_range(1..=28),
            r.gen_range(10..=24),
            r.gen_range(1..=12),
            if j % 2 == 0 { "female" } else { "male" },
            state.unwrap_or(""),
            member_of.join(";"),
            j % 20
        )?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_options_same_bytes_and_every_row_is_valid() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let o = GenOptions {
            employers: 7,
            employees: 300,
            ..GenOptions::default()
        };
        generate(a.path(), &o).unwrap();
        generate(b.path(), &o).unwrap();
        for f in ["employers.csv", "employees.csv"] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap()
            );
        }
        let ers = crate::input::read_employers(&a.path().join("employers.csv")).unwrap();
        assert!(ers.rejections.is_empty(), "{:?}", ers.rejections.first());
        assert_eq!(ers.employers.len(), 7);
        let mut n = 0;
        let s = crate::input::read_employees(&a.path().join("employees.csv"), &ers, |_| n += 1)
            .unwrap();
        assert!(s.rejections.is_empty(), "{:?}", s.rejections.first());
        assert_eq!(n, 300);
    }
}
