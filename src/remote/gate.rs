//! Pacing for one target: the rate limit, the in-flight bound, the shared
//! pause after a 429, and the rate the server has shown it really accepts.
//! Every request to the target passes through its gate, lookups and
//! eligibility checks included.
//!
//! Pacing is by reservation: a request takes the next free send slot (one
//! every `1 / rate`) and sleeps until it. A late wake-up therefore never
//! costs capacity (the slot sequence does not move), and waiters go in the
//! order they arrived instead of racing for the same instant.
//!
//! Servers count requests in windows ("N per second"), and what they count
//! is arrival, which jitters. The gate paces [`HEADROOM`] below the
//! configured rate, with no burst unless asked for, so that the server
//! never sees more than the configured rate in any second and the run
//! draws no 429 at all.
//!
//! When the server does answer 429 (its limit is lower than configured, or
//! it is shared with other clients), the whole target pauses for the
//! `Retry-After`, and the gate lowers its rate to just under what the
//! server accepted over the last second. It climbs back by [`STEP`] after
//! each [`CLEAN`] stretch, but never above [`CAP`] times the lowest rate
//! that drew a 429 in this run: once it has found the server's limit it
//! stays under it instead of probing again and again. The number of 429s
//! a run can draw is therefore bounded; [`Gate`]'s documentation derives
//! the bound.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Share of the configured rate the gate paces at when the server has not
/// refused anything: the rest absorbs arrival jitter (a request sent just
/// before a server's window boundary may be counted just after it).
pub const HEADROOM: f64 = 0.98;
/// After a 429 the rate goes to this share of what the server accepted in
/// the last second (and at least this much below the rate it refused).
pub const CUT: f64 = 0.9;
/// A single 429 never cuts the rate below this share of the refused rate,
/// so one unlucky measurement cannot stall a run.
pub const FLOOR: f64 = 0.25;
/// Growth of the rate after each [`CLEAN`] stretch without a 429.
pub const STEP: f64 = 1.1;
/// How long a rate must run without a 429 before the gate climbs from it:
/// two windows of a window-counting server, so that a rate above the
/// server's limit cannot pass as clean by straddling a window boundary.
pub const CLEAN: Duration = Duration::from_secs(2);
/// The rate never climbs above this share of the lowest rate that drew a
/// 429 in this run.
pub const CAP: f64 = 0.97;
/// Lowest rate the gate will pace at, in requests per second.
const MIN_RATE: f64 = 0.5;
/// How far back "what the server accepted" looks.
const WINDOW: Duration = Duration::from_secs(1);

/// Settings of one target's gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateConfig {
    /// Requests per second the target allows (`--rate-limit`).
    pub rate: NonZeroU32,
    /// Requests that may go back to back after a quiet spell (`--burst`).
    /// Anything above 1 lets a second hold `rate + burst - 1` requests.
    pub burst: NonZeroU32,
    /// Requests in flight at once (`--concurrency`).
    pub concurrency: usize,
}

impl GateConfig {
    /// The in-flight bound used when `--concurrency` is not given: enough
    /// for the rate at up to 100 ms per request (Little's law: in flight =
    /// rate x latency), at least 8, at most 256 connections.
    pub fn default_concurrency(rate: NonZeroU32) -> usize {
        (rate.get() as usize).div_ceil(10).clamp(8, 256)
    }
}

/// The pacing state, behind one lock held only for arithmetic.
struct Pace {
    /// The configured rate times [`HEADROOM`]: the most the gate sends.
    max_rate: f64,
    /// The rate in force, requests per second.
    rate: f64,
    /// Slack for sends after a quiet spell: `(burst - 1) / rate`.
    burst: f64,
    /// The next free send slot.
    next: Instant,
    /// No request leaves before this (the last 429's `Retry-After`).
    pause_until: Option<Instant>,
    /// Bumped whenever the rate is cut: slots reserved before were spaced
    /// for the old rate, so their holders reserve again.
    generation: u64,
    /// When the rate was last cut: a 429 for a request sent before then is
    /// part of the episode that caused the cut and cuts nothing more.
    last_cut: Option<Instant>,
    /// Lowest rate that drew a 429 in this run (the climb's ceiling).
    refused_at: Option<f64>,
    /// The rate the last cut set, until the climb moves it: a 429 drawn at
    /// that rate means the cut was not deep enough.
    cut_to: Option<f64>,
    /// Start of the current clean stretch; each [`CLEAN`] of it is one
    /// [`STEP`] up.
    clean_since: Instant,
    /// When the server accepted (answered anything but 429) requests, over
    /// the last [`WINDOW`]: the measure of what it allows.
    accepted: VecDeque<Instant>,
    /// 429 episodes so far (cuts), for the run's log.
    cuts: u64,
}

