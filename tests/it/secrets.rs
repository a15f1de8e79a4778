//! No credential and no personal value in anything benefits-sync writes:
//! logs at their most verbose in both formats, stdout, the run report, a
//! saved plan and every row of the state.

use benefits_sync::sandbox::{FaultConfig, Sandbox, SandboxConfig};

use crate::common::*;

const KOTA_KEY: &str = "pk_test_PROBEkotaKEY9f8e7d6c5b4a";
const NOYO_CLIENT_ID: &str = "probe-client-7d1c55";
const NOYO_SECRET: &str = "probe-noyo-SECRET-3b2a1908ffee";
const IC_TOKEN: &str = "ic_test_PROBEicTOKEN0a1b2c3d";

/// Distinctive values, so a hit is a leak and not a coincidence. The last
/// three employees are rejected for a malformed email, phone and date of
/// birth: a rejection names file, line and column, never the bad value.
const EMPLOYERS: &str = "\
employer_ref,legal_name,address_line1,city,state,postal_code,country_code,contact_name,contact_email,group_name,carrier_id,carrier_group_id,federal_ein,broker_federal_ein,broker_tin
ERPRIV1,Probe Holdings Ltd,41 Quillfeather Lane,Leeds,,LS1 4AP,gb,Ottoline Vantablack,ottoline.vantablack@contact-probe.example,Health,8fac0000-0000-4000-8000-00000000000a,CGRP-PRIV-1,98-7654321,87-6543219,BTIN-PROBE-771
ERPRIV1,Probe Holdings Ltd,41 Quillfeather Lane,Leeds,,LS1 4AP,gb,Ottoline Vantablack,ottoline.vantablack@contact-probe.example,Dental,8fac0001-0000-4000-8000-00000000000b,CGRP-PRIV-2,98-7654321,87-6543219,BTIN-PROBE-771
ERPRIV2,Probe Inc,99 Zanzibar Parkway,Austin,TX,73301,us,Percival Oxenbridge,percival.oxenbridge@contact-probe.example,Health,8fac0000-0000-4000-8000-00000000000a,CGRP-PRIV-3,76-5432198,,
";

const EMPLOYEES: &str = "\
employee_ref,employer_ref,first_name,last_name,email,phone_number,date_of_birth,start_on,sex_at_birth,national_tax_id,address_line1,city,state,postal_code,country_code,groups
EPRIV001,ERPRIV1,Zebulonia,Quillhaven,zebulonia.quillhaven@person-probe.example,+447700900417,1961-03-17,2015-04-01,female,QQ123456C,17 Marmalade Row,Leeds,,LS2 9JT,gb,Health;Dental
EPRIV002,ERPRIV1,Barnabus,Wolfsbane,barnabus.wolfsbane@person-probe.example,+447700900583,1979-08-29,2019-09-02,male,QQ654321D,3 Periwinkle Close,Leeds,,LS6 1AA,gb,Health
EPRIV003,ERPRIV2,Philippa,Crumplehorn,philippa.crumplehorn@person-probe.example,+15125550187,1984-12-05,2021-01-04,female,536-90-4412,700 Juniper Hollow,Austin,TX,73301,us,Health
EPRIV004,ERPRIV2,Ignatius,Fothergill,ignatius.fothergill@person-probe.example,+15125550143,1990-06-21,2022-07-11,male,611-27-8390,5 Larkspur Bend,Austin,TX,73344,us,
EPRIV005,ERPRIV1,Griselda,Mothwing,griselda.mothwing@@person-probe.example,+447700900611,1966-01-09,2016-02-01,female,QQ223344A,8 Thistledown Way,Leeds,,LS3 1AB,gb,Health
EPRIV006,ERPRIV1,Leopold,Sparrowhawk,leopold.sparrowhawk@person-probe.example,07700 900 733,1971-05-14,2017-03-01,male,QQ334455B,12 Bramblewood Court,Leeds,,LS4 2CD,gb,Health
EPRIV007,ERPRIV2,Henrietta,Pumpernickel,henrietta.pumpernickel@person-probe.example,+15125550199,1983-02-30,2020-05-04,female,622-33-4455,9 Cattail Crossing,Austin,TX,73301,us,Health
";

/// Personal columns of both files.
const PERSONAL: [&str; 12] = [
    "contact_name",
    "contact_email",
    "federal_ein",
    "broker_federal_ein",
    "broker_tin",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "date_of_birth",
    "national_tax_id",
    "address_line1",
];

/// Every value of a personal column, and tax ids also without separators.
fn personal_values() -> Vec<String> {
    let mut values = Vec::new();
    for csv in [EMPLOYERS, EMPLOYEES] {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        for line in lines {
            for (col, v) in header.iter().zip(line.split(',')) {
                if PERSONAL.contains(col) && !v.is_empty() {
                    values.push(v.to_owned());
                    if col.contains("ein") || *col == "national_tax_id" {
                        values.push(v.replace('-', ""));
                    }
                }
            }
        }
    }
    values
}

