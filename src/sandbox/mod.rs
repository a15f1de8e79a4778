//! The built-in emulator of the Kota, Noyo and Invisible Collector APIs.
