//! benefits-sync: keeps Kota, Noyo and Invisible Collector in step with
//! payroll exports. The binary (`src/main.rs`) is a thin shell over this
//! library; `ARCHITECTURE.md` is the map.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod fxhash;
pub mod gen;
pub mod input;
pub mod memory;
pub mod model;
pub mod plan;
pub mod prefetch;
pub mod remote;
pub mod report;
pub mod sandbox;
pub mod state;