fn secrets() -> Vec<String> {
    use std::io::Write;
    // What an HTTP Basic header would carry.
    let mut basic = Vec::new();
    write!(basic, "{NOYO_CLIENT_ID}:{NOYO_SECRET}").unwrap();
    vec![
        KOTA_KEY.into(),
        NOYO_SECRET.into(),
        IC_TOKEN.into(),
        base64(&basic),
        // The prefix of every access token the sandbox issues.
        "noyo_sandbox_".into(),
    ]
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn env(sb: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("KOTA_API_URL", sb.kota_url()),
        ("KOTA_API_KEY", KOTA_KEY.into()),
        ("NOYO_API_URL", sb.noyo_url()),
        ("NOYO_TOKEN_URL", sb.noyo_token_url()),
        ("NOYO_CLIENT_ID", NOYO_CLIENT_ID.into()),
        ("NOYO_CLIENT_SECRET", NOYO_SECRET.into()),
        ("IC_API_URL", sb.ic_url()),
        ("IC_API_TOKEN", IC_TOKEN.into()),
    ]
}

/// Run with the verbose log filter the user would get, not a stray one
/// from the environment.
async fn run_verbose(
    dir: &std::path::Path,
    env: &[(&'static str, String)],
    args: &[&str],
) -> std::process::Output {
    let mut c = command(dir);
    c.args(args).env_remove("BENEFITS_SYNC_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().await.unwrap()
}

/// Every value of every state table, as text.
fn state_dump(state: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(state).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut all = String::new();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM {t}")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                match row.get::<_, rusqlite::types::Value>(i).unwrap() {
                    rusqlite::types::Value::Text(s) => all.push_str(&s),
                    rusqlite::types::Value::Blob(b) => all.push_str(&String::from_utf8_lossy(&b)),
                    other => all.push_str(&format!("{other:?}")),
                }
                all.push('\n');
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_personal_value_in_logs_reports_saved_plans_or_state() {
    let mut personal = personal_values();
    personal.sort();
    personal.dedup();
    assert!(personal.len() >= 40, "{personal:?}");
    let needles: Vec<(String, &str)> = secrets()
        .into_iter()
        .map(|s| (s, "secret"))
        .chain(personal.into_iter().map(|v| (v, "personal value")))
        .collect();
    for log_format in ["text", "json"] {
        let sb = crate::support::start_sandbox(SandboxConfig {
            noyo_client_id: NOYO_CLIENT_ID.into(),
            noyo_client_secret: NOYO_SECRET.into(),
            faults: FaultConfig::default(),
            ..fast_config()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_exports(d, EMPLOYERS, EMPLOYEES);
        let f = files(d);
        let saved = d.join("plan.json").display().to_string();
        let report = d.join("report.json").display().to_string();
        let verbose = ["-vv", "--log-format", log_format];
        let mut outputs = Vec::new();
        for format in ["text", "json", "csv", "markdown"] {
            let mut p = cmd(&f, "plan", &["--format", format, "--save", &saved]);
            p.extend(verbose);
            let out = run_verbose(d, &[], &p).await;
            assert_eq!(code(&out), 0, "{}", text(&out));
            outputs.push((format!("plan --format {format}"), text(&out)));
        }
        let mut a = cmd(&f, "apply", &["--report", &report]);
        a.extend(verbose);
        let out = run_verbose(d, &env(&sb), &a).await;
        assert_eq!(code(&out), 0, "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // The logs really are verbose: every request is in them.
        assert!(
            stderr.contains("/employees") && stderr.contains("group_connections"),
            "{stderr}"
        );
        if log_format == "json" {
            for line in stderr.lines() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok(),
                    "not JSON: {line}"
                );
            }
        }
        outputs.push(("apply".into(), text(&out)));
        let s = stats(&sb).await;
        assert_eq!(s["objects"]["kota.employees"], 4, "{s}");
        assert_eq!(s["objects"]["noyo.connections"], 3, "{s}");
        outputs.push(("report".into(), std::fs::read_to_string(&report).unwrap()));
        outputs.push((
            "saved plan".into(),
            std::fs::read_to_string(&saved).unwrap(),
        ));
        outputs.push(("state".into(), state_dump(&d.join("state.db"))));
        for (needle, kind) in &needles {
            for (what, hay) in &outputs {
                assert!(
                    !hay.contains(needle.as_str()),
                    "{kind} {needle} found in {what} (--log-format {log_format})"
                );
            }
        }
        sb.shutdown().await;
    }
}

#[test]
fn the_base64_helper_is_standard() {
    assert_eq!(base64(b"client:secret"), "Y2xpZW50OnNlY3JldA==");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
}
