//! The one integration test crate: real processes, real HTTP over loopback,
//! real SQLite files.
