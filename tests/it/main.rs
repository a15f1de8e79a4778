//! The one integration test crate: real processes, real HTTP over loopback,
//! real SQLite files.

mod input_corpus;
