//! The one integration test crate: real processes, real HTTP over loopback,
//! real SQLite files.

mod apply_e2e;
mod common;
mod crash;
mod input_corpus;
mod noyo_tokens;
mod reports;
mod sandbox_faults;
mod sandbox_ic;
mod sandbox_kota;
mod sandbox_noyo;
mod sandbox_persist;
mod sandbox_stats;
mod secrets;
mod state_files;
mod support;
mod throttle_soak;
