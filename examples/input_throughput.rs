//! Throughput of `read_employees`: writes a synthetic employees file (200k
//! rows by default, or the count given) to a temp dir and times reading it.
//!
//! cargo run --release --example input_throughput [ROWS]

use std::io::{BufWriter, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200_000,
    };
    let dir = tempfile::tempdir()?;
    let employers_path = dir.path().join("employers.csv");
    let employees_path = dir.path().join("employees.csv");

    let mut f = BufWriter::new(std::fs::File::create(&employers_path)?);
    writeln!(f, "employer_ref,legal_name,address_line1,city,postal_code,country_code,contact_name,contact_email,group_name")?;
    for e in 0..10 {
        for g in ["Health", "Dental"] {
            writeln!(f, "ER{e},Employer {e} Ltd,{e} High St,London,E1 6AN,gb,Jo Bloggs,hr{e}@example.com,{g}")?;
        }
    }
    f.flush()?;
    drop(f);

    let mut f = BufWriter::new(std::fs::File::create(&employees_path)?);
    writeln!(f, "employee_ref,employer_ref,first_name,last_name,email,phone_number,date_of_birth,start_on,sex_at_birth,national_tax_id,address_line1,address_line2,city,state,postal_code,country_code,nationality,end_on,groups,metadata.department,metadata.cost_centre")?;
    for i in 0..rows {
        writeln!(
            f,
            "EMP{i:07},ER{},Firstname{i},Lastname{i},person{i}@example.com,+4477009{:05},19{:02}-0{}-1{},2020-01-06,{},QQ{i:06}C,{i} Long Street Name,Flat {},London,,E1 6AN,gb,gb,{},Health;Dental,Engineering,CC{}",
            i % 10,
            i % 100_000,
            50 + i % 50,
            1 + i % 9,
            i % 10,
            if i % 2 == 0 { "female" } else { "male" },
            i % 30,
            if i % 20 == 0 { "2025-03-31" } else { "" },
            i % 7,
        )?;
    }
    f.flush()?;
    drop(f);
    let bytes = std::fs::metadata(&employees_path)?.len();

    let employers = benefits_sync::input::read_employers(&employers_path)?;
    assert!(
        employers.rejections.is_empty(),
        "{:?}",
        employers.rejections
    );

    let start = Instant::now();
    let mut valid = 0u64;
    let summary = benefits_sync::input::read_employees(&employees_path, &employers, |e| {
        valid += 1;
        std::hint::black_box(e);
    })?;
    let secs = start.elapsed().as_secs_f64();
    assert!(summary.rejections.is_empty(), "{}", summary.rejections[0]);
    assert_eq!(valid, rows);
    println!(
        "{rows} rows, {:.1} MB in {secs:.3} s: {:.0} rows/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        rows as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
