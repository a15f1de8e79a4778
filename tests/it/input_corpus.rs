//! The bad-input corpus: every file under `tests/corpus/` (plus a few made
//! at test time: UTF-16, 1 MB lines, missing paths) with the exact
//! rejections it must produce, and that its valid rows still come through.
//! Proptests at the end feed arbitrary and mutated bytes to both readers,
//! and mutated exports through planning and every report format.

use std::io::Write;
use std::path::{Path, PathBuf};

use benefits_sync::input::{
    read_employees_as_of, read_employers, EmployeesSummary, Employers, InputError,
};
use benefits_sync::model::{Employee, Rule};
use chrono::NaiveDate;

/// Expected rejection: line, column, rule.
type Exp = (u64, Option<&'static str>, Rule);

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(rel)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

fn got(rejections: &[benefits_sync::input::Rejection]) -> Vec<(u64, Option<String>, Rule)> {
    rejections
        .iter()
        .map(|r| (r.line, r.column.clone(), r.rule))
        .collect()
}

fn want(exp: &[Exp]) -> Vec<(u64, Option<String>, Rule)> {
    exp.iter()
        .map(|(l, c, r)| (*l, c.map(str::to_owned), *r))
        .collect()
}

fn employers_case(rel: &str, exp: &[Exp], valid: &[&str]) -> Employers {
    let e = read_employers(&corpus(rel)).unwrap_or_else(|err| panic!("{rel}: {err}"));
    assert_eq!(got(&e.rejections), want(exp), "{rel}: rejections");
    let refs: Vec<&str> = e
        .employers
        .iter()
        .map(|e| e.employer_ref.as_str())
        .collect();
    assert_eq!(refs, valid, "{rel}: valid employers");
    for r in &e.rejections {
        assert!(r.file.ends_with(rel), "{rel}: file is the path given");
        if let Some(k) = &r.key {
            assert!(
                e.rejected.iter().any(|x| x.as_str() == k),
                "{rel}: {k} rejected"
            );
        }
    }
    e
}

fn base() -> Employers {
    employers_case(
        "base_employers.csv",
        &[(5, Some("contact_email"), Rule::Email)],
        &["ER1", "ER2"],
    )
}

fn read_emps(
    path: &Path,
    employers: &Employers,
) -> Result<(EmployeesSummary, Vec<Employee>), InputError> {
    let mut out = Vec::new();
    let s = read_employees_as_of(path, employers, today(), |e| out.push(e))?;
    Ok((s, out))
}

/// Checks the rejections and the employees kept (streamed minus duplicates).
fn employees_case(rel: &str, exp: &[Exp], valid: &[&str]) -> (EmployeesSummary, Vec<Employee>) {
    let employers = base();
    let (s, emps) =
        read_emps(&corpus(rel), &employers).unwrap_or_else(|err| panic!("{rel}: {err}"));
    assert_eq!(got(&s.rejections), want(exp), "{rel}: rejections");
    let kept: Vec<&str> = emps
        .iter()
        .filter(|e| !s.duplicates.contains(&e.employee_ref))
        .map(|e| e.employee_ref.as_str())
        .collect();
    assert_eq!(kept, valid, "{rel}: valid employees");
    (s, emps)
}

fn employers_err(rel: &str) -> InputError {
    match read_employers(&corpus(rel)) {
        Ok(e) => panic!("{rel}: expected an error, got {:?}", e.rejections),
        Err(e) => e,
    }
}

fn employees_err(rel: &str) -> InputError {
    let employers = base();
    match read_emps(&corpus(rel), &employers) {
        Ok((s, _)) => panic!("{rel}: expected an error, got {:?}", s.rejections),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- employers

#[test]
fn employers_valid_merges_groups_and_connections() {
    let e = employers_case("employers/valid.csv", &[], &["ER1", "ER2"]);
    assert_eq!(e.rows, 3);
    let er1 = &e.employers[0];
    let groups: Vec<&str> = er1.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["Dental", "Health"]);
    assert_eq!(er1.metadata.get("cost_centre").unwrap(), "CC1");
    assert_eq!(er1.address.country.as_str(), "gb");
    assert_eq!(e.employers[1].connections.len(), 1);
    assert_eq!(
        e.content_hash,
        blake3::hash(&std::fs::read(corpus("employers/valid.csv")).unwrap())
            .to_hex()
            .to_string()
    );
    assert!(e.warnings.is_empty());
}

#[test]
fn employers_bom_and_crlf() {
    let e = employers_case("employers/bom_crlf.csv", &[], &["ER1", "ER2"]);
    assert_eq!(e.employers[0].metadata.get("cost_centre").unwrap(), "CC1");
}

#[test]
fn employers_any_column_order_case_and_padding() {
    let e = employers_case("employers/order_case_whitespace.csv", &[], &["ER1"]);
    assert_eq!(e.employers[0].legal_name.as_str(), "Acme Ltd");
    assert_eq!(e.employers[0].groups.len(), 2);
}

#[test]
fn employers_unknown_column_is_one_warning() {
    let e = employers_case("employers/unknown_column.csv", &[], &["ER1", "ER2"]);
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].message.contains("shoe_size"));
    assert_eq!(e.warnings[0].line, Some(1));
}

