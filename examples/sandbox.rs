//! Runs the sandbox as its own process, for manual testing and for tests
//! that want a separate process:
//!
//! ```text
//! cargo run --example sandbox -- --listen 127.0.0.1:8080 --data /tmp/world.sqlite \
//!     --latency-ms 20 --error-rate 0.05 --drop-rate 0.01 --rate-limit 50 --seed 7
//! ```
//!
//! Prints `sandbox listening on http://...` and runs until SIGINT/SIGTERM.

use std::time::Duration;

use benefits_sync::sandbox::{serve_until_signal, SandboxConfig};

fn parse_args() -> Result<SandboxConfig, String> {
    let mut cfg = SandboxConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--listen" => cfg.listen = value()?.parse().map_err(|e| bad(&e))?,
            "--data" => cfg.data = Some(value()?.into()),
            "--latency-ms" => cfg.faults.latency_ms = value()?.parse().map_err(|e| bad(&e))?,
            "--jitter-ms" => {
                cfg.faults.latency_jitter_ms = value()?.parse().map_err(|e| bad(&e))?
            }
            "--error-rate" => cfg.faults.error_rate = value()?.parse().map_err(|e| bad(&e))?,
            "--drop-rate" => cfg.faults.drop_rate = value()?.parse().map_err(|e| bad(&e))?,
            "--rate-limit" => cfg.faults.rate_limit = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--seed" => cfg.faults.seed = value()?.parse().map_err(|e| bad(&e))?,
            "--ic-duplicate-status" => {
                cfg.ic_duplicate_status = value()?.parse().map_err(|e| bad(&e))?
            }
            "--noyo-step-ms" => {
                cfg.noyo_status_step = Duration::from_millis(value()?.parse().map_err(|e| bad(&e))?)
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(cfg)
}

#[tokio::main]
async fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sandbox: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve_until_signal(cfg).await {
        eprintln!("sandbox: {e}");
        std::process::exit(1);
    }
}
