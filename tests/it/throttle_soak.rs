//! Soak: a server whose rate limit is a tenth of the client's. The run must
//! finish with nothing failed and no more 429s than the gate's bound
//! (derived in `src/remote/gate.rs`): the client adapts to the server
//! instead of being refused every second.

use benefits_sync::remote::gate::{CAP, STEP};
use benefits_sync::sandbox::FaultConfig;
use serde_json::Value;

use crate::common::*;

/// Requests per second the sandbox allows per API.
const SERVER: u32 = 40;
/// What the client is told it may send: ten times too many.
const CLIENT: u32 = 400;
/// Requests in flight per target.
const CONCURRENCY: u64 = 8;

/// The most 429s one target's gate can draw from a server with a steady
/// limit `s` when configured at `l` with concurrency `c`: at most `c` per
/// episode; `1 + ceil(log2(0.9 l / s))` episodes to come down to the
/// limit, and `ceil(ln STEP / ln(1 / CAP))` climbs that overshoot it.
fn bound(l: u32, s: u32, c: u64) -> u64 {
    let descent = 1 + (0.9 * f64::from(l) / f64::from(s)).log2().ceil().max(0.0) as u64;
    let probes = (STEP.ln() / (1.0 / CAP).ln()).ceil() as u64;
    c * (descent + probes)
}

/// 429s per API (`kota`, `noyo`, `ic`) from the sandbox's request counts.
fn refused_by_api(stats: &Value) -> [u64; 3] {
    let mut out = [0u64; 3];
    for r in stats["requests"].as_array().into_iter().flatten() {
        if r["status"] != 429 {
            continue;
        }
        let route = r["route"].as_str().unwrap_or("");
        let i = match route.split('/').nth(1) {
            Some("kota") => 0,
            Some("noyo") => 1,
            _ => 2,
        };
        out[i] += r["count"].as_u64().unwrap_or(0);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_a_tenth_of_the_clients_rate_draws_a_bounded_number_of_429s() {
    let sb = start_sandbox(FaultConfig {
        rate_limit: Some(SERVER),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 2, 60, 1);
    let env = env_for(&sb);
    let f = files(dir.path());
    let report_path = dir.path().join("report.json").display().to_string();
    let (rate, conc) = (CLIENT.to_string(), CONCURRENCY.to_string());
    let a = cmd(
        &f,
        "apply",
        &[
            "--report",
            &report_path,
            "--rate-limit",
            &rate,
            "--concurrency",
            &conc,
        ],
    );
    let out = run(dir.path(), &env, &a).await;
    assert_eq!(code(&out), 0, "{}", text(&out));

    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let totals = &report["totals"];
    assert_eq!(totals["failed"], 0, "{report}");
    assert_eq!(totals["skipped"], 0, "{report}");
    assert_eq!(
        totals["planned"].as_u64().unwrap(),
        totals["done"].as_u64().unwrap() + totals["ineligible"].as_u64().unwrap(),
        "{report}"
    );

    let s = stats(&sb).await;
    assert_eq!(duplicates(&s), 0, "{s}");
    assert_eq!(s["objects"]["kota.employers"], 2);
    assert_eq!(s["objects"]["kota.employees"], 60);
    let refused = refused_by_api(&s);
    let kota_requests = report["requests"]["kota"]["requests"].as_u64().unwrap();
    // The scenario has teeth: Kota's share alone is several seconds' worth
    // of the server's limit, and the client did get refused at first.
    assert!(kota_requests > 4 * u64::from(SERVER), "{kota_requests}");
    assert!(refused[0] > 0, "the server never refused: {s}");
    let max = bound(CLIENT, SERVER, CONCURRENCY);
    for (api, n) in ["kota", "noyo", "ic"].iter().zip(refused) {
        assert!(n <= max, "{api}: {n} 429s, more than the bound {max}: {s}");
    }
    assert_eq!(
        refused.iter().sum::<u64>(),
        s["faults"]["rate_limited_429"].as_u64().unwrap()
    );
    sb.shutdown().await;
}
