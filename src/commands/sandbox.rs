//! `benefits-sync sandbox`: the emulator as its own process.

use super::{AppError, EXIT_OK};
use crate::cli::SandboxArgs;
use crate::sandbox::{self, FaultConfig, SandboxConfig};

pub async fn run(args: SandboxArgs) -> Result<u8, AppError> {
    for (name, v) in [
        ("--error-rate", args.error_rate),
        ("--drop-rate", args.drop_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(AppError::Config(format!("{name} must be between 0 and 1")));
        }
    }
    let config = SandboxConfig {
        listen: args.listen,
        data: args.data,
        faults: FaultConfig {
            latency_ms: args.latency_ms,
            latency_jitter_ms: args.latency_jitter_ms,
            error_rate: args.error_rate,
            drop_rate: args.drop_rate,
            rate_limit: args.rate_limit,
            seed: args.seed,
        },
        ic_duplicate_status: if args.ic_duplicate_422 { 422 } else { 409 },
        noyo_status_step: std::time::Duration::from_millis(args.noyo_step_ms),
        ..SandboxConfig::default()
    };
    sandbox::serve_until_signal(config)
        .await
        .map_err(|e| AppError::Config(e.to_string()))?;
    Ok(EXIT_OK)
}