impl Pace {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }

    /// Take the next send slot at or after `now`.
    fn reserve(&mut self, now: Instant) -> Instant {
        let interval = self.interval();
        // After a quiet spell `next` lies in the past; the burst lets a few
        // requests use the slots that went by, no more.
        let earliest = now
            .checked_sub(Duration::from_secs_f64(self.burst))
            .unwrap_or(now);
        let mut slot = self.next.max(earliest);
        if let Some(p) = self.pause_until {
            slot = slot.max(p);
        }
        self.next = slot + interval;
        slot.max(now)
    }

    fn accepted_in_window(&mut self, now: Instant) -> usize {
        while self
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.accepted.pop_front();
        }
        self.accepted.len()
    }

    fn on_accepted(&mut self, now: Instant) {
        self.accepted.push_back(now);
        self.accepted_in_window(now);
        if now.duration_since(self.clean_since) < CLEAN {
            return;
        }
        self.clean_since = now;
        let ceiling = match self.refused_at {
            Some(r) => (r * CAP).min(self.max_rate),
            None => self.max_rate,
        };
        if self.rate < ceiling {
            self.rate = (self.rate * STEP).min(ceiling);
            self.cut_to = None;
        }
    }

    fn on_throttled(&mut self, now: Instant, sent: Instant, sent_rate: f64, wait: Duration) {
        let until = now + wait;
        if self.pause_until.is_none_or(|p| p < until) {
            self.pause_until = Some(until);
        }
        self.next = self.next.max(until);
        self.clean_since = until;
        if self.last_cut.is_some_and(|c| sent <= c) {
            return;
        }
        let accepted = self.accepted_in_window(now) as f64;
        // Refused again at the rate the last cut chose: that cut was not
        // deep enough (the last second's count overstated the limit), so
        // this one at least halves. Otherwise (the first 429, or a climb
        // that went one step too far) the measure alone decides.
        let deepest = if self.cut_to.is_some_and(|c| sent_rate <= c) {
            sent_rate * 0.5
        } else {
            sent_rate * CUT
        };
        self.rate = (accepted * CUT)
            .clamp(sent_rate * FLOOR, deepest)
            .max(MIN_RATE);
        self.cut_to = Some(self.rate);
        self.refused_at = Some(self.refused_at.map_or(sent_rate, |r| r.min(sent_rate)));
        self.last_cut = Some(now);
        self.generation += 1;
        self.next = until;
        self.cuts += 1;
    }
}

/// One target's gate. Shared by every task that talks to the target.
///
/// # How many 429s a run can draw
///
/// Take a server that allows `s` requests per second (counted in windows,
/// as the sandbox does) and a client configured at `L > s` with
/// concurrency `C`. A 429 *episode* is the stretch from the first 429 to
/// the end of the pause it causes. Nothing is sent during the pause, so
/// only requests already in flight can be refused in it: at most `C` 429s
/// per episode. And only the first 429 of an episode changes the rate.
///
/// * Descent. The first episode cuts the rate to `CUT` x what the server
///   accepted in the last second, at most `CUT x L`. While that is still
///   too fast (refused again before any climb), every episode at least
///   halves it: after at most `1 + ceil(log2(0.9 L / s))` episodes the
///   rate is at or under `s`.
/// * Probing. From there the rate climbs by `STEP` after each `CLEAN`
///   stretch (two whole windows: a rate above `s` cannot last that long
///   unrefused), so it is first refused at no more than `STEP x s = 1.1 s`; that cut
///   lands at or under `0.9 x 1.1 s < s`, and every refused rate lowers
///   the ceiling to `CAP` x itself. Rates at or under `s` are not refused,
///   so there are at most `ceil(ln(STEP) / ln(1 / CAP)) = 4` such
///   episodes in a run.
///
/// So a run draws at most `C x (5 + ceil(log2(0.9 L / s)))` 429s from a
/// server with a steady limit, however long the run
/// (`tests/it/throttle_soak.rs` holds a run to it). When the server allows
/// the configured rate (`s >= L`), the gate sends at most `HEADROOM x L`
/// a second and draws none.
pub struct Gate {
    /// Rate, pause and what the server accepted. Held only to reserve a
    /// slot or record an answer, never across an await.
    pace: Mutex<Pace>,
    /// Bounds requests in flight; a request holds a permit from before its
    /// send slot until its response (or error) is in. Never closed: a
    /// stopping run simply starts no new request, and the ones in flight
    /// finish and release their permits.
    inflight: Semaphore,
}

/// Held while a request waits for its slot and is in flight. Report the
/// answer with [`Pass::accepted`] or [`Pass::throttled`]; dropping it
/// (network error) just frees the slot.
pub struct Pass<'a> {
    gate: &'a Gate,
    _permit: SemaphorePermit<'a>,
    /// When the request left.
    sent: Instant,
    /// The rate it was paced at.
    rate: f64,
}