#[test]
fn employers_missing_columns_listed_in_one_error() {
    match employers_err("employers/missing_columns.csv") {
        InputError::MissingColumns { columns, .. } => assert_eq!(
            columns,
            ["city", "postal_code", "country_code", "contact_name"]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn employers_reserved_and_duplicate_columns_are_header_errors() {
    for (rel, needle) in [
        ("employers/metadata_id.csv", "reserved"),
        ("employers/duplicate_column.csv", "appears twice"),
        ("employers/latin1_header.csv", "UTF-8"),
    ] {
        match employers_err(rel) {
            InputError::Header { message, .. } => assert!(message.contains(needle), "{message}"),
            other => panic!("{rel}: {other:?}"),
        }
    }
}

#[test]
fn employers_state_required_for_us_and_ca() {
    employers_case(
        "employers/state_required.csv",
        &[
            (2, Some("state"), Rule::StateRequired),
            (3, Some("state"), Rule::StateRequired),
        ],
        &["ER3"],
    );
}

#[test]
fn employers_bad_country() {
    employers_case(
        "employers/bad_country.csv",
        &[
            (2, Some("country_code"), Rule::Country),
            (3, Some("country_code"), Rule::Country),
        ],
        &["ER3"],
    );
}

#[test]
fn employers_conflict_rejects_every_row_of_the_employer() {
    let e = employers_case(
        "employers/employer_conflict.csv",
        &[
            (2, Some("legal_name"), Rule::EmployerConflict),
            (4, Some("legal_name"), Rule::EmployerConflict),
            (5, Some("legal_name"), Rule::EmployerConflict),
            (6, Some("legal_name"), Rule::EmployerConflict),
        ],
        &["ER2"],
    );
    assert!(e.rejections[0].message.contains("line 4"));
    assert!(e.rejections[1].message.contains("line 2"));
    assert_eq!(e.rejections[0].key.as_deref(), Some("ER1"));
}

#[test]
fn employers_group_and_carrier_conflicts() {
    employers_case(
        "employers/group_conflict.csv",
        &[(4, Some("group_description"), Rule::GroupConflict)],
        &["ER2"],
    );
    let e = employers_case(
        "employers/carrier_conflict.csv",
        &[(3, Some("federal_ein"), Rule::GroupConflict)],
        &["ER2"],
    );
    // The same carrier in another case is the same UUID: one connection.
    assert_eq!(e.employers[0].connections.len(), 1);
    assert_eq!(e.employers[0].groups.len(), 2);
}

#[test]
fn employers_half_a_connection_or_group() {
    employers_case(
        "employers/half_connection.csv",
        &[
            (2, Some("carrier_group_id"), Rule::Required),
            (3, Some("carrier_id"), Rule::Required),
            (4, Some("carrier_id"), Rule::Required),
            (5, Some("group_name"), Rule::Required),
        ],
        &["ER5"],
    );
}

#[test]
fn employers_uuid_and_ein() {
    let e = employers_case(
        "employers/bad_uuid_ein.csv",
        &[
            (2, Some("carrier_id"), Rule::Uuid),
            (3, Some("federal_ein"), Rule::Ein),
            (4, Some("broker_federal_ein"), Rule::Ein),
        ],
        &["ER4"],
    );
    let c = &e.employers[0].connections[0];
    assert_eq!(c.federal_ein.as_ref().unwrap().as_str(), "987654321");
    assert_eq!(c.broker_tin.as_ref().unwrap().as_str(), "TIN-1");
}

#[test]
fn employers_required_values() {
    let e = employers_case(
        "employers/required_values.csv",
        &[
            (2, Some("legal_name"), Rule::Required),
            (3, Some("employer_ref"), Rule::Required),
            (4, Some("contact_name"), Rule::Required),
            (5, Some("address_line1"), Rule::Required),
        ],
        &[],
    );
    assert_eq!(e.rejections[1].key, None);
}

#[test]
fn employers_contact_email_and_dates() {
    employers_case(
        "employers/bad_contact_email_and_date.csv",
        &[
            (2, Some("contact_email"), Rule::Email),
            (3, Some("earliest_benefits_start_date"), Rule::Date),
            (4, Some("earliest_benefits_start_date"), Rule::Date),
        ],
        &["ER4"],
    );
}

#[test]
fn employers_metadata_limits() {
    let long_key = format!("metadata.{}", "k".repeat(41));
    let e = read_employers(&corpus("employers/metadata_limits.csv")).unwrap();
    assert_eq!(
        got(&e.rejections),
        vec![
            (2, Some("metadata.notes".to_owned()), Rule::Metadata),
            (3, Some(long_key), Rule::Metadata),
        ]
    );
    assert_eq!(e.employers.len(), 1);
    assert_eq!(e.employers[0].metadata.get("notes").unwrap(), "short");
}

#[test]
fn employers_ragged_rows() {
    let e = employers_case(
        "employers/ragged.csv",
        &[(3, None, Rule::Malformed), (4, None, Rule::Malformed)],
        &["ER1", "ER4"],
    );
    assert_eq!(
        e.rejections[0].message,
        "row has 22 fields; the header has 21"
    );
}

#[test]
fn employers_unbalanced_quote_names_the_opening_line() {
    let e = employers_case(
        "employers/unbalanced_quote.csv",
        &[(3, Some("legal_name"), Rule::Malformed)],
        &["ER1"],
    );
    let m = &e.rejections[0].message;
    assert!(
        m.contains("opened on line 3") && m.contains("lines 3 to 6"),
        "{m}"
    );
}

#[test]
fn employers_latin1_row() {
    let e = employers_case(
        "employers/latin1_row.csv",
        &[(3, Some("city"), Rule::Malformed)],
        &["ER1"],
    );
    assert!(e.rejections[0].message.contains("UTF-8"));
}

#[test]
fn employers_header_only_is_a_warning() {
    let e = employers_case("employers/header_only.csv", &[], &[]);
    assert_eq!(e.rows, 0);
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].message.contains("no data rows"));
}

#[test]
fn employers_empty_and_blank_files() {
    for rel in ["employers/empty.csv", "employers/blank_only.csv"] {
        let err = employers_err(rel);
        assert!(matches!(err, InputError::Empty { .. }), "{rel}: {err:?}");
        assert!(err.to_string().contains("expected a header row"));
    }
}

#[test]
fn employers_quoting_commas_escaped_quotes_and_line_breaks() {
    let e = employers_case("employers/quoting.csv", &[], &["ER1"]);
    assert_eq!(e.employers[0].legal_name.as_str(), "Acme, \"The Best\" Ltd");
    assert_eq!(e.employers[0].address.line1.as_str(), "Flat 2\n1 High St");
    assert_eq!(e.employers[0].line, 2);
    assert_eq!(e.employers[0].groups.len(), 2);
}

#[test]
fn employers_blank_lines_keep_line_numbers() {
    let e = employers_case(
        "employers/blank_lines.csv",
        &[
            (6, Some("country_code"), Rule::Country),
            (8, Some("country_code"), Rule::Country),
        ],
        &["ER1"],
    );
    assert_eq!(e.rows, 3);
    assert_eq!(e.employers[0].line, 3);
}

// ---------------------------------------------------------------- employees

#[test]
fn employees_valid() {
    let (s, emps) = employees_case("employees/valid.csv", &[], &["P1", "P2", "P3"]);
    assert_eq!(s.rows, 3);
    let groups: Vec<&str> = emps[0].groups.iter().map(|g| g.as_str()).collect();
    assert_eq!(groups, ["Dental", "Health"]);
    assert_eq!(emps[0].metadata.get("department").unwrap(), "Sales");
    assert_eq!(emps[1].home_address.country.as_str(), "us");
    assert!(emps[1].nationality.is_none() && emps[1].metadata.is_empty());
    assert_eq!(emps[2].end_on, NaiveDate::from_ymd_opt(2025, 3, 31));
    assert_eq!(emps[2].line, 4);
    assert!(s.warnings.is_empty() && s.duplicates.is_empty());
}

#[test]
fn employees_phone_email_sex() {
    employees_case(
        "employees/bad_phone.csv",
        &[
            (2, Some("phone_number"), Rule::Phone),
            (3, Some("phone_number"), Rule::Phone),
            (4, Some("phone_number"), Rule::Required),
        ],
        &["P4"],
    );
    let (s, _) = employees_case(
        "employees/bad_email.csv",
        &[
            (2, Some("email"), Rule::Email),
            (3, Some("email"), Rule::Email),
        ],
        &["P3"],
    );
    assert_eq!(
        s.rejections[0].to_string(),
        format!(
            // The bad value is personal data: named by line and column only.
            "{}:2: column 'email': is not an email address like name@example.com [email]",
            corpus("employees/bad_email.csv").display()
        )
    );
    employees_case(
        "employees/sex_at_birth.csv",
        &[
            (2, Some("sex_at_birth"), Rule::SexAtBirth),
            (3, Some("sex_at_birth"), Rule::SexAtBirth),
        ],
        &["P3"],
    );
}

#[test]
fn employees_dates() {
    employees_case(
        "employees/date_of_birth_range.csv",
        &[
            (2, Some("date_of_birth"), Rule::DateOfBirthRange),
            (3, Some("date_of_birth"), Rule::DateOfBirthRange),
            (4, Some("date_of_birth"), Rule::DateOfBirthRange),
        ],
        &["P4"],
    );
    employees_case(
        "employees/start_on_range.csv",
        &[(2, Some("start_on"), Rule::DateRange)],
        &["P2"],
    );
    employees_case(
        "employees/end_before_start.csv",
        &[
            (2, Some("end_on"), Rule::EndBeforeStart),
            (4, Some("end_on"), Rule::Date),
        ],
        &["P2"],
    );
    employees_case(
        "employees/bad_dates.csv",
        &[
            (2, Some("date_of_birth"), Rule::Date),
            (3, Some("start_on"), Rule::Date),
            (4, Some("date_of_birth"), Rule::Required),
        ],
        &[],
    );
}

#[test]
fn employees_tax_id_is_never_echoed() {
    let (s, _) = employees_case(
        "employees/tax_id.csv",
        &[
            (2, Some("national_tax_id"), Rule::Required),
            (3, Some("national_tax_id"), Rule::TooLong),
        ],
        &["P3"],
    );
    for r in &s.rejections {
        assert!(!r.to_string().contains("SECRET"), "{r}");
    }
}

#[test]
fn employees_employer_unknown_or_rejected() {
    employees_case(
        "employees/unknown_employer.csv",
        &[(2, Some("employer_ref"), Rule::UnknownEmployer)],
        &["P2"],
    );
    employees_case(
        "employees/employer_rejected.csv",
        &[
            (2, Some("employer_ref"), Rule::EmployerRejected),
            (3, Some("employer_ref"), Rule::EmployerRejected),
        ],
        &["P3"],
    );
}

#[test]
fn employees_unknown_group() {
    let (s, _) = employees_case(
        "employees/unknown_group.csv",
        &[
            (2, Some("groups"), Rule::UnknownGroup),
            (3, Some("groups"), Rule::UnknownGroup),
            (4, Some("groups"), Rule::UnknownGroup),
        ],
        &["P4"],
    );
    assert!(s.rejections[0].message.contains("'Vision'"));
}

#[test]
fn employees_duplicates_reject_every_occurrence() {
    let (s, emps) = employees_case(
        "employees/duplicates.csv",
        &[
            (2, Some("employee_ref"), Rule::DuplicateKey),
            (4, Some("employee_ref"), Rule::DuplicateKey),
            (5, Some("email"), Rule::Email),
            (6, Some("employee_ref"), Rule::DuplicateKey),
            (7, Some("employee_ref"), Rule::DuplicateKey),
        ],
        &["P2", "P4"],
    );
    // P1's first row was streamed before its twin was seen.
    assert_eq!(emps.len(), 3);
    let dups: Vec<&str> = s.duplicates.iter().map(|d| d.as_str()).collect();
    assert_eq!(dups, ["P1"]);
    assert!(s.rejections[0].message.contains("line 4"));
    assert!(s.rejections[1].message.contains("line 2"));
    assert!(s.rejections[3].message.contains("line 5"));
}

#[test]
fn employees_nationality_and_state() {
    employees_case(
        "employees/nationality.csv",
        &[(2, Some("nationality"), Rule::Country)],
        &["P2", "P3"],
    );
    employees_case(
        "employees/state_required.csv",
        &[(2, Some("state"), Rule::StateRequired)],
        &["P2"],
    );
}

#[test]
fn employees_ragged_and_unbalanced_quotes() {
    employees_case(
        "employees/ragged.csv",
        &[(2, None, Rule::Malformed), (3, None, Rule::Malformed)],
        &["P3"],
    );
    let (s, _) = employees_case(
        "employees/unbalanced_quote.csv",
        &[(3, Some("first_name"), Rule::Malformed)],
        &["P1", "P6"],
    );
    assert!(s.rejections[0].message.contains("opened on line 3"));
    assert_eq!(s.rejections[0].key.as_deref(), Some("P2"));
    let (s, _) = employees_case(
        "employees/unclosed_quote_at_eof.csv",
        &[(3, Some("groups"), Rule::Malformed)],
        &["P1"],
    );
    let m = &s.rejections[0].message;
    assert!(m.contains("lines 3 to 4"), "{m}");
}

#[test]
fn employees_encodings() {
    employees_case(
        "employees/latin1_row.csv",
        &[(3, Some("first_name"), Rule::Malformed)],
        &["P1", "P3"],
    );
    assert!(matches!(
        employees_err("employees/latin1_header.csv"),
        InputError::Header { .. }
    ));
    let (s, _) = employees_case(
        "employees/blank_lines_crlf_bom.csv",
        &[(6, Some("phone_number"), Rule::Phone)],
        &["P1", "P3"],
    );
    assert_eq!(s.rows, 3);
}

#[test]
fn employees_first_bad_column_in_header_order() {
    employees_case(
        "employees/first_bad_column_wins.csv",
        &[
            (2, Some("email"), Rule::Email),
            (3, Some("phone_number"), Rule::Phone),
            (4, Some("employer_ref"), Rule::UnknownEmployer),
        ],
        &["P4"],
    );
}

#[test]
fn employees_refs_and_group_names() {
    employees_case(
        "employees/bad_refs_and_group_names.csv",
        &[
            (2, Some("employee_ref"), Rule::Malformed),
            (3, Some("groups"), Rule::Malformed),
            (4, Some("employee_ref"), Rule::Required),
        ],
        &["P4"],
    );
}

#[test]
fn employees_metadata_limits() {
    let (_, emps) = employees_case(
        "employees/metadata_limits.csv",
        &[
            (2, Some("metadata.k23"), Rule::Metadata),
            (4, Some("metadata.k3"), Rule::Metadata),
        ],
        &["P2"],
    );
    assert_eq!(emps[0].metadata.len(), 24);
}

#[test]
fn employees_whole_file_problems() {
    let employers = base();
    let (s, emps) = read_emps(&corpus("employees/header_only_crlf.csv"), &employers).unwrap();
    assert_eq!((s.rows, emps.len(), s.warnings.len()), (0, 0, 1));
    match employees_err("employees/missing_columns.csv") {
        InputError::MissingColumns { columns, .. } => assert_eq!(
            columns,
            [
                "last_name",
                "phone_number",
                "start_on",
                "sex_at_birth",
                "national_tax_id",
                "address_line1",
                "city",
                "postal_code",
                "country_code"
            ]
        ),
        other => panic!("{other:?}"),
    }
    match employees_err("employees/reserved_metadata_id.csv") {
        InputError::Header { message, .. } => assert!(message.contains("reserved"), "{message}"),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------- made at test time

const HEAD: &str = "employee_ref,employer_ref,first_name,last_name,email,phone_number,date_of_birth,start_on,sex_at_birth,national_tax_id,address_line1,city,postal_code,country_code";

fn row(r: &str, first: &str) -> String {
    format!("{r},ER1,{first},Doe,{r}@example.com,+447700900001,1985-04-12,2020-01-06,female,QQ1,1 Main St,London,E1 6AN,gb\n")
}

fn temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

#[test]
fn utf16_with_bom_is_a_header_error() {
    let text = format!("{HEAD}\n{}", row("P1", "Jane"));
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let f = temp(&bytes);
    match read_emps(f.path(), &base()) {
        Err(InputError::Header { message, .. }) => assert!(message.contains("UTF-16")),
        other => panic!("{:?}", other.map(|(s, _)| s.rejections)),
    }
    match read_employers(f.path()) {
        Err(InputError::Header { message, .. }) => assert!(message.contains("UTF-16")),
        other => panic!("{:?}", other.map(|e| e.rejections)),
    }
    // Without the mark, every ASCII letter is followed by a NUL.
    let f = temp(&bytes[2..]);
    match read_emps(f.path(), &base()) {
        Err(InputError::Header { message, .. }) => assert!(message.contains("UTF-16")),
        other => panic!("{:?}", other.map(|(s, _)| s.rejections)),
    }
}

#[test]
fn one_megabyte_field_is_too_long_and_not_copied() {
    let huge = "x".repeat(1 << 20);
    let text = format!("{HEAD}\n{}{}", row("P1", &huge), row("P2", "Jane"));
    let f = temp(text.as_bytes());
    let (s, emps) = read_emps(f.path(), &base()).unwrap();
    assert_eq!(
        got(&s.rejections),
        want(&[(2, Some("first_name"), Rule::TooLong)])
    );
    assert!(s.rejections[0].to_string().len() < 300);
    assert_eq!(emps.len(), 1);
}

#[test]
fn one_megabyte_line_without_separators_is_ragged() {
    let huge = "y".repeat(1 << 20);
    let text = format!("{HEAD}\n{huge}\n{}", row("P2", "Jane"));
    let f = temp(text.as_bytes());
    let (s, emps) = read_emps(f.path(), &base()).unwrap();
    assert_eq!(got(&s.rejections), want(&[(2, None, Rule::Malformed)]));
    assert!(s.rejections[0].to_string().len() < 300);
    assert_eq!(emps.len(), 1);
}

#[test]
fn huge_value_in_an_ignored_column_is_ignored() {
    let huge = "z".repeat(1 << 20);
    let text = format!("{HEAD},notes\n{},{huge}\n", row("P1", "Jane").trim_end());
    let f = temp(text.as_bytes());
    let (s, emps) = read_emps(f.path(), &base()).unwrap();
    assert!(s.rejections.is_empty());
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(emps.len(), 1);
}

#[test]
fn missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    assert!(matches!(
        read_employers(&missing),
        Err(InputError::NotFound { .. })
    ));
    assert!(matches!(
        read_emps(&missing, &base()),
        Err(InputError::NotFound { .. })
    ));
    assert!(matches!(
        read_employers(dir.path()),
        Err(InputError::IsDirectory { .. })
    ));
    assert!(matches!(
        read_emps(dir.path(), &base()),
        Err(InputError::IsDirectory { .. })
    ));
}

#[test]
fn the_corpus_is_big_enough() {
    let count = |d: &str| std::fs::read_dir(corpus(d)).unwrap().count();
    assert!(count("employers") + count("employees") >= 40);
}

// ---------------------------------------------------------- never panics

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn both(bytes: &[u8]) {
        let f = temp(bytes);
        let employers = read_employers(f.path()).ok();
        let fallback = base();
        let employers = employers.as_ref().unwrap_or(&fallback);
        let mut n = 0u64;
        if let Ok(s) = read_employees_as_of(f.path(), employers, today(), |_| n += 1) {
            // Each row is streamed or rejected once; a streamed row that
            // turned out duplicated gets one late rejection.
            assert_eq!(
                n + s.rejections.len() as u64,
                s.rows + s.duplicates.len() as u64
            );
            let mut sorted = s.rejections.clone();
            sorted.sort_by(|a, b| (a.line, &a.column).cmp(&(b.line, &b.column)));
            assert_eq!(sorted, s.rejections);
        }
    }

    fn mutate(mut bytes: Vec<u8>, edits: Vec<Edit>) -> Vec<u8> {
        for e in edits {
            let n = bytes.len().max(1);
            match e {
                Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Edit::Delete(i) => {
                    if !bytes.is_empty() {
                        bytes.remove(i % n);
                    }
                }
                Edit::Replace(i, b) => {
                    if !bytes.is_empty() {
                        bytes[i % n] = b;
                    }
                }
            }
        }
        bytes
    }

    fn plan_and_render(employers: &[u8], employees: &[u8], offboard_missing: bool) {
        use benefits_sync::plan::{self, PlanContext};
        use benefits_sync::report::{self, Format};
        let (er, ee) = (temp(employers), temp(employees));
        let ctx = PlanContext {
            today: today(),
            offboard_missing,
        };
        let snap = benefits_sync::state::Snapshot::default();
        // A whole-file problem is an error, not a plan: a correct answer.
        let Ok(plan) = plan::build(er.path(), ee.path(), &snap, ctx, plan::Keep::Everything) else {
            return;
        };
        for (i, op) in plan.operations.iter().enumerate() {
            assert!(op.deps.iter().all(|d| (*d as usize) < i), "{op:?}");
        }
        for format in [Format::Text, Format::Json, Format::Csv, Format::Markdown] {
            let mut out = Vec::new();
            report::render(&plan, format, &mut out).unwrap();
            if format == Format::Json {
                serde_json::from_slice::<serde_json::Value>(&out).unwrap();
            }
        }
    }

    fn seed() -> Vec<u8> {
        let mut s = std::fs::read(corpus("employees/valid.csv")).unwrap();
        s.extend_from_slice(&std::fs::read(corpus("employees/duplicates.csv")).unwrap());
        s
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, u8),
        Delete(usize),
        Replace(usize, u8),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let byte = prop_oneof![
            Just(b'"'),
            Just(b','),
            Just(b'\n'),
            Just(b'\r'),
            Just(b';'),
            Just(0xE9u8),
            Just(0xFFu8),
            any::<u8>()
        ];
        prop_oneof![
            (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
            (any::<usize>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            both(&bytes);
        }

        #[test]
        fn mutated_csv(edits in proptest::collection::vec(edit(), 1..12)) {
            let mut bytes = seed();
            for e in edits {
                let n = bytes.len().max(1);
                match e {
                    Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                    Edit::Delete(i) => { if !bytes.is_empty() { bytes.remove(i % n); } }
                    Edit::Replace(i, b) => { if !bytes.is_empty() { bytes[i % n] = b; } }
                }
            }
            both(&bytes);
        }

        /// The whole CSV-to-plan path, as the fuzz target (fuzz/) drives
        /// it for longer: both exports mutated, planned against an empty
        /// state, every report rendered.
        #[test]
        fn mutated_exports_plan_and_render(
            employer_edits in proptest::collection::vec(edit(), 0..8),
            employee_edits in proptest::collection::vec(edit(), 0..8),
            offboard_missing in any::<bool>(),
        ) {
            let employers = mutate(std::fs::read(corpus("base_employers.csv")).unwrap(), employer_edits);
            let employees = mutate(seed(), employee_edits);
            plan_and_render(&employers, &employees, offboard_missing);
        }

        #[test]
        fn mutated_employers(edits in proptest::collection::vec(edit(), 1..12)) {
            let mut bytes = std::fs::read(corpus("base_employers.csv")).unwrap();
            for e in edits {
                let n = bytes.len().max(1);
                match e {
                    Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                    Edit::Delete(i) => { if !bytes.is_empty() { bytes.remove(i % n); } }
                    Edit::Replace(i, b) => { if !bytes.is_empty() { bytes[i % n] = b; } }
                }
            }
            both(&bytes);
        }
    }
}

// ------------------------------------------------------------- samples

fn sample(day: &str, exp_employers: &[Exp], exp_employees: &[Exp], valid: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(day);
    let employers = read_employers(&dir.join("employers.csv")).unwrap();
    assert_eq!(got(&employers.rejections), want(exp_employers), "{day}");
    let (s, emps) = read_emps(&dir.join("employees.csv"), &employers).unwrap();
    assert_eq!(got(&s.rejections), want(exp_employees), "{day}");
    let kept = emps
        .iter()
        .filter(|e| !s.duplicates.contains(&e.employee_ref))
        .count();
    assert_eq!(kept, valid, "{day}");
    assert!(employers.warnings.is_empty() && s.warnings.is_empty());
}

#[test]
fn samples_day1_rejections_match_the_readme() {
    sample(
        "day1",
        &[(13, Some("state"), Rule::StateRequired)],
        &[
            (7, Some("phone_number"), Rule::Phone),
            (11, Some("groups"), Rule::UnknownGroup),
            (22, Some("employee_ref"), Rule::DuplicateKey),
            (66, Some("employer_ref"), Rule::EmployerRejected),
            (67, Some("employer_ref"), Rule::EmployerRejected),
            (68, Some("employer_ref"), Rule::UnknownEmployer),
            (69, Some("employee_ref"), Rule::DuplicateKey),
        ],
        61,
    );
}

#[test]
fn samples_day2_rejections_match_the_readme() {
    sample(
        "day2",
        &[],
        &[
            (11, Some("groups"), Rule::UnknownGroup),
            (22, Some("employee_ref"), Rule::DuplicateKey),
            (68, Some("employer_ref"), Rule::UnknownEmployer),
            (69, Some("employee_ref"), Rule::DuplicateKey),
        ],
        67,
    );
}
