//! Shared helpers: a sandbox on 127.0.0.1:0, temporary exports, and the
//! binary run as a real child process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use benefits_sync::sandbox::{self, FaultConfig, Sandbox, SandboxConfig};
use serde_json::Value;

pub use crate::support::stats;

/// Start an in-process sandbox on a free loopback port with `faults`.
pub async fn start_sandbox(faults: FaultConfig) -> Sandbox {
    crate::support::start_sandbox(SandboxConfig {
        faults,
        ..fast_config()
    })
    .await
}

/// Config for tests: Noyo connections move on quickly.
pub fn fast_config() -> SandboxConfig {
    SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        noyo_status_step: Duration::from_millis(20),
        ..SandboxConfig::default()
    }
}

/// The environment that points the binary at `sb`.
pub fn env_for(sb: &Sandbox) -> Vec<(&'static str, String)> {
    sandbox::client_env(&sb.base_url())
}

/// Sum of every duplicate count the sandbox reports.
pub fn duplicates(stats: &Value) -> u64 {
    stats["duplicates"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(u64::MAX)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_benefits-sync"))
}

/// A command for the binary with a clean environment (no stray targets).
pub fn command(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin());
    c.current_dir(dir);
    for k in benefits_sync::apply::targets::ENV_VARS {
        c.env_remove(k);
    }
    c.kill_on_drop(true);
    c
}

/// Run the binary to completion in `dir` with `env`.
pub async fn run(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> Output {
    let mut c = command(dir);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().await.expect("binary runs")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Write synthetic exports into `dir`.
pub fn generate(dir: &Path, employers: usize, employees: usize, day: u8) {
    let o = benefits_sync::gen::GenOptions {
        employers,
        employees,
        day,
        seed: 42,
        ..Default::default()
    };
    benefits_sync::gen::generate(dir, &o).expect("generate");
}

/// Write two exports from literal CSV text.
pub fn write_exports(dir: &Path, employers: &str, employees: &str) {
    std::fs::write(dir.join("employers.csv"), employers).unwrap();
    std::fs::write(dir.join("employees.csv"), employees).unwrap();
}

/// The standard arguments naming the exports and state in `dir`.
pub fn files(dir: &Path) -> Vec<String> {
    vec![
        "--employers".into(),
        dir.join("employers.csv").display().to_string(),
        "--employees".into(),
        dir.join("employees.csv").display().to_string(),
        "--state".into(),
        dir.join("state.db").display().to_string(),
    ]
}

/// `benefits-sync SUB <files> <extra>`.
pub fn cmd<'a>(files: &'a [String], sub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![sub];
    v.extend(files.iter().map(String::as_str));
    v.extend_from_slice(extra);
    v
}
