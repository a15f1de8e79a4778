//! Pacing for one target: the rate limit, the in-flight bound and the
//! shared pause after a 429. Every request to the target passes through
//! its gate, lookups and eligibility checks included.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Settings of one target's gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateConfig {
    /// Requests per second (GCRA).
    pub rate: NonZeroU32,
    /// Requests that may go at once after a quiet spell.
    pub burst: NonZeroU32,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// One target's gate. Shared by every task that talks to the target.
pub struct Gate {
    /// GCRA limiter: never more than `rate` requests a second on average.
    limiter: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
    /// Bounds requests in flight; a request holds a permit until its
    /// response (or error) is in. Closed on hard shutdown.
    inflight: Semaphore,
    /// When the server last said 429, no request goes before this instant:
    /// one 429 pauses the whole target, not just the request that got it.
    pause_until: Mutex<Option<Instant>>,
}

/// Held while a request is in flight.
pub struct Pass<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Gate {
    pub fn new(cfg: GateConfig) -> Gate {
        Gate {
            limiter: RateLimiter::direct(Quota::per_second(cfg.rate).allow_burst(cfg.burst)),
            inflight: Semaphore::new(cfg.concurrency.max(1)),
            pause_until: Mutex::new(None),
        }
    }

    /// Wait for an in-flight slot, any 429 pause, and the rate limiter.
    pub async fn enter(&self) -> Pass<'_> {
        let permit = self
            .inflight
            .acquire()
            .await
            .expect("gate semaphore is never closed");
        loop {
            let until = *self.pause_until.lock().expect("pause lock");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
        Pass { _permit: permit }
    }

    /// Pause the whole target for `d` (a 429's Retry-After).
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut p = self.pause_until.lock().expect("pause lock");
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_request_back() {
        let gate = Gate::new(GateConfig {
            rate: NonZeroU32::new(1000).unwrap(),
            burst: NonZeroU32::new(10).unwrap(),
            concurrency: 4,
        });
        gate.pause(Duration::from_secs(3));
        let start = Instant::now();
        drop(gate.enter().await);
        assert!(Instant::now() - start >= Duration::from_secs(3));
    }
}
