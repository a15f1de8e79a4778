//! Resident memory readings for the `-vv` timing lines: a million-row plan
//! is judged by its peak memory as much as by its speed.

/// Current and peak resident memory of this process (Linux; "?" elsewhere).
pub fn peak_rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or("?".to_owned(), |kb| format!("{} MB", kb / 1024))
    };
    format!("now {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}
