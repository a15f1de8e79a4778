//! Network I/O, and only here: one client per target over shared plumbing.

pub mod error;
pub mod gate;
pub mod http;
pub mod ic;
pub mod kota;
pub mod noyo;

pub use error::RemoteError;
pub use gate::{Gate, GateConfig};
pub use http::{CounterValues, Counters, Http, RetryPolicy, Safety};