impl Gate {
    pub fn new(cfg: GateConfig) -> Gate {
        let max_rate = f64::from(cfg.rate.get()) * HEADROOM;
        let now = Instant::now();
        Gate {
            pace: Mutex::new(Pace {
                max_rate,
                rate: max_rate,
                burst: f64::from(cfg.burst.get() - 1) / max_rate,
                next: now,
                pause_until: None,
                generation: 0,
                last_cut: None,
                refused_at: None,
                cut_to: None,
                clean_since: now,
                accepted: VecDeque::new(),
                cuts: 0,
            }),
            inflight: Semaphore::new(cfg.concurrency.max(1)),
        }
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        // The lock guards plain numbers; a panic elsewhere cannot leave them
        // inconsistent, so a poisoned lock is still good to use.
        self.pace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for an in-flight slot, then for a send slot (after any 429
    /// pause).
    pub async fn enter(&self) -> Pass<'_> {
        let permit = self
            .inflight
            .acquire()
            .await
            .expect("gate semaphore is never closed");
        loop {
            let (slot, generation) = {
                let mut p = self.pace();
                (p.reserve(Instant::now()), p.generation)
            };
            if slot > Instant::now() {
                tokio::time::sleep_until(slot).await;
            }
            let p = self.pace();
            let now = Instant::now();
            // A 429 may have come in while this request slept: its slot was
            // spaced for the old rate, or falls inside the pause.
            let paused = p.pause_until.is_some_and(|t| t > now);
            if p.generation == generation && !paused {
                return Pass {
                    gate: self,
                    _permit: permit,
                    sent: now,
                    rate: p.rate,
                };
            }
        }
    }

    /// The rate in force, requests per second.
    pub fn rate(&self) -> f64 {
        self.pace().rate
    }

    /// The configured rate after headroom: what the gate sends at when the
    /// server refuses nothing.
    pub fn max_rate(&self) -> f64 {
        self.pace().max_rate
    }

    /// 429 episodes so far (each cut the rate once).
    pub fn cuts(&self) -> u64 {
        self.pace().cuts
    }
}

impl Pass<'_> {
    /// The server answered (anything but 429).
    pub fn accepted(self) {
        self.gate.pace().on_accepted(Instant::now());
    }

    /// The server answered 429: pause the whole target for `retry_after`
    /// and, on the first 429 of an episode, lower the rate.
    pub fn throttled(self, retry_after: Duration) {
        self.gate
            .pace()
            .on_throttled(Instant::now(), self.sent, self.rate, retry_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(rate: u32, burst: u32, concurrency: usize) -> Gate {
        Gate::new(GateConfig {
            rate: NonZeroU32::new(rate).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            concurrency,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_request_back() {
        let gate = gate(1000, 10, 4);
        let start = Instant::now();
        gate.enter().await.throttled(Duration::from_secs(3));
        let pass = gate.enter().await;
        assert!(Instant::now() - start >= Duration::from_secs(3));
        pass.accepted();
    }

    #[tokio::test(start_paused = true)]
    async fn paces_under_the_configured_rate_in_every_second() {
        let gate = std::sync::Arc::new(gate(200, 1, 64));
        let sent = std::sync::Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (gate, sent) = (gate.clone(), sent.clone());
            tasks.spawn(async move {
                for _ in 0..20 {
                    let pass = gate.enter().await;
                    sent.lock().unwrap().push(Instant::now() - start);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    pass.accepted();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let sent = sent.lock().unwrap();
        // Any one-second window, wherever it starts, holds at most the
        // configured 200.
        for (i, t) in sent.iter().enumerate() {
            let n = sent[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(n <= 200, "{n} requests in the second from {t:?}");
        }
        // And the pace is the configured rate less the headroom.
        let span = (*sent.last().unwrap() - sent[0]).as_secs_f64();
        let rate = (sent.len() - 1) as f64 / span;
        assert!((rate - 196.0).abs() < 1.0, "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_cuts_to_what_the_server_accepted_once_per_episode() {
        let gate = gate(100, 1, 8);
        // One second at full pace: 98 accepted.
        for _ in 0..98 {
            gate.enter().await.accepted();
        }
        let passes = [gate.enter().await, gate.enter().await];
        let [a, b] = passes;
        a.throttled(Duration::from_secs(1));
        let after_first = gate.rate();
        assert!((after_first - 0.9 * 98.0).abs() < 1.0, "{after_first}");
        // The same episode: no second cut.
        b.throttled(Duration::from_secs(1));
        assert_eq!(gate.rate(), after_first);
        assert_eq!(gate.cuts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn climbs_back_but_stays_under_the_refused_rate() {
        let gate = gate(100, 1, 8);
        gate.enter().await.throttled(Duration::from_millis(10));
        // Nothing accepted in the last second: the floor holds the cut.
        assert!((gate.rate() - 98.0 * FLOOR).abs() < 1e-6, "{}", gate.rate());
        for _ in 0..4000 {
            gate.enter().await.accepted();
        }
        let ceiling = 98.0 * CAP;
        assert!((gate.rate() - ceiling).abs() < 1e-6, "{}", gate.rate());
    }
}
