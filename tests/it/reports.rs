//! Snapshot tests of the dry-run report in every format, on the samples,
//! and byte-for-byte determinism.

use std::path::Path;

use crate::common::*;

const FORMATS: [(&str, &str); 4] = [
    ("text", "txt"),
    ("json", "json"),
    ("csv", "csv"),
    ("markdown", "md"),
];

async fn plan(format: &str, state: &Path) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(
        root,
        &[],
        &[
            "plan",
            "--employers",
            "samples/day1/employers.csv",
            "--employees",
            "samples/day1/employees.csv",
            "--state",
            state.to_str().unwrap(),
            "--as-of",
            "2026-11-22",
            "--format",
            format,
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    out.stdout
}

/// Set `UPDATE_SNAPSHOTS=1` to rewrite the snapshots after an intended change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_matches_its_snapshot_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for (format, ext) in FORMATS {
        let first = plan(format, &state).await;
        let second = plan(format, &state).await;
        assert_eq!(first, second, "{format} output differs between two runs");
        let path = snapshots.join(format!("plan-day1.{ext}"));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(&snapshots).unwrap();
            std::fs::write(&path, &first).unwrap();
        }
        let expected =
            std::fs::read(&path).expect("snapshot exists (UPDATE_SNAPSHOTS=1 writes it)");
        assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&expected),
            "{format} report changed"
        );
    }
    // The JSON says what the text says.
    let json: serde_json::Value = serde_json::from_slice(&plan("json", &state).await).unwrap();
    let text = String::from_utf8(plan("text", &state).await).unwrap();
    let total = json["summary"]["total_operations"].as_u64().unwrap();
    assert_eq!(json["operations"].as_array().unwrap().len() as u64, total);
    assert!(
        text.contains(&format!("operations {:>39}", total)) || text.contains(&format!("{total}\n")),
        "{text}"
    );
    for c in json["summary"]["operations"].as_array().unwrap() {
        let line = text.lines().find(|l| {
            l.contains(c["kind"].as_str().unwrap())
                && l.trim_end().ends_with(&c["count"].to_string())
        });
        assert!(line.is_some(), "text lacks {c}");
    }
    assert_eq!(json["summary"]["rejected_rows"], 8);
}
